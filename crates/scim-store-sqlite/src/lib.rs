#![doc = include_str!("../README.md")]
//!
//! # Design
//!
//! The embedded SQLite store (rusqlite with the `bundled` SQLite, so every machine runs the
//! same engine, with JSON functions and `RETURNING`).
//!
//! # Concurrency
//!
//! WAL journal mode. One writer thread owns the only write connection and commits every write
//! queued at that moment in one transaction (group commit: one `fsync` for many writes), each
//! write in its own savepoint so that a failing one rolls back alone; callers are answered only
//! after `COMMIT`. Reads run on a pool of read-only connections and never wait for the writer.
//! On a multi-threaded tokio runtime a read runs first on the calling worker (no thread hop on
//! a point read's path), for at most a few milliseconds: a read still running then (a sort or a
//! filter over many documents) is interrupted by its connection's progress handler and run
//! again on the blocking pool, [`SqliteOptions::long_reads`] at a time, so that slow reads
//! never hold the runtime's workers. The future awaiting a long read stops its query when it is
//! dropped (a request timeout, an HTTP/2 stream reset), within microseconds; an interrupted read's
//! transaction is rolled back before its connection returns to the pool. Elsewhere reads run
//! on the blocking pool (current-thread runtime) or in place (no runtime); see `ReadPool::read`.
//! A single-statement read (a User with its `groups`) needs no explicit transaction;
//! multi-statement reads (queries, a Group with its members) run in one. Every connection has
//! a busy timeout ([`SqliteOptions::busy_timeout`]), so neither a checkpoint nor a second
//! process makes a request fail with `database is locked`.
//!
//! A query's page loads its documents in one statement, stopped as soon as they pass the
//! query's byte budget ([`scim_store_core::Query::max_page_bytes`]); sorting by an attribute
//! without a column sorts row ids and keys, never documents.
//!
//! # Workplace
//!
//! The store is also a [`scim_store_core::WorkplaceStore`]: catalog, policies, bookings, assignments and
//! the workplace feed live in the same file, and the lifecycle cascades run inside the SCIM
//! writes' savepoints (see [`scim_store_core::workplace`]). Compiled policies and the catalog are cached
//! per tenant generation, and a context is cached only once the transaction that built it has
//! committed.
//!
//! # Files
//!
//! A new database is created with mode 0600 (owner only), and with it its `-wal` and `-shm`:
//! they hold personal data and password hashes. An existing file's mode is left as it is;
//! [`SqliteStore::exposed_files`] lists the ones others may read, for the caller to warn.
//!
//! # Durability
//!
//! See [`Durability`]: the default, [`Durability::Full`], makes an acknowledged write survive
//! `kill -9` and power loss.
//!
//! # Source layout
//!
//! The same in both backends: `conn` (connections), `migrate`, `query` (searches), `read`,
//! `write` (directory writes), `feed` (appending to the tenant's feed), `workplace`
//! (`WorkplaceStore` and its rows), `cascade` (the cascades a SCIM write runs: `write` calls
//! `cascade`, which uses `workplace` and `feed`). Only here: `files` (the database files'
//! permissions).

mod admin;
mod cascade;
mod conn;
mod feed;
mod files;
mod migrate;
mod query;
mod read;
mod workplace;
mod write;

use crate::conn::SqlResult;
use async_trait::async_trait;
use conn::{ReadPool, Writer};
use scim_store_core::Store;
use scim_store_core::TenantSchemas;
use scim_store_core::backend::sql::CursorKey;
use scim_store_core::document;
use scim_store_core::plan::directory::{self, DocumentPatch, PatchPlan, Patching};
use scim_store_core::schemas::SchemaCache;
use scim_store_core::workplace::plan::ContextCache;
use scim_store_core::{
    ChangeEvent, ImportOutcome, IssuedToken, Members, PatchCall, PatchResult, Query, QueryPage,
    ResourceKind, ResourceSchemas, StoredResource, Tenant, TenantDeletion, TenantId, TokenInfo,
    TokenScope, WriteContext, WriteWindow,
};
use scim_store_core::{Result, StoreError};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

pub use files::ExposedFile;
pub use migrate::LATEST as SCHEMA_VERSION;

