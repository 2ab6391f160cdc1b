//! rules_oci 1.x `oci_tarball`: a `docker load`-able tarball as the default output.
use std::sync::Arc;

use super::actions::WriteTarball;
use crate::analysis::{AnalysisError, Providers, RuleContext, RunAction};
use crate::exec::{Action, ActionKind};
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder, s};

pub fn schema() -> RuleSchema {
    tarball_schema("oci_tarball")
}

/// The attributes oci_tarball (1.x) and oci_load (2.x) share: rules_oci renamed the rule.
pub fn tarball_schema(kind: &str) -> RuleSchema {
    SchemaBuilder::new(kind)
        .executable()
        .mandatory("image", A::Label)
        .mandatory("repo_tags", A::Label)
        .default("format", A::String, s("docker"))
        .attr("loader", A::Label)
        .build()
}

/// The tarball action both oci_tarball (1.x, default output) and oci_load (2.x, output group
/// `tarball`) use: `<name>/tarball.tar`.
pub(super) fn tarball(ctx: &mut RuleContext) -> Result<(crate::exec::Artifact, RunAction), AnalysisError> {
    let image = ctx.labels("image")?.into_iter().next().ok_or_else(|| AnalysisError::new("needs 'image'"))?;
    let target = ctx.dep(&image)?;
    let layout =
        target.providers.oci_layout.clone().ok_or_else(|| AnalysisError::new(format!("attribute 'image': '{image}' is not an image")))?;
    let tags = ctx.single_file("repo_tags")?.ok_or_else(|| AnalysisError::new("needs 'repo_tags'"))?;
    let format = ctx.string("format")?;
    if format != "docker" && format != "oci" {
        return Err(AnalysisError::new(format!("attribute 'format': '{format}' must be \"docker\" or \"oci\"")));
    }
    let out = ctx.declare(&format!("{}/tarball.tar", ctx.label().name));
    let code = WriteTarball { image: layout.exec_path.clone(), repo_tags: tags.exec_path.clone(), format, out: out.exec_path.clone() };
    let action =
        Action::new("OCITarball", ctx.label(), ActionKind::Run(Arc::new(code))).inputs([layout.clone(), tags.clone()]).output(out.clone());
    ctx.register(action)?;
    let loader = ctx.single_file("loader")?;
    Ok((out, RunAction::LoadImage { layout, repo_tags: tags, loader }))
}

/// rules_oci 1.x: `bazel build :image_tarball` builds the tarball.
pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let (out, run) = tarball(ctx)?;
    let mut output_groups = std::collections::BTreeMap::new();
    output_groups.insert("tarball".to_owned(), vec![out.clone()]);
    Ok(Providers { files: vec![out], output_groups, run: Some(run), declared: ctx.declared(), ..Default::default() })
}
