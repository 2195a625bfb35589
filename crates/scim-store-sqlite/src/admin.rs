//! [`AdminStore`]: the provisioning log, its activity counters and pruning, operator tokens
//! (schema version 11). What to select and what to prune is decided in
//! `scim_store_core::admin`; this file spells it in SQLite.

use crate::SqliteStore;
use crate::conn::SqlResult;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use scim_schema::DateTime;
use scim_store_core::admin::{
    ACTIVITY_KEPT_SECONDS, AdminStore, LastError, LogDialect, LogParam, LoggedRequest, Pruned,
    RequestFilter, RequestPage, RequestRecord, Retention, TokenActivity, activity_minute,
    activity_windows, datetime_ns, datetime_of_ns, where_clause,
};
use scim_store_core::backend::sql::SortValue;
use scim_store_core::backend::token;
use scim_store_core::document;
use scim_store_core::{
    IssuedToken, ResourceKind, Result, StoreError, TenantId, TokenInfo, TokenScope,
};
use std::collections::{BTreeMap, BTreeSet};

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
}

const COLUMNS: &str = "seq, tenant, at_ns, request_id, token_id, token_label, method, path, status, \
     scim_type, detail, duration_us, resource_type, resource_id, request_body, response_body, scrubbed";

fn entry_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, i64, LoggedRequest)> {
    let seq: i64 = row.get(0)?;
    let at_ns: i64 = row.get(2)?;
    let status: i64 = row.get(8)?;
    let duration: i64 = row.get(11)?;
    let kind: Option<String> = row.get(12)?;
    let record = RequestRecord {
        tenant: scim_store_core::backend::tenant_id(row.get(1)?),
        request_id: row.get(3)?,
        at: datetime_of_ns(at_ns),
        token_id: row.get(4)?,
        token_label: row.get(5)?,
        method: row.get(6)?,
        path: row.get(7)?,
        status: u16::try_from(status).unwrap_or(0),
        scim_type: row.get(9)?,
        detail: row.get(10)?,
        duration_us: u64::try_from(duration).unwrap_or(0),
        resource_type: kind.as_deref().and_then(ResourceKind::from_resource_type),
        resource_id: row.get(13)?,
        request_body: row.get(14)?,
        response_body: row.get(15)?,
    };
    let scrubbed: i64 = row.get(16)?;
    Ok((
        seq,
        at_ns,
        LoggedRequest {
            record,
            scrubbed: scrubbed != 0,
        },
    ))
}

fn sql_params(params: Vec<LogParam>) -> Vec<SqlValue> {
    params
        .into_iter()
        .map(|p| match p {
            LogParam::Int(i) => SqlValue::Integer(i),
            LogParam::Text(t) => SqlValue::Text(t),
        })
        .collect()
}

/// Writes one batch (the writer's job).
fn append(conn: &Connection, records: &[RequestRecord]) -> Result<()> {
    let tenants: BTreeSet<i64> = records.iter().map(|r| r.tenant.key()).collect();
    let mut live = BTreeSet::new();
    {
        let mut exists = conn
            .prepare_cached("SELECT 1 FROM tenants WHERE id = ?1")
            .sql()?;
        for key in tenants {
            if exists.exists([key]).sql()? {
                live.insert(key);
            }
        }
    }
    let mut insert = conn
        .prepare_cached(
            "INSERT INTO request_log (tenant, at_ns, request_id, token_id, token_label, method, \
             path, status, scim_type, detail, duration_us, resource_type, resource_id, \
             request_body, response_body, bytes, scrubbed) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
        )
        .sql()?;
    let mut probe = conn
        .prepare_cached(&scim_store_core::admin::anonymised_probe_statement(
            &Dialect,
        ))
        .sql()?;
    let mut usage: BTreeMap<i64, (i64, i64)> = BTreeMap::new();
    let mut activity: BTreeMap<(i64, &str, i64), (i64, i64)> = BTreeMap::new();
    for record in records {
        let key = record.tenant.key();
        if !live.contains(&key) {
            continue;
        }
        let scrubbed = match record.anonymisation_probe() {
            Some((person, request)) => probe
                .query_row(params![key, person, request], |r| r.get::<_, bool>(0))
                .sql()?
                .then(|| {
                    let mut scrubbed = record.clone();
                    scrubbed.scrub();
                    scrubbed
                }),
            None => None,
        };
        let original = record;
        let record = scrubbed.as_ref().unwrap_or(original);
        let bytes = i64::try_from(record.bytes()).unwrap_or(i64::MAX);
        insert
            .execute(params![
                key,
                datetime_ns(record.at),
                record.request_id,
                record.token_id,
                record.token_label,
                record.method,
                record.path,
                i64::from(record.status),
                record.scim_type,
                record.detail,
                i64::try_from(record.duration_us).unwrap_or(i64::MAX),
                record.resource_type.map(ResourceKind::resource_type),
                record.resource_id,
                record.request_body,
                record.response_body,
                bytes,
                i64::from(scrubbed.is_some()),
            ])
            .sql()?;
        let used = usage.entry(key).or_default();
        used.0 += bytes;
        used.1 += 1;
        let counted = activity
            .entry((
                key,
                original.token_id.as_str(),
                activity_minute(original.at),
            ))
            .or_default();
        counted.0 += 1;
        counted.1 += i64::from(record.is_error());
    }
    let mut add_usage = conn
        .prepare_cached(
            "INSERT INTO request_log_usage (tenant, bytes, entries) VALUES (?1, ?2, ?3) \
             ON CONFLICT (tenant) DO UPDATE SET bytes = bytes + excluded.bytes, \
             entries = entries + excluded.entries",
        )
        .sql()?;
    for (tenant, (bytes, entries)) in usage {
        add_usage.execute(params![tenant, bytes, entries]).sql()?;
    }
    let mut add_activity = conn
        .prepare_cached(
            "INSERT INTO request_activity (tenant, token_id, minute, requests, errors) \
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (tenant, token_id, minute) DO UPDATE SET \
             requests = requests + excluded.requests, errors = errors + excluded.errors",
        )
        .sql()?;
    for ((tenant, token, minute), (requests, errors)) in activity {
        add_activity
            .execute(params![tenant, token, minute, requests, errors])
            .sql()?;
    }
    Ok(())
}

