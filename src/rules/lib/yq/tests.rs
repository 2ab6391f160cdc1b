//! Examples from mikefarah yq's documentation and acceptance tests (pkg/yqlib/*_test.go), with
//! the expected output in block style (yq keeps an input's flow style; ocib prints block style,
//! which reads back to the same data).

use super::*;

fn docs(files: &[&str]) -> Vec<Vec<Value>> {
    files.iter().map(|f| read_documents(f).unwrap()).collect()
}

fn yq(files: &[&str], expr: &str) -> String {
    run_yq(expr, &docs(files), &Options::parse(&[]).unwrap()).unwrap()
}

fn yq_args(files: &[&str], expr: &str, args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
    run_yq(expr, &docs(files), &Options::parse(&args).unwrap()).unwrap()
}

#[test]
fn paths_and_iteration() {
    assert_eq!(yq(&["a: {b: apple}"], ".a.b"), "apple\n");
    assert_eq!(yq(&["[a, b, c]"], ".[1]"), "b\n");
    assert_eq!(yq(&["[a, b, c]"], ".[-1]"), "c\n");
    assert_eq!(yq(&["{a: 1, b: [x, y]}"], ".[]"), "1\n- x\n- y\n");
    assert_eq!(yq(&["{a: {b: 1}}"], ".a | .b"), "1\n");
    assert_eq!(yq(&["{a: 1, b: 2}"], ".a, .b"), "1\n2\n");
    assert_eq!(yq(&["{\"a-b\": 1}"], ".\"a-b\""), "1\n");
    assert_eq!(yq(&["{a: 1}"], ".[\"a\"]"), "1\n");
    assert_eq!(yq(&["{a: 1}"], ".x.y"), "null\n");
}

#[test]
fn multiply_merges() {
    // operator_multiply_test.go "Merge objects together, returning merged result only".
    assert_eq!(
        yq(&["{a: {field: me, fieldA: cat}, b: {field: {g: wizz}, fieldB: dog}}"], ".a * .b"),
        "field:\n  g: wizz\nfieldA: cat\nfieldB: dog\n"
    );
    // "Merge arrays": replaced without a flag.
    assert_eq!(yq(&["{a: [1,2,3], b: [3,4,5]}"], ". * {\"a\":.b}"), "a:\n  - 3\n  - 4\n  - 5\nb:\n  - 3\n  - 4\n  - 5\n");
    assert_eq!(yq(&["{a: [1], b: [2]}"], ".a *+ .b"), "- 1\n- 2\n");
    assert_eq!(yq(&["{a: {thing: one, cat: frog}, b: {missing: two, thing: two}}"], ".a *? .b"), "thing: two\ncat: frog\n");
    assert_eq!(yq(&["{a: {thing: one, cat: frog}, b: {missing: two, thing: two}}"], ".a *n .b"), "thing: one\ncat: frog\nmissing: two\n");
    assert_eq!(yq(&["{a: [{thing: one}], b: [{missing: two, thing: two}]}"], ".a *?d .b"), "- thing: two\n");
    assert_eq!(yq(&["{a: [{thing: one}], b: [{missing: two, thing: two}]}"], ".a *nd .b"), "- thing: one\n  missing: two\n");
    assert_eq!(
        yq(&["{a: {array: [1, 2, animal: dog], value: coconut}, b: {array: [3, 4, animal: cat], value: banana}}"], ".a *+ .b"),
        "array:\n  - 1\n  - 2\n  - animal: dog\n  - 3\n  - 4\n  - animal: cat\nvalue: banana\n"
    );
    assert_eq!(yq(&["{a: {thing: [1,2]}, b: {thing: [3,4], another: [1]}}"], ".a *?+ .b"), "thing:\n  - 1\n  - 2\n  - 3\n  - 4\n");
    assert_eq!(
        yq(&["{a: [{name: fred, age: 12}, {name: bob, age: 32}], b: [{name: fred, age: 34}]}"], ".a *d .b"),
        "- name: fred\n  age: 34\n- name: bob\n  age: 32\n"
    );
    // Two documents: `select(fi == 0) * select(fi == 1)` and the cross product of `.a * .b`.
    assert_eq!(yq(&["{a: 2}", "{b: 10}"], "select(fi == 0) * select(fi == 1)"), "a: 2\nb: 10\n");
    assert_eq!(yq(&["{a: 2, b: 5}", "{a: 3, b: 10}"], ".a * .b"), "10\n20\n---\n15\n30\n");
    assert_eq!(yq(&["a: 3\nb: 4"], ".a *= .b"), "a: 12\nb: 4\n");
    assert_eq!(yq(&["{}"], "3 * 4.5"), "13.5\n");
}

