//! Analysis: turns targets into configured targets (providers) and actions. `select()`s are
//! resolved against the configuration, visibility is enforced, and each rule's `analyze()`
//! declares its outputs and the actions that make them. Nothing here touches the disk.

mod context;
mod providers;
mod select;

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use thiserror::Error;

pub use context::RuleContext;
pub use providers::{GoInfo, PkgAttrs, PkgEntry, PkgInfo, Providers, RunAction, TestRun};

use crate::exec::{Action, Artifact};
use crate::graph::label::Label;
use crate::graph::{AttrValue, TargetRef};
use crate::load::{LoadError, Loader};

/// A rule kind's analysis: reads the target and its dependencies' providers, declares outputs
/// and actions, returns the target's providers.
pub type AnalyzeFn = fn(&mut RuleContext) -> Result<Providers, AnalysisError>;

/// Analysis functions by kind, injected by the command layer (`rules::registry()`), so
/// analysis knows no rule set.
pub type RuleImpls = HashMap<String, AnalyzeFn>;

/// The key under which [`RuleImpls`] holds the analysis of Starlark `rule()` kinds (every
/// such kind shares it; a target's rule carries its own definition).
pub const STARLARK_RULE_IMPL: &str = "<starlark rule()>";

/// The build configuration: what `select()` and the rules see. Transitions make new ones
/// (`Analysis::analyze_in`).
#[derive(Debug, Clone)]
pub struct Config {
    pub goos: String,
    pub goarch: String,
    pub stamp: bool,
    pub compilation_mode: String,
    /// `--define key=value` in command-line order (rc files' first); see [`Config::define`].
    pub defines: Vec<(String, String)>,
    /// The target platform a transition set (`//command_line_option:platforms`), if any.
    pub platform: Option<String>,
    /// User build settings a transition set: label → value as text (`True`, `x`).
    pub settings: std::collections::BTreeMap<String, String>,
}

impl Config {
    /// The value `--define key=value` gave `key`; the last one wins, as in Bazel.
    pub fn define(&self, key: &str) -> Option<&str> {
        self.defines.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            goos: "linux".into(),
            goarch: "amd64".into(),
            stamp: false,
            compilation_mode: "fastbuild".into(),
            defines: Vec::new(),
            platform: None,
            settings: Default::default(),
        }
    }
}

impl Config {
    /// The configuration's name: `<goos>_<goarch>`, then `-<compilation mode>` unless
    /// fastbuild, then `-ST-<hash>` of the build settings when a transition set any (as
    /// Bazel's `k8-fastbuild-ST-<hash>` output directories).
    pub fn name(&self) -> String {
        let mut name = format!("{}_{}", self.goos, self.goarch);
        if self.compilation_mode != "fastbuild" {
            name.push('-');
            name.push_str(&self.compilation_mode);
        }
        if !self.settings.is_empty() {
            let text: String = self.settings.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
            name.push_str("-ST-");
            name.push_str(&crate::exec::digest::sha256_hex(text.as_bytes())[..12]);
        }
        name
    }
}

/// Bazel's `--cpu` name of a Go architecture (`k8` for amd64, as `$(TARGET_CPU)`).
pub fn bazel_cpu(goarch: &str) -> &str {
    match goarch {
        "amd64" => "k8",
        "arm64" => "aarch64",
        other => other,
    }
}

