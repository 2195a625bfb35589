//! The shared test kit, and SQLite-specific checks (query plans, migrations, durability,
//! locking), run against [`SqliteStore`].

// Fixture helpers outside #[test] functions are test code too.
#![allow(clippy::unwrap_used)]

use rusqlite::Connection;
use scim_filter::parse_filter;
use scim_store_core::{
    Members, PatchCall, Query, ResourceKind, ResourceSchemas, Store, TokenScope, WriteContext,
};
use scim_store_sqlite::{SCHEMA_VERSION, SqliteOptions, SqliteStore};
use scim_store_testkit::{self as testkit, Fixture, WorkplaceFixture};
use serde_json::json;
use std::io::BufRead;
use std::sync::Arc;

fn sqlite(schemas: ResourceSchemas) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        dir.path().join("scim.db"),
        schemas,
        SqliteOptions::default(),
    )
    .unwrap();
    Fixture {
        store: Arc::new(store),
        guard: Box::new(dir),
    }
}

scim_store_testkit::store_tests!(sqlite);

fn sqlite_workplace(schemas: ResourceSchemas) -> WorkplaceFixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        dir.path().join("workplace.db"),
        schemas,
        SqliteOptions::default(),
    )
    .unwrap();
    WorkplaceFixture {
        store: Arc::new(store),
        guard: Box::new(dir),
    }
}

scim_store_testkit::workplace_store_tests!(sqlite_workplace);

fn sqlite_admin(schemas: ResourceSchemas) -> testkit::AdminFixture {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        dir.path().join("admin.db"),
        schemas,
        SqliteOptions::default(),
    )
    .unwrap();
    testkit::AdminFixture {
        store: Arc::new(store),
        guard: Box::new(dir),
    }
}

scim_store_testkit::admin_store_tests!(sqlite_admin);

/// Two stores on one file, as two scimd processes would be.
#[test]
fn workplace_policies_follow_a_schema_change_made_in_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("two.db");
    let open = || SqliteStore::open(&path, testkit::schemas(), SqliteOptions::default()).unwrap();
    let (a, b) = (Arc::new(open()), Arc::new(open()));
    runtime().block_on(testkit::workplace_policies_follow_a_schema_change_made_elsewhere(a, b));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap()
}

/// Whether a plan visits every resource of the tenant: a scan of `resources`, or a search
/// constrained by nothing more than tenant and kind.
fn scans_tenant(plan: &[String]) -> bool {
    plan.iter().any(|step| {
        step.starts_with("SCAN r")
            || (step.starts_with("SEARCH r ") && step.ends_with("(tenant=? AND kind=?)"))
    })
}

