//! One test per error: the scimType the RFC prescribes (RFC 7644 section 3.12, Table 9) and a
//! detail that says where (`Operations[i].path`, byte offsets for paths).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failure report"
)]

mod common;

use common::*;
use scim_patch::{PatchError, PatchOptions, PatchRequest};
use scim_schema::ScimType;
use serde_json::{Value, json};

fn parse_err(message: Value, options: &PatchOptions) -> PatchError {
    PatchRequest::from_json(&message, options).expect_err("expected the message to be refused")
}

fn assert_error(err: &PatchError, kind: ScimType, at: &str, words: &str) {
    assert_eq!(err.scim_type(), kind, "{err}");
    assert_eq!(err.location().to_string(), at, "{err}");
    assert!(
        err.to_string().contains(words),
        "{err:?} should mention {words:?}"
    );
    assert_eq!(err.status(), 400);
}

// ---- the message (invalidSyntax, invalidValue, noTarget) ----

#[test]
fn message_must_be_an_object_with_operations() {
    let lenient = PatchOptions::default();
    assert_error(
        &parse_err(json!([]), &lenient),
        ScimType::InvalidSyntax,
        "PatchOp message",
        "JSON object",
    );
    assert_error(
        &parse_err(json!({"schemas": [scim_patch::PATCH_OP_URN]}), &lenient),
        ScimType::InvalidSyntax,
        "Operations",
        "\"Operations\" array",
    );
    assert_error(
        &parse_err(json!({"Operations": {"op": "add"}}), &lenient),
        ScimType::InvalidSyntax,
        "Operations",
        "must be an array",
    );
}

#[test]
fn empty_operations_are_refused_in_strict_mode_only() {
    assert_error(
        &parse_err(patch(json!([])), &PatchOptions::strict()),
        ScimType::InvalidSyntax,
        "Operations",
        "one or more",
    );
    assert!(
        PatchRequest::from_json(&patch(json!([])), &PatchOptions::default())
            .unwrap()
            .operations
            .is_empty()
    );
}

#[test]
fn too_many_operations() {
    let options = PatchOptions {
        max_operations: 2,
        ..PatchOptions::default()
    };
    let ops = json!([{"op": "remove", "path": "title"}, {"op": "remove", "path": "title"}, {"op": "remove", "path": "title"}]);
    assert_error(
        &parse_err(patch(ops), &options),
        ScimType::InvalidSyntax,
        "Operations",
        "at most 2",
    );
}

#[test]
fn schemas_must_name_patch_op() {
    let ops = json!([{"op": "remove", "path": "title"}]);
    let strict = PatchOptions::strict();
    assert_error(
        &parse_err(json!({"Operations": ops}), &strict),
        ScimType::InvalidSyntax,
        "schemas",
        "must have \"schemas\"",
    );
    for options in [PatchOptions::strict(), PatchOptions::default()] {
        let wrong = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOps"], "Operations": ops});
        assert_error(
            &parse_err(wrong, &options),
            ScimType::InvalidSyntax,
            "schemas",
            "must be an array holding",
        );
    }
}

#[test]
fn members_differing_only_in_case_are_ambiguous() {
    let message =
        json!({"schemas": [scim_patch::PATCH_OP_URN], "Operations": [], "operations": []});
    assert_error(
        &parse_err(message, &PatchOptions::default()),
        ScimType::InvalidSyntax,
        "PatchOp message",
        "more than once",
    );
    let op = json!([{"op": "add", "Op": "remove", "path": "title", "value": "x"}]);
    assert_error(
        &parse_err(patch(op), &PatchOptions::default()),
        ScimType::InvalidSyntax,
        "Operations[0]",
        "more than once",
    );
}

