//! The admin API (issue 18): JSON over HTTP under `/t/{tenant}/admin/v1`, for a tenant's
//! operators: the provisioning log, each SCIM token's sync health, the tenant's tokens and its
//! custom schemas. Credentials: a token of scope `admin` of the tenant, or a server-wide
//! operator token (`scimd operator token issue`). An `admin` token may also use the workplace
//! API; any other scope gets 403 here. The scope matrix is in `docs/admin-api.md`.
//!
//! | endpoint | methods |
//! |---|---|
//! | `/requests` | GET: the log, newest first, narrowed and paged by a cursor |
//! | `/requests/export` | GET: the same entries as JSON Lines, streamed |
//! | `/requests/{id}` | GET: one entry and the feed entries it caused |
//! | `/health` | GET: sync health per SCIM token |
//! | `/tokens` | GET, POST (issue: the secret is shown once) |
//! | `/tokens/{id}` | DELETE (revoke) |
//! | `/schemas` | GET, PUT (the tenant's own schema documents) |

use crate::api::{Api, OpenApi};
use crate::auth::{Authenticator, Principal, bearer_secret};
use crate::context::{Ctx, RequestIds, TenantInPath};
use crate::error::{ApiError, from_store};
use crate::metrics::Metrics;
use crate::request::{self, QueryParams, RequestBody};
use crate::response::Body;
use crate::workplace::wire;
use bytes::Bytes;
use http::request::Parts;
use http::{Method, Request, Response, StatusCode};
use scim_schema::DateTime;
use scim_store::admin::{
    AdminStore, LoggedRequest, MAX_PAGE, RequestFilter, StatusFilter, TokenActivity,
};
use scim_store::workplace::AuditFilter;
use scim_store::{ResourceKind, StoreError, TokenInfo, TokenScope};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

/// The admin API's OpenAPI 3.1 description, served at `openapi.json` below its base.
pub const OPENAPI: &str = include_str!("../openapi/admin.json");

/// The longest token label accepted, in characters.
const MAX_LABEL_CHARS: usize = 200;

/// What the admin handlers need, shared by all requests.
pub(crate) struct AdminState {
    store: Arc<dyn AdminStore>,
    metrics: Arc<Metrics>,
    max_body_bytes: usize,
    authenticator: AdminAuthenticator,
    request_ids: RequestIds,
    silent_after: Duration,
}

impl AdminState {
    pub(crate) fn for_server(
        store: Arc<dyn AdminStore>,
        max_body_bytes: usize,
        silent_after: Duration,
        metrics: Arc<Metrics>,
    ) -> AdminState {
        AdminState {
            authenticator: AdminAuthenticator {
                store: store.clone(),
                metrics: metrics.clone(),
            },
            store,
            metrics,
            max_body_bytes,
            request_ids: RequestIds::new(),
            silent_after,
        }
    }

    fn store_error(&self, ctx: &Ctx, e: StoreError) -> ApiError {
        from_store(e, &ctx.request_id)
    }

    async fn timed<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.metrics.timed(operation, call).await
    }
}

/// Tenant tokens of scope `admin` for their tenant, and operator tokens for any tenant.
struct AdminAuthenticator {
    store: Arc<dyn AdminStore>,
    metrics: Arc<Metrics>,
}

