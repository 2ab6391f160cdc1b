//! `.bazelrc` files: reading them (`import`, `try-import`, `%workspace%`), picking the lines
//! that apply to a command (`common`, the command and the commands it inherits from), and
//! expanding `--config=NAME` in place, recursively.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// One option line of an rc file: `command[:config] args...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcLine {
    pub command: String,
    pub config: Option<String>,
    pub args: Vec<String>,
    /// `file:line`, for messages.
    pub source: String,
    /// The file, for `--announce_rc`.
    pub file: String,
}

#[derive(Debug, Default, Clone)]
pub struct RcFiles {
    pub lines: Vec<RcLine>,
}

/// Which rc files to read, from the startup options.
#[derive(Debug, Clone, Default)]
pub struct RcOptions {
    pub system_rc: bool,
    pub workspace_rc: bool,
    pub home_rc: bool,
    pub extra: Vec<PathBuf>,
}

/// Arguments, each with where it came from ("command line" or an rc file and line).
type SourcedArgs = Vec<(String, String)>;

impl RcFiles {
    pub fn read(workspace: Option<&Path>, opts: &RcOptions) -> Result<RcFiles> {
        let mut rc = RcFiles::default();
        let mut files = Vec::new();
        if opts.system_rc {
            files.push(PathBuf::from("/etc/bazel.bazelrc"));
        }
        if opts.workspace_rc
            && let Some(ws) = workspace
        {
            files.push(ws.join(".bazelrc"));
        }
        if opts.home_rc
            && let Some(home) = std::env::var_os("HOME")
        {
            files.push(PathBuf::from(home).join(".bazelrc"));
        }
        for f in &opts.extra {
            if f == Path::new("/dev/null") {
                break;
            }
            if !f.is_file() {
                bail!("--bazelrc file '{}' does not exist", f.display());
            }
            files.push(f.clone());
        }
        for f in files {
            if f.is_file() {
                rc.read_file(&f, workspace, &mut Vec::new())?;
            }
        }
        Ok(rc)
    }

    fn read_file(&mut self, path: &Path, workspace: Option<&Path>, stack: &mut Vec<PathBuf>) -> Result<()> {
        if stack.iter().any(|p| p == path) {
            bail!("import cycle in rc files: {} imports itself", path.display());
        }
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        stack.push(path.to_path_buf());
        // A trailing backslash continues the line.
        let joined = text.replace("\\\n", " ");
        for (n, raw) in joined.lines().enumerate() {
            let source = format!("{}:{}", path.display(), n + 1);
            let words = shell_words(raw).with_context(|| format!("{source}: cannot parse line"))?;
            let Some((first, rest)) = words.split_first() else { continue };
            let expand = |s: &str| match workspace {
                Some(ws) => s.replace("%workspace%", &ws.to_string_lossy()),
                None => s.to_owned(),
            };
            if first == "import" || first == "try-import" {
                let [target] = rest else { bail!("{source}: '{first}' takes exactly one path") };
                let target = PathBuf::from(expand(target));
                if target.is_file() {
                    self.read_file(&target, workspace, stack)?;
                } else if first == "import" {
                    bail!("{source}: imported file '{}' does not exist", target.display());
                }
                continue;
            }
            let (command, config) = match first.split_once(':') {
                Some((c, cfg)) => (c.to_owned(), Some(cfg.to_owned())),
                None => (first.clone(), None),
            };
            let file = path.display().to_string();
            self.lines.push(RcLine { command, config, args: rest.iter().map(|a| expand(a)).collect(), source, file });
        }
        stack.pop();
        Ok(())
    }

    /// Options the rc files give `command` (without `--config` sections), least specific first.
    pub fn options_for(&self, command: &str) -> Vec<(String, String)> {
        let chain = command_chain(command);
        let mut out = Vec::new();
        for cmd in &chain {
            for line in &self.lines {
                if &line.command == cmd && line.config.is_none() {
                    out.extend(line.args.iter().map(|a| (a.clone(), line.source.clone())));
                }
            }
        }
        out
    }

