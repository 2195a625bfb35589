//! The workplace model: where things are ([`Site`], [`Floor`], [`Neighbourhood`]), what can be
//! used ([`Resource`]), who holds what ([`Assignment`], [`Booking`]) and who the people are
//! ([`Person`], derived from SCIM users, RFC 7643 section 4.1).
//!
//! Every type serialises with serde in camelCase, like SCIM itself, with ids as strings.

use crate::error::PolicyError;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;

/// An office building or campus.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Site {
    /// Unique among sites.
    pub id: String,
    /// Display name, e.g. `London Bridge`.
    pub name: String,
}

/// A floor of a site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Floor {
    /// Unique among floors.
    pub id: String,
    /// The site the floor is in.
    pub site: String,
    /// Display name, e.g. `Level 3`.
    pub name: String,
}

/// A neighbourhood (zone): an area of a site, usually of one floor, often set aside for a team.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Neighbourhood {
    /// Unique among neighbourhoods.
    pub id: String,
    /// The site the neighbourhood is in.
    pub site: String,
    /// The floor, if the neighbourhood lies on one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<String>,
    /// Display name, e.g. `Marketing corner`.
    pub name: String,
}

/// What a resource is. Operators add their own kinds with [`ResourceKind::Custom`].
///
/// Serialised as a plain string: `desk`, `room`, `parking`, `locker`, `equipment`, or the custom
/// name. Parsing recognises the built-in names case-insensitively, so `Custom("Desk")` never
/// exists; custom names are kept as written and compared exactly.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ResourceKind {
    /// A desk.
    Desk,
    /// A meeting room.
    Room,
    /// A parking space.
    Parking,
    /// A locker.
    Locker,
    /// A piece of equipment (a monitor, a laptop, a bicycle).
    Equipment,
    /// A kind the operator defined, e.g. `phone-booth`.
    Custom(String),
}

impl ResourceKind {
    /// The kind named `name`: a built-in kind (case-insensitively) or a custom one.
    pub fn parse(name: &str) -> ResourceKind {
        const BUILT_IN: [(&str, ResourceKind); 5] = [
            ("desk", ResourceKind::Desk),
            ("room", ResourceKind::Room),
            ("parking", ResourceKind::Parking),
            ("locker", ResourceKind::Locker),
            ("equipment", ResourceKind::Equipment),
        ];
        BUILT_IN
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map_or_else(|| ResourceKind::Custom(name.to_owned()), |(_, k)| k)
    }

    /// The kind's name as serialised.
    pub fn as_str(&self) -> &str {
        match self {
            ResourceKind::Desk => "desk",
            ResourceKind::Room => "room",
            ResourceKind::Parking => "parking",
            ResourceKind::Locker => "locker",
            ResourceKind::Equipment => "equipment",
            ResourceKind::Custom(name) => name,
        }
    }
}

impl From<String> for ResourceKind {
    fn from(name: String) -> Self {
        match ResourceKind::parse(&name) {
            ResourceKind::Custom(_) => ResourceKind::Custom(name),
            known => known,
        }
    }
}

impl From<ResourceKind> for String {
    fn from(kind: ResourceKind) -> Self {
        match kind {
            ResourceKind::Custom(name) => name,
            known => known.as_str().to_owned(),
        }
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something people book or are assigned: a desk, a room, a parking space, ...
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    /// Unique among resources.
    pub id: String,
    /// What it is.
    pub kind: ResourceKind,
    /// The site it is at.
    pub site: String,
    /// The floor, if it is on one (a car park space may not be).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor: Option<String>,
    /// The neighbourhood, if it is in one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub neighbourhood: Option<String>,
    /// Display name, e.g. `Boardroom`.
    pub name: String,
    /// How many bookings it holds at once: 1 for a desk, 1 for a room (booked whole), more for a
    /// shared space. At least 1.
    pub capacity: u32,
}

/// A permanent assignment: a resource owned by one person (their own desk, their locker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Assignment {
    /// Unique among assignments.
    pub id: String,
    /// The person (SCIM user id).
    pub person: String,
    /// The resource.
    pub resource: String,
    /// When it was assigned.
    pub since: Timestamp,
}

