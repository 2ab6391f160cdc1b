//! `apk_import` (one package of an `apko.lock.json`, in the repository `translate_lock`
//! generates) and `apk_filegroup` (that repository's `:contents`). rules_apko downloads each
//! package's signature, control and data sections with HTTP range requests and pins control
//! and data by checksum; here one in-process action does the same and writes the whole `.apk`.
//! Its key is the URL, ranges and checksums, so the package lands once in the content-addressed
//! store and later builds (and other workspaces sharing the cache) never fetch it again.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use super::apk;
use crate::analysis::{AnalysisError, Providers, RuleContext};
use crate::exec::{Action, ActionContext, ActionKind, InProcess};
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder};

/// rules_apko's `apk_import` attributes (a repository rule there; a target of the lock's
/// repository here).
pub fn import_schema() -> RuleSchema {
    SchemaBuilder::new("apk_import")
        .mandatory("package_name", A::String)
        .mandatory("version", A::String)
        .mandatory("architecture", A::String)
        .mandatory("url", A::String)
        .attr("signature_range", A::String)
        .attr("signature_checksum", A::String)
        .attr("control_range", A::String)
        .attr("control_checksum", A::String)
        .attr("data_range", A::String)
        .attr("data_checksum", A::String)
        .build()
}

/// Declares the fetch of one package.
pub fn analyze_import(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let fetch = FetchApk {
        package: ctx.string("package_name")?,
        version: ctx.string("version")?,
        architecture: ctx.string("architecture")?,
        url: ctx.string("url")?,
        signature_range: ctx.string("signature_range")?,
        control_range: ctx.string("control_range")?,
        control_checksum: ctx.string("control_checksum")?,
        data_range: ctx.string("data_range")?,
        data_checksum: ctx.string("data_checksum")?,
        out: String::new(),
    };
    if !fetch.url.starts_with("http://") && !fetch.url.starts_with("https://") {
        return Err(AnalysisError::new(format!("attribute 'url': '{}' is not an http(s) URL", fetch.url)));
    }
    // Under a directory named by the architecture, so `apko_image` takes only its own.
    let out = ctx.declare(&format!("{}/{}-{}.apk", fetch.architecture, fetch.package, fetch.version));
    let fetch = FetchApk { out: out.exec_path.clone(), ..fetch };
    let mut action = Action::new("ApkFetch", ctx.label(), ActionKind::Run(Arc::new(fetch.clone()))).output(out.clone());
    action.progress = format!("Fetching {}-{}", fetch.package, fetch.version);
    ctx.register(action)?;
    Ok(Providers { files: vec![out], declared: ctx.declared(), ..Default::default() })
}

/// rules_apko's `apk_filegroup` (`@<lock>//:contents`): the packages, in the lock's order.
pub fn contents_schema() -> RuleSchema {
    SchemaBuilder::new("apk_filegroup")
        .attr("apks", A::LabelList)
        .attr("indexes", A::LabelList)
        .attr("keyrings", A::LabelList)
        .attr("lockfile", A::String)
        .build()
}

pub fn analyze_contents(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let files = ctx.files("apks")?;
    Ok(Providers { files, ..Default::default() })
}

/// Downloads one package by the lock's ranges (or whole, when the lock has none) and checks it.
#[derive(Serialize, Clone, Deserialize)]
pub struct FetchApk {
    pub package: String,
    pub version: String,
    pub architecture: String,
    pub url: String,
    pub signature_range: String,
    pub control_range: String,
    pub control_checksum: String,
    pub data_range: String,
    pub data_checksum: String,
    pub out: String,
}

/// Attempts per request (the first included), as the registry client makes.
const ATTEMPTS: u32 = 4;

