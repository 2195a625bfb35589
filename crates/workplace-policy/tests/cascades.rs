//! Lifecycle cascades: leaving (deactivation, deletion), reactivation, attribute changes in
//! cancel and flag modes, policy changes with their preview, and the licensed-seat count.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a failure report")]

mod common;

use common::*;
use serde_json::json;
use workplace_policy::{
    Actor, Assignment, Booking, BookingRequest, BookingStatus, CascadeContext, CascadeSettings,
    Command, CompiledPolicySet, Effect, FormerHistory, Limits, Person, PersonStatus, RecomputeMode,
    ResourceKind, ResourceSelector, SeatReport, Trigger, evaluate, licensed_seats,
    on_person_change, preview_policy_change,
};

fn neighbourhood_policies() -> CompiledPolicySet {
    compile(
        vec![
            rule(
                "mkt-desks",
                Effect::Allow,
                Some(&format!("{ENTERPRISE}:department eq \"Marketing\"")),
                zones(&["mkt"]),
            ),
            rule(
                "sales-desks",
                Effect::Allow,
                Some(&format!("{ENTERPRISE}:department eq \"Sales\"")),
                zones(&["sales"]),
            ),
            rule(
                "parking",
                Effect::Allow,
                Some("groups[display eq \"Parking\"]"),
                kinds(&[ResourceKind::Parking]),
            ),
        ],
        Effect::Deny,
    )
}

fn context<'a>(
    policies: &'a CompiledPolicySet,
    catalog: &'a workplace_policy::Catalog,
    settings: CascadeSettings,
) -> CascadeContext<'a> {
    CascadeContext {
        policies,
        catalog,
        settings,
        now: NOW,
    }
}

/// Alice's holdings: yesterday's completed booking, one in progress and checked in, one in
/// progress not checked in, two future ones, one already cancelled, and a locker assignment.
fn alice_holdings() -> (Vec<Booking>, Vec<Assignment>) {
    let cancelled = BookingStatus::Cancelled {
        by: Actor::Person("u-alice".into()),
        reason: "ill".into(),
        at: NOW - DAY,
        cause: None,
    };
    let bookings = vec![
        booking(
            "past",
            "u-alice",
            "desk-mkt-1",
            NOW - DAY,
            NOW - DAY + 8 * HOUR,
            BookingStatus::Completed {
                at: NOW - DAY + 8 * HOUR,
            },
            NOW - 3 * DAY,
        ),
        booking(
            "in-use",
            "u-alice",
            "desk-mkt-1",
            NOW - HOUR,
            NOW + 7 * HOUR,
            BookingStatus::CheckedIn,
            NOW - 2 * DAY,
        ),
        booking(
            "no-show",
            "u-alice",
            "park-1",
            NOW - HOUR,
            NOW + 7 * HOUR,
            BookingStatus::Booked,
            NOW - 2 * DAY,
        ),
        booking(
            "tomorrow",
            "u-alice",
            "desk-mkt-2",
            NOW + DAY,
            NOW + DAY + 8 * HOUR,
            BookingStatus::Booked,
            NOW - DAY,
        ),
        booking(
            "next-week",
            "u-alice",
            "park-2",
            NOW + 7 * DAY,
            NOW + 7 * DAY + 8 * HOUR,
            BookingStatus::Booked,
            NOW - DAY,
        ),
        booking(
            "cancelled",
            "u-alice",
            "desk-mkt-1",
            NOW + 2 * DAY,
            NOW + 2 * DAY + HOUR,
            cancelled,
            NOW - 2 * DAY,
        ),
        booking(
            "bobs",
            "u-bob",
            "desk-sales-1",
            NOW + DAY,
            NOW + DAY + HOUR,
            BookingStatus::Booked,
            NOW - DAY,
        ),
    ];
    let assignments = vec![
        Assignment {
            id: "a-locker".into(),
            person: "u-alice".into(),
            resource: "locker-1".into(),
            since: NOW - 100 * DAY,
        },
        Assignment {
            id: "a-bob".into(),
            person: "u-bob".into(),
            resource: "desk-par-1".into(),
            since: NOW - 100 * DAY,
        },
    ];
    (bookings, assignments)
}

fn status_of<'a>(bookings: &'a [Booking], id: &str) -> &'a BookingStatus {
    &bookings.iter().find(|b| b.id == id).unwrap().status
}

