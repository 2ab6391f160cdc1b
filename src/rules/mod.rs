//! Rule kinds: one file per rule with its attribute schema (and, in later phases, its
//! analysis). This module holds the schema type and the registry of native rules.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::graph::AttrValue;
pub use crate::graph::schema::{AttrSpec, RuleSchema, SchemaBuilder};

pub mod cst;
pub mod go;
pub mod lib;
pub mod native;
pub mod oci;
pub mod pkg;
pub mod test;

/// Shorthands for schema defaults.
pub(crate) fn s(v: &str) -> AttrValue {
    AttrValue::String(v.to_owned())
}
pub(crate) fn b(v: bool) -> AttrValue {
    AttrValue::Bool(v)
}
pub(crate) fn i(v: i64) -> AttrValue {
    AttrValue::Int(v)
}
pub(crate) fn sl(v: &[&str]) -> AttrValue {
    AttrValue::StringList(v.iter().map(|s| (*s).to_owned()).collect())
}

/// Every native rule ocib implements, keyed by kind.
pub fn native_rules() -> &'static HashMap<String, Arc<RuleSchema>> {
    static RULES: OnceLock<HashMap<String, Arc<RuleSchema>>> = OnceLock::new();
    RULES.get_or_init(|| {
        [
            native::alias::schema(),
            native::config_setting::schema(),
            native::constraint::setting_schema(),
            native::constraint::value_schema(),
            cst::container_structure_test::schema(),
            lib::copy_file::schema("_copy_file"),
            lib::copy_file::schema("_copy_xfile"),
            lib::copy_file::jq_schema(),
            lib::copy_file::copy_to_directory_schema(),
            lib::copy_file::directory_path_schema(),
            lib::expand_template::schema(),
            native::filegroup::schema(),
            native::genrule::schema(),
            go::go_binary::schema("go_binary"),
            go::go_binary::schema("go_non_executable_binary"),
            go::go_cross_binary::schema(),
            go::go_library::schema(),
            go::go_test::schema(),
            oci::oci_image::schema(),
            oci::oci_image_index::schema(),
            oci::oci_load::schema(),
            oci::oci_push::schema(),
            oci::oci_tarball::schema(),
            pkg::pkg_files::schema(),
            pkg::pkg_filegroup::schema(),
            pkg::pkg_mkdirs::schema(),
            pkg::pkg_mklink::schema(),
            pkg::pkg_tar::schema(),
            native::platform::schema(),
            native::sh_binary::schema(),
            native::sh_test::schema(),
            native::test_suite::schema(),
            lib::write_file::schema("_write_file"),
            lib::write_file::schema("_write_xfile"),
        ]
        .into_iter()
        .map(|s| (s.kind.clone(), Arc::new(s)))
        .collect()
    })
}

/// Turns a rule target into providers and actions, by kind.
pub fn analyze(ctx: &mut crate::analysis::RuleContext) -> Result<crate::analysis::Providers, crate::analysis::AnalysisError> {
    use crate::analysis::{AnalysisError, Providers};
    let kind = ctx.rule.kind.clone();
    match kind.as_str() {
        "alias" => native::alias::analyze(ctx),
        "config_setting" => native::config_setting::analyze(ctx),
        "constraint_value" => native::constraint::analyze_value(ctx),
        "constraint_setting" | "platform" | "test_suite" => Ok(Providers::default()),
        "filegroup" => native::filegroup::analyze(ctx),
        "genrule" => native::genrule::analyze(ctx),
        "_write_file" | "_write_xfile" => lib::write_file::analyze(ctx),
        "expand_template" => lib::expand_template::analyze(ctx),
        "_copy_file" | "_copy_xfile" => lib::copy_file::analyze(ctx),
        "sh_binary" => native::sh_binary::analyze(ctx),
        "sh_test" => native::sh_test::analyze(ctx),
        "go_test" => go::go_test::analyze(ctx),
        "container_structure_test" => cst::container_structure_test::analyze(ctx),
        "go_library" => go::go_library::analyze(ctx),
        "go_binary" | "go_non_executable_binary" => go::go_binary::analyze(ctx),
        "go_cross_binary" => go::go_cross_binary::analyze(ctx),
        "pkg_tar_impl" => pkg::pkg_tar::analyze(ctx),
        "pkg_files" => pkg::pkg_files::analyze(ctx),
        "pkg_mkdirs" => pkg::pkg_mkdirs::analyze(ctx),
        "pkg_mklink_impl" => pkg::pkg_mklink::analyze(ctx),
        "pkg_filegroup" => pkg::pkg_filegroup::analyze(ctx),
        "oci_image" => oci::oci_image::analyze(ctx),
        "oci_push" => oci::oci_push::analyze(ctx),
        "copy_to_directory" => oci::oci_pull::analyze(ctx),
        "oci_image_index" => oci::oci_image_index::analyze(ctx),
        "oci_tarball" => oci::oci_tarball::analyze(ctx),
        "oci_load" => oci::oci_load::analyze(ctx),
        "directory_path" => lib::copy_file::analyze_directory_path(ctx),
        "_jq_rule" => lib::copy_file::analyze_jq(ctx),
        _ if !ctx.rule.schema.typed => Err(AnalysisError::new(format!(
            "'{kind}' comes from a rule set ocib does not know, so it cannot be built"
        ))),
        _ => Err(AnalysisError::new(format!("building '{kind}' targets is not supported yet"))),
    }
}

/// A package's path as part of an exec path: `pkg` or `external/<repo>/pkg`.
pub(crate) fn package_path(pkg: &crate::graph::label::PackageId) -> String {
    let p = if pkg.repo.is_empty() { pkg.package.clone() } else { format!("external/{}/{}", pkg.repo, pkg.package) };
    p.trim_end_matches('/').to_owned()
}

/// Native rules that BUILD files see as globals (Bazel's own rules). Rule-set rules are
/// reached through `load()` of the prelude instead.
pub const BUILD_GLOBAL_RULES: &[&str] = &[
    "alias",
    "config_setting",
    "constraint_setting",
    "constraint_value",
    "filegroup",
    "genrule",
    "platform",
    "sh_binary",
    "sh_test",
    "test_suite",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_has_common_attributes() {
        for (kind, schema) in native_rules() {
            for common in ["name", "visibility", "tags", "testonly", "features", "target_compatible_with"] {
                assert!(schema.attr(common).is_some(), "{kind} lacks {common}");
            }
            assert!(schema.attr("name").is_some_and(|a| a.mandatory));
        }
    }

    #[test]
    fn starlark_rules_have_no_native_only_attributes() {
        // Bazel gives `env` only to native tests; container_structure_test does not take it.
        assert!(native_rules()["container_structure_test"].attr("env").is_none());
        assert!(native_rules()["sh_test"].attr("env").is_some());
        assert!(native_rules()["go_binary"].attr("licenses").is_none());
        assert!(native_rules()["genrule"].attr("licenses").is_some());
    }

    #[test]
    fn tests_have_test_attributes() {
        for kind in ["go_test", "sh_test", "container_structure_test"] {
            let schema = &native_rules()[kind];
            assert!(schema.test, "{kind}");
            for attr in ["size", "timeout", "flaky", "shard_count", "args"] {
                assert!(schema.attr(attr).is_some(), "{kind} lacks {attr}");
            }
        }
    }
}
