//! bazel-lib `copy_file`, `copy_to_directory`, `directory_path` and `jq`: helpers the rule sets'
//! macros create (e.g. rules_oci's `<name>_index_json`).
use super::{RuleSchema, SchemaBuilder, b, s};
use crate::graph::AttrType::*;

/// `_copy_file`, or `_copy_xfile` for an executable copy.
pub fn schema(kind: &str) -> RuleSchema {
    SchemaBuilder::new(kind)
        .mandatory("src", Label)
        .mandatory("out", Output)
        .mandatory("is_executable", Bool)
        .mandatory("allow_symlink", Bool)
        .build()
}

/// bazel-lib `jq` (rule class `_jq_rule`): rules_oci's `<name>.digest` target.
pub fn jq_schema() -> RuleSchema {
    SchemaBuilder::new("_jq_rule")
        .attr("srcs", LabelList)
        .attr("filter", String)
        .attr("filter_file", Label)
        .attr("args", StringList)
        .mandatory("out", Output)
        .attr("data", LabelList)
        .default("expand_args", Bool, b(false))
        .build()
}

pub fn copy_to_directory_schema() -> RuleSchema {
    SchemaBuilder::new("copy_to_directory")
        .attr("srcs", LabelList)
        .attr("out", String)
        .default("root_paths", StringList, super::sl(&["."]))
        .attr("include_external_repositories", StringList)
        .attr("include_srcs_packages", StringList)
        .attr("exclude_srcs_packages", StringList)
        .attr("include_srcs_patterns", StringList)
        .attr("exclude_srcs_patterns", StringList)
        .attr("replace_prefixes", StringDict)
        .default("hardlink", String, s("auto"))
        .attr("preserve_mtime", Bool)
        .default("add_directory_to_runfiles", Bool, b(true))
        .attr("allow_overwrites", Bool)
        .attr("verbose", Bool)
        .build()
}

pub fn directory_path_schema() -> RuleSchema {
    SchemaBuilder::new("directory_path")
        .mandatory("directory", Label)
        .mandatory("path", String)
        .build()
}
