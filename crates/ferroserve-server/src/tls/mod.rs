//! TLS for the HTTP listener: the PEM files named at start, read into a
//! rustls server configuration (ring provider, HTTP/1.1), with client
//! certificates required when a client CA bundle is given.

mod reload;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

pub use reload::TlsSource;

/// The PEM files TLS is served from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// Certificate chain, the server's own certificate first.
    pub cert: PathBuf,
    /// Private key of the certificate.
    pub key: PathBuf,
    /// CA bundle client certificates must be signed by; `None`: clients
    /// present no certificate.
    pub client_ca: Option<PathBuf>,
}

impl TlsFiles {
    /// Every file, for watching them.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        [Some(&self.cert), Some(&self.key), self.client_ca.as_ref()]
            .into_iter()
            .flatten()
            .map(PathBuf::as_path)
    }
}

/// Why the TLS files could not be used: names the file and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsError(String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

/// Reads `files` into a server configuration.
pub fn server_config(files: &TlsFiles) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(format!("cannot set up TLS: {e}")))?;
    let builder = match &files.client_ca {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            for cert in read_certificates(path, "client CA bundle")? {
                roots.add(cert).map_err(|e| {
                    TlsError(format!(
                        "the client CA bundle {} holds an unusable certificate: {e}",
                        path.display()
                    ))
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|e| {
                    TlsError(format!(
                        "cannot verify clients against {}: {e}",
                        path.display()
                    ))
                })?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let certificates = read_certificates(&files.cert, "certificate")?;
    let key = read_private_key(&files.key)?;
    let mut config = builder.with_single_cert(certificates, key).map_err(|e| {
        TlsError(format!(
            "the certificate {} and the key {} cannot be used together: {e}",
            files.cert.display(),
            files.key.display()
        ))
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn read_file(path: &Path, what: &str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| {
        TlsError(format!(
            "cannot read the TLS {what} {}: {e}",
            path.display()
        ))
    })
}

/// The certificates of the PEM file at `path` (at least one).
fn read_certificates(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_file(path, what)?;
    let certificates = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            TlsError(format!(
                "the TLS {what} {} is not valid PEM: {e}",
                path.display()
            ))
        })?;
    if certificates.is_empty() {
        return Err(TlsError(format!(
            "the TLS {what} {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(certificates)
}

/// The private key of the PEM file at `path` (PKCS#8, PKCS#1 or SEC1).
fn read_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read_file(path, "key")?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        TlsError(format!(
            "the TLS key {} holds no usable PEM private key: {e}",
            path.display()
        ))
    })
}