/// Filters on indexed attributes never scan the tenant: SQLite searches an index.
#[test]
fn hot_filters_use_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        dir.path().join("plan.db"),
        testkit::schemas(),
        SqliteOptions::default(),
    )
    .unwrap();
    runtime().block_on(async {
        let (t, user_ids, _) = testkit::generate_directory(&store, 200, 5, 3).await;
        let user_filters = [
            "userName eq \"bjensen\"",
            "userName sw \"bj\"",
            "userName eq \"x\" or userName eq \"y\"",
            "externalId eq \"EXT-1\"",
            &format!("id eq \"{}\"", user_ids[0]),
            "displayName eq \"Barbara Jensen\"",
            "active eq true",
            "meta.lastModified gt \"2020-01-01T00:00:00Z\"",
            "emails.value eq \"a@example.com\"",
            "emails[value eq \"a@example.com\"]",
            "emails sw \"élodie\"",
            "emails co \"example\"",
            "userName eq \"bjensen\" and title co \"x\"",
            "emails[type eq \"work\" and value eq \"a@example.com\"]",
        ];
        for text in user_filters {
            let q = Query {
                filter: Some(parse_filter(text).unwrap()),
                ..Query::default()
            };
            let plan = store.explain(&t.id, ResourceKind::User, &q).await.unwrap();
            assert!(
                !scans_tenant(&plan),
                "{text}: the plan scans the tenant:\n{}",
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
        // `co` / `ew` on emails start from the trigram index, not from every value.
        for text in ["emails co \"example\"", "emails.value ew \"ple.com\""] {
            let q = Query {
                filter: Some(parse_filter(text).unwrap()),
                ..Query::default()
            };
            let plan = store.explain(&t.id, ResourceKind::User, &q).await.unwrap();
            let step = |prefix: &str| plan.iter().position(|s| s.starts_with(prefix));
            assert!(
                matches!((step("SCAN f VIRTUAL TABLE"), step("SEARCH v")), (Some(f), Some(v)) if f < v),
                "{text}:\n{}",
                plan.join("\n")
            );
        }
        // The check can fail: a filter on a JSON-only attribute does scan.
        let q = Query {
            filter: Some(parse_filter("title eq \"x\"").unwrap()),
            ..Query::default()
        };
        let plan = store.explain(&t.id, ResourceKind::User, &q).await.unwrap();
        assert!(scans_tenant(&plan), "{plan:?}");
    });
}

/// The workplace lookups a SCIM write or a booking makes search indexes: a write about someone
/// without holdings costs one indexed lookup, never a scan of the tenant's bookings.
#[test]
fn workplace_lookups_use_indexes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        dir.path().join("wplan.db"),
        testkit::schemas(),
        SqliteOptions::default(),
    )
    .unwrap();
    let plans = runtime().block_on(store.explain_workplace()).unwrap();
    assert_eq!(plans.len(), 8);
    for (name, plan) in &plans {
        assert!(
            plan.iter()
                .all(|step| !step.starts_with("SCAN") || step == "SCAN CONSTANT ROW"),
            "{name} scans:\n{}",
            plan.join("\n")
        );
        assert!(
            plan.iter()
                .any(|step| step.contains("USING") && step.contains("INDEX")),
            "{name} uses no index:\n{}",
            plan.join("\n")
        );
    }
    let holds = &plans.iter().find(|(n, _)| n == "holds_anything").unwrap().1;
    assert!(
        holds.iter().any(|s| s.contains("bookings_by_person")),
        "{holds:?}"
    );
    assert!(
        holds.iter().any(|s| s.contains("assignments_by_person")),
        "{holds:?}"
    );
    for lookup in ["has_history", "person_entries"] {
        let plan = &plans.iter().find(|(n, _)| n == lookup).unwrap().1;
        assert!(
            plan.iter().any(|s| s.contains("events_by_person")),
            "{lookup}: a deletion finds feed entries about the person by index: {plan:?}"
        );
    }
    let capacity = &plans
        .iter()
        .find(|(n, _)| n == "resource_bookings")
        .unwrap()
        .1;
    assert!(
        capacity.iter().any(|s| s.contains("end_s>?")),
        "only bookings ending after the interval starts are visited: {capacity:?}"
    );
}

