//! Remote execution (issue 15) against a real engine: BuildGrid 0.4.4 with its Execution
//! service over a private PostgreSQL, and the Remote Workers API bot of tests/bot. Scenarios:
//! every action of a workspace executed remotely gives the bytes a local build gives (genrules,
//! ocib's in-process actions run as `ocib action` on the worker, and the Go image monorepo);
//! tags and exec properties; the executor down at the start or lost mid-build (fallback with
//! one warning, or Bazel's exit code 34); Bazel 4.2.3 as a second client of the same grid.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crate::common::remote::{self, counts, files_under, remote_executed};
use crate::common::{self, Output, copy_workspace, require_go};

fn build(ws: &Path, cache: &Path, args: &[&str]) -> Output {
    common::build(ws, cache, args)
}

fn ok(out: Output) -> Output {
    assert_eq!(out.code, 0, "{}", out.stderr);
    out
}

fn warnings(out: &Output) -> usize {
    out.stderr.lines().filter(|l| l.starts_with("WARNING: Remote")).count()
}

/// Genrules (a chain, an executable, one output above gRPC's batch limit) and in-process
/// actions (pkg_tar, expand_template, copy_file) that ocib runs as `ocib action` remotely.
/// `salt` makes every action new to the shared grid.
fn workspace(salt: &str) -> tempfile::TempDir {
    let build = format!(
        "load(\"@rules_pkg//:pkg.bzl\", \"pkg_tar\")\n\
         load(\"@bazel_skylib//rules:copy_file.bzl\", \"copy_file\")\n\
         genrule(name = \"a\", outs = [\"a.txt\"], cmd = \"echo alpha {salt} > $@\")\n\
         genrule(name = \"b\", srcs = [\":a\", \"src.txt\"], outs = [\"b.txt\"], cmd = \"cat $(SRCS) > $@\")\n\
         genrule(name = \"exe\", outs = [\"run.sh\"], cmd = \"printf '#!/bin/sh\\\\necho hi {salt}\\\\n' > $@; chmod +x $@\", executable = True)\n\
         genrule(name = \"big\", outs = [\"big.bin\"], cmd = \"head -c 6000000 /dev/zero | tr '\\\\\\\\0' x > $@; echo {salt} >> $@\")\n\
         copy_file(name = \"copy\", src = \":b\", out = \"b.copy\")\n\
         pkg_tar(name = \"tar\", srcs = [\":b\", \":exe\", \"src.txt\"], package_dir = \"/app\")\n"
    );
    common::workspace(&[("MODULE.bazel", ""), ("BUILD.bazel", &build), ("src.txt", &format!("source bytes {salt}\n"))])
}

const TARGETS: &[&str] = &["//:a", "//:b", "//:exe", "//:big", "//:copy", "//:tar"];

