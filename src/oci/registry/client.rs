//! The registry [`Client`]: the shared HTTP client, its requests (with credentials only for the
//! registry's own origin), manifest GET/PUT, blob HEAD and verified downloads.

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use reqwest::blocking::{RequestBuilder, Response};
use reqwest::header::{self, HeaderMap};
use reqwest::{StatusCode, Url};
use serde::Deserialize;

use super::auth::Keychain;
use super::challenge::{RegistryAuth, parse_www_authenticate, pull_scope, push_scope};
use super::reference::{check_digest, check_names, check_reference};
use super::retry::{Attempt, Failure, reqwest_error, status_failure, transient};
use crate::exec::digest::HashingWriter;
use crate::oci::spec::sha256_digest;

/// Manifests are small; a registry sending more is broken or hostile.
pub(super) const MAX_MANIFEST_BYTES: u64 = 16 << 20;
/// Timeout for requests without a large body (also the per-read stall timeout of downloads).
pub(super) const SMALL_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// The manifest media types we can handle, in order of preference.
const MANIFEST_ACCEPT: &str = "application/vnd.oci.image.manifest.v1+json, \
application/vnd.oci.image.index.v1+json, \
application/vnd.docker.distribution.manifest.v2+json, \
application/vnd.docker.distribution.manifest.list.v2+json";

/// The registry, repository and access one request needs; also the context for its errors.
pub(super) struct Target<'a> {
    pub(super) registry: &'a str,
    pub(super) repository: &'a str,
    /// Token scopes, e.g. `repository:foo:pull,push`.
    pub(super) scopes: Vec<String>,
}

impl Target<'_> {
    pub(super) fn scope_key(&self) -> String {
        self.scopes.join(" ")
    }
}

/// The registry client. `Send + Sync`: share one across threads.
pub struct Client {
    pub(super) http: reqwest::blocking::Client,
    insecure: Vec<String>,
    pub(super) keychain: Keychain,
    pub(super) auth: Mutex<HashMap<String, RegistryAuth>>,
    pub(super) requests: AtomicU64,
}

/// Hand-written: the auth cache holds tokens and Basic credentials.
impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("insecure", &self.insecure)
            .field("keychain", &self.keychain)
            .field("requests_sent", &self.requests_sent())
            .finish_non_exhaustive()
    }
}

impl Client {
    /// `insecure`: registries to talk plain http to (localhost and 127.0.0.1 always are, like
    /// Docker). Credentials come from the docker config of the environment.
    pub fn new(insecure: &[String]) -> Result<Client> {
        Client::with_keychain(insecure, Keychain::from_env())
    }

    /// Like [`Client::new`] with an explicit keychain (tests, or a `config` attribute).
    pub fn with_keychain(insecure: &[String], keychain: Keychain) -> Result<Client> {
        // reqwest is built without a default crypto provider; installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::blocking::Client::builder()
            .user_agent(concat!("ocib/", env!("CARGO_PKG_VERSION")))
            // No overall timeout: a large blob legitimately takes long. Small requests set
            // their own; stalled uploads are caught by TCP_USER_TIMEOUT and keepalives.
            .timeout(None)
            .connect_timeout(Duration::from_secs(30))
            .tcp_keepalive(Duration::from_secs(30))
            .tcp_user_timeout(Duration::from_secs(120))
            // Blob downloads redirect to object storage. reqwest drops Authorization (and
            // cookies) when a redirect changes the scheme, host or port (its
            // `remove_sensitive_headers`), which is what S3/GCS signed URLs require and keeps
            // the registry's credentials on its own origin; `send` never adds them back.
            .redirect(reqwest::redirect::Policy::limited(10))
            .build()
            .context("cannot create the HTTP client")?;
        Ok(Client {
            http,
            insecure: insecure.iter().map(|s| s.to_ascii_lowercase()).collect(),
            keychain,
            auth: Mutex::default(),
            requests: AtomicU64::new(0),
        })
    }

    /// HTTP requests sent so far (token requests and retries included).
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn blob_exists(&self, registry: &str, repository: &str, digest: &str) -> Result<bool> {
        check_names(registry, repository)?;
        check_digest(digest)?;
        let target = Target { registry, repository, scopes: vec![pull_scope(repository)] };
        let url = self.url(registry, &format!("/v2/{repository}/blobs/{digest}"))?;
        self.retrying(&target, "HEAD blob", || {
            let resp = self.send(&target, || Ok(self.http.head(url.clone()).timeout(SMALL_REQUEST_TIMEOUT)))?;
            match resp.status() {
                StatusCode::OK => Ok(true),
                StatusCode::NOT_FOUND => Ok(false),
                _ => Err(status_failure(&target, &format!("HEAD blob {digest}"), resp)),
            }
        })
    }

