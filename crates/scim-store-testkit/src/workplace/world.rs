//! The workplace model for the property test: random steps applied to the store and to a model
//! of who may hold what.

use crate::ENTERPRISE;
use crate::workplace::fixtures::*;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use scim_store_core::workplace::{BookingFilter, BookingOutcome, BookingRecord, WorkplaceStore};
use scim_store_core::{ResourceKind, TenantId};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use workplace_policy::{Actor, BookingRequest, Catalog, CompiledPolicySet, Person};

pub(super) const DEPARTMENTS: [&str; 2] = ["Marketing", "Sales"];
pub(super) const GROUPS: [&str; 2] = ["Parking", "Other"];
pub(super) const RESOURCES: [&str; 5] = ["d1", "d2", "p1", "boardroom", "hub"];

/// One step of a sequence; indexes pick among the people created so far, the groups, the
/// resources and the bookings made so far.
#[derive(Debug, Clone)]
pub(super) enum Op {
    Create {
        department: usize,
        active: bool,
    },
    SetActive {
        target: usize,
        active: bool,
        entra: bool,
        stale: bool,
    },
    Department {
        target: usize,
        department: usize,
    },
    Join {
        target: usize,
        group: usize,
    },
    Leave {
        target: usize,
        group: usize,
    },
    Delete {
        target: usize,
    },
    /// Book `day` days ahead, or (day 0) a booking already in progress.
    Book {
        target: usize,
        resource: usize,
        day: i64,
        hour: i64,
    },
    Assign {
        target: usize,
        resource: usize,
    },
    Cancel {
        booking: usize,
    },
    CheckIn {
        booking: usize,
    },
}

pub(super) fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..2usize, prop::bool::weighted(0.85)).prop_map(|(department, active)| Op::Create { department, active }),
        2 => (any::<usize>(), any::<bool>(), any::<bool>(), prop::bool::weighted(0.2))
            .prop_map(|(target, active, entra, stale)| Op::SetActive { target, active, entra, stale }),
        2 => (any::<usize>(), 0..2usize).prop_map(|(target, department)| Op::Department { target, department }),
        2 => (any::<usize>(), 0..2usize).prop_map(|(target, group)| Op::Join { target, group }),
        2 => (any::<usize>(), 0..2usize).prop_map(|(target, group)| Op::Leave { target, group }),
        1 => any::<usize>().prop_map(|target| Op::Delete { target }),
        8 => (any::<usize>(), 0..RESOURCES.len(), 0..10i64, 0..3i64)
            .prop_map(|(target, resource, day, hour)| Op::Book { target, resource, day, hour }),
        1 => (any::<usize>(), 0..RESOURCES.len()).prop_map(|(target, resource)| Op::Assign { target, resource }),
        1 => any::<usize>().prop_map(|booking| Op::Cancel { booking }),
        2 => any::<usize>().prop_map(|booking| Op::CheckIn { booking }),
    ]
}

#[derive(Debug, Clone)]
pub(super) struct ModelPerson {
    id: String,
    user_name: String,
    department: usize,
    active: bool,
    deleted: bool,
    /// Group indexes, in join order.
    groups: Vec<usize>,
}

pub(super) struct World<'a> {
    pub(super) store: &'a dyn WorkplaceStore,
    pub(super) t: TenantId,
    pub(super) policies: CompiledPolicySet,
    pub(super) catalog: Catalog,
    pub(super) groups: Vec<String>,
    pub(super) people: Vec<ModelPerson>,
    pub(super) bookings: Vec<String>,
    pub(super) cancelled: BTreeSet<String>,
    /// Resource -> person.
    pub(super) assignments: BTreeMap<String, String>,
}

