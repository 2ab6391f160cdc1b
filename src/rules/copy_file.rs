//! bazel-lib `copy_file`, `copy_to_directory`, `directory_path` and `jq`: helpers the rule sets'
//! macros create (e.g. rules_oci's `<name>_index_json`).
use std::sync::Arc;

use super::{RuleSchema, SchemaBuilder, b, s};
use crate::actions::files::CopyFile;
use crate::analysis::{AnalysisError, Providers, RuleContext};
use crate::exec::{Action, ActionKind};
use crate::graph::AttrType as A;

/// `_copy_file`, or `_copy_xfile` for an executable copy.
pub fn schema(kind: &str) -> RuleSchema {
    SchemaBuilder::new(kind)
        .mandatory("src", A::Label)
        .mandatory("out", A::Output)
        .mandatory("is_executable", A::Bool)
        .mandatory("allow_symlink", A::Bool)
        .build()
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

pub fn copy_to_directory_schema() -> RuleSchema {
    SchemaBuilder::new("copy_to_directory")
        .attr("srcs", A::LabelList)
        .attr("out", A::String)
        .default("root_paths", A::StringList, super::sl(&["."]))
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

pub fn directory_path_schema() -> RuleSchema {
    SchemaBuilder::new("directory_path")
        .mandatory("directory", A::Label)
        .mandatory("path", A::String)
        .build()
}

/// `copy_file`: `src`'s single file at `out`.
pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let src = ctx.single_file("src")?.ok_or_else(|| AnalysisError::new("copy_file needs 'src'"))?;
    let out = ctx.outputs_of("out")?.into_iter().next().ok_or_else(|| AnalysisError::new("copy_file needs 'out'"))?;
    let executable = ctx.bool("is_executable")?;
    let code = CopyFile { src: src.exec_path.clone(), out: out.exec_path.clone() };
    let action = Action::new("CopyFile", ctx.label(), ActionKind::Run(Arc::new(code))).inputs([src]);
    let action = if executable { action.executable_output(out.clone()) } else { action.output(out.clone()) };
    ctx.register(action)?;
    Ok(Providers { files: vec![out.clone()], executable: executable.then_some(out), declared: ctx.declared(), ..Default::default() })
}
