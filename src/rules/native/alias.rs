//! `alias`: another name for a target.
use crate::analysis::{AnalysisError, Providers, RuleContext};
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder};

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("alias").mandatory("actual", A::Label).build()
}

/// An alias has its target's providers.
pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let actual = ctx.labels("actual")?.into_iter().next().ok_or_else(|| AnalysisError::new("alias without 'actual'"))?;
    Ok(ctx.dep(&actual)?.providers.clone())
}