#[test]
fn eval_all_reduce_merge() {
    // The merge idiom from yq's docs ("Merging all files"), as base-image macros use it.
    let template = "contents:\n  repositories:\n    - https://packages.wolfi.dev/os\n  packages:\n    - ca-certificates-bundle\n    - tzdata\naccounts:\n  run-as: sourcegraph\nentrypoint:\n  command: /sbin/tini\n";
    let service = "contents:\n  packages:\n    - git\naccounts:\n  run-as: root\n";
    assert_eq!(
        yq(&[template, service], ". as $item ireduce ({}; . *+ $item)"),
        "contents:\n  repositories:\n    - https://packages.wolfi.dev/os\n  packages:\n    - ca-certificates-bundle\n    - tzdata\n    - git\naccounts:\n  run-as: root\nentrypoint:\n  command: /sbin/tini\n"
    );
    assert_eq!(yq(&["a: 1", "b: 2"], ". as $item ireduce ({}; . * $item)"), "a: 1\nb: 2\n");
    assert_eq!(yq(&["[1, 2, 3]"], "reduce .[] as $x (0; . + $x)"), "6\n");
    assert_eq!(yq(&["[1, 2, 3]"], ".[] as $x ireduce (0; . + $x)"), "6\n");
}

#[test]
fn add_delete_select() {
    assert_eq!(yq(&["{a: [1, 2], b: [3]}"], ".a + .b"), "- 1\n- 2\n- 3\n");
    assert_eq!(yq(&["{a: cat, b: meow}"], ".a + .b"), "catmeow\n");
    assert_eq!(yq(&["{a: [1]}"], ".a += [2]"), "a:\n  - 1\n  - 2\n");
    assert_eq!(yq(&["{a: cat, b: dog}"], "del(.b)"), "a: cat\n");
    assert_eq!(yq(&["[1, 2, 3]"], "del(.[1])"), "- 1\n- 3\n");
    assert_eq!(yq(&["{a: {b: 1, c: 2}, d: 3}"], "del(.a.c, .d)"), "a:\n  b: 1\n");
    assert_eq!(yq(&["[{a: cat}, {a: dog}, {a: frog}]"], "del(.[] | select(.a == \"dog\"))"), "- a: cat\n- a: frog\n");
    assert_eq!(yq(&["[cat, goat, dog]"], ".[] | select(. == \"goat\" or . == \"dog\")"), "goat\ndog\n");
    assert_eq!(yq(&["[1, 5, 3]"], "map(select(. >= 3))"), "- 5\n- 3\n");
    assert_eq!(yq(&["{a: 1}"], "del(.)"), "null\n");
}

#[test]
fn entries_and_assignment() {
    assert_eq!(yq(&["{a: 1, b: 2}"], "to_entries"), "- key: a\n  value: 1\n- key: b\n  value: 2\n");
    assert_eq!(yq(&["[{key: a, value: 1}]"], "from_entries"), "a: 1\n");
    assert_eq!(yq(&["{a: 1, b: 2}"], "with_entries(.key |= \"KEY_\" + .)"), "KEY_a: 1\nKEY_b: 2\n");
    assert_eq!(yq(&["{a: 1, b: 2}"], "with_entries(select(.value > 1))"), "b: 2\n");
    assert_eq!(yq(&["{a: {b: 1}}"], ".a.b = 5"), "a:\n  b: 5\n");
    assert_eq!(yq(&["{a: {b: 1}, c: 9}"], ".a.b = .c"), "a:\n  b: 9\nc: 9\n");
    assert_eq!(yq(&["{a: {b: 1}}"], ".a.b |= . + 1"), "a:\n  b: 2\n");
    assert_eq!(yq(&["{}"], ".x.y[1] = \"v\""), "x:\n  y:\n    - null\n    - v\n");
    assert_eq!(yq(&["{a: [1, 2]}"], ".a[] |= . * 10"), "a:\n  - 10\n  - 20\n");
}

#[test]
fn strings_and_comparisons() {
    assert_eq!(yq(&["{name: world, n: 3}"], "\"hello \\(.name) x\\(.n)\""), "hello world x3\n");
    assert_eq!(yq(&["{a: 1, b: 2}"], ".a < .b, .a == 1, .a != 1, .b >= 2"), "true\ntrue\nfalse\ntrue\n");
    assert_eq!(yq(&["{a: null}"], ".a // \"default\""), "default\n");
    assert_eq!(yq(&["{a: [b, a]}"], ".a | sort | join(\",\")"), "a,b\n");
    assert_eq!(yq(&["{a: 1}"], "{\"x\": .a, \"y\": [.a, 2]}"), "x: 1\ny:\n  - 1\n  - 2\n");
    assert_eq!(yq(&["{a: 1}"], "if .a == 1 then \"one\" elif .a == 2 then \"two\" else \"many\" end"), "one\n");
    assert_eq!(yq(&["{a: [1, 1, 2]}"], ".a | unique | length"), "2\n");
}

