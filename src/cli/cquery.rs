//! `ocib cquery EXPR`: the query evaluated, the expression's own patterns configured
//! (analysed) in the top-level configuration, and each target of the result shown once per
//! configuration the analysis reached it in (`//p:t (abc1234)`, `(null)` for source files);
//! `--output=files` prints each configured target's default outputs as paths relative to the
//! workspace root (a transitioned one's under `ocib-out/<configuration>/bin`).

use std::path::Path;
use std::sync::Arc;

use super::build::{BuildOptions, cache_dir, config, display_path, wanted_files};
use super::{CliError, CliResult};
use crate::analysis::{Analysis, ConfiguredTarget};
use crate::exec::ArtifactKind;
use crate::graph::label::Label;
use crate::load::Loader;
use crate::query::eval::QueryEngine;
use crate::query::parse::{Arg, Expr};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum CqueryOutput {
    Label,
    LabelKind,
    Files,
}

#[derive(clap::Args, Debug)]
pub struct CqueryArgs {
    #[command(flatten)]
    pub opts: BuildOptions,
    #[arg(long = "output", value_enum, default_value = "label")]
    pub output: CqueryOutput,
    /// The query expression.
    #[arg(required = true)]
    pub expression: Vec<String>,
}

pub fn run(args: CqueryArgs, cwd: &Path) -> CliResult {
    let expr = super::parse_expression(&args.expression)?;
    let ws = super::open_workspace(cwd)?;
    let kinds = &crate::rules::registry().kinds;
    // Packages from the load cache, as `query` and `build` take them (`ocib-out/load-cache`).
    let loader = Loader::new(ws.clone(), kinds).with_load_cache(kinds);
    let engine = QueryEngine::new(&loader, ws.package_of_dir(cwd), args.opts.common.keep_going);
    let query_failed = |e: crate::query::QueryError| {
        let syntax = e.syntax;
        let e = anyhow::anyhow!(e.message);
        if syntax { CliError::bad_command_line(e) } else { CliError::analysis_or_query_failed(e) }
    };
    let labels = engine.eval(&expr).map_err(query_failed)?;
    // Bazel's default universe: the targets the expression's patterns name, configured in
    // the top-level configuration; everything else in the result is shown in the
    // configurations the universe reaches it in (through transitions too).
    let mut universe = std::collections::BTreeSet::new();
    for pattern in patterns_of(&expr) {
        // A word that is not a pattern (a function's plain argument) names no target.
        universe.extend(engine.pattern(&pattern).unwrap_or_default());
    }
    let config = config(&args.opts);
    let stamp = config.stamp;
    let mut analysis = Analysis::new(&loader, &crate::rules::registry().analyzers, config, cache_dir(&args.opts));
    for label in labels.iter().filter(|l| universe.contains(*l)) {
        // As `build` (and Bazel 4.2.3's cquery, which exits 1 here): the failing rule's
        // error, then the line that ends the command.
        analysis.analyze(label).map_err(|e| CliError::build_failed(super::error::analysis_failed(label, e)))?;
    }
    loader.save_load_cache();
    let mut by_label: std::collections::HashMap<Label, Vec<Arc<ConfiguredTarget>>> = std::collections::HashMap::new();
    for target in analysis.configured_targets() {
        by_label.entry(target.label.clone()).or_default().push(target);
    }
    let mut out = String::new();
    for label in &labels {
        let Some(targets) = by_label.get(label) else {
            // Not in the configured graph (a select() branch not taken, an attribute
            // analysis does not follow): cquery does not show it.
            continue;
        };
        for target in targets {
            // Bazel prints a configuration id; ours hashes the configuration's name
            // (platform, compilation mode, build settings: `Config::name`) and stamping.
            let id = match &target.config {
                None => "null".to_owned(),
                Some(name) => crate::exec::digest::sha256_hex(format!("{name} stamp={stamp}").as_bytes())[..7].to_owned(),
            };
            match args.output {
                CqueryOutput::Label => out.push_str(&format!("{label} ({id})\n")),
                CqueryOutput::LabelKind => out.push_str(&format!("{} {label} ({id})\n", target.kind)),
                CqueryOutput::Files => {
                    for f in wanted_files(target, &args.opts.output_groups) {
                        let shown = match &f.kind {
                            ArtifactKind::Derived => f.exec_path.clone(),
                            ArtifactKind::Source(_) => display_path(&f, &ws.root),
                        };
                        out.push_str(&shown);
                        out.push('\n');
                    }
                }
            }
        }
    }
    print!("{out}");
    Ok(())
}

/// The target patterns an expression names (its words that are patterns, not function
/// names or keyword arguments such as `kind`'s first).
fn patterns_of(expr: &Expr) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![expr];
    while let Some(e) = stack.pop() {
        match e {
            Expr::Pattern(p) => out.push(p.clone()),
            Expr::Set(words) => out.extend(words.iter().cloned()),
            Expr::Var(_) => {}
            Expr::Let { value, body, .. } => stack.extend([value.as_ref(), body.as_ref()]),
            Expr::Binary { left, right, .. } => stack.extend([left.as_ref(), right.as_ref()]),
            Expr::Call { args, .. } => stack.extend(args.iter().filter_map(|a| match a {
                Arg::Expr(e) => Some(e),
                _ => None,
            })),
        }
    }
    out
}
