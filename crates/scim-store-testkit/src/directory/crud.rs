//! Create, read, replace and delete (RFC 7644 sections 3.3 to 3.6): ids, `meta`, tenant and
//! kind scoping, and writes that change nothing.

use crate::{ctx, group, new_tenant, user};
use scim_store_core::{ChangeOp, Members, Query, ResourceKind, Store, StoreError};
use serde_json::json;
use std::sync::Arc;

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
