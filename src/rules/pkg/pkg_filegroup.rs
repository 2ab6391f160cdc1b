//! rules_pkg `pkg_filegroup`: a group of pkg_files/pkg_mklink/pkg_mkdirs under a prefix.
use std::sync::Arc;

use crate::analysis::{AnalysisError, PkgEntry, PkgInfo, Providers, RuleContext};
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder, s};

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("pkg_filegroup")
        .mandatory("srcs", A::LabelList)
        .default("prefix", A::String, s(""))
        .attr("package_variables", A::Label)
        .build()
}

/// The entries of `srcs` (pkg_files, pkg_mklink, pkg_mkdirs, pkg_filegroup) under `prefix`.
pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let prefix = ctx.string("prefix")?;
    let under = |d: &str| {
        if prefix.is_empty() { d.to_owned() } else { format!("{}/{}", prefix.trim_end_matches('/'), d.trim_start_matches('/')) }
    };
    let mut entries = Vec::new();
    for t in ctx.deps("srcs")? {
        let pkg = t.providers.pkg.as_ref().ok_or_else(|| {
            AnalysisError::new(format!("attribute 'srcs': '{}' is not a pkg_files, pkg_mklink, pkg_mkdirs or pkg_filegroup", t.label))
        })?;
        for e in &pkg.entries {
            entries.push(match e.clone() {
                PkgEntry::File { src, dest, attrs } => PkgEntry::File { src, dest: under(&dest), attrs },
                PkgEntry::Dir { dest, attrs } => PkgEntry::Dir { dest: under(&dest), attrs },
                PkgEntry::Symlink { dest, target, attrs } => PkgEntry::Symlink { dest: under(&dest), target, attrs },
            });
        }
    }
    Ok(Providers { pkg: Some(Arc::new(PkgInfo { entries })), ..Default::default() })
}
