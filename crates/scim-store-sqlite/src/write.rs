//! Directory writes (resources, tenants, tokens): each either succeeds entirely or leaves
//! neither data nor an event. A write about people calls `cascade.rs` before and after its own
//! change; every write appends its event through `feed.rs`.
//!
//! Here: run on the writer connection inside the current batch's transaction (see
//! [`super::conn::Writer`]). Each function either succeeds entirely or returns an error, and
//! the writer rolls its savepoint back: a failed write leaves neither data nor an event.

use super::cascade::{self, Watched};
use super::feed::{append_event, version_sql};
use super::read::{self, StoredRow, ensure_tenant, nanos};
use super::workplace::WorkplaceEnv;
use crate::conn::SqlResult;
use rusqlite::{Connection, OptionalExtension, params};
use scim_schema::{DateTime, fold_case};
use scim_store_core::backend::token;
use scim_store_core::document::{self, IndexEntries, Prepared, ValueChanges};
use scim_store_core::plan::directory::{
    self, DocumentPatch, MemberLoads, MemberRows, MembersWrites, MembershipChange, PatchPlan,
    Patching, ReplacePlan, RowsById, VersionWrite,
};
use scim_store_core::{
    ChangeOp, IssuedToken, Members, PatchCall, PatchResult, ResourceKind, StoredResource, Tenant,
    TenantId, TokenScope, WriteContext,
};
use scim_store_core::{Result, StoreError};
use std::collections::HashSet;

pub(crate) fn create_tenant(conn: &Connection, name: &str) -> Result<Tenant> {
    token::check_tenant_name(name)?;
    if read::tenant_by_name(conn, name)?.is_some() {
        return Err(StoreError::TenantExists(name.to_owned()));
    }
    let created = document::now();
    let id: i64 = conn
        .query_row(
            "INSERT INTO tenants (name, created_ns) VALUES (?1, ?2) RETURNING id",
            params![name, nanos(created)],
            |r| r.get(0),
        )
        .sql()?;
    Ok(Tenant {
        id: scim_store_core::backend::tenant_id(id),
        name: name.to_owned(),
        created,
    })
}

pub(crate) fn issue_token(
    conn: &Connection,
    tenant: TenantId,
    label: &str,
    scope: TokenScope,
) -> Result<IssuedToken> {
    ensure_tenant(conn, tenant)?;
    let id = token::new_token_id()?;
    let secret = token::new_secret()?;
    conn.execute(
        "INSERT INTO tokens (id, tenant, label, scope, digest, created_ns) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![id, tenant.key(), label, scope.as_str(), &token::digest(&secret)[..], nanos(document::now())],
    ).sql()?;
    Ok(IssuedToken { id, secret })
}

pub(crate) fn revoke_token(conn: &Connection, tenant: TenantId, token_id: &str) -> Result<bool> {
    let changed = conn.execute(
        "UPDATE tokens SET revoked_ns = ?1 WHERE tenant = ?2 AND id = ?3 AND revoked_ns IS NULL",
        params![nanos(document::now()), tenant.key(), token_id],
    ).sql()?;
    Ok(changed == 1)
}

/// Fails with [`StoreError::Uniqueness`] if another resource (not `own_rid`) of the tenant holds
/// one of the values that must be unique. The unique indexes back this check up, but checking
/// first names the attribute in the error.
fn check_unique(
    conn: &Connection,
    tenant: TenantId,
    kind: ResourceKind,
    index: &IndexEntries,
    own_rid: Option<i64>,
) -> Result<()> {
    let own = own_rid.unwrap_or(-1);
    if let (Some(fold), Some(raw)) = (&index.user_name_fold, &index.user_name) {
        let mut stmt = conn.prepare_cached(
            "SELECT 1 FROM resources WHERE tenant = ?1 AND kind = ?2 AND user_name_fold = ?3 AND rid <> ?4",
        ).sql()?;
        if stmt
            .exists(params![tenant.key(), kind.code(), fold, own])
            .sql()?
        {
            return Err(StoreError::Uniqueness {
                attribute: "userName".into(),
                value: raw.clone(),
            });
        }
    }
    let mut stmt = conn.prepare_cached(
        "SELECT 1 FROM unique_values WHERE tenant = ?1 AND kind = ?2 AND attr = ?3 AND key = ?4 AND rid <> ?5",
    ).sql()?;
    for unique in &index.unique {
        if stmt
            .exists(params![
                tenant.key(),
                kind.code(),
                unique.attribute,
                unique.key,
                own
            ])
            .sql()?
        {
            return Err(StoreError::Uniqueness {
                attribute: unique.attribute.clone(),
                value: unique.value.clone(),
            });
        }
    }
    Ok(())
}

