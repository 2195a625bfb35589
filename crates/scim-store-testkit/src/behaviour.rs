//! Behaviour checks for every trait method.

use super::{TEST_EXTENSION, ctx, group, new_tenant, user};
use scim_schema::AttrPath;
use scim_store_core::{
    ChangeOp, Members, Paging, Query, ResourceKind, SortOrder, Store, StoreError, TokenScope,
    WriteContext,
};
use serde_json::json;
use std::sync::Arc;

fn ids_of(page: &scim_store_core::QueryPage) -> Vec<String> {
    page.resources.iter().map(|r| r.id.clone()).collect()
}

/// Tenant names are checked and unique; tenants can be found by name.
pub async fn tenants_and_names(store: Arc<dyn Store>) {
    let a = new_tenant(store.as_ref()).await;
    assert!(matches!(
        store.create_tenant(&a.name).await,
        Err(StoreError::TenantExists(_))
    ));
    for bad in ["", "Upper", "under_score", "dot.ted", &"x".repeat(64)] {
        let err = store.create_tenant(bad).await.unwrap_err();
        assert_eq!(err.status(), 400, "{bad:?}: {err}");
    }
    let found = store.tenant_by_name(&a.name).await.unwrap().unwrap();
    assert_eq!(found, a);
    assert!(
        store
            .tenant_by_name("no-such-tenant-anywhere")
            .await
            .unwrap()
            .is_none()
    );
    assert!(store.list_tenants().await.unwrap().contains(&a));
}

