//! Loading: evaluates BUILD files (and the .bzl files they load) with the embedded Starlark
//! interpreter into [`Package`]s. Packages load in parallel; each .bzl module is evaluated
//! once, frozen, and shared by every thread.

mod ast_info;
pub(crate) mod context;
pub mod external;
mod glob;
mod globals;
pub(crate) mod repo_globals;
mod rule_call;
pub(crate) mod values;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use rayon::prelude::*;
use starlark::environment::{FrozenModule, Globals, Module};
use starlark::eval::{Evaluator, ReturnFileLoader};
use starlark::syntax::{AstModule, Dialect};
use starlark::values::FrozenHeapName;
use thiserror::Error;

use crate::graph::Package;
use crate::graph::schema::RuleKinds;
use crate::graph::label::{Label, PackageId};
use crate::workspace::{BUILD_FILE_NAMES, RepoSource, Workspace, prelude_file};
use context::BuildContext;

/// A loading failure, rendered with the file, line and column it concerns.
#[derive(Debug, Clone, Error)]
#[error("{message}")]
pub struct LoadError {
    pub message: String,
    /// The package could not be found at all (as opposed to failing to evaluate).
    pub no_such_package: bool,
    /// The message already names a file location; otherwise the `load()` that led to it
    /// prefixes its own.
    pub located: bool,
    /// The targets created before evaluation failed (Bazel's package "in error"), which
    /// `query --keep_going` still reports.
    pub partial: Option<Arc<Package>>,
}

impl LoadError {
    fn new(message: impl Into<String>) -> LoadError {
        LoadError { message: message.into(), no_such_package: false, located: true, partial: None }
    }

    /// An error about a file that a `load()` names, to be located at that `load()`.
    fn unlocated(message: impl Into<String>) -> LoadError {
        LoadError { located: false, ..LoadError::new(message) }
    }

    fn starlark(e: starlark::Error) -> LoadError {
        let text = format!("{e}");
        LoadError::new(text.strip_prefix("error: ").unwrap_or(&text).trim_end().to_owned())
    }
}

type Cell<T> = Arc<OnceLock<Result<T, LoadError>>>;

/// A frozen .bzl module and every .bzl file it loads (itself included).
#[derive(Clone)]
struct LoadedBzl {
    module: FrozenModule,
    files: BTreeSet<Label>,
}

/// Files whose display name → package, so `Label()` in a .bzl resolves against its own
/// package. Shared by all loaders in the process (display names are unique per workspace).
fn bzl_packages() -> &'static RwLock<HashMap<String, (PackageId, Arc<Workspace>)>> {
    static MAP: OnceLock<RwLock<HashMap<String, (PackageId, Arc<Workspace>)>>> = OnceLock::new();
    MAP.get_or_init(Default::default)
}

pub(crate) fn bzl_package_of_file(display: &str) -> Option<(PackageId, Arc<Workspace>)> {
    bzl_packages().read().ok()?.get(display).cloned()
}

pub struct Loader {
    ws: Arc<Workspace>,
    build_globals: Globals,
    bzl_globals: Globals,
    prelude_globals: Globals,
    bzl_cache: Mutex<HashMap<Label, Cell<LoadedBzl>>>,
    packages: Mutex<HashMap<PackageId, Cell<Arc<Package>>>>,
    warned_repos: Mutex<BTreeSet<String>>,
    /// The BUILD prelude (`//tools/build_rules:prelude_bazel`), if the workspace has one.
    build_prelude: OnceLock<Result<Option<LoadedBzl>, LoadError>>,
}

/// `print()` goes to stderr as Bazel's `DEBUG:` lines, never into command output.
struct DebugPrint;

impl starlark::PrintHandler for DebugPrint {
    fn println(&self, text: &str) -> starlark::Result<()> {
        eprintln!("DEBUG: {text}");
        Ok(())
    }
}

pub fn bzl_dialect() -> Dialect {
    Dialect { enable_load_reexport: false, enable_f_strings: false, ..Dialect::Standard }
}

fn build_dialect() -> Dialect {
    Dialect { enable_def: false, enable_load_reexport: false, ..Dialect::Standard }
}

impl Loader {
    /// A loader for `ws` whose BUILD and .bzl files see the native rule kinds `kinds`
    /// (injected by the command layer: loading knows no rule set).
    pub fn new(ws: Arc<Workspace>, kinds: &RuleKinds) -> Loader {
        Loader {
            ws,
            build_globals: globals::build_globals(kinds),
            bzl_globals: globals::bzl_globals(false, kinds),
            prelude_globals: globals::bzl_globals(true, kinds),
            bzl_cache: Mutex::default(),
            packages: Mutex::default(),
            warned_repos: Mutex::default(),
            build_prelude: OnceLock::new(),
        }
    }

