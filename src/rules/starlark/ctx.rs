//! The `ctx` a rule implementation receives, and `ctx.actions`: attributes as values, files,
//! predeclared outputs, and the functions that declare files and actions. Actions become
//! `exec::Action`s of the same kinds native rules use (spawned processes, writes, in-process
//! template expansion and copies), so their keys and caching are the same.

// The functions mirror Bazel's, whose signatures have many keyword parameters.
#![allow(clippy::too_many_arguments)]

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, OnceLock};

use anyhow::anyhow;
use starlark::any::ProvidesStaticType;
use starlark::collections::SmallMap;
use starlark::environment::{Globals, GlobalsBuilder, Module};
use starlark::eval::Evaluator;
use starlark::starlark_module;
use starlark::values::dict::{AllocDict, DictRef};
use starlark::values::list::AllocList;
use starlark::values::none::NoneOr;
use starlark::values::structs::AllocStruct;
use starlark::values::{Heap, OwnedFrozenValue, Value, ValueLike};

use super::values::{ArgsValue, FilesToRunValue, RootValue, RunfilesValue, TargetValue, artifact_of, artifacts_of, file_value};
use super::{AttrInput, freeze_providers, providers_of, read_returned, value_on};
use crate::analysis::{AnalysisError, ConfiguredTarget, Providers, RuleContext, source_exec_path};
use crate::exec::{Action, ActionKind, Artifact, ArtifactKind};
use crate::graph::label::{Label, PackageId};
use crate::graph::{AttrType, AttrValue, Raw};
use crate::load::providers::iterate_elements;
use crate::load::rule_def::{FrozenStarlarkRule, StarlarkRule};
use crate::load::values::{LabelValue, raw_to_value};
use crate::rules::lib::files::{CopyFile, ExpandTemplate};

fn err(e: impl std::fmt::Display) -> starlark::Error {
    starlark::Error::new_other(anyhow!("{e}"))
}

/// What the functions of `ctx` and `ctx.actions` work on while an implementation runs.
#[derive(ProvidesStaticType)]
pub(super) struct RuleState {
    label: Label,
    /// The configuration's output directory (`ocib-out/bin`).
    bin_dir: String,
    /// Bazel's make variables (`ctx.var`).
    make_vars: BTreeMap<String, String>,
    /// Label → files, for `$(location)` in `ctx.expand_location`.
    locations: Vec<(Label, Vec<Artifact>)>,
    actions: RefCell<Vec<Action>>,
    declared: RefCell<Vec<Artifact>>,
    directories: RefCell<BTreeSet<String>>,
    /// Outputs some action already produces.
    produced: RefCell<BTreeSet<String>>,
    param_files: Cell<usize>,
    workspace: Arc<crate::workspace::Workspace>,
    /// What `ctx.runfiles(collect_data = True)` / `collect_default = True` add: the files of
    /// file targets in `data`, and the runfiles of rule targets in `srcs`, `deps` and `data`
    /// (Bazel's `Runfiles.Builder.addRunfiles`; ocib keeps one runfiles set per target, so
    /// both collect the same).
    collected_runfiles: Vec<Artifact>,
}

/// Bazel's default shell environment (`use_default_shell_env = True`,
/// `ctx.configuration.default_shell_env`): `PATH` as the client has it, Bazel 4's default
/// without `--incompatible_strict_action_env` (the strict value when the client has none).
pub(super) fn default_shell_env() -> BTreeMap<String, String> {
    let path = std::env::var("PATH").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "/bin:/usr/bin:/usr/local/bin".to_owned());
    BTreeMap::from([("PATH".to_owned(), path)])
}

fn state<'a>(eval: &'a Evaluator) -> starlark::Result<&'a RuleState> {
    eval.extra.and_then(|e| e.downcast_ref::<RuleState>()).ok_or_else(|| err("this function can only be called from a rule implementation"))
}

impl RuleState {
    fn declare(&self, filename: &str, sibling: Option<Value>) -> starlark::Result<Artifact> {
        if filename.is_empty() || filename.starts_with('/') || filename.split('/').any(|c| c == ".." || c == ".") {
            return Err(err(format!("invalid output name '{filename}'")));
        }
        let exec_path = match sibling {
            Some(s) => {
                let sib = artifact_of(s)?;
                match sib.exec_path.rsplit_once('/') {
                    Some((dir, _)) if !sib.is_source() => format!("{dir}/{filename}"),
                    _ => format!("{}/{}", self.bin_dir, source_exec_path(&self.label.package_id().label(filename))),
                }
            }
            None => format!("{}/{}", self.bin_dir, source_exec_path(&self.label.package_id().label(filename))),
        };
        let artifact = Artifact { exec_path, kind: ArtifactKind::Derived };
        let mut declared = self.declared.borrow_mut();
        if declared.contains(&artifact) {
            return Err(err(format!("the file '{filename}' has already been declared by this rule")));
        }
        declared.push(artifact.clone());
        Ok(artifact)
    }

    fn file<'v>(&self, heap: Heap<'v>, artifact: &Artifact) -> Value<'v> {
        let dir = self.directories.borrow().contains(&artifact.exec_path);
        file_value(heap, artifact, Some(&self.label), dir)
    }

    /// Registers an action, checking each output was declared by this rule and is made once.
    fn add(&self, action: Action) -> starlark::Result<()> {
        let declared = self.declared.borrow();
        let mut produced = self.produced.borrow_mut();
        for out in &action.outputs {
            if !declared.contains(out) {
                return Err(err(format!("output '{}' was not declared by this rule (use ctx.actions.declare_file)", out.short_path())));
            }
            if !produced.insert(out.exec_path.clone()) {
                return Err(err(format!("output '{}' is already produced by another action of this rule", out.short_path())));
            }
        }
        drop(declared);
        self.actions.borrow_mut().push(action);
        Ok(())
    }
}

