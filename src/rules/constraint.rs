//! `constraint_setting` and `constraint_value`: the vocabulary of platforms.
use super::{RuleSchema, SchemaBuilder};
use crate::graph::AttrType::*;

pub fn setting_schema() -> RuleSchema {
    SchemaBuilder::new("constraint_setting").native().attr("default_constraint_value", Label).build()
}

pub fn value_schema() -> RuleSchema {
    SchemaBuilder::new("constraint_value").native().mandatory("constraint_setting", Label).build()
}
