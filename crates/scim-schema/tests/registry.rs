//! SchemaRegistry: loading custom schemas and resource types, and refusing bad definitions
//! with an error that names the definition, the attribute and the problem.

use scim_schema::core::{ENTERPRISE_USER, USER};
use scim_schema::{
    AttrLocation, AttrPath, AttributeSelection, AttributeType, SchemaError, SchemaRegistry,
    ScimType, ValidationOptions, projection, validate,
};
use serde_json::json;

const WORKPLACE: &str = "urn:example:params:scim:schemas:extension:workplace:2.0:User";

const WORKPLACE_JSON: &str = r#"{
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
    "id": "urn:example:params:scim:schemas:extension:workplace:2.0:User",
    "name": "WorkplaceUser",
    "description": "Where and how a person works",
    "attributes": [
        {"name": "homeSite", "type": "string", "multiValued": false,
         "description": "The site a person is based at", "required": false, "caseExact": false,
         "mutability": "readWrite", "returned": "default", "uniqueness": "none"},
        {"name": "costCenter", "type": "string"},
        {"name": "employeeType", "type": "string", "canonicalValues": ["staff", "contractor", "visitor"]}
    ],
    "meta": {"resourceType": "Schema", "location": "/v2/Schemas/urn:example:params:scim:schemas:extension:workplace:2.0:User"}
}"#;

fn workplace_registry() -> SchemaRegistry {
    let mut registry = SchemaRegistry::new();
    assert_eq!(
        registry
            .add_schema_json(WORKPLACE_JSON)
            .expect("the workplace schema is valid"),
        [WORKPLACE]
    );
    registry
        .attach_extension("User", WORKPLACE, false)
        .expect("User exists and the extension is new");
    registry
}

#[test]
fn an_operator_extension_attaches_to_users() {
    let registry = workplace_registry();
    let user = registry.resource_schema("User").unwrap();
    let ids: Vec<&str> = user.extensions().map(|(s, _)| s.id.as_str()).collect();
    assert_eq!(ids, [ENTERPRISE_USER, WORKPLACE]);
    let rt = registry.resource_type("User").unwrap();
    assert_eq!(rt.schema_extensions.len(), 2);

    let qualified = user
        .resolve(&AttrPath::parse(&format!("{WORKPLACE}:costCenter")).unwrap())
        .unwrap();
    assert_eq!(qualified.location, AttrLocation::Extension(WORKPLACE));
    // Unqualified, the first extension defining the name wins (the enterprise one).
    let unqualified = user.resolve(&AttrPath::simple("costCenter")).unwrap();
    assert_eq!(
        unqualified.location,
        AttrLocation::Extension(ENTERPRISE_USER)
    );
    assert_eq!(
        user.resolve(&AttrPath::simple("homeSite"))
            .unwrap()
            .attribute
            .kind,
        AttributeType::String
    );

    // The core views are unaffected.
    assert_eq!(scim_schema::core::user().extensions().count(), 1);

    let stored = validate::for_create(
        user,
        &json!({
            "schemas": [USER, WORKPLACE.to_lowercase()],
            "userName": "bjensen",
            WORKPLACE.to_lowercase(): {"HOMESITE": "Amsterdam", "employeeType": "staff"},
        }),
        &ValidationOptions::default(),
    )
    .unwrap();
    assert_eq!(
        stored,
        json!({"schemas": [USER, WORKPLACE], "userName": "bjensen", WORKPLACE: {"homeSite": "Amsterdam", "employeeType": "staff"}})
    );
    let projected = projection::project(
        &stored,
        user,
        &AttributeSelection::parse_attributes("homeSite").unwrap(),
    );
    assert_eq!(
        projected,
        json!({"schemas": [USER, WORKPLACE], WORKPLACE: {"homeSite": "Amsterdam"}})
    );
}

