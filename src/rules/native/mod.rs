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

use super::{Kind, no_providers};

/// Bazel's built-in kinds.
pub const KINDS: &[Kind] = &[
    Kind { schema: alias::schema, analyze: alias::analyze },
    Kind { schema: config_setting::schema, analyze: config_setting::analyze },
    Kind { schema: constraint::setting_schema, analyze: no_providers },
    Kind { schema: constraint::value_schema, analyze: constraint::analyze_value },
    Kind { schema: filegroup::schema, analyze: filegroup::analyze },
    Kind { schema: genrule::schema, analyze: genrule::analyze },
    Kind { schema: platform::schema, analyze: no_providers },
    Kind { schema: sh_binary::schema, analyze: sh_binary::analyze },
    Kind { schema: sh_test::schema, analyze: sh_test::analyze },
    Kind { schema: test_suite::schema, analyze: no_providers },
];
