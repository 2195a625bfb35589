//! The operator's half of the store ([`AdminStore`], issue 18): the provisioning log, the
//! per-minute activity behind sync health, pruning, and operator tokens. What is written and
//! how a listing narrows are decided in [`scim_store_core::admin`]; this module spells the
//! statements (tables of migration version 8).
//!
//! # Locks
//!
//! A batch of log entries takes its tenants' rows `FOR KEY SHARE`: that does not wait for the
//! SCIM and workplace writers (they take the row `FOR NO KEY UPDATE` to number their feed
//! entries), but a tenant's deletion (`FOR UPDATE`) waits for the batch, or the batch for the
//! deletion, which then drops that tenant's entries: no entry outlives its tenant. The usage and
//! activity rows are upserted in key order, so two replicas appending at once cannot deadlock
//! on them. Pruning deletes in chunks, each its own short transaction, and takes the tenant's
//! usage row `FOR UPDATE` before it trims by size, so that two replicas pruning at once do not
//! both remove the same excess.

use super::PostgresStore;
use super::write::check_no_nul;
use crate::conn::{Fail, PgResult, backoff};
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use scim_schema::DateTime;
use scim_store_core::admin::{
    ACTIVITY_KEPT_SECONDS, AdminStore, LastError, LogDialect, LogParam, LoggedRequest, Pruned,
    RequestFilter, RequestPage, RequestRecord, Retention, TokenActivity, activity_minute,
    activity_windows, datetime_ns, datetime_of_ns, where_clause,
};
use scim_store_core::backend::sql::SortValue;
use scim_store_core::backend::token;
use scim_store_core::document::{self, from_nanos, to_nanos};
use scim_store_core::{IssuedToken, ResourceKind, TenantId, TokenInfo, TokenScope};
use scim_store_core::{Result, StoreError};
use serde_json::Value;
use std::collections::{BTreeMap, HashSet};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};

/// How this backend spells what [`where_clause`] and
/// [`scrub_statement`](scim_store_core::admin::scrub_statement) write: numbered placeholders,
/// and a feed entry's person as the `events_by_person` index (version 3) spells it, so that the
/// index serves the lookup.
pub(crate) struct Dialect;

impl LogDialect for Dialect {
    fn placeholder(&self, index: usize) -> String {
        format!("${index}")
    }

    fn feed_person(&self) -> &'static str {
        "(detail ->> 'person')"
    }
}

/// The columns [`entry_of`] reads, in order.
macro_rules! log_columns {
    () => {
        "seq, at_ns, request_id, token_id, token_label, method, path, status, scim_type, detail, \
         duration_us, resource_type, resource_id, request_body, response_body, scrubbed"
    };
}

/// The longest text kept in a column a B-tree index holds, in bytes. PostgreSQL refuses an
/// index entry above about 2.7 KB (a third of a page), and one refused entry would fail its
/// whole batch; the server already bounds what it records below this (a detail, a path), so
/// only an absurd request id or resource id from a client is cut.
const MAX_INDEXED_BYTES: usize = 2048;

/// Cuts `text` to at most `max` bytes, on a character boundary.
fn cut(text: &mut String, max: usize) {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
}

/// What PostgreSQL's `text` cannot hold replaced: U+0000 becomes U+FFFD (a logged request may
/// quote what a client sent; refusing it would drop the batch).
fn without_nul(text: &mut String) {
    if text.contains('\0') {
        *text = text.replace('\0', "\u{FFFD}");
    }
}

/// The record as this backend can keep it (see [`MAX_INDEXED_BYTES`], [`without_nul`]):
/// unchanged for every record the server writes in practice.
fn storable(record: &mut RequestRecord) {
    for text in [
        &mut record.request_id,
        &mut record.token_id,
        &mut record.method,
        &mut record.token_label,
        &mut record.path,
    ] {
        without_nul(text);
    }
    for text in [
        &mut record.scim_type,
        &mut record.detail,
        &mut record.resource_id,
        &mut record.request_body,
        &mut record.response_body,
    ]
    .into_iter()
    .flatten()
    {
        without_nul(text);
    }
    for text in [
        &mut record.request_id,
        &mut record.token_id,
        &mut record.method,
    ] {
        cut(text, MAX_INDEXED_BYTES);
    }
    for text in [
        &mut record.scim_type,
        &mut record.detail,
        &mut record.resource_id,
    ]
    .into_iter()
    .flatten()
    {
        cut(text, MAX_INDEXED_BYTES);
    }
}

