//! Assignments: one resource to one active person.

use crate::workplace::fixtures::*;
use scim_store_core::workplace::{FeedSubject, WorkplaceStore};
use scim_store_core::{ResourceKind, StoreError};
use std::sync::Arc;
use workplace_policy::CascadeSettings;

/// Assignments: one per resource, only for active people, listed by person, released once.
pub async fn workplace_assignments(store: Arc<dyn WorkplaceStore>) {
    let s = store.as_ref();
    let t = office(s, CascadeSettings::default()).await;
    let c = admin();
    let alice = create_person(s, &t, "alice", "Marketing").await;
    let bob = create_person(s, &t, "bob", "Marketing").await;
    let off = s
        .create(
            &t,
            ResourceKind::User,
            person_doc("off", "Sales", false),
            &idp("r"),
        )
        .await
        .unwrap()
        .id;
    let t0 = now();
    let a = s.assign(&t, &alice, "d1", &c, t0).await.unwrap();
    assert_eq!(
        (a.person.as_str(), a.resource.as_str(), a.since),
        (alice.as_str(), "d1", t0)
    );
    let err = s.assign(&t, &bob, "d1", &c, t0).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    let err = s.assign(&t, &off, "d2", &c, t0).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    expect_status(s.assign(&t, "nobody", "d2", &c, t0).await, 404, "nobody");
    expect_status(
        s.assign(&t, &bob, "nowhere", &c, t0).await,
        404,
        "no such resource",
    );
    let b = s.assign(&t, &bob, "d2", &c, t0).await.unwrap();
    assert_eq!(
        s.assignments(&t, Some(&alice)).await.unwrap(),
        std::slice::from_ref(&a)
    );
    let mut all = vec![a.clone(), b.clone()];
    all.sort_by(|x, y| x.id.cmp(&y.id));
    assert_eq!(s.assignments(&t, None).await.unwrap(), all);
    assert_eq!(s.assignment(&t, &a.id).await.unwrap(), Some(a.clone()));
    assert_eq!(s.assignment(&t, "a-none").await.unwrap(), None);
    assert_eq!(s.assignment(&t, "a\0nul").await.unwrap(), None);
    let other = tenant(s).await;
    assert_eq!(
        s.assignment(&other, &a.id).await.unwrap(),
        None,
        "another tenant's"
    );
    assert!(s.release_assignment(&t, &a.id, &c).await.unwrap());
    assert!(!s.release_assignment(&t, &a.id, &c).await.unwrap());
    assert_eq!(s.assignment(&t, &a.id).await.unwrap(), None, "released");
    s.assign(&t, &bob, "d1", &c, t0).await.unwrap();
    let entries = feed(s, &t).await;
    let ops: Vec<&str> = entries
        .iter()
        .filter(|e| e.subject == FeedSubject::Assignment)
        .map(|e| e.op.as_str())
        .collect();
    assert_eq!(ops, ["assigned", "assigned", "released", "assigned"]);
}
