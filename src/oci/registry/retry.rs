//! Retrying a registry step: which failures are transient (5xx, 429, connection trouble),
//! exponential backoff or the registry's short `Retry-After`, and error messages that carry the
//! registry's own words (OCI error JSON) but never a URL.

use std::io::Read;
use std::time::Duration;

use anyhow::{Result, anyhow};
use reqwest::StatusCode;
use reqwest::blocking::Response;
use serde::Deserialize;

use super::client::{Client, Target, context, header_str};

/// Attempts for one idempotent step (the first try included).
pub(super) const ATTEMPTS: u32 = 4;
/// First backoff delay; doubled each retry.
const BACKOFF_BASE: Duration = Duration::from_millis(200);
/// A `Retry-After` longer than this is not honoured: the step fails instead of hanging.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);

/// How one attempt at a step failed: worth retrying (5xx, 429, connection trouble) or not.
pub(super) enum Failure {
    Retry { error: anyhow::Error, after: Option<Duration> },
    Fatal(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Failure {
        Failure::Fatal(e)
    }
}

pub(super) type Attempt<T> = std::result::Result<T, Failure>;

impl Client {
    /// Runs `step` up to [`ATTEMPTS`] times, sleeping with exponential backoff (or the
    /// registry's `Retry-After`, if short) between attempts that failed transiently.
    pub(super) fn retrying<T>(&self, target: &Target, what: &str, mut step: impl FnMut() -> Attempt<T>) -> Result<T> {
        let mut attempt = 1;
        loop {
            match step() {
                Ok(v) => return Ok(v),
                Err(Failure::Fatal(e)) => return Err(e),
                Err(Failure::Retry { error, after }) => {
                    if attempt >= ATTEMPTS {
                        return Err(error.context(format!("{}: {what} failed after {ATTEMPTS} attempts", context(target))));
                    }
                    let backoff = BACKOFF_BASE * 2u32.pow(attempt - 1);
                    std::thread::sleep(after.filter(|a| *a <= MAX_RETRY_AFTER).unwrap_or(backoff));
                    attempt += 1;
                }
            }
        }
    }
}

/// reqwest's messages include the URL; redirect targets and upload locations may carry
/// signatures or state tokens, so drop it.
pub(super) fn reqwest_error(e: reqwest::Error) -> anyhow::Error {
    anyhow::Error::new(e.without_url())
}

pub(super) fn transient(target: &Target, what: &str, e: anyhow::Error) -> Failure {
    Failure::Retry { error: e.context(format!("{}: {what}", context(target))), after: None }
}

/// Turns an unexpected response into an error naming the status and the registry's own
/// message (OCI error JSON `errors[].code/message`). 5xx and 429 are transient.
pub(super) fn status_failure(target: &Target, what: &str, resp: Response) -> Failure {
    let status = resp.status();
    let retry_after = header_str(resp.headers(), "retry-after").and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs);
    let mut body = Vec::new();
    let _ = resp.take(64 << 10).read_to_end(&mut body);
    let detail = registry_message(&body);
    let error = anyhow!("{}: {what}: HTTP {status}{}", context(target), detail.map(|d| format!(": {d}")).unwrap_or_default());
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        Failure::Retry { error, after: retry_after }
    } else {
        Failure::Fatal(error)
    }
}

/// `CODE: message; …` from an OCI error body, or a short plain-text body.
fn registry_message(body: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Errors {
        errors: Vec<ErrorEntry>,
    }
    #[derive(Deserialize)]
    struct ErrorEntry {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    if let Ok(e) = serde_json::from_slice::<Errors>(body) {
        let parts: Vec<String> = e
            .errors
            .into_iter()
            .map(|e| match (e.code.is_empty(), e.message.is_empty()) {
                (false, false) => format!("{}: {}", e.code, e.message),
                (false, true) => e.code,
                _ => e.message,
            })
            .filter(|s| !s.is_empty())
            .collect();
        if !parts.is_empty() {
            return Some(parts.join("; "));
        }
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() || text.starts_with('<') {
        return None; // empty, or an HTML error page
    }
    Some(text.chars().take(200).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_error_messages() {
        let body = br#"{"errors":[{"code":"MANIFEST_INVALID","message":"manifest invalid","detail":{}},{"code":"X","message":""}]}"#;
        assert_eq!(registry_message(body).as_deref(), Some("MANIFEST_INVALID: manifest invalid; X"));
        assert_eq!(registry_message(b"  plain text\n").as_deref(), Some("plain text"));
        assert_eq!(registry_message(b"<html>bad gateway</html>"), None);
        assert_eq!(registry_message(b""), None);
    }
}
