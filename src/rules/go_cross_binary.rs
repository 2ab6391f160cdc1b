//! rules_go `go_cross_binary`: a go_binary built for another platform.
use super::{RuleSchema, SchemaBuilder, s};
use crate::graph::AttrType::*;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("go_cross_binary")
        .executable()
        .mandatory("target", Label)
        .attr("platform", Label)
        .attr("sdk_version", String)
        .default("compilation_mode", String, s(""))
        .build()
}