/// A database at an older schema version is migrated on open, its data kept and indexed.
#[test]
fn older_databases_are_migrated() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    {
        // What version 1 wrote: no side tables yet. 1396918605 is 0x5343494d, "SCIM".
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA journal_mode=WAL; {}",
            include_str!("v1_schema.sql")
        ))
        .unwrap();
        conn.execute_batch("PRAGMA application_id = 1396918605; PRAGMA user_version = 1;")
            .unwrap();
        conn.execute(
            "INSERT INTO tenants (name, created_ns) VALUES ('old', 0)",
            [],
        )
        .unwrap();
        let doc = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "u-1", "userName": "Old",
            "emails": [{"value": "Old@Example.com"}], "meta": {"resourceType": "User", "created": "1970-01-01T00:00:00Z",
            "lastModified": "1970-01-01T00:00:00Z", "version": "W/\"1\""}});
        conn.execute(
            "INSERT INTO resources (tenant, kind, id, id_fold, version, created_ns, modified_ns, user_name_fold, doc) \
             VALUES (1, 1, 'u-1', 'u-1', 1, 0, 0, 'old', ?1)",
            [doc.to_string()],
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path, testkit::schemas(), SqliteOptions::default()).unwrap();
    runtime().block_on(async {
        let t = store.tenant_by_name("old").await.unwrap().unwrap();
        let q = Query {
            filter: Some(parse_filter("emails.value eq \"old@example.com\"").unwrap()),
            ..Query::default()
        };
        let page = store.query(&t.id, ResourceKind::User, &q).await.unwrap();
        assert_eq!(
            page.resources
                .iter()
                .map(|r| r.id.as_str())
                .collect::<Vec<_>>(),
            vec!["u-1"]
        );
        let u = store
            .get(&t.id, ResourceKind::User, "u-1", Members::Include)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(u.document["userName"], "Old");
        // The per-type counter (schema version 3) counted what was there, and keeps counting.
        let count_only = Query {
            count: Some(0),
            ..Query::default()
        };
        let total = async |store: &SqliteStore| {
            store
                .query(&t.id, ResourceKind::User, &count_only)
                .await
                .unwrap()
                .total_results
        };
        assert_eq!(total(&store).await, 1);
        let ctx = WriteContext::actor("test");
        let ids = store
            .import(
                &t.id,
                ResourceKind::User,
                vec![json!({"userName": "a"}), json!({"userName": "b"})],
                &ctx,
            )
            .await
            .unwrap()
            .ids;
        assert_eq!(total(&store).await, 3);
        store
            .delete(&t.id, ResourceKind::User, &ids[0], None, &ctx)
            .await
            .unwrap();
        assert_eq!(total(&store).await, 2);
        let failed = store
            .import(
                &t.id,
                ResourceKind::User,
                vec![json!({"userName": "c"}), json!({"userName": "B"})],
                &ctx,
            )
            .await;
        assert!(
            failed.is_err(),
            "a userName conflict fails the whole import"
        );
        assert_eq!(
            total(&store).await,
            2,
            "a rolled-back import counts nothing"
        );
        // The trigram index (schema version 4) was filled from the existing values.
        let q = Query {
            filter: Some(parse_filter("emails co \"D@EXAMPLE\"").unwrap()),
            ..Query::default()
        };
        let page = store.query(&t.id, ResourceKind::User, &q).await.unwrap();
        assert_eq!(page.total_results, 1);
    });
    drop(store);
    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

/// The cursor that scimd 3dbe296 (schema version 7, unsigned cursors) issued for
/// `GET /t/acme/scim/v2/Users?cursor&count=1&sortBy=userName` on `v7_schema.sql`: the hex of
/// `["7899a1d9c8d9acda","adoe",3]`.
const OLD_CURSOR: &str = "5b2237383939613164396338643961636461222c2261646f65222c335d";

/// The userNames of `tenant`'s Users, sorted, read page by page with cursors, `count` a page.
async fn user_names_by_cursor(store: &SqliteStore, tenant: &str, count: u64) -> Vec<String> {
    let t = store.tenant_by_name(tenant).await.unwrap().unwrap();
    let mut names = Vec::new();
    let mut cursor = None;
    loop {
        let q = Query {
            sort_by: Some(scim_schema::AttrPath::simple("userName")),
            paging: scim_store_core::Paging::Cursor(cursor.take()),
            count: Some(count),
            ..Query::default()
        };
        let page = store.query(&t.id, ResourceKind::User, &q).await.unwrap();
        names.extend(
            page.resources
                .iter()
                .map(|r| r.document["userName"].as_str().unwrap().to_owned()),
        );
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return names,
        }
    }
}

