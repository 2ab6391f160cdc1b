//! Third-party Go modules as repositories: `go_repository` (WORKSPACE) and gazelle's `go_deps`
//! extension (MODULE.bazel) declare them; the first time a build needs a package of one, its
//! module is fetched through the GOPROXY protocol (`proxy`), verified against its go.sum
//! `h1:` hash (Go's dirhash, [`hash1`]), extracted into a content-addressed store in the ocib
//! cache (`<cache>/gomod/store/<hash>`, atomically, once per machine), and laid out as a
//! repository directory whose BUILD files gazelle's rules generate (the generator is
//! injected by the Go rule set: [`set_build_file_generator`]).
//!
//! As `go` does, the versions are chosen by minimal version selection over the requirements
//! of go.mod and of each module's `.mod` file, with Go 1.17's graph pruning (`modfile`).

pub mod modfile;
pub mod proxy;
pub mod zip;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use sha2::{Digest, Sha256};

use crate::exec::digest::hex;

/// Bumped whenever generated repositories would differ for the same inputs, so stale
/// directories in the cache are not reused.
const LAYOUT_VERSION: &str = "ocib-gomod-1";

/// What one `go_repository` (or one module of `go_deps`) declares.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GoModuleSpec {
    /// The module path (`importpath`).
    pub importpath: String,
    /// `version` (a go_deps module's is the one minimal version selection picks).
    pub version: String,
    /// `sum`: the module zip's `h1:` hash.
    pub sum: String,
    /// `build_directives` (`gazelle:resolve ...`, `gazelle:exclude ...`).
    pub build_directives: Vec<String>,
    /// `build_file_generation`: `auto` (generate unless the module ships BUILD files), `on`,
    /// `off`.
    pub build_file_generation: String,
    /// Patch files (absolute paths).
    pub patches: Vec<PathBuf>,
    /// Leading path components the patches strip (`patch_args = ["-p1"]`, `patch_strip = 1`;
    /// gazelle's default is 0).
    pub patch_strip: usize,
    /// A `replace` with a local directory: the module's source, neither fetched nor hashed.
    pub local_path: Option<PathBuf>,
    /// Declared by `go_deps` (its version is subject to minimal version selection).
    pub from_go_deps: bool,
    /// The module fetched in its place (`replace` of `go_repository`, a go.mod `replace` with a
    /// version); empty: `importpath` itself.
    pub fetch_path: String,
    /// Why this repository cannot be fetched (VCS attributes, `archive_override`): reported
    /// when it is first used, so `query` still works.
    pub unsupported: Option<String>,
}

/// What `go_deps.from_file` read: the main module's go.mod and go.sum.
#[derive(Debug, Clone, Default)]
pub struct GoDeps {
    /// The go.mod file (for messages).
    pub go_mod_path: PathBuf,
    pub go_mod: modfile::GoMod,
    /// go.sum entries.
    pub sums: BTreeMap<(String, String), String>,
}

/// Writes BUILD files for one repository, as gazelle would (the Go rule set's generator).
pub struct GenerateRequest<'a> {
    /// The repository's directory (the module's files, already patched).
    pub dir: &'a Path,
    /// The repository's name.
    pub repo: &'a str,
    /// The module path.
    pub importpath: &'a str,
    /// `build_directives` of the repository.
    pub directives: &'a [String],
    /// The label of the library providing an import path (`@com_x_y//pkg`), `None` for the
    /// standard library.
    pub resolve: &'a dyn Fn(&str) -> Option<String>,
}

/// The signature of the injected BUILD file generator.
pub type Generator = fn(&GenerateRequest) -> Result<()>;

static GENERATOR: OnceLock<Generator> = OnceLock::new();
static CACHE_DIR: OnceLock<PathBuf> = OnceLock::new();

/// Installs the BUILD file generator (done by the rule registry: gazelle's rules know Go
/// sources, the repository layer does not).
pub fn set_build_file_generator(generator: Generator) {
    let _ = GENERATOR.set(generator);
}

/// Sets the cache directory modules are stored under (`--disk_cache`, else the default).
pub fn set_cache_dir(dir: PathBuf) {
    let _ = CACHE_DIR.set(dir);
}

type Slot = Arc<OnceLock<Result<PathBuf, String>>>;

