//! The target graph produced by loading: packages, rules with typed attribute values, source
//! files and generated files; below it, labels (`label`), target patterns (`pattern`) and rule
//! schemas (`schema`). Every phase uses these types; this module imports no other.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

pub mod label;
pub mod pattern;
pub mod schema;
pub mod visibility;

use label::{Label, PackageId};
use schema::RuleSchema;

/// An untyped Starlark value as a rule call received it, before the schema gives it a type.
#[derive(Debug, Clone, PartialEq)]
pub enum Raw {
    None,
    Bool(bool),
    Int(i64),
    String(String),
    /// A `Label(...)` object: already resolved where it was created.
    Label(Label),
    List(Vec<Raw>),
    Dict(Vec<(Raw, Raw)>),
    /// `select({...}) + [...]`: a concatenation of plain values and selects.
    Select(Vec<SelectPart<Raw>>),
}

/// One operand of a concatenation that contains `select()`.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectPart<T> {
    Plain(T),
    Select { branches: Vec<(String, T)>, no_match_error: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrType {
    Bool,
    Int,
    String,
    Label,
    StringList,
    IntList,
    LabelList,
    StringDict,
    StringListDict,
    LabelKeyedStringDict,
    StringKeyedLabelDict,
    /// A file this rule creates, named relative to its package.
    Output,
    OutputList,
    /// Kept as written: rules of unknown rule sets, `attr.*` kinds ocib does not type.
    Any,
}

impl AttrType {
    pub fn describe(self) -> &'static str {
        match self {
            AttrType::Bool => "boolean",
            AttrType::Int => "int",
            AttrType::String => "string",
            AttrType::Label => "label",
            AttrType::StringList => "list(string)",
            AttrType::IntList => "list(int)",
            AttrType::LabelList => "list(label)",
            AttrType::StringDict => "dict(string, string)",
            AttrType::StringListDict => "dict(string, list(string))",
            AttrType::LabelKeyedStringDict => "dict(label, string)",
            AttrType::StringKeyedLabelDict => "dict(string, label)",
            AttrType::Output => "output",
            AttrType::OutputList => "list(output)",
            AttrType::Any => "any",
        }
    }

    /// The value an unset attribute of this type has when the schema names no default.
    pub fn zero(self) -> AttrValue {
        match self {
            AttrType::Bool => AttrValue::Bool(false),
            AttrType::Int => AttrValue::Int(0),
            AttrType::String => AttrValue::String(String::new()),
            AttrType::Label | AttrType::Output | AttrType::Any => AttrValue::None,
            AttrType::StringList => AttrValue::StringList(vec![]),
            AttrType::IntList => AttrValue::IntList(vec![]),
            AttrType::LabelList | AttrType::OutputList => AttrValue::LabelList(vec![]),
            AttrType::StringDict => AttrValue::StringDict(vec![]),
            AttrType::StringListDict => AttrValue::StringListDict(vec![]),
            AttrType::LabelKeyedStringDict => AttrValue::LabelKeyedStringDict(vec![]),
            AttrType::StringKeyedLabelDict => AttrValue::StringKeyedLabelDict(vec![]),
        }
    }

    /// Whether values of this type are dependency edges.
    pub fn is_dep(self) -> bool {
        matches!(self, AttrType::Label | AttrType::LabelList | AttrType::LabelKeyedStringDict | AttrType::StringKeyedLabelDict)
    }

    pub fn is_output(self) -> bool {
        matches!(self, AttrType::Output | AttrType::OutputList)
    }
}

/// A typed attribute value.
#[derive(Debug, Clone, PartialEq)]
pub enum AttrValue {
    None,
    Bool(bool),
    Int(i64),
    String(String),
    Label(Label),
    StringList(Vec<String>),
    IntList(Vec<i64>),
    LabelList(Vec<Label>),
    StringDict(Vec<(String, String)>),
    StringListDict(Vec<(String, Vec<String>)>),
    LabelKeyedStringDict(Vec<(Label, String)>),
    StringKeyedLabelDict(Vec<(String, Label)>),
    /// A concatenation containing `select()`; resolved in analysis.
    Select(Vec<SelectPart<AttrValue>>),
    /// An untyped value (see [`AttrType::Any`]).
    Raw(Raw),
}

