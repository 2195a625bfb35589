#![doc = include_str!("../README.md")]
//!
//! # What a store guarantees
//!
//! Everything is scoped to a tenant. A [`TenantId`] can only be obtained from a store (by
//! creating a tenant, looking one up by name, or authenticating a bearer token), so a call that
//! forgets or forges its tenant does not compile.
//!
//! What a store guarantees, whatever the backend:
//!
//! - **Versions** (RFC 7644 section 3.14): every resource carries a monotonic version, served as
//!   the weak entity tag `W/"n"` in `meta.version`. A write with an expected version that does not
//!   match fails with [`StoreError::VersionMismatch`] (HTTP 412). A write that changes nothing
//!   keeps the version and `meta.lastModified`, and records no event.
//! - **Uniqueness** (RFC 7643 section 4.1 and section 7): `userName` is unique per tenant,
//!   compared after [`scim_schema::fold_case`]; so is every attribute marked `uniqueness: server`
//!   (or `global`). Conflicts are [`StoreError::Uniqueness`] (409 `uniqueness`), also under
//!   concurrent writes.
//! - **Membership** (RFC 7643 section 4.2): group members are rows, not a JSON array, so adding
//!   or removing k members costs O(k) whatever the group's size; a user's `groups` attribute is
//!   derived from them.
//! - **Change feed**: every committed change appends a [`ChangeEvent`] with a per-tenant
//!   sequence number in the same transaction; a rolled-back change leaves none.
//! - **Queries** (RFC 7644 section 3.4.2): filters select exactly what the scim-filter evaluator
//!   selects; sorting (section 3.4.2.3), index paging (section 3.4.2.4) and cursor paging
//!   (RFC 9865).
//!
//! The behaviour test kit that proves a backend keeps these promises is the `scimd-store-testkit`
//! crate.

mod error;
mod store;
mod types;

pub mod admin;
pub mod backend;
pub mod document;
pub mod plan;
pub mod schemas;
pub mod workplace;

pub use admin::AdminStore;
pub use document::ResourceLimits;
pub use error::{Result, StoreError};
pub use schemas::TenantSchemas;
pub use store::Store;
pub use types::{
    ChangeEvent, ChangeOp, ImportOutcome, IssuedToken, Members, PageBudget, Paging, PatchCall,
    PatchResult, PatchSettings, Query, QueryPage, ResourceKind, ResourceSchemas, SortOrder,
    StoredResource, Tenant, TenantDeletion, TenantId, TokenInfo, TokenScope, WriteContext,
    WriteRunning, WriteWindow,
};
pub use workplace::WorkplaceStore;