/// Who did something to a booking.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "type", content = "id")]
pub enum Actor {
    /// The person who holds the booking (SCIM user id).
    Person(String),
    /// A workplace administrator (their id in the workplace API's token).
    Administrator(String),
    /// This system, applying a cascade; the [`Cause`] says what triggered it.
    System,
}

/// What made the system act on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Trigger {
    /// The identity provider set `active` to false (RFC 7643 section 4.1.1).
    Deactivated,
    /// The identity provider deleted the user (RFC 7644 section 3.6).
    Deleted,
    /// The identity provider set `active` back to true.
    Reactivated,
    /// The identity provider changed the user's attributes or group memberships.
    AttributesChanged,
    /// An administrator changed the policies.
    PolicyChanged,
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Trigger::Deactivated => "deactivated by the identity provider",
            Trigger::Deleted => "deleted by the identity provider",
            Trigger::Reactivated => "reactivated by the identity provider",
            Trigger::AttributesChanged => "attributes changed by the identity provider",
            Trigger::PolicyChanged => "policy change",
        })
    }
}

/// Why the system acted: the trigger, the request that carried it, and the rule involved if one
/// was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Cause {
    /// What happened.
    pub trigger: Trigger,
    /// The id of the request that caused it: the SCIM request for identity-provider triggers,
    /// the workplace API request for policy changes. Audit logs join on it.
    pub request_id: String,
    /// The rule that now forbids what was undone, if a rule does (a tenant default may instead).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// Where a booking is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "status")]
pub enum BookingStatus {
    /// Booked, not (yet) checked in.
    Booked,
    /// The person checked in: the resource is in use.
    CheckedIn,
    /// Cancelled before use.
    #[serde(rename_all = "camelCase")]
    Cancelled {
        /// Who cancelled it.
        by: Actor,
        /// Why, for people to read.
        reason: String,
        /// When.
        at: Timestamp,
        /// What made the system cancel it; `None` when a person did.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cause: Option<Cause>,
    },
    /// Used and over. `at` is when use ended: the booking's end, or earlier when it was ended
    /// early (a leaver's in-progress booking ends when they leave).
    Completed {
        /// When use ended.
        at: Timestamp,
    },
}

/// A booking of a resource by a person for `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Booking {
    /// Unique among bookings.
    pub id: String,
    /// The person (SCIM user id).
    pub person: String,
    /// The resource.
    pub resource: String,
    /// First instant of use.
    pub start: Timestamp,
    /// First instant after use (exclusive).
    pub end: Timestamp,
    /// Where it is in its life.
    #[serde(flatten)]
    pub status: BookingStatus,
    /// When it was made: limits such as "how far ahead" are measured from it when the booking
    /// is re-checked after a change.
    pub created_at: Timestamp,
}

impl Booking {
    /// Booked or checked in: it still holds the resource.
    pub fn is_live(&self) -> bool {
        matches!(
            self.status,
            BookingStatus::Booked | BookingStatus::CheckedIn
        )
    }

    /// Whether it counts against a person's allowance: anything not cancelled.
    pub fn counts(&self) -> bool {
        !matches!(self.status, BookingStatus::Cancelled { .. })
    }

    /// Whether `[start, end)` overlaps `[self.start, self.end)`.
    pub fn overlaps(&self, start: Timestamp, end: Timestamp) -> bool {
        self.start < end && start < self.end
    }
}

/// A person's standing, derived from their SCIM user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PersonStatus {
    /// May book and check in; counts as a licensed seat.
    Active,
    /// Deactivated by the identity provider (`active` false, RFC 7643 section 4.1.1): cannot book
    /// or check in, is not a licensed seat, may be reactivated.
    Inactive,
    /// Deleted by the identity provider (RFC 7644 section 3.6): history kept (or anonymised),
    /// nothing else.
    Former,
}

