//! The persistent load cache (`ocib-out/load-cache`): a repeated `query` re-evaluates only
//! the packages whose inputs changed (BUILD file, loaded .bzl files, glob listing,
//! workspace-wide settings) and answers exactly as a fresh evaluation; a damaged cache file
//! is ignored. `OCIB_DEBUG_LOAD_CACHE=1` makes ocib say how many packages it evaluated.

use std::path::Path;

use crate::common::{Output, copy_workspace, ocib_env, workspace};

/// Runs `ocib query EXPR` with the load cache's notes and without stored answers (so the
/// package cache itself is exercised); returns the output and the counts
/// `(evaluated, from the cache)`.
fn query(dir: &Path, args: &[&str]) -> (Output, (usize, usize)) {
    query_with(dir, args, "0")
}

/// Like [`query`], with stored query answers on (`answers` = "1") or off ("0").
fn query_with(dir: &Path, args: &[&str], answers: &str) -> (Output, (usize, usize)) {
    let mut all = vec!["query"];
    all.extend_from_slice(args);
    let out = ocib_env(dir, &all, &[("OCIB_DEBUG_LOAD_CACHE", "1"), ("OCIB_QUERY_ANSWERS", answers)]);
    let re = regex::Regex::new(r"INFO: load cache: (\d+) packages evaluated, (\d+) from the cache").expect("regex");
    let caps = re.captures(&out.stderr).unwrap_or_else(|| panic!("no load cache counts in:\n{}", out.stderr));
    let counts = (caps[1].parse().expect("count"), caps[2].parse().expect("count"));
    (out, counts)
}

/// Like [`query`], asserting success; returns stdout lines and the counts.
fn query_ok(dir: &Path, args: &[&str]) -> (Vec<String>, (usize, usize)) {
    let (out, counts) = query(dir, args);
    assert_eq!(out.code, 0, "ocib query {args:?} failed:\n{}", out.stderr);
    (out.stdout.lines().map(str::to_owned).collect(), counts)
}

const MACRO: &str = r#"
def pair(name):
    native.filegroup(name = name + "_a", srcs = [])
    native.filegroup(name = name + "_b", srcs = [])
"#;

/// Three packages: `a` and `b` use the macro of `//tools:pair.bzl`, `c` does not.
fn three_packages() -> tempfile::TempDir {
    workspace(&[
        ("MODULE.bazel", "module(name = \"w\")\n"),
        ("tools/BUILD.bazel", ""),
        ("tools/pair.bzl", MACRO),
        ("a/BUILD.bazel", "load(\"//tools:pair.bzl\", \"pair\")\n\npair(name = \"a\")\n"),
        ("b/BUILD.bazel", "load(\"//tools:pair.bzl\", \"pair\")\n\npair(name = \"b\")\n"),
        ("c/BUILD.bazel", "filegroup(name = \"c\", srcs = glob([\"*.txt\"]))\n"),
        ("c/one.txt", ""),
    ])
}

fn write(dir: &Path, path: &str, text: &str) {
    let p = dir.join(path);
    std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
    std::fs::write(p, text).expect("write");
}

#[test]
fn an_unchanged_workspace_is_answered_from_the_cache_identically() {
    let ws = three_packages();
    let (first, counts) = query_ok(ws.path(), &["//..."]);
    assert_eq!(counts, (4, 0), "a first query evaluates every package");
    let (again, counts) = query_ok(ws.path(), &["//..."]);
    assert_eq!(counts, (0, 4), "a repeated query evaluates nothing");
    assert_eq!(again, first);
}

#[test]
fn editing_a_build_file_reevaluates_only_that_package() {
    let ws = three_packages();
    query_ok(ws.path(), &["//..."]);
    write(ws.path(), "b/BUILD.bazel", "load(\"//tools:pair.bzl\", \"pair\")\n\npair(name = \"b\")\n\npair(name = \"b2\")\n");
    let (lines, counts) = query_ok(ws.path(), &["//..."]);
    assert_eq!(counts, (1, 3));
    assert!(lines.iter().any(|l| l == "//b:b2_a"), "the edit shows: {lines:?}");
}

