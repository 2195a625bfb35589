//! Versioned schema migrations, applied on open.
//!
//! The database's version is `PRAGMA user_version`; each migration moves it up by one, in the
//! writer's transaction, so an interrupted upgrade leaves the previous version intact. A
//! database written by a newer scimd (a version above [`LATEST`]) is refused rather than
//! misread. `PRAGMA application_id` marks the file as a scimd store.

use crate::conn::SqlResult;
use rusqlite::{Connection, OptionalExtension, params};
use scim_store_core::backend::sql::CursorKey;
use scim_store_core::document;
use scim_store_core::document::{now, to_nanos};
use scim_store_core::{ResourceKind, ResourceSchemas};
use scim_store_core::{Result, StoreError};

/// `PRAGMA application_id` of a scimd store ("SCIM" in ASCII).
pub(crate) const APPLICATION_ID: i32 = 0x5343_494d;

/// The schema version this build writes (`PRAGMA user_version`).
pub const LATEST: i64 = 11;

/// Version 1: tenants, tokens, resources with their hot columns, membership rows, events.
pub(crate) const V1: &str = r#"
CREATE TABLE tenants (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL UNIQUE,
    created_ns  INTEGER NOT NULL,
    last_seq    INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE tokens (
    id          TEXT PRIMARY KEY,
    tenant      INTEGER NOT NULL REFERENCES tenants(id),
    label       TEXT NOT NULL,
    scope       TEXT NOT NULL,
    digest      BLOB NOT NULL UNIQUE,
    created_ns  INTEGER NOT NULL,
    revoked_ns  INTEGER
) STRICT;
CREATE INDEX tokens_by_tenant ON tokens(tenant, created_ns);

-- rid: a never-reused surrogate key (AUTOINCREMENT), so membership rows and cursors can name a
-- resource by a small integer that can never come to mean another resource.
CREATE TABLE resources (
    rid                INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant             INTEGER NOT NULL REFERENCES tenants(id),
    kind               INTEGER NOT NULL,
    id                 TEXT NOT NULL,
    id_fold            TEXT NOT NULL,
    version            INTEGER NOT NULL,
    created_ns         INTEGER NOT NULL,
    modified_ns        INTEGER NOT NULL,
    user_name_fold     TEXT,
    external_id        TEXT,
    display_name_fold  TEXT,
    active             INTEGER,
    doc                TEXT NOT NULL
) STRICT;
-- Ids are unique per tenant across resource types, case-insensitively, so that a member
-- `value` (caseExact false, RFC 7643 section 4.2) names one resource.
CREATE UNIQUE INDEX resources_id ON resources(tenant, id_fold);
-- RFC 7643 section 4.1: userName unique per tenant, caseExact false (folded).
CREATE UNIQUE INDEX resources_user_name ON resources(tenant, kind, user_name_fold);
CREATE INDEX resources_kind ON resources(tenant, kind);
CREATE INDEX resources_external_id ON resources(tenant, kind, external_id);
CREATE INDEX resources_display_name ON resources(tenant, kind, display_name_fold);
CREATE INDEX resources_active ON resources(tenant, kind, active);
CREATE INDEX resources_modified ON resources(tenant, kind, modified_ns);

CREATE TABLE members (
    group_rid   INTEGER NOT NULL,
    member_rid  INTEGER NOT NULL,
    PRIMARY KEY (group_rid, member_rid)
) STRICT, WITHOUT ROWID;
CREATE INDEX members_by_member ON members(member_rid, group_rid);

CREATE TABLE events (
    tenant      INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    kind        INTEGER NOT NULL,
    id          TEXT NOT NULL,
    op          TEXT NOT NULL,
    version     INTEGER NOT NULL,
    at_ns       INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    request_id  TEXT,
    PRIMARY KEY (tenant, seq)
) STRICT, WITHOUT ROWID;
"#;

/// Version 2: side tables for multi-valued indexed values (`emails.value`) and for every
/// `uniqueness: server` attribute; filled from the existing documents.
pub(crate) const V2: &str = r#"
CREATE TABLE resource_values (
    tenant      INTEGER NOT NULL,
    kind        INTEGER NOT NULL,
    attr        TEXT NOT NULL,
    value_fold  TEXT NOT NULL,
    rid         INTEGER NOT NULL,
    PRIMARY KEY (tenant, kind, attr, value_fold, rid)
) STRICT, WITHOUT ROWID;
CREATE INDEX resource_values_by_rid ON resource_values(rid);

CREATE TABLE unique_values (
    tenant  INTEGER NOT NULL,
    kind    INTEGER NOT NULL,
    attr    TEXT NOT NULL,
    key     TEXT NOT NULL,
    rid     INTEGER NOT NULL,
    PRIMARY KEY (tenant, kind, attr, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX unique_values_by_rid ON unique_values(rid);
"#;

/// Version 3: how many resources of each type a tenant has, so that `totalResults` of an
/// unfiltered query (RFC 7644 section 3.4.2.4) is one row, not a count of the tenant. Triggers
/// keep it, in the transaction of every insert and delete, whatever the write path; the
/// migration counts what is there.
pub(crate) const V3: &str = r#"
CREATE TABLE resource_counts (
    tenant  INTEGER NOT NULL,
    kind    INTEGER NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (tenant, kind)
) STRICT, WITHOUT ROWID;
INSERT INTO resource_counts (tenant, kind, count)
    SELECT tenant, kind, count(*) FROM resources GROUP BY tenant, kind;
CREATE TRIGGER resources_counted_in AFTER INSERT ON resources BEGIN
    INSERT INTO resource_counts (tenant, kind, count) VALUES (NEW.tenant, NEW.kind, 1)
        ON CONFLICT (tenant, kind) DO UPDATE SET count = count + 1;
END;
CREATE TRIGGER resources_counted_out AFTER DELETE ON resources BEGIN
    UPDATE resource_counts SET count = count - 1 WHERE tenant = OLD.tenant AND kind = OLD.kind;
END;
"#;

/// Version 4: a trigram index of each resource's side-table values (`emails.value`), so that
/// `co` and `ew` with a needle of three characters or more search an index instead of every
/// value of the tenant. One row per resource (rowid = `rid`): its folded values joined by line
/// feeds. A match is only a candidate; the query checks the side-table rows exactly.
/// Contentless (the values are in `resource_values` already), `detail=none` (no positions: the
/// exact check makes them unnecessary, and the index is several times smaller and faster to
/// build), `case_sensitive 1` (the values are already folded with `fold_case`).
pub(crate) const V4: &str = r#"
CREATE VIRTUAL TABLE value_trigrams USING fts5(
    v, tokenize = 'trigram case_sensitive 1', content = '', contentless_delete = 1, detail = 'none'
);
-- Buffer 8 MiB of new entries in memory before writing a segment (1 MiB by default): a bulk
-- import then writes and merges far fewer segments.
INSERT INTO value_trigrams (value_trigrams, rank) VALUES ('hashsize', 8388608);
INSERT INTO value_trigrams (rowid, v)
    SELECT rid, group_concat(value_fold, char(10)) FROM resource_values GROUP BY rid;
"#;

/// Version 5: the workplace (issue 7). The tenant's policies and cascade settings with a
/// *generation* that every policy or catalog write bumps (so that compiled policies and the
/// catalog are cached per generation, see [`scim_store_core::workplace::plan::ContextCache`]); the
/// catalog; bookings with the columns they are looked up by next to the whole record; permanent
/// assignments (one per resource); a `detail` on feed entries (workplace events share the
/// tenant's sequence with SCIM changes; their `version` is 0 when they have none, since SCIM
/// versions start at 1); and the order a person joined their groups in (`joined_seq`, per
/// member, the first being their primary team), which `groups` follows.
pub(crate) const V5: &str = r#"
CREATE TABLE workplace_state (
    tenant      INTEGER PRIMARY KEY,
    config      TEXT NOT NULL,
    generation  INTEGER NOT NULL
) STRICT;

CREATE TABLE places (
    tenant   INTEGER NOT NULL,
    kind     TEXT NOT NULL,
    id       TEXT NOT NULL,
    doc      TEXT NOT NULL,
    version  INTEGER NOT NULL,
    PRIMARY KEY (tenant, kind, id)
) STRICT, WITHOUT ROWID;

CREATE TABLE bookings (
    tenant    INTEGER NOT NULL,
    id        TEXT NOT NULL,
    person    TEXT NOT NULL,
    resource  TEXT NOT NULL,
    start_s   INTEGER NOT NULL,
    end_s     INTEGER NOT NULL,
    status    TEXT NOT NULL,
    flagged   INTEGER NOT NULL DEFAULT 0,
    record    TEXT NOT NULL,
    PRIMARY KEY (tenant, id)
) STRICT;
-- A person's holdings (live and not ended: the one lookup a SCIM write about a person costs)
-- and their recent history (for the weekly limits).
CREATE INDEX bookings_by_person ON bookings(tenant, person, end_s);
-- A resource's bookings overlapping an interval (capacity): searched by end, so that only the
-- bookings ending after the interval starts are visited, not the resource's whole history.
CREATE INDEX bookings_by_resource ON bookings(tenant, resource, end_s);
-- Future booked bookings (the people a policy change concerns) and counts by status.
CREATE INDEX bookings_by_status ON bookings(tenant, status, start_s);

CREATE TABLE assignments (
    tenant    INTEGER NOT NULL,
    id        TEXT NOT NULL,
    person    TEXT NOT NULL,
    resource  TEXT NOT NULL,
    since     INTEGER NOT NULL,
    PRIMARY KEY (tenant, id),
    UNIQUE (tenant, resource)
) STRICT;
CREATE INDEX assignments_by_person ON assignments(tenant, person);

ALTER TABLE events ADD COLUMN detail TEXT;

-- Rows already there keep 0 and so their previous order (by group).
ALTER TABLE members ADD COLUMN joined_seq INTEGER NOT NULL DEFAULT 0;
DROP INDEX members_by_member;
CREATE INDEX members_by_member ON members(member_rid, joined_seq, group_rid);
"#;

/// Version 6: the feed entries about a person (`detail.person`: their bookings, assignments and
/// what was done to them), indexed, so that a deletion learns in one lookup whether a person
/// has workplace history to anonymise (a released assignment leaves no row but its entries),
/// and an audit query by person, or the anonymisation itself, finds the entries without
/// reading the tenant's feed. The expression is the one those queries use, verbatim.
pub(crate) const V6: &str = r#"
CREATE INDEX events_by_person ON events(tenant, detail ->> '$.person');
"#;

/// Version 8: the store's secrets, one row each. `cursor` is the key cursors (RFC 9865) are
/// signed with ([`CursorKey`]): 32 bytes from the operating system's CSPRNG, drawn in Rust when
/// the migration runs (see [`insert_cursor_key`]).
/// `IF NOT EXISTS` and insert-if-absent: a key already there (a version marker moved back by
/// hand) is kept, never replaced.
pub(crate) const V8: &str = r#"
CREATE TABLE IF NOT EXISTS store_keys (
    name        TEXT PRIMARY KEY,
    key         BLOB NOT NULL,
    created_ns  INTEGER NOT NULL
) STRICT;
"#;

/// Version 9: each tenant's own schema documents (issue 17), and the version every token
/// authentication reads alongside the tenant, so that every process serves a change from its
/// next request.
/// (The column is added by [`add_schemas_version`]: SQLite has no `ADD COLUMN IF NOT EXISTS`,
/// and a version marker moved back by hand must not fail the upgrade.)
pub(crate) const V9: &str = r#"
CREATE TABLE IF NOT EXISTS tenant_schemas (
    tenant      INTEGER PRIMARY KEY,
    documents   TEXT NOT NULL
) STRICT;
"#;

/// Version 11: server-wide operator tokens, and the feed by request (what a logged request
/// caused: `GET /admin/v1/requests/{id}` and the person narrowing read it). The provisioning
/// log itself is in its own file ([`LOG_TABLES`]).
pub(crate) const V11: &str = r#"
CREATE TABLE IF NOT EXISTS operator_tokens (
    id            TEXT PRIMARY KEY,
    label         TEXT NOT NULL,
    digest        BLOB NOT NULL UNIQUE,
    created_ns    INTEGER NOT NULL,
    revoked_ns    INTEGER,
    last_used_ns  INTEGER
) STRICT;

CREATE INDEX IF NOT EXISTS events_by_request ON events(tenant, request_id)
    WHERE request_id IS NOT NULL;
"#;

/// The provisioning log (issue 18, `scim_store_core::admin`), in the database attached as
/// `log` (`scimd.db-log`, see `conn::attach_log`), created when the store opens: the log is
/// disposable (delete the file and it starts empty), so it has no versions of its own.
///
/// The log is kept in segments (`scim_store_core::admin::segment`): a row per tenant and batch
/// of up to 512 entries, with its time range (indexed with the tenant: listings read segments
/// newest first), a summary of its statuses, methods, tokens and errors and a Bloom filter of
/// its request and resource ids (what stands in for an index per narrowing), and the entries
/// last (LZ4-compressed JSON), so that reading a header never reads their overflow pages. One
/// sequential row per batch, where a row per request with an index per narrowing cost the
/// writer a third of a core at 20,000 requests a second. Each tenant's size, and the
/// per-minute request counters behind sync health, beside it. No foreign key to `tenants` (in
/// the other file): a batch checks its tenants once (an entry of a tenant deleted meanwhile is
/// dropped), and a tenant's deletion removes its rows.
pub(crate) const LOG_TABLES: &str = r#"
CREATE TABLE IF NOT EXISTS log.request_segments (
    seq       INTEGER PRIMARY KEY,
    tenant    INTEGER NOT NULL,
    first_ns  INTEGER NOT NULL,
    last_ns   INTEGER NOT NULL,
    entries   INTEGER NOT NULL,
    bytes     INTEGER NOT NULL,
    summary   TEXT NOT NULL,
    bloom     BLOB NOT NULL,
    payload   BLOB NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS log.request_segments_by_time ON request_segments(tenant, last_ns);

CREATE TABLE IF NOT EXISTS log.request_log_usage (
    tenant   INTEGER PRIMARY KEY,
    bytes    INTEGER NOT NULL,
    entries  INTEGER NOT NULL
) STRICT;

CREATE TABLE IF NOT EXISTS log.request_activity (
    tenant    INTEGER NOT NULL,
    token_id  TEXT NOT NULL,
    minute    INTEGER NOT NULL,
    requests  INTEGER NOT NULL,
    errors    INTEGER NOT NULL,
    PRIMARY KEY (tenant, token_id, minute)
) STRICT, WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS log.request_activity_by_minute ON request_activity(minute);
"#;

/// Creates the provisioning log's tables in the attached `log` database, unless they are there.
pub(crate) fn create_log_tables(conn: &Connection) -> Result<()> {
    conn.execute_batch(LOG_TABLES).sql()
}

/// The name of the cursor key's row in `store_keys`.
const CURSOR_KEY: &str = "cursor";

/// Brings the database up to [`LATEST`].
pub(crate) fn migrate(conn: &mut Connection, schemas: &ResourceSchemas) -> Result<()> {
    let app_id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .sql()?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .sql()?;
    if app_id != 0 && app_id != APPLICATION_ID {
        return Err(StoreError::backend(format!(
            "this SQLite file belongs to another application (application_id {app_id:#x})"
        )));
    }
    if version > LATEST {
        return Err(StoreError::backend(format!(
            "the database is at schema version {version}, newer than this build's {LATEST}: \
             upgrade scimd"
        )));
    }
    for target in (version + 1)..=LATEST {
        let tx = conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .sql()?;
        match target {
            1 => tx.execute_batch(V1).sql()?,
            2 => {
                tx.execute_batch(V2).sql()?;
                backfill_v2(&tx, schemas)?;
            }
            3 => tx.execute_batch(V3).sql()?,
            4 => tx.execute_batch(V4).sql()?,
            5 => tx.execute_batch(V5).sql()?,
            6 => tx.execute_batch(V6).sql()?,
            7 => hash_clear_passwords(&tx)?,
            8 => {
                tx.execute_batch(V8).sql()?;
                insert_cursor_key(&tx)?;
            }
            9 => {
                tx.execute_batch(V9).sql()?;
                add_schemas_version(&tx)?;
            }
            // Version 10: when each token last authenticated a request (issue 18).
            10 => add_column(&tx, "tokens", "last_used_ns", "INTEGER")?,
            11 => tx.execute_batch(V11).sql()?,
            _ => unreachable_version(target)?,
        }
        tx.pragma_update(None, "application_id", APPLICATION_ID)
            .sql()?;
        tx.pragma_update(None, "user_version", target).sql()?;
        tx.commit().sql()?;
        if target == 7 {
            // Version 7 rewrote clear-text passwords: copy the new pages into the database
            // file and empty the WAL, so that no older frame holding the clear text survives.
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
                .sql()?;
        }
    }
    Ok(())
}

/// Adds `tenants.schemas_version` (version 9) unless it is there.
fn add_schemas_version(conn: &Connection) -> Result<()> {
    add_column(
        conn,
        "tenants",
        "schemas_version",
        "INTEGER NOT NULL DEFAULT 0",
    )
}

/// `ALTER TABLE table ADD COLUMN column definition` unless the column is there: SQLite has no
/// `ADD COLUMN IF NOT EXISTS`, and a version marker moved back by hand must not fail an
/// upgrade. The names are this module's constants, never input.
fn add_column(conn: &Connection, table: &str, column: &str, definition: &str) -> Result<()> {
    let present: bool = conn
        .query_row(
            "SELECT EXISTS (SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2)",
            [table, column],
            |r| r.get(0),
        )
        .sql()?;
    if !present {
        conn.execute_batch(&format!(
            "ALTER TABLE {table} ADD COLUMN {column} {definition}"
        ))
        .sql()?;
    }
    Ok(())
}

/// Stores a fresh cursor key unless there is one.
fn insert_cursor_key(conn: &Connection) -> Result<()> {
    conn.execute(
        "INSERT INTO store_keys (name, key, created_ns) VALUES (?1, ?2, ?3) \
         ON CONFLICT (name) DO NOTHING",
        params![
            CURSOR_KEY,
            CursorKey::generate()?.as_slice(),
            to_nanos(now())
        ],
    )
    .sql()?;
    Ok(())
}

/// The key the store signs its cursors with, kept in `store_keys` (version 8). An operator who
/// deleted the row (to make every outstanding cursor invalid) gets a fresh key here, at the
/// next start.
pub(crate) fn cursor_key(conn: &Connection) -> Result<CursorKey> {
    let read = || {
        conn.query_row(
            "SELECT key FROM store_keys WHERE name = ?1",
            [CURSOR_KEY],
            |r| r.get::<_, Vec<u8>>(0),
        )
        .optional()
        .sql()
    };
    let key = match read()? {
        Some(key) => key,
        None => {
            insert_cursor_key(conn)?;
            read()?.ok_or_else(|| StoreError::backend("the cursor key could not be stored"))?
        }
    };
    CursorKey::from_bytes(&key)
}

/// Version 7: the passwords an older scimd stored in clear text (PATCH dialect spellings it did
/// not hash) are replaced by their argon2id hashes. Only Users holding a password that is not a
/// hash are read, so on a database without any this is one indexed scan.
fn hash_clear_passwords(conn: &Connection) -> Result<()> {
    let mut select = conn
        .prepare(
            "SELECT rid, doc FROM resources WHERE kind = ?1 \
         AND json_extract(doc, '$.password') IS NOT NULL \
         AND (json_type(doc, '$.password') <> 'text' \
              OR substr(json_extract(doc, '$.password'), 1, 10) <> '$argon2id$')",
        )
        .sql()?;
    let rows: Vec<(i64, String)> = select
        .query_map([ResourceKind::User.code()], |r| Ok((r.get(0)?, r.get(1)?)))
        .sql()?
        .collect::<std::result::Result<_, _>>()
        .sql()?;
    if rows.is_empty() {
        return Ok(());
    }
    // The old cell must not stay readable in the page's free space: zero what is overwritten.
    conn.pragma_update(None, "secure_delete", true).sql()?;
    let mut update = conn
        .prepare("UPDATE resources SET doc = ?1 WHERE rid = ?2")
        .sql()?;
    for (rid, doc) in rows {
        let mut value: serde_json::Value = serde_json::from_str(&doc)
            .map_err(|e| StoreError::backend(format!("resource {rid} holds invalid JSON: {e}")))?;
        if document::hash_stored_password(&mut value)? {
            update.execute(params![value.to_string(), rid]).sql()?;
        }
    }
    drop(update);
    conn.pragma_update(None, "secure_delete", false).sql()?;
    Ok(())
}

fn unreachable_version(target: i64) -> Result<()> {
    Err(StoreError::backend(format!(
        "no migration to schema version {target}"
    )))
}

/// Computes the version 2 side tables of every stored resource.
fn backfill_v2(conn: &Connection, schemas: &ResourceSchemas) -> Result<()> {
    let mut select = conn
        .prepare("SELECT rid, tenant, kind, doc FROM resources")
        .sql()?;
    let mut rows = select.query([]).sql()?;
    let mut insert_value = conn.prepare(
        "INSERT OR IGNORE INTO resource_values (tenant, kind, attr, value_fold, rid) VALUES (?1, ?2, ?3, ?4, ?5)",
    ).sql()?;
    let mut insert_unique = conn.prepare(
        "INSERT OR IGNORE INTO unique_values (tenant, kind, attr, key, rid) VALUES (?1, ?2, ?3, ?4, ?5)",
    ).sql()?;
    while let Some(row) = rows.next().sql()? {
        let (rid, tenant, code, doc): (i64, i64, i64, String) = (
            row.get(0).sql()?,
            row.get(1).sql()?,
            row.get(2).sql()?,
            row.get(3).sql()?,
        );
        let Some(kind) = ResourceKind::from_code(code) else {
            continue;
        };
        let value: serde_json::Value = serde_json::from_str(&doc)
            .map_err(|e| StoreError::backend(format!("resource {rid} holds invalid JSON: {e}")))?;
        let prepared = document::prepare(kind, schemas.get(kind), value)?;
        for (attr, fold) in &prepared.index.values {
            insert_value
                .execute(params![tenant, code, attr, fold, rid])
                .sql()?;
        }
        for unique in &prepared.index.unique {
            insert_unique
                .execute(params![tenant, code, unique.attribute, unique.key, rid])
                .sql()?;
        }
    }
    Ok(())
}
