//! Stored build answers (`cli/build_answer.rs`): an unchanged `ocib build` prints what it
//! printed before after checking what the build read by status, without loading or
//! analyzing; a change to a source, an output, a BUILD file, the options, the environment
//! or the Go toolchain's binary builds as usual.

use std::path::Path;
use std::time::Duration;

use crate::common::{Output, executed_and_hits, ocib_env, workspace};

/// `ocib build` with the load cache's notes (which say when a build was answered), the
/// cache in `cache`, and `env` added.
fn build(dir: &Path, cache: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let cache_flag = format!("--disk_cache={}", cache.display());
    let mut all = vec!["build", cache_flag.as_str(), "--noshow_progress"];
    all.extend_from_slice(args);
    let mut env = env.to_vec();
    env.push(("OCIB_DEBUG_LOAD_CACHE", "1"));
    let out = ocib_env(dir, &all, &env);
    assert_eq!(out.code, 0, "ocib build {args:?}:\n{}", out.stderr);
    out
}

fn answered(out: &Output) -> bool {
    out.stderr.contains("INFO: load cache: build answered after checking")
}

/// The lines a user sees, without the debug notes and the elapsed time.
fn user_lines(out: &Output) -> Vec<&str> {
    out.stderr.lines().filter(|l| !l.starts_with("INFO: load cache:") && !l.starts_with("INFO: Elapsed time:")).collect()
}

