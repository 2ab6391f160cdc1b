//! aspect_bazel_lib `yq` (rule class `_yq_rule`), run in process: mikefarah yq v4's expression
//! language as far as base-image macros use it (paths, `|`, `,`, `*`/`*+` merges, `+`,
//! `del`, `select`, `with_entries`, `as $x ireduce`, interpolation, assignments), YAML and
//! JSON in, YAML (yq's layout) or JSON out.
//!
//! aspect_bazel_lib runs `yq <args> eval-all '<expression>' <srcs> > out` (its rule passes the
//! stamp file as a second input, so it always picks `eval-all`), with `--null-input` when there
//! are no srcs.

pub mod emit;
pub mod eval;
pub mod parse;

use std::sync::Arc;

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::analysis::{AnalysisError, Providers, RuleContext};
use crate::exec::{Action, ActionContext, ActionKind, InProcess};
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder};
use eval::Node;

/// `_yq_rule`: the private rule aspect_bazel_lib's `yq` macro calls.
pub fn schema() -> RuleSchema {
    SchemaBuilder::new("_yq_rule")
        .attr("srcs", A::LabelList)
        .attr("expression", A::String)
        .attr("args", A::StringList)
        .mandatory("outs", A::OutputList)
        .attr("stamp", A::Int)
        .build()
}

/// Declares the in-process yq action; the expression and flags are checked here so a mistake
/// fails analysis and names the target.
pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let srcs = ctx.files("srcs")?;
    let outs = ctx.outputs_of("outs")?;
    let args = ctx.string_list("args")?;
    let expression = ctx.string("expression")?;
    let options = Options::parse(&args).map_err(|e| AnalysisError::new(format!("attribute 'args': {e}")))?;
    parse::parse(if expression.is_empty() { "." } else { &expression })
        .map_err(|e| AnalysisError::new(format!("attribute 'expression': {e}")))?;
    let [out] = outs.as_slice() else {
        return Err(AnalysisError::new(format!("attribute 'outs': ocib's yq writes one output, got {}", outs.len())));
    };
    let code = Yq { srcs: srcs.iter().map(|s| s.exec_path.clone()).collect(), expression, options, out: out.exec_path.clone() };
    ctx.register(Action::new("Yq", ctx.label(), ActionKind::Run(Arc::new(code))).inputs(srcs).output(out.clone()))?;
    Ok(Providers { files: outs, declared: ctx.declared(), ..Default::default() })
}

/// yq's command-line flags that change the result.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Options {
    pub json: bool,
    pub indent: usize,
    pub null_input: bool,
    /// `-r`: print strings without quotes (yq's default for YAML output).
    pub unwrap: Option<bool>,
    /// `-e`: fail when the last result is null or false.
    pub exit_status: bool,
}

impl Options {
    /// Parses the flags aspect_bazel_lib passes through (`-o=json`, `-P`, `-I=4`, `-n`, ...).
    pub fn parse(args: &[String]) -> Result<Options> {
        let mut o = Options { json: false, indent: 2, null_input: false, unwrap: None, exit_status: false };
        let mut it = args.iter().peekable();
        while let Some(arg) = it.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((f, v)) if f.starts_with('-') => (f, Some(v.to_owned())),
                _ => (arg.as_str(), None),
            };
            let mut value = |name: &str| -> Result<String> {
                match &inline {
                    Some(v) => Ok(v.clone()),
                    None => it.next().cloned().ok_or_else(|| anyhow!("flag '{name}' needs a value")),
                }
            };
            match flag {
                "-o" | "--output-format" | "--outputformat" => {
                    o.json = match value(flag)?.as_str() {
                        "json" | "j" => true,
                        "yaml" | "y" => false,
                        other => bail!("output format '{other}' is not supported by ocib's yq (yaml and json are)"),
                    }
                }
                "-oj" | "-oy" => o.json = flag == "-oj",
                "-j" | "--tojson" => o.json = true,
                "-p" | "--input-format" | "--inputformat" => match value(flag)?.as_str() {
                    "yaml" | "y" | "json" | "j" | "auto" | "a" => {}
                    other => bail!("input format '{other}' is not supported by ocib's yq (yaml and json are)"),
                },
                "-py" | "-pj" => {}
                "-I" | "--indent" => o.indent = value(flag)?.parse().map_err(|_| anyhow!("flag '{flag}' needs a number"))?,
                f if f.starts_with("-I") && f[2..].chars().all(|c| c.is_ascii_digit()) && f.len() > 2 => {
                    o.indent = f[2..].parse().map_err(|_| anyhow!("bad indent '{f}'"))?
                }
                "-n" | "--null-input" => o.null_input = true,
                "-r" | "--unwrapScalar" => o.unwrap = Some(inline.as_deref() != Some("false")),
                "-e" | "--exit-status" => o.exit_status = true,
                "-P" | "--prettyPrint" | "-M" | "--no-colors" | "-C" | "--colors" | "-N" | "--no-doc" | "eval" | "e" | "eval-all"
                | "ea" => {}
                f if f.starts_with("-s") || f.starts_with("--split-exp") => {
                    bail!("'{f}' (splitting into several files) is not supported by ocib's yq")
                }
                other => bail!("yq flag '{other}' is not supported by ocib"),
            }
        }
        Ok(o)
    }
}

