//! Build Event Protocol files for CI (`--build_event_json_file`, `--build_event_text_file`):
//! the events of Bazel's `build_event_stream.proto` that say what a build and its tests did,
//! in the same order and with the same ids Bazel 4.2.3 uses, so BEP consumers (CI
//! annotators, result viewers) read ocib's stream as Bazel's. JSON is one event a line
//! (proto3's JSON mapping: lowerCamelCase names, 64-bit integers as strings); text is
//! protobuf text format, each event in an `event { … }` block as Bazel writes it.
//!
//! Every event announces its children (`children`); every announced event is posted once,
//! those the build never reached as `aborted` (as Bazel does), and the last one carries
//! `lastMessage: true`. `testdata/bep/` holds the stream Bazel writes for a small workspace
//! and `tests/it/progress.rs` compares ocib's with it.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use base64::Engine as _;
use serde_json::{Value, json};

use crate::exec::Artifact;
use crate::graph::label::Label;

/// 64-bit integer fields (proto3 JSON writes them as strings, text format as numbers).
const INT64_FIELDS: &[&str] = &[
    "actionsCreated",
    "actionsExecuted",
    "targetsLoaded",
    "targetsConfigured",
    "packagesLoaded",
    "cpuTimeInMs",
    "wallTimeInMs",
    "startTimeMillis",
    "serverPid",
    "finishTimeMillis",
    "testAttemptDurationMillis",
    "testAttemptStartMillisEpoch",
    "firstStartTimeMillis",
    "lastStopTimeMillis",
    "totalRunDurationMillis",
    "testTimeoutSeconds",
];

/// Enum fields (a bare identifier in text format).
const ENUM_FIELDS: &[&str] = &["status", "overallStatus", "reason", "effectTags", "metadataTags"];

/// One file in a `namedSetOfFiles` or an output list.
fn file_entry(artifact: &Artifact, workspace: &Path) -> Value {
    let path = match &artifact.kind {
        crate::exec::ArtifactKind::Source(p) => p.clone(),
        crate::exec::ArtifactKind::Derived => workspace.join(&artifact.exec_path),
    };
    let uri = format!("file://{}", path.display());
    match artifact.exec_path.strip_prefix("ocib-out/bin/") {
        Some(name) if !artifact.is_source() => json!({"name": name, "uri": uri, "pathPrefix": ["ocib-out", "bin"]}),
        _ => json!({"name": artifact.exec_path, "uri": uri}),
    }
}

fn millis(t: SystemTime) -> String {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or_default().to_string()
}

/// Bazel's `ExitCode` names for ocib's exit codes.
fn exit_code_name(code: i32) -> &'static str {
    match code {
        0 => "SUCCESS",
        1 => "BUILD_FAILURE",
        2 => "COMMAND_LINE_ERROR",
        3 => "TESTS_FAILED",
        4 => "NO_TESTS_FOUND",
        7 => "ANALYSIS_FAILURE",
        8 => "INTERRUPTED",
        _ => "BLAZE_INTERNAL_ERROR",
    }
}

/// A test attempt's result, for `testResult` and `testSummary`.
pub struct TestAttempt<'a> {
    /// The test's label.
    pub label: &'a Label,
    /// `PASSED`, `FAILED`, `TIMEOUT` or `FAILED_TO_BUILD`.
    pub status: &'static str,
    /// Whether the result came from the cache.
    pub cached: bool,
    /// When it started.
    pub start: SystemTime,
    /// How long it ran, in milliseconds.
    pub duration_ms: u64,
    /// Its log (`test.log`).
    pub log: &'a Artifact,
    /// Its JUnit XML.
    pub xml: &'a Artifact,
}

/// What `buildMetrics` reports of a command (set with [`BuildEventStream::metrics`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct BuildMetrics {
    /// Actions analysis declared.
    pub actions_created: usize,
    /// Actions that ran (not served by the cache).
    pub actions_executed: usize,
    /// Configured targets analysis made.
    pub targets_configured: usize,
    /// Packages loaded.
    pub packages_loaded: usize,
}

/// The command line as Bazel's `structuredCommandLine` and `optionsParsed` split it:
/// startup options, the command, its options, and the rest (target patterns).
struct CommandLine {
    startup: Vec<String>,
    command: String,
    options: Vec<String>,
    residual: Vec<String>,
}

