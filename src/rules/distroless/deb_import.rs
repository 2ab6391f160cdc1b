//! The targets of one locked package's repository (`@<name>_<key>`), what rules_distroless's
//! `deb_import` (an `http_archive` of the .deb plus `deb_postfix`) gives: `deb_archive` fetches
//! the .deb (verified against the lock's sha256, cached by that checksum), `deb_data` is its
//! `data.tar.*` as a gzip layer (`layer.tar.gz`, as `deb_postfix` writes it), `deb_control`
//! its `control.tar.*` as a plain tar.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result, anyhow};
use serde::{Deserialize, Serialize};

use super::archive::{copy_entry_as, deb_member, gzip_writer, merged_usr};
use crate::analysis::{AnalysisError, Providers, RuleContext};
use crate::exec::{Action, ActionContext, ActionKind, InProcess};
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder, b};

pub fn archive_schema() -> RuleSchema {
    SchemaBuilder::new("deb_archive")
        .mandatory("package_name", A::String)
        .mandatory("version", A::String)
        .mandatory("arch", A::String)
        .mandatory("urls", A::StringList)
        .mandatory("sha256", A::String)
        .build()
}

pub fn data_schema() -> RuleSchema {
    SchemaBuilder::new("deb_data").mandatory("deb", A::Label).default("mergedusr", A::Bool, b(false)).build()
}

pub fn control_schema() -> RuleSchema {
    SchemaBuilder::new("deb_control").mandatory("deb", A::Label).build()
}

/// `deb_archive`: one action fetching the .deb into `<name>.deb`.
pub fn analyze_archive(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let sha256 = ctx.string("sha256")?.to_ascii_lowercase();
    if sha256.len() != 64 || !sha256.bytes().all(|c| c.is_ascii_hexdigit()) {
        return Err(AnalysisError::new(format!("attribute 'sha256': '{sha256}' is not a hex sha256")));
    }
    let urls = ctx.string_list("urls")?;
    if urls.is_empty() {
        return Err(AnalysisError::new("attribute 'urls': at least one URL is needed"));
    }
    let out = ctx.declare(&format!("{}.deb", ctx.label().name));
    let code = FetchDeb {
        sha256,
        out: out.exec_path.clone(),
        package: ctx.string("package_name")?,
        version: ctx.string("version")?,
        arch: ctx.string("arch")?,
        urls,
    };
    let mut action = Action::new("DebFetch", ctx.label(), ActionKind::Run(Arc::new(code))).output(out.clone());
    action.progress = format!("Fetching {} {}", ctx.string("package_name")?, ctx.string("version")?);
    ctx.register(action)?;
    Ok(Providers { files: vec![out], declared: ctx.declared(), ..Default::default() })
}

/// `deb_data` (`:data`): the package's data as `layer.tar.gz`.
pub fn analyze_data(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let mergedusr = ctx.bool("mergedusr")?;
    extract(ctx, "data", "layer.tar.gz", "DebData", mergedusr)
}

/// `deb_control` (`:control`): the package's control archive as `control.tar`.
pub fn analyze_control(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    extract(ctx, "control", "control.tar", "DebControl", false)
}

fn extract(
    ctx: &mut RuleContext,
    member: &'static str,
    out_name: &str,
    mnemonic: &'static str,
    mergedusr: bool,
) -> Result<Providers, AnalysisError> {
    let deb = ctx.single_file("deb")?.ok_or_else(|| AnalysisError::new("attribute 'deb' is mandatory"))?;
    let out = ctx.declare(out_name);
    let code = ExtractMember {
        deb: deb.exec_path.clone(),
        member: member.to_owned(),
        out: out.exec_path.clone(),
        gzip: out_name.ends_with(".gz"),
        mergedusr,
    };
    let action = Action::new(mnemonic, ctx.label(), ActionKind::Run(Arc::new(code))).inputs([deb]).output(out.clone());
    ctx.register(action)?;
    Ok(Providers { files: vec![out], declared: ctx.declared(), ..Default::default() })
}