/// A database of the previous schema (version 7, `v7_schema.sql`) is migrated: the migration
/// stores a cursor key, the data reads as before, a cursor issued before the upgrade (unsigned)
/// is refused, and the key survives a restart (cursors issued before it stay good).
#[test]
fn the_previous_schema_gains_a_cursor_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v7.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "PRAGMA journal_mode=WAL; {}",
            include_str!("v7_schema.sql")
        ))
        .unwrap();
        conn.execute_batch("PRAGMA application_id = 1396918605; PRAGMA user_version = 7;")
            .unwrap();
    }
    let key_rows = || -> Vec<(String, Vec<u8>)> {
        let conn = Connection::open(&path).unwrap();
        let mut stmt = conn.prepare("SELECT name, key FROM store_keys").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    let store = SqliteStore::open(&path, testkit::schemas(), SqliteOptions::default()).unwrap();
    let keys = key_rows();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].0, "cursor");
    assert_eq!(keys[0].1.len(), 32);
    assert_ne!(keys[0].1, vec![0u8; 32]);
    let issued = runtime().block_on(async {
        let acme = store.tenant_by_name("acme").await.unwrap().unwrap();
        // The old data reads as before: every User once, the Group with its member, the
        // e-mail index.
        assert_eq!(
            user_names_by_cursor(&store, "acme", 1).await,
            ["adoe", "bjensen", "jsmith"]
        );
        assert_eq!(user_names_by_cursor(&store, "other", 2).await, ["zed"]);
        let groups = store
            .query(&acme.id, ResourceKind::Group, &Query::default())
            .await
            .unwrap();
        assert_eq!(groups.resources.len(), 1);
        assert_eq!(groups.resources[0].document["displayName"], "Staff");
        assert_eq!(
            groups.resources[0].document["members"][0]["display"],
            "bjensen display"
        );
        let q = Query {
            filter: Some(parse_filter("emails co \"smith@\"").unwrap()),
            ..Query::default()
        };
        let page = store.query(&acme.id, ResourceKind::User, &q).await.unwrap();
        assert_eq!(page.total_results, 1);
        // The cursor the previous version issued for this very query is refused.
        let by_name = |cursor: &str| Query {
            sort_by: Some(scim_schema::AttrPath::simple("userName")),
            paging: scim_store_core::Paging::Cursor(Some(cursor.to_owned())),
            count: Some(1),
            ..Query::default()
        };
        let err = store
            .query(&acme.id, ResourceKind::User, &by_name(OLD_CURSOR))
            .await
            .unwrap_err();
        assert_eq!(
            (err.status(), err.scim_type()),
            (400, Some("invalidCursor")),
            "{err}"
        );
        let first = Query {
            paging: scim_store_core::Paging::Cursor(None),
            ..by_name("")
        };
        let first = store
            .query(&acme.id, ResourceKind::User, &first)
            .await
            .unwrap();
        by_name(&first.next_cursor.unwrap())
    });
    drop(store);
    // The key is kept: a cursor issued before a restart is good after it.
    let store = SqliteStore::open(&path, testkit::schemas(), SqliteOptions::default()).unwrap();
    assert_eq!(key_rows(), keys);
    runtime().block_on(async {
        let acme = store.tenant_by_name("acme").await.unwrap().unwrap();
        let page = store
            .query(&acme.id, ResourceKind::User, &issued)
            .await
            .unwrap();
        assert_eq!(page.resources[0].document["userName"], "bjensen");
    });
    drop(store);
    // Deleting the key (docs/operations.md) makes a new one at the next start, and every
    // outstanding cursor invalid.
    Connection::open(&path)
        .unwrap()
        .execute("DELETE FROM store_keys WHERE name = 'cursor'", [])
        .unwrap();
    let store = SqliteStore::open(&path, testkit::schemas(), SqliteOptions::default()).unwrap();
    let rotated = key_rows();
    assert_eq!(rotated.len(), 1);
    assert_ne!(rotated[0].1, keys[0].1);
    runtime().block_on(async {
        let acme = store.tenant_by_name("acme").await.unwrap().unwrap();
        let err = store
            .query(&acme.id, ResourceKind::User, &issued)
            .await
            .unwrap_err();
        assert_eq!(err.scim_type(), Some("invalidCursor"));
    });
}