/// The Go module repositories of one workspace, and their materialization state.
#[derive(Default)]
pub struct GoModules {
    /// Repository name → spec, for every Go module repository.
    pub repos: BTreeMap<String, GoModuleSpec>,
    /// `go_deps.from_file`'s go.mod/go.sum, if any.
    pub go_deps: Option<GoDeps>,
    materialized: Mutex<HashMap<String, Slot>>,
    selected: OnceLock<Result<BTreeMap<String, String>, String>>,
    client: OnceLock<proxy::ProxyClient>,
}

impl std::fmt::Debug for GoModules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GoModules").field("repos", &self.repos.keys().collect::<Vec<_>>()).finish()
    }
}

/// Go's `dirhash.Hash1`: sha256 over the sorted lines `"<sha256 hex>  <name>\n"` of every
/// file, base64, prefixed `h1:`. Names are as Go sees them (a module zip's full entry names).
pub fn hash1(files: &[(&str, &[u8])]) -> Result<String> {
    let mut lines: Vec<(String, String)> = Vec::with_capacity(files.len());
    for (name, data) in files {
        if name.contains('\n') {
            bail!("dirhash: file name {name:?} contains a newline");
        }
        lines.push(((*name).to_owned(), hex(&Sha256::digest(data))));
    }
    lines.sort();
    let mut summary = Sha256::new();
    for (name, digest) in &lines {
        summary.update(format!("{digest}  {name}\n").as_bytes());
    }
    Ok(format!("h1:{}", base64::engine::general_purpose::STANDARD.encode(summary.finalize())))
}

/// The store key of an `h1:` hash: its digest in hex (file-name safe).
fn store_key(h1: &str) -> Result<String> {
    let b64 = h1.strip_prefix("h1:").ok_or_else(|| anyhow!("'{h1}' is not an h1: hash"))?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|_| anyhow!("'{h1}' is not an h1: hash"))?;
    if bytes.len() != 32 {
        bail!("'{h1}' is not an h1: hash (wrong length)");
    }
    Ok(hex(&bytes))
}

fn cache_root() -> PathBuf {
    CACHE_DIR.get().cloned().unwrap_or_else(crate::exec::default_cache_dir).join("gomod")
}

/// A unique temporary sibling of `final_path`, for write-then-rename.
fn temp_sibling(final_path: &Path) -> PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = final_path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    final_path.with_file_name(format!(".tmp-{name}-{}-{n}", std::process::id()))
}

