//! rules_go: `go_library`, `go_binary`, `go_test`, `go_cross_binary`, and the code they share:
//! the toolchain, the compile/link/testmain actions (`actions`) and Go's build constraints
//! (`go_source`).

pub mod actions;
pub mod go_binary;
pub mod go_cross_binary;
pub mod go_library;
pub mod go_source;
pub mod go_test;
