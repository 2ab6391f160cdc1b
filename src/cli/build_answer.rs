//! Stored answers of `ocib build`: a build whose inputs did not change since the same build
//! succeeded prints its earlier result after checking those inputs by status, without
//! loading, analyzing or looking up a single action.
//!
//! Bazel gets the same from its server: Skyframe keeps the analysed graph and the action
//! cache in memory and, on a no-op, only checks which files changed. ocib has no server,
//! so it keeps what a successful build depended on next to its load cache
//! (`ocib-out/query-answers`, one file per build key, written through the load cache's
//! answer store, which checks every package and package walk the build loaded):
//! - the **key**: every option of the command (as parsed, so `.bazelrc` settings count), the
//!   patterns, the working package, the environment (which `--action_env`, `PATH` and the
//!   Go toolchain lookup read; a few shell-bookkeeping variables are left out) and the stable
//!   workspace status that stamped actions are keyed on;
//! - the **packages** the build loaded and the package walks its patterns made (their
//!   inputs' content identities: see `load::cache`);
//! - the **files**: every source file an action of the build read, every output in
//!   `ocib-out` (a directory output's members one by one) and the Go toolchain's `go` binary,
//!   each with its status (device, inode, size, mode, mtime, ctime). A changed status
//!   means the build runs as usual, which checks contents.
//!
//! Only a clean build is stored: it succeeded, printed no warning or error, its packages
//! are all kept in the load cache (none printed, none holds a Starlark `rule()`), no action
//! is exempt from caching (`no-cache`), no source file was modified within the racy window,
//! and nothing the replay cannot reproduce was asked (build event files, `--profile`, a
//! remote cache or executor, `--disk_cache_max_size`, a `--workspace_status_command` with
//! `--stamp`, `--nobuild`). `OCIB_BUILD_ANSWERS=0` turns answers off.

use std::io::Write;
use std::path::{Path, PathBuf};

use rayon::prelude::*;

use super::build::{BuildArgs, BuildOptions};
use super::progress::summary_lines;
use crate::exec::schedule::ExecReport;
use crate::exec::{Action, ArtifactKind};
use crate::load::Loader;
use crate::load::cache::codec::{Reader, put_blob, put_u64};
use crate::load::cache::{RACY_NS, Sig, hash_field};
use crate::workspace::Workspace;

/// Environment variables a shell changes between two identical commands, which no action
/// reads: left out of the key so they do not defeat it.
const VOLATILE_ENV: [&str; 9] =
    ["_", "OLDPWD", "PWD", "SHLVL", "COLUMNS", "LINES", "OCIB_BUILD_ANSWERS", "OCIB_QUERY_ANSWERS", "OCIB_DEBUG_LOAD_CACHE"];

/// The payload's first bytes: the format and its version.
const MAGIC: &[u8; 8] = b"OCIBBA\x00\x01";

/// Whether answers are kept (`OCIB_BUILD_ANSWERS=0` turns them off).
fn enabled() -> bool {
    std::env::var_os("OCIB_BUILD_ANSWERS").is_none_or(|v| v != "0")
}

/// Whether the build asked for nothing a replay cannot reproduce (see the module's list).
pub fn eligible(opts: &BuildOptions) -> bool {
    let nonempty = |s: &Option<String>| s.as_deref().is_some_and(|u| !u.is_empty());
    enabled()
        && opts.build
        && opts.build_event_json_file.is_none()
        && opts.build_event_text_file.is_none()
        && opts.profile.is_none()
        && !nonempty(&opts.remote_cache)
        && !nonempty(&opts.remote_executor)
        && opts.disk_cache_max_size == 0
        && (!opts.stamp || opts.workspace_status_command.is_empty())
}

/// The key of a build: everything besides packages and files that decides its result.
pub fn key(args: &BuildArgs, cwd_package: &str, stable_status: &str) -> String {
    let mut env: Vec<(String, String)> = std::env::vars_os()
        .map(|(k, v)| (k.to_string_lossy().into_owned(), v.to_string_lossy().into_owned()))
        .filter(|(k, _)| !VOLATILE_ENV.contains(&k.as_str()))
        .collect();
    env.sort();
    // Hashed, not kept: the environment may hold secrets.
    let mut h = blake3::Hasher::new();
    for (k, v) in &env {
        for s in [k, v] {
            hash_field(&mut h, s.as_bytes());
        }
    }
    format!("build\n{args:?}\n{cwd_package}\n{stable_status}\n{}", h.finalize().to_hex())
}

