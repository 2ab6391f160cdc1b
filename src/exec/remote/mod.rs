//! The remote cache: action results and output blobs shared between machines through a
//! Remote Execution API (REAPI v2) service over gRPC (BuildGrid, Buildbarn, bazel-remote,
//! BuildBuddy...) or Bazel's HTTP cache protocol (bazel-remote, nginx WebDAV).
//!
//! Every action gets an REAPI identity ([`describe`]): a `Command` (arguments, environment,
//! output paths) and an input root (a Merkle tree of `Directory` messages naming every input
//! file by sha256), hashed into an `Action` digest. Nothing in it depends on the machine or the
//! checkout's location, so a result stored by CI is found by every developer. Actions that run
//! inside ocib are the command `ocib-out/ocib action <kind> <params>`, with the running ocib
//! binary in their input root, so a remote worker can run them too ([`execute`]).
//!
//! The scheduler asks the remote cache only after a local miss ([`fetch`]), and stores what it
//! ran ([`upload`]). A result whose blobs are missing, or a blob whose bytes do not match its
//! digest, is a miss (the action runs locally and its upload repairs the entry). A remote that
//! fails (down, too slow, errors) is reported once and not used again in this build, as
//! Bazel's circuit breaker does: the build goes on locally.

pub mod execute;
mod grpc;
mod http;
pub mod merkle;
pub mod tls;

pub use execute::RemoteExecutionError;

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use prost::Message;
use sha2::{Digest as _, Sha256};

use super::action::{Action, ActionKind, ArtifactKind};
use super::cache::{Check, OutputRecord};
use super::digest::{DigestKind, hex, sha256_hex};
use super::{ACTION_SALT, Executor};
use merkle::{FileEntry, TreeBuilder};

/// An REAPI digest: lower-case hex sha256 and size.
pub type Digest = re::Digest;

/// The digest of some bytes.
pub fn digest_of(bytes: &[u8]) -> Digest {
    Digest { hash: sha256_hex(bytes), size_bytes: bytes.len() as i64 }
}

/// What `--remote_*` flags ask for.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// `--remote_cache`: `grpc://host:port`, `http://[user:password@]host[:port]/path`
    /// (or `grpcs://`, `https://`: TLS, with `tls`).
    pub url: String,
    /// `--remote_instance_name` (gRPC only, as in Bazel).
    pub instance_name: String,
    /// `--remote_header` and `--remote_cache_header` values, `NAME=VALUE`.
    pub headers: Vec<(String, String)>,
    /// `--remote_timeout`: the longest a request may take.
    pub timeout: Duration,
    /// `--remote_accept_cached`: look results up.
    pub accept_cached: bool,
    /// `--remote_upload_local_results`: store what ran locally.
    pub upload_local_results: bool,
    /// `--remote_download_outputs`: which outputs of remote hits are downloaded.
    pub download: DownloadOutputs,
    /// `--remote_executor`: run actions on this REAPI server (`grpc://HOST:PORT`); its CAS is
    /// the one `url` names (Bazel's rule: without `--remote_cache` they are the same).
    pub executor: Option<String>,
    /// `--remote_default_exec_properties`: platform properties of every remote action (a
    /// target's `exec_properties` override them key by key).
    pub default_exec_properties: Vec<(String, String)>,
    /// `--remote_local_fallback`: when the remote fails, build locally (one warning).
    pub local_fallback: bool,
    /// `--remote_download_regex`: outputs whose exec path matches one of these (the whole
    /// path) are downloaded whatever `download` says.
    pub download_regex: Vec<regex::Regex>,
    /// `--tls_certificate`, `--tls_client_certificate`, `--tls_client_key`.
    pub tls: tls::TlsOptions,
}

/// `--remote_download_outputs` (Bazel's "Build without the Bytes").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DownloadOutputs {
    /// Every output of every remote hit (the default, as Bazel 4-6's).
    #[default]
    All,
    /// Only the outputs of actions that make a wanted (top-level) artifact.
    Toplevel,
    /// None: only what an action run locally reads.
    Minimal,
}

impl std::str::FromStr for DownloadOutputs {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all" => Ok(DownloadOutputs::All),
            "toplevel" => Ok(DownloadOutputs::Toplevel),
            "minimal" => Ok(DownloadOutputs::Minimal),
            _ => Err(format!("'{s}' is not one of all, toplevel, minimal")),
        }
    }
}

/// Where an upload's bytes come from.
#[derive(Clone)]
pub enum BlobSource {
    Bytes(Vec<u8>),
    File(PathBuf),
}

impl BlobSource {
    fn read(&self) -> std::io::Result<Vec<u8>> {
        match self {
            BlobSource::Bytes(b) => Ok(b.clone()),
            BlobSource::File(p) => std::fs::read(p),
        }
    }
}

