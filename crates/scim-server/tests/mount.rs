//! `ScimService` mounted on its own, as a vendor embeds it: called as a tower `Service` with
//! its own request body type, an authenticator the embedder supplies, and a fixed base URL.

// Test support: a failure here is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bytes::Bytes;
use http::{Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full};
use scim_server::{
    ApiError, Authenticator, Body, Principal, ScimService, TokenAuthenticator, async_trait,
};
use scim_store::sqlite::{SqliteOptions, SqliteStore};
use scim_store::{ResourceSchemas, Store, TenantId, TokenScope};
use serde_json::{Value, json};
use std::sync::Arc;
use tower_service::Service;

const BASE: &str = "https://app.example.com/scim/v2";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";

/// The embedder's own credentials: one fixed API key for one tenant.
struct ApiKey {
    key: &'static str,
    tenant: TenantId,
}

#[async_trait]
impl Authenticator for ApiKey {
    async fn authenticate(
        &self,
        request: &http::request::Parts,
        scope: TokenScope,
    ) -> Result<Principal, ApiError> {
        match request.headers.get("x-api-key") {
            Some(value) if value.as_bytes() == self.key.as_bytes() => Ok(Principal {
                tenant: self.tenant,
                scope,
                token_id: "key-1".into(),
                label: "vendor-key".into(),
            }),
            _ => Err(ApiError::unauthorized("send a valid X-Api-Key")),
        }
    }
}

async fn store() -> (Arc<SqliteStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(
        dir.path().join("scim.db"),
        ResourceSchemas::core(),
        SqliteOptions::default(),
    )
    .unwrap();
    (Arc::new(store), dir)
}

fn request(
    method: &str,
    path: &str,
    header: Option<(&str, &str)>,
    body: Option<Value>,
) -> Request<Full<Bytes>> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some((name, value)) = header {
        builder = builder.header(name, value);
    }
    let bytes = body.map_or_else(Bytes::new, |b| Bytes::from(b.to_string()));
    if !bytes.is_empty() {
        builder = builder.header(header::CONTENT_TYPE, "application/scim+json");
    }
    builder.body(Full::new(bytes)).unwrap()
}

async fn call(service: &mut ScimService, req: Request<Full<Bytes>>) -> (Response<()>, Value) {
    let response: Response<Body> = service.call(req).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let json = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    (Response::from_parts(parts, ()), json)
}

fn assert_unauthorized(response: &Response<()>, body: &Value) {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{body}");
    assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
    assert_eq!(body["schemas"], json!([ERROR]));
    assert_eq!(body["status"], json!("401"));
    assert!(!body["detail"].as_str().unwrap_or("").is_empty());
}

