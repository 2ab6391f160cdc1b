//! Rules defined in Starlark with `rule()`: analysis runs the rule's implementation function
//! with a `ctx` (attributes as values and `Target`s, files, outputs, `ctx.actions`,
//! `ctx.runfiles`), turns the actions it declared into `exec::Action`s (so they share the
//! scheduler, cache and exec roots of native actions) and the providers it returned into
//! [`Providers`] (so native rules consume Starlark targets through DefaultInfo, and Starlark
//! rules consume native targets the same way).
//!
//! Each target's implementation runs in a fresh module; the list of providers it returns is
//! frozen and kept with the configured target, so dependents index it (`dep[MyInfo]`).

mod ctx;
mod transition;
mod values;

use std::collections::BTreeMap;
use std::sync::Arc;

use starlark::environment::Module;
use starlark::values::list::AllocList;
use starlark::values::{OwnedFrozenValue, Value, ValueLike};

use crate::analysis::{AnalysisError, ConfiguredTarget, Providers, RuleContext, TestRun};
use crate::exec::Artifact;
use crate::graph::label::Label;
use crate::graph::{AttrType, AttrValue, LabelContext};
use crate::load::providers::{
    DEFAULT_INFO, GO_ARCHIVE, GO_INFO, OUTPUT_GROUP_INFO, ProviderInstance, RUN_ENVIRONMENT_INFO, iterate_elements,
};
use crate::load::rule_def::{FrozenAttrDescriptor, FrozenStarlarkRule, StarlarkRuleHandle, Transition};
use values::{RunfilesValue, artifact_of, artifacts_of, runfiles_of};

/// The key Starlark rules' analysis is registered under in `RuleImpls`.
pub use crate::analysis::STARLARK_RULE_IMPL;

/// One attribute of the rule being analysed: its value, and the targets it names.
struct AttrInput {
    name: String,
    ty: AttrType,
    value: AttrValue,
    /// For label-typed attributes: each dependency (per label, one per configuration a
    /// split transition makes).
    deps: Vec<Arc<ConfiguredTarget>>,
    /// Whether a Starlark transition applies (then `ctx.attr` shows a list).
    transitioned: bool,
    executable: bool,
    single_file: bool,
}

fn definition(ctx: &RuleContext) -> Result<OwnedFrozenValue, AnalysisError> {
    let handle = ctx.rule.definition.as_ref().and_then(|d| d.0.downcast_ref::<StarlarkRuleHandle>());
    handle.map(|h| h.0.clone()).ok_or_else(|| AnalysisError::new(format!("internal: '{}' has no Starlark definition", ctx.rule.kind)))
}

/// Analyses a target of a Starlark rule.
pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let owned = definition(ctx)?;
    let rule = owned
        .value()
        .downcast_ref::<FrozenStarlarkRule>()
        .ok_or_else(|| AnalysisError::new("internal: a rule definition that is not a rule"))?;
    let mut inputs = resolve_attrs(ctx, rule)?;
    // A rule-level `cfg = transition`: Bazel's incoming-edge transition. Its `attr` sees the
    // attributes as configured where the target was asked for; the target itself (selects,
    // dependencies, outputs) is then analysed in the configuration it returns.
    if let Some(t) = rule.cfg.filter(|c| Transition::from_value(c.to_value()).is_some()) {
        let configs = transition::apply(ctx, t, &inputs, &owned).map_err(|e| AnalysisError::new(format!("rule transition: {e}")))?;
        let config = match <[_; 1]>::try_from(configs) {
            Ok([one]) => one,
            Err(many) => {
                return Err(AnalysisError::new(format!(
                    "rule transition: a rule's cfg transition must return one configuration, it returned {}",
                    many.len()
                )));
            }
        };
        if config.name() != ctx.config().name() {
            ctx.transition_self(config);
            inputs = resolve_attrs(ctx, rule)?;
        }
    }
    let mut transitions = Vec::new();
    for (i, (name, desc_value)) in rule.attrs.iter().enumerate() {
        let desc = desc_value.to_value().downcast_ref::<FrozenAttrDescriptor>();
        if let Some(t) = desc.and_then(|d| d.cfg).filter(|c| Transition::from_value(c.to_value()).is_some()) {
            transitions.push((i, name.clone(), t));
        }
    }
    // Dependencies are analysed before the implementation runs, each in its configuration.
    for (i, name, t) in &transitions {
        let configs = transition::apply(ctx, *t, &inputs, &owned).map_err(|e| AnalysisError::new(format!("attribute '{name}': {e}")))?;
        let input = &mut inputs[*i];
        input.transitioned = true;
        let labels = labels_of(&input.value);
        let mut deps = Vec::new();
        for label in &labels {
            for config in &configs {
                deps.push(ctx.analysis.analyze_in(label, config.clone())?);
            }
        }
        input.deps = deps;
    }
    // Output attributes name files this rule makes, not dependencies.
    for input in inputs.iter_mut().filter(|i| !i.transitioned && i.ty.is_dep()) {
        let labels = labels_of(&input.value);
        let private = input.name.starts_with('_');
        let mut deps = Vec::new();
        for label in &labels {
            if private && is_allowlist(label) {
                continue;
            }
            // Private attributes are the rule's own dependencies: Bazel checks their
            // visibility against the rule's definition, not the target.
            deps.push(if private { ctx.analysis.analyze(label)? } else { ctx.dep(label)? });
        }
        input.deps = deps;
    }
    for (input, (_, desc_value)) in inputs.iter().zip(&rule.attrs) {
        if let Some(desc) = desc_value.to_value().downcast_ref::<FrozenAttrDescriptor>() {
            check_providers(input, desc)?;
        }
    }
    ctx::run_implementation(ctx, rule, &owned, &inputs)
}

