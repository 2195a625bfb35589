//! Properties over random histories of SCIM writes (status and attribute changes, deletions),
//! booking attempts, check-ins, cancellations, assignments, policy changes and the passing of
//! time, everything applied through the crate's own cascade functions:
//!
//! - no inactive or former person ever holds a live booking that is not over, nor an assignment;
//! - every booking attempt is decided as a naive scan of all rules (written independently here)
//!   decides it, so every booking that exists satisfied the policies when it was made;
//! - in cancel mode, every live future booking still satisfies the current policies and the
//!   person as they now are (a fresh re-check takes nothing away).

#![allow(clippy::unwrap_used, reason = "test code: a panic is a failure report")]

mod common;

use common::*;
use proptest::prelude::*;
use serde_json::json;
use workplace_policy::{
    Actor, Assignment, Booking, BookingRequest, BookingStatus, CascadeContext, CascadeSettings,
    Catalog, CompiledPolicySet, Effect, Limits, Person, PersonStatus, RecomputeMode, Resource,
    ResourceKind, ResourceSelector, Rule, evaluate, has_capacity, on_person_change,
    preview_policy_change, time,
};

const DEPARTMENTS: [&str; 3] = ["Marketing", "Sales", "IT"];
const RESOURCES: [&str; 9] = [
    "desk-mkt-1",
    "desk-mkt-2",
    "desk-sales-1",
    "desk-par-1",
    "boardroom",
    "park-1",
    "park-2",
    "locker-1",
    "bike-1",
];

fn with_limits(mut r: Rule, limits: Limits) -> Rule {
    r.limits = limits;
    r
}

fn dept(d: &str) -> String {
    format!("{ENTERPRISE}:department eq \"{d}\"")
}

fn policies_a() -> Vec<Rule> {
    vec![
        with_limits(
            rule(
                "mkt-desks",
                Effect::Allow,
                Some(&dept("Marketing")),
                zones(&["mkt"]),
            ),
            Limits {
                max_bookings_per_week: Some(3),
                ..Limits::default()
            },
        ),
        with_limits(
            rule(
                "sales-desks",
                Effect::Allow,
                Some(&dept("Sales")),
                zones(&["sales"]),
            ),
            Limits {
                max_concurrent: Some(1),
                ..Limits::default()
            },
        ),
        with_limits(
            rule(
                "paris",
                Effect::Allow,
                None,
                ResourceSelector {
                    sites: vec!["par".into()],
                    ..Default::default()
                },
            ),
            Limits {
                max_days_ahead: Some(5),
                ..Limits::default()
            },
        ),
        with_limits(
            rule(
                "parking",
                Effect::Allow,
                Some("groups[display eq \"Parking\"]"),
                kinds(&[ResourceKind::Parking]),
            ),
            Limits {
                max_duration_seconds: Some(4 * HOUR),
                ..Limits::default()
            },
        ),
        with_limits(
            rule(
                "boardroom",
                Effect::Allow,
                Some("title co \"Director\""),
                ResourceSelector {
                    resources: vec!["boardroom".into()],
                    ..Default::default()
                },
            ),
            Limits {
                max_days_ahead: Some(10),
                ..Limits::default()
            },
        ),
        rule(
            "no-it-lockers",
            Effect::Deny,
            Some(&dept("IT")),
            kinds(&[ResourceKind::Locker]),
        ),
        rule(
            "lockers",
            Effect::Allow,
            None,
            kinds(&[ResourceKind::Locker]),
        ),
        rule(
            "rooms",
            Effect::Allow,
            Some(&format!("{} or {}", dept("Marketing"), dept("IT"))),
            kinds(&[ResourceKind::Room]),
        ),
        with_limits(
            rule(
                "short-meetings",
                Effect::Deny,
                Some("not (title co \"Director\")"),
                kinds(&[ResourceKind::Room]),
            ),
            Limits {
                max_duration_seconds: Some(2 * HOUR),
                ..Limits::default()
            },
        ),
    ]
}

