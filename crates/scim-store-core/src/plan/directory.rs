//! The backend-neutral half of every directory write (create, PUT, PATCH and import of Users
//! and Groups): given what a backend loaded inside its transaction, decide which document and
//! index entries to write, which membership rows to add and remove, or that nothing changes.
//! The backend keeps what only it can do: load rows, lock them, watch the people a write
//! concerns for the workplace cascades, and write.
//!
//! A backend's writes, step by step:
//!
//! - **POST** (RFC 7644 section 3.3): resolve the new Group's member ids with
//!   [`resolve_members`] (on the rows it loaded for them, a [`RowsById`]); insert the document
//!   [`document::prepare`] made.
//! - **PUT** (RFC 7644 section 3.5.1): load what [`replace_loads`] asks ([`MemberLoads`]), then
//!   [`replace`] says [`ReplacePlan::Unchanged`] or which membership rows change; the new
//!   document and its version come from [`next_version`].
//! - **PATCH** (RFC 7644 section 3.5.2): [`Patching::plan`] says how the request is applied:
//!   - [`PatchPlan::Document`] (a User): [`Patching::document`] applies it to the stored
//!     document and says [`DocumentPatch::Unchanged`] or the replacement;
//!   - [`PatchPlan::Members`] (a Group, planned as a membership delta without reading its
//!     members): load what [`MembersPatch::loads`] asks, then [`Patching::members`] gives the
//!     new body (if it changes) and the membership rows to change ([`MembersWrites`]); after
//!     writing the rows, [`MembersWrites::version_write`] says whether the version moves;
//!   - [`PatchPlan::LoadGroup`] (an operation reads the members, e.g. a filter on `display`):
//!     load the Group with its members, [`Patching::whole_group`] applies the request to it,
//!     and a replacement is written as for PUT.
//! - **Import**: [`prepare_import`] (ids checked by [`check_imported_id`]) before the
//!   transaction, and [`check_import_duplicates`] for a backend that inserts set-wise.
//!
//! Member ids compare case-insensitively when they are resolved to rows (`members.value` is
//! caseExact false, RFC 7643 section 4.2): a backend keys what it loads by
//! [`fold_case`]d id.

use crate::document::{self, Prepared, ResourceLimits};
use crate::error::{Result, StoreError};
#[cfg(doc)]
use crate::types::ResourceSchemas;
use crate::types::{PatchSettings, ResourceKind};
use scim_patch::{GroupPatchPlan, MembershipDelta, PatchRequest};
use scim_schema::{DateTime, ResourceSchema, ScimType, UnknownAttributes, fold_case};
use serde_json::{Map, Value};
use std::collections::HashSet;

/// A backend's key of a resource row (the `rid` of the SQLite and PostgreSQL tables): what
/// membership rows refer to.
pub type RowKey = i64;

/// The resources of the tenant named by a list of ids, keyed by [`fold_case`]d id: what a
/// backend loads for [`resolve_members`]. An id that names no resource is absent.
pub type RowsById = std::collections::HashMap<String, RowKey>;

/// How a backend turns a validated document into what it stores:
/// [`document::prepare`], plus whatever limits the backend has (the
/// PostgreSQL store refuses U+0000 and over-long indexed values).
pub type Prepare = fn(ResourceKind, &ResourceSchema, Value) -> Result<Prepared>;

/// Resolves member ids to rows, in the order given, without repeats. Every member must
/// exist (`rows` holds what the backend found for `ids`), and a group may not contain itself
/// (`group`, the row of the group written; `None` for a new one).
pub fn resolve_members<'i>(
    ids: impl IntoIterator<Item = &'i str>,
    rows: &RowsById,
    group: Option<RowKey>,
) -> Result<Vec<RowKey>> {
    let ids = ids.into_iter();
    let mut resolved = Vec::with_capacity(ids.size_hint().0);
    let mut seen = HashSet::with_capacity(ids.size_hint().0);
    for id in ids {
        let Some(&row) = rows.get(fold_case(id).as_ref()) else {
            return Err(StoreError::invalid_value(format!(
                "members: {id:?} is not the id of a User or Group of this tenant"
            )));
        };
        if Some(row) == group {
            return Err(StoreError::invalid_value(format!(
                "members: a group cannot be a member of itself ({id:?})"
            )));
        }
        if seen.insert(row) {
            resolved.push(row);
        }
    }
    Ok(resolved)
}

/// The membership rows a write adds and removes. The two lists are disjoint and without
/// repeats: a member both removed and added by one request keeps its row (and so the place of
/// the group in the member's `groups`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipChange {
    /// Members to add (a row already there is left alone), in the order the request named them.
    pub add: Vec<RowKey>,
    /// Members to remove (an absent row is ignored).
    pub remove: Vec<RowKey>,
}

impl MembershipChange {
    /// Whether no row is named.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.remove.is_empty()
    }

    /// The change that turns the members `current` into `wanted`.
    pub fn between(current: &[RowKey], wanted: Vec<RowKey>) -> MembershipChange {
        let have: HashSet<RowKey> = current.iter().copied().collect();
        let wanted_set: HashSet<RowKey> = wanted.iter().copied().collect();
        MembershipChange {
            remove: current
                .iter()
                .copied()
                .filter(|row| !wanted_set.contains(row))
                .collect(),
            add: wanted
                .into_iter()
                .filter(|row| !have.contains(row))
                .collect(),
        }
    }
}