#[test]
fn editing_a_bzl_file_reevaluates_the_packages_that_load_it() {
    let ws = three_packages();
    query_ok(ws.path(), &["//..."]);
    write(ws.path(), "tools/pair.bzl", &MACRO.replace("_b\"", "_renamed\""));
    let (lines, counts) = query_ok(ws.path(), &["//..."]);
    assert_eq!(counts, (2, 2), "a and b load the macro; c and tools do not");
    assert!(lines.iter().any(|l| l == "//a:a_renamed") && !lines.iter().any(|l| l == "//a:a_b"), "{lines:?}");
}

#[test]
fn a_file_a_glob_matches_changes_the_result() {
    let ws = three_packages();
    let (srcs, _) = query_ok(ws.path(), &["--order_output=no", "labels(srcs, //c)"]);
    assert_eq!(srcs, ["//c:one.txt"]);
    write(ws.path(), "c/two.txt", "");
    let (srcs, counts) = query_ok(ws.path(), &["--order_output=no", "labels(srcs, //c)"]);
    assert_eq!(srcs, ["//c:one.txt", "//c:two.txt"]);
    assert_eq!(counts, (1, 0));
    std::fs::remove_file(ws.path().join("c/one.txt")).expect("rm");
    let (srcs, _) = query_ok(ws.path(), &["--order_output=no", "labels(srcs, //c)"]);
    assert_eq!(srcs, ["//c:two.txt"]);
}

#[test]
fn a_glob_sees_files_in_new_subdirectories_and_new_subpackages_end_it() {
    let ws = workspace(&[("MODULE.bazel", ""), ("p/BUILD", "filegroup(name = \"p\", srcs = glob([\"**/*.txt\"]))\n"), ("p/a.txt", "")]);
    let (srcs, _) = query_ok(ws.path(), &["--order_output=no", "labels(srcs, //p)"]);
    assert_eq!(srcs, ["//p:a.txt"]);
    write(ws.path(), "p/sub/b.txt", "");
    let (srcs, _) = query_ok(ws.path(), &["--order_output=no", "labels(srcs, //p)"]);
    assert_eq!(srcs, ["//p:a.txt", "//p:sub/b.txt"]);
    // A BUILD file in `sub` makes it a package of its own, outside p's glob.
    write(ws.path(), "p/sub/BUILD", "");
    let (srcs, _) = query_ok(ws.path(), &["--order_output=no", "labels(srcs, //p)"]);
    assert_eq!(srcs, ["//p:a.txt"]);
}

#[test]
fn packages_added_and_removed_are_seen() {
    let ws = three_packages();
    query_ok(ws.path(), &["//..."]);
    write(ws.path(), "d/BUILD.bazel", "filegroup(name = \"d\")\n");
    std::fs::remove_file(ws.path().join("b/BUILD.bazel")).expect("rm");
    let (lines, counts) = query_ok(ws.path(), &["//..."]);
    assert!(lines.iter().any(|l| l == "//d:d"), "{lines:?}");
    assert!(!lines.iter().any(|l| l.starts_with("//b:")), "{lines:?}");
    assert_eq!(counts, (1, 3), "only the new package is evaluated");
    let (out, _) = query(ws.path(), &["//b:all"]);
    assert_ne!(out.code, 0, "a removed package is no longer answered from the cache:\n{}", out.stdout);
}

#[test]
fn a_build_file_of_the_preferred_name_replaces_the_other() {
    let ws = workspace(&[("MODULE.bazel", ""), ("p/BUILD", "filegroup(name = \"old\")\n")]);
    query_ok(ws.path(), &["//..."]);
    write(ws.path(), "p/BUILD.bazel", "filegroup(name = \"new\")\n");
    let (lines, _) = query_ok(ws.path(), &["//p:all"]);
    assert_eq!(lines, ["//p:new"]);
}