#[async_trait::async_trait]
impl Authenticator for AdminAuthenticator {
    async fn authenticate(
        &self,
        request: &Parts,
        scope: TokenScope,
    ) -> Result<Principal, ApiError> {
        let secret = bearer_secret(request)?;
        let request_id = request
            .extensions
            .get::<crate::context::RequestId>()
            .map_or("-", |id| id.0.as_str());
        let in_path = request
            .extensions
            .get::<TenantInPath>()
            .map(|t| t.0.as_str())
            .unwrap_or("");
        let found = self
            .metrics
            .timed("authenticate", self.store.authenticate(secret))
            .await
            .map_err(|e| from_store(e, request_id))?;
        if let Some((tenant, token)) = found {
            if tenant.name == in_path {
                if !token.scope.covers(scope) {
                    return Err(ApiError::new(
                        StatusCode::FORBIDDEN,
                        format!(
                            "this token has scope {:?}, and the admin API needs a token of scope \"admin\" (scimd token issue --tenant {} --scope admin) or an operator token",
                            token.scope.as_str(),
                            tenant.name
                        ),
                    ));
                }
                return Ok(Principal {
                    tenant: tenant.id,
                    scope: token.scope,
                    token_id: token.id,
                    label: token.label,
                });
            }
        } else if let Some(operator) = self
            .metrics
            .timed(
                "authenticate_operator",
                self.store.authenticate_operator(secret),
            )
            .await
            .map_err(|e| from_store(e, request_id))?
        {
            let tenant = self
                .store
                .tenant_by_name(in_path)
                .await
                .map_err(|e| from_store(e, request_id))?
                .ok_or_else(|| ApiError::not_found(format!("there is no tenant {in_path:?}")))?;
            return Ok(Principal {
                tenant: tenant.id,
                scope: TokenScope::Admin,
                token_id: operator.id,
                label: format!("operator:{}", operator.label),
            });
        }
        Err(ApiError::unauthorized(format!(
            "the bearer token is not valid for tenant {in_path:?} (unknown, revoked, or issued for another tenant)"
        )))
    }
}

/// The admin endpoints, by their path below the base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint<'a> {
    Requests,
    Export,
    Request(&'a str),
    Health,
    Tokens,
    Token(&'a str),
    Schemas,
}

impl Endpoint<'_> {
    fn of<'a>(segments: &[&'a str]) -> Option<Endpoint<'a>> {
        Some(match segments {
            ["requests"] => Endpoint::Requests,
            ["requests", "export"] => Endpoint::Export,
            ["requests", id] => Endpoint::Request(id),
            ["health"] => Endpoint::Health,
            ["tokens"] => Endpoint::Tokens,
            ["tokens", id] => Endpoint::Token(id),
            ["schemas"] => Endpoint::Schemas,
            _ => return None,
        })
    }

    fn route(self) -> &'static str {
        match self {
            Endpoint::Requests => "/admin/v1/requests",
            Endpoint::Export => "/admin/v1/requests/export",
            Endpoint::Request(_) => "/admin/v1/requests/{id}",
            Endpoint::Health => "/admin/v1/health",
            Endpoint::Tokens => "/admin/v1/tokens",
            Endpoint::Token(_) => "/admin/v1/tokens/{id}",
            Endpoint::Schemas => "/admin/v1/schemas",
        }
    }
}

impl Api for AdminState {
    const SCOPE: TokenScope = TokenScope::Admin;
    const WORKPLACE: bool = true;

    fn request_ids(&self) -> &RequestIds {
        &self.request_ids
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn authenticator(&self) -> &dyn Authenticator {
        &self.authenticator
    }

    fn store(&self) -> &dyn scim_store::Store {
        &*self.store
    }

    fn base_url(&self) -> &str {
        ""
    }

    fn openapi() -> Option<&'static OpenApi> {
        static DESCRIPTION: std::sync::OnceLock<Option<OpenApi>> = std::sync::OnceLock::new();
        DESCRIPTION.get_or_init(|| OpenApi::new(OPENAPI)).as_ref()
    }

