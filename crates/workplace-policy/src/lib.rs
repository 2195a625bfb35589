//! # workplace-policy
//!
//! Identity-driven workplace rules and lifecycle cascades: who may book which desks, rooms,
//! parking spaces, lockers and equipment, decided from the SCIM user (RFC 7643 section 4.1) the
//! identity provider keeps up to date, and what must be undone when that user is deactivated,
//! deleted or changed.
//!
//! - [`model`]: sites, floors, neighbourhoods, resources, assignments, bookings, and people
//!   derived from SCIM users (status from `active` and deletion, teams from `groups`).
//! - [`policy`]: rules as data (a SCIM filter over the user, RFC 7644 section 3.4.2.2, a
//!   resource selector, allow or deny, limits), compiled and indexed once per policy set.
//! - [`evaluate()`]: one booking request decided, with the reasons that decided it.
//! - [`cascade`]: what deactivation, deletion, reactivation, attribute changes and policy changes
//!   do to bookings and assignments, as [`Effects`] a store applies in the same transaction as
//!   the write that caused them; [`preview_policy_change`] for the dry run.
//! - [`time`]: instants as Unix seconds, calendar days and ISO weeks in the tenant's offset.
//!
//! **Layer invariant:** this crate is pure decisions over data handed to it. It has no storage,
//! no HTTP, no async and no clock: time is always a parameter (`now`), so every decision can be
//! replayed and tested, and the store layer owns persistence and transactions.
//!
//! ```
//! use serde_json::json;
//! use workplace_policy::{
//!     BookingRequest, Catalog, CompiledPolicySet, Person, PolicySet, Resource, ResourceKind, Site,
//!     evaluate,
//! };
//!
//! let policies: PolicySet = serde_json::from_value(json!({
//!     "rules": [{
//!         "id": "parking", "name": "Parking badge holders may park", "effect": "allow",
//!         "people": "groups[display eq \"Parking\"]",
//!         "resources": {"kinds": ["parking"]},
//!         "limits": {"maxDaysAhead": 7}
//!     }],
//!     "default": "deny"
//! }))?;
//! let policies = CompiledPolicySet::compile(&policies)?;
//! let space = Resource {
//!     id: "p1".into(), kind: ResourceKind::Parking, site: "lon".into(), floor: None,
//!     neighbourhood: None, name: "Space 1".into(), capacity: 1,
//! };
//! let catalog = Catalog::new(
//!     vec![Site { id: "lon".into(), name: "London".into() }], vec![], vec![], vec![space.clone()],
//! )?;
//! let alice = Person::from_scim("u1", json!({
//!     "userName": "alice", "active": true,
//!     "groups": [{"value": "g1", "display": "Parking", "type": "direct"}]
//! }), false);
//! let now = 1_750_000_000;
//! let request = BookingRequest { start: now + 3600, end: now + 4 * 3600 };
//! let decision = evaluate(&policies, &catalog, &alice, &space, request, now, &[]);
//! assert!(decision.allowed);
//! assert_eq!(decision.explain(), "allowed\n- rule \"parking\" (Parking badge holders may park) allows it");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod cascade;
pub mod error;
pub mod evaluate;
pub mod model;
pub mod policy;
pub mod time;

pub use cascade::{
    Action, CascadeContext, CascadeSettings, Command, Effects, FormerHistory, LostBooking, Preview,
    RecomputeMode, on_person_change, preview_policy_change,
};
pub use error::PolicyError;
pub use evaluate::{BookingRequest, Decision, LimitFailure, Reason, evaluate};
pub use model::{
    Actor, Assignment, Booking, BookingStatus, Catalog, Cause, Floor, Neighbourhood, Person,
    PersonStatus, Resource, ResourceKind, SeatReport, Site, Trigger, has_capacity, licensed_seats,
    teams_from_groups,
};
pub use policy::{CompiledPolicySet, Effect, Limits, PolicySet, ResourceSelector, Rule};
pub use time::{IsoWeek, Seconds, Timestamp};