/// The trigram index behind `emails co` / `ew` follows every write: create, replace, patch,
/// delete, and a rolled-back write leaves it as it was.
#[test]
fn email_substring_index_follows_writes() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        dir.path().join("trigrams.db"),
        testkit::schemas(),
        SqliteOptions::default(),
    )
    .unwrap();
    runtime().block_on(async {
        let t = store.create_tenant("trigrams").await.unwrap();
        let ctx = WriteContext::actor("test");
        let matching = async |text: &str| -> Vec<String> {
            let q = Query {
                filter: Some(parse_filter(text).unwrap()),
                ..Query::default()
            };
            let page = store.query(&t.id, ResourceKind::User, &q).await.unwrap();
            page.resources.into_iter().map(|r| r.id).collect()
        };
        let user = |name: &str, email: &str| {
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": name, "emails": [{"value": email}, {"value": "shared@Example.org"}]})
        };
        let a = store
            .create(&t.id, ResourceKind::User, user("a", "Alpha.Élodie@x.org"), &ctx)
            .await
            .unwrap()
            .id;
        let b = store
            .create(&t.id, ResourceKind::User, user("b", "beta@y.org"), &ctx)
            .await
            .unwrap()
            .id;
        assert_eq!(matching("emails co \"PHA.éLO\"").await, vec![a.clone()]);
        assert_eq!(matching("emails ew \"@X.ORG\"").await, vec![a.clone()]);
        assert_eq!(matching("emails co \"red@exa\"").await.len(), 2);
        // A needle spanning two values of one resource matches neither value.
        assert!(matching("emails co \"org\\nsha\"").await.is_empty());
        store
            .replace(&t.id, ResourceKind::User, &a, user("a", "gamma@x.org"), None, &ctx)
            .await
            .unwrap();
        assert!(matching("emails co \"pha.élo\"").await.is_empty());
        assert_eq!(matching("emails co \"gamma@\"").await, vec![a.clone()]);
        let conflict = store
            .replace(&t.id, ResourceKind::User, &b, user("A", "delta@x.org"), None, &ctx)
            .await;
        assert!(conflict.is_err(), "userName a is taken");
        assert!(matching("emails co \"delta\"").await.is_empty());
        assert_eq!(matching("emails co \"beta@y\"").await, vec![b.clone()]);
        let options = scim_patch::PatchOptions::default();
        let patch = scim_patch::PatchRequest::from_json(
            &json!({"schemas": [scim_patch::PATCH_OP_URN],
                    "Operations": [{"op": "add", "path": "emails", "value": [{"value": "EPSILON@z.org"}]}]}),
            &options,
        )
        .unwrap();
        store
            .patch(
                &t.id,
                PatchCall {
                    kind: ResourceKind::User,
                    id: &b,
                    request: &patch,
                    settings: &scim_store_core::PatchSettings::default(),
                    expected_version: None,
                    members: Members::Exclude,
                },
                &ctx,
            )
            .await
            .unwrap();
        assert_eq!(matching("emails co \"silon@z\"").await, vec![b.clone()]);
        assert_eq!(matching("emails co \"beta@y\"").await, vec![b.clone()]);
        store
            .delete(&t.id, ResourceKind::User, &b, None, &ctx)
            .await
            .unwrap();
        assert!(matching("emails co \"beta@y\"").await.is_empty());
        assert_eq!(matching("emails co \"shared@\"").await, vec![a]);
    });
}

/// A database from a newer scimd, or another application's SQLite file, is refused.
#[test]
fn newer_or_foreign_databases_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let newer = dir.path().join("newer.db");
    Connection::open(&newer)
        .unwrap()
        .execute_batch("PRAGMA user_version = 99;")
        .unwrap();
    let err = SqliteStore::open(&newer, testkit::schemas(), SqliteOptions::default()).unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
    let foreign = dir.path().join("foreign.db");
    Connection::open(&foreign)
        .unwrap()
        .execute_batch("PRAGMA application_id = 42;")
        .unwrap();
    let err =
        SqliteStore::open(&foreign, testkit::schemas(), SqliteOptions::default()).unwrap_err();
    assert!(err.to_string().contains("another application"), "{err}");
}

/// Token secrets are stored only as digests: the secret is nowhere in the database files.
#[test]
fn token_secrets_are_not_stored() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens.db");
    let store = SqliteStore::open(&path, testkit::schemas(), SqliteOptions::default()).unwrap();
    let secret = runtime().block_on(async {
        let t = store.create_tenant("tok").await.unwrap();
        store
            .issue_token(&t.id, "label", TokenScope::Scim)
            .await
            .unwrap()
            .secret
    });
    drop(store);
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        bytes.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_bytes()));
    assert!(
        !bytes.windows(32).any(|w| w == &secret.as_bytes()[6..38]),
        "not even part of it"
    );
}

