//! Criterion benchmarks of the workplace half of the stores (issue 7), in process (no HTTP),
//! through the real [`WorkplaceStore`] (every call its own transaction), against PostgreSQL
//! and SQLite in turn:
//!
//! - **book** against 1,000 rules (filters on department, title and groups; selectors by kind,
//!   site, floor and neighbourhood; limits), in a tenant of 10,000 people holding 30,000 future
//!   bookings; each booking is cancelled again outside the measurement;
//! - **deactivate a person holding 500 future bookings**: a SCIM PATCH of `active` to false,
//!   whose cascade cancels all 500 in the same transaction (one prepared person per iteration);
//! - **a policy change touching 10,000 people** (30,000 future bookings re-checked):
//!   `preview_policies`, and `set_policies` (in flag mode, so that every iteration finds the
//!   same bookings to act on: the change flags those of the 250 people of one department that
//!   no rule allows any more);
//! - **the cascade hook on the hot path**: a SCIM PATCH of `active` to false of a person who holds
//!   nothing, to compare with `patch user active false` in `benches/store.rs` (the lookup the
//!   hook adds is one indexed `EXISTS`).
//!
//! SQLite runs with `Durability::Normal`, as in `benches/store.rs`. PostgreSQL is
//! `SCIMD_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`), in a schema of
//! its own dropped at the end; without a reachable server its half prints why and measures
//! nothing. The fixtures are built through the store (people imported, catalog and policies
//! put, bookings booked one by one through the policies), except the PostgreSQL fixture's
//! bookings, inserted directly ([`insert_all`]). Fixture build times are printed. Run with
//! `cargo bench -p scimd-store --bench workplace` (`-- sqlite:` or `-- pg:` for one half).

// criterion_group! generates an undocumented public function; a benchmark that cannot set up
// its fixture has nothing to measure, so it stops there.
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, SamplingMode, criterion_group, criterion_main};
use scim_store::postgres::{PostgresOptions, PostgresStore};
use scim_store::sqlite::{Durability, SqliteOptions, SqliteStore};
use scim_store::workplace::{BookingOutcome, NewBooking, PlaceKind, WorkplaceStore, plan};
use scim_store::{
    Members, PatchCall, PatchSettings, ResourceKind, ResourceSchemas, TenantId, WriteContext,
};
use serde_json::{Value, json};
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};
use workplace_policy::{
    Actor, Booking, CascadeSettings, Effect, FormerHistory, Limits, PolicySet, RecomputeMode,
    ResourceKind as Kind, ResourceSelector, Rule, Timestamp,
};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;
const SITES: usize = 10;
const KINDS: [&str; 5] = ["desk", "room", "parking", "locker", "equipment"];
/// Resources of each kind per site: 10 sites x 5 kinds x 20 = 1,000 resources, 200 desks.
const PER_KIND: usize = 20;
const DESKS: usize = SITES * PER_KIND;
/// People holding bookings in the policy tenant, and their future bookings each.
const PEOPLE: usize = 10_000;
const BOOKINGS_EACH: usize = 3;
/// People of the policy tenant who hold nothing (the hot-path patch rotates over them).
const IDLE: usize = 1_000;
/// Future bookings of each person the deactivation benchmark deactivates.
const LEAVER_BOOKINGS: usize = 500;
/// People prepared with 500 bookings each (one per iteration; more are made if needed).
const LEAVERS: usize = 16;
/// The department the policy change takes the open desks from.
const LOSING_DEPARTMENT: &str = "Dept 7";

fn ctx() -> WriteContext {
    WriteContext::actor("bench")
}

fn wall_clock() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap())
        .unwrap()
}

/// Person `i`: one of 40 departments, one of 50 teams (the first group, their primary team),
/// every other one in the `Parking` group, every tenth a director.
fn person(i: usize) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "userName": format!("user{i:05}@example.com"),
        "displayName": format!("User {i}"),
        "title": if i % 10 == 0 { "Director of Things" } else { "Engineer" },
        "active": true,
        ENTERPRISE: {"department": format!("Dept {}", i % 40)},
    })
}

fn desk(d: usize) -> String {
    format!("r-{}-desk-{}", d / PER_KIND, d % PER_KIND)
}

