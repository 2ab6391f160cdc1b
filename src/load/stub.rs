//! The universal stub: the value a symbol of something ocib does not implement (an unknown
//! repository, a rule-set file or symbol missing from the prelude) is bound to, so that real
//! BUILD, .bzl, WORKSPACE and MODULE.bazel files evaluate unchanged (issue 11).
//!
//! A stub behaves as harmlessly as it can in every position: called with `name = ...` while a
//! BUILD file is evaluated it records a target of its kind (whose build fails, naming the
//! kind); called in WORKSPACE it declares an unknown repository; called elsewhere it returns
//! another stub. Attribute access and indexing return stubs, it iterates as empty, `x in stub`
//! is false, it is falsy, `+` with it keeps the other operand, and as an attribute value it is
//! dropped.

use std::fmt;
use std::sync::Arc;

use allocative::Allocative;
use starlark::any::ProvidesStaticType;
use starlark::eval::{Arguments, Evaluator};
use starlark::starlark_simple_value;
use starlark::values::{Heap, NoSerialize, StarlarkPagablePanic, StarlarkValue, Value, ValueLike, starlark_value};

use super::context::{BuildContext, RepoFileContext};
use super::rule_call::{RuleCallable, instantiate, record_unknown_repository};
use super::values::to_raw;
use crate::graph::Raw;
use crate::graph::schema::RuleSchema;

/// A stand-in value. `name` is the expression it stands for (`tar_lib.toolchain_type`,
/// `requirement(...)`), `origin` the file or repository it was loaded from.
#[derive(Debug, Clone, ProvidesStaticType, NoSerialize, Allocative, StarlarkPagablePanic)]
pub struct StubValue {
    pub name: String,
    pub origin: String,
}
starlark_simple_value!(StubValue);

impl StubValue {
    pub fn new(name: &str, origin: &str) -> StubValue {
        StubValue { name: name.to_owned(), origin: origin.to_owned() }
    }

    fn derived(&self, name: String) -> StubValue {
        StubValue { name, origin: self.origin.clone() }
    }

    /// A label standing for this value where a label is needed: the target named after the
    /// expression (`entry_point("flake8")` → `entry_point_flake8`) in the repository the stub
    /// came from (`@pip//:entry_point_flake8`), if the origin names one.
    pub fn as_label(&self) -> Option<String> {
        let repo = self.origin.strip_prefix('@')?.split("//").next().filter(|r| !r.is_empty())?;
        let name: String = self.name.chars().map(|c| if c.is_ascii_alphanumeric() || "_-.".contains(c) { c } else { '_' }).collect();
        let name = name.trim_matches('_');
        (!name.is_empty()).then(|| format!("@{repo}//:{name}"))
    }

    /// The rule kind a call records: the symbol's own name (`ts_project`, or the last part of
    /// `ts.project`).
    fn kind(&self) -> &str {
        self.name.rsplit('.').next().unwrap_or(&self.name)
    }
}

/// Whether `v` is a stub (attribute conversion drops them).
pub fn is_stub(v: Value) -> bool {
    v.downcast_ref::<StubValue>().is_some()
}

impl fmt::Display for StubValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<unknown {} from {}>", self.name, self.origin)
    }
}

#[starlark_value(type = "unknown")]
impl<'v> StarlarkValue<'v> for StubValue {
    fn invoke(&self, _me: Value<'v>, args: &Arguments<'v, '_>, eval: &mut Evaluator<'v, '_, '_>) -> starlark::Result<Value<'v>> {
        // Arguments a stub cannot use (functions, structs) are dropped, not errors: the real
        // symbol's behaviour is unknown anyway.
        let kwargs: Vec<(String, Raw)> = args
            .names_map()?
            .into_iter()
            .filter_map(|(k, v)| to_raw(v).ok().filter(|r| *r != Raw::None).map(|r| (k.as_str().to_owned(), r)))
            .collect();
        let named = kwargs.iter().any(|(k, v)| k == "name" && matches!(v, Raw::String(_)));
        if named {
            if let Some(ctx) = RepoFileContext::from_eval(eval) {
                record_unknown_repository(ctx, self.kind(), &kwargs);
                return Ok(Value::new_none());
            }
            if BuildContext::from_eval(eval).is_ok() {
                let callable = RuleCallable::native(Arc::new(RuleSchema::untyped(self.kind())));
                instantiate(&callable, kwargs, eval).map_err(starlark::Error::new_other)?;
                return Ok(Value::new_none());
            }
        }
        Ok(eval.heap().alloc(self.derived(format!("{}()", self.name))))
    }

    fn get_attr(&self, attribute: &str, heap: Heap<'v>) -> Option<Value<'v>> {
        Some(heap.alloc(self.derived(format!("{}.{attribute}", self.name))))
    }

    fn has_attr(&self, _attribute: &str, _heap: Heap<'v>) -> bool {
        true
    }

    fn at(&self, index: Value<'v>, heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        Ok(heap.alloc(self.derived(format!("{}[{}]", self.name, index.to_repr()))))
    }

    fn iterate_collect(&self, _heap: Heap<'v>) -> starlark::Result<Vec<Value<'v>>> {
        Ok(Vec::new())
    }

    fn length(&self) -> starlark::Result<i32> {
        Ok(0)
    }

    fn is_in(&self, _other: Value<'v>) -> starlark::Result<bool> {
        Ok(false)
    }

    fn to_bool(&self) -> bool {
        false
    }

    fn add(&self, rhs: Value<'v>, _heap: Heap<'v>) -> Option<starlark::Result<Value<'v>>> {
        Some(Ok(rhs))
    }

    fn radd(&self, lhs: Value<'v>, _heap: Heap<'v>) -> Option<starlark::Result<Value<'v>>> {
        Some(Ok(lhs))
    }

    fn bit_or(&self, other: Value<'v>, _heap: Heap<'v>) -> starlark::Result<Value<'v>> {
        Ok(other)
    }

    fn collect_str(&self, collector: &mut String) {
        collector.push_str(&self.to_string());
    }

    fn equals(&self, other: Value<'v>) -> starlark::Result<bool> {
        Ok(other.downcast_ref::<StubValue>().is_some_and(|o| o.name == self.name && o.origin == self.origin))
    }

    fn write_hash(&self, hasher: &mut starlark::collections::StarlarkHasher) -> starlark::Result<()> {
        use std::hash::Hash;
        self.name.hash(hasher);
        Ok(())
    }
}
