//! The scheduler: runs the actions needed for the wanted artifacts on a rayon pool, each as
//! soon as its inputs exist, and reports what ran.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use sha2::{Digest, Sha256};

use super::action::{Action, ActionContext, ActionKind, Artifact, ArtifactKind};
use super::cache::{ActionRecord, OutputRecord};
use super::digest::{DigestKind, hex, sha256_hex};
use super::events::{ActionResult, ActionTiming, SpawnSummary, SpawnedCommand, with_action};
use super::exec_roots::ExecRoots;
use super::{ACTION_SALT, Executor, fs, process, remote};
use crate::graph::label::Label;

/// How the scheduler runs actions.
#[derive(Debug, Clone)]
pub struct ExecOptions {
    /// Most actions running at once.
    pub jobs: usize,
    /// Keep starting actions that do not depend on a failed one.
    pub keep_going: bool,
}

/// An action that failed.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The target that declared it.
    pub owner: Label,
    /// Its mnemonic (`GoCompilePkg`).
    pub mnemonic: String,
    /// Its progress message (`Executing genrule //p:x`).
    pub progress: String,
    /// Why it failed, with what it printed.
    pub message: String,
    /// The last process it spawned, if any (`--verbose_failures` shows it).
    pub command: Option<SpawnedCommand>,
}

#[derive(Debug, Default)]
pub struct ExecReport {
    /// Actions needed for the wanted artifacts.
    pub total: usize,
    pub executed: usize,
    /// Found in the local disk cache.
    pub cache_hits: usize,
    /// Found in the remote cache (`--remote_cache`), after a local miss.
    pub remote_hits: usize,
    /// Run by the remote executor (`--remote_executor`); its own cache hits count as
    /// `remote_hits`.
    pub remote_executed: usize,
    /// An action failed because the remote executor could not run it (Bazel's exit code 34).
    pub remote_error: bool,
    pub failures: Vec<Failure>,
    pub interrupted: bool,
    /// First output of every action that was a cache hit.
    pub hits: HashSet<String>,
    /// Executed actions that spawned at least one process (the rest ran inside ocib).
    pub executed_spawning: usize,
    /// The longest chain of dependent actions, by the time each took in this build (cache
    /// hits count their lookup), as Bazel's "Critical Path".
    pub critical_path: Duration,
    /// The actions the wanted artifacts needed (indices into the actions given), sorted.
    pub needed: Vec<usize>,
}

/// The digests of one action's derived inputs, by input index, and the members of the
/// directory outputs among them. Built for each action on the scheduler's thread from shared
/// values (`Arc`s), so handing an action to a worker copies no path and no digest.
pub(super) struct Derived {
    /// `direct[i]`: the digest of `action.inputs[i]` if an action produced it.
    direct: Vec<Option<Arc<str>>>,
    /// The members (exec path, digest) of input directories.
    trees: Vec<Arc<Vec<(String, String)>>>,
}

impl Derived {
    /// Exec path → digest of every derived input and input directory member, as an in-process
    /// action reads them ([`ActionContext::input_digests`]); only built when the action runs.
    fn to_map(&self, action: &Action) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        for (input, digest) in action.inputs.iter().zip(&self.direct) {
            if let Some(d) = digest {
                map.insert(input.exec_path.clone(), d.to_string());
            }
        }
        for (member, d) in self.trees.iter().flat_map(|t| t.iter()) {
            map.insert(member.clone(), d.clone());
        }
        map
    }
}

/// A worker's message: action `id` ended.
struct Done {
    id: usize,
    result: Result<Outcome>,
    started: Instant,
    elapsed: Duration,
    spawns: SpawnSummary,
    thread: usize,
}

enum Outcome {
    Hit(Vec<OutputRecord>),
    /// Downloaded from the remote cache.
    RemoteHit(Vec<OutputRecord>),
    /// Run by the remote executor.
    RemoteExecuted(Vec<OutputRecord>),
    /// Ran, with what it printed (shown even on success, as Bazel's "INFO: From ..." does).
    Executed(Vec<OutputRecord>, String),
}