/// An unsigned count as a column value (saturating).
fn sql_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A column's count as unsigned (a negative one, which is never written, as 0).
fn count_of(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// The parameters of a [`where_clause`], typed as the prepared statement expects them: the
/// clause binds every integer as an `i64`, and PostgreSQL infers `integer` for a comparison
/// with the `status` column.
fn bind(types: &[Type], params: &[LogParam]) -> Vec<Box<dyn ToSql + Sync + Send>> {
    params
        .iter()
        .enumerate()
        .map(|(i, param)| -> Box<dyn ToSql + Sync + Send> {
            match param {
                LogParam::Int(n) => match types.get(i) {
                    Some(t) if *t == Type::INT4 => {
                        Box::new(i32::try_from(*n).unwrap_or(if *n < 0 {
                            i32::MIN
                        } else {
                            i32::MAX
                        }))
                    }
                    Some(t) if *t == Type::INT2 => {
                        Box::new(i16::try_from(*n).unwrap_or(if *n < 0 {
                            i16::MIN
                        } else {
                            i16::MAX
                        }))
                    }
                    _ => Box::new(*n),
                },
                LogParam::Text(s) => Box::new(s.clone()),
            }
        })
        .collect()
}

/// A log entry read with [`log_columns`]: its `(at_ns, seq)` position and the entry.
fn entry_of(tenant: TenantId, row: &Row) -> PgResult<((i64, i64), LoggedRequest)> {
    let seq: i64 = row.try_get(0)?;
    let at_ns: i64 = row.try_get(1)?;
    let status: i32 = row.try_get(7)?;
    let duration_us: i64 = row.try_get(10)?;
    let resource_type: Option<String> = row.try_get(11)?;
    let scrubbed: i32 = row.try_get(15)?;
    let record = RequestRecord {
        tenant,
        request_id: row.try_get(2)?,
        at: datetime_of_ns(at_ns),
        token_id: row.try_get(3)?,
        token_label: row.try_get(4)?,
        method: row.try_get(5)?,
        path: row.try_get(6)?,
        status: u16::try_from(status).unwrap_or(0),
        scim_type: row.try_get(8)?,
        detail: row.try_get(9)?,
        duration_us: count_of(duration_us),
        resource_type: resource_type
            .as_deref()
            .and_then(ResourceKind::from_resource_type),
        resource_id: row.try_get(12)?,
        request_body: row.try_get(13)?,
        response_body: row.try_get(14)?,
    };
    Ok((
        (at_ns, seq),
        LoggedRequest {
            record,
            scrubbed: scrubbed != 0,
        },
    ))
}

/// Scrubs the log of a User just deleted, in the deletion's transaction, when the tenant
/// anonymises former people: also a person without workplace history, whom no anonymisation
/// cascade visits.
pub(crate) async fn scrub_leaver(
    tx: &Transaction<'_>,
    cascades: &crate::workplace::Cascades<'_>,
    tenant: TenantId,
    person: &str,
) -> PgResult<()> {
    let context =
        crate::workplace::context(tx, cascades, tenant, crate::workplace::StateLock::Share).await?;
    if context.anonymises_former_people() {
        let scrub = scim_store_core::admin::scrub_statement(&Dialect, "split_part(path, '?', 1)");
        let stmt = tx.prepare_cached(&scrub).await?;
        tx.execute(&stmt, &[&tenant.key(), &person]).await?;
    }
    Ok(())
}

// ---- appending ------------------------------------------------------------------------------

/// Keeps `records` (already [`storable`]) in one transaction: see
/// [`AdminStore::append_requests`] and the module documentation.
async fn append(tx: &Transaction<'_>, records: &[RequestRecord]) -> PgResult<()> {
    let mut tenants: Vec<i64> = records.iter().map(|r| r.tenant.key()).collect();
    tenants.sort_unstable();
    tenants.dedup();
    let stmt = tx
        .prepare_cached("SELECT id FROM tenants WHERE id = ANY($1) ORDER BY id FOR KEY SHARE")
        .await?;
    let live: HashSet<i64> = tx
        .query(&stmt, &[&tenants])
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<std::result::Result<_, _>>()?;
    // An entry that waited in the server's queue while its person's anonymisation committed
    // is stored scrubbed, as the anonymisation scrubbed the entries already kept.
    let probe = tx
        .prepare_cached(&scim_store_core::admin::anonymised_probe_statement(
            &Dialect,
        ))
        .await?;
    let mut scrubbed_records = Vec::new();
    let mut kept: Vec<(&RequestRecord, bool)> = Vec::with_capacity(records.len());
    for record in records.iter().filter(|r| live.contains(&r.tenant.key())) {
        let anonymised = match record.anonymisation_probe() {
            Some((person, request)) => tx
                .query_one(&probe, &[&record.tenant.key(), &person, &request])
                .await?
                .try_get::<_, bool>(0)?,
            None => false,
        };
        if anonymised {
            let mut scrubbed = record.clone();
            scrubbed.scrub();
            scrubbed_records.push(scrubbed);
        }
        kept.push((record, anonymised));
    }
    let mut scrubbed_iter = scrubbed_records.iter();
    let kept: Vec<(&RequestRecord, &RequestRecord, i32)> = kept
        .into_iter()
        .map(|(original, anonymised)| match anonymised {
            true => (original, scrubbed_iter.next().unwrap_or(original), 1),
            false => (original, original, 0),
        })
        .collect();
    if kept.is_empty() {
        return Ok(());
    }

    let n = kept.len();
    let mut tenant = Vec::with_capacity(n);
    let mut at_ns = Vec::with_capacity(n);
    let mut request_id = Vec::with_capacity(n);
    let mut token_id = Vec::with_capacity(n);
    let mut token_label = Vec::with_capacity(n);
    let mut method = Vec::with_capacity(n);
    let mut path = Vec::with_capacity(n);
    let mut status = Vec::with_capacity(n);
    let mut scim_type = Vec::with_capacity(n);
    let mut detail = Vec::with_capacity(n);
    let mut duration_us = Vec::with_capacity(n);
    let mut resource_type = Vec::with_capacity(n);
    let mut resource_id = Vec::with_capacity(n);
    let mut request_body = Vec::with_capacity(n);
    let mut response_body = Vec::with_capacity(n);
    let mut bytes = Vec::with_capacity(n);
    let mut scrubbed = Vec::with_capacity(n);
    // Per tenant: (bytes, entries); per (tenant, token, minute): (requests, errors). Ordered,
    // so that the upserts lock their rows in one order in every replica.
    let mut usage: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    let mut activity: BTreeMap<(i64, &str, i64), (i64, i64)> = BTreeMap::new();
    for &(original, r, was_scrubbed) in &kept {
        scrubbed.push(was_scrubbed);
        let size = sql_i64(r.bytes());
        let key = r.tenant.key();
        tenant.push(key);
        at_ns.push(datetime_ns(r.at));
        request_id.push(r.request_id.as_str());
        token_id.push(r.token_id.as_str());
        token_label.push(r.token_label.as_str());
        method.push(r.method.as_str());
        path.push(r.path.as_str());
        status.push(i32::from(r.status));
        scim_type.push(r.scim_type.as_deref());
        detail.push(r.detail.as_deref());
        duration_us.push(sql_i64(r.duration_us));
        resource_type.push(r.resource_type.map(ResourceKind::resource_type));
        resource_id.push(r.resource_id.as_deref());
        request_body.push(r.request_body.as_deref());
        response_body.push(r.response_body.as_deref());
        bytes.push(size);
        let used = usage.entry(key).or_default();
        used.0 = used.0.saturating_add(size);
        used.1 += 1;
        let counted = activity
            .entry((
                key,
                original.token_id.as_str(),
                activity_minute(original.at),
            ))
            .or_default();
        counted.0 += 1;
        counted.1 += i64::from(r.is_error());
    }
    // One statement for the batch: the columns as arrays, unnested into rows.
    let stmt = tx
        .prepare_cached(
            "INSERT INTO request_log (tenant, at_ns, request_id, token_id, token_label, method, \
             path, status, scim_type, detail, duration_us, resource_type, resource_id, \
             request_body, response_body, bytes, scrubbed) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], \
             $5::text[], $6::text[], $7::text[], $8::integer[], $9::text[], $10::text[], \
             $11::bigint[], $12::text[], $13::text[], $14::text[], $15::text[], $16::bigint[], \
             $17::integer[])",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &tenant,
            &at_ns,
            &request_id,
            &token_id,
            &token_label,
            &method,
            &path,
            &status,
            &scim_type,
            &detail,
            &duration_us,
            &resource_type,
            &resource_id,
            &request_body,
            &response_body,
            &bytes,
            &scrubbed,
        ],
    )
    .await?;

    let mut keys = Vec::with_capacity(usage.len());
    let mut sizes = Vec::with_capacity(usage.len());
    let mut counts = Vec::with_capacity(usage.len());
    for (key, (size, entries)) in &usage {
        keys.push(*key);
        sizes.push(*size);
        counts.push(*entries);
    }
    let stmt = tx
        .prepare_cached(
            "INSERT INTO request_log_usage (tenant, bytes, entries) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) \
             ON CONFLICT (tenant) DO UPDATE SET \
             bytes = request_log_usage.bytes + excluded.bytes, \
             entries = request_log_usage.entries + excluded.entries",
        )
        .await?;
    tx.execute(&stmt, &[&keys, &sizes, &counts]).await?;

    let mut tenants = Vec::with_capacity(activity.len());
    let mut tokens = Vec::with_capacity(activity.len());
    let mut minutes = Vec::with_capacity(activity.len());
    let mut requests = Vec::with_capacity(activity.len());
    let mut errors = Vec::with_capacity(activity.len());
    for ((t, token, minute), (r, e)) in &activity {
        tenants.push(*t);
        tokens.push(*token);
        minutes.push(*minute);
        requests.push(*r);
        errors.push(*e);
    }
    let stmt = tx
        .prepare_cached(
            "INSERT INTO request_activity (tenant, token_id, minute, requests, errors) \
             SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[], \
             $5::bigint[]) \
             ON CONFLICT (tenant, token_id, minute) DO UPDATE SET \
             requests = request_activity.requests + excluded.requests, \
             errors = request_activity.errors + excluded.errors",
        )
        .await?;
    tx.execute(&stmt, &[&tenants, &tokens, &minutes, &requests, &errors])
        .await?;
    Ok(())
}

