//! `ocib build PATTERNS`: load, analyze, execute; Bazel's summary and exit codes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::time::Duration;

use anyhow::anyhow;

use super::bep::BuildEventStream;
use super::build_answer;
use super::progress::{ProgressOptions, Reporter, summary_lines};
use super::{CliError, CliResult, CommonArgs};
use crate::analysis::{Analysis, Config, ConfiguredTarget};
use crate::exec::cache::Gc;
use crate::exec::remote::{DownloadOutputs, RemoteCache, RemoteOptions};
use crate::exec::{Artifact, ExecOptions, Executor, OutputBase, process};
use crate::graph::label::Label;
use crate::graph::pattern::{SignedPattern, TargetPattern};
use crate::load::Loader;
use crate::query::eval::QueryEngine;
use crate::workspace::Workspace;

#[derive(clap::Args, Debug)]
pub struct BuildArgs {
    #[command(flatten)]
    pub opts: BuildOptions,
    /// Target patterns; negative ones (`-//x/...`) after `--`.
    pub patterns: Vec<String>,
}

/// Options of every command that builds (build, test, run, cquery).
#[derive(clap::Args, Debug)]
pub struct BuildOptions {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Number of actions run at once (default: the number of cores).
    #[arg(long = "jobs", short = 'j')]
    pub jobs: Option<usize>,
    /// Stamp outputs with the workspace status (x_defs placeholders, stamp = -1 rules).
    #[arg(long = "stamp", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, value_parser = super::parse_bool, default_value = "false")]
    pub stamp: bool,
    /// Command whose `KEY VALUE` lines are added to the workspace status.
    #[arg(long = "workspace_status_command", default_value = "")]
    pub workspace_status_command: String,
    /// Value of BUILD_EMBED_LABEL in the workspace status.
    #[arg(long = "embed_label", default_value = "")]
    pub embed_label: String,
    /// Cache directory (content-addressed store and action cache); default ~/.cache/ocib.
    #[arg(long = "disk_cache")]
    pub disk_cache: Option<PathBuf>,
    /// Show progress while building.
    #[arg(long = "show_progress", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, value_parser = super::parse_bool, default_value = "true")]
    pub show_progress: bool,
    /// Output groups to build besides the default outputs (`+tarball`, or `tarball` alone).
    #[arg(long = "output_groups", default_value = "")]
    pub output_groups: String,
    /// fastbuild, dbg or opt (what `compilation_mode` config_settings see).
    #[arg(long = "compilation_mode", short = 'c', default_value = "fastbuild")]
    pub compilation_mode: String,
    /// `--define name=value` for config_settings.
    #[arg(long = "define")]
    pub define: Vec<String>,
    /// Least seconds between two progress updates (off a terminal, at least 1).
    #[arg(long = "show_progress_rate_limit", value_name = "SECONDS", default_value_t = 0.2)]
    pub show_progress_rate_limit: f64,
    /// List the outputs of each target when at most this many targets were built.
    #[arg(long = "show_result", value_name = "N", default_value_t = 1)]
    pub show_result: usize,
    /// Print the command line of every process an action spawns (`pretty_print` is the same).
    #[arg(long = "subcommands", short = 's', num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, value_parser = parse_subcommands, default_value = "false")]
    pub subcommands: bool,
    /// Show the full command line (working directory, environment) of a failed action.
    #[arg(long = "verbose_failures", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, value_parser = super::parse_bool, default_value = "false")]
    pub verbose_failures: bool,
    /// Write a profile of the command (Chrome trace-event JSON, as Bazel's `--profile`: the
    /// phases and every action on the thread that ran it); `ocib analyze-profile FILE`
    /// summarises it, Perfetto or chrome://tracing show it.
    #[arg(long = "profile", value_name = "FILE")]
    pub profile: Option<PathBuf>,
    /// Write the Build Event Protocol as JSON, one event a line, to this file.
    #[arg(long = "build_event_json_file", value_name = "FILE")]
    pub build_event_json_file: Option<PathBuf>,
    /// Write the Build Event Protocol in protobuf text format to this file.
    #[arg(long = "build_event_text_file", value_name = "FILE")]
    pub build_event_text_file: Option<PathBuf>,
    /// Execute actions; `--nobuild` loads and analyzes only (and `test`/`run`/`push` then run
    /// nothing), as Bazel's `--nobuild`.
    #[arg(long = "build", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, value_parser = super::parse_bool, default_value = "true")]
    pub build: bool,
    /// `--//pkg:flag=value` user build settings, as `//pkg:flag=value` (the command line's
    /// spelling is rewritten to this hidden option).
    #[arg(long = "build_setting", hide = true)]
    pub build_setting: Vec<String>,
    /// The container engine `ocib run` loads images into and structure tests (docker driver)
    /// run on: docker, podman or nerdctl; `auto` (default): the first of them on PATH.
    #[arg(long = "container_engine", default_value = "auto")]
    pub container_engine: String,
    /// Size limit of the disk cache (`2G`, `500M`, `1T`; K/M/G/T are powers of 1024; 0: none,
    /// the default). At the end of a command the least recently used entries are evicted
    /// until the cache fits (Bazel 7.4+: `--experimental_disk_cache_gc_max_size`).
    #[arg(long = "disk_cache_max_size", visible_alias = "experimental_disk_cache_gc_max_size", value_parser = parse_size, default_value = "0")]
    pub disk_cache_max_size: u64,
    /// A remote cache shared by machines: `grpc://HOST:PORT` (REAPI v2: BuildGrid, Buildbarn,
    /// bazel-remote...) or `http://[USER:PASSWORD@]HOST[:PORT][/PATH]` (Bazel's HTTP cache
    /// protocol: bazel-remote, nginx WebDAV); `grpcs://` and `https://` over TLS.
    #[arg(long = "remote_cache", value_name = "URL")]
    pub remote_cache: Option<String>,
    /// Run actions on a Remote Execution API server, `grpc://HOST:PORT` (BuildGrid,
    /// Buildbarn...); its CAS and action cache are the remote cache unless `--remote_cache`
    /// names another endpoint (which must share the executor's CAS, as in Bazel).
    #[arg(long = "remote_executor", value_name = "URL")]
    pub remote_executor: Option<String>,
    /// `NAME=VALUE` platform property of every remotely executed action (repeatable); a
    /// target's `exec_properties` override it key by key.
    #[arg(long = "remote_default_exec_properties", value_name = "NAME=VALUE")]
    pub remote_default_exec_properties: Vec<String>,
    /// The REAPI instance name (gRPC).
    #[arg(long = "remote_instance_name", default_value = "")]
    pub remote_instance_name: String,
    /// `NAME=VALUE` header sent with every remote request (repeatable).
    #[arg(long = "remote_header", value_name = "NAME=VALUE")]
    pub remote_header: Vec<String>,
    /// `NAME=VALUE` header sent with every remote cache request (repeatable).
    #[arg(long = "remote_cache_header", value_name = "NAME=VALUE")]
    pub remote_cache_header: Vec<String>,
    /// The longest a remote request may take, in seconds (`60`, `60s`, `2m`).
    #[arg(long = "remote_timeout", value_parser = parse_seconds, default_value = "60")]
    pub remote_timeout: Duration,
    /// Store the results of actions run locally in the remote cache.
    #[arg(long = "remote_upload_local_results", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, value_parser = super::parse_bool, default_value = "true")]
    pub remote_upload_local_results: bool,
    /// Use results found in the remote cache.
    #[arg(long = "remote_accept_cached", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, value_parser = super::parse_bool, default_value = "true")]
    pub remote_accept_cached: bool,
    /// Which outputs of remote cache hits are downloaded: `all` (default), `toplevel` (those
    /// of the requested targets, and what `run`/`test` need), `minimal` (none); inputs of
    /// actions run locally always are. `--remote_download_toplevel`, `--remote_download_minimal`
    /// and `--remote_download_all` say the same.
    #[arg(long = "remote_download_outputs", value_parser = clap::value_parser!(DownloadOutputs), default_value = "all")]
    pub remote_download_outputs: DownloadOutputs,
    /// When the remote cache or executor cannot be reached at the start of the build, or the
    /// executor fails during it, build locally with one warning instead of failing (exit 34).
    /// (Remote cache failures during a build without `--remote_executor` always fall back,
    /// with one warning, as Bazel's remote cache does.)
    #[arg(long = "remote_local_fallback", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, value_parser = super::parse_bool, default_value = "false")]
    pub remote_local_fallback: bool,
    /// Outputs of remote cache hits whose exec path (`ocib-out/bin/pkg/file`) matches this
    /// regular expression (the whole path; repeatable) are downloaded whatever
    /// `--remote_download_outputs` says (Bazel 6+).
    #[arg(long = "remote_download_regex", visible_alias = "experimental_remote_download_regex", value_name = "REGEX")]
    pub remote_download_regex: Vec<String>,
    /// PEM file of the CA certificates that sign the `grpcs://`/`https://` remote's
    /// certificate: trusted instead of the system's.
    #[arg(long = "tls_certificate", value_name = "FILE")]
    pub tls_certificate: Option<PathBuf>,
    /// PEM client certificate for a remote that requires one (mutual TLS); needs
    /// `--tls_client_key`.
    #[arg(long = "tls_client_certificate", value_name = "FILE")]
    pub tls_client_certificate: Option<PathBuf>,
    /// PEM private key of `--tls_client_certificate` (PKCS#8, PKCS#1 or SEC1).
    #[arg(long = "tls_client_key", value_name = "FILE")]
    pub tls_client_key: Option<PathBuf>,
}

