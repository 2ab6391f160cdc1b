//! `ocib clean`: removes the outputs; `--expunge` also empties the cache; `--verify` only
//! checks the cache, dropping entries whose content does not match their digest; `--gc` only
//! evicts least recently used cache entries down to `--disk_cache_max_size`.

use std::path::{Path, PathBuf};

use anyhow::anyhow;

use super::build::human_size;
use super::{CliError, CliResult, CommonArgs};
use crate::exec::OutputBase;
use crate::exec::cache::{Cache, Gc, make_writable};
use crate::workspace::find_root;

#[derive(clap::Args, Debug)]
pub struct CleanArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Also remove the content-addressed store and action cache.
    #[arg(long = "expunge", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, value_parser = super::parse_bool, default_value = "false")]
    pub expunge: bool,
    /// Instead of removing outputs: hash every file of the content-addressed store and
    /// remove those whose content does not match their name (a corrupted cache), keeping
    /// the rest. Builds also check an entry whose stat changed, this checks all of them.
    #[arg(long = "verify", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, value_parser = super::parse_bool, default_value = "false", conflicts_with = "expunge")]
    pub verify: bool,
    /// Instead of removing outputs: evict least recently used cache entries until the cache
    /// fits `--disk_cache_max_size` (waiting for other ocib commands using the cache).
    #[arg(long = "gc", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, value_parser = super::parse_bool, default_value = "false", conflicts_with_all = ["expunge", "verify"])]
    pub gc: bool,
    /// The cache directory (default ~/.cache/ocib).
    #[arg(long = "disk_cache")]
    pub disk_cache: Option<PathBuf>,
    /// The size `--gc` evicts down to (`2G`, `500M`; see `ocib help build`).
    #[arg(long = "disk_cache_max_size", visible_alias = "experimental_disk_cache_gc_max_size", value_parser = super::build::parse_size, default_value = "0")]
    pub disk_cache_max_size: u64,
}

pub fn run(args: CleanArgs, cwd: &Path) -> CliResult {
    if args.verify {
        return verify(args.disk_cache.unwrap_or_else(crate::exec::default_cache_dir));
    }
    if args.gc {
        return gc(args.disk_cache.unwrap_or_else(crate::exec::default_cache_dir), args.disk_cache_max_size);
    }
    let Some(root) = find_root(cwd) else {
        return Err(CliError::bad_command_line(anyhow!("'ocib clean' must be run inside a workspace")));
    };
    // Hold the output base's lock so a running build is not cut under.
    let base = OutputBase::open(&root)?;
    for sub in ["bin", "tmp", "testlogs"] {
        let dir = base.root.join(sub);
        if dir.exists() {
            make_writable(&dir);
            std::fs::remove_dir_all(&dir).map_err(|e| anyhow!("removing {}: {e}", dir.display()))?;
        }
    }
    for entry in std::fs::read_dir(&base.root).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.file_name().is_some_and(|n| n != ".lock") {
            if path.is_dir() {
                make_writable(&path);
                let _ = std::fs::remove_dir_all(&path);
            } else {
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    for link in ["ocib-bin", "ocib-testlogs"] {
        let _ = std::fs::remove_file(root.join(link));
    }
    if args.expunge {
        let dir = args.disk_cache.unwrap_or_else(crate::exec::default_cache_dir);
        match Cache::open(&dir).and_then(|c| c.expunge()) {
            Ok(()) => eprintln!("INFO: removed the cache at {}", dir.display()),
            Err(e) => return Err(anyhow!("removing the cache at {}: {e}", dir.display()).into()),
        }
    }
    eprintln!("INFO: Starting clean.");
    Ok(())
}

/// `clean --verify`: the cache is shared by workspaces, so no workspace lock is needed; a
/// build running meanwhile at worst rebuilds an entry this removes, which was bad anyway.
fn verify(dir: PathBuf) -> CliResult {
    let report = Cache::open(&dir).and_then(|c| c.verify_all()).map_err(|e| anyhow!("verifying the cache at {}: {e}", dir.display()))?;
    eprintln!(
        "INFO: verified the cache at {}: {} entries checked, {} corrupted entries dropped, {} stale temporary files removed",
        dir.display(),
        report.checked,
        report.dropped,
        report.stale_temps
    );
    Ok(())
}

/// `clean --gc`: evicts down to the limit now, waiting for the ocib commands using the cache.
fn gc(dir: PathBuf, max_size: u64) -> CliResult {
    if max_size == 0 {
        return Err(CliError::bad_command_line(anyhow!(
            "'ocib clean --gc' needs a size limit: pass --disk_cache_max_size=SIZE (or set it in .bazelrc, e.g. 'build --disk_cache_max_size=2G')"
        )));
    }
    let cache = Cache::open(&dir).map_err(|e| anyhow!("opening the cache at {}: {e}", dir.display()))?;
    eprintln!("INFO: evicting least recently used entries of {} down to {}...", dir.display(), human_size(max_size));
    match cache.collect_garbage(max_size, true) {
        Ok(Gc::Done(report)) => {
            eprintln!(
                "INFO: evicted {} action records and {} files: {} → {}",
                report.records_evicted,
                report.files_evicted,
                human_size(report.size_before),
                human_size(report.size_after)
            );
            Ok(())
        }
        Ok(Gc::Busy) => Err(anyhow!("the cache at {} is in use", dir.display()).into()),
        Err(e) => Err(anyhow!("trimming the cache at {}: {e}", dir.display()).into()),
    }
}
