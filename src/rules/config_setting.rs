//! `config_setting`: a condition `select()` keys on.
use super::{RuleSchema, SchemaBuilder};
use crate::graph::AttrType::*;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("config_setting").native()
        .attr("values", StringDict)
        .attr("define_values", StringDict)
        .attr("flag_values", LabelKeyedStringDict)
        .attr("constraint_values", LabelList)
        .build()
}
