//! Every PATCH example of RFC 7644 section 3.5.2 (3.5.2.1 add, 3.5.2.2 remove, 3.5.2.3 replace),
//! applied to the RFC 7643 section 8 User and Group documents. Each test asserts the point of the
//! example and snapshots the whole outcome for review.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failure report"
)]

mod common;

use common::*;
use insta::assert_json_snapshot;
use scim_patch::{PatchOptions, PatchRequest};
use serde_json::{Value, json};

/// Runs one RFC example in both strict and lenient mode (the RFC's own examples must not depend
/// on any dialect) and returns a reviewable record.
fn example(
    resource: &Value,
    schema: &scim_schema::ResourceSchema,
    message: Value,
) -> (Value, Value) {
    let strict = run(resource, schema, &message, &PatchOptions::strict())
        .unwrap_or_else(|e| panic!("strict: {e}"));
    let lenient = run(resource, schema, &message, &PatchOptions::default())
        .unwrap_or_else(|e| panic!("lenient: {e}"));
    assert_eq!(
        strict, lenient,
        "an RFC example must not depend on dialects"
    );
    let record = json!({"request": message, "changed": strict.changed, "result": strict.resource});
    (strict.resource, record)
}

fn member(id: &str, display: &str) -> Value {
    json!({"display": display, "$ref": format!("https://example.com/v2/Users/{id}"), "value": id})
}

fn member_ids(group: &Value) -> Vec<&str> {
    group["members"]
        .as_array()
        .map(|m| m.iter().map(|m| m["value"].as_str().unwrap()).collect())
        .unwrap_or_default()
}

#[test]
fn section_3_5_2_paths_parse() {
    // "Valid examples of "path" are as follows" (RFC 7644 section 3.5.2).
    let paths = [
        "members",
        "name.familyName",
        "addresses[type eq \"work\"]",
        "members[value eq \"2819c223-7f76-453a-919d-413861904646\"]",
        "members[value eq \"2819c223-7f76-453a-919d-413861904646\"].displayName",
    ];
    let parsed: Vec<Value> = paths
        .iter()
        .map(|p| {
            let message = patch(json!([{"op": "remove", "path": p}]));
            let request = PatchRequest::from_json(&message, &PatchOptions::strict()).unwrap();
            let path = request.operations[0].path.as_ref().unwrap();
            json!({
                "path": p,
                "attr": path.attr.to_string(),
                "filter": path.filter.as_ref().map(|f| f.to_string()),
                "sub_attr": path.sub_attr,
            })
        })
        .collect();
    assert_json_snapshot!("3.5.2-paths", parsed);
}

#[test]
fn section_3_5_2_1_add_member_to_group() {
    let mut group = tour_guides();
    group["members"].as_array_mut().unwrap().remove(0);
    let message =
        patch(json!([{"op": "add", "path": "members", "value": [member(BJENSEN, "Babs Jensen")]}]));
    let (result, record) = example(&group, &group_schema(), message.clone());
    assert_eq!(
        member_ids(&result),
        ["902c246b-6245-4190-8e05-00816be7344a", BJENSEN]
    );
    assert_json_snapshot!("3.5.2.1-add-member", record);

    // "If the user was already a member of this group, no changes should be made to the
    // resource, and a success response should be returned."
    let again = ok(&result, &group_schema(), message["Operations"].clone());
    assert!(!again.changed);
    assert_eq!(again.resource, result);
}

#[test]
fn section_3_5_2_1_add_without_path() {
    let mut user = enterprise_user();
    user.as_object_mut().unwrap().remove("nickName");
    let message = patch(json!([{
        "op": "add",
        "value": {"emails": [{"value": "babs@jensen.org", "type": "home"}], "nickname": "Babs"}
    }]));
    let (result, record) = example(&user, &user_schema(), message);
    // The home email is already there: not added twice. "nickname" is written "nickName".
    assert_eq!(result["emails"], enterprise_user()["emails"]);
    assert_eq!(result["nickName"], "Babs");
    assert!(result.get("nickname").is_none());
    assert_json_snapshot!("3.5.2.1-add-without-path", record);

    let mut fresh = user.clone();
    fresh["emails"] = json!([{"value": "bjensen@example.com", "type": "work", "primary": true}]);
    let message = patch(
        json!([{"op": "add", "value": {"emails": [{"value": "babs@jensen.org", "type": "home"}], "nickname": "Babs"}}]),
    );
    let (result, record) = example(&fresh, &user_schema(), message);
    assert_eq!(result["emails"].as_array().unwrap().len(), 2);
    assert_json_snapshot!("3.5.2.1-add-without-path-appends", record);
}

#[test]
fn section_3_5_2_2_remove_all_members() {
    let message = patch(json!([{"op": "remove", "path": "members"}]));
    let (result, record) = example(&tour_guides(), &group_schema(), message);
    assert!(
        result.get("members").is_none(),
        "the attribute SHALL be considered unassigned"
    );
    assert_json_snapshot!("3.5.2.2-remove-all-members", record);
}

