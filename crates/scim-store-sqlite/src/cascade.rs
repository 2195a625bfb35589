//! Lifecycle cascades inside SCIM writes (issue 7), and the workplace rows both the cascades and
//! the workplace API read and write.
//!
//! A SCIM write about people (a User written or deleted, a Group whose members or name change)
//! first asks, per person concerned, one indexed question: do they hold anything (a live
//! booking not yet ended, or a permanent assignment)? Only for those who do, it keeps their
//! document as it was ([`Watched`]), makes its own change, and then, in the same savepoint,
//! hands before and after to [`plan::person_cascade`] and writes what it decided, with one feed
//! entry per effect right after the SCIM change's own event ([`run`]). Nothing here decides:
//! the decisions are [`workplace_policy`]'s, through [`plan`].

use super::feed::append_drafts;
use super::read::{self, to_u64};
use crate::conn::SqlResult;
use rusqlite::{Connection, OptionalExtension, params};
use scim_schema::DateTime;
use scim_store_core::workplace::plan::{
    self, Anonymisation, CascadeWrites, ContextCache, TenantContext,
};
use scim_store_core::workplace::{
    BookingRecord, FeedSubject, PlaceKind, PlaceRecord, WorkplaceConfig,
};
use scim_store_core::{Members, ResourceKind, ResourceSchemas, TenantId, WriteContext};
use scim_store_core::{Result, StoreError};
use serde_json::Value;
use std::cell::RefCell;
use std::sync::Arc;
use workplace_policy::{Assignment, Timestamp};

/// How far back a person's bookings are loaded for a decision, before the earliest instant it
/// concerns: the weekly limits count bookings of the same ISO week, which began at most seven
/// days (plus the tenant's UTC offset, under a day) before it.
pub(crate) const HISTORY_SECONDS: i64 = 8 * 86_400;

/// Does person `?2` of tenant `?1` hold anything at `?3`: a live booking not yet ended (index
/// `bookings_by_person`), or an assignment (`assignments_by_person`)?
const HOLDS_ANYTHING: &str = "SELECT EXISTS (SELECT 1 FROM bookings WHERE tenant = ?1 \
    AND person = ?2 AND end_s > ?3 AND status IN ('booked', 'checkedIn')) \
    OR EXISTS (SELECT 1 FROM assignments WHERE tenant = ?1 AND person = ?2)";

/// Does person `?2` of tenant `?1` have anything for a deletion to act on: any booking (held or
/// history, which an anonymising tenant rewrites), an assignment, or feed entries about them
/// (a released assignment leaves only those; index `events_by_person`)?
const HAS_HISTORY: &str = "SELECT EXISTS (SELECT 1 FROM bookings WHERE tenant = ?1 \
    AND person = ?2) OR EXISTS (SELECT 1 FROM assignments WHERE tenant = ?1 AND person = ?2) \
    OR EXISTS (SELECT 1 FROM events WHERE tenant = ?1 AND detail ->> '$.person' = ?2)";

/// The id of row `?1` if it is a User of tenant `?2` who holds anything at `?3`.
const HOLDER_BY_RID: &str = "SELECT r.id FROM resources r WHERE r.rid = ?1 AND r.kind = 1 \
    AND r.tenant = ?2 AND (EXISTS (SELECT 1 FROM bookings b WHERE b.tenant = ?2 \
    AND b.person = r.id AND b.end_s > ?3 AND b.status IN ('booked', 'checkedIn')) \
    OR EXISTS (SELECT 1 FROM assignments a WHERE a.tenant = ?2 AND a.person = r.id))";

/// The User members of group `?1` (tenant `?2`) who hold anything at `?3`.
const HOLDING_MEMBERS: &str = "SELECT r.rid, r.id FROM members m \
    JOIN resources r ON r.rid = m.member_rid WHERE m.group_rid = ?1 AND r.kind = 1 \
    AND (EXISTS (SELECT 1 FROM bookings b WHERE b.tenant = ?2 AND b.person = r.id \
    AND b.end_s > ?3 AND b.status IN ('booked', 'checkedIn')) \
    OR EXISTS (SELECT 1 FROM assignments a WHERE a.tenant = ?2 AND a.person = r.id))";