    pub fn workspace(&self) -> &Arc<Workspace> {
        &self.ws
    }

    /// Whether `pkg` exists (has a BUILD file).
    pub fn is_package(&self, pkg: &PackageId) -> bool {
        self.build_file_source(pkg).is_some()
    }

    /// Loads one package (cached).
    pub fn package(&self, id: &PackageId) -> Result<Arc<Package>, LoadError> {
        let cell = {
            let mut map = self.packages.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(id.clone()).or_default().clone()
        };
        cell.get_or_init(|| self.evaluate_package(id).map(Arc::new)).clone()
    }

    /// Loads packages in parallel, in the order given.
    pub fn packages(&self, ids: &[PackageId]) -> Vec<Result<Arc<Package>, LoadError>> {
        ids.par_iter().map(|id| self.package(id)).collect()
    }

    /// Where a package's BUILD file comes from: its display name, absolute path, and text
    /// source.
    fn build_file_source(&self, pkg: &PackageId) -> Option<(String, PathBuf, BuildText)> {
        if !pkg.repo.is_empty() {
            match &self.ws.repos.get(&pkg.repo)?.source {
                RepoSource::Local(_) => {}
                RepoSource::Prelude(dir) => {
                    for name in BUILD_FILE_NAMES {
                        let path = if pkg.package.is_empty() { format!("{dir}/{name}") } else { format!("{dir}/{}/{name}", pkg.package) };
                        if let Some(text) = prelude_file(&path) {
                            let display = format!("@{}//{}:{name}", pkg.repo, pkg.package);
                            return Some((display.clone(), PathBuf::from(display), BuildText::Static(text)));
                        }
                    }
                    return None;
                }
                RepoSource::Generated { build_file, .. } => {
                    if !pkg.package.is_empty() {
                        return None;
                    }
                    let display = format!("@{}//:BUILD.bazel", pkg.repo);
                    return Some((display.clone(), PathBuf::from(display), BuildText::Owned(build_file.clone())));
                }
                RepoSource::Unknown { .. } => return None,
            }
        }
        let dir = self.ws.package_dir(pkg)?;
        if self.ws.is_ignored(&pkg.repo, &pkg.package) {
            return None;
        }
        for name in BUILD_FILE_NAMES {
            let path = dir.join(name);
            if path.is_file() {
                let display = self.display_path(&pkg.repo, &path);
                return Some((display, path.clone(), BuildText::File(path)));
            }
        }
        None
    }

    /// How messages name a file on disk: relative to the workspace root for the main
    /// repository, absolute otherwise.
    fn display_path(&self, repo: &str, path: &std::path::Path) -> String {
        if repo.is_empty() {
            if let Ok(rel) = path.strip_prefix(&self.ws.root) {
                return rel.to_string_lossy().replace('\\', "/");
            }
        }
        path.display().to_string()
    }

    fn no_such_package(&self, id: &PackageId) -> LoadError {
        let mut message = format!("no such package '{}': ", package_display(id));
        if !id.repo.is_empty() && self.ws.repos.get(&id.repo).is_none() {
            message.push_str(&format!("repository '@{}' is not defined", id.repo));
        } else {
            message.push_str("BUILD file not found in any of the following directories. Add a BUILD file to a directory to mark it as a package.");
            if let Some(dir) = self.ws.package_dir(id) {
                message.push_str(&format!("\n - {}", dir.display()));
            }
        }
        LoadError { message, no_such_package: true, located: true, partial: None }
    }

