//! Target patterns: `//...`, `//pkg/...`, `//pkg:all`, `:*`, `:all-targets`, `//pkg:name`,
//! relative forms resolved against the working directory's package, and `-pattern` negation.

use crate::graph::label::{self, Label, LabelError, PackageId};

/// Which targets of a package a wildcard selects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Selection {
    /// `:all` (the default for `/...`): rules only.
    Rules,
    /// `:*` / `:all-targets`: rules, generated files and source files.
    AllTargets,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetPattern {
    /// One target, e.g. `//pkg:name`.
    Target(Label),
    /// A relative path such as `foo/bar` whose split into package and target depends on which
    /// directories are packages (`//foo/bar:bar` if `foo/bar` is a package, else `//foo:bar`).
    Path { repo: String, path: String },
    /// Every target of one package: `//pkg:all`, `//pkg:*`.
    Package { package: PackageId, selection: Selection },
    /// Every package at or below a directory: `//pkg/...`, `//...:*`.
    Recursive { prefix: PackageId, selection: Selection },
}

/// A pattern as given on the command line, possibly negated with a leading `-`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPattern {
    pub negative: bool,
    pub pattern: TargetPattern,
    pub text: String,
}

impl SignedPattern {
    pub fn parse(s: &str, cwd: &PackageId, map_repo: &dyn Fn(&str) -> Option<String>) -> Result<Self, LabelError> {
        let (negative, body) = match s.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, s),
        };
        Ok(SignedPattern { negative, pattern: TargetPattern::parse(body, cwd, map_repo)?, text: s.to_owned() })
    }
}

fn selection_for(name: &str) -> Option<Selection> {
    match name {
        "all" => Some(Selection::Rules),
        "*" | "all-targets" => Some(Selection::AllTargets),
        _ => None,
    }
}

impl TargetPattern {
    /// Parses a pattern. Relative patterns are resolved against `cwd`, the package of the
    /// directory the command runs in.
    pub fn parse(s: &str, cwd: &PackageId, map_repo: &dyn Fn(&str) -> Option<String>) -> Result<Self, LabelError> {
        let bad = |reason: &str| LabelError { input: s.to_owned(), reason: reason.to_owned() };
        if s.is_empty() {
            return Err(bad("empty target pattern"));
        }
        // Split off the repository and make the rest relative to the repository root.
        let (repo, path_and_name, absolute) = if let Some(after) = s.strip_prefix('@') {
            let after = after.strip_prefix('@').unwrap_or(after);
            let end = after.find("//").unwrap_or(after.len());
            let name = &after[..end];
            label::validate_repo_name(s, name)?;
            let repo = map_repo(name).unwrap_or_else(|| name.to_owned());
            if end == after.len() {
                // `@repo` is `@repo//:repo`; a bare `@` names nothing (as in Label::parse).
                if name.is_empty() {
                    return Err(bad("empty repository name"));
                }
                return Ok(TargetPattern::Target(Label { repo, package: String::new(), name: name.to_owned() }));
            }
            (repo, after[end + 2..].to_owned(), true)
        } else if let Some(rest) = s.strip_prefix("//") {
            (cwd.repo.clone(), rest.to_owned(), true)
        } else {
            (cwd.repo.clone(), s.to_owned(), false)
        };

        let (path, name) = match path_and_name.split_once(':') {
            Some((p, n)) => (p.to_owned(), Some(n.to_owned())),
            None => (path_and_name.clone(), None),
        };
        // Relative patterns are rooted at the working directory's package.
        let join = |p: &str| -> String {
            if absolute || cwd.package.is_empty() {
                p.to_owned()
            } else if p.is_empty() {
                cwd.package.clone()
            } else {
                format!("{}/{}", cwd.package, p)
            }
        };

        if path == "..." || path.ends_with("/...") {
            let prefix = join(path.trim_end_matches("...").trim_end_matches('/'));
            label::validate_package_name(s, &prefix)?;
            let selection = match name.as_deref() {
                None => Selection::Rules,
                Some(n) => selection_for(n).ok_or_else(|| bad("only ':all', ':*' or ':all-targets' may follow '/...'"))?,
            };
            return Ok(TargetPattern::Recursive { prefix: PackageId::new(repo, prefix), selection });
        }

        match name {
            Some(n) => {
                let package = join(&path);
                label::validate_package_name(s, &package)?;
                if let Some(selection) = selection_for(&n) {
                    return Ok(TargetPattern::Package { package: PackageId::new(repo, package), selection });
                }
                label::validate_target_name(s, &n)?;
                Ok(TargetPattern::Target(Label { repo, package, name: n }))
            }
            None if absolute => {
                // `//pkg` is `//pkg:pkg`.
                let last = path.rsplit('/').next().unwrap_or("").to_owned();
                label::validate_package_name(s, &path)?;
                if last.is_empty() {
                    return Err(bad("a pattern without ':' needs a package name"));
                }
                label::validate_target_name(s, &last)?;
                Ok(TargetPattern::Target(Label { repo, package: path, name: last }))
            }
            None => {
                let full = join(&path);
                label::validate_target_name(s, &full)?;
                Ok(TargetPattern::Path { repo, path: full })
            }
        }
    }

