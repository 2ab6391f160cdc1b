//! Bazel's command-line habits, each checked against what Bazel 4.2.3 (Debian's
//! bazel-bootstrap, run offline on the same workspace) prints and exits with, so that a script
//! written for `bazel` runs with `ocib`: `--help` on every command, `info` keys, flags ocib
//! accepts and ignores, empty target lists, query ordering, `--output=graph`, the lexing of
//! `-`, empty `test_suite`s, manual configuration rules, "instantiated at" stacks, "did you
//! mean", and shell completion.

use std::path::Path;
use std::process::Command;

use crate::common::{ocib, query_ok, workspace};

/// A workspace with a dependency graph whose Bazel 4.2.3 orders are known: `top` reaches
/// `leaf` through `m1` and `m2` (same predecessors and successors: one factored graph node),
/// `m3` reaches `other`, and two lone targets (also one factored node).
fn graph_workspace() -> tempfile::TempDir {
    workspace(&[
        ("WORKSPACE", ""),
        (
            "g/BUILD",
            r#"filegroup(name = "top", srcs = [":m1", ":m2", ":m3"])
filegroup(name = "m1", srcs = [":leaf"])
filegroup(name = "m2", srcs = [":leaf"])
filegroup(name = "m3", srcs = [":other"])
filegroup(name = "leaf")
filegroup(name = "other")
filegroup(name = "lone1")
filegroup(name = "lone2")
"#,
        ),
        (
            "x/defs.bzl",
            r#"def my_macro(name, **kwargs):
    native.filegroup(name = name, srcs = ["//y:a"], **kwargs)

def outer(name):
    my_macro(name = name + "_inner")
"#,
        ),
        (
            "x/BUILD",
            r#"sh_test(name = "t", srcs = ["t.sh"])
genrule(name = "g", outs = ["g.txt"], cmd = "echo hi > $@")
test_suite(name = "empty_suite")
config_setting(name = "cs", values = {"compilation_mode": "opt"})
filegroup(name = "fg", srcs = [":g", "//y:a"])
load(":defs.bzl", "my_macro", "outer")
my_macro(name = "m")
outer(name = "o")
sh_test(name = "t2", srcs = ["t.sh"], tags = ["manual"])
"#,
        ),
        ("x/t.sh", "#!/bin/sh\nexit 0\n"),
        (
            "y/BUILD",
            r#"filegroup(name = "a", srcs = [":b"], visibility = ["//visibility:public"])
filegroup(name = "b", srcs = ["f.txt"])
config_setting(name = "c2", values = {"compilation_mode": "opt"}, tags = ["foo"])
constraint_setting(name = "cons")
constraint_value(name = "cv", constraint_setting = ":cons")
platform(name = "plat")
"#,
        ),
        ("y/f.txt", ""),
        ("s/r.bzl", "def _impl(ctx):\n    pass\n\nmy_rule = rule(implementation = _impl, attrs = {\"x\": attr.string()})\n"),
        ("s/BUILD", "load(\":r.bzl\", \"my_rule\")\nmy_rule(name = \"sr\", x = \"1\")\n"),
    ])
}

const COMMANDS: &[&str] = &["build", "test", "run", "query", "cquery", "push", "clean", "fetch", "info", "completion"];

#[test]
fn help_on_every_command_exits_zero_like_help_command() {
    let ws = graph_workspace();
    for command in COMMANDS {
        let help = ocib(ws.path(), &["help", command]);
        assert_eq!(help.code, 0, "ocib help {command}: {}", help.stderr);
        for flag in ["--help", "-h"] {
            let out = ocib(ws.path(), &[command, flag]);
            assert_eq!(out.code, 0, "ocib {command} {flag}: {}", out.stderr);
            assert!(out.stdout.contains(&format!("Usage: ocib {command}")), "ocib {command} {flag}:\n{}", out.stdout);
        }
    }
}

