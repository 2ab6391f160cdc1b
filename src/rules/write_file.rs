//! bazel-skylib `write_file` (rule class `_write_file` / `_write_xfile`): writes lines to a file.
use super::{RuleSchema, SchemaBuilder, b, s};
use crate::graph::AttrType::*;

/// `_write_file`, or `_write_xfile` when the macro is asked for an executable.
pub fn schema(kind: &str) -> RuleSchema {
    SchemaBuilder::new(kind)
        .attr("content", StringList)
        .mandatory("out", Output)
        .default("is_executable", Bool, b(false))
        .default("newline", String, s("auto"))
        .build()
}