/// What a plan needs loaded about members before it can decide ("load these members first").
/// Each part that is empty (or `false`) costs the backend nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberLoads<'a> {
    /// Ids named by strict-mode preconditions: load the ids, as stored, of the group's members
    /// whose folded id is one of these folded ([`MemberRows::present`]).
    pub present_among: Vec<&'a str>,
    /// Ids to resolve to resources of the tenant ([`MemberRows::rows`]).
    pub resolve: Vec<&'a str>,
    /// Whether the group's current member rows are needed ([`MemberRows::current`]).
    pub current: bool,
}

/// What a backend loaded as [`MemberLoads`] asked; the parts it was not asked for stay empty.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberRows {
    /// The ids (as stored) of the group's members among [`MemberLoads::present_among`].
    pub present: Vec<String>,
    /// The resources named by [`MemberLoads::resolve`].
    pub rows: RowsById,
    /// The group's member rows.
    pub current: Vec<RowKey>,
}

/// Whether a Group write renames it: its `displayName` changes, which its members'
/// `groups[].display` show (and workplace rules may filter on), so every member is watched.
pub fn renames_group(stored: &Value, body: &Map<String, Value>) -> bool {
    stored.get("displayName") != body.get("displayName")
}

// ---- PUT ------------------------------------------------------------------------------------

/// What PUT (or a PATCH written as a replacement) needs loaded: for a Group with a member
/// list, its members resolved and its current member rows.
pub fn replace_loads(prepared: &Prepared) -> MemberLoads<'_> {
    match &prepared.members {
        Some(ids) => MemberLoads {
            present_among: Vec::new(),
            resolve: ids.iter().map(String::as_str).collect(),
            current: true,
        },
        None => MemberLoads::default(),
    }
}

/// What a replacement writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplacePlan {
    /// The body and the members are as stored: no write, no version, no event.
    Unchanged,
    /// Write the prepared document as the next version, with these membership rows.
    Write {
        /// The membership rows to add and remove.
        members: MembershipChange,
        /// Whether a Group is renamed ([`renames_group`]).
        renames: bool,
    },
}

/// Decides a replacement of the resource stored as `stored` (at row `row`) by `prepared`,
/// with what [`replace_loads`] asked loaded.
pub fn replace(
    stored: &Value,
    row: RowKey,
    prepared: &Prepared,
    loaded: &MemberRows,
) -> Result<ReplacePlan> {
    let members = match &prepared.members {
        Some(ids) => {
            let wanted = resolve_members(ids.iter().map(String::as_str), &loaded.rows, Some(row))?;
            MembershipChange::between(&loaded.current, wanted)
        }
        None => MembershipChange::default(),
    };
    if members.is_empty() && document::body_of(stored) == prepared.body {
        return Ok(ReplacePlan::Unchanged);
    }
    Ok(ReplacePlan::Write {
        members,
        renames: renames_group(stored, &prepared.body),
    })
}

/// The next version of a resource and its stored document, written at `at`.
#[derive(Debug, Clone, PartialEq)]
pub struct NextVersion {
    /// The version after the write.
    pub version: u64,
    /// The document to store (`meta` included, members not: they are rows).
    pub document: Value,
}

/// The next version of resource `id`, now at `version` and created at `created_ns`
/// (nanoseconds, as stored), with `body` written at `at`.
pub fn next_version(
    kind: ResourceKind,
    id: &str,
    version: u64,
    created_ns: i64,
    at: DateTime,
    body: &Map<String, Value>,
) -> NextVersion {
    let version = version.saturating_add(1);
    let created = document::from_nanos(created_ns);
    NextVersion {
        version,
        document: document::assemble(kind, id, version, created, at, body, None),
    }
}

// ---- PATCH ----------------------------------------------------------------------------------

/// How many times a backend that plans a PATCH outside its write lock (on a snapshot, then
/// writes it only if the resource is still at the version it was planned on) plans it again
/// when another write moved the resource in between. After that it applies the PATCH under the
/// lock, where it cannot lose the race: a resource written to without pause still gets its
/// PATCH, at the cost of applying it under the lock, which the resource limits bound.
pub const PATCH_PLAN_ATTEMPTS: usize = 3;

/// A stored document larger than this, or a request with more JSON values than
/// [`HEAVY_PATCH_VALUES`], makes applying a PATCH heavy ([`Patching::is_heavy`]).
pub const HEAVY_PATCH_BYTES: usize = 64 * 1024;

/// See [`HEAVY_PATCH_BYTES`].
pub const HEAVY_PATCH_VALUES: usize = 1_000;

/// A PATCH request with what it applies to: the resource type, the settings, and the
/// backend's [`Prepare`].
#[derive(Clone, Copy)]
pub struct Patching<'a> {
    /// The kind of the resource patched.
    pub kind: ResourceKind,
    /// Its resource type.
    pub schema: &'a ResourceSchema,
    /// The request.
    pub request: &'a PatchRequest,
    /// How the request is interpreted and its result validated.
    pub settings: &'a PatchSettings,
    /// How the backend prepares a validated document.
    pub prepare: Prepare,
    /// What the patched resource may hold ([`ResourceSchemas::limits`]).
    pub limits: ResourceLimits,
}

