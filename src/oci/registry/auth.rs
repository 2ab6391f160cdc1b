//! Registry credentials, found the way `docker` and `crane` find them: a docker `config.json`
//! (`$REGISTRY_AUTH_FILE`, else `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`) with
//! inline `auths` entries, per-registry `credHelpers` and a default `credsStore`.
//!
//! Secrets never leave this module except as an `Authorization` header value: `Credential` and
//! `Keychain` implement `Debug` by hand, and every error message names the registry, the config
//! file or the helper, never what they contained.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use serde::Deserialize;

/// The registry host Docker Hub references resolve to (see `Reference::parse`).
pub const DOCKER_HUB: &str = "index.docker.io";

/// The key `docker login` writes for Docker Hub, and what credential helpers expect for it.
const DOCKER_HUB_CONFIG_KEY: &str = "https://index.docker.io/v1/";

/// A credential for one registry.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// User name and password (or a personal access token used as password).
    Basic { username: String, password: String },
    /// An OAuth2 refresh token (`identitytoken`, or a helper answering `Username: "<token>"`),
    /// exchanged at the token realm with `grant_type=refresh_token`.
    IdentityToken(String),
}

impl Credential {
    /// The `Authorization: Basic …` value, for `Basic` challenges and token requests.
    pub fn basic_header(&self) -> Option<String> {
        match self {
            Credential::Basic { username, password } => Some(format!("Basic {}", STANDARD.encode(format!("{username}:{password}")))),
            Credential::IdentityToken(_) => None,
        }
    }
}

/// Hand-written so that `{:?}` of anything holding a credential shows only which kind it is.
impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { .. } => f.write_str("Credential::Basic(<redacted>)"),
            Credential::IdentityToken(_) => f.write_str("Credential::IdentityToken(<redacted>)"),
        }
    }
}

/// The parts of docker's `config.json` that hold credentials.
#[derive(Default, Deserialize)]
struct DockerConfig {
    #[serde(default)]
    auths: HashMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: HashMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// What `docker-credential-<name> get` prints.
#[derive(Deserialize)]
struct HelperReply {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// The docker config file to read, by the precedence podman/skopeo and docker use:
/// `$REGISTRY_AUTH_FILE`, then `$DOCKER_CONFIG/config.json`, then `$HOME/.docker/config.json`.
/// `env` is a parameter so tests need not mutate the process environment.
pub fn config_path_from(env: impl Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let non_empty = |k: &str| env(k).filter(|v| !v.is_empty());
    if let Some(p) = non_empty("REGISTRY_AUTH_FILE") {
        return Some(PathBuf::from(p));
    }
    if let Some(d) = non_empty("DOCKER_CONFIG") {
        return Some(Path::new(&d).join("config.json"));
    }
    non_empty("HOME").map(|h| Path::new(&h).join(".docker").join("config.json"))
}

/// The host part of a config key: `https://index.docker.io/v1/` → `index.docker.io`,
/// `registry.example:5000` → `registry.example:5000`; Docker Hub's aliases all map to
/// [`DOCKER_HUB`] so that `docker.io` and `https://index.docker.io/v1/` entries both match.
pub fn normalize_registry(key: &str) -> String {
    let s = key.trim();
    let s = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://")).unwrap_or(s);
    let host = s.split('/').next().unwrap_or(s).to_ascii_lowercase();
    match host.as_str() {
        "docker.io" | "registry-1.docker.io" | "index.docker.io" => DOCKER_HUB.to_string(),
        _ => host,
    }
}

/// Credentials from one docker config file, with per-registry answers cached (a credential
/// helper is a process spawn, and a push asks for the same registry many times).
pub struct Keychain {
    /// Where the config came from, for error messages.
    source: Option<PathBuf>,
    /// The parsed config, or why it could not be read (reported only when credentials are
    /// needed, so an anonymous pull does not fail on an unrelated broken file).
    config: std::result::Result<DockerConfig, String>,
    /// Where to look for `docker-credential-*` before `$PATH` (tests).
    helper_dir: Option<PathBuf>,
    cache: Mutex<HashMap<String, Option<Credential>>>,
}

impl fmt::Debug for Keychain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keychain").field("source", &self.source).finish_non_exhaustive()
    }
}

