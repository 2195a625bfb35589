//! The shared test kit, and PostgreSQL-specific checks (two replicas racing, the change feed
//! under concurrent writers, migrations started twice at once, query plans), run against
//! [`PostgresStore`].
//!
//! The server is `SCIMD_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`).
//! Each test works in a schema of its own (`CREATE SCHEMA t_<random>`, dropped at the end), so
//! tests run in parallel and leave nothing behind. Without a reachable server every test is
//! skipped with a banner on stderr, unless `SCIMD_REQUIRE_POSTGRES=1` (as CI sets it): then
//! each one fails.

#![cfg(feature = "postgres")]
// Fixture helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used)]

use scim_filter::parse_filter;
use scim_store::postgres::{PostgresOptions, PostgresStore, SCHEMA_VERSION};
use scim_store::testkit::{self, Fixture};
use scim_store::{
    ChangeOp, Members, PatchSettings, Query, ResourceKind, ResourceSchemas, Store, StoreError,
    WriteContext,
};
use serde_json::json;
use std::io::Write;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

const URL_VAR: &str = "SCIMD_TEST_POSTGRES_URL";
const REQUIRE_VAR: &str = "SCIMD_REQUIRE_POSTGRES";
const DEFAULT_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

fn url() -> String {
    std::env::var(URL_VAR).unwrap_or_else(|_| DEFAULT_URL.to_owned())
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Whether the PostgreSQL tests must be skipped: the server is unreachable and not required.
/// Checked once per process; the banner goes straight to the process's stderr (test output
/// capture only intercepts `eprintln!`), so it is seen even though the tests pass.
fn postgres_missing() -> bool {
    static MISSING: OnceLock<Option<String>> = OnceLock::new();
    let failure = MISSING.get_or_init(|| {
        let url = url();
        let attempt = runtime().block_on(async {
            let config: tokio_postgres::Config = url.parse().map_err(|e| format!("{e}"))?;
            let connect = config.connect(tokio_postgres::NoTls);
            match tokio::time::timeout(Duration::from_secs(5), connect).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("timed out after 5 s".to_owned()),
            }
        });
        attempt.err()
    });
    let Some(why) = failure else {
        return false;
    };
    let url = url();
    if std::env::var(REQUIRE_VAR).as_deref() == Ok("1") {
        panic!("{REQUIRE_VAR}=1 but PostgreSQL at {url} is unreachable: {why}");
    }
    static BANNER: OnceLock<()> = OnceLock::new();
    BANNER.get_or_init(|| {
        let line = "=".repeat(78);
        let _ = writeln!(
            std::io::stderr(),
            "\n{line}\nSKIPPED: the PostgreSQL store tests did not run: {url} is unreachable \
             ({why}).\nRun them against a server with: {URL_VAR}=postgres://user@host:port/db \
             cargo test -p scim-store --features postgres\n(set {REQUIRE_VAR}=1 to make an \
             unreachable server a failure, as CI does)\n{line}\n"
        );
    });
    true
}

/// A fresh schema on the test server, dropped (with everything in it) when this is dropped.
struct Schema {
    name: String,
    runtime: tokio::runtime::Runtime,
}

impl Schema {
    fn new() -> Schema {
        let mut bytes = [0u8; 8];
        getrandom::fill(&mut bytes).unwrap();
        let name = format!(
            "t_{}",
            bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
        );
        let runtime = runtime();
        runtime.block_on(admin(&format!("CREATE SCHEMA {name}")));
        Schema { name, runtime }
    }

    fn options(&self) -> PostgresOptions {
        PostgresOptions {
            schema: Some(self.name.clone()),
            max_connections: 8,
            ..PostgresOptions::default()
        }
    }

    fn connect(&self, schemas: ResourceSchemas) -> PostgresStore {
        self.runtime
            .block_on(PostgresStore::connect(&url(), schemas, self.options()))
            .unwrap()
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        self.runtime.block_on(admin(&format!(
            "DROP SCHEMA IF EXISTS {} CASCADE",
            self.name
        )));
    }
}

/// Runs `sql` on its own connection.
async fn admin(sql: &str) {
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(connection);
    client.batch_execute(sql).await.unwrap();
    drop(client);
    let _ = task.await;
}

fn postgres(schemas: ResourceSchemas) -> Fixture {
    let schema = Schema::new();
    let store = schema.connect(schemas);
    Fixture {
        store: Arc::new(store),
        guard: Box::new(schema),
    }
}

scim_store::store_tests!(postgres, skip_if = postgres_missing);

