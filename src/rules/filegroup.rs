//! `filegroup`: a named set of files.
use super::{RuleSchema, SchemaBuilder};
use crate::graph::AttrType::*;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("filegroup").native()
        .attr("srcs", LabelList)
        .attr("data", LabelList)
        .attr("output_group", String)
        .build()
}
