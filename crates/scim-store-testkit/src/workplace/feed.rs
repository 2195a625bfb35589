//! The feed, the audit log and the report: what the workplace records and counts.

use crate::workplace::fixtures::*;
use scim_store_core::ResourceKind;
use scim_store_core::workplace::{AuditFilter, BookingOutcome, FeedSubject, WorkplaceStore};
use serde_json::json;
use std::collections::BTreeSet;
use std::sync::Arc;
use workplace_policy::CascadeSettings;

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
