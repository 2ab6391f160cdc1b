//! BUILD files for Go module repositories, as gazelle generates them in a `go_repository`
//! (`build_naming_convention = "import_alias"`): one `go_library` per package directory
//! named after its last import path element, with a `go_default_library` alias; `importpath`
//! = module path + directory; `deps` resolved from the imports of the files that build for
//! Linux (the platforms images run on; the compile action filters `srcs` again by build
//! constraints for the configured platform); `embedsrcs` from `//go:embed` patterns.
//! Directives: `gazelle:exclude <glob>`, `gazelle:resolve go [go] <importpath> <label>`,
//! `gazelle:build_tags a,b`; others (`gazelle:proto disable`...) are accepted and ignored.
//!
//! cgo stays out: files importing "C" are left out (pure semantics, as `CGO_ENABLED=0`); a
//! package made only of such files gets `cgo = True`, which analysis reports as an error
//! naming the package.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anyhow::{Context, Result};

use super::go_source::{self, BuildContext, GoFile};
use crate::graph::quote;
use crate::workspace::gomod::{GenerateRequest, library_name};

/// Platforms whose files' imports become `deps`.
const DEP_PLATFORMS: &[(&str, &str)] = &[("linux", "amd64"), ("linux", "arm64")];
/// Platforms whose files become `srcs` (a superset; the compile action filters).
const SRC_PLATFORMS: &[(&str, &str)] =
    &[("linux", "amd64"), ("linux", "arm64"), ("linux", "arm"), ("darwin", "amd64"), ("darwin", "arm64"), ("windows", "amd64")];

struct Directives {
    exclude: Vec<globset::GlobMatcher>,
    resolve: BTreeMap<String, String>,
    tags: Vec<String>,
}

fn parse_directives(lines: &[String]) -> Result<Directives> {
    let mut d = Directives { exclude: vec![], resolve: BTreeMap::new(), tags: vec![] };
    for line in lines {
        let line = line.trim().trim_start_matches('#').trim();
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["gazelle:exclude", pattern] => {
                d.exclude.push(globset::Glob::new(pattern).with_context(|| format!("directive '{line}'"))?.compile_matcher())
            }
            ["gazelle:resolve", "go", "go", import, label] | ["gazelle:resolve", "go", import, label] => {
                d.resolve.insert((*import).to_owned(), (*label).to_owned());
            }
            ["gazelle:build_tags", tags] => d.tags.extend(tags.split(',').map(str::to_owned)),
            _ => {}
        }
    }
    Ok(d)
}

fn contexts(platforms: &[(&str, &str)], tags: &[String]) -> Vec<BuildContext> {
    platforms
        .iter()
        .map(|(os, arch)| BuildContext {
            goos: (*os).into(),
            goarch: (*arch).into(),
            cgo_enabled: false,
            tags: tags.to_vec(),
            go_version_minor: 99,
        })
        .collect()
}

fn any_match(name: &str, file: &GoFile, ctxs: &[BuildContext]) -> bool {
    ctxs.iter().any(|c| go_source::matches(name, file, c).unwrap_or(false))
}

