//! rules_oci `oci_push`: pushes an image to a registry at `ocib run` time.
use super::{RuleSchema, SchemaBuilder};
use crate::graph::AttrType::*;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("oci_push")
        .executable()
        .mandatory("image", Label)
        .attr("repository", String)
        .attr("repository_file", Label)
        .attr("remote_tags", Label)
        .build()
}