    fn evaluate_package(&self, id: &PackageId) -> Result<Package, LoadError> {
        let (display, path, text) = self.build_file_source(id).ok_or_else(|| self.no_such_package(id))?;
        let text = text.read().map_err(|e| LoadError::new(format!("{display}: {e}")))?;
        let ast = AstModule::parse(&display, text, &build_dialect()).map_err(LoadError::starlark)?;
        let call_sites = ast_info::top_level_call_names(&ast);

        let mut files = BTreeSet::new();
        let modules = self.load_dependencies(&ast, id, &mut Vec::new(), &mut files)?;
        let prelude = self.build_prelude()?;
        if let Some(p) = &prelude {
            files.extend(p.files.iter().cloned());
        }

        let dir = match &self.ws.repos.get(&id.repo).map(|r| &r.source) {
            Some(RepoSource::Prelude(_)) | Some(RepoSource::Generated { .. }) => None,
            _ => self.ws.package_dir(id),
        };
        let ctx = BuildContext {
            ws: &self.ws,
            package: id.clone(),
            dir,
            build_file_display: display,
            build_file: path,
            call_sites,
            state: Default::default(),
            listing: Default::default(),
        };
        let refs: HashMap<&str, &FrozenModule> = modules.iter().map(|(k, v)| (k.as_str(), &v.module)).collect();
        let loader = ReturnFileLoader { modules: &refs };
        let evaluated = Module::with_temp_heap(|module| -> Result<(), LoadError> {
            if let Some(p) = &prelude {
                module.import_public_symbols(&p.module);
            }
            let mut eval = Evaluator::new(&module);
            eval.set_loader(&loader);
            eval.set_print_handler(&DebugPrint);
            eval.extra = Some(&ctx);
            eval.eval_module(ast, &self.build_globals).map_err(LoadError::starlark)?;
            Ok(())
        });
        match evaluated {
            Ok(()) => Ok(ctx.finish(files)),
            Err(e) => Err(LoadError { partial: Some(Arc::new(ctx.finish(files))), ..e }),
        }
    }

    /// Loads every module `ast` loads; keys are the strings as written in `load()`.
    fn load_dependencies(
        &self,
        ast: &AstModule,
        base: &PackageId,
        chain: &mut Vec<Label>,
        files: &mut BTreeSet<Label>,
    ) -> Result<Vec<(String, LoadedBzl)>, LoadError> {
        let mut out = Vec::new();
        for load in ast.loads() {
            let spec = load.module_id;
            let label = Label::parse(spec, base, &|r| self.ws.map_repo(r))
                .map_err(|e| LoadError::new(format!("{}: {e}", load.span)))?;
            if !label.name.ends_with(".bzl") && !label.name.ends_with("prelude_bazel") {
                return Err(LoadError::new(format!("{}: the label '{label}' of a load() must name a .bzl file", load.span)));
            }
            let loaded = if self.is_known_repo(&label.repo) {
                self.load_bzl(&label, chain)
            } else {
                self.unknown_repo_module(&label, load.symbols.values().copied())
            };
            let loaded = loaded.map_err(|e| {
                if e.located { e } else { LoadError::new(format!("{}: {}", load.span, e.message)) }
            })?;
            files.extend(loaded.files.iter().cloned());
            out.push((spec.to_owned(), loaded));
        }
        Ok(out)
    }

    fn is_known_repo(&self, repo: &str) -> bool {
        repo.is_empty() || self.ws.repos.get(repo).is_some_and(|r| !matches!(r.source, RepoSource::Unknown { .. }))
    }

