//! rules_distroless on testdata/distroless: real Debian packages (busybox-static, tini,
//! ca-certificates, tzdata, fetched once with `apt-get download`) served from a loopback
//! mirror, `apt.install` with a lock written at test time, and a distroless-style image
//! (passwd, group, home, os_release, cacerts, dpkg status.d, flatten) that Docker runs and the
//! structure test checks. The same digest from two clean caches; offline once fetched; a
//! tampered package fails naming it.

use std::path::Path;
use std::process::Command;

use crate::common::deb_mirror::{Mirror, mirror};
use crate::common::{build, copy_workspace, ocib_env, require_tool, workspace};

fn with_lock(mirror: &Mirror, base: &str) -> tempfile::TempDir {
    let ws = copy_workspace("distroless");
    std::fs::write(ws.path().join("bookworm.lock.json"), mirror.lock(base)).unwrap();
    ws
}

fn image_digest(ws: &Path) -> String {
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(ws.join("ocib-bin/image/index.json")).unwrap()).unwrap();
    index["manifests"][0]["digest"].as_str().unwrap().to_owned()
}

fn cmd(ws: &Path, cache: &Path, command: &str, target: &str) -> crate::common::Output {
    ocib_env(ws, &[command, "--noshow_progress", &format!("--disk_cache={}", cache.display()), target], &[])
}

