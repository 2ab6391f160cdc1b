//! Reading Starlark source files (BUILD, .bzl, WORKSPACE, MODULE.bazel) before they reach the
//! interpreter: decoding their bytes, and refusing text nested so deeply that the (recursive)
//! compiler and evaluator would overflow the thread's stack.

use std::path::Path;

/// How deeply expressions and blocks may nest, counted by [`check_nesting`]. Real BUILD and
/// .bzl files stay below a few dozen; starlark-rust's compiler and evaluator recurse once per
/// level and abort the process on stack overflow at a few thousand levels (a few hundred on a
/// 2 MiB thread), so the limit sits far above real files and far below the crash.
pub const MAX_NESTING: usize = 1000;

/// Reads a Starlark file as text.
///
/// Bazel reads BUILD and .bzl files as Latin-1 (`ParserInput.fromLatin1`): every byte is one
/// character, so a stray 0xE9 in a comment or string loads instead of failing. ocib keeps a
/// file that is valid UTF-8 as UTF-8, so non-ASCII file names in `glob()`, `srcs` and labels
/// still name the files on disk (Bazel gets the same result by re-encoding each char as one
/// byte on the way out); only a file that is not valid UTF-8 is decoded byte-per-char, as
/// Bazel would. The one visible difference: `len("é")` in a UTF-8 file is 1 here, 2 in Bazel.
pub fn read_source(path: &Path) -> std::io::Result<String> {
    Ok(decode(std::fs::read(path)?))
}

/// Decodes a Starlark file's bytes (see [`read_source`]).
pub fn decode(bytes: Vec<u8>) -> String {
    match String::from_utf8(bytes) {
        Ok(text) => text,
        Err(e) => e.into_bytes().iter().map(|&b| char::from(b)).collect(),
    }
}

/// Where nesting went past [`MAX_NESTING`]: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooDeep {
    pub line: usize,
    pub column: usize,
}

impl TooDeep {
    /// The message, located in `file`.
    pub fn message(&self, file: &str) -> String {
        format!(
            "{file}:{}:{}: expression or block nested more than {MAX_NESTING} levels deep (brackets, operator chains such as `a + b + ...`, or indented blocks); split it up",
            self.line, self.column
        )
    }
}

/// Checks that `text` nests less than [`MAX_NESTING`] levels, without parsing it.
///
/// The depth counted bounds the depth of the syntax tree the parser would build: each open
/// bracket, each operator, `.`, `if`/`else`/`not`/`lambda`/`and`/`or`/`in` and each call or
/// index trailer (`f()()`, `x[0][0]`) since the last `,`, `:` or `=` at the same bracket
/// level, plus the indentation depth of the line. Strings and comments are skipped.
pub fn check_nesting(text: &str) -> Result<(), TooDeep> {
    Scanner::default().run(text)
}

#[derive(Default)]
struct Scanner {
    /// Per open bracket: the operator-chain count of the element being read at that level.
    frames: Vec<usize>,
    /// The chain count at bracket level 0.
    top: usize,
    /// Indentation widths of the enclosing blocks.
    indents: Vec<usize>,
    /// Sum of every chain count and the bracket depth.
    depth: usize,
    line: usize,
    column: usize,
    /// The previous significant token ends an operand (name, literal, closing bracket), so an
    /// opening bracket after it is a call or index trailer.
    after_operand: bool,
}

impl Scanner {
    fn chain(&mut self) -> &mut usize {
        self.frames.last_mut().unwrap_or(&mut self.top)
    }

    fn bump(&mut self) -> Result<(), TooDeep> {
        *self.chain() += 1;
        self.depth += 1;
        self.check()
    }

    fn reset_chain(&mut self) {
        let c = std::mem::take(self.chain());
        self.depth -= c;
    }

    fn check(&self) -> Result<(), TooDeep> {
        if self.depth + self.indents.len() > MAX_NESTING {
            return Err(TooDeep { line: self.line, column: self.column });
        }
        Ok(())
    }

