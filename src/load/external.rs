//! Evaluating MODULE.bazel and WORKSPACE(.bazel) into the workspace's repositories.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use starlark::environment::{FrozenModule, Module};
use starlark::eval::{Evaluator, ReturnFileLoader};
use starlark::syntax::{AstModule, Dialect};

use super::context::{RepoFileContext, RepoFileKind};
use super::repo_globals::{self, WORKSPACE_APKO_LOCK, WORKSPACE_OCI_PULL};
use super::{Loader, bzl_dialect};
use crate::graph::label::{Label, PackageId};
use crate::graph::schema::RuleKinds;
use crate::graph::{Raw, quote};
use crate::workspace::{OciPullSpec, Repo, RepoSource, Workspace};

/// Which repository files Bazel evaluates: `--enable_bzlmod` and `--enable_workspace` as given
/// on the command line or in .bazelrc; `None` takes the default of the Bazel version the
/// repository pins ([`RepoFlags::resolve`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RepoFlags {
    /// `--[no]enable_bzlmod`: evaluate MODULE.bazel.
    pub enable_bzlmod: Option<bool>,
    /// `--[no]enable_workspace`: evaluate WORKSPACE (or WORKSPACE.bzlmod).
    pub enable_workspace: Option<bool>,
}

static REPO_FLAGS: std::sync::OnceLock<RepoFlags> = std::sync::OnceLock::new();

/// Sets the flags [`open_workspace`] follows for this process (the command line's, once).
pub fn set_repo_flags(flags: RepoFlags) {
    let _ = REPO_FLAGS.set(flags);
}

impl RepoFlags {
    /// `(bzlmod, workspace)` for the repository at `root`: a flag given wins, else Bazel's
    /// default for the major version in `.bazelversion` (Bazel 6: WORKSPACE only; 7: both;
    /// 8 and later: MODULE.bazel only, `--enable_workspace` defaults to false). Without a
    /// pinned version (or with `latest`, `rolling`…) the newest behaviour, except that a
    /// repository with a WORKSPACE and no MODULE.bazel still has its WORKSPACE evaluated:
    /// such a repository predates Bazel 8, and ignoring its only repository file would
    /// leave nothing to drop in.
    pub fn resolve(&self, root: &Path) -> (bool, bool) {
        let major = std::fs::read_to_string(root.join(".bazelversion")).ok().and_then(|text| bazel_major(&text));
        let (bzlmod, workspace) = match major {
            Some(m) if m <= 6 => (false, true),
            Some(7) => (true, true),
            Some(_) => (true, false),
            None => (true, !root.join("MODULE.bazel").is_file()),
        };
        (self.enable_bzlmod.unwrap_or(bzlmod), self.enable_workspace.unwrap_or(workspace))
    }
}

/// The major version of a `.bazelversion` (`7.4.1`, `8.0.0rc1`, `6.x`), if it names one; a
/// Bazelisk alias (`latest`, `rolling`, `last_green`) or a fork (`user/7.0.0`: the part after
/// the last `/`) without a number gives `None`.
fn bazel_major(text: &str) -> Option<u32> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#'))?;
    let version = line.rsplit('/').next().unwrap_or(line);
    let digits: String = version.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// Opens the workspace containing `dir` ([`Workspace::find`]) and evaluates MODULE.bazel and
/// WORKSPACE(.bazel) to learn its external repositories, as far as the [`RepoFlags`] set for
/// this process (or their defaults) enable them. The .bzl files those load see the native
/// rule kinds `kinds`.
pub fn open_workspace(dir: &Path, kinds: &RuleKinds) -> Result<Workspace> {
    let mut ws = Workspace::find(dir)?;
    let flags = REPO_FLAGS.get().copied().unwrap_or_default();
    evaluate_repository_files(&mut ws, kinds, flags)?;
    ws.go_modules.repos = ws
        .repos
        .iter()
        .filter_map(|r| match &r.source {
            RepoSource::GoModule(spec) => Some((r.name.clone(), (**spec).clone())),
            _ => None,
        })
        .collect();
    Ok(ws)
}

