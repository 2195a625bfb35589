//! Properties of the engine over generated operations (proptest).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failure report"
)]

mod common;

use common::*;
use proptest::prelude::*;
use scim_patch::{PatchOptions, PatchRequest, apply};
use scim_schema::validate::{ValidationOptions, for_replace};
use serde_json::{Map, Value, json};

const PATHS: &[&str] = &[
    "userName",
    "name",
    "name.givenName",
    "name.familyName",
    "name.formatted",
    "displayName",
    "nickName",
    "title",
    "active",
    "locale",
    "timezone",
    "externalId",
    "password",
    "profileUrl",
    "emails",
    "emails[type eq \"work\"]",
    "emails[type eq \"work\"].value",
    "emails[type eq \"home\"].primary",
    "emails[value co \"example\"]",
    "emails[type eq \"other\"].value",
    "emails.value",
    "emails.display",
    "phoneNumbers[type eq \"mobile\"].value",
    "phoneNumbers",
    "addresses[type eq \"work\"].locality",
    "addresses[type eq \"home\"]",
    "addresses",
    "ims",
    "photos[type eq \"photo\"].value",
    "roles",
    "entitlements",
    "x509Certificates",
    "groups",
    "id",
    "meta",
    "meta.version",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    "manager",
    "manager[value eq \"26118915-6090-4610-87e4-49d8ca9f808d\"]",
    "costCenter",
    "department",
    "Emails[Type eq \"WORK\"].Value",
    "nope",
    "emails[nope eq 1]",
    "name[givenName eq \"x\"]",
];

const KEYS: &[&str] = &[
    "value",
    "type",
    "primary",
    "display",
    "givenName",
    "familyName",
    "formatted",
    "locality",
    "$ref",
    "displayName",
    "nickName",
    "active",
    "title",
    "emails",
    "name",
    "name.givenName",
    "id",
    "schemas",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    "costCenter",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..1000).prop_map(Value::from),
        Just(json!(1.5)),
        prop::sample::select(vec![
            "work",
            "home",
            "True",
            "false",
            "x@example.com",
            "2011-05-13T04:42:34Z",
            "",
            "Babs",
            "User"
        ])
        .prop_map(Value::from),
        "[a-zA-Z@. ]{0,12}".prop_map(Value::from),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(KEYS), inner), 0..4).prop_map(|kv| {
                Value::Object(
                    kv.into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect::<Map<_, _>>(),
                )
            }),
        ]
    })
}

fn operation() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(vec!["add", "remove", "replace", "Add", "Replace", "Remove"]),
        prop::option::weighted(0.85, prop::sample::select(PATHS)),
        prop::option::weighted(0.8, json_value()),
    )
        .prop_map(|(op, path, value)| {
            let mut o = Map::new();
            o.insert("op".into(), Value::from(op));
            if let Some(p) = path {
                o.insert("path".into(), Value::from(p));
            }
            if let Some(v) = value {
                o.insert("value".into(), v);
            }
            Value::Object(o)
        })
}

/// Valid replaces: a path and a value the schema accepts.
fn valid_replace() -> impl Strategy<Value = Value> {
    prop_oneof![
        "[a-z]{1,8}".prop_map(|s| json!({"op": "replace", "path": "title", "value": s})),
        any::<bool>().prop_map(|b| json!({"op": "replace", "path": "active", "value": b})),
        "[a-z]{1,8}".prop_map(|s| json!({"op": "replace", "path": "name.givenName", "value": s})),
        "[a-z]{1,8}".prop_map(|s| json!({"op": "replace", "path": "emails[type eq \"work\"].value", "value": format!("{s}@example.com")})),
        "[a-z]{1,8}".prop_map(|s| json!({"op": "replace", "path": "emails[type eq \"other\"].value", "value": format!("{s}@example.com")})),
        "[a-z]{1,8}".prop_map(|s| json!({"op": "replace", "path": "emails", "value": [{"value": format!("{s}@example.com"), "type": "work", "primary": true}]})),
        "[a-z]{1,8}".prop_map(|s| json!({"op": "replace", "value": {"nickName": s, "name.familyName": "F"}})),
        "[0-9]{1,6}".prop_map(|s| json!({"op": "replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": s})),
        "[0-9a-f]{8}".prop_map(|s| json!({"op": "replace", "path": "manager", "value": s})),
        Just(json!({"op": "replace", "path": "emails[type eq \"home\"].primary", "value": true})),
        Just(json!({"op": "replace", "path": "addresses[type eq \"work\"]", "value": {"type": "work", "locality": "Springfield"}})),
    ]
}

/// Operations that always fail on the enterprise user.
fn failing() -> impl Strategy<Value = Value> {
    prop::sample::select(vec![
        json!({"op": "replace", "path": "id", "value": "stolen"}),
        json!({"op": "remove", "path": "userName"}),
        json!({"op": "replace", "path": "shoeSize", "value": 44}),
        json!({"op": "replace", "path": "active", "value": "maybe"}),
        json!({"op": "add", "path": "emails.value", "value": "x@example.com"}),
        json!({"op": "replace", "path": "emails[type co \"zzz\"].value", "value": "x@example.com"}),
        json!({"op": "remove", "path": "meta"}),
        json!({"op": "remove"}),
    ])
}