/// When a committed write is on stable storage (SQLite's `PRAGMA synchronous`, in WAL mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// `synchronous = FULL` (the default): the write-ahead log is flushed to disk (`fsync`)
    /// at every commit before the write is acknowledged. An acknowledged write survives the
    /// process being killed (`kill -9`), an operating system crash and power loss. Costs one
    /// `fsync` per commit, which group commit shares between all the writes of a batch.
    #[default]
    Full,
    /// `synchronous = NORMAL`: commits reach the operating system but the log is flushed only
    /// at checkpoints. An acknowledged write survives the process being killed (`kill -9`: the
    /// data is in the OS page cache), but the last commits before an OS crash or power loss
    /// may be lost (the database stays consistent). Faster on slow disks.
    Normal,
}

/// How to open a [`SqliteStore`].
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// When a write is durable; see [`Durability`].
    pub durability: Durability,
    /// How long a connection waits for a lock held by another connection or process before
    /// giving up (SQLite's `busy_timeout`); 30 s by default, far beyond any checkpoint.
    pub busy_timeout: Duration,
    /// Page cache per connection, in KiB (SQLite's `cache_size`); 16 MiB by default.
    pub cache_kib: i64,
    /// How many idle read connections are kept.
    pub max_idle_readers: usize,
    /// How many long reads run at once (at least 1): reads that outlast their few
    /// milliseconds on the async worker (a sort or a filter over many documents) continue on
    /// the blocking pool, this many at a time; the others wait for their turn, without holding
    /// a thread or a connection, until their request's deadline. The number of cores by
    /// default (at least 2): long reads are CPU work.
    pub long_reads: usize,
    /// A limit on any read, from its start (`None`, the default: none). A read still running
    /// then is interrupted and fails with [`StoreError::Timeout`] (503). A server needs no such
    /// limit: a read is also stopped as soon as the future awaiting it is dropped, as its
    /// request timeout does.
    pub read_timeout: Option<Duration>,
    /// Create the database if its file does not exist (true by default). When false, opening
    /// a missing database fails with an error naming the file and creates nothing: for a
    /// command that only reads or edits an existing database, a wrong path must not leave an
    /// empty database behind and then report that its data is missing.
    pub create_if_missing: bool,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            durability: Durability::Full,
            busy_timeout: Duration::from_secs(30),
            cache_kib: 16 * 1024,
            max_idle_readers: 8,
            long_reads: std::thread::available_parallelism()
                .map_or(2, std::num::NonZero::get)
                .max(2),
            read_timeout: None,
            create_if_missing: true,
        }
    }
}

/// Opens the write connection, migrates the database, reads the cursor key, and starts the
/// writer on it.
fn start_writer(
    path: &Path,
    schemas: &ResourceSchemas,
    options: &SqliteOptions,
) -> Result<(Writer, CursorKey)> {
    let mut conn = conn::open_connection(path, options, true)?;
    migrate::migrate(&mut conn, schemas)?;
    migrate::create_log_tables(&conn)?;
    let cursor_key = migrate::cursor_key(&conn)?;
    Ok((Writer::start(conn)?, cursor_key))
}

/// How `call` is applied to a resource of `schemas`: the core's plan, with this store's
/// preparation and limits.
fn patching_of<'a>(schemas: &'a ResourceSchemas, call: &PatchCall<'a>) -> Patching<'a> {
    Patching {
        kind: call.kind,
        schema: schemas.get(call.kind),
        request: call.request,
        settings: call.settings,
        prepare: document::prepare,
        limits: schemas.limits(),
    }
}

/// `document` prepared for storage as a `kind` of `schemas`, within their limits.
fn prepare_with(
    schemas: &ResourceSchemas,
    kind: ResourceKind,
    document: Value,
) -> Result<document::Prepared> {
    let prepared = document::prepare(kind, schemas.get(kind), document)?;
    schemas.limits().check(&prepared)?;
    Ok(prepared)
}