/// The side-table rows of resource `rid` now: what [`ValueChanges::between`] diffs against.
pub(crate) fn stored_values(conn: &Connection, rid: i64) -> Result<Vec<(String, String)>> {
    let mut stmt = conn
        .prepare_cached("SELECT attr, value_fold FROM resource_values WHERE rid = ?1")
        .sql()?;
    stmt.query_map([rid], |r| Ok((r.get(0)?, r.get(1)?)))
        .sql()?
        .collect::<rusqlite::Result<_>>()
        .sql()
}

/// Writes the side-table entries of resource `rid`: `changes` to its value rows (see
/// [`ValueChanges`]), and its unique values anew.
fn write_index(
    conn: &Connection,
    tenant: TenantId,
    kind: ResourceKind,
    rid: i64,
    index: &IndexEntries,
    changes: &ValueChanges,
    fresh: bool,
) -> Result<()> {
    if !fresh {
        conn.prepare_cached("DELETE FROM unique_values WHERE rid = ?1")
            .sql()?
            .execute([rid])
            .sql()?;
    }
    if !changes.removed.is_empty() {
        let mut delete_value = conn
            .prepare_cached(
                "DELETE FROM resource_values \
                 WHERE tenant = ?1 AND kind = ?2 AND attr = ?3 AND value_fold = ?4 AND rid = ?5",
            )
            .sql()?;
        for (attr, fold) in &changes.removed {
            delete_value
                .execute(params![tenant.key(), kind.code(), attr, fold, rid])
                .sql()?;
        }
    }
    if !changes.added.is_empty() {
        let mut insert_value = conn.prepare_cached(
            "INSERT OR IGNORE INTO resource_values (tenant, kind, attr, value_fold, rid) VALUES (?1, ?2, ?3, ?4, ?5)",
        ).sql()?;
        for (attr, fold) in &changes.added {
            insert_value
                .execute(params![tenant.key(), kind.code(), attr, fold, rid])
                .sql()?;
        }
    }
    if !changes.is_empty() {
        note_trigram_change(conn, rid, fresh)?;
    }
    let mut insert_unique = conn
        .prepare_cached(
            "INSERT INTO unique_values (tenant, kind, attr, key, rid) VALUES (?1, ?2, ?3, ?4, ?5)",
        )
        .sql()?;
    for unique in &index.unique {
        insert_unique
            .execute(params![
                tenant.key(),
                kind.code(),
                unique.attribute,
                unique.key,
                rid
            ])
            .sql()?;
    }
    Ok(())
}

/// The temporary table of the resources whose side-table values changed in the writer's
/// current batch; [`flush_trigrams`] brings the trigram index up to date from it. `fresh`:
/// the resource was created in this batch and nothing else happened to it, so the index cannot
/// hold it yet (a `rid` is never reused).
pub(crate) const TRIGRAM_CHANGES: &str = "CREATE TEMP TABLE IF NOT EXISTS trigram_changes \
     (rid INTEGER PRIMARY KEY, fresh INTEGER NOT NULL)";

/// Notes that resource `rid`'s side-table values changed. The trigram index is not written
/// here: FTS5 writes its pending entries to disk at every statement savepoint, so one insert
/// per write would make one tiny index segment per write (and merge them); the writer updates
/// it once per batch instead ([`flush_trigrams`]), and this note rolls back with its write.
fn note_trigram_change(conn: &Connection, rid: i64, fresh: bool) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO temp.trigram_changes (rid, fresh) VALUES (?1, ?2) \
         ON CONFLICT (rid) DO UPDATE SET fresh = fresh AND excluded.fresh",
    )
    .sql()?
    .execute(params![rid, fresh])
    .sql()?;
    Ok(())
}

