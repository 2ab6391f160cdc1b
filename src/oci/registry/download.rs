//! Verified downloads of plain URLs (Debian packages for rules_distroless) through the registry
//! client's HTTP client and retry policy: the same backoff, the same transient/fatal split
//! (5xx, 429 and connection trouble are retried), the same streaming sha256 check and atomic
//! rename as blob downloads.

use std::fs::File;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, anyhow};
use reqwest::{StatusCode, Url};

use super::client::{Client, SMALL_REQUEST_TIMEOUT, Target};
use super::retry::{Failure, reqwest_error, status_failure, transient};
use crate::exec::digest::HashingWriter;

/// The file arrived whole but its sha256 is not the one asked for: not retried (the server
/// has different bytes), and told apart so callers can name what they fetched.
#[derive(Debug, thiserror::Error)]
#[error("checksum mismatch: expected sha256 {expected}, got sha256 {actual}")]
pub struct ChecksumMismatch {
    pub url: String,
    pub expected: String,
    pub actual: String,
}

impl Client {
    /// Downloads `url` into `dest` if its sha256 is `sha256` (hex). Written to a temporary file
    /// beside `dest` and renamed, so `dest` is either absent or complete and verified. A
    /// mismatch is a [`ChecksumMismatch`] error (find it with `downcast_ref`).
    pub fn download_verified(&self, url: &str, sha256: &str, dest: &Path) -> Result<()> {
        let parsed = Url::parse(url).map_err(|e| anyhow!("invalid URL '{url}': {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(anyhow!("{url}: only http and https URLs can be fetched"));
        }
        let host = parsed.host_str().unwrap_or_default().to_owned();
        let host_port = match parsed.port() {
            Some(p) => format!("{host}:{p}"),
            None => host,
        };
        let target = Target { registry: &host_port, repository: parsed.path(), scopes: vec![] };
        let what = format!("GET {url}");
        let dir = dest.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let name = dest.file_name().ok_or_else(|| anyhow!("{} is not a file path", dest.display()))?;
        static DOWNLOADS: AtomicU64 = AtomicU64::new(0);
        let n = DOWNLOADS.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(".{}.{}-{n}.tmp", name.to_string_lossy(), std::process::id()));
        let result = self.retrying(&target, &what, || {
            self.requests.fetch_add(1, Ordering::Relaxed);
            let mut resp = self
                .http
                .get(parsed.clone())
                .timeout(SMALL_REQUEST_TIMEOUT)
                .send()
                .map_err(|e| transient(&target, &what, reqwest_error(e)))?;
            if resp.status() != StatusCode::OK {
                return Err(status_failure(&target, &what, resp));
            }
            let file = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
            let mut writer = HashingWriter::new(std::io::BufWriter::with_capacity(1 << 20, file));
            resp.copy_to(&mut writer).map_err(|e| transient(&target, &what, reqwest_error(e)))?;
            let (buffered, actual) = writer.finish();
            let file = buffered.into_inner().map_err(|e| anyhow!("cannot write {}: {}", tmp.display(), e.error()))?;
            file.sync_all().with_context(|| format!("cannot write {}", tmp.display()))?;
            if !actual.eq_ignore_ascii_case(sha256) {
                return Err(Failure::Fatal(anyhow::Error::new(ChecksumMismatch {
                    url: url.to_owned(),
                    expected: sha256.to_ascii_lowercase(),
                    actual,
                })));
            }
            Ok(())
        });
        match result {
            Ok(()) => std::fs::rename(&tmp, dest).with_context(|| format!("cannot rename {} to {}", tmp.display(), dest.display())),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }
}
