//! The provider API of .bzl files: `provider()` (with `fields` and `init`), its instances,
//! Bazel's built-in providers (`DefaultInfo`, `OutputGroupInfo`, `RunEnvironmentInfo`), and
//! `depset` with its traversal orders. They are interpreter values, so they live here; what a
//! rule's implementation does with them is `rules/starlark/`'s business.

use std::fmt;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

use allocative::Allocative;
use anyhow::{anyhow, bail};
use starlark::any::ProvidesStaticType;
use starlark::coerce::Coerce;
use starlark::collections::SmallMap;
use starlark::environment::{Methods, MethodsBuilder, MethodsStatic};
use starlark::eval::{Arguments, Evaluator};
use starlark::starlark_complex_value;
use starlark::values::list::{AllocList, ListRef};
use starlark::values::tuple::TupleRef;
use starlark::values::{
    Freeze, FreezeResult, Freezer, FrozenValue, Heap, NoSerialize, StarlarkPagablePanic, StarlarkValue, Trace, Value, ValueLike,
    starlark_value,
};

/// Ids of Bazel's built-in providers (user providers count up from 100): `DefaultInfo`.
pub const DEFAULT_INFO: u64 = 1;
/// `OutputGroupInfo`.
pub const OUTPUT_GROUP_INFO: u64 = 2;
/// `RunEnvironmentInfo`.
pub const RUN_ENVIRONMENT_INFO: u64 = 3;
/// rules_go's `GoInfo`, which ocib's native Go rules provide (the prelude's
/// `@io_bazel_rules_go//go:def.bzl` exports it as `ocib.GoInfo`).
pub const GO_INFO: u64 = 4;
/// rules_go's `GoArchive`, as [`GO_INFO`].
pub const GO_ARCHIVE: u64 = 5;
const FIRST_USER_PROVIDER: u64 = 100;

/// The providers of rule sets ocib implements natively, for the prelude (`ocib.<name>`).
pub fn rule_set_providers() -> Vec<(&'static str, FrozenProvider)> {
    vec![
        ("GoInfo", ProviderGen::builtin(GO_INFO, "GoInfo", GO_INFO_FIELDS)),
        ("GoArchive", ProviderGen::builtin(GO_ARCHIVE, "GoArchive", GO_ARCHIVE_FIELDS)),
    ]
}

/// The fields ocib fills of rules_go's `GoInfo` and `GoArchive` (a subset of rules_go's).
const GO_INFO_FIELDS: &[&str] = &["name", "label", "importpath", "importmap", "pathtype", "srcs", "embedsrcs", "x_defs"];
const GO_ARCHIVE_FIELDS: &[&str] = &["source", "data", "transitive", "x_defs"];

fn next_provider_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(FIRST_USER_PROVIDER);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A provider (`provider()`'s result, or a built-in one): calling it makes an instance.
/// Identity is `id`, unique in the process, so two providers with the same name differ.
#[derive(Debug, Trace, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
#[repr(C)]
pub struct ProviderGen<V> {
    #[trace(static)]
    #[allocative(skip)]
    pub id: u64,
    /// The name of the variable it was first assigned to (Bazel's provider name).
    #[trace(static)]
    #[allocative(skip)]
    pub name: OnceLock<String>,
    /// The allowed fields, when `fields` was given.
    #[trace(static)]
    #[allocative(skip)]
    pub fields: Option<Vec<String>>,
    /// `init`: called with the constructor's arguments, returns the fields (Bazel ≥ 5).
    pub init: Option<V>,
}
starlark_complex_value!(pub Provider);

// SAFETY: `ProviderGen` is `repr(C)` and only `init` depends on the value type.
unsafe impl<'v> Coerce<ProviderGen<Value<'v>>> for ProviderGen<FrozenValue> {}

impl<'v> Freeze for Provider<'v> {
    type Frozen = FrozenProvider;
    fn freeze(self, freezer: &Freezer) -> FreezeResult<FrozenProvider> {
        Ok(ProviderGen { id: self.id, name: self.name, fields: self.fields, init: self.init.map(|i| i.freeze(freezer)).transpose()? })
    }
}

impl<V> ProviderGen<V> {
    /// A new user provider.
    pub fn new(fields: Option<Vec<String>>, init: Option<V>) -> ProviderGen<V> {
        ProviderGen { id: next_provider_id(), name: OnceLock::new(), fields, init }
    }

    /// A built-in provider with a fixed id and name.
    pub fn builtin(id: u64, name: &str, fields: &[&str]) -> ProviderGen<V> {
        let named = OnceLock::new();
        let _ = named.set(name.to_owned());
        ProviderGen { id, name: named, fields: Some(fields.iter().map(|f| (*f).to_owned()).collect()), init: None }
    }

    /// The provider's name, as Bazel prints it.
    pub fn name(&self) -> &str {
        self.name.get().map(String::as_str).unwrap_or("<anonymous provider>")
    }
}

impl<V> fmt::Display for ProviderGen<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<provider {}>", self.name())
    }
}

