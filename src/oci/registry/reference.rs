//! Image references as Docker and rules_oci read them (`registry/repository[:tag][@digest]`),
//! and the checks every registry request makes on the names it puts into a URL.

use std::fmt;
use std::sync::LazyLock;

use anyhow::{Result, anyhow, bail};

use super::auth;
use regex::Regex;

static REPOSITORY_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$").expect("valid regex")
});
static TAG_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$").expect("valid regex"));
static DIGEST_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+$").expect("valid regex"));
static SHA256_RE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^sha256:[a-f0-9]{64}$").expect("valid regex"));
static REGISTRY_RE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?$",
    )
    .expect("valid regex")
});

/// An image reference, `registry/repository[:tag][@digest]`, normalised like Docker does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reference {
    pub registry: String,
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Reference {
    /// Parses by Docker's rules (which `oci_pull`'s `image` attribute follows): the first path
    /// component is a registry only if it has a `.` or `:` or is `localhost`, otherwise the
    /// reference is on Docker Hub (`index.docker.io`, with `library/` for one-component names);
    /// `docker.io` and `registry-1.docker.io` are Hub aliases. An `http(s)://` prefix is accepted
    /// and dropped, as rules_oci does.
    pub fn parse(s: &str) -> Result<Reference> {
        let bad = |why: &str| anyhow!("invalid image reference {s:?}: {why}");
        let rest = s.trim();
        let rest = rest.strip_prefix("https://").or_else(|| rest.strip_prefix("http://")).unwrap_or(rest);
        if rest.is_empty() {
            return Err(bad("empty"));
        }
        let (rest, digest) = match rest.split_once('@') {
            Some((r, d)) => {
                if !DIGEST_RE.is_match(d) {
                    return Err(bad("malformed digest"));
                }
                if d.starts_with("sha256:") && !SHA256_RE.is_match(d) {
                    return Err(bad("a sha256 digest is 64 lower-case hex digits"));
                }
                (r, Some(d.to_string()))
            }
            None => (rest, None),
        };
        // A ':' after the last '/' starts the tag; one before it is a registry port.
        let (name, tag) = match rest.rfind(':') {
            Some(i) if i > rest.rfind('/').unwrap_or(0) || !rest.contains('/') => {
                let tag = &rest[i + 1..];
                if !TAG_RE.is_match(tag) {
                    return Err(bad("malformed tag"));
                }
                (&rest[..i], Some(tag.to_string()))
            }
            _ => (rest, None),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, path)) if first.contains('.') || first.contains(':') || first == "localhost" => {
                (first.to_string(), path.to_string())
            }
            _ => (auth::DOCKER_HUB.to_string(), name.to_string()),
        };
        let registry = match registry.to_ascii_lowercase().as_str() {
            "docker.io" | "registry-1.docker.io" | "index.docker.io" => auth::DOCKER_HUB.to_string(),
            _ => registry,
        };
        let repository =
            if registry == auth::DOCKER_HUB && !repository.contains('/') { format!("library/{repository}") } else { repository };
        if !REGISTRY_RE.is_match(&registry) {
            return Err(bad("malformed registry host"));
        }
        if !REPOSITORY_RE.is_match(&repository) {
            return Err(bad("repository must be lower-case letters, digits and separators (. _ __ - /)"));
        }
        Ok(Reference { registry, repository, tag, digest })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

pub(super) fn check_names(registry: &str, repository: &str) -> Result<()> {
    if !REGISTRY_RE.is_match(registry) {
        bail!("invalid registry {registry:?}");
    }
    if !REPOSITORY_RE.is_match(repository) {
        bail!("invalid repository name {repository:?} for registry {registry}");
    }
    Ok(())
}

pub(super) fn check_digest(digest: &str) -> Result<()> {
    if !DIGEST_RE.is_match(digest) || (digest.starts_with("sha256:") && !SHA256_RE.is_match(digest)) {
        bail!("invalid digest {digest:?}");
    }
    Ok(())
}

pub(super) fn check_reference(reference: &str) -> Result<()> {
    if reference.contains(':') {
        check_digest(reference)
    } else if TAG_RE.is_match(reference) {
        Ok(())
    } else {
        bail!("invalid tag {reference:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(registry: &str, repository: &str, tag: Option<&str>, digest: Option<&str>) -> Reference {
        Reference { registry: registry.into(), repository: repository.into(), tag: tag.map(Into::into), digest: digest.map(Into::into) }
    }

    #[test]
    fn parses_references() {
        let d = format!("sha256:{}", "a".repeat(64));
        let hub = "index.docker.io";
        let cases: Vec<(String, Reference)> = vec![
            ("ubuntu".into(), r(hub, "library/ubuntu", None, None)),
            ("ubuntu:22.04".into(), r(hub, "library/ubuntu", Some("22.04"), None)),
            ("library/ubuntu".into(), r(hub, "library/ubuntu", None, None)),
            ("bitnami/redis:7".into(), r(hub, "bitnami/redis", Some("7"), None)),
            ("docker.io/ubuntu".into(), r(hub, "library/ubuntu", None, None)),
            ("docker.io/library/ubuntu:latest".into(), r(hub, "library/ubuntu", Some("latest"), None)),
            ("registry-1.docker.io/foo/bar".into(), r(hub, "foo/bar", None, None)),
            ("index.docker.io/foo/bar".into(), r(hub, "foo/bar", None, None)),
            ("gcr.io/distroless/base".into(), r("gcr.io", "distroless/base", None, None)),
            (format!("gcr.io/distroless/base@{d}"), r("gcr.io", "distroless/base", None, Some(&d))),
            (format!("gcr.io/distroless/base:nonroot@{d}"), r("gcr.io", "distroless/base", Some("nonroot"), Some(&d))),
            ("localhost/foo".into(), r("localhost", "foo", None, None)),
            ("localhost:5000/foo/bar:v1".into(), r("localhost:5000", "foo/bar", Some("v1"), None)),
            ("127.0.0.1:5000/a/b/c".into(), r("127.0.0.1:5000", "a/b/c", None, None)),
            ("https://ghcr.io/owner/img:1.2.3".into(), r("ghcr.io", "owner/img", Some("1.2.3"), None)),
            ("http://my.reg:8080/x".into(), r("my.reg:8080", "x", None, None)),
            ("[::1]:5000/img".into(), r("[::1]:5000", "img", None, None)),
            ("reg.example/a_b/c-d/e__f.g:T_1".into(), r("reg.example", "a_b/c-d/e__f.g", Some("T_1"), None)),
        ];
        for (input, want) in cases {
            assert_eq!(Reference::parse(&input).unwrap(), want, "{input}");
        }
        assert_eq!(Reference::parse("gcr.io/a/b:t").unwrap().to_string(), "gcr.io/a/b:t");
        for bad in
            ["", "Ubuntu", "gcr.io/Foo/bar", "ubuntu:", "ubuntu@sha256:abc", "ubuntu:-bad", "a//b", "gcr.io/", "ubuntu@nodigest", "a/b:t/c"]
        {
            assert!(Reference::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
