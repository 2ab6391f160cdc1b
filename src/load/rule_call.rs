//! Calling a rule: the value native rules and `rule()` results are, and how a call becomes a
//! [`Rule`] in the package with its attributes checked against the schema.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use allocative::Allocative;
use anyhow::{Result, anyhow, bail};
use starlark::any::ProvidesStaticType;
use starlark::eval::{Arguments, CallStack, Evaluator};
use starlark::starlark_simple_value;
use starlark::values::{NoSerialize, StarlarkPagablePanic, StarlarkValue, Value, ValueLike, starlark_value};

use super::context::{BuildContext, RepoFileContext};
use super::stub::StubValue;
use super::values::to_raw;
use crate::graph::label;
use crate::graph::schema::RuleSchema;
use crate::graph::{AttrType, AttrValue, Generator, LabelContext, Location, Raw, Rule, RuleDefinition, StackFrame};
use crate::workspace::{Repo, RepoSource};

/// A callable rule: a native rule, a Starlark `rule()`, or a stand-in for a symbol of an
/// unknown rule set.
#[derive(Debug, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
pub struct RuleCallable {
    #[allocative(skip)]
    pub schema: Arc<RuleSchema>,
    /// For `rule()` results the kind is the name of the variable they are assigned to.
    #[allocative(skip)]
    pub exported_name: OnceLock<String>,
    /// Where the kind was made; empty for native kinds.
    #[allocative(skip)]
    pub defined_at: DefinitionSite,
}
starlark_simple_value!(RuleCallable);

/// Where `rule()` made a kind: Bazel's "Rule KIND defined at" stack.
#[derive(Debug, Default)]
pub struct DefinitionSite {
    /// The stack at the `rule()` call (files as the evaluator names them, relative to the
    /// workspace for its own files).
    frames: Vec<StackFrame>,
    /// `frames` with absolute paths, or empty when a file is not on disk (the embedded
    /// prelude): worked out at the first target, one file check per kind, not per target.
    resolved: OnceLock<Vec<StackFrame>>,
}

impl DefinitionSite {
    /// The site of a `rule()` call being evaluated by `eval`.
    pub fn of_call(eval: &Evaluator) -> DefinitionSite {
        DefinitionSite { frames: paren_stack(eval.call_stack(), |file| PathBuf::from(file)), resolved: OnceLock::new() }
    }

    /// The stack `query --output=build` prints. Bazel names the .bzl file of a Starlark
    /// rule's definition; ocib's own rule sets (the embedded prelude) have no such file, so
    /// they print none.
    fn stack(&self, ctx: &BuildContext) -> Vec<StackFrame> {
        self.resolved
            .get_or_init(|| {
                let stack: Vec<StackFrame> = self
                    .frames
                    .iter()
                    .map(|f| StackFrame {
                        location: Location { file: absolute(ctx, &f.location.file), ..f.location.clone() },
                        function: f.function.clone(),
                    })
                    .collect();
                if stack.iter().all(|f| f.location.file.is_file()) { stack } else { Vec::new() }
            })
            .clone()
    }
}

impl RuleCallable {
    pub fn native(schema: Arc<RuleSchema>) -> RuleCallable {
        RuleCallable { schema, exported_name: OnceLock::new(), defined_at: DefinitionSite::default() }
    }

    pub fn kind(&self) -> &str {
        if self.schema.kind.is_empty() {
            self.exported_name.get().map(String::as_str).unwrap_or("<anonymous rule>")
        } else {
            &self.schema.kind
        }
    }
}

impl fmt::Display for RuleCallable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<rule {}>", self.kind())
    }
}

#[starlark_value(type = "rule")]
impl<'v> StarlarkValue<'v> for RuleCallable {
    fn invoke(&self, _me: Value<'v>, args: &Arguments<'v, '_>, eval: &mut Evaluator<'v, '_, '_>) -> starlark::Result<Value<'v>> {
        args.no_positional_args(eval.heap())?;
        let mut kwargs = Vec::new();
        for (name, value) in args.names_map()? {
            // A stub given for a label (`actual = interpreter` of an unknown repository) is a
            // label in the stub's repository, so the target exists and only building it fails.
            let label_typed = self.schema.attr(name.as_str()).is_some_and(|a| matches!(a.ty, AttrType::Label));
            let stub_label = if label_typed { value.downcast_ref::<StubValue>().and_then(StubValue::as_label) } else { None };
            let raw = match stub_label {
                Some(label) => Raw::String(label),
                None => to_raw(value).map_err(|e| anyhow!("attribute '{}': {e}", name.as_str()))?,
            };
            kwargs.push((name.as_str().to_owned(), raw));
        }
        if let Some(ctx) = RepoFileContext::from_eval(eval) {
            // In WORKSPACE, a rule of an unknown rule set is a repository rule.
            record_unknown_repository(ctx, self.kind(), &kwargs);
            return Ok(Value::new_none());
        }
        if super::module_ext::in_extension(eval) {
            // In a module extension, a rule of a rule set (`http_archive`) is a repository
            // rule ocib does not run: the names the module uses of it stay unknown.
            return Ok(Value::new_none());
        }
        instantiate(self, kwargs, eval)?;
        Ok(Value::new_none())
    }

    fn export_as(&self, variable_name: &str, _eval: &mut Evaluator<'v, '_, '_>) -> starlark::Result<()> {
        let _ = self.exported_name.set(variable_name.to_owned());
        Ok(())
    }
}