fn list(
    conn: &Connection,
    tenant: TenantId,
    filter: &RequestFilter,
    after: Option<(i64, i64)>,
    page: usize,
) -> Result<Vec<(i64, i64, LoggedRequest)>> {
    let (clause, params) = where_clause(&Dialect, tenant, filter, after);
    let sql = format!(
        "SELECT {COLUMNS} FROM request_log WHERE {clause} ORDER BY at_ns DESC, seq DESC LIMIT {}",
        page + 1
    );
    let mut stmt = conn.prepare_cached(&sql).sql()?;
    let rows = stmt
        .query_map(params_from_iter(sql_params(params)), entry_of)
        .sql()?;
    rows.collect::<rusqlite::Result<_>>().sql()
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
    let counted = stmt
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
    let mut last = conn
        .prepare_cached(
            "SELECT at_ns FROM request_log INDEXED BY request_log_by_token \
             WHERE tenant = ?1 AND token_id = ?2 ORDER BY at_ns DESC LIMIT 1",
        )
        .sql()?;
    let mut last_error = conn
        .prepare_cached(
            "SELECT request_id, at_ns, status, scim_type, detail FROM request_log \
             INDEXED BY request_log_errors_by_token \
             WHERE tenant = ?1 AND token_id = ?2 AND status >= 400 ORDER BY at_ns DESC LIMIT 1",
        )
        .sql()?;
    let mut found = Vec::with_capacity(counted.len());
    for mut activity in counted {
        activity.last_request = last
            .query_row(params![tenant.key(), activity.token_id], |r| {
                r.get::<_, i64>(0)
            })
            .optional()
            .sql()?
            .map(datetime_of_ns);
        activity.last_error = last_error
            .query_row(params![tenant.key(), activity.token_id], |r| {
                Ok(LastError {
                    request_id: r.get(0)?,
                    at: datetime_of_ns(r.get(1)?),
                    status: u16::try_from(r.get::<_, i64>(2)?).unwrap_or(0),
                    scim_type: r.get(3)?,
                    detail: r.get(4)?,
                })
            })
            .optional()
            .sql()?;
        found.push(activity);
    }
    Ok(found)
}

