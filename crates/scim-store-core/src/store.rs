//! The storage trait.

use crate::error::Result;
use crate::schemas::TenantSchemas;
use crate::types::{
    ChangeEvent, ImportOutcome, IssuedToken, Members, PatchCall, PatchResult, Query, QueryPage,
    ResourceKind, StoredResource, Tenant, TenantDeletion, TenantId, TokenInfo, TokenScope,
    WriteContext,
};
use async_trait::async_trait;
use serde_json::Value;
use std::sync::Arc;

/// A SCIM resource store (RFC 7643, RFC 7644): tenants, their API tokens, their resources and
/// their change feed. Dyn-compatible: the server holds an `Arc<dyn Store>` chosen at start-up.
///
/// Every resource method takes the [`TenantId`] first and sees only that tenant's data.
/// Writes are durable when they return `Ok`, and each committed change appends exactly one
/// [`ChangeEvent`] in the same transaction.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ---- tenants and tokens -----------------------------------------------------------------

    /// Creates a tenant named `name` (`[a-z0-9-]{1,63}`).
    async fn create_tenant(&self, name: &str) -> Result<Tenant>;

    /// The tenant named `name`, if any.
    async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>>;

    /// Every tenant, by name.
    async fn list_tenants(&self) -> Result<Vec<Tenant>>;

    /// Whether the store can serve requests: it answers a read and accepts a write. A
    /// readiness probe asks this, so that a store whose writes are stuck is taken out of
    /// rotation instead of reported ready. The default reads; a backend with machinery of its
    /// own on the write path (SQLite's writer thread) checks that too, writing nothing.
    async fn check_ready(&self) -> Result<()> {
        self.tenant_by_name("readyz-probe").await.map(drop)
    }

    /// Deletes the tenant and everything it holds, in one transaction: its tokens (a
    /// revocation effective for the very next request), users, groups, memberships, change
    /// feed, and workplace data (places, policies, bookings, assignments). The name becomes
    /// free again; the tenant's handle never comes back (a new tenant of the same name gets a
    /// new one). Irreversible: no event survives to record it, so operators log it (the CLI
    /// prints what it removed). Fails with [`crate::StoreError::TenantNotFound`] if there is
    /// no such tenant.
    async fn delete_tenant(&self, tenant: &TenantId) -> Result<TenantDeletion>;

    /// Issues a bearer token for `tenant`. The secret is returned once and stored only as its
    /// SHA-256 digest (a 256-bit random secret needs no slow key-derivation function).
    async fn issue_token(
        &self,
        tenant: &TenantId,
        label: &str,
        scope: TokenScope,
    ) -> Result<IssuedToken>;

    /// The tenant and token a bearer secret belongs to, or `None` if it is unknown or revoked.
    /// Nothing is cached: a revocation is effective for the very next call.
    async fn authenticate(&self, secret: &str) -> Result<Option<(Tenant, TokenInfo)>>;

    /// The tenant's tokens (revoked ones included), oldest first.
    async fn list_tokens(&self, tenant: &TenantId) -> Result<Vec<TokenInfo>>;

    /// Revokes a token; `false` if the tenant has no such token or it was already revoked.
    async fn revoke_token(&self, tenant: &TenantId, token_id: &str) -> Result<bool>;

    // ---- a tenant's schemas -------------------------------------------------------------------

    /// The schemas the tenant is served: the store's base schemas with the tenant's own
    /// documents ([`crate::schemas`]). Cached; a backend reads the tenant's schema version with
    /// every token it authenticates, so a change made elsewhere is served from the next
    /// authenticated request.
    async fn tenant_schemas(&self, tenant: &TenantId) -> Result<Arc<TenantSchemas>>;

    /// Replaces the tenant's schema documents (RFC 7643 section 7 form; an array counts as its
    /// items) with `documents`, all or nothing: a document that does not apply, or a change
    /// that a workplace policy rule depends on, is [`crate::StoreError::Invalid`] or
    /// [`crate::StoreError::Schema`] naming it ([`crate::schemas::plan_change`]). An empty
    /// list removes them. Stored values of an attribute removed this way stay in the
    /// documents, no longer served nor matched. Returns what the tenant is now served.
    async fn set_tenant_schemas(
        &self,
        tenant: &TenantId,
        documents: Vec<Value>,
    ) -> Result<Arc<TenantSchemas>>;

    // ---- resources --------------------------------------------------------------------------

    /// Creates a resource from `document` (RFC 7644 section 3.3), which the server has already
    /// validated against the schema. The store assigns `id` (a UUID), `meta` and version 1;
    /// `id`, `meta` and the read-only derived attributes in `document` are ignored. A Group's
    /// `members` become membership rows (each `value` must be the id of a resource of the
    /// tenant).
    async fn create(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        document: Value,
        ctx: &WriteContext,
    ) -> Result<StoredResource>;

    /// The resource `id` of type `kind` (RFC 7644 section 3.4.1), or `None`.
    async fn get(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
        members: Members,
    ) -> Result<Option<StoredResource>>;

    /// Replaces the resource's attributes with `document` (RFC 7644 section 3.5.1), if its
    /// version is `expected_version` (when given). A replacement that changes nothing keeps
    /// the version and `meta.lastModified`.
    async fn replace(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
        document: Value,
        expected_version: Option<u64>,
        ctx: &WriteContext,
    ) -> Result<StoredResource>;

    /// Patches the resource `call.kind`/`call.id` (RFC 7644 section 3.5.2), if its version is
    /// `call.expected_version` (when given): reads it, applies `call.request` with scim-patch
    /// under `call.settings`, validates the result and writes it, in one transaction. A Group's
    /// membership changes are applied to the membership rows as a delta, so adding or removing
    /// k members costs O(k) whatever the group's size. A patch that changes nothing keeps the
    /// version and `meta.lastModified`. The returned resource carries a Group's members as
    /// `call.members` asks.
    async fn patch(
        &self,
        tenant: &TenantId,
        call: PatchCall<'_>,
        ctx: &WriteContext,
    ) -> Result<PatchResult>;

    /// Deletes the resource (RFC 7644 section 3.6), if its version is `expected_version`
    /// (when given). Deleting a User or a Group also removes it from every group.
    async fn delete(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
        expected_version: Option<u64>,
        ctx: &WriteContext,
    ) -> Result<()>;

    /// Lists resources of `kind` (RFC 7644 section 3.4.2): filter, sort, page.
    async fn query(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        query: &Query,
    ) -> Result<QueryPage>;

    /// Imports many resources in one transaction: all of them or none. Each document is
    /// treated as by [`Store::create`], except that an `id` it carries is kept (so that a
    /// directory migrated from another SCIM server keeps the ids its identity provider knows).
    /// Groups must be imported after the resources they contain.
    async fn import(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        documents: Vec<Value>,
        ctx: &WriteContext,
    ) -> Result<ImportOutcome>;

    // ---- change feed ------------------------------------------------------------------------

    /// Up to `limit` events of the tenant with a sequence number above `after_seq`, in order.
    async fn events(
        &self,
        tenant: &TenantId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<ChangeEvent>>;
}