/// Deleting a tenant removes everything it holds, at once, and nothing of another tenant; its
/// name can be used again for a new, empty tenant.
pub async fn tenant_deletion_removes_everything(store: Arc<dyn Store>) {
    let doomed = new_tenant(store.as_ref()).await;
    let other = new_tenant(store.as_ref()).await;
    let token = store
        .issue_token(&doomed.id, "entra", TokenScope::Scim)
        .await
        .unwrap();
    let revoked = store
        .issue_token(&doomed.id, "old", TokenScope::Scim)
        .await
        .unwrap();
    assert!(store.revoke_token(&doomed.id, &revoked.id).await.unwrap());
    let kept_token = store
        .issue_token(&other.id, "entra", TokenScope::Scim)
        .await
        .unwrap();
    let mut doomed_ids = Vec::new();
    for tenant in [&doomed, &other] {
        let alice = store
            .create(
                &tenant.id,
                ResourceKind::User,
                json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "alice",
                       "emails": [{"value": "alice@example.com"}]}),
                &ctx(),
            )
            .await
            .unwrap();
        let team = store
            .create(
                &tenant.id,
                ResourceKind::Group,
                group("Team", &[&alice.id]),
                &ctx(),
            )
            .await
            .unwrap();
        if tenant.id == doomed.id {
            doomed_ids = vec![alice.id, team.id];
        }
    }

    let deletion = store.delete_tenant(&doomed.id).await.unwrap();
    assert_eq!(
        (deletion.tokens_revoked, deletion.resources_deleted),
        (1, 2)
    );
    assert!(store.tenant_by_name(&doomed.name).await.unwrap().is_none());
    assert!(!store.list_tenants().await.unwrap().contains(&doomed));
    assert!(store.authenticate(&token.secret).await.unwrap().is_none());
    assert!(matches!(
        store.delete_tenant(&doomed.id).await,
        Err(StoreError::TenantNotFound(_))
    ));

    // The other tenant is untouched.
    assert!(
        store
            .authenticate(&kept_token.secret)
            .await
            .unwrap()
            .is_some()
    );
    let filter = scim_filter::parse_filter(r#"emails co "alice@""#).unwrap();
    let page = store
        .query(
            &other.id,
            ResourceKind::User,
            &Query {
                filter: Some(filter.clone()),
                count: Some(10),
                ..Query::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total_results, 1);
    assert_eq!(store.events(&other.id, 0, 100).await.unwrap().len(), 2);

    // The name is free again, for a new and empty tenant.
    let again = store.create_tenant(&doomed.name).await.unwrap();
    assert_ne!(again.id, doomed.id);
    for id in &doomed_ids {
        for kind in ResourceKind::ALL {
            assert!(
                store
                    .get(&again.id, kind, id, Members::Include)
                    .await
                    .unwrap()
                    .is_none()
            );
        }
    }
    let page = store
        .query(
            &again.id,
            ResourceKind::User,
            &Query {
                filter: Some(filter),
                count: Some(10),
                ..Query::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(page.total_results, 0);
    assert!(store.events(&again.id, 0, 100).await.unwrap().is_empty());
    assert!(store.list_tokens(&again.id).await.unwrap().is_empty());
    // Its userNames are free too.
    store
        .create(&again.id, ResourceKind::User, user("alice"), &ctx())
        .await
        .unwrap();
}

/// Tokens authenticate to their tenant and scope until revoked, and only their own tenant can
/// revoke them.
pub async fn tokens_authenticate_and_revoke(store: Arc<dyn Store>) {
    let a = new_tenant(store.as_ref()).await;
    let b = new_tenant(store.as_ref()).await;
    let scim = store
        .issue_token(&a.id, "entra", TokenScope::Scim)
        .await
        .unwrap();
    let work = store
        .issue_token(&a.id, "policy", TokenScope::Workplace)
        .await
        .unwrap();
    assert!(scim.secret.starts_with("scimd_"));
    assert_ne!(scim.secret, work.secret);
    assert!(
        !format!("{scim:?}").contains(&scim.secret),
        "Debug must not print the secret"
    );

    let (tenant, info) = store.authenticate(&scim.secret).await.unwrap().unwrap();
    assert_eq!(tenant, a);
    assert_eq!(
        (info.id.as_str(), info.label.as_str(), info.scope),
        (scim.id.as_str(), "entra", TokenScope::Scim)
    );
    let (_, info) = store.authenticate(&work.secret).await.unwrap().unwrap();
    assert_eq!(info.scope, TokenScope::Workplace);

    for wrong in [
        "",
        "scimd_",
        "Bearer x",
        &scim.secret[..scim.secret.len() - 1],
        &format!("{}0", scim.secret),
    ] {
        assert!(
            store.authenticate(wrong).await.unwrap().is_none(),
            "{wrong:?}"
        );
    }
    assert!(
        !store.revoke_token(&b.id, &scim.id).await.unwrap(),
        "another tenant cannot revoke it"
    );
    assert!(store.authenticate(&scim.secret).await.unwrap().is_some());
    assert!(store.revoke_token(&a.id, &scim.id).await.unwrap());
    assert!(
        !store.revoke_token(&a.id, &scim.id).await.unwrap(),
        "already revoked"
    );
    assert!(
        store.authenticate(&scim.secret).await.unwrap().is_none(),
        "revocation is immediate"
    );
    assert!(store.authenticate(&work.secret).await.unwrap().is_some());

    let tokens = store.list_tokens(&a.id).await.unwrap();
    assert_eq!(tokens.len(), 2);
    let revoked = tokens.iter().find(|t| t.id == scim.id).unwrap();
    assert!(revoked.revoked.is_some());
    assert!(store.list_tokens(&b.id).await.unwrap().is_empty());
}

/// `create` assigns a UUID, `meta` and version 1, ignoring what the client sent for them.
pub async fn create_assigns_id_meta_and_version(store: Arc<dyn Store>) {
    let t = new_tenant(store.as_ref()).await;
    let mut doc = user("bjensen");
    doc["id"] = json!("client-chosen");
    doc["meta"] = json!({"version": "W/\"99\"", "resourceType": "Group"});
    doc["groups"] = json!([{"value": "nope"}]);
    doc["name"] = json!({"givenName": "Barbara", "familyname": "Jensen"});
    let created = store
        .create(&t.id, ResourceKind::User, doc, &ctx())
        .await
        .unwrap();
    assert_ne!(created.id, "client-chosen");
    assert_eq!(created.id.len(), 36, "a UUID: {}", created.id);
    assert_eq!(created.version, 1);
    assert_eq!(created.etag(), "W/\"1\"");
    assert_eq!(created.created, created.last_modified);
    let d = &created.document;
    assert_eq!(d["id"], json!(created.id));
    assert_eq!(d["userName"], "bjensen");
    assert_eq!(d["meta"]["resourceType"], "User");
    assert_eq!(d["meta"]["version"], "W/\"1\"");
    assert_eq!(d["meta"]["created"], json!(created.created.to_string()));
    assert_eq!(
        d["meta"]["lastModified"],
        json!(created.last_modified.to_string())
    );
    assert!(
        d.get("groups").is_none(),
        "groups is derived, never taken from the client"
    );
    assert_eq!(
        d["name"]["familyName"], "Jensen",
        "sub-attribute names are canonicalised"
    );
    let keys: Vec<&String> = d.as_object().unwrap().keys().collect();
    assert_eq!(keys.first().map(|k| k.as_str()), Some("schemas"));
    assert_eq!(keys.last().map(|k| k.as_str()), Some("meta"));

    let fetched = store
        .get(&t.id, ResourceKind::User, &created.id, Members::Include)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(fetched, created);

    let missing = store
        .create(&t.id, ResourceKind::User, json!({"schemas": []}), &ctx())
        .await
        .unwrap_err();
    assert_eq!(missing.status(), 400, "a User needs a userName: {missing}");
    let mistyped = store
        .create(&t.id, ResourceKind::User, json!({"userName": 5}), &ctx())
        .await
        .unwrap_err();
    assert_eq!(mistyped.status(), 400);
    let nul = store
        .create(&t.id, ResourceKind::User, user("nul\u{0}byte"), &ctx())
        .await
        .unwrap_err();
    assert_eq!(nul.status(), 400, "indexed strings cannot hold U+0000");
    let not_object = store
        .create(&t.id, ResourceKind::User, json!([1]), &ctx())
        .await
        .unwrap_err();
    assert_eq!(not_object.scim_type(), Some("invalidSyntax"));
}

/// A resource is visible only in its tenant and under its own kind.
pub async fn get_is_scoped_by_tenant_and_kind(store: Arc<dyn Store>) {
    let a = new_tenant(store.as_ref()).await;
    let b = new_tenant(store.as_ref()).await;
    let u = store
        .create(&a.id, ResourceKind::User, user("scoped"), &ctx())
        .await
        .unwrap();
    assert!(
        store
            .get(&b.id, ResourceKind::User, &u.id, Members::Include)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .get(&a.id, ResourceKind::Group, &u.id, Members::Include)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .get(
                &a.id,
                ResourceKind::User,
                &u.id.to_uppercase(),
                Members::Include
            )
            .await
            .unwrap()
            .is_none(),
        "ids are caseExact"
    );
    assert!(
        store
            .get(&a.id, ResourceKind::User, "nope", Members::Include)
            .await
            .unwrap()
            .is_none()
    );
    let err = store
        .delete(&b.id, ResourceKind::User, &u.id, None, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }));
    assert_eq!(err.status(), 404);
    let page = store
        .query(&b.id, ResourceKind::User, &Query::default())
        .await
        .unwrap();
    assert_eq!(page.total_results, 0);
    // The same userName is free in another tenant.
    store
        .create(&b.id, ResourceKind::User, user("scoped"), &ctx())
        .await
        .unwrap();
}

/// RFC 7643 section 4.1: userName is unique per tenant, caseExact false, with Unicode folding.
pub async fn user_name_is_unique_case_insensitively(store: Arc<dyn Store>) {
    let t = new_tenant(store.as_ref()).await;
    let elodie = store
        .create(&t.id, ResourceKind::User, user("Élodie"), &ctx())
        .await
        .unwrap();
    for clash in ["élodie", "ÉLODIE", "Élodie"] {
        let err = store
            .create(&t.id, ResourceKind::User, user(clash), &ctx())
            .await
            .unwrap_err();
        match &err {
            StoreError::Uniqueness { attribute, value } => {
                assert_eq!(attribute, "userName");
                assert_eq!(value, clash);
            }
            other => panic!("{clash}: expected a uniqueness error, got {other:?}"),
        }
        assert_eq!((err.status(), err.scim_type()), (409, Some("uniqueness")));
    }
    let other = store
        .create(&t.id, ResourceKind::User, user("elodie"), &ctx())
        .await
        .unwrap();
    // Renaming into a taken name fails; renaming to a case variant of one's own name works.
    let err = store
        .replace(
            &t.id,
            ResourceKind::User,
            &other.id,
            user("ÉLODIE"),
            None,
            &ctx(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Uniqueness { .. }));
    store
        .replace(
            &t.id,
            ResourceKind::User,
            &elodie.id,
            user("éLODIE"),
            None,
            &ctx(),
        )
        .await
        .unwrap();
    // A deleted user's name is free again.
    store
        .delete(&t.id, ResourceKind::User, &elodie.id, None, &ctx())
        .await
        .unwrap();
    store
        .create(&t.id, ResourceKind::User, user("élodie"), &ctx())
        .await
        .unwrap();
}

/// RFC 7643 section 7: every attribute marked `uniqueness: server` is enforced, with the
/// attribute's caseExact.
pub async fn server_unique_attributes_are_enforced(store: Arc<dyn Store>) {
    let t = new_tenant(store.as_ref()).await;
    let with = |name: &str, badge: &str, seat: i64| {
        let mut doc = user(name);
        doc[TEST_EXTENSION] = json!({"badge": badge, "seat": seat});
        doc
    };
    let first = store
        .create(&t.id, ResourceKind::User, with("u1", "B-1", 1), &ctx())
        .await
        .unwrap();
    let err = store
        .create(&t.id, ResourceKind::User, with("u2", "b-1", 2), &ctx())
        .await
        .unwrap_err();
    match err {
        StoreError::Uniqueness { attribute, value } => {
            assert_eq!(attribute, format!("{TEST_EXTENSION}:badge"));
            assert_eq!(value, "b-1");
        }
        other => panic!("expected a uniqueness error, got {other:?}"),
    }
    let err = store
        .create(&t.id, ResourceKind::User, with("u2", "B-2", 1), &ctx())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Uniqueness { ref attribute, .. } if attribute.ends_with(":seat")),
        "{err:?}"
    );
    let second = store
        .create(&t.id, ResourceKind::User, with("u2", "B-2", 2), &ctx())
        .await
        .unwrap();
    // Replacing a resource with its own unique values is fine; taking another's is not.
    store
        .replace(
            &t.id,
            ResourceKind::User,
            &first.id,
            with("u1", "b-1", 1),
            None,
            &ctx(),
        )
        .await
        .unwrap();
    let err = store
        .replace(
            &t.id,
            ResourceKind::User,
            &second.id,
            with("u2", "B-1", 2),
            None,
            &ctx(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Uniqueness { .. }));
    // Freed values can be taken.
    store
        .replace(
            &t.id,
            ResourceKind::User,
            &first.id,
            with("u1", "B-9", 9),
            None,
            &ctx(),
        )
        .await
        .unwrap();
    store
        .replace(
            &t.id,
            ResourceKind::User,
            &second.id,
            with("u2", "B-1", 1),
            None,
            &ctx(),
        )
        .await
        .unwrap();
}

