//! The SCIM protocol endpoints (RFC 7644) of one SCIM base, as a tower [`Service`]:
//! [`ScimService`]. Resources (`resources`), list and search (`list`), `/Bulk` (`bulk`),
//! discovery (`discovery`), and the password hashing the User resource needs (`password`).
//!
//! The service authenticates each request with the embedder's [`Authenticator`], reads and
//! validates it, calls the [`Store`], and renders the answer with links under its base URL.
//! scimd's `Server` mounts it under `/t/{tenant}/scim/v2` with the token authenticator; an
//! embedder mounts it wherever it likes (e.g. axum's `Router::nest_service`).

pub(crate) mod bulk;
pub(crate) mod discovery;
pub(crate) mod list;
pub(crate) mod password;
pub(crate) mod resources;

use crate::api::{self, Api};
use crate::auth::{Authenticator, TokenAuthenticator};
use crate::config::ServerConfig;
use crate::context::{Ctx, RequestIds};
use crate::error::{ApiError, ServerError};
use crate::metrics::Metrics;
use crate::request::{self, QueryParams, RequestBody};
use crate::response::Body;
use http::{Method, Request, Response, StatusCode};
use scim_schema::{
    AuthenticationScheme, BulkConfig, FilterConfig, SchemaRegistry, ServiceProviderConfig,
    Supported,
};
use scim_store::{ResourceKind, Store, StoreError, TokenScope};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_service::Service;

/// Serves one SCIM base (RFC 7644): `/Users`, `/Groups`, `/.search`, `/Bulk`, `/Schemas`,
/// `/ResourceTypes`, `/ServiceProviderConfig` and `/Me` (501), at the paths of the requests
/// it gets (mounted under a prefix that the router strips, as axum's `nest_service` does).
///
/// A tower [`Service`] over any request body (`http_body::Body`), cheap to clone (one `Arc`),
/// whose responses have a [`Body`] axum and hyper accept. Every failure is an RFC 7644 section
/// 3.12 error response, never a service error.
///
/// ```no_run
/// # async fn mount(store: std::sync::Arc<dyn scim_store::Store>) -> Result<(), scim_server::ServerError> {
/// use scim_server::{ScimService, TokenAuthenticator};
///
/// let scim = ScimService::new(
///     store.clone(),
///     TokenAuthenticator::new(store),
///     "https://example.com/scim/v2",
/// )?;
/// # let _ = scim;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct ScimService {
    state: Arc<ScimState>,
}

impl std::fmt::Debug for ScimService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScimService")
            .field("base_url", &self.state.base_url)
            .finish_non_exhaustive()
    }
}

impl ScimService {
    /// A SCIM service over `store`, with the core User, Group and Enterprise User schemas and
    /// the default limits ([`ServerConfig::default`]), whose links (`meta.location`,
    /// `Location`, `$ref`) start with `base_url`, e.g. `https://example.com/scim/v2`.
    pub fn new(
        store: Arc<dyn Store>,
        authenticator: impl Authenticator,
        base_url: impl Into<String>,
    ) -> Result<ScimService, ServerError> {
        ScimService::with_config(
            store,
            authenticator,
            base_url,
            SchemaRegistry::new(),
            ServerConfig::default(),
        )
    }

    /// A SCIM service serving the resource types of `registry` (which must define User and
    /// Group) with `config`'s protocol limits (`max_results`, `default_count`, the bulk
    /// limits, `strict_filters`, the PATCH and validation options, and
    /// `limits.max_body_bytes`); the listener settings are `Server`'s and unused here.
    pub fn with_config(
        store: Arc<dyn Store>,
        authenticator: impl Authenticator,
        base_url: impl Into<String>,
        registry: SchemaRegistry,
        config: ServerConfig,
    ) -> Result<ScimService, ServerError> {
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        let state = ScimState::new(
            store,
            registry,
            config,
            Arc::new(authenticator),
            Arc::new(Metrics::default()),
            Some(base_url),
        )?;
        Ok(ScimService {
            state: Arc::new(state),
        })
    }

    /// The service's metrics (store calls and requests), for an embedder's `/metrics`.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.state.metrics
    }
}

impl<B> Service<Request<B>> for ScimService
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let state = self.state.clone();
        Box::pin(async move { Ok(api::serve(&*state, req).await) })
    }
}

