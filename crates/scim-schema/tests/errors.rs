//! What a client reads: the `scimType` and `detail` of validation and selection errors.

use scim_schema::core::{self, ENTERPRISE_USER, GROUP, USER};
use scim_schema::{AttributeSelection, ValidationOptions, validate};
use serde_json::{Value, json};

#[test]
fn error_details_as_clients_read_them() {
    let user = core::user();
    let strict = ValidationOptions::default();
    let canonical = ValidationOptions {
        enforce_canonical_values: true,
        ..Default::default()
    };
    let cases: Vec<(Value, &ValidationOptions)> = vec![
        (json!({"userName": "b"}), &strict),
        (json!({"schemas": [USER]}), &strict),
        (
            json!({"schemas": [USER], "userName": "b", "emails": [{"value": "a", "primary": "yes"}]}),
            &strict,
        ),
        (
            json!({"schemas": [USER], "userName": "b", "emails": {"value": "a"}}),
            &strict,
        ),
        (
            json!({"schemas": [USER], "userName": "b", "nickname": "x", "NICKNAME": "y"}),
            &strict,
        ),
        (
            json!({"schemas": [USER], "userName": "b", "badge": "7"}),
            &strict,
        ),
        (json!({"schemas": [USER, GROUP], "userName": "b"}), &strict),
        (
            json!({"schemas": [USER], "userName": "b", ENTERPRISE_USER: {"manager": {"value": 7}}}),
            &strict,
        ),
        (
            json!({"schemas": [USER], "userName": "b", "phoneNumbers": [{"value": "1", "type": "cell"}]}),
            &canonical,
        ),
    ];
    let mut report = String::new();
    for (input, options) in cases {
        let e = validate::for_create(&user, &input, options).unwrap_err();
        report.push_str(&format!(
            "{input}\n  => {} {}: {e}\n",
            e.status(),
            e.scim_type()
        ));
    }
    let existing = json!({"schemas": [GROUP], "displayName": "g"});
    let mut registry = scim_schema::SchemaRegistry::new();
    registry
        .add_schema_json(r#"{"id": "urn:example:x:1.0", "attributes": [{"name": "badge", "mutability": "immutable"}]}"#)
        .unwrap();
    registry
        .attach_extension("Group", "urn:example:x:1.0", false)
        .unwrap();
    let group = registry.resource_schema("Group").unwrap();
    let existing_badge = json!({"schemas": [GROUP, "urn:example:x:1.0"], "displayName": "g", "urn:example:x:1.0": {"badge": "A"}});
    let replace = json!({"schemas": [GROUP, "urn:example:x:1.0"], "displayName": "g", "urn:example:x:1.0": {"badge": "B"}});
    let e = validate::for_replace(group, &replace, &existing_badge, &strict).unwrap_err();
    report.push_str(&format!(
        "{replace}\n  => {} {}: {e}\n",
        e.status(),
        e.scim_type()
    ));
    assert!(validate::for_replace(group, &replace, &existing, &strict).is_ok());
    for (attributes, excluded) in [
        (Some("emails[type eq \"work\"]"), None),
        (None, Some("name..givenName")),
    ] {
        let e = AttributeSelection::from_params(attributes, excluded).unwrap_err();
        report.push_str(&format!(
            "attributes={attributes:?} excludedAttributes={excluded:?}\n  => {} {}: {e}\n",
            e.status(),
            e.scim_type()
        ));
    }
    insta::assert_snapshot!(report);
}
