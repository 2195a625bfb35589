//! The types the [`Store`](crate::Store) trait speaks.

use crate::document::ResourceLimits;
use scim_filter::Filter;
use scim_schema::{AttrPath, DateTime, ResourceSchema};
use serde_json::Value;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A tenant's identity inside the store. Only a store hands these out (from
/// [`Store::create_tenant`](crate::Store::create_tenant),
/// [`Store::tenant_by_name`](crate::Store::tenant_by_name) or
/// [`Store::authenticate`](crate::Store::authenticate)): there is no public constructor, so
/// every resource call is provably scoped to a tenant the store knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(i64);

impl TenantId {
    /// Wraps a backend's key. Crate-private: backends reach it through
    /// [`backend::tenant_id`](crate::backend::tenant_id), whose documentation says who may.
    pub(crate) fn from_key(key: i64) -> Self {
        TenantId(key)
    }

    /// The backend's key, for logs and metrics.
    pub fn key(self) -> i64 {
        self.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tenant#{}", self.0)
    }
}

/// A tenant: an isolated directory with its own users, groups, tokens and change feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// The store's handle on the tenant.
    pub id: TenantId,
    /// The tenant's name, `[a-z0-9-]{1,63}` (a DNS label, so it can appear in a host name or a
    /// URL path unescaped).
    pub name: String,
    /// When the tenant was created.
    pub created: DateTime,
}

/// What [`crate::Store::delete_tenant`] removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TenantDeletion {
    /// Tokens that were still valid.
    pub tokens_revoked: u64,
    /// Users and groups.
    pub resources_deleted: u64,
}

/// What an API token may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TokenScope {
    /// The SCIM protocol endpoints (RFC 7644), used by identity providers.
    Scim,
    /// The workplace policy endpoints, kept separate so that an identity provider's token
    /// cannot change policy.
    Workplace,
    /// The tenant's admin API (the provisioning log, sync health, tokens, custom schemas) and
    /// everything [`TokenScope::Workplace`] may do.
    Admin,
}

impl TokenScope {
    /// The scope's stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Scim => "scim",
            TokenScope::Workplace => "workplace",
            TokenScope::Admin => "admin",
        }
    }

    /// Whether a credential of this scope may use the endpoints that need `needed`: its own,
    /// and for [`TokenScope::Admin`] the workplace API's too.
    pub fn covers(self, needed: TokenScope) -> bool {
        self == needed || (self == TokenScope::Admin && needed == TokenScope::Workplace)
    }

    /// The scope with the stored name `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "scim" => Some(TokenScope::Scim),
            "workplace" => Some(TokenScope::Workplace),
            "admin" => Some(TokenScope::Admin),
            _ => None,
        }
    }
}

/// A token's metadata: everything but the secret, which the store never keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    /// The token's public id (shown in listings, used to revoke).
    pub id: String,
    /// The operator's label, e.g. `entra-prod`.
    pub label: String,
    /// What the token may be used for.
    pub scope: TokenScope,
    /// When it was issued.
    pub created: DateTime,
    /// When it was revoked, if it was.
    pub revoked: Option<DateTime>,
    /// When it last authenticated a request, to the minute
    /// ([`crate::backend::token::LAST_USED_STEP_SECONDS`]); `None` if never. An identity
    /// provider's connection that stopped calling shows here first.
    pub last_used: Option<DateTime>,
}

/// A newly issued token: the only time the secret is ever visible.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedToken {
    /// The token's public id.
    pub id: String,
    /// The bearer secret (`scimd_` followed by 64 hex digits): show it once, then forget it.
    pub secret: String,
}

impl fmt::Debug for IssuedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedToken")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The resource types the store keeps (RFC 7643 section 4).
///
/// Exhaustive on purpose: every backend stores each kind its own way, so a new kind is a
/// breaking change that every backend must answer, not a `_` arm that compiles and misbehaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceKind {
    /// `urn:ietf:params:scim:schemas:core:2.0:User` (RFC 7643 section 4.1).
    User,
    /// `urn:ietf:params:scim:schemas:core:2.0:Group` (RFC 7643 section 4.2).
    Group,
}

impl ResourceKind {
    /// Every kind, in a fixed order.
    pub const ALL: [ResourceKind; 2] = [ResourceKind::User, ResourceKind::Group];

    /// The resource type's name, as in `meta.resourceType` (RFC 7643 section 3.1).
    pub fn resource_type(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }

    /// The resource type named `name` (`User`, `Group`).
    pub fn from_resource_type(name: &str) -> Option<Self> {
        ResourceKind::ALL
            .into_iter()
            .find(|k| k.resource_type() == name)
    }

