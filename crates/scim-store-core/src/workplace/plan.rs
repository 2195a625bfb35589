//! The backend-neutral half of every workplace write: given what a backend loaded inside its
//! transaction, decide (with [`workplace_policy`]) and say exactly which rows to write and
//! which feed entries to append. Backends only load and write; they never decide, so SQLite
//! and PostgreSQL cannot drift apart.

use super::{
    BookingFlag, BookingOutcome, BookingRecord, FeedSubject, NewBooking, PlaceChange, PlaceKind,
    PlaceRecord, WorkplaceConfig,
};
use crate::error::{Result, StoreError};
use scim_schema::{ResourceSchema, ScimType};
use serde_json::{Value, json};
use std::collections::HashMap;
use workplace_policy::{
    Action, Actor, Assignment, Booking, BookingStatus, CascadeContext, Catalog, Command,
    CompiledPolicySet, Decision, Effects, Floor, Neighbourhood, Person, PolicyError, Preview,
    Resource, Site, Timestamp, evaluate, has_capacity, on_person_change,
};

/// The actor recorded on the feed for cascades.
pub const SYSTEM_ACTOR: &str = "system";

/// How long before its start a booking may be checked in.
pub const CHECK_IN_EARLY_SECONDS: i64 = 15 * 60;

/// The most entries a list, the feed or the audit log returns at once.
pub const MAX_PAGE: usize = 1_000;

/// A feed entry to append, after the write's own entries, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedDraft {
    /// What it is about.
    pub subject: FeedSubject,
    /// Its id.
    pub id: String,
    /// What happened.
    pub op: &'static str,
    /// The subject's version after it, where it has one.
    pub version: Option<u64>,
    /// The entry's detail.
    pub detail: Value,
}

/// The rows a cascade changes and the feed entries it appends.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CascadeWrites {
    /// Bookings to rewrite (status, flag, version), each as it must now be stored.
    pub bookings: Vec<BookingRecord>,
    /// Assignments to delete.
    pub released: Vec<Assignment>,
    /// A former person whose history must be anonymised: replace their id in their bookings
    /// with [`anonymised_id`].
    pub anonymise: Option<String>,
    /// Feed entries, one per effect.
    pub feed: Vec<FeedDraft>,
}

impl CascadeWrites {
    /// Whether the cascade changes nothing.
    pub fn is_empty(&self) -> bool {
        self.bookings.is_empty() && self.released.is_empty() && self.anonymise.is_none()
    }

    /// Appends another cascade's writes (several people changed by one Group write).
    pub fn extend(&mut self, other: CascadeWrites) {
        self.bookings.extend(other.bookings);
        self.released.extend(other.released);
        if other.anonymise.is_some() {
            self.anonymise = other.anonymise;
        }
        self.feed.extend(other.feed);
    }
}

/// The id a former person's history is anonymised to: stable per person (so their bookings
/// stay grouped), revealing nothing of the SCIM id.
pub fn anonymised_id(person: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(person.as_bytes());
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("anonymised-{hex}")
}

/// The anonymisation of a former person's history ([`Command::AnonymisePerson`], when the
/// tenant's `former_history` is `anonymise`): wherever the workplace history names the person,
/// their SCIM id becomes [`anonymised_id`] (so their bookings stay grouped under one opaque id,
/// and the report counts them once as former), and a reason the policy engine wrote, which
/// begins with the person's label (their `userName`), begins with that id instead. Backends
/// apply it, in the deletion's transaction, to every booking of the person, to every feed entry
/// whose `detail.person` is the person, and to the cascade's own new rows and entries
/// ([`Anonymisation::cascade`]).
///
/// Not rewritten: the SCIM changes of the User itself (`created`, `patched`, `deleted`), which
/// keep the SCIM id the identity provider knows (they are the directory's history, not the
/// workplace's), and free text that merely mentions the person elsewhere than at the start of
/// a reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anonymisation {
    /// The person's SCIM id.
    pub person: String,
    /// The id their history is filed under from now on.
    pub anonymous: String,
    /// Their label as the policy engine's reasons begin with it: their last `userName`, else
    /// their id.
    pub label: String,
}

impl Anonymisation {
    /// The anonymisation a cascade's writes call for, if any: `document` is the person's last
    /// document (for their label).
    pub fn of(writes: &CascadeWrites, document: Option<&Value>) -> Option<Anonymisation> {
        let person = writes.anonymise.as_ref()?;
        let label = document
            .and_then(|d| d.get("userName"))
            .and_then(Value::as_str)
            .unwrap_or(person);
        Some(Anonymisation {
            person: person.clone(),
            anonymous: anonymised_id(person),
            label: label.to_owned(),
        })
    }

