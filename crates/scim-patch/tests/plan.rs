//! The group membership planner: each translation, the fallback, strict preconditions, and the
//! property that matters: planning then applying the delta gives exactly the members (and the
//! other attributes) that `apply` gives on the whole document.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failure report"
)]

mod common;

use common::*;
use proptest::prelude::*;
use scim_patch::{
    GroupPatchPlan, MemberRef, MembershipDelta, PatchError, PatchOptions, PatchRequest, apply,
    plan_group_patch,
};
use scim_schema::ScimType;
use serde_json::{Value, json};

fn plan(operations: Value, options: &PatchOptions) -> Result<GroupPatchPlan, PatchError> {
    let request = PatchRequest::from_json(&patch(operations), options)?;
    plan_group_patch(&request, &group_schema(), options)
}

fn delta(operations: Value) -> (MembershipDelta, PatchRequest) {
    match plan(operations, &PatchOptions::default()).unwrap() {
        GroupPatchPlan::Delta { members, rest } => (members, rest),
        other => panic!("expected a delta, got {other:?}"),
    }
}

fn ids(refs: &[MemberRef]) -> Vec<&str> {
    refs.iter().map(|m| m.value.as_str()).collect()
}

#[test]
fn add_with_an_array_is_an_add() {
    let (members, rest) = delta(json!([
        {"op": "Add", "path": "members", "value": [{"$ref": null, "value": "a"}, {"value": "b", "display": "Bee"}, {"value": "A"}]}
    ]));
    assert_eq!(
        ids(&members.add),
        ["a", "b"],
        "a and A are the same member (members.value is caseExact false)"
    );
    assert_eq!(members.add[1].display.as_deref(), Some("Bee"));
    assert!(
        members.remove.is_empty()
            && members.replace_all.is_none()
            && members.preconditions.is_empty()
    );
    assert!(!members.ids_case_exact);
    assert!(rest.operations.is_empty());
}

