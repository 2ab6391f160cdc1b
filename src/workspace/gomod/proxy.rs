//! The GOPROXY protocol client (`go help goproxy`): `$GOPROXY` as a list of `http(s)://` and
//! `file://` proxies, `/@v/<version>.mod` and `.zip` by escaped module path and version.
//! `direct` (fetching from version control) and `off` are clear errors: ocib only talks to
//! module proxies.

use std::time::Duration;

use anyhow::{Result, anyhow, bail};

/// One entry of `$GOPROXY`, with whether a failure may fall through to the next entry on any
/// error (`|` after it) or only on "not found" (`,` after it), as cmd/go does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyEntry {
    pub url: String,
    pub fallthrough_on_error: bool,
}

/// The proxy list of `value` (`$GOPROXY`, default `https://proxy.golang.org,direct`).
pub fn parse_goproxy(value: &str) -> Vec<ProxyEntry> {
    let mut out = Vec::new();
    let mut rest = value.trim();
    while !rest.is_empty() {
        let end = rest.find([',', '|']).unwrap_or(rest.len());
        let url = rest[..end].trim().trim_end_matches('/').to_owned();
        let sep = rest[end..].chars().next();
        if !url.is_empty() {
            out.push(ProxyEntry { url, fallthrough_on_error: sep == Some('|') });
        }
        rest = rest.get(end + 1..).unwrap_or("");
    }
    out
}

