//! TLS to the database, with libpq's `sslmode` semantics
//! (<https://www.postgresql.org/docs/current/libpq-ssl.html>), on rustls with the `ring`
//! provider (as the server's own TLS in scim-server).
//!
//! tokio-postgres knows only `disable`, `prefer` and `require`, and refuses the parameters it
//! does not know (`sslrootcert`), so [`configure`] takes the `ssl*` parameters out of the
//! connection string (URL or key-value form) before tokio-postgres parses the rest, and turns
//! them into a tokio-postgres mode plus a rustls configuration that checks what the mode asks:
//!
//! | `sslmode` | TLS | certificate checked |
//! |---|---|---|
//! | `disable` | never | - |
//! | `prefer` (default) | if the server offers it | no (chain, if `sslrootcert` is given) |
//! | `require` | always | no (chain, if `sslrootcert` is given) |
//! | `verify-ca` | always | chain |
//! | `verify-full` | always | chain and host name |
//!
//! "Chain" means the certificate chains to a root in `sslrootcert` (a PEM bundle) or, without
//! it, in the platform's store; "host name" that it names the host connected to.
//!
//! A client certificate (for PostgreSQL's `cert` authentication, or `clientcert=verify-*` in
//! `pg_hba.conf`) is given with `sslcert` (a PEM chain, the client's certificate first) and
//! `sslkey` (its PEM private key: PKCS#8, PKCS#1 or SEC1, unencrypted), both or neither. Unlike
//! libpq, no file is looked for under `~/.postgresql/` when they are not given: a service's
//! credentials come from its configuration.