/// Where resolution of a string label happens and how repository names map.
pub struct LabelContext<'a> {
    pub package: &'a PackageId,
    pub map_repo: &'a dyn Fn(&str) -> Option<String>,
}

impl LabelContext<'_> {
    pub fn label(&self, s: &str) -> Result<Label, String> {
        Label::parse(s, self.package, self.map_repo).map_err(|e| e.to_string())
    }
}

impl Raw {
    fn type_name(&self) -> &'static str {
        match self {
            Raw::None => "NoneType",
            Raw::Bool(_) => "bool",
            Raw::Int(_) => "int",
            Raw::String(_) => "string",
            Raw::Label(_) => "Label",
            Raw::List(_) => "list",
            Raw::Dict(_) => "dict",
            Raw::Select(_) => "select",
        }
    }
}

impl fmt::Display for Raw {
    /// Starlark-like rendering, used in error messages and for untyped attributes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Raw::None => write!(f, "None"),
            Raw::Bool(b) => write!(f, "{}", if *b { "True" } else { "False" }),
            Raw::Int(i) => write!(f, "{i}"),
            Raw::String(s) => write!(f, "{}", quote(s)),
            Raw::Label(l) => write!(f, "Label({})", quote(&l.to_string())),
            Raw::List(items) => {
                write!(f, "[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{item}")?;
                }
                write!(f, "]")
            }
            Raw::Dict(entries) => {
                write!(f, "{{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{k}: {v}")?;
                }
                write!(f, "}}")
            }
            Raw::Select(parts) => write_select(f, parts),
        }
    }
}

fn write_select<T: fmt::Display>(f: &mut fmt::Formatter<'_>, parts: &[SelectPart<T>]) -> fmt::Result {
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            write!(f, " + ")?;
        }
        match part {
            SelectPart::Plain(v) => write!(f, "{v}")?,
            SelectPart::Select { branches, .. } => {
                write!(f, "select({{")?;
                for (j, (k, v)) in branches.iter().enumerate() {
                    if j > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{}: {v}", quote(k))?;
                }
                write!(f, "}})")?;
            }
        }
    }
    Ok(())
}

