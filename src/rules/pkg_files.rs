//! rules_pkg `pkg_files`: files with their destination paths and attributes.
use super::{RuleSchema, SchemaBuilder, s};
use crate::graph::AttrType::*;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("pkg_files")
        .mandatory("srcs", LabelList)
        .attr("excludes", LabelList)
        .default("prefix", String, s(""))
        .default("strip_prefix", String, s(".")) // strip_prefix.files_only() is the default
        .default("attributes", String, s("{}"))
        .attr("renames", LabelKeyedStringDict)
        .attr("include_runfiles", Bool)
        .attr("package_variables", Label)
        .build()
}
