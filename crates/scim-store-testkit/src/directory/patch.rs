//! PATCH (RFC 7644 section 3.5.2) of Users and of Groups' members.

use crate::directory::patch_request;
use crate::{ctx, group, new_tenant, user};
use scim_store_core::{ChangeOp, Members, PatchCall, Query, ResourceKind, Store, StoreError};
use serde_json::json;
use std::sync::Arc;

/// PATCH (RFC 7644 section 3.5.2) of a User: versions, no-ops, preconditions, errors.
pub async fn patch_user_versions_and_no_ops(store: Arc<dyn Store>) {
    let t = new_tenant(store.as_ref()).await;
    let settings = scim_store_core::PatchSettings::default();
    let mut doc = user("patchy");
    doc["active"] = json!(true);
    let u = store
        .create(&t.id, ResourceKind::User, doc, &ctx())
        .await
        .unwrap();
    let deactivate = patch_request(json!([{"op": "replace", "path": "active", "value": false}]));
    // The calls below vary this one (a PatchCall is Copy).
    let deactivate_call = PatchCall {
        kind: ResourceKind::User,
        id: &u.id,
        request: &deactivate,
        settings: &settings,
        expected_version: None,
        members: Members::Include,
    };
    let deactivate_if_v1 = PatchCall {
        expected_version: Some(1),
        ..deactivate_call
    };
    let r = store.patch(&t.id, deactivate_if_v1, &ctx()).await.unwrap();
    assert!(r.changed);
    assert_eq!(
        (r.resource.version, &r.resource.document["active"]),
        (2, &json!(false))
    );
    let again = store.patch(&t.id, deactivate_call, &ctx()).await.unwrap();
    assert!(!again.changed);
    assert_eq!(
        (again.resource.version, again.resource.last_modified),
        (2, r.resource.last_modified)
    );
    let err = store
        .patch(&t.id, deactivate_if_v1, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::VersionMismatch {
            expected: 1,
            actual: 2
        }
    ));
    // Filtered multi-valued edit; the new email is indexed at once.
    let add_email = patch_request(
        json!([{"op": "add", "path": "emails", "value": [{"value": "Patchy@Example.com", "type": "work"}]}]),
    );
    store
        .patch(
            &t.id,
            PatchCall {
                request: &add_email,
                ..deactivate_call
            },
            &ctx(),
        )
        .await
        .unwrap();
    let found = store
        .query(
            &t.id,
            ResourceKind::User,
            &Query {
                filter: Some(
                    scim_filter::parse_filter("emails.value eq \"patchy@example.COM\"").unwrap(),
                ),
                ..Query::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(found.total_results, 1);
    // A patch into a taken userName is a uniqueness error, and rolls back entirely.
    store
        .create(&t.id, ResourceKind::User, user("taken"), &ctx())
        .await
        .unwrap();
    let rename = patch_request(
        json!([{"op": "replace", "path": "title", "value": "x"}, {"op": "replace", "path": "userName", "value": "TAKEN"}]),
    );
    let events_before = store.events(&t.id, 0, 100).await.unwrap().len();
    let err = store
        .patch(
            &t.id,
            PatchCall {
                request: &rename,
                ..deactivate_call
            },
            &ctx(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Uniqueness { .. }), "{err:?}");
    let now = store
        .get(&t.id, ResourceKind::User, &u.id, Members::Include)
        .await
        .unwrap()
        .unwrap();
    assert!(now.document.get("title").is_none());
    assert_eq!(
        store.events(&t.id, 0, 100).await.unwrap().len(),
        events_before
    );
    // A patch the schema refuses.
    let bad = patch_request(json!([{"op": "replace", "path": "active", "value": "maybe"}]));
    let err = store
        .patch(
            &t.id,
            PatchCall {
                request: &bad,
                ..deactivate_call
            },
            &ctx(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), 400, "{err}");
    let err = store
        .patch(
            &t.id,
            PatchCall {
                id: "missing",
                ..deactivate_call
            },
            &ctx(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }));
    let events = store.events(&t.id, 0, 100).await.unwrap();
    assert_eq!(
        events.iter().filter(|e| e.op == ChangeOp::Patched).count(),
        2
    );
}