fn salt() -> String {
    use std::sync::atomic::AtomicUsize;
    static N: AtomicUsize = AtomicUsize::new(0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{}-{now}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Builds `targets` of `make()` remotely in one checkout and locally in another; asserts that
/// the remote build ran actions on the executor (none as a local process) and that both give
/// the same bytes and modes.
fn remote_matches_local(make: &dyn Fn() -> tempfile::TempDir, targets: &[&str], url: &str) -> Output {
    let flag = format!("--remote_executor={url}");
    let mut args = vec![flag.as_str()];
    args.extend_from_slice(targets);
    let remote_ws = make();
    let out = ok(build(remote_ws.path(), tempfile::tempdir().unwrap().path(), &args));
    assert_eq!(warnings(&out), 0, "{}", out.stderr);
    assert!(remote_executed(&out.stderr) > 0, "actions ran remotely:\n{}", out.stderr);
    assert!(!out.stderr.contains(" local"), "no process ran here:\n{}", out.stderr);

    let local_ws = make();
    ok(build(local_ws.path(), tempfile::tempdir().unwrap().path(), targets));
    let (r, l) = (files_under(&remote_ws.path().join("ocib-out/bin")), files_under(&local_ws.path().join("ocib-out/bin")));
    assert!(!r.is_empty());
    assert_eq!(r.keys().collect::<Vec<_>>(), l.keys().collect::<Vec<_>>());
    for (path, bytes) in &r {
        assert!(l[path] == *bytes, "{path} differs between the remote and the local build");
        use std::os::unix::fs::PermissionsExt;
        let mode = |ws: &Path| std::fs::metadata(ws.join("ocib-out/bin").join(path)).unwrap().permissions().mode() & 0o111;
        assert_eq!(mode(remote_ws.path()), mode(local_ws.path()), "{path}: executable bit");
    }
    out
}

#[test]
fn remote_execution_of_genrules_and_in_process_actions_gives_the_local_bytes() {
    let grid = remote::exec_grid();
    let s = salt();
    let out = remote_matches_local(&|| workspace(&s), TARGETS, &grid.url());
    // The file writes (pkg_tar's manifest inputs, if any) run here: everything else remotely.
    let (remote_hits, disk_hits, here) = counts(&out.stderr);
    assert_eq!((remote_hits, disk_hits), (0, 0), "{}", out.stderr);
    assert!(remote_executed(&out.stderr) >= TARGETS.len(), "{}", out.stderr);
    assert!(here <= 1, "{}", out.stderr);

    // Another checkout with an empty disk cache: the executor's action cache answers.
    let again =
        ok(build(workspace(&s).path(), tempfile::tempdir().unwrap().path(), &[&format!("--remote_executor={}", grid.url()), "//:tar"]));
    let (hits, _, _) = counts(&again.stderr);
    assert!(hits > 0 && remote_executed(&again.stderr) == 0, "{}", again.stderr);
}

#[test]
fn remote_execution_builds_the_image_monorepo_byte_identical_to_a_local_build() {
    if !require_go() {
        return;
    }
    let grid = remote::exec_grid();
    // Go actions are keyed by the toolchain, not by a salt: the second run of this test may
    // find them in the grid's cache, which is as good (a remote hit of a remote execution).
    let out = remote_matches_local(&|| copy_workspace("images"), &["//cmd/worker:image", "//cmd/worker:image_tarball"], &grid.url());
    let (_, disk_hits, _) = counts(&out.stderr);
    assert_eq!(disk_hits, 0, "{}", out.stderr);
}

#[test]
fn tags_keep_actions_local_and_exec_properties_reach_the_server() {
    let grid = remote::exec_grid();
    let s = salt();
    let ws = common::workspace(&[
        ("MODULE.bazel", ""),
        (
            "BUILD.bazel",
            &format!(
                "genrule(name = \"here\", outs = [\"here.txt\"], cmd = \"echo {s} > $@\", tags = [\"no-remote-exec\"])\n\
                 genrule(name = \"there\", outs = [\"there.txt\"], cmd = \"echo {s} > $@\", exec_properties = {{\"OSFamily\": \"linux\"}})\n\
                 genrule(name = \"nowhere\", outs = [\"nowhere.txt\"], cmd = \"echo {s} > $@\", exec_properties = {{\"unknown-key\": \"1\"}})\n"
            ),
        ),
    ]);
    let flag = format!("--remote_executor={}", grid.url());
    let out = ok(build(ws.path(), tempfile::tempdir().unwrap().path(), &[&flag, "//:here", "//:there"]));
    assert!(out.stderr.contains("INFO: 2 processes: 1 local, 1 remote."), "{}", out.stderr);
    // A property the server does not know: BuildGrid refuses the action, a remote error.
    let out = build(ws.path(), tempfile::tempdir().unwrap().path(), &[&flag, "//:nowhere"]);
    assert_eq!(out.code, 34, "{}", out.stderr);
    assert!(out.stderr.contains("unknown-key"), "the server's reason is shown:\n{}", out.stderr);
    // --remote_default_exec_properties is sent too (the target's value wins key by key).
    let out =
        build(ws.path(), tempfile::tempdir().unwrap().path(), &[&flag, "--remote_default_exec_properties=other-unknown=2", "//:there"]);
    assert_eq!(out.code, 34, "{}", out.stderr);
    assert!(out.stderr.contains("other-unknown"), "{}", out.stderr);
}

#[test]
fn a_failing_remote_action_shows_its_output_and_fails_the_build() {
    let grid = remote::exec_grid();
    let s = salt();
    let ws = common::workspace(&[
        ("MODULE.bazel", ""),
        ("BUILD.bazel", &format!("genrule(name = \"bad\", outs = [\"bad.txt\"], cmd = \"echo 'went wrong {s}' >&2; exit 3\")\n")),
    ]);
    let out = build(ws.path(), tempfile::tempdir().unwrap().path(), &[&format!("--remote_executor={}", grid.url()), "//:bad"]);
    assert_eq!(out.code, 1, "an action failure, not a remote failure:\n{}", out.stderr);
    assert!(out.stderr.contains("exited with code 3") && out.stderr.contains(&format!("went wrong {s}")), "{}", out.stderr);
}

#[test]
fn executor_down_at_the_start_is_exit_34_or_a_local_build_with_one_warning() {
    let dead = remote::free_port();
    let ws = workspace(&salt());
    let flag = format!("--remote_executor=grpc://127.0.0.1:{dead}");
    let out = build(ws.path(), tempfile::tempdir().unwrap().path(), &[&flag, "//:b"]);
    assert_eq!(out.code, 34, "{}", out.stderr);
    assert!(out.stderr.contains("ERROR:") && out.stderr.contains("--remote_local_fallback"), "{}", out.stderr);
    let out = ok(build(ws.path(), tempfile::tempdir().unwrap().path(), &[&flag, "--remote_local_fallback", "//:b"]));
    assert_eq!(warnings(&out), 1, "{}", out.stderr);
    assert_eq!(remote_executed(&out.stderr), 0, "{}", out.stderr);
}

/// A TCP proxy to `upstream` that [`Proxy::kill`] cuts: open connections are shut down and new
/// ones refused, as when the executor's machine goes away.
struct Proxy {
    port: u16,
    dead: Arc<AtomicBool>,
    conns: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(upstream: u16) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let dead = Arc::new(AtomicBool::new(false));
        let conns: Arc<Mutex<Vec<TcpStream>>> = Arc::default();
        let (d, c) = (dead.clone(), conns.clone());
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if d.load(Ordering::SeqCst) {
                    let _ = client.shutdown(Shutdown::Both);
                    continue;
                }
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else { continue };
                c.lock().unwrap().extend([client.try_clone().unwrap(), server.try_clone().unwrap()]);
                for (mut from, mut to) in [(client.try_clone().unwrap(), server.try_clone().unwrap()), (server, client)] {
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 65536];
                        while let Ok(n) = from.read(&mut buf) {
                            if n == 0 || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = to.shutdown(Shutdown::Both);
                    });
                }
            }
        });
        Proxy { port, dead, conns }
    }

    fn kill(&self) {
        self.dead.store(true, Ordering::SeqCst);
        for c in self.conns.lock().unwrap().drain(..) {
            let _ = c.shutdown(Shutdown::Both);
        }
    }
}

