//! The catalog: sites, floors, zones and resources, versioned and kept consistent.

use crate::workplace::fixtures::*;
use scim_store_core::StoreError;
use scim_store_core::workplace::{FeedSubject, PlaceChange, PlaceKind, WorkplaceStore};
use serde_json::json;
use std::sync::Arc;
use workplace_policy::{Actor, CascadeSettings};

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