    /// The stable small integer a backend stores for the kind.
    pub fn code(self) -> i64 {
        match self {
            ResourceKind::User => 1,
            ResourceKind::Group => 2,
        }
    }

    /// The kind stored as `code`.
    pub fn from_code(code: i64) -> Option<Self> {
        ResourceKind::ALL.into_iter().find(|k| k.code() == code)
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.resource_type())
    }
}

/// The resolved schema of each resource kind: what the store consults to find the attributes
/// it indexes, enforce `uniqueness`, compile filters and apply patches; with the registry they
/// were resolved from, which a tenant's own schemas extend ([`crate::schemas::TenantSchemas`]).
#[derive(Debug, Clone)]
pub struct ResourceSchemas {
    registry: scim_schema::SchemaRegistry,
    user: Arc<ResourceSchema>,
    group: Arc<ResourceSchema>,
    limits: ResourceLimits,
}

impl ResourceSchemas {
    /// The same schemas with these limits on what one resource may hold (by default
    /// [`ResourceLimits::default`]).
    pub fn with_limits(mut self, limits: ResourceLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The limits on what one resource may hold, which every write checks.
    pub fn limits(&self) -> ResourceLimits {
        self.limits
    }

    /// The RFC 7643 core schemas: User (with the Enterprise User extension) and Group.
    pub fn core() -> Self {
        let registry = scim_schema::SchemaRegistry::new();
        ResourceSchemas {
            user: Arc::new(scim_schema::core::user()),
            group: Arc::new(scim_schema::core::group()),
            registry,
            limits: ResourceLimits::default(),
        }
    }

    /// The User and Group resource types of `registry` (custom extensions included); `None`
    /// if the registry lacks one of them.
    pub fn from_registry(registry: &scim_schema::SchemaRegistry) -> Option<Self> {
        Some(ResourceSchemas {
            user: Arc::new(registry.resource_schema("User")?.clone()),
            group: Arc::new(registry.resource_schema("Group")?.clone()),
            registry: registry.clone(),
            limits: ResourceLimits::default(),
        })
    }

    /// The registry these schemas were resolved from (what `/Schemas` and `/ResourceTypes`
    /// serve).
    pub fn registry(&self) -> &scim_schema::SchemaRegistry {
        &self.registry
    }

    /// The schema of `kind`.
    pub fn get(&self, kind: ResourceKind) -> &ResourceSchema {
        match kind {
            ResourceKind::User => &self.user,
            ResourceKind::Group => &self.group,
        }
    }
}

#[cfg(doc)]
use crate::StoreError;

/// Whether a Group's `members` are put into its document. A group may have 100,000 members:
/// a caller that does not need them (e.g. `excludedAttributes=members`, RFC 7644 section
/// 3.4.2.5) should not pay for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Members {
    /// Derive `members` from the membership rows.
    #[default]
    Include,
    /// Leave `members` out.
    Exclude,
}

/// One stored resource, as the server serves it (minus `meta.location` and the `$ref`s, which
/// need the server's base URL).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredResource {
    /// The resource's id (RFC 7643 section 3.1), assigned by the store.
    pub id: String,
    /// The resource's type.
    pub kind: ResourceKind,
    /// The monotonic version; `meta.version` is `W/"<version>"`.
    pub version: u64,
    /// `meta.created`.
    pub created: DateTime,
    /// `meta.lastModified`.
    pub last_modified: DateTime,
    /// The full JSON document: `schemas`, `id`, the attributes, `meta` (`resourceType`,
    /// `created`, `lastModified`, `version`), and the derived `members` (Groups, when asked for)
    /// or `groups` (Users: `value`, `display`, `type: "direct"`).
    pub document: Value,
}

impl StoredResource {
    /// The weak entity tag of this version, `W/"<version>"` (RFC 7644 section 3.14).
    pub fn etag(&self) -> String {
        format!("W/\"{}\"", self.version)
    }
}

/// Who made a change (recorded on its [`ChangeEvent`]), and until when its writes may start.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WriteContext {
    /// The actor: a token label, an operator, `import`...
    pub actor: String,
    /// The HTTP request's id, to correlate the event with logs.
    pub request_id: Option<String>,
    /// Whether the caller still waits for the write: a store starts a write only while its
    /// window is open ([`WriteWindow`]). By default it never closes.
    pub window: WriteWindow,
}

