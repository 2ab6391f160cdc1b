//! Running a test target: an executable (sh_test, go_test) or structure tests against an
//! image. The result is written as `test.log`, `test.xml` (JUnit) and `test.status`; a failed
//! test is not cached, so it runs again next time, as in Bazel.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::exec::process::{TestExit, run_test};
use crate::exec::{ActionContext, InProcess};

/// What `test.status` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TestStatus {
    pub passed: bool,
    pub timed_out: bool,
    pub duration_ms: u64,
    pub exit_code: Option<i32>,
}

/// The workspace directory inside a runfiles tree when the main repository has no name
/// (Bazel 4's `__main__`).
pub const RUNFILES_WORKSPACE: &str = "__main__";

/// The main repository's directory in a runfiles tree, and `ctx.workspace_name`: its
/// `workspace(name = ...)` / `module(name = ...)` ([`crate::workspace::Workspace::name`]),
/// else [`RUNFILES_WORKSPACE`], as in Bazel 4.2.3.
pub fn runfiles_workspace(name: &str) -> &str {
    if name.is_empty() { RUNFILES_WORKSPACE } else { name }
}

fn default_workspace() -> String {
    RUNFILES_WORKSPACE.to_owned()
}

fn is_default_workspace(name: &str) -> bool {
    name == RUNFILES_WORKSPACE
}

/// Creates a runfiles tree at `root`: `<root>/<workspace>/<short path>` links to each file.
pub fn make_runfiles_tree(root: &std::path::Path, workspace: &str, entries: &[(String, std::path::PathBuf)]) -> Result<()> {
    let base = root.join(workspace);
    std::fs::create_dir_all(&base).with_context(|| format!("creating {}", base.display()))?;
    for (short, target) in entries {
        if short.split('/').any(|c| c == ".." || c.is_empty()) {
            continue; // Files of other repositories (`../repo/x`) are not laid out.
        }
        let link = base.join(short);
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        if std::fs::symlink_metadata(&link).is_ok() {
            std::fs::remove_file(&link).with_context(|| format!("replacing {}", link.display()))?;
        }
        std::os::unix::fs::symlink(target, &link).with_context(|| format!("linking runfile {short}"))?;
    }
    Ok(())
}

#[derive(Serialize, Deserialize)]
pub enum TestKind {
    /// `runfiles`: short path → exec path of each runfile, when the test runs from a runfiles
    /// tree (its working directory; absent from the key when empty, so native tests keep
    /// theirs).
    Exec {
        executable: String,
        args: Vec<String>,
        env: BTreeMap<String, String>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        runfiles: Vec<(String, String)>,
    },
    /// Structure tests; `engine` is the container engine the docker driver uses (`docker`,
    /// `podman`, `nerdctl`; part of the key, as a result on one engine says nothing about
    /// another), empty for the tar driver or when none was found.
    Structure {
        image: String,
        configs: Vec<String>,
        driver: String,
        engine: String,
        platform: String,
        output: String,
        junit_suite_name: String,
    },
}

#[derive(Serialize, Deserialize)]
pub struct RunTest {
    pub label: String,
    pub kind: TestKind,
    pub timeout_secs: u64,
    /// `--test_env` values (part of the key, as in Bazel).
    pub test_env: BTreeMap<String, String>,
    pub log: String,
    pub xml: String,
    pub status: String,
    /// The workspace root the test runs in (not part of the key: outputs do not depend on it).
    #[serde(skip)]
    pub workspace: std::path::PathBuf,
    /// The main repository's directory in the runfiles tree ([`runfiles_workspace`]); in the
    /// key only when it is not the default, so existing keys stay.
    #[serde(skip_serializing_if = "is_default_workspace", default = "default_workspace")]
    pub runfiles_workspace: String,
}

