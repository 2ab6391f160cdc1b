//! The values a rule implementation works with besides providers: `File`, `Target`
//! (a dependency, indexable by provider), `runfiles` and `Args` (`ctx.actions.args()`).

// The functions mirror Bazel's, whose signatures have many keyword parameters.
#![allow(clippy::too_many_arguments)]

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use allocative::Allocative;
use anyhow::anyhow;
use starlark::any::ProvidesStaticType;
use starlark::collections::SmallMap;
use starlark::environment::{Methods, MethodsBuilder, MethodsStatic};
use starlark::eval::Evaluator;
use starlark::starlark_simple_value;
use starlark::values::dict::AllocDict;
use starlark::values::list::AllocList;
use starlark::values::none::NoneOr;
use starlark::values::structs::AllocStruct;
use starlark::values::{Heap, NoSerialize, StarlarkPagablePanic, StarlarkValue, Value, ValueLike, starlark_value};

use crate::analysis::{ConfiguredTarget, GoInfo};
use crate::exec::Artifact;
use crate::graph::label::Label;
use crate::load::providers::{
    DEFAULT_INFO, Depset, GO_ARCHIVE, GO_INFO, OUTPUT_GROUP_INFO, ProviderInstance, ProviderInstanceGen, RUN_ENVIRONMENT_INFO,
    iterate_elements, make_depset, provider_id,
};
use crate::load::values::LabelValue;

fn err(e: impl fmt::Display) -> starlark::Error {
    starlark::Error::new_other(anyhow!("{e}"))
}

/// A `File`: a source file or an output, by its exec path.
#[derive(Debug, Clone, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
pub struct FileValue {
    #[allocative(skip)]
    pub artifact: Artifact,
    /// The target that owns the file (its rule, or the source file's label).
    #[allocative(skip)]
    pub owner: Option<Label>,
    pub is_directory: bool,
}
starlark_simple_value!(FileValue);

impl FileValue {
    /// The directory derived files of this file's configuration live in, or "" for sources.
    fn root(&self) -> String {
        if self.artifact.is_source() {
            return String::new();
        }
        let p = &self.artifact.exec_path;
        match p.find("/bin/") {
            Some(i) => p[..i + 4].to_owned(),
            None => String::new(),
        }
    }
}

impl fmt::Display for FileValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.artifact.is_source() {
            write!(f, "<source file {}>", self.artifact.short_path())
        } else {
            write!(f, "<generated file {}>", self.artifact.short_path())
        }
    }
}

#[starlark_value(type = "File")]
impl<'v> StarlarkValue<'v> for FileValue {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        let a = &self.artifact;
        Some(match attribute {
            "path" => heap.alloc(a.exec_path.as_str()),
            "short_path" => heap.alloc(a.short_path()),
            "basename" => heap.alloc(a.basename()),
            "dirname" => heap.alloc(a.exec_path.rsplit_once('/').map(|(d, _)| d).unwrap_or("")),
            "extension" => heap.alloc(a.basename().rsplit_once('.').map(|(_, e)| e).unwrap_or("")),
            "is_source" => Value::new_bool(a.is_source()),
            "is_directory" => Value::new_bool(self.is_directory),
            "owner" => match &self.owner {
                Some(l) => heap.alloc(LabelValue(l.clone())),
                None => Value::new_none(),
            },
            "root" => heap.alloc(RootValue { path: self.root() }),
            "tree_relative_path" => heap.alloc(""),
            _ => return None,
        })
    }

    fn dir_attr(&self) -> Vec<String> {
        ["basename", "dirname", "extension", "is_directory", "is_source", "owner", "path", "root", "short_path"].map(String::from).to_vec()
    }

    fn equals(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(other.downcast_ref::<FileValue>().is_some_and(|o| o.artifact.exec_path == self.artifact.exec_path))
    }

    fn write_hash(&self, hasher: &mut starlark::collections::StarlarkHasher) -> starlark::Result<()> {
        use std::hash::Hash;
        self.artifact.exec_path.hash(hasher);
        Ok(())
    }

    fn compare(&self, other: Value<'v>) -> starlark::Result<std::cmp::Ordering> {
        match other.downcast_ref::<FileValue>() {
            Some(o) => Ok(self.artifact.exec_path.cmp(&o.artifact.exec_path)),
            None => Err(err(format!("cannot compare File with '{}'", other.get_type()))),
        }
    }
}