/// Removes the oldest entries of `tenant` that take it back within `max_bytes`, at most
/// `budget` of them; returns how many.
fn prune_size_chunk(conn: &Connection, tenant: i64, max_bytes: i64, budget: usize) -> Result<u64> {
    let used: i64 = conn
        .prepare_cached("SELECT bytes FROM request_log_usage WHERE tenant = ?1")
        .sql()?
        .query_row([tenant], |r| r.get(0))
        .optional()
        .sql()?
        .unwrap_or(0);
    let mut excess = used - max_bytes;
    if excess <= 0 {
        return Ok(0);
    }
    let oldest: Vec<(i64, i64)> = conn
        .prepare_cached(
            "SELECT seq, bytes FROM request_log INDEXED BY request_log_by_time \
             WHERE tenant = ?1 ORDER BY at_ns, seq LIMIT ?2",
        )
        .sql()?
        .query_map(
            params![tenant, i64::try_from(budget).unwrap_or(i64::MAX)],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .sql()?
        .collect::<rusqlite::Result<_>>()
        .sql()?;
    let (mut bytes, mut entries) = (0i64, 0i64);
    let mut delete = conn
        .prepare_cached("DELETE FROM request_log WHERE seq = ?1")
        .sql()?;
    for (seq, size) in oldest {
        if excess <= 0 {
            break;
        }
        delete.execute([seq]).sql()?;
        excess -= size;
        bytes += size;
        entries += 1;
    }
    subtract_usage(conn, tenant, bytes, entries)?;
    Ok(u64::try_from(entries).unwrap_or(0))
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

/// Removes at most `budget` of the oldest entries of `tenant` older than `cutoff`; returns
/// how many.
fn prune_age_chunk(conn: &Connection, tenant: i64, cutoff: i64, budget: usize) -> Result<u64> {
    let limit = i64::try_from(budget).unwrap_or(i64::MAX);
    let (bytes, entries): (i64, i64) = conn
        .prepare_cached(
            "SELECT coalesce(sum(bytes), 0), count(*) FROM (SELECT bytes FROM request_log \
             INDEXED BY request_log_by_time WHERE tenant = ?1 AND at_ns < ?2 \
             ORDER BY at_ns, seq LIMIT ?3)",
        )
        .sql()?
        .query_row(params![tenant, cutoff, limit], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .sql()?;
    if entries == 0 {
        return Ok(0);
    }
    conn.prepare_cached(
        "DELETE FROM request_log WHERE seq IN (SELECT seq FROM request_log \
         INDEXED BY request_log_by_time WHERE tenant = ?1 AND at_ns < ?2 \
         ORDER BY at_ns, seq LIMIT ?3)",
    )
    .sql()?
    .execute(params![tenant, cutoff, limit])
    .sql()?;
    subtract_usage(conn, tenant, bytes, entries)?;
    Ok(u64::try_from(entries).unwrap_or(0))
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
/// the feed entries that find their requests are rewritten.
pub(crate) fn scrub(conn: &Connection, tenant: TenantId, person: &str) -> Result<()> {
    let sql = scim_store_core::admin::scrub_statement(
        &Dialect,
        "CASE WHEN instr(path, '?') > 0 THEN substr(path, 1, instr(path, '?') - 1) ELSE path END",
    );
    conn.prepare_cached(&sql)
        .sql()?
        .execute(params![tenant.key(), person])
        .sql()?;
    Ok(())
}

#[async_trait::async_trait]
impl AdminStore for SqliteStore {
    async fn append_requests(&self, records: Vec<RequestRecord>) -> Result<()> {
        if records.is_empty() {
            return Ok(());
        }
        self.writer.write(move |conn| append(conn, &records)).await
    }

    async fn requests(&self, tenant: &TenantId, filter: &RequestFilter) -> Result<RequestPage> {
        filter.check()?;
        let tenant = *tenant;
        let scope = self.cursor_key.request_log_scope(tenant);
        let after = match &filter.cursor {
            None => None,
            Some(cursor) => match scope.decode(cursor)? {
                (SortValue::Int(at_ns), seq) => Some((at_ns, seq)),
                _ => {
                    return Err(StoreError::InvalidCursor(
                        "the cursor is not one of this log's".to_owned(),
                    ));
                }
            },
        };
        let page = filter.page_size();
        let filter = filter.clone();
        let mut rows = self
            .readers
            .read(move |conn| list(conn, tenant, &filter, after, page))
            .await?;
        let next = if rows.len() > page {
            rows.truncate(page);
            rows.last()
                .map(|(seq, at_ns, _)| scope.encode(&SortValue::Int(*at_ns), *seq))
        } else {
            None
        };
        Ok(RequestPage {
            entries: rows.into_iter().map(|(_, _, entry)| entry).collect(),
            next,
        })
    }

    async fn request(&self, tenant: &TenantId, request_id: &str) -> Result<Option<LoggedRequest>> {
        let (tenant, request_id) = (*tenant, request_id.to_owned());
        self.readers
            .read(move |conn| {
                conn.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM request_log WHERE tenant = ?1 AND request_id = ?2 \
                     ORDER BY at_ns DESC, seq DESC LIMIT 1"
                ))
                .sql()?
                .query_row(params![tenant.key(), request_id], entry_of)
                .optional()
                .sql()
                .map(|found| found.map(|(_, _, entry)| entry))
            })
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
            // By age, then by size: each chunk its own short write, so SCIM writes queued
            // behind the writer wait for one chunk at most.
            for by_age in [true, false] {
                if !by_age && bytes <= max_bytes {
                    continue;
                }
                loop {
                    let left = budget - usize::try_from(pruned.entries).unwrap_or(budget);
                    if left == 0 {
                        pruned.more = true;
                        return Ok(pruned);
                    }
                    let chunk = left.min(500);
                    let removed = self
                        .writer
                        .write(move |conn| {
                            if by_age {
                                prune_age_chunk(conn, tenant, cutoff, chunk)
                            } else {
                                prune_size_chunk(conn, tenant, max_bytes, chunk)
                            }
                        })
                        .await?;
                    pruned.entries += removed;
                    if removed < chunk as u64 {
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
