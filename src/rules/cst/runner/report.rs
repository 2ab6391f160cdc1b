//! CST's three output formats (`pkg/output/output.go`, `cmd/.../test/util.go` ProcessResults):
//! text (per-test `=== RUN` blocks, then the RESULTS banner and PASS/FAIL), json (Go
//! `encoding/json` of the summary) and junit (Go `encoding/xml`). Text is CST's `--no-color` form.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::TestResult;
use crate::rules::junit;

/// CST's default banner length (used when no test-file banner was printed).
const DEFAULT_BANNER_LENGTH: usize = 27;

pub const DEFAULT_JUNIT_SUITE_NAME: &str = "container-structure-test.test";

/// True when at least one test ran and none failed (CST exits non-zero, "FAIL", otherwise).
pub fn all_passed(results: &[TestResult]) -> bool {
    !results.is_empty() && results.iter().all(|r| r.pass)
}

/// The per-test text block (`OutputResult`).
pub fn format_result(r: &TestResult) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "=== RUN: {}", r.name);
    out.push_str(if r.pass { "--- PASS\n" } else { "--- FAIL\n" });
    let _ = writeln!(out, "duration: {}", go_duration(r.duration));
    if !r.stdout.is_empty() {
        let _ = writeln!(out, "stdout: {}", r.stdout);
    }
    if !r.stderr.is_empty() {
        let _ = writeln!(out, "stderr: {}", r.stderr);
    }
    for e in &r.errors {
        let _ = writeln!(out, "Error: {e}");
    }
    out
}

/// The banner CST prints before each config file's results in text mode.
pub fn text_banner(config_file: &Path) -> String {
    let base = config_file.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let file_str = format!("====== Test file: {base} ======");
    let line = "=".repeat(file_str.len());
    format!("\n{line}\n{file_str}\n{line}\n")
}

/// Text output exactly as CST prints it for several `--config` files: each file's banner and
/// results, then the summary, whose width follows the last banner.
pub fn format_text_files(files: &[(&Path, &[TestResult])]) -> String {
    let mut out = String::new();
    let mut banner_length = DEFAULT_BANNER_LENGTH;
    let mut all = Vec::new();
    for (path, results) in files {
        let banner = text_banner(path);
        banner_length = banner.lines().nth(2).map(str::len).unwrap_or(DEFAULT_BANNER_LENGTH);
        out.push_str(&banner);
        for r in *results {
            out.push_str(&format_result(r));
            all.push(r.clone());
        }
    }
    out.push_str(&summary_text(&all, banner_length));
    out
}

fn summary_text(results: &[TestResult], mut banner_length: usize) -> String {
    if banner_length.is_multiple_of(2) {
        banner_length += 1;
    }
    if results.is_empty() {
        return "No tests run! Check config file format.\n".to_owned();
    }
    let pass = results.iter().filter(|r| r.pass).count();
    let fail = results.len() - pass;
    let total: Duration = results.iter().map(|r| r.duration).sum();
    let half = "=".repeat((banner_length - 9) / 2);
    let line = "=".repeat(banner_length);
    let mut out = String::new();
    let _ = writeln!(out);
    let _ = writeln!(out, "{line}");
    let _ = writeln!(out, "{half} RESULTS {half}");
    let _ = writeln!(out, "{line}");
    let _ = writeln!(out, "Passes:      {pass}");
    let _ = writeln!(out, "Failures:    {fail}");
    let _ = writeln!(out, "Duration:    {}", go_duration(total));
    let _ = writeln!(out, "Total tests: {}", results.len());
    let _ = writeln!(out);
    out.push_str(if fail == 0 { "PASS\n" } else { "FAIL\n" });
    out
}

/// `{"Pass":n,"Fail":n,"Total":n,"Duration":ns,"Results":[...]}` + newline, as Go marshals it
/// (empty Stdout/Stderr/Errors omitted, `<`, `>`, `&` escaped as `\u003c` etc.).
pub fn format_json(results: &[TestResult]) -> String {
    use serde_json::{Map, Value, json};
    let pass = results.iter().filter(|r| r.pass).count();
    let total: Duration = results.iter().map(|r| r.duration).sum();
    let mut summary = Map::new();
    summary.insert("Pass".into(), json!(pass));
    summary.insert("Fail".into(), json!(results.len() - pass));
    summary.insert("Total".into(), json!(results.len()));
    summary.insert("Duration".into(), json!(nanos(total)));
    if !results.is_empty() {
        let items = results
            .iter()
            .map(|r| {
                let mut m = Map::new();
                m.insert("Name".into(), json!(r.name));
                m.insert("Pass".into(), json!(r.pass));
                if !r.stdout.is_empty() {
                    m.insert("Stdout".into(), json!(r.stdout));
                }
                if !r.stderr.is_empty() {
                    m.insert("Stderr".into(), json!(r.stderr));
                }
                if !r.errors.is_empty() {
                    m.insert("Errors".into(), json!(r.errors));
                }
                m.insert("Duration".into(), json!(nanos(r.duration)));
                Value::Object(m)
            })
            .collect();
        summary.insert("Results".into(), Value::Array(items));
    }
    let text = serde_json::to_string(&Value::Object(summary)).expect("JSON of plain values");
    // Go's encoding/json HTML-escapes; these characters only occur inside strings here.
    let mut out = String::with_capacity(text.len() + 1);
    for c in text.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out.push('\n');
    out
}