pub(super) fn fail(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

impl World<'_> {
    /// The person as the model knows them, for the oracle.
    fn person(&self, p: &ModelPerson) -> Person {
        let groups: Vec<Value> = p
            .groups
            .iter()
            .map(|&g| json!({"value": self.groups[g], "display": GROUPS[g], "type": "direct"}))
            .collect();
        let mut doc = person_doc(&p.user_name, DEPARTMENTS[p.department], p.active);
        doc["groups"] = Value::Array(groups);
        Person::from_scim(&p.id, doc, p.deleted)
    }

    fn pick(&self, target: usize) -> Option<usize> {
        (!self.people.is_empty()).then(|| target % self.people.len())
    }

    fn leave(&mut self, i: usize) {
        let id = self.people[i].id.clone();
        self.assignments.retain(|_, person| *person != id);
    }

    pub(super) async fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let s = self.store;
        let t = self.t;
        let ctx = idp("req-prop");
        match *op {
            Op::Create { department, active } => {
                let user_name = format!("u{}", self.people.len());
                let id = s
                    .create(
                        &t,
                        ResourceKind::User,
                        person_doc(&user_name, DEPARTMENTS[department], active),
                        &ctx,
                    )
                    .await
                    .map_err(fail)?
                    .id;
                self.people.push(ModelPerson {
                    id,
                    user_name,
                    department,
                    active,
                    deleted: false,
                    groups: Vec::new(),
                });
            }
            Op::SetActive {
                target,
                active,
                entra,
                stale,
            } => {
                let Some(i) = self.pick(target) else {
                    return Ok(());
                };
                let p = self.people[i].clone();
                let value = if entra {
                    json!(if active { "True" } else { "False" })
                } else {
                    json!(active)
                };
                let expected = if stale && !p.deleted { Some(0) } else { None };
                let out = patch(
                    s,
                    &t,
                    ResourceKind::User,
                    &p.id,
                    json!([{"op": "Replace", "path": "active", "value": value}]),
                    expected,
                    &ctx,
                )
                .await;
                match (out, p.deleted, stale) {
                    (Err(e), true, _) => prop_assert_eq!(e.status(), 404),
                    (Err(e), false, true) => prop_assert_eq!(e.status(), 412),
                    (Ok(_), false, false) => {
                        self.people[i].active = active;
                        if !active {
                            self.leave(i);
                        }
                    }
                    (out, _, _) => return Err(fail(format!("{op:?}: {out:?}"))),
                }
            }
            Op::Department { target, department } => {
                let Some(i) = self.pick(target) else {
                    return Ok(());
                };
                let p = self.people[i].clone();
                let out = patch(s, &t, ResourceKind::User, &p.id, json!([{"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": DEPARTMENTS[department]}]), None, &ctx).await;
                match out {
                    Ok(_) if !p.deleted => self.people[i].department = department,
                    Err(e) if p.deleted => prop_assert_eq!(e.status(), 404),
                    other => return Err(fail(format!("{op:?}: {other:?}"))),
                }
            }
            Op::Join { target, group } | Op::Leave { target, group } => {
                let Some(i) = self.pick(target) else {
                    return Ok(());
                };
                let p = self.people[i].clone();
                if p.deleted {
                    return Ok(());
                }
                let join = matches!(op, Op::Join { .. });
                let operation = if join {
                    json!({"op": "add", "path": "members", "value": [{"value": p.id}]})
                } else {
                    json!({"op": "remove", "path": format!("members[value eq \"{}\"]", p.id)})
                };
                patch(
                    s,
                    &t,
                    ResourceKind::Group,
                    &self.groups[group],
                    json!([operation]),
                    None,
                    &ctx,
                )
                .await
                .map_err(fail)?;
                let groups = &mut self.people[i].groups;
                if join && !groups.contains(&group) {
                    groups.push(group);
                } else if !join {
                    groups.retain(|g| *g != group);
                }
            }
            Op::Delete { target } => {
                let Some(i) = self.pick(target) else {
                    return Ok(());
                };
                let p = self.people[i].clone();
                let out = s.delete(&t, ResourceKind::User, &p.id, None, &ctx).await;
                match out {
                    Ok(()) if !p.deleted => {
                        self.people[i].deleted = true;
                        self.people[i].groups.clear();
                        self.leave(i);
                    }
                    Err(e) if p.deleted => prop_assert_eq!(e.status(), 404),
                    other => return Err(fail(format!("{op:?}: {other:?}"))),
                }
            }
            Op::Book {
                target,
                resource,
                day,
                hour,
            } => {
                let Some(i) = self.pick(target) else {
                    return Ok(());
                };
                let p = self.people[i].clone();
                let resource = RESOURCES[resource];
                let at = now();
                // Day 0 is a booking already in progress, which a check-in can put in use.
                let start = if day == 0 {
                    at - 600 - hour * 60
                } else {
                    at + day * DAY + hour * HOUR
                };
                let end = start + 2 * HOUR;
                // The oracle: the policy engine, fed with the model's view of the person and
                // the store's bookings.
                let theirs = s
                    .bookings(
                        &t,
                        &BookingFilter {
                            person: Some(p.id.clone()),
                            limit: 1_000,
                            ..Default::default()
                        },
                    )
                    .await
                    .map_err(fail)?;
                let on_resource = s
                    .bookings(
                        &t,
                        &BookingFilter {
                            resource: Some(resource.into()),
                            limit: 1_000,
                            ..Default::default()
                        },
                    )
                    .await
                    .map_err(fail)?;
                let plain = |records: &[BookingRecord]| {
                    records
                        .iter()
                        .map(|r| r.booking.clone())
                        .collect::<Vec<_>>()
                };
                let thing = self
                    .catalog
                    .resource(resource)
                    .ok_or_else(|| fail("catalog"))?;
                let decision = workplace_policy::evaluate(
                    &self.policies,
                    &self.catalog,
                    &self.person(&p),
                    thing,
                    BookingRequest { start, end },
                    at,
                    &plain(&theirs),
                );
                let room = workplace_policy::has_capacity(thing, start, end, &plain(&on_resource));
                let out = s
                    .book(&t, request(&p.id, resource, start, end), &admin(), at)
                    .await;
                match out {
                    Err(e) if p.deleted => prop_assert_eq!(e.status(), 404),
                    Ok(BookingOutcome::Done(record)) => {
                        prop_assert!(p.active && !p.deleted, "{} booked while not active", p.id);
                        prop_assert!(
                            decision.allowed && room,
                            "accepted against the policies: {:?}",
                            decision
                        );
                        self.bookings.push(record.booking.id.clone());
                    }
                    Ok(BookingOutcome::Refused(d)) => {
                        prop_assert!(
                            !decision.allowed,
                            "refused what the policies allow: {:?}",
                            d
                        );
                        prop_assert_eq!(d, decision);
                    }
                    Ok(BookingOutcome::Full { .. }) => prop_assert!(decision.allowed && !room),
                    other => return Err(fail(format!("{op:?}: {other:?}"))),
                }
            }
            Op::Assign { target, resource } => {
                let Some(i) = self.pick(target) else {
                    return Ok(());
                };
                let p = self.people[i].clone();
                let resource = RESOURCES[resource];
                let out = s.assign(&t, &p.id, resource, &admin(), now()).await;
                match out {
                    Ok(_) => {
                        prop_assert!(
                            p.active && !p.deleted && !self.assignments.contains_key(resource)
                        );
                        self.assignments.insert(resource.into(), p.id.clone());
                    }
                    Err(e) => prop_assert!(
                        (p.deleted && e.status() == 404)
                            || (!p.deleted
                                && (!p.active || self.assignments.contains_key(resource))
                                && e.status() == 409),
                        "{op:?}: {e}"
                    ),
                }
            }
            Op::Cancel { booking } => {
                if self.bookings.is_empty() {
                    return Ok(());
                }
                let id = self.bookings[booking % self.bookings.len()].clone();
                let before = s
                    .booking(&t, &id)
                    .await
                    .map_err(fail)?
                    .ok_or_else(|| fail("lost"))?;
                let out = s
                    .cancel_booking(
                        &t,
                        &id,
                        Actor::Administrator("admin".into()),
                        "test",
                        &admin(),
                        now(),
                    )
                    .await;
                match out {
                    Ok(record) => prop_assert_eq!(status(&record), "cancelled"),
                    Err(e) => {
                        prop_assert!(e.status() == 409 && status(&before) == "completed", "{}", e)
                    }
                }
            }
            Op::CheckIn { booking } => {
                if self.bookings.is_empty() {
                    return Ok(());
                }
                let id = self.bookings[booking % self.bookings.len()].clone();
                let before = s
                    .booking(&t, &id)
                    .await
                    .map_err(fail)?
                    .ok_or_else(|| fail("lost"))?;
                let p = self
                    .people
                    .iter()
                    .find(|p| p.id == before.booking.person)
                    .cloned()
                    .ok_or_else(|| fail("a booking of nobody"))?;
                match s.check_in(&t, &id, &admin(), now()).await {
                    Ok(BookingOutcome::Done(record)) => {
                        prop_assert!(
                            p.active && !p.deleted,
                            "{} checked in while not active",
                            p.id
                        );
                        prop_assert_eq!(
                            (status(&before), status(&record)),
                            ("booked", "checkedIn")
                        );
                    }
                    Ok(BookingOutcome::Refused(d)) => prop_assert!(!d.allowed),
                    Ok(full) => return Err(fail(format!("{op:?}: {full:?}"))),
                    Err(e) => prop_assert_eq!(e.status(), 409, "{}", e),
                }
            }
        }
        Ok(())
    }

    /// No inactive or former person holds a live booking that has not ended (future or in
    /// progress) or an assignment; every live future booking of an active person is one the
    /// rules let them have; cancelled bookings stay cancelled; assignments are the model's.
    pub(super) async fn check(&mut self) -> Result<(), TestCaseError> {
        let s = self.store;
        let at = now();
        for p in &self.people {
            let theirs = s
                .bookings(
                    &self.t,
                    &BookingFilter {
                        person: Some(p.id.clone()),
                        ends_after: Some(at),
                        limit: 1_000,
                        ..Default::default()
                    },
                )
                .await
                .map_err(fail)?;
            for record in theirs.iter().filter(|r| r.booking.is_live()) {
                prop_assert!(
                    p.active && !p.deleted,
                    "{} holds {:?} while not active",
                    p.id,
                    record
                );
                if record.booking.start <= at {
                    // In progress: a change of rights leaves it alone.
                    continue;
                }
                let allowed = match record.booking.resource.as_str() {
                    "d1" => DEPARTMENTS[p.department] == "Marketing",
                    "p1" => p.groups.contains(&0),
                    "boardroom" => false,
                    _ => true,
                };
                prop_assert!(
                    allowed,
                    "{} holds {:?}, which the rules no longer allow",
                    p.id,
                    record
                );
            }
        }
        let held = s.assignments(&self.t, None).await.map_err(fail)?;
        let held: BTreeMap<String, String> =
            held.into_iter().map(|a| (a.resource, a.person)).collect();
        prop_assert_eq!(&held, &self.assignments);
        for id in &self.bookings {
            let record = s
                .booking(&self.t, id)
                .await
                .map_err(fail)?
                .ok_or_else(|| fail("lost"))?;
            if self.cancelled.contains(id) {
                prop_assert_eq!(status(&record), "cancelled", "un-cancelled");
            } else if status(&record) == "cancelled" {
                self.cancelled.insert(id.clone());
            }
        }
        Ok(())
    }
}
