-- The version 1 schema, frozen, as a database written by the first release has it.

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
