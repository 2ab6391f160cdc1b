//! go.mod and go.sum as the Go command reads them (the parts dependency resolution needs),
//! Go's semantic version order, and minimal version selection over a module graph.

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Result, anyhow, bail};

/// A `replace` directive: the module (at one version, or any) comes from elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replace {
    pub old_path: String,
    /// Only this version is replaced; `None`: all versions.
    pub old_version: Option<String>,
    pub new_path: String,
    /// `None` when the replacement is a local directory (`./x`, `../x`, `/abs`).
    pub new_version: Option<String>,
}

impl Replace {
    /// Whether the replacement is a directory on disk rather than another module version.
    pub fn is_local(&self) -> bool {
        self.new_version.is_none()
    }
}

/// What dependency resolution reads from a go.mod file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoMod {
    pub module: String,
    /// The `go` directive (`1.22`), if any.
    pub go: Option<String>,
    /// `require` directives in order: (module path, version, `// indirect`).
    pub require: Vec<(String, String, bool)>,
    pub replace: Vec<Replace>,
    /// `exclude` directives: (module path, version).
    pub exclude: Vec<(String, String)>,
}

/// Splits a go.mod line into tokens: words and "quoted" / `raw` strings, stopping at `//`.
fn tokens(line: &str) -> Result<(Vec<String>, bool)> {
    let mut out = Vec::new();
    let mut rest = line.trim();
    let mut indirect = false;
    while !rest.is_empty() {
        if let Some(comment) = rest.strip_prefix("//") {
            indirect = comment.trim().split(';').any(|c| c.trim() == "indirect");
            break;
        }
        let (tok, after) = if let Some(q) = rest.strip_prefix('"') {
            let end = q.find('"').ok_or_else(|| anyhow!("unterminated quoted string"))?;
            (q[..end].to_owned(), &q[end + 1..])
        } else if let Some(q) = rest.strip_prefix('`') {
            let end = q.find('`').ok_or_else(|| anyhow!("unterminated raw string"))?;
            (q[..end].to_owned(), &q[end + 1..])
        } else if rest.starts_with(['(', ')']) {
            (rest[..1].to_owned(), &rest[1..])
        } else {
            let end = rest.find(|c: char| c.is_whitespace() || c == '(' || c == ')').unwrap_or(rest.len());
            let end = if rest[..end].contains("//") { rest.find("//").unwrap_or(end) } else { end };
            (rest[..end].to_owned(), &rest[end..])
        };
        out.push(tok);
        rest = after.trim_start();
    }
    Ok((out, indirect))
}

/// Parses a go.mod file (`file` names it in errors: `file:line: why`).
pub fn parse_go_mod(file: &str, text: &str) -> Result<GoMod> {
    let mut m = GoMod::default();
    let mut block: Option<String> = None;
    for (i, line) in text.lines().enumerate() {
        let at = |e: anyhow::Error| anyhow!("{file}:{}: {e}", i + 1);
        let (toks, indirect) = tokens(line).map_err(at)?;
        if toks.is_empty() {
            continue;
        }
        let (verb, args): (String, &[String]) = match &block {
            Some(_) if toks[0] == ")" => {
                block = None;
                continue;
            }
            Some(b) => (b.clone(), &toks[..]),
            None if toks.len() == 2 && toks[1] == "(" => {
                block = Some(toks[0].clone());
                continue;
            }
            None => (toks[0].clone(), &toks[1..]),
        };
        match verb.as_str() {
            "module" => m.module = args.first().cloned().ok_or_else(|| at(anyhow!("module directive needs a path")))?,
            "go" => m.go = args.first().cloned(),
            "require" => match args {
                [path, version] => m.require.push((path.clone(), version.clone(), indirect)),
                _ => return Err(at(anyhow!("usage: require module/path v1.2.3"))),
            },
            "exclude" => match args {
                [path, version] => m.exclude.push((path.clone(), version.clone())),
                _ => return Err(at(anyhow!("usage: exclude module/path v1.2.3"))),
            },
            "replace" => {
                let arrow = args.iter().position(|a| a == "=>").ok_or_else(|| at(anyhow!("replace needs '=>'")))?;
                let (old, new) = (&args[..arrow], &args[arrow + 1..]);
                let (old_path, old_version) = match old {
                    [p] => (p.clone(), None),
                    [p, v] => (p.clone(), Some(v.clone())),
                    _ => return Err(at(anyhow!("usage: replace module/path [v1.2.3] => other/module v1.4 | ./dir"))),
                };
                let (new_path, new_version) = match new {
                    [p] => (p.clone(), None),
                    [p, v] => (p.clone(), Some(v.clone())),
                    _ => return Err(at(anyhow!("usage: replace module/path [v1.2.3] => other/module v1.4 | ./dir"))),
                };
                let local = new_path.starts_with("./") || new_path.starts_with("../") || new_path.starts_with('/');
                if new_version.is_none() && !local {
                    return Err(at(anyhow!(
                        "replacement module without version must be a directory path (rooted or starting with ./ or ../)"
                    )));
                }
                m.replace.push(Replace { old_path, old_version, new_path, new_version });
            }
            // toolchain, retract, godebug, tool, ignore: nothing resolution needs.
            _ => {}
        }
    }
    if block.is_some() {
        bail!("{file}: unterminated '(' block");
    }
    Ok(m)
}

