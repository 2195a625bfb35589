//! Workplace persistence: the catalog (sites, floors, neighbourhoods, resources), the tenant's
//! policies, bookings, permanent assignments, and the ordered feed and audit log of everything
//! that happens to them, behind the [`WorkplaceStore`] trait.
//!
//! The decisions are the pure [`workplace_policy`] crate's; this module owns what it cannot:
//! transactions. Above all, the **lifecycle cascades** run *inside* the SCIM write that causes
//! them. When a [`Store`] write deactivates, deletes or changes a User (or changes a Group's
//! members or name, which changes its members' `groups`), the backend, in the same
//! transaction:
//!
//! 1. finds the people concerned who hold anything (a live booking that has not ended, or a
//!    permanent assignment); a write concerning nobody who holds anything costs one indexed
//!    lookup and nothing more;
//! 2. hands each such person, as they were before and after the write, with their holdings, to
//!    [`workplace_policy::on_person_change`] (through [`plan::person_cascade`], shared by every
//!    backend);
//! 3. writes the resulting cancellations, endings, flags and releases, and appends one
//!    [`FeedEvent`] per effect after the SCIM change's own event, citing the SCIM request.
//!
//! So a committed deactivation never leaves a future booking behind, and a rolled-back write
//! leaves no cancellation behind either.
//!
//! # Former people
//!
//! A User the identity provider deletes (RFC 7644 section 3.6) becomes a former person: the
//! deletion's cascade cancels what they hold, and their history is kept, unless the tenant's
//! [`CascadeSettings::former_history`] is `anonymise`. Then, in the same transaction, the
//! workplace history stops naming them ([`plan::Anonymisation`]): every booking of theirs, past
//! or future (its person, who cancelled it, the reasons), every feed and audit entry about a
//! booking or an assignment of theirs (`detail.person`, `detail.by`, `detail.reason`), and the
//! deletion's own cascade entries carry [`plan::anonymised_id`] instead of their SCIM id (and
//! instead of their `userName` where a reason begins with it). Their history stays grouped
//! under that one id, and [`WorkplaceStore::report`] counts them once as former. The SCIM
//! changes of the User itself (`created`, `patched`, `deleted` on the feed) keep the SCIM id:
//! the identity provider knows it, and they are the directory's history, not the workplace's.
//! Free text that mentions the person other than at the start of a reason is not rewritten.
//!
//! # The feed
//!
//! SCIM changes and workplace events share one per-tenant sequence: [`WorkplaceStore::feed`]
//! returns both, in commit order, gap-free. [`Store::events`] returns only the SCIM changes;
//! the positions workplace events hold are absent from it.

pub mod plan;

use crate::error::Result;
use crate::store::Store;
use crate::types::{TenantId, WriteContext};
use async_trait::async_trait;
use scim_schema::DateTime;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use workplace_policy::{
    Actor, Assignment, Booking, BookingRequest, CascadeSettings, Cause, Decision, Effect,
    PolicySet, Preview, SeatReport, Timestamp,
};

/// The kinds of catalog entries: the places of a tenant and the things people book in them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PlaceKind {
    /// [`workplace_policy::Site`].
    Site,
    /// [`workplace_policy::Floor`].
    Floor,
    /// [`workplace_policy::Neighbourhood`].
    Neighbourhood,
    /// [`workplace_policy::Resource`]: a desk, room, parking space, locker...
    Resource,
}

impl PlaceKind {
    /// Every kind, parents first (the order a catalog is built in).
    pub const ALL: [PlaceKind; 4] = [
        PlaceKind::Site,
        PlaceKind::Floor,
        PlaceKind::Neighbourhood,
        PlaceKind::Resource,
    ];