/// A file's `root` (`bin_dir` and `genfiles_dir` are ones too).
#[derive(Debug, Clone, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
pub struct RootValue {
    pub path: String,
}
starlark_simple_value!(RootValue);

impl fmt::Display for RootValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<root {}>", self.path)
    }
}

#[starlark_value(type = "root")]
impl<'v> StarlarkValue<'v> for RootValue {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        (attribute == "path").then(|| heap.alloc(self.path.as_str()))
    }
}

/// The `File` of an artifact.
pub fn file_value<'v>(heap: Heap<'v>, artifact: &Artifact, owner: Option<&Label>, is_directory: bool) -> Value<'v> {
    heap.alloc(FileValue { artifact: artifact.clone(), owner: owner.cloned(), is_directory })
}

/// The artifact of a `File` value.
pub fn artifact_of(v: Value) -> starlark::Result<Artifact> {
    v.downcast_ref::<FileValue>().map(|f| f.artifact.clone()).ok_or_else(|| err(format!("expected a File, got '{}'", v.get_type())))
}

/// The artifacts of a list or depset of `File`s (None: none).
pub fn artifacts_of(v: Value) -> starlark::Result<Vec<Artifact>> {
    iterate_elements(v)?.into_iter().map(artifact_of).collect()
}

/// `runfiles`: the files an executable needs at run time.
#[derive(Debug, Clone, Default, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
pub struct RunfilesValue {
    /// Files, in order, each once.
    #[allocative(skip)]
    pub files: Vec<Artifact>,
    /// `symlinks`: runfiles path → file.
    #[allocative(skip)]
    pub symlinks: BTreeMap<String, Artifact>,
    /// `root_symlinks`: path under the runfiles root → file.
    #[allocative(skip)]
    pub root_symlinks: BTreeMap<String, Artifact>,
}
starlark_simple_value!(RunfilesValue);

impl RunfilesValue {
    /// Adds `other`'s files after this one's (first occurrence wins, as Bazel's merge).
    pub fn merge(&mut self, other: &RunfilesValue) {
        for f in &other.files {
            if !self.files.contains(f) {
                self.files.push(f.clone());
            }
        }
        for (k, v) in &other.symlinks {
            self.symlinks.entry(k.clone()).or_insert_with(|| v.clone());
        }
        for (k, v) in &other.root_symlinks {
            self.root_symlinks.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }

    /// Every file the runfiles hold (symlink targets included).
    pub fn all_files(&self) -> Vec<Artifact> {
        let mut out = self.files.clone();
        for f in self.symlinks.values().chain(self.root_symlinks.values()) {
            if !out.contains(f) {
                out.push(f.clone());
            }
        }
        out
    }
}

impl fmt::Display for RunfilesValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<runfiles of {} files>", self.files.len())
    }
}

#[starlark_value(type = "runfiles")]
impl<'v> StarlarkValue<'v> for RunfilesValue {
    fn get_methods() -> Option<&'static Methods> {
        static RES: MethodsStatic = MethodsStatic::new("runfiles", runfiles_methods);
        Some(RES.methods())
    }

    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        match attribute {
            "files" => {
                let files: Vec<Value> = self.files.iter().map(|a| file_value(heap, a, None, false)).collect();
                make_depset(Some(heap.alloc(AllocList(files))), "default", None, heap).ok()
            }
            "empty_filenames" => make_depset(None, "default", None, heap).ok(),
            _ => None,
        }
    }
}

