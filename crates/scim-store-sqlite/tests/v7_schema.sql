-- The version 7 schema, frozen, with a few rows, as scimd 0.1.0 (3dbe296, the last release
-- before cursors were signed) wrote them: tenants `acme` (three Users, one Group) and `other`
-- (one User), created over HTTP. Produced with `sqlite3 .schema` and `.dump`, less what SQLite
-- makes itself (sqlite_sequence, the full-text index's shadow tables, the counters the triggers
-- keep). The trigram index is filled as migration 4 fills it.
--
-- That server issued, for `GET /t/acme/scim/v2/Users?cursor&count=1&sortBy=userName`, the
-- cursor 5b2237383939613164396338643961636461222c2261646f65222c335d
-- (hex of ["7899a1d9c8d9acda","adoe",3]); tests/sqlite.rs checks it is refused after the upgrade.

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
CREATE UNIQUE INDEX resources_id ON resources(tenant, id_fold);
CREATE UNIQUE INDEX resources_user_name ON resources(tenant, kind, user_name_fold);
CREATE INDEX resources_kind ON resources(tenant, kind);
CREATE INDEX resources_external_id ON resources(tenant, kind, external_id);
CREATE INDEX resources_display_name ON resources(tenant, kind, display_name_fold);
CREATE INDEX resources_active ON resources(tenant, kind, active);
CREATE INDEX resources_modified ON resources(tenant, kind, modified_ns);
CREATE TABLE members (
    group_rid   INTEGER NOT NULL,
    member_rid  INTEGER NOT NULL, joined_seq INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (group_rid, member_rid)
) STRICT, WITHOUT ROWID;
CREATE TABLE events (
    tenant      INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    kind        INTEGER NOT NULL,
    id          TEXT NOT NULL,
    op          TEXT NOT NULL,
    version     INTEGER NOT NULL,
    at_ns       INTEGER NOT NULL,
    actor       TEXT NOT NULL,
    request_id  TEXT, detail TEXT,
    PRIMARY KEY (tenant, seq)
) STRICT, WITHOUT ROWID;
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
CREATE TABLE resource_counts (
    tenant  INTEGER NOT NULL,
    kind    INTEGER NOT NULL,
    count   INTEGER NOT NULL,
    PRIMARY KEY (tenant, kind)
) STRICT, WITHOUT ROWID;
CREATE TRIGGER resources_counted_in AFTER INSERT ON resources BEGIN
    INSERT INTO resource_counts (tenant, kind, count) VALUES (NEW.tenant, NEW.kind, 1)
        ON CONFLICT (tenant, kind) DO UPDATE SET count = count + 1;
END;
CREATE TRIGGER resources_counted_out AFTER DELETE ON resources BEGIN
    UPDATE resource_counts SET count = count - 1 WHERE tenant = OLD.tenant AND kind = OLD.kind;
END;
CREATE VIRTUAL TABLE value_trigrams USING fts5(
    v, tokenize = 'trigram case_sensitive 1', content = '', contentless_delete = 1, detail = 'none'
);
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
CREATE INDEX bookings_by_person ON bookings(tenant, person, end_s);
CREATE INDEX bookings_by_resource ON bookings(tenant, resource, end_s);
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
CREATE INDEX members_by_member ON members(member_rid, joined_seq, group_rid);
CREATE INDEX events_by_person ON events(tenant, detail ->> '$.person');

INSERT INTO value_trigrams (value_trigrams, rank) VALUES ('hashsize', 8388608);

