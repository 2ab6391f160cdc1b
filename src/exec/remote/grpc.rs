//! The remote cache over gRPC (REAPI v2): Capabilities at connect (digest function, batch
//! limit, whether the action cache takes updates), ActionCache Get/UpdateActionResult, CAS
//! FindMissingBlobs/BatchUpdateBlobs/BatchReadBlobs, and ByteStream Read/Write for blobs
//! above the batch limit; `grpcs://` over TLS (rustls), with `--tls_certificate` and a client
//! certificate as Bazel's flags give them. The stubs are `bazel-remote-apis`' pregenerated tonic code; the
//! calls run on a small tokio runtime of this store's own, blocking the scheduler's threads
//! (which are threads of their own, not async tasks).

use std::io::{Read, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use bazel_remote_apis::google::bytestream as bs;
use re::action_cache_client::ActionCacheClient;
use re::capabilities_client::CapabilitiesClient;
use re::content_addressable_storage_client::ContentAddressableStorageClient;
use tonic::metadata::{AsciiMetadataKey, AsciiMetadataValue};
use tonic::transport::Channel;

use super::tls::TlsOptions;
use super::{BlobSource, Digest, RemoteOptions, Store, read_source, source_len};

/// Room left in a batch request for everything but the blobs' bytes.
const BATCH_OVERHEAD: usize = 64 * 1024;
/// The batch limit when the server names none (gRPC's default message size).
const DEFAULT_BATCH_LIMIT: usize = 4 * 1024 * 1024;
/// ByteStream chunk size.
const CHUNK: usize = 1 << 20;

/// A gRPC connection to an REAPI server and its cache services.
pub struct GrpcStore {
    rt: tokio::runtime::Runtime,
    channel: Channel,
    instance: String,
    headers: Vec<(AsciiMetadataKey, AsciiMetadataValue)>,
    timeout: Duration,
    /// The largest sum of blob sizes one batch request may carry.
    batch_limit: usize,
    /// Whether the server lets clients write the action cache.
    update_enabled: bool,
    /// For ByteStream upload names.
    uploads: AtomicU64,
    target: String,
}

impl GrpcStore {
    /// Connects and asks the server's capabilities.
    pub fn connect(opts: &RemoteOptions) -> Result<GrpcStore> {
        let (scheme, rest) =
            opts.url.split_once("://").ok_or_else(|| anyhow!("--remote_cache: not a URL: {}", super::redact(&opts.url)))?;
        let tls = scheme.eq_ignore_ascii_case("grpcs");
        let authority = rest.trim_end_matches('/');
        if authority.contains('@') || authority.contains('/') {
            bail!("--remote_cache: expected {}://HOST:PORT, got {}", scheme.to_ascii_lowercase(), super::redact(&opts.url));
        }
        let target = format!("{}://{authority}", if tls { "grpcs" } else { "grpc" });
        let mut headers = Vec::new();
        for (k, v) in &opts.headers {
            let key: AsciiMetadataKey =
                k.to_ascii_lowercase().parse().map_err(|_| anyhow!("--remote_header: '{k}' is not a header name"))?;
            let value: AsciiMetadataValue = v.parse().map_err(|_| anyhow!("--remote_header: the value of '{k}' is not ASCII"))?;
            headers.push((key, value));
        }
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("ocib-remote")
            .enable_all()
            .build()
            .context("starting the gRPC client runtime")?;
        let endpoint = tonic::transport::Endpoint::from_shared(format!("{}://{authority}", if tls { "https" } else { "http" }))
            .map_err(|e| anyhow!("--remote_cache: {e}: {target}"))?
            .connect_timeout(opts.timeout.min(Duration::from_secs(30)))
            .timeout(opts.timeout)
            .http2_keep_alive_interval(Duration::from_secs(30));
        // As Bazel: `grpcs://` is TLS, `grpc://` plaintext (the TLS flags do not apply to it).
        let endpoint = if tls { endpoint.tls_config(tls_config(&opts.tls)).map_err(|e| tls_error(&target, &e))? } else { endpoint };
        let channel = {
            let _guard = rt.enter();
            endpoint.connect_lazy()
        };
        let mut store = GrpcStore {
            rt,
            channel,
            instance: opts.instance_name.clone(),
            headers,
            timeout: opts.timeout,
            batch_limit: DEFAULT_BATCH_LIMIT,
            update_enabled: true,
            uploads: AtomicU64::new(0),
            target,
        };
        let caps = store
            .rt
            .block_on(
                CapabilitiesClient::new(store.channel.clone())
                    .get_capabilities(store.request(re::GetCapabilitiesRequest { instance_name: store.instance.clone() })),
            )
            .map_err(|s| {
                let e = store.error("GetCapabilities", s);
                match tls.then(|| super::tls::hint(&e.to_string(), &opts.tls)).flatten() {
                    Some(hint) => anyhow!("{e} ({hint})"),
                    None => e,
                }
            })?
            .into_inner();
        if let Some(cache) = caps.cache_capabilities {
            let sha256 = re::digest_function::Value::Sha256 as i32;
            if !cache.digest_functions.is_empty() && !cache.digest_functions.contains(&sha256) {
                bail!("remote cache {}: the server does not offer the SHA256 digest function", store.target);
            }
            if cache.max_batch_total_size_bytes > 0 {
                store.batch_limit = cache.max_batch_total_size_bytes as usize;
            }
            store.update_enabled = cache.action_cache_update_capabilities.is_none_or(|c| c.update_enabled);
        }
        Ok(store)
    }

    /// The connection, for the Execution service (`execute.rs`), which shares this setup.
    pub(super) fn channel(&self) -> (&tokio::runtime::Runtime, Channel) {
        (&self.rt, self.channel.clone())
    }

    /// A request without a deadline (an execution takes as long as its action), with the
    /// `--remote_header`s.
    pub(super) fn request_without_deadline<T>(&self, message: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(message);
        for (k, v) in &self.headers {
            r.metadata_mut().insert(k.clone(), v.clone());
        }
        r
    }

    pub(super) fn instance(&self) -> &str {
        &self.instance
    }

    fn request<T>(&self, message: T) -> tonic::Request<T> {
        let mut r = tonic::Request::new(message);
        for (k, v) in &self.headers {
            r.metadata_mut().insert(k.clone(), v.clone());
        }
        r.set_timeout(self.timeout);
        r
    }

    pub(super) fn error(&self, call: &str, status: tonic::Status) -> anyhow::Error {
        anyhow!("{} {call}: {:?}: {}", self.target, status.code(), status_text(&status))
    }

    fn cas(&self) -> ContentAddressableStorageClient<Channel> {
        ContentAddressableStorageClient::new(self.channel.clone())
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX)
    }

    fn bytestream(&self) -> bs::byte_stream_client::ByteStreamClient<Channel> {
        bs::byte_stream_client::ByteStreamClient::new(self.channel.clone()).max_decoding_message_size(usize::MAX)
    }

    fn prefix(&self) -> String {
        if self.instance.is_empty() { String::new() } else { format!("{}/", self.instance) }
    }

    /// Whether a blob goes in a batch request (else by ByteStream).
    fn fits_batch(&self, size: u64) -> bool {
        (size as usize) < self.batch_limit.saturating_sub(BATCH_OVERHEAD).max(1)
    }

    fn batch_update(&self, batch: Vec<(Digest, Vec<u8>)>) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let requests = batch
            .into_iter()
            .map(|(digest, data)| re::batch_update_blobs_request::Request { digest: Some(digest), data, compressor: 0 })
            .collect();
        let response = self
            .rt
            .block_on(self.cas().batch_update_blobs(self.request(re::BatchUpdateBlobsRequest {
                instance_name: self.instance.clone(),
                requests,
                digest_function: 0,
            })))
            .map_err(|s| self.error("BatchUpdateBlobs", s))?
            .into_inner();
        for r in response.responses {
            if let Some(status) = r.status.filter(|s| s.code != 0) {
                let hash = r.digest.map(|d| d.hash).unwrap_or_default();
                bail!("{} BatchUpdateBlobs: blob {hash}: code {}: {}", self.target, status.code, status.message);
            }
        }
        Ok(())
    }

    fn bytestream_write(&self, digest: &Digest, source: BlobSource) -> Result<()> {
        let n = self.uploads.fetch_add(1, Ordering::Relaxed);
        // Any unique id will do for the server; this one is unique per process and blob.
        let id = super::sha256_hex(format!("{}-{n}-{:?}", std::process::id(), std::time::SystemTime::now()).as_bytes());
        let uuid = format!("{}-{}-{}-{}-{}", &id[..8], &id[8..12], &id[12..16], &id[16..20], &id[20..32]);
        let resource = format!("{}uploads/{uuid}/blobs/{}/{}", self.prefix(), digest.hash, digest.size_bytes);
        let mut reader: Box<dyn Read + Send> = match source {
            BlobSource::Bytes(b) => Box::new(std::io::Cursor::new(b)),
            BlobSource::File(p) => Box::new(std::fs::File::open(&p).with_context(|| format!("reading {}", p.display()))?),
        };
        let total = digest.size_bytes;
        let mut offset: i64 = 0;
        let mut first = true;
        let chunks = std::iter::from_fn(move || {
            if !first && offset >= total {
                return None;
            }
            let mut data = vec![0u8; CHUNK.min((total - offset).max(0) as usize)];
            // A file that shrank under us is caught by the server's digest check.
            let got = reader.read(&mut data).unwrap_or(0);
            data.truncate(got);
            let request = bs::WriteRequest {
                resource_name: if first { resource.clone() } else { String::new() },
                write_offset: offset,
                finish_write: offset + got as i64 >= total || got == 0,
                data,
            };
            first = false;
            offset += got as i64;
            if got == 0 {
                offset = total;
            }
            Some(request)
        });
        let stream = tonic::codegen::tokio_stream::iter(chunks);
        let mut client = self.bytestream();
        let mut request = tonic::Request::new(stream);
        for (k, v) in &self.headers {
            request.metadata_mut().insert(k.clone(), v.clone());
        }
        request.set_timeout(self.timeout);
        let response = self.rt.block_on(client.write(request)).map_err(|s| self.error("ByteStream.Write", s))?.into_inner();
        if response.committed_size != total && response.committed_size != -1 {
            bail!("{} ByteStream.Write: {} of {total} bytes of blob {} committed", self.target, response.committed_size, digest.hash);
        }
        Ok(())
    }
}

