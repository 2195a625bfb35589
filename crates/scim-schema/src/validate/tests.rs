use super::*;
use crate::core::{self, ENTERPRISE_USER, GROUP, USER};
use crate::registry::SchemaRegistry;
use crate::scim_type::ScimType;
use serde_json::json;

fn strict() -> ValidationOptions {
    ValidationOptions::default()
}

fn lenient() -> ValidationOptions {
    ValidationOptions {
        unknown_attributes: UnknownAttributes::Keep,
        ..Default::default()
    }
}

fn create_user(v: Value) -> Result<Value, SchemaError> {
    for_create(&core::user(), &v, &strict())
}

fn err_user(v: Value) -> (ScimType, String) {
    let e = create_user(v).unwrap_err();
    (e.scim_type(), e.to_string())
}

/// A registry with a `Badge` resource type exercising characteristics the core lacks.
fn badge_registry() -> SchemaRegistry {
    let mut registry = SchemaRegistry::new();
    registry
        .add_schema_json(
            r#"{
            "id": "urn:example:params:scim:schemas:core:2.0:Badge",
            "name": "Badge",
            "attributes": [
                {"name": "serial", "type": "string", "mutability": "immutable", "required": true},
                {"name": "count", "type": "integer"},
                {"name": "ratio", "type": "decimal"},
                {"name": "issued", "type": "dateTime"},
                {"name": "photo", "type": "binary"},
                {"name": "tags", "type": "string", "multiValued": true, "mutability": "immutable"},
                {"name": "holder", "type": "complex", "subAttributes": [
                    {"name": "value", "type": "string", "mutability": "immutable"},
                    {"name": "display", "type": "string"},
                    {"name": "code", "type": "string", "required": true}
                ]},
                {"name": "secret", "type": "string", "returned": "request"}
            ]
        }"#,
        )
        .unwrap();
    registry
        .add_schema_json(
            r#"{
            "id": "urn:example:params:scim:schemas:extension:site:2.0:Badge",
            "attributes": [
                {"name": "site", "type": "string", "required": true},
                {"name": "floor", "type": "integer", "mutability": "immutable"}
            ]
        }"#,
        )
        .unwrap();
    registry
        .add_resource_type_json(
            r#"{
            "id": "Badge", "name": "Badge", "endpoint": "/Badges",
            "schema": "urn:example:params:scim:schemas:core:2.0:Badge",
            "schemaExtensions": [
                {"schema": "urn:example:params:scim:schemas:extension:site:2.0:Badge", "required": true}
            ]
        }"#,
        )
        .unwrap();
    registry
}

const BADGE: &str = "urn:example:params:scim:schemas:core:2.0:Badge";
const SITE: &str = "urn:example:params:scim:schemas:extension:site:2.0:Badge";

fn badge(v: Value) -> Result<Value, SchemaError> {
    let registry = badge_registry();
    for_create(registry.resource_schema("Badge").unwrap(), &v, &strict())
}

#[test]
fn create_normalises_case_order_and_drops_read_only() {
    let out = create_user(json!({
        "EMAILS": [{"VALUE": "b@example.com", "Type": "work", "primary": true}],
        "userName": "bjensen",
        "Schemas": [USER.to_uppercase()],
        "id": "client-chosen",
        "meta": {"resourceType": "User", "created": "not even a date"},
        "groups": [{"value": "g1"}],
        "externalId": "ext-1",
        "name": {"givenName": "Barbara", "FamilyName": "Jensen"},
        "password": "t1meMa$heen",
    }))
    .unwrap();
    assert_eq!(
        out,
        json!({
            "schemas": [USER],
            "externalId": "ext-1",
            "userName": "bjensen",
            "name": {"familyName": "Jensen", "givenName": "Barbara"},
            "password": "t1meMa$heen",
            "emails": [{"value": "b@example.com", "type": "work", "primary": true}],
        })
    );
    // Key order is schema order, not input order.
    let keys: Vec<&String> = out.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "schemas",
            "externalId",
            "userName",
            "name",
            "password",
            "emails"
        ]
    );
}

