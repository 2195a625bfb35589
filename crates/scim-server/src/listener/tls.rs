//! Optional TLS with rustls (pure Rust; the `ring` provider, so no C toolchain beyond a C
//! compiler and no OpenSSL): identity providers require HTTPS, and a small operator may have no
//! reverse proxy to terminate it.

use crate::error::ServerError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::Path;
use std::sync::Arc;

/// Loads a certificate chain and its private key (PEM files; PKCS#8, PKCS#1 or SEC1 keys) into
/// a rustls server configuration offering HTTP/2 and HTTP/1.1 by ALPN. A key file that holds an
/// encrypted key or a certificate is refused with an error saying so.
pub fn load_tls_config(
    cert_path: &Path,
    key_path: &Path,
) -> Result<Arc<rustls::ServerConfig>, ServerError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| tls_error(format!("{}: {e}", cert_path.display()), e))?
        .collect::<Result<_, _>>()
        .map_err(|e| tls_error(format!("{}: {e}", cert_path.display()), e))?;
    if certs.is_empty() {
        return Err(ServerError::Tls {
            detail: format!("{}: no certificate found", cert_path.display()),
            source: None,
        });
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| {
        let detail =
            key_file_mistake(key_path).unwrap_or_else(|| format!("{}: {e}", key_path.display()));
        tls_error(detail, e)
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(e.to_string(), e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            let detail = key_file_mistake(key_path).unwrap_or_else(|| {
                format!("certificate and key do not form a usable identity: {e}")
            });
            tls_error(detail, e)
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A TLS loading error that says what in `detail` and keeps the parser's error as its source.
fn tls_error(
    detail: String,
    source: impl std::error::Error + Send + Sync + 'static,
) -> ServerError {
    ServerError::Tls {
        detail,
        source: Some(Box::new(source)),
    }
}

/// What is wrong with a key file that did not load, when it is one of the two usual mistakes:
/// an encrypted key (rustls reads only unencrypted ones, and scimd asks for no passphrase at
/// start-up) or a certificate in place of the key (`--tls-cert` and `--tls-key` swapped). The
/// PEM labels say which (RFC 7468); `None` leaves the parser's own error.
fn key_file_mistake(key_path: &Path) -> Option<String> {
    let text = std::fs::read(key_path).ok()?;
    let text = String::from_utf8_lossy(&text);
    let shown = key_path.display();
    // PKCS#8 `ENCRYPTED PRIVATE KEY`, or an OpenSSL legacy key with `Proc-Type: 4,ENCRYPTED`.
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") || text.contains("4,ENCRYPTED") {
        return Some(format!(
            "{shown}: the private key is encrypted; scimd needs it unencrypted (decrypt it with \
             `openssl pkey -in {shown} -out plain.key` and keep that file readable by scimd's \
             user only)"
        ));
    }
    let has_key = text.contains("PRIVATE KEY-----");
    if !has_key && text.contains("-----BEGIN CERTIFICATE-----") {
        return Some(format!(
            "{shown}: holds a certificate, not a private key; --tls-key takes the key \
             (were --tls-cert and --tls-key swapped?)"
        ));
    }
    None
}