#[test]
fn debian_packages_build_a_distroless_image_that_docker_runs() {
    let mirror = mirror();
    if !require_tool("docker", &["info"]) {
        return;
    }
    let ws = with_lock(mirror, &mirror.url());
    let cache = tempfile::tempdir().unwrap();
    let out = build(ws.path(), cache.path(), &["//:image"]);
    assert_eq!(out.code, 0, "{}", out.stderr);

    // The flattened root file system: packages' data, dpkg status entries, the generated files.
    let rootfs = std::fs::File::open(ws.path().join("ocib-bin/rootfs.tar")).unwrap();
    let mut names = std::collections::BTreeSet::new();
    for entry in tar::Archive::new(rootfs).entries().unwrap() {
        let entry = entry.unwrap();
        let name = String::from_utf8_lossy(&entry.path_bytes()).trim_start_matches("./").trim_end_matches('/').to_owned();
        assert!(names.insert(name.clone()), "deduplicated: {name} appears once");
    }
    for want in [
        "bin/busybox",
        "usr/bin/tini-static",
        "usr/share/zoneinfo/UTC",
        "etc/passwd",
        "etc/group",
        "etc/ssl/certs/ca-certificates.crt",
        "usr/lib/os-release",
        "home/nonroot",
        "var/lib/dpkg/status.d/busybox-static",
        "var/lib/dpkg/status.d/ca-certificates",
        "var/lib/dpkg/status.d/tini",
        "var/lib/dpkg/status.d/tzdata",
        "var/lib/dpkg/status.d/tzdata.md5sums",
    ] {
        assert!(names.contains(want), "{want} missing from the root file system");
    }
    let busybox = mirror.package("busybox-static");
    let status = String::from_utf8_lossy(&std::fs::read(ws.path().join("ocib-bin/busybox-static_statusd.tar")).unwrap()).into_owned();
    assert!(status.contains(&format!("Version: {}", busybox.version)), "status.d entry is the package's control file");

    // docker load (ocib run of oci_load) and run busybox in it.
    let _ = Command::new("docker").args(["rmi", "ocib-test/distroless:latest"]).output();
    let load = cmd(ws.path(), cache.path(), "run", "//:load");
    assert_eq!(load.code, 0, "{}", load.stderr);
    // The entrypoint is /bin/busybox: the arguments name the applet.
    let docker_run = |args: &[&str]| {
        let run = Command::new("docker")
            .args(["run", "--rm", "-e", "TZ=Europe/Paris", "ocib-test/distroless:latest"])
            .args(args)
            .output()
            .unwrap();
        assert!(run.status.success(), "{args:?}: {}", String::from_utf8_lossy(&run.stderr));
        String::from_utf8_lossy(&run.stdout).into_owned()
    };
    let date = docker_run(&["date", "-d", "@0"]);
    assert!(date.contains("CET 1970"), "tzdata resolves Europe/Paris: {date}");
    let passwd = docker_run(&["cat", "/etc/passwd"]);
    assert!(passwd.contains("nonroot:!:65532:65532:nonroot:/home/nonroot:/sbin/nologin"), "{passwd}");
    let _ = Command::new("docker").args(["rmi", "ocib-test/distroless:latest"]).output();

    // The structure test (files, users, dpkg status) with the docker driver.
    let test = cmd(ws.path(), cache.path(), "test", "//:structure_test");
    assert_eq!(
        test.code,
        0,
        "{}\n{}",
        test.stderr,
        std::fs::read_to_string(ws.path().join("ocib-testlogs/structure_test/test.log")).unwrap_or_default()
    );

    // Same digest from another clean cache and checkout.
    let other = with_lock(mirror, &mirror.url());
    let other_cache = tempfile::tempdir().unwrap();
    let again = build(other.path(), other_cache.path(), &["//:image"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(image_digest(ws.path()), image_digest(other.path()), "same lock, same image digest from two clean caches");

    // A newer tzdata in the lock: only its package's actions, the root file system and the
    // image run again; busybox, tini and ca-certificates come from the cache.
    let newer = &mirror.newer_tzdata;
    std::fs::write(ws.path().join("bookworm.lock.json"), mirror.lock_with(&mirror.url(), Some(newer))).unwrap();
    let bumped = build(ws.path(), cache.path(), &["//:image"]);
    assert_eq!(bumped.code, 0, "{}", bumped.stderr);
    let (executed, _) = crate::common::executed_and_hits(&bumped);
    // DebFetch, DebData, DebControl and dpkg_statusd of tzdata; flatten; the layer's
    // descriptor; the image.
    assert_eq!(executed, 7, "only tzdata and what contains it is rebuilt:\n{}", bumped.stderr);
    assert_ne!(image_digest(ws.path()), image_digest(other.path()));
    let statusd = std::fs::read(ws.path().join("ocib-bin/tzdata_statusd.tar")).unwrap();
    assert!(String::from_utf8_lossy(&statusd).contains(&format!("Version: {}", newer.version)));

    // Offline after the first fetch: a lock naming an unreachable mirror builds from the cache
    // (a package is keyed by its checksum, as in Bazel's repository cache).
    let offline = with_lock(mirror, "http://127.0.0.1:9/debian");
    let out = build(offline.path(), cache.path(), &["//:image"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(image_digest(offline.path()), image_digest(other.path()));
}

#[test]
fn a_tampered_package_fails_naming_package_version_url_and_digests() {
    let mirror = mirror();
    let tampered_base = format!("http://127.0.0.1:{}/tampered/debian", mirror.port);
    let ws = with_lock(mirror, &tampered_base);
    let cache = tempfile::tempdir().unwrap();
    let out = build(ws.path(), cache.path(), &["//:cacerts"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let p = mirror.package("ca-certificates");
    let url = format!("{tampered_base}/{}", p.filename);
    for want in ["ca-certificates", p.version.as_str(), url.as_str(), p.sha256.as_str(), "checksum mismatch"] {
        assert!(out.stderr.contains(want), "the error names {want}:\n{}", out.stderr);
    }
    // Nothing partial was left behind or cached: the real package then builds.
    std::fs::write(ws.path().join("bookworm.lock.json"), mirror.lock(&mirror.url())).unwrap();
    let fixed = build(ws.path(), cache.path(), &["//:cacerts"]);
    assert_eq!(fixed.code, 0, "{}", fixed.stderr);

    // mergedusr = True: busybox's /bin/busybox is /usr/bin/busybox, and /bin is gone.
    let module = std::fs::read_to_string(ws.path().join("MODULE.bazel")).unwrap();
    std::fs::write(
        ws.path().join("MODULE.bazel"),
        module.replace("    manifest = \"//:bookworm.yaml\",\n", "    manifest = \"//:bookworm.yaml\",\n    mergedusr = True,\n"),
    )
    .unwrap();
    let merged = build(ws.path(), cache.path(), &["@bookworm//busybox-static/amd64:data"]);
    assert_eq!(merged.code, 0, "{}", merged.stderr);
    let layer = std::fs::read_dir(ws.path().join("ocib-bin/external"))
        .unwrap()
        .map(|e| e.unwrap().path().join("layer.tar.gz"))
        .find(|p| p.to_string_lossy().contains("busybox-static") && p.exists())
        .expect("busybox-static's layer");
    let gz = flate2::read::GzDecoder::new(std::fs::File::open(layer).unwrap());
    let names: Vec<String> =
        tar::Archive::new(gz).entries().unwrap().map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned()).collect();
    assert!(names.iter().any(|n| n == "usr/bin/busybox"), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("bin")), "{names:?}");
}

const FAKE_LOCK: &str = r#"{
  "packages": [
    {"arch": "amd64", "dependencies": [{"key": "libc6_2.36-9_amd64", "name": "libc6", "version": "2.36-9"}],
     "key": "tini_0.19.0-1-p-b3_amd64", "name": "tini", "sha256": "1111111111111111111111111111111111111111111111111111111111111111",
     "urls": ["http://127.0.0.1:9/pool/main/t/tini/tini_0.19.0-1+b3_amd64.deb"], "version": "0.19.0-1+b3"},
    {"arch": "amd64", "dependencies": [], "key": "libc6_2.36-9_amd64", "name": "libc6",
     "sha256": "2222222222222222222222222222222222222222222222222222222222222222",
     "urls": ["http://127.0.0.1:9/pool/main/g/glibc/libc6_2.36-9_amd64.deb"], "version": "2.36-9"}
  ],
  "version": 1
}"#;

const MANIFEST: &str =
    "version: 1\nsources:\n  - channel: bookworm main\n    url: http://127.0.0.1/debian\narchs:\n  - amd64\npackages:\n  - tini\n";

/// The WORKSPACE form (`@rules_distroless//apt:apt.bzl`) declares the same repositories as the
/// module extension, with rules_distroless's target names; a missing lock is refused.
#[test]
fn workspace_apt_install_declares_rules_distroless_repositories() {
    let ws = workspace(&[
        (".bazelversion", "6.5.0\n"),
        (
            "WORKSPACE",
            "load(\"@rules_distroless//apt:apt.bzl\", \"apt\")\n\napt.install(\n    name = \"bookworm\",\n    lock = \"//:bookworm.lock.json\",\n    manifest = \"//:bookworm.yaml\",\n)\n\nload(\"@bookworm//:packages.bzl\", \"bookworm_packages\")\n\nbookworm_packages()\n",
        ),
        ("bookworm.yaml", MANIFEST),
        ("bookworm.lock.json", FAKE_LOCK),
        ("BUILD.bazel", ""),
    ]);
    let q = ocib_env(ws.path(), &["query", "@bookworm//..."], &[]);
    assert_eq!(q.code, 0, "{}", q.stderr);
    assert!(!q.stderr.contains("packages.bzl"), "the packages.bzl idiom is a quiet no-op: {}", q.stderr);
    for want in [
        "@bookworm//:bookworm",
        "@bookworm//:dpkg_status",
        "@bookworm//:flat",
        "@bookworm//tini:data",
        "@bookworm//tini/amd64:amd64",
        "@bookworm//tini/amd64:data",
        "@bookworm//tini/amd64:control",
        "@bookworm//libc6/amd64:amd64",
    ] {
        assert!(q.stdout.lines().any(|l| l == want), "{want} missing from:\n{}", q.stdout);
    }
    // The package's data depends on its locked dependencies' and its own repository's.
    let deps = ocib_env(ws.path(), &["query", "deps(@bookworm//tini/amd64)"], &[]);
    assert_eq!(deps.code, 0, "{}", deps.stderr);
    assert!(deps.stdout.contains("@bookworm_libc6_2.36-9_amd64//:data"), "{}", deps.stdout);
    assert!(deps.stdout.contains("@bookworm_tini_0.19.0-1-p-b3_amd64//:deb"), "{}", deps.stdout);
    let kind = ocib_env(ws.path(), &["query", "--output=label_kind", "@bookworm_tini_0.19.0-1-p-b3_amd64//:all"], &[]);
    assert!(kind.stdout.contains("deb_archive rule @bookworm_tini_0.19.0-1-p-b3_amd64//:deb"), "{}", kind.stdout);

    // A lock that lacks a manifest package is reported; no lock at all is refused.
    std::fs::write(ws.path().join("bookworm.yaml"), MANIFEST.replace("  - tini\n", "  - tini\n  - curl\n")).unwrap();
    let stale = ocib_env(ws.path(), &["query", "@bookworm//:all"], &[]);
    assert!(stale.stderr.contains("lists 'curl' for amd64, but the lock"), "{}", stale.stderr);
    let text = std::fs::read_to_string(ws.path().join("WORKSPACE")).unwrap().replace("    lock = \"//:bookworm.lock.json\",\n", "");
    std::fs::write(ws.path().join("WORKSPACE"), text).unwrap();
    let nolock = ocib_env(ws.path(), &["query", "@bookworm//:all"], &[]);
    assert_ne!(nolock.code, 0);
    assert!(nolock.stderr.contains("apt.install(bookworm): no 'lock' given"), "{}", nolock.stderr);
}
