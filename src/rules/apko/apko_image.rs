//! rules_apko `apko_image` (rule class `_apko_image`): an OCI image layout built from an apko
//! config and the packages of a lock (`contents = "@<lock>//:contents"`), without apko.
//!
//! The build follows apko's (pkg/build `BuildImage`, pkg/apk `InitDB`/`InstallPackages`): the
//! apk database skeleton, every package of the lock for the architecture in the lock's order,
//! `/etc/apk/world`, `/etc/apk/repositories`, `/etc/apk/arch`, `/usr/lib/apk/db/installed`
//! (with `/lib/apk` pointing at it, as apko links it), accounts into `/etc/passwd` and
//! `/etc/group`, then `paths`. The image has one layer; its timestamps and the config's
//! `created` are the newest package build date (apko's `GetBuildDateEpoch` without
//! SOURCE_DATE_EPOCH), so the same lock gives the same digest anywhere.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::install::{self, FsEntry, Kind, Root};
use crate::analysis::{AnalysisError, Providers, RuleContext};
use crate::exec::{Action, ActionContext, ActionKind, InProcess};
use crate::graph::AttrType as A;
use crate::oci::layout::LayoutWriter;
use crate::oci::spec::{self, Descriptor, ImageManifest, OCI_CONFIG, OCI_MANIFEST};
use crate::rules::{RuleSchema, SchemaBuilder, s};

/// `_apko_image`, the rule rules_apko's `apko_image` macro calls.
pub fn schema() -> RuleSchema {
    SchemaBuilder::new("_apko_image")
        .mandatory("contents", A::Label)
        .mandatory("config", A::Label)
        .default("output", A::String, s("oci"))
        .attr("architecture", A::String)
        .mandatory("tag", A::String)
        .attr("args", A::StringList)
        .build()
}

/// `apko build` flags that do not change the image ocib builds.
fn check_args(args: &[String]) -> Result<Option<i64>> {
    let mut epoch = None;
    for a in args {
        if let Some(v) = a.strip_prefix("--build-date=").or_else(|| a.strip_prefix("--source-date-epoch=")) {
            epoch = Some(v.parse().map_err(|_| anyhow!("'{a}': ocib takes the build date as seconds since the epoch"))?);
            continue;
        }
        let ignored = ["--vcs", "--sbom", "--offline", "--log-level", "--debug", "--include-paths", "--cache-dir", "--lockfile"];
        if !ignored.iter().any(|p| a == p || a.starts_with(&format!("{p}="))) {
            bail!("apko flag '{a}' is not supported by ocib");
        }
    }
    Ok(epoch)
}

pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    if ctx.string("output")? != "oci" {
        return Err(AnalysisError::new("attribute 'output': ocib's apko_image writes an OCI layout (output = \"oci\")"));
    }
    let config = ctx.single_file("config")?.ok_or_else(|| AnalysisError::new("attribute 'config': expected one apko.yaml file"))?;
    let mut apks = ctx.files("contents")?;
    let architecture = ctx.string("architecture")?;
    if !architecture.is_empty() {
        // Only this architecture's packages (and noarch ones) are fetched: `apk_import` puts
        // each under a directory named by its architecture.
        let arch = apk_arch(&architecture).map_err(|e| AnalysisError::new(format!("attribute 'architecture': {e}")))?;
        let dir_of = |path: &str| std::path::Path::new(path).parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
        apks.retain(|a| dir_of(&a.exec_path).is_none_or(|d| d == arch || d == "noarch" || !KNOWN_APK_ARCHS.contains(&d.as_str())));
    }
    let args = ctx.string_list("args")?;
    let build_date = check_args(&args).map_err(|e| AnalysisError::new(format!("attribute 'args': {e}")))?;
    let name = ctx.label().name.clone();
    let layout = ctx.declare(&name);
    let code = BuildApkoImage {
        label: ctx.label().to_string(),
        config: config.exec_path.clone(),
        apks: apks.iter().map(|a| a.exec_path.clone()).collect(),
        architecture,
        build_date,
        out_dir: layout.exec_path.clone(),
    };
    let mut inputs = vec![config];
    inputs.extend(apks);
    let mut action = Action::new("ApkoImage", ctx.label(), ActionKind::Run(Arc::new(code))).inputs(inputs).tree_output(layout.clone());
    action.progress = format!("Building apko image {}", ctx.label());
    ctx.register(action)?;
    Ok(Providers { files: vec![layout.clone()], oci_layout: Some(layout), declared: ctx.declared(), ..Default::default() })
}

