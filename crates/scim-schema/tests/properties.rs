//! Properties: validation and projection never panic on arbitrary JSON; validating a
//! normalised resource gives it back unchanged; projecting twice is projecting once.

use proptest::prelude::*;
use scim_schema::core::{self, ENTERPRISE_USER, GROUP, USER};
use scim_schema::{AttributeSelection, UnknownAttributes, ValidationOptions, projection, validate};
use serde_json::{Map, Value, json};

/// Keys that hit real definitions (in several spellings) as well as unknown ones.
const KEYS: &[&str] = &[
    "schemas",
    "SCHEMAS",
    "id",
    "meta",
    "externalId",
    "userName",
    "USERNAME",
    "name",
    "givenName",
    "familyName",
    "displayName",
    "emails",
    "Emails",
    "value",
    "VALUE",
    "type",
    "primary",
    "display",
    "$ref",
    "active",
    "password",
    "groups",
    "members",
    "x509Certificates",
    "manager",
    "employeeNumber",
    "created",
    "lastModified",
    ENTERPRISE_USER,
    USER,
    GROUP,
    "urn:example:x:1.0",
    "unknown",
    "",
];

fn arb_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => proptest::sample::select(KEYS).prop_map(str::to_owned),
        1 => "[a-zA-Z$:._ -]{0,12}",
    ]
}

fn arb_scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        proptest::sample::select(
            &[
                USER,
                GROUP,
                ENTERPRISE_USER,
                "work",
                "2008-01-23T04:56:22Z",
                "aGVsbG8=",
                "",
                "yes"
            ][..]
        )
        .prop_map(Value::from),
        ".{0,10}".prop_map(Value::from),
    ]
}

fn arb_json() -> impl Strategy<Value = Value> {
    arb_scalar().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            proptest::collection::vec((arb_key(), inner), 0..7)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// A resource-shaped object: `schemas` usually right, other keys arbitrary.
fn arb_resource() -> impl Strategy<Value = Value> {
    (
        proptest::option::of(proptest::collection::vec(
            proptest::sample::select(&[USER, GROUP, ENTERPRISE_USER, "urn:example:x:1.0"][..]),
            0..4,
        )),
        proptest::collection::vec((arb_key(), arb_json()), 0..10),
    )
        .prop_map(|(schemas, rest)| {
            let mut map: Map<String, Value> = rest.into_iter().collect();
            if let Some(schemas) = schemas {
                map.insert("schemas".into(), json!(schemas));
            }
            Value::Object(map)
        })
}

fn arb_options() -> impl Strategy<Value = ValidationOptions> {
    (any::<bool>(), any::<bool>(), any::<bool>()).prop_map(|(keep, canonical, single)| {
        ValidationOptions {
            unknown_attributes: if keep {
                UnknownAttributes::Keep
            } else {
                UnknownAttributes::Reject
            },
            enforce_canonical_values: canonical,
            accept_single_values: single,
            strict_schemas: false,
        }
    })
}

const PATHS: &[&str] = &[
    "userName",
    "name",
    "name.givenName",
    "emails",
    "emails.value",
    "emails.primary",
    "password",
    "id",
    "meta",
    "meta.created",
    "members",
    "members.value",
    "displayName",
    "groups",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    "employeeNumber",
    "urn:ietf:params:scim:schemas:core:2.0:User",
    "urn:example:x:1.0",
    "unknown",
    "value",
];

fn arb_selection() -> impl Strategy<Value = AttributeSelection> {
    let list = || {
        proptest::option::of(
            proptest::collection::vec(proptest::sample::select(PATHS), 0..4)
                .prop_map(|v| v.join(",")),
        )
    };
    (list(), list()).prop_map(|(a, e)| {
        AttributeSelection::from_params(a.as_deref(), e.as_deref())
            .expect("PATHS are valid selections")
    })
}

fn case_of(name: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        Just(name.to_owned()),
        Just(name.to_uppercase()),
        Just(name.to_lowercase())
    ]
}

