//! Cursors (RFC 9865) under attack, over HTTP against the real `scimd`, on SQLite and on
//! PostgreSQL: a cursor is signed with the store's key and bound to its tenant, resource type
//! and query, so a foreign, altered, hand-made or oversized one is 400 `invalidCursor`, and the
//! honest client still pages through every resource exactly once.
//!
//! On the scimd before signed cursors (unsigned hex of `[fingerprint, sort key, row id]`, the
//! fingerprint covering neither the tenant nor a secret), tenant A's cursor was accepted on
//! tenant B, and a cursor written by hand with a row id of the client's choosing was accepted:
//! both checks below failed there.
//!
//! PostgreSQL is `SCIMD_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`);
//! the test creates a database of its own and drops it. Without a reachable PostgreSQL that
//! half is skipped with a banner on stderr, unless `SCIMD_REQUIRE_POSTGRES=1` (CI sets it),
//! which makes absence a failure.

// Test support below: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../crates/scim-server/tests/common/client.rs"]
mod client;

use client::Client;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

mod support;

use support::{Running, ScratchDatabase, create_tenant, postgres_or_skip};

const USERS: usize = 7;

fn user(name: &str) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name})
}

/// `GET {path}` answered 400 `invalidCursor`, with a detail about the cursor.
async fn refused(client: &Client, path: &str, what: &str) {
    let reply = client.get(path).await;
    assert_eq!(
        reply.status,
        400,
        "{what}: {path} answered {} {}",
        reply.status,
        String::from_utf8_lossy(&reply.body)
    );
    let body = reply.json();
    assert_eq!(body["scimType"], "invalidCursor", "{what}: {body}");
    assert!(
        body["detail"].as_str().unwrap().contains("cursor"),
        "{what}: {body}"
    );
}

/// The next cursor of `GET {path}`.
async fn next_cursor(client: &Client, path: &str) -> String {
    let reply = client.get(path).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()["nextCursor"].as_str().unwrap().to_owned()
}

/// The ids of every page of `GET {path}&cursor=...`, following `nextCursor` from the first
/// page (`{path}&cursor`).
async fn page_through(client: &Client, path: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = String::new();
    for _ in 0..=USERS {
        let reply = client.get(&format!("{path}&cursor={cursor}")).await;
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        let body = reply.json();
        assert_eq!(body["totalResults"], USERS);
        for r in body["Resources"].as_array().unwrap() {
            ids.push(r["id"].as_str().unwrap().to_owned());
        }
        match body["nextCursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => return ids,
        }
    }
    panic!("more pages than users: {ids:?}");
}

