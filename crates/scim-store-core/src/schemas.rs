//! A tenant's own schemas: custom extensions and attributes added to the core ones, as identity
//! providers send them (Entra ID's "customappsso" attributes, Okta's custom extension
//! attributes). Written once here for every backend: what a stored set of schema documents
//! becomes ([`TenantSchemas::build`]), whether a new set may replace the old one
//! ([`plan_change`]), and the cache each store keeps of them ([`SchemaCache`]).
//!
//! A backend stores, per tenant, the documents (RFC 7643 section 7 form) and a version that
//! moves with every change, and reads that version with every token it authenticates
//! ([`SchemaCache::observe`]): every replica serves a change from its next request.

use crate::error::{Result, StoreError};
use crate::types::{ResourceKind, ResourceSchemas, TenantId};
use crate::workplace::WorkplaceConfig;
use scim_schema::SchemaRegistry;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use workplace_policy::{CompiledPolicySet, PolicySet};

/// How many schema documents one tenant may have: each costs every request of the tenant a
/// little (attribute lookups), and no identity provider needs more than a handful.
pub const MAX_DOCUMENTS: usize = 64;

/// How large a tenant's schema documents may be in all, as stored JSON.
pub const MAX_DOCUMENTS_BYTES: usize = 256 * 1024;

/// A tenant's schemas: the store's base schemas with the tenant's documents applied.
#[derive(Clone)]
pub struct TenantSchemas {
    /// Moves with every change of the tenant's documents; 0 before the first.
    pub version: u64,
    /// The tenant's documents as set (RFC 7643 section 7 form, one object each).
    pub documents: Vec<Value>,
    /// What the tenant is served: the base registry with its documents
    /// ([`SchemaRegistry::with_documents`]).
    pub resources: ResourceSchemas,
}

impl std::fmt::Debug for TenantSchemas {
    // The resolved schemas run to hundreds of kilobytes of text: the version and the ids of
    // the documents say which they are.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self
            .documents
            .iter()
            .map(|d| d.get("id").and_then(Value::as_str).unwrap_or("?"))
            .collect();
        f.debug_struct("TenantSchemas")
            .field("version", &self.version)
            .field("documents", &ids)
            .finish_non_exhaustive()
    }
}

impl TenantSchemas {
    /// `documents` applied to `base`, at `version`. Fails with the registry's error (it names
    /// the schema, the path and the problem) if one does not apply.
    pub fn build(base: &ResourceSchemas, version: u64, documents: Vec<Value>) -> Result<Self> {
        if documents.is_empty() {
            return Ok(TenantSchemas {
                version,
                documents,
                resources: base.clone(),
            });
        }
        let registry = base.registry().with_documents(&documents)?;
        let resources = ResourceSchemas::from_registry(&registry)
            .ok_or_else(|| StoreError::backend("a tenant's schemas lost the User or Group type"))?
            .with_limits(base.limits());
        Ok(TenantSchemas {
            version,
            documents,
            resources,
        })
    }

    /// The registry the tenant is served (`/Schemas`, `/ResourceTypes`, filters, PATCH paths).
    pub fn registry(&self) -> &SchemaRegistry {
        self.resources.registry()
    }
}

/// The documents as a backend stored them (the JSON text of [`TenantSchemas::documents`], or
/// none at all for a tenant without).
pub fn stored_documents(tenant: TenantId, stored: Option<&str>) -> Result<Vec<Value>> {
    match stored {
        Some(json) => serde_json::from_str(json).map_err(|e| {
            StoreError::backend(format!(
                "the schema documents of {tenant}: invalid JSON: {e}"
            ))
        }),
        None => Ok(Vec::new()),
    }
}

/// Splits what an operator hands in (files each holding one schema object or an array of
/// them, RFC 7643 section 8.7.1) into one document per schema, within the bounds above.
pub fn documents_of(inputs: Vec<Value>) -> Result<Vec<Value>> {
    let mut documents = Vec::new();
    for input in inputs {
        match input {
            Value::Array(items) => documents.extend(items),
            other => documents.push(other),
        }
    }
    if documents.len() > MAX_DOCUMENTS {
        return Err(invalid(format!(
            "{} schema documents; a tenant may have at most {MAX_DOCUMENTS}",
            documents.len()
        )));
    }
    let bytes = serde_json::to_vec(&documents)
        .map_err(StoreError::backend)?
        .len();
    if bytes > MAX_DOCUMENTS_BYTES {
        return Err(invalid(format!(
            "the schema documents are {bytes} bytes; a tenant's may be at most \
             {MAX_DOCUMENTS_BYTES}"
        )));
    }
    Ok(documents)
}

fn invalid(detail: String) -> StoreError {
    StoreError::Invalid {
        scim_type: scim_schema::ScimType::InvalidValue,
        detail,
    }
}

/// Whether the tenant may move from `current` to `documents` (at the next version), given its
/// stored workplace configuration: the new schemas must build, and every policy rule's
/// `people` filter must still compile against the new User schema and find each attribute it
/// names with the same type. A removed or retyped attribute that a rule uses is refused
/// naming each such rule, so that no policy silently stops matching.
pub fn plan_change(
    base: &ResourceSchemas,
    current: &TenantSchemas,
    documents: Vec<Value>,
    workplace: Option<&WorkplaceConfig>,
) -> Result<TenantSchemas> {
    let documents = documents_of(documents)?;
    let next = TenantSchemas::build(base, current.version + 1, documents)?;
    if let Some(config) = workplace {
        let broken: Vec<String> = config
            .policies
            .rules
            .iter()
            .filter_map(|rule| broken_rule(rule, &config.policies, current, &next))
            .collect();
        if !broken.is_empty() {
            return Err(invalid(format!(
                "this schema change would break workplace policy rules that use what it \
                 removes or retypes; change or remove those rules first: {}",
                broken.join("; ")
            )));
        }
    }
    Ok(next)
}

