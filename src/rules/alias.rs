//! `alias`: another name for a target.
use super::{RuleSchema, SchemaBuilder};
use crate::graph::AttrType::*;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("alias").mandatory("actual", Label).build()
}
