//! Labels: `@repo//pkg:name`, `//pkg:name`, `//pkg`, `:name`, `name`, `@repo`.
//!
//! A [`Label`] always holds a canonical repository name ("" is the main repository), a package
//! path and a target name. Parsing a string that may be relative needs the [`PackageId`] it is
//! written in, and a function that maps an apparent repository name (as the user wrote it) to
//! its canonical one.

use std::fmt;

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("invalid label '{input}': {reason}")]
pub struct LabelError {
    pub input: String,
    pub reason: String,
}

fn err(input: &str, reason: impl Into<String>) -> LabelError {
    LabelError { input: input.to_owned(), reason: reason.into() }
}

/// A package: repository (canonical name, "" = main) and path inside it ("" = root package).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackageId {
    pub repo: String,
    pub package: String,
}

impl PackageId {
    pub fn new(repo: impl Into<String>, package: impl Into<String>) -> Self {
        PackageId { repo: repo.into(), package: package.into() }
    }

    pub fn main(package: impl Into<String>) -> Self {
        PackageId::new("", package)
    }

    pub fn label(&self, name: impl Into<String>) -> Label {
        Label { repo: self.repo.clone(), package: self.package.clone(), name: name.into() }
    }

    /// `@repo` prefix as Bazel prints it (empty for the main repository).
    pub fn repo_prefix(&self) -> String {
        if self.repo.is_empty() { String::new() } else { format!("@{}", self.repo) }
    }
}

impl fmt::Display for PackageId {
    /// `//pkg` or `@repo//pkg`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}//{}", self.repo_prefix(), self.package)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Label {
    pub repo: String,
    pub package: String,
    pub name: String,
}

impl Label {
    pub fn package_id(&self) -> PackageId {
        PackageId { repo: self.repo.clone(), package: self.package.clone() }
    }

    /// Parses an absolute label (`//…` or `@repo//…` or `@repo`); repository names are taken
    /// as canonical.
    pub fn parse_absolute(s: &str) -> Result<Label, LabelError> {
        Label::parse(s, &PackageId::main(""), &|r: &str| Some(r.to_owned()))
            .and_then(|l| if s.starts_with("//") || s.starts_with('@') { Ok(l) } else { Err(err(s, "expected an absolute label")) })
    }

    /// Parses `s` as written in package `base`. `map_repo` turns an apparent repository name
    /// into a canonical one; `None` means the repository is unknown, which is not an error
    /// here: the name is kept so that a later lookup reports it.
    pub fn parse(s: &str, base: &PackageId, map_repo: &dyn Fn(&str) -> Option<String>) -> Result<Label, LabelError> {
        if s.is_empty() {
            return Err(err(s, "empty label"));
        }
        let (repo, rest) = if let Some(after) = s.strip_prefix('@') {
            // `@@canonical` names a canonical repository directly.
            let (canonical, after) = match after.strip_prefix('@') {
                Some(a) => (true, a),
                None => (false, after),
            };
            let end = after.find("//").unwrap_or(after.len());
            let name = &after[..end];
            let rest = &after[end..];
            validate_repo_name(s, name)?;
            if rest.is_empty() {
                // `@repo` is `@repo//:repo`.
                if name.is_empty() {
                    return Err(err(s, "empty repository name"));
                }
                let repo = if canonical { name.to_owned() } else { map_repo(name).unwrap_or_else(|| name.to_owned()) };
                return Ok(Label { repo, package: String::new(), name: name.to_owned() });
            }
            let repo = if name.is_empty() || canonical { name.to_owned() } else { map_repo(name).unwrap_or_else(|| name.to_owned()) };
            (repo, rest)
        } else if s.starts_with("//") {
            (base.repo.clone(), s)
        } else {
            // Relative: `:name` or `name` within the base package.
            let name = s.strip_prefix(':').unwrap_or(s);
            validate_target_name(s, name)?;
            return Ok(base.label(name));
        };

        let body = rest.strip_prefix("//").ok_or_else(|| err(s, "expected '//' after the repository name"))?;
        let (package, name) = match body.split_once(':') {
            Some((p, n)) => (p, n),
            None => {
                // `//pkg` is `//pkg:<last component>`.
                let last = body.rsplit('/').next().unwrap_or(body);
                if last.is_empty() {
                    return Err(err(s, "a label without ':' needs a package name"));
                }
                (body, last)
            }
        };
        validate_package_name(s, package)?;
        validate_target_name(s, name)?;
        Ok(Label { repo, package: package.to_owned(), name: name.to_owned() })
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.repo.is_empty() {
            write!(f, "@{}", self.repo)?;
        }
        write!(f, "//{}:{}", self.package, self.name)
    }
}

