//! rules_oci 2.x `oci_load`: loads an image into a container engine at `ocib run` time.
use super::{RuleSchema, SchemaBuilder, s};
use crate::graph::AttrType::*;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("oci_load")
        .executable()
        .mandatory("image", Label)
        .mandatory("repo_tags", Label)
        .default("format", String, s("docker"))
        .attr("loader", Label)
        .build()
}