/// A Starlark string literal.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl AttrValue {
    /// `visibility`: a label list in which, unlike every other one, a label may repeat (Bazel
    /// 4.2.3 accepts `visibility = ["//:__subpackages__", "//:__subpackages__"]`, which macros
    /// that append a default produce); the repeats are dropped.
    pub fn coerce_visibility(raw: &Raw, ctx: &LabelContext) -> Result<AttrValue, String> {
        let Raw::List(items) = raw else { return AttrValue::coerce(AttrType::LabelList, raw, ctx) };
        let mut labels: Vec<Label> = Vec::with_capacity(items.len());
        for item in items {
            if let AttrValue::Label(label) = AttrValue::coerce(AttrType::Label, item, ctx)?
                && !labels.contains(&label)
            {
                labels.push(label);
            }
        }
        Ok(AttrValue::LabelList(labels))
    }

    /// Gives `raw` the type `ty`, resolving labels in `ctx`. The error says what was expected
    /// and what was found; the caller adds the target and attribute.
    pub fn coerce(ty: AttrType, raw: &Raw, ctx: &LabelContext) -> Result<AttrValue, String> {
        if let Raw::Select(parts) = raw {
            let mut typed = Vec::with_capacity(parts.len());
            for part in parts {
                typed.push(match part {
                    SelectPart::Plain(v) => SelectPart::Plain(AttrValue::coerce(ty, v, ctx)?),
                    SelectPart::Select { branches, no_match_error } => {
                        let mut out = Vec::with_capacity(branches.len());
                        for (cond, v) in branches {
                            // Condition keys are labels, resolved like any other.
                            let key = if cond == "//conditions:default" { cond.clone() } else { ctx.label(cond)?.to_string() };
                            out.push((key, AttrValue::coerce(ty, v, ctx)?));
                        }
                        SelectPart::Select { branches: out, no_match_error: no_match_error.clone() }
                    }
                });
            }
            return Ok(AttrValue::Select(typed));
        }
        let mismatch = || format!("expected a value of type '{}', got {} {}", ty.describe(), raw.type_name(), truncate(&raw.to_string()));
        let string = |r: &Raw| match r {
            Raw::String(s) => Ok(s.clone()),
            _ => Err(mismatch()),
        };
        let label = |r: &Raw| match r {
            Raw::String(s) => ctx.label(s),
            Raw::Label(l) => Ok(l.clone()),
            _ => Err(mismatch()),
        };
        let list = |r: &Raw| -> Result<Vec<Raw>, String> {
            match r {
                Raw::List(items) => Ok(items.clone()),
                _ => Err(mismatch()),
            }
        };
        let dict = |r: &Raw| -> Result<Vec<(Raw, Raw)>, String> {
            match r {
                Raw::Dict(entries) => Ok(entries.clone()),
                _ => Err(mismatch()),
            }
        };
        Ok(match ty {
            AttrType::Any => AttrValue::Raw(raw.clone()),
            AttrType::Bool => match raw {
                Raw::Bool(b) => AttrValue::Bool(*b),
                // Bazel accepts 0 and 1 for booleans.
                Raw::Int(0) => AttrValue::Bool(false),
                Raw::Int(1) => AttrValue::Bool(true),
                _ => return Err(mismatch()),
            },
            AttrType::Int => match raw {
                Raw::Int(i) => AttrValue::Int(*i),
                Raw::Bool(b) => AttrValue::Int(*b as i64),
                _ => return Err(mismatch()),
            },
            AttrType::String => AttrValue::String(string(raw)?),
            AttrType::Label => match raw {
                Raw::None => AttrValue::None,
                r => AttrValue::Label(label(r)?),
            },
            AttrType::Output => match raw {
                Raw::None => AttrValue::None,
                Raw::String(s) => AttrValue::Label(output_label(s, ctx)?),
                _ => return Err(mismatch()),
            },
            AttrType::StringList => AttrValue::StringList(list(raw)?.iter().map(string).collect::<Result<_, _>>()?),
            AttrType::IntList => AttrValue::IntList(
                list(raw)?
                    .iter()
                    .map(|r| match r {
                        Raw::Int(i) => Ok(*i),
                        _ => Err(mismatch()),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            AttrType::LabelList => AttrValue::LabelList(dedup_check(list(raw)?.iter().map(label).collect::<Result<_, _>>()?)?),
            AttrType::OutputList => AttrValue::LabelList(
                list(raw)?
                    .iter()
                    .map(|r| match r {
                        Raw::String(s) => output_label(s, ctx),
                        _ => Err(mismatch()),
                    })
                    .collect::<Result<_, _>>()?,
            ),
            AttrType::StringDict => {
                AttrValue::StringDict(dict(raw)?.iter().map(|(k, v)| Ok((string(k)?, string(v)?))).collect::<Result<_, String>>()?)
            }
            AttrType::StringListDict => AttrValue::StringListDict(
                dict(raw)?.iter().map(|(k, v)| Ok((string(k)?, list(v)?.iter().map(string).collect::<Result<_, _>>()?))).collect::<Result<
                    _,
                    String,
                >>(
                )?,
            ),
            AttrType::LabelKeyedStringDict => {
                AttrValue::LabelKeyedStringDict(dict(raw)?.iter().map(|(k, v)| Ok((label(k)?, string(v)?))).collect::<Result<_, String>>()?)
            }
            AttrType::StringKeyedLabelDict => {
                AttrValue::StringKeyedLabelDict(dict(raw)?.iter().map(|(k, v)| Ok((string(k)?, label(v)?))).collect::<Result<_, String>>()?)
            }
        })
    }

    /// Every label this value names, in every branch of any select.
    pub fn labels(&self) -> Vec<&Label> {
        match self {
            AttrValue::Label(l) => vec![l],
            AttrValue::LabelList(ls) => ls.iter().collect(),
            AttrValue::LabelKeyedStringDict(d) => d.iter().map(|(l, _)| l).collect(),
            AttrValue::StringKeyedLabelDict(d) => d.iter().map(|(_, l)| l).collect(),
            AttrValue::Select(parts) => parts
                .iter()
                .flat_map(|p| match p {
                    SelectPart::Plain(v) => v.labels(),
                    SelectPart::Select { branches, .. } => branches.iter().flat_map(|(_, v)| v.labels()).collect(),
                })
                .collect(),
            _ => vec![],
        }
    }

    /// The labels of `select()` conditions this value depends on (they are deps in Bazel).
    pub fn condition_labels(&self) -> Vec<Label> {
        let AttrValue::Select(parts) = self else { return vec![] };
        parts
            .iter()
            .flat_map(|p| match p {
                SelectPart::Select { branches, .. } => branches
                    .iter()
                    .filter(|(k, _)| k != "//conditions:default")
                    .filter_map(|(k, _)| Label::parse_absolute(k).ok())
                    .collect(),
                SelectPart::Plain(_) => vec![],
            })
            .collect()
    }

    /// The form `query attr()` matches against: lists as `[a, b]`, labels absolute.
    pub fn query_string(&self) -> String {
        fn list<T: fmt::Display>(items: &[T]) -> String {
            let parts: Vec<String> = items.iter().map(|i| i.to_string()).collect();
            format!("[{}]", parts.join(", "))
        }
        fn dict<K: fmt::Display, V: fmt::Display>(items: &[(K, V)]) -> String {
            let parts: Vec<String> = items.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("{{{}}}", parts.join(", "))
        }
        match self {
            AttrValue::None => "null".into(),
            AttrValue::Bool(b) => (if *b { "1" } else { "0" }).into(),
            AttrValue::Int(i) => i.to_string(),
            AttrValue::String(s) => s.clone(),
            AttrValue::Label(l) => l.to_string(),
            AttrValue::StringList(v) => list(v),
            AttrValue::IntList(v) => list(v),
            AttrValue::LabelList(v) => list(v),
            AttrValue::StringDict(d) => dict(d),
            AttrValue::StringListDict(d) => {
                let parts: Vec<String> = d.iter().map(|(k, v)| format!("{k}={}", list(v))).collect();
                format!("{{{}}}", parts.join(", "))
            }
            AttrValue::LabelKeyedStringDict(d) => dict(d),
            AttrValue::StringKeyedLabelDict(d) => dict(d),
            AttrValue::Select(_) | AttrValue::Raw(_) => self.to_string(),
        }
    }
}

fn truncate(s: &str) -> String {
    if s.len() > 80 {
        let mut end = 77;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}...", &s[..end])
    } else {
        s.to_owned()
    }
}

/// An output's label. Bazel's output converter takes a file name or a label of the rule's
/// own package (`//pkg:file`, `:file`); a label of another package is an error with Bazel's
/// message (BuildType.OUTPUT: "label '...' is not in the current package").
fn output_label(s: &str, ctx: &LabelContext) -> Result<Label, String> {
    let label = ctx.label(s)?;
    if label.package_id() != *ctx.package {
        return Err(format!("label '{s}' is not in the current package"));
    }
    Ok(label)
}

fn dedup_check(labels: Vec<Label>) -> Result<Vec<Label>, String> {
    let mut seen = BTreeSet::new();
    for l in &labels {
        if !seen.insert(l) {
            return Err(format!("label '{l}' is duplicated"));
        }
    }
    Ok(labels)
}

impl fmt::Display for AttrValue {
    /// Starlark source form, as `query --output=build` prints values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list<T, F: Fn(&T) -> String>(f: &mut fmt::Formatter<'_>, items: &[T], item: F) -> fmt::Result {
            let parts: Vec<String> = items.iter().map(item).collect();
            write!(f, "[{}]", parts.join(", "))
        }
        fn dict<K, V, F: Fn(&K, &V) -> String>(f: &mut fmt::Formatter<'_>, items: &[(K, V)], entry: F) -> fmt::Result {
            let parts: Vec<String> = items.iter().map(|(k, v)| entry(k, v)).collect();
            write!(f, "{{{}}}", parts.join(", "))
        }
        match self {
            AttrValue::None => write!(f, "None"),
            AttrValue::Bool(b) => write!(f, "{}", if *b { "True" } else { "False" }),
            AttrValue::Int(i) => write!(f, "{i}"),
            AttrValue::String(s) => write!(f, "{}", quote(s)),
            AttrValue::Label(l) => write!(f, "{}", quote(&l.to_string())),
            AttrValue::StringList(v) => list(f, v, |s| quote(s)),
            AttrValue::IntList(v) => list(f, v, |i| i.to_string()),
            AttrValue::LabelList(v) => list(f, v, |l| quote(&l.to_string())),
            AttrValue::StringDict(d) => dict(f, d, |k, v| format!("{}: {}", quote(k), quote(v))),
            AttrValue::StringListDict(d) => dict(f, d, |k, v| {
                let items: Vec<String> = v.iter().map(|s| quote(s)).collect();
                format!("{}: [{}]", quote(k), items.join(", "))
            }),
            AttrValue::LabelKeyedStringDict(d) => dict(f, d, |k, v| format!("{}: {}", quote(&k.to_string()), quote(v))),
            AttrValue::StringKeyedLabelDict(d) => dict(f, d, |k, v| format!("{}: {}", quote(k), quote(&v.to_string()))),
            AttrValue::Select(parts) => write_select(f, parts),
            AttrValue::Raw(r) => write!(f, "{r}"),
        }
    }
}