fn client() -> Result<reqwest::blocking::Client> {
    // reqwest is built without a default crypto provider; installing twice is harmless.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(300))
        .user_agent(concat!("ocib/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("creating the HTTP client")
}

/// GETs `url` (a byte range of it when `range` is set), retrying server errors, 429 and
/// connection failures with exponential backoff.
pub fn get(client: &reqwest::blocking::Client, url: &str, range: &str) -> Result<Vec<u8>> {
    let mut attempt = 1;
    loop {
        let mut request = client.get(url);
        if !range.is_empty() {
            request = request.header(reqwest::header::RANGE, range);
        }
        let result = request.send().map_err(|e| (true, anyhow!("{}", e.without_url()))).and_then(|response| {
            let status = response.status();
            if status.is_server_error() || status.as_u16() == 429 {
                return Err((true, anyhow!("HTTP {status}")));
            }
            if !status.is_success() {
                return Err((false, anyhow!("HTTP {status}")));
            }
            if !range.is_empty() && status.as_u16() != 206 {
                return Err((false, anyhow!("the server ignored the Range header '{range}' (HTTP {status}, not 206)")));
            }
            response.bytes().map(|b| b.to_vec()).map_err(|e| (true, anyhow!("{}", e.without_url())))
        });
        match result {
            Ok(bytes) => return Ok(bytes),
            Err((true, e)) if attempt < ATTEMPTS => {
                let _ = e;
                std::thread::sleep(Duration::from_millis(200) * 2u32.pow(attempt - 1));
                attempt += 1;
            }
            Err((_, e)) => {
                return Err(e.context(format!("GET {url}{}", if range.is_empty() { String::new() } else { format!(" ({range})") })));
            }
        }
    }
}

impl FetchApk {
    fn mismatch(&self, section: &str, expected: &str, actual: &str) -> anyhow::Error {
        anyhow!(
            "checksum mismatch for package {} {} ({section} section) from {}: expected {expected}, got {actual}",
            self.package,
            self.version,
            self.url
        )
    }

    /// The package's bytes, checked against the lock.
    pub fn fetch(&self) -> Result<Vec<u8>> {
        let client = client()?;
        let ranged = !self.control_range.is_empty() && !self.data_range.is_empty();
        let bytes = if ranged {
            let mut bytes = Vec::new();
            // An empty signature range means the package has no signature section (rules_apko:
            // most Wolfi packages).
            if !self.signature_range.is_empty() {
                bytes.extend(get(&client, &self.url, &self.signature_range)?);
            }
            let control = get(&client, &self.url, &self.control_range)?;
            if !self.control_checksum.is_empty() {
                apk::verify_sri(&control, &self.control_checksum)
                    .map_err(|actual| self.mismatch("control", &self.control_checksum, &actual))?;
            }
            let data = get(&client, &self.url, &self.data_range)?;
            if !self.data_checksum.is_empty() {
                apk::verify_sri(&data, &self.data_checksum).map_err(|actual| self.mismatch("data", &self.data_checksum, &actual))?;
            }
            bytes.extend(control);
            bytes.extend(data);
            bytes
        } else {
            let bytes = get(&client, &self.url, "")?;
            let sections = apk::split(&bytes).with_context(|| format!("package {} {} from {}", self.package, self.version, self.url))?;
            if !self.control_checksum.is_empty() {
                apk::verify_sri(&sections.control.compressed, &self.control_checksum)
                    .map_err(|actual| self.mismatch("control", &self.control_checksum, &actual))?;
            }
            if !self.data_checksum.is_empty() {
                apk::verify_sri(&sections.data.compressed, &self.data_checksum)
                    .map_err(|actual| self.mismatch("data", &self.data_checksum, &actual))?;
            }
            bytes
        };
        if self.control_checksum.is_empty() && self.data_checksum.is_empty() {
            bail!("package {} {} from {}: the lock pins no checksum", self.package, self.version, self.url);
        }
        Ok(bytes)
    }
}

impl InProcess for FetchApk {
    fn kind(&self) -> &'static str {
        "FetchApk"
    }

    fn remotable(&self) -> bool {
        false
    }

    fn params(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let bytes = self.fetch()?;
        std::fs::write(ctx.output(&self.out)?, bytes)?;
        Ok(())
    }
}