    /// Rewrites a reason that begins with the person's label (or id); whether it changed.
    fn reason(&self, text: &mut String) -> bool {
        for name in [&self.label, &self.person] {
            if !name.is_empty()
                && let Some(rest) = text.strip_prefix(name.as_str())
                && rest.starts_with(' ')
            {
                *text = format!("{}{rest}", self.anonymous);
                return true;
            }
        }
        false
    }

    /// Rewrites a booking record of the person: its person, who cancelled it if they did, and
    /// the reasons of its cancellation and flag. Whether anything changed.
    pub fn booking(&self, record: &mut BookingRecord) -> bool {
        let mut changed = false;
        if record.booking.person == self.person {
            record.booking.person.clone_from(&self.anonymous);
            changed = true;
        }
        if let BookingStatus::Cancelled { by, reason, .. } = &mut record.booking.status {
            if let Actor::Person(id) = by
                && *id == self.person
            {
                id.clone_from(&self.anonymous);
                changed = true;
            }
            changed |= self.reason(reason);
        }
        if let Some(flag) = &mut record.flag {
            changed |= self.reason(&mut flag.reason);
        }
        changed
    }

    /// Rewrites a feed entry's detail (`person`, `by` when the person cancelled, `reason`).
    /// Whether anything changed.
    pub fn detail(&self, detail: &mut Value) -> bool {
        let Some(object) = detail.as_object_mut() else {
            return false;
        };
        let mut changed = false;
        if let Some(person) = object.get_mut("person")
            && person.as_str() == Some(self.person.as_str())
        {
            *person = Value::String(self.anonymous.clone());
            changed = true;
        }
        // `by` is an `Actor`: {"type": "person", "id": ...}.
        if let Some(by) = object.get_mut("by").and_then(Value::as_object_mut)
            && by.get("type").and_then(Value::as_str) == Some("person")
            && let Some(id) = by.get_mut("id")
            && id.as_str() == Some(self.person.as_str())
        {
            *id = Value::String(self.anonymous.clone());
            changed = true;
        }
        if let Some(Value::String(reason)) = object.get_mut("reason") {
            changed |= self.reason(reason);
        }
        changed
    }

    /// Rewrites a cascade's own rows and feed entries, which were built naming the person
    /// before the anonymisation was decided, so that what the cascade writes names nobody.
    pub fn cascade(&self, writes: &mut CascadeWrites) {
        for record in &mut writes.bookings {
            self.booking(record);
        }
        for draft in &mut writes.feed {
            self.detail(&mut draft.detail);
        }
    }
}

/// A policy error as the store reports it: 400 `invalidValue`, naming the rule and the
/// problem.
pub fn policy_error(error: PolicyError) -> StoreError {
    StoreError::Invalid {
        scim_type: ScimType::InvalidValue,
        detail: error.to_string(),
    }
}

/// Compiles the tenant's policies against its User schema.
pub fn compile(config: &WorkplaceConfig, user: &ResourceSchema) -> Result<CompiledPolicySet> {
    CompiledPolicySet::compile_with(&config.policies, user).map_err(policy_error)
}

/// Builds the catalog from its stored entries (any order). Fails as [`Catalog::new`] does, as
/// a 400 naming the entry.
pub fn catalog(records: &[PlaceRecord]) -> Result<Catalog> {
    let mut sites = Vec::new();
    let mut floors = Vec::new();
    let mut neighbourhoods = Vec::new();
    let mut resources = Vec::new();
    for record in records {
        let bad = |e: serde_json::Error| StoreError::Invalid {
            scim_type: ScimType::InvalidValue,
            detail: format!("{} {:?}: {e}", record.kind.as_str(), record.id),
        };
        let document = record.document.clone();
        match record.kind {
            PlaceKind::Site => sites.push(serde_json::from_value::<Site>(document).map_err(bad)?),
            PlaceKind::Floor => {
                floors.push(serde_json::from_value::<Floor>(document).map_err(bad)?)
            }
            PlaceKind::Neighbourhood => {
                neighbourhoods.push(serde_json::from_value::<Neighbourhood>(document).map_err(bad)?)
            }
            PlaceKind::Resource => {
                resources.push(serde_json::from_value::<Resource>(document).map_err(bad)?)
            }
        }
    }
    Catalog::new(sites, floors, neighbourhoods, resources).map_err(policy_error)
}

