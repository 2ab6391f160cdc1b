//! Users' own Bzlmod module extensions and repository rules (issue 11): a MODULE.bazel
//! `use_extension("//pkg:ext.bzl", "name")` of the main repository runs the extension's
//! implementation with a `module_ctx`, and the repository rules it calls for the names
//! `use_repo` imports run with a `repository_ctx` that writes the repository under
//! `<workspace>/ocib-out/external/<name>`. ocib runs them offline: `download*` and `execute`
//! fail with an error naming the call, and the repository is then unknown (with a warning),
//! as for any repository rule ocib does not implement.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use allocative::Allocative;
use anyhow::{Result, anyhow, bail};
use starlark::any::ProvidesStaticType;
use starlark::coerce::Coerce;
use starlark::collections::SmallMap;
use starlark::environment::{FrozenModule, Methods, MethodsBuilder, MethodsStatic, Module};
use starlark::eval::{Arguments, Evaluator};
use starlark::starlark_complex_value;
use starlark::starlark_module;
use starlark::starlark_simple_value;
use starlark::values::dict::DictRef;
use starlark::values::list::AllocList;
use starlark::values::none::{NoneOr, NoneType};
use starlark::values::structs::AllocStruct;
use starlark::values::{
    Freeze, FreezeResult, Freezer, FrozenValue, Heap, NoSerialize, StarlarkPagablePanic, StarlarkValue, Trace, Value, ValueLike,
    starlark_value,
};

use super::Loader;
use super::context::{RepoFileContext, TagCall};
use super::rule_def::AttrDescriptor;
use super::values::{LabelValue, raw_to_value, to_raw};
use crate::graph::label::{Label, PackageId};
use crate::graph::schema::RuleKinds;
use crate::graph::{AttrType, Raw};
use crate::workspace::{Repo, RepoSource, Workspace};

/// One attribute of a `tag_class()` or `repository_rule()`.
#[derive(Debug, Clone)]
pub struct AttrSpec {
    name: String,
    ty: AttrType,
    default: Option<Raw>,
    mandatory: bool,
}

/// The attribute specs of an `attrs = {name: attr.*(...)}` dict.
fn attr_specs(attrs: Option<Value>) -> Result<Vec<AttrSpec>> {
    let Some(attrs) = attrs.filter(|v| !v.is_none()) else { return Ok(Vec::new()) };
    let dict = DictRef::from_value(attrs).ok_or_else(|| anyhow!("attrs must be a dict, got '{}'", attrs.get_type()))?;
    let mut out = Vec::new();
    for (k, v) in dict.iter() {
        let name = k.unpack_str().ok_or_else(|| anyhow!("attrs keys must be strings, got {}", k.to_repr()))?.to_owned();
        let spec = match AttrDescriptor::from_value(v) {
            Some(d) => AttrSpec { name, ty: d.ty, default: d.default.clone(), mandatory: d.mandatory },
            // An `attr.*` kind ocib does not type: kept as written.
            None => AttrSpec { name, ty: AttrType::Any, default: None, mandatory: false },
        };
        out.push(spec);
    }
    Ok(out)
}

/// Bazel's default for an attribute given no `default`: the type's empty value.
fn empty_value(ty: AttrType) -> Raw {
    match ty {
        AttrType::Bool => Raw::Bool(false),
        AttrType::Int => Raw::Int(0),
        AttrType::String => Raw::String(String::new()),
        AttrType::StringList | AttrType::IntList | AttrType::LabelList | AttrType::OutputList => Raw::List(Vec::new()),
        AttrType::StringDict | AttrType::StringListDict | AttrType::LabelKeyedStringDict | AttrType::StringKeyedLabelDict => {
            Raw::Dict(Vec::new())
        }
        AttrType::Label | AttrType::Output | AttrType::Any => Raw::None,
    }
}

/// The attribute values a call gives, completed with the declared defaults; `what` names
/// the call in errors (a missing mandatory attribute is one, as in Bazel).
fn complete_attrs(specs: &[AttrSpec], given: &BTreeMap<String, Raw>, what: &str) -> Result<BTreeMap<String, Raw>> {
    let mut out = given.clone();
    for spec in specs {
        if out.contains_key(&spec.name) {
            continue;
        }
        if spec.mandatory {
            bail!("{what}: missing mandatory attribute '{}'", spec.name);
        }
        out.insert(spec.name.clone(), spec.default.clone().unwrap_or_else(|| empty_value(spec.ty)));
    }
    Ok(out)
}

