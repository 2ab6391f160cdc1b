//! Destination paths, modes and owners of `pkg_tar` members, computed exactly as rules_pkg does.
//!
//! rules_pkg spreads this over three places, and the order matters:
//! 1. `pkg/path.bzl` `dest_path` strips `strip_prefix` from the file's path. The result often
//!    starts with `/` (e.g. `/worker` for a flattened file), and
//! 2. `remap_paths` is applied to that raw result (so remap keys usually start with `/`), then
//!    `pkg_files.bzl` strips `/` from both ends: that is the manifest key, which is also the
//!    key `modes`/`owners`/`ownernames` are looked up by (before `package_dir`!).
//! 3. `build_tar.py` `normalize_path` normalizes the key and prefixes `package_dir`.
//!
//! Everything here is pure string manipulation; no I/O.

use anyhow::{Result, bail};

#[cfg(test)]
/// Destination of a source file in the tar per rules_pkg, without `remap_paths` (see
/// [`dest_path_remapped`]).
///
/// `short_path` is the file's path as rules_pkg's `safe_short_path` sees it: for main-repository
/// files the path relative to the repository root, e.g. `cmd/worker/worker_/worker` for a
/// go_binary output in package `cmd/worker`, or `cmd/worker/main.go` (external-repository files
/// are `external/<repo>/...`). `package` is the pkg_tar's package (`cmd/worker`, "" at the root);
/// `strip_prefix` and `package_dir` are the attributes.
pub fn dest_path(short_path: &str, package: &str, strip_prefix: &str, package_dir: &str) -> String {
    dest_path_remapped(short_path, package, strip_prefix, package_dir, &[])
}

#[cfg(test)]
/// [`dest_path`] with `remap_paths` applied at the point rules_pkg applies it.
pub fn dest_path_remapped(
    short_path: &str,
    package: &str,
    strip_prefix: &str,
    package_dir: &str,
    remap_paths: &[(String, String)],
) -> String {
    let key = manifest_key(&remap(&strip_path(short_path, package, strip_prefix), remap_paths));
    normalize_dest(&key, package_dir)
}

/// rules_pkg's `dest_path(f, compute_data_path(label, strip_prefix), compute_data_path(label, "."))`:
/// the raw path before `remap_paths`, possibly with a leading `/`.
///
/// * `""` (default): flatten, i.e. strip the file's own directory → `/basename`;
/// * `"."`: relative to the pkg_tar's package;
/// * `"/"`: the whole workspace-relative path;
/// * `"sub"` / `"./sub"`: relative to `<package>/sub`; `"/abs"`: relative to workspace dir `abs`.
///
/// The prefix is a string prefix, but rules_pkg refuses to cut a directory name in half: if the
/// prefix's last component is not one of the path's components, it strips the package instead
/// (by length, as rules_pkg does). A path not under the prefix is kept whole.
pub fn strip_path(short_path: &str, package: &str, strip_prefix: &str) -> String {
    let prefix = match data_path(package, strip_prefix) {
        Some(p) => p,
        // No strip_prefix: strip the file's own directory (flattening).
        None => short_path.rfind('/').map_or("", |i| &short_path[..i]).to_string(),
    };
    if prefix.is_empty() || !short_path.starts_with(&prefix) {
        return short_path.to_string();
    }
    let last_dir = prefix.rfind('/').map_or(prefix.as_str(), |i| &prefix[i + 1..]);
    let cut = if short_path.split('/').any(|c| c == last_dir) {
        prefix.len()
    } else {
        // data_path_without_prefix = compute_data_path(label, ".") = the package.
        package.len()
    };
    short_path.get(cut..).unwrap_or_default().to_string()
}

/// rules_pkg `compute_data_path(label, data_path)`: `None` when `strip_prefix` is empty.
fn data_path(package: &str, strip_prefix: &str) -> Option<String> {
    if strip_prefix.is_empty() {
        return None;
    }
    let p = strip_prefix.strip_prefix("./").unwrap_or(strip_prefix);
    Some(if p.is_empty() || p == "." {
        package.to_string()
    } else if let Some(abs) = p.strip_prefix('/') {
        abs.to_string()
    } else if package.is_empty() {
        p.to_string()
    } else {
        format!("{package}/{p}")
    })
}

/// `remap_paths`: the first (in attribute order) key that is a string prefix of `path` is
/// replaced by its value. Apply it to the raw [`strip_path`] result, as rules_pkg does.
pub fn remap(path: &str, remap_paths: &[(String, String)]) -> String {
    for (prefix, replacement) in remap_paths {
        if let Some(rest) = path.strip_prefix(prefix.as_str()) {
            return format!("{replacement}{rest}");
        }
    }
    path.to_string()
}

