//! rules_go `go_test`: a Go test binary with a generated test main.
use super::{RuleSchema, SchemaBuilder};
use crate::graph::AttrType::*;

pub fn schema() -> RuleSchema {
    super::go_binary::go_executable(SchemaBuilder::new("go_test").test())
        .attr("rundir", String)
        .attr("env_inherit", StringList)
        .build()
}