/// `golang.org/x/mod/module.EscapePath`: upper-case letters become `!` and the lower-case
/// letter, so paths stay unique on case-insensitive file systems.
pub fn escape(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for c in path.chars() {
        if c.is_ascii_uppercase() {
            out.push('!');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Why one proxy could not serve a file.
#[derive(Debug)]
enum Miss {
    /// 404/410 or a missing file: the next proxy may have it.
    NotFound(String),
    Failed(anyhow::Error),
}

/// A client for the proxies of one `$GOPROXY` value.
pub struct ProxyClient {
    entries: Vec<ProxyEntry>,
    http: std::sync::OnceLock<Result<reqwest::blocking::Client, String>>,
    /// Requests made (for `--explain`-style messages and tests that count fetches).
    pub requests: std::sync::atomic::AtomicUsize,
}

impl ProxyClient {
    /// A client for `$GOPROXY` (as read from the environment by the caller).
    pub fn new(goproxy: &str) -> ProxyClient {
        ProxyClient { entries: parse_goproxy(goproxy), http: std::sync::OnceLock::new(), requests: Default::default() }
    }

    fn http(&self) -> Result<&reqwest::blocking::Client> {
        let client = self.http.get_or_init(|| {
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::blocking::Client::builder()
                .connect_timeout(Duration::from_secs(15))
                .timeout(Duration::from_secs(300))
                .user_agent(concat!("ocib/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(|e| format!("creating the HTTP client: {e}"))
        });
        client.as_ref().map_err(|e| anyhow!("{e}"))
    }

    /// `<module>/@v/<version>.<ext>` from the first proxy that has it.
    pub fn fetch(&self, module: &str, version: &str, ext: &str) -> Result<Vec<u8>> {
        let rel = format!("{}/@v/{}.{ext}", escape(module), escape(version));
        if self.entries.is_empty() {
            bail!("GOPROXY is empty: set GOPROXY to a module proxy (https://..., http://... or file://...)");
        }
        let mut not_found = Vec::new();
        for entry in &self.entries {
            let miss = match entry.url.as_str() {
                "off" => bail!("module lookup disabled by GOPROXY=off"),
                "direct" => bail!(
                    "GOPROXY lists 'direct', but ocib fetches modules only through a module proxy (no version control access); {}",
                    if not_found.is_empty() {
                        "put a proxy before it".to_owned()
                    } else {
                        format!("not found in: {}", not_found.join(", "))
                    }
                ),
                url => match self.get(url, &rel) {
                    Ok(bytes) => return Ok(bytes),
                    Err(m) => m,
                },
            };
            match miss {
                Miss::NotFound(why) => not_found.push(why),
                Miss::Failed(e) if entry.fallthrough_on_error => not_found.push(format!("{e:#}")),
                Miss::Failed(e) => return Err(e),
            }
        }
        bail!("not found: {}", not_found.join("; "))
    }

    fn get(&self, base: &str, rel: &str) -> Result<Vec<u8>, Miss> {
        self.requests.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if let Some(dir) = base.strip_prefix("file://") {
            let path = std::path::Path::new(dir).join(rel);
            return match std::fs::read(&path) {
                Ok(bytes) => Ok(bytes),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Miss::NotFound(format!("{} does not exist", path.display()))),
                Err(e) => Err(Miss::Failed(anyhow!("reading {}: {e}", path.display()))),
            };
        }
        if !base.starts_with("http://") && !base.starts_with("https://") {
            return Err(Miss::Failed(anyhow!("GOPROXY entry '{base}' is not a URL (http://, https:// or file://)")));
        }
        let url = format!("{base}/{rel}");
        let http = self.http().map_err(Miss::Failed)?;
        let response = http.get(&url).send().map_err(|e| Miss::Failed(anyhow!("GET {url}: {e}")))?;
        let status = response.status();
        if status == reqwest::StatusCode::NOT_FOUND || status == reqwest::StatusCode::GONE {
            return Err(Miss::NotFound(format!("GET {url}: {status}")));
        }
        if !status.is_success() {
            return Err(Miss::Failed(anyhow!("GET {url}: {status}")));
        }
        response.bytes().map(|b| b.to_vec()).map_err(|e| Miss::Failed(anyhow!("GET {url}: reading the body: {e}")))
    }
}

/// Whether `module` matches one of the comma-separated glob patterns of `$GONOSUMDB` /
/// `$GOPRIVATE` (`module.MatchPrefixPatterns`: each pattern matches a path prefix of whole
/// elements).
pub fn matches_prefix_patterns(patterns: &str, module: &str) -> bool {
    patterns.split(',').map(str::trim).filter(|p| !p.is_empty()).any(|pattern| {
        let n = pattern.split('/').count();
        let prefix: Vec<&str> = module.split('/').take(n).collect();
        if prefix.len() < n {
            return false;
        }
        globset::Glob::new(pattern).map(|g| g.compile_matcher().is_match(prefix.join("/"))).unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn goproxy_lists() {
        let l = parse_goproxy("http://a,file:///b|direct");
        assert_eq!(l.len(), 3);
        assert!(!l[0].fallthrough_on_error);
        assert!(l[1].fallthrough_on_error);
        assert_eq!(l[2].url, "direct");
    }

    #[test]
    fn escapes_upper_case() {
        assert_eq!(escape("github.com/Azure/go-autorest"), "github.com/!azure/go-autorest");
    }

    #[test]
    fn direct_and_off_are_clear_errors() {
        let err = ProxyClient::new("direct").fetch("example.com/a", "v1.0.0", "zip").unwrap_err().to_string();
        assert!(err.contains("only through a module proxy"), "{err}");
        let err = ProxyClient::new("off").fetch("example.com/a", "v1.0.0", "zip").unwrap_err().to_string();
        assert!(err.contains("GOPROXY=off"), "{err}");
    }

    #[test]
    fn file_proxy_falls_through_on_not_found() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(b.path().join("example.com/!x/@v")).unwrap();
        std::fs::write(b.path().join("example.com/!x/@v/v1.0.0.mod"), "module example.com/X\n").unwrap();
        let client = ProxyClient::new(&format!("file://{},file://{}", a.path().display(), b.path().display()));
        assert_eq!(client.fetch("example.com/X", "v1.0.0", "mod").unwrap(), b"module example.com/X\n");
        assert!(client.fetch("example.com/X", "v2.0.0", "mod").unwrap_err().to_string().contains("not found"));
    }

    #[test]
    fn private_patterns() {
        assert!(matches_prefix_patterns("*.corp.example.com,rsc.io/private", "git.corp.example.com/x/y"));
        assert!(matches_prefix_patterns("rsc.io/private", "rsc.io/private/quote"));
        assert!(!matches_prefix_patterns("rsc.io/private", "rsc.io/public"));
    }
}
