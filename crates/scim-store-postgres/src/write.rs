//! Directory writes (resources, tenants, tokens): each either succeeds entirely or leaves
//! neither data nor an event. A write about people calls `cascade.rs` before and after its own
//! change; every write appends its event through `feed.rs`.
//!
//! Here: each run inside one transaction by the caller (which commits, or rolls back on
//! error, and retries transient failures): a failed write leaves neither data nor an event.

use super::PgResult;
use super::cascade::{Watch, append_with_cascade, watch_write};
use super::feed::{append_feed, version_sql};
use super::read::{self, StoredRow, code};
use super::workplace::Cascades;
use deadpool_postgres::{GenericClient, Transaction};
use scim_schema::{DateTime, ResourceSchema, fold_case};
use scim_store_core::backend::token;
use scim_store_core::document::{
    self, IndexEntries, Prepared, ResourceLimits, UniqueValue, to_nanos,
};
use scim_store_core::plan::directory::{
    self, DocumentPatch, MemberLoads, MemberRows, MembersWrites, MembershipChange, PatchPlan,
    Patching, ReplacePlan, RowsById, VersionWrite,
};
use scim_store_core::workplace::plan::SYSTEM_ACTOR;
use scim_store_core::{
    ChangeOp, ImportOutcome, IssuedToken, Members, PatchCall, PatchResult, ResourceKind,
    StoredResource, Tenant, TenantId, TokenScope, WriteContext,
};
use scim_store_core::{Result, StoreError};
use serde_json::Value;
use std::collections::{HashMap, HashSet};

/// The most bytes an indexed string may have: a B-tree entry holds at most about 2,700 bytes,
/// and the unique indexes put the value next to the tenant and attribute name.
pub(crate) const MAX_INDEXED_BYTES: usize = 2_000;

/// Refuses a document holding U+0000 anywhere (in a name or a value): PostgreSQL's `text` and
/// `jsonb` cannot store it.
pub(crate) fn check_no_nul(document: &Value) -> Result<()> {
    fn find(value: &Value) -> bool {
        match value {
            Value::String(s) => s.contains('\0'),
            Value::Array(items) => items.iter().any(find),
            Value::Object(object) => object.iter().any(|(k, v)| k.contains('\0') || find(v)),
            _ => false,
        }
    }
    if find(document) {
        Err(StoreError::invalid_value(
            "strings must not contain U+0000 (the PostgreSQL store cannot hold it)",
        ))
    } else {
        Ok(())
    }
}

/// Refuses indexed values too long for a B-tree entry, with a 400 rather than the index's 500.
pub(crate) fn check_index_sizes(index: &IndexEntries) -> Result<()> {
    let too_long = |what: &str, value: &str| -> Result<()> {
        if value.len() > MAX_INDEXED_BYTES {
            Err(StoreError::invalid_value(format!(
                "{what} is {} bytes long; the store indexes at most {MAX_INDEXED_BYTES}",
                value.len()
            )))
        } else {
            Ok(())
        }
    };
    for (what, value) in [
        ("userName", &index.user_name_fold),
        ("externalId", &index.external_id),
        ("displayName", &index.display_name_fold),
    ] {
        if let Some(value) = value {
            too_long(what, value)?;
        }
    }
    for (attr, value) in &index.values {
        too_long(attr, value)?;
    }
    for unique in &index.unique {
        too_long(&unique.attribute, &unique.key)?;
    }
    Ok(())
}

/// Prepares a document for this store ([`directory::Prepare`]): [`document::prepare`], and
/// the store's own limits ([`check_no_nul`], [`check_index_sizes`]).
pub(crate) fn prepare(
    kind: ResourceKind,
    schema: &ResourceSchema,
    validated: Value,
) -> scim_store_core::Result<Prepared> {
    check_no_nul(&validated)?;
    let prepared = document::prepare(kind, schema, validated)?;
    check_index_sizes(&prepared.index)?;
    Ok(prepared)
}

// ---- tenants and tokens ---------------------------------------------------------------------

pub(crate) async fn create_tenant(tx: &Transaction<'_>, name: &str) -> PgResult<Tenant> {
    let created = document::now();
    let stmt = tx
        .prepare_cached(
            "INSERT INTO tenants (name, created_ns) VALUES ($1, $2) ON CONFLICT DO NOTHING RETURNING id",
        )
        .await?;
    let Some(row) = tx.query_opt(&stmt, &[&name, &to_nanos(created)]).await? else {
        return Err(StoreError::TenantExists(name.to_owned()).into());
    };
    let key: i64 = row.try_get(0)?;
    // Its workplace state row, which workplace writers lock (see postgres::workplace).
    let stmt = tx
        .prepare_cached(
            "INSERT INTO workplace_state (tenant, config, generation) VALUES ($1, NULL, 0)",
        )
        .await?;
    tx.execute(&stmt, &[&key]).await?;
    Ok(Tenant {
        id: scim_store_core::backend::tenant_id(key),
        name: name.to_owned(),
        created,
    })
}