/// Downloads a .deb, trying each URL in turn, through the registry client's verified download
/// (retries, streaming sha256, atomic rename).
#[derive(Serialize, Deserialize)]
pub struct FetchDeb {
    pub sha256: String,
    pub out: String,
    /// Not part of the key (see `params`): they only name the package in messages, or say
    /// where the bytes the checksum fixes can be had.
    #[serde(skip)]
    pub package: String,
    #[serde(skip)]
    pub version: String,
    #[serde(skip)]
    pub arch: String,
    #[serde(skip)]
    pub urls: Vec<String>,
}

impl InProcess for FetchDeb {
    fn kind(&self) -> &'static str {
        "FetchDeb"
    }

    fn remotable(&self) -> bool {
        false
    }

    /// The checksum fixes the output, so the key is the checksum (and where it goes), not the
    /// URLs: a package moved to another mirror is still a cache hit, as in Bazel's repository
    /// cache, and a build is offline once the package has been fetched.
    fn params(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let dest = ctx.output(&self.out)?.clone();
        let client = crate::oci::registry::Client::new(&[])?;
        let what = format!("package {} {} ({})", self.package, self.version, self.arch);
        let mut failures = Vec::new();
        for url in &self.urls {
            match client.download_verified(url, &self.sha256, &dest) {
                Ok(()) => return Ok(()),
                Err(e) => {
                    if let Some(m) = e.downcast_ref::<crate::oci::registry::download::ChecksumMismatch>() {
                        return Err(anyhow!(
                            "{what}: {url}: checksum mismatch: the lock expects sha256 {}, the server sent sha256 {}",
                            m.expected,
                            m.actual
                        ));
                    }
                    failures.push(format!("{url}: {e:#}"));
                }
            }
        }
        Err(anyhow!("{what}: could not fetch it from any URL:\n  {}", failures.join("\n  ")))
    }
}

/// Writes one member of a .deb, decompressed (and gzip-compressed again for a layer).
#[derive(Serialize, Deserialize)]
pub struct ExtractMember {
    pub deb: String,
    pub member: String,
    pub out: String,
    pub gzip: bool,
    /// Move `/bin`, `/sbin`, `/lib*` under `/usr` ([`merged_usr`]).
    pub mergedusr: bool,
}

impl InProcess for ExtractMember {
    fn kind(&self) -> &'static str {
        "ExtractMember"
    }

    fn params(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let deb = ctx.input(&self.deb)?.clone();
        let out = ctx.output(&self.out)?.clone();
        let mut reader = deb_member(&deb, &self.member)?;
        let file = std::fs::File::create(&out).with_context(|| format!("creating {}", out.display()))?;
        let buffered = std::io::BufWriter::with_capacity(1 << 20, file);
        let what = || format!("{}: the {} archive", deb.display(), self.member);
        if self.mergedusr {
            let mut builder = tar::Builder::new(gzip_writer(buffered));
            let mut archive = tar::Archive::new(reader);
            for entry in archive.entries().with_context(what)? {
                let mut entry = entry.with_context(what)?;
                let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
                let Some(moved) = merged_usr(&name, entry.header().entry_type().is_dir()) else { continue };
                let link = entry.link_name_bytes().map(|l| String::from_utf8_lossy(&l).into_owned());
                let hard = entry.header().entry_type().is_hard_link();
                copy_entry_as(&mut builder, &mut entry, &moved, link.filter(|_| hard).and_then(|l| merged_usr(&l, false)))?;
            }
            builder.into_inner()?.finish()?.flush()?;
        } else if self.gzip {
            let mut gz = gzip_writer(buffered);
            std::io::copy(&mut reader, &mut gz).with_context(what)?;
            gz.finish()?.flush()?;
        } else {
            let mut w = buffered;
            std::io::copy(&mut reader, &mut w).with_context(what)?;
            w.flush()?;
        }
        Ok(())
    }
}
