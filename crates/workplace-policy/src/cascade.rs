//! Lifecycle cascades: what must happen to a person's bookings and assignments when the identity
//! provider changes them (RFC 7644 sections 3.5 and 3.6) or an administrator changes the
//! policies, decided as pure functions that return [`Effects`], the commands a store applies in
//! the same transaction as the write that caused them. Every command carries its reason and the
//! [`Cause`]: the trigger, the request id, and the rule when one forbids what is undone.
//!
//! - **Leaving** (deactivated, `active` false in any dialect, or deleted): every future booking is
//!   cancelled; a booking in progress that is checked in ends now, one not checked in is
//!   cancelled; every permanent assignment is released; past bookings stay as history. Nothing
//!   else grants rights (rights are computed from the policies on demand), so the effect list is
//!   the whole revocation.
//! - **Reactivation**: nothing is un-cancelled and no assignment comes back; rights are
//!   recomputed, which is only the policies applying to the person again.
//! - **Attribute or membership change**: each future booking is re-checked as if the person, as
//!   they now are, requested it when it was made, in the order the bookings were made (so when a
//!   weekly allowance shrinks, the latest-made bookings go first). A booking the change takes
//!   away (refused now, allowed for the person as they were before) is cancelled, or only
//!   flagged if the tenant says [`RecomputeMode::Flag`], citing the rule that now forbids it, or,
//!   when only the tenant default does, the rule that used to allow it. A booking refused both
//!   before and after was not refused by this change: it is left alone, so a flagged booking is
//!   not flagged again at every update. Bookings in progress are left alone.
//! - **Policy change**: the same re-check for every person, under the old and the new policies
//!   ([`preview_policy_change`]). The preview is the plan: [`Preview::into_effects`] applies it.

use crate::evaluate::{Decision, PeopleMatcher, Reason, recheck};
use crate::model::{
    Actor, Assignment, Booking, BookingStatus, Catalog, Cause, Person, PersonStatus, Trigger,
};
use crate::policy::CompiledPolicySet;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;

/// What to do with future bookings a person may no longer make.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RecomputeMode {
    /// Cancel them.
    #[default]
    Cancel,
    /// Keep them and flag them for an administrator to decide.
    Flag,
}

/// What happens to a former person's history.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FormerHistory {
    /// Keep it as it is.
    #[default]
    Keep,
    /// Anonymise it (the store replaces the person's identity in their history).
    Anonymise,
}

/// A tenant's cascade settings.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CascadeSettings {
    /// Cancel or flag bookings a change of attributes or policies makes impossible.
    #[serde(default)]
    pub on_lost_entitlement: RecomputeMode,
    /// Keep or anonymise a former person's history.
    #[serde(default)]
    pub former_history: FormerHistory,
}

/// Everything a cascade decides against, besides the person and their holdings.
#[derive(Debug, Clone, Copy)]
pub struct CascadeContext<'a> {
    /// The tenant's policies.
    pub policies: &'a CompiledPolicySet,
    /// The tenant's places and resources.
    pub catalog: &'a Catalog,
    /// The tenant's cascade settings.
    pub settings: CascadeSettings,
    /// The time of the write that triggers the cascade.
    pub now: Timestamp,
}

/// One thing for the store to do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "command")]
pub enum Command {
    /// Set a live booking to cancelled, by [`Actor::System`], at the cascade's time.
    #[serde(rename_all = "camelCase")]
    CancelBooking {
        /// The booking.
        booking: String,
        /// Its person.
        person: String,
    },
    /// Set a checked-in booking to completed at `at`: its use ends now.
    #[serde(rename_all = "camelCase")]
    EndBooking {
        /// The booking.
        booking: String,
        /// Its person.
        person: String,
        /// When use ends.
        at: Timestamp,
    },
    /// Keep a booking but flag it for an administrator: the person may no longer make it.
    #[serde(rename_all = "camelCase")]
    FlagBooking {
        /// The booking.
        booking: String,
        /// Its person.
        person: String,
    },
    /// Remove a permanent assignment.
    #[serde(rename_all = "camelCase")]
    ReleaseAssignment {
        /// The assignment.
        assignment: String,
        /// Its person.
        person: String,
        /// Its resource.
        resource: String,
    },
    /// Anonymise a former person's history.
    #[serde(rename_all = "camelCase")]
    AnonymisePerson {
        /// The person.
        person: String,
    },
}

/// A command with its reason (for people) and its cause (for the audit log).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    /// What to do.
    #[serde(flatten)]
    pub command: Command,
    /// Why, for people to read.
    pub reason: String,
    /// What triggered it, which request, which rule.
    pub cause: Cause,
}

/// The commands a cascade decided, in the order to apply them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Effects {
    /// The commands.
    pub items: Vec<Action>,
}

