//! The host a request names (`Host`, or HTTP/2 `:authority`) is never reflected unchecked into
//! `meta.location`, `Location` or `$ref`: outside the allowed hosts it is refused with 421
//! before authentication, while the probes answer whatever the host.

// Test support functions below: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use bytes::Bytes;
use common::{TestServer, user};
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use scim_server::ServerConfig;
use serde_json::Value;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Sends `head` (request line and headers, without the final blank line) and an optional
/// body over HTTP/1.1 with `Connection: close`; returns the status and the body text.
async fn raw(addr: SocketAddr, head: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "{head}\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer))
        .await
        .unwrap()
        .unwrap();
    let text = String::from_utf8(answer).unwrap();
    let status = text
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

/// A GET of `path` with `Host: host` and the server's token.
async fn get(server: &TestServer, host: &str, path: &str) -> (u16, String) {
    let head = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}",
        server.client.token
    );
    raw(server.addr, &head, "").await
}

fn json(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

const SPC: &str = "/t/acme/scim/v2/ServiceProviderConfig";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_host_is_refused_before_authentication_and_never_reflected() {
    let server = TestServer::start().await;
    let port = server.addr.port();

    // The test server listens on 127.0.0.1: a foreign host gets 421, with or without a token.
    let (status, body) = get(&server, "evil.example", SPC).await;
    assert_eq!(status, 421, "{body}");
    let error = json(&body);
    assert_eq!(error["status"], "421");
    let detail = error["detail"].as_str().unwrap();
    assert!(detail.contains("evil.example"), "{detail}");
    assert!(
        detail.contains("--allowed-hosts") && detail.contains("--public-url"),
        "{detail}"
    );
    let (status, _) = raw(
        server.addr,
        &format!("GET {SPC} HTTP/1.1\r\nHost: evil.example:{port}"),
        "",
    )
    .await;
    assert_eq!(status, 421, "refused before the token is looked at");

    // A write under a foreign host is refused and changes nothing.
    let create = format!(
        "POST /t/acme/scim/v2/Users HTTP/1.1\r\nHost: evil.example\r\nAuthorization: Bearer {}\r\nContent-Type: application/scim+json",
        server.client.token
    );
    let (status, body) = raw(server.addr, &create, &user("mallory").to_string()).await;
    assert_eq!(status, 421, "{body}");
    assert!(!body.contains("/Users/"), "{body}");
    let listed = server
        .client
        .get("/Users?filter=userName%20eq%20%22mallory%22")
        .await;
    assert_eq!(listed.json()["totalResults"], 0);

    // An absolute-form target names the host too, and wins over Host (RFC 9112 3.2.2).
    let (status, _) = get(
        &server,
        &format!("127.0.0.1:{port}"),
        &format!("http://evil.example{SPC}"),
    )
    .await;
    assert_eq!(status, 421);

    // The workplace API answers in its own error shape.
    let (status, body) = get(&server, "evil.example", "/t/acme/workplace/v1/sites").await;
    assert_eq!(status, 421, "{body}");
    assert_eq!(json(&body)["error"], "misdirectedRequest");

    // Malformed hosts are 400, not reflected either.
    for bad in ["evil@example", "[::1", "a:99999"] {
        let (status, body) = get(&server, bad, SPC).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }

    // The loopback names work, and links are built from the host the client used.
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LOCALHOST:{port}"),
        format!("[::1]:{port}"),
        "localhost".to_owned(),
    ] {
        let (status, body) = get(&server, &host, SPC).await;
        assert_eq!(status, 200, "{host}: {body}");
        let location = json(&body)["meta"]["location"].as_str().unwrap().to_owned();
        assert_eq!(
            location,
            format!("http://{}{SPC}", host.to_ascii_lowercase()),
            "{host}"
        );
    }

    // The probes answer whatever the host: a Kubernetes probe sends the pod's address.
    for path in ["/healthz", "/readyz", "/metrics"] {
        let (status, _) = raw(
            server.addr,
            &format!("GET {path} HTTP/1.1\r\nHost: 10.12.0.7:8080"),
            "",
        )
        .await;
        assert_eq!(status, 200, "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_authority_is_checked_like_host() {
    let server = TestServer::start().await;
    let auth = format!("Bearer {}", server.client.token);
    let send = |authority: String| {
        let auth = auth.clone();
        let addr = server.addr;
        async move {
            let io = TokioIo::new(TcpStream::connect(addr).await.unwrap());
            let (mut sender, conn) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .unwrap();
            tokio::spawn(conn);
            let request = Request::get(format!("http://{authority}{SPC}"))
                .header("authorization", auth)
                .body(Full::new(Bytes::new()))
                .unwrap();
            let response = sender.send_request(request).await.unwrap();
            let status = response.status().as_u16();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8(body.to_vec()).unwrap())
        }
    };
    let (status, body) = send("evil.example".into()).await;
    assert_eq!(status, 421, "{body}");
    assert!(!body.contains("http://evil.example"), "{body}");
    let (status, body) = send(format!("localhost:{}", server.addr.port())).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_hosts_are_the_only_hosts() {
    let server = TestServer::start_with(ServerConfig {
        allowed_hosts: vec!["SCIM.example.com".into(), "10.1.2.3:8443".into()],
        ..ServerConfig::default()
    })
    .await;
    // Without a port, an entry admits any port; with one, only that port.
    for (host, expected) in [
        ("scim.example.com", 200),
        ("scim.example.com:8443", 200),
        ("scim.example.com.", 200),
        ("10.1.2.3:8443", 200),
        ("10.1.2.3", 421),
        ("10.1.2.3:80", 421),
        ("evil.example", 421),
        ("scim.example.com.evil.example", 421),
    ] {
        let (status, body) = get(&server, host, SPC).await;
        assert_eq!(status, expected, "{host}: {body}");
        if status == 421 {
            let detail = json(&body)["detail"].as_str().unwrap().to_owned();
            assert!(detail.contains("allowed hosts"), "{detail}");
        }
    }
    // The listed hosts replace the listen address: 127.0.0.1 is not in the list.
    let (status, _) = get(&server, &server.addr.to_string(), SPC).await;
    assert_eq!(status, 421);

    // Links are built from the checked host, in canonical form.
    let (_, body) = get(&server, "Scim.Example.com:9000", SPC).await;
    assert_eq!(
        json(&body)["meta"]["location"],
        format!("http://scim.example.com:9000{SPC}")
    );
    let created = raw(
        server.addr,
        &format!(
            "POST /t/acme/scim/v2/Users HTTP/1.1\r\nHost: scim.example.com\r\nAuthorization: Bearer {}\r\nContent-Type: application/scim+json",
            server.client.token
        ),
        &user("alice").to_string(),
    )
    .await;
    assert_eq!(created.0, 201, "{}", created.1);
    assert!(
        json(&created.1)["meta"]["location"]
            .as_str()
            .unwrap()
            .starts_with("http://scim.example.com/t/acme/scim/v2/Users/")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_url_ignores_the_host_unless_hosts_are_listed() {
    let server = TestServer::start_with(ServerConfig {
        public_base_url: Some("https://scim.example.com/".into()),
        ..ServerConfig::default()
    })
    .await;
    // Nothing is built from the host, so any is accepted (proxies send internal names).
    let (status, body) = get(&server, "evil.example", SPC).await;
    assert_eq!(status, 200, "{body}");
    assert!(!body.contains("evil"), "{body}");
    assert_eq!(
        json(&body)["meta"]["location"],
        format!("https://scim.example.com{SPC}")
    );

    // With both, links come from the URL and the host is still checked.
    let both = TestServer::start_with(ServerConfig {
        public_base_url: Some("https://scim.example.com".into()),
        allowed_hosts: vec!["scim.example.com".into()],
        ..ServerConfig::default()
    })
    .await;
    assert_eq!(get(&both, "evil.example", SPC).await.0, 421);
    let (status, body) = get(&both, "scim.example.com:8080", SPC).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        json(&body)["meta"]["location"],
        format!("https://scim.example.com{SPC}")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configuration_is_checked_before_serving() {
    let wildcard: SocketAddr = "0.0.0.0:8080".parse().unwrap();
    let refused = scim_server::check_listen_address(&ServerConfig::default(), wildcard)
        .unwrap_err()
        .to_string();
    assert!(refused.contains("0.0.0.0:8080"), "{refused}");
    assert!(refused.contains("allowed hosts"), "{refused}");
    let listed = ServerConfig {
        allowed_hosts: vec!["scim.example.com".into()],
        ..ServerConfig::default()
    };
    assert!(scim_server::check_listen_address(&listed, wildcard).is_ok());
    let bad = ServerConfig {
        allowed_hosts: vec!["https://scim.example.com".into()],
        ..ServerConfig::default()
    };
    let refused = scim_server::check_config(&bad).unwrap_err().to_string();
    assert!(refused.contains("https://scim.example.com"), "{refused}");
}
