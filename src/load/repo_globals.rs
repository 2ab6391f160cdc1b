//! The functions of WORKSPACE(.bazel) and MODULE.bazel files. They only record what the file
//! declares into a [`RepoFileContext`]; `workspace::external` turns that into repositories.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

use allocative::Allocative;
use anyhow::{Result, anyhow, bail};
use starlark::any::ProvidesStaticType;
use starlark::collections::SmallMap;
use starlark::environment::{Globals, GlobalsBuilder, LibraryExtension};
use starlark::eval::{Arguments, Evaluator};
use starlark::starlark_module;
use starlark::starlark_simple_value;
use starlark::values::none::{NoneOr, NoneType};
use starlark::values::{Heap, NoSerialize, StarlarkPagablePanic, StarlarkValue, Value, ValueLike, starlark_value};

use super::context::RepoFileContext;
use super::values::to_raw;
use crate::graph::Raw;
use crate::workspace::{Repo, RepoSource};

/// The extension id WORKSPACE `oci_pull` calls are recorded under, so both declaration styles
/// are handled by one piece of code.
pub const WORKSPACE_OCI_PULL: &str = "WORKSPACE%oci_pull";
/// The extension id WORKSPACE `translate_apko_lock` calls are recorded under (rules_apko's
/// MODULE.bazel form is the `apko.translate_lock` tag).
pub const WORKSPACE_APKO_LOCK: &str = "WORKSPACE%translate_apko_lock";

pub fn workspace_globals() -> Globals {
    let mut b = GlobalsBuilder::extended_by(&[LibraryExtension::StructType, LibraryExtension::Print]);
    super::json::json_namespace(&mut b);
    workspace_functions(&mut b);
    b.build()
}

pub fn module_globals() -> Globals {
    let mut b = GlobalsBuilder::extended_by(&[LibraryExtension::StructType, LibraryExtension::Print]);
    super::json::json_namespace(&mut b);
    module_functions(&mut b);
    b.build()
}

fn ctx<'e>(eval: &'e Evaluator) -> Result<&'e RepoFileContext> {
    RepoFileContext::from_eval(eval)
        .ok_or_else(|| anyhow!("repository functions can only be called while WORKSPACE or MODULE.bazel is evaluated"))
}

fn kwargs_raw(kwargs: SmallMap<String, Value>) -> Result<BTreeMap<String, Raw>> {
    kwargs.into_iter().map(|(k, v)| Ok((k, to_raw(v)?))).collect()
}

/// WORKSPACE functions, also reachable as `native.*` from the macros it calls.
#[starlark_module]
pub(crate) fn workspace_functions(builder: &mut GlobalsBuilder) {
    fn workspace<'v>(
        #[starlark(require = named)] name: &str,
        #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        *ctx(eval)?.workspace_name.borrow_mut() = Some(name.to_owned());
        Ok(NoneType)
    }

    fn local_repository<'v>(
        #[starlark(require = named)] name: &str,
        #[starlark(require = named)] path: &str,
        #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        crate::graph::label::validate_repo_name(name, name)?;
        ctx(eval)?.repos.borrow_mut().push(Repo { name: name.to_owned(), source: RepoSource::Local(PathBuf::from(path)) });
        Ok(NoneType)
    }

    fn new_local_repository<'v>(
        #[starlark(require = named)] name: &str,
        #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let repo = Repo { name: name.to_owned(), source: RepoSource::Unknown { rule: "new_local_repository".into() } };
        ctx(eval)?.repos.borrow_mut().push(repo);
        Ok(NoneType)
    }

    fn register_toolchains<'v>(
        #[starlark(args)] _args: Value<'v>,
        #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>,
    ) -> anyhow::Result<NoneType> {
        Ok(NoneType)
    }

    fn register_execution_platforms<'v>(
        #[starlark(args)] _args: Value<'v>,
        #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>,
    ) -> anyhow::Result<NoneType> {
        Ok(NoneType)
    }

    fn bind<'v>(#[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>) -> anyhow::Result<NoneType> {
        Ok(NoneType)
    }
}

