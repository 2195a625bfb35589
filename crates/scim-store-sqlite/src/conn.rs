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
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
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
    Ok(conn)
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

/// A small pool of read-only connections. In WAL mode readers never block the writer nor each
/// other, and each read transaction sees one consistent snapshot.
pub(crate) struct ReadPool {
    path: PathBuf,
    options: SqliteOptions,
    idle: Mutex<Vec<Connection>>,
}

impl ReadPool {
    pub(crate) fn new(path: PathBuf, options: SqliteOptions) -> ReadPool {
        ReadPool {
            path,
            options,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `work` on a pooled connection without stalling the async runtime.
    ///
    /// A point read takes a few microseconds of SQLite work, far less than handing it to
    /// another thread and waking the caller back. So on a multi-threaded runtime the read runs
    /// right here on the worker, like any other CPU work of the request: no hand-off, no
    /// context switch, no extra thread. (It used to run inside `block_in_place`, which hands
    /// the worker's core to a blocking-pool thread on every read; under the load benchmark that
    /// kept a dozen threads runnable on one CPU, doubled the page-of-100 p99 and, with one
    /// allocator heap per thread, tripled peak RSS.) A long query occupies its worker only:
    /// the runtime's other workers steal the tasks queued behind it. A current-thread runtime
    /// has no other worker, and there the read goes to the blocking pool; outside any runtime
    /// it simply runs.
    pub(crate) async fn read<T, F>(self: &Arc<Self>, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => self.with(work),
            Ok(_) => {
                let pool = Arc::clone(self);
                tokio::task::spawn_blocking(move || pool.with(work))
                    .await
                    .map_err(|e| StoreError::backend_error("read task failed", e))?
            }
            Err(_) => self.with(work),
        }
    }

    fn with<T>(&self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        let conn = match conn {
            Some(conn) => conn,
            None => open_connection(&self.path, &self.options, false)?,
        };
        let result = work(&conn);
        if let Ok(mut idle) = self.idle.lock() {
            if idle.len() < self.options.max_idle_readers {
                idle.push(conn);
            }
        }
        result
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

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
        let kept: Vec<i64> = writer
            .write(|conn| {
                let mut statement = conn.prepare("SELECT v FROM t ORDER BY v").sql()?;
                let rows = statement.query_map([], |r| r.get(0)).sql()?;
                rows.collect::<std::result::Result<_, _>>().sql()
            })
            .await
            .unwrap();
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
        let kept: Vec<i64> = writer
            .write(|conn| {
                let mut statement = conn.prepare("SELECT v FROM t ORDER BY v").sql()?;
                let rows = statement.query_map([], |r| r.get(0)).sql()?;
                rows.collect::<std::result::Result<_, _>>().sql()
            })
            .await
            .unwrap();
        assert_eq!(kept, vec![1], "only the write whose caller waited was kept");
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