    /// The stored name, also the last segment of its API path in the plural (`sites`...).
    pub fn as_str(self) -> &'static str {
        match self {
            PlaceKind::Site => "site",
            PlaceKind::Floor => "floor",
            PlaceKind::Neighbourhood => "neighbourhood",
            PlaceKind::Resource => "resource",
        }
    }

    /// The kind stored as `name`.
    pub fn from_name(name: &str) -> Option<PlaceKind> {
        PlaceKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// Its subject on the feed.
    pub fn subject(self) -> FeedSubject {
        match self {
            PlaceKind::Site => FeedSubject::Site,
            PlaceKind::Floor => FeedSubject::Floor,
            PlaceKind::Neighbourhood => FeedSubject::Neighbourhood,
            PlaceKind::Resource => FeedSubject::Resource,
        }
    }
}

/// One catalog entry as stored: its JSON (a [`workplace_policy::Site`], `Floor`,
/// `Neighbourhood` or `Resource`, with its `id`) and its version (1 when created, +1 per
/// change), served as an entity tag.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaceRecord {
    /// What it is.
    pub kind: PlaceKind,
    /// Its id.
    pub id: String,
    /// Its document.
    pub document: Value,
    /// Its version.
    pub version: u64,
}

/// What a catalog write did to the entry, so that the API can answer 201 only for a creation
/// and 200 for a replacement or a replay that changed nothing (RFC 9110 section 9.3.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlaceChange {
    /// The entry did not exist; it is at version 1.
    Created,
    /// The entry existed with another document; its version went up by one.
    Replaced,
    /// The entry existed with the same document: nothing was written, no new version, nothing
    /// on the feed.
    Unchanged,
}

/// A tenant's workplace configuration: its policies and cascade settings. A tenant that never
/// set any has no rules, default `deny`, UTC, cancel on lost entitlement, keep history, at
/// version 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkplaceConfig {
    /// The rules, their default and the tenant's UTC offset.
    pub policies: PolicySet,
    /// What cascades do with lost entitlements and former people's history.
    pub settings: CascadeSettings,
    /// 0 until first set, then +1 per change (an entity tag for `If-Match`).
    pub version: u64,
}

impl WorkplaceConfig {
    /// Whether the tenant anonymises former people (`formerHistory: anonymise`): then a
    /// deleted person's provisioning log entries are scrubbed, whether or not they had
    /// workplace history to anonymise, and entries written after are checked for it.
    pub fn anonymises_former_people(&self) -> bool {
        self.settings.former_history == workplace_policy::FormerHistory::Anonymise
    }
}

impl Default for WorkplaceConfig {
    fn default() -> Self {
        WorkplaceConfig {
            policies: PolicySet {
                rules: Vec::new(),
                default: Effect::Deny,
                utc_offset_seconds: 0,
            },
            settings: CascadeSettings::default(),
            version: 0,
        }
    }
}

/// A flag a cascade put on a booking it was told not to cancel ([`RecomputeMode::Flag`]):
/// the person may no longer make it, and an administrator should decide.
///
/// [`RecomputeMode::Flag`]: workplace_policy::RecomputeMode::Flag
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookingFlag {
    /// Why, for people to read.
    pub reason: String,
    /// What triggered it, which request, which rule.
    pub cause: Cause,
    /// When it was flagged.
    pub at: Timestamp,
}

/// A booking as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookingRecord {
    /// The booking (id, person, resource, interval, status, when it was made).
    #[serde(flatten)]
    pub booking: Booking,
    /// The flag a cascade put on it, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag: Option<BookingFlag>,
    /// 1 when made, +1 per change.
    pub version: u64,
}

/// A request to book `resource` for `person` over `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewBooking {
    /// The person (SCIM User id).
    pub person: String,
    /// The resource id.
    pub resource: String,
    /// First instant of use.
    pub start: Timestamp,
    /// First instant after use.
    pub end: Timestamp,
}

impl NewBooking {
    /// The interval, as the policy engine takes it.
    pub fn request(&self) -> BookingRequest {
        BookingRequest {
            start: self.start,
            end: self.end,
        }
    }
}

