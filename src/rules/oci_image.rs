//! rules_oci `oci_image`: an OCI image layout built from a base and layer tars.
use super::{RuleSchema, SchemaBuilder, s};
use crate::graph::AttrType as A;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("oci_image")
        .attr("base", A::Label)
        .attr("tars", A::LabelList)
        .attr("entrypoint", A::Label)
        .attr("cmd", A::Label)
        .attr("env", A::Label)
        .attr("user", A::String)
        .attr("workdir", A::String)
        .attr("exposed_ports", A::Label)
        .attr("volumes", A::Label)
        .attr("labels", A::Label)
        .attr("annotations", A::Label)
        .attr("os", A::String)
        .attr("architecture", A::String)
        .attr("variant", A::String)
        .attr("created", A::Label)
        .default("resource_set", A::String, s("default"))
        .build()
}
