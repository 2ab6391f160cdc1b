//! Scanning Go source files without running Go: package name, imports, `//go:embed` patterns and
//! build constraints of one file ([`scan`]), and the `go build` rules deciding whether a file is
//! part of its package for a GOOS/GOARCH/tags combination ([`matches()`]).
//!
//! Like go/build, only the header (package clause and import declarations) is tokenised: the
//! rest of the file is never parsed, so we cannot reject code that the Go toolchain accepts.
//! The behaviour mirrors go/build (`go/build/build.go`, `read.go`, `internal/syslist`).

use thiserror::Error;

/// Line 0 means the error is not tied to a line (e.g. a hand-built [`GoFile`]).
#[derive(Debug, Error, PartialEq, Eq)]
#[error("{file}:{line}: {reason}")]
pub struct GoSourceError {
    pub file: String,
    pub line: usize,
    pub reason: String,
}

/// What ocib needs to know about one .go file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoFile {
    /// Package clause name.
    pub package: String,
    /// Import paths, in order, deduplicated ("C" included if present).
    pub imports: Vec<String>,
    /// Patterns of `//go:embed` directives, in order, deduplicated.
    pub embed_patterns: Vec<String>,
    /// The `//go:build` expression, if any (without the prefix).
    pub constraint: Option<String>,
    /// Expressions of the legacy `// +build` lines that go/build honours (those before the last
    /// blank line of the header). Only evaluated when there is no `//go:build` line.
    pub plus_build: Vec<String>,
    /// The file name ends with `_test.go`.
    pub is_test: bool,
}

/// Build context used to filter files like `go build` does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildContext {
    pub goos: String,
    pub goarch: String,
    pub cgo_enabled: bool,
    pub tags: Vec<String>,
    /// e.g. 27 for go1.27: the tags go1.1 ..= go1.27 are satisfied.
    pub go_version_minor: u32,
}

// Copied from Go's internal/syslist: a file name suffix only constrains the build if it is known.
const KNOWN_OS: &str = "aix android darwin dragonfly freebsd hurd illumos ios js linux nacl netbsd \
    openbsd plan9 solaris wasip1 windows zos";
const UNIX_OS: &str = "aix android darwin dragonfly freebsd hurd illumos ios linux netbsd openbsd solaris";
const KNOWN_ARCH: &str = "386 amd64 amd64p32 arm armbe arm64 arm64be loong64 mips mipsle mips64 \
    mips64le mips64p32 mips64p32le ppc ppc64 ppc64le riscv riscv64 s390 s390x sparc sparc64 wasm";

fn listed(list: &str, word: &str) -> bool {
    list.split_whitespace().any(|w| w == word)
}

/// Guards the recursive expression parser against stack overflow on hostile input.
const MAX_DEPTH: usize = 100;

fn error(file: &str, line: usize, reason: impl Into<String>) -> GoSourceError {
    GoSourceError { file: file.to_owned(), line, reason: reason.into() }
}

/// Like [`scan`], for raw file contents: Go source must be UTF-8.
pub fn scan_bytes(file_name: &str, bytes: &[u8]) -> Result<GoFile, GoSourceError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => scan(file_name, text),
        Err(e) => {
            let line = 1 + bytes[..e.valid_up_to()].iter().filter(|&&b| b == b'\n').count();
            Err(error(file_name, line, "invalid UTF-8 encoding (Go source must be UTF-8)"))
        }
    }
}

