//! Loading: evaluates BUILD files (and the .bzl files they load) with the embedded Starlark
//! interpreter into [`Package`]s. Packages load in parallel; each .bzl module is evaluated
//! once, frozen, and shared by every thread.

pub mod apko_lock;
pub mod apt;
mod ast_info;
pub mod cache;
pub(crate) mod context;
pub mod external;
mod glob;
mod globals;
mod go_repos;
mod json;
mod module_ext;
pub mod providers;
pub(crate) mod repo_globals;
mod rule_call;
pub mod rule_def;
pub mod source;
mod stub;
pub(crate) mod values;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use rayon::prelude::*;
use std::cell::RefCell;
use std::rc::Rc;

use starlark::codemap::{FileSpan, FileSpanRef};
use starlark::environment::{FrozenModule, Globals, Module};
use starlark::eval::{BeforeStmtFunc, BeforeStmtFuncDyn, Evaluator, ReturnFileLoader};
use starlark::syntax::{AstModule, Dialect};
use starlark::values::FrozenHeapName;

use crate::graph::label::{Label, PackageId};
use crate::graph::schema::RuleKinds;
use crate::graph::{self, Package};
use crate::workspace::{BUILD_FILE_NAMES, RepoSource, Workspace, prelude_file};
use context::BuildContext;

/// A loading failure: where (a file, or `file:line:col`), what, and the error behind it. Each
/// part is rendered once: `Display` says this level (`location: message`),
/// [`std::error::Error::source`] gives the cause, and [`LoadError::render`] (or anyhow's `{:#}`)
/// joins the chain.
#[derive(Debug, Clone)]
pub struct LoadError {
    /// The file or `file:line:col` this error concerns, when the message does not name it
    /// itself (Starlark's diagnostics do, with the source line underneath).
    pub location: Option<String>,
    /// What went wrong at this level (may be empty when the cause says it all).
    pub message: String,
    /// The error behind this one (an I/O error, a label's syntax error).
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
    /// The package could not be found at all (as opposed to failing to evaluate).
    pub no_such_package: bool,
    /// The message already names a file location; otherwise the `load()` that led to it
    /// gives its own.
    located: bool,
    /// The targets created before evaluation failed (Bazel's package "in error"), which
    /// `query --keep_going` still reports.
    pub partial: Option<Arc<Package>>,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.location, self.message.is_empty()) {
            (Some(at), true) => write!(f, "{at}"),
            (Some(at), false) => write!(f, "{at}: {}", self.message),
            (None, _) => write!(f, "{}", self.message),
        }
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl LoadError {
    /// An error whose message names its location itself.
    fn new(message: impl Into<String>) -> LoadError {
        LoadError { location: None, message: message.into(), source: None, no_such_package: false, located: true, partial: None }
    }

    /// An error at `location` caused by `source` (which says what went wrong).
    fn at(location: impl std::fmt::Display, source: impl std::error::Error + Send + Sync + 'static) -> LoadError {
        LoadError { location: Some(location.to_string()), message: String::new(), source: Some(Arc::new(source)), ..LoadError::new("") }
    }

    /// An error about a file that a `load()` names, to be located at that `load()`.
    fn unlocated(message: impl Into<String>) -> LoadError {
        LoadError { located: false, ..LoadError::new(message) }
    }

    fn starlark(e: starlark::Error) -> LoadError {
        let text = format!("{e}");
        LoadError::new(text.strip_prefix("error: ").unwrap_or(&text).trim_end().to_owned())
    }

    /// The whole chain on one line: each level once, joined by `: `.
    pub fn render(&self) -> String {
        anyhow::Chain::new(self).map(|e| e.to_string()).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(": ")
    }
}

type Cell<T> = Arc<OnceLock<Result<T, LoadError>>>;

/// .bzl display name → its package and workspace (see [`bzl_packages`]).
type BzlPackages = RwLock<HashMap<String, (PackageId, Arc<Workspace>)>>;

/// A frozen .bzl module and every .bzl file it loads (itself included).
#[derive(Clone)]
struct LoadedBzl {
    module: FrozenModule,
    files: BTreeSet<Label>,
    /// Its evaluation (or a dependency's) printed something, or it is made of stubs (which
    /// warn): packages loading it are not kept in the load cache, whose hits print nothing.
    noisy: bool,
}

thread_local! {
    /// Lines this thread printed while evaluating (`print()`, warnings about stubs).
    static EMITTED: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

fn emitted() -> u64 {
    EMITTED.with(|c| c.get())
}

fn count_emitted() {
    EMITTED.with(|c| c.set(c.get() + 1));
}

/// Files whose display name → package, so `Label()` in a .bzl resolves against its own
/// package. Shared by all loaders in the process (display names are unique per workspace).
fn bzl_packages() -> &'static BzlPackages {
    static MAP: OnceLock<BzlPackages> = OnceLock::new();
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
    build_prelude: OnceLock<Result<Option<BuildPrelude>, LoadError>>,
    /// Evaluated packages kept between commands ([`Loader::with_load_cache`]).
    cache: Option<cache::LoadCache>,
    /// With a cache: the inputs each .bzl file read from disk contributes (none for the
    /// prelude's files).
    bzl_inputs: Mutex<HashMap<Label, Vec<cache::Record>>>,
    /// Something this command read is not recorded in the load cache (a package's existence
    /// checked directly, a walk that cannot be kept): its query answer is not stored.
    unrecorded: std::sync::atomic::AtomicBool,
    /// The package discoveries this command used, with their results' digests.
    walks: Mutex<Vec<(PackageId, [u8; 32])>>,
}