fn policies_b() -> Vec<Rule> {
    vec![
        with_limits(
            rule(
                "desks",
                Effect::Allow,
                Some(&format!("{} or {}", dept("Marketing"), dept("Sales"))),
                kinds(&[ResourceKind::Desk]),
            ),
            Limits {
                max_bookings_per_week: Some(2),
                max_concurrent: Some(1),
                ..Limits::default()
            },
        ),
        with_limits(
            rule(
                "parking",
                Effect::Allow,
                None,
                kinds(&[ResourceKind::Parking]),
            ),
            Limits {
                max_bookings_per_week: Some(1),
                max_days_ahead: Some(3),
                ..Limits::default()
            },
        ),
        rule(
            "boardroom",
            Effect::Allow,
            Some("title co \"Director\" and groups[display eq \"Parking\"]"),
            ResourceSelector {
                resources: vec!["boardroom".into()],
                ..Default::default()
            },
        ),
        rule(
            "bikes",
            Effect::Allow,
            Some(&format!("{WORKPLACE_EXT}:homeSite eq \"London\"")),
            kinds(&[ResourceKind::Custom("bike".into())]),
        ),
        rule(
            "no-paris-for-sales",
            Effect::Deny,
            Some(&dept("Sales")),
            ResourceSelector {
                sites: vec!["par".into()],
                ..Default::default()
            },
        ),
    ]
}

#[derive(Debug, Clone)]
enum Op {
    Advance {
        hours: i64,
    },
    SetActive {
        who: usize,
        active: bool,
    },
    Delete {
        who: usize,
    },
    ChangeAttributes {
        who: usize,
        department: usize,
        parking: bool,
        director: bool,
    },
    Book {
        who: usize,
        resource: usize,
        start_in_hours: i64,
        hours: i64,
    },
    CheckIn {
        booking: usize,
    },
    Cancel {
        booking: usize,
    },
    Assign {
        who: usize,
        resource: usize,
    },
    SwitchPolicies,
}

fn arb_op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (1i64..60).prop_map(|hours| Op::Advance { hours }),
        2 => (0usize..3, any::<bool>()).prop_map(|(who, active)| Op::SetActive { who, active }),
        1 => (0usize..3).prop_map(|who| Op::Delete { who }),
        2 => (0usize..3, 0usize..3, any::<bool>(), any::<bool>()).prop_map(|(who, department, parking, director)| Op::ChangeAttributes { who, department, parking, director }),
        8 => (0usize..3, 0usize..RESOURCES.len(), -3i64..300, 1i64..10).prop_map(|(who, resource, start_in_hours, hours)| Op::Book { who, resource, start_in_hours, hours }),
        2 => (0usize..64).prop_map(|booking| Op::CheckIn { booking }),
        1 => (0usize..64).prop_map(|booking| Op::Cancel { booking }),
        1 => (0usize..3, 0usize..RESOURCES.len()).prop_map(|(who, resource)| Op::Assign { who, resource }),
        1 => Just(Op::SwitchPolicies),
    ]
}

fn document(
    name: &str,
    department: &str,
    parking: bool,
    director: bool,
    active: bool,
) -> serde_json::Value {
    let mut groups = vec![department];
    if parking {
        groups.push("Parking");
    }
    let title = if director { "Director" } else { "Analyst" };
    let mut doc = user_doc(name, department, title, &groups);
    doc["active"] = json!(active);
    doc
}

/// The naive oracle: every rule tried, selectors and limits re-implemented from their definitions.
#[allow(
    clippy::too_many_arguments,
    reason = "a decision's every input, spelled out"
)]
fn naive_allows(
    rules: &[Rule],
    default: Effect,
    catalog: &Catalog,
    person: &Person,
    resource: &Resource,
    start: i64,
    end: i64,
    now: i64,
    existing: &[Booking],
) -> bool {
    if person.status != PersonStatus::Active || end <= start || end <= now {
        return false;
    }
    let schema = user_schema_with_extension();
    let (mut denied, mut granted, mut refused) = (false, false, false);
    for rule in rules.iter().filter(|r| r.resources.matches(resource)) {
        if let Some(text) = &rule.people {
            let filter = scim_filter::parse_filter(text).unwrap();
            if !scim_filter::eval::matches(&filter, &person.document, &schema).unwrap() {
                continue;
            }
        }
        let selected = |b: &&Booking| {
            b.person == person.id
                && catalog
                    .resource(&b.resource)
                    .is_some_and(|r| rule.resources.matches(r))
        };
        let l = rule.limits;
        let mut ok = true;
        if let Some(max) = l.max_days_ahead {
            ok &= time::local_day(start, 0) - time::local_day(now, 0) <= i64::from(max);
        }
        if let Some(max) = l.max_duration_seconds {
            ok &= end - start <= max;
        }
        if let Some(max) = l.max_bookings_per_week {
            let week = time::iso_week(start, 0);
            let n = existing
                .iter()
                .filter(selected)
                .filter(|b| {
                    !matches!(b.status, BookingStatus::Cancelled { .. })
                        && time::iso_week(b.start, 0) == week
                })
                .count();
            ok &= n < max as usize;
        }
        if let Some(max) = l.max_concurrent {
            let n = existing
                .iter()
                .filter(selected)
                .filter(|b| {
                    matches!(b.status, BookingStatus::Booked | BookingStatus::CheckedIn)
                        && b.start < end
                        && start < b.end
                })
                .count();
            ok &= n < max as usize;
        }
        match (rule.effect, ok) {
            (Effect::Deny, false) => denied = true,
            (Effect::Deny, true) if rule.limits == Limits::default() => denied = true,
            (Effect::Deny, true) => {}
            (Effect::Allow, true) => granted = true,
            (Effect::Allow, false) => refused = true,
        }
    }
    !denied && (granted || (!refused && default == Effect::Allow))
}