/// A remote store of action results and blobs. `Ok(None)`/`Ok(false)` mean "not there"
/// (a miss); `Err` means the remote failed.
trait Store: Send + Sync {
    fn get_action_result(&self, action: &Digest) -> Result<Option<re::ActionResult>>;
    fn update_action_result(&self, action: &Digest, result: &re::ActionResult) -> Result<()>;
    /// The blobs among `blobs` the remote does not have.
    fn find_missing(&self, blobs: &[Digest]) -> Result<Vec<Digest>>;
    fn upload(&self, blobs: Vec<(Digest, BlobSource)>) -> Result<()>;
    /// Writes the blob to `out`; false if the remote does not have it.
    fn download(&self, digest: &Digest, out: &mut dyn Write) -> Result<bool>;
}

/// A connected remote cache, shared by the scheduler's threads.
pub struct RemoteCache {
    store: Box<dyn Store>,
    accept_cached: bool,
    upload_local_results: bool,
    /// Set at the first failure: the rest of the build does without the remote.
    disabled: AtomicBool,
    /// Bytes sent (blobs and action results), for reports and benchmarks.
    uploaded: AtomicU64,
    /// Blobs that arrived not matching their digest: sent again when the action that makes
    /// them has run, whatever the server says it has (it has bad bytes under that name).
    suspect: Mutex<HashSet<String>>,
    download: DownloadOutputs,
    /// `--remote_download_regex`, each anchored at both ends.
    download_regex: Vec<regex::Regex>,
    /// Outputs of remote hits left on the remote (`--remote_download_outputs=toplevel|minimal`),
    /// by exec path (directory outputs by member, with `tree` set): their digests are known,
    /// their bytes are fetched only when an action run locally reads them ([`prefetch`]).
    remote_only: Mutex<RemoteOnly>,
    /// The Execution service (`--remote_executor`).
    executor: Option<execute::RemoteExecutor>,
    /// Set when the executor failed under `--remote_local_fallback`: actions run locally.
    exec_disabled: AtomicBool,
    local_fallback: bool,
}

/// Outputs known by digest only.
#[derive(Default)]
struct RemoteOnly {
    files: BTreeMap<String, OutputRecord>,
    /// Directory outputs whose members are in `files`.
    dirs: HashSet<String>,
}

impl RemoteCache {
    /// Connects to `--remote_cache` (for gRPC, asks the server's capabilities).
    pub fn connect(opts: &RemoteOptions) -> Result<RemoteCache> {
        let scheme = opts.url.split_once("://").map(|(s, _)| s.to_ascii_lowercase()).unwrap_or_default();
        let store: Box<dyn Store> = match scheme.as_str() {
            "http" | "https" => Box::new(http::HttpStore::new(opts)?),
            "grpc" | "grpcs" => Box::new(grpc::GrpcStore::connect(opts)?),
            _ => bail!("--remote_cache: '{}' is not a grpc://, grpcs://, http:// or https:// URL", redact(&opts.url)),
        };
        let executor = match &opts.executor {
            Some(url) => Some(execute::RemoteExecutor::connect(opts, url)?),
            None => None,
        };
        Ok(RemoteCache {
            store,
            executor,
            exec_disabled: AtomicBool::new(false),
            local_fallback: opts.local_fallback,
            accept_cached: opts.accept_cached,
            upload_local_results: opts.upload_local_results,
            disabled: AtomicBool::new(false),
            uploaded: AtomicU64::new(0),
            suspect: Mutex::default(),
            download: opts.download,
            download_regex: opts.download_regex.clone(),
            remote_only: Mutex::default(),
        })
    }

    /// The executor, if `--remote_executor` was given and `action` may run there: not stamped
    /// (the volatile status is this machine's), not tagged `no-remote`, `no-remote-exec` or
    /// `local`, and a command another machine can run (a spawn that names no `$EXECROOT`;
    /// in-process code that [`super::InProcess::remotable`]; never a file write, which is
    /// cheaper here than a round trip).
    pub fn executor_for(&self, action: &Action) -> Option<&execute::RemoteExecutor> {
        let executor = self.executor.as_ref().filter(|_| !self.exec_disabled.load(Ordering::Relaxed))?;
        if action.stamped || ["no-remote", "no-remote-exec", "local"].iter().any(|t| action.requires(t)) {
            return None;
        }
        let runs_anywhere = match &action.kind {
            ActionKind::Spawn { argv, env } => !argv.iter().chain(env.values()).any(|a| a.contains("$EXECROOT")),
            ActionKind::Run(code) => code.remotable(),
            ActionKind::Write { .. } => false,
        };
        runs_anywhere.then_some(executor)
    }