/// The in-process image build.
#[derive(Serialize, Deserialize)]
pub struct BuildApkoImage {
    pub label: String,
    pub config: String,
    pub apks: Vec<String>,
    pub architecture: String,
    pub build_date: Option<i64>,
    pub out_dir: String,
}

/// The architecture names apk packages use.
const KNOWN_APK_ARCHS: &[&str] = &["x86_64", "aarch64", "x86", "armv7", "armhf", "ppc64le", "s390x", "riscv64", "loongarch64"];

/// OCI architecture → apk architecture (apko's `types.Architecture.ToAPK`).
pub fn apk_arch(oci: &str) -> Result<&'static str> {
    Ok(match oci {
        "amd64" | "x86_64" => "x86_64",
        "arm64" | "aarch64" => "aarch64",
        "386" | "x86" => "x86",
        "arm/v7" | "armv7" => "armv7",
        "arm/v6" | "armhf" => "armhf",
        "ppc64le" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        "loong64" | "loongarch64" => "loongarch64",
        other => bail!("unknown architecture '{other}'"),
    })
}

/// OCI name of an architecture given either way.
fn oci_arch(arch: &str) -> Result<&'static str> {
    Ok(match apk_arch(arch)? {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "armv7" | "armhf" => "arm",
        "ppc64le" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        _ => "loong64",
    })
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => vec![],
    }
}

