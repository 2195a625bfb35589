//! The workplace half of the store ([`WorkplaceStore`], issue 7): catalog, policies, bookings,
//! assignments, feed, audit log and report; the rows of all of them, which `cascade.rs` reads
//! and writes too; and the tenant context decisions are made against. Decisions are
//! [`plan`]'s; this module only loads and writes.
//!
//! # Locks across replicas
//!
//! Every workplace write is one transaction (retried on serialization failures and deadlocks,
//! like SCIM writes), and the invariants hold across processes because of row locks, always
//! taken in one order:
//!
//! 1. the tenant's `workplace_state` row: `FOR UPDATE` by catalog and policy writes (which bump
//!    its `generation`), `FOR SHARE` by bookings, assignments and cascades. So a booking is
//!    decided against policies and a catalog that cannot change before it commits, and a policy
//!    change sees every booking made under the old policies;
//! 2. the `places` row of the resource concerned: `FOR UPDATE` by `book` (two replicas cannot
//!    both count the same free place), `delete_place` and `put_place`, `FOR SHARE` by `assign`;
//! 3. the person's User row (`FOR NO KEY UPDATE`, as SCIM writers lock it): a booking or an
//!    assignment and a deactivation of the same person are serialised, so either the booking
//!    sees the person inactive, or the deactivation's cascade sees the booking;
//! 4. then the Groups the person is in (`FOR SHARE`), against a concurrent Group
//!    write that removes them or renames the group (Group writes lock the Group row first,
//!    then the Users they add, before they look for the people concerned);
//! 5. booking rows;
//! 6. last, the tenant row, to number the feed entries (see [`super`]).
//!
//! SCIM writes lock the User (or Group, then added Users) row first and the state row (shared)
//! only when someone concerned holds something: the only holders of the state row exclusively
//! (catalog and policy writes) never wait for a User or Group row, and a booking never waits
//! for a Group the person is being added to, so this cannot deadlock either (and a deadlock
//! would only be retried).
//!
//! # The tenant context
//!
//! The compiled policies and the catalog are built once per tenant *generation* and kept in the
//! store's [`ContextCache`]: a transaction reads the generation (one primary-key lookup) and
//! rebuilds only when another write moved it, here or in another replica.

use super::PostgresStore;
use super::feed::append_feed;
use super::read::{self, StoredRow};
use super::write::check_no_nul;
use crate::conn::{Fail, PgResult, backoff};
use async_trait::async_trait;
use deadpool_postgres::{GenericClient, Transaction};
use scim_schema::{ResourceSchema, fold_case};
use scim_store_core::document::{self, from_nanos, to_nanos};
use scim_store_core::workplace::plan::{
    self, Anonymisation, CascadeWrites, ContextCache, MAX_PAGE, SYSTEM_ACTOR, TenantContext,
};
use scim_store_core::workplace::{
    AuditFilter, BookingFilter, BookingOutcome, BookingRecord, FeedEvent, FeedSubject, NewBooking,
    PlaceChange, PlaceKind, PlaceRecord, WorkplaceConfig, WorkplaceReport, WorkplaceStore,
};
use scim_store_core::{Members, ResourceKind, TenantId, TenantSchemas, WriteContext};
use scim_store_core::{Result, StoreError};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use tokio_postgres::error::SqlState;
use workplace_policy::{
    Actor, Assignment, Booking, BookingRequest, CascadeSettings, CompiledPolicySet, Decision,
    LIMIT_HISTORY_SECONDS, Person, PolicySet, Preview, SeatReport, Timestamp, evaluate,
    preview_policy_change,
};

/// The statuses of a live booking, as stored.
const LIVE: &str = "('booked', 'checkedIn')";

/// What cascades need from the store: its tenant contexts and the User schema policies are
/// compiled against.
pub(crate) struct Cascades<'a> {
    /// The store's tenant contexts.
    pub(crate) cache: &'a ContextCache,
    /// The tenant's schemas.
    pub(crate) schemas: &'a TenantSchemas,
    /// The tenant's User schema.
    pub(crate) user: &'a ResourceSchema,
}

impl PostgresStore {
    pub(crate) fn cascades<'a>(&'a self, schemas: &'a TenantSchemas) -> Cascades<'a> {
        Cascades {
            cache: &self.contexts,
            schemas,
            user: schemas.resources.get(ResourceKind::User),
        }
    }
}

fn sql_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn sql_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// PostgreSQL text cannot hold U+0000: an id containing it names nothing.
fn has_nul(text: &str) -> bool {
    text.contains('\0')
}

// ---- the tenant context ---------------------------------------------------------------------------

/// How a transaction holds the tenant's `workplace_state` row (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StateLock {
    /// Not at all (reads).
    None,
    /// Shared: the policies and catalog cannot change until this transaction ends.
    Share,
    /// Exclusive: this transaction changes them.
    Update,
}

/// The tenant's generation, its state row locked as asked.
///
/// Every tenant gets its state row when created (or by the migration that added the table);
/// one created meanwhile by a replica still running an older scimd (a rolling upgrade) gets it
/// here, on the first workplace write, and reads as generation 0 until then.
async fn generation<C: GenericClient>(
    client: &C,
    tenant: TenantId,
    lock: StateLock,
) -> PgResult<u64> {
    let sql = match lock {
        StateLock::None => "SELECT generation FROM workplace_state WHERE tenant = $1",
        StateLock::Share => "SELECT generation FROM workplace_state WHERE tenant = $1 FOR SHARE",
        StateLock::Update => "SELECT generation FROM workplace_state WHERE tenant = $1 FOR UPDATE",
    };
    let stmt = client.prepare_cached(sql).await?;
    if let Some(row) = client.query_opt(&stmt, &[&tenant.key()]).await? {
        return Ok(sql_u64(row.try_get(0)?));
    }
    let missing = || -> Fail { StoreError::TenantNotFound(tenant.to_string()).into() };
    if lock == StateLock::None {
        let exists = client
            .prepare_cached("SELECT 1 FROM tenants WHERE id = $1")
            .await?;
        return match client.query_opt(&exists, &[&tenant.key()]).await? {
            Some(_) => Ok(0),
            None => Err(missing()),
        };
    }
    let insert = client
        .prepare_cached(
            "INSERT INTO workplace_state (tenant, config, generation) \
             SELECT id, NULL, 0 FROM tenants WHERE id = $1 ON CONFLICT DO NOTHING",
        )
        .await?;
    client.execute(&insert, &[&tenant.key()]).await?;
    match client.query_opt(&stmt, &[&tenant.key()]).await? {
        Some(row) => Ok(sql_u64(row.try_get(0)?)),
        None => Err(missing()),
    }
}

/// The stored configuration (default when never set).
pub(crate) fn config_of(stored: Option<Value>) -> PgResult<WorkplaceConfig> {
    match stored {
        None | Some(Value::Null) => Ok(WorkplaceConfig::default()),
        Some(value) => serde_json::from_value(value).map_err(|e| {
            StoreError::backend(format!(
                "the stored workplace configuration is invalid: {e}"
            ))
            .into()
        }),
    }
}