/// Two stores with two pools on one schema: two replicas of scimd.
fn two_replicas() -> (Schema, Arc<dyn Store>, Arc<dyn Store>) {
    let schema = Schema::new();
    let a: Arc<dyn Store> = Arc::new(schema.connect(testkit::schemas()));
    let b: Arc<dyn Store> = Arc::new(schema.connect(testkit::schemas()));
    (schema, a, b)
}

fn ctx(actor: &str) -> WriteContext {
    WriteContext::actor(actor)
}

/// Two replicas racing to create one userName (in different cases): exactly one wins.
#[test]
fn two_replicas_race_creates_of_one_user_name() {
    if postgres_missing() {
        return;
    }
    let (schema, a, b) = two_replicas();
    schema.runtime.block_on(async {
        let t = a.create_tenant("race").await.unwrap().id;
        let mut tasks = Vec::new();
        for i in 0..40 {
            let store = Arc::clone(if i % 2 == 0 { &a } else { &b });
            let name = if i % 3 == 0 { "Racer" } else { "rACER" };
            tasks.push(tokio::spawn(async move {
                store
                    .create(&t, ResourceKind::User, testkit::user(name), &ctx("r"))
                    .await
            }));
        }
        let mut won = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => won += 1,
                Err(StoreError::Uniqueness { attribute, .. }) => assert_eq!(attribute, "userName"),
                Err(other) => panic!("a racing create failed otherwise: {other}"),
            }
        }
        assert_eq!(won, 1);
        let page = b
            .query(&t, ResourceKind::User, &Query::default())
            .await
            .unwrap();
        assert_eq!(page.total_results, 1);
        assert_eq!(a.events(&t, 0, 100).await.unwrap().len(), 1);
    });
}

/// Two replicas racing to patch one resource with the same expected version: exactly one
/// wins, the others see the winner's version; no update is lost.
#[test]
fn two_replicas_race_patches_with_one_expected_version() {
    if postgres_missing() {
        return;
    }
    let (schema, a, b) = two_replicas();
    schema.runtime.block_on(async {
        let t = a.create_tenant("cas").await.unwrap().id;
        let u = a
            .create(&t, ResourceKind::User, testkit::user("cas"), &ctx("setup"))
            .await
            .unwrap();
        let mut tasks = Vec::new();
        for i in 0..24 {
            let store = Arc::clone(if i % 2 == 0 { &a } else { &b });
            let id = u.id.clone();
            tasks.push(tokio::spawn(async move {
                let message = json!({
                    "schemas": [scim_patch::PATCH_OP_URN],
                    "Operations": [{"op": "replace", "path": "title", "value": format!("writer {i}")}]
                });
                let request = scim_patch::PatchRequest::from_json(
                    &message,
                    &scim_patch::PatchOptions::default(),
                )
                .unwrap();
                store
                    .patch(
                        &t,
                        ResourceKind::User,
                        &id,
                        &request,
                        &PatchSettings::default(),
                        Some(1),
                        &ctx("w"),
                        Members::Include,
                    )
                    .await
            }));
        }
        let mut winners = Vec::new();
        for task in tasks {
            match task.await.unwrap() {
                Ok(r) => {
                    assert_eq!(r.resource.version, 2);
                    winners.push(r.resource.document["title"].clone());
                }
                Err(StoreError::VersionMismatch {
                    expected: 1,
                    actual: 2,
                }) => {}
                Err(other) => panic!("unexpected: {other}"),
            }
        }
        assert_eq!(winners.len(), 1);
        let now = b
            .get(&t, ResourceKind::User, &u.id, Members::Include)
            .await
            .unwrap()
            .unwrap();
        assert_eq!((now.version, &now.document["title"]), (2, &winners[0]));
    });
}

