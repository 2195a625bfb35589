//! Criterion benchmarks of the PostgreSQL store, in process (no HTTP), the same as
//! `benches/store.rs` runs against SQLite: a directory of 100,000 users and 1,000 groups, one
//! of which has all 100,000 users as members (`SCIMD_BENCH_USERS` changes the number of users).
//!
//! The server is `SCIMD_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`);
//! the directory is built in a schema of its own through the bulk import path, its build time
//! printed (that is the bulk-load figure: one 100,000-user import into an empty tenant), and the
//! schema dropped at the end. Run with `cargo bench -p scimd-store-postgres --bench
//! store_pg`. Without a reachable server the benchmark prints why and measures nothing.

// criterion_group! generates an undocumented public function; a benchmark that cannot set up
// its fixture has nothing to measure, so it stops there.
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use scim_filter::parse_filter;
use scim_schema::AttrPath;
use scim_store_core::{
    Members, Paging, PatchCall, PatchSettings, Query, ResourceKind, ResourceSchemas, Store,
    TenantId, WriteContext,
};
use scim_store_postgres::{PostgresOptions, PostgresStore};
use serde_json::{Value, json};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

const GROUPS: usize = 1_000;

fn users() -> usize {
    std::env::var("SCIMD_BENCH_USERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000)
}

fn url() -> String {
    std::env::var("SCIMD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn user(i: usize) -> Value {
    let title = ["Engineer", "Manager", "Analyst"][i % 3];
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": format!("user{i:06}@example.com"),
        "name": {"givenName": format!("Given{i}"), "familyName": format!("Family{}", i % 977)},
        "displayName": format!("User {i}"),
        "active": true,
        "externalId": format!("ext-{i}"),
        "emails": [
            {"value": format!("user{i:06}@example.com"), "type": "work", "primary": true},
            {"value": format!("u{i}@home.example.org"), "type": "home"}
        ],
        "title": title,
    })
}

fn ctx() -> WriteContext {
    WriteContext::actor("bench")
}

async fn admin(sql: &str) -> Result<(), tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls).await?;
    let task = tokio::spawn(connection);
    client.batch_execute(sql).await?;
    drop(client);
    let _ = task.await;
    Ok(())
}

struct Directory {
    schema: String,
    store: Arc<PostgresStore>,
    tenant: TenantId,
    user_ids: Vec<String>,
    big_group: String,
}

