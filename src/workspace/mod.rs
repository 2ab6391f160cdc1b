//! The workspace: its root, `.bazelignore`, which directories are packages, and the external
//! repositories (which `load::external` fills from WORKSPACE / MODULE.bazel).

mod discovery;
mod repos;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

pub use discovery::{BUILD_FILE_NAMES, find_root, is_repo_boundary};
pub use repos::prelude_file;
pub use repos::{OciPullSpec, Repo, RepoSource, Repos};

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
        Ok(Workspace { root, name: String::new(), ignored, repos: Repos::with_prelude(), warnings: Vec::new() })
    }

    /// A workspace with only the main repository and the prelude rule sets (no WORKSPACE or
    /// MODULE.bazel evaluated): what evaluating those files themselves runs in.
    pub(crate) fn bootstrap(root: PathBuf, ignored: Vec<String>) -> Workspace {
        Workspace { root, name: String::new(), ignored, repos: Repos::with_prelude(), warnings: Vec::new() }
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
    pub fn packages_under(&self, prefix: &PackageId) -> Result<Vec<PackageId>> {
        discovery::packages_under(self, prefix)
    }
}