/// Brings the trigram index up to date for the resources noted in this batch, in the batch's
/// transaction (before its COMMIT, so the index never disagrees with committed values).
pub(crate) fn flush_trigrams(conn: &Connection) -> Result<()> {
    let pending = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM temp.trigram_changes)")
        .sql()?
        .query_row([], |r| r.get::<_, bool>(0))
        .sql()?;
    if !pending {
        return Ok(());
    }
    for sql in [
        // Deleting a rowid the index does not hold would be harmless, but not free: FTS5
        // records a tombstone for it. Resources created in this batch are not looked for.
        "DELETE FROM value_trigrams WHERE rowid IN \
         (SELECT rid FROM temp.trigram_changes WHERE NOT fresh)",
        "INSERT INTO value_trigrams (rowid, v) \
         SELECT v.rid, group_concat(v.value_fold, char(10)) FROM resource_values v \
         WHERE v.rid IN (SELECT rid FROM temp.trigram_changes) GROUP BY v.rid",
        "DELETE FROM temp.trigram_changes",
    ] {
        conn.prepare_cached(sql).sql()?.execute([]).sql()?;
    }
    Ok(())
}

/// The resources of the tenant named by `ids` (compared folded: `members.value` is caseExact
/// false, RFC 7643 section 4.2), one query per id; unknown ids are left out.
fn rids_by_id<'i>(
    conn: &Connection,
    tenant: TenantId,
    ids: impl IntoIterator<Item = &'i str>,
) -> Result<RowsById> {
    let mut stmt = conn
        .prepare_cached("SELECT rid FROM resources WHERE tenant = ?1 AND id_fold = ?2")
        .sql()?;
    let mut rows = RowsById::new();
    for id in ids {
        let fold = fold_case(id);
        if rows.contains_key(fold.as_ref()) {
            continue;
        }
        if let Some(rid) = stmt
            .query_row(params![tenant.key(), fold], |r| r.get(0))
            .optional()
            .sql()?
        {
            rows.insert(fold.into_owned(), rid);
        }
    }
    Ok(rows)
}

/// Loads what a directory plan asks about the members of group `group_rid`.
fn load_members(
    conn: &Connection,
    tenant: TenantId,
    group_rid: i64,
    loads: &MemberLoads<'_>,
) -> Result<MemberRows> {
    let mut loaded = MemberRows::default();
    if !loads.present_among.is_empty() {
        let mut stmt = conn
            .prepare_cached(
                "SELECT x.id FROM members m JOIN resources x ON x.rid = m.member_rid \
                 WHERE m.group_rid = ?1 AND x.id_fold = ?2",
            )
            .sql()?;
        let mut asked = HashSet::with_capacity(loads.present_among.len());
        for id in &loads.present_among {
            let fold = fold_case(id);
            if !asked.insert(fold.clone()) {
                continue;
            }
            let found = stmt
                .query_map(params![group_rid, fold], |r| r.get::<_, String>(0))
                .sql()?;
            for id in found {
                loaded.present.push(id.sql()?);
            }
        }
    }
    if !loads.resolve.is_empty() {
        loaded.rows = rids_by_id(conn, tenant, loads.resolve.iter().copied())?;
    }
    if loads.current {
        loaded.current = member_rids(conn, group_rid)?;
    }
    Ok(loaded)
}

/// Adds membership rows; rows already there are left alone. Each new row gets the member's
/// next `joined_seq`, so a User's `groups` list the groups in the order it joined them (the
/// first is the person's primary team, issue 7).
pub(crate) fn add_members(conn: &Connection, group_rid: i64, member_rids: &[i64]) -> Result<usize> {
    let mut insert = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO members (group_rid, member_rid, joined_seq) VALUES (?1, ?2, \
         (SELECT coalesce(max(joined_seq), 0) + 1 FROM members WHERE member_rid = ?2))",
        )
        .sql()?;
    let mut added = 0;
    for rid in member_rids {
        added += insert.execute(params![group_rid, rid]).sql()?;
    }
    Ok(added)
}

/// Removes membership rows; absent rows are ignored.
pub(crate) fn remove_members(
    conn: &Connection,
    group_rid: i64,
    member_rids: &[i64],
) -> Result<usize> {
    let mut delete = conn
        .prepare_cached("DELETE FROM members WHERE group_rid = ?1 AND member_rid = ?2")
        .sql()?;
    let mut removed = 0;
    for rid in member_rids {
        removed += delete.execute([group_rid, *rid]).sql()?;
    }
    Ok(removed)
}

