//! Resources (RFC 7643): whatever a client sends as a User or a Group is validated for create
//! and for replace (RFC 7644 sections 3.3 and 3.5.1) against the core schemas with the
//! Enterprise User extension, under four sets of options, then projected (section 3.9) with
//! any `attributes` or `excludedAttributes`.
//!
//! Input: the first line is the attribute list (`attributes` when it does not start with `-`,
//! `excludedAttributes` after the `-`), the rest a JSON resource.
//!
//! Nothing may panic. A valid result validates again to itself (normalisation is idempotent),
//! keeps `userName` or `displayName`, and its projection is an object that never holds an
//! attribute the schema returns `never` (`password`).

#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_schema::validate::{UnknownAttributes, ValidationOptions, for_create, for_replace};
use scim_schema::{AttributeSelection, ResourceSchema, project};
use serde_json::{Value, json};
use std::sync::OnceLock;

struct Fixtures {
    user: ResourceSchema,
    group: ResourceSchema,
    existing_user: Value,
    existing_group: Value,
}

fn fixtures() -> &'static Fixtures {
    static FIXTURES: OnceLock<Fixtures> = OnceLock::new();
    FIXTURES.get_or_init(|| Fixtures {
        user: scim_schema::core::user(),
        group: scim_schema::core::group(),
        existing_user: json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "userName": "bjensen@example.com",
            "active": true,
            "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z"}
        }),
        existing_group: json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
            "displayName": "Tour Guides",
            "meta": {"resourceType": "Group", "created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z"}
        }),
    })
}

fn option_sets() -> [ValidationOptions; 4] {
    let lenient = ValidationOptions {
        unknown_attributes: UnknownAttributes::Keep,
        accept_single_values: true,
        ..ValidationOptions::default()
    };
    let canonical = ValidationOptions {
        enforce_canonical_values: true,
        strict_schemas: true,
        ..ValidationOptions::default()
    };
    [
        ValidationOptions::default(),
        lenient,
        canonical,
        ValidationOptions {
            enforce_canonical_values: true,
            ..lenient
        },
    ]
}

/// The attributes `schema` never returns (RFC 7643 section 7, `returned: never`).
fn never_returned(schema: &ResourceSchema) -> Vec<String> {
    schema
        .core()
        .attributes
        .iter()
        .filter(|a| a.returned == scim_schema::Returned::Never)
        .map(|a| a.name.to_ascii_lowercase())
        .collect()
}

fn check(
    schema: &ResourceSchema,
    existing: &Value,
    resource: &Value,
    selection: Option<&AttributeSelection>,
    naming: &str,
) {
    for options in option_sets() {
        let created = for_create(schema, resource, &options);
        let replaced = for_replace(schema, resource, existing, &options);
        for valid in [created, replaced].into_iter().flatten() {
            let again = for_create(schema, &valid, &options);
            assert_eq!(
                again.as_ref(),
                Ok(&valid),
                "a valid resource must validate again to itself: {resource}"
            );
            assert!(
                valid.get(naming).is_some_and(Value::is_string),
                "a valid resource keeps its {naming}: {valid}"
            );
            let Some(selection) = selection else {
                continue;
            };
            let projected = project(&valid, schema, selection);
            let Some(object) = projected.as_object() else {
                panic!("a projection is an object: {projected}");
            };
            let hidden = never_returned(schema);
            assert!(
                object
                    .keys()
                    .all(|k| !hidden.contains(&k.to_ascii_lowercase())),
                "a projection never returns a returned:never attribute: {projected}"
            );
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (list, body) = text.split_once('\n').unwrap_or(("", text));
    let Ok(resource) = serde_json::from_str::<Value>(body) else {
        return;
    };
    let fixtures = fixtures();
    let selection = if list.is_empty() {
        Some(AttributeSelection::all())
    } else if let Some(excluded) = list.strip_prefix('-') {
        AttributeSelection::from_params(None, Some(excluded)).ok()
    } else {
        AttributeSelection::from_params(Some(list), None).ok()
    };
    for (schema, existing, naming) in [
        (&fixtures.user, &fixtures.existing_user, "userName"),
        (&fixtures.group, &fixtures.existing_group, "displayName"),
    ] {
        // The server refuses a selection naming attributes the schema does not know before
        // it projects anything; the projection must still be total on any selection.
        if let Some(selection) = &selection {
            let _ = selection.check_against(schema);
        }
        check(schema, existing, &resource, selection.as_ref(), naming);
    }
});
