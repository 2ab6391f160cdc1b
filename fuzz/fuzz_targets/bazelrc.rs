//! Fuzzes `.bazelrc` reading (continuations, quoting, `import`/`try-import`, `%workspace%`,
//! `command:config` sections) and `--config` expansion: any file gives options or an error,
//! never a panic, hang or unbounded memory.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;

#[path = "stack_overflow.rs"]
mod stack_overflow;
use ocib::cli::rc::{RcFiles, RcOptions};

/// One workspace directory for the whole run; each input overwrites its `.bazelrc`.
fn workspace() -> &'static PathBuf {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_path_buf();
        (dir, path)
    })
    .1
}

fuzz_target!(|data: &[u8]| {
    stack_overflow::report_stack_overflows();
    let ws = workspace();
    std::fs::write(ws.join(".bazelrc"), data).expect("write .bazelrc");
    let opts = RcOptions { workspace_rc: true, ..RcOptions::default() };
    let Ok(rc) = RcFiles::read(Some(ws), &opts) else { return };
    for command in ["build", "query", "test"] {
        let mut args = rc.options_for(command);
        // Expand every config the file defines, as `--config=NAME` on the command line would.
        args.extend(rc.lines.iter().filter_map(|l| l.config.clone()).take(8).map(|c| (format!("--config={c}"), "command line".to_owned())));
        let _ = rc.expand_configs(command, args);
    }
});