/// The tenant's context at its current generation: from the cache, or built from one snapshot
/// (a single statement reads the generation, the configuration and the catalog together, so
/// what is cached under a generation is exactly that generation's).
pub(crate) async fn context<C: GenericClient>(
    client: &C,
    cascades: &Cascades<'_>,
    tenant: TenantId,
    lock: StateLock,
) -> PgResult<Arc<TenantContext>> {
    let current = generation(client, tenant, lock).await?;
    if let Some(context) = cascades
        .cache
        .get(tenant, current, cascades.schemas.version)
    {
        return Ok(context);
    }
    let stmt = client
        .prepare_cached(
            "SELECT coalesce(s.generation, 0), s.config, \
             (SELECT json_agg(json_build_array(p.kind, p.id, p.doc, p.version)) \
              FROM places p WHERE p.tenant = t.id) \
             FROM tenants t LEFT JOIN workplace_state s ON s.tenant = t.id WHERE t.id = $1",
        )
        .await?;
    let row = client
        .query_opt(&stmt, &[&tenant.key()])
        .await?
        .ok_or_else(|| StoreError::TenantNotFound(tenant.to_string()))?;
    let built_at = sql_u64(row.try_get(0)?);
    let config = config_of(row.try_get(1)?)?;
    let places = places_of_json(row.try_get(2)?)?;
    let context = Arc::new(TenantContext::build(
        built_at,
        config,
        &places,
        cascades.schemas,
    )?);
    cascades.cache.put(tenant, Arc::clone(&context));
    Ok(context)
}

/// The catalog entries `json_agg(json_build_array(kind, id, doc, version))` selected.
fn places_of_json(selected: Option<Value>) -> PgResult<Vec<PlaceRecord>> {
    let Some(Value::Array(items)) = selected else {
        return Ok(Vec::new());
    };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let parts = item.as_array().map_or(&[][..], Vec::as_slice);
        match parts {
            [Value::String(kind), Value::String(id), document, version] => {
                let kind = PlaceKind::from_name(kind).ok_or_else(|| {
                    StoreError::backend(format!("a stored place has the unknown kind {kind:?}"))
                })?;
                out.push(PlaceRecord {
                    kind,
                    id: id.clone(),
                    document: document.clone(),
                    version: version.as_u64().unwrap_or(0),
                });
            }
            _ => return Err(StoreError::backend("a stored place is malformed").into()),
        }
    }
    Ok(out)
}

/// Bumps the tenant's generation (every catalog or policy write, with the state row locked).
async fn bump_generation(tx: &Transaction<'_>, tenant: TenantId) -> PgResult<()> {
    let stmt = tx
        .prepare_cached("UPDATE workplace_state SET generation = generation + 1 WHERE tenant = $1")
        .await?;
    tx.execute(&stmt, &[&tenant.key()]).await?;
    Ok(())
}

// ---- people -------------------------------------------------------------------------------------

/// The served User documents (with their derived `groups`, in joining order) of the tenant
/// whose ids are among `ids` (compared exactly, as ids are), by id.
async fn people_docs<C: GenericClient>(
    client: &C,
    tenant: TenantId,
    ids: &[&str],
) -> PgResult<HashMap<String, Value>> {
    let wanted: HashSet<&str> = ids.iter().copied().filter(|id| !has_nul(id)).collect();
    if wanted.is_empty() {
        return Ok(HashMap::new());
    }
    let folds: Vec<String> = wanted.iter().map(|id| fold_case(id).into_owned()).collect();
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {}, {} FROM resources r WHERE r.tenant = $1 AND r.id_fold = ANY($2) AND r.kind = $3",
            read::COLUMNS,
            read::derived_sql(ResourceKind::User, Members::Include)
        ))
        .await?;
    let rows = client
        .query(
            &stmt,
            &[&tenant.key(), &folds, &read::code(ResourceKind::User)],
        )
        .await?;
    let mut out = HashMap::with_capacity(rows.len());
    for row in rows {
        let derived: Option<Value> = row.try_get(8)?;
        let stored = StoredRow::from_row(&row)?;
        if wanted.contains(stored.id.as_str()) {
            let resource = read::resource_of(stored, derived)?;
            out.insert(resource.id, resource.document);
        }
    }
    Ok(out)
}

/// The person `id`, or 404.
///
/// With `lock`, their User row is locked as SCIM writers lock it, so that the caller's write
/// and a SCIM change of the person are serialised; and the Groups they are in are share-locked,
/// so that a concurrent Group write removing them or renaming one (which locks the Group row
/// exclusively before it looks for the people concerned) either commits first, and the
/// person is then read as it left them, or waits, and then finds what the caller wrote. The
/// document is read after both locks.
async fn load_person<C: GenericClient>(
    client: &C,
    tenant: TenantId,
    id: &str,
    lock: bool,
) -> PgResult<Person> {
    let not_found = || -> Fail { plan::not_found("person", id).into() };
    if has_nul(id) {
        return Err(not_found());
    }
    if lock {
        let stmt = client
            .prepare_cached(
                "SELECT rid FROM resources WHERE tenant = $1 AND id_fold = $2 AND id = $3 \
                 AND kind = $4 FOR NO KEY UPDATE",
            )
            .await?;
        let row = client
            .query_opt(
                &stmt,
                &[
                    &tenant.key(),
                    &fold_case(id),
                    &id,
                    &read::code(ResourceKind::User),
                ],
            )
            .await?
            .ok_or_else(not_found)?;
        let rid: i64 = row.try_get(0)?;
        let groups = client
            .prepare_cached(
                "SELECT g.rid FROM resources g \
                 WHERE g.rid IN (SELECT m.group_rid FROM members m WHERE m.member_rid = $1) \
                 ORDER BY g.rid FOR SHARE",
            )
            .await?;
        client.query(&groups, &[&rid]).await?;
        let resource = read::load(client, ResourceKind::User, rid, Members::Include).await?;
        return Ok(plan::person(id, &resource.document, false));
    }
    let resource = read::get(client, tenant, ResourceKind::User, id, Members::Include)
        .await?
        .ok_or_else(not_found)?;
    Ok(plan::person(id, &resource.document, false))
}

// ---- bookings and assignments ---------------------------------------------------------------------

fn record_of(row: &tokio_postgres::Row, column: usize) -> PgResult<BookingRecord> {
    let text: String = row.try_get(column)?;
    Ok(plan::booking_from_json(&text)?)
}

/// The bookings of these people that may matter to a decision whose earliest instant is
/// `from` (the decision's time, or the start of the interval it judges if earlier): every one
/// not cancelled and ending after `from` minus [`LIMIT_HISTORY_SECONDS`] (the live ones a
/// cascade undoes, and the history a limit counts), by person.
pub(crate) async fn bookings_of<C: GenericClient>(
    client: &C,
    tenant: TenantId,
    people: &[&str],
    from: Timestamp,
) -> PgResult<HashMap<String, Vec<BookingRecord>>> {
    if people.is_empty() {
        return Ok(HashMap::new());
    }
    let stmt = client
        .prepare_cached(
            "SELECT record FROM bookings WHERE tenant = $1 AND person = ANY($2) AND end_s > $3 \
             AND status <> 'cancelled' ORDER BY id",
        )
        .await?;
    let rows = client
        .query(
            &stmt,
            &[
                &tenant.key(),
                &people,
                &from.saturating_sub(LIMIT_HISTORY_SECONDS),
            ],
        )
        .await?;
    let mut out: HashMap<String, Vec<BookingRecord>> = HashMap::new();
    for row in &rows {
        let record = record_of(row, 0)?;
        out.entry(record.booking.person.clone())
            .or_default()
            .push(record);
    }
    Ok(out)
}

fn assignment_of(row: &tokio_postgres::Row) -> PgResult<Assignment> {
    Ok(Assignment {
        id: row.try_get(0)?,
        person: row.try_get(1)?,
        resource: row.try_get(2)?,
        since: row.try_get(3)?,
    })
}

/// The assignments of these people, by person.
pub(crate) async fn assignments_of<C: GenericClient>(
    client: &C,
    tenant: TenantId,
    people: &[&str],
) -> PgResult<HashMap<String, Vec<Assignment>>> {
    if people.is_empty() {
        return Ok(HashMap::new());
    }
    let stmt = client
        .prepare_cached(
            "SELECT id, person, resource, since FROM assignments WHERE tenant = $1 \
             AND person = ANY($2) ORDER BY id",
        )
        .await?;
    let rows = client.query(&stmt, &[&tenant.key(), &people]).await?;
    let mut out: HashMap<String, Vec<Assignment>> = HashMap::new();
    for row in &rows {
        let assignment = assignment_of(row)?;
        out.entry(assignment.person.clone())
            .or_default()
            .push(assignment);
    }
    Ok(out)
}