/// How a PATCH is applied ([`Patching::plan`]).
#[derive(Debug, Clone, PartialEq)]
pub enum PatchPlan {
    /// To the stored document ([`Patching::document`]): a User, whose document is all of it.
    Document,
    /// As a membership delta plus the other operations on the Group's document, which holds
    /// no members ([`Patching::members`]).
    Members(MembersPatch),
    /// An operation reads the members (e.g. a filter on `display`): load the Group with its
    /// members and apply the whole request to it ([`Patching::whole_group`]).
    LoadGroup,
}

/// What a document PATCH writes.
// Returned once per PATCH and matched at once: boxing the replacement would cost an allocation
// on the hot path to save a few hundred bytes of stack.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum DocumentPatch {
    /// Nothing changed (validation may have normalised the change away, e.g. a readOnly
    /// attribute): no write, no version, no event.
    Unchanged,
    /// Write this document (body, index entries, and for a whole Group its member list) as the
    /// next version.
    Replace(Prepared),
}

/// A Group PATCH planned as a membership delta (see [`scim_patch::plan_group_patch`]).
#[derive(Debug, Clone, PartialEq)]
pub struct MembersPatch {
    /// What happens to `members`.
    pub delta: MembershipDelta,
    /// The operations on the other attributes.
    pub rest: PatchRequest,
}

impl MembersPatch {
    /// What the delta needs loaded: the members its preconditions name, the ids it adds,
    /// removes or sets, and for a new complete list the current member rows.
    pub fn loads(&self) -> MemberLoads<'_> {
        let delta = &self.delta;
        let present_among = delta
            .preconditions
            .iter()
            .flat_map(|c| c.any_of.iter().map(String::as_str))
            .collect();
        let (resolve, current) = match &delta.replace_all {
            Some(all) => (all.iter().map(|m| m.value.as_str()).collect(), true),
            None => (
                delta
                    .remove
                    .iter()
                    .map(String::as_str)
                    .chain(delta.add.iter().map(|m| m.value.as_str()))
                    .collect(),
                false,
            ),
        };
        MemberLoads {
            present_among,
            resolve,
            current,
        }
    }
}

/// What a Group PATCH planned as a membership delta writes.
#[derive(Debug, Clone, PartialEq)]
pub struct MembersWrites {
    /// The Group's new document, if its body changes.
    pub body: Option<Prepared>,
    /// The membership rows to change.
    pub members: MembershipChange,
    /// Whether the Group is renamed ([`renames_group`]).
    pub renames: bool,
}

/// How a write moves the version of the resource it writes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum VersionWrite<'a> {
    /// Write this body as the next version.
    Update(&'a Prepared),
    /// Only the membership rows changed: the next version with the body as stored.
    Touch,
    /// Nothing changed: no version, no event.
    Unchanged,
}

impl MembersWrites {
    /// Whether anything may change: if not, the backend neither watches nor writes.
    pub fn is_empty(&self) -> bool {
        self.body.is_none() && self.members.is_empty()
    }

    /// How the version moves, once the backend has written the membership rows and knows
    /// whether any row was actually added or removed (`rows_changed`: a member added who was
    /// already one, or removed who was not, changes nothing).
    pub fn version_write(&self, rows_changed: bool) -> VersionWrite<'_> {
        match (&self.body, rows_changed) {
            (Some(body), _) => VersionWrite::Update(body),
            (None, true) => VersionWrite::Touch,
            (None, false) => VersionWrite::Unchanged,
        }
    }
}