async fn ensure_tenant(tx: &Transaction<'_>, tenant: TenantId) -> PgResult<()> {
    let stmt = tx
        .prepare_cached("SELECT 1 FROM tenants WHERE id = $1")
        .await?;
    if tx.query_opt(&stmt, &[&tenant.key()]).await?.is_some() {
        Ok(())
    } else {
        Err(StoreError::TenantNotFound(tenant.to_string()).into())
    }
}

pub(crate) async fn issue_token(
    tx: &Transaction<'_>,
    tenant: TenantId,
    label: &str,
    scope: TokenScope,
) -> PgResult<IssuedToken> {
    check_no_nul(&Value::from(label))?;
    ensure_tenant(tx, tenant).await?;
    let id = token::new_token_id()?;
    let secret = token::new_secret()?;
    let stmt = tx
        .prepare_cached(
            "INSERT INTO tokens (id, tenant, label, scope, digest, created_ns) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &id,
            &tenant.key(),
            &label,
            &scope.as_str(),
            &&token::digest(&secret)[..],
            &to_nanos(document::now()),
        ],
    )
    .await?;
    Ok(IssuedToken { id, secret })
}

pub(crate) async fn revoke_token(
    tx: &Transaction<'_>,
    tenant: TenantId,
    token_id: &str,
) -> PgResult<bool> {
    if token_id.contains('\0') {
        return Ok(false);
    }
    let stmt = tx
        .prepare_cached(
            "UPDATE tokens SET revoked_ns = $1 WHERE tenant = $2 AND id = $3 AND revoked_ns IS NULL",
        )
        .await?;
    let changed = tx
        .execute(
            &stmt,
            &[&to_nanos(document::now()), &tenant.key(), &token_id],
        )
        .await?;
    Ok(changed == 1)
}

// ---- index entries ----------------------------------------------------------------------------

/// Inserts the `uniqueness: server` values of resource `rid`. The primary key enforces them
/// across every writer; `ON CONFLICT DO NOTHING` turns a collision into a missing row, which is
/// then named in the error.
async fn insert_unique(
    tx: &Transaction<'_>,
    tenant: TenantId,
    kind: ResourceKind,
    rids: &[i64],
    values: &[&UniqueValue],
) -> PgResult<()> {
    if values.is_empty() {
        return Ok(());
    }
    let attrs: Vec<&str> = values.iter().map(|u| u.attribute.as_str()).collect();
    let keys: Vec<&str> = values.iter().map(|u| u.key.as_str()).collect();
    let stmt = tx
        .prepare_cached(
            "INSERT INTO unique_values (tenant, kind, attr, key, rid) \
             SELECT $1, $2, u.attr, u.key, u.rid FROM unnest($3::text[], $4::text[], $5::bigint[]) AS u(attr, key, rid) \
             ON CONFLICT DO NOTHING RETURNING attr, key",
        )
        .await?;
    let rows = tx
        .query(&stmt, &[&tenant.key(), &code(kind), &attrs, &keys, &rids])
        .await?;
    if rows.len() == values.len() {
        return Ok(());
    }
    let mut inserted = HashSet::with_capacity(rows.len());
    for row in &rows {
        inserted.insert((row.try_get::<_, String>(0)?, row.try_get::<_, String>(1)?));
    }
    let taken = values
        .iter()
        .find(|u| !inserted.contains(&(u.attribute.clone(), u.key.clone())))
        .or(values.first());
    Err(match taken {
        Some(u) => StoreError::Uniqueness {
            attribute: u.attribute.clone(),
            value: u.value.clone(),
        },
        None => StoreError::backend("unique value insert lost rows"),
    }
    .into())
}

async fn insert_values(
    tx: &Transaction<'_>,
    tenant: TenantId,
    kind: ResourceKind,
    rids: &[i64],
    attrs: &[&str],
    folds: &[&str],
) -> PgResult<()> {
    if rids.is_empty() {
        return Ok(());
    }
    let stmt = tx
        .prepare_cached(
            "INSERT INTO resource_values (tenant, kind, attr, value_fold, rid) \
             SELECT $1, $2, u.attr, u.fold, u.rid FROM unnest($3::text[], $4::text[], $5::bigint[]) AS u(attr, fold, rid) \
             ON CONFLICT DO NOTHING",
        )
        .await?;
    tx.execute(&stmt, &[&tenant.key(), &code(kind), &attrs, &folds, &rids])
        .await?;
    Ok(())
}

