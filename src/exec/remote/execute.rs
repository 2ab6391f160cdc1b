//! Remote execution (`--remote_executor=grpc://HOST:PORT`): an action's `Command` and input
//! root go to the server's CAS (only the blobs `FindMissingBlobs` says it lacks), then
//! `Execution.Execute` runs it on a worker; the operation stream is followed to its end,
//! resumed with `WaitExecution` when the stream breaks. The `ActionResult` is used as a remote
//! cache hit's would be (`use_result` in the parent module): outputs downloaded (or left on
//! the remote, per `--remote_download_outputs`), each verified against its digest.
//!
//! An action that fails remotely (non-zero exit) fails the build with its stdout and stderr,
//! fetched from the CAS. A server that cannot run it (unreachable, errors) is a
//! [`RemoteExecutionError`]: the scheduler then runs the action locally with one warning under
//! `--remote_local_fallback`, or fails the build with Bazel's exit code 34.

use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use bazel_remote_apis::build::bazel::remote::execution::v2 as re;
use bazel_remote_apis::google::longrunning::{Operation, operation};
use prost::Message;
use re::execution_client::ExecutionClient;

use super::grpc::GrpcStore;
use super::{Digest, RemoteAction, RemoteCache, RemoteOptions};
use crate::exec::Executor;
use crate::exec::action::Action;
use crate::exec::cache::OutputRecord;

/// The server could not execute the action (as opposed to the action failing): the build
/// falls back to local execution or stops with exit code 34.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RemoteExecutionError(pub String);

/// Times a broken operation stream is resumed with `WaitExecution` before giving up.
const WAIT_ATTEMPTS: u32 = 5;

/// The Execution service of `--remote_executor`.
pub struct RemoteExecutor {
    conn: GrpcStore,
    /// `--remote_default_exec_properties`.
    pub default_properties: Vec<(String, String)>,
}

impl RemoteExecutor {
    /// Connects to `opts.executor` (asking its capabilities, as for the cache).
    pub fn connect(opts: &RemoteOptions, url: &str) -> Result<RemoteExecutor> {
        let opts = RemoteOptions { url: url.to_owned(), ..opts.clone() };
        let conn = GrpcStore::connect(&opts).map_err(|e| anyhow!("remote executor: {e:#}"))?;
        Ok(RemoteExecutor { conn, default_properties: opts.default_exec_properties.clone() })
    }

    /// Runs `Execute` (or resumes with `WaitExecution`) until the operation is done.
    fn execute(&self, action: &Digest, skip_cache_lookup: bool) -> Result<re::ExecuteResponse, RemoteExecutionError> {
        let (rt, channel) = self.conn.channel();
        let client = ExecutionClient::new(channel).max_decoding_message_size(usize::MAX);
        let fail = |call: &str, s: tonic::Status| RemoteExecutionError(format!("{:#}", self.conn.error(call, s)));
        rt.block_on(async {
            let request = re::ExecuteRequest {
                instance_name: self.conn.instance().to_owned(),
                skip_cache_lookup,
                action_digest: Some(action.clone()),
                ..Default::default()
            };
            // A busy server (RESOURCE_EXHAUSTED: BuildGrid's limit on concurrent calls) or a
            // passing outage is retried with backoff, as Bazel's RemoteRetrier does.
            let mut tries = 0;
            let mut stream = loop {
                match client.clone().execute(self.conn.request_without_deadline(request.clone())).await {
                    Ok(s) => break s.into_inner(),
                    Err(s) if retryable(&s) && tries < EXECUTE_RETRIES => {
                        tries += 1;
                        tokio::time::sleep(Duration::from_millis(100 << tries)).await;
                    }
                    Err(s) => return Err(fail("Execute", s)),
                }
            };
            let mut name = String::new();
            let mut attempts = 0;
            loop {
                match stream.message().await {
                    Ok(Some(op)) => {
                        if !op.name.is_empty() {
                            name = op.name.clone();
                        }
                        if op.done {
                            return finished(op);
                        }
                        continue;
                    }
                    // The stream ended without the result, or broke: resume it by name.
                    Ok(None) => {}
                    Err(s) if name.is_empty() => return Err(fail("Execute", s)),
                    Err(s) if attempts >= WAIT_ATTEMPTS => return Err(fail("WaitExecution", s)),
                    Err(_) => {}
                }
                if name.is_empty() {
                    return Err(RemoteExecutionError("Execute: the server ended the operation stream without naming it".into()));
                }
                attempts += 1;
                if attempts > WAIT_ATTEMPTS {
                    return Err(RemoteExecutionError(format!("WaitExecution: operation {name} never finished")));
                }
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempts))).await;
                let request = re::WaitExecutionRequest { name: name.clone() };
                stream = match client.clone().wait_execution(self.conn.request_without_deadline(request)).await {
                    Ok(s) => s.into_inner(),
                    Err(s) if attempts >= WAIT_ATTEMPTS => return Err(fail("WaitExecution", s)),
                    Err(_) => continue,
                };
            }
        })
    }
}

/// Times `Execute` is retried when the server is busy or briefly away (Bazel's
/// `--remote_retries` default is 5).
const EXECUTE_RETRIES: u32 = 5;

