//! Connections: how the store gets one and runs a unit of work on it, and what a driver's error
//! becomes for the store's callers.
//!
//! Here: how each connection is configured, the single writer thread with group commit, the
//! pool of readers, and [`SqlResult`].

use super::{Durability, SqliteOptions};
use rusqlite::functions::FunctionFlags;
use rusqlite::{Connection, OpenFlags};
use scim_schema::fold_case;
use scim_store_core::{Result, StoreError, WriteRunning, WriteWindow};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// What a SQLite failure is to the store's callers. (A `From` impl would be neater, but neither
/// `StoreError` nor `rusqlite::Error` is this crate's: the orphan rule leaves a function.)
pub(crate) fn store_error(e: rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        // SQLITE_FULL: the file system (or max_page_count) has no room for the write. The
        // transaction is rolled back whole; reads go on, and writes succeed once there is
        // room again.
        Some(rusqlite::ErrorCode::DiskFull) => StoreError::StorageFull(format!("sqlite: {e}")),
        _ => StoreError::backend_error("sqlite", e),
    }
}

/// `.sql()?` turns a rusqlite result into the store's (see [`store_error`]).
pub(crate) trait SqlResult<T> {
    /// The result, with a SQLite failure as a [`StoreError`].
    fn sql(self) -> Result<T>;
}

impl<T> SqlResult<T> for rusqlite::Result<T> {
    fn sql(self) -> Result<T> {
        self.map_err(store_error)
    }
}

/// Opens and configures one connection. Every connection gets the busy timeout, so that a
/// reader meeting a checkpoint, or a second process, waits instead of failing with
/// `SQLITE_BUSY` ("database is locked").
pub(crate) fn open_connection(
    path: &Path,
    options: &SqliteOptions,
    write: bool,
) -> Result<Connection> {
    let flags = if write && options.create_if_missing {
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
    } else if write {
        // Should the file vanish after the check, SQLite fails instead of creating it.
        OpenFlags::SQLITE_OPEN_READ_WRITE
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    } | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).sql()?;
    conn.busy_timeout(options.busy_timeout).sql()?;
    if write {
        let mode: String = conn
            .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
            .sql()?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::backend(format!(
                "{}: cannot use WAL journal mode (got {mode}); is it on a network file system?",
                path.display()
            )));
        }
    }
    let synchronous = match options.durability {
        Durability::Full => "FULL",
        Durability::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous).sql()?;
    conn.pragma_update(None, "foreign_keys", true).sql()?;
    conn.pragma_update(None, "cache_size", -options.cache_kib)
        .sql()?;
    conn.pragma_update(None, "temp_store", "MEMORY").sql()?;
    conn.set_prepared_statement_cache_capacity(64);
    // The query planner stability guarantee: a cached statement keeps its plan whatever values
    // are bound. Without it, this build of SQLite (with STAT4) marks a statement whose plan
    // could depend on a bound value, e.g. `LIMIT ?`, as expired at every re-bind, and re-parses
    // it at every execution: measured at a fifth of a `userName eq` query.
    conn.set_db_config(
        rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
        true,
    )
    .sql()?;
    register_functions(&conn)?;
    attach_log(&conn, path, write)?;
    Ok(conn)
}

/// The file of the provisioning log beside the database: `scimd.db` keeps its log in
/// `scimd.db-log`. `None` for a database that is not a file.
pub(crate) fn log_path(path: &Path) -> Option<std::path::PathBuf> {
    crate::files::is_plain_file(path).then(|| {
        let mut name = path.as_os_str().to_owned();
        name.push("-log");
        std::path::PathBuf::from(name)
    })
}

/// Attaches the provisioning log (`scim_store_core::admin`) as schema `log`: its own file, so
/// that the log's steady writes never invalidate the directory readers' page caches (a write to
/// a database file makes every reader of it start its next transaction with an empty cache;
/// with the log in the main file, every batch of log entries did that, and GET throughput fell
/// by a fifth). Its writes need not survive a power loss (`synchronous = NORMAL`: a log entry
/// lost in a crash is acceptable, a directory write is not). A database that is not a file
/// gets an in-memory log.
fn attach_log(conn: &Connection, path: &Path, write: bool) -> Result<()> {
    let target = match log_path(path) {
        Some(log) if write => log.display().to_string(),
        Some(log) => format!("file:{}?mode=ro", log.display()),
        None => ":memory:".to_owned(),
    };
    conn.execute("ATTACH DATABASE ?1 AS log", [target]).sql()?;
    if write {
        let mode: String = conn
            .pragma_update_and_check(Some("log"), "journal_mode", "WAL", |r| r.get(0))
            .sql()?;
        if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
            return Err(StoreError::backend(format!(
                "{}-log: cannot use WAL journal mode (got {mode})",
                path.display()
            )));
        }
    }
    conn.pragma_update(Some("log"), "synchronous", "NORMAL")
        .sql()?;
    Ok(())
}