impl Keychain {
    /// An empty keychain: every registry is accessed anonymously.
    pub fn anonymous() -> Keychain {
        Keychain { source: None, config: Ok(DockerConfig::default()), helper_dir: None, cache: Mutex::default() }
    }

    /// The keychain of the process environment (see [`config_path_from`]).
    pub fn from_env() -> Keychain {
        match config_path_from(|k| std::env::var(k).ok()) {
            Some(p) => Keychain::from_file(&p),
            None => Keychain::anonymous(),
        }
    }

    /// Reads `path`; a missing file means no credentials, as with docker.
    pub fn from_file(path: &Path) -> Keychain {
        let config = match std::fs::read(path) {
            Ok(bytes) => parse_config(&bytes).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(DockerConfig::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        };
        Keychain { source: Some(path.to_path_buf()), config, helper_dir: None, cache: Mutex::default() }
    }

    /// Looks for credential helpers in `dir` first (tests install fake helpers there).
    #[cfg(test)]
    pub fn with_helper_dir(mut self, dir: &Path) -> Keychain {
        self.helper_dir = Some(dir.to_path_buf());
        self
    }

    /// The credential for `registry` (a `host[:port]` as in a [`super::Reference`]), or
    /// None for anonymous access.
    pub fn get(&self, registry: &str) -> Result<Option<Credential>> {
        let host = normalize_registry(registry);
        if let Some(c) = self.cache.lock().ok().and_then(|cache| cache.get(&host).cloned()) {
            return Ok(c);
        }
        let found = self.lookup(&host)?;
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(host, found.clone());
        }
        Ok(found)
    }

    /// Docker's order: a `credHelpers` entry for the host, else the `credsStore`, else the inline
    /// `auths` entry. An inline entry is also the fallback when the store knows nothing.
    fn lookup(&self, host: &str) -> Result<Option<Credential>> {
        let config = self.config.as_ref().map_err(|e| anyhow!("docker config {e}"))?;
        let inline = config.auths.iter().find(|(k, _)| normalize_registry(k) == host);
        if let Some((key, helper)) = config.cred_helpers.iter().find(|(k, _)| normalize_registry(k) == host) {
            return self.run_helper(helper, key, host);
        }
        if let Some(store) = config.creds_store.as_deref().filter(|s| !s.is_empty()) {
            let server = inline.map(|(k, _)| k.as_str()).unwrap_or(if host == DOCKER_HUB { DOCKER_HUB_CONFIG_KEY } else { host });
            if let Some(c) = self.run_helper(store, server, host)? {
                return Ok(Some(c));
            }
        }
        match inline {
            Some((_, entry)) => {
                entry_credential(entry).with_context(|| format!("docker config {}: bad `auths` entry for {host}", self.source_name()))
            }
            None => Ok(None),
        }
    }

    fn source_name(&self) -> String {
        self.source.as_ref().map(|p| p.display().to_string()).unwrap_or_else(|| "<none>".into())
    }

    /// Runs `docker-credential-<name> get` with the server URL on stdin. "Not found" (a non-zero
    /// exit, by the helper protocol) means no credential. Neither its output nor its stderr goes
    /// into error messages: both may hold the secret.
    fn run_helper(&self, name: &str, server: &str, host: &str) -> Result<Option<Credential>> {
        if name.is_empty() || name.contains('/') {
            bail!("docker config {}: invalid credential helper name for {host}", self.source_name());
        }
        let program = format!("docker-credential-{name}");
        let path = self.helper_dir.as_ref().map(|d| d.join(&program)).filter(|p| p.exists()).unwrap_or_else(|| PathBuf::from(&program));
        let mut child = Command::new(&path)
            .arg("get")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("credentials for {host}: cannot run {program}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading stdin gives EPIPE here; its exit status says more.
            let _ = stdin.write_all(server.as_bytes());
        }
        let out = child.wait_with_output().with_context(|| format!("credentials for {host}: {program} failed"))?;
        if !out.status.success() {
            return Ok(None);
        }
        let reply: HelperReply = serde_json::from_slice(&out.stdout)
            .map_err(|_| anyhow!("credentials for {host}: {program} printed something that is not credential JSON"))?;
        Ok(match (reply.username.as_str(), reply.secret) {
            (_, s) if s.is_empty() => None,
            ("<token>", s) => Some(Credential::IdentityToken(s)),
            (u, s) => Some(Credential::Basic { username: u.to_string(), password: s }),
        })
    }
}

