//! [`AdminStore`]: the provisioning log, its activity counters and pruning, operator tokens
//! (schema version 11). What to select and what to prune is decided in
//! `scim_store_core::admin`; this file spells it in SQLite.

use crate::SqliteStore;
use crate::conn::SqlResult;
use rusqlite::{Connection, OptionalExtension, params};
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
use scim_store_core::document;
use scim_store_core::{IssuedToken, Result, TenantId, TokenInfo, TokenScope};
use std::collections::BTreeSet;
use std::sync::Arc;

/// SQLite's spelling of the log's SQL.
pub(crate) struct Dialect;

impl LogDialect for Dialect {
    fn placeholder(&self, index: usize) -> String {
        format!("?{index}")
    }

    fn feed_person(&self) -> &'static str {
        // The expression `events_by_person` indexes, so the lookup uses it.
        "detail ->> '$.person'"
    }

    fn feed_index(&self, name: &'static str) -> String {
        format!(" INDEXED BY {name}")
    }
}

/// A segment header of a row read as `seq, first_ns, last_ns, summary, bloom`.
fn header_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<SegmentHeader> {
    Ok(SegmentHeader {
        seq: row.get(0)?,
        first_ns: row.get(1)?,
        last_ns: row.get(2)?,
        summary: row.get(3)?,
        bloom: row.get(4)?,
    })
}

/// Up to [`HEADER_BATCH`] headers of `tenant` in `range`, newest first.
fn headers(conn: &Connection, tenant: TenantId, range: HeaderRange) -> Result<Vec<SegmentHeader>> {
    let (below_ns, below_seq) = range.below.unwrap_or((i64::MAX, i64::MAX));
    conn.prepare_cached(
        "SELECT seq, first_ns, last_ns, summary, bloom FROM request_segments \
         INDEXED BY request_segments_by_time \
         WHERE tenant = ?1 AND first_ns <= ?2 AND last_ns >= ?3 \
         AND (last_ns < ?4 OR (last_ns = ?4 AND seq < ?5)) \
         ORDER BY last_ns DESC, seq DESC LIMIT ?6",
    )
    .sql()?
    .query_map(
        params![
            tenant.key(),
            range.max_first_ns,
            range.min_last_ns,
            below_ns,
            below_seq,
            HEADER_BATCH as i64
        ],
        header_of,
    )
    .sql()?
    .collect::<rusqlite::Result<_>>()
    .sql()
}

/// Every header of `tenant`, newest first, offered to `visit` until it returns false.
fn each_header(
    conn: &Connection,
    tenant: TenantId,
    mut visit: impl FnMut(&SegmentHeader) -> Result<bool>,
) -> Result<()> {
    let mut range = HeaderRange {
        max_first_ns: i64::MAX,
        min_last_ns: i64::MIN,
        below: None,
    };
    loop {
        let batch = headers(conn, tenant, range)?;
        for header in &batch {
            range.below = Some((header.last_ns, header.seq));
            if !visit(header)? {
                return Ok(());
            }
        }
        if batch.len() < HEADER_BATCH {
            return Ok(());
        }
    }
}

fn payload(conn: &Connection, seq: i64) -> Result<Vec<u8>> {
    conn.prepare_cached("SELECT payload FROM request_segments WHERE seq = ?1")
        .sql()?
        .query_row([seq], |r| r.get(0))
        .sql()
}

fn linked_requests(conn: &Connection, tenant: TenantId, person: &str) -> Result<Vec<String>> {
    conn.prepare_cached(&scim_store_core::admin::linked_requests_statement(&Dialect))
        .sql()?
        .query_map(params![tenant.key(), person], |r| r.get(0))
        .sql()?
        .collect::<rusqlite::Result<_>>()
        .sql()
}