/// Checks a catalog entry submitted through the API and returns it in canonical form (the
/// typed struct serialised back, so stored documents have one shape). `id` is the id in the
/// URL; the document's `id`, if present, must be the same.
pub fn canonical_place(kind: PlaceKind, id: &str, mut document: Value) -> Result<Value> {
    let Some(object) = document.as_object_mut() else {
        return Err(StoreError::Invalid {
            scim_type: ScimType::InvalidSyntax,
            detail: format!("a {} must be a JSON object", kind.as_str()),
        });
    };
    match object.get("id") {
        None => {
            object.insert("id".into(), Value::String(id.to_owned()));
        }
        Some(Value::String(given)) if given == id => {}
        Some(other) => {
            return Err(StoreError::Invalid {
                scim_type: ScimType::Mutability,
                detail: format!(
                    "{} id {other} does not match {id:?}, the id in the path",
                    kind.as_str()
                ),
            });
        }
    }
    // `version` is what GET serves beside the document: a client that sends back what it read
    // must not be refused for it. The version a write is conditioned on is `If-Match`.
    object.remove("version");
    let given: Vec<String> = object
        .iter()
        .filter(|(_, value)| !value.is_null())
        .map(|(key, _)| key.clone())
        .collect();
    let bad = |e: serde_json::Error| StoreError::Invalid {
        scim_type: ScimType::InvalidValue,
        detail: format!("{} {id:?}: {e}", kind.as_str()),
    };
    let canonical = match kind {
        PlaceKind::Site => {
            serde_json::to_value(serde_json::from_value::<Site>(document).map_err(bad)?)
        }
        PlaceKind::Floor => {
            serde_json::to_value(serde_json::from_value::<Floor>(document).map_err(bad)?)
        }
        PlaceKind::Neighbourhood => {
            serde_json::to_value(serde_json::from_value::<Neighbourhood>(document).map_err(bad)?)
        }
        PlaceKind::Resource => {
            serde_json::to_value(serde_json::from_value::<Resource>(document).map_err(bad)?)
        }
    };
    let canonical = canonical
        .map_err(|e| StoreError::backend(format!("serialising a {}: {e}", kind.as_str())))?;
    // serde ignores members the model does not have; a typo (`strat`) must be a 400, not a
    // silently dropped member. The canonical form keeps every member given a value (only
    // absent optional members are left out), so a non-null member it lacks is unknown.
    if let Some(unknown) = given
        .iter()
        .find(|key| canonical.get(key.as_str()).is_none())
    {
        return Err(StoreError::Invalid {
            scim_type: ScimType::InvalidValue,
            detail: format!("{} {id:?}: unknown member {unknown:?}", kind.as_str()),
        });
    }
    Ok(canonical)
}

/// What writing the catalog entry `canonical` does when its current document is `current`
/// (`None`: it does not exist). Both backends decide with it, so that a replayed `PUT` is a
/// no-op (same version, nothing on the feed) and answered 200, not 201, on either.
pub fn place_change(current: Option<&Value>, canonical: &Value) -> PlaceChange {
    match current {
        None => PlaceChange::Created,
        Some(document) if document == canonical => PlaceChange::Unchanged,
        Some(_) => PlaceChange::Replaced,
    }
}

/// The person a stored User document describes (`document` with its derived `groups`, in the
/// order the person joined them); `deleted` for a User the write deletes.
pub fn person(id: &str, document: &Value, deleted: bool) -> Person {
    Person::from_scim(id, document.clone(), deleted)
}

/// The cascade of one person's change: `before` is their document before the write (`None`
/// if the write created them), `after` after it (`None` if the write deleted them; they are
/// then judged as former with their last document). `bookings` and `assignments` are theirs
/// (at least every live booking not yet ended, and every assignment).
pub fn person_cascade(
    context: &CascadeContext<'_>,
    id: &str,
    before: Option<&Value>,
    after: Option<&Value>,
    bookings: Vec<BookingRecord>,
    assignments: Vec<Assignment>,
    request_id: &str,
) -> CascadeWrites {
    let before_person = before.map(|doc| person(id, doc, false));
    let after_person = match (after, before) {
        (Some(doc), _) => person(id, doc, false),
        (None, Some(doc)) => person(id, doc, true),
        (None, None) => return CascadeWrites::default(),
    };
    let plain: Vec<Booking> = bookings.iter().map(|r| r.booking.clone()).collect();
    let effects = on_person_change(
        context,
        before_person.as_ref(),
        &after_person,
        &plain,
        &assignments,
        request_id,
    );
    apply(&effects, bookings, assignments, context.now)
}