/// Writes the side-table entries of resource `rid`, replacing `old` (what it had; `None` if
/// unknown, then everything is rewritten). Unchanged entries cost no statement.
async fn write_index(
    tx: &Transaction<'_>,
    tenant: TenantId,
    kind: ResourceKind,
    rid: i64,
    index: &IndexEntries,
    old: Option<&IndexEntries>,
) -> PgResult<()> {
    if old.is_none_or(|o| o.values != index.values) {
        if old.is_none_or(|o| !o.values.is_empty()) {
            let stmt = tx
                .prepare_cached("DELETE FROM resource_values WHERE rid = $1")
                .await?;
            tx.execute(&stmt, &[&rid]).await?;
        }
        let attrs: Vec<&str> = index.values.iter().map(|(a, _)| a.as_str()).collect();
        let folds: Vec<&str> = index.values.iter().map(|(_, f)| f.as_str()).collect();
        let rids = vec![rid; attrs.len()];
        insert_values(tx, tenant, kind, &rids, &attrs, &folds).await?;
    }
    if old.is_none_or(|o| o.unique != index.unique) {
        if old.is_none_or(|o| !o.unique.is_empty()) {
            let stmt = tx
                .prepare_cached("DELETE FROM unique_values WHERE rid = $1")
                .await?;
            tx.execute(&stmt, &[&rid]).await?;
        }
        let values: Vec<&UniqueValue> = index.unique.iter().collect();
        insert_unique(tx, tenant, kind, &vec![rid; values.len()], &values).await?;
    }
    Ok(())
}

// ---- members ----------------------------------------------------------------------------------

/// Resolves member ids to rows of the tenant ([`directory::resolve_members`]): one query for
/// all.
async fn resolve_members(
    tx: &Transaction<'_>,
    tenant: TenantId,
    ids: &[String],
    group_rid: Option<i64>,
) -> PgResult<Vec<i64>> {
    let rows = rids_by_id(tx, tenant, ids).await?;
    Ok(directory::resolve_members(
        ids.iter().map(String::as_str),
        &rows,
        group_rid,
    )?)
}

/// The rows of the tenant named by `ids` (compared folded), by folded id: one query for all.
async fn rids_by_id(
    tx: &Transaction<'_>,
    tenant: TenantId,
    ids: &[impl AsRef<str>],
) -> PgResult<RowsById> {
    if ids.is_empty() {
        return Ok(RowsById::new());
    }
    let folds: Vec<String> = ids
        .iter()
        .map(AsRef::as_ref)
        .filter(|id| !id.contains('\0'))
        .map(|id| fold_case(id).into_owned())
        .collect();
    let stmt = tx
        .prepare_cached(
            "SELECT id_fold, rid FROM resources WHERE tenant = $1 AND id_fold = ANY($2)",
        )
        .await?;
    let rows = tx.query(&stmt, &[&tenant.key(), &folds]).await?;
    let mut out = RowsById::with_capacity(rows.len());
    for row in rows {
        out.insert(row.try_get(0)?, row.try_get(1)?);
    }
    Ok(out)
}

/// Loads what a directory plan asks about the members of group `group_rid`.
async fn load_members(
    tx: &Transaction<'_>,
    tenant: TenantId,
    group_rid: i64,
    loads: &MemberLoads<'_>,
) -> PgResult<MemberRows> {
    let mut loaded = MemberRows::default();
    if !loads.present_among.is_empty() {
        loaded.present = present_members(tx, group_rid, &loads.present_among).await?;
    }
    loaded.rows = rids_by_id(tx, tenant, &loads.resolve).await?;
    if loads.current {
        loaded.current = member_rids(tx, group_rid).await?;
    }
    Ok(loaded)
}

/// The ids (as stored) of the members of `group_rid` among `ids` (compared folded; the plan
/// compares exactly if it must).
async fn present_members(
    tx: &Transaction<'_>,
    group_rid: i64,
    ids: &[&str],
) -> PgResult<Vec<String>> {
    let folds: Vec<String> = ids
        .iter()
        .filter(|id| !id.contains('\0'))
        .map(|id| fold_case(id).into_owned())
        .collect();
    let stmt = tx
        .prepare_cached(
            "SELECT x.id FROM members m JOIN resources x ON x.rid = m.member_rid \
             WHERE m.group_rid = $1 AND x.id_fold = ANY($2)",
        )
        .await?;
    let rows = tx.query(&stmt, &[&group_rid, &folds]).await?;
    rows.iter()
        .map(|r| r.try_get(0).map_err(Into::into))
        .collect()
}

/// Adds membership rows (present ones are left alone); returns the rids actually added. Each
/// new row records the tenant's feed position as its `joined_seq`, so that a User's `groups`
/// list the groups in the order the person joined them (the first is their primary team):
/// a later write reads a higher position, as the feed numbers writes in commit order.
async fn add_members(
    tx: &Transaction<'_>,
    tenant: TenantId,
    group_rid: i64,
    members: &[i64],
) -> PgResult<Vec<i64>> {
    if members.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = tx
        .prepare_cached(
            "INSERT INTO members (group_rid, member_rid, joined_seq) \
             SELECT $1, m, (SELECT last_seq FROM tenants WHERE id = $3) FROM unnest($2::bigint[]) AS m \
             ON CONFLICT DO NOTHING RETURNING member_rid",
        )
        .await?;
    let rows = tx
        .query(&stmt, &[&group_rid, &members, &tenant.key()])
        .await?;
    rows.iter()
        .map(|r| r.try_get(0).map_err(Into::into))
        .collect()
}

