//! One error path: a command that fails on a load or analysis error prints exactly one
//! `ERROR:` line (the error and its cause chain, each location once) and exits with Bazel's
//! code for it.

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
/// with the package's location, and exits 1.
#[test]
fn load_error_of_a_dependency_is_one_error_line() {
    let ws = chain("genrule(name = \"c\", outs = [\"c.txt\"], cmd = 3, visibility = [\"//visibility:public\"])\n");
    let out = ocib(ws.path(), &["build", "//a"]);
    let line = assert_one_error(&out, 1);
    assert!(line.contains("Analysis of target '//a:a' failed; build aborted"), "{line}");
    assert!(out.stderr.contains("attribute 'cmd' of 'genrule' rule"), "{}", out.stderr);
    assert!(out.stderr.contains("c/BUILD:1:"), "{}", out.stderr);

    // query: the failed evaluation is the one error, exit 7.
    let out = ocib(ws.path(), &["query", "deps(//a)"]);
    let line = assert_one_error(&out, 7);
    assert!(line.starts_with("ERROR: Evaluation of query \"deps(//a)\" failed: "), "{line}");
}

/// `//c` depends on a target it may not see (an analysis error three targets deep): one
/// error line naming each rule of the chain exactly once, deepest last; exit 1 for build,
/// 7 for cquery.
#[test]
fn analysis_error_deep_in_the_graph_is_one_error_line_naming_each_rule_once() {
    let ws =
        chain("genrule(name = \"c\", srcs = [\"//d\"], outs = [\"c.txt\"], cmd = \"cp $< $@\", visibility = [\"//visibility:public\"])\n");
    let out = ocib(ws.path(), &["build", "//a"]);
    let line = assert_one_error(&out, 1);
    assert!(line.contains("target '//d:d' is not visible from target '//c:c'"), "{line}");
    for rule in ["in filegroup rule //a:a: ", "in filegroup rule //b:b: ", "in genrule rule //c:c: "] {
        assert_eq!(line.matches(rule).count(), 1, "'{rule}' once in: {line}");
    }
    let (a, b, c) = (line.find("//a:a: "), line.find("//b:b: "), line.find("//c:c: "));
    assert!(a < b && b < c, "outermost first: {line}");
    for file in ["a/BUILD:1:10", "b/BUILD:1:10", "c/BUILD:1:8"] {
        assert_eq!(line.matches(file).count(), 1, "'{file}' once in: {line}");
    }

    let out = ocib(ws.path(), &["cquery", "//a"]);
    let line = assert_one_error(&out, 7);
    assert!(line.contains("in genrule rule //c:c: target '//d:d' is not visible"), "{line}");
}
