//! The workplace checks every [`WorkplaceStore`] must pass (issue 7): the catalog, policies,
//! bookings, check-in, assignments, the lifecycle cascades that SCIM writes trigger (atomically,
//! on the feed, citing their request), policy-change previews, the feed, the audit log, the
//! report, and a property test over random sequences of SCIM writes and bookings.
//!
//! ```ignore
//! fn sqlite(schemas: ResourceSchemas) -> WorkplaceFixture { /* open a store in a temp dir */ }
//! scim_store::workplace_store_tests!(sqlite);
//! ```
//!
//! Cascades run at the SCIM write's own time, so the checks work in real time: bookings are
//! placed relative to the clock ([`now`]), days ahead or minutes around it.

use super::schemas;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use scim_store_core::workplace::plan::{anonymised_id, status_name};
use scim_store_core::workplace::{
    AuditFilter, BookingFilter, BookingOutcome, BookingRecord, FeedEvent, FeedSubject, NewBooking,
    PlaceChange, PlaceKind, WorkplaceStore,
};
use scim_store_core::{
    Members, PatchResult, PatchSettings, ResourceKind, StoreError, TenantId, WriteContext,
};
use serde_json::{Value, json};
use std::any::Any;
use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use workplace_policy::{
    Actor, BookingRequest, BookingStatus, CascadeSettings, Catalog, CompiledPolicySet,
    FormerHistory, Person, PolicySet, Reason, RecomputeMode, Resource, ResourceKind as Kind, Site,
    Timestamp, Trigger,
};

/// A workplace store under test, and whatever must live as long as it (e.g. its temporary
/// directory).
pub struct WorkplaceFixture {
    /// The store.
    pub store: Arc<dyn WorkplaceStore>,
    /// Dropped after the test.
    pub guard: Box<dyn Any + Send + Sync>,
}

/// Runs one workplace check on a fresh fixture made with the kit's [`schemas`], on a
/// multi-threaded runtime (so that concurrency checks really race).
pub fn run_workplace<M, F, Fut>(make: M, check: F)
where
    M: FnOnce(scim_store_core::ResourceSchemas) -> WorkplaceFixture,
    F: FnOnce(Arc<dyn WorkplaceStore>) -> Fut,
    Fut: Future<Output = ()>,
{
    let fixture = make(schemas());
    super::kit_runtime().block_on(check(Arc::clone(&fixture.store)));
    drop(fixture);
}

/// Generates one `#[test]` per workplace check for a backend; `$make` is a
/// `fn(ResourceSchemas) -> WorkplaceFixture`. With `skip_if = $skip` (a `fn() -> bool`), each
/// test returns at once when `$skip()` is true, as with [`store_tests!`](crate::store_tests).
/// The tests are named `workplace_*`, so both macros can run in one test file.
#[macro_export]
macro_rules! workplace_store_tests {
    ($make:path) => {
        $crate::workplace_store_tests!($make, skip_if = $crate::never_skip);
    };
    ($make:path, skip_if = $skip:path) => {
        $crate::workplace_store_tests!(@each $make, $skip;
            workplace_catalog_crud_and_consistency,
            workplace_policies_set_get_and_versions,
            workplace_booking_allowed_refused_and_full,
            workplace_cancel_and_check_in,
            workplace_deactivation_by_entra_string_cascades,
            workplace_deactivation_by_boolean_cascades,
            workplace_deletion_cascades_and_anonymises,
            workplace_anonymisation_forgets_the_person,
            workplace_failed_scim_writes_cancel_nothing,
            workplace_reactivation_uncancels_nothing,
            workplace_attribute_change_cancels_or_flags_lost_bookings,
            workplace_group_changes_cancel_lost_bookings,
            workplace_policy_change_preview_is_what_applies,
            workplace_feed_is_ordered_gap_free_and_mixed,
            workplace_audit_filters,
            workplace_report_counts,
            workplace_assignments,
            workplace_concurrent_bookings_take_the_last_place_once,
            workplace_invariants_hold_after_any_sequence
        );
    };
    (@each $make:path, $skip:path; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                if $skip() {
                    return;
                }
                $crate::run_workplace($make, $crate::$check);
            }
        )*
    };
}

// ---- fixtures ---------------------------------------------------------------------------------

/// The Enterprise User extension (RFC 7643 section 4.3).
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// The wall clock in Unix seconds: cascades run at their SCIM write's own time, so the checks
/// place bookings relative to it.
pub fn now() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

static TENANTS: AtomicU64 = AtomicU64::new(0);

async fn tenant(store: &dyn WorkplaceStore) -> TenantId {
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
fn admin() -> WriteContext {
    WriteContext {
        actor: "facilities".into(),
        request_id: Some("req-admin".into()),
    }
}

/// An identity provider's context for request `id`.
fn idp(request: &str) -> WriteContext {
    WriteContext {
        actor: "entra".into(),
        request_id: Some(request.into()),
    }
}

/// A User of `department`, active unless `active` says otherwise.
fn person_doc(user_name: &str, department: &str, active: bool) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ENTERPRISE],
        "userName": user_name,
        "active": active,
        ENTERPRISE: {"department": department},
    })
}

async fn create_person(
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

async fn create_group(
    store: &dyn WorkplaceStore,
    t: &TenantId,
    name: &str,
    members: &[&str],
) -> String {
    store
        .create(
            t,
            ResourceKind::Group,
            super::group(name, members),
            &idp("req-group"),
        )
        .await
        .expect("create a group")
        .id
}

/// PATCH (RFC 7644 section 3.5.2) with these operations.
async fn patch(
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
            kind,
            id,
            &request,
            &PatchSettings::default(),
            expected_version,
            ctx,
            Members::Exclude,
        )
        .await
}

