//! CST's docker driver (`pkg/drivers/docker_driver.go`) over the CLI of a container engine:
//! `docker`, `podman` or `nerdctl` (`--container_engine`; they share the commands used here).
//!
//! Command tests and setup steps run each in a new container with the entrypoint overridden to
//! `""`; setup containers are committed and the next step runs from that image. Files are read
//! from a created (never started) container with `docker cp <id>:<path> -`, the tar stream
//! giving mode, owner and type as CST sees them; metadata comes from `docker image inspect`.
//!
//! Differences from CST that do not change results: `globalEnvVars` are not committed into a new
//! image per test but passed as `-e` (docker merges them over the image env exactly as a commit
//! would), and file tests share one created container per image and run options instead of
//! creating one per test.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};

use super::backend::{Backend, FileInfo, ImageConfig, env_map};
use super::config::{ContainerRunOptions, EnvVar};
use super::expand::expand_env;
use super::filemode;

/// CST's placeholder command for containers that are created but never started.
const NOOP_COMMAND: &str = "NOOP_COMMAND_DO_NOT_RUN";

/// State shared by the drivers of one [`super::run`]: the image and the containers kept for
/// reading files (removed by [`Session::cleanup`]).
pub struct Session {
    /// The engine's CLI (`docker`, `podman`, `nerdctl`).
    engine: String,
    image: String,
    platform: String,
    file_containers: RefCell<HashMap<(String, Vec<String>), String>>,
}

impl Session {
    pub fn new(engine: &str, image: &str, platform: &str) -> Result<Session> {
        cli(engine, &["version", "--format", "{{.Server.Version}}"])
            .with_context(|| format!("the docker driver needs a working `{engine}` CLI and engine"))?;
        Ok(Session {
            engine: engine.to_owned(),
            image: image.to_owned(),
            platform: platform.to_owned(),
            file_containers: RefCell::new(HashMap::new()),
        })
    }

    pub fn driver(&self, opts: &ContainerRunOptions) -> Driver<'_> {
        Driver { session: self, current: self.image.clone(), global_env: Vec::new(), opts: opts.clone(), config_cache: None }
    }

    pub fn cleanup(self) {
        for id in self.file_containers.take().into_values() {
            let _ = self.cli(&["rm", "-f", &id]);
        }
    }

    /// Runs `<engine> <args>`: stdout on success, an error with the engine's stderr otherwise.
    fn cli<S: AsRef<std::ffi::OsStr>>(&self, args: &[S]) -> Result<Vec<u8>> {
        cli(&self.engine, args)
    }

    fn platform_args(&self) -> Vec<String> {
        if self.platform.is_empty() { vec![] } else { vec!["--platform".into(), self.platform.clone()] }
    }
}

pub struct Driver<'s> {
    session: &'s Session,
    /// The image the next container starts from (an intermediate image after setup steps).
    current: String,
    /// `globalEnvVars`, expanded against the image env.
    global_env: Vec<String>,
    opts: ContainerRunOptions,
    config_cache: Option<(String, ImageConfig)>,
}

