//! `platform`: a named set of constraint values.
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder};

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("platform")
        .manual_by_default()
        .native()
        .attr("constraint_values", A::LabelList)
        .attr("parents", A::LabelList)
        .attr("exec_properties", A::StringDict)
        .attr("flags", A::StringList)
        .attr("remote_execution_properties", A::String)
        .attr("required_settings", A::LabelList)
        .attr("missing_toolchain_error", A::String)
        .build()
}
