//! `container_structure_test`: file, metadata and command tests against an image.
use super::{RuleSchema, SchemaBuilder, s};
use crate::graph::AttrType::*;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("container_structure_test")
        .test()
        .attr("image", Label)
        .mandatory("configs", LabelList)
        .default("driver", String, s("docker"))
        .default("platform", String, s("linux/amd64"))
        .build()
}
