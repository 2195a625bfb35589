//! The operator's half of the store ([`AdminStore`], issue 18): the provisioning log, the
//! per-minute activity behind sync health, pruning, and operator tokens. How the log is kept
//! (segments of entries with a summary and a Bloom filter) and how a listing reads it are
//! decided in [`scim_store_core::admin::segment`]; this module stores the rows (tables of
//! migration version 8) and reads them in the order the plan asks.
//!
//! # Locks
//!
//! A batch of log entries takes its tenants' rows `FOR KEY SHARE`: that does not wait for the
//! SCIM and workplace writers (they take the row `FOR NO KEY UPDATE` to number their feed
//! entries), but a tenant's deletion (`FOR UPDATE`) waits for the batch, or the batch for the
//! deletion, which then drops that tenant's entries: no entry outlives its tenant. The usage and
//! activity rows are upserted in key order, so two replicas appending at once cannot deadlock
//! on them. Pruning works a few segments at a time, each step its own short transaction, and
//! takes the tenant's usage row `FOR UPDATE` first, so that two replicas pruning at once do
//! not both remove the same entries.

use super::PostgresStore;
use super::write::check_no_nul;
use crate::conn::{Fail, PgResult, backoff};
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use scim_schema::DateTime;
use scim_store_core::admin::segment::{
    self, ActivityScan, Batch, HEADER_BATCH, HeaderRange, Listing, Offer, Oldest, PruneAction,
    SEGMENT_ENTRIES, SegmentHeader,
};
use scim_store_core::admin::{
    ACTIVITY_KEPT_SECONDS, AdminStore, LogDialect, LoggedRequest, Pruned, RequestFilter,
    RequestPage, RequestRecord, Retention, TokenActivity, activity_minute, activity_windows,
};
use scim_store_core::backend::token;
use scim_store_core::document::{self, from_nanos, to_nanos};
use scim_store_core::{IssuedToken, Result, StoreError, TenantId, TokenInfo, TokenScope};
use serde_json::Value;
use std::collections::HashSet;
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;

/// How this backend spells the feed statements of `scim_store_core::admin`: numbered
/// placeholders, and a feed entry's person as the `events_by_person` index (version 3) spells
/// it, so that the index serves the lookup.
pub(crate) struct Dialect;

impl LogDialect for Dialect {
    fn placeholder(&self, index: usize) -> String {
        format!("${index}")
    }