#[test]
fn extension_keys_are_canonicalised_and_read_only_sub_attributes_dropped() {
    let out = create_user(json!({
        "schemas": [USER, ENTERPRISE_USER.to_lowercase()],
        "userName": "bjensen",
        ENTERPRISE_USER.to_lowercase(): {
            "employeeNumber": "701984",
            "MANAGER": {"value": "26118915", "displayName": "John Smith"},
        },
    }))
    .unwrap();
    assert_eq!(
        out,
        json!({
            "schemas": [USER, ENTERPRISE_USER],
            "userName": "bjensen",
            ENTERPRISE_USER: {"employeeNumber": "701984", "manager": {"value": "26118915"}},
        })
    );
}

#[test]
fn an_extension_left_empty_is_dropped_with_its_urn() {
    let out = create_user(json!({
        "schemas": [USER, ENTERPRISE_USER],
        "userName": "bjensen",
        ENTERPRISE_USER: {"manager": {"displayName": "read only"}, "department": null},
    }))
    .unwrap();
    assert_eq!(out, json!({"schemas": [USER], "userName": "bjensen"}));
    // Listed but absent: fine, and not echoed.
    let out = create_user(json!({"schemas": [USER, ENTERPRISE_USER], "userName": "b"})).unwrap();
    assert_eq!(out["schemas"], json!([USER]));
}

#[test]
fn unassigned_values_are_removed() {
    let out = create_user(json!({
        "schemas": [USER],
        "userName": "bjensen",
        "displayName": null,
        "emails": [],
        "name": {"givenName": null},
        "addresses": [{}],
    }))
    .unwrap();
    assert_eq!(out, json!({"schemas": [USER], "userName": "bjensen"}));
}

#[test]
fn schemas_must_be_present_and_consistent() {
    let (t, msg) = err_user(json!({"userName": "b"}));
    assert_eq!(t, ScimType::InvalidValue);
    assert!(
        msg.starts_with("schemas: required attribute is missing"),
        "{msg}"
    );

    let (t, msg) = err_user(json!({"schemas": USER, "userName": "b"}));
    assert_eq!(t, ScimType::InvalidValue);
    assert!(
        msg.contains("expected an array of schema URNs, found string"),
        "{msg}"
    );

    let (_, msg) = err_user(json!({"schemas": [USER, 7], "userName": "b"}));
    assert_eq!(
        msg,
        "schemas[1]: expected a schema URN string, found number 7"
    );

    let (_, msg) = err_user(json!({"schemas": [ENTERPRISE_USER], "userName": "b"}));
    assert!(
        msg.starts_with(&format!("schemas: must list the core schema \"{USER}\"")),
        "{msg}"
    );

    let (t, msg) = err_user(json!({"schemas": [USER, GROUP], "userName": "b"}));
    assert_eq!(t, ScimType::InvalidValue);
    assert!(
        msg.starts_with(&format!(
            "schemas[1]: \"{GROUP}\" is not a schema of resource type \"User\""
        )),
        "{msg}"
    );

    let (t, msg) = err_user(json!({
        "schemas": [USER], "userName": "b", ENTERPRISE_USER: {"department": "Tour"}
    }));
    assert_eq!(t, ScimType::InvalidValue);
    assert!(
        msg.contains("carries extension") && msg.contains("does not list it"),
        "{msg}"
    );

    let (_, msg) = err_user(
        json!({"schemas": [USER, ENTERPRISE_USER], "userName": "b", ENTERPRISE_USER: "x"}),
    );
    assert_eq!(
        msg,
        format!(
            "{ENTERPRISE_USER}: expected an object holding the extension's attributes, found string \"x\""
        )
    );
}