fn apply_ops(
    resource: &Value,
    ops: &[Value],
    options: &PatchOptions,
) -> Result<scim_patch::PatchOutcome, scim_patch::PatchError> {
    let request = PatchRequest::from_json(&patch(Value::Array(ops.to_vec())), options)?;
    apply(resource, &user_schema(), &request, options)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// RFC 7644 section 3.5.2: "If a single operation encounters an error condition, the original
    /// target resource MUST be restored". The input is borrowed, so it cannot change; what matters
    /// is that the error is reported, that no partial result escapes, and that a valid request
    /// then applies to the same input exactly as if the failed one had never been sent.
    #[test]
    fn a_failing_request_changes_nothing(valid in prop::collection::vec(valid_replace(), 0..4), bad in failing(), at in 0usize..4) {
        let user = enterprise_user();
        let pristine = user.clone();
        let mut ops = valid.clone();
        ops.insert(at.min(ops.len()), bad);
        prop_assert!(apply_ops(&user, &ops, &PatchOptions::default()).is_err());
        prop_assert_eq!(&user, &pristine);
        let after_failure = apply_ops(&user, &valid, &PatchOptions::default());
        let fresh = apply_ops(&pristine, &valid, &PatchOptions::default());
        prop_assert_eq!(after_failure, fresh);
    }

    /// Applying the same replace twice gives what applying it once gives, and the second time
    /// reports no change (so the store keeps meta.version).
    #[test]
    fn replace_is_idempotent(op in valid_replace()) {
        let once = apply_ops(&enterprise_user(), std::slice::from_ref(&op), &PatchOptions::default()).unwrap();
        let twice = apply_ops(&once.resource, &[op], &PatchOptions::default()).unwrap();
        prop_assert_eq!(&twice.resource, &once.resource);
        prop_assert!(!twice.changed);
    }

    /// Adding a value at a path the resource does not have, then removing that path, gives back
    /// the original resource (extension objects and `schemas` included).
    #[test]
    fn add_then_remove_restores(case in 0usize..8, text in "[a-z]{1,10}") {
        let mut user = enterprise_user();
        let object = user.as_object_mut().unwrap();
        object.remove("nickName");
        object.remove("ims");
        object.remove("title");
        object["name"].as_object_mut().unwrap().remove("middleName");
        if case >= 6 {
            object.remove(ENTERPRISE);
            object.insert("schemas".into(), json!(["urn:ietf:params:scim:schemas:core:2.0:User"]));
        } else {
            object[ENTERPRISE].as_object_mut().unwrap().remove("costCenter");
        }
        let (path, value) = match case {
            0 => ("nickName", json!(text)),
            1 => ("title", json!(text)),
            2 => ("ims", json!([{"value": text, "type": "xmpp"}])),
            3 => ("costCenter", json!(text)),
            4 => ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:costCenter", json!(text)),
            5 => ("name.middleName", json!(text)),
            6 => ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", json!(text)),
            _ => ("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", json!({"value": text})),
        };
        let added = apply_ops(&user, &[json!({"op": "add", "path": path, "value": value})], &PatchOptions::default()).unwrap();
        prop_assert!(added.changed);
        let removed = apply_ops(&added.resource, &[json!({"op": "remove", "path": path})], &PatchOptions::default()).unwrap();
        prop_assert_eq!(&removed.resource, &user);
        // And in one request, nothing changes at all.
        let both = apply_ops(&user, &[json!({"op": "add", "path": path, "value": value}), json!({"op": "remove", "path": path})], &PatchOptions::default()).unwrap();
        prop_assert!(!both.changed);
    }

    /// `from_value` (which moves values) and `from_json` (which copies them) agree.
    #[test]
    fn owned_and_borrowed_parsing_agree(ops in prop::collection::vec(operation(), 0..4), strict in any::<bool>()) {
        let options = if strict { PatchOptions::strict() } else { PatchOptions::default() };
        let message = patch(Value::Array(ops));
        prop_assert_eq!(PatchRequest::from_value(message.clone(), &options), PatchRequest::from_json(&message, &options));
    }

    /// Whatever the operations, the result is a valid resource (scim-schema's replace
    /// validation) or a SCIM error; never a panic. In both modes.
    #[test]
    fn arbitrary_operations_give_a_valid_resource_or_an_error(ops in prop::collection::vec(operation(), 1..5), strict in any::<bool>()) {
        let options = if strict { PatchOptions::strict() } else { PatchOptions::default() };
        let user = enterprise_user();
        match apply_ops(&user, &ops, &options) {
            Ok(outcome) => {
                let valid = for_replace(&user_schema(), &outcome.resource, &user, &ValidationOptions::default());
                prop_assert!(valid.is_ok(), "{:?}\nops: {}\nresult: {}", valid, Value::Array(ops.clone()), outcome.resource);
                prop_assert_eq!(outcome.changed, outcome.resource != user);
                prop_assert_eq!(&outcome.resource["meta"], &user["meta"]);
                prop_assert_eq!(&outcome.resource["id"], &user["id"]);
            }
            Err(e) => prop_assert_eq!(e.status(), 400),
        }
    }
}

#[test]
fn the_fixture_user_is_valid() {
    let user = enterprise_user();
    for_replace(&user_schema(), &user, &user, &ValidationOptions::default()).unwrap();
}