impl PersonStatus {
    /// The status of a SCIM user document. `deleted` is whether the identity provider deleted
    /// it (the store knows; the document does not say).
    ///
    /// `active` (RFC 7643 section 4.1.1) is read in every dialect seen in the wild: a JSON
    /// boolean, or the strings `"true"`/`"false"` in any case (Microsoft Entra ID sends
    /// `"False"` in PATCH values). Absent or `null` means active: RFC 7643 gives `active` no
    /// default, and identity providers that never send it manage users they consider active.
    pub fn from_scim(document: &Value, deleted: bool) -> PersonStatus {
        if deleted {
            return PersonStatus::Former;
        }
        let active = document
            .as_object()
            .and_then(|o| {
                o.get("active").or_else(|| {
                    o.iter()
                        .find(|(k, _)| k.eq_ignore_ascii_case("active"))
                        .map(|(_, v)| v)
                })
            })
            .unwrap_or(&Value::Null);
        let inactive = match active {
            Value::Bool(b) => !b,
            Value::String(s) => s.trim().eq_ignore_ascii_case("false"),
            _ => false,
        };
        if inactive {
            PersonStatus::Inactive
        } else {
            PersonStatus::Active
        }
    }
}

impl fmt::Display for PersonStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PersonStatus::Active => "active",
            PersonStatus::Inactive => "inactive",
            PersonStatus::Former => "former",
        })
    }
}

/// A person: a SCIM user (RFC 7643 section 4.1) as the workplace sees them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Person {
    /// The SCIM `id`.
    pub id: String,
    /// Active, inactive or former.
    pub status: PersonStatus,
    /// The first synced group's id: the person's primary team.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_team: Option<String>,
    /// Every team (group id) in sync order, the primary team first.
    #[serde(default)]
    pub teams: Vec<String>,
    /// The user's SCIM document, with `groups` (RFC 7643 section 4.1.2) as the store derives it:
    /// `[{value, display, type}]` in sync order. Rules' people filters run against it.
    pub document: Value,
}

impl Person {
    /// The person a SCIM user document describes. `deleted` is whether the identity provider
    /// deleted the user. Teams come from the document's `groups`, which must list groups in
    /// the order they were synced (see [`teams_from_groups`]).
    pub fn from_scim(id: impl Into<String>, document: Value, deleted: bool) -> Person {
        let status = PersonStatus::from_scim(&document, deleted);
        let groups = document
            .get("groups")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        let teams = teams_from_groups(groups);
        Person {
            id: id.into(),
            status,
            primary_team: teams.first().cloned(),
            teams,
            document,
        }
    }

    /// Whether the person may book and counts as a licensed seat.
    pub fn is_active(&self) -> bool {
        self.status == PersonStatus::Active
    }

    /// A short label for explanations: `userName` (RFC 7643 section 4.1.1) when the document has
    /// one, else the id.
    pub fn label(&self) -> &str {
        self.document
            .get("userName")
            .and_then(Value::as_str)
            .unwrap_or(&self.id)
    }
}

/// The team ids of a user's `groups` (RFC 7643 section 4.1.2), given in sync order: the first is
/// the primary team, the others additional teams. Entries without a string `value` are skipped,
/// as are repeats (a user reached through two nested paths is still one member).
pub fn teams_from_groups(groups: &[Value]) -> Vec<String> {
    let mut teams: Vec<String> = Vec::with_capacity(groups.len());
    for group in groups {
        if let Some(id) = group.get("value").and_then(Value::as_str)
            && !teams.iter().any(|t| t == id)
        {
            teams.push(id.to_owned());
        }
    }
    teams
}