/// The catalog every check uses: London, level 1, the Marketing corner on it, and
/// - `d1`, a desk in the Marketing corner; `d2`, an open desk;
/// - `boardroom` (capacity 1); `p1`, a parking space; `hub`, a phone booth for two.
async fn catalog(store: &dyn WorkplaceStore, t: &TenantId) {
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
fn standard_policies() -> PolicySet {
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
async fn office(store: &dyn WorkplaceStore, settings: CascadeSettings) -> TenantId {
    let t = tenant(store).await;
    catalog(store, &t).await;
    store
        .set_policies(&t, standard_policies(), settings, None, &admin(), now())
        .await
        .expect("the standard policies compile");
    t
}

fn request(person: &str, resource: &str, start: Timestamp, end: Timestamp) -> NewBooking {
    NewBooking {
        person: person.into(),
        resource: resource.into(),
        start,
        end,
    }
}

/// Books, made at `at`, and expects it done.
async fn book_at(
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
async fn book(
    store: &dyn WorkplaceStore,
    t: &TenantId,
    person: &str,
    resource: &str,
    slot: (Timestamp, Timestamp),
) -> BookingRecord {
    book_at(store, t, person, resource, slot, now()).await
}

/// Two hours starting `days` days from now (plus `hours`).
fn slot(days: i64, hours: i64) -> (Timestamp, Timestamp) {
    let start = now() + days * DAY + hours * HOUR;
    (start, start + 2 * HOUR)
}

async fn reload(store: &dyn WorkplaceStore, t: &TenantId, id: &str) -> BookingRecord {
    store
        .booking(t, id)
        .await
        .expect("read a booking")
        .expect("the booking exists")
}

fn status(record: &BookingRecord) -> &'static str {
    status_name(&record.booking.status)
}

fn cause_of(record: &BookingRecord) -> Option<workplace_policy::Cause> {
    match &record.booking.status {
        BookingStatus::Cancelled { cause, .. } => cause.clone(),
        _ => record.flag.as_ref().map(|f| f.cause.clone()),
    }
}

async fn feed(store: &dyn WorkplaceStore, t: &TenantId) -> Vec<FeedEvent> {
    store.feed(t, 0, 1_000).await.expect("read the feed")
}

/// The entries after the SCIM change of `subject`/`id` whose request is `request`, up to the
/// next entry of another request.
fn cascade_after(feed: &[FeedEvent], id: &str, request: &str) -> Vec<FeedEvent> {
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

fn expect_status(result: scim_store_core::Result<impl std::fmt::Debug>, status: u16, what: &str) {
    match result {
        Err(e) => assert_eq!(e.status(), status, "{what}: {e}"),
        Ok(v) => panic!("{what}: expected a {status}, got {v:?}"),
    }
}

// ---- the catalog ------------------------------------------------------------------------------

/// Catalog entries are created, versioned (with `If-Match`), listed, kept consistent, and
/// deleted only once nothing refers to them; every change is on the feed.
pub async fn workplace_catalog_crud_and_consistency(store: Arc<dyn WorkplaceStore>) {
    let s = store.as_ref();
    let t = tenant(s).await;
    let c = admin();
    let (site, change) = s
        .put_place(
            &t,
            PlaceKind::Site,
            json!({"id": "lon", "name": "London"}),
            Some(0),
            &c,
        )
        .await
        .unwrap();
    assert_eq!(change, PlaceChange::Created);
    assert_eq!((site.version, site.id.as_str()), (1, "lon"));
    assert_eq!(site.document, json!({"id": "lon", "name": "London"}));
    expect_status(
        s.put_place(
            &t,
            PlaceKind::Site,
            json!({"id": "lon", "name": "L"}),
            Some(0),
            &c,
        )
        .await,
        412,
        "0 means the entry must not exist yet",
    );
    let (site, change) = s
        .put_place(
            &t,
            PlaceKind::Site,
            json!({"id": "lon", "name": "London Bridge"}),
            Some(1),
            &c,
        )
        .await
        .unwrap();
    assert_eq!((site.version, change), (2, PlaceChange::Replaced));
    expect_status(
        s.put_place(
            &t,
            PlaceKind::Site,
            json!({"id": "lon", "name": "x"}),
            Some(1),
            &c,
        )
        .await,
        412,
        "a stale version",
    );
    let (same, change) = s
        .put_place(
            &t,
            PlaceKind::Site,
            json!({"id": "lon", "name": "London Bridge", "version": 2}),
            None,
            &c,
        )
        .await
        .unwrap();
    assert_eq!(
        (same.version, change),
        (2, PlaceChange::Unchanged),
        "writing the same document (with the version GET serves) changes nothing"
    );

    // Consistency: parents exist, places agree on their site, capacity at least 1.
    for (kind, bad, what) in [
        (
            PlaceKind::Floor,
            json!({"id": "f", "site": "nowhere", "name": "F"}),
            "unknown site",
        ),
        (
            PlaceKind::Resource,
            json!({"id": "r", "kind": "desk", "site": "lon", "name": "R", "capacity": 0}),
            "capacity 0",
        ),
        (
            PlaceKind::Resource,
            json!({"id": "r", "kind": "desk", "site": "lon", "floor": "nope", "name": "R", "capacity": 1}),
            "unknown floor",
        ),
        (
            PlaceKind::Resource,
            json!({"kind": "desk", "site": "lon", "name": "R", "capacity": 1}),
            "no id",
        ),
        (
            PlaceKind::Site,
            json!({"id": "x", "name": 7}),
            "a name that is not a string",
        ),
        (
            PlaceKind::Site,
            json!(["not", "an", "object"]),
            "not an object",
        ),
        (
            PlaceKind::Site,
            json!({"id": "par", "name": "Paris", "strat": 1}),
            "an unknown member",
        ),
    ] {
        expect_status(s.put_place(&t, kind, bad, None, &c).await, 400, what);
    }
    s.put_place(
        &t,
        PlaceKind::Site,
        json!({"id": "par", "name": "Paris"}),
        None,
        &c,
    )
    .await
    .unwrap();
    s.put_place(
        &t,
        PlaceKind::Floor,
        json!({"id": "pf", "site": "par", "name": "Paris 1"}),
        None,
        &c,
    )
    .await
    .unwrap();
    let err = s
        .put_place(
            &t,
            PlaceKind::Resource,
            json!({"id": "r", "kind": "desk", "site": "lon", "floor": "pf", "name": "R", "capacity": 1}),
            None,
            &c,
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), 400);
    assert!(
        err.to_string().contains("pf"),
        "the detail names the floor: {err}"
    );
    catalog(s, &t).await;
    let resources = s.places(&t, PlaceKind::Resource).await.unwrap();
    let ids: Vec<&str> = resources.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["boardroom", "d1", "d2", "hub", "p1"], "by id");
    let hub = s
        .place(&t, PlaceKind::Resource, "hub")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(hub.document["capacity"], 2);
    assert!(
        s.place(&t, PlaceKind::Resource, "nope")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        s.place(&t, PlaceKind::Floor, "hub")
            .await
            .unwrap()
            .is_none(),
        "ids are per kind"
    );

    // Deleting what something refers to is a conflict.
    for (kind, id) in [
        (PlaceKind::Site, "lon"),
        (PlaceKind::Floor, "l1"),
        (PlaceKind::Neighbourhood, "mkt"),
    ] {
        let err = s.delete_place(&t, kind, id, &c).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{id}: {err}");
    }
    s.set_policies(
        &t,
        standard_policies(),
        CascadeSettings::default(),
        None,
        &c,
        now(),
    )
    .await
    .unwrap();
    let alice = create_person(s, &t, "alice", "Marketing").await;
    let booking = book(s, &t, &alice, "d1", slot(1, 0)).await;
    // A catalog change is seen by the very next decision (no stale cached catalog).
    s.put_place(
        &t,
        PlaceKind::Resource,
        json!({"id": "d9", "kind": "desk", "site": "lon", "neighbourhood": "mkt", "name": "Desk 9", "capacity": 1}),
        None,
        &c,
    )
    .await
    .unwrap();
    let d9 = book(s, &t, &alice, "d9", slot(1, 0)).await;
    s.cancel_booking(&t, &d9.booking.id, Actor::System, "test", &c, now())
        .await
        .unwrap();
    s.delete_place(&t, PlaceKind::Resource, "d9", &c)
        .await
        .unwrap();
    expect_status(
        s.book(
            &t,
            request(&alice, "d9", slot(2, 0).0, slot(2, 0).1),
            &c,
            now(),
        )
        .await,
        404,
        "a deleted resource",
    );
    let assignment = s.assign(&t, &alice, "d1", &c, now()).await.unwrap();
    let err = s
        .delete_place(&t, PlaceKind::Resource, "d1", &c)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("booking"), "{err}");
    s.cancel_booking(
        &t,
        &booking.booking.id,
        Actor::Person(alice.clone()),
        "no",
        &c,
        now(),
    )
    .await
    .unwrap();
    let err = s
        .delete_place(&t, PlaceKind::Resource, "d1", &c)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("assignment"), "{err}");
    assert!(s.release_assignment(&t, &assignment.id, &c).await.unwrap());
    s.delete_place(&t, PlaceKind::Resource, "d1", &c)
        .await
        .unwrap();
    s.delete_place(&t, PlaceKind::Neighbourhood, "mkt", &c)
        .await
        .unwrap();
    assert!(
        s.place(&t, PlaceKind::Resource, "d1")
            .await
            .unwrap()
            .is_none()
    );
    expect_status(
        s.delete_place(&t, PlaceKind::Resource, "d1", &c).await,
        404,
        "deleting what is not there",
    );

    // The feed tells the story; another tenant sees none of it.
    let entries = feed(s, &t).await;
    let sites: Vec<(&str, Option<u64>)> = entries
        .iter()
        .filter(|e| e.subject == FeedSubject::Site && e.id == "lon")
        .map(|e| (e.op.as_str(), e.version))
        .collect();
    assert_eq!(
        sites,
        [
            ("created", Some(1)),
            ("replaced", Some(2)),
            ("replaced", Some(3))
        ]
    );
    let deleted: Vec<(&str, &str)> = entries
        .iter()
        .filter(|e| e.op == "deleted")
        .map(|e| (e.subject.as_str(), e.id.as_str()))
        .collect();
    assert_eq!(
        deleted,
        [
            ("Resource", "d9"),
            ("Resource", "d1"),
            ("Neighbourhood", "mkt")
        ]
    );
    assert!(
        entries
            .iter()
            .all(|e| e.subject == FeedSubject::User || e.actor == "facilities")
    );
    let other = tenant(s).await;
    assert!(s.places(&other, PlaceKind::Site).await.unwrap().is_empty());
    assert!(
        s.place(&other, PlaceKind::Site, "lon")
            .await
            .unwrap()
            .is_none()
    );
}

// ---- policies ---------------------------------------------------------------------------------

/// Policies start empty (default deny, version 0), are versioned with `If-Match`, refuse
/// invalid rules without changing anything, and take effect at once.
pub async fn workplace_policies_set_get_and_versions(store: Arc<dyn WorkplaceStore>) {
    let s = store.as_ref();
    let t = tenant(s).await;
    catalog(s, &t).await;
    let c = admin();
    let initial = s.workplace_config(&t).await.unwrap();
    assert_eq!(initial.version, 0);
    assert!(initial.policies.rules.is_empty());
    assert_eq!(initial.policies.default, workplace_policy::Effect::Deny);
    let alice = create_person(s, &t, "alice", "Sales").await;
    let out = s
        .book(
            &t,
            request(&alice, "d2", slot(1, 0).0, slot(1, 0).1),
            &c,
            now(),
        )
        .await
        .unwrap();
    let BookingOutcome::Refused(decision) = out else {
        panic!("no rule means no access: {out:?}")
    };
    assert!(
        decision
            .reasons
            .iter()
            .any(|r| matches!(r, Reason::TenantDefault { .. }))
    );

    let (config, preview) = s
        .set_policies(
            &t,
            standard_policies(),
            CascadeSettings::default(),
            Some(0),
            &c,
            now(),
        )
        .await
        .unwrap();
    assert_eq!(config.version, 1);
    assert!(preview.cancelled.is_empty() && preview.flagged.is_empty());
    assert_eq!(s.workplace_config(&t).await.unwrap(), config);
    // The new policies decide the very next booking.
    book(s, &t, &alice, "d2", slot(1, 0)).await;
    expect_status(
        s.set_policies(
            &t,
            standard_policies(),
            CascadeSettings::default(),
            Some(0),
            &c,
            now(),
        )
        .await,
        412,
        "a stale If-Match",
    );
    let flag = CascadeSettings {
        on_lost_entitlement: RecomputeMode::Flag,
        former_history: FormerHistory::Keep,
    };
    let mut closed = standard_policies();
    closed.rules.push(
        serde_json::from_value(json!({"id": "no-d2", "name": "Desk 2 is closed", "effect": "deny", "resources": {"resources": ["d2"]}}))
            .unwrap(),
    );
    let (config, _) = s
        .set_policies(&t, closed.clone(), flag, Some(1), &c, now())
        .await
        .unwrap();
    assert_eq!((config.version, config.settings), (2, flag));
    let decision = s
        .evaluate_booking(
            &t,
            &alice,
            "d2",
            BookingRequest {
                start: slot(2, 0).0,
                end: slot(2, 0).1,
            },
            now(),
        )
        .await
        .unwrap();
    assert!(!decision.allowed);
    assert_eq!(decision.forbidding_rule(), Some("no-d2"));

    // Invalid policies are refused, naming the problem, and change nothing.
    let bad_rules = [
        json!({"id": "x", "name": "x", "effect": "allow", "people": "department eq"}),
        json!({"id": "x", "name": "x", "effect": "allow", "people": "noSuchAttribute eq \"1\""}),
    ];
    for rule in bad_rules {
        let mut set = closed.clone();
        set.rules.push(serde_json::from_value(rule).unwrap());
        let err = s
            .set_policies(&t, set.clone(), flag, None, &c, now())
            .await
            .unwrap_err();
        assert_eq!(err.status(), 400, "{err}");
        assert!(err.to_string().contains('x'), "names the rule: {err}");
        expect_status(
            s.preview_policies(&t, &set, flag, now()).await,
            400,
            "a preview of invalid policies",
        );
    }
    let mut duplicate = closed.clone();
    duplicate.rules.push(duplicate.rules[0].clone());
    expect_status(
        s.set_policies(&t, duplicate, flag, None, &c, now()).await,
        400,
        "a duplicate rule id",
    );
    let after = s.workplace_config(&t).await.unwrap();
    assert_eq!(after, config, "invalid policies changed nothing");
    let changes: Vec<Option<u64>> = feed(s, &t)
        .await
        .iter()
        .filter(|e| e.subject == FeedSubject::Policies)
        .map(|e| {
            assert_eq!((e.op.as_str(), e.actor.as_str()), ("changed", "facilities"));
            e.version
        })
        .collect();
    assert_eq!(changes, [Some(1), Some(2)]);
}

// ---- bookings ---------------------------------------------------------------------------------

