//! `sh_test`: a shell script run by `ocib test`.
use super::{RuleSchema, SchemaBuilder};
use crate::graph::AttrType::*;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("sh_test")
        .native()
        .test()
        .attr("env", StringDict)
        .attr("env_inherit", StringList)
        .mandatory("srcs", LabelList)
        .attr("deps", LabelList)
        .attr("data", LabelList)
        .build()
}
