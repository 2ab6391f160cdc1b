//! The OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/<hex>`), read and
//! written: [`Layout::read`] reads back the single image a layout holds (checked against its
//! digests), [`read_index`] its `index.json` whatever it names, [`LayoutWriter`] writes one.
//! Blobs that already exist as files ocib made (built layers, a base image's blobs) are
//! hardlinked, never re-hashed; files that are not ocib's own are copied.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail, ensure};
use serde_json::Value;

use super::spec::{
    DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, ImageIndex, ImageManifest, OCI_INDEX, OCI_MANIFEST, canonical_json, digest_hex, sha256_digest,
};

pub const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// A file ocib keeps beside the OCI files of a layout: for blobs that came from a registry
/// (an `oci_pull` base), the repository they came from, so a push to the same registry can
/// mount them instead of uploading them. Tools that read layouts ignore it.
pub const ORIGIN_FILE: &str = "ocib-origin.json";

/// blob digest → `registry/repository` it can be mounted from.
pub fn read_origins(dir: &Path) -> std::collections::BTreeMap<String, String> {
    std::fs::read(dir.join(ORIGIN_FILE)).ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default()
}

pub fn write_origins(dir: &Path, origins: &std::collections::BTreeMap<String, String>) -> Result<()> {
    if !origins.is_empty() {
        std::fs::write(dir.join(ORIGIN_FILE), serde_json::to_vec(origins)?)?;
    }
    Ok(())
}

/// `blobs/sha256/<hex>` under the layout `dir`, after checking the digest's form (which also
/// keeps the path inside `blobs/sha256/`).
pub fn blob_path(dir: &Path, digest: &str) -> Result<PathBuf> {
    Ok(dir.join("blobs").join("sha256").join(digest_hex(digest)?))
}

/// Writes a layout directory: the marker on creation, then blobs and `index.json`.
pub struct LayoutWriter {
    dir: PathBuf,
}

impl LayoutWriter {
    pub fn create(dir: &Path) -> Result<LayoutWriter> {
        std::fs::create_dir_all(dir.join("blobs").join("sha256")).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(dir.join("oci-layout"), OCI_LAYOUT)?;
        Ok(LayoutWriter { dir: dir.to_path_buf() })
    }

    fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        blob_path(&self.dir, digest)
    }

    /// Adds a blob that exists as a file ocib created (an output in its CAS, a member it
    /// unpacked), by hardlink (copy across filesystems). The layout's files are stored in the
    /// CAS read-only, which chmods their inode: a file that is not ocib's own (a vendored tar in
    /// the workspace) must go through [`LayoutWriter::copy_blob`] instead.
    pub fn link_blob(&self, digest: &str, file: &Path) -> Result<()> {
        let dest = self.blob_path(digest)?;
        if dest.exists() {
            return Ok(());
        }
        if std::fs::hard_link(file, &dest).is_err() {
            std::fs::copy(file, &dest).with_context(|| format!("copying {} into the image", file.display()))?;
        }
        Ok(())
    }

    /// Adds a blob by copying `file` (a file ocib must not link: one of the user's), through a
    /// temporary name so the layout never holds half a blob.
    pub fn copy_blob(&self, digest: &str, file: &Path) -> Result<()> {
        let dest = self.blob_path(digest)?;
        if dest.exists() {
            return Ok(());
        }
        let tmp = crate::exec::fs::temp_sibling(&dest);
        let copied = std::fs::copy(file, &tmp).and_then(|_| std::fs::rename(&tmp, &dest));
        if copied.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        copied.with_context(|| format!("copying {} into the image", file.display()))
    }

    /// Adds a blob by link when `owned` (the file is ocib's own), by copy otherwise.
    pub fn add_blob(&self, digest: &str, file: &Path, owned: bool) -> Result<()> {
        if owned { self.link_blob(digest, file) } else { self.copy_blob(digest, file) }
    }

    /// Adds a blob from bytes; returns its digest.
    pub fn write_blob(&self, bytes: &[u8]) -> Result<String> {
        let digest = sha256_digest(bytes);
        let dest = self.blob_path(&digest)?;
        if !dest.exists() {
            std::fs::write(&dest, bytes)?;
        }
        Ok(digest)
    }

    /// Writes `index.json` (canonical JSON).
    pub fn write_index(&self, index: &ImageIndex) -> Result<()> {
        let path = self.dir.join("index.json");
        std::fs::write(&path, canonical_json(index)?).with_context(|| format!("writing {}", path.display()))
    }
}

