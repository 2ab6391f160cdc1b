//! Starlark rules' configurations seen from outside: a rule-level incoming transition
//! (`rule(cfg = transition)`) moves the target itself (selects, outputs, `cquery`'s
//! configuration id), `cquery 'deps(...)'` lists each configured target once per
//! configuration, `providers = [[A], [B, C]]` accepts any group, and `ctx.runfiles`'s
//! `collect_data`/`collect_default`, `ctx.workspace_name`, `use_default_shell_env` and
//! `execution_requirements = {"no-cache": ""}` behave as Bazel's.

use crate::common::{build, executed_and_hits, ocib, workspace};

const DEFS: &str = r#"FlavorInfo = provider(fields = ["value"])

def _flavor_impl(ctx):
    return [FlavorInfo(value = ctx.build_setting_value)]

flavor_setting = rule(implementation = _flavor_impl, build_setting = config.string(flag = True))

def _to_mild_impl(settings, attr):
    return {"//:flavor": attr.want}

_to_mild = transition(implementation = _to_mild_impl, inputs = [], outputs = ["//:flavor"])

def _self_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.write(out, "flavor=%s word=%s leaf=%s\n" % (ctx.attr._flavor[FlavorInfo].value, ctx.attr.word, ctx.files.deps[0].path))
    return [DefaultInfo(files = depset([out]))]

self_flavored = rule(
    implementation = _self_impl,
    cfg = _to_mild,
    attrs = {
        "want": attr.string(),
        "word": attr.string(),
        "deps": attr.label_list(),
        "_flavor": attr.label(default = "//:flavor"),
        "_allowlist_function_transition": attr.label(default = "@bazel_tools//tools/allowlists/function_transition_allowlist"),
    },
)

def _leaf_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".leaf")
    ctx.actions.write(out, "leaf %s\n" % ctx.attr._flavor[FlavorInfo].value)
    return [DefaultInfo(files = depset([out]))]

leaf = rule(implementation = _leaf_impl, attrs = {"_flavor": attr.label(default = "//:flavor")})

def _both_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    ctx.actions.write(out, "both\n")
    return [DefaultInfo(files = depset([out]))]

both = rule(
    implementation = _both_impl,
    attrs = {
        "plain": attr.label(),
        "moved": attr.label(cfg = _to_mild),
        "src": attr.label(allow_single_file = True),
        "want": attr.string(),
        "_allowlist_function_transition": attr.label(default = "@bazel_tools//tools/allowlists/function_transition_allowlist"),
    },
)
"#;

const BUILD: &str = r#"load(":defs.bzl", "both", "flavor_setting", "leaf", "self_flavored")

flavor_setting(name = "flavor", build_setting_default = "plain")

config_setting(name = "is_mild", flag_values = {":flavor": "mild"})

leaf(name = "leaf")

self_flavored(
    name = "mild",
    want = "mild",
    word = select({":is_mild": "selected-in-mild", "//conditions:default": "selected-in-top"}),
    deps = [":leaf"],
)

genrule(name = "consumer", srcs = [":mild"], outs = ["consumer.txt"], cmd = "cat $(SRCS) > $@")

both(name = "both", plain = ":leaf", moved = ":leaf", src = "input.txt", want = "mild")
"#;

fn configs_workspace() -> tempfile::TempDir {
    workspace(&[("WORKSPACE", ""), ("BUILD.bazel", BUILD), ("defs.bzl", DEFS), ("input.txt", "in\n")])
}

