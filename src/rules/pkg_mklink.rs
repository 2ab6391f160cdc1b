//! rules_pkg `pkg_mklink` (rule class `pkg_mklink_impl`): a symbolic link in a package.
use super::{RuleSchema, SchemaBuilder, s};
use crate::graph::AttrType::*;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("pkg_mklink_impl")
        .mandatory("link_name", String)
        .mandatory("target", String)
        .default("attributes", String, s("{}"))
        .build()
}