/// `--remote_timeout`: seconds, or a number with `s`, `m` or `h` (as Bazel's durations).
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (number, scale) = match t.char_indices().last() {
        Some((i, 's')) => (&t[..i], 1.0),
        Some((i, 'm')) => (&t[..i], 60.0),
        Some((i, 'h')) => (&t[..i], 3600.0),
        _ => (t, 1.0),
    };
    let n: f64 = number.parse().map_err(|_| format!("'{text}' is not a duration (seconds, or with s, m or h)"))?;
    if !n.is_finite() || n <= 0.0 {
        return Err(format!("'{text}' is not a positive duration"));
    }
    Ok(Duration::from_secs_f64(n * scale))
}

/// `--jobs` by default: the cores, or for remote execution 4× as many (at least 16): remote
/// actions mostly wait on the network (Bazel users set `--jobs=50`-`200` for the same reason).
pub fn default_jobs(args: &BuildOptions) -> usize {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
    if args.remote_executor.as_deref().is_some_and(|u| !u.is_empty()) { (cores * 4).max(16) } else { cores }
}

/// Bazel's exit code for a remote caching or execution failure (`ExitCode.REMOTE_ERROR`).
pub const REMOTE_ERROR: i32 = 34;

/// Connects to `--remote_cache`, if given. A remote that cannot be reached is an error
/// (exit 34, as Bazel's), or with `--remote_local_fallback` a warning and a local build.
pub fn remote_cache(args: &BuildOptions) -> CliResult<Option<RemoteCache>> {
    let executor = args.remote_executor.as_deref().filter(|u| !u.is_empty());
    if let Some(url) = executor
        && !url.to_ascii_lowercase().starts_with("grpc")
    {
        return Err(CliError::bad_command_line(anyhow!(
            "--remote_executor: expected grpc://HOST:PORT, got {}",
            crate::exec::remote::redact(url)
        )));
    }
    // Bazel: the executor's endpoint is also the cache unless --remote_cache says otherwise.
    let Some(url) = args.remote_cache.as_deref().filter(|u| !u.is_empty()).or(executor) else { return Ok(None) };
    let mut default_exec_properties = Vec::new();
    for p in &args.remote_default_exec_properties {
        let (k, v) = p
            .split_once('=')
            .ok_or_else(|| CliError::bad_command_line(anyhow!("--remote_default_exec_properties: expected NAME=VALUE, got '{p}'")))?;
        default_exec_properties.push((k.to_owned(), v.to_owned()));
    }
    let mut headers = Vec::new();
    for (flag, values) in [("--remote_header", &args.remote_header), ("--remote_cache_header", &args.remote_cache_header)] {
        for h in values {
            let (k, v) = h.split_once('=').ok_or_else(|| CliError::bad_command_line(anyhow!("{flag}: expected NAME=VALUE, got '{h}'")))?;
            headers.push((k.trim().to_owned(), v.to_owned()));
        }
    }
    let mut download_regex = Vec::new();
    for pattern in &args.remote_download_regex {
        // Bazel matches the whole exec path (Java's `Matcher.matches`).
        let re = regex::Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| CliError::bad_command_line(anyhow!("--remote_download_regex='{pattern}': {e}")))?;
        download_regex.push(re);
    }
    // Empty values unset a flag an rc file set, as Bazel's `--tls_certificate=`.
    let file = |p: &Option<PathBuf>| p.as_deref().filter(|p| !p.as_os_str().is_empty()).map(Path::to_path_buf);
    let tls = crate::exec::remote::tls::TlsOptions::from_files(
        file(&args.tls_certificate).as_deref(),
        file(&args.tls_client_certificate).as_deref(),
        file(&args.tls_client_key).as_deref(),
    )
    .map_err(CliError::bad_command_line)?;
    let opts = RemoteOptions {
        url: url.to_owned(),
        instance_name: args.remote_instance_name.clone(),
        headers,
        timeout: args.remote_timeout,
        accept_cached: args.remote_accept_cached,
        upload_local_results: args.remote_upload_local_results,
        download: args.remote_download_outputs,
        executor: executor.map(str::to_owned),
        default_exec_properties,
        local_fallback: args.remote_local_fallback,
        download_regex,
        tls,
    };
    let what = if executor.is_some() { "Remote Execution" } else { "Remote Cache" };
    match RemoteCache::connect(&opts) {
        Ok(r) => Ok(Some(r)),
        Err(e) if args.remote_local_fallback => {
            eprintln!("WARNING: {what}: {e:#}; building locally (--remote_local_fallback)");
            Ok(None)
        }
        Err(e) => Err(CliError::new(
            e.context(format!("cannot use the {} (--remote_local_fallback builds locally instead)", what.to_ascii_lowercase())),
            REMOTE_ERROR,
        )),
    }
}