/// Every attribute of the rule, resolved in the current configuration.
fn resolve_attrs(ctx: &mut RuleContext, rule: &FrozenStarlarkRule) -> Result<Vec<AttrInput>, AnalysisError> {
    let mut inputs = Vec::new();
    for (name, desc_value) in &rule.attrs {
        let desc = desc_value
            .to_value()
            .downcast_ref::<FrozenAttrDescriptor>()
            .ok_or_else(|| AnalysisError::new(format!("internal: attribute '{name}' is not an attr.* value")))?;
        inputs.push(resolve_attr(ctx, rule, name, desc)?);
    }
    Ok(inputs)
}

/// Bazel's mandatory providers: every dependency of the attribute must return all the
/// providers of at least one of the attribute's groups; Bazel's message names each group
/// (`'AInfo' or ['BInfo', 'CInfo']`, as Bazel 4.2.3 prints them).
fn check_providers(input: &AttrInput, desc: &FrozenAttrDescriptor) -> Result<(), AnalysisError> {
    use crate::load::providers::Provider;
    // (id, name) of each provider of each group.
    let groups: Vec<Vec<(u64, String)>> = desc
        .providers
        .iter()
        .map(|g| g.iter().filter_map(|p| Provider::from_value(p.to_value()).map(|p| (p.id, p.name().to_owned()))).collect())
        .collect();
    if groups.is_empty() {
        return Ok(());
    }
    for dep in &input.deps {
        let has = |(id, _): &(u64, String)| {
            *id == DEFAULT_INFO
                || dep.providers.starlark.as_ref().is_some_and(|list| {
                    iterate_elements(list.value())
                        .is_ok_and(|items| items.iter().any(|i| ProviderInstance::from_value(*i).is_some_and(|i| i.provider_id == *id)))
                })
                || (*id == OUTPUT_GROUP_INFO && !dep.providers.output_groups.is_empty())
                || (matches!(*id, GO_INFO | GO_ARCHIVE) && dep.providers.go.is_some())
        };
        if groups.iter().any(|g| g.iter().all(has)) {
            continue;
        }
        let describe = |g: &Vec<(u64, String)>| match g.as_slice() {
            [(_, one)] => format!("'{one}'"),
            many => format!("[{}]", many.iter().map(|(_, n)| format!("'{n}'")).collect::<Vec<_>>().join(", ")),
        };
        return Err(AnalysisError::new(format!(
            "in {} attribute: '{}' does not have mandatory providers: {}",
            input.name,
            dep.label,
            groups.iter().map(describe).collect::<Vec<_>>().join(" or ")
        )));
    }
    Ok(())
}

/// Bazel's special allowlist attributes (`_allowlist_function_transition`) name targets in
/// `@bazel_tools` that only Bazel itself reads.
fn is_allowlist(label: &Label) -> bool {
    label.package.contains("allowlists") || label.repo == "bazel_tools"
}