/// `native.existing_rule(name)` in WORKSPACE macros (the `maybe()` pattern): the repository
/// if declared, else None.
pub(crate) fn existing_repository<'v>(c: &RepoFileContext, heap: Heap<'v>, name: &str) -> Value<'v> {
    let found = c.repos.borrow().iter().any(|r| r.name == name);
    if found { repo_dict(heap, name) } else { Value::new_none() }
}

pub(crate) fn existing_repositories<'v>(c: &RepoFileContext, heap: Heap<'v>) -> Value<'v> {
    let names: Vec<String> = c.repos.borrow().iter().map(|r| r.name.clone()).collect();
    let entries: Vec<(Value, Value)> = names.iter().map(|n| (heap.alloc(n.as_str()), repo_dict(heap, n))).collect();
    heap.alloc(starlark::values::dict::AllocDict(entries))
}

fn repo_dict<'v>(heap: Heap<'v>, name: &str) -> Value<'v> {
    heap.alloc(starlark::values::dict::AllocDict([(heap.alloc("name"), heap.alloc(name))]))
}

/// MODULE.bazel functions.
#[starlark_module]
fn module_functions(builder: &mut GlobalsBuilder) {
    fn module<'v>(
        #[starlark(require = named, default = "")] name: &str,
        #[starlark(require = named, default = "")] repo_name: &str,
        #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let c = ctx(eval)?;
        let own = if repo_name.is_empty() { name } else { repo_name };
        if !own.is_empty() {
            *c.workspace_name.borrow_mut() = Some(own.to_owned());
        }
        Ok(NoneType)
    }

    /// `bazel_dep(name, repo_name = None)` (Bazel 7.1+) depends on a module without making
    /// it visible as a repository.
    fn bazel_dep<'v>(
        #[starlark(require = named)] name: &str,
        #[starlark(require = named, default = "")] version: &str,
        #[starlark(require = named, default = NoneOr::Other(""))] repo_name: NoneOr<&str>,
        #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        if !version.is_empty() {
            ctx(eval)?.versions.borrow_mut().insert(name.to_owned(), version.to_owned());
        }
        let repo = match repo_name {
            NoneOr::None => return Ok(NoneType),
            NoneOr::Other("") => name,
            NoneOr::Other(r) => r,
        };
        ctx(eval)?.deps.borrow_mut().push((name.to_owned(), repo.to_owned()));
        Ok(NoneType)
    }

    /// `include("//path:file.MODULE.bazel")` (Bazel 7.2+): the file's statements are part of
    /// this module; it is evaluated after this one (with its own variables, as in Bazel).
    fn include<'v>(#[starlark(require = pos)] label: &str, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<NoneType> {
        if !label.ends_with(".MODULE.bazel") {
            bail!("include() of '{label}': the included file's name must end with '.MODULE.bazel'");
        }
        ctx(eval)?.includes.borrow_mut().push(label.to_owned());
        Ok(NoneType)
    }

    /// `inject_repo(extension_proxy, *repos, **renamed)` (Bazel 8): makes repositories visible
    /// to an extension; ocib runs no extension but rules_oci's, so it has nothing to do.
    fn inject_repo<'v>(
        #[starlark(args)] _args: Value<'v>,
        #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>,
    ) -> anyhow::Result<NoneType> {
        Ok(NoneType)
    }

    /// `override_repo(extension_proxy, *repos, **renamed)` (Bazel 8): as `inject_repo`.
    fn override_repo<'v>(
        #[starlark(args)] _args: Value<'v>,
        #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>,
    ) -> anyhow::Result<NoneType> {
        Ok(NoneType)
    }

    /// `flag_alias(name, starlark_flag)` (Bazel 9): a command-line alias; nothing at load time.
    fn flag_alias<'v>(
        #[starlark(args)] _args: Value<'v>,
        #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>,
    ) -> anyhow::Result<NoneType> {
        Ok(NoneType)
    }

    fn use_extension<'v>(
        #[starlark(require = pos)] extension_bzl_file: &str,
        #[starlark(require = pos)] extension_name: &str,
        #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>,
    ) -> anyhow::Result<ExtensionProxy> {
        Ok(ExtensionProxy { id: format!("{extension_bzl_file}%{extension_name}") })
    }

    fn use_repo<'v>(
        #[starlark(require = pos)] extension_proxy: Value<'v>,
        #[starlark(args)] args: starlark::values::list_or_tuple::UnpackListOrTuple<String>,
        #[starlark(kwargs)] kwargs: SmallMap<String, String>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let Some(proxy) = extension_proxy.downcast_ref::<ExtensionProxy>() else {
            bail!("use_repo() expects the result of use_extension() first, got '{}'", extension_proxy.get_type());
        };
        let c = ctx(eval)?;
        let mut used = c.used_repos.borrow_mut();
        let mut by_extension = c.extension_repos.borrow_mut();
        for name in args.items {
            by_extension.push((proxy.id.clone(), name.clone()));
            used.push((name.clone(), name));
        }
        for (apparent, name) in kwargs {
            by_extension.push((proxy.id.clone(), name.clone()));
            used.push((apparent, name));
        }
        Ok(NoneType)
    }

    fn local_path_override<'v>(
        #[starlark(require = named)] module_name: &str,
        #[starlark(require = named)] path: &str,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        ctx(eval)?.overrides.borrow_mut().insert(module_name.to_owned(), PathBuf::from(path));
        Ok(NoneType)
    }

    fn register_toolchains<'v>(
        #[starlark(args)] _args: Value<'v>,
        #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>,
    ) -> anyhow::Result<NoneType> {
        Ok(NoneType)
    }

    fn register_execution_platforms<'v>(
        #[starlark(args)] _args: Value<'v>,
        #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>,
    ) -> anyhow::Result<NoneType> {
        Ok(NoneType)
    }

    /// `single_version_override(module_name, version = ...)`: the version wins over the
    /// `bazel_dep`'s (the other attributes patch a fetch ocib does not do).
    fn single_version_override<'v>(
        #[starlark(require = named)] module_name: &str,
        #[starlark(require = named, default = "")] version: &str,
        #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        if !version.is_empty() {
            ctx(eval)?.version_overrides.borrow_mut().insert(module_name.to_owned(), version.to_owned());
        }
        Ok(NoneType)
    }

    fn multiple_version_override<'v>(#[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>) -> anyhow::Result<NoneType> {
        Ok(NoneType)
    }

    fn archive_override<'v>(#[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>) -> anyhow::Result<NoneType> {
        Ok(NoneType)
    }

    fn git_override<'v>(#[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>) -> anyhow::Result<NoneType> {
        Ok(NoneType)
    }

    /// `use_repo_rule(bzl, name)`: calling the result declares a repository ocib treats as
    /// unknown.
    fn use_repo_rule<'v>(
        #[starlark(require = pos)] repo_rule_bzl_file: &str,
        #[starlark(require = pos)] repo_rule_name: &str,
    ) -> anyhow::Result<ExtensionTag> {
        Ok(ExtensionTag { extension: format!("{repo_rule_bzl_file}%{repo_rule_name}"), tag: "<repo rule>".into() })
    }
}