/// What evaluating a BUILD file observed besides the package.
struct Observed {
    noisy: bool,
    glob: Option<cache::GlobInput>,
}

/// The evaluated BUILD prelude and the names it binds at top level.
#[derive(Clone)]
struct BuildPrelude {
    loaded: LoadedBzl,
    names: Vec<String>,
}

/// `print()` goes to stderr as Bazel's `DEBUG:` lines, never into command output.
struct DebugPrint;

impl starlark::PrintHandler for DebugPrint {
    fn println(&self, text: &str) -> starlark::Result<()> {
        count_emitted();
        eprintln!("DEBUG: {text}");
        Ok(())
    }
}

/// Resource limits of one Starlark evaluation (one BUILD, .bzl, WORKSPACE or MODULE.bazel
/// file), so a runaway loop or a memory bomb ends in an error naming the file and line
/// instead of exhausting the machine. Both far above what real files use (measured on
/// testdata/monorepo: at most 56 steps and 5 KiB of heap per BUILD file, macros included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EvalLimits {
    /// Starlark's "ticks": function calls plus loop iterations (0: no limit). Bazel's
    /// `--max_computation_steps` plays the same role.
    pub max_steps: u64,
    /// Bytes of the evaluation's Starlark heap (0: no limit).
    pub max_heap_bytes: usize,
}

impl Default for EvalLimits {
    fn default() -> Self {
        EvalLimits { max_steps: 10_000_000, max_heap_bytes: 256 << 20 }
    }
}

static LIMITS: OnceLock<EvalLimits> = OnceLock::new();

/// Sets the limits every later evaluation of this process uses (the command line's
/// `--starlark_max_steps` / `--starlark_max_heap_mb`). Only the first call takes effect.
pub fn set_eval_limits(limits: EvalLimits) {
    let _ = LIMITS.set(limits);
}

fn eval_limits() -> EvalLimits {
    LIMITS.get().copied().unwrap_or_default()
}

/// `file:line:column` of a statement.
fn span_location(span: FileSpanRef) -> String {
    let begin = span.resolve_span().begin;
    format!("{}:{}:{}", span.filename(), begin.line + 1, begin.column + 1)
}

/// Runs before every statement: checks the heap limit and remembers where evaluation is.
/// Starlark's own `set_max_heap_size` is only checked every thousand calls or loop
/// iterations, so straight-line code such as `s = s + s` repeated 40 times would allocate a
/// terabyte first; this stops it at the first statement past the limit, and names it.
struct StatementHook {
    max_heap: usize,
    last: Rc<RefCell<Option<FileSpan>>>,
}

impl<'e> BeforeStmtFuncDyn<'e> for StatementHook {
    fn call<'v>(&mut self, span: FileSpanRef, _continued: bool, eval: &mut Evaluator<'v, '_, 'e>) -> starlark::Result<()> {
        // Every statement of every BUILD file passes here: keep it cheap. The heap is read
        // at every statement (one doubling `s = s + s` per statement must not run 40 times
        // before a check); the file of the last statement is only cloned when it changes.
        let used = eval.heap().allocated_bytes();
        if self.max_heap > 0 && used > self.max_heap {
            return Err(starlark::Error::new_other(anyhow::anyhow!(
                "{}: Starlark heap exceeded {} MiB (at {} MiB; raise the limit with --starlark_max_heap_mb)",
                span_location(span),
                self.max_heap >> 20,
                used >> 20
            )));
        }
        let mut last = self.last.borrow_mut();
        match last.as_mut() {
            Some(last) if last.file == *span.file => last.span = span.span,
            _ => *last = Some(span.to_file_span()),
        }
        Ok(())
    }
}

/// The limits set on one evaluator; turns its errors into located messages.
pub(crate) struct Limited {
    last: Rc<RefCell<Option<FileSpan>>>,
}

impl Limited {
    /// The message of an evaluation error. Starlark reports the step limit without a location
    /// (its final check at the end of the module replaces the located error), so this names
    /// the last statement that started: the loop or comprehension that ran away.
    pub(crate) fn message(&self, e: starlark::Error) -> String {
        let text = format!("{e}");
        let text = text.strip_prefix("error: ").unwrap_or(&text).trim_end();
        if !text.contains("Execution duration limit") {
            return text.to_owned();
        }
        let at = match self.last.borrow().as_ref() {
            Some(span) => format!("{}: ", span_location(span.as_ref())),
            None => String::new(),
        };
        format!(
            "{at}{text} (more than {} Starlark steps, i.e. function calls and loop iterations: a runaway loop? Raise the limit with --starlark_max_steps)",
            eval_limits().max_steps
        )
    }
}

/// Applies [`EvalLimits`] to an evaluator, before it compiles anything.
pub(crate) fn limit_evaluator(eval: &mut Evaluator) -> Limited {
    let limits = eval_limits();
    // The setter fails only when the limit is zero or already set; neither happens here.
    if limits.max_steps > 0 {
        let _ = eval.set_max_tick_count(limits.max_steps);
    }
    // Not `set_max_heap_size`: its check also runs when the module ends and then replaces
    // the hook's located error with one that has no location.
    let last = Rc::new(RefCell::new(None));
    eval.before_stmt_for_dap(BeforeStmtFunc::from_dyn(Box::new(StatementHook { max_heap: limits.max_heap_bytes, last: last.clone() })));
    Limited { last }
}

