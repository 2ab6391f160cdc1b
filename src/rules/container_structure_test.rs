//! `container_structure_test`: file, metadata and command tests against an image.
use super::{RuleSchema, SchemaBuilder, s};
use crate::analysis::{AnalysisError, Providers, RuleContext, TestRun};
use crate::graph::AttrType as A;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("container_structure_test")
        .test()
        .attr("image", A::Label)
        .mandatory("configs", A::LabelList)
        .default("driver", A::String, s("docker"))
        .default("platform", A::String, s("linux/amd64"))
        .build()
}

/// container_structure_test: the configs and the image (an OCI layout, or a tarball),
/// checked like the Bazel rule does (a layout needs the docker driver).
pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let label = ctx.labels("image")?.into_iter().next().ok_or_else(|| AnalysisError::new("container_structure_test needs 'image'"))?;
    let target = ctx.dep(&label)?;
    let image = match (&target.providers.oci_layout, target.providers.files.as_slice()) {
        (Some(layout), _) => layout.clone(),
        (None, [one]) => one.clone(),
        _ => return Err(AnalysisError::new(format!("attribute 'image': '{label}' must be an image or produce exactly one file"))),
    };
    let driver = ctx.string("driver")?;
    if !["docker", "tar", "host"].contains(&driver.as_str()) {
        return Err(AnalysisError::new(format!("attribute 'driver': '{driver}' must be docker, tar or host")));
    }
    let configs = ctx.files("configs")?;
    let platform = ctx.string("platform")?;
    Ok(Providers { test: Some(TestRun::Structure { image, configs, driver, platform }), ..Default::default() })
}
