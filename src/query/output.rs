//! Query output formats: `label`, `label_kind`, `package`, `location`, `build`, `graph`,
//! `json`; and `--order_output`, the order targets print in.

use std::collections::{BTreeSet, HashMap};
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
    Graph,
    Json,
}

/// Bazel's `--order_output`: the order results print in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OrderOutput {
    /// `deps` for `--output=graph`, `full` for every other output (Bazel's default).
    Auto,
    /// Dependency order: a target before its dependencies (ocib prints the `full` order, one
    /// of the orders Bazel may print).
    Deps,
    /// Dependency order, ties broken by label: deterministic.
    Full,
    /// No order asked for: ocib prints label order.
    No,
}

/// How `render` draws the result.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    pub format: OutputFormat,
    pub order: OrderOutput,
    /// `--graph:factored`: draw targets with the same predecessors and successors as one
    /// node.
    pub graph_factored: bool,
}

/// The targets of `targets` in the order `order` asks for.
///
/// Bazel's `full` order (`--order_output` help, Bazel 4.2.3): nodes sorted by label; each,
/// if not yet visited, starts a depth-first search that visits unvisited dependencies in
/// label order; the nodes print in the reverse of the order the search finished them. A
/// target comes before its dependencies, and `somepath` reads as a path from start to end.
pub fn ordered(engine: &QueryEngine, targets: &TargetSet, order: OrderOutput) -> Vec<Label> {
    if order == OrderOutput::No {
        return targets.iter().cloned().collect();
    }
    let labels: Vec<Label> = targets.iter().cloned().collect();
    let positions = engine.dependency_positions(&labels);
    // Each label moved to its place, not cloned again (70,000 of them for `//...` at 5,000
    // packages).
    let mut slots: Vec<Option<Label>> = labels.into_iter().map(Some).collect();
    reverse_postorder(&positions).into_iter().filter_map(|i| slots[i].take()).collect()
}

/// Reverse postorder of a depth-first search from each node in turn (`0..n`), successors in
/// the order `successors[node]` lists them. Iterative: a chain of dependencies may be
/// thousands long.
fn reverse_postorder(successors: &[Vec<usize>]) -> Vec<usize> {
    let mut visited = vec![false; successors.len()];
    let mut finished = Vec::with_capacity(successors.len());
    for root in 0..successors.len() {
        if std::mem::replace(&mut visited[root], true) {
            continue;
        }
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        while let Some((node, next)) = stack.last_mut() {
            match successors[*node].get(*next) {
                Some(&succ) => {
                    *next += 1;
                    if !std::mem::replace(&mut visited[succ], true) {
                        stack.push((succ, 0));
                    }
                }
                None => {
                    finished.push(*node);
                    stack.pop();
                }
            }
        }
    }
    finished.reverse();
    finished
}

/// Renders the result set in the order and format `options` ask for.
pub fn render(engine: &QueryEngine, targets: &TargetSet, options: RenderOptions) -> Result<String, QueryError> {
    let mut out = String::new();
    let format = options.format;
    if format == OutputFormat::Graph {
        return Ok(graph(engine, targets, options.graph_factored));
    }
    // Bazel prints packages sorted whatever the order; other outputs follow the order.
    let order = if format == OutputFormat::Package { OrderOutput::No } else { options.order };
    let ordered = ordered(engine, targets, order);
    let targets = &ordered;
    match format {
        OutputFormat::Graph => {}
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
                        TargetRef::Rule(rule) | TargetRef::Generated { rule, .. } => {
                            let implicit: Vec<Label> =
                                if rule.kind == "test_suite" { super::eval::implicit_tests(&pkg, rule).collect() } else { Vec::new() };
                            out.push_str(&build_form(rule, &implicit));
                        }
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

/// `--output=graph`: Graphviz dot, as Bazel's (4.2.3) — a `node [shape=box]` line, then each
/// node followed by its edges. Factored, targets with the same predecessors and successors in
/// the result are one node whose name lists them, one a line (`\n`). Nodes print in
/// dependency order, ties by label (Bazel's default `deps` order for this output leaves ties in
/// hash order); ocib draws no node-size limit (Bazel's `--graph:node_limit`).
fn graph(engine: &QueryEngine, targets: &TargetSet, factored: bool) -> String {
    let labels: Vec<Label> = targets.iter().cloned().collect();
    let successors = engine.dependency_positions(&labels);
    let mut predecessors = vec![Vec::new(); labels.len()];
    for (from, tos) in successors.iter().enumerate() {
        for &to in tos {
            predecessors[to].push(from);
        }
    }
    // Each target's node, numbered in label order of the node's first target.
    let mut node_of = vec![0; labels.len()];
    let mut members: Vec<Vec<usize>> = Vec::new();
    let mut by_neighbours: HashMap<(&[usize], &[usize]), usize> = HashMap::new();
    for target in 0..labels.len() {
        let node = if factored {
            *by_neighbours.entry((&predecessors[target], &successors[target])).or_insert(members.len())
        } else {
            members.len()
        };
        if node == members.len() {
            members.push(Vec::new());
        }
        members[node].push(target);
        node_of[target] = node;
    }
    let names: Vec<String> = members.iter().map(|m| m.iter().map(|&t| labels[t].to_string()).collect::<Vec<_>>().join("\\n")).collect();
    let mut node_successors: Vec<Vec<usize>> = vec![Vec::new(); members.len()];
    for (target, tos) in successors.iter().enumerate() {
        node_successors[node_of[target]].extend(tos.iter().map(|&to| node_of[to]));
    }
    for list in &mut node_successors {
        list.sort_unstable();
        list.dedup();
    }
    let mut out = String::from("digraph mygraph {\n  node [shape=box];\n");
    for node in reverse_postorder(&node_successors) {
        let name = &names[node];
        let _ = writeln!(out, "  \"{name}\"");
        for &to in &node_successors[node] {
            let _ = writeln!(out, "  \"{name}\" -> \"{}\"", names[to]);
        }
    }
    out.push_str("}\n");
    out
}

/// The `--output=build` form: only attributes set in the BUILD file, common ones first,
/// then the macro that generated the rule, then the rest in schema order; an empty
/// `test_suite`'s `_implicit_tests`; then, as Bazel 4.2.3 prints them, the call stack that
/// instantiated the rule (`# Rule NAME instantiated at (most recent call last):`) and, for a
/// Starlark rule, the one that defined its kind (`# Rule KIND defined at ...`).
pub fn build_form(rule: &Rule, implicit_tests: &[Label]) -> String {
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
    if !implicit_tests.is_empty() {
        line(&mut out, "_implicit_tests", &AttrValue::LabelList(implicit_tests.to_vec()));
    }
    out.push_str(")\n");
    write_stack(&mut out, &format!("Rule {} instantiated at", rule.label.name), &rule.call_stack);
    write_stack(&mut out, &format!("Rule {} defined at", rule.kind), &rule.definition_stack);
    out.push('\n');
    out
}

/// A call stack as Bazel's `--output=build` comments: a `# WHAT (most recent call last):`
/// line, then one `#   LOCATION in FUNCTION` line a frame, locations padded to one width.
fn write_stack(out: &mut String, what: &str, stack: &[crate::graph::StackFrame]) {
    if stack.is_empty() {
        return;
    }
    let _ = writeln!(out, "# {what} (most recent call last):");
    let locations: Vec<String> = stack.iter().map(|f| f.location.to_string()).collect();
    let width = locations.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    for (location, frame) in locations.iter().zip(stack) {
        let _ = writeln!(out, "#   {location:<width$} in {}", frame.function);
    }
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
