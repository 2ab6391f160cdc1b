//! Answering a registry's `WWW-Authenticate` challenge the way Docker's token auth spec and
//! crane do: Basic with the docker config credential, or a Bearer token fetched from the realm
//! (with Basic credentials, an OAuth2 refresh token, or anonymously), cached per scope.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use reqwest::StatusCode;
use reqwest::Url;
use reqwest::header;
use serde::Deserialize;

use super::auth::Credential;
use super::client::{Client, SMALL_REQUEST_TIMEOUT, Target, context};
use super::retry::{Attempt, Failure, reqwest_error, status_failure, transient};

/// One challenge from a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    Basic { realm: Option<String> },
    Bearer { realm: String, service: Option<String>, scope: Option<String> },
}

/// Parses `WWW-Authenticate` (RFC 7235: `scheme param=value, param="quoted, value"`). Returns
/// the first Basic or Bearer challenge; other schemes are skipped.
pub fn parse_www_authenticate(value: &str) -> Option<Challenge> {
    let mut chars = value.trim().chars().peekable();
    let mut challenges: Vec<(String, HashMap<String, String>)> = Vec::new();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace() || *c == ',') {
            chars.next();
        }
        let mut token = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() || c == ',' || c == '=' {
                break;
            }
            token.push(c);
            chars.next();
        }
        if token.is_empty() {
            break;
        }
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        if chars.peek() == Some(&'=') {
            // A parameter of the current challenge.
            chars.next();
            while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
                chars.next();
            }
            let mut val = String::new();
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => val.extend(chars.next()),
                        '"' => break,
                        c => val.push(c),
                    }
                }
            } else {
                while let Some(&c) = chars.peek() {
                    if c == ',' || c.is_whitespace() {
                        break;
                    }
                    val.push(c);
                    chars.next();
                }
            }
            if let Some((_, params)) = challenges.last_mut() {
                params.insert(token.to_ascii_lowercase(), val);
            }
        } else {
            challenges.push((token.to_ascii_lowercase(), HashMap::new()));
        }
    }
    challenges.into_iter().find_map(|(scheme, mut p)| match scheme.as_str() {
        "basic" => Some(Challenge::Basic { realm: p.remove("realm") }),
        "bearer" => Some(Challenge::Bearer { realm: p.remove("realm")?, service: p.remove("service"), scope: p.remove("scope") }),
        _ => None,
    })
}