#[test]
fn info_answers_every_key_it_advertises_and_one_key_alone() {
    let ws = graph_workspace();
    let root = ws.path().canonicalize().unwrap();
    let help = ocib(ws.path(), &["help", "info"]).stdout;
    let all = query_ok(ws.path(), &["info"]);
    let keys: Vec<&str> = all.iter().filter_map(|l| l.split_once(": ").map(|(k, _)| k)).collect();
    for key in ["workspace", "bazel-bin", "bazel-genfiles", "bazel-testlogs", "output_base", "output_path", "execution_root", "release"] {
        assert!(keys.contains(&key), "info lacks {key}: {all:?}");
    }
    for key in &keys {
        assert!(help.contains(&format!("{key}: ")), "`ocib help info` does not advertise {key}:\n{help}");
        // Bazel prints a single key's value alone.
        let value = query_ok(ws.path(), &["info", key]);
        assert_eq!(value.len(), 1, "{key}: {value:?}");
        assert!(all.contains(&format!("{key}: {}", value[0])), "{key}: {value:?} vs {all:?}");
    }
    assert_eq!(query_ok(ws.path(), &["info", "workspace"]), [root.display().to_string()]);
    assert_eq!(query_ok(ws.path(), &["info", "bazel-bin"]), [root.join("ocib-out/bin").display().to_string()]);
    // Several keys: `key: value` lines, as Bazel.
    let two = query_ok(ws.path(), &["info", "workspace", "bazel-testlogs"]);
    assert_eq!(two, [format!("workspace: {}", root.display()), format!("bazel-testlogs: {}", root.join("ocib-out/testlogs").display())]);
    // A key ocib cannot answer (no server) is an error naming it, exit 2 as Bazel's unknown key.
    let pid = ocib(ws.path(), &["info", "server_pid"]);
    assert_eq!(pid.code, 2);
    assert!(pid.stderr.contains("unknown key: 'server_pid'"), "{}", pid.stderr);
}

