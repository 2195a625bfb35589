//! Group membership PATCH (RFC 7644 section 3.5.2), differentially: arbitrary member operations
//! on an arbitrary small group, planned without the group's members
//! (`scim_patch::plan_group_patch`, what the stores run) and applied to the whole document
//! (`scim_patch::apply`), in both dialect modes. The two must agree: the same members (with the
//! same `type` and `display`) and the same other attributes, or, when both fail, the plan's
//! failing operation no earlier than apply's, and the same `scimType` when it is the same one.
//! A plan that needs the members (`NeedsMembers`) is the store's cue to load them and use
//! `apply`, so there is nothing to compare.
//!
//! The crate's proptest (`crates/scim-patch/tests/plan.rs`) checks the same with a few hundred
//! cases per run; this target searches far longer, and over a wider space: odd cases of
//! operation names and paths, values of the wrong JSON type, and ids outside the group.

#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use scim_patch::{GroupPatchPlan, MemberRef, PatchOptions, PatchRequest, apply, plan_group_patch};
use serde_json::{Value, json};

/// Member ids: a few, differing only in case too (ids compare case-sensitively for some
/// stores' keys and not others; the planner must agree with `apply` either way).
const IDS: &[&str] = &["u1", "u2", "u3", "U1", "g1", "a\"b", "", "u1 "];

#[derive(Debug, Arbitrary)]
struct Input {
    base: Vec<Member>,
    operations: Vec<Operation>,
    strict: bool,
}

#[derive(Debug, Arbitrary)]
struct Member {
    id: u8,
    display: Option<u8>,
    kind: Option<Kind>,
}

#[derive(Debug, Arbitrary)]
enum Kind {
    User,
    Group,
    Lower,
    Number,
}

#[derive(Debug, Arbitrary)]
enum OpName {
    Add,
    Replace,
    Remove,
    AddUpper,
    ReplaceUpper,
    RemoveUpper,
    Move,
}

#[derive(Debug, Arbitrary)]
enum Target {
    /// No path: the value is an object.
    None,
    Members,
    MembersUpper,
    MembersValue,
    /// `members[value eq "id"]`.
    ValueEq(u8),
    /// `members[value eq "a" or value eq "b"]`.
    ValueEither(u8, u8),
    /// `members[type eq "User"]`.
    TypeUser,
    /// `members[display co "x"].value`.
    DisplaySub,
    DisplayName,
    Other(String),
}

#[derive(Debug, Arbitrary)]
enum Payload {
    Absent,
    Null,
    List(Vec<Member>),
    One(Member),
    /// A path-less object: `{"members": [...], "displayName": ...}`.
    Object(Vec<Member>, Option<String>),
    Text(String),
    Number(i32),
    RefList(Vec<u8>),
}

#[derive(Debug, Arbitrary)]
struct Operation {
    name: OpName,
    target: Target,
    payload: Payload,
}

fn id(index: u8) -> &'static str {
    IDS[usize::from(index) % IDS.len()]
}

fn member(m: &Member) -> Value {
    let mut value = json!({"value": id(m.id)});
    if let Some(display) = m.display {
        value["display"] = json!(["Babs", "Jim", "Ops"][usize::from(display) % 3]);
    }
    match m.kind {
        Some(Kind::User) => value["type"] = json!("User"),
        Some(Kind::Group) => value["type"] = json!("Group"),
        Some(Kind::Lower) => value["type"] = json!("user"),
        Some(Kind::Number) => value["type"] = json!(7),
        None => {}
    }
    value
}

