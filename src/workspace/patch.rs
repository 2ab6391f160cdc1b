//! A small applier of unified diffs (`patch -pN` semantics for what `go_repository(patches)`
//! and `http_archive(patches)` use): file modifications, creations (`--- /dev/null`) and
//! deletions (`+++ /dev/null`), each hunk's context matched exactly, searched near its
//! stated line when earlier hunks shifted it. No fuzz: a hunk that does not match fails.

use std::path::Path;

use anyhow::{Context, Result, anyhow, bail};

struct Hunk {
    old_start: usize,
    /// Lines with their marker: ' ', '-' or '+'.
    lines: Vec<(char, String)>,
}

struct FilePatch {
    old: String,
    new: String,
    hunks: Vec<Hunk>,
}

fn strip(path: &str, components: usize) -> Result<String> {
    let path = path.split('\t').next().unwrap_or(path).trim();
    if path == "/dev/null" {
        return Ok(path.to_owned());
    }
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.len() <= components {
        bail!("cannot strip {components} components from '{path}'");
    }
    let rel = parts[components..].join("/");
    if rel.split('/').any(|c| c == "..") {
        bail!("patch path '{path}' leaves the directory");
    }
    Ok(rel)
}

fn parse(text: &str, strip_count: usize) -> Result<Vec<FilePatch>> {
    let lines: Vec<&str> = text.lines().collect();
    let mut files = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let Some(old) = lines[i].strip_prefix("--- ") else {
            i += 1;
            continue;
        };
        let new = lines.get(i + 1).and_then(|l| l.strip_prefix("+++ ")).ok_or_else(|| anyhow!("line {}: '---' without '+++'", i + 1))?;
        let mut fp = FilePatch { old: strip(old, strip_count)?, new: strip(new, strip_count)?, hunks: Vec::new() };
        i += 2;
        while i < lines.len() && lines[i].starts_with("@@") {
            let header = lines[i];
            let ranges: Vec<&str> = header.trim_start_matches('@').split_whitespace().take(2).collect();
            let parse_range = |r: &str| -> Result<(usize, usize)> {
                let r = &r[1..];
                let (start, len) = r.split_once(',').unwrap_or((r, "1"));
                Ok((start.parse()?, len.parse()?))
            };
            let bad = || anyhow!("line {}: malformed hunk header '{header}'", i + 1);
            let (old_start, mut old_len) = parse_range(ranges.first().ok_or_else(bad)?).map_err(|_| bad())?;
            let (_, mut new_len) = parse_range(ranges.get(1).ok_or_else(bad)?).map_err(|_| bad())?;
            i += 1;
            let mut hunk = Hunk { old_start, lines: Vec::new() };
            while old_len > 0 || new_len > 0 {
                let line = lines.get(i).ok_or_else(|| anyhow!("patch ends inside a hunk"))?;
                i += 1;
                if line.starts_with('\\') {
                    continue;
                }
                let (mark, rest) = match line.chars().next() {
                    Some(c @ (' ' | '-' | '+')) => (c, &line[1..]),
                    None => (' ', ""),
                    _ => bail!("line {i}: unexpected line in hunk: '{line}'"),
                };
                match mark {
                    ' ' => {
                        old_len = old_len.saturating_sub(1);
                        new_len = new_len.saturating_sub(1);
                    }
                    '-' => old_len = old_len.saturating_sub(1),
                    _ => new_len = new_len.saturating_sub(1),
                }
                hunk.lines.push((mark, rest.to_owned()));
            }
            while lines.get(i).is_some_and(|l| l.starts_with('\\')) {
                i += 1;
            }
            fp.hunks.push(hunk);
        }
        files.push(fp);
    }
    Ok(files)
}

