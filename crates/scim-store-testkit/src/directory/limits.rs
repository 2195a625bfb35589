//! The limits on what one resource may hold ([`ResourceLimits`](scim_store_core::ResourceLimits)),
//! on every write path, and PATCHes racing on one resource.

use crate::directory::patch_request;
use crate::{KIT_LIMITS, TEST_EXTENSION, ctx, group, new_tenant, user};
use scim_store_core::{Members, PatchCall, PatchSettings, ResourceKind, Store, StoreError};
use serde_json::{Value, json};
use std::sync::Arc;

fn emails(n: usize) -> Value {
    (0..n)
        .map(|i| json!({"value": format!("u{i}@example.com"), "type": "work"}))
        .collect()
}

fn refused_for(error: &StoreError, setting: &str) {
    assert_eq!(
        (error.status(), error.scim_type()),
        (400, Some("invalidValue")),
        "{error}"
    );
    assert!(error.to_string().contains(setting), "{error}");
}

/// A resource within the limits is kept; a create, PUT, PATCH or import that would exceed one
/// is refused with 400 `invalidValue` naming the attribute and the setting, and changes
/// nothing. A Group's members are rows: no limit on them here.
pub async fn resource_limits_hold_on_every_write_path(store: Arc<dyn Store>) {
    let t = new_tenant(store.as_ref()).await;
    let max = KIT_LIMITS.max_values;
    let mut full = user("full");
    full["emails"] = emails(max);
    let u = store
        .create(&t.id, ResourceKind::User, full.clone(), &ctx())
        .await
        .expect("at the limit");

    let mut over = user("over");
    over["emails"] = emails(max + 1);
    let refused = store
        .create(&t.id, ResourceKind::User, over.clone(), &ctx())
        .await
        .unwrap_err();
    refused_for(&refused, "max_values_per_attribute");
    assert!(
        refused.to_string().starts_with("emails would have"),
        "{refused}"
    );

    let mut replaced = over.clone();
    replaced["userName"] = json!("full");
    let refused = store
        .replace(&t.id, ResourceKind::User, &u.id, replaced, None, &ctx())
        .await
        .unwrap_err();
    refused_for(&refused, "max_values_per_attribute");

    let settings = PatchSettings::default();
    let one_more = patch_request(
        json!([{"op": "add", "path": "emails", "value": [{"value": "x@example.com"}]}]),
    );
    let call = PatchCall {
        kind: ResourceKind::User,
        id: &u.id,
        request: &one_more,
        settings: &settings,
        expected_version: None,
        members: Members::Include,
    };
    let refused = store.patch(&t.id, call, &ctx()).await.unwrap_err();
    refused_for(&refused, "max_values_per_attribute");

    let refused = store
        .import(&t.id, ResourceKind::User, vec![over], &ctx())
        .await
        .unwrap_err();
    refused_for(&refused, "max_values_per_attribute");

    // The size: one long string in the test extension.
    let mut large = user("large");
    large[TEST_EXTENSION] = json!({"nickname": "x".repeat(KIT_LIMITS.max_bytes)});
    let refused = store
        .create(&t.id, ResourceKind::User, large, &ctx())
        .await
        .unwrap_err();
    refused_for(&refused, "max_resource_bytes");
    let grow = patch_request(
        json!([{"op": "add", "path": "nickName", "value": "y".repeat(KIT_LIMITS.max_bytes)}]),
    );
    let refused = store
        .patch(
            &t.id,
            PatchCall {
                request: &grow,
                ..call
            },
            &ctx(),
        )
        .await
        .unwrap_err();
    refused_for(&refused, "max_resource_bytes");

    let kept = store
        .get(&t.id, ResourceKind::User, &u.id, Members::Include)
        .await
        .unwrap()
        .expect("still there");
    assert_eq!(kept.version, 1, "nothing refused was written");
    assert_eq!(kept.document["emails"].as_array().map(Vec::len), Some(max));

    // Members are exempt, at create and by PATCH.
    let mut ids = Vec::new();
    for i in 0..=max {
        let member = store
            .create(&t.id, ResourceKind::User, user(&format!("m{i}")), &ctx())
            .await
            .unwrap();
        ids.push(member.id);
    }
    let first: Vec<&str> = ids.iter().take(max).map(String::as_str).collect();
    let g = store
        .create(&t.id, ResourceKind::Group, group("big", &first), &ctx())
        .await
        .expect("members are not limited");
    let add_last =
        patch_request(json!([{"op": "add", "path": "members", "value": [{"value": ids[max]}]}]));
    let patched = store
        .patch(
            &t.id,
            PatchCall {
                kind: ResourceKind::Group,
                id: &g.id,
                request: &add_last,
                ..call
            },
            &ctx(),
        )
        .await
        .expect("members are not limited");
    assert_eq!(
        patched.resource.document["members"]
            .as_array()
            .map(Vec::len),
        Some(max + 1)
    );
}

/// PATCHes of one User racing each other all land: a backend that plans a PATCH on a snapshot
/// and writes it only if the User is still at that version must plan again, never lose one.
/// Each is heavy (a thousand and one operations), so SQLite plans them outside its writer.
pub async fn concurrent_patches_of_one_user_lose_nothing(store: Arc<dyn Store>) {
    let t = new_tenant(store.as_ref()).await;
    let u = store
        .create(&t.id, ResourceKind::User, user("raced"), &ctx())
        .await
        .unwrap();
    let writers = 16;
    let mut tasks = Vec::new();
    for i in 0..writers {
        let store = Arc::clone(&store);
        let (tenant, id) = (t.id, u.id.clone());
        tasks.push(tokio::spawn(async move {
            // A thousand operations besides: heavy to apply (`Patching::is_heavy`), so that a
            // backend that plans heavy PATCHes on a snapshot races here.
            let mut operations = vec![json!({
                "op": "add", "path": "emails", "value": [{"value": format!("w{i}@example.com")}]
            })];
            operations.extend(
                (0..1_000)
                    .map(|n| json!({"op": "replace", "path": "title", "value": format!("t{n}")})),
            );
            let add = patch_request(Value::Array(operations));
            let settings = PatchSettings::default();
            let call = PatchCall {
                kind: ResourceKind::User,
                id: &id,
                request: &add,
                settings: &settings,
                expected_version: None,
                members: Members::Include,
            };
            store.patch(&tenant, call, &ctx()).await
        }));
    }
    for task in tasks {
        assert!(task.await.unwrap().unwrap().changed);
    }
    let after = store
        .get(&t.id, ResourceKind::User, &u.id, Members::Include)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.version, 1 + writers);
    let mut got: Vec<String> = after.document["emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].as_str().unwrap_or_default().to_owned())
        .collect();
    got.sort();
    let mut want: Vec<String> = (0..writers).map(|i| format!("w{i}@example.com")).collect();
    want.sort();
    assert_eq!(got, want, "every PATCH landed");
}
