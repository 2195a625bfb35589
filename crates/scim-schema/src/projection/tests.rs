use super::*;
use crate::core::{self, ENTERPRISE_USER, GROUP, USER};
use crate::registry::SchemaRegistry;
use crate::scim_type::ScimType;
use serde_json::json;

fn stored_user() -> Value {
    json!({
        "schemas": [USER, ENTERPRISE_USER],
        "id": "2819c223",
        "externalId": "701984",
        "userName": "bjensen",
        "name": {"familyName": "Jensen", "givenName": "Barbara"},
        "displayName": "Babs Jensen",
        "active": true,
        "password": "t1meMa$heen",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "groups": [{"value": "g1", "display": "Tour Guides"}],
        ENTERPRISE_USER: {"employeeNumber": "701984", "manager": {"value": "m1", "displayName": "John"}},
        "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z", "location": "https://x/Users/2819c223"}
    })
}

fn attrs(list: &str) -> Value {
    project(
        &stored_user(),
        &core::user(),
        &AttributeSelection::parse_attributes(list).unwrap(),
    )
}

fn excluded(list: &str) -> Value {
    project(
        &stored_user(),
        &core::user(),
        &AttributeSelection::parse_excluded(list).unwrap(),
    )
}

#[test]
fn default_projection_drops_returned_never_only() {
    let out = project(&stored_user(), &core::user(), &AttributeSelection::all());
    let mut expected = stored_user();
    expected.as_object_mut().unwrap().remove("password");
    assert_eq!(out, expected);
}

#[test]
fn attributes_keeps_listed_plus_always_and_schemas() {
    assert_eq!(
        attrs("userName"),
        json!({"schemas": [USER], "id": "2819c223", "userName": "bjensen"})
    );
    assert_eq!(
        attrs("USERNAME, displayName"),
        json!({"schemas": [USER], "id": "2819c223", "userName": "bjensen", "displayName": "Babs Jensen"})
    );
    assert_eq!(
        attrs("password"),
        json!({"schemas": [USER], "id": "2819c223"}),
        "returned never"
    );
}

#[test]
fn sub_attribute_paths_keep_only_those_sub_attributes() {
    assert_eq!(
        attrs("name.familyName"),
        json!({"schemas": [USER], "id": "2819c223", "name": {"familyName": "Jensen"}})
    );
    assert_eq!(
        attrs("emails.value"),
        json!({"schemas": [USER], "id": "2819c223", "emails": [
            {"value": "bjensen@example.com"}, {"value": "babs@jensen.org"}
        ]})
    );
    assert_eq!(
        attrs("emails.primary"),
        json!({"schemas": [USER], "id": "2819c223", "emails": [{"primary": true}]}),
        "elements left empty are dropped"
    );
    assert_eq!(
        attrs("name.middleName"),
        json!({"schemas": [USER], "id": "2819c223"})
    );
    assert_eq!(
        attrs("name")["name"],
        json!({"familyName": "Jensen", "givenName": "Barbara"})
    );
    assert_eq!(
        attrs("meta.created")["meta"],
        json!({"created": "2010-01-23T04:56:22Z"})
    );
}

#[test]
fn excluded_attributes_remove_all_but_always() {
    let out = excluded("emails,meta,id,name.givenName");
    assert_eq!(out["id"], "2819c223", "returned always cannot be excluded");
    assert!(out.get("emails").is_none() && out.get("meta").is_none());
    assert_eq!(out["name"], json!({"familyName": "Jensen"}));
    assert!(out.get("password").is_none());
    assert_eq!(out["schemas"], json!([USER, ENTERPRISE_USER]));
}

#[test]
fn extension_attributes_by_qualified_or_unqualified_name() {
    let qualified = attrs(&format!("{ENTERPRISE_USER}:employeeNumber"));
    assert_eq!(
        qualified,
        json!({"schemas": [USER, ENTERPRISE_USER], "id": "2819c223", ENTERPRISE_USER: {"employeeNumber": "701984"}})
    );
    assert_eq!(attrs("employeeNumber"), qualified);
    assert_eq!(
        attrs(&format!("{ENTERPRISE_USER}:manager.value"))[ENTERPRISE_USER],
        json!({"manager": {"value": "m1"}})
    );
    let out = excluded(&format!("{ENTERPRISE_USER}:manager"));
    assert_eq!(out[ENTERPRISE_USER], json!({"employeeNumber": "701984"}));
}