async fn insert_booking(
    tx: &Transaction<'_>,
    tenant: TenantId,
    record: &BookingRecord,
) -> PgResult<()> {
    let booking = &record.booking;
    let stmt = tx
        .prepare_cached(
            "INSERT INTO bookings (tenant, id, person, resource, start_s, end_s, status, flagged, record) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &tenant.key(),
            &booking.id,
            &booking.person,
            &booking.resource,
            &booking.start,
            &booking.end,
            &plan::status_name(&booking.status),
            &record.flag.is_some(),
            &plan::booking_json(record)?,
        ],
    )
    .await?;
    Ok(())
}

/// Rewrites bookings (status, flag, person, record), one statement for all of them.
async fn update_bookings(
    tx: &Transaction<'_>,
    tenant: TenantId,
    records: &[BookingRecord],
) -> PgResult<()> {
    if records.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(records.len());
    let mut people = Vec::with_capacity(records.len());
    let mut statuses = Vec::with_capacity(records.len());
    let mut flags = Vec::with_capacity(records.len());
    let mut texts = Vec::with_capacity(records.len());
    for record in records {
        ids.push(record.booking.id.as_str());
        people.push(record.booking.person.as_str());
        statuses.push(plan::status_name(&record.booking.status));
        flags.push(record.flag.is_some());
        texts.push(plan::booking_json(record)?);
    }
    let stmt = tx
        .prepare_cached(
            "UPDATE bookings AS b SET person = u.person, status = u.status, flagged = u.flagged, \
             record = u.record \
             FROM unnest($2::text[], $3::text[], $4::text[], $5::bool[], $6::text[]) \
             AS u(id, person, status, flagged, record) \
             WHERE b.tenant = $1 AND b.id = u.id",
        )
        .await?;
    tx.execute(
        &stmt,
        &[&tenant.key(), &ids, &people, &statuses, &flags, &texts],
    )
    .await?;
    Ok(())
}

/// Writes what a cascade decided: the bookings it changed, the assignments it released, and
/// the history of the former people in `anonymisations` anonymised (the cascade's own rows and
/// entries must already have been rewritten with [`Anonymisation::cascade`]).
pub(crate) async fn write_cascade(
    tx: &Transaction<'_>,
    tenant: TenantId,
    writes: &CascadeWrites,
    anonymisations: &[Anonymisation],
) -> PgResult<()> {
    update_bookings(tx, tenant, &writes.bookings).await?;
    if !writes.released.is_empty() {
        let ids: Vec<&str> = writes.released.iter().map(|a| a.id.as_str()).collect();
        let stmt = tx
            .prepare_cached("DELETE FROM assignments WHERE tenant = $1 AND id = ANY($2)")
            .await?;
        tx.execute(&stmt, &[&tenant.key(), &ids]).await?;
    }
    for anonymisation in anonymisations {
        anonymise_history(tx, tenant, anonymisation).await?;
    }
    Ok(())
}

/// Rewrites a former person's workplace history ([`Anonymisation`]): the provisioning log's
/// entries concerning them are scrubbed
/// ([`scrub_statement`](scim_store_core::admin::scrub_statement)), then every booking still
/// filed under them, and every feed entry about a booking or an assignment of theirs
/// (`detail.person`), is rewritten. Feed entries are not indexed by person, so this reads the
/// tenant's entries once, as an audit query by person does; only a deletion in a tenant that
/// anonymises pays it.
async fn anonymise_history(
    tx: &Transaction<'_>,
    tenant: TenantId,
    anonymisation: &Anonymisation,
) -> PgResult<()> {
    // First: the scrub finds the requests through the feed entries that name the person,
    // which the rewrite below renames.
    crate::admin::scrub(tx, tenant, &anonymisation.person).await?;
    let stmt = tx
        .prepare_cached("SELECT record FROM bookings WHERE tenant = $1 AND person = $2")
        .await?;
    let rows = tx
        .query(&stmt, &[&tenant.key(), &anonymisation.person])
        .await?;
    let mut records = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut record = record_of(row, 0)?;
        anonymisation.booking(&mut record);
        records.push(record);
    }
    update_bookings(tx, tenant, &records).await?;
    let kinds: Vec<i16> = [FeedSubject::Booking, FeedSubject::Assignment]
        .iter()
        .map(|s| i16::try_from(s.code()).unwrap_or(i16::MAX))
        .collect();
    let stmt = tx
        .prepare_cached(
            "SELECT seq, detail FROM events WHERE tenant = $1 AND kind = ANY($3) \
             AND detail ->> 'person' = $2",
        )
        .await?;
    let rows = tx
        .query(&stmt, &[&tenant.key(), &anonymisation.person, &kinds])
        .await?;
    let mut seqs: Vec<i64> = Vec::with_capacity(rows.len());
    let mut details: Vec<Value> = Vec::with_capacity(rows.len());
    for row in &rows {
        let mut detail: Value = row.try_get(1)?;
        if anonymisation.detail(&mut detail) {
            seqs.push(row.try_get(0)?);
            details.push(detail);
        }
    }
    if !seqs.is_empty() {
        let stmt = tx
            .prepare_cached(
                "UPDATE events AS e SET detail = u.detail \
                 FROM unnest($2::bigint[], $3::jsonb[]) AS u(seq, detail) \
                 WHERE e.tenant = $1 AND e.seq = u.seq",
            )
            .await?;
        tx.execute(&stmt, &[&tenant.key(), &seqs, &details]).await?;
    }
    Ok(())
}

// ---- places -------------------------------------------------------------------------------------

fn place_of(kind: PlaceKind, row: &tokio_postgres::Row) -> PgResult<PlaceRecord> {
    Ok(PlaceRecord {
        kind,
        id: row.try_get(0)?,
        document: row.try_get(1)?,
        version: sql_u64(row.try_get(2)?),
    })
}

/// Every catalog entry of the tenant (all kinds).
async fn all_places<C: GenericClient>(client: &C, tenant: TenantId) -> PgResult<Vec<PlaceRecord>> {
    let stmt = client
        .prepare_cached("SELECT kind, id, doc, version FROM places WHERE tenant = $1")
        .await?;
    let rows = client.query(&stmt, &[&tenant.key()]).await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in &rows {
        let kind: String = row.try_get(0)?;
        let kind = PlaceKind::from_name(&kind).ok_or_else(|| {
            StoreError::backend(format!("a stored place has the unknown kind {kind:?}"))
        })?;
        out.push(PlaceRecord {
            kind,
            id: row.try_get(1)?,
            document: row.try_get(2)?,
            version: sql_u64(row.try_get(3)?),
        });
    }
    Ok(out)
}

/// Locks the place row (`FOR UPDATE` or `FOR SHARE`) and returns its version, if it exists.
async fn lock_place(
    tx: &Transaction<'_>,
    tenant: TenantId,
    kind: PlaceKind,
    id: &str,
    exclusive: bool,
) -> PgResult<Option<u64>> {
    if has_nul(id) {
        return Ok(None);
    }
    let sql = if exclusive {
        "SELECT version FROM places WHERE tenant = $1 AND kind = $2 AND id = $3 FOR UPDATE"
    } else {
        "SELECT version FROM places WHERE tenant = $1 AND kind = $2 AND id = $3 FOR SHARE"
    };
    let stmt = tx.prepare_cached(sql).await?;
    let row = tx
        .query_opt(&stmt, &[&tenant.key(), &kind.as_str(), &id])
        .await?;
    match row {
        Some(row) => Ok(Some(sql_u64(row.try_get(0)?))),
        None => Ok(None),
    }
}

