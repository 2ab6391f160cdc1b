//! `--profile=FILE` and `ocib analyze-profile FILE`: where a command's time went, as a Chrome
//! trace-event JSON file in the shape of Bazel's `--profile` output (it opens in Perfetto and
//! chrome://tracing). The phases (load, analysis, execution) are complete events on the
//! command's thread, each action one complete event on the worker thread that ran it (category
//! `action processing`, args `mnemonic` and `target`, as Bazel's), and the critical path is
//! repeated on a thread of its own as `critical path component` events, as Bazel writes it.
//! The action events come from the scheduler's [`ExecObserver`] reports.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};

use super::{CliError, CliResult};
use crate::exec::{Action, ActionResult, ActionTiming, ExecObserver, SpawnedCommand};

/// Category of the phase events (Bazel's name for its phase markers).
const PHASE_CATEGORY: &str = "build phase marker";
/// Category of action events (Bazel's).
const ACTION_CATEGORY: &str = "action processing";
/// Category of the critical path's events (Bazel's).
const CRITICAL_CATEGORY: &str = "critical path component";

/// `ocib analyze-profile FILE`.
#[derive(clap::Args, Debug)]
pub struct AnalyzeProfileArgs {
    /// A profile written by `--profile=FILE`.
    pub file: PathBuf,
    /// How many of the slowest actions to list.
    #[arg(long = "slowest", default_value_t = 20)]
    pub slowest: usize,
}

/// One trace event (the Chrome trace-event format's fields that Bazel's profiles use).
#[derive(Serialize, Deserialize, Debug, Clone, Default)]
struct Event {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    cat: String,
    name: String,
    ph: String,
    #[serde(default)]
    ts: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    dur: Option<u64>,
    #[serde(default)]
    pid: u64,
    #[serde(default)]
    tid: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    args: BTreeMap<String, serde_json::Value>,
}

/// The file: Chrome's object form, with Bazel's `otherData`.
#[derive(Serialize, Deserialize, Debug, Default)]
#[serde(rename_all = "camelCase")]
struct Trace {
    #[serde(default)]
    other_data: BTreeMap<String, String>,
    trace_events: Vec<Event>,
}

/// An action as it ended, for the critical path.
struct Timed {
    name: String,
    mnemonic: String,
    target: String,
    timing: ActionTiming,
    /// The longest chain of durations ending with this action.
    chain: Duration,
}

/// The profile being recorded.
struct Profiler {
    path: PathBuf,
    epoch: Instant,
    events: Mutex<Vec<Event>>,
    actions: Mutex<HashMap<usize, Timed>>,
}

static PROFILER: OnceLock<Arc<Profiler>> = OnceLock::new();

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl Profiler {
    fn since_epoch(&self, t: Instant) -> u64 {
        micros(t.saturating_duration_since(self.epoch))
    }
}

/// Starts recording a profile to `path` (`--profile`), with times counted from `epoch` (the
/// command's start).
pub fn start(path: &Path, epoch: Instant) {
    let _ = PROFILER.set(Arc::new(Profiler {
        path: path.to_path_buf(),
        epoch,
        events: Mutex::new(Vec::new()),
        actions: Mutex::new(HashMap::new()),
    }));
}

/// A phase being timed; recorded when dropped.
pub struct Phase {
    name: &'static str,
    started: Instant,
}

/// Times phase `name` (`load`, `analysis`, `execution`) until the returned guard is dropped.
/// Costs nothing without `--profile`.
pub fn phase(name: &'static str) -> Phase {
    Phase { name, started: Instant::now() }
}

impl Drop for Phase {
    fn drop(&mut self) {
        let Some(p) = PROFILER.get() else { return };
        let event = Event {
            cat: PHASE_CATEGORY.into(),
            name: self.name.into(),
            ph: "X".into(),
            ts: p.since_epoch(self.started),
            dur: Some(micros(self.started.elapsed())),
            pid: 1,
            tid: 0,
            args: BTreeMap::new(),
        };
        p.events.lock().unwrap_or_else(|e| e.into_inner()).push(event);
    }
}

/// `inner`, also recording every action into the profile when `--profile` is on.
pub fn observer(inner: Arc<dyn ExecObserver>) -> Arc<dyn ExecObserver> {
    match PROFILER.get() {
        Some(p) => Arc::new(Recording { inner, profiler: p.clone() }),
        None => inner,
    }
}

/// An observer that records actions and passes every report on.
struct Recording {
    inner: Arc<dyn ExecObserver>,
    profiler: Arc<Profiler>,
}

