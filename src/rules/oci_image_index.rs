//! rules_oci `oci_image_index`: a multi-platform index of images.
use super::{RuleSchema, SchemaBuilder};
use crate::graph::AttrType as A;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("oci_image_index")
        .mandatory("images", A::LabelList)
        .attr("platforms", A::LabelList)
        .attr("annotations", A::Label)
        .build()
}
