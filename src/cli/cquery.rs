//! `ocib cquery EXPR`: the query evaluated, then each target configured (analyzed);
//! `--output=files` prints their default outputs as paths relative to the workspace root.

use std::path::Path;

use super::build::{BuildOptions, cache_dir, config, display_path, wanted_files};
use super::{CliError, CliResult};
use crate::analysis::Analysis;
use crate::exec::ArtifactKind;
use crate::load::Loader;
use crate::query::eval::QueryEngine;

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
    let loader = Loader::new(ws.clone(), &crate::rules::registry().kinds);
    let engine = QueryEngine::new(&loader, ws.package_of_dir(cwd), args.opts.common.keep_going);
    let labels = engine.eval(&expr).map_err(|e| {
        let syntax = e.syntax;
        let e = anyhow::anyhow!(e.message);
        if syntax { CliError::bad_command_line(e) } else { CliError::analysis_or_query_failed(e) }
    })?;
    let config = config(&args.opts);
    // Bazel prints a configuration id; ours hashes the configuration's name (platform,
    // compilation mode, build settings: `Config::name`) and stamping.
    let config_id = crate::exec::digest::sha256_hex(format!("{} stamp={}", config.name(), config.stamp).as_bytes())[..7].to_owned();
    let mut analysis = Analysis::new(&loader, &crate::rules::registry().analyzers, config, cache_dir(&args.opts));
    let mut out = String::new();
    for label in &labels {
        let target = analysis.analyze(label).map_err(CliError::analysis_or_query_failed)?;
        let is_source = target.kind == "source file";
        let id = if is_source { "null".to_owned() } else { config_id.clone() };
        match args.output {
            CqueryOutput::Label => out.push_str(&format!("{label} ({id})\n")),
            CqueryOutput::LabelKind => out.push_str(&format!("{} {label} ({id})\n", target.kind)),
            CqueryOutput::Files => {
                for f in wanted_files(&target, &args.opts.output_groups) {
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
    print!("{out}");
    Ok(())
}
