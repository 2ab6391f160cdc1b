//! bazel_skylib and aspect_bazel_lib: `copy_file`, `write_file`, `expand_template`,
//! `copy_to_directory`, `directory_path`, `jq`, `yq` (an in-process yq, `yq/`), and their
//! in-process actions (`files`).

pub mod copy_file;
pub mod expand_template;
pub mod files;
pub mod write_file;
pub mod yq;

use super::Kind;

/// bazel_skylib's and aspect_bazel_lib's kinds (the private rules their macros call).
pub const KINDS: &[Kind] = &[
    Kind { schema: || copy_file::schema("_copy_file"), analyze: copy_file::analyze },
    Kind { schema: || copy_file::schema("_copy_xfile"), analyze: copy_file::analyze },
    Kind { schema: copy_file::jq_schema, analyze: copy_file::analyze_jq },
    Kind { schema: yq::schema, analyze: yq::analyze },
    Kind { schema: copy_file::directory_path_schema, analyze: copy_file::analyze_directory_path },
    Kind { schema: expand_template::schema, analyze: expand_template::analyze },
    Kind { schema: || write_file::schema("_write_file"), analyze: write_file::analyze },
    Kind { schema: || write_file::schema("_write_xfile"), analyze: write_file::analyze },
];
