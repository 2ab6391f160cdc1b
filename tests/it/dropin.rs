//! Drop-in evaluation of real repositories' files (issue 11): what ocib does not implement
//! (unknown repositories, rule-set files and symbols its prelude lacks, newer MODULE.bazel
//! functions, Bazel flags it ignores, native rules it cannot build) never stops `query`.
//! One synthetic workspace per class under testdata/dropin/; by the issue's classes:
//! 1 prelude_gaps, skylib_libs, builtins; 2 unknown_repo; 3 module_globals; 4 rc_flags;
//! 5 stub_values; 6 native_rules, main_repo_name, bzlmod_modes, kwonly; 7 own_rule_set;
//! 8 rules_oci_versions; 9 visibility (tests/it/visibility.rs); the acceptance case
//! macro_layer; emulated extension tags ocib cannot turn into repositories and Go module
//! fetch failures, extension_api; the repository's own module extensions and repository rules,
//! module_extension; rules_distroless's Debian version helpers, deb_versions.

use crate::common;

use common::{ocib, query_ok, testdata, workspace};

fn dropin(name: &str) -> std::path::PathBuf {
    testdata("dropin").join(name)
}

#[test]
fn loads_from_unknown_repositories_stub_in_workspace_bzl_and_build_files() {
    let ws = dropin("unknown_repo");
    let out = ocib(&ws, &["query", "--order_output=no", "//...:all", "--output=label_kind"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // A stub called with `name` records a target of its kind, directly or through a macro.
    assert_eq!(out.lines(), ["ts_project rule //app:app", "filegroup rule //app:files", "npm_link_all_packages rule //app:node_modules"]);
    // One warning per unknown file, naming it.
    assert_eq!(out.stderr.matches("'@aspect_rules_js//js:repositories.bzl'").count(), 1, "{}", out.stderr);
    assert!(out.stderr.contains("repository '@npm' is not known to ocib"), "{}", out.stderr);
}

#[test]
fn building_a_stub_target_fails_naming_its_kind() {
    let ws = common::copy_workspace("dropin/unknown_repo");
    let out = ocib(ws.path(), &["build", "//app:app"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("'ts_project' comes from a rule set ocib does not know"), "{}", out.stderr);
}

#[test]
fn stubs_used_as_values_are_harmless() {
    // requirement("x") in a list, `aliases() + all_requirements`, `v in STUB`, `for v in STUB`,
    // `stub.attr` and `stub[key]` at load time: stubs drop out of attribute values.
    let ws = dropin("stub_values");
    let srcs = query_ok(&ws, &["query", "--order_output=no", "labels(srcs, //:group) + labels(srcs, //:gen)"]);
    assert_eq!(srcs, ["//:a.txt", "//:group"]);
    // Where a label is needed (alias `actual`), a stub is a label in its repository; a stub
    // given to select() leaves the attribute unset.
    let out = query_ok(&ws, &["query", "--order_output=no", "//:python + //:compatible", "--output=build"]).join("\n");
    assert!(out.contains("actual = \"@python3_10//:interpreter\""), "{out}");
    assert!(!out.contains("target_compatible_with"), "{out}");
    // `{...} | STUB`: a stub merged into a dict is an empty dict.
    assert_eq!(query_ok(&ws, &["query", "--order_output=no", "attr(tags, '\\[uv\\]', //:all)"]), ["//:tools"]);
}

#[test]
fn bazel_json_module_and_set_builtin() {
    // json.encode_indent sorts keys as Bazel does (checked with Bazel 4.2.3); set() is Bazel 8's.
    let ws = dropin("stub_values");
    let out = query_ok(&ws, &["query", "--order_output=no", "//:json", "--output=build"]).join("\n");
    assert!(out.contains(r#"cmd = "echo '{\n \"a\": 2,\n \"b\": [\n  1\n ]\n}' > $@""#), "{out}");
}

#[test]
fn prelude_gaps_stub_files_and_symbols_of_embedded_rule_sets() {
    let ws = dropin("prelude_gaps");
    let out = ocib(&ws, &["query", "--order_output=no", "//:all", "--output=label_kind"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.lines(), ["go_proto_library rule //:api_go_proto", "go_library rule //:lib"]);
    assert!(out.stderr.contains("ocib's prelude lacks go_context"), "{}", out.stderr);
}

#[test]
fn a_missing_symbol_of_the_users_own_bzl_stays_an_error() {
    // As in Bazel: only rule sets ocib emulates are stubbed, never the user's own files.
    let ws = workspace(&[("WORKSPACE", ""), ("defs.bzl", "x = 1\n"), ("BUILD.bazel", "load(\":defs.bzl\", \"missing\")\n")]);
    let out = ocib(ws.path(), &["query", "--order_output=no", "//:all"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("missing"), "{}", out.stderr);
}

#[test]
fn module_bazel_include_newer_functions_and_repo_name_none() {
    // include() brings in a local_path_override; inject_repo, override_repo, use_repo_rule,
    // the *_override functions and bazel_dep(repo_name = None) are accepted.
    let ws = dropin("module_globals");
    let deps = query_ok(&ws, &["query", "--order_output=no", "deps(//:uses)"]);
    assert_eq!(deps, ["//:uses", "@mylib//:lib", "@mylib//:lib.txt"]);
}

#[test]
fn an_included_module_file_must_be_named_dot_module_bazel() {
    let ws = workspace(&[("MODULE.bazel", "include(\"//:deps.bzl\")\n"), ("BUILD.bazel", "")]);
    let out = ocib(ws.path(), &["query", "--order_output=no", "//:all"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("must end with '.MODULE.bazel'"), "{}", out.stderr);
}

#[test]
fn keyword_only_parameters_are_accepted() {
    let ws = dropin("kwonly");
    assert_eq!(query_ok(&ws, &["query", "--order_output=no", "//:all"]), ["//:a_b"]);
}

#[test]
fn native_rules_ocib_lacks_record_generic_targets() {
    let ws = dropin("native_rules");
    let kinds = query_ok(&ws, &["query", "--order_output=no", "kind(rule, //java/...)", "--output=label_kind"]);
    assert_eq!(
        kinds,
        [
            "proto_library rule //java:api_proto",
            "java_binary rule //java:app",
            "java_library rule //java:lib",
            "java_test rule //java:lib_test",
            "cc_library rule //java:native",
            "sh_library rule //java:scripts",
            "py_binary rule //java:tool",
            "toolchain rule //java:toolchain",
            "toolchain_type rule //java:toolchain_type",
        ]
    );
    let out = query_ok(&ws, &["query", "--order_output=no", "attr(main_class, example.App, //java:all)"]);
    assert_eq!(out, ["//java:app"]);
}

#[test]
fn native_rules_ocib_lacks_are_reachable_from_macros_through_native() {
    let ws = dropin("native_rules");
    let kinds = query_ok(&ws, &["query", "--order_output=no", "//macro:all", "--output=label_kind"]);
    assert_eq!(kinds, ["java_binary rule //macro:server", "toolchain rule //macro:server_toolchain"]);
}

#[test]
fn building_a_generic_native_rule_fails_naming_its_kind() {
    let ws = common::copy_workspace("dropin/native_rules");
    let out = ocib(ws.path(), &["build", "//java:lib"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("in java_library rule //java:lib: 'java_library'"), "{}", out.stderr);
    assert!(out.stderr.contains("cannot be built"), "{}", out.stderr);
}

#[test]
fn bazelrc_options_ocib_lacks_are_dropped_with_their_values() {
    let ws = dropin("rc_flags");
    let out = ocib(&ws, &["query", "--order_output=no", "//:all"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.lines(), ["//:files"]);
    assert!(out.stderr.contains("--action_env FOO=1"), "{}", out.stderr);
    // `build` lines reach cquery: `--aspects X` and `--copt -O2` (a value starting with '-').
    let out = ocib(&ws, &["cquery", "//:all"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("--aspects //tools/lint:linters.bzl%eslint"), "{}", out.stderr);
    assert!(out.stderr.contains("--copt -O2"), "{}", out.stderr);
}

#[test]
fn bazel_options_on_the_command_line_are_skipped_with_their_values() {
    let ws = dropin("rc_flags");
    let out = ocib(&ws, &["query", "--order_output=no", "--remote_cache", "grpc://cache:9092", "--verbose_failures", "//:all"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.lines(), ["//:files"]);
    assert!(
        out.stderr.contains("ignoring options that ocib does not implement: --remote_cache grpc://cache:9092 --verbose_failures"),
        "{}",
        out.stderr
    );
    // An option Bazel does not have either stays an error.
    let out = ocib(&ws, &["query", "--order_output=no", "--not_a_bazel_option", "//:all"]);
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("Unrecognized option: --not_a_bazel_option"), "{}", out.stderr);
}

#[test]
fn skylib_versions_partial_and_structs_behave_as_upstream() {
    // versions.check() in WORKSPACE, versions.parse/is_at_least/is_at_most, partial.make/call
    // and structs.to_dict from a macro: real behaviour, not stubs.
    let ws = dropin("skylib_libs");
    let out = query_ok(&ws, &["query", "--order_output=no", "//:all", "--output=build"]).join("\n");
    assert!(out.contains("cmd = \"echo v7.4.1 > $@\""), "{out}");
    assert!(out.contains("cmd = \"echo a,b > $@\""), "{out}");
    assert!(out.contains("cmd = \"echo TrueFalse > $@\""), "{out}");
}

#[test]
fn bazel_builtins_and_bazel_lib_helpers_used_at_load_time() {
    // configuration_field(), rule(build_setting = ...) with build_setting_default,
    // exports_files(srcs = ...) by keyword, native genquery, and bazel-lib's
    // propagate_common_rule_attributes keeping `tags` but not `size`.
    let ws = dropin("builtins");
    let out = query_ok(&ws, &["query", "--order_output=no", "//:all", "--output=build"]).join("\n");
    assert!(out.contains("build_setting_default = \"fast\""), "{out}");
    assert!(out.contains("genquery(\n  name = \"deps_of_passwd\""), "{out}");
    let passwd = out.split("filegroup(").nth(1).and_then(|rest| rest.split("\n)").next()).unwrap_or_default();
    assert!(passwd.contains("tags = [\"manual\"]") && !passwd.contains("size"), "{out}");
    // A rule spreading bazel-lib's `**resource_set_attr`, with a configuration_field() default.
    assert_eq!(query_ok(&ws, &["query", "--order_output=no", "attr(resource_set, mem_1g, //:all)"]), ["//:sized"]);
}

/// The repositories of testdata/dropin/bzlmod_modes that resolve, with `.bazelversion` set to
/// `version` (none if empty), a `.bazelrc` of `rc` and extra command-line `flags`.
fn defined_repos(version: &str, rc: &str, flags: &[&str]) -> Vec<&'static str> {
    let ws = common::copy_workspace("dropin/bzlmod_modes");
    if !version.is_empty() {
        std::fs::write(ws.path().join(".bazelversion"), format!("{version}\n")).unwrap();
    }
    std::fs::write(ws.path().join(".bazelrc"), rc).unwrap();
    ["from_module", "from_workspace", "from_workspace_bzlmod"]
        .into_iter()
        .filter(|repo| {
            let target = format!("@{repo}//:f");
            let mut args = vec!["query", target.as_str()];
            args.extend(flags);
            let out = ocib(ws.path(), &args);
            assert!(out.code == 0 || out.stderr.contains("is not defined"), "{}", out.stderr);
            out.code == 0
        })
        .collect()
}

#[test]
fn bazelversion_picks_module_workspace_or_workspace_bzlmod_as_bazel_does() {
    // Bazel 6: WORKSPACE only; 7: both, WORKSPACE.bzlmod replacing WORKSPACE; 8 and
    // unpinned (the newest): MODULE.bazel only.
    assert_eq!(defined_repos("6.5.0", "", &[]), ["from_workspace"]);
    assert_eq!(defined_repos("7.4.1", "", &[]), ["from_module", "from_workspace_bzlmod"]);
    assert_eq!(defined_repos("8.0.0", "", &[]), ["from_module"]);
    assert_eq!(defined_repos("", "", &[]), ["from_module"]);
}

#[test]
fn enable_bzlmod_and_enable_workspace_flags_override_the_version_default() {
    assert_eq!(defined_repos("8.0.0", "common --enable_workspace\n", &[]), ["from_module", "from_workspace_bzlmod"]);
    assert_eq!(defined_repos("7.4.1", "", &["--noenable_bzlmod"]), ["from_workspace"]);
    assert_eq!(defined_repos("6.5.0", "common --enable_bzlmod\n", &[]), ["from_module", "from_workspace_bzlmod"]);
}

#[test]
fn the_main_repositorys_own_name_resolves_in_workspace_bzl_and_build_loads() {
    // workspace(name = "mymain"): WORKSPACE, a .bzl and a BUILD file load `@mymain//tools:...`.
    let ws = dropin("main_repo_name");
    assert_eq!(query_ok(&ws, &["query", "--order_output=no", "//...:all"]), ["//:gen", "//pkg:undefined"]);
}

#[test]
fn genrule_outs_may_be_labels_of_the_rules_own_package() {
    // Bazel accepts `//pkg:file` and `:file` in outs (and names them so in query).
    let ws = dropin("main_repo_name");
    assert_eq!(query_ok(&ws, &["query", "--order_output=no", "labels(outs, //...)"]), ["//:a.txt", "//:b.txt", "//pkg:c.txt"]);
    // Another package's label is Bazel's error.
    let ws = workspace(&[("WORKSPACE", ""), ("p/BUILD", "genrule(name = \"g\", outs = [\"//q:x.txt\"], cmd = \"touch $@\")\n")]);
    let out = ocib(ws.path(), &["query", "--order_output=no", "//p:all"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("label '//q:x.txt' is not in the current package"), "{}", out.stderr);
}

#[test]
fn defines_from_the_command_line_and_bazelrc_are_genrule_make_variables() {
    // Checked with Bazel 4.2.3: `--define FLAVOR=vanilla` on the command line and
    // `build --define=FROM_RC=rc-value` in .bazelrc reach `$(FLAVOR)` / `$(FROM_RC)`.
    let ws = common::copy_workspace("dropin/main_repo_name");
    let cache = tempfile::tempdir().unwrap();
    let out = common::build(ws.path(), cache.path(), &["//:gen", "--define", "FLAVOR=vanilla"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(ws.path().join("ocib-bin/a.txt")).unwrap(), "hello! vanilla\n");
    assert_eq!(std::fs::read_to_string(ws.path().join("ocib-bin/b.txt")).unwrap(), "rc-value\n");
    // The last --define of a key wins.
    let out = common::build(ws.path(), cache.path(), &["//:gen", "--define=FLAVOR=a", "--define=FLAVOR=b"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(std::fs::read_to_string(ws.path().join("ocib-bin/a.txt")).unwrap(), "hello! b\n");
    // An undefined variable is an analysis error with Bazel's words.
    let out = common::build(ws.path(), cache.path(), &["//pkg:undefined"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("in genrule rule //pkg:undefined: attribute 'cmd': $(NOT_DEFINED) not defined"), "{}", out.stderr);
}

/// The rule targets `//app:all` has in testdata/dropin/rules_oci_versions/`era`, sorted.
fn rules_oci_targets(era: &str) -> Vec<String> {
    query_ok(&dropin("rules_oci_versions").join(era), &["query", "--order_output=no", "//app:all"])
}

/// `names` as `//app:` labels in label order.
fn app_labels(names: &[&str]) -> Vec<String> {
    let mut labels: Vec<String> = names.iter().map(|n| format!("//app:{n}")).collect();
    labels.sort();
    labels
}

// The expected names below are the targets rules_oci's own `oci/defs.bzl` macros create at
// each release (read at the tags v1.7.6, v2.0.1, v2.2.0 and v2.2.1 of bazel-contrib/rules_oci;
// docs/rules_oci-versions.md has the table), for the same app/BUILD.bazel: an oci_image with
// annotations/labels/env dicts and cmd/entrypoint/exposed_ports(/volumes) lists, an
// oci_image_index, an oci_push with remote_tags and an oci_tarball (1.x) / oci_load (2.x) with
// repo_tags.

#[test]
fn rules_oci_1_x_hidden_targets_have_a_leading_underscore_and_oci_tarball() {
    // MODULE.bazel bazel_dep(version = "1.7.6"): `_N_write_*`, `_N_index_json(_cp)`, no
    // volumes (2.0+), oci_image_index is the rule itself (no digest targets before 2.2.0).
    assert_eq!(
        rules_oci_targets("v1_7_6"),
        app_labels(&[
            "_image_index_json",
            "_image_index_json_cp",
            "_image_write_annotations",
            "_image_write_cmd",
            "_image_write_entrypoint",
            "_image_write_env",
            "_image_write_exposed_ports",
            "_image_write_labels",
            "_push_write_tags",
            "_tarball_write_tags",
            "image",
            "image.digest",
            "index",
            "push",
            "tarball",
        ])
    );
    let kinds =
        query_ok(&dropin("rules_oci_versions/v1_7_6"), &["query", "--order_output=no", "kind('oci_', //app:all)", "--output=label_kind"]);
    assert!(kinds.contains(&"oci_tarball rule //app:tarball".to_owned()), "{kinds:?}");
}

#[test]
fn rules_oci_2_0_has_oci_load_volumes_and_underscored_hidden_targets() {
    // WORKSPACE http_archive(strip_prefix = "rules_oci-2.0.1", url = .../v2.0.1/...).
    assert_eq!(
        rules_oci_targets("v2_0_1"),
        app_labels(&[
            "_image_index_json",
            "_image_index_json_cp",
            "_image_write_annotations",
            "_image_write_cmd",
            "_image_write_entrypoint",
            "_image_write_env",
            "_image_write_exposed_ports",
            "_image_write_labels",
            "_image_write_volumes",
            "_load_write_tags",
            "_push_write_tags",
            "image",
            "image.digest",
            "index",
            "load",
            "push",
        ])
    );
}

#[test]
fn rules_oci_2_2_0_adds_the_index_digest_targets() {
    // WORKSPACE maybe(http_archive, urls = [.../v2.2.0/...]): oci_image_index became a macro.
    assert_eq!(
        rules_oci_targets("v2_2_0"),
        app_labels(&[
            "_image_index_json",
            "_image_index_json_cp",
            "_image_write_annotations",
            "_image_write_cmd",
            "_image_write_entrypoint",
            "_image_write_env",
            "_image_write_exposed_ports",
            "_image_write_labels",
            "_image_write_volumes",
            "_index_index_json",
            "_index_index_json_cp",
            "_load_write_tags",
            "_push_write_tags",
            "image",
            "image.digest",
            "index",
            "index.digest",
            "load",
            "push",
        ])
    );
}

#[test]
fn rules_oci_2_2_1_and_later_drop_the_underscore() {
    // bazel_dep(version = "2.2.0") with single_version_override(version = "2.2.1"): the
    // override wins.
    assert_eq!(
        rules_oci_targets("v2_2_1"),
        app_labels(&[
            "image",
            "image.digest",
            "image_index_json",
            "image_index_json_cp",
            "image_write_annotations",
            "image_write_cmd",
            "image_write_entrypoint",
            "image_write_env",
            "image_write_exposed_ports",
            "image_write_labels",
            "image_write_volumes",
            "index",
            "index.digest",
            "index_index_json",
            "index_index_json_cp",
            "load",
            "load_write_tags",
            "push",
            "push_write_tags",
        ])
    );
}

#[test]
fn a_symbol_the_pinned_rules_oci_lacks_is_bazels_load_error() {
    // 2.x has no oci_tarball, 1.x no oci_load; nothing is stubbed.
    for (module, symbol) in [
        ("bazel_dep(name = \"rules_oci\", version = \"2.0.0\")\n", "oci_tarball"),
        ("bazel_dep(name = \"rules_oci\", version = \"1.8.0\")\n", "oci_load"),
    ] {
        let build = format!("load(\"@rules_oci//oci:defs.bzl\", \"{symbol}\")\n");
        let ws = workspace(&[("MODULE.bazel", module), ("BUILD.bazel", &build)]);
        let out = ocib(ws.path(), &["query", "--order_output=no", "//:all"]);
        assert_ne!(out.code, 0, "{symbol} under {module}");
        assert!(
            out.stderr.contains(&format!("BUILD.bazel:1:6-32: file '@rules_oci//oci:defs.bzl' does not contain symbol '{symbol}'")),
            "{}",
            out.stderr
        );
    }
    // Unpinned, ocib's face has both (no Bazel build to contradict).
    let ws = workspace(&[("MODULE.bazel", ""), ("BUILD.bazel", "load(\"@rules_oci//oci:defs.bzl\", \"oci_load\", \"oci_tarball\")\n")]);
    assert_eq!(query_ok(ws.path(), &["query", "--order_output=no", "//:all"]), Vec::<String>::new());
}

#[test]
fn a_rule_sets_own_repository_uses_the_embedded_face_for_its_public_load_paths() {
    // testdata/dropin/own_rule_set stands for rules_oci's own repository: its oci/defs.bzl
    // fails if evaluated (as the real one would without aspect_bazel_lib's internals).
    // As the main repository (module(name = "rules_oci")): `//oci:defs.bzl` is the face, a
    // private file the prelude lacks (oci/private/util.bzl) still loads from disk.
    let ws = dropin("own_rule_set");
    assert_eq!(
        query_ok(&ws, &["query", "--order_output=no", "//...", "--output=label_kind"]),
        [
            "oci_image rule //examples:image",
            "_jq_rule rule //examples:image.digest",
            "directory_path rule //examples:image_index_json",
            "_copy_file rule //examples:image_index_json_cp",
            "_write_file rule //examples:image_write_env",
            "oci_push rule //examples:push",
        ]
    );
    assert_eq!(
        query_ok(&ws, &["query", "--order_output=no", "attr(repository, 'localhost:5000/example', //examples:all)"]),
        ["//examples:push"]
    );
    // Through local_path_override (bazel_dep version "0.0.0", as rules_oci's e2e/smoke):
    // unpinned, so 2.x's oci_load is there.
    let kinds = query_ok(&ws.join("e2e/smoke"), &["query", "--order_output=no", "kind('oci_', //...)", "--output=label_kind"]);
    assert_eq!(kinds, ["oci_image rule //:image", "oci_load rule //:load"]);
    // Through a WORKSPACE local_repository(name = "rules_oci", path = "../..").
    let kinds = query_ok(&ws.join("e2e/workspace"), &["query", "--order_output=no", "kind('oci_', //...)", "--output=label_kind"]);
    assert_eq!(kinds, ["oci_image rule //:image", "oci_tarball rule //:tarball"]);
}

#[test]
fn kind_oci_push_through_a_macro_layer_and_a_build_prelude_returns_exactly_the_pushes() {
    // Issue 11's acceptance case: //dev:oci_defs.bzl wraps rules_oci's oci_image/oci_push
    // (one service opts out of the push), tools/build_rules/prelude_bazel injects REGISTRY and
    // STAGING_TAGS (the latter built from a symbol the prelude load()s, which Bazel also makes
    // visible), a genrule is named push_docs, and tools/release uses rules_oci's oci_push
    // directly. rules_oci is pinned to 2.2.0, so the tags files are `_N_write_tags`.
    let ws = dropin("macro_layer");
    assert_eq!(
        query_ok(&ws, &["query", "--order_output=no", "kind(oci_push, //...)"]),
        ["//services/api:image_push", "//services/web:image_push", "//tools/release:push"]
    );
    assert_eq!(
        query_ok(&ws, &["query", "--order_output=no", "attr(repository, 'registry.example.com/acme/', kind(oci_push, //...))"]).len(),
        3,
        "every push got REGISTRY from the prelude"
    );
    let tags = query_ok(&ws, &["query", "--order_output=no", "//services/web:_image_push_write_tags", "--output=build"]).join("\n");
    assert!(tags.contains("content = [\"latest\", \"staging\"]"), "{tags}");
}

#[test]
fn the_build_prelude_is_ignored_unless_tools_build_rules_is_a_package() {
    // As Bazel 4.2.3: without tools/build_rules/BUILD the prelude's names are not defined.
    let ws = workspace(&[
        ("MODULE.bazel", ""),
        ("tools/build_rules/prelude_bazel", "GREETING = \"hi\"\n"),
        ("BUILD.bazel", "genrule(name = \"g\", outs = [\"o\"], cmd = \"echo \" + GREETING)\n"),
    ]);
    let out = ocib(ws.path(), &["query", "--order_output=no", "//:all"]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("GREETING"), "{}", out.stderr);
    std::fs::write(ws.path().join("tools/build_rules/BUILD"), "").unwrap();
    assert_eq!(query_ok(ws.path(), &["query", "--order_output=no", "//:all"]), ["//:g"]);
}

#[test]
fn extension_tags_ocib_cannot_turn_into_repositories_warn_and_leave_them_unknown() {
    // rules_distroless's sources_list/dependency_set API and an oci.pull without digest or tag:
    // one warning each naming the tag, and loading goes on with @bullseye and @base unknown.
    let ws = dropin("extension_api");
    let out = common::ocib_env(&ws, &["query", "--order_output=no", "kind('oci_image rule', //:all)"], &[("GOPROXY", "off")]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.lines(), ["//:image"]);
    assert!(out.stderr.contains("apt.install(dependency_set = \"bullseye\"): the sources_list/dependency_set form"), "{}", out.stderr);
    assert!(out.stderr.contains("oci_pull(base): one of 'digest' or 'tag' must be set"), "{}", out.stderr);
    assert_eq!(query_ok(&ws, &["query", "--order_output=no", "labels(tars, //:image)"]), ["@bullseye//bash/amd64:amd64"]);
}

#[test]
fn a_load_from_a_go_module_that_cannot_be_fetched_names_the_fetch_failure() {
    // Bazel fails too without the module; the error says why (the fetch), not that the
    // repository does not exist.
    let ws = dropin("extension_api");
    let out = common::ocib_env(&ws, &["query", "//tools:all"], &[("GOPROXY", "off")]);
    assert_ne!(out.code, 0);
    assert!(out.stderr.contains("cannot load '@com_github_bazelbuild_buildtools//buildifier:def.bzl'"), "{}", out.stderr);
    assert!(out.stderr.contains("GOPROXY"), "{}", out.stderr);
    assert!(!out.stderr.contains("no such repository"), "{}", out.stderr);
}

#[test]
fn the_main_repositorys_own_module_extension_generates_repositories() {
    // Shaped like distroless's node extension: tags → a repository with a constants .bzl and a
    // BUILD file, loaded by the main repository's BUILD files.
    let ws = common::copy_workspace("dropin/module_extension");
    let out = ocib(ws.path(), &["query", "--order_output=no", "//...", "--output=label_kind"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let mut lines = out.lines();
    lines.sort();
    assert_eq!(
        lines,
        [
            "filegroup rule //app:uses",
            "genrule rule //app:node22_amd64",
            "genrule rule //app:node22_arm64",
            "genrule rule //app:node24_amd64",
            "genrule rule //app:node24_arm64",
        ]
    );
    // The generated repository's targets; `use_repo(..., renamed = "extra_repo")` is another name.
    let deps = query_ok(ws.path(), &["query", "--order_output=no", "deps(//app:uses)"]);
    assert_eq!(
        deps,
        [
            "//app:uses",
            "@extra_repo//:extra_repo",
            "@node_versions//:all_versions",
            "@node_versions//:versions.bzl",
            "@node_versions//sub:sub"
        ]
    );
    let out = query_ok(ws.path(), &["query", "@node_versions//:all_versions", "--output=build"]).join("\n");
    assert!(out.contains("srcs = [\"@node_versions//:versions.bzl\"]"), "{out}");
    // A repository rule that downloads is unknown offline, with a warning naming the call.
    let out = ocib(ws.path(), &["query", "//app:all"]);
    assert!(
        out.stderr.contains("repository @remote_archive of module extension //private/extensions:remote.bzl%remote: private/extensions/remote.bzl:4:5: repository_ctx.download_and_extract() is not supported"),
        "{}",
        out.stderr
    );
    // Repositories the module does not use are never generated.
    assert!(!ws.path().join("ocib-out/external/unused_repo").exists());
}

#[test]
fn a_repository_rule_cannot_write_outside_its_repository() {
    let ws = workspace(&[
        ("MODULE.bazel", "e = use_extension(\"//:ext.bzl\", \"e\")\nuse_repo(e, \"gen\")\n"),
        ("BUILD.bazel", "filegroup(name = \"x\", srcs = [\"@gen//:all\"])\n"),
        (
            "ext.bzl",
            "def _impl(rctx):\n    rctx.file(\"../escaped\", \"x\")\n\ngen = repository_rule(implementation = _impl)\n\ndef _e(mctx):\n    gen(name = \"gen\")\n\ne = module_extension(implementation = _e)\n",
        ),
    ]);
    let out = ocib(ws.path(), &["query", "//:x"]);
    assert!(
        out.stderr
            .contains("ext.bzl:2:5: repository_ctx.file('../escaped'): the path must be relative and stay inside the repository directory"),
        "{}",
        out.stderr
    );
    assert!(!ws.path().join("ocib-out/external/escaped").exists());
    assert!(!ws.path().join("ocib-out/escaped").exists());
}

#[test]
fn rules_distroless_debian_version_helpers_compare_as_dpkg() {
    // distroless's own `version` extension parses lock versions with
    // @rules_distroless//apt/private:version.bzl; every comparison is checked against dpkg.
    common::require_tool("dpkg", &["--version"]);
    let ws = dropin("deb_versions");
    let out = query_ok(&ws, &["query", "//...", "--output=build"]).join("\n");
    let mut checked = 0;
    for line in out.lines().filter_map(|l| l.trim().strip_prefix("cmd = \"echo '")) {
        let fields: Vec<&str> = line.trim_end_matches("\",").split('\'').collect();
        let (a, b, ocib_says) = (fields[0], fields[2], fields[3].trim());
        let dpkg = |op: &str| std::process::Command::new("dpkg").args(["--compare-versions", a, op, b]).status().unwrap().success();
        let expected = if dpkg("lt") {
            "-1"
        } else if dpkg("eq") {
            "0"
        } else {
            "1"
        };
        assert_eq!(ocib_says, expected, "version.cmp({a:?}, {b:?})");
        checked += 1;
    }
    assert_eq!(checked, 13, "{out}");
    assert!(out.contains("cmd = \"echo 1 2.36 9+deb12u9 1.0a,1.0-1,0:1.0,1.0~b\""), "{out}");
}
