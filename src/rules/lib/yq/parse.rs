//! Lexer and parser for the subset of mikefarah yq v4's expression language that base-image
//! macros use. The grammar follows jq's precedence (yq's lexer table gives the same order):
//! `|` < `,` < `//` < assignments < `or` < `and` < comparisons < `+ -` < `* / %` and the
//! merges `*+ *d *? *n` < postfix paths. `X as $v | body` and yq's `X as $v ireduce (init;
//! update)` bind at term level, as jq's grammar does.

use anyhow::{Result, anyhow};
use serde_json::Value;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `.`
    Identity,
    /// `..`: the value and every value below it.
    Recurse,
    /// `target.key` / `target["key"]`.
    Index(Box<Expr>, Box<Expr>),
    /// `target[]`
    Iterate(Box<Expr>),
    /// `target?`: errors become no output.
    Try(Box<Expr>),
    Pipe(Box<Expr>, Box<Expr>),
    Comma(Box<Expr>, Box<Expr>),
    Literal(Value),
    /// A string with `\(expr)` interpolations.
    Interp(Vec<StrPart>),
    /// `[expr]` (`None`: `[]`).
    Array(Option<Box<Expr>>),
    /// `{k: v, ...}`; a key without value takes `.k`.
    Object(Vec<(Expr, Option<Expr>)>),
    Neg(Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    /// `a // b`
    Alt(Box<Expr>, Box<Expr>),
    /// `lhs = rhs`, `lhs |= rhs`, `lhs += rhs` …
    Assign(AssignOp, Box<Expr>, Box<Expr>),
    Call(String, Vec<Expr>),
    Var(String),
    /// `src as $var | body`
    As(Box<Expr>, String, Box<Expr>),
    /// `src as $var ireduce (init; update)` and jq's `reduce src as $var (init; update)`.
    Reduce(Box<Expr>, String, Box<Expr>, Box<Expr>),
    If(Box<Expr>, Box<Expr>, Option<Box<Expr>>),
}

/// The functions (name, arity) the evaluator implements; anything else is refused when the
/// expression is parsed, so the error names its position.
pub const FUNCTIONS: &[(&str, usize)] = &[
    ("empty", 0),
    ("not", 0),
    ("length", 0),
    ("keys", 0),
    ("type", 0),
    ("tag", 0),
    ("fi", 0),
    ("file_index", 0),
    ("fileIndex", 0),
    ("di", 0),
    ("document_index", 0),
    ("documentIndex", 0),
    ("select", 1),
    ("has", 1),
    ("to_entries", 0),
    ("from_entries", 0),
    ("with_entries", 1),
    ("map", 1),
    ("map_values", 1),
    ("del", 1),
    ("add", 0),
    ("any", 0),
    ("all", 0),
    ("first", 0),
    ("last", 0),
    ("first", 1),
    ("reverse", 0),
    ("sort", 0),
    ("sort_by", 1),
    ("unique_by", 1),
    ("group_by", 1),
    ("unique", 0),
    ("flatten", 0),
    ("min", 0),
    ("max", 0),
    ("contains", 1),
    ("tostring", 0),
    ("to_string", 0),
    ("tonumber", 0),
    ("to_number", 0),
    ("tojson", 0),
    ("to_json", 0),
    ("ascii_downcase", 0),
    ("downcase", 0),
    ("ascii_upcase", 0),
    ("upcase", 0),
    ("trim", 0),
    ("join", 1),
    ("split", 1),
    ("startswith", 1),
    ("endswith", 1),
    ("test", 1),
    ("sub", 2),
    ("ltrimstr", 1),
    ("rtrimstr", 1),
    ("sort_keys", 1),
    ("omit", 1),
    ("pick", 1),
    ("error", 0),
    ("error", 1),
];

/// A piece of an interpolated string.
#[derive(Debug, Clone, PartialEq)]
pub enum StrPart {
    Text(String),
    Expr(Expr),
}

