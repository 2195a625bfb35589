//! Criterion benchmarks of the three costs the issue names: evaluating one booking request
//! against 1,000 rules; deactivating a person with 500 future bookings; previewing a policy
//! change that touches 10,000 people.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "bench code: a panic is a failure report"
)]
#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented public function"
)]

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use serde_json::{Value, json};
use workplace_policy::{
    Assignment, Booking, BookingRequest, BookingStatus, CascadeContext, CascadeSettings, Catalog,
    CompiledPolicySet, Effect, Limits, Person, PolicySet, Resource, ResourceKind, ResourceSelector,
    Rule, Site, evaluate, on_person_change, preview_policy_change,
};

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;
/// Monday 2025-06-16T08:00:00Z.
const NOW: i64 = 1_750_060_800;
const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const SITES: usize = 10;
const KINDS: [ResourceKind; 5] = [
    ResourceKind::Desk,
    ResourceKind::Room,
    ResourceKind::Parking,
    ResourceKind::Locker,
    ResourceKind::Equipment,
];

/// 10 sites with 20 resources of each of 5 kinds: 1,000 resources.
fn catalog() -> Catalog {
    let sites = (0..SITES)
        .map(|s| Site {
            id: format!("site-{s}"),
            name: format!("Site {s}"),
        })
        .collect();
    let mut resources = Vec::new();
    for s in 0..SITES {
        for (k, kind) in KINDS.iter().enumerate() {
            for n in 0..20 {
                resources.push(Resource {
                    id: format!("r-{s}-{k}-{n}"),
                    kind: kind.clone(),
                    site: format!("site-{s}"),
                    floor: None,
                    neighbourhood: None,
                    name: format!("{kind} {n}"),
                    capacity: 1,
                });
            }
        }
    }
    Catalog::new(sites, vec![], vec![], resources).unwrap()
}

fn person(i: usize) -> Person {
    let doc: Value = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "userName": format!("user{i}"),
        "title": if i % 10 == 0 { "Director" } else { "Engineer" },
        "active": true,
        ENTERPRISE: {"department": format!("Dept {}", i % 40)},
        "groups": [
            {"value": format!("g{}", i % 50), "display": format!("Team {}", i % 50), "type": "direct"},
            {"value": "g-parking", "display": if i % 2 == 0 { "Parking" } else { "Cycling" }, "type": "direct"}
        ]
    });
    Person::from_scim(format!("u{i}"), doc, false)
}

/// 1,000 rules spread over sites and kinds, with filters over groups, the Enterprise User
/// department and title, some with limits, one deny in 50.
fn thousand_rules() -> PolicySet {
    let rules = (0..1000)
        .map(|i| Rule {
            id: format!("rule-{i}"),
            name: format!("Rule {i}"),
            effect: if i % 50 == 49 {
                Effect::Deny
            } else {
                Effect::Allow
            },
            people: Some(match i % 3 {
                0 => format!("groups[display eq \"Team {}\"]", i % 50),
                1 => format!("{ENTERPRISE}:department eq \"Dept {}\"", i % 40),
                _ => "title co \"Director\" or groups[display eq \"Parking\"]".to_owned(),
            }),
            resources: ResourceSelector {
                kinds: vec![KINDS[i % KINDS.len()].clone()],
                sites: vec![format!("site-{}", i % SITES)],
                ..ResourceSelector::default()
            },
            limits: Limits {
                max_days_ahead: Some(14),
                max_bookings_per_week: (i % 4 == 0).then_some(5),
                max_concurrent: (i % 7 == 0).then_some(2),
                ..Limits::default()
            },
        })
        .collect();
    PolicySet {
        rules,
        default: Effect::Deny,
        utc_offset_seconds: 3600,
    }
}

fn booked(
    id: String,
    person: &str,
    resource: String,
    start: i64,
    status: BookingStatus,
) -> Booking {
    Booking {
        id,
        person: person.to_owned(),
        resource,
        start,
        end: start + 8 * HOUR,
        status,
        created_at: NOW - DAY,
    }
}

fn evaluate_against_1000_rules(c: &mut Criterion) {
    let policies = CompiledPolicySet::compile(&thousand_rules()).unwrap();
    let catalog = catalog();
    let alice = person(0);
    let resource = catalog.resource("r-0-0-3").unwrap().clone();
    // Twenty bookings this week and next, for the weekly and concurrent limits to count.
    let existing: Vec<Booking> = (0..20i64)
        .map(|i| {
            booked(
                format!("b{i}"),
                "u0",
                format!("r-0-0-{i}"),
                NOW + (i % 10) * DAY,
                BookingStatus::Booked,
            )
        })
        .collect();
    let request = BookingRequest {
        start: NOW + 2 * DAY,
        end: NOW + 2 * DAY + 8 * HOUR,
    };
    let decision = evaluate(
        &policies, &catalog, &alice, &resource, request, NOW, &existing,
    );
    assert!(!decision.reasons.is_empty());
    c.bench_function("evaluate/1000_rules", |b| {
        b.iter(|| {
            evaluate(
                black_box(&policies),
                &catalog,
                black_box(&alice),
                black_box(&resource),
                request,
                NOW,
                &existing,
            )
        })
    });
    c.bench_function("compile/1000_rules", |b| {
        let set = thousand_rules();
        b.iter(|| CompiledPolicySet::compile(black_box(&set)).unwrap())
    });
}