/// The builtin functions `ctx` is made of.
fn ctx_builtins() -> &'static Globals {
    static GLOBALS: OnceLock<Globals> = OnceLock::new();
    GLOBALS.get_or_init(|| GlobalsBuilder::new().with(ctx_functions).build())
}

/// The builtin functions `ctx.actions` is made of.
fn action_builtins() -> &'static Globals {
    static GLOBALS: OnceLock<Globals> = OnceLock::new();
    GLOBALS.get_or_init(|| GlobalsBuilder::new().with(action_functions).build())
}

fn builtin<'v>(name: &str) -> Value<'v> {
    ctx_builtins().iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_value()).unwrap_or_else(Value::new_none)
}

/// `ctx.actions`: a struct of the action functions.
fn builtin_actions<'v>(heap: Heap<'v>) -> Value<'v> {
    heap.alloc(AllocStruct(action_builtins().iter().map(|(n, v)| (n, v.to_value()))))
}

/// An attribute value that is plain data, as a Starlark value.
fn plain_value<'v>(heap: Heap<'v>, value: &AttrValue) -> Value<'v> {
    let s = |x: &str| Raw::String(x.to_owned());
    let raw = match value {
        AttrValue::None => Raw::None,
        AttrValue::Bool(b) => Raw::Bool(*b),
        AttrValue::Int(i) => Raw::Int(*i),
        AttrValue::String(x) => s(x),
        AttrValue::Label(l) => Raw::Label(l.clone()),
        AttrValue::StringList(l) => Raw::List(l.iter().map(|x| s(x)).collect()),
        AttrValue::IntList(l) => Raw::List(l.iter().map(|i| Raw::Int(*i)).collect()),
        AttrValue::LabelList(l) => Raw::List(l.iter().map(|x| Raw::Label(x.clone())).collect()),
        AttrValue::StringDict(d) => Raw::Dict(d.iter().map(|(k, v)| (s(k), s(v))).collect()),
        AttrValue::StringListDict(d) => Raw::Dict(d.iter().map(|(k, v)| (s(k), Raw::List(v.iter().map(|x| s(x)).collect()))).collect()),
        AttrValue::LabelKeyedStringDict(d) => Raw::Dict(d.iter().map(|(k, v)| (Raw::Label(k.clone()), s(v))).collect()),
        AttrValue::StringKeyedLabelDict(d) => Raw::Dict(d.iter().map(|(k, v)| (s(k), Raw::Label(v.clone()))).collect()),
        AttrValue::Select(_) => Raw::None,
        AttrValue::Raw(r) => r.clone(),
    };
    raw_to_value(heap, &raw)
}

/// The files of a dependency's DefaultInfo, as `File` values.
fn dep_files<'v>(heap: Heap<'v>, dep: &ConfiguredTarget) -> Vec<Value<'v>> {
    let p = &dep.providers;
    p.files
        .iter()
        .map(|a| file_value(heap, a, Some(&dep.label), p.oci_layout.as_ref() == Some(a) || p.directories.contains(&a.exec_path)))
        .collect()
}