/// `--subcommands` takes Bazel's values: true, pretty_print (the same here), false.
fn parse_subcommands(s: &str) -> Result<bool, String> {
    match s {
        "pretty_print" => Ok(true),
        other => super::parse_bool(other),
    }
}

impl BuildOptions {
    /// For `run`, `test` and `push`, which read what they build: `--remote_download_outputs=minimal`
    /// still downloads the requested targets' outputs (and the test results), as `toplevel`.
    pub fn download_what_runs(&mut self) {
        if self.remote_download_outputs == DownloadOutputs::Minimal {
            self.remote_download_outputs = DownloadOutputs::Toplevel;
        }
    }

    /// How progress is shown.
    pub fn progress(&self) -> ProgressOptions {
        let rate = if self.show_progress_rate_limit.is_finite() && self.show_progress_rate_limit > 0.0 {
            Duration::from_secs_f64(self.show_progress_rate_limit)
        } else {
            Duration::ZERO
        };
        ProgressOptions { show_progress: self.show_progress, rate_limit: rate, subcommands: self.subcommands }
    }

    /// Opens the `--build_event_*_file`s, if asked, and posts the stream's `started` event.
    pub fn build_events(&self, command: &str, patterns: &[String]) -> CliResult<Option<BuildEventStream>> {
        let args: Vec<String> = std::env::args().skip(1).collect();
        BuildEventStream::open(self.build_event_json_file.as_deref(), self.build_event_text_file.as_deref(), command, patterns, &args)
            .map_err(CliError::bad_command_line)
    }
}

