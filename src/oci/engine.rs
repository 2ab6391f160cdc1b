//! Loading an image layout into a local container engine (`docker`, `podman` or `nerdctl`,
//! which share the `image inspect`, `tag` and `load` commands): the one loader behind
//! `ocib run` of an `oci_load`/`oci_tarball` target and the container_structure_test docker
//! driver, and the one place the engine is chosen (`--container_engine`, else the first of
//! [`ENGINES`] on `PATH`).
//!
//! An engine that already has the image (same image ID, i.e. config digest, as `docker image
//! inspect` reports it) only gets the tags, so an unchanged image sends no layer; otherwise the
//! `docker load` tarball ([`super::tarball::write_docker_tarball`]) is streamed into `load`
//! without being written to disk. Into docker, the tarball leaves out the leading layers the
//! engine already holds for the image its tags name now (the same layers in the same order,
//! hence the same chain IDs, which `docker load` looks up before it reads a layer's file): a
//! reload after a change to the top layer sends that layer, not the whole image. If docker
//! refuses the shortened tarball, the whole one is sent.
//!
//! Into docker, when its client would talk to a local unix socket ([`docker_api::socket_path`])
//! and that socket answers, the inspect, tag and load go through the Docker Engine API on it
//! ([`super::docker_api`]) instead of starting the client for each (0.1–0.4 s apiece on a busy
//! machine: more than sending a small layer). Otherwise (podman, nerdctl, a `loader` script,
//! a tcp/ssh `DOCKER_HOST`, a docker context) the engine's client does it.

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, anyhow, bail, ensure};

use super::docker_api::{self, Client};
use super::layout::Layout;
use super::tarball::write_docker_tarball_without;

/// The engines ocib knows, in the order it looks for them on `PATH` (docker first: rules_oci's
/// `oci_load` and container-structure-test's docker driver run `docker`; podman and nerdctl
/// take the same commands).
pub const ENGINES: [&str; 3] = ["docker", "podman", "nerdctl"];

/// The first of [`ENGINES`] on `PATH`.
pub fn default_engine() -> Option<String> {
    first_on_path(&std::env::var_os("PATH")?)
}

/// The first of [`ENGINES`] found in any directory of `path` (docker anywhere on it beats
/// podman earlier on it: the order is the engines', not the directories').
fn first_on_path(path: &std::ffi::OsStr) -> Option<String> {
    ENGINES.into_iter().find(|name| std::env::split_paths(path).any(|d| d.join(name).is_file())).map(str::to_owned)
}

/// The engine to use: `requested` (`--container_engine`: one of [`ENGINES`]; empty or `auto`
/// means "detect"), else the first of [`ENGINES`] on `PATH`.
pub fn choose(requested: &str) -> Result<String> {
    match requested {
        "" | "auto" => default_engine()
            .ok_or_else(|| anyhow!("no container engine found on PATH: install docker, podman or nerdctl, or pass --container_engine")),
        name if ENGINES.contains(&name) => Ok(name.to_owned()),
        other => bail!("--container_engine={other}: expected one of {} (or auto)", ENGINES.join(", ")),
    }
}

/// Whether an image ID as `<engine> image inspect --format {{.Id}}` prints it names
/// `config_digest`: docker and nerdctl print `sha256:<hex>`, podman the bare hex.
fn same_image_id(inspected: &str, config_digest: &str) -> bool {
    let inspected = inspected.trim();
    !inspected.is_empty()
        && config_digest.strip_prefix("sha256:").unwrap_or(config_digest) == inspected.strip_prefix("sha256:").unwrap_or(inspected)
}

