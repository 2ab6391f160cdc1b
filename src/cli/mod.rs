//! The command line: clap definitions, `.bazelrc` expansion, and dispatch to one file per
//! command. Exit codes follow Bazel's.

mod action;
mod bazel_flags;
mod bep;
mod build;
mod build_answer;
mod clean;
mod cquery;
pub mod error;
mod fetch;
mod profile;
mod progress;
mod push;
mod query;
pub mod rc;
mod run;
mod test;

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{ArgAction, CommandFactory, Parser, Subcommand};

use anyhow::anyhow;

use crate::workspace::find_root;
pub use error::{CliError, CliResult};

/// Bazel's exit codes (see [`CliError`] for which failure gets which).
pub mod exit {
    /// Success.
    pub const SUCCESS: i32 = 0;
    /// The build failed (loading, analysis or an action).
    pub const BUILD_FAILED: i32 = 1;
    /// The command line, a `.bazelrc` or the workspace is wrong.
    pub const BAD_COMMAND_LINE: i32 = 2;
    /// Partly done: tests failed, or errors skipped under `--keep_going`.
    pub const PARTIAL: i32 = 3;
    /// Testing was requested but no test target matched.
    pub const NO_TESTS: i32 = 4;
    /// A query could not be evaluated, or `cquery` could not analyze a target.
    pub const ANALYSIS_OR_QUERY_FAILED: i32 = 7;
    /// The build was interrupted (Ctrl-C).
    pub const INTERRUPTED: i32 = 8;
}

#[derive(Parser, Debug)]
#[command(
    name = "ocib",
    version,
    // Bazel: a flag given twice (rc file, then command line) takes the later value.
    args_override_self = true,
    about = "Build, test and publish container images from Bazel BUILD files, without Bazel",
    long_about = "ocib evaluates a monorepo's BUILD/BUILD.bazel files and .bzl macros (rules_go, rules_pkg, \
                  rules_oci, container_structure_test) and answers Bazel's commands on them.\n\n\
                  Flags follow Bazel: --flag=value, --[no]flag, and .bazelrc with --config=NAME."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Build targets: `ocib build //...`.
    Build(build::BuildArgs),
    /// Build and run tests: `ocib test //...`.
    Test(test::TestArgs),
    /// Build and run one target: executables run, images load into docker/podman/nerdctl.
    Run(run::RunArgs),
    /// Query the target graph: `ocib query 'kind(oci_push, //...)'`.
    Query(query::QueryArgs),
    /// Build and push every `oci_push` target of the patterns: `ocib push --stamp //...`.
    Push(push::PushArgs),
    /// Query the configured graph: `ocib cquery //x:y --output=files`.
    Cquery(cquery::CqueryArgs),
    /// Remove outputs (`--expunge`: the cache too).
    Clean(clean::CleanArgs),
    /// Fetch external repositories ahead of a build: `ocib fetch //...`, `ocib fetch --all`.
    Fetch(fetch::FetchArgs),
    /// Print facts about the workspace: `ocib info`, `ocib info bazel-bin`.
    Info(InfoArgs),
    /// Print a shell completion script: `source <(ocib completion bash)`.
    Completion(CompletionArgs),
    /// Summarise a `--profile` file: phase times, critical path, slowest actions.
    AnalyzeProfile(profile::AnalyzeProfileArgs),
}

/// `ocib completion SHELL`.
#[derive(clap::Args, Debug)]
pub struct CompletionArgs {
    /// The shell to complete in.
    pub shell: clap_complete::Shell,
}