/// SQL functions every connection has. `scim_fold` is [`fold_case`], Unicode-aware, which
/// SQLite's `lower()` and `NOCASE` are not (they fold ASCII only).
fn register_functions(conn: &Connection) -> Result<()> {
    conn.create_scalar_function(
        "scim_fold",
        1,
        FunctionFlags::SQLITE_UTF8
            | FunctionFlags::SQLITE_DETERMINISTIC
            | FunctionFlags::SQLITE_INNOCUOUS,
        |ctx| {
            let value: Option<String> = ctx.get(0)?;
            Ok(value.map(|s| fold_case(&s).into_owned()))
        },
    )
    .sql()?;
    super::query::register_functions(conn)?;
    Ok(())
}

/// Runs heavy CPU work (a large PATCH applied, see `Patching::is_heavy`) without holding up
/// the async runtime: on a multi-threaded runtime the worker hands its queued tasks to another
/// thread first (`block_in_place`), so that other requests do not wait behind it; elsewhere it
/// simply runs.
pub(crate) fn off_the_runtime<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

// ---------------------------------------------------------------------------------------------
// The writer

/// A unit of work run on the writer connection inside the current batch's transaction.
pub(crate) trait WriteJob: Send {
    /// Runs the work; `true` if it succeeded (its changes are kept).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller once the batch's transaction is over: `commit_error` is the COMMIT's
    /// failure, if it failed (then nothing of the batch was kept).
    fn finish(self: Box<Self>, commit_error: Option<StoreError>);
}

struct Pending<T, F> {
    work: Option<F>,
    result: Option<Result<T>>,
    reply: oneshot::Sender<Result<T>>,
    /// The caller's window: the write runs only if it is open when the writer takes it.
    window: WriteWindow,
    /// Held from the start of the write until its answer is sent.
    running: Option<WriteRunning>,
}

impl<T: Send, F: FnOnce(&Connection) -> Result<T> + Send> WriteJob for Pending<T, F> {
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        // A write whose caller has stopped waiting (its request timed out, or its client
        // went away) is not run: its client was told it failed, or hears nothing, and must
        // not find it committed later.
        if self.reply.is_closed() {
            self.result = Some(Err(StoreError::Cancelled("its caller went away".into())));
            return false;
        }
        match self.window.enter() {
            Some(running) => self.running = Some(running),
            None => {
                self.result = Some(Err(StoreError::Cancelled(
                    "its request had run out of time".into(),
                )));
                return false;
            }
        }
        // A panic in one write (a bug) fails that write alone: its savepoint is rolled back and
        // the writer thread goes on serving every other write. Unwinding out of the closure
        // leaves nothing half-done that matters: the closure owns its state, and the
        // connection's transaction state is reset by the rollback.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(conn)))
            .unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_default();
                Err(StoreError::backend(format!("the write panicked: {what}")))
            });
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit_error: Option<StoreError>) {
        let answer = match (commit_error, self.result) {
            (Some(e), Some(Ok(_)) | None) => Err(e),
            (None, None) => Err(StoreError::backend("write was not run")),
            (_, Some(result)) => result,
        };
        // The caller may have gone away since the write started (its client disconnected);
        // the write stands regardless. A caller past its deadline waits for this answer
        // (`WriteWindow::close`), so only `self.running`'s drop, after the send, releases it.
        let _ = self.reply.send(answer);
        drop(self.running);
    }
}