/// `rule(cfg = transition)`: the target is analysed in the configuration the transition
/// returns: its select() resolves there, its dependencies and its outputs follow
/// (`ocib-out/<configuration>/bin`), a native rule consumes it from there, and cquery shows
/// it with that configuration's id and path.
#[test]
fn rule_level_transition_moves_the_target_itself() {
    let ws = configs_workspace();
    let cache = tempfile::tempdir().expect("cache");
    let out = build(ws.path(), cache.path(), &["//:mild", "//:consumer"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!ws.path().join("ocib-out/bin/mild.txt").exists(), "the target is not in the top-level configuration");
    let files = ocib(ws.path(), &["cquery", "//:mild", "--output=files"]);
    assert_eq!(files.code, 0, "{}", files.stderr);
    let path = files.stdout.trim();
    assert!(path.starts_with("ocib-out/linux_amd64-ST-") && path.ends_with("/bin/mild.txt"), "{}", files.stdout);
    let text = std::fs::read_to_string(ws.path().join(path)).expect("transitioned output");
    // The dependency is analysed in the moved configuration too (its output path says so).
    let leaf = path.replace("mild.txt", "leaf.leaf");
    assert_eq!(text, format!("flavor=mild word=selected-in-mild leaf={leaf}\n"));
    assert_eq!(std::fs::read_to_string(ws.path().join("ocib-out/bin/consumer.txt")).expect("consumer"), text);

    let labels = ocib(ws.path(), &["cquery", "//:mild + //:consumer"]);
    assert_eq!(labels.code, 0, "{}", labels.stderr);
    let ids: Vec<&str> = labels.stdout.lines().map(|l| l.rsplit_once(' ').expect("label (id)").1).collect();
    assert_eq!(ids.len(), 2, "{}", labels.stdout);
    assert_ne!(ids[0], ids[1], "the moved target has its own configuration id: {}", labels.stdout);
}

/// `cquery 'deps(//x)'` shows each configured target with its configuration id: a target
/// reached both directly and through a transition twice, a source file with `(null)`, and
/// `--output=files` the outputs of each configured target at its own path.
#[test]
fn cquery_deps_lists_each_configured_target() {
    let ws = configs_workspace();
    let out = ocib(ws.path(), &["cquery", "deps(//:both)"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let of = |label: &str| lines.iter().filter(|l| l.starts_with(&format!("{label} ("))).copied().collect::<Vec<_>>();
    let top = of("//:both");
    assert_eq!(top.len(), 1, "{}", out.stdout);
    let leaf = of("//:leaf");
    assert_eq!(leaf.len(), 2, "{}", out.stdout);
    assert!(leaf.contains(&top[0].replace("//:both", "//:leaf").as_str()), "one in the top-level configuration: {}", out.stdout);
    assert_eq!(of("//:input.txt"), ["//:input.txt (null)"], "{}", out.stdout);
    // The select() branch's config_setting is analysed; the flag itself is reached too.
    assert!(lines.iter().all(|l| l.ends_with(')')), "{}", out.stdout);

    let files = ocib(ws.path(), &["cquery", "deps(//:both)", "--output=files"]);
    assert_eq!(files.code, 0, "{}", files.stderr);
    let leaves: Vec<&str> = files.stdout.lines().filter(|l| l.ends_with("/leaf.leaf")).collect();
    assert_eq!(leaves.len(), 2, "{}", files.stdout);
    assert!(leaves.contains(&"ocib-out/bin/leaf.leaf"), "{}", files.stdout);
    assert!(leaves.iter().any(|l| l.starts_with("ocib-out/linux_amd64-ST-")), "{}", files.stdout);
}

const PROVIDER_DEFS: &str = r#"AInfo = provider(fields = [])
BInfo = provider(fields = [])
CInfo = provider(fields = [])

def _give(ctx):
    out = []
    if "A" in ctx.attr.gives:
        out.append(AInfo())
    if "B" in ctx.attr.gives:
        out.append(BInfo())
    if "C" in ctx.attr.gives:
        out.append(CInfo())
    return out

giver = rule(implementation = _give, attrs = {"gives": attr.string_list()})

def _user(ctx):
    return []

user = rule(implementation = _user, attrs = {"deps": attr.label_list(providers = [[AInfo], [BInfo, CInfo]])})
"#;

/// `providers = [[AInfo], [BInfo, CInfo]]`: a dependency with all of any one group is
/// accepted; one with none is named with each group, as Bazel 4.2.3 writes it.
#[test]
fn any_provider_group_satisfies_the_attribute() {
    let ws = workspace(&[
        ("WORKSPACE", ""),
        ("defs.bzl", PROVIDER_DEFS),
        (
            "BUILD",
            r#"load(":defs.bzl", "giver", "user")

giver(name = "a", gives = ["A"])
giver(name = "bc", gives = ["B", "C"])
giver(name = "b", gives = ["B"])

user(name = "ok", deps = [":a", ":bc"])
user(name = "bad", deps = [":a", ":b"])
"#,
        ),
    ]);
    let ok = ocib(ws.path(), &["build", "//:ok"]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let bad = ocib(ws.path(), &["build", "//:bad"]);
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    assert!(
        bad.stderr.contains(
            "BUILD:8:5: in deps attribute of user rule //:bad: '//:b' does not have mandatory providers: 'AInfo' or ['BInfo', 'CInfo']"
        ),
        "{}",
        bad.stderr
    );
}

const RUNFILES_DEFS: &str = r#"def _lib_impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".lib")
    ctx.actions.write(out, "lib\n")
    return [DefaultInfo(files = depset([out]), runfiles = ctx.runfiles(files = [out]))]

lib = rule(implementation = _lib_impl)

def _tool_impl(ctx):
    listing = ctx.actions.declare_file(ctx.label.name + ".runfiles.txt")
    default = ctx.runfiles(collect_default = True)
    data = ctx.runfiles(collect_data = True)
    none = ctx.runfiles()
    ctx.actions.write(listing, "workspace=%s\ndefault=%s\ndata=%s\nnone=%s\n" % (
        ctx.workspace_name,
        ",".join(sorted([f.short_path for f in default.files.to_list()])),
        ",".join(sorted([f.short_path for f in data.files.to_list()])),
        ",".join([f.short_path for f in none.files.to_list()]),
    ))
    path = ctx.actions.declare_file(ctx.label.name + ".path")
    ctx.actions.run_shell(outputs = [path], command = "echo \"$PATH\" > " + path.path, use_default_shell_env = True)
    stamp = ctx.actions.declare_file(ctx.label.name + ".uncached")
    ctx.actions.run_shell(outputs = [stamp], command = "date +%s%N > " + stamp.path, execution_requirements = {"no-cache": "1"})
    return [DefaultInfo(files = depset([listing, path, stamp]))]

tool = rule(implementation = _tool_impl, attrs = {"deps": attr.label_list(), "data": attr.label_list(allow_files = True)})
"#;

/// `ctx.runfiles(collect_data/collect_default = True)` gather the dependencies' runfiles
/// (and `data`'s files), `ctx.workspace_name` is the main repository's name,
/// `use_default_shell_env` gives the client's `PATH`, and a `no-cache` action runs on
/// every build while the rest stay cached.
#[test]
fn runfiles_collection_workspace_name_shell_env_and_no_cache() {
    let ws = workspace(&[
        ("WORKSPACE", "workspace(name = \"my_ws\")\n"),
        ("defs.bzl", RUNFILES_DEFS),
        ("data.txt", "data\n"),
        (
            "BUILD",
            "load(\":defs.bzl\", \"lib\", \"tool\")\n\nlib(name = \"dep\")\n\nlib(name = \"datum\")\n\ntool(name = \"t\", deps = [\":dep\"], data = [\":datum\", \"data.txt\"])\n",
        ),
    ]);
    let cache = tempfile::tempdir().expect("cache");
    let first = build(ws.path(), cache.path(), &["//:t"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let read = |rel: &str| std::fs::read_to_string(ws.path().join("ocib-out/bin").join(rel)).expect("output");
    assert_eq!(read("t.runfiles.txt"), "workspace=my_ws\ndefault=data.txt,datum.lib,dep.lib\ndata=data.txt,datum.lib,dep.lib\nnone=\n");
    assert_eq!(read("t.path").trim(), std::env::var("PATH").expect("PATH"));
    let stamp = read("t.uncached");
    let again = build(ws.path(), cache.path(), &["//:t"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(executed_and_hits(&again), (1, 2), "only the no-cache action runs again:\n{}", again.stderr);
    assert_ne!(read("t.uncached"), stamp);
}

/// A test rule runs from `<runfiles>/<workspace name>`, with `TEST_WORKSPACE` naming it, as
/// in Bazel 4.2.3; `ocib run` uses the same tree layout.
#[test]
fn runfiles_trees_are_named_after_the_workspace() {
    let defs = r##"def _impl(ctx):
    exe = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.write(exe, "#!/bin/bash\nset -e\n[ \"$TEST_WORKSPACE\" = %s ] || [ -z \"$TEST_WORKSPACE\" ]\n[ \"$(basename \"$PWD\")\" = %s ]\ncat %s\n" % (ctx.workspace_name, ctx.workspace_name, ctx.file.data.short_path), is_executable = True)
    return [DefaultInfo(executable = exe, runfiles = ctx.runfiles(files = [ctx.file.data]))]

check_test = rule(implementation = _impl, attrs = {"data": attr.label(allow_single_file = True)}, test = True)
runner = rule(implementation = _impl, attrs = {"data": attr.label(allow_single_file = True)}, executable = True)
"##;
    let ws = workspace(&[
        ("WORKSPACE", "workspace(name = \"named_ws\")\n"),
        ("defs.bzl", defs),
        ("data.txt", "payload\n"),
        (
            "BUILD",
            "load(\":defs.bzl\", \"check_test\", \"runner\")\n\ncheck_test(name = \"t\", data = \"data.txt\")\n\nrunner(name = \"r\", data = \"data.txt\")\n",
        ),
    ]);
    let test = ocib(ws.path(), &["test", "//:t"]);
    assert_eq!(test.code, 0, "{}{}", test.stdout, test.stderr);
    let run = ocib(ws.path(), &["run", "//:r"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "payload\n");
}

const GO_DEFS: &str = r#"load("@rules_go//go:def.bzl", "GoArchive", "GoInfo")

def _impl(ctx):
    out = ctx.actions.declare_file(ctx.label.name + ".txt")
    lines = []
    for d in ctx.attr.deps:
        info = d[GoInfo]
        archive = d[GoArchive]
        lines.append("%s %s importmap=%s srcs=%s archive_ext=%s transitive=%d in=%s" % (
            d.label.name,
            info.importpath,
            archive.data.importmap,
            ",".join([f.basename for f in info.srcs]),
            archive.data.file.extension,
            len(archive.transitive.to_list()),
            GoInfo in d,
        ))
    go = ctx.toolchains["@io_bazel_rules_go//go:toolchain"]
    lines.append("toolchain %s/%s" % (go.sdk.goos, go.sdk.goarch))
    ctx.actions.write(out, "\n".join(lines) + "\n")
    return [DefaultInfo(files = depset([out]))]

show_go = rule(
    implementation = _impl,
    attrs = {"deps": attr.label_list(providers = [GoInfo])},
    toolchains = ["@io_bazel_rules_go//go:toolchain"],
)
"#;

/// rules_go's `GoInfo`/`GoArchive` on ocib's native go_library and go_binary targets
/// (importpath, importmap, sources, the archive), the attribute's `providers = [GoInfo]`
/// check, and `ctx.toolchains` for rules_go's toolchain type. Reading them needs no Go:
/// analysis never runs the toolchain.
#[test]
fn go_providers_and_toolchain_are_visible_to_starlark_rules() {
    let ws = workspace(&[
        ("MODULE.bazel", "bazel_dep(name = \"rules_go\", version = \"0.62.0\")\n"),
        ("defs.bzl", GO_DEFS),
        (
            "BUILD",
            r#"load("@rules_go//go:def.bzl", "go_binary", "go_library")
load(":defs.bzl", "show_go")

go_library(name = "lib", srcs = ["lib.go"], importpath = "ex.com/lib")

go_binary(name = "app", srcs = ["main.go"], deps = [":lib"])

show_go(name = "show", deps = [":lib", ":app"])

genrule(name = "not_go", outs = ["x.txt"], cmd = "touch $@")

show_go(name = "bad", deps = [":not_go"])
"#,
        ),
        ("lib.go", "package lib\n\nfunc X() int { return 1 }\n"),
        ("main.go", "package main\n\nimport \"ex.com/lib\"\n\nfunc main() { _ = lib.X() }\n"),
    ]);
    let out = ocib(ws.path(), &["build", "//:show"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = std::fs::read_to_string(ws.path().join("ocib-out/bin/show.txt")).expect("output");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "lib ex.com/lib importmap=ex.com/lib srcs=lib.go archive_ext=a transitive=0 in=True", "{text}");
    assert!(lines[1].starts_with("app ") && lines[1].contains("srcs=main.go archive_ext=a transitive=1 in=True"), "{text}");
    assert!(lines[2] == "toolchain linux/amd64" || lines[2] == "toolchain linux/arm64", "{text}");
    let bad = ocib(ws.path(), &["build", "//:bad"]);
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    assert!(bad.stderr.contains("'//:not_go' does not have mandatory providers: 'GoInfo'"), "{}", bad.stderr);
}