/// Concurrent writers on two replicas while a reader follows the feed: the reader never sees a
/// gap (each poll continues exactly where the last ended), and at the end the feed holds every
/// committed write once, in order, with consecutive numbers.
#[test]
fn the_feed_stays_gap_free_and_ordered_under_concurrent_writers() {
    if postgres_missing() {
        return;
    }
    let (schema, a, b) = two_replicas();
    schema.runtime.block_on(async {
        let t = a.create_tenant("feed").await.unwrap().id;
        let writers = 8;
        let per_writer = 15;
        let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (store, done) = (Arc::clone(&b), Arc::clone(&done));
            tokio::spawn(async move {
                let mut last = 0u64;
                let mut seen = Vec::new();
                loop {
                    let finished = done.load(std::sync::atomic::Ordering::SeqCst);
                    let events = store.events(&t, last, 7).await.unwrap();
                    for e in &events {
                        assert_eq!(e.seq, last + 1, "the reader skipped or repeated an event");
                        last = e.seq;
                        seen.push(e.clone());
                    }
                    if finished && events.is_empty() {
                        return seen;
                    }
                    tokio::task::yield_now().await;
                }
            })
        };
        // Taken before the writers start, so every writer's clash with it fails, whatever the
        // interleaving.
        a.create(
            &t,
            ResourceKind::User,
            testkit::user("taken"),
            &ctx("setup"),
        )
        .await
        .unwrap();
        let mut tasks = Vec::new();
        for w in 0..writers {
            let store = Arc::clone(if w % 2 == 0 { &a } else { &b });
            tasks.push(tokio::spawn(async move {
                let mut committed = 0;
                for i in 0..per_writer {
                    let u = store
                        .create(
                            &t,
                            ResourceKind::User,
                            testkit::user(&format!("w{w}-{i}")),
                            &ctx(&format!("writer-{w}")),
                        )
                        .await
                        .unwrap();
                    let mut doc = testkit::user(&format!("w{w}-{i}"));
                    doc["title"] = json!("changed");
                    store
                        .replace(&t, ResourceKind::User, &u.id, doc, Some(1), &ctx("w"))
                        .await
                        .unwrap();
                    // A write that fails leaves no event.
                    let clash = store
                        .create(&t, ResourceKind::User, testkit::user("taken"), &ctx("w"))
                        .await;
                    assert!(clash.is_err(), "a duplicate userName was accepted");
                    committed += 2;
                }
                committed
            }));
        }
        let mut committed = 1; // the "taken" user
        for task in tasks {
            committed += task.await.unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        let seen = reader.await.unwrap();
        let all = a.events(&t, 0, 100_000).await.unwrap();
        assert_eq!(all.len(), committed, "one event per committed write");
        assert!(all.iter().enumerate().all(|(i, e)| e.seq == i as u64 + 1));
        assert_eq!(seen, all, "the following reader saw exactly the feed");
        // Per resource, the events are in version order.
        let creates = all.iter().filter(|e| e.op == ChangeOp::Created).count();
        let replaces = all.iter().filter(|e| e.op == ChangeOp::Replaced).count();
        assert_eq!(
            creates,
            replaces + 1,
            "every writer's user replaced once; \"taken\" never"
        );
        let page = a
            .query(&t, ResourceKind::User, &Query::default())
            .await
            .unwrap();
        assert_eq!(page.total_results as usize, creates);
    });
}

/// Two replicas starting at once on an empty schema both migrate it without error, and the
/// migrations are recorded once.
#[test]
fn two_replicas_migrate_at_once() {
    if postgres_missing() {
        return;
    }
    let schema = Schema::new();
    let options = schema.options();
    let url = url();
    schema.runtime.block_on(async {
        let (a, b) = tokio::join!(
            PostgresStore::connect(&url, testkit::schemas(), options.clone()),
            PostgresStore::connect(&url, testkit::schemas(), options.clone()),
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        let t = a.create_tenant("both").await.unwrap();
        assert_eq!(b.tenant_by_name("both").await.unwrap(), Some(t));
        let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        let rows = client
            .query(
                &format!(
                    "SELECT version FROM {}.scimd_migrations ORDER BY version",
                    schema.name
                ),
                &[],
            )
            .await
            .unwrap();
        let versions: Vec<i32> = rows.iter().map(|r| r.get(0)).collect();
        assert_eq!(versions, (0..=SCHEMA_VERSION).collect::<Vec<_>>());
        // A database from a newer scimd is refused rather than misread.
        client
            .execute(
                &format!(
                    "INSERT INTO {}.scimd_migrations VALUES ({}, 'future', 0)",
                    schema.name,
                    SCHEMA_VERSION + 1
                ),
                &[],
            )
            .await
            .unwrap();
        let err = PostgresStore::connect(&url, testkit::schemas(), options)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("newer"), "{err}");
    });
}

/// What PostgreSQL cannot hold is refused with a 400, never a 500.
#[test]
fn unstorable_values_are_refused_as_invalid() {
    if postgres_missing() {
        return;
    }
    let schema = Schema::new();
    let store = schema.connect(testkit::schemas());
    schema.runtime.block_on(async {
        let t = store.create_tenant("nul").await.unwrap().id;
        let mut doc = testkit::user("ok");
        doc["title"] = json!("a\u{0}b");
        let err = store
            .create(&t, ResourceKind::User, doc, &ctx("x"))
            .await
            .unwrap_err();
        assert_eq!((err.status(), err.scim_type()), (400, Some("invalidValue")));
        let long = "x".repeat(3_000);
        let err = store
            .create(&t, ResourceKind::User, testkit::user(&long), &ctx("x"))
            .await
            .unwrap_err();
        assert_eq!(err.status(), 400, "{err}");
        assert!(
            store
                .get(&t, ResourceKind::User, "a\u{0}", Members::Include)
                .await
                .unwrap()
                .is_none()
        );
    });
}

