//! The workplace half of the store ([`WorkplaceStore`], issue 7): catalog, policies, bookings,
//! assignments, feed, audit log and report; the rows of all of them, which `cascade.rs` reads
//! and writes too; and the tenant context decisions are made against. Decisions are
//! [`plan`]'s; this module only loads and writes.
//!
//! Here: every write runs in one writer job (one savepoint of the writer's group-commit
//! transaction, see [`super::conn`]) and appends its feed entries through the tenant's one
//! sequence, shared with SCIM changes ([`super::feed`]).

use super::SqliteStore;
use super::feed::append_drafts;
use super::read::{self, ensure_tenant, nanos, to_u64};
use crate::conn::SqlResult;
use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use scim_schema::{DateTime, ScimType};
use scim_store_core::document;
use scim_store_core::workplace::plan::{
    self, Anonymisation, CascadeWrites, ContextCache, FeedDraft, MAX_PAGE, TenantContext,
};
use scim_store_core::workplace::{
    AuditFilter, BookingFilter, BookingOutcome, BookingRecord, FeedEvent, FeedSubject, NewBooking,
    PlaceChange, PlaceKind, PlaceRecord, WorkplaceConfig, WorkplaceReport, WorkplaceStore,
};
use scim_store_core::{Members, ResourceKind, TenantId, TenantSchemas, WriteContext};
use scim_store_core::{Result, StoreError};
use serde_json::{Value, json};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::Arc;
use workplace_policy::{
    Actor, Assignment, Booking, BookingRequest, CascadeSettings, CompiledPolicySet, Decision,
    LIMIT_HISTORY_SECONDS, PolicySet, Preview, SeatReport, Timestamp, preview_policy_change,
};

// ---- configuration and catalog ----------------------------------------------------------------

/// What a writer job (or a read) needs for workplace decisions: the store's context cache, the
/// schemas (policies compile against the User schema), and the tenant context it had to build,
/// which the store caches only once the job's transaction has committed (a context built from
/// a write that is then rolled back must never be served under its generation).
pub(crate) struct WorkplaceEnv {
    contexts: Arc<ContextCache>,
    schemas: Arc<TenantSchemas>,
    built: RefCell<Option<Arc<TenantContext>>>,
}

impl WorkplaceEnv {
    pub(crate) fn new(contexts: Arc<ContextCache>, schemas: Arc<TenantSchemas>) -> WorkplaceEnv {
        WorkplaceEnv {
            contexts,
            schemas,
            built: RefCell::new(None),
        }
    }

    /// The tenant's User schema.
    pub(crate) fn user_schema(&self) -> &scim_schema::ResourceSchema {
        self.schemas.resources.get(ResourceKind::User)
    }

    /// The tenant's context as the transaction sees it: from the cache when it is at the
    /// stored generation, else built from the stored configuration and catalog.
    pub(crate) fn context(
        &self,
        conn: &Connection,
        tenant: TenantId,
    ) -> Result<Arc<TenantContext>> {
        let generation = generation(conn, tenant)?;
        if let Some(built) = self.built.borrow().as_ref()
            && built.generation == generation
        {
            return Ok(Arc::clone(built));
        }
        if let Some(cached) = self.contexts.get(tenant, generation, self.schemas.version) {
            return Ok(cached);
        }
        let (config, generation) = load_config(conn, tenant)?;
        let places = load_places(conn, tenant, None)?;
        let context = Arc::new(TenantContext::build(
            generation,
            config,
            &places,
            &self.schemas,
        )?);
        self.remember(Arc::clone(&context));
        Ok(context)
    }

    /// Keeps `context` to be cached after commit.
    pub(crate) fn remember(&self, context: Arc<TenantContext>) {
        *self.built.borrow_mut() = Some(context);
    }

    /// The context built during the job, if any.
    pub(crate) fn into_built(self) -> Option<Arc<TenantContext>> {
        self.built.into_inner()
    }
}

/// The tenant's generation (0 before any workplace write).
pub(crate) fn generation(conn: &Connection, tenant: TenantId) -> Result<u64> {
    let mut stmt = conn
        .prepare_cached("SELECT generation FROM workplace_state WHERE tenant = ?1")
        .sql()?;
    let found: Option<i64> = stmt
        .query_row([tenant.key()], |r| r.get(0))
        .optional()
        .sql()?;
    Ok(found.map_or(0, to_u64))
}

