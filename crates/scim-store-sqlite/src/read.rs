//! Reading resources back, with their derived attributes; tenants, tokens and events.

use crate::conn::SqlResult;
use rusqlite::{Connection, OptionalExtension, Row, params};
use scim_schema::fold_case;
use scim_store_core::backend::token;
use scim_store_core::document::{from_nanos, to_nanos};
use scim_store_core::{
    ChangeEvent, ChangeOp, Members, ResourceKind, StoredResource, Tenant, TenantId, TokenInfo,
    TokenScope,
};
use scim_store_core::{Result, StoreError};
use serde_json::{Map, Value};

/// The columns [`row_of`] reads, in order; the last one is a User's derived `groups` as a JSON
/// array (NULL for other kinds), so that reading a User with its groups is one statement, a
/// consistent snapshot without an explicit transaction. Groups come in the order the user
/// joined them (`joined_seq`): the first is their primary team (issue 7).
pub(crate) const RESOURCE_COLUMNS: &str = concat!(
    "r.rid, r.kind, r.id, r.version, r.created_ns, r.modified_ns, r.doc, ",
    "CASE WHEN r.kind = 1 THEN (SELECT json_group_array(CASE WHEN d IS NULL ",
    "THEN json_object('value', id, 'type', 'direct') ",
    "ELSE json_object('value', id, 'display', d, 'type', 'direct') END) ",
    "FROM (SELECT g.id AS id, g.doc ->> '$.displayName' AS d FROM members m ",
    "JOIN resources g ON g.rid = m.group_rid WHERE m.member_rid = r.rid ",
    "ORDER BY m.joined_seq, m.group_rid)) END"
);

/// A stored row, before its derived attributes are added.
#[derive(Clone)]
pub(crate) struct StoredRow {
    pub rid: i64,
    pub kind: ResourceKind,
    pub id: String,
    pub version: u64,
    pub created_ns: i64,
    pub modified_ns: i64,
    pub doc: String,
    /// A User's `groups`, as a JSON array, read with the row.
    pub groups_json: Option<String>,
}

pub(crate) fn row_of(row: &Row<'_>) -> rusqlite::Result<StoredRow> {
    let code: i64 = row.get(1)?;
    let version: i64 = row.get(3)?;
    Ok(StoredRow {
        rid: row.get(0)?,
        kind: ResourceKind::from_code(code).unwrap_or(ResourceKind::User),
        id: row.get(2)?,
        version: u64::try_from(version).unwrap_or(0),
        created_ns: row.get(4)?,
        modified_ns: row.get(5)?,
        doc: row.get(6)?,
        groups_json: row.get(7)?,
    })
}

/// The row of resource `id` (exact id: `id` is caseExact, RFC 7643 section 3.1).
pub(crate) fn find_row(
    conn: &Connection,
    tenant: TenantId,
    kind: ResourceKind,
    id: &str,
) -> Result<Option<StoredRow>> {
    let mut stmt = conn
        .prepare_cached(concat!(
            "SELECT r.rid, r.kind, r.id, r.version, r.created_ns, r.modified_ns, r.doc, NULL ",
            "FROM resources r WHERE r.tenant = ?1 AND r.id_fold = ?2 AND r.id = ?3 AND r.kind = ?4"
        ))
        .sql()?;
    stmt.query_row(
        params![tenant.key(), fold_case(id), id, kind.code()],
        row_of,
    )
    .optional()
    .sql()
}

/// Resource `id` as served (RFC 7643 section 3.1, RFC 7644 section 3.4.1). A User and its
/// `groups` are one statement, so one snapshot; a Group with its members is two, so they run
/// in one read transaction.
pub(crate) fn get(
    conn: &Connection,
    tenant: TenantId,
    kind: ResourceKind,
    id: &str,
    members: Members,
) -> Result<Option<StoredResource>> {
    let find = |conn: &Connection| -> Result<Option<StoredResource>> {
        find_row_served(conn, tenant, kind, id)?
            .map(|row| resource_of(conn, row, members))
            .transpose()
    };
    if kind == ResourceKind::Group && members == Members::Include {
        in_read_transaction(conn, find)
    } else {
        find(conn)
    }
}

