//! One test per dialect of `scim_patch::dialects`: what the lenient engine does with what the
//! identity provider sends, and what the strict engine answers instead.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failure report"
)]

mod common;

use common::*;
use scim_patch::{PatchError, PatchOptions, PatchOutcome};
use scim_schema::{ResourceSchema, ScimType};
use serde_json::{Value, json};

/// Runs operations in both modes.
fn both(
    resource: &Value,
    schema: &ResourceSchema,
    message: Value,
) -> (PatchOutcome, Result<PatchOutcome, PatchError>) {
    let lenient = run(resource, schema, &message, &PatchOptions::default())
        .unwrap_or_else(|e| panic!("lenient: {e}"));
    let strict = run(resource, schema, &message, &PatchOptions::strict());
    (lenient, strict)
}

fn strict_error(result: Result<PatchOutcome, PatchError>) -> ScimType {
    match result {
        Ok(outcome) => panic!("strict mode accepted it: {}", outcome.resource),
        Err(e) => e.scim_type(),
    }
}

#[test]
fn op_any_case() {
    let (lenient, strict) = both(
        &enterprise_user(),
        &user_schema(),
        patch(json!([{"op": "Replace", "path": "title", "value": "Lead"}])),
    );
    assert_eq!(lenient.resource["title"], "Lead");
    assert_eq!(strict_error(strict), ScimType::InvalidSyntax);
}

#[test]
fn schemas_optional() {
    let message = json!({"Operations": [{"op": "replace", "value": {"active": false}}]});
    let (lenient, strict) = both(&enterprise_user(), &user_schema(), message);
    assert_eq!(lenient.resource["active"], false);
    assert_eq!(strict_error(strict), ScimType::InvalidSyntax);
    let message =
        json!({"schemas": null, "Operations": [{"op": "replace", "value": {"active": false}}]});
    assert!(
        run(
            &enterprise_user(),
            &user_schema(),
            &message,
            &PatchOptions::default()
        )
        .is_ok()
    );
}

#[test]
fn empty_operations() {
    let (lenient, strict) = both(&enterprise_user(), &user_schema(), patch(json!([])));
    assert!(!lenient.changed);
    assert_eq!(strict_error(strict), ScimType::InvalidSyntax);
}

#[test]
fn coerce_string_boolean() {
    for (sent, stored) in [
        ("False", false),
        ("True", true),
        ("false", false),
        ("TRUE", true),
    ] {
        let (lenient, strict) = both(
            &enterprise_user(),
            &user_schema(),
            patch(json!([{"op": "replace", "path": "active", "value": sent}])),
        );
        assert_eq!(lenient.resource["active"], stored);
        assert_eq!(strict_error(strict), ScimType::InvalidValue);
    }
    // Inside complex values and path-less objects too.
    let (lenient, _) = both(
        &enterprise_user(),
        &user_schema(),
        patch(json!([
            {"op": "add", "path": "emails", "value": [{"value": "new@example.com", "type": "other", "primary": "True"}]},
            {"op": "replace", "value": {"active": "False"}}
        ])),
    );
    assert_eq!(lenient.resource["emails"][2]["primary"], true);
    assert_eq!(
        lenient.resource["emails"][0]["primary"], false,
        "primary moved to the new email"
    );
    assert_eq!(lenient.resource["active"], false);
}

#[test]
fn pathless_keys_as_paths() {
    let message = patch(json!([{"op": "replace", "value": {
        "displayName": "Bjfe",
        "name.givenName": "Kkom",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq",
        "emails[type eq \"work\"].value": "kkom@example.com"
    }}]));
    let (lenient, strict) = both(&enterprise_user(), &user_schema(), message);
    let user = lenient.resource;
    assert_eq!(user["name"]["givenName"], "Kkom");
    assert_eq!(
        user["name"]["familyName"], "Jensen",
        "other sub-attributes stay"
    );
    assert_eq!(user[ENTERPRISE]["employeeNumber"], "Aklq");
    assert_eq!(user[ENTERPRISE]["costCenter"], "4130");
    assert_eq!(user["emails"][0]["value"], "kkom@example.com");
    assert_eq!(strict_error(strict), ScimType::InvalidPath);
}

#[test]
fn coerce_bare_value() {
    let path = format!("{ENTERPRISE}:manager");
    let (lenient, strict) = both(
        &enterprise_user(),
        &user_schema(),
        patch(json!([{"op": "Add", "path": path, "value": "271"}])),
    );
    // The new manager's value replaces the old; displayName (readOnly) and $ref described the
    // old manager and are dropped.
    assert_eq!(
        lenient.resource[ENTERPRISE]["manager"],
        json!({"value": "271"})
    );
    assert_eq!(
        strict_error(strict),
        ScimType::InvalidSyntax,
        "strict refuses the capitalised op first"
    );
    let strict = run(
        &enterprise_user(),
        &user_schema(),
        &patch(json!([{"op": "add", "path": format!("{ENTERPRISE}:manager"), "value": "271"}])),
        &PatchOptions::strict(),
    );
    assert_eq!(strict_error(strict), ScimType::InvalidValue);
}

