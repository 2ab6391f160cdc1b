//! Finding the workspace root, reading `.bazelignore`, and walking directories for packages.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{RepoSource, Workspace};
use crate::graph::label::PackageId;

pub const BUILD_FILE_NAMES: [&str; 2] = ["BUILD.bazel", "BUILD"];
const BOUNDARY_FILES: [&str; 4] = ["MODULE.bazel", "REPO.bazel", "WORKSPACE", "WORKSPACE.bazel"];

/// The nearest ancestor of `dir` (inclusive) that holds a repository boundary file.
pub fn find_root(dir: &Path) -> Option<PathBuf> {
    let dir = dir.canonicalize().ok()?;
    dir.ancestors().find(|d| is_repo_boundary(d)).map(Path::to_path_buf)
}

/// Whether `dir` is the root of a repository (and so not part of an enclosing one's `//...`).
pub fn is_repo_boundary(dir: &Path) -> bool {
    BOUNDARY_FILES.iter().any(|f| dir.join(f).is_file())
}

/// `.bazelignore`: one directory per line, relative to the root; `#` starts a comment.
pub fn read_bazelignore(root: &Path) -> Result<Vec<String>> {
    let path = root.join(".bazelignore");
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.trim_start_matches("./").trim_end_matches('/').to_owned())
        .collect())
}

/// The directories a walk for packages read, each with its status taken before it was read
/// (for a cache of the result: the same statuses, the same packages), and whether the result
/// depends on anything else (a BUILD or boundary file that is a symbolic link: its target can
/// change without its directory changing).
#[derive(Default)]
pub struct Walked {
    pub dirs: Vec<(PathBuf, std::fs::Metadata)>,
    pub other_inputs: bool,
}

/// Every package at or below `prefix`, sorted by package path.
pub fn packages_under(ws: &Workspace, prefix: &PackageId) -> Result<Vec<PackageId>> {
    packages_under_observed(ws, prefix, None)
}

/// [`packages_under`], recording the directories read into `walked` when given (only a walk
/// of directories on disk records anything).
pub fn packages_under_observed(ws: &Workspace, prefix: &PackageId, walked: Option<&std::sync::Mutex<Walked>>) -> Result<Vec<PackageId>> {
    let repo = &prefix.repo;
    if !repo.is_empty() {
        match ws.repos.get(repo).map(|r| &r.source) {
            Some(RepoSource::Local(_)) => {}
            Some(RepoSource::GoModule(_)) => {
                ws.go_modules.materialize(repo)?;
            }
            Some(source) => {
                let mut out: Vec<PackageId> = source
                    .virtual_packages()
                    .into_iter()
                    .filter(|p| under(p, &prefix.package))
                    .map(|p| PackageId::new(repo.clone(), p))
                    .collect();
                out.sort();
                return Ok(out);
            }
            None => anyhow::bail!("no such repository '@{repo}'"),
        }
    }
    let Some(start) = ws.package_dir(prefix) else { return Ok(Vec::new()) };
    if !start.is_dir() {
        anyhow::bail!("no such package '{}': directory '{}' does not exist", prefix, start.display());
    }
    let base = ws.package_dir(&PackageId::new(repo.clone(), "")).unwrap_or_else(|| ws.root.clone());
    let listing = list_dir(&start, walked)?;
    let mut dirs = Vec::new();
    walk(ws, repo, &base, &start, listing, &mut dirs, walked)?;
    let mut out: Vec<PackageId> = dirs.into_iter().map(|rel| PackageId::new(repo.clone(), rel)).collect();
    out.sort();
    Ok(out)
}

/// One directory's entries: (name, is a directory (not a symlink to one), is a file or a
/// symlink), from one `read_dir` (the kernel's `d_type`, no stat per entry).
type Listing = Vec<(String, bool, bool)>;

fn list_dir(dir: &Path, walked: Option<&std::sync::Mutex<Walked>>) -> Result<Listing> {
    if let Some(walked) = walked {
        let meta = std::fs::metadata(dir).with_context(|| format!("walking {}", dir.display()))?;
        walked.lock().unwrap_or_else(|e| e.into_inner()).dirs.push((dir.to_path_buf(), meta));
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("walking {}", dir.display()))? {
        let entry = entry.with_context(|| format!("walking {}", dir.display()))?;
        let kind = entry.file_type().with_context(|| format!("walking {}", dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if let Some(walked) = walked
            && kind.is_symlink()
            && (BUILD_FILE_NAMES.contains(&name.as_str()) || BOUNDARY_FILES.contains(&name.as_str()))
        {
            walked.lock().unwrap_or_else(|e| e.into_inner()).other_inputs = true;
        }
        out.push((name, kind.is_dir(), kind.is_file() || kind.is_symlink()));
    }
    Ok(out)
}

/// Whether a listing names a regular file `name` (a symlink counts if it leads to one, as
/// `Path::is_file` says).
fn has_file(dir: &Path, listing: &Listing, name: &str) -> bool {
    listing.iter().any(|(n, _, file)| *file && n == name) && dir.join(name).is_file()
}

/// Adds `dir` (already listed) if it is a package, then its subdirectories, in parallel: each
/// directory is read once, and its listing says whether it holds a BUILD file or is another
/// repository's root, without a stat per candidate name (walking 5,000 packages was 14 % of
/// a query).
fn walk(
    ws: &Workspace,
    repo: &str,
    base: &Path,
    dir: &Path,
    listing: Listing,
    out: &mut Vec<String>,
    walked: Option<&std::sync::Mutex<Walked>>,
) -> Result<()> {
    use rayon::prelude::*;
    let rel = dir.strip_prefix(base).unwrap_or(Path::new("")).to_string_lossy().replace('\\', "/");
    if ws.is_ignored(repo, &rel) {
        return Ok(());
    }
    if BUILD_FILE_NAMES.iter().any(|n| has_file(dir, &listing, n)) {
        out.push(rel.clone());
    }
    let subdirs: Vec<PathBuf> = listing
        .iter()
        // Version-control metadata is not a package of this repository.
        .filter(|(name, is_dir, _)| *is_dir && !matches!(name.as_str(), ".git" | ".hg" | ".svn"))
        // Ignored directories (`.bazelignore`, `ocib-out`) are not even listed: each command
        // writes below `ocib-out`, which would otherwise count as a change of the walk.
        .filter(|(name, _, _)| !ws.is_ignored(repo, &if rel.is_empty() { name.clone() } else { format!("{rel}/{name}") }))
        .map(|(name, _, _)| dir.join(name))
        .collect();
    let found: Vec<Result<Vec<String>>> = subdirs
        .into_par_iter()
        .map(|sub| {
            let listing = list_dir(&sub, walked)?;
            // A nested repository is not part of this one's `//...`.
            if BOUNDARY_FILES.iter().any(|n| has_file(&sub, &listing, n)) {
                return Ok(Vec::new());
            }
            let mut found = Vec::new();
            walk(ws, repo, base, &sub, listing, &mut found, walked)?;
            Ok(found)
        })
        .collect();
    for f in found {
        out.extend(f?);
    }
    Ok(())
}

fn under(pkg: &str, prefix: &str) -> bool {
    prefix.is_empty() || pkg == prefix || (pkg.starts_with(prefix) && pkg.as_bytes().get(prefix.len()) == Some(&b'/'))
}
