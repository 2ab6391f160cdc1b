//! rules_go `go_library`: a Go package compiled to an archive.
use std::collections::BTreeMap;
use std::sync::Arc;

use super::actions::{GoArchiveRef, GoCompile};
use crate::analysis::{AnalysisError, GoInfo, Providers, RuleContext};
use crate::exec::{Action, ActionKind, Artifact};
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder, s};

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("go_library")
        .attr("srcs", A::LabelList)
        .attr("deps", A::LabelList)
        .attr("embed", A::LabelList)
        .attr("embedsrcs", A::LabelList)
        .attr("data", A::LabelList)
        .attr("importpath", A::String)
        .attr("importmap", A::String)
        .attr("importpath_aliases", A::StringList)
        .attr("x_defs", A::StringDict)
        .attr("gc_goopts", A::StringList)
        .attr("cgo", A::Bool)
        .attr("cdeps", A::LabelList)
        .attr("copts", A::StringList)
        .attr("cppopts", A::StringList)
        .attr("cxxopts", A::StringList)
        .attr("clinkopts", A::StringList)
        .default("pgoprofile", A::Label, crate::graph::AttrValue::None)
        .default("linkmode", A::String, s("normal"))
        .build()
}

/// Whether a package is being compiled as a library or as a binary's main package.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum GoPackageKind {
    Library,
    Main,
}

/// Compiles one Go package (a go_library, or a binary's main package with its `embed`ded
/// libraries' sources) and returns what dependents and the linker need.
/// A Go rule's own sources and dependencies with those of the libraries it `embed`s merged
/// in (as rules_go does); the importpath falls back to the first embedded library's.
pub(super) struct GoSources {
    pub srcs: Vec<Artifact>,
    pub embedsrcs: Vec<Artifact>,
    pub deps: Vec<Arc<GoInfo>>,
    pub importpath: String,
    pub x_defs: BTreeMap<String, String>,
}

pub(super) fn collect_sources(ctx: &mut RuleContext) -> Result<GoSources, AnalysisError> {
    let mut srcs = ctx.files("srcs")?;
    let mut embedsrcs = ctx.files("embedsrcs")?;
    let mut deps: Vec<Arc<GoInfo>> = Vec::new();
    let mut importpath = ctx.string("importpath")?;
    let mut x_defs: BTreeMap<String, String> = BTreeMap::new();
    for target in ctx.deps("embed")? {
        let info = target
            .providers
            .go
            .clone()
            .ok_or_else(|| AnalysisError::new(format!("attribute 'embed': '{}' is not a Go library", target.label)))?;
        srcs.extend(info.srcs.iter().cloned());
        embedsrcs.extend(info.embedsrcs.iter().cloned());
        deps.extend(info.deps.iter().cloned());
        if importpath.is_empty() {
            importpath = info.importpath.clone();
        }
        x_defs.extend(info.x_defs.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    for target in ctx.deps("deps")? {
        let info = target
            .providers
            .go
            .clone()
            .ok_or_else(|| AnalysisError::new(format!("attribute 'deps': '{}' is not a Go library", target.label)))?;
        deps.push(info);
    }
    Ok(GoSources { srcs, embedsrcs, deps, importpath, x_defs })
}

pub(super) fn compile_package(ctx: &mut RuleContext, kind: GoPackageKind) -> Result<Arc<GoInfo>, AnalysisError> {
    let GoSources { srcs, embedsrcs, mut deps, mut importpath, x_defs } = collect_sources(ctx)?;
    let mut seen = std::collections::HashSet::new();
    deps.retain(|d| seen.insert(d.importmap.clone()));
    if importpath.is_empty() {
        if kind == GoPackageKind::Library {
            return Err(AnalysisError::new("go_library needs 'importpath' (or an 'embed' that has one)"));
        }
        importpath = format!("{}/{}", ctx.label().package, ctx.label().name).trim_start_matches('/').to_owned();
    }
    let importmap = match ctx.rule.schema.attr("importmap") {
        Some(_) => Some(ctx.string("importmap")?).filter(|s| !s.is_empty()).unwrap_or_else(|| importpath.clone()),
        None => importpath.clone(),
    };
    if ctx.bool("cgo")? {
        return Err(AnalysisError::new("cgo = True is not supported: ocib builds pure Go (CGO_ENABLED=0)"));
    }
    // Transitive x_defs: dependencies first, this package last (it overrides).
    let mut transitive_x: BTreeMap<String, String> = BTreeMap::new();
    for d in &deps {
        transitive_x.extend(d.x_defs.iter().map(|(k, v)| (k.clone(), v.clone())));
    }
    transitive_x.extend(x_defs);
    for (k, v) in ctx.string_dict("x_defs")? {
        // A key without a package names a variable of this package.
        let key = if k.contains('.') { k } else { format!("{importmap}.{k}") };
        transitive_x.insert(key, v);
    }
    let mut transitive: BTreeMap<String, Artifact> = BTreeMap::new();
    for d in &deps {
        transitive.extend(d.transitive.iter().map(|(k, v)| (k.clone(), v.clone())));
        transitive.insert(d.importmap.clone(), d.archive.clone());
    }

    let (toolchain, std) = super::stdlib(ctx)?;
    let name = ctx.label().name.clone();
    let archive = match kind {
        GoPackageKind::Library => ctx.declare(&format!("{name}.a")),
        GoPackageKind::Main => ctx.declare(&format!("{name}_/{name}.a")),
    };
    let config = ctx.config().clone();
    let gc_goopts = ctx.string_list("gc_goopts")?;
    let code = GoCompile {
        label: ctx.label().to_string(),
        package_path: if kind == GoPackageKind::Main { "main".to_owned() } else { importmap.clone() },
        srcs: srcs.iter().map(|s| s.exec_path.clone()).collect(),
        embedsrcs: embedsrcs.iter().map(|s| s.exec_path.clone()).collect(),
        deps: deps
            .iter()
            .map(|d| GoArchiveRef {
                importpath: d.importpath.clone(),
                importmap: d.importmap.clone(),
                archive: d.archive.exec_path.clone(),
            })
            .collect(),
        std_dir: std.dir.exec_path.clone(),
        gc_goopts: gc_goopts.clone(),
        goos: config.goos.clone(),
        goarch: config.goarch.clone(),
        out: archive.exec_path.clone(),
        gocache: super::actions::go_cache_dir(&ctx.analysis.cache_dir),
        toolchain: toolchain.clone(),
    };
    let action = Action::new("GoCompilePkg", ctx.label(), ActionKind::Run(Arc::new(code)))
        .inputs(srcs.iter().cloned())
        .inputs(embedsrcs.iter().cloned())
        .inputs(deps.iter().map(|d| d.archive.clone()))
        .inputs([std.dir.clone()])
        .output(archive.clone());
    ctx.register(action)?;
    Ok(Arc::new(GoInfo { importpath, importmap, archive, srcs, embedsrcs, deps, transitive, x_defs: transitive_x }))
}

/// A go_library: its package archive, and what dependents need to compile and link with it.
pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let info = compile_package(ctx, GoPackageKind::Library)?;
    let runfiles = ctx.files("data")?;
    Ok(Providers { files: vec![info.archive.clone()], runfiles, go: Some(info), declared: ctx.declared(), ..Default::default() })
}
