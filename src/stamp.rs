//! Workspace status for `--stamp`: the built-in keys, `--workspace_status_command`, the
//! stable/volatile split, and `{KEY}` / `{{KEY}}` substitution.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkspaceStatus {
    pub stable: BTreeMap<String, String>,
    pub volatile: BTreeMap<String, String>,
}

/// Keys that go to the stable file besides `STABLE_*` ones.
const STABLE_BUILTINS: [&str; 3] = ["BUILD_EMBED_LABEL", "BUILD_HOST", "BUILD_USER"];

pub fn is_stable_key(key: &str) -> bool {
    key.starts_with("STABLE_") || STABLE_BUILTINS.contains(&key)
}

/// Computes the status: built-in keys, then the command's `KEY VALUE` lines (split at the
/// first space; a line without a space is dropped; `KEY ` keeps an empty value).
pub fn compute(root: &Path, command: Option<&str>, embed_label: &str) -> Result<WorkspaceStatus> {
    let mut status = WorkspaceStatus::default();
    status.stable.insert("BUILD_EMBED_LABEL".into(), embed_label.to_owned());
    status.stable.insert("BUILD_HOST".into(), hostname());
    status.stable.insert("BUILD_USER".into(), std::env::var("USER").unwrap_or_default());
    let timestamp = match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) if !v.is_empty() => v,
        _ => std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0).to_string(),
    };
    status.volatile.insert("BUILD_TIMESTAMP".into(), timestamp);
    if let Some(cmd) = command.filter(|c| !c.is_empty()) {
        let out = Command::new("bash")
            .arg("-c")
            .arg(cmd)
            .current_dir(root)
            .output()
            .with_context(|| format!("running --workspace_status_command '{cmd}'"))?;
        if !out.status.success() {
            bail!("--workspace_status_command '{cmd}' failed ({}):\n{}", out.status, String::from_utf8_lossy(&out.stderr));
        }
        for (key, value) in parse(&String::from_utf8_lossy(&out.stdout)) {
            if is_stable_key(&key) {
                status.stable.insert(key, value);
            } else {
                status.volatile.insert(key, value);
            }
        }
    }
    Ok(status)
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_owned()).unwrap_or_default()
}

/// `KEY VALUE` lines into a map (the status file format and the command's output).
pub fn parse(text: &str) -> BTreeMap<String, String> {
    text.lines().filter_map(|line| line.split_once(' ')).filter(|(k, _)| !k.is_empty()).map(|(k, v)| (k.to_owned(), v.to_owned())).collect()
}

/// The status file format: keys sorted, `KEY VALUE\n` each.
pub fn format(map: &BTreeMap<String, String>) -> String {
    map.iter().map(|(k, v)| format!("{k} {v}\n")).collect()
}

/// rules_go's x_defs stamping: every `{KEY}` is replaced from the status; if any key is
/// missing, the whole definition is dropped (None).
pub fn substitute_single_braces(value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find('{') {
        let Some(len) = rest[start + 1..].find('}') else { break };
        let key = &rest[start + 1..start + 1 + len];
        if key.is_empty() {
            out.push_str(&rest[..start + 2]);
            rest = &rest[start + 2..];
            continue;
        }
        out.push_str(&rest[..start]);
        out.push_str(&lookup(key)?);
        rest = &rest[start + 1 + len + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// Whether a value has `{...}` placeholders (an unstamped build drops such x_defs).
pub fn has_placeholder(value: &str) -> bool {
    value.find('{').is_some_and(|s| value[s + 1..].find('}').is_some_and(|l| l > 0))
}

/// bazel-lib's `stamp_substitutions`: `{{KEY}}` replaced by the status value; unknown keys
/// stay literal, and values containing spaces are not used (its parser ignores them).
pub fn substitute_double_braces(value: &str, status: &WorkspaceStatus) -> String {
    let mut out = value.to_owned();
    for map in [&status.stable, &status.volatile] {
        for (k, v) in map {
            if !v.contains(' ') {
                out = out.replace(&format!("{{{{{k}}}}}"), v);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_splits_at_first_space_and_drops_keyless_lines() {
        let m = parse("STABLE_VERSION 1.2.3\nBUILD_COMMIT abc def\nNOVALUE\nEMPTY \n");
        assert_eq!(m.get("STABLE_VERSION").map(String::as_str), Some("1.2.3"));
        assert_eq!(m.get("BUILD_COMMIT").map(String::as_str), Some("abc def"));
        assert_eq!(m.get("EMPTY").map(String::as_str), Some(""));
        assert!(!m.contains_key("NOVALUE"));
    }

    #[test]
    fn stable_and_volatile_split() {
        assert!(is_stable_key("STABLE_VERSION") && is_stable_key("BUILD_EMBED_LABEL") && is_stable_key("BUILD_USER"));
        assert!(!is_stable_key("BUILD_TIMESTAMP") && !is_stable_key("GIT_COMMIT"));
    }

    #[test]
    fn command_output_and_source_date_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let s = compute(dir.path(), Some("echo STABLE_VERSION 9.9; echo BUILD_SCM dirty"), "rel-1").unwrap();
        assert_eq!(s.stable["STABLE_VERSION"], "9.9");
        assert_eq!(s.stable["BUILD_EMBED_LABEL"], "rel-1");
        assert_eq!(s.volatile["BUILD_SCM"], "dirty");
        assert!(compute(dir.path(), Some("exit 3"), "").is_err());
        assert_eq!(format(&s.stable).lines().next().map(|l| l.split(' ').next()), Some(Some("BUILD_EMBED_LABEL")));
    }

    #[test]
    fn x_defs_substitution_drops_on_missing_key() {
        let lookup = |k: &str| (k == "STABLE_VERSION").then(|| "1.2.3".to_owned());
        assert_eq!(substitute_single_braces("v{STABLE_VERSION}-x", &lookup).as_deref(), Some("v1.2.3-x"));
        assert_eq!(substitute_single_braces("{STABLE_VERSION}{MISSING}", &lookup), None);
        assert_eq!(substitute_single_braces("plain", &lookup).as_deref(), Some("plain"));
        assert!(has_placeholder("{X}") && !has_placeholder("{}") && !has_placeholder("x"));
    }

    #[test]
    fn double_brace_substitution_keeps_unknown_keys() {
        let mut s = WorkspaceStatus::default();
        s.stable.insert("STABLE_VERSION".into(), "2.0".into());
        s.stable.insert("STABLE_SPACED".into(), "a b".into());
        assert_eq!(substitute_double_braces("v{{STABLE_VERSION}} {{NOPE}} {{STABLE_SPACED}}", &s), "v2.0 {{NOPE}} {{STABLE_SPACED}}");
    }
}
