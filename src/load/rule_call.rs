//! Calling a rule: the value native rules and `rule()` results are, and how a call becomes a
//! [`Rule`] in the package with its attributes checked against the schema.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use allocative::Allocative;
use anyhow::{Result, anyhow, bail};
use starlark::any::ProvidesStaticType;
use starlark::eval::{Arguments, Evaluator};
use starlark::starlark_simple_value;
use starlark::values::{NoSerialize, StarlarkPagablePanic, StarlarkValue, Value, starlark_value};

use super::context::{BuildContext, RepoFileContext};
use super::values::to_raw;
use crate::graph::label;
use crate::graph::schema::RuleSchema;
use crate::graph::{AttrValue, Generator, LabelContext, Location, Raw, Rule, RuleDefinition};
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
}
starlark_simple_value!(RuleCallable);

impl RuleCallable {
    pub fn native(schema: Arc<RuleSchema>) -> RuleCallable {
        RuleCallable { schema, exported_name: OnceLock::new() }
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
            let raw = to_raw(value).map_err(|e| anyhow!("attribute '{}': {e}", name.as_str()))?;
            kwargs.push((name.as_str().to_owned(), raw));
        }
        if let Some(ctx) = RepoFileContext::from_eval(eval) {
            // In WORKSPACE, a rule of an unknown rule set is a repository rule.
            record_unknown_repository(ctx, self.kind(), &kwargs);
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
    if let Some(name) = name {
        ctx.repos.borrow_mut().push(Repo { name, source: RepoSource::Unknown { rule: kind.to_owned() } });
    }
}

/// Creates the target for a rule call in a BUILD file (directly or through macros).
pub(super) fn instantiate(callable: &RuleCallable, kwargs: Vec<(String, Raw)>, eval: &Evaluator) -> Result<()> {
    instantiate_kind(callable.kind(), &callable.schema, None, kwargs, eval)
}

/// Creates the target of a call of rule `kind` (with `definition` for Starlark rules).
pub(super) fn instantiate_kind(
    kind: &str,
    schema: &Arc<RuleSchema>,
    definition: Option<RuleDefinition>,
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
    // Errors name the call in the BUILD file, even when a macro made the call.
    let (location, generator) = call_site(ctx, eval, &name);
    let at = format!("{}:{}:{}", ctx.build_file_display, location.line, location.column);

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
            bail!("{at}: {target}: no such attribute '{attr}' in '{kind}' rule");
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
        let value = coerced.map_err(|e| anyhow!("{at}: {target}: attribute '{attr}' of '{kind}' rule: {e}"))?;
        attrs.insert(attr, value);
    }
    if schema.typed {
        for spec in &schema.attrs {
            if spec.mandatory && !attrs.contains_key(&spec.name) {
                bail!("{at}: {target}: missing value for mandatory attribute '{}' in '{kind}' rule", spec.name);
            }
        }
    }

    let rule = Rule { label: target, kind: kind.to_owned(), schema: schema.clone(), attrs, location, generator, definition };
    ctx.add_rule(rule)
}

/// Where in the BUILD file the rule came from, and which macro (if any) created it.
fn call_site(ctx: &BuildContext, eval: &Evaluator, rule_name: &str) -> (Location, Option<Generator>) {
    let stack = eval.call_stack();
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
