//! `ocib run TARGET [-- ARGS]`: builds the target, then runs it: an executable is started, an
//! image (`oci_tarball`, `oci_load`) is loaded into the container engine and an `oci_push` is
//! pushed, by their rule set's run-time half (`rules/oci/oci_load.rs`, `rules/oci/oci_push.rs`).

use std::path::Path;
use std::process::Command;

use super::build::{BuildOptions, build, prepare};
use super::exit;
use crate::analysis::{ConfiguredTarget, RunAction};
use crate::rules::oci::{oci_load, oci_push};

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub opts: BuildOptions,
    /// The target to run.
    pub target: String,
    /// Arguments for the program (after `--`).
    #[arg(last = true)]
    pub args: Vec<String>,
}

pub fn run(args: RunArgs, cwd: &Path) -> i32 {
    let prepared = match prepare(cwd, std::slice::from_ref(&args.target), false, false) {
        Ok(p) => p,
        Err(code) => return code,
    };
    if prepared.labels.len() != 1 {
        eprintln!("ERROR: 'ocib run' needs exactly one target; '{}' names {}", args.target, prepared.labels.len());
        return exit::BAD_COMMAND_LINE;
    }
    let targets = match build(&args.opts, &prepared) {
        Ok(t) => t,
        Err(code) => return code,
    };
    let Some(target) = targets.first() else { return exit::BUILD_FAILED };
    let root = &prepared.ws.root;
    match &target.providers.run {
        Some(RunAction::LoadImage { layout, repo_tags, loader }) => {
            let layout_dir = root.join(&layout.exec_path);
            let tags_file = root.join(&repo_tags.exec_path);
            let loader = loader.as_ref().map(|l| root.join(&l.exec_path).display().to_string());
            match oci_load::load_image(&layout_dir, &tags_file, loader.as_deref()) {
                Ok(()) => exit::SUCCESS,
                Err(e) => {
                    eprintln!("ERROR: loading {}: {e:#}", target.label);
                    exit::BUILD_FAILED
                }
            }
        }
        Some(push @ RunAction::Push { .. }) => match oci_push::push_target(push, root, &args.args) {
            Ok(summary) => {
                println!("{summary}");
                exit::SUCCESS
            }
            Err(e) => {
                eprintln!("ERROR: pushing {}: {e:#}", target.label);
                exit::BUILD_FAILED
            }
        },
        None => run_executable(target, root, cwd, &args.args),
    }
}

fn run_executable(target: &ConfiguredTarget, root: &Path, cwd: &Path, args: &[String]) -> i32 {
    let Some(exe) = &target.providers.executable else {
        eprintln!("ERROR: cannot run target {}: not executable", target.label);
        return exit::BAD_COMMAND_LINE;
    };
    let path = root.join(&exe.exec_path);
    eprintln!("INFO: Running {} {}", super::build::display_path(exe, root), args.join(" "));
    let status = Command::new(&path)
        .args(args)
        .current_dir(root)
        .env("BUILD_WORKSPACE_DIRECTORY", root)
        .env("BUILD_WORKING_DIRECTORY", cwd)
        .status();
    match status {
        Ok(s) => s.code().unwrap_or(exit::BUILD_FAILED),
        Err(e) => {
            eprintln!("ERROR: running {}: {e}", path.display());
            exit::BUILD_FAILED
        }
    }
}