/// Turns effects into rows and feed entries: applies them to the records (the reference
/// semantics of [`Effects::apply`]), keeps the bookings that changed with their version
/// bumped, the assignments released, and one feed entry per effect that changed something.
pub fn apply(
    effects: &Effects,
    bookings: Vec<BookingRecord>,
    assignments: Vec<Assignment>,
    now: Timestamp,
) -> CascadeWrites {
    let mut writes = CascadeWrites::default();
    if effects.is_empty() {
        return writes;
    }
    let mut records: Vec<BookingRecord> = bookings;
    let mut changed = vec![false; records.len()];
    let position: HashMap<String, usize> = records
        .iter()
        .enumerate()
        .map(|(i, r)| (r.booking.id.clone(), i))
        .collect();
    let mut held: Vec<Assignment> = assignments;
    for action in effects.iter() {
        let mut plain: Vec<Booking> = Vec::new();
        let index = match &action.command {
            Command::CancelBooking { booking, .. }
            | Command::EndBooking { booking, .. }
            | Command::FlagBooking { booking, .. } => position.get(booking).copied(),
            _ => None,
        };
        match &action.command {
            Command::CancelBooking { .. } | Command::EndBooking { .. } => {
                let Some(i) = index else { continue };
                let Some(record) = records.get_mut(i) else {
                    continue;
                };
                plain.push(record.booking.clone());
                let single = Effects {
                    items: vec![action.clone()],
                };
                single.apply(&mut plain, &mut Vec::new(), now);
                let Some(after) = plain.pop() else { continue };
                if after == record.booking {
                    continue;
                }
                record.booking = after;
                changed[i] = true;
                let op = match action.command {
                    Command::EndBooking { .. } => "ended",
                    _ => "cancelled",
                };
                writes.feed.push(booking_draft(record, op, Some(action)));
            }
            Command::FlagBooking { .. } => {
                let Some(i) = index else { continue };
                let Some(record) = records.get_mut(i) else {
                    continue;
                };
                if !record.booking.is_live() {
                    continue;
                }
                record.flag = Some(BookingFlag {
                    reason: action.reason.clone(),
                    cause: action.cause.clone(),
                    at: now,
                });
                changed[i] = true;
                writes
                    .feed
                    .push(booking_draft(record, "flagged", Some(action)));
            }
            Command::ReleaseAssignment { assignment, .. } => {
                if let Some(at) = held.iter().position(|a| &a.id == assignment) {
                    let released = held.remove(at);
                    writes.feed.push(FeedDraft {
                        subject: FeedSubject::Assignment,
                        id: released.id.clone(),
                        op: "released",
                        version: None,
                        detail: json!({
                            "person": released.person,
                            "resource": released.resource,
                            "reason": action.reason,
                            "cause": action.cause,
                        }),
                    });
                    writes.released.push(released);
                }
            }
            Command::AnonymisePerson { person } => {
                writes.anonymise = Some(person.clone());
                writes.feed.push(FeedDraft {
                    subject: FeedSubject::User,
                    id: anonymised_id(person),
                    op: "anonymised",
                    version: None,
                    detail: json!({"reason": action.reason, "cause": action.cause}),
                });
            }
        }
    }
    for (record, changed) in records.into_iter().zip(changed) {
        if changed {
            let mut record = record;
            record.version += 1;
            writes.bookings.push(record);
        }
    }
    // The drafts carry the versions the records now have.
    for draft in &mut writes.feed {
        if draft.subject == FeedSubject::Booking {
            draft.version = writes
                .bookings
                .iter()
                .find(|r| r.booking.id == draft.id)
                .map(|r| r.version);
        }
    }
    writes
}

/// The feed entry of a policy change: what the change did, as its preview says.
pub fn policies_changed(version: u64, preview: &Preview) -> FeedDraft {
    FeedDraft {
        subject: FeedSubject::Policies,
        id: "policies".into(),
        op: "changed",
        version: Some(version),
        detail: json!({
            "summary": preview.summary(),
            "mode": preview.mode,
            "cancelled": preview.cancelled.len(),
            "flagged": preview.flagged.len(),
            "peopleAffected": preview.people_affected,
        }),
    }
}

/// The feed entry of a catalog entry written (`created` when it did not exist), carrying its
/// document.
pub fn place_written(
    kind: PlaceKind,
    id: &str,
    created: bool,
    version: u64,
    document: Value,
) -> FeedDraft {
    FeedDraft {
        subject: kind.subject(),
        id: id.to_owned(),
        op: if created { "created" } else { "replaced" },
        version: Some(version),
        detail: document,
    }
}

