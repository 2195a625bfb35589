//! The workplace API over real HTTP, against the real server and the SQLite store: one test per
//! lifecycle cascade (a SCIM write by an identity provider, then what it did to bookings, as
//! the workplace API and its feed show it), policy preview and apply, the catalog with ETags,
//! scope separation between SCIM and workplace tokens, and the error bodies.

mod common;

use common::client::{self, Reply, expect};
use common::{PATCH_OP, TestServer, USER, group, user};
use http::Method;
use scim_server::{Limits, ServerConfig};
use scim_store::{Store, TokenScope};
use serde_json::{Value, json};
use std::net::SocketAddr;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
const DAY: i64 = 86_400;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs() as i64
}

/// Tomorrow at the same time, and an hour later: far enough ahead to be a future booking, near
/// enough for any limit the tests set.
fn tomorrow() -> (i64, i64) {
    let start = now() + DAY;
    (start, start + 3600)
}

/// A client of the workplace API: JSON bodies as `application/json`, one bearer token.
#[derive(Debug, Clone)]
struct Wp {
    addr: SocketAddr,
    base: String,
    token: String,
}

impl Wp {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        extra: &[(&str, &str)],
    ) -> Reply {
        let auth = format!("Bearer {}", self.token);
        let mut headers: Vec<(&str, &str)> = vec![("authorization", auth.as_str())];
        if body.is_some() {
            headers.push(("content-type", "application/json"));
        }
        headers.extend_from_slice(extra);
        let bytes = body.map(|b| serde_json::to_vec(b).expect("JSON"));
        client::send(
            self.addr,
            false,
            method,
            &format!("{}{path}", self.base),
            &headers,
            bytes,
        )
        .await
    }

    async fn get(&self, path: &str) -> Reply {
        self.call(Method::GET, path, None, &[]).await
    }

    async fn post(&self, path: &str, body: &Value) -> Reply {
        self.call(Method::POST, path, Some(body), &[]).await
    }

    async fn put(&self, path: &str, body: &Value) -> Reply {
        self.call(Method::PUT, path, Some(body), &[]).await
    }

    async fn delete(&self, path: &str) -> Reply {
        self.call(Method::DELETE, path, None, &[]).await
    }

    /// A request with raw body bytes.
    async fn raw(&self, method: Method, path: &str, body: &[u8]) -> Reply {
        let auth = format!("Bearer {}", self.token);
        client::send(
            self.addr,
            false,
            method,
            &format!("{}{path}", self.base),
            &[
                ("authorization", auth.as_str()),
                ("content-type", "application/json"),
            ],
            Some(body.to_vec()),
        )
        .await
    }
}

/// Asserts a workplace error body (`{"status", "error", "detail"}`) and returns it.
#[track_caller]
fn expect_error(reply: &Reply, status: u16, error: &str) -> Value {
    let body = expect(reply, status);
    assert_eq!(body["status"], json!(status.to_string()), "{body}");
    assert_eq!(body["error"], json!(error), "{body}");
    assert!(
        !body["detail"].as_str().unwrap_or("").is_empty(),
        "a detail: {body}"
    );
    assert_eq!(reply.header("content-type"), Some("application/json"));
    body
}

fn request_id(reply: &Reply) -> String {
    reply
        .header("x-request-id")
        .expect("every response carries x-request-id")
        .to_owned()
}

/// The server, a workplace token for its tenant, and a catalog: site `lon`, floor `l3`,
/// neighbourhood `mkt`, desks `d1`, `d2` (capacity 1), parking space `p1`, room `boardroom`.
async fn setup() -> (TestServer, Wp) {
    setup_with(ServerConfig::default()).await
}

async fn setup_with(config: ServerConfig) -> (TestServer, Wp) {
    let server = TestServer::start_with(config).await;
    let tenant = server
        .store
        .tenant_by_name("acme")
        .await
        .expect("store")
        .expect("tenant");
    let token = server
        .store
        .issue_token(&tenant.id, "facilities", TokenScope::Workplace)
        .await
        .expect("token");
    let wp = Wp {
        addr: server.addr,
        base: "/t/acme/workplace/v1".into(),
        token: token.secret,
    };
    expect(
        &wp.put("/sites/lon", &json!({"name": "London Bridge"}))
            .await,
        201,
    );
    expect(
        &wp.put("/floors/l3", &json!({"site": "lon", "name": "Level 3"}))
            .await,
        201,
    );
    expect(
        &wp.put(
            "/neighbourhoods/mkt",
            &json!({"site": "lon", "floor": "l3", "name": "Marketing corner"}),
        )
        .await,
        201,
    );
    for (id, kind, name) in [
        ("d1", "desk", "Desk 3.01"),
        ("d2", "desk", "Desk 3.02"),
        ("p1", "parking", "Space 1"),
        ("boardroom", "room", "Boardroom"),
    ] {
        let floor = if kind == "parking" {
            Value::Null
        } else {
            json!("l3")
        };
        expect(
            &wp.put(
                &format!("/resources/{id}"),
                &json!({"kind": kind, "site": "lon", "floor": floor, "name": name, "capacity": 1}),
            )
            .await,
            201,
        );
    }
    (server, wp)
}

