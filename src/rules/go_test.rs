//! rules_go `go_test`: a Go test binary with a generated test main.
use super::{RuleSchema, SchemaBuilder};
use crate::graph::AttrType as A;

pub fn schema() -> RuleSchema {
    super::go_binary::go_executable(SchemaBuilder::new("go_test").test())
        .attr("rundir", A::String)
        .attr("env_inherit", A::StringList)
        .build()
}