#[test]
fn lookups_by_name_and_endpoint() {
    let registry = SchemaRegistry::new();
    assert_eq!(registry.resource_schema("User").unwrap().core().id, USER);
    assert_eq!(
        registry
            .resource_schema("group")
            .unwrap()
            .resource_type()
            .name,
        "Group"
    );
    assert!(registry.resource_schema("Users").is_none());
    for endpoint in ["/Users", "Users", "/users"] {
        assert_eq!(
            registry
                .resource_schema_by_endpoint(endpoint)
                .unwrap()
                .resource_type()
                .name,
            "User"
        );
    }
    assert!(registry.resource_schema_by_endpoint("/Desks").is_none());
    assert!(registry.schema(&ENTERPRISE_USER.to_uppercase()).is_some());
    assert_eq!(registry.resource_schemas().count(), 2);
    let empty = SchemaRegistry::empty();
    assert_eq!(empty.schemas().count(), 0);
    assert_eq!(empty.common_attributes().len(), 3);
}

#[test]
fn a_custom_resource_type_end_to_end() {
    let mut registry = SchemaRegistry::new();
    registry
        .add_schema_json(
            r#"{"id": "urn:example:params:scim:schemas:core:2.0:Desk", "name": "Desk",
                "attributes": [
                    {"name": "label", "type": "string", "required": true, "uniqueness": "server"},
                    {"name": "floor", "type": "integer"},
                    {"name": "assignee", "type": "reference", "referenceTypes": ["User"]}
                ]}"#,
        )
        .unwrap();
    let names = registry
        .add_resource_type_json(
            r#"[{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
                 "id": "Desk", "name": "Desk", "endpoint": "/Desks", "description": "A desk",
                 "schema": "urn:EXAMPLE:params:scim:schemas:core:2.0:Desk", "schemaExtensions": null}]"#,
        )
        .unwrap();
    assert_eq!(names, ["Desk"]);
    let desk = registry.resource_schema_by_endpoint("/Desks").unwrap();
    assert_eq!(
        desk.resource_type().schema,
        "urn:example:params:scim:schemas:core:2.0:Desk",
        "canonical spelling"
    );
    let e = validate::for_create(
        desk,
        &json!({"schemas": ["urn:example:params:scim:schemas:core:2.0:Desk"], "label": "D-1", "floor": "2"}),
        &ValidationOptions::default(),
    )
    .unwrap_err();
    assert_eq!(e.to_string(), "floor: expected integer, found string \"2\"");
}

#[test]
fn loading_is_all_or_nothing() {
    let mut registry = SchemaRegistry::new();
    let e = registry
        .add_schema_json(
            r#"[{"id": "urn:example:a:1.0", "attributes": [{"name": "a"}]},
                {"id": "urn:example:b:1.0", "attributes": [{"name": "b", "type": "text"}]}]"#,
        )
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("schema \"urn:example:b:1.0\": b: \"type\" is \"text\""),
        "{e}"
    );
    assert!(registry.schema("urn:example:a:1.0").is_none());
    assert_eq!(registry.schemas().count(), 3);
}

