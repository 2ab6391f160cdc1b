//! Execution: runs the actions analysis produced, in parallel, each at most once per input
//! state. An action's key hashes everything that can change its outputs; a key found in the
//! action cache reuses the stored outputs (hardlinked from the CAS into `ocib-out/bin`).

mod ac_index;
pub mod action;
pub mod cache;
pub mod digest;
pub mod events;
mod exec_roots;
pub mod fs;
pub mod process;
pub mod remote;
pub mod schedule;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub use action::{Action, ActionContext, ActionKind, Artifact, ArtifactKind, BIN_DIR, InProcess};
pub use events::{ActionResult, ActionTiming, ExecObserver, SpawnedCommand};
pub use schedule::{ExecOptions, ExecReport, Failure};

use crate::stamp::{self, WorkspaceStatus};
use cache::Cache;
use digest::StatCache;

/// Bumped whenever an action's meaning changes without its inputs changing, so old cache
/// entries are not reused.
pub const ACTION_SALT: &str = "ocib-actions-v1";

/// The output base (`<workspace>/ocib-out`) of one command, held locked while it runs.
pub struct OutputBase {
    pub root: PathBuf,
    pub workspace: PathBuf,
    _lock: File,
}

impl OutputBase {
    /// Opens (creating) `<workspace>/ocib-out` and takes its lock, waiting for another ocib
    /// that holds it.
    pub fn open(workspace: &Path) -> Result<OutputBase> {
        let root = workspace.join("ocib-out");
        std::fs::create_dir_all(root.join("bin")).with_context(|| format!("creating {}", root.display()))?;
        let lock_path = root.join(".lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .with_context(|| format!("opening {}", lock_path.display()))?;
        if lock.try_lock().is_err() {
            eprintln!("INFO: another ocib command holds {}; waiting for it to finish...", lock_path.display());
            lock.lock().with_context(|| format!("locking {}", lock_path.display()))?;
        }
        remove_stale_exec_roots(&root.join("tmp"));
        // A build that was SIGKILLed between writing an output's temporary sibling and renaming
        // it (`fs::temp_sibling`) left that temp file in the output tree. The marker says a
        // command did not end normally (it is removed when the output base is dropped), so the
        // tree is swept only then, not on every no-op build.
        let marker = root.join(IN_USE_MARKER);
        if marker.exists() {
            remove_stale_temps(&root.join("bin"));
            remove_stale_temps(&root.join("testlogs"));
        }
        if let Err(e) = File::create(&marker) {
            eprintln!("WARNING: could not create {}: {e}", marker.display());
        }
        // Convenience links at the workspace root, as bazel-bin is.
        for (link, target) in [("ocib-bin", "ocib-out/bin"), ("ocib-testlogs", "ocib-out/testlogs")] {
            let path = workspace.join(link);
            if std::fs::read_link(&path).ok().as_deref() != Some(Path::new(target)) {
                let tmp = fs::temp_sibling(&path);
                if std::os::unix::fs::symlink(target, &tmp).is_ok() && std::fs::rename(&tmp, &path).is_err() {
                    let _ = std::fs::remove_file(&tmp);
                }
            }
        }
        Ok(OutputBase { root, workspace: workspace.to_path_buf(), _lock: lock })
    }

    pub fn stat_cache_path(&self) -> PathBuf {
        self.root.join("stat_cache.json")
    }

    /// Where the stats of CAS files known good are kept between commands.
    pub fn cas_stamps_path(&self) -> PathBuf {
        self.root.join("cas_stamps.json")
    }

    /// Writes the status files: stable only when it changed (so its mtime and digest stay),
    /// volatile every time.
    pub fn write_status(&self, status: &WorkspaceStatus) -> Result<()> {
        let stable = stamp::format(&status.stable);
        let stable_path = self.root.join("stable-status.txt");
        if std::fs::read_to_string(&stable_path).ok().as_deref() != Some(stable.as_str()) {
            fs::write_atomic(&stable_path, stable.as_bytes(), false)?;
        }
        fs::write_atomic(&self.root.join("volatile-status.txt"), stamp::format(&status.volatile).as_bytes(), false)?;
        Ok(())
    }
}

/// The file in `ocib-out` that exists while a command holds the output base.
const IN_USE_MARKER: &str = ".in_use";

impl Drop for OutputBase {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.root.join(IN_USE_MARKER));
    }
}

/// Removes the temporary siblings (`.<name>.tmp.<pid>.<n>`) that killed ocib processes left
/// in an output tree. With the output base's lock held, only this process writes there, so
/// every one not named with our pid is garbage.
fn remove_stale_temps(tree: &Path) {
    let own = std::process::id();
    let mut walk = walkdir::WalkDir::new(tree).min_depth(1).into_iter();
    while let Some(entry) = walk.next() {
        let Ok(entry) = entry else { continue };
        let stale = fs::temp_owner(&entry.file_name().to_string_lossy()).is_some_and(|pid| pid != own);
        if !stale {
            continue;
        }
        let path = entry.path();
        // A layout directory is written under a temporary name too (`oci::layout`).
        let removed = if entry.file_type().is_dir() {
            walk.skip_current_dir();
            cache::make_writable(path);
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
        if let Err(e) = removed {
            eprintln!("WARNING: could not remove the stale temporary file {}: {e}", path.display());
        }
    }
}

/// Removes exec roots (`ocib-out/tmp/r<n>.<pid>`, and scratch outputs `<key>.<pid>.<n>.<i>`)
/// other ocib processes left behind.
/// Only the holder of the output base's lock creates exec roots there, and it removes its
/// own when each action ends, so with the lock held every one not named with our pid
/// belongs to a build that was killed (SIGKILL skips all cleanup) and is garbage, whether
/// or not its pid has since been reused.
fn remove_stale_exec_roots(tmp: &Path) {
    let own = std::process::id();
    for entry in std::fs::read_dir(tmp).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let pid = name.to_string_lossy().split('.').nth(1).and_then(|p| p.parse::<u32>().ok());
        if pid == Some(own) {
            continue;
        }
        let path = entry.path();
        let removed = if entry.file_type().is_ok_and(|t| t.is_dir()) {
            cache::make_writable(&path);
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        if let Err(e) = removed {
            eprintln!("WARNING: could not remove the stale scratch directory {}: {e}", path.display());
        }
    }
}

/// The default cache directory: `$XDG_CACHE_HOME/ocib` or `~/.cache/ocib`.
pub fn default_cache_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| !x.is_empty()) {
        return PathBuf::from(x).join("ocib");
    }
    let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/tmp"));
    home.join(".cache").join("ocib")
}

