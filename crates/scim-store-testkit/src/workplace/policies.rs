//! Policies: versions, validation, and previews of a change that are exactly what applies.

use crate::workplace::fixtures::*;
use scim_store_core::WriteContext;
use scim_store_core::workplace::{
    BookingFilter, BookingOutcome, FeedEvent, FeedSubject, WorkplaceStore,
};
use serde_json::json;
use std::sync::Arc;
use workplace_policy::{
    BookingRequest, CascadeSettings, FormerHistory, Reason, RecomputeMode, Trigger,
};

/// Policies start empty (default deny, version 0), are versioned with `If-Match`, refuse
/// invalid rules without changing anything, and take effect at once.
pub async fn workplace_policies_set_get_and_versions(store: Arc<dyn WorkplaceStore>) {
    let s = store.as_ref();
    let t = tenant(s).await;
    catalog(s, &t).await;
    let c = admin();
    let initial = s.workplace_config(&t).await.unwrap();
    assert_eq!(initial.version, 0);
    assert!(initial.policies.rules.is_empty());
    assert_eq!(initial.policies.default, workplace_policy::Effect::Deny);
    let alice = create_person(s, &t, "alice", "Sales").await;
    let out = s
        .book(
            &t,
            request(&alice, "d2", slot(1, 0).0, slot(1, 0).1),
            &c,
            now(),
        )
        .await
        .unwrap();
    let BookingOutcome::Refused(decision) = out else {
        panic!("no rule means no access: {out:?}")
    };
    assert!(
        decision
            .reasons
            .iter()
            .any(|r| matches!(r, Reason::TenantDefault { .. }))
    );

    let (config, preview) = s
        .set_policies(
            &t,
            standard_policies(),
            CascadeSettings::default(),
            Some(0),
            &c,
            now(),
        )
        .await
        .unwrap();
    assert_eq!(config.version, 1);
    assert!(preview.cancelled.is_empty() && preview.flagged.is_empty());
    assert_eq!(s.workplace_config(&t).await.unwrap(), config);
    // The new policies decide the very next booking.
    book(s, &t, &alice, "d2", slot(1, 0)).await;
    expect_status(
        s.set_policies(
            &t,
            standard_policies(),
            CascadeSettings::default(),
            Some(0),
            &c,
            now(),
        )
        .await,
        412,
        "a stale If-Match",
    );
    let flag = CascadeSettings {
        on_lost_entitlement: RecomputeMode::Flag,
        former_history: FormerHistory::Keep,
    };
    let mut closed = standard_policies();
    closed.rules.push(
        serde_json::from_value(json!({"id": "no-d2", "name": "Desk 2 is closed", "effect": "deny", "resources": {"resources": ["d2"]}}))
            .unwrap(),
    );
    let (config, _) = s
        .set_policies(&t, closed.clone(), flag, Some(1), &c, now())
        .await
        .unwrap();
    assert_eq!((config.version, config.settings), (2, flag));
    let decision = s
        .evaluate_booking(
            &t,
            &alice,
            "d2",
            BookingRequest {
                start: slot(2, 0).0,
                end: slot(2, 0).1,
            },
            now(),
        )
        .await
        .unwrap();
    assert!(!decision.allowed);
    assert_eq!(decision.forbidding_rule(), Some("no-d2"));

    // Invalid policies are refused, naming the problem, and change nothing.
    let bad_rules = [
        json!({"id": "x", "name": "x", "effect": "allow", "people": "department eq"}),
        json!({"id": "x", "name": "x", "effect": "allow", "people": "noSuchAttribute eq \"1\""}),
    ];
    for rule in bad_rules {
        let mut set = closed.clone();
        set.rules.push(serde_json::from_value(rule).unwrap());
        let err = s
            .set_policies(&t, set.clone(), flag, None, &c, now())
            .await
            .unwrap_err();
        assert_eq!(err.status(), 400, "{err}");
        assert!(err.to_string().contains('x'), "names the rule: {err}");
        expect_status(
            s.preview_policies(&t, &set, flag, now()).await,
            400,
            "a preview of invalid policies",
        );
    }
    let mut duplicate = closed.clone();
    duplicate.rules.push(duplicate.rules[0].clone());
    expect_status(
        s.set_policies(&t, duplicate, flag, None, &c, now()).await,
        400,
        "a duplicate rule id",
    );
    let after = s.workplace_config(&t).await.unwrap();
    assert_eq!(after, config, "invalid policies changed nothing");
    let changes: Vec<Option<u64>> = feed(s, &t)
        .await
        .iter()
        .filter(|e| e.subject == FeedSubject::Policies)
        .map(|e| {
            assert_eq!((e.op.as_str(), e.actor.as_str()), ("changed", "facilities"));
            e.version
        })
        .collect();
    assert_eq!(changes, [Some(1), Some(2)]);
}

