//! rules_oci 2.x `oci_load`: loads an image into a container engine at `ocib run` time.
use super::{RuleSchema, SchemaBuilder, s};
use crate::graph::AttrType as A;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("oci_load")
        .executable()
        .mandatory("image", A::Label)
        .mandatory("repo_tags", A::Label)
        .default("format", A::String, s("docker"))
        .attr("loader", A::Label)
        .build()
}
