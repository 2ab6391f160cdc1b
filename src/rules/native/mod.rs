//! Bazel's built-in rules: `alias`, `config_setting`, `constraint_*`, `filegroup`, `genrule`,
//! `platform`, `sh_binary`, `sh_test`, `test_suite`.

pub mod alias;
pub mod config_setting;
pub mod constraint;
pub mod filegroup;
pub mod genrule;
pub mod platform;
pub mod sh_binary;
pub mod sh_test;
pub mod test_suite;