impl Patching<'_> {
    /// Whether applying the request to a stored document of `stored_bytes` is heavy work (tens
    /// of milliseconds in a release build at the resource limits): a backend then runs it where
    /// it holds up no other request (off an async runtime's worker, whose queued tasks would
    /// wait for it), and never where other tenants' writes wait (a shared writer, a lock).
    pub fn is_heavy(&self, stored_bytes: usize) -> bool {
        fn weight(value: &Value) -> usize {
            match value {
                Value::Array(items) => items.iter().map(weight).sum::<usize>() + 1,
                Value::Object(members) => members.values().map(weight).sum::<usize>() + 1,
                _ => 1,
            }
        }
        stored_bytes > HEAVY_PATCH_BYTES
            || self
                .request
                .operations
                .iter()
                .filter_map(|op| op.value.as_ref())
                .map(weight)
                .sum::<usize>()
                > HEAVY_PATCH_VALUES
    }

    /// How the request is applied: a Group's is planned as a membership delta where it can be,
    /// so that adding or removing k members costs O(k) whatever the group's size.
    pub fn plan(&self) -> Result<PatchPlan> {
        if self.kind != ResourceKind::Group {
            return Ok(PatchPlan::Document);
        }
        Ok(
            match scim_patch::plan_group_patch(self.request, self.schema, &self.settings.patch)? {
                GroupPatchPlan::Delta { members, rest } => PatchPlan::Members(MembersPatch {
                    delta: members,
                    rest,
                }),
                GroupPatchPlan::NeedsMembers { .. } => PatchPlan::LoadGroup,
            },
        )
    }

    /// Applies the request to the stored document ([`PatchPlan::Document`]).
    pub fn document(&self, stored: &Value) -> Result<DocumentPatch> {
        Ok(match self.apply(stored, self.request)? {
            Some(prepared) if document::body_of(stored) != prepared.body => {
                DocumentPatch::Replace(prepared)
            }
            _ => DocumentPatch::Unchanged,
        })
    }

    /// Applies the request to the Group `full`, loaded with its members
    /// ([`PatchPlan::LoadGroup`]). A replacement is then decided by [`replace`], which compares
    /// the members too.
    pub fn whole_group(&self, full: &Value) -> Result<DocumentPatch> {
        Ok(match self.apply(full, self.request)? {
            Some(prepared) => DocumentPatch::Replace(prepared),
            None => DocumentPatch::Unchanged,
        })
    }

    /// Decides a Group PATCH planned as a membership delta, for the Group stored as `stored`
    /// at row `row`, with what [`MembersPatch::loads`] asked loaded. In this order: the
    /// preconditions (strict mode's `noTarget`, RFC 7644 section 3.12), the other operations
    /// on the body (a failing one leaves the members untouched), the members (each must
    /// exist).
    pub fn members(
        &self,
        plan: &MembersPatch,
        stored: &Value,
        row: RowKey,
        loaded: &MemberRows,
    ) -> Result<MembersWrites> {
        let delta = &plan.delta;
        delta.check_preconditions(|id| {
            loaded.present.iter().any(|found| {
                if delta.ids_case_exact {
                    found == id
                } else {
                    fold_case(found) == fold_case(id)
                }
            })
        })?;
        let body = if plan.rest.operations.is_empty() {
            None
        } else {
            self.apply(stored, &plan.rest)?
                .filter(|prepared| document::body_of(stored) != prepared.body)
        };
        let members = match &delta.replace_all {
            Some(all) => {
                let wanted = resolve_members(
                    all.iter().map(|m| m.value.as_str()),
                    &loaded.rows,
                    Some(row),
                )?;
                MembershipChange::between(&loaded.current, wanted)
            }
            None => {
                let add = resolve_members(
                    delta.add.iter().map(|m| m.value.as_str()),
                    &loaded.rows,
                    Some(row),
                )?;
                // Removing an id that names no resource removes nothing. A member both
                // removed and added keeps its row.
                let mut skip: HashSet<RowKey> = add.iter().copied().collect();
                let remove = delta
                    .remove
                    .iter()
                    .filter_map(|id| loaded.rows.get(fold_case(id).as_ref()).copied())
                    .filter(|row| skip.insert(*row))
                    .collect();
                MembershipChange { add, remove }
            }
        };
        let renames = body
            .as_ref()
            .is_some_and(|prepared| renames_group(stored, &prepared.body));
        Ok(MembersWrites {
            body,
            members,
            renames,
        })
    }

    /// Applies `request` to `stored`, validates the result as a replacement of it (RFC 7644
    /// section 3.5.2: the result must be a valid resource) and prepares it; `None` if the
    /// request changed nothing.
    ///
    /// Values of attributes the schema no longer defines (a tenant's custom attribute that
    /// its operator removed) are set aside first, so that strict validation does not refuse
    /// every later PATCH of the resource, and put back after: they stay stored, unserved.
    fn apply(&self, stored: &Value, request: &PatchRequest) -> Result<Option<Prepared>> {
        let split = match self.settings.validation.unknown_attributes {
            UnknownAttributes::Keep => None,
            _ => scim_schema::split_unknown(stored, self.schema),
        };
        let (stored, leftovers) = match &split {
            Some((known, leftovers)) => (known, Some(leftovers)),
            None => (stored, None),
        };
        let outcome = scim_patch::apply(stored, self.schema, request, &self.settings.patch)?;
        if !outcome.changed {
            return Ok(None);
        }
        let mut validated = scim_schema::validate::for_replace(
            self.schema,
            &outcome.resource,
            stored,
            &self.settings.validation,
        )?;
        if let Some(leftovers) = leftovers {
            leftovers.clone().restore(&mut validated);
        }
        let prepared = (self.prepare)(self.kind, self.schema, validated)?;
        self.limits.check(&prepared)?;
        Ok(Some(prepared))
    }
}

// ---- import ---------------------------------------------------------------------------------

/// Checks an imported id: a non-empty string without control characters, at most 255 bytes.
pub fn check_imported_id(id: &str) -> Result<()> {
    if id.is_empty() || id.len() > 255 || id.chars().any(char::is_control) {
        return Err(StoreError::Invalid {
            scim_type: ScimType::InvalidValue,
            detail: format!("imported id {id:?} must be 1 to 255 bytes without control characters"),
        });
    }
    Ok(())
}

/// Prepares the documents of an import, before any transaction opens: each keeps its `id`
/// (checked by [`check_imported_id`]) or gets a new one, and is prepared by `prepare` (the
/// backend's preparation for the import's kind). Errors name the document's position.
pub fn prepare_import(
    documents: Vec<Value>,
    mut prepare: impl FnMut(Value) -> Result<Prepared>,
) -> Result<Vec<(String, Prepared)>> {
    let mut prepared = Vec::with_capacity(documents.len());
    for (i, document) in documents.into_iter().enumerate() {
        let id = match document.get("id") {
            None | Some(Value::Null) => document::new_resource_id(),
            Some(Value::String(id)) => {
                check_imported_id(id)?;
                id.clone()
            }
            Some(_) => {
                return Err(StoreError::invalid_value(format!(
                    "document {i}: id must be a string"
                )));
            }
        };
        let p = prepare(document).map_err(|e| match e {
            StoreError::Invalid { scim_type, detail } => StoreError::Invalid {
                scim_type,
                detail: format!("document {i}: {detail}"),
            },
            other => other,
        })?;
        prepared.push((id, p));
    }
    Ok(prepared)
}

