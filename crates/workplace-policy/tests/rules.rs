//! Rules: deny beats allow, the tenant default, each limit, selectors, people filters over core,
//! enterprise, extension and group attributes, and the explanation of a decision.

#![allow(clippy::unwrap_used, reason = "test code: a panic is a failure report")]

mod common;

use common::*;
use workplace_policy::{
    BookingRequest, BookingStatus, CompiledPolicySet, Decision, Effect, LimitFailure, Limits,
    Person, PersonStatus, PolicyError, PolicySet, Reason, Resource, ResourceKind, ResourceSelector,
    Rule, evaluate,
};

fn ask(
    policies: &CompiledPolicySet,
    who: &Person,
    what: &Resource,
    start: i64,
    end: i64,
    existing: &[workplace_policy::Booking],
) -> Decision {
    evaluate(
        policies,
        &catalog(),
        who,
        what,
        BookingRequest { start, end },
        NOW,
        existing,
    )
}

fn tomorrow() -> (i64, i64) {
    (NOW + DAY, NOW + DAY + 8 * HOUR)
}

fn rule_ids(decision: &Decision) -> Vec<&str> {
    decision
        .reasons
        .iter()
        .filter_map(Reason::rule_id)
        .collect()
}

#[test]
fn deny_beats_allow_in_any_order() {
    let allow = rule(
        "everyone-desks",
        Effect::Allow,
        None,
        kinds(&[ResourceKind::Desk]),
    );
    let deny = rule(
        "no-sales-in-mkt",
        Effect::Deny,
        Some("groups[display eq \"Sales\"]"),
        zones(&["mkt"]),
    );
    for rules in [vec![allow.clone(), deny.clone()], vec![deny, allow]] {
        let policies = compile(rules, Effect::Allow);
        let (s, e) = tomorrow();
        let d = ask(&policies, &bob(), &res("desk-mkt-1"), s, e, &[]);
        assert!(!d.allowed);
        assert_eq!(d.forbidding_rule(), Some("no-sales-in-mkt"));
        assert!(
            d.reasons
                .iter()
                .any(|r| matches!(r, Reason::Allowed { rule, .. } if rule == "everyone-desks"))
        );
        // The deny does not reach Alice, nor Bob elsewhere.
        assert!(ask(&policies, &alice(), &res("desk-mkt-1"), s, e, &[]).allowed);
        assert!(ask(&policies, &bob(), &res("desk-sales-1"), s, e, &[]).allowed);
    }
}

#[test]
fn no_rule_means_the_tenant_default() {
    let rules = vec![rule(
        "parking",
        Effect::Allow,
        Some("groups[display eq \"Parking\"]"),
        kinds(&[ResourceKind::Parking]),
    )];
    let (s, e) = tomorrow();
    for default in [Effect::Deny, Effect::Allow] {
        let policies = compile(rules.clone(), default);
        let d = ask(&policies, &bob(), &res("park-1"), s, e, &[]);
        assert_eq!(d.allowed, default == Effect::Allow);
        assert_eq!(d.reasons, vec![Reason::TenantDefault { effect: default }]);
        assert_eq!(d.forbidding_rule(), None);
        // A rule that applies overrides the default.
        assert!(ask(&policies, &alice(), &res("park-1"), s, e, &[]).allowed);
    }
}

#[test]
fn an_allow_refused_on_a_limit_denies_even_with_default_allow() {
    let mut r = rule(
        "short-rooms",
        Effect::Allow,
        None,
        kinds(&[ResourceKind::Room]),
    );
    r.limits.max_duration_seconds = Some(2 * HOUR);
    let policies = compile(vec![r], Effect::Allow);
    let d = ask(
        &policies,
        &bob(),
        &res("boardroom"),
        NOW + HOUR,
        NOW + 4 * HOUR,
        &[],
    );
    assert!(!d.allowed);
    assert_eq!(
        d.reasons,
        vec![Reason::LimitExceeded {
            rule: "short-rooms".into(),
            name: "short rooms".into(),
            limit: LimitFailure::Duration {
                max_seconds: 2 * HOUR,
                requested_seconds: 3 * HOUR
            },
        }]
    );
    assert_eq!(d.forbidding_rule(), Some("short-rooms"));
    assert!(
        ask(
            &policies,
            &bob(),
            &res("boardroom"),
            NOW + HOUR,
            NOW + 3 * HOUR,
            &[]
        )
        .allowed
    );
}

