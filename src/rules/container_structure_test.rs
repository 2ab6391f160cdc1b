//! `container_structure_test`: file, metadata and command tests against an image.
use super::{RuleSchema, SchemaBuilder, s};
use crate::graph::AttrType as A;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("container_structure_test")
        .test()
        .attr("image", A::Label)
        .mandatory("configs", A::LabelList)
        .default("driver", A::String, s("docker"))
        .default("platform", A::String, s("linux/amd64"))
        .build()
}