/// Parses a config file. serde's messages can quote the offending value, which may be a secret,
/// so only the position is reported.
fn parse_config(bytes: &[u8]) -> std::result::Result<DockerConfig, String> {
    serde_json::from_slice(bytes).map_err(|e| format!("is not a valid docker config (line {}, column {})", e.line(), e.column()))
}

/// One inline `auths` entry: `identitytoken` wins (that is what `docker login` to an OAuth
/// registry stores), then `auth` (base64 of `user:password`), then explicit fields.
fn entry_credential(entry: &AuthEntry) -> Result<Option<Credential>> {
    if let Some(t) = entry.identitytoken.as_deref().filter(|t| !t.is_empty()) {
        return Ok(Some(Credential::IdentityToken(t.to_string())));
    }
    if let Some(a) = entry.auth.as_deref().map(str::trim).filter(|a| !a.is_empty()) {
        let decoded = STANDARD.decode(a).or_else(|_| STANDARD_NO_PAD.decode(a)).map_err(|_| anyhow!("`auth` is not base64"))?;
        let text = String::from_utf8(decoded).map_err(|_| anyhow!("`auth` is not UTF-8"))?;
        let (user, pass) = text.split_once(':').ok_or_else(|| anyhow!("`auth` is not user:password"))?;
        return Ok(Some(Credential::Basic { username: user.to_string(), password: pass.to_string() }));
    }
    match (&entry.username, &entry.password) {
        (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credential::Basic { username: u.clone(), password: p.clone() })),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn basic(u: &str, p: &str) -> Option<Credential> {
        Some(Credential::Basic { username: u.into(), password: p.into() })
    }

    #[test]
    fn config_path_precedence() {
        let env =
            |pairs: &'static [(&'static str, &'static str)]| move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
        assert_eq!(
            config_path_from(env(&[("REGISTRY_AUTH_FILE", "/a/auth.json"), ("DOCKER_CONFIG", "/d"), ("HOME", "/h")])),
            Some(PathBuf::from("/a/auth.json"))
        );
        assert_eq!(config_path_from(env(&[("DOCKER_CONFIG", "/d"), ("HOME", "/h")])), Some(PathBuf::from("/d/config.json")));
        assert_eq!(config_path_from(env(&[("DOCKER_CONFIG", ""), ("HOME", "/h")])), Some(PathBuf::from("/h/.docker/config.json")));
        assert_eq!(config_path_from(env(&[])), None);
    }

    #[test]
    fn normalizes_config_keys() {
        assert_eq!(normalize_registry("https://index.docker.io/v1/"), "index.docker.io");
        assert_eq!(normalize_registry("docker.io"), "index.docker.io");
        assert_eq!(normalize_registry("registry-1.docker.io"), "index.docker.io");
        assert_eq!(normalize_registry("http://Localhost:5000/"), "localhost:5000");
        assert_eq!(normalize_registry("gcr.io"), "gcr.io");
    }

    #[test]
    fn reads_auths_entries() {
        let dir = tempfile::tempdir().unwrap();
        let config = serde_json::json!({
            "auths": {
                "https://index.docker.io/v1/": {"auth": STANDARD.encode("hubuser:hub:pass")},
                "nopad.example": {"auth": STANDARD_NO_PAD.encode("u:p1")},
                "fields.example:5000": {"username": "fu", "password": "fp"},
                "token.example": {"auth": "", "identitytoken": "refresh-me"},
                "empty.example": {},
            }
        });
        let path = config_path_from(|k| (k == "DOCKER_CONFIG").then(|| dir.path().display().to_string())).unwrap();
        std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
        let keys = Keychain::from_file(&path);
        // The password may itself contain ':'; only the first separates.
        assert_eq!(keys.get("index.docker.io").unwrap(), basic("hubuser", "hub:pass"));
        assert_eq!(keys.get("docker.io").unwrap(), basic("hubuser", "hub:pass"));
        assert_eq!(keys.get("nopad.example").unwrap(), basic("u", "p1"));
        assert_eq!(keys.get("fields.example:5000").unwrap(), basic("fu", "fp"));
        assert_eq!(keys.get("fields.example").unwrap(), None);
        assert_eq!(keys.get("token.example").unwrap(), Some(Credential::IdentityToken("refresh-me".into())));
        assert_eq!(keys.get("empty.example").unwrap(), None);
        assert_eq!(keys.get("other.example").unwrap(), None);
        let debug = format!("{keys:?} {:?}", keys.get("docker.io").unwrap());
        assert!(!debug.contains("hub:pass") && !debug.contains("hubuser"), "{debug}");
    }

    #[test]
    fn missing_and_broken_configs() {
        let dir = tempfile::tempdir().unwrap();
        let keys = Keychain::from_file(&dir.path().join("config.json"));
        assert_eq!(keys.get("any.example").unwrap(), None);
        let path = dir.path().join("broken.json");
        std::fs::write(&path, br#"{"auths": "supersecret"}"#).unwrap();
        let err = format!("{:#}", Keychain::from_file(&path).get("any.example").unwrap_err());
        assert!(err.contains("broken.json") && !err.contains("supersecret"), "{err}");
        std::fs::write(&path, br#"{"auths": {"x.example": {"auth": "c2VjcmV0"}}}"#).unwrap();
        let err = format!("{:#}", Keychain::from_file(&path).get("x.example").unwrap_err());
        assert!(err.contains("x.example") && !err.contains("c2VjcmV0") && !err.contains("secret"), "{err}");
    }

    /// Writes a fake `docker-credential-<name>` that answers for one server URL and logs calls.
    fn fake_helper(dir: &Path, name: &str, server: &str, user: &str, secret: &str) {
        let path = dir.join(format!("docker-credential-{name}"));
        let script = format!(
            "#!/bin/sh\n[ \"$1\" = get ] || exit 2\nread -r server\necho \"$server\" >> '{log}'\n\
             if [ \"$server\" = '{server}' ]; then printf '{{\"ServerURL\":\"%s\",\"Username\":\"{user}\",\"Secret\":\"{secret}\"}}' \"$server\"; exit 0; fi\n\
             echo 'credentials not found in native keychain'; exit 1\n",
            log = dir.join(format!("{name}.log")).display()
        );
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn selects_credential_helpers() {
        let dir = tempfile::tempdir().unwrap();
        fake_helper(dir.path(), "special", "special.example", "su", "s-secret");
        fake_helper(dir.path(), "store", DOCKER_HUB_CONFIG_KEY, "<token>", "hub-refresh");
        let config = serde_json::json!({
            "auths": {
                "https://index.docker.io/v1/": {},
                "inline.example": {"auth": STANDARD.encode("iu:ip")},
                "special.example": {"auth": STANDARD.encode("shadowed:no")},
            },
            "credHelpers": {"special.example": "special", "broken.example": "missing-helper"},
            "credsStore": "store",
        });
        let path = dir.path().join("config.json");
        std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
        let keys = Keychain::from_file(&path).with_helper_dir(dir.path());
        // credHelpers wins over both the store and an inline entry.
        assert_eq!(keys.get("special.example").unwrap(), basic("su", "s-secret"));
        // The store is asked with the key docker uses for Hub; "<token>" means a refresh token.
        assert_eq!(keys.get("docker.io").unwrap(), Some(Credential::IdentityToken("hub-refresh".into())));
        // The store knows nothing about this one: fall back to the inline entry.
        assert_eq!(keys.get("inline.example").unwrap(), basic("iu", "ip"));
        assert_eq!(keys.get("nothing.example").unwrap(), None);
        // Answers are cached: asking again does not run the helper again.
        assert_eq!(keys.get("special.example").unwrap(), basic("su", "s-secret"));
        let log = std::fs::read_to_string(dir.path().join("special.log")).unwrap();
        assert_eq!(log.lines().collect::<Vec<_>>(), ["special.example"]);
        let err = format!("{:#}", keys.get("broken.example").unwrap_err());
        assert!(err.contains("docker-credential-missing-helper"), "{err}");
    }
}
