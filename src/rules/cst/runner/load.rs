//! Getting an OCI layout into the Docker engine the way rules_oci's `container_structure_test`
//! has CST do it (`--image-from-oci-layout <dir> --default-image-tag cst.oci.local/...`).

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::oci::tarball::{Layout, write_docker_tarball};

/// `cst.oci.local/sha256-<hex>:sha256-<hex>`, from the manifest digest in `index.json`.
pub fn default_image_tag(layout_dir: &Path) -> Result<String> {
    let index_file = layout_dir.join("index.json");
    let text = std::fs::read(&index_file).with_context(|| format!("reading {}", index_file.display()))?;
    let index: serde_json::Value =
        serde_json::from_slice(&text).with_context(|| format!("parsing {}", index_file.display()))?;
    let digest = index
        .get("manifests")
        .and_then(|m| m.get(0))
        .and_then(|d| d.get("digest"))
        .and_then(serde_json::Value::as_str)
        .with_context(|| format!("{}: no manifests[0].digest", index_file.display()))?;
    let d = digest.replace(':', "-");
    Ok(format!("cst.oci.local/{d}:{d}"))
}

/// Loads the layout into the engine as `tag` (`docker load` of a docker-format tarball),
/// unless the engine already has an image with the layout's config digest under that tag.
pub fn load_layout_into_docker(layout_dir: &Path, tag: &str) -> Result<()> {
    let layout = Layout::read(layout_dir)?;
    let existing = Command::new("docker")
        .args(["image", "inspect", "--format", "{{.Id}}", tag])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .context("cannot run `docker`")?;
    if existing.status.success() && String::from_utf8_lossy(&existing.stdout).trim() == layout.config_digest {
        return Ok(());
    }
    let mut child = Command::new("docker")
        .arg("load")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("cannot run `docker load`")?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let tags = [tag.to_owned()];
    let written = std::thread::scope(|s| {
        let writer = s.spawn(move || -> Result<()> {
            let mut w = std::io::BufWriter::new(stdin.by_ref());
            write_docker_tarball(&layout, &tags, &mut w)?;
            w.flush()?;
            Ok(())
        });
        writer.join().expect("tarball writer panicked")
    });
    let out = child.wait_with_output().context("waiting for `docker load`")?;
    if !out.status.success() {
        bail!(
            "docker load of {} failed: {}",
            layout_dir.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    written.with_context(|| format!("writing {} to docker load", layout_dir.display()))
}
