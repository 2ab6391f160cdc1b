//! The one error path of the commands: a command returns [`CliResult`], and [`super::run`]
//! prints the error once (`ERROR: ` and its cause chain) and exits with its Bazel exit code.
//! Shaped like cargo's `CliError` (`error: Option<anyhow::Error>`, `exit_code: i32`).

use std::fmt;

use super::exit;

/// What a command returns: `Ok(())` is exit code 0.
pub type CliResult<T = ()> = Result<T, CliError>;

/// A command's failure: the error to print (if any) and Bazel's exit code for it.
///
/// Which code, by constructor (the codes of `bazel help` / Bazel's `ExitCode` class):
///
/// | constructor | code | Bazel's name | when |
/// |---|---|---|---|
/// | [`CliError::build_failed`] (and `From<anyhow::Error>`) | 1 | `BUILD_FAILURE` | loading or analysis of a target, or an action, failed; I/O on the output base |
/// | [`CliError::bad_command_line`] | 2 | `COMMAND_LINE_ERROR` | unknown flag, bad pattern or query syntax, `.bazelrc` error, no workspace |
/// | [`CliError::partial`] | 3 | `PARTIAL_ANALYSIS_FAILURE` / `TESTS_FAILED` | some tests failed; `query --keep_going` skipped errors |
/// | [`CliError::no_tests`] | 4 | `NO_TESTS_FOUND` | `test` matched no test target |
/// | [`CliError::analysis_or_query_failed`] | 7 | `ANALYSIS_FAILURE` | `query`/`cquery` evaluation or `cquery`'s analysis failed |
/// | [`CliError::interrupted`] | 8 | `INTERRUPTED` | Ctrl-C during the build |
/// | [`CliError::code`] | any | | the output already said why (a test summary, clap's usage text, the exit code of `ocib run`'s program) |
#[derive(Debug)]
pub struct CliError {
    /// The error to print as `ERROR: …`; `None` when nothing more is to be said.
    pub error: Option<anyhow::Error>,
    /// The process exit code.
    pub exit_code: i32,
}

impl CliError {
    /// An error with an explicit exit code.
    pub fn new(error: impl Into<anyhow::Error>, exit_code: i32) -> CliError {
        CliError { error: Some(error.into()), exit_code }
    }

    /// Exit with `exit_code` without printing an error.
    pub fn code(exit_code: i32) -> CliError {
        CliError { error: None, exit_code }
    }

    /// Exit code 1: the build (loading, analysis or execution) failed.
    pub fn build_failed(error: impl Into<anyhow::Error>) -> CliError {
        CliError::new(error, exit::BUILD_FAILED)
    }

    /// Exit code 2: the command line (flags, patterns, `.bazelrc`, workspace) is wrong.
    pub fn bad_command_line(error: impl Into<anyhow::Error>) -> CliError {
        CliError::new(error, exit::BAD_COMMAND_LINE)
    }

    /// Exit code 3: partly done (tests failed, or errors skipped under `--keep_going`).
    pub fn partial(error: impl Into<anyhow::Error>) -> CliError {
        CliError::new(error, exit::PARTIAL)
    }

    /// Exit code 4: testing was requested but no test target matched.
    pub fn no_tests(error: impl Into<anyhow::Error>) -> CliError {
        CliError::new(error, exit::NO_TESTS)
    }

    /// Exit code 7: a query could not be evaluated, or `cquery` could not analyze a target.
    pub fn analysis_or_query_failed(error: impl Into<anyhow::Error>) -> CliError {
        CliError::new(error, exit::ANALYSIS_OR_QUERY_FAILED)
    }

    /// Exit code 8: the build was interrupted.
    pub fn interrupted(error: impl Into<anyhow::Error>) -> CliError {
        CliError::new(error, exit::INTERRUPTED)
    }
}

/// An error without a more specific code is a failed build (exit 1), Bazel's generic failure.
impl From<anyhow::Error> for CliError {
    fn from(error: anyhow::Error) -> CliError {
        CliError::build_failed(error)
    }
}

/// Renders an error as ocib prints it: `ERROR: ` and the error, each cause after `: `,
/// every cause once (each level's `Display` says only its own part; the chain comes from
/// `source()`).
pub struct Rendered<'a>(pub &'a anyhow::Error);

impl fmt::Display for Rendered<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ERROR: {:#}", self.0)
    }
}

/// Prints an error that does not end the command (one of several under `--keep_going`, a
/// failed action before the build summary) the way the terminating one is printed.
pub fn report(error: &anyhow::Error) {
    eprintln!("{}", Rendered(error));
}

/// An analysis failure of `label`, reported as Bazel does: the failing rule once, with its
/// location (`ERROR: c/BUILD:2:8: in genrule rule //c:c: <why>`), printed now; the returned
/// error is the line that ends the build (`Analysis of target '//a:a' failed; build aborted`,
/// naming the failing target when it is a dependency).
pub fn analysis_failed(label: &crate::graph::label::Label, error: crate::analysis::AnalysisError) -> anyhow::Error {
    let aborted = format!("Analysis of target '{label}' failed; build aborted");
    match error.innermost() {
        Some((line, failing)) => {
            eprintln!("ERROR: {line}");
            if failing == label { anyhow::anyhow!(aborted) } else { anyhow::anyhow!("{aborted}: Analysis of target '{failing}' failed") }
        }
        // No rule in the chain (a package failed to load): its own location says it.
        None => anyhow::Error::from(error).context(aborted),
    }
}

/// Prints a terminating error (if any) once and returns its exit code.
pub fn finish(result: CliResult) -> i32 {
    match result {
        Ok(()) => exit::SUCCESS,
        Err(CliError { error, exit_code }) => {
            if let Some(e) = &error {
                report(e);
            }
            exit_code
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Inner);

    #[derive(Debug, thiserror::Error)]
    #[error("inner")]
    struct Inner(#[source] std::io::Error);

    #[test]
    fn cause_chain_is_printed_once_on_one_error_line() {
        let e = anyhow::Error::from(Outer(Inner(std::io::Error::other("disk on fire")))).context("building //a:a");
        let text = Rendered(&e).to_string();
        assert_eq!(text, "ERROR: building //a:a: outer: inner: disk on fire");
        assert_eq!(text.matches("ERROR").count(), 1);
    }

    #[test]
    fn constructors_keep_bazel_exit_codes() {
        let e = || anyhow::anyhow!("x");
        assert_eq!(CliError::build_failed(e()).exit_code, 1);
        assert_eq!(CliError::bad_command_line(e()).exit_code, 2);
        assert_eq!(CliError::partial(e()).exit_code, 3);
        assert_eq!(CliError::no_tests(e()).exit_code, 4);
        assert_eq!(CliError::analysis_or_query_failed(e()).exit_code, 7);
        assert_eq!(CliError::interrupted(e()).exit_code, 8);
        assert_eq!(CliError::from(e()).exit_code, 1);
        assert_eq!(finish(Err(CliError::code(42))), 42);
        assert_eq!(finish(Ok(())), 0);
    }
}