    fn feed_person(&self) -> &'static str {
        "(detail ->> 'person')"
    }

    fn feed_index(&self, _name: &'static str) -> String {
        String::new()
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

fn header_of(row: &Row) -> PgResult<SegmentHeader> {
    Ok(SegmentHeader {
        seq: row.try_get(0)?,
        first_ns: row.try_get(1)?,
        last_ns: row.try_get(2)?,
        summary: row.try_get(3)?,
        bloom: row.try_get(4)?,
    })
}

/// Up to [`HEADER_BATCH`] headers of `tenant` in `range`, newest first (through
/// `request_segments_by_time`).
async fn headers<C: GenericClient>(
    client: &C,
    tenant: TenantId,
    range: HeaderRange,
) -> PgResult<Vec<SegmentHeader>> {
    let (below_ns, below_seq) = range.below.unwrap_or((i64::MAX, i64::MAX));
    let stmt = client
        .prepare_cached(
            "SELECT seq, first_ns, last_ns, summary, bloom FROM request_segments \
             WHERE tenant = $1 AND first_ns <= $2 AND last_ns >= $3 \
             AND (last_ns, seq) < ($4, $5) \
             ORDER BY last_ns DESC, seq DESC LIMIT $6",
        )
        .await?;
    let batch = HEADER_BATCH as i64;
    client
        .query(
            &stmt,
            &[
                &tenant.key(),
                &range.max_first_ns,
                &range.min_last_ns,
                &below_ns,
                &below_seq,
                &batch,
            ],
        )
        .await?
        .iter()
        .map(header_of)
        .collect()
}

/// Every header of `tenant`, newest first, in batches.
fn all_headers() -> HeaderRange {
    HeaderRange {
        max_first_ns: i64::MAX,
        min_last_ns: i64::MIN,
        below: None,
    }
}

async fn payload<C: GenericClient>(client: &C, seq: i64) -> PgResult<Vec<u8>> {
    let stmt = client
        .prepare_cached("SELECT payload FROM request_segments WHERE seq = $1")
        .await?;
    Ok(client.query_one(&stmt, &[&seq]).await?.try_get(0)?)
}

async fn linked_requests<C: GenericClient>(
    client: &C,
    tenant: TenantId,
    person: &str,
) -> PgResult<Vec<String>> {
    // PostgreSQL refuses U+0000 in a text parameter; no feed entry names such a person.
    if person.contains('\0') {
        return Ok(Vec::new());
    }
    let stmt = client
        .prepare_cached(&scim_store_core::admin::linked_requests_statement(&Dialect))
        .await?;
    client
        .query(&stmt, &[&tenant.key(), &person])
        .await?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
}

/// Scrubs the log of a person being anonymised, in the anonymisation's transaction, before
/// the feed entries that find their requests are rewritten: every segment that may hold an
/// entry about them is read, and rewritten if it does ([`segment::scrub`]).
pub(crate) async fn scrub(tx: &Transaction<'_>, tenant: TenantId, person: &str) -> PgResult<()> {
    let linked = linked_requests(tx, tenant, person).await?;
    let mut range = all_headers();
    let update = tx
        .prepare_cached(
            "UPDATE request_segments SET payload = $2, summary = $3, bytes = $4 WHERE seq = $1",
        )
        .await?;
    loop {
        let batch = headers(tx, tenant, range).await?;
        for header in &batch {
            range.below = Some((header.last_ns, header.seq));
            if !segment::may_concern(header, person, &linked) {
                continue;
            }
            let text = payload(tx, header.seq).await?;
            if let Some(scrubbed) = segment::scrub(tenant, &text, person, &linked)? {
                tx.execute(
                    &update,
                    &[
                        &header.seq,
                        &scrubbed.payload,
                        &scrubbed.summary,
                        &scrubbed.bytes,
                    ],
                )
                .await?;
                release(tx, tenant.key(), 0, scrubbed.bytes_before - scrubbed.bytes).await?;
            }
        }
        if batch.len() < HEADER_BATCH {
            return Ok(());
        }
    }
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
        scrub(tx, tenant, person).await?;
    }
    Ok(())
}

// ---- appending ------------------------------------------------------------------------------

