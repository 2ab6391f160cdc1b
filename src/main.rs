//! ocib: builds, tests and publishes container images from Bazel BUILD files.
//!
//! A thin wrapper: everything lives in the library (`src/lib.rs`).

fn main() {
    let code = ocib::cli::run(std::env::args_os().skip(1).collect());
    std::process::exit(code);
}
