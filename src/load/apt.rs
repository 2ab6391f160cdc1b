//! rules_distroless's `apt.install` (module extension tag and WORKSPACE macro): reads the
//! manifest YAML and the lock JSON and declares the repositories rules_distroless generates —
//! one per locked package (`@<name>_<key>`: `:deb`, `:data`, `:control`) and the `@<name>` hub
//! with `//<pkg>/<arch>` (the package's data plus its locked dependencies'), `//<pkg>:data`,
//! `//<pkg>:control`, `//:dpkg_status`, `//:packages`, `//:<name>` and `//:flat`
//! (`apt/private/deb_translate_lock.bzl`). Dependencies come from the lock only: ocib never
//! resolves packages against a mirror, so a build is the same wherever it runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;

use crate::graph::label::{Label, PackageId};
use crate::graph::{Raw, quote};
use crate::workspace::{Repo, RepoSource};

/// The extension id WORKSPACE `apt.install` calls are recorded under (like `oci_pull`'s).
pub const WORKSPACE_APT: &str = "WORKSPACE%apt";

/// Whether a tag's extension is rules_distroless's `apt` (MODULE.bazel or WORKSPACE form).
pub fn is_apt_extension(id: &str) -> bool {
    id == WORKSPACE_APT || id.ends_with("//apt:extensions.bzl%apt")
}

