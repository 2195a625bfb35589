//! The operator's half of a store: the **provisioning log** (every authenticated request to a
//! tenant's SCIM endpoints: what the identity provider sent, what scimd answered, linked to the
//! feed entries it caused), the **sync health** of each token computed from it, and
//! **operator tokens**, which are server-wide (a token row of [`Store`] belongs to one tenant).
//!
//! The server records; the store keeps, narrows and prunes. What a backend writes and how it
//! narrows a listing are decided here, once: [`RequestRecord::bytes`] (what an entry costs
//! against its tenant's size budget), [`where_clause`] (the SQL of a [`RequestFilter`], with
//! the backend's placeholders), [`activity_minute`] and [`TokenActivity::health`] (the sync
//! health windows), [`Retention`] (what pruning removes). A backend only spells the statements.
//!
//! Log entries are written off the request path and in batches ([`AdminStore::append_requests`]):
//! an entry lost in a crash is acceptable, a lost SCIM write is not, so a log write never joins a
//! SCIM write's transaction.

use crate::error::{Result, StoreError};
use crate::types::{IssuedToken, ResourceKind, TenantId, TokenInfo};
use crate::workplace::WorkplaceStore;
use async_trait::async_trait;

pub mod segment;
use scim_schema::DateTime;

/// The most entries one listing returns.
pub const MAX_PAGE: usize = 1_000;

/// The longest prefix a `scimType` or detail search takes, in bytes.
pub const MAX_PREFIX_BYTES: usize = 256;

/// The longest path (with its query) an entry keeps, in bytes; the rest is cut.
pub const MAX_PATH_BYTES: usize = 4 * 1024;

/// The longest error detail an entry keeps, in bytes.
pub const MAX_DETAIL_BYTES: usize = 1024;

/// How long the per-minute request counters behind sync health are kept, in seconds (the
/// longest window they answer is a day).
pub const ACTIVITY_KEPT_SECONDS: i64 = 2 * 86_400;

/// One answered request, as the server hands it to the store: redacted, bounded, ready to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// The tenant whose endpoint was called (the token's tenant).
    pub tenant: TenantId,
    /// The server's request id (the `X-Request-Id` answer header, and `request_id` on the feed
    /// entries the request caused).
    pub request_id: String,
    /// When the request arrived.
    pub at: DateTime,
    /// The public id of the token that authenticated it.
    pub token_id: String,
    /// The token's label: which identity provider connection called.
    pub token_label: String,
    /// The HTTP method.
    pub method: String,
    /// The path and query, as sent (at most [`MAX_PATH_BYTES`]).
    pub path: String,
    /// The status answered.
    pub status: u16,
    /// The `scimType` of an error answer (RFC 7644 section 3.12).
    pub scim_type: Option<String>,
    /// The detail of an error answer (at most [`MAX_DETAIL_BYTES`]).
    pub detail: Option<String>,
    /// How long the answer took, in microseconds.
    pub duration_us: u64,
    /// The resource type the request concerned, when it named or created one.
    pub resource_type: Option<ResourceKind>,
    /// The resource's id, when the path names it or the answer created it.
    pub resource_id: Option<String>,
    /// The request body, redacted (JSON text; a truncated one ends with a marker).
    pub request_body: Option<String>,
    /// The response body of an error answer (JSON text).
    pub response_body: Option<String>,
}

/// What an entry with these texts counts against its tenant's size budget: their lengths and a
/// fixed allowance for the row and its index entries.
fn counted_bytes<'a>(texts: impl Iterator<Item = &'a str>) -> u64 {
    const ROW_ALLOWANCE: usize = 200;
    let total: usize = texts.map(str::len).sum();
    (total + ROW_ALLOWANCE) as u64
}

impl RequestRecord {
    /// What the entry counts against its tenant's size budget ([`Retention::max_bytes`]): its
    /// texts and a fixed allowance for the row and its index entries.
    pub fn bytes(&self) -> u64 {
        let texts = [
            Some(&self.request_id),
            Some(&self.token_id),
            Some(&self.token_label),
            Some(&self.method),
            Some(&self.path),
            self.scim_type.as_ref(),
            self.detail.as_ref(),
            self.resource_id.as_ref(),
            self.request_body.as_ref(),
            self.response_body.as_ref(),
        ];
        counted_bytes(texts.into_iter().flatten().map(String::as_str))
    }

    /// Whether the answer was an error (4xx or 5xx).
    pub fn is_error(&self) -> bool {
        self.status >= 400
    }