/// The handle on the writer thread: the only place that writes to the database, so writes
/// never contend for SQLite's lock.
pub(crate) struct Writer {
    queue: Mutex<Option<mpsc::Sender<Box<dyn WriteJob>>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

/// The most writes committed in one transaction: bounds the latency a batch adds to its first
/// write, and the memory a batch holds.
const MAX_BATCH: usize = 512;

impl Writer {
    pub(crate) fn start(conn: Connection) -> Result<Writer> {
        conn.execute_batch(super::write::TRIGRAM_CHANGES).sql()?;
        let (tx, rx) = mpsc::channel::<Box<dyn WriteJob>>();
        let thread = std::thread::Builder::new()
            .name("scim-store-writer".into())
            .spawn(move || run_writer(conn, rx))
            .map_err(|e| StoreError::backend_error("cannot start the writer thread", e))?;
        Ok(Writer {
            queue: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Runs `work` in the writer's next transaction and answers once it is committed (and so
    /// durable to the configured [`Durability`]).
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        self.write_in(WriteWindow::default(), work).await
    }

    /// [`Writer::write`], if `window` is still open when the writer takes the job
    /// ([`StoreError::Cancelled`] if not, and nothing runs).
    pub(crate) async fn write_in<T, F>(&self, window: WriteWindow, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn WriteJob> = Box::new(Pending {
            work: Some(work),
            result: None,
            reply,
            window,
            running: None,
        });
        {
            let queue = self
                .queue
                .lock()
                .map_err(|_| StoreError::backend("writer queue poisoned"))?;
            let Some(queue) = queue.as_ref() else {
                return Err(StoreError::backend("the store is closed"));
            };
            queue
                .send(job)
                .map_err(|_| StoreError::backend("the writer thread has stopped"))?;
        }
        answer
            .await
            .map_err(|_| StoreError::backend("the writer thread stopped before answering"))?
    }

    /// Stops accepting writes, lets the writer finish the queued ones, and waits for it.
    pub(crate) fn close(&self) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.take();
        }
        if let Ok(mut thread) = self.thread.lock() {
            if let Some(handle) = thread.take() {
                let _ = handle.join();
            }
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.close();
    }
}

/// The writer loop: take every queued write (group commit), run each in its own savepoint so
/// that one failing write (a uniqueness conflict, a version mismatch) rolls back alone, commit
/// once, then answer everyone. Acknowledging only after COMMIT is what makes an acknowledged
/// write durable.
fn run_writer(conn: Connection, rx: mpsc::Receiver<Box<dyn WriteJob>>) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Whatever panics outside the jobs (the batch's own statements) must not end the
        // thread either: the batch's callers are answered with an error (their reply channels
        // are dropped), the open transaction is rolled back, and the next batch starts clean.
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_batch(&conn, batch)));
        if outcome.is_err() && !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
    // The queue is closed and every write committed: copy the whole log into the database file
    // and empty it, so that after a clean stop the `.db` file alone is the database (a backup
    // copying only it, or a copy that loses the `-wal`, loses nothing). Closing the last
    // connection would not do it here: the readers' read-only connections may outlive the
    // writer, and a read-only connection never checkpoints. Idle readers hold no snapshot, so
    // the checkpoint does not wait for them; on failure the log simply stays, as after a crash.
    let _ = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
}

fn run_batch(conn: &Connection, mut batch: Vec<Box<dyn WriteJob>>) {
    let fail = |batch: Vec<Box<dyn WriteJob>>, error: StoreError| {
        for job in batch {
            job.finish(Some(error.for_each_write()));
        }
    };
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        return fail(batch, store_error(e));
    }
    // The savepoint machinery itself failing (not a job failing) dooms the whole batch.
    if let Some(e) = batch
        .iter_mut()
        .find_map(|job| run_in_savepoint(conn, job.as_mut()).err())
    {
        let _ = conn.execute_batch("ROLLBACK");
        return fail(batch, e);
    }
    // Derived indexes maintained once per batch, inside its transaction.
    if let Err(e) = super::write::flush_trigrams(conn) {
        let _ = conn.execute_batch("ROLLBACK");
        return fail(batch, e);
    }
    match conn.execute_batch("COMMIT") {
        Ok(()) => batch.into_iter().for_each(|job| job.finish(None)),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            fail(batch, store_error(e));
        }
    }
}

