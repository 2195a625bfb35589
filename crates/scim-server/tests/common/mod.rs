//! The test harness: the real server, in-process, on an ephemeral loopback port, over a fresh
//! SQLite database.

#![allow(dead_code)]
// Test support: a failure here is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

pub mod client;

use client::Client;
use scim_server::{Server, ServerConfig};
use scim_store::sqlite::{SqliteOptions, SqliteStore};
use scim_store::{AdminStore, ResourceSchemas, Store, TokenScope};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The real server over any store, on an ephemeral loopback port, until [`Serving::stop`].
pub struct Serving {
    pub addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    pub handle: Option<JoinHandle<()>>,
}

impl Serving {
    pub async fn start(store: Arc<dyn AdminStore>, config: ServerConfig) -> Serving {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = Server::new(store, scim_schema::SchemaRegistry::new(), config, None).unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let handle = tokio::spawn(async move {
            server
                .run(listener, async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        Serving {
            addr,
            shutdown: Some(tx),
            handle: Some(handle),
        }
    }

    /// Signals shutdown and waits for the server to return.
    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(handle) = self.handle.take() {
            handle.await.unwrap();
        }
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub store: Arc<SqliteStore>,
    pub client: Client,
    pub tenant: String,
    pub serving: Serving,
    _dir: tempfile::TempDir,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(ServerConfig::default()).await
    }

    pub async fn start_with(config: ServerConfig) -> TestServer {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(
            SqliteStore::open(
                dir.path().join("scimd.db"),
                ResourceSchemas::core(),
                SqliteOptions::default(),
            )
            .unwrap(),
        );
        let tenant = store.create_tenant("acme").await.unwrap();
        let token = store
            .issue_token(&tenant.id, "test", TokenScope::Scim)
            .await
            .unwrap();
        let serving = Serving::start(store.clone() as Arc<dyn AdminStore>, config).await;
        TestServer {
            addr: serving.addr,
            store,
            client: Client::new(serving.addr, "acme", &token.secret),
            tenant: "acme".into(),
            serving,
            _dir: dir,
        }
    }

    /// A second tenant with its own token.
    pub async fn other_tenant(&self, name: &str) -> Client {
        let tenant = self.store.create_tenant(name).await.unwrap();
        let token = self
            .store
            .issue_token(&tenant.id, "test", TokenScope::Scim)
            .await
            .unwrap();
        Client::new(self.addr, name, &token.secret)
    }

    /// Signals shutdown and waits for the server to return.
    pub async fn stop(&mut self) {
        self.serving.stop().await;
    }
}

pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

pub fn user(name: &str) -> Value {
    json!({
        "schemas": [USER],
        "userName": name,
        "name": {"givenName": "Given", "familyName": name},
        "displayName": name,
        "active": true,
        "emails": [{"value": format!("{name}@example.com"), "type": "work", "primary": true}],
    })
}

pub fn group(name: &str, members: &[&str]) -> Value {
    json!({
        "schemas": [GROUP],
        "displayName": name,
        "members": members.iter().map(|m| json!({"value": m})).collect::<Vec<_>>(),
    })
}

/// Asserts an RFC 7644 section 3.12 error body and returns it.
pub fn assert_error(reply: &client::Reply, status: u16, scim_type: Option<&str>) -> Value {
    assert_eq!(
        reply.status,
        status,
        "body: {}",
        String::from_utf8_lossy(&reply.body)
    );
    let body = reply.json();
    assert_eq!(body["schemas"], json!([ERROR]));
    assert_eq!(body["status"], json!(status.to_string()));
    match scim_type {
        Some(t) => assert_eq!(body["scimType"], json!(t), "{body}"),
        None => assert!(body.get("scimType").is_none(), "{body}"),
    }
    assert!(!body["detail"].as_str().unwrap_or("").is_empty());
    body
}