#[test]
fn lenient_mode_keeps_unknown_schemas_and_attributes() {
    let out = for_create(
        &core::user(),
        &json!({
            "schemas": [USER, "urn:example:unknown:1.0"],
            "userName": "b",
            "favouriteColour": "teal",
            "name": {"givenName": "B", "nameSuffix": "x"},
            "urn:example:unknown:1.0": {"a": 1},
        }),
        &lenient(),
    )
    .unwrap();
    assert_eq!(
        out,
        json!({
            "schemas": [USER, "urn:example:unknown:1.0"],
            "userName": "b",
            "name": {"givenName": "B", "nameSuffix": "x"},
            "favouriteColour": "teal",
            "urn:example:unknown:1.0": {"a": 1},
        })
    );
}

#[test]
fn strict_mode_rejects_unknown_attributes_with_invalid_syntax() {
    let (t, msg) = err_user(json!({"schemas": [USER], "userName": "b", "favouriteColour": "teal"}));
    assert_eq!(t, ScimType::InvalidSyntax);
    assert_eq!(
        msg,
        "favouriteColour: unknown attribute; resource type \"User\" defines no such attribute"
    );
    let (_, msg) = err_user(json!({"schemas": [USER], "userName": "b", "employeeNumber": "1"}));
    assert!(
        msg.starts_with(
            "employeeNumber: unknown attribute; \"employeeNumber\" is an attribute of extension"
        ),
        "{msg}"
    );
    let (t, msg) =
        err_user(json!({"schemas": [USER], "userName": "b", "name": {"nameSuffix": "x"}}));
    assert_eq!(t, ScimType::InvalidSyntax);
    assert_eq!(msg, "name.nameSuffix: unknown sub-attribute of \"name\"");
    let (_, msg) = err_user(json!({
        "schemas": [USER, ENTERPRISE_USER], "userName": "b", ENTERPRISE_USER: {"badgeId": "1"}
    }));
    assert_eq!(
        msg,
        format!("{ENTERPRISE_USER}:badgeId: unknown attribute of extension \"{ENTERPRISE_USER}\"")
    );
}

#[test]
fn names_differing_only_in_case_may_not_both_be_given() {
    let (t, msg) = err_user(json!({"schemas": [USER], "userName": "a", "USERNAME": "b"}));
    assert_eq!(t, ScimType::InvalidSyntax);
    assert_eq!(
        msg,
        "userName: given twice, as \"userName\" and \"USERNAME\" (attribute names are \
         case-insensitive, RFC 7643 section 2.1)"
    );
    let (_, msg) = err_user(
        json!({"schemas": [USER], "userName": "a", "name": {"givenName": "a", "givenname": "b"}}),
    );
    assert!(msg.starts_with("name.givenName: given twice"), "{msg}");
}

#[test]
fn required_attributes_must_be_present_and_non_empty() {
    let (t, msg) = err_user(json!({"schemas": [USER]}));
    assert_eq!(t, ScimType::InvalidValue);
    assert_eq!(msg, "userName: required attribute is missing");
    assert_eq!(
        err_user(json!({"schemas": [USER], "userName": null})).1,
        "userName: required attribute is missing"
    );
    assert_eq!(
        err_user(json!({"schemas": [USER], "userName": ""})).1,
        "userName: required attribute must not be empty"
    );
    let group = for_create(
        &core::group(),
        &json!({"schemas": [GROUP], "members": []}),
        &strict(),
    )
    .unwrap_err();
    assert_eq!(
        group.to_string(),
        "displayName: required attribute is missing"
    );
}

