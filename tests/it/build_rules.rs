//! `ocib build` of the non-Go rules, selects, visibility, strict deps and errors, and
//! `cquery --output=files`.

use crate::common::{build, executed_and_hits, ocib, ocib_env, require_go, run_program, spawn_build, workspace};

#[test]
fn genrule_make_variables_and_its_exec_root_holds_only_declared_inputs() {
    let ws = workspace(&[
        ("WORKSPACE", ""),
        (
            "p/BUILD",
            concat!(
                "genrule(name = \"two\", srcs = [\"a.txt\", \"b.txt\"], outs = [\"x.txt\", \"y.txt\"],\n",
                "    cmd = \"cat $(location a.txt) > $(location x.txt); echo $(SRCS) > $(location y.txt); echo $(RULEDIR) >> $(location y.txt)\")\n",
                "genrule(name = \"sneaky\", srcs = [\"a.txt\"], outs = [\"s.txt\"], cmd = \"cat p/b.txt > $@\")\n",
                "genrule(name = \"tool_user\", srcs = [\":x.txt\"], outs = [\"t.txt\"], tools = [\":tool\"], cmd = \"$(location :tool) $< > $@\")\n",
                "sh_binary(name = \"tool\", srcs = [\"tool.sh\"])\n",
                "filegroup(name = \"group\", srcs = [\":two\", \"a.txt\"])\n",
                "alias(name = \"alias_of_group\", actual = \":group\")\n",
            ),
        ),
        ("p/a.txt", "A\n"),
        ("p/b.txt", "B\n"),
        ("p/tool.sh", "#!/bin/sh\ntr A-Z a-z < \"$1\"\n"),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let ok = build(ws.path(), cache.path(), &["//p:two", "//p:tool_user", "//p:alias_of_group"]);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let bin = ws.path().join("ocib-bin/p");
    assert_eq!(std::fs::read_to_string(bin.join("x.txt")).unwrap(), "A\n");
    assert_eq!(std::fs::read_to_string(bin.join("y.txt")).unwrap(), "p/a.txt p/b.txt\nocib-out/bin/p\n");
    assert_eq!(std::fs::read_to_string(bin.join("t.txt")).unwrap(), "a\n");
    assert!(
        ok.stderr.contains("Target //p:alias_of_group up-to-date:\n  ocib-bin/p/x.txt\n  ocib-bin/p/y.txt\n  p/a.txt"),
        "{}",
        ok.stderr
    );
    // A file the genrule did not declare is not there to read.
    let sneaky = build(ws.path(), cache.path(), &["//p:sneaky"]);
    assert_eq!(sneaky.code, 1, "{}", sneaky.stderr);
    assert!(sneaky.stderr.contains("Genrule //p:sneaky") && sneaky.stderr.contains("p/b.txt"), "{}", sneaky.stderr);
    assert!(!ws.path().join("ocib-bin/p/s.txt").exists(), "a failed action leaves no output");
}

#[test]
fn write_file_expand_template_copy_file_and_selects() {
    let ws = workspace(&[
        ("MODULE.bazel", "module(name = \"m\")\n"),
        (
            "p/BUILD",
            concat!(
                "load(\"@bazel_skylib//rules:write_file.bzl\", \"write_file\")\n",
                "load(\"@aspect_bazel_lib//lib:expand_template.bzl\", \"expand_template\")\n",
                "load(\"@aspect_bazel_lib//lib:copy_file.bzl\", \"copy_file\")\n",
                "config_setting(name = \"stamped\", values = {\"stamp\": \"1\"})\n",
                "config_setting(name = \"linux\", constraint_values = [\"@platforms//os:linux\"])\n",
                "write_file(name = \"w\", out = \"w.txt\", content = [\"a\", \"b\"] + select({\":stamped\": [\"stamped\"], \"//conditions:default\": [\"plain\"]}))\n",
                "write_file(name = \"os\", out = \"os.txt\", content = select({\":linux\": [\"linux\"], \"//conditions:default\": [\"other\"]}))\n",
                "expand_template(name = \"t\", template = \"t.in\", out = \"t.txt\", substitutions = {\"NAME\": \"world\"})\n",
                "copy_file(name = \"c\", src = \":w.txt\", out = \"c.txt\", is_executable = True)\n",
            ),
        ),
        ("p/t.in", "hello NAME\n"),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let out = build(ws.path(), cache.path(), &["//p:all"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let bin = ws.path().join("ocib-bin/p");
    // skylib's write_file: lines joined, no trailing newline.
    assert_eq!(std::fs::read_to_string(bin.join("w.txt")).unwrap(), "a\nb\nplain");
    assert_eq!(std::fs::read_to_string(bin.join("os.txt")).unwrap(), "linux");
    assert_eq!(std::fs::read_to_string(bin.join("t.txt")).unwrap(), "hello world\n");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(bin.join("c.txt")).unwrap().permissions());
    assert_eq!(mode & 0o111, 0o111, "copy_file(is_executable = True) output is executable");
    let stamped = build(ws.path(), cache.path(), &["--stamp", "//p:w"]);
    assert_eq!(stamped.code, 0, "{}", stamped.stderr);
    assert_eq!(std::fs::read_to_string(bin.join("w.txt")).unwrap(), "a\nb\nstamped");
}

#[test]
fn visibility_is_enforced_with_both_targets_named() {
    let ws = workspace(&[
        ("WORKSPACE", ""),
        (
            "lib/BUILD",
            "filegroup(name = \"private\", srcs = [\"f.txt\"])\nfilegroup(name = \"friends\", srcs = [\"f.txt\"], visibility = [\"//app:__pkg__\"])\n",
        ),
        ("lib/f.txt", "x"),
        (
            "app/BUILD",
            "filegroup(name = \"uses_private\", srcs = [\"//lib:private\"])\nfilegroup(name = \"uses_friend\", srcs = [\"//lib:friends\"])\n",
        ),
        ("other/BUILD", "filegroup(name = \"uses_friend\", srcs = [\"//lib:friends\"])\n"),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let bad = build(ws.path(), cache.path(), &["//app:uses_private"]);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("target '//lib:private' is not visible from target '//app:uses_private'"), "{}", bad.stderr);
    assert!(bad.stderr.contains("app/BUILD:1:10"), "{}", bad.stderr);
    assert_eq!(build(ws.path(), cache.path(), &["//app:uses_friend"]).code, 0);
    assert_eq!(build(ws.path(), cache.path(), &["//other:uses_friend"]).code, 1);
}

#[test]
fn manual_targets_are_skipped_by_wildcards_and_negative_patterns_subtract() {
    let ws = workspace(&[
        ("WORKSPACE", ""),
        (
            "p/BUILD",
            "genrule(name = \"a\", outs = [\"a.txt\"], cmd = \"echo a > $@\")\ngenrule(name = \"m\", outs = [\"m.txt\"], cmd = \"echo m > $@\", tags = [\"manual\"])\n",
        ),
        ("q/BUILD", "genrule(name = \"b\", outs = [\"b.txt\"], cmd = \"echo b > $@\")\n"),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let out = build(ws.path(), cache.path(), &["--", "//...", "-//q/..."]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(ws.path().join("ocib-bin/p/a.txt").exists());
    assert!(!ws.path().join("ocib-bin/p/m.txt").exists(), "manual targets are not built by //...");
    assert!(!ws.path().join("ocib-bin/q/b.txt").exists(), "-//q/... was subtracted");
    // Named explicitly, a manual target builds.
    assert_eq!(build(ws.path(), cache.path(), &["//p:m"]).code, 0);
    assert!(ws.path().join("ocib-bin/p/m.txt").exists());
}

#[test]
fn keep_going_builds_what_it_can() {
    let ws = workspace(&[
        ("WORKSPACE", ""),
        (
            "p/BUILD",
            "genrule(name = \"bad\", outs = [\"bad.txt\"], cmd = \"exit 3\")\ngenrule(name = \"good\", outs = [\"good.txt\"], cmd = \"echo ok > $@\")\n",
        ),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let out = build(ws.path(), cache.path(), &["--keep_going", "//p:all"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("Genrule //p:bad") && out.stderr.contains("exit code 3"), "{}", out.stderr);
    assert!(ws.path().join("ocib-bin/p/good.txt").exists());
    assert!(out.stderr.contains("Build did NOT complete successfully"), "{}", out.stderr);
}

#[test]
fn go_errors_are_clear() {
    if !require_go() {
        return;
    }
    let ws = workspace(&[
        ("MODULE.bazel", "bazel_dep(name = \"rules_go\", version = \"0.62.0\")\n"),
        (
            "lib/BUILD",
            "load(\"@rules_go//go:def.bzl\", \"go_library\")\ngo_library(name = \"lib\", srcs = [\"lib.go\"], importpath = \"ex.com/lib\", visibility = [\"//visibility:public\"])\n",
        ),
        ("lib/lib.go", "package lib\n\nfunc X() int { return 1 }\n"),
        ("app/BUILD", "load(\"@rules_go//go:def.bzl\", \"go_binary\")\ngo_binary(name = \"app\", srcs = [\"main.go\"])\n"),
        ("app/main.go", "package main\n\nimport \"ex.com/lib\"\n\nfunc main() { _ = lib.X() }\n"),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let strict = build(ws.path(), cache.path(), &["//app"]);
    assert_eq!(strict.code, 1);
    assert!(
        strict.stderr.contains("missing strict dependencies") && strict.stderr.contains("import of \"ex.com/lib\""),
        "{}",
        strict.stderr
    );
    let no_go = ocib_env(
        ws.path(),
        &["build", "--noshow_progress", &format!("--disk_cache={}", cache.path().display()), "//lib"],
        &[("OCIB_GO", "/nonexistent/go")],
    );
    assert_eq!(no_go.code, 1);
    assert!(no_go.stderr.contains("/nonexistent/go"), "{}", no_go.stderr);
}

#[test]
fn cross_compiling_with_goos_goarch_and_go_cross_binary() {
    if !require_go() {
        return;
    }
    let ws = workspace(&[
        ("MODULE.bazel", "bazel_dep(name = \"rules_go\", version = \"0.62.0\", repo_name = \"io_bazel_rules_go\")\n"),
        (
            "app/BUILD",
            concat!(
                "load(\"@io_bazel_rules_go//go:def.bzl\", \"go_binary\", \"go_cross_binary\")\n",
                "go_binary(name = \"arm\", srcs = [\"main.go\"], goos = \"linux\", goarch = \"arm64\")\n",
                "go_binary(name = \"native\", srcs = [\"main.go\"])\n",
                "go_cross_binary(name = \"native_arm\", target = \":native\", platform = \"@io_bazel_rules_go//go/toolchain:linux_arm64\")\n",
            ),
        ),
        ("app/main.go", "package main\n\nfunc main() {}\n"),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let out = build(ws.path(), cache.path(), &["//app:all"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    // ELF e_machine at offset 18: 0xB7 = aarch64, 0x3E = x86-64.
    let machine = |p: &std::path::Path| std::fs::read(p).unwrap()[18];
    assert_eq!(machine(&ws.path().join("ocib-out/linux_arm64/bin/app/arm_/arm")), 0xB7);
    assert_eq!(machine(&ws.path().join("ocib-bin/app/native_/native")), 0x3E);
    assert_eq!(machine(&ws.path().join("ocib-bin/app/native_arm")), 0xB7);
    let native = run_program(&ws.path().join("ocib-bin/app/native_/native"));
    assert_eq!(native, "");
}

#[test]
fn cquery_files_prints_paths_relative_to_the_root() {
    let ws = workspace(&[
        ("WORKSPACE", ""),
        (
            "p/BUILD",
            "genrule(name = \"g\", srcs = [\"in.txt\"], outs = [\"out.txt\"], cmd = \"cp $< $@\")\nfilegroup(name = \"fg\", srcs = [\"in.txt\", \":g\"])\n",
        ),
        ("p/in.txt", "x"),
    ]);
    let out = ocib(ws.path(), &["cquery", "//p:fg", "--output=files"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "p/in.txt\nocib-out/bin/p/out.txt\n");
    let labels = ocib(ws.path(), &["cquery", "//p:g + //p:in.txt"]);
    let lines: Vec<&str> = labels.stdout.lines().collect();
    assert!(lines[0].starts_with("//p:g (") && lines[1] == "//p:in.txt (null)", "{lines:?}");
    // From a subdirectory the paths are still relative to the workspace root.
    let sub = ocib(&ws.path().join("p"), &["cquery", ":g", "--output=files"]);
    assert_eq!(sub.stdout, "ocib-out/bin/p/out.txt\n");
}

#[test]
fn no_op_build_is_all_cache_hits_and_clean_expunge_empties_the_cache() {
    let ws = workspace(&[("WORKSPACE", ""), ("p/BUILD", "genrule(name = \"g\", outs = [\"o.txt\"], cmd = \"echo hi > $@\")\n")]);
    let cache = tempfile::tempdir().unwrap();
    assert_eq!(executed_and_hits(&build(ws.path(), cache.path(), &["//p:g"])), (1, 0));
    assert_eq!(executed_and_hits(&build(ws.path(), cache.path(), &["//p:g"])), (0, 1));
    let cleaned = ocib(ws.path(), &["clean", "--expunge", &format!("--disk_cache={}", cache.path().display())]);
    assert_eq!(cleaned.code, 0, "{}", cleaned.stderr);
    assert!(!ws.path().join("ocib-bin").exists());
    assert_eq!(executed_and_hits(&build(ws.path(), cache.path(), &["//p:g"])), (1, 0));
}

#[test]
fn an_interrupted_build_stops_with_exit_8_and_leaves_no_partial_output() {
    let ws = workspace(&[
        ("WORKSPACE", ""),
        ("p/BUILD", "genrule(name = \"slow\", outs = [\"slow.txt\"], cmd = \"echo partial > $@; sleep 30; echo done >> $@\")\n"),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let mut child = spawn_build(ws.path(), cache.path(), "//p:slow", std::process::Stdio::piped());
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let started = std::time::Instant::now();
    // SAFETY: plain kill(2) of our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert!(started.elapsed() < std::time::Duration::from_secs(10), "the build stopped promptly (its sleep was killed)");
    assert_eq!(status.code(), Some(8));
    assert!(!ws.path().join("ocib-bin/p/slow.txt").exists(), "no partial output at the output path");
    assert!(std::fs::read_dir(ws.path().join("ocib-out/tmp")).map(|d| d.count()).unwrap_or(0) == 0, "scratch directories removed");
}
