//! Reading resources back, with their derived attributes; tenants, tokens and events.

use super::PgResult;
use deadpool_postgres::GenericClient;
use futures_util::StreamExt;
use scim_schema::fold_case;
use scim_store_core::StoreError;
use scim_store_core::backend::token;
use scim_store_core::document::from_nanos;
use scim_store_core::{
    ChangeEvent, ChangeOp, Members, ResourceKind, StoredResource, Tenant, TenantId, TokenInfo,
    TokenScope,
};
use serde_json::{Map, Value};
use std::collections::HashMap;
use tokio_postgres::Row;

/// The columns [`StoredRow::from_row`] reads, in order, for the row aliased `r`.
pub(crate) const COLUMNS: &str =
    "r.rid, r.kind, r.id, r.version, r.created_ns, r.modified_ns, r.doc, r.user_name_fold";

/// A stored row, before its derived attributes are added.
pub(crate) struct StoredRow {
    pub rid: i64,
    pub kind: ResourceKind,
    pub id: String,
    pub version: u64,
    pub created_ns: i64,
    pub modified_ns: i64,
    pub doc: String,
    pub user_name_fold: Option<String>,
}

impl StoredRow {
    pub(crate) fn from_row(row: &Row) -> PgResult<StoredRow> {
        let code: i16 = row.try_get(1)?;
        let version: i64 = row.try_get(3)?;
        Ok(StoredRow {
            rid: row.try_get(0)?,
            kind: kind_of(code)?,
            id: row.try_get(2)?,
            version: u64::try_from(version).unwrap_or(0),
            created_ns: row.try_get(4)?,
            modified_ns: row.try_get(5)?,
            doc: row.try_get(6)?,
            user_name_fold: row.try_get(7)?,
        })
    }
}

/// The stored code of `kind` (a `smallint` column).
pub(crate) fn code(kind: ResourceKind) -> i16 {
    i16::try_from(kind.code()).unwrap_or(i16::MAX)
}

pub(crate) fn kind_of(code: i16) -> PgResult<ResourceKind> {
    ResourceKind::from_code(i64::from(code)).ok_or_else(|| {
        StoreError::backend(format!("a stored resource has the unknown kind {code}")).into()
    })
}

/// The SQL of the derived attribute of `kind` for the row aliased `r`, as a JSON array of
/// arrays in the order served (`NULL` when there is none). Arrays, not objects, because the
/// order of an object's members is not kept by `json_build_object` consumers: the objects are
/// built in Rust by [`derived_values`].
pub(crate) fn derived_sql(kind: ResourceKind, members: Members) -> &'static str {
    match (kind, members) {
        // RFC 7643 section 4.1.2: the groups the user is a direct member of, in the order they
        // joined them (the first is their primary team in the workplace), then by age.
        (ResourceKind::User, _) => {
            "(SELECT json_agg(json_build_array(g.id, g.attrs ->> 'displayName') \
             ORDER BY m.joined_seq, g.rid) \
             FROM members m JOIN resources g ON g.rid = m.group_rid WHERE m.member_rid = r.rid)"
        }
        // RFC 7643 section 4.2: value, display (displayName, or a User's userName), type.
        (ResourceKind::Group, Members::Include) => {
            "(SELECT json_agg(json_build_array(x.id, x.kind, \
             coalesce(x.attrs ->> 'displayName', x.attrs ->> 'userName')) ORDER BY m.member_rid) \
             FROM members m JOIN resources x ON x.rid = m.member_rid WHERE m.group_rid = r.rid)"
        }
        (ResourceKind::Group, Members::Exclude) => "NULL::json",
    }
}

/// The name of the derived attribute of `kind`.
pub(crate) fn derived_name(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::User => "groups",
        ResourceKind::Group => "members",
    }
}

