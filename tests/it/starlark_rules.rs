//! Starlark-defined rules (`rule()`): implementations run at analysis with `ctx`, their
//! actions run with native ones (cached the same way), providers cross the native boundary
//! both ways, executables and tests run from runfiles trees, and failures show the Starlark
//! stack and the target. Workspace: testdata/starlark_rules.

use crate::common::{build, copy_workspace, executed_and_hits, ocib};

fn read(dir: &std::path::Path, rel: &str) -> String {
    std::fs::read_to_string(dir.join(rel)).unwrap_or_else(|e| panic!("read {rel}: {e}"))
}

/// Three rules pass providers up (`MyInfo` depsets in postorder), `ctx.actions.run` gets an
/// `Args` with `add`, `add_joined(map_each, format_joined)` and `add_all` of a depset,
/// `run_shell` gets `$1…` arguments, and `outputs = {...}` predeclares the bundle.
#[test]
fn providers_depsets_args_and_predeclared_outputs() {
    let ws = copy_workspace("starlark_rules");
    let cache = tempfile::tempdir().expect("cache");
    let out = build(ws.path(), cache.path(), &["//app:bundle"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(read(ws.path(), "ocib-out/bin/app/bundle.bundle"), "names=BASE,MID,TOP\nlib base\nlib mid\nlib top\n");
    assert_eq!(read(ws.path(), "ocib-out/bin/app/bundle.list"), "base.txt\nmid.txt\ntop.txt\n");
    assert!(out.stderr.contains("ocib-bin/app/bundle.bundle") && out.stderr.contains("ocib-bin/app/bundle.list"), "{}", out.stderr);
    // The output group is built only when asked for; `cquery --output=files` names outputs.
    assert!(!ws.path().join("ocib-out/bin/app/bundle.counts").exists());
}

/// A native genrule consumes Starlark targets through DefaultInfo, and a Starlark rule
/// consumes the genrule's output and a source file.
#[test]
fn native_and_starlark_targets_consume_each_other() {
    let ws = copy_workspace("starlark_rules");
    let cache = tempfile::tempdir().expect("cache");
    let out = build(ws.path(), cache.path(), &["//app:native_consumer", "//app:greeter", "//app:from_source"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let consumer = read(ws.path(), "ocib-out/bin/app/native_consumer.txt");
    assert_eq!(consumer, "names=BASE,MID,TOP\nlib base\nlib mid\nlib top\nbase.txt\nmid.txt\ntop.txt\nlib top\n");
    let launcher = read(ws.path(), "ocib-out/bin/app/greeter.sh");
    assert!(launcher.contains("echo \"hi from greeter\"") && launcher.contains("cat \"app/native_consumer.txt\""), "{launcher}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(ws.path().join("ocib-out/bin/app/greeter.sh")).expect("stat").permissions(),
    );
    assert_ne!(mode & 0o111, 0, "the executable of an executable rule is executable");
}

/// `ocib run` runs a Starlark executable from its runfiles tree (files at their short
/// paths); `ocib test` runs test rules the same way and reports pass and failure.
#[test]
fn executable_rules_run_and_test_rules_test() {
    let ws = copy_workspace("starlark_rules");
    let run = ocib(ws.path(), &["run", "//app:greeter"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("hi from greeter\nnames=BASE,MID,TOP\n"), "{}", run.stdout);
    let from_source = ocib(ws.path(), &["run", "//app:from_source"]);
    assert_eq!(from_source.stdout, "hello from from_source\ndata file\n", "{}", from_source.stderr);

    let pass = ocib(ws.path(), &["test", "//app:bundle_test"]);
    assert_eq!(pass.code, 0, "{}{}", pass.stdout, pass.stderr);
    let fail = ocib(ws.path(), &["test", "//app:failing_test"]);
    assert_eq!(fail.code, 3, "a failing test rule exits 3: {}{}", fail.stdout, fail.stderr);
}

/// `fail()` in a helper of an implementation: the error names the target and shows each
/// Starlark frame with file and line.
#[test]
fn failing_implementation_shows_the_stack_and_the_target() {
    let ws = copy_workspace("starlark_rules");
    let out = ocib(ws.path(), &["build", "//app:broken"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("in my_failing rule //app:broken"), "{}", out.stderr);
    assert!(out.stderr.contains("rules/defs.bzl:115, in _failing_impl"), "{}", out.stderr);
    assert!(out.stderr.contains("rules/defs.bzl:118, in _helper"), "{}", out.stderr);
    assert!(out.stderr.contains("fail: cannot build: on purpose"), "{}", out.stderr);
}

/// A dependency without a provider the attribute requires is named with the attribute and
/// the provider, in Bazel 4.2.3's words.
#[test]
fn missing_mandatory_provider_names_attribute_dependency_and_provider() {
    let ws = copy_workspace("starlark_rules");
    let out = ocib(ws.path(), &["build", "//app:bad_deps"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains(
            "in deps attribute of my_bundle rule //app:bad_deps: '//app:native_consumer' does not have mandatory providers: 'MyInfo'"
        ),
        "{}",
        out.stderr
    );
}

/// A type error in an implementation is reported the same way, not as a panic.
#[test]
fn type_error_in_implementation_is_an_analysis_error() {
    let ws = copy_workspace("starlark_rules");
    let defs = ws.path().join("rules/defs.bzl");
    let text = read(ws.path(), "rules/defs.bzl").replace("ctx.attr.value)\n    files = depset", "ctx.attr.value + 1)\n    files = depset");
    std::fs::write(&defs, text).expect("write");
    let out = ocib(ws.path(), &["build", "//app:base"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("in my_lib rule //app:base") && out.stderr.contains("rules/defs.bzl:"), "{}", out.stderr);
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

/// A no-op rebuild executes nothing; changing an argument of `ctx.actions.run` (through an
/// attribute) runs exactly that action again.
#[test]
fn starlark_actions_are_cached_and_keyed_on_their_arguments() {
    let ws = copy_workspace("starlark_rules");
    let cache = tempfile::tempdir().expect("cache");
    let first = build(ws.path(), cache.path(), &["//app:bundle"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(executed_and_hits(&first).0, 5);
    let again = build(ws.path(), cache.path(), &["//app:bundle"]);
    assert_eq!(executed_and_hits(&again), (0, 5), "{}", again.stderr);

    let build_file = ws.path().join("app/BUILD.bazel");
    let text = read(ws.path(), "app/BUILD.bazel")
        .replace("my_bundle(name = \"bundle\", deps = [\":top\"])", "my_bundle(name = \"bundle\", deps = [\":top\"], prefix = \"all\")");
    std::fs::write(&build_file, text).expect("write");
    let changed = build(ws.path(), cache.path(), &["//app:bundle"]);
    assert_eq!(changed.code, 0, "{}", changed.stderr);
    assert_eq!(executed_and_hits(&changed), (1, 4), "only the Bundle action runs again:\n{}", changed.stderr);
    assert!(read(ws.path(), "ocib-out/bin/app/bundle.bundle").starts_with("all=BASE,MID,TOP\n"));
}

/// skylib's `string_flag`/`bool_flag` are build settings: `--//pkg:flag=value` sets them,
/// `config_setting(flag_values)` selects on them, rules read `BuildSettingInfo`.
#[test]
fn build_settings_from_the_command_line_drive_select_and_rules() {
    let ws = crate::common::workspace(&[
        ("MODULE.bazel", "module(name = \"settings\")\nbazel_dep(name = \"bazel_skylib\", version = \"1.7.1\")\n"),
        (
            "BUILD.bazel",
            r#"load("@bazel_skylib//rules:common_settings.bzl", "bool_flag", "string_flag")
load(":show.bzl", "show")

string_flag(name = "mode", build_setting_default = "slow", values = ["slow", "fast"])
bool_flag(name = "loud", build_setting_default = False)

config_setting(name = "is_fast", flag_values = {":mode": "fast"})

genrule(
    name = "picked",
    outs = ["picked.txt"],
    cmd = select({":is_fast": "echo fast > $@", "//conditions:default": "echo slow > $@"}),
)

show(name = "shown")
"#,
        ),
        (
            "show.bzl",
            r#"load("@bazel_skylib//rules:common_settings.bzl", "BuildSettingInfo")

def _impl(ctx):
    out = ctx.actions.declare_file("shown.txt")
    ctx.actions.write(out, "mode=%s loud=%s\n" % (ctx.attr._mode[BuildSettingInfo].value, ctx.attr._loud[BuildSettingInfo].value))
    return [DefaultInfo(files = depset([out]))]

show = rule(implementation = _impl, attrs = {"_mode": attr.label(default = "//:mode"), "_loud": attr.label(default = "//:loud")})
"#,
        ),
    ]);
    let read = |rel: &str| std::fs::read_to_string(ws.path().join("ocib-out/bin").join(rel)).expect("output");
    let default = ocib(ws.path(), &["build", "//:picked", "//:shown"]);
    assert_eq!(default.code, 0, "{}", default.stderr);
    assert_eq!(read("picked.txt"), "slow\n");
    assert_eq!(read("shown.txt"), "mode=slow loud=False\n");
    let set = ocib(ws.path(), &["build", "--//:mode=fast", "--//:loud", "//:picked", "//:shown"]);
    assert_eq!(set.code, 0, "{}", set.stderr);
    assert_eq!(read("picked.txt"), "fast\n");
    assert_eq!(read("shown.txt"), "mode=fast loud=True\n");
    // `query` accepts build settings (from a `common` rc line too) and ignores them.
    std::fs::write(ws.path().join(".bazelrc"), "common --//:mode=fast\n").expect("write rc");
    let query = ocib(ws.path(), &["query", "--//:loud", "//:all"]);
    assert_eq!(query.code, 0, "{}", query.stderr);
    let bad = ocib(ws.path(), &["build", "--//:mode=medium", "//:shown"]);
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    assert!(bad.stderr.contains("invalid value 'medium'"), "{}", bad.stderr);
}