/// A place in a BUILD or .bzl file, 1-based as Bazel prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.column)
    }
}

/// The macro (if any) whose call in the BUILD file created a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generator {
    /// `name` argument of the outermost macro call.
    pub name: String,
    /// The macro's function name.
    pub function: String,
    /// Location of the macro call in the BUILD file, relative to the workspace root.
    pub location: String,
}

/// The definition of a Starlark `rule()` kind, opaque here: loading puts the frozen .bzl
/// value in it, the Starlark rule set's analysis takes it out. Native kinds have none.
#[derive(Clone)]
pub struct RuleDefinition(pub Arc<dyn std::any::Any + Send + Sync>);

impl std::fmt::Debug for RuleDefinition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RuleDefinition")
    }
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub label: Label,
    pub kind: String,
    pub schema: Arc<RuleSchema>,
    /// Attributes set explicitly, in the order of the call.
    pub attrs: BTreeMap<String, AttrValue>,
    /// Where the rule was instantiated (the innermost call: in the macro if there was one).
    pub location: Location,
    pub generator: Option<Generator>,
    /// The calls that created the rule, outermost first (the BUILD file's call, then each
    /// macro's): what Bazel's `query --output=build` prints as "instantiated at".
    pub call_stack: Vec<StackFrame>,
    /// Where the rule's kind was made by `rule()` (outermost first), for kinds defined in a
    /// .bzl file of the workspace or a local repository: Bazel's "Rule KIND defined at".
    pub definition_stack: Vec<StackFrame>,
    /// For kinds defined with Starlark `rule()`: the definition analysis runs.
    pub definition: Option<RuleDefinition>,
}

