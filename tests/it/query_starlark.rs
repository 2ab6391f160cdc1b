//! Starlark evaluation features BUILD files rely on (testdata/starlark), and the command
//! line's .bazelrc handling.

use crate::common::{ocib, query_ok, testdata, workspace};

fn repo() -> std::path::PathBuf {
    testdata("starlark")
}

#[test]
fn bazel_prelude_names_are_visible_in_every_build_file() {
    // `append_and_declare` and PRELUDE_GREETING come from tools/build_rules/prelude_bazel.
    let out = query_ok(&repo(), &["query", "--order_output=no", "//app:appended + //app:gen_x", "--output=build"]).join("\n");
    assert!(out.contains("cmd = \"echo hello from the prelude > $@\""), "{out}");
}

#[test]
fn macros_receive_unfrozen_values() {
    let srcs = query_ok(&repo(), &["query", "--order_output=no", "labels(srcs, //app:appended)"]);
    assert_eq!(srcs, ["//app:appended.txt", "//app:b.txt"]);
}

#[test]
fn native_functions_and_label_objects() {
    let out =
        query_ok(&repo(), &["query", "--order_output=no", "//app:first + //app:second + //app:first_rule", "--output=build"]).join("\n");
    // package_name(), repository_name() and existing_rule() as seen from a macro.
    assert!(out.contains("cmd = \"echo app @ filegroup > $@\""), "{out}");
    assert!(out.contains("cmd = \"echo app @ none > $@\""), "{out}");
    // str(Label(...)) in a macro resolves against the .bzl file's package.
    assert!(out.contains("required = \"//defs:rules.bzl\""), "{out}");
    // The same module loaded twice (once under an alias) declares both.
    assert!(out.contains("name = \"second\""), "{out}");
}

#[test]
fn starlark_rules_have_their_exported_name_as_kind_and_check_attributes() {
    let kinds = query_ok(&repo(), &["query", "--order_output=no", "kind(my_rule, //...)", "--output=label_kind"]);
    assert_eq!(kinds, ["my_rule rule //app:direct", "my_rule rule //app:first_rule", "my_rule rule //app:second_rule"]);
    // Declared defaults count for attr().
    let vanilla = query_ok(&repo(), &["query", "--order_output=no", "attr(flavour, vanilla, //app:all)"]);
    assert_eq!(vanilla, ["//app:direct"]);
    let ws = workspace(&[
        ("WORKSPACE", ""),
        ("defs/BUILD", ""),
        (
            "defs/r.bzl",
            "r = rule(implementation = lambda ctx: None, attrs = {\"req\": attr.string(mandatory = True), \"n\": attr.int()})\n",
        ),
        ("a/BUILD", "load(\"//defs:r.bzl\", \"r\")\nr(name = \"x\", req = \"y\", n = \"three\")\n"),
        ("b/BUILD", "load(\"//defs:r.bzl\", \"r\")\nr(name = \"x\")\n"),
        ("c/BUILD", "load(\"//defs:r.bzl\", \"r\")\nr(name = \"x\", req = \"y\", nope = 1)\n"),
    ]);
    let wrong_type = ocib(ws.path(), &["query", "--order_output=no", "//a:x"]);
    assert!(wrong_type.stderr.contains("attribute 'n' of 'r' rule: expected a value of type 'int'"), "{}", wrong_type.stderr);
    let missing = ocib(ws.path(), &["query", "--order_output=no", "//b:x"]);
    assert!(missing.stderr.contains("missing value for mandatory attribute 'req' in 'r' rule"), "{}", missing.stderr);
    let unknown = ocib(ws.path(), &["query", "--order_output=no", "//c:x"]);
    assert!(unknown.stderr.contains("no such attribute 'nope' in 'r' rule"), "{}", unknown.stderr);
}

#[test]
fn select_is_kept_with_its_concatenation_and_conditions_are_deps() {
    let out = query_ok(&repo(), &["query", "--order_output=no", "//app:selected", "--output=build"]).join("\n");
    assert!(
        out.contains("srcs = [\"//app:a.txt\"] + select({\"//app:is_linux\": [\"//app:linux.txt\"], \"//conditions:default\": [\"//app:other.txt\"]}),"),
        "{out}"
    );
    let deps = query_ok(&repo(), &["query", "--order_output=no", "deps(//app:selected, 1)"]);
    assert_eq!(deps, ["//app:a.txt", "//app:is_linux", "//app:linux.txt", "//app:other.txt", "//app:selected"]);
}

#[test]
fn top_level_list_comprehensions_declare_rules() {
    let lines = query_ok(&repo(), &["query", "--order_output=no", "kind(genrule, //app:all)"]);
    assert!(lines.contains(&"//app:gen_x".to_owned()) && lines.contains(&"//app:gen_y".to_owned()), "{lines:?}");
}