impl Driver<'_> {
    /// CST's `hostConfig()`: capabilities (replacing the default set), binds, privileged.
    fn host_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if !self.opts.is_set() {
            return args;
        }
        if !self.opts.capabilities.is_empty() {
            args.extend(["--cap-drop".to_owned(), "ALL".to_owned()]);
            for c in &self.opts.capabilities {
                args.extend(["--cap-add".to_owned(), c.clone()]);
            }
        }
        for b in &self.opts.bind_mounts {
            args.extend(["-v".to_owned(), b.clone()]);
        }
        if self.opts.privileged {
            args.push("--privileged".to_owned());
        }
        args
    }

    fn image_env(&mut self) -> Result<BTreeMap<String, String>> {
        Ok(self.config()?.env)
    }

    /// CST's `processEnvVars`: `KEY=value` with `$VAR` expanded against the current image env.
    fn process_env_vars(&mut self, vars: &[EnvVar]) -> Result<Vec<String>> {
        if vars.is_empty() {
            return Ok(Vec::new());
        }
        let env = self.image_env()?;
        Ok(vars.iter().map(|v| format!("{}={}", v.key, expand_env(&v.value, &env))).collect())
    }

    fn create(&self, env: &[String], user: bool, tty: bool, command: &[String]) -> Result<String> {
        let mut args: Vec<String> = vec!["create".into()];
        args.extend(self.session.platform_args());
        args.extend(["--entrypoint".into(), String::new()]);
        for e in self.global_env.iter().chain(env) {
            args.extend(["-e".into(), e.clone()]);
        }
        if user && self.opts.is_set() && !self.opts.user.is_empty() {
            args.extend(["--user".into(), self.opts.user.clone()]);
        }
        if tty {
            args.push("-t".into());
        }
        args.extend(self.host_args());
        args.push(self.current.clone());
        args.extend(command.iter().cloned());
        let out = self.session.cli(&args).context("Error creating container")?;
        Ok(String::from_utf8_lossy(&out).trim().to_owned())
    }

    /// The container files are read from (created once per image and run options).
    fn file_container(&self) -> Result<String> {
        let key = (self.current.clone(), self.host_args());
        if let Some(id) = self.session.file_containers.borrow().get(&key) {
            return Ok(id.clone());
        }
        let mut args: Vec<String> = vec!["create".into()];
        args.extend(self.session.platform_args());
        args.extend(self.host_args());
        args.extend([self.current.clone(), NOOP_COMMAND.to_owned()]);
        let out = self.session.cli(&args).context("Error creating container")?;
        let id = String::from_utf8_lossy(&out).trim().to_owned();
        self.session.file_containers.borrow_mut().insert(key, id.clone());
        Ok(id)
    }

    /// `docker cp <container>:<path> -`: the tar stream of `path`.
    fn retrieve_tar(&self, path: &str) -> Result<Vec<u8>> {
        let id = self.file_container()?;
        self.session.cli(&["cp".to_owned(), format!("{id}:{path}"), "-".to_owned()]).context("Error retrieving file from container")
    }

    /// CST's `runAndCommit`.
    fn run_and_commit(&mut self, env: &[String], command: &[String]) -> Result<String> {
        let id = self.create(env, true, false, command)?;
        let result = (|| {
            self.session.cli(&["start", &id]).context("Error creating container")?;
            self.session.cli(&["wait", &id]).context("Error when waiting for container")?;
            let out = self.session.cli(&["commit", &id]).context("Error committing container")?;
            // The new image's ID is the last line (podman may print progress before it).
            let out = String::from_utf8_lossy(&out);
            out.lines()
                .map(str::trim)
                .rfind(|l| !l.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| anyhow!("Error committing container: no image ID"))
        })();
        let _ = self.session.cli(&["rm", "-f", &id]);
        result
    }
}

