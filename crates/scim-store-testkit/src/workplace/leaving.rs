//! The cascades of a person leaving (deactivation, by Entra ID's string or a boolean, and
//! deletion): what they cancel, end and release, on the feed citing the request.

use crate::workplace::fixtures::*;
use scim_store_core::workplace::plan::anonymised_id;
use scim_store_core::workplace::{
    AuditFilter, BookingFilter, BookingOutcome, FeedSubject, NewBooking, WorkplaceStore,
};
use scim_store_core::{ResourceKind, TenantId};
use serde_json::{Value, json};
use std::sync::Arc;
use workplace_policy::{
    Actor, BookingStatus, CascadeSettings, FormerHistory, Reason, RecomputeMode, Timestamp, Trigger,
};

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