impl CommandLine {
    fn parse(args: &[String], command: &str) -> CommandLine {
        let at = args.iter().position(|a| a == command).unwrap_or(0);
        let (startup, rest) = if args.get(at).is_some_and(|a| a == command) { (&args[..at], &args[at + 1..]) } else { (&[][..], args) };
        // After `--` everything is a pattern; a negative pattern (`-//x/...`) is one too.
        let (rest, after_dashes) = match rest.iter().position(|a| a == "--") {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        let is_option = |a: &String| a.starts_with('-') && !["-/", "-@", "-:"].iter().any(|p| a.starts_with(p));
        let (options, mut residual): (Vec<String>, Vec<String>) = rest.iter().cloned().partition(is_option);
        residual.extend(after_dashes.iter().cloned());
        CommandLine { startup: startup.to_vec(), command: command.to_owned(), options, residual }
    }

    /// One option as `structuredCommandLine` has it. Effect tags say what an option changes;
    /// ocib does not classify its options, so each is `UNKNOWN` (Bazel's tag 0).
    fn option(text: &str) -> Value {
        let bare = text.trim_start_matches('-');
        let (name, value) = match bare.split_once('=') {
            Some((n, v)) => (n.to_owned(), v.to_owned()),
            None => match bare.strip_prefix("no") {
                Some(n) if !n.is_empty() => (n.to_owned(), "0".to_owned()),
                _ => (bare.to_owned(), "1".to_owned()),
            },
        };
        json!({"combinedForm": text, "optionName": name, "optionValue": value, "effectTags": ["UNKNOWN"]})
    }

    /// The sections of `structuredCommandLine` (`original` and `canonical` alike: ocib does
    /// not rewrite options); empty sections are left out.
    fn sections(&self) -> Value {
        let chunks = |label: &str, chunks: &[String]| json!({"sectionLabel": label, "chunkList": {"chunk": chunks}});
        let options = |label: &str, options: &[String]| json!({"sectionLabel": label, "optionList": {"option": options.iter().map(|o| Self::option(o)).collect::<Vec<_>>()}});
        let mut sections = vec![chunks("command line", &["ocib".to_owned()])];
        if !self.startup.is_empty() {
            sections.push(options("startup options", &self.startup));
        }
        sections.push(chunks("command", std::slice::from_ref(&self.command)));
        if !self.options.is_empty() {
            sections.push(options("command options", &self.options));
        }
        if !self.residual.is_empty() {
            sections.push(chunks("residual", &self.residual));
        }
        Value::Array(sections)
    }
}

/// CPU time of ocib and the processes it waited for, in milliseconds.
fn cpu_time_ms() -> u64 {
    let mut total = 0;
    for who in [libc::RUSAGE_SELF, libc::RUSAGE_CHILDREN] {
        // SAFETY: getrusage writes into the zeroed struct it is given and reads nothing else.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        if unsafe { libc::getrusage(who, &mut usage) } == 0 {
            for t in [usage.ru_utime, usage.ru_stime] {
                total += t.tv_sec as u64 * 1000 + t.tv_usec as u64 / 1000;
            }
        }
    }
    total
}

/// The open BEP files of one command and what has been announced and posted.
pub struct BuildEventStream {
    json: Option<std::io::BufWriter<std::fs::File>>,
    text: Option<std::io::BufWriter<std::fs::File>>,
    workspace: PathBuf,
    configuration: String,
    progress_count: u64,
    named_sets: u64,
    announced: Vec<Value>,
    posted: BTreeSet<String>,
    /// The first write error; the stream stops there and the command warns once.
    failed: Option<String>,
    metrics: BuildMetrics,
}