/// How `*` merges: yq's flags after `*` (`+` append arrays, `d` merge arrays by index, `?` only
/// keys that exist, `n` only new keys, `c` keep the left side's style — ignored here).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MergeFlags {
    pub append: bool,
    pub deep_arrays: bool,
    pub only_existing: bool,
    pub only_new: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BinOp {
    Add,
    Sub,
    Mul(MergeFlags),
    Div,
    Mod,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AssignOp {
    /// `=`
    Set,
    /// `|=`
    Update,
    /// `+=`, `-=`, `*=` …: `lhs |= . op $rhs` with rhs evaluated against the input.
    Arith(BinOp),
    /// `//=`
    Alt,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Dot,
    DotDot,
    /// `.name` (or `."name"`)
    Field(String),
    Ident(String),
    Var(String),
    Num(Value),
    Str(Vec<StrPart>),
    Op(&'static str),
    Mul(MergeFlags),
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
}

const OPS: &[&str] = &[
    "|=", "+=", "-=", "*=", "/=", "%=", "//=", "==", "!=", "<=", ">=", "//", "|", ",", "(", ")", "[", "]", "{", "}", ":", ";", "=", "<",
    ">", "+", "-", "/", "%", "?",
];

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn err(&self, at: usize, msg: impl std::fmt::Display) -> anyhow::Error {
        anyhow!("{msg} at position {} in expression '{}'", at + 1, self.src)
    }

    fn tokens(mut self) -> Result<Vec<(Tok, usize)>> {
        let mut out = Vec::new();
        loop {
            let trimmed = self.rest().trim_start();
            self.pos = self.src.len() - trimmed.len();
            if trimmed.starts_with('#') {
                let end = trimmed.find('\n').unwrap_or(trimmed.len());
                self.pos += end;
                continue;
            }
            let Some(c) = trimmed.chars().next() else { return Ok(out) };
            let start = self.pos;
            let tok = if trimmed.starts_with("..") {
                self.pos += 2;
                Tok::DotDot
            } else if c == '.' {
                self.pos += 1;
                let r = self.rest();
                if r.starts_with(|c: char| is_ident_start(c)) {
                    let n = r.find(|c: char| !is_ident(c) && c != '-').unwrap_or(r.len());
                    // yq allows `-` in bare keys (`.foo-bar`), as long as it is not an operator
                    // followed by space; trailing dashes belong to the next token.
                    let name = r[..n].trim_end_matches('-');
                    self.pos += name.len();
                    Tok::Field(name.to_owned())
                } else if r.starts_with('"') {
                    self.pos += 1;
                    let parts = self.string()?;
                    Tok::Field(plain_text(&parts).ok_or_else(|| self.err(start, "interpolation is not allowed in a key"))?)
                } else {
                    Tok::Dot
                }
            } else if c == '$' {
                self.pos += 1;
                let r = self.rest();
                let n = r.find(|c: char| !is_ident(c)).unwrap_or(r.len());
                if n == 0 {
                    return Err(self.err(start, "expected a variable name after '$'"));
                }
                self.pos += n;
                Tok::Var(r[..n].to_owned())
            } else if c == '"' {
                self.pos += 1;
                Tok::Str(self.string()?)
            } else if c.is_ascii_digit() {
                let r = self.rest();
                let n = r.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == 'E')).unwrap_or(r.len());
                let text = &r[..n];
                self.pos += n;
                let num = if let Ok(i) = text.parse::<i64>() {
                    Value::from(i)
                } else {
                    let f: f64 = text.parse().map_err(|_| self.err(start, format!("bad number '{text}'")))?;
                    Value::from(f)
                };
                Tok::Num(num)
            } else if is_ident_start(c) {
                let r = self.rest();
                let n = r.find(|c: char| !is_ident(c)).unwrap_or(r.len());
                self.pos += n;
                Tok::Ident(r[..n].to_owned())
            } else if c == '*' {
                self.pos += 1;
                if self.rest().starts_with('=') {
                    self.pos += 1;
                    Tok::Op("*=")
                } else {
                    // Flags are a run of `+ d ? n c` right after `*` (`*+`, `*?d`, `*nd`); a
                    // run followed by a name (`* name`) keeps only its symbols.
                    let r = self.rest();
                    let mut run = r.chars().take_while(|c| "+d?nc".contains(*c)).count();
                    if r[run..].starts_with(is_ident) {
                        run = r.chars().take_while(|c| "+?".contains(*c)).count();
                    }
                    let mut flags = MergeFlags::default();
                    for c in r[..run].chars() {
                        match c {
                            '+' => flags.append = true,
                            'd' => flags.deep_arrays = true,
                            '?' => flags.only_existing = true,
                            'n' => flags.only_new = true,
                            _ => {}
                        }
                    }
                    self.pos += run;
                    Tok::Mul(flags)
                }
            } else if let Some(op) = OPS.iter().find(|op| trimmed.starts_with(**op)) {
                self.pos += op.len();
                Tok::Op(op)
            } else {
                return Err(self.err(start, format!("unexpected character '{c}'")));
            };
            out.push((tok, start));
        }
    }

    /// The rest of a string after its opening quote, with `\(...)` parsed.
    fn string(&mut self) -> Result<Vec<StrPart>> {
        let start = self.pos - 1;
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut chars = self.rest().char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.pos += i + 1;
                    if !text.is_empty() || parts.is_empty() {
                        parts.push(StrPart::Text(text));
                    }
                    return Ok(parts);
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => text.push('\n'),
                    Some((_, 't')) => text.push('\t'),
                    Some((_, 'r')) => text.push('\r'),
                    Some((_, '"')) => text.push('"'),
                    Some((_, '\\')) => text.push('\\'),
                    Some((_, '/')) => text.push('/'),
                    Some((j, '(')) => {
                        // Find the matching ')' by parsing the inner expression's extent.
                        let inner_start = self.pos + j + 1;
                        let mut depth = 1usize;
                        let mut end = None;
                        let mut in_str = false;
                        let mut escaped = false;
                        for (k, d) in self.src[inner_start..].char_indices() {
                            if in_str {
                                match (escaped, d) {
                                    (true, _) => escaped = false,
                                    (false, '\\') => escaped = true,
                                    (false, '"') => in_str = false,
                                    _ => {}
                                }
                                continue;
                            }
                            match d {
                                '"' => in_str = true,
                                '(' => depth += 1,
                                ')' => {
                                    depth -= 1;
                                    if depth == 0 {
                                        end = Some(inner_start + k);
                                        break;
                                    }
                                }
                                _ => {}
                            }
                        }
                        let end = end.ok_or_else(|| self.err(inner_start - 2, "unclosed '\\('"))?;
                        let inner = parse_at(self.src, inner_start, end)?;
                        if !text.is_empty() {
                            parts.push(StrPart::Text(std::mem::take(&mut text)));
                        }
                        parts.push(StrPart::Expr(inner));
                        let consumed = end + 1 - self.pos;
                        chars = self.rest()[consumed..].char_indices();
                        self.pos += consumed;
                    }
                    Some((_, other)) => {
                        text.push('\\');
                        text.push(other);
                    }
                    None => break,
                },
                other => text.push(other),
            }
        }
        Err(self.err(start, "unterminated string"))
    }
}