/// Each bad definition and the error it gets; the whole table is snapshotted so a reviewer
/// reads every message once.
#[test]
fn bad_schema_definitions_are_refused_with_a_located_reason() {
    let cases = [
        r#"not json"#,
        r#"42"#,
        r#"{"attributes": []}"#,
        r#"{"id": "urn:example:x:1.0"}"#,
        r#"{"id": "urn:example:x:1.0", "attributes": [], "version": 2}"#,
        r#"{"id": "example-x", "attributes": []}"#,
        r#"{"id": "urn:example:x:1.0", "attributes": [{"type": "string"}]}"#,
        r#"{"id": "urn:example:x:1.0", "attributes": [{"name": "home site"}]}"#,
        r#"{"id": "urn:example:x:1.0", "attributes": [{"name": "a", "multivalued": true}]}"#,
        r#"{"id": "urn:example:x:1.0", "attributes": [{"name": "a", "type": "datetime"}]}"#,
        r#"{"id": "urn:example:x:1.0", "attributes": [{"name": "a", "required": "yes"}]}"#,
        r#"{"id": "urn:example:x:1.0", "attributes": [{"name": "a", "canonicalValues": [1]}]}"#,
        r#"{"id": "urn:example:x:1.0", "attributes": [{"name": "site"}, {"name": "Site"}]}"#,
        r#"{"id": "urn:example:x:1.0", "attributes": [{"name": "a", "subAttributes": [{"name": "b"}]}]}"#,
        r#"{"id": "urn:example:x:1.0", "attributes": [{"name": "a", "type": "complex"}]}"#,
        r#"{"id": "urn:example:x:1.0", "attributes": [{"name": "a", "type": "complex", "subAttributes": [{"name": "b", "type": "complex", "subAttributes": [{"name": "c"}]}]}]}"#,
        r#"{"id": "urn:example:x:1.0", "attributes": [{"name": "a", "type": "complex", "subAttributes": [{"name": "b"}, {"name": "B"}]}]}"#,
        r#"{"id": "urn:example:x:1.0", "attributes": [{"name": "a", "referenceTypes": ["User"]}]}"#,
        r#"{"id": "urn:example:x:1.0", "attributes": [{"name": "a", "type": "reference", "referenceTypes": ["a user"]}]}"#,
        r#"{"id": "urn:example:x:1.0", "attributes": [{"name": "a", "type": "boolean", "canonicalValues": ["true"]}]}"#,
        r#"{"id": "urn:example:x:1.0", "attributes": [{"name": "a", "type": "complex", "uniqueness": "server", "subAttributes": [{"name": "b"}]}]}"#,
        r#"{"id": "urn:example:x:1.0", "attributes": [{"name": "$ref", "type": "reference"}]}"#,
        r#"{"id": "urn:example:x:1.0", "attributes": [{"name": "schemas"}]}"#,
        r#"{"id": "URN:IETF:params:scim:schemas:core:2.0:User", "attributes": []}"#,
        r#"{"id": "urn:ietf:params:scim:api:messages:2.0:PatchOp", "attributes": []}"#,
    ];
    let mut report = String::new();
    for json in cases {
        let mut registry = SchemaRegistry::new();
        let e = registry.add_schema_json(json).unwrap_err();
        assert_eq!(e.scim_type(), ScimType::InvalidValue);
        assert!(matches!(e, SchemaError::Definition { .. }));
        report.push_str(&format!("{json}\n  => {e}\n"));
    }
    insta::assert_snapshot!(report);
}