fn deactivated(p: &Person) -> Person {
    let mut doc = p.document.clone();
    doc["active"] = json!("False"); // as Microsoft Entra ID sends it
    Person::from_scim(p.id.clone(), doc, false)
}

#[test]
fn deactivation_cancels_the_future_ends_the_present_and_keeps_the_past() {
    let policies = neighbourhood_policies();
    let catalog = catalog();
    let (mut bookings, mut assignments) = alice_holdings();
    let was = alice();
    let alice = deactivated(&was);
    assert_eq!(alice.status, PersonStatus::Inactive);
    let ctx = context(&policies, &catalog, CascadeSettings::default());
    let effects = on_person_change(
        &ctx,
        Some(&was),
        &alice,
        &bookings,
        &assignments,
        "scim-req-42",
    );
    insta::assert_json_snapshot!("deactivation_effects", effects);
    for action in effects.iter() {
        assert_eq!(action.cause.request_id, "scim-req-42");
        assert_eq!(action.cause.trigger, Trigger::Deactivated);
    }
    effects.apply(&mut bookings, &mut assignments, NOW);
    assert_eq!(
        status_of(&bookings, "in-use"),
        &BookingStatus::Completed { at: NOW }
    );
    for id in ["no-show", "tomorrow", "next-week"] {
        let BookingStatus::Cancelled {
            by,
            cause: Some(cause),
            ..
        } = status_of(&bookings, id)
        else {
            panic!("{id} not cancelled by a cascade");
        };
        assert_eq!(by, &Actor::System);
        assert_eq!(cause.request_id, "scim-req-42");
    }
    assert!(matches!(
        status_of(&bookings, "past"),
        BookingStatus::Completed { .. }
    ));
    assert!(matches!(
        status_of(&bookings, "cancelled"),
        BookingStatus::Cancelled {
            by: Actor::Person(_),
            ..
        }
    ));
    assert_eq!(status_of(&bookings, "bobs"), &BookingStatus::Booked);
    assert_eq!(
        assignments
            .iter()
            .map(|a| a.id.as_str())
            .collect::<Vec<_>>(),
        ["a-bob"]
    );
    // Running it again finds nothing left to undo.
    let again = on_person_change(
        &ctx,
        Some(&alice),
        &alice,
        &bookings,
        &assignments,
        "scim-req-43",
    );
    assert!(again.is_empty(), "{again:?}");
    // And an inactive person cannot book.
    let d = evaluate(
        &policies,
        &catalog,
        &alice,
        &res("desk-mkt-1"),
        BookingRequest {
            start: NOW + DAY,
            end: NOW + DAY + HOUR,
        },
        NOW,
        &bookings,
    );
    assert!(!d.allowed);
}

#[test]
fn deletion_does_the_same_and_anonymises_if_asked() {
    let policies = neighbourhood_policies();
    let catalog = catalog();
    let (bookings, assignments) = alice_holdings();
    let former = Person::from_scim("u-alice", alice().document, true);
    for (history, anonymised) in [
        (FormerHistory::Keep, false),
        (FormerHistory::Anonymise, true),
    ] {
        let settings = CascadeSettings {
            former_history: history,
            ..CascadeSettings::default()
        };
        let effects = on_person_change(
            &context(&policies, &catalog, settings),
            Some(&alice()),
            &former,
            &bookings,
            &assignments,
            "scim-del-1",
        );
        assert!(effects.iter().all(|a| a.cause.trigger == Trigger::Deleted));
        assert_eq!(
            effects
                .iter()
                .filter(|a| matches!(a.command, Command::CancelBooking { .. }))
                .count(),
            3
        );
        assert_eq!(
            effects
                .iter()
                .any(|a| matches!(a.command, Command::AnonymisePerson { .. })),
            anonymised
        );
        assert!(
            effects.iter().any(|a| a.reason
                == "alice was deleted by the identity provider: future booking cancelled")
        );
    }
}