/// What a policy change would do (the dry run) is exactly what setting it does: the same
/// bookings cancelled (or flagged), one feed entry for the policies and one per effect.
pub async fn workplace_policy_change_preview_is_what_applies(store: Arc<dyn WorkplaceStore>) {
    let s = store.as_ref();
    let t = office(s, CascadeSettings::default()).await;
    let mut corner = Vec::new();
    for (i, name) in ["m1", "m2", "m3"].iter().enumerate() {
        let id = create_person(s, &t, name, "Marketing").await;
        corner.push(
            book(s, &t, &id, "d1", slot(1 + i as i64, 0))
                .await
                .booking
                .id,
        );
        book(s, &t, &id, "hub", slot(1 + i as i64, 0)).await;
    }
    let mut without_corner = standard_policies();
    without_corner.rules.retain(|r| r.id != "mkt-desks");
    let settings = CascadeSettings::default();
    let preview = s
        .preview_policies(&t, &without_corner, settings, now())
        .await
        .unwrap();
    assert_eq!(
        preview.summary(),
        "this rule change would cancel 3 future bookings of 3 people"
    );
    assert_eq!(preview.bookings_checked, 6);
    let mut previewed: Vec<&str> = preview
        .cancelled
        .iter()
        .map(|l| l.booking.as_str())
        .collect();
    previewed.sort_unstable();
    let mut expected: Vec<&str> = corner.iter().map(String::as_str).collect();
    expected.sort_unstable();
    assert_eq!(previewed, expected);
    assert!(
        preview
            .cancelled
            .iter()
            .all(|l| l.rule.as_deref() == Some("mkt-desks"))
    );
    for id in &corner {
        assert_eq!(
            status(&reload(s, &t, id).await),
            "booked",
            "a preview changes nothing"
        );
    }
    let ctx = WriteContext {
        actor: "facilities".into(),
        request_id: Some("req-policy".into()),
        ..WriteContext::default()
    };
    let (config, applied) = s
        .set_policies(&t, without_corner.clone(), settings, None, &ctx, now())
        .await
        .unwrap();
    assert_eq!(applied, preview);
    for id in &corner {
        let record = reload(s, &t, id).await;
        let cause = cause_of(&record).expect("cancelled by the change");
        assert_eq!(
            (cause.trigger, cause.request_id.as_str()),
            (Trigger::PolicyChanged, "req-policy")
        );
    }
    let entries = feed(s, &t).await;
    let at = entries
        .iter()
        .rposition(|e| e.subject == FeedSubject::Policies)
        .unwrap();
    assert_eq!(
        (entries[at].version, entries[at].actor.as_str()),
        (Some(config.version), "facilities")
    );
    let effects: Vec<&FeedEvent> = entries[at + 1..].iter().collect();
    assert_eq!(effects.len(), 3);
    assert!(effects.iter().all(|e| e.op == "cancelled"
        && e.actor == "system"
        && e.request_id.as_deref() == Some("req-policy")));

    // Flag mode: the preview flags, and so does the change.
    let flag = CascadeSettings {
        on_lost_entitlement: RecomputeMode::Flag,
        former_history: FormerHistory::Keep,
    };
    let mut no_hub = without_corner.clone();
    for rule in &mut no_hub.rules {
        rule.resources.resources.retain(|r| r != "hub");
    }
    let preview = s.preview_policies(&t, &no_hub, flag, now()).await.unwrap();
    assert_eq!(
        (
            preview.cancelled.len(),
            preview.flagged.len(),
            preview.people_affected
        ),
        (0, 3, 3)
    );
    let (_, applied) = s
        .set_policies(&t, no_hub, flag, None, &ctx, now())
        .await
        .unwrap();
    assert_eq!(applied, preview);
    let flagged = s
        .bookings(
            &t,
            &BookingFilter {
                flagged_only: true,
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(flagged.len(), 3);
    assert!(
        flagged
            .iter()
            .all(|r| r.booking.resource == "hub" && status(r) == "booked")
    );
}

/// A rule on a tenant's own extension attribute (issue 17) decides bookings once the tenant's
/// schemas define it; a schema change that would remove or retype what the rule uses is
/// refused naming the rule, and changes nothing; after the rule goes, the change is allowed.
pub async fn workplace_rules_use_the_tenants_own_attributes(store: Arc<dyn WorkplaceStore>) {
    use crate::directory::{ACME_USER, acme_documents};
    use scim_store_core::ResourceKind;
    let s = store.as_ref();
    let t = tenant(s).await;
    catalog(s, &t).await;
    let c = admin();
    let london_rule = || -> workplace_policy::PolicySet {
        serde_json::from_value(json!({
            "rules": [{"id": "london-desks", "name": "London staff book desk 2", "effect": "allow",
                       "people": format!("{ACME_USER}:officeName eq \"London\""),
                       "resources": {"resources": ["d2"]}}],
            "default": "deny"
        }))
        .expect("the rule")
    };
    // Before the tenant's schemas define the attribute, the rule does not compile.
    let unknown = s
        .set_policies(
            &t,
            london_rule(),
            CascadeSettings::default(),
            None,
            &c,
            now(),
        )
        .await
        .unwrap_err();
    assert_eq!(unknown.status(), 400, "{unknown}");
    s.set_tenant_schemas(&t, acme_documents()).await.unwrap();
    s.set_policies(
        &t,
        london_rule(),
        CascadeSettings::default(),
        None,
        &c,
        now(),
    )
    .await
    .expect("the rule compiles against the tenant's schemas");
    let person = |name: &str, office: &str| {
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ACME_USER],
               "userName": name, "active": true, ACME_USER: {"officeName": office}})
    };
    let londoner = s
        .create(&t, ResourceKind::User, person("lena", "London"), &idp("r1"))
        .await
        .unwrap()
        .id;
    let parisian = s
        .create(&t, ResourceKind::User, person("paul", "Paris"), &idp("r2"))
        .await
        .unwrap()
        .id;
    book(s, &t, &londoner, "d2", slot(1, 0)).await;
    let refused = s
        .book(
            &t,
            request(&parisian, "d2", slot(2, 0).0, slot(2, 0).1),
            &c,
            now(),
        )
        .await
        .unwrap();
    assert!(
        matches!(refused, BookingOutcome::Refused(_)),
        "a Paris person booked a London desk: {refused:?}"
    );

    // Removing the extension, or retyping officeName, would leave the rule matching nothing.
    let retyped =
        vec![json!({"id": ACME_USER, "attributes": [{"name": "officeName", "type": "integer"}]})];
    for change in [Vec::new(), retyped] {
        let err = s.set_tenant_schemas(&t, change).await.unwrap_err();
        assert_eq!(err.status(), 400, "{err}");
        assert!(err.to_string().contains("london-desks"), "{err}");
    }
    assert_eq!(s.tenant_schemas(&t).await.unwrap().version, 1);
    let still = s
        .book(
            &t,
            request(&parisian, "d2", slot(3, 0).0, slot(3, 0).1),
            &c,
            now(),
        )
        .await
        .unwrap();
    assert!(matches!(still, BookingOutcome::Refused(_)), "{still:?}");

    // Without the rule, the extension may go.
    let none: workplace_policy::PolicySet =
        serde_json::from_value(json!({"rules": [], "default": "deny"})).unwrap();
    s.set_policies(&t, none, CascadeSettings::default(), None, &c, now())
        .await
        .unwrap();
    assert_eq!(
        s.set_tenant_schemas(&t, Vec::new()).await.unwrap().version,
        2
    );
}