/// Ends the build event stream (if any) with the command's exit code, and warns if it could
/// not be written.
pub fn finish_build_events<T>(bep: Option<BuildEventStream>, result: &CliResult<T>, summary: &[String]) {
    let Some(bep) = bep else { return };
    let code = match result {
        Ok(_) => super::exit::SUCCESS,
        Err(e) => e.exit_code,
    };
    if let Some(e) = bep.finish(code, super::command_elapsed(), summary) {
        eprintln!("WARNING: could not write the build event file: {e}");
    }
}

/// Bazel's warning for a build of no targets (`bazel build` with no patterns, or
/// `bazel build $(changed_targets)` with an empty list): a correct request that builds
/// nothing and succeeds (Bazel 4.2.3: exit 0).
pub fn warn_no_targets(command: &str) {
    eprintln!(
        "WARNING: Usage: ocib {command} <options> <targets>.\nInvoke `ocib help {command}` for full description of usage and options.\n\
         Your request is correct, but requested an empty set of targets. Nothing will be built."
    );
}

/// A size as `--disk_cache_max_size` takes it: bytes, or a number with K, M, G or T (powers of
/// 1024, as Bazel's byte sizes; `KB`/`KiB` spellings too).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (number, unit) = t.split_at(digits_end);
    let number: u64 =
        number.parse().map_err(|_| format!("'{text}' is not a size: expected a number of bytes, optionally with K, M, G or T"))?;
    let shift = match unit.to_ascii_uppercase().trim_end_matches('B').trim_end_matches('I') {
        "" => 0,
        "K" => 10,
        "M" => 20,
        "G" => 30,
        "T" => 40,
        _ => return Err(format!("'{text}' is not a size: unknown unit '{unit}' (expected K, M, G or T)")),
    };
    number.checked_mul(1u64 << shift).ok_or_else(|| format!("'{text}' is too large"))
}

