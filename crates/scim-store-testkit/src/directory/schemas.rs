//! A tenant's own schemas (`Store::set_tenant_schemas`): what the tenant stores, finds and
//! sorts by, and what no other tenant sees.

use crate::directory::ids_of;
use crate::fixture::{ctx, new_tenant};
use scim_schema::AttrPath;
use scim_store_core::{Query, ResourceKind, SortOrder, Store};
use serde_json::{Value, json};
use std::sync::Arc;

/// An extension with its own URN, as Okta's custom attributes arrive.
pub const ACME_USER: &str = "urn:example:params:scim:schemas:extension:acme:2.0:User";

/// The documents of the kit's tenant schemas: Entra ID's custom Group `description` (merged
/// into the core Group schema) and Acme's User extension.
pub fn acme_documents() -> Vec<Value> {
    vec![
        json!({
            "id": "urn:ietf:params:scim:schemas:core:2.0:Group",
            "attributes": [{"name": "description", "type": "string"}]
        }),
        json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
            "id": ACME_USER,
            "name": "AcmeUser",
            "attributes": [
                {"name": "officeName", "type": "string"},
                {"name": "floor", "type": "integer"}
            ]
        }),
    ]
}

fn acme_user(user_name: &str, office: &str, floor: i64) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", ACME_USER],
        "userName": user_name,
        ACME_USER: {"officeName": office, "floor": floor}
    })
}

fn filtered(filter: &str) -> Query {
    Query {
        filter: Some(scim_filter::parse_filter(filter).expect("the kit's filter")),
        ..Query::default()
    }
}

/// Schemas are per tenant and versioned; a tenant's custom attributes are stored, filtered on
/// (pushed down or evaluated) and sorted by; another tenant neither sees them in its schemas
/// nor finds the first tenant's resources through them; a bad set changes nothing; an empty
/// set removes them.
pub async fn tenant_schemas_are_the_tenants_own(store: Arc<dyn Store>) {
    let (a, b) = (
        new_tenant(store.as_ref()).await,
        new_tenant(store.as_ref()).await,
    );
    let initial = store.tenant_schemas(&a.id).await.unwrap();
    assert_eq!(initial.version, 0);
    assert!(initial.documents.is_empty());
    assert!(initial.registry().schema(ACME_USER).is_none());

    let set = store
        .set_tenant_schemas(&a.id, acme_documents())
        .await
        .unwrap();
    assert_eq!(set.version, 1);
    assert_eq!(set.documents, acme_documents());
    let served = store.tenant_schemas(&a.id).await.unwrap();
    assert_eq!(served.version, 1);
    let group = served.resources.get(ResourceKind::Group);
    assert!(group.resolve(&AttrPath::simple("description")).is_some());
    assert!(served.registry().schema(ACME_USER).is_some());
    let other = store.tenant_schemas(&b.id).await.unwrap();
    assert_eq!(other.version, 0);
    assert!(other.registry().schema(ACME_USER).is_none());
    assert!(
        other
            .resources
            .get(ResourceKind::Group)
            .resolve(&AttrPath::simple("description"))
            .is_none()
    );

    let g = store
        .create(
            &a.id,
            ResourceKind::Group,
            json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                   "displayName": "Floor 3", "description": "Third floor"}),
            &ctx(),
        )
        .await
        .unwrap();
    assert_eq!(g.document["description"], "Third floor");
    let mut ids = Vec::new();
    for (name, office, floor) in [
        ("ann", "London", 3),
        ("bob", "Paris", 1),
        ("cy", "London", 2),
    ] {
        let u = store
            .create(
                &a.id,
                ResourceKind::User,
                acme_user(name, office, floor),
                &ctx(),
            )
            .await
            .unwrap();
        assert_eq!(u.document[ACME_USER]["officeName"], office);
        ids.push(u.id);
    }
    // The same userNames in tenant b, without the extension: a query of b through a's
    // attributes finds nothing of a's.
    for name in ["ann", "bob", "cy"] {
        store
            .create(
                &b.id,
                ResourceKind::User,
                crate::fixture::user(name),
                &ctx(),
            )
            .await
            .unwrap();
    }

    let london = filtered(&format!("{ACME_USER}:officeName eq \"london\""));
    let found = store
        .query(&a.id, ResourceKind::User, &london)
        .await
        .unwrap();
    assert_eq!(found.total_results, 2, "officeName is caseExact false");
    assert_eq!(ids_of(&found), vec![ids[0].clone(), ids[2].clone()]);
    let high = filtered(&format!("{ACME_USER}:floor ge 2"));
    assert_eq!(
        store
            .query(&a.id, ResourceKind::User, &high)
            .await
            .unwrap()
            .total_results,
        2
    );
    let by_floor = Query {
        sort_by: Some(AttrPath::parse(&format!("{ACME_USER}:floor")).unwrap()),
        sort_order: SortOrder::Descending,
        ..filtered("userName pr")
    };
    let sorted = store
        .query(&a.id, ResourceKind::User, &by_floor)
        .await
        .unwrap();
    assert_eq!(
        ids_of(&sorted),
        vec![ids[0].clone(), ids[2].clone(), ids[1].clone()]
    );
    let described = filtered("description sw \"third\"");
    let groups = store
        .query(&a.id, ResourceKind::Group, &described)
        .await
        .unwrap();
    assert_eq!(ids_of(&groups), vec![g.id.clone()]);
    for query in [&london, &high] {
        let theirs = store.query(&b.id, ResourceKind::User, query).await.unwrap();
        assert_eq!(theirs.total_results, 0, "tenant b found a's users");
    }
    assert_eq!(
        store
            .query(&b.id, ResourceKind::Group, &described)
            .await
            .unwrap()
            .total_results,
        0
    );

    // A document that does not apply changes nothing.
    let refused = store
        .set_tenant_schemas(
            &a.id,
            vec![json!({"id": "urn:ietf:params:scim:schemas:core:2.0:User",
                        "attributes": [{"name": "title", "type": "integer"}]})],
        )
        .await
        .unwrap_err();
    assert_eq!(refused.status(), 400, "{refused}");
    assert!(refused.to_string().contains("title"), "{refused}");
    assert_eq!(store.tenant_schemas(&a.id).await.unwrap().version, 1);

    // Removing them: the version moves, the attributes are no longer in the schema, and the
    // stored values stay in the documents.
    let cleared = store.set_tenant_schemas(&a.id, Vec::new()).await.unwrap();
    assert_eq!(cleared.version, 2);
    assert!(cleared.registry().schema(ACME_USER).is_none());
    let kept = store
        .get(&a.id, ResourceKind::User, &ids[0], Default::default())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.document[ACME_USER]["officeName"], "London");

    // An unknown tenant has none to set.
    store.delete_tenant(&b.id).await.unwrap();
    let gone = store.set_tenant_schemas(&b.id, acme_documents()).await;
    assert!(gone.is_err(), "{gone:?}");
}
