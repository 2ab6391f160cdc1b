//! Go module repositories from WORKSPACE `go_repository(...)` calls and MODULE.bazel's gazelle
//! `go_deps` extension tags (`from_file`, `module`, `gazelle_override`, `module_override`),
//! turned into [`GoModuleSpec`]s. Fetching happens later, when a build first needs one
//! (`workspace::gomod`).

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{Context, Result, anyhow};

use crate::graph::Raw;
use crate::graph::label::{Label, PackageId};
use crate::workspace::gomod::{GoDeps, GoModuleSpec, modfile};
use crate::workspace::{Repo, RepoSource, Workspace};

/// The tag id WORKSPACE `go_repository` calls are recorded under.
pub const WORKSPACE_GO_REPOSITORY: &str = "WORKSPACE%go_repository";

/// Whether `extension` is gazelle's `go_deps` (`@gazelle//:extensions.bzl%go_deps`, or
/// `@bazel_gazelle//...`).
pub fn is_go_deps(extension: &str) -> bool {
    extension.ends_with("//:extensions.bzl%go_deps")
}

fn string(attrs: &BTreeMap<String, Raw>, key: &str) -> String {
    match attrs.get(key) {
        Some(Raw::String(s)) => s.clone(),
        _ => String::new(),
    }
}

fn strings(attrs: &BTreeMap<String, Raw>, key: &str) -> Vec<String> {
    match attrs.get(key) {
        Some(Raw::List(items)) => items
            .iter()
            .filter_map(|i| match i {
                Raw::String(s) => Some(s.clone()),
                Raw::Label(l) => Some(l.to_string()),
                _ => None,
            })
            .collect(),
        _ => vec![],
    }
}

/// `-pN` of `go_repository`'s `patch_args` (default `["-p0"]`).
fn patch_strip(args: &[String]) -> usize {
    args.iter().rev().find_map(|a| a.strip_prefix("-p").and_then(|n| n.parse().ok())).unwrap_or(0)
}

/// A file of the main repository named by a label (`//:go.mod`, `//patches:x.patch`).
fn main_repo_file(ws: &Workspace, label: &str) -> Result<PathBuf> {
    let parsed = Label::parse(label, &PackageId::main(""), &|r| ws.map_repo(r)).map_err(|e| anyhow!("'{label}': {e}"))?;
    if !parsed.repo.is_empty() {
        return Err(anyhow!("'{label}': only files of the main repository are supported here"));
    }
    Ok(if parsed.package.is_empty() { ws.root.join(&parsed.name) } else { ws.root.join(&parsed.package).join(&parsed.name) })
}

/// A `tag` that is a module version (`v0.5.9`) of a `go_repository` without `remote`: the go
/// command could fetch that version from a proxy, so ocib does.
fn tag_as_version(attrs: &BTreeMap<String, Raw>) -> Option<String> {
    let tag = string(attrs, "tag");
    let semver = tag.strip_prefix('v').is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()));
    (semver && string(attrs, "remote").is_empty() && string(attrs, "version").is_empty()).then_some(tag)
}

/// What is not supported of a `go_repository`'s attributes, as a sentence (reported when the
/// repository is first used, so `query` still works).
fn unsupported(attrs: &BTreeMap<String, Raw>) -> Option<String> {
    for key in ["commit", "tag", "remote", "urls", "vcs"] {
        if key == "tag" && tag_as_version(attrs).is_some() {
            continue;
        }
        if !string(attrs, key).is_empty() || !strings(attrs, key).is_empty() {
            return Some(format!(
                "attribute '{key}' needs version control or an archive download; ocib fetches Go modules only through GOPROXY: give 'version' and 'sum'"
            ));
        }
    }
    None
}

