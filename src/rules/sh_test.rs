//! `sh_test`: a shell script run by `ocib test`.
use super::{RuleSchema, SchemaBuilder};
use crate::graph::AttrType as A;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("sh_test")
        .native()
        .test()
        .attr("env", A::StringDict)
        .attr("env_inherit", A::StringList)
        .mandatory("srcs", A::LabelList)
        .attr("deps", A::LabelList)
        .attr("data", A::LabelList)
        .build()
}
