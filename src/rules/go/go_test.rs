//! rules_go `go_test`: a Go test binary with a generated test main.
use std::collections::BTreeMap;
use std::sync::Arc;

use super::actions::{GoArchiveRef, GoTestBinary};
use crate::analysis::{AnalysisError, Providers, RuleContext, TestRun};
use crate::exec::{Action, ActionKind, Artifact};
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder};

pub fn schema() -> RuleSchema {
    super::go_binary::go_executable(SchemaBuilder::new("go_test").test())
        .attr("rundir", A::String)
        .attr("env_inherit", A::StringList)
        .build()
}

/// `go_test`: one action compiles the package with its internal tests, the external `_test`
/// package, a generated test main, and links the test binary.
pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let goos = ctx.string("goos")?;
    if goos != "auto" {
        return Err(AnalysisError::new("go_test with goos/goarch is not supported: tests run on this machine"));
    }
    // x_defs of embedded libraries are not applied to test binaries (yet).
    let super::go_library::GoSources { srcs, embedsrcs, deps, mut importpath, x_defs: _ } = super::go_library::collect_sources(ctx)?;
    if importpath.is_empty() {
        importpath = format!("{}/{}", ctx.label().package, ctx.label().name).trim_start_matches('/').to_owned();
    }
    let mut all: BTreeMap<String, Artifact> = BTreeMap::new();
    for d in &deps {
        all.extend(d.transitive.iter().map(|(k, v)| (k.clone(), v.clone())));
        all.insert(d.importmap.clone(), d.archive.clone());
    }
    let direct: Vec<String> = deps.iter().map(|d| d.importpath.clone()).collect();
    let (toolchain, std) = super::stdlib(ctx)?;
    let name = ctx.label().name.clone();
    let exe = ctx.declare(&format!("{name}_/{name}"));
    let config = ctx.config().clone();
    let code = GoTestBinary {
        label: ctx.label().to_string(),
        importpath,
        srcs: srcs.iter().map(|s| s.exec_path.clone()).collect(),
        embedsrcs: embedsrcs.iter().map(|s| s.exec_path.clone()).collect(),
        direct_deps: direct,
        archives: all
            .iter()
            .map(|(m, a)| GoArchiveRef { importpath: m.clone(), importmap: m.clone(), archive: a.exec_path.clone() })
            .collect(),
        std_dir: std.dir.exec_path.clone(),
        gc_goopts: ctx.string_list("gc_goopts")?,
        goos: config.goos,
        goarch: config.goarch,
        out: exe.exec_path.clone(),
        gocache: super::actions::go_cache_dir(&ctx.analysis.cache_dir),
        toolchain: toolchain.clone(),
    };
    let action = Action::new("GoTestLink", ctx.label(), ActionKind::Run(Arc::new(code)))
        .inputs(srcs)
        .inputs(embedsrcs)
        .inputs(all.values().cloned())
        .inputs([std.dir.clone()])
        .executable_output(exe.clone());
    ctx.register(action)?;
    let runfiles = ctx.files("data")?;
    // Verbose, so the log lists every test function.
    let mut args = vec!["-test.v".to_owned()];
    args.extend(ctx.string_list("args")?);
    let env = ctx.string_dict("env")?.into_iter().collect();
    Ok(Providers {
        files: vec![exe.clone()],
        executable: Some(exe.clone()),
        runfiles: runfiles.clone(),
        test: Some(TestRun::Exec { executable: exe, args, env, runfiles, runfiles_tree: false }),
        declared: ctx.declared(),
        ..Default::default()
    })
}
