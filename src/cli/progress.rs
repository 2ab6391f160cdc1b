//! What a build shows while it runs, as Bazel's `UiEventHandler`: on a terminal a live status
//! redrawn a few times a second (`[done / total]`, a bar, throughput, and the running actions
//! with their elapsed seconds, longest first); off a terminal a throttled line now and then;
//! `INFO: From …:` for what actions print; `SUBCOMMAND:` lines under `--subcommands`. It
//! renders the scheduler's reports ([`ExecObserver`]); the scheduler knows nothing of it.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::exec::{Action, ActionResult, ExecObserver, ExecReport, SpawnedCommand};

/// Off a terminal, Bazel prints progress at most once a second whatever
/// `--show_progress_rate_limit` says (`UiEventHandler`'s no-curses minimum), so CI logs stay
/// short.
const NO_TERMINAL_MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Off a terminal, a line is printed at the latest after this long while actions run, so a
/// long action (the Go standard library) is seen to be alive.
const NO_TERMINAL_HEARTBEAT: Duration = Duration::from_secs(10);

/// Lines of the terminal kept free of running actions (the status line, the prompt).
const TERMINAL_RESERVED_LINES: usize = 4;

/// How progress is shown.
#[derive(Debug, Clone)]
pub struct ProgressOptions {
    /// `--show_progress`: show anything while building.
    pub show_progress: bool,
    /// `--show_progress_rate_limit`: least time between two updates.
    pub rate_limit: Duration,
    /// `--subcommands`: print every process an action spawns.
    pub subcommands: bool,
}

/// One running action.
struct Running {
    progress: String,
    owner: String,
    started: Instant,
}

/// What the reporter knows of the build so far.
struct State {
    total: usize,
    done: usize,
    running: BTreeMap<usize, Running>,
    started: Instant,
    /// When the last line was printed off a terminal.
    last_line: Option<Instant>,
}

/// Where progress goes.
enum Sink {
    /// A live status on a terminal.
    Terminal(ProgressBar),
    /// Throttled lines (stderr is a file or a pipe).
    Lines,
    /// Nothing (`--noshow_progress`); messages still print.
    Quiet,
}

/// Renders a build's progress to stderr.
pub struct Reporter {
    options: ProgressOptions,
    sink: Sink,
    state: Mutex<State>,
    stop: AtomicBool,
}

impl Reporter {
    /// A reporter for stderr as it is (a terminal or not), with a thread that redraws the
    /// status (or prints the heartbeat) until [`Reporter::finish`].
    pub fn start(options: ProgressOptions) -> Arc<Reporter> {
        // A terminal that can draw: `TERM` unset or `dumb` cannot (indicatif draws nothing
        // there, so the plain lines are used; Bazel's client likewise treats an empty or
        // dumb `TERM` as no terminal).
        let dumb = std::env::var("TERM").map_or(true, |t| t.is_empty() || t == "dumb");
        let terminal = std::io::stderr().is_terminal() && !dumb;
        Reporter::with_terminal(options, terminal)
    }

    fn with_terminal(options: ProgressOptions, terminal: bool) -> Arc<Reporter> {
        let sink = match (options.show_progress, terminal) {
            (false, _) => Sink::Quiet,
            (true, false) => Sink::Lines,
            (true, true) => {
                let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr_with_hz(refresh_hz(options.rate_limit)));
                if let Ok(style) = ProgressStyle::with_template("[{pos} / {len}] {prefix} {bar:30.cyan/blue} {msg}") {
                    bar.set_style(style.progress_chars("=> "));
                }
                Sink::Terminal(bar)
            }
        };
        let reporter = Arc::new(Reporter {
            options,
            sink,
            state: Mutex::new(State { total: 0, done: 0, running: BTreeMap::new(), started: Instant::now(), last_line: None }),
            stop: AtomicBool::new(false),
        });
        if !matches!(reporter.sink, Sink::Quiet) {
            let ticker = reporter.clone();
            let interval = reporter.options.rate_limit.max(Duration::from_millis(50));
            let spawned = std::thread::Builder::new().name("ocib-progress".into()).spawn(move || {
                while !ticker.stop.load(Ordering::Relaxed) {
                    std::thread::sleep(interval);
                    ticker.tick();
                }
            });
            if spawned.is_err() {
                // Without the ticker the status is still updated on every event.
                reporter.stop.store(true, Ordering::Relaxed);
            }
        }
        reporter
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Prints a message above the live status (or as a line).
    pub fn println(&self, message: &str) {
        match &self.sink {
            Sink::Terminal(bar) => bar.println(message),
            _ => eprintln!("{message}"),
        }
    }

    /// Clears the live status; nothing is drawn after this.
    pub fn finish(&self) {
        // Under the state lock, so a tick that is drawing finishes first and none draws after.
        let _state = self.state();
        self.stop.store(true, Ordering::Relaxed);
        if let Sink::Terminal(bar) = &self.sink {
            bar.finish_and_clear();
        }
    }