/// Removes membership rows (absent ones are ignored); returns the rids actually removed.
async fn remove_members(
    tx: &Transaction<'_>,
    group_rid: i64,
    members: &[i64],
) -> PgResult<Vec<i64>> {
    if members.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = tx
        .prepare_cached(
            "DELETE FROM members WHERE group_rid = $1 AND member_rid = ANY($2) RETURNING member_rid",
        )
        .await?;
    let rows = tx.query(&stmt, &[&group_rid, &members]).await?;
    rows.iter()
        .map(|r| r.try_get(0).map_err(Into::into))
        .collect()
}

async fn member_rids(tx: &Transaction<'_>, group_rid: i64) -> PgResult<Vec<i64>> {
    let stmt = tx
        .prepare_cached("SELECT member_rid FROM members WHERE group_rid = $1")
        .await?;
    let rows = tx.query(&stmt, &[&group_rid]).await?;
    rows.iter()
        .map(|r| r.try_get(0).map_err(Into::into))
        .collect()
}

// ---- resources ----------------------------------------------------------------------------------

/// Which resource a write is about, and the version it expects (RFC 7644 section 3.14).
pub(crate) struct Target<'a> {
    pub tenant: TenantId,
    pub kind: ResourceKind,
    pub id: &'a str,
    pub expected_version: Option<u64>,
}

/// Names the collision an `INSERT ... ON CONFLICT DO NOTHING` into `resources` met.
async fn resource_conflict(
    tx: &Transaction<'_>,
    tenant: TenantId,
    id: &str,
    index: &IndexEntries,
) -> PgResult<StoreError> {
    let stmt = tx
        .prepare_cached("SELECT 1 FROM resources WHERE tenant = $1 AND id_fold = $2")
        .await?;
    if tx
        .query_opt(&stmt, &[&tenant.key(), &fold_case(id)])
        .await?
        .is_some()
    {
        return Ok(StoreError::Uniqueness {
            attribute: "id".into(),
            value: id.to_owned(),
        });
    }
    Ok(StoreError::Uniqueness {
        attribute: "userName".into(),
        value: index.user_name.clone().unwrap_or_default(),
    })
}

/// Inserts a new resource (with its index entries and members, already resolved) at `now`;
/// returns its rid and the stored document. The caller appends the event.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn insert_resource(
    tx: &Transaction<'_>,
    tenant: TenantId,
    kind: ResourceKind,
    id: &str,
    prepared: &Prepared,
    members: &[i64],
    now: DateTime,
) -> PgResult<(i64, Value)> {
    let version = 1;
    let doc = document::assemble(kind, id, version, now, now, &prepared.body, None);
    let text = serde_json::to_string(&doc).map_err(StoreError::backend)?;
    let attrs = Value::Object(prepared.body.clone());
    let index = &prepared.index;
    let stmt = tx
        .prepare_cached(
            "INSERT INTO resources (tenant, kind, id, id_fold, version, created_ns, modified_ns, \
             user_name_fold, external_id, display_name_fold, active, doc, attrs) \
             VALUES ($1, $2, $3, $4, 1, $5, $5, $6, $7, $8, $9, $10, $11) \
             ON CONFLICT DO NOTHING RETURNING rid",
        )
        .await?;
    let inserted = tx
        .query_opt(
            &stmt,
            &[
                &tenant.key(),
                &code(kind),
                &id,
                &fold_case(id),
                &to_nanos(now),
                &index.user_name_fold,
                &index.external_id,
                &index.display_name_fold,
                &index.active,
                &text,
                &attrs,
            ],
        )
        .await?;
    let Some(row) = inserted else {
        return Err(resource_conflict(tx, tenant, id, index).await?.into());
    };
    let rid: i64 = row.try_get(0)?;
    write_index(tx, tenant, kind, rid, index, None).await?;
    add_members(tx, tenant, rid, members).await?;
    Ok((rid, doc))
}

/// POST (RFC 7644 section 3.3), with the cascade it causes: a new Group's members' `groups`
/// change. A new User is not looked up: its id was just drawn by the store, so nothing can be
/// held under it (imports, which keep ids, do look).
pub(crate) async fn create(
    tx: &Transaction<'_>,
    wp: &Cascades<'_>,
    tenant: TenantId,
    kind: ResourceKind,
    id: &str,
    prepared: &Prepared,
    ctx: &WriteContext,
) -> PgResult<StoredResource> {
    ensure_tenant(tx, tenant).await?;
    let mut watch = Watch::new(document::now());
    let now = watch.at;
    // A new id cannot be among the members: no group self-check needed.
    let members = match &prepared.members {
        Some(ids) => resolve_members(tx, tenant, ids, None).await?,
        None => Vec::new(),
    };
    watch.joining(tx, tenant, &members).await?;
    let (rid, document) = insert_resource(tx, tenant, kind, id, prepared, &members, now).await?;
    append_with_cascade(tx, wp, tenant, kind, id, ChangeOp::Created, 1, watch, ctx).await?;
    if !members.is_empty() {
        return read::load(tx, kind, rid, Members::Include).await;
    }
    // A new User belongs to no group yet, and a new Group without members has none to show.
    Ok(StoredResource {
        id: id.to_owned(),
        kind,
        version: 1,
        created: now,
        last_modified: now,
        document,
    })
}

