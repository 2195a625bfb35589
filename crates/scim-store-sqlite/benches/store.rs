//! Criterion benchmarks of the SQLite store, in process (no HTTP), on a directory of 100,000
//! users and 1,000 groups, one of which has all 100,000 users as members.
//!
//! The directory is built once per run, through the bulk import path, in a temporary file; its
//! build time is printed. Run with `cargo bench -p scimd-store-sqlite --bench store`.
//!
//! The directory runs with `Durability::Normal` so that write benchmarks measure the store's
//! own work; with the default `Durability::Full` every acknowledged write also waits for one
//! `fsync` of the log, which the "create user (Full)" benchmark measures on its own (that cost is
//! the disk's, and group commit shares it between concurrent writes).

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
use scim_store_sqlite::{Durability, SqliteOptions, SqliteStore};
use serde_json::{Value, json};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

const USERS: usize = 100_000;
const GROUPS: usize = 1_000;

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

struct Directory {
    _dir: tempfile::TempDir,
    store: Arc<SqliteStore>,
    tenant: TenantId,
    user_ids: Vec<String>,
    big_group: String,
}

fn ctx() -> WriteContext {
    WriteContext::actor("bench")
}

fn build(rt: &tokio::runtime::Runtime) -> Directory {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        durability: Durability::Normal,
        ..SqliteOptions::default()
    };
    let store = Arc::new(
        SqliteStore::open(
            dir.path().join("bench.db"),
            ResourceSchemas::core(),
            options,
        )
        .unwrap(),
    );
    rt.block_on(async {
        let tenant = store.create_tenant("bench").await.unwrap().id;
        let docs: Vec<Value> = (0..USERS).map(user).collect();
        let started = Instant::now();
        let user_ids = store
            .import(&tenant, ResourceKind::User, docs, &ctx())
            .await
            .unwrap()
            .ids;
        eprintln!(
            "fixture: bulk import of {USERS} users took {:?}",
            started.elapsed()
        );
        let started = Instant::now();
        let all: Vec<Value> = user_ids.iter().map(|id| json!({"value": id})).collect();
        let mut groups = vec![json!({"displayName": "Everyone", "members": all})];
        for g in 1..GROUPS {
            let members: Vec<Value> = (0..(g % 50))
                .map(|k| json!({"value": user_ids[(g * 97 + k * 31) % USERS]}))
                .collect();
            groups.push(json!({"displayName": format!("Group {g}"), "members": members}));
        }
        let group_ids = store
            .import(&tenant, ResourceKind::Group, groups, &ctx())
            .await
            .unwrap()
            .ids;
        eprintln!(
            "fixture: {GROUPS} groups (one with {USERS} members) took {:?}",
            started.elapsed()
        );
        Directory {
            _dir: dir,
            store,
            tenant,
            user_ids,
            big_group: group_ids[0].clone(),
        }
    })
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let d = build(&rt);
    let store = &d.store;
    let t = d.tenant;

    let mut i = 0usize;
    c.bench_function("get by id (user, with derived groups)", |b| {
        b.iter(|| {
            i = (i + 7919) % USERS;
            let r = rt
                .block_on(store.get(&t, ResourceKind::User, &d.user_ids[i], Members::Include))
                .unwrap();
            black_box(r.unwrap());
        })
    });

    // Filters arrive parsed (the server parses them): parse them outside the measurement.
    let by_user_name: Vec<Query> = (0..1000)
        .map(|k| {
            let filter =
                parse_filter(&format!("userName eq \"USER{:06}@example.com\"", k * 97)).unwrap();
            Query {
                filter: Some(filter),
                count: Some(100),
                ..Query::default()
            }
        })
        .collect();
    c.bench_function("query userName eq (1 result)", |b| {
        b.iter(|| {
            i = (i + 1) % by_user_name.len();
            let q = &by_user_name[i];
            let page = rt.block_on(store.query(&t, ResourceKind::User, q)).unwrap();
            assert_eq!(page.total_results, 1);
        })
    });

    // As the server calls the store: from a task on a runtime worker thread (where a read runs
    // in `block_in_place`), not from the thread blocked in `block_on`.
    let ids = Arc::new(d.user_ids.clone());
    c.bench_function("get by id, from a runtime worker", |b| {
        b.iter_custom(|iters| {
            let (store, ids) = (Arc::clone(store), Arc::clone(&ids));
            rt.block_on(rt.spawn(async move {
                let started = Instant::now();
                for k in 0..iters {
                    let i = usize::try_from(k).unwrap() * 7919 % USERS;
                    let r = store
                        .get(&t, ResourceKind::User, &ids[i], Members::Include)
                        .await
                        .unwrap();
                    black_box(r.unwrap());
                }
                started.elapsed()
            }))
            .unwrap()
        })
    });
    let queries = Arc::new(by_user_name.clone());
    c.bench_function("query userName eq, from a runtime worker", |b| {
        b.iter_custom(|iters| {
            let (store, queries) = (Arc::clone(store), Arc::clone(&queries));
            rt.block_on(rt.spawn(async move {
                let started = Instant::now();
                for k in 0..iters {
                    let q = &queries[usize::try_from(k).unwrap() % queries.len()];
                    let page = store.query(&t, ResourceKind::User, q).await.unwrap();
                    assert_eq!(page.total_results, 1);
                }
                started.elapsed()
            }))
            .unwrap()
        })
    });

    c.bench_function("query emails co (1 result of 200,000 emails)", |b| {
        b.iter(|| {
            i = (i + 7919) % USERS;
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

    // An attribute without a column (only in the JSON document): about 100 of 100,000 match.
    c.bench_function(
        "query name.familyName eq (JSON attribute, 103 results)",
        |b| {
            b.iter(|| {
                i = (i + 1) % 977;
                let filter = parse_filter(&format!("name.familyName eq \"family{i}\"")).unwrap();
                let q = Query {
                    filter: Some(filter),
                    count: Some(100),
                    ..Query::default()
                };
                let page = rt
                    .block_on(store.query(&t, ResourceKind::User, &q))
                    .unwrap();
                assert!(page.total_results >= 102);
            })
        },
    );

    // totalResults of an unfiltered list: all 100,000 users.
    let first_page = Query {
        count: Some(10),
        members: Members::Exclude,
        ..Query::default()
    };
    c.bench_function("query without filter, 10 of 100,000 (totalResults)", |b| {
        b.iter(|| {
            let page = rt
                .block_on(store.query(&t, ResourceKind::User, &first_page))
                .unwrap();
            assert!(page.total_results >= USERS as u64);
        })
    });

    let by_name = Query {
        sort_by: Some(AttrPath::simple("userName")),
        count: Some(100),
        members: Members::Exclude,
        ..Query::default()
    };
    let mut group = c.benchmark_group("page of 100 sorted by userName at 90,000");
    group.sample_size(20);
    group.bench_function("startIndex", |b| {
        let q = Query {
            paging: Paging::Index {
                start_index: 90_001,
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
                count: Some(90_000),
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
    c.bench_function("create user", |b| {
        b.iter(|| {
            n += 1;
            let doc = user(USERS + n);
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
    c.bench_function("patch user active false", |b| {
        b.iter(|| {
            k += 1;
            // Alternate so that every patch is a real change.
            let req = if (k / USERS) % 2 == 0 {
                &deactivate
            } else {
                &activate
            };
            let r = rt
                .block_on(store.patch(
                    &t,
                    PatchCall {
                        kind: ResourceKind::User,
                        id: &d.user_ids[k % USERS],
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
        .block_on(store.create(&t, ResourceKind::User, user(USERS * 2), &ctx()))
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
    c.bench_function("add or remove one member of a 100,000-member group", |b| {
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

    let full_dir = tempfile::tempdir().unwrap();
    let full = SqliteStore::open(
        full_dir.path().join("full.db"),
        ResourceSchemas::core(),
        SqliteOptions::default(),
    )
    .unwrap();
    let full_tenant = rt.block_on(full.create_tenant("full")).unwrap().id;
    c.bench_function(
        "create user (Durability::Full: one fsync per commit)",
        |b| {
            b.iter(|| {
                n += 1;
                black_box(
                    rt.block_on(full.create(&full_tenant, ResourceKind::User, user(n), &ctx()))
                        .unwrap(),
                );
            })
        },
    );
    c.bench_function(
        "64 concurrent creates (Durability::Full, group commit)",
        |b| {
            let full = Arc::new(
                SqliteStore::open(
                    full_dir.path().join("full.db"),
                    ResourceSchemas::core(),
                    SqliteOptions::default(),
                )
                .unwrap(),
            );
            b.iter(|| {
                rt.block_on(async {
                    let mut tasks = Vec::new();
                    for _ in 0..64 {
                        n += 1;
                        let (full, doc) = (Arc::clone(&full), user(n));
                        tasks.push(tokio::spawn(async move {
                            full.create(&full_tenant, ResourceKind::User, doc, &ctx())
                                .await
                                .unwrap()
                        }));
                    }
                    for task in tasks {
                        black_box(task.await.unwrap());
                    }
                })
            })
        },
    );

    let mut group = c.benchmark_group("bulk load");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(60));
    group.bench_function("import 100,000 users into a new database", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let dir = tempfile::tempdir().unwrap();
                let store = SqliteStore::open(
                    dir.path().join("bulk.db"),
                    ResourceSchemas::core(),
                    SqliteOptions::default(),
                )
                .unwrap();
                let docs: Vec<Value> = (0..USERS).map(user).collect();
                let started = Instant::now();
                rt.block_on(async {
                    let tenant = store.create_tenant("bulk").await.unwrap().id;
                    store
                        .import(&tenant, ResourceKind::User, docs, &ctx())
                        .await
                        .unwrap();
                });
                total += started.elapsed();
            }
            total
        })
    });
    group.finish();
}

criterion_group!(store_benches, benches);
criterion_main!(store_benches);
