//! container_structure_test: the rule and ocib's own structure-test runner (`runner`), which
//! reproduces the container-structure-test binary's checks and reports.

pub mod container_structure_test;
pub mod runner;

use super::Kind;

/// container_structure_test's kind.
pub const KINDS: &[Kind] = &[Kind { schema: container_structure_test::schema, analyze: container_structure_test::analyze }];