/// One call of a rule's instantiation stack: where the call is, and the function it is in
/// (`<toplevel>` for the BUILD file's own statements).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackFrame {
    /// The call's `(`, as Bazel locates calls.
    pub location: Location,
    /// The function that makes the call.
    pub function: String,
}

impl Rule {
    /// The attribute's value, or its default when not set explicitly.
    pub fn attr(&self, name: &str) -> Option<AttrValue> {
        if let Some(v) = self.attrs.get(name) {
            return Some(v.clone());
        }
        self.schema.attr(name).map(|spec| spec.default.clone())
    }

    /// The `tags`, as given or the kind's default (see `SchemaBuilder::manual_by_default`).
    pub fn tags(&self) -> Vec<String> {
        match self.attr("tags") {
            Some(AttrValue::StringList(t)) => t.clone(),
            _ => vec![],
        }
    }

    pub fn is_test(&self) -> bool {
        self.schema.test
    }

    /// Dependency labels (label-typed attributes, including all select branches and the
    /// select conditions), deduplicated and sorted.
    pub fn deps(&self) -> BTreeSet<Label> {
        let mut out = BTreeSet::new();
        self.for_each_dep(|l| {
            out.insert(l.clone());
        });
        out
    }

    /// Calls `f` with each dependency label (as [`Rule::deps`], unsorted and possibly
    /// repeated), without copying them: for walks over every target of a large result.
    pub fn for_each_dep(&self, mut f: impl FnMut(&Label)) {
        for (name, value) in &self.attrs {
            let is_dep = match self.schema.attr(name) {
                Some(spec) => spec.ty.is_dep() && !spec.nodep,
                None => false,
            };
            if is_dep {
                value.labels().into_iter().for_each(&mut f);
            }
            if matches!(value, AttrValue::Select(_)) {
                value.condition_labels().iter().for_each(&mut f);
            }
        }
    }

