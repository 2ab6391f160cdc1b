//! Loading an image layout into a local container engine (`docker`, `podman` or `nerdctl`,
//! which share the `image inspect`, `tag` and `load` commands): the one loader behind
//! `ocib run` of an `oci_load`/`oci_tarball` target and the container_structure_test docker
//! driver.
//!
//! An engine that already has the image (same image ID, i.e. config digest, as `docker image
//! inspect` reports it) only gets the tags, so an unchanged image sends no layer; otherwise the
//! `docker load` tarball ([`super::tarball::write_docker_tarball`]) is streamed into `load`
//! without being written to disk.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, anyhow, bail, ensure};

use super::layout::Layout;
use super::tarball::write_docker_tarball;

/// The engines ocib looks for on `PATH`, in order (rules_oci's `oci_load` runs `docker`; podman
/// and nerdctl take the same `load`).
pub const ENGINES: [&str; 3] = ["docker", "podman", "nerdctl"];

/// The first of [`ENGINES`] on `PATH`.
pub fn default_engine() -> Option<String> {
    let path = std::env::var_os("PATH")?;
    ENGINES.into_iter().find(|name| std::env::split_paths(&path).any(|d| d.join(name).is_file())).map(str::to_owned)
}

/// What [`load`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loaded {
    /// The engine had the image: only the tags were set, no layer was sent.
    Tagged,
    /// The image was streamed into `<engine> load`.
    Loaded,
}

/// How `<engine> load` reports what it loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Report {
    /// Its output goes to ocib's own stdout/stderr (`ocib run`: the user sees "Loaded image").
    Show,
    /// Its output is kept, and its stderr is part of the error if it fails (a test action).
    Quiet,
}

/// Loads the image in `layout` into `engine` under `tags`.
pub fn load(engine: &str, layout: &Layout, tags: &[String], report: Report) -> Result<Loaded> {
    let has_image = Command::new(engine)
        .args(["image", "inspect", "--format", "{{.Id}}", &layout.config_digest])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
        .map(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == layout.config_digest)
        .unwrap_or(false);
    if has_image {
        for tag in tags {
            let status = Command::new(engine)
                .args(["tag", &layout.config_digest, tag])
                .stdin(Stdio::null())
                .status()
                .with_context(|| format!("cannot run `{engine} tag`"))?;
            ensure!(status.success(), "'{engine} tag {} {tag}' failed ({status})", layout.config_digest);
        }
        return Ok(Loaded::Tagged);
    }
    let (stdout, stderr) = match report {
        Report::Show => (Stdio::inherit(), Stdio::inherit()),
        Report::Quiet => (Stdio::piped(), Stdio::piped()),
    };
    let mut child = Command::new(engine)
        .arg("load")
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("cannot run `{engine} load`"))?;
    let stdin = child.stdin.take().ok_or_else(|| anyhow!("no stdin for `{engine} load`"))?;
    // The tarball is written from a second thread while this one drains the engine's output,
    // so neither side can block the other on a full pipe.
    let (written, output) = std::thread::scope(|s| {
        let writer = s.spawn(move || -> Result<()> {
            let mut w = std::io::BufWriter::with_capacity(1 << 20, stdin);
            write_docker_tarball(layout, tags, &mut w)?;
            w.flush()?;
            Ok(())
        });
        let output = child.wait_with_output();
        let written = writer.join().unwrap_or_else(|_| Err(anyhow!("the tarball writer panicked")));
        (written, output)
    });
    let output = output.with_context(|| format!("waiting for `{engine} load`"))?;
    if !output.status.success() {
        bail!(
            "`{engine} load` of {} failed ({}){}",
            layout.dir.display(),
            output.status,
            match String::from_utf8_lossy(&output.stderr).trim() {
                "" => String::new(),
                text => format!(": {text}"),
            }
        );
    }
    written.with_context(|| format!("writing {} to `{engine} load`", layout.dir.display()))?;
    Ok(Loaded::Loaded)
}