#[derive(clap::Args, Debug)]
pub struct CommonArgs {
    /// Expand the options of `NAME` sections of .bazelrc (handled before parsing).
    #[arg(long = "config", value_name = "NAME")]
    pub config: Vec<String>,
    /// Continue past errors, reporting what could be done.
    #[arg(long = "keep_going", short = 'k', num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set, value_parser = parse_bool, default_value = "false")]
    pub keep_going: bool,
    /// Colour in output: yes, no, auto.
    #[arg(long = "color", default_value = "auto")]
    pub color: String,
    /// Most Starlark steps (function calls and loop iterations) one BUILD, .bzl, WORKSPACE or
    /// MODULE.bazel file may take; 0: no limit. Bazel's `--max_computation_steps` is accepted.
    #[arg(long = "starlark_max_steps", visible_alias = "max_computation_steps", value_name = "N", default_value_t = crate::load::EvalLimits::default().max_steps)]
    pub starlark_max_steps: u64,
    /// Most Starlark heap (MiB) the evaluation of one file may use; 0: no limit.
    #[arg(long = "starlark_max_heap_mb", value_name = "MIB", default_value_t = crate::load::EvalLimits::default().max_heap_bytes >> 20)]
    pub starlark_max_heap_mb: usize,
    /// Evaluate MODULE.bazel (Bazel's `--enable_bzlmod`); default as the Bazel version in
    /// `.bazelversion` (off for 6, on from 7).
    #[arg(long = "enable_bzlmod", visible_alias = "experimental_enable_bzlmod", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set, value_parser = parse_bool)]
    pub enable_bzlmod: Option<bool>,
    /// Evaluate WORKSPACE, or WORKSPACE.bzlmod when Bzlmod is on (Bazel's
    /// `--enable_workspace`); default as the Bazel version in `.bazelversion` (on up to 7).
    #[arg(long = "enable_workspace", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = ArgAction::Set, value_parser = parse_bool)]
    pub enable_workspace: Option<bool>,
}

impl CommonArgs {
    /// The Starlark evaluation limits these options ask for.
    fn eval_limits(&self) -> crate::load::EvalLimits {
        crate::load::EvalLimits { max_steps: self.starlark_max_steps, max_heap_bytes: self.starlark_max_heap_mb.saturating_mul(1 << 20) }
    }
}

impl Command {
    fn common(&self) -> Option<&CommonArgs> {
        Some(match self {
            Command::Completion(_) | Command::AnalyzeProfile(_) => return None,
            Command::Build(b) => &b.opts.common,
            Command::Test(t) => &t.opts.common,
            Command::Run(r) => &r.opts.common,
            Command::Push(p) => &p.opts.common,
            Command::Cquery(c) => &c.opts.common,
            Command::Query(q) => &q.common,
            Command::Clean(c) => &c.common,
            Command::Fetch(f) => &f.common,
            Command::Info(i) => &i.common,
        })
    }
}

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Keys to print (`ocib help info` lists them); one key prints its value alone, as Bazel does.
    #[arg(value_name = "KEY", long_help = info_keys_help())]
    pub keys: Vec<String>,
}

/// The `info` keys ocib answers, with what each means (Bazel's names; only keys that have a
/// meaning for ocib: no `server_pid`, ocib runs no server).
pub const INFO_KEYS: &[(&str, &str)] = &[
    ("bazel-bin", "where built files are (the ocib-bin link points here)"),
    ("bazel-genfiles", "as bazel-bin (Bazel's old name for the same directory)"),
    ("bazel-testlogs", "where test logs and test.xml files are (the ocib-testlogs link)"),
    ("execution_root", "the directory actions' paths are relative to (the workspace)"),
    ("output_base", "the directory of this workspace's outputs"),
    ("output_path", "the directory of derived files"),
    ("package_path", "where packages are found"),
    ("release", "ocib's version"),
    ("workspace", "the workspace root"),
];

fn info_keys_help() -> String {
    let keys: Vec<String> = INFO_KEYS.iter().map(|(k, what)| format!("  {k}: {what}")).collect();
    format!("Keys to print; with none, all of them as `key: value`, with one, its value alone.\n\n{}", keys.join("\n"))
}

pub fn parse_bool(s: &str) -> Result<bool, String> {
    match s {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        other => Err(format!("'{other}' is not a boolean (use true or false)")),
    }
}

/// Startup options that come before the command.
struct Startup {
    rc: rc::RcOptions,
}

