//! Fuzzes target-pattern parsing (`//pkg/...`, `:all`, `-//x:y`, relative forms) and the
//! path resolution that follows it: never a panic, and a pattern naming one target names a
//! valid label (its text parses back to it).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "stack_overflow.rs"]
mod stack_overflow;
use ocib::graph::label::{Label, PackageId};
use ocib::graph::pattern::{SignedPattern, TargetPattern};

fuzz_target!(|data: &str| {
    stack_overflow::report_stack_overflows();
    let identity = |r: &str| Some(r.to_owned());
    for cwd in [PackageId::main(""), PackageId::main("a/b"), PackageId::new("r", "p")] {
        if let Ok(p) = SignedPattern::parse(data, &cwd, &identity) {
            match &p.pattern {
                TargetPattern::Path { repo, path } => {
                    // Some prefixes are packages (those of even length), as in a deep workspace.
                    let _ = TargetPattern::resolve_path(repo, path, &|pkg: &PackageId| pkg.package.len() % 2 == 0);
                }
                TargetPattern::Target(label) => {
                    let printed = label.to_string();
                    let reparsed = Label::parse_absolute(&printed)
                        .unwrap_or_else(|e| panic!("pattern {data:?} names {label:?}, whose text {printed:?} does not parse: {e}"));
                    assert_eq!(&reparsed, label, "pattern {data:?} -> {printed:?} does not round-trip");
                }
                _ => {}
            }
        }
    }
});