/// What a booking or check-in attempt came to.
#[derive(Debug, Clone, PartialEq)]
pub enum BookingOutcome {
    /// Done: the booking as now stored.
    Done(Box<BookingRecord>),
    /// Refused by the policies (or the person's status, or the interval itself): the decision
    /// says why.
    Refused(Decision),
    /// Allowed, but the resource is fully booked over the interval: `capacity` live bookings
    /// already overlap it.
    Full {
        /// The resource's capacity.
        capacity: u32,
    },
}

/// Which bookings to list; every field narrows, `None` is no constraint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BookingFilter {
    /// Only this person's.
    pub person: Option<String>,
    /// Only this resource's.
    pub resource: Option<String>,
    /// Only those with this status: `booked`, `checkedIn`, `cancelled`, `completed`.
    pub status: Option<String>,
    /// Only those ending after this instant.
    pub ends_after: Option<Timestamp>,
    /// Only those starting before this instant.
    pub starts_before: Option<Timestamp>,
    /// Only flagged ones.
    pub flagged_only: bool,
    /// Keyset paging: only those whose id sorts after this one (bookings are listed by id,
    /// and ids sort in the order bookings were made).
    pub after_id: Option<String>,
    /// At most this many (the store caps it at 1,000).
    pub limit: usize,
}

/// What an entry of the feed is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FeedSubject {
    /// A SCIM User (a person).
    User,
    /// A SCIM Group (a team).
    Group,
    /// A booking.
    Booking,
    /// A permanent assignment.
    Assignment,
    /// The tenant's policies and cascade settings.
    Policies,
    /// A site.
    Site,
    /// A floor.
    Floor,
    /// A neighbourhood.
    Neighbourhood,
    /// A bookable resource.
    Resource,
}

impl FeedSubject {
    /// Every subject.
    pub const ALL: [FeedSubject; 9] = [
        FeedSubject::User,
        FeedSubject::Group,
        FeedSubject::Booking,
        FeedSubject::Assignment,
        FeedSubject::Policies,
        FeedSubject::Site,
        FeedSubject::Floor,
        FeedSubject::Neighbourhood,
        FeedSubject::Resource,
    ];

    /// The stable small integer stored in the events table's `kind` column (1 and 2 are the
    /// SCIM resource types' own codes, [`crate::ResourceKind::code`]).
    pub fn code(self) -> i64 {
        match self {
            FeedSubject::User => 1,
            FeedSubject::Group => 2,
            FeedSubject::Booking => 10,
            FeedSubject::Assignment => 11,
            FeedSubject::Policies => 12,
            FeedSubject::Site => 13,
            FeedSubject::Floor => 14,
            FeedSubject::Neighbourhood => 15,
            FeedSubject::Resource => 16,
        }
    }

    /// The subject stored as `code`.
    pub fn from_code(code: i64) -> Option<FeedSubject> {
        FeedSubject::ALL.into_iter().find(|s| s.code() == code)
    }

    /// The name served on the feed: `User`, `Booking`...
    pub fn as_str(self) -> &'static str {
        match self {
            FeedSubject::User => "User",
            FeedSubject::Group => "Group",
            FeedSubject::Booking => "Booking",
            FeedSubject::Assignment => "Assignment",
            FeedSubject::Policies => "Policies",
            FeedSubject::Site => "Site",
            FeedSubject::Floor => "Floor",
            FeedSubject::Neighbourhood => "Neighbourhood",
            FeedSubject::Resource => "Resource",
        }
    }

    /// The subject named `name`.
    pub fn from_name(name: &str) -> Option<FeedSubject> {
        FeedSubject::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

/// One entry of a tenant's feed: a SCIM change or a workplace event. Sequence numbers are the
/// tenant's, shared with [`crate::ChangeEvent`], starting at 1, without gaps.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEvent {
    /// The position in the tenant's feed.
    pub seq: u64,
    /// What it is about.
    pub subject: FeedSubject,
    /// The id of what it is about.
    pub id: String,
    /// What happened: `created`, `replaced`, `patched`, `deleted` for SCIM changes and
    /// catalog entries; `anonymised` for a User whose history was anonymised; `booked`,
    /// `cancelled`, `ended`, `flagged`, `checkedIn` for bookings; `assigned`, `released` for
    /// assignments; `changed` for policies.
    pub op: String,
    /// The subject's version after the event, where it has one.
    pub version: Option<u64>,
    /// When it was committed.
    pub at: DateTime,
    /// Who did it: the token label, or `system` for cascades.
    pub actor: String,
    /// The request that caused it: for a cascade, the SCIM request that triggered it.
    pub request_id: Option<String>,
    /// What the event carries: for a booking, its person, resource and interval, and for a
    /// cascade its `reason` and `cause` (trigger, request, rule).
    pub detail: Option<Value>,
}

