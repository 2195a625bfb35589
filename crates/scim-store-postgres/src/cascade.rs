//! The lifecycle cascades a SCIM write runs (issue 7): before the write, whom it concerns who
//! holds something (a live booking not yet ended, or an assignment), with their document as it
//! was; after it, in the same transaction, what [`plan::person_cascade`] decides for them,
//! written with its feed entries right after the SCIM change's own event. The SCIM writes in
//! `write.rs` call in here; the rows read and written are `workplace.rs`'s, and the decisions
//! are [`workplace_policy`]'s, through [`plan`].
//!
//! Here: a [`Watch`] is started before the write and finished after it ([`Watch::finish`]);
//! [`append_with_cascade`] appends the write's event and then the cascade's entries.

use super::feed::{append_event, append_feed};
use super::read::{self, StoredRow};
use super::workplace::{Cascades, StateLock, assignments_of, bookings_of, context, write_cascade};
use crate::conn::PgResult;
use deadpool_postgres::{GenericClient, Transaction};
use scim_schema::DateTime;
use scim_store_core::document;
use scim_store_core::workplace::plan::{
    self, Anonymisation, CascadeWrites, FeedDraft, SYSTEM_ACTOR,
};
use scim_store_core::{ChangeOp, Members, ResourceKind, TenantId, WriteContext};
use serde_json::Value;
use std::collections::HashMap;
use workplace_policy::Timestamp;

/// The people a SCIM write may concern and who hold something, with their documents as they
/// were before the write: started before the write changes anything, finished after it (see
/// the [module documentation of `workplace`](scim_store_core::workplace)).
pub(crate) struct Watch {
    /// The write's own time.
    pub(crate) at: DateTime,
    people: Vec<Watched>,
}

struct Watched {
    rid: i64,
    id: String,
    /// `None`: the write creates them.
    before: Option<Value>,
}

/// Users among the rows selected as `r` who hold something at `$3`: a live booking that has not
/// ended, or an assignment. Both are index probes.
const HOLDS_SOMETHING: &str = "r.kind = 1 AND (\
     EXISTS (SELECT 1 FROM bookings b WHERE b.tenant = $1 AND b.person = r.id AND b.end_s > $3 \
             AND b.status IN ('booked', 'checkedIn')) \
     OR EXISTS (SELECT 1 FROM assignments a WHERE a.tenant = $1 AND a.person = r.id))";

impl Watch {
    /// A watch over nobody yet, for a write at `at`.
    pub(crate) fn new(at: DateTime) -> Watch {
        Watch {
            at,
            people: Vec::new(),
        }
    }

    fn now(&self) -> Timestamp {
        workplace_policy::time::from_datetime(self.at)
    }

    /// Watches the Users among `rids` who hold something (one indexed lookup); `created`: the
    /// write creates them (they had no document before).
    pub(crate) async fn users(
        &mut self,
        tx: &Transaction<'_>,
        tenant: TenantId,
        rids: &[i64],
        created: bool,
    ) -> PgResult<()> {
        let rids: Vec<i64> = rids
            .iter()
            .copied()
            .filter(|rid| !self.people.iter().any(|p| p.rid == *rid))
            .collect();
        if rids.is_empty() {
            return Ok(());
        }
        let stmt = tx
            .prepare_cached(&format!(
                "SELECT r.rid, r.id FROM resources r WHERE r.tenant = $1 AND r.rid = ANY($2) \
                 AND {HOLDS_SOMETHING}"
            ))
            .await?;
        let rows = tx
            .query(&stmt, &[&tenant.key(), &rids, &self.now()])
            .await?;
        self.adopt(tx, &rows, created).await
    }

    /// Watches User row `rid` across a write that deletes it, if the deletion may have anything
    /// to act on: an assignment, any booking, held or past, or feed entries about them (a
    /// released assignment leaves only those): a tenant that anonymises former people rewrites
    /// their history even when they hold nothing any more. Indexed lookups.
    pub(crate) async fn leaving(
        &mut self,
        tx: &Transaction<'_>,
        tenant: TenantId,
        rid: i64,
    ) -> PgResult<()> {
        if self.people.iter().any(|p| p.rid == rid) {
            return Ok(());
        }
        let stmt = tx
            .prepare_cached(
                "SELECT r.rid, r.id FROM resources r WHERE r.tenant = $1 AND r.rid = $2 \
                 AND r.kind = 1 AND (\
                 EXISTS (SELECT 1 FROM bookings b WHERE b.tenant = $1 AND b.person = r.id) \
                 OR EXISTS (SELECT 1 FROM assignments a WHERE a.tenant = $1 AND a.person = r.id) \
                 OR EXISTS (SELECT 1 FROM events e WHERE e.tenant = $1 \
                 AND e.detail ->> 'person' = r.id))",
            )
            .await?;
        let rows = tx.query(&stmt, &[&tenant.key(), &rid]).await?;
        self.adopt(tx, &rows, false).await
    }

    /// Watches the Users among `rids` whom a Group write adds as members, having locked their
    /// rows first (in one order, as SCIM writers lock a User): a booking of one of them,
    /// which locks their row too, either commits before the lookup sees it, or waits and then
    /// reads them in the group. (Removals and renames are covered by the Group row's own
    /// lock, which bookings share-lock: see `book`.)
    pub(crate) async fn joining(
        &mut self,
        tx: &Transaction<'_>,
        tenant: TenantId,
        rids: &[i64],
    ) -> PgResult<()> {
        if rids.is_empty() {
            return Ok(());
        }
        let stmt = tx
            .prepare_cached(
                "SELECT rid FROM resources WHERE tenant = $1 AND rid = ANY($2) AND kind = 1 \
                 ORDER BY rid FOR NO KEY UPDATE",
            )
            .await?;
        tx.query(&stmt, &[&tenant.key(), &rids]).await?;
        self.users(tx, tenant, rids, false).await
    }

