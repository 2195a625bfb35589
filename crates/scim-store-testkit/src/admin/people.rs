//! The log and people: the requests concerning a person, and the scrub of those requests when
//! the person is anonymised (`formerHistory: anonymise`).

use crate::admin::*;
use crate::workplace::fixtures::{
    book, create_group, create_person, feed, idp, office, patch, reload, slot,
};
use scim_store_core::ResourceKind;
use scim_store_core::TenantId;
use scim_store_core::admin::{AdminStore, LoggedRequest, RequestFilter, RequestRecord};
use scim_store_core::workplace::WorkplaceStore;
use scim_store_core::workplace::plan::anonymised_id;
use serde_json::json;
use std::sync::Arc;
use workplace_policy::{CascadeSettings, FormerHistory, RecomputeMode};

/// A tenant of `settings` where Hana and Ivan each booked the parking space (as members of
/// `Parking`), then the identity provider's request `r-x` removed Hana from `Parking`, which
/// cancelled her booking: a feed entry about Hana (`detail.person`) caused by `r-x`, a request
/// about the group. Returns the tenant, Hana's, Ivan's and the group's ids, and Hana's
/// booking.
async fn parking_change(
    s: &dyn WorkplaceStore,
    settings: CascadeSettings,
) -> (TenantId, String, String, String, String) {
    let t = office(s, settings).await;
    let hana = create_person(s, &t, "hana@example.com", "Sales").await;
    let ivan = create_person(s, &t, "ivan@example.com", "Sales").await;
    let parking = create_group(s, &t, "Parking", &[&hana, &ivan]).await;
    let hanas = book(s, &t, &hana, "p1", slot(1, 0)).await;
    book(s, &t, &ivan, "p1", slot(2, 0)).await;
    patch(
        s,
        &t,
        ResourceKind::Group,
        &parking,
        json!([{"op": "remove", "path": format!("members[value eq \"{hana}\"]")}]),
        None,
        &idp("r-x"),
    )
    .await
    .unwrap();
    // What the person narrowing relies on: the feed says `r-x` concerned Hana.
    let entries = feed(s, &t).await;
    assert!(
        entries
            .iter()
            .any(|e| e.request_id.as_deref() == Some("r-x")
                && e.detail
                    .as_ref()
                    .is_some_and(|d| d["person"] == json!(hana))),
        "no feed entry about Hana caused by r-x: {entries:#?}"
    );
    (t, hana, ivan, parking, hanas.booking.id)
}

