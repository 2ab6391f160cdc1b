//! The names BUILD and .bzl files see: Bazel's BUILD functions (`glob`, `package`,
//! `exports_files`, ...), `select`, `Label`, `native`, the rule-definition API, and the
//! prelude-only `ocib` namespace that maps rule-set symbols onto native rules.

use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use starlark::collections::SmallMap;
use starlark::environment::{Globals, GlobalsBuilder, LibraryExtension};
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::dict::{AllocDict, DictRef};
use starlark::values::list::ListRef;
use starlark::values::list_or_tuple::UnpackListOrTuple;
use starlark::values::none::{NoneOr, NoneType};
use starlark::values::tuple::AllocTuple;
use starlark::values::{Heap, Value, ValueLike};

use super::context::{BuildContext, RepoFileContext};
use super::glob::Listing;
use super::providers::{ProviderGen, builtin_providers, make_depset, raw_constructor};
use super::repo_globals;
use super::rule_call::{DefinitionSite, RuleCallable};
use super::rule_def::{AttrDescriptor, AttrDescriptorGen, StarlarkRuleGen, TransitionGen};
use super::values::{LabelValue, Opaque, SelectValue, raw_to_value, to_raw};
use crate::graph::label::{Label, PackageId};
use crate::graph::schema::{RuleKinds, RuleSchema, SchemaBuilder};
use crate::graph::{AttrType, AttrValue, Raw, SelectPart};

/// Globals of BUILD files.
pub fn build_globals(kinds: &RuleKinds) -> Globals {
    let mut b = base_builder();
    build_functions(&mut b);
    add_rules(&mut b, kinds, &kinds.build_globals);
    add_generic_rules(&mut b, kinds);
    b.build()
}

/// Globals of .bzl files; `internal` adds the `ocib` namespace the prelude uses.
pub fn bzl_globals(internal: bool, kinds: &RuleKinds) -> Globals {
    let mut b = base_builder();
    rule_definition_functions(&mut b);
    b.namespace("native", |n| {
        build_functions(n);
        repo_globals::workspace_functions(n);
        add_rules(n, kinds, &kinds.build_globals);
        add_generic_rules(n, kinds);
    });
    b.namespace("attr", attr_functions);
    b.namespace("config", opaque_functions);
    for name in OPAQUE_NAMES {
        b.set(name, Opaque { name: (*name).to_owned() });
    }
    for (name, provider) in builtin_providers() {
        b.set(name, provider);
    }
    if internal {
        b.namespace("ocib", |n| {
            let all: Vec<String> = kinds.schemas.keys().cloned().collect();
            add_rules(n, kinds, &all);
            ocib_functions(n);
            repo_globals::workspace_oci_functions(n);
            for (name, provider) in super::providers::rule_set_providers() {
                n.set(name, provider);
            }
        });
    }
    b.build()
}

fn base_builder() -> GlobalsBuilder {
    let mut b = GlobalsBuilder::extended_by(&[
        LibraryExtension::StructType,
        LibraryExtension::Print,
        LibraryExtension::Map,
        LibraryExtension::Filter,
        LibraryExtension::Debug,
        // Bazel 8's `set()` builtin.
        LibraryExtension::SetType,
    ]);
    super::json::json_namespace(&mut b);
    common_functions(&mut b);
    b
}

fn add_rules(b: &mut GlobalsBuilder, kinds: &RuleKinds, names: &[String]) {
    for kind in names {
        if let Some(schema) = kinds.schemas.get(kind) {
            b.set(kind, RuleCallable::native(schema.clone()));
        }
    }
}

/// Bazel's native rules (Bazel 7/8, built in or autoloaded from rules_java, rules_cc,
/// rules_python, rules_shell, protobuf) that ocib has no implementation of. BUILD files see
/// them as generic rules: a call records a target of that kind with its attributes, so
/// `query` works; building one fails naming the kind (issue 11, class 7).
const GENERIC_NATIVE_RULES: &[&str] = &[
    "action_listener",
    "android_binary",
    "android_library",
    "android_sdk",
    "cc_binary",
    "cc_import",
    "cc_library",
    "cc_proto_library",
    "cc_shared_library",
    "cc_test",
    "cc_toolchain",
    "cc_toolchain_suite",
    "environment",
    "environment_group",
    "extra_action",
    "genquery",
    "java_binary",
    "java_import",
    "java_library",
    "java_lite_proto_library",
    "java_package_configuration",
    "java_plugin",
    "java_proto_library",
    "java_runtime",
    "java_test",
    "java_toolchain",
    "label_flag",
    "label_setting",
    "objc_import",
    "objc_library",
    "proto_lang_toolchain",
    "proto_library",
    "py_binary",
    "py_library",
    "py_runtime",
    "py_test",
    "sh_library",
    "starlark_doc_extract",
    "toolchain",
    "toolchain_type",
];