/// JUnit XML as CST writes it (one line, Go `encoding/xml`), suite name defaulting to
/// `container-structure-test.test` when empty; written by ocib's one JUnit writer.
pub fn format_junit(results: &[TestResult], suite_name: &str) -> String {
    let suite = if suite_name.is_empty() { DEFAULT_JUNIT_SUITE_NAME } else { suite_name };
    let cases: Vec<junit::Case> = results
        .iter()
        .map(|r| junit::Case { name: &r.name, duration: r.duration, failures: &r.errors, stdout: &r.stdout, stderr: &r.stderr })
        .collect();
    junit::write(suite, &cases)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Go `time.Duration.String()`: "0s", "850ns", "1.5µs", "12.345ms", "2.5s", "1m2.5s", "1h0m0s".
pub fn go_duration(d: Duration) -> String {
    let ns = nanos(d);
    if ns == 0 {
        return "0s".to_owned();
    }
    fn frac(v: u64, unit: u64) -> String {
        let int = v / unit;
        let rem = v % unit;
        if rem == 0 {
            return int.to_string();
        }
        let width = unit.ilog10() as usize;
        let f = format!("{rem:0width$}");
        format!("{int}.{}", f.trim_end_matches('0'))
    }
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    if ns < 1_000_000 {
        return format!("{}µs", frac(ns, 1_000));
    }
    if ns < 1_000_000_000 {
        return format!("{}ms", frac(ns, 1_000_000));
    }
    let secs = ns / 1_000_000_000;
    let sub = ns % 1_000_000_000;
    let s_part = frac((secs % 60) * 1_000_000_000 + sub, 1_000_000_000);
    if secs < 60 {
        return format!("{s_part}s");
    }
    let mins = secs / 60;
    if mins < 60 {
        return format!("{mins}m{s_part}s");
    }
    format!("{}h{}m{s_part}s", mins / 60, mins % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn results() -> Vec<TestResult> {
        vec![
            TestResult {
                name: "Command Test: echo".into(),
                pass: true,
                stdout: "hi\n".into(),
                stderr: String::new(),
                errors: vec![],
                duration: Duration::from_millis(1500),
            },
            TestResult {
                name: "Metadata Test".into(),
                pass: false,
                stdout: String::new(),
                stderr: String::new(),
                errors: vec!["Image user root does not match config user: <nobody>".into()],
                duration: Duration::from_nanos(12_345),
            },
        ]
    }

    #[test]
    fn durations_like_go() {
        assert_eq!(go_duration(Duration::ZERO), "0s");
        assert_eq!(go_duration(Duration::from_nanos(850)), "850ns");
        assert_eq!(go_duration(Duration::from_nanos(1_500)), "1.5µs");
        assert_eq!(go_duration(Duration::from_nanos(12_345_678)), "12.345678ms");
        assert_eq!(go_duration(Duration::from_millis(2500)), "2.5s");
        assert_eq!(go_duration(Duration::from_millis(62_500)), "1m2.5s");
        assert_eq!(go_duration(Duration::from_secs(3600)), "1h0m0s");
    }

    #[test]
    fn text_format() {
        assert_eq!(format_text_files(&[]), "No tests run! Check config file format.\n");
        let files = format_text_files(&[(Path::new("a/x.yaml"), &results()[..1])]);
        assert!(files.starts_with("\n===============================\n====== Test file: x.yaml ======\n"), "{files}");
        assert!(files.ends_with("===============================\n=========== RESULTS ===========\n===============================\nPasses:      1\nFailures:    0\nDuration:    1.5s\nTotal tests: 1\n\nPASS\n"), "{files}");
        let both = format_text_files(&[(Path::new("t.yaml"), &results()[..])]);
        assert!(
            both.contains(
                "=== RUN: Command Test: echo\n--- PASS\nduration: 1.5s\nstdout: hi\n\n\
             === RUN: Metadata Test\n--- FAIL\nduration: 12.345µs\n\
             Error: Image user root does not match config user: <nobody>\n"
            ),
            "{both}"
        );
        assert!(both.ends_with("Passes:      1\nFailures:    1\nDuration:    1.500012345s\nTotal tests: 2\n\nFAIL\n"), "{both}");
        assert!(!all_passed(&results()) && all_passed(&results()[..1]) && !all_passed(&[]));
    }

    #[test]
    fn json_format() {
        assert_eq!(
            format_json(&results()),
            "{\"Pass\":1,\"Fail\":1,\"Total\":2,\"Duration\":1500012345,\"Results\":[\
             {\"Name\":\"Command Test: echo\",\"Pass\":true,\"Stdout\":\"hi\\n\",\"Duration\":1500000000},\
             {\"Name\":\"Metadata Test\",\"Pass\":false,\"Errors\":[\"Image user root does not match config user: \\u003cnobody\\u003e\"],\"Duration\":12345}]}\n"
        );
        assert_eq!(format_json(&[]), "{\"Pass\":0,\"Fail\":0,\"Total\":0,\"Duration\":0}\n");
    }

    #[test]
    fn junit_format() {
        assert_eq!(
            format_junit(&results(), ""),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><testsuites failures=\"1\" tests=\"2\" time=\"1.500012345\">\
             <testsuite name=\"container-structure-test.test\">\
             <testcase name=\"Command Test: echo\" time=\"1.5\"><system-out>hi&#xA;</system-out><system-err></system-err></testcase>\
             <testcase name=\"Metadata Test\" time=\"1.2345e-05\"><failure>Image user root does not match config user: &lt;nobody&gt;</failure>\
             <system-out></system-out><system-err></system-err></testcase></testsuite></testsuites>\n"
        );
        assert!(format_junit(&[], "s").contains("<testsuite name=\"s\"></testsuite>"));
    }
}