// ---- reading --------------------------------------------------------------------------------

/// The entries of a [`where_clause`] `sql` with its `params`, in the statement's order.
async fn listing<C: GenericClient>(
    client: &C,
    tenant: TenantId,
    sql: &str,
    params: &[LogParam],
) -> PgResult<Vec<((i64, i64), LoggedRequest)>> {
    // Prepared for this run only: the best plan depends on the values (a token that made most
    // of the requests or almost none), and the filters' shapes are the client's choice.
    let stmt = client.prepare(sql).await?;
    let values = bind(stmt.params(), params);
    let refs: Vec<&(dyn ToSql + Sync)> = values
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect();
    client
        .query(&stmt, &refs)
        .await?
        .iter()
        .map(|row| entry_of(tenant, row))
        .collect()
}

async fn request_by_id<C: GenericClient>(
    client: &C,
    tenant: TenantId,
    request_id: &str,
) -> PgResult<Option<LoggedRequest>> {
    let stmt = client
        .prepare_cached(concat!(
            "SELECT ",
            log_columns!(),
            " FROM request_log WHERE tenant = $1 AND request_id = $2 \
             ORDER BY at_ns DESC, seq DESC LIMIT 1"
        ))
        .await?;
    match client
        .query_opt(&stmt, &[&tenant.key(), &request_id])
        .await?
    {
        Some(row) => Ok(Some(entry_of(tenant, &row)?.1)),
        None => Ok(None),
    }
}

