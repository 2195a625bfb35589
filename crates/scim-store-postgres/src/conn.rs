//! Connections: how the store gets one and runs a unit of work on it, and what a driver's error
//! becomes for the store's callers.
//!
//! Here: the pool's set-up checks, the error a step fails with ([`Fail`], [`PgResult`]), and
//! the `in_transaction!`, `with_client!` and `in_snapshot!` macros, which retry transient
//! failures.

use super::tls;
use scim_store_core::{Result, StoreError};
use std::time::Duration;
use tokio_postgres::error::SqlState;

/// Why a step of a transaction failed: a store-level refusal, or the database's error, whose
/// SQLSTATE decides whether the transaction is retried.
#[derive(Debug)]
pub(crate) enum Fail {
    /// A refusal of the store's own (not found, version mismatch...): returned as is.
    Store(StoreError),
    /// The database's error.
    Pg(tokio_postgres::Error),
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Self {
        Fail::Store(e)
    }
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Self {
        Fail::Pg(e)
    }
}

impl From<deadpool_postgres::PoolError> for Fail {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        // A TLS failure opening a connection is told in words (untrusted certificate, host
        // name mismatch, no TLS on the server), not as "error performing TLS handshake".
        if let deadpool_postgres::PoolError::Timeout(deadpool_postgres::TimeoutType::Wait) = e {
            // Every connection is busy, and none came back within the pool's wait: a burst,
            // or slow queries holding them. The next attempt may find one.
            return Fail::Store(StoreError::Timeout(
                "no database connection became free within the store's pool wait timeout".into(),
            ));
        }
        let tls = match &e {
            deadpool_postgres::PoolError::Backend(pg) => tls::describe_connect_error(pg),
            _ => None,
        };
        Fail::Store(match tls {
            Some(described) => StoreError::backend(described),
            None => StoreError::backend_error("postgres pool", e),
        })
    }
}

/// The result of a step inside a transaction.
pub(crate) type PgResult<T> = std::result::Result<T, Fail>;

impl Fail {
    pub(crate) fn code(&self) -> Option<&SqlState> {
        match self {
            Fail::Pg(e) => e.code(),
            Fail::Store(_) => None,
        }
    }

    /// The error the caller sees. A unique violation that survived the retry (whose pre-check
    /// would have named the attribute) is named from the index that refused it.
    pub(crate) fn into_store(self) -> StoreError {
        match self {
            Fail::Store(e) => e,
            Fail::Pg(e) => {
                let Some(db) = e.as_db_error() else {
                    return StoreError::backend_error("postgres", e);
                };
                let constraint = db.constraint().unwrap_or_default();
                if *db.code() == SqlState::UNIQUE_VIOLATION {
                    let attribute = match constraint {
                        "resources_user_name" => "userName",
                        "resources_id" => "id",
                        "tenants_name_key" => {
                            return StoreError::TenantExists(db.detail().unwrap_or("").to_owned());
                        }
                        _ => "a unique attribute",
                    };
                    return StoreError::Uniqueness {
                        attribute: attribute.to_owned(),
                        value: db.detail().unwrap_or("").to_owned(),
                    };
                }
                if *db.code() == SqlState::QUERY_CANCELED {
                    // The connection's statement_timeout (PostgresOptions::statement_timeout),
                    // or an operator's pg_cancel_backend: nothing was kept. The client is told
                    // which, not the database's words.
                    return StoreError::Timeout(
                        if db.message().contains("statement timeout") {
                            "the query ran past the database's statement timeout"
                        } else {
                            "the database cancelled the query"
                        }
                        .into(),
                    );
                }
                if *db.code() == SqlState::DISK_FULL {
                    return StoreError::StorageFull(format!("postgres: {}", db.message()));
                }
                if *db.code() == SqlState::FOREIGN_KEY_VIOLATION {
                    return StoreError::invalid_value(format!(
                        "a resource this write refers to was deleted concurrently ({constraint})"
                    ));
                }
                StoreError::backend(format!(
                    "postgres: {} (SQLSTATE {}){}",
                    db.message(),
                    db.code().code(),
                    db.detail().map(|d| format!(": {d}")).unwrap_or_default()
                ))
            }
        }
    }
}

