//! A User's `password` is stored only as an argon2id hash, whatever the write path.

use crate::directory::patch_request;
use crate::{ctx, new_tenant, user};
use scim_store_core::{Members, PatchCall, Query, ResourceKind, Store, StoreError};
use serde_json::json;
use std::sync::Arc;

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
                    PatchCall {
                        kind: ResourceKind::User,
                        id: &u.id,
                        request: &request,
                        settings: &scim_store_core::PatchSettings::default(),
                        expected_version: None,
                        members: Members::Include,
                    },
                    &ctx(),
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