#[test]
fn required_sub_attributes_and_extensions() {
    let e = badge(json!({"schemas": [BADGE, SITE], "serial": "1", SITE: {"site": "HQ"}, "holder": {"display": "x"}}))
        .unwrap_err();
    assert_eq!(e.to_string(), "holder.code: required attribute is missing");
    let e = badge(json!({"schemas": [BADGE], "serial": "1"})).unwrap_err();
    assert_eq!(e.scim_type(), ScimType::InvalidValue);
    assert!(
        e.to_string().starts_with(&format!(
            "{SITE}: resource type \"Badge\" requires this extension"
        )),
        "{e}"
    );
    let e =
        badge(json!({"schemas": [BADGE, SITE], "serial": "1", SITE: {"floor": 2}})).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{SITE}:site: required attribute is missing")
    );
    let ok = badge(json!({"schemas": [BADGE, SITE], "serial": "1", SITE: {"site": "HQ"}})).unwrap();
    assert_eq!(
        ok,
        json!({"schemas": [BADGE, SITE], "serial": "1", SITE: {"site": "HQ"}})
    );
}

#[test]
fn types_are_checked_with_the_path_and_what_was_found() {
    let cases = [
        (
            json!({"active": "true"}),
            "active: expected boolean, found string \"true\"",
        ),
        (
            json!({"displayName": 5}),
            "displayName: expected string, found number 5",
        ),
        (
            json!({"name": "Barbara"}),
            "name: expected complex, found string \"Barbara\"",
        ),
        (
            json!({"emails": [{"value": "a@b"}, {"value": "c@d", "primary": "yes"}]}),
            "emails[1].primary: expected boolean, found string \"yes\"",
        ),
        (
            json!({"profileUrl": {"href": "x"}}),
            "profileUrl: expected reference, found object",
        ),
        (
            json!({"x509Certificates": [{"value": "not base64!"}]}),
            "x509Certificates[0].value: expected binary (base64, RFC 4648 section 4), found string \"not base64!\"",
        ),
        (
            json!({"emails": [null]}),
            "emails[0]: expected complex, found null",
        ),
    ];
    for (extra, expected) in cases {
        let mut user = json!({"schemas": [USER], "userName": "b"});
        for (k, v) in extra.as_object().unwrap() {
            user[k] = v.clone();
        }
        let e = create_user(user).unwrap_err();
        assert_eq!(e.scim_type(), ScimType::InvalidValue, "{expected}");
        assert_eq!(e.to_string(), expected);
    }
}

#[test]
fn numbers_dates_and_binary() {
    let base = || json!({"schemas": [BADGE, SITE], "serial": "1", SITE: {"site": "HQ"}});
    let with = |k: &str, v: Value| {
        let mut b = base();
        b[k] = v;
        badge(b)
    };
    assert!(with("count", json!(3)).is_ok());
    assert!(with("count", json!(-3)).is_ok());
    assert_eq!(
        with("count", json!(3.5)).unwrap_err().to_string(),
        "count: expected integer, found decimal 3.5"
    );
    assert_eq!(
        with("count", json!("3")).unwrap_err().to_string(),
        "count: expected integer, found string \"3\""
    );
    assert!(with("ratio", json!(0.25)).is_ok());
    assert!(
        with("ratio", json!(1)).is_ok(),
        "a JSON integer is a valid decimal"
    );
    assert!(with("issued", json!("2008-01-23T04:56:22Z")).is_ok());
    assert!(with("issued", json!("2011-05-13T06:42:34.000+02:00")).is_ok());
    let e = with("issued", json!("2008-01-23")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("issued: expected dateTime (xsd:dateTime"),
        "{e}"
    );
    assert!(with("photo", json!("aGVsbG8=")).is_ok());
    assert!(
        with("photo", json!("aGVsbG8")).is_ok(),
        "padding is optional"
    );
    assert!(with("photo", json!("")).is_ok());
    assert!(with("photo", json!("aGVs bG8=")).is_err());
    assert!(
        with("photo", json!("aGVsbG8-")).is_err(),
        "URL-safe alphabet is not section 4"
    );
}

#[test]
fn base64_rules() {
    for ok in ["", "QQ==", "QUI=", "QUJD", "QQ", "QUI", "a+/b", "TWFu"] {
        assert!(is_base64(ok), "{ok}");
    }
    for bad in [
        "Q", "QUJDR", "QQ=", "Q===", "QQ==QQ==", "QU=I", "QU\nJD", "QUJD===",
    ] {
        assert!(!is_base64(bad), "{bad}");
    }
}