/// The yq action: reads every document of every src, evaluates, writes `out`.
#[derive(Serialize, Deserialize)]
pub struct Yq {
    pub srcs: Vec<String>,
    pub expression: String,
    pub options: Options,
    pub out: String,
}

/// Reads the documents of a YAML (or JSON) text in order.
pub fn read_documents(text: &str) -> Result<Vec<Value>> {
    let mut docs = Vec::new();
    for doc in serde_yaml_ng::Deserializer::from_str(text) {
        docs.push(Value::deserialize(doc)?);
    }
    Ok(docs)
}

/// Evaluates `expression` over `inputs` (one entry per file: its documents) as `yq eval-all`
/// does, and prints the results.
pub fn run_yq(expression: &str, inputs: &[Vec<Value>], options: &Options) -> Result<String> {
    let expr = parse::parse(if expression.trim().is_empty() { "." } else { expression })?;
    let mut context = Vec::new();
    if options.null_input || inputs.is_empty() {
        context.push(Node { value: Value::Null, file: 0, doc: 0 });
    } else {
        for (file, docs) in inputs.iter().enumerate() {
            for (doc, value) in docs.iter().enumerate() {
                context.push(Node { value: value.clone(), file, doc });
            }
        }
    }
    let results = eval::eval(&expr, &context).map_err(|e| anyhow!("{e} (in expression '{expression}')"))?;
    if options.exit_status && results.last().is_none_or(|n| matches!(n.value, Value::Null | Value::Bool(false))) {
        bail!("no matches found (-e: the last result was null or false)");
    }
    let mut out = String::new();
    let mut previous: Option<(usize, usize)> = None;
    for n in &results {
        if options.json {
            match (&n.value, options.unwrap.unwrap_or(false)) {
                (Value::String(s), true) => {
                    out.push_str(s);
                    out.push('\n');
                }
                (v, _) => out.push_str(&emit::json(v, options.indent)?),
            }
            continue;
        }
        // yq prints a separator when the result comes from another document.
        if previous.is_some_and(|p| p != (n.file, n.doc)) {
            out.push_str("---\n");
        }
        previous = Some((n.file, n.doc));
        match (&n.value, options.unwrap.unwrap_or(true)) {
            (Value::String(s), true) => {
                out.push_str(s);
                out.push('\n');
            }
            (v, _) => out.push_str(&emit::yaml(v, options.indent)),
        }
    }
    Ok(out)
}

impl InProcess for Yq {
    fn kind(&self) -> &'static str {
        "Yq"
    }

    fn params(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let mut inputs = Vec::new();
        for src in &self.srcs {
            let text = std::fs::read_to_string(ctx.input(src)?).with_context(|| format!("reading {src}"))?;
            inputs.push(read_documents(&text).with_context(|| format!("parsing {src}"))?);
        }
        let text = run_yq(&self.expression, &inputs, &self.options)?;
        std::fs::write(ctx.output(&self.out)?, text)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
