//! What a rule's `analyze()` works with: its attributes (selects resolved, defaults filled),
//! its dependencies' providers (visibility checked), and a place to declare outputs and
//! register actions.

use std::sync::Arc;

use super::{Analysis, AnalysisError, Config, ConfiguredTarget};
use crate::exec::{Action, Artifact, ArtifactKind};
use crate::graph::label::Label;
use crate::graph::{AttrValue, Package, Rule};

pub struct RuleContext<'r, 'a> {
    pub analysis: &'r mut Analysis<'a>,
    pub rule: &'r Rule,
    declared: Vec<Artifact>,
}

type Result<T> = std::result::Result<T, AnalysisError>;

impl<'r, 'a> RuleContext<'r, 'a> {
    pub fn new(analysis: &'r mut Analysis<'a>, rule: &'r Rule, package: &'r Package) -> Self {
        let _ = package;
        RuleContext { analysis, rule, declared: Vec::new() }
    }

    pub fn label(&self) -> &Label {
        &self.rule.label
    }

    pub fn config(&self) -> &Config {
        &self.analysis.config
    }

    /// Analyses the rest of this target in `config`: a rule's incoming-edge transition
    /// (`rule(cfg = transition)`). Dependencies, `select()`s and output paths follow it;
    /// [`Analysis::analyze`] records the target under it and restores the configuration
    /// the target was asked for afterwards.
    pub fn transition_self(&mut self, config: Config) {
        self.analysis.config = config;
    }

    /// The attribute's value: explicit or default, with selects resolved.
    pub fn attr(&mut self, name: &str) -> Result<AttrValue> {
        let value =
            self.rule.attr(name).ok_or_else(|| AnalysisError::new(format!("internal: '{}' has no attribute '{name}'", self.rule.kind)))?;
        self.analysis.resolve(&value)
    }

    pub fn string(&mut self, name: &str) -> Result<String> {
        match self.attr(name)? {
            AttrValue::String(s) => Ok(s),
            AttrValue::None => Ok(String::new()),
            other => Err(self.type_error(name, "string", &other)),
        }
    }

    pub fn bool(&mut self, name: &str) -> Result<bool> {
        match self.attr(name)? {
            AttrValue::Bool(b) => Ok(b),
            AttrValue::Int(i) => Ok(i != 0),
            other => Err(self.type_error(name, "boolean", &other)),
        }
    }

    pub fn int(&mut self, name: &str) -> Result<i64> {
        match self.attr(name)? {
            AttrValue::Int(i) => Ok(i),
            AttrValue::Bool(b) => Ok(b as i64),
            other => Err(self.type_error(name, "int", &other)),
        }
    }

    pub fn string_list(&mut self, name: &str) -> Result<Vec<String>> {
        match self.attr(name)? {
            AttrValue::StringList(l) => Ok(l),
            AttrValue::None => Ok(vec![]),
            other => Err(self.type_error(name, "list(string)", &other)),
        }
    }

    pub fn string_dict(&mut self, name: &str) -> Result<Vec<(String, String)>> {
        match self.attr(name)? {
            AttrValue::StringDict(d) => Ok(d),
            AttrValue::None => Ok(vec![]),
            other => Err(self.type_error(name, "dict(string, string)", &other)),
        }
    }

    /// Labels of a label or label-list attribute.
    pub fn labels(&mut self, name: &str) -> Result<Vec<Label>> {
        match self.attr(name)? {
            AttrValue::Label(l) => Ok(vec![l]),
            AttrValue::LabelList(l) => Ok(l),
            AttrValue::None => Ok(vec![]),
            AttrValue::LabelKeyedStringDict(d) => Ok(d.into_iter().map(|(l, _)| l).collect()),
            other => Err(self.type_error(name, "label", &other)),
        }
    }

    /// `label → string` dict attributes (`files` of pkg_tar).
    pub fn label_keyed_dict(&mut self, name: &str) -> Result<Vec<(Label, String)>> {
        match self.attr(name)? {
            AttrValue::LabelKeyedStringDict(d) => Ok(d),
            AttrValue::None => Ok(vec![]),
            other => Err(self.type_error(name, "dict(label, string)", &other)),
        }
    }

    fn type_error(&self, name: &str, want: &str, got: &AttrValue) -> AnalysisError {
        AnalysisError::new(format!("attribute '{name}': expected {want}, got {got}"))
    }

