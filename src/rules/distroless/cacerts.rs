//! rules_distroless `cacerts` and `locale`: files taken from a Debian package's data
//! (`@<repo>//ca-certificates/amd64:data`, `@<repo>//libc-bin/amd64:data`) into a small
//! `<name>.tar.gz`. `cacerts` concatenates every certificate under
//! `/usr/share/ca-certificates` into `/etc/ssl/certs/ca-certificates.crt` (what
//! `update-ca-certificates` would make, as `cacerts.sh` does) and keeps the copyright;
//! `locale` keeps one charset of `/usr/lib/locale` and libc-bin's copyright (`locale.sh`).

use std::io::Read;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};

use super::archive::{Member, copy_entry, gzip_writer, normalize, open_tar, parents, parse_mode, parse_time, write_members};
use crate::analysis::{AnalysisError, Providers, RuleContext};
use crate::exec::{Action, ActionContext, ActionKind, InProcess};
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder, s};

pub fn cacerts_schema() -> RuleSchema {
    SchemaBuilder::new("cacerts")
        .mandatory("package", A::Label)
        .default("mode", A::String, s("0555"))
        .default("time", A::String, s("0.0"))
        .build()
}

pub fn locale_schema() -> RuleSchema {
    SchemaBuilder::new("locale")
        .mandatory("package", A::Label)
        .default("charset", A::String, s("C.utf8"))
        .default("time", A::String, s("0.0"))
        .build()
}

fn time_attr(ctx: &mut RuleContext) -> Result<u64, AnalysisError> {
    let text = ctx.string("time")?;
    parse_time(&text).ok_or_else(|| AnalysisError::new(format!("attribute 'time': '{text}' is not a time in seconds")))
}

pub fn analyze_cacerts(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let mode_text = ctx.string("mode")?;
    let mode = parse_mode(&mode_text).ok_or_else(|| AnalysisError::new(format!("attribute 'mode': '{mode_text}' is not an octal mode")))?;
    let time = time_attr(ctx)?;
    let package = ctx.single_file("package")?.ok_or_else(|| AnalysisError::new("attribute 'package' is mandatory"))?;
    let out = ctx.declare(&format!("{}.tar.gz", ctx.label().name));
    let code = CaCerts { package: package.exec_path.clone(), mode, time, out: out.exec_path.clone() };
    let action = Action::new("CaCertsTarGz", ctx.label(), ActionKind::Run(Arc::new(code))).inputs([package]).output(out.clone());
    ctx.register(action)?;
    Ok(Providers { files: vec![out], declared: ctx.declared(), ..Default::default() })
}

pub fn analyze_locale(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let charset = ctx.string("charset")?;
    if charset.is_empty() || charset.contains('/') {
        return Err(AnalysisError::new(format!("attribute 'charset': '{charset}' is not a locale name")));
    }
    let time = time_attr(ctx)?;
    let package = ctx.single_file("package")?.ok_or_else(|| AnalysisError::new("attribute 'package' is mandatory"))?;
    let out = ctx.declare(&format!("{}.tar.gz", ctx.label().name));
    let code = Locale { package: package.exec_path.clone(), charset, time, out: out.exec_path.clone() };
    let action = Action::new("Locale", ctx.label(), ActionKind::Run(Arc::new(code))).inputs([package]).output(out.clone());
    ctx.register(action)?;
    Ok(Providers { files: vec![out], declared: ctx.declared(), ..Default::default() })
}

#[derive(Serialize, Deserialize)]
pub struct CaCerts {
    pub package: String,
    pub mode: u32,
    pub time: u64,
    pub out: String,
}

const CERTS_DIR: &str = "usr/share/ca-certificates";
const COPYRIGHT: &str = "usr/share/doc/ca-certificates/copyright";