/// Whether a failed call may succeed when made again.
fn retryable(s: &tonic::Status) -> bool {
    matches!(s.code(), tonic::Code::ResourceExhausted | tonic::Code::Unavailable)
}

/// The `ExecuteResponse` of a finished operation.
fn finished(op: Operation) -> Result<re::ExecuteResponse, RemoteExecutionError> {
    match op.result {
        Some(operation::Result::Response(any)) => {
            if !any.type_url.ends_with("build.bazel.remote.execution.v2.ExecuteResponse") {
                return Err(RemoteExecutionError(format!("operation {}: unexpected response type {}", op.name, any.type_url)));
            }
            re::ExecuteResponse::decode(any.value.as_slice())
                .map_err(|e| RemoteExecutionError(format!("operation {}: bad ExecuteResponse: {e}", op.name)))
        }
        Some(operation::Result::Error(status)) => {
            Err(RemoteExecutionError(format!("operation {}: code {}: {}", op.name, status.code, status.message)))
        }
        None => Err(RemoteExecutionError(format!("operation {} is done without a result", op.name))),
    }
}

/// Runs `action` on the remote executor. `Ok(records)`: it ran (or the server found it in
/// its cache) and its outputs are in the local CAS or, without `download`, known by digest.
/// An error that is a [`RemoteExecutionError`] means the server could not run it; any other
/// error is the action's own failure.
pub fn run(
    ex: &Executor,
    remote: &RemoteCache,
    executor: &RemoteExecutor,
    action: &Action,
    described: &RemoteAction,
    download: bool,
    warn: &dyn Fn(&str),
) -> Result<(Vec<OutputRecord>, bool)> {
    let unavailable = |e: anyhow::Error| anyhow::Error::new(RemoteExecutionError(format!("{e:#}")));
    upload_inputs(remote, described).map_err(unavailable)?;
    let skip_cache_lookup = action.skip_cache_lookup || action.requires("no-cache") || !remote.accept_cached;
    let mut response = executor.execute(&described.digest, skip_cache_lookup)?;
    // FAILED_PRECONDITION: the server lost an input between FindMissingBlobs and the run (REAPI:
    // the client uploads it again and retries, as Bazel does once).
    if response.status.as_ref().is_some_and(|s| s.code == tonic::Code::FailedPrecondition as i32) {
        upload_inputs(remote, described).map_err(unavailable)?;
        response = executor.execute(&described.digest, skip_cache_lookup)?;
    }
    if let Some(status) = response.status.as_ref().filter(|s| s.code != 0) {
        return Err(anyhow::Error::new(RemoteExecutionError(format!(
            "remote execution of {} failed: code {}: {}",
            action.progress, status.code, status.message
        ))));
    }
    let result = response.result.ok_or_else(|| unavailable(anyhow!("the ExecuteResponse of {} has no result", action.progress)))?;
    if result.exit_code != 0 {
        let mut message = format!("remote execution of {} exited with code {}", action.progress, result.exit_code);
        for (what, raw, digest) in
            [("stdout", &result.stdout_raw, &result.stdout_digest), ("stderr", &result.stderr_raw, &result.stderr_digest)]
        {
            let text = match digest {
                Some(d) if d.size_bytes > 0 => match super::blob_bytes(remote, d) {
                    Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
                    _ => format!("({what} {}/{} could not be fetched)", d.hash, d.size_bytes),
                },
                _ => String::from_utf8_lossy(raw).into_owned(),
            };
            if !text.trim().is_empty() {
                message.push_str(&format!("\n{}", text.trim_end()));
            }
        }
        bail!("{message}");
    }
    match super::use_result(ex, remote, action, &described.digest, result, download, warn).map_err(unavailable)? {
        Some(records) => Ok((records, response.cached_result)),
        None => Err(unavailable(anyhow!("the remote result of {} lacks an output or one of its blobs", action.progress))),
    }
}

/// Sends the `Action`, its `Command` and every input blob the server lacks.
fn upload_inputs(remote: &RemoteCache, described: &RemoteAction) -> Result<()> {
    let mut blobs: std::collections::BTreeMap<String, (Digest, super::BlobSource)> = std::collections::BTreeMap::new();
    blobs.insert(described.digest.hash.clone(), (described.digest.clone(), super::BlobSource::Bytes(described.action.clone())));
    blobs.insert(
        described.command_digest.hash.clone(),
        (described.command_digest.clone(), super::BlobSource::Bytes(described.command.clone())),
    );
    for (digest, source) in &described.inputs {
        blobs.entry(digest.hash.clone()).or_insert_with(|| (digest.clone(), source.clone()));
    }
    let wanted: Vec<Digest> = blobs.values().map(|(d, _)| d.clone()).collect();
    let missing = remote.store.find_missing(&wanted)?;
    let mut sending = Vec::new();
    for d in missing {
        if let Some(b) = blobs.remove(&d.hash) {
            remote.uploaded.fetch_add(d.size_bytes as u64, std::sync::atomic::Ordering::Relaxed);
            sending.push(b);
        }
    }
    remote.store.upload(sending)
}