/// The lock file rules_distroless writes (`apt/private/lockfile.bzl`, version 1).
#[derive(Debug, Deserialize)]
pub struct Lock {
    pub version: u32,
    #[serde(default)]
    pub packages: Vec<LockedPackage>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LockedPackage {
    #[serde(default)]
    pub key: String,
    pub name: String,
    pub version: String,
    /// Before rules_distroless 1.0 a lock had one `url`; `from_json` turns it into `urls`.
    #[serde(default)]
    pub urls: Vec<String>,
    #[serde(default)]
    pub url: Option<String>,
    pub sha256: String,
    pub arch: String,
    #[serde(default)]
    pub dependencies: Vec<LockedDependency>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct LockedDependency {
    #[serde(default)]
    pub key: String,
    pub name: String,
    pub version: String,
}

/// The manifest (`version: 1`, `sources`, `archs`, `packages`), read to check the lock
/// against it.
#[derive(Debug, Deserialize)]
struct Manifest {
    #[serde(default)]
    archs: Vec<String>,
    #[serde(default)]
    packages: Vec<String>,
}

/// rules_distroless `util.sanitize`: a version as part of a repository name.
pub fn sanitize(s: &str) -> String {
    s.replace('+', "-p-").replace(':', "-").replace('~', "_")
}

/// `lockfile.make_package_key`: `<name>_<version>_<arch>`, sanitized.
pub fn package_key(name: &str, version: &str, arch: &str) -> String {
    format!("{}_{}_{arch}", sanitize(name), sanitize(version))
}

fn string_attr(attrs: &BTreeMap<String, Raw>, key: &str) -> Option<String> {
    match attrs.get(key) {
        Some(Raw::String(s)) if !s.is_empty() => Some(s.clone()),
        // `Label("//:x.yaml")`, resolved where it was written.
        Some(Raw::Label(l)) if l.repo.is_empty() => Some(format!("//{}:{}", l.package, l.name)),
        Some(Raw::Label(l)) => Some(format!("@{}//{}:{}", l.repo, l.package, l.name)),
        _ => None,
    }
}

/// A file label of the main repository (`//apt:bookworm.yaml`, `:x.lock.json`) as a path.
fn label_path(root: &Path, name: &str, attr: &str, text: &str) -> Result<PathBuf> {
    let label = Label::parse(text, &PackageId::main(""), &|r| Some(r.to_owned()))
        .map_err(|e| anyhow!("apt.install({name}): {attr} = {}: {e}", quote(text)))?;
    if !label.repo.is_empty() {
        bail!("apt.install({name}): {attr} = {}: only files of the main repository are supported", quote(text));
    }
    Ok(if label.package.is_empty() { root.join(&label.name) } else { root.join(&label.package).join(&label.name) })
}

/// The repositories one `apt.install` declares, and warnings (a manifest package the lock
/// lacks). `root` is the workspace root the labels are relative to.
pub fn install_repos(root: &Path, attrs: &BTreeMap<String, Raw>) -> Result<(Vec<Repo>, Vec<String>)> {
    let Some(name) = string_attr(attrs, "name") else {
        // rules_distroless after 0.9 (`apt.sources_list` + `apt.install(dependency_set,
        // packages)`, the hub named after the dependency set) resolves packages against the
        // mirrors at fetch time; ocib emulates the manifest + lock form only.
        if let Some(set) = string_attr(attrs, "dependency_set") {
            bail!(
                "apt.install(dependency_set = {}): the sources_list/dependency_set form of rules_distroless's apt extension \
                 is not supported by ocib, which reads a manifest and a lock (apt.install(name, manifest, lock))",
                quote(&set)
            );
        }
        bail!("apt.install: 'name' is required");
    };
    crate::graph::label::validate_repo_name(&name, &name)?;
    let manifest_label = string_attr(attrs, "manifest").ok_or_else(|| anyhow!("apt.install({name}): 'manifest' is required"))?;
    let Some(lock_label) = string_attr(attrs, "lock") else {
        bail!(
            "apt.install({name}): no 'lock' given. ocib never resolves Debian packages at build time (builds must not depend on \
             what a mirror serves today): generate the lock once (e.g. with Bazel's `bazel run @{name}//:lock`) and set lock = \"//...:{name}.lock.json\""
        );
    };
    let manifest_path = label_path(root, &name, "manifest", &manifest_label)?;
    let lock_path = label_path(root, &name, "lock", &lock_label)?;
    let manifest_text = std::fs::read_to_string(&manifest_path)
        .with_context(|| format!("apt.install({name}): reading manifest {}", manifest_path.display()))?;
    let manifest: Manifest = serde_yaml_ng::from_str(&manifest_text)
        .map_err(|e| anyhow!("apt.install({name}): {}: not a rules_distroless manifest: {e}", manifest_path.display()))?;
    let lock_text =
        std::fs::read_to_string(&lock_path).with_context(|| format!("apt.install({name}): reading lock {}", lock_path.display()))?;
    let lock = parse_lock(&lock_text).map_err(|e| anyhow!("apt.install({name}): {}: {e}", lock_path.display()))?;

    let mut warnings = Vec::new();
    for arch in &manifest.archs {
        for package in &manifest.packages {
            // A manifest entry may carry a version constraint (`foo=1.2`): the name is before it.
            let bare = package.split(['=', ' ', '(']).next().unwrap_or(package);
            if !lock.packages.iter().any(|p| p.name == bare && p.arch == *arch) {
                warnings.push(format!(
                    "apt.install({name}): {} lists '{package}' for {arch}, but the lock {} has no such package: regenerate the lock",
                    manifest_path.display(),
                    lock_path.display()
                ));
            }
        }
    }
    let mergedusr = matches!(attrs.get("mergedusr"), Some(Raw::Bool(true)));
    Ok((repos_for_lock(&name, &lock, mergedusr), warnings))
}

/// Parses and checks a lock: version 1, each package with a sha256 and at least one URL.
pub fn parse_lock(text: &str) -> Result<Lock> {
    if text.trim().is_empty() {
        // rules_distroless accepts an empty lock as one with no packages.
        return Ok(Lock { version: 1, packages: vec![] });
    }
    let mut lock: Lock = serde_json::from_str(text).map_err(|e| anyhow!("not a rules_distroless lock: {e}"))?;
    if lock.version != 1 {
        bail!("invalid lockfile version {} (rules_distroless writes version 1)", lock.version);
    }
    for p in &mut lock.packages {
        if let Some(url) = p.url.take() {
            p.urls.insert(0, url);
        }
        if p.urls.is_empty() {
            bail!("package {} {} ({}) has no urls", p.name, p.version, p.arch);
        }
        if p.sha256.len() != 64 || !p.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            bail!("package {} {} ({}): sha256 '{}' is not a hex sha256", p.name, p.version, p.arch, p.sha256);
        }
        if p.name.is_empty() || p.name.contains(['/', ':', '\\']) || p.arch.is_empty() || p.arch.contains(['/', ':']) {
            bail!("package '{}' ({}): not a Debian package name and architecture", p.name, p.arch);
        }
    }
    Ok(lock)
}

fn list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|i| quote(i)).collect();
    format!("[{}]", quoted.join(", "))
}