/// Every attack, against a scimd on `database` where `a` and `b` are the tokens of tenants
/// `alpha` and `beta`.
async fn attack(server: &Running, a: &str, b: &str) {
    let alpha = Client::new(server.addr, "alpha", a);
    let beta = Client::new(server.addr, "beta", b);
    let mut ids = BTreeSet::new();
    for i in 0..USERS {
        let reply = alpha.post("/Users", &user(&format!("alpha-{i}"))).await;
        assert_eq!(reply.status, 201);
        ids.insert(reply.json()["id"].as_str().unwrap().to_owned());
        let reply = beta.post("/Users", &user(&format!("beta-{i}"))).await;
        assert_eq!(reply.status, 201);
    }
    let group =
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "g"});
    assert_eq!(alpha.post("/Groups", &group).await.status, 201);
    assert_eq!(beta.post("/Groups", &group).await.status, 201);

    // The honest client pages through every user exactly once, in creation order and by
    // userName, two at a time.
    for path in ["/Users?count=2", "/Users?count=2&sortBy=userName"] {
        let seen = page_through(&alpha, path).await;
        assert_eq!(seen.len(), USERS, "{path}: {seen:?}");
        assert_eq!(seen.iter().cloned().collect::<BTreeSet<_>>(), ids, "{path}");
    }

    let cursor = next_cursor(&alpha, "/Users?cursor&count=2").await;
    assert!(
        cursor
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
        "URL-safe: {cursor}"
    );
    assert!(cursor.len() < 64, "short: {cursor}");
    // Good where it was issued.
    assert_eq!(
        alpha
            .get(&format!("/Users?cursor={cursor}&count=2"))
            .await
            .status,
        200
    );

    // 1. Tenant alpha's cursor on tenant beta's /Users (accepted before: the fingerprint did
    //    not cover the tenant, and beta has users after that row).
    refused(
        &beta,
        &format!("/Users?cursor={cursor}&count=2"),
        "another tenant's cursor",
    )
    .await;
    // 2. Edited by one character in the payload (the masked row id: characters 4 to 13 hold
    //    bytes 3 to 10; the tag is the last 22 characters), and in the tag.
    for at in [5, cursor.len() - 3] {
        let mut edited = cursor.clone().into_bytes();
        edited[at] = if edited[at] == b'A' { b'B' } else { b'A' };
        let edited = String::from_utf8(edited).unwrap();
        refused(
            &alpha,
            &format!("/Users?cursor={edited}&count=2"),
            "an edited cursor",
        )
        .await;
    }
    // 3. A /Users cursor on /Groups.
    refused(
        &alpha,
        &format!("/Groups?cursor={cursor}&count=2"),
        "a Users cursor on Groups",
    )
    .await;
    // 4. The same cursor with another filter, or another sort.
    refused(
        &alpha,
        &format!("/Users?cursor={cursor}&count=2&filter=userName%20sw%20%22alpha%22"),
        "a cursor with another filter",
    )
    .await;
    refused(
        &alpha,
        &format!("/Users?cursor={cursor}&count=2&sortBy=userName"),
        "a cursor with another sortBy",
    )
    .await;
    // 5. Hand-made in the old unsigned form, with a row id of the attacker's choosing: hex of
    //    `["508e0d271879d0c6",null,0]`, the old fingerprint of an unsorted, unfiltered /Users
    //    query (read from any cursor the old server issued). Accepted before.
    let forged = hex(br#"["508e0d271879d0c6",null,0]"#);
    refused(
        &alpha,
        &format!("/Users?cursor={forged}&count=2"),
        "a hand-made cursor in the old form",
    )
    .await;
    // 6. A huge cursor, in a /.search body just under the 1 MiB body limit: refused at once.
    let huge = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "cursor": "A".repeat(1_000_000),
        "count": 2,
    });
    let start = Instant::now();
    let reply = alpha.post("/Users/.search", &huge).await;
    let took = start.elapsed();
    assert_eq!(
        (reply.status, reply.json()["scimType"].clone()),
        (400, json!("invalidCursor")),
        "{}",
        String::from_utf8_lossy(&reply.body[..200.min(reply.body.len())])
    );
    assert!(took < Duration::from_secs(2), "a huge cursor took {took:?}");
    eprintln!("a cursor of 1,000,000 characters was refused in {took:?}");
    // In a GET, as long as the request head allows.
    let long = "A".repeat(15_000);
    refused(
        &alpha,
        &format!("/Users?cursor={long}&count=2"),
        "a 15,000-character cursor",
    )
    .await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_foreign_cursors_are_refused_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("cursors.db");
    let database = db.to_str().unwrap();
    let a = create_tenant(database, "alpha");
    let b = create_tenant(database, "beta");
    let server = Running::start(&db, &[]);
    attack(&server, &a, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_foreign_cursors_are_refused_on_postgres() {
    let Some(admin_url) = postgres_or_skip("cursors on PostgreSQL").await else {
        return;
    };
    let database = ScratchDatabase::create(&admin_url, "scimd_cursors").await;
    let url = database.url.clone();
    let a = create_tenant(&url, "alpha");
    let b = create_tenant(&url, "beta");
    let server = Running::start_on(&url, &[]);
    attack(&server, &a, &b).await;
    drop(server);
    database.remove().await;
}