/// PUT bumps the version and lastModified, keeps created, replaces every attribute.
pub async fn replace_bumps_version_and_keeps_created(store: Arc<dyn Store>) {
    let t = new_tenant(store.as_ref()).await;
    let mut doc = user("rep");
    doc["title"] = json!("Engineer");
    let created = store
        .create(&t.id, ResourceKind::User, doc, &ctx())
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    let mut doc = user("rep");
    doc["displayName"] = json!("Rep");
    let replaced = store
        .replace(&t.id, ResourceKind::User, &created.id, doc, None, &ctx())
        .await
        .unwrap();
    assert_eq!(replaced.version, 2);
    assert_eq!(replaced.created, created.created);
    assert!(replaced.last_modified > created.last_modified);
    assert_eq!(replaced.document["meta"]["version"], "W/\"2\"");
    assert_eq!(
        replaced.document["meta"]["created"],
        created.document["meta"]["created"]
    );
    assert!(
        replaced.document.get("title").is_none(),
        "PUT replaces: absent attributes are cleared"
    );
    assert_eq!(replaced.document["displayName"], "Rep");
    let err = store
        .replace(
            &t.id,
            ResourceKind::User,
            "missing",
            user("x"),
            None,
            &ctx(),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }));
}

/// A write that changes nothing keeps version and lastModified, and records no event.
pub async fn no_op_replace_keeps_version_and_last_modified(store: Arc<dyn Store>) {
    let t = new_tenant(store.as_ref()).await;
    let mut doc = user("noop");
    doc["name"] = json!({"givenName": "No", "familyName": "Op"});
    doc["emails"] = json!([{"value": "noop@example.com", "type": "work"}]);
    let created = store
        .create(&t.id, ResourceKind::User, doc.clone(), &ctx())
        .await
        .unwrap();
    let events_before = store.events(&t.id, 0, 100).await.unwrap().len();
    tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    // Same content, other key order, client-side meta: still no change.
    let reordered = json!({
        "emails": [{"type": "work", "value": "noop@example.com"}],
        "name": {"familyName": "Op", "givenName": "No"},
        "userName": "noop",
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "meta": {"lastModified": "2001-01-01T00:00:00Z"},
        "id": created.id,
    });
    let same = store
        .replace(
            &t.id,
            ResourceKind::User,
            &created.id,
            reordered,
            Some(1),
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(same.version, 1);
    assert_eq!(same.last_modified, created.last_modified);
    assert_eq!(same.document, created.document);
    assert_eq!(
        store.events(&t.id, 0, 100).await.unwrap().len(),
        events_before
    );

    let g = store
        .create(
            &t.id,
            ResourceKind::Group,
            group("G", &[&created.id]),
            &ctx(),
        )
        .await
        .unwrap();
    let same = store
        .replace(
            &t.id,
            ResourceKind::Group,
            &g.id,
            group("G", &[&created.id]),
            None,
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(
        (same.version, same.last_modified),
        (g.version, g.last_modified)
    );
    let changed = store
        .replace(
            &t.id,
            ResourceKind::Group,
            &g.id,
            group("G", &[]),
            None,
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(changed.version, 2, "a membership change is a change");
}

/// RFC 7644 section 3.14: a write with a stale expected version fails with 412 and changes
/// nothing.
pub async fn expected_versions_are_enforced(store: Arc<dyn Store>) {
    let t = new_tenant(store.as_ref()).await;
    let u = store
        .create(&t.id, ResourceKind::User, user("ver"), &ctx())
        .await
        .unwrap();
    let mut doc = user("ver");
    doc["title"] = json!("v2");
    store
        .replace(&t.id, ResourceKind::User, &u.id, doc, Some(1), &ctx())
        .await
        .unwrap();
    let mut doc = user("ver");
    doc["title"] = json!("stale");
    let err = store
        .replace(&t.id, ResourceKind::User, &u.id, doc, Some(1), &ctx())
        .await
        .unwrap_err();
    match err {
        StoreError::VersionMismatch { expected, actual } => assert_eq!((expected, actual), (1, 2)),
        ref other => panic!("expected a version mismatch, got {other:?}"),
    }
    assert_eq!(err.status(), 412);
    let now = store
        .get(&t.id, ResourceKind::User, &u.id, Members::Include)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(now.document["title"], "v2");
    let err = store
        .delete(&t.id, ResourceKind::User, &u.id, Some(7), &ctx())
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StoreError::VersionMismatch {
            expected: 7,
            actual: 2
        }
    ));
    store
        .delete(&t.id, ResourceKind::User, &u.id, Some(2), &ctx())
        .await
        .unwrap();
}

/// DELETE removes the resource (and its memberships) and records an event.
pub async fn delete_removes_and_records(store: Arc<dyn Store>) {
    let t = new_tenant(store.as_ref()).await;
    let u = store
        .create(&t.id, ResourceKind::User, user("del"), &ctx())
        .await
        .unwrap();
    let g = store
        .create(&t.id, ResourceKind::Group, group("Del", &[&u.id]), &ctx())
        .await
        .unwrap();
    store
        .delete(&t.id, ResourceKind::User, &u.id, None, &ctx())
        .await
        .unwrap();
    assert!(
        store
            .get(&t.id, ResourceKind::User, &u.id, Members::Include)
            .await
            .unwrap()
            .is_none()
    );
    let g = store
        .get(&t.id, ResourceKind::Group, &g.id, Members::Include)
        .await
        .unwrap()
        .unwrap();
    assert!(
        g.document.get("members").is_none(),
        "the deleted user left the group: {}",
        g.document
    );
    let err = store
        .delete(&t.id, ResourceKind::User, &u.id, None, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound { .. }));
    let events = store.events(&t.id, 0, 100).await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(
        (last.op, last.id.as_str(), last.version),
        (ChangeOp::Deleted, u.id.as_str(), 1)
    );
}