/// An analysis failure, kept as a chain of causes that is rendered once, at the top (`ocib`
/// prints [`AnalysisError::render`], or anyhow's `{:#}` of it): each level's `Display` says
/// only its own part and [`std::error::Error::source`] gives the next.
///
/// A failure deep in the graph reads `a/BUILD:1:10: in filegroup rule //a:a:
/// b/BUILD:3:8: in genrule rule //b:b: attribute 'cmd': …`: one [`AnalysisError::InRule`]
/// ([`RuleFailure`]) per target it passed through, each named once (Bazel names the failing target's
/// location; the chain also says how the requested target reached it).
#[derive(Debug, Error)]
pub enum AnalysisError {
    /// The analysis of a rule failed (boxed: keeps every `Result<_, AnalysisError>` small).
    #[error(transparent)]
    InRule(Box<RuleFailure>),
    /// What went wrong, in words (a rule's own complaint: `attribute 'x': …`).
    #[error("{0}")]
    Message(String),
    /// A package needed for the analysis failed to load (boxed: keeps every
    /// `Result<_, AnalysisError>` small).
    #[error(transparent)]
    Load(Box<LoadError>),
    /// An error from code shared with other phases (I/O, parsing), with its own causes.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync + 'static>),
}

/// A rule whose analysis failed, located at the rule's call in its BUILD file, and why.
#[derive(Debug, Error)]
#[error("{location}: in {kind} rule {label}")]
pub struct RuleFailure {
    /// `file:line:col` of the rule's call.
    pub location: String,
    /// The rule's kind (`go_binary`).
    pub kind: String,
    /// The rule's label.
    pub label: Label,
    /// Why it failed (its own error, or a dependency's).
    #[source]
    pub cause: AnalysisError,
}

impl AnalysisError {
    /// An error that says what went wrong; [`Analysis::analyze`] adds which rule.
    pub fn new(message: impl Into<String>) -> AnalysisError {
        AnalysisError::Message(message.into())
    }

    /// Attributes `cause` to the rule `kind` `label` called at `location`, unless the chain
    /// already names that rule: an error that passes through a target twice (a generated
    /// file and its rule, a rule set's helper re-analyzing a target) names it once.
    pub fn in_rule(location: &crate::graph::Location, kind: &str, label: &Label, cause: AnalysisError) -> AnalysisError {
        if cause.rules().any(|named| named == label) {
            return cause;
        }
        AnalysisError::InRule(Box::new(RuleFailure { location: location.to_string(), kind: kind.to_owned(), label: label.clone(), cause }))
    }

    /// The labels of the rules the chain passes through, outermost first.
    pub fn rules(&self) -> impl Iterator<Item = &Label> {
        std::iter::successors(self.rule_failure(), |f| f.cause.rule_failure()).map(|f| &f.label)
    }

    fn rule_failure(&self) -> Option<&RuleFailure> {
        match self {
            AnalysisError::InRule(f) => Some(f),
            _ => None,
        }
    }

    /// The deepest rule whose analysis failed, as Bazel reports it: `c/BUILD:2:8: in genrule
    /// rule //c:c: <why>` (the rules that only depend on it are not named), and its label;
    /// a package that failed to load is reported by its own error (which has its location).
    /// `None` when no rule is in the chain (a package failed to load before any rule).
    pub fn innermost(&self) -> Option<(String, &Label)> {
        let deepest = std::iter::successors(self.rule_failure(), |f| f.cause.rule_failure()).last()?;
        let why = deepest.cause.render();
        // A dependency's package failed to load: its error has its own location.
        if matches!(deepest.cause, AnalysisError::Load(_)) {
            return Some((why, &deepest.label));
        }
        // An attribute's complaint reads as Bazel's: `in deps attribute of user rule //p:u:`.
        if let AnalysisError::Message(m) = &deepest.cause
            && let Some((attr, msg)) = m.strip_prefix("in ").and_then(|r| r.split_once(" attribute: "))
            && !attr.contains(' ')
        {
            let f = deepest;
            return Some((format!("{}: in {attr} attribute of {} rule {}: {msg}", f.location, f.kind, f.label), &deepest.label));
        }
        let mut line = deepest.to_string();
        if !why.is_empty() {
            line.push_str(": ");
            line.push_str(&why);
        }
        Some((line, &deepest.label))
    }

    /// The whole chain on one line: each level once, joined by `: `.
    pub fn render(&self) -> String {
        anyhow::Chain::new(self).map(|e| e.to_string()).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(": ")
    }
}

