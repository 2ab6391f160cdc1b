//! rules_oci `oci_push`: pushes an image to a registry at `ocib run` (and `ocib push`) time.
//! The analysis half checks the attributes; the run-time half ([`push_target`]) reads the
//! command-line flags of rules_oci's push script (`-r/--repository`, `-t/--tag`), stamps, and
//! pushes the layout with `oci::push`.

use std::path::Path;

use crate::analysis::{AnalysisError, Providers, RuleContext, RunAction};
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder};

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("oci_push")
        .executable()
        .mandatory("image", A::Label)
        .attr("repository", A::String)
        .attr("repository_file", A::Label)
        .attr("remote_tags", A::Label)
        .build()
}

/// `oci_push`: nothing to build but the image; `ocib run` (or `ocib push`) pushes it.
pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let label = ctx.labels("image")?.into_iter().next().ok_or_else(|| AnalysisError::new("oci_push needs 'image'"))?;
    let target = ctx.dep(&label)?;
    let layout =
        target.providers.oci_layout.clone().ok_or_else(|| AnalysisError::new(format!("attribute 'image': '{label}' is not an image")))?;
    let repository = Some(ctx.string("repository")?).filter(|r| !r.is_empty());
    if let Some(r) = &repository {
        // rules_oci rejects a tag or digest here at analysis.
        let without_placeholders = r.replace(['{', '}'], "");
        crate::oci::push::check_repository(&without_placeholders)
            .map_err(|e| AnalysisError::new(format!("attribute 'repository': {e:#}")))?;
    }
    let repository_file = ctx.single_file("repository_file")?;
    let remote_tags = ctx.single_file("remote_tags")?;
    let run = RunAction::Push { layout, repository, repository_file, remote_tags, stamp: ctx.config().stamp };
    Ok(Providers { run: Some(run), ..Default::default() })
}

/// The workspace status the build wrote (for `{KEY}` in repositories and tags).
fn read_status(root: &Path) -> std::collections::BTreeMap<String, String> {
    let mut map = std::collections::BTreeMap::new();
    for name in ["volatile-status.txt", "stable-status.txt"] {
        if let Ok(text) = std::fs::read_to_string(root.join("ocib-out").join(name)) {
            map.extend(crate::stamp::parse(&text));
        }
    }
    map
}

/// Pushes an `oci_push` target: `-r/--repository` overrides the repository, `-t/--tag` adds
/// tags (before those of `remote_tags`); with `--stamp`, `{KEY}` in both is filled from the
/// workspace status. Returns the summary line.
pub fn push_target(push: &RunAction, root: &Path, run_args: &[String]) -> anyhow::Result<String> {
    let RunAction::Push { layout, repository, repository_file, remote_tags, stamp } = push else {
        anyhow::bail!("internal: not a push");
    };
    let mut repo_flag = None;
    let mut tags: Vec<String> = Vec::new();
    let mut insecure = false;
    let mut it = run_args.iter();
    while let Some(a) = it.next() {
        let value = |it: &mut std::slice::Iter<String>, a: &str, long: &str| -> anyhow::Result<String> {
            match a.strip_prefix(&format!("{long}=")) {
                Some(v) => Ok(v.to_owned()),
                None => it.next().cloned().ok_or_else(|| anyhow::anyhow!("{a} needs a value")),
            }
        };
        if a == "-r" || a == "--repository" || a.starts_with("--repository=") {
            repo_flag = Some(value(&mut it, a, "--repository")?);
        } else if a == "-t" || a == "--tag" || a.starts_with("--tag=") {
            tags.push(value(&mut it, a, "--tag")?);
        } else if a == "--insecure" {
            insecure = true;
        } else {
            anyhow::bail!("unknown push argument '{a}' (known: --repository/-r, --tag/-t, --insecure)");
        }
    }
    let repository = match (repo_flag, repository, repository_file) {
        (Some(r), _, _) => r,
        (None, Some(r), _) => r.clone(),
        (None, None, Some(f)) => std::fs::read_to_string(root.join(&f.exec_path))?.trim_end_matches('\n').to_owned(),
        (None, None, None) => anyhow::bail!("repository not set (give `repository`, `repository_file` or --repository)"),
    };
    if let Some(f) = remote_tags {
        tags.extend(crate::oci::tarball::parse_repo_tags(&std::fs::read_to_string(root.join(&f.exec_path))?));
    }
    let (repository, tags) = if *stamp {
        let status = read_status(root);
        let fill = |s: &str| -> anyhow::Result<String> {
            crate::stamp::substitute_single_braces(s, &|k| status.get(k).cloned())
                .ok_or_else(|| anyhow::anyhow!("'{s}' names a key the workspace status does not have"))
        };
        (fill(&repository)?, tags.iter().map(|t| fill(t)).collect::<anyhow::Result<Vec<_>>>()?)
    } else {
        (repository, tags)
    };
    // --insecure: plain http to this registry (localhost always is, like Docker).
    let insecure: Vec<String> = if insecure { vec![crate::oci::push::check_repository(&repository)?.registry] } else { vec![] };
    let client = crate::oci::registry::Client::new(&insecure)?;
    let result = crate::oci::push::push(&client, &root.join(&layout.exec_path), &repository, &tags)?;
    let tag_text = if result.tags.is_empty() { String::new() } else { format!(" tags: {}", result.tags.join(" ")) };
    Ok(format!(
        "{}@{}{tag_text} ({} blobs uploaded, {} mounted, {} already present)",
        result.repository, result.digest, result.blobs_uploaded, result.blobs_mounted, result.blobs_present
    ))
}
