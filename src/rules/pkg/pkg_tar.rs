//! rules_pkg `pkg_tar` (rule class `pkg_tar_impl`): a tar archive, usually an image layer.
use std::sync::Arc;

use super::paths as pkg_paths;
use super::tar_writer::{Compression, EntryKind, TarEntry, TarManifest};
use crate::analysis::{AnalysisError, PkgEntry, Providers, RuleContext};
use crate::exec::{Action, ActionKind};
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder, b, i, s};

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("pkg_tar_impl")
        .attr("srcs", A::LabelList)
        .attr("deps", A::LabelList)
        .default("package_dir", A::String, s(""))
        .attr("package_dir_file", A::Label)
        .default("strip_prefix", A::String, s(""))
        .attr("files", A::LabelKeyedStringDict)
        .default("mode", A::String, s("0555"))
        .attr("modes", A::StringDict)
        .default("owner", A::String, s("0.0"))
        .default("ownername", A::String, s("."))
        .attr("owners", A::StringDict)
        .attr("ownernames", A::StringDict)
        .default("mtime", A::Int, i(-1))
        .default("portable_mtime", A::Bool, b(true))
        .default("extension", A::String, s("tar"))
        .attr("symlinks", A::StringDict)
        .attr("empty_files", A::StringList)
        .attr("empty_dirs", A::StringList)
        .attr("remap_paths", A::StringDict)
        .attr("include_runfiles", A::Bool)
        .default("create_parents", A::Bool, b(true))
        .attr("allow_duplicates_from_deps", A::Bool)
        .default("allow_duplicates_with_different_content", A::Bool, b(true))
        .attr("preserve_mode", A::Bool)
        .attr("preserve_mtime", A::Bool)
        .default("stamp", A::Int, i(0))
        .attr("compressor", A::Label)
        .attr("compressor_args", A::String)
        .default("compression_level", A::Int, i(-1))
        .attr("package_file_name", A::String)
        .attr("package_variables", A::Label)
        .mandatory("out", A::Output)
        .attr("private_stamp_detect", A::Bool)
        .build()
}

/// rules_pkg's default mtime with `portable_mtime` (2000-01-01T00:00:00Z).
const PORTABLE_MTIME: u64 = 946684800;