/// 10 sites, each with 2 floors of 2 neighbourhoods, and 20 resources of each of 5 kinds
/// (desks in the neighbourhoods, the others on the floors).
fn catalog() -> Vec<(PlaceKind, Value)> {
    let mut entries = Vec::new();
    for s in 0..SITES {
        entries.push((
            PlaceKind::Site,
            json!({"id": format!("site-{s}"), "name": format!("Site {s}")}),
        ));
        for f in 0..2 {
            entries.push((
                PlaceKind::Floor,
                json!({"id": format!("f-{s}-{f}"), "site": format!("site-{s}"), "name": format!("Floor {f}")}),
            ));
            for n in 0..2 {
                entries.push((
                    PlaceKind::Neighbourhood,
                    json!({"id": format!("nb-{s}-{}", f * 2 + n), "site": format!("site-{s}"),
                           "floor": format!("f-{s}-{f}"), "name": format!("Corner {n}")}),
                ));
            }
        }
        for kind in KINDS {
            for n in 0..PER_KIND {
                let mut resource = json!({
                    "id": format!("r-{s}-{kind}-{n}"), "kind": kind, "site": format!("site-{s}"),
                    "floor": format!("f-{s}-{}", n % 2), "name": format!("{kind} {n}"),
                    "capacity": if kind == "room" { 8 } else { 1 },
                });
                if kind == "desk" {
                    resource["neighbourhood"] = json!(format!("nb-{s}-{}", n % 4));
                    resource["floor"] = json!(format!("f-{s}-{}", (n % 4) / 2));
                }
                entries.push((PlaceKind::Resource, resource));
            }
        }
    }
    entries
}

/// 1,000 rules: rule 0 lets everyone book any desk; the 999 others select people by team
/// (`groups`), department or title-or-group, and resources by kind and site, neighbourhood,
/// floor, or kind alone, with limits (how far ahead, how long, how many a week, how many at
/// once) on most; one in 50 denies equipment at a site.
fn thousand_rules(desks_for: Option<&str>) -> PolicySet {
    let mut rules = vec![Rule {
        id: "open-desks".into(),
        name: "Anyone may book a desk".into(),
        effect: Effect::Allow,
        people: desks_for.map(|department| format!("{ENTERPRISE}:department ne \"{department}\"")),
        resources: ResourceSelector {
            kinds: vec![Kind::Desk],
            ..ResourceSelector::default()
        },
        limits: Limits {
            max_days_ahead: Some(60),
            ..Limits::default()
        },
    }];
    for i in 1..1000usize {
        let deny = i % 50 == 49;
        let people = match i % 3 {
            0 => format!("groups[display eq \"Team {}\"]", i % 50),
            1 => format!("{ENTERPRISE}:department eq \"Dept {}\"", i % 40),
            _ => "title co \"Director\" or groups[display eq \"Parking\"]".to_owned(),
        };
        let (s, kind) = (i % SITES, KINDS[i % KINDS.len()]);
        let resources = if deny {
            ResourceSelector {
                kinds: vec![Kind::Equipment],
                sites: vec![format!("site-{s}")],
                ..ResourceSelector::default()
            }
        } else {
            match i % 4 {
                0 => ResourceSelector {
                    kinds: vec![Kind::parse(kind)],
                    sites: vec![format!("site-{s}")],
                    ..ResourceSelector::default()
                },
                1 => ResourceSelector {
                    neighbourhoods: vec![format!("nb-{s}-{}", (i / 4) % 4)],
                    ..ResourceSelector::default()
                },
                2 => ResourceSelector {
                    kinds: vec![Kind::parse(kind)],
                    floors: vec![format!("f-{s}-{}", (i / 4) % 2)],
                    ..ResourceSelector::default()
                },
                _ => ResourceSelector {
                    kinds: vec![Kind::parse(kind)],
                    ..ResourceSelector::default()
                },
            }
        };
        rules.push(Rule {
            id: format!("rule-{i}"),
            name: format!("Rule {i}"),
            effect: if deny { Effect::Deny } else { Effect::Allow },
            people: Some(people),
            resources,
            limits: if deny {
                Limits::default()
            } else {
                Limits {
                    max_days_ahead: (i % 2 == 0).then_some(30),
                    max_duration_seconds: (i % 5 == 0).then_some(10 * HOUR),
                    max_bookings_per_week: (i % 4 == 0).then_some(5),
                    max_concurrent: (i % 7 == 0).then_some(2),
                }
            },
        });
    }
    PolicySet {
        rules,
        default: Effect::Deny,
        utc_offset_seconds: 3_600,
    }
}

