//! `ocib query` on testdata/monorepo: a Go monorepo in the Sourcegraph style, with services
//! declared directly and through a shared macro, a base image from a `local_repository`
//! declared by a WORKSPACE macro, another from `oci.pull` in MODULE.bazel, and a nested
//! workspace listed in `.bazelignore`.

use crate::common::{ocib, query_ok, testdata};

fn repo() -> std::path::PathBuf {
    testdata("monorepo")
}

#[test]
fn kind_oci_push_lists_exactly_the_push_targets_sorted() {
    let lines = query_ok(&repo(), &["query", "--order_output=no", "kind(oci_push, //...)"]);
    assert_eq!(lines, ["//cmd/frontend:candidate_push", "//cmd/gitserver:candidate_push", "//cmd/worker:candidate_push"]);
}

#[test]
fn all_rules_are_listed_in_label_order_including_hidden_macro_targets() {
    let lines = query_ok(&repo(), &["query", "--order_output=no", "//..."]);
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "label order");
    // rules_oci's macros create hidden targets that query shows (they are manual).
    for hidden in [
        "//cmd/worker:image_write_env",
        "//cmd/worker:image_write_entrypoint",
        "//cmd/worker:image.digest",
        "//cmd/worker:candidate_push_write_tags",
        "//cmd/worker:image_tarball_write_tags",
    ] {
        assert!(lines.iter().any(|l| l == hidden), "missing {hidden} in {lines:?}");
    }
    // The nested workspaces (one in .bazelignore, one a local_repository) are not part of //...
    assert!(!lines.iter().any(|l| l.contains("vendor_ws") || l.contains("third_party")), "{lines:?}");
}

#[test]
fn deps_reach_go_libraries_and_external_bases() {
    let worker = query_ok(&repo(), &["query", "--order_output=no", "deps(//cmd/worker:image)"]);
    for want in [
        "//cmd/worker:worker_lib",
        "//lib/log:log",
        "//lib/version:version",
        "//lib/version:version.go",
        "@wolfi_base//:wolfi_base",
        "@wolfi_base_linux_amd64//:wolfi_base_linux_amd64",
    ] {
        assert!(worker.iter().any(|l| l == want), "deps(//cmd/worker:image) lacks {want}: {worker:?}");
    }
    let frontend = query_ok(&repo(), &["query", "--order_output=no", "deps(//cmd/frontend:image)"]);
    for want in ["@base_local//:base_image", "@base_local//:rootfs", "@base_local//:rootfs/etc/passwd", "//lib/log:log"] {
        assert!(frontend.iter().any(|l| l == want), "deps(//cmd/frontend:image) lacks {want}: {frontend:?}");
    }
    // Depth 1: the image and its direct deps only.
    let direct = query_ok(&repo(), &["query", "--order_output=no", "deps(//cmd/worker:image, 1)"]);
    assert!(direct.contains(&"//cmd/worker:tar_worker".to_owned()));
    assert!(!direct.contains(&"//cmd/worker:worker".to_owned()), "{direct:?}");
}

#[test]
fn rdeps_finds_every_service_that_uses_a_library() {
    let lines = query_ok(&repo(), &["query", "--order_output=no", "kind(go_binary, rdeps(//..., //lib/version))"]);
    assert_eq!(lines, ["//cmd/frontend:frontend", "//cmd/gitserver:gitserver", "//cmd/worker:worker"]);
    let direct = query_ok(&repo(), &["query", "--order_output=no", "rdeps(//..., //lib/version:version, 1)"]);
    assert_eq!(direct, ["//cmd/worker:worker_lib", "//lib/log:log", "//lib/version:version"]);
}

#[test]
fn attr_matches_values_and_defaults() {
    let users = query_ok(&repo(), &["query", "--order_output=no", "attr(user, '^sourcegraph$', //...)"]);
    assert_eq!(users, ["//cmd/frontend:image", "//cmd/gitserver:image", "//cmd/worker:image"]);
    // Lists match in their `[a, b]` form.
    let tagged = query_ok(&repo(), &["query", "--order_output=no", "attr(tags, '\\[exclusive, requires-network\\]', //...)"]);
    assert_eq!(tagged, ["//cmd/worker:image_test"]);
    // An unset attribute matches its default: pkg_tar's mode is 0555.
    let modes = query_ok(&repo(), &["query", "--order_output=no", "attr(mode, 0555, kind(pkg_tar_impl, //cmd/...))"]);
    assert_eq!(modes.len(), 3, "{modes:?}");
}