/// Scans the header of one Go file, and its `//go:embed` lines.
pub fn scan(file_name: &str, text: &str) -> Result<GoFile, GoSourceError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    if let Some(pos) = text.find('\0') {
        return Err(error(file_name, line_of(text, pos), "illegal NUL byte"));
    }
    let (constraint, plus_build) = scan_header(file_name, text)?;
    let mut lx = Lexer { file: file_name, src: text, pos: 0 };
    if lx.next()? != Some(Tok::Ident("package".into())) {
        return Err(lx.error_here("missing package clause (expected 'package' before any code)"));
    }
    let Some(Tok::Ident(package)) = lx.next()? else {
        return Err(lx.error_here("expected package name after 'package'"));
    };
    let mut imports = Vec::new();
    loop {
        match lx.next()? {
            Some(Tok::Punct(';')) => continue,
            Some(Tok::Ident(kw)) if kw == "import" => {}
            _ => break, // first non-import declaration (or end of file): the header is over
        }
        match lx.next()? {
            Some(Tok::Punct('(')) => loop {
                match lx.next()? {
                    Some(Tok::Punct(')')) => break,
                    Some(Tok::Punct(';')) => continue,
                    None => return Err(lx.error_here("unterminated import group")),
                    Some(tok) => push_unique(&mut imports, lx.import_spec(tok)?),
                }
            },
            Some(tok) => push_unique(&mut imports, lx.import_spec(tok)?),
            None => return Err(lx.error_here("expected import path")),
        }
    }
    // Like go/build we only honour `//go:embed` in `//` comments, but we do not check that a
    // `var` follows: the compiler reports misplaced directives.
    let mut embed_patterns = Vec::new();
    for (idx, line) in text.lines().enumerate() {
        let Some(args) = line.trim_start().strip_prefix("//go:embed") else { continue };
        if !args.starts_with(char::is_whitespace) {
            continue; // e.g. //go:embedded is another directive
        }
        let patterns = split_directive_args(args).map_err(|r| error(file_name, idx + 1, r))?;
        if patterns.is_empty() {
            return Err(error(file_name, idx + 1, "//go:embed requires at least one pattern"));
        }
        patterns.into_iter().for_each(|p| push_unique(&mut embed_patterns, p));
    }
    let is_test = base_name(file_name).ends_with("_test.go");
    Ok(GoFile { package, imports, embed_patterns, constraint, plus_build, is_test })
}

/// Whether the file is part of its package in `ctx`, by the rules of go/build: hidden files,
/// `_GOOS`/`_GOARCH` file name suffixes, build constraints, and cgo files when cgo is off.
/// `_test.go` files are not excluded here.
pub fn matches(file_name: &str, file: &GoFile, ctx: &BuildContext) -> Result<bool, GoSourceError> {
    let base = base_name(file_name);
    if base.starts_with(['_', '.']) || !good_os_arch_file(base, ctx) {
        return Ok(false);
    }
    // go/build puts files importing "C" in IgnoredGoFiles when cgo is disabled.
    if !ctx.cgo_enabled && file.imports.iter().any(|i| i == "C") {
        return Ok(false);
    }
    let tag = |t: &str| match_tag(t, ctx);
    if let Some(expr) = &file.constraint {
        return eval_go_build(expr, &tag).map_err(|r| error(file_name, 0, r));
    }
    Ok(file.plus_build.iter().all(|line| eval_plus_build(line, &tag)))
}

fn base_name(file_name: &str) -> &str {
    file_name.rsplit(['/', '\\']).next().unwrap_or(file_name)
}

fn push_unique(list: &mut Vec<String>, item: String) {
    if !list.contains(&item) {
        list.push(item);
    }
}

fn line_of(text: &str, pos: usize) -> usize {
    1 + text.as_bytes()[..pos.min(text.len())].iter().filter(|&&b| b == b'\n').count()
}

/// go/build's `goodOSArchFile`: only the part after the first `_` counts (so `linux.go` is
/// unconstrained), `_test` is dropped, and only known GOOS/GOARCH names constrain.
fn good_os_arch_file(base: &str, ctx: &BuildContext) -> bool {
    let stem = base.split('.').next().unwrap_or(base);
    let Some(i) = stem.find('_') else { return true };
    let mut parts: Vec<&str> = stem[i..].split('_').collect();
    if parts.last() == Some(&"test") {
        parts.pop();
    }
    match parts.as_slice() {
        [.., os, arch] if listed(KNOWN_OS, os) && listed(KNOWN_ARCH, arch) => match_tag(os, ctx) && match_tag(arch, ctx),
        [.., last] if listed(KNOWN_OS, last) || listed(KNOWN_ARCH, last) => match_tag(last, ctx),
        _ => true,
    }
}

/// go/build's `matchTag`, for the gc compiler and without GOAMD64-style feature tags.
fn match_tag(tag: &str, ctx: &BuildContext) -> bool {
    let os = ctx.goos.as_str();
    let release = tag
        .strip_prefix("go1.")
        .and_then(|n| n.parse::<u32>().ok().filter(|v| v.to_string() == n && (1..=ctx.go_version_minor).contains(v)));
    (tag == "cgo" && ctx.cgo_enabled)
        || tag == os
        || tag == ctx.goarch
        || tag == "gc"
        || (os == "android" && tag == "linux")
        || (os == "illumos" && tag == "solaris")
        || (os == "ios" && tag == "darwin")
        || (tag == "unix" && listed(UNIX_OS, os))
        || release.is_some()
        || ctx.tags.iter().any(|t| t == tag)
}