#[starlark::starlark_module]
fn runfiles_methods(builder: &mut MethodsBuilder) {
    /// `runfiles.merge(other)`: a new runfiles with both.
    fn merge<'v>(this: Value<'v>, #[starlark(require = pos)] other: Value<'v>, heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        let mut merged = runfiles_of(this)?;
        merged.merge(&runfiles_of(other)?);
        Ok(heap.alloc(merged))
    }

    /// `runfiles.merge_all([others])`.
    fn merge_all<'v>(this: Value<'v>, #[starlark(require = pos)] other: Value<'v>, heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        let mut merged = runfiles_of(this)?;
        for r in iterate_elements(other)? {
            merged.merge(&runfiles_of(r)?);
        }
        Ok(heap.alloc(merged))
    }
}

/// The runfiles a value is (None: empty).
pub fn runfiles_of(v: Value) -> starlark::Result<RunfilesValue> {
    if v.is_none() {
        return Ok(RunfilesValue::default());
    }
    v.downcast_ref::<RunfilesValue>().cloned().ok_or_else(|| err(format!("expected runfiles, got '{}'", v.get_type())))
}

/// A dependency as `ctx.attr` shows it: its label, and its providers by `target[P]`.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
pub struct TargetValue {
    #[allocative(skip)]
    pub target: Arc<ConfiguredTarget>,
}
starlark_simple_value!(TargetValue);

impl fmt::Display for TargetValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<target {}>", self.target.label)
    }
}

impl TargetValue {
    /// The Starlark providers the target's rule returned (none for native targets).
    fn starlark_provider<'v>(&self, id: u64) -> Option<Value<'v>> {
        let list = self.target.providers.starlark.as_ref()?;
        // SAFETY: the module analysing a dependent references the heap of every dependency's
        // providers before it runs (`rules::starlark::analyze`), and this value holds the
        // target (so the heap) for as long as it lives.
        let value = unsafe { list.unchecked_frozen_value() }.to_value();
        iterate_elements(value).ok()?.into_iter().find(|p| ProviderInstance::from_value(*p).is_some_and(|i| i.provider_id == id))
    }

    /// `target[P]`, or None when the target does not have `P`.
    pub fn provider<'v>(&self, id: u64, heap: Heap<'v>) -> Option<Value<'v>> {
        let p = &self.target.providers;
        match id {
            DEFAULT_INFO => Some(default_info(heap, &self.target)),
            OUTPUT_GROUP_INFO => {
                if let Some(v) = self.starlark_provider(id) {
                    return Some(v);
                }
                let mut fields = SmallMap::new();
                for (group, files) in &p.output_groups {
                    fields.insert(group.clone(), files_depset(heap, files, Some(&self.target.label)));
                }
                Some(heap.alloc(ProviderInstanceGen { provider_id: OUTPUT_GROUP_INFO, name: "OutputGroupInfo".into(), fields }))
            }
            RUN_ENVIRONMENT_INFO => self.starlark_provider(id),
            GO_INFO | GO_ARCHIVE => match &p.go {
                Some(go) => Some(go_provider(heap, id, &self.target.label, go)),
                None => self.starlark_provider(id),
            },
            _ => self.starlark_provider(id),
        }
    }
}

