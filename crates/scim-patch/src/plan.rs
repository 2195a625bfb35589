//! Membership at scale: a group PATCH planned as a delta on its members, so that a store can
//! apply it in time proportional to the change, without reading a 100,000-member group.
//!
//! [`plan_group_patch`] splits a request into the operations on `members`, translated into a
//! [`MembershipDelta`], and the operations on every other attribute ([`GroupPatchPlan::Delta`]'s
//! `rest`), which the store applies with [`crate::apply()`] to the group document without its
//! members. Applying both gives exactly the members [`crate::apply()`] gives on the full document
//! (this crate's tests check it on generated requests).
//!
//! What translates (RFC 7644 section 3.5.2; lenient dialects where marked):
//!
//! | operation | delta |
//! |---|---|
//! | `add` `members` with a value list (or a path-less `{"members": [...]}`) | `add` |
//! | `replace` `members` (path or path-less), `[]` or `null` included | `replace_all` |
//! | `remove` `members` | `replace_all: Some([])` |
//! | `remove` `members[value eq "a"]`, `members[value eq "a" or value eq "b"]` | `remove` (strict mode: plus a precondition) |
//! | `remove` `members` with a value list ([`crate::dialects::remove_with_value`]) | `remove` |
//!
//! A store applies a [`GroupPatchPlan::Delta`] in one transaction: check the preconditions,
//! apply `rest`, apply the delta; any error aborts all of it. When several operations of a request
//! fail, the error reported may be that of a later operation than the one [`crate::apply()`] would
//! name (member operations and the others are checked separately); which requests fail, and the
//! result of those that succeed, are the same.
//!
//! Anything else on `members` (a filter on `display` or `type`, a sub-attribute path such as
//! `members[value eq "a"].display`, add or replace through a filter, a member without a string
//! `value`) cannot be decided without the members, and the plan says so:
//! [`GroupPatchPlan::NeedsMembers`]. The store then loads the group and uses [`crate::apply()`].
//!
//! ```
//! use scim_patch::{GroupPatchPlan, MemberRef, PatchOptions, PatchRequest, plan_group_patch};
//! use serde_json::json;
//!
//! // Entra ID removes one member (value list) and adds another, and renames the group.
//! let message = json!({
//!     "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
//!     "Operations": [
//!         {"op": "Remove", "path": "members", "value": [{"$ref": null, "value": "a"}]},
//!         {"op": "Add", "path": "members", "value": [{"$ref": null, "value": "b"}]},
//!         {"op": "Replace", "path": "displayName", "value": "Tour Leads"}
//!     ]
//! });
//! let options = PatchOptions::default();
//! let request = PatchRequest::from_value(message, &options)?;
//! let GroupPatchPlan::Delta { members, rest } = plan_group_patch(&request, &scim_schema::core::group(), &options)?
//! else {
//!     panic!("every operation here is plannable")
//! };
//! assert_eq!(members.remove, ["a"]);
//! assert_eq!(members.add, [MemberRef::new("b")]);
//! assert_eq!(rest.operations.len(), 1); // the rename, for apply() on the group without members
//!
//! // What a store does with its member index, shown on a list:
//! let mut current = vec![MemberRef::new("a"), MemberRef::new("c")];
//! assert!(members.apply_to(&mut current)?);
//! assert_eq!(current, [MemberRef::new("c"), MemberRef::new("b")]);
//! # Ok::<(), scim_patch::PatchError>(())
//! ```

use crate::apply::{Cx, no_match, prepare_values};
use crate::dialects;
use crate::error::{Location, PatchError};
use crate::request::{Op, PatchOperation, PatchOptions, PatchRequest, parse_path_at};
use crate::value::{id_key, is_assigned, strip_nulls};
use scim_filter::eval::CompiledValueFilter;
use scim_filter::{CompValue, CompareOp, Filter, PatchPath};
use scim_schema::{AttrLocation, AttrPath, AttributeDef, AttributeType, ResourceSchema};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// One member of a group: the sub-attributes of a `members` value (RFC 7643 section 4.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MemberRef {
    /// `value`: the member resource's `id`.
    pub value: String,
    /// `type`: `User` or `Group`, if given.
    pub member_type: Option<String>,
    /// `display`: a human-readable name, if given.
    pub display: Option<String>,
    /// `$ref`: the member resource's URI, if given.
    pub reference: Option<String>,
}