impl InProcess for RunTest {
    fn kind(&self) -> &'static str {
        "RunTest"
    }

    fn remotable(&self) -> bool {
        false
    }

    fn params(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let log_path = ctx.output(&self.log)?.clone();
        let xml_path = ctx.output(&self.xml)?.clone();
        let started = Instant::now();
        let (passed, timed_out, exit_code, wrote_xml) = match &self.kind {
            TestKind::Exec { executable, args, env, runfiles } => {
                let tmp = ctx.exec_root.join("_tmp");
                std::fs::create_dir_all(&tmp)?;
                let mut cwd = self.workspace.clone();
                let mut srcdir = self.workspace.display().to_string();
                if !runfiles.is_empty() {
                    let root = ctx.exec_root.join("_runfiles");
                    let entries =
                        runfiles.iter().map(|(short, exec)| Ok((short.clone(), ctx.input(exec)?.clone()))).collect::<Result<Vec<_>>>()?;
                    make_runfiles_tree(&root, &self.runfiles_workspace, &entries)?;
                    srcdir = root.display().to_string();
                    cwd = root.join(&self.runfiles_workspace);
                }
                let mut full_env: BTreeMap<String, String> = BTreeMap::from([
                    ("PATH".to_owned(), std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())),
                    ("HOME".to_owned(), tmp.display().to_string()),
                    ("TEST_TMPDIR".to_owned(), tmp.display().to_string()),
                    ("TEST_TARGET".to_owned(), self.label.clone()),
                    ("XML_OUTPUT_FILE".to_owned(), xml_path.display().to_string()),
                    ("TEST_SRCDIR".to_owned(), srcdir.clone()),
                    ("RUNFILES_DIR".to_owned(), srcdir),
                    // The main repository's directory in the runfiles tree, as Bazel 4.2.3 sets it.
                    ("TEST_WORKSPACE".to_owned(), self.runfiles_workspace.clone()),
                ]);
                full_env.extend(env.iter().map(|(k, v)| (k.clone(), v.clone())));
                full_env.extend(self.test_env.iter().map(|(k, v)| (k.clone(), v.clone())));
                let mut argv = vec![ctx.input(executable)?.display().to_string()];
                argv.extend(args.iter().cloned());
                let exit = run_test(&argv, &full_env, &cwd, &log_path, Duration::from_secs(self.timeout_secs))?;
                let wrote = xml_path.exists();
                match exit {
                    TestExit::Code(c) => (c == 0, false, Some(c), wrote),
                    TestExit::Signal => (false, false, None, wrote),
                    TestExit::TimedOut => (false, true, None, wrote),
                }
            }
            TestKind::Structure { image, configs, driver, engine, platform, output, junit_suite_name } => {
                let image_path = ctx.input(image)?.clone();
                let config_paths = configs.iter().map(|c| ctx.input(c).cloned()).collect::<Result<Vec<_>>>()?;
                let outcome = run_structure_tests(&image_path, &config_paths, driver, engine, platform, output, junit_suite_name);
                let (passed, text, junit) = match outcome {
                    Ok((passed, text, junit)) => (passed, text, junit),
                    Err(e) => (false, format!("ERROR: {e:#}\n"), None),
                };
                std::fs::write(&log_path, text)?;
                if let Some(junit) = &junit {
                    std::fs::write(&xml_path, junit)?;
                }
                (passed, false, None, junit.is_some())
            }
        };
        let duration = started.elapsed();
        if !wrote_xml {
            std::fs::write(
                &xml_path,
                junit_for(&self.label, passed, timed_out, duration, &std::fs::read_to_string(&log_path).unwrap_or_default()),
            )?;
        }
        let status = TestStatus { passed, timed_out, duration_ms: duration.as_millis() as u64, exit_code };
        std::fs::write(ctx.output(&self.status)?, serde_json::to_vec(&status).context("status")?)?;
        // A failing test runs again next time.
        ctx.uncacheable = !passed;
        Ok(())
    }
}

/// Structure tests with ocib's own runner: the docker driver loads the layout into `engine`
/// under the tag the Bazel rule uses; the tar driver reads the layout directly. Returns (passed, the report
/// for the log in CST's `--output` format, JUnit report for test.xml).
fn run_structure_tests(
    image: &std::path::Path,
    configs: &[std::path::PathBuf],
    driver: &str,
    engine: &str,
    platform: &str,
    output: &str,
    junit_suite_name: &str,
) -> Result<(bool, String, Option<String>)> {
    let mut parsed = Vec::new();
    for c in configs {
        parsed.push(crate::rules::cst::runner::parse_config(c)?);
    }
    let driver = match driver {
        "docker" => {
            anyhow::ensure!(
                !engine.is_empty(),
                "the docker driver needs a container engine: none of {} is on PATH (or pass --container_engine)",
                crate::oci::engine::ENGINES.join(", ")
            );
            let tag = crate::rules::cst::runner::default_image_tag(image)?;
            crate::rules::cst::runner::load_layout(engine, image, &tag)?;
            crate::rules::cst::runner::Driver::Docker { engine: engine.to_owned(), image: tag }
        }
        "tar" => crate::rules::cst::runner::Driver::Layout { dir: image.to_path_buf() },
        other => anyhow::bail!("the '{other}' driver is not supported by ocib's structure test runner"),
    };
    // One run per config file, so the text report has CST's per-file banners.
    let mut per_file = Vec::new();
    for (path, config) in configs.iter().zip(parsed) {
        per_file.push((path.as_path(), crate::rules::cst::runner::run(std::slice::from_ref(&config), &driver, platform)?));
    }
    let all: Vec<crate::rules::cst::runner::TestResult> = per_file.iter().flat_map(|(_, r)| r.iter().cloned()).collect();
    let files: Vec<(&std::path::Path, &[crate::rules::cst::runner::TestResult])> =
        per_file.iter().map(|(p, r)| (*p, r.as_slice())).collect();
    let junit = crate::rules::cst::runner::format_junit(&all, junit_suite_name);
    let log = match output {
        "json" => crate::rules::cst::runner::format_json(&all),
        "junit" => junit.clone(),
        _ => crate::rules::cst::runner::format_text_files(&files),
    };
    Ok((crate::rules::cst::runner::all_passed(&all), log, Some(junit)))
}

/// A JUnit file for a test that wrote none: one test case named by the label, its log as the
/// case's output.
fn junit_for(label: &str, passed: bool, timed_out: bool, duration: Duration, log: &str) -> String {
    let failures = if passed { vec![] } else { vec![if timed_out { "timed out" } else { "exited with a non-zero status" }.to_owned()] };
    crate::rules::junit::write(label, &[crate::rules::junit::Case { name: label, duration, failures: &failures, stdout: log, stderr: "" }])
}
