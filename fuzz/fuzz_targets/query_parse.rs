//! Fuzzes the query-language parser (`deps(//x) except kind(rule, //y/...)`, `let`, sets):
//! any text gives an expression or a syntax error, never a panic, hang or stack overflow.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "stack_overflow.rs"]
mod stack_overflow;

fuzz_target!(|data: &str| {
    stack_overflow::report_stack_overflows();
    let _ = ocib::query::parse::parse(data);
});