/// Each token's counts over the hour and the day windows, with its last request and its last
/// error read backwards through `request_log_by_token` and the partial
/// `request_log_errors_by_token` (one index probe each).
async fn activity<C: GenericClient>(
    client: &C,
    tenant: TenantId,
    now: DateTime,
) -> PgResult<Vec<TokenActivity>> {
    let (hour, day) = activity_windows(now);
    let minute = activity_minute(now);
    let stmt = client
        .prepare_cached(
            "SELECT a.token_id, a.requests_hour, a.errors_hour, a.requests_day, a.errors_day, \
             l.at_ns, e.request_id, e.at_ns, e.status, e.scim_type, e.detail \
             FROM (SELECT token_id, \
                   COALESCE(sum(requests) FILTER (WHERE minute >= $2), 0)::bigint AS requests_hour, \
                   COALESCE(sum(errors) FILTER (WHERE minute >= $2), 0)::bigint AS errors_hour, \
                   COALESCE(sum(requests), 0)::bigint AS requests_day, \
                   COALESCE(sum(errors), 0)::bigint AS errors_day \
                   FROM request_activity \
                   WHERE tenant = $1 AND minute >= $3 AND minute <= $4 \
                   GROUP BY token_id) AS a \
             LEFT JOIN LATERAL (SELECT r.at_ns FROM request_log r \
                   WHERE r.tenant = $1 AND r.token_id = a.token_id \
                   ORDER BY r.at_ns DESC, r.seq DESC LIMIT 1) AS l ON true \
             LEFT JOIN LATERAL (SELECT r.request_id, r.at_ns, r.status, r.scim_type, r.detail \
                   FROM request_log r \
                   WHERE r.tenant = $1 AND r.token_id = a.token_id AND r.status >= 400 \
                   ORDER BY r.at_ns DESC, r.seq DESC LIMIT 1) AS e ON true \
             ORDER BY a.token_id",
        )
        .await?;
    let rows = client
        .query(&stmt, &[&tenant.key(), &hour, &day, &minute])
        .await?;
    rows.iter()
        .map(|row| {
            let last_request: Option<i64> = row.try_get(5)?;
            let error_id: Option<String> = row.try_get(6)?;
            let last_error = match error_id {
                Some(request_id) => {
                    let at: i64 = row.try_get(7)?;
                    let status: i32 = row.try_get(8)?;
                    Some(LastError {
                        request_id,
                        at: datetime_of_ns(at),
                        status: u16::try_from(status).unwrap_or(0),
                        scim_type: row.try_get(9)?,
                        detail: row.try_get(10)?,
                    })
                }
                None => None,
            };
            Ok(TokenActivity {
                token_id: row.try_get(0)?,
                last_request: last_request.map(datetime_of_ns),
                requests_hour: count_of(row.try_get(1)?),
                errors_hour: count_of(row.try_get(2)?),
                requests_day: count_of(row.try_get(3)?),
                errors_day: count_of(row.try_get(4)?),
                last_error,
            })
        })
        .collect()
}