/// Runs the implementation of `rule` for the target `ctx` analyses, with its attributes and
/// dependencies already resolved (`inputs`).
pub(super) fn run_implementation(
    ctx: &mut RuleContext,
    rule: &FrozenStarlarkRule,
    owned: &OwnedFrozenValue,
    inputs: &[AttrInput],
) -> Result<Providers, AnalysisError> {
    let label = ctx.label().clone();
    let bin_dir = ctx.analysis.bin_dir();
    let config = ctx.config().clone();
    let mut make_vars = BTreeMap::from([
        ("COMPILATION_MODE".to_owned(), config.compilation_mode.clone()),
        ("TARGET_CPU".to_owned(), crate::analysis::bazel_cpu(&config.goarch).to_owned()),
        ("BINDIR".to_owned(), bin_dir.clone()),
        ("GENDIR".to_owned(), bin_dir.clone()),
    ]);
    make_vars.extend(config.defines.iter().cloned());
    let mut locations = Vec::new();
    for input in inputs {
        for dep in &input.deps {
            locations.push((dep.label.clone(), dep.providers.files.clone()));
        }
    }
    let state = RuleState {
        label: label.clone(),
        bin_dir: bin_dir.clone(),
        make_vars,
        locations,
        actions: RefCell::default(),
        declared: RefCell::default(),
        directories: RefCell::default(),
        produced: RefCell::default(),
        param_files: Cell::new(0),
        workspace: ctx.analysis.loader.workspace().clone(),
        collected_runfiles: collected_runfiles(inputs),
    };
    // Predeclared outputs: `attr.output(_list)` values and `outputs` templates.
    let mut outputs: Vec<(String, Vec<Artifact>, bool)> = Vec::new();
    for input in inputs.iter().filter(|i| matches!(i.ty, AttrType::Output | AttrType::OutputList)) {
        let mut files = Vec::new();
        for l in input.value.labels() {
            files.push(state.declare(&l.name, None).map_err(|e| AnalysisError::new(e.to_string()))?);
        }
        outputs.push((input.name.clone(), files, input.ty == AttrType::OutputList));
    }
    for (key, template) in &rule.output_templates {
        let name = template.replace("%{name}", &label.name);
        outputs.push((key.clone(), vec![state.declare(&name, None).map_err(|e| AnalysisError::new(e.to_string()))?], false));
    }
    let predeclared: Vec<Artifact> = outputs.iter().flat_map(|(_, f, _)| f.iter().cloned()).collect();
    let executable_out =
        if rule.executable { Some(state.declare(&label.name, None).map_err(|e| AnalysisError::new(e.to_string()))?) } else { None };
    let build_file_path = {
        let pkg = ctx.analysis.loader.package(&label.package_id())?;
        let _ = pkg;
        let dir = crate::rules::package_path(&label.package_id());
        let ws = ctx.analysis.loader.workspace();
        let name = ws
            .package_dir(&label.package_id())
            .and_then(|d| crate::workspace::BUILD_FILE_NAMES.iter().find(|n| d.join(n).is_file()).map(|n| (*n).to_owned()))
            .unwrap_or_else(|| "BUILD".to_owned());
        if dir.is_empty() { name } else { format!("{dir}/{name}") }
    };

    let setting_text = match &rule.build_setting {
        Some(_) => Some(ctx.analysis.build_setting_value(&label)?),
        None => None,
    };
    let result = Module::with_temp_heap(|module| -> Result<(OwnedFrozenValue, Option<Artifact>, super::Returned), AnalysisError> {
        let heap = module.heap();
        for dep in inputs.iter().flat_map(|i| i.deps.iter()) {
            if let Some(p) = &dep.providers.starlark {
                module.frozen_heap().add_reference(p.owner());
            }
        }
        let rule_value = value_on(owned, &module);
        let implementation = StarlarkRule::from_value(rule_value)
            .map(|r| r.implementation.to_value())
            .ok_or_else(|| AnalysisError::new("internal: not a rule"))?;

        // ctx.attr, ctx.file, ctx.files, ctx.executable, ctx.outputs
        let mut attr: Vec<(String, Value)> = vec![("name".to_owned(), heap.alloc(label.name.as_str()))];
        let mut file = Vec::new();
        let mut files = Vec::new();
        let mut executable = Vec::new();
        let target = |d: &Arc<ConfiguredTarget>| heap.alloc(TargetValue { target: d.clone() });
        for input in inputs {
            let value = match input.ty {
                AttrType::Output | AttrType::OutputList => continue,
                AttrType::Label if input.transitioned => heap.alloc(AllocList(input.deps.iter().map(target))),
                AttrType::Label => input.deps.first().map(target).unwrap_or_else(Value::new_none),
                AttrType::LabelList => heap.alloc(AllocList(input.deps.iter().map(target))),
                AttrType::LabelKeyedStringDict => {
                    let AttrValue::LabelKeyedStringDict(d) = &input.value else { continue };
                    let entries = d.iter().zip(&input.deps).map(|((_, v), dep)| (target(dep), heap.alloc(v.as_str())));
                    heap.alloc(AllocDict(entries))
                }
                AttrType::StringKeyedLabelDict => {
                    let AttrValue::StringKeyedLabelDict(d) = &input.value else { continue };
                    let entries = d.iter().zip(&input.deps).map(|((k, _), dep)| (heap.alloc(k.as_str()), target(dep)));
                    heap.alloc(AllocDict(entries))
                }
                _ => plain_value(heap, &input.value),
            };
            attr.push((input.name.clone(), value));
            if input.ty.is_dep() {
                let all: Vec<Value> = input.deps.iter().flat_map(|d| dep_files(heap, d)).collect();
                if input.single_file {
                    let one = match all.as_slice() {
                        [] => Value::new_none(),
                        [one] => *one,
                        _ => {
                            return Err(AnalysisError::new(format!(
                                "attribute '{}': expected a single file, got {} files",
                                input.name,
                                all.len()
                            )));
                        }
                    };
                    file.push((input.name.clone(), one));
                }
                if input.executable {
                    // A source file (or any single-file target) is its own executable.
                    let exe = input
                        .deps
                        .first()
                        .and_then(|d| {
                            let single = match d.providers.files.as_slice() {
                                [one] => Some(one),
                                _ => None,
                            };
                            d.providers.executable.as_ref().or(single).map(|e| file_value(heap, e, Some(&d.label), false))
                        })
                        .unwrap_or_else(Value::new_none);
                    executable.push((input.name.clone(), exe));
                }
                files.push((input.name.clone(), heap.alloc(AllocList(all))));
            }
        }
        let mut outs: Vec<(String, Value)> = outputs
            .iter()
            .map(|(name, arts, is_list)| {
                let values: Vec<Value> = arts.iter().map(|a| state.file(heap, a)).collect();
                let v = if *is_list { heap.alloc(AllocList(values)) } else { values.first().copied().unwrap_or_else(Value::new_none) };
                (name.clone(), v)
            })
            .collect();
        if let Some(e) = &executable_out {
            outs.push(("executable".to_owned(), state.file(heap, e)));
        }
        let var = heap.alloc(AllocDict(state.make_vars.iter().map(|(k, v)| (heap.alloc(k.as_str()), heap.alloc(v.as_str())))));
        let root = heap.alloc(RootValue { path: bin_dir.clone() });
        let status_file = |name: &str| {
            let path = state.workspace.root.join("ocib-out").join(name);
            file_value(heap, &Artifact::source(format!("ocib-out/{name}"), path), None, false)
        };
        let configuration = heap.alloc(AllocStruct([
            ("host_path_separator", heap.alloc(":")),
            ("default_shell_env", heap.alloc(AllocDict(default_shell_env().into_iter().map(|(k, v)| (heap.alloc(k), heap.alloc(v)))))),
            ("coverage_enabled", Value::new_bool(false)),
        ]));
        let build_setting_value = match (&rule.build_setting, &setting_text) {
            (Some(ty), Some(text)) => setting_value(heap, ty, text),
            _ => Value::new_none(),
        };
        let ctx_value = heap.alloc(AllocStruct([
            ("build_setting_value", build_setting_value),
            ("label", heap.alloc(LabelValue(label.clone()))),
            ("attr", heap.alloc(AllocStruct(attr))),
            ("file", heap.alloc(AllocStruct(file))),
            ("files", heap.alloc(AllocStruct(files))),
            ("executable", heap.alloc(AllocStruct(executable))),
            ("outputs", heap.alloc(AllocStruct(outs))),
            ("actions", builtin_actions(heap)),
            ("bin_dir", root),
            ("genfiles_dir", root),
            ("workspace_name", heap.alloc(crate::rules::test::runfiles_workspace(&state.workspace.name))),
            ("build_file_path", heap.alloc(build_file_path.as_str())),
            ("var", var),
            ("configuration", configuration),
            ("fragments", heap.alloc(AllocStruct::<[(&str, Value); 0]>([]))),
            ("toolchains", toolchains(heap, &config)),
            ("features", heap.alloc(AllocList::<[Value; 0]>([]))),
            ("disabled_features", heap.alloc(AllocList::<[Value; 0]>([]))),
            ("info_file", status_file("stable-status.txt")),
            ("version_file", status_file("volatile-status.txt")),
            ("runfiles", builtin("runfiles")),
            ("expand_location", builtin("expand_location")),
            ("expand_make_variables", builtin("expand_make_variables")),
            ("resolve_tools", builtin("resolve_tools")),
        ]));

        let returned = {
            let mut eval = Evaluator::new(&module);
            eval.extra = Some(&state);
            eval.set_print_handler(&super::PrintToStderr);
            eval.eval_function(implementation, &[ctx_value], &[])
        }
        .map_err(|e| AnalysisError::new(format!("in {} rule implementation:\n{e}", rule.kind())))?;
        let (items, returned) = read_returned(returned)?;
        let frozen = freeze_providers(module, items)?;
        // The executable defaults to `ctx.outputs.executable` when an action made it.
        let default_exe = executable_out.filter(|e| state.produced.borrow().contains(&e.exec_path));
        Ok((frozen, default_exe, returned))
    });
    let (frozen, default_exe, returned) = result?;
    let declared: Vec<Artifact> = state.declared.borrow().clone();
    let executable = returned.executable.clone().or(default_exe.clone());
    for mut action in state.actions.take() {
        if let Some(e) = &executable
            && action.outputs.contains(e)
        {
            action.executable_outputs.push(e.exec_path.clone());
            if let ActionKind::Write { executable, .. } = &mut action.kind {
                *executable = true;
            }
        }
        ctx.register(action)?;
    }
    let directories = state.directories.borrow().clone();
    Ok(providers_of(ctx, returned, &predeclared, default_exe, inputs, declared, directories, frozen, rule.test))
}