#[test]
fn reactivation_uncancels_nothing_and_restores_the_right_to_book() {
    let policies = neighbourhood_policies();
    let catalog = catalog();
    let (mut bookings, mut assignments) = alice_holdings();
    let ctx = context(&policies, &catalog, CascadeSettings::default());
    let inactive = deactivated(&alice());
    on_person_change(
        &ctx,
        Some(&alice()),
        &inactive,
        &bookings,
        &assignments,
        "r1",
    )
    .apply(&mut bookings, &mut assignments, NOW);
    let before = bookings.clone();
    let active_again = alice();
    let effects = on_person_change(
        &ctx,
        Some(&inactive),
        &active_again,
        &bookings,
        &assignments,
        "r2",
    );
    assert!(effects.is_empty());
    effects.apply(&mut bookings, &mut assignments, NOW);
    assert_eq!(bookings, before);
    assert!(!assignments.iter().any(|a| a.person == "u-alice"));
    let request = BookingRequest {
        start: NOW + DAY,
        end: NOW + DAY + HOUR,
    };
    assert!(
        evaluate(
            &policies,
            &catalog,
            &active_again,
            &res("desk-mkt-1"),
            request,
            NOW,
            &bookings
        )
        .allowed
    );
}

#[test]
fn a_department_change_moves_rights_to_the_new_neighbourhood() {
    let policies = neighbourhood_policies();
    let catalog = catalog();
    let (mut bookings, mut assignments) = alice_holdings();
    let mut doc = alice().document;
    doc[ENTERPRISE]["department"] = json!("Sales");
    let moved = Person::from_scim("u-alice", doc, false);
    let ctx = context(&policies, &catalog, CascadeSettings::default());
    let effects = on_person_change(
        &ctx,
        Some(&alice()),
        &moved,
        &bookings,
        &assignments,
        "scim-patch-7",
    );
    // Only tomorrow's Marketing desk goes: parking is still hers, the in-progress booking stays.
    assert_eq!(effects.len(), 1, "{effects:?}");
    let action = &effects.items[0];
    assert_eq!(
        action.command,
        Command::CancelBooking {
            booking: "tomorrow".into(),
            person: "u-alice".into()
        }
    );
    assert_eq!(action.cause.trigger, Trigger::AttributesChanged);
    assert_eq!(
        action.cause.rule.as_deref(),
        Some("mkt-desks"),
        "the rule that used to allow it"
    );
    assert_eq!(
        action.reason,
        "alice may no longer book desk-mkt-2: rule \"mkt-desks\" (mkt desks) no longer allows it; no rule decides; the tenant default is deny"
    );
    effects.apply(&mut bookings, &mut assignments, NOW);
    assert_eq!(status_of(&bookings, "in-use"), &BookingStatus::CheckedIn);
    let request = BookingRequest {
        start: NOW + DAY,
        end: NOW + DAY + HOUR,
    };
    assert!(
        evaluate(
            &policies,
            &catalog,
            &moved,
            &res("desk-sales-1"),
            request,
            NOW,
            &bookings
        )
        .allowed
    );
    assert!(
        !evaluate(
            &policies,
            &catalog,
            &moved,
            &res("desk-mkt-1"),
            request,
            NOW,
            &bookings
        )
        .allowed
    );
}

#[test]
fn losing_a_group_cites_the_deny_rule_and_flag_mode_only_flags() {
    let mut policies_rules = vec![
        rule("desks", Effect::Allow, None, kinds(&[ResourceKind::Desk])),
        rule(
            "parking",
            Effect::Allow,
            None,
            kinds(&[ResourceKind::Parking]),
        ),
    ];
    policies_rules.push(rule(
        "parking-badge-only",
        Effect::Deny,
        Some("not (groups[display eq \"Parking\"])"),
        kinds(&[ResourceKind::Parking]),
    ));
    let policies = compile(policies_rules, Effect::Deny);
    let catalog = catalog();
    let (mut bookings, mut assignments) = alice_holdings();
    let no_parking = person(
        "u-alice",
        user_doc("alice", "Marketing", "Director", &["Marketing"]),
    );
    let settings = CascadeSettings {
        on_lost_entitlement: RecomputeMode::Flag,
        ..CascadeSettings::default()
    };
    let effects = on_person_change(
        &context(&policies, &catalog, settings),
        Some(&alice()),
        &no_parking,
        &bookings,
        &assignments,
        "scim-9",
    );
    assert_eq!(effects.len(), 1);
    assert_eq!(
        effects.items[0].command,
        Command::FlagBooking {
            booking: "next-week".into(),
            person: "u-alice".into()
        }
    );
    assert_eq!(
        effects.items[0].cause.rule.as_deref(),
        Some("parking-badge-only")
    );
    let before = bookings.clone();
    effects.apply(&mut bookings, &mut assignments, NOW);
    assert_eq!(bookings, before, "flagging changes no booking");
    // The next update of the same person does not flag it again: this change took nothing away.
    let next = on_person_change(
        &context(&policies, &catalog, settings),
        Some(&no_parking),
        &no_parking,
        &bookings,
        &assignments,
        "scim-10",
    );
    assert!(next.is_empty(), "{next:?}");
}