/// Which records of a batch concern a person already anonymised: one read, before the write.
/// Entries are checked against the feed only in the tenants that anonymise former people
/// (elsewhere no anonymisation can have happened).
fn anonymised_flags(conn: &Connection, records: &[RequestRecord]) -> Result<Vec<bool>> {
    let tenants: BTreeSet<i64> = records.iter().map(|r| r.tenant.key()).collect();
    let mut anonymising = BTreeSet::new();
    for key in tenants {
        let (config, _) =
            crate::workplace::load_config(conn, scim_store_core::backend::tenant_id(key))?;
        if config.anonymises_former_people() {
            anonymising.insert(key);
        }
    }
    let mut probe = conn
        .prepare_cached(&scim_store_core::admin::anonymised_probe_statement(
            &Dialect,
        ))
        .sql()?;
    records
        .iter()
        .map(|record| {
            let key = record.tenant.key();
            match anonymising
                .contains(&key)
                .then(|| record.anonymisation_probe())
                .flatten()
            {
                Some((person, request)) => probe
                    .query_row(params![key, person, request], |r| r.get::<_, bool>(0))
                    .sql(),
                None => Ok(false),
            }
        })
        .collect()
}

/// Writes a prepared batch (the writer's job): the rows of the tenants that still exist.
fn append(conn: &Connection, batch: &Batch) -> Result<()> {
    let mut live = BTreeSet::new();
    {
        let mut exists = conn
            .prepare_cached("SELECT 1 FROM tenants WHERE id = ?1")
            .sql()?;
        for key in batch.usage.keys() {
            if exists.exists([key]).sql()? {
                live.insert(*key);
            }
        }
    }
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO request_segments (tenant, first_ns, last_ns, entries, bytes, summary, \
             bloom, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )
        .sql()?;
    for segment in batch
        .segments
        .iter()
        .filter(|s| live.contains(&s.tenant.key()))
    {
        insert
            .execute(params![
                segment.tenant.key(),
                segment.first_ns,
                segment.last_ns,
                segment.entries,
                segment.bytes,
                segment.summary,
                segment.bloom,
                segment.payload,
            ])
            .sql()?;
    }
    let mut add_usage = conn
        .prepare_cached(
            "INSERT INTO request_log_usage (tenant, bytes, entries) VALUES (?1, ?2, ?3) \
             ON CONFLICT (tenant) DO UPDATE SET bytes = bytes + excluded.bytes, \
             entries = entries + excluded.entries",
        )
        .sql()?;
    for (tenant, (bytes, entries)) in batch.usage.iter().filter(|(t, _)| live.contains(t)) {
        add_usage.execute(params![tenant, bytes, entries]).sql()?;
    }
    let mut add_activity = conn
        .prepare_cached(
            "INSERT INTO request_activity (tenant, token_id, minute, requests, errors) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (tenant, token_id, minute) DO UPDATE SET \
             requests = requests + excluded.requests, errors = errors + excluded.errors",
        )
        .sql()?;
    for ((tenant, token, minute), (requests, errors)) in batch
        .activity
        .iter()
        .filter(|((t, _, _), _)| live.contains(t))
    {
        add_activity
            .execute(params![tenant, token, minute, requests, errors])
            .sql()?;
    }
    Ok(())
}

fn list(conn: &Connection, mut listing: Listing, tenant: TenantId) -> Result<Listing> {
    if let Some(person) = listing.person().map(str::to_owned) {
        listing.set_linked(linked_requests(conn, tenant, &person)?);
    }
    'reading: while let Some(range) = listing.range() {
        let batch = headers(conn, tenant, range)?;
        for header in &batch {
            match listing.offer(header) {
                Offer::Done => break 'reading,
                Offer::Skip => {}
                Offer::Load => listing.add(header, &payload(conn, header.seq)?)?,
            }
        }
        if batch.len() < HEADER_BATCH {
            listing.end_of_headers();
        }
    }
    Ok(listing)
}