impl ExecObserver for Recording {
    fn planned(&self, total: usize) {
        self.inner.planned(total)
    }
    fn action_started(&self, id: usize, action: &Action) {
        self.inner.action_started(id, action)
    }
    fn action_finished(&self, id: usize, action: &Action, result: ActionResult<'_>, elapsed: Duration) {
        self.inner.action_finished(id, action, result, elapsed)
    }
    fn spawned(&self, id: usize, command: &SpawnedCommand) {
        self.inner.spawned(id, command)
    }
    fn warning(&self, message: &str) {
        self.inner.warning(message)
    }
    fn action_timed(&self, id: usize, action: &Action, timing: &ActionTiming) {
        self.inner.action_timed(id, action, timing);
        let p = &self.profiler;
        let mut args = BTreeMap::new();
        args.insert("mnemonic".to_owned(), serde_json::Value::from(action.mnemonic.to_string()));
        args.insert("target".to_owned(), serde_json::Value::from(action.owner.to_string()));
        args.insert("cache_hit".to_owned(), serde_json::Value::from(timing.cache_hit));
        let event = Event {
            cat: ACTION_CATEGORY.into(),
            name: action.progress.clone(),
            ph: "X".into(),
            ts: p.since_epoch(timing.started),
            dur: Some(micros(timing.elapsed)),
            pid: 1,
            tid: timing.thread as u64,
            args,
        };
        p.events.lock().unwrap_or_else(|e| e.into_inner()).push(event);
        let mut actions = p.actions.lock().unwrap_or_else(|e| e.into_inner());
        // Dependencies always end before their dependents, so their chain is known.
        let before = timing.after.and_then(|a| actions.get(&a)).map(|t| t.chain).unwrap_or_default();
        actions.insert(
            id,
            Timed {
                name: action.progress.clone(),
                mnemonic: action.mnemonic.to_string(),
                target: action.owner.to_string(),
                timing: *timing,
                chain: before + timing.elapsed,
            },
        );
    }
}

/// Writes the profile, if one was asked for; a file that cannot be written is a warning (the
/// command's own result stands).
pub fn finish() {
    let Some(p) = PROFILER.get() else { return };
    if let Err(e) = write(p) {
        eprintln!("WARNING: could not write the profile {}: {e:#}", p.path.display());
    }
}

fn write(p: &Profiler) -> Result<()> {
    let mut events = std::mem::take(&mut *p.events.lock().unwrap_or_else(|e| e.into_inner()));
    let actions = std::mem::take(&mut *p.actions.lock().unwrap_or_else(|e| e.into_inner()));
    let threads: std::collections::BTreeSet<u64> = events.iter().map(|e| e.tid).collect();
    let critical_tid = threads.iter().max().map_or(1, |t| t + 1);
    // The critical path: back from the action ending the longest chain.
    let mut path = Vec::new();
    let mut at = actions.iter().max_by_key(|(id, t)| (t.chain, std::cmp::Reverse(**id))).map(|(id, _)| *id);
    while let Some(id) = at {
        let Some(t) = actions.get(&id) else { break };
        path.push(t);
        at = t.timing.after;
    }
    path.reverse();
    for t in path {
        let mut args = BTreeMap::new();
        args.insert("mnemonic".to_owned(), serde_json::Value::from(t.mnemonic.clone()));
        args.insert("target".to_owned(), serde_json::Value::from(t.target.clone()));
        events.push(Event {
            cat: CRITICAL_CATEGORY.into(),
            name: t.name.clone(),
            ph: "X".into(),
            ts: p.since_epoch(t.timing.started),
            dur: Some(micros(t.timing.elapsed)),
            pid: 1,
            tid: critical_tid,
            args,
        });
    }
    events.sort_by_key(|e| (e.ts, e.tid));
    // Thread names first, as Bazel writes them.
    let mut all = Vec::new();
    let name_event = |tid: u64, name: String| {
        let mut args = BTreeMap::new();
        args.insert("name".to_owned(), serde_json::Value::from(name));
        Event { name: "thread_name".into(), ph: "M".into(), pid: 1, tid, args, ..Event::default() }
    };
    for tid in threads.iter().copied().chain([critical_tid]) {
        let name = match tid {
            0 => "ocib".to_owned(),
            t if t == critical_tid => "Critical Path".to_owned(),
            t => format!("ocib-exec-{}", t - 1),
        };
        all.push(name_event(tid, name));
    }
    all.extend(events);
    let trace = Trace {
        other_data: BTreeMap::from([
            ("build_tool".to_owned(), format!("ocib {}", env!("CARGO_PKG_VERSION"))),
            ("command_line".to_owned(), std::env::args().skip(1).collect::<Vec<_>>().join(" ")),
            ("elapsed_us".to_owned(), p.since_epoch(Instant::now()).to_string()),
        ]),
        trace_events: all,
    };
    let mut file = std::fs::File::create(&p.path).with_context(|| format!("creating {}", p.path.display()))?;
    let mut out = std::io::BufWriter::new(&mut file);
    serde_json::to_writer(&mut out, &trace)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

fn secs(us: u64) -> f64 {
    us as f64 / 1e6
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 * 100.0 / whole as f64 }
}