/// Finds the `//go:build` line and honoured `// +build` lines in the leading comments, following
/// go/build's `parseFileHeader`: `//go:build` may be anywhere before the first code; `+build`
/// lines only count before the last blank line that precedes the first non-`//` line.
fn scan_header(file: &str, text: &str) -> Result<(Option<String>, Vec<String>), GoSourceError> {
    let (mut go_build, mut plus_build, mut pending) = (None, Vec::new(), Vec::new());
    let (mut ended, mut in_block) = (false, false);
    'lines: for (idx, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            if !ended {
                plus_build.append(&mut pending);
            }
            continue;
        }
        ended |= !line.starts_with("//");
        if !in_block {
            if let Some(expr) = line.strip_prefix("//go:build") {
                if !(expr.is_empty() || expr.starts_with(char::is_whitespace)) {
                    // Another directive, such as //go:buildfoo.
                } else if go_build.is_some() {
                    return Err(error(file, idx + 1, "multiple //go:build lines"));
                } else {
                    let expr = expr.trim();
                    eval_go_build(expr, &|_| true).map_err(|r| error(file, idx + 1, r))?;
                    go_build = Some(expr.to_owned());
                }
            } else if let Some(rest) = line.strip_prefix("//").and_then(plus_build_args)
                && !ended
            {
                pending.push(rest.trim().to_owned());
            }
        }
        let mut rest = line;
        loop {
            if in_block {
                let Some(i) = rest.find("*/") else { continue 'lines };
                in_block = false;
                rest = rest[i + 2..].trim_start();
            } else if rest.is_empty() || rest.starts_with("//") {
                continue 'lines;
            } else if let Some(after) = rest.strip_prefix("/*") {
                in_block = true;
                rest = after;
            } else {
                break 'lines; // code: the header is over
            }
        }
    }
    Ok((go_build, plus_build))
}

/// The arguments of a `+build` comment, given the text after `//`.
fn plus_build_args(comment: &str) -> Option<&str> {
    let rest = comment.trim_start().strip_prefix("+build")?;
    (rest.is_empty() || rest.starts_with(char::is_whitespace)).then_some(rest)
}

#[derive(Debug, PartialEq, Eq)]
enum Tok {
    Ident(String),
    Str(String),
    Punct(char),
}

/// A minimal Go tokenizer, enough for the package clause and import declarations. Newlines are
/// whitespace: Go's automatic semicolons carry no information in import declarations.
struct Lexer<'a> {
    file: &'a str,
    src: &'a str,
    pos: usize,
}

impl Lexer<'_> {
    fn error_here(&self, reason: &str) -> GoSourceError {
        error(self.file, line_of(self.src, self.pos), reason)
    }

    fn next(&mut self) -> Result<Option<Tok>, GoSourceError> {
        loop {
            let rest = &self.src[self.pos..];
            let trimmed = rest.trim_start();
            self.pos += rest.len() - trimmed.len();
            if trimmed.starts_with("//") {
                self.pos += trimmed.find('\n').unwrap_or(trimmed.len());
            } else if let Some(body) = trimmed.strip_prefix("/*") {
                let Some(end) = body.find("*/") else {
                    return Err(self.error_here("unterminated block comment"));
                };
                self.pos += 2 + end + 2;
            } else {
                break;
            }
        }
        let rest = &self.src[self.pos..];
        let Some(c) = rest.chars().next() else { return Ok(None) };
        if c.is_alphabetic() || c == '_' {
            let len = rest.find(|c: char| !(c.is_alphanumeric() || c == '_')).unwrap_or(rest.len());
            self.pos += len;
            return Ok(Some(Tok::Ident(rest[..len].to_owned())));
        }
        if c == '"' || c == '`' {
            let (value, len) = quoted_prefix(rest).map_err(|r| self.error_here(r))?;
            self.pos += len;
            return Ok(Some(Tok::Str(value)));
        }
        self.pos += c.len_utf8();
        Ok(Some(Tok::Punct(c)))
    }

    /// ImportSpec = [ "." | "_" | PackageName ] ImportPath, given its first token.
    fn import_spec(&mut self, first: Tok) -> Result<String, GoSourceError> {
        let tok = match first {
            Tok::Ident(_) | Tok::Punct('.') => self.next()?,
            tok => Some(tok),
        };
        match tok {
            Some(Tok::Str(path)) if !path.is_empty() => Ok(path),
            Some(Tok::Str(_)) => Err(self.error_here("empty import path")),
            _ => Err(self.error_here("expected import path (a string literal)")),
        }
    }
}

