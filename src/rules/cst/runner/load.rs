//! Getting an OCI layout into the container engine the way rules_oci's `container_structure_test`
//! has CST do it (`--image-from-oci-layout <dir> --default-image-tag cst.oci.local/...`), with
//! ocib's one engine loader (`oci::engine`).

use std::path::Path;

use anyhow::{Context, Result};

use crate::oci::engine::{self, Report};
use crate::oci::layout::{self, Layout};

/// `cst.oci.local/sha256-<hex>:sha256-<hex>`, from the manifest digest in `index.json`.
pub fn default_image_tag(layout_dir: &Path) -> Result<String> {
    let index = layout::read_index(layout_dir)?;
    let digest = index
        .manifests
        .first()
        .map(|d| &d.digest)
        .with_context(|| format!("{}/index.json: no manifests[0].digest", layout_dir.display()))?;
    let d = digest.replace(':', "-");
    Ok(format!("cst.oci.local/{d}:{d}"))
}

/// Loads the layout into `engine` (docker, podman or nerdctl) as `tag`; an engine that already
/// has the image (same config digest) only gets the tag.
pub fn load_layout(engine: &str, layout_dir: &Path, tag: &str) -> Result<()> {
    let layout = Layout::read(layout_dir)?;
    engine::load(engine, &layout, &[tag.to_owned()], Report::Quiet)?;
    Ok(())
}