#[test]
fn label_kind_output_matches_bazel() {
    let lines = query_ok(&repo(), &["query", "--order_output=no", "//cmd/worker:all", "--output=label_kind"]);
    for want in [
        "oci_image rule //cmd/worker:image",
        "go_binary rule //cmd/worker:worker",
        "go_library rule //cmd/worker:worker_lib",
        "pkg_tar_impl rule //cmd/worker:tar_worker",
        "oci_load rule //cmd/worker:image_tarball",
        "container_structure_test rule //cmd/worker:image_test",
        "oci_push rule //cmd/worker:candidate_push",
        "_write_file rule //cmd/worker:image_write_env",
        "_jq_rule rule //cmd/worker:image.digest",
    ] {
        assert!(lines.iter().any(|l| l == want), "missing '{want}' in {lines:?}");
    }
    let files = query_ok(&repo(), &["query", "--order_output=no", "//cmd/worker:*", "--output=label_kind"]);
    assert!(files.contains(&"source file //cmd/worker:main.go".to_owned()), "{files:?}");
    assert!(files.contains(&"source file //cmd/worker:BUILD.bazel".to_owned()), "{files:?}");
    assert!(files.contains(&"generated file //cmd/worker:tar_worker.tar".to_owned()), "{files:?}");
}

#[test]
fn build_output_matches_bazel_form() {
    let out =
        query_ok(&repo(), &["query", "--order_output=no", "//cmd/worker:image + //cmd/frontend:tar_frontend", "--output=build"]).join("\n");
    let root = repo();
    let expected_worker = format!(
        "# {}/cmd/worker/BUILD.bazel:29:10\noci_image(\n  name = \"image\",\n  generator_name = \"image\",\n  generator_function = \"oci_image\",\n  generator_location = \"cmd/worker/BUILD.bazel:29:10\",\n  base = \"@wolfi_base//:wolfi_base\",\n  tars = [\"//cmd/worker:tar_worker\"],\n  entrypoint = \"//cmd/worker:image_write_entrypoint\",\n  env = \"//cmd/worker:image_write_env\",\n  user = \"sourcegraph\",\n)\n",
        root.display()
    );
    assert!(out.contains(&expected_worker), "got:\n{out}\nwant:\n{expected_worker}");
    // A rule made by the shared macro names the macro and the BUILD call site.
    let expected_tar = format!(
        "# {}/cmd/frontend/BUILD.bazel:16:14\npkg_tar_impl(\n  name = \"tar_frontend\",\n  generator_name = \"frontend\",\n  generator_function = \"service_image\",\n  generator_location = \"cmd/frontend/BUILD.bazel:16:14\",\n  srcs = [\"//cmd/frontend:frontend\"],\n  out = \"//cmd/frontend:tar_frontend.tar\",\n",
        root.display()
    );
    assert!(out.contains(&expected_tar), "got:\n{out}\nwant:\n{expected_tar}");
}

#[test]
fn location_and_package_outputs() {
    let loc = query_ok(&repo(), &["query", "--order_output=no", "//cmd/worker:worker", "--output=location"]);
    assert_eq!(loc, [format!("{}/cmd/worker/BUILD.bazel:17:10: go_binary rule //cmd/worker:worker", repo().display())]);
    let pkgs = query_ok(&repo(), &["query", "--order_output=no", "deps(//cmd/frontend:image)", "--output=package"]);
    assert!(pkgs.contains(&"cmd/frontend".to_owned()) && pkgs.contains(&"lib/log".to_owned()), "{pkgs:?}");
    assert!(pkgs.contains(&"@base_local//".to_owned()), "{pkgs:?}");
}

#[test]
fn oci_pull_from_module_bazel_creates_platform_repositories_and_alias() {
    let lines =
        query_ok(&repo(), &["query", "--order_output=no", "@wolfi_base//:all + @wolfi_base_linux_arm64//:all", "--output=label_kind"]);
    assert_eq!(
        lines,
        [
            "filegroup rule @wolfi_base//:digest",
            "alias rule @wolfi_base//:wolfi_base",
            "copy_to_directory rule @wolfi_base_linux_arm64//:wolfi_base_linux_arm64",
        ]
    );
    // Without a digest a pull is not reproducible; with one (as here) there is no warning.
    let out = ocib(&repo(), &["query", "--order_output=no", "@wolfi_base"]);
    assert!(!out.stderr.contains("not reproducible"), "{}", out.stderr);
}

#[test]
fn main_repository_can_be_named_by_its_module_name() {
    let lines = query_ok(&repo(), &["query", "--order_output=no", "@monorepo//lib/log"]);
    assert_eq!(lines, ["//lib/log:log"]);
}

#[test]
fn glob_excludes_tests_and_stops_at_subpackages() {
    let srcs = query_ok(&repo(), &["query", "--order_output=no", "labels(srcs, //lib/log)"]);
    assert_eq!(srcs, ["//lib/log:log.go"]);
}

#[test]
fn relative_patterns_resolve_from_the_working_directory() {
    let dir = repo().join("cmd/worker");
    assert_eq!(query_ok(&dir, &["query", "--order_output=no", "worker"]), ["//cmd/worker:worker"]);
    assert_eq!(query_ok(&dir, &["query", "--order_output=no", ":image"]), ["//cmd/worker:image"]);
    let all = query_ok(&repo().join("cmd"), &["query", "--order_output=no", "kind(go_binary, ...)"]);
    assert_eq!(all, ["//cmd/frontend:frontend", "//cmd/gitserver:gitserver", "//cmd/worker:worker"]);
}