fn evaluate_repository_files(ws: &mut Workspace, kinds: &RuleKinds, flags: RepoFlags) -> Result<()> {
    let (bzlmod, workspace) = flags.resolve(&ws.root);
    let module = ws.root.join("MODULE.bazel");
    if bzlmod && module.is_file() {
        let ctx = RepoFileContext::default();
        evaluate(ws, &module, RepoFileKind::Module, kinds, &ctx)?;
        evaluate_includes(ws, kinds, &ctx)?;
        apply(ws, ctx, kinds)?;
    }
    if !workspace {
        return Ok(());
    }
    // Bazel: with Bzlmod on, WORKSPACE.bzlmod (if present) replaces WORKSPACE entirely.
    let candidates: &[&str] =
        if bzlmod && ws.root.join("WORKSPACE.bzlmod").is_file() { &["WORKSPACE.bzlmod"] } else { &["WORKSPACE.bazel", "WORKSPACE"] };
    for name in candidates {
        let path = ws.root.join(name);
        if path.is_file() {
            let ctx = RepoFileContext::default();
            evaluate(ws, &path, RepoFileKind::Workspace, kinds, &ctx)?;
            apply(ws, ctx, kinds)?;
            break;
        }
    }
    Ok(())
}

/// Evaluates the files MODULE.bazel `include()`s (and those they include) into the same
/// module, each once. Bazel only allows labels of the main repository here.
fn evaluate_includes(ws: &Workspace, kinds: &RuleKinds, ctx: &RepoFileContext) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    loop {
        let pending: Vec<String> = ctx.includes.borrow_mut().drain(..).collect();
        if pending.is_empty() {
            return Ok(());
        }
        for spec in pending {
            let label = Label::parse(&spec, &PackageId::main(""), &|r| Some(r.to_owned()))
                .map_err(|e| anyhow!("MODULE.bazel: include('{spec}'): {e}"))?;
            if !label.repo.is_empty() {
                bail!("MODULE.bazel: include('{spec}'): only files of the main repository can be included");
            }
            let path = if label.package.is_empty() { ws.root.join(&label.name) } else { ws.root.join(&label.package).join(&label.name) };
            if seen.insert(path.clone()) {
                evaluate(ws, &path, RepoFileKind::Module, kinds, ctx)
                    .with_context(|| format!("in the file included by include('{spec}')"))?;
            }
        }
    }
}

fn evaluate(ws: &Workspace, path: &Path, kind: RepoFileKind, kinds: &RuleKinds, ctx: &RepoFileContext) -> Result<()> {
    let display = path.strip_prefix(&ws.root).unwrap_or(path).to_string_lossy().into_owned();
    let text = crate::load::source::read_source(path).with_context(|| format!("reading {}", path.display()))?;
    crate::load::source::check_nesting(&text).map_err(|at| anyhow!("{}", at.message(&display)))?;
    let dialect = match kind {
        RepoFileKind::Workspace => Dialect { enable_def: false, ..bzl_dialect() },
        RepoFileKind::Module => Dialect { enable_def: false, enable_load: false, ..bzl_dialect() },
    };
    let ast = AstModule::parse(&display, text, &dialect).map_err(|e| anyhow!("{e}"))?;

    // .bzl files loaded here see the repositories known so far (the prelude's rule sets and
    // whatever MODULE.bazel declared).
    let mut boot = Workspace::bootstrap(ws.root.clone(), ws.ignored.clone());
    boot.repos = ws.repos.clone();
    boot.rule_set_versions = ws.rule_set_versions.clone();
    boot.name = match kind {
        RepoFileKind::Workspace => super::ast_info::workspace_name(&ast).unwrap_or_else(|| ws.name.clone()),
        RepoFileKind::Module => ws.name.clone(),
    };
    let loader = Loader::new(Arc::new(boot), kinds);
    let mut modules: Vec<(String, FrozenModule)> = Vec::new();
    for load in ast.loads() {
        let label = Label::parse(load.module_id, &PackageId::main(""), &|r| loader.workspace().map_repo(r))
            .map_err(|e| anyhow!("{}: {e}", load.span))?;
        let symbols: Vec<&str> = load.symbols.values().copied().collect();
        let module = loader.load_for_repository_file(&label, &symbols).map_err(|e| anyhow!("{}: {e}", load.span))?;
        modules.push((load.module_id.to_owned(), module));
    }

    let globals = match kind {
        RepoFileKind::Workspace => repo_globals::workspace_globals(),
        RepoFileKind::Module => repo_globals::module_globals(),
    };
    let refs: HashMap<&str, &FrozenModule> = modules.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let file_loader = ReturnFileLoader { modules: &refs };
    Module::with_temp_heap(|module| -> Result<()> {
        let mut eval = Evaluator::new(&module);
        let limited = crate::load::limit_evaluator(&mut eval);
        eval.set_loader(&file_loader);
        eval.extra = Some(ctx);
        eval.eval_module(ast, &globals).map_err(|e| anyhow!("{}", limited.message(e)))?;
        Ok(())
    })
}