/// The manifest key of a destination (`dest_path.strip("/")` in `pkg_files.bzl`): the path
/// `modes`, `owners` and `ownernames` keys are matched against, and the one rules_pkg sorts by.
/// Also use it for `empty_files`, `empty_dirs` and `symlinks` keys.
pub fn manifest_key(path: &str) -> String {
    path.trim_matches('/').to_string()
}

/// A `modes`/`owners`/`ownernames` attribute key as build_tar matches it: one leading `/` removed.
pub fn attr_key(key: &str) -> &str {
    key.strip_prefix('/').unwrap_or(key)
}

/// Final member name of a manifest key (`build_tar.py` `normalize_path`): `os.path.normpath`,
/// leading `./` and surrounding `/` removed, then `package_dir` (`/` or "" = none) prefixed
/// unless the path already starts with `package_dir/`.
pub fn normalize_dest(path: &str, package_dir: &str) -> String {
    let mut dest = normpath(path);
    if let Some(rest) = dest.strip_prefix("./") {
        dest = rest.to_string();
    }
    let dest = dest.trim_matches('/');
    let dir = package_dir.trim_matches('/');
    if dir.is_empty() {
        return dest.to_string();
    }
    let dir = format!("{dir}/");
    if dest.starts_with(&dir) { dest.to_string() } else { format!("{dir}{dest}") }
}

/// Member name of a `symlinks` key: rules_pkg writes keys starting with `./` verbatim (no
/// normalization, no `package_dir`); everything else goes through [`normalize_dest`].
pub fn normalize_symlink_dest(path: &str, package_dir: &str) -> String {
    if path.starts_with("./") { path.to_string() } else { normalize_dest(path, package_dir) }
}

/// Python's `os.path.normpath` for POSIX paths.
fn normpath(path: &str) -> String {
    if path.is_empty() {
        return ".".to_string();
    }
    let leading = path.bytes().take_while(|b| *b == b'/').count();
    let initial = match leading {
        0 => "",
        2 => "//",
        _ => "/",
    };
    let mut parts: Vec<&str> = Vec::new();
    for comp in path.split('/') {
        match comp {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            ".." if !initial.is_empty() => {}
            _ => parts.push(comp),
        }
    }
    let out = format!("{initial}{}", parts.join("/"));
    if out.is_empty() { ".".to_string() } else { out }
}

/// Parses an octal mode such as `"0755"` or `"755"` (Python `int(s, 8)`, which also accepts a
/// `0o` prefix and surrounding whitespace).
pub fn parse_mode(s: &str) -> Result<u32> {
    let t = s.trim();
    let digits = t.strip_prefix("0o").or_else(|| t.strip_prefix("0O")).unwrap_or(t);
    if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        bail!("invalid mode {s:?}: expected an octal number such as \"0755\"");
    }
    match u32::from_str_radix(digits, 8) {
        Ok(mode) => Ok(mode),
        Err(_) => bail!("invalid mode {s:?}: too large"),
    }
}

/// Parses `"uid.gid"` (`owner`, `owners` values), e.g. `"0.0"` or `"1000.1000"`.
pub fn parse_owner(s: &str) -> Result<(u64, u64)> {
    let Some((uid, gid)) = s.split_once('.') else {
        bail!("invalid owner {s:?}: expected \"uid.gid\", e.g. \"0.0\"");
    };
    let parse = |v: &str| v.trim().parse::<u64>().ok();
    match (parse(uid), parse(gid)) {
        (Some(uid), Some(gid)) => Ok((uid, gid)),
        _ => bail!("invalid owner {s:?}: uid and gid must be non-negative integers"),
    }
}