/// The fields a built-in provider's constructor accepts.
const DEFAULT_INFO_FIELDS: &[&str] = &["files", "runfiles", "data_runfiles", "default_runfiles", "executable"];
const RUN_ENVIRONMENT_INFO_FIELDS: &[&str] = &["environment", "inherited_environment"];

/// The built-in providers .bzl files see as globals.
pub fn builtin_providers() -> Vec<(&'static str, FrozenProvider)> {
    vec![
        ("DefaultInfo", ProviderGen::builtin(DEFAULT_INFO, "DefaultInfo", DEFAULT_INFO_FIELDS)),
        ("OutputGroupInfo", ProviderGen { fields: None, ..ProviderGen::builtin(OUTPUT_GROUP_INFO, "OutputGroupInfo", &[]) }),
        ("RunEnvironmentInfo", ProviderGen::builtin(RUN_ENVIRONMENT_INFO, "RunEnvironmentInfo", RUN_ENVIRONMENT_INFO_FIELDS)),
    ]
}

impl<'v, V: ValueLike<'v>> ProviderGen<V> {
    fn instantiate(&self, named: Vec<(String, Value<'v>)>, heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        let mut fields = SmallMap::new();
        for (k, v) in named {
            if let Some(allowed) = &self.fields
                && !allowed.contains(&k)
            {
                return Err(starlark::Error::new_other(anyhow!(
                    "{}() got an unexpected keyword argument '{k}' (its fields are: {})",
                    self.name(),
                    allowed.join(", ")
                )));
            }
            fields.insert(k, v);
        }
        Ok(heap.alloc(ProviderInstanceGen { provider_id: self.id, name: self.name().to_owned(), fields }))
    }
}

#[starlark_value(type = "Provider")]
impl<'v, V: ValueLike<'v>> StarlarkValue<'v> for ProviderGen<V>
where
    Self: ProvidesStaticType<'v>,
{
    fn invoke(&self, _me: Value<'v>, args: &Arguments<'v, '_>, eval: &mut Evaluator<'v, '_, '_>) -> starlark::Result<Value<'v>> {
        let heap = eval.heap();
        if let Some(init) = self.init {
            // Bazel: `init` takes the constructor's arguments and returns the fields as a dict.
            let positional: Vec<Value<'v>> = args.positions(heap)?.collect();
            let named_map = args.names_map()?;
            let named: Vec<(&str, Value<'v>)> = named_map.iter().map(|(k, v)| (k.as_str(), *v)).collect();
            let result = eval.eval_function(init.to_value(), &positional, &named)?;
            let dict = starlark::values::dict::DictRef::from_value(result).ok_or_else(|| {
                starlark::Error::new_other(anyhow!("the init function of {} must return a dict, got '{}'", self.name(), result.get_type()))
            })?;
            let mut fields = Vec::new();
            for (k, v) in dict.iter() {
                let key = k
                    .unpack_str()
                    .ok_or_else(|| starlark::Error::new_other(anyhow!("init of {}: field names must be strings", self.name())))?;
                fields.push((key.to_owned(), v));
            }
            return self.instantiate(fields, heap);
        }
        if args.positions(heap)?.next().is_some() {
            return Err(starlark::Error::new_other(anyhow!("{}() takes only keyword arguments", self.name())));
        }
        let named = args.names_map()?.into_iter().map(|(k, v)| (k.as_str().to_owned(), v)).collect();
        self.instantiate(named, heap)
    }

    fn export_as(&self, variable_name: &str, _eval: &mut Evaluator<'v, '_, '_>) -> starlark::Result<()> {
        let _ = self.name.set(variable_name.to_owned());
        Ok(())
    }

    fn equals(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(provider_id(other) == Some(self.id))
    }

    fn write_hash(&self, hasher: &mut starlark::collections::StarlarkHasher) -> starlark::Result<()> {
        use std::hash::Hash;
        self.id.hash(hasher);
        Ok(())
    }
}

/// The id of a provider value, if `v` is one.
pub fn provider_id(v: Value) -> Option<u64> {
    Provider::from_value(v).map(|p| p.id)
}

/// The raw constructor `provider(init = ...)` returns beside the provider: it makes an
/// instance from the fields as given, without calling `init`.
pub fn raw_constructor<V>(p: &ProviderGen<V>) -> ProviderGen<V> {
    ProviderGen { id: p.id, name: p.name.clone(), fields: p.fields.clone(), init: None }
}

/// An instance of a provider: its fields, and which provider made it.
#[derive(Debug, Trace, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
#[repr(C)]
pub struct ProviderInstanceGen<V> {
    #[trace(static)]
    #[allocative(skip)]
    pub provider_id: u64,
    #[trace(static)]
    #[allocative(skip)]
    pub name: String,
    #[allocative(skip)]
    pub fields: SmallMap<String, V>,
}
starlark_complex_value!(pub ProviderInstance);

// SAFETY: `repr(C)`, and only the field values depend on the value type.
unsafe impl<'v> Coerce<ProviderInstanceGen<Value<'v>>> for ProviderInstanceGen<FrozenValue> {}

impl<'v> Freeze for ProviderInstance<'v> {
    type Frozen = FrozenProviderInstance;
    fn freeze(self, freezer: &Freezer) -> FreezeResult<FrozenProviderInstance> {
        let mut fields = SmallMap::with_capacity(self.fields.len());
        for (k, v) in self.fields {
            fields.insert(k, v.freeze(freezer)?);
        }
        Ok(ProviderInstanceGen { provider_id: self.provider_id, name: self.name, fields })
    }
}

impl<'v, V: ValueLike<'v>> ProviderInstanceGen<V> {
    /// The value of field `name`, if set.
    pub fn field(&self, name: &str) -> Option<Value<'v>> {
        self.fields.get(name).map(|v| v.to_value())
    }
}