/// Runs the actions `wanted` needs (each at most once, a cache hit when its key is known),
/// reporting to the executor's observer.
pub fn run(ex: &Executor, actions: &[Action], wanted: &[Artifact]) -> ExecReport {
    let mut report = ExecReport::default();
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, a) in actions.iter().enumerate() {
        for o in &a.outputs {
            producer.insert(o.exec_path.as_str(), i);
        }
    }
    // The actions the wanted artifacts need, transitively.
    let mut needed: Vec<usize> = Vec::new();
    let mut seen = HashSet::new();
    let mut stack: Vec<usize> = wanted.iter().filter_map(|w| producer.get(w.exec_path.as_str()).copied()).collect();
    while let Some(i) = stack.pop() {
        if !seen.insert(i) {
            continue;
        }
        needed.push(i);
        for input in &actions[i].inputs {
            if let Some(&p) = producer.get(input.exec_path.as_str()) {
                stack.push(p);
            }
        }
    }
    needed.sort();
    report.total = needed.len();
    report.needed = needed.clone();
    // Actions that make a wanted artifact: their remote hits are downloaded under
    // `--remote_download_outputs=toplevel` (the others' outputs may stay on the remote).
    let wanted_paths: HashSet<&str> = wanted.iter().map(|w| w.exec_path.as_str()).collect();
    let top: HashSet<usize> =
        needed.iter().copied().filter(|&i| actions[i].outputs.iter().any(|o| wanted_paths.contains(o.exec_path.as_str()))).collect();

    ex.observer.planned(report.total);

    let mut waiting_on: HashMap<usize, usize> = HashMap::new();
    let mut deps_of: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut dependents: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut ready = Vec::new();
    for &i in &needed {
        let deps: HashSet<usize> = actions[i].inputs.iter().filter_map(|inp| producer.get(inp.exec_path.as_str()).copied()).collect();
        for &d in &deps {
            dependents.entry(d).or_default().push(i);
        }
        deps_of.insert(i, deps.iter().copied().collect());
        if deps.is_empty() {
            ready.push(i);
        } else {
            waiting_on.insert(i, deps.len());
        }
    }
    ready.reverse();

    // Longest chain of durations ending at each finished action.
    let mut chain: HashMap<usize, Duration> = HashMap::new();
    let mut digests: HashMap<String, Arc<str>> = HashMap::new();
    // Directory outputs' members, for actions that read those directories.
    let mut tree_members: HashMap<String, Arc<Vec<(String, String)>>> = HashMap::new();
    let mut failed: HashSet<usize> = HashSet::new();
    let mut stop = false;
    let jobs = ex.opts.jobs.max(1);
    let pool = match rayon::ThreadPoolBuilder::new().num_threads(jobs).thread_name(|i| format!("ocib-exec-{i}")).build() {
        Ok(p) => p,
        Err(e) => {
            report.failures.push(Failure {
                owner: Label::parse_absolute("//:ocib").unwrap_or_else(|_| Label {
                    repo: String::new(),
                    package: String::new(),
                    name: "ocib".into(),
                }),
                mnemonic: "Scheduler".into(),
                progress: "Scheduler".into(),
                message: format!("cannot start worker threads: {e}"),
                command: None,
            });
            return report;
        }
    };
    let (done_tx, done_rx) = mpsc::channel::<Done>();
    let roots = &ExecRoots::new(ex.base.root.join("tmp"));
    pool.in_place_scope(|scope| {
        let mut running = 0usize;
        loop {
            while running < jobs && !stop {
                let Some(i) = ready.pop() else { break };
                let action = &actions[i];
                let input_digests = Derived {
                    direct: action.inputs.iter().map(|inp| digests.get(inp.exec_path.as_str()).cloned()).collect(),
                    trees: action.inputs.iter().filter_map(|inp| tree_members.get(inp.exec_path.as_str()).cloned()).collect(),
                };
                let tx = done_tx.clone();
                running += 1;
                ex.observer.action_started(i, action);
                let observer = ex.observer.clone();
                let is_top = top.contains(&i);
                scope.spawn(move |_| {
                    let started = Instant::now();
                    let (result, spawns) = with_action(&observer, i, || run_one(ex, roots, action, &input_digests, is_top));
                    let thread = rayon::current_thread_index().map_or(0, |t| t + 1);
                    let _ = tx.send(Done { id: i, result, started, elapsed: started.elapsed(), spawns, thread });
                });
            }
            if running == 0 {
                break;
            }
            let Ok(Done { id: i, result, started, elapsed, spawns, thread }) = done_rx.recv() else { break };
            running -= 1;
            let action = &actions[i];
            let longest_dep = deps_of.get(&i).into_iter().flatten().filter_map(|d| chain.get(d).map(|c| (*c, *d))).max();
            let path = longest_dep.map(|(c, _)| c).unwrap_or_default() + elapsed;
            chain.insert(i, path);
            report.critical_path = report.critical_path.max(path);
            let cache_hit = matches!(result, Ok(Outcome::Hit(_)));
            ex.observer.action_timed(i, action, &ActionTiming { thread, started, elapsed, cache_hit, after: longest_dep.map(|(_, d)| d) });
            match result {
                Ok(outcome) => {
                    let records = match outcome {
                        Outcome::Hit(r) => {
                            report.cache_hits += 1;
                            if let Some(o) = action.outputs.first() {
                                report.hits.insert(o.exec_path.clone());
                            }
                            ex.observer.action_finished(i, action, ActionResult::CacheHit, elapsed);
                            r
                        }
                        Outcome::RemoteHit(r) => {
                            report.remote_hits += 1;
                            if let Some(o) = action.outputs.first() {
                                report.hits.insert(o.exec_path.clone());
                            }
                            ex.observer.action_finished(i, action, ActionResult::CacheHit, elapsed);
                            r
                        }
                        Outcome::RemoteExecuted(r) => {
                            report.remote_executed += 1;
                            ex.observer.action_finished(i, action, ActionResult::Executed { log: "" }, elapsed);
                            r
                        }
                        Outcome::Executed(r, log) => {
                            report.executed += 1;
                            if spawns.count > 0 {
                                report.executed_spawning += 1;
                            }
                            ex.observer.action_finished(i, action, ActionResult::Executed { log: log.trim_end() }, elapsed);
                            r
                        }
                    };
                    let mut trees: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
                    for r in records {
                        if let Some(dir) = &r.tree {
                            trees.entry(dir.clone()).or_default().push((r.exec_path.clone(), r.digest.clone()));
                        }
                        digests.insert(r.exec_path, Arc::from(r.digest));
                    }
                    for dir in &action.tree_outputs {
                        let members = trees.remove(dir).unwrap_or_default();
                        digests.insert(dir.clone(), Arc::from(tree_digest(dir, &members)));
                        tree_members.insert(dir.clone(), Arc::new(members));
                    }
                    for &d in dependents.get(&i).map(Vec::as_slice).unwrap_or(&[]) {
                        if failed.contains(&d) {
                            continue;
                        }
                        if let Some(n) = waiting_on.get_mut(&d) {
                            *n -= 1;
                            if *n == 0 {
                                ready.push(d);
                            }
                        }
                    }
                }
                Err(e) => {
                    let message = format!("{e:#}");
                    ex.observer.action_finished(i, action, ActionResult::Failed { message: &message }, elapsed);
                    if process::interrupted() {
                        report.interrupted = true;
                    } else {
                        report.remote_error |= e.is::<remote::RemoteExecutionError>();
                        report.failures.push(Failure {
                            owner: action.owner.clone(),
                            mnemonic: action.mnemonic.to_string(),
                            progress: action.progress.clone(),
                            message,
                            command: spawns.last,
                        });
                    }
                    // Nothing that depends on a failed action can run.
                    let mut stack = vec![i];
                    while let Some(f) = stack.pop() {
                        if failed.insert(f) {
                            stack.extend(dependents.get(&f).into_iter().flatten().copied());
                        }
                    }
                    if !ex.opts.keep_going || report.interrupted {
                        stop = true;
                    }
                }
            }
            if process::interrupted() {
                report.interrupted = true;
                stop = true;
            }
        }
    });
    roots.remove_all();
    report
}