/// Parses `"user.group"` (`ownername`, `ownernames` values), split at the first `.`; `"."` (the
/// default) gives empty names. A value without a `.` is an error, as it crashes build_tar.
pub fn parse_owner_name(s: &str) -> Result<(String, String)> {
    match s.split_once('.') {
        Some((user, group)) => Ok((user.to_string(), group.to_string())),
        None => bail!("invalid owner name {s:?}: expected \"user.group\", e.g. \"root.root\" (\".\" for none)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flatten_by_default() {
        assert_eq!(dest_path("cmd/worker/worker_/worker", "cmd/worker", "", ""), "worker");
        assert_eq!(dest_path("cmd/worker/main.go", "cmd/worker", "", ""), "main.go");
        assert_eq!(dest_path("other/pkg/data.txt", "cmd/worker", "", ""), "data.txt");
        assert_eq!(dest_path("top.txt", "", "", ""), "top.txt");
        // remap sees the raw "/basename".
        assert_eq!(strip_path("cmd/worker/worker_/worker", "cmd/worker", ""), "/worker");
    }

    #[test]
    fn strip_dot_is_package_relative() {
        assert_eq!(dest_path("cmd/worker/worker_/worker", "cmd/worker", ".", ""), "worker_/worker");
        assert_eq!(dest_path("cmd/worker/etc/a/b.conf", "cmd/worker", "./", ""), "etc/a/b.conf");
        // A file outside the package keeps its whole path.
        assert_eq!(dest_path("lib/x.txt", "cmd/worker", ".", ""), "lib/x.txt");
        // Root package: nothing to strip.
        assert_eq!(dest_path("a/b.txt", "", ".", ""), "a/b.txt");
    }

    #[test]
    fn strip_slash_is_workspace_relative() {
        assert_eq!(dest_path("cmd/worker/worker_/worker", "cmd/worker", "/", ""), "cmd/worker/worker_/worker");
    }

    #[test]
    fn strip_sub_and_abs() {
        assert_eq!(dest_path("pkg/sub/a/b", "pkg", "sub", ""), "a/b");
        assert_eq!(dest_path("pkg/sub/a/b", "pkg", "./sub", ""), "a/b");
        assert_eq!(dest_path("pkg/sub/a/b", "other", "/pkg/sub", ""), "a/b");
        assert_eq!(dest_path("abs/x/y", "pkg", "/abs", ""), "x/y");
        // Not under the prefix: unchanged.
        assert_eq!(dest_path("pkg/other/a", "pkg", "sub", ""), "pkg/other/a");
    }

    #[test]
    fn only_whole_components_are_stripped() {
        // "pkg/sub" is a string prefix of "pkg/subdir/x" but "sub" is not a component, so
        // rules_pkg falls back to stripping the package.
        assert_eq!(dest_path("pkg/subdir/x", "pkg", "sub", ""), "subdir/x");
        assert_eq!(dest_path("abc/def", "", "/ab", ""), "abc/def");
    }

    #[test]
    fn package_dir_applied_last_once() {
        assert_eq!(dest_path("cmd/worker/worker_/worker", "cmd/worker", "", "/app/bin"), "app/bin/worker");
        assert_eq!(dest_path("cmd/worker/worker_/worker", "cmd/worker", "", "/"), "worker");
        assert_eq!(normalize_dest("app/x", "app"), "app/x");
        assert_eq!(normalize_dest("app", "app"), "app/app");
        assert_eq!(normalize_dest("application/x", "/app/"), "app/application/x");
    }

    #[test]
    fn normalization() {
        assert_eq!(normalize_dest("./a//b/", ""), "a/b");
        assert_eq!(normalize_dest("/etc/x", ""), "etc/x");
        assert_eq!(normalize_dest("a/../b", "d"), "d/b");
        assert_eq!(normalize_symlink_dest("./usr/bin/java", "app"), "./usr/bin/java");
        assert_eq!(normalize_symlink_dest("usr/bin/java", "app"), "app/usr/bin/java");
        assert_eq!(normalize_symlink_dest("/usr//bin/java", ""), "usr/bin/java");
        assert_eq!(manifest_key("/a/b/"), "a/b");
        assert_eq!(attr_key("/usr/titi"), "usr/titi");
    }

    #[test]
    fn remap_first_match_on_raw_path() {
        let remaps = vec![("/a_program".to_string(), "/new_name".to_string()), ("/a".to_string(), "/never".to_string())];
        assert_eq!(remap("/a_program", &remaps), "/new_name");
        assert_eq!(remap("/b", &remaps), "/b");
        assert_eq!(dest_path_remapped("tests/tar/a_program", "tests/tar", "", "", &remaps), "new_name");
    }

    #[test]
    fn modes() {
        assert_eq!(parse_mode("0755").unwrap(), 0o755);
        assert_eq!(parse_mode("755").unwrap(), 0o755);
        assert_eq!(parse_mode("0o644").unwrap(), 0o644);
        assert_eq!(parse_mode("04755").unwrap(), 0o4755);
        let err = parse_mode("0x1f").unwrap_err().to_string();
        assert!(err.contains("\"0x1f\""), "{err}");
        assert!(parse_mode("").is_err());
        assert!(parse_mode("0855").is_err());
    }

    #[test]
    fn owners() {
        assert_eq!(parse_owner("0.0").unwrap(), (0, 0));
        assert_eq!(parse_owner("42.24").unwrap(), (42, 24));
        assert!(parse_owner("42").unwrap_err().to_string().contains("\"42\""));
        assert!(parse_owner("a.b").is_err());
        assert_eq!(parse_owner_name(".").unwrap(), (String::new(), String::new()));
        assert_eq!(parse_owner_name("titi.tata").unwrap(), ("titi".into(), "tata".into()));
        assert_eq!(parse_owner_name("a.b.c").unwrap(), ("a".into(), "b.c".into()));
        assert!(parse_owner_name("root").unwrap_err().to_string().contains("\"root\""));
    }
}