/// RFC 7643 sections 4.1.2 and 4.2: members are stored as rows; `groups` is derived.
pub async fn group_members_are_rows_and_groups_are_derived(store: Arc<dyn Store>) {
    let t = new_tenant(store.as_ref()).await;
    let mut doc = user("alice");
    doc["displayName"] = json!("Alice A.");
    let alice = store
        .create(&t.id, ResourceKind::User, doc, &ctx())
        .await
        .unwrap();
    let bob = store
        .create(&t.id, ResourceKind::User, user("bob"), &ctx())
        .await
        .unwrap();
    let inner = store
        .create(
            &t.id,
            ResourceKind::Group,
            group("Inner", &[&bob.id]),
            &ctx(),
        )
        .await
        .unwrap();
    let outer = store
        .create(
            &t.id,
            ResourceKind::Group,
            group("Outer", &[&alice.id, &inner.id, &alice.id.to_uppercase()]),
            &ctx(),
        )
        .await
        .unwrap();
    let members = outer.document["members"].as_array().unwrap();
    assert_eq!(
        members.len(),
        2,
        "duplicates (case-insensitively) collapse: {members:?}"
    );
    let alice_entry = members
        .iter()
        .find(|m| m["value"] == json!(alice.id))
        .unwrap();
    assert_eq!(alice_entry["display"], "Alice A.");
    assert_eq!(alice_entry["type"], "User");
    let inner_entry = members
        .iter()
        .find(|m| m["value"] == json!(inner.id))
        .unwrap();
    assert_eq!(
        (
            inner_entry["display"].as_str(),
            inner_entry["type"].as_str()
        ),
        (Some("Inner"), Some("Group"))
    );

    let excluded = store
        .get(&t.id, ResourceKind::Group, &outer.id, Members::Exclude)
        .await
        .unwrap()
        .unwrap();
    assert!(excluded.document.get("members").is_none());
    assert_eq!(excluded.version, outer.version);

    let alice_now = store
        .get(&t.id, ResourceKind::User, &alice.id, Members::Include)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        alice_now.document["groups"],
        json!([{"value": outer.id, "display": "Outer", "type": "direct"}])
    );
    assert_eq!(
        alice_now.version, 1,
        "joining a group is a change of the group, not of the user"
    );
    let bob_now = store
        .get(&t.id, ResourceKind::User, &bob.id, Members::Include)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bob_now.document["groups"][0]["value"], json!(inner.id));

    // Replacing the members replaces the rows.
    let outer2 = store
        .replace(
            &t.id,
            ResourceKind::Group,
            &outer.id,
            group("Outer", &[&bob.id]),
            None,
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(
        outer2.document["members"],
        json!([{"value": bob.id, "display": "bob", "type": "User"}])
    );
    let alice_now = store
        .get(&t.id, ResourceKind::User, &alice.id, Members::Include)
        .await
        .unwrap()
        .unwrap();
    assert!(alice_now.document.get("groups").is_none());
    // Deleting a group removes it from its members' groups and from its parent groups.
    store
        .delete(&t.id, ResourceKind::Group, &inner.id, None, &ctx())
        .await
        .unwrap();
    let bob_now = store
        .get(&t.id, ResourceKind::User, &bob.id, Members::Include)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bob_now.document["groups"].as_array().map(Vec::len), Some(1));
}

