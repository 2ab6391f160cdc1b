//! Bazel's `json` module (<https://bazel.build/rules/lib/core/json>): `encode`, `decode` (with
//! Bazel 7's `default`), and the `encode_indent` / `indent` that starlark-rust's own `json`
//! lacks (rules_oci's examples call `json.encode_indent`).

use anyhow::Result;
use serde::Serialize;
use starlark::environment::GlobalsBuilder;
use starlark::starlark_module;
use starlark::values::{Heap, Value};

/// Adds the `json` namespace.
pub(crate) fn json_namespace(builder: &mut GlobalsBuilder) {
    builder.namespace("json", json_members);
}

#[starlark_module]
fn json_members(builder: &mut GlobalsBuilder) {
    /// `json.encode(x)`: compact JSON, dict keys sorted (as Bazel 4.2.3 prints them).
    fn encode(#[starlark(require = pos)] x: Value) -> anyhow::Result<String> {
        Ok(serde_json::to_string(&encoded(x)?)?)
    }

    /// `json.decode(x, default = unbound)`: the value `x` encodes, or `default` if given and
    /// `x` is not valid JSON.
    fn decode<'v>(
        #[starlark(require = pos)] x: &str,
        #[starlark(require = named)] default: Option<Value<'v>>,
        heap: Heap<'v>,
    ) -> anyhow::Result<Value<'v>> {
        match (serde_json::from_str::<serde_json::Value>(x), default) {
            (Ok(v), _) => Ok(heap.alloc(v)),
            (Err(_), Some(d)) => Ok(d),
            (Err(e), None) => Err(anyhow::anyhow!("json.decode: at offset {}: {e}", offset_of(x, &e))),
        }
    }

    /// `json.encode_indent(x, *, prefix = "", indent = "\t")`: `json.indent(json.encode(x))`.
    fn encode_indent(
        #[starlark(require = pos)] x: Value,
        #[starlark(require = named, default = "")] prefix: &str,
        #[starlark(require = named, default = "\t")] indent: &str,
    ) -> anyhow::Result<String> {
        indent_json(&serde_json::to_string(&encoded(x)?)?, prefix, indent)
    }

    /// `json.indent(s, *, prefix = "", indent = "\t")`: `s` re-formatted with one element per
    /// line, as Go's `json.Indent` (which Bazel follows) does.
    fn indent(
        #[starlark(require = pos)] s: &str,
        #[starlark(require = named, default = "")] prefix: &str,
        #[starlark(require = named, default = "\t")] indent: &str,
    ) -> anyhow::Result<String> {
        indent_json(s, prefix, indent)
    }
}

/// `x` as JSON with every object's keys sorted: Bazel's `json.encode` sorts dict keys,
/// starlark-rust's `to_json` keeps insertion order.
fn encoded(x: Value) -> Result<serde_json::Value> {
    fn sorted(v: serde_json::Value) -> serde_json::Value {
        match v {
            serde_json::Value::Object(map) => {
                let mut entries: Vec<(String, serde_json::Value)> = map.into_iter().collect();
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                serde_json::Value::Object(entries.into_iter().map(|(k, v)| (k, sorted(v))).collect())
            }
            serde_json::Value::Array(items) => serde_json::Value::Array(items.into_iter().map(sorted).collect()),
            other => other,
        }
    }
    Ok(sorted(serde_json::from_str(&x.to_json()?)?))
}

/// The byte offset of a serde_json error in `text` (from its 1-based line and column).
fn offset_of(text: &str, e: &serde_json::Error) -> usize {
    let before: usize = text.split_inclusive('\n').take(e.line().saturating_sub(1)).map(str::len).sum();
    before + e.column().saturating_sub(1)
}

/// Pretty-prints the JSON `text`: nested elements on their own lines indented by `indent`,
/// every line after the first starting with `prefix`, `": "` after keys, empty arrays and
/// objects as `[]` / `{}`.
fn indent_json(text: &str, prefix: &str, indent: &str) -> Result<String> {
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| anyhow::anyhow!("json.indent: at offset {}: {e}", offset_of(text, &e)))?;
    let mut out = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(indent.as_bytes());
    let mut serializer = serde_json::Serializer::with_formatter(&mut out, formatter);
    value.serialize(&mut serializer)?;
    let pretty = String::from_utf8(out)?;
    Ok(if prefix.is_empty() { pretty } else { pretty.replace('\n', &format!("\n{prefix}")) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indent_follows_go_json_indent() {
        // json.indent keeps the text's key order; only encode sorts.
        let got = indent_json(r#"{"b":[1,2],"a":{},"c":[]}"#, "", "\t").unwrap();
        assert_eq!(got, "{\n\t\"b\": [\n\t\t1,\n\t\t2\n\t],\n\t\"a\": {},\n\t\"c\": []\n}");
        assert_eq!(indent_json("[1]", ">", "  ").unwrap(), "[\n>  1\n>]");
        assert!(indent_json("{", "", "\t").is_err());
    }
}