/// What `tag_class(attrs)` returns.
#[derive(Debug, Clone, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
pub struct TagClass {
    #[allocative(skip)]
    attrs: Vec<AttrSpec>,
}
starlark_simple_value!(TagClass);

impl TagClass {
    /// `tag_class(attrs = {...})`.
    pub fn new(attrs: Option<Value>) -> Result<TagClass> {
        Ok(TagClass { attrs: attr_specs(attrs)? })
    }
}

impl fmt::Display for TagClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<tag_class>")
    }
}

#[starlark_value(type = "tag_class")]
impl<'v> StarlarkValue<'v> for TagClass {}

/// What `module_extension(implementation, tag_classes)` returns.
#[derive(Debug, Trace, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
#[repr(C)]
pub struct ModuleExtensionGen<V> {
    #[allocative(skip)]
    implementation: V,
    /// Tag class name → its attributes.
    #[trace(static)]
    #[allocative(skip)]
    tag_classes: Vec<(String, Vec<AttrSpec>)>,
}
starlark_complex_value!(pub ModuleExtension);

// SAFETY: `repr(C)`, and only `implementation` depends on the value type.
unsafe impl<'v> Coerce<ModuleExtensionGen<Value<'v>>> for ModuleExtensionGen<FrozenValue> {}

impl<'v> Freeze for ModuleExtension<'v> {
    type Frozen = FrozenModuleExtension;
    fn freeze(self, freezer: &Freezer) -> FreezeResult<FrozenModuleExtension> {
        Ok(ModuleExtensionGen { implementation: self.implementation.freeze(freezer)?, tag_classes: self.tag_classes })
    }
}

impl<'v> ModuleExtension<'v> {
    /// `module_extension(implementation, tag_classes = {name: tag_class(...)})`.
    pub fn new(implementation: Value<'v>, tag_classes: Option<Value<'v>>) -> Result<ModuleExtension<'v>> {
        let mut classes = Vec::new();
        if let Some(tc) = tag_classes.filter(|v| !v.is_none()) {
            let dict = DictRef::from_value(tc).ok_or_else(|| anyhow!("tag_classes must be a dict, got '{}'", tc.get_type()))?;
            for (k, v) in dict.iter() {
                let name = k.unpack_str().ok_or_else(|| anyhow!("tag_classes keys must be strings, got {}", k.to_repr()))?;
                let class = v
                    .downcast_ref::<TagClass>()
                    .ok_or_else(|| anyhow!("tag_classes['{name}'] must be a tag_class(), got '{}'", v.get_type()))?;
                classes.push((name.to_owned(), class.attrs.clone()));
            }
        }
        Ok(ModuleExtensionGen { implementation, tag_classes: classes })
    }
}

impl<V> fmt::Display for ModuleExtensionGen<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<module_extension>")
    }
}

#[starlark_value(type = "module_extension")]
impl<'v, V: ValueLike<'v>> StarlarkValue<'v> for ModuleExtensionGen<V> where Self: ProvidesStaticType<'v> {}

/// What `repository_rule(implementation, attrs)` returns. Called in a module extension it
/// declares a repository that ocib generates when the main module uses it; called in
/// WORKSPACE it declares a repository ocib does not generate (unknown).
#[derive(Debug, Trace, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
#[repr(C)]
pub struct RepositoryRuleGen<V> {
    #[allocative(skip)]
    implementation: V,
    #[trace(static)]
    #[allocative(skip)]
    attrs: Vec<AttrSpec>,
}
starlark_complex_value!(pub RepositoryRule);

// SAFETY: `repr(C)`, and only `implementation` depends on the value type.
unsafe impl<'v> Coerce<RepositoryRuleGen<Value<'v>>> for RepositoryRuleGen<FrozenValue> {}

impl<'v> Freeze for RepositoryRule<'v> {
    type Frozen = FrozenRepositoryRule;
    fn freeze(self, freezer: &Freezer) -> FreezeResult<FrozenRepositoryRule> {
        Ok(RepositoryRuleGen { implementation: self.implementation.freeze(freezer)?, attrs: self.attrs })
    }
}

impl<'v> RepositoryRule<'v> {
    /// `repository_rule(implementation, attrs = {...})`.
    pub fn new(implementation: Value<'v>, attrs: Option<Value<'v>>) -> Result<RepositoryRule<'v>> {
        Ok(RepositoryRuleGen { implementation, attrs: attr_specs(attrs)? })
    }
}

impl<V> fmt::Display for RepositoryRuleGen<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<repository_rule>")
    }
}