fn operation(op: &Operation) -> Value {
    let name = match op.name {
        OpName::Add => "add",
        OpName::Replace => "replace",
        OpName::Remove => "remove",
        OpName::AddUpper => "Add",
        OpName::ReplaceUpper => "Replace",
        OpName::RemoveUpper => "Remove",
        OpName::Move => "move",
    };
    let path = match &op.target {
        Target::None => None,
        Target::Members => Some("members".to_owned()),
        Target::MembersUpper => Some("Members".to_owned()),
        Target::MembersValue => Some("members.value".to_owned()),
        Target::ValueEq(a) => Some(format!("members[value eq {}]", json!(id(*a)))),
        Target::ValueEither(a, b) => Some(format!(
            "members[value eq {} or value eq {}]",
            json!(id(*a)),
            json!(id(*b))
        )),
        Target::TypeUser => Some("members[type eq \"User\"]".to_owned()),
        Target::DisplaySub => Some("members[display co \"a\"].value".to_owned()),
        Target::DisplayName => Some("displayName".to_owned()),
        Target::Other(text) => Some(text.chars().take(64).collect()),
    };
    let value = match &op.payload {
        Payload::Absent => None,
        Payload::Null => Some(Value::Null),
        Payload::List(members) => Some(Value::Array(members.iter().take(6).map(member).collect())),
        Payload::One(m) => Some(member(m)),
        Payload::Object(members, name) => {
            let mut object =
                json!({"members": members.iter().take(6).map(member).collect::<Vec<_>>()});
            if let Some(name) = name {
                object["displayName"] = json!(name.chars().take(32).collect::<String>());
            }
            Some(object)
        }
        Payload::Text(text) => Some(json!(text.chars().take(32).collect::<String>())),
        Payload::Number(n) => Some(json!(n)),
        Payload::RefList(ids) => Some(Value::Array(
            ids.iter()
                .take(6)
                .map(|i| json!({"$ref": null, "value": id(*i)}))
                .collect(),
        )),
    };
    let mut operation = json!({"op": name});
    if let Some(path) = path {
        operation["path"] = json!(path);
    }
    if let Some(value) = value {
        operation["value"] = value;
    }
    operation
}

/// The members in a stable order (by id, folded, as the stores key them).
fn sorted(mut refs: Vec<MemberRef>) -> Vec<MemberRef> {
    refs.sort_by_key(|m| m.value.to_lowercase());
    refs
}

fuzz_target!(|input: Input| {
    let options = if input.strict {
        PatchOptions::strict()
    } else {
        PatchOptions::default()
    };
    let schema = scim_schema::core::group();
    // A stored group has no two members with the same id.
    let mut seen = std::collections::HashSet::new();
    let base: Vec<Value> = input
        .base
        .iter()
        .take(6)
        .map(member)
        .filter(|m| seen.insert(m["value"].as_str().unwrap_or("").to_lowercase()))
        .collect();
    let mut group = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": "acbf3ae7-8463-4692-b4fd-9b4da3f908ce",
        "displayName": "Tour Guides",
    });
    if !base.is_empty() {
        group["members"] = Value::Array(base.clone());
    }
    let operations: Vec<Value> = input.operations.iter().take(6).map(operation).collect();
    let message = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": operations,
    });
    let Ok(request) = PatchRequest::from_json(&message, &options) else {
        return;
    };
    let whole = apply(&group, &schema, &request, &options);
    let planned = match plan_group_patch(&request, &schema, &options) {
        Ok(GroupPatchPlan::NeedsMembers { .. }) => return,
        Ok(GroupPatchPlan::Delta { members, rest }) => {
            let mut refs: Vec<MemberRef> = base.iter().filter_map(MemberRef::from_json).collect();
            members.apply_to(&mut refs).and_then(|_| {
                let mut without = group.clone();
                if let Some(object) = without.as_object_mut() {
                    object.remove("members");
                }
                apply(&without, &schema, &rest, &options).map(|o| (refs, o.resource))
            })
        }
        Err(e) => Err(e),
    };
    match (whole, planned) {
        (Ok(outcome), Ok((refs, mut rest))) => {
            let expected: Vec<MemberRef> = outcome.resource["members"]
                .as_array()
                .map(|m| m.iter().filter_map(MemberRef::from_json).collect())
                .unwrap_or_default();
            assert_eq!(sorted(expected), sorted(refs), "members differ: {message}");
            let mut full = outcome.resource.clone();
            if let Some(object) = full.as_object_mut() {
                object.remove("members");
            }
            if let Some(object) = rest.as_object_mut() {
                object.remove("members");
            }
            assert_eq!(full, rest, "other attributes differ: {message}");
        }
        (Err(a), Err(p)) => {
            assert!(
                p.operation() >= a.operation(),
                "apply: {a:?}\nplan: {p:?}\n{message}"
            );
            if p.operation() == a.operation() {
                assert_eq!(a.scim_type(), p.scim_type(), "{message}");
            }
        }
        (a, p) => panic!("apply: {:?}\nplan: {p:?}\n{message}", a.map(|o| o.resource)),
    }
});
