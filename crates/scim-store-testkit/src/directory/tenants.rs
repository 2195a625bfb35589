//! Tenants and their bearer tokens: names, deletion, authentication and revocation.

use crate::{ctx, group, new_tenant, user};
use scim_store_core::{Members, Query, ResourceKind, Store, StoreError, TokenScope};
use serde_json::json;
use std::sync::Arc;

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

/// A token records when it last authenticated a request, to the minute: unset until its first
/// use, set by it (within the second), not rewritten by the next uses of the same minute, and
/// listed; another token of the tenant keeps its own.
pub async fn tokens_record_their_last_use(store: Arc<dyn Store>) {
    let t = new_tenant(store.as_ref()).await;
    let used = store
        .issue_token(&t.id, "entra", TokenScope::Scim)
        .await
        .unwrap();
    let idle = store
        .issue_token(&t.id, "okta", TokenScope::Scim)
        .await
        .unwrap();
    let last_used = |tokens: &[scim_store_core::TokenInfo], id: &str| {
        tokens.iter().find(|k| k.id == id).unwrap().last_used
    };
    let listed = store.list_tokens(&t.id).await.unwrap();
    assert_eq!(last_used(&listed, &used.id), None);

    let before = scim_store_core::document::now();
    let (_, first) = store.authenticate(&used.secret).await.unwrap().unwrap();
    let recorded = first.last_used.expect("the first use is recorded");
    assert!(
        (recorded.unix_seconds - before.unix_seconds).abs() <= 1,
        "{recorded:?} vs {before:?}"
    );
    let (_, second) = store.authenticate(&used.secret).await.unwrap().unwrap();
    assert_eq!(
        second.last_used,
        Some(recorded),
        "rewritten within the minute"
    );
    let listed = store.list_tokens(&t.id).await.unwrap();
    assert_eq!(last_used(&listed, &used.id), Some(recorded));
    assert_eq!(last_used(&listed, &idle.id), None);
}
