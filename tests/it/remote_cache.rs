//! The remote cache (issue 15) against real servers on loopback: nginx WebDAV speaking Bazel's
//! HTTP cache protocol, and BuildGrid speaking REAPI v2 over gRPC (with Bazel 4.2.3 as a second
//! client of the same server config). Scenarios: a fresh clone with an empty disk cache builds
//! from remote hits only, byte-identical; the server lost mid-build or down at the start; a
//! corrupted blob on the server; credentials and headers.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::common::remote::{self, Server, counts, files_under};
use crate::common::{self, Output, copy_workspace, fault_proxy, require_go};

/// A prefix of its own on the shared server for each test (and each run of it).
fn prefix(name: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!("{name}-{}-{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

fn http_url(server: &Server, prefix: &str) -> String {
    format!("http://127.0.0.1:{}/{prefix}", server.port)
}

fn grpc_url(server: &Server) -> String {
    format!("grpc://127.0.0.1:{}", server.port)
}

/// `ocib build` with its own disk cache and the given extra flags.
fn build(ws: &Path, cache: &Path, args: &[&str]) -> Output {
    common::build(ws, cache, args)
}

fn ok(out: Output) -> Output {
    assert_eq!(out.code, 0, "{}", out.stderr);
    out
}

fn warnings(out: &Output) -> usize {
    out.stderr.lines().filter(|l| l.starts_with("WARNING: Remote Cache")).count()
}

/// A workspace of genrules: independent ones, a chain, an executable, and one output larger
/// than gRPC's 4 MiB batch limit (ByteStream).
fn genrules() -> tempfile::TempDir {
    let mut build = String::from(
        "genrule(name = \"a\", outs = [\"a.txt\"], cmd = \"echo alpha > $@\")\n\
         genrule(name = \"b\", srcs = [\":a\", \"src.txt\"], outs = [\"b.txt\"], cmd = \"cat $(SRCS) > $@\")\n\
         genrule(name = \"exe\", outs = [\"run.sh\"], cmd = \"printf '#!/bin/sh\\\\necho hi\\\\n' > $@; chmod +x $@\", executable = True)\n\
         genrule(name = \"big\", outs = [\"big.bin\"], cmd = \"head -c 6000000 /dev/zero | tr '\\\\\\\\0' x > $@\")\n",
    );
    for i in 0..6 {
        build.push_str(&format!(
            "genrule(name = \"n{i}\", srcs = [\":b\"], outs = [\"n{i}.txt\"], cmd = \"cat $< > $@; echo {i} >> $@\")\n"
        ));
    }
    common::workspace(&[("MODULE.bazel", ""), ("BUILD.bazel", &build), ("src.txt", "source bytes\n")])
}

const GENRULE_TARGETS: &[&str] = &["//:a", "//:b", "//:exe", "//:big", "//:n0", "//:n1", "//:n2", "//:n3", "//:n4", "//:n5"];

/// Builds `targets` of a workspace in two fresh checkouts with fresh disk caches against the
/// remote `url`: the first runs everything and uploads, the second gets every action from the
/// remote, and both end with byte-identical outputs.
fn fresh_clone_gets_everything_from_the_remote(make: &dyn Fn() -> tempfile::TempDir, targets: &[&str], url: &str) {
    fresh_clone_gets_everything_from_the_remote_with(make, targets, url, &[]);
}

/// [`fresh_clone_gets_everything_from_the_remote`] with more flags (TLS files).
fn fresh_clone_gets_everything_from_the_remote_with(make: &dyn Fn() -> tempfile::TempDir, targets: &[&str], url: &str, flags: &[&str]) {
    let flag = format!("--remote_cache={url}");
    let mut args = vec![flag.as_str()];
    args.extend_from_slice(flags);
    args.extend_from_slice(targets);
    let a = make();
    let cache_a = tempfile::tempdir().unwrap();
    let first = ok(build(a.path(), cache_a.path(), &args));
    let (remote_hits, _, executed) = counts(&first.stderr);
    assert!(remote_hits == 0 && executed > 0, "{}", first.stderr);
    assert_eq!(warnings(&first), 0, "{}", first.stderr);

    let b = make();
    let cache_b = tempfile::tempdir().unwrap();
    let second = ok(build(b.path(), cache_b.path(), &args));
    assert_eq!(counts(&second.stderr), (executed, 0, 0), "every action is a remote hit:\n{}", second.stderr);
    assert_eq!(warnings(&second), 0, "{}", second.stderr);
    let (fa, fb) = (files_under(&a.path().join("ocib-out/bin")), files_under(&b.path().join("ocib-out/bin")));
    assert!(!fa.is_empty());
    assert_eq!(fa.keys().collect::<Vec<_>>(), fb.keys().collect::<Vec<_>>());
    for (path, bytes) in &fa {
        assert!(fb[path] == *bytes, "{path} differs between the checkouts");
    }
    // Executable outputs stay executable.
    for (rel, _) in fa.iter().filter(|(p, _)| p.ends_with("run.sh")) {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(b.path().join("ocib-out/bin").join(rel)).unwrap().permissions().mode();
        assert!(mode & 0o111 != 0, "{rel} lost its executable bit");
    }
    // And again: everything from the local disk cache now.
    let third = ok(build(b.path(), cache_b.path(), &args));
    assert_eq!(counts(&third.stderr), (0, executed, 0), "{}", third.stderr);
}

#[test]
fn http_cache_fresh_clone_builds_the_images_from_remote_hits_only() {
    if !require_go() {
        return;
    }
    let server = remote::nginx();
    let url = http_url(server, &prefix("images"));
    fresh_clone_gets_everything_from_the_remote(
        &|| copy_workspace("images"),
        &["//cmd/worker:image", "//cmd/worker:image_tarball", "//cmd/worker:stamped_tags"],
        &url,
    );
}

#[test]
fn http_cache_fresh_clone_builds_genrules_from_remote_hits_only() {
    let server = remote::nginx();
    let p = prefix("genrules");
    fresh_clone_gets_everything_from_the_remote(&genrules, GENRULE_TARGETS, &http_url(server, &p));
    // Bazel's layout on the server: /ac/<sha256> and /cas/<sha256>.
    let root = server.root().join(&p);
    let names = |d: &str| std::fs::read_dir(root.join(d)).map(|r| r.count()).unwrap_or(0);
    assert!(names("ac") >= GENRULE_TARGETS.len() && names("cas") > GENRULE_TARGETS.len(), "{}", root.display());
}

#[test]
fn http_cache_sends_basic_auth_from_the_url_and_headers_but_never_prints_the_password() {
    let server = remote::nginx();
    let ws = genrules();
    // Right credentials: stored under /private/.
    let p = prefix("auth");
    let url = format!("http://{}:{}@127.0.0.1:{}/private/{p}", remote::USER, remote::PASSWORD, server.port);
    let out = ok(build(ws.path(), tempfile::tempdir().unwrap().path(), &[&format!("--remote_cache={url}"), "//:b"]));
    assert_eq!(warnings(&out), 0, "{}", out.stderr);
    assert!(server.root().join("private").join(&p).join("ac").is_dir());

    // A wrong password: one warning (401), the build goes on locally, the password never shows.
    let bad = format!("http://{}:wrong-{}@127.0.0.1:{}/private/{p}x", remote::USER, remote::PASSWORD, server.port);
    let out = ok(build(ws.path(), tempfile::tempdir().unwrap().path(), &[&format!("--remote_cache={bad}"), "//:n0", "//:n1"]));
    assert_eq!(warnings(&out), 1, "{}", out.stderr);
    assert!(out.stderr.contains("401"), "{}", out.stderr);
    assert!(!out.stderr.contains(remote::PASSWORD), "the password leaked:\n{}", out.stderr);

    // /hdr/ wants a header: without it 403 (one warning), with --remote_cache_header it works.
    let p = prefix("hdr");
    let url = format!("--remote_cache=http://127.0.0.1:{}/hdr/{p}", server.port);
    let out = ok(build(ws.path(), tempfile::tempdir().unwrap().path(), &[&url, "//:n2"]));
    assert_eq!(warnings(&out), 1, "{}", out.stderr);
    let header = format!("--remote_cache_header=X-Cache-Token={}", remote::HEADER_TOKEN);
    let out = ok(build(ws.path(), tempfile::tempdir().unwrap().path(), &[&url, &header, "//:n3"]));
    assert_eq!(warnings(&out), 0, "{}", out.stderr);
    assert!(server.root().join("hdr").join(&p).join("cas").is_dir());
}

#[test]
fn remote_accept_cached_and_upload_local_results_are_honoured() {
    let server = remote::nginx();
    let p = prefix("flags");
    let url = format!("--remote_cache={}", http_url(server, &p));
    // Nothing uploaded with --noremote_upload_local_results.
    let ws = genrules();
    ok(build(ws.path(), tempfile::tempdir().unwrap().path(), &[&url, "--noremote_upload_local_results", "//:b"]));
    assert!(!server.root().join(&p).join("ac").exists());
    ok(build(ws.path(), tempfile::tempdir().unwrap().path(), &[&url, "//:b"]));
    assert!(server.root().join(&p).join("ac").is_dir());
    // With --remote_accept_cached=false a fresh cache runs everything.
    let fresh = genrules();
    let out = ok(build(fresh.path(), tempfile::tempdir().unwrap().path(), &[&url, "--remote_accept_cached=false", "//:b"]));
    assert_eq!(counts(&out.stderr), (0, 0, 2), "{}", out.stderr);
    let out = ok(build(genrules().path(), tempfile::tempdir().unwrap().path(), &[&url, "//:b"]));
    assert_eq!(counts(&out.stderr), (2, 0, 0), "{}", out.stderr);
}

#[test]
fn server_lost_mid_build_falls_back_to_local_with_one_warning() {
    let server = remote::nginx();
    // A proxy that forwards the first requests, then drops every connection: the server is
    // gone in the middle of the build.
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let port = fault_proxy::start(
        server.port,
        Arc::new(
            move |_head: &fault_proxy::Head| {
                if counter.fetch_add(1, Ordering::SeqCst) < 4 { fault_proxy::Action::Forward } else { fault_proxy::Action::Drop }
            },
        ),
    );
    let ws = genrules();
    let url = format!("--remote_cache=http://127.0.0.1:{port}/{}", prefix("lost"));
    let mut args = vec![url.as_str(), "--jobs=1"];
    args.extend_from_slice(GENRULE_TARGETS);
    let out = ok(build(ws.path(), tempfile::tempdir().unwrap().path(), &args));
    assert_eq!(warnings(&out), 1, "exactly one warning:\n{}", out.stderr);
    assert!(seen.load(Ordering::SeqCst) > 4, "the build reached the server: {}", out.stderr);
    let (_, _, executed) = counts(&out.stderr);
    assert_eq!(executed, GENRULE_TARGETS.len(), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(ws.path().join("ocib-bin/n5.txt")).unwrap(), "alpha\nsource bytes\n5\n");
}

#[test]
fn server_down_at_the_start_is_a_warning_for_http_and_an_error_for_grpc_unless_falling_back() {
    let dead = remote::free_port();
    let ws = genrules();
    let out = ok(build(ws.path(), tempfile::tempdir().unwrap().path(), &[&format!("--remote_cache=http://127.0.0.1:{dead}/x"), "//:b"]));
    assert_eq!(warnings(&out), 1, "{}", out.stderr);

    let grpc = format!("--remote_cache=grpc://127.0.0.1:{dead}");
    let out = build(ws.path(), tempfile::tempdir().unwrap().path(), &[&grpc, "//:n0"]);
    assert_eq!(out.code, 34, "Bazel's remote error exit code:\n{}", out.stderr);
    assert!(out.stderr.contains("ERROR: cannot use the remote cache") && out.stderr.contains("GetCapabilities"), "{}", out.stderr);
    let out = ok(build(ws.path(), tempfile::tempdir().unwrap().path(), &[&grpc, "--remote_local_fallback", "//:n0"]));
    assert_eq!(warnings(&out), 1, "{}", out.stderr);
}

/// The server file holding the blob with this content (Bazel's HTTP layout under nginx).
fn corrupt_http_blob(root: &Path, content: &[u8]) -> std::path::PathBuf {
    let digest = ocib::exec::digest::sha256_hex(content);
    root.join("cas").join(digest)
}

#[test]
fn corrupted_blob_on_the_http_server_is_detected_rebuilt_and_repaired() {
    let server = remote::nginx();
    let p = prefix("corrupt");
    let url = format!("--remote_cache={}", http_url(server, &p));
    let a = genrules();
    ok(build(a.path(), tempfile::tempdir().unwrap().path(), &[&url, "//:n0"]));
    let blob = corrupt_http_blob(&server.root().join(&p), b"alpha\n");
    assert!(blob.is_file(), "{}", blob.display());
    std::fs::write(&blob, b"ALPHA\n").unwrap();

    let b = genrules();
    let out = ok(build(b.path(), tempfile::tempdir().unwrap().path(), &[&url, "//:n0"]));
    // //:a's output is corrupt on the server: //:a runs again; //:b and //:n0 are hits.
    assert_eq!(counts(&out.stderr), (2, 0, 1), "{}", out.stderr);
    assert!(out.stderr.contains("arrived as"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(b.path().join("ocib-bin/a.txt")).unwrap(), "alpha\n");
    assert_eq!(std::fs::read(&blob).unwrap(), b"alpha\n", "the upload repaired the server's copy");
}

#[test]
fn grpc_cache_on_buildgrid_fresh_clone_builds_from_remote_hits_only() {
    let server = remote::buildgrid();
    // Outputs differ per run so that the shared server starts without them.
    let marker = prefix("grpc");
    let make = || {
        let ws = genrules();
        std::fs::write(ws.path().join("src.txt"), format!("{marker}\n")).unwrap();
        ws
    };
    fresh_clone_gets_everything_from_the_remote(&make, GENRULE_TARGETS, &grpc_url(server));
}

#[test]
fn grpc_cache_on_buildgrid_builds_the_images() {
    if !require_go() {
        return;
    }
    let server = remote::buildgrid();
    // A configuration file of its own per run (both checkouts the same), so the shared server
    // starts without its layer.
    let marker = prefix("img");
    let make = || {
        let ws = copy_workspace("images");
        std::fs::write(ws.path().join("cmd/worker/worker.conf"), format!("run = {marker}\n")).unwrap();
        ws
    };
    fresh_clone_gets_everything_from_the_remote(&make, &["//cmd/worker:image", "//cmd/worker:image_tarball"], &grpc_url(server));
}

#[test]
fn bazel_uses_the_same_buildgrid_config() {
    let has_bazel = std::process::Command::new("bazel").arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    assert!(has_bazel, "this test needs Bazel 4.2.3 as `bazel` (.ci/run installs Debian's bazel-bootstrap)");
    let server = remote::buildgrid();
    let marker = prefix("bazel");
    let ws = common::workspace(&[
        ("WORKSPACE", ""),
        ("BUILD.bazel", &format!("genrule(name = \"g\", outs = [\"g.txt\"], cmd = \"echo {marker} > $@\")\n")),
    ]);
    let user_root = tempfile::tempdir().unwrap();
    let bazel = |args: &[&str]| {
        let out = std::process::Command::new("bazel")
            .arg(format!("--output_user_root={}", user_root.path().display()))
            // Debian's /etc/bazel/bazelrc sets the install base this Bazel needs: keep rc files.
            .args(args)
            .current_dir(ws.path())
            .output()
            .expect("run bazel");
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "bazel {args:?} failed:\n{stderr}");
        stderr
    };
    let url = format!("--remote_cache={}", grpc_url(server));
    let first = bazel(&["build", &url, "//:g"]);
    assert!(first.contains("1 linux-sandbox") || first.contains("1 local") || first.contains("processes"), "{first}");
    bazel(&["clean"]);
    let second = bazel(&["build", &url, "//:g"]);
    assert!(second.contains("1 remote cache hit"), "Bazel finds its own result on the server:\n{second}");
    let _ = std::process::Command::new("bazel")
        .arg(format!("--output_user_root={}", user_root.path().display()))
        .arg("shutdown")
        .current_dir(ws.path())
        .output();
}

#[test]
fn corrupted_blob_on_buildgrid_is_detected_and_rebuilt() {
    // A server of its own: the blob corrupted here is one other tests' builds produce too.
    let server = remote::start_buildgrid();
    let url = format!("--remote_cache={}", grpc_url(&server));
    let a = genrules();
    ok(build(a.path(), tempfile::tempdir().unwrap().path(), &[&url, "//:n0"]));
    // BuildGrid's disk storage: <root>/cas/objects/<2 hex>/<the other 62>.
    let hash = ocib::exec::digest::sha256_hex(b"alpha\n");
    let blob = server.root().join("cas/objects").join(&hash[..2]).join(&hash[2..]);
    assert!(blob.is_file(), "{}", blob.display());
    std::fs::write(&blob, b"ALPHA\n").unwrap();

    let b = genrules();
    let out = ok(build(b.path(), tempfile::tempdir().unwrap().path(), &[&url, "//:n0"]));
    assert_eq!(counts(&out.stderr), (2, 0, 1), "{}", out.stderr);
    assert!(out.stderr.contains("arrived as"), "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(b.path().join("ocib-bin/a.txt")).unwrap(), "alpha\n");
}

#[test]
fn buildgrid_killed_mid_build_falls_back_to_local_with_one_warning() {
    let mut server = remote::start_buildgrid();
    // A chain of slow actions, one at a time: the server dies after the first upload.
    let mut build_file = String::from("genrule(name = \"s0\", outs = [\"s0.txt\"], cmd = \"sleep 1; echo 0 > $@\")\n");
    for i in 1..5 {
        build_file.push_str(&format!(
            "genrule(name = \"s{i}\", srcs = [\":s{}\"], outs = [\"s{i}.txt\"], cmd = \"sleep 1; cat $< > $@; echo {i} >> $@\")\n",
            i - 1
        ));
    }
    let ws = common::workspace(&[("MODULE.bazel", ""), ("BUILD.bazel", &build_file)]);
    let cache = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_ocib"))
        .args(["--nohome_rc", "--nosystem_rc", "build", "--noshow_progress", "--jobs=1"])
        .arg(format!("--disk_cache={}", cache.path().display()))
        .arg(format!("--remote_cache={}", grpc_url(&server)))
        .arg("//:s4")
        .current_dir(ws.path())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start ocib");
    // Wait for the first upload to land in BuildGrid's storage, then stop the server.
    let objects = server.root().join("cas/objects");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while walkdir::WalkDir::new(&objects).into_iter().flatten().filter(|e| e.file_type().is_file()).count() == 0 {
        assert!(std::time::Instant::now() < deadline, "no upload reached the server");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    server.stop();
    let out = child.wait_with_output().expect("wait for ocib");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(stderr.lines().filter(|l| l.starts_with("WARNING: Remote Cache")).count(), 1, "one warning:\n{stderr}");
    assert_eq!(std::fs::read_to_string(ws.path().join("ocib-bin/s4.txt")).unwrap(), "0\n1\n2\n3\n4\n");
}

/// `--remote_download_outputs=toplevel|minimal` (Bazel's "Build without the Bytes"): machine A
/// builds the chain a → b → n0 and uploads; a fresh clone with an empty disk cache and
/// `toplevel` gets all three from the remote and downloads only n0.txt (byte-identical), the
/// intermediate a.txt and b.txt stay remote. An action then run locally on b.txt (a new target)
/// brings just that input down. `minimal` downloads nothing.
fn download_outputs_toplevel_leaves_intermediates_on_the_remote(genrules: &dyn Fn() -> tempfile::TempDir, url: &str) {
    let flag = format!("--remote_cache={url}");
    let a = genrules();
    let first = ok(build(a.path(), tempfile::tempdir().unwrap().path(), &[&flag, "//:n0"]));
    assert_eq!(counts(&first.stderr), (0, 0, 3), "{}", first.stderr);
    let built = files_under(&a.path().join("ocib-out/bin"));
    let file = |files: &std::collections::BTreeMap<String, Vec<u8>>, name: &str| {
        files.iter().find(|(p, _)| Path::new(p).file_name().is_some_and(|n| n == name)).map(|(_, b)| b.clone())
    };
    assert!(file(&built, "a.txt").is_some() && file(&built, "b.txt").is_some());

    let b = genrules();
    let cache_b = tempfile::tempdir().unwrap();
    let second = ok(build(b.path(), cache_b.path(), &[&flag, "--remote_download_outputs=toplevel", "//:n0"]));
    assert_eq!(counts(&second.stderr), (3, 0, 0), "every action is a remote hit:\n{}", second.stderr);
    assert_eq!(warnings(&second), 0, "{}", second.stderr);
    let got = files_under(&b.path().join("ocib-out/bin"));
    assert_eq!(file(&got, "n0.txt"), file(&built, "n0.txt"), "the top-level output is downloaded, byte-identical");
    assert_eq!(file(&got, "a.txt"), None, "intermediate outputs stay on the remote: {:?}", got.keys());
    assert_eq!(file(&got, "b.txt"), None, "intermediate outputs stay on the remote: {:?}", got.keys());
    // Nothing of a.txt or b.txt reached the local CAS either.
    let cas: Vec<Vec<u8>> = files_under(&cache_b.path().join("cas")).into_values().collect();
    for name in ["a.txt", "b.txt"] {
        assert!(!cas.contains(&file(&built, name).unwrap()), "{name} was downloaded into the disk cache");
    }

    // A new target on b.txt misses the remote and runs here: b.txt is fetched for it only.
    let build_file = b.path().join("BUILD.bazel");
    let mut text = std::fs::read_to_string(&build_file).unwrap();
    text.push_str("genrule(name = \"n9\", srcs = [\":b\"], outs = [\"n9.txt\"], cmd = \"cat $< > $@; echo 9 >> $@\")\n");
    std::fs::write(&build_file, text).unwrap();
    let third = ok(build(b.path(), cache_b.path(), &[&flag, "--remote_download_toplevel", "//:n9"]));
    assert_eq!(counts(&third.stderr), (2, 0, 1), "{}", third.stderr);
    let got = files_under(&b.path().join("ocib-out/bin"));
    let mut n9 = file(&built, "b.txt").unwrap();
    n9.extend_from_slice(b"9\n");
    assert_eq!(file(&got, "n9.txt"), Some(n9));
    assert_eq!(file(&got, "b.txt"), file(&built, "b.txt"), "the local action's input was downloaded");
    assert_eq!(file(&got, "a.txt"), None, "{:?}", got.keys());

    // `minimal`: not even the top-level output.
    let c = genrules();
    let fourth = ok(build(c.path(), tempfile::tempdir().unwrap().path(), &[&flag, "--remote_download_minimal", "//:n0"]));
    assert_eq!(counts(&fourth.stderr), (3, 0, 0), "{}", fourth.stderr);
    let got = files_under(&c.path().join("ocib-out/bin"));
    assert!(["a.txt", "b.txt", "n0.txt"].iter().all(|n| file(&got, n).is_none()), "{:?}", got.keys());
    // But `ocib run` gets what it runs.
    ok(build(a.path(), tempfile::tempdir().unwrap().path(), &[&flag, "//:exe"]));
    let cache_c = tempfile::tempdir().unwrap();
    let disk = format!("--disk_cache={}", cache_c.path().display());
    let run = common::ocib(c.path(), &["run", &disk, "--noshow_progress", &flag, "--remote_download_minimal", "//:exe"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(counts(&run.stderr), (1, 0, 0), "{}", run.stderr);
    assert!(run.stdout.starts_with("hi"), "{}", run.stdout);
}

#[test]
fn http_cache_download_outputs_toplevel_leaves_intermediates_on_the_remote() {
    let server = remote::nginx();
    download_outputs_toplevel_leaves_intermediates_on_the_remote(&genrules, &http_url(server, &prefix("toplevel")));
}

#[test]
fn grpc_cache_download_outputs_toplevel_leaves_intermediates_on_the_remote() {
    let server = remote::buildgrid();
    // Outputs of their own (a.txt and run.sh too), so that the shared server starts without
    // them and the other tests on it do not find them.
    let marker = prefix("toplevel");
    let make = || {
        let ws = genrules();
        let build_file = ws.path().join("BUILD.bazel");
        let text = std::fs::read_to_string(&build_file)
            .unwrap()
            .replace("echo alpha", &format!("echo {marker}"))
            .replace("echo hi", &format!("echo hi {marker}"));
        std::fs::write(&build_file, text).unwrap();
        ws
    };
    download_outputs_toplevel_leaves_intermediates_on_the_remote(&make, &grpc_url(server));
}

/// `toplevel` with directory outputs: machine A builds the image (its OCI layout is a
/// directory output); a fresh clone asks for the tarball, whose action A never ran: the
/// image's layers and layout come from the remote as digests only, are fetched for the
/// tarball action that runs locally, and the tarball equals A's. The Go binary and its layer
/// stay on the remote.
#[test]
fn http_cache_download_outputs_toplevel_fetches_directory_inputs_of_local_actions() {
    if !require_go() {
        return;
    }
    let server = remote::nginx();
    let flag = format!("--remote_cache={}", http_url(server, &prefix("toplevel-images")));
    let a = copy_workspace("images");
    let cache_a = tempfile::tempdir().unwrap();
    ok(build(a.path(), cache_a.path(), &[&flag, "//cmd/worker:image"]));

    let b = copy_workspace("images");
    let out =
        ok(build(b.path(), tempfile::tempdir().unwrap().path(), &[&flag, "--remote_download_toplevel", "//cmd/worker:image_tarball"]));
    let (remote_hits, disk_hits, executed) = counts(&out.stderr);
    assert!(remote_hits > 0 && disk_hits == 0 && executed > 0, "{}", out.stderr);
    assert_eq!(warnings(&out), 0, "{}", out.stderr);
    let got = files_under(&b.path().join("ocib-out/bin/cmd/worker"));
    assert!(got.contains_key("image/index.json"), "the layout was fetched for the tarball action: {:?}", got.keys());

    ok(build(a.path(), cache_a.path(), &[&flag, "//cmd/worker:image_tarball"]));
    let want = files_under(&a.path().join("ocib-out/bin/cmd/worker"));
    let tarballs: Vec<&String> = want.keys().filter(|k| k.ends_with(".tar") && k.contains("image_tarball")).collect();
    assert!(!tarballs.is_empty(), "{:?}", want.keys());
    for intermediate in ["worker_/worker", "worker_/worker.a", "tar_worker.tar", "image.env.txt"] {
        assert!(want.contains_key(intermediate), "{intermediate} not in {:?}", want.keys());
        assert!(!got.contains_key(intermediate), "{intermediate} stays on the remote: {:?}", got.keys());
    }
    for t in tarballs {
        assert!(got.get(t) == want.get(t), "{t} differs");
    }
}

/// `grpcs://` to BuildGrid serving TLS with a certificate of a test CA: with
/// `--tls_certificate` (the CA) a fresh clone gets everything from the remote; without it the
/// server is not trusted: exit 34 with an error that says so, or with `--remote_local_fallback`
/// one warning and a local build.
#[test]
fn grpcs_cache_on_buildgrid_trusts_tls_certificate_and_nothing_else() {
    let pki = remote::make_pki();
    let server = remote::start_buildgrid_with(Some(pki.server(false)));
    let url = format!("grpcs://127.0.0.1:{}", server.port);
    let marker = prefix("grpcs");
    let make = || {
        let ws = genrules();
        std::fs::write(ws.path().join("src.txt"), format!("{marker}\n")).unwrap();
        ws
    };
    let ca = format!("--tls_certificate={}", pki.ca().display());
    fresh_clone_gets_everything_from_the_remote_with(&make, GENRULE_TARGETS, &url, &[&ca]);

    // Not trusted: the system's CAs did not sign it, nor did the CA given.
    let ws = make();
    let flag = format!("--remote_cache={url}");
    for extra in [vec![], vec![format!("--tls_certificate={}", pki.other_ca().display())]] {
        let mut args: Vec<&str> = vec![&flag, "//:b"];
        args.extend(extra.iter().map(String::as_str));
        let out = build(ws.path(), tempfile::tempdir().unwrap().path(), &args);
        assert_eq!(out.code, 34, "Bazel's remote error exit code:\n{}", out.stderr);
        assert!(
            out.stderr.contains("ERROR: cannot use the remote cache")
                && out.stderr.contains("UnknownIssuer")
                && out.stderr.contains("not signed by a CA"),
            "the error says the certificate is the problem:\n{}",
            out.stderr
        );
        args.push("--remote_local_fallback");
        let out = ok(build(ws.path(), tempfile::tempdir().unwrap().path(), &args));
        assert_eq!(warnings(&out), 1, "{}", out.stderr);
        assert_eq!(counts(&out.stderr).0, 0, "{}", out.stderr);
    }
}

/// BuildGrid requiring client certificates (`tls-client-certs`): without
/// `--tls_client_certificate`/`--tls_client_key` the handshake fails (exit 34); with them the
/// cache works. The key's bytes never show, and a certificate without a key is a usage error.
#[test]
fn grpcs_cache_with_client_certificates_on_buildgrid() {
    let pki = remote::make_pki();
    let server = remote::start_buildgrid_with(Some(pki.server(true)));
    let flag = format!("--remote_cache=grpcs://127.0.0.1:{}", server.port);
    let ca = format!("--tls_certificate={}", pki.ca().display());
    let cert = format!("--tls_client_certificate={}", pki.client_cert().display());
    let key = format!("--tls_client_key={}", pki.client_key().display());
    let ws = genrules();
    std::fs::write(ws.path().join("src.txt"), format!("{}\n", prefix("mtls"))).unwrap();

    let out = build(ws.path(), tempfile::tempdir().unwrap().path(), &[&flag, &ca, "//:b"]);
    assert_eq!(out.code, 34, "{}", out.stderr);
    assert!(
        out.stderr.contains("ERROR: cannot use the remote cache") && out.stderr.contains("give it with --tls_client_certificate"),
        "{}",
        out.stderr
    );

    let out = build(ws.path(), tempfile::tempdir().unwrap().path(), &[&flag, &ca, &cert, "//:b"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--tls_client_certificate and --tls_client_key must be given together"), "{}", out.stderr);

    let first = ok(build(ws.path(), tempfile::tempdir().unwrap().path(), &[&flag, &ca, &cert, &key, "//:b"]));
    assert_eq!(counts(&first.stderr), (0, 0, 2), "{}", first.stderr);
    assert_eq!(warnings(&first), 0, "{}", first.stderr);
    let second = ok(build(ws.path(), tempfile::tempdir().unwrap().path(), &[&flag, &ca, &cert, &key, "//:b"]));
    assert_eq!(counts(&second.stderr), (2, 0, 0), "{}", second.stderr);

    let secret = std::fs::read_to_string(pki.client_key()).unwrap();
    let body: String = secret.lines().filter(|l| !l.starts_with("-----")).collect();
    for out in [&first, &second] {
        assert!(!out.stderr.contains(&body[..20]) && !out.stdout.contains(&body[..20]), "the key leaked");
    }
}

/// `https://` to nginx WebDAV with TLS: trusted through `--tls_certificate`, round trip from a
/// fresh clone; not trusted: one warning naming the certificate problem and a local build (an
/// HTTP cache is not probed at the start, as in Bazel); a server that requires client
/// certificates gets one with `--tls_client_certificate`/`--tls_client_key`.
#[test]
fn https_cache_on_nginx_with_tls_certificate_and_client_certificates() {
    let pki = remote::make_pki();
    let server = remote::start_nginx_with(Some(pki.server(false)));
    let url = format!("https://127.0.0.1:{}/{}", server.port, prefix("https"));
    let ca = format!("--tls_certificate={}", pki.ca().display());
    fresh_clone_gets_everything_from_the_remote_with(&genrules, GENRULE_TARGETS, &url, &[&ca]);

    let out = ok(build(genrules().path(), tempfile::tempdir().unwrap().path(), &[&format!("--remote_cache={url}"), "//:b"]));
    assert_eq!(warnings(&out), 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("UnknownIssuer") && out.stderr.contains("--tls_certificate=FILE"),
        "the warning says the certificate is the problem:\n{}",
        out.stderr
    );
    assert_eq!(counts(&out.stderr), (0, 0, 2), "{}", out.stderr);

    let mutual = remote::start_nginx_with(Some(pki.server(true)));
    let url = format!("--remote_cache=https://127.0.0.1:{}/{}", mutual.port, prefix("mtls"));
    let cert = format!("--tls_client_certificate={}", pki.client_cert().display());
    let key = format!("--tls_client_key={}", pki.client_key().display());
    let out = ok(build(genrules().path(), tempfile::tempdir().unwrap().path(), &[&url, &ca, "//:b"]));
    assert_eq!(warnings(&out), 1, "nginx refuses a client without a certificate:\n{}", out.stderr);
    let out = ok(build(genrules().path(), tempfile::tempdir().unwrap().path(), &[&url, &ca, &cert, &key, "//:b"]));
    assert_eq!((warnings(&out), counts(&out.stderr)), (0, (0, 0, 2)), "{}", out.stderr);
    let out = ok(build(genrules().path(), tempfile::tempdir().unwrap().path(), &[&url, &ca, &cert, &key, "//:b"]));
    assert_eq!((warnings(&out), counts(&out.stderr)), (0, (2, 0, 0)), "{}", out.stderr);
}

/// `--remote_download_regex` (Bazel 6+): under `minimal`, the outputs whose whole exec path
/// matches are downloaded (byte-identical) and the others stay on the remote; a pattern that
/// matches only part of the path downloads nothing; a bad pattern is a usage error.
#[test]
fn remote_download_regex_downloads_matching_outputs_under_minimal() {
    let server = remote::nginx();
    let flag = format!("--remote_cache={}", http_url(server, &prefix("regex")));
    let a = genrules();
    ok(build(a.path(), tempfile::tempdir().unwrap().path(), &[&flag, "//:n0", "//:n1"]));
    let built = files_under(&a.path().join("ocib-out/bin"));

    let b = genrules();
    let out = ok(build(
        b.path(),
        tempfile::tempdir().unwrap().path(),
        &[
            &flag,
            "--remote_download_minimal",
            r"--remote_download_regex=.*/b\.txt",
            "--remote_download_regex=ocib-out/bin/n1.*",
            "//:n0",
            "//:n1",
        ],
    ));
    assert_eq!(counts(&out.stderr), (4, 0, 0), "{}", out.stderr);
    assert_eq!(warnings(&out), 0, "{}", out.stderr);
    let got = files_under(&b.path().join("ocib-out/bin"));
    assert_eq!(got.keys().collect::<Vec<_>>(), ["b.txt", "n1.txt"], "only the matching outputs are downloaded");
    assert!(got["b.txt"] == built["b.txt"] && got["n1.txt"] == built["n1.txt"]);

    // A local action on a downloaded output and on one left on the remote.
    let build_file = b.path().join("BUILD.bazel");
    let mut text = std::fs::read_to_string(&build_file).unwrap();
    text.push_str("genrule(name = \"both\", srcs = [\":b\", \":n0\"], outs = [\"both.txt\"], cmd = \"cat $(SRCS) > $@\")\n");
    std::fs::write(&build_file, text).unwrap();
    let out = ok(build(
        b.path(),
        tempfile::tempdir().unwrap().path(),
        &[&flag, "--remote_download_minimal", r"--remote_download_regex=.*/b\.txt", "//:both"],
    ));
    assert_eq!(counts(&out.stderr), (3, 0, 1), "{}", out.stderr);
    let mut both = built["b.txt"].clone();
    both.extend_from_slice(&built["n0.txt"]);
    assert_eq!(std::fs::read(b.path().join("ocib-bin/both.txt")).unwrap(), both);

    // Bazel matches the whole exec path: `b\.txt` alone matches nothing.
    let c = genrules();
    let out = ok(build(
        c.path(),
        tempfile::tempdir().unwrap().path(),
        &[&flag, "--remote_download_minimal", r"--remote_download_regex=b\.txt", "//:n0"],
    ));
    assert_eq!(counts(&out.stderr), (3, 0, 0), "{}", out.stderr);
    assert!(files_under(&c.path().join("ocib-out/bin")).is_empty());

    let out = build(c.path(), tempfile::tempdir().unwrap().path(), &[&flag, "--remote_download_regex=(unclosed", "//:n0"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("--remote_download_regex='(unclosed'"), "{}", out.stderr);
}