#[test]
fn coerce_single_element_array() {
    let manager = json!([{"$ref": "https://example.com/v2/Users/00aa", "value": "00aa"}]);
    let (lenient, strict) = both(
        &enterprise_user(),
        &user_schema(),
        patch(json!([{"op": "add", "path": "manager", "value": manager}])),
    );
    assert_eq!(
        lenient.resource[ENTERPRISE]["manager"],
        json!({"value": "00aa", "$ref": "https://example.com/v2/Users/00aa"})
    );
    assert_eq!(strict_error(strict), ScimType::InvalidValue);
    let (lenient, strict) = both(
        &enterprise_user(),
        &user_schema(),
        patch(
            json!([{"op": "replace", "path": "displayName", "value": [{"$ref": null, "value": "User X"}]}]),
        ),
    );
    assert_eq!(lenient.resource["displayName"], "User X");
    assert_eq!(strict_error(strict), ScimType::InvalidValue);
    let e = err(
        &enterprise_user(),
        &user_schema(),
        json!([{"op": "replace", "path": "displayName", "value": ["a", "b"]}]),
        &PatchOptions::default(),
    );
    assert_eq!(e.scim_type(), ScimType::InvalidValue);
}

#[test]
fn coerce_bare_element() {
    let email = json!({"value": "bjensen@example.com", "primary": true, "type": "work"});
    let (lenient, strict) = both(
        &enterprise_user(),
        &user_schema(),
        patch(json!([{"op": "replace", "value": {"emails": email}}])),
    );
    assert_eq!(lenient.resource["emails"], json!([email]));
    assert_eq!(strict_error(strict), ScimType::InvalidValue);
}