// ---- pruning --------------------------------------------------------------------------------

/// Subtracts what a chunk removed from the tenant's usage.
async fn release(tx: &Transaction<'_>, tenant: i64, entries: i64, bytes: i64) -> PgResult<()> {
    if entries == 0 {
        return Ok(());
    }
    let stmt = tx
        .prepare_cached(
            "UPDATE request_log_usage SET bytes = greatest(bytes - $2, 0), \
             entries = greatest(entries - $3, 0) WHERE tenant = $1",
        )
        .await?;
    tx.execute(&stmt, &[&tenant, &bytes, &entries]).await?;
    Ok(())
}

/// Removes at most `limit` of the tenant's entries from before `cutoff`, oldest first (through
/// `request_log_by_time`); how many.
async fn prune_aged(tx: &Transaction<'_>, tenant: i64, cutoff: i64, limit: i64) -> PgResult<i64> {
    let stmt = tx
        .prepare_cached(
            "WITH gone AS (DELETE FROM request_log WHERE seq IN \
             (SELECT seq FROM request_log WHERE tenant = $1 AND at_ns < $2 \
              ORDER BY at_ns, seq LIMIT $3) RETURNING bytes) \
             SELECT count(*), COALESCE(sum(bytes), 0)::bigint FROM gone",
        )
        .await?;
    let row = tx.query_one(&stmt, &[&tenant, &cutoff, &limit]).await?;
    let (entries, bytes): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    release(tx, tenant, entries, bytes).await?;
    Ok(entries)
}

