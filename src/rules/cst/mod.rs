//! container_structure_test: the rule and ocib's own structure-test runner (`runner`), which
//! reproduces the container-structure-test binary's checks and reports.

pub mod container_structure_test;
pub mod runner;