/// Largest index.json, `oci-layout` or image manifest read. The OCI distribution spec lets
/// registries refuse manifests over 4 MiB, and containerd and CNCF distribution do; a larger one
/// (or a file such as `/dev/zero` standing in for one) is refused before it is read.
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;
/// Largest image config read. Configs are small JSON too (history and env grow them, not to
/// megabytes); the bound is generous, and there to stop a huge file from being read into memory.
pub const MAX_CONFIG_BYTES: u64 = 32 << 20;

/// An OCI image layout directory (oci-layout, index.json, blobs/sha256/...) read back: the single
/// manifest index.json names.
#[derive(Debug, Clone)]
pub struct Layout {
    pub dir: PathBuf,
    pub index: ImageIndex,
    pub manifest_digest: String,
    pub manifest_media_type: String,
    pub manifest: ImageManifest,
    /// The manifest as JSON, field for field: a rule that edits a base's manifest the way
    /// rules_oci's jq does (`rules/oci/image_config.rs`) keeps every field, known or not.
    pub manifest_json: Value,
    pub config_digest: String,
    /// The config as JSON: configs are merged field by field (rules_oci semantics), and readers
    /// take the few fields they need.
    pub config: Value,
    pub layer_digests: Vec<String>,
}

impl Layout {
    /// Reads and checks the layout in `dir`.
    ///
    /// Like rules_oci, `index.json` must name exactly one manifest. An image index (multi-platform)
    /// is rejected here because it has no single config and layer list; callers that accept
    /// indexes ([`read_index`]) handle them before getting here. The manifest and config blobs are
    /// checked against their digests (they are small), and every layer blob must exist, so that a
    /// broken layout fails before any tarball bytes are written to a stream that may already be
    /// `docker load`.
    pub fn read(dir: &Path) -> Result<Layout> {
        let index = read_index(dir)?;
        let index_file = dir.join("index.json");
        ensure!(
            index.manifests.len() == 1,
            "{}: expected exactly one entry in \"manifests\", found {}",
            index_file.display(),
            index.manifests.len()
        );
        let descriptor = &index.manifests[0];
        let manifest_media_type =
            descriptor.media_type.clone().ok_or_else(|| anyhow!("{}: manifests[0]: no \"mediaType\" string", index_file.display()))?;
        let manifest_digest = descriptor.digest.clone();
        match manifest_media_type.as_str() {
            OCI_MANIFEST | DOCKER_MANIFEST => {}
            OCI_INDEX | DOCKER_MANIFEST_LIST => bail!(
                "{}: manifests[0] is an image index ({manifest_media_type}), i.e. a multi-platform \
                 image; a single-image tarball needs an image manifest",
                index_file.display()
            ),
            other => bail!(
                "{}: manifests[0] has unsupported media type {other:?} (expected {OCI_MANIFEST} \
                 or {DOCKER_MANIFEST})",
                index_file.display()
            ),
        }

        let manifest_file = blob_path(dir, &manifest_digest).with_context(|| format!("{}: manifests[0].digest", index_file.display()))?;
        let manifest_json: Value = read_verified_json(&manifest_file, &manifest_digest, MAX_MANIFEST_BYTES)?;
        let manifest: ImageManifest =
            serde_json::from_value(manifest_json.clone()).with_context(|| format!("{}: not an image manifest", manifest_file.display()))?;
        if let Some(own) = &manifest.media_type {
            ensure!(
                *own == manifest_media_type,
                "{}: manifest says mediaType {own:?} but index.json says {manifest_media_type:?}",
                manifest_file.display()
            );
        }

        let config_digest = manifest.config.digest.clone();
        let config_file = blob_path(dir, &config_digest).with_context(|| format!("{}: config.digest", manifest_file.display()))?;
        let config = read_verified_json(&config_file, &config_digest, MAX_CONFIG_BYTES)?;

        let mut layer_digests = Vec::with_capacity(manifest.layers.len());
        for (i, layer) in manifest.layers.iter().enumerate() {
            let path = blob_path(dir, &layer.digest).with_context(|| format!("{}: layers[{i}].digest", manifest_file.display()))?;
            // metadata() follows symlinks: rules_oci layouts link blobs to the layer tars.
            let meta = std::fs::metadata(&path).with_context(|| format!("missing layer blob {}", path.display()))?;
            ensure!(meta.is_file(), "layer blob {} is not a regular file", path.display());
            layer_digests.push(layer.digest.clone());
        }

        Ok(Layout {
            dir: dir.to_path_buf(),
            index,
            manifest_digest,
            manifest_media_type,
            manifest,
            manifest_json,
            config_digest,
            config,
            layer_digests,
        })
    }