/// Reads the Go string literal (interpreted or raw) at the start of `s`: its value and length.
fn quoted_prefix(s: &str) -> Result<(String, usize), &'static str> {
    if let Some(body) = s.strip_prefix('`') {
        let end = body.find('`').ok_or("unterminated raw string literal")?;
        return Ok((body[..end].replace('\r', ""), end + 2));
    }
    let mut out = String::new();
    let mut chars = s.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, i + 1)),
            '\n' => break,
            '\\' => {
                let (_, e) = chars.next().ok_or("unterminated string literal")?;
                let mut digits = |n: usize, radix: u32| -> Result<u32, &'static str> {
                    (0..n).try_fold(0u32, |acc, _| {
                        let d = chars.next().and_then(|(_, c)| c.to_digit(radix));
                        Ok(acc * radix + d.ok_or("invalid escape sequence in string literal")?)
                    })
                };
                let code = match e {
                    'a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '\\' | '"' => {
                        let i = "abfnrtv\\\"".find(e).unwrap_or(0);
                        u32::from(b"\x07\x08\x0c\n\r\t\x0b\\\""[i])
                    }
                    'x' => digits(2, 16)?,
                    'u' => digits(4, 16)?,
                    'U' => digits(8, 16)?,
                    '0'..='7' => e.to_digit(8).unwrap_or(0) * 64 + digits(2, 8)?,
                    _ => return Err("unknown escape sequence in string literal"),
                };
                // Byte escapes above 0x7f would make the value non-UTF-8: no valid path has them.
                if matches!(e, 'x' | '0'..='7') && code > 0x7f {
                    return Err("non-ASCII byte escape in string literal");
                }
                out.push(char::from_u32(code).ok_or("invalid Unicode escape in string literal")?);
            }
            c => out.push(c),
        }
    }
    Err("unterminated string literal")
}

/// Splits directive arguments like go/ast's `Directive.ParseArgs`: space-separated words, or Go
/// string literals, which must be followed by a space or the end.
fn split_directive_args(mut args: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    loop {
        args = args.trim_start();
        if args.is_empty() {
            return Ok(out);
        }
        if args.starts_with(['"', '`']) {
            let bad = || format!("invalid quoted string in //go:embed: {args}");
            let (value, len) = quoted_prefix(args).map_err(|_| bad())?;
            if args[len..].chars().next().is_some_and(|c| !c.is_whitespace()) {
                return Err(bad());
            }
            out.push(value);
            args = &args[len..];
        } else {
            let end = args.find(char::is_whitespace).unwrap_or(args.len());
            out.push(args[..end].to_owned());
            args = &args[end..];
        }
    }
}

fn is_valid_tag(word: &str) -> bool {
    !word.is_empty() && word.chars().all(|c| c.is_alphanumeric() || c == '_' || c == '.')
}

/// Evaluates a `//go:build` expression (`||` binds looser than `&&`, then `!` and parentheses),
/// asking `tag` about each tag. The whole expression is always parsed, so any `tag` validates.
fn eval_go_build(expr: &str, tag: &dyn Fn(&str) -> bool) -> Result<bool, String> {
    let mut tokens = Vec::new();
    let mut rest = expr.trim_start();
    while let Some(c) = rest.chars().next() {
        let len = match c {
            '(' | ')' | '!' => 1,
            '&' | '|' if rest[1..].starts_with(c) => 2,
            _ => rest.find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '.')).unwrap_or(rest.len()),
        };
        if len == 0 {
            return Err(format!("invalid //go:build expression '{expr}': unexpected '{c}'"));
        }
        tokens.push(&rest[..len]);
        rest = rest[len..].trim_start();
    }
    let mut parser = BuildParser { tokens: &tokens, pos: 0, tag };
    match (parser.or(0), tokens.get(parser.pos)) {
        (Ok(value), None) => Ok(value),
        (Ok(_), Some(tok)) => Err(format!("invalid //go:build expression '{expr}': unexpected '{tok}'")),
        (Err(reason), _) => Err(format!("invalid //go:build expression '{expr}': {reason}")),
    }
}

struct BuildParser<'a> {
    tokens: &'a [&'a str],
    pos: usize,
    tag: &'a dyn Fn(&str) -> bool,
}

