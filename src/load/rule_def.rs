//! What `rule()`, `attr.*` and `transition()` return in .bzl files. A Starlark rule keeps its
//! implementation function, every attribute descriptor (private `_` ones with their
//! defaults too), its `outputs` templates and its transition, so analysis can run it later
//! from the frozen .bzl module ([`StarlarkRuleHandle`]).

use std::fmt;
use std::sync::{Arc, OnceLock};

use allocative::Allocative;
use anyhow::anyhow;
use starlark::any::ProvidesStaticType;
use starlark::coerce::Coerce;
use starlark::eval::{Arguments, Evaluator};
use starlark::starlark_complex_value;
use starlark::values::{
    Freeze, FreezeResult, Freezer, FrozenValue, NoSerialize, OwnedFrozenValue, StarlarkPagablePanic, StarlarkValue, Trace, Value,
    ValueLike, starlark_value,
};

use super::context::{BuildContext, RepoFileContext};
use super::rule_call::DefinitionSite;
use super::values::to_raw;
use crate::graph::label::PackageId;
use crate::graph::schema::RuleSchema;
use crate::graph::{AttrType, Raw, RuleDefinition};

/// What `attr.string(...)`, `attr.label(...)`, ... return.
#[derive(Debug, Trace, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
#[repr(C)]
pub struct AttrDescriptorGen<V> {
    #[trace(static)]
    #[allocative(skip)]
    pub ty: AttrType,
    #[trace(static)]
    pub mandatory: bool,
    /// The default as plain data, when it is one (not a function or late-bound value).
    #[trace(static)]
    #[allocative(skip)]
    pub default: Option<Raw>,
    /// `cfg`: a `transition()` value, or a string (`"exec"`, `"target"`).
    #[allocative(skip)]
    pub cfg: Option<V>,
    /// `executable = True`: the dependency appears in `ctx.executable`.
    #[trace(static)]
    pub executable: bool,
    /// `allow_single_file`: the dependency appears in `ctx.file`.
    #[trace(static)]
    pub single_file: bool,
    /// `providers = [...]`: groups of providers; every dependency must have all the providers
    /// of at least one group (one group when the attribute lists providers directly).
    #[allocative(skip)]
    pub providers: Vec<Vec<V>>,
}
starlark_complex_value!(pub AttrDescriptor);

// SAFETY: `repr(C)`, and only `cfg` depends on the value type.
unsafe impl<'v> Coerce<AttrDescriptorGen<Value<'v>>> for AttrDescriptorGen<FrozenValue> {}

impl<'v> Freeze for AttrDescriptor<'v> {
    type Frozen = FrozenAttrDescriptor;
    fn freeze(self, freezer: &Freezer) -> FreezeResult<FrozenAttrDescriptor> {
        Ok(AttrDescriptorGen {
            ty: self.ty,
            mandatory: self.mandatory,
            default: self.default,
            cfg: self.cfg.map(|c| c.freeze(freezer)).transpose()?,
            executable: self.executable,
            single_file: self.single_file,
            providers: self.providers.freeze(freezer)?,
        })
    }
}

impl<V> fmt::Display for AttrDescriptorGen<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<attr.{}>", self.ty.describe())
    }
}

#[starlark_value(type = "Attribute")]
impl<'v, V: ValueLike<'v>> StarlarkValue<'v> for AttrDescriptorGen<V> where Self: ProvidesStaticType<'v> {}

/// `transition(implementation, inputs, outputs)`: a configuration change, run at analysis.
#[derive(Debug, Trace, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
#[repr(C)]
pub struct TransitionGen<V> {
    #[allocative(skip)]
    pub implementation: V,
    #[trace(static)]
    #[allocative(skip)]
    pub inputs: Vec<String>,
    #[trace(static)]
    #[allocative(skip)]
    pub outputs: Vec<String>,
}
starlark_complex_value!(pub Transition);

// SAFETY: `repr(C)`, and only `implementation` depends on the value type.
unsafe impl<'v> Coerce<TransitionGen<Value<'v>>> for TransitionGen<FrozenValue> {}

impl<'v> Freeze for Transition<'v> {
    type Frozen = FrozenTransition;
    fn freeze(self, freezer: &Freezer) -> FreezeResult<FrozenTransition> {
        Ok(TransitionGen { implementation: self.implementation.freeze(freezer)?, inputs: self.inputs, outputs: self.outputs })
    }
}

impl<V> fmt::Display for TransitionGen<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<transition>")
    }
}

#[starlark_value(type = "transition")]
impl<'v, V: ValueLike<'v>> StarlarkValue<'v> for TransitionGen<V> where Self: ProvidesStaticType<'v> {}