#[test]
fn removals_by_filter_and_by_value_list() {
    let (members, _) = delta(json!([
        {"op": "remove", "path": "members[value eq \"a\"]"},
        {"op": "remove", "path": "members[value eq \"b\" or value eq \"c\"]"},
        {"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "d"}, "e"]}
    ]));
    assert_eq!(members.remove, ["a", "b", "c", "d", "e"]);
    assert!(members.add.is_empty() && members.replace_all.is_none());
}

#[test]
fn replace_remove_all_and_empty_replace_reset_the_list() {
    let (members, _) = delta(
        json!([{"op": "replace", "path": "members", "value": [{"value": "x"}, {"value": "y"}]}]),
    );
    assert_eq!(ids(members.replace_all.as_deref().unwrap()), ["x", "y"]);
    for ops in [
        json!([{"op": "remove", "path": "members"}]),
        json!([{"op": "replace", "path": "members", "value": []}]),
        json!([{"op": "replace", "path": "Members", "value": null}]),
        json!([{"op": "replace", "value": {"id": GROUP_ID, "displayName": "X", "members": []}}]),
        json!([{"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:Group:members", "value": []}]),
    ] {
        let (members, _) = delta(ops.clone());
        assert_eq!(members.replace_all, Some(vec![]), "{ops}");
    }
}

#[test]
fn operations_fold_in_order() {
    let (members, _) = delta(json!([
        {"op": "add", "path": "members", "value": [{"value": "a"}, {"value": "b"}]},
        {"op": "remove", "path": "members[value eq \"a\"]"},
        {"op": "remove", "path": "members[value eq \"c\"]"},
        {"op": "add", "path": "members", "value": [{"value": "c", "display": "new c"}]}
    ]));
    assert_eq!(ids(&members.add), ["b", "c"]);
    assert_eq!(
        members.remove,
        ["a", "c"],
        "c is removed, then inserted again with its new display"
    );
    let (members, _) = delta(json!([
        {"op": "replace", "path": "members", "value": [{"value": "a"}]},
        {"op": "add", "path": "members", "value": [{"value": "b"}, {"value": "a"}]},
        {"op": "remove", "path": "members[value eq \"a\"]"}
    ]));
    assert_eq!(ids(members.replace_all.as_deref().unwrap()), ["b"]);
    assert!(members.add.is_empty() && members.remove.is_empty());
}

#[test]
fn other_attributes_go_to_rest_with_their_indices() {
    let (members, rest) = delta(json!([
        {"op": "replace", "path": "displayName", "value": "Tour Leads"},
        {"op": "replace", "value": {"displayName": "Tour Leads", "members": [{"value": "a"}], "externalId": "x"}},
        {"op": "add", "path": "members", "value": [{"value": "b"}]}
    ]));
    assert_eq!(ids(members.replace_all.as_deref().unwrap()), ["a", "b"]);
    assert_eq!(rest.operations.len(), 2);
    assert_eq!(rest.operations[0].index, 0);
    assert_eq!(rest.operations[1].index, 1);
    assert_eq!(
        rest.operations[1].value,
        Some(json!({"displayName": "Tour Leads", "externalId": "x"}))
    );
}

#[test]
fn what_needs_the_members_says_so() {
    for (ops, index) in [
        (
            json!([{"op": "remove", "path": "members[display eq \"Babs\"]"}]),
            0,
        ),
        (
            json!([{"op": "remove", "path": "members[value eq \"a\" and type eq \"User\"]"}]),
            0,
        ),
        (
            json!([{"op": "add", "path": "title"}, {"op": "replace", "path": "members[value eq \"a\"].display", "value": "x"}]),
            1,
        ),
        (
            json!([{"op": "replace", "path": "members[value eq \"a\"]", "value": {"value": "a"}}]),
            0,
        ),
        (
            json!([{"op": "add", "path": "members", "value": [{"display": "no id"}]}]),
            0,
        ),
        (
            json!([{"op": "remove", "path": "members", "value": [{"display": "Babs"}]}]),
            0,
        ),
    ] {
        let ops = if index == 1 {
            json!([{"op": "replace", "path": "displayName", "value": "x"}, ops[1]])
        } else {
            ops
        };
        match plan(ops.clone(), &PatchOptions::default()).unwrap() {
            GroupPatchPlan::NeedsMembers { operation, reason } => {
                assert_eq!(operation, index, "{ops}");
                assert!(!reason.is_empty());
            }
            other => panic!("{ops}: {other:?}"),
        }
    }
}

#[test]
fn invalid_members_are_the_same_errors_as_apply() {
    for ops in [
        json!([{"op": "add", "path": "members", "value": [{"value": 5}]}]),
        json!([{"op": "add", "path": "members", "value": [{"value": "a", "nope": 1}]}]),
        json!([{"op": "remove", "path": "members[nope eq \"a\"]"}]),
    ] {
        let planned = plan(ops.clone(), &PatchOptions::default());
        let applied = run(
            &tour_guides(),
            &group_schema(),
            &patch(ops.clone()),
            &PatchOptions::default(),
        );
        match (planned, applied) {
            (Err(p), Err(a)) => assert_eq!(p, a, "{ops}"),
            other => panic!("{ops}: {other:?}"),
        }
    }
}

#[test]
fn strict_filter_removals_become_preconditions_or_errors() {
    let strict = PatchOptions::strict();
    let GroupPatchPlan::Delta { members, .. } = plan(
        json!([{"op": "remove", "path": "members[value eq \"a\" or value eq \"b\"]"}]),
        &strict,
    )
    .unwrap() else {
        panic!()
    };
    assert_eq!(members.preconditions.len(), 1);
    assert_eq!(members.preconditions[0].any_of, ["a", "b"]);
    let e = members.check_preconditions(|_| false).unwrap_err();
    assert_eq!(e.scim_type(), ScimType::NoTarget);
    assert_eq!(e.location().to_string(), "Operations[0].path");
    members.check_preconditions(|id| id == "b").unwrap();
    // Known from the request itself: removed twice is noTarget now; added first needs nothing.
    let e = plan(
        json!([
            {"op": "remove", "path": "members[value eq \"a\"]"},
            {"op": "remove", "path": "members[value eq \"a\"]"}
        ]),
        &strict,
    )
    .unwrap_err();
    assert_eq!(
        (e.scim_type(), e.operation()),
        (ScimType::NoTarget, Some(1))
    );
    let GroupPatchPlan::Delta { members, .. } = plan(
        json!([
            {"op": "add", "path": "members", "value": [{"value": "a"}]},
            {"op": "remove", "path": "members[value eq \"a\"]"}
        ]),
        &strict,
    )
    .unwrap() else {
        panic!()
    };
    assert!(members.preconditions.is_empty());
    let e = plan(json!([{"op": "remove", "path": "members"}, {"op": "remove", "path": "members[value eq \"a\"]"}]), &strict).unwrap_err();
    assert_eq!(e.scim_type(), ScimType::NoTarget);
}

#[test]
fn a_thousand_member_add_is_planned_without_the_group() {
    let value: Vec<Value> = (0..1000)
        .map(|i| json!({"value": format!("user-{i}"), "type": "User"}))
        .collect();
    let (members, rest) = delta(json!([{"op": "add", "path": "members", "value": value}]));
    assert_eq!(members.add.len(), 1000);
    assert!(rest.operations.is_empty());
}

// ---- agreement with apply() ----

const POOL: &[&str] = &["u1", "u2", "u3", "u4", "U1", "g1"];

fn member_value() -> impl Strategy<Value = Value> {
    (
        prop::sample::select(POOL),
        prop::option::of(prop::sample::select(vec!["Babs", "Jim", "Ops"])),
        any::<bool>(),
    )
        .prop_map(|(id, display, typed)| {
            let mut m = json!({"value": id});
            if let Some(d) = display {
                m["display"] = json!(d);
            }
            if typed {
                m["type"] = json!(if id.starts_with('g') { "Group" } else { "User" });
            }
            m
        })
}

fn members_op() -> impl Strategy<Value = Value> {
    let list = || prop::collection::vec(member_value(), 0..4);
    let id = || prop::sample::select(POOL);
    prop_oneof![
        list().prop_map(|v| json!({"op": "add", "path": "members", "value": v})),
        list().prop_map(|v| json!({"op": "Add", "path": "Members", "value": v})),
        list().prop_map(|v| json!({"op": "replace", "path": "members", "value": v})),
        list().prop_map(|v| json!({"op": "replace", "value": {"members": v, "displayName": "Renamed"}})),
        list().prop_map(|v| json!({"op": "add", "value": {"members": v}})),
        Just(json!({"op": "remove", "path": "members"})),
        id().prop_map(|i| json!({"op": "remove", "path": format!("members[value eq \"{i}\"]")})),
        (id(), id()).prop_map(|(a, b)| json!({"op": "remove", "path": format!("members[value eq \"{a}\" or value eq \"{b}\"]")})),
        prop::collection::vec(id(), 0..3).prop_map(|ids| {
            let v: Vec<Value> = ids.iter().map(|i| json!({"$ref": null, "value": i})).collect();
            json!({"op": "Remove", "path": "members", "value": v})
        }),
        Just(json!({"op": "replace", "path": "displayName", "value": "Tour Leads"})),
        Just(json!({"op": "replace", "path": "displayName", "value": 7})),
    ]
}

fn base_members() -> impl Strategy<Value = Vec<Value>> {
    prop::collection::vec(member_value(), 0..5).prop_map(|values| {
        let mut seen = std::collections::HashSet::new();
        values
            .into_iter()
            .filter(|m| seen.insert(m["value"].as_str().unwrap().to_lowercase()))
            .collect()
    })
}

fn sorted(mut refs: Vec<MemberRef>) -> Vec<MemberRef> {
    refs.sort_by_key(|m| m.value.to_lowercase());
    refs
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_plan_agrees_with_apply(base in base_members(), ops in prop::collection::vec(members_op(), 1..5), strict in any::<bool>()) {
        let options = if strict { PatchOptions::strict() } else { PatchOptions::default() };
        let mut group = tour_guides();
        if base.is_empty() {
            group.as_object_mut().unwrap().remove("members");
        } else {
            group["members"] = Value::Array(base.clone());
        }
        let request = match PatchRequest::from_json(&patch(Value::Array(ops.clone())), &options) {
            Ok(r) => r,
            Err(_) => return Ok(()), // refused before either path runs (e.g. strict op case)
        };
        let whole = apply(&group, &group_schema(), &request, &options);

        let planned = plan_group_patch(&request, &group_schema(), &options).and_then(|plan| match plan {
            GroupPatchPlan::Delta { members, rest } => {
                let mut refs: Vec<MemberRef> = base.iter().map(|m| MemberRef::from_json(m).unwrap()).collect();
                members.apply_to(&mut refs)?;
                let mut without = group.clone();
                without.as_object_mut().unwrap().remove("members");
                let outcome = apply(&without, &group_schema(), &rest, &options)?;
                Ok((refs, outcome.resource))
            }
            GroupPatchPlan::NeedsMembers { reason, .. } => panic!("generated operations are all plannable: {reason}"),
        });
        match (whole, planned) {
            (Ok(outcome), Ok((refs, mut rest_doc))) => {
                let expected: Vec<MemberRef> = outcome.resource["members"].as_array().map(|m| m.iter().map(|v| MemberRef::from_json(v).unwrap()).collect()).unwrap_or_default();
                prop_assert_eq!(sorted(expected), sorted(refs), "ops: {}", Value::Array(ops.clone()));
                let mut full = outcome.resource.clone();
                full.as_object_mut().unwrap().remove("members");
                rest_doc.as_object_mut().unwrap().remove("members");
                prop_assert_eq!(full, rest_doc);
            }
            // apply() reports the first failing operation; the plan reports a failing operation
            // that can be no earlier (member and other operations are checked separately), and
            // when it is the same operation, the same error.
            (Err(a), Err(p)) => {
                prop_assert!(p.operation() >= a.operation(), "apply: {:?}\nplan: {:?}\nops: {}", a, p, Value::Array(ops.clone()));
                if p.operation() == a.operation() {
                    prop_assert_eq!(a.scim_type(), p.scim_type(), "ops: {}", Value::Array(ops.clone()));
                }
            }
            (a, p) => prop_assert!(false, "apply: {:?}\nplan: {:?}\nops: {}", a.map(|o| o.resource), p, Value::Array(ops.clone())),
        }
    }
}