    /// PUTs a manifest under `reference` (a tag or a digest) and returns its digest: the one the
    /// registry reports, else the sha256 of `body`. Pushing by digest checks they agree.
    pub fn put_manifest(&self, registry: &str, repository: &str, reference: &str, media_type: &str, body: &[u8]) -> Result<String> {
        check_names(registry, repository)?;
        check_reference(reference)?;
        let target = Target { registry, repository, scopes: vec![push_scope(repository)] };
        let url = self.url(registry, &format!("/v2/{repository}/manifests/{reference}"))?;
        let computed = sha256_digest(body);
        let what = format!("PUT manifest {reference}");
        let reported = self.retrying(&target, &what, || {
            let resp = self.send(&target, || {
                Ok(self.http.put(url.clone()).header(header::CONTENT_TYPE, media_type).body(body.to_vec()).timeout(SMALL_REQUEST_TIMEOUT))
            })?;
            match resp.status() {
                StatusCode::CREATED | StatusCode::OK | StatusCode::ACCEPTED => Ok(header_str(resp.headers(), "docker-content-digest")),
                _ => Err(status_failure(&target, &what, resp)),
            }
        })?;
        let digest = reported.unwrap_or_else(|| computed.clone());
        if reference.contains(':') && digest != reference {
            bail!("{}: manifest pushed as {reference} but the registry stored it as {digest}", context(&target));
        }
        Ok(digest)
    }

    /// GETs a manifest by tag or digest: (media type, bytes, digest). The digest is computed
    /// from the bytes, and must equal `reference` when that is a digest: a registry (or a cache
    /// in front of it) must not be able to substitute content.
    pub fn get_manifest(&self, registry: &str, repository: &str, reference: &str) -> Result<(String, Vec<u8>, String)> {
        check_names(registry, repository)?;
        check_reference(reference)?;
        let target = Target { registry, repository, scopes: vec![pull_scope(repository)] };
        let url = self.url(registry, &format!("/v2/{repository}/manifests/{reference}"))?;
        let what = format!("GET manifest {reference}");
        let (content_type, body) = self.retrying(&target, &what, || {
            let resp = self
                .send(&target, || Ok(self.http.get(url.clone()).header(header::ACCEPT, MANIFEST_ACCEPT).timeout(SMALL_REQUEST_TIMEOUT)))?;
            if resp.status() != StatusCode::OK {
                return Err(status_failure(&target, &what, resp));
            }
            let content_type = header_str(resp.headers(), "content-type");
            let mut body = Vec::new();
            resp.take(MAX_MANIFEST_BYTES + 1).read_to_end(&mut body).map_err(|e| transient(&target, &what, e.into()))?;
            if body.len() as u64 > MAX_MANIFEST_BYTES {
                return Err(Failure::Fatal(anyhow!("{}: {what}: manifest larger than {MAX_MANIFEST_BYTES} bytes", context(&target))));
            }
            Ok((content_type, body))
        })?;
        let digest = sha256_digest(&body);
        if reference.contains(':') && digest != reference {
            bail!("{}: manifest {reference} has digest {digest}: content does not match", context(&target));
        }
        let media_type = content_type
            .map(|c| c.split(';').next().unwrap_or_default().trim().to_string())
            .filter(|c| !c.is_empty() && c != "application/json" && c != "text/plain")
            .or_else(|| media_type_field(&body))
            .ok_or_else(|| anyhow!("{}: manifest {reference} has no media type", context(&target)))?;
        Ok((media_type, body, digest))
    }

    /// Downloads a blob into `dest`, verifying its sha256 while streaming. Written to a
    /// temporary file next to `dest` and renamed, so `dest` is either absent or complete and
    /// correct. Redirects (to S3/GCS) are followed.
    pub fn get_blob(&self, registry: &str, repository: &str, digest: &str, dest: &Path) -> Result<()> {
        check_names(registry, repository)?;
        check_digest(digest)?;
        let Some(expected) = digest.strip_prefix("sha256:") else {
            bail!("{registry}/{repository}: cannot verify blob {digest}: only sha256 digests are supported");
        };
        let target = Target { registry, repository, scopes: vec![pull_scope(repository)] };
        let url = self.url(registry, &format!("/v2/{repository}/blobs/{digest}"))?;
        let what = format!("GET blob {digest}");
        self.download_to(
            &target,
            &what,
            dest,
            || self.send(&target, || Ok(self.http.get(url.clone()).timeout(SMALL_REQUEST_TIMEOUT))),
            |actual| {
                if actual == expected {
                    Ok(())
                } else {
                    Err(Failure::Fatal(anyhow!("{}: blob {digest} downloaded with digest sha256:{actual}", context(&target))))
                }
            },
        )
    }

