//! rules_distroless's mtree-based macros `passwd`, `group`, `home` and `os_release`
//! (`distroless/private/{passwd,group,home,os_release}.bzl`). The prelude macros turn the
//! entries into text exactly as upstream does; these kinds write the archive upstream's
//! `tar(mtree = ...)` does: `<name>.tar.gz`, members in mtree order, owner root.

use std::sync::Arc;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::archive::{Member, parents, parse_mode, parse_time, write_members};
use crate::analysis::{AnalysisError, Providers, RuleContext};
use crate::exec::{Action, ActionContext, ActionKind, InProcess};
use crate::graph::AttrType as A;
use crate::rules::{RuleSchema, SchemaBuilder, s};

/// `passwd` and `group`: `content` is the file's lines (the macro joins the entries' fields).
pub fn etc_file_schema(kind: &str) -> RuleSchema {
    SchemaBuilder::new(kind)
        .mandatory("content", A::StringList)
        .default("mode", A::String, s("0644"))
        .default("time", A::String, s("0.0"))
        .build()
}

pub fn home_schema() -> RuleSchema {
    SchemaBuilder::new("home").mandatory("dirs", A::StringList).build()
}

pub fn os_release_schema() -> RuleSchema {
    SchemaBuilder::new("os_release")
        .mandatory("content", A::StringList)
        .default("path", A::String, s("/usr/lib/os-release"))
        .default("mode", A::String, s("0555"))
        .default("time", A::String, s("0"))
        .build()
}

fn mode_attr(ctx: &mut RuleContext, name: &str) -> Result<u32, AnalysisError> {
    let text = ctx.string(name)?;
    parse_mode(&text).ok_or_else(|| AnalysisError::new(format!("attribute '{name}': '{text}' is not an octal mode")))
}

fn time_attr(ctx: &mut RuleContext, name: &str) -> Result<u64, AnalysisError> {
    let text = ctx.string(name)?;
    parse_time(&text).ok_or_else(|| AnalysisError::new(format!("attribute '{name}': '{text}' is not a time in seconds")))
}

/// The lines of a file as skylib's `write_file` writes `content + [""]`: joined with `\n`,
/// so the file ends with a newline.
fn text(lines: &[String]) -> Vec<u8> {
    let mut out = lines.join("\n");
    out.push('\n');
    out.into_bytes()
}

/// `passwd` / `group`: `/etc` (0755, time 0, as upstream's `add_dir("/etc", time = "0.0")`
/// for passwd and the `time` attribute for group) and `/etc/<kind>`.
pub fn analyze_etc_file(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let kind = ctx.rule.kind.clone();
    let mode = mode_attr(ctx, "mode")?;
    let time = time_attr(ctx, "time")?;
    let etc_time = if kind == "passwd" { 0 } else { time };
    let content = text(&ctx.string_list("content")?);
    let members = vec![Member::dir("/etc", 0o755, etc_time), Member::file(&format!("/etc/{kind}"), mode, time, content)];
    register(ctx, members)
}

/// `home`: one directory per entry; the macro encodes each as `path:uid:gid:mode:time`.
pub fn analyze_home(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let mut members = Vec::new();
    for dir in ctx.string_list("dirs")? {
        let bad = || AnalysisError::new(format!("attribute 'dirs': '{dir}' is not path:uid:gid:mode:time"));
        let mut fields = dir.rsplitn(5, ':');
        let (time, mode, gid, uid, path) = (fields.next(), fields.next(), fields.next(), fields.next(), fields.next());
        let (Some(time), Some(mode), Some(gid), Some(uid), Some(path)) = (time, mode, gid, uid, path) else { return Err(bad()) };
        let (Some(time), Some(mode), Ok(uid), Ok(gid)) = (parse_time(time), parse_mode(mode), uid.parse::<u64>(), gid.parse::<u64>())
        else {
            return Err(bad());
        };
        let Member::Dir { path, .. } = Member::dir(path, mode, time) else { return Err(bad()) };
        members.push(Member::Dir { path, mode, uid, gid, mtime: time });
    }
    register(ctx, members)
}

/// `os_release`: the parents of `path` (0755) and the file.
pub fn analyze_os_release(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let path = ctx.string("path")?;
    let mode = mode_attr(ctx, "mode")?;
    let time = time_attr(ctx, "time")?;
    let Some(i) = path.rfind('/') else {
        return Err(AnalysisError::new(format!("attribute 'path': '{path}' has no directory")));
    };
    let mut members = parents(&path[..i], 0o755, time, &[]);
    let file = path.trim_start_matches('/').trim_start_matches("./");
    members.push(Member::file(file, mode, time, text(&ctx.string_list("content")?)));
    register(ctx, members)
}

fn register(ctx: &mut RuleContext, members: Vec<Member>) -> Result<Providers, AnalysisError> {
    let out = ctx.declare(&format!("{}.tar.gz", ctx.label().name));
    let code = WriteMembers { members: members.into_iter().map(SerMember::from).collect(), out: out.exec_path.clone() };
    let action = Action::new("DistrolessTar", ctx.label(), ActionKind::Run(Arc::new(code))).output(out.clone());
    ctx.register(action)?;
    Ok(Providers { files: vec![out], declared: ctx.declared(), ..Default::default() })
}

/// A [`Member`] as the action key sees it.
#[derive(Serialize, Clone, Deserialize)]
pub struct SerMember {
    path: String,
    dir: bool,
    mode: u32,
    uid: u64,
    gid: u64,
    mtime: u64,
    content: String,
}

impl From<Member> for SerMember {
    fn from(m: Member) -> SerMember {
        match m {
            Member::Dir { path, mode, uid, gid, mtime } => SerMember { path, dir: true, mode, uid, gid, mtime, content: String::new() },
            Member::File { path, mode, mtime, content } => {
                SerMember { path, dir: false, mode, uid: 0, gid: 0, mtime, content: String::from_utf8_lossy(&content).into_owned() }
            }
        }
    }
}

#[derive(Serialize, Deserialize)]
pub struct WriteMembers {
    pub members: Vec<SerMember>,
    pub out: String,
}

impl InProcess for WriteMembers {
    fn kind(&self) -> &'static str {
        "WriteMembers"
    }

    fn params(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    fn run(&self, ctx: &mut ActionContext) -> Result<()> {
        let members: Vec<Member> = self
            .members
            .iter()
            .map(|m| {
                if m.dir {
                    Member::Dir { path: m.path.clone(), mode: m.mode, uid: m.uid, gid: m.gid, mtime: m.mtime }
                } else {
                    Member::File { path: m.path.clone(), mode: m.mode, mtime: m.mtime, content: m.content.clone().into_bytes() }
                }
            })
            .collect();
        write_members(ctx.output(&self.out)?, &members, true)
    }
}