#[starlark_value(type = "repository_rule")]
impl<'v, V: ValueLike<'v>> StarlarkValue<'v> for RepositoryRuleGen<V>
where
    Self: ProvidesStaticType<'v>,
{
    fn invoke(&self, me: Value<'v>, args: &Arguments<'v, '_>, eval: &mut Evaluator<'v, '_, '_>) -> starlark::Result<Value<'v>> {
        args.no_positional_args(eval.heap())?;
        let mut kwargs = Vec::new();
        for (name, value) in args.names_map()? {
            let raw = to_raw(value).map_err(|e| starlark::Error::new_other(anyhow!("attribute '{}': {e}", name.as_str())))?;
            kwargs.push((name.as_str().to_owned(), raw));
        }
        if let Some(ctx) = RepoFileContext::from_eval(eval) {
            super::rule_call::record_unknown_repository(ctx, "repository_rule", &kwargs);
            return Ok(Value::new_none());
        }
        let Some(run) = eval.extra.and_then(|e| e.downcast_ref::<ExtensionRun>()) else {
            return Err(starlark::Error::new_other(anyhow!(
                "a repository rule can only be called from WORKSPACE or a module extension's implementation"
            )));
        };
        let Some(frozen) = me.unpack_frozen() else {
            return Err(starlark::Error::new_other(anyhow!("a repository rule must be defined at the top level of a .bzl file")));
        };
        let attrs: BTreeMap<String, Raw> = kwargs.into_iter().collect();
        let name = match attrs.get("name") {
            Some(Raw::String(s)) => s.clone(),
            _ => return Err(starlark::Error::new_other(anyhow!("a repository rule call needs name = \"...\""))),
        };
        crate::graph::label::validate_repo_name(&name, &name).map_err(starlark::Error::new_other)?;
        run.calls.borrow_mut().push((name, frozen, attrs));
        Ok(Value::new_none())
    }
}

/// A repository rule call in a module extension: (repository name, the rule, its attributes).
type RepositoryCall = (String, FrozenValue, BTreeMap<String, Raw>);

/// Evaluation state of one module extension's implementation: the repository rule calls.
#[derive(ProvidesStaticType, Default)]
struct ExtensionRun {
    /// (repository name, the repository rule, its attributes).
    calls: RefCell<Vec<RepositoryCall>>,
}

/// Whether `eval` runs a module extension's implementation.
pub(super) fn in_extension(eval: &Evaluator) -> bool {
    eval.extra.and_then(|e| e.downcast_ref::<ExtensionRun>()).is_some()
}

/// `module_ctx.os` / `repository_ctx.os`: the host, as Bazel names it.
fn os_value<'v>(heap: Heap<'v>) -> Value<'v> {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        other => other,
    };
    let name = match std::env::consts::OS {
        "macos" => "mac os x",
        other => other,
    };
    heap.alloc(AllocStruct([
        ("name", heap.alloc(name)),
        ("arch", heap.alloc(arch)),
        ("environ", heap.alloc(starlark::values::dict::AllocDict(Vec::<(Value, Value)>::new()))),
    ]))
}

fn struct_of<'v>(heap: Heap<'v>, attrs: &BTreeMap<String, Raw>) -> Value<'v> {
    heap.alloc(AllocStruct(attrs.iter().map(|(k, v)| (k.as_str(), raw_to_value(heap, v)))))
}

/// Where file operations of the contexts resolve labels and paths.
#[derive(Debug, Clone)]
struct Paths {
    /// The main repository's root.
    root: PathBuf,
    /// The main repository's own name (`@<name>//` is the main repository).
    main_name: String,
    /// Repositories on disk by canonical name (`local_path_override`s, generated ones):
    /// labels of theirs resolve too.
    local: BTreeMap<String, PathBuf>,
    /// The working directory relative paths resolve against (a generated repository's
    /// directory; the root for a module extension).
    cwd: PathBuf,
}

