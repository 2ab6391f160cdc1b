//! `glob()`: files of a package matching patterns, not descending into subpackages.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Result, bail};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use std::os::unix::fs::MetadataExt;

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
    pub fn read(ws: &Workspace, repo: &str, package: &str, dir: &Path) -> Listing {
        let mut listing = Listing::empty();
        // The package directory itself, followed if it is a symlink; a directory that cannot
        // be read has no files for any glob.
        if let Ok(meta) = std::fs::metadata(dir)
            && meta.is_dir()
        {
            let mut ancestors = vec![(meta.dev(), meta.ino())];
            listing.dirs.push((dir.to_path_buf(), Sig::of(&meta)));
            listing.walk(ws, repo, package, dir, "", &mut ancestors);
        }
        listing.entries.sort();
        listing
    }

    /// Lists `path` (the directory `rel` of the package, `""` for the package itself) and
    /// its subdirectories, following symlinks as Bazel's glob does. Hand-written rather than
    /// walkdir, which with links followed canonicalizes the root and stats every entry: a
    /// regular file costs no system call here beyond its directory's read (walkdir's walk
    /// was 9 % of evaluating 5,000 packages).
    fn walk(&mut self, ws: &Workspace, repo: &str, package: &str, path: &Path, rel: &str, ancestors: &mut Vec<(u64, u64)>) {
        // An unreadable directory, a dangling symlink or an entry that vanished is not part
        // of any glob.
        let Ok(read) = std::fs::read_dir(path) else { return };
        let mut children: Vec<(std::ffi::OsString, std::fs::FileType)> =
            read.filter_map(|e| e.ok()).filter_map(|e| Some((e.file_name(), e.file_type().ok()?))).collect();
        children.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, file_type) in children {
            let child = path.join(&name);
            let name = name.to_string_lossy();
            let child_rel = if rel.is_empty() { name.into_owned() } else { format!("{rel}/{name}") };
            if !file_type.is_symlink() && !file_type.is_dir() {
                self.entries.push((child_rel, false));
                continue;
            }
            // Symlinks are followed (a dangling one is skipped); directories are stat'ed for
            // the status the load cache keeps, taken before they are read.
            let Ok(meta) = std::fs::metadata(&child) else { continue };
            if !meta.is_dir() {
                self.entries.push((child_rel, false));
                continue;
            }
            let id = (meta.dev(), meta.ino());
            // A symlink back to a directory being listed: a loop, skipped as walkdir did.
            if ancestors.contains(&id) {
                continue;
            }
            self.dirs.push((child.clone(), Sig::of(&meta)));
            let ws_rel = if package.is_empty() { child_rel.clone() } else { format!("{package}/{child_rel}") };
            // Subpackages, nested repositories and ignored directories end the glob.
            let is_subpackage = BUILD_FILE_NAMES.iter().any(|n| child.join(n).is_file());
            if is_subpackage || is_repo_boundary(&child) || ws.is_ignored(repo, &ws_rel) {
                continue;
            }
            ancestors.push(id);
            self.walk(ws, repo, package, &child, &child_rel, ancestors);
            ancestors.pop();
            self.entries.push((child_rel, true));
        }
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
            super::cache::hash_field(&mut h, path.as_bytes());
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