/// What `use_extension()` returns; `proxy.tag(...)` records a tag.
#[derive(Debug, Clone, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
pub struct ExtensionProxy {
    pub id: String,
}
starlark_simple_value!(ExtensionProxy);

impl fmt::Display for ExtensionProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<module extension {}>", self.id)
    }
}

#[starlark_value(type = "module_extension_proxy")]
impl<'v> StarlarkValue<'v> for ExtensionProxy {
    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        Some(heap.alloc(ExtensionTag { extension: self.id.clone(), tag: attribute.to_owned() }))
    }
}

#[derive(Debug, Clone, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
pub struct ExtensionTag {
    pub extension: String,
    pub tag: String,
}
starlark_simple_value!(ExtensionTag);

impl fmt::Display for ExtensionTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<tag {}.{}>", self.extension, self.tag)
    }
}

#[starlark_value(type = "module_extension_tag")]
impl<'v> StarlarkValue<'v> for ExtensionTag {
    fn invoke(&self, _me: Value<'v>, args: &Arguments<'v, '_>, eval: &mut Evaluator<'v, '_, '_>) -> starlark::Result<Value<'v>> {
        args.no_positional_args(eval.heap())?;
        let kwargs: SmallMap<String, Value<'v>> = args.names_map()?.into_iter().map(|(k, v)| (k.as_str().to_owned(), v)).collect();
        let attrs = kwargs_raw(kwargs).map_err(starlark::Error::new_other)?;
        let c = ctx(eval).map_err(starlark::Error::new_other)?;
        if self.tag == "<repo rule>" {
            if let Some(Raw::String(name)) = attrs.get("name") {
                c.repos.borrow_mut().push(Repo { name: name.clone(), source: RepoSource::Unknown { rule: self.extension.clone() } });
            }
        } else {
            c.tags.borrow_mut().push((self.extension.clone(), self.tag.clone(), attrs));
        }
        Ok(Value::new_none())
    }
}