INSERT INTO tenants VALUES(1,'acme',1796625792341000000,4);
INSERT INTO tenants VALUES(2,'other',1796625792357000000,1);
INSERT INTO tokens VALUES('d02d9ad36787a20376e53493ea7f7a1a',1,'initial','scim',X'bb2e4cf70ca4eddc045c3046f28683e23cf5e4eb8f1e49e6e5be38b7759189e3',1796625792341000000,NULL);
INSERT INTO tokens VALUES('64cdc50587a575c5120bed58e4713f83',2,'initial','scim',X'5240d842f856757b5e46921e76cbbc2e9e896dfaf9a6da151a34122aa74124df',1796625792358000000,NULL);
INSERT INTO resources VALUES(1,1,1,'01a24f3e-1680-77b3-bdf4-d5160d1d8549','01a24f3e-1680-77b3-bdf4-d5160d1d8549',1,1796625798784000000,1796625798784000000,'bjensen',NULL,'bjensen display',NULL,'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"01a24f3e-1680-77b3-bdf4-d5160d1d8549","userName":"bjensen","displayName":"bjensen display","emails":[{"value":"bjensen@example.com","primary":true}],"meta":{"resourceType":"User","created":"2026-12-07T06:43:18.784Z","lastModified":"2026-12-07T06:43:18.784Z","version":"W/\"1\""}}');
INSERT INTO resources VALUES(2,1,1,'01a24f3e-16a7-70ee-8648-30a94839f193','01a24f3e-16a7-70ee-8648-30a94839f193',1,1796625798823000000,1796625798823000000,'jsmith',NULL,'jsmith display',NULL,'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"01a24f3e-16a7-70ee-8648-30a94839f193","userName":"jsmith","displayName":"jsmith display","emails":[{"value":"jsmith@example.com","primary":true}],"meta":{"resourceType":"User","created":"2026-12-07T06:43:18.823Z","lastModified":"2026-12-07T06:43:18.823Z","version":"W/\"1\""}}');
INSERT INTO resources VALUES(3,1,1,'01a24f3e-16b7-71b2-923d-63ff4d80a5f8','01a24f3e-16b7-71b2-923d-63ff4d80a5f8',1,1796625798839000000,1796625798839000000,'adoe',NULL,'adoe display',NULL,'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"01a24f3e-16b7-71b2-923d-63ff4d80a5f8","userName":"adoe","displayName":"adoe display","emails":[{"value":"adoe@example.com","primary":true}],"meta":{"resourceType":"User","created":"2026-12-07T06:43:18.839Z","lastModified":"2026-12-07T06:43:18.839Z","version":"W/\"1\""}}');
INSERT INTO resources VALUES(4,2,1,'01a24f3e-16c3-748f-a3eb-ccda345b68aa','01a24f3e-16c3-748f-a3eb-ccda345b68aa',1,1796625798851000000,1796625798851000000,'zed',NULL,NULL,NULL,'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"01a24f3e-16c3-748f-a3eb-ccda345b68aa","userName":"zed","meta":{"resourceType":"User","created":"2026-12-07T06:43:18.851Z","lastModified":"2026-12-07T06:43:18.851Z","version":"W/\"1\""}}');
INSERT INTO resources VALUES(5,1,2,'01a24f3e-173c-71f2-835a-f9a902b6aa1a','01a24f3e-173c-71f2-835a-f9a902b6aa1a',1,1796625798972000000,1796625798972000000,NULL,NULL,'staff',NULL,'{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"id":"01a24f3e-173c-71f2-835a-f9a902b6aa1a","displayName":"Staff","meta":{"resourceType":"Group","created":"2026-12-07T06:43:18.972Z","lastModified":"2026-12-07T06:43:18.972Z","version":"W/\"1\""}}');
INSERT INTO members VALUES(5,1,1);
INSERT INTO events VALUES(1,1,1,'01a24f3e-1680-77b3-bdf4-d5160d1d8549','created',1,1796625798784000000,'initial','b29db23d421c-0',NULL);
INSERT INTO events VALUES(1,2,1,'01a24f3e-16a7-70ee-8648-30a94839f193','created',1,1796625798823000000,'initial','b29db23d421c-1',NULL);
INSERT INTO events VALUES(1,3,1,'01a24f3e-16b7-71b2-923d-63ff4d80a5f8','created',1,1796625798839000000,'initial','b29db23d421c-2',NULL);
INSERT INTO events VALUES(1,4,2,'01a24f3e-173c-71f2-835a-f9a902b6aa1a','created',1,1796625798972000000,'initial','b29db23d421c-4',NULL);
INSERT INTO events VALUES(2,1,1,'01a24f3e-16c3-748f-a3eb-ccda345b68aa','created',1,1796625798851000000,'initial','b29db23d421c-3',NULL);
INSERT INTO resource_values VALUES(1,1,'emails.value','bjensen@example.com',1);
INSERT INTO resource_values VALUES(1,1,'emails.value','jsmith@example.com',2);
INSERT INTO resource_values VALUES(1,1,'emails.value','adoe@example.com',3);

INSERT INTO value_trigrams (rowid, v)
    SELECT rid, group_concat(value_fold, char(10)) FROM resource_values GROUP BY rid;