/// Booking enforces the policies (with the reasons), the person's status and the resource's
/// capacity, and lists bookings by person, resource and status.
pub async fn workplace_booking_allowed_refused_and_full(store: Arc<dyn WorkplaceStore>) {
    let s = store.as_ref();
    let t = office(s, CascadeSettings::default()).await;
    let c = admin();
    let alice = create_person(s, &t, "alice", "Marketing").await;
    let carol = create_person(s, &t, "carol", "Sales").await;
    let bob = s
        .create(
            &t,
            ResourceKind::User,
            json!({"userName": "bob", "title": "Sales Director"}),
            &idp("r"),
        )
        .await
        .unwrap()
        .id;
    let at = now();
    let day1 = slot(1, 0);
    let made = book_at(s, &t, &alice, "d1", day1, at).await;
    assert_eq!(status(&made), "booked");
    assert_eq!((made.version, made.booking.created_at), (1, at));
    assert_eq!(reload(s, &t, &made.booking.id).await, made);
    let booked = feed(s, &t).await;
    let entry = booked.last().unwrap();
    assert_eq!(
        (entry.subject, entry.op.as_str()),
        (FeedSubject::Booking, "booked")
    );
    assert_eq!(entry.detail.as_ref().unwrap()["person"], alice.as_str());
    assert_eq!(entry.detail.as_ref().unwrap()["resource"], "d1");

    let refused = s
        .book(&t, request(&carol, "d1", day1.0, day1.1), &c, now())
        .await
        .unwrap();
    let BookingOutcome::Refused(decision) = refused else {
        panic!("Sales may not sit in the Marketing corner: {refused:?}")
    };
    assert!(!decision.allowed);
    let why = s
        .evaluate_booking(
            &t,
            &alice,
            "d1",
            BookingRequest {
                start: day1.0,
                end: day1.1,
            },
            now(),
        )
        .await
        .unwrap();
    assert!(why.allowed);
    assert!(
        why.reasons.iter().any(|r| r.rule_id() == Some("mkt-desks")),
        "{why:?}"
    );
    expect_status(
        s.evaluate_booking(
            &t,
            "nobody",
            "d1",
            BookingRequest {
                start: day1.0,
                end: day1.1,
            },
            now(),
        )
        .await,
        404,
        "evaluating for nobody",
    );

    // Capacity: the Boardroom holds one meeting at a time; the hub two people.
    book(s, &t, &bob, "boardroom", day1).await;
    let carol_room = s
        .book(&t, request(&carol, "boardroom", day1.0, day1.1), &c, now())
        .await
        .unwrap();
    assert!(
        matches!(carol_room, BookingOutcome::Refused(_)),
        "{carol_room:?}"
    );
    let full = s
        .book(
            &t,
            request(&bob, "boardroom", day1.0 + HOUR, day1.1 + HOUR),
            &c,
            now(),
        )
        .await
        .unwrap();
    assert_eq!(full, BookingOutcome::Full { capacity: 1 });
    book(s, &t, &bob, "boardroom", (day1.1, day1.1 + HOUR)).await;
    let first = book(s, &t, &alice, "hub", day1).await;
    book(s, &t, &carol, "hub", day1).await;
    let third = s
        .book(&t, request(&bob, "hub", day1.0, day1.1), &c, now())
        .await
        .unwrap();
    assert_eq!(third, BookingOutcome::Full { capacity: 2 });
    s.cancel_booking(
        &t,
        &first.booking.id,
        Actor::Person(alice.clone()),
        "freed",
        &c,
        now(),
    )
    .await
    .unwrap();
    book(s, &t, &bob, "hub", day1).await;

    // Status, interval, unknown people and resources.
    let dave = s
        .create(
            &t,
            ResourceKind::User,
            person_doc("dave", "Marketing", false),
            &idp("r"),
        )
        .await
        .unwrap()
        .id;
    let inactive = s
        .book(&t, request(&dave, "d2", day1.0, day1.1), &c, now())
        .await
        .unwrap();
    let BookingOutcome::Refused(decision) = inactive else {
        panic!("an inactive person cannot book: {inactive:?}")
    };
    assert!(
        matches!(decision.reasons[..], [Reason::PersonNotActive { .. }]),
        "{decision:?}"
    );
    for (start, end, what) in [
        (day1.1, day1.0, "an empty interval"),
        (now() - 3 * HOUR, now() - HOUR, "the past"),
    ] {
        let out = s
            .book(&t, request(&alice, "d2", start, end), &c, now())
            .await
            .unwrap();
        assert!(matches!(out, BookingOutcome::Refused(_)), "{what}: {out:?}");
    }
    let err = s
        .book(&t, request("nobody", "d2", day1.0, day1.1), &c, now())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::WorkplaceNotFound { what, .. } if what == "person"),
        "{err}"
    );
    let err = s
        .book(&t, request(&alice, "nowhere", day1.0, day1.1), &c, now())
        .await
        .unwrap_err();
    assert_eq!(err.status(), 404, "{err}");

    // Listing.
    let by = |filter: BookingFilter| async move {
        let found = s.bookings(&t, &filter).await.unwrap();
        found.into_iter().map(|r| r.booking.id).collect::<Vec<_>>()
    };
    let alices = by(BookingFilter {
        person: Some(alice.clone()),
        limit: 100,
        ..Default::default()
    })
    .await;
    assert_eq!(alices.len(), 2);
    assert!(alices.windows(2).all(|w| w[0] < w[1]), "by id");
    let rooms = by(BookingFilter {
        resource: Some("boardroom".into()),
        limit: 100,
        ..Default::default()
    })
    .await;
    assert_eq!(rooms.len(), 2);
    let cancelled = by(BookingFilter {
        status: Some("cancelled".into()),
        limit: 100,
        ..Default::default()
    })
    .await;
    assert_eq!(cancelled, std::slice::from_ref(&first.booking.id));
    let all = by(BookingFilter {
        limit: 100,
        ..Default::default()
    })
    .await;
    assert_eq!(all.len(), 6);
    let page1 = by(BookingFilter {
        limit: 4,
        ..Default::default()
    })
    .await;
    let page2 = by(BookingFilter {
        limit: 4,
        after_id: page1.last().cloned(),
        ..Default::default()
    })
    .await;
    assert_eq!([page1, page2].concat(), all, "keyset paging");
    let later = by(BookingFilter {
        starts_before: Some(day1.0 + 1),
        ends_after: Some(day1.1),
        limit: 100,
        ..Default::default()
    })
    .await;
    assert!(later.is_empty(), "{later:?}");
    expect_status(
        s.bookings(
            &t,
            &BookingFilter {
                status: Some("lost".into()),
                limit: 10,
                ..Default::default()
            },
        )
        .await,
        400,
        "an unknown status",
    );
    let other = tenant(s).await;
    assert!(s.booking(&other, &made.booking.id).await.unwrap().is_none());
}

/// Cancelling is idempotent and recorded; check-in works within its window, only for a booked
/// booking whose person may still make it.
pub async fn workplace_cancel_and_check_in(store: Arc<dyn WorkplaceStore>) {
    let s = store.as_ref();
    let flag = CascadeSettings {
        on_lost_entitlement: RecomputeMode::Flag,
        former_history: FormerHistory::Keep,
    };
    let t = office(s, flag).await;
    let c = admin();
    let alice = create_person(s, &t, "alice", "Marketing").await;
    let t0 = now();
    let soon = book(s, &t, &alice, "d2", (t0 + 600, t0 + 2 * HOUR)).await;
    let BookingOutcome::Done(checked) = s.check_in(&t, &soon.booking.id, &c, t0).await.unwrap()
    else {
        panic!("check-in opens 15 minutes before the start")
    };
    assert_eq!((status(&checked), checked.version), ("checkedIn", 2));
    assert_eq!(reload(s, &t, &soon.booking.id).await, *checked);
    expect_status(
        s.check_in(&t, &soon.booking.id, &c, t0).await,
        409,
        "checking in twice",
    );
    let entries = feed(s, &t).await;
    assert_eq!(entries.last().map(|e| e.op.as_str()), Some("checkedIn"));

    let later = book(s, &t, &alice, "d2", slot(2, 0)).await;
    expect_status(
        s.check_in(&t, &later.booking.id, &c, t0).await,
        409,
        "too early",
    );
    expect_status(
        s.check_in(&t, &later.booking.id, &c, later.booking.end)
            .await,
        409,
        "too late",
    );
    let cancelled = s
        .cancel_booking(
            &t,
            &later.booking.id,
            Actor::Person(alice.clone()),
            "plans changed",
            &c,
            t0,
        )
        .await
        .unwrap();
    let BookingStatus::Cancelled {
        by,
        reason,
        at,
        cause,
    } = &cancelled.booking.status
    else {
        panic!("{cancelled:?}")
    };
    assert_eq!(
        (by, reason.as_str(), *at, cause),
        (&Actor::Person(alice.clone()), "plans changed", t0, &None)
    );
    assert_eq!(cancelled.version, 2);
    let again = s
        .cancel_booking(
            &t,
            &later.booking.id,
            Actor::Administrator("x".into()),
            "again",
            &c,
            t0,
        )
        .await
        .unwrap();
    assert_eq!(again, cancelled, "cancelling twice changes nothing");
    let entry = feed(s, &t).await.pop().unwrap();
    assert_eq!((entry.op.as_str(), entry.version), ("cancelled", Some(2)));
    assert_eq!(entry.detail.as_ref().unwrap()["reason"], "plans changed");
    expect_status(
        s.check_in(&t, &later.booking.id, &c, t0).await,
        409,
        "a cancelled booking",
    );
    expect_status(
        s.cancel_booking(&t, "b-none", Actor::System, "x", &c, t0)
            .await,
        404,
        "an unknown booking",
    );
    expect_status(
        s.check_in(&t, "b-none", &c, t0).await,
        404,
        "an unknown booking",
    );

    // A person who may no longer make a booking (flagged by a cascade) cannot check in.
    let corner = book(s, &t, &alice, "d1", (now() + 600, now() + HOUR)).await;
    patch(
        s,
        &t,
        ResourceKind::User,
        &alice,
        json!([{"op": "replace", "path": format!("{ENTERPRISE}:department"), "value": "Sales"}]),
        None,
        &idp("req-move"),
    )
    .await
    .unwrap();
    let flagged = reload(s, &t, &corner.booking.id).await;
    assert_eq!(status(&flagged), "booked");
    assert!(flagged.flag.is_some(), "{flagged:?}");
    let out = s.check_in(&t, &corner.booking.id, &c, now()).await.unwrap();
    assert!(
        matches!(out, BookingOutcome::Refused(ref d) if !d.allowed),
        "{out:?}"
    );
    assert_eq!(
        status(&reload(s, &t, &corner.booking.id).await),
        "booked",
        "a refusal writes nothing"
    );

    // An inactive person cannot check in: deactivation has already cancelled the booking.
    let bob = create_person(s, &t, "bob", "Sales").await;
    let bobs = book(s, &t, &bob, "hub", (now() + 600, now() + HOUR)).await;
    patch(
        s,
        &t,
        ResourceKind::User,
        &bob,
        json!([{"op": "replace", "path": "active", "value": false}]),
        None,
        &idp("req-off"),
    )
    .await
    .unwrap();
    expect_status(
        s.check_in(&t, &bobs.booking.id, &c, now()).await,
        409,
        "an inactive person's booking",
    );
}