/// Removes the tenant's oldest entries, at most `limit`, until its usage is within
/// `max_bytes`; how many, and whether it is now within (or has nothing left to remove).
async fn prune_oversize(
    tx: &Transaction<'_>,
    tenant: i64,
    max_bytes: i64,
    limit: i64,
) -> PgResult<(i64, bool)> {
    let stmt = tx
        .prepare_cached("SELECT bytes FROM request_log_usage WHERE tenant = $1 FOR UPDATE")
        .await?;
    let Some(row) = tx.query_opt(&stmt, &[&tenant]).await? else {
        return Ok((0, true));
    };
    let used: i64 = row.try_get(0)?;
    let excess = used.saturating_sub(max_bytes);
    if excess <= 0 {
        return Ok((0, true));
    }
    // The oldest entries whose bytes, added up from the oldest, cover the excess: an entry is
    // removed if the ones before it did not cover it yet.
    let stmt = tx
        .prepare_cached(
            "WITH gone AS (DELETE FROM request_log WHERE seq IN \
             (SELECT seq FROM \
               (SELECT seq, (sum(bytes) OVER (ORDER BY at_ns, seq ROWS UNBOUNDED PRECEDING))::bigint \
                       - bytes AS before \
                FROM (SELECT seq, at_ns, bytes FROM request_log WHERE tenant = $1 \
                      ORDER BY at_ns, seq LIMIT $2) AS oldest) AS running \
              WHERE before < $3::bigint) RETURNING bytes) \
             SELECT count(*), COALESCE(sum(bytes), 0)::bigint FROM gone",
        )
        .await?;
    let row = tx.query_one(&stmt, &[&tenant, &limit, &excess]).await?;
    let (entries, bytes): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
    if entries == 0 {
        // Over its size with no entry left: the usage row ran away from the log (it cannot,
        // but an operator may have deleted rows by hand). It is what is left: nothing.
        let stmt = tx
            .prepare_cached("UPDATE request_log_usage SET bytes = 0, entries = 0 WHERE tenant = $1")
            .await?;
        tx.execute(&stmt, &[&tenant]).await?;
        return Ok((0, true));
    }
    release(tx, tenant, entries, bytes).await?;
    // Cut short by the limit, it may still be over; otherwise the excess was covered.
    Ok((entries, entries < limit))
}

// ---- operator tokens ------------------------------------------------------------------------

fn operator_token_of(row: &Row) -> PgResult<TokenInfo> {
    let revoked: Option<i64> = row.try_get(3)?;
    let last_used: Option<i64> = row.try_get(4)?;
    Ok(TokenInfo {
        id: row.try_get(0)?,
        label: row.try_get(1)?,
        // Not stored: an operator token opens the admin API of every tenant.
        scope: TokenScope::Admin,
        created: from_nanos(row.try_get(2)?),
        revoked: revoked.map(from_nanos),
        last_used: last_used.map(from_nanos),
    })
}

async fn issue_operator_token(tx: &Transaction<'_>, label: &str) -> PgResult<IssuedToken> {
    check_no_nul(&Value::from(label))?;
    let id = token::new_token_id()?;
    let secret = token::new_secret()?;
    let stmt = tx
        .prepare_cached(
            "INSERT INTO operator_tokens (id, label, digest, created_ns) VALUES ($1, $2, $3, $4)",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &id,
            &label,
            &&token::digest(&secret)[..],
            &to_nanos(document::now()),
        ],
    )
    .await?;
    Ok(IssuedToken { id, secret })
}