#[test]
fn settings_that_affect_loading_reevaluate_everything() {
    let ws = three_packages();
    write(ws.path(), "c/BUILD.bazel", "filegroup(name = \"c\", srcs = [str(x) for x in range(2000)][:0])\n");
    query_ok(ws.path(), &["//..."]);
    // Evaluation limits (here from .bazelrc) decide whether a package loads at all.
    write(ws.path(), ".bazelrc", "query --starlark_max_steps=500\n");
    let (out, counts) = query(ws.path(), &["//c:all"]);
    assert_ne!(out.code, 0, "the step limit applies to a cached package too:\n{}", out.stdout);
    assert!(out.stderr.contains("Starlark steps"), "{}", out.stderr);
    assert_eq!(counts.1, 0);
    std::fs::remove_file(ws.path().join(".bazelrc")).expect("rm");
    query_ok(ws.path(), &["//..."]);
    // The repository table: `@r` moves to another directory with another macro.
    write(ws.path(), "r1/MODULE.bazel", "");
    write(ws.path(), "r1/BUILD.bazel", "");
    write(ws.path(), "r1/m.bzl", "def m():\n    native.filegroup(name = \"one\")\n");
    write(ws.path(), "r2/MODULE.bazel", "");
    write(ws.path(), "r2/BUILD.bazel", "");
    write(ws.path(), "r2/m.bzl", "def m():\n    native.filegroup(name = \"two\")\n");
    write(ws.path(), "e/BUILD.bazel", "load(\"@r//:m.bzl\", \"m\")\n\nm()\n");
    let module = |path: &str| {
        format!("module(name = \"w\")\n\nbazel_dep(name = \"r\")\nlocal_path_override(module_name = \"r\", path = \"{path}\")\n")
    };
    write(ws.path(), "MODULE.bazel", &module("r1"));
    let (lines, _) = query_ok(ws.path(), &["//e:all"]);
    assert_eq!(lines, ["//e:one"]);
    write(ws.path(), "MODULE.bazel", &module("r2"));
    let (lines, counts) = query_ok(ws.path(), &["//..."]);
    assert!(lines.iter().any(|l| l == "//e:two"), "{lines:?}");
    assert_eq!(counts.1, 0, "a new repository table drops the cache");
}

#[test]
fn a_damaged_cache_file_is_ignored() {
    let ws = three_packages();
    let (expected, _) = query_ok(ws.path(), &["//..."]);
    let file = ws.path().join("ocib-out/load-cache");
    let good = std::fs::read(&file).expect("the cache file is written");
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    for damaged in [flipped, good[..good.len() / 2].to_vec(), b"garbage".to_vec(), Vec::new()] {
        std::fs::write(&file, &damaged).expect("write");
        let (lines, counts) = query_ok(ws.path(), &["//..."]);
        assert_eq!(lines, expected);
        assert_eq!(counts, (4, 0), "nothing is taken from a damaged file");
    }
}