/// Adds [`GENERIC_NATIVE_RULES`] that ocib does not implement as untyped rules, and
/// `package_group`, whose `packages` and `includes` visibility checks read
/// (`graph::visibility`).
fn add_generic_rules(b: &mut GlobalsBuilder, kinds: &RuleKinds) {
    if !kinds.schemas.contains_key("package_group") {
        let schema = crate::graph::schema::SchemaBuilder::new("package_group")
            .attr("packages", AttrType::StringList)
            .attr("includes", AttrType::LabelList)
            .native()
            .build();
        b.set("package_group", RuleCallable::native(Arc::new(schema)));
    }
    for kind in GENERIC_NATIVE_RULES {
        if !kinds.schemas.contains_key(*kind) {
            b.set(kind, RuleCallable::native(Arc::new(RuleSchema::untyped(kind))));
        }
    }
}

/// Names .bzl files may mention at load time whose behaviour only matters when building.
const OPAQUE_NAMES: &[&str] = &[
    "InstrumentedFilesInfo",
    "PackageSpecificationInfo",
    "platform_common",
    "config_common",
    "coverage_common",
    "testing",
    "apple_common",
    "cc_common",
    "java_common",
    "proto_common",
    "CcInfo",
    "JavaInfo",
    "PyInfo",
    "ProtoInfo",
];

fn unpack_strings(v: Value, what: &str) -> Result<Vec<String>> {
    match to_raw(v)? {
        Raw::List(items) => items
            .into_iter()
            .map(|i| match i {
                Raw::String(s) => Ok(s),
                other => Err(anyhow!("{what}: expected a string, got {other}")),
            })
            .collect(),
        other => bail!("{what}: expected a list of strings, got {other}"),
    }
}

/// Functions of both BUILD and .bzl files.
#[starlark_module]
fn common_functions(builder: &mut GlobalsBuilder) {
    /// `select({condition: value}, no_match_error = "")`. A stub instead of the dict (a
    /// helper of an unknown repository that builds one) gives the stub back: the attribute
    /// is then as if not given.
    fn select<'v>(
        #[starlark(require = pos)] x: Value<'v>,
        #[starlark(require = named, default = "")] no_match_error: &str,
        heap: Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        if super::stub::is_stub(x) {
            return Ok(x);
        }
        let dict = DictRef::from_value(x).ok_or_else(|| anyhow!("select() expects a dict, got '{}'", x.get_type()))?;
        if dict.is_empty() {
            bail!("select({{}}) with no conditions is not allowed");
        }
        let mut branches = Vec::new();
        for (k, v) in dict.iter() {
            let key = match to_raw(k)? {
                Raw::String(s) => s,
                Raw::Label(l) => l.to_string(),
                other => bail!("select() keys must be labels, got {other}"),
            };
            branches.push((key, to_raw(v)?));
        }
        Ok(heap.alloc(SelectValue { parts: vec![SelectPart::Select { branches, no_match_error: no_match_error.to_owned() }] }))
    }

    /// `Label("//pkg:name")`, resolved relative to the file that calls it.
    #[starlark(as_type = LabelValue)]
    fn Label<'v>(#[starlark(require = pos)] input: Value<'v>, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<LabelValue> {
        if let Some(l) = input.downcast_ref::<LabelValue>() {
            return Ok(l.clone());
        }
        let s = input.unpack_str().ok_or_else(|| anyhow!("Label() expects a string, got '{}'", input.get_type()))?;
        let (base, map) = caller_package(eval);
        Ok(LabelValue(Label::parse(s, &base, &|r| map(r))?))
    }

    /// `depset(direct = None, order = "default", *, transitive = None)`.
    fn depset<'v>(
        #[starlark(default = NoneOr::None)] direct: NoneOr<Value<'v>>,
        #[starlark(default = "default")] order: &str,
        #[starlark(require = named, default = NoneOr::None)] transitive: NoneOr<Value<'v>>,
        heap: Heap<'v>,
    ) -> starlark::Result<Value<'v>> {
        make_depset(direct.into_option(), order, transitive.into_option(), heap)
    }
}