/// Stack size of the threads that evaluate Starlark. starlark-rust compiles and evaluates
/// recursively, a few KiB of stack per nesting level; rayon's default 2 MiB overflowed (an
/// abort) from about 650 levels. With [`source::MAX_NESTING`] levels at most, 64 MiB leaves a
/// wide margin (the memory is reserved, not committed, until used).
const EVAL_STACK_SIZE: usize = 64 << 20;

/// The loader's own thread pool, with [`EVAL_STACK_SIZE`] stacks; None if it cannot start
/// (evaluation then runs on the caller's threads).
fn eval_pool() -> Option<&'static rayon::ThreadPool> {
    static POOL: OnceLock<Option<rayon::ThreadPool>> = OnceLock::new();
    POOL.get_or_init(|| rayon::ThreadPoolBuilder::new().stack_size(EVAL_STACK_SIZE).thread_name(|i| format!("ocib-load-{i}")).build().ok())
        .as_ref()
}

/// Runs `f` on the evaluation pool (directly when already on it).
pub(crate) fn on_eval_thread<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    match eval_pool() {
        Some(pool) if pool.current_thread_index().is_none() => pool.install(f),
        _ => f(),
    }
}

thread_local! {
    /// Set while this thread evaluates Starlark: a panic then becomes a located error
    /// rather than a backtrace.
    static CATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs an evaluation of `file`, turning a panic inside it (a bug in the interpreter or in
/// ocib's builtins) into an error that names the file, printed once without a backtrace.
fn catch_panics<T>(file: &str, f: impl FnOnce() -> Result<T, LoadError>) -> Result<T, LoadError> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CATCHING.with(|c| c.get()) {
                previous(info);
            }
        }));
    });
    let was = CATCHING.with(|c| c.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(was));
    result.unwrap_or_else(|payload| {
        let what = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned());
        Err(LoadError::new(format!("{file}: internal error while evaluating this file (please report it): {what}")))
    })
}

/// The dialect of .bzl files: Bazel's Starlark, which has keyword-only parameters
/// (`def f(a, *, b)`) but neither f-strings, type annotations nor top-level `if`/`for`.
pub fn bzl_dialect() -> Dialect {
    Dialect { enable_load_reexport: false, enable_f_strings: false, enable_keyword_only_arguments: true, ..Dialect::Standard }
}

