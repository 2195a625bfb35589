//! What this shows: how to write a SCIM storage backend with `scimd-store-core` alone. The
//! store keeps every tenant in a `HashMap` behind one `Mutex` (the lock is the transaction:
//! a write checks everything before it changes anything), and `tests/kit.rs` proves it with
//! the directory kit of `scimd-store-testkit`.
//!
//! What a backend does itself, and what it takes from the core:
//!
//! - tenants: the core's [`backend::tenant_id`] is the one way to make a `TenantId`, and
//!   [`backend::token`] checks tenant names and issues and digests bearer secrets;
//! - documents: [`document::prepare`] turns what a client sent into what is stored (canonical
//!   names, members split off, index entries and the values that must be unique), and
//!   [`document::assemble`] turns it back into what is served;
//! - filters: the scim-filter evaluator decides what matches (a SQL backend pushes most of it
//!   down, see `backend::sql`, and must select exactly the same);
//! - PATCH: scim-patch applies the request, scim-schema validates the result, and the result is
//!   written like a replacement;
//! - cursors: [`backend::sql::CursorKey`] signs a cursor and binds it to its tenant and query
//!   (this store draws its key at random when it is made: its cursors die with it).
//!
//! Everything else here (uniqueness, versions, memberships, sorting, paging, the change feed)
//! is the backend's own bookkeeping, and is what the kit checks.

use async_trait::async_trait;
use scim_filter::eval::{CompiledFilter, UnknownAttributes};
use scim_schema::{DateTime, fold_case};
use scim_store_core::backend::sql::{CursorKey, SortSpec, SortValue};
use scim_store_core::backend::{self, token};
use scim_store_core::document::{self, IndexEntries, Prepared};
use scim_store_core::plan::directory::{self, DocumentPatch, Patching};
use scim_store_core::schemas;
use scim_store_core::{
    ChangeEvent, ChangeOp, ImportOutcome, IssuedToken, Members, PageBudget, Paging, PatchCall,
    PatchResult, Query, QueryPage, ResourceKind, ResourceSchemas, Result, SortOrder, Store,
    StoreError, StoredResource, Tenant, TenantDeletion, TenantId, TenantSchemas, TokenInfo,
    TokenScope, WriteContext,
};
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

/// A [`Store`] that keeps everything in memory: for tests, demos, and as a template.
pub struct MemoryStore {
    schemas: ResourceSchemas,
    state: Mutex<State>,
    /// The key cursors are signed with.
    cursor_key: CursorKey,
}

/// Everything the store holds.
#[derive(Default)]
struct State {
    /// The last tenant key handed out: keys are never reused, so a deleted tenant's
    /// `TenantId` never names a new tenant.
    last_tenant_key: i64,
    tenants: HashMap<i64, Directory>,
}

/// One tenant's data. `Clone`, so that an import can work on a copy and keep it only if every
/// document went in (all or nothing).
#[derive(Clone)]
struct Directory {
    tenant: Tenant,
    /// The store's schemas with the tenant's own ([`Store::set_tenant_schemas`]).
    schemas: Arc<TenantSchemas>,
    /// Oldest first, with the digest each secret is looked up by.
    tokens: Vec<([u8; 32], TokenInfo)>,
    /// Resources of both kinds by folded id: ids are unique per tenant whatever the case, and
    /// members are resolved case-insensitively (RFC 7643 section 4.2, `value` caseExact false).
    resources: HashMap<String, Resource>,
    /// Group key -> member key -> when the member joined (a User's `groups` keep that order).
    members: HashMap<String, HashMap<String, u64>>,
    /// A counter for creation order (queries without `sortBy`) and join order.
    sequence: u64,
    events: Vec<ChangeEvent>,
}

#[derive(Clone)]
struct Resource {
    /// Creation order; also the tie-breaker that makes every sort total.
    rid: u64,
    kind: ResourceKind,
    id: String,
    version: u64,
    created: DateTime,
    last_modified: DateTime,
    /// The attributes as [`document::prepare`] left them (no `id`, `meta` or derived ones).
    body: Map<String, Value>,
    index: IndexEntries,
}