/// The package (and repository mapping) a call is made from: the .bzl file of the innermost
/// Starlark frame if it is one, else the BUILD file being evaluated.
/// Maps an apparent repository name to the canonical one, as seen from a package.
type RepoMapping<'a> = Box<dyn Fn(&str) -> Option<String> + 'a>;

fn caller_package<'a>(eval: &'a Evaluator) -> (PackageId, RepoMapping<'a>) {
    let bzl = eval.call_stack_top_location().and_then(|loc| super::bzl_package_of_file(loc.filename()));
    match (bzl, BuildContext::from_eval(eval)) {
        (Some((pkg, ws)), _) => (pkg, Box::new(move |r| ws.map_repo(r))),
        (None, Ok(ctx)) => (ctx.package.clone(), Box::new(move |r| ctx.map_repo(r))),
        (None, Err(_)) => (PackageId::main(""), Box::new(|r: &str| Some(r.to_owned()))),
    }
}

/// Functions of BUILD files, and of `native` in .bzl files.
#[starlark_module]
fn build_functions(builder: &mut GlobalsBuilder) {
    /// `glob(include, exclude = [], exclude_directories = 1, allow_empty = True)`.
    fn glob<'v>(
        #[starlark(default = UnpackListOrTuple::default())] include: UnpackListOrTuple<String>,
        #[starlark(default = UnpackListOrTuple::default())] exclude: UnpackListOrTuple<String>,
        #[starlark(require = named, default = 1)] exclude_directories: i32,
        #[starlark(require = named, default = true)] allow_empty: bool,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Vec<String>> {
        let ctx = BuildContext::from_eval(eval)?;
        let listing = match ctx.listing.get() {
            Some(l) => l,
            None => {
                let l = match &ctx.dir {
                    Some(dir) => Listing::read(ctx.ws, &ctx.package.repo, &ctx.package.package, dir),
                    None => Listing::empty(),
                };
                ctx.listing.get_or_init(|| l)
            }
        };
        let inc: Vec<&str> = include.items.iter().map(String::as_str).collect();
        let exc: Vec<&str> = exclude.items.iter().map(String::as_str).collect();
        let result = listing.glob(&inc, &exc, exclude_directories != 0)?;
        if result.is_empty() && !allow_empty {
            bail!("glob pattern {:?} didn't match anything, but allow_empty is set to False", include.items);
        }
        Ok(result)
    }

    fn package_name(eval: &mut Evaluator) -> anyhow::Result<String> {
        Ok(BuildContext::from_eval(eval)?.package.package.clone())
    }

    fn repository_name(eval: &mut Evaluator) -> anyhow::Result<String> {
        Ok(format!("@{}", BuildContext::from_eval(eval)?.package.repo))
    }

    fn module_name(eval: &mut Evaluator) -> anyhow::Result<NoneType> {
        BuildContext::from_eval(eval)?;
        Ok(NoneType)
    }

    fn module_version(eval: &mut Evaluator) -> anyhow::Result<NoneType> {
        BuildContext::from_eval(eval)?;
        Ok(NoneType)
    }

    /// `native.package_relative_label(input)`: a label relative to the BUILD file's package.
    fn package_relative_label<'v>(
        #[starlark(require = pos)] input: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<LabelValue> {
        if let Some(l) = input.downcast_ref::<LabelValue>() {
            return Ok(l.clone());
        }
        let ctx = BuildContext::from_eval(eval)?;
        let s = input.unpack_str().ok_or_else(|| anyhow!("package_relative_label() expects a string or Label"))?;
        Ok(LabelValue(Label::parse(s, &ctx.package, &|r| ctx.map_repo(r))?))
    }

    fn exports_files<'v>(
        srcs: Value<'v>,
        #[starlark(default = NoneOr::None)] visibility: NoneOr<Value<'v>>,
        #[starlark(default = NoneOr::None)] licenses: NoneOr<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<NoneType> {
        let _ = licenses;
        let ctx = BuildContext::from_eval(eval)?;
        let files = unpack_strings(srcs, "exports_files()")?;
        // Bazel: `visibility` given applies to every file; not given, the files are public.
        let visibility = match visibility {
            NoneOr::None => None,
            NoneOr::Other(v) => {
                let map = |r: &str| ctx.map_repo(r);
                let lctx = crate::graph::LabelContext { package: &ctx.package, map_repo: &map };
                match AttrValue::coerce(AttrType::LabelList, &to_raw(v)?, &lctx).map_err(|e| anyhow!("exports_files(visibility): {e}"))? {
                    AttrValue::LabelList(l) => Some(l),
                    other => bail!("exports_files(visibility): expected a list of labels, got {other}"),
                }
            }
        };
        let mut state = ctx.state.borrow_mut();
        for f in files {
            crate::graph::label::validate_target_name(&f, &f)?;
            state.exported.insert(f, visibility.clone());
        }
        Ok(NoneType)
    }

    fn package<'v>(#[starlark(kwargs)] kwargs: SmallMap<String, Value<'v>>, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<NoneType> {
        let ctx = BuildContext::from_eval(eval)?;
        let mut state = ctx.state.borrow_mut();
        if state.package_called {
            bail!("'package' can only be used once per BUILD file");
        }
        if !state.rules.is_empty() {
            bail!("package() must be called before any rule in the BUILD file");
        }
        state.package_called = true;
        for (k, v) in kwargs {
            match k.as_str() {
                "default_visibility" => {
                    let map = |r: &str| ctx.map_repo(r);
                    let lctx = crate::graph::LabelContext { package: &ctx.package, map_repo: &map };
                    if let AttrValue::LabelList(l) = AttrValue::coerce(AttrType::LabelList, &to_raw(v)?, &lctx)
                        .map_err(|e| anyhow!("package(default_visibility): {e}"))?
                    {
                        state.default_visibility = l;
                    }
                }
                "default_testonly"
                | "default_deprecation"
                | "features"
                | "licenses"
                | "default_applicable_licenses"
                | "default_package_metadata"
                | "default_compatible_with"
                | "default_restricted_to"
                | "distribs"
                | "default_hdrs_check"
                | "default_copts"
                | "default_visibility_override" => {}
                other => bail!("package() got an unexpected keyword argument '{other}'"),
            }
        }
        Ok(NoneType)
    }

    fn licenses<'v>(#[starlark(require = pos)] license_types: Value<'v>, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<NoneType> {
        let _ = license_types;
        BuildContext::from_eval(eval)?;
        Ok(NoneType)
    }

    /// The attributes of a rule already declared in this package, or None.
    fn existing_rule<'v>(#[starlark(require = pos)] name: &str, eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Value<'v>> {
        let heap = eval.heap();
        if let Some(repo_ctx) = RepoFileContext::from_eval(eval) {
            return Ok(repo_globals::existing_repository(repo_ctx, heap, name));
        }
        let ctx = BuildContext::from_eval(eval)?;
        let state = ctx.state.borrow();
        Ok(match state.rules.get(name) {
            Some(rule) => rule_dict(heap, rule),
            None => Value::new_none(),
        })
    }

    fn existing_rules<'v>(eval: &mut Evaluator<'v, '_, '_>) -> anyhow::Result<Value<'v>> {
        let heap = eval.heap();
        if let Some(repo_ctx) = RepoFileContext::from_eval(eval) {
            return Ok(repo_globals::existing_repositories(repo_ctx, heap));
        }
        let ctx = BuildContext::from_eval(eval)?;
        let state = ctx.state.borrow();
        let entries: Vec<(Value, Value)> =
            state.rules.iter().map(|(name, rule)| (heap.alloc(name.as_str()), rule_dict(heap, rule))).collect();
        Ok(heap.alloc(AllocDict(entries)))
    }
}

