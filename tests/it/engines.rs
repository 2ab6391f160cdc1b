//! Container engines: `ocib run` of an `oci_load` target and container_structure_test's docker
//! driver through podman (`--container_engine=podman`), as they work through docker.

use std::process::Command;

use crate::common::{self, copy_workspace, require_go};

/// Fails the test when podman cannot run containers (`scripts/setup.sh` installs it).
fn require_podman() {
    let ok = Command::new("podman").args(["info", "--format", "{{.Host.OCIRuntime.Name}}"]).output().is_ok_and(|o| o.status.success());
    assert!(ok, "this test needs podman (scripts/setup.sh installs it)");
}

fn podman(args: &[&str]) -> std::process::Output {
    Command::new("podman").args(args).output().expect("run podman")
}

#[test]
fn ocib_run_loads_an_oci_load_target_into_podman() {
    require_go();
    require_podman();
    let ws = copy_workspace("images");
    let cache = tempfile::tempdir().unwrap();
    let run = || {
        common::ocib_env(
            ws.path(),
            &[
                "run",
                "--noshow_progress",
                "--container_engine=podman",
                &format!("--disk_cache={}", cache.path().display()),
                "//cmd/worker:image_load",
            ],
            &[("GOCACHE", common::go_cache().to_str().unwrap())],
        )
    };
    let _ = podman(&["rmi", "-f", "ocib-test/worker:load"]);
    let first = run();
    assert_eq!(first.code, 0, "{}", first.stderr);
    let out = podman(&["run", "--rm", "-e", "SANITY_CHECK=true", "ocib-test/worker:load"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "sanity check passed\n", "{}", String::from_utf8_lossy(&out.stderr));
    // podman reports image IDs without "sha256:": the loaded image is still recognised, so
    // loading again only tags it.
    let second = run();
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(second.stderr.contains("podman already has image") && second.stderr.contains("no layers sent"), "{}", second.stderr);
    let _ = podman(&["rmi", "-f", "ocib-test/worker:load"]);
}

#[test]
fn structure_tests_run_on_podman_with_the_docker_driver() {
    require_go();
    require_podman();
    let ws = copy_workspace("images");
    let cache = tempfile::tempdir().unwrap();
    let test = common::ocib_env(
        ws.path(),
        &[
            "test",
            "--noshow_progress",
            "--container_engine=podman",
            "--test_output=errors",
            &format!("--disk_cache={}", cache.path().display()),
            "//cmd/worker:image_test",
        ],
        &[("GOCACHE", common::go_cache().to_str().unwrap())],
    );
    assert_eq!(test.code, 0, "{}", test.stderr);
    let log = std::fs::read_to_string(ws.path().join("ocib-testlogs/cmd/worker/image_test/test.log")).unwrap();
    // The command tests ran in podman containers (`/usr/bin/id -u` of the image's user).
    assert!(log.contains("--- PASS") && log.contains("stdout: 100"), "{log}");
    // The image was loaded into podman under the tag rules_oci's CST rule uses.
    let layout = ws.path().join("ocib-bin/cmd/worker/image");
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap().replace(':', "-");
    let tag = format!("cst.oci.local/{digest}:{digest}");
    assert!(podman(&["image", "exists", &tag]).status.success(), "podman has no {tag}");
    let _ = podman(&["rmi", "-f", &tag]);
}

#[test]
fn an_unknown_container_engine_is_a_command_line_error() {
    let ws = copy_workspace("images");
    for command in ["run", "test"] {
        let out = common::ocib(ws.path(), &[command, "--container_engine=dockr", "//cmd/worker:image_load"]);
        assert_eq!(out.code, 2, "{command}: {}", out.stderr);
        assert!(out.stderr.contains("--container_engine=dockr: expected one of docker, podman, nerdctl"), "{}", out.stderr);
    }
}

/// Fails unless a Docker engine answers (these tests load into it for real).
fn require_docker() {
    let ok = Command::new("docker").arg("info").output().is_ok_and(|o| o.status.success());
    assert!(ok, "this test needs a running Docker engine");
}

/// A workspace with `//:load`, an oci_load tagged `tag` of a two-layer image: `bottom.txt`
/// (content `bottom`) under `top.txt` ("one\n").
fn two_layer_load(tag: &str, bottom: &str) -> tempfile::TempDir {
    let build = format!(
        r#"load("@rules_oci//oci:defs.bzl", "oci_image", "oci_load")
load("@rules_pkg//:pkg.bzl", "pkg_tar")

pkg_tar(name = "bottom", srcs = ["bottom.txt"])
pkg_tar(name = "top", srcs = ["top.txt"])
oci_image(name = "image", architecture = "amd64", os = "linux", tars = [":bottom", ":top"])
oci_load(name = "load", image = ":image", repo_tags = ["{tag}"])
"#
    );
    common::workspace(&[("WORKSPACE", ""), ("bottom.txt", bottom), ("top.txt", "one\n"), ("BUILD.bazel", &build)])
}

/// A reload into docker after the top layer changed sends that layer only: the tarball leaves
/// out the layers docker holds for the image the tag names, and docker takes the new image
/// (its ID is the new config digest, its layers the new diff IDs).
#[test]
fn a_reload_into_docker_sends_only_the_changed_layer() {
    require_docker();
    // A tag of this test's own, unique per run, removed at the end.
    let tag = format!("ocib-test-partial-load-{}:latest", std::process::id());
    let ws = two_layer_load(&tag, "the same\n");
    let cache = tempfile::tempdir().unwrap();
    let cache_flag = format!("--disk_cache={}", cache.path().display());
    let run = || common::ocib(ws.path(), &["run", "--noshow_progress", &cache_flag, "--container_engine=docker", "//:load"]);
    let first = run();
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(!first.stderr.contains("layers; sent"), "nothing to leave out the first time: {}", first.stderr);
    std::fs::write(ws.path().join("top.txt"), "two\n").unwrap();
    let second = run();
    let inspect = Command::new("docker").args(["image", "inspect", "--format", "{{.Id}} {{json .RootFS.Layers}}", &tag]).output().unwrap();
    let _ = Command::new("docker").args(["rmi", "-f", &tag]).output();
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(second.stderr.contains("INFO: docker had 1 of the image's 2 layers; sent the other 1"), "{}", second.stderr);
    let index: serde_json::Value = serde_json::from_slice(&std::fs::read(ws.path().join("ocib-bin/image/index.json")).unwrap()).unwrap();
    let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_owned();
    let blob = |hex: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(ws.path().join("ocib-bin/image/blobs/sha256").join(hex)).unwrap()).unwrap()
    };
    let manifest = blob(&manifest_digest);
    let config_digest = manifest["config"]["digest"].as_str().unwrap().to_owned();
    let config = blob(config_digest.trim_start_matches("sha256:"));
    let inspected = String::from_utf8_lossy(&inspect.stdout).trim().to_owned();
    let (id, layers) = inspected.split_once(' ').expect("id and layers");
    assert_eq!(id, config_digest, "docker has the new image");
    let layers: serde_json::Value = serde_json::from_str(layers).unwrap();
    assert_eq!(layers, config["rootfs"]["diff_ids"], "with the new layer stack");
}

