//! The cascades of other SCIM writes: failed writes roll back, reactivation un-cancels nothing,
//! attribute and group changes cancel (or flag) exactly the bookings they take away.

use crate::ENTERPRISE;
use crate::workplace::fixtures::*;
use scim_store_core::workplace::{BookingFilter, WorkplaceStore};
use scim_store_core::{Members, ResourceKind};
use serde_json::json;
use std::sync::Arc;
use workplace_policy::{CascadeSettings, FormerHistory, RecomputeMode, Trigger};

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
        crate::group("Parking", &[&jack]),
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