    /// `--remote_local_fallback`.
    pub fn local_fallback(&self) -> bool {
        self.local_fallback
    }

    /// Whether `--remote_executor` was given.
    pub fn has_executor(&self) -> bool {
        self.executor.is_some()
    }

    /// Whether the remote is still used in this build.
    pub fn active(&self) -> bool {
        !self.disabled.load(Ordering::Relaxed)
    }

    /// Looks results up (`--remote_accept_cached`).
    pub fn accepts_cached(&self) -> bool {
        self.accept_cached && self.active()
    }

    /// Stores local results (`--remote_upload_local_results`).
    pub fn uploads(&self) -> bool {
        self.upload_local_results && self.active()
    }

    /// Whether a remote hit making (or not making) a wanted artifact downloads its outputs.
    pub fn downloads(&self, wanted: bool) -> bool {
        match self.download {
            DownloadOutputs::All => true,
            DownloadOutputs::Toplevel => wanted,
            DownloadOutputs::Minimal => false,
        }
    }

    /// Whether `--remote_download_regex` asks for the output at `exec_path` (Bazel matches
    /// the whole exec path, e.g. `.*\.tar$`).
    pub fn forces_download(&self, exec_path: &str) -> bool {
        self.download_regex.iter().any(|re| re.is_match(exec_path))
    }

    /// Whether the output at `exec_path` (a file, a directory output or a member of one) of a
    /// remote hit was left on the remote, not downloaded.
    pub fn left_on_remote(&self, exec_path: &str) -> bool {
        self.remote_only.lock().is_ok_and(|r| r.files.contains_key(exec_path) || r.dirs.contains(exec_path))
    }

    /// The record of an output left on the remote (a file, or a directory output's member).
    fn remote_only(&self, exec_path: &str) -> Option<OutputRecord> {
        self.remote_only.lock().ok()?.files.get(exec_path).cloned()
    }

    /// Whether `exec_path` is a directory output left on the remote.
    fn remote_only_dir(&self, exec_path: &str) -> bool {
        self.remote_only.lock().is_ok_and(|r| r.dirs.contains(exec_path))
    }

    /// Bytes uploaded so far.
    pub fn uploaded_bytes(&self) -> u64 {
        self.uploaded.load(Ordering::Relaxed)
    }

    fn suspect(&self, digest: &Digest) {
        if let Ok(mut s) = self.suspect.lock() {
            s.insert(digest.hash.clone());
        }
    }

    fn is_suspect(&self, hash: &str) -> bool {
        self.suspect.lock().is_ok_and(|s| s.contains(hash))
    }

    /// Records that the remote failed: the first time, stops using it and returns the warning
    /// to show; afterwards `None` (one warning per build).
    pub fn failed(&self, e: &anyhow::Error) -> Option<String> {
        // The executor and its cache are one server: when either fails, both are dropped.
        self.exec_disabled.store(true, Ordering::Relaxed);
        if self.disabled.swap(true, Ordering::Relaxed) {
            return None;
        }
        if self.executor.is_some() {
            return Some(format!("Remote Execution: {e:#}; building locally (--remote_local_fallback)"));
        }
        Some(format!("Remote Cache: {e:#}; continuing without the remote cache (actions run locally)"))
    }
}

/// A URL as it may be shown: without a password or user.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://<credentials>@{host}{path}"),
        None => url.to_owned(),
    }
}

/// An action's REAPI identity and the messages that make it.
pub struct RemoteAction {
    /// The `Action` digest: the action cache key.
    pub digest: Digest,
    action: Vec<u8>,
    command: Vec<u8>,
    command_digest: Digest,
    /// Every blob of the input root that is here (files, the ocib binary, `Directory`
    /// messages), for remote execution to upload what the server lacks. Inputs left on the
    /// remote are not here: the server has them.
    inputs: Vec<(Digest, BlobSource)>,
}

/// Where ocib itself sits in the input root of the actions it runs in process (`ocib action`):
/// the binary is an input like any tool, so a worker needs nothing installed and runs exactly
/// this ocib (and the action digest names it).
pub const OCIB_TOOL_PATH: &str = "ocib-out/ocib";

/// The running ocib binary and its sha256 (hashed once per process).
fn ocib_binary(ex: &Executor) -> Result<(PathBuf, FileEntry)> {
    static BINARY: std::sync::OnceLock<Result<(PathBuf, FileEntry), String>> = std::sync::OnceLock::new();
    BINARY
        .get_or_init(|| {
            let path = std::env::current_exe().map_err(|e| format!("locating the ocib binary: {e}"))?;
            let meta = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            let hash = ex.stat_cache.digest(&path, DigestKind::Sha256).map_err(|e| format!("hashing {}: {e:#}", path.display()))?;
            Ok((path, FileEntry { digest: Digest { hash, size_bytes: meta.len() as i64 }, executable: true }))
        })
        .clone()
        .map_err(|e| anyhow!("{e}"))
}