/// A chain of slow genrules: the executor is cut while it runs.
fn slow_chain(salt: &str) -> tempfile::TempDir {
    let mut build = format!("genrule(name = \"s0\", outs = [\"s0.txt\"], cmd = \"sleep 1; echo {salt} > $@\")\n");
    for i in 1..8 {
        build.push_str(&format!(
            "genrule(name = \"s{i}\", srcs = [\":s{}\"], outs = [\"s{i}.txt\"], cmd = \"sleep 1; cat $< > $@; echo {i} >> $@\")\n",
            i - 1
        ));
    }
    common::workspace(&[("MODULE.bazel", ""), ("BUILD.bazel", &build)])
}

fn build_while_cutting(extra: &[&str]) -> Output {
    let grid = remote::exec_grid();
    let proxy = Proxy::start(grid.server.port);
    let ws = slow_chain(&salt());
    let flag = format!("--remote_executor=grpc://127.0.0.1:{}", proxy.port);
    let cache = tempfile::tempdir().unwrap();
    let mut args = vec![flag.as_str(), "//:s7"];
    args.extend_from_slice(extra);
    let (path, ws_path, cache_path) =
        (args.iter().map(|s| s.to_string()).collect::<Vec<_>>(), ws.path().to_owned(), cache.path().to_owned());
    let handle = std::thread::spawn(move || {
        let args: Vec<&str> = path.iter().map(String::as_str).collect();
        build(&ws_path, &cache_path, &args)
    });
    // Cut once the first action has run remotely (its output is downloaded), not after a
    // fixed time: on a loaded machine none may have finished in a few seconds.
    let first = ws.path().join("ocib-out/bin/s0.txt");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !first.exists() && !handle.is_finished() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    proxy.kill();
    let out = handle.join().unwrap();
    drop(ws);
    out
}

