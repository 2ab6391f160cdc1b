//! Fuzzes container-structure-test config decoding, as YAML and as JSON: any text gives a
//! config or an error, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;

#[path = "stack_overflow.rs"]
mod stack_overflow;
use ocib::rules::cst::runner::config::parse_config_str;

fuzz_target!(|data: &str| {
    stack_overflow::report_stack_overflows();
    let _ = parse_config_str(Path::new("fuzz.yaml"), data, false);
    let _ = parse_config_str(Path::new("fuzz.json"), data, true);
});