/// The TLS configuration of a `grpcs://` remote: the CA certificates of `--tls_certificate`
/// only, or else the system's (rustls-native-certs: `SSL_CERT_FILE`, `SSL_CERT_DIR`, the
/// distribution's bundle); the client certificate, if given. The server's name is checked
/// against the URL's host (a DNS name or an IP address in the certificate's names).
fn tls_config(tls: &TlsOptions) -> tonic::transport::ClientTlsConfig {
    use tonic::transport::{Certificate, ClientTlsConfig, Identity};
    // Also used when a certificate file names no provider; installing twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut config = ClientTlsConfig::new();
    config = match &tls.ca_certificates {
        Some(pem) => config.ca_certificate(Certificate::from_pem(pem)),
        None => config.with_native_roots(),
    };
    if let Some(id) = &tls.client_identity {
        config = config.identity(Identity::from_pem(&id.certificate, &id.key));
    }
    config
}

/// Why TLS could not be set up (no system CA certificates, a file rustls rejects).
fn tls_error(target: &str, e: &tonic::transport::Error) -> anyhow::Error {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text = format!("{text}: {s}");
        source = s.source();
    }
    if text.contains("no native certs") {
        return anyhow!("{target}: no trusted CA certificates on this system (pass the server's CA with --tls_certificate=FILE)");
    }
    anyhow!("{target}: setting up TLS: {text}")
}

