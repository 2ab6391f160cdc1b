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