/// `ctx.toolchains`: the toolchain types ocib knows, by label. rules_go's Go toolchain shows
/// the target platform (`default_goos`/`default_goarch`, `sdk.goos`/`sdk.goarch`); the SDK's
/// files are not there, as ocib finds Go only when a Go action runs.
fn toolchains<'v>(heap: Heap<'v>, config: &crate::analysis::Config) -> Value<'v> {
    let go = || {
        let sdk = heap.alloc(AllocStruct([("goos", heap.alloc(config.goos.as_str())), ("goarch", heap.alloc(config.goarch.as_str()))]));
        heap.alloc(AllocStruct([
            ("default_goos", heap.alloc(config.goos.as_str())),
            ("default_goarch", heap.alloc(config.goarch.as_str())),
            ("sdk", sdk),
        ]))
    };
    let types = ["@io_bazel_rules_go//go:toolchain", "@rules_go//go:toolchain"];
    heap.alloc(AllocDict(types.map(|t| (heap.alloc(t), go()))))
}

/// The files `collect_data`/`collect_default` add (see [`RuleState::collected_runfiles`]).
fn collected_runfiles(inputs: &[AttrInput]) -> Vec<Artifact> {
    let mut out: Vec<Artifact> = Vec::new();
    for input in inputs.iter().filter(|i| matches!(i.name.as_str(), "srcs" | "deps" | "data")) {
        for dep in &input.deps {
            let file_target = matches!(dep.kind.as_str(), "source file" | "generated file");
            let files: &[Artifact] = match (file_target, input.name == "data") {
                (true, true) => &dep.providers.files,
                (true, false) => &[],
                (false, _) => &dep.providers.runfiles,
            };
            for f in files {
                if !out.contains(f) {
                    out.push(f.clone());
                }
            }
        }
    }
    out
}

/// A build setting's value (text, as configurations keep it) as its type's Starlark value.
fn setting_value<'v>(heap: Heap<'v>, ty: &str, text: &str) -> Value<'v> {
    match ty {
        "bool" => Value::new_bool(matches!(text, "True" | "true" | "1")),
        "int" => text.parse::<i64>().map(|i| heap.alloc(i)).unwrap_or_else(|_| heap.alloc(text)),
        "string_list" => heap.alloc(AllocList(text.split(',').filter(|s| !s.is_empty()).map(|s| heap.alloc(s)))),
        _ => heap.alloc(text),
    }
}

/// The inputs of an action: Files from lists and depsets.
fn files_arg(v: NoneOr<Value>) -> starlark::Result<Vec<Artifact>> {
    match v.into_option() {
        Some(v) => artifacts_of(v),
        None => Ok(Vec::new()),
    }
}

/// A dict of strings (`env`, `substitutions`).
fn string_dict(v: NoneOr<Value>, what: &str) -> starlark::Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    if let Some(v) = v.into_option() {
        let dict = DictRef::from_value(v).ok_or_else(|| err(format!("{what}: expected a dict, got '{}'", v.get_type())))?;
        for (k, val) in dict.iter() {
            let (Some(k), Some(val)) = (k.unpack_str(), val.unpack_str()) else {
                return Err(err(format!("{what}: expected a dict of strings")));
            };
            out.insert(k.to_owned(), val.to_owned());
        }
    }
    Ok(out)
}