impl WriteContext {
    /// A context with this actor and no request id.
    pub fn actor(actor: impl Into<String>) -> Self {
        WriteContext {
            actor: actor.into(),
            ..WriteContext::default()
        }
    }
}

/// Whether the writes of one request may still start: the promise that a write handed to a
/// store either completes and its caller hears how, or never runs.
///
/// A caller that stops waiting (a request past its deadline) [`closes`](WriteWindow::close)
/// the window. A store [`enter`](WriteWindow::enter)s it right before it starts a write (the
/// SQLite writer when it takes the job from its queue, PostgreSQL before `BEGIN`) and holds the
/// guard until the write has committed or failed and its answer is sent. So a write still
/// queued when the window closes is never run ([`StoreError::Cancelled`]); and `close` tells
/// the caller whether a write is running, in which case it should wait for that answer instead
/// of reporting a failure while the write commits. Without this, a client answered 503 found
/// its write committed later, and its retry failed with 409 or applied the change twice.
///
/// The default window never closes (no allocation): for writes nobody can abandon.
#[derive(Debug, Clone, Default)]
pub struct WriteWindow(Option<Arc<AtomicUsize>>);

/// The bit of a [`WriteWindow`]'s state that says it is closed; the others count the writes
/// running.
const WINDOW_CLOSED: usize = 1 << (usize::BITS - 1);

impl WriteWindow {
    /// An open window, which [`WriteWindow::close`] can close.
    pub fn new() -> Self {
        WriteWindow(Some(Arc::new(AtomicUsize::new(0))))
    }

    /// Starts a write: `None` if the window is closed (do not run it), else a guard to hold
    /// until the write's outcome is known and sent.
    pub fn enter(&self) -> Option<WriteRunning> {
        let Some(state) = &self.0 else {
            return Some(WriteRunning(None));
        };
        state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                (s & WINDOW_CLOSED == 0).then_some(s + 1)
            })
            .ok()
            .map(|_| WriteRunning(Some(Arc::clone(state))))
    }

    /// Closes the window: no write of it starts from now on. Returns whether one is running,
    /// whose outcome the caller should then wait for.
    pub fn close(&self) -> bool {
        self.0.as_ref().is_some_and(|state| {
            state.fetch_or(WINDOW_CLOSED, Ordering::AcqRel) & !WINDOW_CLOSED > 0
        })
    }

    /// Whether the window is closed.
    pub fn is_closed(&self) -> bool {
        self.0
            .as_ref()
            .is_some_and(|state| state.load(Ordering::Acquire) & WINDOW_CLOSED != 0)
    }
}

