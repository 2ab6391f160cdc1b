//! rules_go: `go_library`, `go_binary`, `go_test`, `go_cross_binary`, and the code they share:
//! the toolchain, the compile/link/testmain actions (`actions`) and Go's build constraints
//! (`go_source`), and gazelle's BUILD file generation for Go module repositories (`gazelle`).

pub mod actions;
pub mod asm;
pub mod gazelle;
pub mod go_binary;
pub mod go_cross_binary;
pub mod go_library;
pub mod go_source;
pub mod go_test;

use super::Kind;

/// rules_go's kinds.
pub const KINDS: &[Kind] = &[
    Kind { schema: || go_binary::schema("go_binary"), analyze: go_binary::analyze },
    Kind { schema: || go_binary::schema("go_non_executable_binary"), analyze: go_binary::analyze },
    Kind { schema: go_cross_binary::schema, analyze: go_cross_binary::analyze },
    Kind { schema: go_library::schema, analyze: go_library::analyze },
    Kind { schema: go_test::schema, analyze: go_test::analyze },
];

use std::sync::Arc;

use crate::analysis::{AnalysisError, RuleContext};
use crate::exec::{Action, ActionKind, Artifact, ArtifactKind};
use crate::graph::label::Label;
use actions::{GoStdlib, LazyGoToolchain};

/// The standard library's archives for one platform: one directory output (so actions depend
/// on one input, not hundreds), listed by the actions that use it when they run.
#[derive(Debug)]
pub struct GoStdlibInfo {
    pub dir: Artifact,
}

/// The Go toolchain of this build (looked up only when an action runs) and the standard
/// library's archives for the current configuration (one action per platform, registered on
/// first use).
pub fn stdlib(ctx: &mut RuleContext) -> Result<(LazyGoToolchain, Arc<GoStdlibInfo>), AnalysisError> {
    let analysis = &mut *ctx.analysis;
    let cache_dir = analysis.cache_dir.clone();
    let toolchain = analysis.shared("go_toolchain", |_| Ok(Arc::new(LazyGoToolchain::new(cache_dir.clone()))))?;
    let key = analysis.config_name();
    let info = analysis.shared(&format!("go_stdlib_{key}"), |analysis| {
        let dir = Artifact { exec_path: format!("{}/_go_stdlib", analysis.bin_dir()), kind: ArtifactKind::Derived };
        let code = GoStdlib {
            goos: analysis.config.goos.clone(),
            goarch: analysis.config.goarch.clone(),
            toolchain: (*toolchain).clone(),
            dir: dir.exec_path.clone(),
            gocache: actions::go_cache_dir(&cache_dir),
        };
        let owner = Label { repo: "io_bazel_rules_go".into(), package: String::new(), name: format!("stdlib_{key}") };
        let mut action = Action::new("GoStdlib", &owner, ActionKind::Run(Arc::new(code))).tree_output(dir.clone());
        // The longest action of a cold build (half a minute): say what it does, as rules_go's
        // "Building Go stdlib" progress message does.
        action.progress =
            format!("GoStdlib {owner}: compiling the Go standard library for {}/{}", analysis.config.goos, analysis.config.goarch);
        analysis.register(&owner, action)?;
        Ok(Arc::new(GoStdlibInfo { dir }))
    })?;
    Ok(((*toolchain).clone(), info))
}