/// `--disk_cache_max_size` at the end of a command: evicts least recently used cache entries
/// until the cache fits, unless another ocib command is using it (then the last one to finish
/// evicts). Never fails the command: a cache that cannot be trimmed is only reported.
pub fn collect_garbage(executor: Executor<'_>, opts: &BuildOptions) {
    if opts.disk_cache_max_size == 0 {
        return;
    }
    let dir = cache_dir(opts);
    let Executor { cache, .. } = executor;
    match cache.collect_garbage(opts.disk_cache_max_size, false) {
        Ok(Gc::Done(report)) => {
            if report.records_evicted + report.files_evicted > 0 {
                eprintln!(
                    "INFO: Disk cache over its limit of {}: evicted {} action records and {} files ({} → {}).",
                    human_size(opts.disk_cache_max_size),
                    report.records_evicted,
                    report.files_evicted,
                    human_size(report.size_before),
                    human_size(report.size_after)
                );
            }
        }
        Ok(Gc::Busy) => eprintln!("INFO: Disk cache eviction deferred: another ocib command is using {}.", dir.display()),
        Err(e) => eprintln!("WARNING: could not trim the disk cache at {}: {e}", dir.display()),
    }
}

/// `1.5 GiB`, `340 MiB`, `12 KiB`, `100 B`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value < 10.0 { format!("{value:.1} {}", UNITS[unit]) } else { format!("{value:.0} {}", UNITS[unit]) }
}

/// Everything `build`-like commands share: the workspace, what the patterns name, and the
/// analysis of those targets.
pub struct Prepared {
    pub ws: Arc<Workspace>,
    /// Errors were reported while expanding the patterns (`--keep_going`).
    pub reported_errors: bool,
    /// Never dropped: the loaded packages live until the process exits, which frees them at
    /// once; freeing them one by one took about 14 % of a no-op build of 1,000 services.
    pub loader: std::mem::ManuallyDrop<Loader>,
    pub labels: Vec<Label>,
}

pub fn cache_dir(args: &BuildOptions) -> PathBuf {
    args.disk_cache.clone().unwrap_or_else(crate::exec::default_cache_dir)
}

pub fn config(args: &BuildOptions) -> Config {
    Config {
        stamp: args.stamp,
        compilation_mode: args.compilation_mode.clone(),
        defines: args
            .define
            .iter()
            .map(|d| d.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).unwrap_or((d.clone(), String::new())))
            .collect(),
        settings: args
            .build_setting
            .iter()
            .map(|s| {
                // `//pkg:flag=value`, or `//pkg:flag` alone for a boolean set to true.
                let (label, value) = s.split_once('=').unwrap_or((s.as_str(), "True"));
                let label = Label::parse_absolute(label).map(|l| l.to_string()).unwrap_or_else(|_| label.to_owned());
                let value = match value {
                    "true" => "True",
                    "false" => "False",
                    v => v,
                };
                (label, value.to_owned())
            })
            .collect(),
        ..Config::default()
    }
}

/// Loads the workspace and expands the patterns (wildcards skip `manual` targets, as
/// `bazel build` does). Under `--keep_going` a pattern that fails is reported and skipped.
pub fn prepare(cwd: &Path, patterns: &[String], keep_going: bool, tests_only: bool) -> CliResult<Prepared> {
    let _phase = super::profile::phase("load");
    let (ws, loader) = open_with_loader(cwd)?;
    prepare_in(ws, loader, cwd, patterns, keep_going, tests_only)
}

/// The workspace at `cwd` and its loader, whose packages come from the persistent load cache
/// when their inputs did not change (`load::cache`; written after analysis, see
/// [`build_with_events`]), which also records what a build answer depends on.
fn open_with_loader(cwd: &Path) -> CliResult<(Arc<Workspace>, Loader)> {
    let ws = super::open_workspace(cwd)?;
    let kinds = &crate::rules::registry().kinds;
    let loader = Loader::new(ws.clone(), kinds).with_load_cache(kinds);
    Ok((ws, loader))
}