pub fn validate_repo_name(input: &str, name: &str) -> Result<(), LabelError> {
    // Bazel's RepositoryName.validate: `.` and `..` are not repository names (`@..` would
    // otherwise name a target `..`, which no label can spell).
    if name == "." || name == ".." {
        return Err(err(input, format!("invalid repository name '@{name}': repo names are not allowed to be '@{name}'")));
    }
    if let Some(c) = name.chars().find(|c| !(c.is_ascii_alphanumeric() || "_-.~+".contains(*c))) {
        return Err(err(input, format!("invalid repository name '@{name}': character '{c}' is not allowed")));
    }
    Ok(())
}

pub fn validate_package_name(input: &str, package: &str) -> Result<(), LabelError> {
    if package.starts_with('/') {
        return Err(err(input, "package names may not start with '/'"));
    }
    if package.ends_with('/') {
        return Err(err(input, "package names may not end with '/'"));
    }
    if package.contains("//") {
        return Err(err(input, "package names may not contain '//'"));
    }
    if package.split('/').any(|c| c == "." || c == "..") {
        return Err(err(input, "package names may not contain '.' or '..' segments"));
    }
    if let Some(c) = package.chars().find(|c| c.is_control() || *c == ':' || *c == '\\') {
        return Err(err(input, format!("package names may not contain {c:?}")));
    }
    Ok(())
}

pub fn validate_target_name(input: &str, name: &str) -> Result<(), LabelError> {
    if name.is_empty() {
        return Err(err(input, "empty target name"));
    }
    if name.starts_with('/') || name.ends_with('/') || name.contains("//") {
        return Err(err(input, "target names may not start or end with '/' or contain '//'"));
    }
    if name.split('/').any(|c| c == "." || c == "..") && name != "." {
        return Err(err(input, "target names may not contain '.' or '..' segments"));
    }
    if let Some(c) = name.chars().find(|c| c.is_control() || *c == ':' || *c == '\\') {
        return Err(err(input, format!("target names may not contain {c:?}")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(r: &str) -> Option<String> {
        Some(r.to_owned())
    }

    fn parse_in(s: &str, pkg: &str) -> Result<Label, LabelError> {
        Label::parse(s, &PackageId::main(pkg), &identity)
    }

    #[test]
    fn absolute_forms() {
        assert_eq!(parse_in("//cmd/worker:image", "x").unwrap().to_string(), "//cmd/worker:image");
        assert_eq!(parse_in("//cmd/worker", "x").unwrap().to_string(), "//cmd/worker:worker");
        assert_eq!(parse_in("//:root", "x").unwrap().to_string(), "//:root");
        assert_eq!(parse_in("@wolfi_base", "x").unwrap().to_string(), "@wolfi_base//:wolfi_base");
        assert_eq!(parse_in("@rules_oci//oci:defs.bzl", "x").unwrap().to_string(), "@rules_oci//oci:defs.bzl");
        assert_eq!(parse_in("@my-repo.v2//a", "x").unwrap().to_string(), "@my-repo.v2//a:a");
        assert_eq!(parse_in("@@canon~x//a:b", "x").unwrap().to_string(), "@canon~x//a:b");
    }

    #[test]
    fn relative_forms() {
        assert_eq!(parse_in(":lib", "cmd/worker").unwrap().to_string(), "//cmd/worker:lib");
        assert_eq!(parse_in("main.go", "cmd/worker").unwrap().to_string(), "//cmd/worker:main.go");
        assert_eq!(parse_in("sub/file.txt", "a").unwrap().to_string(), "//a:sub/file.txt");
        let ext = PackageId::new("ext", "p");
        assert_eq!(Label::parse("//q:r", &ext, &identity).unwrap().to_string(), "@ext//q:r");
        assert_eq!(Label::parse(":r", &ext, &identity).unwrap().to_string(), "@ext//p:r");
    }

    #[test]
    fn odd_target_names() {
        for name in ["a.b-c+d@e", "x/y.txt", "v1.2_3"] {
            assert_eq!(parse_in(&format!("//p:{name}"), "").unwrap().name, name);
        }
    }

    #[test]
    fn repo_mapping_applies_to_apparent_names() {
        let map = |r: &str| (r == "rules_go").then(|| "io_bazel_rules_go".to_owned());
        let l = Label::parse("@rules_go//go:def.bzl", &PackageId::main(""), &map).unwrap();
        assert_eq!(l.repo, "io_bazel_rules_go");
    }

    #[test]
    fn rejects_bad_labels() {
        for bad in ["", "//a//b:c", "//a/:b", "//a:", "@bad repo//a", "//a:b:c", "//a/../b:c", "//:", "/a:b"] {
            assert!(parse_in(bad, "").is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn dot_repository_names_are_rejected() {
        // Found by fuzz/fuzz_targets/label.rs: `@..` parsed as `@..//:..`, a label whose own
        // text does not parse.
        for s in ["@..", "@.", "@@..", "@..//:x", "@.//a:b"] {
            let e = parse_in(s, "").expect_err(s);
            assert!(e.to_string().contains("repo names are not allowed"), "{s}: {e}");
        }
        assert_eq!(parse_in("@.a//:x", "").unwrap().repo, ".a");
    }
}