/// Flattens `arguments` (strings and `Args`) into argv, writing param files where asked.
fn command_line(
    st: &RuleState,
    arguments: NoneOr<Value>,
    first_output: &Artifact,
    inputs: &mut Vec<Artifact>,
) -> starlark::Result<Vec<String>> {
    let mut argv = Vec::new();
    let Some(arguments) = arguments.into_option() else { return Ok(argv) };
    for a in iterate_elements(arguments)? {
        if let Some(args) = a.downcast_ref::<ArgsValue>() {
            let (plain, param_file) = args.command_line();
            argv.extend(plain);
            if let Some((flag, content)) = param_file {
                // Bazel names the file after the action's first output.
                let n = st.param_files.get();
                st.param_files.set(n + 1);
                let params = Artifact { exec_path: format!("{}-{n}.params", first_output.exec_path), kind: ArtifactKind::Derived };
                st.declared.borrow_mut().push(params.clone());
                st.add(
                    Action::new("ParamFile", &st.label, ActionKind::Write { content: content.into_bytes(), executable: false })
                        .output(params.clone()),
                )?;
                argv.push(flag.replacen("%s", &params.exec_path, 1));
                inputs.push(params);
            }
        } else if let Some(s) = a.unpack_str() {
            argv.push(s.to_owned());
        } else {
            argv.push(super::values::arg_string(a));
        }
    }
    Ok(argv)
}

/// Registers a spawned action: `argv` run in an exec root holding `inputs`.
#[allow(clippy::too_many_arguments)]
fn spawn(
    st: &RuleState,
    default_mnemonic: &'static str,
    argv: Vec<String>,
    outputs: Vec<Artifact>,
    mut inputs: Vec<Artifact>,
    env: BTreeMap<String, String>,
    use_default_shell_env: bool,
    requirements: &BTreeMap<String, String>,
    mnemonic: NoneOr<&str>,
    progress_message: NoneOr<&str>,
) -> starlark::Result<()> {
    if outputs.is_empty() {
        return Err(err("an action must have at least one output"));
    }
    let env = if use_default_shell_env {
        // `env` on top of the default shell environment (Bazel ≥ 7; Bazel 4 ignored `env`
        // then, which silently dropped what the rule asked for).
        let mut full = default_shell_env();
        full.extend(env);
        full
    } else {
        env
    };
    inputs.sort();
    inputs.dedup();
    let mut action = Action::new(default_mnemonic, &st.label, ActionKind::Spawn { argv, env }).inputs(inputs);
    // `execution_requirements`: "no-cache" runs the action every build (never served from
    // the cache); "no-sandbox" and "requires-network" ask for nothing ocib's exec roots
    // (symlinked inputs, no network isolation) do not already give.
    if requirements.contains_key("no-cache") {
        action.skip_cache_lookup = true;
    }
    // "no-remote", "no-remote-exec", "local"... say where it may run, as the target's tags do.
    action
        .requirements
        .extend(requirements.keys().filter(|k| crate::exec::action::EXECUTION_REQUIREMENT_TAGS.contains(&k.as_str())).cloned());
    if let Some(m) = mnemonic.into_option() {
        action.mnemonic = m.to_owned().into();
    }
    action.progress = match progress_message.into_option() {
        Some(m) => m.replace("%{label}", &st.label.to_string()).replace("%{output}", &outputs[0].exec_path),
        None => format!("{} {}", action.mnemonic, st.label),
    };
    let directories = st.directories.borrow();
    for o in outputs {
        action = if directories.contains(&o.exec_path) { action.tree_output(o) } else { action.output(o) };
    }
    drop(directories);
    st.add(action)
}

/// The executable of `run`: a File, a FilesToRunProvider, or a path string.
fn executable_arg(v: Value) -> starlark::Result<(String, Option<Artifact>)> {
    if let Some(s) = v.unpack_str() {
        return Ok((s.to_owned(), None));
    }
    let artifact = match v.downcast_ref::<FilesToRunValue>() {
        Some(f) => f.executable.clone().ok_or_else(|| err("run(executable = ...): the FilesToRunProvider has no executable"))?,
        None => artifact_of(v)?,
    };
    // An exec root path: the process starts in the exec root, and a relative program path
    // would be resolved against ocib's own directory.
    Ok((format!("$EXECROOT/{}", artifact.exec_path), Some(artifact)))
}

/// `tools`: Files, depsets of Files, or FilesToRunProviders.
fn tools_arg(v: NoneOr<Value>) -> starlark::Result<Vec<Artifact>> {
    let mut out = Vec::new();
    if let Some(v) = v.into_option() {
        for t in iterate_elements(v)? {
            if let Some(f) = t.downcast_ref::<FilesToRunValue>() {
                out.extend(f.executable.clone());
            } else if crate::load::providers::Depset::from_value(t).is_some() {
                out.extend(artifacts_of(t)?);
            } else {
                out.push(artifact_of(t)?);
            }
        }
    }
    Ok(out)
}