fn find_request(
    conn: &Connection,
    tenant: TenantId,
    request_id: &str,
) -> Result<Option<LoggedRequest>> {
    let mut found = None;
    each_header(conn, tenant, |header| {
        if segment::may_hold_request(header, request_id) {
            found = segment::request_in(tenant, &payload(conn, header.seq)?, request_id)?;
        }
        Ok(found.is_none())
    })?;
    Ok(found)
}

fn activity(conn: &Connection, tenant: TenantId, now: DateTime) -> Result<Vec<TokenActivity>> {
    let (hour, day) = activity_windows(now);
    let mut stmt = conn
        .prepare_cached(
            "SELECT token_id, sum(CASE WHEN minute >= ?2 THEN requests ELSE 0 END), \
             sum(CASE WHEN minute >= ?2 THEN errors ELSE 0 END), sum(requests), sum(errors) \
             FROM request_activity WHERE tenant = ?1 AND minute >= ?3 GROUP BY token_id \
             ORDER BY token_id",
        )
        .sql()?;
    let mut counted = stmt
        .query_map(params![tenant.key(), hour, day], |row| {
            let n = |i: usize| -> rusqlite::Result<u64> {
                Ok(u64::try_from(row.get::<_, i64>(i)?).unwrap_or(0))
            };
            Ok(TokenActivity {
                token_id: row.get(0)?,
                requests_hour: n(1)?,
                errors_hour: n(2)?,
                requests_day: n(3)?,
                errors_day: n(4)?,
                ..TokenActivity::none("")
            })
        })
        .sql()?
        .collect::<rusqlite::Result<Vec<_>>>()
        .sql()?;
    let mut scan = ActivityScan::new(counted.iter().map(|a| a.token_id.clone()));
    each_header(conn, tenant, |header| {
        if scan.wants(header) {
            scan.add(&payload(conn, header.seq)?)?;
        }
        Ok(!scan.is_done())
    })?;
    scan.fill(&mut counted);
    Ok(counted)
}

/// Removes, oldest first, at most `max_entries` entries of `tenant`: those older than
/// `cutoff`, or (without one) the oldest while its log is above `max_bytes`. Whole segments
/// are deleted; the one the limit falls in is rewritten without its removed entries
/// ([`segment::trim`]). Returns how many entries went.
fn prune_chunk(
    conn: &Connection,
    tenant: i64,
    cutoff: Option<i64>,
    max_bytes: i64,
    max_entries: usize,
) -> Result<u64> {
    let mut removed = 0usize;
    let mut used: i64 = conn
        .prepare_cached("SELECT bytes FROM request_log_usage WHERE tenant = ?1")
        .sql()?
        .query_row([tenant], |r| r.get(0))
        .optional()
        .sql()?
        .unwrap_or(0);
    while removed < max_entries {
        let oldest = conn
            .prepare_cached(
                "SELECT seq, first_ns, last_ns, entries, bytes, payload FROM request_segments \
                 INDEXED BY request_segments_by_time WHERE tenant = ?1 \
                 ORDER BY last_ns, seq LIMIT 1",
            )
            .sql()?
            .query_row([tenant], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                    r.get::<_, i64>(4)?,
                    r.get::<_, Vec<u8>>(5)?,
                ))
            })
            .optional()
            .sql()?;
        let Some((seq, first_ns, last_ns, entries, bytes, payload)) = oldest else {
            break;
        };
        let left = max_entries - removed;
        let oldest = Oldest {
            first_ns,
            last_ns,
            entries,
            bytes,
        };
        let trim = match segment::prune_action(
            &oldest,
            cutoff,
            used,
            max_bytes,
            i64::try_from(left).unwrap_or(i64::MAX),
        ) {
            PruneAction::Stop => break,
            PruneAction::Delete => None,
            PruneAction::Trim(trim) => Some(trim),
        };
        let (gone, gone_bytes) = match trim {
            None => {
                conn.prepare_cached("DELETE FROM request_segments WHERE seq = ?1")
                    .sql()?
                    .execute([seq])
                    .sql()?;
                (entries, bytes)
            }
            Some(trim) => {
                let trimmed = segment::trim(
                    scim_store_core::backend::tenant_id(tenant),
                    &payload,
                    trim,
                    left,
                )?;
                match &trimmed.rest {
                    None if trimmed.entries == entries => {
                        conn.prepare_cached("DELETE FROM request_segments WHERE seq = ?1")
                            .sql()?
                            .execute([seq])
                            .sql()?;
                    }
                    None => {}
                    Some(rest) => {
                        conn.prepare_cached(
                            "UPDATE request_segments SET first_ns = ?2, last_ns = ?3, entries = ?4, \
                             bytes = ?5, summary = ?6, bloom = ?7, payload = ?8 WHERE seq = ?1",
                        )
                        .sql()?
                        .execute(params![
                            seq,
                            rest.first_ns,
                            rest.last_ns,
                            rest.entries,
                            rest.bytes,
                            rest.summary,
                            rest.bloom,
                            rest.payload
                        ])
                        .sql()?;
                    }
                }
                (
                    trimmed.entries,
                    bytes - trimmed.rest.as_ref().map_or(0, |r| r.bytes),
                )
            }
        };
        subtract_usage(conn, tenant, gone_bytes, gone)?;
        used -= gone_bytes;
        removed += usize::try_from(gone).unwrap_or(0);
        // A segment only partly due ends the pass: the next one is newer.
        if trim.is_some() || gone == 0 {
            break;
        }
    }
    Ok(u64::try_from(removed).unwrap_or(0))
}