/// The `Command` and `Action` of an ocib action; `derived` holds the sha256 of every derived
/// input (and of the files inside derived input directories, as `<dir>/<path>`).
pub fn describe(ex: &Executor, action: &Action, derived: &BTreeMap<String, String>) -> Result<RemoteAction> {
    let mut inputs = TreeBuilder::default();
    let mut blobs: Vec<(Digest, BlobSource)> = Vec::new();
    let entry = |hash: String, meta: &std::fs::Metadata| FileEntry {
        digest: Digest { hash, size_bytes: meta.len() as i64 },
        executable: meta.mode() & 0o111 != 0,
    };
    for input in &action.inputs {
        match &input.kind {
            ArtifactKind::Source(path) => {
                let meta = std::fs::metadata(path).with_context(|| format!("missing input file '{}'", input.exec_path))?;
                let hash = ex.stat_cache.digest(path, DigestKind::Sha256).with_context(|| format!("hashing '{}'", input.exec_path))?;
                let e = entry(hash, &meta);
                blobs.push((e.digest.clone(), BlobSource::File(path.clone())));
                inputs.file(&input.exec_path, e)?;
            }
            // An output left on the remote is described by its record: its bytes are not here.
            ArtifactKind::Derived if ex.remote.as_ref().is_some_and(|r| r.remote_only_dir(&input.exec_path)) => {
                inputs.dir(&input.exec_path)?;
                let prefix = format!("{}/", input.exec_path);
                for (member, hash) in derived.range(prefix.clone()..).take_while(|(k, _)| k.starts_with(&prefix)) {
                    let rec = ex.remote.as_ref().and_then(|r| r.remote_only(member)).ok_or_else(|| anyhow!("missing input '{member}'"))?;
                    inputs.file(
                        member,
                        FileEntry { digest: Digest { hash: hash.clone(), size_bytes: rec.size as i64 }, executable: rec.executable },
                    )?;
                }
            }
            ArtifactKind::Derived if let Some(rec) = ex.remote.as_ref().and_then(|r| r.remote_only(&input.exec_path)) => {
                let digest = Digest { hash: rec.digest, size_bytes: rec.size as i64 };
                inputs.file(&input.exec_path, FileEntry { digest, executable: rec.executable })?;
            }
            ArtifactKind::Derived => {
                let real = ex.base.workspace.join(&input.exec_path);
                let meta = std::fs::metadata(&real).with_context(|| format!("missing input '{}'", input.exec_path))?;
                if meta.is_dir() {
                    inputs.dir(&input.exec_path)?;
                    let prefix = format!("{}/", input.exec_path);
                    for (member, hash) in derived.range(prefix.clone()..).take_while(|(k, _)| k.starts_with(&prefix)) {
                        let m = std::fs::metadata(ex.base.workspace.join(member)).with_context(|| format!("missing input '{member}'"))?;
                        let e = entry(hash.clone(), &m);
                        blobs.push((e.digest.clone(), BlobSource::File(ex.base.workspace.join(member))));
                        inputs.file(member, e)?;
                    }
                } else {
                    let hash =
                        derived.get(&input.exec_path).ok_or_else(|| anyhow!("internal: input '{}' has no digest", input.exec_path))?;
                    let e = entry(hash.clone(), &meta);
                    blobs.push((e.digest.clone(), BlobSource::File(real.clone())));
                    inputs.file(&input.exec_path, e)?;
                }
            }
        }
    }
    if action.stamped {
        let path = ex.base.root.join("stable-status.txt");
        let meta = std::fs::metadata(&path).with_context(|| format!("reading {}", path.display()))?;
        let e = entry(ex.stat_cache.digest(&path, DigestKind::Sha256)?, &meta);
        blobs.push((e.digest.clone(), BlobSource::File(path.clone())));
        inputs.file("ocib-out/stable-status.txt", e)?;
    }
    if let ActionKind::Run(_) = &action.kind {
        let (path, e) = ocib_binary(ex)?;
        blobs.push((e.digest.clone(), BlobSource::File(path)));
        inputs.file(OCIB_TOOL_PATH, e)?;
    }
    let input_root = inputs.build();
    for (digest, bytes) in &input_root.directories {
        blobs.push((digest.clone(), BlobSource::Bytes(bytes.clone())));
    }

    let (arguments, mut env): (Vec<String>, BTreeMap<String, String>) = match &action.kind {
        ActionKind::Spawn { argv, env } => {
            let mut env = env.clone();
            // As the local executor runs it.
            env.entry("PATH".into()).or_insert_with(|| "/usr/local/bin:/usr/bin:/bin".into());
            (argv.clone(), env)
        }
        // ocib itself is the tool of the actions it runs in process: `ocib action` names them.
        ActionKind::Write { content, executable } => (
            vec![
                "ocib".into(),
                "action".into(),
                "FileWrite".into(),
                format!("--content_sha256={}", sha256_hex(content)),
                format!("--executable={executable}"),
            ],
            BTreeMap::new(),
        ),
        // The input root's ocib runs the code in the working directory (`cli/action.rs`).
        ActionKind::Run(code) => {
            let mut argv = vec![OCIB_TOOL_PATH.to_owned(), "action".into(), code.kind().to_owned(), code.params()];
            let mut outs: Vec<&super::Artifact> = action.outputs.iter().collect();
            outs.sort();
            for o in outs {
                let flag = if action.tree_outputs.contains(&o.exec_path) {
                    "--out_dir"
                } else if action.executable_outputs.contains(&o.exec_path) {
                    "--out_exe"
                } else {
                    "--out"
                };
                argv.push(format!("{flag}={}", o.exec_path));
            }
            (argv, BTreeMap::new())
        }
    };
    if !action.tool_id.is_empty() {
        env.insert("OCIB_TOOL_ID".into(), action.tool_id.clone());
    }
    // REAPI 2.1's `output_paths` (files and directories alike; the server learns which is
    // which from the result).
    let mut paths: Vec<String> = action.outputs.iter().map(|o| o.exec_path.clone()).collect();
    paths.sort();
    paths.dedup();
    // Platform properties: `--remote_default_exec_properties`, then the target's
    // `exec_properties` key by key (Bazel's precedence), sorted by name as REAPI requires.
    let mut properties: BTreeMap<String, String> = BTreeMap::new();
    if let Some(executor) = &ex.remote.as_ref().and_then(|r| r.executor.as_ref()) {
        properties.extend(executor.default_properties.iter().cloned());
    }
    properties.extend(action.exec_properties.iter().map(|(k, v)| (k.clone(), v.clone())));
    let platform = (!properties.is_empty())
        .then(|| re::Platform { properties: properties.into_iter().map(|(name, value)| re::platform::Property { name, value }).collect() });
    let command = re::Command {
        arguments,
        environment_variables: env.into_iter().map(|(name, value)| re::command::EnvironmentVariable { name, value }).collect(),
        output_paths: paths,
        // Deprecated since REAPI 2.2 (Action.platform) but what Bazel 4 and older servers read.
        #[allow(deprecated)]
        platform: platform.clone(),
        ..Default::default()
    };
    let command = command.encode_to_vec();
    let command_digest = digest_of(&command);
    let remote_action = re::Action {
        command_digest: Some(command_digest.clone()),
        input_root_digest: Some(input_root.root_digest),
        salt: ACTION_SALT.as_bytes().to_vec(),
        do_not_cache: action.requires("no-cache"),
        platform,
        ..Default::default()
    };
    let action_bytes = remote_action.encode_to_vec();
    Ok(RemoteAction { digest: digest_of(&action_bytes), action: action_bytes, command, command_digest, inputs: blobs })
}