/// The report `analyze-profile` prints for `trace`.
fn analyze(trace: &Trace, slowest: usize) -> Vec<String> {
    let end = |e: &Event| e.ts + e.dur.unwrap_or(0);
    let total = trace
        .other_data
        .get("elapsed_us")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| trace.trace_events.iter().map(end).max().unwrap_or(0));
    let mut lines = vec!["=== PHASE SUMMARY INFORMATION ===".to_owned(), String::new()];
    let mut phases: Vec<(&str, u64)> = Vec::new();
    for e in trace.trace_events.iter().filter(|e| e.cat == PHASE_CATEGORY && e.ph == "X") {
        match phases.iter_mut().find(|(n, _)| *n == e.name) {
            Some((_, d)) => *d += e.dur.unwrap_or(0),
            None => phases.push((&e.name, e.dur.unwrap_or(0))),
        }
    }
    for (name, dur) in &phases {
        lines.push(format!("Total {:<10} phase time {:>10.3} s {:>7.2}%", name, secs(*dur), percent(*dur, total)));
    }
    lines.push("------------------------------------------------".to_owned());
    lines.push(format!("{:<28}{:>10.3} s {:>7.2}%", "Total run time", secs(total), 100.0));
    lines.push(String::new());

    let mut critical: Vec<&Event> = trace.trace_events.iter().filter(|e| e.cat == CRITICAL_CATEGORY).collect();
    critical.sort_by_key(|e| e.ts);
    let critical_total: u64 = critical.iter().map(|e| e.dur.unwrap_or(0)).sum();
    lines.push(format!("Critical path ({:.3} s):", secs(critical_total)));
    lines.push(format!("{:>11} {:>10}   {:<14} {}", "Time", "Percentage", "Mnemonic", "Description"));
    for e in &critical {
        let dur = e.dur.unwrap_or(0);
        lines.push(format!("{:>9.3} s {:>9.2}%   {:<14} {}", secs(dur), percent(dur, critical_total), arg(e, "mnemonic"), e.name));
    }
    lines.push(String::new());

    let mut actions: Vec<&Event> = trace.trace_events.iter().filter(|e| e.cat == ACTION_CATEGORY).collect();
    let hits = actions.iter().filter(|e| e.args.get("cache_hit").and_then(|v| v.as_bool()) == Some(true)).count();
    actions.sort_by_key(|e| (std::cmp::Reverse(e.dur.unwrap_or(0)), e.ts));
    lines.push(format!("Slowest actions (of {} actions: {} executed, {} cache hits):", actions.len(), actions.len() - hits, hits));
    lines.push(format!("{:>11}   {:<14} {:<30} {}", "Time", "Mnemonic", "Target", "Description"));
    for e in actions.iter().take(slowest) {
        lines.push(format!("{:>9.3} s   {:<14} {:<30} {}", secs(e.dur.unwrap_or(0)), arg(e, "mnemonic"), arg(e, "target"), e.name));
    }
    lines
}

fn arg<'a>(e: &'a Event, key: &str) -> &'a str {
    e.args.get(key).and_then(|v| v.as_str()).unwrap_or("")
}

/// `ocib analyze-profile FILE`: the phases' times, the critical path and the slowest actions
/// of a profile `--profile` wrote (Bazel's `analyze-profile`).
pub fn run(args: AnalyzeProfileArgs) -> CliResult {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))
        .map_err(CliError::bad_command_line)?;
    let trace: Trace = serde_json::from_str(&text)
        .map_err(|e| anyhow!("{}:{}:{}: not a profile ocib wrote: {e}", args.file.display(), e.line(), e.column()))
        .map_err(CliError::bad_command_line)?;
    for line in analyze(&trace, args.slowest) {
        println!("{line}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn action(name: &str, ts: u64, dur: u64, hit: bool) -> Event {
        let mut args = BTreeMap::new();
        args.insert("mnemonic".to_owned(), serde_json::Value::from("Genrule"));
        args.insert("target".to_owned(), serde_json::Value::from(format!("//p:{name}")));
        args.insert("cache_hit".to_owned(), serde_json::Value::from(hit));
        Event { cat: ACTION_CATEGORY.into(), name: name.into(), ph: "X".into(), ts, dur: Some(dur), pid: 1, tid: 1, args }
    }

    #[test]
    fn analysis_lists_phases_critical_path_and_slowest_actions_first() {
        let mut critical = action("b", 10, 300_000, false);
        critical.cat = CRITICAL_CATEGORY.into();
        let trace = Trace {
            other_data: BTreeMap::from([("elapsed_us".to_owned(), "1000000".to_owned())]),
            trace_events: vec![
                Event { cat: PHASE_CATEGORY.into(), name: "load".into(), ph: "X".into(), dur: Some(250_000), ..Event::default() },
                action("a", 0, 100_000, true),
                action("b", 10, 300_000, false),
                critical,
            ],
        };
        let lines = analyze(&trace, 1);
        assert!(lines.iter().any(|l| l.starts_with("Total load") && l.contains("0.250 s") && l.contains("25.00%")), "{lines:#?}");
        let cp = lines.iter().position(|l| l.starts_with("Critical path (0.300 s)")).expect("critical path");
        assert!(lines[cp + 2].contains("100.00%") && lines[cp + 2].ends_with(" b"), "{lines:#?}");
        let slow = lines.iter().position(|l| l.starts_with("Slowest actions (of 2 actions: 1 executed, 1 cache hits)")).expect("slowest");
        assert!(lines[slow + 2].contains("//p:b"), "the slowest first: {lines:#?}");
        assert_eq!(lines.len(), slow + 3, "--slowest=1 lists one");
    }
}