/// An `Authorization` header value. Its own type so that `Debug` can never print it.
#[derive(Clone)]
pub(super) struct Secret(pub(super) String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[derive(Debug, Clone)]
pub(super) struct CachedToken {
    header: Secret,
    expires: Instant,
}

/// What we know about authenticating to one registry.
#[derive(Debug, Default)]
pub(super) struct RegistryAuth {
    /// Set once the registry asked for Basic auth: then every request carries it up front.
    basic: Option<Secret>,
    /// Bearer tokens by scope string.
    tokens: HashMap<String, CachedToken>,
}

impl Client {
    /// The Authorization header to send up front: a live token for this scope, or Basic.
    pub(super) fn cached_auth(&self, target: &Target) -> Option<Secret> {
        let mut map = self.auth.lock().ok()?;
        let entry = map.get_mut(target.registry)?;
        let key = target.scope_key();
        if let Some(t) = entry.tokens.get(&key) {
            if t.expires > Instant::now() {
                return Some(t.header.clone());
            }
            entry.tokens.remove(&key);
        }
        entry.basic.clone()
    }

    /// Answers a challenge: Basic → the docker config credential; Bearer → a token from the
    /// realm, requested with our scopes (plus the one the registry named), with Basic
    /// credentials or a refresh token if we have them, anonymously otherwise.
    pub(super) fn authenticate(&self, target: &Target, challenge: &Challenge) -> Attempt<()> {
        let credential = self.keychain.get(target.registry)?;
        match challenge {
            Challenge::Basic { .. } => {
                let header = credential.as_ref().and_then(Credential::basic_header).ok_or_else(|| {
                    anyhow!(
                        "{}: the registry requires authentication and no username/password for {} was found in the docker config",
                        context(target),
                        target.registry
                    )
                })?;
                if let Ok(mut map) = self.auth.lock() {
                    map.entry(target.registry.to_string()).or_default().basic = Some(Secret(header));
                }
                Ok(())
            }
            Challenge::Bearer { realm, service, scope } => {
                let mut scopes = target.scopes.clone();
                if let Some(s) = scope {
                    for s in s.split(' ').filter(|s| !s.is_empty()) {
                        if !scopes.iter().any(|x| x == s) {
                            scopes.push(s.to_string());
                        }
                    }
                }
                let token = self.fetch_token(target, realm, service.as_deref(), &scopes, credential.as_ref())?;
                if let Ok(mut map) = self.auth.lock() {
                    map.entry(target.registry.to_string()).or_default().tokens.insert(target.scope_key(), token);
                }
                Ok(())
            }
        }
    }

    /// The token request of Docker's token auth spec: GET realm?service=&scope= with Basic
    /// credentials, or the OAuth2 refresh-token POST when the credential is an identity token.
    fn fetch_token(
        &self,
        target: &Target,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
        credential: Option<&Credential>,
    ) -> Attempt<CachedToken> {
        let mut url = Url::parse(realm).map_err(|_| anyhow!("{}: the registry's token realm is not a URL", context(target)))?;
        let realm_host = url.host_str().unwrap_or_default().to_string();
        let what = format!("token request to {realm_host}");
        let req = match credential {
            Some(Credential::IdentityToken(refresh)) => {
                let mut form = Url::parse("http://form.invalid/").map_err(|e| anyhow!("{e}"))?;
                {
                    let mut q = form.query_pairs_mut();
                    q.append_pair("grant_type", "refresh_token").append_pair("refresh_token", refresh).append_pair("client_id", "ocib");
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    q.append_pair("scope", &scopes.join(" "));
                }
                let body = form.query().unwrap_or_default().to_string();
                self.http.post(url).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded").body(body)
            }
            other => {
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    for s in scopes {
                        q.append_pair("scope", s);
                    }
                }
                let req = self.http.get(url);
                match other.and_then(Credential::basic_header) {
                    Some(h) => req.header(header::AUTHORIZATION, h),
                    None => req,
                }
            }
        };
        self.requests.fetch_add(1, Ordering::Relaxed);
        let resp = req.timeout(SMALL_REQUEST_TIMEOUT).send().map_err(|e| transient(target, &what, reqwest_error(e)))?;
        if !resp.status().is_success() {
            let hint = if resp.status() == StatusCode::UNAUTHORIZED && credential.is_none() {
                " (no credentials for this registry in the docker config)"
            } else {
                ""
            };
            return Err(match status_failure(target, &what, resp) {
                Failure::Fatal(e) => Failure::Fatal(anyhow!("{e:#}{hint}").context(format!("{}: authentication failed", context(target)))),
                retry => retry,
            });
        }
        #[derive(Deserialize)]
        struct TokenReply {
            token: Option<String>,
            access_token: Option<String>,
            expires_in: Option<u64>,
        }
        let reply: TokenReply = resp.json().map_err(|_| anyhow!("{}: {what}: the reply is not token JSON", context(target)))?;
        let token = reply
            .token
            .or(reply.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| anyhow!("{}: {what}: the reply has no token", context(target)))?;
        // The spec's default lifetime is 60 s; renew a little early.
        let lifetime = Duration::from_secs(reply.expires_in.unwrap_or(60).max(60)).saturating_sub(Duration::from_secs(10));
        Ok(CachedToken { header: Secret(format!("Bearer {token}")), expires: Instant::now() + lifetime })
    }
}

pub(super) fn pull_scope(repository: &str) -> String {
    format!("repository:{repository}:pull")
}

pub(super) fn push_scope(repository: &str) -> String {
    format!("repository:{repository}:pull,push")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_www_authenticate() {
        assert_eq!(
            parse_www_authenticate(
                r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:samalba/my-app:pull,push""#
            ),
            Some(Challenge::Bearer {
                realm: "https://auth.docker.io/token".into(),
                service: Some("registry.docker.io".into()),
                scope: Some("repository:samalba/my-app:pull,push".into()),
            })
        );
        assert_eq!(
            parse_www_authenticate(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic { realm: Some("Registry Realm".into()) })
        );
        assert_eq!(parse_www_authenticate("basic"), Some(Challenge::Basic { realm: None }));
        // Scheme case, spaces around '=', unquoted values, escapes, unknown params and schemes.
        assert_eq!(
            parse_www_authenticate(r#"Negotiate abc, BEARER realm = "https://x/t\"q", service=svc , error="invalid_token""#),
            Some(Challenge::Bearer { realm: "https://x/t\"q".into(), service: Some("svc".into()), scope: None })
        );
        assert_eq!(parse_www_authenticate(r#"Bearer service="no realm""#), None);
        assert_eq!(parse_www_authenticate(""), None);
    }
}