/// Turns what [`derived_sql`] selected into the attribute's values: `{value, display, type}`
/// (`$ref` is the server's, which knows its base URL).
pub(crate) fn derived_values(kind: ResourceKind, selected: Option<Value>) -> Vec<Value> {
    let Some(Value::Array(items)) = selected else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| {
            let Value::Array(parts) = item else {
                return None;
            };
            let mut parts = parts.into_iter();
            let id = parts.next()?;
            let (member_type, display) = match kind {
                ResourceKind::User => ("direct".to_owned(), parts.next()),
                ResourceKind::Group => {
                    let code = parts.next().and_then(|c| c.as_i64()).unwrap_or(1);
                    let member_kind = ResourceKind::from_code(code).unwrap_or(ResourceKind::User);
                    (member_kind.resource_type().to_owned(), parts.next())
                }
            };
            let mut object = Map::with_capacity(3);
            object.insert("value".to_owned(), id);
            if let Some(display @ Value::String(_)) = display {
                object.insert("display".to_owned(), display);
            }
            object.insert("type".to_owned(), Value::String(member_type));
            Some(Value::Object(object))
        })
        .collect()
}

/// Inserts `name` just before `meta`, so `meta` stays last as RFC 7643's examples show it.
pub(crate) fn insert_before_meta(object: &mut Map<String, Value>, name: &str, value: Value) {
    let meta = object.remove("meta");
    object.insert(name.to_owned(), value);
    if let Some(meta) = meta {
        object.insert("meta".to_owned(), meta);
    }
}

/// Parses a stored document.
pub(crate) fn parse(doc: &str) -> PgResult<Value> {
    serde_json::from_str(doc)
        .map_err(|e| StoreError::backend(format!("a stored document is invalid JSON: {e}")).into())
}

