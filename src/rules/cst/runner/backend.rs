//! What a test needs from an image, whichever way it is reached (CST's `drivers.Driver`).

use std::collections::BTreeMap;

use anyhow::Result;

use super::config::EnvVar;
use super::filemode;

/// A file's metadata as CST sees it (from a tar header).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileInfo {
    /// Base name.
    pub name: String,
    /// Go `os.FileMode` bits (see [`filemode`]).
    pub mode: u32,
    /// Owner from the tar header; `None` when the driver cannot tell (CST's "Error checking
    /// ownership").
    pub uid: Option<i64>,
    pub gid: Option<i64>,
}

impl FileInfo {
    pub fn is_dir(&self) -> bool {
        self.mode & filemode::MODE_DIR != 0
    }
}

/// The image config fields tests look at (CST's `unversioned.Config`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub env: BTreeMap<String, String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub volumes: Vec<String>,
    pub workdir: String,
    /// Port numbers without the protocol (`8080/tcp` → `8080`).
    pub exposed_ports: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub user: String,
}

impl ImageConfig {
    /// From an OCI/Docker image config's `config` object (or `docker image inspect`'s `.Config`).
    pub fn from_json(c: &serde_json::Value) -> ImageConfig {
        use serde_json::Value;
        let strings = |v: Option<&Value>| -> Vec<String> {
            v.and_then(Value::as_array).map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect()).unwrap_or_default()
        };
        let keys =
            |v: Option<&Value>| -> Vec<String> { v.and_then(Value::as_object).map(|m| m.keys().cloned().collect()).unwrap_or_default() };
        let string = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_owned();
        let get = |a: &str, b: &str| c.get(a).or_else(|| c.get(b));
        ImageConfig {
            env: env_map(&strings(get("Env", "env"))),
            entrypoint: strings(get("Entrypoint", "entrypoint")),
            cmd: strings(get("Cmd", "cmd")),
            volumes: keys(get("Volumes", "volumes")),
            workdir: string(get("WorkingDir", "workingDir")),
            exposed_ports: keys(get("ExposedPorts", "exposedPorts"))
                .into_iter()
                .map(|p| p.split('/').next().unwrap_or_default().to_owned())
                .collect(),
            labels: get("Labels", "labels")
                .and_then(Value::as_object)
                .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned())).collect())
                .unwrap_or_default(),
            user: string(get("User", "user")),
        }
    }
}

/// `KEY=VALUE` list to map (CST's `convertSliceToMap`: split at the first `=`).
pub fn env_map(list: &[String]) -> BTreeMap<String, String> {
    list.iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (kv.clone(), String::new()),
        })
        .collect()
}

/// One driver instance; CST creates a fresh one for every test.
pub trait Backend {
    /// `globalEnvVars`.
    fn set_env(&mut self, vars: &[EnvVar]) -> Result<()>;
    /// Setup commands (run and committed one after another).
    fn setup(&mut self, vars: &[EnvVar], commands: &[Vec<String>]) -> Result<()>;
    /// Runs a command; (stdout, stderr, exit code).
    fn process_command(&mut self, vars: &[EnvVar], command: &[String]) -> Result<(String, String, i64)>;
    /// The file itself (a symlink is not followed).
    fn stat_file(&mut self, path: &str) -> Result<FileInfo>;
    /// File contents (symlinks followed).
    fn read_file(&mut self, path: &str) -> Result<Vec<u8>>;
    /// Immediate subdirectories and files of a directory.
    fn read_dir(&mut self, path: &str) -> Result<Vec<FileInfo>>;
    fn config(&mut self) -> Result<ImageConfig>;
    /// Removes whatever the driver created.
    fn destroy(&mut self);
}