/// A writer that hashes and counts what passes through it.
struct Hashing<W> {
    inner: W,
    hasher: Sha256,
    size: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Why a remote result could not be used although the remote answered.
enum Unusable {
    /// Not there, or a blob it names is missing.
    Missing,
    /// A blob's bytes do not match its digest.
    Corrupt(String),
}

/// A blob's bytes, verified against its digest.
fn blob_bytes(remote: &RemoteCache, digest: &Digest) -> Result<Result<Vec<u8>, Unusable>> {
    let mut out = Hashing { inner: Vec::new(), hasher: Sha256::new(), size: 0 };
    if !remote.store.download(digest, &mut out)? {
        return Ok(Err(Unusable::Missing));
    }
    let got = hex(&out.hasher.finalize());
    if got != digest.hash || out.size != digest.size_bytes as u64 {
        remote.suspect(digest);
        return Ok(Err(Unusable::Corrupt(format!("blob {}/{} arrived as {got}/{}", digest.hash, digest.size_bytes, out.size))));
    }
    Ok(Ok(out.inner))
}

/// Puts the blob `digest` into the local CAS (unless it is there and intact) and returns its
/// record as the output `exec_path`.
fn download_output(
    ex: &Executor,
    remote: &RemoteCache,
    exec_path: &str,
    digest: &Digest,
    executable: bool,
) -> Result<Result<OutputRecord, Unusable>> {
    if !is_sha256(digest) {
        return Ok(Err(Unusable::Corrupt(format!("'{}' is not a sha256 digest", digest.hash))));
    }
    if let Some(mut record) = ex.cache.existing(&digest.hash, exec_path, executable) {
        // Its stat is not known good: `check` hashes it unless this build already did.
        record.cas_mtime_ns = 0;
        record.cas_ctime_ns = 0;
        if record.size == digest.size_bytes as u64 && ex.cache.check(&mut record) != Check::Bad {
            return Ok(Ok(record));
        }
    }
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = ex.base.root.join("tmp");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!("remote.{}.{}", std::process::id(), COUNTER.fetch_add(1, Ordering::Relaxed)));
    let result = (|| -> Result<Result<OutputRecord, Unusable>> {
        let file = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        let mut out = Hashing { inner: std::io::BufWriter::new(file), hasher: Sha256::new(), size: 0 };
        if digest.size_bytes > 0 && !remote.store.download(digest, &mut out)? {
            return Ok(Err(Unusable::Missing));
        }
        out.flush().with_context(|| format!("writing {}", tmp.display()))?;
        let got = hex(&out.hasher.finalize());
        if got != digest.hash || out.size != digest.size_bytes as u64 {
            remote.suspect(digest);
            return Ok(Err(Unusable::Corrupt(format!(
                "the blob of '{exec_path}' ({}, {} bytes) arrived as {got} ({} bytes)",
                digest.hash, digest.size_bytes, out.size
            ))));
        }
        drop(out.inner);
        let record = ex.cache.insert(&tmp, exec_path, executable, Some(&digest.hash)).with_context(|| format!("storing {exec_path}"))?;
        Ok(Ok(record))
    })();
    let _ = std::fs::remove_file(&tmp);
    result
}

