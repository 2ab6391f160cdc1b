//! rules_oci 2.x `oci_load`: loads an image into a container engine at `ocib run` time.
use crate::rules::{RuleSchema, SchemaBuilder, s};
use crate::analysis::{AnalysisError, Providers, RuleContext};
use crate::graph::AttrType as A;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("oci_load")
        .executable()
        .mandatory("image", A::Label)
        .mandatory("repo_tags", A::Label)
        .default("format", A::String, s("docker"))
        .attr("loader", A::Label)
        .build()
}

/// rules_oci 2.x: the tarball is built only on request (`--output_groups=+tarball`); by
/// default nothing (ocib loads the image itself at `ocib run`).
pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let (out, run) = super::oci_tarball::tarball(ctx)?;
    let mut output_groups = std::collections::BTreeMap::new();
    output_groups.insert("tarball".to_owned(), vec![out]);
    Ok(Providers { output_groups, run: Some(run), declared: ctx.declared(), ..Default::default() })
}