impl Paths {
    /// A label (of the main repository) or a path: the file it names.
    fn resolve(&self, v: Value) -> Result<PathBuf> {
        let label = match v.downcast_ref::<LabelValue>() {
            Some(l) => l.0.clone(),
            None => {
                let s = v.unpack_str().ok_or_else(|| anyhow!("expected a path or label, got '{}'", v.get_type()))?;
                if !(s.starts_with("//") || s.starts_with('@') || s.starts_with(':')) {
                    let p = Path::new(s);
                    return Ok(if p.is_absolute() { p.to_path_buf() } else { self.cwd.join(p) });
                }
                let main = PackageId::main("");
                Label::parse(s, &main, &|r| Some(if r == self.main_name { String::new() } else { r.to_owned() }))?
            }
        };
        let mut path = if label.repo.is_empty() || label.repo == self.main_name {
            self.root.clone()
        } else {
            match self.local.get(&label.repo) {
                Some(dir) => dir.clone(),
                None => bail!("reading files of repository @{} is not supported by ocib (only of repositories on disk)", label.repo),
            }
        };
        if !label.package.is_empty() {
            path.push(&label.package);
        }
        path.push(&label.name);
        Ok(path)
    }

    /// `path` inside the working directory: relative, without `..` (confined, so a
    /// repository rule cannot write outside its repository).
    fn confined(&self, path: &str, call: &str) -> Result<PathBuf> {
        let p = Path::new(path);
        if path.is_empty() || p.components().any(|c| !matches!(c, Component::Normal(_) | Component::CurDir)) {
            bail!("{call}('{path}'): the path must be relative and stay inside the repository directory (no '..', not absolute)");
        }
        Ok(self.cwd.join(p))
    }
}

fn unsupported(call: &str) -> anyhow::Error {
    anyhow!(
        "{call}() is not supported: ocib runs repository rules and module extensions offline, without downloading or executing programs"
    )
}

/// `module_ctx`.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
struct ModuleCtx {
    #[allocative(skip)]
    paths: Paths,
    module_name: String,
    /// The root module's tags: (tag class, attributes completed with defaults).
    #[allocative(skip)]
    tags: Vec<(String, BTreeMap<String, Raw>)>,
    tag_classes: Vec<String>,
}
starlark_simple_value!(ModuleCtx);

impl fmt::Display for ModuleCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<module_ctx>")
    }
}

#[starlark_value(type = "module_ctx")]
impl<'v> StarlarkValue<'v> for ModuleCtx {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        match attribute {
            "modules" => {
                let tags = self.tag_classes.iter().map(|class| {
                    let list = self.tags.iter().filter(|(c, _)| c == class).map(|(_, attrs)| struct_of(heap, attrs));
                    (class.as_str(), heap.alloc(AllocList(list)))
                });
                let tags = heap.alloc(AllocStruct(tags));
                let module = heap.alloc(AllocStruct([
                    ("name", heap.alloc(self.module_name.as_str())),
                    ("version", heap.alloc("")),
                    ("is_root", Value::new_bool(true)),
                    ("tags", tags),
                ]));
                Some(heap.alloc(AllocList([module])))
            }
            "os" => Some(os_value(heap)),
            "root_module_has_non_dev_dependency" => Some(Value::new_bool(true)),
            _ => None,
        }
    }

    fn dir_attr(&self) -> Vec<String> {
        ["modules", "os", "root_module_has_non_dev_dependency"].iter().map(|s| (*s).to_owned()).collect()
    }

    fn get_methods() -> Option<&'static Methods> {
        static RES: MethodsStatic = MethodsStatic::new("module_ctx", module_ctx_methods);
        Some(RES.methods())
    }
}

#[starlark_module]
fn module_ctx_methods(builder: &mut MethodsBuilder) {
    fn path<'v>(this: &ModuleCtx, #[starlark(require = pos)] path: Value<'v>) -> anyhow::Result<String> {
        Ok(this.paths.resolve(path)?.to_string_lossy().into_owned())
    }
    fn read<'v>(
        this: &ModuleCtx,
        #[starlark(require = pos)] path: Value<'v>,
        #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>,
    ) -> anyhow::Result<String> {
        read_file(&this.paths.resolve(path)?)
    }
    fn getenv<'v>(
        this: &ModuleCtx,
        name: &str,
        #[starlark(default = NoneOr::None)] default: NoneOr<Value<'v>>,
    ) -> anyhow::Result<Value<'v>> {
        let _ = this;
        Ok(getenv(name, default))
    }
    fn report_progress<'v>(this: &ModuleCtx, #[starlark(default = "")] status: &str) -> anyhow::Result<NoneType> {
        let _ = (this, status);
        Ok(NoneType)
    }
    fn is_dev_dependency<'v>(this: &ModuleCtx, tag: Value<'v>) -> anyhow::Result<bool> {
        let _ = (this, tag);
        Ok(false)
    }
    fn extension_metadata<'v>(this: &ModuleCtx, #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>) -> anyhow::Result<NoneType> {
        let _ = this;
        Ok(NoneType)
    }
    fn watch<'v>(this: &ModuleCtx, path: Value<'v>) -> anyhow::Result<NoneType> {
        let _ = (this, path);
        Ok(NoneType)
    }
    fn which<'v>(this: &ModuleCtx, program: &str) -> anyhow::Result<NoneType> {
        let _ = (this, program);
        Ok(NoneType)
    }
    fn download<'v>(
        this: &ModuleCtx,
        #[starlark(args)] _args: Value<'v>,
        #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>,
    ) -> anyhow::Result<NoneType> {
        let _ = this;
        Err(unsupported("module_ctx.download"))
    }
    fn download_and_extract<'v>(
        this: &ModuleCtx,
        #[starlark(args)] _args: Value<'v>,
        #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>,
    ) -> anyhow::Result<NoneType> {
        let _ = this;
        Err(unsupported("module_ctx.download_and_extract"))
    }
    fn execute<'v>(
        this: &ModuleCtx,
        #[starlark(args)] _args: Value<'v>,
        #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>,
    ) -> anyhow::Result<NoneType> {
        let _ = this;
        Err(unsupported("module_ctx.execute"))
    }
}