impl Effects {
    /// Whether there is nothing to do.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// How many commands there are.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The commands in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Action> {
        self.items.iter()
    }

    /// Applies the commands to in-memory bookings and assignments at `now`: the reference
    /// semantics a store's transaction must reproduce. Cancellation and ending only touch
    /// bookings still live (so applying twice changes nothing more); flags and anonymisation
    /// concern records this model does not hold and change nothing here.
    pub fn apply(
        &self,
        bookings: &mut [Booking],
        assignments: &mut Vec<Assignment>,
        now: Timestamp,
    ) {
        let positions: HashMap<String, usize> = bookings
            .iter()
            .enumerate()
            .map(|(i, b)| (b.id.clone(), i))
            .collect();
        for effect in &self.items {
            match &effect.command {
                Command::CancelBooking { booking, .. } => {
                    if let Some(b) = positions.get(booking).and_then(|&i| bookings.get_mut(i))
                        && b.is_live()
                    {
                        b.status = BookingStatus::Cancelled {
                            by: Actor::System,
                            reason: effect.reason.clone(),
                            at: now,
                            cause: Some(effect.cause.clone()),
                        };
                    }
                }
                Command::EndBooking { booking, at, .. } => {
                    if let Some(b) = positions.get(booking).and_then(|&i| bookings.get_mut(i))
                        && b.status == BookingStatus::CheckedIn
                    {
                        b.status = BookingStatus::Completed { at: *at };
                    }
                }
                Command::ReleaseAssignment { assignment, .. } => {
                    assignments.retain(|a| &a.id != assignment);
                }
                Command::FlagBooking { .. } | Command::AnonymisePerson { .. } => {}
            }
        }
    }
}

impl IntoIterator for Effects {
    type Item = Action;
    type IntoIter = std::vec::IntoIter<Action>;

    fn into_iter(self) -> Self::IntoIter {
        self.items.into_iter()
    }
}

/// The cascade for a SCIM write to a person: `before` is the person before the write (`None` if
/// the write created them), `after` is them after it, `bookings` and `assignments` are what
/// they hold (others' are ignored), `request_id` is the SCIM request's id.
///
/// Inactive and former people leave; a person who was not active and is again is reactivated;
/// an active person who stays active has their future bookings re-checked, and loses those the
/// change took away: refused now, allowed before (see the [module documentation](self)).
/// Running the cascade twice is harmless: the second run finds nothing left to undo.
pub fn on_person_change(
    context: &CascadeContext<'_>,
    before: Option<&Person>,
    after: &Person,
    bookings: &[Booking],
    assignments: &[Assignment],
    request_id: &str,
) -> Effects {
    match after.status {
        PersonStatus::Inactive => leave(
            context,
            Trigger::Deactivated,
            after,
            bookings,
            assignments,
            request_id,
        ),
        PersonStatus::Former => leave(
            context,
            Trigger::Deleted,
            after,
            bookings,
            assignments,
            request_id,
        ),
        PersonStatus::Active => {
            let trigger = match before.map(|p| p.status) {
                Some(PersonStatus::Inactive | PersonStatus::Former) => Trigger::Reactivated,
                Some(PersonStatus::Active) | None => Trigger::AttributesChanged,
            };
            let mine: Vec<&Booking> = bookings.iter().filter(|b| b.person == after.id).collect();
            let policies = context.policies;
            let lost = taken_away(
                context.catalog,
                before.map(|p| (policies, p)),
                (policies, after),
                &mine,
                context.now,
            );
            Effects {
                items: lost
                    .into_iter()
                    .map(|l| {
                        l.into_effect(context.settings.on_lost_entitlement, trigger, request_id)
                    })
                    .collect(),
            }
        }
    }
}