/// What a stored build printed and what it read.
#[derive(Debug, Default, PartialEq)]
pub struct Answer {
    /// Targets analyzed (`INFO: Analyzed N targets.`).
    pub targets: usize,
    /// Actions the build needed (all of them cache hits on a replay).
    pub actions: usize,
    /// The result lines (`Target //x up-to-date:` and its files).
    pub lines: Vec<String>,
    /// Files with the status they had.
    pub files: Vec<Watched>,
}

/// A file a stored build depended on.
#[derive(Debug, PartialEq)]
pub struct Watched {
    pub path: PathBuf,
    /// Whether its status is taken through a final symlink (sources and tools are read
    /// through it; outputs are placed, and checked, without following it).
    pub follow: bool,
    /// Its status; `None`: it did not exist (a tool not found).
    pub sig: Option<Sig>,
}

impl Watched {
    fn now(path: PathBuf, follow: bool) -> Watched {
        let sig = status(&path, follow);
        Watched { path, follow, sig }
    }
}

/// The status of `path` (not following a final symlink for outputs, as they are placed).
fn status(path: &Path, follow: bool) -> Option<Sig> {
    let meta = if follow { std::fs::metadata(path) } else { std::fs::symlink_metadata(path) };
    meta.ok().map(|m| Sig::of(&m))
}

impl Answer {
    /// The files a build of `needed` (indices into `actions`) depends on, with their status
    /// now: None if one cannot be kept (missing, or modified within the load cache's racy
    /// window of the build's start: it may change again without its status changing).
    pub fn files_of(actions: &[Action], report: &ExecReport, workspace: &Path, started_ns: i64) -> Option<Vec<Watched>> {
        let mut sources = std::collections::BTreeSet::new();
        let mut outputs = std::collections::BTreeSet::new();
        for &i in &report.needed {
            let action = actions.get(i)?;
            if action.skip_cache_lookup || action.requires("no-cache") {
                return None;
            }
            for input in &action.inputs {
                if let ArtifactKind::Source(p) = &input.kind {
                    sources.insert(p.clone());
                }
            }
            for o in &action.outputs {
                let path = workspace.join(&o.exec_path);
                if action.tree_outputs.contains(&o.exec_path) {
                    for entry in walkdir::WalkDir::new(&path).sort_by_file_name() {
                        outputs.insert(entry.ok()?.into_path());
                    }
                } else {
                    outputs.insert(path);
                }
            }
        }
        let sources: Vec<Watched> = sources
            .into_par_iter()
            .map(|path| {
                let sig = Sig::of(&std::fs::metadata(&path).ok()?);
                (sig.changed_ns() < started_ns - RACY_NS).then_some(Watched { path, follow: true, sig: Some(sig) })
            })
            .collect::<Option<_>>()?;
        let outputs: Vec<Watched> =
            outputs.into_par_iter().map(|path| Some(Watched::now(path, false)).filter(|w| w.sig.is_some())).collect::<Option<_>>()?;
        let mut files = sources;
        files.extend(outputs);
        files.extend(crate::rules::tool_files().into_iter().map(|p| Watched::now(p, true)));
        Some(files)
    }

    /// Whether every file still has the status it had (checked in parallel).
    fn files_hold(&self) -> bool {
        let tools = crate::rules::tool_files();
        self.files.par_iter().all(|w| {
            let holds = status(&w.path, w.follow) == w.sig;
            if !holds {
                crate::load::cache::note(|| format!("{} changed (read by the stored build)", w.path.display()));
            }
            holds
        }) && tools.iter().all(|t| self.files.iter().any(|w| w.path == *t))
    }