/// Runs `work` in one read transaction (one snapshot across its statements).
pub(crate) fn in_read_transaction<T>(
    conn: &Connection,
    work: impl FnOnce(&Connection) -> Result<T>,
) -> Result<T> {
    conn.prepare_cached("BEGIN").sql()?.execute([]).sql()?;
    let result = work(conn);
    // A read transaction has nothing to lose: end it whatever happened.
    let end = conn
        .prepare_cached("COMMIT")
        .and_then(|mut s| s.execute([]));
    let value = result?;
    end.sql()?;
    Ok(value)
}

/// The row with surrogate key `rid`.
pub(crate) fn row_by_rid(conn: &Connection, rid: i64) -> Result<Option<StoredRow>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {RESOURCE_COLUMNS} FROM resources r WHERE r.rid = ?1"
        ))
        .sql()?;
    stmt.query_row([rid], row_of).optional().sql()
}

/// The rows with surrogate keys `rids`, in that order (a key with no row is left out): one
/// statement for a whole page, where a statement per row cost a fifth of serving a page of 100.
///
/// `None` if their documents (with a User's `groups`) add up to more than `max_bytes`: the
/// statement is then stopped at the row that passes it, having held no more than that (see
/// [`page_prefix`]).
pub(crate) fn rows_by_rids(
    conn: &Connection,
    rids: &[i64],
    max_bytes: usize,
) -> Result<Option<Vec<StoredRow>>> {
    match rids {
        [] => return Ok(Some(Vec::new())),
        // The commonest page, `userName eq` (an IdP's lookup before every write): a plain
        // rowid lookup is cheaper than building and reading the list. One row is always
        // within a page's budget.
        [rid] => return Ok(Some(row_by_rid(conn, *rid)?.into_iter().collect())),
        _ => {}
    }
    let list = serde_json::to_string(rids)
        .map_err(|e| StoreError::backend(format!("row keys as JSON: {e}")))?;
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {RESOURCE_COLUMNS} FROM resources r WHERE r.rid IN (SELECT value FROM json_each(?1))"
    )).sql()?;
    let mut rows = stmt.query([list]).sql()?;
    let mut by_rid = std::collections::HashMap::with_capacity(rids.len());
    let mut bytes: usize = 0;
    while let Some(row) = rows.next().sql()? {
        let row = row_of(row).sql()?;
        bytes = bytes.saturating_add(row_bytes(&row));
        if bytes > max_bytes {
            return Ok(None);
        }
        by_rid.insert(row.rid, row);
    }
    Ok(Some(
        rids.iter().filter_map(|rid| by_rid.remove(rid)).collect(),
    ))
}

/// What a row weighs in a page's budget before its derived `members`: its document and a
/// User's `groups`, as stored text.
pub(crate) fn row_bytes(row: &StoredRow) -> usize {
    row.doc.len() + row.groups_json.as_ref().map_or(0, String::len)
}

/// How many of `rids`, from the first, fit in `budget` by the size of their documents alone,
/// read without loading the documents (`octet_length` reads a value's size from its record
/// header): for a page whose rows [`rows_by_rids`] found too large to hold at once.
pub(crate) fn page_prefix(
    conn: &Connection,
    rids: &[i64],
    budget: &mut scim_store_core::PageBudget,
) -> Result<usize> {
    let list = serde_json::to_string(rids)
        .map_err(|e| StoreError::backend(format!("row keys as JSON: {e}")))?;
    let mut stmt = conn
        .prepare_cached(
            "SELECT r.rid, octet_length(r.doc) FROM resources r \
             WHERE r.rid IN (SELECT value FROM json_each(?1))",
        )
        .sql()?;
    let sizes: std::collections::HashMap<i64, i64> = stmt
        .query_map([list], |r| Ok((r.get(0)?, r.get(1)?)))
        .sql()?
        .collect::<rusqlite::Result<_>>()
        .sql()?;
    Ok(rids
        .iter()
        .take_while(|rid| {
            let size = sizes.get(rid).copied().unwrap_or(0);
            budget.admit(usize::try_from(size).unwrap_or(usize::MAX))
        })
        .count())
}

