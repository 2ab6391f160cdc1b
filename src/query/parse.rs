//! The query language: lexer and parser into an [`Expr`] tree.
//!
//! `expr := term (op term)*` with `+ union - except ^ intersect`, left-associative and of
//! equal precedence; `term := pattern | (expr) | func(args) | set(words) | let v = e in e | $v`.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("{0}")]
pub struct SyntaxError(pub String);

/// How deeply a query may nest (parentheses, function arguments, `let` bodies, operators'
/// right-hand sides). Parsing and evaluation recurse once per level, and at about ten
/// thousand levels the stack overflows (an abort); real queries nest a handful of levels,
/// and a chain of 1,000 `let`s still fits.
pub const MAX_NESTING: usize = 2000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetOp {
    Union,
    Except,
    Intersect,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Expr(Expr),
    Word(String),
    Int(i64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Pattern(String),
    Var(String),
    Set(Vec<String>),
    Let { name: String, value: Box<Expr>, body: Box<Expr> },
    Binary { op: SetOp, left: Box<Expr>, right: Box<Expr> },
    Call { func: String, args: Vec<Arg> },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    LParen,
    RParen,
    Comma,
    Plus,
    Caret,
    Word { text: String, quoted: bool },
}

/// The tokens of `input`, each with the 1-based column (in characters) where it starts.
fn lex(input: &str) -> Result<Vec<(Token, usize)>, SyntaxError> {
    let mut out = Vec::new();
    let mut chars = input.chars().enumerate().map(|(i, c)| (i + 1, c)).peekable();
    while let Some(&(column, c)) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push((Token::LParen, column));
            }
            ')' => {
                chars.next();
                out.push((Token::RParen, column));
            }
            ',' => {
                chars.next();
                out.push((Token::Comma, column));
            }
            '+' => {
                chars.next();
                out.push((Token::Plus, column));
            }
            '^' => {
                chars.next();
                out.push((Token::Caret, column));
            }
            '"' | '\'' => {
                chars.next();
                let mut text = String::new();
                loop {
                    match chars.next().map(|(_, c)| c) {
                        Some(q) if q == c => break,
                        Some(other) => text.push(other),
                        None => return Err(SyntaxError(format!("unclosed quotation in '{input}'"))),
                    }
                }
                out.push((Token::Word { text, quoted: true }, column));
            }
            // Bazel's lexer: `-` starting a token is the `except` operator (`//... -//x/...`);
            // inside a word it is part of the word (`//lib:all-targets`), so `//...-//x/...`
            // stays one (invalid) pattern, as in Bazel 4.2.3.
            '-' => {
                chars.next();
                out.push((Token::Word { text: "-".to_owned(), quoted: false }, column));
            }
            _ => {
                // Bazel: `+` ends a word but `-` does not.
                let mut text = String::new();
                while let Some(&(_, c)) = chars.peek() {
                    if c.is_whitespace() || "()+,^\"'".contains(c) {
                        break;
                    }
                    text.push(c);
                    chars.next();
                }
                out.push((Token::Word { text, quoted: false }, column));
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    /// 1-based column of each token.
    columns: Vec<usize>,
    pos: usize,
    input: String,
    /// Expressions being parsed, outermost included.
    depth: usize,
}

const FUNCTIONS: &[&str] = &[
    "deps",
    "rdeps",
    "kind",
    "attr",
    "filter",
    "labels",
    "tests",
    "somepath",
    "allpaths",
    "siblings",
    "buildfiles",
    "loadfiles",
    "some",
    "same_pkg_direct_rdeps",
    "visible",
];

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn err(&self, what: &str) -> SyntaxError {
        // A machine-made query can be megabytes long; quote its start only.
        let shown: String = self.input.chars().take(200).collect();
        let more = if shown.len() < self.input.len() { "..." } else { "" };
        SyntaxError(format!("Error while parsing '{shown}{more}': {what}"))
    }

    fn expect(&mut self, want: Token, what: &str) -> Result<(), SyntaxError> {
        match self.next() {
            Some(t) if t == want => Ok(()),
            Some(t) => Err(self.err(&format!("expected {what}, got {}", describe(&t)))),
            None => Err(self.err("premature end of input")),
        }
    }

    fn is_keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word { text, quoted: false }) if text == word)
    }

    fn expr(&mut self) -> Result<Expr, SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            let column = self.columns.get(self.pos).copied().unwrap_or(self.input.chars().count() + 1);
            return Err(self.err(&format!("expression nested more than {MAX_NESTING} levels deep at column {column}")));
        }
        let e = self.expr_inner();
        self.depth -= 1;
        e
    }

    fn expr_inner(&mut self) -> Result<Expr, SyntaxError> {
        let mut left = self.term()?;
        // Each operator nests the left operand one level deeper (evaluation recurses into it).
        let mut chain = 0;
        loop {
            let op = match self.peek() {
                Some(Token::Plus) => SetOp::Union,
                Some(Token::Caret) => SetOp::Intersect,
                Some(Token::Word { text, quoted: false }) => match text.as_str() {
                    "union" => SetOp::Union,
                    "-" | "except" => SetOp::Except,
                    "intersect" => SetOp::Intersect,
                    _ => break,
                },
                _ => break,
            };
            chain += 1;
            if self.depth + chain > MAX_NESTING {
                let column = self.columns.get(self.pos).copied().unwrap_or_default();
                return Err(self.err(&format!("expression nested more than {MAX_NESTING} levels deep at column {column}")));
            }
            self.pos += 1;
            let right = self.term()?;
            left = Expr::Binary { op, left: Box::new(left), right: Box::new(right) };
        }
        Ok(left)
    }

    fn term(&mut self) -> Result<Expr, SyntaxError> {
        match self.next() {
            None => Err(self.err("premature end of input")),
            Some(Token::LParen) => {
                let e = self.expr()?;
                self.expect(Token::RParen, "')'")?;
                Ok(e)
            }
            Some(Token::Word { text, quoted }) => {
                if !quoted {
                    if text == "let" {
                        let name = match self.next() {
                            Some(Token::Word { text, .. }) => text,
                            _ => return Err(self.err("expected a variable name after 'let'")),
                        };
                        match self.next() {
                            Some(Token::Word { text, quoted: false }) if text == "=" => {}
                            _ => return Err(self.err("expected '=' after the variable of 'let'")),
                        }
                        let value = self.expr()?;
                        if !self.is_keyword("in") {
                            return Err(self.err("expected 'in'"));
                        }
                        self.pos += 1;
                        let body = self.expr()?;
                        return Ok(Expr::Let { name, value: Box::new(value), body: Box::new(body) });
                    }
                    if let Some(var) = text.strip_prefix('$') {
                        return Ok(Expr::Var(var.to_owned()));
                    }
                    if matches!(self.peek(), Some(Token::LParen)) {
                        self.pos += 1;
                        if text == "set" {
                            let mut words = Vec::new();
                            loop {
                                match self.next() {
                                    Some(Token::RParen) => break,
                                    Some(Token::Word { text, .. }) => words.push(text),
                                    Some(t) => return Err(self.err(&format!("unexpected {} in set()", describe(&t)))),
                                    None => return Err(self.err("premature end of input")),
                                }
                            }
                            return Ok(Expr::Set(words));
                        }
                        if !FUNCTIONS.contains(&text.as_str()) {
                            return Err(self.err(&format!("unknown function '{text}'")));
                        }
                        let args = self.args(&text)?;
                        return Ok(Expr::Call { func: text, args });
                    }
                    if ["union", "except", "intersect", "in", "-", "="].contains(&text.as_str()) {
                        return Err(self.err(&format!("syntax error at '{text}'")));
                    }
                }
                Ok(Expr::Pattern(text))
            }
            Some(t) => Err(self.err(&format!("syntax error at {}", describe(&t)))),
        }
    }

    /// Arguments, typed by position for each function: expressions, words or integers.
    fn args(&mut self, func: &str) -> Result<Vec<Arg>, SyntaxError> {
        // 'w' = word, 'e' = expression, 'i' = optional integer (last).
        let shape = match func {
            "deps" => "ei",
            "rdeps" => "eei",
            "kind" | "filter" => "we",
            "attr" => "wwe",
            "labels" => "we",
            "somepath" | "allpaths" => "ee",
            "visible" => "ee",
            _ => "e",
        };
        let mut args = Vec::new();
        for (i, kind) in shape.chars().enumerate() {
            if i > 0 {
                match self.peek() {
                    Some(Token::Comma) => self.pos += 1,
                    Some(Token::RParen) if kind == 'i' => break,
                    _ => return Err(self.err(&format!("expected ',' in {func}()"))),
                }
            }
            match kind {
                'e' => args.push(Arg::Expr(self.expr()?)),
                'w' => match self.next() {
                    Some(Token::Word { text, .. }) => args.push(Arg::Word(text)),
                    _ => return Err(self.err(&format!("expected a word argument to {func}()"))),
                },
                _ => match self.next() {
                    Some(Token::Word { text, .. }) => {
                        let n = text.parse().map_err(|_| self.err(&format!("expected an integer depth in {func}(), got '{text}'")))?;
                        args.push(Arg::Int(n));
                    }
                    _ => return Err(self.err(&format!("expected an integer depth in {func}()"))),
                },
            }
        }
        self.expect(Token::RParen, "')'")?;
        Ok(args)
    }
}

