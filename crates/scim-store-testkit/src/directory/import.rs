//! Bulk import: all or nothing, keeping the ids it is given.

use crate::{ctx, group, new_tenant, user};
use scim_store_core::{Members, Query, ResourceKind, Store, StoreError};
use serde_json::json;
use std::sync::Arc;

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
