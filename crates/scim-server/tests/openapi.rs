//! The workplace API's OpenAPI 3.1 description (`openapi/workplace.json`): served without a
//! token at `/t/{tenant}/workplace/v1/openapi.json`, and true to the router: every path and
//! method it documents is served, every route the router serves is documented, and every
//! documented operation's answer to a real request is one of its documented statuses.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::TestServer;
use common::client::send;
use http::Method;
use scim_store::{Store, TokenScope};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The routes `workplace::endpoint_of` serves, as templates. A route added to the router
/// without its description fails `every_route_is_documented`.
const ROUTES: &[&str] = &[
    "/sites",
    "/sites/{id}",
    "/floors",
    "/floors/{id}",
    "/neighbourhoods",
    "/neighbourhoods/{id}",
    "/resources",
    "/resources/{id}",
    "/policies",
    "/policies/preview",
    "/policies/rules/{id}",
    "/evaluate",
    "/bookings",
    "/bookings/{id}",
    "/bookings/{id}/cancel",
    "/bookings/{id}/check-in",
    "/assignments",
    "/assignments/{id}",
    "/events",
    "/audit",
    "/report",
];

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

fn description() -> Value {
    serde_json::from_str(scim_server::WORKPLACE_OPENAPI).expect("the description is JSON")
}

#[test]
fn every_route_is_documented_and_nothing_else() {
    let doc = description();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: BTreeSet<&str> = doc["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let served: BTreeSet<&str> = ROUTES.iter().copied().collect();
    assert_eq!(documented, served);
    // Every operation has an id, a summary and at least one success response; every $ref
    // resolves.
    let mut ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            let id = op["operationId"]
                .as_str()
                .unwrap_or_else(|| panic!("{method} {path}: operationId"));
            assert!(ids.insert(id.to_owned()), "{id} twice");
            assert!(op["summary"].is_string(), "{method} {path}: summary");
            let responses = op["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path}: no success response"
            );
        }
    }
    let text = scim_server::WORKPLACE_OPENAPI;
    for (at, _) in text.match_indices("\"$ref\"") {
        let rest = &text[at..];
        let target = rest.split('"').nth(3).unwrap();
        let pointer = target.strip_prefix('#').expect("local $ref");
        assert!(doc.pointer(pointer).is_some(), "unresolved $ref {target}");
    }
}

/// What the router answers a path it does not serve: 404 with this detail.
fn unrouted(reply: &common::client::Reply) -> bool {
    reply.status == 404 && String::from_utf8_lossy(&reply.body).contains("no workplace endpoint")
}

#[tokio::test]
async fn served_without_a_token_and_true_to_the_server() {
    let server = TestServer::start().await;
    let tenant = server.store.tenant_by_name("acme").await.unwrap().unwrap();
    let token = server
        .store
        .issue_token(&tenant.id, "facilities", TokenScope::Workplace)
        .await
        .unwrap()
        .secret;

    // No token, any tenant name (existing or not: the answer is the same), GET or HEAD.
    for tenant in ["acme", "no-such-tenant"] {
        let path = format!("/t/{tenant}/workplace/v1/openapi.json");
        let reply = send(server.addr, false, Method::GET, &path, &[], None).await;
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let served = reply.json();
        assert_eq!(served["paths"], description()["paths"]);
        let url = served["servers"][0]["url"].as_str().unwrap();
        assert!(url.ends_with(&format!("/t/{tenant}/workplace/v1")), "{url}");
        let head = send(server.addr, false, Method::HEAD, &path, &[], None).await;
        assert_eq!(head.status, 200);
        let post = send(
            server.addr,
            false,
            Method::POST,
            &path,
            &[],
            Some(b"{}".to_vec()),
        )
        .await;
        assert_eq!(post.status, 405);
    }
    // The SCIM service has no such document, and still wants a token.
    let scim = send(
        server.addr,
        false,
        Method::GET,
        "/t/acme/scim/v2/openapi.json",
        &[],
        None,
    )
    .await;
    assert_eq!(scim.status, 401);

    // Each documented operation, asked with a token and an empty JSON body: the router serves
    // it (no "no endpoint", no 405), and the status is one the description lists.
    let doc = description();
    let auth = format!("Bearer {token}");
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            let concrete = path.replace("{id}", "openapi-probe");
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = matches!(method, Method::PUT | Method::POST | Method::PATCH)
                .then(|| serde_json::to_vec(&json!({})).unwrap());
            let reply = send(
                server.addr,
                false,
                method.clone(),
                &format!("/t/acme/workplace/v1{concrete}"),
                &[
                    ("authorization", &auth),
                    ("content-type", "application/json"),
                ],
                body,
            )
            .await;
            assert!(!unrouted(&reply), "{method} {path} is not served");
            assert_ne!(reply.status, 405, "{method} {path}: method not allowed");
            let status = reply.status.to_string();
            let listed = op["responses"].as_object().unwrap();
            assert!(
                listed.contains_key(&status) || listed.contains_key("default"),
                "{method} {path} answered {status}, which the description does not list ({:?}): {}",
                listed.keys().collect::<Vec<_>>(),
                String::from_utf8_lossy(&reply.body)
            );
        }
    }
}
