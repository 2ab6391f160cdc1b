//! Helpers for integration tests: run the built `ocib` binary in a workspace.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub mod deb_mirror;
pub mod fault_proxy;
pub mod goproxy;
pub mod remote;

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

/// Removes `dir` when this test process exits, however it exits: a child shell waits for the
/// end of a pipe only this process holds. For directories of `static`s, which are never
/// dropped.
pub fn remove_when_this_process_exits(dir: &Path) {
    let janitor = Command::new("sh")
        .args(["-c", "cat > /dev/null; rm -rf -- \"$0\""])
        .arg(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start sh");
    // Its stdin stays open until the process exits.
    std::mem::forget(janitor);
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

/// Copies a testdata workspace to a fresh temporary directory (builds write `ocib-out` into
/// the workspace, and tests run in parallel).
pub fn copy_workspace(name: &str) -> tempfile::TempDir {
    let src = testdata(name);
    let dir = tempfile::tempdir().expect("tempdir");
    for entry in walkdir::WalkDir::new(&src) {
        let entry = entry.expect("walk testdata");
        let rel = entry.path().strip_prefix(&src).expect("under testdata");
        if rel.components().next().is_some_and(|c| c.as_os_str().to_string_lossy().starts_with("ocib-")) {
            continue;
        }
        let dest = dir.path().join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).expect("mkdir");
        } else if entry.file_type().is_file() {
            std::fs::copy(entry.path(), &dest).expect("copy");
        }
    }
    dir
}

/// Environment for builds in tests: Go's build cache shared by all tests, inside the target
/// directory (so nothing is cached outside the clone).
pub fn go_cache() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("test-gocache")
}

/// Fails the test when no Go toolchain is installed: a test that cannot run its check never
/// passes (`scripts/setup.sh` installs one). Always true when it returns.
pub fn require_go() -> bool {
    let found = std::env::var_os("OCIB_GO").is_some()
        || std::env::var_os("PATH").is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("go").is_file()));
    assert!(found, "this test needs a Go toolchain on PATH or in OCIB_GO (scripts/setup.sh installs one)");
    found
}

/// Fails the test when `name probe` does not run: a test that cannot run its check never
/// passes (`scripts/setup.sh` installs every tool the tests use). Always true when it returns.
pub fn require_tool(name: &str, probe: &[&str]) -> bool {
    let ok = std::process::Command::new(name).args(probe).output().is_ok_and(|o| o.status.success());
    assert!(ok, "this test needs `{name}` (scripts/setup.sh installs it)");
    ok
}

/// Runs `ocib build ARGS` in `dir` with its own cache directory `cache`, listing the outputs
/// of every target built (`--show_result`).
pub fn build(dir: &Path, cache: &Path, args: &[&str]) -> Output {
    let cache_flag = format!("--disk_cache={}", cache.display());
    let mut all: Vec<&str> = vec!["build", &cache_flag, "--noshow_progress", "--show_result=1000000"];
    all.extend_from_slice(args);
    ocib_env(dir, &all, &[("GOCACHE", go_cache().to_str().expect("utf-8 path"))])
}

/// [`build`] with stored build answers off (`cli/build_answer.rs`): for tests of the action
/// cache itself, which an unchanged build answered from its record does not consult.
pub fn build_without_answers(dir: &Path, cache: &Path, args: &[&str]) -> Output {
    let cache_flag = format!("--disk_cache={}", cache.display());
    let mut all: Vec<&str> = vec!["build", &cache_flag, "--noshow_progress", "--show_result=1000000"];
    all.extend_from_slice(args);
    ocib_env(dir, &all, &[("GOCACHE", go_cache().to_str().expect("utf-8 path")), ("OCIB_BUILD_ANSWERS", "0")])
}

/// Starts `ocib build TARGET` in `dir` with its own cache directory `cache`, without waiting:
/// for tests that interrupt or kill a running build.
pub fn spawn_build(dir: &Path, cache: &Path, target: &str, stderr: std::process::Stdio) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_ocib"))
        .args(["--nohome_rc", "--nosystem_rc", "build", "--noshow_progress", &format!("--disk_cache={}", cache.display()), target])
        .current_dir(dir)
        .stderr(stderr)
        .spawn()
        .expect("start ocib")
}

/// Like [`ocib`] with extra environment variables.
pub fn ocib_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_ocib"))
        .args(["--nohome_rc", "--nosystem_rc"])
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .output()
        .expect("run ocib");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The `(executed, cache hits)` counts from a build's summary line
/// (`INFO: N processes: H disk cache hit, I internal, L local.`; executed = I + L).
pub fn executed_and_hits(out: &Output) -> (usize, usize) {
    let re = regex::Regex::new(r"(?m)^INFO: \d+ process(?:es)?[:.](.*)$").expect("regex");
    let caps = re.captures(&out.stderr).unwrap_or_else(|| panic!("no summary line in:\n{}", out.stderr));
    let count = |what: &str| {
        regex::Regex::new(&format!(r"(\d+) {what}")).expect("regex").captures(&caps[1]).map_or(0, |c| c[1].parse().expect("count"))
    };
    (count("internal") + count("local"), count("disk cache hit"))
}

/// Runs a built program and returns its stdout.
pub fn run_program(path: &Path) -> String {
    let out = Command::new(path).output().unwrap_or_else(|e| panic!("run {}: {e}", path.display()));
    assert!(out.status.success(), "{} failed: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A real registry (Debian's docker-registry, i.e. CNCF distribution) on a free loopback
/// port, stopped when dropped.
pub struct Registry {
    child: std::process::Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Registry {
    /// Starts a registry; fails the test when Debian's docker-registry is not installed
    /// (`.ci/run` installs it). Always `Some` when it returns.
    pub fn start(htpasswd: Option<&Path>) -> Option<Registry> {
        let bin = Path::new("/usr/bin/docker-registry");
        assert!(bin.exists(), "this test needs /usr/bin/docker-registry (.ci/run installs Debian's docker-registry)");
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("free port").local_addr().expect("addr").port();
        let auth = htpasswd.map(|p| format!("auth:\n  htpasswd:\n    realm: test\n    path: {}\n", p.display())).unwrap_or_default();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
            dir.path().join("storage").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).expect("write config");
        let log = std::fs::File::create(dir.path().join("registry.log")).expect("log");
        let child = Command::new(bin)
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let reg = Registry { child, port, _dir: dir };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "registry did not start");
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        Some(reg)
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}
