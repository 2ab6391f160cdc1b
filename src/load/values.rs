//! Starlark value types ocib adds to the interpreter (`select()`, `Label`, opaque load-time
//! values) and the conversion of Starlark values into [`Raw`] data.

use std::fmt;

use allocative::Allocative;
use starlark::any::ProvidesStaticType;
use starlark::starlark_simple_value;
use starlark::values::dict::{AllocDict, DictRef};
use starlark::values::list::{AllocList, ListRef};
use starlark::values::tuple::TupleRef;
use starlark::values::{Heap, NoSerialize, StarlarkPagablePanic, StarlarkValue, UnpackValue, Value, ValueLike, starlark_value};

use crate::graph::label::Label;
use crate::graph::{Raw, SelectPart};

/// Converts a Starlark value into plain data. Fails on values that cannot be attribute
/// values (functions, structs, ...), naming their type.
pub fn to_raw(v: Value) -> anyhow::Result<Raw> {
    // A stub (something ocib does not implement) passed as a value is as if not given.
    if v.is_none() || super::stub::is_stub(v) {
        return Ok(Raw::None);
    }
    if let Some(b) = v.unpack_bool() {
        return Ok(Raw::Bool(b));
    }
    if let Some(s) = v.unpack_str() {
        return Ok(Raw::String(s.to_owned()));
    }
    if let Ok(Some(i)) = i64::unpack_value(v) {
        return Ok(Raw::Int(i));
    }
    let known = |v: &Value| !super::stub::is_stub(*v);
    if let Some(list) = ListRef::from_value(v) {
        return Ok(Raw::List(list.iter().filter(known).map(to_raw).collect::<anyhow::Result<_>>()?));
    }
    if let Some(tuple) = TupleRef::from_value(v) {
        return Ok(Raw::List(tuple.iter().filter(known).map(to_raw).collect::<anyhow::Result<_>>()?));
    }
    if let Some(dict) = DictRef::from_value(v) {
        return Ok(Raw::Dict(
            dict.iter().filter(|(k, v)| known(k) && known(v)).map(|(k, v)| Ok((to_raw(k)?, to_raw(v)?))).collect::<anyhow::Result<_>>()?,
        ));
    }
    if let Some(label) = v.downcast_ref::<LabelValue>() {
        return Ok(Raw::Label(label.0.clone()));
    }
    if let Some(select) = v.downcast_ref::<SelectValue>() {
        return Ok(Raw::Select(select.parts.clone()));
    }
    if let Some(depset) = super::providers::Depset::from_value(v) {
        return Ok(Raw::List(
            depset.to_list().map_err(|e| anyhow::anyhow!("{e}"))?.into_iter().map(to_raw).collect::<anyhow::Result<_>>()?,
        ));
    }
    anyhow::bail!("a value of type '{}' cannot be used here: {}", v.get_type(), v.to_repr())
}

/// Turns plain data back into a Starlark value (for `native.existing_rule()` and friends).
pub fn raw_to_value<'v>(heap: Heap<'v>, raw: &Raw) -> Value<'v> {
    match raw {
        Raw::None => Value::new_none(),
        Raw::Bool(b) => Value::new_bool(*b),
        Raw::Int(i) => heap.alloc(*i),
        Raw::String(s) => heap.alloc(s.as_str()),
        Raw::Label(l) => heap.alloc(LabelValue(l.clone())),
        Raw::List(items) => heap.alloc(AllocList(items.iter().map(|i| raw_to_value(heap, i)))),
        Raw::Dict(entries) => heap.alloc(AllocDict(entries.iter().map(|(k, v)| (raw_to_value(heap, k), raw_to_value(heap, v))))),
        Raw::Select(parts) => heap.alloc(SelectValue { parts: parts.clone() }),
    }
}

/// `select({...})`, possibly concatenated with plain values: `select(a) + [x] + select(b)`.
#[derive(Debug, Clone, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
pub struct SelectValue {
    #[allocative(skip)]
    pub parts: Vec<SelectPart<Raw>>,
}
starlark_simple_value!(SelectValue);