fn run_in_savepoint(conn: &Connection, job: &mut dyn WriteJob) -> Result<()> {
    conn.execute_batch("SAVEPOINT job").sql()?;
    let ok = job.run(conn);
    conn.execute_batch(if ok {
        "RELEASE job"
    } else {
        "ROLLBACK TO job; RELEASE job"
    })
    .sql()?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The readers

/// How long a read may run on the async worker that asked for it before it is interrupted
/// and run again on the pool for long reads ([`SqliteOptions::long_reads`]). A point read or
/// an indexed page takes microseconds to a millisecond, far below it, and keeps the fast path
/// (no hand-off to another thread: see [`ReadPool::read`]); a read that sorts or filters
/// thousands of documents takes hundreds of milliseconds, and would hold the worker, and every
/// task queued on it (`/healthz` included), that long. Five milliseconds bounds what one
/// read can stall a worker, while the work a long read repeats is at most this much.
pub(crate) const INLINE_BUDGET: Duration = Duration::from_millis(5);

/// How many SQLite virtual-machine instructions run between two looks of a reader's progress
/// handler at its read's limits. An instruction takes nanoseconds, so a look every 200 costs a
/// few percent of nothing (a clock read), and stops a scan within microseconds; the SQL
/// functions that parse a document per row (`scim_sort`, `scim_match`) look too, so a row of
/// a megabyte does not stretch that.
const PROGRESS_OPS: std::os::raw::c_int = 200;

/// Why a read's progress handler stopped it.
const RUNNING: u8 = 0;
const PAST_DEADLINE: u8 = 1;
const CANCELLED: u8 = 2;

/// One read's limits: a deadline (the inline budget, or the store's hard limit) and a cancel
/// flag (its caller went away). The connection running the read looks at them from its
/// progress handler, through [`CURRENT_READ`].
struct ReadControl {
    started: Instant,
    /// When the read must stop, in nanoseconds after `started` (`u64::MAX`: never).
    deadline_ns: AtomicU64,
    /// Set when the future waiting for the read is dropped.
    cancelled: AtomicBool,
    /// Why the read was stopped, if it was ([`RUNNING`]: it was not).
    stopped: AtomicU8,
}

impl ReadControl {
    fn new() -> ReadControl {
        ReadControl {
            started: Instant::now(),
            deadline_ns: AtomicU64::new(u64::MAX),
            cancelled: AtomicBool::new(false),
            stopped: AtomicU8::new(RUNNING),
        }
    }

    /// Sets the deadline of the next attempt, `after` the read started (`None`: none).
    fn set_deadline(&self, after: Option<Duration>) {
        let ns = after.map_or(u64::MAX, |d| {
            u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
        });
        self.deadline_ns.store(ns, Ordering::Relaxed);
        self.stopped.store(RUNNING, Ordering::Relaxed);
    }

    fn past_deadline(&self) -> bool {
        let deadline = self.deadline_ns.load(Ordering::Relaxed);
        deadline != u64::MAX
            && u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX) >= deadline
    }

    /// Whether the read must stop now; records why.
    fn should_stop(&self) -> bool {
        let why = if self.cancelled.load(Ordering::Relaxed) {
            CANCELLED
        } else if self.past_deadline() {
            PAST_DEADLINE
        } else {
            return false;
        };
        self.stopped.store(why, Ordering::Relaxed);
        true
    }
}

thread_local! {
    /// The limits of the read this thread is running, if any: a read runs on one thread from
    /// start to end, and its statements are stepped on that thread, where the progress
    /// handler and the SQL functions run.
    static CURRENT_READ: RefCell<Option<Arc<ReadControl>>> = const { RefCell::new(None) };
}

/// Whether the read this thread runs must stop (its deadline passed, or its caller went
/// away): what a reader's progress handler answers SQLite, and what the SQL functions that
/// parse whole documents ask before each one. `false` outside a pooled read (the writer).
pub(crate) fn read_must_stop() -> bool {
    CURRENT_READ
        .try_with(|current| current.borrow().as_ref().is_some_and(|c| c.should_stop()))
        .unwrap_or(false)
}

/// How an attempt at a read ended.
enum Attempt<T> {
    /// It ran to its end (successfully or not).
    Done(Result<T>),
    /// Its progress handler stopped it: past its deadline, or cancelled.
    Stopped(u8),
}

/// Sets a thread's [`CURRENT_READ`] for the time of one attempt, and clears it however the
/// attempt ends.
struct Current;

impl Current {
    fn set(control: &Arc<ReadControl>) -> Current {
        CURRENT_READ.with(|current| *current.borrow_mut() = Some(Arc::clone(control)));
        Current
    }
}

impl Drop for Current {
    fn drop(&mut self) {
        let _ = CURRENT_READ.try_with(|current| current.borrow_mut().take());
    }
}

/// Cancels a read on the pool for long reads when dropped before [`Cancel::disarm`]: when the
/// future awaiting the read is dropped (the server's request timeout, an HTTP/2 stream reset), the
/// query stops at the next look of its progress handler, and its connection and permit are
/// free again at once.
struct Cancel(Option<Arc<ReadControl>>);