/// The repository one WORKSPACE `go_repository(...)` declares.
pub fn go_repository(ws: &Workspace, attrs: &BTreeMap<String, Raw>) -> Result<Repo> {
    let name = string(attrs, "name");
    crate::graph::label::validate_repo_name(&name, &name)?;
    let mut patches = Vec::new();
    for p in strings(attrs, "patches") {
        patches.push(main_repo_file(ws, &p).with_context(|| format!("go_repository({name}): patches"))?);
    }
    let importpath = string(attrs, "importpath");
    let replace = string(attrs, "replace");
    let mut spec = GoModuleSpec {
        importpath: importpath.clone(),
        version: tag_as_version(attrs).unwrap_or_else(|| string(attrs, "version")),
        sum: string(attrs, "sum"),
        build_directives: strings(attrs, "build_directives"),
        build_file_generation: string(attrs, "build_file_generation"),
        patches,
        patch_strip: patch_strip(&strings(attrs, "patch_args")),
        unsupported: unsupported(attrs),
        ..Default::default()
    };
    if importpath.is_empty() {
        spec.unsupported = Some("attribute 'importpath' is required".into());
    }
    if !replace.is_empty() {
        spec.fetch_path = replace;
    }
    if spec.version.is_empty() && spec.unsupported.is_none() {
        spec.unsupported = Some("attribute 'version' is required (ocib fetches Go modules through GOPROXY)".into());
    }
    Ok(Repo { name, source: RepoSource::GoModule(Box::new(spec)) })
}