/// A reload after docker lost the image (removed since the last load, so it has none of the
/// layers) sends the whole image, and docker then has it; a reload of the unchanged image
/// after that only tags it.
#[test]
fn a_reload_into_docker_that_lost_the_layers_sends_them_all() {
    require_docker();
    let tag = format!("ocib-test-lost-layers-{}:latest", std::process::id());
    let bottom = format!("bottom of {tag}\n"); // a layer docker has from no other test
    let ws = two_layer_load(&tag, &bottom);
    let cache = tempfile::tempdir().unwrap();
    let cache_flag = format!("--disk_cache={}", cache.path().display());
    let run = || common::ocib(ws.path(), &["run", "--noshow_progress", &cache_flag, "--container_engine=docker", "//:load"]);
    let rmi = || Command::new("docker").args(["rmi", "-f", &tag]).output().unwrap();
    let first = run();
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(rmi().status.success(), "the image is gone, and with it both layers");
    std::fs::write(ws.path().join("top.txt"), "two\n").unwrap();
    let second = run();
    let inspect = Command::new("docker").args(["image", "inspect", "--format", "{{json .RootFS.Layers}}", &tag]).output().unwrap();
    let third = run();
    rmi();
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(!second.stderr.contains("layers; sent"), "docker had no layer to leave out: {}", second.stderr);
    let layers: Vec<String> = serde_json::from_slice(&inspect.stdout).unwrap_or_default();
    assert_eq!(layers.len(), 2, "docker has the whole new image: {}", String::from_utf8_lossy(&inspect.stdout));
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert!(third.stderr.contains("already has image"), "unchanged: tagged only: {}", third.stderr);
}

