//! Rule schemas: the attributes a rule kind takes, their types and defaults, and whether it is
//! executable or a test. Loading types a rule call's arguments with it; analysis reads typed
//! values. It sits below both, as Buck2 keeps `Rule` and `AttributeSpec` in `buck2_node`.

use std::collections::HashMap;
use std::sync::Arc;

use super::{AttrType, AttrValue};

/// One attribute of a rule kind.
#[derive(Debug, Clone)]
pub struct AttrSpec {
    pub name: String,
    pub ty: AttrType,
    pub mandatory: bool,
    pub default: AttrValue,
    /// A label attribute that is not a dependency edge (e.g. `visibility`).
    pub nodep: bool,
}

/// A rule kind's schema.
#[derive(Debug)]
pub struct RuleSchema {
    /// The rule class name, as `query` reports it.
    pub kind: String,
    pub attrs: Vec<AttrSpec>,
    /// Attribute name → position in `attrs` (looked up for every attribute of every call).
    index: foldhash::HashMap<String, usize>,
    pub executable: bool,
    pub test: bool,
    /// Outputs every target of this kind has, as templates over `%{name}`.
    pub implicit_outputs: Vec<String>,
    /// False for kinds that only record their arguments (a rule of an unknown rule set).
    pub typed: bool,
}

impl RuleSchema {
    /// The attribute called `name`, if the kind has it.
    pub fn attr(&self, name: &str) -> Option<&AttrSpec> {
        self.index.get(name).map(|&i| &self.attrs[i])
    }

    /// A schema that accepts any attribute and keeps values untyped: the stand-in for rules
    /// whose definition ocib does not have.
    pub fn untyped(kind: &str) -> RuleSchema {
        let mut b = SchemaBuilder::new(kind);
        b.typed = false;
        b.build()
    }
}

/// Builds a [`RuleSchema`] starting from the attributes every rule has.
pub struct SchemaBuilder {
    kind: String,
    attrs: Vec<AttrSpec>,
    executable: bool,
    test: bool,
    implicit_outputs: Vec<String>,
    typed: bool,
}

impl SchemaBuilder {
    pub fn new(kind: &str) -> SchemaBuilder {
        let mut b = SchemaBuilder {
            kind: kind.to_owned(),
            attrs: Vec::new(),
            executable: false,
            test: false,
            implicit_outputs: Vec::new(),
            typed: true,
        };
        b = b.mandatory("name", AttrType::String);
        for (name, ty) in [
            ("visibility", AttrType::LabelList),
            ("tags", AttrType::StringList),
            ("testonly", AttrType::Bool),
            ("deprecation", AttrType::String),
            ("features", AttrType::StringList),
            ("target_compatible_with", AttrType::LabelList),
            ("exec_compatible_with", AttrType::LabelList),
            ("compatible_with", AttrType::LabelList),
            ("restricted_to", AttrType::LabelList),
            ("toolchains", AttrType::LabelList),
            ("applicable_licenses", AttrType::LabelList),
            ("package_metadata", AttrType::LabelList),
            ("aspect_hints", AttrType::LabelList),
            ("exec_properties", AttrType::StringDict),
            ("transitive_configs", AttrType::StringList),
        ] {
            b = b.attr(name, ty);
        }
        b.nodep("visibility");
        b.nodep("applicable_licenses");
        b.nodep("package_metadata");
        b
    }

    fn push(mut self, name: &str, ty: AttrType, mandatory: bool, default: AttrValue) -> Self {
        self.attrs.retain(|a| a.name != name);
        self.attrs.push(AttrSpec { name: name.to_owned(), ty, mandatory, default, nodep: false });
        self
    }

    pub fn attr(self, name: &str, ty: AttrType) -> Self {
        self.push(name, ty, false, ty.zero())
    }

    pub fn mandatory(self, name: &str, ty: AttrType) -> Self {
        self.push(name, ty, true, ty.zero())
    }

    pub fn default(self, name: &str, ty: AttrType, default: AttrValue) -> Self {
        self.push(name, ty, false, default)
    }

    /// `tags` defaults to `["manual"]`: Bazel's configuration rules (`config_setting`,
    /// `constraint_setting`, `constraint_value`, `platform`) are tagged manual unless `tags`
    /// is given (Bazel 4.2.3: `attr(tags, manual, //...)` lists them; `//...` in `build`
    /// skips them).
    pub fn manual_by_default(self) -> Self {
        self.default("tags", AttrType::StringList, AttrValue::StringList(vec!["manual".to_owned()]))
    }

    fn nodep(&mut self, name: &str) {
        if let Some(a) = self.attrs.iter_mut().find(|a| a.name == name) {
            a.nodep = true;
        }
    }

    /// An executable rule (`ocib run`-able). Like a Starlark `rule(executable = True)`, this
    /// adds only `args`; rules that take `env` declare it.
    pub fn executable(mut self) -> Self {
        self.executable = true;
        self.attr("args", AttrType::StringList).attr("output_licenses", AttrType::StringList)
    }

    /// A test rule: executable, plus the attributes Bazel gives every test rule.
    pub fn test(mut self) -> Self {
        self.test = true;
        self.executable()
            .default("size", AttrType::String, AttrValue::String("medium".into()))
            .attr("timeout", AttrType::String)
            .attr("flaky", AttrType::Bool)
            .default("shard_count", AttrType::Int, AttrValue::Int(-1))
            .attr("local", AttrType::Bool)
    }

    /// Attributes only Bazel's built-in (Java) rules have.
    pub fn native(self) -> Self {
        self.default("licenses", AttrType::StringList, AttrValue::StringList(vec!["none".into()])).attr("distribs", AttrType::StringList)
    }

    pub fn implicit_output(mut self, template: &str) -> Self {
        self.implicit_outputs.push(template.to_owned());
        self
    }

    pub fn build(self) -> RuleSchema {
        let index = self.attrs.iter().enumerate().map(|(i, a)| (a.name.clone(), i)).collect();
        RuleSchema {
            kind: self.kind,
            attrs: self.attrs,
            index,
            executable: self.executable,
            test: self.test,
            implicit_outputs: self.implicit_outputs,
            typed: self.typed,
        }
    }
}

/// The rule kinds loading knows natively: every kind's schema, and the kinds BUILD files see
/// as globals (Bazel's own rules; rule sets' kinds are reached through the prelude's `load()`s).
/// The command layer builds it from the rule sets' tables (`rules::registry()`) and hands it to
/// the loader, so loading does not depend on any rule set.
#[derive(Debug, Default)]
pub struct RuleKinds {
    /// Schema by kind.
    pub schemas: HashMap<String, Arc<RuleSchema>>,
    /// Kinds that are globals of BUILD files and of `native`.
    pub build_globals: Vec<String>,
}