/// The current row of the target, locked until the end of the transaction
/// (`FOR NO KEY UPDATE`: it conflicts with every other writer of the row, but not with the
/// key-share locks that membership rows referring to it take), checked against the expected
/// version (RFC 7644 section 3.14).
async fn lock_current(tx: &Transaction<'_>, target: &Target<'_>) -> PgResult<StoredRow> {
    let not_found = || StoreError::NotFound {
        kind: target.kind,
        id: target.id.to_owned(),
    };
    if target.id.contains('\0') {
        return Err(not_found().into());
    }
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT {} FROM resources r WHERE r.tenant = $1 AND r.id_fold = $2 AND r.id = $3 AND r.kind = $4 \
             FOR NO KEY UPDATE",
            read::COLUMNS
        ))
        .await?;
    let row = tx
        .query_opt(
            &stmt,
            &[
                &target.tenant.key(),
                &fold_case(target.id),
                &target.id,
                &code(target.kind),
            ],
        )
        .await?
        .ok_or_else(not_found)?;
    let row = StoredRow::from_row(&row)?;
    if let Some(expected) = target.expected_version {
        if expected != row.version {
            return Err(StoreError::VersionMismatch {
                expected,
                actual: row.version,
            }
            .into());
        }
    }
    Ok(row)
}

/// The index entries `row` has, computed from its document as they were when it was written;
/// `None` if the document no longer prepares (e.g. the schema changed), and then every entry
/// is rewritten.
fn old_index(schema: &ResourceSchema, row: &StoredRow, stored: &Value) -> Option<IndexEntries> {
    document::prepare(row.kind, schema, stored.clone())
        .ok()
        .map(|p| p.index)
}

/// Writes a new version of an existing resource at the watch's time: body, index entries,
/// event, and the cascade of the people `watch` holds. The caller has checked that something
/// changed. Returns the new version.
#[allow(clippy::too_many_arguments)]
async fn update_resource(
    tx: &Transaction<'_>,
    wp: &Cascades<'_>,
    schema: &ResourceSchema,
    tenant: TenantId,
    row: &StoredRow,
    stored: &Value,
    prepared: &Prepared,
    op: ChangeOp,
    ctx: &WriteContext,
    watch: Watch,
) -> PgResult<u64> {
    let index = &prepared.index;
    if index.user_name_fold.is_some() && index.user_name_fold != row.user_name_fold {
        // Named here; the unique index decides between concurrent writers.
        let stmt = tx
            .prepare_cached(
                "SELECT 1 FROM resources WHERE tenant = $1 AND kind = $2 AND user_name_fold = $3 AND rid <> $4",
            )
            .await?;
        if tx
            .query_opt(
                &stmt,
                &[
                    &tenant.key(),
                    &code(row.kind),
                    &index.user_name_fold,
                    &row.rid,
                ],
            )
            .await?
            .is_some()
        {
            return Err(StoreError::Uniqueness {
                attribute: "userName".into(),
                value: index.user_name.clone().unwrap_or_default(),
            }
            .into());
        }
    }
    let now = watch.at;
    let next = directory::next_version(
        row.kind,
        &row.id,
        row.version,
        row.created_ns,
        now,
        &prepared.body,
    );
    let version = next.version;
    let text = serde_json::to_string(&next.document).map_err(StoreError::backend)?;
    let attrs = Value::Object(prepared.body.clone());
    let stmt = tx
        .prepare_cached(
            "UPDATE resources SET version = $2, modified_ns = $3, user_name_fold = $4, external_id = $5, \
             display_name_fold = $6, active = $7, doc = $8, attrs = $9 WHERE rid = $1",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &row.rid,
            &version_sql(version),
            &to_nanos(now),
            &index.user_name_fold,
            &index.external_id,
            &index.display_name_fold,
            &index.active,
            &text,
            &attrs,
        ],
    )
    .await?;
    let old = old_index(schema, row, stored);
    write_index(tx, tenant, row.kind, row.rid, index, old.as_ref()).await?;
    append_with_cascade(tx, wp, tenant, row.kind, &row.id, op, version, watch, ctx).await?;
    Ok(version)
}

/// Bumps a resource's version and `meta.lastModified` without touching its attributes: a Group
/// whose only change is its membership (members are rows, not body).
#[allow(clippy::too_many_arguments)]
async fn touch_resource(
    tx: &Transaction<'_>,
    wp: &Cascades<'_>,
    tenant: TenantId,
    row: &StoredRow,
    stored: &Value,
    op: ChangeOp,
    ctx: &WriteContext,
    watch: Watch,
) -> PgResult<u64> {
    let body = document::body_of(stored);
    let now = watch.at;
    let next = directory::next_version(row.kind, &row.id, row.version, row.created_ns, now, &body);
    let version = next.version;
    let text = serde_json::to_string(&next.document).map_err(StoreError::backend)?;
    let stmt = tx
        .prepare_cached(
            "UPDATE resources SET version = $2, modified_ns = $3, doc = $4 WHERE rid = $1",
        )
        .await?;
    tx.execute(
        &stmt,
        &[&row.rid, &version_sql(version), &to_nanos(now), &text],
    )
    .await?;
    append_with_cascade(tx, wp, tenant, row.kind, &row.id, op, version, watch, ctx).await?;
    Ok(version)
}

