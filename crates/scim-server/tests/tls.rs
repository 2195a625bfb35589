//! TLS (rustls): a self-signed certificate made with the `openssl` command, the server over
//! it, and clients negotiating HTTP/2 and HTTP/1.1 by ALPN.

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use scim_server::{Server, ServerConfig};
use scim_store::ResourceSchemas;
use scim_store::sqlite::{SqliteOptions, SqliteStore};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

fn make_certificate(dir: &Path) -> Option<(std::path::PathBuf, std::path::PathBuf)> {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .args([
            "-addext",
            "basicConstraints=critical,CA:FALSE",
            "-addext",
            "keyUsage=digitalSignature",
        ])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .ok()?;
    status.status.success().then_some((cert, key))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_http2_and_http11_by_alpn() {
    let dir = tempfile::tempdir().unwrap();
    let Some((cert, key)) = make_certificate(dir.path()) else {
        eprintln!("SKIPPED: no openssl command to make a test certificate");
        return;
    };
    let store = Arc::new(
        SqliteStore::open(
            dir.path().join("db"),
            ResourceSchemas::core(),
            SqliteOptions::default(),
        )
        .unwrap(),
    );
    let tls = scim_server::load_tls_config(&cert, &key).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::new(
        store as Arc<dyn scim_store::AdminStore>,
        scim_schema::SchemaRegistry::new(),
        ServerConfig::default(),
        Some(tls),
    )
    .unwrap();
    tokio::spawn(server.run(listener, std::future::pending()));

    let mut roots = rustls::RootCertStore::empty();
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    for c in CertificateDer::pem_file_iter(&cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    for alpn in [b"h2".to_vec(), b"http/1.1".to_vec()] {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        config.alpn_protocols = vec![alpn.clone()];
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let stream = connector.connect(name, tcp).await.unwrap();
        assert_eq!(stream.get_ref().1.alpn_protocol(), Some(alpn.as_slice()));
        let io = TokioIo::new(stream);
        let response = if alpn == b"h2" {
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .unwrap();
            tokio::spawn(conn);
            let request = Request::get(format!(
                "https://localhost:{}/t/x/scim/v2/Users",
                addr.port()
            ))
            .body(Full::new(Bytes::new()))
            .unwrap();
            sender.send_request(request).await.unwrap()
        } else {
            let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            let request = Request::get("/t/x/scim/v2/Users")
                .header("host", format!("localhost:{}", addr.port()))
                .body(Full::new(Bytes::new()))
                .unwrap();
            sender.send_request(request).await.unwrap()
        };
        assert_eq!(response.status(), 401, "the SCIM service answers over TLS");
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(
            String::from_utf8_lossy(&body).contains("urn:ietf:params:scim:api:messages:2.0:Error")
        );
    }
}
