//! Reading `.apk` packages: three concatenated gzip streams (signature, control with
//! `.PKGINFO`, data), each a tar fragment (apk-tools' v2 format; the signature is absent in
//! most Wolfi packages). The control section's SHA-1 is the package's identity (`C:Q1…` in the
//! installed database, the lock's `checksum`), the data section's SHA-256 is `.PKGINFO`'s
//! `datahash`.

use std::io::Read;

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use sha1::Digest;

/// One gzip member of an apk, compressed and decompressed.
pub struct Section {
    pub compressed: Vec<u8>,
    pub tar: Vec<u8>,
}

/// The sections of a package.
pub struct ApkSections {
    pub signature: Option<Section>,
    pub control: Section,
    pub data: Section,
}

/// Splits an apk into its gzip members. flate2's `bufread` decoder stops exactly at the end
/// of a member, so what is left of the slice is the next one.
pub fn split(bytes: &[u8]) -> Result<ApkSections> {
    let mut rest = bytes;
    let mut sections = Vec::new();
    while !rest.is_empty() {
        let before = rest.len();
        let mut decoder = flate2::bufread::GzDecoder::new(rest);
        let mut tar = Vec::new();
        decoder.read_to_end(&mut tar).context("not a gzip stream")?;
        rest = decoder.into_inner();
        let used = before - rest.len();
        let start = bytes.len() - before;
        sections.push(Section { compressed: bytes[start..start + used].to_vec(), tar });
        if sections.len() > 3 {
            bail!("more than three gzip streams (signature, control, data)");
        }
    }
    let has_pkginfo = |s: &Section| tar_names(&s.tar).iter().any(|n| n == ".PKGINFO");
    let mut it = sections.into_iter();
    match (it.next(), it.next(), it.next()) {
        (Some(sig), Some(control), Some(data)) if has_pkginfo(&control) => Ok(ApkSections { signature: Some(sig), control, data }),
        (Some(control), Some(data), None) if has_pkginfo(&control) => Ok(ApkSections { signature: None, control, data }),
        _ => Err(anyhow!("expected gzip streams [signature,] control (with .PKGINFO), data")),
    }
}

/// Member names of a tar fragment (which may lack the end-of-archive blocks, as apk's do).
fn tar_names(tar: &[u8]) -> Vec<String> {
    let mut names = Vec::new();
    let mut archive = tar::Archive::new(tar);
    if let Ok(entries) = archive.entries() {
        for e in entries.flatten() {
            if let Ok(p) = e.path() {
                names.push(p.to_string_lossy().into_owned());
            }
        }
    }
    names
}

/// `.PKGINFO`: `key = value` lines; keys may repeat (`depend`, `provides`…).
#[derive(Debug, Clone, Default)]
pub struct PkgInfo {
    pub fields: Vec<(String, String)>,
}

impl PkgInfo {
    pub fn parse(text: &str) -> PkgInfo {
        let fields = text
            .lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .filter_map(|l| l.split_once(" = ").map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned())))
            .collect();
        PkgInfo { fields }
    }

    pub fn get(&self, key: &str) -> &str {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or("")
    }

    pub fn all(&self, key: &str) -> Vec<String> {
        self.fields.iter().filter(|(k, _)| k == key).map(|(_, v)| v.clone()).collect()
    }
}

/// Reads `.PKGINFO` out of the control section.
pub fn pkginfo(control_tar: &[u8]) -> Result<PkgInfo> {
    let mut archive = tar::Archive::new(control_tar);
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.path()?.to_string_lossy() == ".PKGINFO" {
            let mut text = String::new();
            entry.read_to_string(&mut text).context("reading .PKGINFO")?;
            return Ok(PkgInfo::parse(&text));
        }
    }
    bail!("the control section has no .PKGINFO")
}

/// apk's `Q1` + base64(SHA-1) checksum form.
pub fn q1(bytes: &[u8]) -> String {
    format!("Q1{}", base64::engine::general_purpose::STANDARD.encode(sha1::Sha1::digest(bytes)))
}

/// Checks `bytes` against a Subresource-Integrity checksum (`sha1-<base64>`, `sha256-<base64>`)
/// as rules_apko's locks give them; returns the actual value in the same form on mismatch.
pub fn verify_sri(bytes: &[u8], expected: &str) -> std::result::Result<(), String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    let actual = match expected.split_once('-') {
        Some(("sha1", _)) => format!("sha1-{}", b64.encode(sha1::Sha1::digest(bytes))),
        Some(("sha256", _)) => format!("sha256-{}", b64.encode(sha2::Sha256::digest(bytes))),
        Some(("sha512", _)) => format!("sha512-{}", b64.encode(sha2::Sha512::digest(bytes))),
        _ => return Err(format!("unsupported checksum form '{expected}' (expected sha1-…, sha256-… or sha512-…)")),
    };
    if actual == expected { Ok(()) } else { Err(actual) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkginfo_fields() {
        let p = PkgInfo::parse("# generated\npkgname = busybox\npkgver = 1.36-r0\ndepend = so:libc.so\ndepend = musl\n");
        assert_eq!(p.get("pkgname"), "busybox");
        assert_eq!(p.all("depend"), vec!["so:libc.so", "musl"]);
        assert_eq!(p.get("nope"), "");
    }

    #[test]
    fn sri_checks() {
        assert!(verify_sri(b"abc", "sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=").is_ok());
        assert_eq!(verify_sri(b"abc", "sha1-AAAA").unwrap_err(), "sha1-qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
        assert_eq!(q1(b"abc"), "Q1qZk+NkcGgWq6PiVxeFDCbJzQ2J0=");
    }
}