fn flag_mode() -> CascadeSettings {
    CascadeSettings {
        on_lost_entitlement: RecomputeMode::Flag,
        former_history: FormerHistory::Keep,
    }
}

/// Midnight UTC tomorrow: future slots are counted from it.
fn tomorrow(now: Timestamp) -> Timestamp {
    (now / DAY + 1) * DAY
}

/// One hour of slot `n` (ten a day, from 08:00) after `base`.
fn hour_slot(base: Timestamp, n: usize) -> (Timestamp, Timestamp) {
    let n = i64::try_from(n).unwrap();
    let start = base + (n / 10) * DAY + (8 + n % 10) * HOUR;
    (start, start + HOUR)
}

/// The store under test, and how its fixture's bookings are made.
struct Bench {
    name: &'static str,
    store: Arc<dyn WorkplaceStore>,
    /// PostgreSQL: the schema the fixture's bookings are inserted into directly (see
    /// [`insert_all`]).
    pg_schema: Option<String>,
}

impl Bench {
    /// Once the fixtures are built: on PostgreSQL, the planner's statistics of the freshly
    /// loaded tables (a database in service has them; without them the planner may, for one,
    /// read a tenant's 11,000 users to find one by row id).
    async fn settle(&self) {
        if let Some(schema) = &self.pg_schema {
            let tables = [
                "resources",
                "members",
                "resource_values",
                "unique_values",
                "events",
                "places",
                "bookings",
                "assignments",
                "workplace_state",
            ];
            let tables: Vec<String> = tables.iter().map(|t| format!("{schema}.{t}")).collect();
            admin(&format!("ANALYZE {}", tables.join(", ")))
                .await
                .unwrap();
        }
    }

    /// Makes the fixture's bookings: through `book` on SQLite; inserted directly on PostgreSQL.
    async fn load(&self, tenant: TenantId, requests: Vec<NewBooking>) {
        match &self.pg_schema {
            None => {
                book_all(&self.store, tenant, requests).await;
            }
            Some(schema) => insert_all(schema, tenant, requests).await,
        }
    }
}

/// Inserts bookings as `book` would store them, many per statement. The PostgreSQL fixture's one shortcut: booked one by one, the
/// 38,000 fixture bookings take minutes there (every booking commits, and a tenant's
/// commits are serialised by its feed counter), seconds on SQLite. They are the very requests
/// the SQLite half books through the policies.
async fn insert_all(schema: &str, tenant: TenantId, requests: Vec<NewBooking>) {
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(connection);
    let statement = format!(
        "INSERT INTO {schema}.bookings (tenant, id, person, resource, start_s, end_s, status, \
         flagged, record) SELECT $1, u.id, u.person, u.resource, u.start_s, u.end_s, 'booked', \
         false, u.record FROM unnest($2::text[], $3::text[], $4::text[], $5::bigint[], \
         $6::bigint[], $7::text[]) AS u(id, person, resource, start_s, end_s, record)"
    );
    let now = wall_clock();
    for chunk in requests.chunks(5_000) {
        let records: Vec<_> = chunk
            .iter()
            .map(|r| plan::new_booking(plan::new_id("b").unwrap(), r.clone(), now))
            .collect();
        let column = |f: fn(&Booking) -> String| -> Vec<String> {
            records.iter().map(|r| f(&r.booking)).collect()
        };
        let ids = column(|b| b.id.clone());
        let people = column(|b| b.person.clone());
        let resources = column(|b| b.resource.clone());
        let starts: Vec<i64> = records.iter().map(|r| r.booking.start).collect();
        let ends: Vec<i64> = records.iter().map(|r| r.booking.end).collect();
        let texts: Vec<String> = records
            .iter()
            .map(|r| plan::booking_json(r).unwrap())
            .collect();
        client
            .execute(
                &statement,
                &[
                    &tenant.key(),
                    &ids,
                    &people,
                    &resources,
                    &starts,
                    &ends,
                    &texts,
                ],
            )
            .await
            .unwrap();
    }
    drop(client);
    let _ = task.await;
}

