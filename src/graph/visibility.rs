//! Bazel's visibility: which package may depend on which target (rules, generated files,
//! source files, `exports_files`, `package_group`), shared by analysis and query's `visible()`.

use std::ops::Deref;

use super::{AttrValue, Label, Package, PackageId, TargetRef};

/// One entry of `package_group(packages = [...])`: `//foo`, `//foo/...`, `//...`, `-//foo`,
/// `public`, `private` (the last two as in Bazel 6+; Bazel 4.2.3 rejects them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageSpec {
    negative: bool,
    kind: SpecKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SpecKind {
    Everything,
    Nothing,
    /// One package.
    Exact(PackageId),
    /// A package and everything below it; `//...` is every package of every repository
    /// (Bazel's legacy meaning, before `--incompatible_fix_package_group_reporoot_syntax`).
    Below(PackageId),
}

impl PackageSpec {
    /// Parses `spec` as written in a package_group of repository `repo`; the error is Bazel's.
    pub fn parse(spec: &str, repo: &str) -> Result<PackageSpec, String> {
        let (negative, body) = match spec.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, spec),
        };
        let kind = match body {
            "public" => SpecKind::Everything,
            "private" => SpecKind::Nothing,
            _ => {
                let (spec_repo, path) = match body.strip_prefix('@') {
                    Some(rest) => match rest.split_once("//") {
                        Some((r, p)) => (r.to_owned(), p),
                        None => return Err(format!("invalid package name '{body}': must start with '//'")),
                    },
                    None => match body.strip_prefix("//") {
                        Some(p) => (repo.to_owned(), p),
                        None => return Err(format!("invalid package name '{body}': must start with '//'")),
                    },
                };
                if path == "..." {
                    SpecKind::Everything
                } else if let Some(below) = path.strip_suffix("/...") {
                    SpecKind::Below(PackageId::new(spec_repo, below))
                } else {
                    SpecKind::Exact(PackageId::new(spec_repo, path))
                }
            }
        };
        Ok(PackageSpec { negative, kind })
    }

    fn matches(&self, pkg: &PackageId) -> bool {
        match &self.kind {
            SpecKind::Everything => true,
            SpecKind::Nothing => false,
            SpecKind::Exact(p) => p == pkg,
            SpecKind::Below(p) => {
                p.repo == pkg.repo
                    && (p.package.is_empty() || pkg.package == p.package || pkg.package.starts_with(&format!("{}/", p.package)))
            }
        }
    }
}

/// Whether `pkg` belongs to a package group's own `packages`: it matches a positive spec and
/// no negative one (Bazel's `PackageGroupContents`).
pub fn specs_contain(specs: &[PackageSpec], pkg: &PackageId) -> bool {
    specs.iter().any(|s| !s.negative && s.matches(pkg)) && !specs.iter().any(|s| s.negative && s.matches(pkg))
}

/// The visibility labels of a target: its `visibility` attribute, else the package's
/// `default_visibility` (empty: private). `exports_files` without `visibility` is public;
/// a source file it does not name takes the package's default visibility (Bazel's legacy
/// behaviour, `--incompatible_no_implicit_file_export=false`, the default through Bazel 8).
/// A package group is visible to everyone.
pub fn visibility_of(pkg: &Package, target: &TargetRef) -> Vec<Label> {
    let public = || vec![Label { repo: String::new(), package: "visibility".into(), name: "public".into() }];
    match target {
        TargetRef::Rule(r) | TargetRef::Generated { rule: r, .. } => {
            if r.kind == "package_group" {
                return public();
            }
            match r.attrs.get("visibility") {
                Some(AttrValue::LabelList(v)) => v.clone(),
                _ => pkg.default_visibility.clone(),
            }
        }
        TargetRef::Source { label } => match pkg.exports.get(&label.name) {
            Some(Some(v)) => v.clone(),
            Some(None) => public(),
            None => pkg.default_visibility.clone(),
        },
    }
}

/// Whether the target `dep` (in the loaded package `dep_pkg`) is visible from package `from`.
/// `load` gives the packages holding the package groups named in visibility lists; an error
/// is Bazel's "does not refer to a package group" or the loader's own.
pub fn is_visible<P, E>(
    from: &PackageId,
    dep_pkg: &Package,
    dep: &TargetRef,
    load: &mut dyn FnMut(&PackageId) -> Result<P, E>,
) -> Result<bool, E>
where
    P: Deref<Target = Package>,
    E: From<String>,
{
    if dep_pkg.id == *from {
        return Ok(true);
    }
    for v in visibility_of(dep_pkg, dep) {
        let same_repo = v.repo == from.repo;
        let allowed = match (v.package.as_str(), v.name.as_str()) {
            ("visibility", "public") => true,
            ("visibility", "private") => false,
            (vpkg, "__pkg__") => same_repo && vpkg == from.package,
            (vpkg, "__subpackages__") => {
                same_repo && (vpkg.is_empty() || from.package == vpkg || from.package.starts_with(&format!("{vpkg}/")))
            }
            _ => group_contains(&v, from, load, &mut Vec::new())?,
        };
        if allowed {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether the package group `group` (with its `includes`, transitively) contains `from`.
fn group_contains<P, E>(
    group: &Label,
    from: &PackageId,
    load: &mut dyn FnMut(&PackageId) -> Result<P, E>,
    seen: &mut Vec<Label>,
) -> Result<bool, E>
where
    P: Deref<Target = Package>,
    E: From<String>,
{
    if seen.contains(group) {
        return Ok(false);
    }
    seen.push(group.clone());
    let pkg = load(&group.package_id())?;
    let rule = match pkg.rules.get(&group.name) {
        Some(r) if r.kind == "package_group" => r,
        _ => return Err(E::from(format!("Label '{group}' does not refer to a package group"))),
    };
    if let Some(AttrValue::StringList(packages)) = rule.attrs.get("packages") {
        let specs = packages.iter().map(|s| PackageSpec::parse(s, &group.repo)).collect::<Result<Vec<_>, _>>().map_err(E::from)?;
        if specs_contain(&specs, from) {
            return Ok(true);
        }
    }
    if let Some(AttrValue::LabelList(includes)) = rule.attrs.get("includes") {
        for inc in includes.clone() {
            if group_contains(&inc, from, load, seen)? {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs(items: &[&str]) -> Vec<PackageSpec> {
        items.iter().map(|s| PackageSpec::parse(s, "").unwrap()).collect()
    }

    #[test]
    fn package_specs_match_as_bazels() {
        let s = specs(&["//c/...", "-//c/sub", "//d"]);
        assert!(specs_contain(&s, &PackageId::main("c")));
        assert!(specs_contain(&s, &PackageId::main("c/x/y")));
        assert!(!specs_contain(&s, &PackageId::main("c/sub")), "excluded by the negative spec");
        assert!(specs_contain(&s, &PackageId::main("c/sub/deeper")), "a negative exact spec excludes one package");
        assert!(specs_contain(&s, &PackageId::main("d")));
        assert!(!specs_contain(&s, &PackageId::main("d/e")));
        assert!(!specs_contain(&s, &PackageId::main("cc")));
        assert!(specs_contain(&specs(&["public"]), &PackageId::new("r", "x")));
        assert!(!specs_contain(&specs(&["private"]), &PackageId::main("x")));
        assert!(specs_contain(&specs(&["//..."]), &PackageId::main("any/pkg")));
        let err = PackageSpec::parse("foo", "").unwrap_err();
        assert_eq!(err, "invalid package name 'foo': must start with '//'");
    }
}