fn leave(
    context: &CascadeContext<'_>,
    trigger: Trigger,
    person: &Person,
    bookings: &[Booking],
    assignments: &[Assignment],
    request_id: &str,
) -> Effects {
    let now = context.now;
    let who = person.label();
    let cause = || Cause {
        trigger,
        request_id: request_id.to_owned(),
        rule: None,
    };
    let mut mine: Vec<&Booking> = bookings
        .iter()
        .filter(|b| b.person == person.id && b.is_live() && b.end > now)
        .collect();
    mine.sort_by(|a, b| (a.start, &a.id).cmp(&(b.start, &b.id)));
    let mut effects = Effects::default();
    for booking in mine {
        let in_progress = booking.start <= now;
        let (command, what) = match (&booking.status, in_progress) {
            (BookingStatus::CheckedIn, true) => (
                Command::EndBooking {
                    booking: booking.id.clone(),
                    person: person.id.clone(),
                    at: now,
                },
                "booking in use ended",
            ),
            (_, true) => (
                Command::CancelBooking {
                    booking: booking.id.clone(),
                    person: person.id.clone(),
                },
                "booking in progress, not checked in, cancelled",
            ),
            (_, false) => (
                Command::CancelBooking {
                    booking: booking.id.clone(),
                    person: person.id.clone(),
                },
                "future booking cancelled",
            ),
        };
        effects.items.push(Action {
            command,
            reason: format!("{who} was {trigger}: {what}"),
            cause: cause(),
        });
    }
    let mut held: Vec<&Assignment> = assignments
        .iter()
        .filter(|a| a.person == person.id)
        .collect();
    held.sort_by(|a, b| a.id.cmp(&b.id));
    for assignment in held {
        effects.items.push(Action {
            command: Command::ReleaseAssignment {
                assignment: assignment.id.clone(),
                person: person.id.clone(),
                resource: assignment.resource.clone(),
            },
            reason: format!(
                "{who} was {trigger}: permanent assignment of {} released",
                assignment.resource
            ),
            cause: cause(),
        });
    }
    if trigger == Trigger::Deleted && context.settings.former_history == FormerHistory::Anonymise {
        effects.items.push(Action {
            command: Command::AnonymisePerson {
                person: person.id.clone(),
            },
            reason: format!("{who} was {trigger}: history anonymised, as the tenant asks"),
            cause: cause(),
        });
    }
    effects
}

/// Every future booking (booked, starting after `now`) of `person` with its decision under
/// `policies`, re-checked in the order they were made against the person's history and the
/// bookings kept so far.
fn recheck_all<'b>(
    policies: &CompiledPolicySet,
    catalog: &Catalog,
    person: &Person,
    bookings: &[&'b Booking],
    now: Timestamp,
) -> Vec<(&'b Booking, Decision)> {
    let is_future = |b: &Booking| b.status == BookingStatus::Booked && b.start > now;
    let mut future: Vec<&'b Booking> = bookings
        .iter()
        .copied()
        .filter(|b| b.person == person.id && is_future(b))
        .collect();
    if future.is_empty() {
        return Vec::new();
    }
    future.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let history: Vec<&'b Booking> = bookings
        .iter()
        .copied()
        .filter(|b| b.person == person.id && b.counts() && !is_future(b))
        .collect();
    let mut matcher = PeopleMatcher::new(policies, person);
    let mut kept: Vec<&'b Booking> = Vec::with_capacity(future.len());
    let mut decided = Vec::with_capacity(future.len());
    for booking in future {
        let decision = recheck(
            policies,
            catalog,
            &mut matcher,
            booking,
            history.iter().copied().chain(kept.iter().copied()),
        );
        if decision.allowed {
            kept.push(booking);
        }
        decided.push((booking, decision));
    }
    decided
}

/// The future bookings a change from `before` (policies and person; `None`: nothing before, so
/// everything counts as allowed) to `after` takes away: refused after, allowed before.
fn taken_away(
    catalog: &Catalog,
    before: Option<(&CompiledPolicySet, &Person)>,
    after: (&CompiledPolicySet, &Person),
    bookings: &[&Booking],
    now: Timestamp,
) -> Vec<LostBooking> {
    let (policies, person) = after;
    let now_refused: Vec<(&Booking, Decision)> =
        recheck_all(policies, catalog, person, bookings, now)
            .into_iter()
            .filter(|(_, d)| !d.allowed)
            .collect();
    if now_refused.is_empty() {
        return Vec::new();
    }
    let was: HashMap<&str, Decision> = match before {
        Some((old_policies, old_person)) => {
            recheck_all(old_policies, catalog, old_person, bookings, now)
                .into_iter()
                .map(|(b, d)| (b.id.as_str(), d))
                .collect()
        }
        None => HashMap::new(),
    };
    now_refused
        .into_iter()
        .filter_map(|(booking, decision)| match was.get(booking.id.as_str()) {
            Some(old) if !old.allowed => None,
            old => Some(LostBooking::new(person, booking, &decision, old)),
        })
        .collect()
}

/// A future booking a change takes away.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LostBooking {
    /// The booking's id.
    pub booking: String,
    /// Its person.
    pub person: String,
    /// Its resource.
    pub resource: String,
    /// Its start.
    pub start: Timestamp,
    /// The rule that now forbids it; `None` when no rule allows it any more and the tenant
    /// default denies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// Why, for people to read.
    pub reason: String,
}