#[test]
fn multi_valued_shape_is_enforced_unless_single_values_are_accepted() {
    let (t, msg) =
        err_user(json!({"schemas": [USER], "userName": "b", "emails": {"value": "a@b"}}));
    assert_eq!(t, ScimType::InvalidValue);
    assert_eq!(
        msg,
        "emails: expected an array (\"emails\" is multi-valued, RFC 7643 section 2.4), found object"
    );
    let (_, msg) = err_user(json!({"schemas": [USER], "userName": ["a", "b"]}));
    assert_eq!(
        msg,
        "userName: expected a single string value (\"userName\" is not multi-valued), found array"
    );
    let opts = ValidationOptions {
        accept_single_values: true,
        ..Default::default()
    };
    let out = for_create(
        &core::user(),
        &json!({"schemas": [USER], "userName": "b", "emails": {"value": "a@b"}}),
        &opts,
    )
    .unwrap();
    assert_eq!(out["emails"], json!([{"value": "a@b"}]));
}

#[test]
fn at_most_one_primary_value() {
    let (t, msg) = err_user(json!({
        "schemas": [USER], "userName": "b",
        "emails": [{"value": "a", "primary": true}, {"value": "b", "primary": false}, {"value": "c", "primary": true}],
    }));
    assert_eq!(t, ScimType::InvalidValue);
    assert_eq!(
        msg,
        "emails: emails[0] and emails[2] are both primary; at most one value may have \"primary\": true (RFC 7643 section 2.4)"
    );
}

#[test]
fn canonical_values_only_when_enforced() {
    let user =
        json!({"schemas": [USER], "userName": "b", "emails": [{"value": "a", "type": "Office"}]});
    assert!(
        create_user(user.clone()).is_ok(),
        "canonical values are suggestions by default"
    );
    let opts = ValidationOptions {
        enforce_canonical_values: true,
        ..Default::default()
    };
    let e = for_create(&core::user(), &user, &opts).unwrap_err();
    assert_eq!(e.scim_type(), ScimType::InvalidValue);
    assert_eq!(
        e.to_string(),
        "emails[0].type: \"Office\" is not one of the canonical values \"work\", \"home\", \"other\" (RFC 7643 section 7)"
    );
    let ok =
        json!({"schemas": [USER], "userName": "b", "emails": [{"value": "a", "type": "WORK"}]});
    let out = for_create(&core::user(), &ok, &opts).unwrap();
    assert_eq!(
        out["emails"][0]["type"], "work",
        "rewritten in the canonical spelling"
    );
    // An empty canonicalValues list (roles.type) restricts nothing.
    let roles =
        json!({"schemas": [USER], "userName": "b", "roles": [{"value": "r", "type": "anything"}]});
    assert!(for_create(&core::user(), &roles, &opts).is_ok());
}

#[test]
fn non_object_resource_is_invalid_syntax() {
    let e = create_user(json!([1, 2])).unwrap_err();
    assert_eq!(e.scim_type(), ScimType::InvalidSyntax);
    assert_eq!(
        e.to_string(),
        "a resource must be a JSON object, found array"
    );
}

