//! TLS for `grpcs://` and `https://` remotes, from Bazel's flags: `--tls_certificate` (the
//! CA certificates to trust, instead of the system's), `--tls_client_certificate` and
//! `--tls_client_key` (a client certificate for servers that require one). The files are read
//! and checked once, before connecting, so a wrong path or a file of the wrong kind is an
//! error naming the flag and the file; the key's bytes never reach a message or a log.

use std::path::Path;

use anyhow::{Context, Result, bail};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The PEM text of the TLS files. `Debug` shows which are set, never their bytes.
#[derive(Clone, Default)]
pub struct TlsOptions {
    /// `--tls_certificate`: CA certificates that sign servers' certificates (PEM). Given, they
    /// are the only ones trusted, as in Bazel; otherwise the system's CA certificates are.
    pub ca_certificates: Option<Vec<u8>>,
    /// `--tls_client_certificate` and `--tls_client_key`: the certificate chain and private key
    /// (PEM) presented to a server that asks for one (mutual TLS).
    pub client_identity: Option<ClientIdentity>,
}

/// A client certificate chain and its private key, both PEM.
#[derive(Clone)]
pub struct ClientIdentity {
    pub certificate: Vec<u8>,
    pub key: Vec<u8>,
}

impl std::fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsOptions")
            .field("ca_certificates", &self.ca_certificates.as_ref().map(|c| format!("{} bytes", c.len())))
            .field("client_identity", &self.client_identity.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl TlsOptions {
    /// Reads and checks the files the three flags name.
    pub fn from_files(ca: Option<&Path>, client_certificate: Option<&Path>, client_key: Option<&Path>) -> Result<TlsOptions> {
        let ca_certificates = match ca {
            Some(path) => {
                let pem = read("--tls_certificate", path)?;
                certificates("--tls_certificate", path, &pem)?;
                Some(pem)
            }
            None => None,
        };
        let client_identity = match (client_certificate, client_key) {
            (None, None) => None,
            (Some(_), None) | (None, Some(_)) => {
                bail!("--tls_client_certificate and --tls_client_key must be given together")
            }
            (Some(cert_path), Some(key_path)) => {
                let certificate = read("--tls_client_certificate", cert_path)?;
                certificates("--tls_client_certificate", cert_path, &certificate)?;
                let key = read("--tls_client_key", key_path)?;
                // The parser's own error could quote a line of the file: say what is wanted.
                if PrivateKeyDer::from_pem_slice(&key).is_err() {
                    bail!(
                        "--tls_client_key={}: no PEM private key (PKCS#8 'PRIVATE KEY', PKCS#1 'RSA PRIVATE KEY' or SEC1 'EC PRIVATE KEY') in the file",
                        key_path.display()
                    );
                }
                Some(ClientIdentity { certificate, key })
            }
        };
        Ok(TlsOptions { ca_certificates, client_identity })
    }

    /// Whether any TLS file was given.
    pub fn is_set(&self) -> bool {
        self.ca_certificates.is_some() || self.client_identity.is_some()
    }
}

/// What to do about a TLS failure, from the words of its error (rustls' certificate errors,
/// or a connection the server closed, which is how a TLS 1.3 server refuses a client
/// without a certificate).
pub fn hint(error: &str, tls: &TlsOptions) -> Option<&'static str> {
    hint_for(error, tls.ca_certificates.is_some(), tls.client_identity.is_some())
}

/// [`hint`] for a remote given CA certificates (`has_ca`) and a client certificate or not.
pub fn hint_for(error: &str, has_ca: bool, has_client_certificate: bool) -> Option<&'static str> {
    if error.contains("UnknownIssuer") {
        return Some(if has_ca {
            "the server's certificate is not signed by a CA of --tls_certificate"
        } else {
            "the server's certificate is not signed by a CA this system trusts: name its CA with --tls_certificate=FILE"
        });
    }
    if error.contains("NotValidForName") {
        return Some("the server's certificate is not for the host name in the URL");
    }
    if error.contains("Expired") && error.contains("certificate") {
        return Some("the server's certificate has expired");
    }
    // A server that requires a client certificate ends the handshake; what the client sees
    // depends on timing (seen in CI: "stream closed because of a broken pipe").
    let closed =
        ["connection closed", "closed connection", "close_notify", "reset by peer", "broken pipe", "stream closed", "CertificateRequired"];
    if !has_client_certificate && closed.iter().any(|w| error.contains(w)) {
        return Some("if the server requires a client certificate, give it with --tls_client_certificate and --tls_client_key");
    }
    None
}

fn read(flag: &str, path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("{flag}={}: cannot read the file", path.display()))
}

/// Checks that `pem` holds at least one certificate and that each parses.
fn certificates(flag: &str, path: &Path, pem: &[u8]) -> Result<()> {
    let mut n = 0;
    for cert in CertificateDer::pem_slice_iter(pem) {
        cert.map_err(|e| anyhow::anyhow!("{flag}={}: not a PEM certificate file: {e}", path.display()))?;
        n += 1;
    }
    if n == 0 {
        bail!("{flag}={}: no PEM certificate ('-----BEGIN CERTIFICATE-----') in the file", path.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CERT: &str =
        "-----BEGIN CERTIFICATE-----\nMIIBfTCCASOgAwIBAgIUQ2VydGlmaWNhdGUgZm9yIHRlc3RzMAoGCCqGSM49BAMC\n-----END CERTIFICATE-----\n";

    #[test]
    fn flags_are_checked_and_the_key_never_shows() {
        let dir = tempfile::tempdir().unwrap();
        let cert = dir.path().join("cert.pem");
        std::fs::write(&cert, CERT).unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw==\n-----END PRIVATE KEY-----\n").unwrap();
        let tls = TlsOptions::from_files(Some(&cert), Some(&cert), Some(&key)).unwrap();
        assert!(tls.is_set());
        let shown = format!("{tls:?}");
        assert!(!shown.contains("c2VjcmV0") && shown.contains("<set>"), "{shown}");

        let err = TlsOptions::from_files(None, Some(&cert), None).unwrap_err();
        assert!(format!("{err:#}").contains("must be given together"), "{err:#}");
        let err = TlsOptions::from_files(Some(&key), None, None).unwrap_err();
        assert!(format!("{err:#}").contains("--tls_certificate=") && format!("{err:#}").contains("no PEM certificate"), "{err:#}");
        let err = TlsOptions::from_files(None, Some(&cert), Some(&cert)).unwrap_err();
        assert!(format!("{err:#}").contains("--tls_client_key=") && !format!("{err:#}").contains("MIIB"), "{err:#}");
        let err = TlsOptions::from_files(Some(&dir.path().join("missing.pem")), None, None).unwrap_err();
        assert!(format!("{err:#}").contains("missing.pem"), "{err:#}");
    }

    #[test]
    fn a_handshake_a_server_ends_hints_at_the_client_certificate() {
        // Both forms a refused handshake has taken in tests against BuildGrid.
        for error in [
            "GetCapabilities: Unknown: transport error: connection error: stream closed because of a broken pipe",
            "GetCapabilities: Unavailable: connection closed before message completed",
        ] {
            assert!(hint_for(error, true, false).is_some_and(|h| h.contains("--tls_client_certificate")), "{error}");
            assert_eq!(hint_for(error, true, true), None, "{error}");
        }
    }
}
