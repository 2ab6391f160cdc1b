//! `filegroup`: a named set of files.
use crate::analysis::{AnalysisError, Providers, RuleContext};
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder};

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("filegroup").native().attr("srcs", A::LabelList).attr("data", A::LabelList).attr("output_group", A::String).build()
}

/// Files of `srcs` (or of their `output_group`), with `data` as runfiles.
pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let group = ctx.string("output_group")?;
    let srcs = ctx.deps("srcs")?;
    let mut files = Vec::new();
    for t in &srcs {
        if group.is_empty() {
            files.extend(t.providers.files.iter().cloned());
        } else {
            files.extend(t.providers.output_groups.get(&group).into_iter().flatten().cloned());
        }
    }
    dedup(&mut files);
    let runfiles = ctx.files("data")?;
    Ok(Providers { files, runfiles, ..Default::default() })
}

/// Removes repeated artifacts, keeping the first occurrence's place.
pub(crate) fn dedup(files: &mut Vec<crate::exec::Artifact>) {
    let mut seen = std::collections::HashSet::new();
    files.retain(|f| seen.insert(f.exec_path.clone()));
}