    /// Watches the User members of group `group_rid` who hold something (one lookup).
    pub(crate) async fn members_of(
        &mut self,
        tx: &Transaction<'_>,
        tenant: TenantId,
        group_rid: i64,
    ) -> PgResult<()> {
        let stmt = tx
            .prepare_cached(&format!(
                "SELECT r.rid, r.id FROM members m JOIN resources r ON r.rid = m.member_rid \
                 WHERE m.group_rid = $2 AND r.tenant = $1 AND {HOLDS_SOMETHING}"
            ))
            .await?;
        let rows = tx
            .query(&stmt, &[&tenant.key(), &group_rid, &self.now()])
            .await?;
        let rows: Vec<_> = rows
            .into_iter()
            .filter(|row| {
                row.try_get::<_, i64>(0)
                    .is_ok_and(|rid| !self.people.iter().any(|p| p.rid == rid))
            })
            .collect();
        self.adopt(tx, &rows, false).await
    }

    async fn adopt(
        &mut self,
        tx: &Transaction<'_>,
        rows: &[tokio_postgres::Row],
        created: bool,
    ) -> PgResult<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut found = Vec::with_capacity(rows.len());
        for row in rows {
            found.push((row.try_get::<_, i64>(0)?, row.try_get::<_, String>(1)?));
        }
        let mut before = if created {
            HashMap::new()
        } else {
            let rids: Vec<i64> = found.iter().map(|(rid, _)| *rid).collect();
            read::load_many(tx, ResourceKind::User, &rids, Members::Include).await?
        };
        for (rid, id) in found {
            let before = before.remove(&rid).map(|r| r.document);
            self.people.push(Watched { rid, id, before });
        }
        Ok(())
    }

    /// After the write: judges each watched person as they now are (deleted ones as former),
    /// writes the cascade, and returns its feed entries, to append right after the write's own
    /// event. Costs nothing when nobody was watched.
    pub(crate) async fn finish(
        self,
        tx: &Transaction<'_>,
        cascades: &Cascades<'_>,
        tenant: TenantId,
        ctx: &WriteContext,
    ) -> PgResult<Vec<FeedDraft>> {
        if self.people.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now();
        let context = context(tx, cascades, tenant, StateLock::Share).await?;
        let rids: Vec<i64> = self.people.iter().map(|p| p.rid).collect();
        let after = read::load_many(tx, ResourceKind::User, &rids, Members::Include).await?;
        let ids: Vec<&str> = self.people.iter().map(|p| p.id.as_str()).collect();
        let mut bookings = bookings_of(tx, tenant, &ids, now).await?;
        let mut assignments = assignments_of(tx, tenant, &ids).await?;
        let request_id = ctx.request_id.as_deref().unwrap_or_default();
        let cascade = context.cascade(now);
        let mut writes = CascadeWrites::default();
        let mut anonymisations = Vec::new();
        for watched in &self.people {
            let mut theirs = plan::person_cascade(
                &cascade,
                &watched.id,
                watched.before.as_ref(),
                after.get(&watched.rid).map(|r| &r.document),
                bookings.remove(&watched.id).unwrap_or_default(),
                assignments.remove(&watched.id).unwrap_or_default(),
                request_id,
            );
            if let Some(anonymisation) = Anonymisation::of(&theirs, watched.before.as_ref()) {
                anonymisation.cascade(&mut theirs);
                anonymisations.push(anonymisation);
            }
            writes.extend(theirs);
        }
        write_cascade(tx, tenant, &writes, &anonymisations).await?;
        Ok(writes.feed)
    }
}

/// Appends a SCIM change's event and, right after it, the feed entries of the cascade the
/// change caused ([`Watch::finish`]: actor `system`, citing the change's request), all at the
/// write's own time.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn append_with_cascade(
    tx: &Transaction<'_>,
    wp: &Cascades<'_>,
    tenant: TenantId,
    kind: ResourceKind,
    id: &str,
    op: ChangeOp,
    version: u64,
    watch: Watch,
    ctx: &WriteContext,
) -> PgResult<()> {
    let at = watch.at;
    let drafts = watch.finish(tx, wp, tenant, ctx).await?;
    append_event(tx, tenant, kind, id, op, version, at, ctx).await?;
    append_feed(
        tx,
        tenant,
        &drafts,
        at,
        SYSTEM_ACTOR,
        ctx.request_id.as_deref(),
    )
    .await
}

/// Starts the watch of a write to `row`: for a User, the person; for a Group, the members it
/// adds or removes, and every member if it is renamed.
pub(crate) async fn watch_write(
    tx: &Transaction<'_>,
    tenant: TenantId,
    row: &StoredRow,
    renames: bool,
    added: &[i64],
    removed: &[i64],
) -> PgResult<Watch> {
    let mut watch = Watch::new(document::now());
    match row.kind {
        ResourceKind::User => watch.users(tx, tenant, &[row.rid], false).await?,
        ResourceKind::Group => {
            if renames {
                watch.members_of(tx, tenant, row.rid).await?;
            }
            watch.joining(tx, tenant, added).await?;
            watch.users(tx, tenant, removed, false).await?;
        }
    }
    Ok(watch)
}
