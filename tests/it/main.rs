//! ocib's integration tests, one crate so the suite links once (as `just` lays out its tests).
//! Each module runs the built `ocib` binary on workspaces under `testdata/`; run one file's tests
//! with `cargo test --test it <module>::`.

mod common;

mod apko;
mod architecture;
mod base_tarball_escape;
mod bazel_oracle;
mod build_answer;
mod build_example;
mod build_go;
mod build_rules;
mod cache_gc;
mod cache_robustness;
mod cli_parity;
mod cst_oracle;
mod distroless;
mod dropin;
mod engines;
mod error_path;
mod go_modules;
mod images;
mod kill_recovery;
mod load_cache;
mod malformed_input;
mod pkg_tar;
mod profile;
mod progress;
mod query_monorepo;
mod query_starlark;
mod registry;
mod remote_cache;
mod remote_exec;
mod starlark_configs;
mod starlark_images;
mod starlark_rules;
mod structure_tests;
mod test_command;
mod visibility;