impl<'v, V: ValueLike<'v>> fmt::Display for ProviderInstanceGen<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(", self.name)?;
        for (i, (k, v)) in self.fields.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k} = {}", v.to_value().to_repr())?;
        }
        f.write_str(")")
    }
}

#[starlark_value(type = "struct")]
impl<'v, V: ValueLike<'v>> StarlarkValue<'v> for ProviderInstanceGen<V>
where
    Self: ProvidesStaticType<'v>,
{
    fn get_attr(&self, attribute: &str, _heap: Heap<'v>) -> Option<Value<'v>> {
        self.field(attribute)
    }

    fn has_attr(&self, attribute: &str, _heap: Heap<'v>) -> bool {
        self.fields.contains_key(attribute)
    }

    fn dir_attr(&self) -> Vec<String> {
        self.fields.keys().cloned().collect()
    }

    fn equals(&self, other: Value<'v>) -> starlark::Result<bool> {
        let Some(o) = ProviderInstance::from_value(other) else { return Ok(false) };
        if o.provider_id != self.provider_id || o.fields.len() != self.fields.len() {
            return Ok(false);
        }
        for (k, v) in &self.fields {
            match o.fields.get(k) {
                Some(ov) if v.to_value().equals(*ov)? => {}
                _ => return Ok(false),
            }
        }
        Ok(true)
    }
}

/// A depset's traversal order (Bazel's `order` argument).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Allocative)]
pub enum DepsetOrder {
    /// `default` (Bazel's "stable"): traversed as `postorder`.
    Default,
    /// Children (transitive sets) first, left to right, then the direct elements.
    Postorder,
    /// Direct elements first, then the children, left to right.
    Preorder,
    /// A node before the nodes it depends on: the reverse of a postorder walk that visits
    /// each node's direct elements right to left.
    Topological,
}

impl DepsetOrder {
    fn parse(s: &str) -> anyhow::Result<DepsetOrder> {
        Ok(match s {
            "default" | "stable" => DepsetOrder::Default,
            "postorder" | "compile" => DepsetOrder::Postorder,
            "preorder" | "naive_link" => DepsetOrder::Preorder,
            "topological" | "link" => DepsetOrder::Topological,
            other => bail!("invalid depset order '{other}': expected default, postorder, preorder or topological"),
        })
    }

    fn name(self) -> &'static str {
        match self {
            DepsetOrder::Default => "default",
            DepsetOrder::Postorder => "postorder",
            DepsetOrder::Preorder => "preorder",
            DepsetOrder::Topological => "topological",
        }
    }

    fn compatible(self, other: DepsetOrder) -> bool {
        self == other || self == DepsetOrder::Default || other == DepsetOrder::Default
    }
}

