//! The workspace: its root, `.bazelignore`, which directories are packages, and the external
//! repositories (which `load::external` fills from WORKSPACE / MODULE.bazel).

mod discovery;
pub mod gomod;
pub mod patch;
mod repos;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub use discovery::{BUILD_FILE_NAMES, Walked, find_root, is_repo_boundary};
pub use repos::{OciPullSpec, Repo, RepoSource, Repos};
pub use repos::{prelude_file, rule_set_dir};

use crate::graph::label::PackageId;

pub struct Workspace {
    pub root: PathBuf,
    /// The main repository's own name (`workspace(name=)` or `module(name=)`), if any.
    pub name: String,
    /// Directories (relative to the root, `/`-separated) that `.bazelignore` excludes.
    pub ignored: Vec<String>,
    pub repos: Repos,
    /// Warnings found while reading WORKSPACE / MODULE.bazel, printed once by the command.
    pub warnings: Vec<String>,
    /// The version the repository pins of each embedded rule set (canonical name → version),
    /// from MODULE.bazel `bazel_dep`/`single_version_override` or a WORKSPACE archive's URL;
    /// a rule set not listed is unpinned. The prelude's faces follow it (e.g. rules_oci's
    /// hidden target names, issue 11 class 8).
    pub rule_set_versions: BTreeMap<String, Version>,
    /// The Go module repositories (also in `repos`) and their fetch state.
    pub go_modules: gomod::GoModules,
}

/// A rule set's release `major.minor.patch`; a pre-release (`2.0.0-rc1`) counts as its release.
pub type Version = (u32, u32, u32);

/// The first `X.Y.Z` in `text` that starts it or follows `/`, `-`, `_` or `v` (a release
/// URL `.../v1.7.6/rules_oci-v1.7.6.tar.gz`, a `strip_prefix` `rules_oci-1.7.6`, a
/// `bazel_dep` version `2.2.0`), if any.
pub fn parse_version(text: &str) -> Option<Version> {
    static PATTERN: std::sync::LazyLock<regex::Regex> =
        std::sync::LazyLock::new(|| regex::Regex::new(r"(?:^|[/_v-])(\d+)\.(\d+)\.(\d+)").expect("valid regex"));
    let caps = PATTERN.captures(text)?;
    Some((caps[1].parse().ok()?, caps[2].parse().ok()?, caps[3].parse().ok()?))
}

impl Workspace {
    /// Finds the workspace containing `dir`: its root and `.bazelignore`, with only the prelude
    /// rule sets as repositories. Loading (`load::external::open_workspace`) then evaluates
    /// MODULE.bazel and WORKSPACE(.bazel) to learn the external repositories.
    pub fn find(dir: &Path) -> Result<Workspace> {
        let root = find_root(dir).with_context(|| {
            format!(
                "'{}' is not inside a workspace: no MODULE.bazel, REPO.bazel, WORKSPACE or WORKSPACE.bazel in it or any parent directory",
                dir.display()
            )
        })?;
        let ignored = discovery::read_bazelignore(&root)?;
        Ok(Workspace {
            root,
            name: String::new(),
            ignored,
            repos: Repos::with_prelude(),
            warnings: Vec::new(),
            rule_set_versions: BTreeMap::new(),
            go_modules: gomod::GoModules::default(),
        })
    }

    /// A workspace with only the main repository and the prelude rule sets (no WORKSPACE or
    /// MODULE.bazel evaluated): what evaluating those files themselves runs in.
    pub(crate) fn bootstrap(root: PathBuf, ignored: Vec<String>) -> Workspace {
        Workspace {
            root,
            name: String::new(),
            ignored,
            repos: Repos::with_prelude(),
            warnings: Vec::new(),
            rule_set_versions: BTreeMap::new(),
            go_modules: gomod::GoModules::default(),
        }
    }

    /// Maps a repository name as written in a label to its canonical name.
    pub fn map_repo(&self, apparent: &str) -> Option<String> {
        if !self.name.is_empty() && apparent == self.name {
            return Some(String::new());
        }
        self.repos.canonical(apparent)
    }

    /// The directory on disk holding `pkg`, for repositories that live on disk.
    pub fn package_dir(&self, pkg: &PackageId) -> Option<PathBuf> {
        let base = if pkg.repo.is_empty() {
            self.root.clone()
        } else {
            match &self.repos.get(&pkg.repo)?.source {
                RepoSource::Local(path) => path.clone(),
                // Fetched (once) on first use; the loader reports a failure.
                RepoSource::GoModule(_) => self.go_modules.materialize(&pkg.repo).ok()?,
                _ => return None,
            }
        };
        Some(if pkg.package.is_empty() { base } else { base.join(&pkg.package) })
    }

    /// Whether `rel` (relative to the main repository root) is excluded by `.bazelignore`, or
    /// is an output tree (`ocib-out`, its `ocib-*` links, Bazel's `bazel-*` links).
    pub fn is_ignored(&self, repo: &str, rel: &str) -> bool {
        if !repo.is_empty() {
            return false;
        }
        let top = rel.split('/').next().unwrap_or(rel);
        matches!(top, "ocib-out" | "ocib-bin" | "ocib-testlogs")
            || top.starts_with("bazel-")
            || self.ignored.iter().any(|i| rel == i || (rel.starts_with(i.as_str()) && rel.as_bytes().get(i.len()) == Some(&b'/')))
    }

    /// The package's directory relative to the working directory `cwd` (for the package
    /// containing a relative pattern).
    pub fn package_of_dir(&self, cwd: &Path) -> PackageId {
        let rel = cwd.strip_prefix(&self.root).unwrap_or(Path::new(""));
        PackageId::main(rel.to_string_lossy().replace('\\', "/"))
    }

    /// All packages at or below `prefix`, sorted.
    /// The version the repository pins of the embedded rule set `canonical`, if it pins one.
    pub fn rule_set_version(&self, canonical: &str) -> Option<Version> {
        self.rule_set_versions.get(canonical).copied()
    }

    pub fn packages_under(&self, prefix: &PackageId) -> Result<Vec<PackageId>> {
        discovery::packages_under(self, prefix)
    }

    /// [`Workspace::packages_under`], recording the directories read (see [`Walked`]).
    pub fn packages_under_observed(&self, prefix: &PackageId, walked: &std::sync::Mutex<Walked>) -> Result<Vec<PackageId>> {
        discovery::packages_under_observed(self, prefix, Some(walked))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_from_release_urls_prefixes_and_module_versions() {
        assert_eq!(
            parse_version("https://github.com/bazel-contrib/rules_oci/releases/download/v1.7.6/rules_oci-v1.7.6.tar.gz"),
            Some((1, 7, 6))
        );
        assert_eq!(parse_version("rules_oci-2.2.0"), Some((2, 2, 0)));
        assert_eq!(parse_version("2.0.0-rc1"), Some((2, 0, 0)));
        assert_eq!(parse_version("https://github.com/x/rules_oci/archive/0123abc.tar.gz"), None);
        assert_eq!(parse_version("rules_oci-abc1.2.3"), None);
    }
}
