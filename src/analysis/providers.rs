//! What a configured target offers its dependents (Bazel's providers).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::exec::Artifact;

#[derive(Debug, Default, Clone)]
pub struct Providers {
    /// DefaultInfo's files: what `build` produces and what `srcs` of a dependent see.
    pub files: Vec<Artifact>,
    pub executable: Option<Artifact>,
    /// Files the executable needs at run time (`data`).
    pub runfiles: Vec<Artifact>,
    pub output_groups: BTreeMap<String, Vec<Artifact>>,
    /// Every output the rule declared (generated-file targets resolve among these).
    pub declared: Vec<Artifact>,
    pub go: Option<Arc<GoInfo>>,
    pub pkg: Option<Arc<PkgInfo>>,
    /// For `config_setting` and `constraint_value`: whether it matches the configuration.
    pub condition: Option<bool>,
    /// An OCI image layout directory (an image, an index or a pulled image).
    pub oci_layout: Option<Artifact>,
    /// `directory_path`: a path inside a directory output.
    pub directory_path: Option<(Artifact, String)>,
    /// What `ocib run` does with the target besides running an executable.
    pub run: Option<RunAction>,
    /// How `ocib test` runs the target.
    pub test: Option<TestRun>,
    /// Exec paths of the outputs among `files` that are directories (tree artifacts).
    pub directories: std::collections::BTreeSet<String>,
    /// The providers a Starlark rule's implementation returned: a frozen list of provider
    /// instances, with the heap that holds them.
    pub starlark: Option<starlark::values::OwnedFrozenValue>,
    /// Whether `ocib run` runs the executable from a runfiles tree, in Bazel's layout
    /// (`<exe>.runfiles/__main__`): Starlark rules' executables find their runfiles there.
    pub runfiles_tree: bool,
}

/// How a test target runs.
#[derive(Debug, Clone)]
pub enum TestRun {
    /// An executable, with its arguments, environment and run-time files.
    /// `runfiles_tree`: run from a runfiles tree (`<exe>.runfiles/__main__`, each runfile at
    /// its short path), as Bazel runs every test; Starlark rules' tests do.
    Exec { executable: Artifact, args: Vec<String>, env: BTreeMap<String, String>, runfiles: Vec<Artifact>, runfiles_tree: bool },
    /// container_structure_test: configs against an image layout (or a tarball).
    /// `output` is CST's `--output` (text, json or junit) for the log; `junit_suite_name` its
    /// `--junit-suite-name`: both from the target's `args`, which the Bazel rule passes on.
    Structure { image: Artifact, configs: Vec<Artifact>, driver: String, platform: String, output: String, junit_suite_name: String },
}

/// Run-time behaviour of targets that are not plain executables.
#[derive(Debug, Clone)]
pub enum RunAction {
    /// Load an image into a container engine (`oci_tarball`, `oci_load`).
    LoadImage { layout: Artifact, repo_tags: Artifact, loader: Option<Artifact> },
    /// Push an image to a registry (`oci_push`); `{KEY}` in the repository and tags are
    /// stamped when `stamp`.
    Push { layout: Artifact, repository: Option<String>, repository_file: Option<Artifact>, remote_tags: Option<Artifact>, stamp: bool },
}

/// A compiled Go package.
#[derive(Debug, Clone)]
pub struct GoInfo {
    pub importpath: String,
    /// The link-time path (`importmap`, default = importpath).
    pub importmap: String,
    pub archive: Artifact,
    /// Sources (for `embed`ding into another package).
    pub srcs: Vec<Artifact>,
    pub embedsrcs: Vec<Artifact>,
    /// Direct Go dependencies, for embedding libraries (their deps become the embedder's).
    pub deps: Vec<Arc<GoInfo>>,
    /// Every package this one needs at link time, itself excluded: importmap → archive.
    pub transitive: BTreeMap<String, Artifact>,
    /// x_defs collected from the transitive closure: `pkg.Var` → value (dependents override).
    pub x_defs: BTreeMap<String, String>,
}

/// File attributes rules_pkg's `pkg_attributes()` can set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PkgAttrs {
    pub mode: Option<u32>,
    pub uid: Option<u64>,
    pub gid: Option<u64>,
    pub user: Option<String>,
    pub group: Option<String>,
}

/// An entry that rules_pkg's mapping rules (`pkg_files`, `pkg_mklink`, `pkg_mkdirs`,
/// `pkg_filegroup`) place in a package, with its destination already computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PkgEntry {
    File { src: Artifact, dest: String, attrs: PkgAttrs },
    Dir { dest: String, attrs: PkgAttrs },
    Symlink { dest: String, target: String, attrs: PkgAttrs },
}

#[derive(Debug, Clone, Default)]
pub struct PkgInfo {
    pub entries: Vec<PkgEntry>,
}