impl LostBooking {
    /// `decision` refuses the booking now; `before`, when known, allowed it.
    fn new(
        person: &Person,
        booking: &Booking,
        decision: &Decision,
        before: Option<&Decision>,
    ) -> LostBooking {
        let objection = decision
            .main_objection()
            .map_or_else(|| "no rule allows it".to_owned(), ToString::to_string);
        // When no rule forbids it now (the default does), cite the rule that used to allow it.
        let used_to_allow = before.and_then(|d| {
            d.reasons.iter().find_map(|r| match r {
                Reason::Allowed { rule, name } => Some((rule, name)),
                _ => None,
            })
        });
        let (rule, why) = match (decision.forbidding_rule(), used_to_allow) {
            (Some(rule), _) => (Some(rule.to_owned()), objection),
            (None, Some((rule, name))) => (
                Some(rule.clone()),
                format!("rule {rule:?} ({name}) no longer allows it; {objection}"),
            ),
            (None, None) => (None, objection),
        };
        LostBooking {
            booking: booking.id.clone(),
            person: person.id.clone(),
            resource: booking.resource.clone(),
            start: booking.start,
            rule,
            reason: format!(
                "{} may no longer book {}: {why}",
                person.label(),
                booking.resource
            ),
        }
    }

    fn into_effect(self, mode: RecomputeMode, trigger: Trigger, request_id: &str) -> Action {
        let command = match mode {
            RecomputeMode::Cancel => Command::CancelBooking {
                booking: self.booking,
                person: self.person,
            },
            RecomputeMode::Flag => Command::FlagBooking {
                booking: self.booking,
                person: self.person,
            },
        };
        Action {
            command,
            reason: self.reason,
            cause: Cause {
                trigger,
                request_id: request_id.to_owned(),
                rule: self.rule,
            },
        }
    }
}

/// What a policy change would do: the bookings it takes away, cancelled or flagged as the
/// tenant's mode says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Preview {
    /// Cancel or flag.
    pub mode: RecomputeMode,
    /// Bookings that would be cancelled (mode cancel), by person then booking order.
    pub cancelled: Vec<LostBooking>,
    /// Bookings that would be flagged (mode flag).
    pub flagged: Vec<LostBooking>,
    /// How many people would lose a booking.
    pub people_affected: usize,
    /// How many future bookings were re-checked.
    pub bookings_checked: usize,
}

impl Preview {
    /// E.g. `this rule change would cancel 37 future bookings of 12 people`.
    pub fn summary(&self) -> String {
        self.to_string()
    }

    /// The effects that apply the change, citing `request_id` (the workplace API request that
    /// changes the policies).
    pub fn into_effects(self, request_id: &str) -> Effects {
        let mode = self.mode;
        Effects {
            items: self
                .cancelled
                .into_iter()
                .chain(self.flagged)
                .map(|lost| lost.into_effect(mode, Trigger::PolicyChanged, request_id))
                .collect(),
        }
    }
}

impl fmt::Display for Preview {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (verb, count) = match self.mode {
            RecomputeMode::Cancel => ("cancel", self.cancelled.len()),
            RecomputeMode::Flag => ("flag", self.flagged.len()),
        };
        let plural =
            |n: usize, one: &'static str, many: &'static str| if n == 1 { one } else { many };
        write!(
            f,
            "this rule change would {verb} {count} future {} of {} {}",
            plural(count, "booking", "bookings"),
            self.people_affected,
            plural(self.people_affected, "person", "people"),
        )
    }
}

/// What changing the policies from `old` to `new` would do to the future bookings of `people`
/// (`bookings` may hold anyone's; those of people not listed are not touched). A booking is
/// lost when `old` allowed it and `new` does not, each re-checked as described in the
/// [module documentation](self); one refused by both was not refused by this change, and is
/// left for whoever admitted it. Cost: one re-check per future booking under `new`, and under
/// `old` only for the people who lose something.
pub fn preview_policy_change(
    old: &CompiledPolicySet,
    new: &CompiledPolicySet,
    catalog: &Catalog,
    people: &[Person],
    bookings: &[Booking],
    now: Timestamp,
    settings: CascadeSettings,
) -> Preview {
    let mut by_person: HashMap<&str, Vec<&Booking>> = HashMap::new();
    for booking in bookings {
        by_person.entry(&booking.person).or_default().push(booking);
    }
    let mut all_lost = Vec::new();
    let mut people_affected = 0;
    let mut bookings_checked = 0;
    for person in people {
        let Some(theirs) = by_person.get(person.id.as_str()) else {
            continue;
        };
        bookings_checked += theirs
            .iter()
            .filter(|b| b.status == BookingStatus::Booked && b.start > now)
            .count();
        let lost = taken_away(catalog, Some((old, person)), (new, person), theirs, now);
        if !lost.is_empty() {
            people_affected += 1;
            all_lost.extend(lost);
        }
    }
    let (cancelled, flagged) = match settings.on_lost_entitlement {
        RecomputeMode::Cancel => (all_lost, Vec::new()),
        RecomputeMode::Flag => (Vec::new(), all_lost),
    };
    Preview {
        mode: settings.on_lost_entitlement,
        cancelled,
        flagged,
        people_affected,
        bookings_checked,
    }
}