impl MemoryStore {
    /// An empty store for resources of these schemas. Fails only if the operating system's
    /// random number generator does (for the cursor key).
    pub fn new(schemas: ResourceSchemas) -> Result<Self> {
        Ok(MemoryStore {
            schemas,
            state: Mutex::new(State::default()),
            cursor_key: CursorKey::random()?,
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held cannot leave half a write behind (writes check first
        // and change after), so a poisoned lock is still consistent.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The tenant's schemas (what its documents are prepared, patched and queried with).
    fn schemas_of(&self, tenant: &TenantId) -> Result<Arc<TenantSchemas>> {
        Ok(Arc::clone(&self.lock().directory(tenant)?.schemas))
    }

    fn prepare(schemas: &ResourceSchemas, kind: ResourceKind, document: Value) -> Result<Prepared> {
        let prepared = document::prepare(kind, schemas.get(kind), document)?;
        schemas.limits().check(&prepared)?;
        Ok(prepared)
    }
}

impl State {
    fn directory(&mut self, tenant: &TenantId) -> Result<&mut Directory> {
        self.tenants
            .get_mut(&tenant.key())
            .ok_or_else(|| StoreError::TenantNotFound(tenant.to_string()))
    }
}

impl Directory {
    fn next(&mut self) -> u64 {
        self.sequence += 1;
        self.sequence
    }

    fn record(
        &mut self,
        kind: ResourceKind,
        id: &str,
        op: ChangeOp,
        version: u64,
        at: DateTime,
        ctx: &WriteContext,
    ) {
        let seq = self.events.len() as u64 + 1;
        self.events.push(ChangeEvent {
            seq,
            kind,
            id: id.to_owned(),
            op,
            version,
            at,
            actor: ctx.actor.clone(),
            request_id: ctx.request_id.clone(),
        });
    }

    /// The key of resource `id` of `kind`, if its version is `expected` (RFC 7644 section
    /// 3.14). The id must match exactly: only membership is resolved case-insensitively.
    fn current(&self, kind: ResourceKind, id: &str, expected: Option<u64>) -> Result<String> {
        let key = fold_case(id).into_owned();
        let resource = self
            .resources
            .get(&key)
            .filter(|r| r.kind == kind && r.id == id)
            .ok_or_else(|| StoreError::NotFound {
                kind,
                id: id.to_owned(),
            })?;
        match expected {
            Some(expected) if expected != resource.version => Err(StoreError::VersionMismatch {
                expected,
                actual: resource.version,
            }),
            _ => Ok(key),
        }
    }

    /// Fails if another resource of the kind (not `own`) holds `userName` or a value marked
    /// `uniqueness: server` (RFC 7643 sections 4.1 and 7).
    fn check_unique(
        &self,
        kind: ResourceKind,
        index: &IndexEntries,
        own: Option<&str>,
    ) -> Result<()> {
        let others = self
            .resources
            .iter()
            .filter(|(key, r)| r.kind == kind && Some(key.as_str()) != own)
            .map(|(_, r)| &r.index);
        for other in others {
            if let (Some(fold), Some(raw)) = (&index.user_name_fold, &index.user_name) {
                if other.user_name_fold.as_ref() == Some(fold) {
                    return Err(StoreError::Uniqueness {
                        attribute: "userName".into(),
                        value: raw.clone(),
                    });
                }
            }
            for unique in &index.unique {
                if other
                    .unique
                    .iter()
                    .any(|u| u.attribute == unique.attribute && u.key == unique.key)
                {
                    return Err(StoreError::Uniqueness {
                        attribute: unique.attribute.clone(),
                        value: unique.value.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// The keys of the members named by `ids`: each must be a resource of the tenant, and a
    /// group cannot contain itself.
    fn resolve_members(&self, ids: &[String], group: Option<&str>) -> Result<Vec<String>> {
        let mut keys = Vec::with_capacity(ids.len());
        for id in ids {
            let key = fold_case(id).into_owned();
            if !self.resources.contains_key(&key) {
                return Err(StoreError::invalid_value(format!(
                    "members: {id:?} is not the id of a User or Group of this tenant"
                )));
            }
            if Some(key.as_str()) == group {
                return Err(StoreError::invalid_value(format!(
                    "members: a group cannot be a member of itself ({id:?})"
                )));
            }
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        Ok(keys)
    }

    fn insert(
        &mut self,
        kind: ResourceKind,
        id: String,
        prepared: Prepared,
        at: DateTime,
        ctx: &WriteContext,
    ) -> Result<String> {
        let key = fold_case(&id).into_owned();
        if self.resources.contains_key(&key) {
            return Err(StoreError::Uniqueness {
                attribute: "id".into(),
                value: id,
            });
        }
        self.check_unique(kind, &prepared.index, None)?;
        let members =
            self.resolve_members(prepared.members.as_deref().unwrap_or_default(), None)?;
        let rid = self.next();
        self.resources.insert(
            key.clone(),
            Resource {
                rid,
                kind,
                id: id.clone(),
                version: 1,
                created: at,
                last_modified: at,
                body: prepared.body,
                index: prepared.index,
            },
        );
        if kind == ResourceKind::Group {
            self.members.insert(key.clone(), HashMap::new());
            self.join(&key, members);
        }
        self.record(kind, &id, ChangeOp::Created, 1, at, ctx);
        Ok(key)
    }

    fn join(&mut self, group: &str, members: Vec<String>) {
        for member in members {
            let joined = self.next();
            if let Some(rows) = self.members.get_mut(group) {
                rows.entry(member).or_insert(joined);
            }
        }
    }

    /// Writes `prepared` over resource `key` as a replacement does (PUT, and PATCH once
    /// applied): nothing if nothing differs, otherwise the next version and one event.
    fn overwrite(
        &mut self,
        key: &str,
        prepared: Prepared,
        op: ChangeOp,
        ctx: &WriteContext,
    ) -> Result<()> {
        let Some(resource) = self.resources.get(key) else {
            return Err(StoreError::backend(format!("resource {key} vanished")));
        };
        let (kind, id) = (resource.kind, resource.id.clone());
        let (added, removed) = match &prepared.members {
            Some(ids) => {
                let wanted = self.resolve_members(ids, Some(key))?;
                let have = self.members.get(key).cloned().unwrap_or_default();
                let added: Vec<String> = wanted
                    .iter()
                    .filter(|m| !have.contains_key(*m))
                    .cloned()
                    .collect();
                let removed: Vec<String> =
                    have.into_keys().filter(|m| !wanted.contains(m)).collect();
                (added, removed)
            }
            None => (Vec::new(), Vec::new()),
        };
        if resource.body == prepared.body && added.is_empty() && removed.is_empty() {
            return Ok(());
        }
        self.check_unique(kind, &prepared.index, Some(key))?;
        let at = document::now();
        let version = resource.version + 1;
        if let Some(resource) = self.resources.get_mut(key) {
            resource.version = version;
            resource.last_modified = at;
            resource.body = prepared.body;
            resource.index = prepared.index;
        }
        if let Some(rows) = self.members.get_mut(key) {
            for member in &removed {
                rows.remove(member);
            }
        }
        self.join(key, added);
        self.record(kind, &id, op, version, at, ctx);
        Ok(())
    }

    /// The served document of resource `key`: with `members` (Groups, when asked) or `groups`
    /// (Users), as RFC 7643 sections 4.1.2 and 4.2 derive them from the memberships.
    fn served(&self, key: &str, members: Members) -> Result<StoredResource> {
        let r = self
            .resources
            .get(key)
            .ok_or_else(|| StoreError::backend(format!("resource {key} vanished")))?;
        let derived = match (r.kind, members) {
            (ResourceKind::User, _) => Some(("groups", self.groups_of(key))),
            (ResourceKind::Group, Members::Include) => Some(("members", self.members_of(key))),
            (ResourceKind::Group, _) => None,
        };
        let derived = derived.filter(|(_, values)| !values.is_empty());
        let derived = derived.map(|(name, values)| (name, Value::Array(values)));
        Ok(StoredResource {
            id: r.id.clone(),
            kind: r.kind,
            version: r.version,
            created: r.created,
            last_modified: r.last_modified,
            document: document::assemble(
                r.kind,
                &r.id,
                r.version,
                r.created,
                r.last_modified,
                &r.body,
                derived,
            ),
        })
    }

    /// A User's `groups`: the groups it is a direct member of, in the order it joined them.
    fn groups_of(&self, key: &str) -> Vec<Value> {
        let mut groups: Vec<(u64, u64, &Resource)> = self
            .members
            .iter()
            .filter_map(|(group, rows)| Some((*rows.get(key)?, self.resources.get(group)?)))
            .map(|(joined, group)| (joined, group.rid, group))
            .collect();
        groups.sort_by_key(|(joined, rid, _)| (*joined, *rid));
        groups
            .into_iter()
            .map(|(_, _, g)| member_value(&g.id, g.body.get("displayName"), "direct"))
            .collect()
    }

    /// A Group's `members`, in the order the members were created: `value`, `display` (the
    /// member's displayName, or a User's userName) and `type`.
    fn members_of(&self, key: &str) -> Vec<Value> {
        let mut members: Vec<&Resource> = self
            .members
            .get(key)
            .into_iter()
            .flat_map(|rows| rows.keys())
            .filter_map(|member| self.resources.get(member))
            .collect();
        members.sort_by_key(|m| m.rid);
        members
            .into_iter()
            .map(|m| {
                let display = m.body.get("displayName").or_else(|| m.body.get("userName"));
                member_value(&m.id, display, m.kind.resource_type())
            })
            .collect()
    }
}

fn member_value(id: &str, display: Option<&Value>, kind: &str) -> Value {
    let mut object = Map::with_capacity(3);
    object.insert("value".to_owned(), Value::String(id.to_owned()));
    if let Some(display) = display.and_then(Value::as_str) {
        object.insert("display".to_owned(), Value::String(display.to_owned()));
    }
    object.insert("type".to_owned(), Value::String(kind.to_owned()));
    Value::Object(object)
}

#[async_trait]
impl Store for MemoryStore {
    async fn create_tenant(&self, name: &str) -> Result<Tenant> {
        token::check_tenant_name(name)?;
        let mut state = self.lock();
        if state.tenants.values().any(|d| d.tenant.name == name) {
            return Err(StoreError::TenantExists(name.to_owned()));
        }
        state.last_tenant_key += 1;
        let key = state.last_tenant_key;
        let tenant = Tenant {
            id: backend::tenant_id(key),
            name: name.to_owned(),
            created: document::now(),
        };
        let directory = Directory {
            tenant: tenant.clone(),
            schemas: Arc::new(TenantSchemas::build(&self.schemas, 0, Vec::new())?),
            tokens: Vec::new(),
            resources: HashMap::new(),
            members: HashMap::new(),
            sequence: 0,
            events: Vec::new(),
        };
        state.tenants.insert(key, directory);
        Ok(tenant)
    }

    async fn tenant_schemas(&self, tenant: &TenantId) -> Result<Arc<TenantSchemas>> {
        self.schemas_of(tenant)
    }

    async fn set_tenant_schemas(
        &self,
        tenant: &TenantId,
        documents: Vec<Value>,
    ) -> Result<Arc<TenantSchemas>> {
        let mut state = self.lock();
        let directory = state.directory(tenant)?;
        // The core decides; this store has no workplace policies to check.
        let next = schemas::plan_change(&self.schemas, &directory.schemas, documents, None)?;
        directory.schemas = Arc::new(next);
        Ok(Arc::clone(&directory.schemas))
    }

    async fn tenant_by_name(&self, name: &str) -> Result<Option<Tenant>> {
        let state = self.lock();
        Ok(state
            .tenants
            .values()
            .find(|d| d.tenant.name == name)
            .map(|d| d.tenant.clone()))
    }

    async fn list_tenants(&self) -> Result<Vec<Tenant>> {
        let state = self.lock();
        let mut tenants: Vec<Tenant> = state.tenants.values().map(|d| d.tenant.clone()).collect();
        tenants.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(tenants)
    }

    async fn delete_tenant(&self, tenant: &TenantId) -> Result<TenantDeletion> {
        let mut state = self.lock();
        let directory = state
            .tenants
            .remove(&tenant.key())
            .ok_or_else(|| StoreError::TenantNotFound(tenant.to_string()))?;
        Ok(TenantDeletion {
            tokens_revoked: directory
                .tokens
                .iter()
                .filter(|(_, t)| t.revoked.is_none())
                .count() as u64,
            resources_deleted: directory.resources.len() as u64,
        })
    }

    async fn issue_token(
        &self,
        tenant: &TenantId,
        label: &str,
        scope: TokenScope,
    ) -> Result<IssuedToken> {
        let (id, secret) = (token::new_token_id()?, token::new_secret()?);
        let info = TokenInfo {
            id: id.clone(),
            label: label.to_owned(),
            scope,
            created: document::now(),
            revoked: None,
            last_used: None,
        };
        self.lock()
            .directory(tenant)?
            .tokens
            .push((token::digest(&secret), info));
        Ok(IssuedToken { id, secret })
    }

    async fn authenticate(&self, secret: &str) -> Result<Option<(Tenant, TokenInfo)>> {
        if !secret.starts_with(token::SECRET_PREFIX) {
            return Ok(None);
        }
        let digest = token::digest(secret);
        let now = document::now();
        let mut state = self.lock();
        let found = state.tenants.values_mut().find_map(|d| {
            let (_, info) = d
                .tokens
                .iter_mut()
                .find(|(stored, _)| token::digests_equal(stored, &digest))?;
            if info.revoked.is_none() && token::should_record_use(info.last_used, now) {
                info.last_used = Some(now);
            }
            Some((d.tenant.clone(), info.clone()))
        });
        Ok(found.filter(|(_, info)| info.revoked.is_none()))
    }

    async fn list_tokens(&self, tenant: &TenantId) -> Result<Vec<TokenInfo>> {
        let state = self.lock();
        let tokens = state.tenants.get(&tenant.key()).map(|d| &d.tokens);
        Ok(tokens
            .into_iter()
            .flatten()
            .map(|(_, info)| info.clone())
            .collect())
    }

    async fn revoke_token(&self, tenant: &TenantId, token_id: &str) -> Result<bool> {
        let mut state = self.lock();
        let Some(directory) = state.tenants.get_mut(&tenant.key()) else {
            return Ok(false);
        };
        let live = directory
            .tokens
            .iter_mut()
            .find(|(_, info)| info.id == token_id && info.revoked.is_none());
        Ok(live
            .map(|(_, info)| info.revoked = Some(document::now()))
            .is_some())
    }

    async fn create(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        document: Value,
        ctx: &WriteContext,
    ) -> Result<StoredResource> {
        let schemas = self.schemas_of(tenant)?;
        let prepared = MemoryStore::prepare(&schemas.resources, kind, document)?;
        let mut state = self.lock();
        let directory = state.directory(tenant)?;
        let key = directory.insert(
            kind,
            document::new_resource_id(),
            prepared,
            document::now(),
            ctx,
        )?;
        directory.served(&key, Members::Include)
    }

    async fn get(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
        members: Members,
    ) -> Result<Option<StoredResource>> {
        let mut state = self.lock();
        let Ok(directory) = state.directory(tenant) else {
            return Ok(None);
        };
        match directory.current(kind, id, None) {
            Ok(key) => directory.served(&key, members).map(Some),
            Err(StoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e),
        }
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
        let schemas = self.schemas_of(tenant)?;
        let prepared = MemoryStore::prepare(&schemas.resources, kind, document)?;
        let mut state = self.lock();
        let directory = state.directory(tenant)?;
        let key = directory.current(kind, id, expected_version)?;
        directory.overwrite(&key, prepared, ChangeOp::Replaced, ctx)?;
        directory.served(&key, Members::Include)
    }

    async fn patch(
        &self,
        tenant: &TenantId,
        call: PatchCall<'_>,
        ctx: &WriteContext,
    ) -> Result<PatchResult> {
        let kind = call.kind;
        let schemas = self.schemas_of(tenant)?;
        let schema = schemas.resources.get(kind);
        let mut state = self.lock();
        let directory = state.directory(tenant)?;
        let key = directory.current(kind, call.id, call.expected_version)?;
        // The request applies to the resource as served, a Group with its members; the result
        // is validated and written like a replacement. (The SQL stores apply a Group's member
        // changes as a delta instead, so that a large group is not rewritten.)
        let before = directory.served(&key, Members::Include)?;
        let stored = match kind {
            ResourceKind::User => {
                let r = &directory.resources[&key];
                document::assemble(
                    kind,
                    &r.id,
                    r.version,
                    r.created,
                    r.last_modified,
                    &r.body,
                    None,
                )
            }
            ResourceKind::Group => before.document.clone(),
        };
        // The core's plan applies, validates and prepares; this store only writes.
        let patching = Patching {
            kind,
            schema,
            request: call.request,
            settings: call.settings,
            prepare: document::prepare,
            limits: schemas.resources.limits(),
        };
        let planned = match kind {
            ResourceKind::User => patching.document(&stored)?,
            ResourceKind::Group => patching.whole_group(&stored)?,
        };
        if let DocumentPatch::Replace(prepared) = planned {
            directory.overwrite(&key, prepared, ChangeOp::Patched, ctx)?;
        }
        let resource = directory.served(&key, call.members)?;
        let changed = resource.version != before.version;
        Ok(PatchResult { resource, changed })
    }

    async fn delete(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        id: &str,
        expected_version: Option<u64>,
        ctx: &WriteContext,
    ) -> Result<()> {
        let mut state = self.lock();
        let directory = state.directory(tenant)?;
        let key = directory.current(kind, id, expected_version)?;
        let Some(gone) = directory.resources.remove(&key) else {
            return Err(StoreError::backend(format!("resource {key} vanished")));
        };
        // Deleting a resource removes it from every group (RFC 7644 section 3.6), which is not
        // a change of those groups' versions.
        directory.members.remove(&key);
        for rows in directory.members.values_mut() {
            rows.remove(&key);
        }
        directory.record(
            kind,
            &gone.id,
            ChangeOp::Deleted,
            gone.version,
            document::now(),
            ctx,
        );
        Ok(())
    }

    async fn query(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        query: &Query,
    ) -> Result<QueryPage> {
        let schemas = self.schemas_of(tenant)?;
        let schema = schemas.resources.get(kind);
        let filter = match &query.filter {
            Some(f) => Some(CompiledFilter::with_mode(
                f,
                schema,
                UnknownAttributes::Lenient,
            )?),
            None => None,
        };
        let sort = query
            .sort_by
            .as_ref()
            .map(|path| SortSpec::of(schema, path));
        let descending = query.sort_order == SortOrder::Descending && sort.is_some();
        let cursors = self.cursor_key.scope(*tenant, kind, query);
        let after = match &query.paging {
            Paging::Cursor(Some(cursor)) => Some(cursors.decode(cursor)?),
            _ => None,
        };

        let mut state = self.lock();
        let Ok(directory) = state.directory(tenant) else {
            return Ok(QueryPage {
                total_results: 0,
                start_index: 1,
                resources: Vec::new(),
                next_cursor: None,
            });
        };
        // Every resource of the kind, as served, that the filter selects, with its place in the
        // order: (sort key, creation order).
        let mut matches: Vec<(SortValue, i64, StoredResource)> = Vec::new();
        for (key, r) in &directory.resources {
            if r.kind != kind {
                continue;
            }
            let served = directory.served(key, Members::Include)?;
            if filter
                .as_ref()
                .is_some_and(|f| !f.matches(&served.document))
            {
                continue;
            }
            let sort_key = sort
                .as_ref()
                .map_or(SortValue::Null, |s| s.value(&served.document));
            // The filter saw the members; the page shows them only if asked.
            let served = match (query.members, kind) {
                (Members::Exclude, ResourceKind::Group) => {
                    directory.served(key, Members::Exclude)?
                }
                _ => served,
            };
            // Cursors carry the tie-breaker as an i64 (the SQL backends' row id); a counter
            // never reaches i64::MAX.
            let rid = i64::try_from(r.rid).unwrap_or(i64::MAX);
            matches.push((sort_key, rid, served));
        }
        // The order is total: creation order breaks ties, so a cursor (a place in the order)
        // is never ambiguous.
        let order = |a: (&SortValue, i64), b: (&SortValue, i64)| {
            let ascending = match sort {
                None => a.1.cmp(&b.1),
                Some(_) => a.0.compare(b.0).then(a.1.cmp(&b.1)),
            };
            if descending {
                ascending.reverse()
            } else {
                ascending
            }
        };
        matches.sort_by(|a, b| order((&a.0, a.1), (&b.0, b.1)));
        let total_results = matches.len() as u64;
        let count = query
            .count
            .map_or(usize::MAX, |c| usize::try_from(c).unwrap_or(usize::MAX));

        // A page holds what fits its byte budget (at least one resource), in the core's
        // measure, as the SQL backends' pages do.
        let mut budget = query.page_budget();
        let mut fits = |m: &(SortValue, i64, StoredResource)| {
            budget.admit(PageBudget::json_bytes(&m.2.document))
        };
        let (start_index, page, next_cursor) = match &query.paging {
            Paging::Index { start_index } => {
                let start_index = (*start_index).max(1);
                let skip = usize::try_from(start_index - 1).unwrap_or(usize::MAX);
                let page: Vec<_> = matches
                    .into_iter()
                    .skip(skip)
                    .take(count)
                    .take_while(|m| fits(m))
                    .collect();
                (start_index, page, None)
            }
            Paging::Cursor(_) => {
                let rest: Vec<_> = matches
                    .into_iter()
                    .filter(|m| {
                        after
                            .as_ref()
                            .is_none_or(|a| order((&m.0, m.1), (&a.0, a.1)) == Ordering::Greater)
                    })
                    .collect();
                let rest_len = rest.len();
                let page: Vec<_> = rest
                    .into_iter()
                    .take(count)
                    .take_while(|m| fits(m))
                    .collect();
                // More follow when the page stopped before the end, at `count` or at its budget.
                let more = page.len() < rest_len && count > 0;
                let next = page
                    .last()
                    .filter(|_| more)
                    .map(|(k, rid, _)| cursors.encode(k, *rid));
                (1, page, next)
            }
        };
        Ok(QueryPage {
            total_results,
            start_index,
            resources: page.into_iter().map(|(_, _, r)| r).collect(),
            next_cursor,
        })
    }

    async fn import(
        &self,
        tenant: &TenantId,
        kind: ResourceKind,
        documents: Vec<Value>,
        ctx: &WriteContext,
    ) -> Result<ImportOutcome> {
        let schemas = self.schemas_of(tenant)?;
        let prepared = directory::prepare_import(documents, |d| {
            MemoryStore::prepare(&schemas.resources, kind, d)
        })?;
        let mut state = self.lock();
        let directory = state.directory(tenant)?;
        // All or nothing: the documents go into a copy, which replaces the tenant only if every
        // one of them went in.
        let mut copy = directory.clone();
        let at = document::now();
        let mut ids = Vec::with_capacity(prepared.len());
        for (id, p) in prepared {
            copy.insert(kind, id.clone(), p, at, ctx)?;
            ids.push(id);
        }
        *directory = copy;
        Ok(ImportOutcome { ids })
    }

    async fn events(
        &self,
        tenant: &TenantId,
        after_seq: u64,
        limit: usize,
    ) -> Result<Vec<ChangeEvent>> {
        let state = self.lock();
        let events = state.tenants.get(&tenant.key()).map(|d| &d.events);
        Ok(events
            .into_iter()
            .flatten()
            .filter(|e| e.seq > after_seq)
            .take(limit)
            .cloned()
            .collect())
    }
}