/// Turns a row into the served resource, adding `members` (Groups, when asked) or `groups`
/// (Users) from the membership rows.
pub(crate) fn resource_of(
    conn: &Connection,
    row: StoredRow,
    members: Members,
) -> Result<StoredResource> {
    let mut document: Value = serde_json::from_str(&row.doc)
        .map_err(|e| StoreError::backend(format!("resource {} holds invalid JSON: {e}", row.id)))?;
    let derived = match row.kind {
        ResourceKind::User => Some((
            "groups",
            match &row.groups_json {
                Some(json) => serde_json::from_str(json).map_err(|e| {
                    StoreError::backend(format!("groups of {}: invalid JSON: {e}", row.id))
                })?,
                None => groups_of(conn, row.rid)?,
            },
        )),
        ResourceKind::Group if members == Members::Include => {
            Some(("members", members_of(conn, row.rid)?))
        }
        ResourceKind::Group => None,
    };
    if let (Some((name, values)), Value::Object(object)) = (derived, &mut document) {
        if !values.is_empty() {
            insert_before_meta(object, name, Value::Array(values));
        }
    }
    Ok(StoredResource {
        id: row.id,
        kind: row.kind,
        version: row.version,
        created: from_nanos(row.created_ns),
        last_modified: from_nanos(row.modified_ns),
        document,
    })
}

/// The `groups` read with a User's row (`RESOURCE_COLUMNS`); none for a row read without them.
pub(crate) fn groups_read_with(row: &StoredRow) -> Result<Vec<Value>> {
    match &row.groups_json {
        Some(json) => serde_json::from_str(json)
            .map_err(|e| StoreError::backend(format!("groups of {}: invalid JSON: {e}", row.id))),
        None => Ok(Vec::new()),
    }
}

/// The row of resource `id` with what is derived from other rows (a User's `groups`), as
/// [`get`] serves it.
pub(crate) fn find_row_served(
    conn: &Connection,
    tenant: TenantId,
    kind: ResourceKind,
    id: &str,
) -> Result<Option<StoredRow>> {
    let mut stmt = conn
        .prepare_cached(&format!(
            "SELECT {RESOURCE_COLUMNS} FROM resources r \
             WHERE r.tenant = ?1 AND r.id_fold = ?2 AND r.id = ?3 AND r.kind = ?4"
        ))
        .sql()?;
    stmt.query_row(
        params![tenant.key(), fold_case(id), id, kind.code()],
        row_of,
    )
    .optional()
    .sql()
}

/// The User of `row` as its next `version`, written at `at` as `document` (made before the
/// write: no parse of what was just serialised), with its `groups`.
pub(crate) fn user_with(
    row: StoredRow,
    mut document: Value,
    groups: Vec<Value>,
    version: u64,
    at: scim_schema::DateTime,
) -> StoredResource {
    if let (false, Value::Object(object)) = (groups.is_empty(), &mut document) {
        insert_before_meta(object, "groups", Value::Array(groups));
    }
    StoredResource {
        id: row.id,
        kind: row.kind,
        version,
        created: from_nanos(row.created_ns),
        last_modified: at,
        document,
    }
}

/// Inserts `name` just before `meta`, so `meta` stays last as RFC 7643's examples show it.
pub(crate) fn insert_before_meta(object: &mut Map<String, Value>, name: &str, value: Value) {
    let meta = object.remove("meta");
    object.insert(name.to_owned(), value);
    if let Some(meta) = meta {
        object.insert("meta".to_owned(), meta);
    }
}

/// A User's `groups` (RFC 7643 section 4.1.2): the groups it is a direct member of, in the
/// order it joined them. `$ref` is left to the server, which knows its base URL.
pub(crate) fn groups_of(conn: &Connection, member_rid: i64) -> Result<Vec<Value>> {
    let mut stmt = conn.prepare_cached(
        "SELECT g.id, g.doc ->> '$.displayName' FROM members m JOIN resources g ON g.rid = m.group_rid \
         WHERE m.member_rid = ?1 ORDER BY m.joined_seq, m.group_rid",
    ).sql()?;
    let rows = stmt
        .query_map([member_rid], |row| {
            let id: String = row.get(0)?;
            let display: Option<String> = row.get(1)?;
            Ok(member_value(id, display, "direct"))
        })
        .sql()?;
    rows.collect::<rusqlite::Result<_>>().sql()
}