#[test]
fn whole_schema_urns() {
    let out = attrs(ENTERPRISE_USER);
    assert_eq!(
        out,
        json!({"schemas": [USER, ENTERPRISE_USER], "id": "2819c223", ENTERPRISE_USER: stored_user()[ENTERPRISE_USER]})
    );
    let out = excluded(ENTERPRISE_USER);
    assert!(out.get(ENTERPRISE_USER).is_none());
    assert_eq!(
        out["schemas"],
        json!([USER]),
        "the extension URN goes with its object"
    );
    let out = attrs(USER);
    assert!(out.get("userName").is_some() && out.get("emails").is_some());
    assert!(out.get("externalId").is_none() && out.get(ENTERPRISE_USER).is_none());
    assert!(out.get("password").is_none());
}

#[test]
fn resource_keys_in_any_case_are_matched() {
    let resource = json!({"SCHEMAS": [USER], "ID": "1", "UserName": "b", "Name": {"GivenName": "B", "familyname": "J"}});
    let out = project(
        &resource,
        &core::user(),
        &AttributeSelection::parse_attributes("name.givenName").unwrap(),
    );
    assert_eq!(
        out,
        json!({"SCHEMAS": [USER], "ID": "1", "Name": {"GivenName": "B"}})
    );
}

fn badge_schema() -> SchemaRegistry {
    let mut registry = SchemaRegistry::new();
    registry
        .add_schema_json(
            r#"{
            "id": "urn:example:params:scim:schemas:core:2.0:Badge",
            "attributes": [
                {"name": "serial", "type": "string", "returned": "always"},
                {"name": "pin", "type": "string", "returned": "request"},
                {"name": "label", "type": "string"},
                {"name": "holder", "type": "complex", "subAttributes": [
                    {"name": "value", "type": "string", "returned": "always"},
                    {"name": "display", "type": "string"},
                    {"name": "secret", "type": "string", "returned": "request"},
                    {"name": "hash", "type": "string", "returned": "never"}
                ]}
            ]
        }"#,
        )
        .unwrap();
    registry
        .add_resource_type_json(
            r#"{"id": "Badge", "name": "Badge", "endpoint": "/Badges",
                "schema": "urn:example:params:scim:schemas:core:2.0:Badge"}"#,
        )
        .unwrap();
    registry
}

fn badge() -> Value {
    json!({
        "schemas": ["urn:example:params:scim:schemas:core:2.0:Badge"],
        "id": "b1", "serial": "S1", "pin": "1234", "label": "L",
        "holder": {"value": "u1", "display": "U", "secret": "s", "hash": "h"}
    })
}

#[test]
fn returned_request_and_always_sub_attributes() {
    let registry = badge_schema();
    let schema = registry.resource_schema("Badge").unwrap();
    let run = |sel: AttributeSelection| project(&badge(), schema, &sel);
    let all = run(AttributeSelection::all());
    assert!(all.get("pin").is_none());
    assert_eq!(all["holder"], json!({"value": "u1", "display": "U"}));
    assert_eq!(all["serial"], "S1");

    let out = run(AttributeSelection::parse_attributes("pin").unwrap());
    assert_eq!(out["pin"], "1234");
    assert_eq!(out["serial"], "S1", "always");
    assert_eq!(
        out["holder"],
        json!({"value": "u1"}),
        "always sub-attribute of an unlisted parent"
    );
    assert!(out.get("label").is_none());

    let out = run(AttributeSelection::parse_attributes("holder").unwrap());
    assert_eq!(
        out["holder"],
        json!({"value": "u1", "display": "U"}),
        "parent does not name request subs"
    );
    let out = run(AttributeSelection::parse_attributes("holder.secret,holder.hash").unwrap());
    assert_eq!(out["holder"], json!({"value": "u1", "secret": "s"}));
    let out = run(AttributeSelection::parse_excluded("serial,holder.value,holder").unwrap());
    assert_eq!(out["serial"], "S1");
    assert_eq!(
        out["holder"],
        json!({"value": "u1"}),
        "always sub-attributes survive exclusion"
    );
}

