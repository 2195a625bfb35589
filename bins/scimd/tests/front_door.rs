//! The front door, attacked on the real `scimd` binary (issue 13, item 1): connections that
//! send nothing, half a TLS handshake or only the HTTP/2 preface give their slot back after
//! the header timeout, so they cannot lock everyone out; idle HTTP/1.1 and HTTP/2 connections
//! are closed after the idle timeout, PINGs or not; one client address cannot hold more than
//! its share of connections, except a trusted proxy.
//!
//! Clients bind to loopback sources 127.0.0.2 to 127.0.0.9 to be different addresses.

// Test support functions below: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

mod support;

use support::{Running, SCIMD};

/// The HTTP/2 connection preface and an empty SETTINGS frame (RFC 9113 sections 3.4, 6.5).
const H2_PREFACE_AND_SETTINGS: &[u8] =
    b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// The first bytes of a TLS ClientHello record announcing 512 bytes, of which only these come.
const PARTIAL_CLIENT_HELLO: &[u8] = &[
    0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03,
];

/// A TCP connection to `addr` from 127.0.0.`source`.
async fn connect_from(source: u8, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::from((Ipv4Addr::new(127, 0, 0, source), 0)))
        .unwrap();
    socket.connect(addr).await.unwrap()
}

/// A self-signed certificate for `localhost`, made with the `openssl` command as in
/// crates/scim-server/tests/tls.rs.
fn make_certificate(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let output = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args([
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .args(["-addext", "keyUsage=digitalSignature"])
        .args(["-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .ok()?;
    output.status.success().then_some((cert, key))
}

fn tls_connector(cert: &Path, alpn: &[u8]) -> tokio_rustls::TlsConnector {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(cert).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![alpn.to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

fn localhost() -> rustls::pki_types::ServerName<'static> {
    rustls::pki_types::ServerName::try_from("localhost").unwrap()
}

/// Resolves, with the time it took, once the server has closed `stream` (end of stream or an
/// error); whatever the server sent first is skipped.
async fn closed<S: AsyncRead + Unpin>(mut stream: S) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return started.elapsed(),
            Ok(_) => {}
        }
    }
}

/// [`closed`], as the time since `started`.
async fn closed_since<S: AsyncRead + Unpin>(started: Instant, stream: S) -> Duration {
    closed(stream).await;
    started.elapsed()
}

/// GET `path` over HTTP/1.1 on `io`; the status and body.
async fn get_h1<I>(io: I, path: &str) -> (u16, String)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .unwrap();
    tokio::spawn(conn);
    let request = Request::get(path)
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The value of one sample line of the Prometheus text, e.g.
/// `scimd_connections_refused_total{reason="per_address"}`.
fn sample(metrics: &str, series: &str) -> u64 {
    metrics
        .lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in:\n{metrics}"))
        .parse()
        .unwrap()
}

/// More silent, half-handshaken and preface-only connections than `--max-connections`, from
/// eight other addresses: another client is still served within the header timeout plus one
/// second, and every one of them is closed. On main the sniff after a TLS handshake and an
/// HTTP/2 connection without streams had no deadline: the client waited until its 6 s timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_connections_cannot_lock_everyone_out() {
    let dir = tempfile::tempdir().unwrap();
    let Some((cert, key)) = make_certificate(dir.path()) else {
        eprintln!("SKIPPED: no openssl command to make a test certificate");
        return;
    };
    let header_timeout = Duration::from_secs(2);
    let server = Running::listening(
        dir.path().join("scimd.db").to_str().unwrap(),
        &[
            "--max-connections",
            "16",
            "--header-read-timeout-secs",
            "2",
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let addr = server.addr;
    let h2 = tls_connector(&cert, b"h2");
    let started = Instant::now();
    let mut watchers = Vec::new();
    // Sources 127.0.0.2 to 127.0.0.9 in turn: at most 3 connections each.
    let mut sources = (0u8..).map(|i| 2 + i % 8);
    // 8 TLS connections that send the HTTP/2 preface and SETTINGS, then nothing.
    for _ in 0..8 {
        let tcp = connect_from(sources.next().unwrap(), addr).await;
        let mut tls = h2.connect(localhost(), tcp).await.unwrap();
        tls.write_all(H2_PREFACE_AND_SETTINGS).await.unwrap();
        tls.flush().await.unwrap();
        watchers.push(tokio::spawn(closed_since(started, tls)));
    }
    // 6 completed TLS handshakes, then silence (the protocol sniff waits for bytes).
    for _ in 0..6 {
        let tcp = connect_from(sources.next().unwrap(), addr).await;
        let tls = h2.connect(localhost(), tcp).await.unwrap();
        watchers.push(tokio::spawn(closed_since(started, tls)));
    }
    // 3 half ClientHellos (the 17th connection waits in the listen backlog).
    for _ in 0..3 {
        let mut tcp = connect_from(sources.next().unwrap(), addr).await;
        tcp.write_all(PARTIAL_CLIENT_HELLO).await.unwrap();
        watchers.push(tokio::spawn(closed_since(started, tcp)));
    }
    // 3 connections that send nothing at all.
    for _ in 0..3 {
        let tcp = connect_from(sources.next().unwrap(), addr).await;
        watchers.push(tokio::spawn(closed_since(started, tcp)));
    }
    assert_eq!(watchers.len(), 20);

    // Another client, from 127.0.0.1.
    let asked = Instant::now();
    let http1 = tls_connector(&cert, b"http/1.1");
    let served = tokio::time::timeout(Duration::from_secs(6), async {
        let tcp = connect_from(1, addr).await;
        let tls = http1.connect(localhost(), tcp).await.unwrap();
        get_h1(tls, "/healthz").await
    })
    .await;
    let waited = asked.elapsed();
    let (status, _) = served.unwrap_or_else(|_| {
        panic!("a client behind 20 silent connections was not served in {waited:?}")
    });
    assert_eq!(status, 200);
    assert!(
        waited <= header_timeout + Duration::from_secs(1),
        "served after {waited:?}, beyond the header timeout plus one second"
    );

    // The first 16 were closed at their header deadline, the 4 from the backlog at theirs.
    let mut closed_at = Vec::new();
    for watcher in watchers {
        let at = tokio::time::timeout(Duration::from_secs(8), watcher)
            .await
            .expect("a silent connection was never closed")
            .unwrap();
        closed_at.push(at);
    }
    let first = closed_at
        .iter()
        .filter(|t| **t <= header_timeout + Duration::from_secs(1))
        .count();
    assert!(first >= 16, "closed at {closed_at:?}");
    assert!(
        closed_at
            .iter()
            .all(|t| *t <= 2 * header_timeout + Duration::from_secs(1)),
        "closed at {closed_at:?}"
    );

    let tcp = connect_from(1, addr).await;
    let tls = http1.connect(localhost(), tcp).await.unwrap();
    let (status, metrics) = get_h1(tls, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(
        sample(
            &metrics,
            "scimd_connections_timed_out_total{reason=\"header\"}"
        ),
        20,
        "{metrics}"
    );
}

/// `--max-connections-per-address 4`: the fifth connection from one address is closed at once
/// (and counted), other addresses are served, a trusted proxy's address is not capped, and a
/// closed connection gives its place back. On main there was no such cap (nor flag).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_cannot_take_every_connection_but_a_trusted_proxy_can() {
    let dir = tempfile::tempdir().unwrap();
    let server = Running::listening(
        dir.path().join("scimd.db").to_str().unwrap(),
        &[
            "--max-connections",
            "16",
            "--max-connections-per-address",
            "4",
            "--trusted-proxies",
            "127.0.0.5/32,::1",
        ],
    );
    let addr = server.addr;

    // Four kept-alive connections from 127.0.0.3, each served.
    let mut held = Vec::new();
    for _ in 0..4 {
        let io = TokioIo::new(connect_from(3, addr).await);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
        let conn = tokio::spawn(conn);
        let request = Request::get("/healthz")
            .header("host", "localhost")
            .body(Empty::<Bytes>::new())
            .unwrap();
        assert_eq!(sender.send_request(request).await.unwrap().status(), 200);
        held.push((sender, conn));
    }

    // The fifth is closed without an answer, at once.
    let mut fifth = connect_from(3, addr).await;
    fifth
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    let waited = tokio::time::timeout(Duration::from_secs(5), async {
        let mut answer = Vec::new();
        let _ = fifth.read_to_end(&mut answer).await;
        assert!(answer.is_empty(), "{:?}", String::from_utf8_lossy(&answer));
    })
    .await;
    assert!(
        waited.is_ok(),
        "the fifth connection from 127.0.0.3 was served"
    );

    // Another address is served; the trusted proxy is served beyond the cap.
    assert_eq!(get_h1(connect_from(4, addr).await, "/healthz").await.0, 200);
    let mut proxied = Vec::new();
    for _ in 0..6 {
        let tcp = connect_from(5, addr).await;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        let request = Request::get("/healthz")
            .header("host", "localhost")
            .body(Empty::<Bytes>::new())
            .unwrap();
        assert_eq!(sender.send_request(request).await.unwrap().status(), 200);
        proxied.push(sender);
    }

    // Closing one of 127.0.0.3's connections gives its place back (once the server has seen
    // the close: each refusal meanwhile is counted).
    let (sender, conn) = held.pop().unwrap();
    drop(sender);
    conn.await.unwrap().unwrap();
    let mut refused = 1;
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut tcp = connect_from(3, addr).await;
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let _ = tcp.read_to_end(&mut answer).await;
        if answer.starts_with(b"HTTP/1.1 200") {
            break;
        }
        refused += 1;
        assert!(
            Instant::now() < deadline,
            "127.0.0.3 never got its place back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (status, metrics) = get_h1(connect_from(1, addr).await, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(
        sample(
            &metrics,
            "scimd_connections_refused_total{reason=\"per_address\"}"
        ),
        refused,
        "{metrics}"
    );
    drop(proxied);
}

/// `--idle-timeout-secs 1` (the header timeout is 3 s): an HTTP/1.1 keep-alive connection and
/// an HTTP/2 connection whose client PINGs every 250 ms are both closed about a second after
/// their last response. On main there was no idle timeout (nor flag): the HTTP/2 connection
/// stayed open as long as PINGs were answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_even_while_pinging() {
    let dir = tempfile::tempdir().unwrap();
    let server = Running::listening(
        dir.path().join("scimd.db").to_str().unwrap(),
        &[
            "--header-read-timeout-secs",
            "3",
            "--idle-timeout-secs",
            "1",
        ],
    );
    let addr = server.addr;
    let idle = Duration::from_secs(1);

    let http1 = async {
        let mut tcp = connect_from(2, addr).await;
        tcp.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        while !answer.ends_with(b"ok\n") {
            let n = tcp.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed before answering");
            answer.extend_from_slice(&buf[..n]);
        }
        assert!(answer.starts_with(b"HTTP/1.1 200"));
        closed(tcp).await
    };

    let http2 = async {
        let io = TokioIo::new(connect_from(3, addr).await);
        let (mut sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .keep_alive_interval(Duration::from_millis(250))
            .keep_alive_timeout(Duration::from_secs(5))
            .keep_alive_while_idle(true)
            .handshake(io)
            .await
            .unwrap();
        let conn = tokio::spawn(conn);
        let request = Request::get(format!("http://{addr}/healthz"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        response.into_body().collect().await.unwrap();
        let answered = Instant::now();
        tokio::time::timeout(Duration::from_secs(10), conn)
            .await
            .expect("the idle HTTP/2 connection was never closed")
            .unwrap()
            .unwrap();
        answered.elapsed()
    };

    let (http1, http2) = tokio::join!(http1, http2);
    for (protocol, after) in [("HTTP/1.1", http1), ("HTTP/2", http2)] {
        assert!(
            after >= idle - Duration::from_millis(200)
                && after <= idle + Duration::from_millis(1500),
            "{protocol}: closed {after:?} after its last response, not after the 1 s idle timeout"
        );
    }

    let (status, metrics) = get_h1(connect_from(1, addr).await, "/metrics").await;
    assert_eq!(status, 200);
    assert_eq!(
        sample(
            &metrics,
            "scimd_connections_timed_out_total{reason=\"idle\"}"
        ),
        2,
        "{metrics}"
    );
}

/// A bad trusted-proxy network stops `serve` at once with an error naming the value, from the
/// command line and from the file.
#[test]
fn a_bad_trusted_proxy_is_a_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("scimd.db");
    let config = dir.path().join("scimd.toml");
    std::fs::write(&config, "[server]\ntrusted_proxies = [\"10.0.0.1/8\"]\n").unwrap();
    for (args, says) in [
        (
            vec!["serve", "--trusted-proxies", "10.0.0.0/8,10.0.0.300/8"],
            vec![
                "--trusted-proxies",
                "\"10.0.0.300/8\"",
                "not an IPv4 or IPv6 address",
            ],
        ),
        (
            vec!["--config", config.to_str().unwrap(), "serve"],
            vec![
                "server.trusted_proxies",
                "\"10.0.0.1/8\"",
                "the network is 10.0.0.0/8",
            ],
        ),
    ] {
        let mut child = Command::new(SCIMD)
            .args(["--database", db.to_str().unwrap()])
            .args(&args)
            .args(["--listen", "127.0.0.1:0"])
            .env_remove("SCIMD_DATABASE")
            .env_remove("SCIMD_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A server that starts anyway would serve forever: give it 10 s.
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{args:?}: scimd started instead of refusing the value");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let output = child.wait_with_output().unwrap();
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        for text in says {
            assert!(stderr.contains(text), "{args:?}: {stderr}");
        }
    }
}
