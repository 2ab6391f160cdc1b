//! rules_oci 2.x `oci_load`: loads an image into a container engine at `ocib run` time. The
//! run-time half ([`load_image`]) serves `oci_tarball` (rules_oci 1.x) too.

use std::path::Path;

use crate::analysis::{AnalysisError, Providers, RuleContext};
use crate::oci::engine::{self, Loaded, Report};
use crate::oci::layout::Layout;
use crate::oci::tarball::parse_repo_tags;
use crate::rules::RuleSchema;

pub fn schema() -> RuleSchema {
    super::oci_tarball::tarball_schema("oci_load")
}

/// rules_oci 2.x: the tarball is built only on request (`--output_groups=+tarball`); by
/// default nothing (ocib loads the image itself at `ocib run`).
pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let (out, run) = super::oci_tarball::tarball(ctx)?;
    let mut output_groups = std::collections::BTreeMap::new();
    output_groups.insert("tarball".to_owned(), vec![out]);
    Ok(Providers { output_groups, run: Some(run), declared: ctx.declared(), ..Default::default() })
}

/// Loads the image in `layout_dir` with the tags of `tags_file` into `loader` (the target's
/// `loader` attribute), else into `engine` (`--container_engine`: docker, podman, nerdctl or
/// `auto`, the first of them on `PATH`; see [`engine::choose`]). If the engine
/// already has the image (same image ID, i.e. config digest), only the tags are added and no
/// layer is sent; otherwise the `docker load` tar is streamed into the engine without being
/// written to disk.
pub fn load_image(layout_dir: &Path, tags_file: &Path, loader: Option<&str>, engine: &str) -> anyhow::Result<()> {
    let layout = Layout::read(layout_dir)?;
    let tags = parse_repo_tags(&std::fs::read_to_string(tags_file)?);
    let loader = match loader {
        Some(l) => l.to_owned(),
        None => engine::choose(engine)?,
    };
    match engine::load(&loader, &layout, &tags, Report::Show)? {
        Loaded::Tagged => {
            eprintln!("INFO: {loader} already has image {}; tagged {} (no layers sent)", layout.config_digest, tags.join(" "))
        }
        Loaded::LoadedPartly { omitted, layers } => {
            eprintln!("INFO: {loader} had {omitted} of the image's {layers} layers; sent the other {}", layers - omitted)
        }
        Loaded::Loaded => {}
    }
    Ok(())
}
