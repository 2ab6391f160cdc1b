//! `ocib test PATTERNS`: builds what the tests need, runs them in parallel as cached actions,
//! and prints Bazel's summary. Exit 3 when a test fails, 4 when no test matched.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use super::bep::{BuildEventStream, TestAttempt};
use super::build::{BuildOptions, cache_dir, config, finish_build_events, prepare};
use super::progress::{Reporter, summary_lines};
use anyhow::anyhow;

use super::{CliError, CliResult, exit};
use crate::analysis::{Analysis, TestRun};
use crate::exec::{Action, ActionKind, Artifact, ArtifactKind, ExecOptions, Executor, OutputBase, process};
use crate::graph::label::Label;
use crate::rules::test::{RunTest, TestKind, TestStatus};

#[derive(clap::Args, Debug)]
pub struct TestArgs {
    #[command(flatten)]
    pub opts: BuildOptions,
    /// Reuse passing results whose inputs did not change (`no`: run every test).
    #[arg(long = "cache_test_results", default_value = "auto")]
    pub cache_test_results: String,
    /// summary, errors (show logs of failing tests), all, streamed.
    #[arg(long = "test_output", default_value = "summary")]
    pub test_output: String,
    /// `NAME=VALUE` (or `NAME` to pass through from the environment).
    #[arg(long = "test_env")]
    pub test_env: Vec<String>,
    /// Seconds; overrides the `timeout`/`size` of every test.
    #[arg(long = "test_timeout")]
    pub test_timeout: Option<u64>,
    /// Comma-separated tags; `-tag` excludes.
    #[arg(long = "test_tag_filters", default_value = "")]
    pub test_tag_filters: String,
    /// Target patterns; negative ones after `--`.
    pub patterns: Vec<String>,
}

/// Seconds a test may run: `timeout` if set, else from `size` (Bazel's defaults).
fn timeout_secs(timeout: &str, size: &str) -> u64 {
    match (timeout, size) {
        ("short", _) => 60,
        ("moderate", _) => 300,
        ("long", _) => 900,
        ("eternal", _) => 3600,
        (_, "small") => 60,
        (_, "large") => 900,
        (_, "enormous") => 3600,
        _ => 300,
    }
}

fn tags_match(tags: &[String], filters: &str) -> bool {
    let filters: Vec<&str> = filters.split(',').map(str::trim).filter(|f| !f.is_empty()).collect();
    let (excluded, required): (Vec<&str>, Vec<&str>) = filters.iter().partition(|f| f.starts_with('-'));
    if excluded.iter().any(|e| tags.iter().any(|t| t == &e[1..])) {
        return false;
    }
    required.is_empty() || required.iter().any(|r| tags.iter().any(|t| t == r))
}

pub fn run(mut args: TestArgs, cwd: &Path) -> CliResult {
    args.opts.download_what_runs();
    let mut bep = args.opts.build_events("test", &args.patterns)?;
    let mut summary = Vec::new();
    let result = run_tests(&args, cwd, bep.as_mut(), &mut summary);
    finish_build_events(bep, &result, &summary);
    result
}

/// A test to run: where its results go, and what the build events say of it.
struct PlannedTest {
    label: Label,
    /// The test's own outputs (its executable), for `targetCompleted`.
    files: Vec<Artifact>,
    status: Artifact,
    log: Artifact,
    xml: Artifact,
    timeout: u64,
}