impl Cancel {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for Cancel {
    fn drop(&mut self) {
        if let Some(control) = self.0.take() {
            control.cancelled.store(true, Ordering::Relaxed);
        }
    }
}

/// A pool of read-only connections, and the bound on reads too long for an async worker. In
/// WAL mode readers never block the writer nor each other, and each read transaction sees one
/// consistent snapshot.
pub(crate) struct ReadPool {
    path: PathBuf,
    options: SqliteOptions,
    idle: Mutex<Vec<Connection>>,
    /// One permit per long read running ([`SqliteOptions::long_reads`]).
    long_reads: Arc<tokio::sync::Semaphore>,
}

impl ReadPool {
    pub(crate) fn new(path: PathBuf, options: SqliteOptions) -> ReadPool {
        let permits = options.long_reads.max(1);
        ReadPool {
            path,
            options,
            idle: Mutex::new(Vec::new()),
            long_reads: Arc::new(tokio::sync::Semaphore::new(permits)),
        }
    }

    /// Runs `work` on a pooled connection without stalling the async runtime, and stops it
    /// when its caller goes away.
    ///
    /// A point read takes a few microseconds of SQLite work, far less than handing it to
    /// another thread and waking the caller back. So on a multi-threaded runtime the read runs
    /// first right here on the worker, like any other CPU work of the request: no hand-off, no
    /// context switch, no extra thread. (It used to run inside `block_in_place`, which hands
    /// the worker's core to a blocking-pool thread on every read; under the load benchmark that
    /// kept a dozen threads runnable on one CPU, doubled the page-of-100 p99 and, with one
    /// allocator heap per thread, tripled peak RSS.)
    ///
    /// But only for [`INLINE_BUDGET`]: a read still running then (a sort or a filter over
    /// large documents) is interrupted by its connection's progress handler, and `work` runs
    /// again from the start on the blocking pool, under one of [`SqliteOptions::long_reads`]
    /// permits (waiting for one is async, and ends if the caller goes away). Before, four
    /// concurrent sorts over large documents held both workers of a two-core server, and
    /// `/healthz` waited 1.7 s. The future awaiting a long read cancels it when dropped: the
    /// query stops within microseconds, so the server's request timeout really ends it, and
    /// its connection and permit serve the next read.
    ///
    /// A current-thread runtime has no other worker, and there every read goes to the blocking
    /// pool; outside any runtime it simply runs. [`SqliteOptions::read_timeout`], when set,
    /// stops any read (503) that long after it began.
    ///
    /// `work` may thus run twice, and must be a function of the database alone (no effects
    /// outside the connection). A read whose attempt was interrupted leaves no transaction
    /// open on its connection: it is rolled back before the connection returns to the pool.
    pub(crate) async fn read<T, F>(self: &Arc<Self>, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> Result<T> + Send + 'static,
    {
        let control = Arc::new(ReadControl::new());
        let limit = self.options.read_timeout;
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => {
                let budget = limit.map_or(INLINE_BUDGET, |limit| limit.min(INLINE_BUDGET));
                control.set_deadline(Some(budget));
                match self.attempt(&control, &work) {
                    Attempt::Done(result) => return result,
                    Attempt::Stopped(PAST_DEADLINE) if limit.is_none_or(|l| l > budget) => {}
                    Attempt::Stopped(why) => return Err(self.stopped(why)),
                }
                self.long(control, work).await
            }
            Ok(_) => self.long(control, work).await,
            Err(_) => {
                control.set_deadline(limit);
                match self.attempt(&control, &work) {
                    Attempt::Done(result) => result,
                    Attempt::Stopped(why) => Err(self.stopped(why)),
                }
            }
        }
    }