/// The SQLite [`Store`]. Cheap to share behind an `Arc`; closes when dropped.
pub struct SqliteStore {
    path: PathBuf,
    /// Each tenant's schemas, over the ones the store was opened with.
    schemas: Arc<SchemaCache>,
    writer: Writer,
    readers: Arc<ReadPool>,
    contexts: Arc<ContextCache>,
    exposed: Vec<ExposedFile>,
    /// The key cursors are signed with, from the database (never printed).
    cursor_key: Arc<CursorKey>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating it if needed and [`SqliteOptions::create_if_missing`], with mode 0600 on
    /// Unix) the database at `path`, migrates it
    /// to the current schema version, and starts the writer.
    pub fn open(
        path: impl AsRef<Path>,
        schemas: ResourceSchemas,
        options: SqliteOptions,
    ) -> Result<SqliteStore> {
        let path = path.as_ref().to_path_buf();
        // Checked first, so that the error names what is wrong (a missing directory, a
        // read-only file) instead of SQLite's "unable to open database file".
        if !options.create_if_missing {
            files::check_exists(&path)?;
        }
        files::check_writable(&path)?;
        // Before SQLite creates it with the umask's mode (usually 0644), and the -wal and -shm
        // after it.
        files::create_private(&path)?;
        if let Some(log) = conn::log_path(&path) {
            files::create_private(&log)?;
        }
        let exposed = files::exposed(&path);
        let (writer, cursor_key) = start_writer(&path, &schemas, &options)
            .map_err(|e| files::explain_open_error(&path, e))?;
        let readers = Arc::new(ReadPool::new(path.clone(), options));
        Ok(SqliteStore {
            path,
            schemas: Arc::new(SchemaCache::new(schemas)),
            writer,
            readers,
            contexts: Arc::new(ContextCache::default()),
            exposed,
            cursor_key: Arc::new(cursor_key),
        })
    }

    /// The database's files that group or others could read or write when it was opened
    /// (mode beyond 0600, e.g. a database created by an older version or copied with a
    /// default umask). The store never loosens nor tightens an existing file's mode; the
    /// caller should warn: `chmod 600` the files listed.
    pub fn exposed_files(&self) -> &[ExposedFile] {
        &self.exposed
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
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
        let (version, documents) = self
            .readers
            .read(move |conn| read::tenant_schemas(conn, tenant))
            .await?;
        self.schemas.load(tenant, version, documents)
    }

    /// Finishes the queued writes and stops the writer; later writes fail.
    pub fn close(&self) {
        self.writer.close();
    }