impl MemberRef {
    /// A member with only its id.
    pub fn new(value: impl Into<String>) -> Self {
        MemberRef {
            value: value.into(),
            member_type: None,
            display: None,
            reference: None,
        }
    }

    /// Reads a `members` value (an object with a string `value`); `None` otherwise. Sub-attribute
    /// names are matched case-insensitively.
    pub fn from_json(element: &Value) -> Option<MemberRef> {
        let Value::Object(object) = element else {
            return None;
        };
        let text = |name: &str| {
            crate::value::get_ci(object, name)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        Some(MemberRef {
            value: text("value")?,
            member_type: text("type"),
            display: text("display"),
            reference: text("$ref"),
        })
    }

    /// The `members` value as JSON, in the schema's sub-attribute order (`value`, `$ref`,
    /// `type`, `display`), unassigned sub-attributes omitted.
    pub fn to_json(&self) -> Value {
        let mut object = Map::new();
        object.insert("value".to_owned(), Value::String(self.value.clone()));
        let optional = [
            ("$ref", &self.reference),
            ("type", &self.member_type),
            ("display", &self.display),
        ];
        for (name, v) in optional {
            if let Some(v) = v {
                object.insert(name.to_owned(), Value::String(v.clone()));
            }
        }
        Value::Object(object)
    }
}

/// A condition on the group's members before the delta applies: at least one of `any_of` must be
/// a member, or operation `operation` fails with `noTarget` (strict mode only: RFC 7644 section
/// 3.12, a filter "that yields no match"). Lenient dialects never produce preconditions
/// ([`dialects::ignore_remove_no_match`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipPrecondition {
    /// The index of the operation in `Operations`.
    pub operation: usize,
    /// The operation's `path`, for the error.
    pub path: String,
    /// Member ids of which at least one must be present.
    pub any_of: Vec<String>,
}

/// The change a request makes to a group's members, to apply in this order:
///
/// 1. check [`MembershipDelta::preconditions`] against the current members;
/// 2. if `replace_all` is `Some`, the members become exactly that list (then `remove` and `add`
///    are empty: later operations are folded into the list);
/// 3. delete the members whose id is in `remove`;
/// 4. insert each of `add` whose id is not a member (an existing member is left as it is: RFC 7644
///    section 3.5.2.1, "If the target location already contains the value specified, no
///    changes SHOULD be made"). An id may be in both `remove` and `add`: the member is replaced.
///
/// Ids compare exactly if `ids_case_exact`, else after [`scim_schema::fold_case`] (the schema's
/// `members.value` caseExact). Referential checks (does the id name a resource?) are the store's.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MembershipDelta {
    /// The new complete member list, when the request replaces or removes all members.
    pub replace_all: Option<Vec<MemberRef>>,
    /// Ids to delete.
    pub remove: Vec<String>,
    /// Members to insert when absent, first occurrence of an id winning.
    pub add: Vec<MemberRef>,
    /// Conditions on the current members (strict mode).
    pub preconditions: Vec<MembershipPrecondition>,
    /// Whether ids compare case-sensitively.
    pub ids_case_exact: bool,
}

impl MembershipDelta {
    /// True when the request does nothing to the members.
    pub fn is_empty(&self) -> bool {
        self.replace_all.is_none()
            && self.remove.is_empty()
            && self.add.is_empty()
            && self.preconditions.is_empty()
    }

    /// The form in which ids are compared (see [`MembershipDelta::ids_case_exact`]).
    pub fn id_key(&self, id: &str) -> String {
        id_key(id, self.ids_case_exact)
    }