/// Keeps `records` in one transaction: see [`AdminStore::append_requests`] and the module
/// documentation.
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
    let probe = tx
        .prepare_cached(&scim_store_core::admin::anonymised_probe_statement(
            &Dialect,
        ))
        .await?;
    // Entries are checked against the feed for an anonymised person only in the tenants that
    // anonymise former people: elsewhere no anonymisation can have happened.
    let config = tx
        .prepare_cached("SELECT config FROM workplace_state WHERE tenant = $1")
        .await?;
    let mut anonymising = HashSet::new();
    for key in &live {
        let stored = match tx.query_opt(&config, &[key]).await? {
            Some(row) => row.try_get(0)?,
            None => None,
        };
        if crate::workplace::config_of(stored)?.anonymises_former_people() {
            anonymising.insert(*key);
        }
    }
    let mut kept = Vec::with_capacity(records.len());
    for record in records.iter().filter(|r| live.contains(&r.tenant.key())) {
        let key = record.tenant.key();
        let probed = if anonymising.contains(&key) {
            record.anonymisation_probe()
        } else {
            None
        };
        let anonymised = match probed {
            Some((person, request)) if !record.request_id.contains('\0') => tx
                .query_one(&probe, &[&key, &person, &request])
                .await?
                .try_get::<_, bool>(0)?,
            _ => false,
        };
        // A copy: the transaction may be run again with the same records.
        kept.push((record.clone(), anonymised));
    }
    if kept.is_empty() {
        return Ok(());
    }
    // Encoded (compression included) on the caller's thread, as the SQLite store does it
    // (see `AdminStore::append_requests`): scimd calls from the log's own thread.
    let Batch {
        segments,
        usage,
        activity,
    } = Batch::of(kept);
    let insert = tx
        .prepare_cached(
            "INSERT INTO request_segments (tenant, first_ns, last_ns, entries, bytes, summary, \
             bloom, payload) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .await?;
    for segment in segments {
        tx.execute(
            &insert,
            &[
                &segment.tenant.key(),
                &segment.first_ns,
                &segment.last_ns,
                &segment.entries,
                &segment.bytes,
                &segment.summary,
                &segment.bloom,
                &segment.payload,
            ],
        )
        .await?;
    }
    let add_usage = tx
        .prepare_cached(
            "INSERT INTO request_log_usage (tenant, bytes, entries) VALUES ($1, $2, $3) \
             ON CONFLICT (tenant) DO UPDATE SET bytes = request_log_usage.bytes + excluded.bytes, \
             entries = request_log_usage.entries + excluded.entries",
        )
        .await?;
    for (tenant, (bytes, entries)) in &usage {
        tx.execute(&add_usage, &[tenant, bytes, entries]).await?;
    }
    let add_activity = tx
        .prepare_cached(
            "INSERT INTO request_activity (tenant, token_id, minute, requests, errors) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tenant, token_id, minute) DO UPDATE SET \
             requests = request_activity.requests + excluded.requests, \
             errors = request_activity.errors + excluded.errors",
        )
        .await?;
    for ((tenant, token, minute), (requests, errors)) in &activity {
        tx.execute(&add_activity, &[tenant, token, minute, requests, errors])
            .await?;
    }
    Ok(())
}

// ---- reading --------------------------------------------------------------------------------

async fn list<C: GenericClient>(
    client: &C,
    mut listing: Listing,
    tenant: TenantId,
) -> PgResult<Listing> {
    if let Some(person) = listing.person().map(str::to_owned) {
        listing.set_linked(linked_requests(client, tenant, &person).await?);
    }
    'reading: while let Some(range) = listing.range() {
        let batch = headers(client, tenant, range).await?;
        for header in &batch {
            match listing.offer(header) {
                Offer::Done => break 'reading,
                Offer::Skip => {}
                Offer::Load => {
                    let text = payload(client, header.seq).await?;
                    listing.add(header, &text)?;
                }
            }
        }
        if batch.len() < HEADER_BATCH {
            listing.end_of_headers();
        }
    }
    Ok(listing)
}

async fn request_by_id<C: GenericClient>(
    client: &C,
    tenant: TenantId,
    request_id: &str,
) -> PgResult<Option<LoggedRequest>> {
    let mut range = all_headers();
    loop {
        let batch = headers(client, tenant, range).await?;
        for header in &batch {
            range.below = Some((header.last_ns, header.seq));
            if segment::may_hold_request(header, request_id) {
                let text = payload(client, header.seq).await?;
                if let Some(found) = segment::request_in(tenant, &text, request_id)? {
                    return Ok(Some(found));
                }
            }
        }
        if batch.len() < HEADER_BATCH {
            return Ok(None);
        }
    }
}