fn read_file(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).map_err(|e| anyhow!("reading {}: {e}", path.display()))
}

/// `getenv`: repository rules see no environment, so results do not depend on the shell
/// ocib runs in (determinism); the default is returned.
fn getenv<'v>(name: &str, default: NoneOr<Value<'v>>) -> Value<'v> {
    let _ = name;
    default.into_option().unwrap_or_else(Value::new_none)
}

/// `repository_ctx`.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
struct RepositoryCtx {
    name: String,
    #[allocative(skip)]
    paths: Paths,
    #[allocative(skip)]
    attrs: BTreeMap<String, Raw>,
}
starlark_simple_value!(RepositoryCtx);

impl fmt::Display for RepositoryCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<repository_ctx for @{}>", self.name)
    }
}

#[starlark_value(type = "repository_ctx")]
impl<'v> StarlarkValue<'v> for RepositoryCtx {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        match attribute {
            "attr" => Some(struct_of(heap, &self.attrs)),
            "name" => Some(heap.alloc(self.name.as_str())),
            "os" => Some(os_value(heap)),
            "workspace_root" => Some(heap.alloc(self.paths.root.to_string_lossy().as_ref())),
            _ => None,
        }
    }

    fn dir_attr(&self) -> Vec<String> {
        ["attr", "name", "os", "workspace_root"].iter().map(|s| (*s).to_owned()).collect()
    }

    fn get_methods() -> Option<&'static Methods> {
        static RES: MethodsStatic = MethodsStatic::new("repository_ctx", repository_ctx_methods);
        Some(RES.methods())
    }
}

fn write_file(path: &Path, content: &str, executable: bool) -> anyhow::Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| anyhow!("creating {}: {e}", parent.display()))?;
    }
    // A symlink left there must not redirect the write outside the repository.
    if path.symlink_metadata().is_ok() {
        std::fs::remove_file(path).map_err(|e| anyhow!("replacing {}: {e}", path.display()))?;
    }
    std::fs::write(path, content).map_err(|e| anyhow!("writing {}: {e}", path.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = if executable { 0o755 } else { 0o644 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| anyhow!("chmod {}: {e}", path.display()))?;
    }
    Ok(())
}

fn path_arg(v: Value) -> anyhow::Result<String> {
    if let Some(l) = v.downcast_ref::<LabelValue>() {
        return Ok(l.0.name.clone());
    }
    Ok(v.unpack_str().ok_or_else(|| anyhow!("expected a path string, got '{}'", v.get_type()))?.to_owned())
}

