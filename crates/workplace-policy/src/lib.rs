#![doc = include_str!("../README.md")]

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
pub use evaluate::{
    BookingRequest, Decision, LIMIT_HISTORY_SECONDS, LimitFailure, Reason, evaluate,
};
pub use model::{
    Actor, Assignment, Booking, BookingStatus, Catalog, Cause, Floor, Neighbourhood, Person,
    PersonStatus, Resource, ResourceKind, SeatReport, Site, Trigger, has_capacity, licensed_seats,
    teams_from_groups,
};
pub use policy::{CompiledPolicySet, Effect, Limits, PolicySet, ResourceSelector, Rule};
pub use time::{IsoWeek, Seconds, Timestamp};
