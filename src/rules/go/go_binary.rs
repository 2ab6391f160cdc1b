//! rules_go `go_binary`: a linked Go executable at `<pkg>/<name>_/<name>`.
use std::collections::BTreeMap;
use std::sync::Arc;

use super::actions::{GoArchiveRef, GoLink};
use crate::analysis::{AnalysisError, Providers, RuleContext};
use crate::exec::{Action, ActionKind, Artifact};
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder, s};

/// Attributes go_binary and go_test share.
pub(super) fn go_executable(b: SchemaBuilder) -> SchemaBuilder {
    b.attr("srcs", A::LabelList)
        .attr("deps", A::LabelList)
        .attr("embed", A::LabelList)
        .attr("embedsrcs", A::LabelList)
        .attr("data", A::LabelList)
        .attr("env", A::StringDict)
        .attr("importpath", A::String)
        .attr("x_defs", A::StringDict)
        .attr("gc_goopts", A::StringList)
        .attr("gc_linkopts", A::StringList)
        .attr("cgo", A::Bool)
        .attr("cdeps", A::LabelList)
        .attr("copts", A::StringList)
        .attr("cppopts", A::StringList)
        .attr("cxxopts", A::StringList)
        .attr("clinkopts", A::StringList)
        .attr("gotags", A::StringList)
        .default("goos", A::String, s("auto"))
        .default("goarch", A::String, s("auto"))
        .default("pure", A::String, s("auto"))
        .default("static", A::String, s("auto"))
        .default("race", A::String, s("auto"))
        .default("msan", A::String, s("auto"))
        .default("linkmode", A::String, s("auto"))
        .attr("pgoprofile", A::Label)
}

/// `kind` is `go_binary`, or `go_non_executable_binary` for the link modes that make a
/// library (the rules_go macro picks it from `linkmode`).
pub fn schema(kind: &str) -> RuleSchema {
    let b = SchemaBuilder::new(kind);
    let b = if kind == "go_binary" { b.executable() } else { b };
    go_executable(b).attr("basename", A::String).attr("out", A::String).build()
}

/// A go_binary: compiles the main package, links it with every transitive archive, and puts
/// the executable at `<pkg>/<name>_/<name>` (or `out`). `goos`/`goarch` other than "auto"
/// build it, and its dependencies, for that platform.
pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let goos = ctx.string("goos")?;
    let goarch = ctx.string("goarch")?;
    if (goos == "auto") != (goarch == "auto") {
        return Err(AnalysisError::new("goos and goarch must be set together"));
    }
    let saved = ctx.analysis.config.clone();
    if goos != "auto" {
        ctx.analysis.config.goos = goos;
        ctx.analysis.config.goarch = goarch;
    }
    let result = link_binary(ctx);
    ctx.analysis.config = saved;
    result
}

pub(super) fn link_binary(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    if ctx.string("pure")? == "off" {
        return Err(AnalysisError::new("pure = \"off\" needs cgo, which ocib does not support"));
    }
    let main = super::go_library::compile_package(ctx, super::go_library::GoPackageKind::Main)?;
    let (toolchain, std) = super::stdlib(ctx)?;
    let name = ctx.label().name.clone();
    let out_attr = ctx.string("out")?;
    let basename = Some(ctx.string("basename")?).filter(|b| !b.is_empty()).unwrap_or_else(|| name.clone());
    let exe = if out_attr.is_empty() { ctx.declare(&format!("{name}_/{basename}")) } else { ctx.declare(&out_attr) };
    let mut deps: BTreeMap<String, Artifact> = main.transitive.clone();
    for d in &main.deps {
        deps.insert(d.importmap.clone(), d.archive.clone());
    }
    let stamp = ctx.config().stamp && main.x_defs.values().any(|v| crate::stamp::has_placeholder(v));
    let config = ctx.config().clone();
    let code = GoLink {
        label: ctx.label().to_string(),
        main_archive: main.archive.exec_path.clone(),
        main_importmap: main.importmap.clone(),
        deps: deps
            .iter()
            .map(|(m, a)| GoArchiveRef { importpath: m.clone(), importmap: m.clone(), archive: a.exec_path.clone() })
            .collect(),
        std_dir: std.dir.exec_path.clone(),
        x_defs: main.x_defs.clone(),
        stamp: ctx.config().stamp,
        gc_linkopts: ctx.string_list("gc_linkopts")?,
        goos: config.goos,
        goarch: config.goarch,
        out: exe.exec_path.clone(),
        gocache: super::actions::go_cache_dir(&ctx.analysis.cache_dir),
        toolchain: toolchain.clone(),
    };
    let mut action = Action::new("GoLink", ctx.label(), ActionKind::Run(Arc::new(code)))
        .inputs([main.archive.clone()])
        .inputs(deps.values().cloned())
        .inputs([std.dir.clone()])
        .executable_output(exe.clone());
    action.stamped = stamp;
    ctx.register(action)?;
    let runfiles = ctx.files("data")?;
    let executable = (ctx.rule.kind == "go_binary").then(|| exe.clone());
    // rules_go's go_binary provides its main package's GoInfo/GoArchive too.
    Ok(Providers { files: vec![exe], executable, runfiles, go: Some(main), declared: ctx.declared(), ..Default::default() })
}