    /// Periodic work: redraw the running actions' timers, or print the heartbeat line.
    fn tick(&self) {
        let mut state = self.state();
        if self.stop.load(Ordering::Relaxed) {
            return;
        }
        match &self.sink {
            Sink::Terminal(bar) => redraw(bar, &state),
            Sink::Lines => {
                let quiet_for = state.last_line.map_or(state.started.elapsed(), |t| t.elapsed());
                if !state.running.is_empty() && quiet_for >= NO_TERMINAL_HEARTBEAT {
                    self.line(&mut state);
                }
            }
            Sink::Quiet => {}
        }
    }

    /// Something changed: redraw, or print a line if the last one is old enough.
    fn changed(&self, state: &mut State) {
        match &self.sink {
            Sink::Terminal(bar) => redraw(bar, state),
            Sink::Lines => {
                let interval = self.options.rate_limit.max(NO_TERMINAL_MIN_INTERVAL);
                if state.last_line.is_none_or(|t| t.elapsed() >= interval) {
                    self.line(state);
                }
            }
            Sink::Quiet => {}
        }
    }

    /// Off a terminal: `[done / total] <longest running>; Ns ... (K actions running)`, as
    /// Bazel's no-curses progress line.
    fn line(&self, state: &mut State) {
        let Some(text) = status_line(state) else { return };
        eprintln!("{text}");
        state.last_line = Some(Instant::now());
    }
}

/// indicatif's redraw rate for a `--show_progress_rate_limit` (at most 20 a second).
fn refresh_hz(rate_limit: Duration) -> u8 {
    let per_second = 1.0 / rate_limit.as_secs_f64().max(0.05);
    per_second.round().clamp(1.0, 20.0) as u8
}

/// The running actions, longest first, as `(progress, seconds)`.
fn longest_first(state: &State) -> Vec<(&str, u64)> {
    let mut running: Vec<(&str, Duration)> = state.running.values().map(|r| (r.progress.as_str(), r.started.elapsed())).collect();
    running.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    running.into_iter().map(|(p, d)| (p, d.as_secs())).collect()
}

/// The one-line status off a terminal; `None` when nothing runs.
fn status_line(state: &State) -> Option<String> {
    let running = longest_first(state);
    let (first, secs) = running.first()?;
    let more = match running.len() {
        1 => String::new(),
        n => format!(" ... ({n} actions running)"),
    };
    Some(format!("[{} / {}] {first}; {secs}s{more}", state.done, state.total))
}

/// Terminal rows and columns, from the kernel (stderr's window size), if stderr is a terminal.
fn terminal_size() -> Option<(usize, usize)> {
    // SAFETY: TIOCGWINSZ writes a `winsize` into the struct it is given.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let ok = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_row > 0 && size.ws_col > 0).then_some((size.ws_row as usize, size.ws_col as usize))
}

/// `    <progress>; <secs>s`, the progress message shortened (`...`) to fit `columns`.
fn running_line(progress: &str, secs: u64, columns: usize) -> String {
    let timer = format!("; {secs}s");
    let room = columns.saturating_sub(4 + timer.len() + 1);
    if progress.chars().count() <= room {
        return format!("    {progress}{timer}");
    }
    let kept: String = progress.chars().take(room.saturating_sub(3)).collect();
    format!("    {kept}...{timer}")
}

/// The live status: `[done / total] N actions running [bar] R actions/s`, then one line per
/// running action (`    Executing genrule //p:x; 12s`), longest first, as many as the
/// terminal has room for.
fn redraw(bar: &ProgressBar, state: &State) {
    bar.set_length(state.total as u64);
    bar.set_position(state.done as u64);
    let running = longest_first(state);
    let word = if running.len() == 1 { "action" } else { "actions" };
    bar.set_prefix(format!("{} {word} running", running.len()));
    let secs = state.started.elapsed().as_secs_f64();
    let rate = if secs > 0.0 { state.done as f64 / secs } else { 0.0 };
    let (rows, columns) = terminal_size().unwrap_or((24, 80));
    let room = rows.saturating_sub(TERMINAL_RESERVED_LINES).max(1);
    let mut message = format!("{rate:.1} actions/s");
    for (progress, secs) in running.iter().take(room) {
        message.push('\n');
        message.push_str(&running_line(progress, *secs, columns));
    }
    if running.len() > room {
        message.push_str(&format!("\n    ... and {} more", running.len() - room));
    }
    bar.set_message(message);
}

impl ExecObserver for Reporter {
    fn planned(&self, total: usize) {
        let mut state = self.state();
        state.total = total;
        state.started = Instant::now();
    }

    fn action_started(&self, id: usize, action: &Action) {
        let mut state = self.state();
        state.running.insert(id, Running { progress: action.progress.clone(), owner: action.owner.to_string(), started: Instant::now() });
        self.changed(&mut state);
    }

