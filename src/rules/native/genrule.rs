//! `genrule`: a bash command that turns declared inputs into declared outputs.
use std::collections::BTreeMap;

use crate::analysis::{AnalysisError, Providers, RuleContext};
use crate::exec::{Action, ActionKind, Artifact};
use crate::graph::AttrType as A;
use crate::graph::label::Label;
use crate::rules::{RuleSchema, SchemaBuilder, b, i};

pub fn schema() -> RuleSchema {
    SchemaBuilder::new("genrule")
        .native()
        .attr("srcs", A::LabelList)
        .mandatory("outs", A::OutputList)
        .attr("cmd", A::String)
        .attr("cmd_bash", A::String)
        .attr("cmd_bat", A::String)
        .attr("cmd_ps", A::String)
        .attr("tools", A::LabelList)
        .attr("exec_tools", A::LabelList)
        .attr("toolchains", A::LabelList)
        .attr("message", A::String)
        .attr("output_to_bindir", A::Bool)
        .attr("executable", A::Bool)
        .attr("local", A::Bool)
        .default("stamp", A::Int, i(0))
        .default("heuristic_label_expansion", A::Bool, b(false))
        .build()
}

/// A bash command run in an exec root holding only its declared inputs, with Bazel's make
/// variables expanded (`$(location)`, `$@`, `$<`, `$(SRCS)`, `$(OUTS)`, `$(RULEDIR)`, ...).
pub fn analyze(ctx: &mut RuleContext) -> Result<Providers, AnalysisError> {
    let srcs_targets = ctx.deps("srcs")?;
    let tools_targets = ctx.deps("tools")?;
    let outs = ctx.outputs_of("outs")?;
    if outs.is_empty() {
        return Err(AnalysisError::new("genrule must have at least one output in 'outs'"));
    }
    let srcs: Vec<Artifact> = srcs_targets.iter().flat_map(|t| t.providers.files.clone()).collect();
    let mut tools: Vec<Artifact> = Vec::new();
    for t in &tools_targets {
        tools.extend(t.providers.files.iter().cloned());
        tools.extend(t.providers.runfiles.iter().cloned());
    }
    let cmd = {
        let bash = ctx.string("cmd_bash")?;
        if bash.is_empty() { ctx.string("cmd")? } else { bash }
    };
    if cmd.is_empty() {
        return Err(AnalysisError::new("genrule needs 'cmd' or 'cmd_bash'"));
    }
    // Labels $(location) may name: srcs, tools and outs.
    let mut by_label: Vec<(Label, Vec<Artifact>)> = Vec::new();
    for (attr, targets) in [("srcs", &srcs_targets), ("tools", &tools_targets)] {
        let _ = attr;
        for t in targets.iter() {
            by_label.push((t.label.clone(), t.providers.files.clone()));
        }
    }
    for o in &outs {
        let name = o.basename().to_owned();
        by_label.push((ctx.label().package_id().label(name), vec![o.clone()]));
    }
    let pkg = ctx.label().package_id();
    let map_repo = |r: &str| ctx.analysis.loader.workspace().map_repo(r);
    let lookup = |s: &str| -> Result<Vec<Artifact>, String> {
        let label = Label::parse(s.trim(), &pkg, &map_repo).map_err(|e| e.to_string())?;
        by_label
            .iter()
            .find(|(l, _)| *l == label)
            .map(|(_, files)| files.clone())
            .ok_or_else(|| format!("label '{label}' in $(location) is not a declared prerequisite of this rule"))
    };
    let ruledir = format!("{}/{}", crate::exec::BIN_DIR, crate::rules::package_path(&pkg));
    let out_dir =
        if outs.len() == 1 { outs[0].exec_path.rsplit_once('/').map(|(d, _)| d.to_owned()).unwrap_or_default() } else { ruledir.clone() };
    let defines = |key: &str| ctx.config().define(key).map(str::to_owned);
    let dirs = Dirs { ruledir: &ruledir, out_dir: &out_dir };
    let expanded =
        expand_make_vars(&cmd, &srcs, &outs, &dirs, &lookup, &defines).map_err(|e| AnalysisError::new(format!("attribute 'cmd': {e}")))?;

    let stamp = match ctx.int("stamp")? {
        1 => true,
        -1 => ctx.config().stamp,
        _ => false,
    };
    let executable = ctx.bool("executable")? && outs.len() == 1;
    let mut action = Action::new(
        "Genrule",
        ctx.label(),
        ActionKind::Spawn { argv: vec!["/bin/bash".into(), "-c".into(), format!("set -e\n{expanded}")], env: BTreeMap::new() },
    )
    .inputs(srcs.iter().cloned())
    .inputs(tools.iter().cloned());
    action.stamped = stamp;
    let message = ctx.string("message")?;
    action.progress = if message.is_empty() { format!("Executing genrule {}", ctx.label()) } else { format!("{message} {}", ctx.label()) };
    for o in &outs {
        action = if executable { action.executable_output(o.clone()) } else { action.output(o.clone()) };
    }
    ctx.register(action)?;
    Ok(Providers { files: outs.clone(), executable: executable.then(|| outs[0].clone()), declared: ctx.declared(), ..Default::default() })
}

/// The directories a genrule's command can name: `$(RULEDIR)` and `$(@D)`.
struct Dirs<'a> {
    ruledir: &'a str,
    out_dir: &'a str,
}