fn describe(t: &Token) -> String {
    match t {
        Token::LParen => "'('".into(),
        Token::RParen => "')'".into(),
        Token::Comma => "','".into(),
        Token::Plus => "'+'".into(),
        Token::Caret => "'^'".into(),
        Token::Word { text, .. } => format!("'{text}'"),
    }
}

pub fn parse(input: &str) -> Result<Expr, SyntaxError> {
    let (tokens, columns) = lex(input)?.into_iter().unzip();
    let mut p = Parser { tokens, columns, pos: 0, input: input.to_owned(), depth: 0 };
    let e = p.expr()?;
    if let Some(t) = p.peek() {
        return Err(p.err(&format!("unexpected token {} after query expression", describe(t))));
    }
    Ok(e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(s: &str) -> Box<Expr> {
        Box::new(Expr::Pattern(s.into()))
    }

    #[test]
    fn set_operations_are_left_associative() {
        let e = parse("//a:x + //b:y - //c:z").unwrap();
        assert_eq!(
            e,
            Expr::Binary {
                op: SetOp::Except,
                left: Box::new(Expr::Binary { op: SetOp::Union, left: pat("//a:x"), right: pat("//b:y") }),
                right: pat("//c:z"),
            }
        );
    }

    #[test]
    fn functions_and_words() {
        let e = parse("kind(oci_push, //...)").unwrap();
        assert_eq!(
            e,
            Expr::Call { func: "kind".into(), args: vec![Arg::Word("oci_push".into()), Arg::Expr(Expr::Pattern("//...".into()))] }
        );
        let e = parse("deps(//cmd/worker:image, 2)").unwrap();
        assert!(matches!(e, Expr::Call { ref args, .. } if args[1] == Arg::Int(2)));
        let e = parse("attr(tags, 'manual', //...)").unwrap();
        assert!(matches!(e, Expr::Call { ref args, .. } if args[1] == Arg::Word("manual".into())));
    }

    #[test]
    fn dash_inside_a_word_is_not_an_operator() {
        assert_eq!(parse("//lib:all-targets").unwrap(), Expr::Pattern("//lib:all-targets".into()));
        assert!(matches!(parse("\"//lib:a.b-c+d@e\"").unwrap(), Expr::Pattern(p) if p == "//lib:a.b-c+d@e"));
    }

    #[test]
    fn dash_starting_a_word_is_except() {
        let e = parse("//... -//x/...").unwrap();
        assert_eq!(e, Expr::Binary { op: SetOp::Except, left: pat("//..."), right: pat("//x/...") });
        assert_eq!(parse("//...-//x/...").unwrap(), Expr::Pattern("//...-//x/...".into()));
    }

    #[test]
    fn let_and_set() {
        let e = parse("let v = //a:b in $v + set(//c:d //e:f)").unwrap();
        assert!(matches!(e, Expr::Let { .. }));
    }

    #[test]
    fn syntax_errors() {
        assert!(parse("deps(//a:b").is_err());
        assert!(parse("nosuchfunc(//a:b)").is_err());
        assert!(parse("//a:b //c:d").is_err());
        assert!(parse("").is_err());
    }
}
