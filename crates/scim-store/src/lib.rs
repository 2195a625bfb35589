#![doc = include_str!("../README.md")]

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