/// Many concurrent writers and readers, and a second store (a second process would behave the
/// same) writing to the same file: no operation fails with `database is locked`.
#[test]
fn no_request_fails_with_database_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("busy.db");
    let options = SqliteOptions::default();
    let a: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&path, testkit::schemas(), options.clone()).unwrap());
    let b: Arc<dyn Store> =
        Arc::new(SqliteStore::open(&path, testkit::schemas(), options).unwrap());
    runtime().block_on(async {
        let t = a.create_tenant("busy").await.unwrap().id;
        let mut tasks = Vec::new();
        for i in 0..200 {
            let store = if i % 2 == 0 { Arc::clone(&a) } else { Arc::clone(&b) };
            tasks.push(tokio::spawn(async move {
                let ctx = WriteContext::actor("busy");
                let doc = json!({"userName": format!("busy-{i}"), "emails": [{"value": format!("b{i}@x.org")}]});
                let u = store.create(&t, ResourceKind::User, doc, &ctx).await?;
                let q = Query { filter: Some(parse_filter("emails co \"x.org\"").unwrap()), count: Some(10), ..Query::default() };
                store.query(&t, ResourceKind::User, &q).await?;
                store.get(&t, ResourceKind::User, &u.id, Members::Include).await?;
                let doc = json!({"userName": format!("busy-{i}"), "title": "t"});
                store.replace(&t, ResourceKind::User, &u.id, doc, Some(1), &ctx).await?;
                Ok::<_, scim_store_core::StoreError>(())
            }));
        }
        for task in tasks {
            task.await.unwrap().unwrap();
        }
        let events = a.events(&t, 0, 1000).await.unwrap();
        assert_eq!(events.len(), 400);
        assert!(events.iter().enumerate().all(|(i, e)| e.seq == i as u64 + 1), "gapless across both writers");
    });
}

const CHILD_ENV: &str = "SCIM_STORE_KILL9_DB";

/// Not a test by itself: the child process of [`acknowledged_writes_survive_kill_9`].
#[test]
#[ignore = "run by acknowledged_writes_survive_kill_9 in a child process"]
fn kill9_child() {
    let Ok(path) = std::env::var(CHILD_ENV) else {
        return;
    };
    let store = SqliteStore::open(&path, testkit::schemas(), SqliteOptions::default()).unwrap();
    runtime().block_on(async {
        let t = store.tenant_by_name("kill9").await.unwrap().unwrap().id;
        for i in 0.. {
            let u = store
                .create(
                    &t,
                    ResourceKind::User,
                    json!({"userName": format!("k{i}")}),
                    &WriteContext::actor("child"),
                )
                .await
                .unwrap();
            // Printed only once the write is acknowledged.
            println!("ACK {}", u.id);
        }
    });
}

/// Every write acknowledged before the process is killed with SIGKILL is there after reopening
/// (synchronous=FULL; NORMAL also survives a process kill, as documented).
#[test]
fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kill9.db");
    {
        let store = SqliteStore::open(&path, testkit::schemas(), SqliteOptions::default()).unwrap();
        runtime().block_on(store.create_tenant("kill9")).unwrap();
    }
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "kill9_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, &path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut acked = Vec::new();
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        if let Some(id) = line.strip_prefix("ACK ") {
            acked.push(id.to_owned());
            if acked.len() == 150 {
                child.kill().unwrap(); // SIGKILL
                break;
            }
        }
    }
    child.wait().unwrap();
    assert_eq!(acked.len(), 150);
    let store = SqliteStore::open(&path, testkit::schemas(), SqliteOptions::default()).unwrap();
    runtime().block_on(async {
        let t = store.tenant_by_name("kill9").await.unwrap().unwrap().id;
        for id in &acked {
            assert!(
                store
                    .get(&t, ResourceKind::User, id, Members::Include)
                    .await
                    .unwrap()
                    .is_some(),
                "acknowledged {id} was lost"
            );
        }
        let events = store.events(&t, 0, 10_000).await.unwrap();
        let page = store
            .query(&t, ResourceKind::User, &Query::default())
            .await
            .unwrap();
        assert_eq!(
            events.len() as u64,
            page.total_results,
            "one event per committed user, none lost"
        );
    });
}

