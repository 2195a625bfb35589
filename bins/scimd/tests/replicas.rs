//! Two `scimd` processes on one PostgreSQL database, driven at once (the scale-out of RFC-level
//! guarantees across replicas): no duplicate userName, no lost update under `If-Match`, and a
//! change feed that is complete, gap-free and in order.
//!
//! The server is `SCIMD_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`);
//! the test creates a database of its own and drops it. Without a reachable PostgreSQL it is
//! skipped with a banner on stderr, unless `SCIMD_REQUIRE_POSTGRES=1` (CI sets it), which makes
//! absence a failure.

// Test support below: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../crates/scim-server/tests/common/client.rs"]
mod client;

use client::Client;
use futures_util::future::join_all;
use http::Method;
use scim_store::postgres::{PostgresOptions, PostgresStore};
use scim_store::{ChangeOp, ResourceSchemas, Store};
use serde_json::json;

mod support;

use support::{Running, ScratchDatabase, create_tenant, postgres_or_skip};

/// Two `scimd` replicas on a scratch database of their own, tenant `replicas`, a client of
/// each; `None` (after saying so) when PostgreSQL is absent.
struct Replicas {
    database: ScratchDatabase,
    url: String,
    servers: (Running, Running),
    clients: [Client; 2],
}

async fn two_replicas(what: &str, prefix: &str) -> Option<Replicas> {
    let admin_url = postgres_or_skip(what).await?;
    let database = ScratchDatabase::create(&admin_url, prefix).await;
    let url = database.url.clone();
    let token = create_tenant(&url, "replicas");
    let (a, b) = (Running::listening(&url, &[]), Running::listening(&url, &[]));
    let clients = [
        Client::new(a.addr, "replicas", &token),
        Client::new(b.addr, "replicas", &token),
    ];
    Some(Replicas {
        database,
        url,
        servers: (a, b),
        clients,
    })
}

impl Replicas {
    /// Stops both servers, then drops the database.
    async fn remove(self) {
        drop(self.servers);
        self.database.remove().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_on_one_postgres_database() {
    let Some(replicas) = two_replicas("two scimd replicas on PostgreSQL", "scimd_replicas").await
    else {
        return;
    };
    let (url, clients) = (&replicas.url, &replicas.clients);
    let user = |name: &str| json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name});

    // 1. The same userName created 20 times through both replicas at once: one wins.
    let races = (0..20).map(|i| {
        let client = &clients[i % 2];
        let body = user(if i % 3 == 0 { "Same.User" } else { "same.user" });
        async move { client.post("/Users", &body).await.status }
    });
    let statuses = join_all(races).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 201).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 409).count(),
        19,
        "{statuses:?}"
    );

    // 2. Concurrent PATCHes with the same If-Match through both replicas: exactly one applies.
    let target = clients[0].post("/Users", &user("target")).await;
    assert_eq!(target.status, 201);
    let id = target.json()["id"].as_str().unwrap().to_owned();
    let patches = (0..10).map(|i| {
        let client = &clients[i % 2];
        let path = format!("/Users/{id}");
        let body = json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "replace", "path": "title", "value": format!("title {i}")}]
        });
        async move {
            client
                .call(
                    Method::PATCH,
                    &path,
                    Some(&body),
                    &[("if-match", "W/\"1\"")],
                )
                .await
                .status
        }
    });
    let statuses = join_all(patches).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 412).count(),
        9,
        "{statuses:?}"
    );

    // 3. Many distinct writes through both replicas: none lost.
    let creates = (0..40).map(|i| {
        let client = &clients[i % 2];
        let body = user(&format!("user-{i}"));
        async move { client.post("/Users", &body).await.status }
    });
    let statuses = join_all(creates).await;
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    for client in clients {
        let listed = client.get("/Users?count=0").await.json();
        assert_eq!(listed["totalResults"], json!(42));
    }

    // 4. The change feed: every committed write once, numbered 1..n without a gap.
    let store = PostgresStore::connect(url, ResourceSchemas::core(), PostgresOptions::default())
        .await
        .unwrap();
    let tenant = store.tenant_by_name("replicas").await.unwrap().unwrap();
    let events = store.events(&tenant.id, 0, 1_000).await.unwrap();
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (1..=43).collect::<Vec<u64>>(), "gap-free and ordered");
    let creates = events.iter().filter(|e| e.op == ChangeOp::Created).count();
    let patches = events.iter().filter(|e| e.op == ChangeOp::Patched).count();
    assert_eq!((creates, patches), (42, 1));

    drop(store);
    replicas.remove().await;
}

/// A tenant's schemas set by the CLI (a third process) while two replicas run and have served
/// the tenant: both serve the change from their very next request, both ways (added, then
/// removed), with no restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schema_change_reaches_every_replica_at_its_next_request() {
    let Some(replicas) = two_replicas(
        "tenant schemas across replicas on PostgreSQL",
        "scimd_replica_schemas",
    )
    .await
    else {
        return;
    };
    let (url, clients) = (&replicas.url, &replicas.clients);
    let group = |name: &str| {
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
               "displayName": name, "description": "custom"})
    };
    // Each replica has served the tenant (and cached its schemas) before the change.
    for (i, client) in clients.iter().enumerate() {
        let before = client.post("/Groups", &group(&format!("before-{i}"))).await;
        assert_eq!(before.status, 400, "replica {i}");
    }
    let files = tempfile::tempdir().unwrap();
    let file = files.path().join("description.json");
    std::fs::write(
        &file,
        r#"{"id": "urn:ietf:params:scim:schemas:core:2.0:Group",
            "attributes": [{"name": "description", "type": "string"}]}"#,
    )
    .unwrap();
    let set = support::scimd(&[
        "--database",
        url,
        "schema",
        "set",
        "--tenant",
        "replicas",
        file.to_str().unwrap(),
    ]);
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    for (i, client) in clients.iter().enumerate() {
        let after = client.post("/Groups", &group(&format!("after-{i}"))).await;
        assert_eq!(
            after.status,
            201,
            "replica {i}: {}",
            String::from_utf8_lossy(&after.body)
        );
        assert_eq!(after.json()["description"], "custom");
    }
    let clear = support::scimd(&["--database", url, "schema", "clear", "--tenant", "replicas"]);
    assert!(
        clear.status.success(),
        "{}",
        String::from_utf8_lossy(&clear.stderr)
    );
    for (i, client) in clients.iter().enumerate() {
        let listed = client
            .get("/Groups?filter=displayName%20sw%20%22after%22")
            .await;
        assert_eq!(listed.status, 200, "replica {i}");
        for served in listed.json()["Resources"].as_array().unwrap() {
            assert!(served.get("description").is_none(), "replica {i}: {served}");
        }
        let again = client.post("/Groups", &group(&format!("again-{i}"))).await;
        assert_eq!(again.status, 400, "replica {i}");
    }
    replicas.remove().await;
}