/// The generator `workspace::gomod` calls for a repository without BUILD files.
pub fn generate(req: &GenerateRequest) -> Result<()> {
    let directives = parse_directives(req.directives)?;
    let dep_ctx = contexts(DEP_PLATFORMS, &directives.tags);
    let src_ctx = contexts(SRC_PLATFORMS, &directives.tags);
    let cgo_ctx: Vec<BuildContext> = dep_ctx.iter().cloned().map(|c| BuildContext { cgo_enabled: true, ..c }).collect();
    // Every file, relative to the repository root, for embed patterns.
    let mut dirs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let walker = walkdir::WalkDir::new(req.dir).sort_by_file_name().into_iter().filter_entry(|e| {
        let name = e.file_name().to_string_lossy();
        e.depth() == 0
            || !(name.starts_with('.') || name.starts_with('_') || (e.file_type().is_dir() && (name == "testdata" || name == "vendor")))
    });
    for entry in walker {
        let entry = entry.with_context(|| format!("walking {}", req.dir.display()))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(req.dir).unwrap_or(entry.path()).to_string_lossy().replace('\\', "/");
        if directives.exclude.iter().any(|g| g.is_match(&rel)) {
            continue;
        }
        let (dir, file) = rel.rsplit_once('/').unwrap_or(("", rel.as_str()));
        dirs.entry(dir.to_owned()).or_default().push(file.to_owned());
    }
    for (dir, files) in &dirs {
        let mut scanned: Vec<(String, GoFile)> = Vec::new();
        for name in files.iter().filter(|f| f.ends_with(".go") && !f.ends_with("_test.go")) {
            let path = req.dir.join(dir).join(name);
            let bytes = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
            // gazelle skips files it cannot parse; the compiler would report them if used.
            if let Ok(file) = go_source::scan_bytes(name, &bytes) {
                scanned.push((name.clone(), file));
            }
        }
        let pure: Vec<&(String, GoFile)> = scanned.iter().filter(|(n, f)| any_match(n, f, &src_ctx)).collect();
        let cgo_only = pure.is_empty() && scanned.iter().any(|(n, f)| any_match(n, f, &cgo_ctx));
        let chosen: Vec<&(String, GoFile)> =
            if cgo_only { scanned.iter().filter(|(n, f)| any_match(n, f, &cgo_ctx)).collect() } else { pure };
        let Some((_, first)) = chosen.first() else { continue };
        let package = &first.package;
        if package == "main" || package == "documentation" {
            continue;
        }
        let chosen: Vec<&(String, GoFile)> = chosen.into_iter().filter(|(_, f)| &f.package == package).collect();
        let importpath = if dir.is_empty() { req.importpath.to_owned() } else { format!("{}/{dir}", req.importpath) };
        let mut deps = BTreeSet::new();
        let mut embeds = BTreeSet::new();
        for (name, file) in &chosen {
            let for_deps = if cgo_only { any_match(name, file, &cgo_ctx) } else { any_match(name, file, &dep_ctx) };
            if for_deps {
                for import in &file.imports {
                    if import == "C" || *import == importpath {
                        continue;
                    }
                    let label = directives.resolve.get(import).cloned().or_else(|| (req.resolve)(import));
                    deps.extend(label);
                }
            }
            for pattern in &file.embed_patterns {
                embeds.extend(embed_files(req.dir, dir, pattern)?);
            }
        }
        // Assembly and headers go along; the compile action picks the `.s` files that build
        // for the configured platform (`asm.rs`).
        let asm: Vec<String> = if cgo_only {
            vec![]
        } else {
            files.iter().filter(|f| (f.ends_with(".s") || f.ends_with(".h")) && !f.starts_with(['_', '.'])).cloned().collect()
        };
        let lib = library_name(&importpath);
        let list = |items: &mut dyn Iterator<Item = String>| -> String {
            let v: Vec<String> = items.map(|s| format!("        {},\n", quote(&s))).collect();
            if v.is_empty() { "[]".to_owned() } else { format!("[\n{}    ]", v.concat()) }
        };
        let mut text = String::from("# Generated by ocib as gazelle would (go_repository, naming convention import_alias).\n\n");
        text.push_str("load(\"@io_bazel_rules_go//go:def.bzl\", \"go_library\")\n\ngo_library(\n");
        text.push_str(&format!("    name = {},\n", quote(&lib)));
        let mut srcs: Vec<String> = chosen.iter().map(|(n, _)| n.clone()).chain(asm).collect();
        srcs.sort();
        text.push_str(&format!("    srcs = {},\n", list(&mut srcs.into_iter())));
        if !embeds.is_empty() {
            text.push_str(&format!("    embedsrcs = {},\n", list(&mut embeds.into_iter())));
        }
        if cgo_only {
            text.push_str("    cgo = True,\n");
        }
        text.push_str(&format!("    importpath = {},\n", quote(&importpath)));
        text.push_str("    visibility = [\"//visibility:public\"],\n");
        text.push_str(&format!("    deps = {},\n)\n\n", list(&mut deps.into_iter())));
        text.push_str(&format!(
            "alias(\n    name = \"go_default_library\",\n    actual = {},\n    visibility = [\"//visibility:public\"],\n)\n",
            quote(&format!(":{lib}"))
        ));
        let path = req.dir.join(dir).join("BUILD.bazel");
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The files a `//go:embed` pattern of package directory `dir` names, relative to `dir`, as
/// `go build` resolves them: a pattern matching a directory embeds its files recursively,
/// except names starting with `.` or `_` (unless the pattern has the `all:` prefix).
fn embed_files(root: &Path, dir: &str, pattern: &str) -> Result<Vec<String>> {
    let (all, pattern) = match pattern.strip_prefix("all:") {
        Some(p) => (true, p),
        None => (false, pattern),
    };
    let glob = globset::GlobBuilder::new(pattern).literal_separator(true).build().with_context(|| format!("//go:embed {pattern}"))?;
    let matcher = glob.compile_matcher();
    let base = root.join(dir);
    let mut out = Vec::new();
    for entry in walkdir::WalkDir::new(&base).min_depth(1).sort_by_file_name() {
        let entry = entry.with_context(|| format!("walking {}", base.display()))?;
        let rel = entry.path().strip_prefix(&base).unwrap_or(entry.path()).to_string_lossy().replace('\\', "/");
        if !entry.file_type().is_file() {
            continue;
        }
        // The file itself, or a directory above it, matches the pattern.
        let mut hit = false;
        let mut prefix = String::new();
        for (i, part) in rel.split('/').enumerate() {
            if i > 0 {
                prefix.push('/');
                if !all && (part.starts_with('.') || part.starts_with('_')) {
                    break;
                }
            }
            prefix.push_str(part);
            if matcher.is_match(&prefix) {
                hit = true;
                break;
            }
        }
        if hit {
            out.push(rel);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generates_libraries_with_resolved_deps_and_tags() {
        let dir = tempfile::tempdir().unwrap();
        let w = |p: &str, t: &str| {
            let path = dir.path().join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, t).unwrap();
        };
        w("go.mod", "module example.com/m\n");
        w("m.go", "package m\n\nimport (\n\t\"fmt\"\n\t\"example.com/m/sub\"\n\t\"example.com/other/x\"\n)\n");
        w("m_windows.go", "package m\n\nimport \"example.com/winonly\"\n");
        w("m_test.go", "package m\n\nimport \"example.com/testonly\"\n");
        w("sub/sub.go", "//go:build !cgo\n\npackage sub\n\nimport _ \"embed\"\n\n//go:embed data/*.txt\nvar s string\n");
        w("sub/sub_cgo.go", "//go:build cgo\n\npackage sub\n\nimport \"C\"\n");
        w("sub/data/a.txt", "a");
        w("cg/c.go", "package cg\n\nimport \"C\"\n");
        w("cmd/tool/main.go", "package main\n");
        let resolve = |i: &str| -> Option<String> {
            if !i.split('/').next().unwrap().contains('.') {
                return None;
            }
            Some(match i.strip_prefix("example.com/m") {
                Some(rel) => format!("//{}:{}", rel.trim_start_matches('/'), library_name(i)),
                None => format!("@ext//:{}", library_name(i)),
            })
        };
        let req =
            GenerateRequest { dir: dir.path(), repo: "com_example_m", importpath: "example.com/m", directives: &[], resolve: &resolve };
        generate(&req).unwrap();
        let root = std::fs::read_to_string(dir.path().join("BUILD.bazel")).unwrap();
        assert!(root.contains("name = \"m\""), "{root}");
        assert!(root.contains("\"m.go\",\n        \"m_windows.go\""), "{root}");
        assert!(root.contains("\"//sub:sub\""), "{root}");
        assert!(root.contains("\"@ext//:x\""), "{root}");
        assert!(!root.contains("winonly") && !root.contains("testonly") && !root.contains("fmt"), "{root}");
        let sub = std::fs::read_to_string(dir.path().join("sub/BUILD.bazel")).unwrap();
        assert!(sub.contains("srcs = [\n        \"sub.go\",\n    ]"), "{sub}");
        assert!(sub.contains("embedsrcs = [\n        \"data/a.txt\",\n    ]"), "{sub}");
        assert!(sub.contains("importpath = \"example.com/m/sub\""), "{sub}");
        let cg = std::fs::read_to_string(dir.path().join("cg/BUILD.bazel")).unwrap();
        assert!(cg.contains("cgo = True"), "{cg}");
        assert!(!dir.path().join("cmd/tool/BUILD.bazel").exists());

        // Directives: an excluded directory gets no BUILD file, a resolved import its label.
        for sub in ["BUILD.bazel", "sub/BUILD.bazel", "cg/BUILD.bazel"] {
            std::fs::remove_file(dir.path().join(sub)).unwrap();
        }
        let directives = vec!["gazelle:exclude cg/**".to_owned(), "gazelle:resolve go example.com/other/x @custom//x:lib".to_owned()];
        let req = GenerateRequest {
            dir: dir.path(),
            repo: "com_example_m",
            importpath: "example.com/m",
            directives: &directives,
            resolve: &resolve,
        };
        generate(&req).unwrap();
        let root = std::fs::read_to_string(dir.path().join("BUILD.bazel")).unwrap();
        assert!(root.contains("\"@custom//x:lib\"") && !root.contains("@ext//:x"), "{root}");
        assert!(!dir.path().join("cg/BUILD.bazel").exists());
    }
}
