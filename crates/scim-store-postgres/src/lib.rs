#![doc = include_str!("../README.md")]
//!
//! # Design
//!
//! The PostgreSQL store: several scimd replicas serving one directory (tokio-postgres with a
//! deadpool connection pool).
//!
//! Supported: PostgreSQL 13 or later (CI runs the suite on the installed release). Other engines
//! that speak PostgreSQL's protocol (CockroachDB, YugabyteDB) are not tested and not promised
//! (`docs/stores.md`). Everything that needs Rust (Unicode case folding, the scim-filter
//! evaluator, the scim-patch engine) runs in the replica, not in server-side functions.
//!
//! # Transactions and concurrency
//!
//! Every write is one transaction at the server's default isolation (`READ COMMITTED`): the resource row is locked first
//! (`SELECT ... FOR NO KEY UPDATE`), the expected version (RFC 7644 section 3.14) is checked
//! under that lock, the patch is applied in process, and the new version is written before
//! `COMMIT`. Two replicas racing on one resource therefore serialise on its row: the second
//! sees the first's version and fails with [`StoreError::VersionMismatch`] instead of losing an
//! update.
//!
//! Uniqueness (`userName`, ids, every `uniqueness: server` attribute) is enforced by unique
//! indexes, so it holds across processes: a racing insert that loses gets SQLSTATE `23505`; the
//! write is then retried once, and its pre-check names the attribute in the
//! [`StoreError::Uniqueness`] it returns. Serialization failures (`40001`) and deadlocks (`40P01`) are retried a bounded number of times with jittered backoff
//! ([`PostgresOptions::max_retries`]).
//!
//! Every connection the pool opens starts with `statement_timeout`
//! ([`PostgresOptions::statement_timeout`]; migrations lift it for their transaction), and a
//! caller waits at most [`PostgresOptions::pool_wait`] for a connection: both fail with
//! [`StoreError::Timeout`] (503), so a costly query or a burst cannot hold the pool. Rows a
//! query reads for the evaluator or an in-process sort, and a page's documents, are read as a
//! stream and parsed in short slices between which the async worker serves other tasks; a
//! page stops at its byte budget ([`Query::max_page_bytes`]).
//!
//! # The change feed: gap-free and ordered with many writers
//!
//! A sequence (`nextval`) would not do: numbers are handed out at allocation, not at commit, so
//! a reader could see event 11 committed while event 10's transaction is still open, move past
//! 10, and never see it. Instead each write allocates its event's number with
//! `UPDATE tenants SET last_seq = last_seq + 1 WHERE id = $1 RETURNING last_seq`, as the last
//! statement of its transaction. That takes the tenant row's lock, which is held until
//! `COMMIT`, so the writers of one tenant take their numbers one after the other, each only
//! after the previous holder committed (or rolled back, taking its increment with it):
//!
//! - sequence order is commit order, and numbers have no gaps (a rolled-back write releases its
//!   number with its increment);
//! - when a reader sees event `n` committed, every event below `n` committed before it, so a
//!   reader that resumes after the highest number it saw never skips a late-committing event.
//!
//! The lock is taken last, after the resource row locks, so all writers lock in one order
//! (resources, then tenant) and cannot deadlock on it; it is held only for the final statements
//! and `COMMIT`. The price is that the writes of *one tenant* commit one at a time (the writes of
//! different tenants do not contend); a directory's provisioning traffic is far below what one
//! row lock sustains.
//!
//! Workplace events (bookings, assignments, catalog and policy changes, and the cascades SCIM
//! writes cause) are numbered by the same statement, in the same per-tenant sequence, so the
//! workplace feed inherits these guarantees; [`Store::events`] returns only the SCIM changes.
//!
//! # The workplace
//!
//! [`WorkplaceStore`](scim_store_core::WorkplaceStore) is implemented in the `workplace` module: plain
//! tables (`workplace_state`, `places`, `bookings`, `assignments`), row locks taken in one
//! documented order, and the lifecycle cascades run inside the SCIM write that causes them.
//!
//! # Documents
//!
//! Each resource is stored twice: `doc`, the served JSON as text (so attribute order is what
//! the client sent, as with SQLite), and `attrs`, its attributes as `jsonb` under a GIN index,
//! which equality filters on attributes without a column of their own are pushed into (see
//! the `query` module). PostgreSQL's `jsonb` and `text` cannot hold U+0000, so documents containing it
//! are refused (400 `invalidValue`).
//!
//! # Source layout
//!
//! The same in both backends: `conn` (connections), `migrate`, `query` (searches), `read`,
//! `write` (directory writes), `feed` (appending to the tenant's feed), `workplace`
//! (`WorkplaceStore` and its rows), `cascade` (the cascades a SCIM write runs: `write` calls
//! `cascade`, which uses `workplace` and `feed`), `admin` (the provisioning log, sync health and
//! operator tokens: [`AdminStore`](scim_store_core::AdminStore)). Only here: `tls` (TLS to the
//! database).