// ---- cascades ---------------------------------------------------------------------------------

/// Erin's holdings, made around `t0`: history, two bookings in progress (one checked in), two
/// future bookings, an assignment; Frank's future booking beside them.
struct Holdings {
    erin: String,
    frank: String,
    past: String,
    in_use: String,
    not_checked_in: String,
    future: [String; 2],
    franks: String,
}

async fn holdings(s: &dyn WorkplaceStore, t: &TenantId) -> Holdings {
    let c = admin();
    let erin = create_person(s, t, "erin", "Marketing").await;
    let frank = create_person(s, t, "frank", "Marketing").await;
    let t0 = now();
    let past = book_at(
        s,
        t,
        &erin,
        "d2",
        (t0 - 2 * DAY, t0 - 2 * DAY + HOUR),
        t0 - 3 * DAY,
    )
    .await;
    let in_use = book_at(s, t, &erin, "d1", (t0 - 1_800, t0 + HOUR), t0 - HOUR).await;
    let not_checked_in = book_at(s, t, &erin, "hub", (t0 - 1_800, t0 + HOUR), t0 - HOUR).await;
    let BookingOutcome::Done(_) = s.check_in(t, &in_use.booking.id, &c, t0).await.unwrap() else {
        panic!("check in")
    };
    let f1 = book(s, t, &erin, "d1", slot(2, 0)).await;
    let f2 = book(s, t, &erin, "d1", slot(3, 0)).await;
    let franks = book(s, t, &frank, "d1", slot(4, 0)).await;
    s.assign(t, &erin, "p1", &c, t0).await.unwrap();
    Holdings {
        erin,
        frank,
        past: past.booking.id,
        in_use: in_use.booking.id,
        not_checked_in: not_checked_in.booking.id,
        future: [f1.booking.id, f2.booking.id],
        franks: franks.booking.id,
    }
}

