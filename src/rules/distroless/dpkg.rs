//! rules_distroless's `@rules_distroless//apt:defs.bzl`: `dpkg_statusd` (one package's
//! `/var/lib/dpkg/status.d/<pkg>` and `<pkg>.md5sums`, as distroless images carry them so
//! scanners such as trivy and grype find the packages) and `dpkg_status` (the single
//! `/var/lib/dpkg/status` database of the packages' control files).

use std::io::Read;
use std::sync::Arc;

use anyhow::{Result, anyhow, bail};
use serde::{Deserialize, Serialize};

use super::archive::{Member, normalize, open_tar, write_members};
use crate::analysis::{AnalysisError, Providers, RuleContext};
use crate::exec::{Action, ActionContext, ActionKind, InProcess};
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder};

pub fn statusd_schema() -> RuleSchema {
    SchemaBuilder::new("dpkg_statusd")
        .mandatory("package_name", A::String)
        .mandatory("control", A::Label)
        .attr("compression", A::String)
        .build()
}

pub fn status_schema() -> RuleSchema {
    SchemaBuilder::new("dpkg_status").mandatory("controls", A::LabelList).build()
}

/// `dpkg_statusd`: `<name>.tar` (`.tar.gz` with `compression = "gzip"`).
pub fn analyze_statusd(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let package = ctx.string("package_name")?;
    if package.is_empty() || package.contains('/') {
        return Err(AnalysisError::new(format!("attribute 'package_name': '{package}' is not a package name")));
    }
    let gzip = match ctx.string("compression")?.as_str() {
        "" => false,
        "gzip" => true,
        other => return Err(AnalysisError::new(format!("attribute 'compression': '{other}' is not supported (use \"gzip\" or none)"))),
    };
    let control = ctx.single_file("control")?.ok_or_else(|| AnalysisError::new("attribute 'control' is mandatory"))?;
    let out = ctx.declare(&format!("{}{}", ctx.label().name, if gzip { ".tar.gz" } else { ".tar" }));
    let code = StatusD { package, control: control.exec_path.clone(), out: out.exec_path.clone(), gzip };
    let action = Action::new("DpkgStatusD", ctx.label(), ActionKind::Run(Arc::new(code))).inputs([control]).output(out.clone());
    ctx.register(action)?;
    Ok(Providers { files: vec![out], declared: ctx.declared(), ..Default::default() })
}

/// `dpkg_status`: `<name>.tar` holding `/var/lib/dpkg/status`.
pub fn analyze_status(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let controls = ctx.files("controls")?;
    let out = ctx.declare(&format!("{}.tar", ctx.label().name));
    let code = Status { controls: controls.iter().map(|c| c.exec_path.clone()).collect(), out: out.exec_path.clone() };
    let action = Action::new("DpkgStatus", ctx.label(), ActionKind::Run(Arc::new(code))).inputs(controls).output(out.clone());
    ctx.register(action)?;
    Ok(Providers { files: vec![out], declared: ctx.declared(), ..Default::default() })
}

/// A member of a control archive: its content, mode and mtime.
struct ControlFile {
    content: Vec<u8>,
    mode: u32,
    mtime: u64,
}

/// `./control` and `./md5sums` (if present) of a control archive.
fn control_files(path: &std::path::Path) -> Result<(Option<ControlFile>, Option<ControlFile>)> {
    let mut archive = tar::Archive::new(open_tar(path)?);
    let (mut control, mut md5sums) = (None, None);
    for entry in archive.entries()? {
        let mut entry = entry?;
        let name = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
        let slot = match name.as_str() {
            "control" => &mut control,
            "md5sums" => &mut md5sums,
            _ => continue,
        };
        let mode = entry.header().mode()?;
        let mtime = entry.header().mtime()?;
        let mut content = Vec::new();
        entry.read_to_end(&mut content)?;
        *slot = Some(ControlFile { content, mode, mtime });
    }
    Ok((control, md5sums))
}

#[derive(Serialize, Deserialize)]
pub struct StatusD {
    pub package: String,
    pub control: String,
    pub out: String,
    pub gzip: bool,
}

impl InProcess for StatusD {
    fn kind(&self) -> &'static str {
        "StatusD"
    }

    fn params(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// `dpkg_statusd.sh`: the control archive's `control` and `md5sums` renamed to
    /// `./var/lib/dpkg/status.d/<pkg>` and `<pkg>.md5sums`, keeping their modes and times.
    fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let control_path = ctx.input(&self.control)?.clone();
        let (control, md5sums) = control_files(&control_path)?;
        let control = control.ok_or_else(|| anyhow!("{}: no ./control file in the control archive", control_path.display()))?;
        let mut members =
            vec![Member::file(&format!("./var/lib/dpkg/status.d/{}", self.package), control.mode, control.mtime, control.content)];
        if let Some(m) = md5sums {
            members.push(Member::file(&format!("./var/lib/dpkg/status.d/{}.md5sums", self.package), m.mode, m.mtime, m.content));
        }
        write_members(ctx.output(&self.out)?, &members, self.gzip)
    }
}

/// The time `dpkg_status.sh` gives `/var/lib/dpkg/status` (2023-01-01).
const STATUS_TIME: u64 = 1672560000;

#[derive(Serialize, Deserialize)]
pub struct Status {
    pub controls: Vec<String>,
    pub out: String,
}

impl InProcess for Status {
    fn kind(&self) -> &'static str {
        "Status"
    }

    fn params(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// `dpkg_status.sh`: each control file with `Status: install ok installed` after its first
    /// line and a blank line after it, in the order given.
    fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let mut db = String::new();
        for c in &self.controls {
            let path = ctx.input(c)?.clone();
            let (control, _) = control_files(&path)?;
            let Some(control) = control else { bail!("{}: no ./control file in the control archive", path.display()) };
            db.push_str(&status_entry(&String::from_utf8_lossy(&control.content)));
        }
        write_members(ctx.output(&self.out)?, &[Member::file("./var/lib/dpkg/status", 0o644, STATUS_TIME, db.into_bytes())], false)
    }
}

/// One package's paragraph of `/var/lib/dpkg/status`.
fn status_entry(control: &str) -> String {
    let mut out = String::new();
    for (i, line) in control.lines().enumerate() {
        out.push_str(line);
        out.push('\n');
        if i == 0 {
            out.push_str("Status: install ok installed\n");
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn status_entry_follows_dpkg_status_sh() {
        assert_eq!(super::status_entry("Package: tini\nVersion: 1\n"), "Package: tini\nStatus: install ok installed\nVersion: 1\n\n");
    }
}