fn member_rids(conn: &Connection, group_rid: i64) -> Result<Vec<i64>> {
    let mut stmt = conn
        .prepare_cached("SELECT member_rid FROM members WHERE group_rid = ?1")
        .sql()?;
    let rows = stmt.query_map([group_rid], |r| r.get(0)).sql()?;
    rows.collect::<rusqlite::Result<_>>().sql()
}

/// Whom an insert watches for cascades.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InsertWatch {
    /// Nobody: the tenant holds nothing in the workplace.
    Nobody,
    /// A new Group's members. A created User is not looked up: its id was just drawn by the
    /// store, so nothing can be held under it.
    Members,
    /// The members, and the created User too (an imported id may have been a person's).
    MembersAndSelf,
}

/// Inserts a new resource at `at`; returns its rid. `id` is the store's UUID, or an imported
/// id. As `watch` says, a Group's members who hold anything in the workplace are watched
/// across the insert (their `groups` change), and an imported User who does (the id may have
/// been a person's before): their cascades run after the event, in the same savepoint.
#[allow(clippy::too_many_arguments)]
pub(crate) fn insert_resource(
    conn: &Connection,
    env: &WorkplaceEnv,
    tenant: TenantId,
    kind: ResourceKind,
    id: &str,
    prepared: &Prepared,
    at: DateTime,
    watch: InsertWatch,
    ctx: &WriteContext,
) -> Result<i64> {
    let id_fold = fold_case(id);
    let mut taken = conn
        .prepare_cached("SELECT 1 FROM resources WHERE tenant = ?1 AND id_fold = ?2")
        .sql()?;
    if taken.exists(params![tenant.key(), id_fold]).sql()? {
        return Err(StoreError::Uniqueness {
            attribute: "id".into(),
            value: id.to_owned(),
        });
    }
    check_unique(conn, tenant, kind, &prepared.index, None)?;
    let member_rids = match &prepared.members {
        Some(ids) => {
            let ids = || ids.iter().map(String::as_str);
            directory::resolve_members(ids(), &rids_by_id(conn, tenant, ids())?, None)?
        }
        None => Vec::new(),
    };
    let now_s = at.unix_seconds;
    let mut watched = if watch != InsertWatch::Nobody {
        cascade::watch_rids(conn, tenant, member_rids.iter().copied(), now_s)?
    } else {
        Vec::new()
    };
    let version = 1;
    let doc = document::assemble(kind, id, version, at, at, &prepared.body, None);
    let doc = serde_json::to_string(&doc).map_err(StoreError::backend)?;
    let index = &prepared.index;
    let mut insert = conn.prepare_cached(
        "INSERT INTO resources (tenant, kind, id, id_fold, version, created_ns, modified_ns, user_name_fold, \
         external_id, display_name_fold, active, doc) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7, ?8, ?9, ?10, ?11) RETURNING rid",
    ).sql()?;
    let rid: i64 = insert
        .query_row(
            params![
                tenant.key(),
                kind.code(),
                id,
                id_fold,
                version_sql(version),
                nanos(at),
                index.user_name_fold,
                index.external_id,
                index.display_name_fold,
                index.active,
                doc
            ],
            |r| r.get(0),
        )
        .sql()?;
    write_index(
        conn,
        tenant,
        kind,
        rid,
        index,
        &ValueChanges::fresh(&index.values),
        true,
    )?;
    add_members(conn, rid, &member_rids)?;
    append_event(conn, tenant, kind, id, ChangeOp::Created, version, at, ctx)?;
    if watch == InsertWatch::MembersAndSelf && kind == ResourceKind::User {
        watched.extend(cascade::watch_created(conn, tenant, rid, id, now_s)?);
    }
    cascade::run(conn, env, tenant, watched, None, at, ctx)?;
    Ok(rid)
}

pub(crate) fn create(
    conn: &Connection,
    env: &WorkplaceEnv,
    tenant: TenantId,
    kind: ResourceKind,
    prepared: &Prepared,
    ctx: &WriteContext,
) -> Result<StoredResource> {
    ensure_tenant(conn, tenant)?;
    let id = scim_store_core::document::new_resource_id();
    let rid = insert_resource(
        conn,
        env,
        tenant,
        kind,
        &id,
        prepared,
        document::now(),
        InsertWatch::Members,
        ctx,
    )?;
    load(conn, rid, Members::Include)
}