#[test]
fn the_most_generous_applicable_allow_wins() {
    let mut everyone = rule(
        "everyone",
        Effect::Allow,
        None,
        kinds(&[ResourceKind::Desk]),
    );
    everyone.limits.max_days_ahead = Some(7);
    let mut directors = rule(
        "directors",
        Effect::Allow,
        Some("title co \"Director\""),
        kinds(&[ResourceKind::Desk]),
    );
    directors.limits.max_days_ahead = Some(30);
    let policies = compile(vec![everyone, directors], Effect::Deny);
    let start = NOW + 20 * DAY;
    assert!(
        ask(
            &policies,
            &alice(),
            &res("desk-mkt-1"),
            start,
            start + HOUR,
            &[]
        )
        .allowed
    );
    let d = ask(
        &policies,
        &bob(),
        &res("desk-mkt-1"),
        start,
        start + HOUR,
        &[],
    );
    assert!(!d.allowed);
    assert_eq!(
        d.reasons[0].limit(),
        Some(&LimitFailure::DaysAhead {
            max: 7,
            requested: 20
        })
    );
}

#[test]
fn days_ahead_counts_calendar_days_in_the_tenant_offset() {
    let mut r = rule(
        "today-only",
        Effect::Allow,
        None,
        ResourceSelector::default(),
    );
    r.limits.max_days_ahead = Some(0);
    let paris = |offset| {
        CompiledPolicySet::compile_with(
            &PolicySet {
                rules: vec![r.clone()],
                default: Effect::Deny,
                utc_offset_seconds: offset,
            },
            &user_schema_with_extension(),
        )
        .unwrap()
    };
    // NOW is 08:00Z; 22:30Z is still today in UTC but tomorrow at +02:00.
    let late = NOW + 14 * HOUR + 30 * 60;
    assert!(
        ask(
            &paris(0),
            &bob(),
            &res("desk-par-1"),
            late,
            late + HOUR,
            &[]
        )
        .allowed
    );
    let d = ask(
        &paris(2 * 3600),
        &bob(),
        &res("desk-par-1"),
        late,
        late + HOUR,
        &[],
    );
    assert_eq!(
        d.reasons[0].limit(),
        Some(&LimitFailure::DaysAhead {
            max: 0,
            requested: 1
        })
    );
}

#[test]
fn bookings_per_week_count_only_selected_uncancelled_bookings_that_week() {
    let mut r = rule(
        "parking-twice-a-week",
        Effect::Allow,
        None,
        kinds(&[ResourceKind::Parking]),
    );
    r.limits.max_bookings_per_week = Some(2);
    let desks = rule("desks", Effect::Allow, None, kinds(&[ResourceKind::Desk]));
    let policies = compile(vec![r, desks], Effect::Deny);
    let day = |n: i64| NOW + n * DAY; // NOW is a Monday
    let cancelled = BookingStatus::Cancelled {
        by: workplace_policy::Actor::Person("u-bob".into()),
        reason: "changed plans".into(),
        at: NOW,
        cause: None,
    };
    let existing = vec![
        booking(
            "b1",
            "u-bob",
            "park-1",
            day(1),
            day(1) + HOUR,
            BookingStatus::Booked,
            NOW,
        ),
        // Desks, cancelled parking, next week's parking and someone else's parking do not count.
        booking(
            "b2",
            "u-bob",
            "desk-mkt-1",
            day(2),
            day(2) + HOUR,
            BookingStatus::Booked,
            NOW,
        ),
        booking(
            "b3",
            "u-bob",
            "park-2",
            day(2),
            day(2) + HOUR,
            cancelled,
            NOW,
        ),
        booking(
            "b4",
            "u-bob",
            "park-2",
            day(7),
            day(7) + HOUR,
            BookingStatus::Booked,
            NOW,
        ),
        booking(
            "b5",
            "u-alice",
            "park-2",
            day(3),
            day(3) + HOUR,
            BookingStatus::Booked,
            NOW,
        ),
    ];
    assert!(
        ask(
            &policies,
            &bob(),
            &res("park-1"),
            day(4),
            day(4) + HOUR,
            &existing
        )
        .allowed
    );
    let mut two = existing.clone();
    two.push(booking(
        "b6",
        "u-bob",
        "park-1",
        day(4),
        day(4) + HOUR,
        BookingStatus::Booked,
        NOW,
    ));
    let d = ask(
        &policies,
        &bob(),
        &res("park-2"),
        day(6),
        day(6) + HOUR,
        &two,
    );
    assert!(!d.allowed);
    assert_eq!(
        d.reasons[0].limit(),
        Some(&LimitFailure::BookingsPerWeek {
            max: 2,
            week: "2025-W25".into(),
            would_have: 3
        })
    );
    // Next week has room for one more (b4 is there).
    assert!(
        ask(
            &policies,
            &bob(),
            &res("park-2"),
            day(8),
            day(8) + HOUR,
            &two
        )
        .allowed
    );
}