/// [`prepare`] with a workspace already open and its loader.
fn prepare_in(
    ws: Arc<Workspace>,
    loader: Loader,
    cwd: &Path,
    patterns: &[String],
    keep_going: bool,
    tests_only: bool,
) -> CliResult<Prepared> {
    let cwd_pkg = ws.package_of_dir(cwd);
    let engine = QueryEngine::new(&loader, cwd_pkg.clone(), keep_going);
    let mut selected: BTreeSet<Label> = BTreeSet::new();
    for text in patterns {
        let signed = SignedPattern::parse(text, &cwd_pkg, &|r| ws.map_repo(r)).map_err(CliError::bad_command_line)?;
        let wildcard = matches!(signed.pattern, TargetPattern::Package { .. } | TargetPattern::Recursive { .. });
        let body = if signed.negative { &text[1..] } else { text.as_str() };
        let labels = match engine.pattern(body) {
            Ok(l) => l,
            Err(e) => {
                let e = anyhow!(e.message).context(format!("Skipping '{text}'"));
                if keep_going {
                    super::error::report(&e);
                    continue;
                }
                return Err(CliError::build_failed(e));
            }
        };
        for label in labels {
            if signed.negative {
                selected.remove(&label);
                continue;
            }
            if wildcard || tests_only {
                let Ok(pkg) = loader.package(&label.package_id()) else { continue };
                let Some(crate::graph::TargetRef::Rule(rule)) = pkg.target(&label.name) else {
                    if !tests_only {
                        selected.insert(label);
                    }
                    continue;
                };
                if wildcard && rule.tags().iter().any(|t| t == "manual") {
                    continue;
                }
                if tests_only && !rule.is_test() {
                    continue;
                }
            }
            selected.insert(label);
        }
    }
    let errors = engine.errors.into_inner().unwrap_or_default();
    for e in &errors {
        super::error::report(&anyhow!(e.clone()));
    }
    Ok(Prepared {
        ws,
        reported_errors: !errors.is_empty(),
        loader: std::mem::ManuallyDrop::new(loader),
        labels: selected.into_iter().collect(),
    })
}

/// The files `build` produces for a target: its default outputs, plus requested groups.
pub fn wanted_files(target: &ConfiguredTarget, output_groups: &str) -> Vec<Artifact> {
    let (replace, groups): (bool, Vec<&str>) = {
        let groups: Vec<&str> = output_groups.split(',').filter(|g| !g.is_empty()).collect();
        let replace = !groups.is_empty() && groups.iter().all(|g| !g.starts_with('+'));
        (replace, groups.iter().map(|g| g.trim_start_matches('+')).collect())
    };
    let mut files = if replace { vec![] } else { target.providers.files.clone() };
    if !replace {
        files.extend(target.providers.executable.iter().cloned());
        // Bazel builds an executable's runfiles with it (`--build_runfile_links`): a Starlark
        // executable's runfiles tree must be complete for `ocib run`.
        if target.providers.runfiles_tree && target.providers.executable.is_some() {
            files.extend(target.providers.runfiles.iter().filter(|r| !r.is_source()).cloned());
        }
    }
    for g in groups {
        files.extend(target.providers.output_groups.get(g).into_iter().flatten().cloned());
    }
    let mut seen = BTreeSet::new();
    files.retain(|f| seen.insert(f.exec_path.clone()));
    files
}

/// What building a target for `ocib run`/`ocib push` needs besides its default outputs: the
/// image to load or push.
pub fn run_files(target: &ConfiguredTarget) -> Vec<Artifact> {
    let mut files = Vec::new();
    {
        match &target.providers.run {
            Some(crate::analysis::RunAction::LoadImage { layout, repo_tags, loader }) => {
                files.extend([layout.clone(), repo_tags.clone()]);
                files.extend(loader.iter().cloned());
            }
            Some(crate::analysis::RunAction::Push { layout, repository_file, remote_tags, .. }) => {
                files.push(layout.clone());
                files.extend(repository_file.iter().cloned());
                files.extend(remote_tags.iter().cloned());
            }
            None => {}
        }
    }
    files
}

/// How a derived file is shown to the user: through the `ocib-bin` link.
pub fn display_path(a: &Artifact, root: &Path) -> String {
    if let Some(rest) = a.exec_path.strip_prefix("ocib-out/bin/") {
        return format!("ocib-bin/{rest}");
    }
    match &a.kind {
        crate::exec::ArtifactKind::Source(p) => {
            p.strip_prefix(root).map(|r| r.display().to_string()).unwrap_or_else(|_| p.display().to_string())
        }
        crate::exec::ArtifactKind::Derived => a.exec_path.clone(),
    }
}