#[starlark_module]
fn action_functions(builder: &mut GlobalsBuilder) {
    /// `ctx.actions.declare_file(filename, sibling = None)`.
    fn declare_file<'v>(
        #[starlark(require = pos)] filename: &str,
        #[starlark(require = named, default = NoneOr::None)] sibling: NoneOr<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        let st = state(eval)?;
        let a = st.declare(filename, sibling.into_option())?;
        Ok(st.file(eval.heap(), &a))
    }

    /// `ctx.actions.declare_directory(filename, sibling = None)`: a tree artifact.
    fn declare_directory<'v>(
        #[starlark(require = pos)] filename: &str,
        #[starlark(require = named, default = NoneOr::None)] sibling: NoneOr<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        let st = state(eval)?;
        let a = st.declare(filename, sibling.into_option())?;
        st.directories.borrow_mut().insert(a.exec_path.clone());
        Ok(st.file(eval.heap(), &a))
    }

    /// `ctx.actions.declare_symlink(filename, sibling = None)`.
    fn declare_symlink<'v>(
        #[starlark(require = pos)] filename: &str,
        #[starlark(require = named, default = NoneOr::None)] sibling: NoneOr<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        let st = state(eval)?;
        let a = st.declare(filename, sibling.into_option())?;
        Ok(st.file(eval.heap(), &a))
    }

    /// `ctx.actions.args()`.
    fn args() -> starlark::Result<ArgsValue> {
        Ok(ArgsValue::default())
    }

    /// `ctx.actions.do_nothing(mnemonic, inputs = [])`.
    fn do_nothing<'v>(
        #[starlark(require = named)] mnemonic: &str,
        #[starlark(require = named, default = NoneOr::None)] inputs: NoneOr<Value<'v>>,
    ) -> starlark::Result<starlark::values::none::NoneType> {
        let _ = (mnemonic, inputs);
        Ok(starlark::values::none::NoneType)
    }

    /// `ctx.actions.write(output, content, is_executable = False)`.
    fn write<'v>(
        #[starlark(require = pos)] output: Value<'v>,
        #[starlark(require = pos)] content: Value<'v>,
        #[starlark(require = named, default = false)] is_executable: bool,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<starlark::values::none::NoneType> {
        let st = state(eval)?;
        let out = artifact_of(output)?;
        let bytes = if let Some(s) = content.unpack_str() {
            s.as_bytes().to_vec()
        } else if let Some(args) = content.downcast_ref::<ArgsValue>() {
            let (plain, param) = args.command_line();
            match param {
                Some((_, text)) => text.into_bytes(),
                None => plain.iter().map(|a| format!("{a}\n")).collect::<String>().into_bytes(),
            }
        } else {
            return Err(err(format!("write(content = ...): expected a string or Args, got '{}'", content.get_type())));
        };
        let mut action = Action::new("FileWrite", &st.label, ActionKind::Write { content: bytes, executable: is_executable });
        action = if is_executable { action.executable_output(out) } else { action.output(out) };
        st.add(action)?;
        Ok(starlark::values::none::NoneType)
    }

    /// `ctx.actions.expand_template(template, output, substitutions = {}, is_executable = False,
    /// computed_substitutions = None)`.
    fn expand_template<'v>(
        #[starlark(require = named)] template: Value<'v>,
        #[starlark(require = named)] output: Value<'v>,
        #[starlark(require = named, default = NoneOr::None)] substitutions: NoneOr<Value<'v>>,
        #[starlark(require = named, default = false)] is_executable: bool,
        #[starlark(require = named, default = NoneOr::None)] computed_substitutions: NoneOr<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<starlark::values::none::NoneType> {
        let st = state(eval)?;
        let template = artifact_of(template)?;
        let out = artifact_of(output)?;
        let mut subs: Vec<(String, String)> = Vec::new();
        if let Some(d) = substitutions.into_option() {
            let dict = DictRef::from_value(d).ok_or_else(|| err("substitutions must be a dict"))?;
            for (k, v) in dict.iter() {
                subs.push((k.to_str(), v.to_str()));
            }
        }
        if let Some(c) = computed_substitutions.into_option() {
            let dict = DictRef::from_value(c).ok_or_else(|| err("computed_substitutions must be a dict"))?;
            for (k, v) in dict.iter() {
                let text = if let Some(a) = v.downcast_ref::<ArgsValue>() { a.command_line().0.join("\n") } else { v.to_str() };
                subs.push((k.to_str(), text));
            }
        }
        let code = ExpandTemplate {
            template: template.exec_path.clone(),
            out: out.exec_path.clone(),
            substitutions: subs,
            stamp_substitutions: vec![],
        };
        let mut action = Action::new("TemplateExpand", &st.label, ActionKind::Run(Arc::new(code))).inputs([template]);
        action = if is_executable { action.executable_output(out) } else { action.output(out) };
        st.add(action)?;
        Ok(starlark::values::none::NoneType)
    }

    /// `ctx.actions.symlink(output, target_file, is_executable = False)`: the output has the
    /// target's bytes (a copy, so outputs stay plain files in the cache).
    fn symlink<'v>(
        #[starlark(require = named)] output: Value<'v>,
        #[starlark(require = named, default = NoneOr::None)] target_file: NoneOr<Value<'v>>,
        #[starlark(require = named, default = NoneOr::None)] target_path: NoneOr<&str>,
        #[starlark(require = named, default = false)] is_executable: bool,
        #[starlark(require = named, default = NoneOr::None)] progress_message: NoneOr<&str>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<starlark::values::none::NoneType> {
        let _ = progress_message;
        let st = state(eval)?;
        if target_path.into_option().is_some() {
            return Err(err("symlink(target_path = ...) (unresolved symlinks) is not supported by ocib"));
        }
        let target = artifact_of(target_file.into_option().ok_or_else(|| err("symlink() needs target_file"))?)?;
        let out = artifact_of(output)?;
        let code = CopyFile { src: target.exec_path.clone(), out: out.exec_path.clone() };
        let mut action = Action::new("Symlink", &st.label, ActionKind::Run(Arc::new(code))).inputs([target]);
        action = if is_executable { action.executable_output(out) } else { action.output(out) };
        st.add(action)?;
        Ok(starlark::values::none::NoneType)
    }

    /// `ctx.actions.run(outputs, inputs, executable, tools, arguments, mnemonic,
    /// progress_message, use_default_shell_env, env, execution_requirements, ...)`.
    fn run<'v>(
        #[starlark(require = named)] outputs: Value<'v>,
        #[starlark(require = named, default = NoneOr::None)] inputs: NoneOr<Value<'v>>,
        #[starlark(require = named)] executable: Value<'v>,
        #[starlark(require = named, default = NoneOr::None)] tools: NoneOr<Value<'v>>,
        #[starlark(require = named, default = NoneOr::None)] arguments: NoneOr<Value<'v>>,
        #[starlark(require = named, default = NoneOr::None)] mnemonic: NoneOr<&str>,
        #[starlark(require = named, default = NoneOr::None)] progress_message: NoneOr<&str>,
        #[starlark(require = named, default = false)] use_default_shell_env: bool,
        #[starlark(require = named, default = NoneOr::None)] env: NoneOr<Value<'v>>,
        #[starlark(require = named, default = NoneOr::None)] execution_requirements: NoneOr<Value<'v>>,
        #[starlark(kwargs)] rest: SmallMap<String, Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<starlark::values::none::NoneType> {
        let _ = rest;
        let st = state(eval)?;
        let requirements = string_dict(execution_requirements, "execution_requirements")?;
        let outs = artifacts_of(outputs)?;
        let first = outs.first().cloned().ok_or_else(|| err("run(): 'outputs' must not be empty"))?;
        let mut ins = files_arg(inputs)?;
        ins.extend(tools_arg(tools)?);
        let (program, exe) = executable_arg(executable)?;
        ins.extend(exe);
        let mut argv = vec![program];
        argv.extend(command_line(st, arguments, &first, &mut ins)?);
        spawn(st, "Action", argv, outs, ins, string_dict(env, "env")?, use_default_shell_env, &requirements, mnemonic, progress_message)?;
        Ok(starlark::values::none::NoneType)
    }

    /// `ctx.actions.run_shell(outputs, inputs, command, tools, arguments, ...)`: `bash -c
    /// command '' arguments...`, as Bazel runs it.
    fn run_shell<'v>(
        #[starlark(require = named)] outputs: Value<'v>,
        #[starlark(require = named, default = NoneOr::None)] inputs: NoneOr<Value<'v>>,
        #[starlark(require = named)] command: Value<'v>,
        #[starlark(require = named, default = NoneOr::None)] tools: NoneOr<Value<'v>>,
        #[starlark(require = named, default = NoneOr::None)] arguments: NoneOr<Value<'v>>,
        #[starlark(require = named, default = NoneOr::None)] mnemonic: NoneOr<&str>,
        #[starlark(require = named, default = NoneOr::None)] progress_message: NoneOr<&str>,
        #[starlark(require = named, default = false)] use_default_shell_env: bool,
        #[starlark(require = named, default = NoneOr::None)] env: NoneOr<Value<'v>>,
        #[starlark(require = named, default = NoneOr::None)] execution_requirements: NoneOr<Value<'v>>,
        #[starlark(kwargs)] rest: SmallMap<String, Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<starlark::values::none::NoneType> {
        let _ = rest;
        let st = state(eval)?;
        let requirements = string_dict(execution_requirements, "execution_requirements")?;
        let outs = artifacts_of(outputs)?;
        let first = outs.first().cloned().ok_or_else(|| err("run_shell(): 'outputs' must not be empty"))?;
        let mut ins = files_arg(inputs)?;
        ins.extend(tools_arg(tools)?);
        let command = match command.unpack_str() {
            Some(c) => c.to_owned(),
            None => iterate_elements(command)?.iter().map(|v| v.to_str()).collect::<Vec<_>>().join(" "),
        };
        let mut argv = vec!["/bin/bash".to_owned(), "-c".to_owned(), command];
        let rest_args = command_line(st, arguments, &first, &mut ins)?;
        if !rest_args.is_empty() {
            argv.push(String::new());
            argv.extend(rest_args);
        }
        spawn(st, "Action", argv, outs, ins, string_dict(env, "env")?, use_default_shell_env, &requirements, mnemonic, progress_message)?;
        Ok(starlark::values::none::NoneType)
    }
}