#[test]
fn executor_lost_mid_build_falls_back_with_one_warning() {
    let out = ok(build_while_cutting(&["--remote_local_fallback"]));
    assert_eq!(warnings(&out), 1, "exactly one warning:\n{}", out.stderr);
    let (_, _, here) = counts(&out.stderr);
    assert!(remote_executed(&out.stderr) > 0 && here > 0, "some remotely, the rest here:\n{}", out.stderr);
}

#[test]
fn executor_lost_mid_build_without_fallback_is_exit_34() {
    let out = build_while_cutting(&[]);
    assert_eq!(out.code, 34, "{}", out.stderr);
    assert!(out.stderr.contains("ERROR:"), "{}", out.stderr);
}

#[test]
fn bazel_executes_a_genrule_on_the_same_grid() {
    if !common::require_tool("bazel", &["--version"]) {
        return;
    }
    let grid = remote::exec_grid();
    let s = salt();
    let ws = common::workspace(&[
        ("WORKSPACE", ""),
        ("BUILD", &format!("genrule(name = \"g\", outs = [\"g.txt\"], cmd = \"echo bazel {s} > $@\")\n")),
    ]);
    let root = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("bazel")
        .arg(format!("--output_user_root={}", root.path().display()))
        .args(["build", &format!("--remote_executor={}", grid.url()), "--spawn_strategy=remote", "//:g"])
        .current_dir(ws.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let _ = std::process::Command::new("bazel")
        .arg(format!("--output_user_root={}", root.path().display()))
        .arg("shutdown")
        .current_dir(ws.path())
        .output();
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("1 remote"), "Bazel ran it remotely:\n{stderr}");
    assert_eq!(std::fs::read_to_string(ws.path().join("bazel-bin/g.txt")).unwrap(), format!("bazel {s}\n"));
}

#[test]
fn download_minimal_runs_dependent_actions_remotely_on_digests_only() {
    let grid = remote::exec_grid();
    let ws = workspace(&salt());
    let flag = format!("--remote_executor={}", grid.url());
    let out = ok(build(ws.path(), tempfile::tempdir().unwrap().path(), &[&flag, "--remote_download_outputs=minimal", "//:copy", "//:tar"]));
    assert_eq!(warnings(&out), 0, "{}", out.stderr);
    // a -> b -> copy and tar all ran remotely; nothing was downloaded to run them.
    assert!(remote_executed(&out.stderr) >= 4, "{}", out.stderr);
    let (_, _, here) = counts(&out.stderr);
    assert_eq!(here, 0, "{}", out.stderr);
    for f in ["a.txt", "b.txt", "b.copy", "tar.tar"] {
        assert!(!ws.path().join("ocib-out/bin").join(f).exists(), "{f} was downloaded");
    }
    // toplevel: the requested targets' outputs arrive, intermediates stay on the remote.
    let out = ok(build(ws.path(), tempfile::tempdir().unwrap().path(), &[&flag, "--remote_download_outputs=toplevel", "//:tar"]));
    assert!(ws.path().join("ocib-out/bin/tar.tar").is_file(), "{}", out.stderr);
    assert!(!ws.path().join("ocib-out/bin/a.txt").exists(), "{}", out.stderr);
}