/// A directory output's digest: over its members' relative paths and digests.
fn tree_digest(dir: &str, members: &[(String, String)]) -> String {
    let mut lines: Vec<String> = members.iter().map(|(p, d)| format!("{}\0{d}\n", p.strip_prefix(dir).unwrap_or(p))).collect();
    lines.sort();
    sha256_hex(lines.concat().as_bytes())
}

/// Feeds one length-prefixed field to the key's hash, so that no two different sequences of
/// fields hash the same bytes.
fn field(h: &mut Sha256, bytes: &[u8]) {
    h.update((bytes.len() as u64).to_le_bytes());
    h.update(bytes);
}

/// How the action makes its outputs, into the key.
fn hash_how(h: &mut Sha256, action: &Action) {
    match &action.kind {
        ActionKind::Spawn { argv, env } => {
            field(h, b"spawn");
            h.update((argv.len() as u64).to_le_bytes());
            argv.iter().for_each(|a| field(h, a.as_bytes()));
            h.update((env.len() as u64).to_le_bytes());
            for (k, v) in env {
                field(h, k.as_bytes());
                field(h, v.as_bytes());
            }
        }
        ActionKind::Write { content, executable } => {
            field(h, b"write");
            field(h, content);
            h.update([u8::from(*executable)]);
        }
        ActionKind::Run(p) => {
            field(h, b"run");
            field(h, p.params().as_bytes());
        }
    }
}

