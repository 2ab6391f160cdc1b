//! Fuzzes the label parser: never panics, and a parsed label prints as text that parses back
//! to the same label (what `query --output=label` output fed back into ocib relies on).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "stack_overflow.rs"]
mod stack_overflow;
use ocib::graph::label::{Label, PackageId};

fuzz_target!(|data: &str| {
    stack_overflow::report_stack_overflows();
    let identity = |r: &str| Some(r.to_owned());
    for base in [PackageId::main(""), PackageId::main("a/b"), PackageId::new("r", "p")] {
        let Ok(label) = Label::parse(data, &base, &identity) else { continue };
        let printed = label.to_string();
        // Canonical names print with one `@`; parse them as canonical so the map is not consulted.
        let reparsed = Label::parse_absolute(&printed)
            .unwrap_or_else(|e| panic!("{data:?} parsed to {label:?}, whose text {printed:?} does not parse: {e}"));
        assert_eq!(reparsed, label, "{data:?} -> {printed:?} does not round-trip");
    }
    let _ = Label::parse_absolute(data);
});
