//! `ocib run TARGET [-- ARGS]`: builds the target, then runs it. Images (`oci_tarball`,
//! `oci_load`) are loaded into the container engine, streamed without a tarball on disk.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use super::build::{BuildOptions, build, prepare};
use super::exit;
use crate::analysis::{ConfiguredTarget, RunAction};
use crate::oci::tarball::{Layout, parse_repo_tags, write_docker_tarball};

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
            match load_image(&layout_dir, &tags_file, loader.as_deref()) {
                Ok(()) => exit::SUCCESS,
                Err(e) => {
                    eprintln!("ERROR: loading {}: {e:#}", target.label);
                    exit::BUILD_FAILED
                }
            }
        }
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

/// The first of docker, podman, nerdctl on PATH.
fn default_loader() -> Option<String> {
    let path = std::env::var_os("PATH")?;
    ["docker", "podman", "nerdctl"]
        .into_iter()
        .find(|name| std::env::split_paths(&path).any(|d| d.join(name).is_file()))
        .map(str::to_owned)
}

/// Loads an image: if the engine already has it (same image ID, i.e. config digest), only the
/// tags are added and no layer is sent; otherwise the `docker load` tar is streamed into the
/// engine without being written to disk.
pub fn load_image(layout_dir: &Path, tags_file: &Path, loader: Option<&str>) -> anyhow::Result<()> {
    let layout = Layout::read(layout_dir)?;
    let tags = parse_repo_tags(&std::fs::read_to_string(tags_file)?);
    let loader = match loader {
        Some(l) => l.to_owned(),
        None => default_loader().ok_or_else(|| anyhow::anyhow!("no container engine CLI found: install docker, podman or nerdctl, or set `loader`"))?,
    };
    let has_image = Command::new(&loader)
        .args(["image", "inspect", "--format", "{{.Id}}", &layout.config_digest])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == layout.config_digest)
        .unwrap_or(false);
    if has_image {
        for tag in &tags {
            let status = Command::new(&loader).args(["tag", &layout.config_digest, tag]).status()?;
            anyhow::ensure!(status.success(), "'{loader} tag {} {tag}' failed", layout.config_digest);
        }
        eprintln!("INFO: {loader} already has image {}; tagged {} (no layers sent)", layout.config_digest, tags.join(" "));
        return Ok(());
    }
    let mut child = Command::new(&loader).arg("load").stdin(Stdio::piped()).spawn()?;
    let result = match child.stdin.take() {
        Some(stdin) => {
            let mut w = std::io::BufWriter::with_capacity(1 << 20, stdin);
            write_docker_tarball(&layout, &tags, &mut w).and_then(|_| w.flush().map_err(anyhow::Error::from))
        }
        None => Err(anyhow::anyhow!("no stdin for '{loader} load'")),
    };
    let status = child.wait()?;
    result?;
    anyhow::ensure!(status.success(), "'{loader} load' failed ({status})");
    Ok(())
}