#[test]
fn operations_need_a_known_op() {
    let lenient = PatchOptions::default();
    assert_error(
        &parse_err(patch(json!(["add"])), &lenient),
        ScimType::InvalidSyntax,
        "Operations[0]",
        "JSON object",
    );
    assert_error(
        &parse_err(patch(json!([{"path": "title"}])), &lenient),
        ScimType::InvalidSyntax,
        "Operations[0]",
        "\"op\" member",
    );
    assert_error(
        &parse_err(patch(json!([{"op": 1, "path": "title"}])), &lenient),
        ScimType::InvalidSyntax,
        "Operations[0].op",
        "must be a string",
    );
    let ops = json!([{"op": "remove", "path": "title"}, {"op": "move", "from": "title", "path": "nickName"}]);
    assert_error(
        &parse_err(patch(ops), &lenient),
        ScimType::InvalidSyntax,
        "Operations[1].op",
        "unknown operation \"move\"",
    );
    let capital = json!([{"op": "Replace", "path": "title", "value": "x"}]);
    assert_error(
        &parse_err(patch(capital), &PatchOptions::strict()),
        ScimType::InvalidSyntax,
        "Operations[0].op",
        "lower case",
    );
}

#[test]
fn malformed_paths_are_invalid_path_with_an_offset() {
    let ops = json!([{"op": "remove", "path": "title"}, {"op": "remove", "path": "emails[type eq \"work\""}]);
    let err = parse_err(patch(ops), &PatchOptions::default());
    assert_error(
        &err,
        ScimType::InvalidPath,
        "Operations[1].path",
        "emails[type eq",
    );
    match err {
        PatchError::InvalidPath { offset, path, .. } => {
            assert_eq!(path, "emails[type eq \"work\"");
            assert_eq!(
                offset,
                path.len(),
                "the closing bracket is missing at the end"
            );
        }
        other => panic!("{other:?}"),
    }
    let err = parse_err(
        patch(json!([{"op": "add", "path": 7, "value": 1}])),
        &PatchOptions::default(),
    );
    assert_error(
        &err,
        ScimType::InvalidSyntax,
        "Operations[0].path",
        "must be a string",
    );
}

#[test]
fn add_and_replace_need_a_value() {
    let lenient = PatchOptions::default();
    assert_error(
        &parse_err(patch(json!([{"op": "add", "path": "title"}])), &lenient),
        ScimType::InvalidValue,
        "Operations[0].value",
        "must have a \"value\"",
    );
    assert_error(
        &parse_err(
            patch(json!([{"op": "add", "path": "title", "value": null}])),
            &lenient,
        ),
        ScimType::InvalidValue,
        "Operations[0].value",
        "not null",
    );
    assert_error(
        &parse_err(patch(json!([{"op": "replace", "value": "x"}])), &lenient),
        ScimType::InvalidValue,
        "Operations[0].value",
        "object of attributes",
    );
}

#[test]
fn remove_without_path_is_no_target() {
    // RFC 7644 section 3.5.2.2: "If "path" is unspecified, the operation fails with HTTP status
    // code 400 and a "scimType" error code of "noTarget"."
    for options in [PatchOptions::strict(), PatchOptions::default()] {
        assert_error(
            &parse_err(patch(json!([{"op": "remove"}])), &options),
            ScimType::NoTarget,
            "Operations[0]",
            "must have a \"path\"",
        );
    }
}

#[test]
fn strict_remove_with_a_value_is_refused_not_read_as_remove_all() {
    let ops = json!([{"op": "remove", "path": "members", "value": [{"value": BJENSEN}]}]);
    assert_error(
        &parse_err(patch(ops), &PatchOptions::strict()),
        ScimType::InvalidSyntax,
        "Operations[0].value",
        "takes no \"value\"",
    );
}

// ---- paths that do not fit the resource type (invalidPath) ----