fn apply_hunks(original: &str, hunks: &[Hunk]) -> Result<String> {
    let mut lines: Vec<String> = original.lines().map(str::to_owned).collect();
    let mut shift: isize = 0;
    for (n, hunk) in hunks.iter().enumerate() {
        let old: Vec<&str> = hunk.lines.iter().filter(|(m, _)| *m != '+').map(|(_, l)| l.as_str()).collect();
        let new: Vec<String> = hunk.lines.iter().filter(|(m, _)| *m != '-').map(|(_, l)| l.clone()).collect();
        let want = (hunk.old_start.max(1) as isize - 1 + shift).max(0) as usize;
        let fits = |at: usize| at + old.len() <= lines.len() && lines[at..at + old.len()].iter().zip(&old).all(|(a, b)| a == b);
        let at = (0..=lines.len())
            .flat_map(|d| [want.checked_add(d), want.checked_sub(d)])
            .flatten()
            .find(|&at| fits(at))
            .ok_or_else(|| anyhow!("hunk {} (at line {}) does not apply", n + 1, hunk.old_start))?;
        lines.splice(at..at + old.len(), new.iter().cloned());
        shift += new.len() as isize - old.len() as isize + (at as isize - want as isize);
    }
    let mut out = lines.join("\n");
    if !lines.is_empty() {
        out.push('\n');
    }
    Ok(out)
}

/// Applies the unified diff `text` to the files under `dir`, stripping `strip_count` leading
/// path components (`-p1`). Changed files are replaced (written beside, then renamed), never
/// edited in place, so hard links into a shared store are left alone.
pub fn apply(dir: &Path, text: &str, strip_count: usize) -> Result<()> {
    let files = parse(text, strip_count)?;
    if files.is_empty() {
        bail!("no file changes found in the patch");
    }
    for fp in files {
        let target = if fp.new == "/dev/null" { &fp.old } else { &fp.new };
        let path = dir.join(target);
        if fp.new == "/dev/null" {
            std::fs::remove_file(&path).with_context(|| format!("deleting {target}"))?;
            continue;
        }
        let original = if fp.old == "/dev/null" {
            String::new()
        } else {
            std::fs::read_to_string(dir.join(&fp.old)).with_context(|| format!("reading {}", fp.old))?
        };
        let patched = apply_hunks(&original, &fp.hunks).with_context(|| format!("patching {target}"))?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
        }
        let temp = path.with_extension("ocib-patch-tmp");
        std::fs::write(&temp, patched).with_context(|| format!("writing {}", temp.display()))?;
        std::fs::rename(&temp, &path).with_context(|| format!("replacing {target}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn applies_modify_create_and_shifted_hunks() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a.go"), "package a\n\nfunc A() string {\n\treturn \"a\"\n}\n").unwrap();
        let patch = "diff --git a/a.go b/a.go\n--- a/a.go\n+++ b/a.go\n@@ -3,3 +3,3 @@\n func A() string {\n-\treturn \"a\"\n+\treturn \"patched\"\n }\n--- /dev/null\n+++ b/new.go\n@@ -0,0 +1,2 @@\n+package a\n+// new\n";
        apply(dir.path(), patch, 1).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("a.go")).unwrap(), "package a\n\nfunc A() string {\n\treturn \"patched\"\n}\n");
        assert_eq!(std::fs::read_to_string(dir.path().join("new.go")).unwrap(), "package a\n// new\n");
        // A hunk whose stated line is off still applies where its context is.
        std::fs::write(dir.path().join("b.txt"), "x\ny\nz\n").unwrap();
        apply(dir.path(), "--- a/b.txt\n+++ b/b.txt\n@@ -1,2 +1,2 @@\n y\n-z\n+Z\n", 1).unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("b.txt")).unwrap(), "x\ny\nZ\n");
    }

    #[test]
    fn rejects_mismatch_and_escape() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("a"), "1\n").unwrap();
        assert!(apply(dir.path(), "--- a/a\n+++ b/a\n@@ -1 +1 @@\n-2\n+3\n", 1).unwrap_err().to_string().contains("patching a"));
        assert!(apply(dir.path(), "--- a/../x\n+++ b/../x\n@@ -1 +1 @@\n-2\n+3\n", 1).is_err());
    }
}
