//! The discovery documents as a server serves them (RFC 7643 sections 5, 6, 7, 8.5 to 8.7).

use scim_schema::core::{self, ENTERPRISE_USER, GROUP, USER};
use scim_schema::representation::{resource_type_representation, schema_representation};
use scim_schema::{
    AuthenticationScheme, BulkConfig, FilterConfig, Schema, SchemaRegistry, ServiceProviderConfig,
    Supported,
};
use serde_json::{Value, json};

const BASE: &str = "https://example.com/scim/v2";

#[test]
fn schemas_endpoint_documents() {
    let registry = SchemaRegistry::new();
    let docs = registry.schema_representations(BASE);
    assert_eq!(docs.len(), 3);
    let ids: Vec<&str> = docs.iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [USER, GROUP, ENTERPRISE_USER]);
    insta::assert_json_snapshot!("schema_user", docs[0]);
    insta::assert_json_snapshot!("schema_group", docs[1]);
    insta::assert_json_snapshot!("schema_enterprise_user", docs[2]);
}

#[test]
fn served_schemas_round_trip_into_the_same_definitions() {
    let registry = SchemaRegistry::new();
    for (served, schema) in registry
        .schema_representations(BASE)
        .into_iter()
        .zip(registry.schemas())
    {
        let reparsed: Schema = serde_json::from_value(served.clone()).unwrap();
        assert_eq!(&reparsed, schema);
        // A served document loads into another registry as a custom schema would.
        let mut other = SchemaRegistry::empty();
        other.add_schema_json(&served.to_string()).unwrap();
        assert_eq!(other.schema(&schema.id).unwrap(), schema);
    }
}

#[test]
fn embedded_files_are_what_is_served() {
    // The served form makes every characteristic explicit; the embedded RFC text leaves some
    // defaults implicit. Parsing both must give the same definitions.
    for (text, id) in [
        (core::USER_JSON, USER),
        (core::GROUP_JSON, GROUP),
        (core::ENTERPRISE_USER_JSON, ENTERPRISE_USER),
    ] {
        let embedded: Schema = serde_json::from_str(text).unwrap();
        assert_eq!(SchemaRegistry::new().schema(id).unwrap(), &embedded);
    }
}

#[test]
fn resource_types_endpoint_documents() {
    let registry = SchemaRegistry::new();
    let docs = registry.resource_type_representations(&format!("{BASE}/"));
    insta::assert_json_snapshot!("resource_types", docs);
    assert_eq!(
        docs[0]["meta"]["location"],
        "https://example.com/scim/v2/ResourceTypes/User"
    );
    assert!(docs[1].get("schemaExtensions").is_none());
    let rt = registry.resource_type("Group").unwrap();
    assert_eq!(resource_type_representation(rt, BASE), docs[1]);
}

#[test]
fn schema_meta_location_uses_the_base_url() {
    let schema = Schema {
        id: "urn:example:x:1.0".into(),
        name: None,
        description: None,
        attributes: Vec::new(),
    };
    assert_eq!(
        schema_representation(&schema, "https://h/scim/"),
        json!({
            "schemas": [core::SCHEMA],
            "id": "urn:example:x:1.0",
            "attributes": [],
            "meta": {"resourceType": "Schema", "location": "https://h/scim/Schemas/urn:example:x:1.0"}
        })
    );
}

fn example_config() -> ServiceProviderConfig {
    ServiceProviderConfig {
        documentation_uri: Some("https://example.com/help/scim.html".into()),
        patch: Supported::YES,
        bulk: BulkConfig {
            supported: true,
            max_operations: 1000,
            max_payload_size: 1_048_576,
        },
        filter: FilterConfig {
            supported: true,
            max_results: 200,
        },
        change_password: Supported::NO,
        sort: Supported::YES,
        etag: Supported::YES,
        authentication_schemes: vec![
            AuthenticationScheme {
                documentation_uri: Some("https://example.com/help/oauth.html".into()),
                ..AuthenticationScheme::oauth_bearer_token(true)
            },
            AuthenticationScheme::http_basic(false),
        ],
    }
}

#[test]
fn service_provider_config_document() {
    let doc = example_config().to_representation(BASE);
    insta::assert_json_snapshot!("service_provider_config", doc);
    let keys: Vec<&String> = doc.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "schemas",
            "documentationUri",
            "patch",
            "bulk",
            "filter",
            "changePassword",
            "sort",
            "etag",
            "authenticationSchemes",
            "meta"
        ]
    );
    // The bare struct round-trips through serde in the section 5 attribute names.
    let bare = serde_json::to_value(example_config()).unwrap();
    assert_eq!(bare["bulk"]["maxPayloadSize"], 1_048_576);
    assert_eq!(bare["authenticationSchemes"][0]["type"], "oauthbearertoken");
    let back: ServiceProviderConfig = serde_json::from_value(bare).unwrap();
    assert_eq!(back, example_config());
    let mut with_envelope: Value = doc.clone();
    with_envelope.as_object_mut().unwrap().remove("meta");
    assert!(serde_json::from_value::<ServiceProviderConfig>(with_envelope).is_ok());
}