/// Books every request, at most 32 at once, and expects each one done.
async fn book_all(
    store: &Arc<dyn WorkplaceStore>,
    tenant: TenantId,
    requests: Vec<NewBooking>,
) -> Vec<String> {
    let mut in_flight = tokio::task::JoinSet::new();
    let mut requests = requests.into_iter();
    let mut ids = Vec::new();
    loop {
        while in_flight.len() < 32 {
            let Some(request) = requests.next() else {
                break;
            };
            let store = Arc::clone(store);
            in_flight.spawn(async move {
                let what = format!("{} {}", request.person, request.resource);
                let outcome = store
                    .book(&tenant, request, &ctx(), wall_clock())
                    .await
                    .unwrap();
                match outcome {
                    BookingOutcome::Done(record) => record.booking.id,
                    other => panic!("fixture booking of {what} refused: {other:?}"),
                }
            });
        }
        match in_flight.join_next().await {
            Some(done) => ids.push(done.unwrap()),
            None => return ids,
        }
    }
}

async fn put_catalog(store: &dyn WorkplaceStore, tenant: &TenantId) {
    for (kind, document) in catalog() {
        store
            .put_place(tenant, kind, document, None, &ctx())
            .await
            .unwrap();
    }
}

async fn import_people(
    store: &dyn WorkplaceStore,
    tenant: &TenantId,
    range: std::ops::Range<usize>,
) -> Vec<String> {
    let docs: Vec<Value> = range.map(person).collect();
    store
        .import(tenant, ResourceKind::User, docs, &ctx())
        .await
        .unwrap()
        .ids
}

/// The tenant of the booking, policy-change and hot-path benchmarks: the catalog, the 1,000
/// rules, 10,000 people in 50 teams (and half of them in `Parking`) holding 3 future desk
/// bookings each, and 1,000 people holding nothing.
struct Office {
    tenant: TenantId,
    people: Vec<String>,
    idle: Vec<String>,
}

async fn office(bench: &Bench) -> Office {
    let s = bench.store.as_ref();
    let tenant = s.create_tenant("office").await.unwrap().id;
    let started = Instant::now();
    put_catalog(s, &tenant).await;
    s.set_policies(
        &tenant,
        thousand_rules(None),
        flag_mode(),
        None,
        &ctx(),
        wall_clock(),
    )
    .await
    .unwrap();
    let people = import_people(s, &tenant, 0..PEOPLE).await;
    let idle = import_people(s, &tenant, PEOPLE..PEOPLE + IDLE).await;
    let mut groups: Vec<Value> = (0..50)
        .map(|team| {
            let members: Vec<Value> = (team..PEOPLE)
                .step_by(50)
                .map(|i| json!({"value": people[i]}))
                .collect();
            json!({"displayName": format!("Team {team}"), "members": members})
        })
        .collect();
    let parking: Vec<Value> = (0..PEOPLE)
        .step_by(2)
        .map(|i| json!({"value": people[i]}))
        .collect();
    groups.push(json!({"displayName": "Parking", "members": parking}));
    s.import(&tenant, ResourceKind::Group, groups, &ctx())
        .await
        .unwrap();
    eprintln!(
        "fixture: catalog of 1,070 places, 1,000 rules, {} people in 51 groups took {:?}",
        PEOPLE + IDLE,
        started.elapsed()
    );
    // Person p books desk p % 200 on three days, 5 days apart: no two bookings share a desk
    // and an hour.
    let started = Instant::now();
    let base = tomorrow(wall_clock());
    let mut requests = Vec::with_capacity(PEOPLE * BOOKINGS_EACH);
    for k in 0..BOOKINGS_EACH {
        for (p, id) in people.iter().enumerate() {
            let (start, end) = hour_slot(base, p / DESKS + 50 * k);
            requests.push(NewBooking {
                person: id.clone(),
                resource: desk(p % DESKS),
                start,
                end,
            });
        }
    }
    bench.load(tenant, requests).await;
    eprintln!(
        "fixture: {} future bookings of {PEOPLE} people took {:?}",
        PEOPLE * BOOKINGS_EACH,
        started.elapsed()
    );
    Office {
        tenant,
        people,
        idle,
    }
}