impl BuildParser<'_> {
    fn eat(&mut self, tok: &str) -> bool {
        let hit = self.tokens.get(self.pos) == Some(&tok);
        self.pos += usize::from(hit);
        hit
    }

    // `|=` and `&=` do not short-circuit: the right operand must be parsed anyway.
    fn or(&mut self, depth: usize) -> Result<bool, String> {
        let mut value = self.and(depth)?;
        while self.eat("||") {
            value |= self.and(depth)?;
        }
        Ok(value)
    }

    fn and(&mut self, depth: usize) -> Result<bool, String> {
        let mut value = self.not(depth)?;
        while self.eat("&&") {
            value &= self.not(depth)?;
        }
        Ok(value)
    }

    fn not(&mut self, depth: usize) -> Result<bool, String> {
        if depth > MAX_DEPTH {
            return Err("expression nested too deeply".into());
        }
        let tok = self.tokens.get(self.pos).copied();
        self.pos += 1;
        match tok {
            Some("!") => Ok(!self.not(depth + 1)?),
            Some("(") => {
                let value = self.or(depth + 1)?;
                if !self.eat(")") {
                    return Err("missing ')'".into());
                }
                Ok(value)
            }
            Some(name) if is_valid_tag(name) => Ok((self.tag)(name)),
            Some(tok) => Err(format!("unexpected '{tok}'")),
            None => Err("unexpected end of expression".into()),
        }
    }
}

