//! The admin API's OpenAPI 3.1 description (`openapi/admin.json`): served without a token at
//! `/t/{tenant}/admin/v1/openapi.json`, and true to the router: every path and method it
//! documents is served, every route the router serves is documented, other methods are 405
//! with the documented ones in `Allow`, every documented operation's answer to a real request
//! is one of its documented statuses, and the bodies the server answers match the schemas
//! (checked here by a small validator of the JSON Schema the description uses; schemathesis
//! checks the rest in `tests/api-fuzz/run.sh`). Also the scope matrix of `docs/admin-api.md`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::TestServer;
use common::client::{Reply, send};
use http::Method;
use scim_store::{AdminStore, Store, TokenScope};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::time::Duration;

/// The routes `admin::Endpoint` serves, as templates. A route added to the router without its
/// description fails `every_route_is_documented_and_nothing_else`.
const ROUTES: &[&str] = &[
    "/requests",
    "/requests/export",
    "/requests/{id}",
    "/health",
    "/tokens",
    "/tokens/{id}",
    "/schemas",
];

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

/// The operations that read a request body: they also answer 413 and 415.
const WITH_BODY: &[(&str, &str)] = &[("post", "/tokens"), ("put", "/schemas")];

fn description() -> Value {
    serde_json::from_str(scim_server::ADMIN_OPENAPI).expect("the description is JSON")
}

/// Follows a local `$ref` (`#/components/...`), repeatedly.
fn resolve<'a>(doc: &'a Value, mut node: &'a Value) -> &'a Value {
    while let Some(target) = node.get("$ref").and_then(Value::as_str) {
        let pointer = target.strip_prefix('#').expect("local $ref");
        node = doc
            .pointer(pointer)
            .unwrap_or_else(|| panic!("unresolved $ref {target}"));
    }
    node
}

fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Checks `value` against `schema`, for the keywords the description uses (`$ref` with
/// siblings, `type`, `enum`, `const`, `oneOf`, `properties`, `required`,
/// `additionalProperties: false`, `items`, `minimum`, `maximum`, `minLength`, `maxLength`);
/// `pattern` and `format` are left to schemathesis.
fn conforms(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(target) = schema.get("$ref") {
        conforms(doc, resolve(doc, &json!({"$ref": target})), value, at)?;
    }
    let actual = type_name(value);
    if let Some(types) = schema.get("type") {
        let allowed: Vec<&str> = match types {
            Value::String(t) => vec![t.as_str()],
            Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
            other => panic!("{at}: type {other}"),
        };
        let ok = allowed
            .iter()
            .any(|t| *t == actual || (*t == "number" && actual == "integer"));
        if !ok {
            return Err(format!("{at}: {actual} where the schema says {types}"));
        }
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        if !values.contains(value) {
            return Err(format!("{at}: {value} is not one of {values:?}"));
        }
    }
    if let Some(constant) = schema.get("const") {
        if constant != value {
            return Err(format!("{at}: {value} is not {constant}"));
        }
    }
    if let Some(options) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = options
            .iter()
            .filter(|option| conforms(doc, option, value, at).is_ok())
            .count();
        if matching != 1 {
            return Err(format!("{at}: {value} matches {matching} of oneOf"));
        }
    }
    if let Some(n) = value.as_f64() {
        if let Some(min) = schema.get("minimum").and_then(Value::as_f64) {
            if n < min {
                return Err(format!("{at}: {n} < minimum {min}"));
            }
        }
        if let Some(max) = schema.get("maximum").and_then(Value::as_f64) {
            if n > max {
                return Err(format!("{at}: {n} > maximum {max}"));
            }
        }
    }
    if let Some(text) = value.as_str() {
        let chars = text.chars().count() as u64;
        if schema
            .get("minLength")
            .and_then(Value::as_u64)
            .is_some_and(|min| chars < min)
            || schema
                .get("maxLength")
                .and_then(Value::as_u64)
                .is_some_and(|max| chars > max)
        {
            return Err(format!("{at}: {text:?} is out of the length bounds"));
        }
    }
    if let Some(object) = value.as_object() {
        let properties = schema.get("properties").and_then(Value::as_object);
        for name in schema
            .get("required")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let name = name.as_str().unwrap();
            if !object.contains_key(name) {
                return Err(format!("{at}: required member {name:?} is missing"));
            }
        }
        for (name, member) in object {
            match properties.and_then(|p| p.get(name)) {
                Some(property) => conforms(doc, property, member, &format!("{at}.{name}"))?,
                None if schema.get("additionalProperties") == Some(&json!(false)) => {
                    return Err(format!("{at}: member {name:?} is not in the schema"));
                }
                None => {}
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            conforms(doc, items, item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// Asserts that `reply` is one of `op`'s documented answers: its status listed (or covered by
/// `default`), its content type the documented one, its body of the documented schema, and the
/// headers the description requires present. Returns the body as JSON (`null` if empty).
#[track_caller]
fn documented(doc: &Value, what: &str, op: &Value, reply: &Reply) -> Value {
    let body_text = String::from_utf8_lossy(&reply.body);
    let listed = op["responses"].as_object().unwrap();
    let status = reply.status.to_string();
    let response = listed
        .get(&status)
        .or_else(|| listed.get("default"))
        .unwrap_or_else(|| {
            panic!(
                "{what} answered {status}, which the description does not list ({:?}): {body_text}",
                listed.keys().collect::<Vec<_>>()
            )
        });
    let response = resolve(doc, response);
    for (name, header) in response["headers"].as_object().into_iter().flatten() {
        if resolve(doc, header)["required"] == json!(true) {
            assert!(
                reply.header(name).is_some(),
                "{what} {status}: no {name} header"
            );
        }
    }
    let Some(content) = response.get("content").and_then(Value::as_object) else {
        assert!(
            reply.body.is_empty(),
            "{what} {status}: a body: {body_text}"
        );
        return Value::Null;
    };
    let content_type = reply.header("content-type").unwrap_or("");
    let (media, spec) = content
        .iter()
        .find(|(media, _)| content_type.split(';').next().map(str::trim) == Some(media.as_str()))
        .unwrap_or_else(|| {
            panic!(
                "{what} {status}: content type {content_type:?}, documented {:?}",
                content.keys().collect::<Vec<_>>()
            )
        });
    if media == "application/jsonl" {
        // Each line an entry of the log.
        let entry = json!({"$ref": "#/components/schemas/RequestEntry"});
        let lines: Vec<Value> = body_text
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect();
        for (i, line) in lines.iter().enumerate() {
            conforms(doc, &entry, line, &format!("line {}", i + 1))
                .unwrap_or_else(|e| panic!("{what} {status}: {e}"));
        }
        return Value::Array(lines);
    }
    let body = reply.json();
    conforms(doc, &spec["schema"], &body, "body")
        .unwrap_or_else(|e| panic!("{what} {status}: {e}\n{body}"));
    body
}

/// The operation `method path` of the description.
fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> &'a Value {
    doc["paths"][path]
        .get(method)
        .unwrap_or_else(|| panic!("{method} {path} is not documented"))
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
    // Every operation has an id, a summary, a success response and the answers every request
    // can get; the body readers list 413 and 415; every $ref resolves.
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
            for status in ["400", "401", "403", "404", "503", "default"] {
                assert!(
                    responses.contains_key(status),
                    "{method} {path}: no {status}"
                );
            }
            let reads_body = WITH_BODY.contains(&(*method, path.as_str()));
            assert_eq!(
                op.get("requestBody").is_some(),
                reads_body,
                "{method} {path}"
            );
            for status in ["413", "415"] {
                assert_eq!(
                    responses.contains_key(status),
                    reads_body,
                    "{method} {path}: {status}"
                );
            }
        }
    }
    let text = scim_server::ADMIN_OPENAPI;
    for (at, _) in text.match_indices("\"$ref\"") {
        let rest = &text[at..];
        let target = rest.split('"').nth(3).unwrap();
        let pointer = target.strip_prefix('#').expect("local $ref");
        assert!(doc.pointer(pointer).is_some(), "unresolved $ref {target}");
    }
    // The examples of the answers are answers the schemas allow.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(op) = item.get(*method) else {
                continue;
            };
            let bodies = op["responses"]
                .as_object()
                .unwrap()
                .values()
                .chain(op.get("requestBody"));
            for response in bodies {
                let response = resolve(&doc, response);
                let Some(media) = response.pointer("/content/application~1json") else {
                    continue;
                };
                for (name, example) in media["examples"].as_object().into_iter().flatten() {
                    conforms(&doc, &media["schema"], &example["value"], name)
                        .unwrap_or_else(|e| panic!("{method} {path}: example {e}"));
                }
            }
        }
    }
}

