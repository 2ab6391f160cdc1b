//! ocib: builds, tests and publishes container images from Bazel BUILD files.
//!
//! The pipeline is Bazel's: workspace → load → analysis → execution → commands.

mod actions;
mod analysis;
mod cli;
mod cst;
mod exec;
mod graph;
mod label;
mod load;
mod oci;
mod pattern;
mod query;
mod rules;
mod stamp;
mod workspace;

fn main() {
    let code = cli::run(std::env::args_os().skip(1).collect());
    std::process::exit(code);
}