/// `depset(direct, order, transitive)`: a set that shares its children, flattened on
/// `to_list()` in its order, each element once (its first occurrence).
#[derive(Debug, Trace, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
#[repr(C)]
pub struct DepsetGen<V> {
    #[trace(static)]
    pub order: DepsetOrder,
    #[allocative(skip)]
    pub direct: Vec<V>,
    /// Non-empty child depsets.
    #[allocative(skip)]
    pub transitive: Vec<V>,
}
starlark_complex_value!(pub Depset);

// SAFETY: `repr(C)`, and only the element values depend on the value type.
unsafe impl<'v> Coerce<DepsetGen<Value<'v>>> for DepsetGen<FrozenValue> {}

impl<'v> Freeze for Depset<'v> {
    type Frozen = FrozenDepset;
    fn freeze(self, freezer: &Freezer) -> FreezeResult<FrozenDepset> {
        Ok(DepsetGen { order: self.order, direct: self.direct.freeze(freezer)?, transitive: self.transitive.freeze(freezer)? })
    }
}

impl<V> DepsetGen<V> {
    /// A depset of `direct` elements in the default order.
    pub fn new_direct(direct: Vec<V>) -> DepsetGen<V> {
        DepsetGen { order: DepsetOrder::Default, direct, transitive: Vec::new() }
    }
}

impl<'v, V: ValueLike<'v>> DepsetGen<V> {
    fn is_empty(&self) -> bool {
        self.direct.is_empty() && self.transitive.is_empty()
    }

    /// The elements in the depset's order, each once.
    pub fn to_list(&self) -> starlark::Result<Vec<Value<'v>>> {
        let mut seen = starlark::collections::SmallSet::new();
        let mut out = Vec::new();
        let mut visited_sets = std::collections::HashSet::new();
        match self.order {
            DepsetOrder::Topological => {
                let mut rev = Vec::new();
                walk(self, true, &mut visited_sets, &mut |v| {
                    rev.push(v);
                    Ok(())
                })?;
                for v in rev.into_iter().rev() {
                    if seen.insert_hashed(v.get_hashed()?) {
                        out.push(v);
                    }
                }
            }
            _ => {
                walk(self, false, &mut visited_sets, &mut |v| {
                    if seen.insert_hashed(v.get_hashed()?) {
                        out.push(v);
                    }
                    Ok(())
                })?;
            }
        }
        Ok(out)
    }
}