/// Loads the served form of resource `rid`.
pub(crate) fn load(conn: &Connection, rid: i64, members: Members) -> Result<StoredResource> {
    let row = read::row_by_rid(conn, rid)?
        .ok_or_else(|| StoreError::backend(format!("resource {rid} vanished")))?;
    read::resource_of(conn, row, members)
}

/// The current row of a resource, checked against the expected version (RFC 7644 section 3.14).
pub(crate) fn current(
    conn: &Connection,
    tenant: TenantId,
    kind: ResourceKind,
    id: &str,
    expected_version: Option<u64>,
) -> Result<StoredRow> {
    checked(
        read::find_row(conn, tenant, kind, id)?,
        kind,
        id,
        expected_version,
    )
}

/// The row found, if at the expected version (`NotFound` or `PreconditionFailed` if not).
pub(crate) fn checked(
    row: Option<StoredRow>,
    kind: ResourceKind,
    id: &str,
    expected_version: Option<u64>,
) -> Result<StoredRow> {
    let row = row.ok_or_else(|| StoreError::NotFound {
        kind,
        id: id.to_owned(),
    })?;
    if let Some(expected) = expected_version {
        if expected != row.version {
            return Err(StoreError::VersionMismatch {
                expected,
                actual: row.version,
            });
        }
    }
    Ok(row)
}

/// Writes a new version of an existing resource at `at`: body, index entries, event. The
/// caller has checked that something changed.
pub(crate) fn update_resource(
    conn: &Connection,
    tenant: TenantId,
    row: &StoredRow,
    prepared: &Prepared,
    op: ChangeOp,
    at: DateTime,
    ctx: &WriteContext,
) -> Result<u64> {
    let next = directory::next_version(
        row.kind,
        &row.id,
        row.version,
        row.created_ns,
        at,
        &prepared.body,
    );
    let doc = serde_json::to_string(&next.document).map_err(StoreError::backend)?;
    let version = NextDocument {
        version: next.version,
        at,
        doc: &doc,
        values: None,
    };
    write_version(conn, tenant, row, prepared, op, &version, ctx)?;
    Ok(next.version)
}

/// The next version of a resource as it is written: its number, its time and its document
/// serialised, made before the writer when the version is known in advance (a PATCH planned
/// on a snapshot).
pub(crate) struct NextDocument<'a> {
    pub version: u64,
    pub at: DateTime,
    pub doc: &'a str,
    /// How its side-table rows change, when known before (from the snapshot the version was
    /// planned on); else they are read and compared in the writer.
    pub values: Option<&'a ValueChanges>,
}

/// Writes `next`, the next version of `row` with `prepared`'s index entries, and its event.
fn write_version(
    conn: &Connection,
    tenant: TenantId,
    row: &StoredRow,
    prepared: &Prepared,
    op: ChangeOp,
    next: &NextDocument<'_>,
    ctx: &WriteContext,
) -> Result<()> {
    check_unique(conn, tenant, row.kind, &prepared.index, Some(row.rid))?;
    let (version, at, doc) = (next.version, next.at, next.doc);
    let index = &prepared.index;
    let mut update = conn.prepare_cached(
        "UPDATE resources SET version = ?2, modified_ns = ?3, user_name_fold = ?4, external_id = ?5, \
         display_name_fold = ?6, active = ?7, doc = ?8 WHERE rid = ?1",
    ).sql()?;
    update
        .execute(params![
            row.rid,
            version_sql(version),
            nanos(at),
            index.user_name_fold,
            index.external_id,
            index.display_name_fold,
            index.active,
            doc
        ])
        .sql()?;
    let changes = match next.values {
        Some(changes) => std::borrow::Cow::Borrowed(changes),
        None => std::borrow::Cow::Owned(ValueChanges::between(
            stored_values(conn, row.rid)?,
            &index.values,
        )),
    };
    write_index(conn, tenant, row.kind, row.rid, index, &changes, false)?;
    append_event(conn, tenant, row.kind, &row.id, op, version, at, ctx)
}

