//! Deciding one booking request: [`evaluate`] returns a [`Decision`] with the [`Reason`]s that
//! made it, so that an administrator can ask "why may Alice book the Boardroom?" and get an
//! answer that cites rules and limits.
//!
//! See the [`policy`](crate::policy) module for the semantics of rules, selectors and limits.

use crate::model::{Booking, Catalog, Person, PersonStatus, Resource};
use crate::policy::{CompiledPolicySet, CompiledRule, Effect, Rule};
use crate::time::{IsoWeek, MAX_UTC_OFFSET, Seconds, Timestamp, iso_week, local_day, week_index};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A booking request: a resource for `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BookingRequest {
    /// First instant of use.
    pub start: Timestamp,
    /// First instant after use (exclusive).
    pub end: Timestamp,
}

/// How far back a store loads a person's bookings for [`evaluate`], before the earliest instant
/// a decision concerns (the decision's time, or the start of the interval it judges if
/// earlier): a weekly limit counts the bookings of the same ISO week, which began at most seven
/// days, plus the tenant's UTC offset (at most [`MAX_UTC_OFFSET`], 18 hours), before it. Older
/// bookings never change a decision.
pub const LIMIT_HISTORY_SECONDS: Seconds = 8 * 86_400;
const _: () = assert!(LIMIT_HISTORY_SECONDS >= 7 * 86_400 + MAX_UTC_OFFSET as Seconds);

/// The answer to a booking request, with its reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    /// Whether the request may be booked.
    pub allowed: bool,
    /// What made the decision, in rule order: every deny that triggered, every allow that
    /// applied (granted, or refused on a limit), or the tenant default when no rule decided;
    /// or the one reason a request is refused before any rule is consulted.
    pub reasons: Vec<Reason>,
}

impl Decision {
    /// The rule to cite when the request is denied: the first deny rule that triggered, else
    /// the first allow rule whose limit refused it; `None` when allowed, or when the person's
    /// status, the request itself or the tenant default decided.
    pub fn forbidding_rule(&self) -> Option<&str> {
        if self.allowed {
            return None;
        }
        let denying = self.reasons.iter().find_map(|r| match r {
            Reason::Denied { rule, .. } => Some(rule.as_str()),
            _ => None,
        });
        denying.or_else(|| {
            self.reasons.iter().find_map(|r| match r {
                Reason::LimitExceeded { rule, .. } => Some(rule.as_str()),
                _ => None,
            })
        })
    }

    /// The first reason that speaks against the request, for a one-line explanation.
    pub fn main_objection(&self) -> Option<&Reason> {
        if self.allowed {
            return None;
        }
        self.reasons.iter().find(|r| r.effect() == Effect::Deny)
    }

    /// The decision and its reasons as text for people, one reason per line.
    pub fn explain(&self) -> String {
        let mut text = String::from(if self.allowed { "allowed" } else { "denied" });
        for reason in &self.reasons {
            text.push_str("\n- ");
            text.push_str(&reason.to_string());
        }
        text
    }
}

/// One reason for a [`Decision`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Reason {
    /// The person is inactive or former: refused before any rule is consulted.
    #[serde(rename_all = "camelCase")]
    PersonNotActive {
        /// The person's status.
        status: PersonStatus,
    },
    /// The request ends before (or when) it starts.
    #[serde(rename_all = "camelCase")]
    EmptyInterval {
        /// The requested start.
        start: Timestamp,
        /// The requested end.
        end: Timestamp,
    },
    /// The request is over before `now`.
    #[serde(rename_all = "camelCase")]
    InThePast {
        /// The requested end.
        end: Timestamp,
        /// The time of the decision.
        now: Timestamp,
    },
    /// A deny rule applies and triggered: without limits, or beyond one of them.
    #[serde(rename_all = "camelCase")]
    Denied {
        /// The rule's id.
        rule: String,
        /// The rule's name.
        name: String,
        /// The limit exceeded, for a deny rule with limits.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<LimitFailure>,
    },
    /// An allow rule applies and the request is within its limits.
    #[serde(rename_all = "camelCase")]
    Allowed {
        /// The rule's id.
        rule: String,
        /// The rule's name.
        name: String,
    },
    /// An allow rule applies but the request is beyond one of its limits (one reason per
    /// limit exceeded).
    #[serde(rename_all = "camelCase")]
    LimitExceeded {
        /// The rule's id.
        rule: String,
        /// The rule's name.
        name: String,
        /// The limit exceeded.
        limit: LimitFailure,
    },
    /// No rule allows and none denies: the tenant default decides.
    #[serde(rename_all = "camelCase")]
    TenantDefault {
        /// The default.
        effect: Effect,
    },
}

impl Reason {
    /// The rule this reason cites, if any.
    pub fn rule_id(&self) -> Option<&str> {
        match self {
            Reason::Denied { rule, .. }
            | Reason::Allowed { rule, .. }
            | Reason::LimitExceeded { rule, .. } => Some(rule),
            _ => None,
        }
    }

    /// Which way this reason points.
    pub fn effect(&self) -> Effect {
        match self {
            Reason::Allowed { .. } => Effect::Allow,
            Reason::TenantDefault { effect } => *effect,
            _ => Effect::Deny,
        }
    }

    /// The limit this reason is about, if any.
    pub fn limit(&self) -> Option<&LimitFailure> {
        match self {
            Reason::Denied { limit, .. } => limit.as_ref(),
            Reason::LimitExceeded { limit, .. } => Some(limit),
            _ => None,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::PersonNotActive { status } => write!(
                f,
                "the person is {status}: only active people may book or check in"
            ),
            Reason::EmptyInterval { start, end } => {
                write!(f, "the booking ends ({end}) before it starts ({start})")
            }
            Reason::InThePast { end, now } => {
                write!(f, "the booking is over ({end}) before now ({now})")
            }
            Reason::Denied {
                rule,
                name,
                limit: None,
            } => write!(f, "rule {rule:?} ({name}) denies it"),
            Reason::Denied {
                rule,
                name,
                limit: Some(limit),
            } => write!(f, "rule {rule:?} ({name}) denies it: {limit}"),
            Reason::Allowed { rule, name } => write!(f, "rule {rule:?} ({name}) allows it"),
            Reason::LimitExceeded { rule, name, limit } => {
                write!(f, "rule {rule:?} ({name}) would allow it, but {limit}")
            }
            Reason::TenantDefault { effect } => {
                write!(f, "no rule decides; the tenant default is {effect}")
            }
        }
    }
}

/// A limit a request goes beyond.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "limit")]
pub enum LimitFailure {
    /// It starts too many days ahead.
    #[serde(rename_all = "camelCase")]
    DaysAhead {
        /// The limit.
        max: u32,
        /// How many calendar days ahead it starts.
        requested: i64,
    },
    /// It lasts too long.
    #[serde(rename_all = "camelCase")]
    Duration {
        /// The limit, in seconds.
        max_seconds: Seconds,
        /// Its length, in seconds.
        requested_seconds: Seconds,
    },
    /// The person would have too many bookings that week.
    #[serde(rename_all = "camelCase")]
    BookingsPerWeek {
        /// The limit.
        max: u32,
        /// The ISO week, e.g. `2025-W03`.
        week: String,
        /// How many the person would have, this one included.
        would_have: u64,
    },
    /// The person would hold too many bookings at once.
    #[serde(rename_all = "camelCase")]
    Concurrent {
        /// The limit.
        max: u32,
        /// How many the person would hold during the request, this one included.
        would_hold: u64,
    },
}

impl fmt::Display for LimitFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitFailure::DaysAhead { max, requested } => {
                write!(f, "it starts {requested} days ahead and the limit is {max}")
            }
            LimitFailure::Duration {
                max_seconds,
                requested_seconds,
            } => write!(
                f,
                "it lasts {} and the limit is {}",
                HumanDuration(*requested_seconds),
                HumanDuration(*max_seconds)
            ),
            LimitFailure::BookingsPerWeek {
                max,
                week,
                would_have,
            } => write!(
                f,
                "it would make {would_have} bookings in week {week} and the limit is {max}"
            ),
            LimitFailure::Concurrent { max, would_hold } => write!(
                f,
                "it would make {would_hold} bookings held at once and the limit is {max}"
            ),
        }
    }
}

/// Seconds as `4h`, `1h30m`, `90s`.
struct HumanDuration(Seconds);

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0;
        if s <= 0 || s % 60 != 0 {
            return write!(f, "{s}s");
        }
        let (h, m) = (s / 3600, s % 3600 / 60);
        match (h, m) {
            (0, m) => write!(f, "{m}m"),
            (h, 0) => write!(f, "{h}h"),
            (h, m) => write!(f, "{h}h{m}m"),
        }
    }
}

/// Decides whether `person` may book `resource` for `request` at `now`, given the person's
/// existing bookings (`existing`; bookings of other people and cancelled ones are ignored).
///
/// `catalog` tells which resources the existing bookings are of, for the limits that count
/// bookings of the resources a rule selects; a booking of a resource missing from the catalog
/// counts only for rules that select every resource.
///
/// Inactive and former people are always denied; so are empty intervals and requests already
/// over at `now`. Otherwise the rules decide (see the [`policy`](crate::policy) module).
pub fn evaluate(
    policies: &CompiledPolicySet,
    catalog: &Catalog,
    person: &Person,
    resource: &Resource,
    request: BookingRequest,
    now: Timestamp,
    existing: &[Booking],
) -> Decision {
    if let Some(refusal) = refuse_before_rules(person, request) {
        return refusal;
    }
    if request.end <= now {
        return Decision {
            allowed: false,
            reasons: vec![Reason::InThePast {
                end: request.end,
                now,
            }],
        };
    }
    let mut matcher = PeopleMatcher::new(policies, person);
    decide(
        policies,
        catalog,
        &mut matcher,
        Some(resource),
        request,
        now,
        existing.iter(),
    )
}

fn refuse_before_rules(person: &Person, request: BookingRequest) -> Option<Decision> {
    if person.status != PersonStatus::Active {
        return Some(Decision {
            allowed: false,
            reasons: vec![Reason::PersonNotActive {
                status: person.status,
            }],
        });
    }
    if request.end <= request.start {
        return Some(Decision {
            allowed: false,
            reasons: vec![Reason::EmptyInterval {
                start: request.start,
                end: request.end,
            }],
        });
    }
    None
}

/// Re-checks an existing booking as if it were requested again by the person as they are now,
/// at the moment it was made: "how far ahead" counts from its `created_at`, and `existing` are
/// the other bookings to count against the limits.
pub(crate) fn recheck<'b>(
    policies: &CompiledPolicySet,
    catalog: &Catalog,
    matcher: &mut PeopleMatcher<'_>,
    booking: &Booking,
    existing: impl Iterator<Item = &'b Booking> + Clone,
) -> Decision {
    let request = BookingRequest {
        start: booking.start,
        end: booking.end,
    };
    if let Some(refusal) = refuse_before_rules(matcher.person, request) {
        return refusal;
    }
    // A resource no longer in the catalog cannot be judged by its selectors: only rules about
    // every resource speak for it.
    decide(
        policies,
        catalog,
        matcher,
        catalog.resource(&booking.resource),
        request,
        booking.created_at,
        existing,
    )
}

/// Whether the person matches each rule's people filter, computed at most once per rule: a
/// person's document does not change during one decision or one recomputation.
pub(crate) struct PeopleMatcher<'p> {
    pub(crate) person: &'p Person,
    /// 0 unknown, 1 matches, 2 does not.
    known: Vec<u8>,
}

impl<'p> PeopleMatcher<'p> {
    pub(crate) fn new(policies: &CompiledPolicySet, person: &'p Person) -> Self {
        PeopleMatcher {
            person,
            known: vec![0; policies.rules.len()],
        }
    }

    fn matches(&mut self, index: usize, rule: &CompiledRule) -> bool {
        match self.known.get(index) {
            Some(1) => return true,
            Some(2) => return false,
            _ => {}
        }
        let matches = rule
            .people
            .as_ref()
            .is_none_or(|filter| filter.matches(&self.person.document));
        if let Some(slot) = self.known.get_mut(index) {
            *slot = if matches { 1 } else { 2 };
        }
        matches
    }
}

fn decide<'b>(
    policies: &CompiledPolicySet,
    catalog: &Catalog,
    matcher: &mut PeopleMatcher<'_>,
    resource: Option<&Resource>,
    request: BookingRequest,
    horizon_from: Timestamp,
    existing: impl Iterator<Item = &'b Booking> + Clone,
) -> Decision {
    let mut reasons = Vec::new();
    let (mut denied, mut granted, mut refused_on_limits) = (false, false, false);
    // The person's other bookings with their resources, looked up once, when a limit counts.
    let mut holdings: Option<Vec<Holding<'_>>> = None;
    for index in policies.candidates(resource) {
        let Some(compiled) = policies.rules.get(index) else {
            continue;
        };
        if !matcher.matches(index, compiled) {
            continue;
        }
        let rule = &compiled.rule;
        let failures = limit_failures(
            policies,
            rule,
            request,
            horizon_from,
            || {
                existing
                    .clone()
                    .filter(|b| b.person == matcher.person.id && b.counts())
                    .map(|booking| Holding {
                        booking,
                        resource: catalog.resource(&booking.resource),
                        week: week_index(booking.start, policies.utc_offset),
                    })
                    .collect()
            },
            &mut holdings,
        );
        match rule.effect {
            Effect::Deny if rule.limits.is_empty() => {
                denied = true;
                reasons.push(Reason::Denied {
                    rule: rule.id.clone(),
                    name: rule.name.clone(),
                    limit: None,
                });
            }
            Effect::Deny => {
                denied |= !failures.is_empty();
                reasons.extend(failures.into_iter().map(|limit| Reason::Denied {
                    rule: rule.id.clone(),
                    name: rule.name.clone(),
                    limit: Some(limit),
                }));
            }
            Effect::Allow if failures.is_empty() => {
                granted = true;
                reasons.push(Reason::Allowed {
                    rule: rule.id.clone(),
                    name: rule.name.clone(),
                });
            }
            Effect::Allow => {
                refused_on_limits = true;
                reasons.extend(failures.into_iter().map(|limit| Reason::LimitExceeded {
                    rule: rule.id.clone(),
                    name: rule.name.clone(),
                    limit,
                }));
            }
        }
    }
    let allowed = if denied {
        false
    } else if granted {
        true
    } else if refused_on_limits {
        false
    } else {
        reasons.push(Reason::TenantDefault {
            effect: policies.default,
        });
        policies.default == Effect::Allow
    };
    Decision { allowed, reasons }
}

/// One of the person's other bookings, not cancelled, with what the limits ask of it.
struct Holding<'b> {
    booking: &'b Booking,
    /// `None` when the resource is no longer in the catalog.
    resource: Option<&'b Resource>,
    week: i64,
}

fn limit_failures<'b>(
    policies: &CompiledPolicySet,
    rule: &Rule,
    request: BookingRequest,
    horizon_from: Timestamp,
    load_holdings: impl FnOnce() -> Vec<Holding<'b>>,
    holdings: &mut Option<Vec<Holding<'b>>>,
) -> Vec<LimitFailure> {
    let limits = &rule.limits;
    let mut failures = Vec::new();
    if limits.is_empty() {
        return failures;
    }
    let offset = policies.utc_offset;
    if let Some(max) = limits.max_days_ahead {
        let requested =
            local_day(request.start, offset).saturating_sub(local_day(horizon_from, offset));
        if requested > i64::from(max) {
            failures.push(LimitFailure::DaysAhead { max, requested });
        }
    }
    if let Some(max_seconds) = limits.max_duration_seconds {
        let requested_seconds = request.end.saturating_sub(request.start);
        if requested_seconds > max_seconds {
            failures.push(LimitFailure::Duration {
                max_seconds,
                requested_seconds,
            });
        }
    }
    if limits.max_bookings_per_week.is_none() && limits.max_concurrent.is_none() {
        return failures;
    }
    let held: &[Holding<'b>] = holdings.get_or_insert_with(load_holdings);
    // A booking counts for this rule when it is of a resource the rule selects; one of a
    // resource gone from the catalog only for rules about every resource.
    let selected = |h: &&Holding<'b>| match h.resource {
        Some(r) => rule.resources.matches(r),
        None => rule.resources.is_everything(),
    };
    if let Some(max) = limits.max_bookings_per_week {
        let week = week_index(request.start, offset);
        let others = held
            .iter()
            .filter(|h| h.week == week)
            .filter(selected)
            .count();
        let would_have = u64::try_from(others).unwrap_or(u64::MAX).saturating_add(1);
        if would_have > u64::from(max) {
            let week: IsoWeek = iso_week(request.start, offset);
            failures.push(LimitFailure::BookingsPerWeek {
                max,
                week: week.to_string(),
                would_have,
            });
        }
    }
    if let Some(max) = limits.max_concurrent {
        let others = held
            .iter()
            .filter(|h| h.booking.is_live() && h.booking.overlaps(request.start, request.end))
            .filter(selected)
            .count();
        let would_hold = u64::try_from(others).unwrap_or(u64::MAX).saturating_add(1);
        if would_hold > u64::from(max) {
            failures.push(LimitFailure::Concurrent { max, would_hold });
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_people_write_them() {
        assert_eq!(HumanDuration(4 * 3600).to_string(), "4h");
        assert_eq!(HumanDuration(5400).to_string(), "1h30m");
        assert_eq!(HumanDuration(1800).to_string(), "30m");
        assert_eq!(HumanDuration(90).to_string(), "90s");
    }
}