/// Each token's counts over the hour and the day windows (per-minute counters), with its last
/// request and its last error found in the segments, newest first.
async fn activity<C: GenericClient>(
    client: &C,
    tenant: TenantId,
    now: DateTime,
) -> PgResult<Vec<TokenActivity>> {
    let (hour, day) = activity_windows(now);
    let minute = activity_minute(now);
    let stmt = client
        .prepare_cached(
            "SELECT token_id, \
             COALESCE(sum(requests) FILTER (WHERE minute >= $2), 0)::bigint, \
             COALESCE(sum(errors) FILTER (WHERE minute >= $2), 0)::bigint, \
             COALESCE(sum(requests), 0)::bigint, COALESCE(sum(errors), 0)::bigint \
             FROM request_activity WHERE tenant = $1 AND minute >= $3 AND minute <= $4 \
             GROUP BY token_id ORDER BY token_id",
        )
        .await?;
    let mut counted = client
        .query(&stmt, &[&tenant.key(), &hour, &day, &minute])
        .await?
        .iter()
        .map(|row| {
            Ok(TokenActivity {
                token_id: row.try_get(0)?,
                requests_hour: count_of(row.try_get(1)?),
                errors_hour: count_of(row.try_get(2)?),
                requests_day: count_of(row.try_get(3)?),
                errors_day: count_of(row.try_get(4)?),
                ..TokenActivity::none("")
            })
        })
        .collect::<PgResult<Vec<_>>>()?;
    let mut scan = ActivityScan::new(counted.iter().map(|a| a.token_id.clone()));
    let mut range = all_headers();
    'reading: loop {
        let batch = headers(client, tenant, range).await?;
        for header in &batch {
            range.below = Some((header.last_ns, header.seq));
            if scan.is_done() {
                break 'reading;
            }
            if scan.wants(header) {
                scan.add(&payload(client, header.seq).await?)?;
            }
        }
        if batch.len() < HEADER_BATCH {
            break;
        }
    }
    scan.fill(&mut counted);
    Ok(counted)
}

// ---- pruning --------------------------------------------------------------------------------