/// Builds the tar's manifest exactly as rules_pkg would (paths, modes, owners, mtimes), and
/// an action that writes it.
pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let err = |e: anyhow::Error| AnalysisError::new(format!("{e:#}"));
    let package = ctx.label().package.clone();
    let strip_prefix = ctx.string("strip_prefix")?;
    let package_dir = ctx.string("package_dir")?;
    if !ctx.labels("package_dir_file")?.is_empty() {
        return Err(AnalysisError::new("attribute 'package_dir_file' is not supported yet; use 'package_dir'"));
    }
    let remap_paths = ctx.string_dict("remap_paths")?;
    let default_mode = pkg_paths::parse_mode(&ctx.string("mode")?).map_err(err)?;
    let modes: Vec<(String, u32)> = ctx
        .string_dict("modes")?
        .into_iter()
        .map(|(k, v)| Ok((pkg_paths::attr_key(&k).to_owned(), pkg_paths::parse_mode(&v).map_err(err)?)))
        .collect::<Result<_, AnalysisError>>()?;
    let (uid, gid) = pkg_paths::parse_owner(&ctx.string("owner")?).map_err(err)?;
    let (uname, gname) = pkg_paths::parse_owner_name(&ctx.string("ownername")?).map_err(err)?;
    let owners: Vec<(String, (u64, u64))> = ctx
        .string_dict("owners")?
        .into_iter()
        .map(|(k, v)| Ok((pkg_paths::attr_key(&k).to_owned(), pkg_paths::parse_owner(&v).map_err(err)?)))
        .collect::<Result<_, AnalysisError>>()?;
    let ownernames: Vec<(String, (String, String))> = ctx
        .string_dict("ownernames")?
        .into_iter()
        .map(|(k, v)| Ok((pkg_paths::attr_key(&k).to_owned(), pkg_paths::parse_owner_name(&v).map_err(err)?)))
        .collect::<Result<_, AnalysisError>>()?;
    let mtime_attr = ctx.int("mtime")?;
    let portable = ctx.bool("portable_mtime")?;
    if mtime_attr != -1 && portable {
        return Err(AnalysisError::new("You may not set both mtime and portable_mtime"));
    }
    let mtime = if mtime_attr != -1 {
        mtime_attr.max(0) as u64
    } else if portable {
        PORTABLE_MTIME
    } else {
        0
    };
    let stamp = match ctx.int("stamp")? {
        1 => true,
        -1 => ctx.config().stamp,
        _ => false,
    };

    // One entry with the per-path overrides applied; `key` is the manifest key.
    let entry = |key: &str, dest: String, kind: EntryKind, mode: u32, forced_mode: bool| {
        let mode = if forced_mode { mode } else { modes.iter().find(|(k, _)| k == key).map(|(_, m)| *m).unwrap_or(mode) };
        let (uid, gid) = owners.iter().find(|(k, _)| k == key).map(|(_, o)| *o).unwrap_or((uid, gid));
        let (uname, gname) = ownernames.iter().find(|(k, _)| k == key).map(|(_, o)| o.clone()).unwrap_or((uname.clone(), gname.clone()));
        TarEntry { dest, kind, mode, uid, gid, uname, gname, mtime, sort_key: key.to_owned() }
    };

    let mut entries = Vec::new();
    let mut inputs = Vec::new();
    for target in ctx.deps("srcs")? {
        if let Some(pkg) = &target.providers.pkg {
            for e in &pkg.entries {
                let (key, kind, attrs, default) = match e {
                    PkgEntry::File { src, dest, attrs } => {
                        inputs.push(src.clone());
                        (pkg_paths::manifest_key(dest), EntryKind::File { src: src.exec_path.clone().into() }, attrs, default_mode)
                    }
                    PkgEntry::Dir { dest, attrs } => (pkg_paths::manifest_key(dest), EntryKind::Dir, attrs, 0o755),
                    PkgEntry::Symlink { dest, target, attrs } => {
                        (pkg_paths::manifest_key(dest), EntryKind::Symlink { target: target.clone() }, attrs, 0o777)
                    }
                };
                let mut t =
                    entry(&key, pkg_paths::normalize_dest(&key, &package_dir), kind, attrs.mode.unwrap_or(default), attrs.mode.is_some());
                // build_tar.py: a uid without a gid is used for both.
                if let Some(u) = attrs.uid {
                    t.uid = u;
                    t.gid = attrs.gid.unwrap_or(u);
                } else if let Some(g) = attrs.gid {
                    t.gid = g;
                }
                if let Some(u) = &attrs.user {
                    t.uname = u.clone();
                }
                if let Some(g) = &attrs.group {
                    t.gname = g.clone();
                }
                entries.push(t);
            }
            continue;
        }
        let mut files = target.providers.files.clone();
        if ctx.bool("include_runfiles")? {
            files.extend(target.providers.runfiles.iter().cloned());
        }
        for f in files {
            let raw = pkg_paths::remap(&pkg_paths::strip_path(f.short_path(), &package, &strip_prefix), &remap_paths);
            let key = pkg_paths::manifest_key(&raw);
            // Executables of *_binary targets get 0755, whatever `modes` says. rules_pkg detects
            // them by their runfiles, which a genrule's executable output does not have.
            let executable = target.providers.executable.as_ref() == Some(&f) && target.kind != "genrule rule";
            let dest = pkg_paths::normalize_dest(&key, &package_dir);
            entries.push(entry(
                &key,
                dest,
                EntryKind::File { src: f.exec_path.clone().into() },
                if executable { 0o755 } else { default_mode },
                executable,
            ));
            inputs.push(f);
        }
    }
    for (label, dest) in ctx.label_keyed_dict("files")? {
        let target = ctx.dep(&label)?;
        let [f] = target.providers.files.as_slice() else {
            return Err(AnalysisError::new(format!("attribute 'files': '{label}' must produce exactly one file")));
        };
        let key = pkg_paths::manifest_key(&dest);
        entries.push(entry(
            &key,
            pkg_paths::normalize_dest(&key, &package_dir),
            EntryKind::File { src: f.exec_path.clone().into() },
            default_mode,
            false,
        ));
        inputs.push(f.clone());
    }
    for path in ctx.string_list("empty_files")? {
        let key = pkg_paths::manifest_key(&path);
        entries.push(entry(&key, pkg_paths::normalize_dest(&key, &package_dir), EntryKind::EmptyFile, default_mode, false));
    }
    for path in ctx.string_list("empty_dirs")? {
        let key = pkg_paths::manifest_key(&path);
        entries.push(entry(&key, pkg_paths::normalize_dest(&key, &package_dir), EntryKind::Dir, default_mode, false));
    }
    for (link, target) in ctx.string_dict("symlinks")? {
        let key = pkg_paths::manifest_key(&link);
        entries.push(entry(
            &key,
            pkg_paths::normalize_symlink_dest(&link, &package_dir),
            EntryKind::Symlink { target },
            default_mode,
            false,
        ));
    }
    let deps = ctx.files("deps")?;
    inputs.extend(deps.iter().cloned());

    let out = ctx.outputs_of("out")?.into_iter().next().ok_or_else(|| AnalysisError::new("pkg_tar needs 'out'"))?;
    let extension = ctx.string("extension")?;
    let level = match ctx.int("compression_level")? {
        -1 => 6,
        l => l.clamp(0, 9) as u32,
    };
    let compression = match extension.trim_start_matches('.') {
        "tar" | "" => Compression::None,
        "tar.gz" | "tgz" => Compression::Gzip { level, mtime: mtime as u32, file_name: out.basename().to_owned() },
        other => return Err(AnalysisError::new(format!("attribute 'extension': '{other}' is not supported yet (use tar, tar.gz or tgz)"))),
    };
    let manifest = TarManifest {
        entries,
        deps: deps.iter().map(|d| d.exec_path.clone().into()).collect(),
        create_parents: ctx.bool("create_parents")?,
        parent_mtime: mtime,
        allow_duplicates_from_deps: ctx.bool("allow_duplicates_from_deps")?,
        compression,
        deps_prefix: package_dir.clone(),
    };
    let code = super::tar_action::PkgTar { manifest, out: out.exec_path.clone(), stamp_mtime: stamp };
    let mut action = Action::new("PkgTar", ctx.label(), ActionKind::Run(Arc::new(code))).inputs(inputs).output(out.clone());
    action.stamped = stamp;
    ctx.register(action)?;
    Ok(Providers { files: vec![out], declared: ctx.declared(), ..Default::default() })
}