/// What still refers to a place, for a refusal to delete it: a child place, a live booking, an
/// assignment.
async fn place_references(
    tx: &Transaction<'_>,
    tenant: TenantId,
    kind: PlaceKind,
    id: &str,
) -> PgResult<Option<String>> {
    // The parent fields of the child kinds (workplace_policy::model).
    let (children, field): (&[&str], &str) = match kind {
        PlaceKind::Site => (&["floor", "neighbourhood", "resource"], "site"),
        PlaceKind::Floor => (&["neighbourhood", "resource"], "floor"),
        PlaceKind::Neighbourhood => (&["resource"], "neighbourhood"),
        PlaceKind::Resource => (&[], ""),
    };
    if !children.is_empty() {
        let stmt = tx
            .prepare_cached(
                "SELECT kind, id FROM places WHERE tenant = $1 AND kind = ANY($2) \
                 AND doc ->> $3 = $4 ORDER BY kind, id LIMIT 1",
            )
            .await?;
        if let Some(row) = tx
            .query_opt(&stmt, &[&tenant.key(), &children, &field, &id])
            .await?
        {
            let (child_kind, child): (String, String) = (row.try_get(0)?, row.try_get(1)?);
            return Ok(Some(format!(
                "{} {id:?} still contains {child_kind} {child:?}",
                kind.as_str()
            )));
        }
        return Ok(None);
    }
    // A live booking whose end has passed is history, not a hold on the resource.
    let now = document::now().unix_seconds;
    let stmt = tx
        .prepare_cached(&format!(
            "SELECT id FROM bookings WHERE tenant = $1 AND resource = $2 AND end_s > $3 \
             AND status IN {LIVE} ORDER BY id LIMIT 1"
        ))
        .await?;
    if let Some(row) = tx.query_opt(&stmt, &[&tenant.key(), &id, &now]).await? {
        let booking: String = row.try_get(0)?;
        return Ok(Some(format!(
            "resource {id:?} still has the live booking {booking:?}; cancel it first"
        )));
    }
    let stmt = tx
        .prepare_cached("SELECT id, person FROM assignments WHERE tenant = $1 AND resource = $2")
        .await?;
    if let Some(row) = tx.query_opt(&stmt, &[&tenant.key(), &id]).await? {
        let (assignment, person): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        return Ok(Some(format!(
            "resource {id:?} still has the assignment {assignment:?} (to {person:?}); release \
             it first"
        )));
    }
    Ok(None)
}

// ---- the feed -----------------------------------------------------------------------------------

const FEED_COLUMNS: &str = "seq, kind, id, op, version, at_ns, actor, request_id, detail";

fn feed_event(row: &tokio_postgres::Row) -> PgResult<FeedEvent> {
    let seq: i64 = row.try_get(0)?;
    let code: i16 = row.try_get(1)?;
    let subject = FeedSubject::from_code(i64::from(code)).ok_or_else(|| {
        StoreError::backend(format!("feed entry {seq} has the unknown kind {code}"))
    })?;
    let version: Option<i64> = row.try_get(4)?;
    Ok(FeedEvent {
        seq: sql_u64(seq),
        subject,
        id: row.try_get(2)?,
        op: row.try_get(3)?,
        version: version.map(sql_u64),
        at: from_nanos(row.try_get(5)?),
        actor: row.try_get(6)?,
        request_id: row.try_get(7)?,
        detail: row.try_get(8)?,
    })
}

/// A page size: at most [`MAX_PAGE`], and [`MAX_PAGE`] when not given (0).
fn page(limit: usize) -> i64 {
    let limit = if limit == 0 {
        MAX_PAGE
    } else {
        limit.min(MAX_PAGE)
    };
    i64::try_from(limit).unwrap_or(1_000)
}

/// Positional parameters for statements built at run time.
#[derive(Default)]
struct Params {
    values: Vec<Box<dyn tokio_postgres::types::ToSql + Sync + Send>>,
}

impl Params {
    /// Adds a value and returns its placeholder (`$n`).
    fn push(&mut self, value: impl tokio_postgres::types::ToSql + Sync + Send + 'static) -> String {
        self.values.push(Box::new(value));
        format!("${}", self.values.len())
    }

    fn refs(&self) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
        self.values
            .iter()
            .map(|v| v.as_ref() as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect()
    }
}

// ---- policies -----------------------------------------------------------------------------------