#[tokio::test]
async fn a_custom_authenticator_serves_the_scim_base_end_to_end() {
    let (store, _dir) = store().await;
    let tenant = store.create_tenant("vendor").await.unwrap();
    let key = ("x-api-key", "secret-key");
    let mut scim = ScimService::new(
        store.clone(),
        ApiKey {
            key: "secret-key",
            tenant: tenant.id,
        },
        format!("{BASE}/"),
    )
    .unwrap();

    let user = json!({"schemas": [USER], "userName": "bjensen", "password": "t1meMa$heen"});
    let (created, body) = call(&mut scim, request("POST", "/Users", Some(key), Some(user))).await;
    assert_eq!(created.status(), StatusCode::CREATED, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();
    let location = format!("{BASE}/Users/{id}");
    assert_eq!(created.headers()[header::LOCATION], location.as_str());
    assert_eq!(body["meta"]["location"], json!(location));
    assert!(body.get("password").is_none(), "{body}");

    let (read, body) = call(
        &mut scim,
        request("GET", &format!("/Users/{id}"), Some(key), None),
    )
    .await;
    assert_eq!(read.status(), StatusCode::OK, "{body}");
    assert_eq!(body["userName"], json!("bjensen"));
    assert!(read.headers().contains_key("x-request-id"));

    let filter = "/Users?filter=userName%20eq%20%22bjensen%22";
    let (listed, body) = call(&mut scim, request("GET", filter, Some(key), None)).await;
    assert_eq!(listed.status(), StatusCode::OK, "{body}");
    assert_eq!(body["totalResults"], json!(1));

    // Discovery documents link under the same base.
    let (_, body) = call(
        &mut scim,
        request("GET", "/ServiceProviderConfig", Some(key), None),
    )
    .await;
    assert_eq!(
        body["meta"]["location"],
        json!(format!("{BASE}/ServiceProviderConfig"))
    );
}

#[tokio::test]
async fn missing_or_invalid_credentials_get_the_scim_401() {
    let (store, _dir) = store().await;
    let tenant = store.create_tenant("vendor").await.unwrap();
    let mut scim = ScimService::new(
        store.clone(),
        ApiKey {
            key: "secret-key",
            tenant: tenant.id,
        },
        BASE,
    )
    .unwrap();
    let (response, body) = call(&mut scim, request("GET", "/Users", None, None)).await;
    assert_unauthorized(&response, &body);
    let wrong = Some(("x-api-key", "guess"));
    let (response, body) = call(&mut scim, request("GET", "/Users", wrong, None)).await;
    assert_unauthorized(&response, &body);
    // Nothing was written by the refused requests.
    let user = json!({"schemas": [USER], "userName": "mallory"});
    let (response, body) = call(&mut scim, request("POST", "/Users", wrong, Some(user))).await;
    assert_unauthorized(&response, &body);
}

#[tokio::test]
async fn the_token_authenticator_works_without_tenant_urls() {
    let (store, _dir) = store().await;
    let tenant = store.create_tenant("acme").await.unwrap();
    let scim_token = store
        .issue_token(&tenant.id, "idp", TokenScope::Scim)
        .await
        .unwrap();
    let workplace_token = store
        .issue_token(&tenant.id, "desk", TokenScope::Workplace)
        .await
        .unwrap();
    let mut scim =
        ScimService::new(store.clone(), TokenAuthenticator::new(store.clone()), BASE).unwrap();
    let bearer = |secret: &str| format!("Bearer {secret}");

    let good = bearer(&scim_token.secret);
    let (response, body) = call(
        &mut scim,
        request("GET", "/Users", Some(("authorization", &good)), None),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");

    let bad = bearer("scimd_0000");
    let (response, body) = call(
        &mut scim,
        request("GET", "/Users", Some(("authorization", &bad)), None),
    )
    .await;
    assert_unauthorized(&response, &body);

    // A token of the other scope is known, so it is refused with 403, not 401.
    let other = bearer(&workplace_token.secret);
    let (response, body) = call(
        &mut scim,
        request("GET", "/Users", Some(("authorization", &other)), None),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["schemas"], json!([ERROR]));
}

/// An embedder's authenticator that hands out credentials of the workplace scope, whatever the
/// service asks for: the SCIM service must not run them.
struct WrongScope {
    tenant: TenantId,
}

#[async_trait]
impl Authenticator for WrongScope {
    async fn authenticate(
        &self,
        _request: &http::request::Parts,
        _scope: TokenScope,
    ) -> Result<Principal, ApiError> {
        Ok(Principal {
            tenant: self.tenant,
            scope: TokenScope::Workplace,
            token_id: "desk-1".into(),
            label: "booking-app".into(),
        })
    }
}

#[tokio::test]
async fn a_principal_of_the_other_scope_is_refused_and_writes_nothing() {
    let (store, _dir) = store().await;
    let tenant = store.create_tenant("vendor").await.unwrap();
    let mut scim = ScimService::new(store.clone(), WrongScope { tenant: tenant.id }, BASE).unwrap();
    let user = json!({"schemas": [USER], "userName": "mallory"});
    let (response, body) = call(&mut scim, request("POST", "/Users", None, Some(user))).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["schemas"], json!([ERROR]));
    let page = store
        .query(
            &tenant.id,
            scim_store::ResourceKind::User,
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(page.total_results, 0, "the refused request wrote a user");
}

#[tokio::test]
async fn a_mounted_service_refuses_a_body_over_its_limit() {
    let (store, _dir) = store().await;
    let tenant = store.create_tenant("vendor").await.unwrap();
    let mut scim = ScimService::new(
        store.clone(),
        ApiKey {
            key: "secret-key",
            tenant: tenant.id,
        },
        BASE,
    )
    .unwrap();
    // Over the default 1 MiB: refused before it is parsed or stored.
    let user = json!({"schemas": [USER], "userName": "big", "nickName": "x".repeat(2 << 20)});
    let (response, body) = call(
        &mut scim,
        request(
            "POST",
            "/Users",
            Some(("x-api-key", "secret-key")),
            Some(user),
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(body["schemas"], json!([ERROR]));
}