#[test]
fn unknown_kept_attributes_follow_default_rules() {
    let resource = json!({
        "schemas": [USER, "urn:example:x:1.0"], "id": "1", "userName": "b",
        "favouriteColour": "teal", "name": {"givenName": "B", "nameSuffix": "x"},
        "urn:example:x:1.0": {"a": 1},
        ENTERPRISE_USER: {"badge": "7"},
    });
    let user = core::user();
    let run = |sel: AttributeSelection| project(&resource, &user, &sel);
    assert_eq!(run(AttributeSelection::all()), resource);
    let out = run(AttributeSelection::parse_attributes("favouriteColour,name.nameSuffix").unwrap());
    assert_eq!(
        out,
        json!({"schemas": [USER], "id": "1", "favouriteColour": "teal", "name": {"nameSuffix": "x"}})
    );
    let out = run(AttributeSelection::parse_excluded(
        "FAVOURITECOLOUR,urn:example:x:1.0,name.nameSuffix",
    )
    .unwrap());
    assert!(out.get("favouriteColour").is_none() && out.get("urn:example:x:1.0").is_none());
    assert_eq!(out["name"], json!({"givenName": "B"}));
    assert_eq!(
        out["schemas"],
        json!([USER]),
        "the unknown extension URN goes with its object"
    );
    assert_eq!(out[ENTERPRISE_USER], json!({"badge": "7"}));
    let out =
        run(AttributeSelection::parse_attributes(&format!("{ENTERPRISE_USER}:badge")).unwrap());
    assert_eq!(out[ENTERPRISE_USER], json!({"badge": "7"}));
    let out = run(AttributeSelection::parse_attributes("urn:example:x:1.0").unwrap());
    assert_eq!(out["urn:example:x:1.0"], json!({"a": 1}));
}

#[test]
fn includes_answers_what_the_server_must_load() {
    let group = core::group();
    let members = AttrPath::simple("members");
    assert!(AttributeSelection::all().includes(&group, &members));
    assert!(
        !AttributeSelection::parse_excluded("members")
            .unwrap()
            .includes(&group, &members)
    );
    assert!(
        !AttributeSelection::parse_attributes("displayName")
            .unwrap()
            .includes(&group, &members)
    );
    assert!(
        AttributeSelection::parse_attributes("members.value")
            .unwrap()
            .includes(&group, &members)
    );
    let sel = AttributeSelection::parse_attributes("members.value").unwrap();
    assert!(sel.includes(&group, &AttrPath::with_sub("members", "value")));
    assert!(!sel.includes(&group, &AttrPath::with_sub("members", "display")));
    let user = core::user();
    assert!(!AttributeSelection::all().includes(&user, &AttrPath::simple("password")));
    assert!(
        AttributeSelection::parse_excluded("id")
            .unwrap()
            .includes(&user, &AttrPath::simple("ID"))
    );
    assert!(
        !AttributeSelection::parse_excluded(ENTERPRISE_USER)
            .unwrap()
            .includes(
                &user,
                &AttrPath::parse(&format!("{ENTERPRISE_USER}:manager")).unwrap()
            )
    );
    assert!(
        AttributeSelection::parse_attributes("employeeNumber")
            .unwrap()
            .includes(&user, &AttrPath::parse(ENTERPRISE_USER).unwrap())
    );
    assert!(
        !AttributeSelection::parse_attributes("userName")
            .unwrap()
            .includes(&user, &AttrPath::simple("groups"))
    );
}

#[test]
fn parse_errors_name_the_bad_entry() {
    let e = AttributeSelection::parse_attributes("userName, na me").unwrap_err();
    assert_eq!(e.scim_type(), ScimType::InvalidValue);
    assert_eq!(
        e.to_string(),
        "attributes: invalid attribute path \"na me\" at byte 2: a letter, digit, '-', '_', '.', ':' or '$'"
    );
    let e = AttributeSelection::parse_excluded("name.given.x").unwrap_err();
    assert!(
        e.to_string()
            .starts_with("excludedAttributes: invalid attribute path \"name.given.x\""),
        "{e}"
    );
    let e = AttributeSelection::from_params(None, Some("1abc")).unwrap_err();
    assert!(matches!(
        e,
        SchemaError::InvalidSelection {
            parameter: "excludedAttributes",
            ..
        }
    ));
}