pub fn run(args: BuildArgs, cwd: &Path) -> CliResult {
    if args.patterns.is_empty() {
        warn_no_targets("build");
    }
    let started_ns = crate::load::cache::now_ns();
    let storing = build_answer::eligible(&args.opts);
    let load_phase = super::profile::phase("load");
    let (ws, loader) = open_with_loader(cwd)?;
    // An unchanged build answers from its stored result (see `build_answer`).
    if storing && build_answer::replay(&args, cwd, &ws, &loader)? {
        std::mem::forget(loader);
        return Ok(());
    }
    let mut bep = args.opts.build_events("build", &args.patterns)?;
    let mut summary = Vec::new();
    let result = (|| {
        let prepared = prepare_in(ws, loader, cwd, &args.patterns, args.opts.common.keep_going, false)?;
        drop(load_phase);
        if let Some(bep) = bep.as_mut() {
            bep.pattern_expanded(&args.patterns, &prepared.labels);
        }
        let mut answer = None;
        let slot = (storing && !prepared.reported_errors).then_some(&mut answer);
        let built = build_with_answer(&args.opts, &prepared, bep.as_mut(), &mut summary, slot, started_ns);
        if let (Ok(_), Some(answer)) = (&built, answer)
            && let Some((stable, _)) = build_answer::stable_status(&prepared.ws.root, &args.opts)
        {
            let key = build_answer::key(&args, &format!("{:?}", prepared.ws.package_of_dir(cwd)), &stable);
            prepared.loader.store_answer(&key, &answer.encode());
        }
        built
    })();
    finish_build_events(bep, &result, &summary);
    result.map(|_| ())
}

/// Analyzes and builds `prepared.labels`; prints the summary. Returns the configured targets
/// that built.
pub fn build(args: &BuildOptions, prepared: &Prepared) -> CliResult<Vec<Arc<ConfiguredTarget>>> {
    build_with_events(args, prepared, None, &mut Vec::new())
}

/// The test size Bazel reports for a target (`None` for a non-test).
fn test_size(prepared: &Prepared, label: &Label) -> Option<String> {
    let pkg = prepared.loader.package(&label.package_id()).ok()?;
    let Some(crate::graph::TargetRef::Rule(rule)) = pkg.target(&label.name) else { return None };
    if !rule.is_test() {
        return None;
    }
    Some(match rule.attr("size") {
        Some(crate::graph::AttrValue::String(s)) if !s.is_empty() => s,
        _ => "medium".to_owned(),
    })
}

/// Like [`build`], reporting to the build event stream `bep` and leaving Bazel's closing
/// lines in `summary` (also on failure).
pub fn build_with_events(
    args: &BuildOptions,
    prepared: &Prepared,
    bep: Option<&mut BuildEventStream>,
    summary: &mut Vec<String>,
) -> CliResult<Vec<Arc<ConfiguredTarget>>> {
    build_with_answer(args, prepared, bep, summary, None, 0)
}