/// The action key: a sha256 over everything the action's outputs depend on (salt, mnemonic,
/// how it runs, tool identity, its inputs' content digests, never their mtimes, its outputs'
/// paths and modes, the stable status when stamped), each field length-prefixed and hashed
/// as it is read (no intermediate document). `derived` holds the digests of inputs that
/// actions already produced.
fn action_key(ex: &Executor, action: &Action, derived: &Derived) -> Result<String> {
    // Source digests come from the stat cache; new or changed files are hashed, in parallel
    // when there are many (a layer of a thousand files is hashed on every core).
    let digest_of = |i: usize, input: &Artifact| -> Result<Arc<str>> {
        Ok(match &input.kind {
            ArtifactKind::Derived => derived
                .direct
                .get(i)
                .cloned()
                .flatten()
                .ok_or_else(|| anyhow!("internal: input '{}' has no digest (no action produced it)", input.exec_path))?,
            ArtifactKind::Source(path) => Arc::from(
                ex.stat_cache.digest(path, DigestKind::Key).map_err(|e| anyhow!("missing input file '{}': {e}", input.exec_path))?,
            ),
        })
    };
    let sources = action.inputs.iter().filter(|i| i.is_source()).count();
    let mut inputs: Vec<(&str, Arc<str>)> = if sources > PARALLEL_HASH_MIN {
        use rayon::prelude::*;
        action
            .inputs
            .par_iter()
            .enumerate()
            .map(|(i, input)| Ok((input.exec_path.as_str(), digest_of(i, input)?)))
            .collect::<Result<_>>()?
    } else {
        action.inputs.iter().enumerate().map(|(i, input)| Ok((input.exec_path.as_str(), digest_of(i, input)?))).collect::<Result<_>>()?
    };
    inputs.sort();
    inputs.dedup();
    let mut outputs: Vec<(&str, bool)> =
        action.outputs.iter().map(|o| (o.exec_path.as_str(), action.executable_outputs.contains(&o.exec_path))).collect();
    outputs.sort();

    let mut h = Sha256::new();
    field(&mut h, ACTION_SALT.as_bytes());
    field(&mut h, action.mnemonic.as_bytes());
    hash_how(&mut h, action);
    field(&mut h, action.tool_id.as_bytes());
    h.update((inputs.len() as u64).to_le_bytes());
    for (path, digest) in &inputs {
        field(&mut h, path.as_bytes());
        field(&mut h, digest.as_bytes());
    }
    h.update((outputs.len() as u64).to_le_bytes());
    for (path, executable) in &outputs {
        field(&mut h, path.as_bytes());
        h.update([u8::from(*executable)]);
    }
    match (action.stamped, ex.status.as_ref()) {
        (true, Some(s)) => field(&mut h, crate::stamp::format(&s.stable).as_bytes()),
        _ => h.update([0xff]),
    }
    Ok(hex(&h.finalize()))
}

/// Source inputs above which an action's key hashes them on the pool rather than in line
/// (a handful of stat-cache hits costs less than handing them to other threads).
const PARALLEL_HASH_MIN: usize = 16;

/// Runs (or finds) one action; `top`: it makes a wanted artifact.
fn run_one(ex: &Executor, roots: &ExecRoots, action: &Action, derived: &Derived, top: bool) -> Result<Outcome> {
    let key = action_key(ex, action, derived)?;

    if let Some((mut record, restamped)) = ex.cache.lookup(&key).filter(|_| !action.skip_cache_lookup && !action.requires("no-cache")) {
        let complete = action
            .outputs
            .iter()
            .filter(|o| !action.tree_outputs.contains(&o.exec_path))
            .all(|o| record.outputs.iter().any(|r| r.exec_path == o.exec_path));
        if complete {
            let linked = materialize(ex, action, &mut record.outputs)?;
            // Keep the stat the CAS files have now (linking moves ctime), so the next build
            // does not hash them again. Only an optimisation: a failed write costs a hash.
            if restamped || linked {
                let _ = ex.cache.store(&key, &record);
            }
            return Ok(Outcome::Hit(record.outputs));
        }
    }
    // The remote cache, after a local miss: the action's REAPI identity first. The digests by
    // exec path are built here, on a miss only (a no-op build never needs them).
    let derived_map = derived.to_map(action);
    let remote = ex.remote.as_ref().filter(|r| r.active());
    let described = match remote {
        Some(r) => match remote::describe(ex, action, &derived_map) {
            Ok(d) => Some((r, d)),
            Err(e) => {
                ex.observer.warning(&format!("Remote Cache: {}: {e:#}; not using the remote cache for it", action.progress));
                None
            }
        },
        None => None,
    };
    if let Some((r, d)) = &described
        && r.accepts_cached()
        && !action.skip_cache_lookup
        && remote_caching(action)
    {
        let warn = |m: &str| ex.observer.warning(m);
        let download = r.downloads(top);
        match remote::fetch(ex, r, action, d, download, &warn) {
            Ok(Some(records)) => return Ok(Outcome::RemoteHit(place_remote(ex, r, action, &key, records, download)?)),
            Ok(None) => {}
            Err(e) => remote_failed(ex, r, &e)?,
        }
    }
    if let Some((r, d)) = &described
        && let Some(executor) = r.executor_for(action)
    {
        let warn = |m: &str| ex.observer.warning(m);
        let download = r.downloads(top);
        match remote::execute::run(ex, r, executor, action, d, download, &warn) {
            Ok((records, cached)) => {
                let records = place_remote(ex, r, action, &key, records, download)?;
                // The server's own cache answered: a remote cache hit, as Bazel counts it.
                return Ok(if cached { Outcome::RemoteHit(records) } else { Outcome::RemoteExecuted(records) });
            }
            Err(e) if e.is::<remote::RemoteExecutionError>() => remote_failed(ex, r, &e)?,
            Err(e) => return Err(e),
        }
    }
    if let Some(r) = &ex.remote {
        remote::prefetch(ex, r, action)?;
    }
    let (mut records, log, uncacheable) = execute(ex, roots, action, &key, derived_map)?;
    materialize(ex, action, &mut records)?;
    // This process just stored (or recognised) every output and linked some: their current
    // stat is the known-good one.
    for r in &mut records {
        ex.cache.restamp(r);
    }
    if !uncacheable && !action.requires("no-cache") {
        let record = ActionRecord { mnemonic: action.mnemonic.to_string(), outputs: records.clone() };
        ex.cache.store(&key, &record).with_context(|| format!("storing the action cache entry of {}", action.progress))?;
        if let Some((r, d)) = &described
            && r.uploads()
            && remote_caching(action)
            && let Err(e) = remote::upload(ex, r, action, d, &records)
        {
            remote_failed(ex, r, &e)?;
        }
    }
    Ok(Outcome::Executed(records, log))
}

