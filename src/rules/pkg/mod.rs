//! rules_pkg: `pkg_tar`, `pkg_files`, `pkg_filegroup`, `pkg_mkdirs`, `pkg_mklink`, with the
//! destination-path logic they share (`paths`) and the deterministic tar writer (`tar_writer`).

pub mod paths;
pub mod pkg_filegroup;
pub mod pkg_files;
pub mod pkg_mkdirs;
pub mod pkg_mklink;
pub mod pkg_tar;
pub mod tar_action;
pub mod tar_writer;

use super::Kind;

/// rules_pkg's kinds (`pkg_tar` and `pkg_mklink` are macros over the `_impl` rules).
pub const KINDS: &[Kind] = &[
    Kind { schema: pkg_files::schema, analyze: pkg_files::analyze },
    Kind { schema: pkg_filegroup::schema, analyze: pkg_filegroup::analyze },
    Kind { schema: pkg_mkdirs::schema, analyze: pkg_mkdirs::analyze },
    Kind { schema: pkg_mklink::schema, analyze: pkg_mklink::analyze },
    Kind { schema: pkg_tar::schema, analyze: pkg_tar::analyze },
];
