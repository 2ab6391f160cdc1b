//! `query`: the language (parse), its evaluation over the target graph (eval), and output
//! formats (output).

pub mod eval;
pub mod output;
pub mod parse;

use thiserror::Error;

/// A query failure: a syntax error (Bazel exits 2) or an evaluation error (Bazel exits 7).
#[derive(Debug, Error)]
#[error("{message}")]
pub struct QueryError {
    pub message: String,
    pub syntax: bool,
}

impl QueryError {
    pub fn eval(message: String) -> QueryError {
        QueryError { message, syntax: false }
    }

    pub fn syntax(message: String) -> QueryError {
        QueryError { message, syntax: true }
    }
}

/// An evaluation message (e.g. `graph::visibility`'s).
impl From<String> for QueryError {
    fn from(message: String) -> Self {
        QueryError::eval(message)
    }
}

impl From<parse::SyntaxError> for QueryError {
    fn from(e: parse::SyntaxError) -> Self {
        QueryError::syntax(e.0)
    }
}