/// Visits the elements of `d` in postorder (preorder for a `Preorder` node); `reversed`
/// visits each node's direct elements right to left (topological order is the reverse of
/// that walk, so direct elements keep their order and come before their children, as
/// Bazel 4.2.3 flattens them). A child set shared by several parents is walked once.
fn walk<'v, V: ValueLike<'v>>(
    d: &DepsetGen<V>,
    reversed: bool,
    visited: &mut std::collections::HashSet<starlark::values::ValueIdentity<'v>>,
    f: &mut dyn FnMut(Value<'v>) -> starlark::Result<()>,
) -> starlark::Result<()> {
    let direct: Vec<Value<'v>> =
        if reversed { d.direct.iter().rev().map(|v| v.to_value()).collect() } else { d.direct.iter().map(|v| v.to_value()).collect() };
    let children: Vec<Value<'v>> = d.transitive.iter().map(|v| v.to_value()).collect();
    if d.order == DepsetOrder::Preorder {
        for v in &direct {
            f(*v)?;
        }
    }
    for child in children {
        if !visited.insert(child.identity()) {
            continue;
        }
        if let Some(c) = Depset::from_value(child) {
            walk(c, reversed, visited, f)?;
        }
    }
    if d.order != DepsetOrder::Preorder {
        for v in direct {
            f(v)?;
        }
    }
    Ok(())
}

impl<'v, V: ValueLike<'v>> fmt::Display for DepsetGen<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let items = self.to_list().map_err(|_| fmt::Error)?;
        f.write_str("depset([")?;
        for (i, v) in items.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(&v.to_repr())?;
        }
        f.write_str("]")?;
        if self.order != DepsetOrder::Default {
            write!(f, ", order = \"{}\"", self.order.name())?;
        }
        f.write_str(")")
    }
}

#[starlark_value(type = "depset")]
impl<'v, V: ValueLike<'v>> StarlarkValue<'v> for DepsetGen<V>
where
    Self: ProvidesStaticType<'v>,
{
    fn get_methods() -> Option<&'static Methods> {
        static RES: MethodsStatic = MethodsStatic::new("depset", depset_methods);
        Some(RES.methods())
    }

    fn to_bool(&self) -> bool {
        !self.is_empty()
    }
}

#[starlark::starlark_module]
fn depset_methods(builder: &mut MethodsBuilder) {
    fn to_list<'v>(this: Value<'v>, heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        let d = Depset::from_value(this).ok_or_else(|| starlark::Error::new_other(anyhow!("not a depset")))?;
        Ok(heap.alloc(AllocList(d.to_list()?)))
    }
}

/// The elements of a list, tuple or depset value.
pub fn iterate_elements<'v>(v: Value<'v>) -> starlark::Result<Vec<Value<'v>>> {
    if v.is_none() {
        return Ok(Vec::new());
    }
    if let Some(d) = Depset::from_value(v) {
        return d.to_list();
    }
    if let Some(l) = ListRef::from_value(v) {
        return Ok(l.iter().collect());
    }
    if let Some(t) = TupleRef::from_value(v) {
        return Ok(t.iter().collect());
    }
    Err(starlark::Error::new_other(anyhow!("expected a list or depset, got '{}'", v.get_type())))
}

