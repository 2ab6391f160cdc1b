//! Writing an OCI image layout directory: `oci-layout`, `index.json`, `blobs/sha256/<hex>`.
//! Blobs that already exist as files ocib made (built layers, a base image's blobs) are
//! hardlinked, never re-hashed; files that are not ocib's own are copied.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

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

/// The hex part of a `sha256:<hex>` digest, checked.
pub fn digest_hex(digest: &str) -> Result<&str> {
    let hex = digest.strip_prefix("sha256:").unwrap_or("");
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        bail!("'{digest}' is not a sha256 digest");
    }
    Ok(hex)
}

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
        Ok(self.dir.join("blobs").join("sha256").join(digest_hex(digest)?))
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
        let digest = super::image_config::sha256_digest(bytes);
        let dest = self.blob_path(&digest)?;
        if !dest.exists() {
            std::fs::write(&dest, bytes)?;
        }
        Ok(digest)
    }

    pub fn write_index(&self, index: &serde_json::Value) -> Result<()> {
        std::fs::write(self.dir.join("index.json"), super::image_config::canonical_json(index))?;
        Ok(())
    }
}