/// A status's message and the errors under it: a transport failure's reason (a refused
/// connection, a certificate the client does not trust) is in its source chain.
fn status_text(status: &tonic::Status) -> String {
    let mut text = status.message().to_owned();
    let mut source = std::error::Error::source(status);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text = format!("{text}: {s_text}");
        }
        source = s.source();
    }
    text
}

impl Store for GrpcStore {
    fn get_action_result(&self, action: &Digest) -> Result<Option<re::ActionResult>> {
        let mut client = ActionCacheClient::new(self.channel.clone()).max_decoding_message_size(usize::MAX);
        let call = client.get_action_result(self.request(re::GetActionResultRequest {
            instance_name: self.instance.clone(),
            action_digest: Some(action.clone()),
            ..Default::default()
        }));
        match self.rt.block_on(call) {
            Ok(r) => Ok(Some(r.into_inner())),
            Err(s) if s.code() == tonic::Code::NotFound => Ok(None),
            Err(s) => Err(self.error("GetActionResult", s)),
        }
    }

    fn update_action_result(&self, action: &Digest, result: &re::ActionResult) -> Result<()> {
        if !self.update_enabled {
            return Ok(());
        }
        let mut client = ActionCacheClient::new(self.channel.clone());
        let call = client.update_action_result(self.request(re::UpdateActionResultRequest {
            instance_name: self.instance.clone(),
            action_digest: Some(action.clone()),
            action_result: Some(result.clone()),
            ..Default::default()
        }));
        self.rt.block_on(call).map_err(|s| self.error("UpdateActionResult", s))?;
        Ok(())
    }

