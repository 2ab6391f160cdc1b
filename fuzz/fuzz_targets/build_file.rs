//! Fuzzes BUILD-file evaluation: the input is written as the root package's `BUILD.bazel` of
//! a temporary workspace (the part after a `\n#---defs.bzl---\n` line, if any, as `defs.bzl`,
//! which the BUILD file may `load("//:defs.bzl", ...)`), and the package is loaded as
//! `ocib query` would. Loading never runs a process; any text gives a package or a located
//! error, never a panic, hang or unbounded memory.
#![no_main]

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;

#[path = "stack_overflow.rs"]
mod stack_overflow;
use ocib::graph::label::PackageId;
use ocib::load::Loader;

const SEPARATOR: &[u8] = b"\n#---defs.bzl---\n";

/// One workspace directory for the whole run; each input overwrites its two files.
fn workspace() -> &'static PathBuf {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("MODULE.bazel"), "").expect("write MODULE.bazel");
        std::fs::create_dir(dir.path().join("sub")).expect("mkdir");
        std::fs::write(dir.path().join("sub/file.txt"), "x").expect("write sub/file.txt");
        let path = dir.path().to_path_buf();
        (dir, path)
    })
    .1
}

fuzz_target!(|data: &[u8]| {
    stack_overflow::report_stack_overflows();
    let ws_dir = workspace();
    let (build, defs) = match data.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
        Some(i) => (&data[..i], &data[i + SEPARATOR.len()..]),
        None => (data, &b""[..]),
    };
    std::fs::write(ws_dir.join("BUILD.bazel"), build).expect("write BUILD.bazel");
    std::fs::write(ws_dir.join("defs.bzl"), defs).expect("write defs.bzl");
    let kinds = &ocib::rules::registry().kinds;
    let Ok(ws) = ocib::load::external::open_workspace(ws_dir, kinds) else { return };
    let loader = Loader::new(Arc::new(ws), kinds);
    let _ = loader.package(&PackageId::main(""));
});