/// Into docker, ocib talks to the engine's API on its unix socket, not to the `docker` client:
/// with a `docker` first on PATH that fails whatever it is asked, a load, a reload that sends
/// only the changed layer and a tag-only reload all work, and docker has the image. Where the
/// socket does not answer (`DOCKER_HOST` names one that is not there), the client is used.
#[test]
fn a_load_into_docker_goes_through_the_engine_api_without_the_client() {
    require_docker();
    let tag = format!("ocib-test-engine-api-{}:latest", std::process::id());
    let bottom = format!("bottom of {tag}\n");
    let ws = two_layer_load(&tag, &bottom);
    let fake = tempfile::tempdir().unwrap();
    let client = fake.path().join("docker");
    std::fs::write(&client, "#!/bin/sh\necho \"fake docker client: $*\" >&2\nexit 3\n").unwrap();
    std::fs::set_permissions(&client, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let path = format!("{}:{}", fake.path().display(), std::env::var("PATH").unwrap_or_default());
    let cache = tempfile::tempdir().unwrap();
    let cache_flag = format!("--disk_cache={}", cache.path().display());
    let args = ["run", "--noshow_progress", &cache_flag, "--container_engine=docker", "//:load"];
    let run = |env: &[(&str, &str)]| common::ocib_env(ws.path(), &args, env);
    let inspect = || {
        let out = Command::new("docker").args(["image", "inspect", "--format", "{{.Id}} {{json .RootFS.Layers}}", &tag]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    let config_digest = || {
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(ws.path().join("ocib-bin/image/index.json")).unwrap()).unwrap();
        let manifest = index["manifests"][0]["digest"].as_str().unwrap().trim_start_matches("sha256:").to_owned();
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(ws.path().join("ocib-bin/image/blobs/sha256").join(manifest)).unwrap()).unwrap();
        manifest["config"]["digest"].as_str().unwrap().to_owned()
    };

    let first = run(&[("PATH", &path)]);
    let first_inspected = inspect();
    let first_config = config_digest();
    std::fs::write(ws.path().join("top.txt"), "two\n").unwrap();
    let second = run(&[("PATH", &path)]);
    let second_inspected = inspect();
    let second_config = config_digest();
    let third = run(&[("PATH", &path)]);
    let unreachable = run(&[("PATH", &path), ("DOCKER_HOST", "unix:///nonexistent/ocib-test-docker.sock")]);
    // Both images: the first lost its tag to the second and would be left dangling.
    let _ = Command::new("docker").args(["rmi", "-f", &tag, &first_config, &second_config]).output();

    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(first.stdout.contains(&format!("Loaded image: {tag}")), "docker's answer is shown: {}", first.stdout);
    assert!(first_inspected.starts_with(&format!("{first_config} ")), "docker has the image: {first_inspected}");
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(second.stderr.contains("INFO: docker had 1 of the image's 2 layers; sent the other 1"), "{}", second.stderr);
    assert!(second_inspected.starts_with(&format!("{second_config} ")), "docker has the new image: {second_inspected}");
    assert_ne!(first_config, second_config);
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert!(third.stderr.contains("already has image"), "unchanged: tagged only: {}", third.stderr);
    for out in [&first, &second, &third] {
        assert!(!out.stderr.contains("fake docker client"), "the client was started: {}", out.stderr);
    }
    assert_ne!(unreachable.code, 0, "the fake client failed the load: {}", unreachable.stderr);
    assert!(unreachable.stderr.contains("fake docker client: load"), "the client was the fallback: {}", unreachable.stderr);
}
