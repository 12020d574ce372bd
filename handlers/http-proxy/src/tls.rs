//! `--tls-cert` and `--tls-key`: the certificate chain and key, read and checked before the
//! server listens, and rustls's acceptor, whose ALPN offers HTTP/2 first and HTTP/1.1.

use anyhow::{Context as _, Result, anyhow, bail};
use std::path::Path;
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::crypto::ring;
use tokio_rustls::rustls::pki_types::pem::PemObject as _;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The acceptor for `cert` and `key`, or a one-paragraph error that names the file.
pub(crate) fn acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor> {
    let read = |path: &Path, what: &str| {
        std::fs::read(path).with_context(|| {
            format!(
                "cannot read the {what} `{}`; give a PEM file with `--tls-{}`",
                path.display(),
                if what == "certificate" { "cert" } else { "key" }
            )
        })
    };
    let pem = read(cert, "certificate")?;
    let chain = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            anyhow!(
                "`--tls-cert {}` is not a PEM certificate chain ({e}); give the server's \
                 certificate (and its intermediates) as `-----BEGIN CERTIFICATE-----` blocks",
                cert.display()
            )
        })?;
    if chain.is_empty() {
        bail!(
            "`--tls-cert {}` holds no certificate; give a PEM file with `-----BEGIN \
             CERTIFICATE-----` blocks, the server's certificate first",
            cert.display()
        );
    }
    let pem = read(key, "key")?;
    let key_der = PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        anyhow!(
            "`--tls-key {}` holds no private key ({e}); give a PEM file with a PKCS#8, \
             PKCS#1 or SEC1 key (`-----BEGIN PRIVATE KEY-----` and the like)",
            key.display()
        )
    })?;
    let mut config = ServerConfig::builder_with_provider(Arc::new(ring::default_provider()))
        .with_safe_default_protocol_versions()
        .context("cannot set up TLS")?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(|e| {
            anyhow!(
                "`--tls-key {}` does not go with `--tls-cert {}` ({e}); give the key the \
                 certificate was issued for",
                key.display(),
                cert.display()
            )
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
