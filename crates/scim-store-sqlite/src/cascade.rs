//! The lifecycle cascades a SCIM write runs (issue 7): before the write, whom it concerns who
//! holds something (a live booking not yet ended, or an assignment), with their document as it
//! was; after it, in the same transaction, what [`plan::person_cascade`] decides for them,
//! written with its feed entries right after the SCIM change's own event. The SCIM writes in
//! `write.rs` call in here; the rows read and written are `workplace.rs`'s, and the decisions
//! are [`workplace_policy`]'s, through [`plan`].
//!
//! Here: a SCIM write about people (a User written or deleted, a Group whose members or name change)
//! first asks, per person concerned, one indexed question: do they hold anything (a live
//! booking not yet ended, or a permanent assignment)? Only for those who do, it keeps their
//! document as it was ([`Watched`]), makes its own change, and then, in the same savepoint,
//! hands before and after to [`plan::person_cascade`] and writes what it decided, with one feed
//! entry per effect right after the SCIM change's own event ([`run`]). Nothing here decides:
//! the decisions are [`workplace_policy`]'s, through [`plan`].

use super::read;
use super::workplace::{
    PERSON_BOOKINGS, PERSON_ENTRIES, RESOURCE_BOOKINGS, WorkplaceEnv, load_assignments,
    person_bookings, write_cascade,
};
use crate::conn::SqlResult;
use rusqlite::{Connection, OptionalExtension, params};
use scim_schema::DateTime;
use scim_store_core::Result;
use scim_store_core::workplace::plan::{self, Anonymisation};
use scim_store_core::{Members, ResourceKind, TenantId, WriteContext};
use serde_json::Value;
use workplace_policy::{LIMIT_HISTORY_SECONDS, Timestamp};

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

// ---- people -----------------------------------------------------------------------------------

/// A User's served document by row.
fn user_document_by_rid(conn: &Connection, rid: i64) -> Result<Option<Value>> {
    match read::row_by_rid(conn, rid)? {
        Some(row) if row.kind == ResourceKind::User => Ok(Some(
            read::resource_of(conn, row, Members::Exclude)?.document,
        )),
        _ => Ok(None),
    }
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
        let bookings = person_bookings(conn, tenant, &person.id, now - LIMIT_HISTORY_SECONDS)?;
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
