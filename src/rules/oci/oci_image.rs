//! rules_oci `oci_image`: an OCI image layout built from a base and layer tars.
use std::sync::Arc;

use super::actions::{BaseRef, BuildImage, DescribeLayer, ImageFiles};
use crate::analysis::{AnalysisError, Providers, RuleContext};
use crate::exec::{Action, ActionKind, Artifact};
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder, s};

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("oci_image")
        .attr("base", A::Label)
        .attr("tars", A::LabelList)
        .attr("entrypoint", A::Label)
        .attr("cmd", A::Label)
        .attr("env", A::Label)
        .attr("user", A::String)
        .attr("workdir", A::String)
        .attr("exposed_ports", A::Label)
        .attr("volumes", A::Label)
        .attr("labels", A::Label)
        .attr("annotations", A::Label)
        .attr("os", A::String)
        .attr("architecture", A::String)
        .attr("variant", A::String)
        .attr("created", A::Label)
        .default("resource_set", A::String, s("default"))
        .build()
}

/// `oci_image`: per tar a descriptor action (digest, diff_id, once per layer content), then
/// one action writing the layout directory `<pkg>/<name>/` and `<name>.digest.txt`.
pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let name = ctx.label().name.clone();
    let base = match ctx.labels("base")?.into_iter().next() {
        None => None,
        Some(label) => {
            let target = ctx.dep(&label)?;
            match (&target.providers.oci_layout, target.providers.files.as_slice()) {
                (Some(layout), _) => Some((layout.clone(), false)),
                // A docker save or OCI-layout tarball.
                (None, [one]) if one.exec_path.ends_with(".tar") => Some((one.clone(), true)),
                _ => {
                    return Err(AnalysisError::new(format!(
                        "attribute 'base': '{label}' is not an image (oci_image, oci_image_index, a pulled image, or an image .tar)"
                    )));
                }
            }
        }
    };
    let os = Some(ctx.string("os")?).filter(|s| !s.is_empty());
    let architecture = Some(ctx.string("architecture")?).filter(|s| !s.is_empty());
    let variant = Some(ctx.string("variant")?).filter(|s| !s.is_empty());
    if base.is_some() && (os.is_some() || architecture.is_some() || variant.is_some()) {
        return Err(AnalysisError::new("os, architecture and variant cannot be set together with base (they come from the base image)"));
    }
    if base.is_none() && (os.is_none() || architecture.is_none()) {
        return Err(AnalysisError::new("an image without base needs os and architecture"));
    }
    let mut inputs = Vec::new();
    let mut layers = Vec::new();
    let tar_labels = ctx.labels("tars")?;
    for (i, label) in tar_labels.iter().enumerate() {
        let target = ctx.dep(label)?;
        for tar in target.providers.files.clone() {
            let descriptor = ctx.declare(&format!("{name}.{}.descriptor.json", layers.len()));
            let code = DescribeLayer { tar: tar.exec_path.clone(), out: descriptor.exec_path.clone() };
            let mut action =
                Action::new("OCIDescriptor", ctx.label(), ActionKind::Run(Arc::new(code))).inputs([tar.clone()]).output(descriptor.clone());
            action.progress = format!("OCIDescriptor {} (layer {i})", ctx.label());
            ctx.register(action)?;
            layers.push((tar.exec_path.clone(), descriptor.exec_path.clone(), target.label.to_string()));
            inputs.push(tar);
            inputs.push(descriptor);
        }
    }
    let file_attr = |ctx: &mut RuleContext, attr: &str, inputs: &mut Vec<Artifact>| -> Result<Option<String>, AnalysisError> {
        match ctx.single_file(attr)? {
            Some(f) => {
                let p = f.exec_path.clone();
                inputs.push(f);
                Ok(Some(p))
            }
            None => Ok(None),
        }
    };
    let files = ImageFiles {
        entrypoint: file_attr(ctx, "entrypoint", &mut inputs)?,
        cmd: file_attr(ctx, "cmd", &mut inputs)?,
        env: file_attr(ctx, "env", &mut inputs)?,
        labels: file_attr(ctx, "labels", &mut inputs)?,
        annotations: file_attr(ctx, "annotations", &mut inputs)?,
        exposed_ports: file_attr(ctx, "exposed_ports", &mut inputs)?,
        volumes: file_attr(ctx, "volumes", &mut inputs)?,
        created: file_attr(ctx, "created", &mut inputs)?,
    };
    if let Some((b, _)) = &base {
        inputs.push(b.clone());
    }
    let out_dir = ctx.declare(&name);
    let digest = ctx.declare(&format!("{name}.digest.txt"));
    let user = Some(ctx.string("user")?).filter(|s| !s.is_empty());
    let workdir = Some(ctx.string("workdir")?).filter(|s| !s.is_empty());
    let code = BuildImage {
        label: ctx.label().to_string(),
        base: base
            .as_ref()
            .map(|(b, tarball)| if *tarball { BaseRef::Tarball(b.exec_path.clone()) } else { BaseRef::Layout(b.exec_path.clone()) }),
        layers,
        files,
        user,
        workdir,
        os,
        architecture,
        variant,
        out_dir: out_dir.exec_path.clone(),
        digest_out: digest.exec_path.clone(),
    };
    let action = Action::new("OCIImage", ctx.label(), ActionKind::Run(Arc::new(code)))
        .inputs(inputs)
        .tree_output(out_dir.clone())
        .output(digest.clone());
    ctx.register(action)?;
    let mut output_groups = std::collections::BTreeMap::new();
    output_groups.insert("digest".to_owned(), vec![digest]);
    Ok(Providers { files: vec![out_dir.clone()], oci_layout: Some(out_dir), output_groups, declared: ctx.declared(), ..Default::default() })
}
