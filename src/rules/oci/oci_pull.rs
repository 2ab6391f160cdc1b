//! The target of a repository `oci_pull` declared (a `copy_to_directory` in rules_oci's
//! generated BUILD file): an image layout fetched from the registry by an action, so it lands
//! in the content-addressed store and later builds work offline.

use std::sync::Arc;

use super::actions::PullImage;
use crate::analysis::{AnalysisError, Providers, RuleContext};
use crate::exec::{Action, ActionKind};
use crate::graph::AttrType as A;
use crate::graph::Raw;
use crate::graph::schema::{RuleSchema, SchemaBuilder};
use crate::rules::{b, s};
use crate::workspace::RepoSource;

/// aspect_bazel_lib's `copy_to_directory`, as far as the BUILD file rules_oci generates for a
/// pulled image uses it.
pub fn copy_to_directory_schema() -> RuleSchema {
    SchemaBuilder::new("copy_to_directory")
        .attr("srcs", A::LabelList)
        .attr("out", A::String)
        .default("root_paths", A::StringList, crate::rules::sl(&["."]))
        .attr("include_external_repositories", A::StringList)
        .attr("include_srcs_packages", A::StringList)
        .attr("exclude_srcs_packages", A::StringList)
        .attr("include_srcs_patterns", A::StringList)
        .attr("exclude_srcs_patterns", A::StringList)
        .attr("replace_prefixes", A::StringDict)
        .default("hardlink", A::String, s("auto"))
        .attr("preserve_mtime", A::Bool)
        .default("add_directory_to_runfiles", A::Bool, b(true))
        .attr("allow_overwrites", A::Bool)
        .attr("verbose", A::Bool)
        .build()
}

pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let repo = ctx.label().repo.clone();
    let spec = match ctx.analysis.loader.workspace().repos.get(&repo).map(|r| &r.source) {
        Some(RepoSource::Generated { pull: Some(spec), .. }) => spec.clone(),
        _ => return Err(AnalysisError::new("copy_to_directory is only supported for images declared with oci_pull")),
    };
    let text = |k: &str| match spec.attrs.get(k) {
        Some(Raw::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    let image = match (text("image"), text("registry"), text("repository")) {
        (Some(i), _, _) => i,
        (None, Some(r), Some(p)) => format!("{r}/{p}"),
        _ => return Err(AnalysisError::new(format!("oci_pull({}): no image", spec.name))),
    };
    let reference = match (text("digest"), text("tag")) {
        (Some(d), _) => format!("{}@{d}", image.split('@').next().unwrap_or(&image)),
        (None, Some(t)) => format!("{image}:{t}"),
        (None, None) => image,
    };
    let layout = ctx.declare("layout");
    let code = PullImage { reference, platform: spec.platform.clone(), out_dir: layout.exec_path.clone() };
    let mut action = Action::new("OCIPull", ctx.label(), ActionKind::Run(Arc::new(code))).tree_output(layout.clone());
    action.progress = format!("Pulling {}", spec.name);
    ctx.register(action)?;
    Ok(Providers { files: vec![layout.clone()], oci_layout: Some(layout), declared: ctx.declared(), ..Default::default() })
}
