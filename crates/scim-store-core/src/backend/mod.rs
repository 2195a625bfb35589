//! For backend authors: what every storage backend shares, so that the SQLite and PostgreSQL
//! stores (and yours) decide nothing on their own.
//!
//! A backend only loads and writes. The decisions live here and in the plans
//! ([`document`](crate::document) for what a resource becomes when stored,
//! [`workplace::plan`](crate::workplace::plan) for the workplace cascades): a backend loads
//! what a plan needs, calls it, and writes what it returns.
//!
//! - [`sql`]: the filter-to-SQL walk (a backend supplies its dialect's leaves) and the query
//!   helpers around it (sort values, signed cursors).
//! - [`token`]: bearer secrets as every backend issues and checks them (generation, digests,
//!   tenant names).
//! - [`tenant_id`]: the one way a backend makes a [`TenantId`].

pub mod sql;
pub mod token;

use crate::TenantId;

/// Wraps a backend's own key for a tenant row as a [`TenantId`].
///
/// The invariant the whole store rests on: **only a store makes a `TenantId`**, and only for a
/// tenant it holds (when it creates one, looks one up by name, or authenticates a bearer token),
/// so that a resource call that forgets or forges its tenant cannot be written. The server and
/// embedders never call this; a backend calls it only with a key it has just read from, or
/// written to, its tenants table.
pub fn tenant_id(key: i64) -> TenantId {
    TenantId::from_key(key)
}
