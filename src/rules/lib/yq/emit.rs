//! YAML output the way yq prints it (go-yaml v3's emitter with yq's indent, 2 by default): key
//! order kept, block style, sequences indented under their key (`a:\n  - b`), strings quoted only
//! when plain style would read back as something else, multi-line strings as literal blocks.

use serde_json::Value;

/// One document's YAML text, ending in a newline.
pub fn yaml(value: &Value, indent: usize) -> String {
    let indent = indent.max(1);
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => map(value, 0, indent, &mut out, false),
        Value::Array(a) if !a.is_empty() => seq(value, 0, indent, &mut out, false),
        other => {
            out.push_str(&scalar(other, 0, indent));
            out.push('\n');
        }
    }
    out
}

fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// A map at column `col`; with `inline` its first key follows a `- ` already written.
fn map(v: &Value, col: usize, indent: usize, out: &mut String, inline: bool) {
    let Value::Object(m) = v else { return };
    for (i, (k, val)) in m.iter().enumerate() {
        if i > 0 || !inline {
            pad(out, col);
        }
        out.push_str(&string(k, col, indent, true));
        out.push(':');
        value_after_key(val, col, indent, out);
    }
}

fn value_after_key(val: &Value, col: usize, indent: usize, out: &mut String) {
    match val {
        Value::Object(c) if !c.is_empty() => {
            out.push('\n');
            map(val, col + indent, indent, out, false);
        }
        Value::Array(c) if !c.is_empty() => {
            out.push('\n');
            seq(val, col + indent, indent, out, false);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other, col + indent, indent));
            out.push('\n');
        }
    }
}

fn seq(v: &Value, col: usize, indent: usize, out: &mut String, inline: bool) {
    let Value::Array(a) = v else { return };
    for (i, item) in a.iter().enumerate() {
        if i > 0 || !inline {
            pad(out, col);
        }
        out.push_str("- ");
        match item {
            // go-yaml puts a map's or sequence's first line right after `- `, the rest at
            // the column after the dash.
            Value::Object(c) if !c.is_empty() => map(item, col + 2, indent, out, true),
            Value::Array(c) if !c.is_empty() => seq(item, col + 2, indent, out, true),
            other => {
                out.push_str(&scalar(other, col + 2, indent));
                out.push('\n');
            }
        }
    }
}

fn scalar(v: &Value, col: usize, indent: usize) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => string(s, col, indent, false),
        Value::Object(_) => "{}".to_owned(),
        Value::Array(_) => "[]".to_owned(),
    }
}