/// go.sum: `(module, version)` → `h1:` hash of the module zip, and `(module, version/go.mod)`
/// → hash of its go.mod.
pub fn parse_go_sum(file: &str, text: &str) -> Result<BTreeMap<(String, String), String>> {
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            [] => {}
            [module, version, hash] => {
                out.insert(((*module).to_owned(), (*version).to_owned()), (*hash).to_owned());
            }
            _ => bail!("{file}:{}: malformed go.sum line (want 'module version h1:hash')", i + 1),
        }
    }
    Ok(out)
}

/// Go's semantic version order (`golang.org/x/mod/semver.Compare`): numeric major.minor.patch,
/// a pre-release before its release, build metadata (`+incompatible`) ignored. Versions that
/// do not parse sort before all valid ones.
pub fn compare(a: &str, b: &str) -> Ordering {
    match (parse_semver(a), parse_semver(b)) {
        (Some(x), Some(y)) => x.0.cmp(&y.0).then_with(|| compare_pre(&x.1, &y.1)),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => a.cmp(b),
    }
}

fn parse_semver(v: &str) -> Option<([u64; 3], String)> {
    let v = v.strip_prefix('v')?;
    let v = v.split('+').next().unwrap_or(v);
    let (core, pre) = match v.split_once('-') {
        Some((c, p)) => (c, p.to_owned()),
        None => (v, String::new()),
    };
    let mut nums = [0u64; 3];
    let parts: Vec<&str> = core.split('.').collect();
    if parts.is_empty() || parts.len() > 3 {
        return None;
    }
    for (i, p) in parts.iter().enumerate() {
        nums[i] = p.parse().ok()?;
    }
    Some((nums, pre))
}