/// rules_go's `GoInfo` / `GoArchive` of a native Go target: the fields ocib knows
/// (`importpath`, `importmap`, `srcs`, `x_defs`; the archive as `GoArchive.data.file`).
fn go_provider<'v>(heap: Heap<'v>, id: u64, label: &Label, go: &GoInfo) -> Value<'v> {
    let files = |files: &[Artifact]| heap.alloc(AllocList(files.iter().map(|a| file_value(heap, a, Some(label), false))));
    let x_defs = || heap.alloc(AllocDict(go.x_defs.iter().map(|(k, v)| (heap.alloc(k.as_str()), heap.alloc(v.as_str())))));
    let mut info = SmallMap::new();
    info.insert("name".to_owned(), heap.alloc(label.name.as_str()));
    info.insert("label".to_owned(), heap.alloc(LabelValue(label.clone())));
    info.insert("importpath".to_owned(), heap.alloc(go.importpath.as_str()));
    info.insert("importmap".to_owned(), heap.alloc(go.importmap.as_str()));
    info.insert("pathtype".to_owned(), heap.alloc(if go.importpath.is_empty() { "inferred" } else { "explicit" }));
    info.insert("srcs".to_owned(), files(&go.srcs));
    info.insert("embedsrcs".to_owned(), files(&go.embedsrcs));
    info.insert("x_defs".to_owned(), x_defs());
    let source = heap.alloc(ProviderInstanceGen { provider_id: GO_INFO, name: "GoInfo".into(), fields: info });
    if id == GO_INFO {
        return source;
    }
    let data = |importpath: &str, importmap: &str, file: &Artifact| {
        heap.alloc(AllocStruct([
            ("importpath", heap.alloc(importpath)),
            ("importmap", heap.alloc(importmap)),
            ("file", file_value(heap, file, None, false)),
        ]))
    };
    let own = heap.alloc(AllocStruct([
        ("name", heap.alloc(label.name.as_str())),
        ("label", heap.alloc(LabelValue(label.clone()))),
        ("importpath", heap.alloc(go.importpath.as_str())),
        ("importmap", heap.alloc(go.importmap.as_str())),
        ("file", file_value(heap, &go.archive, Some(label), false)),
        ("srcs", files(&go.srcs)),
    ]));
    let transitive: Vec<Value> = go.transitive.iter().map(|(importmap, file)| data(importmap, importmap, file)).collect();
    let mut archive = SmallMap::new();
    archive.insert("source".to_owned(), source);
    archive.insert("data".to_owned(), own);
    archive.insert("transitive".to_owned(), heap.alloc(Depset::new_direct(transitive)));
    archive.insert("x_defs".to_owned(), x_defs());
    heap.alloc(ProviderInstanceGen { provider_id: GO_ARCHIVE, name: "GoArchive".into(), fields: archive })
}

/// A depset of `File`s.
pub fn files_depset<'v>(heap: Heap<'v>, files: &[Artifact], owner: Option<&Label>) -> Value<'v> {
    let values: Vec<Value> = files.iter().map(|a| file_value(heap, a, owner, false)).collect();
    heap.alloc(Depset::new_direct(values))
}

/// DefaultInfo of any target, from the providers analysis keeps for every target.
fn default_info<'v>(heap: Heap<'v>, target: &ConfiguredTarget) -> Value<'v> {
    let p = &target.providers;
    let owner = Some(&target.label);
    let dir = |a: &Artifact| p.oci_layout.as_ref() == Some(a) || p.directories.contains(&a.exec_path);
    let files: Vec<Value> = p.files.iter().map(|a| file_value(heap, a, owner, dir(a))).collect();
    let runfiles = RunfilesValue { files: p.runfiles.clone(), ..Default::default() };
    let mut fields = SmallMap::new();
    fields.insert("files".to_owned(), heap.alloc(Depset::new_direct(files)));
    fields.insert("default_runfiles".to_owned(), heap.alloc(runfiles.clone()));
    fields.insert("data_runfiles".to_owned(), heap.alloc(runfiles));
    fields.insert("files_to_run".to_owned(), heap.alloc(FilesToRunValue { executable: p.executable.clone() }));
    heap.alloc(ProviderInstanceGen { provider_id: DEFAULT_INFO, name: "DefaultInfo".into(), fields })
}

/// `FilesToRunProvider`: a target's executable.
#[derive(Debug, Clone, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
pub struct FilesToRunValue {
    #[allocative(skip)]
    pub executable: Option<Artifact>,
}
starlark_simple_value!(FilesToRunValue);