/// A message of analysis itself (e.g. `graph::visibility`'s).
impl From<String> for AnalysisError {
    fn from(msg: String) -> Self {
        AnalysisError::new(msg)
    }
}

impl From<LoadError> for AnalysisError {
    fn from(e: LoadError) -> Self {
        AnalysisError::Load(Box::new(e))
    }
}

impl From<anyhow::Error> for AnalysisError {
    fn from(e: anyhow::Error) -> Self {
        AnalysisError::Other(e.into())
    }
}

#[derive(Debug)]
pub struct ConfiguredTarget {
    pub label: Label,
    /// `go_binary rule`, `source file`, ...
    pub kind: String,
    pub providers: Providers,
    /// The name ([`Config::name`]) of the configuration the target was analysed in: the one
    /// it was asked for in, or the one its rule's incoming transition (`rule(cfg = ...)`)
    /// made. `None` for source files, which have no configuration (cquery's `(null)`).
    pub config: Option<String>,
}

/// The analysis of one build: every target analyzed so far, and the actions they declared.
pub struct Analysis<'a> {
    pub loader: &'a Loader,
    impls: &'a RuleImpls,
    pub config: Config,
    /// Keyed by label and configuration (a go_binary with goos/goarch analyzes its deps in
    /// another one).
    targets: HashMap<(Label, String), Arc<ConfiguredTarget>>,
    /// Where ocib's cache lives (Go toolchain facts, Go's build cache).
    pub cache_dir: std::path::PathBuf,
    shared: HashMap<String, Arc<dyn Any + Send + Sync>>,
    in_progress: Vec<Label>,
    pub actions: Vec<Action>,
    /// exec path → owner, to catch two actions declaring one output.
    declared: HashMap<String, Label>,
    /// The name of the configuration the build started in: its outputs go to `ocib-out/bin`.
    top_config: String,
}

