//! `test_suite`: a named set of tests.
use crate::rules::{RuleSchema, SchemaBuilder};
use crate::graph::AttrType as A;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("test_suite").native().attr("tests", A::LabelList).build()
}