fn rule_dict<'v>(heap: Heap<'v>, rule: &crate::graph::Rule) -> Value<'v> {
    let mut entries: Vec<(Value<'v>, Value<'v>)> = vec![(heap.alloc("kind"), heap.alloc(rule.kind.as_str()))];
    for (k, v) in &rule.attrs {
        entries.push((heap.alloc(k.as_str()), attr_to_value(heap, v)));
    }
    heap.alloc(AllocDict(entries))
}

/// An attribute value as `native.existing_rule()` shows it: labels as strings.
fn attr_to_value<'v>(heap: Heap<'v>, v: &AttrValue) -> Value<'v> {
    let s = |x: &str| Raw::String(x.to_owned());
    let raw = match v {
        AttrValue::None => Raw::None,
        AttrValue::Bool(b) => Raw::Bool(*b),
        AttrValue::Int(i) => Raw::Int(*i),
        AttrValue::String(x) => s(x),
        AttrValue::Label(l) => s(&l.to_string()),
        AttrValue::StringList(l) => Raw::List(l.iter().map(|x| s(x)).collect()),
        AttrValue::IntList(l) => Raw::List(l.iter().map(|i| Raw::Int(*i)).collect()),
        AttrValue::LabelList(l) => Raw::List(l.iter().map(|x| s(&x.to_string())).collect()),
        AttrValue::StringDict(d) => Raw::Dict(d.iter().map(|(k, v)| (s(k), s(v))).collect()),
        AttrValue::StringListDict(d) => Raw::Dict(d.iter().map(|(k, v)| (s(k), Raw::List(v.iter().map(|x| s(x)).collect()))).collect()),
        AttrValue::LabelKeyedStringDict(d) => Raw::Dict(d.iter().map(|(k, v)| (s(&k.to_string()), s(v))).collect()),
        AttrValue::StringKeyedLabelDict(d) => Raw::Dict(d.iter().map(|(k, v)| (s(k), s(&v.to_string()))).collect()),
        AttrValue::Select(_) => return heap.alloc(SelectValue { parts: select_to_raw(v) }),
        AttrValue::Raw(r) => r.clone(),
    };
    raw_to_value(heap, &raw)
}