/// PUT (RFC 7644 section 3.5.1), with its cascade.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn replace(
    tx: &Transaction<'_>,
    wp: &Cascades<'_>,
    schema: &ResourceSchema,
    tenant: TenantId,
    kind: ResourceKind,
    id: &str,
    prepared: &Prepared,
    expected_version: Option<u64>,
    ctx: &WriteContext,
) -> PgResult<StoredResource> {
    let target = Target {
        tenant,
        kind,
        id,
        expected_version,
    };
    let row = lock_current(tx, &target).await?;
    replace_row(
        tx,
        wp,
        schema,
        tenant,
        row,
        prepared,
        ChangeOp::Replaced,
        ctx,
        Members::Include,
    )
    .await
}

/// Writes `prepared` (with its member list) over `row`, as a replacement does; returns the
/// resource (unchanged if nothing differed).
#[allow(clippy::too_many_arguments)]
async fn replace_row(
    tx: &Transaction<'_>,
    wp: &Cascades<'_>,
    schema: &ResourceSchema,
    tenant: TenantId,
    row: StoredRow,
    prepared: &Prepared,
    op: ChangeOp,
    ctx: &WriteContext,
    members: Members,
) -> PgResult<StoredResource> {
    let stored = read::parse(&row.doc)?;
    let (kind, rid) = (row.kind, row.rid);
    let loaded = load_members(tx, tenant, rid, &directory::replace_loads(prepared)).await?;
    let ReplacePlan::Write {
        members: change,
        renames,
    } = directory::replace(&stored, rid, prepared, &loaded)?
    else {
        return read::load(tx, kind, rid, members).await;
    };
    let watch = watch_write(tx, tenant, &row, renames, &change.add, &change.remove).await?;
    add_members(tx, tenant, rid, &change.add).await?;
    remove_members(tx, rid, &change.remove).await?;
    update_resource(
        tx, wp, schema, tenant, &row, &stored, prepared, op, ctx, watch,
    )
    .await?;
    read::load(tx, kind, rid, members).await
}

/// DELETE (RFC 7644 section 3.6), with its cascade: a deleted User is former; a deleted
/// Group's members lose it from their `groups`.
pub(crate) async fn delete(
    tx: &Transaction<'_>,
    wp: &Cascades<'_>,
    target: Target<'_>,
    ctx: &WriteContext,
) -> PgResult<()> {
    let row = lock_current(tx, &target).await?;
    let mut watch = Watch::new(document::now());
    match row.kind {
        ResourceKind::User => watch.leaving(tx, target.tenant, row.rid).await?,
        ResourceKind::Group => watch.members_of(tx, target.tenant, row.rid).await?,
    }
    // Membership rows (as group and as member) and index entries go with the row
    // (ON DELETE CASCADE): deleting a resource removes it from every group.
    let stmt = tx
        .prepare_cached("DELETE FROM resources WHERE rid = $1")
        .await?;
    tx.execute(&stmt, &[&row.rid]).await?;
    append_with_cascade(
        tx,
        wp,
        target.tenant,
        target.kind,
        &row.id,
        ChangeOp::Deleted,
        row.version,
        watch,
        ctx,
    )
    .await?;
    if row.kind == ResourceKind::User {
        crate::admin::scrub_leaver(tx, wp, target.tenant, &row.id).await?;
    }
    Ok(())
}