/// Checks that Erin left (`trigger`) by request `request`: every effect of [`holdings`], and
/// nothing else.
async fn assert_left(
    s: &dyn WorkplaceStore,
    t: &TenantId,
    h: &Holdings,
    trigger: Trigger,
    request: &str,
) {
    let past = reload(s, t, &h.past).await;
    assert_eq!(
        (status(&past), past.version),
        ("booked", 1),
        "history is left alone"
    );
    let in_use = reload(s, t, &h.in_use).await;
    let BookingStatus::Completed { at } = in_use.booking.status else {
        panic!("a checked-in booking in progress ends: {in_use:?}")
    };
    assert!(at <= now() && at > now() - 60, "it ends now ({at})");
    for id in [&h.not_checked_in, &h.future[0], &h.future[1]] {
        let record = reload(s, t, id).await;
        let BookingStatus::Cancelled { by, cause, .. } = &record.booking.status else {
            panic!("cancelled: {record:?}")
        };
        assert_eq!(by, &Actor::System);
        let cause = cause.as_ref().expect("a cascade says why");
        assert_eq!(
            (cause.trigger, cause.request_id.as_str()),
            (trigger, request)
        );
    }
    assert!(
        s.assignments(t, Some(&h.erin)).await.unwrap().is_empty(),
        "released"
    );
    assert_eq!(
        status(&reload(s, t, &h.franks).await),
        "booked",
        "Frank keeps his booking"
    );
    assert!(
        !s.assignments(t, None)
            .await
            .unwrap()
            .iter()
            .any(|a| a.person == h.erin)
    );

    // One feed entry per effect, right after the SCIM change, as `system`, citing the request.
    let entries = feed(s, t).await;
    let cascade = cascade_after(&entries, &h.erin, request);
    let mut ops: Vec<&str> = cascade.iter().map(|e| e.op.as_str()).collect();
    ops.sort_unstable();
    assert_eq!(
        ops,
        ["cancelled", "cancelled", "cancelled", "ended", "released"],
        "{cascade:#?}"
    );
    for entry in &cascade {
        let detail = entry.detail.as_ref().expect("a cascade entry has a detail");
        assert_eq!(detail["cause"]["requestId"], request);
        assert_eq!(detail["person"], h.erin.as_str());
        assert!(detail["reason"].as_str().is_some_and(|r| !r.is_empty()));
    }
    let audit = s
        .audit(
            t,
            &AuditFilter {
                request_id: Some(request.into()),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        audit.len(),
        1 + cascade.len(),
        "the SCIM change and its cascade"
    );
    assert!(matches!(audit[0].subject, FeedSubject::User));
    let scim = s.events(t, 0, 1_000).await.unwrap();
    assert!(
        scim.iter()
            .any(|e| e.id == h.erin && e.request_id.as_deref() == Some(request))
    );
    assert!(
        scim.iter().all(|e| !cascade.iter().any(|c| c.seq == e.seq)),
        "SCIM events only"
    );
    let late = s
        .book(t, request_of(&h.erin, "d2", slot(5, 0)), &admin(), now())
        .await;
    match late {
        Ok(BookingOutcome::Refused(d)) => {
            assert!(matches!(d.reasons[..], [Reason::PersonNotActive { .. }]))
        }
        Err(e) => assert_eq!(e.status(), 404, "{e}"),
        other => panic!("a person who left cannot book: {other:?}"),
    }
    let _ = &h.frank;
}

fn request_of(person: &str, resource: &str, (start, end): (Timestamp, Timestamp)) -> NewBooking {
    request(person, resource, start, end)
}

async fn deactivation(store: Arc<dyn WorkplaceStore>, value: Value) {
    let s = store.as_ref();
    let t = office(s, CascadeSettings::default()).await;
    let h = holdings(s, &t).await;
    let out = patch(
        s,
        &t,
        ResourceKind::User,
        &h.erin,
        json!([{"op": "Replace", "path": "active", "value": value}]),
        None,
        &idp("req-deactivate"),
    )
    .await
    .unwrap();
    assert!(out.changed);
    assert_eq!(out.resource.document["active"], false);
    assert_left(s, &t, &h, Trigger::Deactivated, "req-deactivate").await;
    let report = s.report(&t).await.unwrap();
    assert_eq!((report.seats.active, report.seats.inactive), (1, 1));
}

/// Deactivation by PATCH with `"value": "False"`, as Microsoft Entra ID sends it, cancels
/// future bookings, ends the one in use, cancels the one not checked in, releases the
/// assignment, on the feed citing the request.
pub async fn workplace_deactivation_by_entra_string_cascades(store: Arc<dyn WorkplaceStore>) {
    deactivation(store, json!("False")).await;
}

/// The same with a JSON boolean.
pub async fn workplace_deactivation_by_boolean_cascades(store: Arc<dyn WorkplaceStore>) {
    deactivation(store, json!(false)).await;
}

/// Deletion cascades like deactivation (trigger `deleted`); a DELETE that fails changes
/// nothing; a tenant that asks for it has the history anonymised.
pub async fn workplace_deletion_cascades_and_anonymises(store: Arc<dyn WorkplaceStore>) {
    let s = store.as_ref();
    let t = office(s, CascadeSettings::default()).await;
    let h = holdings(s, &t).await;
    let before = feed(s, &t).await.len();
    expect_status(
        s.delete(&t, ResourceKind::User, &h.erin, Some(99), &idp("req-stale"))
            .await,
        412,
        "a stale DELETE",
    );
    assert_eq!(
        feed(s, &t).await.len(),
        before,
        "a failed write appends nothing"
    );
    assert_eq!(status(&reload(s, &t, &h.future[0]).await), "booked");
    assert_eq!(s.assignments(&t, Some(&h.erin)).await.unwrap().len(), 1);
    s.delete(&t, ResourceKind::User, &h.erin, None, &idp("req-delete"))
        .await
        .unwrap();
    assert_left(s, &t, &h, Trigger::Deleted, "req-delete").await;
    let report = s.report(&t).await.unwrap();
    assert_eq!(
        (
            report.seats.active,
            report.seats.inactive,
            report.seats.former
        ),
        (1, 0, 1)
    );

    // Anonymised history.
    let anonymise = CascadeSettings {
        on_lost_entitlement: RecomputeMode::Cancel,
        former_history: FormerHistory::Anonymise,
    };
    s.set_policies(&t, standard_policies(), anonymise, None, &admin(), now())
        .await
        .unwrap();
    let gina = create_person(s, &t, "gina", "Marketing").await;
    let kept = book(s, &t, &gina, "d1", slot(6, 0)).await;
    s.delete(&t, ResourceKind::User, &gina, None, &idp("req-forget"))
        .await
        .unwrap();
    let record = reload(s, &t, &kept.booking.id).await;
    assert_eq!(record.booking.person, anonymised_id(&gina));
    assert_eq!(status(&record), "cancelled");
    let theirs = s
        .bookings(
            &t,
            &BookingFilter {
                person: Some(gina.clone()),
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert!(
        theirs.is_empty(),
        "nothing is filed under the person any more"
    );
    let cascade = cascade_after(&feed(s, &t).await, &gina, "req-forget");
    let ops: Vec<&str> = cascade.iter().map(|e| e.op.as_str()).collect();
    assert_eq!(ops, ["cancelled", "anonymised"]);
    assert_eq!(cascade[1].id, anonymised_id(&gina));
    let report = s.report(&t).await.unwrap();
    assert_eq!(report.seats.former, 2);
}

/// In a tenant that anonymises former people, once the identity provider deletes someone their
/// workplace history names them nowhere: not in a booking (person, who cancelled, why), not in
/// a feed entry's detail, not in an audit query by their id; neither the history written long
/// before (by themselves, an administrator, an earlier cascade) nor the deletion's own cascade.
/// It stays grouped under one anonymised id, and the report counts them once as former. Their
/// SCIM changes (`created`, `patched`, `deleted`) keep the SCIM id, which the identity provider
/// knows. Someone else's history is untouched, and someone who holds nothing any more (only
/// past bookings) is anonymised too.
pub async fn workplace_anonymisation_forgets_the_person(store: Arc<dyn WorkplaceStore>) {
    let s = store.as_ref();
    let anonymise = CascadeSettings {
        on_lost_entitlement: RecomputeMode::Cancel,
        former_history: FormerHistory::Anonymise,
    };
    let t = office(s, anonymise).await;
    let c = admin();
    let hana = create_person(s, &t, "hana@example.com", "Marketing").await;
    let ivan = create_person(s, &t, "ivan@example.com", "Marketing").await;
    let t0 = now();
    // History: a past booking, one Hana cancelled herself, one her deactivation cancelled.
    let past = book_at(
        s,
        &t,
        &hana,
        "d2",
        (t0 - 2 * DAY, t0 - 2 * DAY + HOUR),
        t0 - 3 * DAY,
    )
    .await;
    let changed_mind = book(s, &t, &hana, "d1", slot(1, 0)).await;
    s.cancel_booking(
        &t,
        &changed_mind.booking.id,
        Actor::Person(hana.clone()),
        "hana@example.com changed plans",
        &c,
        now(),
    )
    .await
    .unwrap();
    let lost = book(s, &t, &hana, "d1", slot(2, 0)).await;
    for (active, request) in [(false, "req-leave"), (true, "req-back")] {
        patch(
            s,
            &t,
            ResourceKind::User,
            &hana,
            json!([{"op": "replace", "path": "active", "value": active}]),
            None,
            &idp(request),
        )
        .await
        .unwrap();
    }
    assert_eq!(status(&reload(s, &t, &lost.booking.id).await), "cancelled");
    // What she holds when she is deleted: a future booking and an assignment.
    let future = book(s, &t, &hana, "d1", slot(3, 0)).await;
    s.assign(&t, &hana, "p1", &c, now()).await.unwrap();
    let ivans = book(s, &t, &ivan, "d1", slot(4, 0)).await;

    s.delete(&t, ResourceKind::User, &hana, None, &idp("req-forget"))
        .await
        .unwrap();
    let anonymous = anonymised_id(&hana);
    let mentions = |text: &str| text.contains(hana.as_str()) || text.contains("hana@example");

    // Bookings.
    let hanas = [&past, &changed_mind, &lost, &future];
    for kept in hanas {
        let record = reload(s, &t, &kept.booking.id).await;
        assert_eq!(record.booking.person, anonymous);
        let text = serde_json::to_string(&record).unwrap();
        assert!(!mentions(&text), "a booking still names the person: {text}");
    }
    assert_eq!(
        status(&reload(s, &t, &future.booking.id).await),
        "cancelled"
    );
    match reload(s, &t, &changed_mind.booking.id).await.booking.status {
        BookingStatus::Cancelled { by, reason, .. } => {
            assert_eq!(by, Actor::Person(anonymous.clone()));
            assert_eq!(reason, format!("{anonymous} changed plans"));
        }
        other => panic!("{other:?}"),
    }
    let all = s
        .bookings(
            &t,
            &BookingFilter {
                limit: 1_000,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(all.len(), 5);
    for record in &all {
        assert!(!mentions(&serde_json::to_string(record).unwrap()));
    }
    let by_person = |person: &str| BookingFilter {
        person: Some(person.to_owned()),
        limit: 1_000,
        ..Default::default()
    };
    assert!(s.bookings(&t, &by_person(&hana)).await.unwrap().is_empty());
    assert_eq!(
        s.bookings(&t, &by_person(&anonymous)).await.unwrap().len(),
        4
    );
    assert_eq!(
        reload(s, &t, &ivans.booking.id).await.booking.person,
        ivan,
        "someone else's booking is untouched"
    );

    // The feed.
    let entries = feed(s, &t).await;
    let mut scim_changes = Vec::new();
    for entry in &entries {
        if entry.subject == FeedSubject::User && entry.id == hana {
            scim_changes.push(entry.op.as_str());
            continue;
        }
        assert_ne!(entry.id, hana, "{entry:?}");
        if let Some(detail) = &entry.detail {
            assert!(
                !mentions(&detail.to_string()),
                "a feed entry still names the person: {entry:?}"
            );
        }
    }
    assert_eq!(scim_changes, ["created", "patched", "patched", "deleted"]);
    let cascade = cascade_after(&entries, &hana, "req-forget");
    let ops: Vec<&str> = cascade.iter().map(|e| e.op.as_str()).collect();
    assert_eq!(ops, ["cancelled", "released", "anonymised"]);
    assert_eq!(cascade[0].id, future.booking.id);
    for entry in &cascade[..2] {
        let detail = entry.detail.as_ref().expect("a cascade entry has a detail");
        assert_eq!(detail["person"], json!(anonymous), "{entry:?}");
    }
    assert_eq!(cascade[2].id, anonymous);
    for entry in &cascade {
        let reason = entry.detail.as_ref().map(|d| d["reason"].clone());
        let reason = reason.as_ref().and_then(Value::as_str).unwrap_or_default();
        assert!(
            reason.starts_with(&format!("{anonymous} was deleted")),
            "{entry:?}"
        );
    }
    assert!(
        entries.iter().any(|e| e.detail.as_ref().is_some_and(|d| {
            d["person"] == json!(ivan) && d["reason"].is_null() && e.op == "booked"
        })),
        "someone else's feed entries are untouched"
    );

    // The audit log: by the old id only the SCIM changes; by the anonymised id the whole
    // workplace history.
    let audit = |person: &str| AuditFilter {
        person: Some(person.to_owned()),
        limit: 1_000,
        ..Default::default()
    };
    let by_old = s.audit(&t, &audit(&hana)).await.unwrap();
    assert_eq!(by_old.len(), 4);
    assert!(
        by_old
            .iter()
            .all(|e| e.subject == FeedSubject::User && e.id == hana && e.detail.is_none()),
        "{by_old:#?}"
    );
    let by_new = s.audit(&t, &audit(&anonymous)).await.unwrap();
    let count = |subject: FeedSubject| by_new.iter().filter(|e| e.subject == subject).count();
    // Booked four times, cancelled three times (by herself, her deactivation, her deletion);
    // assigned and released; anonymised.
    assert_eq!(
        (
            count(FeedSubject::Booking),
            count(FeedSubject::Assignment),
            count(FeedSubject::User)
        ),
        (7, 2, 1),
        "{by_new:#?}"
    );
    let booked: BTreeSet<&str> = by_new
        .iter()
        .filter(|e| e.op == "booked")
        .map(|e| e.id.as_str())
        .collect();
    let expected: BTreeSet<&str> = hanas.iter().map(|r| r.booking.id.as_str()).collect();
    assert_eq!(booked, expected);

    // Counted once as former.
    let report = s.report(&t).await.unwrap();
    assert_eq!((report.seats.active, report.seats.former), (1, 1));

    // Someone who holds nothing any more: only their past is left, and it is anonymised too.
    let jo = create_person(s, &t, "jo@example.com", "Marketing").await;
    let old = book_at(s, &t, &jo, "d2", (t0 - DAY, t0 - DAY + HOUR), t0 - 2 * DAY).await;
    s.delete(&t, ResourceKind::User, &jo, None, &idp("req-forget-jo"))
        .await
        .unwrap();
    assert_eq!(
        reload(s, &t, &old.booking.id).await.booking.person,
        anonymised_id(&jo)
    );
    let by_jo = s.audit(&t, &audit(&jo)).await.unwrap();
    assert!(
        by_jo
            .iter()
            .all(|e| e.subject == FeedSubject::User && e.id == jo),
        "{by_jo:#?}"
    );
    let report = s.report(&t).await.unwrap();
    assert_eq!((report.seats.active, report.seats.former), (1, 2));

    // Someone whose only history is an assignment, released before they leave: no row names
    // them any more, only feed entries, and those are anonymised too.
    let kim = create_person(s, &t, "kim@example.com", "Marketing").await;
    let locker = s.assign(&t, &kim, "p1", &c, now()).await.unwrap();
    assert!(s.release_assignment(&t, &locker.id, &c).await.unwrap());
    s.delete(&t, ResourceKind::User, &kim, None, &idp("req-forget-kim"))
        .await
        .unwrap();
    let by_kim = s.audit(&t, &audit(&kim)).await.unwrap();
    assert!(
        by_kim
            .iter()
            .all(|e| e.subject == FeedSubject::User && e.id == kim && e.detail.is_none()),
        "{by_kim:#?}"
    );
    let ops: Vec<String> = s
        .audit(&t, &audit(&anonymised_id(&kim)))
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.op)
        .collect();
    assert_eq!(ops, ["assigned", "released", "anonymised"]);
    for entry in feed(s, &t).await {
        if let Some(detail) = &entry.detail {
            let text = detail.to_string();
            assert!(
                !text.contains(kim.as_str()) && !text.contains("kim@example"),
                "a feed entry still names the person: {entry:?}"
            );
        }
    }
}

/// A SCIM write that fails (a stale version, a uniqueness conflict) rolls back its cascade:
/// bookings, assignments and the feed stay as they were.
pub async fn workplace_failed_scim_writes_cancel_nothing(store: Arc<dyn WorkplaceStore>) {
    let s = store.as_ref();
    let t = office(s, CascadeSettings::default()).await;
    let alice = create_person(s, &t, "alice", "Marketing").await;
    create_person(s, &t, "taken", "Sales").await;
    let parking = create_group(s, &t, "Parking", &[&alice]).await;
    let desk = book(s, &t, &alice, "d1", slot(1, 0)).await;
    let space = book(s, &t, &alice, "p1", slot(1, 0)).await;
    s.assign(&t, &alice, "d2", &admin(), now()).await.unwrap();
    let before = feed(s, &t).await;
    let version = s
        .get(&t, ResourceKind::User, &alice, Members::Exclude)
        .await
        .unwrap()
        .unwrap()
        .version;
    expect_status(
        patch(
            s,
            &t,
            ResourceKind::User,
            &alice,
            json!([{"op": "replace", "path": "active", "value": false}]),
            Some(version + 1),
            &idp("req-stale"),
        )
        .await,
        412,
        "a stale PATCH",
    );
    let mut conflicting = person_doc("TAKEN", "Sales", false);
    conflicting["active"] = json!(false);
    expect_status(
        s.replace(
            &t,
            ResourceKind::User,
            &alice,
            conflicting,
            None,
            &idp("req-conflict"),
        )
        .await,
        409,
        "a userName conflict",
    );
    expect_status(
        s.delete(
            &t,
            ResourceKind::Group,
            &parking,
            Some(42),
            &idp("req-stale-group"),
        )
        .await,
        412,
        "a stale group DELETE",
    );
    expect_status(
        s.delete(
            &t,
            ResourceKind::User,
            "no-such-user",
            None,
            &idp("req-missing"),
        )
        .await,
        404,
        "deleting nobody",
    );
    assert_eq!(feed(s, &t).await, before, "nothing was appended");
    assert_eq!(reload(s, &t, &desk.booking.id).await, desk);
    assert_eq!(reload(s, &t, &space.booking.id).await, space);
    assert_eq!(s.assignments(&t, Some(&alice)).await.unwrap().len(), 1);
}

/// Reactivation restores rights (the person may book again) but un-cancels nothing.
pub async fn workplace_reactivation_uncancels_nothing(store: Arc<dyn WorkplaceStore>) {
    let s = store.as_ref();
    let t = office(s, CascadeSettings::default()).await;
    let alice = create_person(s, &t, "alice", "Marketing").await;
    let desk = book(s, &t, &alice, "d1", slot(1, 0)).await;
    let set_active = |active: bool, request: &'static str| {
        let alice = alice.clone();
        async move {
            patch(
                s,
                &t,
                ResourceKind::User,
                &alice,
                json!([{"op": "replace", "path": "active", "value": active}]),
                None,
                &idp(request),
            )
            .await
            .unwrap()
        }
    };
    set_active(false, "req-off").await;
    let cancelled = reload(s, &t, &desk.booking.id).await;
    assert_eq!(status(&cancelled), "cancelled");
    set_active(true, "req-on").await;
    assert_eq!(
        reload(s, &t, &desk.booking.id).await,
        cancelled,
        "still cancelled, unchanged"
    );
    assert!(cascade_after(&feed(s, &t).await, &alice, "req-on").is_empty());
    book(s, &t, &alice, "d1", slot(1, 0)).await;
    let report = s.report(&t).await.unwrap();
    assert_eq!((report.seats.active, report.seats.inactive), (1, 0));
}

/// An attribute change (department) cancels exactly the future bookings the person may no
/// longer make, citing the rule; in Flag mode it flags them instead, once.
pub async fn workplace_attribute_change_cancels_or_flags_lost_bookings(
    store: Arc<dyn WorkplaceStore>,
) {
    let s = store.as_ref();
    let t = office(s, CascadeSettings::default()).await;
    let alice = create_person(s, &t, "alice", "Marketing").await;
    let corner = book(s, &t, &alice, "d1", slot(1, 0)).await;
    let open = book(s, &t, &alice, "d2", slot(1, 0)).await;
    let path = format!("{ENTERPRISE}:department");
    patch(
        s,
        &t,
        ResourceKind::User,
        &alice,
        json!([{"op": "replace", "path": path, "value": "Sales"}]),
        None,
        &idp("req-dept"),
    )
    .await
    .unwrap();
    let lost = reload(s, &t, &corner.booking.id).await;
    assert_eq!(status(&lost), "cancelled");
    let cause = cause_of(&lost).unwrap();
    assert_eq!(
        (
            cause.trigger,
            cause.request_id.as_str(),
            cause.rule.as_deref()
        ),
        (Trigger::AttributesChanged, "req-dept", Some("mkt-desks"))
    );
    assert_eq!(
        reload(s, &t, &open.booking.id).await,
        open,
        "still allowed, untouched"
    );
    let cascade = cascade_after(&feed(s, &t).await, &alice, "req-dept");
    assert_eq!(cascade.len(), 1);
    assert_eq!(
        (cascade[0].id.as_str(), cascade[0].op.as_str()),
        (corner.booking.id.as_str(), "cancelled")
    );

    // Flag mode, through a replacement (PUT).
    let flag = CascadeSettings {
        on_lost_entitlement: RecomputeMode::Flag,
        former_history: FormerHistory::Keep,
    };
    s.set_policies(&t, standard_policies(), flag, None, &admin(), now())
        .await
        .unwrap();
    let bob = create_person(s, &t, "bob", "Marketing").await;
    let kept = book(s, &t, &bob, "d1", slot(2, 0)).await;
    s.replace(
        &t,
        ResourceKind::User,
        &bob,
        person_doc("bob", "Sales", true),
        None,
        &idp("req-put"),
    )
    .await
    .unwrap();
    let flagged = reload(s, &t, &kept.booking.id).await;
    assert_eq!((status(&flagged), flagged.version), ("booked", 2));
    let flag_of = flagged.flag.clone().expect("flagged");
    assert_eq!(
        (
            flag_of.cause.rule.as_deref(),
            flag_of.cause.request_id.as_str()
        ),
        (Some("mkt-desks"), "req-put")
    );
    let listed = s
        .bookings(
            &t,
            &BookingFilter {
                flagged_only: true,
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(listed, std::slice::from_ref(&flagged));
    assert_eq!(s.report(&t).await.unwrap().flagged, 1);
    let mut titled = person_doc("bob", "Sales", true);
    titled["title"] = json!("Engineer");
    s.replace(
        &t,
        ResourceKind::User,
        &bob,
        titled,
        None,
        &idp("req-title"),
    )
    .await
    .unwrap();
    assert_eq!(
        reload(s, &t, &kept.booking.id).await,
        flagged,
        "not flagged twice"
    );
    assert!(cascade_after(&feed(s, &t).await, &bob, "req-title").is_empty());
}

/// Group changes change the members' `groups`: leaving the group a rule selects (by PATCH),
/// the group's renaming, and its deletion cancel exactly the bookings it took away. `groups`
/// lists groups in the order the person joined them (the first is their primary team), and a
/// member removed and added back by one request keeps their place.
pub async fn workplace_group_changes_cancel_lost_bookings(store: Arc<dyn WorkplaceStore>) {
    let s = store.as_ref();
    let t = office(s, CascadeSettings::default()).await;
    let hana = create_person(s, &t, "hana", "Sales").await;
    let ivan = create_person(s, &t, "ivan", "Sales").await;
    let other = create_group(s, &t, "Other", &[&ivan]).await;
    let parking = create_group(s, &t, "Parking", &[&hana, &ivan]).await;
    patch(
        s,
        &t,
        ResourceKind::Group,
        &other,
        json!([{"op": "add", "path": "members", "value": [{"value": hana}]}]),
        None,
        &idp("req-join"),
    )
    .await
    .unwrap();
    let groups_of = |id: String| async move {
        let user = s
            .get(&t, ResourceKind::User, &id, Members::Exclude)
            .await
            .unwrap()
            .unwrap();
        user.document["groups"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|g| g["value"].as_str().unwrap().to_owned())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    assert_eq!(
        groups_of(hana.clone()).await,
        [parking.clone(), other.clone()],
        "join order"
    );
    assert_eq!(
        groups_of(ivan.clone()).await,
        [other.clone(), parking.clone()],
        "join order"
    );
    let out = patch(
        s,
        &t,
        ResourceKind::Group,
        &other,
        json!([
            {"op": "remove", "path": format!("members[value eq \"{ivan}\"]")},
            {"op": "add", "path": "members", "value": [{"value": ivan}]}
        ]),
        None,
        &idp("req-noop"),
    )
    .await
    .unwrap();
    assert!(!out.changed);
    assert_eq!(
        groups_of(ivan.clone()).await,
        [other.clone(), parking.clone()],
        "kept its place"
    );

    let hanas = book(s, &t, &hana, "p1", slot(1, 0)).await;
    let ivans = book(s, &t, &ivan, "p1", slot(2, 0)).await;
    let ivans_desk = book(s, &t, &ivan, "d2", slot(2, 0)).await;
    patch(
        s,
        &t,
        ResourceKind::Group,
        &parking,
        json!([{"op": "remove", "path": format!("members[value eq \"{hana}\"]")}]),
        None,
        &idp("req-leave"),
    )
    .await
    .unwrap();
    let lost = reload(s, &t, &hanas.booking.id).await;
    assert_eq!(status(&lost), "cancelled");
    let cause = cause_of(&lost).unwrap();
    assert_eq!(
        (
            cause.trigger,
            cause.request_id.as_str(),
            cause.rule.as_deref()
        ),
        (Trigger::AttributesChanged, "req-leave", Some("parking"))
    );
    assert_eq!(status(&reload(s, &t, &ivans.booking.id).await), "booked");
    let cascade = cascade_after(&feed(s, &t).await, &parking, "req-leave");
    assert_eq!(cascade.len(), 1, "{cascade:#?}");
    assert_eq!(cascade[0].detail.as_ref().unwrap()["person"], hana.as_str());

    // Renaming the group takes the rule away from everyone in it.
    patch(
        s,
        &t,
        ResourceKind::Group,
        &parking,
        json!([{"op": "replace", "path": "displayName", "value": "Car park"}]),
        None,
        &idp("req-rename"),
    )
    .await
    .unwrap();
    assert_eq!(status(&reload(s, &t, &ivans.booking.id).await), "cancelled");
    assert_eq!(reload(s, &t, &ivans_desk.booking.id).await, ivans_desk);

    // Deleting the group does too; replacing a group's members (PUT) likewise.
    let jack = create_person(s, &t, "jack", "Sales").await;
    let kate = create_person(s, &t, "kate", "Sales").await;
    let badges = create_group(s, &t, "Parking", &[&jack, &kate]).await;
    let jacks = book(s, &t, &jack, "p1", slot(3, 0)).await;
    let kates = book(s, &t, &kate, "p1", slot(4, 0)).await;
    s.replace(
        &t,
        ResourceKind::Group,
        &badges,
        super::group("Parking", &[&jack]),
        None,
        &idp("req-put-group"),
    )
    .await
    .unwrap();
    assert_eq!(status(&reload(s, &t, &kates.booking.id).await), "cancelled");
    assert_eq!(status(&reload(s, &t, &jacks.booking.id).await), "booked");
    s.delete(
        &t,
        ResourceKind::Group,
        &badges,
        None,
        &idp("req-drop-group"),
    )
    .await
    .unwrap();
    let dropped = reload(s, &t, &jacks.booking.id).await;
    assert_eq!(
        cause_of(&dropped).map(|c| c.request_id),
        Some("req-drop-group".into())
    );
}

/// What a policy change would do (the dry run) is exactly what setting it does: the same
/// bookings cancelled (or flagged), one feed entry for the policies and one per effect.
pub async fn workplace_policy_change_preview_is_what_applies(store: Arc<dyn WorkplaceStore>) {
    let s = store.as_ref();
    let t = office(s, CascadeSettings::default()).await;
    let mut corner = Vec::new();
    for (i, name) in ["m1", "m2", "m3"].iter().enumerate() {
        let id = create_person(s, &t, name, "Marketing").await;
        corner.push(
            book(s, &t, &id, "d1", slot(1 + i as i64, 0))
                .await
                .booking
                .id,
        );
        book(s, &t, &id, "hub", slot(1 + i as i64, 0)).await;
    }
    let mut without_corner = standard_policies();
    without_corner.rules.retain(|r| r.id != "mkt-desks");
    let settings = CascadeSettings::default();
    let preview = s
        .preview_policies(&t, &without_corner, settings, now())
        .await
        .unwrap();
    assert_eq!(
        preview.summary(),
        "this rule change would cancel 3 future bookings of 3 people"
    );
    assert_eq!(preview.bookings_checked, 6);
    let mut previewed: Vec<&str> = preview
        .cancelled
        .iter()
        .map(|l| l.booking.as_str())
        .collect();
    previewed.sort_unstable();
    let mut expected: Vec<&str> = corner.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(previewed, expected);
    assert!(
        preview
            .cancelled
            .iter()
            .all(|l| l.rule.as_deref() == Some("mkt-desks"))
    );
    for id in &corner {
        assert_eq!(
            status(&reload(s, &t, id).await),
            "booked",
            "a preview changes nothing"
        );
    }
    let ctx = WriteContext {
        actor: "facilities".into(),
        request_id: Some("req-policy".into()),
    };
    let (config, applied) = s
        .set_policies(&t, without_corner.clone(), settings, None, &ctx, now())
        .await
        .unwrap();
    assert_eq!(applied, preview);
    for id in &corner {
        let record = reload(s, &t, id).await;
        let cause = cause_of(&record).expect("cancelled by the change");
        assert_eq!(
            (cause.trigger, cause.request_id.as_str()),
            (Trigger::PolicyChanged, "req-policy")
        );
    }
    let entries = feed(s, &t).await;
    let at = entries
        .iter()
        .rposition(|e| e.subject == FeedSubject::Policies)
        .unwrap();
    assert_eq!(
        (entries[at].version, entries[at].actor.as_str()),
        (Some(config.version), "facilities")
    );
    let effects: Vec<&FeedEvent> = entries[at + 1..].iter().collect();
    assert_eq!(effects.len(), 3);
    assert!(effects.iter().all(|e| e.op == "cancelled"
        && e.actor == "system"
        && e.request_id.as_deref() == Some("req-policy")));

    // Flag mode: the preview flags, and so does the change.
    let flag = CascadeSettings {
        on_lost_entitlement: RecomputeMode::Flag,
        former_history: FormerHistory::Keep,
    };
    let mut no_hub = without_corner.clone();
    for rule in &mut no_hub.rules {
        rule.resources.resources.retain(|r| r != "hub");
    }
    let preview = s.preview_policies(&t, &no_hub, flag, now()).await.unwrap();
    assert_eq!(
        (
            preview.cancelled.len(),
            preview.flagged.len(),
            preview.people_affected
        ),
        (0, 3, 3)
    );
    let (_, applied) = s
        .set_policies(&t, no_hub, flag, None, &ctx, now())
        .await
        .unwrap();
    assert_eq!(applied, preview);
    let flagged = s
        .bookings(
            &t,
            &BookingFilter {
                flagged_only: true,
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(flagged.len(), 3);
    assert!(
        flagged
            .iter()
            .all(|r| r.booking.resource == "hub" && status(r) == "booked")
    );
}

/// The feed holds SCIM changes and workplace events in one gap-free order, also under
/// concurrent writers, resumable from any position; `events` returns only the SCIM changes.
pub async fn workplace_feed_is_ordered_gap_free_and_mixed(store: Arc<dyn WorkplaceStore>) {
    let s = store.as_ref();
    let t = office(s, CascadeSettings::default()).await;
    let mut people = Vec::new();
    for i in 0..6 {
        people.push(create_person(s, &t, &format!("p{i}"), "Marketing").await);
    }
    let mut tasks = Vec::new();
    for (i, person) in people.iter().enumerate() {
        let store = Arc::clone(&store);
        let person = person.clone();
        tasks.push(tokio::spawn(async move {
            let s = store.as_ref();
            let day = slot(1 + i as i64, 0);
            let done = s
                .book(&t, request(&person, "d1", day.0, day.1), &admin(), now())
                .await
                .unwrap();
            assert!(matches!(done, BookingOutcome::Done(_)), "{done:?}");
            s.book(&t, request(&person, "hub", day.0, day.1), &admin(), now())
                .await
                .unwrap();
            if i % 2 == 0 {
                patch(
                    s,
                    &t,
                    ResourceKind::User,
                    &person,
                    json!([{"op": "replace", "path": "active", "value": "False"}]),
                    None,
                    &idp(&format!("req-{i}")),
                )
                .await
                .unwrap();
            } else {
                patch(
                    s,
                    &t,
                    ResourceKind::User,
                    &person,
                    json!([{"op": "replace", "path": "title", "value": "x"}]),
                    None,
                    &idp(&format!("req-{i}")),
                )
                .await
                .unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let entries = feed(s, &t).await;
    assert!(
        entries
            .iter()
            .enumerate()
            .all(|(i, e)| e.seq == i as u64 + 1),
        "gap-free from 1"
    );
    let subjects: BTreeSet<&str> = entries.iter().map(|e| e.subject.as_str()).collect();
    for subject in ["User", "Booking", "Policies", "Site", "Resource"] {
        assert!(
            subjects.contains(subject),
            "{subject} missing from {subjects:?}"
        );
    }
    assert_eq!(
        entries.iter().filter(|e| e.op == "cancelled").count(),
        6,
        "three people left, two bookings each"
    );
    let mut resumed = Vec::new();
    let mut after = 0;
    loop {
        let page = s.feed(&t, after, 7).await.unwrap();
        let Some(last) = page.last() else { break };
        assert!(page.len() <= 7);
        after = last.seq;
        resumed.extend(page);
    }
    assert_eq!(resumed, entries, "resumable");
    let scim = s.events(&t, 0, 1_000).await.unwrap();
    let scim_entries: Vec<(u64, String)> = entries
        .iter()
        .filter(|e| matches!(e.subject, FeedSubject::User | FeedSubject::Group))
        .map(|e| (e.seq, e.id.clone()))
        .collect();
    let events: Vec<(u64, String)> = scim.iter().map(|e| (e.seq, e.id.clone())).collect();
    assert_eq!(
        events, scim_entries,
        "events are the SCIM entries of the feed"
    );
    assert_eq!(events.len(), 12);
}

/// The audit log narrows the feed by subject, id, person, request, time, and pages.
pub async fn workplace_audit_filters(store: Arc<dyn WorkplaceStore>) {
    let s = store.as_ref();
    let t = office(s, CascadeSettings::default()).await;
    let start = now();
    let alice = create_person(s, &t, "alice", "Marketing").await;
    let bob = create_person(s, &t, "bob", "Marketing").await;
    let a1 = book(s, &t, &alice, "d1", slot(1, 0)).await;
    book(s, &t, &bob, "d1", slot(2, 0)).await;
    s.assign(&t, &alice, "p1", &admin(), now()).await.unwrap();
    patch(
        s,
        &t,
        ResourceKind::User,
        &alice,
        json!([{"op": "replace", "path": "active", "value": false}]),
        None,
        &idp("req-audit"),
    )
    .await
    .unwrap();
    let audit = |filter: AuditFilter| async move { s.audit(&t, &filter).await.unwrap() };
    let mine = audit(AuditFilter {
        person: Some(alice.clone()),
        limit: 100,
        ..Default::default()
    })
    .await;
    let ops: Vec<&str> = mine.iter().map(|e| e.op.as_str()).collect();
    assert_eq!(
        ops,
        [
            "created",
            "booked",
            "assigned",
            "patched",
            "cancelled",
            "released"
        ]
    );
    assert!(mine.windows(2).all(|w| w[0].seq < w[1].seq));
    let request = audit(AuditFilter {
        request_id: Some("req-audit".into()),
        limit: 100,
        ..Default::default()
    })
    .await;
    assert_eq!(request.len(), 3);
    let booking = audit(AuditFilter {
        subject: Some(FeedSubject::Booking),
        id: Some(a1.booking.id.clone()),
        limit: 100,
        ..Default::default()
    })
    .await;
    let ops: Vec<&str> = booking.iter().map(|e| e.op.as_str()).collect();
    assert_eq!(ops, ["booked", "cancelled"]);
    let users = audit(AuditFilter {
        subject: Some(FeedSubject::User),
        limit: 100,
        ..Default::default()
    })
    .await;
    assert_eq!(users.len(), 3);
    let page = audit(AuditFilter {
        person: Some(alice.clone()),
        limit: 2,
        ..Default::default()
    })
    .await;
    assert_eq!(page, mine[..2]);
    let next = audit(AuditFilter {
        person: Some(alice.clone()),
        after_seq: page[1].seq,
        limit: 100,
        ..Default::default()
    })
    .await;
    assert_eq!(next, mine[2..]);
    let none = audit(AuditFilter {
        until: Some(start - 10),
        limit: 100,
        ..Default::default()
    })
    .await;
    assert!(none.is_empty());
    let all = audit(AuditFilter {
        since: Some(start - 10),
        limit: 1_000,
        ..Default::default()
    })
    .await;
    assert_eq!(all, feed(s, &t).await);
}

/// The report counts people by status (inactive and former are not licensed seats) and
/// bookings by status, every status present.
pub async fn workplace_report_counts(store: Arc<dyn WorkplaceStore>) {
    let s = store.as_ref();
    let t = office(s, CascadeSettings::default()).await;
    let empty = s.report(&t).await.unwrap();
    assert_eq!(empty.seats, workplace_policy::SeatReport::default());
    assert_eq!(
        empty
            .bookings
            .keys()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["booked", "cancelled", "checkedIn", "completed"]
    );
    assert!(empty.bookings.values().all(|n| *n == 0));
    let a = create_person(s, &t, "a", "Marketing").await;
    let b = create_person(s, &t, "b", "Marketing").await;
    let c = create_person(s, &t, "c", "Marketing").await;
    s.create(
        &t,
        ResourceKind::User,
        json!({"userName": "no-active-attribute"}),
        &idp("r"),
    )
    .await
    .unwrap();
    s.create(
        &t,
        ResourceKind::User,
        person_doc("off", "Sales", false),
        &idp("r"),
    )
    .await
    .unwrap();
    book(s, &t, &a, "d1", slot(1, 0)).await;
    let t0 = now();
    let soon = book(s, &t, &a, "d2", (t0 + 60, t0 + HOUR)).await;
    s.check_in(&t, &soon.booking.id, &admin(), t0)
        .await
        .unwrap();
    book(s, &t, &b, "d1", slot(2, 0)).await;
    book(s, &t, &c, "d1", slot(3, 0)).await;
    patch(
        s,
        &t,
        ResourceKind::User,
        &b,
        json!([{"op": "replace", "path": "active", "value": false}]),
        None,
        &idp("r"),
    )
    .await
    .unwrap();
    s.delete(&t, ResourceKind::User, &c, None, &idp("r"))
        .await
        .unwrap();
    let report = s.report(&t).await.unwrap();
    assert_eq!(
        (
            report.seats.active,
            report.seats.inactive,
            report.seats.former
        ),
        (2, 2, 1)
    );
    let counts: Vec<(&str, u64)> = report
        .bookings
        .iter()
        .map(|(k, v)| (k.as_str(), *v))
        .collect();
    assert_eq!(
        counts,
        [
            ("booked", 1),
            ("cancelled", 2),
            ("checkedIn", 1),
            ("completed", 0)
        ]
    );
    assert_eq!(report.flagged, 0);
}

/// Assignments: one per resource, only for active people, listed by person, released once.
pub async fn workplace_assignments(store: Arc<dyn WorkplaceStore>) {
    let s = store.as_ref();
    let t = office(s, CascadeSettings::default()).await;
    let c = admin();
    let alice = create_person(s, &t, "alice", "Marketing").await;
    let bob = create_person(s, &t, "bob", "Marketing").await;
    let off = s
        .create(
            &t,
            ResourceKind::User,
            person_doc("off", "Sales", false),
            &idp("r"),
        )
        .await
        .unwrap()
        .id;
    let t0 = now();
    let a = s.assign(&t, &alice, "d1", &c, t0).await.unwrap();
    assert_eq!(
        (a.person.as_str(), a.resource.as_str(), a.since),
        (alice.as_str(), "d1", t0)
    );
    let err = s.assign(&t, &bob, "d1", &c, t0).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let err = s.assign(&t, &off, "d2", &c, t0).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    expect_status(s.assign(&t, "nobody", "d2", &c, t0).await, 404, "nobody");
    expect_status(
        s.assign(&t, &bob, "nowhere", &c, t0).await,
        404,
        "no such resource",
    );
    let b = s.assign(&t, &bob, "d2", &c, t0).await.unwrap();
    assert_eq!(
        s.assignments(&t, Some(&alice)).await.unwrap(),
        std::slice::from_ref(&a)
    );
    let mut all = vec![a.clone(), b.clone()];
    all.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(s.assignments(&t, None).await.unwrap(), all);
    assert_eq!(s.assignment(&t, &a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(s.assignment(&t, "a-none").await.unwrap(), None);
    assert_eq!(s.assignment(&t, "a\0nul").await.unwrap(), None);
    let other = tenant(s).await;
    assert_eq!(
        s.assignment(&other, &a.id).await.unwrap(),
        None,
        "another tenant's"
    );
    assert!(s.release_assignment(&t, &a.id, &c).await.unwrap());
    assert!(!s.release_assignment(&t, &a.id, &c).await.unwrap());
    assert_eq!(s.assignment(&t, &a.id).await.unwrap(), None, "released");
    s.assign(&t, &bob, "d1", &c, t0).await.unwrap();
    let entries = feed(s, &t).await;
    let ops: Vec<&str> = entries
        .iter()
        .filter(|e| e.subject == FeedSubject::Assignment)
        .map(|e| e.op.as_str())
        .collect();
    assert_eq!(ops, ["assigned", "assigned", "released", "assigned"]);
}

/// Concurrent requests for the last place: exactly one gets it.
pub async fn workplace_concurrent_bookings_take_the_last_place_once(
    store: Arc<dyn WorkplaceStore>,
) {
    let s = store.as_ref();
    let t = office(s, CascadeSettings::default()).await;
    let mut people = Vec::new();
    for i in 0..8 {
        people.push(create_person(s, &t, &format!("c{i}"), "Marketing").await);
    }
    let day = slot(1, 0);
    let mut tasks = Vec::new();
    for person in people {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            store
                .book(&t, request(&person, "d1", day.0, day.1), &admin(), now())
                .await
                .unwrap()
        }));
    }
    let mut done = 0;
    for task in tasks {
        match task.await.unwrap() {
            BookingOutcome::Done(_) => done += 1,
            BookingOutcome::Full { capacity } => assert_eq!(capacity, 1),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(done, 1);
    let live = s
        .bookings(
            &t,
            &BookingFilter {
                resource: Some("d1".into()),
                status: Some("booked".into()),
                limit: 100,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(live.len(), 1);
}

// ---- the property test ------------------------------------------------------------------------

const DEPARTMENTS: [&str; 2] = ["Marketing", "Sales"];
const GROUPS: [&str; 2] = ["Parking", "Other"];
const RESOURCES: [&str; 5] = ["d1", "d2", "p1", "boardroom", "hub"];

/// One step of a sequence; indexes pick among the people created so far, the groups, the
/// resources and the bookings made so far.
#[derive(Debug, Clone)]
enum Op {
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

fn op_strategy() -> impl Strategy<Value = Op> {
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
struct ModelPerson {
    id: String,
    user_name: String,
    department: usize,
    active: bool,
    deleted: bool,
    /// Group indexes, in join order.
    groups: Vec<usize>,
}

struct World<'a> {
    store: &'a dyn WorkplaceStore,
    t: TenantId,
    policies: CompiledPolicySet,
    catalog: Catalog,
    groups: Vec<String>,
    people: Vec<ModelPerson>,
    bookings: Vec<String>,
    cancelled: BTreeSet<String>,
    /// Resource -> person.
    assignments: BTreeMap<String, String>,
}

fn fail(e: impl std::fmt::Display) -> TestCaseError {
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

    async fn apply(&mut self, op: &Op) -> Result<(), TestCaseError> {
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
    async fn check(&mut self) -> Result<(), TestCaseError> {
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

async fn run_sequence(store: &dyn WorkplaceStore, ops: &[Op]) -> Result<(), TestCaseError> {
    let t = office(store, CascadeSettings::default()).await;
    let mut groups = Vec::new();
    for name in GROUPS {
        groups.push(create_group(store, &t, name, &[]).await);
    }
    let user = schemas();
    let policies =
        CompiledPolicySet::compile_with(&standard_policies(), user.get(ResourceKind::User))
            .map_err(fail)?;
    let sites = vec![Site {
        id: "lon".into(),
        name: "London".into(),
    }];
    let floors = vec![workplace_policy::Floor {
        id: "l1".into(),
        site: "lon".into(),
        name: "Level 1".into(),
    }];
    let zones = vec![workplace_policy::Neighbourhood {
        id: "mkt".into(),
        site: "lon".into(),
        floor: Some("l1".into()),
        name: "Marketing corner".into(),
    }];
    let resource = |id: &str, kind: Kind, floor: bool, zone: bool, capacity: u32| Resource {
        id: id.into(),
        kind,
        site: "lon".into(),
        floor: floor.then(|| "l1".into()),
        neighbourhood: zone.then(|| "mkt".into()),
        name: id.into(),
        capacity,
    };
    let resources = vec![
        resource("d1", Kind::Desk, true, true, 1),
        resource("d2", Kind::Desk, true, false, 1),
        resource("boardroom", Kind::Room, true, false, 1),
        resource("p1", Kind::Parking, false, false, 1),
        resource("hub", Kind::parse("phone-booth"), true, false, 2),
    ];
    let catalog = Catalog::new(sites, floors, zones, resources).map_err(fail)?;
    let mut world = World {
        store,
        t,
        policies,
        catalog,
        groups,
        people: Vec::new(),
        bookings: Vec::new(),
        cancelled: BTreeSet::new(),
        assignments: BTreeMap::new(),
    };
    // Three people to start with (Marketing with a parking badge, Sales, Marketing), so that
    // every sequence has someone to book for.
    let seed = [
        Op::Create {
            department: 0,
            active: true,
        },
        Op::Create {
            department: 1,
            active: true,
        },
        Op::Create {
            department: 0,
            active: true,
        },
        Op::Join {
            target: 0,
            group: 0,
        },
    ];
    for op in seed.iter().chain(ops) {
        world.apply(op).await?;
        world.check().await?;
    }
    Ok(())
}

/// After any sequence of SCIM writes (create, deactivate, reactivate, department and group
/// changes, delete), bookings, assignments and cancellations: no inactive or former person holds
/// a live future booking or an assignment, every live future booking is one the rules allow the
/// person as they now are, every booking accepted was allowed by the policies when it was made
/// (and every refusal was the policies'), and nothing cancelled comes back.
pub async fn workplace_invariants_hold_after_any_sequence(store: Arc<dyn WorkplaceStore>) {
    let handle = tokio::runtime::Handle::current();
    let result = tokio::task::spawn_blocking(move || {
        let mut runner = TestRunner::new(Config {
            cases: 32,
            failure_persistence: None,
            ..Config::default()
        });
        runner
            .run(&proptest::collection::vec(op_strategy(), 1..40), |ops| {
                handle.block_on(run_sequence(store.as_ref(), &ops))
            })
            .map_err(|e| e.to_string())
    })
    .await
    .unwrap();
    if let Err(e) = result {
        panic!("workplace property test failed: {e}");
    }
}
