//! `--profile=FILE` and `ocib analyze-profile`: the profile is Chrome trace-event JSON in
//! Bazel's shape (phases, one event per action with its mnemonic, target and thread, the
//! critical path), and analyze-profile summarises it.

use crate::common::{ocib, workspace};

/// Three genrules in a chain (a → b → c) and one beside them.
fn chain_workspace() -> tempfile::TempDir {
    workspace(&[
        ("WORKSPACE", ""),
        (
            "p/BUILD",
            r#"genrule(name = "a", outs = ["a.txt"], cmd = "echo a > $@")
genrule(name = "b", srcs = [":a"], outs = ["b.txt"], cmd = "cat $< > $@; echo b >> $@")
genrule(name = "c", srcs = [":b"], outs = ["c.txt"], cmd = "cat $< > $@; echo c >> $@")
genrule(name = "side", outs = ["side.txt"], cmd = "echo side > $@")
"#,
        ),
    ])
}

fn load(path: &std::path::Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("the profile was written");
    serde_json::from_str(&text).expect("the profile is JSON")
}

fn events<'a>(profile: &'a serde_json::Value, cat: &str) -> Vec<&'a serde_json::Value> {
    profile["traceEvents"].as_array().expect("traceEvents").iter().filter(|e| e["cat"] == cat).collect()
}

#[test]
fn profile_has_phases_actions_with_targets_and_the_critical_path() {
    let ws = chain_workspace();
    let cache = tempfile::tempdir().unwrap();
    let disk_cache = format!("--disk_cache={}", cache.path().display());
    let out = ocib(ws.path(), &["build", &disk_cache, "--profile=prof.json", "//p:c", "//p:side"]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let profile = load(&ws.path().join("prof.json"));

    let phases: Vec<&str> = events(&profile, "build phase marker").iter().map(|e| e["name"].as_str().unwrap()).collect();
    assert_eq!(phases, ["load", "analysis", "execution"], "{profile:#}");
    for e in events(&profile, "build phase marker") {
        assert_eq!(e["ph"], "X");
        assert!(e["dur"].is_u64(), "{e}");
    }

    let actions = events(&profile, "action processing");
    let mut targets: Vec<&str> = actions.iter().map(|e| e["args"]["target"].as_str().unwrap()).collect();
    targets.sort();
    assert_eq!(targets, ["//p:a", "//p:b", "//p:c", "//p:side"], "one event per executed action: {profile:#}");
    for e in &actions {
        assert_eq!(e["ph"], "X", "{e}");
        assert_eq!(e["args"]["mnemonic"], "Genrule", "{e}");
        assert_eq!(e["args"]["cache_hit"], false, "{e}");
        let tid = e["tid"].as_u64().expect("thread id");
        assert!(tid >= 1, "actions run on worker threads, not the command's: {e}");
        let named = profile["traceEvents"].as_array().unwrap().iter().any(|m| m["ph"] == "M" && m["tid"] == tid);
        assert!(named, "thread {tid} has a name: {profile:#}");
    }

    // The critical path is the chain a → b → c, in order.
    let critical: Vec<&str> = events(&profile, "critical path component").iter().map(|e| e["args"]["target"].as_str().unwrap()).collect();
    assert_eq!(critical, ["//p:a", "//p:b", "//p:c"], "{profile:#}");

    let analyzed = ocib(ws.path(), &["analyze-profile", "prof.json"]);
    assert_eq!(analyzed.code, 0, "{}", analyzed.stderr);
    for want in [
        "=== PHASE SUMMARY INFORMATION ===",
        "Total load",
        "Total analysis",
        "Total execution",
        "Critical path (",
        "Slowest actions (of 4 actions: 4 executed, 0 cache hits)",
    ] {
        assert!(analyzed.stdout.contains(want), "{want} missing:\n{}", analyzed.stdout);
    }
    assert!(analyzed.stdout.contains("//p:side"), "{}", analyzed.stdout);

    // A no-op rebuild: every action is a cache hit, still one event each.
    let again = ocib(ws.path(), &["build", &disk_cache, "--profile=again.json", "//p:c", "//p:side"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let profile = load(&ws.path().join("again.json"));
    let actions = events(&profile, "action processing");
    assert_eq!(actions.len(), 4, "{profile:#}");
    assert!(actions.iter().all(|e| e["args"]["cache_hit"] == true), "{profile:#}");
}

#[test]
fn analyze_profile_rejects_a_file_that_is_not_a_profile() {
    let ws = workspace(&[("not.json", "{\"traceEvents\": 3}")]);
    let out = ocib(ws.path(), &["analyze-profile", "not.json"]);
    assert_eq!(out.code, 2, "{}", out.stderr);
    assert!(out.stderr.contains("not.json:1:"), "{}", out.stderr);
    let missing = ocib(ws.path(), &["analyze-profile", "missing.json"]);
    assert_eq!(missing.code, 2, "{}", missing.stderr);
}