impl Backend for Driver<'_> {
    fn set_env(&mut self, vars: &[EnvVar]) -> Result<()> {
        self.global_env = self.process_env_vars(vars)?;
        Ok(())
    }

    fn setup(&mut self, vars: &[EnvVar], commands: &[Vec<String>]) -> Result<()> {
        let env = self.process_env_vars(vars)?;
        for command in commands {
            let image = self.run_and_commit(&env, command)?;
            // Each intermediate image is removed as soon as the next one exists; the last by
            // destroy(). `docker rmi` of a parent still referenced by a child only untags it.
            let previous = std::mem::replace(&mut self.current, image);
            if previous != self.session.image {
                let _ = self.session.cli(&["rmi", &previous]);
            }
        }
        Ok(())
    }

    fn process_command(&mut self, vars: &[EnvVar], command: &[String]) -> Result<(String, String, i64)> {
        let mut env: Vec<String> = vars.iter().map(|v| format!("{}={}", v.key, v.value)).collect();
        let mut tty = false;
        if self.opts.is_set() {
            // As in CST, run options replace the test's env vars.
            tty = self.opts.allocate_tty;
            env = run_option_env(&self.opts);
        }
        let id = self.create(&env, true, tty, command)?;
        let result = (|| {
            self.session.cli(&["start", &id]).context("Error creating container")?;
            let code = self.session.cli(&["wait", &id]).context("Error when waiting for container")?;
            let code: i64 = String::from_utf8_lossy(&code)
                .trim()
                .parse()
                .map_err(|e| anyhow!("Error when waiting for container: bad exit code: {e}"))?;
            let logs = Command::new(&self.session.engine)
                .args(["logs", &id])
                .stdin(Stdio::null())
                .output()
                .context("Error retrieving container logs")?;
            if !logs.status.success() {
                bail!("Error retrieving container logs: {}", String::from_utf8_lossy(&logs.stderr).trim());
            }
            Ok((String::from_utf8_lossy(&logs.stdout).into_owned(), String::from_utf8_lossy(&logs.stderr).into_owned(), code))
        })();
        let _ = self.session.cli(&["rm", "-f", &id]);
        result
    }

    fn stat_file(&mut self, target: &str) -> Result<FileInfo> {
        let tar = self.retrieve_tar(target)?;
        let base = go_path_base(target);
        for entry in tar_headers(&tar)? {
            if matches!(entry.typeflag, b'5' | b'0' | b'\0' | b'1' | b'2') && go_clean(&entry.name) == base {
                return Ok(entry.info());
            }
        }
        bail!("File {target} not found in image")
    }

    fn read_file(&mut self, target: &str) -> Result<Vec<u8>> {
        let mut target = target.to_owned();
        // CST follows the first symlink in the stream (recursively, by its link text).
        for _ in 0..40 {
            let tar = self.retrieve_tar(&target)?;
            let base = go_path_base(&target);
            let mut archive = tar::Archive::new(tar.as_slice());
            let mut follow = None;
            for entry in archive.entries().context("reading docker cp stream")? {
                let mut entry = entry.context("reading docker cp stream")?;
                let header = entry.header();
                let typeflag = header.entry_type().as_byte();
                let name = go_clean(&String::from_utf8_lossy(&entry.path_bytes()));
                match typeflag {
                    b'5' if name == base => {
                        bail!("Cannot read specified path: {target} is a directory, not a file")
                    }
                    b'2' => {
                        let link = entry.link_name_bytes().unwrap_or_default();
                        follow = Some(String::from_utf8_lossy(&link).into_owned());
                        break;
                    }
                    b'0' | b'\0' | b'1' if name == base => {
                        let mut data = Vec::new();
                        entry.read_to_end(&mut data).context("reading docker cp stream")?;
                        return Ok(data);
                    }
                    _ => {}
                }
            }
            match follow {
                Some(link) => target = link,
                None => bail!("File {target} not found in image"),
            }
        }
        bail!("too many levels of symbolic links reading {target}")
    }

    fn read_dir(&mut self, target: &str) -> Result<Vec<FileInfo>> {
        let tar = self.retrieve_tar(target)?;
        Ok(tar_headers(&tar)?
            .into_iter()
            .filter(|e| e.typeflag == b'5' && e.name.trim_end_matches('/').split('/').count() == 2)
            .map(|e| e.info())
            .collect())
    }

    fn config(&mut self) -> Result<ImageConfig> {
        if let Some((image, config)) = &self.config_cache
            && *image == self.current
        {
            let mut config = config.clone();
            config.env.extend(env_map(&self.global_env));
            return Ok(config);
        }
        let out = self
            .session
            .cli(&["image", "inspect", "--format", "{{json .Config}}", &self.current])
            .context("Error when inspecting image")?;
        let value: serde_json::Value = serde_json::from_slice(&out).context("Error when inspecting image: bad JSON")?;
        let config = ImageConfig::from_json(&value);
        self.config_cache = Some((self.current.clone(), config.clone()));
        let mut config = config;
        config.env.extend(env_map(&self.global_env));
        Ok(config)
    }

    fn destroy(&mut self) {
        if self.current != self.session.image {
            let _ = self.session.cli(&["rmi", &self.current]);
            self.current = self.session.image.clone();
        }
    }
}