    fn route(segments: &[&str]) -> &'static str {
        if segments == ["openapi.json"] {
            return "/admin/v1/openapi.json";
        }
        Endpoint::of(segments).map_or("/admin/v1/other", Endpoint::route)
    }

    async fn endpoint<B: RequestBody>(
        &self,
        req: Request<B>,
        ctx: &Ctx,
        segments: &[&str],
        after: &str,
    ) -> Result<Response<Body>, ApiError> {
        let Some(endpoint) = Endpoint::of(segments) else {
            return Err(ApiError::not_found(format!(
                "no admin endpoint at {after:?}; see the description at openapi.json"
            )));
        };
        let method = req.method().clone();
        let query = QueryParams::parse(req.uri().query())?;
        match (endpoint, &method) {
            (Endpoint::Requests, &Method::GET) => self.requests(ctx, &query).await,
            (Endpoint::Export, &Method::GET) => self.export(ctx, &query).await,
            (Endpoint::Request(id), &Method::GET) => self.request(ctx, id).await,
            (Endpoint::Health, &Method::GET) => self.health(ctx).await,
            (Endpoint::Tokens, &Method::GET) => self.tokens(ctx).await,
            (Endpoint::Tokens, &Method::POST) => {
                let body = self.body(req).await?;
                self.issue(ctx, body).await
            }
            (Endpoint::Token(id), &Method::DELETE) => self.revoke(ctx, id).await,
            (Endpoint::Schemas, &Method::GET) => self.schemas(ctx).await,
            (Endpoint::Schemas, &Method::PUT) => {
                let body = self.body(req).await?;
                self.put_schemas(ctx, body).await
            }
            (Endpoint::Tokens, _) => Err(ApiError::method_not_allowed(&method, "GET, POST")),
            (Endpoint::Token(_), _) => Err(ApiError::method_not_allowed(&method, "DELETE")),
            (Endpoint::Schemas, _) => Err(ApiError::method_not_allowed(&method, "GET, PUT")),
            _ => Err(ApiError::method_not_allowed(&method, "GET")),
        }
    }
}

/// `at` as RFC 3339 text.
fn time(at: DateTime) -> String {
    at.to_string()
}

/// An RFC 3339 query parameter as an instant.
fn query_instant(query: &QueryParams, name: &str) -> Result<Option<DateTime>, ApiError> {
    query
        .get(name)?
        .map(|text| {
            DateTime::parse(text).ok_or_else(|| {
                ApiError::invalid_value(format!(
                    "query parameter {name}: {text:?} is not an RFC 3339 date-time such as 2026-12-07T09:00:00Z"
                ))
            })
        })
        .transpose()
}

/// The log's narrowing from the query string.
fn request_filter(query: &QueryParams) -> Result<RequestFilter, ApiError> {
    let status = match query.get("status")? {
        None => None,
        Some(text) => Some(parse_status(text)?),
    };
    let method = match query.get("method")? {
        None => None,
        Some(m) => {
            let upper = m.to_ascii_uppercase();
            if !["GET", "POST", "PUT", "PATCH", "DELETE"].contains(&upper.as_str()) {
                return Err(ApiError::invalid_value(format!(
                    "query parameter method: {m:?} is not one of GET, POST, PUT, PATCH, DELETE"
                )));
            }
            Some(upper)
        }
    };
    let resource_type = match query.get("resourceType")? {
        None => None,
        Some(name) => Some(ResourceKind::from_resource_type(name).ok_or_else(|| {
            ApiError::invalid_value(format!(
                "query parameter resourceType: {name:?} is not User or Group"
            ))
        })?),
    };
    let limit = match query.get("limit")? {
        None => 100,
        Some(text) => {
            let n = scim_filter::search::parse_integer("limit", text)?;
            if n < 1 {
                return Err(ApiError::invalid_value(format!(
                    "limit must be at least 1, not {n}"
                )));
            }
            usize::try_from(n).unwrap_or(MAX_PAGE).min(MAX_PAGE)
        }
    };
    let text = |name: &str| -> Result<Option<String>, ApiError> {
        Ok(query.get(name)?.map(str::to_owned))
    };
    Ok(RequestFilter {
        status,
        method,
        resource_type,
        resource_id: wire::query_id(query, "resourceId")?,
        person: wire::query_id(query, "person")?,
        token_id: wire::query_id(query, "token")?,
        since: query_instant(query, "since")?,
        until: query_instant(query, "until")?,
        scim_type_prefix: text("scimType")?,
        detail_prefix: text("detail")?,
        cursor: text("cursor")?,
        limit,
    })
}