    /// Runs `work` in the writer's next transaction with what workplace decisions need, and
    /// caches the tenant context it built once the transaction has committed.
    pub(crate) async fn write_env<T, F>(
        &self,
        tenant: TenantId,
        window: WriteWindow,
        work: F,
    ) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection, &workplace::WorkplaceEnv) -> Result<T> + Send + 'static,
    {
        let schemas = self.schemas_of(tenant).await?;
        let env = workplace::WorkplaceEnv::new(Arc::clone(&self.contexts), schemas);
        let (value, built) = self
            .writer
            .write_in(window, move |conn| {
                let value = work(conn, &env)?;
                Ok((value, env.into_built()))
            })
            .await?;
        if let Some(context) = built {
            self.contexts.put(tenant, context);
        }
        Ok(value)
    }

    /// Runs `work` in one read transaction (one committed snapshot) with what workplace
    /// decisions need, and caches the tenant context it built.
    pub(crate) async fn read_env<T, F>(&self, tenant: TenantId, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&rusqlite::Connection, &workplace::WorkplaceEnv) -> Result<T> + Send + 'static,
    {
        let (contexts, schemas) = (Arc::clone(&self.contexts), self.schemas_of(tenant).await?);
        let (value, built) = self
            .readers
            .read(move |conn| {
                // A new one per attempt: a read may run twice (see `ReadPool::read`).
                let env = workplace::WorkplaceEnv::new(Arc::clone(&contexts), Arc::clone(&schemas));
                let value = read::in_read_transaction(conn, |conn| work(conn, &env))?;
                Ok((value, env.into_built()))
            })
            .await?;
        if let Some(context) = built {
            self.contexts.put(tenant, context);
        }
        Ok(value)
    }

    /// `call` applied in the writer (`write::patch`); `None` if `defer_heavy` and it is heavy.
    async fn patch_in_writer(
        &self,
        tenant: &TenantId,
        call: PatchCall<'_>,
        ctx: &WriteContext,
        defer_heavy: bool,
    ) -> Result<Option<PatchResult>> {
        // The writer thread outlives the call's borrows, so it gets its own copies.
        let (tenant, id, ctx) = (*tenant, call.id.to_owned(), ctx.clone());
        let (request, settings) = (call.request.clone(), call.settings.clone());
        let (kind, expected_version, members) = (call.kind, call.expected_version, call.members);
        let schemas = self.schemas_of(tenant).await?;
        self.write_env(tenant, ctx.window.clone(), move |conn, env| {
            let call = PatchCall {
                kind,
                id: &id,
                request: &request,
                settings: &settings,
                expected_version,
                members,
            };
            let patching = patching_of(&schemas.resources, &call);
            write::patch(conn, env, &patching, tenant, call, &ctx, defer_heavy)
        })
        .await
    }

    /// Prepares a document for storage and checks it against the limits on what one resource
    /// may hold, on the caller's thread: the writer only writes.
    async fn prepare(
        &self,
        tenant: TenantId,
        kind: ResourceKind,
        document: Value,
    ) -> Result<document::Prepared> {
        let schemas = self.schemas_of(tenant).await?;
        prepare_with(&schemas.resources, kind, document)
    }

    /// The query plan SQLite chooses for `query`'s filter (`EXPLAIN QUERY PLAN`), one line per
    /// step: for tests and operators checking that a filter uses an index.
    pub async fn explain(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        query: &Query,
    ) -> Result<Vec<String>> {
        let tenant = *tenant;
        let schemas = self.schemas_of(tenant).await?;
        let filter = query.filter.clone();
        self.readers
            .read(move |conn| {
                let mut condition = String::from("r.tenant = ? AND r.kind = ?");
                let mut params: Vec<rusqlite::types::Value> =
                    vec![tenant.key().into(), kind.code().into()];
                if let Some(filter) = &filter {
                    let pushed =
                        query::push_down(filter, schemas.resources.get(kind), kind, tenant);
                    condition.push_str(" AND ");
                    condition.push_str(&pushed.sql);
                    params.extend(pushed.params);
                }
                let mut stmt = conn
                    .prepare(&format!(
                        "EXPLAIN QUERY PLAN SELECT r.rid FROM resources r WHERE {condition}"
                    ))
                    .sql()?;
                let rows = stmt
                    .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                        r.get::<_, String>(3)
                    })
                    .sql()?;
                rows.collect::<rusqlite::Result<_>>().sql()
            })
            .await
    }
}

impl SqliteStore {
    /// The query plans (`EXPLAIN QUERY PLAN`, one line per step) of the workplace lookups that
    /// SCIM writes and bookings make, by name: for tests and operators checking that a SCIM
    /// write about someone without holdings costs one indexed lookup, never a scan of the
    /// tenant's bookings.
    pub async fn explain_workplace(&self) -> Result<Vec<(String, Vec<String>)>> {
        self.readers
            .read(|conn| {
                let mut plans = Vec::with_capacity(cascade::HOT_LOOKUPS.len());
                for (name, sql) in cascade::HOT_LOOKUPS {
                    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).sql()?;
                    let count = stmt.parameter_count();
                    let nulls = vec![rusqlite::types::Value::Null; count];
                    let rows = stmt
                        .query_map(rusqlite::params_from_iter(nulls.iter()), |r| {
                            r.get::<_, String>(3)
                        })
                        .sql()?;
                    plans.push((
                        name.to_owned(),
                        rows.collect::<rusqlite::Result<_>>().sql()?,
                    ));
                }
                Ok(plans)
            })
            .await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_tenant(&self, name: &str) -> Result<Tenant> {
        let name = name.to_owned();
        self.writer
            .write(move |conn| write::create_tenant(conn, &name))
            .await
    }

    async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>> {
        let name = name.to_owned();
        self.readers
            .read(move |conn| read::tenant_by_name(conn, &name))
            .await
    }

    async fn check_ready(&self) -> Result<()> {
        self.tenant_by_name("readyz-probe").await?;
        // An empty transaction through the writer thread: it proves the thread is alive and
        // takes work, and writes no page (so it works on a full disk too, where reads go on).
        self.writer.write(|_| Ok(())).await
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        self.readers.read(read::list_tenants).await
    }