    /// Streams the body of the response `get` returns into `dest`, hashing it (sha256, hex) as
    /// it is written, through a temporary file beside `dest` that is renamed only when `verify`
    /// accepts the digest: `dest` is either absent or complete and verified. Retried as every
    /// request is ([`Client::retrying`]); an error mid-body is connection trouble and starts
    /// the download again.
    pub(super) fn download_to(
        &self,
        target: &Target,
        what: &str,
        dest: &Path,
        get: impl Fn() -> Result<Response, Failure>,
        verify: impl Fn(&str) -> Result<(), Failure>,
    ) -> Result<()> {
        if dest.file_name().is_none() {
            bail!("{} is not a file path", dest.display());
        }
        // Unique per process and call, so concurrent downloads of one file cannot collide.
        let tmp = crate::exec::fs::temp_sibling(dest);
        let result = self.retrying(target, what, || {
            let mut resp = get()?;
            if resp.status() != StatusCode::OK {
                return Err(status_failure(target, what, resp));
            }
            let file = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
            let mut writer = HashingWriter::new(std::io::BufWriter::with_capacity(1 << 20, file));
            resp.copy_to(&mut writer).map_err(|e| transient(target, what, reqwest_error(e)))?;
            let (buffered, actual) = writer.finish();
            let file = buffered.into_inner().map_err(|e| anyhow!("cannot write {}: {}", tmp.display(), e.error()))?;
            file.sync_all().with_context(|| format!("cannot write {}", tmp.display()))?;
            verify(&actual)
        });
        match result {
            Ok(()) => std::fs::rename(&tmp, dest).with_context(|| format!("cannot rename {} to {}", tmp.display(), dest.display())),
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    // ---- plumbing ----

    /// `http://` for localhost and registries marked insecure, `https://` otherwise.
    pub(super) fn url(&self, registry: &str, path: &str) -> Result<Url> {
        let host = registry.rsplit_once(':').filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit())).map_or(registry, |(h, _)| h);
        let plain = matches!(host, "localhost" | "127.0.0.1" | "[::1]")
            || self.insecure.iter().any(|i| i.eq_ignore_ascii_case(registry) || i.eq_ignore_ascii_case(host));
        let scheme = if plain { "http" } else { "https" };
        Url::parse(&format!("{scheme}://{registry}{path}")).map_err(|e| anyhow!("invalid registry URL for {registry}: {e}"))
    }

    /// Sends one request (built by `build`, which is called again for the retry), answering a
    /// 401 challenge once. Connection errors are transient failures; every HTTP response,
    /// errors included, is returned for the caller to judge — except 5xx and 429, which are
    /// transient failures here so no caller can forget to retry them.
    ///
    /// Credentials (Basic, or a Bearer token) go only to the registry's own origin (scheme,
    /// host and port, default ports normalised): an upload `Location` may name another host
    /// (object storage, an upload service), and what is there must not see them. That is
    /// crane's rule (its basic and bearer transports set `Authorization` only when the request
    /// host matches the registry) and Docker's. For the same reason a 401 from another origin,
    /// whether we sent it there or a redirect did, is not answered: its challenge could name a
    /// token realm of its own choosing, and the registry's credentials would be sent there.
    /// Redirects themselves are reqwest's: it drops `Authorization` when the scheme, host or
    /// port changes.
    pub(super) fn send(&self, target: &Target, build: impl Fn() -> Result<RequestBuilder>) -> Attempt<Response> {
        let origin = self.url(target.registry, "/")?.origin();
        let mut answered_challenge = false;
        loop {
            let mut req =
                build()?.build().map_err(|e| Failure::Fatal(reqwest_error(e).context(format!("{}: invalid request", context(target)))))?;
            if req.url().origin() == origin
                && let Some(h) = self.cached_auth(target)
            {
                let mut value = header::HeaderValue::from_str(&h.0)
                    .map_err(|_| anyhow!("{}: the registry's token is not a valid header value", context(target)))?;
                value.set_sensitive(true);
                req.headers_mut().insert(header::AUTHORIZATION, value);
            }
            self.requests.fetch_add(1, Ordering::Relaxed);
            let resp = self.http.execute(req).map_err(|e| transient(target, "request", reqwest_error(e)))?;
            let status = resp.status();
            if status == StatusCode::UNAUTHORIZED && !answered_challenge && resp.url().origin() == origin {
                let challenge =
                    resp.headers().get_all(header::WWW_AUTHENTICATE).iter().find_map(|v| parse_www_authenticate(v.to_str().ok()?));
                let Some(challenge) = challenge else {
                    return Err(status_failure(target, "request", resp));
                };
                self.authenticate(target, &challenge)?;
                answered_challenge = true;
                continue;
            }
            if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                return Err(status_failure(target, "request", resp));
            }
            return Ok(resp);
        }
    }
}

/// Error context: the registry and repository, never a URL (those can carry signed tokens).
pub(super) fn context(target: &Target) -> String {
    format!("registry {}, repository {}", target.registry, target.repository)
}

pub(super) fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string)
}

/// The `mediaType` field of a manifest, for registries that serve it as plain JSON.
fn media_type_field(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct M {
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
    }
    serde_json::from_slice::<M>(body).ok()?.media_type
}