/// Bumps a resource's version and `meta.lastModified` without touching its body or index
/// entries: a Group whose only change is its membership (members are rows, not body).
pub(crate) fn touch_resource(
    conn: &Connection,
    tenant: TenantId,
    row: &StoredRow,
    op: ChangeOp,
    at: DateTime,
    ctx: &WriteContext,
) -> Result<u64> {
    let body = document::body_of(&parse(&row.doc)?);
    let next = directory::next_version(row.kind, &row.id, row.version, row.created_ns, at, &body);
    let version = next.version;
    let doc = serde_json::to_string(&next.document).map_err(StoreError::backend)?;
    conn.prepare_cached(
        "UPDATE resources SET version = ?2, modified_ns = ?3, doc = ?4 WHERE rid = ?1",
    )
    .sql()?
    .execute(params![row.rid, version_sql(version), nanos(at), doc])
    .sql()?;
    append_event(conn, tenant, row.kind, &row.id, op, version, at, ctx)?;
    Ok(version)
}

pub(crate) fn parse(doc: &str) -> Result<serde_json::Value> {
    serde_json::from_str(doc)
        .map_err(|e| StoreError::backend(format!("stored document is invalid JSON: {e}")))
}

#[allow(clippy::too_many_arguments)]
pub(crate) fn replace(
    conn: &Connection,
    env: &WorkplaceEnv,
    tenant: TenantId,
    kind: ResourceKind,
    id: &str,
    prepared: &Prepared,
    expected_version: Option<u64>,
    ctx: &WriteContext,
) -> Result<StoredResource> {
    let row = current(conn, tenant, kind, id, expected_version)?;
    replace_row(
        conn,
        env,
        tenant,
        row,
        prepared,
        ChangeOp::Replaced,
        ctx,
        Members::Include,
    )
}

pub(crate) fn delete(
    conn: &Connection,
    env: &WorkplaceEnv,
    tenant: TenantId,
    kind: ResourceKind,
    id: &str,
    expected_version: Option<u64>,
    ctx: &WriteContext,
) -> Result<()> {
    let row = current(conn, tenant, kind, id, expected_version)?;
    let at = document::now();
    // A deleted User leaves (RFC 7644 section 3.6); a deleted Group leaves its members'
    // `groups`.
    let watched = match kind {
        ResourceKind::User => cascade::watch_leaving(conn, tenant, row.rid, &row.id)?,
        ResourceKind::Group => {
            cascade::watch_group_members(conn, tenant, row.rid, at.unix_seconds)?
        }
    };
    for sql in [
        "DELETE FROM members WHERE group_rid = ?1",
        "DELETE FROM members WHERE member_rid = ?1",
        "DELETE FROM resource_values WHERE rid = ?1",
        "DELETE FROM unique_values WHERE rid = ?1",
        "DELETE FROM resources WHERE rid = ?1",
    ] {
        conn.prepare_cached(sql).sql()?.execute([row.rid]).sql()?;
    }
    note_trigram_change(conn, row.rid, false)?;
    append_event(
        conn,
        tenant,
        kind,
        &row.id,
        ChangeOp::Deleted,
        row.version,
        at,
        ctx,
    )?;
    cascade::run(conn, env, tenant, watched, Some(row.rid), at, ctx)?;
    if kind == ResourceKind::User {
        crate::admin::scrub_leaver(conn, env, tenant, &row.id)?;
    }
    Ok(())
}

/// Writes a User PATCH planned outside the writer on the snapshot `planned` (see
/// `SqliteStore::patch`) as `next`, if the resource is still at the version it was planned
/// on: `false` if another write moved it since (the caller plans again on the new version).
pub(crate) fn write_planned_patch(
    conn: &Connection,
    env: &WorkplaceEnv,
    tenant: TenantId,
    planned: &StoredRow,
    prepared: &Prepared,
    next: &NextDocument<'_>,
    ctx: &WriteContext,
) -> Result<bool> {
    let version: Option<i64> = conn
        .prepare_cached("SELECT version FROM resources WHERE rid = ?1")
        .sql()?
        .query_row([planned.rid], |r| r.get(0))
        .optional()
        .sql()?;
    // Rows are never reused (AUTOINCREMENT): a row gone is the resource deleted.
    let Some(version) = version else {
        return Err(StoreError::NotFound {
            kind: planned.kind,
            id: planned.id.clone(),
        });
    };
    if version != version_sql(planned.version) {
        return Ok(false);
    }
    let at = next.at;
    let watched = cascade::watch_user(conn, tenant, planned.rid, &planned.id, at.unix_seconds)?;
    write_version(
        conn,
        tenant,
        planned,
        prepared,
        ChangeOp::Patched,
        next,
        ctx,
    )?;
    cascade::run(conn, env, tenant, watched, None, at, ctx)?;
    Ok(true)
}

