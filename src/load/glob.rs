//! `glob()`: files of a package matching patterns, not descending into subpackages.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Result, bail};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use walkdir::WalkDir;

use super::cache::Sig;
use crate::workspace::{BUILD_FILE_NAMES, Workspace, is_repo_boundary};

/// Every file and directory of one package, relative to its directory, sorted. Listed once
/// per package however many `glob` calls it has.
pub struct Listing {
    entries: Vec<(String, bool)>,
    /// Every directory looked into (walked, or checked for a BUILD file) and its status
    /// before it was read: the load cache lists the package again only when one changed.
    dirs: Vec<(std::path::PathBuf, Sig)>,
}

impl Listing {
    pub fn read(ws: &Workspace, repo: &str, package: &str, dir: &Path) -> Result<Listing> {
        let mut entries = Vec::new();
        let mut dirs = Vec::new();
        let mut it = WalkDir::new(dir).follow_links(true).sort_by_file_name().into_iter();
        while let Some(entry) = it.next() {
            let entry = match entry {
                Ok(e) => e,
                // A dangling symlink or an unreadable directory is not part of any glob.
                Err(_) => continue,
            };
            // Walkdir yields a directory before reading it, so this status predates the read.
            if entry.file_type().is_dir()
                && let Ok(meta) = entry.metadata()
            {
                dirs.push((entry.path().to_path_buf(), Sig::of(&meta)));
            }
            if entry.depth() == 0 {
                continue;
            }
            let Ok(rel) = entry.path().strip_prefix(dir) else { continue };
            let rel = rel.to_string_lossy().replace('\\', "/");
            let is_dir = entry.file_type().is_dir();
            if is_dir {
                let ws_rel = if package.is_empty() { rel.clone() } else { format!("{package}/{rel}") };
                // Subpackages, nested repositories and ignored directories end the glob.
                let is_subpackage = BUILD_FILE_NAMES.iter().any(|n| entry.path().join(n).is_file());
                if is_subpackage || is_repo_boundary(entry.path()) || ws.is_ignored(repo, &ws_rel) {
                    it.skip_current_dir();
                    continue;
                }
            }
            entries.push((rel, is_dir));
        }
        entries.sort();
        Ok(Listing { entries, dirs })
    }

    pub fn empty() -> Listing {
        Listing { entries: Vec::new(), dirs: Vec::new() }
    }

    /// The directories walked, with their status before they were read.
    pub fn dirs(&self) -> &[(std::path::PathBuf, Sig)] {
        &self.dirs
    }

    /// A digest of the names and kinds listed: what every glob of the package depends on.
    pub fn digest(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        for (path, is_dir) in &self.entries {
            h.update(&(path.len() as u64).to_le_bytes());
            h.update(path.as_bytes());
            h.update(&[*is_dir as u8]);
        }
        *h.finalize().as_bytes()
    }

    /// Paths matching any of `include` and none of `exclude`, sorted.
    pub fn glob(&self, include: &[&str], exclude: &[&str], exclude_directories: bool) -> Result<Vec<String>> {
        let inc = compiled(include)?;
        let exc = compiled(exclude)?;
        Ok(self
            .entries
            .iter()
            .filter(|(_, is_dir)| !(exclude_directories && *is_dir))
            .filter(|(path, _)| inc.is_match(path) && !exc.is_match(path))
            .map(|(path, _)| path.clone())
            .collect())
    }
}

/// Compiled pattern lists, shared by every package of the process. Monorepos repeat a few
/// lists in every package (`glob(["*.go"])` through one macro), and compiling one builds a
/// regex DFA: 9 % of the CPU of evaluating 5,000 packages before this (bench/query.sh).
fn compiled(patterns: &[&str]) -> Result<Arc<GlobSet>> {
    /// Enough for every distinct list of a large monorepo; past it the map starts over.
    const MAX_LISTS: usize = 4096;
    static SETS: OnceLock<Mutex<HashMap<Vec<String>, Arc<GlobSet>>>> = OnceLock::new();
    let sets = SETS.get_or_init(Default::default);
    let key: Vec<String> = patterns.iter().map(|p| (*p).to_owned()).collect();
    if let Some(set) = sets.lock().unwrap_or_else(|e| e.into_inner()).get(&key) {
        return Ok(Arc::clone(set));
    }
    // Compiled outside the lock: another thread may compile the same list meanwhile, and
    // both results are the same.
    let set = Arc::new(compile(patterns)?);
    let mut sets = sets.lock().unwrap_or_else(|e| e.into_inner());
    if sets.len() >= MAX_LISTS {
        sets.clear();
    }
    sets.insert(key, Arc::clone(&set));
    Ok(set)
}

fn compile(patterns: &[&str]) -> Result<GlobSet> {
    let mut set = GlobSetBuilder::new();
    for p in patterns {
        validate(p)?;
        let glob = GlobBuilder::new(p).literal_separator(true).backslash_escape(false).build()?;
        set.add(glob);
    }
    Ok(set.build()?)
}

/// Bazel's pattern rules: relative, no `..` or `.` segments, `**` only as a whole segment.
fn validate(p: &str) -> Result<()> {
    if p.is_empty() {
        bail!("glob pattern '' is empty");
    }
    if p.starts_with('/') {
        bail!("glob pattern '{p}' is absolute; patterns are relative to the package");
    }
    if p.split('/').any(|seg| seg == ".." || seg == ".") {
        bail!("glob pattern '{p}' contains '.' or '..' segments");
    }
    if p.split('/').any(|seg| seg.contains("**") && seg != "**") {
        bail!("recursive wildcard '**' must be a whole path segment in glob pattern '{p}'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(entries: &[(&str, bool)]) -> Listing {
        let mut entries: Vec<(String, bool)> = entries.iter().map(|(p, d)| ((*p).to_owned(), *d)).collect();
        entries.sort();
        Listing { entries, dirs: Vec::new() }
    }

    #[test]
    fn star_does_not_cross_directories() {
        let l = listing(&[("a.go", false), ("b_test.go", false), ("sub", true), ("sub/c.go", false)]);
        assert_eq!(l.glob(&["*.go"], &[], true).unwrap(), ["a.go", "b_test.go"]);
        assert_eq!(l.glob(&["**/*.go"], &["*_test.go"], true).unwrap(), ["a.go", "sub/c.go"]);
        assert_eq!(l.glob(&["*"], &[], false).unwrap(), ["a.go", "b_test.go", "sub"]);
        assert_eq!(l.glob(&["*"], &[], true).unwrap(), ["a.go", "b_test.go"]);
    }

    #[test]
    fn bad_patterns_are_errors() {
        let l = listing(&[]);
        assert!(l.glob(&["../x"], &[], true).is_err());
        assert!(l.glob(&["/x"], &[], true).is_err());
        assert!(l.glob(&["a**"], &[], true).is_err());
        // Errors are not remembered as compiled lists: the second call fails the same way.
        assert!(l.glob(&["a**"], &[], true).is_err());
    }

    #[test]
    fn a_shared_compiled_list_matches_each_listing_on_its_own() {
        let a = listing(&[("a.go", false), ("x.txt", false)]);
        let b = listing(&[("b.go", false), ("sub", true), ("sub/c.go", false)]);
        assert_eq!(a.glob(&["*.go"], &[], true).unwrap(), ["a.go"]);
        assert_eq!(b.glob(&["*.go"], &[], true).unwrap(), ["b.go"]);
        assert_eq!(b.glob(&["*.go", "**/*.go"], &[], true).unwrap(), ["b.go", "sub/c.go"]);
    }
}