impl fmt::Display for FilesToRunValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<FilesToRunProvider>")
    }
}

#[starlark_value(type = "FilesToRunProvider")]
impl<'v> StarlarkValue<'v> for FilesToRunValue {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        match attribute {
            "executable" => Some(match &self.executable {
                Some(e) => file_value(heap, e, None, false),
                None => Value::new_none(),
            }),
            "runfiles_manifest" | "repo_mapping_manifest" => Some(Value::new_none()),
            _ => None,
        }
    }
}

#[starlark_value(type = "Target")]
impl<'v> StarlarkValue<'v> for TargetValue {
    fn at(&self, index: Value<'v>, heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        let id = provider_id(index).ok_or_else(|| err(format!("a Target is indexed by a provider, not '{}'", index.get_type())))?;
        self.provider(id, heap).ok_or_else(|| {
            err(format!(
                "<target {}> doesn't contain declared provider '{}'",
                self.target.label,
                index.to_str().trim_start_matches("<provider ").trim_end_matches('>')
            ))
        })
    }

    fn is_in(&self, other: Value<'v>) -> starlark::Result<bool> {
        let id = provider_id(other).ok_or_else(|| err(format!("'in Target' needs a provider, not '{}'", other.get_type())))?;
        Ok(match id {
            DEFAULT_INFO => true,
            OUTPUT_GROUP_INFO => !self.target.providers.output_groups.is_empty() || self.starlark_provider(id).is_some(),
            GO_INFO | GO_ARCHIVE => self.target.providers.go.is_some() || self.starlark_provider(id).is_some(),
            _ => self.starlark_provider(id).is_some(),
        })
    }

    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        match attribute {
            "label" => Some(heap.alloc(LabelValue(self.target.label.clone()))),
            "files" | "default_runfiles" | "data_runfiles" | "files_to_run" => {
                default_info(heap, &self.target).get_attr(attribute, heap).ok().flatten()
            }
            "output_groups" => self.provider(OUTPUT_GROUP_INFO, heap),
            _ => None,
        }
    }

    fn dir_attr(&self) -> Vec<String> {
        ["label", "files", "default_runfiles", "data_runfiles", "files_to_run", "output_groups"].map(String::from).to_vec()
    }
}

/// One argument source added to an `Args`, expanded when it is added (Bazel expands lazily;
/// the command line is the same).
#[derive(Debug, Default)]
struct ArgsState {
    args: Vec<String>,
    param_file_flag: Option<String>,
    use_always: bool,
    param_file_format: String,
}

/// `ctx.actions.args()`: a command line built piece by piece.
#[derive(Debug, Default, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
pub struct ArgsValue {
    #[allocative(skip)]
    state: Mutex<ArgsState>,
}
starlark_simple_value!(ArgsValue);

impl fmt::Display for ArgsValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<Args>")
    }
}

impl ArgsValue {
    fn lock(&self) -> std::sync::MutexGuard<'_, ArgsState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The arguments, and the param file (flag format, contents) when one is asked for.
    pub fn command_line(&self) -> (Vec<String>, Option<(String, String)>) {
        let s = self.lock();
        match &s.param_file_flag {
            Some(flag) => {
                let content = match s.param_file_format.as_str() {
                    "multiline" => s.args.iter().map(|a| format!("{a}\n")).collect(),
                    _ => s.args.iter().map(|a| format!("{}\n", shell_quote(a))).collect(),
                };
                (Vec::new(), Some((flag.clone(), content)))
            }
            None => (s.args.clone(), None),
        }
    }