fn split_startup(args: &[String]) -> Result<(Startup, Option<String>, Vec<String>), String> {
    let mut rc = rc::RcOptions { system_rc: true, workspace_rc: true, home_rc: true, extra: Vec::new() };
    let mut ignored = Vec::new();
    let mut i = 0;
    while i < args.len() && args[i].starts_with('-') {
        let a = &args[i];
        match a.as_str() {
            "-h" | "--help" | "-V" | "--version" => return Ok((Startup { rc }, None, args.to_vec())),
            "--system_rc" => rc.system_rc = true,
            "--workspace_rc" => rc.workspace_rc = true,
            "--home_rc" => rc.home_rc = true,
            "--nosystem_rc" => rc.system_rc = false,
            "--noworkspace_rc" => rc.workspace_rc = false,
            "--nohome_rc" => rc.home_rc = false,
            "--ignore_all_rc_files" => {
                rc.system_rc = false;
                rc.workspace_rc = false;
                rc.home_rc = false;
            }
            _ if a.starts_with("--bazelrc=") => rc.extra.push(PathBuf::from(&a["--bazelrc=".len()..])),
            _ => {
                let name = flag_name(a).unwrap_or(a.as_str());
                let Some(takes_value) = ignored_startup_option(name) else { return Err(format!("unknown startup option '{a}'")) };
                let mut dropped = a.clone();
                if takes_value && !a.contains('=') {
                    i += 1;
                    let value = args.get(i).ok_or_else(|| format!("startup option '{a}' needs a value"))?;
                    dropped = format!("{dropped} {value}");
                }
                ignored.push(dropped);
            }
        }
        i += 1;
    }
    if !ignored.is_empty() {
        eprintln!("WARNING: ignoring startup options that ocib does not implement: {}", ignored.join(" "));
    }
    let command = args.get(i).cloned();
    Ok((Startup { rc }, command, args.get(i + 1..).map(<[String]>::to_vec).unwrap_or_default()))
}

/// Bazel's startup options about its server and output tree, which ocib (no server, outputs
/// in `<workspace>/ocib-out`) accepts and ignores so that `bazel` can be swapped for `ocib`
/// in scripts; `Some(true)` when the option takes a value. From `bazel help startup_options`
/// (Bazel 4.2.3 and 7).
fn ignored_startup_option(name: &str) -> Option<bool> {
    const WITH_VALUE: &[&str] = &[
        "connect_timeout_secs",
        "digest_function",
        "failure_detail_out",
        "host_jvm_args",
        "host_jvm_profile",
        "install_base",
        "io_nice_level",
        "local_startup_timeout_secs",
        "macos_qos_class",
        "max_idle_secs",
        "output_base",
        "output_user_root",
        "server_javabase",
        "server_jvm_out",
    ];
    const BOOLEAN: &[&str] = &[
        "autodetect_server_javabase",
        "batch",
        "batch_cpu_scheduling",
        "block_for_lock",
        "client_debug",
        "expand_configs_in_place",
        "experimental_oom_more_eagerly",
        "fatal_event_bus_exceptions",
        "host_jvm_debug",
        "idle_server_tasks",
        "shutdown_on_low_sys_mem",
        "unlimit_coredumps",
        "watchfs",
        "write_command_log",
    ];
    if WITH_VALUE.contains(&name) {
        return Some(true);
    }
    let positive = name.strip_prefix("no").unwrap_or(name);
    (BOOLEAN.contains(&name) || BOOLEAN.contains(&positive)).then_some(false)
}

/// Long and short flag names the command accepts.
fn known_flags(command: &str) -> (Vec<String>, Vec<char>) {
    let cmd = Cli::command();
    let Some(sub) = cmd.get_subcommands().find(|s| s.get_name() == command) else { return (vec![], vec![]) };
    let longs = sub.get_arguments().flat_map(|a| a.get_long_and_visible_aliases().unwrap_or_default()).map(str::to_owned).collect();
    let shorts = sub.get_arguments().filter_map(|a| a.get_short()).collect();
    (longs, shorts)
}

fn flag_name(arg: &str) -> Option<&str> {
    let body = arg.strip_prefix("--")?;
    Some(body.split_once('=').map(|(n, _)| n).unwrap_or(body))
}

