//! Uniqueness (RFC 7643 sections 4.1 and 7): `userName` and every `uniqueness: server`
//! attribute, also under concurrent creates.

use crate::{TEST_EXTENSION, ctx, new_tenant, user};
use scim_store_core::{Query, ResourceKind, Store, StoreError};
use serde_json::json;
use std::sync::Arc;

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