fn text(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn number(v: Option<&Value>) -> Option<u64> {
    match v? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// A `permissions:` value: YAML reads `0o755` as an integer; apko also accepts strings.
fn permissions(v: Option<&Value>, default: u32) -> Result<u32> {
    Ok(match v {
        None | Some(Value::Null) => default,
        Some(Value::Number(n)) => n.as_u64().ok_or_else(|| anyhow!("bad permissions {n}"))? as u32,
        Some(Value::String(s)) => {
            let digits = s.trim_start_matches("0o");
            u32::from_str_radix(digits, 8).map_err(|_| anyhow!("bad permissions '{s}'"))?
        }
        Some(other) => bail!("bad permissions {other}"),
    })
}

/// Splits a command line the way apko does (shell words: quotes group, backslash escapes).
pub fn shell_words(line: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => cur.push(chars.next().unwrap_or('\\')),
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => {
                cur.push(chars.next().unwrap_or('\\'));
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        bail!("unterminated quote in '{line}'");
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// `YYYY-MM-DDTHH:MM:SSZ` for seconds since the epoch.
pub fn rfc3339(secs: i64) -> String {
    let days = secs.div_euclid(86400);
    let rem = secs.rem_euclid(86400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

impl BuildApkoImage {
    /// Builds the root filesystem and the image config from the apko config and packages.
    pub fn build(&self, config: &Value, apks: &[(String, Vec<u8>)]) -> Result<(Root, Value, BTreeMap<String, String>, i64)> {
        if config.get("include").is_some() {
            bail!("'include' is not supported by ocib's apko_image: merge the files with yq and pass the result as config");
        }
        let arch_name = if self.architecture.is_empty() {
            strings(config.get("archs")).into_iter().next().unwrap_or_else(|| "amd64".to_owned())
        } else {
            self.architecture.clone()
        };
        let arch = apk_arch(&arch_name)?;
        let contents = config.get("contents");
        let mut root = Root::default();
        // apko's InitDB skeleton.
        for d in ["etc/apk", "etc/apk/keys", "usr/lib/apk/db", "usr/lib/apk/exec", "var/cache/apk", "var/cache/misc"] {
            root.dir(d, 0o755, 0, 0);
        }
        root.file("usr/lib/apk/db/lock", vec![], 0o600);
        root.file("usr/lib/apk/db/triggers", vec![], 0o644);
        let mut installed = Vec::new();
        for (path, bytes) in apks {
            let sections = super::apk::split(bytes).with_context(|| format!("reading {path}"))?;
            let info = super::apk::pkginfo(&sections.control.tar).with_context(|| format!("reading {path}"))?;
            let pkg_arch = info.get("arch");
            if pkg_arch != arch && pkg_arch != "noarch" {
                continue;
            }
            let pkg = root.install(&sections, info, bytes.len()).with_context(|| format!("installing {path}"))?;
            installed.push(pkg);
        }
        if installed.is_empty() {
            bail!("the contents have no package for architecture {arch}");
        }
        let build_date = self.build_date.unwrap_or_else(|| installed.iter().map(|p| p.build_date()).max().unwrap_or(0).max(0));

        let mut world = strings(contents.and_then(|c| c.get("packages")));
        world.sort();
        world.dedup();
        root.file("etc/apk/world", format!("{}\n", world.join("\n")).into_bytes(), 0o644);
        let repositories = strings(contents.and_then(|c| c.get("repositories")));
        root.file("etc/apk/repositories", format!("{}\n", repositories.join("\n")).into_bytes(), 0o644);
        root.file("etc/apk/arch", format!("{arch}\n").into_bytes(), 0o644);
        let db: String = installed.iter().map(install::installed_record).collect();
        root.file("usr/lib/apk/db/installed", db.into_bytes(), 0o644);
        let lib_is_usr_lib =
            matches!(root.entries.get("lib").map(|e| &e.kind), Some(Kind::Symlink(t)) if t.trim_start_matches('/') == "usr/lib");
        if !lib_is_usr_lib && !root.entries.contains_key("lib/apk") {
            root.dir("lib", 0o755, 0, 0);
            root.entries.insert("lib/apk".into(), FsEntry { kind: Kind::Symlink("../usr/lib/apk".into()), mode: 0o777, uid: 0, gid: 0 });
        }

        self.accounts(config, &mut root)?;
        self.paths(config, &mut root)?;

        let mut env: BTreeMap<String, String> = BTreeMap::new();
        if let Some(Value::Object(m)) = config.get("environment") {
            for (k, v) in m {
                env.insert(k.clone(), text(Some(v)).unwrap_or_default());
            }
        }
        env.entry("PATH".into()).or_insert_with(|| "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
        let mut cfg = serde_json::Map::new();
        cfg.insert("Env".into(), json!(env.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>()));
        if let Some(cmd) = text(config.get("entrypoint").and_then(|e| e.get("command"))) {
            cfg.insert("Entrypoint".into(), json!(shell_words(&cmd)?));
        }
        if let Some(cmd) = text(config.get("cmd")) {
            cfg.insert("Cmd".into(), json!(shell_words(&cmd)?));
        }
        if let Some(user) = text(config.get("accounts").and_then(|a| a.get("run-as"))) {
            cfg.insert("User".into(), json!(user));
        }
        if let Some(dir) = text(config.get("work-dir")) {
            cfg.insert("WorkingDir".into(), json!(dir));
        }
        if let Some(sig) = text(config.get("stop-signal")) {
            cfg.insert("StopSignal".into(), json!(sig));
        }
        let image_config = json!({
            "architecture": oci_arch(&arch_name)?,
            "os": "linux",
            "created": rfc3339(build_date),
            "config": Value::Object(cfg),
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": [{"author": "apko", "created": rfc3339(build_date), "created_by": "apko", "comment": "This is an apko single-layer image"}],
        });
        let mut annotations = BTreeMap::new();
        if let Some(Value::Object(m)) = config.get("annotations") {
            for (k, v) in m {
                annotations.insert(k.clone(), text(Some(v)).unwrap_or_default());
            }
        }
        Ok((root, image_config, annotations, build_date))
    }

    /// apko's `mutateAccounts`: groups and users appended to what packages installed, home
    /// directories created (0700, owned by the user) unless present or `/dev/null`.
    fn accounts(&self, config: &Value, root: &mut Root) -> Result<()> {
        let Some(accounts) = config.get("accounts") else { return Ok(()) };
        let groups = accounts.get("groups").and_then(Value::as_array).cloned().unwrap_or_default();
        if !groups.is_empty() {
            let mut text = existing_text(root, "etc/group");
            for g in &groups {
                let name = text_field(g, "groupname")?;
                let gid = number(g.get("gid")).ok_or_else(|| anyhow!("accounts.groups: group '{name}' needs a numeric gid"))?;
                let members = strings(g.get("members")).join(",");
                text.push_str(&format!("{name}:x:{gid}:{members}\n"));
            }
            root.file("etc/group", text.into_bytes(), 0o644);
        }
        let users = accounts.get("users").and_then(Value::as_array).cloned().unwrap_or_default();
        let mut passwd = existing_text(root, "etc/passwd");
        let mut homes = Vec::new();
        for u in &users {
            let name = text_field(u, "username")?;
            let uid = number(u.get("uid")).ok_or_else(|| anyhow!("accounts.users: user '{name}' needs a numeric uid"))?;
            let gid = number(u.get("gid")).unwrap_or(uid);
            let shell = text(u.get("shell")).unwrap_or_else(|| "/bin/sh".into());
            let home = text(u.get("homedir")).unwrap_or_else(|| format!("/home/{name}"));
            passwd.push_str(&format!("{name}:x:{uid}:{gid}:Account created by apko:{home}:{shell}\n"));
            homes.push((home, uid, gid));
        }
        if !users.is_empty() || root.entries.contains_key("etc/passwd") {
            root.file("etc/passwd", passwd.into_bytes(), 0o644);
        }
        for (home, uid, gid) in homes {
            if home == "/dev/null" {
                continue;
            }
            let path = install::confine(&home)?;
            match root.entries.get(&path) {
                Some(e) if e.kind == Kind::Dir => {}
                Some(_) => bail!("home directory {home} exists, but is not a directory"),
                None => root.dir(&path, 0o700, uid, gid),
            }
        }
        Ok(())
    }

    /// apko's `paths:` entries.
    fn paths(&self, config: &Value, root: &mut Root) -> Result<()> {
        for p in config.get("paths").and_then(Value::as_array).cloned().unwrap_or_default() {
            let path_text = text_field(&p, "path")?;
            let path = install::confine(&path_text)?;
            let uid = number(p.get("uid")).unwrap_or(0);
            let gid = number(p.get("gid")).unwrap_or(0);
            let kind = text(p.get("type")).unwrap_or_default();
            match kind.as_str() {
                "directory" => {
                    let mode = permissions(p.get("permissions"), 0o755)?;
                    root.dir(&path, mode, uid, gid);
                    if p.get("recursive").and_then(Value::as_bool) == Some(true) {
                        let prefix = format!("{path}/");
                        for (k, e) in root.entries.iter_mut() {
                            if k.starts_with(&prefix) {
                                e.uid = uid;
                                e.gid = gid;
                                if e.kind == Kind::Dir {
                                    e.mode = mode;
                                }
                            }
                        }
                    }
                }
                "empty-file" => {
                    let mode = permissions(p.get("permissions"), 0o644)?;
                    root.file(&path, vec![], mode);
                    if let Some(e) = root.entries.get_mut(&path) {
                        e.uid = uid;
                        e.gid = gid;
                    }
                }
                "symlink" => {
                    let source = text_field(&p, "source")?;
                    root.file(&path, vec![], 0o777);
                    root.entries.insert(path.clone(), FsEntry { kind: Kind::Symlink(source), mode: 0o777, uid, gid });
                }
                "hardlink" => {
                    let source = install::confine(&text_field(&p, "source")?)?;
                    let target = root
                        .entries
                        .get(&source)
                        .cloned()
                        .ok_or_else(|| anyhow!("paths: hardlink {path_text}: source {source} does not exist"))?;
                    root.file(&path, vec![], target.mode);
                    root.entries.insert(path.clone(), FsEntry { kind: Kind::Hardlink(source), ..target });
                }
                "permissions" => {
                    let mode = permissions(p.get("permissions"), 0o644)?;
                    let e =
                        root.entries.get_mut(&path).ok_or_else(|| anyhow!("paths: permissions for {path_text}, which does not exist"))?;
                    e.mode = mode;
                    e.uid = uid;
                    e.gid = gid;
                }
                other => bail!("paths: {path_text}: unknown type '{other}'"),
            }
        }
        Ok(())
    }
}

fn existing_text(root: &Root, path: &str) -> String {
    match root.entries.get(path).map(|e| &e.kind) {
        Some(Kind::File(c)) => {
            let mut t = String::from_utf8_lossy(c).into_owned();
            if !t.is_empty() && !t.ends_with('\n') {
                t.push('\n');
            }
            t
        }
        _ => String::new(),
    }
}

fn text_field(v: &Value, key: &str) -> Result<String> {
    text(v.get(key)).ok_or_else(|| anyhow!("'{key}' is required in {v}"))
}

/// Writes the layout: one gzip layer (fixed gzip header), config, manifest, index.
pub fn write_layout(
    dir: &std::path::Path,
    root: &Root,
    mut config: Value,
    annotations: BTreeMap<String, String>,
    mtime: i64,
) -> Result<String> {
    let tar = install::write_tar(root, mtime.max(0) as u64)?;
    let diff_id = spec::sha256_digest(&tar);
    let mut gz = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::new(6));
    gz.write_all(&tar)?;
    let layer = gz.finish()?;
    config["rootfs"]["diff_ids"] = json!([diff_id]);
    let writer = LayoutWriter::create(dir)?;
    let layer_digest = writer.write_blob(&layer)?;
    let config_bytes = spec::canonical_json(&config)?;
    let config_digest = writer.write_blob(&config_bytes)?;
    let manifest = ImageManifest {
        schema_version: Some(2),
        media_type: Some(OCI_MANIFEST.to_owned()),
        config: Descriptor::new(OCI_CONFIG, &config_digest, config_bytes.len() as u64),
        layers: vec![Descriptor::new("application/vnd.oci.image.layer.v1.tar+gzip", &layer_digest, layer.len() as u64)],
        annotations: (!annotations.is_empty()).then_some(annotations),
        extra: serde_json::Map::new(),
    };
    let manifest_bytes = spec::canonical_json(&manifest)?;
    let manifest_digest = writer.write_blob(&manifest_bytes)?;
    writer.write_index(&spec::layout_index(OCI_MANIFEST, &manifest_digest, manifest_bytes.len() as u64))?;
    Ok(manifest_digest)
}

impl InProcess for BuildApkoImage {
    fn kind(&self) -> &'static str {
        "BuildApkoImage"
    }

    fn params(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let text = std::fs::read_to_string(ctx.input(&self.config)?).with_context(|| format!("reading {}", self.config))?;
        let config: Value =
            serde_yaml_ng::from_str(&text).with_context(|| format!("apko_image {}: parsing {}", self.label, self.config))?;
        let mut apks = Vec::new();
        for path in &self.apks {
            apks.push((path.clone(), std::fs::read(ctx.input(path)?).with_context(|| format!("reading {path}"))?));
        }
        let (root, image_config, annotations, date) =
            self.build(&config, &apks).with_context(|| format!("apko_image {} ({})", self.label, self.config))?;
        let dir = ctx.output(&self.out_dir)?.clone();
        write_layout(&dir, &root, image_config, annotations, date)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_dates() {
        assert_eq!(shell_words("/bin/sh -c 'echo hi' \"a b\"").unwrap(), ["/bin/sh", "-c", "echo hi", "a b"]);
        assert!(shell_words("'open").is_err());
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(apk_arch("amd64").unwrap(), "x86_64");
        assert!(check_args(&["--vcs=false".into()]).is_ok());
        assert!(check_args(&["--nope".into()]).is_err());
    }
}
