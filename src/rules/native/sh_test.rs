//! `sh_test`: a shell script run by `ocib test`.
use crate::analysis::{AnalysisError, Providers, RuleContext, TestRun};
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder};

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("sh_test")
        .native()
        .test()
        .attr("env", A::StringDict)
        .attr("env_inherit", A::StringList)
        .mandatory("srcs", A::LabelList)
        .attr("deps", A::LabelList)
        .attr("data", A::LabelList)
        .build()
}

/// `sh_test`: its script (copied executable), run by `ocib test` with `args`, `env` and `data`.
pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let mut providers = super::sh_binary::analyze(ctx)?;
    let executable = providers.executable.clone().ok_or_else(|| AnalysisError::new("internal: sh_test without executable"))?;
    let args = ctx.string_list("args")?;
    let env = ctx.string_dict("env")?.into_iter().collect();
    providers.test = Some(TestRun::Exec { executable, args, env, runfiles: providers.runfiles.clone(), runfiles_tree: false });
    Ok(providers)
}
