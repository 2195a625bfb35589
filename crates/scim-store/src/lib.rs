//! # scim-store
//!
//! SCIM 2.0 storage in one dependency: everything of [`scim_store_core`] (the [`Store`] and
//! [`WorkplaceStore`] traits, their types, errors and plans) re-exported at the top, with the
//! embedded SQLite store as [`sqlite`] (feature `sqlite`, on by default) and the PostgreSQL
//! store as `postgres` (feature `postgres`). A PostgreSQL-only build
//! (`default-features = false, features = ["postgres"]`) compiles no SQLite, and the default
//! build no PostgreSQL client.
//!
//! The crates behind it, for those who want only a part: `scimd-store-core` (the contract,
//! for writing a backend), `scimd-store-sqlite`, `scimd-store-postgres`, and
//! `scimd-store-testkit` (the behaviour kit every backend passes; here as `testkit` with the
//! feature of that name).

pub use scim_store_core::*;

/// The embedded SQLite store (the `scimd-store-sqlite` crate).
#[cfg(feature = "sqlite")]
pub use scim_store_sqlite as sqlite;

/// The PostgreSQL store (the `scimd-store-postgres` crate).
#[cfg(feature = "postgres")]
pub use scim_store_postgres as postgres;

/// The behaviour test kit every [`Store`] implementation must pass (the `scimd-store-testkit`
/// crate).
#[cfg(feature = "testkit")]
pub use scim_store_testkit as testkit;

#[cfg(feature = "testkit")]
pub use scim_store_testkit::{store_tests, workplace_store_tests};