/// Subtracts what a step removed from the tenant's usage.
async fn release(tx: &Transaction<'_>, tenant: i64, entries: i64, bytes: i64) -> PgResult<()> {
    if entries == 0 && bytes == 0 {
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

/// Removes, oldest first, at most `max_entries` entries of `tenant`: those older than
/// `cutoff`, or (without one) the oldest while its log is above `max_bytes`. Whole segments
/// are deleted; the one the limit falls in is rewritten without its removed entries
/// ([`segment::trim`]). Returns how many entries went.
async fn prune_step(
    tx: &Transaction<'_>,
    tenant: i64,
    cutoff: Option<i64>,
    max_bytes: i64,
    max_entries: i64,
) -> PgResult<i64> {
    let stmt = tx
        .prepare_cached("SELECT bytes FROM request_log_usage WHERE tenant = $1 FOR UPDATE")
        .await?;
    let mut used: i64 = match tx.query_opt(&stmt, &[&tenant]).await? {
        Some(row) => row.try_get(0)?,
        None => 0,
    };
    let oldest = tx
        .prepare_cached(
            "SELECT seq, first_ns, last_ns, entries, bytes, payload FROM request_segments \
             WHERE tenant = $1 ORDER BY last_ns, seq LIMIT 1",
        )
        .await?;
    let delete = tx
        .prepare_cached("DELETE FROM request_segments WHERE seq = $1")
        .await?;
    let rewrite = tx
        .prepare_cached(
            "UPDATE request_segments SET first_ns = $2, last_ns = $3, entries = $4, bytes = $5, \
             summary = $6, bloom = $7, payload = $8 WHERE seq = $1",
        )
        .await?;
    let mut removed = 0i64;
    while removed < max_entries {
        let Some(row) = tx.query_opt(&oldest, &[&tenant]).await? else {
            break;
        };
        let (seq, first_ns, last_ns, entries, bytes): (i64, i64, i64, i64, i64) = (
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
            row.try_get(4)?,
        );
        let left = max_entries - removed;
        let oldest = Oldest {
            first_ns,
            last_ns,
            entries,
            bytes,
        };
        let trim = match segment::prune_action(&oldest, cutoff, used, max_bytes, left) {
            PruneAction::Stop => break,
            PruneAction::Delete => None,
            PruneAction::Trim(trim) => Some(trim),
        };
        let (gone, gone_bytes) = match trim {
            None => {
                tx.execute(&delete, &[&seq]).await?;
                (entries, bytes)
            }
            Some(trim) => {
                let text: Vec<u8> = row.try_get(5)?;
                let trimmed = segment::trim(
                    scim_store_core::backend::tenant_id(tenant),
                    &text,
                    trim,
                    usize::try_from(left).unwrap_or(usize::MAX),
                )?;
                match &trimmed.rest {
                    None if trimmed.entries == entries => {
                        tx.execute(&delete, &[&seq]).await?;
                    }
                    None => {}
                    Some(rest) => {
                        tx.execute(
                            &rewrite,
                            &[
                                &seq,
                                &rest.first_ns,
                                &rest.last_ns,
                                &rest.entries,
                                &rest.bytes,
                                &rest.summary,
                                &rest.bloom,
                                &rest.payload,
                            ],
                        )
                        .await?;
                    }
                }
                (
                    trimmed.entries,
                    bytes - trimmed.rest.as_ref().map_or(0, |r| r.bytes),
                )
            }
        };
        release(tx, tenant, gone, gone_bytes).await?;
        used -= gone_bytes;
        removed += gone;
        // A segment only partly due ends the step: the next one is newer.
        if trim.is_some() || gone == 0 {
            break;
        }
    }
    Ok(removed)
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
    async fn append_requests(&self, records: Vec<RequestRecord>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        let records = &records;
        in_transaction!(self, |tx| append(&tx, records))
    }

    async fn requests(&self, tenant: &TenantId, filter: &RequestFilter) -> Result<RequestPage> {
        let scope = self.cursor_key.request_log_scope(*tenant);
        let listing = Listing::new(*tenant, filter, &scope)?;
        let listing = &std::sync::Mutex::new(Some(listing));
        let done = with_client!(self, |client| async move {
            // Taken once: a retried call (a lost connection) starts a fresh listing.
            let listing = match listing.lock().ok().and_then(|mut l| l.take()) {
                Some(listing) => listing,
                None => Listing::new(*tenant, filter, &self.cursor_key.request_log_scope(*tenant))?,
            };
            list(&client, listing, *tenant).await
        })?;
        Ok(done.finish(&scope))
    }

    async fn request(&self, tenant: &TenantId, request_id: &str) -> Result<Option<LoggedRequest>> {
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
        // Only the tenants with something to remove: over their size, or with a segment that
        // starts before the cutoff (one probe of the time index each).
        let tenants: Vec<i64> = with_client!(self, |client| async move {
            let stmt = client
                .prepare_cached(
                    "SELECT u.tenant FROM request_log_usage u WHERE u.bytes > $1 \
                     OR EXISTS (SELECT 1 FROM request_segments r WHERE r.tenant = u.tenant \
                                AND r.first_ns < $2) \
                     ORDER BY u.tenant",
                )
                .await?;
            client
                .query(&stmt, &[&max_bytes, &cutoff])
                .await?
                .iter()
                .map(|r| Ok(r.try_get(0)?))
                .collect::<PgResult<Vec<i64>>>()
        })?;
        let mut removed: i64 = 0;
        for tenant in tenants {
            for by_age in [Some(cutoff), None] {
                loop {
                    let left = budget - removed;
                    if left <= 0 {
                        return Ok(Pruned {
                            entries: count_of(removed),
                            more: true,
                        });
                    }
                    let step = left.min(4 * SEGMENT_ENTRIES as i64);
                    let n = in_transaction!(self, |tx| prune_step(
                        &tx, tenant, by_age, max_bytes, step
                    ))?;
                    removed += n;
                    if n == 0 {
                        break;
                    }
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