    /// What an entry appended after its person's anonymisation (it waited in the server's
    /// queue while the deletion committed) is checked against, so that it is stored scrubbed
    /// like the entries the anonymisation found ([`segment::scrub`]): the person's anonymised
    /// id, for an entry about a User, and the request id, for a write whose feed entries may
    /// name an anonymised person. `None` when the entry holds nothing to scrub (no body, no
    /// query) or could concern nobody.
    pub fn anonymisation_probe(&self) -> Option<(Option<String>, Option<&str>)> {
        if self.request_body.is_none() && self.response_body.is_none() && !self.path.contains('?') {
            return None;
        }
        let person = match (self.resource_type, &self.resource_id) {
            (Some(ResourceKind::User), Some(id)) => Some(crate::workplace::plan::anonymised_id(id)),
            _ => None,
        };
        let request = (self.method != "GET").then_some(self.request_id.as_str());
        (person.is_some() || request.is_some()).then_some((person, request))
    }

    /// The record as the scrub leaves it: no bodies, no query string.
    pub fn scrub(&mut self) {
        self.request_body = None;
        self.response_body = None;
        if let Some(query) = self.path.find('?') {
            self.path.truncate(query);
        }
    }
}

/// The query behind [`RequestRecord::anonymisation_probe`]: whether the tenant's feed names
/// the person's anonymised id, or an anonymised person among the request's entries. Parameters
/// (placeholders 1 to 3): the tenant's key, the anonymised id (or NULL), the request id (or
/// NULL). Each half is one lookup in an index of the feed (by person, by request).
pub fn anonymised_probe_statement(dialect: &dyn LogDialect) -> String {
    let (tenant, person, request) = (
        dialect.placeholder(1),
        dialect.placeholder(2),
        dialect.placeholder(3),
    );
    let feed = dialect.feed_person();
    let (by_person, by_request) = (
        dialect.feed_index("events_by_person"),
        dialect.feed_index("events_by_request"),
    );
    format!(
        "SELECT EXISTS (SELECT 1 FROM events{by_person} WHERE tenant = {tenant} AND {feed} = {person}) \
         OR EXISTS (SELECT 1 FROM events{by_request} WHERE tenant = {tenant} AND request_id = {request} \
         AND {feed} LIKE 'anonymised-%')"
    )
}

/// One kept entry of the provisioning log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRequest {
    /// The record, as written (its bodies scrubbed if its person was anonymised since).
    pub record: RequestRecord,
    /// Whether its bodies and query were scrubbed because a person it concerned was anonymised
    /// (`formerHistory: anonymise`).
    pub scrubbed: bool,
}

/// Which statuses a listing keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// Exactly this status.
    Exact(u16),
    /// A class: `4` for 400 to 499.
    Class(u8),
}

/// Which entries [`AdminStore::requests`] returns, newest first. Every field narrows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestFilter {
    /// By status or status class.
    pub status: Option<StatusFilter>,
    /// By HTTP method (upper case).
    pub method: Option<String>,
    /// By the resource type the request concerned.
    pub resource_type: Option<ResourceKind>,
    /// By the resource id the request named or created.
    pub resource_id: Option<String>,
    /// Requests concerning this person (a User id): about the User, or having caused a feed
    /// entry about them (a group change that moved their rights, a cascade on their bookings).
    pub person: Option<String>,
    /// By the token that authenticated it.
    pub token_id: Option<String>,
    /// At or after this instant.
    pub since: Option<DateTime>,
    /// Before this instant.
    pub until: Option<DateTime>,
    /// Errors whose `scimType` starts with this (case-sensitive, as RFC 7644 spells them).
    pub scim_type_prefix: Option<String>,
    /// Errors whose detail starts with this (case-sensitive).
    pub detail_prefix: Option<String>,
    /// Continue after this cursor (from [`RequestPage::next`]).
    pub cursor: Option<String>,
    /// At most this many (capped at [`MAX_PAGE`]; 0 means the cap).
    pub limit: usize,
}

impl RequestFilter {
    /// The page size this filter asks for, within the cap.
    pub fn page_size(&self) -> usize {
        if self.limit == 0 {
            MAX_PAGE
        } else {
            self.limit.min(MAX_PAGE)
        }
    }

    /// Checks what the store cannot narrow by index: prefixes within their bound and not empty.
    pub fn check(&self) -> Result<()> {
        for (name, prefix) in [
            ("scimType", &self.scim_type_prefix),
            ("detail", &self.detail_prefix),
        ] {
            if let Some(prefix) = prefix {
                if prefix.is_empty() || prefix.len() > MAX_PREFIX_BYTES {
                    return Err(StoreError::Invalid {
                        scim_type: scim_schema::ScimType::InvalidValue,
                        detail: format!(
                            "the {name} prefix must be 1 to {MAX_PREFIX_BYTES} bytes long"
                        ),
                    });
                }
            }
        }
        Ok(())
    }
}

/// One page of the log, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPage {
    /// The entries.
    pub entries: Vec<LoggedRequest>,
    /// The cursor of the next (older) page, if there may be one.
    pub next: Option<String>,
}