    /// Runs `work` on the blocking pool, under a long-read permit; cancelled if dropped.
    async fn long<T, F>(self: &Arc<Self>, control: Arc<ReadControl>, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: Fn(&Connection) -> Result<T> + Send + 'static,
    {
        let cancel = Cancel(Some(Arc::clone(&control)));
        let permit = Arc::clone(&self.long_reads)
            .acquire_owned()
            .await
            .map_err(|e| StoreError::backend_error("the long-read permits are closed", e))?;
        control.set_deadline(self.options.read_timeout);
        let pool = Arc::clone(self);
        let task = tokio::task::spawn_blocking(move || {
            // Held until the query has really stopped, so that the permits bound the threads
            // busy with long reads, not the callers still waiting for one.
            let _permit = permit;
            if control.should_stop() {
                return Err(pool.stopped(control.stopped.load(Ordering::Relaxed)));
            }
            match pool.attempt(&control, &work) {
                Attempt::Done(result) => result,
                Attempt::Stopped(why) => Err(pool.stopped(why)),
            }
        });
        let result = task
            .await
            .map_err(|e| StoreError::backend_error("read task failed", e))?;
        cancel.disarm();
        result
    }

    /// The error of a read its progress handler stopped.
    fn stopped(&self, why: u8) -> StoreError {
        match (why, self.options.read_timeout) {
            (PAST_DEADLINE, Some(limit)) => StoreError::Timeout(format!(
                "the read took longer than the store's limit of {} ms",
                limit.as_millis()
            )),
            _ => StoreError::Timeout("the read was stopped: its caller went away".into()),
        }
    }

    /// Runs `work` once on a pooled connection, under `control`'s limits.
    fn attempt<T>(
        &self,
        control: &Arc<ReadControl>,
        work: &impl Fn(&Connection) -> Result<T>,
    ) -> Attempt<T> {
        let conn = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match conn {
            Some(conn) => conn,
            None => match self.open_reader() {
                Ok(conn) => conn,
                Err(e) => return Attempt::Done(Err(e)),
            },
        };
        let result = {
            let _current = Current::set(control);
            work(&conn)
        };
        // An interrupted statement may leave its read transaction open (a failed COMMIT
        // too): a pooled connection must come back to the pool as it left it, or the next
        // read would see an old snapshot, or fail to BEGIN.
        let clean = conn.is_autocommit() || conn.execute_batch("ROLLBACK").is_ok();
        if clean {
            if let Ok(mut idle) = self.idle.lock() {
                if idle.len() < self.options.max_idle_readers {
                    idle.push(conn);
                }
            }
        }
        match control.stopped.load(Ordering::Relaxed) {
            RUNNING => Attempt::Done(result),
            why => Attempt::Stopped(why),
        }
    }

    /// A new read-only connection, with the progress handler that enforces its reads'
    /// limits.
    fn open_reader(&self) -> Result<Connection> {
        let conn = open_connection(&self.path, &self.options, false)?;
        conn.progress_handler(PROGRESS_OPS, Some(read_must_stop));
        Ok(conn)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    /// What table `t` holds, read through the writer.
    async fn kept_values(writer: &Writer) -> Vec<i64> {
        writer
            .write(|conn| {
                let mut statement = conn.prepare("SELECT v FROM t ORDER BY v").sql()?;
                let rows = statement.query_map([], |r| r.get(0)).sql()?;
                rows.collect::<std::result::Result<_, _>>().sql()
            })
            .await
            .unwrap()
    }

    fn writer() -> (tempfile::TempDir, Writer) {
        let dir = tempfile::tempdir().unwrap();
        let conn =
            open_connection(&dir.path().join("w.db"), &SqliteOptions::default(), true).unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        (dir, Writer::start(conn).unwrap())
    }

    #[test]
    fn a_sqlite_failure_keeps_its_error_as_the_source() {
        let conn = Connection::open_in_memory().unwrap();
        let error = store_error(conn.execute_batch("SELECT * FROM missing").unwrap_err());
        assert!(matches!(error, StoreError::Backend { .. }), "{error:?}");
        assert_eq!(error.status(), 500);
        assert!(
            error
                .to_string()
                .starts_with("storage failure: sqlite: no such table: missing"),
            "{error}"
        );
        let source = std::error::Error::source(&error).expect("the rusqlite error as the source");
        assert!(
            source.downcast_ref::<rusqlite::Error>().is_some(),
            "{source:?}"
        );
    }

    /// A write that panics (a bug) fails alone, keeps nothing, and the writer goes on: before,
    /// the panic ended the writer thread and every later write of every tenant failed.
    #[tokio::test]
    async fn a_panicking_write_fails_alone() {
        let (_dir, writer) = writer();
        let failed = writer
            .write(|conn| -> Result<()> {
                conn.execute("INSERT INTO t VALUES (1)", []).sql()?;
                panic!("a bug in one write");
            })
            .await
            .unwrap_err();
        assert!(
            failed.to_string().contains("a bug in one write"),
            "{failed}"
        );
        writer
            .write(|conn| conn.execute("INSERT INTO t VALUES (2)", []).sql())
            .await
            .unwrap();
        let kept = kept_values(&writer).await;
        assert_eq!(kept, vec![2], "the panicking write kept nothing");
    }

    /// Writes queued behind a slow one, whose caller gave up meanwhile (window closed, or the
    /// caller's future dropped), are never run; a write already running is answered.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_whose_caller_gave_up_before_it_started_never_runs() {
        let (_dir, writer) = writer();
        let writer = Arc::new(writer);
        let slow = {
            let writer = Arc::clone(&writer);
            tokio::spawn(async move {
                writer
                    .write(|conn| {
                        std::thread::sleep(std::time::Duration::from_millis(300));
                        conn.execute("INSERT INTO t VALUES (1)", []).sql()
                    })
                    .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        // Queued while the slow write runs: one whose window closes, one whose caller goes.
        let window = WriteWindow::new();
        let timed_out = {
            let (writer, window) = (Arc::clone(&writer), window.clone());
            tokio::spawn(async move {
                writer
                    .write_in(window, |conn| {
                        conn.execute("INSERT INTO t VALUES (2)", []).sql()
                    })
                    .await
            })
        };
        let abandoned = {
            let writer = Arc::clone(&writer);
            tokio::spawn(async move {
                writer
                    .write(|conn| conn.execute("INSERT INTO t VALUES (3)", []).sql())
                    .await
            })
        };
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert!(!window.close(), "the write had not started");
        abandoned.abort();
        slow.await.unwrap().unwrap();
        let refused = timed_out.await.unwrap().unwrap_err();
        assert!(matches!(refused, StoreError::Cancelled(_)), "{refused:?}");
        assert_eq!(refused.status(), 503);
        let kept = kept_values(&writer).await;
        assert_eq!(kept, vec![1], "only the write whose caller waited was kept");
    }

    /// A read pool on a fresh database holding table `t` with `n` rows.
    fn readers(n: i64, options: SqliteOptions) -> (tempfile::TempDir, Arc<ReadPool>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.db");
        let conn = open_connection(&path, &options, true).unwrap();
        conn.execute_batch("CREATE TABLE t (v INTEGER)").unwrap();
        conn.execute(
            "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < ?1) \
             INSERT INTO t SELECT x FROM s",
            [n],
        )
        .unwrap();
        (dir, Arc::new(ReadPool::new(path, options)))
    }

    /// A read that never ends by itself: counting without bound, in a read transaction.
    fn endless(conn: &Connection) -> Result<i64> {
        crate::read::in_read_transaction(conn, |conn| {
            conn.query_row(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) \
                 SELECT count(*) FROM c",
                [],
                |r| r.get(0),
            )
            .sql()
        })
    }

    /// About `n` thousand VM steps of work: a read of a few to a few hundred milliseconds.
    fn counting(n: i64) -> impl Fn(&Connection) -> Result<i64> + Send + 'static {
        move |conn: &Connection| {
            conn.query_row(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?1) \
                 SELECT count(*) FROM c",
                [n * 1000],
                |r| r.get(0),
            )
            .sql()
        }
    }

    /// A short read runs on the worker that asked for it (no hand-off); a read past the inline
    /// budget is stopped there and run again on another thread, to the same answer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn short_reads_stay_inline_and_long_ones_move_to_the_pool() {
        let (_dir, pool) = readers(10, SqliteOptions::default());
        let caller = std::thread::current().id();
        let ran_on = pool
            .read(|conn| {
                conn.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
                    .sql()?;
                Ok(std::thread::current().id())
            })
            .await
            .unwrap();
        assert_eq!(ran_on, caller, "a point read runs inline");
        let attempts = Arc::new(AtomicU64::new(0));
        let seen = Arc::clone(&attempts);
        let count = counting(2_000);
        let (n, ran_on) = pool
            .read(move |conn| {
                seen.fetch_add(1, Ordering::Relaxed);
                Ok((count(conn)?, std::thread::current().id()))
            })
            .await
            .unwrap();
        assert_eq!(n, 2_000_000);
        assert_ne!(ran_on, caller, "a long read finishes off the worker");
        assert_eq!(
            attempts.load(Ordering::Relaxed),
            2,
            "stopped inline, then run again"
        );
    }