#[starlark_module]
fn repository_ctx_methods(builder: &mut MethodsBuilder) {
    fn file<'v>(
        this: &RepositoryCtx,
        #[starlark(require = pos)] path: Value<'v>,
        #[starlark(default = "")] content: &str,
        #[starlark(default = true)] executable: bool,
        #[starlark(default = true)] legacy_utf8: bool,
    ) -> anyhow::Result<NoneType> {
        let _ = legacy_utf8;
        let target = this.paths.confined(&path_arg(path)?, "repository_ctx.file")?;
        write_file(&target, content, executable)?;
        Ok(NoneType)
    }

    fn template<'v>(
        this: &RepositoryCtx,
        #[starlark(require = pos)] path: Value<'v>,
        #[starlark(require = pos)] template: Value<'v>,
        #[starlark(default = NoneOr::None)] substitutions: NoneOr<Value<'v>>,
        #[starlark(default = true)] executable: bool,
    ) -> anyhow::Result<NoneType> {
        let target = this.paths.confined(&path_arg(path)?, "repository_ctx.template")?;
        let mut text = read_file(&this.paths.resolve(template)?)?;
        if let Some(subs) = substitutions.into_option() {
            let dict = DictRef::from_value(subs).ok_or_else(|| anyhow!("substitutions must be a dict, got '{}'", subs.get_type()))?;
            for (k, v) in dict.iter() {
                let (Some(from), Some(to)) = (k.unpack_str(), v.unpack_str()) else {
                    bail!("substitutions must map strings to strings, got {}: {}", k.to_repr(), v.to_repr());
                };
                text = text.replace(from, to);
            }
        }
        write_file(&target, &text, executable)?;
        Ok(NoneType)
    }

    fn symlink<'v>(
        this: &RepositoryCtx,
        #[starlark(require = pos)] target: Value<'v>,
        #[starlark(require = pos)] link_name: Value<'v>,
    ) -> anyhow::Result<NoneType> {
        let from = this.paths.resolve(target)?;
        // Only files of the main repository or of this repository: nothing from elsewhere on
        // the machine becomes part of the build through a generated repository.
        let canonical = from.canonicalize().map_err(|e| anyhow!("repository_ctx.symlink: {}: {e}", from.display()))?;
        let root = this.paths.root.canonicalize().unwrap_or_else(|_| this.paths.root.clone());
        if !canonical.starts_with(&root) {
            bail!("repository_ctx.symlink: '{}' is outside the workspace", from.display());
        }
        let link = this.paths.confined(&path_arg(link_name)?, "repository_ctx.symlink")?;
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if link.symlink_metadata().is_ok() {
            std::fs::remove_file(&link)?;
        }
        #[cfg(unix)]
        std::os::unix::fs::symlink(&canonical, &link).map_err(|e| anyhow!("creating {}: {e}", link.display()))?;
        #[cfg(not(unix))]
        std::fs::copy(&canonical, &link).map_err(|e| anyhow!("creating {}: {e}", link.display()))?;
        Ok(NoneType)
    }

    fn path<'v>(this: &RepositoryCtx, #[starlark(require = pos)] path: Value<'v>) -> anyhow::Result<String> {
        Ok(this.paths.resolve(path)?.to_string_lossy().into_owned())
    }

    fn read<'v>(
        this: &RepositoryCtx,
        #[starlark(require = pos)] path: Value<'v>,
        #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>,
    ) -> anyhow::Result<String> {
        read_file(&this.paths.resolve(path)?)
    }

    fn getenv<'v>(
        this: &RepositoryCtx,
        name: &str,
        #[starlark(default = NoneOr::None)] default: NoneOr<Value<'v>>,
    ) -> anyhow::Result<Value<'v>> {
        let _ = this;
        Ok(getenv(name, default))
    }

    fn report_progress<'v>(this: &RepositoryCtx, #[starlark(default = "")] status: &str) -> anyhow::Result<NoneType> {
        let _ = (this, status);
        Ok(NoneType)
    }

    fn which<'v>(this: &RepositoryCtx, program: &str) -> anyhow::Result<NoneType> {
        let _ = (this, program);
        Ok(NoneType)
    }

    fn watch<'v>(this: &RepositoryCtx, path: Value<'v>) -> anyhow::Result<NoneType> {
        let _ = (this, path);
        Ok(NoneType)
    }

    fn delete<'v>(this: &RepositoryCtx, #[starlark(require = pos)] path: Value<'v>) -> anyhow::Result<bool> {
        let target = this.paths.confined(&path_arg(path)?, "repository_ctx.delete")?;
        Ok(std::fs::remove_file(&target).is_ok() || std::fs::remove_dir_all(&target).is_ok())
    }

    fn download<'v>(
        this: &RepositoryCtx,
        #[starlark(args)] _args: Value<'v>,
        #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>,
    ) -> anyhow::Result<NoneType> {
        let _ = this;
        Err(unsupported("repository_ctx.download"))
    }

    fn download_and_extract<'v>(
        this: &RepositoryCtx,
        #[starlark(args)] _args: Value<'v>,
        #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>,
    ) -> anyhow::Result<NoneType> {
        let _ = this;
        Err(unsupported("repository_ctx.download_and_extract"))
    }

    fn extract<'v>(
        this: &RepositoryCtx,
        #[starlark(args)] _args: Value<'v>,
        #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>,
    ) -> anyhow::Result<NoneType> {
        let _ = this;
        Err(unsupported("repository_ctx.extract"))
    }

    fn execute<'v>(
        this: &RepositoryCtx,
        #[starlark(args)] _args: Value<'v>,
        #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>,
    ) -> anyhow::Result<NoneType> {
        let _ = this;
        Err(unsupported("repository_ctx.execute"))
    }

    fn patch<'v>(
        this: &RepositoryCtx,
        #[starlark(args)] _args: Value<'v>,
        #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>,
    ) -> anyhow::Result<NoneType> {
        let _ = this;
        Err(unsupported("repository_ctx.patch"))
    }
}

