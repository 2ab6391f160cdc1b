//! One error path: a command that fails on a load error prints exactly one `ERROR:` line
//! (the error and its cause chain, each location once), on an analysis error Bazel's two
//! (the failing rule, then the aborted build), and exits with Bazel's code for it.

use crate::common;

use common::{Output, ocib, workspace};

/// `//a` → `//b` → `//c`, and `c/BUILD` is the given text (plus a private `//d:d`).
fn chain(c_build: &str) -> tempfile::TempDir {
    workspace(&[
        ("MODULE.bazel", ""),
        ("a/BUILD", "filegroup(name = \"a\", srcs = [\"//b\"])\n"),
        ("b/BUILD", "filegroup(name = \"b\", srcs = [\"//c\"], visibility = [\"//visibility:public\"])\n"),
        ("c/BUILD", c_build),
        ("d/BUILD", "filegroup(name = \"d\", srcs = [\"d.txt\"])\n"),
        ("d/d.txt", "d\n"),
    ])
}

/// The lines of stderr that start with `ERROR:`.
fn error_lines(out: &Output) -> Vec<&str> {
    out.stderr.lines().filter(|l| l.starts_with("ERROR:")).collect()
}

fn assert_one_error(out: &Output, code: i32) -> String {
    assert_eq!(out.code, code, "exit code; stderr:\n{}", out.stderr);
    let errors = error_lines(out);
    assert_eq!(errors.len(), 1, "exactly one ERROR line, got:\n{}", out.stderr);
    errors[0].to_owned()
}

/// `//c`'s package fails to load (an attribute of the wrong type): `build //a` says so once,
/// with the package's location, then that the build was aborted (as Bazel), and exits 1.
#[test]
fn load_error_of_a_dependency_is_reported_once() {
    let ws = chain("genrule(name = \"c\", outs = [\"c.txt\"], cmd = 3, visibility = [\"//visibility:public\"])\n");
    let out = ocib(ws.path(), &["build", "//a"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let errors = error_lines(&out);
    assert_eq!(errors.len(), 2, "the load error, then the aborted build:\n{}", out.stderr);
    assert!(out.stderr.contains("c/BUILD:1:8: //c:c: attribute 'cmd' of 'genrule' rule"), "{}", out.stderr);
    assert!(!out.stderr.contains("in filegroup rule"), "only the failing package is named: {}", out.stderr);
    assert!(errors[1].starts_with("ERROR: Analysis of target '//a:a' failed; build aborted"), "{}", out.stderr);

    // query: the failed evaluation is the one error, exit 7.
    let out = ocib(ws.path(), &["query", "deps(//a)"]);
    let line = assert_one_error(&out, 7);
    assert!(line.starts_with("ERROR: Evaluation of query \"deps(//a)\" failed: "), "{line}");
}

/// `//c` depends on a target it may not see (an analysis error three targets deep): as
/// Bazel, one line names the failing rule once with its location and why, then one line ends
/// the build naming the requested target; exit 1 for build, 7 for cquery.
#[test]
fn analysis_error_deep_in_the_graph_names_the_failing_rule_once() {
    let ws =
        chain("genrule(name = \"c\", srcs = [\"//d\"], outs = [\"c.txt\"], cmd = \"cp $< $@\", visibility = [\"//visibility:public\"])\n");
    let out = ocib(ws.path(), &["build", "//a"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let root = format!("{}/", ws.path().display());
    assert_eq!(
        error_lines(&out).iter().map(|l| l.replace(&root, "")).collect::<Vec<_>>(),
        [
            "ERROR: c/BUILD:1:8: in genrule rule //c:c: target '//d:d' is not visible from target '//c:c'. Check the visibility declaration of the former target if you think the dependency is legitimate",
            "ERROR: Analysis of target '//a:a' failed; build aborted: Analysis of target '//c:c' failed",
        ],
        "{}",
        out.stderr
    );

    // cquery reports it as build does (Bazel 4.2.3: the same two lines, exit 1).
    let cquery = ocib(ws.path(), &["cquery", "//a"]);
    assert_eq!(cquery.code, 1, "{}", cquery.stderr);
    assert_eq!(error_lines(&cquery), error_lines(&out), "{}", cquery.stderr);
}
