//! `test_suite`: a named set of tests.
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder};

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("test_suite").native().attr("tests", A::LabelList).build()
}