    /// Labels of the files this rule declares as outputs.
    pub fn outputs(&self) -> Vec<Label> {
        let mut out = Vec::new();
        for (name, value) in &self.attrs {
            if self.schema.attr(name).is_some_and(|s| s.ty.is_output()) {
                out.extend(value.labels().into_iter().cloned());
            }
        }
        for template in &self.schema.implicit_outputs {
            out.push(self.label.package_id().label(template.replace("%{name}", &self.label.name)));
        }
        out
    }
}

/// What one name in a package is.
#[derive(Debug, Clone)]
pub enum TargetRef<'a> {
    Rule(&'a Rule),
    /// A file produced by the named rule.
    Generated {
        label: Label,
        rule: &'a Rule,
    },
    Source {
        label: Label,
    },
}

impl TargetRef<'_> {
    pub fn label(&self) -> &Label {
        match self {
            TargetRef::Rule(r) => &r.label,
            TargetRef::Generated { label, .. } | TargetRef::Source { label } => label,
        }
    }

    /// The kind as `query --output=label_kind` prints it.
    pub fn kind(&self) -> String {
        match self {
            TargetRef::Rule(r) => format!("{} rule", r.kind),
            TargetRef::Generated { .. } => "generated file".into(),
            TargetRef::Source { .. } => "source file".into(),
        }
    }
}

/// A loaded package.
#[derive(Debug, Clone)]
pub struct Package {
    pub id: PackageId,
    /// The BUILD file (absolute for files on disk).
    pub build_file: PathBuf,
    /// How messages name the BUILD file.
    pub build_file_display: String,
    /// `BUILD.bazel` or `BUILD`: the BUILD file's own target name.
    pub build_file_name: String,
    pub rules: BTreeMap<String, Rule>,
    /// Output file name → name of the rule that generates it.
    pub outputs: BTreeMap<String, String>,
    /// Source files that are targets: exported, or referenced by a rule in this package.
    pub source_files: BTreeSet<String>,
    /// `.bzl` files loaded, transitively.
    pub loads: BTreeSet<Label>,
    pub default_visibility: Vec<Label>,
    /// `exports_files` names → their `visibility` (None: not given, public).
    pub exports: BTreeMap<String, Option<Vec<Label>>>,
}

impl Package {
    /// Bazel's "no such target" message for `label` in this package; `dir` is the package's
    /// directory, to suggest `exports_files` when a source file of that name exists.
    pub fn no_such_target(&self, label: &Label, dir: Option<&std::path::Path>) -> String {
        let mut msg = format!(
            "no such target '{label}': target '{}' not declared in package '{}'",
            label.name,
            if label.repo.is_empty() { label.package.clone() } else { format!("@{}//{}", label.repo, label.package) }
        );
        if dir.is_some_and(|d| d.join(&label.name).exists()) {
            msg.push_str(&format!(
                "; however, a source file of this name exists.  (Perhaps add 'exports_files([\"{}\"])' to {}?)",
                label.name, self.build_file_display
            ));
        } else if let Some(suggestion) = did_you_mean(&label.name, self.all_targets().iter().map(|t| t.label().name.as_str())) {
            msg.push_str(&format!(" (did you mean '{suggestion}'?)"));
        }
        msg.push_str(&format!(" defined by {}", self.build_file.display()));
        msg
    }