/// Rewrites `--noflag` into `--flag=false` for known boolean flags, and drops flags ocib does
/// not implement together with their values ([`bazel_flags`] says which of Bazel's options
/// take one): from rc files with one warning, from the command line with one warning if Bazel
/// has the option, else as an error (as Bazel's "Unrecognized option").
fn normalize(command: &str, args: Vec<(String, String)>) -> Result<Vec<(String, String)>, String> {
    let (longs, shorts) = known_flags(command);
    let mut out = Vec::new();
    let mut ignored_rc = Vec::new();
    let mut ignored_cli = Vec::new();
    let mut it = args.into_iter().peekable();
    while let Some((arg, source)) = it.next() {
        if arg == "--" {
            out.push((arg, source));
            out.extend(it);
            break;
        }
        // clap's own `-h`/`--help` (not among a subcommand's arguments before it is built).
        if arg == "--help" || arg == "-h" {
            out.push((arg, source));
            continue;
        }
        // `--//pkg:flag=value` (and `--no//pkg:flag`) set a user build setting, for the
        // commands that build; the others (query) accept and ignore them, as Bazel does.
        let setting = match arg.strip_prefix("--") {
            Some(r) if r.starts_with("//") || r.starts_with('@') => Some(r.to_owned()),
            Some(r) => r.strip_prefix("no").filter(|r| r.starts_with("//") || r.starts_with('@')).map(|r| format!("{r}=false")),
            None => None,
        };
        if let Some(setting) = setting {
            if longs.iter().any(|l| l == "build_setting") {
                out.push((format!("--build_setting={setting}"), source));
            }
            continue;
        }
        // Bazel's expansion options for `--remote_download_outputs`.
        let download = match arg.as_str() {
            "--remote_download_all" => Some("all"),
            "--remote_download_toplevel" => Some("toplevel"),
            "--remote_download_minimal" => Some("minimal"),
            _ => None,
        };
        if let Some(mode) = download
            && longs.iter().any(|l| l == "remote_download_outputs")
        {
            out.push((format!("--remote_download_outputs={mode}"), source));
            continue;
        }
        if let Some(name) = flag_name(&arg) {
            if longs.iter().any(|l| l == name) {
                out.push((arg, source));
                continue;
            }
            if let Some(positive) = name.strip_prefix("no")
                && longs.iter().any(|l| l == positive)
                && !arg.contains('=')
            {
                out.push((format!("--{positive}=false"), source));
                continue;
            }
            let from_rc = source != "command line";
            let kind = bazel_flags::kind(name);
            if kind.is_none() && !from_rc {
                return Err(format!("Unrecognized option: {arg}"));
            }
            // Whether the next word is this option's value: Bazel says so, or (for an option
            // Bazel's table here lacks) the next word of the same rc line is not an option.
            let takes_value = !arg.contains('=')
                && match kind {
                    Some(bazel_flags::FlagKind::Bool) => false,
                    Some(_) => true,
                    None => it.peek().is_some_and(|(next, next_source)| *next_source == source && !next.starts_with('-')),
                };
            let mut dropped = arg;
            if takes_value && let Some((value, _)) = it.next_if(|(next, _)| next != "--") {
                dropped = format!("{dropped} {value}");
            }
            if from_rc {
                ignored_rc.push(dropped)
            } else {
                ignored_cli.push(dropped)
            }
            continue;
        }
        // `ocib query //... -//x/...` unquoted: a word starting `-//`, `-@` or `-:` is a query
        // expression's `except` and a pattern (Bazel joins the words), never an option. Given
        // to clap with a leading space so that it is a positional word; the query lexer skips
        // the space.
        if (command == "query" || command == "cquery")
            && source == "command line"
            && arg.strip_prefix('-').is_some_and(|rest| rest.starts_with(['/', '@', ':']))
        {
            out.push((format!(" {arg}"), source));
            continue;
        }
        if let Some(short) = arg.strip_prefix('-').filter(|s| s.len() == 1).and_then(|s| s.chars().next())
            && !shorts.contains(&short)
            && source == "command line"
            && !arg.starts_with("--")
            && arg != "-"
        {
            // A lone `-x` is a negative pattern in Bazel only after `--`; treat unknown short flags as errors.
            return Err(format!("Unrecognized option: {arg}"));
        }
        out.push((arg, source));
    }
    if !ignored_rc.is_empty() {
        eprintln!("WARNING: ignoring options from .bazelrc that ocib does not implement: {}", ignored_rc.join(" "));
    }
    if !ignored_cli.is_empty() {
        eprintln!("WARNING: ignoring options that ocib does not implement: {}", ignored_cli.join(" "));
    }
    Ok(out)
}

