//! Query output formats: `label`, `label_kind`, `package`, `location`, `build`, `json`.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde_json::{Map, Value as Json, json};

use super::QueryError;
use super::eval::{QueryEngine, TargetSet};
use crate::graph::label::Label;
use crate::graph::{AttrValue, Package, Rule, TargetRef};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum OutputFormat {
    Label,
    LabelKind,
    Package,
    Location,
    Build,
    Json,
}

/// Renders the result set. Targets print in label order (repository, package, name).
pub fn render(engine: &QueryEngine, targets: &TargetSet, format: OutputFormat) -> Result<String, QueryError> {
    let mut out = String::new();
    match format {
        OutputFormat::Label => {
            for l in targets {
                let _ = writeln!(out, "{l}");
            }
        }
        OutputFormat::Package => {
            let pkgs: BTreeSet<_> = targets.iter().map(Label::package_id).collect();
            for p in pkgs {
                let _ = if p.repo.is_empty() { writeln!(out, "{}", p.package) } else { writeln!(out, "@{}//{}", p.repo, p.package) };
            }
        }
        OutputFormat::LabelKind | OutputFormat::Location | OutputFormat::Build => {
            for label in targets {
                let pkg = engine.package(&label.package_id())?;
                let Some(target) = pkg.target(&label.name) else { continue };
                match format {
                    OutputFormat::LabelKind => {
                        let _ = writeln!(out, "{} {}", target.kind(), label);
                    }
                    OutputFormat::Location => {
                        let _ = writeln!(out, "{}: {} {}", location(&pkg, &target), target.kind(), label);
                    }
                    _ => match target {
                        TargetRef::Rule(rule) | TargetRef::Generated { rule, .. } => out.push_str(&build_form(rule)),
                        // Bazel prints nothing for source files.
                        TargetRef::Source { .. } => {}
                    },
                }
            }
        }
        OutputFormat::Json => {
            let mut items = Vec::new();
            for label in targets {
                let pkg = engine.package(&label.package_id())?;
                let Some(target) = pkg.target(&label.name) else { continue };
                items.push(json_form(&pkg, &target));
            }
            out = serde_json::to_string_pretty(&items).unwrap_or_default();
            out.push('\n');
        }
    }
    Ok(out)
}

/// `path:line:col` of a target: a rule's call site, a generated file's rule, a source
/// file's first referencing rule (or just the BUILD file).
fn location(pkg: &Package, target: &TargetRef) -> String {
    let rule_loc = |r: &Rule| format!("{}:{}:{}", r.location.file.display(), r.location.line, r.location.column);
    match target {
        TargetRef::Rule(r) | TargetRef::Generated { rule: r, .. } => rule_loc(r),
        TargetRef::Source { label } => {
            let mut referencing: Vec<&Rule> = pkg.rules.values().filter(|r| r.deps().contains(label)).collect();
            referencing.sort_by_key(|r| (r.location.line, r.location.column));
            match referencing.first() {
                Some(r) => rule_loc(r),
                None => pkg.build_file.display().to_string(),
            }
        }
    }
}

/// The `--output=build` form: only attributes set in the BUILD file, common ones first,
/// then the macro that generated the rule, then the rest in schema order.
pub fn build_form(rule: &Rule) -> String {
    let mut out = String::new();
    let loc = &rule.location;
    let _ = writeln!(out, "# {}:{}:{}", loc.file.display(), loc.line, loc.column);
    let _ = writeln!(out, "{}(", rule.kind);
    let mut printed = BTreeSet::new();
    let line = |out: &mut String, name: &str, value: &AttrValue| {
        let value = match (name, value) {
            // Bazel prints these two sorted.
            ("tags", AttrValue::StringList(v)) => {
                let mut v = v.clone();
                v.sort();
                AttrValue::StringList(v)
            }
            ("visibility", AttrValue::LabelList(v)) => {
                let mut v = v.clone();
                v.sort();
                AttrValue::LabelList(v)
            }
            _ => value.clone(),
        };
        let _ = writeln!(out, "  {name} = {value},");
    };
    let schema_order: Vec<&str> = rule.schema.attrs.iter().map(|a| a.name.as_str()).collect();
    for name in ["name", "visibility", "tags", "testonly"] {
        if let Some(v) = rule.attrs.get(name) {
            line(&mut out, name, v);
            printed.insert(name.to_owned());
        }
    }
    if let Some(g) = &rule.generator {
        line(&mut out, "generator_name", &AttrValue::String(g.name.clone()));
        line(&mut out, "generator_function", &AttrValue::String(g.function.clone()));
        line(&mut out, "generator_location", &AttrValue::String(g.location.clone()));
    }
    for name in schema_order.iter().copied().chain(rule.attrs.keys().map(String::as_str)) {
        if printed.contains(name) {
            continue;
        }
        if let Some(v) = rule.attrs.get(name) {
            line(&mut out, name, v);
            printed.insert(name.to_owned());
        }
    }
    out.push_str(")\n\n");
    out
}

fn json_form(pkg: &Package, target: &TargetRef) -> Json {
    let mut obj = Map::new();
    obj.insert("label".into(), json!(target.label().to_string()));
    obj.insert("kind".into(), json!(target.kind()));
    obj.insert("location".into(), json!(location(pkg, target)));
    if let TargetRef::Rule(rule) = target {
        let attrs: Map<String, Json> = rule.attrs.iter().map(|(k, v)| (k.clone(), attr_json(v))).collect();
        obj.insert("attributes".into(), Json::Object(attrs));
        if let Some(g) = &rule.generator {
            obj.insert("generator".into(), json!({"name": g.name, "function": g.function, "location": g.location}));
        }
    }
    if let TargetRef::Generated { rule, .. } = target {
        obj.insert("generating_rule".into(), json!(rule.label.to_string()));
    }
    Json::Object(obj)
}

fn attr_json(v: &AttrValue) -> Json {
    match v {
        AttrValue::None => Json::Null,
        AttrValue::Bool(b) => json!(b),
        AttrValue::Int(i) => json!(i),
        AttrValue::String(s) => json!(s),
        AttrValue::Label(l) => json!(l.to_string()),
        AttrValue::StringList(l) => json!(l),
        AttrValue::IntList(l) => json!(l),
        AttrValue::LabelList(l) => json!(l.iter().map(|x| x.to_string()).collect::<Vec<_>>()),
        AttrValue::StringDict(d) => Json::Object(d.iter().map(|(k, v)| (k.clone(), json!(v))).collect()),
        AttrValue::StringListDict(d) => Json::Object(d.iter().map(|(k, v)| (k.clone(), json!(v))).collect()),
        AttrValue::LabelKeyedStringDict(d) => Json::Object(d.iter().map(|(k, v)| (k.to_string(), json!(v))).collect()),
        AttrValue::StringKeyedLabelDict(d) => Json::Object(d.iter().map(|(k, v)| (k.clone(), json!(v.to_string()))).collect()),
        AttrValue::Select(_) | AttrValue::Raw(_) => json!(v.to_string()),
    }
}