    /// Where the blob with `digest` lives in this layout; fails unless `digest` is
    /// `sha256:<64 lowercase hex>` (which also keeps the path inside `blobs/sha256/`).
    pub fn blob_path(&self, digest: &str) -> Result<PathBuf> {
        blob_path(&self.dir, digest)
    }

    /// The manifest, config and layer digests, each once, in that order: every blob of the image.
    pub fn blob_digests(&self) -> Vec<String> {
        let mut digests = vec![self.manifest_digest.clone(), self.config_digest.clone()];
        for d in &self.layer_digests {
            if !digests.contains(d) {
                digests.push(d.clone());
            }
        }
        digests
    }

    /// The `size` the manifest (or index.json) declares for `digest`, if any, so that writers can
    /// refuse a blob whose file does not match.
    pub fn declared_size(&self, digest: &str) -> Option<u64> {
        self.index
            .manifests
            .first()
            .into_iter()
            .chain(std::iter::once(&self.manifest.config))
            .chain(&self.manifest.layers)
            .find(|d| d.digest == digest)
            .and_then(|d| d.size)
    }
}

/// Reads a layout's `oci-layout` marker and `index.json`, whatever the index names (one image,
/// an image index, several images).
pub fn read_index(dir: &Path) -> Result<ImageIndex> {
    let layout_file = dir.join("oci-layout");
    let marker: Value = read_json(&layout_file, MAX_MANIFEST_BYTES)?;
    ensure!(
        marker.get("imageLayoutVersion").is_some_and(Value::is_string),
        "{}: not an OCI layout marker (no \"imageLayoutVersion\" string)",
        layout_file.display()
    );
    let index_file = dir.join("index.json");
    let index: Value = read_json(&index_file, MAX_MANIFEST_BYTES)?;
    serde_json::from_value(index).with_context(|| format!("{}: not an image index", index_file.display()))
}

/// The bytes of the regular file `path`, refused (without reading them) above `limit`.
pub fn read_capped(path: &Path, limit: u64) -> io::Result<Vec<u8>> {
    let file = File::open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::other("not a regular file"));
    }
    if meta.len() > limit {
        return Err(io::Error::other(format!("{} bytes, more than the {limit}-byte limit", meta.len())));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // take(): a file that grows after the check still stops at the limit.
    file.take(limit).read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn read_json(path: &Path, limit: u64) -> Result<Value> {
    let bytes = read_capped(path, limit).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("{}: malformed JSON", path.display()))
}

/// Reads a small JSON blob, checking that its bytes hash to `digest`.
fn read_verified_json(path: &Path, digest: &str, limit: u64) -> Result<Value> {
    let bytes = read_capped(path, limit).with_context(|| {
        let what = if path.exists() { "reading blob" } else { "missing blob" };
        format!("{what} {}", path.display())
    })?;
    let actual = sha256_digest(&bytes);
    ensure!(actual == digest, "{}: content hashes to {actual}, not {digest}", path.display());
    serde_json::from_slice(&bytes).with_context(|| format!("{}: malformed JSON", path.display()))
}
