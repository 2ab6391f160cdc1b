//! bazel_skylib and aspect_bazel_lib: `copy_file`, `write_file`, `expand_template`,
//! `copy_to_directory`, `directory_path`, `jq`, and their in-process actions (`files`).

pub mod copy_file;
pub mod expand_template;
pub mod files;
pub mod write_file;
