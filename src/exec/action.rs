//! Actions: what analysis asks execution to do. An action reads input artifacts and writes
//! output artifacts, either by running a process in a private exec root or by running
//! ocib's own code (writing a file, a tar, ...). Its key covers everything that can change
//! its outputs.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::graph::label::Label;

/// A file an action reads or writes, named by its exec path: the path relative to an exec
/// root (`cmd/worker/main.go`, `external/base/x.txt`, `ocib-out/bin/cmd/worker/worker_/worker`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Artifact {
    pub exec_path: String,
    pub kind: ArtifactKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ArtifactKind {
    /// A file in a source repository, at this absolute path.
    Source(PathBuf),
    /// A file an action produces, under `ocib-out/bin`.
    Derived,
}

/// Where derived files live, relative to the workspace root.
pub const BIN_DIR: &str = "ocib-out/bin";

impl Artifact {
    pub fn source(exec_path: impl Into<String>, abs: PathBuf) -> Artifact {
        Artifact { exec_path: exec_path.into(), kind: ArtifactKind::Source(abs) }
    }

    /// A derived file at `<BIN_DIR>/<rel>`.
    #[cfg(test)]
    pub fn derived(rel: &str) -> Artifact {
        Artifact { exec_path: format!("{BIN_DIR}/{rel}"), kind: ArtifactKind::Derived }
    }

    pub fn is_source(&self) -> bool {
        matches!(self.kind, ArtifactKind::Source(_))
    }

    /// The path relative to the repository root the file belongs to: what rules_pkg calls the
    /// short path (`cmd/worker/worker_/worker` for a derived file).
    pub fn short_path(&self) -> &str {
        // Derived files live under `ocib-out/bin/` or `ocib-out/<config>/bin/`.
        let p = match self.exec_path.strip_prefix("ocib-out/") {
            Some(rest) => rest.split_once("bin/").map(|(_, p)| p).unwrap_or(rest),
            None => &self.exec_path,
        };
        match p.strip_prefix("external/") {
            Some(rest) => rest.split_once('/').map(|(_, r)| r).unwrap_or(rest),
            None => p,
        }
    }

    pub fn basename(&self) -> &str {
        self.exec_path.rsplit('/').next().unwrap_or(&self.exec_path)
    }
}

impl fmt::Display for Artifact {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.exec_path)
    }
}

/// Code ocib runs itself for an action. `params` must describe everything the run depends on
/// besides its input files, deterministically (it goes into the action key).
pub trait InProcess: Send + Sync {
    /// The name `ocib action <kind> <params>` knows this code by (a key of the
    /// [`InProcessKinds`] table the rule sets inject), usually the action's mnemonic.
    fn kind(&self) -> &'static str;
    /// The parameters, deterministically: the action key hashes them, and the kind's
    /// constructor in [`InProcessKinds`] rebuilds the same code from them (`ocib action`, which
    /// a remote worker runs).
    fn params(&self) -> String;
    fn run(&self, ctx: &mut ActionContext) -> anyhow::Result<()>;
    /// Whether `run` only reads `ctx.inputs` and writes `ctx.outputs` (no scratch files in
    /// `ctx.exec_root`, no assumption about where outputs are). Its outputs are then written
    /// straight into the output base's scratch directory, without an exec root to create and
    /// remove: making and deleting ~6 directories per action was most of the system time of
    /// a cold build of many images.
    fn scratch_free(&self) -> bool {
        false
    }
    /// Whether the action may run on a remote executor (as `ocib action`). False for fetches
    /// (their params leave out where to fetch from and which credentials to use, as Bazel
    /// fetches repositories on the client) and for tests (they run in the workspace).
    fn remotable(&self) -> bool {
        true
    }
}

/// Rebuilds in-process code from its [`InProcess::params`].
pub type FromParams = fn(&str) -> anyhow::Result<Arc<dyn InProcess>>;

/// Every in-process kind's constructor, by [`InProcess::kind`]: what `ocib action` runs. The rule
/// sets make this table (`rules::in_process_kinds`) and the command layer passes it in, so
/// `exec/` knows no rule set.
pub type InProcessKinds = BTreeMap<&'static str, FromParams>;

/// The constructor of a kind whose params are its serde JSON.
pub fn from_json<T: InProcess + serde::de::DeserializeOwned + 'static>(params: &str) -> anyhow::Result<Arc<dyn InProcess>> {
    let code: T = serde_json::from_str(params).map_err(|e| anyhow::anyhow!("bad parameters: {e}"))?;
    Ok(Arc::new(code))
}

pub enum ActionKind {
    /// Runs `argv` with `env` in a fresh exec root holding only the inputs (by symlink).
    /// `$EXECROOT` in arguments and environment is replaced by the exec root's path at run
    /// time (so the key does not depend on it).
    Spawn { argv: Vec<String>, env: BTreeMap<String, String> },
    /// Writes fixed content.
    Write { content: Vec<u8>, executable: bool },
    /// Runs ocib's own code.
    Run(Arc<dyn InProcess>),
}

