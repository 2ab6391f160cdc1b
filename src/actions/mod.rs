//! In-process actions: the code ocib runs itself at execution time for actions that rules
//! declare (copying, template expansion, writing tars, driving the Go compiler and linker).
//! Each type's `params()` is everything besides input files that its output depends on.

pub mod files;
pub mod go;
pub mod go_source;
pub mod oci;
pub mod pkg_tar;
pub mod test;