/// [`build_with_events`], filling `answer` with what a replay of a clean build needs (left
/// `None` when it cannot be stored); `started_ns`: when the command started.
fn build_with_answer(
    args: &BuildOptions,
    prepared: &Prepared,
    mut bep: Option<&mut BuildEventStream>,
    summary: &mut Vec<String>,
    answer: Option<&mut Option<build_answer::Answer>>,
    started_ns: i64,
) -> CliResult<Vec<Arc<ConfiguredTarget>>> {
    let cache_dir = cache_dir(args);
    let config = config(args);
    if let Some(bep) = bep.as_deref_mut() {
        bep.configuration(&config.compilation_mode, &format!("{config:?}"));
    }
    let analysis_phase = super::profile::phase("analysis");
    // Never dropped, as the loader (see [`Prepared::loader`]).
    let mut analysis =
        std::mem::ManuallyDrop::new(Analysis::new(&prepared.loader, &crate::rules::registry().analyzers, config, cache_dir.clone()));
    let mut targets = Vec::new();
    let mut analysis_failed = false;
    for label in &prepared.labels {
        match analysis.analyze(label) {
            Ok(t) => {
                if let Some(bep) = bep.as_deref_mut() {
                    bep.target_configured(label, &t.kind, test_size(prepared, label).as_deref());
                }
                targets.push(t)
            }
            Err(e) => {
                analysis_failed = true;
                let failed = super::error::analysis_failed(label, e);
                if !args.common.keep_going {
                    return Err(CliError::build_failed(failed));
                }
                super::error::report(&failed);
            }
        }
    }
    let noun = |n: usize| if n == 1 { "target" } else { "targets" };
    drop(analysis_phase);
    // Every package the command needs is loaded by now.
    prepared.loader.save_load_cache();
    eprintln!("INFO: Analyzed {} {}.", targets.len(), noun(targets.len()));
    eprintln!("INFO: Found {} {}...", targets.len(), noun(targets.len()));
    if !args.build {
        // Bazel's `--nobuild`: the targets were found and analyzed, and nothing ran.
        return if analysis_failed {
            Err(CliError::build_failed(anyhow!("Build did NOT complete successfully, 0 total actions")))
        } else {
            eprintln!("INFO: Build completed successfully, 0 total actions");
            Ok(targets)
        };
    }
    let root = prepared.ws.root.clone();
    let base = OutputBase::open(&root)?;
    // The status always has the built-in keys (rules with stamp = 1 read them even without
    // --stamp); the status command runs only when stamping.
    let status = {
        let cmd = (args.stamp && !args.workspace_status_command.is_empty()).then_some(args.workspace_status_command.as_str());
        Some(crate::stamp::compute(&root, cmd, &args.embed_label).and_then(|s| base.write_status(&s).map(|_| s))?)
    };
    if let (Some(bep), Some(status)) = (bep.as_deref_mut(), status.as_ref()) {
        bep.workspace_status(status);
    }
    process::install_interrupt_handler();
    let opts = ExecOptions { jobs: args.jobs.unwrap_or_else(|| default_jobs(args)), keep_going: args.common.keep_going };
    let remote = remote_cache(args)?;
    let reporter = Reporter::start(args.progress());
    let executor =
        Executor::new(&base, &cache_dir, status, opts)?.with_observer(super::profile::observer(reporter.clone())).with_remote(remote);
    // `ocib build` of an oci_load/oci_push target builds its image too (what `run` needs).
    let wanted: Vec<Artifact> = targets
        .iter()
        .flat_map(|t| wanted_files(t, &args.output_groups).into_iter().chain(run_files(t)))
        .filter(|a| !a.is_source())
        .collect();
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
        collect_garbage(executor, args);
    }
    // One line per failed action (Bazel's), before the summary that ends the command.
    for f in &report.failures {
        report_action_failure(f, args.verbose_failures);
    }
    *summary = summary_lines(&report, super::command_elapsed());
    if report.interrupted {
        return Err(CliError::interrupted(anyhow!("build interrupted")));
    }
    let failed_owners: BTreeSet<&Label> = report.failures.iter().map(|f| &f.owner).collect();
    let list_outputs = targets.len() <= args.show_result;
    let mut lines = Vec::new();
    for t in &targets {
        let files = wanted_files(t, &args.output_groups);
        let success = !failed_owners.contains(&t.label);
        if let Some(bep) = bep.as_deref_mut() {
            bep.target_completed(&t.label, success, &files, None);
        }
        if !success || !list_outputs {
            continue;
        }
        if files.is_empty() {
            lines.push(format!("Target {} up-to-date (nothing to build)", t.label));
        } else {
            lines.push(format!("Target {} up-to-date:", t.label));
            lines.extend(files.iter().map(|f| format!("  {}", display_path(f, &root))));
        }
    }
    if !list_outputs && failed_owners.is_empty() {
        lines.push(format!(
            "INFO: {} targets up-to-date (--show_result={} lists the outputs of at most that many)",
            targets.len(),
            args.show_result
        ));
    }
    for line in lines.iter().chain(summary.iter()) {
        eprintln!("{line}");
    }
    let total = format!("{} total action{}", report.total, if report.total == 1 { "" } else { "s" });
    if report.failures.is_empty() && !analysis_failed {
        eprintln!("INFO: Build completed successfully, {total}");
        if let Some(slot) = answer
            && let Some(files) = build_answer::Answer::files_of(&analysis.actions, &report, &root, started_ns)
        {
            *slot = Some(build_answer::Answer { targets: targets.len(), actions: report.total, lines, files });
        }
        Ok(targets)
    } else if report.remote_error {
        // Bazel's exit code when remote execution or caching failed the build.
        Err(CliError::new(anyhow!("Build did NOT complete successfully, {total}"), REMOTE_ERROR))
    } else {
        Err(CliError::build_failed(anyhow!("Build did NOT complete successfully, {total}")))
    }
}

/// Prints a failed action: `ERROR: <target> failed: <mnemonic> <target>: <why>`, with the
/// command's working directory and environment under `--verbose_failures` (as Bazel's).
pub fn report_action_failure(f: &crate::exec::Failure, verbose: bool) {
    let mut message = format!("{} failed: {} {}: {}", f.owner, f.mnemonic, f.owner, f.message);
    if verbose && let Some(command) = &f.command {
        message.push_str(&format!("\n{}", command.to_shell()));
    }
    super::error::report(&anyhow!(message));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_timeout_takes_seconds_or_a_unit() {
        assert_eq!(parse_seconds("60"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_seconds("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_seconds("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_seconds("1.5"), Ok(Duration::from_millis(1500)));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("soon").is_err());
        assert!(parse_seconds("").is_err());
    }
}