fn select_to_raw(v: &AttrValue) -> Vec<SelectPart<Raw>> {
    let AttrValue::Select(parts) = v else { return vec![] };
    let plain = |v: &AttrValue| match v {
        AttrValue::Raw(r) => r.clone(),
        other => Raw::String(other.to_string()),
    };
    parts
        .iter()
        .map(|p| match p {
            SelectPart::Plain(v) => SelectPart::Plain(plain(v)),
            SelectPart::Select { branches, no_match_error } => SelectPart::Select {
                branches: branches.iter().map(|(k, v)| (k.clone(), plain(v))).collect(),
                no_match_error: no_match_error.clone(),
            },
        })
        .collect()
}

/// `rule()`, `provider()`, and the other definition functions of .bzl files.
#[starlark_module]
fn rule_definition_functions(builder: &mut GlobalsBuilder) {
    // Bazel's parameters plus the evaluator (for where `rule()` was called).
    #[allow(clippy::too_many_arguments)]
    fn rule<'v>(
        implementation: Value<'v>,
        #[starlark(require = named, default = NoneOr::None)] attrs: NoneOr<Value<'v>>,
        #[starlark(require = named, default = false)] executable: bool,
        #[starlark(require = named, default = false)] test: bool,
        #[starlark(require = named, default = NoneOr::None)] outputs: NoneOr<Value<'v>>,
        #[starlark(kwargs)] kwargs: SmallMap<String, Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> anyhow::Result<Value<'v>> {
        // `build_setting`, `cfg` and the parameters ocib does not use come in `kwargs`.
        let setting_of = |name: &str| kwargs.get(name).copied().filter(|v| !v.is_none());
        let (build_setting, cfg) = (setting_of("build_setting"), setting_of("cfg"));
        let mut b = SchemaBuilder::new("");
        // A build setting's targets take its default value (Bazel's `build_setting_default`,
        // its type follows `config.*`). Mandatory in Bazel; optional here so that a default
        // from a repository ocib does not know (a stub) still loads: analysis of the setting
        // fails when it has none.
        let build_setting = build_setting.map(|v| match v.downcast_ref::<Opaque>() {
            Some(o) => o.name.trim_start_matches("config.").trim_end_matches("()").to_owned(),
            None => "string".to_owned(),
        });
        if build_setting.is_some() {
            // Bazel 8 gives every build setting a `scope` attribute (`universal`, `project`).
            b = b.default("build_setting_default", AttrType::Any, AttrValue::None).attr("scope", AttrType::String);
        }
        if test {
            b = b.test();
        } else if executable {
            b = b.executable();
        }
        let mut all_attrs = Vec::new();
        if let Some(attrs) = attrs.into_option() {
            let dict = DictRef::from_value(attrs).ok_or_else(|| anyhow!("rule(attrs = ...) must be a dict"))?;
            for (k, v) in dict.iter() {
                let name = k.unpack_str().ok_or_else(|| anyhow!("rule() attribute names must be strings"))?;
                let desc = AttrDescriptor::from_value(v)
                    .ok_or_else(|| anyhow!("rule() attribute '{name}' must be an attr.* value, got '{}'", v.get_type()))?;
                all_attrs.push((name.to_owned(), v));
                if name.starts_with('_') {
                    continue; // Private attributes cannot be set by callers.
                }
                let default = desc.default.as_ref().and_then(|d| plain_default(desc.ty, d)).unwrap_or_else(|| desc.ty.zero());
                b = if desc.mandatory { b.mandatory(name, desc.ty) } else { b.default(name, desc.ty, default) };
            }
        }
        let mut output_templates = Vec::new();
        if let Some(outputs) = outputs.into_option()
            && let Raw::Dict(entries) = to_raw(outputs)?
        {
            for (key, template) in entries {
                if let (Raw::String(k), Raw::String(t)) = (key, template) {
                    b = b.implicit_output(&t);
                    output_templates.push((k, t));
                }
            }
        }
        let (bzl_package, _) = caller_package(eval);
        let rule = StarlarkRuleGen {
            schema: Arc::new(b.build()),
            exported_name: Default::default(),
            implementation,
            attrs: all_attrs,
            cfg,
            output_templates,
            executable: executable || test,
            test,
            build_setting,
            bzl_package,
            defined_at: DefinitionSite::of_call(eval),
        };
        Ok(eval.heap().alloc(rule))
    }

    fn provider<'v>(
        #[starlark(default = "")] doc: &str,
        #[starlark(require = named, default = NoneOr::None)] fields: NoneOr<Value<'v>>,
        #[starlark(require = named, default = NoneOr::None)] init: NoneOr<Value<'v>>,
        heap: Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        let _ = doc;
        // `fields` is a list of names or a dict of name → doc.
        let fields = match fields.into_option() {
            None => None,
            Some(f) => Some(match to_raw(f)? {
                Raw::List(items) => items.into_iter().filter_map(|i| if let Raw::String(s) = i { Some(s) } else { None }).collect(),
                Raw::Dict(entries) => {
                    entries.into_iter().filter_map(|(k, _)| if let Raw::String(s) = k { Some(s) } else { None }).collect()
                }
                other => bail!("provider(fields = ...) must be a list or dict of strings, got {other}"),
            }),
        };
        let init = init.into_option();
        let provider = ProviderGen::new(fields, init);
        // With `init`, Bazel returns the provider and its raw constructor.
        Ok(if init.is_some() {
            let raw = raw_constructor(&provider);
            let p = heap.alloc(provider);
            heap.alloc(AllocTuple([p, heap.alloc(raw)]))
        } else {
            heap.alloc(provider)
        })
    }

    /// `repository_rule(implementation, attrs)`: run when a module extension declares a
    /// repository the main module uses (`module_ext`).
    fn repository_rule<'v>(
        implementation: Value<'v>,
        #[starlark(require = named, default = NoneOr::None)] attrs: NoneOr<Value<'v>>,
        #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>,
    ) -> anyhow::Result<super::module_ext::RepositoryRule<'v>> {
        super::module_ext::RepositoryRule::new(implementation, attrs.into_option())
    }

    /// `transition(implementation, inputs, outputs)`.
    fn transition<'v>(
        #[starlark(require = named)] implementation: Value<'v>,
        #[starlark(require = named)] inputs: UnpackListOrTuple<String>,
        #[starlark(require = named)] outputs: UnpackListOrTuple<String>,
        heap: Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        Ok(heap.alloc(TransitionGen { implementation, inputs: inputs.items, outputs: outputs.items }))
    }

    fn aspect<'v>(implementation: Value<'v>, #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>) -> anyhow::Result<Opaque> {
        let _ = implementation;
        Ok(Opaque { name: "aspect".into() })
    }

    /// `module_extension(implementation, tag_classes)`: run when MODULE.bazel uses it
    /// (`module_ext`).
    fn module_extension<'v>(
        implementation: Value<'v>,
        #[starlark(require = named, default = NoneOr::None)] tag_classes: NoneOr<Value<'v>>,
        #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>,
    ) -> anyhow::Result<super::module_ext::ModuleExtension<'v>> {
        super::module_ext::ModuleExtension::new(implementation, tag_classes.into_option())
    }

    fn tag_class<'v>(
        #[starlark(default = NoneOr::None)] attrs: NoneOr<Value<'v>>,
        #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>,
    ) -> anyhow::Result<super::module_ext::TagClass> {
        super::module_ext::TagClass::new(attrs.into_option())
    }

    /// `configuration_field(fragment, name)`: a late-bound default, resolved at analysis.
    fn configuration_field<'v>(
        #[starlark(args)] _args: Value<'v>,
        #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>,
    ) -> anyhow::Result<Opaque> {
        Ok(Opaque { name: "configuration_field".into() })
    }

    fn exec_group<'v>(#[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>) -> anyhow::Result<Opaque> {
        Ok(Opaque { name: "exec_group".into() })
    }

    fn analysis_test_transition<'v>(#[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>) -> anyhow::Result<Opaque> {
        Ok(Opaque { name: "analysis_test_transition".into() })
    }

    /// `.bzl` load visibility: accepted, not enforced.
    fn visibility<'v>(#[starlark(require = pos)] value: Value<'v>) -> anyhow::Result<NoneType> {
        let _ = value;
        Ok(NoneType)
    }
}

