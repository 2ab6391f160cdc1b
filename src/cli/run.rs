//! `ocib run TARGET [-- ARGS]`: builds the target, then runs it. Images (`oci_tarball`,
//! `oci_load`) are loaded into the container engine, streamed without a tarball on disk.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use super::build::{BuildOptions, build, prepare};
use anyhow::anyhow;

use super::{CliError, CliResult, exit};
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

pub fn run(args: RunArgs, cwd: &Path) -> CliResult {
    let prepared = prepare(cwd, std::slice::from_ref(&args.target), false, false)?;
    if prepared.labels.len() != 1 {
        return Err(CliError::bad_command_line(anyhow!(
            "'ocib run' needs exactly one target; '{}' names {}",
            args.target,
            prepared.labels.len()
        )));
    }
    let targets = build(&args.opts, &prepared)?;
    let Some(target) = targets.first() else { return Err(CliError::code(exit::BUILD_FAILED)) };
    let root = &prepared.ws.root;
    match &target.providers.run {
        Some(RunAction::LoadImage { layout, repo_tags, loader }) => {
            let layout_dir = root.join(&layout.exec_path);
            let tags_file = root.join(&repo_tags.exec_path);
            let loader = loader.as_ref().map(|l| root.join(&l.exec_path).display().to_string());
            load_image(&layout_dir, &tags_file, loader.as_deref()).map_err(|e| CliError::build_failed(e.context(format!("loading {}", target.label))))
        }
        Some(push @ RunAction::Push { .. }) => match push_target(push, root, &args.args) {
            Ok(summary) => {
                println!("{summary}");
                Ok(())
            }
            Err(e) => Err(CliError::build_failed(e.context(format!("pushing {}", target.label)))),
        },
        None => run_executable(target, root, cwd, &args.args),
    }
}

/// Runs the target's executable; its exit code becomes ocib's.
fn run_executable(target: &ConfiguredTarget, root: &Path, cwd: &Path, args: &[String]) -> CliResult {
    let Some(exe) = &target.providers.executable else {
        return Err(CliError::bad_command_line(anyhow!("cannot run target {}: not executable", target.label)));
    };
    let path = root.join(&exe.exec_path);
    eprintln!("INFO: Running {} {}", super::build::display_path(exe, root), args.join(" "));
    let status = Command::new(&path)
        .args(args)
        .current_dir(root)
        .env("BUILD_WORKSPACE_DIRECTORY", root)
        .env("BUILD_WORKING_DIRECTORY", cwd)
        .status();
    let status = status.map_err(|e| anyhow!("running {}: {e}", path.display()))?;
    // The program said why it failed, if it did; ocib adds nothing and passes its code on.
    match status.code() {
        Some(0) => Ok(()),
        code => Err(CliError::code(code.unwrap_or(exit::BUILD_FAILED))),
    }
}

/// The workspace status the build wrote (for `{KEY}` in repositories and tags).
fn read_status(root: &Path) -> std::collections::BTreeMap<String, String> {
    let mut map = std::collections::BTreeMap::new();
    for name in ["volatile-status.txt", "stable-status.txt"] {
        if let Ok(text) = std::fs::read_to_string(root.join("ocib-out").join(name)) {
            map.extend(crate::stamp::parse(&text));
        }
    }
    map
}

/// Pushes an `oci_push` target: `-r/--repository` overrides the repository, `-t/--tag` adds
/// tags (before those of `remote_tags`); with `--stamp`, `{KEY}` in both is filled from the
/// workspace status. Returns the summary line.
pub fn push_target(push: &RunAction, root: &Path, run_args: &[String]) -> anyhow::Result<String> {
    let RunAction::Push { layout, repository, repository_file, remote_tags, stamp } = push else {
        anyhow::bail!("internal: not a push");
    };
    let mut repo_flag = None;
    let mut tags: Vec<String> = Vec::new();
    let mut insecure = false;
    let mut it = run_args.iter();
    while let Some(a) = it.next() {
        let value = |it: &mut std::slice::Iter<String>, a: &str, long: &str| -> anyhow::Result<String> {
            match a.strip_prefix(&format!("{long}=")) {
                Some(v) => Ok(v.to_owned()),
                None => it.next().cloned().ok_or_else(|| anyhow::anyhow!("{a} needs a value")),
            }
        };
        if a == "-r" || a == "--repository" || a.starts_with("--repository=") {
            repo_flag = Some(value(&mut it, a, "--repository")?);
        } else if a == "-t" || a == "--tag" || a.starts_with("--tag=") {
            tags.push(value(&mut it, a, "--tag")?);
        } else if a == "--insecure" {
            insecure = true;
        } else {
            anyhow::bail!("unknown push argument '{a}' (known: --repository/-r, --tag/-t, --insecure)");
        }
    }
    let repository = match (repo_flag, repository, repository_file) {
        (Some(r), _, _) => r,
        (None, Some(r), _) => r.clone(),
        (None, None, Some(f)) => std::fs::read_to_string(root.join(&f.exec_path))?.trim_end_matches('\n').to_owned(),
        (None, None, None) => anyhow::bail!("repository not set (give `repository`, `repository_file` or --repository)"),
    };
    if let Some(f) = remote_tags {
        tags.extend(crate::oci::tarball::parse_repo_tags(&std::fs::read_to_string(root.join(&f.exec_path))?));
    }
    let (repository, tags) = if *stamp {
        let status = read_status(root);
        let fill = |s: &str| -> anyhow::Result<String> {
            crate::stamp::substitute_single_braces(s, &|k| status.get(k).cloned())
                .ok_or_else(|| anyhow::anyhow!("'{s}' names a key the workspace status does not have"))
        };
        (fill(&repository)?, tags.iter().map(|t| fill(t)).collect::<anyhow::Result<Vec<_>>>()?)
    } else {
        (repository, tags)
    };
    // --insecure: plain http to this registry (localhost always is, like Docker).
    let insecure: Vec<String> = if insecure { vec![crate::oci::push::check_repository(&repository)?.registry] } else { vec![] };
    let client = crate::oci::registry::Client::new(&insecure)?;
    let result = crate::oci::push::push(&client, &root.join(&layout.exec_path), &repository, &tags)?;
    let tag_text = if result.tags.is_empty() { String::new() } else { format!(" tags: {}", result.tags.join(" ")) };
    Ok(format!(
        "{}@{}{tag_text} ({} blobs uploaded, {} mounted, {} already present)",
        result.repository, result.digest, result.blobs_uploaded, result.blobs_mounted, result.blobs_present
    ))
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