/// How many licensed seats `people` take: the active ones. Inactive and former people do not
/// count, so a deactivated leaver frees their seat at once.
pub fn licensed_seats<'a>(people: impl IntoIterator<Item = &'a Person>) -> usize {
    people.into_iter().filter(|p| p.is_active()).count()
}

/// People by status, for the licensed-seat report.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeatReport {
    /// Active people: the licensed seats.
    pub active: usize,
    /// Inactive people (not licensed).
    pub inactive: usize,
    /// Former people (not licensed).
    pub former: usize,
}

impl SeatReport {
    /// Counts `people` by status.
    pub fn of<'a>(people: impl IntoIterator<Item = &'a Person>) -> SeatReport {
        let mut report = SeatReport::default();
        for person in people {
            match person.status {
                PersonStatus::Active => report.active += 1,
                PersonStatus::Inactive => report.inactive += 1,
                PersonStatus::Former => report.former += 1,
            }
        }
        report
    }
}

/// The places and resources of a tenant, checked for consistency and indexed by id.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    sites: HashMap<String, Site>,
    floors: HashMap<String, Floor>,
    neighbourhoods: HashMap<String, Neighbourhood>,
    resources: HashMap<String, Resource>,
}

impl Catalog {
    /// Builds a catalog, checking that ids are unique and non-empty, that every floor,
    /// neighbourhood and resource is at a known site, that a resource's floor and neighbourhood
    /// are at its site (and the neighbourhood on its floor, when both say), and that capacities
    /// are at least 1.
    pub fn new(
        sites: Vec<Site>,
        floors: Vec<Floor>,
        neighbourhoods: Vec<Neighbourhood>,
        resources: Vec<Resource>,
    ) -> Result<Catalog, PolicyError> {
        let sites = index("site", sites, |s| &s.id)?;
        let floors = index("floor", floors, |f| &f.id)?;
        let neighbourhoods = index("neighbourhood", neighbourhoods, |n| &n.id)?;
        let resources = index("resource", resources, |r| &r.id)?;
        let bad = |kind: &'static str, id: &str, detail: String| PolicyError::Catalog {
            kind,
            id: id.to_owned(),
            detail,
        };
        for floor in floors.values() {
            if !sites.contains_key(&floor.site) {
                return Err(bad("floor", &floor.id, unknown("site", &floor.site)));
            }
        }
        for zone in neighbourhoods.values() {
            if !sites.contains_key(&zone.site) {
                return Err(bad("neighbourhood", &zone.id, unknown("site", &zone.site)));
            }
            if let Some(floor_id) = &zone.floor {
                let floor = floors
                    .get(floor_id)
                    .ok_or_else(|| bad("neighbourhood", &zone.id, unknown("floor", floor_id)))?;
                if floor.site != zone.site {
                    return Err(bad(
                        "neighbourhood",
                        &zone.id,
                        format!(
                            "its floor {floor_id:?} is at site {:?}, not {:?}",
                            floor.site, zone.site
                        ),
                    ));
                }
            }
        }
        for resource in resources.values() {
            let problem = |detail: String| bad("resource", &resource.id, detail);
            if resource.capacity == 0 {
                return Err(problem("capacity must be at least 1".to_owned()));
            }
            if !sites.contains_key(&resource.site) {
                return Err(problem(unknown("site", &resource.site)));
            }
            if let Some(floor_id) = &resource.floor {
                let floor = floors
                    .get(floor_id)
                    .ok_or_else(|| problem(unknown("floor", floor_id)))?;
                if floor.site != resource.site {
                    return Err(problem(format!(
                        "its floor {floor_id:?} is at site {:?}, not {:?}",
                        floor.site, resource.site
                    )));
                }
            }
            if let Some(zone_id) = &resource.neighbourhood {
                let zone = neighbourhoods
                    .get(zone_id)
                    .ok_or_else(|| problem(unknown("neighbourhood", zone_id)))?;
                if zone.site != resource.site {
                    return Err(problem(format!(
                        "its neighbourhood {zone_id:?} is at site {:?}, not {:?}",
                        zone.site, resource.site
                    )));
                }
                if let (Some(zone_floor), Some(floor)) = (&zone.floor, &resource.floor)
                    && zone_floor != floor
                {
                    return Err(problem(format!(
                        "its neighbourhood {zone_id:?} is on floor {zone_floor:?}, not {floor:?}"
                    )));
                }
            }
        }
        Ok(Catalog {
            sites,
            floors,
            neighbourhoods,
            resources,
        })
    }

    /// The resource with id `id`.
    pub fn resource(&self, id: &str) -> Option<&Resource> {
        self.resources.get(id)
    }

    /// The site with id `id`.
    pub fn site(&self, id: &str) -> Option<&Site> {
        self.sites.get(id)
    }

    /// The floor with id `id`.
    pub fn floor(&self, id: &str) -> Option<&Floor> {
        self.floors.get(id)
    }

    /// The neighbourhood with id `id`.
    pub fn neighbourhood(&self, id: &str) -> Option<&Neighbourhood> {
        self.neighbourhoods.get(id)
    }

    /// Every resource, in no particular order.
    pub fn resources(&self) -> impl Iterator<Item = &Resource> {
        self.resources.values()
    }
}