#[test]
fn replace_keeps_immutable_values() {
    let registry = badge_registry();
    let schema = registry.resource_schema("Badge").unwrap();
    let existing = json!({
        "schemas": [BADGE, SITE], "id": "1", "serial": "S-1", "tags": ["a", "b"],
        "holder": {"value": "u1", "code": "c"}, SITE: {"site": "HQ", "floor": 3},
    });
    // Same values (tags in another order, serial compared per caseExact false): accepted.
    let same = json!({
        "schemas": [BADGE, SITE], "serial": "s-1", "tags": ["b", "a"],
        "holder": {"value": "u1", "code": "d"}, SITE: {"site": "Annex", "floor": 3},
    });
    assert!(for_replace(schema, &same, &existing, &strict()).is_ok());

    let changed = json!({"schemas": [BADGE, SITE], "serial": "S-2", SITE: {"site": "HQ"}});
    let e = for_replace(schema, &changed, &existing, &strict()).unwrap_err();
    assert_eq!(e.scim_type(), ScimType::Mutability);
    assert_eq!(
        e.to_string(),
        "serial: immutable attribute cannot change from its assigned value string \"S-1\" to string \"S-2\" (RFC 7644 section 3.5.1)"
    );
    let e = for_replace(
        schema,
        &json!({"schemas": [BADGE, SITE], "serial": "S-1", "tags": ["a"], SITE: {"site": "HQ"}}),
        &existing,
        &strict(),
    )
    .unwrap_err();
    assert_eq!(e.scim_type(), ScimType::Mutability);
    assert!(e.to_string().starts_with("tags: immutable"), "{e}");
    let e = for_replace(
        schema,
        &json!({"schemas": [BADGE, SITE], "serial": "S-1", "holder": {"value": "u2", "code": "c"}, SITE: {"site": "HQ"}}),
        &existing,
        &strict(),
    )
    .unwrap_err();
    assert_eq!(e.scim_type(), ScimType::Mutability);
    assert!(e.to_string().starts_with("holder.value: immutable"), "{e}");
    let e = for_replace(
        schema,
        &json!({"schemas": [BADGE, SITE], "serial": "S-1", SITE: {"site": "HQ", "floor": 4}}),
        &existing,
        &strict(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with(&format!("{SITE}:floor: immutable")),
        "{e}"
    );

    // Omitted immutable values are carried over, in schema order.
    let omitted = json!({"schemas": [BADGE, SITE], "serial": "S-1", "holder": {"code": "z"}, SITE: {"site": "HQ"}});
    let out = for_replace(schema, &omitted, &existing, &strict()).unwrap();
    assert_eq!(
        out,
        json!({
            "schemas": [BADGE, SITE], "serial": "S-1", "tags": ["a", "b"],
            "holder": {"value": "u1", "code": "z"}, SITE: {"site": "HQ", "floor": 3},
        })
    );
    let keys: Vec<&String> = out["holder"].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["value", "code"]);
}

#[test]
fn replace_may_set_an_unassigned_immutable_attribute() {
    let registry = badge_registry();
    let schema = registry.resource_schema("Badge").unwrap();
    let existing =
        json!({"schemas": [BADGE, SITE], "serial": "S-1", "tags": [], SITE: {"site": "HQ"}});
    let new = json!({"schemas": [BADGE, SITE], "serial": "S-1", "tags": ["x"], SITE: {"site": "HQ", "floor": 1}});
    let out = for_replace(schema, &new, &existing, &strict()).unwrap();
    assert_eq!(out["tags"], json!(["x"]));
    assert_eq!(out[SITE]["floor"], json!(1));
}

#[test]
fn replace_does_not_pair_members_of_multi_valued_attributes() {
    let existing = json!({"schemas": [GROUP], "displayName": "g", "members": [{"value": "u1", "type": "User"}]});
    let new = json!({"schemas": [GROUP], "displayName": "g", "members": [{"value": "u2", "type": "User"}]});
    let out = for_replace(&core::group(), &new, &existing, &strict()).unwrap();
    assert_eq!(out["members"], json!([{"value": "u2", "type": "User"}]));
}