#[test]
fn output_formats() {
    assert_eq!(yq_args(&["{a: {b: [1, x]}}"], ".", &["-o=json"]), "{\n  \"a\": {\n    \"b\": [\n      1,\n      \"x\"\n    ]\n  }\n}\n");
    assert_eq!(yq_args(&["{a: [1]}"], ".", &["-o", "json", "-I=0"]), "{\"a\":[1]}\n");
    assert_eq!(yq_args(&["{a: x}"], ".a", &["-o=json"]), "\"x\"\n");
    assert_eq!(yq_args(&["{a: x}"], ".a", &["-o=json", "-r"]), "x\n");
    assert_eq!(yq_args(&["{a: {b: 1}}"], ".", &["-I=4", "-P"]), "a:\n    b: 1\n");
    assert_eq!(yq_args(&[], ".a = 1", &["-n"]), "a: 1\n");
    assert_eq!(yq(&["{\"a\": [1, {\"b\": true}]}"], "."), "a:\n  - 1\n  - b: true\n");
    assert_eq!(yq(&["a: 1\n---\na: 2\n"], ".a"), "1\n---\n2\n");
}

#[test]
fn errors_name_the_position() {
    let err = run_yq(".a | ", &docs(&["{}"]), &Options::parse(&[]).unwrap()).unwrap_err().to_string();
    assert!(err.contains("expression '.a | '"), "{err}");
    let err = parse::parse(".a ] .b").unwrap_err().to_string();
    assert!(err.contains("position 4"), "{err}");
    let err = parse::parse(".a | nosuchfn(1)").unwrap_err().to_string();
    assert!(err.contains("nosuchfn/1") && err.contains("position 6"), "{err}");
    assert!(Options::parse(&["--bogus".to_owned()]).is_err());
    let deep = format!("{}.{}", "(".repeat(500), ")".repeat(500));
    assert!(parse::parse(&deep).unwrap_err().to_string().contains("nested deeper"));
    assert!(run_yq(".[100000000000] = 1", &docs(&["[]"]), &Options::parse(&[]).unwrap()).is_err());
    assert!(run_yq("\"ab\" * 100000000000", &docs(&["{}"]), &Options::parse(&[]).unwrap()).is_err());
    assert!(Options::parse(&["-s".to_owned(), ".a".to_owned()]).is_err());
}

/// Debian's jq as an oracle for expressions that mean the same in jq and yq (JSON output).
#[test]
fn agrees_with_jq() {
    // The oracle is the check: without jq this test fails, CI or not (never "ok" unchecked).
    assert!(std::process::Command::new("jq").arg("--version").output().is_ok(), "jq is missing (scripts/setup.sh installs it)");
    let input = r#"{"a":{"b":[1,2,{"c":"x"}],"d":"y"},"e":[3,1,2],"f":{"g":1,"h":2}}"#;
    let cases = [
        ".a.b",
        ".a.b[2].c",
        ".e | sort",
        ".f | to_entries",
        ".f | with_entries(select(.value > 1))",
        "del(.a.b[0], .f)",
        ".a.b += [4]",
        ".f.g |= . + 10",
        "[.e[] | select(. > 1)]",
        "\"\\(.a.d)-\\(.f.g)\"",
        ".f + {\"i\": 3}",
        "reduce .e[] as $x (0; . + $x)",
        "{k: .a.d, l: [.e[0], .f.h]}",
        ".e | map(. * 2) | add",
        "[.e[] as $x | $x + 1]",
        ".f | keys",
        ".a | has(\"d\")",
        "if .f.g == 1 then \"one\" else \"other\" end",
    ];
    for expr in cases {
        let ours = run_yq(expr, &docs(&[input]), &Options::parse(&["-o=json".to_owned(), "-I=0".to_owned()]).unwrap()).unwrap();
        let jq = std::process::Command::new("jq")
            .args(["-c", expr])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                use std::io::Write;
                child.stdin.take().map(|mut s| s.write_all(input.as_bytes()));
                child.wait_with_output()
            })
            .unwrap();
        assert_eq!(ours, String::from_utf8_lossy(&jq.stdout), "expression {expr}");
    }
}

/// Every function the parser accepts is one the evaluator implements.
#[test]
fn every_parsed_function_is_implemented() {
    for (name, arity) in parse::FUNCTIONS {
        let args = vec!["1"; *arity].join("; ");
        let expr = if *arity == 0 { name.to_string() } else { format!("{name}({args})") };
        let parsed = parse::parse(&expr).unwrap();
        let context = [eval::Node { value: serde_json::json!([1]), file: 0, doc: 0 }];
        if let Err(e) = eval::eval(&parsed, &context) {
            assert!(!e.to_string().contains("unknown or unsupported function"), "{expr}: {e}");
        }
    }
}