/// A Group's `members` (RFC 7643 section 4.2): `value`, `display` (the member's displayName,
/// or a User's userName) and `type`. `$ref` is left to the server.
pub(crate) fn members_of(conn: &Connection, group_rid: i64) -> Result<Vec<Value>> {
    let mut stmt = conn.prepare_cached(
        "SELECT x.id, x.kind, coalesce(x.doc ->> '$.displayName', x.doc ->> '$.userName') \
         FROM members m JOIN resources x ON x.rid = m.member_rid WHERE m.group_rid = ?1 ORDER BY m.member_rid",
    ).sql()?;
    let rows = stmt
        .query_map([group_rid], |row| {
            let id: String = row.get(0)?;
            let kind = ResourceKind::from_code(row.get(1)?).unwrap_or(ResourceKind::User);
            let display: Option<String> = row.get(2)?;
            Ok(member_value(id, display, kind.resource_type()))
        })
        .sql()?;
    rows.collect::<rusqlite::Result<_>>().sql()
}

fn member_value(id: String, display: Option<String>, kind: &str) -> Value {
    let mut object = Map::with_capacity(3);
    object.insert("value".to_owned(), Value::String(id));
    if let Some(display) = display {
        object.insert("display".to_owned(), Value::String(display));
    }
    object.insert("type".to_owned(), Value::String(kind.to_owned()));
    Value::Object(object)
}

/// The SQL of the derived attribute of `kind`, as a JSON array, for the row aliased `r`: what
/// the in-process evaluator is given when a filter names `groups` or `members` in a way SQL
/// does not decide by itself. Same content as [`groups_of`] / [`members_of`].
pub(crate) fn derived_json_sql(kind: ResourceKind) -> (&'static str, &'static str) {
    match kind {
        ResourceKind::User => (
            "groups",
            "(SELECT json_group_array(json_object('value', g.id, 'display', g.doc ->> '$.displayName', 'type', 'direct') \
             ORDER BY m.joined_seq, m.group_rid) \
             FROM members m JOIN resources g ON g.rid = m.group_rid WHERE m.member_rid = r.rid)",
        ),
        ResourceKind::Group => (
            "members",
            "(SELECT json_group_array(json_object('value', x.id, 'display', coalesce(x.doc ->> '$.displayName', x.doc ->> '$.userName'), \
             'type', CASE x.kind WHEN 1 THEN 'User' ELSE 'Group' END)) \
             FROM members m JOIN resources x ON x.rid = m.member_rid WHERE m.group_rid = r.rid)",
        ),
    }
}

// ---- tenants, tokens, events ---------------------------------------------------------------

pub(crate) fn tenant_of(row: &Row<'_>) -> rusqlite::Result<Tenant> {
    Ok(Tenant {
        id: scim_store_core::backend::tenant_id(row.get(0)?),
        name: row.get(1)?,
        created: from_nanos(row.get(2)?),
    })
}

pub(crate) fn tenant_by_name(conn: &Connection, name: &str) -> Result<Option<Tenant>> {
    let mut stmt = conn
        .prepare_cached("SELECT id, name, created_ns FROM tenants WHERE name = ?1")
        .sql()?;
    stmt.query_row([name], tenant_of).optional().sql()
}

pub(crate) fn list_tenants(conn: &Connection) -> Result<Vec<Tenant>> {
    let mut stmt = conn
        .prepare_cached("SELECT id, name, created_ns FROM tenants ORDER BY name")
        .sql()?;
    let rows = stmt.query_map([], tenant_of).sql()?;
    rows.collect::<rusqlite::Result<_>>().sql()
}

fn token_of(row: &Row<'_>) -> rusqlite::Result<TokenInfo> {
    let scope: String = row.get(2)?;
    let revoked: Option<i64> = row.get(4)?;
    let last_used: Option<i64> = row.get("last_used_ns")?;
    Ok(TokenInfo {
        id: row.get(0)?,
        label: row.get(1)?,
        scope: TokenScope::from_name(&scope).unwrap_or(TokenScope::Scim),
        created: from_nanos(row.get(3)?),
        revoked: revoked.map(from_nanos),
        last_used: last_used.map(from_nanos),
    })
}

pub(crate) fn list_tokens(conn: &Connection, tenant: TenantId) -> Result<Vec<TokenInfo>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, label, scope, created_ns, revoked_ns, last_used_ns FROM tokens WHERE tenant = ?1 \
         ORDER BY created_ns, id",
    ).sql()?;
    let rows = stmt.query_map([tenant.key()], token_of).sql()?;
    rows.collect::<rusqlite::Result<_>>().sql()
}