#[test]
fn bad_resource_types_and_attachments_are_refused() {
    let mut registry = workplace_registry();
    let mut report = String::new();
    let cases = [
        r#"{"id": "Desk", "name": "Desk", "endpoint": "/Desks", "schema": "urn:example:nope:1.0"}"#,
        r#"{"id": "Desk", "name": "Desk", "endpoint": "Desks", "schema": "urn:ietf:params:scim:schemas:core:2.0:Group"}"#,
        r#"{"id": "Desk", "name": "Desk", "endpoint": "/a/b", "schema": "urn:ietf:params:scim:schemas:core:2.0:Group"}"#,
        r#"{"id": "Desk", "name": "Desk", "endpoint": "/users", "schema": "urn:ietf:params:scim:schemas:core:2.0:Group"}"#,
        r#"{"id": "G2", "name": "group", "endpoint": "/G2", "schema": "urn:ietf:params:scim:schemas:core:2.0:Group"}"#,
        r#"{"id": "Desk", "name": "Desk Top", "endpoint": "/Desks", "schema": "urn:ietf:params:scim:schemas:core:2.0:Group"}"#,
        r#"{"id": "Desk", "name": "Desk", "endpoint": "/Desks"}"#,
        r#"{"id": "Desk", "name": "Desk", "endpoint": "/Desks", "schema": "urn:ietf:params:scim:schemas:core:2.0:Group", "schemaExtensions": [{"schema": "urn:example:nope:1.0", "required": false}]}"#,
        r#"{"id": "Desk", "name": "Desk", "endpoint": "/Desks", "schema": "urn:ietf:params:scim:schemas:core:2.0:Group", "schemaExtensions": [{"schema": "urn:ietf:params:scim:schemas:core:2.0:Group", "required": false}]}"#,
        r#"{"id": "Desk", "name": "Desk", "endpoint": "/Desks", "schema": "urn:ietf:params:scim:schemas:core:2.0:Group", "schemaExtensions": [{"schema": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"}]}"#,
        r#"{"id": "Desk", "name": "Desk", "endpoint": "/Desks", "schema": "urn:ietf:params:scim:schemas:core:2.0:Group", "extensions": []}"#,
    ];
    for json in cases {
        let e = registry.add_resource_type_json(json).unwrap_err();
        report.push_str(&format!("{json}\n  => {e}\n"));
    }
    // A core schema that redefines a common attribute.
    registry
        .add_schema_json(
            r#"{"id": "urn:example:clash:1.0", "attributes": [{"name": "externalId"}]}"#,
        )
        .unwrap();
    let e = registry
        .add_resource_type_json(
            r#"{"id": "C", "name": "C", "endpoint": "/C", "schema": "urn:example:clash:1.0"}"#,
        )
        .unwrap_err();
    report.push_str(&format!("core schema redefining externalId\n  => {e}\n"));
    for (rt, urn) in [
        ("Desk", WORKPLACE),
        ("User", "urn:example:nope:1.0"),
        ("User", WORKPLACE),
        ("User", USER),
    ] {
        let e = registry.attach_extension(rt, urn, true).unwrap_err();
        report.push_str(&format!("attach {urn} to {rt}\n  => {e}\n"));
    }
    insta::assert_snapshot!(report);
    assert_eq!(registry.resource_types().count(), 2, "nothing was added");
}

// ---- a tenant's own documents (`SchemaRegistry::with_documents`) ------------------------------

const ACME_USER: &str = "urn:example:params:scim:schemas:extension:acme:2.0:User";

/// Entra ID's custom Group attribute, with no URN: merged into the core Group schema.
fn group_description() -> serde_json::Value {
    json!({
        "id": "urn:ietf:params:scim:schemas:core:2.0:Group",
        "attributes": [{"name": "description", "type": "string"}]
    })
}

fn acme_extension() -> serde_json::Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": ACME_USER,
        "name": "AcmeUser",
        "attributes": [{"name": "officeName", "type": "string"}, {"name": "floor", "type": "integer"}]
    })
}

#[test]
fn documents_merge_into_served_schemas_and_attach_extensions() {
    let base = SchemaRegistry::new();
    let tenant = base
        .with_documents(&[group_description(), acme_extension()])
        .unwrap();

    let group = tenant.resource_schema("Group").unwrap();
    let description = group.resolve(&AttrPath::simple("description")).unwrap();
    assert_eq!(description.attribute.kind, AttributeType::String);
    assert_eq!(description.location, AttrLocation::TopLevel);
    let stored = validate::for_create(
        group,
        &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "Floor 3", "description": "Third floor"}),
        &ValidationOptions::default(),
    )
    .unwrap();
    assert_eq!(stored["description"], "Third floor");

    let user = tenant.resource_schema("User").unwrap();
    assert!(user.extension(ACME_USER).is_some());
    let office = AttrPath::parse(&format!("{ACME_USER}:officeName")).unwrap();
    assert_eq!(
        user.resolve(&office).unwrap().attribute.kind,
        AttributeType::String
    );
    let rt = tenant.resource_type("User").unwrap();
    assert!(
        rt.schema_extensions
            .iter()
            .any(|e| e.schema == ACME_USER && !e.required)
    );
    // Served in /Schemas: the merged Group schema lists the new attribute.
    let served = tenant
        .schema("urn:ietf:params:scim:schemas:core:2.0:Group")
        .unwrap();
    assert!(served.attribute("description").is_some());

    // The base registry is untouched: another tenant does not see these.
    assert!(
        base.resource_schema("Group")
            .unwrap()
            .resolve(&AttrPath::simple("description"))
            .is_none()
    );
    assert!(base.schema(ACME_USER).is_none());
}