    /// While a long read runs, the worker that asked for it serves other tasks: before, it was
    /// held for the whole read.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_long_read_does_not_hold_its_worker() {
        let (_dir, pool) = readers(10, SqliteOptions::default());
        let long = tokio::spawn({
            let pool = Arc::clone(&pool);
            async move { pool.read(counting(3_000)).await }
        });
        let mut worst = Duration::ZERO;
        while !long.is_finished() {
            let asked = Instant::now();
            tokio::time::sleep(Duration::from_millis(5)).await;
            worst = worst.max(asked.elapsed());
        }
        assert_eq!(long.await.unwrap().unwrap(), 3_000_000);
        assert!(
            worst < Duration::from_millis(50),
            "a 5 ms timer on the read's worker fired {worst:?} late"
        );
    }

    /// Dropping the future of a long read (the request timeout, a stream reset) stops its
    /// query at once: its permit and connection serve the next read. Before, it ran on.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_dropped_read_stops_and_frees_its_permit() {
        let options = SqliteOptions {
            long_reads: 1,
            max_idle_readers: 1,
            ..SqliteOptions::default()
        };
        let (_dir, pool) = readers(3, options);
        let given_up = tokio::time::timeout(Duration::from_millis(100), pool.read(endless)).await;
        assert!(given_up.is_err(), "the endless read ended: {given_up:?}");
        // The only permit is needed again: the endless read must have given it back.
        let started = Instant::now();
        let next = tokio::time::timeout(Duration::from_secs(5), pool.read(counting(1_000)))
            .await
            .expect("the next long read got the permit")
            .unwrap();
        assert_eq!(next, 1_000_000);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        // And the connection it used is clean: no read transaction left open on it.
        let rows = pool
            .read(|conn| {
                assert!(conn.is_autocommit(), "a pooled connection in a transaction");
                conn.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
                    .sql()
            })
            .await
            .unwrap();
        assert_eq!(rows, 3);
    }

    /// `read_timeout` stops any read that long after it began, with a 503 `Timeout`, on every
    /// path (inline, the pool, no runtime); the interrupted read's transaction is rolled back,
    /// so its connection serves the next read.
    #[test]
    fn the_read_timeout_stops_a_read_and_keeps_its_connection_clean() {
        let options = SqliteOptions {
            read_timeout: Some(Duration::from_millis(50)),
            max_idle_readers: 1,
            ..SqliteOptions::default()
        };
        let (_dir, pool) = readers(3, options);
        let check = |error: StoreError| {
            assert!(matches!(error, StoreError::Timeout(_)), "{error:?}");
            assert_eq!(error.status(), 503);
            assert!(error.to_string().contains("50 ms"), "{error}");
        };
        let count = |pool: &Arc<ReadPool>| {
            futures_lite(pool.read(|conn| {
                assert!(conn.is_autocommit());
                conn.query_row("SELECT count(*) FROM t", [], |r| r.get::<_, i64>(0))
                    .sql()
            }))
        };
        // No runtime: the read runs here.
        check(futures_lite(pool.read(endless)).unwrap_err());
        assert_eq!(count(&pool).unwrap(), 3);
        for runtime in [
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap(),
        ] {
            let started = Instant::now();
            check(runtime.block_on(pool.read(endless)).unwrap_err());
            assert!(started.elapsed() < Duration::from_secs(2));
            assert_eq!(runtime.block_on(pool.read(counting(1))).unwrap(), 1_000);
        }
    }

    /// Polls `future` to its end on this thread, outside any runtime (the reads here never
    /// wait on anything outside a runtime).
    fn futures_lite<T>(future: impl std::future::Future<Output = T>) -> T {
        let waker = std::task::Waker::noop();
        let mut context = std::task::Context::from_waker(waker);
        let mut future = std::pin::pin!(future);
        loop {
            if let std::task::Poll::Ready(value) = future.as_mut().poll(&mut context) {
                return value;
            }
        }
    }

    /// SQLITE_FULL is a full disk, not a storage failure: it answers 503, not 500.
    #[tokio::test]
    async fn a_full_database_is_storage_full() {
        let (_dir, writer) = writer();
        let full = writer
            .write(|conn| -> Result<()> {
                // One page more than the file holds now: the next page it needs is refused.
                let pages: i64 = conn
                    .query_row("PRAGMA page_count", [], |r| r.get(0))
                    .sql()?;
                conn.execute_batch(&format!("PRAGMA max_page_count = {pages}"))
                    .sql()?;
                for _ in 0..1000 {
                    conn.execute("INSERT INTO t VALUES (randomblob(4000))", [])
                        .sql()?;
                }
                Ok(())
            })
            .await
            .unwrap_err();
        assert!(matches!(full, StoreError::StorageFull(_)), "{full:?}");
        assert_eq!(full.status(), 503);
    }
}
