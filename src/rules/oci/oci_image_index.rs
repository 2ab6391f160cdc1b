//! rules_oci `oci_image_index`: a multi-platform index of images.
use std::sync::Arc;

use super::actions::BuildIndex;
use crate::analysis::{AnalysisError, Providers, RuleContext};
use crate::exec::{Action, ActionKind};
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder};

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("oci_image_index")
        .mandatory("images", A::LabelList)
        .attr("platforms", A::LabelList)
        .attr("annotations", A::Label)
        .build()
}

/// `oci_image_index`: a layout holding an index over `images`, all their blobs linked in.
pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    if !ctx.labels("platforms")?.is_empty() {
        return Err(AnalysisError::new("attribute 'platforms' is not supported yet; list one image per platform in 'images'"));
    }
    let mut images = Vec::new();
    for t in ctx.deps("images")? {
        let layout = t
            .providers
            .oci_layout
            .clone()
            .ok_or_else(|| AnalysisError::new(format!("attribute 'images': '{}' is not an image", t.label)))?;
        images.push(layout);
    }
    let annotations = ctx.single_file("annotations")?;
    let out_dir = ctx.declare(&ctx.label().name.clone());
    let code = BuildIndex {
        images: images.iter().map(|i| i.exec_path.clone()).collect(),
        annotations: annotations.as_ref().map(|a| a.exec_path.clone()),
        out_dir: out_dir.exec_path.clone(),
    };
    let action = Action::new("OCIIndex", ctx.label(), ActionKind::Run(Arc::new(code)))
        .inputs(images)
        .inputs(annotations)
        .tree_output(out_dir.clone());
    ctx.register(action)?;
    Ok(Providers { files: vec![out_dir.clone()], oci_layout: Some(out_dir), declared: ctx.declared(), ..Default::default() })
}