    /// What `--announce_rc` prints about the options [`RcFiles::options_for`] gives `command`,
    /// in Bazel's shape: per command of the chain and per file, `INFO: Reading rc options for
    /// 'build' from FILE:` then `  Inherited 'common' options: ...` (or `  'build' options:`).
    pub fn announce(&self, command: &str) -> Vec<String> {
        let mut out = Vec::new();
        for cmd in command_chain(command) {
            let mut files: Vec<&str> = Vec::new();
            for line in self.lines.iter().filter(|l| l.command == cmd && l.config.is_none()) {
                if !files.contains(&line.file.as_str()) {
                    files.push(&line.file);
                }
            }
            for file in files {
                let args: Vec<&str> = self
                    .lines
                    .iter()
                    .filter(|l| l.command == cmd && l.config.is_none() && l.file == file)
                    .flat_map(|l| l.args.iter().map(String::as_str))
                    .collect();
                let which = if cmd == command { format!("'{cmd}'") } else { format!("Inherited '{cmd}'") };
                out.push(format!("INFO: Reading rc options for '{command}' from {file}:\n  {which} options: {}", args.join(" ")));
            }
        }
        out
    }

    /// Expands every `--config=NAME` (or `--config NAME`) in `args`, in place and recursively.
    pub fn expand_configs(&self, command: &str, args: Vec<(String, String)>) -> Result<Vec<(String, String)>> {
        self.expand(command, args, &mut Vec::new(), &mut MAX_CONFIG_EXPANSIONS.clone(), &mut None)
    }

    /// [`RcFiles::expand_configs`], also returning the `--announce_rc` lines for each config
    /// definition used (Bazel's `INFO: Found applicable config definition build:ci in file
    /// FILE: ...`).
    pub fn expand_configs_announced(&self, command: &str, args: Vec<(String, String)>) -> Result<(SourcedArgs, Vec<String>)> {
        let mut notes = Some(Vec::new());
        let out = self.expand(command, args, &mut Vec::new(), &mut MAX_CONFIG_EXPANSIONS.clone(), &mut notes)?;
        Ok((out, notes.unwrap_or_default()))
    }

    /// `budget` counts the `--config` expansions still allowed: configs that each expand the
    /// next one twice (`build:c1 --config=c2 --config=c2`, ...) are not recursive, yet grow
    /// exponentially; real rc files use a handful (found by the bazelrc fuzz target).
    fn expand(
        &self,
        command: &str,
        args: Vec<(String, String)>,
        active: &mut Vec<String>,
        budget: &mut usize,
        notes: &mut Option<Vec<String>>,
    ) -> Result<Vec<(String, String)>> {
        let chain = command_chain(command);
        let mut out = Vec::new();
        let mut it = args.into_iter().peekable();
        while let Some((arg, source)) = it.next() {
            if arg == "--" {
                out.push((arg, source));
                out.extend(it);
                break;
            }
            let name = if let Some(n) = arg.strip_prefix("--config=") {
                n.to_owned()
            } else if arg == "--config" {
                match it.next() {
                    Some((n, _)) => n,
                    None => bail!("--config needs a value"),
                }
            } else {
                out.push((arg, source));
                continue;
            };
            if active.contains(&name) {
                bail!("config value '{name}' is expanded recursively: {} -> {name}", active.join(" -> "));
            }
            if *budget == 0 {
                bail!(
                    "config value '{name}' takes more than {MAX_CONFIG_EXPANSIONS} --config expansions ({} -> {name}): do configs expand each other repeatedly?",
                    active.join(" -> ")
                );
            }
            *budget -= 1;
            let mut found = false;
            let mut expansion = Vec::new();
            for cmd in &chain {
                for line in &self.lines {
                    if &line.command == cmd && line.config.as_deref() == Some(name.as_str()) {
                        found = true;
                        if let Some(notes) = notes.as_mut() {
                            notes.push(format!(
                                "INFO: Found applicable config definition {cmd}:{name} in file {}: {}",
                                line.file,
                                line.args.join(" ")
                            ));
                        }
                        expansion.extend(line.args.iter().map(|a| (a.clone(), line.source.clone())));
                    }
                }
            }
            if !found {
                bail!("Config value '{name}' is not defined in any .rc file");
            }
            active.push(name);
            out.extend(self.expand(command, expansion, active, budget, notes)?);
            active.pop();
        }
        Ok(out)
    }
}

/// How many `--config` expansions one command line may take in all.
const MAX_CONFIG_EXPANSIONS: usize = 10_000;