use super::{Fail, PostgresStore};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::ParsedCertificate;
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use scim_store_core::{Result, StoreError};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_postgres::config::{Host, SslMode as PgSslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode` values, less `allow` (plain first, TLS only if the server insists), which
/// tokio-postgres cannot do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SslMode {
    /// Plain TCP.
    Disable,
    /// TLS if the server offers it, plain otherwise.
    Prefer,
    /// TLS, encryption only: the certificate is not checked (unless `sslrootcert` is given).
    Require,
    /// TLS, and the certificate must chain to a trusted root; the host name is not checked.
    VerifyCa,
    /// TLS, and the certificate must chain to a trusted root and name the host.
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            other => {
                return Err(StoreError::backend(format!(
                    "sslmode {other:?}: expected disable, prefer, require, verify-ca or verify-full"
                )));
            }
        })
    }
}

/// Where the trusted roots come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RootCert {
    /// The platform's store (`sslrootcert=system`, or no `sslrootcert` under `verify-*`).
    System,
    /// A PEM bundle (`sslrootcert=PATH`).
    File(PathBuf),
}

/// The `ssl*` parameters of a connection string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TlsParams {
    /// `sslmode`, if given.
    pub(crate) mode: Option<SslMode>,
    /// `sslrootcert`, if given.
    pub(crate) root_cert: Option<RootCert>,
    /// `sslcert`, if given: the client's certificate chain (PEM).
    pub(crate) client_cert: Option<PathBuf>,
    /// `sslkey`, if given: the client certificate's private key (PEM).
    pub(crate) client_key: Option<PathBuf>,
}

impl TlsParams {
    /// The mode in force: libpq's default is `prefer`, or `verify-full` with
    /// `sslrootcert=system`, which refuses any weaker mode (libpq 16 does the same: public
    /// authorities sign certificates for any host name, so only the host name check makes
    /// trusting them mean anything).
    pub(crate) fn effective_mode(&self) -> Result<SslMode> {
        match (self.mode, &self.root_cert) {
            (None, Some(RootCert::System)) => Ok(SslMode::VerifyFull),
            (None, _) => Ok(SslMode::Prefer),
            (Some(mode), Some(RootCert::System)) if mode != SslMode::VerifyFull => {
                Err(StoreError::backend(format!(
                    "sslmode {:?} may not be used with sslrootcert=system: use \
                     sslmode=verify-full (public certificate authorities sign for any host \
                     name, so the host name must be checked)",
                    mode_name(mode)
                )))
            }
            (Some(mode), _) => Ok(mode),
        }
    }
}

fn mode_name(mode: SslMode) -> &'static str {
    match mode {
        SslMode::Disable => "disable",
        SslMode::Prefer => "prefer",
        SslMode::Require => "require",
        SslMode::VerifyCa => "verify-ca",
        SslMode::VerifyFull => "verify-full",
    }
}

/// What one `key=value` parameter of the connection string is to us.
enum Param {
    /// `sslmode`, `sslrootcert`, `sslcert` or `sslkey`: taken out and interpreted here.
    Ours,
    /// Anything else: left for tokio-postgres (which knows `sslnegotiation`).
    Theirs,
}

/// Records `key=value` in `params` if it is one of ours; refuses the libpq TLS parameters
/// scimd does not implement, with a message better than tokio-postgres' "unknown option".
fn classify(key: &str, value: &str, params: &mut TlsParams) -> Result<Param> {
    match key {
        "sslmode" => {
            params.mode = Some(SslMode::parse(value)?);
            Ok(Param::Ours)
        }
        "sslrootcert" => {
            params.root_cert = Some(if value == "system" {
                RootCert::System
            } else if value.is_empty() {
                return Err(StoreError::backend(
                    "sslrootcert is empty: give the path of a PEM file of root certificates, \
                     or `system` for the platform's store",
                ));
            } else {
                RootCert::File(PathBuf::from(value))
            });
            Ok(Param::Ours)
        }
        "sslcert" | "sslkey" => {
            if value.is_empty() {
                return Err(StoreError::backend(format!(
                    "{key} is empty: give the path of a PEM file"
                )));
            }
            let path = Some(PathBuf::from(value));
            if key == "sslcert" {
                params.client_cert = path;
            } else {
                params.client_key = path;
            }
            Ok(Param::Ours)
        }
        "sslnegotiation" => Ok(Param::Theirs),
        "sslpassword" => Err(StoreError::backend(
            "connection parameter \"sslpassword\" is not supported: give sslkey an unencrypted \
             key file, readable by scimd only",
        )),
        other if other.starts_with("ssl") || other == "requiressl" => {
            Err(StoreError::backend(format!(
                "connection parameter {other:?} is not supported (the TLS parameters scimd \
                 understands are sslmode, sslrootcert, sslcert, sslkey and sslnegotiation)"
            )))
        }
        _ => Ok(Param::Theirs),
    }
}

/// Takes the `ssl*` parameters out of a connection string, in either of libpq's forms (a
/// `postgres://` / `postgresql://` URL, or `key=value` pairs), and returns the rest, for
/// tokio-postgres to parse, with what they said.
pub(crate) fn split_params(conninfo: &str) -> Result<(String, TlsParams)> {
    if conninfo.starts_with("postgres://") || conninfo.starts_with("postgresql://") {
        split_url(conninfo)
    } else {
        split_key_value(conninfo)
    }
}

/// The URL form: the parameters are the `&`-separated query, percent-encoded. Everything but
/// our own parameters is kept byte for byte.
fn split_url(url: &str) -> Result<(String, TlsParams)> {
    let mut params = TlsParams::default();
    // As tokio-postgres reads a URL: the credentials run to the first '@' (a password may hold
    // a raw '?'), and the query starts at the first '?' after them.
    let after_credentials = url.find('@').map_or(0, |at| at + 1);
    let Some(question) = url[after_credentials..]
        .find('?')
        .map(|q| q + after_credentials)
    else {
        return Ok((url.to_owned(), params));
    };
    let mut kept = Vec::new();
    for segment in url[question + 1..].split('&') {
        // A segment without '=' is left for tokio-postgres to refuse.
        let Some((key, value)) = segment.split_once('=') else {
            kept.push(segment);
            continue;
        };
        let key = percent_decode(key, "a URL parameter name")?;
        let value = percent_decode(value, &format!("the value of {key}"))?;
        match classify(&key, &value, &mut params)? {
            Param::Ours => {}
            Param::Theirs => kept.push(segment),
        }
    }
    let mut rest = url[..question].to_owned();
    if !kept.is_empty() {
        rest.push('?');
        rest.push_str(&kept.join("&"));
    }
    Ok((rest, params))
}

/// Decodes `%XX` escapes; like tokio-postgres, a `%` not followed by two hex digits is kept as
/// is, and `+` is not a space.
fn percent_decode(text: &str, what: &str) -> Result<String> {
    fn hex(b: &u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            b'A'..=b'F' => Some(b - b'A' + 10),
            _ => None,
        }
    }
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            if let (Some(high), Some(low)) = (
                bytes.get(i + 1).and_then(hex),
                bytes.get(i + 2).and_then(hex),
            ) {
                out.push(high * 16 + low);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| {
        StoreError::backend(format!(
            "invalid PostgreSQL URL: {what} is not UTF-8 once percent-decoded"
        ))
    })
}