#[test]
fn check_value_validates_one_attribute_for_patch() {
    let user = core::user();
    let emails = user.core().attribute("emails").unwrap();
    let e = check_value(emails, &json!([{"value": "a", "primary": "yes"}]), "emails").unwrap_err();
    assert_eq!(
        e.to_string(),
        "emails[0].primary: expected boolean, found string \"yes\""
    );
    assert_eq!(
        check_value(emails, &json!([{"VALUE": "a", "display": null}]), "emails").unwrap(),
        json!([{"value": "a"}])
    );
    assert_eq!(
        check_value(emails, &json!(null), "emails").unwrap(),
        Value::Null
    );
    assert_eq!(
        check_value(emails, &json!([]), "emails").unwrap(),
        Value::Null
    );
    assert!(check_value(emails, &json!({"value": "a"}), "emails").is_err());
    assert_eq!(
        check_element(
            emails,
            &json!({"value": "a", "Type": "work"}),
            "emails[type eq \"work\"]",
            &strict()
        )
        .unwrap(),
        json!({"value": "a", "type": "work"})
    );
    let e = check_element(
        emails,
        &json!({"value": 1}),
        "emails[type eq \"work\"]",
        &strict(),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "emails[type eq \"work\"].value: expected string, found number 1"
    );

    let manager = user
        .extension(ENTERPRISE_USER)
        .unwrap()
        .attribute("manager")
        .unwrap();
    let path = format!("{ENTERPRISE_USER}:manager");
    assert_eq!(
        check_value(manager, &json!({"value": "m", "displayName": "ro"}), &path).unwrap(),
        json!({"value": "m"})
    );
    let e = check_value(manager, &json!({"value": true}), &path).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("{ENTERPRISE_USER}:manager.value: expected string, found boolean true")
    );
    let e = check_value_with(manager, &json!({"x": 1}), &path, &strict()).unwrap_err();
    assert_eq!(e.scim_type(), ScimType::InvalidSyntax);
    assert_eq!(
        check_value_with(manager, &json!({"x": 1}), &path, &lenient()).unwrap(),
        json!({"x": 1})
    );
}

#[test]
fn values_equal_follows_characteristics() {
    let user = core::user();
    let user_name = user.core().attribute("userName").unwrap();
    assert!(values_equal(
        user_name,
        &json!("BJensen"),
        &json!("bjensen")
    ));
    let external = user
        .common()
        .iter()
        .find(|a| a.name == "externalId")
        .unwrap();
    assert!(
        !values_equal(external, &json!("ABC"), &json!("abc")),
        "externalId is caseExact"
    );
    let emails = user.core().attribute("emails").unwrap();
    assert!(values_equal(
        emails,
        &json!([{"value": "a", "type": "work"}, {"value": "b"}]),
        &json!([{"value": "B"}, {"type": "WORK", "value": "a", "primary": null}])
    ));
    assert!(!values_equal(
        emails,
        &json!([{"value": "a"}, {"value": "a"}]),
        &json!([{"value": "a"}, {"value": "b"}])
    ));
    assert!(values_equal(emails, &json!([]), &Value::Null));
    let meta = user.common().iter().find(|a| a.name == "meta").unwrap();
    assert!(values_equal(
        meta,
        &json!({"created": "2011-05-13T04:42:34Z"}),
        &json!({"created": "2011-05-13T06:42:34.000+02:00"})
    ));
}

