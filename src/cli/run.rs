//! `ocib run TARGET [-- ARGS]`: builds the target, then runs it: an executable is started, an
//! image (`oci_tarball`, `oci_load`) is loaded into the container engine and an `oci_push` is
//! pushed, by their rule set's run-time half (`rules/oci/oci_load.rs`, `rules/oci/oci_push.rs`).

use std::path::Path;
use std::process::Command;

use super::build::{BuildOptions, build, prepare};
use anyhow::anyhow;

use super::{CliError, CliResult, exit};
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

pub fn run(mut args: RunArgs, cwd: &Path) -> CliResult {
    args.opts.download_what_runs();
    if !matches!(args.opts.container_engine.as_str(), "" | "auto") {
        crate::oci::engine::choose(&args.opts.container_engine).map_err(CliError::bad_command_line)?;
    }
    let prepared = prepare(cwd, std::slice::from_ref(&args.target), false, false)?;
    if prepared.labels.len() != 1 {
        return Err(CliError::bad_command_line(anyhow!(
            "'ocib run' needs exactly one target; '{}' names {}",
            args.target,
            prepared.labels.len()
        )));
    }
    let targets = build(&args.opts, &prepared)?;
    if !args.opts.build {
        return Ok(());
    }
    let Some(target) = targets.first() else { return Err(CliError::code(exit::BUILD_FAILED)) };
    let root = &prepared.ws.root;
    match &target.providers.run {
        Some(RunAction::LoadImage { layout, repo_tags, loader }) => {
            let layout_dir = root.join(&layout.exec_path);
            let tags_file = root.join(&repo_tags.exec_path);
            let loader = loader.as_ref().map(|l| root.join(&l.exec_path).display().to_string());
            oci_load::load_image(&layout_dir, &tags_file, loader.as_deref(), &args.opts.container_engine)
                .map_err(|e| CliError::build_failed(e.context(format!("loading {}", target.label))))
        }
        Some(push @ RunAction::Push { .. }) => match oci_push::push_target(push, root, &args.args) {
            Ok(summary) => {
                println!("{summary}");
                Ok(())
            }
            Err(e) => Err(CliError::build_failed(e.context(format!("pushing {}", target.label)))),
        },
        None => run_executable(target, root, crate::rules::test::runfiles_workspace(&prepared.ws.name), cwd, &args.args),
    }
}

/// Runs the target's executable; its exit code becomes ocib's.
fn run_executable(target: &ConfiguredTarget, root: &Path, workspace_dir: &str, cwd: &Path, args: &[String]) -> CliResult {
    let Some(exe) = &target.providers.executable else {
        return Err(CliError::bad_command_line(anyhow!("cannot run target {}: not executable", target.label)));
    };
    let path = root.join(&exe.exec_path);
    // Starlark rules' executables find their runfiles by short path in a runfiles tree, as
    // under `bazel run`.
    let mut dir = root.to_path_buf();
    if target.providers.runfiles_tree {
        let tree = root.join(format!("{}.runfiles", exe.exec_path));
        let entries: Vec<(String, std::path::PathBuf)> = target
            .providers
            .runfiles
            .iter()
            .map(|r| {
                let real = match &r.kind {
                    crate::exec::ArtifactKind::Source(abs) => abs.clone(),
                    crate::exec::ArtifactKind::Derived => root.join(&r.exec_path),
                };
                (r.short_path().to_owned(), real)
            })
            .collect();
        crate::rules::test::make_runfiles_tree(&tree, workspace_dir, &entries).map_err(CliError::from)?;
        dir = tree.join(workspace_dir);
    }
    eprintln!("INFO: Running {} {}", super::build::display_path(exe, root), args.join(" "));
    let mut command = Command::new(&path);
    if target.providers.runfiles_tree {
        command.env("RUNFILES_DIR", dir.parent().unwrap_or(&dir));
    }
    let status = command.args(args).current_dir(&dir).env("BUILD_WORKSPACE_DIRECTORY", root).env("BUILD_WORKING_DIRECTORY", cwd).status();
    let status = status.map_err(|e| anyhow!("running {}: {e}", path.display()))?;
    // The program said why it failed, if it did; ocib adds nothing and passes its code on.
    match status.code() {
        Some(0) => Ok(()),
        code => Err(CliError::code(code.unwrap_or(exit::BUILD_FAILED))),
    }
}
