//! Filter evaluation against the RFC 7643 User (with the enterprise extension) and a workplace
//! extension that carries one attribute of every other type (RFC 7644 section 3.4.2.2).

use scim_filter::eval::{UnknownAttributes, check, matches, matches_value};
use scim_filter::{
    CompiledFilter, CompiledValueFilter, Filter, FilterError, Limits, parse_filter,
    parse_filter_with,
};
use scim_schema::{AttrPath, ResourceSchema, Schema, SchemaExtension, text_eq};
use serde_json::{Value, json};
use std::fmt::Write as _;
use std::sync::{Arc, LazyLock};

const WORKPLACE: &str = "urn:example:params:scim:schemas:extension:workplace:2.0:User";
const ENTERPRISE: &str = scim_schema::core::ENTERPRISE_USER;

/// Attributes of the types the core User lacks (integer, decimal, binary outside a complex
/// attribute, case-exact reference), a multi-valued simple attribute, and a multi-valued complex
/// attribute without a `value` sub-attribute.
fn workplace_extension() -> Schema {
    serde_json::from_value(json!({
        "id": WORKPLACE,
        "name": "WorkplaceUser",
        "attributes": [
            { "name": "floor", "type": "integer" },
            { "name": "deskRatio", "type": "decimal" },
            { "name": "badgeId", "type": "string", "caseExact": true },
            { "name": "parkingEligible", "type": "boolean" },
            { "name": "badgePhoto", "type": "binary" },
            { "name": "homeOffice", "type": "reference", "caseExact": true, "referenceTypes": ["uri"] },
            { "name": "lastBadgeIn", "type": "dateTime" },
            { "name": "accessZones", "type": "string", "multiValued": true },
            { "name": "lockers", "type": "complex", "multiValued": true, "subAttributes": [
                { "name": "number", "type": "integer" },
                { "name": "bank", "type": "string" },
                { "name": "code", "type": "string", "returned": "never" }
            ] },
            { "name": "doorPin", "type": "string", "mutability": "writeOnly", "returned": "never" }
        ]
    }))
    .expect("the workplace extension is a valid schema")
}

static SCHEMA: LazyLock<ResourceSchema> = LazyLock::new(|| {
    let user = scim_schema::core::user();
    let mut resource_type = user.resource_type().clone();
    resource_type.schema_extensions.push(SchemaExtension {
        schema: WORKPLACE.to_owned(),
        required: false,
    });
    let mut extensions: Vec<(Arc<Schema>, bool)> = user
        .extensions()
        .map(|(s, required)| (Arc::new(s.clone()), required))
        .collect();
    extensions.push((Arc::new(workplace_extension()), false));
    ResourceSchema::new(
        resource_type,
        Arc::new(user.core().clone()),
        extensions,
        Arc::new(user.common().to_vec()),
    )
});

/// Barbara Jensen of RFC 7643 section 8.3, with workplace data.
fn bjensen() -> Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            ENTERPRISE,
            WORKPLACE
        ],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "701984",
        "userName": "bjensen@example.com",
        "name": {
            "formatted": "Ms. Barbara J Jensen, III",
            "familyName": "Jensen",
            "givenName": "Barbara"
        },
        "displayName": "Babs Jensen",
        "nickName": "Babs",
        "profileUrl": "https://login.example.com/bjensen",
        "emails": [
            { "value": "bjensen@example.com", "type": "work", "primary": true },
            { "value": "babs@jensen.org", "type": "home" }
        ],
        "userType": "Employee",
        "title": "Tour Guide",
        "active": true,
        "x509Certificates": [ { "value": "MIIDQzCCAqygAwIBAgICEAAwDQYJ" } ],
        "groups": [
            { "value": "e9e30dba-f08f-4109-8486-d5c6a331660a", "display": "Tour Guides" }
        ],
        ENTERPRISE: {
            "employeeNumber": "701984",
            "department": "Tour Operations",
            "manager": {
                "value": "26118915-6090-4610-87e4-49d8ca9f808d",
                "displayName": "John Smith"
            }
        },
        WORKPLACE: {
            "floor": 3,
            "deskRatio": 0.75,
            "badgeId": "AbC-123",
            "parkingEligible": false,
            "badgePhoto": "iVBORw0KGgo=",
            "homeOffice": "https://example.com/Sites/Paris",
            "lastBadgeIn": "2024-03-01T08:15:30.5+01:00",
            "accessZones": ["Lobby", "Lab-2"],
            "lockers": [ { "number": 12, "bank": "B" } ]
        },
        "meta": {
            "resourceType": "User",
            "created": "2010-01-23T04:56:22Z",
            "lastModified": "2011-05-13T04:42:34Z",
            "location": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646"
        }
    })
}