#[test]
fn unknown_attributes_and_sub_attributes() {
    let user = enterprise_user();
    let e = err(
        &user,
        &user_schema(),
        json!([{"op": "replace", "path": "shoeSize", "value": 42}]),
        &PatchOptions::default(),
    );
    assert_error(
        &e,
        ScimType::InvalidPath,
        "Operations[0].path",
        "no attribute \"shoeSize\"",
    );
    let err = err_of(
        &user,
        json!([{"op": "replace", "path": "name.nickname", "value": "x"}]),
    );
    assert_error(
        &err,
        ScimType::InvalidPath,
        "Operations[0].path",
        "no sub-attribute \"nickname\"",
    );
    assert!(
        matches!(err, PatchError::InvalidPath { offset: 5, .. }),
        "{err:?}"
    );
    let err = err_of(
        &user,
        json!([{"op": "replace", "path": "urn:example:nope:User:costCenter", "value": "x"}]),
    );
    assert_error(
        &err,
        ScimType::InvalidPath,
        "Operations[0].path",
        "no schema",
    );
    let err = err_of(
        &user,
        json!([{"op": "replace", "path": "emails[type eq \"work\"].nope", "value": "x"}]),
    );
    assert_error(
        &err,
        ScimType::InvalidPath,
        "Operations[0].path",
        "no sub-attribute \"nope\"",
    );
}

fn err_of(resource: &Value, ops: Value) -> PatchError {
    err(resource, &user_schema(), ops, &PatchOptions::default())
}

#[test]
fn filters_that_do_not_fit_the_attribute() {
    let user = enterprise_user();
    let e = err_of(
        &user,
        json!([{"op": "remove", "path": "userName[value eq \"x\"]"}]),
    );
    assert_error(&e, ScimType::InvalidPath, "Operations[0].path", "complex");
    let e = err_of(
        &user,
        json!([{"op": "remove", "path": "emails[kind eq \"work\"]"}]),
    );
    assert_error(&e, ScimType::InvalidPath, "Operations[0].path", "kind");
    let strict = PatchOptions::strict();
    let e = err(
        &user,
        &user_schema(),
        json!([{"op": "remove", "path": format!("{ENTERPRISE}:manager[value eq \"x\"]")}]),
        &strict,
    );
    assert_error(
        &e,
        ScimType::InvalidPath,
        "Operations[0].path",
        "single-valued",
    );
}

#[test]
fn multi_valued_sub_attribute_without_filter_needs_one_for_add() {
    let e = err_of(
        &enterprise_user(),
        json!([{"op": "add", "path": "emails.value", "value": "x@example.com"}]),
    );
    assert_error(
        &e,
        ScimType::InvalidPath,
        "Operations[0].path",
        "with a filter",
    );
}

#[test]
fn strict_pathless_keys_must_be_attribute_names() {
    let strict = PatchOptions::strict();
    let e = err(
        &enterprise_user(),
        &user_schema(),
        json!([{"op": "replace", "value": {"name.givenName": "X"}}]),
        &strict,
    );
    assert_error(
        &e,
        ScimType::InvalidPath,
        "Operations[0].value.name.givenName",
        "attribute name",
    );
    let e = err(
        &enterprise_user(),
        &user_schema(),
        json!([{"op": "replace", "value": {}}]),
        &strict,
    );
    assert_error(
        &e,
        ScimType::InvalidValue,
        "Operations[0].value",
        "one or more attributes",
    );
    let e = err(
        &enterprise_user(),
        &user_schema(),
        json!([{"op": "replace", "path": ENTERPRISE, "value": {"costCenter": "1"}}]),
        &strict,
    );
    assert_error(
        &e,
        ScimType::InvalidPath,
        "Operations[0].path",
        "extension schema",
    );
}

// ---- filters that match nothing (noTarget) ----

#[test]
fn strict_filters_that_match_nothing_are_no_target() {
    let strict = PatchOptions::strict();
    let user = enterprise_user();
    for op in ["add", "replace"] {
        let e = err(
            &user,
            &user_schema(),
            json!([{"op": op, "path": "emails[type eq \"other\"].value", "value": "x@example.com"}]),
            &strict,
        );
        assert_error(
            &e,
            ScimType::NoTarget,
            "Operations[0].path",
            "no value of emails matches",
        );
    }
    let e = err(
        &user,
        &user_schema(),
        json!([{"op": "remove", "path": "emails[type eq \"other\"]"}]),
        &strict,
    );
    assert_error(
        &e,
        ScimType::NoTarget,
        "Operations[0].path",
        "no value of emails matches",
    );
}

