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

use crate::document::{self, Prepared};
use crate::error::{Result, StoreError};
use crate::types::{PatchSettings, ResourceKind};
use scim_patch::{GroupPatchPlan, MembershipDelta, PatchRequest};
use scim_schema::{DateTime, ResourceSchema, ScimType, fold_case};
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
    fn apply(&self, stored: &Value, request: &PatchRequest) -> Result<Option<Prepared>> {
        let outcome = scim_patch::apply(stored, self.schema, request, &self.settings.patch)?;
        if !outcome.changed {
            return Ok(None);
        }
        let validated = scim_schema::validate::for_replace(
            self.schema,
            &outcome.resource,
            stored,
            &self.settings.validation,
        )?;
        (self.prepare)(self.kind, self.schema, validated).map(Some)
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