/// The remote failed: warn once and go on without it; but with `--remote_executor` and
/// without `--remote_local_fallback`, fail the action (Bazel's exit code 34).
fn remote_failed(ex: &Executor, remote: &remote::RemoteCache, e: &anyhow::Error) -> Result<()> {
    if remote.has_executor() && !remote.local_fallback() {
        return Err(anyhow::Error::new(remote::RemoteExecutionError(format!("{e:#}"))));
    }
    if let Some(message) = remote.failed(e) {
        ex.observer.warning(&message);
    }
    Ok(())
}

/// Whether the action's tags let it use the remote cache (Bazel: `no-remote`,
/// `no-remote-cache`, `no-cache` and `local` keep its results off the remote).
fn remote_caching(action: &Action) -> bool {
    !["no-remote", "no-remote-cache", "no-cache", "local"].iter().any(|t| action.requires(t))
}

/// Places the outputs of a remote hit or a remote execution and records them in the local
/// action cache; without `download` they stay on the remote (nothing is placed, no local
/// entry is written: it would name bytes that are not here).
fn place_remote(
    ex: &Executor,
    r: &remote::RemoteCache,
    action: &Action,
    key: &str,
    mut records: Vec<OutputRecord>,
    download: bool,
) -> Result<Vec<OutputRecord>> {
    if !download {
        // Left on the remote: what an earlier build put at these paths is stale, and no local
        // action cache entry names bytes that are not here.
        for dir in action.tree_outputs.iter().filter(|d| r.left_on_remote(d)) {
            let real = ex.base.workspace.join(dir);
            if real.is_dir() {
                let _ = std::fs::remove_dir_all(&real);
            }
        }
        for o in action.outputs.iter().filter(|o| r.left_on_remote(&o.exec_path)) {
            let _ = std::fs::remove_file(ex.base.workspace.join(&o.exec_path));
        }
        // Those `--remote_download_regex` asked for were downloaded: place them.
        let mut here: Vec<OutputRecord> = records.iter().filter(|rec| !r.left_on_remote(&rec.exec_path)).cloned().collect();
        if !here.is_empty() {
            let dirs: Vec<String> = action.tree_outputs.iter().filter(|d| !r.left_on_remote(d)).cloned().collect();
            materialize_in(ex, &dirs, &mut here)?;
        }
        return Ok(records);
    }
    materialize(ex, action, &mut records)?;
    for rec in &mut records {
        ex.cache.restamp(rec);
    }
    if !action.requires("no-cache") {
        let record = ActionRecord { mnemonic: action.mnemonic.to_string(), outputs: records.clone() };
        ex.cache.store(key, &record).with_context(|| format!("storing the action cache entry of {}", action.progress))?;
    }
    Ok(records)
}

/// Puts CAS entries at their `ocib-out/bin` paths (hardlinks; nothing to do if already there),
/// and removes files a directory output no longer has. Returns whether it linked any (the
/// records then carry the CAS files' new stat).
fn materialize(ex: &Executor, action: &Action, records: &mut [OutputRecord]) -> Result<bool> {
    materialize_in(ex, &action.tree_outputs, records)
}

