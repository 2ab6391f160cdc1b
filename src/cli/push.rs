//! `ocib push PATTERNS`: the CI step that stamps and pushes every `oci_push` target of the
//! patterns, in parallel, with one summary (`repository@digest tags`), and a non-zero exit if
//! any push failed.

use std::path::Path;

use rayon::prelude::*;

use super::build::{BuildOptions, build, prepare};
use anyhow::anyhow;

use super::{CliError, CliResult};
use crate::analysis::RunAction;

#[derive(clap::Args, Debug)]
pub struct PushArgs {
    #[command(flatten)]
    pub opts: BuildOptions,
    /// Extra tag for every image.
    #[arg(long = "tag", short = 't')]
    pub tag: Vec<String>,
    /// Target patterns; only `oci_push` targets are pushed.
    pub patterns: Vec<String>,
}

pub fn run(mut args: PushArgs, cwd: &Path) -> CliResult {
    args.opts.download_what_runs();
    if args.patterns.is_empty() {
        super::build::warn_no_targets("push");
        return Ok(());
    }
    let mut prepared = prepare(cwd, &args.patterns, args.opts.common.keep_going, false)?;
    prepared.labels.retain(|l| {
        prepared
            .loader
            .package(&l.package_id())
            .ok()
            .is_some_and(|p| matches!(p.target(&l.name), Some(crate::graph::TargetRef::Rule(r)) if r.kind == "oci_push"))
    });
    if prepared.labels.is_empty() {
        return Err(CliError::bad_command_line(anyhow!("no oci_push targets in {}", args.patterns.join(" "))));
    }
    let targets = build(&args.opts, &prepared)?;
    if !args.opts.build {
        return Ok(());
    }
    let root = prepared.ws.root.clone();
    let extra: Vec<String> = args.tag.iter().flat_map(|t| ["--tag".to_owned(), t.clone()]).collect();
    // Pushing waits on the network, not the CPU: more pushes (and their blob uploads) at
    // once than there are cores.
    let pool = rayon::ThreadPoolBuilder::new().num_threads(16).build().map_err(|e| anyhow!("cannot start push threads: {e}"))?;
    let results: Vec<(String, anyhow::Result<String>)> = pool.install(|| {
        targets
            .par_iter()
            .filter_map(|t| match &t.providers.run {
                Some(push @ RunAction::Push { .. }) => {
                    Some((t.label.to_string(), crate::rules::oci::oci_push::push_target(push, &root, &extra)))
                }
                _ => None,
            })
            .collect()
    });
    let total = results.len();
    let mut failed = 0;
    for (label, result) in results {
        match result {
            Ok(summary) => println!("{label}: {summary}"),
            Err(e) => {
                failed += 1;
                // One line per failed push; the count below ends the command.
                super::error::report(&e.context(format!("{label}: push failed")));
            }
        }
    }
    eprintln!("INFO: pushed {} of {total} images", total - failed);
    if failed == 0 { Ok(()) } else { Err(CliError::code(super::exit::BUILD_FAILED)) }
}
