//! rules_pkg `pkg_filegroup`: a group of pkg_files/pkg_mklink/pkg_mkdirs under a prefix.
use super::{RuleSchema, SchemaBuilder, s};
use crate::graph::AttrType::*;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("pkg_filegroup")
        .mandatory("srcs", LabelList)
        .default("prefix", String, s(""))
        .attr("package_variables", Label)
        .build()
}