/// Two windows are equal when they are the same window (or both never close).
impl PartialEq for WriteWindow {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for WriteWindow {}

/// A write running in its [`WriteWindow`]; dropping it says the write's outcome is known.
#[derive(Debug)]
#[must_use = "the write counts as running only while this is held"]
pub struct WriteRunning(Option<Arc<AtomicUsize>>);

impl Drop for WriteRunning {
    fn drop(&mut self) {
        if let Some(state) = &self.0 {
            state.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// The result of a PATCH (RFC 7644 section 3.5.2).
#[derive(Debug, Clone, PartialEq)]
pub struct PatchResult {
    /// The resource after the patch.
    pub resource: StoredResource,
    /// Whether anything changed; when not, version and `meta.lastModified` are the old ones and
    /// no event was recorded (the server may answer 204 or 200 as it prefers).
    pub changed: bool,
}

/// How a PATCH is interpreted and its result checked: the server's dialect policy for
/// identity providers ([`scim_patch::PatchOptions`]) and its schema policy
/// ([`scim_schema::ValidationOptions`], e.g. whether unknown attributes are kept).
#[derive(Debug, Clone, Default)]
pub struct PatchSettings {
    /// How the PatchOp message is applied (RFC 7644 section 3.5.2).
    pub patch: scim_patch::PatchOptions,
    /// How the patched resource is validated (RFC 7643 section 2 and 7).
    pub validation: scim_schema::ValidationOptions,
}

/// One PATCH (RFC 7644 section 3.5.2) as the store receives it: which resource, the request,
/// how to apply it, the If-Match version, and whether the answer carries a Group's members.
#[derive(Debug, Clone, Copy)]
pub struct PatchCall<'a> {
    /// The kind of the resource patched.
    pub kind: ResourceKind,
    /// The resource's id.
    pub id: &'a str,
    /// The parsed PatchOp message.
    pub request: &'a scim_patch::PatchRequest,
    /// How the message is applied and the result validated.
    pub settings: &'a PatchSettings,
    /// The version the resource must have (from `If-Match`, RFC 7644 section 3.14); `None`
    /// patches whatever version is stored.
    pub expected_version: Option<u64>,
    /// Whether the patched resource, when a Group, carries its `members`.
    pub members: Members,
}

/// `sortOrder` (RFC 7644 section 3.4.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SortOrder {
    /// `ascending` (the default); resources without a value come last.
    #[default]
    Ascending,
    /// `descending`; resources without a value come first.
    Descending,
}

/// How a query pages its results.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Paging {
    /// Index paging (RFC 7644 section 3.4.2.4): skip `start_index - 1` resources (1-based; a
    /// value below 1 is taken as 1).
    Index {
        /// The 1-based index of the first resource returned.
        start_index: u64,
    },
    /// Cursor paging (RFC 9865): `None` asks for the first page (`cursor` with no value),
    /// `Some` continues from a `nextCursor` this store returned for the same query.
    Cursor(Option<String>),
}

impl Default for Paging {
    fn default() -> Self {
        Paging::Index { start_index: 1 }
    }
}

/// A query over one resource type of one tenant (RFC 7644 section 3.4.2).
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// The filter, already parsed (and checked by the server against its unknown-attribute
    /// policy). `None` selects every resource.
    pub filter: Option<Filter>,
    /// `sortBy`; `None` returns resources in creation order.
    pub sort_by: Option<AttrPath>,
    /// `sortOrder`.
    pub sort_order: SortOrder,
    /// `startIndex` or `cursor`.
    pub paging: Paging,
    /// `count`: at most this many resources (`Some(0)` returns only `totalResults`); `None`
    /// returns all of them, so a server should always set its page size.
    pub count: Option<u64>,
    /// Whether Groups carry their `members`.
    pub members: Members,
    /// The most bytes of resources one page may hold, measured as their stored JSON (with a
    /// User's `groups` or a Group's `members` when they are served): the page stops early, with
    /// fewer resources than `count`, once the next one would pass it, as RFC 7644 section
    /// 3.4.2.4 allows (`itemsPerPage` says how many came; the client asks for the next page from
    /// `startIndex + itemsPerPage`, or follows `nextCursor`, which points after the last
    /// resource returned). A page always holds at least one resource, however large.
    /// `totalResults` still counts every match. `None` (the default): no bound but `count`.
    /// Backends apply it through [`PageBudget`], so that they all stop at the same place.
    pub max_page_bytes: Option<usize>,
}

impl Query {
    /// The budget of one page of this query (see [`Query::max_page_bytes`]).
    pub fn page_budget(&self) -> PageBudget {
        PageBudget {
            left: self.max_page_bytes,
            taken: 0,
            full: false,
        }
    }
}

/// How much of a page is left: what a backend asks, for each resource it loads in page order,
/// whether the resource still belongs to the page ([`Query::max_page_bytes`]).
///
/// The first resource always does, so a page is never empty while resources remain; the
/// first one that does not fit ends the page, even if a smaller one after it would fit,
/// because a page is a contiguous run of the order: the next page starts right after it.
#[derive(Debug, Clone)]
pub struct PageBudget {
    left: Option<usize>,
    taken: usize,
    full: bool,
}

impl PageBudget {
    /// Whether a resource of `bytes` (its stored JSON, derived `groups` or `members`
    /// included) joins the page. Once it answers `false` it always does: the page is over,
    /// and the backend should stop loading.
    pub fn admit(&mut self, bytes: usize) -> bool {
        if self.full {
            return false;
        }
        let Some(left) = self.left else {
            self.taken += 1;
            return true;
        };
        if self.taken > 0 && bytes > left {
            self.full = true;
            return false;
        }
        self.left = Some(left.saturating_sub(bytes));
        self.taken += 1;
        true
    }

    /// Whether a resource was refused: the page stopped before `count` for its size.
    pub fn is_full(&self) -> bool {
        self.full
    }

    /// How many resources were admitted.
    pub fn taken(&self) -> usize {
        self.taken
    }

    /// The size of `value` as compact JSON, near enough to weigh what a backend built rather
    /// than read as text (a Group's `members`, an in-memory document) without serialising it:
    /// strings count their UTF-8 bytes and quotes, not escapes; numbers count 8.
    pub fn json_bytes(value: &Value) -> usize {
        match value {
            Value::Null | Value::Bool(true) => 4,
            Value::Bool(false) => 5,
            Value::Number(_) => 8,
            Value::String(s) => s.len() + 2,
            Value::Array(items) => {
                2 + items.len().saturating_sub(1)
                    + items.iter().map(PageBudget::json_bytes).sum::<usize>()
            }
            Value::Object(members) => {
                2 + members.len().saturating_sub(1)
                    + members
                        .iter()
                        .map(|(k, v)| k.len() + 3 + PageBudget::json_bytes(v))
                        .sum::<usize>()
            }
        }
    }
}

