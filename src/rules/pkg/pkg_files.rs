//! rules_pkg `pkg_files`: files with their destination paths and attributes.
use std::sync::Arc;

use super::paths as pkg_paths;
use crate::analysis::{AnalysisError, PkgAttrs, PkgEntry, PkgInfo, Providers, RuleContext};
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder, s};

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("pkg_files")
        .mandatory("srcs", A::LabelList)
        .attr("excludes", A::LabelList)
        .default("prefix", A::String, s(""))
        .default("strip_prefix", A::String, s(".")) // strip_prefix.files_only() is the default
        .default("attributes", A::String, s("{}"))
        .attr("renames", A::LabelKeyedStringDict)
        .attr("include_runfiles", A::Bool)
        .attr("package_variables", A::Label)
        .build()
}

/// rules_pkg's `attributes` JSON (from `pkg_attributes()`): mode, user, group, uid, gid.
pub(crate) fn parse_attributes(json: &str, default_mode: Option<u32>) -> Result<PkgAttrs, AnalysisError> {
    let v: serde_json::Value = serde_json::from_str(if json.is_empty() { "{}" } else { json })
        .map_err(|e| AnalysisError::new(format!("attribute 'attributes': not valid JSON ({e}): {json}")))?;
    let mut attrs = PkgAttrs { mode: default_mode, ..Default::default() };
    if let Some(m) = v.get("mode").and_then(|m| m.as_str()) {
        attrs.mode = Some(pkg_paths::parse_mode(m).map_err(|e| AnalysisError::new(format!("{e:#}")))?);
    }
    attrs.user = v.get("user").and_then(|u| u.as_str()).map(str::to_owned);
    attrs.group = v.get("group").and_then(|u| u.as_str()).map(str::to_owned);
    attrs.uid = v.get("uid").and_then(|u| u.as_u64());
    attrs.gid = v.get("gid").and_then(|u| u.as_u64());
    Ok(attrs)
}

/// Destination of a file under pkg_files' `strip_prefix`: "." (files_only, the default) keeps
/// the basename; "" or a relative path (`strip_prefix.from_pkg()`) is relative to the package
/// (minus that path); "/path" (`from_root()`) relative to the repository root (minus path).
fn strip(short_path: &str, package: &str, strip_prefix: &str) -> String {
    if strip_prefix == "." {
        return short_path.rsplit('/').next().unwrap_or(short_path).to_owned();
    }
    let base = if let Some(root) = strip_prefix.strip_prefix('/') {
        root.to_owned()
    } else if strip_prefix.is_empty() {
        package.to_owned()
    } else if package.is_empty() {
        strip_prefix.to_owned()
    } else {
        format!("{package}/{strip_prefix}")
    };
    let base = base.trim_end_matches('/');
    if base.is_empty() {
        return short_path.to_owned();
    }
    short_path.strip_prefix(&format!("{base}/")).unwrap_or(short_path).to_owned()
}

pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let prefix = ctx.string("prefix")?;
    let strip_prefix = ctx.string("strip_prefix")?;
    // rules_pkg's pkg_files gives its files mode 0644 unless the attributes say otherwise.
    let attrs = parse_attributes(&ctx.string("attributes")?, Some(0o644))?;
    let package = ctx.label().package.clone();
    let excluded: Vec<String> = ctx.files("excludes")?.into_iter().map(|a| a.exec_path).collect();
    let mut renames = Vec::new();
    for (label, dest) in ctx.label_keyed_dict("renames")? {
        for f in ctx.dep(&label)?.providers.files.clone() {
            renames.push((f.exec_path, dest.clone()));
        }
    }
    let mut entries = Vec::new();
    for f in ctx.files("srcs")? {
        if excluded.contains(&f.exec_path) {
            continue;
        }
        let rel = match renames.iter().find(|(p, _)| *p == f.exec_path) {
            Some((_, dest)) => dest.clone(),
            None => strip(f.short_path(), &package, &strip_prefix),
        };
        let dest = if prefix.is_empty() { rel } else { format!("{}/{rel}", prefix.trim_end_matches('/')) };
        entries.push(PkgEntry::File { src: f, dest, attrs: attrs.clone() });
    }
    Ok(Providers { pkg: Some(Arc::new(PkgInfo { entries })), ..Default::default() })
}

#[cfg(test)]
mod tests {
    use super::strip;

    #[test]
    fn strip_prefix_forms() {
        assert_eq!(strip("app/conf/x.yaml", "app", "."), "x.yaml");
        assert_eq!(strip("app/conf/x.yaml", "app", ""), "conf/x.yaml");
        assert_eq!(strip("app/conf/x.yaml", "app", "conf"), "x.yaml");
        assert_eq!(strip("app/conf/x.yaml", "app", "/app"), "conf/x.yaml");
        assert_eq!(strip("app/conf/x.yaml", "app", "/"), "app/conf/x.yaml");
    }
}
