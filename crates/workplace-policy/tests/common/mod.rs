//! Shared fixtures: one tenant with two sites, a floor, two neighbourhoods and a few resources of
//! every kind; people built from SCIM documents; a fixed clock.
#![allow(
    dead_code,
    reason = "each test file uses a different part of the fixtures"
)]

use serde_json::{Value, json};
use workplace_policy::{
    Booking, BookingStatus, Catalog, CompiledPolicySet, Effect, Floor, Limits, Neighbourhood,
    Person, PolicySet, Resource, ResourceKind, ResourceSelector, Rule, Site, Timestamp,
};

pub const HOUR: i64 = 3600;
pub const DAY: i64 = 86_400;
pub const WORKPLACE_EXT: &str = "urn:example:params:scim:schemas:extension:workplace:2.0:User";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// Monday 2025-06-16T08:00:00Z.
pub const NOW: Timestamp = 1_750_060_800;

pub fn resource(
    id: &str,
    kind: ResourceKind,
    site: &str,
    floor: Option<&str>,
    zone: Option<&str>,
) -> Resource {
    Resource {
        id: id.into(),
        kind,
        site: site.into(),
        floor: floor.map(Into::into),
        neighbourhood: zone.map(Into::into),
        name: id.into(),
        capacity: 1,
    }
}

pub fn catalog() -> Catalog {
    Catalog::new(
        vec![
            Site {
                id: "lon".into(),
                name: "London".into(),
            },
            Site {
                id: "par".into(),
                name: "Paris".into(),
            },
        ],
        vec![Floor {
            id: "lon-3".into(),
            site: "lon".into(),
            name: "Level 3".into(),
        }],
        vec![
            Neighbourhood {
                id: "mkt".into(),
                site: "lon".into(),
                floor: Some("lon-3".into()),
                name: "Marketing".into(),
            },
            Neighbourhood {
                id: "sales".into(),
                site: "lon".into(),
                floor: Some("lon-3".into()),
                name: "Sales".into(),
            },
        ],
        vec![
            resource(
                "desk-mkt-1",
                ResourceKind::Desk,
                "lon",
                Some("lon-3"),
                Some("mkt"),
            ),
            resource(
                "desk-mkt-2",
                ResourceKind::Desk,
                "lon",
                Some("lon-3"),
                Some("mkt"),
            ),
            resource(
                "desk-sales-1",
                ResourceKind::Desk,
                "lon",
                Some("lon-3"),
                Some("sales"),
            ),
            resource("desk-par-1", ResourceKind::Desk, "par", None, None),
            Resource {
                name: "Boardroom".into(),
                capacity: 12,
                ..resource("boardroom", ResourceKind::Room, "lon", Some("lon-3"), None)
            },
            resource("park-1", ResourceKind::Parking, "lon", None, None),
            resource("park-2", ResourceKind::Parking, "lon", None, None),
            resource("locker-1", ResourceKind::Locker, "lon", Some("lon-3"), None),
            resource(
                "bike-1",
                ResourceKind::Custom("bike".into()),
                "par",
                None,
                None,
            ),
        ],
    )
    .unwrap()
}

pub fn res(id: &str) -> Resource {
    catalog().resource(id).unwrap().clone()
}

/// A SCIM user document with the Enterprise User department and the workplace extension's
/// homeSite, in groups `groups` (display names, in sync order).
pub fn user_doc(user_name: &str, department: &str, title: &str, groups: &[&str]) -> Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            ENTERPRISE,
            WORKPLACE_EXT
        ],
        "userName": user_name,
        "title": title,
        "active": true,
        ENTERPRISE: {"department": department},
        WORKPLACE_EXT: {"homeSite": "London"},
        "groups": groups
            .iter()
            .map(|g| json!({"value": format!("g-{}", g.to_lowercase()), "display": g, "type": "direct"}))
            .collect::<Vec<_>>()
    })
}

pub fn person(id: &str, document: Value) -> Person {
    Person::from_scim(id, document, false)
}

pub fn alice() -> Person {
    person(
        "u-alice",
        user_doc(
            "alice",
            "Marketing",
            "Director of Marketing",
            &["Marketing", "Parking"],
        ),
    )
}

pub fn bob() -> Person {
    person(
        "u-bob",
        user_doc("bob", "Sales", "Account Executive", &["Sales"]),
    )
}

pub fn rule(id: &str, effect: Effect, people: Option<&str>, resources: ResourceSelector) -> Rule {
    Rule {
        id: id.into(),
        name: id.replace('-', " "),
        effect,
        people: people.map(Into::into),
        resources,
        limits: Limits::default(),
    }
}

pub fn kinds(kinds: &[ResourceKind]) -> ResourceSelector {
    ResourceSelector {
        kinds: kinds.to_vec(),
        ..ResourceSelector::default()
    }
}

pub fn zones(zones: &[&str]) -> ResourceSelector {
    ResourceSelector {
        neighbourhoods: zones.iter().map(|z| (*z).to_owned()).collect(),
        ..ResourceSelector::default()
    }
}

/// The User resource type with the operator's workplace extension attached.
pub fn user_schema_with_extension() -> scim_schema::ResourceSchema {
    let mut registry = scim_schema::SchemaRegistry::new();
    registry
        .add_schema_json(&format!(
            r#"{{"id": "{WORKPLACE_EXT}", "name": "WorkplaceUser",
                 "attributes": [{{"name": "homeSite", "type": "string"}},
                                {{"name": "employeeType", "type": "string"}}]}}"#
        ))
        .unwrap();
    registry
        .attach_extension("User", WORKPLACE_EXT, false)
        .unwrap();
    registry.resource_schema("User").unwrap().clone()
}

pub fn compile(rules: Vec<Rule>, default: Effect) -> CompiledPolicySet {
    CompiledPolicySet::compile_with(
        &PolicySet {
            rules,
            default,
            utc_offset_seconds: 0,
        },
        &user_schema_with_extension(),
    )
    .unwrap()
}

pub fn booking(
    id: &str,
    person: &str,
    resource: &str,
    start: Timestamp,
    end: Timestamp,
    status: BookingStatus,
    created_at: Timestamp,
) -> Booking {
    Booking {
        id: id.into(),
        person: person.into(),
        resource: resource.into(),
        start,
        end,
        status,
        created_at,
    }
}