/// The tenant of the deactivation benchmark: one site of desks, one rule, and people holding
/// 500 future bookings each. (A deactivation cancels every future booking without consulting
/// the rules, so their number does not matter here.)
struct Leavers {
    tenant: TenantId,
    prepared: Vec<String>,
    next: usize,
}

/// Leaver `n`: a new person, and the 500 one-hour bookings of desk `n` they are to make.
async fn leaver(
    store: &dyn WorkplaceStore,
    tenant: &TenantId,
    n: usize,
) -> (String, Vec<NewBooking>) {
    add_desk(store, tenant, n).await;
    let id = store
        .create(tenant, ResourceKind::User, person(100_000 + n), &ctx())
        .await
        .unwrap()
        .id;
    let base = tomorrow(wall_clock());
    let requests = (0..LEAVER_BOOKINGS)
        .map(|slot| {
            let (start, end) = hour_slot(base, slot);
            NewBooking {
                person: id.clone(),
                resource: format!("desk-{n}"),
                start,
                end,
            }
        })
        .collect();
    (id, requests)
}

async fn leavers(bench: &Bench) -> Leavers {
    let s = bench.store.as_ref();
    let tenant = s.create_tenant("leavers").await.unwrap().id;
    s.put_place(
        &tenant,
        PlaceKind::Site,
        json!({"id": "hq", "name": "HQ"}),
        None,
        &ctx(),
    )
    .await
    .unwrap();
    let policies: PolicySet = serde_json::from_value(json!({
        "rules": [{"id": "desks", "name": "Anyone may book a desk", "effect": "allow",
                   "resources": {"kinds": ["desk"]}}],
        "default": "deny"
    }))
    .unwrap();
    s.set_policies(
        &tenant,
        policies,
        CascadeSettings::default(),
        None,
        &ctx(),
        wall_clock(),
    )
    .await
    .unwrap();
    let started = Instant::now();
    let mut prepared = Vec::new();
    let mut each = Vec::new();
    for n in 0..LEAVERS {
        let (id, requests) = leaver(s, &tenant, n).await;
        prepared.push(id);
        each.push(requests);
    }
    // Slot by slot, so that the bookings in flight are of different people.
    let mut requests = Vec::with_capacity(LEAVERS * LEAVER_BOOKINGS);
    for slot in 0..LEAVER_BOOKINGS {
        requests.extend(each.iter().map(|theirs| theirs[slot].clone()));
    }
    bench.load(tenant, requests).await;
    eprintln!(
        "fixture: {LEAVERS} people with {LEAVER_BOOKINGS} future bookings each took {:?}",
        started.elapsed()
    );
    Leavers {
        tenant,
        prepared,
        next: 0,
    }
}

async fn add_desk(store: &dyn WorkplaceStore, tenant: &TenantId, n: usize) {
    store
        .put_place(
            tenant,
            PlaceKind::Resource,
            json!({"id": format!("desk-{n}"), "kind": "desk", "site": "hq", "name": format!("Desk {n}"), "capacity": 1}),
            None,
            &ctx(),
        )
        .await
        .unwrap();
}

fn active(value: bool) -> scim_patch::PatchRequest {
    let message = json!({"schemas": [scim_patch::PATCH_OP_URN],
        "Operations": [{"op": "replace", "path": "active", "value": value}]});
    scim_patch::PatchRequest::from_json(&message, &scim_patch::PatchOptions::default()).unwrap()
}

async fn set_active(
    store: &dyn WorkplaceStore,
    tenant: &TenantId,
    id: &str,
    request: &scim_patch::PatchRequest,
) -> bool {
    store
        .patch(
            tenant,
            PatchCall {
                kind: ResourceKind::User,
                id,
                request,
                settings: &PatchSettings::default(),
                expected_version: None,
                members: Members::Exclude,
            },
            &ctx(),
        )
        .await
        .unwrap()
        .changed
}