/// Does anyone of tenant `?1` hold anything at `?2`? (Asked once by a bulk import.)
const TENANT_HOLDS: &str = "SELECT EXISTS (SELECT 1 FROM bookings WHERE tenant = ?1 \
    AND status IN ('booked', 'checkedIn') AND end_s > ?2) \
    OR EXISTS (SELECT 1 FROM assignments WHERE tenant = ?1)";

/// The feed entries (tenant `?1`) about bookings or assignments (subjects `?3`, `?4`) of person
/// `?2`: what an anonymisation rewrites. `INDEXED BY`: without statistics (scimd runs no
/// `ANALYZE`) SQLite 3.50 prefers walking the tenant's whole feed by primary key.
const PERSON_ENTRIES: &str = "SELECT seq, detail FROM events INDEXED BY events_by_person \
    WHERE tenant = ?1 AND kind IN (?3, ?4) AND detail ->> '$.person' = ?2";

/// Person `?2`'s bookings (tenant `?1`) ending after `?3`.
const PERSON_BOOKINGS: &str = "SELECT record FROM bookings WHERE tenant = ?1 AND person = ?2 \
    AND end_s > ?3 ORDER BY id";

/// The live bookings of resource `?2` (tenant `?1`) overlapping `[?4, ?3)`.
const RESOURCE_BOOKINGS: &str = "SELECT record FROM bookings WHERE tenant = ?1 \
    AND resource = ?2 AND start_s < ?3 AND end_s > ?4 AND status IN ('booked', 'checkedIn')";

/// The lookups SCIM writes and bookings make, by name, for [`super::SqliteStore::explain_workplace`]:
/// each must search an index, never scan a tenant's bookings.
pub(crate) const HOT_LOOKUPS: [(&str, &str); 8] = [
    ("holds_anything", HOLDS_ANYTHING),
    ("has_history", HAS_HISTORY),
    ("person_entries", PERSON_ENTRIES),
    ("holder_by_rid", HOLDER_BY_RID),
    ("holding_members", HOLDING_MEMBERS),
    ("tenant_holds", TENANT_HOLDS),
    ("person_bookings", PERSON_BOOKINGS),
    ("resource_bookings", RESOURCE_BOOKINGS),
];

/// What a writer job (or a read) needs for workplace decisions: the store's context cache, the
/// schemas (policies compile against the User schema), and the tenant context it had to build,
/// which the store caches only once the job's transaction has committed (a context built from
/// a write that is then rolled back must never be served under its generation).
pub(crate) struct WorkplaceEnv {
    contexts: Arc<ContextCache>,
    schemas: ResourceSchemas,
    built: RefCell<Option<Arc<TenantContext>>>,
}

impl WorkplaceEnv {
    pub(crate) fn new(contexts: Arc<ContextCache>, schemas: ResourceSchemas) -> WorkplaceEnv {
        WorkplaceEnv {
            contexts,
            schemas,
            built: RefCell::new(None),
        }
    }