/// PATCH (RFC 7644 section 3.5.2) in the caller's transaction: load (locked), plan
/// ([`scim_store_core::plan::directory`]), write.
pub(crate) async fn patch(
    tx: &Transaction<'_>,
    wp: &Cascades<'_>,
    schema: &ResourceSchema,
    limits: ResourceLimits,
    tenant: TenantId,
    call: PatchCall<'_>,
    ctx: &WriteContext,
) -> PgResult<PatchResult> {
    let (kind, members) = (call.kind, call.members);
    let target = Target {
        tenant,
        kind,
        id: call.id,
        expected_version: call.expected_version,
    };
    let row = lock_current(tx, &target).await?;
    let rid = row.rid;
    let stored = read::parse(&row.doc)?;
    let patching = Patching {
        kind,
        schema,
        request: call.request,
        settings: call.settings,
        prepare,
        limits,
    };
    match patching.plan()? {
        PatchPlan::Members(plan) => {
            let loaded = load_members(tx, tenant, rid, &plan.loads()).await?;
            let writes = patching.members(&plan, &stored, rid, &loaded)?;
            patch_group_delta(tx, wp, schema, tenant, row, &stored, &writes, ctx, members).await
        }
        PatchPlan::LoadGroup => {
            let full = read::load(tx, kind, rid, Members::Include).await?.document;
            let DocumentPatch::Replace(prepared) = patching.whole_group(&full)? else {
                return Ok(PatchResult {
                    resource: read::load(tx, kind, rid, members).await?,
                    changed: false,
                });
            };
            let before = row.version;
            let resource = replace_row(
                tx,
                wp,
                schema,
                tenant,
                row,
                &prepared,
                ChangeOp::Patched,
                ctx,
                members,
            )
            .await?;
            let changed = resource.version != before;
            Ok(PatchResult { resource, changed })
        }
        PatchPlan::Document => {
            let apply = || patching.document(&stored);
            let applied = if patching.is_heavy(row.doc.len()) {
                crate::conn::off_the_runtime(apply)
            } else {
                apply()
            };
            let DocumentPatch::Replace(prepared) = applied? else {
                return Ok(PatchResult {
                    resource: read::load(tx, kind, rid, members).await?,
                    changed: false,
                });
            };
            let watch = watch_write(tx, tenant, &row, false, &[], &[]).await?;
            update_resource(
                tx,
                wp,
                schema,
                tenant,
                &row,
                &stored,
                &prepared,
                ChangeOp::Patched,
                ctx,
                watch,
            )
            .await?;
            Ok(PatchResult {
                resource: read::load(tx, kind, rid, members).await?,
                changed: true,
            })
        }
    }
}

/// A group PATCH planned as a membership delta: O(k) row changes for k members named (one
/// statement for all of them), plus the other operations' change to the group's document
/// (which holds no members).
#[allow(clippy::too_many_arguments)]
async fn patch_group_delta(
    tx: &Transaction<'_>,
    wp: &Cascades<'_>,
    schema: &ResourceSchema,
    tenant: TenantId,
    row: StoredRow,
    stored: &Value,
    writes: &MembersWrites,
    ctx: &WriteContext,
    members: Members,
) -> PgResult<PatchResult> {
    let rid = row.rid;
    let MembershipChange { add, remove } = &writes.members;
    // The people concerned, watched as they were before anything changes.
    let watch = if writes.is_empty() {
        None
    } else {
        Some(watch_write(tx, tenant, &row, writes.renames, add, remove).await?)
    };
    let removed = remove_members(tx, rid, remove).await?;
    let added = add_members(tx, tenant, rid, add).await?;
    let rows_changed = !removed.is_empty() || !added.is_empty();
    let changed = match (writes.version_write(rows_changed), watch) {
        (VersionWrite::Update(prepared), Some(watch)) => {
            update_resource(
                tx,
                wp,
                schema,
                tenant,
                &row,
                stored,
                prepared,
                ChangeOp::Patched,
                ctx,
                watch,
            )
            .await?;
            true
        }
        (VersionWrite::Touch, Some(watch)) => {
            touch_resource(tx, wp, tenant, &row, stored, ChangeOp::Patched, ctx, watch).await?;
            true
        }
        _ => false,
    };
    Ok(PatchResult {
        resource: read::load(tx, row.kind, rid, members).await?,
        changed,
    })
}

// ---- bulk import ----------------------------------------------------------------------------------

/// How many resources one `INSERT ... SELECT FROM unnest(...)` carries.
const IMPORT_CHUNK: usize = 2_000;