#[test]
fn packages_that_print_print_every_time() {
    let ws = workspace(&[("MODULE.bazel", ""), ("p/BUILD", "print(\"hello from p\")\nfilegroup(name = \"p\")\n")]);
    for _ in 0..2 {
        let (out, _) = query(ws.path(), &["//..."]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        assert!(out.stderr.contains("DEBUG: hello from p"), "{}", out.stderr);
    }
}

/// Every output format shows a package from the cache as it shows an evaluated one, on a
/// monorepo with macros, rule set faces, globs, selects and external repositories.
#[test]
fn cached_packages_print_as_evaluated_ones() {
    let ws = copy_workspace("monorepo");
    for output in ["build", "label_kind", "location", "json", "package"] {
        let _ = std::fs::remove_file(ws.path().join("ocib-out/load-cache"));
        let (fresh, counts) = query_ok(ws.path(), &["--output", output, "deps(//...)"]);
        assert_eq!(counts.1, 0);
        let (cached, counts) = query_ok(ws.path(), &["--output", output, "deps(//...)"]);
        assert!(counts.1 > 0, "nothing came from the cache");
        assert_eq!(cached, fresh, "--output={output}");
    }
}

/// Past the window in which a timestamp cannot tell changes apart (files older than 2 s are
/// trusted by their status, not read), every kind of change still shows.
#[test]
fn changes_to_files_older_than_the_racy_window_show() {
    let ws = three_packages();
    write(ws.path(), "c/deep/x/keep.txt", "");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (first, counts) = query_ok(ws.path(), &["//..."]);
    assert_eq!(counts, (4, 0));
    let (again, counts) = query_ok(ws.path(), &["//..."]);
    assert_eq!((again, counts), (first, (0, 4)));
    // Same size, other content; a new package deep in an existing directory; a new file in a
    // globbed directory.
    write(ws.path(), "a/BUILD.bazel", "load(\"//tools:pair.bzl\", \"pair\")\n\npair(name = \"z\")\n");
    write(ws.path(), "c/deep/x/BUILD", "filegroup(name = \"x\")\n");
    write(ws.path(), "c/two.txt", "");
    let (lines, counts) = query_ok(ws.path(), &["//..."]);
    assert_eq!(counts, (3, 2), "a, c and the new c/deep/x evaluated: {lines:?}");
    assert!(lines.iter().any(|l| l == "//a:z_a") && !lines.iter().any(|l| l == "//a:a_a"), "{lines:?}");
    assert!(lines.iter().any(|l| l == "//c/deep/x:x"), "{lines:?}");
    let (srcs, _) = query_ok(ws.path(), &["--order_output=no", "labels(srcs, //c)"]);
    assert_eq!(srcs, ["//c:one.txt", "//c:two.txt"]);
}

/// Whether the answer came from the stored answers (the note says it was replayed).
fn replayed(out: &Output) -> bool {
    out.stderr.contains("INFO: load cache: answer replayed")
}

/// A three-package workspace past the racy window, so statuses are trusted (`ocib-out` made
/// first: creating it changes the root directory, which the walk for `//...` read).
fn settled() -> tempfile::TempDir {
    let ws = three_packages();
    std::fs::create_dir_all(ws.path().join("ocib-out")).expect("mkdir");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    ws
}

#[test]
fn a_repeated_query_is_answered_from_its_stored_answer_without_decoding() {
    let ws = settled();
    let (first, counts) = query_with(ws.path(), &["deps(//...)"], "1");
    assert_eq!((first.code, counts), (0, (4, 0)), "{}", first.stderr);
    assert!(!replayed(&first));
    let (again, counts) = query_with(ws.path(), &["deps(//...)"], "1");
    assert!(replayed(&again), "{}", again.stderr);
    assert_eq!(counts, (0, 0), "nothing evaluated or decoded");
    assert_eq!((again.code, &again.stdout), (0, &first.stdout));
    // Stderr holds only the cache's own notes, as in the first run.
    let quiet = |s: &str| s.lines().filter(|l| !l.starts_with("INFO: load cache:")).map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(quiet(&again.stderr), quiet(&first.stderr));
}

#[test]
fn another_expression_or_output_flag_is_not_answered_with_a_stored_answer() {
    let ws = settled();
    let (labels, _) = query_with(ws.path(), &["//..."], "1");
    let (kinds, _) = query_with(ws.path(), &["--output=label_kind", "//..."], "1");
    assert!(!replayed(&kinds));
    assert!(kinds.stdout.contains("filegroup rule //c:c"), "{}", kinds.stdout);
    let (one, _) = query_with(ws.path(), &["//c:all"], "1");
    assert!(!replayed(&one));
    assert_eq!(one.stdout, "//c:c\n");
    // Each is then answered with its own output.
    for (args, want) in [(&["//..."][..], &labels), (&["--output=label_kind", "//..."][..], &kinds), (&["//c:all"][..], &one)] {
        let (out, _) = query_with(ws.path(), args, "1");
        assert!(replayed(&out), "{args:?}: {}", out.stderr);
        assert_eq!(out.stdout, want.stdout, "{args:?}");
    }
}

#[test]
fn an_edited_build_file_or_a_new_package_gives_a_new_correct_answer() {
    let ws = settled();
    let (first, _) = query_with(ws.path(), &["//..."], "1");
    assert!(first.stdout.contains("//a:a_a"), "{}", first.stdout);
    write(ws.path(), "a/BUILD.bazel", "load(\"//tools:pair.bzl\", \"pair\")\n\npair(name = \"z\")\n");
    let (edited, counts) = query_with(ws.path(), &["//..."], "1");
    assert!(!replayed(&edited), "{}", edited.stderr);
    assert_eq!(counts, (1, 3));
    assert!(edited.stdout.contains("//a:z_a") && !edited.stdout.contains("//a:a_a"), "{}", edited.stdout);
    write(ws.path(), "d/BUILD", "filegroup(name = \"d\")\n");
    let (added, _) = query_with(ws.path(), &["//..."], "1");
    assert!(!replayed(&added), "{}", added.stderr);
    assert!(added.stdout.contains("//d:d"), "{}", added.stdout);
    write(ws.path(), "tools/pair.bzl", &MACRO.replace("_b\"", "_c\""));
    let (macro_edit, _) = query_with(ws.path(), &["//..."], "1");
    assert!(!replayed(&macro_edit), "{}", macro_edit.stderr);
    assert!(macro_edit.stdout.contains("//a:z_c"), "{}", macro_edit.stdout);
}

#[test]
fn a_query_with_warnings_or_errors_is_evaluated_each_time() {
    let ws = settled();
    write(ws.path(), "e/BUILD", "filegroup(name = \"e\", srcs = [\"//nowhere:x\"])\n");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let run = || query_with(ws.path(), &["--keep_going", "deps(//...)"], "1").0;
    let first = run();
    let again = run();
    assert_ne!(first.code, 0, "{}", first.stderr);
    assert!(!replayed(&again), "{}", again.stderr);
    assert_eq!((again.code, &again.stdout), (first.code, &first.stdout));
    let errors = |s: &str| s.lines().filter(|l| l.starts_with("ERROR") || l.starts_with("WARNING")).map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(errors(&again.stderr), errors(&first.stderr));
    // An empty result says so each time.
    let empty = || query_with(ws.path(), &["kind(cc_binary, //...)"], "1").0;
    let (a, b) = (empty(), empty());
    assert!(b.stderr.contains("INFO: Empty results") && !replayed(&b), "{}", b.stderr);
    assert_eq!(a.code, b.code);
}

#[test]
fn bazels_convenience_symlinks_are_not_walked_and_its_output_base_does_not_spoil_answers() {
    // Bazel run in the same workspace leaves `bazel-<name>`, `bazel-bin`, `bazel-out` links
    // into its output base, which holds the workspace's packages again (the execroot links
    // each top-level entry) and changes with every Bazel command. Bazel 4.2.3 itself skips
    // them in `//...`; so does ocib, and Bazel's commands must not make a stored answer stale.
    let ws = settled();
    let base = tempfile::tempdir().expect("tempdir");
    let execroot = base.path().join("execroot/w");
    write(&execroot, "a/BUILD.bazel", "filegroup(name = \"copy\")\n");
    write(&execroot, "bazel-out/k8-fastbuild/bin/b/BUILD", "filegroup(name = \"copy\")\n");
    std::os::unix::fs::symlink(&execroot, ws.path().join("bazel-w")).expect("symlink");
    std::os::unix::fs::symlink(execroot.join("bazel-out"), ws.path().join("bazel-out")).expect("symlink");
    std::os::unix::fs::symlink(execroot.join("bazel-out/k8-fastbuild/bin"), ws.path().join("bazel-bin")).expect("symlink");
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (first, _) = query_with(ws.path(), &["//..."], "1");
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(!first.stdout.contains("copy"), "walked into the output base:\n{}", first.stdout);
    // What a Bazel command does to its output base.
    write(&execroot, "bazel-out/k8-fastbuild/bin/c/BUILD", "filegroup(name = \"copy\")\n");
    write(&execroot, "bazel-out/volatile-status.txt", "BUILD_TIMESTAMP 1\n");
    let (again, counts) = query_with(ws.path(), &["//..."], "1");
    assert!(replayed(&again), "{}", again.stderr);
    assert_eq!((counts, &again.stdout), ((0, 0), &first.stdout));
}

/// A workspace whose packages exercise what query's graph reads: rules with outputs, `select()` conditions, `test_suite`s (empty: the package's tests not tagged
/// manual), and macros (locations and stacks that graph-only decoding leaves out).
fn graph_workspace() -> tempfile::TempDir {
    workspace(&[
        ("MODULE.bazel", "module(name = \"w\")\n"),
        ("tools/BUILD.bazel", "config_setting(name = \"opt\", values = {\"compilation_mode\": \"opt\"})\n"),
        ("tools/pair.bzl", MACRO),
        ("a/BUILD.bazel", "load(\"//tools:pair.bzl\", \"pair\")\n\npair(name = \"a\")\n"),
        (
            "b/BUILD.bazel",
            r#"load("//tools:pair.bzl", "pair")

pair(name = "b")

genrule(name = "gen", srcs = ["//a:a_a"], outs = ["gen.txt"], cmd = "touch $@")

filegroup(name = "sel", srcs = select({"//tools:opt": [":gen"], "//conditions:default": ["//c:c"]}))

sh_test(name = "t", srcs = ["t.sh"], deps = [":sel"])

sh_test(name = "m", srcs = ["t.sh"], tags = ["manual"])

test_suite(name = "suite")
"#,
        ),
        ("b/t.sh", ""),
        ("c/BUILD.bazel", "filegroup(name = \"c\", srcs = glob([\"*.txt\"]))\n"),
        ("c/one.txt", ""),
    ])
}

/// Every query shape that decodes packages from the load cache as their target graph only
/// (label, label_kind, package and graph output of patterns, set operations, `deps`,
/// `rdeps`, `kind`, `filter`, `somepath`, `allpaths`, `siblings`), and some that decode them
/// whole (`--output=build`, `attr`, `labels`, `tests`).
const GRAPH_QUERIES: &[&[&str]] = &[
    &["//..."],
    &["--output=label_kind", "//..."],
    &["--output=package", "//..."],
    &["--output=graph", "deps(//...)"],
    &["deps(//b:suite)"],
    &["kind(filegroup, //...) + kind('sh_test', //...)"],
    &["rdeps(//..., //c:c)"],
    &["somepath(//b:t, //c:one.txt)"],
    &["allpaths(//b:t, //a:a_a)"],
    &["filter('_b$', //...) except //b:all"],
    &["siblings(//b:gen.txt)"],
    &["--output=build", "//b:all"],
    &["--output=location", "//..."],
    &["attr(srcs, 'c:c', //...)"],
    &["labels(srcs, //b:sel)"],
    &["tests(//b:suite)"],
];

/// Each of [`GRAPH_QUERIES`] twice: evaluated with no load cache, then from the cache (no
/// stored answers): stdout and exit code must be the same.
fn assert_cached_answers_fresh(dir: &Path) {
    for args in GRAPH_QUERIES {
        let _ = std::fs::remove_file(dir.join("ocib-out/load-cache"));
        let (fresh, counts) = query(dir, args);
        assert_eq!((fresh.code, counts.1), (0, 0), "{args:?}: nothing from the cache the first time: {}", fresh.stderr);
        let (cached, counts) = query(dir, args);
        assert!(counts.1 > 0, "{args:?}: packages from the cache: {}", cached.stderr);
        assert_eq!((cached.code, &cached.stdout), (fresh.code, &fresh.stdout), "{args:?}: {}", cached.stderr);
    }
}

#[test]
fn queries_answered_from_the_cache_print_what_a_fresh_evaluation_prints() {
    let ws = graph_workspace();
    assert_cached_answers_fresh(ws.path());
}

#[test]
fn a_repeated_query_after_an_edit_gives_the_answer_of_a_fresh_one() {
    for args in GRAPH_QUERIES {
        let ws = graph_workspace();
        let (first, _) = query_with(ws.path(), args, "1");
        assert_eq!(first.code, 0, "{args:?}: {}", first.stderr);
        let b = std::fs::read_to_string(ws.path().join("b/BUILD.bazel")).expect("read");
        write(ws.path(), "b/BUILD.bazel", &b.replace("\":sel\"]", "\":sel\", \"//a:a_b\"]"));
        write(ws.path(), "c/BUILD.bazel", "filegroup(name = \"c\", srcs = glob([\"*.txt\"]), tags = [\"x\"])\n\nfilegroup(name = \"d\")\n");
        // The edited packages evaluated, the others (if it reads others) from the cache; the
        // stored answer not used.
        let (edited, _) = query_with(ws.path(), args, "1");
        assert!(!replayed(&edited), "{args:?}: {}", edited.stderr);
        std::fs::remove_file(ws.path().join("ocib-out/load-cache")).expect("rm");
        let (fresh, _) = query_with(ws.path(), args, "0");
        assert_eq!((edited.code, &edited.stdout), (fresh.code, &fresh.stdout), "{args:?}: {}", edited.stderr);
    }
}

#[test]
fn cquery_and_fetch_take_packages_from_the_cache() {
    let ws = three_packages();
    let counts = |out: &Output| -> (usize, usize) {
        let re = regex::Regex::new(r"INFO: load cache: (\d+) packages evaluated, (\d+) from the cache").expect("regex");
        let caps = re.captures(&out.stderr).unwrap_or_else(|| panic!("no load cache counts in:\n{}", out.stderr));
        (caps[1].parse().expect("count"), caps[2].parse().expect("count"))
    };
    let cquery = |args: &[&str]| {
        let mut all = vec!["cquery"];
        all.extend_from_slice(args);
        let out = ocib_env(ws.path(), &all, &[("OCIB_DEBUG_LOAD_CACHE", "1")]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        out
    };
    let fresh = cquery(&["deps(//a:a_a + //c)"]);
    assert_eq!(counts(&fresh).1, 0, "{}", fresh.stderr);
    let cached = cquery(&["deps(//a:a_a + //c)"]);
    assert_eq!(counts(&cached), (0, 2), "{}", cached.stderr);
    assert_eq!(cached.stdout, fresh.stdout);
    // An edit is seen: `c` evaluated again, its new file in the result.
    write(ws.path(), "c/two.txt", "");
    let edited = cquery(&["deps(//c)"]);
    assert_eq!(counts(&edited), (1, 0), "{}", edited.stderr);
    assert!(edited.stdout.contains("//c:two.txt"), "{}", edited.stdout);

    let fetch = ocib_env(ws.path(), &["fetch", "//a:all", "//b:all"], &[("OCIB_DEBUG_LOAD_CACHE", "1")]);
    assert_eq!(fetch.code, 0, "{}", fetch.stderr);
    assert_eq!(counts(&fetch), (1, 1), "b evaluated, a from the cache:\n{}", fetch.stderr);
}