    async fn issue_token(
        &self,
        tenant: &TenantId,
        label: &str,
        scope: TokenScope,
    ) -> Result<IssuedToken> {
        let (tenant, label) = (*tenant, label.to_owned());
        self.writer
            .write(move |conn| write::issue_token(conn, tenant, &label, scope))
            .await
    }

    async fn authenticate(&self, secret: &str) -> Result<Option<(Tenant, TokenInfo)>> {
        let secret = secret.to_owned();
        let found = self
            .readers
            .read(move |conn| read::authenticate(conn, &secret))
            .await?;
        let Some((tenant, mut token, schemas_version)) = found else {
            return Ok(None);
        };
        self.schemas.observe(tenant.id, schemas_version);
        let now = document::now();
        if scim_store_core::backend::token::should_record_use(token.last_used, now) {
            let (id, at) = (token.id.clone(), document::to_nanos(now));
            // Once a minute per token at most; a failure to record it (a full disk) must not
            // refuse the request, which only reads.
            let recorded = self
                .writer
                .write(move |conn| write::record_token_use(conn, &id, at))
                .await;
            if recorded.is_ok() {
                token.last_used = Some(now);
            }
        }
        Ok(Some((tenant, token)))
    }

    async fn list_tokens(&self, tenant: &TenantId) -> Result<Vec<TokenInfo>> {
        let tenant = *tenant;
        self.readers
            .read(move |conn| read::list_tokens(conn, tenant))
            .await
    }

    async fn delete_tenant(&self, tenant: &TenantId) -> Result<TenantDeletion> {
        let tenant = *tenant;
        self.writer
            .write(move |conn| {
                let key = tenant.key();
                let exists: bool = conn
                    .prepare_cached("SELECT EXISTS (SELECT 1 FROM tenants WHERE id = ?1)").sql()?
                    .query_row([key], |r| r.get(0)).sql()?;
                if !exists {
                    return Err(StoreError::TenantNotFound(tenant.to_string()));
                }
                let count = |sql: &str| -> Result<u64> {
                    let n: i64 = conn.prepare_cached(sql).sql()?.query_row([key], |r| r.get(0)).sql()?;
                    Ok(u64::try_from(n).unwrap_or(0))
                };
                let deletion = TenantDeletion {
                    tokens_revoked: count(
                        "SELECT count(*) FROM tokens WHERE tenant = ?1 AND revoked_ns IS NULL",
                    )?,
                    resources_deleted: count("SELECT count(*) FROM resources WHERE tenant = ?1")?,
                };
                // Rows keyed by rid first (members and the trigram index know no tenant), then
                // the tenant's own tables; rids and tenant ids are never reused (AUTOINCREMENT).
                for sql in [
                    "DELETE FROM value_trigrams WHERE rowid IN (SELECT rid FROM resources WHERE tenant = ?1)",
                    "DELETE FROM members WHERE group_rid IN (SELECT rid FROM resources WHERE tenant = ?1)",
                    "DELETE FROM resource_values WHERE tenant = ?1",
                    "DELETE FROM unique_values WHERE tenant = ?1",
                    "DELETE FROM resources WHERE tenant = ?1",
                    "DELETE FROM resource_counts WHERE tenant = ?1",
                    "DELETE FROM events WHERE tenant = ?1",
                    "DELETE FROM tokens WHERE tenant = ?1",
                    "DELETE FROM bookings WHERE tenant = ?1",
                    "DELETE FROM assignments WHERE tenant = ?1",
                    "DELETE FROM places WHERE tenant = ?1",
                    "DELETE FROM workplace_state WHERE tenant = ?1",
                    "DELETE FROM tenant_schemas WHERE tenant = ?1",
                    "DELETE FROM request_segments WHERE tenant = ?1",
                    "DELETE FROM request_log_usage WHERE tenant = ?1",
                    "DELETE FROM request_activity WHERE tenant = ?1",
                    "DELETE FROM tenants WHERE id = ?1",
                ] {
                    conn.prepare_cached(sql).sql()?.execute([key]).sql()?;
                }
                Ok(deletion)
            })
            .await
    }