/// The permission bits of `path`.
#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// A new database and its `-wal` and `-shm` are readable by their owner only, whatever the
/// umask (the test process's is usually 022, which gave 0644); an existing file's mode is
/// left alone and reported.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("private.db");
    let store =
        SqliteStore::open(&path, ResourceSchemas::core(), SqliteOptions::default()).unwrap();
    let tenant = store.create_tenant("acme").await.unwrap();
    store
        .issue_token(&tenant.id, "t", TokenScope::Scim)
        .await
        .unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let file = dir.path().join(format!("private.db{suffix}"));
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    assert!(store.exposed_files().is_empty());
    store.close();
    drop(store);

    // An existing, world-readable database keeps its mode, and is reported.
    let shared = dir.path().join("shared.db");
    std::fs::File::create(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store =
        SqliteStore::open(&shared, ResourceSchemas::core(), SqliteOptions::default()).unwrap();
    assert_eq!(mode(&shared), 0o644);
    let exposed = store.exposed_files();
    assert_eq!(exposed.len(), 1, "{exposed:?}");
    assert_eq!(
        (exposed[0].path.as_path(), exposed[0].mode),
        (shared.as_path(), 0o644)
    );
    store.close();

    // A missing directory is an error naming the path.
    let missing = dir.path().join("no-such-dir").join("x.db");
    let error = SqliteStore::open(&missing, ResourceSchemas::core(), SqliteOptions::default())
        .unwrap_err()
        .to_string();
    assert!(error.contains("no-such-dir"), "{error}");
}

/// Clear-text passwords an older scimd stored (PATCH dialect spellings it did not hash) are
/// hashed by the migration to version 7, so none stays at rest and the User can be written
/// again (the store now refuses a clear password on every write, a deactivation included).
#[test]
fn clear_passwords_of_older_versions_are_hashed_on_migration() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("legacy.db");
    let (tenant, id) = {
        let store = SqliteStore::open(&path, testkit::schemas(), SqliteOptions::default()).unwrap();
        runtime().block_on(async {
            let t = store.create_tenant("legacy").await.unwrap();
            let u = store
                .create(
                    &t.id,
                    ResourceKind::User,
                    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                           "userName": "leaver", "active": true}),
                    &WriteContext::actor("test"),
                )
                .await
                .unwrap();
            (t.name, u.id)
        })
    };
    {
        // What the older server left: the password in clear text, schema version 6.
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE resources SET doc = json_set(doc, '$.password', 'v10-clear') WHERE id = ?1",
            [&id],
        )
        .unwrap();
        conn.execute_batch("PRAGMA user_version = 6;").unwrap();
    }
    let store = SqliteStore::open(&path, testkit::schemas(), SqliteOptions::default()).unwrap();
    runtime().block_on(async {
        let t = store.tenant_by_name(&tenant).await.unwrap().unwrap();
        let deactivate = scim_patch::PatchRequest::from_json(
            &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "active", "value": false}]}),
            &scim_patch::PatchOptions::default(),
        )
        .unwrap();
        let patched = store
            .patch(
                &t.id,
                PatchCall {
                    kind: ResourceKind::User,
                    id: &id,
                    request: &deactivate,
                    settings: &scim_store_core::PatchSettings::default(),
                    expected_version: None,
                    members: Members::Include,
                },
                &WriteContext::actor("test"),
            )
            .await
            .unwrap();
        assert_eq!(patched.resource.document["active"], json!(false));
        let password = patched.resource.document["password"].as_str().unwrap();
        assert!(password.starts_with("$argon2id$v=19$"), "{password}");
    });
    store.close();
    drop(store);
    let mut stored = Vec::new();
    for name in ["legacy.db", "legacy.db-wal"] {
        stored.extend(std::fs::read(dir.path().join(name)).unwrap_or_default());
    }
    assert!(
        !String::from_utf8_lossy(&stored).contains("v10-clear"),
        "the clear text is gone from the database file"
    );
}