    /// Whether the arguments are empty (for `omit_if_empty` of a param file).
    pub fn use_always(&self) -> bool {
        self.lock().use_always
    }
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "@%_-+=:,./".contains(c)) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// How `Args` turns a value into a string: a File by its path, a Label as `//p:n`.
pub fn arg_string(v: Value) -> String {
    if let Some(f) = v.downcast_ref::<FileValue>() {
        return f.artifact.exec_path.clone();
    }
    if let Some(s) = v.unpack_str() {
        return s.to_owned();
    }
    v.to_str()
}

fn format_with(format: &str, value: &str) -> starlark::Result<String> {
    if format.matches("%s").count() != 1 {
        return Err(err(format!("format '{format}' must contain exactly one '%s'")));
    }
    Ok(format.replacen("%s", value, 1))
}

/// Expands the values of `add_all`/`add_joined`: `map_each` (each result a string, a list of
/// strings or None), then `format_each`, then `uniquify`.
fn expand_each<'v>(
    values: Value<'v>,
    map_each: Option<Value<'v>>,
    format_each: Option<&str>,
    uniquify: bool,
    eval: &mut Evaluator<'v, '_, '_>,
) -> starlark::Result<Vec<String>> {
    let mut out = Vec::new();
    for v in iterate_elements(values)? {
        let mapped: Vec<String> = match map_each {
            Some(f) => {
                let r = eval.eval_function(f, &[v], &[])?;
                if r.is_none() {
                    vec![]
                } else if let Some(s) = r.unpack_str() {
                    vec![s.to_owned()]
                } else {
                    iterate_elements(r)?.into_iter().map(arg_string).collect()
                }
            }
            None => vec![arg_string(v)],
        };
        for m in mapped {
            out.push(match format_each {
                Some(f) => format_with(f, &m)?,
                None => m,
            });
        }
    }
    if uniquify {
        let mut seen = std::collections::HashSet::new();
        out.retain(|s| seen.insert(s.clone()));
    }
    Ok(out)
}

#[starlark_value(type = "Args")]
impl<'v> StarlarkValue<'v> for ArgsValue {
    fn get_methods() -> Option<&'static Methods> {
        static RES: MethodsStatic = MethodsStatic::new("Args", args_methods);
        Some(RES.methods())
    }
}

fn args_of<'v>(this: Value<'v>) -> starlark::Result<&'v ArgsValue> {
    this.downcast_ref::<ArgsValue>().ok_or_else(|| err("not an Args"))
}