/// Moves the finished directory `temp` to `dest`; if another process got there first, its
/// (identical, content-addressed) copy stays and ours is dropped.
fn publish_dir(temp: &Path, dest: &Path) -> Result<()> {
    match std::fs::rename(temp, dest) {
        Ok(()) => Ok(()),
        Err(_) if dest.is_dir() => {
            let _ = std::fs::remove_dir_all(temp);
            Ok(())
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(temp);
            Err(anyhow!("moving {} to {}: {e}", temp.display(), dest.display()))
        }
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    let temp = temp_sibling(path);
    std::fs::write(&temp, data).with_context(|| format!("writing {}", temp.display()))?;
    std::fs::rename(&temp, path).with_context(|| format!("moving {} to {}", temp.display(), path.display()))
}

/// Rejects module paths and versions that could name files outside the cache or the proxy
/// root when they become paths (`../x`, `/abs`, empty elements), as
/// `golang.org/x/mod/module.CheckPath` would.
fn check_module(module: &str, version: &str) -> Result<()> {
    let bad_path = module.is_empty()
        || module.starts_with('/')
        || module.contains(['\\', '\0', ' ', '@'])
        || module.split('/').any(|e| e.is_empty() || e == "." || e == ".." || e.starts_with('.'));
    let bad_version = version.is_empty() || version.contains(['/', '\\', '\0']) || version == "." || version == "..";
    if bad_path || bad_version {
        bail!("invalid module path or version {module:?} {version:?}");
    }
    Ok(())
}

/// Whether a module may be used without a go.sum hash: Go skips the checksum database for
/// `GONOSUMDB`/`GOPRIVATE` modules and with `GOSUMDB=off`; ocib never consults the database,
/// so only then is a missing hash accepted.
fn unverified_allowed(module: &str) -> bool {
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    var("GOSUMDB") == "off"
        || proxy::matches_prefix_patterns(&var("GONOSUMDB"), module)
        || proxy::matches_prefix_patterns(&var("GOPRIVATE"), module)
}

impl GoModules {
    fn client(&self) -> &proxy::ProxyClient {
        self.client.get_or_init(|| {
            let value = std::env::var("GOPROXY").ok().filter(|v| !v.is_empty()).unwrap_or_else(|| "https://proxy.golang.org,direct".into());
            proxy::ProxyClient::new(&value)
        })
    }

    /// The extracted content of `module@version`, fetched and verified against `sum` unless
    /// the store already has it.
    pub fn module_dir(&self, module: &str, version: &str, sum: &str) -> Result<PathBuf> {
        check_module(module, version)?;
        let store = cache_root().join("store");
        if !sum.is_empty() {
            let dir = store.join(store_key(sum).with_context(|| format!("module {module}@{version}: sum"))?);
            if dir.is_dir() {
                return Ok(dir);
            }
        } else if !unverified_allowed(module) {
            bail!(
                "module {module}@{version}: no go.sum hash ('sum' attribute or go.sum line); ocib does not consult the checksum database, so add the hash (or list the module in GONOSUMDB/GOPRIVATE)"
            );
        }
        let bytes = self.client().fetch(module, version, "zip").with_context(|| format!("fetching module {module}@{version}"))?;
        let entries = zip::read_entries(&bytes).with_context(|| format!("module {module}@{version}: reading its zip"))?;
        let named: Vec<(&str, &[u8])> = entries.iter().map(|e| (e.name.as_str(), e.data.as_slice())).collect();
        let got = hash1(&named)?;
        if !sum.is_empty() && got != sum {
            bail!(
                "verifying module {module}@{version}: checksum mismatch\n\tdownloaded: {got}\n\tgo.sum:     {sum}\nthe module zip the proxy served is not the one go.sum recorded"
            );
        }
        let prefix = format!("{module}@{version}/");
        let mut files = Vec::with_capacity(entries.len());
        for e in &entries {
            files.push((zip::confined(&e.name, &prefix).with_context(|| format!("module {module}@{version}"))?, e.data.as_slice()));
        }
        let dest = store.join(store_key(&got)?);
        if dest.is_dir() {
            return Ok(dest);
        }
        std::fs::create_dir_all(&store).with_context(|| format!("creating {}", store.display()))?;
        let temp = temp_sibling(&dest);
        zip::write_tree(&temp, &files).inspect_err(|_| {
            let _ = std::fs::remove_dir_all(&temp);
        })?;
        publish_dir(&temp, &dest)?;
        Ok(dest)
    }

    /// The go.mod of `module@version`, from the cache or the proxy (checked against go.sum's
    /// `/go.mod` hash when there is one).
    pub fn mod_file(&self, module: &str, version: &str, sum: Option<&str>) -> Result<String> {
        check_module(module, version)?;
        let path = cache_root().join("mod").join(format!("{}@{}.mod", proxy::escape(module), proxy::escape(version)));
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(_) => {
                let b = self.client().fetch(module, version, "mod").with_context(|| format!("fetching go.mod of {module}@{version}"))?;
                if let Some(sum) = sum {
                    let got = hash1(&[("go.mod", &b)])?;
                    if got != sum {
                        bail!("verifying {module}@{version}/go.mod: checksum mismatch\n\tdownloaded: {got}\n\tgo.sum:     {sum}");
                    }
                }
                write_atomic(&path, &b)?;
                b
            }
        };
        String::from_utf8(bytes).map_err(|_| anyhow!("go.mod of {module}@{version} is not UTF-8"))
    }

    /// Minimal version selection over go.mod's requirements (once per process).
    fn selected(&self) -> Result<&BTreeMap<String, String>> {
        let result = self.selected.get_or_init(|| {
            let Some(deps) = &self.go_deps else { return Ok(BTreeMap::new()) };
            let replaced = |p: &str| deps.go_mod.replace.iter().any(|r| r.old_path == p);
            let roots: Vec<(String, String)> = deps.go_mod.require.iter().map(|(p, v, _)| (p.clone(), v.clone())).collect();
            let mut requirements = |path: &str, version: &str| -> Result<modfile::Requirements> {
                // A replaced module contributes no requirements here: ocib does not read the
                // replacement's go.mod (`go mod tidy` lists what it needs in the main go.mod).
                if replaced(path) {
                    return Ok((true, vec![]));
                }
                let sum = deps.sums.get(&(path.to_owned(), format!("{version}/go.mod"))).map(String::as_str);
                let text = self.mod_file(path, version, sum)?;
                let m = modfile::parse_go_mod(&format!("{path}@{version}/go.mod"), &text)?;
                Ok((modfile::prunes(m.go.as_deref()), m.require.into_iter().map(|(p, v, _)| (p, v)).collect()))
            };
            let pruned = modfile::prunes(deps.go_mod.go.as_deref());
            modfile::minimal_version_selection(&roots, pruned, &mut requirements).map_err(|e| format!("{e:#}"))
        });
        result.as_ref().map_err(|e| anyhow!("{e}"))
    }

    /// The import path → label resolution the generator of `repo` uses: the longest module
    /// path that prefixes the import (gazelle's external resolution), the standard library
    /// (first element without a dot) as `None`.
    fn resolver<'a>(&'a self, repo: &'a str) -> impl Fn(&str) -> Option<String> + 'a {
        move |import: &str| {
            let first = import.split('/').next().unwrap_or(import);
            if !first.contains('.') {
                return None;
            }
            let best = self
                .repos
                .iter()
                .filter(|(_, s)| import == s.importpath || import.starts_with(&format!("{}/", s.importpath)))
                .max_by_key(|(_, s)| s.importpath.len());
            let (name, rel, lib) = match best {
                Some((name, spec)) => {
                    let rel = import[spec.importpath.len()..].trim_start_matches('/').to_owned();
                    (name.clone(), rel, library_name(import))
                }
                None => {
                    let main = self.go_deps.as_ref().map(|d| d.go_mod.module.as_str()).filter(|m| !m.is_empty());
                    match main {
                        Some(m) if import == m || import.starts_with(&format!("{m}/")) => {
                            let rel = import[m.len()..].trim_start_matches('/').to_owned();
                            return Some(format!("@//{rel}:{}", library_name(import)));
                        }
                        _ => (modfile::repo_name(import), String::new(), library_name(import)),
                    }
                }
            };
            let repo_part = if name == repo { String::new() } else { format!("@{name}") };
            Some(format!("{repo_part}//{rel}:{lib}"))
        }
    }

    /// The directory of Go module repository `repo`, materialized on first use: fetched,
    /// verified, extracted, patched and given BUILD files. Later calls return the same result.
    pub fn materialize(&self, repo: &str) -> Result<PathBuf> {
        let slot = {
            let mut map = self.materialized.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(repo.to_owned()).or_default().clone()
        };
        slot.get_or_init(|| self.materialize_uncached(repo).map_err(|e| format!("{e:#}"))).clone().map_err(|e| anyhow!("{e}"))
    }

    /// The directory of `repo` if it was materialized successfully already.
    pub fn materialized_dir(&self, repo: &str) -> Option<PathBuf> {
        let map = self.materialized.lock().unwrap_or_else(|e| e.into_inner());
        map.get(repo).and_then(|slot| slot.get()).and_then(|r| r.as_ref().ok()).cloned()
    }

    fn materialize_uncached(&self, repo: &str) -> Result<PathBuf> {
        let spec = self.repos.get(repo).ok_or_else(|| anyhow!("'{repo}' is not a Go module repository"))?;
        if let Some(why) = &spec.unsupported {
            bail!("repository @{repo} (module {}): {why}", spec.importpath);
        }
        let module = if spec.fetch_path.is_empty() { &spec.importpath } else { &spec.fetch_path };
        let mut version = spec.version.clone();
        let mut sum = spec.sum.clone();
        if spec.from_go_deps && spec.local_path.is_none() {
            let deps = self.go_deps.as_ref().ok_or_else(|| anyhow!("go_deps without go.mod"))?;
            let selected = self.selected().with_context(|| format!("resolving the modules of {}", deps.go_mod_path.display()))?;
            if let Some(v) = selected.get(module).filter(|_| spec.fetch_path.is_empty()) {
                version = v.clone();
            }
            sum = deps.sums.get(&(module.clone(), version.clone())).cloned().ok_or_else(|| {
                anyhow!("missing go.sum entry for module {module}@{version} (in {}); run 'go mod tidy'", deps.go_mod_path.display())
            })?;
        }
        let (source, content_id) = match &spec.local_path {
            Some(path) => {
                if !path.is_dir() {
                    bail!("module {module}: replacement directory {} does not exist", path.display());
                }
                (path.clone(), local_tree_digest(path)?)
            }
            None => (self.module_dir(module, &version, &sum)?, sum.clone()),
        };
        // Everything the generated repository depends on names its directory.
        let mut key = Sha256::new();
        let index: Vec<String> = self.repos.iter().map(|(n, s)| format!("{n}={}", s.importpath)).collect();
        let main = self.go_deps.as_ref().map(|d| d.go_mod.module.clone()).unwrap_or_default();
        let mut patch_texts = Vec::new();
        for p in &spec.patches {
            patch_texts.push(std::fs::read(p).with_context(|| format!("module {module}: reading patch {}", p.display()))?);
        }
        let strip = spec.patch_strip.to_string();
        for part in [LAYOUT_VERSION, repo, module, &version, &content_id, &spec.build_file_generation, &main, &strip] {
            key.update(part.as_bytes());
            key.update([0]);
        }
        for part in spec.build_directives.iter().chain(&index) {
            key.update(part.as_bytes());
            key.update([0]);
        }
        for text in &patch_texts {
            key.update(Sha256::digest(text));
        }
        let repos = cache_root().join("repos");
        let dest = repos.join(format!("{repo}-{}", &hex(&key.finalize())[..32]));
        if dest.is_dir() {
            return Ok(dest);
        }
        std::fs::create_dir_all(&repos).with_context(|| format!("creating {}", repos.display()))?;
        let temp = temp_sibling(&dest);
        let built = self.lay_out(repo, spec, &source, &temp, &patch_texts);
        if let Err(e) = built {
            let _ = std::fs::remove_dir_all(&temp);
            return Err(e.context(format!("preparing repository @{repo} (module {module}@{version})")));
        }
        publish_dir(&temp, &dest)?;
        Ok(dest)
    }

    fn lay_out(&self, repo: &str, spec: &GoModuleSpec, source: &Path, dir: &Path, patches: &[Vec<u8>]) -> Result<()> {
        copy_tree(source, dir)?;
        for (path, text) in spec.patches.iter().zip(patches) {
            let text = std::str::from_utf8(text).map_err(|_| anyhow!("patch {} is not UTF-8", path.display()))?;
            crate::workspace::patch::apply(dir, text, spec.patch_strip).with_context(|| format!("applying patch {}", path.display()))?;
        }
        // gazelle's `auto`: generate unless the module's root directory has a build file.
        let has_build_files = crate::workspace::BUILD_FILE_NAMES.iter().any(|n| dir.join(n).is_file());
        let generate = match spec.build_file_generation.as_str() {
            "on" => true,
            "off" => false,
            "clean" => {
                // Existing build files are removed first.
                for entry in walkdir::WalkDir::new(dir).into_iter().filter_map(|e| e.ok()) {
                    if entry.file_type().is_file() && crate::workspace::BUILD_FILE_NAMES.iter().any(|n| entry.file_name() == *n) {
                        std::fs::remove_file(entry.path()).with_context(|| format!("removing {}", entry.path().display()))?;
                    }
                }
                true
            }
            _ => !has_build_files,
        };
        // The repository boundary: Bazel writes a WORKSPACE/REPO.bazel at an external
        // repository's root.
        std::fs::write(dir.join("REPO.bazel"), "").with_context(|| format!("writing {}", dir.display()))?;
        if generate {
            let generator = GENERATOR.get().ok_or_else(|| anyhow!("no BUILD file generator for Go repositories is installed"))?;
            let resolve = self.resolver(repo);
            generator(&GenerateRequest { dir, repo, importpath: &spec.importpath, directives: &spec.build_directives, resolve: &resolve })?;
        } else if !has_build_files && spec.build_file_generation == "off" {
            std::fs::write(dir.join("BUILD.bazel"), "").with_context(|| format!("writing {}", dir.display()))?;
        }
        Ok(())
    }
}