/// Expands Bazel's make variables in a genrule command. As in Bazel's
/// ConfigurationMakeVariableContext, the rule's own variables (`SRCS`, `OUTS`, `RULEDIR`, `@D`)
/// come first, then `--define` values (`defines`), then the configuration's (`BINDIR`,
/// `COMPILATION_MODE`, ...); anything else is "$(X) not defined", Bazel's words.
fn expand_make_vars(
    cmd: &str,
    srcs: &[Artifact],
    outs: &[Artifact],
    dirs: &Dirs,
    lookup: &dyn Fn(&str) -> Result<Vec<Artifact>, String>,
    defines: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let join = |files: &[Artifact]| files.iter().map(|f| f.exec_path.clone()).collect::<Vec<_>>().join(" ");
    let mut out = String::with_capacity(cmd.len());
    let mut chars = cmd.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some((_, '$')) => out.push('$'),
            Some((_, '@')) => match outs {
                [one] => out.push_str(&one.exec_path),
                _ => return Err("'$@' needs exactly one output".into()),
            },
            Some((_, '<')) => match srcs {
                [one] => out.push_str(&one.exec_path),
                _ => return Err("'$<' needs exactly one input in srcs".into()),
            },
            Some((start, '(')) => {
                let rest = &cmd[start + 1..];
                let end = rest.find(')').ok_or_else(|| format!("unterminated variable reference at offset {i}"))?;
                let inner = &rest[..end];
                for _ in 0..inner.chars().count() + 1 {
                    chars.next();
                }
                let (func, arg) = inner.split_once(' ').map(|(f, a)| (f, Some(a))).unwrap_or((inner, None));
                let value = match (func, arg) {
                    ("location" | "execpath" | "rootpath", Some(a)) => {
                        let files = lookup(a)?;
                        match files.as_slice() {
                            [one] => {
                                if func == "rootpath" {
                                    one.short_path().to_owned()
                                } else {
                                    one.exec_path.clone()
                                }
                            }
                            _ => return Err(format!("$({func} {a}) expects exactly one file, got {}; use $({func}s {a})", files.len())),
                        }
                    }
                    ("locations" | "execpaths", Some(a)) => join(&lookup(a)?),
                    ("rootpaths", Some(a)) => lookup(a)?.iter().map(|f| f.short_path().to_owned()).collect::<Vec<_>>().join(" "),
                    ("SRCS", None) => join(srcs),
                    ("OUTS", None) => join(outs),
                    ("RULEDIR", None) => dirs.ruledir.to_owned(),
                    ("@D", None) => dirs.out_dir.to_owned(),
                    (name, None) => defines(name).or_else(|| configuration_var(name)).ok_or_else(|| format!("$({inner}) not defined"))?,
                    _ => return Err(format!("$({inner}) not defined")),
                };
                out.push_str(&value);
            }
            Some((_, other)) => return Err(format!("'${other}' is not a make variable; write '$$' for a literal '$'")),
            None => return Err("trailing '$'".into()),
        }
    }
    Ok(out)
}

/// The configuration's make variables (Bazel's global make environment).
fn configuration_var(name: &str) -> Option<String> {
    Some(match name {
        "BINDIR" | "GENDIR" => crate::exec::BIN_DIR.to_owned(),
        "TARGET_CPU" => "k8".to_owned(),
        "COMPILATION_MODE" => "fastbuild".to_owned(),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn art(p: &str) -> Artifact {
        Artifact::derived(p)
    }

    #[test]
    fn make_variables() {
        let srcs = [Artifact::source("p/in.txt", "/w/p/in.txt".into())];
        let outs = [art("p/out.txt")];
        let lookup = |s: &str| if s == ":in.txt" { Ok(srcs.to_vec()) } else { Err(format!("unknown {s}")) };
        let dirs = Dirs { ruledir: "ocib-out/bin/p", out_dir: "ocib-out/bin/p" };
        let none = |_: &str| None;
        let got = expand_make_vars("cat $< $(location :in.txt) > $@; echo $$HOME $(RULEDIR) $(SRCS)", &srcs, &outs, &dirs, &lookup, &none)
            .unwrap();
        assert_eq!(got, "cat p/in.txt p/in.txt > ocib-out/bin/p/out.txt; echo $HOME ocib-out/bin/p p/in.txt");
        assert!(expand_make_vars("echo $HOME", &srcs, &outs, &dirs, &lookup, &none).is_err());
        assert!(expand_make_vars("$(location :nope)", &srcs, &outs, &dirs, &lookup, &none).is_err());
        assert_eq!(expand_make_vars("$(FOO)", &srcs, &outs, &dirs, &lookup, &none).unwrap_err(), "$(FOO) not defined");
    }

    #[test]
    fn defines_are_make_variables_and_override_the_configurations() {
        let dirs = Dirs { ruledir: "r", out_dir: "r" };
        let lookup = |s: &str| Err(format!("unknown {s}"));
        let defines = |k: &str| match k {
            "FOO" => Some("foo".to_owned()),
            "COMPILATION_MODE" => Some("mine".to_owned()),
            _ => None,
        };
        let got = expand_make_vars("$(FOO) $(COMPILATION_MODE) $(TARGET_CPU)", &[], &[], &dirs, &lookup, &defines).unwrap();
        assert_eq!(got, "foo mine k8");
    }
}