/// The validator above refuses what the schemas refuse (so that the tests below can pass only
/// because the answers conform).
#[test]
fn the_validator_refuses_what_the_schemas_refuse() {
    let doc = description();
    let token = json!({"$ref": "#/components/schemas/Token"});
    let good = json!({"id": "t", "label": "entra", "scope": "scim",
        "created": "2026-01-01T00:00:00Z", "revoked": null, "lastUsed": null});
    assert_eq!(conforms(&doc, &token, &good, "token"), Ok(()));
    let mut bad = Vec::new();
    for (name, value) in [
        ("scope", json!("operator")),
        ("label", json!(null)),
        ("revoked", json!(7)),
        ("extra", json!(1)),
    ] {
        let mut token = good.clone();
        token[name] = value;
        bad.push(token);
    }
    let mut missing = good.clone();
    missing.as_object_mut().unwrap().remove("lastUsed");
    bad.push(missing);
    for value in bad {
        assert!(conforms(&doc, &token, &value, "token").is_err(), "{value}");
    }
    let page = json!({"$ref": "#/components/schemas/RequestPage"});
    assert!(conforms(&doc, &page, &json!({"entries": [{}], "next": null}), "page").is_err());
    assert!(conforms(&doc, &page, &json!({"entries": [], "next": 3}), "page").is_err());
}

/// What the router answers a path it does not serve: 404 with this detail.
fn unrouted(reply: &Reply) -> bool {
    reply.status == 404 && String::from_utf8_lossy(&reply.body).contains("no admin endpoint")
}