#[test]
fn an_unchanged_build_is_answered_from_its_record_and_any_change_builds_again() {
    let ws = workspace(&[
        ("MODULE.bazel", ""),
        (
            "p/defs.bzl",
            "def twice(name, src):\n    native.genrule(name = name, srcs = [src], outs = [name + \".txt\"], cmd = \"cat $< $< > $@\")\n",
        ),
        ("p/BUILD", "load(\":defs.bzl\", \"twice\")\ntwice(name = \"g\", src = \"in.txt\")\n"),
        ("p/in.txt", "a\n"),
        ("tools/go", "#!/bin/sh\n"),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let go = ws.path().join("tools/go").display().to_string();
    let env = [("OCIB_GO", go.as_str())];
    // Files modified within 2 s of a build are not trusted by status (the racy window).
    std::thread::sleep(Duration::from_millis(2100));

    let first = build(ws.path(), cache.path(), &["//p:g"], &env);
    assert!(!answered(&first), "nothing stored yet:\n{}", first.stderr);
    assert_eq!(executed_and_hits(&first), (1, 0));
    let again = build(ws.path(), cache.path(), &["//p:g"], &env);
    assert!(answered(&again), "an unchanged build is answered:\n{}", again.stderr);
    assert_eq!(executed_and_hits(&again), (0, 1));
    // Exactly what the build itself prints on a no-op.
    let mut plain_env = env.to_vec();
    plain_env.push(("OCIB_BUILD_ANSWERS", "0"));
    let plain = build(ws.path(), cache.path(), &["//p:g"], &plain_env);
    assert!(!answered(&plain));
    assert_eq!(user_lines(&again), user_lines(&plain));
    assert!(again.stderr.contains("Target //p:g up-to-date:\n  ocib-bin/p/g.txt\n"), "{}", again.stderr);

    // An output removed: built again (restored), then answered again.
    std::fs::remove_file(ws.path().join("ocib-bin/p/g.txt")).unwrap();
    let restored = build(ws.path(), cache.path(), &["//p:g"], &env);
    assert!(!answered(&restored), "{}", restored.stderr);
    assert_eq!(std::fs::read_to_string(ws.path().join("ocib-bin/p/g.txt")).unwrap(), "a\na\n");
    assert!(answered(&build(ws.path(), cache.path(), &["//p:g"], &env)));

    // Other options or another environment: another build (and the first one still holds).
    assert!(!answered(&build(ws.path(), cache.path(), &["//p:g", "--define=x=1"], &env)));
    let mut other_env = env.to_vec();
    other_env.push(("SOME_SETTING", "1"));
    assert!(!answered(&build(ws.path(), cache.path(), &["//p:g"], &other_env)));
    assert!(answered(&build(ws.path(), cache.path(), &["//p:g"], &env)));

    // The Go binary replaced (the toolchain's identity is cached by its status).
    std::fs::write(ws.path().join("tools/go"), "#!/bin/sh\n# another release\n").unwrap();
    assert!(!answered(&build(ws.path(), cache.path(), &["//p:g"], &env)));

    // A BUILD file or a .bzl file edited: loaded and analyzed again.
    std::fs::write(ws.path().join("p/BUILD"), "load(\":defs.bzl\", \"twice\")\ntwice(name = \"g\", src = \"in.txt\")  # edited\n").unwrap();
    assert!(!answered(&build(ws.path(), cache.path(), &["//p:g"], &env)));
    std::fs::write(
        ws.path().join("p/defs.bzl"),
        "def twice(name, src):\n    native.genrule(name = name, srcs = [src], outs = [name + \".txt\"], cmd = \"cat $< $< $< > $@\")\n",
    )
    .unwrap();
    let rule_changed = build(ws.path(), cache.path(), &["//p:g"], &env);
    assert!(!answered(&rule_changed));
    assert_eq!(executed_and_hits(&rule_changed), (1, 0));
    assert_eq!(std::fs::read_to_string(ws.path().join("ocib-bin/p/g.txt")).unwrap(), "a\na\na\n");

    // A source edited: built again with the new content.
    std::fs::write(ws.path().join("p/in.txt"), "b\n").unwrap();
    let edited = build(ws.path(), cache.path(), &["//p:g"], &env);
    assert!(!answered(&edited), "{}", edited.stderr);
    assert_eq!(executed_and_hits(&edited), (1, 0));
    assert_eq!(std::fs::read_to_string(ws.path().join("ocib-bin/p/g.txt")).unwrap(), "b\nb\nb\n");
    // Modified within the racy window: not stored, so not answered yet.
    assert!(!answered(&build(ws.path(), cache.path(), &["//p:g"], &env)));
}

#[test]
fn a_build_whose_package_prints_is_never_answered() {
    // Its output would be lost on a replay: such packages are not kept in the load cache.
    let ws = workspace(&[
        ("MODULE.bazel", ""),
        ("p/BUILD", "print(\"hello from p\")\ngenrule(name = \"g\", outs = [\"g.txt\"], cmd = \"echo hi > $@\")\n"),
    ]);
    let cache = tempfile::tempdir().unwrap();
    std::thread::sleep(Duration::from_millis(2100));
    build(ws.path(), cache.path(), &["//p:g"], &[]);
    let again = build(ws.path(), cache.path(), &["//p:g"], &[]);
    assert!(!answered(&again), "{}", again.stderr);
    assert!(again.stderr.contains("hello from p"), "{}", again.stderr);
}

#[test]
fn a_build_reading_packages_of_generated_repositories_is_answered_too() {
    // @platforms is part of ocib's prelude: its packages are the same while the binary is.
    let ws = workspace(&[
        ("MODULE.bazel", ""),
        (
            "p/BUILD",
            "config_setting(name = \"linux\", constraint_values = [\"@platforms//os:linux\"])\n\
             genrule(name = \"g\", outs = [\"g.txt\"], cmd = select({\":linux\": \"echo linux > $@\", \"//conditions:default\": \"echo other > $@\"}))\n",
        ),
    ]);
    let cache = tempfile::tempdir().unwrap();
    std::thread::sleep(Duration::from_millis(2100));
    build(ws.path(), cache.path(), &["//p:g"], &[]);
    assert_eq!(std::fs::read_to_string(ws.path().join("ocib-bin/p/g.txt")).unwrap(), "linux\n");
    let again = build(ws.path(), cache.path(), &["//p:g"], &[]);
    assert!(answered(&again), "{}", again.stderr);
}
