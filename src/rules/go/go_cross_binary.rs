//! rules_go `go_cross_binary`: a go_binary built for another platform.
use std::sync::Arc;

use crate::analysis::{AnalysisError, Providers, RuleContext};
use crate::exec::{Action, ActionKind};
use crate::graph::AttrType as A;
use crate::rules::lib::files::CopyFile;
use crate::rules::{RuleSchema, SchemaBuilder, s};

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("go_cross_binary")
        .executable()
        .mandatory("target", A::Label)
        .attr("platform", A::Label)
        .attr("sdk_version", A::String)
        .default("compilation_mode", A::String, s(""))
        .build()
}

/// `go_cross_binary`: `target` built for `platform` (`@io_bazel_rules_go//go/toolchain:<os>_<arch>`),
/// copied to `<pkg>/<name>`.
pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let platform = ctx.labels("platform")?.into_iter().next().ok_or_else(|| AnalysisError::new("go_cross_binary needs 'platform'"))?;
    let (goos, goarch) =
        platform.name.split_once('_').map(|(o, a)| (o.to_owned(), a.trim_end_matches("_cgo").to_owned())).ok_or_else(|| {
            AnalysisError::new(format!(
                "attribute 'platform': cannot tell the OS and architecture of '{platform}' (expected a name like linux_arm64)"
            ))
        })?;
    let target = ctx.labels("target")?.into_iter().next().ok_or_else(|| AnalysisError::new("go_cross_binary needs 'target'"))?;
    let saved = ctx.analysis.config.clone();
    ctx.analysis.config.goos = goos;
    ctx.analysis.config.goarch = goarch;
    let built = ctx.dep(&target);
    ctx.analysis.config = saved;
    let built = built?;
    let exe = built
        .providers
        .executable
        .clone()
        .or_else(|| built.providers.files.first().cloned())
        .ok_or_else(|| AnalysisError::new(format!("attribute 'target': '{target}' produces no binary")))?;
    let out = ctx.declare(&ctx.label().name.clone());
    let code = CopyFile { src: exe.exec_path.clone(), out: out.exec_path.clone() };
    ctx.register(Action::new("GoCrossBinary", ctx.label(), ActionKind::Run(Arc::new(code))).inputs([exe]).executable_output(out.clone()))?;
    Ok(Providers { files: vec![out.clone()], executable: Some(out), declared: ctx.declared(), ..Default::default() })
}