#[test]
fn infrastructure_flags_are_accepted_with_one_warning() {
    let ws = graph_workspace();
    let out = ocib(
        ws.path(),
        &[
            "--output_user_root=/tmp/ocib-unused",
            "--output_base",
            "/tmp/ocib-unused-base",
            "--batch",
            "build",
            "--curses=no",
            "--memory_profile=/tmp/ocib-profile.json",
            // (--profile, --remote_cache, --remote_header, --remote_download_outputs and
            // --remote_download_regex are implemented: tests/it/profile.rs,
            // tests/it/remote_cache.rs.)
            "--remote_retries=5",
            "--remote_max_connections=10",
            "--remote_some_future_option=1",
            "//x:g",
        ],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
    let startup: Vec<&str> = out.stderr.lines().filter(|l| l.contains("ignoring startup options")).collect();
    assert_eq!(startup.len(), 1, "{}", out.stderr);
    assert!(startup[0].contains("--output_base /tmp/ocib-unused-base"), "{}", startup[0]);
    let ignored: Vec<&str> = out.stderr.lines().filter(|l| l.contains("ignoring options that ocib does not implement")).collect();
    assert_eq!(ignored.len(), 1, "{}", out.stderr);
    for flag in ["--curses=no", "--memory_profile=", "--remote_retries=", "--remote_max_connections=", "--remote_some_future_option=1"] {
        assert!(ignored[0].contains(flag), "{flag} not in {}", ignored[0]);
    }
    assert!(ws.path().join("ocib-out/bin/x/g.txt").is_file(), "the target still built");
    // An option Bazel does not have stays an error.
    let bad = ocib(ws.path(), &["build", "--not_a_bazel_option", "//x:g"]);
    assert_eq!(bad.code, 2, "{}", bad.stderr);
}

#[test]
fn announce_rc_prints_the_rc_options_applied() {
    let ws = graph_workspace();
    std::fs::write(ws.path().join(".bazelrc"), "build --keep_going\nbuild:ci --jobs=2\n").unwrap();
    let out = ocib(ws.path(), &["build", "--announce_rc", "--config=ci", "--nobuild", "//x:g"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("INFO: Reading rc options for 'build' from "), "{}", out.stderr);
    assert!(out.stderr.contains("'build' options: --keep_going"), "{}", out.stderr);
    assert!(out.stderr.contains("INFO: Found applicable config definition build:ci in file "), "{}", out.stderr);
}

#[test]
fn nobuild_loads_and_analyzes_only() {
    let ws = graph_workspace();
    // Bazel 4.2.3: "INFO: Found 1 target..." and "Build completed successfully, 0 total actions".
    let out = ocib(ws.path(), &["build", "--nobuild", "//x:g"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("INFO: Found 1 target..."), "{}", out.stderr);
    assert!(out.stderr.contains("Build completed successfully, 0 total actions"), "{}", out.stderr);
    assert!(!ws.path().join("ocib-out/bin/x/g.txt").exists(), "--nobuild built the genrule");
    // Analysis still runs: a broken target fails.
    std::fs::write(ws.path().join("y/BUILD"), "genrule(name = \"bad\", outs = [\"o\"], srcs = [\"//nope:x\"], cmd = \"true\")\n").unwrap();
    let bad = ocib(ws.path(), &["build", "--nobuild", "//y:bad"]);
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    // `test --nobuild` runs no test.
    let test = ocib(ws.path(), &["test", "--nobuild", "//x:t"]);
    assert_eq!(test.code, 0, "{}", test.stderr);
    assert!(test.stderr.contains("INFO: Found 1 test target..."), "{}", test.stderr);
    assert!(!ws.path().join("ocib-out/testlogs/x/t/test.log").exists());
}

#[test]
fn empty_target_lists_behave_as_bazel() {
    let ws = graph_workspace();
    // Bazel 4.2.3 `bazel build`: a usage warning, nothing built, exit 0.
    let build = ocib(ws.path(), &["build"]);
    assert_eq!(build.code, 0, "{}", build.stderr);
    assert!(
        build.stderr.contains("Your request is correct, but requested an empty set of targets. Nothing will be built."),
        "{}",
        build.stderr
    );
    // Bazel 4.2.3 `bazel test`: "ERROR: No test targets were found, yet testing was
    // requested", exit 4 (NO_TESTS_FOUND), no usage warning.
    let test = ocib(ws.path(), &["test"]);
    assert_eq!(test.code, 4, "{}", test.stderr);
    assert!(test.stderr.contains("ERROR: No test targets were found, yet testing was requested"), "{}", test.stderr);
    assert!(!test.stderr.contains("Usage"), "{}", test.stderr);
}

#[test]
fn query_orders_output_as_bazel() {
    let ws = graph_workspace();
    // Bazel 4.2.3, default `--order_output=auto` (full for label output): a target before its
    // dependencies, ties in reverse label order of the depth-first finish.
    let full = ["//g:top", "//g:m3", "//g:other", "//g:m2", "//g:m1", "//g:lone2", "//g:lone1", "//g:leaf"];
    assert_eq!(query_ok(ws.path(), &["query", "//g:all"]), full);
    assert_eq!(query_ok(ws.path(), &["query", "--order_output=full", "//g:all"]), full);
    assert_eq!(query_ok(ws.path(), &["query", "--order_output=deps", "//g:all"]), full);
    let kinds = query_ok(ws.path(), &["query", "--output=label_kind", "//g:all"]);
    assert_eq!(kinds, full.map(|l| format!("filegroup rule {l}")));
    // `no`: label order.
    let mut sorted = full.to_vec();
    sorted.sort();
    assert_eq!(query_ok(ws.path(), &["query", "--order_output=no", "//g:all"]), sorted);
    assert_eq!(query_ok(ws.path(), &["query", "--noorder_results", "//g:all"]), sorted);
    // Bazel 4.2.3 `deps(//x:fg)` (less its implicit genrule-setup.sh).
    assert_eq!(query_ok(ws.path(), &["query", "deps(//x:fg)"]), ["//x:fg", "//y:a", "//y:b", "//y:f.txt", "//x:g"]);
    // Packages print sorted whatever the order.
    assert_eq!(query_ok(ws.path(), &["query", "--output=package", "deps(//x:fg)"]), ["x", "y"]);
}

#[test]
fn somepath_reads_as_a_path_from_start_to_end() {
    let ws = graph_workspace();
    // Bazel 4.2.3: `--output=location somepath(//g:top, //g:leaf)` prints top, m1, leaf.
    assert_eq!(query_ok(ws.path(), &["query", "somepath(//g:top, //g:leaf)"]), ["//g:top", "//g:m1", "//g:leaf"]);
    assert_eq!(query_ok(ws.path(), &["query", "somepath(//x:fg, //y:f.txt)"]), ["//x:fg", "//y:a", "//y:b", "//y:f.txt"]);
    assert_eq!(query_ok(ws.path(), &["query", "allpaths(//g:top, //g:leaf)"]), ["//g:top", "//g:m2", "//g:m1", "//g:leaf"]);
}

#[test]
fn minus_starting_a_word_is_except_as_bazel_lexes_it() {
    let ws = graph_workspace();
    // Bazel 4.2.3's order for `//x/... -//x:g`.
    let expected = ["//x:t2", "//x:o_inner", "//x:m", "//x:fg", "//x:empty_suite", "//x:t", "//x:cs"];
    assert_eq!(query_ok(ws.path(), &["query", "//x/... -//x:g"]), expected);
    // Unquoted, as separate words of the command line.
    assert_eq!(query_ok(ws.path(), &["query", "//x/...", "-//x:g"]), expected);
    assert_eq!(query_ok(ws.path(), &["query", "//x/...", "-//x:g", "--output=label"]), expected);
    // Inside a word `-` is part of it, so `//x/...-//x:g` is one (invalid) pattern in Bazel.
    let joined = ocib(ws.path(), &["query", "//x/...-//x:g"]);
    assert_ne!(joined.code, 0, "{}", joined.stdout);
}

#[test]
fn graph_output_is_bazels_dot() {
    let ws = graph_workspace();
    // Bazel 4.2.3 prints these lines (it orders the factored class members and ties by hash:
    // `"//g:m2\n//g:m1"` in one run, `"//g:m1\n//g:m2"` in another; ocib sorts).
    let dot = ocib(ws.path(), &["query", "--output=graph", "deps(//g:top)"]).stdout;
    assert_eq!(
        dot,
        r#"digraph mygraph {
  node [shape=box];
  "//g:top"
  "//g:top" -> "//g:m1\n//g:m2"
  "//g:top" -> "//g:m3"
  "//g:m3"
  "//g:m3" -> "//g:other"
  "//g:other"
  "//g:m1\n//g:m2"
  "//g:m1\n//g:m2" -> "//g:leaf"
  "//g:leaf"
}
"#
    );
    let plain = ocib(ws.path(), &["query", "--output=graph", "--nograph:factored", "//g:all"]).stdout;
    for line in [r#"  "//g:top" -> "//g:m1""#, r#"  "//g:top" -> "//g:m2""#, r#"  "//g:m1" -> "//g:leaf""#, r#"  "//g:lone1""#] {
        assert!(plain.lines().any(|l| l == line), "{line} not in\n{plain}");
    }
    let factored = ocib(ws.path(), &["query", "--output=graph", "//g:all"]).stdout;
    assert!(factored.contains(r#"  "//g:lone1\n//g:lone2""#), "{factored}");
}

#[test]
fn empty_test_suite_stands_for_the_packages_tests() {
    let ws = workspace(&[
        ("WORKSPACE", ""),
        (
            "z/BUILD",
            r#"test_suite(name = "suite")
sh_test(name = "zt", srcs = ["t.sh"], deps = [":lib"])
filegroup(name = "lib", srcs = ["l.sh"])
sh_test(name = "zm", srcs = ["t.sh"], tags = ["manual"])
filegroup(name = "uses_suite", srcs = [":suite"])
"#,
        ),
        ("z/t.sh", "#!/bin/sh\n"),
        ("z/l.sh", ""),
    ]);
    // Bazel 4.2.3: the suite's `$implicit_tests` (the package's non-manual tests) are edges,
    // and `tests()` gives `//z:zt`. (Bazel's own `deps` of an sh_test also reaches its
    // implicit launcher and coverage tools, which ocib does not model; the orders below are
    // Bazel's full order over the edges ocib has.)
    assert_eq!(query_ok(ws.path(), &["query", "tests(//z:suite)"]), ["//z:zt"]);
    assert_eq!(query_ok(ws.path(), &["query", "deps(//z:suite)"]), ["//z:suite", "//z:zt", "//z:t.sh", "//z:lib", "//z:l.sh"]);
    assert_eq!(query_ok(ws.path(), &["query", "rdeps(//z:all, //z:lib)"]), ["//z:uses_suite", "//z:suite", "//z:zt", "//z:lib"]);
    assert_eq!(query_ok(ws.path(), &["query", "somepath(//z:uses_suite, //z:lib)"]), ["//z:uses_suite", "//z:suite", "//z:zt", "//z:lib"]);
    let build = query_ok(ws.path(), &["query", "--output=build", "//z:suite"]).join("\n");
    assert!(build.contains("  _implicit_tests = [\"//z:zt\"],"), "{build}");
}

#[test]
fn configuration_rules_are_tagged_manual() {
    let ws = graph_workspace();
    // Bazel 4.2.3: config_setting, constraint_setting, constraint_value and platform default
    // to tags = ["manual"]; given tags replace it.
    let manual = query_ok(ws.path(), &["query", "--order_output=no", "attr(tags, manual, //...)"]);
    assert_eq!(manual, ["//x:cs", "//x:t2", "//y:cons", "//y:cv", "//y:plat"]);
    assert_eq!(query_ok(ws.path(), &["query", "attr(tags, foo, //y:all)"]), ["//y:c2"]);
}

#[test]
fn build_output_has_the_instantiation_stack() {
    let ws = graph_workspace();
    let root = ws.path().canonicalize().unwrap();
    let out = ocib(ws.path(), &["query", "--output=build", "//x:o_inner + //x:fg + //s:sr"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // Byte for byte what Bazel 4.2.3 prints for the same workspace (paths aside), including
    // where a Starlark rule's kind was defined.
    let expected = r#"# ROOT/x/BUILD:8:6
filegroup(
  name = "o_inner",
  generator_name = "o",
  generator_function = "outer",
  generator_location = "x/BUILD:8:6",
  srcs = ["//y:a"],
)
# Rule o_inner instantiated at (most recent call last):
#   ROOT/x/BUILD:8:6     in <toplevel>
#   ROOT/x/defs.bzl:5:13 in outer
#   ROOT/x/defs.bzl:2:21 in my_macro

# ROOT/x/BUILD:5:10
filegroup(
  name = "fg",
  srcs = ["//x:g", "//y:a"],
)
# Rule fg instantiated at (most recent call last):
#   ROOT/x/BUILD:5:10 in <toplevel>

# ROOT/s/BUILD:2:8
my_rule(
  name = "sr",
  x = "1",
)
# Rule sr instantiated at (most recent call last):
#   ROOT/s/BUILD:2:8 in <toplevel>
# Rule my_rule defined at (most recent call last):
#   ROOT/s/r.bzl:4:15 in <toplevel>

"#;
    assert_eq!(out.stdout, expected.replace("ROOT", &root.display().to_string()));
}

#[test]
fn a_rule_set_macro_frame_is_named_by_its_label() {
    // ocib's rule sets are embedded, not files under the workspace: their frames keep the
    // label the evaluator names them by instead of a path made up under the workspace root.
    let ws = workspace(&[
        ("MODULE.bazel", "bazel_dep(name = \"rules_oci\", version = \"2.3.2\")\n"),
        (
            "p/BUILD",
            r#"load("@rules_oci//oci:defs.bzl", "oci_image", "oci_push")
oci_image(name = "image", os = "linux", architecture = "amd64")
oci_push(name = "push", image = ":image", repository = "registry.example.com/p")
"#,
        ),
    ]);
    let out = ocib(ws.path(), &["query", "--output=build", "//p:push"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let root = ws.path().canonicalize().unwrap().display().to_string();
    let frames: Vec<&str> = out.stdout.lines().filter(|l| l.starts_with("#   ")).collect();
    assert_eq!(frames.len(), 2, "{}", out.stdout);
    assert!(frames[0].starts_with(&format!("#   {root}/p/BUILD:3:9 ")), "{}", out.stdout);
    assert!(frames[1].starts_with("#   @rules_oci//oci"), "{}", out.stdout);
    assert!(frames[1].ends_with(" in oci_push"), "{}", out.stdout);
}

#[test]
fn typo_in_a_target_name_gets_did_you_mean() {
    let ws = graph_workspace();
    // Bazel 4.2.3's messages for the same typos.
    let out = ocib(ws.path(), &["query", "//x:fgg"]);
    assert_eq!(out.code, 7, "{}", out.stderr);
    assert!(out.stderr.contains("target 'fgg' not declared in package 'x' (did you mean 'fg'?) defined by "), "{}", out.stderr);
    let file = ocib(ws.path(), &["query", "//y:f.tx"]);
    assert!(file.stderr.contains("(did you mean 'f.txt'?)"), "{}", file.stderr);
    // Too far from every name (one edit from both `t` and `t2`, under Bazel's limit of 1).
    let far = ocib(ws.path(), &["query", "//x:tt"]);
    assert!(far.stderr.contains("target 'tt' not declared in package 'x' defined by"), "{}", far.stderr);
    let build = ocib(ws.path(), &["build", "//x:fgg"]);
    assert!(build.stderr.contains("(did you mean 'fg'?)"), "{}", build.stderr);
}

#[test]
fn bash_completion_names_the_commands_and_sources_cleanly() {
    let ws = graph_workspace();
    let script = ocib(ws.path(), &["completion", "bash"]);
    assert_eq!(script.code, 0, "{}", script.stderr);
    for command in ["build", "test", "query", "cquery", "info", "clean"] {
        assert!(script.stdout.contains(command), "{command} missing from the bash completion");
    }
    let file = ws.path().join("ocib.bash");
    std::fs::write(&file, &script.stdout).unwrap();
    let sourced = bash_source(&file);
    assert!(sourced.status.success(), "bash could not source it: {}", String::from_utf8_lossy(&sourced.stderr));
    let registered = String::from_utf8_lossy(&sourced.stdout).into_owned();
    assert!(registered.trim_end().ends_with("-F _ocib ocib"), "{registered}");
    for shell in ["zsh", "fish"] {
        let out = ocib(ws.path(), &["completion", shell]);
        assert_eq!(out.code, 0, "{shell}: {}", out.stderr);
        assert!(out.stdout.contains("cquery"), "{shell}");
    }
}

fn bash_source(file: &Path) -> std::process::Output {
    Command::new("bash").arg("-c").arg(format!("set -e; source '{}'; complete -p ocib", file.display())).output().expect("run bash")
}
