//! rules_oci `oci_image`: an OCI image layout built from a base and layer tars.
use super::{RuleSchema, SchemaBuilder, s};
use crate::graph::AttrType::*;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("oci_image")
        .attr("base", Label)
        .attr("tars", LabelList)
        .attr("entrypoint", Label)
        .attr("cmd", Label)
        .attr("env", Label)
        .attr("user", String)
        .attr("workdir", String)
        .attr("exposed_ports", Label)
        .attr("volumes", Label)
        .attr("labels", Label)
        .attr("annotations", Label)
        .attr("os", String)
        .attr("architecture", String)
        .attr("variant", String)
        .attr("created", Label)
        .default("resource_set", String, s("default"))
        .build()
}
