//! Group membership (RFC 7643 sections 4.1.2 and 4.2): members are rows of the same tenant,
//! `groups` is derived from them.

use crate::{ctx, group, new_tenant, user};
use scim_store_core::{Members, ResourceKind, Store};
use serde_json::json;
use std::sync::Arc;

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