/// Whether `extension` (`<bzl label>%<name>`) is defined in the main repository or in a
/// repository on disk (a `local_path_override` module): the extensions ocib runs. Those of
/// the rule sets it embeds are emulated instead; those of other modules are unknown.
fn runs_extension(extension: &str, ws: &Workspace) -> bool {
    let bzl = extension.split('%').next().unwrap_or_default();
    if bzl.starts_with("//") || bzl.starts_with(':') {
        return true;
    }
    let repo = bzl.trim_start_matches('@').split("//").next().unwrap_or_default();
    if repo == ws.name {
        return true;
    }
    let canonical = ws.repos.canonical(repo);
    matches!(canonical.and_then(|c| ws.repos.get(&c)).map(|r| &r.source), Some(RepoSource::Local(_)))
}

/// The repositories on disk, by canonical name.
fn local_repos(ws: &Workspace) -> BTreeMap<String, PathBuf> {
    ws.repos
        .iter()
        .filter_map(|r| match &r.source {
            RepoSource::Local(dir) => Some((r.name.clone(), dir.clone())),
            _ => None,
        })
        .collect()
}

/// Runs the main repository's own module extensions that MODULE.bazel uses: `tags` are all the
/// module's tag calls, `used` the (extension, repository name) pairs `use_repo` imports.
/// Returns the repositories generated (under `<root>/ocib-out/external/`) and warnings (an
/// extension or repository rule that fails leaves its repositories unknown, as in issue 11's
/// leniency: only a build from them fails).
pub(crate) fn run_extensions(ws: &Workspace, kinds: &RuleKinds, tags: &[TagCall], used: &[(String, String)]) -> (Vec<Repo>, Vec<String>) {
    let mut repos = Vec::new();
    let mut warnings = Vec::new();
    let extensions: BTreeSet<&str> = used.iter().map(|(e, _)| e.as_str()).filter(|e| runs_extension(e, ws)).collect();
    if extensions.is_empty() {
        return (repos, warnings);
    }
    let mut boot = Workspace::bootstrap(ws.root.clone(), ws.ignored.clone());
    boot.repos = ws.repos.clone();
    boot.rule_set_versions = ws.rule_set_versions.clone();
    boot.name = ws.name.clone();
    let loader = Loader::new(Arc::new(boot), kinds);
    for extension in extensions {
        let names: BTreeSet<&str> = used.iter().filter(|(e, _)| e == extension).map(|(_, n)| n.as_str()).collect();
        let ext_tags: Vec<(String, BTreeMap<String, Raw>)> =
            tags.iter().filter(|(e, _, _)| e == extension).map(|(_, t, a)| (t.clone(), a.clone())).collect();
        match run_extension(&loader, ws, extension, &ext_tags, &names) {
            Ok((generated, failed)) => {
                repos.extend(generated);
                warnings.extend(failed);
            }
            Err(e) => warnings
                .push(format!("module extension {extension}: {e:#}; the repositories it declares are unknown (building from them fails)")),
        }
    }
    (repos, warnings)
}