    pub fn target(&self, name: &str) -> Option<TargetRef<'_>> {
        let id = &self.id;
        if let Some(r) = self.rules.get(name) {
            return Some(TargetRef::Rule(r));
        }
        if let Some(rule) = self.outputs.get(name).and_then(|r| self.rules.get(r)) {
            return Some(TargetRef::Generated { label: id.label(name), rule });
        }
        if self.source_files.contains(name) {
            return Some(TargetRef::Source { label: id.label(name) });
        }
        None
    }

    /// Every target: rules, generated files and source files, sorted by name.
    pub fn all_targets(&self) -> Vec<TargetRef<'_>> {
        let mut names: BTreeSet<&str> = self.rules.keys().map(String::as_str).collect();
        names.extend(self.outputs.keys().map(String::as_str));
        names.extend(self.source_files.iter().map(String::as_str));
        names.into_iter().filter_map(|n| self.target(n)).collect()
    }
}

/// The candidate closest to `input`, if one is close enough to be a typo: Bazel's
/// `SpellChecker.suggest` — case-insensitive edit distance, below `min(5, (len + 1) / 2)`
/// and below every earlier candidate's (the first of equally close candidates wins).
pub fn did_you_mean<'c>(input: &str, candidates: impl IntoIterator<Item = &'c str>) -> Option<&'c str> {
    let input = input.to_lowercase();
    let mut best = None;
    let mut best_distance = 5.min(input.chars().count().div_ceil(2));
    for candidate in candidates {
        let distance = strsim::levenshtein(&input, &candidate.to_lowercase());
        if distance < best_distance {
            best_distance = distance;
            best = Some(candidate);
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn did_you_mean_as_bazel() {
        // Checked against Bazel 4.2.3: `fgg` → `fg`, `f.tx` → `f.txt`, `tt` (one edit from
        // both `t` and `t2`, the limit being below 1) → nothing.
        assert_eq!(did_you_mean("fgg", ["cs", "fg", "g", "t", "t2"]), Some("fg"));
        assert_eq!(did_you_mean("f.tx", ["a", "b", "f.txt"]), Some("f.txt"));
        assert_eq!(did_you_mean("tt", ["cs", "fg", "g", "t", "t2"]), None);
        assert_eq!(did_you_mean("IMAGE", ["image", "push"]), Some("image"));
        assert_eq!(did_you_mean("push_prod", ["image", "push"]), None);
    }

    fn strings(items: &[&str]) -> Raw {
        Raw::List(items.iter().map(|s| Raw::String(s.to_string())).collect())
    }

    /// Coerces as in package `//app`, where the apparent repository `@base` is `@base~1`.
    fn coerce(ty: AttrType, raw: &Raw) -> Result<AttrValue, String> {
        let package = PackageId::main("app");
        let map_repo = |r: &str| (r == "base").then(|| "base~1".to_owned());
        AttrValue::coerce(ty, raw, &LabelContext { package: &package, map_repo: &map_repo })
    }

    #[test]
    fn label_list_strings_resolve_relative_to_the_package_and_through_the_repo_mapping() {
        let value =
            coerce(AttrType::LabelList, &strings(&[":lib", "data.txt", "//other:x", "//tools", "@base//img:layer", "@base"])).unwrap();
        let AttrValue::LabelList(labels) = value else { panic!("not a label list: {value:?}") };
        let shown: Vec<String> = labels.iter().map(Label::to_string).collect();
        assert_eq!(shown, ["//app:lib", "//app:data.txt", "//other:x", "//tools:tools", "@base~1//img:layer", "@base~1//:base"]);
    }

    #[test]
    fn visibility_may_repeat_a_label_and_keeps_it_once() {
        // Bazel 4.2.3 accepts a repeated visibility label (macros appending a default do it),
        // though it rejects the same repeat in `srcs`.
        let package = PackageId::main("app");
        let map_repo = |_: &str| None;
        let ctx = LabelContext { package: &package, map_repo: &map_repo };
        let value = AttrValue::coerce_visibility(&strings(&["//:__subpackages__", ":__pkg__", "//:__subpackages__"]), &ctx).unwrap();
        let AttrValue::LabelList(labels) = value else { panic!("not a label list: {value:?}") };
        let shown: Vec<String> = labels.iter().map(Label::to_string).collect();
        assert_eq!(shown, ["//:__subpackages__", "//app:__pkg__"]);
    }

    #[test]
    fn label_list_rejects_duplicates_after_resolution() {
        // `:lib` and `//app:lib` are the same label once resolved (Bazel: "Label '//app:lib' is duplicated").
        let err = coerce(AttrType::LabelList, &strings(&[":lib", "//app:lib"])).unwrap_err();
        assert!(err.contains("label '//app:lib' is duplicated"), "{err}");
    }

    #[test]
    fn wrong_types_say_what_was_expected_and_show_the_value() {
        let err = coerce(AttrType::LabelList, &Raw::String("notalist".into())).unwrap_err();
        assert_eq!(err, "expected a value of type 'list(label)', got string \"notalist\"");
        let err = coerce(AttrType::StringList, &Raw::List(vec![Raw::String("a".into()), Raw::Int(3)])).unwrap_err();
        assert_eq!(err, "expected a value of type 'list(string)', got list [\"a\", 3]");
        let err = coerce(AttrType::Int, &Raw::String("3".into())).unwrap_err();
        assert_eq!(err, "expected a value of type 'int', got string \"3\"");
        let err = coerce(AttrType::LabelList, &strings(&["//x//y:z"])).unwrap_err();
        assert!(err.contains("//x//y:z"), "a bad label is named: {err}");
    }

    #[test]
    fn outputs_are_names_or_labels_in_the_package_and_bools_take_zero_and_one() {
        assert_eq!(
            coerce(AttrType::Output, &Raw::String("out/a.txt".into())).unwrap(),
            AttrValue::Label(Label::parse_absolute("//app:out/a.txt").unwrap())
        );
        // A label of the rule's own package is accepted, as Bazel does; another package's is not.
        for same in ["//app:a.txt", ":a.txt"] {
            assert_eq!(
                coerce(AttrType::Output, &Raw::String(same.into())).unwrap(),
                AttrValue::Label(Label::parse_absolute("//app:a.txt").unwrap())
            );
        }
        let err = coerce(AttrType::Output, &Raw::String("//other:a.txt".into())).unwrap_err();
        assert_eq!(err, "label '//other:a.txt' is not in the current package");
        // Bazel accepts 0 and 1 for boolean attributes (e.g. `stamp = 1`), nothing else.
        assert_eq!(coerce(AttrType::Bool, &Raw::Int(1)).unwrap(), AttrValue::Bool(true));
        assert!(coerce(AttrType::Bool, &Raw::Int(2)).is_err());
    }

    #[test]
    fn select_branches_are_typed_and_their_conditions_resolved() {
        let raw = Raw::Select(vec![
            SelectPart::Plain(strings(&[":a"])),
            SelectPart::Select {
                branches: vec![(":arm".into(), strings(&["b"])), ("//conditions:default".into(), strings(&[]))],
                no_match_error: String::new(),
            },
        ]);
        let AttrValue::Select(parts) = coerce(AttrType::LabelList, &raw).unwrap() else { panic!("not a select") };
        let SelectPart::Select { branches, .. } = &parts[1] else { panic!("second part is not a select") };
        assert_eq!(branches[0].0, "//app:arm");
        assert_eq!(branches[0].1, AttrValue::LabelList(vec![Label::parse_absolute("//app:b").unwrap()]));
        assert_eq!(branches[1].0, "//conditions:default");
    }
}