/// The last error a token got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastError {
    /// Its request.
    pub request_id: String,
    /// When.
    pub at: DateTime,
    /// The status.
    pub status: u16,
    /// Its `scimType`.
    pub scim_type: Option<String>,
    /// Its detail.
    pub detail: Option<String>,
}

/// What a token did lately, from the log ([`AdminStore::request_activity`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenActivity {
    /// The token.
    pub token_id: String,
    /// Its last logged request.
    pub last_request: Option<DateTime>,
    /// Requests in the last hour (by minute: the current minute and the 59 before it).
    pub requests_hour: u64,
    /// Errors in the last hour.
    pub errors_hour: u64,
    /// Requests in the last day.
    pub requests_day: u64,
    /// Errors in the last day.
    pub errors_day: u64,
    /// Its last error, if it got one in the retained log.
    pub last_error: Option<LastError>,
}

/// A token's sync health: whether its identity provider is calling as it used to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncState {
    /// It has never called.
    Never,
    /// It called within the silent period.
    Calling,
    /// It used to call, and has not for longer than the silent period.
    Silent,
}

impl SyncState {
    /// The state's name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Never => "never",
            SyncState::Calling => "calling",
            SyncState::Silent => "silent",
        }
    }
}

impl TokenActivity {
    /// Nothing logged for `token_id`.
    pub fn none(token_id: &str) -> TokenActivity {
        TokenActivity {
            token_id: token_id.to_owned(),
            last_request: None,
            requests_hour: 0,
            errors_hour: 0,
            requests_day: 0,
            errors_day: 0,
            last_error: None,
        }
    }

    /// The token's state at `now`, silent after `silent_after_seconds` without a request.
    /// `last_used` is the token's own record (to the minute), which outlives the log.
    pub fn health(
        &self,
        last_used: Option<DateTime>,
        now: DateTime,
        silent_after_seconds: i64,
    ) -> SyncState {
        let last = match (self.last_request, last_used) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        match last {
            None => SyncState::Never,
            Some(last) if now.unix_seconds - last.unix_seconds > silent_after_seconds => {
                SyncState::Silent
            }
            Some(_) => SyncState::Calling,
        }
    }
}

/// The minute an instant falls in (Unix seconds / 60): the per-minute request counters are
/// keyed by it.
pub fn activity_minute(at: DateTime) -> i64 {
    at.unix_seconds.div_euclid(60)
}

/// The first minute of the hour and of the day windows that end at `now`'s minute.
pub fn activity_windows(now: DateTime) -> (i64, i64) {
    let minute = activity_minute(now);
    (minute - 59, minute - 24 * 60 + 1)
}

/// How much of its log a tenant keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Entries older than this many seconds are removed (default 30 days).
    pub max_age_seconds: i64,
    /// Beyond this many bytes ([`RequestRecord::bytes`]), the oldest entries are removed
    /// (default 1 GiB).
    pub max_bytes: u64,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            max_age_seconds: 30 * 86_400,
            max_bytes: 1 << 30,
        }
    }
}

impl Retention {
    /// Entries before this instant (in nanoseconds since the epoch) are past their age.
    pub fn cutoff_ns(&self, now: DateTime) -> i64 {
        datetime_ns(now).saturating_sub(self.max_age_seconds.saturating_mul(1_000_000_000))
    }
}

/// What one pruning pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Entries removed.
    pub entries: u64,
    /// Whether more is due: the pass stopped at its budget.
    pub more: bool,
}

/// An instant as nanoseconds since the epoch (saturating), as the log stores it.
pub fn datetime_ns(at: DateTime) -> i64 {
    crate::document::to_nanos(at)
}

/// The instant of nanoseconds since the epoch.
pub fn datetime_of_ns(ns: i64) -> DateTime {
    crate::document::from_nanos(ns)
}

/// How a backend spells the feed statements of this module.
pub trait LogDialect {
    /// The placeholder of parameter `index` (from 1): `?1` for SQLite, `$1` for PostgreSQL.
    fn placeholder(&self, index: usize) -> String;
    /// The expression of a feed entry's person (`detail.person`) in the `events` table, as the
    /// backend's index of it spells it.
    fn feed_person(&self) -> &'static str;
    /// What follows `FROM events` to read it through the index `name` (`events_by_person`,
    /// `events_by_request`): SQLite's `INDEXED BY` (without statistics its planner scans the
    /// tenant's feed instead), nothing where the planner has statistics (PostgreSQL).
    fn feed_index(&self, name: &'static str) -> String;
}

/// The request ids of the feed entries that name a person (`detail.person`), for the person
/// narrowing and the scrub: the requests that caused something to them (a group change that
/// cancelled a booking). Parameters: the tenant's key, the person's id. One lookup in the
/// feed's index by person; at most 10,000.
pub fn linked_requests_statement(dialect: &dyn LogDialect) -> String {
    format!(
        "SELECT DISTINCT request_id FROM events{} WHERE tenant = {} AND {} = {} \
         AND request_id IS NOT NULL LIMIT 10000",
        dialect.feed_index("events_by_person"),
        dialect.placeholder(1),
        dialect.feed_person(),
        dialect.placeholder(2)
    )
}

/// The operator's half of a store (see the [module documentation](self)).
#[async_trait]
pub trait AdminStore: WorkplaceStore {
    // ---- the provisioning log -----------------------------------------------------------