/// A rule defined in Starlark with `rule()`.
#[derive(Debug, Trace, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
#[repr(C)]
pub struct StarlarkRuleGen<V> {
    /// The schema BUILD files' calls are checked against (public attributes only).
    #[trace(static)]
    #[allocative(skip)]
    pub schema: Arc<RuleSchema>,
    /// The kind: the name of the variable the rule is first assigned to.
    #[trace(static)]
    #[allocative(skip)]
    pub exported_name: OnceLock<String>,
    #[allocative(skip)]
    pub implementation: V,
    /// Every attribute, private ones included: name → `attr.*` descriptor.
    #[allocative(skip)]
    pub attrs: Vec<(String, V)>,
    /// Rule-level `cfg`: a transition applied to the target itself.
    #[allocative(skip)]
    pub cfg: Option<V>,
    /// `outputs = {"key": "%{name}.txt"}`: predeclared outputs.
    #[trace(static)]
    #[allocative(skip)]
    pub output_templates: Vec<(String, String)>,
    #[trace(static)]
    pub executable: bool,
    #[trace(static)]
    pub test: bool,
    /// `build_setting = config.string(...)`: the setting's type (`string`, `bool`, ...).
    #[trace(static)]
    #[allocative(skip)]
    pub build_setting: Option<String>,
    /// The package of the .bzl file that defined the rule (label defaults resolve there).
    #[trace(static)]
    #[allocative(skip)]
    pub bzl_package: PackageId,
    /// Where `rule()` was called, for `query --output=build`.
    #[trace(static)]
    #[allocative(skip)]
    pub defined_at: DefinitionSite,
}
starlark_complex_value!(pub StarlarkRule);

// SAFETY: `repr(C)`, and only the `V` fields depend on the value type.
unsafe impl<'v> Coerce<StarlarkRuleGen<Value<'v>>> for StarlarkRuleGen<FrozenValue> {}

impl<'v> Freeze for StarlarkRule<'v> {
    type Frozen = FrozenStarlarkRule;
    fn freeze(self, freezer: &Freezer) -> FreezeResult<FrozenStarlarkRule> {
        let mut attrs = Vec::with_capacity(self.attrs.len());
        for (k, v) in self.attrs {
            attrs.push((k, v.freeze(freezer)?));
        }
        Ok(StarlarkRuleGen {
            schema: self.schema,
            exported_name: self.exported_name,
            implementation: self.implementation.freeze(freezer)?,
            attrs,
            cfg: self.cfg.map(|c| c.freeze(freezer)).transpose()?,
            output_templates: self.output_templates,
            executable: self.executable,
            test: self.test,
            build_setting: self.build_setting,
            bzl_package: self.bzl_package,
            defined_at: self.defined_at,
        })
    }
}

impl<V> StarlarkRuleGen<V> {
    /// The rule's kind, as `query` reports it.
    pub fn kind(&self) -> &str {
        self.exported_name.get().map(String::as_str).unwrap_or("<anonymous rule>")
    }
}

impl<V> fmt::Display for StarlarkRuleGen<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<rule {}>", self.kind())
    }
}

#[starlark_value(type = "rule")]
impl<'v, V: ValueLike<'v>> StarlarkValue<'v> for StarlarkRuleGen<V>
where
    Self: ProvidesStaticType<'v>,
{
    fn invoke(&self, me: Value<'v>, args: &Arguments<'v, '_>, eval: &mut Evaluator<'v, '_, '_>) -> starlark::Result<Value<'v>> {
        args.no_positional_args(eval.heap())?;
        let mut kwargs = Vec::new();
        for (name, value) in args.names_map()? {
            let raw = to_raw(value).map_err(|e| anyhow!("attribute '{}': {e}", name.as_str()))?;
            kwargs.push((name.as_str().to_owned(), raw));
        }
        if let Some(ctx) = RepoFileContext::from_eval(eval) {
            super::rule_call::record_unknown_repository(ctx, self.kind(), &kwargs);
            return Ok(Value::new_none());
        }
        if let Some((name, _)) = kwargs.iter().find(|(k, _)| k.starts_with('_')) {
            return Err(starlark::Error::new_other(anyhow!("{}: private attribute '{name}' cannot be set in a rule call", self.kind())));
        }
        let ctx = BuildContext::from_eval(eval)?;
        // The rule is a global of a loaded (frozen) .bzl module: `keep_alive` holds that
        // module's heap, so the value outlives this evaluation.
        let frozen = me.unpack_frozen().ok_or_else(|| anyhow!("{}: a rule must be defined in a .bzl file to be called", self.kind()))?;
        // SAFETY: `ctx.keep_alive` references the frozen heaps of every module this BUILD
        // file loads (and those reference theirs), one of which holds `frozen`.
        let owned = unsafe { OwnedFrozenValue::new(ctx.keep_alive.clone(), frozen) };
        let definition = RuleDefinition(Arc::new(StarlarkRuleHandle(owned)));
        super::rule_call::instantiate_kind(self.kind(), &self.schema, Some(definition), &self.defined_at, kwargs, eval)?;
        Ok(Value::new_none())
    }

    fn export_as(&self, variable_name: &str, _eval: &mut Evaluator<'v, '_, '_>) -> starlark::Result<()> {
        let _ = self.exported_name.set(variable_name.to_owned());
        Ok(())
    }
}

/// A Starlark rule's definition as a target keeps it: the frozen `rule()` value.
pub struct StarlarkRuleHandle(pub OwnedFrozenValue);