#[test]
fn parsing_accepts_urns_and_ignores_empty_entries() {
    let sel =
        AttributeSelection::parse_attributes(" userName ,, urn:example:workplace:2.0 ,").unwrap();
    assert_eq!(
        sel.attributes(),
        [
            Selector::Attribute(AttrPath::simple("userName")),
            Selector::Schema("urn:example:workplace:2.0".into())
        ]
    );
    assert!(AttributeSelection::parse_attributes("").unwrap().is_all());
    assert!(
        AttributeSelection::from_params(Some(" , "), None)
            .unwrap()
            .is_all()
    );
    assert_eq!(sel.attributes()[1].to_string(), "urn:example:workplace:2.0");
}

#[test]
fn both_parameters_select_then_exclude() {
    let sel = AttributeSelection::from_params(Some("name,emails"), Some("name.givenName,emails"))
        .unwrap();
    let out = project(&stored_user(), &core::user(), &sel);
    assert_eq!(
        out,
        json!({"schemas": [USER], "id": "2819c223", "name": {"familyName": "Jensen"}})
    );
}

#[test]
fn check_against_reports_typos() {
    let user = core::user();
    assert!(
        AttributeSelection::parse_attributes("userName,name.givenName,employeeNumber")
            .unwrap()
            .check_against(&user)
            .is_ok()
    );
    assert!(
        AttributeSelection::parse_attributes(ENTERPRISE_USER)
            .unwrap()
            .check_against(&user)
            .is_ok()
    );
    let e = AttributeSelection::parse_excluded("userNmae")
        .unwrap()
        .check_against(&user)
        .unwrap_err();
    assert_eq!(e.scim_type(), ScimType::InvalidValue);
    assert_eq!(
        e.to_string(),
        "excludedAttributes: \"userNmae\" names no attribute of resource type \"User\""
    );
    assert!(
        AttributeSelection::parse_attributes("name.nickName")
            .unwrap()
            .check_against(&user)
            .is_err()
    );
    assert!(
        AttributeSelection::parse_attributes("members")
            .unwrap()
            .check_against(&core::group())
            .is_ok()
    );
}

#[test]
fn a_plan_is_reusable_across_resources() {
    let group = core::group();
    let sel = AttributeSelection::parse_attributes("displayName").unwrap();
    let plan = ProjectionPlan::new(&group, &sel);
    for i in 0..3 {
        let g = json!({"schemas": [GROUP], "id": i.to_string(), "displayName": "g", "members": [{"value": "u"}]});
        assert_eq!(
            plan.project(&g),
            json!({"schemas": [GROUP], "id": i.to_string(), "displayName": "g"})
        );
    }
    assert_eq!(
        plan.project(&json!("not an object")),
        json!("not an object")
    );
}

#[test]
fn projecting_an_owned_resource_gives_what_projecting_a_borrowed_one_gives() {
    let user = core::user();
    let selections = [
        AttributeSelection::all(),
        AttributeSelection::parse_attributes("userName,emails.value").unwrap(),
        AttributeSelection::parse_excluded("emails,name.givenName").unwrap(),
        AttributeSelection::parse_excluded(ENTERPRISE_USER).unwrap(),
        AttributeSelection::parse_excluded(&format!("{ENTERPRISE_USER}:manager.displayName"))
            .unwrap(),
    ];
    for selection in &selections {
        let plan = ProjectionPlan::new(&user, selection);
        let borrowed = plan.project(&stored_user());
        assert_eq!(plan.project_owned(stored_user()), borrowed, "{selection:?}");
        assert!(borrowed.get("password").is_none());
    }
    let dropped = ProjectionPlan::new(&user, &selections[3]).project_owned(stored_user());
    assert_eq!(dropped["schemas"], json!([USER]));
    let plan = ProjectionPlan::new(&user, &AttributeSelection::all());
    assert_eq!(plan.project_owned(json!(3)), json!(3));
}