/// The tenant and token of `secret`, with the version of the tenant's schemas (read here so
/// that every authenticated request sees a schema change made elsewhere).
pub(crate) fn authenticate(
    conn: &Connection,
    secret: &str,
) -> Result<Option<(Tenant, TokenInfo, u64)>> {
    if !secret.starts_with(token::SECRET_PREFIX) {
        return Ok(None);
    }
    let digest = token::digest(secret);
    let mut stmt = conn.prepare_cached(
        "SELECT k.id, k.label, k.scope, k.created_ns, k.revoked_ns, k.digest, t.id, t.name, t.created_ns, \
         t.schemas_version, k.last_used_ns FROM tokens k JOIN tenants t ON t.id = k.tenant \
         WHERE k.digest = ?1",
    ).sql()?;
    let found = stmt
        .query_row([&digest[..]], |row| {
            let info = token_of(row)?;
            let stored: Vec<u8> = row.get(5)?;
            let tenant = Tenant {
                id: scim_store_core::backend::tenant_id(row.get(6)?),
                name: row.get(7)?,
                created: from_nanos(row.get(8)?),
            };
            let schemas_version: i64 = row.get(9)?;
            Ok((tenant, info, stored, to_u64(schemas_version)))
        })
        .optional()
        .sql()?;
    Ok(found.and_then(|(tenant, info, stored, schemas_version)| {
        (token::digests_equal(&stored, &digest) && info.revoked.is_none()).then_some((
            tenant,
            info,
            schemas_version,
        ))
    }))
}

/// The version of the tenant's schemas and its documents (none at version 0, as for a
/// tenant that does not exist: its calls fail as they would without schemas).
pub(crate) fn tenant_schemas(conn: &Connection, tenant: TenantId) -> Result<(u64, Vec<Value>)> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT t.schemas_version, s.documents FROM tenants t \
             LEFT JOIN tenant_schemas s ON s.tenant = t.id WHERE t.id = ?1",
        )
        .sql()?;
    let found: Option<(i64, Option<String>)> = stmt
        .query_row([tenant.key()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .sql()?;
    let Some((version, documents)) = found else {
        return Ok((0, Vec::new()));
    };
    let documents = scim_store_core::schemas::stored_documents(tenant, documents.as_deref())?;
    Ok((to_u64(version), documents))
}

/// The SCIM changes of the feed (kinds 1 and 2): the workplace entries that share the
/// sequence are left out, so the sequence numbers returned may skip.
pub(crate) fn events(
    conn: &Connection,
    tenant: TenantId,
    after: u64,
    limit: usize,
) -> Result<Vec<ChangeEvent>> {
    let mut stmt = conn
        .prepare_cached(
            "SELECT seq, kind, id, op, version, at_ns, actor, request_id FROM events \
         WHERE tenant = ?1 AND seq > ?2 AND kind IN (1, 2) ORDER BY seq LIMIT ?3",
        )
        .sql()?;
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt
        .query_map(params![tenant.key(), after, limit], |row| {
            let seq: i64 = row.get(0)?;
            let kind: i64 = row.get(1)?;
            let op: String = row.get(3)?;
            let version: i64 = row.get(4)?;
            Ok(ChangeEvent {
                seq: u64::try_from(seq).unwrap_or(0),
                kind: ResourceKind::from_code(kind).unwrap_or(ResourceKind::User),
                id: row.get(2)?,
                op: ChangeOp::from_name(&op).unwrap_or(ChangeOp::Patched),
                version: u64::try_from(version).unwrap_or(0),
                at: from_nanos(row.get(5)?),
                actor: row.get(6)?,
                request_id: row.get(7)?,
            })
        })
        .sql()?;
    rows.collect::<rusqlite::Result<_>>().sql()
}

/// Nanoseconds of `t`, re-exported for the writers.
pub(crate) fn nanos(t: scim_schema::DateTime) -> i64 {
    to_nanos(t)
}

/// A stored count, sequence number or version (never negative) as the `u64` callers see.
pub(crate) fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// [`StoreError::TenantNotFound`] unless the tenant exists: directory and workplace writes
/// check it before they write anything under its key.
pub(crate) fn ensure_tenant(conn: &Connection, tenant: TenantId) -> Result<()> {
    let mut stmt = conn
        .prepare_cached("SELECT 1 FROM tenants WHERE id = ?1")
        .sql()?;
    if stmt.exists([tenant.key()]).sql()? {
        Ok(())
    } else {
        Err(StoreError::TenantNotFound(tenant.to_string()))
    }
}