#[test]
fn concurrent_counts_overlapping_live_bookings() {
    let mut r = rule(
        "one-desk-at-a-time",
        Effect::Allow,
        None,
        kinds(&[ResourceKind::Desk]),
    );
    r.limits.max_concurrent = Some(1);
    let policies = compile(vec![r], Effect::Deny);
    let (s, e) = tomorrow();
    let existing = vec![booking(
        "b1",
        "u-bob",
        "desk-mkt-1",
        s,
        e,
        BookingStatus::Booked,
        NOW,
    )];
    let d = ask(
        &policies,
        &bob(),
        &res("desk-sales-1"),
        s + HOUR,
        e + HOUR,
        &existing,
    );
    assert_eq!(
        d.reasons[0].limit(),
        Some(&LimitFailure::Concurrent {
            max: 1,
            would_hold: 2
        })
    );
    // Back to back is not overlapping.
    assert!(
        ask(
            &policies,
            &bob(),
            &res("desk-sales-1"),
            e,
            e + HOUR,
            &existing
        )
        .allowed
    );
}

#[test]
fn a_deny_rule_with_limits_is_a_cap() {
    let allow = rule("everyone", Effect::Allow, None, ResourceSelector::default());
    let mut cap = rule(
        "contractors-4h",
        Effect::Deny,
        Some("title co \"Contractor\""),
        ResourceSelector::default(),
    );
    cap.limits.max_duration_seconds = Some(4 * HOUR);
    let policies = compile(vec![allow, cap], Effect::Deny);
    let carol = person("u-carol", user_doc("carol", "IT", "Contractor", &[]));
    assert!(
        ask(
            &policies,
            &carol,
            &res("desk-par-1"),
            NOW + HOUR,
            NOW + 5 * HOUR,
            &[]
        )
        .allowed
    );
    let d = ask(
        &policies,
        &carol,
        &res("desk-par-1"),
        NOW + HOUR,
        NOW + 6 * HOUR,
        &[],
    );
    assert!(!d.allowed);
    assert_eq!(d.forbidding_rule(), Some("contractors-4h"));
    assert_eq!(
        d.reasons[1].to_string(),
        "rule \"contractors-4h\" (contractors 4h) denies it: it lasts 5h and the limit is 4h"
    );
    // Not a contractor: the cap does not apply.
    assert!(
        ask(
            &policies,
            &bob(),
            &res("desk-par-1"),
            NOW + HOUR,
            NOW + 6 * HOUR,
            &[]
        )
        .allowed
    );
}

#[test]
fn selectors_by_kind_site_floor_neighbourhood_and_name() {
    let cases: Vec<(ResourceSelector, Vec<&str>)> = vec![
        (kinds(&[ResourceKind::Parking]), vec!["park-1", "park-2"]),
        (
            kinds(&[ResourceKind::Custom("bike".into())]),
            vec!["bike-1"],
        ),
        (
            ResourceSelector {
                sites: vec!["par".into()],
                ..Default::default()
            },
            vec!["desk-par-1", "bike-1"],
        ),
        (
            ResourceSelector {
                floors: vec!["lon-3".into()],
                kinds: vec![ResourceKind::Room, ResourceKind::Locker],
                ..Default::default()
            },
            vec!["boardroom", "locker-1"],
        ),
        (zones(&["mkt"]), vec!["desk-mkt-1", "desk-mkt-2"]),
        (
            ResourceSelector {
                resources: vec!["boardroom".into()],
                ..Default::default()
            },
            vec!["boardroom"],
        ),
        (
            ResourceSelector {
                kinds: vec![ResourceKind::Desk],
                sites: vec!["lon".into()],
                neighbourhoods: vec!["sales".into()],
                ..Default::default()
            },
            vec!["desk-sales-1"],
        ),
    ];
    let everything = catalog();
    let (s, e) = tomorrow();
    for (selector, expected) in cases {
        let policies = compile(
            vec![rule("r", Effect::Allow, None, selector.clone())],
            Effect::Deny,
        );
        let mut allowed: Vec<&str> = everything
            .resources()
            .filter(|r| ask(&policies, &bob(), r, s, e, &[]).allowed)
            .map(|r| r.id.as_str())
            .collect();
        allowed.sort_unstable();
        let mut expected = expected;
        expected.sort_unstable();
        assert_eq!(allowed, expected, "{selector:?}");
    }
}

