//! bazel-lib `copy_file`, `copy_to_directory`, `directory_path` and `jq`: helpers the rule sets'
//! macros create (e.g. rules_oci's `<name>_index_json`).
use std::sync::Arc;

use super::files::CopyFile;
use crate::analysis::{AnalysisError, Providers, RuleContext};
use crate::exec::{Action, ActionKind};
use crate::graph::AttrType as A;
use crate::rules::oci::actions::{CopyFromDirectory, JqPath};
use crate::rules::{RuleSchema, SchemaBuilder, b};

/// `_copy_file`, or `_copy_xfile` for an executable copy.
pub fn schema(kind: &str) -> RuleSchema {
    SchemaBuilder::new(kind)
        .mandatory("src", A::Label)
        .mandatory("out", A::Output)
        .mandatory("is_executable", A::Bool)
        .mandatory("allow_symlink", A::Bool)
        .build()
}

/// `directory_path`: names a file inside a directory output (for `copy_file`).
pub fn analyze_directory_path(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let label = ctx.labels("directory")?.into_iter().next().ok_or_else(|| AnalysisError::new("directory_path needs 'directory'"))?;
    let target = ctx.dep(&label)?;
    let dir = target
        .providers
        .oci_layout
        .clone()
        .or_else(|| target.providers.files.first().cloned())
        .ok_or_else(|| AnalysisError::new(format!("attribute 'directory': '{label}' produces no directory")))?;
    let path = ctx.string("path")?;
    Ok(Providers { directory_path: Some((dir, path)), ..Default::default() })
}

/// `_jq_rule` with the path filters rules_oci uses.
pub fn analyze_jq(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let srcs = ctx.files("srcs")?;
    let [src] = srcs.as_slice() else {
        return Err(AnalysisError::new(format!("attribute 'srcs': ocib's jq takes exactly one input, got {}", srcs.len())));
    };
    let out = ctx.outputs_of("out")?.into_iter().next().ok_or_else(|| AnalysisError::new("jq needs 'out'"))?;
    let args = ctx.string_list("args")?;
    let raw = args.iter().any(|a| a == "--raw-output" || a == "-r");
    let code = JqPath { src: src.exec_path.clone(), filter: ctx.string("filter")?, raw, out: out.exec_path.clone() };
    ctx.register(Action::new("Jq", ctx.label(), ActionKind::Run(Arc::new(code))).inputs([src.clone()]).output(out.clone()))?;
    Ok(Providers { files: vec![out], declared: ctx.declared(), ..Default::default() })
}

/// bazel-lib `jq` (rule class `_jq_rule`): rules_oci's `<name>.digest` target.
pub fn jq_schema() -> RuleSchema {
    SchemaBuilder::new("_jq_rule")
        .attr("srcs", A::LabelList)
        .attr("filter", A::String)
        .attr("filter_file", A::Label)
        .attr("args", A::StringList)
        .mandatory("out", A::Output)
        .attr("data", A::LabelList)
        .default("expand_args", A::Bool, b(false))
        .build()
}

pub fn directory_path_schema() -> RuleSchema {
    SchemaBuilder::new("directory_path").mandatory("directory", A::Label).mandatory("path", A::String).build()
}

/// `copy_file`: `src`'s single file (or a `directory_path` into a directory) at `out`.
pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let out = ctx.outputs_of("out")?.into_iter().next().ok_or_else(|| AnalysisError::new("copy_file needs 'out'"))?;
    let executable = ctx.bool("is_executable")?;
    let src_label = ctx.labels("src")?.into_iter().next().ok_or_else(|| AnalysisError::new("copy_file needs 'src'"))?;
    let src_target = ctx.dep(&src_label)?;
    let action = if let Some((dir, path)) = src_target.providers.directory_path.clone() {
        let code = CopyFromDirectory { dir: dir.exec_path.clone(), path, out: out.exec_path.clone() };
        Action::new("CopyFile", ctx.label(), ActionKind::Run(Arc::new(code))).inputs([dir])
    } else {
        let src = ctx.single_file("src")?.ok_or_else(|| AnalysisError::new("copy_file needs 'src'"))?;
        let code = CopyFile { src: src.exec_path.clone(), out: out.exec_path.clone() };
        Action::new("CopyFile", ctx.label(), ActionKind::Run(Arc::new(code))).inputs([src])
    };
    let action = if executable { action.executable_output(out.clone()) } else { action.output(out.clone()) };
    ctx.register(action)?;
    Ok(Providers { files: vec![out.clone()], executable: executable.then_some(out), declared: ctx.declared(), ..Default::default() })
}
