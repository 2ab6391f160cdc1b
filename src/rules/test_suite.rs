//! `test_suite`: a named set of tests.
use super::{RuleSchema, SchemaBuilder};
use crate::graph::AttrType::*;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("test_suite").native().attr("tests", LabelList).build()
}
