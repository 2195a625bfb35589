//! What every workplace check builds on: a tenant with the catalog and the standard policies,
//! people and groups made by SCIM writes, bookings placed relative to the clock, and reading
//! the feed.

use crate::ENTERPRISE;
use scim_store_core::workplace::plan::status_name;
use scim_store_core::workplace::{
    BookingOutcome, BookingRecord, FeedEvent, FeedSubject, NewBooking, PlaceKind, WorkplaceStore,
};
use scim_store_core::{
    Members, PatchCall, PatchResult, PatchSettings, ResourceKind, TenantId, WriteContext,
};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use workplace_policy::{BookingStatus, CascadeSettings, PolicySet, Timestamp};

pub(crate) const HOUR: i64 = 3_600;
pub(crate) const DAY: i64 = 86_400;

/// The wall clock in Unix seconds: cascades run at their SCIM write's own time, so the checks
/// place bookings relative to it.
pub fn now() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

static TENANTS: AtomicU64 = AtomicU64::new(0);

pub(crate) async fn tenant(store: &dyn WorkplaceStore) -> TenantId {
    let n = TENANTS.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    store
        .create_tenant(&format!("wp-{n}-{nanos}"))
        .await
        .expect("create a tenant")
        .id
}

/// The workplace administrator's context.
pub(crate) fn admin() -> WriteContext {
    WriteContext {
        actor: "facilities".into(),
        request_id: Some("req-admin".into()),
        ..WriteContext::default()
    }
}

/// An identity provider's context for request `id`.
pub(crate) fn idp(request: &str) -> WriteContext {
    WriteContext {
        actor: "entra".into(),
        request_id: Some(request.into()),
        ..WriteContext::default()
    }
}

/// A User of `department`, active unless `active` says otherwise.
pub(crate) fn person_doc(user_name: &str, department: &str, active: bool) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "userName": user_name,
        "active": active,
        ENTERPRISE: {"department": department},
    })
}

pub(crate) async fn create_person(
    store: &dyn WorkplaceStore,
    t: &TenantId,
    user_name: &str,
    department: &str,
) -> String {
    store
        .create(
            t,
            ResourceKind::User,
            person_doc(user_name, department, true),
            &idp("req-create"),
        )
        .await
        .expect("create a person")
        .id
}

pub(crate) async fn create_group(
    store: &dyn WorkplaceStore,
    t: &TenantId,
    name: &str,
    members: &[&str],
) -> String {
    store
        .create(
            t,
            ResourceKind::Group,
            crate::group(name, members),
            &idp("req-group"),
        )
        .await
        .expect("create a group")
        .id
}

/// PATCH (RFC 7644 section 3.5.2) with these operations.
pub(crate) async fn patch(
    store: &dyn WorkplaceStore,
    t: &TenantId,
    kind: ResourceKind,
    id: &str,
    operations: Value,
    expected_version: Option<u64>,
    ctx: &WriteContext,
) -> scim_store_core::Result<PatchResult> {
    let message = json!({"schemas": [scim_patch::PATCH_OP_URN], "Operations": operations});
    let request =
        scim_patch::PatchRequest::from_json(&message, &scim_patch::PatchOptions::default())
            .expect("a valid PatchOp message");
    store
        .patch(
            t,
            PatchCall {
                kind,
                id,
                request: &request,
                settings: &PatchSettings::default(),
                expected_version,
                members: Members::Exclude,
            },
            ctx,
        )
        .await
}

/// The catalog every check uses: London, level 1, the Marketing corner on it, and
/// - `d1`, a desk in the Marketing corner; `d2`, an open desk;
/// - `boardroom` (capacity 1); `p1`, a parking space; `hub`, a phone booth for two.
pub(crate) async fn catalog(store: &dyn WorkplaceStore, t: &TenantId) {
    let c = admin();
    let entries = [
        (PlaceKind::Site, json!({"id": "lon", "name": "London"})),
        (
            PlaceKind::Floor,
            json!({"id": "l1", "site": "lon", "name": "Level 1"}),
        ),
        (
            PlaceKind::Neighbourhood,
            json!({"id": "mkt", "site": "lon", "floor": "l1", "name": "Marketing corner"}),
        ),
        (
            PlaceKind::Resource,
            json!({"id": "d1", "kind": "desk", "site": "lon", "floor": "l1", "neighbourhood": "mkt", "name": "Desk 1", "capacity": 1}),
        ),
        (
            PlaceKind::Resource,
            json!({"id": "d2", "kind": "desk", "site": "lon", "floor": "l1", "name": "Desk 2", "capacity": 1}),
        ),
        (
            PlaceKind::Resource,
            json!({"id": "boardroom", "kind": "room", "site": "lon", "floor": "l1", "name": "Boardroom", "capacity": 1}),
        ),
        (
            PlaceKind::Resource,
            json!({"id": "p1", "kind": "parking", "site": "lon", "name": "Space 1", "capacity": 1}),
        ),
        (
            PlaceKind::Resource,
            json!({"id": "hub", "kind": "phone-booth", "site": "lon", "floor": "l1", "name": "Hub", "capacity": 2}),
        ),
    ];
    for (kind, document) in entries {
        store
            .put_place(t, kind, document, None, &c)
            .await
            .expect("a consistent catalog entry");
    }
}

