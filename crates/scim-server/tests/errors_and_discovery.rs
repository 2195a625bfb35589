//! Wire formats, snapshotted: the discovery documents (RFC 7644 section 4) and the error
//! bodies (RFC 7644 section 3.12) of every bad-input path. Bad input is never a 500.

mod common;

use common::{PATCH_OP, TestServer, USER, assert_error, user};
use http::Method;
use scim_server::{Limits, ServerConfig};
use serde_json::{Value, json};

fn config() -> ServerConfig {
    ServerConfig {
        public_base_url: Some("https://scim.example.test".into()),
        limits: Limits {
            max_body_bytes: 4096,
            ..Limits::default()
        },
        ..ServerConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_documents() {
    let server = TestServer::start_with(config()).await;
    let c = &server.client;
    let spc = c.get("/ServiceProviderConfig").await;
    assert_eq!(spc.status, 200);
    insta::assert_json_snapshot!("service_provider_config", spc.json());
    let types = c.get("/ResourceTypes").await;
    assert_eq!(types.status, 200);
    insta::assert_json_snapshot!("resource_types", types.json());
    let user_type = c.get("/ResourceTypes/User").await;
    assert_eq!(user_type.json(), types.json()["Resources"][0]);
    let schemas = c.get("/Schemas").await.json();
    let ids: Vec<&str> = schemas["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    insta::assert_json_snapshot!("schema_ids", ids);
    let group_schema = c
        .get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:Group")
        .await;
    assert_eq!(group_schema.status, 200);
    insta::assert_json_snapshot!("group_schema", group_schema.json());
    assert_eq!(
        c.get("/Schemas/urn:ietf:params:scim:schemas:core:2.0:User")
            .await
            .json()["id"],
        json!(USER)
    );
}

/// Runs a request and returns its error body, checked against RFC 7644 section 3.12.
async fn error_of(reply: common::client::Reply, status: u16, scim_type: Option<&str>) -> Value {
    assert_error(&reply, status, scim_type)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_bodies() {
    let server = TestServer::start_with(config()).await;
    let c = &server.client;
    let auth = format!("Bearer {}", c.token);
    let json_ct = ("content-type", "application/scim+json");
    let authz = ("authorization", auth.as_str());
    let id = c.post("/Users", &user("taken")).await.json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut errors = serde_json::Map::new();
    let mut record = |name: &str, body: Value| {
        errors.insert(name.to_owned(), body);
    };

    record(
        "malformed JSON",
        error_of(
            c.raw(
                Method::POST,
                "/Users",
                &[authz, json_ct],
                Some(b"{\"userName\": ".to_vec()),
            )
            .await,
            400,
            Some("invalidSyntax"),
        )
        .await,
    );
    record(
        "bad UTF-8",
        error_of(
            c.raw(
                Method::POST,
                "/Users",
                &[authz, json_ct],
                Some(b"{\"userName\": \"\xff\xfe\"}".to_vec()),
            )
            .await,
            400,
            Some("invalidSyntax"),
        )
        .await,
    );
    record("huge number", error_of(c.raw(Method::POST, "/Users", &[authz, json_ct], Some(br#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"n","x":1e999}"#.to_vec())).await, 400, Some("invalidSyntax")).await);
    record(
        "empty body",
        error_of(
            c.raw(Method::POST, "/Users", &[authz, json_ct], None).await,
            400,
            Some("invalidSyntax"),
        )
        .await,
    );
    record(
        "not an object",
        error_of(
            c.raw(
                Method::POST,
                "/Users",
                &[authz, json_ct],
                Some(b"[1,2]".to_vec()),
            )
            .await,
            400,
            Some("invalidSyntax"),
        )
        .await,
    );
    record(
        "wrong content type",
        error_of(
            c.raw(
                Method::POST,
                "/Users",
                &[authz, ("content-type", "application/x-www-form-urlencoded")],
                Some(b"userName=x".to_vec()),
            )
            .await,
            415,
            None,
        )
        .await,
    );
    record(
        "missing userName",
        error_of(
            c.post("/Users", &json!({"schemas": [USER]})).await,
            400,
            Some("invalidValue"),
        )
        .await,
    );
    record(
        "unknown attribute",
        error_of(
            c.post(
                "/Users",
                &json!({"schemas": [USER], "userName": "u", "shoeSize": 44}),
            )
            .await,
            400,
            Some("invalidSyntax"),
        )
        .await,
    );
    record(
        "uniqueness",
        error_of(
            c.post("/Users", &user("TAKEN")).await,
            409,
            Some("uniqueness"),
        )
        .await,
    );
    record(
        "body too large",
        error_of(
            c.raw(
                Method::POST,
                "/Users",
                &[authz, json_ct],
                Some(vec![b' '; 5000]),
            )
            .await,
            413,
            None,
        )
        .await,
    );
    record(
        "bad filter",
        error_of(
            c.get("/Users?filter=userName%20eq").await,
            400,
            Some("invalidFilter"),
        )
        .await,
    );
    record(
        "unknown filter attribute",
        error_of(
            c.get("/Users?filter=shoeSize%20gt%2040").await,
            400,
            Some("invalidFilter"),
        )
        .await,
    );
    record(
        "bad count",
        error_of(c.get("/Users?count=ten").await, 400, Some("invalidValue")).await,
    );
    record(
        "fractional startIndex",
        error_of(
            c.get("/Users?startIndex=1.5").await,
            400,
            Some("invalidValue"),
        )
        .await,
    );
    record(
        "bad sortOrder",
        error_of(
            c.get("/Users?sortOrder=sideways").await,
            400,
            Some("invalidValue"),
        )
        .await,
    );
    record(
        "unknown sortBy",
        error_of(
            c.get("/Users?sortBy=shoeSize").await,
            400,
            Some("invalidValue"),
        )
        .await,
    );
    record(
        "bad percent escape",
        error_of(c.get("/Users?filter=%ZZ").await, 400, Some("invalidValue")).await,
    );
    record(
        "query not UTF-8",
        error_of(c.get("/Users?filter=%FF").await, 400, Some("invalidValue")).await,
    );
    record(
        "parameter twice",
        error_of(
            c.get("/Users?count=1&count=2").await,
            400,
            Some("invalidValue"),
        )
        .await,
    );
    record(
        "bad attributes",
        error_of(
            c.get("/Users?attributes=name..x").await,
            400,
            Some("invalidValue"),
        )
        .await,
    );
    record(
        "bad PatchOp",
        error_of(
            c.patch(&format!("/Users/{id}"), &json!({"schemas": [PATCH_OP]}))
                .await,
            400,
            Some("invalidSyntax"),
        )
        .await,
    );
    record("bad PATCH path", error_of(c.patch(&format!("/Users/{id}"), &json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "emails[type eq", "value": 1}]})).await, 400, Some("invalidPath")).await);
    record(
        "PATCH no target",
        error_of(
            c.patch(
                &format!("/Users/{id}"),
                &json!({"schemas": [PATCH_OP], "Operations": [{"op": "remove"}]}),
            )
            .await,
            400,
            Some("noTarget"),
        )
        .await,
    );
    record("PATCH read-only", error_of(c.patch(&format!("/Users/{id}"), &json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "id", "value": "x"}]})).await, 400, Some("mutability")).await);
    record(
        "not found",
        error_of(c.get("/Users/no-such-id").await, 404, None).await,
    );
    record(
        "no endpoint",
        error_of(c.get("/Widgets").await, 404, None).await,
    );
    record(
        "method not allowed",
        error_of(c.delete("/Users").await, 405, None).await,
    );
    record(
        "discovery filter",
        error_of(
            c.get("/ResourceTypes?filter=name%20eq%20%22User%22").await,
            403,
            None,
        )
        .await,
    );
    record(
        "unknown schema",
        error_of(c.get("/Schemas/urn:nope").await, 404, None).await,
    );
    record(
        "no token",
        error_of(c.raw(Method::GET, "/Users", &[], None).await, 401, None).await,
    );
    record("Me", error_of(c.get("/Me").await, 501, None).await);
    record(
        "bad If-Match",
        error_of(
            c.call(
                Method::DELETE,
                &format!("/Users/{id}"),
                None,
                &[("if-match", "v1")],
            )
            .await,
            400,
            Some("invalidValue"),
        )
        .await,
    );
    record(
        "stale If-Match",
        error_of(
            c.call(
                Method::DELETE,
                &format!("/Users/{id}"),
                None,
                &[("if-match", "W/\"5\"")],
            )
            .await,
            412,
            None,
        )
        .await,
    );
    let outside =
        common::client::send(server.addr, false, Method::GET, "/scim/v2/Users", &[], None).await;
    record("outside tenants", error_of(outside, 404, None).await);

    // Ids are random; everything else in a detail is stable.
    for body in errors.values_mut() {
        if let Some(Value::String(detail)) = body.get_mut("detail") {
            *detail = redact_uuids(detail);
        }
    }
    insta::assert_json_snapshot!("error_bodies", Value::Object(errors));
}

fn redact_uuids(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find(|c: char| c.is_ascii_hexdigit()) {
        let candidate = rest.get(i..i + 36).unwrap_or("");
        let is_uuid = candidate.len() == 36
            && candidate.char_indices().all(|(j, c)| {
                if [8, 13, 18, 23].contains(&j) {
                    c == '-'
                } else {
                    c.is_ascii_hexdigit()
                }
            });
        if is_uuid {
            out.push_str(&rest[..i]);
            out.push_str("<uuid>");
            rest = &rest[i + 36..];
        } else {
            let next = rest[i..].chars().next().map_or(1, char::len_utf8);
            out.push_str(&rest[..i + next]);
            rest = &rest[i + next..];
        }
    }
    out.push_str(rest);
    out
}
