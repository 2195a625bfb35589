//! The service: one function from a request to a response, with routing, authentication, the
//! request timeout, metrics and the request log around the endpoint handlers.

use crate::config::ServerConfig;
use crate::error::{ApiError, ServerError, from_store};
use crate::listener::host::HostPolicy;
use crate::metrics::Metrics;
use crate::request::{self, QueryParams};
use crate::response::{self, Body};
use http::{Method, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use scim_schema::{
    AuthenticationScheme, BulkConfig, FilterConfig, ResourceSchema, SchemaRegistry,
    ServiceProviderConfig, Supported,
};
use scim_store::{ResourceKind, StoreError, Tenant, TokenScope, WorkplaceStore, WriteContext};
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Everything a request handler needs, shared by all connections.
pub struct AppState {
    /// The store: SCIM resources and the workplace both (a `WorkplaceStore` is a `Store`).
    pub(crate) store: Arc<dyn WorkplaceStore>,
    pub(crate) registry: SchemaRegistry,
    pub(crate) user: ResourceSchema,
    pub(crate) group: ResourceSchema,
    pub(crate) config: ServerConfig,
    pub(crate) spc: ServiceProviderConfig,
    pub(crate) metrics: Arc<Metrics>,
    /// Hashes passwords a bounded number at a time (see `password`).
    pub(crate) hasher: crate::scim::password::Hasher,
    pub(crate) tls: bool,
    pub(crate) draining: AtomicBool,
    /// Which hosts requests may name; set by `Server::run` from the listener's address before
    /// the first request. Unset, every API request is refused (fail closed).
    pub(crate) hosts: OnceLock<HostPolicy>,
    /// Request ids are this process's random prefix and a counter: unique across restarts
    /// without a system call per request.
    request_prefix: String,
    request_counter: AtomicU64,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("config", &self.config)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// The authenticated caller of one request under `/t/{tenant}/scim/v2` or
/// `/t/{tenant}/workplace/v1`.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    /// The request's id (also in the log and on the change event).
    pub request_id: String,
    /// The tenant the token belongs to (and the URL names).
    pub tenant: Tenant,
    /// The token's label, recorded as the actor of changes.
    pub actor: String,
    /// The token's public id (logged with failed requests; never the secret).
    pub token_id: String,
    /// The tenant's absolute base URL for the token's API, e.g. `https://host/t/acme/scim/v2`
    /// or `https://host/t/acme/workplace/v1`.
    pub base: String,
}

impl Ctx {
    pub(crate) fn write_context(&self) -> WriteContext {
        WriteContext {
            actor: self.actor.clone(),
            request_id: Some(self.request_id.clone()),
        }
    }
}

/// What the request log records besides method, status and latency.
#[derive(Debug, Default)]
pub(crate) struct RequestLog {
    pub route: &'static str,
    /// The tenant the URL names, once checked to be a tenant name (attacker-chosen text is
    /// never logged).
    pub tenant: Option<String>,
    /// The token's id and label, recorded only when the request failed after authentication.
    pub token: Option<(String, String)>,
    /// The request is for the workplace API, whose errors are plain JSON, not SCIM documents.
    pub workplace: bool,
}

/// The resource endpoints of RFC 7644 section 3.2 that this server serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint<'a> {
    Collection(ResourceKind),
    Resource(ResourceKind, &'a str),
    Search(Option<ResourceKind>),
    Bulk,
    Schemas,
    Schema(&'a str),
    ResourceTypes,
    ResourceType(&'a str),
    ServiceProviderConfig,
    Me,
}

impl Endpoint<'_> {
    fn route(&self) -> &'static str {
        match self {
            Endpoint::Collection(ResourceKind::Group) => "/Groups",
            Endpoint::Collection(_) => "/Users",
            Endpoint::Resource(ResourceKind::Group, _) => "/Groups/{id}",
            Endpoint::Resource(_, _) => "/Users/{id}",
            Endpoint::Search(None) => "/.search",
            Endpoint::Search(Some(ResourceKind::Group)) => "/Groups/.search",
            Endpoint::Search(Some(_)) => "/Users/.search",
            Endpoint::Bulk => "/Bulk",
            Endpoint::Schemas => "/Schemas",
            Endpoint::Schema(_) => "/Schemas/{id}",
            Endpoint::ResourceTypes => "/ResourceTypes",
            Endpoint::ResourceType(_) => "/ResourceTypes/{id}",
            Endpoint::ServiceProviderConfig => "/ServiceProviderConfig",
            Endpoint::Me => "/Me",
        }
    }
}

fn kind_of(segment: &str) -> Option<ResourceKind> {
    match segment {
        "Users" => Some(ResourceKind::User),
        "Groups" => Some(ResourceKind::Group),
        _ => None,
    }
}

fn endpoint_of<'a>(segments: &[&'a str]) -> Option<Endpoint<'a>> {
    Some(match segments {
        [".search"] => Endpoint::Search(None),
        ["Bulk"] => Endpoint::Bulk,
        ["Schemas"] => Endpoint::Schemas,
        ["Schemas", id] => Endpoint::Schema(id),
        ["ResourceTypes"] => Endpoint::ResourceTypes,
        ["ResourceTypes", name] => Endpoint::ResourceType(name),
        ["ServiceProviderConfig"] => Endpoint::ServiceProviderConfig,
        ["Me", ..] => Endpoint::Me,
        [collection] => Endpoint::Collection(kind_of(collection)?),
        [collection, ".search"] => Endpoint::Search(Some(kind_of(collection)?)),
        [collection, id] => Endpoint::Resource(kind_of(collection)?, id),
        _ => return None,
    })
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn bounded(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Whether `name` can be a tenant name (`[a-z0-9-]{1,63}`, as the store requires).
fn is_tenant_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl AppState {
    /// Builds the state; fails if `registry` lacks the User or Group resource type.
    pub fn new(
        store: Arc<dyn WorkplaceStore>,
        registry: SchemaRegistry,
        config: ServerConfig,
        tls: bool,
    ) -> Result<Self, ServerError> {
        let user = registry.resource_schema("User").cloned().ok_or_else(|| {
            ServerError::Schema("the schema registry has no User resource type".into())
        })?;
        let group = registry.resource_schema("Group").cloned().ok_or_else(|| {
            ServerError::Schema("the schema registry has no Group resource type".into())
        })?;
        if config.max_results == 0 {
            return Err(ServerError::Config("max_results must be at least 1".into()));
        }
        let spc = ServiceProviderConfig {
            documentation_uri: None,
            patch: Supported::YES,
            bulk: BulkConfig {
                supported: true,
                max_operations: config.bulk_max_operations,
                max_payload_size: config.bulk_max_payload,
            },
            filter: FilterConfig {
                supported: true,
                max_results: config.max_results,
            },
            // Passwords can be set (PUT, PATCH, POST) and are stored hashed: RFC 7643 section 5
            // "changePassword".
            change_password: Supported::YES,
            sort: Supported::YES,
            etag: Supported::YES,
            authentication_schemes: vec![AuthenticationScheme::oauth_bearer_token(true)],
        };
        Ok(AppState {
            store,
            registry,
            user,
            group,
            config,
            spc,
            metrics: Arc::new(Metrics::default()),
            // One hash per core at most: argon2 is pure CPU, so more at once only queue in
            // the kernel, while the async workers that serve every other request starve.
            hasher: crate::scim::password::Hasher::new(
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            ),
            tls,
            draining: AtomicBool::new(false),
            hosts: OnceLock::new(),
            request_prefix: uuid::Uuid::new_v4()
                .simple()
                .to_string()
                .chars()
                .take(12)
                .collect(),
            request_counter: AtomicU64::new(0),
        })
    }

    fn next_request_id(&self) -> String {
        let n = self.request_counter.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n:x}", self.request_prefix)
    }

    /// The server's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Marks the server as shutting down: `/readyz` answers 503 from now on.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub(crate) fn schema(&self, kind: ResourceKind) -> &ResourceSchema {
        match kind {
            ResourceKind::Group => &self.group,
            _ => &self.user,
        }
    }

    /// Checks the host the request names against the policy (421 outside it, 400 when
    /// malformed) and returns the origin links are built from: the public base URL when set,
    /// else the checked host with the listener's scheme. Nothing unchecked is ever reflected.
    fn origin(&self, req: &Request<Incoming>) -> Result<String, ApiError> {
        let Some(policy) = self.hosts.get() else {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is not listening yet",
            ));
        };
        let host = policy.check(req.uri(), req.headers())?;
        match (&self.config.public_base_url, host) {
            (Some(base), _) => Ok(base.trim_end_matches('/').to_owned()),
            (None, Some(host)) => Ok(format!(
                "{}://{host}",
                if self.tls { "https" } else { "http" }
            )),
            // HostPolicy::Any is chosen only with a public base URL.
            (None, None) => Err(ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                "the server has neither a public base URL nor allowed hosts",
            )),
        }
    }

    /// Runs a store call, recording its latency and failures under `operation`.
    pub(crate) async fn timed<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let started = Instant::now();
        let result = call.await;
        let failed = matches!(
            result,
            Err(StoreError::Backend(_) | StoreError::StorageFull(_))
        );
        self.metrics.store(operation, started.elapsed(), failed);
        result
    }

    /// Answers one request from `peer`: never fails, never panics on input; logs one line per
    /// request.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let started = Instant::now();
        let request_id = self.next_request_id();
        let method = req.method().clone();
        // Kept for the log of a failed request: a header value's clone shares its bytes, and
        // the client's address is parsed from X-Forwarded-For only behind a trusted proxy.
        let client = self.client_address(peer.ip(), req.headers());
        let user_agent = req.headers().get(header::USER_AGENT).cloned();
        let mut log = RequestLog {
            route: "other",
            tenant: None,
            token: None,
            workplace: false,
        };
        let timeout = self.config.limits.request_timeout;
        let outcome =
            tokio::time::timeout(timeout, self.dispatch(req, &request_id, &mut log)).await;
        let error_response = |error: ApiError| {
            if log.workplace {
                error.into_workplace_response()
            } else {
                error.into_response()
            }
        };
        let (mut response, failure) = match outcome {
            Ok(Ok(response)) => (response, None),
            Ok(Err(error)) => {
                // What the log says of a failure: allocated only for error answers.
                let failure = (error.scim_type, bounded(&error.detail, 300).to_owned());
                (error_response(error), Some(failure))
            }
            Err(_) => {
                let error = ApiError::unavailable(
                    format!(
                        "the request took longer than the server's limit of {} ms",
                        timeout.as_millis()
                    ),
                    1,
                );
                let failure = (error.scim_type, error.detail.clone());
                (error_response(error), Some(failure))
            }
        };
        if let Ok(value) = http::HeaderValue::from_str(&request_id) {
            response.headers_mut().insert("x-request-id", value);
        }
        let status = response.status().as_u16();
        let latency = started.elapsed();
        self.metrics.request(log.route, &method, status, latency);
        let latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        // Nothing the client chose reaches the log line unchecked: the route is a template, the
        // tenant a checked tenant name, the method an HTTP token (hyper refuses spaces and
        // control characters in it), the client an address the server parsed; the detail and
        // the User-Agent are bounded and escaped by the formatter, so a request cannot forge or
        // split log lines. The path itself is never logged: it may carry ids and personal data.
        match failure {
            None => tracing::info!(
                request_id = %request_id,
                tenant = log.tenant.as_deref().unwrap_or("-"),
                method = %method,
                route = log.route,
                status,
                latency_us,
                "request"
            ),
            Some((scim_type, detail)) => {
                let (token_id, token_label) = log
                    .token
                    .as_ref()
                    .map_or(("-", "-"), |(id, label)| (id.as_str(), label.as_str()));
                let user_agent = user_agent
                    .as_ref()
                    .map_or("-", |v| bounded(v.to_str().unwrap_or("(not text)"), 200));
                tracing::info!(
                    request_id = %request_id,
                    tenant = log.tenant.as_deref().unwrap_or("-"),
                    method = %method,
                    route = log.route,
                    status,
                    latency_us,
                    scim_type = scim_type.unwrap_or("-"),
                    detail = %detail,
                    token_id,
                    token_label,
                    client = %client,
                    user_agent,
                    "request"
                );
            }
        }
        response
    }

    /// The client's address: the peer's, or behind a trusted proxy the right-most address of
    /// `X-Forwarded-For` that is not itself a trusted proxy (the left of it is the client's
    /// word, which anyone can forge). Allocates nothing.
    fn client_address(&self, peer: IpAddr, headers: &http::HeaderMap) -> IpAddr {
        let trusted = |ip: IpAddr| self.config.trusted_proxies.iter().any(|n| n.contains(ip));
        if !trusted(peer) {
            return peer;
        }
        let mut client = peer;
        for value in headers.get_all("x-forwarded-for").iter().rev() {
            let Ok(text) = value.to_str() else {
                return client;
            };
            for hop in text.rsplit(',') {
                let Ok(ip) = hop.trim().parse::<IpAddr>() else {
                    // A chain the proxies did not write: stop at the last hop they vouch for.
                    return client;
                };
                client = ip;
                if !trusted(ip) {
                    return ip;
                }
            }
        }
        client
    }

    async fn dispatch(
        &self,
        req: Request<Incoming>,
        request_id: &str,
        log: &mut RequestLog,
    ) -> Result<Response<Body>, ApiError> {
        let path = req.uri().path().to_owned();
        match path.as_str() {
            "/healthz" => {
                log.route = "/healthz";
                return Ok(response::text(
                    StatusCode::OK,
                    "text/plain; charset=utf-8",
                    "ok\n".into(),
                ));
            }
            "/readyz" => {
                log.route = "/readyz";
                return Ok(self.readiness().await);
            }
            "/metrics" => {
                log.route = "/metrics";
                return Ok(response::text(
                    StatusCode::OK,
                    "text/plain; version=0.0.4; charset=utf-8",
                    self.metrics.render(),
                ));
            }
            _ => {}
        }
        // Every request but the probes above names a host the server answers for, checked
        // before authentication and routing: the probes reflect nothing, and Kubernetes and
        // Prometheus reach them by the pod's address.
        log.workplace = path
            .strip_prefix("/t/")
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(_, rest)| {
                rest.strip_prefix("workplace/v1")
                    .is_some_and(|a| a.is_empty() || a.starts_with('/'))
            });
        let origin = self.origin(&req)?;
        let Some(rest) = path.strip_prefix("/t/") else {
            return Err(ApiError::not_found(format!(
                "no endpoint at {path}; SCIM endpoints are under /t/{{tenant}}/scim/v2"
            )));
        };
        let (tenant_name, rest) = rest.split_once('/').unwrap_or((rest, ""));
        if let Some(after) = rest
            .strip_prefix("workplace/v1")
            .filter(|a| a.is_empty() || a.starts_with('/'))
        {
            log.workplace = true;
            if !is_tenant_name(tenant_name) {
                return Err(ApiError::not_found(format!(
                    "{tenant_name:?} is not a tenant name"
                )));
            }
            log.tenant = Some(tenant_name.to_owned());
            let after = after.to_owned();
            return self
                .workplace(req, tenant_name, &after, request_id, &origin, log)
                .await;
        }
        let Some(after) = rest
            .strip_prefix("scim/v2")
            .filter(|a| a.is_empty() || a.starts_with('/'))
        else {
            return Err(ApiError::not_found(format!(
                "no endpoint at {path}; the SCIM base is /t/{tenant_name}/scim/v2 and the workplace API's /t/{tenant_name}/workplace/v1"
            )));
        };
        if !is_tenant_name(tenant_name) {
            return Err(ApiError::not_found(format!(
                "{tenant_name:?} is not a tenant name"
            )));
        }
        log.tenant = Some(tenant_name.to_owned());
        let segments: Vec<&str> = after.split('/').filter(|s| !s.is_empty()).collect();
        let endpoint = endpoint_of(&segments);
        log.route = endpoint.map_or("other", |e| e.route());

        let ctx = self
            .authenticate(&req, tenant_name, request_id, TokenScope::Scim, &origin)
            .await?;
        let result = self.scim(req, &ctx, endpoint, after).await;
        if result.is_err() {
            log.token = Some((ctx.token_id.clone(), ctx.actor.clone()));
        }
        result
    }

    /// One authenticated SCIM request.
    async fn scim(
        &self,
        req: Request<Incoming>,
        ctx: &Ctx,
        endpoint: Option<Endpoint<'_>>,
        after: &str,
    ) -> Result<Response<Body>, ApiError> {
        let Some(endpoint) = endpoint else {
            return Err(ApiError::not_found(format!(
                "no SCIM endpoint at {after:?} (endpoints: /Users, /Groups, /.search, /Bulk, /Schemas, /ResourceTypes, /ServiceProviderConfig, /Me)"
            )));
        };
        let method = req.method().clone();
        let query = QueryParams::parse(req.uri().query())?;
        match (endpoint, &method) {
            (Endpoint::Collection(kind), &Method::GET) => self.list(ctx, kind, &query).await,
            (Endpoint::Collection(kind), &Method::POST) => {
                let body = self
                    .json_body(req, self.config.limits.max_body_bytes, "the request body")
                    .await?;
                self.http_create(ctx, kind, body, &query).await
            }
            (Endpoint::Collection(_), _) => Err(ApiError::method_not_allowed(&method, "GET, POST")),
            (Endpoint::Resource(kind, id), &Method::GET) => {
                self.http_get(ctx, kind, id, &query, req.headers()).await
            }
            (Endpoint::Resource(kind, id), &Method::PUT) => {
                let headers = req.headers().clone();
                let body = self
                    .json_body(req, self.config.limits.max_body_bytes, "the request body")
                    .await?;
                self.http_replace(ctx, kind, id, body, &query, &headers)
                    .await
            }
            (Endpoint::Resource(kind, id), &Method::PATCH) => {
                let headers = req.headers().clone();
                let body = self
                    .json_body(req, self.config.limits.max_body_bytes, "the request body")
                    .await?;
                self.http_patch(ctx, kind, id, body, &query, &headers).await
            }
            (Endpoint::Resource(kind, id), &Method::DELETE) => {
                self.http_delete(ctx, kind, id, req.headers()).await
            }
            (Endpoint::Resource(..), _) => Err(ApiError::method_not_allowed(
                &method,
                "GET, PUT, PATCH, DELETE",
            )),
            (Endpoint::Search(kind), &Method::POST) => {
                let body = self
                    .json_body(req, self.config.limits.max_body_bytes, "the request body")
                    .await?;
                self.search(ctx, kind, &body).await
            }
            (Endpoint::Search(_), _) => Err(ApiError::method_not_allowed(&method, "POST")),
            (Endpoint::Bulk, &Method::POST) => {
                let limit = usize::try_from(self.config.bulk_max_payload).unwrap_or(usize::MAX);
                let body = self
                    .json_body(req, limit, "the bulk request (maxPayloadSize)")
                    .await?;
                self.bulk(ctx, body).await
            }
            (Endpoint::Bulk, _) => Err(ApiError::method_not_allowed(&method, "POST")),
            (Endpoint::Me, _) => Err(ApiError::new(
                StatusCode::NOT_IMPLEMENTED,
                "/Me is not implemented: bearer tokens belong to a tenant's provisioning client, not to a user (RFC 7644 section 3.11)",
            )),
            (Endpoint::Schemas, &Method::GET) => self.discovery(ctx, &query, Discovery::Schemas),
            (Endpoint::Schema(id), &Method::GET) => {
                self.discovery(ctx, &query, Discovery::Schema(id))
            }
            (Endpoint::ResourceTypes, &Method::GET) => {
                self.discovery(ctx, &query, Discovery::ResourceTypes)
            }
            (Endpoint::ResourceType(name), &Method::GET) => {
                self.discovery(ctx, &query, Discovery::ResourceType(name))
            }
            (Endpoint::ServiceProviderConfig, &Method::GET) => {
                self.discovery(ctx, &query, Discovery::ServiceProviderConfig)
            }
            (
                Endpoint::Schemas
                | Endpoint::Schema(_)
                | Endpoint::ResourceTypes
                | Endpoint::ResourceType(_)
                | Endpoint::ServiceProviderConfig,
                _,
            ) => Err(ApiError::method_not_allowed(&method, "GET")),
        }
    }

    async fn readiness(&self) -> Response<Body> {
        if self.draining.load(Ordering::SeqCst) {
            return response::text(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain; charset=utf-8",
                "shutting down\n".into(),
            );
        }
        // A store that takes longer than this to answer a read and an empty write is not
        // ready: requests would queue behind it.
        const PROBE_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);
        let probe = tokio::time::timeout(
            PROBE_LIMIT,
            self.timed("check_ready", self.store.check_ready()),
        )
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::Backend(format!(
                "the store did not answer within {PROBE_LIMIT:?}"
            )))
        });
        match probe {
            Ok(()) => response::text(
                StatusCode::OK,
                "text/plain; charset=utf-8",
                "ready\n".into(),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "readiness probe: store unavailable");
                response::text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "text/plain; charset=utf-8",
                    "store unavailable\n".into(),
                )
            }
        }
    }

    /// Checks the bearer token (RFC 6750 section 2.1) against the store on every request, so a
    /// revocation takes effect at once. Every failure gets the same answer, so that nobody
    /// learns which tenants exist. A valid token of the tenant issued for the other API
    /// (`scope`) is refused with 403 (RFC 6750 section 3.1 `insufficient_scope`): its holder
    /// already knows the tenant exists, and learns only that the token does not reach here.
    pub(crate) async fn authenticate(
        &self,
        req: &Request<Incoming>,
        tenant_name: &str,
        request_id: &str,
        scope: TokenScope,
        origin: &str,
    ) -> Result<Ctx, ApiError> {
        let Some(value) = req.headers().get(header::AUTHORIZATION) else {
            return Err(ApiError::unauthorized(
                "authentication required: send Authorization: Bearer <token>",
            ));
        };
        let text = value.to_str().unwrap_or("");
        let secret = match text.split_once(' ') {
            Some((scheme, token))
                if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
            {
                token.trim()
            }
            _ => {
                return Err(ApiError::unauthorized(
                    "the Authorization header must be: Bearer <token>",
                ));
            }
        };
        let found = self
            .timed("authenticate", self.store.authenticate(secret))
            .await
            .map_err(|e| from_store(e, request_id))?;
        match found {
            Some((tenant, token)) if tenant.name == tenant_name && token.scope != scope => {
                Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "this token has scope {:?}, and these endpoints need a token of scope {:?} (scimd token issue --tenant {} --scope {})",
                        token.scope.as_str(),
                        scope.as_str(),
                        tenant.name,
                        scope.as_str()
                    ),
                ))
            }
            Some((tenant, token)) if tenant.name == tenant_name => {
                let api = match scope {
                    TokenScope::Workplace => "workplace/v1",
                    _ => "scim/v2",
                };
                let base = format!("{origin}/t/{}/{api}", tenant.name);
                Ok(Ctx {
                    request_id: request_id.to_owned(),
                    tenant,
                    actor: token.label,
                    token_id: token.id,
                    base,
                })
            }
            _ => Err(ApiError::unauthorized(format!(
                "the bearer token is not valid for tenant {tenant_name:?} (unknown, revoked, or issued for another tenant)"
            ))),
        }
    }

    async fn json_body(
        &self,
        req: Request<Incoming>,
        limit: usize,
        what: &str,
    ) -> Result<serde_json::Value, ApiError> {
        request::check_content_type(req.headers())?;
        let (parts, body) = req.into_parts();
        let bytes = request::read_body(&parts.headers, body, limit, what).await?;
        request::parse_json(&bytes)
    }
}

/// Which discovery document (RFC 7644 section 4).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Discovery<'a> {
    Schemas,
    Schema(&'a str),
    ResourceTypes,
    ResourceType(&'a str),
    ServiceProviderConfig,
}
