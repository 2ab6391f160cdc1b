//! rules_distroless `flatten`: merges tars (plain or compressed) into one, members in the
//! order given. With `deduplicate = True` only the last occurrence of each path is kept
//! (`flatten.sh`: "preserve only the final occurrence of each file and directory", so the
//! later tar wins, as extracting the tars in order would); without it every member is copied
//! and extraction order decides.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::archive::{copy_entry, gzip_writer, normalize, open_tar};
use crate::analysis::{AnalysisError, Providers, RuleContext};
use crate::exec::{Action, ActionContext, ActionKind, InProcess};
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder, b};

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("flatten")
        .mandatory("tars", A::LabelList)
        .default("deduplicate", A::Bool, b(false))
        .attr("compress", A::String)
        .build()
}

/// `flatten`: `<name>.tar`, or `<name>.tar.gz` with `compress = "gzip"`.
pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let tars = ctx.files("tars")?;
    if tars.is_empty() {
        return Err(AnalysisError::new("attribute 'tars': at least one tar is needed"));
    }
    let gzip = match ctx.string("compress")?.as_str() {
        "" => false,
        "gzip" => true,
        other => return Err(AnalysisError::new(format!("attribute 'compress': '{other}' is not supported (use \"gzip\" or none)"))),
    };
    let out = ctx.declare(&format!("{}{}", ctx.label().name, if gzip { ".tar.gz" } else { ".tar" }));
    let code = Flatten {
        tars: tars.iter().map(|t| t.exec_path.clone()).collect(),
        deduplicate: ctx.bool("deduplicate")?,
        gzip,
        out: out.exec_path.clone(),
    };
    let mut action = Action::new("Flatten", ctx.label(), ActionKind::Run(Arc::new(code))).inputs(tars).output(out.clone());
    action.progress = format!("Flattening {}", ctx.label());
    ctx.register(action)?;
    Ok(Providers { files: vec![out], declared: ctx.declared(), ..Default::default() })
}

#[derive(Serialize, Deserialize)]
pub struct Flatten {
    pub tars: Vec<String>,
    pub deduplicate: bool,
    pub gzip: bool,
    pub out: String,
}

impl InProcess for Flatten {
    fn kind(&self) -> &'static str {
        "Flatten"
    }

    fn params(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let inputs: Vec<std::path::PathBuf> = self.tars.iter().map(|t| ctx.input(t).cloned()).collect::<Result<_>>()?;
        // First pass (deduplicate): how often each path occurs, so the second keeps the last.
        let mut count: HashMap<String, usize> = HashMap::new();
        if self.deduplicate {
            for path in &inputs {
                let mut archive = tar::Archive::new(open_tar(path)?);
                for entry in archive.entries().with_context(|| format!("reading {}", path.display()))? {
                    let entry = entry.with_context(|| format!("reading {}", path.display()))?;
                    *count.entry(normalize(&String::from_utf8_lossy(&entry.path_bytes()))).or_default() += 1;
                }
            }
        }
        let out = ctx.output(&self.out)?.clone();
        let file = std::fs::File::create(&out).with_context(|| format!("creating {}", out.display()))?;
        let buffered = std::io::BufWriter::with_capacity(1 << 20, file);
        if self.gzip {
            let gz = self.merge(&inputs, &count, gzip_writer(buffered))?;
            gz.finish()?.flush()?;
        } else {
            self.merge(&inputs, &count, buffered)?.flush()?;
        }
        Ok(())
    }
}

impl Flatten {
    fn merge<W: Write>(&self, inputs: &[std::path::PathBuf], count: &HashMap<String, usize>, out: W) -> Result<W> {
        let mut builder = tar::Builder::new(out);
        let mut seen: HashMap<String, usize> = HashMap::new();
        for path in inputs {
            let mut archive = tar::Archive::new(open_tar(path)?);
            for entry in archive.entries().with_context(|| format!("reading {}", path.display()))? {
                let mut entry = entry.with_context(|| format!("reading {}", path.display()))?;
                if self.deduplicate {
                    let name = normalize(&String::from_utf8_lossy(&entry.path_bytes()));
                    let n = seen.entry(name.clone()).or_default();
                    *n += 1;
                    if count.get(&name) != Some(n) {
                        continue;
                    }
                }
                copy_entry(&mut builder, &mut entry, |_| {}).with_context(|| format!("copying a member of {}", path.display()))?;
            }
        }
        Ok(builder.into_inner()?)
    }
}