#[test]
fn bad_documents_are_refused_naming_schema_path_and_problem() {
    let base = SchemaRegistry::new();
    let refused = |documents: Vec<serde_json::Value>| -> String {
        let err = base.with_documents(&documents).unwrap_err();
        assert!(matches!(err, SchemaError::Definition { .. }), "{err:?}");
        err.to_string()
    };
    let redefined = refused(vec![json!({
        "id": USER, "attributes": [{"name": "TITLE", "type": "integer"}]
    })]);
    assert!(redefined.contains(USER), "{redefined}");
    assert!(redefined.contains("attributes[0]"), "{redefined}");
    assert!(redefined.contains("already an attribute"), "{redefined}");

    let common = refused(vec![json!({
        "id": "urn:ietf:params:scim:schemas:core:2.0:Group", "attributes": [{"name": "externalId", "type": "string"}]
    })]);
    assert!(common.contains("common attribute"), "{common}");

    let nowhere = refused(vec![json!({
        "id": "urn:example:params:scim:schemas:extension:acme:2.0:Desk",
        "attributes": [{"name": "x", "type": "string"}]
    })]);
    assert!(nowhere.contains("\"Desk\""), "{nowhere}");
    assert!(nowhere.contains("User, Group"), "{nowhere}");

    let bad_type = refused(vec![json!({
        "id": ACME_USER, "attributes": [{"name": "officeName", "type": "text"}]
    })]);
    assert!(bad_type.contains(ACME_USER), "{bad_type}");
    assert!(bad_type.contains("officeName"), "{bad_type}");

    let twice = refused(vec![acme_extension(), acme_extension()]);
    assert!(twice.contains("already an attribute"), "{twice}");
}

#[test]
fn values_of_removed_attributes_are_set_aside_and_restored() {
    let tenant = SchemaRegistry::new()
        .with_documents(&[group_description(), acme_extension()])
        .unwrap();
    let stored = json!({
        "schemas": [USER, ACME_USER, ENTERPRISE_USER],
        "userName": "lena",
        ACME_USER: {"officeName": "London", "floor": 3},
        ENTERPRISE_USER: {"department": "Sales"}
    });
    let with = tenant.resource_schema("User").unwrap();
    assert_eq!(
        scim_schema::split_unknown(&stored, with),
        None,
        "all defined"
    );

    // The operator removed the extension: it is set aside whole, with its URN.
    let base = SchemaRegistry::new();
    let user = base.resource_schema("User").unwrap();
    let (known, leftovers) = scim_schema::split_unknown(&stored, user).unwrap();
    assert_eq!(
        known,
        json!({"schemas": [USER, ENTERPRISE_USER], "userName": "lena", ENTERPRISE_USER: {"department": "Sales"}})
    );
    let mut patched = known.clone();
    patched["title"] = json!("Boss");
    leftovers.restore(&mut patched);
    let mut expected = stored.clone();
    expected["title"] = json!("Boss");
    // `schemas` is a set (RFC 7643 section 3): the URN set aside comes back last.
    let sorted = |mut v: serde_json::Value| {
        v["schemas"]
            .as_array_mut()
            .unwrap()
            .sort_by_key(|u| u.to_string());
        v
    };
    assert_eq!(sorted(patched), sorted(expected));

    // An attribute removed from a served schema: set aside from inside its object.
    let narrower = SchemaRegistry::new()
        .with_documents(&[
            json!({"id": ACME_USER, "attributes": [{"name": "officeName", "type": "string"}]}),
        ])
        .unwrap();
    let (known, leftovers) =
        scim_schema::split_unknown(&stored, narrower.resource_schema("User").unwrap()).unwrap();
    assert_eq!(known[ACME_USER], json!({"officeName": "London"}));
    let mut back = known;
    leftovers.restore(&mut back);
    assert_eq!(back, stored);
}