/// Whether a plan reads the whole tenant: a sequential scan, or a scan of any `resources`
/// index bounded by nothing but tenant and kind.
fn scans_tenant(plan: &[String]) -> bool {
    let seq = plan
        .iter()
        .any(|step| step.contains("Seq Scan on resources r"));
    let kind_range = plan.windows(2).any(|w| {
        let condition = w[1].trim();
        (w[0].contains("using resources_") || w[0].contains("Index Scan on resources_"))
            && condition.starts_with("Index Cond: ((tenant =")
            && condition.contains(" AND (kind =")
            && condition.matches(" AND ").count() == 1
    });
    seq || kind_range
}

/// Filters on indexed attributes never read the whole tenant: PostgreSQL can answer them from
/// an index (sequential scans are disabled while explaining, so the plan shows whether an index
/// path exists).
#[test]
fn hot_filters_use_indexes() {
    if postgres_missing() {
        return;
    }
    let schema = Schema::new();
    let store = schema.connect(testkit::schemas());
    schema.runtime.block_on(async {
        let (t, user_ids, _) = testkit::generate_directory(&store, 200, 5, 3).await;
        // A tenant of a realistic size (on 200 rows, reading them all is the cheapest plan).
        let filler: Vec<_> = (0..5_000)
            .map(|i| {
                let mut doc = testkit::user(&format!("filler-{i}"));
                doc["emails"] = json!([{"value": format!("filler-{i}@example.net")}]);
                doc
            })
            .collect();
        store
            .import(&t.id, ResourceKind::User, filler, &ctx("filler"))
            .await
            .unwrap();
        let groups: Vec<_> = (0..2_000)
            .map(|i| testkit::group(&format!("filler-{i}"), &[]))
            .collect();
        store
            .import(&t.id, ResourceKind::Group, groups, &ctx("filler"))
            .await
            .unwrap();
        // Statistics, as autovacuum keeps them: without them every table looks like one row
        // and any plan is as cheap as any other.
        admin(&format!(
            "ANALYZE {0}.resources, {0}.resource_values, {0}.members",
            schema.name
        ))
        .await;
        // (`active eq true` is left out: it selects most of a directory, and reading the
        // tenant is then the right plan.)
        let user_filters = [
            "userName eq \"bjensen\"",
            "userName sw \"bj\"",
            "userName eq \"x\" or userName eq \"y\"",
            "externalId eq \"EXT-1\"",
            &format!("id eq \"{}\"", user_ids[0]),
            "displayName eq \"Barbara Jensen\"",
            // (A selective bound: one that selects every resource is rightly a tenant read.)
            "meta.lastModified gt \"2100-01-01T00:00:00Z\"",
            "emails.value eq \"a@example.com\"",
            "emails[value eq \"a@example.com\"]",
            "emails sw \"élodie\"",
            "userName eq \"bjensen\" and title co \"x\"",
            "emails[type eq \"work\" and value eq \"a@example.com\"]",
            // jsonb containment through the GIN index.
            &format!("{}:nickname eq \"Nick\"", testkit::TEST_EXTENSION),
            &format!("{}:seat eq 7", testkit::TEST_EXTENSION),
        ];
        for text in user_filters {
            let q = Query {
                filter: Some(parse_filter(text).unwrap()),
                ..Query::default()
            };
            let plan = store.explain(&t.id, ResourceKind::User, &q).await.unwrap();
            assert!(
                !scans_tenant(&plan),
                "{text}: the plan reads the tenant:\n{}",
                plan.join("\n")
            );
        }
        for text in [
            &format!("members.value eq \"{}\"", user_ids[0]),
            &format!("members[value eq \"{}\"]", user_ids[1]),
        ] {
            let q = Query {
                filter: Some(parse_filter(text).unwrap()),
                ..Query::default()
            };
            let plan = store.explain(&t.id, ResourceKind::Group, &q).await.unwrap();
            assert!(!scans_tenant(&plan), "{text}:\n{}", plan.join("\n"));
        }
        // The check can fail: a `co` on an attribute only in the document reads the tenant.
        let q = Query {
            filter: Some(parse_filter("title co \"x\"").unwrap()),
            ..Query::default()
        };
        let plan = store.explain(&t.id, ResourceKind::User, &q).await.unwrap();
        assert!(scans_tenant(&plan), "{plan:?}");
    });
}