#[test]
fn people_filters_over_groups_enterprise_and_extension_attributes() {
    let (s, e) = tomorrow();
    let check = |filter: &str, expect_alice: bool, expect_bob: bool| {
        let policies = compile(
            vec![rule(
                "r",
                Effect::Allow,
                Some(filter),
                ResourceSelector::default(),
            )],
            Effect::Deny,
        );
        assert_eq!(
            ask(&policies, &alice(), &res("park-1"), s, e, &[]).allowed,
            expect_alice,
            "{filter}"
        );
        assert_eq!(
            ask(&policies, &bob(), &res("park-1"), s, e, &[]).allowed,
            expect_bob,
            "{filter}"
        );
    };
    check("groups[display eq \"Parking\"]", true, false);
    check(
        "groups[display eq \"parking\" and type eq \"direct\"]",
        true,
        false,
    );
    check("groups.display eq \"Sales\"", false, true);
    check(
        &format!("{ENTERPRISE}:department eq \"Marketing\""),
        true,
        false,
    );
    check("title co \"Director\"", true, false);
    check(
        &format!("{WORKPLACE_EXT}:homeSite eq \"London\""),
        true,
        true,
    );
    check("homeSite eq \"Paris\"", false, false);
    check("not (groups pr)", false, false);
}

#[test]
fn extension_attributes_need_the_extension_schema() {
    let rules = vec![rule(
        "r",
        Effect::Allow,
        Some(&format!("{WORKPLACE_EXT}:homeSite eq \"London\"")),
        ResourceSelector::default(),
    )];
    let set = PolicySet {
        rules,
        default: Effect::Deny,
        utc_offset_seconds: 0,
    };
    let err = CompiledPolicySet::compile(&set).unwrap_err();
    assert!(
        matches!(&err, PolicyError::InvalidFilter { rule, offset: Some(0), .. } if rule == "r"),
        "{err}"
    );
    assert!(CompiledPolicySet::compile_with(&set, &user_schema_with_extension()).is_ok());
}

#[test]
fn inactive_and_former_people_are_always_denied() {
    let policies = compile(
        vec![rule(
            "all",
            Effect::Allow,
            None,
            ResourceSelector::default(),
        )],
        Effect::Allow,
    );
    let (s, e) = tomorrow();
    let mut doc = user_doc("dave", "Sales", "Rep", &[]);
    doc["active"] = serde_json::json!(false);
    let inactive = person("u-dave", doc.clone());
    let former = workplace_policy::Person::from_scim("u-dave", doc, true);
    for (who, status) in [
        (inactive, PersonStatus::Inactive),
        (former, PersonStatus::Former),
    ] {
        let d = ask(&policies, &who, &res("desk-par-1"), s, e, &[]);
        assert!(!d.allowed);
        assert_eq!(d.reasons, vec![Reason::PersonNotActive { status }]);
    }
}

#[test]
fn malformed_and_past_requests_are_denied() {
    let policies = compile(
        vec![rule(
            "all",
            Effect::Allow,
            None,
            ResourceSelector::default(),
        )],
        Effect::Allow,
    );
    let d = ask(
        &policies,
        &bob(),
        &res("desk-par-1"),
        NOW + HOUR,
        NOW + HOUR,
        &[],
    );
    assert!(matches!(d.reasons[..], [Reason::EmptyInterval { .. }]));
    let d = ask(
        &policies,
        &bob(),
        &res("desk-par-1"),
        NOW - 2 * HOUR,
        NOW,
        &[],
    );
    assert!(matches!(d.reasons[..], [Reason::InThePast { .. }]));
    // Started but not over: may still be booked (walking up to a free desk).
    assert!(
        ask(
            &policies,
            &bob(),
            &res("desk-par-1"),
            NOW - HOUR,
            NOW + HOUR,
            &[]
        )
        .allowed
    );
    // Absurd instants are answered, not panicked on.
    let d = ask(
        &policies,
        &bob(),
        &res("desk-par-1"),
        i64::MIN,
        i64::MAX,
        &[],
    );
    assert!(d.allowed);
}