    /// The payload stored in the answer file.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + 96 * self.files.len());
        out.extend_from_slice(MAGIC);
        put_u64(&mut out, self.targets as u64);
        put_u64(&mut out, self.actions as u64);
        put_u64(&mut out, self.lines.len() as u64);
        for l in &self.lines {
            put_blob(&mut out, l.as_bytes());
        }
        put_u64(&mut out, self.files.len() as u64);
        for w in &self.files {
            put_blob(&mut out, w.path.as_os_str().as_encoded_bytes());
            out.push(u8::from(w.follow));
            match &w.sig {
                Some(s) => {
                    out.push(1);
                    for v in s.fields() {
                        put_u64(&mut out, v);
                    }
                }
                None => out.push(0),
            }
        }
        out
    }

    /// Reads a payload; None if it is not one this version wrote.
    pub fn decode(data: &[u8]) -> Option<Answer> {
        use std::os::unix::ffi::OsStrExt;
        let mut r = Reader::new(data.strip_prefix(MAGIC.as_slice())?);
        let targets = r.u().ok()? as usize;
        let actions = r.u().ok()? as usize;
        let mut lines = Vec::new();
        for _ in 0..r.count().ok()? {
            lines.push(r.str().ok()?.to_owned());
        }
        let mut files = Vec::new();
        for _ in 0..r.count().ok()? {
            let path = PathBuf::from(std::ffi::OsStr::from_bytes(r.blob().ok()?));
            let follow = match r.bytes(1).ok()? {
                [0] => false,
                [1] => true,
                _ => return None,
            };
            let sig = match r.bytes(1).ok()? {
                [0] => None,
                [1] => {
                    let mut fields = [0u64; 6];
                    for f in &mut fields {
                        *f = r.u().ok()?;
                    }
                    Some(Sig::from_fields(fields))
                }
                _ => return None,
            };
            files.push(Watched { path, follow, sig });
        }
        r.is_empty().then_some(Answer { targets, actions, lines, files })
    }

    /// Prints what the build printed, as a build of nothing but cache hits does.
    fn print(&self) {
        let noun = |n: usize| if n == 1 { "target" } else { "targets" };
        let report = ExecReport { total: self.actions, cache_hits: self.actions, ..ExecReport::default() };
        let mut err = std::io::stderr().lock();
        let _ = writeln!(err, "INFO: Analyzed {} {}.", self.targets, noun(self.targets));
        let _ = writeln!(err, "INFO: Found {} {}...", self.targets, noun(self.targets));
        for line in self.lines.iter().cloned().chain(summary_lines(&report, super::command_elapsed())) {
            let _ = writeln!(err, "{line}");
        }
        let s = if self.actions == 1 { "" } else { "s" };
        let _ = writeln!(err, "INFO: Build completed successfully, {} total action{s}", self.actions);
        let _ = err.flush();
    }
}

/// Answers the build from its stored result if nothing it depended on changed: returns
/// whether it did. `loader` has the load cache (it checks the packages). Anything else (no
/// answer, a change, a damaged file) returns false and the build runs as usual.
pub fn replay(args: &BuildArgs, cwd: &Path, ws: &Workspace, loader: &Loader) -> super::CliResult<bool> {
    let Some(status) = stable_status(&ws.root, &args.opts) else { return Ok(false) };
    let key = key(args, &format!("{:?}", ws.package_of_dir(cwd)), &status.0);
    let Some(answer) = loader.cached_answer(&key).and_then(|bytes| Answer::decode(&bytes)) else { return Ok(false) };
    // Held while the files are checked, as a build holds it: another command may be
    // writing the outputs.
    let base = crate::exec::OutputBase::open(&ws.root)?;
    if !answer.files_hold() {
        return Ok(false);
    }
    base.write_status(&status.1)?;
    crate::load::cache::note(|| format!("build answered after checking {} files", answer.files.len()));
    answer.print();
    Ok(true)
}

/// The workspace status a build computes (without a status command), and its stable part
/// as text.
pub fn stable_status(root: &Path, opts: &BuildOptions) -> Option<(String, crate::stamp::WorkspaceStatus)> {
    let status = crate::stamp::compute(root, None, &opts.embed_label).ok()?;
    Some((crate::stamp::format(&status.stable), status))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_round_trips_and_a_damaged_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("a.txt");
        std::fs::write(&f, "a").unwrap();
        let answer = Answer {
            targets: 2,
            actions: 7,
            lines: vec!["Target //p:x up-to-date:".into(), "  ocib-bin/p/x".into()],
            files: vec![Watched::now(f.clone(), true), Watched::now(dir.path().join("missing"), false)],
        };
        let bytes = answer.encode();
        assert_eq!(Answer::decode(&bytes), Some(answer));
        assert_eq!(Answer::decode(&bytes[..bytes.len() - 1]), None, "truncated");
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Answer::decode(&longer), None, "trailing bytes");
    }

    #[test]
    fn the_key_covers_the_environment_but_not_shell_bookkeeping() {
        // Different stable status, different key; the same inputs, the same key.
        let args = <BuildArgs as clap::FromArgMatches>::from_arg_matches(
            &<BuildArgs as clap::Args>::augment_args(clap::Command::new("b")).get_matches_from(["b", "//..."]),
        )
        .unwrap();
        assert_eq!(key(&args, "p", "S"), key(&args, "p", "S"));
        assert_ne!(key(&args, "p", "S"), key(&args, "p", "T"));
        assert_ne!(key(&args, "p", "S"), key(&args, "q", "S"));
    }
}