#[test]
fn section_3_5_2_2_remove_single_member() {
    let message =
        patch(json!([{"op": "remove", "path": format!("members[value eq \"{BJENSEN}\"]")}]));
    let (result, record) = example(&tour_guides(), &group_schema(), message);
    assert_eq!(
        member_ids(&result),
        ["902c246b-6245-4190-8e05-00816be7344a"]
    );
    assert_json_snapshot!("3.5.2.2-remove-single-member", record);
}

#[test]
fn section_3_5_2_2_remove_emails_by_complex_filter() {
    let mut user = enterprise_user();
    user["emails"] = json!([
        {"value": "bjensen@example.com", "type": "work", "primary": true},
        {"value": "babs@jensen.org", "type": "home"},
        {"value": "barbara@example.org", "type": "work"}
    ]);
    let message = patch(
        json!([{"op": "remove", "path": "emails[type eq \"work\" and value ew \"example.com\"]"}]),
    );
    let (result, record) = example(&user, &user_schema(), message);
    let left: Vec<&str> = result["emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["value"].as_str().unwrap())
        .collect();
    assert_eq!(left, ["babs@jensen.org", "barbara@example.org"]);
    assert_json_snapshot!("3.5.2.2-remove-emails-filter", record);
}

#[test]
fn section_3_5_2_2_replace_members_by_remove_and_add() {
    let message = patch(json!([
        {"op": "remove", "path": "members"},
        {"op": "add", "path": "members", "value": [member(BJENSEN, "Babs Jensen"), member(JSMITH, "James Smith")]}
    ]));
    let (result, record) = example(&tour_guides(), &group_schema(), message);
    assert_eq!(member_ids(&result), [BJENSEN, JSMITH]);
    assert_json_snapshot!("3.5.2.2-remove-then-add-members", record);
}

#[test]
fn section_3_5_2_3_replace_members() {
    let message = patch(json!([{
        "op": "replace",
        "path": "members",
        "value": [member(BJENSEN, "Babs Jensen"), member(JSMITH, "James Smith")]
    }]));
    let (result, record) = example(&tour_guides(), &group_schema(), message);
    assert_eq!(member_ids(&result), [BJENSEN, JSMITH]);
    // Members replaced wholesale carry what the request says (no "type" any more).
    assert!(result["members"][0].get("type").is_none());
    assert_json_snapshot!("3.5.2.3-replace-members", record);
}

#[test]
fn section_3_5_2_3_replace_work_address() {
    let message = patch(json!([{
        "op": "replace",
        "path": "addresses[type eq \"work\"]",
        "value": {
            "type": "work",
            "streetAddress": "911 Universal City Plaza",
            "locality": "Hollywood",
            "region": "CA",
            "postalCode": "91608",
            "country": "US",
            "formatted": "911 Universal City Plaza\nHollywood, CA 91608 US",
            "primary": true
        }
    }]));
    let (result, record) = example(&enterprise_user(), &user_schema(), message);
    assert_eq!(
        result["addresses"][0]["streetAddress"],
        "911 Universal City Plaza"
    );
    assert_eq!(result["addresses"][0]["country"], "US");
    assert_eq!(
        result["addresses"][1],
        enterprise_user()["addresses"][1],
        "the home address is untouched"
    );
    assert_json_snapshot!("3.5.2.3-replace-work-address", record);
}

#[test]
fn section_3_5_2_3_replace_work_street_address() {
    let message = patch(json!([{
        "op": "replace",
        "path": "addresses[type eq \"work\"].streetAddress",
        "value": "1010 Broadway Ave"
    }]));
    let (result, record) = example(&enterprise_user(), &user_schema(), message);
    let mut expected = enterprise_user()["addresses"][0].clone();
    expected["streetAddress"] = json!("1010 Broadway Ave");
    assert_eq!(
        result["addresses"][0], expected,
        "only the sub-attribute changes"
    );
    assert_json_snapshot!("3.5.2.3-replace-street-address", record);
}

#[test]
fn section_3_5_2_3_replace_without_path() {
    let message = patch(json!([{
        "op": "replace",
        "value": {
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "nickname": "Babs"
        }
    }]));
    let mut user = enterprise_user();
    user["emails"] = json!([{"value": "old@example.com", "type": "work", "primary": true}]);
    user["nickName"] = json!("Barbie");
    let (result, record) = example(&user, &user_schema(), message);
    assert_eq!(result["emails"], enterprise_user()["emails"]);
    assert_eq!(result["nickName"], "Babs");
    assert_json_snapshot!("3.5.2.3-replace-without-path", record);
}

#[test]
fn section_3_5_2_the_intro_example_adds_a_member() {
    // The non-normative structure example of section 3.5.2 (an add of members).
    let mut group = tour_guides();
    group["members"].as_array_mut().unwrap().clear();
    let message =
        patch(json!([{"op": "add", "path": "members", "value": [member(BJENSEN, "Babs Jensen")]}]));
    let (result, _) = example(&group, &group_schema(), message);
    assert_eq!(member_ids(&result), [BJENSEN]);
    assert_eq!(
        result["meta"],
        tour_guides()["meta"],
        "meta belongs to the store"
    );
}
