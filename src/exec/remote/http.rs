//! Bazel's HTTP cache protocol, as bazel-remote and nginx WebDAV serve it: `GET`/`PUT`
//! `<base>/ac/<sha256>` holds a serialized `ActionResult`, `<base>/cas/<sha256>` a blob;
//! 404 is a miss. Basic auth comes from the URL's user info (sent as a header, never
//! printed: errors name the URL without it). `https://` trusts `--tls_certificate`'s CA
//! certificates (else the system's) and presents `--tls_client_certificate`, as Bazel does.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use prost::Message;
use reqwest::StatusCode;
use reqwest::blocking::{Body, Client, RequestBuilder, Response};

use super::{BlobSource, Digest, RemoteOptions, Store, source_len};

pub struct HttpStore {
    client: Client,
    /// The URL without user info and without a trailing `/`.
    base: String,
    auth: Option<(String, String)>,
    headers: Vec<(String, String)>,
    /// Whether `--tls_certificate` and a client certificate were given (for hints on TLS
    /// failures).
    tls_given: (bool, bool),
}

impl HttpStore {
    pub fn new(opts: &RemoteOptions) -> Result<HttpStore> {
        let mut url =
            reqwest::Url::parse(&opts.url).map_err(|e| anyhow!("--remote_cache: not a URL ({e}): {}", super::redact(&opts.url)))?;
        let auth = (!url.username().is_empty()).then(|| (percent_decode(url.username()), percent_decode(url.password().unwrap_or(""))));
        let _ = url.set_username("");
        let _ = url.set_password(None);
        let base = url.as_str().trim_end_matches('/').to_owned();
        // reqwest is built without a default crypto provider; installing twice is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = Client::builder()
            .user_agent(concat!("ocib/", env!("CARGO_PKG_VERSION")))
            .timeout(opts.timeout)
            .connect_timeout(opts.timeout.min(Duration::from_secs(30)));
        // `https://`: the CA certificates of `--tls_certificate` only (as Bazel), else the
        // system's; the client certificate for servers that ask for one.
        if let Some(pem) = &opts.tls.ca_certificates {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| anyhow!("--tls_certificate: {e}"))?;
            builder = builder.tls_certs_only(certs);
        }
        if let Some(id) = &opts.tls.client_identity {
            let mut pem = id.certificate.clone();
            pem.push(b'\n');
            pem.extend_from_slice(&id.key);
            // reqwest's message names no bytes of the file.
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| anyhow!("--tls_client_certificate/--tls_client_key: {e}"))?;
            builder = builder.identity(identity);
        }
        let client = builder.build().context("cannot create the HTTP client")?;
        Ok(HttpStore {
            client,
            base,
            auth,
            headers: opts.headers.clone(),
            tls_given: (opts.tls.ca_certificates.is_some(), opts.tls.client_identity.is_some()),
        })
    }

    fn request(&self, method: reqwest::Method, kind: &str, hash: &str) -> RequestBuilder {
        let mut r = self.client.request(method, format!("{}/{kind}/{hash}", self.base));
        if let Some((user, password)) = &self.auth {
            r = r.basic_auth(user, Some(password));
        }
        for (k, v) in &self.headers {
            r = r.header(k, v);
        }
        r
    }

    fn send(&self, r: RequestBuilder, what: &str) -> Result<Response> {
        r.send()
            .map_err(|e| {
                let text = error_text(e);
                match self.base.starts_with("https:").then(|| super::tls::hint_for(&text, self.tls_given.0, self.tls_given.1)).flatten() {
                    Some(hint) => anyhow!("{what}: {text} ({hint})"),
                    None => anyhow!("{what}: {text}"),
                }
            })
            .with_context(|| format!("HTTP cache {}", self.base))
    }
}

/// A request error and the errors under it (reqwest's own says only "error sending request";
/// why, e.g. a certificate the client does not trust, is in its source chain). Without the
/// URL, which may carry credentials.
fn error_text(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text = format!("{text}: {s_text}");
        }
        source = s.source();
    }
    text
}

/// Fails on an answer other than success (or 404 where the caller handles it).
fn check(resp: &Response, what: &str, base: &str) -> Result<()> {
    if !resp.status().is_success() {
        bail!("HTTP cache {base}: {what}: {}", resp.status());
    }
    Ok(())
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = bytes.get(i + 1..i + 3).and_then(|h| std::str::from_utf8(h).ok()).and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl Store for HttpStore {
    fn get_action_result(&self, action: &Digest) -> Result<Option<re::ActionResult>> {
        let what = format!("GET /ac/{}", action.hash);
        let resp = self.send(self.request(reqwest::Method::GET, "ac", &action.hash), &what)?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        check(&resp, &what, &self.base)?;
        let bytes = resp.bytes().map_err(|e| anyhow!("HTTP cache {}: {what}: {}", self.base, error_text(e)))?;
        // An entry that does not parse is a miss (it is overwritten when the action runs).
        Ok(re::ActionResult::decode(bytes.as_ref()).ok())
    }

    fn update_action_result(&self, action: &Digest, result: &re::ActionResult) -> Result<()> {
        let what = format!("PUT /ac/{}", action.hash);
        let resp = self.send(self.request(reqwest::Method::PUT, "ac", &action.hash).body(result.encode_to_vec()), &what)?;
        check(&resp, &what, &self.base)
    }

    fn find_missing(&self, blobs: &[Digest]) -> Result<Vec<Digest>> {
        let mut missing = Vec::new();
        for d in blobs {
            let what = format!("HEAD /cas/{}", d.hash);
            let resp = self.send(self.request(reqwest::Method::HEAD, "cas", &d.hash), &what)?;
            if resp.status() == StatusCode::NOT_FOUND {
                missing.push(d.clone());
                continue;
            }
            check(&resp, &what, &self.base)?;
        }
        Ok(missing)
    }

    fn upload(&self, blobs: Vec<(Digest, BlobSource)>) -> Result<()> {
        for (d, source) in blobs {
            let what = format!("PUT /cas/{}", d.hash);
            let len = source_len(&source);
            let body = match source {
                BlobSource::Bytes(b) => Body::from(b),
                BlobSource::File(p) => Body::sized(std::fs::File::open(&p).with_context(|| format!("reading {}", p.display()))?, len),
            };
            let resp = self.send(self.request(reqwest::Method::PUT, "cas", &d.hash).body(body), &what)?;
            check(&resp, &what, &self.base)?;
        }
        Ok(())
    }

    fn download(&self, digest: &Digest, out: &mut dyn Write) -> Result<bool> {
        let what = format!("GET /cas/{}", digest.hash);
        let mut resp = self.send(self.request(reqwest::Method::GET, "cas", &digest.hash), &what)?;
        if resp.status() == StatusCode::NOT_FOUND {
            return Ok(false);
        }
        check(&resp, &what, &self.base)?;
        resp.copy_to(out).map_err(|e| anyhow!("HTTP cache {}: {what}: {}", self.base, error_text(e)))?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn user_info_is_percent_decoded() {
        assert_eq!(super::percent_decode("p%40ss%3Aword"), "p@ss:word");
        assert_eq!(super::percent_decode("100%"), "100%");
    }
}