    fn action_finished(&self, id: usize, action: &Action, result: ActionResult<'_>, _elapsed: Duration) {
        let mut state = self.state();
        state.running.remove(&id);
        state.done += 1;
        // What an action printed is shown as it ends, as Bazel's "INFO: From ...:".
        if let ActionResult::Executed { log } = result
            && !log.is_empty()
        {
            self.println(&format!("INFO: From {}:\n{log}", action.progress));
        }
        self.changed(&mut state);
    }

    fn warning(&self, message: &str) {
        self.println(&format!("WARNING: {message}"));
    }

    fn spawned(&self, id: usize, command: &SpawnedCommand) {
        if !self.options.subcommands {
            return;
        }
        let state = self.state();
        let (owner, progress) = state.running.get(&id).map(|r| (r.owner.as_str(), r.progress.as_str())).unwrap_or(("", ""));
        self.println(&format!("SUBCOMMAND: # {owner} [action '{progress}']\n{}", command.to_shell()));
    }
}

/// Bazel's closing lines of a build: `INFO: Elapsed time: 3.240s, Critical Path: 1.10s` and
/// `INFO: N processes: R remote cache hit, H disk cache hit, I internal, L local.` (ocib counts
/// actions: a remote or local cache hit, one that ran inside ocib, one that spawned a process).
pub fn summary_lines(report: &ExecReport, elapsed: Duration) -> Vec<String> {
    let mut lines =
        vec![format!("INFO: Elapsed time: {:.3}s, Critical Path: {:.2}s", elapsed.as_secs_f64(), report.critical_path.as_secs_f64())];
    let local = report.executed_spawning;
    let internal = report.executed - local;
    let mut parts = Vec::new();
    // Bazel's order: cache hits first, then the runners by name.
    for (n, what) in [
        (report.remote_hits, "remote cache hit"),
        (report.cache_hits, "disk cache hit"),
        (internal, "internal"),
        (local, "local"),
        (report.remote_executed, "remote"),
    ] {
        if n > 0 {
            parts.push(format!("{n} {what}"));
        }
    }
    let processes = report.remote_hits + report.cache_hits + report.executed + report.remote_executed;
    let noun = if processes == 1 { "process" } else { "processes" };
    lines.push(if parts.is_empty() {
        format!("INFO: {processes} {noun}.")
    } else {
        format!("INFO: {processes} {noun}: {}.", parts.join(", "))
    });
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state_with(running: &[(&str, u64)]) -> State {
        let now = Instant::now();
        let running = running
            .iter()
            .enumerate()
            .map(|(i, (p, secs))| {
                let started = now.checked_sub(Duration::from_secs(*secs)).unwrap_or(now);
                (i, Running { progress: (*p).to_owned(), owner: "//p:x".into(), started })
            })
            .collect();
        State { total: 40, done: 12, running, started: now, last_line: None }
    }

    #[test]
    fn status_line_names_the_longest_running_action_and_how_many_run() {
        let state = state_with(&[("GoCompilePkg //a:lib", 2), ("Compiling the Go standard library", 31), ("Writing //b:x", 0)]);
        assert_eq!(status_line(&state).unwrap(), "[12 / 40] Compiling the Go standard library; 31s ... (3 actions running)");
        assert_eq!(status_line(&state_with(&[("Writing //b:x", 4)])).unwrap(), "[12 / 40] Writing //b:x; 4s");
        assert_eq!(status_line(&state_with(&[])), None, "nothing running: no line");
    }

    #[test]
    fn summary_counts_hits_internal_and_local_actions() {
        let report = ExecReport {
            total: 9,
            executed: 5,
            cache_hits: 4,
            executed_spawning: 2,
            critical_path: Duration::from_millis(1100),
            ..ExecReport::default()
        };
        assert_eq!(
            summary_lines(&report, Duration::from_millis(3240)),
            ["INFO: Elapsed time: 3.240s, Critical Path: 1.10s", "INFO: 9 processes: 4 disk cache hit, 3 internal, 2 local."]
        );
        let none = ExecReport::default();
        assert_eq!(summary_lines(&none, Duration::ZERO)[1], "INFO: 0 processes.");
    }

    #[test]
    fn running_lines_fit_the_terminal_and_keep_their_timer() {
        assert_eq!(running_line("GoCompilePkg //a:lib", 3, 80), "    GoCompilePkg //a:lib; 3s");
        let long = running_line("GoStdlib: compiling the Go standard library for linux/amd64", 31, 40);
        assert_eq!(long, "    GoStdlib: compiling the Go ...; 31s");
        assert!(long.len() < 40);
    }

    #[test]
    fn refresh_rate_follows_the_rate_limit() {
        assert_eq!(refresh_hz(Duration::from_millis(200)), 5);
        assert_eq!(refresh_hz(Duration::ZERO), 20);
        assert_eq!(refresh_hz(Duration::from_secs(5)), 1);
    }
}