/// Replaces the policies with `rules` (default deny) and returns the new version.
async fn set_rules(wp: &Wp, rules: Value) -> u64 {
    let reply = wp
        .put("/policies", &json!({"rules": rules, "default": "deny"}))
        .await;
    let body = expect(&reply, 200);
    body["policies"]["version"].as_u64().expect("a version")
}

fn everyone_may_book_desks() -> Value {
    json!([{"id": "desks", "name": "Everyone may book desks", "effect": "allow",
            "resources": {"kinds": ["desk"]}}])
}

/// Provisions a user by SCIM POST and returns their id.
async fn provision(server: &TestServer, document: Value) -> String {
    let reply = server.client.post("/Users", &document).await;
    let body = expect(&reply, 201);
    body["id"].as_str().expect("an id").to_owned()
}

async fn book(wp: &Wp, person: &str, resource: &str, start: Value, end: Value) -> Reply {
    wp.post(
        "/bookings",
        &json!({"person": person, "resource": resource, "start": start, "end": end}),
    )
    .await
}

/// Books and returns the booking's id, asserting 201.
async fn booked(wp: &Wp, person: &str, resource: &str, start: i64, end: i64) -> String {
    let body = expect(
        &book(wp, person, resource, json!(start), json!(end)).await,
        201,
    );
    assert_eq!(body["status"], "booked", "{body}");
    body["id"].as_str().expect("a booking id").to_owned()
}

/// Every feed entry, following `next` pages of `limit`.
async fn whole_feed(wp: &Wp, limit: usize) -> Vec<Value> {
    let mut after = 0u64;
    let mut all = Vec::new();
    loop {
        let page = expect(
            &wp.get(&format!("/events?after={after}&limit={limit}"))
                .await,
            200,
        );
        let events = page["events"].as_array().expect("events").clone();
        let next = page["next"].as_u64().expect("next");
        if events.is_empty() {
            assert_eq!(next, after, "an empty page keeps the cursor");
            return all;
        }
        assert!(events.len() <= limit);
        all.extend(events);
        after = next;
    }
}

fn entra_patch(path: &str, value: Value) -> Value {
    json!({"schemas": [PATCH_OP], "Operations": [{"op": "Replace", "path": path, "value": value}]})
}