impl fmt::Display for SelectValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", Raw::Select(self.parts.clone()))
    }
}

impl SelectValue {
    fn concat<'v>(left: Value<'v>, right: Value<'v>, heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        let mut parts = Vec::new();
        for v in [left, right] {
            match v.downcast_ref::<SelectValue>() {
                Some(s) => parts.extend(s.parts.iter().cloned()),
                None => {
                    let raw = to_raw(v).map_err(starlark::Error::new_other)?;
                    if !matches!(raw, Raw::List(_) | Raw::Dict(_) | Raw::String(_)) {
                        return Err(starlark::Error::new_other(anyhow::anyhow!(
                            "select() can only be concatenated with a list, dict or string, not '{}'",
                            v.get_type()
                        )));
                    }
                    parts.push(SelectPart::Plain(raw));
                }
            }
        }
        Ok(heap.alloc(SelectValue { parts }))
    }
}

#[starlark_value(type = "select")]
impl<'v> StarlarkValue<'v> for SelectValue {
    fn add(&self, rhs: Value<'v>, heap: Heap<'v>) -> Option<starlark::Result<Value<'v>>> {
        Some(SelectValue::concat(heap.alloc(self.clone()), rhs, heap))
    }

    fn radd(&self, lhs: Value<'v>, heap: Heap<'v>) -> Option<starlark::Result<Value<'v>>> {
        Some(SelectValue::concat(lhs, heap.alloc(self.clone()), heap))
    }
}

/// A `Label` object.
#[derive(Debug, Clone, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
pub struct LabelValue(#[allocative(skip)] pub Label);
starlark_simple_value!(LabelValue);

impl fmt::Display for LabelValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[starlark_value(type = "Label")]
impl<'v> StarlarkValue<'v> for LabelValue {
    fn collect_repr(&self, collector: &mut String) {
        collector.push_str(&format!("Label(\"{}\")", self.0));
    }

    /// `str(Label("//a:b"))` is `//a:b`.
    fn collect_str(&self, collector: &mut String) {
        collector.push_str(&self.0.to_string());
    }

    /// Labels are dict keys in `select()`s that macros build.
    fn write_hash(&self, hasher: &mut starlark::collections::StarlarkHasher) -> starlark::Result<()> {
        use std::hash::Hash;
        self.0.to_string().hash(hasher);
        Ok(())
    }

    fn equals(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(other.downcast_ref::<LabelValue>().is_some_and(|o| o.0 == self.0))
    }

    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        let l = &self.0;
        Some(match attribute {
            "name" => heap.alloc(l.name.as_str()),
            "package" => heap.alloc(l.package.as_str()),
            "workspace_name" | "repo_name" => heap.alloc(l.repo.as_str()),
            "workspace_root" => heap.alloc(if l.repo.is_empty() { String::new() } else { format!("external/{}", l.repo) }),
            _ => return None,
        })
    }

    fn dir_attr(&self) -> Vec<String> {
        ["name", "package", "workspace_name", "repo_name", "workspace_root"].map(String::from).to_vec()
    }
}

/// A value that only needs to exist at load time (`DefaultInfo`, `platform_common`,
/// `transition(...)` results, `aspect(...)` results). Any attribute or call yields another
/// such value, so `.bzl` files that mention them evaluate.
#[derive(Debug, Clone, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
pub struct Opaque {
    pub name: String,
}
starlark_simple_value!(Opaque);

impl fmt::Display for Opaque {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}>", self.name)
    }
}

#[starlark_value(type = "opaque")]
impl<'v> StarlarkValue<'v> for Opaque {
    fn invoke(
        &self,
        _me: Value<'v>,
        _args: &starlark::eval::Arguments<'v, '_>,
        eval: &mut starlark::eval::Evaluator<'v, '_, '_>,
    ) -> starlark::Result<Value<'v>> {
        Ok(eval.heap().alloc(Opaque { name: format!("{}()", self.name) }))
    }

    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        Some(heap.alloc(Opaque { name: format!("{}.{}", self.name, attribute) }))
    }
}