/// PATCH of a Group's members: applied as a delta on the rows, in the dialects IdPs send.
pub async fn patch_group_members_as_a_delta(store: Arc<dyn Store>) {
    let t = new_tenant(store.as_ref()).await;
    let settings = scim_store_core::PatchSettings::default();
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            store
                .create(&t.id, ResourceKind::User, user(&format!("m{i}")), &ctx())
                .await
                .unwrap()
                .id,
        );
    }
    let g = store
        .create(
            &t.id,
            ResourceKind::Group,
            group("Team", &[&ids[0], &ids[1]]),
            &ctx(),
        )
        .await
        .unwrap();
    let members_of = |r: &scim_store_core::StoredResource| -> Vec<String> {
        let mut v: Vec<String> = r.document["members"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|m| m["value"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        v.sort();
        v
    };
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };
    let run = |req: serde_json::Value| {
        let store = Arc::clone(&store);
        let (tenant, id, settings) = (t.id, g.id.clone(), settings.clone());
        async move {
            store
                .patch(
                    &tenant,
                    PatchCall {
                        kind: ResourceKind::Group,
                        id: &id,
                        request: &patch_request(req),
                        settings: &settings,
                        expected_version: None,
                        members: Members::Include,
                    },
                    &ctx(),
                )
                .await
        }
    };
    let r = run(json!([{"op": "add", "path": "members", "value": [{"value": ids[2]}]}]))
        .await
        .unwrap();
    assert!(r.changed);
    assert_eq!(members_of(&r.resource), sorted(ids[..3].to_vec()));
    assert_eq!(r.resource.version, 2);
    // Adding an existing member changes nothing.
    let r = run(json!([{"op": "add", "path": "members", "value": [{"value": ids[2]}]}]))
        .await
        .unwrap();
    assert!(!r.changed);
    assert_eq!(r.resource.version, 2);
    // Removal by filter (RFC 7644 section 3.5.2.2) and Entra's remove-with-value.
    let r = run(json!([{"op": "remove", "path": format!("members[value eq \"{}\"]", ids[0])}]))
        .await
        .unwrap();
    assert_eq!(
        members_of(&r.resource),
        sorted(vec![ids[1].clone(), ids[2].clone()])
    );
    let r = run(json!([{"op": "Remove", "path": "members", "value": [{"value": ids[1]}]}]))
        .await
        .unwrap();
    assert_eq!(members_of(&r.resource), vec![ids[2].clone()]);
    // Other attributes with members in one request.
    let r = run(json!([{"op": "replace", "path": "displayName", "value": "Team 2"}, {"op": "add", "path": "members", "value": [{"value": ids[3]}, {"value": ids[4]}]}]))
        .await
        .unwrap();
    assert_eq!(r.resource.document["displayName"], "Team 2");
    assert_eq!(members_of(&r.resource), sorted(ids[2..].to_vec()));
    let u3 = store
        .get(&t.id, ResourceKind::User, &ids[3], Members::Include)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(u3.document["groups"][0]["display"], "Team 2");
    // Replace all members.
    let r = run(json!([{"op": "replace", "path": "members", "value": [{"value": ids[0]}]}]))
        .await
        .unwrap();
    assert_eq!(members_of(&r.resource), vec![ids[0].clone()]);
    // Unknown member ids are refused, and nothing of the request is kept.
    let before = store
        .get(&t.id, ResourceKind::Group, &g.id, Members::Include)
        .await
        .unwrap()
        .unwrap();
    let err = run(json!([{"op": "replace", "path": "displayName", "value": "Nope"}, {"op": "add", "path": "members", "value": [{"value": "ghost"}]}]))
        .await
        .unwrap_err();
    assert_eq!(err.status(), 400);
    let after = store
        .get(&t.id, ResourceKind::Group, &g.id, Members::Include)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after, before);
    // Members::Exclude leaves the (possibly huge) member list out of the answer.
    let r = store
        .patch(
            &t.id,
            PatchCall {
                kind: ResourceKind::Group,
                id: &g.id,
                request: &patch_request(
                    json!([{"op": "add", "path": "members", "value": [{"value": ids[1]}]}]),
                ),
                settings: &settings,
                expected_version: None,
                members: Members::Exclude,
            },
            &ctx(),
        )
        .await
        .unwrap();
    assert!(r.changed && r.resource.document.get("members").is_none());
    // Removing every member.
    let r = run(json!([{"op": "remove", "path": "members"}]))
        .await
        .unwrap();
    assert!(r.resource.document.get("members").is_none());
}