#[test]
fn symbols_of_unknown_repositories_record_their_arguments() {
    let out = ocib(&repo(), &["query", "--order_output=no", "//app:mystery", "--output=label_kind"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "mystery_rule rule //app:mystery\n");
    assert_eq!(out.stderr.matches("repository '@some_unknown_rules' is not known to ocib").count(), 1, "{}", out.stderr);
}

#[test]
fn target_names_with_punctuation() {
    let lines = query_ok(&repo(), &["query", "--order_output=no", "deps(//names:uses_odd)"]);
    assert_eq!(lines, ["//names:a.b-c+d@e", "//names:uses_odd", "//names:with/slash"]);
    assert_eq!(query_ok(&repo(), &["query", "--order_output=no", "\"//names:a.b-c+d@e\""]), ["//names:a.b-c+d@e"]);
}

#[test]
fn all_targets_include_build_file_outputs_and_referenced_sources() {
    let lines = query_ok(&repo(), &["query", "--order_output=no", "//app:*"]);
    for want in ["//app:BUILD.bazel", "//app:x.out", "//app:first.txt", "//app:local.txt", "//app:test.sh", "//app:direct"] {
        assert!(lines.contains(&want.to_owned()), "missing {want}: {lines:?}");
    }
    let rules_only = query_ok(&repo(), &["query", "--order_output=no", "//app:all"]);
    assert!(!rules_only.contains(&"//app:x.out".to_owned()));
}

#[test]
fn tests_and_test_suites() {
    assert_eq!(query_ok(&repo(), &["query", "--order_output=no", "tests(//app:suite)"]), ["//app:unit_test"]);
    // tests() over a wildcard includes manual tests, as in Bazel.
    assert_eq!(query_ok(&repo(), &["query", "--order_output=no", "tests(//...)"]), ["//app:manual_test", "//app:unit_test"]);
}

#[test]
fn buildfiles_and_loadfiles() {
    let loads = query_ok(&repo(), &["query", "--order_output=no", "loadfiles(//app:direct)"]);
    assert_eq!(
        loads,
        ["//defs:macros.bzl", "//defs:rules.bzl", "//tools/build_rules:prelude_bazel", "@some_unknown_rules//tools:defs.bzl"]
            .map(String::from)
            .into_iter()
            .filter(|l| !l.starts_with('@'))
            .collect::<Vec<_>>()
    );
    let builds = query_ok(&repo(), &["query", "--order_output=no", "buildfiles(//app:direct)"]);
    assert!(builds.contains(&"//app:BUILD.bazel".to_owned()) && builds.contains(&"//defs:BUILD.bazel".to_owned()), "{builds:?}");
}

#[test]
fn rc_files_import_configs_and_unimplemented_flags() {
    let ws = workspace(&[
        ("WORKSPACE", ""),
        ("p/BUILD", "filegroup(name = \"a\")\n"),
        (
            ".bazelrc",
            "import %workspace%/shared.bazelrc\ntry-import %workspace%/missing.bazelrc\nquery --experimental_something_ocib_lacks\n",
        ),
        ("shared.bazelrc", "query:lk --config=inner\nquery:inner --output=label_kind\n"),
    ]);
    let out = ocib(ws.path(), &["query", "--order_output=no", "--config=lk", "//p:a"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "filegroup rule //p:a\n");
    assert_eq!(
        out.stderr.matches("ignoring options from .bazelrc that ocib does not implement: --experimental_something_ocib_lacks").count(),
        1,
        "{}",
        out.stderr
    );
    // The same flag typed on the command line is an error.
    let typed = ocib(ws.path(), &["query", "--order_output=no", "--experimental_something_ocib_lacks", "//p:a"]);
    assert_eq!(typed.code, 2);
    // --noFLAG negates a boolean flag, whatever the rc file said.
    let ws2 = workspace(&[
        ("WORKSPACE", ""),
        ("p/BUILD", "filegroup(name = \"a\")\n"),
        ("q/BUILD", "filegroup(name = \"b\", srcs = [\"//nope:x\"])\n"),
        (".bazelrc", "common --keep_going\n"),
    ]);
    let kept = ocib(ws2.path(), &["query", "--order_output=no", "deps(//...)"]);
    assert_eq!(kept.code, 3, "{}", kept.stderr);
    let strict = ocib(ws2.path(), &["query", "--order_output=no", "--nokeep_going", "deps(//...)"]);
    assert_eq!(strict.code, 7, "{}", strict.stderr);
}

#[test]
fn workspace_macros_local_repositories_and_module_deps() {
    let ws = workspace(&[
        (
            "MODULE.bazel",
            "module(name = \"main\")\nbazel_dep(name = \"rules_go\", version = \"0.50.0\")\nbazel_dep(name = \"mylib\", version = \"1.0\")\nlocal_path_override(module_name = \"mylib\", path = \"vendor/mylib\")\n",
        ),
        ("WORKSPACE", "load(\"//tools:deps.bzl\", \"deps\")\ndeps()\n"),
        // Bazel 7 evaluates both MODULE.bazel and WORKSPACE.
        (".bazelversion", "7.4.1\n"),
        ("tools/BUILD", ""),
        (
            "tools/deps.bzl",
            "load(\"@bazel_tools//tools/build_defs/repo:utils.bzl\", \"maybe\")\n\ndef deps():\n    maybe(native.local_repository, name = \"ext\", path = \"vendor/ext\")\n    maybe(native.local_repository, name = \"ext\", path = \"ignored\")\n",
        ),
        ("vendor/ext/WORKSPACE", ""),
        ("vendor/ext/lib/BUILD", "filegroup(name = \"lib\", srcs = [\"//other:f\"], visibility = [\"//visibility:public\"])\n"),
        ("vendor/ext/other/BUILD", "exports_files([\"f\"])\n"),
        ("vendor/mylib/MODULE.bazel", "module(name = \"mylib\")\n"),
        ("vendor/mylib/BUILD.bazel", "filegroup(name = \"mylib\")\n"),
        (
            "app/BUILD",
            "load(\"@rules_go//go:def.bzl\", \"go_library\")\ngo_library(name = \"l\", srcs = [\"l.go\"], importpath = \"x/l\", deps = [\"@ext//lib\", \"@mylib\", \"@main//app:m\"])\nfilegroup(name = \"m\")\n",
        ),
    ]);
    let deps = query_ok(ws.path(), &["query", "--order_output=no", "deps(//app:l)"]);
    assert_eq!(deps, ["//app:l", "//app:l.go", "//app:m", "@ext//lib:lib", "@ext//other:f", "@mylib//:mylib"]);
    // Nested repositories are not part of //...
    assert_eq!(query_ok(ws.path(), &["query", "--order_output=no", "//..."]), ["//app:l", "//app:m"]);
}

#[test]
fn only_the_packages_an_expression_needs_are_loaded() {
    let ws = workspace(&[
        ("WORKSPACE", ""),
        ("good/BUILD", "filegroup(name = \"a\", srcs = [\"//dep:b\"])\n"),
        ("dep/BUILD", "filegroup(name = \"b\")\n"),
        ("broken/BUILD", "this does not parse (\n"),
    ]);
    // deps() loads good and dep, never broken.
    assert_eq!(query_ok(ws.path(), &["query", "--order_output=no", "deps(//good:a)"]), ["//dep:b", "//good:a"]);
    // A wildcard does load it, and fails.
    assert_eq!(ocib(ws.path(), &["query", "--order_output=no", "//..."]).code, 7);
    // Unless --keep_going: then the good packages are still reported, with exit 3.
    let kept = ocib(ws.path(), &["query", "--order_output=no", "//...", "--keep_going"]);
    assert_eq!(kept.code, 3, "{}", kept.stderr);
    assert_eq!(kept.stdout, "//dep:b\n//good:a\n");
    assert!(kept.stderr.contains("broken/BUILD:1:"), "{}", kept.stderr);
}

#[test]
fn keep_going_reports_the_targets_a_failing_package_created_before_its_error() {
    // As Bazel 4 (`bazel query //... --keep_going` prints //half:before, not //half:after).
    let ws = workspace(&[
        ("WORKSPACE", ""),
        ("good/BUILD", "filegroup(name = \"a\")\n"),
        ("half/BUILD", "filegroup(name = \"before\")\nfail(\"stop here\")\nfilegroup(name = \"after\")\n"),
    ]);
    let strict = ocib(ws.path(), &["query", "--order_output=no", "//..."]);
    assert_eq!(strict.code, 7, "{}", strict.stderr);
    assert!(strict.stdout.is_empty(), "{}", strict.stdout);
    let kept = ocib(ws.path(), &["query", "--order_output=no", "//...", "--keep_going"]);
    assert_eq!(kept.code, 3, "{}", kept.stderr);
    assert_eq!(kept.stdout, "//good:a\n//half:before\n");
    assert!(kept.stderr.contains("half/BUILD:2:") && kept.stderr.contains("stop here"), "{}", kept.stderr);
    assert_eq!(ocib(ws.path(), &["query", "--order_output=no", "--keep_going", "//half:before"]).stdout, "//half:before\n");
}
