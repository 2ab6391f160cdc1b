//! rules_go `go_library`: a Go package compiled to an archive.
use super::{RuleSchema, SchemaBuilder, s};
use crate::graph::AttrType::*;

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("go_library")
        .attr("srcs", LabelList)
        .attr("deps", LabelList)
        .attr("embed", LabelList)
        .attr("embedsrcs", LabelList)
        .attr("data", LabelList)
        .attr("importpath", String)
        .attr("importmap", String)
        .attr("importpath_aliases", StringList)
        .attr("x_defs", StringDict)
        .attr("gc_goopts", StringList)
        .attr("cgo", Bool)
        .attr("cdeps", LabelList)
        .attr("copts", StringList)
        .attr("cppopts", StringList)
        .attr("cxxopts", StringList)
        .attr("clinkopts", StringList)
        .default("pgoprofile", Label, crate::graph::AttrValue::None)
        .default("linkmode", String, s("normal"))
        .build()
}