/// The people with future booked bookings, and the bookings that matter to re-checking them
/// (every one not cancelled and recent enough to count against a limit).
async fn future_holders<C: GenericClient>(
    client: &C,
    tenant: TenantId,
    now: Timestamp,
) -> PgResult<(Vec<Person>, Vec<BookingRecord>)> {
    let stmt = client
        .prepare_cached(
            "SELECT record FROM bookings WHERE tenant = $1 AND end_s > $2 AND status <> 'cancelled' \
             AND person IN (SELECT f.person FROM bookings f WHERE f.tenant = $1 \
                            AND f.status = 'booked' AND f.start_s > $3) \
             ORDER BY id",
        )
        .await?;
    let rows = client
        .query(
            &stmt,
            &[
                &tenant.key(),
                &now.saturating_sub(LIMIT_HISTORY_SECONDS),
                &now,
            ],
        )
        .await?;
    let mut records = Vec::with_capacity(rows.len());
    for row in &rows {
        records.push(record_of(row, 0)?);
    }
    let mut ids: Vec<&str> = records.iter().map(|r| r.booking.person.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let docs = people_docs(client, tenant, &ids).await?;
    let people = ids
        .iter()
        .filter_map(|id| docs.get(*id).map(|doc| plan::person(id, doc, false)))
        .collect();
    Ok((people, records))
}

/// Compiles a policy change: the configuration it would make (at the next version) and its
/// compiled policies, or a 400 naming the problem.
fn compile_change(
    user: &ResourceSchema,
    policies: PolicySet,
    settings: CascadeSettings,
    version: u64,
) -> Result<(WorkplaceConfig, CompiledPolicySet)> {
    let config = WorkplaceConfig {
        policies,
        settings,
        version,
    };
    let as_json = serde_json::to_value(&config.policies).map_err(StoreError::backend)?;
    check_no_nul(&as_json)?;
    let compiled = plan::compile(&config, user)?;
    Ok((config, compiled))
}

fn preview_of(
    old: &TenantContext,
    new: &CompiledPolicySet,
    people: &[Person],
    records: &[BookingRecord],
    now: Timestamp,
    settings: CascadeSettings,
) -> Preview {
    let bookings: Vec<Booking> = records.iter().map(|r| r.booking.clone()).collect();
    preview_policy_change(
        &old.policies,
        new,
        &old.catalog,
        people,
        &bookings,
        now,
        settings,
    )
}

// ---- the trait ----------------------------------------------------------------------------------

#[async_trait]
impl WorkplaceStore for PostgresStore {
    async fn workplace_config(&self, tenant: &TenantId) -> Result<WorkplaceConfig> {
        let tenant = *tenant;
        with_client!(self, |client| async move {
            let stmt = client
                .prepare_cached(
                    "SELECT s.config FROM tenants t \
                     LEFT JOIN workplace_state s ON s.tenant = t.id WHERE t.id = $1",
                )
                .await?;
            let row = client
                .query_opt(&stmt, &[&tenant.key()])
                .await?
                .ok_or_else(|| StoreError::TenantNotFound(tenant.to_string()))?;
            config_of(row.try_get(0)?)
        })
    }

    async fn preview_policies(
        &self,
        tenant: &TenantId,
        policies: &PolicySet,
        settings: CascadeSettings,
        now: Timestamp,
    ) -> Result<Preview> {
        let schemas = self.schemas_of(*tenant).await?;
        let cascades = self.cascades(&schemas);
        let (_, compiled) = compile_change(cascades.user, policies.clone(), settings, 0)?;
        let tenant = *tenant;
        in_snapshot!(self, |tx| async {
            let old = context(&tx, &cascades, tenant, StateLock::None).await?;
            let (people, records) = future_holders(&tx, tenant, now).await?;
            Ok::<_, Fail>(preview_of(
                &old, &compiled, &people, &records, now, settings,
            ))
        })
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
        let attempt = || {
            self.set_policies_once(
                tenant,
                policies.clone(),
                settings,
                expected_version,
                ctx,
                now,
            )
        };
        self.schemas.once_more_if_moved(*tenant, attempt).await
    }

    async fn put_place(
        &self,
        tenant: &TenantId,
        kind: PlaceKind,
        document: Value,
        expected_version: Option<u64>,
        ctx: &WriteContext,
    ) -> Result<(PlaceRecord, PlaceChange)> {
        let id = match document.get("id") {
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            _ => {
                return Err(StoreError::invalid_value(format!(
                    "a {} needs a non-empty string id",
                    kind.as_str()
                )));
            }
        };
        check_no_nul(&document)?;
        let document = plan::canonical_place(kind, &id, document)?;
        let tenant = *tenant;
        in_transaction!(self, window: &ctx.window, |tx| async {
            generation(&tx, tenant, StateLock::Update).await?;
            let current = lock_place(&tx, tenant, kind, &id, true).await?;
            // 0 is "must not exist yet".
            let actual = current.unwrap_or(0);
            if let Some(expected) = expected_version
                && expected != actual
            {
                return Err(StoreError::VersionMismatch { expected, actual }.into());
            }
            // The catalog must stay consistent with the entry in place.
            let mut records = all_places(&tx, tenant).await?;
            let existing = records.iter().find(|r| r.kind == kind && r.id == id);
            let change = plan::place_change(existing.map(|r| &r.document), &document);
            if let (Some(existing), PlaceChange::Unchanged) = (existing, change) {
                // Nothing changes: same version, nothing on the feed.
                return Ok((existing.clone(), change));
            }
            records.retain(|r| !(r.kind == kind && r.id == id));
            let version = current.map_or(1, |v| v + 1);
            let record = PlaceRecord {
                kind,
                id: id.clone(),
                document: document.clone(),
                version,
            };
            records.push(record.clone());
            plan::catalog(&records)?;
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO places (tenant, kind, id, doc, version) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (tenant, kind, id) DO UPDATE SET doc = excluded.doc, \
                     version = excluded.version",
                )
                .await?;
            tx.execute(
                &stmt,
                &[
                    &tenant.key(),
                    &kind.as_str(),
                    &id,
                    &document,
                    &sql_i64(version),
                ],
            )
            .await?;
            bump_generation(&tx, tenant).await?;
            let draft =
                plan::place_written(kind, &id, current.is_none(), version, document.clone());
            append_feed(
                &tx,
                tenant,
                &[draft],
                document::now(),
                &ctx.actor,
                ctx.request_id.as_deref(),
            )
            .await?;
            Ok::<_, Fail>((record, change))
        })
    }

    async fn delete_place(
        &self,
        tenant: &TenantId,
        kind: PlaceKind,
        id: &str,
        ctx: &WriteContext,
    ) -> Result<()> {
        let tenant = *tenant;
        in_transaction!(self, window: &ctx.window, |tx| async {
            generation(&tx, tenant, StateLock::Update).await?;
            let Some(version) = lock_place(&tx, tenant, kind, id, true).await? else {
                return Err(plan::not_found(kind.as_str(), id).into());
            };
            if let Some(why) = place_references(&tx, tenant, kind, id).await? {
                return Err(plan::conflict(why).into());
            }
            let stmt = tx
                .prepare_cached("DELETE FROM places WHERE tenant = $1 AND kind = $2 AND id = $3")
                .await?;
            tx.execute(&stmt, &[&tenant.key(), &kind.as_str(), &id])
                .await?;
            bump_generation(&tx, tenant).await?;
            let draft = plan::place_deleted(kind, id, version);
            append_feed(
                &tx,
                tenant,
                &[draft],
                document::now(),
                &ctx.actor,
                ctx.request_id.as_deref(),
            )
            .await
        })
    }

    async fn place(
        &self,
        tenant: &TenantId,
        kind: PlaceKind,
        id: &str,
    ) -> Result<Option<PlaceRecord>> {
        if has_nul(id) {
            return Ok(None);
        }
        let tenant = *tenant;
        with_client!(self, |client| async move {
            let stmt = client
                .prepare_cached(
                    "SELECT id, doc, version FROM places WHERE tenant = $1 AND kind = $2 AND id = $3",
                )
                .await?;
            match client
                .query_opt(&stmt, &[&tenant.key(), &kind.as_str(), &id])
                .await?
            {
                Some(row) => Ok(Some(place_of(kind, &row)?)),
                None => Ok(None),
            }
        })
    }

    async fn places(&self, tenant: &TenantId, kind: PlaceKind) -> Result<Vec<PlaceRecord>> {
        let tenant = *tenant;
        with_client!(self, |client| async move {
            let stmt = client
                .prepare_cached(
                    "SELECT id, doc, version FROM places WHERE tenant = $1 AND kind = $2 ORDER BY id",
                )
                .await?;
            let rows = client
                .query(&stmt, &[&tenant.key(), &kind.as_str()])
                .await?;
            rows.iter().map(|row| place_of(kind, row)).collect()
        })
    }

    async fn evaluate_booking(
        &self,
        tenant: &TenantId,
        person: &str,
        resource: &str,
        request: BookingRequest,
        now: Timestamp,
    ) -> Result<Decision> {
        let schemas = self.schemas_of(*tenant).await?;
        let cascades = self.cascades(&schemas);
        let tenant = *tenant;
        in_snapshot!(self, |tx| async {
            let context = context(&tx, &cascades, tenant, StateLock::None).await?;
            let who = load_person(&tx, tenant, person, false).await?;
            let target = context
                .catalog
                .resource(resource)
                .ok_or_else(|| plan::not_found("resource", resource))?;
            let existing = bookings_of(&tx, tenant, &[person], request.start.min(now)).await?;
            let existing: Vec<Booking> = existing
                .into_values()
                .flatten()
                .map(|r| r.booking)
                .collect();
            Ok::<_, Fail>(evaluate(
                &context.policies,
                &context.catalog,
                &who,
                target,
                request,
                now,
                &existing,
            ))
        })
    }

    async fn book(
        &self,
        tenant: &TenantId,
        request: NewBooking,
        ctx: &WriteContext,
        now: Timestamp,
    ) -> Result<BookingOutcome> {
        let schemas = self.schemas_of(*tenant).await?;
        let cascades = self.cascades(&schemas);
        let tenant = *tenant;
        let request = &request;
        in_transaction!(self, window: &ctx.window, |tx| async {
            // Lock order: state (shared), the resource's place, the person (module docs).
            let context = context(&tx, &cascades, tenant, StateLock::Share).await?;
            if lock_place(&tx, tenant, PlaceKind::Resource, &request.resource, true)
                .await?
                .is_none()
            {
                return Err(plan::not_found("resource", &request.resource).into());
            }
            let who = load_person(&tx, tenant, &request.person, true).await?;
            let existing: Vec<Booking> = bookings_of(
                &tx,
                tenant,
                &[request.person.as_str()],
                request.start.min(now),
            )
            .await?
            .into_values()
            .flatten()
            .map(|r| r.booking)
            .collect();
            let stmt = tx
                .prepare_cached(&format!(
                    "SELECT record FROM bookings WHERE tenant = $1 AND resource = $2 \
                     AND start_s < $3 AND end_s > $4 AND status IN {LIVE}"
                ))
                .await?;
            let rows = tx
                .query(
                    &stmt,
                    &[
                        &tenant.key(),
                        &request.resource,
                        &request.end,
                        &request.start,
                    ],
                )
                .await?;
            let mut on_resource = Vec::with_capacity(rows.len());
            for row in &rows {
                on_resource.push(record_of(row, 0)?.booking);
            }
            if let Err(outcome) = plan::decide_booking(
                &context.policies,
                &context.catalog,
                &who,
                request,
                now,
                &existing,
                &on_resource,
            )? {
                return Ok(outcome);
            }
            let record = plan::new_booking(plan::new_id("b")?, request.clone(), now);
            insert_booking(&tx, tenant, &record).await?;
            let draft = plan::booking_draft(&record, "booked", None);
            append_feed(
                &tx,
                tenant,
                &[draft],
                document::now(),
                &ctx.actor,
                ctx.request_id.as_deref(),
            )
            .await?;
            Ok::<_, Fail>(BookingOutcome::Done(Box::new(record)))
        })
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
        // The reason and the actor are also stored in the feed's jsonb detail, which cannot
        // hold U+0000.
        check_no_nul(&json!({"reason": reason, "by": &by}))?;
        let tenant = *tenant;
        let by = &by;
        in_transaction!(self, window: &ctx.window, |tx| async {
            let record = lock_booking(&tx, tenant, id).await?;
            let Some(updated) = plan::cancel(&record, by.clone(), reason, now)? else {
                return Ok::<_, Fail>(record);
            };
            update_bookings(&tx, tenant, std::slice::from_ref(&updated)).await?;
            let mut draft = plan::booking_draft(&updated, "cancelled", None);
            if let Some(detail) = draft.detail.as_object_mut() {
                detail.insert("reason".into(), Value::String(reason.to_owned()));
                detail.insert(
                    "by".into(),
                    serde_json::to_value(by).map_err(StoreError::backend)?,
                );
            }
            append_feed(
                &tx,
                tenant,
                &[draft],
                document::now(),
                &ctx.actor,
                ctx.request_id.as_deref(),
            )
            .await?;
            Ok(updated)
        })
    }

    async fn check_in(
        &self,
        tenant: &TenantId,
        id: &str,
        ctx: &WriteContext,
        now: Timestamp,
    ) -> Result<BookingOutcome> {
        let schemas = self.schemas_of(*tenant).await?;
        let cascades = self.cascades(&schemas);
        let tenant = *tenant;
        in_transaction!(self, window: &ctx.window, |tx| async {
            // The person first, then the booking: the order cascades lock them in.
            let Some(seen) = read_booking(&tx, tenant, id).await? else {
                return Err(plan::not_found("booking", id).into());
            };
            let who = match load_person(&tx, tenant, &seen.booking.person, true).await {
                Ok(who) => who,
                // Deleted (or anonymised): judged as former, which is refused.
                Err(Fail::Store(StoreError::WorkplaceNotFound { .. })) => {
                    plan::person(&seen.booking.person, &json!({}), true)
                }
                Err(other) => return Err(other),
            };
            let record = lock_booking(&tx, tenant, id).await?;
            if record.booking.person != seen.booking.person {
                // Anonymised in between: the person is former.
                return Ok(BookingOutcome::Refused(refused_former()));
            }
            let context = context(&tx, &cascades, tenant, StateLock::None).await?;
            let existing: Vec<Booking> = bookings_of(
                &tx,
                tenant,
                &[record.booking.person.as_str()],
                record.booking.start.min(now),
            )
            .await?
            .into_values()
            .flatten()
            .map(|r| r.booking)
            .collect();
            let outcome = plan::check_in(
                &context.policies,
                &context.catalog,
                &who,
                &record,
                now,
                &existing,
            )?;
            if let BookingOutcome::Done(updated) = &outcome {
                update_bookings(&tx, tenant, std::slice::from_ref(updated.as_ref())).await?;
                let draft = plan::booking_draft(updated, "checkedIn", None);
                append_feed(
                    &tx,
                    tenant,
                    &[draft],
                    document::now(),
                    &ctx.actor,
                    ctx.request_id.as_deref(),
                )
                .await?;
            }
            Ok::<_, Fail>(outcome)
        })
    }

    async fn booking(&self, tenant: &TenantId, id: &str) -> Result<Option<BookingRecord>> {
        let tenant = *tenant;
        with_client!(self, |client| read_booking(&client, tenant, id))
    }

    async fn bookings(
        &self,
        tenant: &TenantId,
        filter: &BookingFilter,
    ) -> Result<Vec<BookingRecord>> {
        let texts = [
            filter.person.as_deref(),
            filter.resource.as_deref(),
            filter.after_id.as_deref(),
        ];
        if texts.into_iter().flatten().any(has_nul) {
            return Ok(Vec::new());
        }
        let mut params = Params::default();
        let mut sql = format!(
            "SELECT record FROM bookings WHERE tenant = {}",
            params.push(tenant.key())
        );
        if let Some(person) = &filter.person {
            sql += &format!(" AND person = {}", params.push(person.clone()));
        }
        if let Some(resource) = &filter.resource {
            sql += &format!(" AND resource = {}", params.push(resource.clone()));
        }
        if let Some(status) = &filter.status {
            if !plan::STATUS_NAMES.contains(&status.as_str()) {
                return Err(StoreError::invalid_value(format!(
                    "status {status:?} is not one of {}",
                    plan::STATUS_NAMES.join(", ")
                )));
            }
            sql += &format!(" AND status = {}", params.push(status.clone()));
        }
        if let Some(after) = filter.ends_after {
            sql += &format!(" AND end_s > {}", params.push(after));
        }
        if let Some(before) = filter.starts_before {
            sql += &format!(" AND start_s < {}", params.push(before));
        }
        if filter.flagged_only {
            sql += " AND flagged";
        }
        if let Some(after) = &filter.after_id {
            sql += &format!(" AND id > {}", params.push(after.clone()));
        }
        sql += &format!(" ORDER BY id LIMIT {}", params.push(page(filter.limit)));
        with_client!(self, |client| async {
            let rows = client.query(sql.as_str(), &params.refs()).await?;
            rows.iter().map(|row| record_of(row, 0)).collect()
        })
    }

    async fn assign(
        &self,
        tenant: &TenantId,
        person: &str,
        resource: &str,
        ctx: &WriteContext,
        now: Timestamp,
    ) -> Result<Assignment> {
        let tenant = *tenant;
        in_transaction!(self, window: &ctx.window, |tx| async {
            // Lock order: state (shared), the place (shared: it cannot be deleted under us),
            // the person (a concurrent deactivation then sees the assignment).
            generation(&tx, tenant, StateLock::Share).await?;
            let place = lock_place(&tx, tenant, PlaceKind::Resource, resource, false).await?;
            let who = load_person(&tx, tenant, person, true).await?;
            if !who.is_active() {
                return Err(plan::conflict(format!(
                    "person {person:?} is {}: only an active person can be assigned a resource",
                    who.status
                ))
                .into());
            }
            if place.is_none() {
                return Err(plan::not_found("resource", resource).into());
            }
            let assignment = Assignment {
                id: plan::new_id("a")?,
                person: person.to_owned(),
                resource: resource.to_owned(),
                since: now,
            };
            let stmt = tx
                .prepare_cached(
                    "INSERT INTO assignments (tenant, id, person, resource, since) \
                     VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                )
                .await?;
            let inserted = tx
                .execute(
                    &stmt,
                    &[
                        &tenant.key(),
                        &assignment.id,
                        &assignment.person,
                        &assignment.resource,
                        &assignment.since,
                    ],
                )
                .await?;
            if inserted == 0 {
                let stmt = tx
                    .prepare_cached(
                        "SELECT person FROM assignments WHERE tenant = $1 AND resource = $2",
                    )
                    .await?;
                let holder: Option<String> =
                    match tx.query_opt(&stmt, &[&tenant.key(), &resource]).await? {
                        Some(row) => row.try_get(0)?,
                        None => None,
                    };
                return Err(plan::conflict(format!(
                    "resource {resource:?} is already assigned{}",
                    holder.map(|h| format!(" to {h:?}")).unwrap_or_default()
                ))
                .into());
            }
            let draft = plan::assigned(&assignment);
            append_feed(
                &tx,
                tenant,
                &[draft],
                document::now(),
                &ctx.actor,
                ctx.request_id.as_deref(),
            )
            .await?;
            Ok::<_, Fail>(assignment)
        })
    }

    async fn release_assignment(
        &self,
        tenant: &TenantId,
        id: &str,
        ctx: &WriteContext,
    ) -> Result<bool> {
        if has_nul(id) {
            return Ok(false);
        }
        let tenant = *tenant;
        in_transaction!(self, window: &ctx.window, |tx| async {
            let stmt = tx
                .prepare_cached(
                    "DELETE FROM assignments WHERE tenant = $1 AND id = $2 \
                     RETURNING id, person, resource, since",
                )
                .await?;
            let Some(row) = tx.query_opt(&stmt, &[&tenant.key(), &id]).await? else {
                return Ok(false);
            };
            let released = assignment_of(&row)?;
            let draft = plan::released(
                &released.id,
                &released.person,
                &released.resource,
                &ctx.actor,
            );
            append_feed(
                &tx,
                tenant,
                &[draft],
                document::now(),
                &ctx.actor,
                ctx.request_id.as_deref(),
            )
            .await?;
            Ok::<_, Fail>(true)
        })
    }

    async fn assignments(
        &self,
        tenant: &TenantId,
        person: Option<&str>,
    ) -> Result<Vec<Assignment>> {
        if person.is_some_and(has_nul) {
            return Ok(Vec::new());
        }
        let tenant = *tenant;
        with_client!(self, |client| async move {
            let rows = match person {
                Some(person) => {
                    let stmt = client
                        .prepare_cached(
                            "SELECT id, person, resource, since FROM assignments \
                             WHERE tenant = $1 AND person = $2 ORDER BY id",
                        )
                        .await?;
                    client.query(&stmt, &[&tenant.key(), &person]).await?
                }
                None => {
                    let stmt = client
                        .prepare_cached(
                            "SELECT id, person, resource, since FROM assignments \
                             WHERE tenant = $1 ORDER BY id",
                        )
                        .await?;
                    client.query(&stmt, &[&tenant.key()]).await?
                }
            };
            rows.iter().map(assignment_of).collect()
        })
    }

    async fn assignment(&self, tenant: &TenantId, id: &str) -> Result<Option<Assignment>> {
        // PostgreSQL text cannot hold NUL: no assignment has such an id.
        if has_nul(id) {
            return Ok(None);
        }
        let tenant = *tenant;
        with_client!(self, |client| async move {
            let stmt = client
                .prepare_cached(
                    "SELECT id, person, resource, since FROM assignments \
                     WHERE tenant = $1 AND id = $2",
                )
                .await?;
            client
                .query_opt(&stmt, &[&tenant.key(), &id])
                .await?
                .as_ref()
                .map(assignment_of)
                .transpose()
        })
    }

    async fn feed(
        &self,
        tenant: &TenantId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<FeedEvent>> {
        let tenant = *tenant;
        with_client!(self, |client| async move {
            let stmt = client
                .prepare_cached(&format!(
                    "SELECT {FEED_COLUMNS} FROM events WHERE tenant = $1 AND seq > $2 \
                     ORDER BY seq LIMIT $3"
                ))
                .await?;
            let rows = client
                .query(&stmt, &[&tenant.key(), &sql_i64(after_seq), &page(limit)])
                .await?;
            rows.iter().map(feed_event).collect()
        })
    }

    async fn audit(&self, tenant: &TenantId, filter: &AuditFilter) -> Result<Vec<FeedEvent>> {
        let texts = [
            filter.id.as_deref(),
            filter.person.as_deref(),
            filter.request_id.as_deref(),
        ];
        if texts.into_iter().flatten().any(has_nul) {
            return Ok(Vec::new());
        }
        let mut params = Params::default();
        let mut sql = format!(
            "SELECT {FEED_COLUMNS} FROM events WHERE tenant = {} AND seq > {}",
            params.push(tenant.key()),
            params.push(sql_i64(filter.after_seq))
        );
        if let Some(subject) = filter.subject {
            let code = i16::try_from(subject.code()).unwrap_or(i16::MAX);
            sql += &format!(" AND kind = {}", params.push(code));
        }
        if let Some(id) = &filter.id {
            sql += &format!(" AND id = {}", params.push(id.clone()));
        }
        if let Some(person) = &filter.person {
            let p = params.push(person.clone());
            let user = i16::try_from(FeedSubject::User.code()).unwrap_or(1);
            sql += &format!(
                " AND ((kind = {} AND id = {p}) OR detail ->> 'person' = {p})",
                params.push(user)
            );
        }
        if let Some(request_id) = &filter.request_id {
            sql += &format!(" AND request_id = {}", params.push(request_id.clone()));
        }
        if let Some(since) = filter.since {
            let ns = to_nanos(workplace_policy::time::to_datetime(since));
            sql += &format!(" AND at_ns >= {}", params.push(ns));
        }
        if let Some(until) = filter.until {
            let ns = to_nanos(workplace_policy::time::to_datetime(until));
            sql += &format!(" AND at_ns < {}", params.push(ns));
        }
        sql += &format!(" ORDER BY seq LIMIT {}", params.push(page(filter.limit)));
        with_client!(self, |client| async {
            let rows = client.query(sql.as_str(), &params.refs()).await?;
            rows.iter().map(feed_event).collect()
        })
    }

    async fn report(&self, tenant: &TenantId) -> Result<WorkplaceReport> {
        let tenant = *tenant;
        in_snapshot!(self, |tx| async {
            generation(&tx, tenant, StateLock::None).await?;
            // People: every User by `active` (absent counts as active, as workplace_policy
            // reads it); former people are those with a history but no User any more.
            let stmt = tx
                .prepare_cached(
                    "SELECT coalesce(sum(CASE WHEN active IS DISTINCT FROM false THEN 1 ELSE 0 END), 0)::bigint, \
                     coalesce(sum(CASE WHEN active = false THEN 1 ELSE 0 END), 0)::bigint \
                     FROM resources WHERE tenant = $1 AND kind = $2",
                )
                .await?;
            let row = tx
                .query_one(&stmt, &[&tenant.key(), &read::code(ResourceKind::User)])
                .await?;
            let (active, inactive): (i64, i64) = (row.try_get(0)?, row.try_get(1)?);
            let stmt = tx
                .prepare_cached(
                    "SELECT count(*) FROM (SELECT DISTINCT person FROM bookings WHERE tenant = $1) p \
                     WHERE NOT EXISTS (SELECT 1 FROM resources r WHERE r.tenant = $1 \
                                       AND r.kind = $2 AND r.id = p.person)",
                )
                .await?;
            let former: i64 = tx
                .query_one(&stmt, &[&tenant.key(), &read::code(ResourceKind::User)])
                .await?
                .try_get(0)?;
            let stmt = tx
                .prepare_cached(&format!(
                    "SELECT status, count(*), \
                     coalesce(sum(CASE WHEN flagged AND status IN {LIVE} THEN 1 ELSE 0 END), 0)::bigint \
                     FROM bookings WHERE tenant = $1 GROUP BY status"
                ))
                .await?;
            let rows = tx.query(&stmt, &[&tenant.key()]).await?;
            let mut bookings: BTreeMap<String, u64> = plan::STATUS_NAMES
                .iter()
                .map(|s| ((*s).to_owned(), 0))
                .collect();
            let mut flagged = 0;
            for row in &rows {
                let status: String = row.try_get(0)?;
                bookings.insert(status, sql_u64(row.try_get(1)?));
                flagged += sql_u64(row.try_get(2)?);
            }
            let count = |n: i64| usize::try_from(n).unwrap_or(0);
            Ok::<_, Fail>(WorkplaceReport {
                seats: SeatReport {
                    active: count(active),
                    inactive: count(inactive),
                    former: count(former),
                },
                bookings,
                flagged,
            })
        })
    }
}

/// A booking, unlocked.
async fn read_booking<C: GenericClient>(
    client: &C,
    tenant: TenantId,
    id: &str,
) -> PgResult<Option<BookingRecord>> {
    if has_nul(id) {
        return Ok(None);
    }
    let stmt = client
        .prepare_cached("SELECT record FROM bookings WHERE tenant = $1 AND id = $2")
        .await?;
    match client.query_opt(&stmt, &[&tenant.key(), &id]).await? {
        Some(row) => Ok(Some(record_of(&row, 0)?)),
        None => Ok(None),
    }
}

/// A booking, locked for update, or 404.
async fn lock_booking(tx: &Transaction<'_>, tenant: TenantId, id: &str) -> PgResult<BookingRecord> {
    if has_nul(id) {
        return Err(plan::not_found("booking", id).into());
    }
    let stmt = tx
        .prepare_cached("SELECT record FROM bookings WHERE tenant = $1 AND id = $2 FOR UPDATE")
        .await?;
    match tx.query_opt(&stmt, &[&tenant.key(), &id]).await? {
        Some(row) => record_of(&row, 0),
        None => Err(plan::not_found("booking", id).into()),
    }
}

/// The refusal of a check-in for a booking whose person is gone (deleted, their history
/// anonymised).
fn refused_former() -> Decision {
    Decision {
        allowed: false,
        reasons: vec![workplace_policy::Reason::PersonNotActive {
            status: workplace_policy::model::PersonStatus::Former,
        }],
    }
}

// ---- a tenant's schemas -----------------------------------------------------------------------

/// Replaces the tenant's schema documents, if the core's plan allows it against the tenant's
/// stored workplace policies ([`scim_store_core::schemas::plan_change`]), and moves the
/// version that every token authentication reads. The tenant row and its workplace state are
/// locked first, so that a policy change cannot slip in between the check and the write.
pub(crate) async fn set_tenant_schemas<C: GenericClient>(
    client: &C,
    tenant: TenantId,
    base: &scim_store_core::ResourceSchemas,
    documents: Vec<Value>,
) -> PgResult<TenantSchemas> {
    let key = tenant.key();
    client
        .query_opt("SELECT id FROM tenants WHERE id = $1 FOR UPDATE", &[&key])
        .await?
        .ok_or_else(|| StoreError::TenantNotFound(tenant.to_string()))?;
    let (version, stored) = crate::read::tenant_schemas(client, tenant).await?;
    let current = TenantSchemas::build(base, version, stored)?;
    let state = client
        .query_opt(
            "SELECT config FROM workplace_state WHERE tenant = $1 FOR UPDATE",
            &[&key],
        )
        .await?;
    let config = config_of(match state {
        Some(row) => row.try_get(0)?,
        None => None,
    })?;
    let schemas = scim_store_core::schemas::plan_change(base, &current, documents, Some(&config))?;
    if schemas.documents.is_empty() {
        client
            .execute("DELETE FROM tenant_schemas WHERE tenant = $1", &[&key])
            .await?;
    } else {
        let json = serde_json::to_string(&schemas.documents).map_err(StoreError::backend)?;
        client
            .execute(
                "INSERT INTO tenant_schemas (tenant, documents) VALUES ($1, $2) \
                 ON CONFLICT (tenant) DO UPDATE SET documents = excluded.documents",
                &[&key, &json],
            )
            .await?;
    }
    client
        .execute(
            "UPDATE tenants SET schemas_version = $2 WHERE id = $1",
            &[&key, &sql_i64(schemas.version)],
        )
        .await?;
    Ok(schemas)
}

impl PostgresStore {
    /// [`WorkplaceStore::set_policies`], once: `schemas_moved` if the tenant's schemas are
    /// not those the policies were compiled against.
    async fn set_policies_once(
        &self,
        tenant: &TenantId,
        policies: PolicySet,
        settings: CascadeSettings,
        expected_version: Option<u64>,
        ctx: &WriteContext,
        now: Timestamp,
    ) -> Result<(WorkplaceConfig, Preview)> {
        let schemas = self.schemas_of(*tenant).await?;
        let cascades = self.cascades(&schemas);
        // Invalid policies change nothing: compiled before the transaction opens.
        let (config, compiled) = compile_change(cascades.user, policies, settings, 0)?;
        let tenant = *tenant;
        let request_id = ctx.request_id.as_deref().unwrap_or_default();
        let (config, preview, context) = in_transaction!(self, window: &ctx.window, |tx| async {
            let old = context(&tx, &cascades, tenant, StateLock::Update).await?;
            // A schema change locks the same workplace state row: past that lock, the
            // version read here is the one this change commits under.
            let stored: i64 = tx
                .query_one(
                    "SELECT schemas_version FROM tenants WHERE id = $1",
                    &[&tenant.key()],
                )
                .await?
                .try_get(0)?;
            if sql_u64(stored) != cascades.schemas.version {
                return Err(scim_store_core::schemas::schemas_moved().into());
            }
            let current = old.config.version;
            if let Some(expected) = expected_version
                && expected != current
            {
                return Err(StoreError::VersionMismatch {
                    expected,
                    actual: current,
                }
                .into());
            }
            let mut config = config.clone();
            config.version = current + 1;
            let (people, records) = future_holders(&tx, tenant, now).await?;
            let preview = preview_of(&old, &compiled, &people, &records, now, settings);
            let effects = preview.clone().into_effects(request_id);
            let writes = plan::apply(&effects, records, Vec::new(), now);
            write_cascade(&tx, tenant, &writes, &[]).await?;
            let stored = serde_json::to_value(&config).map_err(StoreError::backend)?;
            let stmt = tx
                .prepare_cached(
                    "UPDATE workplace_state SET config = $2, generation = generation + 1 \
                     WHERE tenant = $1 RETURNING generation",
                )
                .await?;
            let generation: i64 = tx
                .query_one(&stmt, &[&tenant.key(), &stored])
                .await?
                .try_get(0)?;
            let changed = plan::policies_changed(config.version, &preview);
            // The change, by its author; then each effect, by the system, citing the request.
            let at = document::now();
            let request_id = ctx.request_id.as_deref();
            append_feed(&tx, tenant, &[changed], at, &ctx.actor, request_id).await?;
            append_feed(&tx, tenant, &writes.feed, at, SYSTEM_ACTOR, request_id).await?;
            // The context of the new generation, cached once this commits: the catalog did
            // not change.
            let context = TenantContext {
                generation: sql_u64(generation),
                schemas_version: cascades.schemas.version,
                config: config.clone(),
                policies: compiled.clone(),
                catalog: old.catalog.clone(),
            };
            Ok::<_, Fail>((config, preview, context))
        })?;
        self.contexts.put(tenant, Arc::new(context));
        Ok((config, preview))
    }
}
