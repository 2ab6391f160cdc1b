//! Blob uploads (OCI distribution spec "pushing blobs"): a HEAD first, then one PUT up to
//! 64 MiB or PATCH chunks with `Content-Range`; cross-repository mounts. A failed attempt starts
//! a new upload session and abandons the old one.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use anyhow::{Context, Result, anyhow};
use reqwest::blocking::{Body, Response};
use reqwest::header;
use reqwest::{StatusCode, Url};

use super::challenge::{pull_scope, push_scope};
use super::client::{Client, SMALL_REQUEST_TIMEOUT, Target, context, header_str};
use super::reference::{check_digest, check_names};
use super::retry::{Attempt, Failure, status_failure};

/// Blobs up to this size go up in one PUT; larger ones in PATCH chunks, so that a registry
/// (or a proxy in front of it) with a request size limit still accepts them.
pub(super) const MONOLITHIC_LIMIT: u64 = 64 << 20;
/// Chunk size for chunked uploads (registries may ask for more with `OCI-Chunk-Min-Length`).
const CHUNK_SIZE: u64 = 32 << 20;

impl Client {
    /// Uploads the blob at `path` (whose sha256 is `digest`), unless the registry has it already
    /// (then only a HEAD is sent and the result is false). Up to 64 MiB go in one PUT; larger
    /// blobs in PATCH chunks. The file is streamed, never read whole. A failed attempt starts
    /// a new upload session: registries do not agree on how to resume one.
    pub fn upload_blob(&self, registry: &str, repository: &str, digest: &str, path: &Path) -> Result<bool> {
        if self.blob_exists(registry, repository, digest)? {
            return Ok(false);
        }
        let size = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?.len();
        let target = Target { registry, repository, scopes: vec![push_scope(repository)] };
        self.retrying(&target, "blob upload", || {
            let location = self.start_upload(&target)?;
            let result = if size <= MONOLITHIC_LIMIT {
                self.put_monolithic(&target, &location, digest, path, size)
            } else {
                self.put_chunked(&target, location.clone(), digest, path, size)
            };
            if result.is_err() {
                self.cancel_upload(&target, &location);
            }
            result
        })?;
        Ok(true)
    }

    /// Asks the registry to mount `digest` from `from_repository` into `repository` without
    /// uploading. `Ok(false)` when it declines (it may not have the blob, or not let us read
    /// the source): the caller then uploads. The upload session a decline opens is cancelled.
    pub fn mount_blob(&self, registry: &str, repository: &str, digest: &str, from_repository: &str) -> Result<bool> {
        check_names(registry, repository)?;
        check_names(registry, from_repository)?;
        check_digest(digest)?;
        let target = Target { registry, repository, scopes: vec![push_scope(repository), pull_scope(from_repository)] };
        let mut url = self.url(registry, &format!("/v2/{repository}/blobs/uploads/"))?;
        url.query_pairs_mut().append_pair("mount", digest).append_pair("from", from_repository);
        let what = format!("mount {digest} from {from_repository}");
        self.retrying(&target, &what, || {
            let resp =
                self.send(&target, || Ok(self.http.post(url.clone()).header(header::CONTENT_LENGTH, "0").timeout(SMALL_REQUEST_TIMEOUT)))?;
            match resp.status() {
                StatusCode::CREATED => Ok(true),
                StatusCode::ACCEPTED => {
                    if let Ok(location) = self.location(&target, &resp) {
                        self.cancel_upload(&target, &location);
                    }
                    Ok(false)
                }
                _ => Err(status_failure(&target, &what, resp)),
            }
        })
    }

    // ---- upload steps ----

    /// POST …/blobs/uploads/ → the session URL.
    fn start_upload(&self, target: &Target) -> Attempt<Url> {
        let url = self.url(target.registry, &format!("/v2/{}/blobs/uploads/", target.repository))?;
        let resp =
            self.send(target, || Ok(self.http.post(url.clone()).header(header::CONTENT_LENGTH, "0").timeout(SMALL_REQUEST_TIMEOUT)))?;
        if resp.status() != StatusCode::ACCEPTED {
            return Err(status_failure(target, "start blob upload", resp));
        }
        self.location(target, &resp).map_err(Failure::Fatal)
    }

    fn put_monolithic(&self, target: &Target, location: &Url, digest: &str, path: &Path, size: u64) -> Attempt<()> {
        let mut url = location.clone();
        url.query_pairs_mut().append_pair("digest", digest);
        let resp = self.send(target, || {
            let file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
            Ok(self.http.put(url.clone()).header(header::CONTENT_TYPE, "application/octet-stream").body(Body::sized(file, size)))
        })?;
        if resp.status() != StatusCode::CREATED {
            return Err(status_failure(target, &format!("upload blob {digest}"), resp));
        }
        Ok(())
    }

    /// PATCH chunks with `Content-Range`, following the `Location` each response returns, then
    /// PUT ?digest= with no body to close the session.
    fn put_chunked(&self, target: &Target, mut location: Url, digest: &str, path: &Path, size: u64) -> Attempt<()> {
        let mut offset = 0u64;
        while offset < size {
            let len = CHUNK_SIZE.min(size - offset);
            let resp = self.send(target, || {
                let mut file = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
                file.seek(SeekFrom::Start(offset)).with_context(|| format!("cannot read {}", path.display()))?;
                Ok(self
                    .http
                    .patch(location.clone())
                    .header(header::CONTENT_TYPE, "application/octet-stream")
                    .header(header::CONTENT_RANGE, format!("{}-{}", offset, offset + len - 1))
                    .body(Body::sized(file.take(len), len)))
            })?;
            if resp.status() != StatusCode::ACCEPTED {
                return Err(status_failure(target, &format!("upload chunk of blob {digest} at offset {offset}"), resp));
            }
            location = self.location(target, &resp)?;
            offset += len;
        }
        let mut url = location;
        url.query_pairs_mut().append_pair("digest", digest);
        let resp =
            self.send(target, || Ok(self.http.put(url.clone()).header(header::CONTENT_LENGTH, "0").timeout(SMALL_REQUEST_TIMEOUT)))?;
        if resp.status() != StatusCode::CREATED {
            return Err(status_failure(target, &format!("finish upload of blob {digest}"), resp));
        }
        Ok(())
    }

    /// Best effort: DELETE an upload session we abandon, so the registry can free it early
    /// (it would expire it anyway).
    fn cancel_upload(&self, target: &Target, location: &Url) {
        let _ = self.send(target, || Ok(self.http.delete(location.clone()).timeout(SMALL_REQUEST_TIMEOUT)));
    }

    /// The `Location` of an upload response, resolved against the registry URL (it may be
    /// relative or absolute).
    fn location(&self, target: &Target, resp: &Response) -> Result<Url> {
        let loc =
            header_str(resp.headers(), "location").ok_or_else(|| anyhow!("{}: upload response has no Location header", context(target)))?;
        let base = self.url(target.registry, "/")?;
        base.join(&loc).map_err(|_| anyhow!("{}: upload response has an invalid Location header", context(target)))
    }
}
