//! The issue-12 acceptance workspace (testdata/starlark_images): an `oci_image` macro that
//! builds `<name>_underlying` and wraps it in `oci_image_cross`, a Starlark rule whose
//! `image` attribute carries a platform transition and that forwards DefaultInfo. Native
//! rules (oci_tarball, container_structure_test, oci_push) consume it as the image; a
//! transition to linux/arm64 gives an arm64 Go binary.

use std::process::Command;

use crate::common::{self, Registry, build, copy_workspace, ocib_env, require_go, require_tool};

fn with_gocache<'a>(args: &'a [&'a str]) -> (Vec<&'a str>, String) {
    (args.to_vec(), common::go_cache().to_str().expect("utf-8 path").to_owned())
}

/// The ELF machine field (`e_machine`, bytes 18–19, little-endian) of a file.
fn elf_machine(path: &std::path::Path) -> u16 {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    assert_eq!(&bytes[..4], b"\x7fELF", "{} is not an ELF file", path.display());
    u16::from_le_bytes([bytes[18], bytes[19]])
}

/// Builds the tarball through the transition, loads it into Docker and runs it; the
/// structure test passes through the docker driver; the image pushes to a registry.
#[test]
fn cross_image_builds_loads_runs_tests_and_pushes() {
    if !require_go() || !require_tool("docker", &["info"]) {
        return;
    }
    let Some(registry) = Registry::start(None) else { return };
    let ws = copy_workspace("starlark_images");
    let cache = tempfile::tempdir().expect("cache");
    let built = build(ws.path(), cache.path(), &["//cmd/worker:image_tarball"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    // The image is built in the transition's configuration (opt, host platform).
    assert!(ws.path().join("ocib-out/linux_amd64-opt/bin/cmd/worker/image_underlying/index.json").is_file());

    let (args, gocache) = with_gocache(&["cquery", "//cmd/worker:image_tarball", "--output=files"]);
    let files = ocib_env(ws.path(), &args, &[("GOCACHE", &gocache)]);
    assert_eq!(files.code, 0, "{}", files.stderr);
    let load = Command::new("docker").args(["load", "--input", files.stdout.trim()]).current_dir(ws.path()).output().expect("docker load");
    assert!(load.status.success(), "{}", String::from_utf8_lossy(&load.stderr));
    let run = Command::new("docker").args(["run", "--rm", "ocib-test/starlark-worker:cross"]).output().expect("docker run");
    let _ = Command::new("docker").args(["rmi", "ocib-test/starlark-worker:cross"]).output();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(String::from_utf8_lossy(&run.stdout).starts_with("worker 0.0.0+dev mode=cross"), "{}", String::from_utf8_lossy(&run.stdout));

    let cache_flag = format!("--disk_cache={}", cache.path().display());
    let test = ocib_env(ws.path(), &["test", "--noshow_progress", &cache_flag, "//cmd/worker:image_test"], &[("GOCACHE", &gocache)]);
    assert_eq!(test.code, 0, "{}{}", test.stdout, test.stderr);
    let report = format!("{}{}", test.stdout, test.stderr);
    assert!(report.contains("//cmd/worker:image_test") && report.contains("PASSED"), "{report}");

    let repo = format!("{}/ocib/starlark-worker", registry.host());
    let push = ocib_env(
        ws.path(),
        &["run", "--noshow_progress", &cache_flag, "//cmd/worker:push", "--", "--repository", &repo],
        &[("GOCACHE", &gocache)],
    );
    assert_eq!(push.code, 0, "{}", push.stderr);
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(ws.path().join("ocib-out/linux_amd64-opt/bin/cmd/worker/image_underlying/index.json")).expect("index"),
    )
    .expect("json");
    let digest = index["manifests"][0]["digest"].as_str().expect("digest").to_owned();
    assert!(push.stdout.contains(&format!("{repo}@{digest}")), "{}", push.stdout);
    let inspect =
        Command::new("skopeo").args(["inspect", "--tls-verify=false", &format!("docker://{repo}:cross")]).output().expect("skopeo");
    assert!(inspect.status.success(), "{}", String::from_utf8_lossy(&inspect.stderr));
    let v: serde_json::Value = serde_json::from_slice(&inspect.stdout).expect("json");
    assert_eq!(v["Digest"].as_str(), Some(digest.as_str()));
}

/// A transition to a linux/arm64 `platform()` builds the Go binary for arm64, in its own
/// output directory; the default image's binary stays x86-64.
#[test]
fn arm64_transition_builds_an_arm64_binary() {
    if !require_go() {
        return;
    }
    let ws = copy_workspace("starlark_images");
    let cache = tempfile::tempdir().expect("cache");
    let built = build(ws.path(), cache.path(), &["//cmd/worker:image_arm64", "//cmd/worker:image"]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    const EM_AARCH64: u16 = 0xB7;
    const EM_X86_64: u16 = 0x3E;
    assert_eq!(elf_machine(&ws.path().join("ocib-out/linux_arm64-opt/bin/cmd/worker/worker_/worker")), EM_AARCH64);
    assert_eq!(elf_machine(&ws.path().join("ocib-out/linux_amd64-opt/bin/cmd/worker/worker_/worker")), EM_X86_64);
    // `cquery --output=files` prints the transitioned path.
    let files = ocib_env(
        ws.path(),
        &["cquery", "//cmd/worker:image_arm64", "--output=files"],
        &[("GOCACHE", common::go_cache().to_str().expect("utf-8"))],
    );
    assert_eq!(files.stdout.trim(), "ocib-out/linux_arm64-opt/bin/cmd/worker/image_arm64_underlying", "{}", files.stderr);
}