/// Replaces ids, times and request ids with placeholders, for snapshots.
fn redact(value: &mut Value) {
    const VARYING: [&str; 11] = [
        "booking",
        "id",
        "person",
        "start",
        "end",
        "startTime",
        "endTime",
        "createdAt",
        "at",
        "requestId",
        "since",
    ];
    match value {
        Value::Object(map) => {
            for (key, member) in map.iter_mut() {
                if VARYING.contains(&key.as_str()) && !member.is_object() {
                    *member = json!(format!("[{key}]"));
                } else {
                    redact(member);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivation_by_scim_in_entra_dialect_cancels_bookings_and_releases_assignments() {
    let (server, wp) = setup().await;
    set_rules(&wp, everyone_may_book_desks()).await;
    let alice = provision(&server, user("alice")).await;

    // Book with RFC 3339 times: served back as seconds and as strings.
    let (start, end) = tomorrow();
    let start_text = workplace_time(start);
    let reply = book(&wp, &alice, "d1", json!(start_text), json!(end)).await;
    let made = expect(&reply, 201);
    assert_eq!(made["start"], json!(start));
    assert_eq!(made["startTime"], json!(start_text));
    assert_eq!(made["status"], "booked");
    assert_eq!(reply.header("etag"), Some("W/\"1\""));
    let booking = made["id"].as_str().expect("id").to_owned();
    assert!(
        reply
            .header("location")
            .is_some_and(|l| l.ends_with(&format!("/t/acme/workplace/v1/bookings/{booking}"))),
        "{:?}",
        reply.header("location")
    );
    let assigned = wp
        .post("/assignments", &json!({"person": alice, "resource": "d2"}))
        .await;
    let assignment = expect(&assigned, 201);
    let assignment_id = assignment["id"].as_str().expect("id").to_owned();
    // Its Location answers with it.
    let location = assigned.header("location").expect("Location").to_owned();
    assert!(
        location.ends_with(&format!("/t/acme/workplace/v1/assignments/{assignment_id}")),
        "{location}"
    );
    assert_eq!(
        expect(&wp.get(&format!("/assignments/{assignment_id}")).await, 200),
        assignment
    );

    // The identity provider deactivates Alice, in Entra ID's dialect.
    let patch = server
        .client
        .patch(
            &format!("/Users/{alice}"),
            &entra_patch("active", json!("False")),
        )
        .await;
    expect(&patch, 200);
    let scim_request = request_id(&patch);

    let cancelled = expect(&wp.get(&format!("/bookings/{booking}")).await, 200);
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["by"], json!({"type": "system"}));
    assert!(
        !cancelled["reason"].as_str().unwrap_or("").is_empty(),
        "{cancelled}"
    );
    assert_eq!(cancelled["cause"]["trigger"], "deactivated");
    assert_eq!(cancelled["cause"]["requestId"], json!(scim_request));
    assert_eq!(cancelled["version"], 2);
    let mut snapshot = cancelled.clone();
    redact(&mut snapshot);
    insta::assert_json_snapshot!("booking_cancelled_by_deactivation", snapshot);

    // The assignment is released.
    let held = expect(&wp.get(&format!("/assignments?person={alice}")).await, 200);
    assert_eq!(held["assignments"], json!([]));
    let gone = expect(&wp.get(&format!("/assignments/{assignment_id}")).await, 404);
    assert_eq!(gone["error"], "notFound", "{gone}");

    // The feed: the booking, the SCIM change, then the cascade citing the SCIM request, in
    // order; the same with pages of one entry.
    let feed = whole_feed(&wp, 100).await;
    assert_eq!(feed, whole_feed(&wp, 1).await);
    let seqs: Vec<u64> = feed.iter().filter_map(|e| e["seq"].as_u64()).collect();
    assert!(
        seqs.windows(2).all(|w| w[0] + 1 == w[1]),
        "gap-free: {seqs:?}"
    );
    let position = |subject: &str, id: &str, op: &str| {
        feed.iter()
            .position(|e| e["subject"] == subject && e["id"] == id && e["op"] == op)
            .unwrap_or_else(|| panic!("no {subject} {id} {op} in {feed:#?}"))
    };
    let booked_at = position("Booking", &booking, "booked");
    let patched_at = position("User", &alice, "patched");
    let cancelled_at = position("Booking", &booking, "cancelled");
    let released_at = position("Assignment", &assignment_id, "released");
    assert!(booked_at < patched_at && patched_at < cancelled_at && patched_at < released_at);
    assert_eq!(feed[cancelled_at]["requestId"], json!(scim_request));
    assert_eq!(feed[cancelled_at]["actor"], "system");
    assert_eq!(feed[booked_at]["actor"], "facilities");
    assert_eq!(feed[cancelled_at]["detail"]["person"], json!(alice));

    // The audit log finds the same entries by request and by person.
    let by_request = expect(
        &wp.get(&format!("/audit?requestId={scim_request}")).await,
        200,
    );
    let ops: Vec<&str> = by_request["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["op"].as_str())
        .collect();
    assert!(
        ops.contains(&"patched") && ops.contains(&"cancelled") && ops.contains(&"released"),
        "{ops:?}"
    );
    let by_person = expect(
        &wp.get(&format!("/audit?person={alice}&subject=booking"))
            .await,
        200,
    );
    assert!(
        by_person["events"]
            .as_array()
            .expect("events")
            .iter()
            .all(|e| e["subject"] == "Booking")
    );

    // Alice may no longer book, and the answer says why.
    let refused = book(&wp, &alice, "d1", json!(start + DAY), json!(end + DAY)).await;
    let body = expect_error(&refused, 403, "refused");
    assert!(
        body["explanation"]
            .as_str()
            .unwrap_or("")
            .starts_with("denied")
    );
    assert_eq!(body["decision"]["allowed"], false);

    // She no longer counts as a licensed seat.
    let report = expect(&wp.get("/report").await, 200);
    assert_eq!(report["seats"]["active"], 0);
    assert_eq!(report["seats"]["inactive"], 1);
    assert_eq!(report["bookings"]["cancelled"], 1);
    assert_eq!(report["bookings"]["booked"], 0);
}

/// The RFC 3339 form the API serves.
fn workplace_time(seconds: i64) -> String {
    scim_schema::DateTime {
        unix_seconds: seconds,
        nanos: 0,
    }
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_by_scim_cancels_bookings() {
    let (server, wp) = setup().await;
    set_rules(&wp, everyone_may_book_desks()).await;
    let bob = provision(&server, user("bob")).await;
    let (start, end) = tomorrow();
    let first = booked(&wp, &bob, "d1", start, end).await;
    let second = booked(&wp, &bob, "d2", start + DAY, end + DAY).await;

    let deleted = server.client.delete(&format!("/Users/{bob}")).await;
    expect(&deleted, 204);
    let scim_request = request_id(&deleted);

    for id in [&first, &second] {
        let booking = expect(&wp.get(&format!("/bookings/{id}")).await, 200);
        assert_eq!(booking["status"], "cancelled", "{booking}");
        assert_eq!(booking["cause"]["trigger"], "deleted");
        assert_eq!(booking["cause"]["requestId"], json!(scim_request));
    }
    let listed = expect(&wp.get("/bookings?status=cancelled").await, 200);
    assert_eq!(listed["bookings"].as_array().map(Vec::len), Some(2));
    let live = expect(&wp.get("/bookings?status=booked").await, 200);
    assert_eq!(live["bookings"], json!([]));
    let report = expect(&wp.get("/report").await, 200);
    assert_eq!(report["seats"]["former"], 1);
    assert_eq!(report["seats"]["active"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn department_change_cancels_what_a_rule_no_longer_allows() {
    let (server, wp) = setup().await;
    set_rules(
        &wp,
        json!([{
            "id": "marketing-desks",
            "name": "Marketing may book desks in the Marketing corner",
            "effect": "allow",
            "people": format!("{ENTERPRISE}:department eq \"Marketing\""),
            "resources": {"kinds": ["desk"]}
        }]),
    )
    .await;
    let mut document = user("carol");
    document["schemas"] = json!([USER, ENTERPRISE]);
    document[ENTERPRISE] = json!({"department": "Marketing"});
    let carol = provision(&server, document).await;
    let (start, end) = tomorrow();
    let booking = booked(&wp, &carol, "d1", start, end).await;

    // Why may Carol book the desk?
    let why = expect(
        &wp.post(
            "/evaluate",
            &json!({"person": carol, "resource": "d1", "start": start + DAY, "end": end + DAY}),
        )
        .await,
        200,
    );
    assert_eq!(why["allowed"], true);
    assert!(
        why["explanation"]
            .as_str()
            .unwrap_or("")
            .contains("marketing-desks"),
        "{why}"
    );

    let patch = server
        .client
        .patch(
            &format!("/Users/{carol}"),
            &entra_patch(&format!("{ENTERPRISE}:department"), json!("Sales")),
        )
        .await;
    expect(&patch, 200);
    let cancelled = expect(&wp.get(&format!("/bookings/{booking}")).await, 200);
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["cause"]["trigger"], "attributesChanged");
    assert_eq!(cancelled["cause"]["rule"], "marketing-desks");
    assert_eq!(cancelled["cause"]["requestId"], json!(request_id(&patch)));

    // Why not now?
    let why_not = expect(
        &wp.post(
            "/evaluate",
            &json!({"person": carol, "resource": "d1", "start": start + DAY, "end": end + DAY}),
        )
        .await,
        200,
    );
    assert_eq!(why_not["allowed"], false);
    assert!(
        why_not["explanation"]
            .as_str()
            .unwrap_or("")
            .starts_with("denied"),
        "{why_not}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removal_from_a_group_by_scim_patch_cancels_a_parking_booking() {
    let (server, wp) = setup().await;
    set_rules(
        &wp,
        json!([{
            "id": "parking",
            "name": "Parking badge holders may park",
            "effect": "allow",
            "people": "groups[display eq \"Parking\"]",
            "resources": {"kinds": ["parking"]},
            "limits": {"maxDaysAhead": 7}
        }]),
    )
    .await;
    let dave = provision(&server, user("dave")).await;
    let created = server
        .client
        .post("/Groups", &group("Parking", &[&dave]))
        .await;
    let parking = expect(&created, 201)["id"]
        .as_str()
        .expect("group id")
        .to_owned();
    let (start, end) = tomorrow();
    let booking = booked(&wp, &dave, "p1", start, end).await;

    // Entra ID removes a member with a value list.
    let removal = server
        .client
        .patch(
            &format!("/Groups/{parking}"),
            &json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "Remove", "path": "members", "value": [{"value": dave}]}
            ]}),
        )
        .await;
    assert!(
        removal.status == 204 || removal.status == 200,
        "{removal:?}"
    );
    let cancelled = expect(&wp.get(&format!("/bookings/{booking}")).await, 200);
    assert_eq!(cancelled["status"], "cancelled", "{cancelled}");
    assert_eq!(cancelled["cause"]["trigger"], "attributesChanged");
    assert_eq!(cancelled["cause"]["rule"], "parking");
    assert_eq!(cancelled["cause"]["requestId"], json!(request_id(&removal)));
    let feed = whole_feed(&wp, 100).await;
    let group_change = feed
        .iter()
        .position(|e| e["subject"] == "Group" && e["op"] == "patched")
        .expect("the group's change is on the feed");
    let cascade = feed
        .iter()
        .position(|e| {
            e["subject"] == "Booking" && e["id"] == json!(booking) && e["op"] == "cancelled"
        })
        .expect("the cancellation is on the feed");
    assert!(group_change < cascade);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policy_change_preview_then_apply() {
    let (server, wp) = setup().await;
    let version = set_rules(&wp, everyone_may_book_desks()).await;
    let erin = provision(&server, user("erin")).await;
    let frank = provision(&server, user("frank")).await;
    let (start, end) = tomorrow();
    let bookings = [
        booked(&wp, &erin, "d1", start, end).await,
        booked(&wp, &erin, "d1", start + DAY, end + DAY).await,
        booked(&wp, &frank, "d2", start, end).await,
    ];

    // Only the boardroom from now on: every desk booking would go.
    let new_policies = json!({
        "rules": [{"id": "rooms", "name": "Everyone may book rooms", "effect": "allow",
                   "resources": {"kinds": ["room"]}}],
        "default": "deny"
    });
    let preview = expect(&wp.post("/policies/preview", &new_policies).await, 200);
    assert_eq!(
        preview["summary"],
        "this rule change would cancel 3 future bookings of 2 people"
    );
    assert_eq!(preview["cancelled"].as_array().map(Vec::len), Some(3));
    let flag_preview = expect(
        &wp.post(
            "/policies/preview",
            &json!({"rules": new_policies["rules"], "default": "deny",
                    "settings": {"onLostEntitlement": "flag"}}),
        )
        .await,
        200,
    );
    assert_eq!(
        flag_preview["summary"],
        "this rule change would flag 3 future bookings of 2 people"
    );
    // A preview changes nothing.
    let live = expect(&wp.get("/bookings?status=booked").await, 200);
    assert_eq!(live["bookings"].as_array().map(Vec::len), Some(3));
    let mut snapshot = preview.clone();
    redact(&mut snapshot);
    // Lost bookings come by person, and person ids are random: sort for a stable snapshot.
    if let Some(lost) = snapshot["cancelled"].as_array_mut() {
        lost.sort_by_key(|l| (l["reason"].to_string(), l["resource"].to_string()));
    }
    insta::assert_json_snapshot!("policy_preview", snapshot);

    // A stale If-Match is refused; the current one applies the change.
    let stale = wp
        .call(
            Method::PUT,
            "/policies",
            Some(&new_policies),
            &[("if-match", &format!("W/\"{}\"", version + 5))],
        )
        .await;
    expect_error(&stale, 412, "preconditionFailed");
    let applied = wp
        .call(
            Method::PUT,
            "/policies",
            Some(&new_policies),
            &[("if-match", &format!("W/\"{version}\""))],
        )
        .await;
    let body = expect(&applied, 200);
    assert_eq!(
        body["applied"]["summary"],
        "this rule change would cancel 3 future bookings of 2 people"
    );
    let new_version = body["policies"]["version"].as_u64().expect("version");
    assert_eq!(new_version, version + 1);
    assert_eq!(
        applied.header("etag").map(str::to_owned),
        Some(format!("W/\"{new_version}\""))
    );
    for id in &bookings {
        let booking = expect(&wp.get(&format!("/bookings/{id}")).await, 200);
        assert_eq!(booking["status"], "cancelled");
        assert_eq!(booking["cause"]["trigger"], "policyChanged");
        assert_eq!(booking["cause"]["requestId"], json!(request_id(&applied)));
    }
    let served = expect(&wp.get("/policies").await, 200);
    assert_eq!(served["rules"].as_array().map(Vec::len), Some(1));
    assert_eq!(served["rules"][0]["id"], "rooms");
    assert_eq!(served["rules"][0]["resources"], json!({"kinds": ["room"]}));
    assert_eq!(served["default"], "deny");
    assert_eq!(served["utcOffsetSeconds"], 0);
    assert_eq!(served["settings"]["onLostEntitlement"], "cancel");
    assert_eq!(served["version"], json!(new_version));

    // Rule by rule: a read-modify-write of the set.
    let rule = json!({"name": "Everyone may park", "effect": "allow",
                      "resources": {"kinds": ["parking"]}});
    let created = wp.put("/policies/rules/parking", &rule).await;
    let body = expect(&created, 201);
    assert_eq!(body["rule"]["id"], "parking");
    assert_eq!(body["version"], json!(new_version + 1));
    let fetched = wp.get("/policies/rules/parking").await;
    assert_eq!(expect(&fetched, 200)["name"], "Everyone may park");
    let renamed = wp
        .put(
            "/policies/rules/parking",
            &json!({"id": "parking", "name": "Parking for all", "effect": "allow",
                    "resources": {"kinds": ["parking"]}}),
        )
        .await;
    expect(&renamed, 200);
    let mismatched = wp
        .put(
            "/policies/rules/parking",
            &json!({"id": "other", "name": "x", "effect": "allow"}),
        )
        .await;
    expect_error(&mismatched, 400, "mutability");
    let all = expect(&wp.get("/policies").await, 200);
    assert_eq!(all["rules"].as_array().map(Vec::len), Some(2));
    expect(&wp.delete("/policies/rules/parking").await, 200);
    expect_error(&wp.get("/policies/rules/parking").await, 404, "notFound");
    expect_error(&wp.delete("/policies/rules/parking").await, 404, "notFound");

    // An invalid rule changes nothing and says where.
    let invalid = wp
        .put(
            "/policies",
            &json!({"rules": [{"id": "x", "name": "x", "effect": "allow", "people": "userName eq"}],
                    "default": "deny"}),
        )
        .await;
    expect(&invalid, 400);
    let unchanged = expect(&wp.get("/policies").await, 200);
    assert_eq!(unchanged["version"], json!(new_version + 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_in_and_cancel_by_an_administrator() {
    let (server, wp) = setup().await;
    set_rules(&wp, everyone_may_book_desks()).await;
    let gina = provision(&server, user("gina")).await;
    let soon = now() + 60;
    let booking = booked(&wp, &gina, "d1", soon, soon + 3600).await;
    let checked_in = expect(
        &wp.call(
            Method::POST,
            &format!("/bookings/{booking}/check-in"),
            None,
            &[],
        )
        .await,
        200,
    );
    assert_eq!(checked_in["status"], "checkedIn");

    let (start, end) = tomorrow();
    let later = booked(&wp, &gina, "d2", start, end).await;
    let cancelled = expect(
        &wp.post(
            &format!("/bookings/{later}/cancel"),
            &json!({"reason": "office closed for maintenance"}),
        )
        .await,
        200,
    );
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(
        cancelled["by"],
        json!({"type": "administrator", "id": "facilities"})
    );
    assert_eq!(cancelled["reason"], "office closed for maintenance");
    // Cancelling again is harmless; checking in a cancelled booking is a conflict.
    let again = wp
        .call(
            Method::POST,
            &format!("/bookings/{later}/cancel"),
            None,
            &[],
        )
        .await;
    assert_eq!(expect(&again, 200)["version"], cancelled["version"]);
    expect_error(
        &wp.call(
            Method::POST,
            &format!("/bookings/{later}/check-in"),
            None,
            &[],
        )
        .await,
        409,
        "conflict",
    );
    let mine = expect(
        &wp.get(&format!("/bookings?person={gina}&limit=1")).await,
        200,
    );
    assert_eq!(mine["bookings"].as_array().map(Vec::len), Some(1));
    let next = mine["next"]
        .as_str()
        .expect("a full page has a next cursor");
    let rest = expect(
        &wp.get(&format!("/bookings?person={gina}&after={next}"))
            .await,
        200,
    );
    assert_eq!(rest["bookings"][0]["id"], json!(later));
    assert_eq!(rest["next"], Value::Null);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_entries_have_versions_and_preconditions() {
    let (_server, wp) = setup().await;
    let site = wp.get("/sites/lon").await;
    assert_eq!(expect(&site, 200)["name"], "London Bridge");
    assert_eq!(site.header("etag"), Some("W/\"1\""));
    let unchanged = wp
        .call(
            Method::GET,
            "/sites/lon",
            None,
            &[("if-none-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(unchanged.status, 304);

    let renamed = wp
        .call(
            Method::PUT,
            "/sites/lon",
            Some(&json!({"name": "London"})),
            &[("if-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(expect(&renamed, 200)["version"], 2);
    let stale = wp
        .call(
            Method::PUT,
            "/sites/lon",
            Some(&json!({"name": "Londres"})),
            &[("if-match", "W/\"1\"")],
        )
        .await;
    expect_error(&stale, 412, "preconditionFailed");
    let create_only = wp
        .call(
            Method::PUT,
            "/sites/lon",
            Some(&json!({"name": "Again"})),
            &[("if-none-match", "*")],
        )
        .await;
    assert!(
        create_only.status == 412 || create_only.status == 409,
        "{create_only:?}"
    );
    let sites = expect(&wp.get("/sites").await, 200);
    assert_eq!(sites["sites"][0]["name"], "London");
    let resources = expect(&wp.get("/resources").await, 200);
    assert_eq!(resources["resources"].as_array().map(Vec::len), Some(4));

    // The catalog stays consistent: a resource at an unknown site, a site still in use.
    let orphan = wp
        .put(
            "/resources/x",
            &json!({"kind": "desk", "site": "nowhere", "name": "X", "capacity": 1}),
        )
        .await;
    assert_eq!(orphan.status, 400, "{orphan:?}");
    expect_error(&wp.delete("/sites/lon").await, 409, "conflict");
    let wrong_id = wp
        .put("/sites/par", &json!({"id": "lon", "name": "Paris"}))
        .await;
    expect(&wrong_id, 400);

    // Deleting with a stale tag is refused; with the current one it works.
    expect(&wp.put("/sites/par", &json!({"name": "Paris"})).await, 201);
    let stale_delete = wp
        .call(
            Method::DELETE,
            "/sites/par",
            None,
            &[("if-match", "W/\"7\"")],
        )
        .await;
    expect_error(&stale_delete, 412, "preconditionFailed");
    let deleted = wp
        .call(
            Method::DELETE,
            "/sites/par",
            None,
            &[("if-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(deleted.status, 204);
    expect_error(&wp.get("/sites/par").await, 404, "notFound");
}

/// docs/workplace-api.md promises that a member the API does not know is a 400 (a typo such as
/// `strat` must not be silently dropped), and a `PUT` is 201 only when it creates: replaying
/// the same `PUT` (or sending back what `GET` served, `version` included) is a 200 that changes
/// nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_put_refuses_unknown_members_and_a_replay_is_200() {
    let (_server, wp) = setup().await;
    let typo = expect_error(
        &wp.put("/sites/par", &json!({"name": "Paris", "strat": 1}))
            .await,
        400,
        "invalidValue",
    );
    assert!(
        typo["detail"].as_str().unwrap().contains("\"strat\""),
        "the detail names the member: {typo}"
    );
    expect_error(&wp.get("/sites/par").await, 404, "notFound");
    let desk = json!({"kind": "desk", "site": "lon", "name": "X", "capacity": 1, "colour": "red"});
    let typo = expect_error(&wp.put("/resources/x", &desk).await, 400, "invalidValue");
    assert!(
        typo["detail"].as_str().unwrap().contains("colour"),
        "{typo}"
    );

    let created = wp.put("/sites/par", &json!({"name": "Paris"})).await;
    assert_eq!(expect(&created, 201)["version"], 1);
    let replayed = wp.put("/sites/par", &json!({"name": "Paris"})).await;
    assert_eq!(
        expect(&replayed, 200)["version"],
        1,
        "a replay changes nothing"
    );
    assert_eq!(replayed.header("etag"), Some("W/\"1\""));
    let served = expect(&wp.get("/sites/par").await, 200);
    let sent_back = wp.put("/sites/par", &served).await;
    assert_eq!(expect(&sent_back, 200)["version"], 1, "{served}");
    let renamed = wp.put("/sites/par", &json!({"name": "Paris Nord"})).await;
    assert_eq!(expect(&renamed, 200)["version"], 2);
}

/// A body in a media type other than JSON is 415 Unsupported Media Type (RFC 9110 section
/// 15.5.16), naming the types accepted, on the workplace API as on SCIM; a charset parameter is
/// fine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_in_another_media_type_is_415() {
    let (server, wp) = setup().await;
    let auth = format!("Bearer {}", wp.token);
    let put = |content_type: &'static str| {
        let auth = auth.clone();
        async move {
            client::send(
                server.addr,
                false,
                Method::PUT,
                "/t/acme/workplace/v1/sites/par",
                &[("authorization", &auth), ("content-type", content_type)],
                Some(br#"{"name": "Paris"}"#.to_vec()),
            )
            .await
        }
    };
    let refused = expect_error(&put("text/plain").await, 415, "unsupportedMediaType");
    let detail = refused["detail"].as_str().unwrap();
    assert!(
        detail.contains("text/plain")
            && detail.contains("application/scim+json")
            && detail.contains("application/json"),
        "{detail}"
    );
    expect(&put("application/json; charset=utf-8").await, 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scim_and_workplace_tokens_do_not_cross() {
    let (server, wp) = setup().await;
    // A SCIM token on the workplace API: 403, in the workplace's error format.
    let scim_there = client::send(
        server.addr,
        false,
        Method::GET,
        "/t/acme/workplace/v1/sites",
        &[("authorization", &format!("Bearer {}", server.client.token))],
        None,
    )
    .await;
    let body = expect_error(&scim_there, 403, "forbidden");
    assert!(
        body["detail"].as_str().unwrap_or("").contains("workplace"),
        "{body}"
    );
    // A workplace token on the SCIM endpoints: 403, as a SCIM error.
    let workplace_there = client::send(
        server.addr,
        false,
        Method::GET,
        "/t/acme/scim/v2/Users",
        &[("authorization", &format!("Bearer {}", wp.token))],
        None,
    )
    .await;
    common::assert_error(&workplace_there, 403, None);
    // No token, or a token unknown: 401 with the challenge, in the workplace's format.
    let anonymous = client::send(
        server.addr,
        false,
        Method::GET,
        "/t/acme/workplace/v1/sites",
        &[],
        None,
    )
    .await;
    expect_error(&anonymous, 401, "unauthorized");
    assert_eq!(
        anonymous.header("www-authenticate"),
        Some("Bearer realm=\"scimd\"")
    );
    let stranger = Wp {
        token: "scimd_not-a-token".into(),
        ..wp.clone()
    };
    expect_error(&stranger.get("/sites").await, 401, "unauthorized");
    // The workplace token of one tenant is no key to another's.
    server.other_tenant("globex").await;
    let elsewhere = Wp {
        base: "/t/globex/workplace/v1".into(),
        ..wp.clone()
    };
    expect_error(&elsewhere.get("/sites").await, 401, "unauthorized");
    // There is no endpoint that writes people: they are the identity provider's.
    expect_error(&wp.get("/people").await, 404, "notFound");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_never_a_500() {
    // The server's body limit applies here as on the SCIM endpoints.
    let (server, wp) = setup_with(ServerConfig {
        limits: Limits {
            max_body_bytes: 4096,
            ..Limits::default()
        },
        ..ServerConfig::default()
    })
    .await;
    set_rules(&wp, everyone_may_book_desks()).await;
    let hana = provision(&server, user("hana")).await;
    let (start, end) = tomorrow();

    let bad_json = wp.raw(Method::POST, "/bookings", b"{\"person\": ").await;
    let body = expect_error(&bad_json, 400, "invalidSyntax");
    assert!(
        body["detail"].as_str().unwrap_or("").contains("JSON"),
        "{body}"
    );
    let cases = [
        (json!([1, 2]), "must be a JSON object"),
        (
            json!({"person": 7, "resource": "d1", "start": start, "end": end}),
            "\"person\" must be a string id",
        ),
        (
            json!({"person": hana, "resource": "d1", "start": "tomorrow", "end": end}),
            "\"start\"",
        ),
        (
            json!({"person": hana, "resource": "d1", "start": 1e30, "end": end}),
            "\"start\"",
        ),
        (
            json!({"person": hana, "resource": "d1", "start": start, "end": u64::MAX}),
            "\"end\"",
        ),
        (
            json!({"person": hana, "resource": "d1", "start": end, "end": start}),
            "must be after",
        ),
        (
            json!({"person": hana, "resource": "d1", "start": start, "end": end, "seat": 3}),
            "unknown member \"seat\"",
        ),
        (
            json!({"person": hana, "resource": "d1", "end": end}),
            "\"start\" is required",
        ),
    ];
    for (body, expected) in cases {
        let reply = wp.post("/bookings", &body).await;
        assert_eq!(reply.status, 400, "{body}: {reply:?}");
        let error = reply.json();
        assert!(
            error["detail"].as_str().unwrap_or("").contains(expected),
            "{body}: {error}"
        );
    }
    let huge = wp
        .raw(
            Method::POST,
            "/bookings",
            format!(
                "{{\"person\": \"{hana}\", \"resource\": \"d1\", \"start\": 1{}, \"end\": 2}}",
                "0".repeat(400)
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(huge.status, 400, "{huge:?}");
    let too_large = wp
        .raw(
            Method::PUT,
            "/sites/big",
            format!("{{\"name\": \"{}\"}}", "x".repeat(5000)).as_bytes(),
        )
        .await;
    expect_error(&too_large, 413, "payloadTooLarge");
    expect_error(&wp.get("/bookings/b-nope").await, 404, "notFound");
    expect_error(&wp.get("/bookings/%ZZ").await, 400, "invalidValue");
    expect_error(&wp.get("/bookings?status=lost").await, 400, "invalidValue");
    expect_error(&wp.get("/bookings?limit=0").await, 400, "invalidValue");
    expect_error(&wp.get("/events?after=-1").await, 400, "invalidValue");
    expect_error(&wp.get("/audit?subject=Planet").await, 400, "invalidValue");
    expect_error(&wp.get("/audit?since=yesterday").await, 400, "invalidValue");
    let huge_limit = expect(&wp.get("/events?limit=99999999999999999999999").await, 200);
    assert!(huge_limit["events"].is_array());
    expect_error(
        &book(&wp, "no-such-person", "d1", json!(start), json!(end)).await,
        404,
        "notFound",
    );
    expect_error(
        &book(&wp, &hana, "no-such-desk", json!(start), json!(end)).await,
        404,
        "notFound",
    );
    let not_allowed = wp.delete("/bookings").await;
    expect_error(&not_allowed, 405, "methodNotAllowed");
    assert_eq!(not_allowed.header("allow"), Some("GET, POST"));

    // Full: the desk is taken over an overlapping interval.
    booked(&wp, &hana, "d1", start, end).await;
    let ivan = provision(&server, user("ivan")).await;
    let full = book(&wp, &ivan, "d1", json!(start + 600), json!(end + 600)).await;
    let body = expect_error(&full, 409, "full");
    assert_eq!(body["capacity"], 1);

    // Refused: no rule allows parking; the answer explains.
    let refused = book(&wp, &ivan, "p1", json!(start), json!(end)).await;
    let mut body = expect_error(&refused, 403, "refused");
    assert_eq!(body["decision"]["allowed"], false);
    assert!(
        body["explanation"]
            .as_str()
            .unwrap_or("")
            .starts_with("denied\n- ")
    );
    redact(&mut body);
    insta::assert_json_snapshot!("booking_refused", body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flag_mode_a_lost_entitlement_flags_the_booking_instead() {
    let (server, wp) = setup().await;
    let reply = wp
        .put(
            "/policies",
            &json!({
                "rules": [{"id": "titled", "name": "Engineers may book desks", "effect": "allow",
                           "people": "title eq \"Engineer\"", "resources": {"kinds": ["desk"]}}],
                "default": "deny",
                "settings": {"onLostEntitlement": "flag"}
            }),
        )
        .await;
    expect(&reply, 200);
    let mut document = user("jo");
    document["title"] = json!("Engineer");
    let jo = provision(&server, document).await;
    let (start, end) = tomorrow();
    let booking = booked(&wp, &jo, "d1", start, end).await;
    let patch = server
        .client
        .patch(
            &format!("/Users/{jo}"),
            &entra_patch("title", json!("Manager")),
        )
        .await;
    expect(&patch, 200);

    let kept = expect(&wp.get(&format!("/bookings/{booking}")).await, 200);
    assert_eq!(kept["status"], "booked", "{kept}");
    assert_eq!(kept["flag"]["cause"]["rule"], "titled");
    assert_eq!(
        kept["flag"]["cause"]["requestId"],
        json!(request_id(&patch))
    );
    let flagged = expect(&wp.get("/bookings?flagged=true").await, 200);
    assert_eq!(flagged["bookings"][0]["id"], json!(booking));
    let report = expect(&wp.get("/report").await, 200);
    assert_eq!(report["flagged"], 1);
    // Settings left out of a later PUT are kept.
    set_rules(&wp, everyone_may_book_desks()).await;
    let policies = expect(&wp.get("/policies").await, 200);
    assert_eq!(policies["settings"]["onLostEntitlement"], "flag");
}
