//! `ocib test` of container_structure_test targets with ocib's own runner, against the real
//! Docker engine (testdata/images: the Sourcegraph-worker-like image and its image_test.yaml).

use crate::common;

use crate::common::{copy_workspace, ocib_env, require_go};

fn docker_available() -> bool {
    let ok = std::process::Command::new("docker").arg("info").output().map(|o| o.status.success()).unwrap_or(false);
    assert!(ok, "this test needs a running Docker engine");
    ok
}

fn test(ws: &std::path::Path, cache: &std::path::Path, args: &[&str]) -> common::Output {
    let cache_flag = format!("--disk_cache={}", cache.display());
    let mut all = vec!["test", "--noshow_progress", cache_flag.as_str()];
    all.extend_from_slice(args);
    ocib_env(ws, &all, &[("GOCACHE", common::go_cache().to_str().unwrap())])
}

#[test]
fn image_test_passes_then_is_cached_and_a_broken_expectation_fails_with_junit() {
    if !require_go() || !docker_available() {
        return;
    }
    let ws = copy_workspace("images");
    let cache = tempfile::tempdir().unwrap();
    let out = test(ws.path(), cache.path(), &["//..."]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("//cmd/worker:image_test") && out.stderr.contains("PASSED in"), "{}", out.stderr);
    let log = std::fs::read_to_string(ws.path().join("ocib-testlogs/cmd/worker/image_test/test.log")).unwrap();
    assert!(log.contains("=== RUN: Command Test: binary is runnable") && log.contains("PASS"), "{log}");

    // Nothing changed: cached, no container runs.
    let again = test(ws.path(), cache.path(), &["//..."]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert!(again.stderr.contains("(cached) PASSED"), "{}", again.stderr);
    assert!(again.stderr.contains("Executed 0 out of 1 test"), "{}", again.stderr);

    // Break an expectation: exit 3, FAILED, and the JUnit file names the failing case.
    let yaml = ws.path().join("cmd/worker/image_test.yaml");
    let text = std::fs::read_to_string(&yaml).unwrap().replace("sanity check passed", "sanity check failed");
    std::fs::write(&yaml, text).unwrap();
    let broken = test(ws.path(), cache.path(), &["//..."]);
    assert_eq!(broken.code, 3, "{}", broken.stderr);
    assert!(broken.stderr.contains("FAILED"), "{}", broken.stderr);
    let junit = std::fs::read_to_string(ws.path().join("ocib-testlogs/cmd/worker/image_test/test.xml")).unwrap();
    assert!(junit.contains("Command Test: binary is runnable") && junit.contains("<failure"), "{junit}");
    let log = std::fs::read_to_string(ws.path().join("ocib-testlogs/cmd/worker/image_test/test.log")).unwrap();
    assert!(log.contains("Error: Expected string 'sanity check failed' not found in output '"), "CST's message: {log}");
}

#[test]
fn malformed_yaml_fails_naming_the_file_and_field() {
    if !require_go() || !docker_available() {
        return;
    }
    let ws = copy_workspace("images");
    std::fs::write(ws.path().join("cmd/worker/image_test.yaml"), "schemaVersion: \"2.0.0\"\nmetadataTest:\n  unboundEnv:\n    - key: X\n")
        .unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out = test(ws.path(), cache.path(), &["--test_output=errors", "//cmd/worker:image_test"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("image_test.yaml") && out.stderr.contains("unboundEnv"), "{}", out.stderr);
}

#[test]
fn the_tar_driver_reads_the_layout_without_a_daemon() {
    if !require_go() {
        return;
    }
    let ws = copy_workspace("images");
    std::fs::write(
        ws.path().join("cmd/worker/files_test.yaml"),
        concat!(
            "schemaVersion: \"2.0.0\"\n",
            "fileExistenceTests:\n",
            "  - name: worker binary\n    path: /worker\n    permissions: \"-rwxr-xr-x\"\n    isExecutableBy: any\n",
            "  - name: no root home\n    path: /root\n    shouldExist: false\n",
            "fileContentTests:\n",
            "  - name: config\n    path: /etc/worker/worker.conf\n    expectedContents: [\"threads = 4\"]\n",
            "metadataTest:\n  user: sourcegraph\n  workdir: /home/sourcegraph\n  entrypoint: [\"/sbin/tini\", \"--\", \"/worker\"]\n  exposedPorts: [\"3189\"]\n",
        ),
    )
    .unwrap();
    let build = std::fs::read_to_string(ws.path().join("cmd/worker/BUILD.bazel")).unwrap()
        + "\ncontainer_structure_test(\n    name = \"files_test\",\n    configs = [\"files_test.yaml\"],\n    driver = \"tar\",\n    image = \":image\",\n)\n";
    std::fs::write(ws.path().join("cmd/worker/BUILD.bazel"), build).unwrap();
    let cache = tempfile::tempdir().unwrap();
    let out = test(ws.path(), cache.path(), &["--test_output=errors", "//cmd/worker:files_test"]);
    assert_eq!(out.code, 0, "{}", out.stderr);

    // `args` pass CST's report flags on, as the Bazel rule does: a JSON log and a named suite.
    let build = std::fs::read_to_string(ws.path().join("cmd/worker/BUILD.bazel")).unwrap().replace(
        "    driver = \"tar\",\n",
        "    driver = \"tar\",\n    args = [\"--output\", \"json\", \"--junit-suite-name=worker-files\"],\n",
    );
    std::fs::write(ws.path().join("cmd/worker/BUILD.bazel"), build).unwrap();
    let out = test(ws.path(), cache.path(), &["//cmd/worker:files_test"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let logs = ws.path().join("ocib-testlogs/cmd/worker/files_test");
    let log: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(logs.join("test.log")).unwrap()).unwrap();
    assert_eq!((log["Pass"].as_u64(), log["Fail"].as_u64(), log["Total"].as_u64()), (Some(4), Some(0), Some(4)), "{log}");
    assert_eq!(log["Results"][0]["Name"], "File Content Test: config", "{log}");
    let junit = std::fs::read_to_string(logs.join("test.xml")).unwrap();
    assert!(junit.contains("<testsuite name=\"worker-files\">"), "{junit}");
}

#[test]
fn the_host_driver_and_unknown_cst_flags_are_analysis_errors() {
    let ws = common::workspace(&[
        ("MODULE.bazel", ""),
        ("c.yaml", "schemaVersion: \"2.0.0\"\n"),
        ("img.tar", ""),
        (
            "BUILD.bazel",
            "load(\"@container_structure_test//:defs.bzl\", \"container_structure_test\")\n\
             container_structure_test(name = \"host\", configs = [\"c.yaml\"], driver = \"host\", image = \"img.tar\")\n\
             container_structure_test(name = \"flags\", configs = [\"c.yaml\"], driver = \"tar\", image = \"img.tar\", args = [\"--pull\"])\n",
        ),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let host = test(ws.path(), cache.path(), &["//:host"]);
    assert_eq!(host.code, 1, "{}", host.stderr);
    assert!(host.stderr.contains("//:host") && host.stderr.contains("'host' cannot test an image"), "{}", host.stderr);
    let flags = test(ws.path(), cache.path(), &["//:flags"]);
    assert_eq!(flags.code, 1, "{}", flags.stderr);
    assert!(flags.stderr.contains("attribute 'args': '--pull' is not supported"), "{}", flags.stderr);
}