/// Imports `prepared` (already checked for collisions among themselves) in the caller's
/// transaction: set-based inserts of up to [`IMPORT_CHUNK`] rows per statement, one event per
/// resource with consecutive sequence numbers.
pub(crate) async fn import(
    tx: &Transaction<'_>,
    wp: &Cascades<'_>,
    tenant: TenantId,
    kind: ResourceKind,
    prepared: &[(String, Prepared)],
    ctx: &WriteContext,
) -> PgResult<ImportOutcome> {
    ensure_tenant(tx, tenant).await?;
    let mut watch = Watch::new(document::now());
    let now = watch.at;
    let insert = tx
        .prepare_cached(
            "INSERT INTO resources (tenant, kind, id, id_fold, version, created_ns, modified_ns, \
             user_name_fold, external_id, display_name_fold, active, doc, attrs) \
             SELECT $1, $2, u.id, u.id_fold, 1, $3, $3, u.unf, u.ext, u.dnf, u.active, u.doc, u.attrs::jsonb \
             FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bool[], $10::text[], $11::text[]) \
             AS u(id, id_fold, unf, ext, dnf, active, doc, attrs) \
             ON CONFLICT DO NOTHING RETURNING rid, id",
        )
        .await?;
    let mut rid_of: HashMap<String, i64> = HashMap::with_capacity(prepared.len());
    for chunk in prepared.chunks(IMPORT_CHUNK) {
        let mut ids = Vec::with_capacity(chunk.len());
        let mut id_folds = Vec::with_capacity(chunk.len());
        let mut user_names = Vec::with_capacity(chunk.len());
        let mut external_ids = Vec::with_capacity(chunk.len());
        let mut display_names = Vec::with_capacity(chunk.len());
        let mut actives = Vec::with_capacity(chunk.len());
        let mut docs = Vec::with_capacity(chunk.len());
        let mut attrs = Vec::with_capacity(chunk.len());
        for (id, p) in chunk {
            let doc = document::assemble(kind, id, 1, now, now, &p.body, None);
            docs.push(serde_json::to_string(&doc).map_err(StoreError::backend)?);
            attrs.push(serde_json::to_string(&p.body).map_err(StoreError::backend)?);
            ids.push(id.as_str());
            id_folds.push(fold_case(id).into_owned());
            user_names.push(p.index.user_name_fold.as_deref());
            external_ids.push(p.index.external_id.as_deref());
            display_names.push(p.index.display_name_fold.as_deref());
            actives.push(p.index.active);
        }
        let rows = tx
            .query(
                &insert,
                &[
                    &tenant.key(),
                    &code(kind),
                    &to_nanos(now),
                    &ids,
                    &id_folds,
                    &user_names,
                    &external_ids,
                    &display_names,
                    &actives,
                    &docs,
                    &attrs,
                ],
            )
            .await?;
        for row in &rows {
            rid_of.insert(row.try_get(1)?, row.try_get(0)?);
        }
        if rows.len() < chunk.len() {
            let (id, p) = chunk
                .iter()
                .find(|(id, _)| !rid_of.contains_key(id))
                .or(chunk.first())
                .ok_or_else(|| StoreError::backend("empty import chunk"))?;
            return Err(resource_conflict(tx, tenant, id, &p.index).await?.into());
        }
        // Index entries of the chunk, set-based too.
        let (mut v_rids, mut v_attrs, mut v_folds) = (Vec::new(), Vec::new(), Vec::new());
        let (mut u_rids, mut u_values) = (Vec::new(), Vec::new());
        for (id, p) in chunk {
            let rid = rid_of.get(id).copied().unwrap_or_default();
            for (attr, fold) in &p.index.values {
                v_rids.push(rid);
                v_attrs.push(attr.as_str());
                v_folds.push(fold.as_str());
            }
            for unique in &p.index.unique {
                u_rids.push(rid);
                u_values.push(unique);
            }
        }
        insert_values(tx, tenant, kind, &v_rids, &v_attrs, &v_folds).await?;
        insert_unique(tx, tenant, kind, &u_rids, &u_values).await?;
    }
    // Members, once every resource of the import exists. Existing people who join a group
    // are watched first: their `groups` change (new Users hold nothing).
    let mut memberships = Vec::new();
    let imported: HashSet<i64> = rid_of.values().copied().collect();
    for (id, p) in prepared {
        let Some(member_ids) = &p.members else {
            continue;
        };
        let group_rid = rid_of.get(id).copied().unwrap_or_default();
        for chunk in member_ids.chunks(10 * IMPORT_CHUNK) {
            let members = resolve_members(tx, tenant, chunk, Some(group_rid)).await?;
            let existing: Vec<i64> = members
                .iter()
                .copied()
                .filter(|rid| !imported.contains(rid))
                .collect();
            watch.joining(tx, tenant, &existing).await?;
            memberships.push((group_rid, members));
        }
    }
    for (group_rid, members) in &memberships {
        add_members(tx, tenant, *group_rid, members).await?;
    }
    let drafts = watch.finish(tx, wp, tenant, ctx).await?;
    // The events: one number per resource, allocated at once (the tenant row stays locked until
    // COMMIT, as for every write).
    let n = i64::try_from(prepared.len()).unwrap_or(i64::MAX);
    if n > 0 {
        let stmt = tx
            .prepare_cached(
                "WITH s AS (UPDATE tenants SET last_seq = last_seq + $2 WHERE id = $1 RETURNING last_seq) \
                 INSERT INTO events (tenant, seq, kind, id, op, version, at_ns, actor, request_id) \
                 SELECT $1, s.last_seq - $2 + u.n, $3, u.id, $4, 1, $5, $6, $7 \
                 FROM s, unnest($8::text[]) WITH ORDINALITY AS u(id, n)",
            )
            .await?;
        for chunk in prepared.chunks(10 * IMPORT_CHUNK) {
            let ids: Vec<&str> = chunk.iter().map(|(id, _)| id.as_str()).collect();
            let len = i64::try_from(ids.len()).unwrap_or(i64::MAX);
            tx.execute(
                &stmt,
                &[
                    &tenant.key(),
                    &len,
                    &code(kind),
                    &ChangeOp::Created.as_str(),
                    &to_nanos(now),
                    &ctx.actor,
                    &ctx.request_id,
                    &ids,
                ],
            )
            .await?;
        }
    }
    append_feed(
        tx,
        tenant,
        &drafts,
        now,
        SYSTEM_ACTOR,
        ctx.request_id.as_deref(),
    )
    .await?;
    Ok(ImportOutcome {
        ids: prepared.iter().map(|(id, _)| id.clone()).collect(),
    })
}
