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
