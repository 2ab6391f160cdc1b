//! The query language: lexer and parser into an [`Expr`] tree.
//!
//! `expr := term (op term)*` with `+ union - except ^ intersect`, left-associative and of
//! equal precedence; `term := pattern | (expr) | func(args) | set(words) | let v = e in e | $v`.

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
#[error("{0}")]
pub struct SyntaxError(pub String);

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

fn lex(input: &str) -> Result<Vec<Token>, SyntaxError> {
    let mut out = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Token::LParen);
            }
            ')' => {
                chars.next();
                out.push(Token::RParen);
            }
            ',' => {
                chars.next();
                out.push(Token::Comma);
            }
            '+' => {
                chars.next();
                out.push(Token::Plus);
            }
            '^' => {
                chars.next();
                out.push(Token::Caret);
            }
            '"' | '\'' => {
                chars.next();
                let mut text = String::new();
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some(other) => text.push(other),
                        None => return Err(SyntaxError(format!("unclosed quotation in '{input}'"))),
                    }
                }
                out.push(Token::Word { text, quoted: true });
            }
            _ => {
                // Bazel: `+` ends a word but `-` does not.
                let mut text = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || "()+,^\"'".contains(c) {
                        break;
                    }
                    text.push(c);
                    chars.next();
                }
                out.push(Token::Word { text, quoted: false });
            }
        }
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    input: String,
}

const FUNCTIONS: &[&str] = &[
    "deps", "rdeps", "kind", "attr", "filter", "labels", "tests", "somepath", "allpaths", "siblings", "buildfiles",
    "loadfiles", "some", "same_pkg_direct_rdeps", "visible",
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
        SyntaxError(format!("Error while parsing '{}': {what}", self.input))
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
        let mut left = self.term()?;
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
    let tokens = lex(input)?;
    let mut p = Parser { tokens, pos: 0, input: input.to_owned() };
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
        assert_eq!(e, Expr::Call { func: "kind".into(), args: vec![Arg::Word("oci_push".into()), Arg::Expr(Expr::Pattern("//...".into()))] });
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
