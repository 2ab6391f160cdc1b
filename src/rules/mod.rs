//! Rule sets: one folder per set (`native`, `lib`, `go`, `pkg`, `oci`, `cst`, `apko`, `distroless`), each kind's
//! schema, analysis and in-process actions in one file of its set, and each set's `KINDS`
//! table. This module joins the tables into the [`registry`] the command layer injects into
//! loading and analysis.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use crate::analysis::{AnalysisError, AnalyzeFn, Providers, RuleContext, RuleImpls};
use crate::exec::action::{FromParams, InProcessKinds};
use crate::graph::AttrValue;
use crate::graph::schema::RuleKinds;
pub use crate::graph::schema::{AttrSpec, RuleSchema, SchemaBuilder};

pub mod apko;
pub mod cst;
pub mod distroless;
pub mod go;
pub mod junit;
pub mod lib;
pub mod native;
pub mod oci;
pub mod pkg;
pub mod starlark;
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

/// One rule kind: its schema and its analysis. Each rule set lists its kinds in a `KINDS`
/// table; adding a kind is one file and one row there.
pub struct Kind {
    pub schema: fn() -> RuleSchema,
    pub analyze: AnalyzeFn,
}

/// Analysis of kinds that only carry attributes (`platform`, `constraint_setting`,
/// `test_suite`): no providers, no actions.
pub(crate) fn no_providers(_: &mut RuleContext) -> Result<Providers, AnalysisError> {
    Ok(Providers::default())
}

/// Every rule set's kind table.
pub const RULE_SETS: &[&[Kind]] =
    &[native::KINDS, lib::KINDS, go::KINDS, pkg::KINDS, oci::KINDS, cst::KINDS, apko::KINDS, distroless::KINDS];

/// Every native rule kind ocib implements: what the command layer injects into loading
/// (schemas) and analysis (analysis functions).
pub struct Registry {
    pub kinds: RuleKinds,
    pub analyzers: RuleImpls,
}

/// The registry of all rule sets, built once.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        // Go module repositories get their BUILD files from gazelle's rules, which know Go.
        crate::workspace::gomod::set_build_file_generator(go::gazelle::generate);
        let mut kinds = RuleKinds { schemas: HashMap::new(), build_globals: BUILD_GLOBAL_RULES.iter().map(|k| (*k).to_owned()).collect() };
        let mut analyzers = RuleImpls::new();
        for kind in RULE_SETS.iter().flat_map(|set| set.iter()) {
            let schema = (kind.schema)();
            analyzers.insert(schema.kind.clone(), kind.analyze);
            kinds.schemas.insert(schema.kind.clone(), Arc::new(schema));
        }
        analyzers.insert(crate::analysis::STARLARK_RULE_IMPL.to_owned(), starlark::analyze);
        Registry { kinds, analyzers }
    })
}

/// Files outside the workspace whose status stands for what some actions run (their
/// identity is cached by it): the Go toolchain's `go` binary. A stored build answer
/// (`cli/build_answer.rs`) holds only while these are unchanged.
pub fn tool_files() -> Vec<std::path::PathBuf> {
    go::actions::GoToolchain::go_binary().into_iter().collect()
}

/// Every in-process action kind `ocib action` can rebuild from its params (the command layer
/// hands this table to `exec`). Fetches and tests are not here: they always run on the client
/// (`InProcess::remotable`).
pub fn in_process_kinds() -> InProcessKinds {
    use crate::exec::action::from_json;
    let kinds: [(&'static str, FromParams); 22] = [
        ("StatusD", from_json::<distroless::dpkg::StatusD>),
        ("Status", from_json::<distroless::dpkg::Status>),
        ("WriteMembers", from_json::<distroless::files::WriteMembers>),
        ("Flatten", from_json::<distroless::flatten::Flatten>),
        ("CaCerts", from_json::<distroless::cacerts::CaCerts>),
        ("Locale", from_json::<distroless::cacerts::Locale>),
        ("ExtractMember", from_json::<distroless::deb_import::ExtractMember>),
        ("GoStdlib", go::actions::from_params::<go::actions::GoStdlib>),
        ("GoCompile", go::actions::from_params::<go::actions::GoCompile>),
        ("GoTestBinary", go::actions::from_params::<go::actions::GoTestBinary>),
        ("GoLink", go::actions::from_params::<go::actions::GoLink>),
        ("DescribeLayer", from_json::<oci::actions::DescribeLayer>),
        ("BuildImage", from_json::<oci::actions::BuildImage>),
        ("BuildIndex", from_json::<oci::actions::BuildIndex>),
        ("WriteTarball", from_json::<oci::actions::WriteTarball>),
        ("CopyFromDirectory", from_json::<oci::actions::CopyFromDirectory>),
        ("JqPath", from_json::<oci::actions::JqPath>),
        ("BuildApkoImage", from_json::<apko::apko_image::BuildApkoImage>),
        ("Yq", from_json::<lib::yq::Yq>),
        ("CopyFile", from_json::<lib::files::CopyFile>),
        ("ExpandTemplate", from_json::<lib::files::ExpandTemplate>),
        ("PkgTar", from_json::<pkg::tar_action::PkgTar>),
    ];
    kinds.into_iter().collect()
}

/// Every native rule ocib implements, keyed by kind.
pub fn native_rules() -> &'static HashMap<String, Arc<RuleSchema>> {
    &registry().kinds.schemas
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

    /// README.md's "Supported rules" table names every rule a BUILD file can use and every
    /// attribute its schema takes (supported or listed as having no effect), so the table
    /// cannot fall behind the schemas it is derived from.
    #[test]
    fn the_readme_rules_table_covers_every_schema() {
        let readme = include_str!("../../README.md");
        let start = readme.find("## Supported rules").expect("README has a Supported rules section");
        let section = &readme[start..];
        let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
        let words: std::collections::HashSet<&str> =
            section.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| !w.is_empty()).collect();
        let common = crate::graph::schema::SchemaBuilder::new("x").build();
        // Hidden kinds that rules_oci/skylib macros create under the public name.
        fn public(kind: &str) -> &str {
            match kind {
                "pkg_tar_impl" => "pkg_tar",
                "pkg_mklink_impl" => "pkg_mklink",
                "_copy_file" | "_copy_xfile" => "copy_file",
                "_write_file" | "_write_xfile" => "write_file",
                "_jq_rule" => "jq",
                "_yq_rule" => "yq",
                "_apko_image" => "apko_image",
                "go_non_executable_binary" => "go_binary",
                other => other,
            }
        }
        let implied = ["args", "size", "timeout", "flaky", "shard_count", "local", "output_licenses", "licenses", "distribs"];
        for (kind, schema) in native_rules() {
            let name = public(kind);
            assert!(section.contains(&format!("`{name}`")), "README's Supported rules lacks `{name}`");
            for attr in &schema.attrs {
                if common.attr(&attr.name).is_none() && !implied.contains(&attr.name.as_str()) {
                    assert!(words.contains(attr.name.as_str()), "README's Supported rules lacks {name}'s attribute `{}`", attr.name);
                }
            }
        }
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