/// Evaluates one `// +build` line like go/build/constraint: space-separated options are ORed,
/// comma-separated terms ANDed, each optionally negated by one `!`. A malformed term (or an
/// empty line) stands for the tag "ignore"; a line with over 100 operators is skipped.
fn eval_plus_build(line: &str, tag: &dyn Fn(&str) -> bool) -> bool {
    fn valid_or_ignore(name: &str) -> &str {
        if is_valid_tag(name) { name } else { "ignore" }
    }
    let term = |t: &str| match t.strip_prefix('!') {
        _ if t.starts_with("!!") || t == "!" => tag("ignore"),
        Some(name) => !tag(valid_or_ignore(name)),
        None => tag(valid_or_ignore(t)),
    };
    match line.split_whitespace().map(|option| option.split(',').count()).sum::<usize>() {
        0 => tag("ignore"),
        102.. => true,
        _ => line.split_whitespace().any(|option| option.split(',').all(&term)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(goos: &str, goarch: &str, cgo: bool) -> BuildContext {
        let (goos, goarch) = (goos.to_owned(), goarch.to_owned());
        BuildContext { goos, goarch, cgo_enabled: cgo, tags: vec!["mytag".into()], go_version_minor: 27 }
    }

    fn build_ok(header: &str, ctx: &BuildContext) -> bool {
        let file = scan("x.go", &format!("{header}\n\npackage x\n")).expect("scan");
        matches("x.go", &file, ctx).expect("matches")
    }

    #[test]
    fn imports() {
        let src = "// Copyright\n/* block */ package main // trailing\n\nimport \"fmt\"\nimport f \"flag\"; import . `os`\n\
            import (\n\t_ \"embed\" // for go:embed\n\tstr /* alias */ \"strings\"\n\t\"fmt\"\n\t\"net/\\u0068ttp\"; \"C\"\n)\n\n\
            //go:embed a.txt \"b c.txt\" static/*\n//go:embed `d e` a.txt\nvar x string\nimport \"ignored\"\n";
        let f = scan("dir/main.go", src).expect("scan");
        assert_eq!(f.package, "main");
        assert_eq!(f.imports, ["fmt", "flag", "os", "embed", "strings", "net/http", "C"]);
        assert_eq!(f.embed_patterns, ["a.txt", "b c.txt", "static/*", "d e"]);
        assert_eq!((f.constraint, f.is_test), (None, false));
        assert!(scan("a_test.go", "package a_test").expect("scan").is_test);
    }

    #[test]
    fn constraints() {
        let linux = ctx("linux", "amd64", true);
        let f = scan("x.go", "// Doc.\n\n//go:build linux && amd64\n// +build ignore\n\npackage x").expect("scan");
        assert_eq!(f.constraint.as_deref(), Some("linux && amd64"));
        assert!(matches("x.go", &f, &linux).expect("matches"), "+build ignored when //go:build exists");
        let cases = [
            ("//go:build linux && amd64", true, false),
            ("//go:build !windows", true, true),
            ("//go:build (linux || darwin) && !cgo", false, true),
            ("//go:build unix && gc && mytag && go1.20 && go1.27", true, true),
            ("//go:build go1.28 || go1.020 || gccgo", false, false),
            ("//go:build ignore", false, false),
            ("// +build linux,amd64 darwin\n// +build !windows", true, true),
            ("// +build ignore", false, false),
            ("// +build !!linux", false, false), // a malformed term means "ignore"
            ("// +build", false, false),
            ("/* block\n*/\n//go:build ignore", false, false),
            ("//go:build !cgo\n// +build ignore", false, true),
        ];
        for (header, on_linux, on_darwin_nocgo) in cases {
            assert_eq!(build_ok(header, &linux), on_linux, "{header} on linux");
            assert_eq!(build_ok(header, &ctx("darwin", "arm64", false)), on_darwin_nocgo, "{header}");
        }
        // +build lines after the last blank line before the package clause do not count.
        let src = "// Copyright\n\n// +build ignore\n// Doc.\npackage x";
        assert!(scan("x.go", src).expect("scan").plus_build.is_empty());
        assert!(build_ok("//go:build linux", &ctx("android", "arm64", true)));
    }

    #[test]
    fn file_names() {
        let f = scan("x.go", "package x").expect("scan");
        let m = |name: &str, goos: &str, goarch: &str| matches(name, &f, &ctx(goos, goarch, true)).expect("ok");
        assert!(m("x_linux.go", "linux", "amd64") && !m("x_linux.go", "darwin", "amd64"));
        assert!(m("x_arm64.go", "linux", "arm64") && !m("x_arm64.go", "linux", "amd64"));
        assert!(m("x_linux_amd64.go", "linux", "amd64") && !m("x_linux_amd64.go", "linux", "arm64"));
        assert!(m("x_test.go", "linux", "amd64") && !m("x_windows_test.go", "linux", "amd64"));
        assert!(m("linux.go", "darwin", "amd64") && m("x_unix.go", "windows", "amd64"));
        assert!(m("x_linux.go", "android", "arm64") && m("x_darwin.go", "ios", "arm64"));
        assert!(!m("_x.go", "linux", "amd64") && !m("pkg/.x.go", "linux", "amd64"));
        let cgo = scan("c.go", "package x\nimport \"C\"").expect("scan");
        assert!(!matches("c.go", &cgo, &ctx("linux", "amd64", false)).expect("ok"));
    }

    #[test]
    fn malformed_inputs() {
        let cases = [
            ("", "missing package clause"),
            ("// only a comment\n", "missing package clause"),
            ("func main() {}", "missing package clause"),
            ("package", "expected package name"),
            ("package x\nimport \"fmt", "unterminated string literal"),
            ("package x\nimport `fmt", "unterminated raw string literal"),
            ("package x\nimport \"\\q\"", "unknown escape"),
            ("package x\nimport \"\\xff\"", "non-ASCII byte escape"),
            ("package x /* never closed", "unterminated block comment"),
            ("package x\nimport (\n\"fmt\"\n", "unterminated import group"),
            ("package x\nimport fmt", "expected import path"),
            ("package x\nimport \"\"", "empty import path"),
            ("package x\nimport", "expected import path"),
            ("\u{1}\u{fffd}@#", "missing package clause"),
            ("package x\0", "illegal NUL byte"),
            ("//go:build linux &&\n\npackage x", "invalid //go:build expression"),
            ("//go:build (a\n\npackage x", "missing ')'"),
            ("//go:build a b\n\npackage x", "unexpected 'b'"),
            ("//go:build a\n//go:build b\n\npackage x", "multiple //go:build lines"),
            ("package x\n//go:embed \"a\"b", "invalid quoted string"),
            ("package x\n//go:embed ", "at least one pattern"),
        ];
        for (src, want) in cases {
            let err = scan("bad.go", src).expect_err(src).to_string();
            assert!(err.starts_with("bad.go:") && err.contains(want), "{src:?}: {err}");
        }
        let deep = format!("//go:build {}a\n\npackage x", "(".repeat(5000));
        assert!(scan("deep.go", &deep).is_err());
        let deep = format!("//go:build {}a\n\npackage x", "!".repeat(5000));
        assert!(scan("deep.go", &deep).is_err());
        let err = scan_bytes("bin.go", b"package x\n\xff\xfe").expect_err("non-UTF-8").to_string();
        assert_eq!(err, "bin.go:2: invalid UTF-8 encoding (Go source must be UTF-8)");
        assert_eq!(scan_bytes("ok.go", b"\xef\xbb\xbfpackage ok").expect("BOM").package, "ok");
    }
}