fn compare_pre(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        _ => {}
    }
    let (mut x, mut y) = (a.split('.'), b.split('.'));
    loop {
        match (x.next(), y.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(p), Some(q)) => {
                let ord = match (p.parse::<u64>(), q.parse::<u64>()) {
                    (Ok(m), Ok(n)) => m.cmp(&n),
                    (Ok(_), Err(_)) => Ordering::Less,
                    (Err(_), Ok(_)) => Ordering::Greater,
                    (Err(_), Err(_)) => p.cmp(q),
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

/// A module version's go.mod as minimal version selection needs it: whether its graph is
/// pruned (its `go` directive is 1.17 or later) and its `(module path, version)` requirements.
pub type Requirements = (bool, Vec<(String, String)>);

/// Whether a go.mod's `go` version prunes its module graph (Go 1.17+: "graph pruning").
pub fn prunes(go: Option<&str>) -> bool {
    let Some(go) = go else { return false };
    let mut parts = go.split('.').map(|p| p.chars().take_while(char::is_ascii_digit).collect::<String>().parse::<u32>().unwrap_or(0));
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0)) >= (1, 17)
}

/// Minimal version selection (`cmd/go/internal/mvs.BuildList`): the highest version of each
/// module required anywhere in the module graph. With `pruned` (the main module is at Go
/// 1.17+), the graph is pruned as `go` prunes it: the roots' requirements are loaded, and
/// a module at Go 1.17+ contributes its own requirements but not theirs; a module below 1.17
/// contributes its whole transitive graph. `requirements(path, version)` reads one module's
/// go.mod; it is asked once per module version loaded.
pub fn minimal_version_selection(
    roots: &[(String, String)],
    pruned: bool,
    requirements: &mut dyn FnMut(&str, &str) -> Result<Requirements>,
) -> Result<BTreeMap<String, String>> {
    let mut selected: BTreeMap<String, String> = BTreeMap::new();
    let mut loaded: BTreeSet<(String, String)> = BTreeSet::new();
    // (path, version, whether its requirements are part of the graph)
    let mut queue: Vec<(String, String, bool)> = roots.iter().map(|(p, v)| (p.clone(), v.clone(), true)).collect();
    while let Some((path, version, load)) = queue.pop() {
        let newer = selected.get(&path).is_none_or(|v| compare(&version, v) == Ordering::Greater);
        if newer {
            selected.insert(path.clone(), version.clone());
        }
        if load && loaded.insert((path.clone(), version.clone())) {
            let (module_prunes, reqs) = requirements(&path, &version)?;
            let children_load = !(pruned && module_prunes);
            queue.extend(reqs.into_iter().map(|(p, v)| (p, v, children_load)));
        }
    }
    Ok(selected)
}

/// The repository name gazelle gives a module path (go_deps' `_repo_name`, as
/// `label.ImportPathToBazelRepoName`): the host's labels reversed, then the path elements,
/// joined with `_`, every other character that is not a letter or digit made `_`, lower case:
/// `github.com/foo/bar` → `com_github_foo_bar`.
pub fn repo_name(importpath: &str) -> String {
    let mut parts = importpath.split('/');
    let host = parts.next().unwrap_or("");
    let mut segments: Vec<&str> = host.split('.').rev().collect();
    segments.extend(parts);
    segments.join("_").chars().map(|c| if c.is_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_mod() {
        let text = "module example.com/mono\n\ngo 1.22\n\nrequire (\n\texample.com/a v1.0.0\n\texample.com/c v1.2.0 // indirect\n)\n\nrequire example.com/b v1.1.0\n\nreplace example.com/d => ./third_party/d\nreplace example.com/e v1.0.0 => example.com/f v1.0.1\n";
        let m = parse_go_mod("go.mod", text).unwrap();
        assert_eq!(m.module, "example.com/mono");
        assert_eq!(m.go.as_deref(), Some("1.22"));
        assert_eq!(m.require[1], ("example.com/c".into(), "v1.2.0".into(), true));
        assert_eq!(m.require[2].0, "example.com/b");
        assert!(m.replace[0].is_local());
        assert_eq!(m.replace[1].old_version.as_deref(), Some("v1.0.0"));
        let err = parse_go_mod("go.mod", "module x\nrequire (\n a\n)\n").unwrap_err();
        assert!(err.to_string().starts_with("go.mod:3:"), "{err}");
        assert!(parse_go_mod("go.mod", "replace a => b\n").is_err());
    }

    #[test]
    fn semver_order() {
        assert_eq!(compare("v1.10.0", "v1.9.0"), Ordering::Greater);
        assert_eq!(compare("v1.0.0-rc.1", "v1.0.0"), Ordering::Less);
        assert_eq!(compare("v1.0.0-rc.2", "v1.0.0-rc.10"), Ordering::Less);
        assert_eq!(compare("v2.0.0+incompatible", "v2.0.0"), Ordering::Equal);
        assert_eq!(compare("v0.0.0-20200101000000-abcdef123456", "v0.0.0-20210101000000-abcdef123456"), Ordering::Less);
    }

    #[test]
    fn mvs_picks_the_highest_required_version() {
        // main → a v1, b v1; a v1 → c v1.1; b v1 → c v1.2; c v1.1 → d v1 (unpruned: d stays).
        let graph: BTreeMap<(&str, &str), Vec<(&str, &str)>> = [
            (("a", "v1.0.0"), vec![("c", "v1.1.0")]),
            (("b", "v1.0.0"), vec![("c", "v1.2.0")]),
            (("c", "v1.1.0"), vec![("d", "v1.0.0")]),
            (("c", "v1.2.0"), vec![]),
            (("d", "v1.0.0"), vec![]),
        ]
        .into_iter()
        .collect();
        let roots = vec![("a".to_owned(), "v1.0.0".to_owned()), ("b".to_owned(), "v1.0.0".to_owned())];
        for (pruned, asked_want) in [(false, 5), (true, 2)] {
            let mut asked = 0;
            let mut req = |p: &str, v: &str| {
                asked += 1;
                Ok((true, graph.get(&(p, v)).cloned().unwrap_or_default().into_iter().map(|(a, b)| (a.to_owned(), b.to_owned())).collect()))
            };
            let list = minimal_version_selection(&roots, pruned, &mut req).unwrap();
            assert_eq!(list.get("c").map(String::as_str), Some("v1.2.0"));
            // Pruned: c's own requirements are not part of the graph.
            assert_eq!(list.get("d").map(String::as_str), if pruned { None } else { Some("v1.0.0") });
            assert_eq!(asked, asked_want);
        }
        assert!(prunes(Some("1.17")) && prunes(Some("1.22.1")) && !prunes(Some("1.16")) && !prunes(None));
    }

    #[test]
    fn gazelle_repo_names() {
        assert_eq!(repo_name("github.com/foo/bar"), "com_github_foo_bar");
        assert_eq!(repo_name("gopkg.in/yaml.v3"), "in_gopkg_yaml_v3");
        assert_eq!(repo_name("golang.org/x/net"), "org_golang_x_net");
        assert_eq!(repo_name("github.com/Foo/go-bar"), "com_github_foo_go_bar");
        assert_eq!(repo_name("github.com/foo/bar~x+y"), "com_github_foo_bar_x_y");
    }
}