// First: its macros (in_transaction!, with_client!, in_snapshot!) serve the modules below.
#[macro_use]
mod conn;
mod admin;
mod cascade;
mod feed;
mod migrate;
mod query;
mod read;
mod tls;
mod workplace;
mod write;

use async_trait::async_trait;
use conn::{Fail, PgResult, backoff, check_schema_name};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use scim_store_core::Store;
use scim_store_core::TenantSchemas;
use scim_store_core::backend::sql::CursorKey;
use scim_store_core::document::Prepared;
use scim_store_core::plan::directory;
use scim_store_core::schemas::SchemaCache;
use scim_store_core::workplace::plan::ContextCache;
use scim_store_core::{
    ChangeEvent, ImportOutcome, IssuedToken, Members, PatchCall, PatchResult, Query, QueryPage,
    ResourceKind, ResourceSchemas, StoredResource, Tenant, TenantDeletion, TenantId, TokenInfo,
    TokenScope, WriteContext,
};
use scim_store_core::{Result, StoreError};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::error::SqlState;

pub use migrate::LATEST as SCHEMA_VERSION;

/// How to connect a [`PostgresStore`].
#[derive(Debug, Clone)]
pub struct PostgresOptions {
    /// The most connections the pool opens (per replica). 16 by default.
    pub max_connections: usize,
    /// The schema the store's tables live in (PostgreSQL's `search_path`), e.g. to share one
    /// database between deployments; `None` uses the server's default (`public`). Must be a
    /// plain lower-case identifier (`[a-z_][a-z0-9_]*`); the schema must exist.
    pub schema: Option<String>,
    /// How long to wait for a connection to the server.
    pub connect_timeout: Duration,
    /// How many times a write is retried after a serialization failure (`40001`) or a deadlock
    /// (`40P01`) before the error is returned. 8 by default.
    pub max_retries: u32,
    /// The longest one SQL statement may run (PostgreSQL's `statement_timeout`, set on every
    /// connection the pool opens; migrations are exempt). A statement stopped by it fails with
    /// [`StoreError::Timeout`] (503): a query a client made too costly, or one whose request
    /// was given up, stops holding its connection and the server's CPU. 30 s by default, the
    /// server's request timeout; `None` leaves the server's setting.
    pub statement_timeout: Option<Duration>,
    /// How long a caller waits for a pooled connection when all
    /// [`PostgresOptions::max_connections`] are busy before failing with
    /// [`StoreError::Timeout`] (503); `None` waits as long as it takes. 5 s by default.
    pub pool_wait: Option<Duration>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions {
            max_connections: 16,
            schema: None,
            connect_timeout: Duration::from_secs(10),
            max_retries: 8,
            statement_timeout: Some(Duration::from_secs(30)),
            pool_wait: Some(Duration::from_secs(5)),
        }
    }
}

/// Prepares a document for storage as a `kind` of `schemas` and checks it against the limits
/// on what one resource may hold.
fn prepare(schemas: &ResourceSchemas, kind: ResourceKind, document: Value) -> Result<Prepared> {
    let prepared = write::prepare(kind, schemas.get(kind), document)?;
    schemas.limits().check(&prepared)?;
    Ok(prepared)
}

