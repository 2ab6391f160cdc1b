//! `ocib fetch [PATTERNS] [--all]`: fetches the external repositories ahead of a build (for
//! CI images and offline work), as Bazel's `fetch`: the Go modules the patterns' targets
//! reach (their packages are loaded, which fetches, verifies and lays out each module once),
//! or with `--all` every Go module repository the workspace declares.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use rayon::prelude::*;

use super::{CliError, CliResult, CommonArgs};
use crate::load::Loader;
use crate::query::eval::QueryEngine;
use crate::workspace::RepoSource;

#[derive(clap::Args, Debug)]
pub struct FetchArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The cache modules are stored in (as `build --disk_cache`).
    #[arg(long = "disk_cache")]
    pub disk_cache: Option<PathBuf>,
    /// Fetch every repository the workspace declares, not only those the patterns reach
    /// (Bazel 7's `fetch --all`).
    #[arg(long = "all", num_args = 0..=1, require_equals = true, default_missing_value = "true", action = clap::ArgAction::Set, value_parser = super::parse_bool, default_value = "false")]
    pub all: bool,
    /// Target patterns whose dependencies to fetch.
    pub patterns: Vec<String>,
}

pub fn run(args: FetchArgs, cwd: &Path) -> CliResult {
    if args.patterns.is_empty() && !args.all {
        return Err(CliError::bad_command_line(anyhow!("fetch needs target patterns or --all")));
    }
    let ws = super::open_workspace(cwd)?;
    if args.all {
        let names: Vec<String> = ws.repos.iter().filter(|r| matches!(r.source, RepoSource::GoModule(_))).map(|r| r.name.clone()).collect();
        let failures: Vec<anyhow::Error> = names
            .par_iter()
            .filter_map(|name| ws.go_modules.materialize(name).err().map(|e| e.context(format!("fetching @{name}"))))
            .collect();
        if let Some(first) = failures.into_iter().next() {
            return Err(CliError::build_failed(first));
        }
    }
    if !args.patterns.is_empty() {
        let kinds = &crate::rules::registry().kinds;
        // The load cache keeps only packages on disk (the main repository, local
        // repositories): every fetched repository's packages are still evaluated, so each is
        // fetched.
        let loader = Loader::new(ws.clone(), kinds).with_load_cache(kinds);
        let engine = QueryEngine::new(&loader, ws.package_of_dir(cwd), args.common.keep_going);
        let expression = format!("deps({})", args.patterns.join(" + "));
        let expr = crate::query::parse::parse(&expression).map_err(CliError::bad_command_line)?;
        engine.eval(&expr).map_err(|e| CliError::build_failed(anyhow!(e.message)))?;
        loader.save_load_cache();
    }
    eprintln!("INFO: All external dependencies fetched successfully.");
    Ok(())
}
