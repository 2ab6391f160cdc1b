//! rules_oci `oci_push`: pushes an image to a registry at `ocib run` time.
use super::{RuleSchema, SchemaBuilder};
use crate::graph::AttrType as A;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("oci_push")
        .executable()
        .mandatory("image", A::Label)
        .attr("repository", A::String)
        .attr("repository_file", A::Label)
        .attr("remote_tags", A::Label)
        .build()
}