/// A string scalar: plain when that reads back as the same string, double-quoted when it would
/// read as another type (go-yaml v3 quotes `"true"`, `"1"`, `"null"`), single-quoted when it holds characters plain style cannot, a literal block
/// (`|`, `|-`) for multi-line values.
fn string(s: &str, col: usize, indent: usize, is_key: bool) -> String {
    if !is_key
        && s.contains('\n')
        && !s.starts_with([' ', '\t'])
        && !s.contains(['\r', '\t'])
        && !s.chars().any(|c| c.is_control() && c != '\n')
    {
        let chomp = if s.ends_with('\n') { "" } else { "-" };
        let body = s.strip_suffix('\n').unwrap_or(s);
        let mut out = format!("|{chomp}");
        for line in body.split('\n') {
            out.push('\n');
            if !line.is_empty() {
                out.push_str(&" ".repeat(col.max(indent)));
                out.push_str(line);
            }
        }
        return out;
    }
    if resolves_to_non_string(s) || s.chars().any(|c| c.is_control()) {
        return double_quoted(s);
    }
    if plain_allowed(s) {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', "''"))
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether a plain scalar `s` would be read as null, a boolean or a number (YAML 1.2 core
/// schema as go-yaml v3 resolves it). yq encodes nodes, so go-yaml's quoting of YAML 1.1
/// booleans (`yes`, `on`), which applies to Go strings only, does not apply.
fn resolves_to_non_string(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", ".inf", ".Inf", ".INF", "-.inf", "-.Inf",
        "-.INF", "+.inf", ".nan", ".NaN", ".NAN",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let t = s.strip_prefix(['-', '+']).unwrap_or(s);
    if t.is_empty() {
        return false;
    }
    let t = t.replace('_', "");
    if let Some(hex) = t.strip_prefix("0x") {
        return !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit());
    }
    if let Some(oct) = t.strip_prefix("0o") {
        return !oct.is_empty() && oct.chars().all(|c| c.is_digit(8));
    }
    if t.chars().all(|c| c.is_ascii_digit()) {
        return true;
    }
    // Floats: digits with one '.', optional exponent.
    let (mantissa, exp) = match t.find(['e', 'E']) {
        Some(i) => (&t[..i], Some(&t[i + 1..])),
        None => (&t[..], None),
    };
    let mantissa_ok = mantissa.chars().filter(|c| *c == '.').count() <= 1
        && mantissa.chars().all(|c| c.is_ascii_digit() || c == '.')
        && mantissa.chars().any(|c| c.is_ascii_digit());
    let exp_ok = exp.is_none_or(|e| {
        let e = e.strip_prefix(['-', '+']).unwrap_or(e);
        !e.is_empty() && e.chars().all(|c| c.is_ascii_digit())
    });
    mantissa_ok && exp_ok && (mantissa.contains('.') || exp.is_some())
}

/// libyaml's `yaml_emitter_analyze_scalar`, as far as it decides plain block style.
fn plain_allowed(s: &str) -> bool {
    let first = s.chars().next().unwrap_or(' ');
    if matches!(first, '-' | '?' | ':') {
        // `-x` is fine, `- x` and a lone `-` are not.
        let second = s.chars().nth(1);
        if second.is_none_or(|c| c == ' ') {
            return false;
        }
    } else if "[]{},#&*!|>'\"%@`".contains(first) {
        return false;
    }
    if s.starts_with(' ') || s.ends_with(' ') || s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') || s.contains('\t') {
        return false;
    }
    !s.chars().any(|c| !(c == ' ' || c.is_alphanumeric() || c.is_ascii_punctuation() || (!c.is_ascii() && !c.is_control())))
}

/// JSON the way yq prints it: `indent` spaces (0: one line).
pub fn json(value: &Value, indent: usize) -> anyhow::Result<String> {
    if indent == 0 {
        return Ok(format!("{}\n", serde_json::to_string(value)?));
    }
    let pad = " ".repeat(indent);
    let mut buf = Vec::new();
    let formatter = serde_json::ser::PrettyFormatter::with_indent(pad.as_bytes());
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, formatter);
    serde::Serialize::serialize(value, &mut ser)?;
    buf.push(b'\n');
    Ok(String::from_utf8(buf)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn block_style_like_yq() {
        let v = json!({"a": {"b": [1, "two", {"c": true, "d": [[1, 2], []]}]}, "e": {}, "f": null});
        assert_eq!(
            yaml(&v, 2),
            "a:\n  b:\n    - 1\n    - two\n    - c: true\n      d:\n        - - 1\n          - 2\n        - []\ne: {}\nf: null\n"
        );
    }

    #[test]
    fn quoting() {
        let v = json!({"s": ["true", "1", "1.5", "yes", "", "a: b", "- x", "-x", "#c", "plain text", "0x1F", "v1.2.3", "/bin/sh"]});
        assert_eq!(
            yaml(&v, 2),
            "s:\n  - \"true\"\n  - \"1\"\n  - \"1.5\"\n  - yes\n  - \"\"\n  - 'a: b'\n  - '- x'\n  - -x\n  - '#c'\n  - plain text\n  - \"0x1F\"\n  - v1.2.3\n  - /bin/sh\n"
        );
    }

    #[test]
    fn literal_blocks() {
        assert_eq!(yaml(&json!({"a": "x\ny\n"}), 2), "a: |\n  x\n  y\n");
        assert_eq!(yaml(&json!({"a": "x\ny"}), 2), "a: |-\n  x\n  y\n");
    }

    #[test]
    fn json_indent() {
        assert_eq!(json(&json!({"a": [1]}), 2).unwrap(), "{\n  \"a\": [\n    1\n  ]\n}\n");
        assert_eq!(json(&json!({"a": [1]}), 0).unwrap(), "{\"a\":[1]}\n");
    }
}
