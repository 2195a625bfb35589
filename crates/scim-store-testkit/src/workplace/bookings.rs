//! Bookings: the policies, status and capacity they obey; cancelling and check-in; the race
//! for the last place.

use crate::ENTERPRISE;
use crate::workplace::fixtures::*;
use scim_store_core::workplace::{BookingFilter, BookingOutcome, FeedSubject, WorkplaceStore};
use scim_store_core::{ResourceKind, StoreError};
use serde_json::json;
use std::sync::Arc;
use workplace_policy::{
    Actor, BookingRequest, BookingStatus, CascadeSettings, FormerHistory, Reason, RecomputeMode,
};

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
