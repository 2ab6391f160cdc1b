//! Writing a `pkg_tar`: the manifest analysis computed, with input files named by exec path
//! until the action runs.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::tar_writer::{EntryKind, TarManifest, write_tar};
use crate::exec::{ActionContext, InProcess};
use crate::oci::sink::HashedFile;

#[derive(serde::Serialize, serde::Deserialize)]
pub struct PkgTar {
    /// `File { src }` and `deps` hold exec paths here.
    pub manifest: TarManifest,
    pub out: String,
    /// `stamp = 1`: every member's mtime is the build's BUILD_TIMESTAMP.
    pub stamp_mtime: bool,
}

impl InProcess for PkgTar {
    fn kind(&self) -> &'static str {
        "PkgTar"
    }

    fn scratch_free(&self) -> bool {
        true
    }

    fn params(&self) -> String {
        // Pure JSON (fields in declaration order), so `ocib action PkgTar` rebuilds it.
        serde_json::to_string(self).unwrap_or_default()
    }

    fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let mut manifest = self.manifest.clone();
        if self.stamp_mtime {
            let timestamp = ctx.volatile_status.as_ref().and_then(|v| v.get("BUILD_TIMESTAMP")).and_then(|t| t.parse::<u64>().ok());
            if let Some(t) = timestamp {
                for e in &mut manifest.entries {
                    e.mtime = t;
                }
            }
        }
        for entry in &mut manifest.entries {
            if let EntryKind::File { src } = &mut entry.kind {
                *src = ctx.input(&src.to_string_lossy())?.clone();
            }
        }
        manifest.deps = manifest.deps.iter().map(|d| ctx.input(&d.to_string_lossy()).cloned()).collect::<Result<Vec<PathBuf>>>()?;
        let out = ctx.output(&self.out)?.clone();
        // Hashed as it is written, so a large layer is never read back to be stored; members
        // copied by `copy_file_range`.
        let mut writer = HashedFile::create(&out).with_context(|| format!("creating {}", out.display()))?;
        for warning in write_tar(&manifest, &mut writer)? {
            ctx.log.push_str(&format!("WARNING: {warning}\n"));
        }
        let (_, digest) = writer.finish().with_context(|| format!("writing {}", out.display()))?;
        ctx.output_digests.insert(self.out.clone(), digest);
        Ok(())
    }
}
