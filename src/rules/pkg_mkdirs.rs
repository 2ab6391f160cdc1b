//! rules_pkg `pkg_mkdirs`: empty directories in a package.
use super::{RuleSchema, SchemaBuilder, s};
use crate::graph::AttrType::*;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("pkg_mkdirs")
        .mandatory("dirs", StringList)
        .default("attributes", String, s("{}"))
        .build()
}