/// The key-value form: `key = value` pairs separated by white space, a value either bare or
/// single-quoted, with `\` escaping the next character in both (as libpq and tokio-postgres
/// read it). The other pairs are written back, quoted.
fn split_key_value(conninfo: &str) -> Result<(String, TlsParams)> {
    let mut params = TlsParams::default();
    let mut kept = Vec::new();
    let mut chars = conninfo.char_indices().peekable();
    loop {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let Some(&(start, _)) = chars.peek() else {
            break;
        };
        let mut end = conninfo.len();
        while let Some(&(i, c)) = chars.peek() {
            if c.is_whitespace() || c == '=' {
                end = i;
                break;
            }
            chars.next();
        }
        let key = &conninfo[start..end];
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        if chars.next_if(|&(_, c)| c == '=').is_none() {
            return Err(StoreError::backend(format!(
                "invalid PostgreSQL connection string: expected '=' after {key:?}"
            )));
        }
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if(|&(_, c)| c == '\'').is_some() {
            loop {
                match chars.next() {
                    Some((_, '\'')) => break,
                    Some((_, '\\')) => {
                        if let Some((_, c)) = chars.next() {
                            value.push(c);
                        }
                    }
                    Some((_, c)) => value.push(c),
                    None => {
                        return Err(StoreError::backend(format!(
                            "invalid PostgreSQL connection string: the quoted value of {key:?} \
                             is not closed"
                        )));
                    }
                }
            }
        } else {
            while let Some((_, c)) = chars.next_if(|(_, c)| !c.is_whitespace()) {
                if c == '\\' {
                    if let Some((_, c)) = chars.next() {
                        value.push(c);
                    }
                } else {
                    value.push(c);
                }
            }
            if value.is_empty() {
                return Err(StoreError::backend(format!(
                    "invalid PostgreSQL connection string: {key:?} has no value"
                )));
            }
        }
        match classify(key, &value, &mut params)? {
            Param::Ours => {}
            Param::Theirs => {
                let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
                kept.push(format!("{key}='{quoted}'"));
            }
        }
    }
    Ok((kept.join(" "), params))
}

/// What the rustls configuration checks of the server's certificate.
enum Verify {
    /// Nothing: encryption only (libpq's `require`).
    Nothing,
    /// That it chains to one of these roots (`verify-ca`).
    Chain(Arc<RootCertStore>),
    /// That it chains to one of these roots and names the host (`verify-full`).
    Full(Arc<RootCertStore>),
}

/// Parses `conninfo` (a URL or key-value string) into tokio-postgres' configuration, with the
/// TLS mode set, and the rustls connector that checks what the `sslmode` asks. Roots are loaded
/// here, once, not at each connection.
pub(crate) fn configure(conninfo: &str) -> Result<(tokio_postgres::Config, MakeRustlsConnect)> {
    let (rest, params) = split_params(conninfo)?;
    let mut config: tokio_postgres::Config = rest
        .parse()
        .map_err(|e| StoreError::backend(format!("invalid PostgreSQL URL: {e}")))?;
    let mut mode = params.effective_mode()?;
    // libpq never uses TLS over a Unix-domain socket, whatever sslmode says (the server
    // refuses it there); tokio-postgres would fail `require` on one.
    let hosts = config.get_hosts();
    if !hosts.is_empty() && hosts.iter().all(|h| !matches!(h, Host::Tcp(_))) {
        mode = SslMode::Disable;
    }
    config.ssl_mode(match mode {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Prefer => PgSslMode::Prefer,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => PgSslMode::Require,
    });
    let verify = match (mode, &params.root_cert) {
        (SslMode::Disable, _) | (SslMode::Prefer | SslMode::Require, None) => Verify::Nothing,
        // libpq too verifies the chain under prefer and require when given a root file.
        (SslMode::Prefer | SslMode::Require | SslMode::VerifyCa, Some(roots)) => {
            Verify::Chain(load_roots(roots)?)
        }
        (SslMode::VerifyCa, None) => Verify::Chain(load_roots(&RootCert::System)?),
        (SslMode::VerifyFull, roots) => {
            Verify::Full(load_roots(roots.as_ref().unwrap_or(&RootCert::System))?)
        }
    };
    let identity = match (&params.client_cert, &params.client_key) {
        (None, None) => None,
        (Some(cert), Some(key)) => Some(load_identity(cert, key)?),
        (Some(_), None) => {
            return Err(StoreError::backend(
                "sslcert is given without sslkey: give both, the certificate and its private key",
            ));
        }
        (None, Some(_)) => {
            return Err(StoreError::backend(
                "sslkey is given without sslcert: give both, the certificate and its private key",
            ));
        }
    };
    Ok((
        config,
        MakeRustlsConnect::new(client_config(verify, identity)?),
    ))
}