/// The feed entry of a catalog entry deleted at `version`.
pub fn place_deleted(kind: PlaceKind, id: &str, version: u64) -> FeedDraft {
    FeedDraft {
        subject: kind.subject(),
        id: id.to_owned(),
        op: "deleted",
        version: Some(version),
        detail: Value::Null,
    }
}

/// The feed entry of a new permanent assignment.
pub fn assigned(assignment: &Assignment) -> FeedDraft {
    FeedDraft {
        subject: FeedSubject::Assignment,
        id: assignment.id.clone(),
        op: "assigned",
        version: None,
        detail: json!({
            "person": assignment.person,
            "resource": assignment.resource,
            "since": assignment.since,
        }),
    }
}

/// The feed entry of an assignment released through the API by `actor` (a cascade's
/// releases carry their cause instead: see [`apply`]).
pub fn released(id: &str, person: &str, resource: &str, actor: &str) -> FeedDraft {
    FeedDraft {
        subject: FeedSubject::Assignment,
        id: id.to_owned(),
        op: "released",
        version: None,
        detail: json!({
            "person": person,
            "resource": resource,
            "reason": format!("released by {actor}"),
        }),
    }
}

/// A booking's feed entry: who, what, when, and for a cascade why.
pub fn booking_draft(
    record: &BookingRecord,
    op: &'static str,
    action: Option<&Action>,
) -> FeedDraft {
    let booking = &record.booking;
    let mut detail = json!({
        "person": booking.person,
        "resource": booking.resource,
        "start": booking.start,
        "end": booking.end,
    });
    if let (Some(action), Some(object)) = (action, detail.as_object_mut()) {
        object.insert("reason".into(), Value::String(action.reason.clone()));
        object.insert(
            "cause".into(),
            serde_json::to_value(&action.cause).unwrap_or(Value::Null),
        );
    }
    FeedDraft {
        subject: FeedSubject::Booking,
        id: booking.id.clone(),
        op,
        version: Some(record.version),
        detail,
    }
}

/// Decides a booking request: the policies first, then the resource's room. `existing` are the
/// person's bookings (for the limits) and `on_resource` the live bookings of the resource
/// overlapping the interval (for the capacity); either may hold more.
#[allow(clippy::too_many_arguments)]
pub fn decide_booking(
    policies: &CompiledPolicySet,
    catalog: &Catalog,
    person: &Person,
    request: &NewBooking,
    now: Timestamp,
    existing: &[Booking],
    on_resource: &[Booking],
) -> Result<std::result::Result<(), BookingOutcome>> {
    let resource = catalog
        .resource(&request.resource)
        .ok_or_else(|| not_found("resource", &request.resource))?;
    let decision: Decision = evaluate(
        policies,
        catalog,
        person,
        resource,
        request.request(),
        now,
        existing,
    );
    if !decision.allowed {
        return Ok(Err(BookingOutcome::Refused(decision)));
    }
    if !has_capacity(resource, request.start, request.end, on_resource) {
        return Ok(Err(BookingOutcome::Full {
            capacity: resource.capacity,
        }));
    }
    Ok(Ok(()))
}

/// The new booking's record, version 1.
pub fn new_booking(id: String, request: NewBooking, now: Timestamp) -> BookingRecord {
    BookingRecord {
        booking: Booking {
            id,
            person: request.person,
            resource: request.resource,
            start: request.start,
            end: request.end,
            status: BookingStatus::Booked,
            created_at: now,
        },
        flag: None,
        version: 1,
    }
}

/// A new, time-ordered id (`b-` or `a-` then 16 hex digits of nanoseconds and 8 random): ids
/// sort in creation order, so listings by id are listings by age.
pub fn new_id(prefix: &str) -> Result<String> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let mut random = [0u8; 4];
    // getrandom::Error is a std error only with its `std` feature, which this crate does not need.
    getrandom::fill(&mut random).map_err(|e| StoreError::backend(format!("getrandom: {e}")))?;
    Ok(format!(
        "{prefix}-{:016x}{:08x}",
        u64::try_from(nanos).unwrap_or(u64::MAX),
        u32::from_be_bytes(random)
    ))
}

/// A cancellation by a person or an administrator: the record as it must now be stored, or
/// `None` if it is already cancelled (cancelling twice is harmless). A completed booking is a
/// conflict.
pub fn cancel(
    record: &BookingRecord,
    by: Actor,
    reason: &str,
    now: Timestamp,
) -> Result<Option<BookingRecord>> {
    match &record.booking.status {
        BookingStatus::Cancelled { .. } => Ok(None),
        BookingStatus::Completed { .. } => Err(conflict(format!(
            "booking {:?} is completed and cannot be cancelled",
            record.booking.id
        ))),
        BookingStatus::Booked | BookingStatus::CheckedIn => {
            let mut updated = record.clone();
            updated.booking.status = BookingStatus::Cancelled {
                by,
                reason: reason.to_owned(),
                at: now,
                cause: None,
            };
            updated.version += 1;
            Ok(Some(updated))
        }
    }
}