/// `common` then the commands `command` inherits options from, least specific first.
/// (`query` does not inherit `build`.)
pub fn command_chain(command: &str) -> Vec<&'static str> {
    let mut chain = vec!["common"];
    match command {
        "build" => chain.push("build"),
        "push" => chain.extend(["build", "run"]),
        "test" | "run" | "clean" | "info" | "cquery" | "aquery" | "print_action" | "config" | "mobile-install" => {
            chain.push("build");
            chain.push(match command {
                "test" => "test",
                "run" => "run",
                "clean" => "clean",
                "info" => "info",
                "cquery" => "cquery",
                "aquery" => "aquery",
                "print_action" => "print_action",
                "config" => "config",
                _ => "mobile-install",
            });
        }
        "coverage" => chain.extend(["build", "test", "coverage"]),
        "query" => chain.push("query"),
        _ => {}
    }
    chain
}

/// Splits a line into words like a POSIX shell (quotes, backslashes), dropping `#` comments.
pub fn shell_words(line: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '#' if !in_word => break,
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => bail!("unterminated single quote"),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(c) => cur.push(c),
                            None => bail!("unterminated double quote"),
                        },
                        Some(c) => cur.push(c),
                        None => bail!("unterminated double quote"),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(c) = chars.next() {
                    cur.push(c);
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rc(text: &str) -> RcFiles {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".bazelrc");
        std::fs::write(&path, text).unwrap();
        let mut rc = RcFiles::default();
        rc.read_file(&path, Some(dir.path()), &mut Vec::new()).unwrap();
        rc
    }

    fn args(v: &[(String, String)]) -> Vec<&str> {
        v.iter().map(|(a, _)| a.as_str()).collect()
    }

    #[test]
    fn query_does_not_inherit_build() {
        let rc = rc("common --keep_going\nbuild --stamp\nquery --output=label_kind\n");
        assert_eq!(args(&rc.options_for("query")), ["--keep_going", "--output=label_kind"]);
        assert_eq!(args(&rc.options_for("test")), ["--keep_going", "--stamp"]);
    }

    #[test]
    fn configs_expand_in_place_and_recursively() {
        let rc = rc("build:release --stamp --config=ci\nbuild:ci --keep_going # comment\n");
        let input = vec![
            ("-k".to_owned(), "cli".to_owned()),
            ("--config=release".to_owned(), "cli".to_owned()),
            ("--jobs=2".to_owned(), "cli".to_owned()),
        ];
        let out = rc.expand_configs("build", input).unwrap();
        assert_eq!(args(&out), ["-k", "--stamp", "--keep_going", "--jobs=2"]);
        assert!(rc.expand_configs("query", vec![("--config=release".into(), "cli".into())]).is_err());
    }

    #[test]
    fn recursive_config_is_an_error() {
        let rc = rc("build:a --config=b\nbuild:b --config=a\n");
        assert!(rc.expand_configs("build", vec![("--config=a".into(), "cli".into())]).is_err());
    }

    #[test]
    fn configs_doubling_each_other_are_an_error_not_a_hang() {
        // c0 -> c1 c1 -> c2 c2 c2 c2 -> ... : 2^40 expansions without a budget.
        let text: String = (0..40).map(|i| format!("build:c{i} --config=c{next} --config=c{next}\n", next = i + 1)).collect();
        let doubling = rc(&(text + "build:c40 --stamp\n"));
        let err = doubling.expand_configs("build", vec![("--config=c0".into(), "cli".into())]).unwrap_err();
        assert!(err.to_string().contains("more than 10000 --config expansions"), "{err}");
        // A modest diamond still expands in full.
        let diamond = rc("build:a --config=b --config=b\nbuild:b --stamp\n");
        let out = diamond.expand_configs("build", vec![("--config=a".into(), "cli".into())]).unwrap();
        assert_eq!(args(&out), ["--stamp", "--stamp"]);
    }

    #[test]
    fn announce_names_each_file_and_command_as_bazel_does() {
        let rc = rc("common --keep_going\nbuild --stamp\nbuild:ci --jobs=2\n");
        let file = &rc.lines[0].file;
        assert_eq!(
            rc.announce("build"),
            [
                format!("INFO: Reading rc options for 'build' from {file}:\n  Inherited 'common' options: --keep_going"),
                format!("INFO: Reading rc options for 'build' from {file}:\n  'build' options: --stamp"),
            ]
        );
        let (_, notes) = rc.expand_configs_announced("build", vec![("--config=ci".into(), "command line".into())]).unwrap();
        assert_eq!(notes, [format!("INFO: Found applicable config definition build:ci in file {file}: --jobs=2")]);
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_words(r#"build --x="a b" 'c d' e\ f # g"#).unwrap(), ["build", "--x=a b", "c d", "e f"]);
    }
}