#[test]
fn validation_is_idempotent_on_the_rfc_full_user() {
    let input = json!({
        "schemas": [USER, ENTERPRISE_USER],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "701984",
        "userName": "bjensen@example.com",
        "name": {
            "formatted": "Ms. Barbara J Jensen, III", "familyName": "Jensen", "givenName": "Barbara",
            "middleName": "Jane", "honorificPrefix": "Ms.", "honorificSuffix": "III"
        },
        "displayName": "Babs Jensen",
        "nickName": "Babs",
        "profileUrl": "https://login.example.com/bjensen",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "addresses": [{
            "type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood",
            "region": "CA", "postalCode": "91608", "country": "USA",
            "formatted": "100 Universal City Plaza\nHollywood, CA 91608 USA", "primary": true
        }],
        "phoneNumbers": [{"value": "555-555-5555", "type": "work"}],
        "ims": [{"value": "someaimhandle", "type": "aim"}],
        "photos": [{"value": "https://photos.example.com/profilephoto/72930000000Ccne/F", "type": "photo"}],
        "userType": "Employee",
        "title": "Tour Guide",
        "preferredLanguage": "en-US",
        "locale": "en-US",
        "timezone": "America/Los_Angeles",
        "active": true,
        "password": "t1meMa$heen",
        "groups": [{"value": "e9e30dba-f08f-4109-8486-d5c6a331660a", "display": "Tour Guides"}],
        "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjELMAkGA1UEBhMCVVMx"}],
        ENTERPRISE_USER: {
            "employeeNumber": "701984", "costCenter": "4130", "organization": "Universal Studios",
            "division": "Theme Park", "department": "Tour Operations",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
        },
        "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z",
                 "version": "W/\"3694e05e9dff591\"", "location": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646"}
    });
    let once = create_user(input).unwrap();
    assert!(once.get("id").is_none() && once.get("meta").is_none() && once.get("groups").is_none());
    assert!(
        once[ENTERPRISE_USER]["manager"]
            .get("displayName")
            .is_none()
    );
    let twice = create_user(once.clone()).unwrap();
    assert_eq!(once, twice);
    insta::assert_json_snapshot!("rfc_full_user_normalised", once);
}

#[test]
fn loc_renders_paths() {
    let root = Loc::root(Part::Schema(ENTERPRISE_USER));
    let manager = root.child("manager");
    assert_eq!(
        manager.child("value").render(),
        format!("{ENTERPRISE_USER}:manager.value")
    );
    let emails = Loc::root(Part::Name("emails"));
    assert_eq!(emails.index(2).child("type").render(), "emails[2].type");
    assert_eq!(Loc::root(Part::Raw("")).child("a").render(), "a");
}

/// scim2-models (Python) sends `"schemas": [<the extension URN>]` inside an extension object;
/// it is dropped, while any other `schemas` value there stays an unknown attribute.
#[test]
fn extension_object_naming_itself_is_accepted() {
    let user = core::user();
    let body = |inner: serde_json::Value| {
        json!({
            "schemas": [USER, ENTERPRISE_USER],
            "userName": "bjensen",
            ENTERPRISE_USER: inner,
        })
    };
    let out = for_create(
        &user,
        &body(json!({"schemas": [ENTERPRISE_USER], "employeeNumber": "701984"})),
        &ValidationOptions::default(),
    )
    .unwrap();
    assert_eq!(out[ENTERPRISE_USER], json!({"employeeNumber": "701984"}));

    let err = for_create(
        &user,
        &body(json!({"schemas": ["urn:example:other"], "employeeNumber": "701984"})),
        &ValidationOptions::default(),
    )
    .unwrap_err();
    assert_eq!(err.scim_type(), ScimType::InvalidSyntax);
}

/// Entra ID lists its ADSCIM Group URN beside the core Group schema (Microsoft's create-group
/// example): accepted and dropped by default, kept out of the stored `schemas` in lenient mode
/// too, refused with `strict_schemas`; on a User it is a foreign URN as before.
#[test]
fn entra_adscim_group_urn_is_a_documented_alias() {
    let adscim = "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";
    let body = json!({"schemas": [GROUP, adscim], "displayName": "g"});
    for opts in [strict(), lenient()] {
        let out = for_create(&core::group(), &body, &opts).unwrap();
        assert_eq!(out["schemas"], json!([GROUP]));
    }
    let refuse = ValidationOptions {
        strict_schemas: true,
        ..Default::default()
    };
    let e = for_create(&core::group(), &body, &refuse).unwrap_err();
    assert_eq!(e.scim_type(), ScimType::InvalidValue);
    assert!(e.to_string().starts_with("schemas[1]: "), "{e}");
    let (t, msg) = err_user(json!({"schemas": [USER, adscim], "userName": "b"}));
    assert_eq!(t, ScimType::InvalidValue);
    assert!(msg.contains("ADSCIM"), "{msg}");
}