/// Members must be resources of the same tenant, and a group cannot contain itself.
pub async fn members_must_exist(store: Arc<dyn Store>) {
    let a = new_tenant(store.as_ref()).await;
    let b = new_tenant(store.as_ref()).await;
    let foreign = store
        .create(&b.id, ResourceKind::User, user("foreign"), &ctx())
        .await
        .unwrap();
    for bad in [group("G", &["no-such-id"]), group("G", &[&foreign.id])] {
        let err = store
            .create(&a.id, ResourceKind::Group, bad, &ctx())
            .await
            .unwrap_err();
        assert_eq!(
            (err.status(), err.scim_type()),
            (400, Some("invalidValue")),
            "{err}"
        );
    }
    let g = store
        .create(&a.id, ResourceKind::Group, group("G", &[]), &ctx())
        .await
        .unwrap();
    let err = store
        .replace(
            &a.id,
            ResourceKind::Group,
            &g.id,
            group("G", &[&g.id]),
            None,
            &ctx(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), 400);
    let err = store
        .create(
            &a.id,
            ResourceKind::Group,
            json!({"displayName": "X", "members": [{"display": "no value"}]}),
            &ctx(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), 400);
}

/// The change feed: one event per committed change, gapless per tenant, none for failures or
/// no-ops.
pub async fn events_are_ordered_and_only_for_commits(store: Arc<dyn Store>) {
    let t = new_tenant(store.as_ref()).await;
    let other = new_tenant(store.as_ref()).await;
    let who = WriteContext {
        actor: "okta".into(),
        request_id: Some("r-42".into()),
    };
    let u = store
        .create(&t.id, ResourceKind::User, user("ev"), &who)
        .await
        .unwrap();
    let _ = store
        .create(&t.id, ResourceKind::User, user("EV"), &who)
        .await
        .unwrap_err();
    let _ = store
        .replace(&t.id, ResourceKind::User, &u.id, user("ev2"), Some(9), &who)
        .await
        .unwrap_err();
    store
        .replace(&t.id, ResourceKind::User, &u.id, user("ev2"), Some(1), &who)
        .await
        .unwrap();
    store
        .replace(&t.id, ResourceKind::User, &u.id, user("ev2"), None, &who)
        .await
        .unwrap();
    let g = store
        .create(&t.id, ResourceKind::Group, group("evg", &[&u.id]), &ctx())
        .await
        .unwrap();
    store
        .delete(&t.id, ResourceKind::Group, &g.id, None, &ctx())
        .await
        .unwrap();
    store
        .create(&other.id, ResourceKind::User, user("ev"), &who)
        .await
        .unwrap();

    let events = store.events(&t.id, 0, 100).await.unwrap();
    let summary: Vec<(u64, ChangeOp, ResourceKind, u64)> = events
        .iter()
        .map(|e| (e.seq, e.op, e.kind, e.version))
        .collect();
    assert_eq!(
        summary,
        vec![
            (1, ChangeOp::Created, ResourceKind::User, 1),
            (2, ChangeOp::Replaced, ResourceKind::User, 2),
            (3, ChangeOp::Created, ResourceKind::Group, 1),
            (4, ChangeOp::Deleted, ResourceKind::Group, 1),
        ]
    );
    assert_eq!(
        (events[0].actor.as_str(), events[0].request_id.as_deref()),
        ("okta", Some("r-42"))
    );
    assert_eq!(events[0].id, u.id);
    assert!(events.windows(2).all(|w| w[0].at <= w[1].at));
    assert_eq!(
        store
            .events(&t.id, 2, 1)
            .await
            .unwrap()
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>(),
        vec![3]
    );
    assert!(store.events(&t.id, 4, 10).await.unwrap().is_empty());
    assert_eq!(
        store.events(&other.id, 0, 10).await.unwrap().len(),
        1,
        "each tenant has its own sequence"
    );
}

