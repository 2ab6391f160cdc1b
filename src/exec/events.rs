//! What the scheduler reports while it runs: actions starting and ending, and the processes
//! they spawn. The command layer renders these (live progress, `--subcommands`, the Build
//! Event Protocol); execution only reports them and knows nothing of how they are shown, as
//! Bazel's `ActionStartedEvent`/`ActionCompletionEvent` go to its `UiEventHandler`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::action::Action;

/// How an action the scheduler ran ended.
pub enum ActionResult<'a> {
    /// Its outputs came from the action cache.
    CacheHit,
    /// It ran and succeeded; `log` is what it printed (empty if nothing).
    Executed {
        /// Its stdout and stderr.
        log: &'a str,
    },
    /// It ran and failed (or could not start).
    Failed {
        /// Why, with what it printed.
        message: &'a str,
    },
}

/// A process an action spawned: enough to paste into a shell (`--subcommands`,
/// `--verbose_failures`).
#[derive(Debug, Clone)]
pub struct SpawnedCommand {
    /// The program and its arguments.
    pub argv: Vec<String>,
    /// The whole environment it ran with (ocib clears the rest).
    pub env: BTreeMap<String, String>,
    /// Its working directory.
    pub cwd: PathBuf,
}

impl SpawnedCommand {
    /// Bazel's rendering of a spawn: `(cd DIR && \ exec env - \ K=V \ ARGV)`, one part a line.
    pub fn to_shell(&self) -> String {
        let mut text = format!("(cd {} && \\\n  exec env - \\\n", super::process::shell_join(&[self.cwd.display().to_string()]));
        for (k, v) in &self.env {
            text.push_str(&format!("    {} \\\n", super::process::shell_join(&[format!("{k}={v}")])));
        }
        text.push_str(&format!("  {})", super::process::shell_join(&self.argv)));
        text
    }
}

/// Receives the scheduler's reports. Every method has a default that ignores the report, so
/// an observer implements only what it shows. Called from the scheduler's thread (planned,
/// started, finished) and from worker threads (spawned), hence `Send + Sync`.
pub trait ExecObserver: Send + Sync {
    /// The number of actions the wanted outputs need, before any runs.
    fn planned(&self, _total: usize) {}
    /// Action `id` (an index into the executed actions) was handed to a worker.
    fn action_started(&self, _id: usize, _action: &Action) {}
    /// Action `id` ended after `elapsed`.
    fn action_finished(&self, _id: usize, _action: &Action, _result: ActionResult<'_>, _elapsed: Duration) {}
    /// Action `id` (as [`ExecObserver::action_started`] named it) is about to spawn `command`.
    fn spawned(&self, _id: usize, _command: &SpawnedCommand) {}
    /// Something the user should know that does not fail the build (the remote cache failed
    /// and the build goes on without it; a remote blob did not match its digest).
    fn warning(&self, _message: &str) {}
    /// Where and when action `id` ran, reported with [`ExecObserver::action_finished`]: what a
    /// profile (`--profile`) records.
    fn action_timed(&self, _id: usize, _action: &Action, _timing: &ActionTiming) {}
}

/// Where and when an action ran, and the dependency it waited for longest.
#[derive(Debug, Clone, Copy)]
pub struct ActionTiming {
    /// The worker thread that ran it: 1 + rayon's index of the thread (0 is the command's).
    pub thread: usize,
    /// When the worker began it.
    pub started: Instant,
    /// How long it took.
    pub elapsed: Duration,
    /// Whether its outputs came from the cache.
    pub cache_hit: bool,
    /// The dependency (action id) that ends the longest chain of durations before this one,
    /// if it has dependencies: following these links from the action that ends the longest
    /// chain gives the critical path.
    pub after: Option<usize>,
}

/// An observer that shows nothing.
pub struct Silent;

impl ExecObserver for Silent {}

/// The action a worker thread is running, so the process module can attribute the processes
/// it spawns ([`on_spawn`]) without every action passing it along.
struct Current {
    observer: Arc<dyn ExecObserver>,
    id: usize,
    spawns: usize,
    last: Option<SpawnedCommand>,
}

thread_local! {
    static CURRENT: RefCell<Option<Current>> = const { RefCell::new(None) };
}

/// What a worker learned about the processes of the action it ran.
pub struct SpawnSummary {
    /// How many processes the action spawned (0: it ran in ocib only).
    pub count: usize,
    /// The last one, for `--verbose_failures`.
    pub last: Option<SpawnedCommand>,
}

/// Runs `f` (one action's execution) on this thread with action `id` as the current action.
pub(super) fn with_action<T>(observer: &Arc<dyn ExecObserver>, id: usize, f: impl FnOnce() -> T) -> (T, SpawnSummary) {
    // Restored afterwards: a worker waiting inside one action (rayon's join while hashing
    // inputs) may run another action's task on this thread, nested.
    let previous = CURRENT.with(|c| c.replace(Some(Current { observer: observer.clone(), id, spawns: 0, last: None })));
    let result = f();
    let current = CURRENT.with(|c| c.replace(previous));
    let summary = match current {
        Some(c) => SpawnSummary { count: c.spawns, last: c.last },
        None => SpawnSummary { count: 0, last: None },
    };
    (result, summary)
}

/// Called by the process module before it spawns `command`: tells the observer of the action
/// this thread runs, if any.
pub(super) fn on_spawn(command: SpawnedCommand) {
    CURRENT.with(|c| {
        if let Some(current) = c.borrow_mut().as_mut() {
            current.observer.spawned(current.id, &command);
            current.spawns += 1;
            current.last = Some(command);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records which action each spawn was attributed to.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<(usize, String)>>);

    impl ExecObserver for Recorder {
        fn spawned(&self, id: usize, command: &SpawnedCommand) {
            self.0.lock().unwrap().push((id, command.argv.join(" ")));
        }
    }

    fn command(text: &str) -> SpawnedCommand {
        SpawnedCommand { argv: vec![text.to_owned()], env: BTreeMap::new(), cwd: PathBuf::from("/x") }
    }

    /// An action run nested inside another on the same thread (rayon work stealing) gets its
    /// own spawns; the outer one keeps counting its own afterwards.
    #[test]
    fn spawns_are_attributed_to_the_action_that_runs_them_even_nested() {
        let recorder = Arc::new(Recorder::default());
        let observer: Arc<dyn ExecObserver> = recorder.clone();
        let ((), outer) = with_action(&observer, 1, || {
            on_spawn(command("outer-a"));
            let ((), inner) = with_action(&observer, 2, || on_spawn(command("inner")));
            assert_eq!(inner.count, 1);
            on_spawn(command("outer-b"));
        });
        assert_eq!(outer.count, 2);
        assert_eq!(outer.last.unwrap().argv, ["outer-b"]);
        let seen = recorder.0.lock().unwrap().clone();
        assert_eq!(seen, [(1, "outer-a".to_owned()), (2, "inner".to_owned()), (1, "outer-b".to_owned())]);
        on_spawn(command("no action"));
        assert_eq!(recorder.0.lock().unwrap().len(), 3, "outside an action nothing is reported");
    }

    #[test]
    fn spawned_command_renders_as_bazel_does() {
        let c = SpawnedCommand {
            argv: vec!["/bin/bash".into(), "-c".into(), "echo hi > out".into()],
            env: BTreeMap::from([("PATH".to_owned(), "/bin".to_owned())]),
            cwd: PathBuf::from("/root/x"),
        };
        assert_eq!(c.to_shell(), "(cd /root/x && \\\n  exec env - \\\n    PATH=/bin \\\n  /bin/bash -c 'echo hi > out')");
    }
}