fn subtract_usage(conn: &Connection, tenant: i64, bytes: i64, entries: i64) -> Result<()> {
    conn.prepare_cached(
        "UPDATE request_log_usage SET bytes = max(bytes - ?2, 0), entries = max(entries - ?3, 0) \
         WHERE tenant = ?1",
    )
    .sql()?
    .execute(params![tenant, bytes, entries])
    .sql()?;
    Ok(())
}

fn operator_token_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<TokenInfo> {
    let at = |ns: Option<i64>| ns.map(document::from_nanos);
    Ok(TokenInfo {
        id: row.get(0)?,
        label: row.get(1)?,
        scope: TokenScope::Admin,
        created: document::from_nanos(row.get(2)?),
        revoked: at(row.get(3)?),
        last_used: at(row.get(4)?),
    })
}

/// Scrubs the log of a User just deleted, in the deletion's transaction, when the tenant
/// anonymises former people: also a person without workplace history, whom no anonymisation
/// cascade visits.
pub(crate) fn scrub_leaver(
    conn: &Connection,
    env: &crate::workplace::WorkplaceEnv,
    tenant: TenantId,
    person: &str,
) -> Result<()> {
    if env.context(conn, tenant)?.anonymises_former_people() {
        scrub(conn, tenant, person)?;
    }
    Ok(())
}