/// Known rule sets by module name: what a `bazel_dep` on them maps to.
fn prelude_module(name: &str) -> Option<&'static str> {
    Some(match name {
        "rules_oci" => "rules_oci",
        "rules_pkg" => "rules_pkg",
        "rules_go" | "io_bazel_rules_go" => "io_bazel_rules_go",
        "container_structure_test" => "container_structure_test",
        "rules_apko" => "rules_apko",
        "aspect_bazel_lib" | "bazel_lib" => "aspect_bazel_lib",
        "bazel_skylib" => "bazel_skylib",
        "platforms" => "platforms",
        "rules_distroless" => "rules_distroless",
        "gazelle" | "bazel_gazelle" => "bazel_gazelle",
        _ => return None,
    })
}

fn apply(ws: &mut Workspace, ctx: RepoFileContext, kinds: &RuleKinds) -> Result<()> {
    if let Some(name) = ctx.workspace_name.into_inner() {
        ws.name = name;
    }
    let overrides = ctx.overrides.into_inner();
    let mut versions = ctx.versions.into_inner();
    versions.extend(ctx.version_overrides.into_inner());
    // A module taken from a local path is whatever that source is (its `bazel_dep` version
    // is commonly the placeholder "0.0.0"): unpinned.
    versions.retain(|module, text| !overrides.contains_key(module) && crate::workspace::parse_version(text) != Some((0, 0, 0)));
    for (name, text) in versions {
        let canonical = prelude_module(&name).map(str::to_owned).or_else(|| ws.repos.canonical(&name));
        if let (Some(canonical), Some(version)) = (canonical, crate::workspace::parse_version(&text))
            && ws.repos.is_prelude(&canonical)
        {
            ws.rule_set_versions.insert(canonical, version);
        }
    }
    for (module, repo_name) in ctx.deps.into_inner() {
        if let Some(path) = overrides.get(&module) {
            ws.repos.add(Repo { name: repo_name, source: RepoSource::Local(ws.root.join(path)) });
        } else if let Some(canonical) = prelude_module(&module) {
            ws.repos.alias(&repo_name, canonical);
        } else if ws.repos.get(&repo_name).is_none() {
            ws.repos.add(Repo { name: repo_name, source: RepoSource::Unknown { rule: format!("bazel_dep({module})") } });
        }
    }
    for mut repo in ctx.repos.into_inner() {
        if let RepoSource::Local(path) = &repo.source {
            repo.source = RepoSource::Local(ws.root.join(path));
        }
        // http_archive of a rule set ocib embeds is the embedded one.
        if matches!(repo.source, RepoSource::Unknown { .. }) && ws.repos.is_prelude(&repo.name) {
            continue;
        }
        ws.repos.add(repo);
    }
    let mut provided = Vec::new();
    let tags = ctx.tags.into_inner();
    let go_deps_tags: Vec<(String, BTreeMap<String, Raw>)> =
        tags.iter().filter(|(ext, _, _)| super::go_repos::is_go_deps(ext)).map(|(_, tag, attrs)| (tag.clone(), attrs.clone())).collect();
    if !go_deps_tags.is_empty() {
        // Never fatal for loading (a go.mod that is missing or malformed only matters to a
        // build of its modules): warn, and the used names stay unknown repositories.
        match super::go_repos::go_deps(ws, &go_deps_tags) {
            Ok((repos, deps)) => {
                for repo in repos {
                    provided.push(repo.name.clone());
                    ws.repos.add(repo);
                }
                if deps.is_some() {
                    ws.go_modules.go_deps = deps;
                }
            }
            Err(e) => ws.warnings.push(format!("{e:#}; the go_deps repositories are unknown (building from them fails)")),
        }
    }
    // The main repository's own module extensions, run as Bazel runs them (issue 11).
    let own: Vec<(String, String)> = ctx.extension_repos.into_inner().into_iter().filter(|(ext, _)| !emulated_extension(ext)).collect();
    let (generated, warnings) = super::module_ext::run_extensions(ws, kinds, &tags, &own);
    ws.warnings.extend(warnings);
    for repo in generated {
        provided.push(repo.name.clone());
        ws.repos.add(repo);
    }
    for (extension, tag, attrs) in tags {
        // The repositories an emulated tag declares. Never fatal for loading (issue 11: a tag
        // written for another version of the rule set's API, or a lock file that is missing or
        // malformed, only matters to a build from those repositories): warn, and the names
        // the module uses stay unknown repositories, as for go_deps above.
        let declared = if extension == super::go_repos::WORKSPACE_GO_REPOSITORY {
            super::go_repos::go_repository(ws, &attrs).map(|repo| Some((vec![repo], Vec::new())))
        } else if (extension == WORKSPACE_OCI_PULL || extension.ends_with("//oci:extensions.bzl%oci")) && tag == "pull" {
            oci_pull_repos(&attrs).map(Some)
        } else if super::apt::is_apt_extension(&extension) && tag == "install" {
            super::apt::install_repos(&ws.root, &attrs).map(Some)
        } else if (extension == WORKSPACE_APKO_LOCK || extension.ends_with("//apko:extensions.bzl%apko")) && tag == "translate_lock" {
            super::apko_lock::lock_repo(&ws.root, &attrs).map(|repo| Some((vec![repo], Vec::new())))
        } else {
            Ok(None)
        };
        match declared {
            Ok(Some((repos, warnings))) => {
                ws.warnings.extend(warnings);
                for repo in repos {
                    provided.push(repo.name.clone());
                    ws.repos.add(repo);
                }
            }
            Ok(None) => {}
            Err(e) => ws.warnings.push(format!("{e:#}; the repositories it declares are unknown (building from them fails)")),
        }
    }
    for (apparent, name) in ctx.used_repos.into_inner() {
        if ws.repos.get(&name).is_some() {
            ws.repos.alias(&apparent, &name);
        } else if !provided.contains(&name) {
            ws.repos.add(Repo { name: apparent, source: RepoSource::Unknown { rule: "use_repo".into() } });
        }
    }
    Ok(())
}