fn filter(text: &str) -> Filter {
    parse_filter(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn eval(text: &str, resource: &Value) -> bool {
    matches(&filter(text), resource, &SCHEMA).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn error(text: &str) -> FilterError {
    match check(&filter(text), &SCHEMA, UnknownAttributes::Strict) {
        Ok(()) => panic!("{text}: accepted, expected an error"),
        Err(e) => e,
    }
}

/// Evaluates every case and reports all the wrong ones at once.
#[track_caller]
fn assert_cases(resource: &Value, cases: &[(&str, bool)]) {
    let mut failures = String::new();
    for (text, expected) in cases {
        let actual = eval(text, resource);
        if actual != *expected {
            writeln!(failures, "  {text}: expected {expected}, got {actual}")
                .expect("writes to a String");
        }
    }
    assert!(failures.is_empty(), "wrong results:\n{failures}");
}

/// `resource` with `key` (a top-level attribute) set to `value`.
fn with(mut resource: Value, key: &str, value: Value) -> Value {
    resource
        .as_object_mut()
        .expect("a resource is an object")
        .insert(key.to_owned(), value);
    resource
}

/// `resource` with workplace attribute `key` set to `value`.
fn with_workplace(mut resource: Value, key: &str, value: Value) -> Value {
    resource[WORKPLACE]
        .as_object_mut()
        .expect("the fixture has workplace data")
        .insert(key.to_owned(), value);
    resource
}

#[test]
fn strings_that_are_not_case_exact_compare_after_folding() {
    assert_cases(
        &bjensen(),
        &[
            (r#"userName eq "BJensen@Example.COM""#, true),
            (r#"userName eq "bjensen""#, false),
            (r#"userName ne "bjensen""#, true),
            (r#"userName ne "BJENSEN@EXAMPLE.COM""#, false),
            (r#"userName co "JENSEN@""#, true),
            (r#"userName co "jensen@x""#, false),
            (r#"userName co """#, true),
            (r#"userName sw "BJ""#, true),
            (r#"userName sw "jensen""#, false),
            (r#"userName ew "EXAMPLE.COM""#, true),
            (r#"userName ew "example""#, false),
            // Lexicographic after folding: "bjensen@example.com" vs the folded literal.
            (r#"userName gt "BJENSEN@A""#, true),
            (r#"userName gt "BJENSEN@EXAMPLE.COM""#, false),
            (r#"userName ge "BJENSEN@EXAMPLE.COM""#, true),
            (r#"userName lt "C""#, true),
            (r#"userName lt "B""#, false),
            (r#"userName le "bjensen@example.com""#, true),
            (r#"userName le "bjensen@example.co""#, false),
        ],
    );
}

#[test]
fn case_exact_strings_compare_as_written() {
    assert_cases(
        &bjensen(),
        &[
            (r#"badgeId eq "AbC-123""#, true),
            (r#"badgeId eq "abc-123""#, false),
            (r#"badgeId ne "abc-123""#, true),
            (r#"badgeId co "bC-""#, true),
            (r#"badgeId co "BC-""#, false),
            (r#"badgeId sw "Ab""#, true),
            (r#"badgeId sw "ab""#, false),
            (r#"badgeId ew "C-123""#, true),
            (r#"badgeId ew "c-123""#, false),
            // 'A' (0x41) sorts before 'a' (0x61) when case matters.
            (r#"badgeId lt "abc""#, true),
            (r#"badgeId gt "AbB""#, true),
            (r#"badgeId gt "abc""#, false),
            (r#"id eq "2819C223-7F76-453A-919D-413861904646""#, false),
            (r#"id eq "2819c223-7f76-453a-919d-413861904646""#, true),
            (r#"meta.resourceType eq "user""#, false),
            (r#"meta.resourceType eq "User""#, true),
        ],
    );
}

#[test]
fn folding_is_unicode_not_ascii_only() {
    let elodie = with(
        bjensen(),
        "name",
        json!({ "givenName": "Élodie", "familyName": "Åström" }),
    );
    assert_cases(
        &elodie,
        &[
            (r#"name.givenName eq "élodie""#, true),
            (r#"name.givenName eq "ÉLODIE""#, true),
            (r#"name.givenName eq "elodie""#, false),
            (r#"name.givenName sw "éL""#, true),
            (r#"name.givenName co "LOD""#, true),
            (r#"name.givenName ew "DIE""#, true),
            (r#"name.familyName eq "ÅSTRÖM""#, true),
            // Ordering is by code point after folding: 'é' (U+00E9) sorts after 'e'.
            (r#"name.givenName gt "elodie""#, true),
            (r#"name.givenName lt "f""#, false),
            // An ASCII value never equals a literal that folds to non-ASCII.
            (r#"userName eq "bjensen@exämple.com""#, false),
        ],
    );
    // The KELVIN SIGN folds to ASCII 'k': the evaluator must agree with text_eq, the function
    // the stores fold their index columns with.
    let kenji = with(bjensen(), "name", json!({ "givenName": "Kenji" }));
    assert!(text_eq("Kenji", "\u{212A}enji", false));
    assert!(eval("name.givenName eq \"\u{212A}enji\"", &kenji));
    assert!(eval("name.givenName sw \"\u{212A}\"", &kenji));
}

#[test]
fn booleans_support_eq_and_ne_only() {
    assert_cases(
        &bjensen(),
        &[
            ("active eq true", true),
            ("active eq false", false),
            ("active ne false", true),
            ("active ne true", false),
            ("parkingEligible eq false", true),
            ("parkingEligible eq true", false),
            ("emails.primary eq true", true),
            // Literals of another type never match; they are not errors.
            (r#"active eq "true""#, false),
            ("active eq 1", false),
        ],
    );
    for text in [
        "active gt false",
        "active ge true",
        "parkingEligible lt true",
        "emails.primary le true",
        r#"active co "t""#,
        r#"active sw "t""#,
    ] {
        assert!(
            matches!(error(text), FilterError::NotApplicable { .. }),
            "{text}"
        );
    }
}

#[test]
fn integers_compare_numerically_and_exactly() {
    assert_cases(
        &bjensen(),
        &[
            ("floor eq 3", true),
            ("floor eq 3.0", true),
            ("floor eq 4", false),
            ("floor ne 4", true),
            ("floor ne 3", false),
            ("floor gt 2", true),
            ("floor gt 3", false),
            ("floor ge 3", true),
            ("floor lt 4", true),
            ("floor lt 3", false),
            ("floor le 3", true),
            ("floor gt 2.5", true),
            ("floor lt 3.5", true),
            ("floor gt 3.5", false),
            ("floor gt -9223372036854775808", true),
            ("floor lt 18446744073709551615", true),
            ("floor gt 1e2", false),
            (r#"floor eq "3""#, false),
        ],
    );
    // Above 2^53 an i64 and an f64 must not be compared by rounding the integer.
    let big = with_workplace(bjensen(), "floor", json!(9_007_199_254_740_993_i64));
    assert_cases(
        &big,
        &[
            ("floor gt 9007199254740992.0", true),
            ("floor eq 9007199254740992.0", false),
            ("floor eq 9007199254740993", true),
            ("floor gt 9007199254740992", true),
        ],
    );
    assert!(matches!(
        error("floor co 3"),
        FilterError::NotApplicable { .. }
    ));
    assert!(matches!(
        error("lockers.number sw 1"),
        FilterError::NotApplicable { .. }
    ));
}

#[test]
fn decimals_compare_numerically() {
    assert_cases(
        &bjensen(),
        &[
            ("deskRatio eq 0.75", true),
            ("deskRatio eq 0.750", true),
            ("deskRatio eq 7.5e-1", true),
            ("deskRatio ne 0.75", false),
            ("deskRatio gt 0.5", true),
            ("deskRatio ge 0.75", true),
            ("deskRatio le 0.7", false),
            ("deskRatio lt 1", true),
            ("deskRatio gt 0", true),
        ],
    );
    // A decimal stored as a JSON integer still compares by value.
    let whole = with_workplace(bjensen(), "deskRatio", json!(1));
    assert_cases(
        &whole,
        &[("deskRatio eq 1.0", true), ("deskRatio gt 0.99", true)],
    );
    assert!(matches!(
        error("deskRatio ew 5"),
        FilterError::NotApplicable { .. }
    ));
}

#[test]
fn date_times_compare_as_instants() {
    assert_cases(
        &bjensen(),
        &[
            (r#"meta.lastModified eq "2011-05-13T04:42:34Z""#, true),
            (
                r#"meta.lastModified eq "2011-05-13T06:42:34.000+02:00""#,
                true,
            ),
            (r#"meta.lastModified eq "2011-05-12T23:42:34-05:00""#, true),
            (r#"meta.lastModified eq "2011-05-13T04:42:34.001Z""#, false),
            (r#"meta.lastModified ne "2011-05-13T04:42:34.001Z""#, true),
            (r#"meta.lastModified gt "2011-05-13T04:42:33.999Z""#, true),
            (r#"meta.lastModified gt "2011-05-13T04:42:34Z""#, false),
            (r#"meta.lastModified ge "2011-05-13T04:42:34Z""#, true),
            (
                r#"meta.lastModified lt "2011-05-13T06:42:34.5+02:00""#,
                true,
            ),
            (
                r#"meta.lastModified le "2011-05-13T04:42:34.000000000Z""#,
                true,
            ),
            (r#"meta.created lt "2011-01-01T00:00:00Z""#, true),
            // A literal that is not an xsd:dateTime matches nothing; `ne` is its negation.
            (r#"meta.lastModified eq "yesterday""#, false),
            (r#"meta.lastModified gt "2011-05-13""#, false),
            (r#"meta.lastModified lt "2011-05-13""#, false),
            (r#"meta.lastModified ne "yesterday""#, true),
            (r#"meta.lastModified gt 1305261754"#, false),
            // The substring operators compare the string form (caseExact false here).
            (r#"meta.lastModified sw "2011-05""#, true),
            (r#"meta.lastModified co "T04:42""#, true),
            (r#"meta.lastModified ew "34z""#, true),
            (r#"meta.lastModified co "06:42""#, false),
            // Fraction ".5" and offset "+01:00" on the stored value.
            (r#"lastBadgeIn eq "2024-03-01T07:15:30.500Z""#, true),
            (r#"lastBadgeIn gt "2024-03-01T07:15:30Z""#, true),
            (r#"lastBadgeIn lt "2024-03-01T07:15:30.5000001Z""#, true),
            (r#"lastBadgeIn lt "2024-03-01T08:15:30.4+01:00""#, false),
        ],
    );
    // A stored value that is not a dateTime matches no chronological comparison.
    let garbled = with(bjensen(), "meta", json!({ "lastModified": "last tuesday" }));
    assert_cases(
        &garbled,
        &[
            (r#"meta.lastModified gt "1970-01-01T00:00:00Z""#, false),
            (r#"meta.lastModified lt "9999-01-01T00:00:00Z""#, false),
            (r#"meta.lastModified sw "last""#, true),
        ],
    );
}

#[test]
fn binary_is_case_exact_and_has_no_ordering() {
    assert_cases(
        &bjensen(),
        &[
            (r#"badgePhoto eq "iVBORw0KGgo=""#, true),
            (r#"badgePhoto eq "ivborw0kggo=""#, false),
            (r#"badgePhoto ne "ivborw0kggo=""#, true),
            (r#"badgePhoto co "ORw0""#, true),
            (r#"badgePhoto co "orw0""#, false),
            (r#"badgePhoto sw "iVBO""#, true),
            (r#"badgePhoto ew "Ggo=""#, true),
            (r#"x509Certificates.value sw "MIID""#, true),
            (r#"x509Certificates.value sw "miid""#, false),
            (
                r#"x509Certificates eq "MIIDQzCCAqygAwIBAgICEAAwDQYJ""#,
                true,
            ),
        ],
    );
    for text in [
        r#"badgePhoto gt "a""#,
        r#"badgePhoto le "a""#,
        r#"x509Certificates.value lt "M""#,
        r#"x509Certificates ge "M""#,
    ] {
        assert!(
            matches!(error(text), FilterError::NotApplicable { .. }),
            "{text}"
        );
    }
}

#[test]
fn references_compare_as_strings_with_their_case_exactness() {
    assert_cases(
        &bjensen(),
        &[
            (r#"homeOffice eq "https://example.com/Sites/Paris""#, true),
            (r#"homeOffice eq "https://example.com/sites/paris""#, false),
            (r#"homeOffice sw "https://""#, true),
            (r#"homeOffice co "/Sites/""#, true),
            (r#"homeOffice co "/sites/""#, false),
            (r#"homeOffice gt "https://example.com/Sites/P""#, true),
            // profileUrl is a caseExact=false reference in RFC 7643 section 4.1.1.
            (r#"profileUrl ew "/BJENSEN""#, true),
            (r#"meta.location sw "https://example.com/v2/Users/""#, true),
        ],
    );
}

#[test]
fn multi_valued_attributes_match_if_any_value_matches() {
    assert_cases(
        &bjensen(),
        &[
            (r#"emails.value eq "babs@jensen.org""#, true),
            (r#"emails.value eq "BJENSEN@EXAMPLE.COM""#, true),
            (r#"emails.type eq "home""#, true),
            (r#"emails.type eq "other""#, false),
            (r#"emails.value ew ".org""#, true),
            (r#"emails.value co "example.net""#, false),
            (r#"accessZones eq "lab-2""#, true),
            (r#"accessZones sw "Lo""#, true),
            (r#"accessZones eq "Kitchen""#, false),
            (r#"lockers.bank eq "b""#, true),
            ("lockers.number gt 11", true),
            ("lockers.number gt 12", false),
            (r#"groups.display sw "tour""#, true),
        ],
    );
}

#[test]
fn ne_on_multi_valued_attributes_is_the_negation_of_eq() {
    // bjensen has a home email: `emails.type ne "home"` asks "no email of type home", which is
    // false, even though her work email's type differs from "home".
    let user = bjensen();
    assert_cases(
        &user,
        &[
            (r#"emails.type ne "home""#, false),
            (r#"emails.type ne "other""#, true),
            (r#"accessZones ne "Lobby""#, false),
            (r#"accessZones ne "Kitchen""#, true),
            // Unassigned attributes are "not equal" to anything.
            (r#"nickName ne "Babs""#, false),
            (r#"phoneNumbers.value ne "555""#, true),
        ],
    );
    for (ne, not_eq) in [
        (r#"emails.type ne "home""#, r#"not (emails.type eq "home")"#),
        (
            r#"emails.type ne "other""#,
            r#"not (emails.type eq "other")"#,
        ),
        (
            r#"phoneNumbers.value ne "555""#,
            r#"not (phoneNumbers.value eq "555")"#,
        ),
    ] {
        assert_eq!(eval(ne, &user), eval(not_eq, &user), "{ne}");
    }
}

#[test]
fn complex_attributes_without_sub_attribute_compare_their_value() {
    assert_cases(
        &bjensen(),
        &[
            // RFC 7644 section 3.4.2.2, Figure 2.
            (r#"emails co "example.com""#, true),
            (r#"emails eq "BJENSEN@example.com""#, true),
            (r#"emails co "nowhere""#, false),
            (r#"emails ew ".org""#, true),
            (r#"groups eq "e9e30dba-f08f-4109-8486-d5c6a331660a""#, true),
            // A singular complex attribute in an extension, named unqualified.
            (r#"manager eq "26118915-6090-4610-87e4-49d8ca9f808d""#, true),
            ("x509Certificates pr", true),
            ("name pr", true),
        ],
    );
    // No `value` sub-attribute to fall back on.
    for text in [r#"name eq "Barbara""#, "lockers eq 12", r#"meta co "User""#] {
        match error(text) {
            FilterError::NotApplicable { detail, .. } => {
                assert!(detail.contains("\"value\""), "{text}: {detail}");
            }
            other => panic!("{text}: {other:?}"),
        }
    }
}

#[test]
fn value_paths_apply_all_conditions_to_the_same_value() {
    // A work email at example.org and a home email at example.com.
    let mixed = with(
        bjensen(),
        "emails",
        json!([
            { "value": "barbara@example.org", "type": "work" },
            { "value": "babs@example.com", "type": "home", "primary": true }
        ]),
    );
    assert_cases(
        &mixed,
        &[
            (
                r#"emails[type eq "work" and value co "example.com"]"#,
                false,
            ),
            // Without brackets the conditions may hold on different values.
            (
                r#"emails.type eq "work" and emails.value co "example.com""#,
                true,
            ),
            (r#"emails[type eq "work" and value co "example.org"]"#, true),
            (r#"emails[type eq "home" and primary eq true]"#, true),
            (r#"emails[type eq "work" and primary eq true]"#, false),
            (r#"emails[type eq "work" and not (primary eq true)]"#, true),
            (r#"emails[type eq "other" or value ew "example.com"]"#, true),
            (
                r#"not (emails[type eq "work" and value co "example.com"])"#,
                true,
            ),
        ],
    );
    assert_cases(
        &bjensen(),
        &[
            (
                r#"emails[type eq "work" and value co "@example.com"]"#,
                true,
            ),
            (r#"EMAILS[TYPE eq "WORK"]"#, true),
            ("emails[primary pr]", true),
            ("emails[display pr]", false),
            (r#"lockers[number gt 10 and bank eq "b"]"#, true),
            (r#"lockers[number gt 12 and bank eq "b"]"#, false),
            // A singular complex attribute is one value.
            (
                r#"name[givenName eq "barbara" and familyName sw "J"]"#,
                true,
            ),
            (
                r#"name[givenName eq "barbara" and familyName sw "X"]"#,
                false,
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager\
                 [displayName sw \"john\"]",
                true,
            ),
            (r#"phoneNumbers[type eq "work"]"#, false),
        ],
    );
    // A value that is not an object is not a value of a complex attribute.
    let odd = with(bjensen(), "emails", json!(["work", null, 3]));
    assert!(!eval(r#"emails[type eq "work"]"#, &odd));
    assert!(!eval("emails[not (type pr)]", &odd));
}

#[test]
fn value_path_errors() {
    for text in [
        r#"userName[value eq "x"]"#,
        r#"emails[typo eq "work"]"#,
        r#"emails[value.sub eq "x"]"#,
        "emails[primary gt true]",
        r#"meta.created[value eq "x"]"#,
    ] {
        assert!(
            matches!(error(text), FilterError::NotApplicable { .. }),
            "{text}"
        );
    }
}

#[test]
fn pr_and_eq_null_treat_null_and_empty_as_unassigned() {
    // RFC 7643 section 2.5: unassigned, null and empty are the same state.
    let cases = [
        (json!(null), false),
        (json!(""), false),
        (json!([]), false),
        (json!({}), false),
        (json!([{}]), false),
        (json!([null, ""]), false),
        (json!({ "a": null, "b": [] }), false),
        (json!("x"), true),
        (json!(" "), true),
        (json!(0), true),
        (json!(false), true),
        (json!(["", "y"]), true),
    ];
    for (value, present) in cases {
        let user = with(bjensen(), "title", value.clone());
        assert_eq!(eval("title pr", &user), present, "title pr on {value}");
        assert_eq!(
            eval("title eq null", &user),
            !present,
            "title eq null on {value}"
        );
        assert_eq!(
            eval("title ne null", &user),
            present,
            "title ne null on {value}"
        );
        assert!(!eval("title co null", &user), "title co null on {value}");
        assert!(!eval("title gt null", &user), "title gt null on {value}");
    }
    let mut absent = bjensen();
    absent.as_object_mut().unwrap().remove("title");
    assert!(!eval("title pr", &absent));
    assert!(eval("title eq null", &absent));

    for (emails, present) in [
        (json!([{ "value": "" }]), false),
        (json!([{ "value": null, "type": null }]), false),
        (json!([{ "value": "", "type": "work" }]), true),
    ] {
        let user = with(bjensen(), "emails", emails.clone());
        assert_eq!(eval("emails pr", &user), present, "emails pr on {emails}");
        assert_eq!(
            eval("emails eq null", &user),
            !present,
            "emails eq null on {emails}"
        );
    }
    assert_cases(
        &bjensen(),
        &[
            ("name.givenName pr", true),
            ("name.middleName pr", false),
            ("phoneNumbers.value pr", false),
            ("emails.value pr", true),
            ("emails.display eq null", true),
            ("active eq null", false),
            ("floor ne null", true),
        ],
    );
}

#[test]
fn not_negates_and_precedence_is_not_and_or() {
    assert_cases(
        &bjensen(),
        &[
            (r#"not (userName eq "x")"#, true),
            ("not (title pr)", false),
            ("not (not (title pr))", true),
            // `and` binds tighter than `or` (RFC 7644 section 3.4.2.2): read as
            // `title pr or (userType eq "Intern" and active eq false)`.
            (
                r#"title pr or userType eq "Intern" and active eq false"#,
                true,
            ),
            (
                r#"userType eq "Intern" and title pr or active eq true"#,
                true,
            ),
            (
                r#"(title pr or userType eq "Intern") and active eq false"#,
                false,
            ),
            (r#"not (title pr) or userName sw "b""#, true),
            (r#"not (title pr or userName sw "b")"#, false),
        ],
    );
}

#[test]
fn extension_attributes_resolve_qualified_and_unqualified() {
    let user = bjensen();
    assert_cases(
        &user,
        &[
            (r#"employeeNumber eq "701984""#, true),
            (
                r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#,
                true,
            ),
            (
                r#"URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER:EMPLOYEENUMBER eq "701984""#,
                true,
            ),
            (r#"manager.displayName eq "john smith""#, true),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value pr",
                true,
            ),
            (
                r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "B""#,
                true,
            ),
            (r#"department eq "Tour Operations""#, true),
        ],
    );
    // A qualified name looks only in the schema it names (RFC 7644 section 3.10).
    assert!(matches!(
        error(r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:externalId pr"#),
        FilterError::NotApplicable { .. }
    ));
    // A store that kept the extension key in another case is still read.
    let mut shouted = user.clone();
    let object = shouted.as_object_mut().unwrap();
    let enterprise = object.remove(ENTERPRISE).unwrap();
    object.insert(ENTERPRISE.to_uppercase(), enterprise);
    assert!(eval(r#"employeeNumber eq "701984""#, &shouted));
}

#[test]
fn attribute_names_are_case_insensitive_in_filters_and_resources() {
    let shouted = json!({
        "USERNAME": "bjensen",
        "Name": { "GIVENNAME": "Barbara" },
        "emails": [ { "VALUE": "b@example.com", "Type": "work" } ],
        "META": { "lastmodified": "2011-05-13T04:42:34Z" }
    });
    assert_cases(
        &shouted,
        &[
            (r#"userName eq "bjensen""#, true),
            (r#"USERNAME eq "bjensen""#, true),
            (r#"name.givenName eq "barbara""#, true),
            (r#"emails[type eq "work" and value ew "example.com"]"#, true),
            (r#"meta.LastModified eq "2011-05-13T04:42:34Z""#, true),
        ],
    );
}

#[test]
fn values_of_the_wrong_type_match_nothing() {
    assert_cases(
        &bjensen(),
        &[
            ("userName eq 5", false),
            ("userName ne 5", true),
            ("userName eq true", false),
            (r#"floor eq "3""#, false),
            (r#"active ne "true""#, true),
        ],
    );
    let garbled = json!({
        "userName": 42,
        "active": "true",
        "emails": { "value": ["a@example.com"] },
        "urn:example:params:scim:schemas:extension:workplace:2.0:User": "not an object"
    });
    assert_cases(
        &garbled,
        &[
            (r#"userName eq "42""#, false),
            ("userName pr", true),
            ("active eq true", false),
            (r#"emails.value eq "a@example.com""#, true),
            ("floor eq 3", false),
            ("floor pr", false),
        ],
    );
}

#[test]
fn unknown_attributes_strict_and_lenient() {
    let user = with(
        bjensen(),
        "costume",
        json!({ "value": "Pirate", "size": 42 }),
    );
    let user = with(user, "nickname2", json!("BABS"));
    for text in [
        r#"costume eq "pirate""#,
        "name.nickName pr",
        r#"urn:example:unknown:2.0:User:badge eq "x""#,
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:floor eq 3"#,
        "emails[label pr]",
    ] {
        let parsed = filter(text);
        let strict = check(&parsed, &SCHEMA, UnknownAttributes::Strict);
        assert!(
            matches!(strict, Err(FilterError::NotApplicable { .. })),
            "{text}: {strict:?}"
        );
        assert_eq!(
            check(&parsed, &SCHEMA, UnknownAttributes::Lenient),
            Ok(()),
            "{text}"
        );
    }
    let lenient = |text: &str| {
        CompiledFilter::with_mode(&filter(text), &SCHEMA, UnknownAttributes::Lenient)
            .unwrap_or_else(|e| panic!("{text}: {e}"))
            .matches(&user)
    };
    // Schemaless: strings case-insensitive, objects by their `value`, other JSON as it is.
    assert!(lenient(r#"costume eq "pirate""#));
    assert!(lenient(r#"costume.size eq 42"#));
    assert!(lenient(r#"costume.size gt 41.5"#));
    assert!(!lenient(r#"costume.size co "4""#));
    assert!(lenient(r#"nickname2 eq "babs""#));
    assert!(lenient(r#"nickname2 gt "a""#));
    assert!(!lenient(r#"nickname2 eq 5"#));
    assert!(!lenient(r#"missing eq "x""#));
    assert!(lenient(r#"missing ne "x""#));
    assert!(lenient("missing eq null"));
    assert!(!lenient("name.nickName pr"));
    assert!(lenient(r#"emails[label eq null and type eq "work"]"#));
    assert!(!lenient(r#"urn:example:unknown:2.0:User:badge eq "x""#));
    let extended = with(
        user.clone(),
        "urn:example:unknown:2.0:User",
        json!({ "badge": "X", "level": true }),
    );
    let compiled = |text: &str| {
        CompiledFilter::with_mode(&filter(text), &SCHEMA, UnknownAttributes::Lenient).unwrap()
    };
    assert!(compiled(r#"urn:example:unknown:2.0:User:badge eq "x""#).matches(&extended));
    assert!(compiled("urn:example:unknown:2.0:User:level eq true").matches(&extended));
    // No ordering of booleans, but unknown ones are not an error: they just do not match.
    assert!(!compiled("urn:example:unknown:2.0:User:level gt false").matches(&extended));
    // Lenient mode does not relax the rules on known attributes.
    assert!(
        CompiledFilter::with_mode(
            &filter("active gt true"),
            &SCHEMA,
            UnknownAttributes::Lenient
        )
        .is_err()
    );
}

#[test]
fn matches_value_tests_one_value_of_a_complex_attribute() {
    let emails = SCHEMA
        .resolve(&AttrPath::simple("emails"))
        .unwrap()
        .attribute;
    let work = json!({ "value": "bjensen@example.com", "type": "work", "primary": true });
    let home = json!({ "value": "babs@jensen.org", "type": "home" });
    let cases = [
        (r#"type eq "work""#, true, false),
        (r#"TYPE eq "WORK""#, true, false),
        (r#"value ew "@EXAMPLE.COM""#, true, false),
        (r#"primary eq true and value pr"#, true, false),
        (r#"not (type eq "work")"#, false, true),
        (r#"primary ne true"#, false, true),
        (r#"type eq "home" or value co "jensen""#, true, true),
    ];
    for (text, on_work, on_home) in cases {
        let parsed = filter(text);
        assert_eq!(
            matches_value(&parsed, &work, emails),
            Ok(on_work),
            "{text} on work"
        );
        assert_eq!(
            matches_value(&parsed, &home, emails),
            Ok(on_home),
            "{text} on home"
        );
        let compiled = CompiledValueFilter::new(&parsed, emails).unwrap();
        assert_eq!(compiled.matches(&work), on_work, "{text} compiled");
    }
    let user_name = SCHEMA
        .resolve(&AttrPath::simple("userName"))
        .unwrap()
        .attribute;
    assert!(matches!(
        matches_value(&filter(r#"value eq "x""#), &work, user_name),
        Err(FilterError::NotApplicable { .. })
    ));
    for text in [
        r#"label eq "x""#,
        "primary gt false",
        r#"emails.type eq "work""#,
    ] {
        assert!(
            matches!(
                matches_value(&filter(text), &work, emails),
                Err(FilterError::NotApplicable { .. })
            ),
            "{text}"
        );
    }
    // A PATCH valFilter on a value that is not an object matches nothing.
    assert_eq!(
        matches_value(&filter(r#"type eq "work""#), &json!("work"), emails),
        Ok(false)
    );
}

#[test]
fn group_members_value_filters() {
    // What scim-patch evaluates for `members[value eq "..."]` (RFC 7644 section 3.5.2.3).
    let group = scim_schema::core::group();
    let members = group
        .resolve(&AttrPath::simple("members"))
        .unwrap()
        .attribute;
    let member = json!({
        "value": "2819c223-7f76-453a-919d-413861904646",
        "type": "User",
        "display": "Babs Jensen"
    });
    for (text, expected) in [
        (r#"value eq "2819c223-7f76-453a-919d-413861904646""#, true),
        (r#"value eq "902c246b-6245-4190-8e05-00816be7344a""#, false),
        (r#"type eq "User" and display sw "babs""#, true),
        (r#"type eq "Group""#, false),
    ] {
        assert_eq!(
            matches_value(&filter(text), &member, members),
            Ok(expected),
            "{text}"
        );
    }
    let resource = json!({ "displayName": "Tour Guides", "members": [member] });
    let on_group = |text: &str| matches(&filter(text), &resource, &group).unwrap();
    assert!(on_group(
        r#"members[type eq "User" and value sw "2819c223"]"#
    ));
    assert!(on_group(
        r#"members eq "2819c223-7f76-453a-919d-413861904646""#
    ));
    assert!(!on_group(r#"displayName eq "Employees""#));
}

#[test]
fn a_compiled_filter_is_reusable_across_resources() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<CompiledFilter>();
    assert_send_sync::<CompiledValueFilter>();
    let compiled = CompiledFilter::new(
        &filter(r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#),
        &SCHEMA,
    )
    .unwrap();
    let other = with(bjensen(), "userType", json!("Intern"));
    assert!(compiled.matches(&bjensen()));
    assert!(!compiled.matches(&other));
    assert!(!compiled.matches(&json!({})));
    assert!(!compiled.matches(&json!(null)));
    assert!(!compiled.matches(&json!([bjensen()])));
    let cloned = compiled.clone();
    std::thread::spawn(move || assert!(cloned.matches(&bjensen())))
        .join()
        .unwrap();
}

#[test]
fn long_or_chains_do_not_recurse() {
    // A `.search` body may carry a long filter; chains compile flat, not nested.
    let limits = Limits {
        max_len: 1 << 20,
        ..Limits::DEFAULT
    };
    let chain = |from: usize| {
        let text = (from..4000)
            .map(|i| format!("floor eq {i}"))
            .collect::<Vec<_>>()
            .join(" or ");
        parse_filter_with(&text, &limits).unwrap()
    };
    assert_eq!(matches(&chain(0), &bjensen(), &SCHEMA), Ok(true));
    assert_eq!(matches(&chain(10), &bjensen(), &SCHEMA), Ok(false));
}

/// The messages a client gets with its 400 `invalidFilter`.
#[test]
fn error_messages() {
    let texts = [
        r#"nope eq "x""#,
        "name.nope pr",
        r#"urn:example:unknown:2.0:User:badge eq "x""#,
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:userName pr",
        r#"userName.value eq "x""#,
        "active gt false",
        r#"badgePhoto lt "a""#,
        r#"active co "t""#,
        "floor sw 3",
        r#"name eq "Barbara""#,
        r#"userName[value eq "x"]"#,
        r#"emails[typo eq "work"]"#,
        r#"emails[value.sub eq "x"]"#,
        "emails[primary ge true]",
    ];
    let mut report = String::new();
    for text in texts {
        writeln!(report, "{text}\n  -> {}", error(text)).unwrap();
    }
    insta::assert_snapshot!(report);
}

/// The shared benchmark filters on bjensen and on a user built to match the other branches.
#[test]
fn shared_benchmark_filters() {
    let intern = json!({
        "userName": "Jo",
        "name": { "familyName": "O'Malley" },
        "userType": "Intern",
        "active": true,
        "displayName": "Aoife O'Malley",
        "emails": [ { "value": "jo@example.net", "type": "work" } ],
        "ims": [ { "value": "jo@foo.com", "type": "xmpp" } ],
        "meta": { "created": "2021-06-01T00:00:00Z", "lastModified": "2021-06-02T00:00:00+02:00" }
    });
    let mut table = String::new();
    for text in BENCH_FILTERS {
        let parsed = filter(text);
        let compiled = CompiledFilter::new(&parsed, &SCHEMA).unwrap();
        writeln!(
            table,
            "{:<5} {:<5} {text}",
            compiled.matches(&bjensen()),
            compiled.matches(&intern)
        )
        .unwrap();
    }
    insta::assert_snapshot!(table);
}

/// The 13 filters of the shared benchmark set (`shared/bench/filters.txt`).
const BENCH_FILTERS: [&str; 13] = [
    r#"userName eq "bjensen""#,
    r#"name.familyName co "O'Malley""#,
    r#"userName sw "J""#,
    r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
    r#"title pr"#,
    r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
    r#"title pr and userType eq "Employee""#,
    r#"title pr or userType eq "Intern""#,
    r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
    r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
    r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
    r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
    r#"not (active eq false) and (meta.created ge "2020-01-01T00:00:00Z" or (displayName sw "A" and not (nickName pr)))"#,
];

/// A secret attribute (`returned: never` or `writeOnly`, RFC 7643 section 7) cannot be filtered
/// on, wherever it is: the core `password`, a custom extension's attribute, a sub-attribute, in
/// a value filter, under `not`, in either filter mode. Each would be an oracle for the value.
#[test]
fn secret_attributes_cannot_be_filtered_on() {
    for text in [
        "password eq \"hunter2\"",
        "password pr",
        "urn:ietf:params:scim:schemas:core:2.0:User:password sw \"$argon2id$\"",
        "doorPin eq \"1234\"",
        "urn:example:params:scim:schemas:extension:workplace:2.0:User:doorPin gt \"0\"",
        "lockers.code sw \"9\"",
        "lockers[bank eq \"A\" and code eq \"0000\"]",
        "userName pr and not (password co \"a\")",
    ] {
        let filter = scim_filter::parse_filter(text).unwrap();
        for mode in [UnknownAttributes::Strict, UnknownAttributes::Lenient] {
            let err = scim_filter::eval::check(&filter, &SCHEMA, mode).unwrap_err();
            assert!(
                matches!(err, FilterError::NotApplicable { .. }),
                "{text}: {err:?}"
            );
            assert!(err.to_string().contains("never returned"), "{text}: {err}");
        }
    }
    // The same attributes' neighbours still filter.
    let fine = scim_filter::parse_filter("lockers[bank eq \"A\"] and userName pr").unwrap();
    scim_filter::eval::check(&fine, &SCHEMA, UnknownAttributes::Strict).unwrap();
}