/// The live operator token of `secret`, looked up by its digest (never cached: a revocation
/// is effective at once).
async fn operator_token<C: GenericClient>(client: &C, secret: &str) -> PgResult<Option<TokenInfo>> {
    if !secret.starts_with(token::SECRET_PREFIX) {
        return Ok(None);
    }
    let digest = token::digest(secret);
    let stmt = client
        .prepare_cached(
            "SELECT id, label, created_ns, revoked_ns, last_used_ns, digest \
             FROM operator_tokens WHERE digest = $1",
        )
        .await?;
    let Some(row) = client.query_opt(&stmt, &[&&digest[..]]).await? else {
        return Ok(None);
    };
    let info = operator_token_of(&row)?;
    let stored: Vec<u8> = row.try_get(5)?;
    Ok((token::digests_equal(&stored, &digest) && info.revoked.is_none()).then_some(info))
}

#[async_trait]
impl AdminStore for PostgresStore {
    async fn append_requests(&self, mut records: Vec<RequestRecord>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        records.iter_mut().for_each(storable);
        let records = &records;
        in_transaction!(self, |tx| append(&tx, records))
    }

    async fn requests(&self, tenant: &TenantId, filter: &RequestFilter) -> Result<RequestPage> {
        filter.check()?;
        let scope = self.cursor_key.request_log_scope(*tenant);
        let after = match &filter.cursor {
            None => None,
            Some(cursor) => match scope.decode(cursor)? {
                (SortValue::Int(at_ns), seq) => Some((at_ns, seq)),
                _ => {
                    return Err(StoreError::InvalidCursor(
                        "the cursor is not one of this log's listings; start the listing \
                         again without a cursor"
                            .into(),
                    ));
                }
            },
        };
        let (clause, params) = where_clause(&Dialect, *tenant, filter, after);
        let empty = RequestPage {
            entries: Vec::new(),
            next: None,
        };
        // No entry holds U+0000 (see `storable`), and PostgreSQL refuses it as a parameter.
        if params
            .iter()
            .any(|p| matches!(p, LogParam::Text(t) if t.contains('\0')))
        {
            return Ok(empty);
        }
        let page = filter.page_size();
        let sql = format!(
            concat!(
                "SELECT ",
                log_columns!(),
                " FROM request_log WHERE {} ORDER BY at_ns DESC, seq DESC LIMIT {}"
            ),
            clause,
            page + 1
        );
        let mut entries = with_client!(self, |client| listing(&client, *tenant, &sql, &params))?;
        let next = if entries.len() > page {
            entries.truncate(page);
            entries
                .last()
                .map(|((at_ns, seq), _)| scope.encode(&SortValue::Int(*at_ns), *seq))
        } else {
            None
        };
        Ok(RequestPage {
            entries: entries.into_iter().map(|(_, entry)| entry).collect(),
            next,
        })
    }

    async fn request(&self, tenant: &TenantId, request_id: &str) -> Result<Option<LoggedRequest>> {
        if request_id.contains('\0') {
            return Ok(None);
        }
        with_client!(self, |client| request_by_id(&client, *tenant, request_id))
    }

    async fn request_activity(
        &self,
        tenant: &TenantId,
        now: DateTime,
    ) -> Result<Vec<TokenActivity>> {
        with_client!(self, |client| activity(&client, *tenant, now))
    }

