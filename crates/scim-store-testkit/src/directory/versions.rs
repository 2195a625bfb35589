//! Versions (RFC 7644 section 3.14): stale expected versions fail and change nothing, also
//! under concurrent replaces.

use crate::{ctx, new_tenant, user};
use scim_store_core::{Members, ResourceKind, Store, StoreError};
use serde_json::json;
use std::sync::Arc;

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
