//! A minimal HTTP client for the integration tests: one connection per request, HTTP/1.1 or
//! HTTP/2 (prior knowledge), so that the tests see exactly what the server sends.

#![allow(dead_code)]
// Test support: a failure here is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::Value;
use std::net::SocketAddr;
use tokio::net::TcpStream;

/// A response: status, headers, body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    /// The body as JSON (panics with the body if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    /// A header's value as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Asserts a status, showing the body when it differs, and returns the body as JSON (`null`
/// when empty).
#[track_caller]
pub fn expect(reply: &Reply, status: u16) -> Value {
    assert_eq!(
        reply.status,
        status,
        "body: {}",
        String::from_utf8_lossy(&reply.body)
    );
    if reply.body.is_empty() {
        Value::Null
    } else {
        reply.json()
    }
}

/// Sends one request over a fresh connection.
pub async fn send(
    addr: SocketAddr,
    http2: bool,
    method: Method,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Vec<u8>>,
) -> Reply {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let io = TokioIo::new(stream);
    let uri = if http2 {
        format!("http://{addr}{path}")
    } else {
        path.to_owned()
    };
    let mut builder = Request::builder().method(method).uri(uri);
    if !http2 {
        builder = builder.header("host", addr.to_string());
    }
    for (k, v) in headers {
        builder = builder.header(*k, *v);
    }
    let request = builder
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .expect("request");
    let response = if http2 {
        let (mut sender, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
            .await
            .expect("h2 handshake");
        tokio::spawn(conn);
        sender.send_request(request).await.expect("h2 send")
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .expect("handshake");
        tokio::spawn(conn);
        sender.send_request(request).await.expect("send")
    };
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("body")
        .to_bytes();
    Reply {
        status,
        headers,
        body,
    }
}

/// A client bound to one server and token.
#[derive(Debug, Clone)]
pub struct Client {
    pub addr: SocketAddr,
    pub base: String,
    pub token: String,
}

impl Client {
    pub fn new(addr: SocketAddr, tenant: &str, token: &str) -> Self {
        Client {
            addr,
            base: format!("/t/{tenant}/scim/v2"),
            token: token.to_owned(),
        }
    }

    /// A request to `{base}{path}` with the bearer token, JSON body if given.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        extra: &[(&str, &str)],
    ) -> Reply {
        let auth = format!("Bearer {}", self.token);
        let mut headers: Vec<(&str, &str)> = vec![("authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("content-type", "application/scim+json"));
        }
        headers.extend_from_slice(extra);
        let bytes = body.map(|b| serde_json::to_vec(b).unwrap());
        send(
            self.addr,
            false,
            method,
            &format!("{}{path}", self.base),
            &headers,
            bytes,
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None, &[]).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> Reply {
        self.call(Method::POST, path, Some(body), &[]).await
    }

    pub async fn put(&self, path: &str, body: &Value) -> Reply {
        self.call(Method::PUT, path, Some(body), &[]).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> Reply {
        self.call(Method::PATCH, path, Some(body), &[]).await
    }

    pub async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, None, &[]).await
    }

    /// A raw request: any headers, any body bytes.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Reply {
        send(
            self.addr,
            false,
            method,
            &format!("{}{path}", self.base),
            headers,
            body,
        )
        .await
    }
}