/// Every benchmark against one store; `name` prefixes their names.
fn run(c: &mut Criterion, rt: &tokio::runtime::Runtime, bench: &Bench) {
    let started = Instant::now();
    let office = rt.block_on(office(bench));
    let mut leavers = rt.block_on(leavers(bench));
    rt.block_on(bench.settle());
    let name = bench.name;
    eprintln!("{name}: fixtures built in {:?}", started.elapsed());
    let s = bench.store.as_ref();
    let t = office.tenant;
    let (deactivate, activate) = (active(false), active(true));

    // d. The hot path: a person holding nothing, deactivated and reactivated in turn.
    let mut k = 0usize;
    c.bench_function(
        &format!("{name}: patch user active false (holds nothing)"),
        |b| {
            b.iter(|| {
                // Every one of them deactivated, then every one reactivated, and so on: every
                // patch is a real change.
                let request = if (k / IDLE) % 2 == 0 {
                    &deactivate
                } else {
                    &activate
                };
                assert!(rt.block_on(set_active(s, &t, &office.idle[k % IDLE], request)));
                k += 1;
            })
        },
    );

    // c. A policy change touching the 10,000 people (30,000 future bookings).
    let before = thousand_rules(None);
    let after = thousand_rules(Some(LOSING_DEPARTMENT));
    let preview = rt
        .block_on(s.preview_policies(&t, &after, flag_mode(), wall_clock()))
        .unwrap();
    eprintln!(
        "{name}: the policy change: {} ({} bookings checked)",
        preview.summary(),
        preview.bookings_checked
    );
    assert_eq!(preview.bookings_checked, PEOPLE * BOOKINGS_EACH);
    assert!(!preview.flagged.is_empty());
    let mut group = c.benchmark_group(format!("{name}: policy change, 10,000 people"));
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_secs(5));
    group.bench_function("preview_policies", |b| {
        b.iter(|| {
            black_box(
                rt.block_on(s.preview_policies(&t, &after, flag_mode(), wall_clock()))
                    .unwrap(),
            )
        })
    });
    // Each measured change flags the same bookings again; setting the rules back (not
    // measured) flags nothing.
    group.bench_function("set_policies (flag mode)", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                rt.block_on(s.set_policies(
                    &t,
                    before.clone(),
                    flag_mode(),
                    None,
                    &ctx(),
                    wall_clock(),
                ))
                .unwrap();
                let policies = after.clone();
                let started = Instant::now();
                let (_, applied) = rt
                    .block_on(s.set_policies(&t, policies, flag_mode(), None, &ctx(), wall_clock()))
                    .unwrap();
                total += started.elapsed();
                assert_eq!(applied.flagged.len(), preview.flagged.len());
            }
            total
        })
    });
    group.finish();
    rt.block_on(s.set_policies(&t, before.clone(), flag_mode(), None, &ctx(), wall_clock()))
        .unwrap();

    // a. A booking decided against the 1,000 rules in the loaded tenant, then cancelled (not
    // measured) so that the state does not grow.
    let base = tomorrow(wall_clock()) + 20 * DAY;
    let mut n = 0usize;
    let mut group = c.benchmark_group(format!("{name}: book"));
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    group.bench_function("1,000 rules, 10,000 people, 30,000 bookings", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                n += 1;
                let (start, end) = hour_slot(base, n % 10);
                let request = NewBooking {
                    person: office.people[(n * 7_919) % PEOPLE].clone(),
                    resource: desk(n % DESKS),
                    start,
                    end,
                };
                let started = Instant::now();
                let outcome = rt
                    .block_on(s.book(&t, request, &ctx(), wall_clock()))
                    .unwrap();
                total += started.elapsed();
                let BookingOutcome::Done(record) = outcome else {
                    panic!("refused: {outcome:?}")
                };
                rt.block_on(s.cancel_booking(
                    &t,
                    &record.booking.id,
                    Actor::System,
                    "bench",
                    &ctx(),
                    wall_clock(),
                ))
                .unwrap();
            }
            total
        })
    });
    group.finish();

    // b. Deactivating a person holding 500 future bookings: one prepared person per
    // iteration (another is prepared, not measured, should criterion ask for more).
    let mut group = c.benchmark_group(format!("{name}: deactivate"));
    group
        .sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(1))
        .measurement_time(Duration::from_millis(500));
    let lt = leavers.tenant;
    group.bench_function("a person holding 500 future bookings", |b| {
        b.iter_custom(|iters| {
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                let id = match leavers.prepared.get(leavers.next) {
                    Some(id) => id.clone(),
                    None => rt.block_on(async {
                        let (id, requests) = leaver(s, &lt, leavers.next).await;
                        bench.load(lt, requests).await;
                        id
                    }),
                };
                leavers.next += 1;
                let started = Instant::now();
                assert!(rt.block_on(set_active(s, &lt, &id, &deactivate)));
                total += started.elapsed();
            }
            total
        })
    });
    group.finish();
    // What was measured (unless filtered out) did cancel the 500 bookings.
    if leavers.next > 0 {
        let cancelled = rt
            .block_on(s.bookings(
                &lt,
                &scim_store::workplace::BookingFilter {
                    person: Some(leavers.prepared[0].clone()),
                    status: Some("cancelled".into()),
                    limit: 1_000,
                    ..Default::default()
                },
            ))
            .unwrap();
        assert_eq!(cancelled.len(), LEAVER_BOOKINGS);
    }
}