struct World {
    catalog: Catalog,
    policy_sets: [(Vec<Rule>, CompiledPolicySet); 2],
    current: usize,
    settings: CascadeSettings,
    now: i64,
    people: Vec<Person>,
    bookings: Vec<Booking>,
    assignments: Vec<Assignment>,
    next_id: usize,
}

impl World {
    fn new(mode: RecomputeMode) -> World {
        let names = ["ann", "ben", "cat"];
        World {
            catalog: catalog(),
            policy_sets: [
                (policies_a(), compile(policies_a(), Effect::Deny)),
                (policies_b(), compile(policies_b(), Effect::Deny)),
            ],
            current: 0,
            settings: CascadeSettings {
                on_lost_entitlement: mode,
                ..CascadeSettings::default()
            },
            now: NOW,
            people: (0..3)
                .map(|i| {
                    person(
                        &format!("u{i}"),
                        document(names[i], DEPARTMENTS[i], i == 0, i == 1, true),
                    )
                })
                .collect(),
            bookings: Vec::new(),
            assignments: Vec::new(),
            next_id: 0,
        }
    }

    fn policies(&self) -> &CompiledPolicySet {
        &self.policy_sets[self.current].1
    }

    /// A SCIM write replacing person `who` by `after`, with its cascade applied.
    fn scim_write(&mut self, who: usize, after: Person) {
        let before = self.people[who].clone();
        if before.status == PersonStatus::Former {
            return; // a deleted user is gone: SCIM answers 404
        }
        let context = CascadeContext {
            policies: self.policies(),
            catalog: &self.catalog,
            settings: self.settings,
            now: self.now,
        };
        let effects = on_person_change(
            &context,
            Some(&before),
            &after,
            &self.bookings,
            &self.assignments,
            "scim",
        );
        effects.apply(&mut self.bookings, &mut self.assignments, self.now);
        self.people[who] = after;
    }

