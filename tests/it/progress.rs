//! What a user sees while and after building (issue 16): throttled progress off a terminal,
//! a live status with running actions and timers on one, Bazel's closing lines
//! (`--show_result`, `INFO: Elapsed time`, the action summary), `--subcommands`,
//! `--verbose_failures`, and Build Event Protocol files whose structure matches Bazel 4.2.3's
//! (`testdata/bep/*.bazel-4.2.3.shape.json`, recorded by `testdata/bep/record-golden.sh`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde_json::{Value, json};

use crate::common::{copy_workspace, ocib, workspace};

/// Genrules that sleep, so a build lasts a few seconds: `s0` … `s{n-1}`, `s{i}` sleeping
/// `secs` seconds.
fn sleepy(n: usize, secs: f64) -> tempfile::TempDir {
    let rules: String =
        (0..n).map(|i| format!("genrule(name = \"s{i}\", outs = [\"s{i}.txt\"], cmd = \"sleep {secs}; echo {i} > $@\")\n")).collect();
    workspace(&[("MODULE.bazel", ""), ("p/BUILD", &rules)])
}

fn cache_flag(dir: &tempfile::TempDir) -> String {
    format!("--disk_cache={}", dir.path().display())
}

/// Off a terminal (CI logs), progress is at most one line a second, plus the summary; the
/// lines name a running action and its elapsed seconds.
#[test]
fn non_terminal_progress_is_at_most_one_line_per_second() {
    let ws = sleepy(8, 0.7);
    let cache = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let out = ocib(ws.path(), &["build", &cache_flag(&cache), "--jobs=2", "//p:all"]);
    let elapsed = started.elapsed().as_secs_f64();
    assert_eq!(out.code, 0, "{}", out.stderr);
    let progress: Vec<&str> = out.stderr.lines().filter(|l| l.starts_with('[')).collect();
    assert!(!progress.is_empty(), "some progress is shown:\n{}", out.stderr);
    assert!(
        progress.len() as f64 <= elapsed.ceil() + 1.0,
        "{} progress lines in {elapsed:.1}s (at most one a second):\n{}",
        progress.len(),
        out.stderr
    );
    let line = regex::Regex::new(r"^\[\d+ / 8\] Executing genrule //p:s\d; \d+s( \.\.\. \(\d actions running\))?$").unwrap();
    for l in &progress {
        assert!(line.is_match(l), "Bazel's no-terminal progress line: {l}");
    }
    // The summary: elapsed time and critical path, the action counts, the result.
    let summary = regex::Regex::new(r"(?m)^INFO: Elapsed time: \d+\.\d{3}s, Critical Path: (\d+\.\d{2})s$").unwrap();
    let critical: f64 = summary.captures(&out.stderr).unwrap_or_else(|| panic!("no elapsed time in:\n{}", out.stderr))[1].parse().unwrap();
    assert!(critical >= 0.7, "the critical path is at least one sleeping action: {critical}");
    assert!(out.stderr.contains("INFO: 8 processes: 8 local.\n"), "{}", out.stderr);
    assert!(out.stderr.ends_with("INFO: Build completed successfully, 8 total actions\n"), "{}", out.stderr);

    // No-op: every action a cache hit, and still the summary.
    let again = ocib(ws.path(), &["build", &cache_flag(&cache), "//p:all"]);
    assert!(again.stderr.contains("INFO: 8 processes: 8 disk cache hit.\n"), "{}", again.stderr);
}