impl<'a> Analysis<'a> {
    pub fn new(loader: &'a Loader, impls: &'a RuleImpls, config: Config, cache_dir: std::path::PathBuf) -> Analysis<'a> {
        Analysis {
            loader,
            impls,
            targets: HashMap::new(),
            cache_dir,
            shared: HashMap::new(),
            in_progress: Vec::new(),
            actions: Vec::new(),
            declared: HashMap::new(),
            top_config: config.name(),
            config,
        }
    }

    fn config_key(&self) -> String {
        self.config.name()
    }

    /// The directory derived files of the current configuration go to: `ocib-out/bin` for the
    /// configuration the build started in (and linux/amd64, the default), and
    /// `ocib-out/<configuration name>/bin` ([`Config::name`]) for the others.
    pub fn bin_dir(&self) -> String {
        self.bin_dir_of(&self.config_key())
    }

    /// [`Self::bin_dir`] of the configuration named `key`.
    fn bin_dir_of(&self, key: &str) -> String {
        if key == self.top_config || key == "linux_amd64" { crate::exec::BIN_DIR.to_owned() } else { format!("ocib-out/{key}/bin") }
    }

    /// Every configured target analysed so far, once per configuration it was analysed in (a
    /// target an incoming transition moved is listed once, in the configuration it moved
    /// to): what `cquery` shows.
    pub fn configured_targets(&self) -> Vec<Arc<ConfiguredTarget>> {
        let mut seen = std::collections::HashSet::new();
        let mut out: Vec<Arc<ConfiguredTarget>> =
            self.targets.values().filter(|t| seen.insert((t.label.clone(), t.config.clone()))).cloned().collect();
        out.sort_by(|a, b| (&a.label, &a.config).cmp(&(&b.label, &b.config)));
        out
    }

    /// The value of the build setting `label` in the current configuration, as text (`True`,
    /// `x`): set on the command line or by a transition, else its `build_setting_default`.
    pub fn build_setting_value(&self, label: &Label) -> Result<String, AnalysisError> {
        if let Some(v) = self.config.settings.get(&label.to_string()) {
            return Ok(v.clone());
        }
        let pkg = self.loader.package(&label.package_id())?;
        let Some(TargetRef::Rule(rule)) = pkg.target(&label.name) else {
            return Err(AnalysisError::new(format!("'{label}' is not a build setting")));
        };
        let text = |raw: &crate::graph::Raw| match raw {
            crate::graph::Raw::String(s) => s.clone(),
            crate::graph::Raw::Bool(b) => if *b { "True" } else { "False" }.to_owned(),
            crate::graph::Raw::List(items) => {
                items.iter().map(|i| i.to_string().trim_matches('"').to_owned()).collect::<Vec<_>>().join(",")
            }
            other => other.to_string(),
        };
        match rule.attrs.get("build_setting_default") {
            Some(AttrValue::Raw(raw)) => Ok(text(raw)),
            Some(other) => Ok(other.to_string()),
            None => Err(AnalysisError::new(format!("'{label}' is not a build setting (it has no build_setting_default)"))),
        }
    }

    /// The configured target for `label` in `config` (a transition's), analysed if needed.
    pub fn analyze_in(&mut self, label: &Label, config: Config) -> Result<Arc<ConfiguredTarget>, AnalysisError> {
        let saved = std::mem::replace(&mut self.config, config);
        let result = self.analyze(label);
        self.config = saved;
        result
    }

    /// A value shared by every target of this analysis (and configuration, when `key` says
    /// so), made by `init` on first use: how a rule set keeps per-build singletons (e.g. the
    /// Go standard library action) without analysis knowing the rule set.
    pub fn shared<T: Any + Send + Sync>(
        &mut self,
        key: &str,
        init: impl FnOnce(&mut Analysis<'a>) -> Result<Arc<T>, AnalysisError>,
    ) -> Result<Arc<T>, AnalysisError> {
        if let Some(v) = self.shared.get(key).and_then(|v| v.clone().downcast::<T>().ok()) {
            return Ok(v);
        }
        let v = init(self)?;
        self.shared.insert(key.to_owned(), v.clone());
        Ok(v)
    }

    /// The configuration's short name (`<goos>_<goarch>`), for keys of [`Self::shared`] values.
    pub fn config_name(&self) -> String {
        self.config_key()
    }

    /// The configured target for `label`, analyzing it (and its dependencies) if needed.
    pub fn analyze(&mut self, label: &Label) -> Result<Arc<ConfiguredTarget>, AnalysisError> {
        let cache_key = (label.clone(), self.config_key());
        if let Some(t) = self.targets.get(&cache_key) {
            return Ok(t.clone());
        }
        if let Some(pos) = self.in_progress.iter().position(|l| l == label) {
            let mut cycle: Vec<String> = self.in_progress[pos..].iter().map(Label::to_string).collect();
            cycle.push(label.to_string());
            return Err(AnalysisError::new(format!("cycle in dependency graph:\n    {}", cycle.join("\n -> "))));
        }
        let pkg = self.loader.package(&label.package_id())?;
        let target = pkg
            .target(&label.name)
            .ok_or_else(|| AnalysisError::new(pkg.no_such_target(label, self.loader.workspace().package_dir(&pkg.id).as_deref())))?;
        let configured =
            match target {
                TargetRef::Source { label } => {
                    let artifact = self.source_artifact(&label)?;
                    ConfiguredTarget {
                        label: label.clone(),
                        kind: "source file".into(),
                        providers: Providers { files: vec![artifact], ..Default::default() },
                        config: None,
                    }
                }
                TargetRef::Generated { label, rule } => {
                    let rule_target = self.analyze(&rule.label)?;
                    // In the rule's configuration: an incoming transition may have moved it.
                    let rule_config = rule_target.config.clone().unwrap_or_else(|| self.config_key());
                    let path = format!("{}/{}", self.bin_dir_of(&rule_config), source_exec_path(&label));
                    let file =
                        rule_target.providers.declared.iter().find(|a| a.exec_path == path).cloned().ok_or_else(|| {
                            AnalysisError::new(format!("{}: rule {} does not produce '{}'", label, rule.label, label.name))
                        })?;
                    ConfiguredTarget {
                        label: label.clone(),
                        kind: "generated file".into(),
                        providers: Providers { files: vec![file], ..Default::default() },
                        config: Some(rule_config),
                    }
                }
                TargetRef::Rule(rule) => {
                    self.in_progress.push(label.clone());
                    // A rule's incoming transition (`rule(cfg = ...)`) switches `self.config`
                    // for the rest of the target's analysis (`RuleContext::transition_self`);
                    // the configuration asked for comes back afterwards.
                    let asked = self.config.clone();
                    let starlark = rule.definition.as_ref().and_then(|_| self.impls.get(STARLARK_RULE_IMPL));
                    let result = match starlark.or_else(|| self.impls.get(&rule.kind)).copied() {
                        Some(analyze) => analyze(&mut RuleContext::new(self, rule, &pkg)),
                        None if !rule.schema.typed => Err(AnalysisError::new(format!(
                            "'{}' comes from a rule set ocib does not know, so it cannot be built",
                            rule.kind
                        ))),
                        None => Err(AnalysisError::new(format!("building '{}' targets is not supported yet", rule.kind))),
                    };
                    self.in_progress.pop();
                    let analysed_in = std::mem::replace(&mut self.config, asked).name();
                    let providers = result.map_err(|e| AnalysisError::in_rule(&rule.location, &rule.kind, &rule.label, e))?;
                    ConfiguredTarget { label: label.clone(), kind: format!("{} rule", rule.kind), providers, config: Some(analysed_in) }
                }
            };
        let configured = Arc::new(configured);
        if let Some(moved) = configured.config.as_ref().filter(|c| **c != cache_key.1) {
            // Reached again in the configuration it moved to, it is the same target.
            self.targets.insert((label.clone(), moved.clone()), configured.clone());
        }
        self.targets.insert(cache_key, configured.clone());
        Ok(configured)
    }

    /// A source file's artifact: exec path `<pkg>/<name>`, or `external/<repo>/...`.
    fn source_artifact(&self, label: &Label) -> Result<Artifact, AnalysisError> {
        let ws = self.loader.workspace();
        let dir = ws.package_dir(&label.package_id()).ok_or_else(|| {
            AnalysisError::new(format!("{label}: source files of repository '@{}' are not available to build with", label.repo))
        })?;
        Ok(Artifact::source(source_exec_path(label), dir.join(&label.name)))
    }

    /// Adds an action, checking that no other target declared its outputs.
    pub fn register(&mut self, owner: &Label, action: Action) -> Result<(), AnalysisError> {
        for out in &action.outputs {
            if let Some(other) = self.declared.insert(out.exec_path.clone(), owner.clone())
                && (&other != owner || action.outputs.iter().filter(|o| o.exec_path == out.exec_path).count() > 1)
            {
                return Err(AnalysisError::new(format!("output '{}' is declared by both {other} and {owner}", out.exec_path)));
            }
        }
        self.actions.push(action);
        Ok(())
    }
}