/// PATCH (RFC 7644 section 3.5.2) in the writer's transaction: load, plan
/// ([`scim_store_core::plan::directory`]), write. `None`, writing nothing, when `defer_heavy`
/// and applying it to the stored User would be heavy (`Patching::is_heavy`): that one is
/// planned outside the writer (see `SqliteStore::patch`).
pub(crate) fn patch(
    conn: &Connection,
    env: &WorkplaceEnv,
    patching: &Patching<'_>,
    tenant: TenantId,
    call: PatchCall<'_>,
    ctx: &WriteContext,
    defer_heavy: bool,
) -> Result<Option<PatchResult>> {
    let (kind, members) = (call.kind, call.members);
    let row = current(conn, tenant, kind, call.id, call.expected_version)?;
    let plan = patching.plan()?;
    if defer_heavy && plan == PatchPlan::Document && patching.is_heavy(row.doc.len()) {
        return Ok(None);
    }
    let rid = row.rid;
    let stored = parse(&row.doc)?;
    match plan {
        PatchPlan::Members(plan) => {
            let loaded = load_members(conn, tenant, rid, &plan.loads())?;
            let writes = patching.members(&plan, &stored, rid, &loaded)?;
            patch_group_delta(conn, env, tenant, row, &writes, ctx, members).map(Some)
        }
        PatchPlan::LoadGroup => {
            let full = read::resource_of(conn, row, Members::Include)?.document;
            let DocumentPatch::Replace(prepared) = patching.whole_group(&full)? else {
                return Ok(Some(PatchResult {
                    resource: load(conn, rid, members)?,
                    changed: false,
                }));
            };
            let row = current(conn, tenant, kind, call.id, None)?;
            let before = row.version;
            let resource = replace_row(
                conn,
                env,
                tenant,
                row,
                &prepared,
                ChangeOp::Patched,
                ctx,
                members,
            )?;
            let changed = resource.version != before;
            Ok(Some(PatchResult { resource, changed }))
        }
        PatchPlan::Document => {
            let DocumentPatch::Replace(prepared) = patching.document(&stored)? else {
                return Ok(Some(PatchResult {
                    resource: read::resource_of(conn, row, members)?,
                    changed: false,
                }));
            };
            let at = document::now();
            let watched = cascade::watch_user(conn, tenant, rid, &row.id, at.unix_seconds)?;
            update_resource(conn, tenant, &row, &prepared, ChangeOp::Patched, at, ctx)?;
            cascade::run(conn, env, tenant, watched, None, at, ctx)?;
            Ok(Some(PatchResult {
                resource: load(conn, rid, members)?,
                changed: true,
            }))
        }
    }
}

/// Watches the people a Group write changes, before it: every member if it is renamed, and
/// the members `named` (added or removed), if they hold anything in the workplace.
fn watch_group_write(
    conn: &Connection,
    tenant: TenantId,
    group_rid: i64,
    renames: bool,
    named: impl Iterator<Item = i64>,
    now_s: i64,
) -> Result<Vec<Watched>> {
    let mut watched = if renames {
        cascade::watch_group_members(conn, tenant, group_rid, now_s)?
    } else {
        Vec::new()
    };
    let known: HashSet<i64> = watched.iter().map(Watched::rid).collect();
    let named = named.filter(|rid| !known.contains(rid));
    watched.extend(cascade::watch_rids(conn, tenant, named, now_s)?);
    Ok(watched)
}

/// Writes `prepared` (with its member list) over `row`, as a replacement does; returns the
/// resource (unchanged if nothing differed).
#[allow(clippy::too_many_arguments)]
fn replace_row(
    conn: &Connection,
    env: &WorkplaceEnv,
    tenant: TenantId,
    row: StoredRow,
    prepared: &Prepared,
    op: ChangeOp,
    ctx: &WriteContext,
    members: Members,
) -> Result<StoredResource> {
    let stored = parse(&row.doc)?;
    let loaded = load_members(conn, tenant, row.rid, &directory::replace_loads(prepared))?;
    let ReplacePlan::Write {
        members: change,
        renames,
    } = directory::replace(&stored, row.rid, prepared, &loaded)?
    else {
        return read::resource_of(conn, row, members);
    };
    let at = document::now();
    let now_s = at.unix_seconds;
    // The people whose documents the write changes, watched before it if they hold anything.
    let watched = match row.kind {
        ResourceKind::User => cascade::watch_user(conn, tenant, row.rid, &row.id, now_s)?,
        ResourceKind::Group => {
            let named = change.add.iter().chain(&change.remove).copied();
            watch_group_write(conn, tenant, row.rid, renames, named, now_s)?
        }
    };
    add_members(conn, row.rid, &change.add)?;
    remove_members(conn, row.rid, &change.remove)?;
    let rid = row.rid;
    update_resource(conn, tenant, &row, prepared, op, at, ctx)?;
    cascade::run(conn, env, tenant, watched, None, at, ctx)?;
    load(conn, rid, members)
}