/// What [`load`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loaded {
    /// The engine had the image: only the tags were set, no layer was sent.
    Tagged,
    /// The image was streamed into `<engine> load`.
    Loaded,
    /// The image was streamed into `docker load` without the files of `omitted` of its
    /// `layers` layers, which the engine had.
    LoadedPartly {
        /// Layers left out.
        omitted: usize,
        /// Layers of the image.
        layers: usize,
    },
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
    if let Some((socket, client)) = docker_api_client(engine) {
        return load_through_api(&socket, client, layout, tags, report);
    }
    let known = inspect(engine, layout, tags);
    if known.iter().any(|(id, _)| same_image_id(id, &layout.config_digest)) {
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
    let omit = if is_docker(engine) { layers_engine_has(layout, &known) } else { HashSet::new() };
    if !omit.is_empty() {
        // Output kept: if docker refuses, the whole tarball follows and only its output counts.
        if let Ok(output) = stream_load(engine, layout, tags, Report::Quiet, &omit) {
            if report == Report::Show {
                let _ = std::io::stdout().write_all(&output);
            }
            let omitted = layout.layer_digests.iter().filter(|d| omit.contains(*d)).count();
            return Ok(Loaded::LoadedPartly { omitted, layers: layout.layer_digests.len() });
        }
    }
    stream_load(engine, layout, tags, report, &HashSet::new())?;
    Ok(Loaded::Loaded)
}

/// A connection to docker's API when `engine` is docker's client, named as [`choose`] names it
/// (a `loader` path may be any script), and the socket it would use answers.
fn docker_api_client(engine: &str) -> Option<(std::path::PathBuf, Client)> {
    if engine != "docker" {
        return None;
    }
    let socket = docker_api::socket_path()?;
    let client = Client::connect(&socket).ok()?;
    Some((socket, client))
}

/// [`load`] through docker's API on `socket`: the same steps as through the client (inspect
/// the config digest and the tags at once, tag only if docker has the image, else send the
/// tarball without the layers docker has, and the whole one if it refuses that).
fn load_through_api(socket: &Path, mut client: Client, layout: &Layout, tags: &[String], report: Report) -> Result<Loaded> {
    let names: Vec<&str> = std::iter::once(layout.config_digest.as_str()).chain(tags.iter().map(String::as_str)).collect();
    let known = client.inspect(&names);
    if known.iter().any(|(id, _)| same_image_id(id, &layout.config_digest)) {
        for tag in tags {
            client.tag(&layout.config_digest, tag)?;
        }
        return Ok(Loaded::Tagged);
    }
    let show = |text: &str| {
        if report == Report::Show {
            print!("{text}");
            let _ = std::io::stdout().flush();
        }
    };
    let omit = layers_engine_has(layout, &known);
    if !omit.is_empty() {
        // If docker refuses the shortened tarball, the whole one follows on a new connection.
        if let Ok(text) = client.load(|w| write_docker_tarball_without(layout, tags, w, &omit)) {
            show(&text);
            let omitted = layout.layer_digests.iter().filter(|d| omit.contains(*d)).count();
            return Ok(Loaded::LoadedPartly { omitted, layers: layout.layer_digests.len() });
        }
        client = Client::connect(socket)?;
    }
    let text = client
        .load(|w| write_docker_tarball_without(layout, tags, w, &HashSet::new()))
        .with_context(|| format!("loading {} into docker", layout.dir.display()))?;
    show(&text);
    Ok(Loaded::Loaded)
}

/// What the engine holds under the image's config digest and under each of `tags`: (image
/// ID, layer diff IDs) of each one found, from one `<engine> image inspect` of all of them
/// (a client start costs a few hundred milliseconds on a busy machine; the reload of a small
/// layer must not pay it twice). Names the engine lacks are left out (it prints the others
/// and fails), so an error just means "none of them".
fn inspect(engine: &str, layout: &Layout, tags: &[String]) -> Vec<(String, Vec<String>)> {
    let Ok(out) = Command::new(engine)
        .args(["image", "inspect", "--format", "{{.Id}} {{json .RootFS.Layers}}", &layout.config_digest])
        .args(tags)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .output()
    else {
        return Vec::new();
    };
    parse_inspected(&String::from_utf8_lossy(&out.stdout))
}