/// Bulk import keeps given ids, assigns others, and is atomic.
pub async fn import_is_all_or_nothing(store: Arc<dyn Store>) {
    let t = new_tenant(store.as_ref()).await;
    let mut kept = user("imp-1");
    kept["id"] = json!("legacy-0001");
    let outcome = store
        .import(&t.id, ResourceKind::User, vec![kept, user("imp-2")], &ctx())
        .await
        .unwrap();
    assert_eq!(outcome.ids.len(), 2);
    assert_eq!(outcome.ids[0], "legacy-0001");
    let got = store
        .get(&t.id, ResourceKind::User, "legacy-0001", Members::Include)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.document["userName"].as_str(), got.version),
        (Some("imp-1"), 1)
    );
    let groups = store
        .import(
            &t.id,
            ResourceKind::Group,
            vec![group("imp", &["legacy-0001", &outcome.ids[1]])],
            &ctx(),
        )
        .await
        .unwrap();
    let g = store
        .get(&t.id, ResourceKind::Group, &groups.ids[0], Members::Include)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(g.document["members"].as_array().map(Vec::len), Some(2));

    let events_before = store.events(&t.id, 0, 1000).await.unwrap().len();
    let batch = vec![user("imp-3"), user("imp-4"), user("IMP-1")];
    let err = store
        .import(&t.id, ResourceKind::User, batch, &ctx())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Uniqueness { .. }), "{err:?}");
    let all = store
        .query(&t.id, ResourceKind::User, &Query::default())
        .await
        .unwrap();
    assert_eq!(all.total_results, 2, "nothing of a failed import is kept");
    assert_eq!(
        store.events(&t.id, 0, 1000).await.unwrap().len(),
        events_before
    );
    let mut dup = user("imp-5");
    dup["id"] = json!("LEGACY-0001");
    let err = store
        .import(&t.id, ResourceKind::User, vec![dup], &ctx())
        .await
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Uniqueness { ref attribute, .. } if attribute == "id"),
        "{err:?}"
    );
}