/// The repositories gazelle's `go_deps` tags declare, and the go.mod/go.sum `from_file` read.
pub fn go_deps(ws: &Workspace, tags: &[(String, BTreeMap<String, Raw>)]) -> Result<(Vec<Repo>, Option<GoDeps>)> {
    let mut specs: BTreeMap<String, GoModuleSpec> = BTreeMap::new();
    let mut deps: Option<GoDeps> = None;
    for (tag, attrs) in tags {
        match tag.as_str() {
            "from_file" => {
                let label = string(attrs, "go_mod");
                let path = main_repo_file(ws, &label).context("go_deps.from_file(go_mod)")?;
                let display = path.strip_prefix(&ws.root).unwrap_or(&path).display().to_string();
                let text = std::fs::read_to_string(&path).with_context(|| format!("go_deps.from_file: reading {display}"))?;
                let go_mod = modfile::parse_go_mod(&display, &text)?;
                let sum_path = path.with_file_name("go.sum");
                let sums = match std::fs::read_to_string(&sum_path) {
                    Ok(t) => modfile::parse_go_sum(&sum_path.display().to_string(), &t)?,
                    Err(_) => BTreeMap::new(),
                };
                let dir = path.parent().map(PathBuf::from).unwrap_or_else(|| ws.root.clone());
                for (module, version, _) in &go_mod.require {
                    let mut spec =
                        GoModuleSpec { importpath: module.clone(), version: version.clone(), from_go_deps: true, ..Default::default() };
                    if let Some(r) =
                        go_mod.replace.iter().find(|r| &r.old_path == module && r.old_version.as_ref().is_none_or(|v| v == version))
                    {
                        match &r.new_version {
                            None => spec.local_path = Some(dir.join(&r.new_path)),
                            Some(v) => {
                                spec.fetch_path = r.new_path.clone();
                                spec.version = v.clone();
                            }
                        }
                    }
                    specs.insert(module.clone(), spec);
                }
                deps = Some(GoDeps { go_mod_path: path, go_mod, sums });
            }
            "module" => {
                let path = string(attrs, "path");
                let spec = GoModuleSpec {
                    importpath: path.clone(),
                    version: string(attrs, "version"),
                    sum: string(attrs, "sum"),
                    build_file_generation: String::new(),
                    ..Default::default()
                };
                specs.insert(path, spec);
            }
            _ => {}
        }
    }
    // Overrides apply to whichever tag declared the module.
    for (tag, attrs) in tags {
        let path = string(attrs, "path");
        let Some(spec) = specs.get_mut(&path) else { continue };
        match tag.as_str() {
            "gazelle_override" => {
                spec.build_directives.extend(strings(attrs, "directives"));
                // go_deps: with a gazelle_override, generation defaults to "on".
                let generation = string(attrs, "build_file_generation");
                spec.build_file_generation = if generation.is_empty() { "on".into() } else { generation };
            }
            "module_override" => {
                if let Some(Raw::Int(n)) = attrs.get("patch_strip") {
                    spec.patch_strip = usize::try_from(*n).map_err(|_| anyhow!("go_deps.module_override({path}): patch_strip = {n}"))?;
                }
                for p in strings(attrs, "patches") {
                    spec.patches.push(main_repo_file(ws, &p).with_context(|| format!("go_deps.module_override({path}): patches"))?);
                }
            }
            "archive_override" => {
                spec.unsupported = Some("go_deps.archive_override is not supported: ocib fetches Go modules only through GOPROXY".into());
            }
            _ => {}
        }
    }
    let repos = specs
        .into_values()
        .map(|spec| Repo { name: modfile::repo_name(&spec.importpath), source: RepoSource::GoModule(Box::new(spec)) })
        .collect();
    Ok((repos, deps))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attrs(pairs: &[(&str, Raw)]) -> BTreeMap<String, Raw> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect()
    }

    fn s(v: &str) -> Raw {
        Raw::String(v.into())
    }

    fn spec(repo: Repo) -> GoModuleSpec {
        match repo.source {
            RepoSource::GoModule(spec) => *spec,
            other => panic!("not a Go module: {other:?}"),
        }
    }

    #[test]
    fn go_repository_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::bootstrap(dir.path().to_path_buf(), vec![]);
        let a = attrs(&[
            ("name", s("com_github_google_go_cmp")),
            ("importpath", s("github.com/google/go-cmp")),
            ("tag", s("v0.5.9")),
            ("patches", Raw::List(vec![s("//patches:cmp.patch")])),
            ("patch_args", Raw::List(vec![s("-p1")])),
        ]);
        let got = spec(go_repository(&ws, &a).unwrap());
        assert_eq!(got.version, "v0.5.9");
        assert_eq!(got.unsupported, None);
        assert_eq!(got.patch_strip, 1);
        assert_eq!(got.patches, [dir.path().join("patches/cmp.patch")]);
        let vcs = attrs(&[("name", s("x")), ("importpath", s("example.com/x")), ("commit", s("abc"))]);
        assert!(spec(go_repository(&ws, &vcs).unwrap()).unsupported.unwrap().contains("'commit'"));
    }

    #[test]
    fn go_deps_from_file_with_replaces_and_overrides() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("go.mod"),
            "module example.com/m\n\ngo 1.22\n\nrequire (\n\tgithub.com/a/b v1.0.0\n\tgithub.com/c/d v1.0.0\n)\n\nreplace github.com/a/b => ./b\nreplace github.com/c/d => github.com/e/d v1.1.0\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("go.sum"), "github.com/e/d v1.1.0 h1:x=\n").unwrap();
        let ws = Workspace::bootstrap(dir.path().to_path_buf(), vec![]);
        let tags = vec![
            ("from_file".to_owned(), attrs(&[("go_mod", s("//:go.mod"))])),
            (
                "gazelle_override".to_owned(),
                attrs(&[("path", s("github.com/c/d")), ("directives", Raw::List(vec![s("gazelle:proto disable")]))]),
            ),
            ("module".to_owned(), attrs(&[("path", s("golang.org/x/tools")), ("version", s("v0.15.0")), ("sum", s("h1:y="))])),
        ];
        let (repos, deps) = go_deps(&ws, &tags).unwrap();
        let names: Vec<&str> = repos.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["com_github_a_b", "com_github_c_d", "org_golang_x_tools"]);
        let specs: Vec<GoModuleSpec> = repos.into_iter().map(spec).collect();
        assert_eq!(specs[0].local_path, Some(dir.path().join("./b")));
        assert_eq!((specs[1].fetch_path.as_str(), specs[1].version.as_str()), ("github.com/e/d", "v1.1.0"));
        assert_eq!(specs[1].build_file_generation, "on");
        assert_eq!(specs[1].build_directives, ["gazelle:proto disable"]);
        assert_eq!(specs[2].sum, "h1:y=");
        assert!(deps.unwrap().sums.contains_key(&("github.com/e/d".to_owned(), "v1.1.0".to_owned())));
    }
}
