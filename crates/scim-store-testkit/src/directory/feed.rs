//! The change feed: one event per committed change, in order.

use crate::{ctx, group, new_tenant, user};
use scim_store_core::{ChangeOp, ResourceKind, Store, WriteContext};
use std::sync::Arc;

/// The change feed: one event per committed change, gapless per tenant, none for failures or
/// no-ops.
pub async fn events_are_ordered_and_only_for_commits(store: Arc<dyn Store>) {
    let t = new_tenant(store.as_ref()).await;
    let other = new_tenant(store.as_ref()).await;
    let who = WriteContext {
        actor: "okta".into(),
        request_id: Some("r-42".into()),
        ..WriteContext::default()
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