impl InProcess for CaCerts {
    fn kind(&self) -> &'static str {
        "CaCerts"
    }

    fn params(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let path = ctx.input(&self.package)?.clone();
        let mut archive = tar::Archive::new(open_tar(&path)?);
        let mut certs: Vec<(Vec<String>, Vec<u8>)> = Vec::new();
        let mut copyright = None;
        for entry in archive.entries().with_context(|| format!("reading {}", path.display()))? {
            let mut entry = entry?;
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let name = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
            let mut content = Vec::new();
            if name == COPYRIGHT {
                entry.read_to_end(&mut content)?;
                copyright = Some(content);
            } else if let Some(rel) = name.strip_prefix(CERTS_DIR).and_then(|r| r.strip_prefix('/')) {
                entry.read_to_end(&mut content)?;
                certs.push((rel.split('/').map(str::to_owned).collect(), content));
            }
        }
        let copyright =
            copyright.ok_or_else(|| anyhow!("{}: the package has no /{COPYRIGHT} (is it ca-certificates' data?)", path.display()))?;
        // cacerts.sh walks the directory with `dir/*` globs (byte order, a subdirectory's
        // certificates at its place among the files): component-wise order.
        certs.sort();
        let mut bundle = Vec::new();
        for (_, content) in &certs {
            bundle.extend(bundle_lines(content));
        }
        let mut members = vec![Member::dir("/etc", 0o755, self.time)];
        members.extend(parents("/etc/ssl/certs", 0o755, self.time, &[1]));
        members.push(Member::file("/etc/ssl/certs/ca-certificates.crt", self.mode, self.time, bundle));
        members.extend(parents("/usr/share/doc/ca-certificates", 0o755, self.time, &[]));
        members.push(Member::file("/usr/share/doc/ca-certificates/copyright", self.mode, self.time, copyright));
        write_members(ctx.output(&self.out)?, &members, true)
    }
}

/// A certificate file as `while IFS= read -r IN; do printf "%s\n" "$IN"; done` copies it:
/// each complete line with its newline; a last line without one is dropped, as `read` fails
/// on it.
fn bundle_lines(content: &[u8]) -> Vec<u8> {
    match content.iter().rposition(|b| *b == b'\n') {
        Some(last) => content[..=last].to_vec(),
        None => Vec::new(),
    }
}

#[derive(Serialize, Deserialize)]
pub struct Locale {
    pub package: String,
    pub charset: String,
    pub time: u64,
    pub out: String,
}

impl Locale {
    /// `locale.bzl`'s `--include` patterns: the directories down to `/usr/lib/locale/`, the
    /// charset's subtree (an unanchored pattern, so everything below it), libc-bin's copyright.
    fn includes(&self, name: &str, is_dir: bool) -> bool {
        let n = normalize(name);
        let exact_dirs = ["usr", "usr/lib", "usr/lib/locale", "usr/share", "usr/share/doc", "usr/share/doc/libc-bin"];
        (is_dir && exact_dirs.contains(&n.as_str()))
            || n == "usr/share/doc/libc-bin/copyright"
            || n == format!("usr/lib/locale/{}", self.charset)
            || n.starts_with(&format!("usr/lib/locale/{}", self.charset))
    }
}

impl InProcess for Locale {
    fn kind(&self) -> &'static str {
        "Locale"
    }

    fn params(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let path = ctx.input(&self.package)?.clone();
        let out = ctx.output(&self.out)?.clone();
        let file = std::fs::File::create(&out).with_context(|| format!("creating {}", out.display()))?;
        let mut builder = tar::Builder::new(gzip_writer(std::io::BufWriter::new(file)));
        let mut archive = tar::Archive::new(open_tar(&path)?);
        let mut found = false;
        for entry in archive.entries().with_context(|| format!("reading {}", path.display()))? {
            let mut entry = entry?;
            let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            if !self.includes(&name, entry.header().entry_type().is_dir()) {
                continue;
            }
            found |= normalize(&name).starts_with("usr/lib/locale/");
            // locale.sh rebuilds the members from an mtree without owner names, with `time`.
            copy_entry(&mut builder, &mut entry, |header| {
                header.set_mtime(self.time);
                let _ = header.set_username("");
                let _ = header.set_groupname("");
            })?;
        }
        if !found {
            return Err(anyhow!("{}: no /usr/lib/locale/{} in the package (is it libc-bin's data?)", path.display(), self.charset));
        }
        let gz = builder.into_inner()?;
        std::io::Write::flush(&mut gz.finish()?)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bundle_lines_drop_an_unterminated_last_line() {
        assert_eq!(super::bundle_lines(b"a\nb\n"), b"a\nb\n");
        assert_eq!(super::bundle_lines(b"a\nb"), b"a\n");
        assert_eq!(super::bundle_lines(b"b"), b"");
    }
}