/// Off a terminal, a long action alone (the Go standard library's compile, here a genrule
/// with a `message`) still gets a line while it runs, saying what it does and for how long.
#[test]
fn non_terminal_progress_names_a_long_action_while_it_runs() {
    let ws = workspace(&[
        ("MODULE.bazel", ""),
        ("p/BUILD", "genrule(name = \"long\", outs = [\"long.txt\"], cmd = \"sleep 11.5; echo > $@\", message = \"Crunching numbers\")\n"),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let out = ocib(ws.path(), &["build", &cache_flag(&cache), "//p:long"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let heartbeat = regex::Regex::new(r"(?m)^\[0 / 1\] Crunching numbers //p:long; 1[01]s$").unwrap();
    assert!(heartbeat.is_match(&out.stderr), "a line after 10 s of silence:\n{}", out.stderr);
}

/// On a terminal, the live status lists the running actions with their elapsed seconds and
/// shows `[done / total]`, a bar and throughput (recorded through `script`, as a user sees it).
#[test]
fn terminal_progress_shows_running_actions_with_timers() {
    let ws = sleepy(3, 2.5);
    let cache = tempfile::tempdir().unwrap();
    let ocib_bin = env!("CARGO_BIN_EXE_ocib");
    let command = format!("{ocib_bin} --nohome_rc --nosystem_rc build {} --jobs=3 //p:all", cache_flag(&cache));
    let out = std::process::Command::new("script")
        .args(["-q", "-e", "-c", &command, "/dev/null"])
        .current_dir(ws.path())
        .env("COLUMNS", "120")
        .env("LINES", "40")
        // A user's terminal has a TERM (CI and containers may have none: see below).
        .env("TERM", "xterm")
        .output()
        .expect("`script` (util-linux) runs: it gives ocib a terminal");
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    let running = regex::Regex::new(r"running.*\s{4}Executing genrule //p:s\d; [12]s").unwrap();
    assert!(running.is_match(&screen), "running actions with timers:\n{screen}");
    assert!(screen.contains("3 actions running"), "{screen}");
    assert!(screen.contains("[0 / 3]"), "{screen}");
    assert!(screen.contains("actions/s"), "throughput: {screen}");
    assert!(screen.contains("INFO: Build completed successfully, 3 total actions"), "{screen}");
}

/// A terminal without `TERM` (or `TERM=dumb`, as in a container or some CI runners) cannot
/// draw the live status: progress falls back to the plain lines instead of vanishing.
#[test]
fn terminal_without_term_gets_plain_progress_lines() {
    for term in [None, Some("dumb")] {
        let ws = sleepy(2, 1.5);
        let cache = tempfile::tempdir().unwrap();
        let command = format!("{} --nohome_rc --nosystem_rc build {} --jobs=2 //p:all", env!("CARGO_BIN_EXE_ocib"), cache_flag(&cache));
        let mut cmd = std::process::Command::new("script");
        cmd.args(["-q", "-e", "-c", &command, "/dev/null"]).current_dir(ws.path()).env_remove("TERM");
        if let Some(t) = term {
            cmd.env("TERM", t);
        }
        let out = cmd.output().expect("`script` (util-linux) runs: it gives ocib a terminal");
        let screen = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{screen}");
        assert!(screen.contains("Executing genrule //p:s"), "TERM={term:?}: progress lines:\n{screen}");
        assert!(!screen.contains("actions running"), "TERM={term:?}: no live status:\n{screen}");
    }
}

/// `--show_result=N` (Bazel's default 1): outputs are listed for at most N targets.
#[test]
fn show_result_lists_outputs_of_at_most_n_targets() {
    let ws = sleepy(2, 0.0);
    let cache = tempfile::tempdir().unwrap();
    let out = ocib(ws.path(), &["build", &cache_flag(&cache), "//p:all"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(!out.stderr.contains("up-to-date:"), "two targets, --show_result=1: no list:\n{}", out.stderr);
    assert!(out.stderr.contains("INFO: 2 targets up-to-date (--show_result=1"), "{}", out.stderr);
    let out = ocib(ws.path(), &["build", &cache_flag(&cache), "--show_result=2", "//p:all"]);
    for i in 0..2 {
        assert!(out.stderr.contains(&format!("Target //p:s{i} up-to-date:\n  ocib-bin/p/s{i}.txt\n")), "{}", out.stderr);
    }
    let one = ocib(ws.path(), &["build", &cache_flag(&cache), "//p:s0"]);
    assert!(one.stderr.contains("Target //p:s0 up-to-date:\n  ocib-bin/p/s0.txt\n"), "{}", one.stderr);
}

/// `--subcommands` prints each spawned command as Bazel does; `--verbose_failures` adds the
/// failing command's directory and environment to the error.
#[test]
fn subcommands_and_verbose_failures_show_command_lines() {
    let ws = workspace(&[
        ("MODULE.bazel", ""),
        (
            "p/BUILD",
            "genrule(name = \"ok\", outs = [\"ok.txt\"], cmd = \"echo fine > $@\")\ngenrule(name = \"bad\", outs = [\"bad.txt\"], cmd = \"exit 3\")\n",
        ),
    ]);
    let cache = tempfile::tempdir().unwrap();
    let out = ocib(ws.path(), &["build", &cache_flag(&cache), "--subcommands", "//p:ok"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(out.stderr.contains("SUBCOMMAND: # //p:ok [action 'Executing genrule //p:ok']\n(cd "), "{}", out.stderr);
    assert!(out.stderr.contains("  exec env - \\\n    PATH="), "{}", out.stderr);
    assert!(out.stderr.contains("echo fine > ocib-out/bin/p/ok.txt"), "{}", out.stderr);
    let quiet = ocib(ws.path(), &["build", &cache_flag(&cache), "--nosubcommands", "//p:ok"]);
    assert!(!quiet.stderr.contains("SUBCOMMAND"), "{}", quiet.stderr);

    let plain = ocib(ws.path(), &["build", &cache_flag(&cache), "//p:bad"]);
    assert_eq!(plain.code, 1, "{}", plain.stderr);
    assert!(plain.stderr.contains("Genrule //p:bad") && plain.stderr.contains("exit code 3"), "{}", plain.stderr);
    assert!(!plain.stderr.contains("exec env -"), "{}", plain.stderr);
    let verbose = ocib(ws.path(), &["build", &cache_flag(&cache), "--verbose_failures", "//p:bad"]);
    assert_eq!(verbose.code, 1, "{}", verbose.stderr);
    assert!(verbose.stderr.contains("exit code 3") && verbose.stderr.contains("  exec env - \\\n"), "{}", verbose.stderr);
}

/// The shape of one BEP event, as `testdata/bep/shape.jq` reduces Bazel's: ids with
/// configuration hashes replaced, the ids announced, the payload's keys.
#[derive(Debug, Clone, PartialEq)]
struct Shape {
    id: Value,
    children: Vec<Value>,
    payload: Value,
    last: bool,
}

/// Configuration ids are hashes of each tool's options: compared as "CONFIG".
fn normalize_id(id: &Value) -> Value {
    match id {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("configuration", Value::Object(c)) if c.contains_key("id") => (k.clone(), json!({"id": "CONFIG"})),
                    _ => (k.clone(), normalize_id(v)),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn skeleton(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), skeleton(v))).collect()),
        // An array as one element: for objects, the union of their elements' keys.
        Value::Array(items) => match items.first() {
            None => json!([]),
            Some(Value::Object(_)) => {
                let mut merged = serde_json::Map::new();
                for item in items {
                    if let Value::Object(fields) = skeleton(item) {
                        merged.extend(fields);
                    }
                }
                json!([merged])
            }
            Some(first) => json!([skeleton(first)]),
        },
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("boolean"),
        Value::Null => json!("null"),
    }
}

fn shape(event: &Value) -> Shape {
    let mut payload = event.clone();
    if let Value::Object(map) = &mut payload {
        for key in ["id", "children", "lastMessage"] {
            map.remove(key);
        }
    }
    Shape {
        id: normalize_id(&event["id"]),
        children: event["children"].as_array().into_iter().flatten().map(normalize_id).collect(),
        payload: skeleton(&payload),
        last: event["lastMessage"].as_bool().unwrap_or(false),
    }
}

fn golden(name: &str) -> Vec<Shape> {
    let path = crate::common::testdata("bep").join(format!("{name}.bazel-4.2.3.shape.json"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).expect("golden line is JSON");
            Shape {
                id: v["id"].clone(),
                children: v["children"].as_array().cloned().unwrap_or_default(),
                payload: v["payload"].clone(),
                last: v["last"] == true,
            }
        })
        .collect()
}

/// The kind of an event: its id's one key.
fn kind(id: &Value) -> String {
    id.as_object().and_then(|m| m.keys().next().cloned()).unwrap_or_default()
}

/// Events Bazel posts right after `started` in no fixed order (its command-line records
/// come from other threads: the build and test goldens differ), and `buildMetrics`, which
/// Bazel announces from `buildFinished` or from a later `progress` event: their place in the
/// order and who announces them are not compared; that they come before `pattern` (after
/// `buildFinished`) is.
const UNORDERED_START: &[&str] = &["buildMetadata", "unstructuredCommandLine", "structuredCommandLine", "optionsParsed"];
const UNORDERED_END: &[&str] = &["buildMetrics"];

/// Payload fields Bazel has that ocib leaves out, as paths into the payload (arrays are
/// stepped through): Bazel's `command.profile.gz` log is a file (`uri`); ocib writes no
/// profile; ocib's options carry no metadata tags (Bazel's `EXPERIMENTAL`,
/// `INCOMPATIBLE_CHANGE`…).
const PAYLOAD_OMISSIONS: &[&str] = &["buildToolLogs.log.uri", "structuredCommandLine.sections.optionList.option.metadataTags"];

/// Removes the field at `path` (dot-separated) from a payload skeleton.
fn remove_path(value: &mut Value, path: &[&str]) {
    match (value, path) {
        (Value::Array(items), _) => items.iter_mut().for_each(|i| remove_path(i, path)),
        (Value::Object(map), [last]) => {
            map.remove(*last);
        }
        (Value::Object(map), [first, rest @ ..]) => {
            if let Some(v) = map.get_mut(*first) {
                remove_path(v, rest);
            }
        }
        _ => {}
    }
}

/// The stream's own rules, as BEP consumers rely on them: starts with `started`, every id
/// once, every announced event posted (and announced before it is posted), one last message.
fn assert_well_formed(events: &[Shape], what: &str) {
    assert_eq!(kind(&events[0].id), "started", "{what}: first event");
    assert!(events.last().unwrap().last, "{what}: the last event says lastMessage");
    assert_eq!(events.iter().filter(|e| e.last).count(), 1, "{what}: one last message");
    let mut announced: BTreeSet<String> = BTreeSet::new();
    let mut posted: BTreeSet<String> = BTreeSet::new();
    for (i, e) in events.iter().enumerate() {
        let id = e.id.to_string();
        assert!(posted.insert(id.clone()), "{what}: {id} posted twice");
        assert!(i == 0 || announced.contains(&id), "{what}: {id} posted but never announced");
        announced.extend(e.children.iter().map(Value::to_string));
    }
    let missing: Vec<&String> = announced.difference(&posted).collect();
    assert!(missing.is_empty(), "{what}: announced, never posted: {missing:?}");
}

/// Compares ocib's stream for `command pattern` on testdata/bep/workspace with Bazel's.
fn assert_same_shape_as_bazel(command: &str, pattern: &str, expected_code: i32) {
    let ws = copy_workspace("bep/workspace");
    let cache = tempfile::tempdir().unwrap();
    let json_file = ws.path().join("bep.json");
    let text_file = ws.path().join("bep.txt");
    let out = ocib(
        ws.path(),
        &[
            command,
            &cache_flag(&cache),
            &format!("--build_event_json_file={}", json_file.display()),
            &format!("--build_event_text_file={}", text_file.display()),
            pattern,
        ],
    );
    assert_eq!(out.code, expected_code, "{}", out.stderr);
    let ours: Vec<Shape> = std::fs::read_to_string(&json_file)
        .unwrap()
        .lines()
        .map(|l| shape(&serde_json::from_str(l).expect("one JSON event a line")))
        .collect();
    let bazel = golden(command);
    assert_well_formed(&bazel, "bazel");
    assert_well_formed(&ours, "ocib");

    // The same events, by id, of every kind ocib posts (progress ids count differently: each
    // tool posts as many as it has output to report).
    let comparable = |events: &[Shape]| -> BTreeMap<String, Shape> {
        events.iter().filter(|e| kind(&e.id) != "progress").map(|e| (e.id.to_string(), e.clone())).collect()
    };
    let (ours_by_id, bazel_by_id) = (comparable(&ours), comparable(&bazel));
    assert_eq!(ours_by_id.keys().collect::<Vec<_>>(), bazel_by_id.keys().collect::<Vec<_>>(), "the same event ids");
    for (id, expected) in &bazel_by_id {
        let got = &ours_by_id[id];
        let children = |s: &Shape| -> BTreeSet<String> {
            s.children
                .iter()
                .filter(|c| !UNORDERED_END.contains(&kind(c).as_str()) && kind(c) != "progress")
                .map(Value::to_string)
                .collect()
        };
        assert_eq!(children(got), children(expected), "children of {id}");
        let mut expected_payload = expected.payload.clone();
        for omission in PAYLOAD_OMISSIONS {
            remove_path(&mut expected_payload, &omission.split('.').collect::<Vec<_>>());
        }
        // Field order is not part of the protocol: compare as sorted maps.
        fn sorted(v: &Value) -> String {
            match v {
                Value::Object(map) => {
                    let fields: BTreeMap<&String, String> = map.iter().map(|(k, v)| (k, sorted(v))).collect();
                    format!("{{{}}}", fields.iter().map(|(k, v)| format!("{k:?}:{v}")).collect::<Vec<_>>().join(","))
                }
                Value::Array(items) => format!("[{}]", items.iter().map(sorted).collect::<Vec<_>>().join(",")),
                other => other.to_string(),
            }
        }
        assert_eq!(sorted(&got.payload), sorted(&expected_payload), "payload of {id}:\nocib  {}\nbazel {}", got.payload, expected_payload);
    }
    // The order consumers rely on: pattern before configured targets, completions after
    // them, test results after their target, buildFinished after everything else.
    let order = |events: &[Shape]| -> Vec<String> {
        let mut kinds: Vec<String> = events
            .iter()
            .map(|e| kind(&e.id))
            .filter(|k| k != "progress" && k != "namedSet")
            .filter(|k| !UNORDERED_START.contains(&k.as_str()) && !UNORDERED_END.contains(&k.as_str()))
            .collect();
        kinds.dedup();
        kinds
    };
    assert_eq!(order(&ours), order(&bazel), "event order");
    for events in [&ours, &bazel] {
        let at = |k: &str| events.iter().position(|e| kind(&e.id) == k).unwrap_or_else(|| panic!("no {k} event"));
        for k in UNORDERED_START {
            assert!(at(k) < at("pattern"), "{k} comes before pattern");
        }
        assert!(at("buildMetrics") > at("buildFinished"), "buildMetrics comes after buildFinished");
    }

    // The text file is the same stream in protobuf text format.
    let text = std::fs::read_to_string(&text_file).unwrap();
    assert_eq!(text.matches("\nevent {\n").count() + usize::from(text.starts_with("event {\n")), ours.len(), "{text}");
    assert!(text.contains("build_finished {") && text.contains("last_message: true"), "{text}");
}

#[test]
fn build_event_stream_of_a_build_has_bazels_structure() {
    assert_same_shape_as_bazel("build", "//...", 0);
}

#[test]
fn build_event_stream_of_a_test_has_bazels_structure() {
    assert_same_shape_as_bazel("test", "//:hello_test", 0);
}

/// A stream also ends properly when the build fails before anything ran: `buildFinished`
/// with the exit code, what was announced but never reached posted as `aborted`.
#[test]
fn build_event_stream_of_a_failed_analysis_is_complete() {
    let ws = workspace(&[("MODULE.bazel", ""), ("p/BUILD", "filegroup(name = \"a\", srcs = [\"//q:missing\"])\n"), ("q/BUILD", "")]);
    let json_file = ws.path().join("bep.json");
    let out = ocib(ws.path(), &["build", &format!("--build_event_json_file={}", json_file.display()), "//p:a"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let events: Vec<Value> = std::fs::read_to_string(&json_file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_well_formed(&events.iter().map(shape).collect::<Vec<_>>(), "ocib");
    let finished = events.iter().find(|e| e["id"].get("buildFinished").is_some()).expect("buildFinished");
    assert_eq!(finished["finished"]["exitCode"], json!({"name": "BUILD_FAILURE", "code": 1}));
    assert!(events.iter().any(|e| e["id"]["targetConfigured"]["label"] == "//p:a" && e.get("aborted").is_some()), "{events:?}");
}