/// A default usable in a schema (labels in defaults stay unresolved strings).
fn plain_default(ty: AttrType, raw: &Raw) -> Option<AttrValue> {
    let pkg = PackageId::main("");
    let map = |r: &str| Some(r.to_owned());
    AttrValue::coerce(ty, raw, &crate::graph::LabelContext { package: &pkg, map_repo: &map }).ok()
}

/// The providers of `attr.label(providers = ...)`: a list of providers (one group), or a
/// list of such lists (groups; a dependency must satisfy any one of them, as in Bazel).
fn required_providers(v: Option<Value>) -> Vec<Vec<Value>> {
    fn group<'v>(l: &ListRef<'v>) -> Vec<Value<'v>> {
        l.iter().filter(|p| super::providers::provider_id(*p).is_some()).collect()
    }
    let Some(list) = v.and_then(ListRef::from_value) else { return Vec::new() };
    if list.iter().next().and_then(ListRef::from_value).is_some() {
        list.iter().filter_map(ListRef::from_value).map(group).filter(|g| !g.is_empty()).collect()
    } else {
        Some(group(list)).filter(|g| !g.is_empty()).into_iter().collect()
    }
}

fn descriptor<'v>(ty: AttrType, kwargs: &SmallMap<String, Value<'v>>) -> anyhow::Result<AttrDescriptorGen<Value<'v>>> {
    let flag = |name: &str| kwargs.get(name).and_then(|v| v.unpack_bool()).unwrap_or(false);
    let default = match kwargs.get("default") {
        // A computed default (a function, or a late-bound `configuration_field()`) is
        // evaluated at analysis; treat it as unset here.
        Some(v) if v.get_type() == "function" || v.downcast_ref::<Opaque>().is_some() => None,
        Some(v) => Some(to_raw(*v)?),
        None => None,
    };
    Ok(AttrDescriptorGen {
        ty,
        mandatory: flag("mandatory"),
        default,
        cfg: kwargs.get("cfg").copied().filter(|v| !v.is_none()),
        executable: flag("executable"),
        single_file: flag("allow_single_file") || kwargs.get("allow_single_file").is_some_and(|v| v.get_type() == "list"),
        providers: required_providers(kwargs.get("providers").copied()),
    })
}

