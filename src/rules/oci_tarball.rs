//! rules_oci 1.x `oci_tarball`: a `docker load`-able tarball as the default output.
use super::{RuleSchema, SchemaBuilder, s};
use crate::graph::AttrType::*;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("oci_tarball")
        .executable()
        .mandatory("image", Label)
        .mandatory("repo_tags", Label)
        .default("format", String, s("docker"))
        .attr("loader", Label)
        .build()
}