    /// A dependency's configured target, after checking it is visible to this rule.
    pub fn dep(&mut self, label: &Label) -> Result<Arc<ConfiguredTarget>> {
        let target = self.analysis.analyze(label)?;
        self.check_visible(label)?;
        Ok(target)
    }

    /// The configured targets of a label or label-list attribute.
    pub fn deps(&mut self, name: &str) -> Result<Vec<Arc<ConfiguredTarget>>> {
        let labels = self.labels(name)?;
        labels.iter().map(|l| self.dep(l)).collect()
    }

    /// The files (DefaultInfo) of every target in an attribute.
    pub fn files(&mut self, name: &str) -> Result<Vec<Artifact>> {
        Ok(self.deps(name)?.iter().flat_map(|t| t.providers.files.clone()).collect())
    }

    /// The single file of a label attribute.
    pub fn single_file(&mut self, name: &str) -> Result<Option<Artifact>> {
        let Some(label) = self.labels(name)?.into_iter().next() else { return Ok(None) };
        let target = self.dep(&label)?;
        match target.providers.files.as_slice() {
            [one] => Ok(Some(one.clone())),
            files => {
                Err(AnalysisError::new(format!("attribute '{name}': '{label}' must produce exactly one file, it produces {}", files.len())))
            }
        }
    }

    /// Declares an output file named `name` in this rule's package.
    pub fn declare(&mut self, name: &str) -> Artifact {
        let label = self.rule.label.package_id().label(name);
        let artifact =
            Artifact { exec_path: format!("{}/{}", self.analysis.bin_dir(), super::source_exec_path(&label)), kind: ArtifactKind::Derived };
        self.declared.push(artifact.clone());
        artifact
    }

    /// The predeclared output of an output attribute (`out` of pkg_tar, `outs` of genrule).
    pub fn outputs_of(&mut self, name: &str) -> Result<Vec<Artifact>> {
        let labels = match self.rule.attrs.get(name) {
            Some(AttrValue::Label(l)) => vec![l.clone()],
            Some(AttrValue::LabelList(l)) => l.clone(),
            _ => vec![],
        };
        Ok(labels.iter().map(|l| self.declare(&l.name)).collect())
    }

    pub fn register(&mut self, mut action: Action) -> Result<()> {
        let owner = self.rule.label.clone();
        // The target's tags and exec_properties apply to every action it declares, as Bazel's
        // execution requirements (genrule, Starlark rules) and exec properties do.
        let tags = self.string_list("tags").unwrap_or_default();
        action.requirements.extend(tags.into_iter().filter(|t| crate::exec::action::EXECUTION_REQUIREMENT_TAGS.contains(&t.as_str())));
        if self.rule.attrs.contains_key("exec_properties") {
            action.exec_properties.extend(self.string_dict("exec_properties").unwrap_or_default());
        }
        self.analysis.register(&owner, action)
    }

    /// Outputs declared so far (for `Providers::declared`).
    pub fn declared(&self) -> Vec<Artifact> {
        self.declared.clone()
    }

    /// Bazel's visibility (`graph::visibility`): rules, generated files, source files
    /// (`exports_files`), package groups; same-package is always allowed. Messages are Bazel
    /// 4.2.3's.
    fn check_visible(&mut self, dep: &Label) -> Result<()> {
        let from = self.rule.label.package_id();
        let pkg = self.analysis.loader.package(&dep.package_id())?;
        let Some(target) = pkg.target(&dep.name) else { return Ok(()) };
        if let crate::graph::TargetRef::Rule(r) = &target
            && r.kind == "package_group"
        {
            return Err(AnalysisError::new(format!(
                "package group '{dep}' is misplaced here (they are only allowed in the visibility attribute)"
            )));
        }
        let loader = &self.analysis.loader;
        let mut load = |id: &crate::graph::label::PackageId| loader.package(id).map_err(AnalysisError::from);
        if crate::graph::visibility::is_visible(&from, &pkg, &target, &mut load)? {
            return Ok(());
        }
        let mut msg = format!(
            "target '{dep}' is not visible from target '{}'. Check the visibility declaration of the former target if you think the dependency is legitimate",
            self.rule.label
        );
        if matches!(target, crate::graph::TargetRef::Source { .. }) {
            msg.push_str(". To set the visibility of that source file target, use the exports_files() function");
        }
        Err(AnalysisError::new(msg))
    }
}