fn unknown(kind: &str, id: &str) -> String {
    format!("no {kind} {id:?} in the catalog")
}

fn index<T>(
    kind: &'static str,
    items: Vec<T>,
    id_of: impl Fn(&T) -> &String,
) -> Result<HashMap<String, T>, PolicyError> {
    let mut map = HashMap::with_capacity(items.len());
    for item in items {
        let id = id_of(&item).clone();
        if id.is_empty() {
            return Err(PolicyError::Catalog {
                kind,
                id,
                detail: "the id is empty".to_owned(),
            });
        }
        if map.contains_key(&id) {
            return Err(PolicyError::Catalog {
                kind,
                id,
                detail: "the id is used twice".to_owned(),
            });
        }
        map.insert(id, item);
    }
    Ok(map)
}

/// Whether `resource` has room for `[start, end)` next to `bookings` (any bookings; those of
/// other resources and those no longer live are ignored): fewer than `capacity` live bookings
/// overlap the interval. Availability is not a policy question, but it is the other half of
/// "may this booking be made", and as pure as the rest.
pub fn has_capacity(
    resource: &Resource,
    start: Timestamp,
    end: Timestamp,
    bookings: &[Booking],
) -> bool {
    let overlapping = bookings
        .iter()
        .filter(|b| b.resource == resource.id && b.is_live() && b.overlaps(start, end))
        .count();
    overlapping < usize::try_from(resource.capacity).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_follows_active_in_every_dialect() {
        assert_eq!(
            PersonStatus::from_scim(&json!({"active": false}), false),
            PersonStatus::Inactive
        );
        assert_eq!(
            PersonStatus::from_scim(&json!({"Active": "False"}), false),
            PersonStatus::Inactive
        );
        assert_eq!(
            PersonStatus::from_scim(&json!({"active": "true"}), false),
            PersonStatus::Active
        );
        assert_eq!(
            PersonStatus::from_scim(&json!({"userName": "a"}), false),
            PersonStatus::Active
        );
        assert_eq!(
            PersonStatus::from_scim(&json!({"active": true}), true),
            PersonStatus::Former
        );
    }

    #[test]
    fn first_synced_group_is_the_primary_team() {
        let person = Person::from_scim(
            "u1",
            json!({"userName": "alice", "groups": [
                {"value": "g-eng", "display": "Engineering", "type": "direct"},
                {"value": "g-park", "display": "Parking"},
                {"display": "no value"},
                {"value": "g-eng", "display": "Engineering", "type": "indirect"}
            ]}),
            false,
        );
        assert_eq!(person.primary_team.as_deref(), Some("g-eng"));
        assert_eq!(person.teams, ["g-eng", "g-park"]);
        assert_eq!(person.label(), "alice");
    }

    #[test]
    fn kinds_round_trip_as_strings() {
        assert_eq!(
            ResourceKind::from("Parking".to_owned()),
            ResourceKind::Parking
        );
        assert_eq!(
            ResourceKind::from("phone-booth".to_owned()),
            ResourceKind::Custom("phone-booth".to_owned())
        );
        assert_eq!(
            serde_json::to_value(ResourceKind::Locker).unwrap(),
            json!("locker")
        );
        let custom: ResourceKind = serde_json::from_value(json!("bike")).unwrap();
        assert_eq!(custom.as_str(), "bike");
    }

    #[test]
    fn bookings_serialise_with_a_flat_status() {
        let booking = Booking {
            id: "b1".into(),
            person: "u1".into(),
            resource: "d1".into(),
            start: 100,
            end: 200,
            status: BookingStatus::Cancelled {
                by: Actor::System,
                reason: "left".into(),
                at: 50,
                cause: Some(Cause {
                    trigger: Trigger::Deleted,
                    request_id: "req-1".into(),
                    rule: None,
                }),
            },
            created_at: 10,
        };
        let value = serde_json::to_value(&booking).unwrap();
        assert_eq!(value["status"], "cancelled");
        assert_eq!(value["by"], json!({"type": "system"}));
        assert_eq!(value["cause"]["requestId"], "req-1");
        let back: Booking = serde_json::from_value(value).unwrap();
        assert_eq!(back, booking);
    }

    fn site(id: &str) -> Site {
        Site {
            id: id.into(),
            name: id.into(),
        }
    }

    fn desk(id: &str, site: &str, floor: Option<&str>, zone: Option<&str>) -> Resource {
        Resource {
            id: id.into(),
            kind: ResourceKind::Desk,
            site: site.into(),
            floor: floor.map(Into::into),
            neighbourhood: zone.map(Into::into),
            name: id.into(),
            capacity: 1,
        }
    }

    #[test]
    fn catalog_checks_locations() {
        let floors = || {
            vec![Floor {
                id: "l3".into(),
                site: "lon".into(),
                name: "Level 3".into(),
            }]
        };
        let zones = || {
            vec![Neighbourhood {
                id: "mkt".into(),
                site: "lon".into(),
                floor: Some("l3".into()),
                name: "Marketing".into(),
            }]
        };
        let ok = Catalog::new(
            vec![site("lon"), site("par")],
            floors(),
            zones(),
            vec![desk("d1", "lon", Some("l3"), Some("mkt"))],
        );
        assert!(ok.is_ok());
        let err = Catalog::new(
            vec![site("lon"), site("par")],
            floors(),
            zones(),
            vec![desk("d1", "par", None, Some("mkt"))],
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "resource \"d1\": its neighbourhood \"mkt\" is at site \"lon\", not \"par\""
        );
        let err = Catalog::new(
            vec![site("lon")],
            vec![],
            vec![],
            vec![desk("d1", "lon", None, None), desk("d1", "lon", None, None)],
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "resource \"d1\": the id is used twice");
    }

    #[test]
    fn capacity_counts_live_overlapping_bookings() {
        let room = Resource {
            capacity: 2,
            ..desk("r1", "lon", None, None)
        };
        let booking = |id: &str, start, end, status| Booking {
            id: id.into(),
            person: "u".into(),
            resource: "r1".into(),
            start,
            end,
            status,
            created_at: 0,
        };
        let bookings = vec![
            booking("a", 0, 10, BookingStatus::Booked),
            booking("b", 5, 15, BookingStatus::CheckedIn),
            booking("c", 0, 20, BookingStatus::Completed { at: 20 }),
        ];
        assert!(!has_capacity(&room, 6, 8, &bookings));
        assert!(has_capacity(&room, 10, 12, &bookings));
        assert!(has_capacity(&room, 15, 30, &bookings));
    }
}