/// Looks the action up in the remote cache and brings its outputs into the local CAS: their
/// records, or `None` on a miss (no entry, a missing blob, a blob that does not match its
/// digest: the action then runs locally). Corrupt blobs are reported through `warn`.
///
/// Without `download` (`--remote_download_outputs=toplevel` for an action no wanted artifact
/// needs, or `minimal`), the outputs stay on the remote, as Bazel's "Build without the Bytes":
/// the server is asked that it has them, their records carry the digests later actions' keys
/// need, and [`prefetch`] brings them when an action run here reads them. Outputs
/// `--remote_download_regex` matches are downloaded all the same ([`RemoteCache::left_on_remote`]
/// tells them apart).
pub fn fetch(
    ex: &Executor,
    remote: &RemoteCache,
    action: &Action,
    described: &RemoteAction,
    download: bool,
    warn: &dyn Fn(&str),
) -> Result<Option<Vec<OutputRecord>>> {
    let Some(result) = remote.store.get_action_result(&described.digest)? else { return Ok(None) };
    use_result(ex, remote, action, &described.digest, result, download, warn)
}

/// Brings the outputs an `ActionResult` names into the local CAS (or, without `download`,
/// records them as left on the remote): their records, or `None` when the result cannot be
/// used (failed, an output or blob missing, a blob not matching its digest).
pub(super) fn use_result(
    ex: &Executor,
    remote: &RemoteCache,
    action: &Action,
    action_digest: &Digest,
    result: re::ActionResult,
    download: bool,
    warn: &dyn Fn(&str),
) -> Result<Option<Vec<OutputRecord>>> {
    if result.exit_code != 0 {
        return Ok(None);
    }
    let unusable = |u: Unusable| -> Result<Option<Vec<OutputRecord>>> {
        if let Unusable::Corrupt(why) = u {
            warn(&format!("Remote Cache: {} of {}: {why}; running it locally", action.progress, action_digest.hash));
        }
        Ok(None)
    };
    // Outputs downloaded although `download` is false (`--remote_download_regex`).
    let mut forced: HashSet<String> = HashSet::new();
    let output = |exec_path: &str, digest: &Digest, executable: bool, force: bool| -> Result<Result<OutputRecord, Unusable>> {
        if download || force {
            return download_output(ex, remote, exec_path, digest, executable);
        }
        if !is_sha256(digest) {
            return Ok(Err(Unusable::Corrupt(format!("'{}' is not a sha256 digest", digest.hash))));
        }
        Ok(Ok(OutputRecord {
            exec_path: exec_path.to_owned(),
            digest: digest.hash.clone(),
            size: digest.size_bytes as u64,
            executable,
            cas_mtime_ns: 0,
            cas_ctime_ns: 0,
            cas_ino: 0,
            cas_dev: 0,
            tree: None,
        }))
    };
    let mut records = Vec::new();
    for out in &action.outputs {
        if action.tree_outputs.contains(&out.exec_path) {
            let Some(dir) = result.output_directories.iter().find(|d| d.path == out.exec_path) else { return Ok(None) };
            let Some(tree_digest) = &dir.tree_digest else { return Ok(None) };
            let bytes = match blob_bytes(remote, tree_digest)? {
                Ok(b) => b,
                Err(u) => return unusable(u),
            };
            let tree = match re::Tree::decode(bytes.as_slice()).map_err(anyhow::Error::from).and_then(|t| merkle::tree_files(&t)) {
                Ok(files) => files,
                Err(e) => return unusable(Unusable::Corrupt(format!("the tree of '{}': {e:#}", out.exec_path))),
            };
            // A directory output is downloaded whole when its path or a member's matches.
            let force = !download
                && (remote.forces_download(&out.exec_path)
                    || tree.iter().any(|(rel, _)| remote.forces_download(&format!("{}/{rel}", out.exec_path))));
            for (rel, file) in tree {
                let member = format!("{}/{rel}", out.exec_path);
                match output(&member, &file.digest, file.executable, force)? {
                    Ok(mut r) => {
                        if force {
                            forced.insert(r.exec_path.clone());
                        }
                        r.tree = Some(out.exec_path.clone());
                        records.push(r);
                    }
                    Err(u) => return unusable(u),
                }
            }
            if force {
                forced.insert(out.exec_path.clone());
            }
        } else {
            let Some(file) = result.output_files.iter().find(|f| f.path == out.exec_path) else { return Ok(None) };
            let Some(digest) = &file.digest else { return Ok(None) };
            let executable = action.executable_outputs.contains(&out.exec_path);
            let force = !download && remote.forces_download(&out.exec_path);
            match output(&out.exec_path, digest, executable, force)? {
                Ok(r) => {
                    if force {
                        forced.insert(r.exec_path.clone());
                    }
                    records.push(r)
                }
                Err(u) => return unusable(u),
            }
        }
    }
    if !download {
        // A result whose blobs are gone is a miss, as when downloading (the empty blob needs
        // no bytes).
        let left: Vec<&OutputRecord> = records.iter().filter(|r| !forced.contains(&r.exec_path)).collect();
        let blobs: Vec<Digest> =
            left.iter().filter(|r| r.size > 0).map(|r| Digest { hash: r.digest.clone(), size_bytes: r.size as i64 }).collect();
        if !blobs.is_empty() && !remote.store.find_missing(&blobs)?.is_empty() {
            return Ok(None);
        }
        let mut remote_only = remote.remote_only.lock().map_err(|_| anyhow!("internal: remote output table poisoned"))?;
        for dir in action.tree_outputs.iter().filter(|d| !forced.contains(*d)) {
            remote_only.dirs.insert(dir.clone());
        }
        for r in left {
            remote_only.files.insert(r.exec_path.clone(), r.clone());
        }
    }
    Ok(Some(records))
}