#[test]
fn a_shrinking_weekly_allowance_keeps_the_earliest_made_bookings() {
    let mut desks = rule(
        "desks",
        Effect::Allow,
        Some("title co \"Director\""),
        kinds(&[ResourceKind::Desk]),
    );
    desks.limits.max_bookings_per_week = Some(2);
    let policies = compile(vec![desks], Effect::Deny);
    let catalog = catalog();
    // Three desk bookings this week (Tue, Wed, Thu), made Thursday's first.
    let bookings = vec![
        booking(
            "tue",
            "u-alice",
            "desk-mkt-1",
            NOW + DAY,
            NOW + DAY + HOUR,
            BookingStatus::Booked,
            NOW - 3 * HOUR,
        ),
        booking(
            "wed",
            "u-alice",
            "desk-mkt-1",
            NOW + 2 * DAY,
            NOW + 2 * DAY + HOUR,
            BookingStatus::Booked,
            NOW - 2 * HOUR,
        ),
        booking(
            "thu",
            "u-alice",
            "desk-mkt-1",
            NOW + 3 * DAY,
            NOW + 3 * DAY + HOUR,
            BookingStatus::Booked,
            NOW - 4 * HOUR,
        ),
    ];
    let effects = on_person_change(
        &context(&policies, &catalog, CascadeSettings::default()),
        None,
        &alice(),
        &bookings,
        &[],
        "r",
    );
    let cancelled: Vec<_> = effects.iter().map(|a| a.command.clone()).collect();
    assert_eq!(
        cancelled,
        [Command::CancelBooking {
            booking: "wed".into(),
            person: "u-alice".into()
        }]
    );
    assert_eq!(effects.items[0].cause.rule.as_deref(), Some("desks"));
}