#[starlark_module]
fn ctx_functions(builder: &mut GlobalsBuilder) {
    /// `ctx.runfiles(files = [], transitive_files = None, collect_data = False,
    /// collect_default = False, symlinks = {}, root_symlinks = {})`.
    fn runfiles<'v>(
        #[starlark(require = named, default = NoneOr::None)] files: NoneOr<Value<'v>>,
        #[starlark(require = named, default = NoneOr::None)] transitive_files: NoneOr<Value<'v>>,
        #[starlark(require = named, default = false)] collect_data: bool,
        #[starlark(require = named, default = false)] collect_default: bool,
        #[starlark(require = named, default = NoneOr::None)] symlinks: NoneOr<Value<'v>>,
        #[starlark(require = named, default = NoneOr::None)] root_symlinks: NoneOr<Value<'v>>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<RunfilesValue> {
        let st = state(eval)?;
        let collected = if collect_data || collect_default { st.collected_runfiles.clone() } else { Vec::new() };
        let mut r = RunfilesValue::default();
        for f in files_arg(files)?.into_iter().chain(files_arg(transitive_files)?).chain(collected) {
            if !r.files.contains(&f) {
                r.files.push(f);
            }
        }
        for (arg, into) in [(symlinks, &mut r.symlinks), (root_symlinks, &mut r.root_symlinks)] {
            if let Some(d) = arg.into_option() {
                let dict = DictRef::from_value(d).ok_or_else(|| err("symlinks must be a dict of path → File"))?;
                for (k, v) in dict.iter() {
                    into.insert(k.to_str(), artifact_of(v)?);
                }
            }
        }
        Ok(r)
    }

    /// `ctx.expand_location(input, targets = [], short_paths = False)`: `$(location //x)`,
    /// `$(locations)`, `$(execpath(s))`, `$(rootpath(s))` of the rule's dependencies.
    fn expand_location<'v>(
        #[starlark(require = pos)] input: &str,
        #[starlark(default = NoneOr::None)] targets: NoneOr<Value<'v>>,
        #[starlark(require = named, default = false)] short_paths: bool,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<String> {
        let st = state(eval)?;
        let mut known = st.locations.clone();
        if let Some(t) = targets.into_option() {
            for v in iterate_elements(t)? {
                if let Some(tv) = v.downcast_ref::<TargetValue>() {
                    known.push((tv.target.label.clone(), tv.target.providers.files.clone()));
                }
            }
        }
        expand_locations(input, &known, &st.label.package_id(), &st.workspace, short_paths).map_err(err)
    }

    /// `ctx.expand_make_variables(attribute_name, command, additional_substitutions)`.
    fn expand_make_variables<'v>(
        #[starlark(require = pos)] attribute_name: &str,
        #[starlark(require = pos)] command: &str,
        #[starlark(require = pos)] additional_substitutions: Value<'v>,
        eval: &mut Evaluator<'v, '_, '_>,
    ) -> starlark::Result<String> {
        let st = state(eval)?;
        let mut vars = st.make_vars.clone();
        vars.extend(string_dict(NoneOr::Other(additional_substitutions), "additional_substitutions")?);
        expand_make(command, &vars).map_err(|e| err(format!("attribute '{attribute_name}': {e}")))
    }

    /// `ctx.resolve_tools(tools = [])`: the tools' files, and no input manifests.
    fn resolve_tools<'v>(
        #[starlark(require = named, default = NoneOr::None)] tools: NoneOr<Value<'v>>,
        heap: Heap<'v>,
    ) -> starlark::Result<Value<'v>> {
        let mut files = Vec::new();
        if let Some(t) = tools.into_option() {
            for v in iterate_elements(t)? {
                if let Some(tv) = v.downcast_ref::<TargetValue>() {
                    files.extend(
                        tv.target
                            .providers
                            .files
                            .iter()
                            .chain(tv.target.providers.runfiles.iter())
                            .map(|a| file_value(heap, a, Some(&tv.target.label), false)),
                    );
                }
            }
        }
        let depset = crate::load::providers::make_depset(Some(heap.alloc(AllocList(files))), "default", None, heap)?;
        Ok(heap.alloc((depset, heap.alloc(AllocList::<[Value; 0]>([])))))
    }
}