/// Whether a digest names a sha256 (lower-case hex) and a size.
fn is_sha256(digest: &Digest) -> bool {
    digest.hash.len() == 64 && digest.hash.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) && digest.size_bytes >= 0
}

/// Brings the inputs of `action` that were left on the remote into the CAS and `ocib-out`,
/// before it runs here (Bazel's input prefetching for "Build without the Bytes"). A blob the
/// remote lost since it was found is an error: building again runs its action here.
pub fn prefetch(ex: &Executor, remote: &RemoteCache, action: &Action) -> Result<()> {
    let mut dirs = Vec::new();
    let wanted: Vec<OutputRecord> = {
        let remote_only = remote.remote_only.lock().map_err(|_| anyhow!("internal: remote output table poisoned"))?;
        if remote_only.files.is_empty() && remote_only.dirs.is_empty() {
            return Ok(());
        }
        let mut wanted = Vec::new();
        for input in action.inputs.iter().filter(|i| !i.is_source()) {
            if remote_only.dirs.contains(&input.exec_path) {
                dirs.push(input.exec_path.clone());
                let prefix = format!("{}/", input.exec_path);
                wanted.extend(
                    remote_only
                        .files
                        .range(prefix.clone()..)
                        .take_while(|(k, _)| k.starts_with(&prefix))
                        .filter(|(_, r)| r.tree.as_deref() == Some(input.exec_path.as_str()))
                        .map(|(_, r)| r.clone()),
                );
            } else if let Some(r) = remote_only.files.get(&input.exec_path) {
                wanted.push(r.clone());
            }
        }
        wanted
    };
    for r in wanted {
        let digest = Digest { hash: r.digest.clone(), size_bytes: r.size as i64 };
        let record = match download_output(ex, remote, &r.exec_path, &digest, r.executable)? {
            Ok(record) => record,
            Err(Unusable::Missing) => bail!(
                "the remote cache no longer has '{}' ({}), an output left there (--remote_download_outputs); building again runs its action here",
                r.exec_path,
                r.digest
            ),
            Err(Unusable::Corrupt(why)) => bail!("downloading '{}' from the remote cache: {why}", r.exec_path),
        };
        let dest = ex.base.workspace.join(&r.exec_path);
        super::fs::link_or_copy(&ex.cache.cas_path(&record.digest, record.executable), &dest)
            .with_context(|| format!("placing {}", r.exec_path))?;
        if let Ok(mut remote_only) = remote.remote_only.lock() {
            remote_only.files.remove(&r.exec_path);
        }
    }
    // Every member is here now (an empty directory output has none).
    for dir in dirs {
        let real = ex.base.workspace.join(&dir);
        std::fs::create_dir_all(&real).with_context(|| format!("creating {}", real.display()))?;
        if let Ok(mut remote_only) = remote.remote_only.lock() {
            remote_only.dirs.remove(&dir);
        }
    }
    Ok(())
}