/// Many tasks racing to create one userName (in different cases): exactly one wins.
pub async fn concurrent_creates_of_one_user_name_one_wins(store: Arc<dyn Store>) {
    let t = new_tenant(store.as_ref()).await;
    let mut tasks = Vec::new();
    for i in 0..48 {
        let store = Arc::clone(&store);
        let tenant = t.id;
        let name = if i % 2 == 0 { "Racer" } else { "rACER" };
        tasks.push(tokio::spawn(async move {
            store
                .create(&tenant, ResourceKind::User, user(name), &ctx())
                .await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => won += 1,
            Err(StoreError::Uniqueness { .. }) => {}
            Err(other) => panic!("a racing create failed otherwise than on uniqueness: {other}"),
        }
    }
    assert_eq!(won, 1);
    let page = store
        .query(&t.id, ResourceKind::User, &Query::default())
        .await
        .unwrap();
    assert_eq!(page.total_results, 1);
    assert_eq!(store.events(&t.id, 0, 100).await.unwrap().len(), 1);
}

/// Many tasks replacing one resource with the same expected version: exactly one wins.
pub async fn concurrent_replaces_with_one_expected_version_one_wins(store: Arc<dyn Store>) {
    let t = new_tenant(store.as_ref()).await;
    let u = store
        .create(&t.id, ResourceKind::User, user("cas"), &ctx())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..32 {
        let store = Arc::clone(&store);
        let (tenant, id) = (t.id, u.id.clone());
        tasks.push(tokio::spawn(async move {
            let mut doc = user("cas");
            doc["title"] = json!(format!("writer {i}"));
            store
                .replace(&tenant, ResourceKind::User, &id, doc, Some(1), &ctx())
                .await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(r) => {
                won += 1;
                assert_eq!(r.version, 2);
            }
            Err(StoreError::VersionMismatch {
                expected: 1,
                actual: 2,
            }) => {}
            Err(other) => panic!("unexpected: {other}"),
        }
    }
    assert_eq!(won, 1);
}

/// Sorting (RFC 7644 section 3.4.2.3), index paging (section 3.4.2.4), cursor paging (RFC 9865).
pub async fn query_paging_sorting_and_cursors(store: Arc<dyn Store>) {
    let t = new_tenant(store.as_ref()).await;
    let names = [
        "delta", "Alpha", "Élodie", "charlie", "bravo", "echo", "Zulu", "élan", "foxtrot", "golf",
        "hotel",
    ];
    let mut ids = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut doc = user(name);
        if i % 3 != 0 {
            doc["name"] = json!({"familyName": format!("F{}", names.len() - i)});
        }
        ids.push(
            store
                .create(&t.id, ResourceKind::User, doc, &ctx())
                .await
                .unwrap()
                .id,
        );
    }
    let all = store
        .query(&t.id, ResourceKind::User, &Query::default())
        .await
        .unwrap();
    assert_eq!(all.total_results, 11);
    assert_eq!(ids_of(&all), ids, "without sortBy, creation order");

    let by_name = |order| Query {
        sort_by: Some(AttrPath::simple("userName")),
        sort_order: order,
        ..Query::default()
    };
    let asc = store
        .query(&t.id, ResourceKind::User, &by_name(SortOrder::Ascending))
        .await
        .unwrap();
    let names_asc: Vec<String> = asc
        .resources
        .iter()
        .map(|r| r.document["userName"].as_str().unwrap().to_owned())
        .collect();
    let mut expected: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    expected.sort_by_key(|s| scim_schema::fold_case(s).into_owned());
    assert_eq!(names_asc, expected, "case-insensitive Unicode order");
    let desc = store
        .query(&t.id, ResourceKind::User, &by_name(SortOrder::Descending))
        .await
        .unwrap();
    let mut reversed = ids_of(&asc);
    reversed.reverse();
    assert_eq!(ids_of(&desc), reversed);

    // Resources without a value sort last ascending and first descending.
    let family = |order| Query {
        sort_by: Some(AttrPath::with_sub("name", "familyName")),
        sort_order: order,
        ..Query::default()
    };
    let fam = store
        .query(&t.id, ResourceKind::User, &family(SortOrder::Ascending))
        .await
        .unwrap();
    let has_family: Vec<bool> = fam
        .resources
        .iter()
        .map(|r| r.document.get("name").is_some())
        .collect();
    assert_eq!(has_family.iter().filter(|b| !**b).count(), 4);
    assert!(
        has_family.windows(2).all(|w| w[0] || !w[1]),
        "missing values last: {has_family:?}"
    );
    let fam_desc = store
        .query(&t.id, ResourceKind::User, &family(SortOrder::Descending))
        .await
        .unwrap();
    let mut reversed = ids_of(&fam);
    reversed.reverse();
    assert_eq!(ids_of(&fam_desc), reversed);

    // Index paging.
    let page = |start, count| Query {
        paging: Paging::Index { start_index: start },
        count: Some(count),
        ..by_name(SortOrder::Ascending)
    };
    let p = store
        .query(&t.id, ResourceKind::User, &page(3, 4))
        .await
        .unwrap();
    assert_eq!((p.total_results, p.start_index), (11, 3));
    assert_eq!(ids_of(&p), ids_of(&asc)[2..6].to_vec());
    let p = store
        .query(&t.id, ResourceKind::User, &page(0, 2))
        .await
        .unwrap();
    assert_eq!(
        (p.start_index, ids_of(&p)),
        (1, ids_of(&asc)[..2].to_vec()),
        "startIndex below 1 is 1"
    );
    let p = store
        .query(&t.id, ResourceKind::User, &page(50, 5))
        .await
        .unwrap();
    assert_eq!((p.total_results, p.resources.len()), (11, 0));
    let p = store
        .query(&t.id, ResourceKind::User, &page(1, 0))
        .await
        .unwrap();
    assert_eq!(
        (p.total_results, p.resources.len()),
        (11, 0),
        "count=0 returns only totalResults"
    );

    // Cursor paging walks everything exactly once, in order, for every sort.
    for query in [
        Query::default(),
        by_name(SortOrder::Ascending),
        by_name(SortOrder::Descending),
        family(SortOrder::Ascending),
        family(SortOrder::Descending),
    ] {
        let full = store
            .query(&t.id, ResourceKind::User, &query)
            .await
            .unwrap();
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let q = Query {
                paging: Paging::Cursor(cursor.clone()),
                count: Some(3),
                ..query.clone()
            };
            let p = store.query(&t.id, ResourceKind::User, &q).await.unwrap();
            assert_eq!(p.total_results, 11);
            assert!(p.resources.len() <= 3);
            seen.extend(ids_of(&p));
            match p.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, ids_of(&full), "cursor pages of {:?}", query.sort_by);
    }

    // A cursor is stable under concurrent changes: deleting an already-seen resource and
    // creating one that sorts earlier neither repeats nor skips the rest.
    let q = Query {
        paging: Paging::Cursor(None),
        count: Some(4),
        ..by_name(SortOrder::Ascending)
    };
    let first = store.query(&t.id, ResourceKind::User, &q).await.unwrap();
    store
        .delete(
            &t.id,
            ResourceKind::User,
            &first.resources[0].id,
            None,
            &ctx(),
        )
        .await
        .unwrap();
    store
        .create(&t.id, ResourceKind::User, user("aaa-new"), &ctx())
        .await
        .unwrap();
    let q = Query {
        paging: Paging::Cursor(first.next_cursor.clone()),
        count: Some(100),
        ..q
    };
    let rest = store.query(&t.id, ResourceKind::User, &q).await.unwrap();
    assert_eq!(ids_of(&rest), ids_of(&asc)[4..].to_vec());
    assert!(rest.next_cursor.is_none());
}

/// Bad cursors and inapplicable filters are client errors.
pub async fn query_rejects_bad_cursors_and_filters(store: Arc<dyn Store>) {
    let t = new_tenant(store.as_ref()).await;
    for i in 0..3 {
        store
            .create(&t.id, ResourceKind::User, user(&format!("c{i}")), &ctx())
            .await
            .unwrap();
    }
    let q = Query {
        paging: Paging::Cursor(None),
        count: Some(1),
        ..Query::default()
    };
    let p = store.query(&t.id, ResourceKind::User, &q).await.unwrap();
    let cursor = p.next_cursor.unwrap();
    let other_sort = Query {
        sort_by: Some(AttrPath::simple("userName")),
        paging: Paging::Cursor(Some(cursor)),
        count: Some(1),
        ..Query::default()
    };
    let err = store
        .query(&t.id, ResourceKind::User, &other_sort)
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.scim_type()),
        (400, Some("invalidCursor"))
    );
    let garbage = Query {
        paging: Paging::Cursor(Some("not-a-cursor".into())),
        ..Query::default()
    };
    assert!(matches!(
        store.query(&t.id, ResourceKind::User, &garbage).await,
        Err(StoreError::InvalidCursor(_))
    ));
    let bad = scim_filter::parse_filter("active gt true").unwrap();
    let err = store
        .query(
            &t.id,
            ResourceKind::User,
            &Query {
                filter: Some(bad),
                ..Query::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.scim_type()),
        (400, Some("invalidFilter"))
    );
    let members_of_users = scim_filter::parse_filter("userName[value eq \"x\"]").unwrap();
    assert!(
        store
            .query(
                &t.id,
                ResourceKind::User,
                &Query {
                    filter: Some(members_of_users),
                    ..Query::default()
                }
            )
            .await
            .is_err()
    );
}