#[starlark::starlark_module]
fn args_methods(builder: &mut MethodsBuilder) {
    /// `args.add([arg_name], value, format = None)`.
    fn add<'v>(
        this: Value<'v>,
        #[starlark(require = pos)] arg_name_or_value: Value<'v>,
        #[starlark(require = pos, default = NoneOr::None)] value: NoneOr<Value<'v>>,
        #[starlark(require = named, default = NoneOr::None)] format: NoneOr<&str>,
    ) -> starlark::Result<Value<'v>> {
        let args = args_of(this)?;
        let (name, value) = match value.into_option() {
            Some(v) => (Some(arg_string(arg_name_or_value)), v),
            None => (None, arg_name_or_value),
        };
        let mut text = arg_string(value);
        if let Some(f) = format.into_option() {
            text = format_with(f, &text)?;
        }
        let mut s = args.lock();
        s.args.extend(name);
        s.args.push(text);
        Ok(this)
    }

    /// `args.add_all([arg_name], values, map_each, format_each, before_each, omit_if_empty,
    /// uniquify, expand_directories, terminate_with, allow_closure)`.
    fn add_all<'v>(
        this: Value<'v>,
        #[starlark(require = pos)] arg_name_or_values: Value<'v>,
        #[starlark(require = pos, default = NoneOr::None)] values: NoneOr<Value<'v>>,
        #[starlark(require = named, default = NoneOr::None)] map_each: NoneOr<Value<'v>>,
        #[starlark(require = named, default = NoneOr::None)] format_each: NoneOr<&str>,
        #[starlark(require = named, default = NoneOr::None)] before_each: NoneOr<&str>,
        #[starlark(require = named, default = true)] omit_if_empty: bool,
        #[starlark(require = named, default = false)] uniquify: bool,
        #[starlark(require = named, default = true)] expand_directories: bool,
        #[starlark(require = named, default = NoneOr::None)] terminate_with: NoneOr<&str>,
        #[starlark(require = named, default = false)] allow_closure: bool,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        let _ = (expand_directories, allow_closure);
        let (name, values) = match values.into_option() {
            Some(v) => (Some(arg_string(arg_name_or_values)), v),
            None => (None, arg_name_or_values),
        };
        let items = expand_each(values, map_each.into_option(), format_each.into_option(), uniquify, eval)?;
        let args = args_of(this)?;
        let mut s = args.lock();
        if items.is_empty() && omit_if_empty {
            return Ok(this);
        }
        s.args.extend(name);
        for item in items {
            if let Some(b) = before_each.into_option() {
                s.args.push(b.to_owned());
            }
            s.args.push(item);
        }
        if let Some(t) = terminate_with.into_option() {
            s.args.push(t.to_owned());
        }
        Ok(this)
    }

    /// `args.add_joined([arg_name], values, join_with, map_each, format_each, format_joined,
    /// omit_if_empty, uniquify)`.
    fn add_joined<'v>(
        this: Value<'v>,
        #[starlark(require = pos)] arg_name_or_values: Value<'v>,
        #[starlark(require = pos, default = NoneOr::None)] values: NoneOr<Value<'v>>,
        #[starlark(require = named)] join_with: &str,
        #[starlark(require = named, default = NoneOr::None)] map_each: NoneOr<Value<'v>>,
        #[starlark(require = named, default = NoneOr::None)] format_each: NoneOr<&str>,
        #[starlark(require = named, default = NoneOr::None)] format_joined: NoneOr<&str>,
        #[starlark(require = named, default = true)] omit_if_empty: bool,
        #[starlark(require = named, default = false)] uniquify: bool,
        #[starlark(require = named, default = true)] expand_directories: bool,
        #[starlark(require = named, default = false)] allow_closure: bool,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        let _ = (expand_directories, allow_closure);
        let (name, values) = match values.into_option() {
            Some(v) => (Some(arg_string(arg_name_or_values)), v),
            None => (None, arg_name_or_values),
        };
        let items = expand_each(values, map_each.into_option(), format_each.into_option(), uniquify, eval)?;
        let args = args_of(this)?;
        let mut s = args.lock();
        if items.is_empty() && omit_if_empty {
            return Ok(this);
        }
        let mut joined = items.join(join_with);
        if let Some(f) = format_joined.into_option() {
            joined = format_with(f, &joined)?;
        }
        s.args.extend(name);
        s.args.push(joined);
        Ok(this)
    }

    /// `args.use_param_file(param_file_arg, use_always = False)`.
    fn use_param_file<'v>(
        this: Value<'v>,
        #[starlark(require = pos)] param_file_arg: &str,
        #[starlark(require = named, default = false)] use_always: bool,
    ) -> starlark::Result<Value<'v>> {
        if !param_file_arg.contains("%s") {
            return Err(err(format!("use_param_file: '{param_file_arg}' must contain '%s'")));
        }
        let mut s = args_of(this)?.lock();
        s.param_file_flag = Some(param_file_arg.to_owned());
        s.use_always = use_always;
        Ok(this)
    }

    /// `args.set_param_file_format("shell" | "multiline" | "flag_per_line")`.
    fn set_param_file_format<'v>(this: Value<'v>, #[starlark(require = pos)] format: &str) -> starlark::Result<Value<'v>> {
        if !matches!(format, "shell" | "multiline" | "flag_per_line") {
            return Err(err(format!("invalid param file format '{format}'")));
        }
        args_of(this)?.lock().param_file_format = format.to_owned();
        Ok(this)
    }
}