/// A check-in: allowed for a booked booking whose interval contains `now` (or starts within
/// [`CHECK_IN_EARLY_SECONDS`]), of a person who may still book it now. `existing` are the
/// person's other bookings (for the limits).
pub fn check_in(
    policies: &CompiledPolicySet,
    catalog: &Catalog,
    person: &Person,
    record: &BookingRecord,
    now: Timestamp,
    existing: &[Booking],
) -> Result<BookingOutcome> {
    let booking = &record.booking;
    if booking.status != BookingStatus::Booked {
        return Err(conflict(format!(
            "booking {:?} is {}, only a booked booking can be checked in",
            booking.id,
            status_name(&booking.status)
        )));
    }
    if now < booking.start - CHECK_IN_EARLY_SECONDS || now >= booking.end {
        return Err(conflict(format!(
            "booking {:?} runs from {} to {}: check-in opens {} minutes before the start and \
             closes at the end (now is {now})",
            booking.id,
            booking.start,
            booking.end,
            CHECK_IN_EARLY_SECONDS / 60
        )));
    }
    let resource = catalog
        .resource(&booking.resource)
        .ok_or_else(|| not_found("resource", &booking.resource))?;
    // Judged as a request for what is left of the booking, ignoring the booking itself (it
    // must not count against its own limits).
    let others: Vec<Booking> = existing
        .iter()
        .filter(|b| b.id != booking.id)
        .cloned()
        .collect();
    let request = workplace_policy::BookingRequest {
        start: booking.start.max(now),
        end: booking.end,
    };
    let mut decision = evaluate(policies, catalog, person, resource, request, now, &others);
    if !decision.allowed {
        // Limits measured from "now" (days ahead, duration) do not apply to a booking made
        // earlier; re-check as of when it was made, as cascades do, unless the person is not
        // active or a deny rule fires.
        let as_made = evaluate(
            policies,
            catalog,
            person,
            resource,
            booking_request(booking),
            booking.created_at,
            &others,
        );
        if as_made.allowed && person.is_active() {
            decision = as_made;
        }
    }
    if !decision.allowed {
        return Ok(BookingOutcome::Refused(decision));
    }
    let mut updated = record.clone();
    updated.booking.status = BookingStatus::CheckedIn;
    updated.version += 1;
    Ok(BookingOutcome::Done(Box::new(updated)))
}

fn booking_request(booking: &Booking) -> workplace_policy::BookingRequest {
    workplace_policy::BookingRequest {
        start: booking.start,
        end: booking.end,
    }
}

/// The status's stored name: `booked`, `checkedIn`, `cancelled`, `completed`.
pub fn status_name(status: &BookingStatus) -> &'static str {
    match status {
        BookingStatus::Booked => "booked",
        BookingStatus::CheckedIn => "checkedIn",
        BookingStatus::Cancelled { .. } => "cancelled",
        BookingStatus::Completed { .. } => "completed",
    }
}

/// Every status name, in life order.
pub const STATUS_NAMES: [&str; 4] = ["booked", "checkedIn", "cancelled", "completed"];

/// A record's stored JSON (the whole record; backends also keep the columns they filter on).
pub fn booking_json(record: &BookingRecord) -> Result<String> {
    serde_json::to_string(record).map_err(|e| StoreError::backend(format!("booking JSON: {e}")))
}

/// A record from its stored JSON.
pub fn booking_from_json(text: &str) -> Result<BookingRecord> {
    serde_json::from_str(text).map_err(|e| StoreError::backend_error("stored booking", e))
}

/// 404 for a workplace object.
pub fn not_found(what: &str, id: &str) -> StoreError {
    StoreError::WorkplaceNotFound {
        what: what.to_owned(),
        id: id.to_owned(),
    }
}

/// 409 for a workplace write that contradicts the state.
pub fn conflict(detail: String) -> StoreError {
    StoreError::Conflict(detail)
}