/// Which feed entries the audit log returns; every field narrows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only entries about this subject type.
    pub subject: Option<FeedSubject>,
    /// Only entries about the subject with this id.
    pub id: Option<String>,
    /// Only entries concerning this person: about the User, or a booking or assignment of
    /// theirs (`detail.person`).
    pub person: Option<String>,
    /// Only entries caused by this request.
    pub request_id: Option<String>,
    /// Only entries after this sequence number (keyset paging).
    pub after_seq: u64,
    /// Only entries committed at or after this instant.
    pub since: Option<Timestamp>,
    /// Only entries committed before this instant.
    pub until: Option<Timestamp>,
    /// At most this many (the store caps it at 1,000).
    pub limit: usize,
}

/// The seat and booking report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkplaceReport {
    /// People by status; `active` is the licensed seats (inactive and former do not count).
    pub seats: SeatReport,
    /// Bookings by status (`booked`, `checkedIn`, `cancelled`, `completed`), every status
    /// present even at 0.
    pub bookings: BTreeMap<String, u64>,
    /// Bookings flagged by cascades and still live.
    pub flagged: u64,
}

/// The workplace half of a store: catalog, policies, bookings, assignments, feed and audit
/// log, all scoped to a tenant, every write transactional and on the feed. A backend that
/// implements it also runs the lifecycle cascades inside its [`Store`] writes (see the
/// [module documentation](self)).
///
/// `now` is a parameter wherever time matters, so callers (and tests) control the clock.
#[async_trait]
pub trait WorkplaceStore: Store {
    /// The tenant's policies and cascade settings.
    async fn workplace_config(&self, tenant: &TenantId) -> Result<WorkplaceConfig>;

    /// What replacing the policies and settings with these would do to future bookings, without
    /// changing anything (the dry run). Fails like [`WorkplaceStore::set_policies`] on invalid
    /// policies.
    async fn preview_policies(
        &self,
        tenant: &TenantId,
        policies: &PolicySet,
        settings: CascadeSettings,
        now: Timestamp,
    ) -> Result<Preview>;

    /// Replaces the policies and settings, if the configuration is at `expected_version` (when
    /// given), and applies, in the same transaction, what [`WorkplaceStore::preview_policies`]
    /// would have shown: bookings the change takes away are cancelled (or flagged). Policies
    /// are compiled against the tenant's User schema first; an invalid one (a filter that does
    /// not parse, an unknown attribute, a duplicate rule id) changes nothing.
    async fn set_policies(
        &self,
        tenant: &TenantId,
        policies: PolicySet,
        settings: CascadeSettings,
        expected_version: Option<u64>,
        ctx: &WriteContext,
        now: Timestamp,
    ) -> Result<(WorkplaceConfig, Preview)>;

    /// Creates or replaces a catalog entry (`document` carries its `id`), if it is at
    /// `expected_version` (when given; 0 means "must not exist"). The catalog must stay
    /// consistent: parents exist, a resource's floor and neighbourhood are at its site,
    /// capacity at least 1. Returns the entry as stored and what the write did
    /// ([`plan::place_change`]).
    async fn put_place(
        &self,
        tenant: &TenantId,
        kind: PlaceKind,
        document: Value,
        expected_version: Option<u64>,
        ctx: &WriteContext,
    ) -> Result<(PlaceRecord, PlaceChange)>;