fn sqlite(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().unwrap();
    let options = SqliteOptions {
        durability: Durability::Normal,
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(
        dir.path().join("workplace.db"),
        ResourceSchemas::core(),
        options,
    )
    .unwrap();
    let bench = Bench {
        name: "sqlite",
        store: Arc::new(store),
        pg_schema: None,
    };
    run(c, rt, &bench);
}

fn url() -> String {
    std::env::var("SCIMD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

async fn admin(sql: &str) -> Result<(), tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(&url(), tokio_postgres::NoTls).await?;
    let task = tokio::spawn(connection);
    client.batch_execute(sql).await?;
    drop(client);
    let _ = task.await;
    Ok(())
}

fn postgres(c: &mut Criterion, rt: &tokio::runtime::Runtime) {
    let mut bytes = [0u8; 6];
    getrandom::fill(&mut bytes).unwrap();
    let schema = format!(
        "bench_wp_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    if let Err(e) = rt.block_on(admin(&format!("CREATE SCHEMA {schema}"))) {
        let line = "=".repeat(78);
        eprintln!(
            "\n{line}\nSKIPPED: the pg: workplace benchmarks measured nothing: PostgreSQL at {} \
             is unreachable ({e}).\nSet SCIMD_TEST_POSTGRES_URL=postgres://user@host:port/db \
             to run them.\n{line}\n",
            url()
        );
        return;
    }
    let options = PostgresOptions {
        schema: Some(schema.clone()),
        ..PostgresOptions::default()
    };
    let store = rt
        .block_on(PostgresStore::connect(
            &url(),
            ResourceSchemas::core(),
            options,
        ))
        .unwrap();
    let bench = Bench {
        name: "pg",
        store: Arc::new(store),
        pg_schema: Some(schema.clone()),
    };
    run(c, rt, &bench);
    drop(bench);
    rt.block_on(admin(&format!("DROP SCHEMA {schema} CASCADE")))
        .unwrap();
}

/// Whether the command line's filters may select benchmarks of `backend`: a filter naming the
/// other backend (`sqlite:...`, `pg:...`) skips this one's fixture altogether.
fn wanted(backend: &str) -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    filters.is_empty()
        || filters.iter().any(|f| {
            f.starts_with(&format!("{backend}:"))
                || !(f.starts_with("sqlite:") || f.starts_with("pg:"))
        })
}

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // PostgreSQL first: its writes wait for the disk (a WAL flush per commit), which the
    // SQLite half's hundreds of megabytes of writes, still being flushed, would slow down.
    if wanted("pg") {
        postgres(c, &rt);
    }
    if wanted("sqlite") {
        sqlite(c, &rt);
    }
}

criterion_group!(workplace_benches, benches);
criterion_main!(workplace_benches);