/// Two stores on one database (two replicas): `a` has cached the tenant's schemas when `b`
/// removes the attribute a new rule names. `a` must not store the rule as checked against its
/// stale schemas: it checks again against the tenant's current ones (400, nothing stored). A
/// rule valid under both is stored after that second check.
pub async fn workplace_policies_follow_a_schema_change_made_elsewhere(
    a: Arc<dyn WorkplaceStore>,
    b: Arc<dyn WorkplaceStore>,
) {
    use crate::directory::{ACME_USER, acme_documents};
    let t = tenant(a.as_ref()).await;
    catalog(a.as_ref(), &t).await;
    a.set_tenant_schemas(&t, acme_documents()).await.unwrap();
    assert_eq!(a.tenant_schemas(&t).await.unwrap().version, 1);
    // `b` removes the extension; `a` still has version 1 cached.
    b.set_tenant_schemas(&t, Vec::new()).await.unwrap();
    let rule = |people: String| -> workplace_policy::PolicySet {
        serde_json::from_value(json!({
            "rules": [{"id": "london-desks", "name": "London desks", "effect": "allow",
                       "people": people, "resources": {"resources": ["d2"]}}],
            "default": "deny"
        }))
        .unwrap()
    };
    let stale = a
        .set_policies(
            &t,
            rule(format!("{ACME_USER}:officeName eq \"London\"")),
            CascadeSettings::default(),
            None,
            &admin(),
            now(),
        )
        .await
        .unwrap_err();
    assert_eq!(stale.status(), 400, "{stale}");
    assert!(stale.to_string().contains("officeName"), "{stale}");
    assert_eq!(a.workplace_config(&t).await.unwrap().version, 0);
    assert_eq!(a.tenant_schemas(&t).await.unwrap().version, 2);
    // And the other way: `b` adds it back while `a` has version 2 cached.
    b.set_tenant_schemas(&t, acme_documents()).await.unwrap();
    let (config, _) = a
        .set_policies(
            &t,
            rule("title pr".into()),
            CascadeSettings::default(),
            None,
            &admin(),
            now(),
        )
        .await
        .unwrap();
    assert_eq!(config.version, 1);
    assert_eq!(a.tenant_schemas(&t).await.unwrap().version, 3);
}