/// The exec path of a source file: `<pkg>/<name>` in the main repository,
/// `external/<repo>/<pkg>/<name>` in others.
pub fn source_exec_path(label: &Label) -> String {
    let pkg_path = join(&label.package, &label.name);
    if label.repo.is_empty() { pkg_path } else { format!("external/{}/{pkg_path}", label.repo) }
}

fn join(a: &str, b: &str) -> String {
    if a.is_empty() { b.to_owned() } else { format!("{a}/{b}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Location;

    fn at(file: &str) -> Location {
        Location { file: file.into(), line: 1, column: 10 }
    }

    fn label(text: &str) -> Label {
        Label::parse_absolute(text).expect("test label")
    }

    /// //a → //b → //c, where //c has a bad attribute: each rule once, outermost first, the
    /// rule's own complaint last, all on one line.
    #[test]
    fn dependency_chain_names_each_rule_once() {
        let c = AnalysisError::in_rule(
            &at("c/BUILD"),
            "genrule",
            &label("//c:c"),
            AnalysisError::new("attribute 'cmd': expected string, got 3"),
        );
        let b = AnalysisError::in_rule(&at("b/BUILD"), "filegroup", &label("//b:b"), c);
        let a = AnalysisError::in_rule(&at("a/BUILD"), "filegroup", &label("//a:a"), b);
        assert_eq!(
            a.render(),
            "a/BUILD:1:10: in filegroup rule //a:a: b/BUILD:1:10: in filegroup rule //b:b: c/BUILD:1:10: in genrule rule //c:c: attribute 'cmd': expected string, got 3"
        );
        // `{:#}` of anyhow (how `ocib` prints it) gives the same line: Display is one level.
        assert_eq!(format!("{:#}", anyhow::Error::from(a)).matches("in genrule rule").count(), 1);
    }

    /// Bazel names only the rule whose analysis failed, once, with its location.
    #[test]
    fn innermost_names_only_the_failing_rule() {
        let c = AnalysisError::in_rule(&at("c/BUILD"), "genrule", &label("//c:c"), AnalysisError::new("bad cmd"));
        let b = AnalysisError::in_rule(&at("b/BUILD"), "filegroup", &label("//b:b"), c);
        let (line, failing) = b.innermost().unwrap();
        assert_eq!(line, "c/BUILD:1:10: in genrule rule //c:c: bad cmd");
        assert_eq!(failing, &label("//c:c"));
        assert!(AnalysisError::new("no rule").innermost().is_none());
    }

    /// An attribute's complaint reads as Bazel 4.2.3 writes it: the attribute names the rule.
    #[test]
    fn attribute_errors_name_the_attribute_of_the_rule() {
        let e = AnalysisError::in_rule(
            &at("p/BUILD"),
            "user",
            &label("//p:u"),
            AnalysisError::new("in deps attribute: '//p:x' does not have mandatory providers: 'AInfo'"),
        );
        let (line, _) = e.innermost().unwrap();
        assert_eq!(line, "p/BUILD:1:10: in deps attribute of user rule //p:u: '//p:x' does not have mandatory providers: 'AInfo'");
    }

    /// An error that comes back through a rule already in its chain (a generated file and
    /// the rule that makes it) is not attributed to that rule a second time.
    #[test]
    fn passing_through_a_rule_again_adds_no_prefix() {
        let c = AnalysisError::in_rule(&at("c/BUILD"), "genrule", &label("//c:c"), AnalysisError::new("bad"));
        let again = AnalysisError::in_rule(&at("c/BUILD"), "genrule", &label("//c:c"), c);
        let b = AnalysisError::in_rule(&at("b/BUILD"), "filegroup", &label("//b:b"), again);
        let twice = AnalysisError::in_rule(&at("c/BUILD"), "genrule", &label("//c:c"), b);
        let text = twice.render();
        assert_eq!(text, "b/BUILD:1:10: in filegroup rule //b:b: c/BUILD:1:10: in genrule rule //c:c: bad");
        assert_eq!(twice.rules().count(), 2);
    }

    /// A cause from outside (anyhow with context) keeps its chain and prints each part once.
    #[test]
    fn foreign_cause_chain_is_rendered_once() {
        let io = anyhow::Error::from(std::io::Error::other("permission denied")).context("reading p/x.json");
        let e = AnalysisError::in_rule(&at("p/BUILD"), "jq", &label("//p:x"), io.into());
        assert_eq!(e.render(), "p/BUILD:1:10: in jq rule //p:x: reading p/x.json: permission denied");
    }
}