/// What every cascade and booking decision of a tenant needs, built once per *generation*: the
/// configuration, its compiled policies and the catalog. Backends keep a per-tenant
/// generation counter that every policy or catalog write bumps in its transaction, and rebuild
/// a tenant's context only when the counter moved, so the hot paths never recompile 1,000
/// rules or re-read the catalog.
#[derive(Debug)]
pub struct TenantContext {
    /// The generation this was built at.
    pub generation: u64,
    /// The version of the tenant's schemas its policies were compiled against
    /// ([`crate::TenantSchemas::version`]).
    pub schemas_version: u64,
    /// The policies and settings.
    pub config: WorkplaceConfig,
    /// The compiled policies.
    pub policies: CompiledPolicySet,
    /// The catalog.
    pub catalog: Catalog,
}

impl TenantContext {
    /// Builds a tenant's context from what a backend loaded.
    pub fn build(
        generation: u64,
        config: WorkplaceConfig,
        places: &[PlaceRecord],
        schemas: &crate::TenantSchemas,
    ) -> Result<TenantContext> {
        let policies = compile(&config, schemas.resources.get(crate::ResourceKind::User))?;
        let catalog = catalog(places)?;
        Ok(TenantContext {
            generation,
            schemas_version: schemas.version,
            config,
            policies,
            catalog,
        })
    }

    /// Whether the tenant anonymises former people (`formerHistory: anonymise`): then a
    /// deleted person's provisioning log entries are scrubbed, whether or not they had
    /// workplace history to anonymise.
    pub fn anonymises_former_people(&self) -> bool {
        self.config.anonymises_former_people()
    }

    /// The cascade context at `now`.
    pub fn cascade(&self, now: Timestamp) -> CascadeContext<'_> {
        CascadeContext {
            policies: &self.policies,
            catalog: &self.catalog,
            settings: self.config.settings,
            now,
        }
    }
}

/// Tenant contexts by tenant, each valid for one generation.
#[derive(Debug, Default)]
pub struct ContextCache {
    entries: std::sync::Mutex<HashMap<i64, std::sync::Arc<TenantContext>>>,
}