/// Stores a locally run action's outputs, its `Command` and `Action`, then its result.
pub fn upload(ex: &Executor, remote: &RemoteCache, action: &Action, described: &RemoteAction, records: &[OutputRecord]) -> Result<()> {
    let mut blobs: BTreeMap<String, (Digest, BlobSource)> = BTreeMap::new();
    let mut add = |digest: Digest, source: BlobSource| {
        blobs.entry(digest.hash.clone()).or_insert((digest, source));
    };
    add(described.command_digest.clone(), BlobSource::Bytes(described.command.clone()));
    add(described.digest.clone(), BlobSource::Bytes(described.action.clone()));
    let mut result = re::ActionResult::default();
    let mut trees: BTreeMap<&str, TreeBuilder> = action.tree_outputs.iter().map(|d| (d.as_str(), TreeBuilder::default())).collect();
    for r in records {
        let digest = Digest { hash: r.digest.clone(), size_bytes: r.size as i64 };
        add(digest.clone(), BlobSource::File(ex.cache.cas_path(&r.digest, r.executable)));
        match r.tree.as_deref().and_then(|t| trees.get_mut(t).map(|b| (t, b))) {
            Some((dir, builder)) => {
                let rel = r.exec_path.strip_prefix(dir).and_then(|p| p.strip_prefix('/')).unwrap_or(&r.exec_path);
                builder.file(rel, FileEntry { digest, executable: r.executable })?;
            }
            None => result.output_files.push(re::OutputFile {
                path: r.exec_path.clone(),
                digest: Some(digest),
                is_executable: r.executable,
                ..Default::default()
            }),
        }
    }
    for (dir, builder) in trees {
        let tree = merkle::tree_message(&builder.build()).encode_to_vec();
        let tree_digest = digest_of(&tree);
        add(tree_digest.clone(), BlobSource::Bytes(tree));
        result.output_directories.push(re::OutputDirectory { path: dir.to_owned(), tree_digest: Some(tree_digest), ..Default::default() });
    }
    result.output_files.sort_by(|a, b| a.path.cmp(&b.path));
    // REAPI says servers treat the empty blob as always present, but BuildGrid's action cache
    // checks that every blob a result names is stored, the empty one too: ask about it as any.
    let wanted: Vec<Digest> = blobs.values().map(|(d, _)| d.clone()).collect();
    let mut missing = remote.store.find_missing(&wanted)?;
    missing.extend(wanted.iter().filter(|d| remote.is_suspect(&d.hash)).cloned());
    let mut sending = Vec::new();
    for d in missing {
        if let Some(b) = blobs.remove(&d.hash) {
            remote.uploaded.fetch_add(d.size_bytes as u64, Ordering::Relaxed);
            sending.push(b);
        }
    }
    remote.store.upload(sending)?;
    remote.uploaded.fetch_add(result.encoded_len() as u64, Ordering::Relaxed);
    remote.store.update_action_result(&described.digest, &result)
}

/// Reads a file a blob source names, for stores that send whole blobs.
fn read_source(source: &BlobSource) -> Result<Vec<u8>> {
    source.read().map_err(|e| match source {
        BlobSource::File(p) => anyhow!("reading {}: {e}", p.display()),
        BlobSource::Bytes(_) => anyhow!("{e}"),
    })
}

/// A path's size (for uploads that stream a file).
fn source_len(source: &BlobSource) -> u64 {
    match source {
        BlobSource::Bytes(b) => b.len() as u64,
        BlobSource::File(p) => std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_show() {
        assert_eq!(redact("http://user:secret@127.0.0.1:8080/cache"), "http://<credentials>@127.0.0.1:8080/cache");
        assert_eq!(redact("grpc://localhost:1985"), "grpc://localhost:1985");
        assert_eq!(redact("http://h/a@b"), "http://h/a@b");
    }
}