fn labels_of(value: &AttrValue) -> Vec<Label> {
    match value {
        AttrValue::Label(l) => vec![l.clone()],
        AttrValue::LabelList(l) => l.clone(),
        AttrValue::LabelKeyedStringDict(d) => d.iter().map(|(l, _)| l.clone()).collect(),
        AttrValue::StringKeyedLabelDict(d) => d.iter().map(|(_, l)| l.clone()).collect(),
        _ => vec![],
    }
}

/// An attribute's value: set, or its default (private attributes always take the default,
/// resolved against the package of the .bzl file that defined the rule).
fn resolve_attr(
    ctx: &mut RuleContext,
    rule: &FrozenStarlarkRule,
    name: &str,
    desc: &FrozenAttrDescriptor,
) -> Result<AttrInput, AnalysisError> {
    let value = if name.starts_with('_') {
        match &desc.default {
            Some(raw) => {
                let ws = ctx.analysis.loader.workspace().clone();
                let map = |r: &str| ws.map_repo(r);
                let lctx = LabelContext { package: &rule.bzl_package, map_repo: &map };
                AttrValue::coerce(desc.ty, raw, &lctx).map_err(|e| AnalysisError::new(format!("default of attribute '{name}': {e}")))?
            }
            None => desc.ty.zero(),
        }
    } else if matches!(desc.ty, AttrType::Output | AttrType::OutputList) {
        ctx.rule.attrs.get(name).cloned().unwrap_or(AttrValue::None)
    } else {
        ctx.attr(name)?
    };
    let value = match value {
        // Label defaults written relative to the .bzl file (`default = ":tool"`) were kept as
        // strings by loading; a public label default resolves against the .bzl package too.
        AttrValue::Label(l) if l.repo.is_empty() && l.package.is_empty() && !ctx.rule.attrs.contains_key(name) => match &desc.default {
            Some(raw) => {
                let ws = ctx.analysis.loader.workspace().clone();
                let map = |r: &str| ws.map_repo(r);
                let lctx = LabelContext { package: &rule.bzl_package, map_repo: &map };
                AttrValue::coerce(desc.ty, raw, &lctx).unwrap_or(AttrValue::Label(l))
            }
            None => AttrValue::Label(l),
        },
        other => other,
    };
    Ok(AttrInput {
        name: name.to_owned(),
        ty: desc.ty,
        value,
        deps: Vec::new(),
        transitioned: false,
        executable: desc.executable,
        single_file: desc.single_file,
    })
}

/// What the implementation returned, as the providers analysis keeps.
struct Returned {
    files: Option<Vec<Artifact>>,
    runfiles: RunfilesValue,
    executable: Option<Artifact>,
    output_groups: BTreeMap<String, Vec<Artifact>>,
    env: BTreeMap<String, String>,
}

/// Reads the providers list an implementation returned (None, a provider, or a list).
fn read_returned(value: Value) -> Result<(Vec<Value>, Returned), AnalysisError> {
    let err = |e: starlark::Error| AnalysisError::new(e.to_string());
    let items: Vec<Value> = if value.is_none() {
        vec![]
    } else if ProviderInstance::from_value(value).is_some() {
        vec![value]
    } else if value.get_type() == "struct" {
        // Legacy struct providers: nothing ocib reads from them.
        vec![]
    } else {
        iterate_elements(value).map_err(err)?
    };
    let mut out = Returned {
        files: None,
        runfiles: RunfilesValue::default(),
        executable: None,
        output_groups: BTreeMap::new(),
        env: BTreeMap::new(),
    };
    let mut seen = std::collections::BTreeSet::new();
    for item in &items {
        let p = ProviderInstance::from_value(*item)
            .ok_or_else(|| AnalysisError::new(format!("rule implementation returned a '{}', not a provider", item.get_type())))?;
        if !seen.insert(p.provider_id) {
            return Err(AnalysisError::new(format!("multiple instances of provider '{}' returned", p.name)));
        }
        match p.provider_id {
            DEFAULT_INFO => {
                if let Some(files) = p.field("files").filter(|v| !v.is_none()) {
                    out.files = Some(artifacts_of(files).map_err(err)?);
                }
                for key in ["runfiles", "default_runfiles"] {
                    if let Some(r) = p.field(key) {
                        out.runfiles.merge(&runfiles_of(r).map_err(err)?);
                    }
                }
                if let Some(e) = p.field("executable").filter(|v| !v.is_none()) {
                    out.executable = Some(artifact_of(e).map_err(err)?);
                }
            }
            OUTPUT_GROUP_INFO => {
                for (group, files) in &p.fields {
                    out.output_groups.insert(group.clone(), artifacts_of(files.to_value()).map_err(err)?);
                }
            }
            RUN_ENVIRONMENT_INFO => {
                if let Some(env) = p.field("environment")
                    && let Some(dict) = starlark::values::dict::DictRef::from_value(env)
                {
                    for (k, v) in dict.iter() {
                        out.env.insert(k.to_str(), v.to_str());
                    }
                }
            }
            _ => {}
        }
    }
    Ok((items, out))
}

