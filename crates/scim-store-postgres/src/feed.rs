//! The tenant's feed: SCIM change events and workplace entries, appended in the caller's
//! transaction at the tenant's next sequence numbers (one gap-free sequence for both). The
//! directory writes, the workplace writes and the cascades all append here; it imports none
//! of them.

use super::read::code;
use crate::conn::PgResult;
use deadpool_postgres::Transaction;
use scim_schema::DateTime;
use scim_store_core::document::to_nanos;
use scim_store_core::workplace::plan::FeedDraft;
use scim_store_core::{ChangeOp, ResourceKind, StoreError, TenantId, WriteContext};
use serde_json::Value;

/// Appends the change event with the tenant's next sequence number, in the caller's
/// transaction. The `UPDATE` locks the tenant row until `COMMIT`: see the module documentation
/// of [`super`] for why this makes the feed gap-free and in commit order. Call it last.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn append_event(
    tx: &Transaction<'_>,
    tenant: TenantId,
    kind: ResourceKind,
    id: &str,
    op: ChangeOp,
    version: u64,
    at: DateTime,
    ctx: &WriteContext,
) -> PgResult<()> {
    let stmt = tx
        .prepare_cached(
            "WITH s AS (UPDATE tenants SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq) \
             INSERT INTO events (tenant, seq, kind, id, op, version, at_ns, actor, request_id) \
             SELECT $1, s.last_seq, $2, $3, $4, $5, $6, $7, $8 FROM s RETURNING seq",
        )
        .await?;
    let rows = tx
        .query(
            &stmt,
            &[
                &tenant.key(),
                &code(kind),
                &id,
                &op.as_str(),
                &version_sql(version),
                &to_nanos(at),
                &ctx.actor,
                &ctx.request_id,
            ],
        )
        .await?;
    if rows.is_empty() {
        return Err(StoreError::TenantNotFound(tenant.to_string()).into());
    }
    Ok(())
}

/// Appends workplace feed entries with the tenant's next sequence numbers, in order, in the
/// caller's transaction: the same allocation as [`append_event`] (one `UPDATE` of the tenant
/// row for all of them), so SCIM changes and workplace events share one gap-free sequence in
/// commit order. Call it last (after the write's own SCIM event, if it has one: the tenant row
/// is then already locked, and the entries follow that event directly).
pub(crate) async fn append_feed(
    tx: &Transaction<'_>,
    tenant: TenantId,
    drafts: &[FeedDraft],
    at: DateTime,
    actor: &str,
    request_id: Option<&str>,
) -> PgResult<()> {
    if drafts.is_empty() {
        return Ok(());
    }
    let count = i64::try_from(drafts.len()).unwrap_or(i64::MAX);
    let ordinals: Vec<i64> = (1..=count).collect();
    let kinds: Vec<i16> = drafts
        .iter()
        .map(|d| i16::try_from(d.subject.code()).unwrap_or(i16::MAX))
        .collect();
    let ids: Vec<&str> = drafts.iter().map(|d| d.id.as_str()).collect();
    let ops: Vec<&str> = drafts.iter().map(|d| d.op).collect();
    let versions: Vec<Option<i64>> = drafts.iter().map(|d| d.version.map(version_sql)).collect();
    let details: Vec<Option<&Value>> = drafts
        .iter()
        .map(|d| (!d.detail.is_null()).then_some(&d.detail))
        .collect();
    let stmt = tx
        .prepare_cached(
            "WITH s AS (UPDATE tenants SET last_seq = last_seq + $2 WHERE id = $1 RETURNING last_seq) \
             INSERT INTO events (tenant, seq, kind, id, op, version, at_ns, actor, request_id, detail) \
             SELECT $1, s.last_seq - $2 + u.n, u.kind, u.id, u.op, u.version, $3, $4, $5, u.detail \
             FROM s, unnest($6::bigint[], $7::smallint[], $8::text[], $9::text[], $10::bigint[], $11::jsonb[]) \
             AS u(n, kind, id, op, version, detail)",
        )
        .await?;
    let inserted = tx
        .execute(
            &stmt,
            &[
                &tenant.key(),
                &count,
                &to_nanos(at),
                &actor,
                &request_id,
                &ordinals,
                &kinds,
                &ids,
                &ops,
                &versions,
                &details,
            ],
        )
        .await?;
    if inserted == 0 {
        return Err(StoreError::TenantNotFound(tenant.to_string()).into());
    }
    Ok(())
}

pub(crate) fn version_sql(version: u64) -> i64 {
    i64::try_from(version).unwrap_or(i64::MAX)
}
