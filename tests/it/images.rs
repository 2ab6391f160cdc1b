//! Images on testdata/images (a worker modeled on Sourcegraph's: a base with tini, busybox
//! and a `sourcegraph` user): the layout's config and manifest, determinism, shared blobs, and
//! the real Docker engine, skopeo and umoci accepting what ocib builds.

use crate::common;

use std::collections::BTreeSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use crate::common::{build, copy_workspace, ocib, require_go, require_tool};
use serde_json::Value;

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

/// (manifest digest, manifest, config) of a layout directory.
fn image(layout: &Path) -> (String, Value, Value) {
    let index = read_json(&layout.join("index.json"));
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1, "one manifest in index.json");
    assert!(manifests[0].get("annotations").is_none(), "index.json has no annotations (as rules_oci)");
    let digest = manifests[0]["digest"].as_str().unwrap().to_owned();
    let blob = |d: &str| layout.join("blobs/sha256").join(d.trim_start_matches("sha256:"));
    let manifest = read_json(&blob(&digest));
    let config = read_json(&blob(manifest["config"]["digest"].as_str().unwrap()));
    (digest, manifest, config)
}

fn blobs(layout: &Path) -> BTreeSet<String> {
    std::fs::read_dir(layout.join("blobs/sha256")).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
}

/// Docker, skopeo and umoci are oracles these tests cannot do without: a missing one fails
/// the test (`.ci/run` installs them). Always true when it returns.
#[test]
fn config_and_manifest_follow_rules_oci() {
    if !require_go() {
        return;
    }
    let ws = copy_workspace("images");
    let cache = tempfile::tempdir().unwrap();
    let out = build(ws.path(), cache.path(), &["//cmd/worker:image"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let (_, manifest, config) = image(&ws.path().join("ocib-bin/cmd/worker/image"));
    assert_eq!(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(manifest["config"]["mediaType"], "application/vnd.oci.image.config.v1+json");
    assert_eq!(manifest["annotations"]["org.opencontainers.image.source"], "https://example.com/images");
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 5, "3 base layers + 2");
    assert!(layers.iter().all(|l| l["mediaType"] == "application/vnd.oci.image.layer.v1.tar"));
    let c = &config["config"];
    // Setting entrypoint clears the base's Cmd.
    assert_eq!(c["Entrypoint"], serde_json::json!(["/sbin/tini", "--", "/worker"]));
    assert!(c.get("Cmd").is_none(), "Cmd inherited from the base must be cleared: {c}");
    // Env: base entries replaced in place, $VAR/${VAR} expanded against the base env.
    assert_eq!(
        c["Env"],
        serde_json::json!([
            "PATH=/opt/worker/bin:/usr/local/bin:/usr/bin:/bin:/sbin",
            "LANG=C.UTF-8",
            "WORKER_MODE=all",
            "GREETING=hello C.UTF-8"
        ])
    );
    // Labels merged with the base's; ports; user; workdir.
    assert_eq!(c["Labels"], serde_json::json!({"org.opencontainers.image.title": "worker", "org.opencontainers.image.vendor": "example"}));
    assert_eq!(c["ExposedPorts"], serde_json::json!({"3189/tcp": {}}));
    assert_eq!(c["User"], "sourcegraph");
    assert_eq!(c["WorkingDir"], "/home/sourcegraph");
    assert_eq!(config["created"], "1970-01-01T00:00:00Z");
    assert_eq!(config["os"], "linux");
    assert_eq!(config["architecture"], "amd64");
    assert_eq!(config["rootfs"]["diff_ids"].as_array().unwrap().len(), 5);
    let history: Vec<&str> = config["history"].as_array().unwrap().iter().map(|h| h["created_by"].as_str().unwrap()).collect();
    assert_eq!(history[3..], ["bazel build //cmd/worker:tar_worker", "bazel build //cmd/worker:tar_config"]);
    // The `.digest` target holds the manifest digest.
    let digest = ocib(ws.path(), &["cquery", "//cmd/worker:image.digest", "--output=files"]);
    assert_eq!(digest.stdout, "ocib-out/bin/cmd/worker/image.json.sha256\n");
}

#[test]
fn digests_are_reproducible_and_an_edit_changes_only_its_layer() {
    if !require_go() {
        return;
    }
    let (a, b) = (copy_workspace("images"), copy_workspace("images"));
    let (ca, cb) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    assert_eq!(build(a.path(), ca.path(), &["//cmd/worker:image"]).code, 0);
    assert_eq!(build(b.path(), cb.path(), &["//cmd/worker:image"]).code, 0);
    let layout_a = a.path().join("ocib-bin/cmd/worker/image");
    let (digest_a, _, _) = image(&layout_a);
    assert_eq!(digest_a, image(&b.path().join("ocib-bin/cmd/worker/image")).0, "same digest from another checkout path");
    let before = blobs(&layout_a);

    // The image's layers are the pkg_tar outputs themselves (hardlinks), and the base's blobs
    // are shared with the base image: nothing is copied.
    let ino = |p: &Path| std::fs::metadata(p).unwrap().ino();
    let (_, manifest, _) = image(&layout_a);
    let worker_layer = manifest["layers"][3]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_owned();
    assert_eq!(ino(&layout_a.join("blobs/sha256").join(&worker_layer)), ino(&a.path().join("ocib-bin/cmd/worker/tar_worker.tar")));
    let base_layer = manifest["layers"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_owned();
    assert_eq!(
        ino(&layout_a.join("blobs/sha256").join(&base_layer)),
        ino(&a.path().join("ocib-bin/base/base_image/blobs/sha256").join(&base_layer))
    );

    // Editing one file changes its layer, the config and the manifest; nothing else.
    std::fs::write(a.path().join("cmd/worker/worker.conf"), "threads = 8\n").unwrap();
    let rebuilt = build(a.path(), ca.path(), &["//cmd/worker:image"]);
    assert_eq!(rebuilt.code, 0, "{}", rebuilt.stderr);
    let after = blobs(&layout_a);
    assert_eq!(before.difference(&after).count(), 3, "removed: {:?}", before.difference(&after).collect::<Vec<_>>());
    assert_eq!(after.difference(&before).count(), 3, "added: {:?}", after.difference(&before).collect::<Vec<_>>());
    assert!(after.contains(&worker_layer) && after.contains(&base_layer));
    let (_, rebuilt_manifest, _) = image(&layout_a);
    assert_ne!(rebuilt_manifest["layers"][4]["digest"], manifest["layers"][4]["digest"]);
    assert_eq!(rebuilt_manifest["layers"][3]["digest"], manifest["layers"][3]["digest"]);
    assert_eq!(common::executed_and_hits(&rebuilt).0, 3, "the tar, its descriptor, the image; nothing else: {}", rebuilt.stderr);
}

#[test]
fn docker_loads_and_runs_the_tarball() {
    if !require_go() || !require_tool("docker", &["info"]) {
        return;
    }
    let ws = copy_workspace("images");
    let cache = tempfile::tempdir().unwrap();
    let out = build(ws.path(), cache.path(), &["//cmd/worker:image_tarball"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // As a user would: docker load --input $(ocib cquery ... --output=files), from the root.
    let files = ocib(ws.path(), &["cquery", "//cmd/worker:image_tarball", "--output=files"]);
    assert_eq!(files.stdout, "ocib-out/bin/cmd/worker/image_tarball/tarball.tar\n");
    let load = Command::new("docker").args(["load", "--input", files.stdout.trim()]).current_dir(ws.path()).output().unwrap();
    assert!(load.status.success(), "{}", String::from_utf8_lossy(&load.stderr));
    assert!(String::from_utf8_lossy(&load.stdout).contains("ocib-test/worker:candidate"));
    let run = Command::new("docker").args(["run", "--rm", "ocib-test/worker:candidate"]).output().unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(
        String::from_utf8_lossy(&run.stdout),
        "worker 0.0.0+dev mode=all greeting=\"hello C.UTF-8\" path=/opt/worker/bin:/usr/local/bin:/usr/bin:/bin:/sbin\n"
    );
    // The entrypoint runs as the configured user.
    let id =
        Command::new("docker").args(["run", "--rm", "--entrypoint", "/usr/bin/id", "ocib-test/worker:candidate", "-un"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&id.stdout), "sourcegraph\n");
    let _ = Command::new("docker").args(["rmi", "ocib-test/worker:candidate"]).output();
}

#[test]
fn oci_load_builds_its_tarball_only_on_request() {
    if !require_go() {
        return;
    }
    let ws = copy_workspace("images");
    let cache = tempfile::tempdir().unwrap();
    assert_eq!(build(ws.path(), cache.path(), &["//cmd/worker:image_load"]).code, 0);
    let tarball = ws.path().join("ocib-bin/cmd/worker/image_load/tarball.tar");
    assert!(!tarball.exists(), "oci_load builds no tarball by default");
    let out = build(ws.path(), cache.path(), &["--output_groups=+tarball", "//cmd/worker:image_load"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(tarball.exists());
}

#[test]
fn skopeo_and_umoci_accept_the_layout() {
    if !require_go() || !require_tool("skopeo", &["--version"]) || !require_tool("umoci", &["--version"]) {
        return;
    }
    let ws = copy_workspace("images");
    let cache = tempfile::tempdir().unwrap();
    assert_eq!(build(ws.path(), cache.path(), &["//cmd/worker:image"]).code, 0);
    let layout = ws.path().join("ocib-bin/cmd/worker/image");
    let inspect = Command::new("skopeo").args(["inspect", &format!("oci:{}", layout.display())]).output().unwrap();
    assert!(inspect.status.success(), "skopeo: {}", String::from_utf8_lossy(&inspect.stderr));
    let info: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    assert_eq!(info["Architecture"], "amd64");
    assert_eq!(info["Layers"].as_array().unwrap().len(), 5);
    // umoci names images by tag: give a copy of the layout one, then unpack it.
    let tagged = tempfile::tempdir().unwrap();
    let copy = Command::new("skopeo")
        .args(["copy", &format!("oci:{}", layout.display()), &format!("oci:{}:v1", tagged.path().join("img").display())])
        .output()
        .unwrap();
    assert!(copy.status.success(), "skopeo copy: {}", String::from_utf8_lossy(&copy.stderr));
    let bundle = tagged.path().join("bundle");
    let unpack = Command::new("umoci")
        .args(["unpack", "--rootless", "--image", &format!("{}:v1", tagged.path().join("img").display()), &bundle.display().to_string()])
        .output()
        .unwrap();
    assert!(unpack.status.success(), "umoci: {}", String::from_utf8_lossy(&unpack.stderr));
    assert!(bundle.join("rootfs/worker").is_file());
    assert_eq!(std::fs::read_to_string(bundle.join("rootfs/etc/worker/worker.conf")).unwrap(), "threads = 4\n");
}

#[test]
fn ocib_run_loads_an_oci_load_target_and_skips_an_image_the_engine_has() {
    if !require_go() || !require_tool("docker", &["info"]) {
        return;
    }
    let ws = copy_workspace("images");
    let cache = tempfile::tempdir().unwrap();
    let run = || {
        common::ocib_env(
            ws.path(),
            &["run", "--noshow_progress", &format!("--disk_cache={}", cache.path().display()), "//cmd/worker:image_load"],
            &[("GOCACHE", common::go_cache().to_str().unwrap())],
        )
    };
    let _ = Command::new("docker").args(["rmi", "ocib-test/worker:load"]).output();
    let first = run();
    assert_eq!(first.code, 0, "{}", first.stderr);
    // No tarball was written: it was streamed into `docker load`.
    assert!(!ws.path().join("ocib-bin/cmd/worker/image_load/tarball.tar").exists());
    let out = Command::new("docker").args(["run", "--rm", "-e", "SANITY_CHECK=true", "ocib-test/worker:load"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "sanity check passed\n", "{}", String::from_utf8_lossy(&out.stderr));
    // Loading again sends no layer: the engine has the image, so only the tag is set.
    let second = run();
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(second.stderr.contains("no layers sent"), "{}", second.stderr);
    let _ = Command::new("docker").args(["rmi", "ocib-test/worker:load"]).output();
}

#[test]
fn a_checked_in_layer_tar_is_used_as_is_and_its_edit_rebuilds_the_image() {
    // A source tar in `tars` (a vendored layer) becomes a layer byte for byte: its digest is
    // the file's sha256, and editing it changes the image.
    let ws = common::workspace(&[
        ("MODULE.bazel", ""),
        (
            "BUILD.bazel",
            "load(\"@rules_oci//oci:defs.bzl\", \"oci_image\")\n\
             oci_image(name = \"image\", os = \"linux\", architecture = \"amd64\", tars = [\"vendor.tar\"])\n",
        ),
    ]);
    let tar_file = |content: &str| {
        std::fs::write(ws.path().join("hello.txt"), content).unwrap();
        let status = Command::new("tar").args(["cf", "vendor.tar", "hello.txt"]).current_dir(ws.path()).status().unwrap();
        assert!(status.success());
        let bytes = std::fs::read(ws.path().join("vendor.tar")).unwrap();
        format!("sha256:{}", sha256_hex(&bytes))
    };
    let cache = tempfile::tempdir().unwrap();
    let mut digests = Vec::new();
    for content in ["one\n", "two\n"] {
        let want = tar_file(content);
        let vendored = ws.path().join("vendor.tar");
        std::fs::set_permissions(&vendored, std::fs::Permissions::from_mode(0o640)).unwrap();
        let out = build(ws.path(), cache.path(), &["//:image"]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        // The user's file is copied into the image, never hardlinked into the cache (which
        // would chmod it read-only and make the CAS entry the user's inode).
        let meta = std::fs::metadata(&vendored).unwrap();
        assert_eq!(meta.permissions().mode() & 0o7777, 0o640, "the vendored tar's mode is left alone");
        assert_eq!(meta.nlink(), 1, "the vendored tar is not linked into ocib-out or the cache");
        let (digest, manifest, config) = image(&ws.path().join("ocib-bin/image"));
        assert_eq!(manifest["layers"][0]["digest"], want.as_str());
        assert_eq!(config["rootfs"]["diff_ids"][0], want.as_str(), "an uncompressed layer's diff_id is its digest");
        digests.push(digest);
    }
    assert_ne!(digests[0], digests[1], "editing the vendored tar changes the image");
}

fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}