    async fn prune_requests(
        &self,
        retention: Retention,
        now: DateTime,
        budget: usize,
    ) -> Result<Pruned> {
        let oldest_minute = activity_minute(now) - ACTIVITY_KEPT_SECONDS / 60;
        with_client!(self, |client| async move {
            let stmt = client
                .prepare_cached("DELETE FROM request_activity WHERE minute < $1")
                .await?;
            client.execute(&stmt, &[&oldest_minute]).await?;
            PgResult::Ok(())
        })?;
        // A pass removes one entry at least, so that calling again while `more` finishes.
        let budget = sql_i64(budget.max(1) as u64);
        let cutoff = retention.cutoff_ns(now);
        let max_bytes = sql_i64(retention.max_bytes);
        // Only the tenants with something to remove: over their size, or with an entry past
        // its age (one probe of `request_log_by_time` each).
        let tenants: Vec<i64> = with_client!(self, |client| async move {
            let stmt = client
                .prepare_cached(
                    "SELECT u.tenant FROM request_log_usage u WHERE u.bytes > $1 \
                     OR EXISTS (SELECT 1 FROM request_log r WHERE r.tenant = u.tenant \
                                AND r.at_ns < $2) \
                     ORDER BY u.tenant",
                )
                .await?;
            client
                .query(&stmt, &[&max_bytes, &cutoff])
                .await?
                .iter()
                .map(|r| r.try_get(0).map_err(Fail::from))
                .collect::<PgResult<Vec<i64>>>()
        })?;
        let mut removed: i64 = 0;
        let stopped = |removed: i64| Pruned {
            entries: count_of(removed),
            more: true,
        };
        for tenant in tenants {
            loop {
                let left = budget - removed;
                if left <= 0 {
                    return Ok(stopped(removed));
                }
                let n = in_transaction!(self, |tx| prune_aged(&tx, tenant, cutoff, left))?;
                removed += n;
                if n < left {
                    break;
                }
            }
            loop {
                let left = budget - removed;
                if left <= 0 {
                    return Ok(stopped(removed));
                }
                let (n, within) =
                    in_transaction!(self, |tx| prune_oversize(&tx, tenant, max_bytes, left))?;
                removed += n;
                if within {
                    break;
                }
            }
        }
        Ok(Pruned {
            entries: count_of(removed),
            more: false,
        })
    }

    async fn issue_operator_token(&self, label: &str) -> Result<IssuedToken> {
        in_transaction!(self, |tx| issue_operator_token(&tx, label))
    }

    async fn authenticate_operator(&self, secret: &str) -> Result<Option<TokenInfo>> {
        let Some(mut info) = with_client!(self, |client| operator_token(&client, secret))? else {
            return Ok(None);
        };
        let now = document::now();
        if token::should_record_use(info.last_used, now) {
            let (id, at) = (info.id.as_str(), to_nanos(now));
            // Once a minute per token at most; a failure to record it must not refuse the
            // request, which only reads.
            let recorded = with_client!(self, |client| async move {
                client
                    .execute(
                        "UPDATE operator_tokens SET last_used_ns = $2 WHERE id = $1 \
                         AND (last_used_ns IS NULL OR last_used_ns < $2)",
                        &[&id, &at],
                    )
                    .await?;
                PgResult::Ok(())
            });
            if recorded.is_ok() {
                info.last_used = Some(now);
            }
        }
        Ok(Some(info))
    }

    async fn list_operator_tokens(&self) -> Result<Vec<TokenInfo>> {
        with_client!(self, |client| async move {
            let stmt = client
                .prepare_cached(
                    "SELECT id, label, created_ns, revoked_ns, last_used_ns \
                     FROM operator_tokens ORDER BY created_ns, id",
                )
                .await?;
            client
                .query(&stmt, &[])
                .await?
                .iter()
                .map(operator_token_of)
                .collect::<PgResult<Vec<_>>>()
        })
    }

    async fn revoke_operator_token(&self, token_id: &str) -> Result<bool> {
        if token_id.contains('\0') {
            return Ok(false);
        }
        in_transaction!(self, |tx| async {
            let stmt = tx
                .prepare_cached(
                    "UPDATE operator_tokens SET revoked_ns = $1 \
                     WHERE id = $2 AND revoked_ns IS NULL",
                )
                .await?;
            let changed = tx
                .execute(&stmt, &[&to_nanos(document::now()), &token_id])
                .await?;
            PgResult::Ok(changed == 1)
        })
    }
}