/// Stack of the thread that runs a command. Query parsing and evaluation recurse once per
/// nesting level (up to [`crate::query::parse::MAX_NESTING`]), which in a debug build takes
/// about 8 KiB a level: more than the main thread's usual 8 MiB. Reserved, not committed,
/// until used.
const COMMAND_STACK_SIZE: usize = 64 << 20;

/// Removes `--announce_rc` (`--noannounce_rc`, `--announce_rc=BOOL`) from the options and
/// says whether the last one asks to announce. Handled here, before clap, because it is about
/// the rc expansion itself.
fn take_announce_rc(args: &mut Vec<(String, String)>) -> Option<bool> {
    let mut announce = None;
    let end = args.iter().position(|(a, _)| a == "--").unwrap_or(args.len());
    let mut i = 0;
    let mut end = end;
    while i < end {
        let value = match args[i].0.as_str() {
            "--announce_rc" => Some(true),
            "--noannounce_rc" => Some(false),
            a => a.strip_prefix("--announce_rc=").and_then(|v| parse_bool(v).ok()),
        };
        if let Some(v) = value {
            announce = Some(v);
            args.remove(i);
            end -= 1;
        } else {
            i += 1;
        }
    }
    announce
}

/// The `file:line` of the rc option clap rejected, if an rc file (not the command line) gave
/// it: clap names the flag and the bad value; the last option that gave that value to that
/// flag is the one that counted.
fn rc_source_of_error(e: &clap::Error, args: &[(String, String)]) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    let text = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(v)) => v.first().cloned(),
        _ => None,
    };
    let flag = text(ContextKind::InvalidArg)?;
    let flag = flag.split([' ', '=', '[']).next().unwrap_or_default().to_owned();
    let value = text(ContextKind::InvalidValue);
    let matches = |i: usize| {
        let (arg, _) = &args[i];
        let named = arg == &flag || arg.starts_with(&format!("{flag}="));
        let prev_named = i > 0 && args[i - 1].0 == flag;
        match &value {
            Some(v) => (named && arg.strip_prefix(&format!("{flag}=")) == Some(v.as_str())) || (prev_named && arg == v),
            None => named,
        }
    };
    let i = (0..args.len()).rev().find(|&i| matches(i))?;
    let source = &args[i].1;
    (source != "command line").then(|| source.clone())
}

/// Runs ocib with the given arguments (without the program name) and returns the exit code.
/// This is the one place a command's terminating error is printed.
pub fn run(args: Vec<OsString>) -> i32 {
    let thread = std::thread::Builder::new().name("ocib".into()).stack_size(COMMAND_STACK_SIZE).spawn(move || run_command(args));
    let result = match thread {
        Ok(handle) => handle.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
        Err(e) => Err(CliError::build_failed(anyhow!("cannot start the command thread: {e}"))),
    };
    error::finish(result)
}

/// When the command started, for Bazel's `INFO: Elapsed time`.
static COMMAND_STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

/// Time since the command started.
fn command_elapsed() -> std::time::Duration {
    COMMAND_STARTED.get_or_init(std::time::Instant::now).elapsed()
}