fn run_tests(args: &TestArgs, cwd: &Path, mut bep: Option<&mut BuildEventStream>, summary: &mut Vec<String>) -> CliResult {
    let prepared = prepare(cwd, &args.patterns, args.opts.common.keep_going, true)?;
    if let Some(bep) = bep.as_deref_mut() {
        bep.pattern_expanded(&args.patterns, &prepared.labels);
    }
    let root = prepared.ws.root.clone();
    let config = config(&args.opts);
    if let Some(bep) = bep.as_deref_mut() {
        bep.configuration(&config.compilation_mode, &format!("{config:?}"));
    }
    let analysis_phase = super::profile::phase("analysis");
    // Never dropped, as the loader (see `build::Prepared::loader`).
    let mut analysis =
        std::mem::ManuallyDrop::new(Analysis::new(&prepared.loader, &crate::rules::registry().analyzers, config, cache_dir(&args.opts)));
    let mut tests: Vec<PlannedTest> = Vec::new();
    let mut analysis_failed = false;
    let test_env: BTreeMap<String, String> = args
        .test_env
        .iter()
        .map(|e| match e.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (e.clone(), std::env::var(e).unwrap_or_default()),
        })
        .collect();
    // An unknown --container_engine is a bad command line; no engine on PATH only fails the
    // structure tests that need one.
    let engine = match args.opts.container_engine.as_str() {
        "" | "auto" => crate::oci::engine::default_engine(),
        requested => Some(crate::oci::engine::choose(requested).map_err(CliError::bad_command_line)?),
    };
    for label in &prepared.labels {
        let Ok(pkg) = prepared.loader.package(&label.package_id()) else { continue };
        let Some(crate::graph::TargetRef::Rule(rule)) = pkg.target(&label.name) else { continue };
        if !tags_match(&rule.tags(), &args.test_tag_filters) {
            continue;
        }
        let target = match analysis.analyze(label) {
            Ok(t) => t,
            Err(e) => {
                analysis_failed = true;
                let failed = super::error::analysis_failed(label, e);
                if !args.opts.common.keep_going {
                    return Err(CliError::build_failed(failed));
                }
                super::error::report(&failed);
                continue;
            }
        };
        let string_attr = |name: &str| match rule.attr(name) {
            Some(crate::graph::AttrValue::String(s)) => s,
            _ => String::new(),
        };
        if let Some(bep) = bep.as_deref_mut() {
            let size = string_attr("size");
            bep.target_configured(label, &target.kind, Some(if size.is_empty() { "medium" } else { &size }));
        }
        let Some(test) = target.providers.test.clone() else { continue };
        let timeout = args.test_timeout.unwrap_or_else(|| timeout_secs(&string_attr("timeout"), &string_attr("size")));
        let logdir = format!("ocib-out/testlogs/{}", crate::analysis::source_exec_path(label));
        let art = |name: &str| Artifact { exec_path: format!("{logdir}/{name}"), kind: ArtifactKind::Derived };
        let (log, xml, status) = (art("test.log"), art("test.xml"), art("test.status"));
        let planned = PlannedTest {
            label: label.clone(),
            files: super::build::wanted_files(&target, ""),
            status: status.clone(),
            log: log.clone(),
            xml: xml.clone(),
            timeout,
        };
        let (kind, inputs): (TestKind, Vec<Artifact>) = match test {
            TestRun::Exec { executable, args: targs, env, runfiles, runfiles_tree } => {
                let tree = if runfiles_tree {
                    runfiles.iter().map(|r| (r.short_path().to_owned(), r.exec_path.clone())).collect()
                } else {
                    vec![]
                };
                let mut inputs = vec![executable.clone()];
                inputs.extend(runfiles);
                (TestKind::Exec { executable: executable.exec_path.clone(), args: targs, env, runfiles: tree }, inputs)
            }
            TestRun::Structure { image, configs, driver, platform, output, junit_suite_name } => {
                let mut inputs = vec![image.clone()];
                inputs.extend(configs.iter().cloned());
                // The tar driver needs no engine; the docker driver fails with the reason when
                // none is found.
                let engine = match driver.as_str() {
                    "docker" => engine.clone().unwrap_or_default(),
                    _ => String::new(),
                };
                (
                    TestKind::Structure {
                        image: image.exec_path.clone(),
                        configs: configs.iter().map(|c| c.exec_path.clone()).collect(),
                        driver,
                        engine,
                        platform,
                        output,
                        junit_suite_name,
                    },
                    inputs,
                )
            }
        };
        let code = RunTest {
            label: label.to_string(),
            kind,
            timeout_secs: timeout,
            test_env: test_env.clone(),
            log: log.exec_path.clone(),
            xml: xml.exec_path.clone(),
            status: status.exec_path.clone(),
            workspace: root.clone(),
            runfiles_workspace: crate::rules::test::runfiles_workspace(&prepared.ws.name).to_owned(),
        };
        let mut action =
            Action::new("TestRunner", label, ActionKind::Run(Arc::new(code))).inputs(inputs).output(status.clone()).output(log).output(xml);
        action.progress = format!("Testing {label}");
        action.skip_cache_lookup = args.cache_test_results == "no" || args.cache_test_results == "false" || args.cache_test_results == "0";
        analysis.actions.push(action);
        tests.push(planned);
    }
    drop(analysis_phase);
    if tests.is_empty() && !analysis_failed {
        // Bazel 4.2.3 likewise for `bazel test` with no patterns: exit 4, no usage warning.
        return Err(CliError::no_tests(anyhow!("No test targets were found, yet testing was requested")));
    }
    if !args.opts.build {
        // `--nobuild`: the tests were found and analyzed; none is built or run.
        eprintln!("INFO: Found {} test target{}...", tests.len(), if tests.len() == 1 { "" } else { "s" });
        return if analysis_failed { Err(CliError::code(exit::BUILD_FAILED)) } else { Ok(()) };
    }
    let base = OutputBase::open(&root)?;
    if let Some(bep) = bep.as_deref_mut() {
        // Tests are not stamped; the status has the built-in keys Bazel posts.
        bep.workspace_status(&crate::stamp::compute(&root, None, &args.opts.embed_label)?);
    }
    process::install_interrupt_handler();
    let opts = ExecOptions { jobs: args.opts.jobs.unwrap_or_else(|| super::build::default_jobs(&args.opts)), keep_going: true };
    let remote = super::build::remote_cache(&args.opts)?;
    let reporter = Reporter::start(args.opts.progress());
    let executor = Executor::new(&base, &cache_dir(&args.opts), None, opts)?
        .with_observer(super::profile::observer(reporter.clone()))
        .with_remote(remote);
    let wanted: Vec<Artifact> = tests.iter().map(|t| t.status.clone()).collect();
    let execution_phase = super::profile::phase("execution");
    let report = executor.execute(&analysis.actions, &wanted);
    drop(execution_phase);
    reporter.finish();
    if let Some(bep) = bep.as_deref_mut() {
        bep.metrics(super::bep::BuildMetrics {
            actions_created: analysis.actions.len(),
            actions_executed: report.executed + report.remote_executed,
            targets_configured: analysis.configured_targets().len(),
            packages_loaded: prepared.loader.packages_loaded(),
        });
    }
    if !report.interrupted {
        super::build::collect_garbage(executor, &args.opts);
    }
    for f in &report.failures {
        let mut message = format!("{} failed to build: {}", f.owner, f.message);
        if args.opts.verbose_failures
            && let Some(command) = &f.command
        {
            message.push_str(&format!("\n{}", command.to_shell()));
        }
        super::error::report(&anyhow!(message));
    }
    *summary = summary_lines(&report, super::command_elapsed());
    if report.interrupted {
        return Err(CliError::interrupted(anyhow!("testing interrupted")));
    }
    for line in summary.iter() {
        eprintln!("{line}");
    }
    let total_actions = format!("{} total action{}", report.total, if report.total == 1 { "" } else { "s" });
    if report.failures.is_empty() {
        eprintln!("INFO: Build completed successfully, {total_actions}");
    } else {
        eprintln!("ERROR: Build did NOT complete successfully, {total_actions}");
    }
    let (mut passed, mut failed, mut executed) = (0, 0, 0);
    let width = tests.iter().map(|t| t.label.to_string().len()).max().unwrap_or(0) + 3;
    let mut lines = Vec::new();
    for test in &tests {
        let (label, log_path) = (&test.label, &test.log.exec_path);
        let status: Option<TestStatus> =
            std::fs::read(root.join(&test.status.exec_path)).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let cached = report.hits.contains(&test.status.exec_path);
        let built = !report.failures.iter().any(|f| &f.owner == label);
        let shown_log = format!("ocib-testlogs/{}", log_path.trim_start_matches("ocib-out/testlogs/"));
        if let Some(bep) = bep.as_deref_mut() {
            bep.target_completed(label, built && status.is_some(), &test.files, Some(test.timeout));
        }
        match status {
            Some(s) if built => {
                if !cached {
                    executed += 1;
                }
                let word = if s.passed {
                    "PASSED"
                } else if s.timed_out {
                    "TIMEOUT"
                } else {
                    "FAILED"
                };
                let prefix = if cached { "(cached) " } else { "" };
                if let Some(bep) = bep.as_deref_mut() {
                    let duration = std::time::Duration::from_millis(s.duration_ms);
                    let log_mtime = std::fs::metadata(root.join(log_path)).and_then(|m| m.modified()).ok();
                    let start = log_mtime.and_then(|t| t.checked_sub(duration)).unwrap_or_else(std::time::SystemTime::now);
                    bep.test_result(&TestAttempt {
                        label,
                        status: word,
                        cached,
                        start,
                        duration_ms: s.duration_ms,
                        log: &test.log,
                        xml: &test.xml,
                    });
                }
                lines.push(format!("{:<width$}{prefix}{word} in {:.1}s", label.to_string(), s.duration_ms as f64 / 1000.0));
                if s.passed {
                    passed += 1;
                } else {
                    failed += 1;
                    lines.push(format!("  {shown_log}"));
                }
                let show = args.test_output == "all" || args.test_output == "streamed" || (!s.passed && args.test_output == "errors");
                if show {
                    eprintln!("==================== Test output for {label}:");
                    eprint!("{}", std::fs::read_to_string(root.join(log_path)).unwrap_or_default());
                    eprintln!("================================================================================");
                }
            }
            _ => {
                failed += 1;
                lines.push(format!("{:<width$}FAILED TO BUILD", label.to_string()));
            }
        }
    }
    for l in &lines {
        eprintln!("{l}");
    }
    let total = tests.len();
    if failed == 0 {
        eprintln!(
            "\nExecuted {executed} out of {total} test{}: {passed} test{} pass.",
            if total == 1 { "" } else { "s" },
            if passed == 1 { "" } else { "s" }
        );
        if analysis_failed { Err(CliError::code(exit::BUILD_FAILED)) } else { Ok(()) }
    } else {
        eprintln!(
            "\nExecuted {executed} out of {total} test{}: {passed} test{} pass and {failed} fail{}.",
            if total == 1 { "" } else { "s" },
            if passed == 1 { "" } else { "s" },
            if failed == 1 { "s" } else { "" }
        );
        // The summary above says what failed.
        Err(CliError::code(if report.failures.is_empty() {
            exit::PARTIAL
        } else if report.remote_error {
            super::build::REMOTE_ERROR
        } else {
            exit::BUILD_FAILED
        }))
    }
}
