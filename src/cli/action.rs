//! `ocib action KIND PARAMS [--out=PATH | --out_dir=PATH | --out_exe=PATH]...`: runs one of
//! ocib's in-process actions as a command (hidden; not for users). This is what a Remote
//! Execution worker runs for such an action: the current directory is the exec root, every
//! input is at its exec path under it, and the outputs are written at theirs, so the worker
//! uploads the same bytes a local build stores.
//!
//! The code is rebuilt from its params by the table the rule sets provide
//! (`rules::in_process_kinds`); `exec::remote::describe` writes the command line.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, anyhow, bail};

use super::{CliError, CliResult};
use crate::exec::ActionContext;

/// Runs `ocib action` with `args` (the words after `action`) in `cwd`.
pub fn run(args: &[String], cwd: &Path) -> CliResult<()> {
    let usage = || CliError::bad_command_line(anyhow!("usage: ocib action KIND PARAMS [--out=PATH|--out_dir=PATH|--out_exe=PATH]..."));
    let [kind, params, rest @ ..] = args else { return Err(usage()) };
    let kinds = crate::rules::in_process_kinds();
    let make = kinds.get(kind.as_str()).ok_or_else(|| CliError::bad_command_line(anyhow!("unknown action kind '{kind}'")))?;
    let code = make(params).with_context(|| format!("action {kind}")).map_err(CliError::bad_command_line)?;
    let mut outputs = BTreeMap::new();
    let mut dirs = Vec::new();
    let mut executables = Vec::new();
    for a in rest {
        let (flag, path) = a.split_once('=').ok_or_else(usage)?;
        check_relative(path).map_err(CliError::bad_command_line)?;
        match flag {
            "--out" => {}
            "--out_dir" => dirs.push(path.to_owned()),
            "--out_exe" => executables.push(path.to_owned()),
            _ => return Err(usage()),
        }
        outputs.insert(path.to_owned(), cwd.join(path));
    }
    let result = (|| -> anyhow::Result<()> {
        // Every file and directory of the input root is an input at its exec path.
        let mut inputs = BTreeMap::new();
        for entry in walkdir::WalkDir::new(cwd).min_depth(1).sort_by_file_name() {
            let entry = entry.context("reading the input root")?;
            let rel = entry.path().strip_prefix(cwd).unwrap_or(entry.path()).to_string_lossy().into_owned();
            if !outputs.contains_key(&rel) {
                inputs.insert(rel, entry.path().to_path_buf());
            }
        }
        for (exec_path, real) in &outputs {
            let dir = if dirs.contains(exec_path) { Some(real.as_path()) } else { real.parent() };
            if let Some(dir) = dir {
                std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            }
        }
        // Stamped actions never run remotely (the volatile status is the client's): the
        // stable status is an input when an action reads it.
        let stable = std::fs::read_to_string(cwd.join("ocib-out/stable-status.txt")).ok().map(|t| crate::stamp::parse(&t));
        let mut ctx = ActionContext {
            exec_root: cwd.to_path_buf(),
            inputs,
            outputs,
            input_digests: BTreeMap::new(),
            stable_status: stable.clone().or_else(|| Some(BTreeMap::new())),
            volatile_status: Some(BTreeMap::new()),
            log: String::new(),
            output_digests: BTreeMap::new(),
            uncacheable: false,
        };
        let result = code.run(&mut ctx);
        if !ctx.log.is_empty() {
            eprint!("{}", ctx.log);
        }
        result?;
        for exe in &executables {
            let path = cwd.join(exe);
            let meta = std::fs::metadata(&path).with_context(|| format!("the action did not create its output '{exe}'"))?;
            let mut perms = meta.permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
            std::fs::set_permissions(&path, perms).with_context(|| format!("chmod {}", path.display()))?;
        }
        Ok(())
    })();
    result.map_err(|e| CliError::new(e.context(format!("action {kind}")), super::exit::BUILD_FAILED))
}

/// An output path must stay inside the exec root.
fn check_relative(path: &str) -> anyhow::Result<()> {
    if path.is_empty() || path.starts_with('/') || path.split('/').any(|c| c.is_empty() || c == "." || c == "..") {
        bail!("'{path}' is not a normalized relative path");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exec::InProcess;

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    /// What a worker does: the input root is the current directory, the params are the ones the
    /// action key hashes, and the output appears at its exec path with the bytes a local run
    /// writes.
    #[test]
    fn runs_in_process_code_from_its_params_in_the_current_directory() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("p")).unwrap();
        std::fs::write(dir.path().join("p/in.txt"), "bytes").unwrap();
        let code = crate::rules::lib::files::CopyFile { src: "p/in.txt".into(), out: "ocib-out/bin/p/out.txt".into() };
        let params = code.params();
        run(&words(&["CopyFile", &params, "--out_exe=ocib-out/bin/p/out.txt"]), dir.path()).map_err(|e| e.exit_code).unwrap();
        let out = dir.path().join("ocib-out/bin/p/out.txt");
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "bytes");
        assert!(std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&out).unwrap().permissions()) & 0o111 != 0);
        // Every registered kind rebuilds the same params (so the action digest names the code).
        let kinds = crate::rules::in_process_kinds();
        assert_eq!(kinds["CopyFile"](&params).unwrap().params(), params);
    }

    #[test]
    fn bad_invocations_are_command_line_errors() {
        let dir = tempfile::tempdir().unwrap();
        let code = |w: &[&str]| run(&words(w), dir.path()).err().map(|e| e.exit_code);
        assert_eq!(code(&["NoSuchKind", "{}"]), Some(super::super::exit::BAD_COMMAND_LINE));
        assert_eq!(code(&["CopyFile", "not json"]), Some(super::super::exit::BAD_COMMAND_LINE));
        let params = r#"{"src":"a","out":"../escape"}"#;
        assert_eq!(code(&["CopyFile", params, "--out=../escape"]), Some(super::super::exit::BAD_COMMAND_LINE));
        // A missing input is the action's failure.
        assert_eq!(code(&["CopyFile", r#"{"src":"a","out":"b"}"#, "--out=b"]), Some(super::super::exit::BUILD_FAILED));
    }
}