fn run_command(args: Vec<OsString>) -> CliResult {
    COMMAND_STARTED.get_or_init(std::time::Instant::now);
    let args: Vec<String> = args.into_iter().map(|a| a.to_string_lossy().into_owned()).collect();
    // `ocib action` is what a remote worker runs for an in-process action: no workspace, no
    // rc files, no flags of its own beyond its outputs (hidden from help).
    if args.first().map(String::as_str) == Some("action") {
        let cwd = std::env::current_dir().map_err(|e| CliError::bad_command_line(anyhow!("cannot read the current directory: {e}")))?;
        return action::run(&args[1..], &cwd);
    }
    let (startup, command, rest) = split_startup(&args).map_err(|e| CliError::bad_command_line(anyhow!(e)))?;
    let Some(command) = command else {
        // No command: let clap print help (or version) and pick the exit code.
        return match Cli::try_parse_from(std::iter::once("ocib".to_owned()).chain(rest)) {
            Ok(_) => Ok(()),
            Err(e) => {
                let _ = e.print();
                if e.use_stderr() { Err(CliError::code(exit::BAD_COMMAND_LINE)) } else { Ok(()) }
            }
        };
    };
    let cwd = std::env::current_dir().map_err(|e| CliError::bad_command_line(anyhow!("cannot read the current directory: {e}")))?;
    let root = find_root(&cwd);
    let rc_files = rc::RcFiles::read(root.as_deref(), &startup.rc).map_err(CliError::bad_command_line)?;
    let mut combined = rc_files.options_for(&command);
    combined.extend(rest.into_iter().map(|a| (a, "command line".to_owned())));
    let announce = take_announce_rc(&mut combined).unwrap_or(false);
    if announce {
        for line in rc_files.announce(&command) {
            eprintln!("{line}");
        }
    }
    let (mut expanded, notes) = rc_files.expand_configs_announced(&command, combined).map_err(CliError::bad_command_line)?;
    if announce {
        notes.iter().for_each(|n| eprintln!("{n}"));
    }
    // Inside a --config it comes too late to announce anything; accept it all the same.
    take_announce_rc(&mut expanded);
    let normalized = normalize(&command, expanded).map_err(|e| CliError::bad_command_line(anyhow!(e)))?;
    let words = normalized.iter().map(|(a, _)| a.clone());
    let cli = match Cli::try_parse_from(["ocib".to_owned(), command.clone()].into_iter().chain(words)) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { exit::BAD_COMMAND_LINE } else { exit::SUCCESS };
            return match rc_source_of_error(&e, &normalized) {
                Some(source) => {
                    let rendered = e.render().to_string();
                    let rendered = rendered.strip_prefix("error: ").unwrap_or(&rendered).trim_end();
                    Err(CliError::new(anyhow!("{source}: {rendered}"), code))
                }
                None => {
                    // clap's own rendering (usage, suggestions); help and version exit 0.
                    let _ = e.print();
                    if code == exit::SUCCESS { Ok(()) } else { Err(CliError::code(code)) }
                }
            };
        }
    };
    if let Some(common) = cli.command.common() {
        crate::load::set_eval_limits(common.eval_limits());
        crate::load::external::set_repo_flags(crate::load::external::RepoFlags {
            enable_bzlmod: common.enable_bzlmod,
            enable_workspace: common.enable_workspace,
        });
    }
    // Go modules are stored in the cache `--disk_cache` names (fetched once per cache).
    let disk_cache = match &cli.command {
        Command::Build(b) => b.opts.disk_cache.clone(),
        Command::Test(t) => t.opts.disk_cache.clone(),
        Command::Run(r) => r.opts.disk_cache.clone(),
        Command::Push(p) => p.opts.disk_cache.clone(),
        Command::Cquery(c) => c.opts.disk_cache.clone(),
        Command::Fetch(f) => f.disk_cache.clone(),
        _ => None,
    };
    crate::workspace::gomod::set_cache_dir(disk_cache.unwrap_or_else(crate::exec::default_cache_dir));
    let profile = match &cli.command {
        Command::Build(b) => b.opts.profile.as_deref(),
        Command::Test(t) => t.opts.profile.as_deref(),
        Command::Run(r) => r.opts.profile.as_deref(),
        Command::Push(p) => p.opts.profile.as_deref(),
        Command::Cquery(c) => c.opts.profile.as_deref(),
        _ => None,
    };
    if let Some(path) = profile {
        profile::start(&cwd.join(path), *COMMAND_STARTED.get_or_init(std::time::Instant::now));
    }
    let result = match cli.command {
        Command::Query(q) => query::run(q, &cwd),
        Command::Info(i) => info(i, &cwd),
        Command::Build(b) => build::run(b, &cwd),
        Command::Cquery(c) => cquery::run(c, &cwd),
        Command::Clean(c) => clean::run(c, &cwd),
        Command::Fetch(f) => fetch::run(f, &cwd),
        Command::Run(r) => run::run(r, &cwd),
        Command::Push(p) => push::run(p, &cwd),
        Command::Test(t) => test::run(t, &cwd),
        Command::Completion(c) => {
            // Generated from the clap definitions above, so it knows every command and flag.
            clap_complete::generate(c.shell, &mut Cli::command(), "ocib", &mut std::io::stdout());
            Ok(())
        }
        Command::AnalyzeProfile(a) => profile::run(a),
    };
    profile::finish();
    result
}