    /// Checks the preconditions, `is_member` answering for the current members (a store asks its
    /// index, one query for all).
    pub fn check_preconditions(
        &self,
        mut is_member: impl FnMut(&str) -> bool,
    ) -> Result<(), PatchError> {
        for condition in &self.preconditions {
            if !condition.any_of.iter().any(|id| is_member(id)) {
                return Err(PatchError::no_target(
                    Location::operation(condition.operation, "path"),
                    format!(
                        "no value of members matches the filter in {:?} (RFC 7644 section 3.12: noTarget)",
                        condition.path
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Applies the delta to an in-memory member list (the reference semantics a store
    /// implements; also what an in-memory store can call). Returns whether the list changed.
    pub fn apply_to(&self, members: &mut Vec<MemberRef>) -> Result<bool, PatchError> {
        let keys: HashSet<String> = members.iter().map(|m| self.id_key(&m.value)).collect();
        self.check_preconditions(|id| keys.contains(&self.id_key(id)))?;
        let before = members.clone();
        if let Some(all) = &self.replace_all {
            members.clone_from(all);
        }
        let removed: HashSet<String> = self.remove.iter().map(|id| self.id_key(id)).collect();
        members.retain(|m| !removed.contains(&self.id_key(&m.value)));
        let mut present: HashSet<String> = members.iter().map(|m| self.id_key(&m.value)).collect();
        for member in &self.add {
            if present.insert(self.id_key(&member.value)) {
                members.push(member.clone());
            }
        }
        Ok(*members != before)
    }
}

/// A group PATCH split for a store (see the [module documentation](self)).
#[derive(Debug, Clone, PartialEq)]
pub enum GroupPatchPlan {
    /// The members' change as a delta, and the operations on the other attributes (original
    /// operation indices kept, so errors name the operation the client sent).
    Delta {
        /// What happens to `members`.
        members: MembershipDelta,
        /// The operations on other attributes, for [`crate::apply()`] on the group without its
        /// members (which none of them reads or writes).
        rest: PatchRequest,
    },
    /// An operation on `members` cannot be planned without the members: the store must load the
    /// group with its members and use [`crate::apply()`] on the whole request.
    NeedsMembers {
        /// The index of the first such operation.
        operation: usize,
        /// Why, for logs.
        reason: String,
    },
}

/// Plans a PATCH of a group (RFC 7644 section 3.5.2) as a [`MembershipDelta`] plus the other
/// operations. `schema` is the group's resource type (its core schema's `members` is the
/// attribute planned); a resource type without `members` plans everything into `rest`.
///
/// Member values are checked exactly as [`crate::apply()`] checks them (same coercions, same
/// schema check, same errors), and strict-mode `noTarget` is decided now when the request itself
/// determines it, or left to the store as a [`MembershipPrecondition`].
pub fn plan_group_patch(
    request: &PatchRequest,
    schema: &ResourceSchema,
    options: &PatchOptions,
) -> Result<GroupPatchPlan, PatchError> {
    let members_def = match schema.core().attribute("members") {
        Some(def)
            if def.kind == AttributeType::Complex
                && def.multi_valued
                && def.sub_attribute("value").is_some() =>
        {
            def
        }
        _ => {
            return Ok(GroupPatchPlan::Delta {
                members: MembershipDelta::default(),
                rest: request.clone(),
            });
        }
    };
    let ids_case_exact = members_def
        .sub_attribute("value")
        .is_some_and(|v| v.case_exact);
    let mut planner = Planner {
        members_def,
        schema,
        options,
        state: State::new(ids_case_exact),
    };
    let mut rest = Vec::new();
    for operation in &request.operations {
        let step = match &operation.path {
            Some(path) => planner.path_operation(operation, path, &mut rest)?,
            None => planner.pathless_operation(operation, &mut rest)?,
        };
        if let Step::Needs(reason) = step {
            return Ok(GroupPatchPlan::NeedsMembers {
                operation: operation.index,
                reason,
            });
        }
    }
    Ok(GroupPatchPlan::Delta {
        members: planner.state.finish(),
        rest: PatchRequest { operations: rest },
    })
}

enum Step {
    Planned,
    Needs(String),
}

struct Planner<'a> {
    members_def: &'a AttributeDef,
    schema: &'a ResourceSchema,
    options: &'a PatchOptions,
    state: State,
}

impl Planner<'_> {
    /// Whether `path` (without filter or sub-attribute parts) names the group's `members`.
    fn is_members(&self, path: &AttrPath) -> bool {
        let base = AttrPath {
            schema: path.schema.clone(),
            name: path.name.clone(),
            sub_attr: None,
        };
        self.schema.resolve(&base).is_some_and(|r| {
            matches!(r.location, AttrLocation::TopLevel)
                && std::ptr::eq(r.attribute, self.members_def)
        })
    }

    fn path_operation(
        &mut self,
        operation: &PatchOperation,
        path: &PatchPath,
        rest: &mut Vec<PatchOperation>,
    ) -> Result<Step, PatchError> {
        if !self.is_members(&path.attr) {
            rest.push(operation.clone());
            return Ok(Step::Planned);
        }
        let text = operation
            .path_text
            .clone()
            .unwrap_or_else(|| path.to_string());
        let cx = Cx::new(operation.op, operation.index, self.options, &text, false);
        self.members_operation(&cx, path, operation.value.as_ref())
    }

    fn pathless_operation(
        &mut self,
        operation: &PatchOperation,
        rest: &mut Vec<PatchOperation>,
    ) -> Result<Step, PatchError> {
        let Some(Value::Object(attributes)) = &operation.value else {
            rest.push(operation.clone());
            return Ok(Step::Planned);
        };
        let mut others = Map::new();
        let mut members_keys = Vec::new();
        for (key, value) in attributes {
            let path = if dialects::pathless_keys_as_paths(self.options) {
                parse_path_at(
                    Location::operation(operation.index, format!("value.{key}")),
                    key,
                    self.options,
                )
                .ok()
            } else {
                Some(PatchPath {
                    attr: AttrPath::simple(key.clone()),
                    filter: None,
                    sub_attr: None,
                })
            };
            match path {
                Some(path) if self.is_members(&path.attr) => members_keys.push((key, path, value)),
                // Unparseable keys and other attributes: apply() reports or applies them.
                _ => {
                    others.insert(key.clone(), value.clone());
                }
            }
        }
        if members_keys.is_empty() {
            rest.push(operation.clone());
            return Ok(Step::Planned);
        }
        for (key, path, value) in members_keys {
            let cx = Cx::new(operation.op, operation.index, self.options, key, true);
            if let Step::Needs(reason) = self.members_operation(&cx, &path, Some(value))? {
                return Ok(Step::Needs(reason));
            }
        }
        if !others.is_empty() {
            rest.push(PatchOperation {
                value: Some(Value::Object(others)),
                ..operation.clone()
            });
        }
        Ok(Step::Planned)
    }

    /// One operation on `members`, as the delta it is, or why it cannot be one.
    fn members_operation(
        &mut self,
        cx: &Cx<'_>,
        path: &PatchPath,
        value: Option<&Value>,
    ) -> Result<Step, PatchError> {
        let def = self.members_def;
        if path.attr.sub_attr.is_some() || path.sub_attr.is_some() {
            return Ok(Step::Needs(format!(
                "{:?} addresses a sub-attribute of members",
                cx.path_text
            )));
        }
        match (cx.op, &path.filter) {
            (Op::Add, None) => {
                let values = prepare_values(cx, def, value.unwrap_or(&Value::Null))?;
                match refs(values) {
                    Some(refs) => self.state.add(refs),
                    None => {
                        return Ok(Step::Needs(
                            "a member without a string \"value\"".to_owned(),
                        ));
                    }
                }
            }
            (Op::Replace, None) => {
                let values = prepare_values(cx, def, value.unwrap_or(&Value::Null))?;
                match refs(values) {
                    Some(refs) => self.state.replace_all(refs),
                    None => {
                        return Ok(Step::Needs(
                            "a member without a string \"value\"".to_owned(),
                        ));
                    }
                }
            }
            (Op::Remove, None) => match value.filter(|v| !v.is_null()) {
                Some(given) if dialects::remove_with_value(self.options) => {
                    match listed_ids(cx, def, given) {
                        Some(ids) => self.state.remove(&ids),
                        None => {
                            return Ok(Step::Needs(
                                "a removal list naming members by something other than their id"
                                    .to_owned(),
                            ));
                        }
                    }
                }
                _ => self.state.replace_all(Vec::new()),
            },
            (Op::Remove, Some(filter)) => {
                // Same invalidPath as apply() for a filter that does not fit members.
                if let Err(e) = CompiledValueFilter::new(filter, def) {
                    let offset = cx.path_text.find('[').unwrap_or(0);
                    return Err(PatchError::invalid_path(
                        cx.path_at.clone(),
                        cx.path_text.clone(),
                        offset,
                        e.to_string(),
                    ));
                }
                let Some(ids) = ids_in_filter(filter) else {
                    return Ok(Step::Needs(format!(
                        "{:?} selects members by more than their id",
                        cx.path_text
                    )));
                };
                if !dialects::ignore_remove_no_match(self.options) {
                    self.state.require_any(cx, def, &ids)?;
                }
                self.state.remove(&ids);
            }
            (Op::Add | Op::Replace, Some(_)) => {
                return Ok(Step::Needs(format!(
                    "{} through the value filter {:?}",
                    cx.op, cx.path_text
                )));
            }
        }
        Ok(Step::Planned)
    }
}

/// The members of checked values (moved, not copied), or `None` if one has no string `value`.
fn refs(values: Vec<Value>) -> Option<Vec<MemberRef>> {
    values.into_iter().map(member_from_checked).collect()
}

/// A [`MemberRef`] from a checked `members` value, whose names are canonical.
fn member_from_checked(element: Value) -> Option<MemberRef> {
    let Value::Object(mut object) = element else {
        return None;
    };
    let mut text = |name: &str| match object.remove(name) {
        Some(Value::String(s)) => Some(s),
        _ => None,
    };
    Some(MemberRef {
        value: text("value")?,
        member_type: text("type"),
        display: text("display"),
        reference: text("$ref"),
    })
}

/// The ids a removal list names ([`dialects::remove_with_value`]): strings, or objects whose
/// assigned sub-attributes are only `value` (what Entra ID and JumpCloud send; `"$ref": null` is
/// unassigned). `None` for anything that would have to be compared with the stored members.
fn listed_ids(cx: &Cx<'_>, def: &AttributeDef, given: &Value) -> Option<Vec<String>> {
    let mut given = match dialects::coerce(def, given.clone(), cx.options) {
        Value::Array(values) => values,
        other => vec![other],
    };
    given.retain(is_assigned);
    given.iter_mut().for_each(strip_nulls);
    given
        .iter()
        .map(|g| match g {
            Value::String(id) => Some(id.clone()),
            Value::Object(object) => {
                let id = crate::value::get_ci(object, "value")?.as_str()?;
                // References are matched by id alone (see apply's remove rules).
                Some(id.to_owned())
            }
            _ => None,
        })
        .collect()
}

/// The ids of a filter that is `value eq "id"` or a disjunction of such comparisons.
fn ids_in_filter(filter: &Filter) -> Option<Vec<String>> {
    let mut ids = Vec::new();
    let mut pending = vec![filter];
    while let Some(f) = pending.pop() {
        match f {
            Filter::Or(left, right) => {
                pending.push(right);
                pending.push(left);
            }
            Filter::Compare(cmp)
                if cmp.op == CompareOp::Eq
                    && cmp.path.schema.is_none()
                    && cmp.path.sub_attr.is_none()
                    && cmp.path.name.eq_ignore_ascii_case("value") =>
            {
                match &cmp.value {
                    CompValue::String(id) => ids.push(id.clone()),
                    _ => return None,
                }
            }
            _ => return None,
        }
    }
    Some(ids)
}

/// The delta being built, operation by operation, with the request's own knowledge of which ids
/// are members at the current point (for strict preconditions).
struct State {
    case_exact: bool,
    /// `Some` once the request replaced or cleared the members: then the whole list is known.
    reset: Option<(Vec<MemberRef>, HashSet<String>)>,
    add: Vec<MemberRef>,
    add_index: HashMap<String, usize>,
    remove: Vec<String>,
    remove_index: HashSet<String>,
    preconditions: Vec<MembershipPrecondition>,
}

impl State {
    fn new(case_exact: bool) -> Self {
        State {
            case_exact,
            reset: None,
            add: Vec::new(),
            add_index: HashMap::new(),
            remove: Vec::new(),
            remove_index: HashSet::new(),
            preconditions: Vec::new(),
        }
    }

    fn key(&self, id: &str) -> String {
        id_key(id, self.case_exact)
    }

    fn replace_all(&mut self, refs: Vec<MemberRef>) {
        let mut keys = HashSet::new();
        let mut list = Vec::with_capacity(refs.len());
        for member in refs {
            if keys.insert(self.key(&member.value)) {
                list.push(member);
            }
        }
        self.reset = Some((list, keys));
        self.add.clear();
        self.add_index.clear();
        self.remove.clear();
        self.remove_index.clear();
        // Preconditions stay: they are about the members before the request, which a later
        // reset does not change.
    }

    fn add(&mut self, refs: Vec<MemberRef>) {
        for member in refs {
            let key = self.key(&member.value);
            match &mut self.reset {
                Some((list, keys)) => {
                    if keys.insert(key) {
                        list.push(member);
                    }
                }
                None => {
                    if !self.add_index.contains_key(&key) {
                        self.add_index.insert(key, self.add.len());
                        self.add.push(member);
                    }
                }
            }
        }
    }

    fn remove(&mut self, ids: &[String]) {
        let keys: Vec<String> = ids.iter().map(|id| self.key(id)).collect();
        match &mut self.reset {
            Some((list, present)) => {
                let gone: HashSet<&String> = keys.iter().collect();
                list.retain(|m| !gone.contains(&id_key(&m.value, self.case_exact)));
                for key in &keys {
                    present.remove(key);
                }
            }
            None => {
                if keys.iter().any(|k| self.add_index.contains_key(k)) {
                    let gone: HashSet<&String> = keys.iter().collect();
                    let case_exact = self.case_exact;
                    self.add
                        .retain(|m| !gone.contains(&id_key(&m.value, case_exact)));
                    self.add_index = self
                        .add
                        .iter()
                        .enumerate()
                        .map(|(i, m)| (id_key(&m.value, case_exact), i))
                        .collect();
                }
                for (id, key) in ids.iter().zip(keys) {
                    if self.remove_index.insert(key) {
                        self.remove.push(id.clone());
                    }
                }
            }
        }
    }

    /// Strict mode: a filtered remove must match (RFC 7644 section 3.12, noTarget). Decided now
    /// when this request already determines the membership of the ids, else left to the store.
    fn require_any(
        &mut self,
        cx: &Cx<'_>,
        def: &AttributeDef,
        ids: &[String],
    ) -> Result<(), PatchError> {
        let keys: Vec<String> = ids.iter().map(|id| self.key(id)).collect();
        if let Some((_, present)) = &self.reset {
            return if keys.iter().any(|k| present.contains(k)) {
                Ok(())
            } else {
                Err(no_match(cx, def))
            };
        }
        if keys.iter().any(|k| self.add_index.contains_key(k)) {
            return Ok(());
        }
        let unknown: Vec<String> = ids
            .iter()
            .zip(&keys)
            .filter(|(_, k)| !self.remove_index.contains(*k))
            .map(|(id, _)| id.clone())
            .collect();
        if unknown.is_empty() {
            return Err(no_match(cx, def));
        }
        self.preconditions.push(MembershipPrecondition {
            operation: cx_operation(cx),
            path: cx_path(cx),
            any_of: unknown,
        });
        Ok(())
    }

    fn finish(self) -> MembershipDelta {
        match self.reset {
            Some((list, _)) => MembershipDelta {
                replace_all: Some(list),
                remove: Vec::new(),
                add: Vec::new(),
                preconditions: self.preconditions,
                ids_case_exact: self.case_exact,
            },
            None => MembershipDelta {
                replace_all: None,
                remove: self.remove,
                add: self.add,
                preconditions: self.preconditions,
                ids_case_exact: self.case_exact,
            },
        }
    }
}

fn cx_operation(cx: &Cx<'_>) -> usize {
    cx.path_at.operation.unwrap_or_default()
}

fn cx_path(cx: &Cx<'_>) -> String {
    cx.path_text.clone()
}