/// rules_distroless's `_ARCHITECTURE_MAP`: Debian architectures to `@platforms//cpu` names.
fn cpu(arch: &str) -> &str {
    match arch {
        "amd64" => "x86_64",
        "arm64" => "arm64",
        "ppc64el" => "ppc64le",
        "mips64el" => "mips64",
        "s390x" => "s390x",
        "i386" => "x86_32",
        "armhf" => "armv7e-mf",
        other => other,
    }
}

/// The repositories for a parsed lock: the per-package ones and the `@<name>` hub.
/// `mergedusr`: the packages' data moves `/bin`, `/sbin`, `/lib*` under `/usr`.
pub fn repos_for_lock(name: &str, lock: &Lock, mergedusr: bool) -> Vec<Repo> {
    let mut repos = Vec::new();
    let mut tree: BTreeMap<String, String> = BTreeMap::new();
    // arch → package names, package → archs (first-seen order, as the Starlark dicts keep).
    let mut architectures: Vec<(String, Vec<String>)> = Vec::new();
    let mut packages: Vec<(String, Vec<String>)> = Vec::new();
    let mut seen = BTreeSet::new();
    for p in &lock.packages {
        let key = package_key(&p.name, &p.version, &p.arch);
        if !seen.insert(key.clone()) {
            continue;
        }
        match architectures.iter_mut().find(|(a, _)| *a == p.arch) {
            Some((_, names)) if !names.contains(&p.name) => names.push(p.name.clone()),
            Some(_) => {}
            None => architectures.push((p.arch.clone(), vec![p.name.clone()])),
        }
        match packages.iter_mut().find(|(n, _)| *n == p.name) {
            Some((_, archs)) if !archs.contains(&p.arch) => archs.push(p.arch.clone()),
            Some(_) => {}
            None => packages.push((p.name.clone(), vec![p.arch.clone()])),
        }
        let repo_name = format!("{name}_{key}");
        let build = format!(
            "\"\"\"Generated by ocib for rules_distroless's apt.install. DO NOT EDIT.\"\"\"\n\n\
             load(\"@rules_distroless//apt/private:deb_import.bzl\", \"deb_archive\", \"deb_control\", \"deb_data\")\n\n\
             deb_archive(\n    name = \"deb\",\n    package_name = {pkg},\n    version = {version},\n    arch = {arch},\n    urls = {urls},\n    sha256 = {sha},\n    visibility = [\"//visibility:public\"],\n)\n\n\
             deb_data(\n    name = \"data\",\n    deb = \":deb\",\n    mergedusr = {mergedusr},\n    visibility = [\"//visibility:public\"],\n)\n\n\
             deb_control(\n    name = \"control\",\n    deb = \":deb\",\n    visibility = [\"//visibility:public\"],\n)\n",
            pkg = quote(&p.name),
            version = quote(&p.version),
            arch = quote(&p.arch),
            urls = list(&p.urls),
            sha = quote(&p.sha256.to_ascii_lowercase()),
            mergedusr = if mergedusr { "True" } else { "False" },
        );
        repos.push(Repo { name: repo_name.clone(), source: RepoSource::Generated { build_file: build, pull: None } });
        let deps: Vec<String> = p.dependencies.iter().map(|d| format!("//{}/{}", d.name, p.arch)).collect();
        tree.insert(
            format!("{}/{}", p.name, p.arch),
            format!(
                "\"\"\"Generated by ocib for rules_distroless's apt.install. DO NOT EDIT.\"\"\"\n\n\
                 alias(\n    name = \"data\",\n    actual = {data},\n    visibility = [\"//visibility:public\"],\n)\n\n\
                 alias(\n    name = \"control\",\n    actual = {control},\n    visibility = [\"//visibility:public\"],\n)\n\n\
                 filegroup(\n    name = {arch},\n    srcs = {deps} + [\":data\"],\n    visibility = [\"//visibility:public\"],\n)\n",
                data = quote(&format!("@{repo_name}//:data")),
                control = quote(&format!("@{repo_name}//:control")),
                arch = quote(&p.arch),
                deps = list(&deps),
            ),
        );
    }
    for (package, archs) in &packages {
        let branches = |target: &str| -> String {
            let entries: Vec<String> = archs
                .iter()
                .map(|a| {
                    let value = if target.is_empty() { format!("//{package}/{a}") } else { format!("//{package}/{a}:{target}") };
                    format!("{}: {}", quote(&format!("//:linux_{a}")), quote(&value))
                })
                .collect();
            format!("{{{}}}", entries.join(", "))
        };
        let list_branches: Vec<String> =
            archs.iter().map(|a| format!("{}: [{}]", quote(&format!("//:linux_{a}")), quote(&format!("//{package}/{a}")))).collect();
        tree.insert(
            package.clone(),
            format!(
                "\"\"\"Generated by ocib for rules_distroless's apt.install. DO NOT EDIT.\"\"\"\n\n\
                 alias(\n    name = \"data\",\n    actual = select({data}),\n    visibility = [\"//visibility:public\"],\n)\n\n\
                 alias(\n    name = \"control\",\n    actual = select({control}),\n    visibility = [\"//visibility:public\"],\n)\n\n\
                 filegroup(\n    name = {name},\n    srcs = select({{{deps}}}) + [\":data\"],\n    visibility = [\"//visibility:public\"],\n)\n",
                data = branches("data"),
                control = branches("control"),
                name = quote(package),
                deps = list_branches.join(", "),
            ),
        );
    }
    let arch_names: Vec<String> = architectures.iter().map(|(a, _)| a.clone()).collect();
    let config_settings: String = arch_names
        .iter()
        .map(|a| {
            format!(
                "config_setting(\n    name = {n},\n    constraint_values = [\n        \"@platforms//os:linux\",\n        {c},\n    ],\n)\n\n",
                n = quote(&format!("linux_{a}")),
                c = quote(&format!("@platforms//cpu:{}", cpu(a))),
            )
        })
        .collect();
    let select_of = |f: &dyn Fn(&str) -> String| -> String {
        if architectures.is_empty() {
            return "[]".to_owned();
        }
        let entries: Vec<String> = architectures
            .iter()
            .map(|(a, names)| {
                let items: Vec<String> = names.iter().map(|n| f(n)).collect();
                format!("{}: {}", quote(&format!("//:linux_{a}")), list(&items))
            })
            .collect();
        format!("select({{{}}})", entries.join(", "))
    };
    let root = format!(
        "\"\"\"Generated by ocib for rules_distroless's apt.install. DO NOT EDIT.\"\"\"\n\n\
         load(\"@rules_distroless//apt:defs.bzl\", \"dpkg_status\")\n\
         load(\"@rules_distroless//distroless:defs.bzl\", \"flatten\")\n\n\
         {config_settings}\
         # Creates /var/lib/dpkg/status with installed package information.\n\
         dpkg_status(\n    name = \"dpkg_status\",\n    controls = {controls},\n    visibility = [\"//visibility:public\"],\n)\n\n\
         filegroup(\n    name = \"packages\",\n    srcs = {packages},\n    visibility = [\"//visibility:public\"],\n)\n\n\
         # A filegroup that contains all the packages and the dpkg status file.\n\
         filegroup(\n    name = {name},\n    srcs = [\n        \":dpkg_status\",\n        \":packages\",\n    ],\n    visibility = [\"//visibility:public\"],\n)\n\n\
         flatten(\n    name = \"flat\",\n    tars = [\n        {name},\n    ],\n    deduplicate = True,\n    visibility = [\"//visibility:public\"],\n)\n",
        controls = select_of(&|n| format!("//{n}:control")),
        packages = select_of(&|n| format!("//{n}")),
        name = quote(name),
    );
    tree.insert(String::new(), root);
    repos.push(Repo { name: name.to_owned(), source: RepoSource::Tree { build_files: tree } });
    repos
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOCK: &str = r#"{
  "packages": [
    {"arch": "amd64", "dependencies": [{"key": "libc6_2.36-9_amd64", "name": "libc6", "version": "2.36-9"}],
     "key": "tini_0.19.0-1-p-b3_amd64", "name": "tini", "sha256": "0000000000000000000000000000000000000000000000000000000000000001",
     "urls": ["http://127.0.0.1:1/pool/main/t/tini/tini_0.19.0-1+b3_amd64.deb"], "version": "0.19.0-1+b3"},
    {"arch": "amd64", "dependencies": [], "key": "libc6_2.36-9_amd64", "name": "libc6",
     "sha256": "0000000000000000000000000000000000000000000000000000000000000002", "url": "http://127.0.0.1:1/libc6.deb", "version": "2.36-9"}
  ],
  "version": 1
}"#;

    #[test]
    fn keys_are_sanitized_like_rules_distroless() {
        assert_eq!(package_key("busybox-static", "1:1.35.0-4+deb12u1+b1", "amd64"), "busybox-static_1-1.35.0-4-p-deb12u1-p-b1_amd64");
        assert_eq!(package_key("ca-certificates", "20250419~deb12u2", "amd64"), "ca-certificates_20250419_deb12u2_amd64");
    }

    #[test]
    fn a_lock_gives_package_repos_and_the_hub() {
        let lock = parse_lock(LOCK).unwrap();
        assert_eq!(lock.packages[1].urls, ["http://127.0.0.1:1/libc6.deb"], "`url` is read as `urls`");
        let repos = repos_for_lock("bookworm", &lock, false);
        let names: Vec<&str> = repos.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["bookworm_tini_0.19.0-1-p-b3_amd64", "bookworm_libc6_2.36-9_amd64", "bookworm"]);
        let RepoSource::Tree { build_files } = &repos[2].source else { panic!("hub is a tree") };
        let packages: Vec<&str> = build_files.keys().map(String::as_str).collect();
        assert_eq!(packages, ["", "libc6", "libc6/amd64", "tini", "tini/amd64"]);
        assert!(build_files["tini/amd64"].contains("srcs = [\"//libc6/amd64\"] + [\":data\"]"), "{}", build_files["tini/amd64"]);
        assert!(build_files["tini/amd64"].contains("@bookworm_tini_0.19.0-1-p-b3_amd64//:data"));
        assert!(build_files[""].contains("\"//:linux_amd64\": [\"//tini:control\", \"//libc6:control\"]"), "{}", build_files[""]);
    }

    #[test]
    fn bad_locks_are_refused() {
        assert!(parse_lock(r#"{"version": 2, "packages": []}"#).is_err());
        assert!(parse_lock(&LOCK.replace("0000000000000000000000000000000000000000000000000000000000000001", "abc")).is_err());
        assert!(parse_lock(&LOCK.replace(r#""name": "tini""#, r#""name": "../tini""#)).is_err());
        assert_eq!(parse_lock("").unwrap().packages.len(), 0);
    }
}