/// The PostgreSQL [`Store`]. Any number of instances, in any number of processes, may share one
/// database: every invariant is enforced by the database (see the module documentation).
pub struct PostgresStore {
    pool: Pool,
    /// Each tenant's schemas, over the ones the store was opened with.
    schemas: SchemaCache,
    options: PostgresOptions,
    /// Each tenant's compiled policies and catalog, per generation (see [`workplace`]).
    contexts: ContextCache,
    /// The key cursors are signed with, shared by the replicas through the database (never
    /// printed).
    cursor_key: CursorKey,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.options.schema)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`, or a
    /// key-value connection string), checks it, and migrates it to [`SCHEMA_VERSION`]. Safe
    /// when several replicas start at once: see the `migrate` module.
    ///
    /// # TLS
    ///
    /// TLS follows libpq's `sslmode` (<https://www.postgresql.org/docs/current/libpq-ssl.html>),
    /// given in the URL's query or as a key-value pair, on rustls:
    ///
    /// - `disable`: plain TCP.
    /// - `prefer` (the default): TLS if the server offers it, plain otherwise.
    /// - `require`: TLS or no connection; the certificate is not checked (encryption only), unless
    ///   `sslrootcert` is given, when its chain is checked as under `verify-ca`.
    /// - `verify-ca`: TLS, and the server's certificate must chain to a trusted root; the host
    ///   name is not checked.
    /// - `verify-full`: TLS, and the certificate must chain to a trusted root and name the host
    ///   connected to.
    ///
    /// The trusted roots are the PEM file `sslrootcert=PATH`, or the platform's store
    /// (`sslrootcert=system`, which implies and demands `verify-full`, as in libpq 16; or no
    /// `sslrootcert`). `sslnegotiation` is passed to tokio-postgres; client certificates
    /// (`sslcert`, `sslkey`) are not supported. Over a Unix-domain socket TLS is never used.
    ///
    /// ```text
    /// postgres://scimd@db.internal:5432/scimd?sslmode=verify-full
    /// postgres://scimd@10.0.0.5/scimd?sslmode=verify-ca&sslrootcert=/etc/scimd/db-ca.pem
    /// host=db.internal user=scimd dbname=scimd sslmode=require
    /// ```
    ///
    /// # Errors
    ///
    /// [`StoreError::Backend`], saying what went wrong: a malformed connection string or `ssl*`
    /// value (`sslmode "verfy-full": expected disable, prefer, require, verify-ca or
    /// verify-full`), an unreadable `sslrootcert`, a certificate that is not trusted or does not
    /// match the host name, a server without TLS under `require` or stricter, or the server's
    /// own refusal.
    pub async fn connect(
        url: &str,
        schemas: ResourceSchemas,
        options: PostgresOptions,
    ) -> Result<PostgresStore> {
        let (mut config, tls) = tls::configure(url)?;
        if config.get_application_name().is_none() {
            config.application_name("scimd");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        // Settings every connection starts with (libpq's `options`), after the connection
        // string's own: no statement is spent on them.
        let mut settings: Vec<String> = config
            .get_options()
            .map(str::to_owned)
            .into_iter()
            .collect();
        if let Some(schema) = &options.schema {
            check_schema_name(schema)?;
            settings.push(format!("-c search_path={schema}"));
        }
        if let Some(timeout) = options.statement_timeout {
            // 0 would turn the limit off: a timeout below a millisecond is one millisecond.
            let ms = timeout.as_millis().max(1);
            settings.push(format!("-c statement_timeout={ms}"));
        }
        if !settings.is_empty() {
            config.options(settings.join(" "));
        }
        let target = tls::describe_target(&config);
        let manager = Manager::from_config(
            config,
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.max_connections.max(1))
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(options.pool_wait)
            .build()
            .map_err(|e| StoreError::backend_error("postgres pool", e))?;
        // The first connection says, when it fails, where it went and why, in words: "db
        // error" tells an operator nothing.
        if let Err(e) = pool.get().await {
            let message = match &e {
                deadpool_postgres::PoolError::Backend(pg) => {
                    tls::describe_connect_failure(pg, &target)
                }
                other => format!("cannot connect to PostgreSQL at {target}: {other}"),
            };
            return Err(StoreError::backend(message));
        }
        let encoding: PgResult<String> = async {
            let client = pool.get().await?;
            Ok(client.query_one("SHOW server_encoding", &[]).await?.get(0))
        }
        .await;
        let encoding = encoding.map_err(Fail::into_store)?;
        if !encoding.eq_ignore_ascii_case("UTF8") {
            return Err(StoreError::backend(format!(
                "the database's encoding is {encoding}: scimd needs UTF8 (character counts \
                 and code-point order in filters depend on it)"
            )));
        }
        migrate::migrate(&pool, &schemas).await?;
        let cursor_key = migrate::cursor_key(&pool).await?;
        Ok(PostgresStore {
            pool,
            schemas: SchemaCache::new(schemas),
            options,
            contexts: ContextCache::default(),
            cursor_key,
        })
    }

    /// The schemas the store was opened with (each tenant's own come on top:
    /// [`Store::tenant_schemas`]).
    pub fn schemas(&self) -> &ResourceSchemas {
        self.schemas.base()
    }

    /// The tenant's schemas: cached, else loaded (see [`SchemaCache`]).
    async fn schemas_of(&self, tenant: TenantId) -> Result<Arc<TenantSchemas>> {
        if let Some(cached) = self.schemas.get(tenant) {
            return Ok(cached);
        }
        let (version, documents) =
            with_client!(self, |client| read::tenant_schemas(&client, tenant))?;
        self.schemas.load(tenant, version, documents)
    }

    /// The query plan PostgreSQL chooses for `query`'s filter (`EXPLAIN`), one line per step:
    /// for tests and operators checking that a filter uses an index.
    pub async fn explain(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        query: &Query,
    ) -> Result<Vec<String>> {
        let schemas = self.schemas_of(*tenant).await?;
        with_client!(self, |client| query::explain(
            &client,
            &schemas.resources,
            *tenant,
            kind,
            query
        ))
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_tenant(&self, name: &str) -> Result<Tenant> {
        scim_store_core::backend::token::check_tenant_name(name)?;
        in_transaction!(self, |tx| write::create_tenant(&tx, name))
    }

    async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>> {
        with_client!(self, |client| read::tenant_by_name(&client, name))
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        with_client!(self, |client| read::list_tenants(&client))
    }

    async fn issue_token(
        &self,
        tenant: &TenantId,
        label: &str,
        scope: TokenScope,
    ) -> Result<IssuedToken> {
        in_transaction!(self, |tx| write::issue_token(&tx, *tenant, label, scope))
    }

    async fn authenticate(&self, secret: &str) -> Result<Option<(Tenant, TokenInfo)>> {
        let found = with_client!(self, |client| read::authenticate(&client, secret))?;
        let Some((tenant, mut token, schemas_version)) = found else {
            return Ok(None);
        };
        self.schemas.observe(tenant.id, schemas_version);
        let now = scim_store_core::document::now();
        if scim_store_core::backend::token::should_record_use(token.last_used, now) {
            let (id, at) = (token.id.as_str(), scim_store_core::document::to_nanos(now));
            // Once a minute per token at most; a failure to record it must not refuse the
            // request, which only reads.
            let recorded = with_client!(self, |client| async move {
                client
                    .execute(
                        "UPDATE tokens SET last_used_ns = $2 WHERE id = $1 \
                         AND (last_used_ns IS NULL OR last_used_ns < $2)",
                        &[&id, &at],
                    )
                    .await?;
                PgResult::Ok(())
            });
            if recorded.is_ok() {
                token.last_used = Some(now);
            }
        }
        Ok(Some((tenant, token)))
    }

    async fn tenant_schemas(&self, tenant: &TenantId) -> Result<Arc<TenantSchemas>> {
        self.schemas_of(*tenant).await
    }

    async fn set_tenant_schemas(
        &self,
        tenant: &TenantId,
        documents: Vec<Value>,
    ) -> Result<Arc<TenantSchemas>> {
        let base = self.schemas.base();
        let schemas = in_transaction!(self, |tx| workplace::set_tenant_schemas(
            &tx,
            *tenant,
            base,
            documents.clone()
        ))?;
        let schemas = Arc::new(schemas);
        self.schemas.put(*tenant, Arc::clone(&schemas));
        Ok(schemas)
    }

    async fn list_tokens(&self, tenant: &TenantId) -> Result<Vec<TokenInfo>> {
        with_client!(self, |client| read::list_tokens(&client, *tenant))
    }

    async fn delete_tenant(&self, tenant: &TenantId) -> Result<TenantDeletion> {
        let key = tenant.key();
        in_transaction!(self, |tx| async {
            // Locking the tenant row first serialises this with every write of the tenant
            // (each takes the row to number its event), so nothing is written in between.
            let locked = tx
                .query_opt("SELECT id FROM tenants WHERE id = $1 FOR UPDATE", &[&key])
                .await?;
            if locked.is_none() {
                return Err(Fail::from(StoreError::TenantNotFound(tenant.to_string())));
            }
            let tx = &tx;
            let count = |sql: &'static str| async move {
                let row = tx.query_one(sql, &[&key]).await?;
                let n: i64 = row.get(0);
                PgResult::Ok(u64::try_from(n).unwrap_or(0))
            };
            let tokens_revoked =
                count("SELECT count(*) FROM tokens WHERE tenant = $1 AND revoked_ns IS NULL")
                    .await?;
            let resources_deleted =
                count("SELECT count(*) FROM resources WHERE tenant = $1").await?;
            let deletion = TenantDeletion {
                tokens_revoked,
                resources_deleted,
            };
            // Members and the value side tables go with their resources (ON DELETE CASCADE).
            for sql in [
                "DELETE FROM resources WHERE tenant = $1",
                "DELETE FROM events WHERE tenant = $1",
                "DELETE FROM tokens WHERE tenant = $1",
                "DELETE FROM bookings WHERE tenant = $1",
                "DELETE FROM assignments WHERE tenant = $1",
                "DELETE FROM places WHERE tenant = $1",
                "DELETE FROM workplace_state WHERE tenant = $1",
                "DELETE FROM tenant_schemas WHERE tenant = $1",
                // The provisioning log has no foreign key (see `admin`): its rows go here.
                "DELETE FROM request_segments WHERE tenant = $1",
                "DELETE FROM request_log_usage WHERE tenant = $1",
                "DELETE FROM request_activity WHERE tenant = $1",
                "DELETE FROM tenants WHERE id = $1",
            ] {
                tx.execute(sql, &[&key]).await?;
            }
            PgResult::Ok(deletion)
        })
    }

    async fn revoke_token(&self, tenant: &TenantId, token_id: &str) -> Result<bool> {
        in_transaction!(self, |tx| write::revoke_token(&tx, *tenant, token_id))
    }

    async fn create(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        document: Value,
        ctx: &WriteContext,
    ) -> Result<StoredResource> {
        let schemas = self.schemas_of(*tenant).await?;
        let prepared = prepare(&schemas.resources, kind, document)?;
        let id = scim_store_core::document::new_resource_id();
        let wp = self.cascades(&schemas);
        in_transaction!(self, window: &ctx.window, |tx| write::create(
            &tx, &wp, *tenant, kind, &id, &prepared, ctx
        ))
    }

    async fn get(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
        members: Members,
    ) -> Result<Option<StoredResource>> {
        with_client!(self, |client| read::get(
            &client, *tenant, kind, id, members
        ))
    }

    async fn replace(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
        document: Value,
        expected_version: Option<u64>,
        ctx: &WriteContext,
    ) -> Result<StoredResource> {
        let schemas = self.schemas_of(*tenant).await?;
        let prepared = prepare(&schemas.resources, kind, document)?;
        let schema = schemas.resources.get(kind);
        let wp = self.cascades(&schemas);
        in_transaction!(self, window: &ctx.window, |tx| write::replace(
            &tx,
            &wp,
            schema,
            *tenant,
            kind,
            id,
            &prepared,
            expected_version,
            ctx
        ))
    }

    async fn patch(
        &self,
        tenant: &TenantId,
        call: PatchCall<'_>,
        ctx: &WriteContext,
    ) -> Result<PatchResult> {
        let schemas = self.schemas_of(*tenant).await?;
        let schema = schemas.resources.get(call.kind);
        let wp = self.cascades(&schemas);
        let limits = schemas.resources.limits();
        in_transaction!(self, window: &ctx.window, |tx| write::patch(
            &tx, &wp, schema, limits, *tenant, call, ctx
        ))
    }

    async fn delete(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
        expected_version: Option<u64>,
        ctx: &WriteContext,
    ) -> Result<()> {
        let schemas = self.schemas_of(*tenant).await?;
        let wp = self.cascades(&schemas);
        in_transaction!(self, window: &ctx.window, |tx| write::delete(
            &tx,
            &wp,
            write::Target {
                tenant: *tenant,
                kind,
                id,
                expected_version,
            },
            ctx
        ))
    }

    async fn query(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        query: &Query,
    ) -> Result<QueryPage> {
        let schemas = self.schemas_of(*tenant).await?;
        let schemas = &schemas.resources;
        in_snapshot!(self, |tx| query::run(
            &tx,
            schemas,
            &self.cursor_key,
            *tenant,
            kind,
            query
        ))
    }

    async fn import(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        documents: Vec<Value>,
        ctx: &WriteContext,
    ) -> Result<ImportOutcome> {
        // Documents are checked and indexed before the transaction opens, so that it only
        // inserts.
        let schemas = self.schemas_of(*tenant).await?;
        let prepared = directory::prepare_import(documents, |document| {
            prepare(&schemas.resources, kind, document)
        })?;
        directory::check_import_duplicates(&prepared)?;
        let wp = self.cascades(&schemas);
        in_transaction!(self, window: &ctx.window, |tx| write::import(
            &tx, &wp, *tenant, kind, &prepared, ctx
        ))
    }

    async fn events(
        &self,
        tenant: &TenantId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<ChangeEvent>> {
        with_client!(self, |client| read::events(
            &client, *tenant, after_seq, limit
        ))
    }
}