fn deactivate_with_500_future_bookings(c: &mut Criterion) {
    let policies = CompiledPolicySet::compile(&thousand_rules()).unwrap();
    let catalog = catalog();
    let before = person(0);
    let mut doc = before.document.clone();
    doc["active"] = json!(false);
    let after = Person::from_scim("u0", doc, false);
    let mut bookings: Vec<Booking> = (0..500i64)
        .map(|i| {
            booked(
                format!("f{i}"),
                "u0",
                format!("r-{}-0-{}", i % 10, i % 20),
                NOW + (1 + i / 5) * DAY,
                BookingStatus::Booked,
            )
        })
        .collect();
    bookings.extend((0..100i64).map(|i| {
        booked(
            format!("p{i}"),
            "u0",
            "r-0-0-0".into(),
            NOW - (1 + i) * DAY,
            BookingStatus::Completed { at: NOW - i * DAY },
        )
    }));
    let assignments = vec![Assignment {
        id: "a1".into(),
        person: "u0".into(),
        resource: "r-0-3-0".into(),
        since: NOW - 100 * DAY,
    }];
    let context = CascadeContext {
        policies: &policies,
        catalog: &catalog,
        settings: CascadeSettings::default(),
        now: NOW,
    };
    let effects = on_person_change(
        &context,
        Some(&before),
        &after,
        &bookings,
        &assignments,
        "req",
    );
    assert_eq!(effects.len(), 501);
    c.bench_function("cascade/deactivate_500_future_bookings", |b| {
        b.iter(|| {
            on_person_change(
                &context,
                Some(&before),
                black_box(&after),
                &bookings,
                &assignments,
                "req",
            )
        })
    });
}

fn policy_change_touching_10000_people(c: &mut Criterion) {
    let catalog = catalog();
    let people: Vec<Person> = (0..10_000).map(person).collect();
    // Three future bookings each (a desk, parking, a room): 30,000 bookings.
    let mut bookings = Vec::with_capacity(30_000);
    for (i, p) in people.iter().enumerate() {
        let site = i % SITES;
        for (k, kind_index) in [0usize, 2, 1].into_iter().enumerate() {
            bookings.push(booked(
                format!("b{i}-{k}"),
                &p.id,
                format!("r-{site}-{kind_index}-{}", i % 20),
                NOW + (1 + k as i64) * DAY,
                BookingStatus::Booked,
            ));
        }
    }
    let rule = |id: &str, people: Option<&str>, kind: ResourceKind, limits: Limits| Rule {
        id: id.into(),
        name: id.into(),
        effect: Effect::Allow,
        people: people.map(Into::into),
        resources: ResourceSelector {
            kinds: vec![kind],
            ..ResourceSelector::default()
        },
        limits,
    };
    let old = CompiledPolicySet::compile(&PolicySet {
        rules: vec![
            rule(
                "desks",
                None,
                ResourceKind::Desk,
                Limits {
                    max_bookings_per_week: Some(5),
                    ..Limits::default()
                },
            ),
            rule("parking", None, ResourceKind::Parking, Limits::default()),
            rule("rooms", None, ResourceKind::Room, Limits::default()),
        ],
        default: Effect::Deny,
        utc_offset_seconds: 0,
    })
    .unwrap();
    // Parking for badge holders only (even-numbered people), rooms for directors (one in ten,
    // all even): 9,000 people lose 14,000 bookings.
    let new = CompiledPolicySet::compile(&PolicySet {
        rules: vec![
            rule(
                "desks",
                None,
                ResourceKind::Desk,
                Limits {
                    max_bookings_per_week: Some(5),
                    ..Limits::default()
                },
            ),
            rule(
                "parking",
                Some("groups[display eq \"Parking\"]"),
                ResourceKind::Parking,
                Limits::default(),
            ),
            rule(
                "rooms",
                Some("title co \"Director\""),
                ResourceKind::Room,
                Limits::default(),
            ),
        ],
        default: Effect::Deny,
        utc_offset_seconds: 0,
    })
    .unwrap();
    let preview = preview_policy_change(
        &old,
        &new,
        &catalog,
        &people,
        &bookings,
        NOW,
        CascadeSettings::default(),
    );
    println!("policy change preview: {}", preview.summary());
    assert_eq!(preview.people_affected, 9_000);
    assert_eq!(preview.cancelled.len(), 14_000);
    let mut group = c.benchmark_group("policy_change");
    group.sample_size(10);
    group.bench_function("preview_10000_people_30000_bookings", |b| {
        b.iter(|| {
            preview_policy_change(
                black_box(&old),
                black_box(&new),
                &catalog,
                &people,
                &bookings,
                NOW,
                CascadeSettings::default(),
            )
        })
    });
    group.finish();
}

criterion_group!(
    benches,
    evaluate_against_1000_rules,
    deactivate_with_500_future_bookings,
    policy_change_touching_10000_people
);
criterion_main!(benches);
