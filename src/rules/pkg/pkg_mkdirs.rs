//! rules_pkg `pkg_mkdirs`: empty directories in a package.
use std::sync::Arc;

use crate::analysis::{AnalysisError, PkgEntry, PkgInfo, Providers, RuleContext};
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder, s};

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("pkg_mkdirs").mandatory("dirs", A::StringList).default("attributes", A::String, s("{}")).build()
}

pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let attrs = super::pkg_files::parse_attributes(&ctx.string("attributes")?, Some(0o755))?;
    let entries = ctx.string_list("dirs")?.into_iter().map(|dest| PkgEntry::Dir { dest, attrs: attrs.clone() }).collect();
    Ok(Providers { pkg: Some(Arc::new(PkgInfo { entries })), ..Default::default() })
}