#[test]
fn lenient_creation_needs_an_equality_filter() {
    let e = err_of(
        &enterprise_user(),
        json!([{"op": "replace", "path": "emails[type co \"oth\"].value", "value": "x@example.com"}]),
    );
    assert_error(
        &e,
        ScimType::NoTarget,
        "Operations[0].path",
        "no value of emails matches",
    );
    let e = err_of(
        &enterprise_user(),
        json!([{"op": "add", "path": format!("{ENTERPRISE}:manager[value eq \"nobody\"].$ref"), "value": "x"}]),
    );
    assert_error(
        &e,
        ScimType::NoTarget,
        "Operations[0].path",
        "no value of manager matches",
    );
}

// ---- mutability ----

#[test]
fn read_only_attributes_cannot_change() {
    let user = enterprise_user();
    let e = err_of(
        &user,
        json!([{"op": "replace", "path": "id", "value": "another"}]),
    );
    assert_error(
        &e,
        ScimType::Mutability,
        "Operations[0].path",
        "id is readOnly",
    );
    let e = err_of(
        &user,
        json!([{"op": "replace", "path": "meta.version", "value": "W/\"1\""}]),
    );
    assert_error(&e, ScimType::Mutability, "Operations[0].path", "readOnly");
    let e = err_of(&user, json!([{"op": "remove", "path": "meta"}]));
    assert_error(
        &e,
        ScimType::Mutability,
        "Operations[0].path",
        "meta is readOnly",
    );
    let e = err_of(
        &user,
        json!([{"op": "add", "path": "groups", "value": [{"value": "g1"}]}]),
    );
    assert_error(
        &e,
        ScimType::Mutability,
        "Operations[0].path",
        "groups is readOnly",
    );
    let e = err_of(
        &user,
        json!([{"op": "replace", "path": format!("{ENTERPRISE}:manager.displayName"), "value": "Boss"}]),
    );
    assert_error(
        &e,
        ScimType::Mutability,
        "Operations[0].path",
        "manager.displayName is readOnly",
    );
    // Writing the value it already has is not a modification.
    assert!(
        !ok(
            &user,
            &user_schema(),
            json!([{"op": "replace", "path": "id", "value": BJENSEN}])
        )
        .changed
    );
}

#[test]
fn strict_pathless_read_only_must_be_unchanged() {
    let strict = PatchOptions::strict();
    let e = err(
        &tour_guides(),
        &group_schema(),
        json!([{"op": "replace", "value": {"id": "other", "displayName": "X"}}]),
        &strict,
    );
    assert_error(
        &e,
        ScimType::Mutability,
        "Operations[0].value.id",
        "readOnly",
    );
    let e = err(
        &tour_guides(),
        &group_schema(),
        json!([{"op": "replace", "value": {"schemas": ["urn:x"], "displayName": "X"}}]),
        &strict,
    );
    assert_error(
        &e,
        ScimType::Mutability,
        "Operations[0].value.schemas",
        "maintained by the server",
    );
}

#[test]
fn required_attributes_cannot_be_removed() {
    // RFC 7644 section 3.5.2.2: "If an attribute is removed or becomes unassigned and is defined
    // as a required attribute or a read-only attribute, the server SHALL return ... "mutability"".
    let user = enterprise_user();
    let e = err_of(&user, json!([{"op": "remove", "path": "userName"}]));
    assert_error(
        &e,
        ScimType::Mutability,
        "Operations[0].path",
        "userName is required",
    );
    let e = err_of(
        &user,
        json!([{"op": "replace", "path": "userName", "value": null}]),
    );
    assert_error(
        &e,
        ScimType::Mutability,
        "Operations[0].path",
        "userName is required",
    );
    let e = err(
        &tour_guides(),
        &group_schema(),
        json!([{"op": "replace", "value": {"displayName": null}}]),
        &PatchOptions::default(),
    );
    assert_error(
        &e,
        ScimType::Mutability,
        "Operations[0].value.displayName",
        "displayName is required",
    );
}