/// The fault-injecting HTTP proxy the integration tests use too (one copy, in tests/it/common).
#[cfg(test)]
#[path = "../../../tests/it/common/fault_proxy.rs"]
mod fault_proxy;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::digest::sha256_hex;
    use crate::oci::registry::auth;
    use crate::oci::registry::reference::Reference;
    use crate::oci::registry::retry::ATTEMPTS;
    use crate::oci::registry::upload::MONOLITHIC_LIMIT;
    use base64::Engine;
    use std::net::{TcpListener, TcpStream};
    use std::path::PathBuf;
    use std::process::{Child, Command, Stdio};
    use std::sync::Arc;
    use std::time::Instant;

    use super::fault_proxy::{Action, Handler, Head, respond, start as start_proxy};

    #[test]
    fn url_schemes() {
        let c = Client::with_keychain(&["reg.internal:5000".into(), "plain.example".into()], Keychain::anonymous()).unwrap();
        let scheme = |r: &str| c.url(r, "/v2/").unwrap().scheme().to_string();
        assert_eq!(scheme("localhost:5000"), "http");
        assert_eq!(scheme("127.0.0.1:1234"), "http");
        assert_eq!(scheme("reg.internal:5000"), "http");
        assert_eq!(scheme("reg.internal:5001"), "https");
        assert_eq!(scheme("plain.example:443"), "http");
        assert_eq!(scheme("gcr.io"), "https");
    }

    // ---- a real registry (Debian's docker-registry, i.e. CNCF distribution) ----

    const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

    /// Registry tests need the real binary: a missing one fails the test, never skips it.
    fn have_tool(path: &str, what: &str) -> bool {
        if Path::new(path).exists() {
            return true;
        }
        panic!("this test needs {path} (install {what}; .ci/run does)");
    }

    /// A registry process on a free loopback port, killed on drop.
    struct TestRegistry {
        child: Child,
        port: u16,
        dir: tempfile::TempDir,
    }

    impl Drop for TestRegistry {
        fn drop(&mut self) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }

    impl TestRegistry {
        fn start(htpasswd: Option<&Path>) -> TestRegistry {
            let dir = tempfile::tempdir().unwrap();
            let port = free_port();
            let auth =
                htpasswd.map(|p| format!("auth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n", p.display())).unwrap_or_default();
            let config = format!(
                "version: 0.1\n\
                 log:\n  level: warn\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n\
                 {auth}",
                dir.path().join("storage").display()
            );
            let config_path = dir.path().join("config.yml");
            std::fs::write(&config_path, config).unwrap();
            let log = File::create(dir.path().join("registry.log")).unwrap();
            let child = Command::new(REGISTRY_BIN)
                .arg("serve")
                .arg(&config_path)
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .unwrap();
            let mut reg = TestRegistry { child, port, dir };
            let deadline = Instant::now() + Duration::from_secs(20);
            while TcpStream::connect(("127.0.0.1", port)).is_err() {
                if let Ok(Some(status)) = reg.child.try_wait() {
                    panic!(
                        "registry exited with {status}: {}",
                        std::fs::read_to_string(reg.dir.path().join("registry.log")).unwrap_or_default()
                    );
                }
                assert!(Instant::now() < deadline, "registry did not start listening on port {port}");
                std::thread::sleep(Duration::from_millis(50));
            }
            reg.port = port;
            reg
        }

        fn host(&self) -> String {
            format!("127.0.0.1:{}", self.port)
        }

        /// The stored file of a blob (distribution's filesystem layout), to corrupt it.
        fn blob_data(&self, digest: &str) -> PathBuf {
            let hex = digest.strip_prefix("sha256:").unwrap();
            self.dir.path().join(format!("storage/docker/registry/v2/blobs/sha256/{}/{hex}/data", &hex[..2]))
        }
    }

    fn free_port() -> u16 {
        TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    /// Writes `len` pseudo-random bytes and returns the file's digest.
    fn write_blob(path: &Path, len: usize, seed: u64) -> String {
        let mut state = seed | 1;
        let mut data = Vec::with_capacity(len);
        while data.len() < len {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            data.extend_from_slice(&state.to_le_bytes());
        }
        data.truncate(len);
        std::fs::write(path, &data).unwrap();
        format!("sha256:{}", sha256_hex(&data))
    }

    fn manifest_for(config: (&str, usize), layer: (&str, usize)) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.0, "size": config.1},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer.0, "size": layer.1}],
        }))
        .unwrap()
    }

    const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

    #[test]
    fn push_and_pull_against_registry() {
        if !have_tool(REGISTRY_BIN, "Debian package docker-registry") {
            return;
        }
        let started = Instant::now();
        let reg = TestRegistry::start(None);
        let host = reg.host();
        let tmp = tempfile::tempdir().unwrap();
        let client = Client::new(&[]).unwrap();

        // Small blob: monolithic upload; a second upload is just the HEAD.
        let small = tmp.path().join("small");
        let small_digest = write_blob(&small, 1000, 1);
        assert!(!client.blob_exists(&host, "test/a", &small_digest).unwrap());
        assert!(client.upload_blob(&host, "test/a", &small_digest, &small).unwrap());
        assert!(client.blob_exists(&host, "test/a", &small_digest).unwrap());
        let before = client.requests_sent();
        assert!(!client.upload_blob(&host, "test/a", &small_digest, &small).unwrap());
        assert_eq!(client.requests_sent() - before, 1, "an existing blob costs one HEAD, no POST/PUT");

        // Large blob: over the monolithic limit, so HEAD, POST, 3 PATCHes (32+32+1 MiB), PUT.
        let big = tmp.path().join("big");
        let big_len = (MONOLITHIC_LIMIT + (1 << 20) + 123) as usize;
        let big_digest = write_blob(&big, big_len, 2);
        let before = client.requests_sent();
        assert!(client.upload_blob(&host, "test/a", &big_digest, &big).unwrap());
        assert_eq!(client.requests_sent() - before, 6);
        assert!(client.blob_exists(&host, "test/a", &big_digest).unwrap());
        let before = client.requests_sent();
        assert!(!client.upload_blob(&host, "test/a", &big_digest, &big).unwrap());
        assert_eq!(client.requests_sent() - before, 1);

        // Cross-repository mount, and a declined one (the source does not have the blob).
        assert!(!client.blob_exists(&host, "test/b", &small_digest).unwrap());
        assert!(client.mount_blob(&host, "test/b", &small_digest, "test/a").unwrap());
        assert!(client.blob_exists(&host, "test/b", &small_digest).unwrap());
        let absent = format!("sha256:{}", "0".repeat(64));
        assert!(!client.mount_blob(&host, "test/b", &absent, "test/a").unwrap());

        // Manifests by digest and by tag.
        let config = tmp.path().join("config");
        std::fs::write(&config, br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#).unwrap();
        let (config_hex, config_len) = crate::exec::digest::file_sha256(&config).unwrap();
        let config_digest = format!("sha256:{config_hex}");
        assert!(client.upload_blob(&host, "test/a", &config_digest, &config).unwrap());
        let manifest = manifest_for((&config_digest, config_len as usize), (&small_digest, 1000));
        let manifest_digest = format!("sha256:{}", sha256_hex(&manifest));
        assert_eq!(client.put_manifest(&host, "test/a", &manifest_digest, OCI_MANIFEST, &manifest).unwrap(), manifest_digest);
        assert_eq!(client.put_manifest(&host, "test/a", "v1", OCI_MANIFEST, &manifest).unwrap(), manifest_digest);
        for reference in ["v1", manifest_digest.as_str()] {
            let (media_type, body, digest) = client.get_manifest(&host, "test/a", reference).unwrap();
            assert_eq!(
                (media_type.as_str(), body.as_slice(), digest.as_str()),
                (OCI_MANIFEST, manifest.as_slice(), manifest_digest.as_str())
            );
        }
        let err = format!("{:#}", client.get_manifest(&host, "test/a", "nope").unwrap_err());
        assert!(err.contains("404") && err.contains("MANIFEST_UNKNOWN") && err.contains("test/a") && err.contains(&host), "{err}");
        // A manifest referencing a blob the repository lacks: the registry's message is reported.
        let bad = manifest_for((&config_digest, config_len as usize), (&absent, 1));
        let err = format!("{:#}", client.put_manifest(&host, "test/a", "bad", OCI_MANIFEST, &bad).unwrap_err());
        assert!(err.contains("400") && err.contains("MANIFEST_BLOB_UNKNOWN"), "{err}");

        // Downloads verify the digest.
        let out = tmp.path().join("out/big");
        std::fs::create_dir_all(out.parent().unwrap()).unwrap();
        client.get_blob(&host, "test/a", &big_digest, &out).unwrap();
        assert_eq!(std::fs::metadata(&out).unwrap().len(), big_len as u64);
        assert_eq!(format!("sha256:{}", crate::exec::digest::file_sha256(&out).unwrap().0), big_digest);
        std::fs::write(reg.blob_data(&small_digest), b"tampered").unwrap();
        let out_small = tmp.path().join("out/small");
        let err = format!("{:#}", client.get_blob(&host, "test/a", &small_digest, &out_small).unwrap_err());
        assert!(err.contains(&small_digest) && err.contains("downloaded with digest"), "{err}");
        assert!(!out_small.exists());
        assert_eq!(std::fs::read_dir(out.parent().unwrap()).unwrap().count(), 1, "no temp files left behind");
        std::fs::write(reg.blob_data(&manifest_digest), b"{}").unwrap();
        assert!(client.get_manifest(&host, "test/a", &manifest_digest).is_err());
        eprintln!("push_and_pull_against_registry: {:?}, {} requests", started.elapsed(), client.requests_sent());
    }

    fn config_json(dir: &Path, host: &str, user: &str, pass: &str) -> PathBuf {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        let path = dir.join("config.json");
        std::fs::write(&path, serde_json::to_vec(&serde_json::json!({"auths": {host: {"auth": auth}}})).unwrap()).unwrap();
        path
    }

    #[test]
    fn basic_auth_against_registry() {
        if !have_tool(REGISTRY_BIN, "Debian package docker-registry") || !have_tool("/usr/bin/htpasswd", "Debian package apache2-utils") {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let htpasswd = tmp.path().join("htpasswd");
        let out = Command::new("/usr/bin/htpasswd").args(["-Bbn", "ocib-user", "s3cret-pw"]).output().unwrap();
        assert!(out.status.success());
        std::fs::write(&htpasswd, out.stdout).unwrap();
        let reg = TestRegistry::start(Some(&htpasswd));
        let host = reg.host();

        // Credentials from a temp DOCKER_CONFIG (resolved as the environment would be).
        let docker_config = tmp.path().join("docker");
        std::fs::create_dir_all(&docker_config).unwrap();
        config_json(&docker_config, &host, "ocib-user", "s3cret-pw");
        let path = auth::config_path_from(|k| (k == "DOCKER_CONFIG").then(|| docker_config.display().to_string())).unwrap();
        let client = Client::with_keychain(&[], Keychain::from_file(&path)).unwrap();
        let blob = tmp.path().join("blob");
        let digest = write_blob(&blob, 5000, 3);
        assert!(client.upload_blob(&host, "private/x", &digest, &blob).unwrap());
        // Once the registry asked for Basic, it is sent up front: one request, no 401 round trip.
        let before = client.requests_sent();
        assert!(client.blob_exists(&host, "private/x", &digest).unwrap());
        assert_eq!(client.requests_sent() - before, 1);
        assert!(!format!("{client:?}").contains("s3cret"));

        // No credentials, and wrong ones: clear errors that never show the password.
        let anon = Client::with_keychain(&[], Keychain::anonymous()).unwrap();
        let err = format!("{:#}", anon.blob_exists(&host, "private/x", &digest).unwrap_err());
        assert!(err.contains("requires authentication") && err.contains(&host), "{err}");
        let wrong_dir = tmp.path().join("wrong");
        std::fs::create_dir_all(&wrong_dir).unwrap();
        let wrong = Client::with_keychain(&[], Keychain::from_file(&config_json(&wrong_dir, &host, "ocib-user", "wrong-pw"))).unwrap();
        let err = format!("{:#}", wrong.blob_exists(&host, "private/x", &digest).unwrap_err());
        assert!(err.contains("401") && !err.contains("wrong-pw") && !err.contains("ocib-user"), "{err}");
    }

    // ---- the shared fault-injecting proxy (tests/it/common/fault_proxy.rs) ----

    #[test]
    fn retries_server_errors_and_dropped_connections() {
        if !have_tool(REGISTRY_BIN, "Debian package docker-registry") {
            return;
        }
        let reg = TestRegistry::start(None);
        let faults: Arc<Mutex<Vec<(&'static str, Action)>>> = Arc::new(Mutex::new(vec![
            ("HEAD", respond("500 Internal Server Error", "", r#"{"errors":[{"code":"UNKNOWN","message":"injected"}]}"#)),
            ("HEAD", Action::Drop),
            ("PUT", Action::Drop),
            ("GET", respond("429 Too Many Requests", "Retry-After: 0\r\n", "")),
            ("GET", respond("503 Service Unavailable", "", "")),
        ]));
        let always_fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let handler: Handler = {
            let (faults, always_fail) = (faults.clone(), always_fail.clone());
            Arc::new(move |head: &Head| {
                if always_fail.load(Ordering::Relaxed) {
                    return respond("502 Bad Gateway", "", r#"{"errors":[{"code":"UNAVAILABLE","message":"injected outage"}]}"#);
                }
                let mut faults = faults.lock().unwrap();
                match faults.iter().position(|(m, _)| *m == head.method) {
                    Some(i) => faults.remove(i).1,
                    None => Action::Forward,
                }
            })
        };
        let proxy = format!("127.0.0.1:{}", start_proxy(reg.port, handler));
        let client = Client::new(&[]).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let blob = tmp.path().join("blob");
        let digest = write_blob(&blob, 3000, 4);

        // HEAD 500, HEAD dropped, HEAD 404; POST, PUT dropped, (DELETE of the session); POST, PUT.
        assert!(client.upload_blob(&proxy, "retry/x", &digest, &blob).unwrap());
        assert_eq!(client.requests_sent(), 8);
        let direct = Client::new(&[]).unwrap();
        assert!(direct.blob_exists(&reg.host(), "retry/x", &digest).unwrap());

        // GET 429 (Retry-After: 0), GET 503, GET ok.
        let manifest = manifest_for((&digest, 3000), (&digest, 3000));
        let manifest_digest = direct.put_manifest(&reg.host(), "retry/x", "t", OCI_MANIFEST, &manifest).unwrap();
        let before = client.requests_sent();
        assert_eq!(client.get_manifest(&proxy, "retry/x", "t").unwrap().2, manifest_digest);
        assert_eq!(client.requests_sent() - before, 3);
        assert!(faults.lock().unwrap().is_empty());

        // A persistent outage fails after the attempts, with the registry's message.
        always_fail.store(true, Ordering::Relaxed);
        let before = client.requests_sent();
        let err = format!("{:#}", client.get_manifest(&proxy, "retry/x", "t").unwrap_err());
        assert_eq!(client.requests_sent() - before, u64::from(ATTEMPTS));
        assert!(err.contains("502") && err.contains("injected outage") && err.contains("retry/x"), "{err}");
    }

    #[test]
    fn bearer_token_flow() {
        if !have_tool(REGISTRY_BIN, "Debian package docker-registry") {
            return;
        }
        let reg = TestRegistry::start(None);
        let expected_basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("tok-user:tok-pw"));
        let token_requests: Arc<Mutex<Vec<String>>> = Arc::default();
        let handler: Handler = {
            let token_requests = token_requests.clone();
            Arc::new(move |head: &Head| {
                if let Some(query) = head.path.strip_prefix("/token?") {
                    if head.header("authorization") != Some(expected_basic.as_str()) {
                        return respond("401 Unauthorized", "", r#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}"#);
                    }
                    token_requests.lock().unwrap().push(query.to_string());
                    return respond("200 OK", "Content-Type: application/json\r\n", r#"{"token":"tok-1","expires_in":300}"#);
                }
                if head.header("authorization") == Some("Bearer tok-1") {
                    return Action::Forward;
                }
                let host = head.header("host").unwrap_or_default();
                let action = if matches!(head.method.as_str(), "GET" | "HEAD") { "pull" } else { "pull,push" };
                let challenge = format!(
                    "WWW-Authenticate: Bearer realm=\"http://{host}/token\",service=\"test-registry\",scope=\"repository:bt/x:{action}\"\r\n"
                );
                respond("401 Unauthorized", &challenge, r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#)
            })
        };
        let proxy = format!("127.0.0.1:{}", start_proxy(reg.port, handler));
        let tmp = tempfile::tempdir().unwrap();
        let client = Client::with_keychain(&[], Keychain::from_file(&config_json(tmp.path(), &proxy, "tok-user", "tok-pw"))).unwrap();
        let blob = tmp.path().join("blob");
        let digest = write_blob(&blob, 2000, 5);
        // HEAD 401, token, HEAD 404; POST 401, token (push scope), POST; PUT with the cached token.
        assert!(client.upload_blob(&proxy, "bt/x", &digest, &blob).unwrap());
        assert_eq!(client.requests_sent(), 7);
        assert_eq!(
            *token_requests.lock().unwrap(),
            ["service=test-registry&scope=repository%3Abt%2Fx%3Apull", "service=test-registry&scope=repository%3Abt%2Fx%3Apull%2Cpush"]
        );
        // The pull token is cached.
        assert!(client.blob_exists(&proxy, "bt/x", &digest).unwrap());
        assert_eq!(client.requests_sent(), 8);

        let wrong = Client::with_keychain(&[], Keychain::from_file(&config_json(tmp.path(), &proxy, "tok-user", "nope-pw"))).unwrap();
        let err = format!("{:#}", wrong.blob_exists(&proxy, "bt/x", &digest).unwrap_err());
        assert!(err.contains("authentication failed") && err.contains("bad credentials") && !err.contains("nope-pw"), "{err}");
    }

    // ---- credentials stay on the registry's origin ----

    /// What a host other than the registry received: (method, path, Authorization header).
    type Seen = Arc<Mutex<Vec<(String, String, Option<String>)>>>;

    /// A stand-in for another origin (an upload service, a CDN) in front of the same registry:
    /// records every request; while `challenge` is set it answers 401 with that
    /// `WWW-Authenticate` (`{host}` replaced by its own address), otherwise it forwards. Its
    /// `/token` realm only records and refuses.
    fn other_origin(registry_port: u16, challenge: Arc<Mutex<Option<&'static str>>>) -> (u16, Seen) {
        let seen: Seen = Arc::default();
        let handler: Handler = {
            let seen = seen.clone();
            Arc::new(move |head: &Head| {
                seen.lock().unwrap().push((head.method.clone(), head.path.clone(), head.header("authorization").map(str::to_string)));
                if head.path.starts_with("/token") {
                    return respond("401 Unauthorized", "", "");
                }
                match *challenge.lock().unwrap() {
                    Some(c) => respond(
                        "401 Unauthorized",
                        &format!("WWW-Authenticate: {}\r\n", c.replace("{host}", head.header("host").unwrap_or_default())),
                        r#"{"errors":[{"code":"UNAUTHORIZED","message":"credentials wanted by another origin"}]}"#,
                    ),
                    None => Action::Forward,
                }
            })
        };
        (start_proxy(registry_port, handler), seen)
    }

    /// A registry front requiring `fo-user:fo-pw`, as Basic auth or (`bearer`) as the Basic
    /// credentials of its own token realm. Upload sessions it opens are handed to
    /// `upload_port` (an absolute `Location` there), blob GETs redirected to `blob_port`.
    fn authenticating_front(registry_port: u16, bearer: bool, upload_port: Option<u16>, blob_port: Option<u16>) -> u16 {
        let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("fo-user:fo-pw"));
        let handler: Handler = Arc::new(move |head: &Head| {
            let host = head.header("host").unwrap_or_default().to_string();
            let auth = head.header("authorization");
            if head.path.starts_with("/token?") {
                return if auth == Some(basic.as_str()) {
                    respond("200 OK", "Content-Type: application/json\r\n", r#"{"token":"front-token","expires_in":300}"#)
                } else {
                    respond("401 Unauthorized", "", "")
                };
            }
            let authorized = if bearer { auth == Some("Bearer front-token") } else { auth == Some(basic.as_str()) };
            if !authorized {
                let challenge = if bearer {
                    format!("WWW-Authenticate: Bearer realm=\"http://{host}/token\",service=\"front\"\r\n")
                } else {
                    "WWW-Authenticate: Basic realm=\"front\"\r\n".to_string()
                };
                return respond(
                    "401 Unauthorized",
                    &challenge,
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
                );
            }
            match (head.method.as_str(), upload_port, blob_port) {
                ("POST", Some(port), _) if head.path.contains("/blobs/uploads/") => {
                    Action::ForwardMap(Box::new(move |answer: Vec<u8>| {
                        // distribution's Location is absolute, built from our Host header.
                        String::from_utf8_lossy(&answer)
                            .replace(&format!("http://{host}/"), &format!("http://127.0.0.1:{port}/"))
                            .into_bytes()
                    }))
                }
                ("GET", _, Some(port)) if head.path.contains("/blobs/sha256:") => {
                    respond("307 Temporary Redirect", &format!("Location: http://127.0.0.1:{port}{}\r\n", head.path), "")
                }
                _ => Action::Forward,
            }
        });
        start_proxy(registry_port, handler)
    }

    /// A client with `fo-user:fo-pw` for `host` in a fresh `$DOCKER_CONFIG`.
    fn front_client(dir: &Path, host: &str) -> Client {
        std::fs::create_dir_all(dir).unwrap();
        config_json(dir, host, "fo-user", "fo-pw");
        let path = auth::config_path_from(|k| (k == "DOCKER_CONFIG").then(|| dir.display().to_string())).unwrap();
        Client::with_keychain(&[], Keychain::from_file(&path)).unwrap()
    }

    fn assert_no_credentials(seen: &Seen) {
        let seen = seen.lock().unwrap();
        for (method, path, auth) in seen.iter() {
            assert!(auth.is_none(), "{method} {path} on another origin carried Authorization {auth:?}");
            assert!(!path.starts_with("/token"), "the other origin's token realm was asked: {method} {path}");
        }
    }

    #[test]
    fn credentials_never_go_to_an_upload_location_on_another_origin() {
        if !have_tool(REGISTRY_BIN, "Debian package docker-registry") {
            return;
        }
        let reg = TestRegistry::start(None);
        let direct = Client::new(&[]).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        for (i, bearer) in [false, true].into_iter().enumerate() {
            let challenge = Arc::new(Mutex::new(None));
            let (upload_port, seen) = other_origin(reg.port, challenge.clone());
            let host = format!("127.0.0.1:{}", authenticating_front(reg.port, bearer, Some(upload_port), None));
            let client = front_client(&tmp.path().join(format!("docker-{i}")), &host);
            let repo = format!("xo/upload{i}");

            // The POST answers with a session on another port; the blob goes there, anonymously.
            let blob = tmp.path().join(format!("blob-{i}"));
            let digest = write_blob(&blob, 4000, 10 + i as u64);
            assert!(client.upload_blob(&host, &repo, &digest, &blob).unwrap());
            assert!(direct.blob_exists(&reg.host(), &repo, &digest).unwrap(), "the upload completed");
            assert!(seen.lock().unwrap().iter().any(|(m, _, _)| m == "PUT"), "the blob went to the upload origin");
            assert_no_credentials(&seen);

            // That origin asks for credentials itself: none are sent, and the upload fails cleanly.
            *challenge.lock().unwrap() =
                Some(if bearer { "Bearer realm=\"http://{host}/token\",service=\"upload\"" } else { "Basic realm=\"upload\"" });
            let blob = tmp.path().join(format!("blob-{i}-b"));
            let digest = write_blob(&blob, 4000, 20 + i as u64);
            let err = format!("{:#}", client.upload_blob(&host, &repo, &digest, &blob).unwrap_err());
            assert_no_credentials(&seen);
            assert!(err.contains("401") && err.contains("another origin") && !err.contains("fo-pw"), "{err}");
        }
    }

    #[test]
    fn credentials_never_follow_a_blob_redirect_to_another_origin() {
        if !have_tool(REGISTRY_BIN, "Debian package docker-registry") {
            return;
        }
        let reg = TestRegistry::start(None);
        let direct = Client::new(&[]).unwrap();
        let tmp = tempfile::tempdir().unwrap();
        let (config, layer) = (tmp.path().join("config"), tmp.path().join("layer"));
        let (config_digest, layer_digest) = (write_blob(&config, 300, 30), write_blob(&layer, 5000, 31));
        for (digest, path) in [(&config_digest, &config), (&layer_digest, &layer)] {
            direct.upload_blob(&reg.host(), "xo/pull", digest, path).unwrap();
        }
        let manifest = manifest_for((&config_digest, 300), (&layer_digest, 5000));
        direct.put_manifest(&reg.host(), "xo/pull", "v1", OCI_MANIFEST, &manifest).unwrap();

        for (i, bearer) in [false, true].into_iter().enumerate() {
            let challenge = Arc::new(Mutex::new(None));
            let (cdn_port, seen) = other_origin(reg.port, challenge.clone());
            let host = format!("127.0.0.1:{}", authenticating_front(reg.port, bearer, None, Some(cdn_port)));
            let client = front_client(&tmp.path().join(format!("docker-{i}")), &host);
            let image = Reference::parse(&format!("{host}/xo/pull:v1")).unwrap();

            // oci_pull: the manifest from the registry, the blobs from the CDN without credentials.
            let dest = tmp.path().join(format!("pulled-{i}"));
            crate::oci::push::pull(&client, &image, None, &dest).unwrap();
            for digest in [&config_digest, &layer_digest] {
                assert!(dest.join("blobs/sha256").join(digest.strip_prefix("sha256:").unwrap()).is_file(), "{digest} pulled");
            }
            assert_eq!(seen.lock().unwrap().iter().filter(|(m, _, _)| m == "GET").count(), 2, "both blobs came from the CDN");
            assert_no_credentials(&seen);

            // A CDN that challenges (naming a token realm of its own) gets no credentials either.
            *challenge.lock().unwrap() = Some("Bearer realm=\"http://{host}/token\",service=\"cdn\"");
            let err = format!("{:#}", crate::oci::push::pull(&client, &image, None, &tmp.path().join(format!("refused-{i}"))).unwrap_err());
            assert_no_credentials(&seen);
            assert!(err.contains("401") && err.contains("another origin"), "{err}");
        }
    }
}