#[test]
fn remove_with_value() {
    let message = patch(
        json!([{"op": "Remove", "path": "members", "value": [{"$ref": null, "value": BJENSEN}]}]),
    );
    let (lenient, strict) = both(&tour_guides(), &group_schema(), message);
    let members = lenient.resource["members"].as_array().unwrap();
    assert_eq!(
        members.len(),
        1,
        "only the listed member goes; the group is never emptied"
    );
    assert_eq!(members[0]["value"], "902c246b-6245-4190-8e05-00816be7344a");
    assert_eq!(strict_error(strict), ScimType::InvalidSyntax);
    // A bare id, a member by id only even if display differs, and values that are not members.
    let message = patch(
        json!([{"op": "remove", "path": "members", "value": [BJENSEN.to_uppercase(), {"value": "not-a-member"}]}]),
    );
    let lenient = run(
        &tour_guides(),
        &group_schema(),
        &message,
        &PatchOptions::default(),
    )
    .unwrap();
    assert_eq!(
        lenient.resource["members"].as_array().unwrap().len(),
        1,
        "ids compare per members.value caseExact (false)"
    );
    // On other multi-valued attributes, given sub-attributes must all match.
    let message = patch(
        json!([{"op": "remove", "path": "emails", "value": [{"value": "babs@jensen.org", "type": "work"}]}]),
    );
    assert!(
        !run(
            &enterprise_user(),
            &user_schema(),
            &message,
            &PatchOptions::default()
        )
        .unwrap()
        .changed
    );
    let message =
        patch(json!([{"op": "remove", "path": "emails", "value": [{"value": "BABS@jensen.org"}]}]));
    assert_eq!(
        run(
            &enterprise_user(),
            &user_schema(),
            &message,
            &PatchOptions::default()
        )
        .unwrap()
        .resource["emails"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    // Single-valued: removed only when it holds the given value.
    let stale = patch(json!([{"op": "remove", "path": "manager", "value": "someone-else"}]));
    assert!(
        !run(
            &enterprise_user(),
            &user_schema(),
            &stale,
            &PatchOptions::default()
        )
        .unwrap()
        .changed
    );
    let current = patch(
        json!([{"op": "remove", "path": "manager", "value": "26118915-6090-4610-87e4-49d8ca9f808d"}]),
    );
    let outcome = run(
        &enterprise_user(),
        &user_schema(),
        &current,
        &PatchOptions::default(),
    )
    .unwrap();
    assert!(outcome.resource[ENTERPRISE].get("manager").is_none());
}

#[test]
fn create_on_no_match() {
    let mut user = enterprise_user();
    user.as_object_mut().unwrap().remove("addresses");
    let message = patch(json!([
        {"op": "add", "path": "addresses[type eq \"work\"].formatted", "value": "1 Main St\nSpringfield"},
        {"op": "add", "path": "addresses[type eq \"work\"].locality", "value": "Springfield"},
        {"op": "Replace", "path": "phoneNumbers[type eq \"fax\"].value", "value": "555-555-1111"}
    ]));
    let (lenient, strict) = both(&user, &user_schema(), message);
    assert_eq!(
        lenient.resource["addresses"],
        json!([{"type": "work", "formatted": "1 Main St\nSpringfield", "locality": "Springfield"}])
    );
    assert_eq!(
        lenient.resource["phoneNumbers"][2],
        json!({"type": "fax", "value": "555-555-1111"})
    );
    assert_eq!(
        strict_error(strict),
        ScimType::InvalidSyntax,
        "capitalised op"
    );
    let strict = run(
        &user,
        &user_schema(),
        &patch(
            json!([{"op": "add", "path": "addresses[type eq \"work\"].locality", "value": "x"}]),
        ),
        &PatchOptions::strict(),
    );
    assert_eq!(strict_error(strict), ScimType::NoTarget);
}

#[test]
fn ignore_remove_no_match() {
    let message = patch(json!([{"op": "remove", "path": "members[value eq \"gone\"]"}]));
    let (lenient, strict) = both(&tour_guides(), &group_schema(), message);
    assert!(!lenient.changed);
    assert_eq!(lenient.resource, tour_guides());
    assert_eq!(strict_error(strict), ScimType::NoTarget);
}

#[test]
fn filter_on_single_valued() {
    let matching = patch(
        json!([{"op": "remove", "path": "manager[value eq \"26118915-6090-4610-87e4-49d8ca9f808d\"]"}]),
    );
    let (lenient, strict) = both(&enterprise_user(), &user_schema(), matching);
    assert!(lenient.resource[ENTERPRISE].get("manager").is_none());
    assert_eq!(strict_error(strict), ScimType::InvalidPath);
    let other = patch(json!([{"op": "remove", "path": "manager[value eq \"someone-else\"]"}]));
    assert!(
        !run(
            &enterprise_user(),
            &user_schema(),
            &other,
            &PatchOptions::default()
        )
        .unwrap()
        .changed
    );
}

#[test]
fn skip_read_only_in_pathless() {
    let message = patch(json!([{"op": "replace", "value": {
        "id": "something-else",
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "meta": {"version": "W/\"0\""},
        "displayName": "Tour Leads"
    }}]));
    let (lenient, strict) = both(&tour_guides(), &group_schema(), message);
    assert_eq!(lenient.resource["id"], GROUP_ID);
    assert_eq!(lenient.resource["meta"], tour_guides()["meta"]);
    assert_eq!(lenient.resource["displayName"], "Tour Leads");
    assert_eq!(
        lenient.resource["members"],
        tour_guides()["members"],
        "absent members are untouched"
    );
    assert_eq!(strict_error(strict), ScimType::Mutability);
    // Strict accepts an unchanged echo.
    let echo =
        patch(json!([{"op": "replace", "value": {"id": GROUP_ID, "displayName": "Tour Guides"}}]));
    assert!(
        !run(
            &tour_guides(),
            &group_schema(),
            &echo,
            &PatchOptions::strict()
        )
        .unwrap()
        .changed
    );
}

#[test]
fn extension_urn_as_path() {
    let message =
        patch(json!([{"op": "replace", "path": ENTERPRISE, "value": {"costCenter": "9999"}}]));
    let (lenient, strict) = both(&enterprise_user(), &user_schema(), message);
    assert_eq!(lenient.resource[ENTERPRISE]["costCenter"], "9999");
    assert_eq!(
        lenient.resource[ENTERPRISE]["department"],
        "Tour Operations"
    );
    assert_eq!(strict_error(strict), ScimType::InvalidPath);
    let removed = ok(
        &enterprise_user(),
        &user_schema(),
        json!([{"op": "remove", "path": ENTERPRISE}]),
    );
    assert!(removed.resource.get(ENTERPRISE).is_none());
    assert_eq!(
        removed.resource["schemas"],
        json!(["urn:ietf:params:scim:schemas:core:2.0:User"])
    );
}

/// scim2-models (Python) puts `"schemas": [<the extension URN>]` inside an extension object.
/// The key restates the extension, so both modes drop it; a different URN there is still an
/// undefined attribute.
#[test]
fn extension_object_naming_itself() {
    let message = patch(json!([{
        "op": "add",
        "path": ENTERPRISE,
        "value": {"schemas": [ENTERPRISE], "employeeNumber": "42"}
    }]));
    let (lenient, strict) = both(&enterprise_user(), &user_schema(), message);
    assert_eq!(lenient.resource[ENTERPRISE]["employeeNumber"], "42");
    assert!(lenient.resource[ENTERPRISE].get("schemas").is_none());
    // The URN as a path is itself a dialect; strict mode takes it as a path-less key.
    assert_eq!(strict_error(strict), ScimType::InvalidPath);
    let pathless = patch(json!([{
        "op": "add",
        "value": {ENTERPRISE: {"schemas": [ENTERPRISE], "employeeNumber": "42"}}
    }]));
    let (lenient_pathless, strict_pathless) = both(&enterprise_user(), &user_schema(), pathless);
    assert_eq!(lenient_pathless.resource, lenient.resource);
    assert_eq!(strict_pathless.unwrap().resource, lenient.resource);

    let foreign = patch(json!([{
        "op": "add",
        "path": ENTERPRISE,
        "value": {"schemas": ["urn:example:other"], "employeeNumber": "42"}
    }]));
    assert!(
        run(
            &enterprise_user(),
            &user_schema(),
            &foreign,
            &PatchOptions::default()
        )
        .is_err()
    );
}
