//! Copying a file and expanding a template.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::exec::{ActionContext, InProcess};
use crate::stamp::{self, WorkspaceStatus};

/// `copy_file`: the input's bytes at the output path.
#[derive(Serialize, Deserialize)]
pub struct CopyFile {
    pub src: String,
    pub out: String,
}

impl InProcess for CopyFile {
    fn kind(&self) -> &'static str {
        "CopyFile"
    }

    fn scratch_free(&self) -> bool {
        true
    }

    fn params(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let src = ctx.input(&self.src)?;
        std::fs::copy(src, ctx.output(&self.out)?).with_context(|| format!("copying {}", self.src))?;
        Ok(())
    }
}

/// bazel-lib's `expand_template`: each substitution replaces every occurrence, in order;
/// with stamping, `{{KEY}}` in `stamp_substitutions` values comes from the workspace status
/// and those substitutions override the plain ones.
#[derive(Serialize, Deserialize)]
pub struct ExpandTemplate {
    pub template: String,
    pub out: String,
    pub substitutions: Vec<(String, String)>,
    /// Set only when stamping.
    pub stamp_substitutions: Vec<(String, String)>,
}

impl InProcess for ExpandTemplate {
    fn kind(&self) -> &'static str {
        "ExpandTemplate"
    }

    fn scratch_free(&self) -> bool {
        true
    }

    fn params(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let text = std::fs::read_to_string(ctx.input(&self.template)?).with_context(|| format!("reading {}", self.template))?;
        let status = WorkspaceStatus {
            stable: ctx.stable_status.clone().unwrap_or_default(),
            volatile: ctx.volatile_status.clone().unwrap_or_default(),
        };
        let mut subs: BTreeMap<String, String> = BTreeMap::new();
        let mut order = Vec::new();
        for (k, v) in &self.substitutions {
            if subs.insert(k.clone(), v.clone()).is_none() {
                order.push(k.clone());
            }
        }
        for (k, v) in &self.stamp_substitutions {
            if subs.insert(k.clone(), stamp::substitute_double_braces(v, &status)).is_none() {
                order.push(k.clone());
            }
        }
        let mut out = text;
        for k in order {
            if let Some(v) = subs.get(&k) {
                out = out.replace(&k, v);
            }
        }
        std::fs::write(ctx.output(&self.out)?, out)?;
        Ok(())
    }
}