/// A request to the admin API of `tenant` with `authorization` (if any) and a JSON body.
async fn call(
    server: &TestServer,
    method: Method,
    tenant: &str,
    path: &str,
    authorization: Option<&str>,
    body: Option<Value>,
) -> Reply {
    let auth = authorization.map(|secret| format!("Bearer {secret}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("authorization", auth));
    }
    send(
        server.addr,
        false,
        method,
        &format!("/t/{tenant}/admin/v1{path}"),
        &headers,
        body.map(|b| serde_json::to_vec(&b).unwrap()),
    )
    .await
}

#[tokio::test]
async fn served_without_a_token() {
    let server = TestServer::start().await;
    // No token, any tenant name (existing or not: the answer is the same), GET or HEAD.
    for tenant in ["acme", "no-such-tenant"] {
        let path = format!("/t/{tenant}/admin/v1/openapi.json");
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
        assert_eq!(served["components"], description()["components"]);
        let url = served["servers"][0]["url"].as_str().unwrap();
        assert!(url.ends_with(&format!("/t/{tenant}/admin/v1")), "{url}");
        assert!(url.starts_with("http://"), "{url}");
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
    // Everything else wants a token.
    let reply = send(
        server.addr,
        false,
        Method::GET,
        "/t/acme/admin/v1/health",
        &[],
        None,
    )
    .await;
    assert_eq!(reply.status, 401);
}

/// Sends the SCIM requests the log then holds: a create with a password, a failed read, a body
/// that is not JSON, a deactivation.
async fn provision(server: &TestServer) -> String {
    let mut user = common::user("bjensen");
    user["password"] = json!("Hunter2-secret");
    let created = server.client.post("/Users", &user).await;
    assert_eq!(created.status, 201);
    let id = created.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(server.client.get("/Users/no-such-user").await.status, 404);
    let not_json = server
        .client
        .raw(
            Method::POST,
            "/Users",
            &[
                ("authorization", &format!("Bearer {}", server.client.token)),
                ("content-type", "application/scim+json"),
            ],
            Some(b"{not json".to_vec()),
        )
        .await;
    assert_eq!(not_json.status, 400);
    let patch = json!({
        "schemas": [common::PATCH_OP],
        "Operations": [{"op": "replace", "path": "active", "value": false}],
    });
    assert_eq!(
        server
            .client
            .patch(&format!("/Users/{id}"), &patch)
            .await
            .status,
        200
    );
    id
}

#[tokio::test]
async fn the_answers_are_the_documented_ones() {
    let server = TestServer::start().await;
    let doc = description();
    let tenant = server.store.tenant_by_name("acme").await.unwrap().unwrap();
    let admin = server
        .store
        .issue_token(&tenant.id, "ops", TokenScope::Admin)
        .await
        .unwrap()
        .secret;
    let admin = Some(admin.as_str());
    let person = provision(&server).await;

    // The log: the four requests, within a second or so (batched off the request path).
    let list = operation(&doc, "get", "/requests");
    let mut page = Value::Null;
    for _ in 0..50 {
        let reply = call(&server, Method::GET, "acme", "/requests", admin, None).await;
        page = documented(&doc, "GET /requests", list, &reply);
        if page["entries"].as_array().unwrap().len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let entries = page["entries"].as_array().unwrap().clone();
    assert_eq!(entries.len(), 4, "{page}");
    assert_eq!(page["next"], Value::Null);
    // Newest first: the deactivation, the body that was not JSON, the 404, the create.
    let statuses: Vec<&Value> = entries.iter().map(|e| &e["status"]).collect();
    assert_eq!(
        statuses,
        [&json!(200), &json!(400), &json!(404), &json!(201)]
    );
    let create = &entries[3];
    assert_eq!(create["requestBody"]["password"], "[redacted]");
    assert_eq!(create["resourceId"], json!(person));
    assert_eq!(entries[1]["requestBody"], Value::Null);
    assert_eq!(entries[1]["scimType"], "invalidSyntax");
    assert_eq!(entries[2]["responseBody"]["status"], "404");

    // Narrowed and paged.
    let reply = call(
        &server,
        Method::GET,
        "acme",
        "/requests?status=4xx&limit=1",
        admin,
        None,
    )
    .await;
    let first = documented(&doc, "GET /requests", list, &reply);
    assert_eq!(first["entries"][0]["status"], 400);
    let next = first["next"].as_str().expect("a next page").to_owned();
    let reply = call(
        &server,
        Method::GET,
        "acme",
        &format!("/requests?status=4xx&limit=1&cursor={next}"),
        admin,
        None,
    )
    .await;
    let second = documented(&doc, "GET /requests", list, &reply);
    assert_eq!(second["entries"][0]["status"], 404);
    let reply = call(
        &server,
        Method::GET,
        "acme",
        &format!("/requests?person={person}&method=patch&resourceType=User"),
        admin,
        None,
    )
    .await;
    let about = documented(&doc, "GET /requests", list, &reply);
    assert_eq!(about["entries"].as_array().unwrap().len(), 1, "{about}");
    for bad in [
        "status=6xx",
        "method=TRACE",
        "resourceType=Booking",
        "since=yesterday",
        "limit=0",
        "scimType=",
        "cursor=nonsense",
        "limit=1&limit=2",
    ] {
        let reply = call(
            &server,
            Method::GET,
            "acme",
            &format!("/requests?{bad}"),
            admin,
            None,
        )
        .await;
        assert_eq!(reply.status, 400, "{bad}");
        documented(&doc, "GET /requests", list, &reply);
    }

    // One entry and what it caused.
    let deactivation = entries[0]["id"].as_str().unwrap();
    let reply = call(
        &server,
        Method::GET,
        "acme",
        &format!("/requests/{deactivation}"),
        admin,
        None,
    )
    .await;
    let detail = documented(
        &doc,
        "GET /requests/{id}",
        operation(&doc, "get", "/requests/{id}"),
        &reply,
    );
    let effects = detail["effects"].as_array().unwrap();
    assert!(
        effects
            .iter()
            .any(|e| e["subject"] == "User" && e["op"] == "patched"),
        "{detail}"
    );

    // The export: the same entries, one per line.
    let reply = call(
        &server,
        Method::GET,
        "acme",
        "/requests/export",
        admin,
        None,
    )
    .await;
    let lines = documented(
        &doc,
        "GET /requests/export",
        operation(&doc, "get", "/requests/export"),
        &reply,
    );
    assert_eq!(lines, Value::Array(entries.clone()));

    // Sync health: the SCIM token is calling.
    let reply = call(&server, Method::GET, "acme", "/health", admin, None).await;
    let health = documented(
        &doc,
        "GET /health",
        operation(&doc, "get", "/health"),
        &reply,
    );
    let connections = health["connections"].as_array().unwrap();
    assert_eq!(connections.len(), 1, "{health}");
    assert_eq!(connections[0]["state"], "calling");
    assert_eq!(connections[0]["lastError"]["status"], 400);

    // Tokens: issue, list, revoke.
    let reply = call(
        &server,
        Method::POST,
        "acme",
        "/tokens",
        admin,
        Some(json!({"label": "okta-prod", "scope": "scim"})),
    )
    .await;
    let issued = documented(
        &doc,
        "POST /tokens",
        operation(&doc, "post", "/tokens"),
        &reply,
    );
    assert_eq!(reply.status, 201);
    let secret = issued["secret"].as_str().unwrap();
    assert!(
        secret.starts_with("scimd_") && secret.len() == 70,
        "{secret}"
    );
    let reply = call(&server, Method::GET, "acme", "/tokens", admin, None).await;
    let tokens = documented(
        &doc,
        "GET /tokens",
        operation(&doc, "get", "/tokens"),
        &reply,
    );
    assert_eq!(tokens["tokens"].as_array().unwrap().len(), 3, "{tokens}");
    let revoke = operation(&doc, "delete", "/tokens/{id}");
    let path = format!("/tokens/{}", issued["id"].as_str().unwrap());
    let reply = call(&server, Method::DELETE, "acme", &path, admin, None).await;
    assert_eq!(reply.status, 204);
    documented(&doc, "DELETE /tokens/{id}", revoke, &reply);
    let reply = call(&server, Method::DELETE, "acme", &path, admin, None).await;
    assert_eq!(reply.status, 404);
    documented(&doc, "DELETE /tokens/{id}", revoke, &reply);

    // Schemas: read, replace.
    let reply = call(&server, Method::GET, "acme", "/schemas", admin, None).await;
    let schemas = documented(
        &doc,
        "GET /schemas",
        operation(&doc, "get", "/schemas"),
        &reply,
    );
    assert_eq!(schemas, json!({"version": 0, "documents": []}));
    let put = operation(&doc, "put", "/schemas");
    let example = put.pointer("/requestBody/content/application~1json/examples/extension/value");
    let reply = call(
        &server,
        Method::PUT,
        "acme",
        "/schemas",
        admin,
        example.cloned(),
    )
    .await;
    let schemas = documented(&doc, "PUT /schemas", put, &reply);
    assert_eq!(reply.status, 200);
    assert_eq!(schemas["version"], 1);
    let reply = call(
        &server,
        Method::PUT,
        "acme",
        "/schemas",
        admin,
        Some(json!({"documents": []})),
    )
    .await;
    assert_eq!(documented(&doc, "PUT /schemas", put, &reply)["version"], 2);
}

#[tokio::test]
async fn every_operation_and_credential_gets_a_documented_answer() {
    let server = TestServer::start().await;
    let doc = description();
    let tenant = server.store.tenant_by_name("acme").await.unwrap().unwrap();
    let mut secrets = Vec::new();
    for scope in [TokenScope::Admin, TokenScope::Workplace] {
        let issued = server.store.issue_token(&tenant.id, "probe", scope).await;
        secrets.push(issued.unwrap().secret);
    }
    let (admin, workplace) = (secrets[0].clone(), secrets[1].clone());
    let scim = server.client.token.clone();
    let operator = server
        .store
        .issue_operator_token("ops")
        .await
        .unwrap()
        .secret;
    let other = server.store.create_tenant("globex").await.unwrap();
    let other_admin = server
        .store
        .issue_token(&other.id, "ops", TokenScope::Admin)
        .await
        .unwrap()
        .secret;

    // (tenant, credential, the status every operation answers, if fixed)
    let cases: Vec<(&str, Option<&str>, Option<u16>)> = vec![
        ("acme", Some(&admin), None),
        ("acme", Some(&operator), None),
        ("acme", None, Some(401)),
        ("acme", Some("scimd_not-a-token"), Some(401)),
        ("acme", Some(&other_admin), Some(401)),
        ("acme", Some(&scim), Some(403)),
        ("acme", Some(&workplace), Some(403)),
        ("no-such-tenant", Some(&operator), Some(404)),
        ("no-such-tenant", Some(&admin), Some(401)),
    ];
    for (tenant, credential, expected) in cases {
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in METHODS {
                let Some(op) = item.get(*method) else {
                    continue;
                };
                // An empty JSON object where a body is read: the router serves it (no "no
                // endpoint", no 405), and the status is one the description lists.
                let concrete = path.replace("{id}", "openapi-probe");
                let http_method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
                let body = op.get("requestBody").map(|_| json!({}));
                let reply = call(&server, http_method, tenant, &concrete, credential, body).await;
                let what = format!("{method} {path} in {tenant} with {credential:?}");
                assert!(!unrouted(&reply), "{what} is not served");
                assert_ne!(reply.status, 405, "{what}: method not allowed");
                if let Some(expected) = expected {
                    assert_eq!(reply.status, expected, "{what}");
                }
                documented(&doc, &what, op, &reply);
            }
        }
    }

    // The methods a path does not document are 405, with the documented ones in Allow.
    for (path, item) in doc["paths"].as_object().unwrap() {
        let allowed: BTreeSet<String> = METHODS
            .iter()
            .filter(|m| item.get(**m).is_some())
            .map(|m| m.to_uppercase())
            .collect();
        for method in ["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"] {
            if allowed.contains(method) {
                continue;
            }
            let concrete = path.replace("{id}", "openapi-probe");
            let reply = call(
                &server,
                Method::from_bytes(method.as_bytes()).unwrap(),
                "acme",
                &concrete,
                Some(&admin),
                None,
            )
            .await;
            assert_eq!(reply.status, 405, "{method} {path}");
            let allow: BTreeSet<String> = reply
                .header("allow")
                .unwrap_or_else(|| panic!("{method} {path}: no Allow"))
                .split(',')
                .map(|m| m.trim().to_owned())
                .collect();
            assert_eq!(allow, allowed, "{method} {path}");
        }
    }

    // The body readers: 415 for another media type, 413 beyond the limit, both documented.
    for (method, path) in WITH_BODY {
        let op = operation(&doc, method, path);
        let http_method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let auth = format!("Bearer {admin}");
        let url = format!("/t/acme/admin/v1{path}");
        let reply = send(
            server.addr,
            false,
            http_method.clone(),
            &url,
            &[("authorization", &auth), ("content-type", "text/plain")],
            Some(b"{}".to_vec()),
        )
        .await;
        assert_eq!(reply.status, 415, "{method} {path}");
        documented(&doc, path, op, &reply);
        let reply = send(
            server.addr,
            false,
            http_method,
            &url,
            &[
                ("authorization", &auth),
                ("content-type", "application/json"),
            ],
            Some(vec![b' '; 2 * 1024 * 1024]),
        )
        .await;
        assert_eq!(reply.status, 413, "{method} {path}");
        documented(&doc, path, op, &reply);
    }
}

/// The scope matrix of docs/admin-api.md, cell by cell: what each credential gets from the SCIM
/// endpoints, the workplace API, and the admin API's log and health, tokens and schemas.
#[tokio::test]
async fn the_scope_matrix_holds() {
    let server = TestServer::start().await;
    let tenant = server.store.tenant_by_name("acme").await.unwrap().unwrap();
    let mut secrets = Vec::new();
    for scope in [TokenScope::Workplace, TokenScope::Admin] {
        let issued = server.store.issue_token(&tenant.id, "matrix", scope).await;
        secrets.push(issued.unwrap().secret);
    }
    let operator = server
        .store
        .issue_operator_token("matrix")
        .await
        .unwrap()
        .secret;
    let scim = server.client.token.clone();
    // (credential, SCIM, workplace, log and health, tokens, schemas)
    let rows: [(&str, &str, [u16; 5]); 4] = [
        ("scim", &scim, [200, 403, 403, 403, 403]),
        ("workplace", &secrets[0], [403, 200, 403, 403, 403]),
        ("admin", &secrets[1], [403, 200, 200, 200, 200]),
        ("operator", &operator, [401, 401, 200, 200, 200]),
    ];
    // One read per column.
    let reads = [
        "/t/acme/scim/v2/Users",
        "/t/acme/workplace/v1/sites",
        "/t/acme/admin/v1/requests",
        "/t/acme/admin/v1/tokens",
        "/t/acme/admin/v1/schemas",
    ];
    for (name, secret, expected) in rows {
        let auth = format!("Bearer {secret}");
        for (path, status) in reads.iter().zip(expected) {
            let headers = [("authorization", auth.as_str())];
            let reply = send(server.addr, false, Method::GET, path, &headers, None).await;
            assert_eq!(
                reply.status,
                status,
                "{name} token, GET {path}: {}",
                String::from_utf8_lossy(&reply.body)
            );
        }
        // The writes of the last three columns, where the reads are allowed.
        if expected[3] == 200 {
            let reply = call(
                &server,
                Method::POST,
                "acme",
                "/tokens",
                Some(secret),
                Some(json!({"label": format!("issued-by-{name}"), "scope": "scim"})),
            )
            .await;
            assert_eq!(reply.status, 201, "{name}");
            let issued = reply.json();
            // A scim token issued by an admin credential writes people: by design.
            let user = send(
                server.addr,
                false,
                Method::POST,
                "/t/acme/scim/v2/Users",
                &[
                    (
                        "authorization",
                        &format!("Bearer {}", issued["secret"].as_str().unwrap()),
                    ),
                    ("content-type", "application/scim+json"),
                ],
                Some(serde_json::to_vec(&common::user(&format!("by-{name}"))).unwrap()),
            )
            .await;
            assert_eq!(user.status, 201, "{name}");
            let path = format!("/tokens/{}", issued["id"].as_str().unwrap());
            let reply = call(&server, Method::DELETE, "acme", &path, Some(secret), None).await;
            assert_eq!(reply.status, 204, "{name}");
            let reply = call(
                &server,
                Method::PUT,
                "acme",
                "/schemas",
                Some(secret),
                Some(json!({"documents": []})),
            )
            .await;
            assert_eq!(reply.status, 200, "{name}");
        }
    }
    // The operator token works for any tenant; a tenant token for its own only.
    server.store.create_tenant("globex").await.unwrap();
    let reply = call(
        &server,
        Method::GET,
        "globex",
        "/health",
        Some(&operator),
        None,
    )
    .await;
    assert_eq!(reply.status, 200);
    let reply = call(
        &server,
        Method::GET,
        "globex",
        "/health",
        Some(&secrets[1]),
        None,
    )
    .await;
    assert_eq!(reply.status, 401);
}

/// The export reads its first page before the status line, so that a bad cursor is the 400 the
/// description documents, not a 200 whose only line says the store failed.
#[tokio::test]
async fn the_export_refuses_a_bad_cursor() {
    let server = TestServer::start().await;
    let doc = description();
    let tenant = server.store.tenant_by_name("acme").await.unwrap().unwrap();
    let issued = server
        .store
        .issue_token(&tenant.id, "ops", TokenScope::Admin);
    let admin = issued.await.unwrap().secret;
    let path = "/requests/export?cursor=nonsense";
    let reply = call(&server, Method::GET, "acme", path, Some(&admin), None).await;
    assert_eq!(
        reply.status,
        400,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let op = operation(&doc, "get", "/requests/export");
    assert_eq!(documented(&doc, path, op, &reply)["error"], "invalidCursor");
}
