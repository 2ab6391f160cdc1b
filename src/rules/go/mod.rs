//! rules_go: `go_library`, `go_binary`, `go_test`, `go_cross_binary`, and the code they share:
//! the toolchain, the compile/link/testmain actions (`actions`) and Go's build constraints
//! (`go_source`).

pub mod actions;
pub mod go_binary;
pub mod go_cross_binary;
pub mod go_library;
pub mod go_source;
pub mod go_test;

use super::Kind;

/// rules_go's kinds.
pub const KINDS: &[Kind] = &[
    Kind { schema: || go_binary::schema("go_binary"), analyze: go_binary::analyze },
    Kind { schema: || go_binary::schema("go_non_executable_binary"), analyze: go_binary::analyze },
    Kind { schema: go_cross_binary::schema, analyze: go_cross_binary::analyze },
    Kind { schema: go_library::schema, analyze: go_library::analyze },
    Kind { schema: go_test::schema, analyze: go_test::analyze },
];