fn build(rt: &tokio::runtime::Runtime) -> Option<Directory> {
    let users = users();
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).unwrap();
    let schema = format!(
        "bench_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    if let Err(e) = rt.block_on(admin(&format!("CREATE SCHEMA {schema}"))) {
        eprintln!(
            "PostgreSQL at {} is unreachable ({e}): nothing measured",
            url()
        );
        return None;
    }
    let options = PostgresOptions {
        schema: Some(schema.clone()),
        ..PostgresOptions::default()
    };
    let store = Arc::new(
        rt.block_on(PostgresStore::connect(
            &url(),
            ResourceSchemas::core(),
            options,
        ))
        .unwrap(),
    );
    rt.block_on(async {
        let tenant = store.create_tenant("bench").await.unwrap().id;
        let docs: Vec<Value> = (0..users).map(user).collect();
        let started = Instant::now();
        let user_ids = store
            .import(&tenant, ResourceKind::User, docs, &ctx())
            .await
            .unwrap()
            .ids;
        eprintln!(
            "fixture: bulk import of {users} users took {:?}",
            started.elapsed()
        );
        let started = Instant::now();
        let all: Vec<Value> = user_ids.iter().map(|id| json!({"value": id})).collect();
        let mut groups = vec![json!({"displayName": "Everyone", "members": all})];
        for g in 1..GROUPS {
            let members: Vec<Value> = (0..(g % 50))
                .map(|k| json!({"value": user_ids[(g * 97 + k * 31) % users]}))
                .collect();
            groups.push(json!({"displayName": format!("Group {g}"), "members": members}));
        }
        let group_ids = store
            .import(&tenant, ResourceKind::Group, groups, &ctx())
            .await
            .unwrap()
            .ids;
        eprintln!(
            "fixture: {GROUPS} groups (one with {users} members) took {:?}",
            started.elapsed()
        );
        // What autovacuum does after a bulk load: statistics, and the visibility map that
        // index-only scans (deep pages, counts) depend on.
        admin(&format!(
            "VACUUM ANALYZE {schema}.resources, {schema}.resource_values, {schema}.members"
        ))
        .await
        .unwrap();
        Some(Directory {
            schema,
            store,
            tenant,
            user_ids,
            big_group: group_ids[0].clone(),
        })
    })
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let Some(d) = build(&rt) else { return };
    let users = d.user_ids.len();
    let store = &d.store;
    let t = d.tenant;

    let mut i = 0usize;
    c.bench_function("pg: get by id (user, with derived groups)", |b| {
        b.iter(|| {
            i = (i + 7919) % users;
            let r = rt
                .block_on(store.get(&t, ResourceKind::User, &d.user_ids[i], Members::Include))
                .unwrap();
            black_box(r.unwrap());
        })
    });

    let by_user_name: Vec<Query> = (0..1000)
        .map(|k| {
            let filter = parse_filter(&format!(
                "userName eq \"USER{:06}@example.com\"",
                (k * 97) % users
            ))
            .unwrap();
            Query {
                filter: Some(filter),
                count: Some(100),
                ..Query::default()
            }
        })
        .collect();
    c.bench_function("pg: query userName eq (1 result)", |b| {
        b.iter(|| {
            i = (i + 1) % by_user_name.len();
            let page = rt
                .block_on(store.query(&t, ResourceKind::User, &by_user_name[i]))
                .unwrap();
            assert_eq!(page.total_results, 1);
        })
    });

    c.bench_function("pg: query emails co (1 result of 200,000 emails)", |b| {
        b.iter(|| {
            i = (i + 7919) % users;
            let filter = parse_filter(&format!("emails co \"u{i}@home\"")).unwrap();
            let q = Query {
                filter: Some(filter),
                count: Some(100),
                ..Query::default()
            };
            let page = rt
                .block_on(store.query(&t, ResourceKind::User, &q))
                .unwrap();
            assert!(page.total_results >= 1);
        })
    });

    let by_name = Query {
        sort_by: Some(AttrPath::simple("userName")),
        count: Some(100),
        members: Members::Exclude,
        ..Query::default()
    };
    let deep_index = users * 9 / 10;
    let mut group = c.benchmark_group("pg: page of 100 sorted by userName at 90%");
    group.sample_size(20);
    group.bench_function("startIndex", |b| {
        let q = Query {
            paging: Paging::Index {
                start_index: deep_index as u64 + 1,
            },
            ..by_name.clone()
        };
        b.iter(|| {
            black_box(
                rt.block_on(store.query(&t, ResourceKind::User, &q))
                    .unwrap(),
            )
        })
    });
    let deep = rt
        .block_on(store.query(
            &t,
            ResourceKind::User,
            &Query {
                paging: Paging::Cursor(None),
                count: Some(deep_index as u64),
                ..by_name.clone()
            },
        ))
        .unwrap()
        .next_cursor
        .unwrap();
    group.bench_function("cursor", |b| {
        let q = Query {
            paging: Paging::Cursor(Some(deep.clone())),
            ..by_name.clone()
        };
        b.iter(|| {
            black_box(
                rt.block_on(store.query(&t, ResourceKind::User, &q))
                    .unwrap(),
            )
        })
    });
    group.finish();

    let mut n = 0usize;
    c.bench_function("pg: create user", |b| {
        b.iter(|| {
            n += 1;
            let doc = user(users * 3 + n);
            black_box(
                rt.block_on(store.create(&t, ResourceKind::User, doc, &ctx()))
                    .unwrap(),
            );
        })
    });

    let settings = PatchSettings::default();
    let options = scim_patch::PatchOptions::default();
    let patch = |v: bool| {
        let message = json!({"schemas": [scim_patch::PATCH_OP_URN], "Operations": [{"op": "replace", "path": "active", "value": v}]});
        scim_patch::PatchRequest::from_json(&message, &options).unwrap()
    };
    let (deactivate, activate) = (patch(false), patch(true));
    let mut k = 0usize;
    c.bench_function("pg: patch user active false", |b| {
        b.iter(|| {
            k += 1;
            // Alternate so that every patch is a real change.
            let req = if (k / users) % 2 == 0 {
                &deactivate
            } else {
                &activate
            };
            let r = rt
                .block_on(store.patch(
                    &t,
                    PatchCall {
                        kind: ResourceKind::User,
                        id: &d.user_ids[k % users],
                        request: req,
                        settings: &settings,
                        expected_version: None,
                        members: Members::Exclude,
                    },
                    &ctx(),
                ))
                .unwrap();
            assert!(r.changed);
        })
    });

    let outsider = rt
        .block_on(store.create(&t, ResourceKind::User, user(users * 2), &ctx()))
        .unwrap()
        .id;
    let add = scim_patch::PatchRequest::from_json(
        &json!({"schemas": [scim_patch::PATCH_OP_URN], "Operations": [{"op": "add", "path": "members", "value": [{"value": outsider}]}]}),
        &options,
    )
    .unwrap();
    let remove = scim_patch::PatchRequest::from_json(
        &json!({"schemas": [scim_patch::PATCH_OP_URN], "Operations": [{"op": "remove", "path": format!("members[value eq \"{outsider}\"]")}]}),
        &options,
    )
    .unwrap();
    let mut m = 0usize;
    c.bench_function("pg: add or remove one member of the all-users group", |b| {
        b.iter(|| {
            m += 1;
            let req = if m % 2 == 1 { &add } else { &remove };
            let r = rt
                .block_on(store.patch(
                    &t,
                    PatchCall {
                        kind: ResourceKind::Group,
                        id: &d.big_group,
                        request: req,
                        settings: &settings,
                        expected_version: None,
                        members: Members::Exclude,
                    },
                    &ctx(),
                ))
                .unwrap();
            assert!(r.changed);
        })
    });

    c.bench_function("pg: 64 concurrent creates", |b| {
        b.iter(|| {
            rt.block_on(async {
                let mut tasks = Vec::new();
                for _ in 0..64 {
                    n += 1;
                    let (store, doc) = (Arc::clone(store), user(users * 3 + n));
                    tasks.push(tokio::spawn(async move {
                        store
                            .create(&t, ResourceKind::User, doc, &ctx())
                            .await
                            .unwrap()
                    }));
                }
                for task in tasks {
                    black_box(task.await.unwrap());
                }
            })
        })
    });

    let schema = d.schema.clone();
    drop(d);
    rt.block_on(admin(&format!("DROP SCHEMA {schema} CASCADE")))
        .unwrap();
}

criterion_group!(store_benches, benches);
criterion_main!(store_benches);