/// One page of a query's results.
#[derive(Debug, Clone, PartialEq)]
pub struct QueryPage {
    /// `totalResults`: how many resources match the filter, over all pages.
    pub total_results: u64,
    /// `startIndex` of this page (1-based; with cursor paging, the position of the page's
    /// first resource is not computed and this is 1).
    pub start_index: u64,
    /// The page's resources, in order.
    pub resources: Vec<StoredResource>,
    /// `nextCursor` (RFC 9865): present in cursor paging when more resources follow.
    pub next_cursor: Option<String>,
}

/// What a change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ChangeOp {
    /// The resource was created (POST, or bulk import).
    Created,
    /// The resource was replaced (PUT).
    Replaced,
    /// The resource was patched (PATCH).
    Patched,
    /// The resource was deleted (DELETE).
    Deleted,
}

impl ChangeOp {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Created => "created",
            ChangeOp::Replaced => "replaced",
            ChangeOp::Patched => "patched",
            ChangeOp::Deleted => "deleted",
        }
    }

    /// The operation stored as `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            ChangeOp::Created,
            ChangeOp::Replaced,
            ChangeOp::Patched,
            ChangeOp::Deleted,
        ]
        .into_iter()
        .find(|op| op.as_str() == name)
    }
}

/// One entry of a tenant's change feed. Sequence numbers start at 1 and increase by one per
/// committed change, without gaps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeEvent {
    /// The per-tenant sequence number.
    pub seq: u64,
    /// The changed resource's type.
    pub kind: ResourceKind,
    /// The changed resource's id.
    pub id: String,
    /// What happened.
    pub op: ChangeOp,
    /// The resource's version after the change (for a deletion: the last version it had).
    pub version: u64,
    /// When the change was committed.
    pub at: DateTime,
    /// Who made it ([`WriteContext::actor`]).
    pub actor: String,
    /// The request that made it ([`WriteContext::request_id`]).
    pub request_id: Option<String>,
}

/// The result of a bulk import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOutcome {
    /// The ids of the imported resources, in the order of the input documents.
    pub ids: Vec<String>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::json;

    #[test]
    fn a_page_budget_admits_the_first_resource_then_what_fits_and_stops_for_good() {
        let query = Query {
            max_page_bytes: Some(100),
            ..Query::default()
        };
        let mut budget = query.page_budget();
        assert!(budget.admit(250), "the first resource, however large");
        assert!(!budget.admit(1), "nothing is left after it");
        assert!(budget.is_full());
        let mut budget = query.page_budget();
        assert!(budget.admit(60) && budget.admit(40));
        assert!(!budget.admit(30));
        assert!(
            !budget.admit(0),
            "a page is contiguous: once stopped, it stays stopped"
        );
        assert_eq!(budget.taken(), 2);
        let mut unbounded = Query::default().page_budget();
        assert!((0..10).all(|_| unbounded.admit(usize::MAX)));
        assert!(!unbounded.is_full());
    }

    #[test]
    fn json_bytes_is_the_compact_size_for_plain_values() {
        let value = json!({"members": [{"value": "a1", "display": "Ann", "type": "User"}], "ok": true, "no": null});
        let text = serde_json::to_string(&value).unwrap();
        assert_eq!(PageBudget::json_bytes(&value), text.len());
    }

    #[test]
    fn a_closed_window_starts_no_write_and_says_whether_one_runs() {
        let window = WriteWindow::new();
        assert!(!window.close(), "nothing was running");
        assert!(window.is_closed());
        assert!(window.enter().is_none(), "closed: no write starts");

        let window = WriteWindow::new();
        let first = window.enter().expect("open");
        let second = window.enter().expect("open");
        drop(first);
        assert!(window.close(), "one write is still running: wait for it");
        assert!(window.enter().is_none());
        drop(second);
        assert!(!window.close(), "none running any more");
    }

    #[test]
    fn the_default_window_never_closes() {
        let window = WriteWindow::default();
        assert!(!window.close());
        assert!(!window.is_closed());
        assert!(window.enter().is_some());
        assert_eq!(window, WriteWindow::default());
        let real = WriteWindow::new();
        assert_eq!(real, real.clone());
        assert_ne!(real, WriteWindow::new());
    }
}