/// A client certificate chain and its private key, read from PEM files: loaded once, here, so
/// that a missing or wrong file is an error at start-up, not at the first connection. Checked
/// whatever the `sslmode` (even `disable`), as [`load_roots`] does: whoever names a file
/// expects it to be used.
fn load_identity(cert: &Path, key: &Path) -> Result<ClientIdentity> {
    let fail = |what: &str, path: &Path, e: &dyn std::fmt::Display| {
        StoreError::backend(format!("{what} {}: {e}", path.display()))
    };
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| fail("sslcert", cert, &e))?
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| fail("sslcert", cert, &e))?;
    if chain.is_empty() {
        return Err(fail(
            "sslcert",
            cert,
            &"no PEM certificate found in the file",
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
        fail(
            "sslkey",
            key,
            &format!("{e} (expected an unencrypted PEM private key: PKCS#8, PKCS#1 or SEC1)"),
        )
    })?;
    Ok(ClientIdentity { chain, key })
}

/// The certificate chain and key the client presents when the server asks for one.
struct ClientIdentity {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

/// The trusted roots: a PEM file's certificates, or the platform's store. Unlike libpq, a
/// named file that cannot be read is an error under every mode: whoever names one expects it
/// to be used.
fn load_roots(source: &RootCert) -> Result<Arc<RootCertStore>> {
    let mut store = RootCertStore::empty();
    match source {
        RootCert::File(path) => {
            let fail = |e: &dyn std::fmt::Display| {
                StoreError::backend(format!("sslrootcert {}: {e}", path.display()))
            };
            let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
                .map_err(|e| fail(&e))?
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| fail(&e))?;
            if certs.is_empty() {
                return Err(fail(&"no PEM certificate found in the file"));
            }
            // A bundle (the system's, or a cloud provider's) may hold a certificate webpki cannot
            // use as a root, which OpenSSL would skip: skip it too, unless none is usable.
            let total = certs.len();
            let mut first_error = None;
            for (i, cert) in certs.into_iter().enumerate() {
                if let Err(e) = store.add(cert) {
                    first_error.get_or_insert(format!("certificate {}: {e}", i + 1));
                }
            }
            if store.is_empty() {
                return Err(fail(&format!(
                    "none of its {total} certificates can be used as a root ({})",
                    first_error.unwrap_or_default()
                )));
            }
        }
        RootCert::System => {
            // The store is read once per `connect`: on Linux it is the OpenSSL bundle and
            // directory (or SSL_CERT_FILE / SSL_CERT_DIR), as libpq's sslrootcert=system.
            let found = rustls_native_certs::load_native_certs();
            let (added, _unparsable) = store.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(StoreError::backend(format!(
                    "no trusted root certificate found in the platform's store{}: install the \
                     CA certificates (ca-certificates), or name the server's CA with \
                     sslrootcert=PATH",
                    if why.is_empty() {
                        String::new()
                    } else {
                        format!(" ({why})")
                    }
                )));
            }
        }
    }
    Ok(Arc::new(store))
}

/// The rustls client configuration for `verify`, on the `ring` provider (as the server's own
/// TLS), offering ALPN `postgresql` as libpq 17 does (required by `sslnegotiation=direct`,
/// ignored by servers before PostgreSQL 17).
fn client_config(verify: Verify, identity: Option<ClientIdentity>) -> Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let algorithms = provider.signature_verification_algorithms;
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::backend(format!("TLS configuration: {e}")))?;
    let below_full = |roots| Arc::new(BelowFull { roots, algorithms });
    let builder = match verify {
        Verify::Nothing => builder
            .dangerous()
            .with_custom_certificate_verifier(below_full(None)),
        Verify::Chain(roots) => builder
            .dangerous()
            .with_custom_certificate_verifier(below_full(Some(roots))),
        Verify::Full(roots) => builder.with_root_certificates(roots),
    };
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        // rustls checks that the key is usable and matches the certificate.
        Some(ClientIdentity { chain, key }) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| StoreError::backend_error("sslcert and sslkey", e))?,
    };
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(config)
}