/// A group PATCH planned as a membership delta: O(k) row changes for k members named, plus the
/// other operations' change to the group's document (which holds no members).
fn patch_group_delta(
    conn: &Connection,
    env: &WorkplaceEnv,
    tenant: TenantId,
    row: StoredRow,
    writes: &MembersWrites,
    ctx: &WriteContext,
    members: Members,
) -> Result<PatchResult> {
    let rid = row.rid;
    let MembershipChange { add, remove } = &writes.members;
    let at = document::now();
    // The people concerned, watched as they were before anything changes.
    let named = remove.iter().chain(add).copied();
    let watched = watch_group_write(conn, tenant, rid, writes.renames, named, at.unix_seconds)?;
    let removed = remove_members(conn, rid, remove)?;
    let added = add_members(conn, rid, add)?;
    let changed = match writes.version_write(removed + added > 0) {
        VersionWrite::Update(prepared) => {
            update_resource(conn, tenant, &row, prepared, ChangeOp::Patched, at, ctx)?;
            true
        }
        VersionWrite::Touch => {
            touch_resource(conn, tenant, &row, ChangeOp::Patched, at, ctx)?;
            true
        }
        VersionWrite::Unchanged => false,
    };
    if changed {
        cascade::run(conn, env, tenant, watched, None, at, ctx)?;
    }
    Ok(PatchResult {
        resource: load(conn, rid, members)?,
        changed,
    })
}

/// Replaces the tenant's schema documents, if the core's plan allows it against the tenant's
/// stored workplace policies ([`scim_store_core::schemas::plan_change`]), and moves the
/// version that every token authentication reads.
pub(crate) fn set_tenant_schemas(
    conn: &Connection,
    tenant: TenantId,
    base: &scim_store_core::ResourceSchemas,
    documents: Vec<serde_json::Value>,
) -> Result<scim_store_core::TenantSchemas> {
    let exists: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM tenants WHERE id = ?1)")
        .sql()?
        .query_row([tenant.key()], |r| r.get(0))
        .sql()?;
    if !exists {
        return Err(StoreError::TenantNotFound(tenant.to_string()));
    }
    let (version, stored) = read::tenant_schemas(conn, tenant)?;
    let current = scim_store_core::TenantSchemas::build(base, version, stored)?;
    let (config, _) = crate::workplace::load_config(conn, tenant)?;
    let schemas = scim_store_core::schemas::plan_change(base, &current, documents, Some(&config))?;
    if schemas.documents.is_empty() {
        conn.prepare_cached("DELETE FROM tenant_schemas WHERE tenant = ?1")
            .sql()?
            .execute([tenant.key()])
            .sql()?;
    } else {
        let json = serde_json::to_string(&schemas.documents).map_err(StoreError::backend)?;
        conn.prepare_cached(
            "INSERT INTO tenant_schemas (tenant, documents) VALUES (?1, ?2) \
             ON CONFLICT (tenant) DO UPDATE SET documents = excluded.documents",
        )
        .sql()?
        .execute(params![tenant.key(), json])
        .sql()?;
    }
    conn.prepare_cached("UPDATE tenants SET schemas_version = ?2 WHERE id = ?1")
        .sql()?
        .execute(params![
            tenant.key(),
            i64::try_from(schemas.version).unwrap_or(i64::MAX)
        ])
        .sql()?;
    Ok(schemas)
}

/// Records that token `id` authenticated a request at `at_ns` (never moving it back).
pub(crate) fn record_token_use(conn: &Connection, id: &str, at_ns: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE tokens SET last_used_ns = ?2 WHERE id = ?1 \
         AND (last_used_ns IS NULL OR last_used_ns < ?2)",
    )
    .sql()?
    .execute(params![id, at_ns])
    .sql()?;
    Ok(())
}