    async fn revoke_token(&self, tenant: &TenantId, token_id: &str) -> Result<bool> {
        let (tenant, token_id) = (*tenant, token_id.to_owned());
        self.writer
            .write(move |conn| write::revoke_token(conn, tenant, &token_id))
            .await
    }

    async fn tenant_schemas(&self, tenant: &TenantId) -> Result<Arc<TenantSchemas>> {
        self.schemas_of(*tenant).await
    }

    async fn set_tenant_schemas(
        &self,
        tenant: &TenantId,
        documents: Vec<Value>,
    ) -> Result<Arc<TenantSchemas>> {
        let (tenant, base) = (*tenant, self.schemas.base().clone());
        let schemas = self
            .writer
            .write(move |conn| write::set_tenant_schemas(conn, tenant, &base, documents))
            .await?;
        let schemas = Arc::new(schemas);
        self.schemas.put(tenant, Arc::clone(&schemas));
        Ok(schemas)
    }

    async fn create(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        document: Value,
        ctx: &WriteContext,
    ) -> Result<StoredResource> {
        let prepared = self.prepare(*tenant, kind, document).await?;
        let (tenant, ctx) = (*tenant, ctx.clone());
        self.write_env(tenant, ctx.window.clone(), move |conn, env| {
            write::create(conn, env, tenant, kind, &prepared, &ctx)
        })
        .await
    }

    async fn get(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
        members: Members,
    ) -> Result<Option<StoredResource>> {
        let (tenant, id) = (*tenant, id.to_owned());
        self.readers
            .read(move |conn| read::get(conn, tenant, kind, &id, members))
            .await
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
        let prepared = self.prepare(*tenant, kind, document).await?;
        let (tenant, id, ctx) = (*tenant, id.to_owned(), ctx.clone());
        self.write_env(tenant, ctx.window.clone(), move |conn, env| {
            write::replace(
                conn,
                env,
                tenant,
                kind,
                &id,
                &prepared,
                expected_version,
                &ctx,
            )
        })
        .await
    }

    /// A PATCH that is light to apply (a User of at most 64 KiB, a request of at most 1,000
    /// values: `Patching::is_heavy`) is applied in the writer, where it costs microseconds, less
    /// than handing it over. A heavy one never holds the writer every tenant shares: it is
    /// planned (applied, validated, prepared, its index rows diffed, its next version
    /// serialised) here, on the caller's thread and off the async worker, against a snapshot;
    /// the writer only checks that the User is still at the version it was planned on and
    /// writes the rows. If another write moved the User in between, it is planned again; after
    /// [`directory::PATCH_PLAN_ATTEMPTS`] such races it is applied in the writer, where it
    /// cannot lose (its cost bounded by the resource limits). A Group's PATCH is applied in the
    /// writer: it is a membership delta of the rows it names, whatever the group's size.
    async fn patch(
        &self,
        tenant: &TenantId,
        call: PatchCall<'_>,
        ctx: &WriteContext,
    ) -> Result<PatchResult> {
        let kind = call.kind;
        let schemas = self.schemas_of(*tenant).await?;
        let patching = patching_of(&schemas.resources, &call);
        let document = patching.plan()? == PatchPlan::Document;
        if !(document && patching.is_heavy(0)) {
            // `None`: the stored User makes it heavy.
            if let Some(done) = self.patch_in_writer(tenant, call, ctx, true).await? {
                return Ok(done);
            }
        }
        if document {
            for _ in 0..directory::PATCH_PLAN_ATTEMPTS {
                let (tenant, id, expected) = (*tenant, call.id.to_owned(), call.expected_version);
                // The row and its side-table values: the writer checks the version, which
                // moves with every write of either.
                // A large User's side-table values too, so that the writer does not read and
                // compare thousands of rows (for a small one that costs less than a query).
                let (row, values) = self
                    .readers
                    .read(move |conn| {
                        let found = read::find_row_served(conn, tenant, kind, &id)?;
                        let row = write::checked(found, kind, &id, expected)?;
                        let values = match row.doc.len() > directory::HEAVY_PATCH_BYTES {
                            true => Some(write::stored_values(conn, row.rid)?),
                            false => None,
                        };
                        Ok((row, values))
                    })
                    .await?;
                let stored = write::parse(&row.doc)?;
                let apply = || patching.document(&stored);
                let applied = if patching.is_heavy(row.doc.len()) {
                    conn::off_the_runtime(apply)
                } else {
                    apply()
                };
                let prepared = match applied? {
                    DocumentPatch::Replace(prepared) => prepared,
                    DocumentPatch::Unchanged => {
                        // As read: the row came with its `groups`.
                        let (version, at) = (row.version, document::from_nanos(row.modified_ns));
                        let groups = read::groups_read_with(&row)?;
                        return Ok(PatchResult {
                            resource: read::user_with(row, stored, groups, version, at),
                            changed: false,
                        });
                    }
                };
                // The next version is known (the writer writes it only if the User is still at
                // this one), so its document is made and serialised here too: the writer only
                // compares a version and writes rows.
                let at = document::now();
                let next = directory::next_version(
                    kind,
                    &row.id,
                    row.version,
                    row.created_ns,
                    at,
                    &prepared.body,
                );
                let doc = serde_json::to_string(&next.document).map_err(StoreError::backend)?;
                let changes =
                    values.map(|old| document::ValueChanges::between(old, &prepared.index.values));
                let (version, ctx) = (next.version, ctx.clone());
                let (row, written) = self
                    .write_env(tenant, ctx.window.clone(), move |conn, env| {
                        let next = write::NextDocument {
                            version,
                            at,
                            doc: &doc,
                            values: changes.as_ref(),
                        };
                        let written = write::write_planned_patch(
                            conn, env, tenant, &row, &prepared, &next, &ctx,
                        )?;
                        let groups = match written {
                            true => Some(read::groups_of(conn, row.rid)?),
                            false => None,
                        };
                        Ok((row, groups))
                    })
                    .await?;
                if let Some(groups) = written {
                    return Ok(PatchResult {
                        resource: read::user_with(row, next.document, groups, version, at),
                        changed: true,
                    });
                }
            }
        }
        self.patch_in_writer(tenant, call, ctx, false)
            .await?
            .ok_or_else(|| StoreError::backend("a PATCH applied in the writer was deferred"))
    }