/// Everything the SCIM handlers need, shared by all requests.
pub(crate) struct ScimState {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: ServerConfig,
    pub(crate) spc: ServiceProviderConfig,
    pub(crate) metrics: Arc<Metrics>,
    /// Hashes passwords a bounded number at a time (see `password`).
    pub(crate) hasher: password::Hasher,
    authenticator: Arc<dyn Authenticator>,
    /// The base URL of the links, when fixed (a mounted service); scimd's `Server` gives one
    /// per request instead, from the host and the tenant.
    base_url: Option<String>,
    request_ids: RequestIds,
    /// Where scimd's `Server` records each authenticated request (the provisioning log); a
    /// mounted service has none.
    pub(crate) request_log: Option<Arc<crate::provisioning::RequestLogSink>>,
}

impl ScimState {
    /// Builds the state; fails if `registry` lacks the User or Group resource type.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        registry: SchemaRegistry,
        config: ServerConfig,
        authenticator: Arc<dyn Authenticator>,
        metrics: Arc<Metrics>,
        base_url: Option<String>,
    ) -> Result<Self, ServerError> {
        // What is served is the store's: its schemas with each tenant's own
        // (`Store::tenant_schemas`); `registry` is the one the store was built with.
        for kind in ["User", "Group"] {
            if registry.resource_schema(kind).is_none() {
                return Err(ServerError::Schema(format!(
                    "the schema registry has no {kind} resource type"
                )));
            }
        }
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
        Ok(ScimState {
            store,
            config,
            spc,
            metrics,
            // One hash per core at most: argon2 is pure CPU, so more at once only queue in
            // the kernel, while the async workers that serve every other request starve.
            hasher: password::Hasher::new(
                std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
            ),
            authenticator,
            base_url,
            request_ids: RequestIds::new(),
            request_log: None,
        })
    }

    /// scimd's state: the token authenticator over the same store, links per request.
    pub(crate) fn for_server(
        store: Arc<dyn Store>,
        registry: SchemaRegistry,
        config: ServerConfig,
        metrics: Arc<Metrics>,
    ) -> Result<Self, ServerError> {
        let authenticator = TokenAuthenticator::with_metrics(store.clone(), metrics.clone());
        ScimState::new(
            store,
            registry,
            config,
            Arc::new(authenticator),
            metrics,
            None,
        )
    }

    /// Runs a store call, recording its latency and failures under `operation`.
    pub(crate) async fn timed<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.metrics.timed(operation, call).await
    }

    /// One authenticated SCIM request.
    async fn run<B: RequestBody>(
        &self,
        req: Request<B>,
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

    async fn json_body<B: RequestBody>(
        &self,
        req: Request<B>,
        limit: usize,
        what: &str,
    ) -> Result<serde_json::Value, ApiError> {
        request::check_content_type(req.headers())?;
        let (parts, body) = req.into_parts();
        let bytes = request::read_body(&parts.headers, body, limit, what).await?;
        if let Some(slot) = parts.extensions.get::<crate::provisioning::BodySlot>() {
            slot.keep(&bytes);
        }
        request::parse_json(&bytes)
    }
}

impl Api for ScimState {
    const SCOPE: TokenScope = TokenScope::Scim;
    const WORKPLACE: bool = false;

    fn request_log(&self) -> Option<&Arc<crate::provisioning::RequestLogSink>> {
        self.request_log.as_ref()
    }

    fn request_ids(&self) -> &RequestIds {
        &self.request_ids
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn authenticator(&self) -> &dyn Authenticator {
        &*self.authenticator
    }

    fn store(&self) -> &dyn Store {
        &*self.store
    }

    fn base_url(&self) -> &str {
        self.base_url.as_deref().unwrap_or("")
    }

    fn route(segments: &[&str]) -> &'static str {
        endpoint_of(segments).map_or("other", |e| e.route())
    }

    async fn endpoint<B: RequestBody>(
        &self,
        req: Request<B>,
        ctx: &Ctx,
        segments: &[&str],
        after: &str,
    ) -> Result<Response<Body>, ApiError> {
        self.run(req, ctx, endpoint_of(segments), after).await
    }
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

/// Which discovery document (RFC 7644 section 4).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Discovery<'a> {
    Schemas,
    Schema(&'a str),
    ResourceTypes,
    ResourceType(&'a str),
    ServiceProviderConfig,
}
