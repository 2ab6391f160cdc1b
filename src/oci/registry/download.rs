//! Verified downloads of plain URLs (Debian packages for rules_distroless) through the registry
//! client's HTTP client and retry policy: the same backoff, the same transient/fatal split
//! (5xx, 429 and connection trouble are retried), the same streaming sha256 check and atomic
//! rename as blob downloads.

use std::path::Path;
use std::sync::atomic::Ordering;

use anyhow::{Result, anyhow};
use reqwest::Url;

use super::client::{Client, SMALL_REQUEST_TIMEOUT, Target};
use super::retry::{Failure, reqwest_error, transient};

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
        self.download_to(
            &target,
            &what,
            dest,
            || {
                self.requests.fetch_add(1, Ordering::Relaxed);
                self.http.get(parsed.clone()).timeout(SMALL_REQUEST_TIMEOUT).send().map_err(|e| transient(&target, &what, reqwest_error(e)))
            },
            |actual| {
                if actual.eq_ignore_ascii_case(sha256) {
                    Ok(())
                } else {
                    Err(Failure::Fatal(anyhow::Error::new(ChecksumMismatch {
                        url: url.to_owned(),
                        expected: sha256.to_ascii_lowercase(),
                        actual: actual.to_owned(),
                    })))
                }
            },
        )
    }
}