/// Scrubs the log of a person being anonymised, in the anonymisation's transaction, before
/// the feed entries that find their requests are rewritten: every segment that may hold an
/// entry about them is read, and rewritten if it does ([`segment::scrub`]).
pub(crate) fn scrub(conn: &Connection, tenant: TenantId, person: &str) -> Result<()> {
    let linked = linked_requests(conn, tenant, person)?;
    let mut rewrites = Vec::new();
    each_header(conn, tenant, |header| {
        if segment::may_concern(header, person, &linked) {
            if let Some(scrubbed) =
                segment::scrub(tenant, &payload(conn, header.seq)?, person, &linked)?
            {
                rewrites.push((header.seq, scrubbed));
            }
        }
        Ok(true)
    })?;
    for (seq, scrubbed) in rewrites {
        conn.prepare_cached(
            "UPDATE request_segments SET payload = ?2, summary = ?3, bytes = ?4 WHERE seq = ?1",
        )
        .sql()?
        .execute(params![
            seq,
            scrubbed.payload,
            scrubbed.summary,
            scrubbed.bytes
        ])
        .sql()?;
        subtract_usage(
            conn,
            tenant.key(),
            scrubbed.bytes_before - scrubbed.bytes,
            0,
        )?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl AdminStore for SqliteStore {
    async fn append_requests(&self, records: Vec<RequestRecord>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        // The checks against the feed are a read; the encoding is the caller's CPU; the writer
        // (every tenant's SCIM writes wait behind it) only inserts the rows. An anonymisation
        // that commits between the read and the write is not seen by these entries: the same
        // instant's race as on PostgreSQL (docs/admin-api.md).
        let records = Arc::new(records);
        let read = Arc::clone(&records);
        let anonymised = self
            .readers
            .read(move |conn| anonymised_flags(conn, &read))
            .await?;
        let records = Arc::try_unwrap(records).unwrap_or_else(|shared| (*shared).clone());
        // Encoded (compression included) here, on the caller's thread (scimd's log thread),
        // before the writer, which every tenant's SCIM writes share, so that it only inserts
        // rows. Not on the blocking pool: a batch handed between threads is cold wherever it
        // goes, and its allocations are freed into another thread's heap.
        let batch = Batch::of(records.into_iter().zip(anonymised));
        self.writer.write(move |conn| append(conn, &batch)).await
    }

    async fn requests(&self, tenant: &TenantId, filter: &RequestFilter) -> Result<RequestPage> {
        let tenant = *tenant;
        let scope = self.cursor_key.request_log_scope(tenant);
        // Checked here, before a read is queued; the read builds its own (it may run twice: a
        // read past its inline budget is run again on the long-read pool).
        Listing::new(tenant, filter, &scope)?;
        let (filter, read_scope) = (filter.clone(), scope.clone());
        let listing = self
            .readers
            .read(move |conn| list(conn, Listing::new(tenant, &filter, &read_scope)?, tenant))
            .await?;
        Ok(listing.finish(&scope))
    }

    async fn request(&self, tenant: &TenantId, request_id: &str) -> Result<Option<LoggedRequest>> {
        let (tenant, request_id) = (*tenant, request_id.to_owned());
        self.readers
            .read(move |conn| find_request(conn, tenant, &request_id))
            .await
    }

    async fn request_activity(
        &self,
        tenant: &TenantId,
        now: DateTime,
    ) -> Result<Vec<TokenActivity>> {
        let tenant = *tenant;
        self.readers
            .read(move |conn| activity(conn, tenant, now))
            .await
    }

    async fn prune_requests(
        &self,
        retention: Retention,
        now: DateTime,
        budget: usize,
    ) -> Result<Pruned> {
        let budget = budget.max(1);
        let usage: Vec<(i64, i64)> = self
            .readers
            .read(|conn| {
                conn.prepare_cached("SELECT tenant, bytes FROM request_log_usage ORDER BY tenant")
                    .sql()?
                    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                    .sql()?
                    .collect::<rusqlite::Result<_>>()
                    .sql()
            })
            .await?;
        let mut pruned = Pruned::default();
        let cutoff = retention.cutoff_ns(now);
        let max_bytes = i64::try_from(retention.max_bytes).unwrap_or(i64::MAX);
        for (tenant, bytes) in usage {
            // By age, then by size: each chunk (a few segments) its own short write, so SCIM
            // writes queued behind the writer wait for one chunk at most.
            for by_age in [true, false] {
                if !by_age && bytes <= max_bytes {
                    continue;
                }
                loop {
                    let left =
                        budget.saturating_sub(usize::try_from(pruned.entries).unwrap_or(budget));
                    if left == 0 {
                        pruned.more = true;
                        return Ok(pruned);
                    }
                    let chunk = left.min(4 * SEGMENT_ENTRIES);
                    let removed = self
                        .writer
                        .write(move |conn| {
                            prune_chunk(conn, tenant, by_age.then_some(cutoff), max_bytes, chunk)
                        })
                        .await?;
                    pruned.entries += removed;
                    if removed == 0 {
                        break;
                    }
                }
            }
        }
        let oldest_minute = activity_minute(now) - ACTIVITY_KEPT_SECONDS / 60;
        self.writer
            .write(move |conn| {
                conn.prepare_cached("DELETE FROM request_activity WHERE minute < ?1")
                    .sql()?
                    .execute([oldest_minute])
                    .sql()
                    .map(drop)
            })
            .await?;
        Ok(pruned)
    }

    async fn issue_operator_token(&self, label: &str) -> Result<IssuedToken> {
        let label = label.to_owned();
        self.writer
            .write(move |conn| {
                let id = token::new_token_id()?;
                let secret = token::new_secret()?;
                conn.prepare_cached(
                    "INSERT INTO operator_tokens (id, label, digest, created_ns) VALUES (?1, ?2, ?3, ?4)",
                )
                .sql()?
                .execute(params![
                    id,
                    label,
                    &token::digest(&secret)[..],
                    document::to_nanos(document::now())
                ])
                .sql()?;
                Ok(IssuedToken { id, secret })
            })
            .await
    }

    async fn authenticate_operator(&self, secret: &str) -> Result<Option<TokenInfo>> {
        if !secret.starts_with(token::SECRET_PREFIX) {
            return Ok(None);
        }
        let digest = token::digest(secret);
        let found = self
            .readers
            .read(move |conn| {
                conn.prepare_cached(
                    "SELECT id, label, created_ns, revoked_ns, last_used_ns, digest \
                     FROM operator_tokens WHERE digest = ?1",
                )
                .sql()?
                .query_row([&digest[..]], |row| {
                    let stored: Vec<u8> = row.get(5)?;
                    Ok((operator_token_of(row)?, stored))
                })
                .optional()
                .sql()
            })
            .await?;
        let Some((mut info, stored)) = found else {
            return Ok(None);
        };
        if info.revoked.is_some() || !token::digests_equal(&stored, &digest) {
            return Ok(None);
        }
        let now = document::now();
        if token::should_record_use(info.last_used, now) {
            let (id, at) = (info.id.clone(), document::to_nanos(now));
            let recorded = self
                .writer
                .write(move |conn| {
                    conn.prepare_cached(
                        "UPDATE operator_tokens SET last_used_ns = ?2 WHERE id = ?1 \
                         AND (last_used_ns IS NULL OR last_used_ns < ?2)",
                    )
                    .sql()?
                    .execute(params![id, at])
                    .sql()
                    .map(drop)
                })
                .await;
            if recorded.is_ok() {
                info.last_used = Some(now);
            }
        }
        Ok(Some(info))
    }

    async fn list_operator_tokens(&self) -> Result<Vec<TokenInfo>> {
        self.readers
            .read(|conn| {
                conn.prepare_cached(
                    "SELECT id, label, created_ns, revoked_ns, last_used_ns FROM operator_tokens \
                     ORDER BY created_ns, id",
                )
                .sql()?
                .query_map([], operator_token_of)
                .sql()?
                .collect::<rusqlite::Result<_>>()
                .sql()
            })
            .await
    }

    async fn revoke_operator_token(&self, token_id: &str) -> Result<bool> {
        let id = token_id.to_owned();
        self.writer
            .write(move |conn| {
                let changed = conn
                    .prepare_cached(
                        "UPDATE operator_tokens SET revoked_ns = ?1 WHERE id = ?2 AND revoked_ns IS NULL",
                    )
                    .sql()?
                    .execute(params![document::to_nanos(document::now()), id])
                    .sql()?;
                Ok(changed == 1)
            })
            .await
    }
}