fn plain_text(parts: &[StrPart]) -> Option<String> {
    let mut s = String::new();
    for p in parts {
        match p {
            StrPart::Text(t) => s.push_str(t),
            StrPart::Expr(_) => return None,
        }
    }
    Some(s)
}

/// Deepest bracket nesting an expression may have.
const MAX_NESTING: usize = 128;

/// Parses a whole expression. Errors give the 1-based character position.
pub fn parse(src: &str) -> Result<Expr> {
    parse_at(src, 0, src.len())
}

fn parse_at(full: &str, start: usize, end: usize) -> Result<Expr> {
    let lexer = Lexer { src: &full[..end], pos: start };
    let tokens = lexer.tokens()?;
    // The parser recurses once per bracket: bound the nesting so no expression can exhaust
    // the stack.
    let mut depth = 0usize;
    for (tok, at) in &tokens {
        match tok {
            Tok::Op("(" | "[" | "{") => depth += 1,
            Tok::Op(")" | "]" | "}") => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_NESTING {
            return Err(anyhow!("brackets nested deeper than {MAX_NESTING} at position {} in expression '{}'", at + 1, full));
        }
    }
    if tokens.is_empty() {
        return Ok(Expr::Identity);
    }
    let mut p = Parser { src: full, toks: tokens, i: 0 };
    let e = p.pipe()?;
    if p.i < p.toks.len() {
        return Err(p.err_here("unexpected token"));
    }
    Ok(e)
}

struct Parser<'a> {
    src: &'a str,
    toks: Vec<(Tok, usize)>,
    i: usize,
}