/// The target name gazelle's `import_alias` convention gives the library of `importpath`: its
/// last element, or the one before a major version suffix (`/v2`).
pub fn library_name(importpath: &str) -> String {
    let mut parts = importpath.rsplit('/');
    let last = parts.next().unwrap_or(importpath);
    let is_major = last.len() > 1 && last.starts_with('v') && last[1..].chars().all(|c| c.is_ascii_digit());
    match (is_major, parts.next()) {
        (true, Some(prev)) => prev.to_owned(),
        _ => last.to_owned(),
    }
}

/// Copies the regular files of `from` into `to` (hard links where possible: the store is
/// never written to after it is published, and patches replace files rather than edit them).
fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    for entry in walkdir::WalkDir::new(from).follow_links(false).sort_by_file_name() {
        let entry = entry.with_context(|| format!("walking {}", from.display()))?;
        let rel = entry.path().strip_prefix(from).unwrap_or(Path::new(""));
        if rel.components().any(|c| c.as_os_str() == ".git") {
            continue;
        }
        let dest = to.join(rel);
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).with_context(|| format!("creating {}", dest.display()))?;
        } else if entry.file_type().is_file() && std::fs::hard_link(entry.path(), &dest).is_err() {
            std::fs::copy(entry.path(), &dest).with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// A digest of a local replacement directory's files (names and contents), so its generated
/// repository follows edits.
fn local_tree_digest(dir: &Path) -> Result<String> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir).follow_links(false).sort_by_file_name() {
        let entry = entry.with_context(|| format!("walking {}", dir.display()))?;
        if entry.file_type().is_file() {
            let rel = entry.path().strip_prefix(dir).unwrap_or(entry.path()).to_string_lossy().into_owned();
            let data = std::fs::read(entry.path()).with_context(|| format!("reading {}", entry.path().display()))?;
            files.push((rel, data));
        }
    }
    let named: Vec<(&str, &[u8])> = files.iter().map(|(n, d)| (n.as_str(), d.as_slice())).collect();
    hash1(&named)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash1_matches_go() {
        // `go mod download -json example.com/fmtx@v1.2.0` (go1.27) of testdata's module,
        // served by a file:// proxy, printed these Sum and GoModSum.
        let go_mod: &[u8] = include_bytes!("../../../testdata/gomod/modules/example.com/fmtx@v1.2.0/go.mod");
        let source: &[u8] = include_bytes!("../../../testdata/gomod/modules/example.com/fmtx@v1.2.0/fmtx.go");
        let files = [("example.com/fmtx@v1.2.0/go.mod", go_mod), ("example.com/fmtx@v1.2.0/fmtx.go", source)];
        assert_eq!(hash1(&files).unwrap(), "h1:jEmedy8xLuMiIweMwYviFQFOR6NEFzlff8QvngnxYWM=");
        assert_eq!(hash1(&[("go.mod", go_mod)]).unwrap(), "h1:wQruk4RE18TWseW34E7Ogej+ygEB82Q2uN+3CP4n17g=");
        // Order does not matter: names are sorted.
        assert_eq!(hash1(&[("b", b"1"), ("a", b"2")]).unwrap(), hash1(&[("a", b"2"), ("b", b"1")]).unwrap());
        assert!(hash1(&[("a\nb", b"")]).is_err());
    }

    #[test]
    fn imports_resolve_to_the_longest_module_path() {
        let mut modules = GoModules::default();
        for (name, path) in [("com_github_a_b", "github.com/a/b"), ("com_github_a_b_v2", "github.com/a/b/v2"), ("org_x", "x.org/x")] {
            modules.repos.insert(name.into(), GoModuleSpec { importpath: path.into(), ..Default::default() });
        }
        modules.go_deps =
            Some(GoDeps { go_mod: modfile::GoMod { module: "example.com/mono".into(), ..Default::default() }, ..Default::default() });
        let resolve = modules.resolver("com_github_a_b");
        assert_eq!(resolve("fmt"), None);
        assert_eq!(resolve("github.com/a/b/pkg/sub").as_deref(), Some("//pkg/sub:sub"));
        assert_eq!(resolve("github.com/a/b/v2").as_deref(), Some("@com_github_a_b_v2//:b"));
        assert_eq!(resolve("x.org/x").as_deref(), Some("@org_x//:x"));
        assert_eq!(resolve("example.com/mono/lib/banner").as_deref(), Some("@//lib/banner:banner"));
        // Not declared: gazelle's guess of the repository name.
        assert_eq!(resolve("github.com/c/d").as_deref(), Some("@com_github_c_d//:d"));
    }

    #[test]
    fn module_paths_that_escape_are_refused() {
        assert!(check_module("github.com/a/b", "v1.0.0").is_ok());
        for (m, v) in [("../x", "v1"), ("a//b", "v1"), ("/abs", "v1"), ("a/./b", "v1"), ("a/b", "../v1"), ("a/b", ""), ("a/.git", "v1")] {
            assert!(check_module(m, v).is_err(), "{m} {v}");
        }
    }

    #[test]
    fn store_keys_and_names() {
        let h = hash1(&[("a", b"")]).unwrap();
        assert_eq!(store_key(&h).unwrap().len(), 64);
        assert!(store_key("h1:abc").is_err());
        assert_eq!(library_name("github.com/foo/bar/v2"), "bar");
        assert_eq!(library_name("github.com/foo/bar/pkg"), "pkg");
        assert_eq!(library_name("gopkg.in/yaml.v3"), "yaml.v3");
    }
}
