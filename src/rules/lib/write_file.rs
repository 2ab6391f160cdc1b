//! bazel-skylib `write_file` (rule class `_write_file` / `_write_xfile`): writes lines to a file.
use crate::analysis::{AnalysisError, Providers, RuleContext};
use crate::exec::{Action, ActionKind};
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder, b, s};

/// `_write_file`, or `_write_xfile` when the macro is asked for an executable.
pub fn schema(kind: &str) -> RuleSchema {
    SchemaBuilder::new(kind)
        .attr("content", A::StringList)
        .mandatory("out", A::Output)
        .default("is_executable", A::Bool, b(false))
        .default("newline", A::String, s("auto"))
        .build()
}

/// skylib `write_file`: the lines joined with the newline, no trailing newline.
pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let out = ctx.outputs_of("out")?.into_iter().next().ok_or_else(|| AnalysisError::new("write_file needs 'out'"))?;
    let newline = match ctx.string("newline")?.as_str() {
        "windows" => "\r\n",
        _ => "\n",
    };
    let content = ctx.string_list("content")?.join(newline);
    let executable = ctx.bool("is_executable")?;
    let action = Action::new("FileWrite", ctx.label(), ActionKind::Write { content: content.into_bytes(), executable });
    let action = if executable { action.executable_output(out.clone()) } else { action.output(out.clone()) };
    ctx.register(action)?;
    Ok(Providers { files: vec![out.clone()], executable: executable.then_some(out), declared: ctx.declared(), ..Default::default() })
}