/// The tenant's configuration and generation (the default at generation 0 if never set).
pub(crate) fn load_config(conn: &Connection, tenant: TenantId) -> Result<(WorkplaceConfig, u64)> {
    let mut stmt = conn
        .prepare_cached("SELECT config, generation FROM workplace_state WHERE tenant = ?1")
        .sql()?;
    let found: Option<(String, i64)> = stmt
        .query_row([tenant.key()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .sql()?;
    match found {
        None => Ok((WorkplaceConfig::default(), 0)),
        Some((text, generation)) => {
            let config = serde_json::from_str(&text)
                .map_err(|e| StoreError::backend_error("stored workplace configuration", e))?;
            Ok((config, to_u64(generation)))
        }
    }
}

/// Stores `config` (when given) and bumps the generation; returns the new generation. Every
/// policy or catalog write calls it in its transaction.
pub(crate) fn bump_generation(
    conn: &Connection,
    tenant: TenantId,
    config: Option<&WorkplaceConfig>,
) -> Result<u64> {
    let json = |c: &WorkplaceConfig| {
        serde_json::to_string(c)
            .map_err(|e| StoreError::backend(format!("workplace configuration JSON: {e}")))
    };
    let generation: i64 = match config {
        Some(config) => conn
            .prepare_cached(
                "INSERT INTO workplace_state (tenant, config, generation) VALUES (?1, ?2, 1) \
                 ON CONFLICT (tenant) DO UPDATE SET config = excluded.config, \
                 generation = generation + 1 RETURNING generation",
            )
            .sql()?
            .query_row(params![tenant.key(), json(config)?], |r| r.get(0))
            .sql()?,
        None => conn
            .prepare_cached(
                "INSERT INTO workplace_state (tenant, config, generation) VALUES (?1, ?2, 1) \
                 ON CONFLICT (tenant) DO UPDATE SET generation = generation + 1 \
                 RETURNING generation",
            )
            .sql()?
            .query_row(
                params![tenant.key(), json(&WorkplaceConfig::default())?],
                |r| r.get(0),
            )
            .sql()?,
    };
    Ok(to_u64(generation))
}

fn place_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String, i64)> {
    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
}

fn place_record(kind: &str, id: String, doc: &str, version: i64) -> Result<PlaceRecord> {
    let kind = PlaceKind::from_name(kind)
        .ok_or_else(|| StoreError::backend(format!("stored place of unknown kind {kind:?}")))?;
    let document = serde_json::from_str(doc)
        .map_err(|e| StoreError::backend(format!("stored {} {id:?}: {e}", kind.as_str())))?;
    Ok(PlaceRecord {
        kind,
        id,
        document,
        version: to_u64(version),
    })
}

/// The tenant's catalog entries (of one kind, or all), by kind then id.
pub(crate) fn load_places(
    conn: &Connection,
    tenant: TenantId,
    kind: Option<PlaceKind>,
) -> Result<Vec<PlaceRecord>> {
    let rows: Vec<(String, String, String, i64)> = match kind {
        Some(kind) => conn
            .prepare_cached(
                "SELECT kind, id, doc, version FROM places WHERE tenant = ?1 AND kind = ?2 ORDER BY id",
            ).sql()?
            .query_map(params![tenant.key(), kind.as_str()], place_of).sql()?
            .collect::<rusqlite::Result<_>>().sql()?,
        None => conn
            .prepare_cached(
                "SELECT kind, id, doc, version FROM places WHERE tenant = ?1 ORDER BY kind, id",
            ).sql()?
            .query_map([tenant.key()], place_of).sql()?
            .collect::<rusqlite::Result<_>>().sql()?,
    };
    rows.into_iter()
        .map(|(kind, id, doc, version)| place_record(&kind, id, &doc, version))
        .collect()
}

/// One catalog entry.
pub(crate) fn load_place(
    conn: &Connection,
    tenant: TenantId,
    kind: PlaceKind,
    id: &str,
) -> Result<Option<PlaceRecord>> {
    let row = conn
        .prepare_cached(
            "SELECT kind, id, doc, version FROM places WHERE tenant = ?1 AND kind = ?2 AND id = ?3",
        )
        .sql()?
        .query_row(params![tenant.key(), kind.as_str(), id], place_of)
        .optional()
        .sql()?;
    row.map(|(kind, id, doc, version)| place_record(&kind, id, &doc, version))
        .transpose()
}

/// A User's served document (with `groups` in join order) by id, if it exists.
pub(crate) fn user_document(
    conn: &Connection,
    tenant: TenantId,
    id: &str,
) -> Result<Option<Value>> {
    Ok(read::get(conn, tenant, ResourceKind::User, id, Members::Exclude)?.map(|r| r.document))
}

// ---- bookings and assignments -----------------------------------------------------------------

/// Person `?2`'s bookings (tenant `?1`) ending after `?3`.
pub(crate) const PERSON_BOOKINGS: &str = "SELECT record FROM bookings WHERE tenant = ?1 AND person = ?2 \
    AND end_s > ?3 ORDER BY id";

/// The live bookings of resource `?2` (tenant `?1`) overlapping `[?4, ?3)`.
pub(crate) const RESOURCE_BOOKINGS: &str = "SELECT record FROM bookings WHERE tenant = ?1 \
    AND resource = ?2 AND start_s < ?3 AND end_s > ?4 AND status IN ('booked', 'checkedIn')";

/// The feed entries (tenant `?1`) about bookings or assignments (subjects `?3`, `?4`) of person
/// `?2`: what an anonymisation rewrites. `INDEXED BY`: without statistics (scimd runs no
/// `ANALYZE`) SQLite 3.50 prefers walking the tenant's whole feed by primary key.
pub(crate) const PERSON_ENTRIES: &str = "SELECT seq, detail FROM events INDEXED BY events_by_person \
    WHERE tenant = ?1 AND kind IN (?3, ?4) AND detail ->> '$.person' = ?2";

pub(crate) fn booking_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<String> {
    row.get(0)
}

/// Parses stored booking records.
pub(crate) fn parse_bookings(texts: Vec<String>) -> Result<Vec<BookingRecord>> {
    texts.iter().map(|t| plan::booking_from_json(t)).collect()
}

/// One booking.
pub(crate) fn load_booking(
    conn: &Connection,
    tenant: TenantId,
    id: &str,
) -> Result<Option<BookingRecord>> {
    let text: Option<String> = conn
        .prepare_cached("SELECT record FROM bookings WHERE tenant = ?1 AND id = ?2")
        .sql()?
        .query_row(params![tenant.key(), id], booking_of)
        .optional()
        .sql()?;
    text.map(|t| plan::booking_from_json(&t)).transpose()
}

/// A person's bookings ending after `ends_after`, by id: every live booking not yet ended and
/// the recent history the limits count, when `ends_after` is [`HISTORY_SECONDS`] before the
/// earliest instant a decision concerns.
pub(crate) fn person_bookings(
    conn: &Connection,
    tenant: TenantId,
    person: &str,
    ends_after: Timestamp,
) -> Result<Vec<BookingRecord>> {
    let texts: Vec<String> = conn
        .prepare_cached(PERSON_BOOKINGS)
        .sql()?
        .query_map(params![tenant.key(), person, ends_after], booking_of)
        .sql()?
        .collect::<rusqlite::Result<_>>()
        .sql()?;
    parse_bookings(texts)
}

/// The live bookings of `resource` overlapping `[start, end)` (for its capacity).
pub(crate) fn resource_bookings(
    conn: &Connection,
    tenant: TenantId,
    resource: &str,
    start: Timestamp,
    end: Timestamp,
) -> Result<Vec<BookingRecord>> {
    let texts: Vec<String> = conn
        .prepare_cached(RESOURCE_BOOKINGS)
        .sql()?
        .query_map(params![tenant.key(), resource, end, start], booking_of)
        .sql()?
        .collect::<rusqlite::Result<_>>()
        .sql()?;
    parse_bookings(texts)
}

/// Inserts a new booking row.
pub(crate) fn insert_booking(
    conn: &Connection,
    tenant: TenantId,
    record: &BookingRecord,
) -> Result<()> {
    let b = &record.booking;
    conn.prepare_cached(
        "INSERT INTO bookings (tenant, id, person, resource, start_s, end_s, status, flagged, record) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    ).sql()?
    .execute(params![
        tenant.key(),
        b.id,
        b.person,
        b.resource,
        b.start,
        b.end,
        plan::status_name(&b.status),
        record.flag.is_some(),
        plan::booking_json(record)?
    ]).sql()?;
    Ok(())
}

/// Rewrites a booking row (status, flag, version: the whole record).
pub(crate) fn update_booking(
    conn: &Connection,
    tenant: TenantId,
    record: &BookingRecord,
) -> Result<()> {
    let b = &record.booking;
    let changed = conn
        .prepare_cached(
            "UPDATE bookings SET person = ?3, status = ?4, flagged = ?5, record = ?6 \
             WHERE tenant = ?1 AND id = ?2",
        )
        .sql()?
        .execute(params![
            tenant.key(),
            b.id,
            b.person,
            plan::status_name(&b.status),
            record.flag.is_some(),
            plan::booking_json(record)?
        ])
        .sql()?;
    if changed == 1 {
        Ok(())
    } else {
        Err(StoreError::backend(format!("booking {:?} vanished", b.id)))
    }
}

fn assignment_of(row: &rusqlite::Row<'_>) -> rusqlite::Result<Assignment> {
    Ok(Assignment {
        id: row.get(0)?,
        person: row.get(1)?,
        resource: row.get(2)?,
        since: row.get(3)?,
    })
}

/// The assignment with this id.
pub(crate) fn load_assignment(
    conn: &Connection,
    tenant: TenantId,
    id: &str,
) -> Result<Option<Assignment>> {
    conn.prepare_cached(
        "SELECT id, person, resource, since FROM assignments WHERE tenant = ?1 AND id = ?2",
    )
    .sql()?
    .query_row(params![tenant.key(), id], assignment_of)
    .optional()
    .sql()
}

/// Assignments, one person's or all, by id.
pub(crate) fn load_assignments(
    conn: &Connection,
    tenant: TenantId,
    person: Option<&str>,
) -> Result<Vec<Assignment>> {
    let rows = match person {
        Some(person) => conn
            .prepare_cached(
                "SELECT id, person, resource, since FROM assignments \
                 WHERE tenant = ?1 AND person = ?2 ORDER BY id",
            )
            .sql()?
            .query_map(params![tenant.key(), person], assignment_of)
            .sql()?
            .collect::<rusqlite::Result<_>>()
            .sql()?,
        None => conn
            .prepare_cached(
                "SELECT id, person, resource, since FROM assignments WHERE tenant = ?1 ORDER BY id",
            )
            .sql()?
            .query_map([tenant.key()], assignment_of)
            .sql()?
            .collect::<rusqlite::Result<_>>()
            .sql()?,
    };
    Ok(rows)
}

/// Writes what a cascade decided: the bookings it changed, the assignments it released, the
/// anonymisation of a former person's history (`anonymisation`, when `writes` asks for one:
/// the cascade's own rows and entries must already have been rewritten with
/// [`Anonymisation::cascade`]), and its feed entries (actor `system`, citing the request that
/// caused it).
pub(crate) fn write_cascade(
    conn: &Connection,
    tenant: TenantId,
    writes: &CascadeWrites,
    anonymisation: Option<&Anonymisation>,
    at: DateTime,
    request_id: Option<&str>,
) -> Result<()> {
    for record in &writes.bookings {
        update_booking(conn, tenant, record)?;
    }
    let mut release = conn
        .prepare_cached("DELETE FROM assignments WHERE tenant = ?1 AND id = ?2")
        .sql()?;
    for assignment in &writes.released {
        release
            .execute(params![tenant.key(), assignment.id])
            .sql()?;
    }
    if let Some(anonymisation) = anonymisation {
        anonymise_history(conn, tenant, anonymisation)?;
    }
    append_drafts(
        conn,
        tenant,
        &writes.feed,
        at,
        plan::SYSTEM_ACTOR,
        request_id,
    )
}

/// Rewrites a former person's workplace history ([`Anonymisation`]): every booking still
/// filed under them, and every feed entry about a booking or an assignment of theirs
/// (`detail.person`). Feed entries are not indexed by person, so this reads the tenant's
/// entries once, as an audit query by person does; only a deletion in a tenant that
/// anonymises pays it.
fn anonymise_history(
    conn: &Connection,
    tenant: TenantId,
    anonymisation: &Anonymisation,
) -> Result<()> {
    // The log first: it finds the person's requests through the feed entries rewritten below.
    crate::admin::scrub(conn, tenant, &anonymisation.person)?;
    let texts: Vec<String> = conn
        .prepare_cached("SELECT record FROM bookings WHERE tenant = ?1 AND person = ?2")
        .sql()?
        .query_map(params![tenant.key(), anonymisation.person], booking_of)
        .sql()?
        .collect::<rusqlite::Result<_>>()
        .sql()?;
    for mut record in parse_bookings(texts)? {
        anonymisation.booking(&mut record);
        update_booking(conn, tenant, &record)?;
    }
    let entries: Vec<(i64, String)> = conn
        .prepare_cached(PERSON_ENTRIES)
        .sql()?
        .query_map(
            params![
                tenant.key(),
                anonymisation.person,
                FeedSubject::Booking.code(),
                FeedSubject::Assignment.code()
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .sql()?
        .collect::<rusqlite::Result<_>>()
        .sql()?;
    let mut update = conn
        .prepare_cached("UPDATE events SET detail = ?3 WHERE tenant = ?1 AND seq = ?2")
        .sql()?;
    for (seq, text) in entries {
        let mut detail: Value = serde_json::from_str(&text)
            .map_err(|e| StoreError::backend(format!("stored feed detail {seq}: {e}")))?;
        if anonymisation.detail(&mut detail) {
            let text = serde_json::to_string(&detail)
                .map_err(|e| StoreError::backend(format!("feed detail JSON: {e}")))?;
            update.execute(params![tenant.key(), seq, text]).sql()?;
        }
    }
    Ok(())
}

/// The most entries a page holds: `limit` 0 means "as many as allowed".
fn page(limit: usize) -> usize {
    if limit == 0 {
        MAX_PAGE
    } else {
        limit.min(MAX_PAGE)
    }
}

fn plain(records: &[BookingRecord]) -> Vec<Booking> {
    records.iter().map(|r| r.booking.clone()).collect()
}

fn sql_u64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn json_text(value: &Value) -> Result<String> {
    serde_json::to_string(value).map_err(|e| StoreError::backend(format!("feed detail JSON: {e}")))
}

// ---- policies ---------------------------------------------------------------------------------

/// What replacing the policies with `new` would do at `now`: the preview, and the records of
/// every booking it looked at (what [`plan::apply`] needs to carry it out). The people are
/// those with a future booked booking; each is judged with their document as stored now.
fn policy_change(
    conn: &Connection,
    tenant: TenantId,
    old: &TenantContext,
    new: &CompiledPolicySet,
    settings: CascadeSettings,
    now: Timestamp,
) -> Result<(Preview, Vec<BookingRecord>)> {
    let persons: Vec<String> = conn
        .prepare_cached(
            "SELECT DISTINCT person FROM bookings WHERE tenant = ?1 AND status = 'booked' \
             AND start_s > ?2 ORDER BY person",
        )
        .sql()?
        .query_map(params![tenant.key(), now], |r| r.get(0))
        .sql()?
        .collect::<rusqlite::Result<_>>()
        .sql()?;
    let mut people = Vec::with_capacity(persons.len());
    let mut records = Vec::new();
    for id in persons {
        // A booking of a person no longer in the directory is not live (the deletion
        // cascade cancelled it); there is nobody to judge.
        let Some(doc) = user_document(conn, tenant, &id)? else {
            continue;
        };
        records.extend(person_bookings(
            conn,
            tenant,
            &id,
            now - LIMIT_HISTORY_SECONDS,
        )?);
        people.push(plan::person(&id, &doc, false));
    }
    let preview = preview_policy_change(
        &old.policies,
        new,
        &old.catalog,
        &people,
        &plain(&records),
        now,
        settings,
    );
    Ok((preview, records))
}

fn preview_policies(
    conn: &Connection,
    env: &WorkplaceEnv,
    tenant: TenantId,
    policies: &PolicySet,
    settings: CascadeSettings,
    now: Timestamp,
) -> Result<Preview> {
    ensure_tenant(conn, tenant)?;
    let new =
        CompiledPolicySet::compile_with(policies, env.user_schema()).map_err(plan::policy_error)?;
    let old = env.context(conn, tenant)?;
    Ok(policy_change(conn, tenant, &old, &new, settings, now)?.0)
}

#[allow(clippy::too_many_arguments)]
fn set_policies(
    conn: &Connection,
    env: &WorkplaceEnv,
    tenant: TenantId,
    policies: PolicySet,
    settings: CascadeSettings,
    expected_version: Option<u64>,
    ctx: &WriteContext,
    now: Timestamp,
) -> Result<(WorkplaceConfig, Preview)> {
    ensure_tenant(conn, tenant)?;
    // The writer serialises this with every schema change: the schemas the policies are
    // compiled against must be the tenant's as of this transaction.
    let stored: i64 = conn
        .prepare_cached("SELECT schemas_version FROM tenants WHERE id = ?1")
        .sql()?
        .query_row([tenant.key()], |r| r.get(0))
        .sql()?;
    if to_u64(stored) != env.schemas.version {
        return Err(scim_store_core::schemas::schemas_moved());
    }
    let (current, _) = load_config(conn, tenant)?;
    if let Some(expected) = expected_version
        && expected != current.version
    {
        return Err(StoreError::VersionMismatch {
            expected,
            actual: current.version,
        });
    }
    let config = WorkplaceConfig {
        policies,
        settings,
        version: current.version.saturating_add(1),
    };
    // Invalid policies change nothing: compiled before anything is written.
    let compiled = plan::compile(&config, env.user_schema())?;
    let old = env.context(conn, tenant)?;
    let (preview, records) = policy_change(conn, tenant, &old, &compiled, settings, now)?;
    let request_id = ctx.request_id.clone().unwrap_or_default();
    let writes = plan::apply(
        &preview.clone().into_effects(&request_id),
        records,
        Vec::new(),
        now,
    );
    let generation = bump_generation(conn, tenant, Some(&config))?;
    let at = document::now();
    append_drafts(
        conn,
        tenant,
        &[plan::policies_changed(config.version, &preview)],
        at,
        &ctx.actor,
        ctx.request_id.as_deref(),
    )?;
    write_cascade(conn, tenant, &writes, None, at, ctx.request_id.as_deref())?;
    // The next decisions need the new policies: keep them compiled for the new generation.
    env.remember(Arc::new(TenantContext {
        generation,
        schemas_version: env.schemas.version,
        config: config.clone(),
        policies: compiled,
        catalog: old.catalog.clone(),
    }));
    Ok((config, preview))
}

// ---- the catalog ------------------------------------------------------------------------------

fn put_place(
    conn: &Connection,
    tenant: TenantId,
    kind: PlaceKind,
    document: Value,
    expected_version: Option<u64>,
    ctx: &WriteContext,
) -> Result<(PlaceRecord, PlaceChange)> {
    ensure_tenant(conn, tenant)?;
    let Some(id) = document
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Err(StoreError::Invalid {
            scim_type: ScimType::InvalidValue,
            detail: format!("a {} needs a string \"id\"", kind.as_str()),
        });
    };
    let canonical = plan::canonical_place(kind, &id, document)?;
    let current = load_place(conn, tenant, kind, &id)?;
    let current_version = current.as_ref().map_or(0, |p| p.version);
    if let Some(expected) = expected_version
        && expected != current_version
    {
        return Err(StoreError::VersionMismatch {
            expected,
            actual: current_version,
        });
    }
    let change = plan::place_change(current.as_ref().map(|p| &p.document), &canonical);
    if let (Some(current), PlaceChange::Unchanged) = (current, change) {
        // Nothing changes: no new version, no feed entry (as a SCIM no-op).
        return Ok((current, change));
    }
    let record = PlaceRecord {
        kind,
        id: id.clone(),
        document: canonical,
        version: current_version.saturating_add(1),
    };
    // The whole catalog must stay consistent with the entry replaced.
    let mut all = load_places(conn, tenant, None)?;
    all.retain(|p| !(p.kind == kind && p.id == id));
    all.push(record.clone());
    plan::catalog(&all)?;
    let doc = json_text(&record.document)?;
    conn.prepare_cached(
        "INSERT INTO places (tenant, kind, id, doc, version) VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (tenant, kind, id) DO UPDATE SET doc = excluded.doc, version = excluded.version",
    ).sql()?
    .execute(params![
        tenant.key(),
        kind.as_str(),
        id,
        doc,
        sql_u64(record.version)
    ]).sql()?;
    bump_generation(conn, tenant, None)?;
    let draft = plan::place_written(
        kind,
        &id,
        current_version == 0,
        record.version,
        record.document.clone(),
    );
    append_drafts(
        conn,
        tenant,
        &[draft],
        document::now(),
        &ctx.actor,
        ctx.request_id.as_deref(),
    )?;
    Ok((record, change))
}

/// What still refers to catalog entry `id`, if anything: a child place, a live booking not
/// yet ended, an assignment.
fn referrer(
    conn: &Connection,
    tenant: TenantId,
    kind: PlaceKind,
    id: &str,
) -> Result<Option<String>> {
    let child = |field: &str, kinds: &str| -> Result<Option<String>> {
        let found: Option<(String, String)> = conn
            .prepare_cached(&format!(
                "SELECT kind, id FROM places WHERE tenant = ?1 AND kind IN ({kinds}) \
                 AND doc ->> '$.{field}' = ?2 ORDER BY kind, id LIMIT 1"
            ))
            .sql()?
            .query_row(params![tenant.key(), id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()
            .sql()?;
        Ok(found.map(|(kind, child)| format!("{kind} {child:?}")))
    };
    match kind {
        PlaceKind::Site => child("site", "'floor', 'neighbourhood', 'resource'"),
        PlaceKind::Floor => child("floor", "'neighbourhood', 'resource'"),
        PlaceKind::Neighbourhood => child("neighbourhood", "'resource'"),
        PlaceKind::Resource => {
            // A booking whose end has passed is history, not a hold on the resource.
            let now = document::now().unix_seconds;
            let booking: Option<String> = conn
                .prepare_cached(
                    "SELECT id FROM bookings WHERE tenant = ?1 AND resource = ?2 AND end_s > ?3 \
                     AND status IN ('booked', 'checkedIn') LIMIT 1",
                )
                .sql()?
                .query_row(params![tenant.key(), id, now], |r| r.get(0))
                .optional()
                .sql()?;
            if let Some(booking) = booking {
                return Ok(Some(format!("live booking {booking:?}")));
            }
            let assignment: Option<String> = conn
                .prepare_cached("SELECT id FROM assignments WHERE tenant = ?1 AND resource = ?2")
                .sql()?
                .query_row(params![tenant.key(), id], |r| r.get(0))
                .optional()
                .sql()?;
            Ok(assignment.map(|a| format!("assignment {a:?}")))
        }
    }
}

fn delete_place(
    conn: &Connection,
    tenant: TenantId,
    kind: PlaceKind,
    id: &str,
    ctx: &WriteContext,
) -> Result<()> {
    ensure_tenant(conn, tenant)?;
    let current =
        load_place(conn, tenant, kind, id)?.ok_or_else(|| plan::not_found(kind.as_str(), id))?;
    if let Some(what) = referrer(conn, tenant, kind, id)? {
        return Err(plan::conflict(format!(
            "{} {id:?} cannot be deleted: {what} still refers to it",
            kind.as_str()
        )));
    }
    conn.prepare_cached("DELETE FROM places WHERE tenant = ?1 AND kind = ?2 AND id = ?3")
        .sql()?
        .execute(params![tenant.key(), kind.as_str(), id])
        .sql()?;
    bump_generation(conn, tenant, None)?;
    append_drafts(
        conn,
        tenant,
        &[plan::place_deleted(kind, id, current.version)],
        document::now(),
        &ctx.actor,
        ctx.request_id.as_deref(),
    )?;
    Ok(())
}

// ---- bookings ---------------------------------------------------------------------------------

/// The person `id` as the policies see them: from their User document, or as a former person
/// when the directory no longer has them.
fn person_of(conn: &Connection, tenant: TenantId, id: &str) -> Result<workplace_policy::Person> {
    Ok(match user_document(conn, tenant, id)? {
        Some(doc) => plan::person(id, &doc, false),
        None => plan::person(id, &json!({}), true),
    })
}

fn evaluate_booking(
    conn: &Connection,
    env: &WorkplaceEnv,
    tenant: TenantId,
    person: &str,
    resource: &str,
    request: BookingRequest,
    now: Timestamp,
) -> Result<Decision> {
    ensure_tenant(conn, tenant)?;
    let context = env.context(conn, tenant)?;
    let doc =
        user_document(conn, tenant, person)?.ok_or_else(|| plan::not_found("person", person))?;
    let who = plan::person(person, &doc, false);
    let resource = context
        .catalog
        .resource(resource)
        .ok_or_else(|| plan::not_found("resource", resource))?;
    let existing = person_bookings(
        conn,
        tenant,
        person,
        request.start.min(now) - LIMIT_HISTORY_SECONDS,
    )?;
    Ok(workplace_policy::evaluate(
        &context.policies,
        &context.catalog,
        &who,
        resource,
        request,
        now,
        &plain(&existing),
    ))
}

fn book(
    conn: &Connection,
    env: &WorkplaceEnv,
    tenant: TenantId,
    request: NewBooking,
    ctx: &WriteContext,
    now: Timestamp,
) -> Result<BookingOutcome> {
    ensure_tenant(conn, tenant)?;
    let context = env.context(conn, tenant)?;
    let doc = user_document(conn, tenant, &request.person)?
        .ok_or_else(|| plan::not_found("person", &request.person))?;
    let person = plan::person(&request.person, &doc, false);
    let existing = person_bookings(
        conn,
        tenant,
        &request.person,
        request.start.min(now) - LIMIT_HISTORY_SECONDS,
    )?;
    let on_resource =
        resource_bookings(conn, tenant, &request.resource, request.start, request.end)?;
    if let Err(outcome) = plan::decide_booking(
        &context.policies,
        &context.catalog,
        &person,
        &request,
        now,
        &plain(&existing),
        &plain(&on_resource),
    )? {
        return Ok(outcome);
    }
    let record = plan::new_booking(plan::new_id("b")?, request, now);
    insert_booking(conn, tenant, &record)?;
    append_drafts(
        conn,
        tenant,
        &[plan::booking_draft(&record, "booked", None)],
        document::now(),
        &ctx.actor,
        ctx.request_id.as_deref(),
    )?;
    Ok(BookingOutcome::Done(Box::new(record)))
}

#[allow(clippy::too_many_arguments)]
fn cancel_booking(
    conn: &Connection,
    tenant: TenantId,
    id: &str,
    by: Actor,
    reason: &str,
    ctx: &WriteContext,
    now: Timestamp,
) -> Result<BookingRecord> {
    ensure_tenant(conn, tenant)?;
    let record = load_booking(conn, tenant, id)?.ok_or_else(|| plan::not_found("booking", id))?;
    let Some(updated) = plan::cancel(&record, by.clone(), reason, now)? else {
        return Ok(record);
    };
    update_booking(conn, tenant, &updated)?;
    let mut draft: FeedDraft = plan::booking_draft(&updated, "cancelled", None);
    if let Some(detail) = draft.detail.as_object_mut() {
        detail.insert("reason".into(), Value::String(reason.to_owned()));
        detail.insert(
            "by".into(),
            serde_json::to_value(&by).unwrap_or(Value::Null),
        );
    }
    append_drafts(
        conn,
        tenant,
        &[draft],
        document::now(),
        &ctx.actor,
        ctx.request_id.as_deref(),
    )?;
    Ok(updated)
}

fn check_in(
    conn: &Connection,
    env: &WorkplaceEnv,
    tenant: TenantId,
    id: &str,
    ctx: &WriteContext,
    now: Timestamp,
) -> Result<BookingOutcome> {
    ensure_tenant(conn, tenant)?;
    let record = load_booking(conn, tenant, id)?.ok_or_else(|| plan::not_found("booking", id))?;
    let context = env.context(conn, tenant)?;
    let person = person_of(conn, tenant, &record.booking.person)?;
    let existing = person_bookings(
        conn,
        tenant,
        &record.booking.person,
        record.booking.start.min(now) - LIMIT_HISTORY_SECONDS,
    )?;
    let outcome = plan::check_in(
        &context.policies,
        &context.catalog,
        &person,
        &record,
        now,
        &plain(&existing),
    )?;
    if let BookingOutcome::Done(updated) = &outcome {
        update_booking(conn, tenant, updated)?;
        append_drafts(
            conn,
            tenant,
            &[plan::booking_draft(updated, "checkedIn", None)],
            document::now(),
            &ctx.actor,
            ctx.request_id.as_deref(),
        )?;
    }
    Ok(outcome)
}

fn bookings(
    conn: &Connection,
    tenant: TenantId,
    filter: &BookingFilter,
) -> Result<Vec<BookingRecord>> {
    let mut sql = String::from("SELECT record FROM bookings WHERE tenant = ?");
    let mut values: Vec<rusqlite::types::Value> = vec![tenant.key().into()];
    if let Some(person) = &filter.person {
        sql.push_str(" AND person = ?");
        values.push(person.clone().into());
    }
    if let Some(resource) = &filter.resource {
        sql.push_str(" AND resource = ?");
        values.push(resource.clone().into());
    }
    if let Some(status) = &filter.status {
        if !plan::STATUS_NAMES.contains(&status.as_str()) {
            return Err(StoreError::Invalid {
                scim_type: ScimType::InvalidValue,
                detail: format!(
                    "status {status:?} is not one of {}",
                    plan::STATUS_NAMES.join(", ")
                ),
            });
        }
        sql.push_str(" AND status = ?");
        values.push(status.clone().into());
    }
    if let Some(after) = filter.ends_after {
        sql.push_str(" AND end_s > ?");
        values.push(after.into());
    }
    if let Some(before) = filter.starts_before {
        sql.push_str(" AND start_s < ?");
        values.push(before.into());
    }
    if filter.flagged_only {
        sql.push_str(" AND flagged = 1");
    }
    if let Some(after) = &filter.after_id {
        sql.push_str(" AND id > ?");
        values.push(after.clone().into());
    }
    sql.push_str(" ORDER BY id LIMIT ?");
    values.push(sql_u64(page(filter.limit) as u64).into());
    let texts: Vec<String> = conn
        .prepare_cached(&sql)
        .sql()?
        .query_map(params_from_iter(values.iter()), |r| r.get(0))
        .sql()?
        .collect::<rusqlite::Result<_>>()
        .sql()?;
    parse_bookings(texts)
}

// ---- assignments ------------------------------------------------------------------------------

fn assign(
    conn: &Connection,
    env: &WorkplaceEnv,
    tenant: TenantId,
    person: &str,
    resource: &str,
    ctx: &WriteContext,
    now: Timestamp,
) -> Result<Assignment> {
    ensure_tenant(conn, tenant)?;
    let doc =
        user_document(conn, tenant, person)?.ok_or_else(|| plan::not_found("person", person))?;
    if !plan::person(person, &doc, false).is_active() {
        return Err(plan::conflict(format!(
            "person {person:?} is not active and cannot be assigned a resource"
        )));
    }
    let context = env.context(conn, tenant)?;
    if context.catalog.resource(resource).is_none() {
        return Err(plan::not_found("resource", resource));
    }
    let holder: Option<(String, String)> = conn
        .prepare_cached("SELECT id, person FROM assignments WHERE tenant = ?1 AND resource = ?2")
        .sql()?
        .query_row(params![tenant.key(), resource], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .optional()
        .sql()?;
    if let Some((id, holder)) = holder {
        return Err(plan::conflict(format!(
            "resource {resource:?} is already assigned to {holder:?} (assignment {id:?})"
        )));
    }
    let assignment = Assignment {
        id: plan::new_id("a")?,
        person: person.to_owned(),
        resource: resource.to_owned(),
        since: now,
    };
    conn.prepare_cached(
        "INSERT INTO assignments (tenant, id, person, resource, since) VALUES (?1, ?2, ?3, ?4, ?5)",
    )
    .sql()?
    .execute(params![
        tenant.key(),
        assignment.id,
        assignment.person,
        assignment.resource,
        assignment.since
    ])
    .sql()?;
    append_drafts(
        conn,
        tenant,
        &[plan::assigned(&assignment)],
        document::now(),
        &ctx.actor,
        ctx.request_id.as_deref(),
    )?;
    Ok(assignment)
}

fn release_assignment(
    conn: &Connection,
    tenant: TenantId,
    id: &str,
    ctx: &WriteContext,
) -> Result<bool> {
    ensure_tenant(conn, tenant)?;
    let found: Option<(String, String)> = conn
        .prepare_cached(
            "DELETE FROM assignments WHERE tenant = ?1 AND id = ?2 RETURNING person, resource",
        )
        .sql()?
        .query_row(params![tenant.key(), id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .sql()?;
    let Some((person, resource)) = found else {
        return Ok(false);
    };
    append_drafts(
        conn,
        tenant,
        &[plan::released(id, &person, &resource, &ctx.actor)],
        document::now(),
        &ctx.actor,
        ctx.request_id.as_deref(),
    )?;
    Ok(true)
}

// ---- feed, audit, report ----------------------------------------------------------------------

const FEED_COLUMNS: &str = "seq, kind, id, op, version, at_ns, actor, request_id, detail";

type FeedRow = (
    i64,
    i64,
    String,
    String,
    i64,
    i64,
    String,
    Option<String>,
    Option<String>,
);

fn feed_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<FeedRow> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
    ))
}

fn feed_event(row: FeedRow) -> Result<FeedEvent> {
    let (seq, code, id, op, version, at_ns, actor, request_id, detail) = row;
    let subject = FeedSubject::from_code(code)
        .ok_or_else(|| StoreError::backend(format!("feed entry {seq}: unknown subject {code}")))?;
    let detail = detail
        .map(|text| {
            serde_json::from_str(&text)
                .map_err(|e| StoreError::backend(format!("feed entry {seq}: detail: {e}")))
        })
        .transpose()?;
    Ok(FeedEvent {
        seq: to_u64(seq),
        subject,
        id,
        op,
        version: (version > 0).then(|| to_u64(version)),
        at: document::from_nanos(at_ns),
        actor,
        request_id,
        detail,
    })
}

fn feed_query(
    conn: &Connection,
    sql: &str,
    values: &[rusqlite::types::Value],
) -> Result<Vec<FeedEvent>> {
    let rows: Vec<FeedRow> = conn
        .prepare_cached(sql)
        .sql()?
        .query_map(params_from_iter(values.iter()), feed_row)
        .sql()?
        .collect::<rusqlite::Result<_>>()
        .sql()?;
    rows.into_iter().map(feed_event).collect()
}

fn feed(conn: &Connection, tenant: TenantId, after: u64, limit: usize) -> Result<Vec<FeedEvent>> {
    ensure_tenant(conn, tenant)?;
    feed_query(
        conn,
        &format!(
            "SELECT {FEED_COLUMNS} FROM events WHERE tenant = ? AND seq > ? ORDER BY seq LIMIT ?"
        ),
        &[
            tenant.key().into(),
            sql_u64(after).into(),
            sql_u64(page(limit) as u64).into(),
        ],
    )
}

fn nanos_of(seconds: Timestamp) -> i64 {
    nanos(DateTime {
        unix_seconds: seconds,
        nanos: 0,
    })
}

fn audit(conn: &Connection, tenant: TenantId, filter: &AuditFilter) -> Result<Vec<FeedEvent>> {
    ensure_tenant(conn, tenant)?;
    let mut sql = format!("SELECT {FEED_COLUMNS} FROM events WHERE tenant = ? AND seq > ?");
    let mut values: Vec<rusqlite::types::Value> =
        vec![tenant.key().into(), sql_u64(filter.after_seq).into()];
    if let Some(subject) = filter.subject {
        sql.push_str(" AND kind = ?");
        values.push(subject.code().into());
    }
    if let Some(id) = &filter.id {
        sql.push_str(" AND id = ?");
        values.push(id.clone().into());
    }
    if let Some(person) = &filter.person {
        // About the User, or about a booking or assignment of theirs.
        sql.push_str(" AND ((kind = 1 AND id = ?) OR detail ->> '$.person' = ?)");
        values.push(person.clone().into());
        values.push(person.clone().into());
    }
    if let Some(request_id) = &filter.request_id {
        sql.push_str(" AND request_id = ?");
        values.push(request_id.clone().into());
    }
    if let Some(since) = filter.since {
        sql.push_str(" AND at_ns >= ?");
        values.push(nanos_of(since).into());
    }
    if let Some(until) = filter.until {
        sql.push_str(" AND at_ns < ?");
        values.push(nanos_of(until).into());
    }
    sql.push_str(" ORDER BY seq LIMIT ?");
    values.push(sql_u64(page(filter.limit) as u64).into());
    feed_query(conn, &sql, &values)
}

/// The report. `former` counts the people deleted by the identity provider whose booking
/// history is still kept: distinct persons of bookings who are no longer Users (an anonymised
/// person counts once, under their anonymised id). People deleted without any booking leave
/// nothing to report on and are not counted.
fn report(conn: &Connection, tenant: TenantId) -> Result<WorkplaceReport> {
    ensure_tenant(conn, tenant)?;
    // `active` absent (NULL) is active: RFC 7643 gives it no default and identity providers
    // that never send it manage users they consider active.
    let (active, inactive): (i64, i64) = conn
        .prepare_cached(
            "SELECT coalesce(sum(active IS NULL OR active <> 0), 0), coalesce(sum(active = 0), 0) \
             FROM resources WHERE tenant = ?1 AND kind = 1",
        )
        .sql()?
        .query_row([tenant.key()], |r| Ok((r.get(0)?, r.get(1)?)))
        .sql()?;
    let former: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM (SELECT DISTINCT person FROM bookings WHERE tenant = ?1) p \
             WHERE NOT EXISTS (SELECT 1 FROM resources r WHERE r.tenant = ?1 \
             AND r.id_fold = scim_fold(p.person) AND r.id = p.person AND r.kind = 1)",
        )
        .sql()?
        .query_row([tenant.key()], |r| r.get(0))
        .sql()?;
    let mut bookings: BTreeMap<String, u64> = plan::STATUS_NAMES
        .iter()
        .map(|s| ((*s).to_owned(), 0))
        .collect();
    let counts: Vec<(String, i64)> = conn
        .prepare_cached("SELECT status, count(*) FROM bookings WHERE tenant = ?1 GROUP BY status")
        .sql()?
        .query_map([tenant.key()], |r| Ok((r.get(0)?, r.get(1)?)))
        .sql()?
        .collect::<rusqlite::Result<_>>()
        .sql()?;
    for (status, count) in counts {
        bookings.insert(status, to_u64(count));
    }
    let flagged: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM bookings WHERE tenant = ?1 AND flagged = 1 \
             AND status IN ('booked', 'checkedIn')",
        )
        .sql()?
        .query_row([tenant.key()], |r| r.get(0))
        .sql()?;
    let count = |n: i64| usize::try_from(n).unwrap_or(0);
    Ok(WorkplaceReport {
        seats: SeatReport {
            active: count(active),
            inactive: count(inactive),
            former: count(former),
        },
        bookings,
        flagged: to_u64(flagged),
    })
}

// ---- the trait --------------------------------------------------------------------------------

#[async_trait]
impl WorkplaceStore for SqliteStore {
    async fn workplace_config(&self, tenant: &TenantId) -> Result<WorkplaceConfig> {
        let tenant = *tenant;
        self.read_env(tenant, move |conn, _| {
            ensure_tenant(conn, tenant)?;
            Ok(load_config(conn, tenant)?.0)
        })
        .await
    }

    async fn preview_policies(
        &self,
        tenant: &TenantId,
        policies: &PolicySet,
        settings: CascadeSettings,
        now: Timestamp,
    ) -> Result<Preview> {
        let (tenant, policies) = (*tenant, policies.clone());
        self.read_env(tenant, move |conn, env| {
            preview_policies(conn, env, tenant, &policies, settings, now)
        })
        .await
    }

    async fn set_policies(
        &self,
        tenant: &TenantId,
        policies: PolicySet,
        settings: CascadeSettings,
        expected_version: Option<u64>,
        ctx: &WriteContext,
        now: Timestamp,
    ) -> Result<(WorkplaceConfig, Preview)> {
        let (tenant, ctx) = (*tenant, ctx.clone());
        let attempt = || {
            let (policies, ctx) = (policies.clone(), ctx.clone());
            self.write_env(tenant, ctx.window.clone(), move |conn, env| {
                set_policies(
                    conn,
                    env,
                    tenant,
                    policies,
                    settings,
                    expected_version,
                    &ctx,
                    now,
                )
            })
        };
        self.schemas.once_more_if_moved(tenant, attempt).await
    }

    async fn put_place(
        &self,
        tenant: &TenantId,
        kind: PlaceKind,
        document: Value,
        expected_version: Option<u64>,
        ctx: &WriteContext,
    ) -> Result<(PlaceRecord, PlaceChange)> {
        let (tenant, ctx) = (*tenant, ctx.clone());
        self.write_env(tenant, ctx.window.clone(), move |conn, _| {
            put_place(conn, tenant, kind, document, expected_version, &ctx)
        })
        .await
    }

    async fn delete_place(
        &self,
        tenant: &TenantId,
        kind: PlaceKind,
        id: &str,
        ctx: &WriteContext,
    ) -> Result<()> {
        let (tenant, id, ctx) = (*tenant, id.to_owned(), ctx.clone());
        self.write_env(tenant, ctx.window.clone(), move |conn, _| {
            delete_place(conn, tenant, kind, &id, &ctx)
        })
        .await
    }

    async fn place(
        &self,
        tenant: &TenantId,
        kind: PlaceKind,
        id: &str,
    ) -> Result<Option<PlaceRecord>> {
        let (tenant, id) = (*tenant, id.to_owned());
        self.read_env(tenant, move |conn, _| {
            ensure_tenant(conn, tenant)?;
            load_place(conn, tenant, kind, &id)
        })
        .await
    }

    async fn places(&self, tenant: &TenantId, kind: PlaceKind) -> Result<Vec<PlaceRecord>> {
        let tenant = *tenant;
        self.read_env(tenant, move |conn, _| {
            ensure_tenant(conn, tenant)?;
            load_places(conn, tenant, Some(kind))
        })
        .await
    }

    async fn evaluate_booking(
        &self,
        tenant: &TenantId,
        person: &str,
        resource: &str,
        request: BookingRequest,
        now: Timestamp,
    ) -> Result<Decision> {
        let (tenant, person, resource) = (*tenant, person.to_owned(), resource.to_owned());
        self.read_env(tenant, move |conn, env| {
            evaluate_booking(conn, env, tenant, &person, &resource, request, now)
        })
        .await
    }

    async fn book(
        &self,
        tenant: &TenantId,
        request: NewBooking,
        ctx: &WriteContext,
        now: Timestamp,
    ) -> Result<BookingOutcome> {
        let (tenant, ctx) = (*tenant, ctx.clone());
        self.write_env(tenant, ctx.window.clone(), move |conn, env| {
            book(conn, env, tenant, request, &ctx, now)
        })
        .await
    }

    async fn cancel_booking(
        &self,
        tenant: &TenantId,
        id: &str,
        by: Actor,
        reason: &str,
        ctx: &WriteContext,
        now: Timestamp,
    ) -> Result<BookingRecord> {
        let (tenant, id, reason, ctx) = (*tenant, id.to_owned(), reason.to_owned(), ctx.clone());
        self.write_env(tenant, ctx.window.clone(), move |conn, _| {
            cancel_booking(conn, tenant, &id, by, &reason, &ctx, now)
        })
        .await
    }

    async fn check_in(
        &self,
        tenant: &TenantId,
        id: &str,
        ctx: &WriteContext,
        now: Timestamp,
    ) -> Result<BookingOutcome> {
        let (tenant, id, ctx) = (*tenant, id.to_owned(), ctx.clone());
        self.write_env(tenant, ctx.window.clone(), move |conn, env| {
            check_in(conn, env, tenant, &id, &ctx, now)
        })
        .await
    }

    async fn booking(&self, tenant: &TenantId, id: &str) -> Result<Option<BookingRecord>> {
        let (tenant, id) = (*tenant, id.to_owned());
        self.read_env(tenant, move |conn, _| {
            ensure_tenant(conn, tenant)?;
            load_booking(conn, tenant, &id)
        })
        .await
    }

    async fn bookings(
        &self,
        tenant: &TenantId,
        filter: &BookingFilter,
    ) -> Result<Vec<BookingRecord>> {
        let (tenant, filter) = (*tenant, filter.clone());
        self.read_env(tenant, move |conn, _| {
            ensure_tenant(conn, tenant)?;
            bookings(conn, tenant, &filter)
        })
        .await
    }

    async fn assign(
        &self,
        tenant: &TenantId,
        person: &str,
        resource: &str,
        ctx: &WriteContext,
        now: Timestamp,
    ) -> Result<Assignment> {
        let (tenant, person, resource, ctx) =
            (*tenant, person.to_owned(), resource.to_owned(), ctx.clone());
        self.write_env(tenant, ctx.window.clone(), move |conn, env| {
            assign(conn, env, tenant, &person, &resource, &ctx, now)
        })
        .await
    }

    async fn release_assignment(
        &self,
        tenant: &TenantId,
        id: &str,
        ctx: &WriteContext,
    ) -> Result<bool> {
        let (tenant, id, ctx) = (*tenant, id.to_owned(), ctx.clone());
        self.write_env(tenant, ctx.window.clone(), move |conn, _| {
            release_assignment(conn, tenant, &id, &ctx)
        })
        .await
    }

    async fn assignments(
        &self,
        tenant: &TenantId,
        person: Option<&str>,
    ) -> Result<Vec<Assignment>> {
        let (tenant, person) = (*tenant, person.map(str::to_owned));
        self.read_env(tenant, move |conn, _| {
            ensure_tenant(conn, tenant)?;
            load_assignments(conn, tenant, person.as_deref())
        })
        .await
    }

    async fn assignment(&self, tenant: &TenantId, id: &str) -> Result<Option<Assignment>> {
        let (tenant, id) = (*tenant, id.to_owned());
        self.read_env(tenant, move |conn, _| {
            ensure_tenant(conn, tenant)?;
            load_assignment(conn, tenant, &id)
        })
        .await
    }

    async fn feed(
        &self,
        tenant: &TenantId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<FeedEvent>> {
        let tenant = *tenant;
        self.read_env(tenant, move |conn, _| feed(conn, tenant, after_seq, limit))
            .await
    }

    async fn audit(&self, tenant: &TenantId, filter: &AuditFilter) -> Result<Vec<FeedEvent>> {
        let (tenant, filter) = (*tenant, filter.clone());
        self.read_env(tenant, move |conn, _| audit(conn, tenant, &filter))
            .await
    }

    async fn report(&self, tenant: &TenantId) -> Result<WorkplaceReport> {
        let tenant = *tenant;
        self.read_env(tenant, move |conn, _| report(conn, tenant))
            .await
    }
}