/// The served resource of `row`, with `derived` (what [`derived_sql`] selected) added.
pub(crate) fn resource_of(row: StoredRow, derived: Option<Value>) -> PgResult<StoredResource> {
    let mut document = parse(&row.doc)?;
    let values = derived_values(row.kind, derived);
    if let (false, Value::Object(object)) = (values.is_empty(), &mut document) {
        insert_before_meta(object, derived_name(row.kind), Value::Array(values));
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

fn get_sql(kind: ResourceKind, members: Members, by: &str) -> String {
    format!(
        "SELECT {COLUMNS}, {} FROM resources r WHERE {by}",
        derived_sql(kind, members)
    )
}

/// Resource `id` of `kind` (`id` is caseExact, RFC 7643 section 3.1; the folded column is the
/// index's key).
pub(crate) async fn get<C: GenericClient>(
    client: &C,
    tenant: TenantId,
    kind: ResourceKind,
    id: &str,
    members: Members,
) -> PgResult<Option<StoredResource>> {
    if id.contains('\0') {
        return Ok(None);
    }
    let stmt = client
        .prepare_cached(&get_sql(
            kind,
            members,
            "r.tenant = $1 AND r.id_fold = $2 AND r.id = $3 AND r.kind = $4",
        ))
        .await?;
    let found = client
        .query_opt(&stmt, &[&tenant.key(), &fold_case(id), &id, &code(kind)])
        .await?;
    match found {
        Some(row) => {
            let derived: Option<Value> = row.try_get(8)?;
            Ok(Some(resource_of(StoredRow::from_row(&row)?, derived)?))
        }
        None => Ok(None),
    }
}

/// The served resource with surrogate key `rid`.
pub(crate) async fn load<C: GenericClient>(
    client: &C,
    kind: ResourceKind,
    rid: i64,
    members: Members,
) -> PgResult<StoredResource> {
    let stmt = client
        .prepare_cached(&get_sql(kind, members, "r.rid = $1"))
        .await?;
    let row = client
        .query_opt(&stmt, &[&rid])
        .await?
        .ok_or_else(|| StoreError::backend(format!("resource {rid} vanished")))?;
    let derived: Option<Value> = row.try_get(8)?;
    resource_of(StoredRow::from_row(&row)?, derived)
}

/// The served resources with these surrogate keys (absent ones are skipped), by key.
pub(crate) async fn load_many<C: GenericClient>(
    client: &C,
    kind: ResourceKind,
    rids: &[i64],
    members: Members,
) -> PgResult<HashMap<i64, StoredResource>> {
    if rids.is_empty() {
        return Ok(HashMap::new());
    }
    let stmt = client
        .prepare_cached(&get_sql(kind, members, "r.rid = ANY($1)"))
        .await?;
    let rows = client.query(&stmt, &[&rids]).await?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let derived: Option<Value> = row.try_get(8)?;
        let stored = StoredRow::from_row(&row)?;
        out.insert(stored.rid, resource_of(stored, derived)?);
    }
    Ok(out)
}

/// How long a task may parse documents on an async worker before it lets the worker's other
/// tasks run. Parsing is CPU work with no await in it: a scan of large documents that never
/// yielded held its worker for the whole scan, and four of them kept `/healthz` waiting for
/// over a second on a two-core server.
const SLICE: std::time::Duration = std::time::Duration::from_millis(2);

/// A task's share of its worker: [`Slice::tick`] after each document yields once the task has
/// run for [`SLICE`].
pub(crate) struct Slice(std::time::Instant);

impl Slice {
    pub(crate) fn new() -> Slice {
        Slice(std::time::Instant::now())
    }

    /// Yields to the runtime if the slice is spent.
    pub(crate) async fn tick(&mut self) {
        if self.0.elapsed() >= SLICE {
            tokio::task::yield_now().await;
            self.0 = std::time::Instant::now();
        }
    }
}

/// The resources of a query's page, `rids` in order, for as many as fit the page's byte
/// budget ([`scim_store_core::Query::max_page_bytes`]), measured on each stored document and
/// what is derived with it (a User's `groups`, a Group's `members`). The rows are read as a
/// stream and the statement is abandoned as soon as they pass the budget, so a page never holds
/// more than that (and one resource); then only the prefix that fits by the documents' sizes
/// (read without loading them) is read again.
pub(crate) async fn load_page<C: GenericClient>(
    client: &C,
    kind: ResourceKind,
    rids: &[i64],
    query: &scim_store_core::Query,
) -> PgResult<Vec<StoredResource>> {
    let max = query.max_page_bytes.unwrap_or(usize::MAX);
    let mut loaded = match load_within(client, kind, rids, query.members, max).await? {
        Some(loaded) => loaded,
        None => {
            let fits = page_prefix(client, rids, &mut query.page_budget()).await?;
            let prefix = rids.get(..fits).unwrap_or_default();
            load_within(client, kind, prefix, query.members, usize::MAX)
                .await?
                .unwrap_or_default()
        }
    };
    let mut budget = query.page_budget();
    let mut page = Vec::with_capacity(loaded.len());
    for rid in rids {
        let Some((resource, bytes)) = loaded.remove(rid) else {
            continue;
        };
        if !budget.admit(bytes) {
            break;
        }
        page.push(resource);
    }
    Ok(page)
}

/// The resources `rids` (in no order) with their weight in a page's budget; `None` once they
/// weigh more than `max_bytes` together.
async fn load_within<C: GenericClient>(
    client: &C,
    kind: ResourceKind,
    rids: &[i64],
    members: Members,
    max_bytes: usize,
) -> PgResult<Option<HashMap<i64, (StoredResource, usize)>>> {
    if rids.is_empty() {
        return Ok(Some(HashMap::new()));
    }
    let stmt = client
        .prepare_cached(&get_sql(kind, members, "r.rid = ANY($1)"))
        .await?;
    let rows = client.query_raw(&stmt, [&rids]).await?;
    let mut rows = std::pin::pin!(rows);
    let mut out = HashMap::with_capacity(rids.len());
    let mut total: usize = 0;
    let mut slice = Slice::new();
    while let Some(row) = rows.next().await {
        slice.tick().await;
        let row = row?;
        let derived: Option<Value> = row.try_get(8)?;
        let stored = StoredRow::from_row(&row)?;
        let bytes = stored.doc.len()
            + derived
                .as_ref()
                .map_or(0, scim_store_core::PageBudget::json_bytes);
        total = total.saturating_add(bytes);
        // A single resource is always read: a page holds at least one.
        if total > max_bytes && rids.len() > 1 {
            return Ok(None);
        }
        out.insert(stored.rid, (resource_of(stored, derived)?, bytes));
    }
    Ok(Some(out))
}

/// How many of `rids`, from the first, fit `budget` by the size of their stored documents,
/// which PostgreSQL reads without loading (or decompressing) them.
async fn page_prefix<C: GenericClient>(
    client: &C,
    rids: &[i64],
    budget: &mut scim_store_core::PageBudget,
) -> PgResult<usize> {
    let stmt = client
        .prepare_cached("SELECT rid, octet_length(doc) FROM resources WHERE rid = ANY($1)")
        .await?;
    let sizes: HashMap<i64, i32> = client
        .query(&stmt, &[&rids])
        .await?
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
        .collect::<PgResult<_>>()?;
    Ok(rids
        .iter()
        .take_while(|rid| {
            let size = sizes.get(rid).copied().unwrap_or(0);
            budget.admit(usize::try_from(size).unwrap_or(0))
        })
        .count())
}

// ---- tenants, tokens, events ---------------------------------------------------------------

fn tenant_of(row: &Row) -> PgResult<Tenant> {
    Ok(Tenant {
        id: scim_store_core::backend::tenant_id(row.try_get(0)?),
        name: row.try_get(1)?,
        created: from_nanos(row.try_get(2)?),
    })
}

pub(crate) async fn tenant_by_name<C: GenericClient>(
    client: &C,
    name: &str,
) -> PgResult<Option<Tenant>> {
    if name.contains('\0') {
        return Ok(None);
    }
    let stmt = client
        .prepare_cached("SELECT id, name, created_ns FROM tenants WHERE name = $1")
        .await?;
    match client.query_opt(&stmt, &[&name]).await? {
        Some(row) => Ok(Some(tenant_of(&row)?)),
        None => Ok(None),
    }
}

pub(crate) async fn list_tenants<C: GenericClient>(client: &C) -> PgResult<Vec<Tenant>> {
    let stmt = client
        .prepare_cached("SELECT id, name, created_ns FROM tenants ORDER BY name")
        .await?;
    client
        .query(&stmt, &[])
        .await?
        .iter()
        .map(tenant_of)
        .collect()
}

fn token_of(row: &Row) -> PgResult<TokenInfo> {
    let scope: String = row.try_get(2)?;
    let revoked: Option<i64> = row.try_get(4)?;
    let last_used: Option<i64> = row.try_get("last_used_ns")?;
    Ok(TokenInfo {
        id: row.try_get(0)?,
        label: row.try_get(1)?,
        scope: TokenScope::from_name(&scope).unwrap_or(TokenScope::Scim),
        created: from_nanos(row.try_get(3)?),
        revoked: revoked.map(from_nanos),
        last_used: last_used.map(from_nanos),
    })
}

pub(crate) async fn list_tokens<C: GenericClient>(
    client: &C,
    tenant: TenantId,
) -> PgResult<Vec<TokenInfo>> {
    let stmt = client
        .prepare_cached(
            "SELECT id, label, scope, created_ns, revoked_ns, last_used_ns FROM tokens WHERE tenant = $1 \
             ORDER BY created_ns, id",
        )
        .await?;
    client
        .query(&stmt, &[&tenant.key()])
        .await?
        .iter()
        .map(token_of)
        .collect()
}

/// The tenant and token of a bearer secret, looked up by its digest (never cached: a
/// revocation is effective at once).
/// The tenant and token of `secret`, with the version of the tenant's schemas (read here so
/// that every authenticated request sees a schema change made elsewhere).
pub(crate) async fn authenticate<C: GenericClient>(
    client: &C,
    secret: &str,
) -> PgResult<Option<(Tenant, TokenInfo, u64)>> {
    if !secret.starts_with(token::SECRET_PREFIX) {
        return Ok(None);
    }
    let digest = token::digest(secret);
    let stmt = client
        .prepare_cached(
            "SELECT k.id, k.label, k.scope, k.created_ns, k.revoked_ns, k.digest, t.id, t.name, \
             t.created_ns, t.schemas_version, k.last_used_ns FROM tokens k \
             JOIN tenants t ON t.id = k.tenant \
             WHERE k.digest = $1",
        )
        .await?;
    let Some(row) = client.query_opt(&stmt, &[&&digest[..]]).await? else {
        return Ok(None);
    };
    let info = token_of(&row)?;
    let stored: Vec<u8> = row.try_get(5)?;
    let tenant = Tenant {
        id: scim_store_core::backend::tenant_id(row.try_get(6)?),
        name: row.try_get(7)?,
        created: from_nanos(row.try_get(8)?),
    };
    let schemas_version: i64 = row.try_get(9)?;
    Ok(
        (token::digests_equal(&stored, &digest) && info.revoked.is_none()).then_some((
            tenant,
            info,
            u64::try_from(schemas_version).unwrap_or(0),
        )),
    )
}

/// The version of the tenant's schemas and its documents (none at version 0, as for a tenant
/// that does not exist: its calls fail as they would without schemas).
pub(crate) async fn tenant_schemas<C: GenericClient>(
    client: &C,
    tenant: TenantId,
) -> PgResult<(u64, Vec<Value>)> {
    let stmt = client
        .prepare_cached(
            "SELECT t.schemas_version, s.documents FROM tenants t \
             LEFT JOIN tenant_schemas s ON s.tenant = t.id WHERE t.id = $1",
        )
        .await?;
    let Some(row) = client.query_opt(&stmt, &[&tenant.key()]).await? else {
        return Ok((0, Vec::new()));
    };
    let version: i64 = row.try_get(0)?;
    let stored: Option<String> = row.try_get(1)?;
    let documents = scim_store_core::schemas::stored_documents(tenant, stored.as_deref())?;
    Ok((u64::try_from(version).unwrap_or(0), documents))
}

pub(crate) async fn events<C: GenericClient>(
    client: &C,
    tenant: TenantId,
    after: u64,
    limit: usize,
) -> PgResult<Vec<ChangeEvent>> {
    let stmt = client
        .prepare_cached(
            // Only SCIM changes (kinds 1 and 2): the workplace events between them keep their
            // positions on the shared feed, so these numbers have gaps.
            "SELECT seq, kind, id, op, version, at_ns, actor, request_id FROM events \
             WHERE tenant = $1 AND seq > $2 AND kind IN (1, 2) ORDER BY seq LIMIT $3",
        )
        .await?;
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = client
        .query(&stmt, &[&tenant.key(), &after, &limit])
        .await?;
    rows.iter()
        .map(|row| {
            let seq: i64 = row.try_get(0)?;
            let op: String = row.try_get(3)?;
            let version: i64 = row.try_get(4)?;
            Ok(ChangeEvent {
                seq: u64::try_from(seq).unwrap_or(0),
                kind: kind_of(row.try_get(1)?)?,
                id: row.try_get(2)?,
                op: ChangeOp::from_name(&op).ok_or_else(|| {
                    StoreError::backend(format!("event {seq} has the unknown operation {op:?}"))
                })?,
                version: u64::try_from(version).unwrap_or(0),
                at: from_nanos(row.try_get(5)?),
                actor: row.try_get(6)?,
                request_id: row.try_get(7)?,
            })
        })
        .collect()
}