fn run_extension(
    loader: &Loader,
    ws: &Workspace,
    extension: &str,
    tags: &[(String, BTreeMap<String, Raw>)],
    names: &BTreeSet<&str>,
) -> Result<(Vec<Repo>, Vec<String>)> {
    let (bzl, ext_name) = extension.rsplit_once('%').ok_or_else(|| anyhow!("malformed extension id"))?;
    let main = ws.name.clone();
    let label = Label::parse(bzl, &PackageId::main(""), &|r| if r == main { Some(String::new()) } else { ws.repos.canonical(r) })?;
    let module: FrozenModule = loader.load_for_repository_file(&label, &[ext_name]).map_err(|e| anyhow!("{}", e.render()))?;
    let value = module.get(ext_name).map_err(|e| anyhow!("{bzl} has no '{ext_name}': {e}"))?;
    let ext = value
        .value()
        .downcast_ref::<FrozenModuleExtension>()
        .ok_or_else(|| anyhow!("'{ext_name}' in {bzl} is not a module_extension() but a '{}'", value.value().get_type()))?;
    let mut completed = Vec::new();
    for (class, attrs) in tags {
        let Some((_, specs)) = ext.tag_classes.iter().find(|(c, _)| c == class) else {
            bail!("{ext_name} has no tag class '{class}'");
        };
        completed.push((class.clone(), complete_attrs(specs, attrs, &format!("{ext_name}.{class}()"))?));
    }
    let run = ExtensionRun::default();
    let out_dir = ws.root.join("ocib-out").join("external");
    let mut repos = Vec::new();
    // Failure message → the repositories it leaves unknown (one warning for all of them).
    let mut failed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    Module::with_temp_heap(|module| -> Result<()> {
        let mut eval = Evaluator::new(&module);
        let limited = super::limit_evaluator(&mut eval);
        eval.extra = Some(&run);
        let ctx = eval.heap().alloc(ModuleCtx {
            paths: Paths { root: ws.root.clone(), main_name: ws.name.clone(), local: local_repos(ws), cwd: ws.root.clone() },
            module_name: ws.name.clone(),
            tags: completed,
            tag_classes: ext.tag_classes.iter().map(|(c, _)| c.clone()).collect(),
        });
        eval.eval_function(ext.implementation.to_value(), &[ctx], &[]).map_err(|e| anyhow!("{}", short_message(e, &limited)))?;
        let calls: Vec<_> = run.calls.borrow_mut().drain(..).collect();
        for (name, rule, attrs) in calls {
            if !names.contains(name.as_str()) {
                continue;
            }
            match run_repository_rule(&mut eval, &limited, ws, &out_dir, &name, rule, attrs) {
                Ok(dir) => repos.push(Repo { name, source: RepoSource::Local(dir) }),
                Err(e) => failed.entry(format!("{e:#}")).or_default().push(format!("@{name}")),
            }
        }
        Ok(())
    })?;
    let warnings = failed
        .into_iter()
        .map(|(e, names)| {
            let (what, it, them) = if names.len() == 1 { ("repository", "it is", "it") } else { ("repositories", "they are", "them") };
            format!("{what} {} of module extension {extension}: {e}; {it} unknown (building from {them} fails)", names.join(", "))
        })
        .collect();
    Ok((repos, warnings))
}

/// `file:line:col: message` of an error where the Starlark code failed, on one line (a
/// warning, not a full traceback).
fn short_message(e: starlark::Error, limited: &super::Limited) -> String {
    match e.span() {
        Some(span) => format!("{}: {}", super::span_location(span.as_ref()), e.without_diagnostic()),
        None => limited.message(e),
    }
}

fn run_repository_rule<'v>(
    eval: &mut Evaluator<'v, '_, '_>,
    limited: &super::Limited,
    ws: &Workspace,
    out_dir: &Path,
    name: &str,
    rule: FrozenValue,
    attrs: BTreeMap<String, Raw>,
) -> Result<PathBuf> {
    let rule = rule.to_value();
    let rule = RepositoryRule::from_value(rule).ok_or_else(|| anyhow!("not a repository rule"))?;
    let attrs = complete_attrs(&rule.attrs, &attrs, &format!("repository @{name}"))?;
    // Built in a fresh directory, then moved into place, so a failed run leaves no half
    // repository behind.
    let dir = out_dir.join(name);
    let tmp = out_dir.join(format!(".{name}.tmp{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| anyhow!("creating {}: {e}", tmp.display()))?;
    // A repository boundary: `//...` of the main repository does not walk into it.
    std::fs::write(tmp.join("REPO.bazel"), "")?;
    let ctx = eval.heap().alloc(RepositoryCtx {
        name: name.to_owned(),
        paths: Paths { root: ws.root.clone(), main_name: ws.name.clone(), local: local_repos(ws), cwd: tmp.clone() },
        attrs,
    });
    if let Err(e) = eval.eval_function(rule.implementation, &[ctx], &[]) {
        let _ = std::fs::remove_dir_all(&tmp);
        return Err(anyhow!("{}", short_message(e, limited)));
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::rename(&tmp, &dir).map_err(|e| anyhow!("moving {} into place: {e}", tmp.display()))?;
    Ok(dir)
}