/// The policies every check starts from: Marketing may use the Marketing corner, everyone the
/// open desk and the hub (two bookings a week of those), badge holders (group `Parking`) may
/// park, directors may book the Boardroom; default deny.
pub(crate) fn standard_policies() -> PolicySet {
    serde_json::from_value(json!({
        "rules": [
            {"id": "mkt-desks", "name": "Marketing sit in their corner", "effect": "allow",
             "people": format!("{ENTERPRISE}:department eq \"Marketing\""),
             "resources": {"neighbourhoods": ["mkt"]}},
            {"id": "open-desks", "name": "Anyone may book the open desks", "effect": "allow",
             "resources": {"resources": ["d2", "hub"]},
             "limits": {"maxBookingsPerWeek": 2}},
            {"id": "parking", "name": "Parking badge holders may park", "effect": "allow",
             "people": "groups[display eq \"Parking\"]",
             "resources": {"kinds": ["parking"]}},
            {"id": "boardroom", "name": "Directors may book the Boardroom", "effect": "allow",
             "people": "title co \"Director\"",
             "resources": {"resources": ["boardroom"]}}
        ],
        "default": "deny"
    }))
    .expect("the standard policies")
}

/// A tenant with the catalog and the standard policies under `settings`.
pub(crate) async fn office(store: &dyn WorkplaceStore, settings: CascadeSettings) -> TenantId {
    let t = tenant(store).await;
    catalog(store, &t).await;
    store
        .set_policies(&t, standard_policies(), settings, None, &admin(), now())
        .await
        .expect("the standard policies compile");
    t
}

pub(crate) fn request(
    person: &str,
    resource: &str,
    start: Timestamp,
    end: Timestamp,
) -> NewBooking {
    NewBooking {
        person: person.into(),
        resource: resource.into(),
        start,
        end,
    }
}

/// Books, made at `at`, and expects it done.
pub(crate) async fn book_at(
    store: &dyn WorkplaceStore,
    t: &TenantId,
    person: &str,
    resource: &str,
    (start, end): (Timestamp, Timestamp),
    at: Timestamp,
) -> BookingRecord {
    match store
        .book(t, request(person, resource, start, end), &admin(), at)
        .await
        .expect("book")
    {
        BookingOutcome::Done(record) => *record,
        other => panic!("{person} booking {resource} at {start}: {other:?}"),
    }
}

/// Books now, and expects it done.
pub(crate) async fn book(
    store: &dyn WorkplaceStore,
    t: &TenantId,
    person: &str,
    resource: &str,
    slot: (Timestamp, Timestamp),
) -> BookingRecord {
    book_at(store, t, person, resource, slot, now()).await
}

/// Two hours starting `days` days from now (plus `hours`).
pub(crate) fn slot(days: i64, hours: i64) -> (Timestamp, Timestamp) {
    let start = now() + days * DAY + hours * HOUR;
    (start, start + 2 * HOUR)
}

pub(crate) async fn reload(store: &dyn WorkplaceStore, t: &TenantId, id: &str) -> BookingRecord {
    store
        .booking(t, id)
        .await
        .expect("read a booking")
        .expect("the booking exists")
}

pub(crate) fn status(record: &BookingRecord) -> &'static str {
    status_name(&record.booking.status)
}

pub(crate) fn cause_of(record: &BookingRecord) -> Option<workplace_policy::Cause> {
    match &record.booking.status {
        BookingStatus::Cancelled { cause, .. } => cause.clone(),
        _ => record.flag.as_ref().map(|f| f.cause.clone()),
    }
}

pub(crate) async fn feed(store: &dyn WorkplaceStore, t: &TenantId) -> Vec<FeedEvent> {
    store.feed(t, 0, 1_000).await.expect("read the feed")
}

/// The entries after the SCIM change of `subject`/`id` whose request is `request`, up to the
/// next entry of another request.
pub(crate) fn cascade_after(feed: &[FeedEvent], id: &str, request: &str) -> Vec<FeedEvent> {
    let Some(at) = feed.iter().rposition(|e| {
        matches!(e.subject, FeedSubject::User | FeedSubject::Group)
            && e.id == id
            && e.request_id.as_deref() == Some(request)
    }) else {
        panic!("no SCIM change of {id} by {request} on the feed: {feed:#?}")
    };
    feed[at + 1..]
        .iter()
        .take_while(|e| e.request_id.as_deref() == Some(request) && e.actor == "system")
        .cloned()
        .collect()
}

pub(crate) fn expect_status(
    result: scim_store_core::Result<impl std::fmt::Debug>,
    status: u16,
    what: &str,
) {
    match result {
        Err(e) => assert_eq!(e.status(), status, "{what}: {e}"),
        Ok(v) => panic!("{what}: expected a {status}, got {v:?}"),
    }
}