fn bx(e: Expr) -> Box<Expr> {
    Box::new(e)
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.i).map(|(t, _)| t)
    }

    fn err_here(&self, msg: &str) -> anyhow::Error {
        match self.toks.get(self.i) {
            Some((t, at)) => anyhow!("{msg} {t:?} at position {} in expression '{}'", at + 1, self.src),
            None => anyhow!("{msg}: unexpected end of expression '{}'", self.src),
        }
    }

    fn is_op(&self, op: &str) -> bool {
        matches!(self.peek(), Some(Tok::Op(o)) if *o == op)
    }

    fn is_ident(&self, name: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(o)) if o == name)
    }

    fn expect_op(&mut self, op: &str) -> Result<()> {
        if self.is_op(op) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err_here(&format!("expected '{op}', found")))
        }
    }

    fn expect_ident(&mut self, name: &str) -> Result<()> {
        if self.is_ident(name) {
            self.i += 1;
            Ok(())
        } else {
            Err(self.err_here(&format!("expected '{name}', found")))
        }
    }

    fn pipe(&mut self) -> Result<Expr> {
        let lhs = self.comma()?;
        if self.is_op("|") {
            self.i += 1;
            let rhs = self.pipe()?;
            return Ok(Expr::Pipe(bx(lhs), bx(rhs)));
        }
        Ok(lhs)
    }

    fn comma(&mut self) -> Result<Expr> {
        let mut lhs = self.alt()?;
        while self.is_op(",") {
            self.i += 1;
            let rhs = self.alt()?;
            lhs = Expr::Comma(bx(lhs), bx(rhs));
        }
        Ok(lhs)
    }

    fn alt(&mut self) -> Result<Expr> {
        let lhs = self.assign()?;
        if self.is_op("//") {
            self.i += 1;
            let rhs = self.alt()?;
            return Ok(Expr::Alt(bx(lhs), bx(rhs)));
        }
        Ok(lhs)
    }

    fn assign(&mut self) -> Result<Expr> {
        let lhs = self.or()?;
        let op = match self.peek() {
            Some(Tok::Op("=")) => AssignOp::Set,
            Some(Tok::Op("|=")) => AssignOp::Update,
            Some(Tok::Op("+=")) => AssignOp::Arith(BinOp::Add),
            Some(Tok::Op("-=")) => AssignOp::Arith(BinOp::Sub),
            Some(Tok::Op("*=")) => AssignOp::Arith(BinOp::Mul(MergeFlags::default())),
            Some(Tok::Op("/=")) => AssignOp::Arith(BinOp::Div),
            Some(Tok::Op("%=")) => AssignOp::Arith(BinOp::Mod),
            Some(Tok::Op("//=")) => AssignOp::Alt,
            _ => return Ok(lhs),
        };
        self.i += 1;
        // The right side of an assignment extends over `//` (jq: `.a = .b // "x"`).
        let rhs = self.alt()?;
        Ok(Expr::Assign(op, bx(lhs), bx(rhs)))
    }

    fn or(&mut self) -> Result<Expr> {
        let mut lhs = self.and()?;
        while self.is_ident("or") {
            self.i += 1;
            let rhs = self.and()?;
            lhs = Expr::Or(bx(lhs), bx(rhs));
        }
        Ok(lhs)
    }

    fn and(&mut self) -> Result<Expr> {
        let mut lhs = self.compare()?;
        while self.is_ident("and") {
            self.i += 1;
            let rhs = self.compare()?;
            lhs = Expr::And(bx(lhs), bx(rhs));
        }
        Ok(lhs)
    }

    fn compare(&mut self) -> Result<Expr> {
        let lhs = self.additive()?;
        let op = match self.peek() {
            Some(Tok::Op("==")) => BinOp::Eq,
            Some(Tok::Op("!=")) => BinOp::Ne,
            Some(Tok::Op("<")) => BinOp::Lt,
            Some(Tok::Op("<=")) => BinOp::Le,
            Some(Tok::Op(">")) => BinOp::Gt,
            Some(Tok::Op(">=")) => BinOp::Ge,
            _ => return Ok(lhs),
        };
        self.i += 1;
        let rhs = self.additive()?;
        Ok(Expr::Binary(op, bx(lhs), bx(rhs)))
    }

    fn additive(&mut self) -> Result<Expr> {
        let mut lhs = self.multiplicative()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Op("+")) => BinOp::Add,
                Some(Tok::Op("-")) => BinOp::Sub,
                _ => return Ok(lhs),
            };
            self.i += 1;
            let rhs = self.multiplicative()?;
            lhs = Expr::Binary(op, bx(lhs), bx(rhs));
        }
    }

    fn multiplicative(&mut self) -> Result<Expr> {
        let mut lhs = self.unary()?;
        loop {
            let op = match self.peek() {
                Some(Tok::Mul(flags)) => BinOp::Mul(*flags),
                Some(Tok::Op("/")) => BinOp::Div,
                Some(Tok::Op("%")) => BinOp::Mod,
                _ => return Ok(lhs),
            };
            self.i += 1;
            let rhs = self.unary()?;
            lhs = Expr::Binary(op, bx(lhs), bx(rhs));
        }
    }

    fn unary(&mut self) -> Result<Expr> {
        if self.is_op("-") {
            self.i += 1;
            return Ok(Expr::Neg(bx(self.unary()?)));
        }
        let term = self.postfix()?;
        if self.is_ident("as") {
            self.i += 1;
            let var = match self.peek() {
                Some(Tok::Var(v)) => v.clone(),
                _ => return Err(self.err_here("expected '$name' after 'as', found")),
            };
            self.i += 1;
            if self.is_ident("ireduce") {
                self.i += 1;
                let (init, update) = self.two_args()?;
                return Ok(Expr::Reduce(bx(term), var, bx(init), bx(update)));
            }
            self.expect_op("|")?;
            let body = self.pipe()?;
            return Ok(Expr::As(bx(term), var, bx(body)));
        }
        Ok(term)
    }

    fn two_args(&mut self) -> Result<(Expr, Expr)> {
        self.expect_op("(")?;
        let a = self.pipe()?;
        self.expect_op(";")?;
        let b = self.pipe()?;
        self.expect_op(")")?;
        Ok((a, b))
    }

    fn postfix(&mut self) -> Result<Expr> {
        let mut e = self.primary()?;
        loop {
            match self.peek() {
                Some(Tok::Field(name)) => {
                    let name = name.clone();
                    self.i += 1;
                    e = Expr::Index(bx(e), bx(Expr::Literal(Value::String(name))));
                }
                Some(Tok::Dot) if matches!(self.toks.get(self.i + 1), Some((Tok::Op("["), _))) => {
                    self.i += 1;
                }
                Some(Tok::Op("[")) => {
                    self.i += 1;
                    if self.is_op("]") {
                        self.i += 1;
                        e = Expr::Iterate(bx(e));
                    } else {
                        let idx = self.pipe()?;
                        self.expect_op("]")?;
                        e = Expr::Index(bx(e), bx(idx));
                    }
                }
                Some(Tok::Op("?")) => {
                    self.i += 1;
                    e = Expr::Try(bx(e));
                }
                _ => return Ok(e),
            }
        }
    }

    fn primary(&mut self) -> Result<Expr> {
        let Some((tok, _)) = self.toks.get(self.i).cloned() else {
            return Err(self.err_here("expected an expression"));
        };
        self.i += 1;
        Ok(match tok {
            Tok::Dot => Expr::Identity,
            Tok::DotDot => Expr::Recurse,
            Tok::Field(name) => Expr::Index(bx(Expr::Identity), bx(Expr::Literal(Value::String(name)))),
            Tok::Num(n) => Expr::Literal(n),
            Tok::Str(parts) => match plain_text(&parts) {
                Some(s) => Expr::Literal(Value::String(s)),
                None => Expr::Interp(parts),
            },
            Tok::Var(v) => Expr::Var(v),
            Tok::Op("(") => {
                let e = self.pipe()?;
                self.expect_op(")")?;
                e
            }
            Tok::Op("[") => {
                if self.is_op("]") {
                    self.i += 1;
                    Expr::Array(None)
                } else {
                    let e = self.pipe()?;
                    self.expect_op("]")?;
                    Expr::Array(Some(bx(e)))
                }
            }
            Tok::Op("{") => self.object()?,
            Tok::Ident(name) => match name.as_str() {
                "true" => Expr::Literal(Value::Bool(true)),
                "false" => Expr::Literal(Value::Bool(false)),
                "null" => Expr::Literal(Value::Null),
                "if" => self.if_rest()?,
                "reduce" => {
                    let src = self.postfix()?;
                    self.expect_ident("as")?;
                    let var = match self.peek() {
                        Some(Tok::Var(v)) => v.clone(),
                        _ => return Err(self.err_here("expected '$name' after 'as', found")),
                    };
                    self.i += 1;
                    let (init, update) = self.two_args()?;
                    Expr::Reduce(bx(src), var, bx(init), bx(update))
                }
                _ => {
                    let at = self.toks[self.i - 1].1;
                    let mut args = Vec::new();
                    if self.is_op("(") {
                        self.i += 1;
                        loop {
                            args.push(self.pipe()?);
                            if self.is_op(";") {
                                self.i += 1;
                                continue;
                            }
                            self.expect_op(")")?;
                            break;
                        }
                    }
                    if !FUNCTIONS.contains(&(name.as_str(), args.len())) {
                        return Err(anyhow!(
                            "unknown or unsupported function '{name}/{}' at position {} in expression '{}'",
                            args.len(),
                            at + 1,
                            self.src
                        ));
                    }
                    Expr::Call(name, args)
                }
            },
            _ => {
                self.i -= 1;
                return Err(self.err_here("unexpected token"));
            }
        })
    }

    fn if_rest(&mut self) -> Result<Expr> {
        let cond = self.pipe()?;
        self.expect_ident("then")?;
        let then = self.pipe()?;
        let otherwise = if self.is_ident("elif") {
            self.i += 1;
            Some(bx(self.if_rest()?))
        } else if self.is_ident("else") {
            self.i += 1;
            let e = self.pipe()?;
            self.expect_ident("end")?;
            Some(bx(e))
        } else {
            self.expect_ident("end")?;
            None
        };
        // `elif` shares the outer `end`: the innermost branch consumed it.
        Ok(Expr::If(bx(cond), bx(then), otherwise))
    }

    fn object(&mut self) -> Result<Expr> {
        let mut entries = Vec::new();
        if self.is_op("}") {
            self.i += 1;
            return Ok(Expr::Object(entries));
        }
        loop {
            let key = match self.toks.get(self.i).cloned() {
                Some((Tok::Ident(k), _)) => {
                    self.i += 1;
                    Expr::Literal(Value::String(k))
                }
                Some((Tok::Var(v), _)) => {
                    self.i += 1;
                    if !self.is_op(":") {
                        entries.push((Expr::Literal(Value::String(v.clone())), Some(Expr::Var(v))));
                        if self.is_op(",") {
                            self.i += 1;
                            continue;
                        }
                        self.expect_op("}")?;
                        return Ok(Expr::Object(entries));
                    }
                    Expr::Var(v)
                }
                Some((Tok::Str(parts), _)) => {
                    self.i += 1;
                    match plain_text(&parts) {
                        Some(s) => Expr::Literal(Value::String(s)),
                        None => Expr::Interp(parts),
                    }
                }
                Some((Tok::Op("("), _)) => {
                    self.i += 1;
                    let e = self.pipe()?;
                    self.expect_op(")")?;
                    e
                }
                Some((Tok::Field(k), _)) => {
                    // yq accepts `{.a: ...}`? No; but `{a}` shorthand handled below.
                    self.i += 1;
                    Expr::Index(bx(Expr::Identity), bx(Expr::Literal(Value::String(k))))
                }
                _ => return Err(self.err_here("expected an object key, found")),
            };
            let value = if self.is_op(":") {
                self.i += 1;
                Some(self.object_value()?)
            } else {
                None
            };
            entries.push((key, value));
            if self.is_op(",") {
                self.i += 1;
                continue;
            }
            self.expect_op("}")?;
            return Ok(Expr::Object(entries));
        }
    }

    /// An object value: jq's `ObjVal` excludes `,` (it separates entries) but allows `|`.
    fn object_value(&mut self) -> Result<Expr> {
        let lhs = self.alt()?;
        if self.is_op("|") {
            self.i += 1;
            let rhs = self.object_value()?;
            return Ok(Expr::Pipe(bx(lhs), bx(rhs)));
        }
        Ok(lhs)
    }
}