/// `oci_pull(...)` in WORKSPACE (reached from the prelude's `@rules_oci//oci:pull.bzl`):
/// recorded like a MODULE.bazel `oci.pull` tag.
#[starlark_module]
pub(crate) fn workspace_oci_functions(builder: &mut GlobalsBuilder) {
    fn oci_pull<'v>(#[starlark(kwargs)] kwargs: SmallMap<String, Value<'v>>, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<NoneType> {
        let attrs = kwargs_raw(kwargs)?;
        ctx(eval)?.tags.borrow_mut().push((WORKSPACE_OCI_PULL.to_owned(), "pull".to_owned(), attrs));
        Ok(NoneType)
    }

    /// rules_apko's `translate_apko_lock(name, lock)` (reached from the prelude's
    /// `@rules_apko//apko:translate_lock.bzl`).
    fn translate_apko_lock<'v>(
        #[starlark(kwargs)] kwargs: SmallMap<String, Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let attrs = kwargs_raw(kwargs)?;
        ctx(eval)?.tags.borrow_mut().push((WORKSPACE_APKO_LOCK.to_owned(), "translate_lock".to_owned(), attrs));
        Ok(NoneType)
    }

    /// rules_distroless's WORKSPACE `apt.install(...)` (the prelude's `@rules_distroless//apt:apt.bzl`):
    /// recorded like a MODULE.bazel `apt.install` tag.
    fn apt_install<'v>(
        #[starlark(kwargs)] kwargs: SmallMap<String, Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let attrs = kwargs_raw(kwargs)?;
        ctx(eval)?.tags.borrow_mut().push((super::apt::WORKSPACE_APT.to_owned(), "install".to_owned(), attrs));
        Ok(NoneType)
    }

    /// `go_repository(...)` in WORKSPACE (reached from the prelude's
    /// `@bazel_gazelle//:deps.bzl`): recorded as a tag, and as a repository name so
    /// `native.existing_rule` (the `maybe()` pattern) sees it.
    fn go_repository<'v>(
        #[starlark(kwargs)] kwargs: SmallMap<String, Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let attrs = kwargs_raw(kwargs)?;
        let c = ctx(eval)?;
        if let Some(Raw::String(name)) = attrs.get("name") {
            c.repos.borrow_mut().push(Repo { name: name.clone(), source: RepoSource::Unknown { rule: "go_repository".into() } });
        }
        c.tags.borrow_mut().push((super::go_repos::WORKSPACE_GO_REPOSITORY.to_owned(), "go_repository".to_owned(), attrs));
        Ok(NoneType)
    }
}
