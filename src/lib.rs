//! ocib: builds, tests and publishes container images from Bazel BUILD files.
//!
//! The pipeline is Bazel's: workspace → load → analysis → execution → commands. The binary
//! (`src/main.rs`) is a thin wrapper around [`cli::run`]; the library exists so integration
//! tests, fuzz targets and benchmarks reach the same code the command line runs.

pub mod analysis;
pub mod cli;
pub mod exec;
pub mod graph;
pub mod load;
pub mod oci;
pub mod query;
pub mod rules;
pub mod stamp;
pub mod workspace;