    /// Resolves a [`TargetPattern::Path`] given which directories are packages. Bazel takes the
    /// path as a package if it is one (`foo/bar` → `//foo/bar:bar`), else splits it at the
    /// longest package prefix (`//foo:bar`).
    pub fn resolve_path(repo: &str, path: &str, is_package: &dyn Fn(&PackageId) -> bool) -> Option<Label> {
        let whole = PackageId::new(repo, path);
        if is_package(&whole) {
            let last = path.rsplit('/').next().unwrap_or(path);
            return Some(whole.label(last));
        }
        let mut split = path.len();
        while let Some(i) = path[..split].rfind('/') {
            let pkg = PackageId::new(repo, &path[..i]);
            if is_package(&pkg) {
                return Some(pkg.label(&path[i + 1..]));
            }
            split = i;
        }
        let root = PackageId::new(repo, "");
        is_package(&root).then(|| root.label(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str, cwd: &str) -> TargetPattern {
        TargetPattern::parse(s, &PackageId::main(cwd), &|r: &str| Some(r.to_owned())).unwrap()
    }

    #[test]
    fn wildcards() {
        assert_eq!(p("//...", ""), TargetPattern::Recursive { prefix: PackageId::main(""), selection: Selection::Rules });
        assert_eq!(p("//cmd/...", ""), TargetPattern::Recursive { prefix: PackageId::main("cmd"), selection: Selection::Rules });
        assert_eq!(p("//cmd/...:*", ""), TargetPattern::Recursive { prefix: PackageId::main("cmd"), selection: Selection::AllTargets });
        assert_eq!(p("//cmd:all", ""), TargetPattern::Package { package: PackageId::main("cmd"), selection: Selection::Rules });
        assert_eq!(
            p("//cmd:all-targets", ""),
            TargetPattern::Package { package: PackageId::main("cmd"), selection: Selection::AllTargets }
        );
        assert_eq!(p("@ext//...", ""), TargetPattern::Recursive { prefix: PackageId::new("ext", ""), selection: Selection::Rules });
    }

    #[test]
    fn relative_to_working_directory() {
        assert_eq!(p(":all", "cmd/worker"), TargetPattern::Package { package: PackageId::main("cmd/worker"), selection: Selection::Rules });
        assert_eq!(p("...", "cmd"), TargetPattern::Recursive { prefix: PackageId::main("cmd"), selection: Selection::Rules });
        assert_eq!(p("worker/...", "cmd"), TargetPattern::Recursive { prefix: PackageId::main("cmd/worker"), selection: Selection::Rules });
        assert_eq!(p(":image", "cmd/worker"), TargetPattern::Target(Label::parse_absolute("//cmd/worker:image").unwrap()));
        assert_eq!(p("worker:image", "cmd"), TargetPattern::Target(Label::parse_absolute("//cmd/worker:image").unwrap()));
        assert_eq!(p("worker", "cmd"), TargetPattern::Path { repo: String::new(), path: "cmd/worker".into() });
    }

    #[test]
    fn path_resolution_uses_packages() {
        let pkgs = ["", "foo"];
        let is_pkg = |id: &PackageId| pkgs.contains(&id.package.as_str());
        assert_eq!(TargetPattern::resolve_path("", "foo", &is_pkg).unwrap().to_string(), "//foo:foo");
        assert_eq!(TargetPattern::resolve_path("", "foo/bar/x.txt", &is_pkg).unwrap().to_string(), "//foo:bar/x.txt");
        assert_eq!(TargetPattern::resolve_path("", "other", &is_pkg).unwrap().to_string(), "//:other");
    }

    #[test]
    fn negation() {
        let s = SignedPattern::parse("-//cmd/...", &PackageId::main(""), &|r: &str| Some(r.to_owned())).unwrap();
        assert!(s.negative);
    }

    #[test]
    fn bad_patterns() {
        let parse = |s: &str| TargetPattern::parse(s, &PackageId::main(""), &|r: &str| Some(r.to_owned()));
        assert!(parse("//a/...:foo").is_err());
        assert!(parse("").is_err());
        assert!(parse("//a//b").is_err());
        // Found by fuzz/fuzz_targets/pattern.rs: `@` was the target `//:`, an empty name.
        for s in ["@", "@@"] {
            assert_eq!(parse(s).unwrap_err().reason, "empty repository name", "{s}");
        }
        assert_eq!(parse("@ext").unwrap(), TargetPattern::Target(Label::parse_absolute("@ext//:ext").unwrap()));
    }
}
