//! bazel-lib `expand_template`: substitutions in a
//! template, optionally from the workspace status when stamping.
use std::sync::Arc;

use super::files::ExpandTemplate;
use crate::analysis::{AnalysisError, Providers, RuleContext};
use crate::exec::{Action, ActionKind};
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder, i};

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("expand_template")
        .mandatory("template", A::Label)
        .attr("out", A::Output)
        .attr("data", A::LabelList)
        .attr("substitutions", A::StringDict)
        .attr("stamp_substitutions", A::StringDict)
        .attr("is_executable", A::Bool)
        .default("stamp", A::Int, i(-1))
        .build()
}

/// Expands the template into `out` (default: the template's basename for a source template,
/// else `<name>.txt`), stamping when `stamp` (or `--stamp` with stamp = -1) says so.
pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let template = ctx.single_file("template")?.ok_or_else(|| AnalysisError::new("expand_template needs 'template'"))?;
    let out = match ctx.outputs_of("out")?.into_iter().next() {
        Some(o) => o,
        None if template.is_source() => ctx.declare(template.basename()),
        None => ctx.declare(&format!("{}.txt", ctx.label().name)),
    };
    let stamp = match ctx.int("stamp")? {
        1 => true,
        -1 => ctx.config().stamp,
        _ => false,
    };
    let data = ctx.files("data")?;
    let substitutions = ctx.string_dict("substitutions")?;
    let stamp_substitutions = if stamp { ctx.string_dict("stamp_substitutions")? } else { vec![] };
    let executable = ctx.bool("is_executable")?;
    let code = ExpandTemplate { template: template.exec_path.clone(), out: out.exec_path.clone(), substitutions, stamp_substitutions };
    let mut action = Action::new("TemplateExpand", ctx.label(), ActionKind::Run(Arc::new(code))).inputs([template]).inputs(data);
    action.stamped = stamp;
    let action = if executable { action.executable_output(out.clone()) } else { action.output(out.clone()) };
    ctx.register(action)?;
    Ok(Providers { files: vec![out.clone()], executable: executable.then_some(out), declared: ctx.declared(), ..Default::default() })
}