/// Opens the workspace around `cwd` and prints its warnings. An error is a command-line
/// error, as Bazel's outside a workspace.
fn open_workspace(cwd: &std::path::Path) -> CliResult<std::sync::Arc<crate::workspace::Workspace>> {
    let ws = crate::load::external::open_workspace(cwd, &crate::rules::registry().kinds).map_err(CliError::bad_command_line)?;
    for w in &ws.warnings {
        eprintln!("WARNING: {w}");
    }
    Ok(std::sync::Arc::new(ws))
}

/// A query expression given as words (joined with spaces, as Bazel does); a syntax error is
/// a command-line error.
fn parse_expression(words: &[String]) -> CliResult<crate::query::parse::Expr> {
    let words: Vec<&str> = words.iter().map(|w| w.trim_start()).collect();
    crate::query::parse::parse(&words.join(" ")).map_err(CliError::bad_command_line)
}

/// The value of `info` key `key` (one of [`INFO_KEYS`]) for the workspace at `root`.
fn info_value(key: &str, root: &std::path::Path) -> Option<String> {
    // Paths as `exec::OutputBase` lays them out: `<workspace>/ocib-out/{bin,testlogs}`, exec
    // paths relative to the workspace.
    let output_base = root.join("ocib-out");
    let path = |p: std::path::PathBuf| Some(p.display().to_string());
    match key {
        "bazel-bin" | "bazel-genfiles" => path(output_base.join("bin")),
        "bazel-testlogs" => path(output_base.join("testlogs")),
        "execution_root" | "workspace" => path(root.to_path_buf()),
        "output_base" | "output_path" => path(output_base),
        "package_path" => Some("%workspace%".to_owned()),
        "release" => Some(format!("ocib {}", env!("CARGO_PKG_VERSION"))),
        _ => None,
    }
}

/// `ocib info [KEY...]`: Bazel prints `key: value` lines for all keys or several, and the
/// bare value for one key; an unknown key is a command-line error.
fn info(args: InfoArgs, cwd: &std::path::Path) -> CliResult {
    let Some(root) = find_root(cwd) else {
        return Err(CliError::bad_command_line(anyhow!(
            "'ocib info' must be run inside a workspace (a directory with MODULE.bazel, REPO.bazel, WORKSPACE or WORKSPACE.bazel)"
        )));
    };
    let keys: Vec<&str> =
        if args.keys.is_empty() { INFO_KEYS.iter().map(|(k, _)| *k).collect() } else { args.keys.iter().map(String::as_str).collect() };
    let mut lines = Vec::new();
    for key in &keys {
        let value = info_value(key, &root).ok_or_else(|| CliError::bad_command_line(anyhow!("unknown key: '{key}'")))?;
        lines.push(if args.keys.len() == 1 { value } else { format!("{key}: {value}") });
    }
    for line in lines {
        println!("{line}");
    }
    Ok(())
}