    /// Deletes a catalog entry. Refused (conflict) while anything refers to it: a child place,
    /// a live booking, an assignment.
    async fn delete_place(
        &self,
        tenant: &TenantId,
        kind: PlaceKind,
        id: &str,
        ctx: &WriteContext,
    ) -> Result<()>;

    /// One catalog entry.
    async fn place(
        &self,
        tenant: &TenantId,
        kind: PlaceKind,
        id: &str,
    ) -> Result<Option<PlaceRecord>>;

    /// Every catalog entry of a kind, by id.
    async fn places(&self, tenant: &TenantId, kind: PlaceKind) -> Result<Vec<PlaceRecord>>;

    /// Why `person` may or may not book `resource` over `request` at `now`: the policies'
    /// decision with its reasons, without booking anything.
    async fn evaluate_booking(
        &self,
        tenant: &TenantId,
        person: &str,
        resource: &str,
        request: BookingRequest,
        now: Timestamp,
    ) -> Result<Decision>;

    /// Books, if the policies allow it at `now` and the resource has room over the interval,
    /// checked and written in one transaction (so two concurrent requests cannot both take the
    /// last place).
    async fn book(
        &self,
        tenant: &TenantId,
        request: NewBooking,
        ctx: &WriteContext,
        now: Timestamp,
    ) -> Result<BookingOutcome>;

    /// Cancels a live booking (`by` a person or an administrator, with a reason). Cancelling a
    /// cancelled booking returns it unchanged; a completed one is a conflict.
    async fn cancel_booking(
        &self,
        tenant: &TenantId,
        id: &str,
        by: Actor,
        reason: &str,
        ctx: &WriteContext,
        now: Timestamp,
    ) -> Result<BookingRecord>;

    /// Checks the person in: only a booked booking whose interval contains `now` (or starts
    /// within the next 15 minutes), of a person who is active and still entitled to it now.
    async fn check_in(
        &self,
        tenant: &TenantId,
        id: &str,
        ctx: &WriteContext,
        now: Timestamp,
    ) -> Result<BookingOutcome>;

    /// One booking.
    async fn booking(&self, tenant: &TenantId, id: &str) -> Result<Option<BookingRecord>>;

    /// Bookings, by id (the order they were made).
    async fn bookings(
        &self,
        tenant: &TenantId,
        filter: &BookingFilter,
    ) -> Result<Vec<BookingRecord>>;

    /// Assigns `resource` to `person` permanently. The person must be an active User of the
    /// tenant; a resource has at most one assignment (conflict otherwise).
    async fn assign(
        &self,
        tenant: &TenantId,
        person: &str,
        resource: &str,
        ctx: &WriteContext,
        now: Timestamp,
    ) -> Result<Assignment>;

    /// Releases an assignment; `false` if there is none with this id.
    async fn release_assignment(
        &self,
        tenant: &TenantId,
        id: &str,
        ctx: &WriteContext,
    ) -> Result<bool>;

    /// Assignments, all of them or one person's, by id.
    async fn assignments(&self, tenant: &TenantId, person: Option<&str>)
    -> Result<Vec<Assignment>>;

    /// The assignment with this id, if the tenant has it (the `Location` that
    /// [`WorkplaceStore::assign`]'s answer names).
    async fn assignment(&self, tenant: &TenantId, id: &str) -> Result<Option<Assignment>>;

    /// Up to `limit` (capped at 1,000) feed entries after `after_seq`, in order: SCIM changes
    /// and workplace events together. Resumable: pass the last `seq` seen. A reader never
    /// misses an entry, even one committed late by a concurrent writer.
    async fn feed(&self, tenant: &TenantId, after_seq: u64, limit: usize)
    -> Result<Vec<FeedEvent>>;

    /// The audit log: feed entries narrowed by `filter`, in order.
    async fn audit(&self, tenant: &TenantId, filter: &AuditFilter) -> Result<Vec<FeedEvent>>;

    /// Licensed seats (people by status) and bookings by status.
    async fn report(&self, tenant: &TenantId) -> Result<WorkplaceReport>;
}
