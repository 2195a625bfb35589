//! Anonymisation: a former person's workplace history names them nowhere.

use crate::workplace::fixtures::*;
use scim_store_core::ResourceKind;
use scim_store_core::workplace::plan::anonymised_id;
use scim_store_core::workplace::{AuditFilter, BookingFilter, FeedSubject, WorkplaceStore};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;
use workplace_policy::{Actor, BookingStatus, CascadeSettings, FormerHistory, RecomputeMode};

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
