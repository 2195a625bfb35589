//! The tenant's feed: SCIM change events and workplace entries, appended in the caller's
//! transaction at the tenant's next sequence numbers (one gap-free sequence for both). The
//! directory writes, the workplace writes and the cascades all append here; it imports none
//! of them.

use super::read::{nanos, to_u64};
use crate::conn::SqlResult;
use rusqlite::{Connection, OptionalExtension, params};
use scim_schema::DateTime;
use scim_store_core::workplace::plan::FeedDraft;
use scim_store_core::{ChangeOp, ResourceKind, TenantId, WriteContext};
use scim_store_core::{Result, StoreError};

/// Appends the change event, in the caller's transaction (the change feed's guarantee: an
/// event exists exactly for each committed change).
#[allow(clippy::too_many_arguments)]
pub(crate) fn append_event(
    conn: &Connection,
    tenant: TenantId,
    kind: ResourceKind,
    id: &str,
    op: ChangeOp,
    version: u64,
    at: DateTime,
    ctx: &WriteContext,
) -> Result<()> {
    append_entry(
        conn,
        tenant,
        kind.code(),
        id,
        op.as_str(),
        Some(version),
        at,
        &ctx.actor,
        ctx.request_id.as_deref(),
        None,
    )
    .map(|_| ())
}

/// Appends one entry to the tenant's feed, SCIM change or workplace event (`code` is
/// [`scim_store_core::workplace::FeedSubject::code`]), at the tenant's next sequence number, in the
/// caller's transaction; returns the sequence number. A `version` of `None` is stored as 0
/// (versions start at 1).
#[allow(clippy::too_many_arguments)]
pub(crate) fn append_entry(
    conn: &Connection,
    tenant: TenantId,
    code: i64,
    id: &str,
    op: &str,
    version: Option<u64>,
    at: DateTime,
    actor: &str,
    request_id: Option<&str>,
    detail: Option<&str>,
) -> Result<u64> {
    let mut next = conn
        .prepare_cached(
            "UPDATE tenants SET last_seq = last_seq + 1 WHERE id = ?1 RETURNING last_seq",
        )
        .sql()?;
    let seq: i64 = next
        .query_row([tenant.key()], |r| r.get(0))
        .optional()
        .sql()?
        .ok_or_else(|| StoreError::TenantNotFound(tenant.to_string()))?;
    let mut insert = conn.prepare_cached(
        "INSERT INTO events (tenant, seq, kind, id, op, version, at_ns, actor, request_id, detail) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    ).sql()?;
    insert
        .execute(params![
            tenant.key(),
            seq,
            code,
            id,
            op,
            version_sql(version.unwrap_or(0)),
            nanos(at),
            actor,
            request_id,
            detail
        ])
        .sql()?;
    Ok(to_u64(seq))
}

/// Appends `drafts` to the feed, in order.
pub(crate) fn append_drafts(
    conn: &Connection,
    tenant: TenantId,
    drafts: &[FeedDraft],
    at: DateTime,
    actor: &str,
    request_id: Option<&str>,
) -> Result<()> {
    for draft in drafts {
        // A null detail is stored as NULL, as the PostgreSQL store does.
        let detail = if draft.detail.is_null() {
            None
        } else {
            Some(
                serde_json::to_string(&draft.detail)
                    .map_err(|e| StoreError::backend(format!("feed detail JSON: {e}")))?,
            )
        };
        append_entry(
            conn,
            tenant,
            draft.subject.code(),
            &draft.id,
            draft.op,
            draft.version,
            at,
            actor,
            request_id,
            detail.as_deref(),
        )?;
    }
    Ok(())
}

pub(crate) fn version_sql(version: u64) -> i64 {
    i64::try_from(version).unwrap_or(i64::MAX)
}