    /// A module for a load from a repository ocib does not know: each requested symbol is a
    /// rule that records its arguments. Warns once per repository.
    fn unknown_repo_module<'a>(&self, label: &Label, symbols: impl Iterator<Item = &'a str>) -> Result<LoadedBzl, LoadError> {
        let first = self.warned_repos.lock().unwrap_or_else(|e| e.into_inner()).insert(label.repo.clone());
        if first {
            eprintln!(
                "WARNING: repository '@{}' is not known to ocib; symbols loaded from it record their arguments, and building their targets fails",
                label.repo
            );
        }
        let mut src = String::new();
        for s in symbols {
            if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(LoadError::new(format!("cannot load symbol '{s}' from '{label}'")));
            }
            src.push_str(&format!("{s} = ocib.unknown_rule(\"{s}\")\n"));
        }
        let ast = AstModule::parse(&label.to_string(), src, &bzl_dialect()).map_err(LoadError::starlark)?;
        let module = self.freeze_module(ast, &[], &self.prelude_globals, &label.to_string())?;
        Ok(LoadedBzl { module, files: BTreeSet::new() })
    }

    /// The text of a .bzl file and how to name it.
    fn read_bzl(&self, label: &Label) -> Result<(String, String, bool), LoadError> {
        let missing = |why: &str| LoadError::unlocated(format!("cannot load '{label}': {why}"));
        if let Some(RepoSource::Prelude(dir)) = self.ws.repos.get(&label.repo).map(|r| &r.source) {
            let path = if label.package.is_empty() { format!("{dir}/{}", label.name) } else { format!("{dir}/{}/{}", label.package, label.name) };
            let text = prelude_file(&path).ok_or_else(|| missing("no such file in ocib's prelude (this part of the rule set is not supported)"))?;
            return Ok((label.to_string(), text.to_owned(), true));
        }
        let pkg = label.package_id();
        let dir = self.ws.package_dir(&pkg).ok_or_else(|| missing("no such repository"))?;
        if !BUILD_FILE_NAMES.iter().any(|n| dir.join(n).is_file()) {
            return Err(missing(&format!("no such package '{}' (a .bzl file must be in a package)", package_display(&pkg))));
        }
        let path = dir.join(&label.name);
        let text = std::fs::read_to_string(&path).map_err(|e| missing(&format!("{}: {e}", path.display())))?;
        Ok((self.display_path(&label.repo, &path), text, false))
    }

    /// Loads a .bzl module: its dependencies first (detecting cycles on this thread's
    /// chain), then the module itself, evaluated at most once per process.
    fn load_bzl(&self, label: &Label, chain: &mut Vec<Label>) -> Result<LoadedBzl, LoadError> {
        if let Some(pos) = chain.iter().position(|l| l == label) {
            let mut cycle: Vec<String> = chain[pos..].iter().map(|l| l.to_string()).collect();
            cycle.push(label.to_string());
            return Err(LoadError::new(format!("cycle detected in extension files:\n    {}", cycle.join("\n -> "))));
        }
        let cell = {
            let mut map = self.bzl_cache.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(label.clone()).or_default().clone()
        };
        if let Some(done) = cell.get() {
            return done.clone();
        }
        let result = (|| {
            let (display, text, is_prelude) = self.read_bzl(label)?;
            if let Ok(mut map) = bzl_packages().write() {
                map.insert(display.clone(), (label.package_id(), self.ws.clone()));
            }
            let ast = AstModule::parse(&display, text, &bzl_dialect()).map_err(LoadError::starlark)?;
            chain.push(label.clone());
            let mut files = BTreeSet::from([label.clone()]);
            let deps = self.load_dependencies(&ast, &label.package_id(), chain, &mut files);
            chain.pop();
            let deps = deps?;
            let globals = if is_prelude { &self.prelude_globals } else { &self.bzl_globals };
            let module = self.freeze_module(ast, &deps, globals, &label.to_string())?;
            Ok(LoadedBzl { module, files })
        })();
        // Dependencies were loaded before taking the cell, so two threads never wait on each
        // other; the first result stored wins.
        cell.get_or_init(|| result).clone()
    }

    fn freeze_module(&self, ast: AstModule, deps: &[(String, LoadedBzl)], globals: &Globals, name: &str) -> Result<FrozenModule, LoadError> {
        let refs: HashMap<&str, &FrozenModule> = deps.iter().map(|(k, v)| (k.as_str(), &v.module)).collect();
        let loader = ReturnFileLoader { modules: &refs };
        Module::with_temp_heap(|module| -> Result<FrozenModule, LoadError> {
            {
                let mut eval = Evaluator::new(&module);
                eval.set_loader(&loader);
                eval.set_print_handler(&DebugPrint);
                eval.eval_module(ast, globals).map_err(LoadError::starlark)?;
            }
            module
                .freeze_named(FrozenHeapName::User(Box::new(name.to_owned())))
                .map_err(|e| LoadError::new(format!("{name}: {e:?}")))
        })
    }

    /// Bazel's BUILD prelude: `//tools/build_rules:prelude_bazel`, whose globals every BUILD
    /// file of the workspace sees.
    fn build_prelude(&self) -> Result<Option<LoadedBzl>, LoadError> {
        self.build_prelude
            .get_or_init(|| {
                let path = self.ws.root.join("tools/build_rules/prelude_bazel");
                if !path.is_file() {
                    return Ok(None);
                }
                let label = Label { repo: String::new(), package: "tools/build_rules".into(), name: "prelude_bazel".into() };
                self.load_bzl(&label, &mut Vec::new()).map(Some)
            })
            .clone()
    }

    /// Evaluates a .bzl file for WORKSPACE / MODULE.bazel evaluation and returns it.
    pub(crate) fn load_for_repository_file(&self, label: &Label) -> Result<FrozenModule, LoadError> {
        if self.is_known_repo(&label.repo) {
            Ok(self.load_bzl(label, &mut Vec::new())?.module)
        } else {
            Err(LoadError::new(format!("cannot load '{label}': repository '@{}' is not known to ocib", label.repo)))
        }
    }
}

/// `//pkg` or `@repo//pkg`, as "no such package" messages print it.
fn package_display(id: &PackageId) -> String {
    if id.repo.is_empty() { id.package.clone() } else { format!("@{}//{}", id.repo, id.package) }
}

enum BuildText {
    File(PathBuf),
    Static(&'static str),
    Owned(String),
}

impl BuildText {
    fn read(self) -> std::io::Result<String> {
        match self {
            BuildText::File(p) => std::fs::read_to_string(p),
            BuildText::Static(s) => Ok(s.to_owned()),
            BuildText::Owned(s) => Ok(s),
        }
    }
}