pub(super) fn record_unknown_repository(ctx: &RepoFileContext, kind: &str, kwargs: &[(String, Raw)]) {
    let name = kwargs.iter().find_map(|(k, v)| match (k.as_str(), v) {
        ("name", Raw::String(s)) => Some(s.clone()),
        _ => None,
    });
    let Some(name) = name else { return };
    // The release an archive names (`strip_prefix = "rules_oci-1.7.6"`, a release URL): the
    // version a rule set's face follows when ocib embeds it.
    let pinned = ["strip_prefix", "url", "urls", "tag"]
        .iter()
        .filter_map(|key| kwargs.iter().find(|(k, _)| k == key).map(|(_, v)| v))
        .flat_map(|v| match v {
            Raw::String(s) => vec![s.clone()],
            Raw::List(items) => items.iter().filter_map(|i| if let Raw::String(s) = i { Some(s.clone()) } else { None }).collect(),
            _ => vec![],
        })
        .find(|text| crate::workspace::parse_version(text).is_some());
    if let Some(version) = pinned {
        ctx.versions.borrow_mut().insert(name.clone(), version);
    }
    ctx.repos.borrow_mut().push(Repo { name, source: RepoSource::Unknown { rule: kind.to_owned() } });
}

/// Creates the target for a rule call in a BUILD file (directly or through macros).
pub(super) fn instantiate(callable: &RuleCallable, kwargs: Vec<(String, Raw)>, eval: &Evaluator) -> Result<()> {
    instantiate_kind(callable.kind(), &callable.schema, None, &callable.defined_at, kwargs, eval)
}

/// Creates the target of a call of rule `kind` (with `definition` for Starlark rules).
pub(super) fn instantiate_kind(
    kind: &str,
    schema: &Arc<RuleSchema>,
    definition: Option<RuleDefinition>,
    defined_at: &DefinitionSite,
    kwargs: Vec<(String, Raw)>,
    eval: &Evaluator,
) -> Result<()> {
    let ctx = BuildContext::from_eval(eval)?;

    let name = match kwargs.iter().find(|(k, _)| k == "name") {
        Some((_, Raw::String(n))) => n.clone(),
        Some((_, other)) => bail!("{kind} rule: attribute 'name' must be a string, got {other}"),
        None => bail!("{kind} rule: missing value for mandatory attribute 'name'"),
    };
    label::validate_target_name(&name, &name).map_err(|e| anyhow!("{kind} rule: invalid target name '{name}': {}", e.reason))?;
    let target = ctx.package.label(name.clone());
    // One copy of the evaluator's stack serves the location, the generator and the stack
    // `--output=build` prints (each copy allocates every frame's name).
    let stack = eval.call_stack();
    // Errors name the call in the BUILD file, even when a macro made the call.
    let (location, generator) = call_site(ctx, &stack, &name);
    // Only errors name it: formatted when one is raised, not for every rule.
    let at = || format!("{}:{}:{}", ctx.build_file_display, location.line, location.column);

    let map_repo = |r: &str| ctx.map_repo(r);
    let label_ctx = LabelContext { package: &ctx.package, map_repo: &map_repo };
    let mut attrs = BTreeMap::new();
    for (attr, raw) in kwargs {
        if attr == "name" {
            attrs.insert(attr, AttrValue::String(name.clone()));
            continue;
        }
        if !schema.typed {
            attrs.insert(attr, AttrValue::Raw(raw));
            continue;
        }
        let Some(spec) = schema.attr(&attr) else {
            bail!("{}: {target}: no such attribute '{attr}' in '{kind}' rule", at());
        };
        // Passing None is the same as not passing the attribute.
        if raw == Raw::None {
            continue;
        }
        let coerced = if attr == "visibility" {
            AttrValue::coerce_visibility(&raw, &label_ctx)
        } else {
            AttrValue::coerce(spec.ty, &raw, &label_ctx)
        };
        let value = coerced.map_err(|e| anyhow!("{}: {target}: attribute '{attr}' of '{kind}' rule: {e}", at()))?;
        attrs.insert(attr, value);
    }
    if schema.typed {
        for spec in &schema.attrs {
            if spec.mandatory && !attrs.contains_key(&spec.name) {
                bail!("{}: {target}: missing value for mandatory attribute '{}' in '{kind}' rule", at(), spec.name);
            }
        }
    }

    let call_stack = call_stack(ctx, stack, &location);
    let definition_stack = defined_at.stack(ctx);
    let rule = Rule {
        label: target,
        kind: kind.to_owned(),
        schema: schema.clone(),
        attrs,
        location,
        generator,
        call_stack,
        definition_stack,
        definition,
    };
    ctx.add_rule(rule)
}

