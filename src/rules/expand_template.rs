//! bazel-lib `expand_template`: substitutions in a
//! template, optionally from the workspace status when stamping.
use super::{RuleSchema, SchemaBuilder, i};
use crate::graph::AttrType::*;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("expand_template")
        .mandatory("template", Label)
        .attr("out", Output)
        .attr("data", LabelList)
        .attr("substitutions", StringDict)
        .attr("stamp_substitutions", StringDict)
        .attr("is_executable", Bool)
        .default("stamp", Int, i(-1))
        .build()
}