/// Refuses an import whose documents collide with each other (ids, userNames, unique values),
/// before anything is written.
pub fn check_import_duplicates(prepared: &[(String, Prepared)]) -> Result<()> {
    let mut ids = HashSet::with_capacity(prepared.len());
    let mut names = HashSet::with_capacity(prepared.len());
    let mut uniques = HashSet::new();
    for (id, p) in prepared {
        if !ids.insert(fold_case(id).into_owned()) {
            return Err(StoreError::Uniqueness {
                attribute: "id".into(),
                value: id.clone(),
            });
        }
        if let (Some(fold), Some(raw)) = (&p.index.user_name_fold, &p.index.user_name) {
            if !names.insert(fold.as_str()) {
                return Err(StoreError::Uniqueness {
                    attribute: "userName".into(),
                    value: raw.clone(),
                });
            }
        }
        for unique in &p.index.unique {
            if !uniques.insert((unique.attribute.as_str(), unique.key.as_str())) {
                return Err(StoreError::Uniqueness {
                    attribute: unique.attribute.clone(),
                    value: unique.value.clone(),
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use scim_patch::{MembershipPrecondition, PatchOptions};
    use serde_json::json;

    /// Every id of the tests' tenant, by folded id: `a` is row 1, `b` row 2, and so on.
    fn tenant_rows() -> RowsById {
        ["a", "b", "c", "d", "e", "f"]
            .iter()
            .zip(1..)
            .map(|(id, row)| ((*id).to_owned(), row))
            .collect()
    }

    const GROUP_ROW: RowKey = 100;

    fn group_doc(display_name: &str, members: &[&str]) -> Value {
        let mut doc = json!({
            "schemas": [scim_schema::core::GROUP],
            "id": "g",
            "displayName": display_name,
        });
        if !members.is_empty() {
            doc["members"] = members.iter().map(|id| json!({"value": id})).collect();
        }
        doc
    }

    fn prepared_group(display_name: &str, members: Option<&[&str]>) -> Prepared {
        let mut doc = group_doc(display_name, members.unwrap_or_default());
        if members == Some(&[]) {
            doc["members"] = json!([]);
        }
        let mut prepared =
            document::prepare(ResourceKind::Group, &scim_schema::core::group(), doc).unwrap();
        prepared.members = members.map(|ids| ids.iter().map(|id| (*id).to_owned()).collect());
        prepared
    }

    fn request(operations: Value) -> PatchRequest {
        PatchRequest::from_value(
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": operations,
            }),
            &PatchOptions::default(),
        )
        .unwrap()
    }

    fn patching<'a>(
        kind: ResourceKind,
        schema: &'a ResourceSchema,
        request: &'a PatchRequest,
        settings: &'a PatchSettings,
    ) -> Patching<'a> {
        Patching {
            kind,
            schema,
            request,
            settings,
            prepare: document::prepare,
            limits: ResourceLimits::default(),
        }
    }

    #[test]
    fn members_resolve_in_order_without_repeats_and_case_insensitively() {
        let rows = tenant_rows();
        let resolved = resolve_members(["c", "A", "a", "b"], &rows, None).unwrap();
        assert_eq!(resolved, [3, 1, 2]);
    }

    #[test]
    fn an_unknown_member_or_the_group_itself_is_refused() {
        let rows = tenant_rows();
        let unknown = resolve_members(["a", "zz"], &rows, None).unwrap_err();
        assert!(
            unknown.to_string().contains("\"zz\" is not the id"),
            "{unknown}"
        );
        let itself = resolve_members(["b"], &rows, Some(2)).unwrap_err();
        assert!(itself.to_string().contains("member of itself"), "{itself}");
    }

    #[test]
    fn a_membership_change_turns_current_into_wanted() {
        let change = MembershipChange::between(&[1, 2, 3], vec![3, 4, 1]);
        assert_eq!(change.add, [4]);
        assert_eq!(change.remove, [2]);
        assert!(MembershipChange::between(&[1, 2], vec![2, 1]).is_empty());
    }

    #[test]
    fn a_replacement_with_the_same_body_and_members_is_unchanged() {
        let stored = group_doc("Tour Leads", &[]);
        let prepared = prepared_group("Tour Leads", Some(&["a", "B"]));
        let loads = replace_loads(&prepared);
        assert_eq!(loads.resolve, ["a", "B"]);
        assert!(loads.current);
        let loaded = MemberRows {
            rows: tenant_rows(),
            current: vec![2, 1],
            ..MemberRows::default()
        };
        let plan = replace(&stored, GROUP_ROW, &prepared, &loaded).unwrap();
        assert_eq!(plan, ReplacePlan::Unchanged);
    }

    #[test]
    fn a_replacement_says_which_rows_change_and_whether_the_group_is_renamed() {
        let stored = group_doc("Tour Leads", &[]);
        let loaded = MemberRows {
            rows: tenant_rows(),
            current: vec![1, 2],
            ..MemberRows::default()
        };
        let prepared = prepared_group("Guides", Some(&["b", "c"]));
        let plan = replace(&stored, GROUP_ROW, &prepared, &loaded).unwrap();
        assert_eq!(
            plan,
            ReplacePlan::Write {
                members: MembershipChange {
                    add: vec![3],
                    remove: vec![1],
                },
                renames: true,
            }
        );
        // A User (no member list) needs nothing loaded; only its body is compared.
        let user = document::prepare(
            ResourceKind::User,
            &scim_schema::core::user(),
            json!({"schemas": [scim_schema::core::USER], "userName": "bjensen"}),
        )
        .unwrap();
        assert_eq!(replace_loads(&user), MemberLoads::default());
        let stored =
            json!({"schemas": [scim_schema::core::USER], "id": "u", "userName": "bjensen"});
        let same = replace(&stored, 1, &user, &MemberRows::default()).unwrap();
        assert_eq!(same, ReplacePlan::Unchanged);
    }

    #[test]
    fn the_next_version_moves_the_version_and_last_modified_only() {
        let created = document::from_nanos(1_000_000_000_000_000_000);
        let at = document::from_nanos(1_100_000_000_000_000_000);
        let body = document::body_of(&group_doc("G", &[]));
        let next = next_version(
            ResourceKind::Group,
            "g",
            4,
            document::to_nanos(created),
            at,
            &body,
        );
        assert_eq!(next.version, 5);
        assert_eq!(
            next.document,
            document::assemble(ResourceKind::Group, "g", 5, created, at, &body, None)
        );
    }

    #[test]
    fn a_patch_is_heavy_for_a_large_document_or_many_values() {
        let schema = scim_schema::core::user();
        let settings = PatchSettings::default();
        let few = request(json!([{"op": "add", "path": "emails", "value": [{"value": "a@x"}]}]));
        let emails: Vec<Value> = (0..HEAVY_PATCH_VALUES)
            .map(|i| json!({"value": format!("{i}@x")}))
            .collect();
        let many = request(json!([{"op": "add", "value": {"emails": emails}}]));
        let light = patching(ResourceKind::User, &schema, &few, &settings);
        assert!(!light.is_heavy(1_000));
        assert!(light.is_heavy(HEAVY_PATCH_BYTES + 1));
        assert!(patching(ResourceKind::User, &schema, &many, &settings).is_heavy(1_000));
    }

    #[test]
    fn a_user_patch_is_a_document_patch_and_a_no_op_is_unchanged() {
        let schema = scim_schema::core::user();
        let settings = PatchSettings::default();
        let stored = json!({"schemas": [scim_schema::core::USER], "id": "u", "userName": "bjensen", "active": true});
        let same = request(json!([{"op": "replace", "path": "active", "value": true}]));
        let plan = patching(ResourceKind::User, &schema, &same, &settings);
        assert_eq!(plan.plan().unwrap(), PatchPlan::Document);
        assert_eq!(plan.document(&stored).unwrap(), DocumentPatch::Unchanged);
        let off = request(json!([{"op": "replace", "path": "active", "value": false}]));
        let DocumentPatch::Replace(prepared) =
            patching(ResourceKind::User, &schema, &off, &settings)
                .document(&stored)
                .unwrap()
        else {
            panic!("active changed")
        };
        assert_eq!(prepared.body["active"], json!(false));
        assert_eq!(prepared.index.active, Some(false));
    }

    #[test]
    fn a_patch_that_reads_the_members_loads_the_group() {
        let schema = scim_schema::core::group();
        let settings = PatchSettings::default();
        let by_display = request(json!([
            {"op": "remove", "path": "members[display eq \"Babs\"]"}
        ]));
        let plan = patching(ResourceKind::Group, &schema, &by_display, &settings);
        assert_eq!(plan.plan().unwrap(), PatchPlan::LoadGroup);
        let full = json!({
            "schemas": [scim_schema::core::GROUP], "id": "g", "displayName": "G",
            "members": [{"value": "a", "display": "Babs"}, {"value": "b", "display": "Kim"}],
        });
        let DocumentPatch::Replace(prepared) = plan.whole_group(&full).unwrap() else {
            panic!("a member was removed")
        };
        assert_eq!(prepared.members, Some(vec!["b".to_owned()]));
    }

    #[test]
    fn a_delta_patch_asks_for_what_it_names_and_keeps_a_member_removed_and_added_back() {
        let schema = scim_schema::core::group();
        let settings = PatchSettings::default();
        let ops = request(json!([
            {"op": "remove", "path": "members", "value": [{"value": "a"}, {"value": "zz"}]},
            {"op": "add", "path": "members", "value": [{"value": "A"}, {"value": "c"}]},
            {"op": "replace", "path": "displayName", "value": "Guides"},
        ]));
        let patching = patching(ResourceKind::Group, &schema, &ops, &settings);
        let PatchPlan::Members(plan) = patching.plan().unwrap() else {
            panic!("plannable")
        };
        let loads = plan.loads();
        assert_eq!(loads.resolve, ["a", "zz", "A", "c"]);
        assert!(loads.present_among.is_empty() && !loads.current);
        let loaded = MemberRows {
            rows: tenant_rows(),
            ..MemberRows::default()
        };
        let stored = group_doc("Tour Leads", &[]);
        let writes = patching
            .members(&plan, &stored, GROUP_ROW, &loaded)
            .unwrap();
        // "zz" names nothing: removing it removes nothing; "a" is added back, so kept.
        assert_eq!(
            writes.members,
            MembershipChange {
                add: vec![1, 3],
                remove: vec![],
            }
        );
        assert!(writes.renames);
        let body = writes.body.as_ref().expect("renamed");
        assert_eq!(body.body["displayName"], json!("Guides"));
        assert_eq!(writes.version_write(false), VersionWrite::Update(body));
    }

    #[test]
    fn a_members_only_patch_touches_the_version_only_if_a_row_changed() {
        let writes = MembersWrites {
            body: None,
            members: MembershipChange {
                add: vec![1],
                remove: vec![],
            },
            renames: false,
        };
        assert!(!writes.is_empty());
        assert_eq!(writes.version_write(true), VersionWrite::Touch);
        assert_eq!(writes.version_write(false), VersionWrite::Unchanged);
    }

    #[test]
    fn preconditions_are_checked_against_the_present_members_before_the_body() {
        let schema = scim_schema::core::group();
        let settings = PatchSettings {
            patch: PatchOptions::strict(),
            ..PatchSettings::default()
        };
        let plan = MembersPatch {
            delta: MembershipDelta {
                remove: vec!["B".into()],
                preconditions: vec![MembershipPrecondition {
                    operation: 0,
                    path: "members[value eq \"B\"]".into(),
                    any_of: vec!["B".into()],
                }],
                ..MembershipDelta::default()
            },
            // Would fail if applied: the preconditions come first.
            rest: request(json!([{"op": "replace", "path": "id", "value": "x"}])),
        };
        let empty = PatchRequest { operations: vec![] };
        let patching = patching(ResourceKind::Group, &schema, &empty, &settings);
        assert_eq!(plan.loads().present_among, ["B"]);
        let stored = group_doc("G", &[]);
        let absent = MemberRows {
            rows: tenant_rows(),
            present: vec![],
            ..MemberRows::default()
        };
        let err = patching
            .members(&plan, &stored, GROUP_ROW, &absent)
            .unwrap_err();
        assert!(matches!(err, StoreError::Patch(_)), "{err}");
        assert!(err.to_string().contains("noTarget"), "{err}");
        // Present (stored as "b": ids compare folded, caseExact false): the body goes next.
        let present = MemberRows {
            present: vec!["b".into()],
            ..absent
        };
        let plan = MembersPatch {
            rest: PatchRequest { operations: vec![] },
            ..plan
        };
        let writes = patching
            .members(&plan, &stored, GROUP_ROW, &present)
            .unwrap();
        assert_eq!(writes.members.remove, [2]);
    }

    #[test]
    fn imported_ids_are_checked() {
        assert!(check_imported_id("abc-1").is_ok());
        for bad in ["", "a\u{7}b", &"x".repeat(256)] {
            assert!(check_imported_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn an_import_keeps_or_draws_ids_and_names_the_failing_document() {
        let schema = scim_schema::core::user();
        let prepare = |doc| document::prepare(ResourceKind::User, &schema, doc);
        let user = |name: &str| json!({"schemas": [scim_schema::core::USER], "userName": name});
        let mut kept = user("a");
        kept["id"] = json!("u-1");
        let prepared = prepare_import(vec![kept, user("b")], prepare).unwrap();
        assert_eq!(prepared[0].0, "u-1");
        assert!(!prepared[1].0.is_empty());
        let mut numbered = user("c");
        numbered["id"] = json!(7);
        let err = prepare_import(vec![user("a"), numbered], prepare).unwrap_err();
        assert_eq!(err.to_string(), "document 1: id must be a string");
        let err = prepare_import(vec![user("a"), json!({"userName": 3})], prepare).unwrap_err();
        assert!(err.to_string().starts_with("document 1: "), "{err}");
    }

    #[test]
    fn an_import_colliding_with_itself_is_refused() {
        let schema = scim_schema::core::user();
        let user = |name: &str| {
            document::prepare(
                ResourceKind::User,
                &schema,
                json!({"schemas": [scim_schema::core::USER], "userName": name}),
            )
            .unwrap()
        };
        let distinct = [("a".to_owned(), user("x")), ("b".to_owned(), user("y"))];
        assert!(check_import_duplicates(&distinct).is_ok());
        let same_id = [("a".to_owned(), user("x")), ("A".to_owned(), user("y"))];
        let err = check_import_duplicates(&same_id).unwrap_err();
        assert!(
            matches!(&err, StoreError::Uniqueness { attribute, value } if attribute == "id" && value == "A"),
            "{err}"
        );
        let same_name = [("a".to_owned(), user("x")), ("b".to_owned(), user("X"))];
        let err = check_import_duplicates(&same_name).unwrap_err();
        assert!(
            matches!(&err, StoreError::Uniqueness { attribute, value } if attribute == "userName" && value == "X"),
            "{err}"
        );
    }

    // ---- properties ---------------------------------------------------------------------------

    const IDS: [&str; 8] = ["a", "b", "c", "d", "e", "f", "A", "C"];

    fn id() -> impl Strategy<Value = String> {
        proptest::sample::select(&IDS[..]).prop_map(str::to_owned)
    }

    fn values(ids: Vec<String>) -> Value {
        ids.into_iter().map(|id| json!({"value": id})).collect()
    }

    /// Member operations as identity providers send them: each plans as a delta.
    fn member_operation() -> impl Strategy<Value = Value> {
        prop_oneof![
            proptest::collection::vec(id(), 0..4)
                .prop_map(|ids| json!({"op": "add", "path": "members", "value": values(ids)})),
            id().prop_map(
                |id| json!({"op": "remove", "path": format!("members[value eq \"{id}\"]")})
            ),
            proptest::collection::vec(id(), 1..3)
                .prop_map(|ids| json!({"op": "remove", "path": "members", "value": values(ids)})),
            proptest::collection::vec(id(), 0..4)
                .prop_map(|ids| json!({"op": "replace", "path": "members", "value": values(ids)})),
            Just(json!({"op": "remove", "path": "members"})),
            Just(json!({"op": "replace", "path": "displayName", "value": "Renamed"})),
        ]
    }

    fn folded_rows(ids: impl IntoIterator<Item = String>) -> std::collections::BTreeSet<RowKey> {
        let rows = tenant_rows();
        ids.into_iter()
            .map(|id| rows[fold_case(&id).as_ref()])
            .collect()
    }

    proptest! {
        /// The rows a delta plan adds and removes, applied to the group's member rows, give
        /// the members that `scim_patch::apply` gives on the whole group document; and the
        /// requests that fail are the same.
        #[test]
        fn a_delta_plan_applied_to_the_rows_equals_the_patch_applied_to_the_list(
            current in proptest::collection::btree_set(proptest::sample::select(&IDS[..6]), 0..5),
            operations in proptest::collection::vec(member_operation(), 1..5),
            strict in any::<bool>(),
        ) {
            let schema = scim_schema::core::group();
            let settings = PatchSettings {
                patch: if strict { PatchOptions::strict() } else { PatchOptions::lenient() },
                ..PatchSettings::default()
            };
            let Ok(request) = PatchRequest::from_value(
                json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": operations,
                }),
                &settings.patch,
            ) else {
                return Ok(());
            };
            let current: Vec<&str> = current.into_iter().collect();
            let full = group_doc("G", &current);
            let whole = scim_patch::apply(&full, &schema, &request, &settings.patch);

            let patching = patching(ResourceKind::Group, &schema, &request, &settings);
            let current_rows: Vec<RowKey> =
                folded_rows(current.iter().map(|id| (*id).to_owned())).into_iter().collect();
            // Load what the plan asks, from the member list, as a backend would.
            let planned = patching.plan().and_then(|plan| {
                let PatchPlan::Members(plan) = plan else {
                    panic!("every operation here is plannable");
                };
                let loads = plan.loads();
                let present_folds: HashSet<String> =
                    loads.present_among.iter().map(|id| fold_case(id).into_owned()).collect();
                let loaded = MemberRows {
                    present: current
                        .iter()
                        .filter(|id| present_folds.contains(fold_case(id).as_ref()))
                        .map(|id| (*id).to_owned())
                        .collect(),
                    rows: tenant_rows(),
                    current: if loads.current { current_rows.clone() } else { Vec::new() },
                };
                let stored = Value::Object(document::body_of(&full));
                patching.members(&plan, &stored, GROUP_ROW, &loaded)
            });
            match (whole, planned) {
                (Ok(outcome), Ok(writes)) => {
                    let change = &writes.members;
                    prop_assert!(change.add.iter().all(|row| !change.remove.contains(row)));
                    let mut rows: std::collections::BTreeSet<RowKey> = current_rows.into_iter().collect();
                    for row in &change.remove {
                        rows.remove(row);
                    }
                    rows.extend(change.add.iter().copied());
                    let expected = folded_rows(
                        outcome.resource["members"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .map(|m| m["value"].as_str().unwrap_or_default().to_owned()),
                    );
                    prop_assert_eq!(rows, expected);
                    prop_assert_eq!(
                        writes.body.is_some(),
                        outcome.resource.get("displayName") != full.get("displayName")
                    );
                }
                (Err(_), Err(_)) => {}
                (whole, planned) => {
                    return Err(TestCaseError::fail(format!(
                        "apply gave {whole:?}, the plan {planned:?}"
                    )));
                }
            }
        }

        /// A membership change between two member lists, applied to the first, gives the
        /// second, and names each row at most once.
        #[test]
        fn a_change_between_two_lists_turns_one_into_the_other(
            current in proptest::collection::btree_set(0i64..20, 0..10),
            wanted in proptest::collection::vec(0i64..20, 0..10),
        ) {
            let current: Vec<RowKey> = current.into_iter().collect();
            let mut seen = HashSet::new();
            let wanted: Vec<RowKey> = wanted.into_iter().filter(|r| seen.insert(*r)).collect();
            let change = MembershipChange::between(&current, wanted.clone());
            let mut rows: HashSet<RowKey> = current.iter().copied().collect();
            for row in &change.remove {
                prop_assert!(rows.remove(row));
            }
            for row in &change.add {
                prop_assert!(rows.insert(*row));
            }
            prop_assert_eq!(rows, wanted.into_iter().collect::<HashSet<_>>());
        }
    }
}