    fn run(mut self, text: &str) -> Result<(), TooDeep> {
        let chars: Vec<char> = text.chars().collect();
        let mut i = 0;
        self.line = 1;
        let mut line_start = true;
        let mut line_start_index = 0;
        while i < chars.len() {
            let c = chars[i];
            self.column = i - line_start_index + 1;
            if line_start && self.frames.is_empty() {
                // Indentation of a new logical line (blank and comment-only lines do not count).
                let mut width = 0;
                while i + width < chars.len() && matches!(chars[i + width], ' ' | '\t') {
                    width += 1;
                }
                let next = chars.get(i + width).copied();
                if !matches!(next, None | Some('\n' | '\r' | '#')) {
                    while self.indents.last().is_some_and(|&w| w >= width) {
                        self.indents.pop();
                    }
                    if width > 0 {
                        self.indents.push(width);
                    }
                    self.column = i + width - line_start_index + 1;
                    self.check()?;
                }
                i += width;
                line_start = false;
                continue;
            }
            match c {
                '\n' => {
                    i += 1;
                    self.line += 1;
                    line_start_index = i;
                    if self.frames.is_empty() {
                        line_start = true;
                        self.reset_chain();
                        self.after_operand = false;
                    }
                    continue;
                }
                '\\' if chars.get(i + 1) == Some(&'\n') => {
                    // An explicit line continuation: the logical line goes on.
                    i += 2;
                    self.line += 1;
                    line_start_index = i;
                    continue;
                }
                '#' => {
                    while i < chars.len() && chars[i] != '\n' {
                        i += 1;
                    }
                    continue;
                }
                '"' | '\'' => {
                    i = self.skip_string(&chars, i, &mut line_start_index);
                    self.after_operand = true;
                    continue;
                }
                '(' | '[' | '{' => {
                    if self.after_operand {
                        self.bump()?;
                    }
                    self.frames.push(0);
                    self.depth += 1;
                    self.check()?;
                    self.after_operand = false;
                }
                ')' | ']' | '}' => {
                    if let Some(c) = self.frames.pop() {
                        self.depth -= c + 1;
                    }
                    self.after_operand = true;
                }
                ',' | ':' | ';' => {
                    self.reset_chain();
                    self.after_operand = false;
                }
                '=' if chars.get(i + 1) != Some(&'=') && !matches!(chars.get(i.wrapping_sub(1)), Some('=' | '!' | '<' | '>')) => {
                    self.reset_chain();
                    self.after_operand = false;
                }
                '+' | '-' | '*' | '/' | '%' | '|' | '&' | '^' | '~' | '<' | '>' | '!' | '=' | '.' => {
                    // A number's decimal point or exponent sign is not an operator, but counting
                    // it only makes the bound looser.
                    if !(c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) {
                        self.bump()?;
                    }
                    self.after_operand = false;
                }
                c if c.is_alphanumeric() || c == '_' => {
                    let start = i;
                    while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                        i += 1;
                    }
                    let word: String = chars[start..i].iter().collect();
                    // A string prefix (r"...", b'...').
                    if matches!(chars.get(i), Some('"' | '\'')) && matches!(word.as_str(), "r" | "b" | "rb" | "br" | "R" | "B") {
                        continue;
                    }
                    if matches!(word.as_str(), "if" | "else" | "not" | "and" | "or" | "in" | "lambda" | "for") {
                        self.bump()?;
                        self.after_operand = false;
                    } else {
                        self.after_operand = true;
                    }
                    continue;
                }
                _ => {}
            }
            i += 1;
        }
        Ok(())
    }

    /// Skips the string literal starting at `i` (a quote); returns the index after it. An
    /// unterminated string stops at the end of its line (the parser reports it).
    fn skip_string(&mut self, chars: &[char], mut i: usize, line_start_index: &mut usize) -> usize {
        let quote = chars[i];
        let triple = chars.get(i + 1) == Some(&quote) && chars.get(i + 2) == Some(&quote);
        i += if triple { 3 } else { 1 };
        while i < chars.len() {
            match chars[i] {
                '\\' => {
                    if chars.get(i + 1) == Some(&'\n') {
                        self.line += 1;
                        *line_start_index = i + 2;
                    }
                    i += 2;
                }
                '\n' if !triple => return i,
                '\n' => {
                    self.line += 1;
                    i += 1;
                    *line_start_index = i;
                }
                c if c == quote => {
                    if !triple {
                        return i + 1;
                    }
                    if chars.get(i + 1) == Some(&quote) && chars.get(i + 2) == Some(&quote) {
                        return i + 3;
                    }
                    i += 1;
                }
                _ => i += 1,
            }
        }
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latin1_bytes_decode_one_char_each_and_utf8_stays_utf8() {
        assert_eq!(decode(b"# caf\xe9\n".to_vec()), "# caf\u{e9}\n");
        assert_eq!(decode("# café\n".as_bytes().to_vec()), "# café\n");
    }

    #[test]
    fn real_code_passes() {
        let text = "load(\"//x:y.bzl\", \"z\")\n\ndef f(a, b = [1, 2]):\n    if a:\n        return {\"k\": [x + 1 for x in b if x > 0]}\n    return a.b.c(d)[0] or not b\n\nx = \"((((\" + '[[[' + \"\"\"\n(((\"\"\"  # ((((\n";
        assert_eq!(check_nesting(text), Ok(()));
        let long_list = format!("x = [{}]\n", vec!["\"a\""; 100_000].join(", "));
        assert_eq!(check_nesting(&long_list), Ok(()));
        let many_lines = "x = 1 + 2 + 3\n".repeat(10_000);
        assert_eq!(check_nesting(&many_lines), Ok(()));
    }

    #[test]
    fn deep_brackets_and_chains_are_refused_where_they_go_too_deep() {
        let brackets = format!("\nx = {}{}\n", "[".repeat(5000), "]".repeat(5000));
        assert_eq!(check_nesting(&brackets), Err(TooDeep { line: 2, column: 5 + MAX_NESTING }));
        let plus = format!("x = [1]{}\n", " + [1]".repeat(5000));
        assert!(matches!(check_nesting(&plus), Err(TooDeep { line: 1, .. })));
        let calls = format!("x = f{}\n", "()".repeat(5000));
        assert!(check_nesting(&calls).is_err());
        let attrs = format!("x = a{}\n", ".b".repeat(5000));
        assert!(check_nesting(&attrs).is_err());
        let unary = format!("x = {}1\n", "-".repeat(5000));
        assert!(check_nesting(&unary).is_err());
        let mut blocks = String::new();
        for d in 0..2000 {
            blocks.push_str(&format!("{}if x:\n", " ".repeat(d)));
        }
        blocks.push_str(&format!("{}pass\n", " ".repeat(2000)));
        assert!(matches!(check_nesting(&blocks), Err(TooDeep { line, .. }) if line == MAX_NESTING + 1));
        // Just below the limit is fine.
        let ok = format!("x = {}{}\n", "[".repeat(MAX_NESTING - 1), "]".repeat(MAX_NESTING - 1));
        assert_eq!(check_nesting(&ok), Ok(()));
    }
}