/// Runs `$body` (an expression awaiting to a `PgResult`, which may use the transaction `$tx`)
/// in a transaction, committing it on success, retrying it on the transient failures the
/// module documentation lists.
macro_rules! in_transaction {
    ($store:expr, |$tx:ident| $body:expr) => {
        in_transaction!($store, window: &scim_store_core::WriteWindow::default(), |$tx| $body)
    };
    ($store:expr, window: $window:expr, |$tx:ident| $body:expr) => {{
        let store: &PostgresStore = $store;
        let window: &scim_store_core::WriteWindow = $window;
        let mut attempt: u32 = 0;
        let mut unique_retried = false;
        loop {
            let outcome: PgResult<_> = async {
                let mut client = store.pool.get().await?;
                // Started only while the caller still waits (see `WriteWindow`), and counted
                // as running until committed or failed, so that a caller past its deadline
                // waits for the answer instead of reporting a failure while it commits.
                let _running = window.enter().ok_or_else(|| {
                    StoreError::Cancelled("its request had run out of time".into())
                })?;
                let $tx = client.transaction().await?;
                let value = $body.await?;
                $tx.commit().await?;
                Ok(value)
            }
            .await;
            match outcome {
                Ok(value) => break Ok(value),
                Err(fail) => {
                    let code = fail.code();
                    let transient = code == Some(&SqlState::T_R_SERIALIZATION_FAILURE)
                        || code == Some(&SqlState::T_R_DEADLOCK_DETECTED);
                    let unique = code == Some(&SqlState::UNIQUE_VIOLATION) && !unique_retried;
                    if (transient && attempt < store.options.max_retries) || unique {
                        unique_retried |= unique;
                        attempt += 1;
                        backoff(attempt).await;
                        continue;
                    }
                    break Err(fail.into_store());
                }
            }
        }
    }};
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

/// Sleeps a little before retry `attempt`: exponential, with jitter so that the transactions
/// that collided do not collide again.
pub(crate) async fn backoff(attempt: u32) {
    let mut jitter = [0u8; 2];
    let _ = getrandom::fill(&mut jitter);
    let base = 1u64 << attempt.min(7);
    let micros = base * 500 + u64::from(u16::from_le_bytes(jitter)) % (base * 500);
    tokio::time::sleep(Duration::from_micros(micros)).await;
}

/// Runs `$body` (which may use the client `$client`) on a pooled connection.
macro_rules! with_client {
    ($store:expr, |$client:ident| $body:expr) => {{
        let store: &PostgresStore = $store;
        let outcome: PgResult<_> = async {
            let $client = store.pool.get().await?;
            $body.await
        }
        .await;
        outcome.map_err(Fail::into_store)
    }};
}

/// Runs `$body` in a read-only `REPEATABLE READ` transaction: one snapshot for the count, the
/// page and the rows of a query.
macro_rules! in_snapshot {
    ($store:expr, |$tx:ident| $body:expr) => {{
        let store: &PostgresStore = $store;
        let outcome: PgResult<_> = async {
            let mut client = store.pool.get().await?;
            let $tx = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await?;
            let value = $body.await?;
            $tx.commit().await?;
            Ok(value)
        }
        .await;
        outcome.map_err(Fail::into_store)
    }};
}

/// A schema name safe to put in the connection's options unquoted.
pub(crate) fn check_schema_name(name: &str) -> Result<()> {
    let mut bytes = name.bytes();
    let ok = name.len() <= 63
        && bytes
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(StoreError::backend(format!(
            "schema name {name:?} must be 1 to 63 characters of a-z, 0-9 and '_', not starting \
             with a digit"
        )))
    }
}
