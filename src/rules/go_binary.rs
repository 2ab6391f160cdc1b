//! rules_go `go_binary`: a linked Go executable at `<pkg>/<name>_/<name>`.
use super::{RuleSchema, SchemaBuilder, s};
use crate::graph::AttrType::*;

/// Attributes go_binary and go_test share.
pub(super) fn go_executable(b: SchemaBuilder) -> SchemaBuilder {
    b.attr("srcs", LabelList)
        .attr("deps", LabelList)
        .attr("embed", LabelList)
        .attr("embedsrcs", LabelList)
        .attr("data", LabelList)
        .attr("env", StringDict)
        .attr("importpath", String)
        .attr("x_defs", StringDict)
        .attr("gc_goopts", StringList)
        .attr("gc_linkopts", StringList)
        .attr("cgo", Bool)
        .attr("cdeps", LabelList)
        .attr("copts", StringList)
        .attr("cppopts", StringList)
        .attr("cxxopts", StringList)
        .attr("clinkopts", StringList)
        .attr("gotags", StringList)
        .default("goos", String, s("auto"))
        .default("goarch", String, s("auto"))
        .default("pure", String, s("auto"))
        .default("static", String, s("auto"))
        .default("race", String, s("auto"))
        .default("msan", String, s("auto"))
        .default("linkmode", String, s("auto"))
        .attr("pgoprofile", Label)
}

/// `kind` is `go_binary`, or `go_non_executable_binary` for the link modes that make a
/// library (the rules_go macro picks it from `linkmode`).
pub fn schema(kind: &str) -> RuleSchema {
    let b = SchemaBuilder::new(kind);
    let b = if kind == "go_binary" { b.executable() } else { b };
    go_executable(b).attr("basename", String).attr("out", String).build()
}
