//! `ocib clean`: removes the outputs; `--expunge` also empties the cache; `--verify` only
//! checks the cache, dropping entries whose content does not match their digest.

use std::path::{Path, PathBuf};

use anyhow::anyhow;

use super::{CliError, CliResult, CommonArgs};
use crate::exec::OutputBase;
use crate::exec::cache::{Cache, make_writable};
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
    #[arg(long = "disk_cache")]
    pub disk_cache: Option<PathBuf>,
}

pub fn run(args: CleanArgs, cwd: &Path) -> CliResult {
    if args.verify {
        return verify(args.disk_cache.unwrap_or_else(crate::exec::default_cache_dir));
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
