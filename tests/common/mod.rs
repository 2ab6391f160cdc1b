//! Helpers for integration tests: run the built `ocib` binary in a workspace.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

pub fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata").join(name)
}

/// Runs ocib with `args` in `dir`, without the user's or the system's .bazelrc.
pub fn ocib(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_ocib"))
        .args(["--nohome_rc", "--nosystem_rc"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run ocib");
    let code = out.status.code().unwrap_or(-1);
    Output { code, stdout: String::from_utf8_lossy(&out.stdout).into_owned(), stderr: String::from_utf8_lossy(&out.stderr).into_owned() }
}

/// Asserts success and returns stdout lines.
pub fn query_ok(dir: &Path, args: &[&str]) -> Vec<String> {
    let out = ocib(dir, args);
    assert_eq!(out.code, 0, "ocib {args:?} failed:\n{}", out.stderr);
    out.stdout.lines().map(str::to_owned).collect()
}

/// Writes `files` (path, content) under a fresh temporary directory.
pub fn workspace(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for (path, content) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, content).expect("write");
    }
    dir
}
