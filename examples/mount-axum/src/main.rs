//! An axum app that mounts scimd's SCIM endpoints under `/scim/v2` with its OWN
//! authenticator (a fixed API key, `X-Api-Key`, mapped to a tenant the app creates at
//! start-up), over the SQLite store, and without the workplace API. Run it, then:
//! `curl -H 'X-Api-Key: change-me' http://127.0.0.1:3000/scim/v2/Users`.

use axum::Router;
use axum::routing::get;
use scim_server::{ApiError, Authenticator, Principal, ScimService, async_trait};
use scim_store::sqlite::{SqliteOptions, SqliteStore};
use scim_store::{ResourceSchemas, Store, TenantId, TokenScope};
use std::sync::Arc;

/// The app's credentials: one API key, for the app's one tenant.
struct ApiKey {
    key: String,
    tenant: TenantId,
}

#[async_trait]
impl Authenticator for ApiKey {
    async fn authenticate(
        &self,
        request: &axum::http::request::Parts,
        scope: TokenScope,
    ) -> Result<Principal, ApiError> {
        let sent = request.headers.get("x-api-key").map(|v| v.as_bytes());
        if sent != Some(self.key.as_bytes()) {
            // Rendered as the SCIM 401 error body, with WWW-Authenticate.
            return Err(ApiError::unauthorized("send the app's key in X-Api-Key"));
        }
        Ok(Principal {
            tenant: self.tenant,
            scope,
            token_id: "app-key".into(),
            label: "the app's identity provider".into(),
        })
    }
}

/// The app: its own routes, and SCIM under `/scim/v2` with links under `origin`.
async fn app(
    store: Arc<SqliteStore>,
    key: &str,
    origin: &str,
) -> Result<Router, Box<dyn std::error::Error>> {
    // A TenantId comes only from the store: find or create the app's tenant.
    let tenant = match store.tenant_by_name("app").await? {
        Some(tenant) => tenant,
        None => store.create_tenant("app").await?,
    };
    let (key, tenant) = (key.to_owned(), tenant.id);
    // axum strips `/scim/v2` before the service sees the path, so the links' base is given.
    let scim = ScimService::new(store, ApiKey { key, tenant }, format!("{origin}/scim/v2"))?;
    Ok(Router::new()
        .route("/", get(|| async { "an app with SCIM at /scim/v2\n" }))
        .nest_service("/scim/v2", scim))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = std::env::var("SCIM_API_KEY").unwrap_or_else(|_| "change-me".into());
    let store = SqliteStore::open("app.db", ResourceSchemas::core(), SqliteOptions::default())?;
    let app = app(Arc::new(store), &key, "http://127.0.0.1:3000").await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use serde_json::{Value, json};
    use tower::ServiceExt;

    async fn send(
        app: &Router,
        method: &str,
        path: &str,
        key: &str,
        body: Value,
    ) -> (StatusCode, Value) {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("x-api-key", key)
            .header("content-type", "application/scim+json")
            .body(if body.is_null() {
                Body::empty()
            } else {
                Body::from(body.to_string())
            })
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    #[tokio::test]
    async fn creates_reads_back_and_refuses_a_wrong_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(
            dir.path().join("scim.db"),
            ResourceSchemas::core(),
            SqliteOptions::default(),
        )
        .unwrap();
        let app = app(Arc::new(store), "k", "https://app.example")
            .await
            .unwrap();
        let user = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "bjensen"});

        let (status, created) = send(&app, "POST", "/scim/v2/Users", "k", user).await;
        assert_eq!(status, StatusCode::CREATED, "{created}");
        let id = created["id"].as_str().unwrap();
        let location = format!("https://app.example/scim/v2/Users/{id}");
        assert_eq!(created["meta"]["location"], json!(location));

        let (status, read) = send(
            &app,
            "GET",
            &format!("/scim/v2/Users/{id}"),
            "k",
            Value::Null,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{read}");
        assert_eq!(read["userName"], json!("bjensen"));

        let (status, error) = send(&app, "GET", "/scim/v2/Users", "wrong", Value::Null).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(error["status"], json!("401"));
        assert_eq!(
            error["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
        );
    }
}
