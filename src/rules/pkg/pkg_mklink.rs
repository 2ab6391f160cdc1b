//! rules_pkg `pkg_mklink` (rule class `pkg_mklink_impl`): a symbolic link in a package.
use std::sync::Arc;

use crate::analysis::{AnalysisError, PkgEntry, PkgInfo, Providers, RuleContext};
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder, s};

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("pkg_mklink_impl")
        .mandatory("link_name", A::String)
        .mandatory("target", A::String)
        .default("attributes", A::String, s("{}"))
        .build()
}

pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let attrs = super::pkg_files::parse_attributes(&ctx.string("attributes")?, Some(0o777))?;
    let entry = PkgEntry::Symlink { dest: ctx.string("link_name")?, target: ctx.string("target")?, attrs };
    Ok(Providers { pkg: Some(Arc::new(PkgInfo { entries: vec![entry] })), ..Default::default() })
}