/// `404` or a class `4xx`.
fn parse_status(text: &str) -> Result<StatusFilter, ApiError> {
    let bad = || {
        ApiError::invalid_value(format!(
            "query parameter status: {text:?} is neither a status (100 to 599) nor a class such as 4xx"
        ))
    };
    let lower = text.to_ascii_lowercase();
    if let Some(class) = lower.strip_suffix("xx") {
        let class: u8 = class.parse().map_err(|_| bad())?;
        return if (1..=5).contains(&class) {
            Ok(StatusFilter::Class(class))
        } else {
            Err(bad())
        };
    }
    let status: u16 = text.parse().map_err(|_| bad())?;
    if (100..=599).contains(&status) {
        Ok(StatusFilter::Exact(status))
    } else {
        Err(bad())
    }
}

/// A body as the API shows it: the JSON it was, or the (truncated) text.
fn body_value(text: &Option<String>) -> Value {
    match text {
        None => Value::Null,
        Some(text) => serde_json::from_str(text).unwrap_or_else(|_| Value::from(text.as_str())),
    }
}

/// One log entry on the wire.
fn entry(logged: &LoggedRequest) -> Value {
    let r = &logged.record;
    json!({
        "id": r.request_id,
        "at": time(r.at),
        "token": {"id": r.token_id, "label": r.token_label},
        "method": r.method,
        "path": r.path,
        "status": r.status,
        "scimType": r.scim_type,
        "detail": r.detail,
        "durationMs": r.duration_us as f64 / 1000.0,
        "resourceType": r.resource_type.map(ResourceKind::resource_type),
        "resourceId": r.resource_id,
        "requestBody": body_value(&r.request_body),
        "responseBody": body_value(&r.response_body),
        "scrubbed": logged.scrubbed,
    })
}

fn token(info: &TokenInfo) -> Value {
    json!({
        "id": info.id,
        "label": info.label,
        "scope": info.scope.as_str(),
        "created": time(info.created),
        "revoked": info.revoked.map(time),
        "lastUsed": info.last_used.map(time),
    })
}

impl AdminState {
    async fn body<B: RequestBody>(&self, req: Request<B>) -> Result<Value, ApiError> {
        request::check_content_type(req.headers())?;
        let (parts, body) = req.into_parts();
        let bytes = request::read_body(
            &parts.headers,
            body,
            self.max_body_bytes,
            "the request body",
        )
        .await?;
        request::parse_json(&bytes)
    }

    async fn requests(&self, ctx: &Ctx, query: &QueryParams) -> Result<Response<Body>, ApiError> {
        let filter = request_filter(query)?;
        let page = self
            .timed("admin_requests", self.store.requests(&ctx.tenant, &filter))
            .await
            .map_err(|e| self.store_error(ctx, e))?;
        let entries: Vec<Value> = page.entries.iter().map(entry).collect();
        Ok(wire::json(
            StatusCode::OK,
            &json!({"entries": entries, "next": page.next}),
        ))
    }

