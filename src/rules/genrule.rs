//! `genrule`: a bash command that turns declared inputs into declared outputs.
use super::{RuleSchema, SchemaBuilder, b, i};
use crate::graph::AttrType::*;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("genrule").native()
        .attr("srcs", LabelList)
        .mandatory("outs", OutputList)
        .attr("cmd", String)
        .attr("cmd_bash", String)
        .attr("cmd_bat", String)
        .attr("cmd_ps", String)
        .attr("tools", LabelList)
        .attr("exec_tools", LabelList)
        .attr("toolchains", LabelList)
        .attr("message", String)
        .attr("output_to_bindir", Bool)
        .attr("executable", Bool)
        .attr("local", Bool)
        .default("stamp", Int, i(0))
        .default("heuristic_label_expansion", Bool, b(false))
        .build()
}