/// The env a container gets when `containerRunOptions` are set: `envFile` entries, then
/// `envVars` taken from our own environment (unset ones dropped).
fn run_option_env(opts: &ContainerRunOptions) -> Vec<String> {
    let mut env = Vec::new();
    if !opts.env_file.is_empty() {
        match std::fs::read_to_string(&opts.env_file) {
            Ok(text) => {
                for (k, v) in parse_dotenv(&text) {
                    if !k.is_empty() && !v.is_empty() {
                        env.push(format!("{k}={v}"));
                    }
                }
            }
            Err(e) => eprintln!("container-structure-test: Unable to load envFile {}: {e}", opts.env_file),
        }
    }
    for name in &opts.env_vars {
        if let Ok(v) = std::env::var(name)
            && !v.is_empty()
        {
            env.push(format!("{name}={v}"));
        }
    }
    env
}

/// A small `.env` reader (godotenv's common subset): `KEY=VALUE`, optional `export `, `#`
/// comments, single or double quotes.
fn parse_dotenv(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((k, v)) = line.split_once(['=', ':']) else {
            continue;
        };
        let v = v.trim();
        let v = if v.len() >= 2 && ((v.starts_with('"') && v.ends_with('"')) || (v.starts_with('\'') && v.ends_with('\''))) {
            let inner = &v[1..v.len() - 1];
            if v.starts_with('"') { inner.replace("\\n", "\n").replace("\\\"", "\"") } else { inner.to_owned() }
        } else {
            v.split(" #").next().unwrap_or_default().trim().to_owned()
        };
        out.push((k.trim().to_owned(), v));
    }
    out
}

struct Header {
    name: String,
    typeflag: u8,
    mode: u32,
    uid: i64,
    gid: i64,
}

impl Header {
    fn info(&self) -> FileInfo {
        FileInfo {
            name: go_path_base(&self.name),
            mode: filemode::from_tar(self.mode, self.typeflag),
            uid: Some(self.uid),
            gid: Some(self.gid),
        }
    }
}

fn tar_headers(tar: &[u8]) -> Result<Vec<Header>> {
    let mut out = Vec::new();
    let mut archive = tar::Archive::new(tar);
    for entry in archive.entries().context("reading docker cp stream")? {
        let entry = entry.context("reading docker cp stream")?;
        let h = entry.header();
        out.push(Header {
            name: String::from_utf8_lossy(&entry.path_bytes()).into_owned(),
            typeflag: h.entry_type().as_byte(),
            mode: h.mode().unwrap_or(0),
            uid: h.uid().map(|u| u as i64).unwrap_or(0),
            gid: h.gid().map(|g| g as i64).unwrap_or(0),
        });
    }
    Ok(out)
}

/// Go `path.Base`.
pub fn go_path_base(p: &str) -> String {
    if p.is_empty() {
        return ".".to_owned();
    }
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".to_owned();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_owned()
}

/// Go `filepath.Clean` (Unix).
pub fn go_clean(p: &str) -> String {
    if p.is_empty() {
        return ".".to_owned();
    }
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            c => parts.push(c),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// Runs `<engine> <args>`; stdout on success, an error with the engine's stderr otherwise.
fn cli<S: AsRef<std::ffi::OsStr>>(engine: &str, args: &[S]) -> Result<Vec<u8>> {
    let out = Command::new(engine).args(args).stdin(Stdio::null()).output().with_context(|| format!("cannot run `{engine}`"))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stderr = stderr.trim();
        // docker's prefix; podman's is "Error: ".
        let stderr = stderr.strip_prefix("Error response from daemon: ").or_else(|| stderr.strip_prefix("Error: ")).unwrap_or(stderr);
        bail!("{}", if stderr.is_empty() { format!("{engine} exited with {}", out.status) } else { stderr.to_owned() });
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_paths() {
        assert_eq!(go_path_base("/etc/passwd"), "passwd");
        assert_eq!(go_path_base("/etc/"), "etc");
        assert_eq!(go_path_base("/"), "/");
        assert_eq!(go_clean("etc/"), "etc");
        assert_eq!(go_clean("./a/../b"), "b");
        assert_eq!(go_clean("/../x"), "/x");
    }

    #[test]
    fn dotenv() {
        let v = parse_dotenv("# c\nA=1\nexport B=\"x y\"\nC='z'\n\nD=w # tail\n");
        assert_eq!(v, [("A", "1"), ("B", "x y"), ("C", "z"), ("D", "w")].map(|(a, b)| (a.to_owned(), b.to_owned())));
    }
}