/// The server-certificate check of the modes below `verify-full`. Without `roots`
/// (`sslmode=require`): any certificate is accepted (libpq's "encryption only", which protects
/// from eavesdropping, not from an active attacker). With them (`verify-ca`, or `require` and
/// `prefer` given `sslrootcert`): the chain must lead to a trusted root and be valid now, for
/// server authentication; the host name is not checked, as libpq does not. Either way the
/// handshake signatures are verified, so the session is bound to the key of the certificate
/// presented.
#[derive(Debug)]
struct BelowFull {
    roots: Option<Arc<RootCertStore>>,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for BelowFull {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        if let Some(roots) = &self.roots {
            let cert = ParsedCertificate::try_from(end_entity)?;
            rustls::client::verify_server_cert_signed_by_trust_anchor(
                &cert,
                roots,
                intermediates,
                now,
                self.algorithms.all,
            )?;
        }
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Where a connection goes, for error messages: `host H, port P, database D, user U`.
pub(crate) fn describe_target(config: &tokio_postgres::Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|host| match host {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    let user = config.get_user().unwrap_or("(none)");
    // PostgreSQL's default database is the user's name.
    let database = config.get_dbname().unwrap_or(user);
    format!(
        "host {}, port {}, database {database:?}, user {user:?}",
        if hosts.is_empty() {
            "localhost".to_owned()
        } else {
            hosts.join(",")
        },
        if ports.is_empty() {
            "5432".to_owned()
        } else {
            ports.join(",")
        },
    )
}

/// A readable account of why the first connection to `target` failed: a refused connection,
/// a missing database, an unknown role, failed authentication, TLS, or the server's own words.
pub(crate) fn describe_connect_failure(error: &tokio_postgres::Error, target: &str) -> String {
    if let Some(tls) = describe_connect_error(error) {
        return format!("{tls} ({target})");
    }
    let why = if let Some(db) = error.as_db_error() {
        match db.code() {
            c if *c == SqlState::INVALID_CATALOG_NAME => format!(
                "the database does not exist ({}); create it (createdb) or fix the URL's \
                 database name",
                db.message()
            ),
            c if *c == SqlState::INVALID_PASSWORD => format!(
                "authentication failed: wrong password, or no password for this user ({})",
                db.message()
            ),
            c if *c == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
                && db.message().starts_with("role") =>
            {
                format!(
                    "the role (user) does not exist ({}); create it or fix the URL's user",
                    db.message()
                )
            }
            c => format!(
                "the server refused the connection: {} (SQLSTATE {})",
                db.message(),
                c.code()
            ),
        }
    } else if let Some(io) = io_cause(error) {
        match io.kind() {
            std::io::ErrorKind::ConnectionRefused => {
                "connection refused: is PostgreSQL running and listening on that host and port?"
                    .to_owned()
            }
            std::io::ErrorKind::TimedOut => "timed out connecting".to_owned(),
            _ => format!("{error}: {io}"),
        }
    } else if error.to_string().contains("password missing") {
        "authentication failed: the server asks for a password and the URL gives none".to_owned()
    } else {
        error.to_string()
    };
    format!("cannot connect to PostgreSQL at {target}: {why}")
}

/// The I/O error at the root of `error`, if any (a refused or timed-out connection).
fn io_cause(error: &tokio_postgres::Error) -> Option<&std::io::Error> {
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        source = e.source();
    }
    None
}

/// A readable account of a failed connection, if TLS is what failed: tokio-postgres reports
/// only "error performing TLS handshake" with rustls' error inside an `io::Error`.
pub(crate) fn describe_connect_error(error: &tokio_postgres::Error) -> Option<String> {
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        // `io::Error::source` skips the error it wraps, so look inside it by hand.
        let inner = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        for candidate in [Some(e), inner].into_iter().flatten() {
            if let Some(tls) = candidate.downcast_ref::<rustls::Error>() {
                return Some(describe_rustls(tls));
            }
            // tokio-postgres' own words when the server answers the SSLRequest with 'N'.
            if candidate.to_string() == "server does not support TLS" {
                return Some(
                    "cannot connect to PostgreSQL: the server does not support TLS, and the \
                     sslmode (require, verify-ca or verify-full) demands it: turn ssl on in \
                     the server, or connect with sslmode=prefer or disable"
                        .to_owned(),
                );
            }
        }
        source = e.source();
    }
    None
}

fn describe_rustls(error: &rustls::Error) -> String {
    let what = match error {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => format!(
                "the server's TLS certificate is not trusted: it does not chain to a trusted \
                 root ({error}). Name the CA that signed it with sslrootcert=PATH (without it \
                 the platform's store is used)"
            ),
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "the server's TLS certificate does not match the host name ({error}). \
                     Connect with a host name the certificate names, or use sslmode=verify-ca \
                     to check the chain only"
                )
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("the server's TLS certificate has expired ({error})")
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                format!("the server's TLS certificate is not valid yet ({error})")
            }
            _ => format!("the server's TLS certificate was refused ({error})"),
        },
        other => format!("the TLS handshake with the server failed ({other})"),
    };
    format!("cannot connect to PostgreSQL: {what}")
}