/// Freezes the returned providers with everything they reference, for dependents.
fn freeze_providers<'v>(module: Module<'v>, items: Vec<Value<'v>>) -> Result<OwnedFrozenValue, AnalysisError> {
    let list = module.heap().alloc(AllocList(items));
    module.set("providers", list);
    let frozen = module.freeze().map_err(|e| AnalysisError::new(format!("freezing providers: {e:?}")))?;
    frozen.get("providers").map_err(|e| AnalysisError::new(format!("internal: {e}")))
}

/// Turns what the implementation returned into the target's providers.
#[allow(clippy::too_many_arguments)]
fn providers_of(
    ctx: &RuleContext,
    returned: Returned,
    predeclared: &[Artifact],
    default_executable: Option<Artifact>,
    inputs: &[AttrInput],
    declared: Vec<Artifact>,
    directories: std::collections::BTreeSet<String>,
    frozen: OwnedFrozenValue,
    test: bool,
) -> Providers {
    let executable = returned.executable.or(default_executable);
    let mut files = returned.files.unwrap_or_else(|| predeclared.to_vec());
    if let Some(e) = &executable
        && !files.contains(e)
    {
        files.push(e.clone());
    }
    let mut runfiles = returned.runfiles;
    if let Some(e) = &executable {
        runfiles.merge(&RunfilesValue { files: vec![e.clone()], ..Default::default() });
    }
    let runfiles = runfiles.all_files();
    // A Starlark rule that forwards an image's layout directory (or a directory a native dep
    // made) is that image to native rules.
    let mut oci_layout = None;
    let mut directories = directories;
    for dep in inputs.iter().flat_map(|i| i.deps.iter()) {
        if let Some(layout) = &dep.providers.oci_layout
            && files.contains(layout)
        {
            oci_layout = Some(layout.clone());
        }
        for d in &dep.providers.directories {
            if files.iter().any(|f| &f.exec_path == d) {
                directories.insert(d.clone());
            }
        }
    }
    if let Some(l) = &oci_layout {
        directories.insert(l.exec_path.clone());
    }
    let test_run = match (&executable, test) {
        (Some(exe), true) => Some(TestRun::Exec {
            executable: exe.clone(),
            args: test_args(ctx),
            env: returned.env,
            runfiles: runfiles.clone(),
            runfiles_tree: true,
        }),
        _ => None,
    };
    Providers {
        files,
        executable,
        runfiles,
        output_groups: returned.output_groups,
        declared,
        oci_layout,
        directories,
        starlark: Some(frozen),
        test: test_run,
        runfiles_tree: true,
        ..Default::default()
    }
}

fn test_args(ctx: &RuleContext) -> Vec<String> {
    match ctx.rule.attrs.get("args") {
        Some(AttrValue::StringList(l)) => l.clone(),
        _ => vec![],
    }
}

/// `print()` in an implementation goes to stderr as Bazel's `DEBUG:` lines.
pub(super) struct PrintToStderr;

impl starlark::PrintHandler for PrintToStderr {
    fn println(&self, text: &str) -> starlark::Result<()> {
        eprintln!("DEBUG: {text}");
        Ok(())
    }
}

/// `owned` as a value of `module`, whose frozen heap now references `owned`'s.
fn value_on<'v>(owned: &OwnedFrozenValue, module: &Module<'v>) -> Value<'v> {
    module.frozen_heap().add_reference(owned.owner());
    // SAFETY: the module's frozen heap (and the heap it freezes into) now keeps `owned`'s
    // heap alive for as long as the value can be reached.
    unsafe { owned.unchecked_frozen_value() }.to_value()
}