/// Whether ocib emulates the extension `ext` (`<bzl label>%<name>`) of a rule set it embeds,
/// rather than running it (even from a local copy of the rule set's source).
fn emulated_extension(ext: &str) -> bool {
    super::go_repos::is_go_deps(ext)
        || ext.ends_with("//oci:extensions.bzl%oci")
        || ext.ends_with("//apko:extensions.bzl%apko")
        || super::apt::is_apt_extension(ext)
}

/// rules_oci's table of platforms the `@name` alias can select on.
const PLATFORM_CPUS: &[(&str, &str)] = &[
    ("linux/amd64", "@platforms//cpu:x86_64"),
    ("linux/arm64", "@platforms//cpu:arm64"),
    ("linux/arm64/v8", "@platforms//cpu:arm64"),
    ("linux/arm/v7", "@platforms//cpu:armv7"),
    ("linux/ppc64le", "@platforms//cpu:ppc"),
    ("linux/s390x", "@platforms//cpu:s390x"),
    ("linux/386", "@platforms//cpu:i386"),
    ("linux/mips64le", "@platforms//cpu:mips64"),
];

fn string_attr(attrs: &BTreeMap<String, Raw>, key: &str) -> Option<String> {
    match attrs.get(key) {
        Some(Raw::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

fn list_attr(attrs: &BTreeMap<String, Raw>, key: &str) -> Vec<String> {
    match attrs.get(key) {
        Some(Raw::List(items)) => items
            .iter()
            .filter_map(|i| match i {
                Raw::String(s) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        _ => vec![],
    }
}

/// The repositories one `oci_pull` / `oci.pull` declares, as rules_oci names them: one per
/// platform (`<name>_linux_amd64`) or `<name>_single`, plus the alias repository `<name>`.
pub fn oci_pull_repos(attrs: &BTreeMap<String, Raw>) -> Result<(Vec<Repo>, Vec<String>)> {
    let name = string_attr(attrs, "name").ok_or_else(|| anyhow!("oci_pull: 'name' is required"))?;
    crate::graph::label::validate_repo_name(&name, &name)?;
    let image = string_attr(attrs, "image");
    let split = (string_attr(attrs, "registry"), string_attr(attrs, "repository"));
    match (&image, &split) {
        (Some(_), (None, None)) | (None, (Some(_), Some(_))) => {}
        (Some(_), _) => bail!("oci_pull({name}): 'image' cannot be combined with 'registry'/'repository'"),
        (None, _) => bail!("oci_pull({name}): give either 'image', or both 'registry' and 'repository'"),
    }
    let digest = string_attr(attrs, "digest");
    let tag = string_attr(attrs, "tag");
    let image_has_digest = image.as_deref().is_some_and(|i| i.contains("@sha256:"));
    let image_has_tag = image.as_deref().is_some_and(|i| i.rsplit('/').next().is_some_and(|last| last.contains(':')));
    if digest.is_none() && tag.is_none() && !image_has_digest && !image_has_tag {
        bail!("oci_pull({name}): one of 'digest' or 'tag' must be set");
    }
    let reproducible = !matches!(attrs.get("reproducible"), Some(Raw::Bool(false)));
    let mut warnings = Vec::new();
    if digest.is_none() && !image_has_digest && reproducible {
        warnings.push(format!(
            "oci_pull({name}) uses a tag without a digest, so builds are not reproducible: pin it with digest = \"sha256:...\" (or set reproducible = False to silence this)"
        ));
    }
    let tags = list_attr(attrs, "bazel_tags");
    let platforms = list_attr(attrs, "platforms");
    let mut repos = Vec::new();
    let alias_actual = if platforms.is_empty() {
        let single = format!("{name}_single");
        repos.push(pulled_repo(&single, None, &name, attrs, &tags));
        quote(&format!("@{single}//:{single}"))
    } else {
        let mut branches = Vec::new();
        for platform in &platforms {
            let repo_name = format!("{name}_{}", platform.replace('/', "_"));
            repos.push(pulled_repo(&repo_name, Some(platform.clone()), &name, attrs, &tags));
            if let Some((_, cpu)) = PLATFORM_CPUS.iter().find(|(p, _)| p == platform)
                && !branches.iter().any(|(c, _): &(&str, String)| c == cpu)
            {
                branches.push((*cpu, format!("@{repo_name}")));
            }
        }
        if branches.is_empty() {
            bail!("oci_pull({name}): none of the platforms {platforms:?} is one rules_oci can select on");
        }
        let entries: Vec<String> = branches.iter().map(|(cpu, repo)| format!("{}: {}", quote(cpu), quote(repo))).collect();
        format!(
            "select({{{}}}, no_match_error = {})",
            entries.join(", "),
            quote(&format!("No matching platform for image {name}; available platforms: {}", platforms.join(", ")))
        )
    };
    let alias_build = format!(
        "alias(\n    name = {n},\n    actual = {alias_actual},\n    visibility = [\"//visibility:public\"],\n)\n\nfilegroup(\n    name = \"digest\",\n    srcs = [\"digest.txt\"],\n    visibility = [\"//visibility:public\"],\n)\n",
        n = quote(&name)
    );
    repos.push(Repo { name: name.clone(), source: RepoSource::Generated { build_file: alias_build, pull: None } });
    Ok((repos, warnings))
}

fn pulled_repo(repo_name: &str, platform: Option<String>, pull_name: &str, attrs: &BTreeMap<String, Raw>, tags: &[String]) -> Repo {
    let tag_list: Vec<String> = tags.iter().map(|t| quote(t)).collect();
    let build_file = format!(
        "load(\"@aspect_bazel_lib//lib:copy_to_directory.bzl\", \"copy_to_directory\")\n\ncopy_to_directory(\n    name = {n},\n    out = \"layout\",\n    hardlink = \"on\",\n    include_external_repositories = [\"*\"],\n    srcs = glob([\"blobs/**\"]) + [\"oci-layout\", \"index.json\"],\n    tags = [{tags}],\n    visibility = [\"//visibility:public\"],\n)\n",
        n = quote(repo_name),
        tags = tag_list.join(", ")
    );
    let spec = OciPullSpec { name: pull_name.to_owned(), platform, attrs: attrs.clone() };
    Repo { name: repo_name.to_owned(), source: RepoSource::Generated { build_file, pull: Some(spec) } }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, Raw)]) -> BTreeMap<String, Raw> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    #[test]
    fn bazel_major_versions() {
        assert_eq!(bazel_major("7.4.1\n"), Some(7));
        assert_eq!(bazel_major("# pinned\n8.0.0rc1"), Some(8));
        assert_eq!(bazel_major("6.x"), Some(6));
        assert_eq!(bazel_major("myfork/7.1.0"), Some(7));
        assert_eq!(bazel_major("latest"), None);
        assert_eq!(bazel_major(""), None);
    }

    #[test]
    fn platforms_give_one_repo_each_plus_alias() {
        let a = attrs(&[
            ("name", Raw::String("base".into())),
            ("image", Raw::String("example.com/base".into())),
            ("digest", Raw::String("sha256:abc".into())),
            ("platforms", Raw::List(vec![Raw::String("linux/amd64".into()), Raw::String("linux/arm64/v8".into())])),
        ]);
        let (repos, warnings) = oci_pull_repos(&a).unwrap();
        let names: Vec<&str> = repos.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["base_linux_amd64", "base_linux_arm64_v8", "base"]);
        assert!(warnings.is_empty());
    }

    #[test]
    fn single_platform_and_tag_warning() {
        let a = attrs(&[("name", Raw::String("b".into())), ("image", Raw::String("x/y".into())), ("tag", Raw::String("1".into()))]);
        let (repos, warnings) = oci_pull_repos(&a).unwrap();
        assert_eq!(repos[0].name, "b_single");
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn invalid_combinations_fail() {
        let no_ref = attrs(&[("name", Raw::String("b".into())), ("image", Raw::String("x/y".into()))]);
        assert!(oci_pull_repos(&no_ref).is_err());
        let both = attrs(&[
            ("name", Raw::String("b".into())),
            ("image", Raw::String("x/y".into())),
            ("registry", Raw::String("r".into())),
            ("digest", Raw::String("sha256:1".into())),
        ]);
        assert!(oci_pull_repos(&both).is_err());
    }
}
