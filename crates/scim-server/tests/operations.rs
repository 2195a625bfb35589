//! Operations: health, readiness and metrics endpoints, HTTP/2, and every limit (body, header,
//! slow clients, request timeout, connection cap), and graceful shutdown.

mod common;

use common::client::send;
use common::{TestServer, user};
use http::Method;
use scim_server::{Limits, ServerConfig};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn limits(f: impl FnOnce(&mut Limits)) -> ServerConfig {
    let mut limits = Limits::default();
    f(&mut limits);
    ServerConfig {
        limits,
        ..ServerConfig::default()
    }
}

/// Reads until the peer closes or `deadline` passes; returns what was read.
async fn read_all(stream: &mut TcpStream, deadline: Duration) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(deadline, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    out.extend_from_slice(&buf[..n]);
                    if out.windows(4).any(|w| w == b"\r\n\r\n") && out.ends_with(b"}") {
                        break;
                    }
                }
            }
        }
    })
    .await;
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics() {
    let mut server = TestServer::start().await;
    let healthz = send(server.addr, false, Method::GET, "/healthz", &[], None).await;
    assert_eq!((healthz.status, &healthz.body[..]), (200, &b"ok\n"[..]));
    let readyz = send(server.addr, false, Method::GET, "/readyz", &[], None).await;
    assert_eq!(readyz.status, 200);

    server.client.post("/Users", &user("m")).await;
    server.client.get("/Users/missing").await;
    let metrics = send(server.addr, false, Method::GET, "/metrics", &[], None).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = String::from_utf8(metrics.body.to_vec()).unwrap();
    assert!(
        text.contains(
            "scimd_http_requests_total{route=\"/Users\",method=\"POST\",status=\"201\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "scimd_http_requests_total{route=\"/Users/{id}\",method=\"GET\",status=\"404\"} 1"
        ),
        "{text}"
    );
    assert!(
        text.contains("scimd_http_request_duration_seconds_bucket{route=\"/Users\",le=\"+Inf\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("scimd_store_operation_duration_seconds_count{operation=\"create\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("scimd_store_operation_duration_seconds_count{operation=\"authenticate\"}"),
        "{text}"
    );
    assert!(
        !text.contains(&server.client.token),
        "never a token in metrics"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge() {
    let server = TestServer::start().await;
    let auth = format!("Bearer {}", server.client.token);
    let reply = send(
        server.addr,
        true,
        Method::GET,
        "/t/acme/scim/v2/ServiceProviderConfig",
        &[("authorization", &auth)],
        None,
    )
    .await;
    assert_eq!(reply.status, 200);
    let location = reply.json()["meta"]["location"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        location,
        format!(
            "http://{}/t/acme/scim/v2/ServiceProviderConfig",
            server.addr
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_headers_get_431() {
    let server = TestServer::start_with(limits(|l| l.max_header_bytes = 8192)).await;
    let big = "x".repeat(20_000);
    let reply = send(
        server.addr,
        false,
        Method::GET,
        "/healthz",
        &[("x-padding", &big)],
        None,
    )
    .await;
    assert_eq!(reply.status, 431);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off() {
    let server = TestServer::start_with(limits(|l| {
        l.header_read_timeout = Duration::from_millis(500)
    }))
    .await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let answer = read_all(&mut stream, Duration::from_secs(5)).await;
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(3),
        "the connection was closed after {waited:?}"
    );
    let text = String::from_utf8_lossy(&answer);
    assert!(
        answer.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_requests_time_out_with_503() {
    let server =
        TestServer::start_with(limits(|l| l.request_timeout = Duration::from_millis(500))).await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let head = format!(
        "POST /t/acme/scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/scim+json\r\nContent-Length: 100\r\n\r\n{{\"userName\"",
        server.client.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_all(&mut stream, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("\"status\":\"503\""), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cap_holds_further_connections_back() {
    let server = TestServer::start_with(limits(|l| l.max_connections = 1)).await;
    let idle = TcpStream::connect(server.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let addr = server.addr;
    let waiting =
        tokio::spawn(async move { send(addr, false, Method::GET, "/healthz", &[], None).await });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        !waiting.is_finished(),
        "a second connection was served beyond the cap"
    );
    drop(idle);
    let reply = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(reply.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_shutdown_finishes_in_flight_requests() {
    let mut server = TestServer::start().await;
    let mut stream = TcpStream::connect(server.addr).await.unwrap();
    let body = serde_json::to_vec(&user("late")).unwrap();
    let head = format!(
        "POST /t/acme/scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nContent-Type: application/scim+json\r\nContent-Length: {}\r\n\r\n",
        server.client.token,
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body[..5]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Shut down while the request is in flight, then let the client finish it.
    let handle = server.serving.handle.take().unwrap();
    server.stop().await;
    stream.write_all(&body[5..]).await.unwrap();
    let answer = read_all(&mut stream, Duration::from_secs(5)).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 201"), "{text}");
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .expect("server stopped")
        .unwrap();
    assert!(
        TcpStream::connect(server.addr).await.is_err(),
        "no longer listening"
    );
}

/// A small deterministic generator (xorshift): the test needs varied junk, not a crate.
struct Junk(u64);

impl Junk {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// An invented word of `len` letters: a valid HTTP method token that no one registered.
    fn word(&mut self, len: usize) -> String {
        (0..len)
            .map(|_| char::from(b'A' + u8::try_from(self.next() % 26).unwrap_or(0)))
            .collect()
    }
}

/// Labels come from fixed sets: invented methods and paths, sent without a token, must not
/// add series to `/metrics` (each would be a new time series kept forever: memory for the
/// server and for Prometheus).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_methods_and_paths_add_no_metric_series() {
    let server = TestServer::start().await;
    let mut junk = Junk(0x9e37_79b9_7f4a_7c15);
    let mut sent = Vec::new();
    for i in 0..200 {
        let method = format!("ZQ{}", junk.word(10));
        let segment = junk.word(12).to_lowercase();
        let path = match i % 5 {
            0 => "/healthz".to_owned(),
            1 => format!("/t/x/{segment}"),
            2 => format!("/t/x/scim/v2/{segment}/deep/{}", junk.word(6)),
            3 => format!("/t/x/workplace/v1/{segment}/{}", junk.word(6)),
            _ => format!("/{segment}"),
        };
        let reply = send(
            server.addr,
            false,
            Method::from_bytes(method.as_bytes()).unwrap(),
            &path,
            &[],
            None,
        )
        .await;
        assert!(reply.status < 500, "{method} {path}: {}", reply.status);
        sent.push((method, segment));
    }
    let metrics = send(server.addr, false, Method::GET, "/metrics", &[], None).await;
    assert_eq!(metrics.status, 200);
    let text = String::from_utf8(metrics.body.to_vec()).unwrap();
    for (method, segment) in &sent {
        assert!(!text.contains(method.as_str()), "{method} in /metrics");
        assert!(!text.contains(segment.as_str()), "{segment} in /metrics");
    }
    let series: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("scimd_http_requests_total{"))
        .collect();
    assert!(
        series.iter().any(|l| l.contains("method=\"other\"")),
        "invented methods are counted as \"other\": {series:#?}"
    );
    // /healthz, "other", "/workplace/v1/other", each with one method label and a status or
    // two: a handful of series, whatever the number of requests.
    assert!(series.len() <= 8, "{series:#?}");
    assert!(text.len() < 16 * 1024, "{} bytes of /metrics", text.len());
}