/// `depset(direct = None, order = "default", *, transitive = None)`.
pub fn make_depset<'v>(
    direct: Option<Value<'v>>,
    order: &str,
    transitive: Option<Value<'v>>,
    heap: Heap<'v>,
) -> starlark::Result<Value<'v>> {
    let order = DepsetOrder::parse(order).map_err(starlark::Error::new_other)?;
    let direct = match direct {
        Some(d) => {
            if Depset::from_value(d).is_some() {
                return Err(starlark::Error::new_other(anyhow!("depset(direct=...): expected a list, got a depset")));
            }
            iterate_elements(d)?
        }
        None => Vec::new(),
    };
    let mut children = Vec::new();
    if let Some(t) = transitive {
        for child in iterate_elements(t)? {
            let c = Depset::from_value(child).ok_or_else(|| {
                starlark::Error::new_other(anyhow!("depset(transitive=...): expected a list of depsets, got '{}'", child.get_type()))
            })?;
            if !c.order.compatible(order) {
                return Err(starlark::Error::new_other(anyhow!(
                    "Order '{}' is incompatible with order '{}'",
                    c.order.name(),
                    order.name()
                )));
            }
            if !c.is_empty() {
                children.push(child);
            }
        }
    }
    // Bazel: a depset with one child and no direct elements is that child.
    if direct.is_empty() && children.len() == 1 && Depset::from_value(children[0]).is_some_and(|c| c.order == order) {
        return Ok(children[0]);
    }
    for d in &direct {
        d.get_hashed().map_err(|_| starlark::Error::new_other(anyhow!("depset elements must be hashable, got '{}'", d.get_type())))?;
    }
    Ok(heap.alloc(DepsetGen { order, direct, transitive: children }))
}

#[cfg(test)]
mod tests {
    use starlark::environment::{GlobalsBuilder, Module};
    use starlark::eval::Evaluator;
    use starlark::syntax::{AstModule, Dialect};
    use starlark::values::Value;

    use super::make_depset;

    #[starlark::starlark_module]
    fn depset_global(builder: &mut GlobalsBuilder) {
        fn depset<'v>(
            #[starlark(default = starlark::values::none::NoneOr::None)] direct: starlark::values::none::NoneOr<Value<'v>>,
            #[starlark(default = "default")] order: &str,
            #[starlark(require = named, default = starlark::values::none::NoneOr::None)] transitive: starlark::values::none::NoneOr<
                Value<'v>,
            >,
            heap: starlark::values::Heap<'v>,
        ) -> starlark::Result<Value<'v>> {
            make_depset(direct.into_option(), order, transitive.into_option(), heap)
        }
    }

    fn eval(code: &str) -> String {
        let globals = GlobalsBuilder::standard().with(depset_global).build();
        Module::with_temp_heap(|module| {
            let ast = AstModule::parse("t.bzl", code.to_owned(), &Dialect::Extended).expect("parse");
            let mut eval = Evaluator::new(&module);
            eval.eval_module(ast, &globals).expect("eval").to_str()
        })
    }

    /// The orders as Bazel 4.2.3 flattens them (checked against it in tests/it/bazel_oracle.rs):
    /// each node keeps its own order inside a default one, topological is reversed postorder.
    #[test]
    fn depset_orders_flatten_as_bazel() {
        let tree = r#"
a = depset(["alpha"])
b = depset(["beta"])
c = depset(["gamma"])
m1 = depset(["one"], transitive = [a, b])
m2 = depset(["two"], transitive = [b, c], order = "preorder")
m3 = depset(["three"], transitive = [m1, m2])
"#;
        assert_eq!(eval(&format!("{tree}\nm3.to_list()")), r#"["alpha", "beta", "one", "two", "gamma", "three"]"#);
        assert_eq!(
            eval(&format!("{tree}\ndepset(transitive = [m3, m1], order = \"topological\").to_list()")),
            r#"["three", "gamma", "two", "one", "beta", "alpha"]"#
        );
        assert_eq!(eval(r#"depset(["x", "y"], order = "topological").to_list()"#), r#"["x", "y"]"#);
        assert_eq!(eval(r#"depset(["x", "y", "x"]).to_list()"#), r#"["x", "y"]"#);
    }
}
