//! `ocib build` on testdata/goservices: Go services sharing library packages, x_defs across
//! packages, layers, a genrule and a stamped template. Uses the real Go toolchain.

use crate::common;

use std::path::Path;

use crate::common::{build, copy_workspace, executed_and_hits, ocib_env, require_go, run_program};

fn bin(ws: &Path, rel: &str) -> std::path::PathBuf {
    ws.join("ocib-bin").join(rel)
}

#[test]
fn builds_runs_and_stamps() {
    if !require_go() {
        return;
    }
    let ws = copy_workspace("goservices");
    let cache = tempfile::tempdir().unwrap();
    let out = build(ws.path(), cache.path(), &["//..."]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    for svc in ["api", "worker", "cli"] {
        let printed = run_program(&bin(ws.path(), &format!("cmd/{svc}/{svc}_/{svc}")));
        // Unstamped: x_defs with placeholders are dropped; the source defaults stay.
        assert_eq!(printed, format!("{svc} 0.0.0-dev (unknown) linux\n"));
    }
    assert!(out.stderr.contains("Target //cmd/api:api up-to-date:\n  ocib-bin/cmd/api/api_/api"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(bin(ws.path(), "config/settings.txt")).unwrap(), "services: api worker cli\n");
    assert_eq!(std::fs::read_to_string(bin(ws.path(), "config/release_notes.txt")).unwrap(), "Release 0.0.0\ncommit unstamped");

    // --stamp with a status command: STABLE_VERSION goes into every binary (x_defs of the
    // binary on a variable of another package), STABLE_COMMIT through the library's own x_defs.
    let stamped = ocib_env(
        ws.path(),
        &[
            "build",
            &format!("--disk_cache={}", cache.path().display()),
            "--noshow_progress",
            "--stamp",
            "--workspace_status_command=tools/status.sh",
            "//...",
        ],
        &[("RELEASE_VERSION", "1.2.3"), ("GOCACHE", common::go_cache().to_str().unwrap())],
    );
    assert_eq!(stamped.code, 0, "{}", stamped.stderr);
    assert_eq!(run_program(&bin(ws.path(), "cmd/worker/worker_/worker")), "worker 1.2.3 (cafe) linux\n");
    assert_eq!(std::fs::read_to_string(bin(ws.path(), "config/release_notes.txt")).unwrap(), "Release 1.2.3\ncommit unstamped");
    // Only the stamped actions re-ran: 3 links, the 3 layers holding them, the template.
    assert_eq!(executed_and_hits(&stamped).0, 7, "{}", stamped.stderr);
    let status = std::fs::read_to_string(ws.path().join("ocib-out/stable-status.txt")).unwrap();
    assert!(status.contains("STABLE_VERSION 1.2.3\n"), "{status}");

    // Unstamped again: back to the defaults, from the cache.
    let again = build(ws.path(), cache.path(), &["//..."]);
    assert_eq!(again.code, 0);
    assert_eq!(executed_and_hits(&again).0, 0, "{}", again.stderr);
    assert_eq!(run_program(&bin(ws.path(), "cmd/api/api_/api")), "api 0.0.0-dev (unknown) linux\n");
}

#[test]
fn no_op_build_executes_nothing_and_an_edit_reruns_only_its_service() {
    if !require_go() {
        return;
    }
    let ws = copy_workspace("goservices");
    let cache = tempfile::tempdir().unwrap();
    assert_eq!(build(ws.path(), cache.path(), &["//..."]).code, 0);
    let noop = build(ws.path(), cache.path(), &["//..."]);
    assert_eq!(noop.code, 0, "{}", noop.stderr);
    assert_eq!(executed_and_hits(&noop).0, 0, "{}", noop.stderr);

    let main = ws.path().join("cmd/api/main.go");
    let text = std::fs::read_to_string(&main).unwrap().replace("greet.Hello(\"api\")", "greet.Hello(\"api!\")");
    std::fs::write(&main, text).unwrap();
    // Outputs are hardlinks into the CAS: an output an action wrote anew has a new inode.
    let outputs = || -> std::collections::BTreeMap<String, u64> {
        use std::os::unix::fs::MetadataExt;
        walkdir::WalkDir::new(ws.path().join("ocib-out/bin"))
            .into_iter()
            .flatten()
            .filter(|e| e.file_type().is_file())
            .map(|e| (e.path().strip_prefix(ws.path()).unwrap().display().to_string(), e.metadata().unwrap().ino()))
            .collect()
    };
    let before = outputs();
    let edit = ocib_env(
        ws.path(),
        &["build", &format!("--disk_cache={}", cache.path().display()), "//..."],
        &[("GOCACHE", common::go_cache().to_str().unwrap())],
    );
    assert_eq!(edit.code, 0, "{}", edit.stderr);
    // That service's compiles (its go_library, and the binary's main package embedding it),
    // its link and its layer; nothing of the other services.
    assert_eq!(executed_and_hits(&edit).0, 4, "{}", edit.stderr);
    let after = outputs();
    let changed: Vec<&String> = after.iter().filter(|(path, ino)| before.get(*path) != Some(ino)).map(|(path, _)| path).collect();
    assert!(!changed.is_empty(), "{}", edit.stderr);
    for path in changed {
        assert!(path.starts_with("ocib-out/bin/cmd/api/"), "only //cmd/api's outputs may change: {path}");
    }
    assert!(run_program(&bin(ws.path(), "cmd/api/api_/api")).starts_with("api! "));

    // A source-only change that leaves the bytes as they were (touch) runs nothing.
    let lib = ws.path().join("lib/greet/greet.go");
    let content = std::fs::read(&lib).unwrap();
    std::fs::write(&lib, content).unwrap();
    assert_eq!(executed_and_hits(&build(ws.path(), cache.path(), &["//..."])).0, 0);
}

#[test]
fn clean_rebuilds_in_another_checkout_give_identical_bytes() {
    if !require_go() {
        return;
    }
    let a = copy_workspace("goservices");
    let b = copy_workspace("goservices");
    let (ca, cb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    assert_eq!(build(a.path(), ca.path(), &["//..."]).code, 0);
    assert_eq!(build(b.path(), cb.path(), &["//..."]).code, 0);
    for rel in ["cmd/api/api_/api", "cmd/api/api_layer.tar", "lib/greet/greet.a", "config/settings.txt", "cmd/cli/cli_lib.a"] {
        let x = std::fs::read(bin(a.path(), rel)).unwrap();
        let y = std::fs::read(bin(b.path(), rel)).unwrap();
        assert!(x == y, "{rel} differs between two checkouts");
    }
    // And after `ocib clean`, the same bytes again.
    let before = std::fs::read(bin(a.path(), "cmd/worker/worker_/worker")).unwrap();
    assert_eq!(common::ocib(a.path(), &["clean"]).code, 0);
    assert!(!a.path().join("ocib-out/bin").exists());
    assert_eq!(build(a.path(), ca.path(), &["//cmd/worker"]).code, 0);
    assert_eq!(std::fs::read(bin(a.path(), "cmd/worker/worker_/worker")).unwrap(), before);
}

#[test]
fn a_corrupt_cache_entry_is_rebuilt_not_used() {
    if !require_go() {
        return;
    }
    let ws = copy_workspace("goservices");
    let cache = tempfile::tempdir().unwrap();
    assert_eq!(build(ws.path(), cache.path(), &["//config:settings"]).code, 0);
    let out = bin(ws.path(), "config/settings.txt");
    // Truncate the stored output through its CAS entry (ocib-bin hardlinks it).
    let cas_file = walkdir::WalkDir::new(cache.path().join("cas"))
        .into_iter()
        .flatten()
        .find(|e| e.file_type().is_file() && std::fs::read(e.path()).ok() == std::fs::read(&out).ok())
        .expect("CAS entry of settings.txt");
    let mut perms = std::fs::metadata(cas_file.path()).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o644);
    std::fs::set_permissions(cas_file.path(), perms).unwrap();
    std::fs::write(cas_file.path(), b"trunc").unwrap();
    let rebuilt = build(ws.path(), cache.path(), &["//config:settings"]);
    assert_eq!(rebuilt.code, 0, "{}", rebuilt.stderr);
    assert_eq!(executed_and_hits(&rebuilt), (1, 0), "{}", rebuilt.stderr);
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "services: api worker cli\n");
}

#[test]
fn killed_build_then_rebuild_and_concurrent_builds_end_correctly() {
    if !require_go() {
        return;
    }
    let reference = copy_workspace("goservices");
    let ref_cache = tempfile::tempdir().unwrap();
    assert_eq!(build(reference.path(), ref_cache.path(), &["//..."]).code, 0);

    let ws = copy_workspace("goservices");
    let cache = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ocib"))
        .args(["--nohome_rc", "--nosystem_rc", "build", "--noshow_progress", &format!("--disk_cache={}", cache.path().display()), "//..."])
        .env("GOCACHE", common::go_cache())
        .current_dir(ws.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it mid-build (the stdlib and compiles take well over this).
    std::thread::sleep(std::time::Duration::from_millis(700));
    child.kill().unwrap();
    let _ = child.wait();
    let rebuilt = build(ws.path(), cache.path(), &["//..."]);
    assert_eq!(rebuilt.code, 0, "{}", rebuilt.stderr);
    for rel in ["cmd/api/api_/api", "cmd/worker/worker_layer.tar", "config/settings.txt"] {
        assert_eq!(std::fs::read(bin(ws.path(), rel)).unwrap(), std::fs::read(bin(reference.path(), rel)).unwrap(), "{rel}");
    }

    // Two builds of one workspace at once: one waits for the other's lock; both succeed.
    let ws2 = copy_workspace("goservices");
    let cache2 = tempfile::tempdir().unwrap();
    let spawn = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_ocib"))
            .args([
                "--nohome_rc",
                "--nosystem_rc",
                "build",
                "--noshow_progress",
                &format!("--disk_cache={}", cache2.path().display()),
                "//...",
            ])
            .env("GOCACHE", common::go_cache())
            .current_dir(ws2.path())
            .output()
            .unwrap()
    };
    let (first, second) = std::thread::scope(|s| {
        let a = s.spawn(spawn);
        let b = s.spawn(spawn);
        (a.join().unwrap(), b.join().unwrap())
    });
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    assert_eq!(run_program(&bin(ws2.path(), "cmd/cli/cli_/cli")), "cli 0.0.0-dev (unknown) linux\n");
}
