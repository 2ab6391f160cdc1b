//! `platform`: a named set of constraint values.
use super::{RuleSchema, SchemaBuilder};
use crate::graph::AttrType::*;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("platform").native()
        .attr("constraint_values", LabelList)
        .attr("parents", LabelList)
        .attr("exec_properties", StringDict)
        .attr("flags", StringList)
        .attr("remote_execution_properties", String)
        .attr("required_settings", LabelList)
        .attr("missing_toolchain_error", String)
        .build()
}