impl BuildEventStream {
    /// Opens the requested files (none: `None`) and posts `started`, announcing the pattern
    /// and `buildFinished`.
    pub fn open(json: Option<&Path>, text: Option<&Path>, command: &str, patterns: &[String], args: &[String]) -> Result<Option<Self>> {
        if json.is_none() && text.is_none() {
            return Ok(None);
        }
        let create = |p: &Path| -> Result<std::io::BufWriter<std::fs::File>> {
            let file = std::fs::File::create(p).with_context(|| format!("cannot write the build event file {}", p.display()))?;
            Ok(std::io::BufWriter::new(file))
        };
        let cwd = std::env::current_dir().unwrap_or_default();
        let workspace = crate::workspace::find_root(&cwd).unwrap_or_else(|| cwd.clone());
        let mut stream = BuildEventStream {
            json: json.map(create).transpose()?,
            text: text.map(create).transpose()?,
            workspace: workspace.clone(),
            configuration: String::new(),
            progress_count: 0,
            named_sets: 0,
            announced: vec![json!({"started": {}})],
            posted: BTreeSet::new(),
            failed: None,
            metrics: BuildMetrics::default(),
        };
        let now = SystemTime::now();
        let uuid = {
            let seed = format!("{:?} {} {}", now, std::process::id(), args.join(" "));
            let h = crate::exec::digest::sha256_hex(seed.as_bytes());
            format!("{}-{}-4{}-a{}-{}", &h[0..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
        };
        let line = |label: &str| json!({"structuredCommandLine": {"commandLineLabel": label}});
        stream.post(
            json!({"started": {}}),
            vec![
                json!({"progress": {}}),
                json!({"unstructuredCommandLine": {}}),
                line("original"),
                line("canonical"),
                line("tool"),
                json!({"buildMetadata": {}}),
                json!({"optionsParsed": {}}),
                json!({"workspaceStatus": {}}),
                pattern_id(patterns),
                json!({"buildFinished": {}}),
            ],
            json!({"started": {
                "uuid": uuid,
                "startTimeMillis": millis(now),
                "optionsDescription": args.join(" "),
                "command": command,
                "workingDirectory": cwd.display().to_string(),
                "workspaceDirectory": workspace.display().to_string(),
                "serverPid": std::process::id().to_string(),
            }}),
        );
        // The command line, as Bazel posts it right after `started`.
        let cmd = CommandLine::parse(args, command);
        let sections = cmd.sections();
        stream.post(line("canonical"), vec![], json!({"structuredCommandLine": {"commandLineLabel": "canonical", "sections": sections}}));
        stream.post(json!({"unstructuredCommandLine": {}}), vec![], json!({"unstructuredCommandLine": {"args": args}}));
        // rc files' options are applied before the command sees them; what was typed is
        // what ocib can name here, so `cmdLine` and `explicitCmdLine` are the same.
        stream.post(
            json!({"optionsParsed": {}}),
            vec![],
            json!({"optionsParsed": {
                "startupOptions": cmd.startup,
                "explicitStartupOptions": cmd.startup,
                "cmdLine": cmd.options,
                "explicitCmdLine": cmd.options,
                "invocationPolicy": {},
            }}),
        );
        stream.post(line("tool"), vec![], json!({"structuredCommandLine": {}}));
        stream.post(json!({"buildMetadata": {}}), vec![], json!({"buildMetadata": {}}));
        stream.post(line("original"), vec![], json!({"structuredCommandLine": {"commandLineLabel": "original", "sections": sections}}));
        Ok(Some(stream))
    }

    /// The workspace status (`workspaceStatus`): the built-in keys and what
    /// `--workspace_status_command` printed, stable ones first.
    pub fn workspace_status(&mut self, status: &crate::stamp::WorkspaceStatus) {
        let items: Vec<Value> = status.stable.iter().chain(&status.volatile).map(|(k, v)| json!({"key": k, "value": v})).collect();
        self.post(json!({"workspaceStatus": {}}), vec![], json!({"workspaceStatus": {"item": items}}));
    }

    /// What `buildMetrics` will report when the stream finishes.
    pub fn metrics(&mut self, metrics: BuildMetrics) {
        self.metrics = metrics;
    }

    /// The patterns expanded to `labels`: `pattern` announcing their `targetConfigured`.
    pub fn pattern_expanded(&mut self, patterns: &[String], labels: &[Label]) {
        let children = labels.iter().map(|l| json!({"targetConfigured": {"label": l.to_string()}})).collect();
        self.post(pattern_id(patterns), children, json!({"expanded": {}}));
    }

    /// The build configuration (one per build in ocib), announced by a `progress` event.
    /// The workspace (`workspaceInfo`, announced by a `progress` event) comes first.
    pub fn configuration(&mut self, compilation_mode: &str, description: &str) {
        let workspace = json!({"workspace": {}});
        self.progress("", vec![workspace.clone()]);
        let root = self.workspace.display().to_string();
        self.post(workspace, vec![], json!({"workspaceInfo": {"localExecRoot": root}}));
        self.configuration = crate::exec::digest::sha256_hex(description.as_bytes());
        let id = json!({"configuration": {"id": self.configuration}});
        self.progress("", vec![id.clone()]);
        let make_variables =
            json!({"COMPILATION_MODE": compilation_mode, "TARGET_CPU": "k8", "GENDIR": "ocib-out/bin", "BINDIR": "ocib-out/bin"});
        let mnemonic = format!("k8-{compilation_mode}");
        self.post(
            id,
            vec![],
            json!({"configuration": {"mnemonic": mnemonic, "platformName": "k8", "cpu": "k8", "makeVariable": make_variables}}),
        );
    }

    fn completed_id(&self, label: &Label) -> Value {
        json!({"targetCompleted": {"label": label.to_string(), "configuration": {"id": self.configuration}}})
    }

    /// A target was analyzed: its kind (`genrule rule`), and the test size of a test.
    pub fn target_configured(&mut self, label: &Label, kind: &str, test_size: Option<&str>) {
        let mut configured = json!({"targetKind": kind});
        if let Some(size) = test_size {
            configured["testSize"] = json!(size.to_ascii_uppercase());
        }
        let child = self.completed_id(label);
        self.post(json!({"targetConfigured": {"label": label.to_string()}}), vec![child], json!({"configured": configured}));
    }

    /// A target was built (or not): its default outputs as a named set, then `targetCompleted`;
    /// a test's completion announces its `testResult` and `testSummary` when `test_timeout`
    /// is given (`ocib test`).
    pub fn target_completed(&mut self, label: &Label, success: bool, files: &[Artifact], test_timeout: Option<u64>) {
        let mut completed = json!({"success": success});
        if success {
            let set = self.named_sets.to_string();
            self.named_sets += 1;
            let set_id = json!({"namedSet": {"id": set}});
            self.progress("", vec![set_id.clone()]);
            let entries: Vec<Value> = files.iter().map(|f| file_entry(f, &self.workspace)).collect();
            self.post(set_id, vec![], json!({"namedSetOfFiles": {"files": entries.clone()}}));
            completed["outputGroup"] = json!([{"name": "default", "fileSets": [{"id": set}]}]);
            completed["importantOutput"] = json!(entries.into_iter().filter(|e| e.get("pathPrefix").is_some()).collect::<Vec<_>>());
        }
        let mut children = Vec::new();
        if let Some(timeout) = test_timeout {
            completed["testTimeoutSeconds"] = json!(timeout.to_string());
            if success {
                children.push(self.test_result_id(label));
                children.push(json!({"testSummary": {"label": label.to_string(), "configuration": {"id": self.configuration}}}));
            }
        }
        self.post(self.completed_id(label), children, json!({"completed": completed}));
    }

    fn test_result_id(&self, label: &Label) -> Value {
        json!({"testResult": {"label": label.to_string(), "run": 1, "shard": 1, "attempt": 1, "configuration": {"id": self.configuration}}})
    }

    /// A test ran (or its result came from the cache): `testResult`, then `testSummary`.
    pub fn test_result(&mut self, attempt: &TestAttempt<'_>) {
        let log = file_entry(attempt.log, &self.workspace);
        let xml = file_entry(attempt.xml, &self.workspace);
        let outputs = json!([{"name": "test.log", "uri": log["uri"]}, {"name": "test.xml", "uri": xml["uri"]}]);
        let start = millis(attempt.start);
        let stop = (start.parse::<u64>().unwrap_or_default() + attempt.duration_ms).to_string();
        let mut result = json!({
            "testActionOutput": outputs,
            "testAttemptDurationMillis": attempt.duration_ms.to_string(),
            "status": attempt.status,
            "testAttemptStartMillisEpoch": start,
            "executionInfo": {"strategy": "local"},
        });
        if attempt.cached {
            result["cachedLocally"] = json!(true);
        }
        self.post(self.test_result_id(attempt.label), vec![], json!({"testResult": result}));
        let passed = attempt.status == "PASSED";
        let mut summary = json!({
            "totalRunCount": 1,
            "overallStatus": attempt.status,
            "firstStartTimeMillis": start,
            "lastStopTimeMillis": stop,
            "totalRunDurationMillis": attempt.duration_ms.to_string(),
            "runCount": 1,
        });
        summary[if passed { "passed" } else { "failed" }] = json!([{"uri": log["uri"]}]);
        let id = json!({"testSummary": {"label": attempt.label.to_string(), "configuration": {"id": self.configuration}}});
        self.post(id, vec![], json!({"testSummary": summary}));
    }

    /// The end: `buildFinished` with the exit code, `buildMetrics` (see [`Self::metrics`]),
    /// `buildToolLogs` with the elapsed time,
    /// an `aborted` event for everything announced but never reached, and the last
    /// `progress` (`lastMessage`). Returns the first write error, if any.
    pub fn finish(mut self, exit_code: i32, elapsed: std::time::Duration, summary: &[String]) -> Option<String> {
        let mut exit = json!({"name": exit_code_name(exit_code)});
        if exit_code != 0 {
            exit["code"] = json!(exit_code);
        }
        self.post(
            json!({"buildFinished": {}}),
            vec![json!({"buildToolLogs": {}}), json!({"buildMetrics": {}})],
            json!({"finished": {"overallSuccess": exit_code == 0, "finishTimeMillis": millis(SystemTime::now()), "exitCode": exit, "anomalyReport": {}}}),
        );
        let m = self.metrics;
        // Bazel's JVM memory metrics have no counterpart: `memoryMetrics` stays empty.
        // `targetsLoaded` counts the configured targets (each was loaded); Bazel's also
        // counts the other targets of their packages.
        self.post(
            json!({"buildMetrics": {}}),
            vec![],
            json!({"buildMetrics": {
                "actionSummary": {"actionsCreated": m.actions_created.to_string(), "actionsExecuted": m.actions_executed.to_string()},
                "memoryMetrics": {},
                "targetMetrics": {"targetsLoaded": m.targets_configured.to_string(), "targetsConfigured": m.targets_configured.to_string()},
                "packageMetrics": {"packagesLoaded": m.packages_loaded.to_string()},
                "timingMetrics": {"cpuTimeInMs": cpu_time_ms().to_string(), "wallTimeInMs": elapsed.as_millis().to_string()},
            }}),
        );
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let mut logs = vec![json!({"name": "elapsed time", "contents": b64(&format!("{:.6}", elapsed.as_secs_f64()))})];
        for line in summary {
            if let Some(path) = line.split_once("Critical Path: ").map(|(_, p)| p) {
                logs.push(json!({"name": "critical path", "contents": b64(&format!("Critical Path: {path}"))}));
            }
            if let Some(stats) = line.strip_prefix("INFO: ").filter(|l| l.contains(" process")) {
                logs.push(json!({"name": "process stats", "contents": b64(stats)}));
            }
        }
        self.post(json!({"buildToolLogs": {}}), vec![], json!({"buildToolLogs": {"log": logs}}));
        let unreached: Vec<Value> =
            self.announced.iter().filter(|id| !self.posted.contains(&id.to_string()) && id.get("progress").is_none()).cloned().collect();
        for id in unreached {
            self.post(id, vec![], json!({"aborted": {"reason": "INCOMPLETE", "description": "ocib did not reach this step"}}));
        }
        let id = self.progress_id();
        self.write(json!({"id": id, "progress": {}, "lastMessage": true}));
        for file in [self.json.as_mut(), self.text.as_mut()].into_iter().flatten() {
            if let Err(e) = file.flush()
                && self.failed.is_none()
            {
                self.failed = Some(e.to_string());
            }
        }
        self.failed
    }

    fn progress_id(&self) -> Value {
        match self.progress_count {
            0 => json!({"progress": {}}),
            n => json!({"progress": {"opaqueCount": n}}),
        }
    }

    /// Posts the next `progress` event (with what was printed, if anything), announcing the
    /// next one and `children`.
    pub fn progress(&mut self, stderr: &str, mut children: Vec<Value>) {
        let id = self.progress_id();
        self.progress_count += 1;
        children.insert(0, self.progress_id());
        let payload = if stderr.is_empty() { json!({"progress": {}}) } else { json!({"progress": {"stderr": stderr}}) };
        self.post(id, children, payload);
    }

    fn post(&mut self, id: Value, children: Vec<Value>, payload: Value) {
        self.posted.insert(id.to_string());
        self.announced.extend(children.iter().cloned());
        let mut event = json!({"id": id});
        if !children.is_empty() {
            event["children"] = Value::Array(children);
        }
        if let (Value::Object(event), Value::Object(payload)) = (&mut event, payload) {
            event.extend(payload);
        }
        self.write(event);
    }

    fn write(&mut self, event: Value) {
        if self.failed.is_some() {
            return;
        }
        let mut result = Ok(());
        if let Some(f) = self.json.as_mut() {
            result = writeln!(f, "{event}");
        }
        if let Some(f) = self.text.as_mut()
            && result.is_ok()
        {
            let mut text = String::from("event {\n");
            text_fields(&event, 0, &mut text);
            text.push_str("}\n\n");
            result = f.write_all(text.as_bytes());
        }
        if let Err(e) = result {
            self.failed = Some(e.to_string());
        }
    }
}

fn pattern_id(patterns: &[String]) -> Value {
    json!({"pattern": {"pattern": patterns}})
}

/// `lowerCamelCase` → `snake_case`, the proto field name.
fn snake(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A JSON string as a text-format string literal.
fn quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\{:03o}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes the fields of a JSON object in protobuf text format at `indent`.
fn text_fields(value: &Value, indent: usize, out: &mut String) {
    let Value::Object(map) = value else { return };
    for (key, v) in map {
        let items: Vec<&Value> = match v {
            Value::Array(items) => items.iter().collect(),
            other => vec![other],
        };
        for item in items {
            let pad = " ".repeat(indent);
            let name = snake(key);
            match item {
                Value::Object(_) => {
                    out.push_str(&format!("{pad}{name} {{\n"));
                    text_fields(item, indent + 2, out);
                    out.push_str(&format!("{pad}}}\n"));
                }
                Value::String(s) if INT64_FIELDS.contains(&key.as_str()) || ENUM_FIELDS.contains(&key.as_str()) => {
                    out.push_str(&format!("{pad}{name}: {s}\n"))
                }
                Value::String(s) => out.push_str(&format!("{pad}{name}: {}\n", quoted(s))),
                other => out.push_str(&format!("{pad}{name}: {other}\n")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_format_matches_bazels_layout() {
        let event = json!({"id": {"testSummary": {"label": "//:t"}}, "testSummary": {"overallStatus": "PASSED", "totalRunDurationMillis": "171", "passed": [{"uri": "file:///x"}], "runCount": 1}});
        let mut text = String::new();
        text_fields(&event, 0, &mut text);
        assert_eq!(
            text,
            "id {\n  test_summary {\n    label: \"//:t\"\n  }\n}\ntest_summary {\n  overall_status: PASSED\n  total_run_duration_millis: 171\n  passed {\n    uri: \"file:///x\"\n  }\n  run_count: 1\n}\n"
        );
    }

    /// Startup options, the command, its options and the target patterns, as
    /// `structuredCommandLine` splits them; `--noX` is option X with value 0.
    #[test]
    fn command_line_is_split_as_bazels() {
        let args: Vec<String> =
            ["--nohome_rc", "build", "--disk_cache=/c", "--keep_going", "//...", "-//x/...", "--", "-//y"].map(String::from).to_vec();
        let cmd = CommandLine::parse(&args, "build");
        assert_eq!(cmd.startup, ["--nohome_rc"]);
        assert_eq!(cmd.options, ["--disk_cache=/c", "--keep_going"]);
        assert_eq!(cmd.residual, ["//...", "-//x/...", "-//y"]);
        assert_eq!(CommandLine::option("--nohome_rc")["optionName"], "home_rc");
        assert_eq!(CommandLine::option("--nohome_rc")["optionValue"], "0");
        assert_eq!(CommandLine::option("--disk_cache=/c")["optionValue"], "/c");
        let sections = cmd.sections();
        let labels: Vec<&str> = sections.as_array().unwrap().iter().map(|s| s["sectionLabel"].as_str().unwrap()).collect();
        assert_eq!(labels, ["command line", "startup options", "command", "command options", "residual"]);
    }

    #[test]
    fn every_announced_event_is_posted_once_and_the_last_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bep.json");
        let patterns = vec!["//...".to_owned()];
        let mut bep = BuildEventStream::open(Some(&path), None, "build", &patterns, &patterns).unwrap().unwrap();
        let label = Label::parse_absolute("//p:x").unwrap();
        bep.pattern_expanded(&patterns, std::slice::from_ref(&label));
        bep.configuration("fastbuild", "config");
        // //p:x is announced but never configured (analysis failed): posted as aborted.
        assert_eq!(bep.finish(1, std::time::Duration::from_secs(1), &[]), None);
        let events: Vec<Value> = std::fs::read_to_string(&path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        let ids: Vec<String> = events.iter().map(|e| e["id"].to_string()).collect();
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "each id once: {ids:?}");
        for e in &events {
            for child in e["children"].as_array().into_iter().flatten() {
                assert!(ids.contains(&child.to_string()), "announced {child} never posted");
            }
        }
        let aborted = events.iter().find(|e| e["id"]["targetConfigured"]["label"] == "//p:x").unwrap();
        assert_eq!(aborted["aborted"]["reason"], "INCOMPLETE");
        assert_eq!(events.last().unwrap()["lastMessage"], true);
        assert_eq!(events.iter().find(|e| e["id"].get("buildFinished").is_some()).unwrap()["finished"]["exitCode"]["code"], 1);
    }
}