    /// Keeps `records` (of any tenants), in one transaction, and counts them in the
    /// per-minute activity of their tokens. Records of a tenant deleted meanwhile are dropped.
    ///
    /// The batch is encoded on the calling thread, about a millisecond of CPU per
    /// [`SEGMENT_ENTRIES`](segment::SEGMENT_ENTRIES) entries: call it from a thread that may
    /// do such work (scimd calls it from the provisioning log's own thread), not from a task
    /// that answers requests.
    async fn append_requests(&self, records: Vec<RequestRecord>) -> Result<()>;

    /// The tenant's entries that `filter` selects, newest first, one page.
    async fn requests(&self, tenant: &TenantId, filter: &RequestFilter) -> Result<RequestPage>;

    /// The tenant's entry of the request `request_id`.
    async fn request(&self, tenant: &TenantId, request_id: &str) -> Result<Option<LoggedRequest>>;

    /// What each token of the tenant did in the hour and the day before `now`.
    async fn request_activity(
        &self,
        tenant: &TenantId,
        now: DateTime,
    ) -> Result<Vec<TokenActivity>>;

    /// Removes, for every tenant, entries older than `retention` allows and the oldest beyond
    /// its size, at most `budget` entries per transaction and per call (so that no write lock
    /// is held long); [`Pruned::more`] says whether to call again. Also removes activity
    /// counters older than [`ACTIVITY_KEPT_SECONDS`].
    async fn prune_requests(
        &self,
        retention: Retention,
        now: DateTime,
        budget: usize,
    ) -> Result<Pruned>;

    // ---- operator tokens ----------------------------------------------------------------

    /// Issues a server-wide operator token (it may use any tenant's admin API). The secret is
    /// returned once and stored as its digest.
    async fn issue_operator_token(&self, label: &str) -> Result<IssuedToken>;

    /// The operator token a secret belongs to, or `None` if unknown or revoked. Records its
    /// use to the minute, as tenant tokens do.
    async fn authenticate_operator(&self, secret: &str) -> Result<Option<TokenInfo>>;

    /// Every operator token (revoked ones included), oldest first.
    async fn list_operator_tokens(&self) -> Result<Vec<TokenInfo>>;

    /// Revokes an operator token; `false` if there is none of that id or it was revoked.
    async fn revoke_operator_token(&self, token_id: &str) -> Result<bool>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_is_silent_after_the_period_and_never_without_calls() {
        let at = |s| DateTime {
            unix_seconds: s,
            nanos: 0,
        };
        let activity = TokenActivity::none("t");
        assert_eq!(activity.health(None, at(0), 7200), SyncState::Never);
        assert_eq!(
            activity.health(Some(at(0)), at(7200), 7200),
            SyncState::Calling
        );
        assert_eq!(
            activity.health(Some(at(0)), at(7201), 7200),
            SyncState::Silent
        );
    }

    #[test]
    fn nanoseconds_round_trip() {
        let at = DateTime {
            unix_seconds: 1_700_000_000,
            nanos: 123,
        };
        assert_eq!(datetime_of_ns(datetime_ns(at)), at);
        assert_eq!(activity_windows(at).0, activity_minute(at) - 59);
    }

    #[test]
    fn a_scrubbed_record_keeps_no_body_nor_query() {
        let mut record = RequestRecord {
            tenant: crate::backend::tenant_id(1),
            request_id: "r".into(),
            at: DateTime {
                unix_seconds: 0,
                nanos: 0,
            },
            token_id: "t".into(),
            token_label: "l".into(),
            method: "PATCH".into(),
            path: "/Users/1?attributes=userName".into(),
            status: 200,
            scim_type: None,
            detail: None,
            duration_us: 1,
            resource_type: Some(ResourceKind::User),
            resource_id: Some("1".into()),
            request_body: Some("{}".into()),
            response_body: None,
        };
        assert!(record.anonymisation_probe().is_some());
        record.scrub();
        assert_eq!(record.path, "/Users/1");
        assert!(record.request_body.is_none());
        assert!(record.anonymisation_probe().is_none());
    }
}
