//! rules_oci `oci_push`: pushes an image to a registry at `ocib run` time.
use crate::rules::{RuleSchema, SchemaBuilder};
use crate::analysis::{AnalysisError, Providers, RuleContext, RunAction};
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

/// `oci_push`: nothing to build but the image; `ocib run` (or `ocib push`) pushes it.
pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let label = ctx.labels("image")?.into_iter().next().ok_or_else(|| AnalysisError::new("oci_push needs 'image'"))?;
    let target = ctx.dep(&label)?;
    let layout = target.providers.oci_layout.clone().ok_or_else(|| AnalysisError::new(format!("attribute 'image': '{label}' is not an image")))?;
    let repository = Some(ctx.string("repository")?).filter(|r| !r.is_empty());
    if let Some(r) = &repository {
        // rules_oci rejects a tag or digest here at analysis.
        let without_placeholders = r.replace(['{', '}'], "");
        crate::oci::push::check_repository(&without_placeholders).map_err(|e| AnalysisError::new(format!("attribute 'repository': {e:#}")))?;
    }
    let repository_file = ctx.single_file("repository_file")?;
    let remote_tags = ctx.single_file("remote_tags")?;
    let run = RunAction::Push { layout, repository, repository_file, remote_tags, stamp: ctx.config().stamp };
    Ok(Providers { run: Some(run), ..Default::default() })
}