/// Why `rule` would stop working under `next`, if it would.
fn broken_rule(
    rule: &workplace_policy::Rule,
    policies: &PolicySet,
    current: &TenantSchemas,
    next: &TenantSchemas,
) -> Option<String> {
    let alone = PolicySet {
        rules: vec![rule.clone()],
        ..policies.clone()
    };
    let (before, after) = (
        current.resources.get(ResourceKind::User),
        next.resources.get(ResourceKind::User),
    );
    if let Err(e) = CompiledPolicySet::compile_with(&alone, after) {
        return Some(format!("rule {:?}: {e}", rule.id));
    }
    rule.people_paths().iter().find_map(|path| {
        let was = before.resolve(path)?.target();
        let now = after.resolve(path)?.target();
        (was.kind != now.kind || was.multi_valued != now.multi_valued).then(|| {
            format!(
                "rule {:?}: it compares {path}, which this change makes {:?}{} (was {:?}{})",
                rule.id,
                now.kind,
                if now.multi_valued {
                    ", multi-valued"
                } else {
                    ""
                },
                was.kind,
                if was.multi_valued {
                    ", multi-valued"
                } else {
                    ""
                },
            )
        })
    })
}

/// What a policy change answers when the tenant's schemas changed between the policies being
/// compiled (against the schemas the store had cached) and their write: the policies are
/// never stored as checked against schemas that are no longer the tenant's. A store retries
/// once with the tenant's current schemas ([`SchemaCache::once_more_if_moved`]) before it
/// answers this (409).
pub fn schemas_moved() -> StoreError {
    StoreError::Conflict(SCHEMAS_MOVED.to_owned())
}

const SCHEMAS_MOVED: &str = "the tenant's schemas changed while these policies were being \
     checked against them; send the policies again";

/// Whether `error` is [`schemas_moved`]'s.
fn is_schemas_moved(error: &StoreError) -> bool {
    matches!(error, StoreError::Conflict(detail) if detail == SCHEMAS_MOVED)
}

/// The schemas of each tenant a store has served, by version. The store calls
/// [`SchemaCache::observe`] with the version it reads alongside every authenticated token, so
/// a change made by another process (the CLI, another replica) is served from the next
/// request; [`SchemaCache::put`] after it loads or changes a tenant's documents.
#[derive(Debug)]
pub struct SchemaCache {
    base: Arc<TenantSchemas>,
    entries: RwLock<HashMap<i64, Arc<TenantSchemas>>>,
}

impl SchemaCache {
    /// A cache over the store's base schemas (what a tenant without documents is served).
    pub fn new(base: ResourceSchemas) -> Self {
        SchemaCache {
            base: Arc::new(TenantSchemas {
                version: 0,
                documents: Vec::new(),
                resources: base,
            }),
            entries: RwLock::new(HashMap::new()),
        }
    }

    /// The store's base schemas.
    pub fn base(&self) -> &ResourceSchemas {
        &self.base.resources
    }

    /// The tenant's schemas if cached.
    pub fn get(&self, tenant: TenantId) -> Option<Arc<TenantSchemas>> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        entries.get(&tenant.key()).cloned()
    }

    /// The tenant is at `version` in the database: forget what is cached of it if older or
    /// newer (a newer one comes from a change rolled back or not yet visible here). A tenant
    /// that never had documents is cached at once, without a load.
    pub fn observe(&self, tenant: TenantId, version: u64) {
        if self.get(tenant).is_some_and(|s| s.version == version) {
            return;
        }
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if version == 0 {
            entries.insert(tenant.key(), Arc::clone(&self.base));
        } else {
            entries.remove(&tenant.key());
        }
    }

    /// Builds and caches the tenant's schemas from what the backend loaded.
    pub fn load(
        &self,
        tenant: TenantId,
        version: u64,
        documents: Vec<Value>,
    ) -> Result<Arc<TenantSchemas>> {
        let schemas = match version {
            0 => Arc::clone(&self.base),
            _ => Arc::new(TenantSchemas::build(
                &self.base.resources,
                version,
                documents,
            )?),
        };
        self.put(tenant, Arc::clone(&schemas));
        Ok(schemas)
    }

    /// Caches `schemas` for the tenant (a change just committed).
    pub fn put(&self, tenant: TenantId, schemas: Arc<TenantSchemas>) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        entries.insert(tenant.key(), schemas);
    }

    /// Runs `attempt` (a write checked against the tenant's schemas as cached); if it met
    /// [`schemas_moved`], because another process changed them, forgets them and runs it once
    /// more, with the current ones.
    pub async fn once_more_if_moved<T, Fut>(
        &self,
        tenant: TenantId,
        attempt: impl Fn() -> Fut,
    ) -> Result<T>
    where
        Fut: std::future::Future<Output = Result<T>>,
    {
        match attempt().await {
            Err(e) if is_schemas_moved(&e) => {
                self.forget(tenant);
                attempt().await
            }
            other => other,
        }
    }

    /// Forgets the tenant (deleted).
    pub fn forget(&self, tenant: TenantId) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        entries.remove(&tenant.key());
    }
}