    async fn delete(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
        expected_version: Option<u64>,
        ctx: &WriteContext,
    ) -> Result<()> {
        let (tenant, id, ctx) = (*tenant, id.to_owned(), ctx.clone());
        self.write_env(tenant, ctx.window.clone(), move |conn, env| {
            write::delete(conn, env, tenant, kind, &id, expected_version, &ctx)
        })
        .await
    }

    async fn query(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        query: &Query,
    ) -> Result<QueryPage> {
        let (tenant, query) = (*tenant, query.clone());
        let schemas = self.schemas_of(tenant).await?;
        let cursors = Arc::clone(&self.cursor_key);
        self.readers
            .read(move |conn| query::run(conn, &schemas.resources, &cursors, tenant, kind, &query))
            .await
    }

    async fn import(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        documents: Vec<Value>,
        ctx: &WriteContext,
    ) -> Result<ImportOutcome> {
        // Documents are checked and indexed here, on the caller's thread, so that the writer
        // only inserts.
        let schemas = self.schemas_of(*tenant).await?;
        let prepared = directory::prepare_import(documents, |document| {
            prepare_with(&schemas.resources, kind, document)
        })?;
        let (tenant, ctx) = (*tenant, ctx.clone());
        self.write_env(tenant, ctx.window.clone(), move |conn, env| {
            let at = document::now();
            // One question for the whole import instead of one per document.
            let watch = if cascade::tenant_holds_anything(conn, tenant, at.unix_seconds)? {
                write::InsertWatch::MembersAndSelf
            } else {
                write::InsertWatch::Nobody
            };
            let mut ids = Vec::with_capacity(prepared.len());
            for (id, p) in &prepared {
                write::insert_resource(conn, env, tenant, kind, id, p, at, watch, &ctx)?;
                ids.push(id.clone());
            }
            Ok(ImportOutcome { ids })
        })
        .await
    }

    async fn events(
        &self,
        tenant: &TenantId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<ChangeEvent>> {
        let tenant = *tenant;
        self.readers
            .read(move |conn| read::events(conn, tenant, after_seq, limit))
            .await
    }
}