#[test]
fn immutable_values_may_be_added_but_not_changed() {
    let group = tour_guides();
    let schema = group_schema();
    let path = format!("members[value eq \"{BJENSEN}\"]");
    let e = err(
        &group,
        &schema,
        json!([{"op": "replace", "path": format!("{path}.value"), "value": JSMITH}]),
        &PatchOptions::default(),
    );
    assert_error(
        &e,
        ScimType::Mutability,
        "Operations[0].path",
        "members.value is immutable",
    );
    let e = err(
        &group,
        &schema,
        json!([{"op": "replace", "path": format!("{path}.display"), "value": "Barbara"}]),
        &PatchOptions::default(),
    );
    assert_error(
        &e,
        ScimType::Mutability,
        "Operations[0].path",
        "members.display is immutable",
    );
    // Unassigned: may be added.
    let mut bare = group.clone();
    bare["members"][0]
        .as_object_mut()
        .unwrap()
        .remove("display");
    let outcome = ok(
        &bare,
        &schema,
        json!([{"op": "add", "path": format!("{path}.display"), "value": "Barbara"}]),
    );
    assert_eq!(outcome.resource["members"][0]["display"], "Barbara");
}

// ---- values (invalidValue) ----

#[test]
fn values_of_the_wrong_type() {
    let user = enterprise_user();
    let e = err_of(
        &user,
        json!([{"op": "replace", "path": "active", "value": "maybe"}]),
    );
    assert_error(&e, ScimType::InvalidValue, "Operations[0].value", "active");
    let e = err(
        &user,
        &user_schema(),
        json!([{"op": "add", "path": "emails", "value": {"value": "x@example.com"}}]),
        &PatchOptions::strict(),
    );
    assert_error(
        &e,
        ScimType::InvalidValue,
        "Operations[0].value",
        "must be an array",
    );
    let e = err(
        &user,
        &user_schema(),
        json!([{"op": "Replace", "path": "active", "value": "False"}]),
        &PatchOptions {
            dialects: scim_patch::Dialects::Strict,
            ..PatchOptions::default()
        },
    );
    assert_eq!(
        e.scim_type(),
        ScimType::InvalidSyntax,
        "strict: the op's case is refused first"
    );
    let e = err(
        &user,
        &user_schema(),
        json!([{"op": "replace", "path": "active", "value": "False"}]),
        &PatchOptions::strict(),
    );
    assert_error(&e, ScimType::InvalidValue, "Operations[0].value", "active");
    let e = err_of(
        &user,
        json!([{"op": "replace", "path": "name", "value": "Barbara"}]),
    );
    assert_error(&e, ScimType::InvalidValue, "Operations[0].value", "name");
}

#[test]
fn two_primary_values_are_refused() {
    let e = err_of(
        &enterprise_user(),
        json!([{"op": "replace", "path": "emails[type pr].primary", "value": true}]),
    );
    assert_error(
        &e,
        ScimType::InvalidValue,
        "Operations[0].value",
        "more than one value",
    );
    let e = err_of(
        &enterprise_user(),
        json!([{"op": "add", "path": "emails", "value": [
            {"value": "a@example.com", "primary": true}, {"value": "b@example.com", "primary": true}
        ]}]),
    );
    assert_eq!(e.scim_type(), ScimType::InvalidValue, "{e}");
}

#[test]
fn a_failing_operation_names_its_index_and_changes_nothing() {
    let user = enterprise_user();
    let snapshot = user.clone();
    let e = err_of(
        &user,
        json!([
            {"op": "replace", "path": "title", "value": "Chief Guide"},
            {"op": "remove", "path": "emails"},
            {"op": "replace", "path": "id", "value": "stolen"}
        ]),
    );
    assert_eq!(e.operation(), Some(2));
    assert_eq!(user, snapshot);
}