/// The calls that led to the rule, outermost first, each at its `(` as Bazel reports call
/// locations: the BUILD file's call (`build_call`, found from the syntax tree), then each
/// macro's call inside the macro before it. The innermost is the rule function's own call.
fn call_stack(ctx: &BuildContext, stack: CallStack, build_call: &Location) -> Vec<StackFrame> {
    let mut frames = paren_stack(stack, |file| absolute(ctx, Path::new(file)));
    if let Some(first) = frames.first_mut() {
        first.location = build_call.clone();
    }
    frames
}

/// `file` made absolute (the evaluator names the workspace's own files relative to its root).
/// Files of ocib's embedded rule sets, named by label (`@rules_oci//oci/private:…`), have no
/// path: they keep their label.
fn absolute(ctx: &BuildContext, path: &Path) -> PathBuf {
    if path.is_relative() && !path.as_os_str().as_encoded_bytes().starts_with(b"@") { ctx.ws.root.join(path) } else { path.to_path_buf() }
}

/// The evaluator's call stack, outermost first: each call at its `(` (Bazel's call location)
/// and named by the function it is in (`<toplevel>` for the first), files named by `file`
/// from the evaluator's names.
fn paren_stack(stack: CallStack, file: impl Fn(&str) -> PathBuf) -> Vec<StackFrame> {
    let mut out = Vec::with_capacity(stack.frames.len());
    // The function a call is in is the callee of the frame before it.
    let mut function = "<toplevel>".to_owned();
    for frame in stack.frames {
        let Some(span) = &frame.location else { continue };
        // The first `(` of the call expression is its own: callees are names and dotted
        // names (`native.filegroup`, `_impl`), which have none.
        let begin = span.resolve_span().begin;
        let text = span.source_span();
        let (line, column) = match text.find('(') {
            Some(at) => {
                let before = &text[..at];
                match before.rfind('\n') {
                    Some(nl) => (begin.line + before.matches('\n').count(), before[nl + 1..].chars().count()),
                    None => (begin.line, begin.column + before.chars().count()),
                }
            }
            None => (begin.line, begin.column),
        };
        let location = Location { file: file(span.filename()), line: line as u32 + 1, column: column as u32 + 1 };
        out.push(StackFrame { location, function: std::mem::replace(&mut function, frame.name) });
    }
    out
}

/// Where in the BUILD file the rule came from, and which macro (if any) created it.
fn call_site(ctx: &BuildContext, stack: &CallStack, rule_name: &str) -> (Location, Option<Generator>) {
    // Each frame names a called function and where it was called from, outermost first: the
    // first is the call in the BUILD file. If that call was not the rule itself, it was a
    // macro: the generator.
    let frames: Vec<_> = stack.frames.iter().filter(|f| f.location.is_some()).collect();
    let build_frame = frames.first().and_then(|f| f.location.as_ref());
    let begin = build_frame.map(|s| s.resolve_span().begin);
    let site = begin.and_then(|b| ctx.call_sites.get(&(b.line as u32)));
    let location = match (site, begin) {
        (Some(site), _) => Location { file: ctx.build_file.clone(), line: site.paren_line, column: site.paren_column },
        (None, Some(b)) => Location { file: ctx.build_file.clone(), line: b.line as u32 + 1, column: b.column as u32 + 1 },
        (None, None) => Location { file: ctx.build_file.clone(), line: 1, column: 1 },
    };
    let generator = if frames.len() > 1 {
        Some(Generator {
            name: site.and_then(|s| s.name.clone()).unwrap_or_else(|| rule_name.to_owned()),
            function: frames[0].name.clone(),
            location: format!("{}:{}:{}", ctx.build_file_display, location.line, location.column),
        })
    } else {
        None
    };
    (location, generator)
}