impl ContextCache {
    /// The cached context of `tenant` if it is at `generation` and was compiled against
    /// version `schemas_version` of the tenant's schemas.
    pub fn get(
        &self,
        tenant: crate::TenantId,
        generation: u64,
        schemas_version: u64,
    ) -> Option<std::sync::Arc<TenantContext>> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        entries
            .get(&tenant.key())
            .filter(|c| c.generation == generation && c.schemas_version == schemas_version)
            .cloned()
    }

    /// Caches `context` for `tenant` (replacing an older generation, never a newer one).
    pub fn put(&self, tenant: crate::TenantId, context: std::sync::Arc<TenantContext>) {
        let mut entries = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let keep_existing = entries
            .get(&tenant.key())
            .is_some_and(|c| c.generation > context.generation);
        if !keep_existing {
            entries.insert(tenant.key(), context);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use workplace_policy::{CascadeSettings, Cause, PolicySet, Trigger};

    fn record(id: &str, start: Timestamp) -> BookingRecord {
        new_booking(
            id.into(),
            NewBooking {
                person: "u1".into(),
                resource: "d1".into(),
                start,
                end: start + 3600,
            },
            0,
        )
    }

    fn context_parts() -> (CompiledPolicySet, Catalog) {
        let policies: PolicySet = serde_json::from_value(json!({
            "rules": [{"id": "all", "name": "Everyone", "effect": "allow"}],
            "default": "deny"
        }))
        .expect("policy JSON");
        let records = vec![
            PlaceRecord {
                kind: PlaceKind::Site,
                id: "lon".into(),
                document: json!({"id": "lon", "name": "London"}),
                version: 1,
            },
            PlaceRecord {
                kind: PlaceKind::Resource,
                id: "d1".into(),
                document: json!({"id": "d1", "kind": "desk", "site": "lon", "name": "D1", "capacity": 1}),
                version: 1,
            },
        ];
        (
            CompiledPolicySet::compile(&policies).expect("compiles"),
            catalog(&records).expect("catalog"),
        )
    }

    #[test]
    fn deactivation_cancels_future_bookings_and_reports_each_on_the_feed() {
        let (policies, catalog) = context_parts();
        let context = CascadeContext {
            policies: &policies,
            catalog: &catalog,
            settings: CascadeSettings::default(),
            now: 1_000,
        };
        let writes = person_cascade(
            &context,
            "u1",
            Some(&json!({"userName": "a", "active": true})),
            Some(&json!({"userName": "a", "active": false})),
            vec![record("b1", 5_000), record("b2", 9_000)],
            vec![Assignment {
                id: "a1".into(),
                person: "u1".into(),
                resource: "d1".into(),
                since: 0,
            }],
            "req-7",
        );
        assert_eq!(writes.bookings.len(), 2);
        assert!(
            writes
                .bookings
                .iter()
                .all(|r| r.version == 2
                    && matches!(r.booking.status, BookingStatus::Cancelled { .. }))
        );
        assert_eq!(writes.released.len(), 1);
        let ops: Vec<&str> = writes.feed.iter().map(|d| d.op).collect();
        assert_eq!(ops, ["cancelled", "cancelled", "released"]);
        assert_eq!(writes.feed[0].version, Some(2));
        assert_eq!(writes.feed[0].detail["cause"]["requestId"], "req-7");
    }

    #[test]
    fn nothing_held_means_nothing_written() {
        let (policies, catalog) = context_parts();
        let context = CascadeContext {
            policies: &policies,
            catalog: &catalog,
            settings: CascadeSettings::default(),
            now: 1_000,
        };
        let writes = person_cascade(
            &context,
            "u1",
            Some(&json!({"active": true})),
            None,
            vec![],
            vec![],
            "r",
        );
        assert!(writes.is_empty());
    }

    #[test]
    fn flags_are_recorded_with_their_cause() {
        let effects = Effects {
            items: vec![Action {
                command: Command::FlagBooking {
                    booking: "b1".into(),
                    person: "u1".into(),
                },
                reason: "no longer allowed".into(),
                cause: Cause {
                    trigger: Trigger::PolicyChanged,
                    request_id: "r1".into(),
                    rule: Some("x".into()),
                },
            }],
        };
        let writes = apply(&effects, vec![record("b1", 5_000)], vec![], 10);
        assert_eq!(writes.bookings.len(), 1);
        assert_eq!(
            writes.bookings[0]
                .flag
                .as_ref()
                .map(|f| f.cause.rule.clone()),
            Some(Some("x".into()))
        );
        assert_eq!(writes.feed[0].op, "flagged");
    }

    #[test]
    fn cancelling_twice_is_harmless_and_completed_is_a_conflict() {
        let first = cancel(&record("b1", 5_000), Actor::System, "r", 1)
            .expect("cancels")
            .expect("changed");
        assert!(cancel(&first, Actor::System, "r", 2).expect("ok").is_none());
        let mut done = record("b2", 5_000);
        done.booking.status = BookingStatus::Completed { at: 9 };
        assert!(matches!(
            cancel(&done, Actor::System, "r", 3),
            Err(StoreError::Conflict(_))
        ));
    }

    #[test]
    fn anonymisation_rewrites_what_names_the_person_and_nothing_else() {
        let writes = CascadeWrites {
            anonymise: Some("u1".into()),
            ..CascadeWrites::default()
        };
        let document = json!({"userName": "hana@example.com"});
        let a = Anonymisation::of(&writes, Some(&document)).expect("asked for");
        assert!(Anonymisation::of(&CascadeWrites::default(), Some(&document)).is_none());
        let anonymous = anonymised_id("u1");

        let mut mine = record("b1", 5_000);
        mine.booking.status = BookingStatus::Cancelled {
            by: Actor::Person("u1".into()),
            reason: "hana@example.com changed plans".into(),
            at: 10,
            cause: None,
        };
        assert!(a.booking(&mut mine));
        assert_eq!(mine.booking.person, anonymous);
        assert_eq!(
            mine.booking.status,
            BookingStatus::Cancelled {
                by: Actor::Person(anonymous.clone()),
                reason: format!("{anonymous} changed plans"),
                at: 10,
                cause: None,
            }
        );
        assert!(!a.booking(&mut mine), "twice changes nothing");

        let mut detail = json!({
            "person": "u1",
            "by": {"type": "person", "id": "u1"},
            "reason": "hana@example.com was deleted: future booking cancelled",
        });
        assert!(a.detail(&mut detail));
        assert_eq!(
            detail,
            json!({
                "person": anonymous,
                "by": {"type": "person", "id": anonymous},
                "reason": format!("{anonymous} was deleted: future booking cancelled"),
            })
        );
        let mut others = json!({
            "person": "u2",
            "by": {"type": "administrator", "id": "u1"},
            "reason": "hana@example.company moved",
        });
        let before = others.clone();
        assert!(!a.detail(&mut others));
        assert_eq!(others, before);
    }

    #[test]
    fn ids_sort_in_creation_order() {
        let a = new_id("b").expect("id");
        let b = new_id("b").expect("id");
        assert!(a < b || a[..18] == b[..18], "{a} then {b}");
        assert_eq!(anonymised_id("u1"), anonymised_id("u1"));
        assert!(!anonymised_id("u1").contains("u1"));
    }
}
