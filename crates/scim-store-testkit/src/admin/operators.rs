//! Operator tokens: server-wide, apart from every tenant's tokens.

use crate::new_tenant;
use scim_store_core::TokenScope;
use scim_store_core::admin::AdminStore;
use std::sync::Arc;

/// An operator token's secret authenticates as that operator token (same id and label) until
/// it is revoked, and never as a tenant's token; a tenant token's secret never authenticates
/// an operator. The list shows every operator token, oldest first, revoked ones included, with
/// their last use; revoking twice (or an unknown id) says `false`.
pub async fn admin_operator_tokens_authenticate_and_revoke(store: Arc<dyn AdminStore>) {
    let s = store.as_ref();
    let ops = s.issue_operator_token("ops-alice").await.unwrap();
    // Apart in time, so that "oldest first" is one order.
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let spare = s.issue_operator_token("ops-bob").await.unwrap();
    assert_ne!(ops.id, spare.id);
    assert_ne!(ops.secret, spare.secret);

    let found = s
        .authenticate_operator(&ops.secret)
        .await
        .unwrap()
        .expect("the operator secret authenticates");
    assert_eq!(
        (found.id.as_str(), found.label.as_str()),
        (ops.id.as_str(), "ops-alice")
    );
    assert_eq!(found.revoked, None);
    assert_eq!(
        s.authenticate_operator(&spare.secret)
            .await
            .unwrap()
            .map(|t| (t.id, t.label)),
        Some((spare.id.clone(), "ops-bob".to_owned()))
    );

    // Tenant tokens and operator tokens are apart, both ways.
    let tenant = new_tenant(s).await;
    let scim = s
        .issue_token(&tenant.id, "entra", TokenScope::Scim)
        .await
        .unwrap();
    assert!(
        s.authenticate(&ops.secret).await.unwrap().is_none(),
        "an operator secret is no tenant's token"
    );
    assert!(
        s.authenticate_operator(&scim.secret)
            .await
            .unwrap()
            .is_none(),
        "a tenant's secret is no operator token"
    );
    let (owner, info) = s.authenticate(&scim.secret).await.unwrap().unwrap();
    assert_eq!((owner.id, info.id.as_str()), (tenant.id, scim.id.as_str()));
    assert!(
        s.list_tokens(&tenant.id)
            .await
            .unwrap()
            .iter()
            .all(|t| t.id != ops.id),
        "an operator token is listed with no tenant"
    );
    for bad in ["", "scimd_", "not-a-secret", &format!("{}0", ops.secret)] {
        assert!(
            s.authenticate_operator(bad).await.unwrap().is_none(),
            "{bad:?}"
        );
    }

    let listed = s.list_operator_tokens().await.unwrap();
    let ids: Vec<(&str, &str)> = listed
        .iter()
        .map(|t| (t.id.as_str(), t.label.as_str()))
        .collect();
    assert_eq!(
        ids,
        [
            (ops.id.as_str(), "ops-alice"),
            (spare.id.as_str(), "ops-bob")
        ],
        "oldest first"
    );
    assert!(listed.iter().all(|t| t.revoked.is_none()));
    assert!(
        listed.iter().all(|t| t.last_used.is_some()),
        "both were used: {listed:?}"
    );
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let unused = s.issue_operator_token("ops-carol").await.unwrap();
    let listed = s.list_operator_tokens().await.unwrap();
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[2].id, unused.id);
    assert_eq!(listed[2].last_used, None, "never used");

    // Revocation.
    assert!(s.revoke_operator_token(&ops.id).await.unwrap());
    assert!(
        s.authenticate_operator(&ops.secret)
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        !s.revoke_operator_token(&ops.id).await.unwrap(),
        "revoked already"
    );
    assert!(!s.revoke_operator_token("no-such-token").await.unwrap());
    assert!(
        !s.revoke_operator_token(&scim.id).await.unwrap(),
        "a tenant's token is no operator token"
    );
    assert!(
        s.authenticate(&scim.secret).await.unwrap().is_some(),
        "the tenant's token still works"
    );
    assert!(
        s.authenticate_operator(&spare.secret)
            .await
            .unwrap()
            .is_some(),
        "the other operator token still works"
    );
    let listed = s.list_operator_tokens().await.unwrap();
    assert_eq!(listed.len(), 3, "revoked ones are listed");
    let revoked = listed.iter().find(|t| t.id == ops.id).unwrap();
    assert!(revoked.revoked.is_some(), "{revoked:?}");
    assert!(
        listed
            .iter()
            .filter(|t| t.id != ops.id)
            .all(|t| t.revoked.is_none())
    );
}