/// "Why may Alice book the Boardroom?" and why Bob may not.
#[test]
fn decision_explanations() {
    let mut directors = Rule {
        id: "directors-boardroom".into(),
        name: "Directors may book the Boardroom".into(),
        effect: Effect::Allow,
        people: Some("title co \"Director\"".into()),
        resources: ResourceSelector {
            resources: vec!["boardroom".into()],
            ..Default::default()
        },
        limits: Limits::default(),
    };
    directors.limits.max_duration_seconds = Some(4 * HOUR);
    directors.limits.max_days_ahead = Some(14);
    let rooms = Rule {
        id: "rooms-for-all".into(),
        name: "Everyone may book rooms for an hour".into(),
        effect: Effect::Allow,
        people: None,
        resources: kinds(&[ResourceKind::Room]),
        limits: Limits {
            max_duration_seconds: Some(HOUR),
            ..Limits::default()
        },
    };
    let freeze = Rule {
        id: "sales-freeze".into(),
        name: "No Sales bookings in London during the audit".into(),
        effect: Effect::Deny,
        people: Some(format!("{ENTERPRISE}:department eq \"Sales\"")),
        resources: ResourceSelector {
            sites: vec!["lon".into()],
            ..Default::default()
        },
        limits: Limits::default(),
    };
    let policies = compile(vec![directors, rooms, freeze], Effect::Deny);
    let (s, _) = tomorrow();
    let alice_says = ask(&policies, &alice(), &res("boardroom"), s, s + 3 * HOUR, &[]);
    let bob_says = ask(&policies, &bob(), &res("boardroom"), s, s + 3 * HOUR, &[]);
    insta::assert_json_snapshot!("alice_boardroom", alice_says);
    insta::assert_snapshot!("alice_boardroom_text", alice_says.explain());
    insta::assert_snapshot!("bob_boardroom_text", bob_says.explain());
    assert!(alice_says.allowed);
    assert!(!bob_says.allowed);
    assert_eq!(rule_ids(&bob_says), ["rooms-for-all", "sales-freeze"]);
}

#[test]
fn a_thousand_rules_select_by_index_and_decide_like_a_scan() {
    // 1,000 rules over sites and kinds; the index must give the same answer as trying them all.
    let kinds_cycle = [
        ResourceKind::Desk,
        ResourceKind::Room,
        ResourceKind::Parking,
        ResourceKind::Locker,
    ];
    let rules: Vec<Rule> = (0..1000)
        .map(|i| {
            let effect = if i % 97 == 0 {
                Effect::Deny
            } else {
                Effect::Allow
            };
            let people = match i % 3 {
                0 => Some(format!("groups[display eq \"Team {}\"]", i % 50)),
                1 => Some(format!("{ENTERPRISE}:department eq \"Dept {}\"", i % 40)),
                _ => Some("title co \"Director\"".to_owned()),
            };
            let selector = ResourceSelector {
                kinds: vec![kinds_cycle[i % 4].clone()],
                sites: vec![if i % 2 == 0 { "lon" } else { "par" }.into()],
                ..Default::default()
            };
            rule(&format!("r{i}"), effect, people.as_deref(), selector)
        })
        .collect();
    let policies = compile(rules, Effect::Deny);
    let (s, e) = tomorrow();
    for who in [alice(), bob()] {
        for r in catalog().resources() {
            let d = ask(&policies, &who, r, s, e, &[]);
            let naive_allowed = {
                let applicable: Vec<&Rule> = policies
                    .policy_set()
                    .rules
                    .iter()
                    .filter(|rule| rule.resources.matches(r))
                    .filter(|rule| {
                        let f = scim_filter::parse_filter(rule.people.as_deref().unwrap()).unwrap();
                        scim_filter::eval::matches(&f, &who.document, &user_schema_with_extension())
                            .unwrap()
                    })
                    .collect();
                let denied = applicable.iter().any(|r| r.effect == Effect::Deny);
                let allowed = applicable.iter().any(|r| r.effect == Effect::Allow);
                !denied && allowed
            };
            assert_eq!(d.allowed, naive_allowed, "{} {}", who.id, r.id);
        }
    }
}

/// The paths a rule's `people` filter names, for a store checking a schema change against it.
#[test]
fn a_rule_names_the_paths_its_people_filter_compares() {
    let rule: workplace_policy::Rule = serde_json::from_value(serde_json::json!({
        "id": "r", "name": "r", "effect": "allow",
        "people": "urn:example:params:scim:schemas:extension:acme:2.0:User:officeName eq \"London\" and (emails[type eq \"work\"] or not (title pr))",
        "resources": {"kinds": ["desk"]}
    }))
    .unwrap();
    let paths: Vec<String> = rule
        .people_paths()
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        paths,
        [
            "urn:example:params:scim:schemas:extension:acme:2.0:User:officeName",
            "emails",
            "emails.type",
            "title"
        ]
    );
    let everyone: workplace_policy::Rule = serde_json::from_value(serde_json::json!({
        "id": "e", "name": "e", "effect": "allow", "resources": {"kinds": ["desk"]}
    }))
    .unwrap();
    assert!(everyone.people_paths().is_empty());
}