/// The log entries of [`parking_change`]'s tenant: about Hana (`h-*`, by resource id), the
/// group change that cancelled her booking (`r-x`), about Ivan (`i-*`), about the group
/// without consequence (`g-get`) and about nobody (`n-list`); with bodies and queries.
fn entries_about(t: TenantId, hana: &str, ivan: &str, parking: &str) -> Vec<RequestRecord> {
    let base = shift(clock(), -600, 0);
    let at = |seconds: i64| shift(base, seconds, 0);
    let about = |kind: ResourceKind, id: &str| RequestRecord {
        resource_type: Some(kind),
        resource_id: Some(id.to_owned()),
        ..record(t, "", base)
    };
    vec![
        RequestRecord {
            request_id: "r-x".into(),
            at: at(1),
            method: "PATCH".into(),
            path: format!("/Groups/{parking}?attributes=members"),
            request_body: Some(format!(
                r#"{{"Operations":[{{"op":"remove","path":"members[value eq \"{hana}\"]"}}]}}"#
            )),
            response_body: Some(r#"{"displayName":"Parking"}"#.into()),
            ..about(ResourceKind::Group, parking)
        },
        RequestRecord {
            request_id: "h-patch".into(),
            at: at(2),
            method: "PATCH".into(),
            path: format!("/Users/{hana}?excludedAttributes=groups"),
            status: 400,
            scim_type: Some("invalidValue".into()),
            detail: Some("active: \"maybe\" is not a boolean".into()),
            request_body: Some(r#"{"userName":"hana@example.com","active":"maybe"}"#.into()),
            response_body: Some(r#"{"status":"400","scimType":"invalidValue"}"#.into()),
            ..about(ResourceKind::User, hana)
        },
        RequestRecord {
            request_id: "h-put".into(),
            at: at(3),
            method: "PUT".into(),
            path: format!("/Users/{hana}"),
            request_body: Some(r#"{"userName":"hana@example.com"}"#.into()),
            ..about(ResourceKind::User, hana)
        },
        RequestRecord {
            request_id: "i-patch".into(),
            at: at(4),
            method: "PATCH".into(),
            path: format!("/Users/{ivan}?attributes=userName"),
            status: 400,
            scim_type: Some("invalidValue".into()),
            detail: Some("bad".into()),
            request_body: Some(r#"{"userName":"ivan@example.com"}"#.into()),
            response_body: Some(r#"{"status":"400"}"#.into()),
            ..about(ResourceKind::User, ivan)
        },
        RequestRecord {
            request_id: "g-get".into(),
            at: at(5),
            path: format!("/Groups/{parking}?attributes=displayName"),
            response_body: Some(r#"{"displayName":"Parking"}"#.into()),
            ..about(ResourceKind::Group, parking)
        },
        RequestRecord {
            path: "/Users?filter=userName%20sw%20%22h%22".into(),
            response_body: Some(r#"{"totalResults":1}"#.into()),
            ..record(t, "n-list", at(6))
        },
    ]
}

/// The person narrowing selects the requests about the person (a User, by resource id) and
/// those that caused a feed entry about them (here a group change that cancelled their
/// booking), and nothing else. (A SCIM change of a User carries no `detail.person` on the
/// feed, so the link through the feed is made by a workplace cascade.)
pub async fn admin_log_filters_by_person(store: Arc<dyn AdminStore>) {
    let s = store.as_ref();
    let (t, hana, ivan, parking, _) = parking_change(s, CascadeSettings::default()).await;
    append(s, entries_about(t, &hana, &ivan, &parking)).await;
    let person = |id: &str| RequestFilter {
        person: Some(id.to_owned()),
        ..Default::default()
    };
    assert_eq!(
        listed(s, &t, &person(&hana)).await,
        ["h-put", "h-patch", "r-x"],
        "about Hana, or causing a feed entry about her"
    );
    assert_eq!(listed(s, &t, &person(&ivan)).await, ["i-patch"]);
    assert_eq!(
        listed(s, &t, &person(&parking)).await,
        Vec::<String>::new(),
        "a group is no person"
    );
    assert_eq!(
        listed(
            s,
            &t,
            &RequestFilter {
                resource_type: Some(ResourceKind::Group),
                ..person(&hana)
            }
        )
        .await,
        ["r-x"]
    );
    assert_eq!(
        listed(
            s,
            &t,
            &RequestFilter {
                status: Some(scim_store_core::admin::StatusFilter::Exact(400)),
                ..person(&hana)
            }
        )
        .await,
        ["h-patch"]
    );
    // The same person in another tenant: nothing.
    let other = crate::new_tenant(s).await.id;
    assert!(listed(s, &other, &person(&hana)).await.is_empty());
}

/// In a tenant that anonymises former people, deleting a person scrubs the log entries
/// concerning them (about them, or having caused a feed entry about them): the bodies are
/// removed and the query cut from the path, the rest kept, and the entry says it was
/// scrubbed. Entries about someone else, or nobody, are untouched; in a tenant that keeps
/// former people's history nothing is scrubbed.
pub async fn admin_anonymisation_scrubs_the_log(store: Arc<dyn AdminStore>) {
    let s = store.as_ref();
    let anonymise = CascadeSettings {
        on_lost_entitlement: RecomputeMode::Cancel,
        former_history: FormerHistory::Anonymise,
    };
    let (t, hana, ivan, parking, booking) = parking_change(s, anonymise).await;
    let written = entries_about(t, &hana, &ivan, &parking);
    append(s, written.clone()).await;
    s.delete(&t, ResourceKind::User, &hana, None, &idp("req-forget"))
        .await
        .unwrap();
    assert_eq!(
        reload(s, &t, &booking).await.booking.person,
        anonymised_id(&hana),
        "the person was anonymised"
    );

    let scrubbed = |r: &RequestRecord| LoggedRequest {
        record: RequestRecord {
            path: r.path.split('?').next().unwrap().to_owned(),
            request_body: None,
            response_body: None,
            ..r.clone()
        },
        scrubbed: true,
    };
    let kept = |r: &RequestRecord| LoggedRequest {
        record: r.clone(),
        scrubbed: false,
    };
    let expected: Vec<LoggedRequest> = written
        .iter()
        .map(|r| {
            if ["r-x", "h-patch", "h-put"].contains(&r.request_id.as_str()) {
                scrubbed(r)
            } else {
                kept(r)
            }
        })
        .collect();
    for want in &expected {
        let id = &want.record.request_id;
        let found = s.request(&t, id).await.unwrap().expect("still logged");
        assert_eq!(&found, want, "{id}");
        if want.scrubbed {
            assert!(!found.record.path.contains('?'), "{found:?}");
        }
    }
    let mut listed = all_entries(s, &t, &RequestFilter::default()).await;
    listed.reverse();
    assert_eq!(listed, expected, "listed as found");

    // A tenant that keeps former people's history keeps their requests too.
    let (k, hana, ivan, parking, _) = parking_change(s, CascadeSettings::default()).await;
    let written = entries_about(k, &hana, &ivan, &parking);
    append(s, written.clone()).await;
    s.delete(&k, ResourceKind::User, &hana, None, &idp("req-forget"))
        .await
        .unwrap();
    let mut listed = all_entries(s, &k, &RequestFilter::default()).await;
    listed.reverse();
    assert_eq!(
        listed,
        written.iter().map(kept).collect::<Vec<_>>(),
        "nothing is scrubbed where history is kept"
    );
}

/// Entries the server appends after the person's anonymisation (they waited in its queue
/// while the deletion committed) are stored scrubbed, like those the anonymisation found; and
/// in a tenant that anonymises former people, a deleted person who never booked anything (no
/// workplace history, so no anonymisation cascade) has their entries scrubbed too.
pub async fn admin_late_entries_and_leavers_without_history_are_scrubbed(
    store: Arc<dyn AdminStore>,
) {
    let s = store.as_ref();
    let anonymise = CascadeSettings {
        on_lost_entitlement: RecomputeMode::Cancel,
        former_history: FormerHistory::Anonymise,
    };
    let (t, hana, ivan, parking, _) = parking_change(s, anonymise).await;
    s.delete(&t, ResourceKind::User, &hana, None, &idp("req-forget"))
        .await
        .unwrap();
    // Appended after the deletion: Hana's and the group change that cancelled her booking
    // come back scrubbed; Ivan's and the others' as written.
    let late = entries_about(t, &hana, &ivan, &parking);
    append(s, late.clone()).await;
    for record in &late {
        let found = s.request(&t, &record.request_id).await.unwrap().unwrap();
        let about_hana = ["r-x", "h-patch", "h-put"].contains(&record.request_id.as_str());
        assert_eq!(
            found.scrubbed, about_hana,
            "{}: {found:?}",
            record.request_id
        );
        if about_hana {
            let mut want = record.clone();
            want.scrub();
            assert_eq!(found.record, want);
        } else {
            assert_eq!(&found.record, record);
        }
    }

    // A leaver with no workplace history in the same tenant.
    let nobody = create_person(s, &t, "nils@example.com", "Sales").await;
    let about_nils = RequestRecord {
        request_id: "n-post".into(),
        method: "POST".into(),
        path: "/Users?attributes=userName".into(),
        status: 201,
        resource_type: Some(ResourceKind::User),
        resource_id: Some(nobody.clone()),
        request_body: Some(r#"{"userName":"nils@example.com"}"#.into()),
        ..record(t, "", shift(clock(), -60, 0))
    };
    append(s, vec![about_nils.clone()]).await;
    s.delete(&t, ResourceKind::User, &nobody, None, &idp("req-nils"))
        .await
        .unwrap();
    let found = s.request(&t, "n-post").await.unwrap().unwrap();
    assert!(found.scrubbed, "{found:?}");
    assert_eq!(found.record.request_body, None);
    assert_eq!(found.record.path, "/Users");

    // Where history is kept, a leaver's entries are kept whole.
    let k = office(s, CascadeSettings::default()).await;
    let kept = create_person(s, &k, "kim@example.com", "Sales").await;
    let about_kim = RequestRecord {
        resource_id: Some(kept.clone()),
        tenant: k,
        ..about_nils.clone()
    };
    append(s, vec![about_kim.clone()]).await;
    s.delete(&k, ResourceKind::User, &kept, None, &idp("req-kim"))
        .await
        .unwrap();
    let found = s.request(&k, "n-post").await.unwrap().unwrap();
    assert!(!found.scrubbed);
    assert_eq!(found.record, about_kim);
}