#[starlark_module]
fn attr_functions(builder: &mut GlobalsBuilder) {
    fn bool<'v>(#[starlark(kwargs)] kwargs: SmallMap<String, Value<'v>>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        Ok(heap.alloc(descriptor(AttrType::Bool, &kwargs)?))
    }
    fn int<'v>(#[starlark(kwargs)] kwargs: SmallMap<String, Value<'v>>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        Ok(heap.alloc(descriptor(AttrType::Int, &kwargs)?))
    }
    fn int_list<'v>(#[starlark(kwargs)] kwargs: SmallMap<String, Value<'v>>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        Ok(heap.alloc(descriptor(AttrType::IntList, &kwargs)?))
    }
    fn string<'v>(#[starlark(kwargs)] kwargs: SmallMap<String, Value<'v>>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        Ok(heap.alloc(descriptor(AttrType::String, &kwargs)?))
    }
    fn string_list<'v>(#[starlark(kwargs)] kwargs: SmallMap<String, Value<'v>>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        Ok(heap.alloc(descriptor(AttrType::StringList, &kwargs)?))
    }
    fn string_dict<'v>(#[starlark(kwargs)] kwargs: SmallMap<String, Value<'v>>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        Ok(heap.alloc(descriptor(AttrType::StringDict, &kwargs)?))
    }
    fn string_list_dict<'v>(#[starlark(kwargs)] kwargs: SmallMap<String, Value<'v>>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        Ok(heap.alloc(descriptor(AttrType::StringListDict, &kwargs)?))
    }
    fn label<'v>(#[starlark(kwargs)] kwargs: SmallMap<String, Value<'v>>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        Ok(heap.alloc(descriptor(AttrType::Label, &kwargs)?))
    }
    fn label_list<'v>(#[starlark(kwargs)] kwargs: SmallMap<String, Value<'v>>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        Ok(heap.alloc(descriptor(AttrType::LabelList, &kwargs)?))
    }
    fn label_keyed_string_dict<'v>(#[starlark(kwargs)] kwargs: SmallMap<String, Value<'v>>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        Ok(heap.alloc(descriptor(AttrType::LabelKeyedStringDict, &kwargs)?))
    }
    fn string_keyed_label_dict<'v>(#[starlark(kwargs)] kwargs: SmallMap<String, Value<'v>>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        Ok(heap.alloc(descriptor(AttrType::StringKeyedLabelDict, &kwargs)?))
    }
    fn output<'v>(#[starlark(kwargs)] kwargs: SmallMap<String, Value<'v>>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        Ok(heap.alloc(descriptor(AttrType::Output, &kwargs)?))
    }
    fn output_list<'v>(#[starlark(kwargs)] kwargs: SmallMap<String, Value<'v>>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        Ok(heap.alloc(descriptor(AttrType::OutputList, &kwargs)?))
    }
    fn license<'v>(#[starlark(kwargs)] kwargs: SmallMap<String, Value<'v>>, heap: Heap<'v>) -> anyhow::Result<Value<'v>> {
        Ok(heap.alloc(descriptor(AttrType::StringList, &kwargs)?))
    }
}

