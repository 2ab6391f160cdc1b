//! `ocib query EXPR`.

use std::io::Write;
use std::path::Path;

use anyhow::anyhow;

use super::{CliError, CliResult, CommonArgs};
use crate::load::Loader;
use crate::query::QueryError;
use crate::query::eval::{QueryEngine, reads_only_the_target_graph};
use crate::query::output::{OrderOutput, OutputFormat, RenderOptions, render};

#[derive(clap::Args, Debug)]
pub struct QueryArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Output format.
    #[arg(long = "output", value_enum, default_value = "label")]
    pub output: OutputFormat,
    /// Order of the results: auto (`deps` for graph, else `full`), deps, full (a target
    /// before its dependencies, ties by label) or no (label order).
    #[arg(long = "order_output", value_enum, default_value = "auto")]
    pub order_output: OrderOutput,
    /// Bazel's `--order_results` (`--order_output=auto`); `--noorder_results` is `--order_output=no`.
    #[arg(long = "order_results", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, value_parser = super::parse_bool)]
    pub order_results: Option<bool>,
    /// With `--output=graph`, draw targets with the same predecessors and successors as one node.
    #[arg(long = "graph:factored", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, value_parser = super::parse_bool, default_value = "true")]
    pub graph_factored: bool,
    /// Accepted for compatibility; ocib reports no implicit dependencies.
    #[arg(long = "implicit_deps", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, value_parser = super::parse_bool, default_value = "true")]
    pub implicit_deps: bool,
    /// The query expression (several words are joined with spaces).
    #[arg(required = true)]
    pub expression: Vec<String>,
}

/// Whether query answers are kept (`OCIB_QUERY_ANSWERS=0` turns them off, to exercise the
/// package cache alone).
fn answers_enabled() -> bool {
    std::env::var_os("OCIB_QUERY_ANSWERS").is_none_or(|v| v != "0")
}

pub fn run(args: QueryArgs, cwd: &Path) -> CliResult {
    let expr = super::parse_expression(&args.expression)?;
    let ws = super::open_workspace(cwd)?;
    // Never dropped: the process ends after the query, and freeing every package one by one
    // cost about a fifth of a large query.
    let kinds = &crate::rules::registry().kinds;
    // A query that reads only the target graph (labels, kinds, dependencies) and prints no
    // attribute or location needs no more of the packages it takes from the load cache.
    let graph_only = matches!(args.output, OutputFormat::Label | OutputFormat::LabelKind | OutputFormat::Package | OutputFormat::Graph)
        && reads_only_the_target_graph(&expr);
    let loader = std::mem::ManuallyDrop::new(Loader::new(ws.clone(), kinds).with_load_cache(kinds).with_graph_only_packages(graph_only));
    let cwd_package = ws.package_of_dir(cwd);
    // Everything that shapes the output: the expression, every flag, and the package the
    // relative labels resolve against (the cache-wide key covers the workspace settings).
    let answer_key = format!("{args:?}\n{cwd_package:?}");
    if answers_enabled()
        && let Some(out) = loader.cached_answer(&answer_key)
    {
        crate::load::cache::note(|| "0 packages evaluated, 0 from the cache".to_owned());
        let mut stdout = std::io::stdout().lock();
        return stdout.write_all(&out).and_then(|()| stdout.flush()).map_err(|e| CliError::from(anyhow!("writing the query output: {e}")));
    }
    let engine = QueryEngine::new(&loader, cwd_package, args.common.keep_going);
    let order = match args.order_results {
        Some(false) => OrderOutput::No,
        _ => args.order_output,
    };
    let options = RenderOptions { format: args.output, order, graph_factored: args.graph_factored };
    let result = engine.eval(&expr).and_then(|set| render(&engine, &set, options).map(|out| (set, out)));
    loader.save_load_cache();
    match result {
        Ok((set, out)) => {
            print!("{out}");
            let errors = engine.errors.into_inner().unwrap_or_default();
            // Only a clean answer is kept: one with warnings, errors or "Empty results" on
            // stderr is evaluated again each time, so stderr and the exit code stay as Bazel's.
            if answers_enabled() && errors.is_empty() && !set.is_empty() {
                loader.store_answer(&answer_key, out.as_bytes());
            }
            for e in &errors {
                super::error::report(&anyhow!(e.clone()));
            }
            if set.is_empty() {
                eprintln!("INFO: Empty results");
            }
            if errors.is_empty() {
                Ok(())
            } else {
                eprintln!("WARNING: --keep_going specified, ignoring errors. Results may be inaccurate");
                Err(CliError::code(super::exit::PARTIAL))
            }
        }
        Err(QueryError { message, syntax }) => {
            let e = anyhow!(message).context(format!(
                "Evaluation of query \"{}\" failed",
                args.expression.iter().map(|w| w.trim_start()).collect::<Vec<_>>().join(" ")
            ));
            Err(if syntax { CliError::bad_command_line(e) } else { CliError::analysis_or_query_failed(e) })
        }
    }
}