/// Lines of `{{.Id}} {{json .RootFS.Layers}}`; a line that does not parse is skipped.
fn parse_inspected(text: &str) -> Vec<(String, Vec<String>)> {
    text.lines()
        .filter_map(|line| {
            let (id, layers) = line.trim().split_once(' ')?;
            Some((id.to_owned(), serde_json::from_str::<Option<Vec<String>>>(layers).ok()?.unwrap_or_default()))
        })
        .collect()
}

/// Whether `engine` (a name or a path, as an `oci_load`'s `loader`) is docker's client.
fn is_docker(engine: &str) -> bool {
    std::path::Path::new(engine).file_name().is_some_and(|n| n == "docker")
}

/// The layers (blob digests) of `layout` that the engine holds in the same position of an
/// image it has (`known`, from [`inspect`]): the longest common prefix of that image's layer
/// diff IDs and ours (a layer is found by its chain ID, which depends on the layers below it).
/// A layer that also appears further up, past the prefix, is not among them.
fn layers_engine_has(layout: &Layout, known: &[(String, Vec<String>)]) -> HashSet<String> {
    let ours: Vec<&str> = layout.config["rootfs"]["diff_ids"].as_array().into_iter().flatten().filter_map(|d| d.as_str()).collect();
    if ours.len() != layout.layer_digests.len() {
        return HashSet::new();
    }
    let prefix = known.iter().map(|(_, theirs)| ours.iter().zip(theirs).take_while(|(a, b)| **a == b.as_str()).count()).max().unwrap_or(0);
    let needed: HashSet<&String> = layout.layer_digests[prefix..].iter().collect();
    layout.layer_digests[..prefix].iter().filter(|d| !needed.contains(d)).cloned().collect()
}

/// Streams the `docker load` tarball (without the layers in `omit`) into `<engine> load`;
/// returns what it printed on stdout when `report` is [`Report::Quiet`].
fn stream_load(engine: &str, layout: &Layout, tags: &[String], report: Report, omit: &HashSet<String>) -> Result<Vec<u8>> {
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
            write_docker_tarball_without(layout, tags, &mut w, omit)?;
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
    Ok(output.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_engine_is_taken_and_an_unknown_one_refused() {
        assert_eq!(choose("podman").unwrap(), "podman");
        assert_eq!(choose("nerdctl").unwrap(), "nerdctl");
        let err = choose("dockr").unwrap_err().to_string();
        assert!(err.contains("--container_engine=dockr") && err.contains("docker, podman, nerdctl"), "{err}");
    }

    #[test]
    fn detection_prefers_docker_then_podman_then_nerdctl() {
        let dirs: Vec<tempfile::TempDir> = (0..2).map(|_| tempfile::tempdir().unwrap()).collect();
        let path = std::env::join_paths(dirs.iter().map(|d| d.path())).unwrap();
        assert_eq!(first_on_path(&path), None);
        std::fs::write(dirs[0].path().join("nerdctl"), "").unwrap();
        assert_eq!(first_on_path(&path).as_deref(), Some("nerdctl"));
        std::fs::write(dirs[0].path().join("podman"), "").unwrap();
        assert_eq!(first_on_path(&path).as_deref(), Some("podman"));
        std::fs::write(dirs[1].path().join("docker"), "").unwrap();
        assert_eq!(first_on_path(&path).as_deref(), Some("docker"), "docker wins even later on PATH");
    }

    #[test]
    fn one_inspect_of_several_names_is_read_line_by_line() {
        let a = format!("sha256:{}", "aa".repeat(32));
        let b = format!("sha256:{}", "bb".repeat(32));
        let text = format!("{a} [\"{b}\",\"{a}\"]\n{b} null\nnot json\n");
        assert_eq!(parse_inspected(&text), vec![(a.clone(), vec![b.clone(), a.clone()]), (b, vec![])]);
        assert!(parse_inspected("").is_empty());
    }

    #[test]
    fn podman_image_ids_match_without_the_algorithm() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        assert!(same_image_id(&format!("{digest}\n"), &digest));
        assert!(same_image_id(&"ab".repeat(32), &digest));
        assert!(!same_image_id(&"cd".repeat(32), &digest));
        assert!(!same_image_id("", &digest));
    }
}
