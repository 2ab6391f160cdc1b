//! `config_setting`: a condition `select()` keys on.
use crate::analysis::{AnalysisError, Providers, RuleContext};
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder};

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("config_setting")
        .manual_by_default()
        .native()
        .attr("values", A::StringDict)
        .attr("define_values", A::StringDict)
        .attr("flag_values", A::LabelKeyedStringDict)
        .attr("constraint_values", A::LabelList)
        .build()
}

/// Whether the configuration matches every condition given.
pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let mut matches = true;
    for (key, want) in ctx.string_dict("values")? {
        let config = ctx.config().clone();
        let have = match key.as_str() {
            "stamp" => Some(if config.stamp { "1" } else { "0" }.to_owned()),
            "compilation_mode" => Some(config.compilation_mode.clone()),
            "cpu" => Some(match config.goarch.as_str() {
                "amd64" => "k8".to_owned(),
                "arm64" => "aarch64".to_owned(),
                other => other.to_owned(),
            }),
            "define" => {
                let (k, v) = want.split_once('=').unwrap_or((want.as_str(), ""));
                Some(if config.define(k) == Some(v) { want.clone() } else { String::new() })
            }
            _ => None,
        };
        let normalized = |s: &str| match s {
            "true" => "1".to_owned(),
            "false" => "0".to_owned(),
            other => other.to_owned(),
        };
        if have.map(|h| normalized(&h)) != Some(normalized(&want)) {
            matches = false;
        }
    }
    for (k, v) in ctx.string_dict("define_values")? {
        if ctx.config().define(&k) != Some(v.as_str()) {
            matches = false;
        }
    }
    for constraint in ctx.labels("constraint_values")? {
        let target = ctx.dep(&constraint)?;
        if target.providers.condition != Some(true) {
            matches = false;
        }
    }
    // Build settings: their value in this configuration (command line, transition, or
    // default); booleans compare as Bazel's (`true`, `True` and `1` alike).
    for (setting, want) in ctx.label_keyed_dict("flag_values")? {
        let have = ctx.analysis.build_setting_value(&setting)?;
        let normalized = |s: &str| match s {
            "true" | "True" | "1" => "True".to_owned(),
            "false" | "False" | "0" => "False".to_owned(),
            other => other.to_owned(),
        };
        if normalized(&have) != normalized(&want) {
            matches = false;
        }
    }
    Ok(Providers { condition: Some(matches), ..Default::default() })
}