#[test]
fn policy_change_preview_is_the_plan_it_applies() {
    let catalog = catalog();
    let everyone_parks = compile(
        vec![
            rule("desks", Effect::Allow, None, kinds(&[ResourceKind::Desk])),
            rule(
                "parking",
                Effect::Allow,
                None,
                kinds(&[ResourceKind::Parking]),
            ),
        ],
        Effect::Deny,
    );
    let mut badge_parking = rule(
        "parking",
        Effect::Allow,
        Some("groups[display eq \"Parking\"]"),
        kinds(&[ResourceKind::Parking]),
    );
    badge_parking.limits = Limits {
        max_days_ahead: Some(3),
        ..Limits::default()
    };
    let badge_only = compile(
        vec![
            rule("desks", Effect::Allow, None, kinds(&[ResourceKind::Desk])),
            badge_parking,
        ],
        Effect::Deny,
    );
    let people = vec![
        alice(),
        bob(),
        person("u-carol", user_doc("carol", "IT", "Engineer", &["Parking"])),
    ];
    let mut bookings = vec![
        // Bob has no badge: loses both parking bookings, keeps his desk.
        booking(
            "bob-p1",
            "u-bob",
            "park-1",
            NOW + DAY,
            NOW + DAY + HOUR,
            BookingStatus::Booked,
            NOW - HOUR,
        ),
        booking(
            "bob-p2",
            "u-bob",
            "park-2",
            NOW + 2 * DAY,
            NOW + 2 * DAY + HOUR,
            BookingStatus::Booked,
            NOW - HOUR,
        ),
        booking(
            "bob-d1",
            "u-bob",
            "desk-sales-1",
            NOW + DAY,
            NOW + DAY + HOUR,
            BookingStatus::Booked,
            NOW - HOUR,
        ),
        // Carol has a badge but booked ten days ahead: beyond the new horizon.
        booking(
            "carol-p1",
            "u-carol",
            "park-1",
            NOW + 10 * DAY,
            NOW + 10 * DAY + HOUR,
            BookingStatus::Booked,
            NOW - HOUR,
        ),
        // Alice's is within the new rule; Bob's checked-in parking today is in use and stays.
        booking(
            "alice-p1",
            "u-alice",
            "park-2",
            NOW + DAY,
            NOW + DAY + HOUR,
            BookingStatus::Booked,
            NOW - HOUR,
        ),
        booking(
            "bob-now",
            "u-bob",
            "park-1",
            NOW - HOUR,
            NOW + HOUR,
            BookingStatus::CheckedIn,
            NOW - 2 * HOUR,
        ),
    ];
    let preview = preview_policy_change(
        &everyone_parks,
        &badge_only,
        &catalog,
        &people,
        &bookings,
        NOW,
        CascadeSettings::default(),
    );
    assert_eq!(
        preview.summary(),
        "this rule change would cancel 3 future bookings of 2 people"
    );
    insta::assert_json_snapshot!("policy_change_preview", preview);
    let flagged = preview_policy_change(
        &everyone_parks,
        &badge_only,
        &catalog,
        &people,
        &bookings,
        NOW,
        CascadeSettings {
            on_lost_entitlement: RecomputeMode::Flag,
            ..CascadeSettings::default()
        },
    );
    assert_eq!(
        flagged.summary(),
        "this rule change would flag 3 future bookings of 2 people"
    );
    // Changing nothing, or loosening, cancels nothing.
    let same = preview_policy_change(
        &badge_only,
        &badge_only,
        &catalog,
        &people,
        &bookings,
        NOW,
        CascadeSettings::default(),
    );
    assert_eq!(
        same.summary(),
        "this rule change would cancel 0 future bookings of 0 people"
    );
    let loosen = preview_policy_change(
        &badge_only,
        &everyone_parks,
        &catalog,
        &people,
        &bookings,
        NOW,
        CascadeSettings::default(),
    );
    assert!(loosen.cancelled.is_empty());
    // Applying the preview cancels exactly what it listed.
    let effects = preview.into_effects("wp-req-1");
    assert!(
        effects
            .iter()
            .all(|a| a.cause.trigger == Trigger::PolicyChanged && a.cause.request_id == "wp-req-1")
    );
    effects.apply(&mut bookings, &mut Vec::new(), NOW);
    let cancelled: Vec<&str> = bookings
        .iter()
        .filter(|b| !b.counts())
        .map(|b| b.id.as_str())
        .collect();
    assert_eq!(cancelled, ["bob-p1", "bob-p2", "carol-p1"]);
    // Afterwards the new policies have nothing more to take.
    let after = preview_policy_change(
        &everyone_parks,
        &badge_only,
        &catalog,
        &people,
        &bookings,
        NOW,
        CascadeSettings::default(),
    );
    assert!(after.cancelled.is_empty());
}

#[test]
fn licensed_seats_count_active_people_only() {
    let mut inactive_doc = bob().document;
    inactive_doc["active"] = json!(false);
    let people = vec![
        alice(),
        bob(),
        Person::from_scim("u-x", inactive_doc.clone(), false),
        Person::from_scim("u-y", inactive_doc, true),
    ];
    assert_eq!(licensed_seats(&people), 2);
    assert_eq!(
        SeatReport::of(&people),
        SeatReport {
            active: 2,
            inactive: 1,
            former: 1
        }
    );
}

#[test]
fn a_selector_naming_nothing_known_cancels_bookings_of_vanished_resources_only_by_default() {
    // A booking of a resource since removed from the catalog is judged by rules about everything.
    let policies = compile(
        vec![rule(
            "desks",
            Effect::Allow,
            None,
            ResourceSelector {
                kinds: vec![ResourceKind::Desk],
                ..Default::default()
            },
        )],
        Effect::Deny,
    );
    let catalog = catalog();
    let bookings = vec![booking(
        "gone",
        "u-bob",
        "desk-removed",
        NOW + DAY,
        NOW + DAY + HOUR,
        BookingStatus::Booked,
        NOW - HOUR,
    )];
    let effects = on_person_change(
        &context(&policies, &catalog, CascadeSettings::default()),
        None,
        &bob(),
        &bookings,
        &[],
        "r",
    );
    assert_eq!(effects.len(), 1);
    let everything = compile(
        vec![rule(
            "all",
            Effect::Allow,
            None,
            ResourceSelector::default(),
        )],
        Effect::Deny,
    );
    assert!(
        on_person_change(
            &context(&everything, &catalog, CascadeSettings::default()),
            None,
            &bob(),
            &bookings,
            &[],
            "r"
        )
        .is_empty()
    );
}