    /// The tenant's User schema.
    pub(crate) fn user_schema(&self) -> &scim_schema::ResourceSchema {
        self.schemas.get(ResourceKind::User)
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
        if let Some(cached) = self.contexts.get(tenant, generation) {
            return Ok(cached);
        }
        let (config, generation) = load_config(conn, tenant)?;
        let places = load_places(conn, tenant, None)?;
        let context = Arc::new(TenantContext::build(
            generation,
            config,
            &places,
            self.user_schema(),
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

// ---- configuration and catalog ----------------------------------------------------------------

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
                .map_err(|e| StoreError::Backend(format!("stored workplace configuration: {e}")))?;
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
            .map_err(|e| StoreError::Backend(format!("workplace configuration JSON: {e}")))
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
        .ok_or_else(|| StoreError::Backend(format!("stored place of unknown kind {kind:?}")))?;
    let document = serde_json::from_str(doc)
        .map_err(|e| StoreError::Backend(format!("stored {} {id:?}: {e}", kind.as_str())))?;
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

// ---- people -----------------------------------------------------------------------------------

/// A User's served document (with `groups` in join order) by id, if it exists.
pub(crate) fn user_document(
    conn: &Connection,
    tenant: TenantId,
    id: &str,
) -> Result<Option<Value>> {
    Ok(read::get(conn, tenant, ResourceKind::User, id, Members::Exclude)?.map(|r| r.document))
}

/// A User's served document by row.
fn user_document_by_rid(conn: &Connection, rid: i64) -> Result<Option<Value>> {
    match read::row_by_rid(conn, rid)? {
        Some(row) if row.kind == ResourceKind::User => Ok(Some(
            read::resource_of(conn, row, Members::Exclude)?.document,
        )),
        _ => Ok(None),
    }
}

// ---- bookings and assignments -----------------------------------------------------------------

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
        Err(StoreError::Backend(format!("booking {:?} vanished", b.id)))
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
            .map_err(|e| StoreError::Backend(format!("stored feed detail {seq}: {e}")))?;
        if anonymisation.detail(&mut detail) {
            let text = serde_json::to_string(&detail)
                .map_err(|e| StoreError::Backend(format!("feed detail JSON: {e}")))?;
            update.execute(params![tenant.key(), seq, text]).sql()?;
        }
    }
    Ok(())
}

// ---- the cascades of SCIM writes --------------------------------------------------------------

/// A person a SCIM write concerns who holds something, with their document before the write
/// (`None` if the write creates them).
pub(crate) struct Watched {
    rid: i64,
    id: String,
    before: Option<Value>,
}

impl Watched {
    /// The person's row.
    pub(crate) fn rid(&self) -> i64 {
        self.rid
    }
}

/// Whether `person` holds anything at `now`: a live booking not yet ended, or an assignment.
/// The one indexed lookup a SCIM write about a person without holdings costs.
pub(crate) fn holds_anything(
    conn: &Connection,
    tenant: TenantId,
    person: &str,
    now: Timestamp,
) -> Result<bool> {
    let mut stmt = conn.prepare_cached(HOLDS_ANYTHING).sql()?;
    stmt.query_row(params![tenant.key(), person, now], |r| r.get(0))
        .sql()
}

/// Whether anyone of the tenant holds anything at `now`: a bulk import asks once, and watches
/// nobody when nobody does.
pub(crate) fn tenant_holds_anything(
    conn: &Connection,
    tenant: TenantId,
    now: Timestamp,
) -> Result<bool> {
    let mut stmt = conn.prepare_cached(TENANT_HOLDS).sql()?;
    stmt.query_row(params![tenant.key(), now], |r| r.get(0))
        .sql()
}

/// Watches User `id` (row `rid`) across a write that changes or deletes it, if they hold
/// anything.
pub(crate) fn watch_user(
    conn: &Connection,
    tenant: TenantId,
    rid: i64,
    id: &str,
    now: Timestamp,
) -> Result<Vec<Watched>> {
    if !holds_anything(conn, tenant, id, now)? {
        return Ok(Vec::new());
    }
    Ok(vec![Watched {
        rid,
        id: id.to_owned(),
        before: user_document_by_rid(conn, rid)?,
    }])
}

/// Watches User `id` (row `rid`) across a write that deletes it, if the deletion may have
/// anything to act on: an assignment, any booking, held or past, or feed entries about them (a
/// released assignment leaves only those): a tenant that anonymises former people rewrites
/// their history even when they hold nothing any more. One statement of indexed lookups.
pub(crate) fn watch_leaving(
    conn: &Connection,
    tenant: TenantId,
    rid: i64,
    id: &str,
) -> Result<Vec<Watched>> {
    let mut stmt = conn.prepare_cached(HAS_HISTORY).sql()?;
    if !stmt
        .query_row(params![tenant.key(), id], |r| r.get::<_, bool>(0))
        .sql()?
    {
        return Ok(Vec::new());
    }
    Ok(vec![Watched {
        rid,
        id: id.to_owned(),
        before: user_document_by_rid(conn, rid)?,
    }])
}

/// Watches a User the write has just created (row `rid`), if they hold anything (an id kept by
/// an import may have been a person's before).
pub(crate) fn watch_created(
    conn: &Connection,
    tenant: TenantId,
    rid: i64,
    id: &str,
    now: Timestamp,
) -> Result<Vec<Watched>> {
    if !holds_anything(conn, tenant, id, now)? {
        return Ok(Vec::new());
    }
    Ok(vec![Watched {
        rid,
        id: id.to_owned(),
        before: None,
    }])
}

/// Watches the Users among rows `rids` (a group's members being added or removed) who hold
/// anything.
pub(crate) fn watch_rids(
    conn: &Connection,
    tenant: TenantId,
    rids: impl IntoIterator<Item = i64>,
    now: Timestamp,
) -> Result<Vec<Watched>> {
    let mut seen = std::collections::HashSet::new();
    let rids: Vec<i64> = rids.into_iter().filter(|rid| seen.insert(*rid)).collect();
    if rids.is_empty() {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare_cached(HOLDER_BY_RID).sql()?;
    let mut watched = Vec::new();
    for rid in rids {
        let id: Option<String> = stmt
            .query_row(params![rid, tenant.key(), now], |r| r.get(0))
            .optional()
            .sql()?;
        if let Some(id) = id {
            watched.push(Watched {
                rid,
                id,
                before: user_document_by_rid(conn, rid)?,
            });
        }
    }
    Ok(watched)
}

/// Watches the User members of group `group_rid` who hold anything (the group is renamed or
/// deleted): one join with an indexed lookup per member.
pub(crate) fn watch_group_members(
    conn: &Connection,
    tenant: TenantId,
    group_rid: i64,
    now: Timestamp,
) -> Result<Vec<Watched>> {
    let found: Vec<(i64, String)> = conn
        .prepare_cached(HOLDING_MEMBERS)
        .sql()?
        .query_map(params![group_rid, tenant.key(), now], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .sql()?
        .collect::<rusqlite::Result<_>>()
        .sql()?;
    found
        .into_iter()
        .map(|(rid, id)| {
            Ok(Watched {
                rid,
                id,
                before: user_document_by_rid(conn, rid)?,
            })
        })
        .collect()
}

/// Runs the cascades of the people watched across a SCIM write that has just been made (and
/// its event appended), at the write's own time `at`: `deleted` is the row the write deleted,
/// if it deleted a User. Each person is judged as they were before and are now; their
/// cancellations, endings, flags and releases are written and appended to the feed after the
/// SCIM event, as `system`, citing `ctx`'s request.
pub(crate) fn run(
    conn: &Connection,
    env: &WorkplaceEnv,
    tenant: TenantId,
    watched: Vec<Watched>,
    deleted: Option<i64>,
    at: DateTime,
    ctx: &WriteContext,
) -> Result<()> {
    if watched.is_empty() {
        return Ok(());
    }
    let now = at.unix_seconds;
    let context = env.context(conn, tenant)?;
    let cascade = context.cascade(now);
    let request_id = ctx.request_id.clone().unwrap_or_default();
    for person in watched {
        let after = if deleted == Some(person.rid) {
            None
        } else {
            user_document_by_rid(conn, person.rid)?
        };
        let bookings = person_bookings(conn, tenant, &person.id, now - HISTORY_SECONDS)?;
        let assignments = load_assignments(conn, tenant, Some(&person.id))?;
        let mut writes = plan::person_cascade(
            &cascade,
            &person.id,
            person.before.as_ref(),
            after.as_ref(),
            bookings,
            assignments,
            &request_id,
        );
        let anonymisation = Anonymisation::of(&writes, person.before.as_ref());
        if let Some(anonymisation) = &anonymisation {
            anonymisation.cascade(&mut writes);
        }
        if !writes.is_empty() {
            write_cascade(
                conn,
                tenant,
                &writes,
                anonymisation.as_ref(),
                at,
                ctx.request_id.as_deref(),
            )?;
        }
    }
    Ok(())
}