/// [`materialize`] of some outputs: `tree_outputs` are the directory outputs among them.
fn materialize_in(ex: &Executor, tree_outputs: &[String], records: &mut [OutputRecord]) -> Result<bool> {
    for dir in tree_outputs {
        let real = ex.base.workspace.join(dir);
        std::fs::create_dir_all(&real).with_context(|| format!("creating {}", real.display()))?;
        let keep: HashSet<PathBuf> =
            records.iter().filter(|r| r.tree.as_deref() == Some(dir.as_str())).map(|r| ex.base.workspace.join(&r.exec_path)).collect();
        for entry in walkdir::WalkDir::new(&real).into_iter().flatten() {
            if !entry.file_type().is_dir() && !keep.contains(entry.path()) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    let mut linked = false;
    for r in records {
        let dest = ex.base.workspace.join(&r.exec_path);
        // The record carries the CAS file's device and inode as checked (or stored) moments
        // ago, so the CAS file is not stat'ed again: only the output is.
        let dest_meta = std::fs::symlink_metadata(&dest).ok();
        let same = dest_meta.as_ref().is_some_and(|d| d.dev() == r.cas_dev && d.ino() == r.cas_ino && r.cas_ino != 0);
        // A copy (the cache is on another filesystem) is checked through the stat cache. On
        // the cache's own filesystem outputs are hardlinks, so a file there that is not the
        // CAS file is an earlier build's output: relinking costs less than hashing it (a
        // rebuilt layer of the same size was read in full here).
        let same_copy = !same
            && dest_meta.as_ref().is_some_and(|d| d.is_file() && d.len() == r.size && d.dev() != r.cas_dev)
            && ex.stat_cache.digest(&dest, DigestKind::Sha256).is_ok_and(|d| d == r.digest);
        if !same && !same_copy {
            let src = ex.cache.cas_path(&r.digest, r.executable);
            fs::link_or_copy(&src, &dest).with_context(|| format!("placing {}", r.exec_path))?;
            ex.cache.restamp(r);
            linked = true;
        }
    }
    Ok(linked)
}

fn exec_root(ex: &Executor, key: &str) -> PathBuf {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    ex.base.root.join("tmp").join(format!("{}.{}.{n}", &key[..16.min(key.len())], std::process::id()))
}

fn execute(
    ex: &Executor,
    roots: &ExecRoots,
    action: &Action,
    key: &str,
    known: BTreeMap<String, String>,
) -> Result<(Vec<OutputRecord>, String, bool)> {
    // An action may hardlink CAS files (its inputs) and so move their ctime.
    ex.cache.note_links();
    let mut inputs: BTreeMap<String, PathBuf> = action.inputs.iter().map(|i| (i.exec_path.clone(), ex.real_path(i))).collect();
    // Stamped commands read the status files where Bazel's do.
    if action.stamped && matches!(action.kind, ActionKind::Spawn { .. }) {
        for name in ["stable-status.txt", "volatile-status.txt"] {
            inputs.insert(format!("ocib-out/{name}"), ex.base.root.join(name));
        }
    }
    let flat = match &action.kind {
        ActionKind::Write { .. } => true,
        ActionKind::Run(code) => code.scratch_free(),
        ActionKind::Spawn { .. } => false,
    };
    if !flat {
        let links: Vec<(&str, &std::path::Path)> = inputs.iter().map(|(k, v)| (k.as_str(), v.as_path())).collect();
        let outputs: Vec<&str> = action.outputs.iter().map(|o| o.exec_path.as_str()).collect();
        let root =
            roots.take(&links, &outputs).with_context(|| format!("preparing an exec root in {}", ex.base.root.join("tmp").display()))?;
        let result = execute_in(ex, action, &root, None, inputs, known);
        roots.give_back(root);
        return result;
    }
    // Files beside the exec root the action does not get; directories from the pool (kept
    // with their subdirectories from one action to the next).
    let root = exec_root(ex, key);
    let mut placed: Vec<(PathBuf, bool)> = Vec::with_capacity(action.outputs.len());
    let mut taken = Ok(());
    for (i, o) in action.outputs.iter().enumerate() {
        if action.tree_outputs.contains(&o.exec_path) {
            match roots.take_tree() {
                Ok(dir) => placed.push((dir, true)),
                Err(e) => {
                    taken = Err(e);
                    break;
                }
            }
        } else {
            placed.push((flat_output(&root, i), false));
        }
    }
    let result = taken.with_context(|| format!("preparing an output directory in {}", ex.base.root.join("tmp").display())).and_then(|()| {
        let paths: Vec<PathBuf> = placed.iter().map(|(p, _)| p.clone()).collect();
        execute_in(ex, action, &root, Some(&paths), inputs, known)
    });
    // Stored outputs were renamed into the CAS; only links of inputs (in directories) and what
    // a failure left remain.
    for (out, tree) in placed {
        if tree {
            roots.give_back_tree(out);
            continue;
        }
        match std::fs::symlink_metadata(&out) {
            Ok(m) if m.is_dir() => {
                super::cache::make_writable(&out);
                let _ = std::fs::remove_dir_all(&out);
            }
            Ok(_) => {
                let _ = std::fs::remove_file(&out);
            }
            Err(_) => {}
        }
    }
    result
}

/// Where output `i` of a scratch-free action is written: beside the exec root it does not
/// get (`ocib-out/tmp/<key>.<pid>.<n>.<i>`, a name [`super::OutputBase::open`] recognises
/// as this process's when it clears what killed builds left).
fn flat_output(root: &std::path::Path, i: usize) -> PathBuf {
    let mut name = root.as_os_str().to_owned();
    name.push(format!(".{i}"));
    PathBuf::from(name)
}

/// Runs the action in `root`, or, when `flat_paths` gives where each output is written (a
/// scratch-free action), without an exec root (`root` then only names the action's scratch).
fn execute_in(
    ex: &Executor,
    action: &Action,
    root: &std::path::Path,
    flat_paths: Option<&[PathBuf]>,
    inputs: BTreeMap<String, PathBuf>,
    known: BTreeMap<String, String>,
) -> Result<(Vec<OutputRecord>, String, bool)> {
    let flat = flat_paths.is_some();
    let scratch = root.parent().unwrap_or(root);
    // (`scratch`, `ocib-out/tmp`, was made with the pool of exec roots.)
    if !flat {
        std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    }
    let (stable, volatile) = if action.stamped { ex.status_maps() } else { (None, None) };
    let mut ctx = ActionContext {
        exec_root: if flat { scratch.to_path_buf() } else { root.to_path_buf() },
        inputs,
        outputs: action
            .outputs
            .iter()
            .enumerate()
            .map(|(i, o)| {
                let path = match flat_paths.and_then(|p| p.get(i)) {
                    Some(p) => p.clone(),
                    None => root.join(&o.exec_path),
                };
                (o.exec_path.clone(), path)
            })
            .collect(),
        input_digests: known,
        stable_status: stable,
        volatile_status: volatile,
        log: String::new(),
        output_digests: BTreeMap::new(),
        uncacheable: false,
    };
    for (exec_path, out) in &ctx.outputs {
        let dir = if action.tree_outputs.contains(exec_path) {
            Some(out.as_path())
        } else if flat {
            None
        } else {
            out.parent()
        };
        if let Some(dir) = dir {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
    }
    let result = match &action.kind {
        ActionKind::Write { content, .. } => {
            let out = action.outputs.first().ok_or_else(|| anyhow!("internal: write action without output"))?;
            let path = ctx.output(&out.exec_path)?;
            std::fs::write(path, content).with_context(|| format!("writing {}", path.display()))
        }
        ActionKind::Run(code) => code.run(&mut ctx),
        ActionKind::Spawn { argv, env } => {
            // Only the declared inputs exist in the exec root (links of the previous action
            // that point where these must are kept).
            for (exec_path, real) in &ctx.inputs {
                let link = root.join(exec_path);
                if let Some(parent) = link.parent() {
                    std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
                }
                if !link.exists() {
                    std::os::unix::fs::symlink(real, &link).with_context(|| format!("linking input {exec_path}"))?;
                }
            }
            let root_str = root.to_string_lossy();
            let argv: Vec<String> = argv.iter().map(|a| a.replace("$EXECROOT", &root_str)).collect();
            let mut env: BTreeMap<String, String> = env.iter().map(|(k, v)| (k.clone(), v.replace("$EXECROOT", &root_str))).collect();
            env.entry("PATH".into()).or_insert_with(|| "/usr/local/bin:/usr/bin:/bin".into());
            let mut log = String::new();
            let r = process::run(&argv, &env, root, &mut log);
            ctx.log.push_str(&log);
            r
        }
    };
    if let Err(e) = result {
        let log = ctx.log.trim_end();
        if log.is_empty() {
            bail!("{e:#}");
        }
        bail!("{e:#}\n{log}");
    }
    let mut records = Vec::new();
    // Files of directory outputs that are hardlinks of inputs (image layers, base blobs) are
    // already in the CAS: recognize them by inode instead of hashing them again.
    let mut by_inode: HashMap<(u64, u64), String> = HashMap::new();
    if !action.tree_outputs.is_empty() {
        for (exec_path, digest) in &ctx.input_digests {
            if let Ok(meta) = std::fs::metadata(ex.base.workspace.join(exec_path)) {
                by_inode.insert((meta.dev(), meta.ino()), digest.clone());
            }
        }
    }
    for out in &action.outputs {
        let path = ctx.output(&out.exec_path)?.clone();
        if action.tree_outputs.contains(&out.exec_path) {
            for entry in walkdir::WalkDir::new(&path).sort_by_file_name() {
                let entry = entry.with_context(|| format!("reading output directory {}", out.exec_path))?;
                if entry.file_type().is_dir() {
                    continue;
                }
                if !entry.file_type().is_file() {
                    bail!("output directory '{}' contains '{}', which is not a regular file", out.exec_path, entry.path().display());
                }
                let rel = entry.path().strip_prefix(&path).unwrap_or(entry.path()).to_string_lossy().into_owned();
                let member = format!("{}/{rel}", out.exec_path);
                let meta = entry.metadata().with_context(|| format!("reading {}", entry.path().display()))?;
                let executable = std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o111 != 0;
                let existing = by_inode.get(&(meta.dev(), meta.ino())).and_then(|d| ex.cache.existing(d, &member, executable));
                let mut record = match existing {
                    Some(r) => r,
                    None => ex.cache.insert(entry.path(), &member, executable, None).with_context(|| format!("storing {member}"))?,
                };
                record.tree = Some(out.exec_path.clone());
                records.push(record);
            }
            continue;
        }
        let meta = std::fs::symlink_metadata(&path).map_err(|_| anyhow!("the action did not create its output '{}'", out.exec_path))?;
        if !meta.is_file() {
            bail!("output '{}' is not a regular file", out.exec_path);
        }
        let executable = action.executable_outputs.contains(&out.exec_path);
        let known = ctx.output_digests.get(&out.exec_path).map(String::as_str);
        records.push(ex.cache.insert(&path, &out.exec_path, executable, known).with_context(|| format!("storing {}", out.exec_path))?);
    }
    Ok((records, ctx.log, ctx.uncacheable))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::OutputBase;
    use std::fs::File;

    /// A Spawn action reading one source file and one output of another action.
    fn action(argv: &[&str], source: &std::path::Path, tool: &str) -> Action {
        let owner = Label::parse_absolute("//p:t").unwrap();
        let kind = ActionKind::Spawn { argv: argv.iter().map(|s| s.to_string()).collect(), env: BTreeMap::new() };
        let mut a = Action::new("Test", &owner, kind)
            .inputs([Artifact::source("p/in.txt", source.to_path_buf()), Artifact::derived("p/gen.txt")])
            .output(Artifact::derived("p/out.txt"));
        a.tool_id = tool.to_owned();
        a
    }

    #[test]
    fn action_key_covers_input_digests_arguments_and_tool_but_not_mtimes() {
        let ws = tempfile::tempdir().unwrap();
        let cache_dir = tempfile::tempdir().unwrap();
        let source = ws.path().join("p/in.txt");
        std::fs::create_dir_all(source.parent().unwrap()).unwrap();
        std::fs::write(&source, "one").unwrap();
        let base = OutputBase::open(ws.path()).unwrap();
        let opts = ExecOptions { jobs: 1, keep_going: false };
        let ex = Executor::new(&base, cache_dir.path(), None, opts).unwrap();
        // The second input (p/gen.txt) is derived.
        let with = |d: &str| Derived { direct: vec![None, Some(Arc::from(d))], trees: vec![] };
        let derived = with("d1");
        let key = |a: &Action, derived: &Derived| action_key(&ex, a, derived).unwrap();

        let a = action(&["cat", "p/in.txt"], &source, "tool-v1");
        let k = key(&a, &derived);
        assert_eq!(key(&a, &derived), k, "same action, same inputs: same key (the cache is reused)");

        // Only the mtime moves (a `touch`, a checkout): the content digest, hence the key, stays.
        let past = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        File::options().write(true).open(&source).unwrap().set_modified(past).unwrap();
        assert_eq!(key(&a, &derived), k, "an mtime change alone must not rebuild");

        assert_ne!(key(&action(&["cat", "-n", "p/in.txt"], &source, "tool-v1"), &derived), k, "an argument changed");
        assert_ne!(key(&action(&["cat", "p/in.txt"], &source, "tool-v2"), &derived), k, "the tool identity changed");
        assert_ne!(key(&a, &with("d2")), k, "a generated input's digest changed");
        assert!(action_key(&ex, &a, &Derived { direct: vec![], trees: vec![] }).is_err(), "a derived input without digest");
        std::fs::write(&source, "two").unwrap();
        assert_ne!(key(&a, &derived), k, "a source input's content changed");
    }
}