fn build_dialect() -> Dialect {
    Dialect { enable_def: false, enable_load_reexport: false, enable_keyword_only_arguments: true, ..Dialect::Standard }
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
            cache: None,
            bzl_inputs: Mutex::default(),
            unrecorded: Default::default(),
            walks: Mutex::default(),
        }
    }

    /// Keeps evaluated packages on disk between commands (`ocib-out/load-cache`, see
    /// [`cache`]): packages whose inputs did not change are read from there instead of
    /// evaluated. `kinds` is the table given to [`Loader::new`].
    pub fn with_load_cache(mut self, kinds: &RuleKinds) -> Loader {
        match cache::global_key(&self.ws, eval_limits()) {
            Some(key) => self.cache = Some(cache::LoadCache::open(&self.ws, key, &kinds.schemas)),
            None => eprintln!("WARNING: the load cache is off: ocib's own binary cannot be identified"),
        }
        self
    }

    /// Packages read from the load cache hold their target graph only (labels, kinds, the
    /// attributes dependencies come from; see `cache::codec::Depth::Graph`), when
    /// `graph_only`: for a query whose expression and output read nothing else. Packages
    /// evaluated in this command are whole either way.
    pub fn with_graph_only_packages(mut self, graph_only: bool) -> Loader {
        if graph_only && let Some(cache) = &mut self.cache {
            cache.decode_graph_only();
        }
        self
    }

    /// Writes the load cache, if there is one and it changed.
    pub fn save_load_cache(&self) {
        if let Some(c) = &self.cache {
            c.save();
        }
    }

    /// Every package at or below `prefix`, sorted ([`Workspace::packages_under`]); with a
    /// load cache, the last walk's result while none of the directories it read changed.
    pub fn packages_under(&self, prefix: &PackageId) -> anyhow::Result<Vec<PackageId>> {
        let Some(cache) = self.cache.as_ref().filter(|_| self.cacheable_repo(&prefix.repo)) else {
            self.unrecorded.store(true, std::sync::atomic::Ordering::Relaxed);
            return self.ws.packages_under(prefix);
        };
        let found = match cache.discovered(prefix) {
            Some(found) => found,
            None => {
                let walked = Mutex::new(crate::workspace::Walked::default());
                let found = self.ws.packages_under_observed(prefix, &walked)?;
                if !cache.record_discovery(prefix, walked.into_inner().unwrap_or_else(|e| e.into_inner()), &found) {
                    self.unrecorded.store(true, std::sync::atomic::Ordering::Relaxed);
                }
                found
            }
        };
        self.walks.lock().unwrap_or_else(|e| e.into_inner()).push((prefix.clone(), cache::walk_identity(&found)));
        Ok(found)
    }

    /// The output an earlier run of the same query (`query_key`: the expression and every
    /// option that shapes the output) printed, if every package and package discovery it
    /// depended on is unchanged; see [`cache::LoadCache::answer`].
    pub fn cached_answer(&self, query_key: &str) -> Option<Vec<u8>> {
        self.cache.as_ref()?.answer(query_key, &|id| self.defined_identity(id))
    }

    /// The identity of a package of a repository whose every file is a function of its
    /// definition, which the load cache's cache-wide key holds (`Repos::fingerprint`): the
    /// prelude's (the binary's identity), `oci_pull`'s and `apt.install`'s generated BUILD
    /// files (their text is the definition), and a Go module pinned by version and `h1:` sum
    /// without patches or a local `replace` (its BUILD files are generated from the verified
    /// zip). Such a package is the same while the key is: its identity is its name. None for
    /// repositories on disk (checked through their entries) and the rest.
    fn defined_identity(&self, id: &PackageId) -> Option<[u8; 32]> {
        match &self.ws.repos.get(&id.repo)?.source {
            RepoSource::Prelude(_) | RepoSource::Generated { .. } | RepoSource::Tree { .. } => {}
            RepoSource::GoModule(spec) if spec.patches.is_empty() && spec.local_path.is_none() => {}
            _ => return None,
        }
        let mut h = blake3::Hasher::new();
        for s in ["defined by its repository", id.repo.as_str(), id.package.as_str()] {
            cache::hash_field(&mut h, s.as_bytes());
        }
        Some(*h.finalize().as_bytes())
    }

    /// Keeps `stdout` as the answer of the query `query_key` when everything it read is
    /// recorded in the load cache: every package tried is kept there (so none printed while
    /// evaluating or failed) and every walk for packages is kept.
    pub fn store_answer(&self, query_key: &str, stdout: &[u8]) {
        let Some(cache) = &self.cache else { return };
        if self.unrecorded.load(std::sync::atomic::Ordering::Relaxed) {
            cache::note(|| "the answer is not stored: the query read something the cache does not record".to_owned());
            return;
        }
        let ids: Vec<PackageId> = self.packages.lock().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
        let mut deps = cache::AnswerDeps::default();
        for id in ids {
            match cache.identity_after(&id).or_else(|| self.defined_identity(&id)) {
                Some(identity) => deps.packages.push((id, identity)),
                None => {
                    cache::note(|| format!("the answer is not stored: {id} is not kept in the cache"));
                    return;
                }
            }
        }
        deps.packages.sort();
        deps.walks = self.walks.lock().unwrap_or_else(|e| e.into_inner()).clone();
        deps.walks.sort();
        deps.walks.dedup();
        cache.store_answer(query_key, &deps, stdout);
    }

    /// Whether packages of `repo` can be kept in the load cache: the main repository's and
    /// a `local_repository`'s (directories on disk); generated and fetched ones are made anew.
    fn cacheable_repo(&self, repo: &str) -> bool {
        repo.is_empty() || matches!(self.ws.repos.get(repo).map(|r| &r.source), Some(RepoSource::Local(_)))
    }

    /// The package from the load cache, if it holds it and its inputs did not change.
    fn cached_package(&self, cache: &cache::LoadCache, id: &PackageId) -> Option<Package> {
        if !self.cacheable_repo(&id.repo) {
            return None;
        }
        cache.lookup(id, || {
            let dir = self.ws.package_dir(id)?;
            let listing = glob::Listing::read(&self.ws, &id.repo, &id.package, &dir);
            Some((listing.digest(), listing.dirs().to_vec()))
        })
    }

    pub fn workspace(&self) -> &Arc<Workspace> {
        &self.ws
    }

    /// Whether `pkg` exists (has a BUILD file).
    pub fn is_package(&self, pkg: &PackageId) -> bool {
        // Not recorded as an input: an answer that depends on it is not stored.
        self.unrecorded.store(true, std::sync::atomic::Ordering::Relaxed);
        self.build_file_source(pkg).is_some()
    }

    /// How many packages were loaded (or tried) so far: BEP's `packagesLoaded`.
    pub fn packages_loaded(&self) -> usize {
        self.packages.lock().map(|p| p.len()).unwrap_or(0)
    }

    /// Loads one package (cached).
    pub fn package(&self, id: &PackageId) -> Result<Arc<Package>, LoadError> {
        let cell = {
            let mut map = self.packages.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(id.clone()).or_default().clone()
        };
        cell.get_or_init(|| {
            if let Some(p) = self.cache.as_ref().and_then(|c| self.cached_package(c, id)) {
                return Ok(Arc::new(p));
            }
            on_eval_thread(|| self.evaluate_package(id)).map(Arc::new)
        })
        .clone()
    }

    /// Loads packages in parallel, in the order given.
    pub fn packages(&self, ids: &[PackageId]) -> Vec<Result<Arc<Package>, LoadError>> {
        on_eval_thread(|| ids.par_iter().map(|id| self.package(id)).collect())
    }

    /// Where a package's BUILD file comes from: its display name, absolute path, and text
    /// source.
    fn build_file_source(&self, pkg: &PackageId) -> Option<(String, PathBuf, BuildText)> {
        if !pkg.repo.is_empty() {
            match &self.ws.repos.get(&pkg.repo)?.source {
                RepoSource::Local(_) | RepoSource::GoModule(_) => {}
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
                RepoSource::Tree { build_files } => {
                    let text = build_files.get(&pkg.package)?;
                    let display = format!("@{}//{}:BUILD.bazel", pkg.repo, pkg.package);
                    return Some((display.clone(), PathBuf::from(display), BuildText::Owned(text.clone())));
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
        if repo.is_empty()
            && let Ok(rel) = path.strip_prefix(&self.ws.root)
        {
            return rel.to_string_lossy().replace('\\', "/");
        }
        path.display().to_string()
    }

    fn no_such_package(&self, id: &PackageId) -> LoadError {
        let mut message = format!("no such package '{}': ", package_display(id));
        if !id.repo.is_empty() && self.ws.repos.get(&id.repo).is_none() {
            message.push_str(&format!("repository '@{}' is not defined", id.repo));
        } else {
            message.push_str(
                "BUILD file not found in any of the following directories. Add a BUILD file to a directory to mark it as a package.",
            );
            if let Some(dir) = self.ws.package_dir(id) {
                message.push_str(&format!("\n - {}", dir.display()));
            }
        }
        LoadError { no_such_package: true, ..LoadError::new(message) }
    }

    fn evaluate_package(&self, id: &PackageId) -> Result<Package, LoadError> {
        if let Some(RepoSource::GoModule(_)) = self.ws.repos.get(&id.repo).map(|r| &r.source) {
            // A Go module is fetched when a package of it is first needed; say why it cannot be.
            self.ws.go_modules.materialize(&id.repo).map_err(|e| LoadError {
                no_such_package: true,
                ..LoadError::new(format!("no such package '{}': {e:#}", package_display(id)))
            })?;
        }
        let emitted_before = emitted();
        let (display, path, text) = self.build_file_source(id).ok_or_else(|| self.no_such_package(id))?;
        let cache = self.cache.as_ref();
        // With a cache, the BUILD file is stat'ed before it is read (a change after the stat
        // then shows next time), and the names preferred over it recorded as absent.
        let mut inputs = None;
        let text = match (cache.filter(|_| self.cacheable_repo(&id.repo)), text) {
            (Some(cache), BuildText::File(file)) => {
                let read = || -> std::io::Result<(std::fs::Metadata, Vec<u8>)> {
                    let meta = std::fs::metadata(&file)?;
                    Ok((meta, std::fs::read(&file)?))
                };
                let (meta, bytes) = read().map_err(|e| LoadError::at(&display, e))?;
                let mut files = vec![cache.file_record(file.clone(), &meta, &bytes)];
                for name in BUILD_FILE_NAMES.iter().take_while(|n| file.file_name().is_none_or(|f| f != **n)) {
                    files.push(cache.presence_record(file.with_file_name(name)));
                }
                // A preferred name that became a file since the choice: not worth storing.
                if files.iter().all(|r| r.kind != cache::Kind::Present) {
                    inputs = Some(cache::Inputs { files, glob: None });
                }
                source::decode(bytes)
            }
            (_, text) => text.read().map_err(|e| LoadError::at(&display, e))?,
        };
        source::check_nesting(&text).map_err(|at| LoadError::new(at.message(&display)))?;
        let file = display.clone();
        let (package, observed) = catch_panics(&file, || self.evaluate_build_text(id, display, path, text))?;
        if let Some(cache) = cache {
            if let Some(i) = &mut inputs
                && !(observed.noisy || emitted() != emitted_before)
                && self.add_load_inputs(&package, i)
            {
                i.glob = observed.glob;
            } else {
                if inputs.is_some() {
                    cache::note(|| format!("{id} is not stored: its evaluation printed something or loaded stubs"));
                }
                inputs = None;
            }
            cache.evaluated(&package, inputs.filter(cache::storable));
        }
        Ok(package)
    }

    /// Adds the inputs of the .bzl files `package` loaded; false if one is unknown (a module
    /// of stubs, say), and then the package is not stored.
    fn add_load_inputs(&self, package: &Package, inputs: &mut cache::Inputs) -> bool {
        let known = self.bzl_inputs.lock().unwrap_or_else(|e| e.into_inner());
        for label in &package.loads {
            let Some(records) = known.get(label) else { return false };
            for r in records {
                if !inputs.files.contains(r) {
                    inputs.files.push(r.clone());
                }
            }
        }
        true
    }

    fn evaluate_build_text(&self, id: &PackageId, display: String, path: PathBuf, text: String) -> Result<(Package, Observed), LoadError> {
        let ast = AstModule::parse(&display, text, &build_dialect()).map_err(LoadError::starlark)?;
        let call_sites = ast_info::top_level_call_names(&ast);

        let mut files = BTreeSet::new();
        let modules = self.load_dependencies(&ast, id, &mut Vec::new(), &mut files)?;
        let prelude = self.build_prelude()?;
        if let Some(p) = &prelude {
            files.extend(p.loaded.files.iter().cloned());
        }

        let dir = match &self.ws.repos.get(&id.repo).map(|r| &r.source) {
            Some(RepoSource::Prelude(_)) | Some(RepoSource::Generated { .. }) | Some(RepoSource::Tree { .. }) => None,
            _ => self.ws.package_dir(id),
        };
        let keep_alive = {
            let heap = starlark::values::FrozenHeap::new();
            for (_, m) in &modules {
                heap.add_reference(m.module.frozen_heap());
            }
            if let Some(p) = &prelude {
                heap.add_reference(p.loaded.module.frozen_heap());
            }
            heap.into_ref()
        };
        let ctx = BuildContext {
            keep_alive,
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
                // Bazel prepends the prelude to every BUILD file: all its top-level names are
                // visible, `_private` ones and those it load()s included.
                for name in &p.names {
                    if let Ok((value, _)) = p.loaded.module.get_any_visibility(name) {
                        module.set(name, module.heap().access_owned_frozen_value(&value));
                    }
                }
            }
            let mut eval = Evaluator::new(&module);
            let limited = limit_evaluator(&mut eval);
            eval.set_loader(&loader);
            eval.set_print_handler(&DebugPrint);
            eval.extra = Some(&ctx);
            eval.eval_module(ast, &self.build_globals).map_err(|e| LoadError::new(limited.message(e)))?;
            Ok(())
        });
        let noisy = modules.iter().any(|(_, m)| m.noisy) || prelude.as_ref().is_some_and(|p| p.loaded.noisy);
        let glob = match (&self.cache, ctx.listing.get()) {
            (Some(cache), Some(listing)) => Some(cache.glob_input(listing.digest(), listing.dirs())),
            _ => None,
        };
        match evaluated {
            Ok(()) => Ok((ctx.finish(files), Observed { noisy, glob })),
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
        let dict_operands = ast_info::dict_union_operands(ast);
        for load in ast.loads() {
            let spec = load.module_id;
            let label = Label::parse(spec, base, &|r| self.ws.map_repo(r)).map_err(|e| LoadError::at(&load.span, e))?;
            if !label.name.ends_with(".bzl") && !label.name.ends_with("prelude_bazel") {
                return Err(LoadError::new(format!("{}: the label '{label}' of a load() must name a .bzl file", load.span)));
            }
            let symbols: Vec<&str> = load.symbols.values().copied().collect();
            let dicts: BTreeSet<&str> =
                load.symbols.iter().filter(|(local, _)| dict_operands.contains(**local)).map(|(_, original)| *original).collect();
            let loaded = self.load_lenient(&label, &symbols, &dicts, chain);
            let loaded =
                loaded.map_err(|e| if e.located { e } else { LoadError { location: Some(load.span.to_string()), located: true, ..e } })?;
            files.extend(loaded.files.iter().cloned());
            out.push((spec.to_owned(), loaded));
        }
        Ok(out)
    }

    fn is_known_repo(&self, repo: &str) -> bool {
        repo.is_empty() || self.ws.repos.get(repo).is_some_and(|r| !matches!(r.source, RepoSource::Unknown { .. }))
    }

    /// Loads `label` for a `load()` of `symbols`, never failing on what is merely unknown
    /// (issue 11): a file of a repository ocib does not know, or of an embedded rule set that
    /// the prelude lacks, yields a module of stubs ([`stub::StubValue`]); a symbol a prelude
    /// file lacks is stubbed too. Each is warned about once per file. A missing file or symbol
    /// of the workspace's own (or a local) repository stays an error, as in Bazel.
    ///
    /// `dicts` are the symbols the loading file merges into a dict (`{...} | SYMBOL`): stubbed,
    /// they are empty dicts, since a dict's `|` accepts nothing else.
    fn load_lenient(
        &self,
        label: &Label,
        symbols: &[&str],
        dicts: &BTreeSet<&str>,
        chain: &mut Vec<Label>,
    ) -> Result<LoadedBzl, LoadError> {
        if !self.is_known_repo(&label.repo) {
            // rules_distroless's WORKSPACE idiom `load("@<name>//:packages.bzl", "<name>_packages")`
            // after `apt.install(name = ...)`: ocib declares those repositories itself (load/apt.rs),
            // so the stubbed call is the no-op it should be, not worth a warning.
            if label.package.is_empty() && label.name == "packages.bzl" && symbols == [format!("{}_packages", label.repo).as_str()] {
                self.warned_repos.lock().unwrap_or_else(|e| e.into_inner()).insert(label.to_string());
            }
            let why = format!("repository '@{}' is not known to ocib", label.repo);
            return self.stub_module(label, symbols, dicts, None, &why);
        }
        let Some(prelude_path) = self.prelude_path(label) else {
            return self.load_bzl(label, chain);
        };
        if self.prelude_text(&prelude_path).is_none() {
            return self.stub_module(label, symbols, dicts, None, "ocib's prelude lacks this file of the rule set");
        }
        let loaded = self.load_bzl(label, chain)?;
        // A symbol the pinned version of the rule set does not have is bound to None by the
        // prelude (e.g. rules_oci 2.x's `oci_tarball`): Bazel's error, not a stub.
        if let Some(absent) = symbols.iter().find(|s| matches!(loaded.module.get_option(s), Ok(Some(v)) if v.value().is_none())) {
            return Err(LoadError::unlocated(format!("file '{label}' does not contain symbol '{absent}'")));
        }
        let missing: Vec<&str> = symbols.iter().copied().filter(|s| !matches!(loaded.module.get_option(s), Ok(Some(_)))).collect();
        if missing.is_empty() {
            return Ok(loaded);
        }
        let why = format!("ocib's prelude lacks {}", missing.join(", "));
        let module = self.stub_module(label, symbols, dicts, Some(&loaded.module), &why)?.module;
        Ok(LoadedBzl { module, files: loaded.files, noisy: true })
    }

    /// The text of the prelude file at `path` (under `prelude/`): an embedded file, or one
    /// generated for this workspace. `rules_oci/oci/private/ocib_version.bzl` tells the
    /// rules_oci face which release the workspace pins (`RULES_OCI_VERSION`, `()` if
    /// unpinned), so its macros name hidden targets and export symbols as that release did.
    fn prelude_text(&self, path: &str) -> Option<std::borrow::Cow<'static, str>> {
        if path == RULES_OCI_VERSION_FILE {
            let version = match self.ws.rule_set_version("rules_oci") {
                Some((major, minor, patch)) => format!("({major}, {minor}, {patch})"),
                // Not None: a prelude symbol bound to None is one the release lacks.
                None => "()".to_owned(),
            };
            return Some(std::borrow::Cow::Owned(format!(
                "\"\"\"Generated by ocib: the rules_oci release this workspace pins.\"\"\"\n\nRULES_OCI_VERSION = {version}\n"
            )));
        }
        prelude_file(path).map(std::borrow::Cow::Borrowed)
    }

    /// The path in the embedded prelude that `label` is served from: any file of an embedded
    /// rule set's repository, or a file of a rule set's own copy that the prelude also has
    /// ([`Loader::own_copy_face`]).
    fn prelude_path(&self, label: &Label) -> Option<String> {
        let in_dir = |dir: &str| {
            if label.package.is_empty() { format!("{dir}/{}", label.name) } else { format!("{dir}/{}/{}", label.package, label.name) }
        };
        match self.ws.repos.get(&label.repo).map(|r| &r.source) {
            Some(RepoSource::Prelude(dir)) => Some(in_dir(dir)),
            _ => self.own_copy_face(label).map(in_dir),
        }
    }

    /// A repository's own copy of a rule set ocib embeds (issue 11 class 7): a
    /// `local_repository(name = "rules_oci", path = "../..")` / `local_path_override`, or the
    /// rule set's own repository evaluated as the main one (`module(name = "rules_oci")`).
    /// Its public load paths (`@rules_oci//oci:defs.bzl`, `//oci:defs.bzl`) are served by the
    /// embedded face, as for any other user of the rule set: the real source needs the real
    /// helpers (aspect_bazel_lib's internals) as values. Files the prelude lacks (the rule
    /// set's private .bzl files, its tests' helpers) still load from disk. Returns the
    /// prelude directory when `label` is such a file.
    fn own_copy_face(&self, label: &Label) -> Option<&'static str> {
        let name = if label.repo.is_empty() {
            self.ws.name.as_str()
        } else if matches!(self.ws.repos.get(&label.repo).map(|r| &r.source), Some(RepoSource::Local(_))) {
            label.repo.as_str()
        } else {
            return None;
        };
        let dir = crate::workspace::rule_set_dir(name)?;
        let path =
            if label.package.is_empty() { format!("{dir}/{}", label.name) } else { format!("{dir}/{}/{}", label.package, label.name) };
        self.prelude_text(&path).is_some().then_some(dir)
    }

    /// A module exporting `symbols`: those `base` has, and stubs for the others. Warns once
    /// per file with `why`.
    fn stub_module(
        &self,
        label: &Label,
        symbols: &[&str],
        dicts: &BTreeSet<&str>,
        base: Option<&FrozenModule>,
        why: &str,
    ) -> Result<LoadedBzl, LoadError> {
        count_emitted();
        let first = self.warned_repos.lock().unwrap_or_else(|e| e.into_inner()).insert(label.to_string());
        if first {
            eprintln!(
                "WARNING: loading '{label}': {why}; the symbols loaded from it are stubs (targets they declare are recorded, building them fails)"
            );
        }
        // The module is Starlark source: `load()` re-exports the symbols `base` has, and
        // `ocib.stub()` makes the others.
        let origin = label.to_string();
        let mut src = String::new();
        for s in symbols {
            if !s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || s.starts_with('_') {
                return Err(LoadError::new(format!("cannot load symbol '{s}' from '{label}'")));
            }
            match base {
                Some(b) if matches!(b.get_option(s), Ok(Some(_))) => {
                    src.push_str(&format!("load(\"base\", _{s} = \"{s}\")\n{s} = _{s}\n"));
                }
                _ if dicts.contains(s) => src.push_str(&format!("{s} = {{}}\n")),
                _ => src.push_str(&format!("{s} = ocib.stub(\"{s}\", {})\n", graph::quote(&origin))),
            }
        }
        let ast = AstModule::parse(&origin, src, &bzl_dialect()).map_err(LoadError::starlark)?;
        let deps: Vec<(String, LoadedBzl)> =
            base.map(|b| ("base".to_owned(), LoadedBzl { module: b.clone(), files: BTreeSet::new(), noisy: true })).into_iter().collect();
        let module = self.freeze_module(ast, &deps, &self.prelude_globals, &origin)?;
        Ok(LoadedBzl { module, files: BTreeSet::new(), noisy: true })
    }

    /// The text of a .bzl file and how to name it.
    fn read_bzl(&self, label: &Label) -> Result<(String, String, bool), LoadError> {
        let missing = |why: &str| LoadError::unlocated(format!("cannot load '{label}': {why}"));
        if let Some(path) = self.prelude_path(label) {
            let text = self
                .prelude_text(&path)
                .ok_or_else(|| missing("no such file in ocib's prelude (this part of the rule set is not supported)"))?;
            if self.cache.is_some() {
                self.bzl_inputs.lock().unwrap_or_else(|e| e.into_inner()).insert(label.clone(), Vec::new());
            }
            return Ok((label.to_string(), text.into_owned(), true));
        }
        let pkg = label.package_id();
        // A Go module repository is fetched on first use: say why that failed (e.g. GOPROXY
        // unreachable), not that the repository does not exist.
        if matches!(self.ws.repos.get(&label.repo).map(|r| &r.source), Some(RepoSource::GoModule(_)))
            && let Err(e) = self.ws.go_modules.materialize(&label.repo)
        {
            return Err(missing(&format!("{e:#}")));
        }
        let dir = self.ws.package_dir(&pkg).ok_or_else(|| missing("no such repository"))?;
        if !BUILD_FILE_NAMES.iter().any(|n| dir.join(n).is_file()) {
            return Err(missing(&format!("no such package '{}' (a .bzl file must be in a package)", package_display(&pkg))));
        }
        let path = dir.join(&label.name);
        let Some(cache) = self.cache.as_ref().filter(|_| self.cacheable_repo(&label.repo)) else {
            let text = source::read_source(&path).map_err(|e| missing(&format!("{}: {e}", path.display())))?;
            return Ok((self.display_path(&label.repo, &path), text, false));
        };
        // Stat'ed before it is read, as a BUILD file; the BUILD files that make its
        // directory a package are inputs too.
        let read = || -> std::io::Result<(std::fs::Metadata, Vec<u8>)> {
            let meta = std::fs::metadata(&path)?;
            Ok((meta, std::fs::read(&path)?))
        };
        let (meta, bytes) = read().map_err(|e| missing(&format!("{}: {e}", path.display())))?;
        let mut records = vec![cache.file_record(path.clone(), &meta, &bytes)];
        records.extend(BUILD_FILE_NAMES.iter().map(|n| cache.presence_record(dir.join(n))));
        self.bzl_inputs.lock().unwrap_or_else(|e| e.into_inner()).insert(label.clone(), records);
        Ok((self.display_path(&label.repo, &path), source::decode(bytes), false))
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
            let emitted_before = emitted();
            let (display, text, is_prelude) = self.read_bzl(label)?;
            if let Ok(mut map) = bzl_packages().write() {
                map.insert(display.clone(), (label.package_id(), self.ws.clone()));
            }
            source::check_nesting(&text).map_err(|at| LoadError::new(at.message(&display)))?;
            let ast = AstModule::parse(&display, text, &bzl_dialect()).map_err(LoadError::starlark)?;
            chain.push(label.clone());
            let mut files = BTreeSet::from([label.clone()]);
            let deps = self.load_dependencies(&ast, &label.package_id(), chain, &mut files);
            chain.pop();
            let deps = deps?;
            let globals = if is_prelude { &self.prelude_globals } else { &self.bzl_globals };
            let module = catch_panics(&display, || self.freeze_module(ast, &deps, globals, &label.to_string()))?;
            let noisy = emitted() != emitted_before || deps.iter().any(|(_, d)| d.noisy);
            Ok(LoadedBzl { module, files, noisy })
        })();
        // Dependencies were loaded before taking the cell, so two threads never wait on each
        // other; the first result stored wins.
        cell.get_or_init(|| result).clone()
    }

    fn freeze_module(
        &self,
        ast: AstModule,
        deps: &[(String, LoadedBzl)],
        globals: &Globals,
        name: &str,
    ) -> Result<FrozenModule, LoadError> {
        let refs: HashMap<&str, &FrozenModule> = deps.iter().map(|(k, v)| (k.as_str(), &v.module)).collect();
        let loader = ReturnFileLoader { modules: &refs };
        Module::with_temp_heap(|module| -> Result<FrozenModule, LoadError> {
            {
                let mut eval = Evaluator::new(&module);
                let limited = limit_evaluator(&mut eval);
                eval.set_loader(&loader);
                eval.set_print_handler(&DebugPrint);
                eval.eval_module(ast, globals).map_err(|e| LoadError::new(limited.message(e)))?;
            }
            module.freeze_named(FrozenHeapName::User(Box::new(name.to_owned()))).map_err(|e| LoadError::new(format!("{name}: {e:?}")))
        })
    }

    /// Bazel's BUILD prelude: `//tools/build_rules:prelude_bazel`, whose top-level names
    /// every BUILD file of the workspace sees. As in Bazel (checked with 4.2.3), it is ignored
    /// unless `tools/build_rules` is a package.
    fn build_prelude(&self) -> Result<Option<BuildPrelude>, LoadError> {
        self.build_prelude
            .get_or_init(|| {
                let dir = self.ws.root.join("tools/build_rules");
                let path = dir.join("prelude_bazel");
                if !path.is_file() || !BUILD_FILE_NAMES.iter().any(|n| dir.join(n).is_file()) {
                    return Ok(None);
                }
                let label = Label { repo: String::new(), package: "tools/build_rules".into(), name: "prelude_bazel".into() };
                let loaded = self.load_bzl(&label, &mut Vec::new())?;
                let text = source::read_source(&path).map_err(|e| LoadError::at(path.display(), e))?;
                let ast = AstModule::parse("tools/build_rules/prelude_bazel", text, &bzl_dialect()).map_err(LoadError::starlark)?;
                Ok(Some(BuildPrelude { loaded, names: ast_info::top_level_names(&ast) }))
            })
            .clone()
    }

    /// Evaluates a .bzl file for WORKSPACE / MODULE.bazel evaluation and returns it, as
    /// leniently as a BUILD file's loads ([`Loader::load_lenient`]).
    pub(crate) fn load_for_repository_file(&self, label: &Label, symbols: &[&str]) -> Result<FrozenModule, LoadError> {
        Ok(self.load_lenient(label, symbols, &BTreeSet::new(), &mut Vec::new())?.module)
    }
}

/// The prelude path of the generated file holding the rules_oci version a workspace pins.
const RULES_OCI_VERSION_FILE: &str = "rules_oci/oci/private/ocib_version.bzl";

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
            BuildText::File(p) => source::read_source(&p),
            BuildText::Static(s) => Ok(s.to_owned()),
            BuildText::Owned(s) => Ok(s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The location and the cause are separate parts, each printed once.
    #[test]
    fn load_error_renders_location_and_cause_once() {
        let e = LoadError::at("p/BUILD", std::io::Error::other("permission denied"));
        assert_eq!(e.to_string(), "p/BUILD", "Display is this level only");
        assert_eq!(e.render(), "p/BUILD: permission denied");
        assert_eq!(format!("{:#}", anyhow::Error::from(e)), "p/BUILD: permission denied");
    }
}