fn patch_request(operations: serde_json::Value) -> scim_patch::PatchRequest {
    let message = json!({"schemas": [scim_patch::PATCH_OP_URN], "Operations": operations});
    scim_patch::PatchRequest::from_json(&message, &scim_patch::PatchOptions::default()).unwrap()
}

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
    let r = store
        .patch(
            &t.id,
            ResourceKind::User,
            &u.id,
            &deactivate,
            &settings,
            Some(1),
            &ctx(),
            Members::Include,
        )
        .await
        .unwrap();
    assert!(r.changed);
    assert_eq!(
        (r.resource.version, &r.resource.document["active"]),
        (2, &json!(false))
    );
    let again = store
        .patch(
            &t.id,
            ResourceKind::User,
            &u.id,
            &deactivate,
            &settings,
            None,
            &ctx(),
            Members::Include,
        )
        .await
        .unwrap();
    assert!(!again.changed);
    assert_eq!(
        (again.resource.version, again.resource.last_modified),
        (2, r.resource.last_modified)
    );
    let err = store
        .patch(
            &t.id,
            ResourceKind::User,
            &u.id,
            &deactivate,
            &settings,
            Some(1),
            &ctx(),
            Members::Include,
        )
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
            ResourceKind::User,
            &u.id,
            &add_email,
            &settings,
            None,
            &ctx(),
            Members::Include,
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
            ResourceKind::User,
            &u.id,
            &rename,
            &settings,
            None,
            &ctx(),
            Members::Include,
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
            ResourceKind::User,
            &u.id,
            &bad,
            &settings,
            None,
            &ctx(),
            Members::Include,
        )
        .await
        .unwrap_err();
    assert_eq!(err.status(), 400, "{err}");
    let err = store
        .patch(
            &t.id,
            ResourceKind::User,
            "missing",
            &deactivate,
            &settings,
            None,
            &ctx(),
            Members::Include,
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
                    ResourceKind::Group,
                    &id,
                    &patch_request(req),
                    &settings,
                    None,
                    &ctx(),
                    Members::Include,
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
            ResourceKind::Group,
            &g.id,
            &patch_request(json!([{"op": "add", "path": "members", "value": [{"value": ids[1]}]}])),
            &settings,
            None,
            &ctx(),
            Members::Exclude,
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

/// A User's `password` is stored only as an argon2id PHC string: create, replace, patch and
/// import all refuse a clear-text one (400 `invalidValue`), keep nothing of the write, and
/// accept a hash. Whatever a server or an embedder sends, no clear password is stored.
pub async fn clear_passwords_are_refused_on_every_write_path(store: Arc<dyn Store>) {
    const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0$5cY5cNB1Vj0bCmJ8Oq1z7e1m1Ck3rH9q6e8rD4M2mZ8";
    let t = new_tenant(store.as_ref()).await;
    let refused = |err: StoreError| {
        assert_eq!(err.status(), 400, "{err}");
        assert_eq!(err.scim_type(), Some("invalidValue"), "{err}");
        assert!(err.to_string().contains("password"), "{err}");
    };
    for clear in [json!("clear-text"), json!("$argon2i$v=19$nope"), json!(42)] {
        let mut doc = user("pw-create");
        doc["password"] = clear.clone();
        refused(
            store
                .create(&t.id, ResourceKind::User, doc.clone(), &ctx())
                .await
                .unwrap_err(),
        );
        refused(
            store
                .import(&t.id, ResourceKind::User, vec![doc], &ctx())
                .await
                .unwrap_err(),
        );
    }
    let mut doc = user("pw-ok");
    doc["password"] = json!(HASH);
    let u = store
        .create(&t.id, ResourceKind::User, doc, &ctx())
        .await
        .unwrap();
    let mut replacement = user("pw-ok");
    replacement["password"] = json!("clear-text");
    refused(
        store
            .replace(&t.id, ResourceKind::User, &u.id, replacement, None, &ctx())
            .await
            .unwrap_err(),
    );
    for value in [json!("clear-text"), json!(["clear-text"])] {
        let request = patch_request(json!([{"op": "replace", "path": "password", "value": value}]));
        refused(
            store
                .patch(
                    &t.id,
                    ResourceKind::User,
                    &u.id,
                    &request,
                    &scim_store_core::PatchSettings::default(),
                    None,
                    &ctx(),
                    Members::Include,
                )
                .await
                .unwrap_err(),
        );
    }
    let all = store
        .query(&t.id, ResourceKind::User, &Query::default())
        .await
        .unwrap();
    assert_eq!(all.total_results, 1, "nothing of a refused write is kept");
    let got = store
        .get(&t.id, ResourceKind::User, &u.id, Members::Include)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((got.version, &got.document["password"]), (1, &json!(HASH)));
}
