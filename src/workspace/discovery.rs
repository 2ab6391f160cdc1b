//! Finding the workspace root, reading `.bazelignore`, and walking directories for packages.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use walkdir::WalkDir;

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

/// The BUILD file of a directory, if it is a package (BUILD.bazel wins over BUILD).
pub fn build_file_in(dir: &Path) -> Option<PathBuf> {
    BUILD_FILE_NAMES.iter().map(|n| dir.join(n)).find(|p| p.is_file())
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

/// Every package at or below `prefix`, sorted by package path.
pub fn packages_under(ws: &Workspace, prefix: &PackageId) -> Result<Vec<PackageId>> {
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
    let mut out = Vec::new();
    let walker = WalkDir::new(&start).follow_links(false).sort_by_file_name().into_iter();
    let it = walker.filter_entry(|e| {
        if !e.file_type().is_dir() {
            return false;
        }
        let Ok(rel) = e.path().strip_prefix(&base) else { return false };
        let rel = rel.to_string_lossy();
        if e.depth() > 0 {
            let name = e.file_name().to_string_lossy();
            // Version-control metadata and nested repositories are not packages of this one.
            if matches!(name.as_ref(), ".git" | ".hg" | ".svn") || is_repo_boundary(e.path()) {
                return false;
            }
        }
        !ws.is_ignored(repo, &rel)
    });
    for entry in it {
        let entry = entry.with_context(|| format!("walking {}", start.display()))?;
        if build_file_in(entry.path()).is_some() {
            let rel = entry.path().strip_prefix(&base).unwrap_or(Path::new("")).to_string_lossy().replace('\\', "/");
            out.push(PackageId::new(repo.clone(), rel));
        }
    }
    out.sort();
    Ok(out)
}

fn under(pkg: &str, prefix: &str) -> bool {
    prefix.is_empty() || pkg == prefix || (pkg.starts_with(prefix) && pkg.as_bytes().get(prefix.len()) == Some(&b'/'))
}
