//! `sh_binary`: a shell script as an executable target.
use super::{RuleSchema, SchemaBuilder};
use crate::graph::AttrType::*;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("sh_binary")
        .native()
        .executable()
        .attr("env", StringDict)
        .mandatory("srcs", LabelList)
        .attr("deps", LabelList)
        .attr("data", LabelList)
        .attr("env_inherit", StringList)
        .build()
}