/// A valid User in varied spellings, with readOnly noise the server ignores.
fn arb_valid_user() -> impl Strategy<Value = Value> {
    let email = (
        "[a-z]{1,6}@example\\.com",
        proptest::option::of(proptest::sample::select(&["work", "home", "other"][..])),
    );
    (
        case_of("userName"),
        "[a-zA-Z0-9._-]{1,12}",
        proptest::option::of(("[A-Za-z]{1,8}", proptest::option::of("[A-Za-z]{0,8}"))),
        proptest::collection::vec(email, 0..4),
        proptest::option::of(any::<prop::sample::Index>()),
        proptest::option::of(any::<bool>()),
        proptest::option::of(("[0-9]{1,6}", proptest::option::of("[a-z0-9-]{1,8}"))),
        any::<bool>(),
    )
        .prop_map(
            |(user_name_key, user_name, name, emails, primary, active, enterprise, noise)| {
                let mut user = Map::new();
                let mut schemas = vec![USER];
                user.insert(user_name_key, json!(user_name));
                if let Some((given, family)) = name {
                    let mut n = Map::new();
                    n.insert("GIVENNAME".into(), json!(given));
                    if let Some(family) = family {
                        n.insert("familyName".into(), json!(family));
                    }
                    user.insert("name".into(), Value::Object(n));
                }
                if !emails.is_empty() {
                    let primary = primary.map(|i| i.index(emails.len()));
                    let values: Vec<Value> = emails
                        .iter()
                        .enumerate()
                        .map(|(i, (value, kind))| {
                            let mut e = json!({"value": value});
                            if let Some(kind) = kind {
                                e["Type"] = json!(kind);
                            }
                            if primary == Some(i) {
                                e["primary"] = json!(true);
                            }
                            e
                        })
                        .collect();
                    user.insert("emails".into(), Value::Array(values));
                }
                if let Some(active) = active {
                    user.insert("Active".into(), json!(active));
                }
                if let Some((number, manager)) = enterprise {
                    schemas.push(ENTERPRISE_USER);
                    let mut ext = json!({"employeeNumber": number});
                    if let Some(manager) = manager {
                        ext["manager"] = json!({"value": manager, "displayName": "read only"});
                    }
                    user.insert(ENTERPRISE_USER.to_lowercase(), ext);
                }
                if noise {
                    user.insert("id".into(), json!(42));
                    user.insert("meta".into(), json!({"created": "garbage"}));
                    user.insert("groups".into(), json!("not even an array"));
                }
                user.insert("schemas".into(), json!(schemas));
                Value::Object(user)
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn validation_never_panics(input in arb_resource(), existing in arb_resource(), options in arb_options()) {
        for schema in [core::user(), core::group()] {
            let created = validate::for_create(&schema, &input, &options);
            let _ = validate::for_replace(&schema, &input, &existing, &options);
            // Whatever validation accepts, it accepts again unchanged.
            if let Ok(normalised) = created {
                prop_assert_eq!(validate::for_create(&schema, &normalised, &options), Ok(normalised.clone()));
            }
        }
    }

    #[test]
    fn check_value_never_panics(value in arb_json(), options in arb_options()) {
        let user = core::user();
        for def in user.common().iter().chain(&user.core().attributes) {
            if let Ok(v) = validate::check_value_with(def, &value, def.name.as_str(), &options) {
                prop_assert_eq!(validate::check_value_with(def, &v, def.name.as_str(), &options), Ok(v));
            }
            let _ = validate::check_element(def, &value, "x", &options);
        }
    }

    #[test]
    fn projection_never_panics_and_is_idempotent(resource in arb_json(), selection in arb_selection()) {
        for schema in [core::user(), core::group()] {
            let once = projection::project(&resource, &schema, &selection);
            let twice = projection::project(&once, &schema, &selection);
            prop_assert_eq!(&once, &twice);
            // `password` is `returned: never` for Users (for Groups it is an unknown attribute).
            if let (Some(obj), "User") = (once.as_object(), schema.resource_type().name.as_str()) {
                prop_assert!(!obj.keys().any(|k| k.eq_ignore_ascii_case("password")));
            }
        }
    }

    #[test]
    fn selection_parsing_never_panics(list in ".{0,40}") {
        let _ = AttributeSelection::parse_attributes(&list);
        let _ = AttributeSelection::parse_excluded(&list);
    }

    #[test]
    fn valid_users_normalise_idempotently(user in arb_valid_user(), keep in any::<bool>()) {
        let options = ValidationOptions {
            unknown_attributes: if keep { UnknownAttributes::Keep } else { UnknownAttributes::Reject },
            ..ValidationOptions::default()
        };
        let schema = core::user();
        let once = validate::for_create(&schema, &user, &options);
        prop_assert!(once.is_ok(), "{:?} refused: {:?}", user, once);
        let once = once.unwrap();
        prop_assert!(once.get("id").is_none() && once.get("meta").is_none() && once.get("groups").is_none());
        prop_assert!(once.get("userName").is_some());
        let twice = validate::for_create(&schema, &once, &options).unwrap();
        prop_assert_eq!(&once, &twice);
        // Replacing a resource by itself is allowed and changes nothing.
        prop_assert_eq!(validate::for_replace(&schema, &once, &once, &options).unwrap(), once.clone());
        // Projection of a normalised resource keeps every default attribute but the password.
        let projected = projection::project(&once, &schema, &AttributeSelection::all());
        let mut expected = once.clone();
        expected.as_object_mut().unwrap().remove("password");
        prop_assert_eq!(projected, expected);
    }
}

/// Values that are often equal under SCIM's rules without being equal as JSON: case variants,
/// the same instant in two offsets, the same number in two spellings, object keys in two cases.
fn comparable_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        prop::sample::select(vec!["a", "A", "b", "\u{e9}", "\u{c9}", ""]).prop_map(Value::from),
        prop::sample::select(vec![
            "2011-05-13T04:42:34Z",
            "2011-05-13T06:42:34.000+02:00",
            "2011-05-13T04:42:35Z",
            "not a date",
        ])
        .prop_map(Value::from),
        prop::sample::select(vec![json!(1), json!(1.0), json!(-0.0), json!(0), json!(2)]),
        any::<bool>().prop_map(Value::from),
        Just(Value::Null),
    ];
    leaf.prop_recursive(2, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop::sample::select(vec!["value", "Value", "type", "display", "primary"]),
                    inner
                ),
                0..3
            )
            .prop_map(|entries| {
                Value::Object(
                    entries
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v))
                        .collect(),
                )
            }),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Two values have the same key exactly when `values_equal` says they are equal, for every
    /// kind of attribute: so a set of keys can replace comparing each value with each.
    #[test]
    fn value_keys_agree_with_values_equal(a in comparable_value(), b in comparable_value()) {
        use scim_schema::{AttributeDef, AttributeType};
        let mut defs = Vec::new();
        for kind in [
            AttributeType::String,
            AttributeType::DateTime,
            AttributeType::Integer,
            AttributeType::Decimal,
            AttributeType::Boolean,
        ] {
            for (multi_valued, case_exact) in [(false, false), (true, false), (false, true)] {
                let mut def = AttributeDef::new("a", kind);
                def.multi_valued = multi_valued;
                def.case_exact = case_exact;
                defs.push(def);
            }
        }
        let mut emails = AttributeDef::new("emails", AttributeType::Complex);
        emails.multi_valued = true;
        emails.sub_attributes = vec![
            AttributeDef::new("value", AttributeType::String),
            AttributeDef::new("type", AttributeType::String),
            AttributeDef::new("primary", AttributeType::Boolean),
        ];
        defs.push(emails);
        for def in &defs {
            prop_assert_eq!(
                scim_schema::value_key(def, &a) == scim_schema::value_key(def, &b),
                validate::values_equal(def, &a, &b),
                "{:?} multi {} caseExact {}: {} vs {}", def.kind, def.multi_valued, def.case_exact, a, b
            );
        }
    }
}