    fn find_missing(&self, blobs: &[Digest]) -> Result<Vec<Digest>> {
        let mut missing = Vec::new();
        // Requests of a bounded size (a digest is ~80 bytes on the wire).
        for part in blobs.chunks(10_000) {
            let mut cas = self.cas();
            let call = cas.find_missing_blobs(self.request(re::FindMissingBlobsRequest {
                instance_name: self.instance.clone(),
                blob_digests: part.to_vec(),
                digest_function: 0,
            }));
            missing.extend(self.rt.block_on(call).map_err(|s| self.error("FindMissingBlobs", s))?.into_inner().missing_blob_digests);
        }
        Ok(missing)
    }

    fn upload(&self, blobs: Vec<(Digest, BlobSource)>) -> Result<()> {
        let mut batch: Vec<(Digest, Vec<u8>)> = Vec::new();
        let mut batch_size = 0usize;
        for (digest, source) in blobs {
            let size = source_len(&source);
            if !self.fits_batch(size) {
                self.bytestream_write(&digest, source)?;
                continue;
            }
            if batch_size + size as usize > self.batch_limit.saturating_sub(BATCH_OVERHEAD) {
                self.batch_update(std::mem::take(&mut batch))?;
                batch_size = 0;
            }
            batch_size += size as usize;
            batch.push((digest, read_source(&source)?));
        }
        self.batch_update(batch)
    }

    fn download(&self, digest: &Digest, out: &mut dyn Write) -> Result<bool> {
        if self.fits_batch(digest.size_bytes.max(0) as u64) {
            let mut cas = self.cas();
            let call = cas.batch_read_blobs(self.request(re::BatchReadBlobsRequest {
                instance_name: self.instance.clone(),
                digests: vec![digest.clone()],
                ..Default::default()
            }));
            let response = self.rt.block_on(call).map_err(|s| self.error("BatchReadBlobs", s))?.into_inner();
            let Some(r) = response.responses.into_iter().next() else { return Ok(false) };
            match r.status.map(|s| (s.code, s.message)) {
                Some((0, _)) | None => {}
                Some((code, _)) if code == tonic::Code::NotFound as i32 => return Ok(false),
                Some((code, message)) => bail!("{} BatchReadBlobs: blob {}: code {code}: {message}", self.target, digest.hash),
            }
            out.write_all(&r.data).context("writing a downloaded blob")?;
            return Ok(true);
        }
        let resource = format!("{}blobs/{}/{}", self.prefix(), digest.hash, digest.size_bytes);
        let mut client = self.bytestream();
        let request = self.request(bs::ReadRequest { resource_name: resource, read_offset: 0, read_limit: 0 });
        self.rt.block_on(async {
            let mut stream = match client.read(request).await {
                Ok(s) => s.into_inner(),
                Err(s) if s.code() == tonic::Code::NotFound => return Ok(false),
                Err(s) => return Err(self.error("ByteStream.Read", s)),
            };
            loop {
                match stream.message().await {
                    Ok(Some(chunk)) => out.write_all(&chunk.data).context("writing a downloaded blob")?,
                    Ok(None) => return Ok(true),
                    Err(s) if s.code() == tonic::Code::NotFound => return Ok(false),
                    Err(s) => return Err(self.error("ByteStream.Read", s)),
                }
            }
        })
    }
}