/// `config.*`: build-setting descriptors, opaque at load time.
#[starlark_module]
fn opaque_functions(builder: &mut GlobalsBuilder) {
    fn bool<'v>(#[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>) -> anyhow::Result<Opaque> {
        Ok(Opaque { name: "config.bool".into() })
    }
    fn int<'v>(#[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>) -> anyhow::Result<Opaque> {
        Ok(Opaque { name: "config.int".into() })
    }
    fn string<'v>(#[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>) -> anyhow::Result<Opaque> {
        Ok(Opaque { name: "config.string".into() })
    }
    fn string_list<'v>(#[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>) -> anyhow::Result<Opaque> {
        Ok(Opaque { name: "config.string_list".into() })
    }
    fn exec<'v>(#[starlark(args)] _args: Value<'v>, #[starlark(kwargs)] _kwargs: SmallMap<String, Value<'v>>) -> anyhow::Result<Opaque> {
        Ok(Opaque { name: "config.exec".into() })
    }
    fn target<'v>() -> anyhow::Result<Opaque> {
        Ok(Opaque { name: "config.target".into() })
    }
    fn none<'v>() -> anyhow::Result<Opaque> {
        Ok(Opaque { name: "config.none".into() })
    }
}

/// The prelude's own helpers.
#[starlark_module]
fn ocib_functions(builder: &mut GlobalsBuilder) {
    /// A stand-in rule for a symbol of a rule set ocib does not know: records its arguments.
    fn unknown_rule(#[starlark(require = pos)] kind: &str) -> anyhow::Result<RuleCallable> {
        Ok(RuleCallable::native(Arc::new(RuleSchema::untyped(kind))))
    }

    /// The universal stub for `name`, a symbol of `origin` that ocib does not implement.
    fn stub(#[starlark(require = pos)] name: &str, #[starlark(require = pos)] origin: &str) -> anyhow::Result<super::stub::StubValue> {
        Ok(super::stub::StubValue::new(name, origin))
    }

    /// Whether a value is a `select()` (the rule sets' macros treat them specially).
    fn is_select<'v>(#[starlark(require = pos)] value: Value<'v>) -> anyhow::Result<bool> {
        Ok(value.downcast_ref::<SelectValue>().is_some())
    }
}