/// Expands `$(location ...)` and friends against `known` labels.
fn expand_locations(
    input: &str,
    known: &[(Label, Vec<Artifact>)],
    pkg: &PackageId,
    ws: &crate::workspace::Workspace,
    short_paths: bool,
) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = input;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after.find(')').ok_or_else(|| format!("unterminated $( in '{input}'"))?;
        let inner = &after[..end];
        let (func, arg) = inner.split_once(' ').unwrap_or((inner, ""));
        let path = |a: &Artifact, root: bool| if root || short_paths { a.short_path().to_owned() } else { a.exec_path.clone() };
        let value = match func {
            "location" | "locations" | "execpath" | "execpaths" | "rootpath" | "rootpaths" => {
                let label = Label::parse(arg.trim(), pkg, &|r| ws.map_repo(r)).map_err(|e| e.to_string())?;
                let files = known
                    .iter()
                    .find(|(l, _)| *l == label)
                    .map(|(_, f)| f.clone())
                    .ok_or_else(|| format!("label '{label}' in $({func}) is not a declared prerequisite of this rule"))?;
                let root = func.starts_with("rootpath");
                if func.ends_with('s') {
                    files.iter().map(|a| path(a, root)).collect::<Vec<_>>().join(" ")
                } else {
                    match files.as_slice() {
                        [one] => path(one, root),
                        _ => return Err(format!("$({func} {arg}) expects exactly one file, got {}; use $({func}s {arg})", files.len())),
                    }
                }
            }
            _ => {
                // Not a location function: kept as written, as Bazel does.
                out.push_str(&rest[start..start + 2 + end + 1]);
                rest = &after[end + 1..];
                continue;
            }
        };
        out.push_str(&value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Expands `$(VAR)` make variables; `$$` is a literal `$`.
fn expand_make(command: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    let mut chars = command.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        match chars.peek().copied() {
            Some((_, '$')) => {
                chars.next();
                out.push('$');
            }
            Some((_, '(')) => {
                let rest = &command[i + 2..];
                let end = rest.find(')').ok_or_else(|| format!("unterminated variable reference in '{command}'"))?;
                let name = &rest[..end];
                let value = vars.get(name).ok_or_else(|| format!("$({name}) not defined"))?;
                out.push_str(value);
                for _ in 0..name.chars().count() + 2 {
                    chars.next();
                }
            }
            _ => return Err(format!("'$' not followed by '$' or '(' in '{command}'")),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn make_variables_expand_and_dollars_escape() {
        let vars = BTreeMap::from([("COMPILATION_MODE".to_owned(), "opt".to_owned())]);
        assert_eq!(expand_make("-c $(COMPILATION_MODE) $$HOME", &vars).unwrap(), "-c opt $HOME");
        assert!(expand_make("$(NOPE)", &vars).unwrap_err().contains("not defined"));
        assert!(expand_make("$X", &vars).is_err());
    }
}
