//! `sh_binary`: a shell script as an executable target.
use std::sync::Arc;

use crate::analysis::{AnalysisError, Providers, RuleContext};
use crate::exec::{Action, ActionKind};
use crate::graph::AttrType as A;
use crate::rules::lib::files::CopyFile;
use crate::rules::{RuleSchema, SchemaBuilder};

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("sh_binary")
        .native()
        .executable()
        .attr("env", A::StringDict)
        .mandatory("srcs", A::LabelList)
        .attr("deps", A::LabelList)
        .attr("data", A::LabelList)
        .attr("env_inherit", A::StringList)
        .build()
}

/// `sh_binary`: its one script, copied executable to `<pkg>/<name>`, with `data` and `deps`
/// as runfiles.
pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let srcs = ctx.files("srcs")?;
    let [src] = srcs.as_slice() else {
        return Err(AnalysisError::new(format!("attribute 'srcs': sh_binary needs exactly one source file, got {}", srcs.len())));
    };
    let out = ctx.declare(&ctx.label().name.clone());
    let code = CopyFile { src: src.exec_path.clone(), out: out.exec_path.clone() };
    let action = Action::new("ShBinary", ctx.label(), ActionKind::Run(Arc::new(code))).inputs([src.clone()]).executable_output(out.clone());
    ctx.register(action)?;
    let mut runfiles = ctx.files("data")?;
    for dep in ctx.deps("deps")? {
        runfiles.extend(dep.providers.files.iter().cloned());
        runfiles.extend(dep.providers.runfiles.iter().cloned());
    }
    Ok(Providers { files: vec![out.clone()], executable: Some(out), runfiles, declared: ctx.declared(), ..Default::default() })
}
