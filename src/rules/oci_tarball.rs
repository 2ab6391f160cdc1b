//! rules_oci 1.x `oci_tarball`: a `docker load`-able tarball as the default output.
use super::{RuleSchema, SchemaBuilder, s};
use crate::graph::AttrType as A;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("oci_tarball")
        .executable()
        .mandatory("image", A::Label)
        .mandatory("repo_tags", A::Label)
        .default("format", A::String, s("docker"))
        .attr("loader", A::Label)
        .build()
}
