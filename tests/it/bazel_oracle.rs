//! The Bazel oracle for Starlark rules: testdata/bazel_oracle (providers across three rules,
//! depsets in every order, `Args`, param files, runfiles, a transition on a build setting
//! (on an attribute, and a rule-level one on the target itself),
//! `select()` on it, predeclared outputs, an executable and a test rule) is built by Bazel
//! 4.2.3 (Debian's bazel-bootstrap, offline) and by ocib, and every output is compared byte
//! for byte. Fails when `bazel` is missing (`.ci/run` installs bazel-bootstrap).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{copy_workspace, ocib};

/// The output files under one configuration's `bin` directory, keyed by (`kind`, path
/// under `bin`); runfiles trees and manifests (the run-time layout) are left out.
fn walk_bin(bin: &Path, kind: &str, files: &mut BTreeMap<(String, String), Vec<u8>>) {
    for entry in walkdir::WalkDir::new(bin).follow_links(true) {
        let entry = entry.expect("walk");
        let rel = entry.path().strip_prefix(bin).expect("under bin").to_string_lossy().into_owned();
        if !entry.file_type().is_file() || rel.contains(".runfiles/") || rel.ends_with(".runfiles_manifest") {
            continue;
        }
        files.insert((kind.to_owned(), rel), std::fs::read(entry.path()).expect("read output"));
    }
}

/// Every output: the top-level configuration's (kind "") at `top`, and the transition's
/// (kind "ST", the one `<out_root>/*-ST-*/bin`).
fn outputs(out_root: &Path, top: &Path) -> BTreeMap<(String, String), Vec<u8>> {
    let mut files = BTreeMap::new();
    walk_bin(top, "", &mut files);
    for entry in std::fs::read_dir(out_root).unwrap_or_else(|e| panic!("read {}: {e}", out_root.display())) {
        let entry = entry.expect("entry");
        if entry.file_name().to_string_lossy().contains("-ST-") {
            walk_bin(&entry.path().join("bin"), "ST", &mut files);
        }
    }
    files
}

fn bazel(ws: &Path, user_root: &Path, args: &[&str]) -> std::process::Output {
    let out = Command::new("bazel")
        .arg(format!("--output_user_root={}", user_root.display()))
        .args(args)
        .current_dir(ws)
        .output()
        .expect("run bazel");
    assert!(
        out.status.success(),
        "bazel {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

#[test]
fn every_output_is_byte_identical_to_bazel() {
    let has_bazel = Command::new("bazel").arg("--version").output().map(|o| o.status.success()).unwrap_or(false);
    assert!(has_bazel, "this test needs Bazel 4.2.3 as `bazel` (.ci/run installs Debian's bazel-bootstrap)");

    // Bazel, offline: its test rules need @remote_coverage_tools, which is a download; a
    // local stand-in with the two targets it names is enough when coverage is off.
    let bazel_ws = copy_workspace("bazel_oracle");
    let stub = tempfile::tempdir().expect("tempdir");
    std::fs::write(stub.path().join("WORKSPACE"), "").expect("write");
    std::fs::write(
        stub.path().join("BUILD"),
        "filegroup(name = \"coverage_report_generator\", visibility = [\"//visibility:public\"])\nfilegroup(name = \"lcov_merger\", visibility = [\"//visibility:public\"])\n",
    )
    .expect("write");
    // One install base for every run of this test (extracting it takes a while).
    let user_root: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("target").join("test-bazel-root");
    let override_flag = format!("--override_repository=remote_coverage_tools={}", stub.path().display());
    bazel(bazel_ws.path(), &user_root, &["build", &override_flag, "//app/..."]);
    bazel(bazel_ws.path(), &user_root, &["test", &override_flag, "//app:check"]);
    let bazel_run = bazel(bazel_ws.path(), &user_root, &["run", &override_flag, "//app:greet"]);
    let _ = Command::new("bazel")
        .arg(format!("--output_user_root={}", user_root.display()))
        .arg("shutdown")
        .current_dir(bazel_ws.path())
        .output();

    let ocib_ws = copy_workspace("bazel_oracle");
    let built = ocib(ocib_ws.path(), &["build", "//app/..."]);
    assert_eq!(built.code, 0, "{}", built.stderr);
    let tested = ocib(ocib_ws.path(), &["test", "//app:check"]);
    assert_eq!(tested.code, 0, "{}{}", tested.stdout, tested.stderr);
    let ocib_run = ocib(ocib_ws.path(), &["run", "//app:greet"]);
    assert_eq!(ocib_run.code, 0, "{}", ocib_run.stderr);

    let bazel_out = bazel_ws.path().join("bazel-out");
    let theirs = outputs(&bazel_out, &bazel_out.join("k8-fastbuild/bin"));
    let ocib_out = ocib_ws.path().join("ocib-out");
    let ours = outputs(&ocib_out, &ocib_out.join("bin"));
    let names = |m: &BTreeMap<(String, String), Vec<u8>>| m.keys().map(|(k, r)| format!("{k}:{r}")).collect::<Vec<_>>();
    assert_eq!(names(&ours), names(&theirs), "ocib and Bazel produce different sets of outputs");
    assert!(theirs.len() >= 20, "the oracle compares too few outputs: {}", theirs.len());
    for (key, bytes) in &theirs {
        let mine = &ours[key];
        assert_eq!(String::from_utf8_lossy(mine), String::from_utf8_lossy(bytes), "{}:{} differs from Bazel's", key.0, key.1);
        assert_eq!(mine, bytes, "{}:{} differs from Bazel's", key.0, key.1);
    }
    assert_eq!(ocib_run.stdout, String::from_utf8_lossy(&bazel_run.stdout), "`ocib run` prints what `bazel run` prints");
}