#[test]
fn bazelrc_configs_apply_to_query_and_build_lines_do_not() {
    // `query:kinds --output=label_kind` in testdata/monorepo/.bazelrc; its `build` lines
    // (one of them a flag ocib does not implement) are not for query.
    let out = ocib(&repo(), &["query", "--order_output=no", "--config=kinds", "//lib/log"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "go_library rule //lib/log:log\n");
    assert!(!out.stderr.contains("remote_download_minimal"), "{}", out.stderr);
    let undefined = ocib(&repo(), &["query", "--order_output=no", "--config=nope", "//lib/log"]);
    assert_eq!(undefined.code, 2);
    assert!(undefined.stderr.contains("Config value 'nope' is not defined"), "{}", undefined.stderr);
}

#[test]
fn json_output_is_parseable() {
    let out = query_ok(&repo(), &["query", "--order_output=no", "//cmd/worker:image", "--output=json"]).join("\n");
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(v[0]["label"], "//cmd/worker:image");
    assert_eq!(v[0]["kind"], "oci_image rule");
    assert_eq!(v[0]["attributes"]["user"], "sourcegraph");
}

#[test]
fn somepath_and_allpaths() {
    let path = query_ok(&repo(), &["query", "--order_output=no", "somepath(//cmd/worker:image, //lib/version:version.go)"]);
    assert_eq!(path.first().map(String::as_str), Some("//cmd/worker:image"));
    assert!(path.contains(&"//lib/version:version.go".to_owned()), "{path:?}");
    let all = query_ok(&repo(), &["query", "--order_output=no", "allpaths(//cmd/worker:worker, //lib/version)"]);
    assert_eq!(all, ["//cmd/worker:worker", "//cmd/worker:worker_lib", "//lib/log:log", "//lib/version:version"]);
}

#[test]
fn set_operations_and_let() {
    let lines = query_ok(
        &repo(),
        &["query", "--order_output=no", "let imgs = kind(oci_image, //...) in $imgs - //cmd/worker:all ^ //cmd/frontend:*"],
    );
    assert_eq!(lines, ["//cmd/frontend:image"]);
    let union = query_ok(&repo(), &["query", "--order_output=no", "set(//lib/log //lib/version) union //cmd/worker:worker"]);
    assert_eq!(union, ["//cmd/worker:worker", "//lib/log:log", "//lib/version:version"]);
}

#[test]
fn errors_have_bazel_exit_codes() {
    let syntax = ocib(&repo(), &["query", "--order_output=no", "deps(//lib/log"]);
    assert_eq!(syntax.code, 2, "{}", syntax.stderr);
    let no_pkg = ocib(&repo(), &["query", "--order_output=no", "//no/such:pkg"]);
    assert_eq!(no_pkg.code, 7);
    assert!(no_pkg.stderr.contains("no such package 'no/such'"), "{}", no_pkg.stderr);
    // log_test.go exists but no rule refers to it (the glob excludes it).
    let no_target = ocib(&repo(), &["query", "--order_output=no", "//lib/log:log_test.go"]);
    assert_eq!(no_target.code, 7);
    assert!(no_target.stderr.contains("however, a source file of this name exists"), "{}", no_target.stderr);
    let bad_flag = ocib(&repo(), &["query", "--order_output=no", "--no_such_flag", "//lib/log"]);
    assert_eq!(bad_flag.code, 2);
    assert!(bad_flag.stderr.contains("Unrecognized option: --no_such_flag"), "{}", bad_flag.stderr);
    let no_command = ocib(&repo(), &["frobnicate", "//lib/log"]);
    assert_eq!(no_command.code, 2, "{}", no_command.stderr);
}

#[test]
fn glob_follows_symlinks_and_skips_dangling_ones_and_cycles() {
    let ws = crate::common::workspace(&[
        ("WORKSPACE", ""),
        ("p/BUILD", "filegroup(name = \"g\", srcs = glob([\"**\"]))\n"),
        ("p/a.txt", ""),
        ("p/sub/b.txt", ""),
        ("p/subpkg/BUILD", ""),
        ("p/subpkg/c.txt", ""),
    ]);
    let p = ws.path().join("p");
    std::os::unix::fs::symlink("sub", p.join("linkdir")).unwrap();
    std::os::unix::fs::symlink("a.txt", p.join("linkfile")).unwrap();
    std::os::unix::fs::symlink("nowhere", p.join("dangling")).unwrap();
    // What Bazel 4.2.3 lists for the same tree (without the cycle below).
    let expected = ["//p:sub/b.txt", "//p:linkfile", "//p:linkdir/b.txt", "//p:a.txt", "//p:BUILD"];
    assert_eq!(query_ok(ws.path(), &["query", "labels(srcs, //p:g)"]), expected);
    // A symlink back up the tree: Bazel fails the package ("Infinite symlink expansion") when
    // a glob reaches it; ocib lists every directory whatever the patterns, so it leaves the
    // cycle out instead of failing globs that never reach it.
    std::os::unix::fs::symlink("..", p.join("sub/up")).unwrap();
    assert_eq!(query_ok(ws.path(), &["query", "labels(srcs, //p:g)"]), expected);
}
