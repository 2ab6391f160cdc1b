//! The floor plan ARCHITECTURE.md promises, checked: imports between top-level modules of src/
//! point one way (down the declared layer order, so there is no cycle), rule sets do not import
//! each other in a cycle, and analysis does not need a Go toolchain (`cquery` runs without one).

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Top-level modules of src/, lowest first. A module may import only modules before it.
/// Keep in step with the table in ARCHITECTURE.md.
const LAYERS: &[&str] = &["graph", "stamp", "exec", "oci", "workspace", "load", "analysis", "rules", "query", "cli"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path segments a file belongs to, relative to src/ (`rules/go/actions.rs` →
/// ["rules", "go", "actions"]).
fn segments(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).expect("under src");
    let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned()).collect();
    if parts.last().is_some_and(|p| p == "mod") {
        parts.pop();
    }
    parts
}

/// Every `crate::a::b` path a file mentions (in `use` lines and inline), as segment lists;
/// `crate::{a, b::c}` groups are expanded one level. Comments are skipped.
fn crate_paths(text: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            let before = &rest[..at];
            rest = &rest[at + "crate::".len()..];
            // `ocib::crate::` or `my_crate::` are not this crate.
            if before.ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                for item in inner.split(',') {
                    out.push(path_of(item.trim()));
                }
            } else {
                out.push(path_of(rest));
            }
        }
    }
    out.retain(|p| !p.is_empty());
    out
}

fn path_of(text: &str) -> Vec<String> {
    let ident: String = text.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
    ident.split("::").filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

#[test]
fn imports_between_top_level_modules_point_down_the_layers() {
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let layer = |m: &str| LAYERS.iter().position(|l| *l == m);
    let mut violations = BTreeSet::new();
    for file in &files {
        let from = segments(&src, file);
        let Some(top) = from.first().cloned() else { continue };
        if top == "lib" || top == "main" {
            continue;
        }
        let from_layer = layer(&top).unwrap_or_else(|| panic!("{}: module '{top}' is not in LAYERS", file.display()));
        let text = std::fs::read_to_string(file).expect("read source");
        for path in crate_paths(&text) {
            let to = &path[0];
            if *to == top {
                continue;
            }
            let to_layer = layer(to).unwrap_or_else(|| panic!("{}: imports unknown module '{to}'", file.display()));
            if to_layer > from_layer {
                violations.insert(format!("{} ({top}) imports crate::{} ({to} is above {top})", file.display(), path.join("::")));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "imports against the layer order {LAYERS:?}:\n{}",
        violations.into_iter().collect::<Vec<_>>().join("\n")
    );
}

#[test]
fn rule_sets_do_not_import_each_other_in_a_cycle() {
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src.join("rules"), &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let from = segments(&src, file);
        let Some(set) = from.get(1).cloned() else { continue };
        let text = std::fs::read_to_string(file).expect("read source");
        for path in crate_paths(&text) {
            if path.len() >= 2 && path[0] == "rules" && path[1] != set && !path[1].chars().next().is_some_and(char::is_uppercase) {
                edges.entry(set.clone()).or_default().insert(path[1].clone());
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = stack.iter().position(|s| s == n) {
            let mut cycle = stack[i..].to_vec();
            cycle.push(n.to_owned());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_owned());
        for m in edges.get(n).into_iter().flatten() {
            if let Some(c) = visit(m, edges, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    for n in edges.keys() {
        let cycle = visit(n, &edges, &mut Vec::new(), &mut done);
        assert!(cycle.is_none(), "rule sets import each other in a cycle: {}", cycle.unwrap_or_default().join(" -> "));
    }
}

#[test]
fn exec_knows_no_rule_set() {
    let src = src_dir();
    let mut files = Vec::new();
    rust_files(&src.join("exec"), &mut files);
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read source");
        for path in crate_paths(&text) {
            assert_ne!(path[0], "rules", "{} imports crate::{}", file.display(), path.join("::"));
        }
    }
}

#[test]
fn the_layer_check_sees_imports() {
    // The checks above pass vacuously if the parser finds nothing: pin it on known shapes.
    assert_eq!(crate_paths("use crate::graph::label::Label;"), vec![vec!["graph", "label", "Label"]]);
    assert_eq!(crate_paths("use crate::{exec, graph::Rule};"), vec![vec!["exec"], vec!["graph", "Rule"]]);
    assert_eq!(crate_paths("let x = crate::exec::BIN_DIR; // crate::cli"), vec![vec!["exec", "BIN_DIR"]]);
    assert!(crate_paths("use other_crate::x;").is_empty());
}

/// `cquery` analyzes Go targets (their outputs) with no Go toolchain: `PATH` without `go` and
/// `OCIB_GO` unset. Before the toolchain was resolved lazily, analysis ran `go env` and failed
/// with "no Go toolchain found".
#[test]
fn cquery_needs_no_go_toolchain() {
    let ws = common::copy_workspace("images");
    let empty_path = tempfile::tempdir().expect("tempdir");
    let out = Command::new(env!("CARGO_BIN_EXE_ocib"))
        .args(["--nohome_rc", "--nosystem_rc", "cquery", "//cmd/worker:all", "--output=files"])
        .env("PATH", empty_path.path())
        .env_remove("OCIB_GO")
        .current_dir(ws.path())
        .output()
        .expect("run ocib");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "cquery failed without Go:\n{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().any(|l| l.starts_with("ocib-out/bin/cmd/worker/") && l.ends_with(".a")), "no Go archive in:\n{stdout}");
}