pub struct Action {
    /// The action's kind as progress lines and errors name it (`GoLink`, or a Starlark
    /// rule's `mnemonic`).
    pub mnemonic: std::borrow::Cow<'static, str>,
    pub owner: Label,
    pub inputs: Vec<Artifact>,
    pub outputs: Vec<Artifact>,
    /// Outputs that are executable.
    pub executable_outputs: Vec<String>,
    /// Outputs that are directories (tree artifacts, e.g. an OCI image layout).
    pub tree_outputs: Vec<String>,
    pub kind: ActionKind,
    /// Identity of tools the action runs that are not inputs (e.g. the Go toolchain).
    pub tool_id: String,
    /// Whether the action reads the workspace status (it then has stable-status.txt as an
    /// input, and volatile-status.txt readable but not keyed).
    pub stamped: bool,
    /// The progress line: `GoCompilePkg //cmd/worker:worker_lib`.
    pub progress: String,
    /// Run even if the cache has a result (`--cache_test_results=no`).
    pub skip_cache_lookup: bool,
    /// Bazel's execution requirements from the owner's `tags`: `no-remote`, `no-remote-exec`,
    /// `no-cache`, `local` (others are ignored). Not in the key: they say where it runs.
    pub requirements: std::collections::BTreeSet<String>,
    /// The owner's `exec_properties`: the platform properties of its remote `Command`.
    pub exec_properties: BTreeMap<String, String>,
}

/// The tags Bazel reads as execution requirements.
pub const EXECUTION_REQUIREMENT_TAGS: &[&str] = &["no-remote", "no-remote-exec", "no-remote-cache", "no-cache", "local"];

impl Action {
    pub fn new(mnemonic: &'static str, owner: &Label, kind: ActionKind) -> Action {
        Action {
            mnemonic: mnemonic.into(),
            owner: owner.clone(),
            inputs: Vec::new(),
            outputs: Vec::new(),
            executable_outputs: Vec::new(),
            tree_outputs: Vec::new(),
            kind,
            tool_id: String::new(),
            stamped: false,
            progress: format!("{mnemonic} {owner}"),
            skip_cache_lookup: false,
            requirements: Default::default(),
            exec_properties: BTreeMap::new(),
        }
    }

    /// Whether the owner's tags say `tag` (an execution requirement).
    pub fn requires(&self, tag: &str) -> bool {
        self.requirements.contains(tag)
    }

    pub fn inputs(mut self, inputs: impl IntoIterator<Item = Artifact>) -> Action {
        self.inputs.extend(inputs);
        self
    }

    pub fn output(mut self, out: Artifact) -> Action {
        self.outputs.push(out);
        self
    }

    /// A directory output: every file the action leaves in it is an output.
    pub fn tree_output(mut self, out: Artifact) -> Action {
        self.tree_outputs.push(out.exec_path.clone());
        self.outputs.push(out);
        self
    }

    pub fn executable_output(mut self, out: Artifact) -> Action {
        self.executable_outputs.push(out.exec_path.clone());
        self.outputs.push(out);
        self
    }
}

/// What a running action sees: where to read inputs and write outputs, and a way to run
/// processes that an interrupt can stop.
pub struct ActionContext {
    /// A scratch directory private to this run, inside the output base.
    pub exec_root: PathBuf,
    /// exec path → readable location, for every input.
    pub inputs: BTreeMap<String, PathBuf>,
    /// exec path → where to write, for every output.
    pub outputs: BTreeMap<String, PathBuf>,
    /// Content digests (hex sha256) of the derived inputs and of the files inside input
    /// directories (`<dir exec path>/<relative path>`), so an action can name blobs without
    /// hashing them. Source files are absent: their key digests are BLAKE3.
    pub input_digests: BTreeMap<String, String>,
    /// The workspace status, for stamped actions.
    pub stable_status: Option<BTreeMap<String, String>>,
    pub volatile_status: Option<BTreeMap<String, String>>,
    /// What the action printed, shown when it fails.
    pub log: String,
    /// Digests of outputs the action computed while writing them (hex sha256), so they are
    /// not read again to be stored.
    pub output_digests: BTreeMap<String, String>,
    /// Set by an action whose result must not be reused (a failed test is run again).
    pub uncacheable: bool,
}

impl ActionContext {
    pub fn input(&self, exec_path: &str) -> anyhow::Result<&PathBuf> {
        self.inputs.get(exec_path).ok_or_else(|| anyhow::anyhow!("internal: '{exec_path}' is not an input of this action"))
    }

    pub fn output(&self, exec_path: &str) -> anyhow::Result<&PathBuf> {
        self.outputs.get(exec_path).ok_or_else(|| anyhow::anyhow!("internal: '{exec_path}' is not an output of this action"))
    }

    /// Runs a process to completion (killed if ocib is interrupted); fails with its output
    /// if it exits non-zero.
    pub fn run(&mut self, argv: &[String], env: &BTreeMap<String, String>, cwd: &std::path::Path) -> anyhow::Result<()> {
        super::process::run(argv, env, cwd, &mut self.log)
    }
}