impl PostgresStore {
    /// The TLS version of one of the pool's connections as the server reports it
    /// (`pg_stat_ssl`, e.g. `"TLSv1.3"`), or `None` if the connection is plain: for operators
    /// and tests checking what `sslmode` negotiated. PostgreSQL only (CockroachDB has no
    /// `pg_stat_ssl`).
    pub async fn connection_tls(&self) -> Result<Option<String>> {
        let outcome: super::PgResult<Option<String>> = async {
            let client = self.pool.get().await?;
            let row = client
                .query_opt(
                    "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                    &[],
                )
                .await?;
            Ok(row.and_then(|row| {
                if row.get::<_, bool>(0) {
                    row.get::<_, Option<String>>(1)
                } else {
                    None
                }
            }))
        }
        .await;
        outcome.map_err(Fail::into_store)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(conninfo: &str) -> (String, TlsParams) {
        split_params(conninfo).expect("splits")
    }

    /// The message of `split_params`' refusal of `conninfo`.
    fn refused(conninfo: &str) -> String {
        message(split_params(conninfo).expect_err("refused"))
    }

    fn error(conninfo: &str) -> String {
        match split_params(conninfo).and_then(|(_, p)| p.effective_mode()) {
            Ok(mode) => panic!("{conninfo:?} was accepted as {mode:?}"),
            Err(e) => message(e),
        }
    }

    /// The message of a refusal (all of them are `StoreError::Backend`).
    fn message(e: StoreError) -> String {
        match e {
            StoreError::Backend { message: m, .. } => m,
            other => panic!("not a Backend error: {other:?}"),
        }
    }

    fn pg(rest: &str) -> tokio_postgres::Config {
        rest.parse().expect("tokio-postgres parses what is left")
    }

    #[test]
    fn url_parameters_are_taken_out_and_the_rest_kept_verbatim() {
        let (rest, params) = split(
            "postgres://u:p%40ss@db.example:6432/scimd?sslmode=verify-full&application_name=x%20y\
             &sslrootcert=%2Fetc%2Fscimd%2Fca.pem",
        );
        assert_eq!(
            rest,
            "postgres://u:p%40ss@db.example:6432/scimd?application_name=x%20y"
        );
        assert_eq!(params.mode, Some(SslMode::VerifyFull));
        assert_eq!(
            params.root_cert,
            Some(RootCert::File("/etc/scimd/ca.pem".into()))
        );
        let config = pg(&rest);
        assert_eq!(config.get_password(), Some(&b"p@ss"[..]));
        assert_eq!(config.get_application_name(), Some("x y"));
    }

    #[test]
    fn a_url_with_only_tls_parameters_loses_its_query() {
        let (rest, params) = split("postgresql://u@h/db?sslmode=require");
        assert_eq!(rest, "postgresql://u@h/db");
        assert_eq!(params.mode, Some(SslMode::Require));
        let (rest, params) = split("postgres://u@h/db");
        assert_eq!(rest, "postgres://u@h/db");
        assert_eq!(params, TlsParams::default());
    }

    #[test]
    fn the_query_starts_after_the_credentials() {
        // A raw '?' in a password (tokio-postgres reads credentials up to the first '@').
        let (rest, params) = split("postgres://u:p?w@h/db?sslmode=disable");
        assert_eq!(rest, "postgres://u:p?w@h/db");
        assert_eq!(params.mode, Some(SslMode::Disable));
        assert_eq!(pg(&rest).get_password(), Some(&b"p?w"[..]));
    }

    #[test]
    fn key_value_parameters_are_taken_out_and_the_rest_requoted() {
        let (rest, params) = split(
            "host=db.example user = 'a b'  password='it\\'s' sslmode=verify-ca \
             sslrootcert='/tmp/my ca.pem' dbname=scim\\ d",
        );
        assert_eq!(params.mode, Some(SslMode::VerifyCa));
        assert_eq!(
            params.root_cert,
            Some(RootCert::File("/tmp/my ca.pem".into()))
        );
        let config = pg(&rest);
        assert_eq!(config.get_user(), Some("a b"));
        assert_eq!(config.get_password(), Some(&b"it's"[..]));
        assert_eq!(config.get_dbname(), Some("scim d"));
        assert_eq!(
            config.get_hosts(),
            &[Host::Tcp("db.example".to_owned())][..]
        );
    }

    #[test]
    fn malformed_key_value_strings_are_refused_with_where() {
        let e = refused("host=h password='open");
        assert!(
            e.contains("\"password\"") && e.contains("not closed"),
            "{e}"
        );
        let e = refused("host h");
        assert!(e.contains("expected '=' after \"host\""), "{e}");
    }

    #[test]
    fn a_bad_sslmode_names_the_value_and_the_choices() {
        let expected =
            "sslmode \"verfy-full\": expected disable, prefer, require, verify-ca or verify-full";
        assert_eq!(error("postgres://h/db?sslmode=verfy-full"), expected);
        assert_eq!(error("host=h sslmode=verfy-full"), expected);
        // libpq's `allow` (plain first) is not available either.
        assert!(error("host=h sslmode=allow").starts_with("sslmode \"allow\": expected"));
    }

    #[test]
    fn the_default_mode_is_prefer_and_system_roots_mean_verify_full() {
        let mode = |s: &str| split(s).1.effective_mode().expect("a mode");
        assert_eq!(mode("postgres://h/db"), SslMode::Prefer);
        assert_eq!(mode("host=h sslrootcert=/ca.pem"), SslMode::Prefer);
        assert_eq!(mode("host=h sslrootcert=system"), SslMode::VerifyFull);
        assert_eq!(
            mode("host=h sslrootcert=system sslmode=verify-full"),
            SslMode::VerifyFull
        );
        let e = error("postgres://h/db?sslrootcert=system&sslmode=require");
        assert!(
            e.contains("sslmode \"require\" may not be used with sslrootcert=system"),
            "{e}"
        );
        assert!(error("host=h sslrootcert=''").contains("sslrootcert is empty"));
    }

    #[test]
    fn unsupported_tls_parameters_are_named() {
        let e = refused("postgres://h/db?sslpassword=secret");
        assert!(
            e.contains("\"sslpassword\"") && e.contains("unencrypted"),
            "{e}"
        );
        let e = refused("host=h sslcrl=/crl.pem");
        assert!(e.contains("\"sslcrl\" is not supported"), "{e}");
        // sslnegotiation is tokio-postgres' own.
        let (rest, _) = split("postgres://h/db?sslnegotiation=direct&sslmode=require");
        assert_eq!(rest, "postgres://h/db?sslnegotiation=direct");
        assert!(rest.parse::<tokio_postgres::Config>().is_ok());
    }

    #[test]
    fn percent_decoding_keeps_what_is_not_an_escape() {
        assert_eq!(
            percent_decode("a%2Fb%zz%4", "x").expect("decodes"),
            "a/b%zz%4"
        );
        assert_eq!(percent_decode("%C3%A9+", "x").expect("decodes"), "é+");
        let e = message(percent_decode("%FF", "the value of sslrootcert").unwrap_err());
        assert!(e.contains("sslrootcert is not UTF-8"), "{e}");
    }

    #[test]
    fn configure_sets_the_tokio_postgres_mode() {
        let mode = |s: &str| configure(s).expect("configures").0.get_ssl_mode();
        assert_eq!(mode("postgres://h/db"), PgSslMode::Prefer);
        assert_eq!(mode("postgres://h/db?sslmode=disable"), PgSslMode::Disable);
        assert_eq!(mode("postgres://h/db?sslmode=require"), PgSslMode::Require);
        // Over a Unix-domain socket TLS is never used, as with libpq.
        assert_eq!(
            mode("postgres://u@%2Fvar%2Frun%2Fpostgresql/db?sslmode=require"),
            PgSslMode::Disable
        );
    }

    #[test]
    fn an_unreadable_root_file_is_an_error_under_every_mode() {
        for mode in ["prefer", "require", "verify-ca", "verify-full"] {
            let e = configure(&format!(
                "host=h sslmode={mode} sslrootcert=/nonexistent/ca.pem"
            ))
            .err()
            .map(message)
            .expect("refused");
            assert!(e.starts_with("sslrootcert /nonexistent/ca.pem: "), "{e}");
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("writes");
        let e = configure(&format!(
            "host=h sslmode=verify-ca sslrootcert='{}'",
            empty.display()
        ))
        .err()
        .map(message)
        .expect("refused");
        assert!(e.ends_with("no PEM certificate found in the file"), "{e}");
    }

    /// A client certificate and its key (EC P-256, self-signed), made with the `openssl`
    /// command; `None` (the caller skips loudly) where there is none.
    fn client_identity(dir: &Path, name: &str) -> Option<(PathBuf, PathBuf)> {
        let cert = dir.join(format!("{name}.crt"));
        let key = dir.join(format!("{name}.key"));
        let made = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
            .args(["-subj", &format!("/CN={name}")])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .ok()?;
        made.status.success().then_some((cert, key))
    }

    #[test]
    fn a_client_certificate_and_key_are_loaded_and_checked() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (Some((cert, key)), Some((_, other_key))) = (
            client_identity(dir.path(), "scimd"),
            client_identity(dir.path(), "other"),
        ) else {
            eprintln!("SKIPPED: no openssl command to make a test client certificate");
            return;
        };
        let (cert, key, other_key) = (cert.display(), key.display(), other_key.display());
        // Both forms, and whatever the sslmode (a named file is always read).
        for conninfo in [
            format!("postgres://h/db?sslmode=require&sslcert={cert}&sslkey={key}"),
            format!(
                "host=h sslmode=verify-ca sslrootcert='{cert}' sslcert='{cert}' sslkey='{key}'"
            ),
            format!("host=h sslmode=disable sslcert='{cert}' sslkey='{key}'"),
        ] {
            let (config, _) = configure(&conninfo).unwrap_or_else(|e| panic!("{conninfo}: {e}"));
            assert_eq!(config.get_hosts().len(), 1, "{conninfo}");
        }
        let (rest, params) = split(&format!("postgres://h/db?sslcert={cert}&sslkey={key}&a=b"));
        assert_eq!(rest, "postgres://h/db?a=b");
        assert_eq!(
            (params.client_cert, params.client_key),
            (
                Some(PathBuf::from(cert.to_string())),
                Some(PathBuf::from(key.to_string()))
            )
        );

        let e = configure_error(&format!("host=h sslcert='{cert}'"));
        assert!(e.contains("sslcert is given without sslkey"), "{e}");
        let e = configure_error(&format!("host=h sslkey='{key}'"));
        assert!(e.contains("sslkey is given without sslcert"), "{e}");
        let e = configure_error(&format!("host=h sslcert='{cert}' sslkey='{other_key}'"));
        assert!(
            e.starts_with("sslcert and sslkey: "),
            "a key of another certificate: {e}"
        );
        let e = configure_error(&format!("host=h sslcert=/nonexistent/c.pem sslkey='{key}'"));
        assert!(e.starts_with("sslcert /nonexistent/c.pem: "), "{e}");
        let e = configure_error(&format!("host=h sslcert='{cert}' sslkey='{cert}'"));
        assert!(
            e.starts_with(&format!("sslkey {cert}: ")) && e.contains("unencrypted PEM private key"),
            "a certificate where the key should be: {e}"
        );
        let e = configure_error(&format!("host=h sslcert='{key}' sslkey='{key}'"));
        assert!(e.ends_with("no PEM certificate found in the file"), "{e}");
        assert!(configure_error("host=h sslcert='' sslkey=k").contains("sslcert is empty"));
    }

    /// What `configure` says when it refuses `conninfo`.
    fn configure_error(conninfo: &str) -> String {
        match configure(conninfo) {
            Ok(_) => panic!("{conninfo:?} was accepted"),
            Err(e) => message(e),
        }
    }
}