    fn step(&mut self, op: &Op) {
        match *op {
            Op::Advance { hours } => {
                self.now += hours * HOUR;
                // The store completes checked-in bookings that are over.
                for b in &mut self.bookings {
                    if b.status == BookingStatus::CheckedIn && b.end <= self.now {
                        b.status = BookingStatus::Completed { at: b.end };
                    }
                }
            }
            Op::SetActive { who, active } => {
                let mut doc = self.people[who].document.clone();
                doc["active"] = json!(active);
                let id = self.people[who].id.clone();
                self.scim_write(who, Person::from_scim(id, doc, false));
            }
            Op::Delete { who } => {
                let p = &self.people[who];
                let after = Person::from_scim(p.id.clone(), p.document.clone(), true);
                self.scim_write(who, after);
            }
            Op::ChangeAttributes {
                who,
                department,
                parking,
                director,
            } => {
                let p = &self.people[who];
                let active = p.document["active"].as_bool().unwrap_or(true);
                let name = p.label().to_owned();
                let id = p.id.clone();
                self.scim_write(
                    who,
                    Person::from_scim(
                        id,
                        document(&name, DEPARTMENTS[department], parking, director, active),
                        false,
                    ),
                );
            }
            Op::Book {
                who,
                resource,
                start_in_hours,
                hours,
            } => {
                let person = self.people[who].clone();
                let resource = self.catalog.resource(RESOURCES[resource]).unwrap().clone();
                let start = self.now + start_in_hours * HOUR;
                let end = start + hours * HOUR;
                let mine: Vec<Booking> = self
                    .bookings
                    .iter()
                    .filter(|b| b.person == person.id)
                    .cloned()
                    .collect();
                let decision = evaluate(
                    self.policies(),
                    &self.catalog,
                    &person,
                    &resource,
                    BookingRequest { start, end },
                    self.now,
                    &mine,
                );
                let rules = &self.policy_sets[self.current].0;
                let naive = naive_allows(
                    rules,
                    Effect::Deny,
                    &self.catalog,
                    &person,
                    &resource,
                    start,
                    end,
                    self.now,
                    &mine,
                );
                assert_eq!(
                    decision.allowed, naive,
                    "evaluate and the naive scan disagree: {decision:?}"
                );
                if decision.allowed && has_capacity(&resource, start, end, &self.bookings) {
                    self.next_id += 1;
                    self.bookings.push(booking(
                        &format!("b{}", self.next_id),
                        &person.id,
                        &resource.id,
                        start,
                        end,
                        BookingStatus::Booked,
                        self.now,
                    ));
                }
            }
            Op::CheckIn { booking } => {
                let n = self.bookings.len();
                if n == 0 {
                    return;
                }
                let now = self.now;
                let b = &self.bookings[booking % n];
                let holder_active = self
                    .people
                    .iter()
                    .any(|p| p.id == b.person && p.is_active());
                if holder_active
                    && b.status == BookingStatus::Booked
                    && b.start <= now
                    && now < b.end
                {
                    self.bookings[booking % n].status = BookingStatus::CheckedIn;
                }
            }
            Op::Cancel { booking } => {
                let n = self.bookings.len();
                if n == 0 {
                    return;
                }
                let b = &mut self.bookings[booking % n];
                if b.status == BookingStatus::Booked {
                    b.status = BookingStatus::Cancelled {
                        by: Actor::Person(b.person.clone()),
                        reason: "plans changed".into(),
                        at: self.now,
                        cause: None,
                    };
                }
            }
            Op::Assign { who, resource } => {
                let p = &self.people[who];
                if p.is_active()
                    && !self
                        .assignments
                        .iter()
                        .any(|a| a.resource == RESOURCES[resource])
                {
                    self.next_id += 1;
                    self.assignments.push(Assignment {
                        id: format!("a{}", self.next_id),
                        person: p.id.clone(),
                        resource: RESOURCES[resource].into(),
                        since: self.now,
                    });
                }
            }
            Op::SwitchPolicies => {
                let next = 1 - self.current;
                let preview = preview_policy_change(
                    &self.policy_sets[self.current].1,
                    &self.policy_sets[next].1,
                    &self.catalog,
                    &self.people,
                    &self.bookings,
                    self.now,
                    self.settings,
                );
                preview.into_effects("policy").apply(
                    &mut self.bookings,
                    &mut self.assignments,
                    self.now,
                );
                self.current = next;
            }
        }
    }

    fn check_invariants(&self) -> Result<(), TestCaseError> {
        for p in self.people.iter().filter(|p| !p.is_active()) {
            let holding = self
                .bookings
                .iter()
                .find(|b| b.person == p.id && b.is_live() && b.end > self.now);
            prop_assert!(
                holding.is_none(),
                "{} is {} and holds {:?}",
                p.id,
                p.status,
                holding
            );
            prop_assert!(
                !self.assignments.iter().any(|a| a.person == p.id),
                "{} is {} and holds an assignment",
                p.id,
                p.status
            );
        }
        if self.settings.on_lost_entitlement == RecomputeMode::Cancel {
            let context = CascadeContext {
                policies: self.policies(),
                catalog: &self.catalog,
                settings: self.settings,
                now: self.now,
            };
            for p in self.people.iter().filter(|p| p.is_active()) {
                let effects = on_person_change(
                    &context,
                    None,
                    p,
                    &self.bookings,
                    &self.assignments,
                    "check",
                );
                prop_assert!(
                    effects.is_empty(),
                    "{} holds bookings the policies refuse: {:?}",
                    p.id,
                    effects
                );
            }
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

    #[test]
    fn cascades_keep_the_workplace_consistent(
        ops in proptest::collection::vec(arb_op(), 1..60),
        flag in any::<bool>(),
    ) {
        let mut world = World::new(if flag { RecomputeMode::Flag } else { RecomputeMode::Cancel });
        for op in &ops {
            world.step(op);
            world.check_invariants()?;
        }
    }
}