    /// The entries as JSON Lines, newest first, produced page by page while the client reads
    /// (two pages in flight at most); a client that goes away stops it. The first page is read
    /// before the answer starts, so a bad cursor or a failing store is an error status, not a
    /// 200 cut short.
    async fn export(&self, ctx: &Ctx, query: &QueryParams) -> Result<Response<Body>, ApiError> {
        let mut filter = request_filter(query)?;
        filter.limit = MAX_PAGE;
        let first = self
            .timed("admin_requests", self.store.requests(&ctx.tenant, &filter))
            .await
            .map_err(|e| self.store_error(ctx, e))?;
        let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(2);
        let (store, tenant, request_id) = (self.store.clone(), ctx.tenant, ctx.request_id.clone());
        tokio::spawn(async move {
            let mut page = first;
            loop {
                let mut chunk = Vec::with_capacity(page.entries.len() * 512);
                for logged in &page.entries {
                    let _ = serde_json::to_writer(&mut chunk, &entry(logged));
                    chunk.push(b'\n');
                }
                if tx.send(Bytes::from(chunk)).await.is_err() {
                    return;
                }
                let Some(next) = page.next.take() else {
                    return;
                };
                filter.cursor = Some(next);
                page = match store.requests(&tenant, &filter).await {
                    Ok(page) => page,
                    Err(e) => {
                        // The status line is sent: the stream ends with an error line.
                        tracing::warn!(request_id, error = %e, "the log export stopped");
                        let line = json!({"error": "the export stopped early: the store failed; export again from the last entry's time (until=)"});
                        let _ = tx.send(Bytes::from(format!("{line}\n"))).await;
                        return;
                    }
                };
            }
        });
        let mut response = Response::new(Body::stream(rx));
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/jsonl"),
        );
        Ok(response)
    }

    async fn request(&self, ctx: &Ctx, raw: &str) -> Result<Response<Body>, ApiError> {
        let id = wire::path_id("request", raw)?;
        let logged = self
            .timed("admin_request", self.store.request(&ctx.tenant, &id))
            .await
            .map_err(|e| self.store_error(ctx, e))?
            .ok_or_else(|| {
                ApiError::not_found(format!(
                    "no request {id:?} in this tenant's log (it may be older than the retention, or not written yet: entries appear within a second)"
                ))
            })?;
        let effects = self
            .timed(
                "admin_request_effects",
                self.store.audit(
                    &ctx.tenant,
                    &AuditFilter {
                        request_id: Some(id),
                        limit: 1000,
                        ..AuditFilter::default()
                    },
                ),
            )
            .await
            .map_err(|e| self.store_error(ctx, e))?;
        let mut body = entry(&logged);
        if let Some(object) = body.as_object_mut() {
            object.insert(
                "effects".into(),
                Value::Array(effects.iter().map(wire::event).collect()),
            );
        }
        Ok(wire::json(StatusCode::OK, &body))
    }

    async fn health(&self, ctx: &Ctx) -> Result<Response<Body>, ApiError> {
        let now = scim_store::document::now();
        let tokens = self
            .timed("admin_tokens", self.store.list_tokens(&ctx.tenant))
            .await
            .map_err(|e| self.store_error(ctx, e))?;
        let activity = self
            .timed(
                "admin_activity",
                self.store.request_activity(&ctx.tenant, now),
            )
            .await
            .map_err(|e| self.store_error(ctx, e))?;
        let silent_after = i64::try_from(self.silent_after.as_secs()).unwrap_or(i64::MAX);
        let connections: Vec<Value> = tokens
            .iter()
            .filter(|t| t.scope == TokenScope::Scim && t.revoked.is_none())
            .map(|t| {
                let found = activity.iter().find(|a| a.token_id == t.id);
                let none = TokenActivity::none(&t.id);
                let a = found.unwrap_or(&none);
                json!({
                    "token": token(t),
                    "state": a.health(t.last_used, now, silent_after).as_str(),
                    "lastRequest": a.last_request.map(time),
                    "requests": {"lastHour": a.requests_hour, "lastDay": a.requests_day},
                    "errors": {"lastHour": a.errors_hour, "lastDay": a.errors_day},
                    "lastError": a.last_error.as_ref().map(|e| json!({
                        "requestId": e.request_id,
                        "at": time(e.at),
                        "status": e.status,
                        "scimType": e.scim_type,
                        "detail": e.detail,
                    })),
                })
            })
            .collect();
        Ok(wire::json(
            StatusCode::OK,
            &json!({
                "silentAfterSeconds": silent_after,
                "connections": connections,
            }),
        ))
    }

    async fn tokens(&self, ctx: &Ctx) -> Result<Response<Body>, ApiError> {
        let tokens = self
            .timed("admin_tokens", self.store.list_tokens(&ctx.tenant))
            .await
            .map_err(|e| self.store_error(ctx, e))?;
        Ok(wire::json(
            StatusCode::OK,
            &json!({"tokens": tokens.iter().map(token).collect::<Vec<_>>()}),
        ))
    }

    async fn issue(&self, ctx: &Ctx, body: Value) -> Result<Response<Body>, ApiError> {
        let mut fields = wire::Fields::new(body, "the token")?;
        let label = fields
            .text("label", MAX_LABEL_CHARS)?
            .filter(|l| !l.trim().is_empty())
            .ok_or_else(|| ApiError::invalid_value("label: required, a non-empty text"))?;
        let scope_name = fields.text("scope", 20)?.unwrap_or_else(|| "scim".into());
        fields.finish()?;
        let scope = TokenScope::from_name(&scope_name).ok_or_else(|| {
            ApiError::invalid_value(format!(
                "scope: {scope_name:?} is not one of scim, workplace, admin"
            ))
        })?;
        let issued = self
            .timed(
                "admin_issue_token",
                self.store.issue_token(&ctx.tenant, &label, scope),
            )
            .await
            .map_err(|e| self.store_error(ctx, e))?;
        tracing::info!(request_id = %ctx.request_id, token_id = %issued.id, by = %ctx.token_id, "token issued through the admin API");
        Ok(wire::json(
            StatusCode::CREATED,
            &json!({
                "id": issued.id,
                "label": label,
                "scope": scope.as_str(),
                "secret": issued.secret,
            }),
        ))
    }

    async fn revoke(&self, ctx: &Ctx, raw: &str) -> Result<Response<Body>, ApiError> {
        let id = wire::path_id("token", raw)?;
        let revoked = self
            .timed(
                "admin_revoke_token",
                self.store.revoke_token(&ctx.tenant, &id),
            )
            .await
            .map_err(|e| self.store_error(ctx, e))?;
        if !revoked {
            return Err(ApiError::not_found(format!(
                "no live token {id:?} in this tenant (unknown, or already revoked)"
            )));
        }
        tracing::info!(request_id = %ctx.request_id, token_id = %id, by = %ctx.token_id, "token revoked through the admin API");
        Ok(crate::response::empty(StatusCode::NO_CONTENT))
    }

    async fn schemas(&self, ctx: &Ctx) -> Result<Response<Body>, ApiError> {
        let schemas = self
            .timed("admin_schemas", self.store.tenant_schemas(&ctx.tenant))
            .await
            .map_err(|e| self.store_error(ctx, e))?;
        Ok(wire::json(
            StatusCode::OK,
            &json!({"version": schemas.version, "documents": schemas.documents}),
        ))
    }

    async fn put_schemas(&self, ctx: &Ctx, body: Value) -> Result<Response<Body>, ApiError> {
        let mut fields = wire::Fields::new(body, "the schemas")?;
        let documents = fields.take("documents").ok_or_else(|| {
            ApiError::invalid_value("documents: required, an array of schema documents (RFC 7643 section 7); [] removes them")
        })?;
        fields.finish()?;
        let Value::Array(documents) = documents else {
            return Err(ApiError::invalid_value(
                "documents: must be an array of schema documents (RFC 7643 section 7)",
            ));
        };
        let schemas = self
            .timed(
                "admin_set_schemas",
                self.store.set_tenant_schemas(&ctx.tenant, documents),
            )
            .await
            .map_err(|e| self.store_error(ctx, e))?;
        Ok(wire::json(
            StatusCode::OK,
            &json!({"version": schemas.version, "documents": schemas.documents}),
        ))
    }
}
