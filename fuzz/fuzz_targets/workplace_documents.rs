//! The workplace API's documents (docs/workplace-api.md): catalog entries, policies and single
//! rules (with their `people` filters, compiled against the User schema), and booking
//! requests, read as the API reads them, then used on a small fixed model: each booking
//! request, and each compiled policy set, is evaluated for every person and resource of the
//! model, and a policy change is previewed against the model's bookings.
//!
//! Input: the first line names the document (`site`, `floor`, `neighbourhood`, `resource`,
//! `policies`, `rule`, `booking`), the rest is its JSON body.
//!
//! Nothing may panic. A catalog entry in canonical form is its own canonical form; a refusal
//! names a reason that objects; a preview cancels (or flags) only bookings of the
//! model that were live and in the future.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_server::fuzzing::{booking_request, policies_body, rule};
use scim_store::workplace::PlaceKind;
use scim_store::workplace::plan::canonical_place;
use serde_json::{Value, json};
use std::sync::OnceLock;
use workplace_policy::{
    Booking, BookingRequest, BookingStatus, CascadeSettings, Catalog, CompiledPolicySet, Effect,
    Floor, Neighbourhood, Person, PolicySet, Resource, ResourceKind, Site, evaluate,
    preview_policy_change,
};

/// A Monday at 08:00 UTC, 2030-01-07.
const NOW: i64 = 1_893_916_800;
const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

struct Model {
    catalog: Catalog,
    people: Vec<Person>,
    bookings: Vec<Booking>,
    current: CompiledPolicySet,
    schema: scim_schema::ResourceSchema,
}

fn model() -> &'static Model {
    static MODEL: OnceLock<Model> = OnceLock::new();
    MODEL.get_or_init(|| {
        let resource =
            |id: &str, kind: ResourceKind, neighbourhood: Option<&str>, capacity| Resource {
                id: id.into(),
                kind,
                site: "lon".into(),
                floor: Some("l3".into()),
                neighbourhood: neighbourhood.map(Into::into),
                name: id.into(),
                capacity,
            };
        let catalog = Catalog::new(
            vec![Site {
                id: "lon".into(),
                name: "London Bridge".into(),
            }],
            vec![Floor {
                id: "l3".into(),
                site: "lon".into(),
                name: "Level 3".into(),
            }],
            vec![Neighbourhood {
                id: "mkt".into(),
                site: "lon".into(),
                floor: Some("l3".into()),
                name: "Marketing corner".into(),
            }],
            vec![
                resource("desk-1", ResourceKind::parse("desk"), Some("mkt"), 1),
                resource("desk-2", ResourceKind::parse("desk"), None, 1),
                resource("park-1", ResourceKind::parse("parking"), None, 1),
                resource("boardroom", ResourceKind::parse("room"), None, 10),
                resource("booth", ResourceKind::parse("phone-booth"), None, 2),
            ],
        )
        .expect("the fixed catalog is consistent");
        let enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let people = vec![
            Person::from_scim(
                "alice",
                json!({"userName": "alice@example.com", "active": true, "title": "Director",
                       enterprise: {"department": "Marketing"},
                       "groups": [{"value": "g1", "display": "Parking"}]}),
                false,
            ),
            Person::from_scim(
                "bob",
                json!({"userName": "bob@example.com", "active": true,
                       "emails": [{"value": "bob@example.com", "type": "work", "primary": true}]}),
                false,
            ),
            Person::from_scim(
                "carol",
                json!({"userName": "carol@example.com", "active": false}),
                false,
            ),
            Person::from_scim("dave", json!({"userName": "dave@example.com"}), true),
        ];
        let booking = |id: &str, person: &str, resource: &str, day: i64, status| Booking {
            id: id.into(),
            person: person.into(),
            resource: resource.into(),
            start: NOW + day * DAY + HOUR,
            end: NOW + day * DAY + 9 * HOUR,
            status,
            created_at: NOW - DAY,
        };
        let bookings = vec![
            booking("b1", "alice", "desk-1", 1, BookingStatus::Booked),
            booking("b2", "alice", "park-1", 2, BookingStatus::Booked),
            booking("b3", "bob", "boardroom", 1, BookingStatus::Booked),
            booking("b4", "bob", "desk-2", -1, BookingStatus::CheckedIn),
            booking("b5", "bob", "booth", 0, BookingStatus::Booked),
        ];
        let current = CompiledPolicySet::compile(&PolicySet {
            rules: Vec::new(),
            default: Effect::Allow,
            utc_offset_seconds: 3600,
        })
        .expect("the fixed policies compile");
        Model {
            catalog,
            people,
            bookings,
            current,
            schema: scim_schema::core::user(),
        }
    })
}

/// Every person and resource of the model, for `request`.
fn decide_all(policies: &CompiledPolicySet, request: BookingRequest) {
    let model = model();
    for person in &model.people {
        for resource in model.catalog.resources() {
            let decision = evaluate(
                policies,
                &model.catalog,
                person,
                resource,
                request,
                NOW,
                &model.bookings,
            );
            assert!(
                decision.allowed || decision.main_objection().is_some(),
                "a refusal must name what objects: {decision:?}"
            );
            let _ = decision.explain();
        }
    }
}

fn use_policies(set: &PolicySet, settings: Option<CascadeSettings>) {
    let model = model();
    let Ok(policies) = CompiledPolicySet::compile_with(set, &model.schema) else {
        return;
    };
    for (start, end) in [
        (NOW + DAY, NOW + DAY + 8 * HOUR),
        (NOW + 30 * DAY, NOW + 31 * DAY),
    ] {
        decide_all(&policies, BookingRequest { start, end });
    }
    let preview = preview_policy_change(
        &model.current,
        &policies,
        &model.catalog,
        &model.people,
        &model.bookings,
        NOW,
        settings.unwrap_or_default(),
    );
    for lost in preview.cancelled.iter().chain(&preview.flagged) {
        let booking = model
            .bookings
            .iter()
            .find(|b| b.id == lost.booking)
            .unwrap_or_else(|| panic!("a preview names a booking the model lacks: {lost:?}"));
        assert!(
            booking.is_live() && booking.end > NOW,
            "not a live future booking: {lost:?}"
        );
    }
    let _ = preview.summary();
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (kind, body) = text.split_once('\n').unwrap_or((text, ""));
    let Ok(body) = serde_json::from_str::<Value>(body) else {
        return;
    };
    let place = match kind {
        "site" => Some(PlaceKind::Site),
        "floor" => Some(PlaceKind::Floor),
        "neighbourhood" => Some(PlaceKind::Neighbourhood),
        "resource" => Some(PlaceKind::Resource),
        _ => None,
    };
    if let Some(place) = place {
        if let Ok(canonical) = canonical_place(place, "fuzz-1", body) {
            let again = canonical_place(place, "fuzz-1", canonical.clone());
            assert_eq!(
                again.as_ref().ok(),
                Some(&canonical),
                "canonical form changed"
            );
        }
        return;
    }
    match kind {
        "policies" => {
            if let Ok((set, settings)) = policies_body(body) {
                use_policies(&set, settings);
            }
        }
        "rule" => {
            if let Ok(rule) = rule("the rule", body) {
                let set = PolicySet {
                    rules: vec![rule],
                    default: Effect::Deny,
                    utc_offset_seconds: 0,
                };
                use_policies(&set, None);
            }
        }
        "booking" => {
            if let Ok(booking) = booking_request(body) {
                assert!(
                    booking.end > booking.start,
                    "an empty interval was accepted"
                );
                decide_all(&model().current, booking.request());
            }
        }
        _ => {}
    }
});