/// A workspace-status map (stable or volatile keys) as stamping actions receive it.
type StatusMap = BTreeMap<String, String>;

/// Everything an execution needs besides the actions.
pub struct Executor<'a> {
    pub base: &'a OutputBase,
    pub cache: Cache,
    pub stat_cache: StatCache,
    pub status: Option<WorkspaceStatus>,
    pub opts: ExecOptions,
    /// Who hears what the scheduler does (progress, subcommands); [`events::Silent`] by default.
    pub observer: std::sync::Arc<dyn ExecObserver>,
    /// The remote cache (`--remote_cache`), asked after a local miss.
    pub remote: Option<remote::RemoteCache>,
}

impl<'a> Executor<'a> {
    pub fn new(base: &'a OutputBase, cache_dir: &Path, status: Option<WorkspaceStatus>, opts: ExecOptions) -> Result<Executor<'a>> {
        let cache = Cache::open(cache_dir).with_context(|| format!("opening the cache at {}", cache_dir.display()))?;
        let stat_cache = StatCache::load(&base.stat_cache_path());
        cache.load_stamps(&base.cas_stamps_path());
        Ok(Executor { base, cache, stat_cache, status, opts, observer: std::sync::Arc::new(events::Silent), remote: None })
    }

    /// Reports what the scheduler does to `observer`.
    pub fn with_observer(mut self, observer: std::sync::Arc<dyn ExecObserver>) -> Executor<'a> {
        self.observer = observer;
        self
    }

    /// Shares results through `remote` too.
    pub fn with_remote(mut self, remote: Option<remote::RemoteCache>) -> Executor<'a> {
        self.remote = remote;
        self
    }

    /// Runs what is needed to produce `wanted`, and saves the stat cache.
    pub fn execute(&self, actions: &[Action], wanted: &[Artifact]) -> ExecReport {
        let report = schedule::run(self, actions, wanted);
        if let Err(e) = self.cache.flush() {
            eprintln!("WARNING: could not update the action cache index: {e}");
        }
        if let Err(e) = self.stat_cache.save(&self.base.stat_cache_path()) {
            eprintln!("WARNING: could not save the stat cache: {e}");
        }
        if let Err(e) = self.cache.save_stamps(&self.base.cas_stamps_path()) {
            eprintln!("WARNING: could not save the cache's file stats: {e}");
        }
        report
    }

    /// Where an artifact can be read once it exists.
    pub fn real_path(&self, a: &Artifact) -> PathBuf {
        match &a.kind {
            ArtifactKind::Source(p) => p.clone(),
            ArtifactKind::Derived => self.base.workspace.join(&a.exec_path),
        }
    }

    fn status_maps(&self) -> (Option<StatusMap>, Option<StatusMap>) {
        match &self.status {
            Some(s) => (Some(s.stable.clone()), Some(s.volatile.clone())),
            None => (Some(BTreeMap::new()), Some(BTreeMap::new())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A command that did not end normally leaves the marker; the next one sweeps the temp
    /// files of other processes from the output tree, and a normal end removes the marker.
    #[test]
    fn temporary_files_of_a_killed_command_are_swept_by_the_next() {
        let ws = tempfile::tempdir().unwrap();
        let pkg = ws.path().join("ocib-out/bin/pkg");
        std::fs::create_dir_all(pkg.join(".image.tmp.4000000.1/blobs")).unwrap();
        std::fs::write(pkg.join(".gen.txt.tmp.4000000.0"), "half").unwrap();
        std::fs::write(pkg.join("gen.txt"), "whole").unwrap();
        // No marker: the previous command ended normally; nothing is walked or removed.
        drop(OutputBase::open(ws.path()).unwrap());
        assert!(pkg.join(".gen.txt.tmp.4000000.0").exists());
        assert!(!ws.path().join("ocib-out").join(IN_USE_MARKER).exists(), "a normal end removes the marker");
        // Marker left (as by SIGKILL): swept.
        std::fs::write(ws.path().join("ocib-out").join(IN_USE_MARKER), "").unwrap();
        let base = OutputBase::open(ws.path()).unwrap();
        assert!(!pkg.join(".gen.txt.tmp.4000000.0").exists());
        assert!(!pkg.join(".image.tmp.4000000.1").exists());
        assert_eq!(std::fs::read_to_string(pkg.join("gen.txt")).unwrap(), "whole");
        assert!(ws.path().join("ocib-out").join(IN_USE_MARKER).exists(), "held while the command runs");
        drop(base);
    }
}
