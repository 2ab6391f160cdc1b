//! Visibility as Bazel 4.2.3 enforces it (issue 11, class 9): source files, `exports_files`,
//! `package_group`, `default_visibility`, and query's `visible()`. Expected messages were
//! recorded with Bazel 4.2.3 on testdata/dropin/visibility.

use crate::common;

use common::{ocib, query_ok};

const NOT_VISIBLE: &str = "Check the visibility declaration of the former target if you think the dependency is legitimate";
const SOURCE_HINT: &str = ". To set the visibility of that source file target, use the exports_files() function";

/// `ocib build --nobuild`-like: builds `target` in a copy of the workspace, returns (code, stderr).
fn build(target: &str) -> (i32, String) {
    let ws = common::copy_workspace("dropin/visibility");
    let out = ocib(ws.path(), &["build", target]);
    (out.code, out.stderr)
}

fn assert_not_visible(target: &str, dep: &str, source: bool) {
    let (code, stderr) = build(target);
    assert_ne!(code, 0, "{target} must fail: {stderr}");
    let mut msg = format!("target '{dep}' is not visible from target '{target}'. {NOT_VISIBLE}");
    if source {
        msg.push_str(SOURCE_HINT);
    }
    assert!(stderr.contains(&msg), "expected {msg:?} in {stderr}");
}

fn assert_builds(target: &str) {
    let (code, stderr) = build(target);
    assert_eq!(code, 0, "{target}: {stderr}");
}

#[test]
fn a_source_file_not_exported_is_private_without_default_visibility() {
    assert_not_visible("//b:impl", "//a:impl.txt", true);
}

#[test]
fn exports_files_with_private_visibility_is_rejected_and_public_by_default() {
    assert_not_visible("//b:priv", "//a:priv.txt", true);
    assert_builds("//b:pub");
}

#[test]
fn package_group_packages_includes_and_exclusions() {
    assert_builds("//c:grp"); // //c/... (file and rule)
    assert_builds("//d:grp"); // through includes = [":g2"] (file and generated file)
    assert_not_visible("//c/sub:grp", "//a:grp.txt", true); // -//c/sub
    assert_not_visible("//b:grp", "//a:grp.txt", true);
    assert_not_visible("//b:er", "//a:r", false);
    assert_not_visible("//b:ero", "//a:r.out", false);
}

#[test]
fn default_visibility_applies_to_rules_and_unexported_source_files() {
    assert_builds("//f:impl");
    assert_builds("//f:r");
    assert_not_visible("//f:p", "//e:p", false);
    assert_not_visible("//f:pout", "//e:p.out", false);
    assert_not_visible("//b:eimpl", "//e:impl.txt", true);
}

#[test]
fn a_visibility_label_that_is_not_a_package_group_is_an_error() {
    let (code, stderr) = build("//f:nq");
    assert_ne!(code, 0);
    assert!(stderr.contains("Label '//e:r' does not refer to a package group"), "{stderr}");
}

#[test]
fn query_visible_uses_the_same_rules() {
    let ws = common::testdata("dropin/visibility");
    // Bazel 4.2.3 prints these (package groups are visible to everyone).
    let mut got = query_ok(&ws, &["query", "visible(//b:pub, //a:*)"]);
    got.sort();
    assert_eq!(got, ["//a:g", "//a:g2", "//a:pub.txt"]);
    let mut got = query_ok(&ws, &["query", "visible(//c:grp + //d:grp, //a:*)"]);
    got.sort();
    assert_eq!(got, ["//a:g", "//a:g2", "//a:grp.txt", "//a:pub.txt", "//a:r", "//a:r.out"]);
}