#[cfg(test)]
mod tests {
    use crate::analysis::{Analysis, Config};
    use crate::exec::ActionKind;
    use crate::graph::label::Label;
    use crate::load::Loader;

    /// Analyzes `//p:layer` of a workspace holding `build` as p/BUILD (plus p/a.txt), and
    /// returns the analysis (its actions) and the layer's output files, without running anything.
    fn analyze_layer(ws: &std::path::Path, build: &str) -> (Vec<crate::exec::Action>, Vec<String>) {
        std::fs::create_dir_all(ws.join("p")).unwrap();
        std::fs::write(ws.join("MODULE.bazel"), "").unwrap();
        std::fs::write(ws.join("p/BUILD"), build).unwrap();
        std::fs::write(ws.join("p/a.txt"), "a\n").unwrap();
        let registry = crate::rules::registry();
        let workspace = crate::load::external::open_workspace(ws, &registry.kinds).unwrap();
        let loader = Loader::new(std::sync::Arc::new(workspace), &registry.kinds);
        let cache = tempfile::tempdir().unwrap();
        let mut analysis = Analysis::new(&loader, &registry.analyzers, Config::default(), cache.path().to_path_buf());
        let layer = analysis.analyze(&Label::parse_absolute("//p:layer").unwrap()).unwrap();
        let files = layer.providers.files.iter().map(|f| f.exec_path.clone()).collect();
        (std::mem::take(&mut analysis.actions), files)
    }

    #[test]
    fn pkg_tar_analysis_declares_one_tar_action_with_rules_pkg_paths() {
        let ws = tempfile::tempdir().unwrap();
        let (actions, files) = analyze_layer(
            ws.path(),
            r#"load("@rules_pkg//:pkg.bzl", "pkg_tar")
genrule(name = "gen", outs = ["sub/gen.txt"], cmd = "echo hi > $@")
pkg_tar(
    name = "layer",
    srcs = ["a.txt", ":gen"],
    package_dir = "/usr/share/app",
    symlinks = {"usr/bin/app": "/usr/share/app/a.txt"},
)
"#,
        );
        // bazel-bin/p/layer.tar, as rules_pkg names it.
        assert_eq!(files, ["ocib-out/bin/p/layer.tar"]);
        let tar: Vec<_> = actions.iter().filter(|a| a.mnemonic == "PkgTar").collect();
        let [tar] = tar.as_slice() else { panic!("one PkgTar action expected, got {}", tar.len()) };
        assert_eq!(tar.outputs.iter().map(|o| o.exec_path.as_str()).collect::<Vec<_>>(), ["ocib-out/bin/p/layer.tar"]);
        let mut inputs: Vec<&str> = tar.inputs.iter().map(|i| i.exec_path.as_str()).collect();
        inputs.sort();
        assert_eq!(inputs, ["ocib-out/bin/p/sub/gen.txt", "p/a.txt"], "the source and the genrule's output are the inputs");
        assert!(
            actions.iter().any(|a| a.outputs.iter().any(|o| o.exec_path == "ocib-out/bin/p/sub/gen.txt")),
            "the genrule's action is declared too"
        );

        // The members, from the action's parameters (what the action key sees): rules_pkg's
        // default strip_prefix flattens files to their basename under package_dir, mode 0555,
        // owner 0.0, the portable mtime (2000-01-01).
        let ActionKind::Run(code) = &tar.kind else { panic!("PkgTar runs in process") };
        let params = code.params();
        let params: serde_json::Value = serde_json::from_str(&params).unwrap();
        let manifest = &params["manifest"];
        let members: Vec<(String, u64, u64)> = manifest["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| (e["dest"].as_str().unwrap().to_owned(), e["mode"].as_u64().unwrap(), e["mtime"].as_u64().unwrap()))
            .collect();
        assert!(members.contains(&("usr/share/app/a.txt".to_owned(), 0o555, 946684800)), "{members:?}");
        assert!(members.contains(&("usr/share/app/gen.txt".to_owned(), 0o555, 946684800)), "{members:?}");
        assert!(members.iter().any(|(d, _, _)| d.ends_with("usr/bin/app")), "the symlink is a member: {members:?}");
        assert!(manifest["entries"].as_array().unwrap().iter().all(|e| e["uid"] == 0 && e["gid"] == 0), "{manifest}");

        // Analysis runs nothing and writes no output.
        assert!(!ws.path().join("ocib-out").exists(), "analysis must not touch the output tree");
    }
}
