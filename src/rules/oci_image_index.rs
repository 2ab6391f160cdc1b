//! rules_oci `oci_image_index`: a multi-platform index of images.
use super::{RuleSchema, SchemaBuilder};
use crate::graph::AttrType::*;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("oci_image_index")
        .mandatory("images", LabelList)
        .attr("platforms", LabelList)
        .attr("annotations", Label)
        .build()
}
