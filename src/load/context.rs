//! The state an evaluation carries in `Evaluator::extra`: what a BUILD file has declared so
//! far, or the repositories a WORKSPACE / MODULE.bazel file declares.

use std::cell::{OnceCell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use starlark::any::ProvidesStaticType;
use starlark::eval::Evaluator;

use crate::graph::label::{Label, PackageId};
use crate::graph::{Package, Raw, Rule};
use crate::workspace::{Repo, Workspace};

/// Evaluation state of one BUILD file.
#[derive(ProvidesStaticType)]
pub struct BuildContext<'a> {
    pub ws: &'a Workspace,
    pub package: PackageId,
    /// The package directory on disk, for `glob` (None for virtual packages).
    pub dir: Option<PathBuf>,
    /// How the BUILD file is named in messages and locations.
    pub build_file_display: String,
    pub build_file: PathBuf,
    /// Top-level calls by 0-based line: where their `(` is and their literal name.
    pub call_sites: HashMap<u32, super::ast_info::CallSite>,
    pub state: RefCell<PackageState>,
    /// One listing of the package directory, shared by every `glob` call.
    pub listing: OnceCell<super::glob::Listing>,
    /// A heap referencing every module the BUILD file loads: Starlark rules called here
    /// keep their definitions alive through it.
    pub keep_alive: starlark::values::FrozenHeapRef,
}

#[derive(Default)]
pub struct PackageState {
    pub rules: BTreeMap<String, Rule>,
    /// Output file name → generating rule name.
    pub outputs: BTreeMap<String, String>,
    /// `exports_files` names → their `visibility` (None: not given).
    pub exported: BTreeMap<String, Option<Vec<Label>>>,
    /// Files of this package that rules refer to by label.
    pub referenced: BTreeSet<String>,
    pub default_visibility: Vec<Label>,
    pub package_called: bool,
}

impl<'a> BuildContext<'a> {
    pub fn from_eval<'e>(eval: &'e Evaluator) -> Result<&'e BuildContext<'e>> {
        eval.extra
            .and_then(|e| e.downcast_ref::<BuildContext>())
            .ok_or_else(|| anyhow!("this function can only be called while a BUILD file is being evaluated (from a BUILD file or a macro it calls), not at the top level of a .bzl file"))
    }

    pub fn map_repo(&self, apparent: &str) -> Option<String> {
        self.ws.map_repo(apparent)
    }

    /// Adds a rule, checking that its name and outputs are free.
    pub fn add_rule(&self, rule: Rule) -> Result<()> {
        let mut state = self.state.borrow_mut();
        let name = rule.label.name.clone();
        if state.rules.contains_key(&name) || state.outputs.contains_key(&name) {
            let at = &rule.location;
            bail!(
                "{}:{}:{}: {}: target '{}' is already defined in package '{}'",
                self.build_file_display,
                at.line,
                at.column,
                rule.label,
                name,
                self.package
            );
        }
        let outputs = rule.outputs();
        for out in &outputs {
            if out.repo != self.package.repo || out.package != self.package.package {
                bail!("{}: output '{}' is not in the rule's package", rule.label, out);
            }
            if state.rules.contains_key(&out.name) || state.outputs.contains_key(&out.name) {
                bail!("{}: generated file '{}' conflicts with an existing target", rule.label, out.name);
            }
        }
        for out in outputs {
            state.outputs.insert(out.name, name.clone());
        }
        let state = &mut *state;
        rule.for_each_dep(|dep| {
            if dep.repo == self.package.repo && dep.package == self.package.package && !state.referenced.contains(&dep.name) {
                state.referenced.insert(dep.name.clone());
            }
        });
        state.rules.insert(name, rule);
        Ok(())
    }

    /// The finished package.
    pub fn finish(self, loads: BTreeSet<Label>) -> Package {
        let state = self.state.into_inner();
        let build_name = self.build_file_display.rsplit([':', '/']).next().unwrap_or_default().to_owned();
        let mut source_files: BTreeSet<String> = state
            .referenced
            .into_iter()
            .chain(state.exported.keys().cloned())
            .filter(|n| !state.rules.contains_key(n) && !state.outputs.contains_key(n))
            .collect();
        if !build_name.is_empty() && !state.rules.contains_key(&build_name) {
            source_files.insert(build_name.clone());
        }
        Package {
            id: self.package,
            build_file: self.build_file,
            build_file_display: self.build_file_display,
            build_file_name: build_name.clone(),
            rules: state.rules,
            outputs: state.outputs,
            source_files,
            loads,
            default_visibility: state.default_visibility,
            exports: state.exported,
        }
    }
}

/// A module-extension tag call, e.g. `oci.pull(...)`: (extension id, tag, attributes).
pub type TagCall = (String, String, BTreeMap<String, Raw>);

/// Evaluation state of WORKSPACE(.bazel) or MODULE.bazel: the repositories declared.
#[derive(ProvidesStaticType, Default)]
pub struct RepoFileContext {
    pub workspace_name: RefCell<Option<String>>,
    pub repos: RefCell<Vec<Repo>>,
    /// `local_path_override(module_name, path)`.
    pub overrides: RefCell<HashMap<String, PathBuf>>,
    /// `bazel_dep` names (module name, repo name).
    pub deps: RefCell<Vec<(String, String)>>,
    /// Extension tag calls, e.g. `oci.pull(...)`: (extension id, tag, attributes).
    pub tags: RefCell<Vec<TagCall>>,
    /// Repositories named by `use_repo`: (apparent, name inside the extension).
    pub used_repos: RefCell<Vec<(String, String)>>,
    /// The same names by extension: (extension id, name inside the extension), for running
    /// the main repository's own extensions (`module_ext`).
    pub extension_repos: RefCell<Vec<(String, String)>>,
    /// `include(label)` calls of MODULE.bazel (Bazel 7.2+), in order: files whose statements
    /// belong to the same module.
    pub includes: RefCell<Vec<String>>,
    /// Versions pinned by name: a `bazel_dep`'s module version, or the release a WORKSPACE
    /// archive's `strip_prefix`/`url(s)` names (repository name → version text).
    pub versions: RefCell<BTreeMap<String, String>>,
    /// `single_version_override(module_name, version)`: wins over the `bazel_dep` version.
    pub version_overrides: RefCell<BTreeMap<String, String>>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RepoFileKind {
    Workspace,
    Module,
}

impl RepoFileContext {
    pub fn from_eval<'e>(eval: &'e Evaluator) -> Option<&'e RepoFileContext> {
        eval.extra.and_then(|e| e.downcast_ref::<RepoFileContext>())
    }
}
