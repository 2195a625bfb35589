//! The workplace API (issue 7): JSON over HTTP under `/t/{tenant}/workplace/v1`, for the
//! tenant's workplace administrators and booking front-ends, with bearer tokens of scope
//! `workplace` (a SCIM token is refused here with 403, and a workplace token on the SCIM
//! endpoints likewise, so an identity provider's credentials cannot change policy).
//!
//! Like the SCIM endpoints, this module only speaks HTTP: every decision, transaction and
//! cascade is the [`WorkplaceStore`]'s. It reads the request, reads the clock (the store takes
//! `now` as a parameter), calls the store with the request's id in the [`WriteContext`] (so
//! the feed and the audit log show which request did what), and renders the answer.
//!
//! | endpoint | methods |
//! |---|---|
//! | `/sites`, `/floors`, `/neighbourhoods`, `/resources` | GET (all of a kind) |
//! | `/sites/{id}`... | GET, PUT (create or replace, `If-Match`, `If-None-Match: *`), DELETE (`If-Match`) |
//! | `/policies` | GET, PUT (`If-Match`) |
//! | `/policies/preview` | POST (the dry run of a PUT) |
//! | `/policies/rules/{id}` | GET, PUT, DELETE (read-modify-write of the set) |
//! | `/evaluate` | POST: a decision with its explanation |
//! | `/bookings` | GET (filtered, paged), POST (book: 201, 403 refused, 409 full) |
//! | `/bookings/{id}` | GET |
//! | `/bookings/{id}/cancel`, `/bookings/{id}/check-in` | POST |
//! | `/assignments` | GET, POST |
//! | `/assignments/{id}` | GET, DELETE (release) |
//! | `/events` | GET: the ordered feed, `after` a cursor |
//! | `/audit` | GET: the feed narrowed by person, subject, id, request, time |
//! | `/report` | GET: licensed seats and bookings per status |
//!
//! Errors are `{"status": "404", "error": "notFound", "detail": "..."}` (see
//! [`ApiError::to_workplace_json`]); people are SCIM Users and are written only through SCIM.
//! The reference with curl examples is `docs/workplace-api.md`.

pub(crate) mod wire;

use crate::api::{self, Api, OpenApi};
use crate::auth::{Authenticator, TokenAuthenticator};
use crate::context::{Ctx, RequestIds};
use crate::error::ServerError;
use crate::error::{ApiError, from_store};
use crate::metrics::Metrics;
use crate::request::RequestBody;
use crate::request::{self, EtagCondition, QueryParams};
use crate::response::{self, Body};
use http::{HeaderMap, Method, Request, Response, StatusCode, header};
use scim_store::workplace::plan::STATUS_NAMES;
use scim_store::workplace::{
    AuditFilter, BookingFilter, BookingOutcome, NewBooking, PlaceChange, PlaceKind, PlaceRecord,
    WorkplaceConfig,
};
use scim_store::{StoreError, TokenScope, WorkplaceStore, WriteContext};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower_service::Service;
use workplace_policy::{Actor, CascadeSettings, PolicySet, Preview, Timestamp};

/// How many times a read-modify-write of the policies is tried when another write moves the
/// version in between (the precondition then fails with 412 and the change is re-applied to
/// the new set).
const POLICY_ATTEMPTS: usize = 3;

/// The OpenAPI 3.1 description of this API, served at `openapi.json` (no token needed) and
/// checked against the router by `tests/openapi.rs`.
pub const OPENAPI: &str = include_str!("../../openapi/workplace.json");

/// The reason recorded when an administrator cancels a booking without giving one.
const DEFAULT_CANCEL_REASON: &str = "cancelled by an administrator";

/// The endpoints under `/t/{tenant}/workplace/v1`. Ids are raw path segments, decoded by the
/// handlers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Endpoint<'a> {
    Places(PlaceKind),
    Place(PlaceKind, &'a str),
    Policies,
    PolicyPreview,
    Rule(&'a str),
    Evaluate,
    Bookings,
    Booking(&'a str),
    Cancel(&'a str),
    CheckIn(&'a str),
    Assignments,
    Assignment(&'a str),
    Events,
    Audit,
    Report,
}

impl Endpoint<'_> {
    /// The route template, a metrics label.
    fn route(&self) -> &'static str {
        match self {
            Endpoint::Places(PlaceKind::Site) => "/workplace/v1/sites",
            Endpoint::Places(PlaceKind::Floor) => "/workplace/v1/floors",
            Endpoint::Places(PlaceKind::Neighbourhood) => "/workplace/v1/neighbourhoods",
            Endpoint::Places(PlaceKind::Resource) => "/workplace/v1/resources",
            Endpoint::Place(PlaceKind::Site, _) => "/workplace/v1/sites/{id}",
            Endpoint::Place(PlaceKind::Floor, _) => "/workplace/v1/floors/{id}",
            Endpoint::Place(PlaceKind::Neighbourhood, _) => "/workplace/v1/neighbourhoods/{id}",
            Endpoint::Place(PlaceKind::Resource, _) => "/workplace/v1/resources/{id}",
            Endpoint::Policies => "/workplace/v1/policies",
            Endpoint::PolicyPreview => "/workplace/v1/policies/preview",
            Endpoint::Rule(_) => "/workplace/v1/policies/rules/{id}",
            Endpoint::Evaluate => "/workplace/v1/evaluate",
            Endpoint::Bookings => "/workplace/v1/bookings",
            Endpoint::Booking(_) => "/workplace/v1/bookings/{id}",
            Endpoint::Cancel(_) => "/workplace/v1/bookings/{id}/cancel",
            Endpoint::CheckIn(_) => "/workplace/v1/bookings/{id}/check-in",
            Endpoint::Assignments => "/workplace/v1/assignments",
            Endpoint::Assignment(_) => "/workplace/v1/assignments/{id}",
            Endpoint::Events => "/workplace/v1/events",
            Endpoint::Audit => "/workplace/v1/audit",
            Endpoint::Report => "/workplace/v1/report",
        }
    }
}

/// The catalog kind whose collection is `segment` (`sites`...).
fn place_kind(segment: &str) -> Option<PlaceKind> {
    match segment {
        "sites" => Some(PlaceKind::Site),
        "floors" => Some(PlaceKind::Floor),
        "neighbourhoods" => Some(PlaceKind::Neighbourhood),
        "resources" => Some(PlaceKind::Resource),
        _ => None,
    }
}

fn endpoint_of<'a>(segments: &[&'a str]) -> Option<Endpoint<'a>> {
    Some(match segments {
        ["policies"] => Endpoint::Policies,
        ["policies", "preview"] => Endpoint::PolicyPreview,
        ["policies", "rules", id] => Endpoint::Rule(id),
        ["evaluate"] => Endpoint::Evaluate,
        ["bookings"] => Endpoint::Bookings,
        ["bookings", id] => Endpoint::Booking(id),
        ["bookings", id, "cancel"] => Endpoint::Cancel(id),
        ["bookings", id, "check-in"] => Endpoint::CheckIn(id),
        ["assignments"] => Endpoint::Assignments,
        ["assignments", id] => Endpoint::Assignment(id),
        ["events"] => Endpoint::Events,
        ["audit"] => Endpoint::Audit,
        ["report"] => Endpoint::Report,
        [collection] => Endpoint::Places(place_kind(collection)?),
        [collection, id] => Endpoint::Place(place_kind(collection)?, id),
        _ => return None,
    })
}

/// The collection segment of a catalog kind.
fn collection(kind: PlaceKind) -> &'static str {
    match kind {
        PlaceKind::Site => "sites",
        PlaceKind::Floor => "floors",
        PlaceKind::Neighbourhood => "neighbourhoods",
        PlaceKind::Resource => "resources",
    }
}

/// The server's clock, in Unix seconds: the store decides against the `now` it is given.
fn now() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A 200 (or `status`) answer carrying an entity tag.
fn tagged(status: StatusCode, body: &Value, version: u64) -> Response<Body> {
    response::with_etag(wire::json(status, body), &wire::etag(version))
}

/// `If-None-Match` on a GET (RFC 9110 section 13.1.2): 304 when the client's copy is current.
fn not_modified(headers: &HeaderMap, version: u64) -> Result<Option<Response<Body>>, ApiError> {
    match request::etag_condition(headers, header::IF_NONE_MATCH)? {
        Some(condition) if condition.matches(version) => {
            let answer = response::empty(StatusCode::NOT_MODIFIED);
            Ok(Some(response::with_etag(answer, &wire::etag(version))))
        }
        _ => Ok(None),
    }
}

fn precondition_failed(what: &str, version: u64) -> ApiError {
    ApiError::precondition_failed(format!(
        "If-Match does not match: {what} is at {}",
        wire::etag(version)
    ))
}

/// The workplace API of one tenant base (see the module documentation), as a tower
/// [`Service`] over any request body, like [`crate::ScimService`]: plain JSON, credentials of
/// scope `workplace` from the embedder's [`Authenticator`], every decision the
/// [`WorkplaceStore`]'s.
#[derive(Clone)]
pub struct WorkplaceService {
    state: Arc<WorkplaceState>,
}

impl std::fmt::Debug for WorkplaceService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkplaceService")
            .field("base_url", &self.state.base_url)
            .finish_non_exhaustive()
    }
}

impl WorkplaceService {
    /// The workplace API over `store`, whose links start with `base_url` (e.g.
    /// `https://example.com/workplace/v1`), reading bodies of at most `max_body_bytes`.
    pub fn new(
        store: Arc<dyn WorkplaceStore>,
        authenticator: impl Authenticator,
        base_url: impl Into<String>,
        max_body_bytes: usize,
    ) -> Result<WorkplaceService, ServerError> {
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        Ok(WorkplaceService {
            state: Arc::new(WorkplaceState {
                store,
                metrics: Arc::new(Metrics::default()),
                max_body_bytes,
                authenticator: Arc::new(authenticator),
                base_url: Some(base_url),
                request_ids: RequestIds::new(),
            }),
        })
    }

    /// The service's metrics.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.state.metrics
    }
}

impl<B> Service<Request<B>> for WorkplaceService
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

/// What the workplace handlers need, shared by all requests.
pub(crate) struct WorkplaceState {
    store: Arc<dyn WorkplaceStore>,
    metrics: Arc<Metrics>,
    max_body_bytes: usize,
    authenticator: Arc<dyn Authenticator>,
    /// The base URL of the links, when fixed (a mounted service); scimd's `Server` gives one
    /// per request.
    base_url: Option<String>,
    request_ids: RequestIds,
}

impl WorkplaceState {
    /// scimd's state: the token authenticator over the same store, links per request.
    pub(crate) fn for_server(
        store: Arc<dyn WorkplaceStore>,
        max_body_bytes: usize,
        metrics: Arc<Metrics>,
    ) -> WorkplaceState {
        let authenticator = TokenAuthenticator::with_metrics(store.clone(), metrics.clone());
        WorkplaceState {
            store,
            metrics,
            max_body_bytes,
            authenticator: Arc::new(authenticator),
            base_url: None,
            request_ids: RequestIds::new(),
        }
    }

    /// Runs a store call, recording its latency and failures under `operation`.
    pub(crate) async fn timed<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.metrics.timed(operation, call).await
    }

    /// One authenticated workplace request.
    async fn workplace_endpoint<B: RequestBody>(
        &self,
        req: Request<B>,
        ctx: &Ctx,
        endpoint: Option<Endpoint<'_>>,
        after: &str,
    ) -> Result<Response<Body>, ApiError> {
        let Some(endpoint) = endpoint else {
            return Err(ApiError::not_found(format!(
                "no workplace endpoint at {after:?} (endpoints: /sites, /floors, /neighbourhoods, /resources, /policies, /policies/preview, /policies/rules/{{id}}, /evaluate, /bookings, /assignments, /events, /audit, /report)"
            )));
        };
        let method = req.method().clone();
        let query = QueryParams::parse(req.uri().query())?;
        let headers = req.headers().clone();
        let call = Call {
            state: self,
            ctx,
            query: &query,
            headers: &headers,
        };
        match (endpoint, &method) {
            (Endpoint::Places(kind), &Method::GET) => call.places(kind).await,
            (Endpoint::Places(_), _) => Err(ApiError::method_not_allowed(&method, "GET")),
            (Endpoint::Place(kind, id), &Method::GET) => call.place(kind, id).await,
            (Endpoint::Place(kind, id), &Method::PUT) => {
                let body = self.workplace_body(req).await?;
                call.put_place(kind, id, body).await
            }
            (Endpoint::Place(kind, id), &Method::DELETE) => call.delete_place(kind, id).await,
            (Endpoint::Place(..), _) => {
                Err(ApiError::method_not_allowed(&method, "GET, PUT, DELETE"))
            }
            (Endpoint::Policies, &Method::GET) => call.policies().await,
            (Endpoint::Policies, &Method::PUT) => {
                let body = self.workplace_body(req).await?;
                call.put_policies(body).await
            }
            (Endpoint::Policies, _) => Err(ApiError::method_not_allowed(&method, "GET, PUT")),
            (Endpoint::PolicyPreview, &Method::POST) => {
                let body = self.workplace_body(req).await?;
                call.preview(body).await
            }
            (Endpoint::PolicyPreview, _) => Err(ApiError::method_not_allowed(&method, "POST")),
            (Endpoint::Rule(id), &Method::GET) => call.rule(id).await,
            (Endpoint::Rule(id), &Method::PUT) => {
                let body = self.workplace_body(req).await?;
                call.put_rule(id, body).await
            }
            (Endpoint::Rule(id), &Method::DELETE) => call.delete_rule(id).await,
            (Endpoint::Rule(_), _) => {
                Err(ApiError::method_not_allowed(&method, "GET, PUT, DELETE"))
            }
            (Endpoint::Evaluate, &Method::POST) => {
                let body = self.workplace_body(req).await?;
                call.evaluate(body).await
            }
            (Endpoint::Evaluate, _) => Err(ApiError::method_not_allowed(&method, "POST")),
            (Endpoint::Bookings, &Method::GET) => call.bookings().await,
            (Endpoint::Bookings, &Method::POST) => {
                let body = self.workplace_body(req).await?;
                call.book(body).await
            }
            (Endpoint::Bookings, _) => Err(ApiError::method_not_allowed(&method, "GET, POST")),
            (Endpoint::Booking(id), &Method::GET) => call.booking(id).await,
            (Endpoint::Booking(_), _) => Err(ApiError::method_not_allowed(&method, "GET")),
            (Endpoint::Cancel(id), &Method::POST) => {
                let body = self.optional_workplace_body(req).await?;
                call.cancel(id, body).await
            }
            (Endpoint::CheckIn(id), &Method::POST) => call.check_in(id).await,
            (Endpoint::Cancel(_) | Endpoint::CheckIn(_), _) => {
                Err(ApiError::method_not_allowed(&method, "POST"))
            }
            (Endpoint::Assignments, &Method::GET) => call.assignments().await,
            (Endpoint::Assignments, &Method::POST) => {
                let body = self.workplace_body(req).await?;
                call.assign(body).await
            }
            (Endpoint::Assignments, _) => Err(ApiError::method_not_allowed(&method, "GET, POST")),
            (Endpoint::Assignment(id), &Method::GET) => call.assignment(id).await,
            (Endpoint::Assignment(id), &Method::DELETE) => call.release(id).await,
            (Endpoint::Assignment(_), _) => {
                Err(ApiError::method_not_allowed(&method, "GET, DELETE"))
            }
            (Endpoint::Events, &Method::GET) => call.events().await,
            (Endpoint::Audit, &Method::GET) => call.audit().await,
            (Endpoint::Report, &Method::GET) => call.report().await,
            (Endpoint::Events | Endpoint::Audit | Endpoint::Report, _) => {
                Err(ApiError::method_not_allowed(&method, "GET"))
            }
        }
    }

    /// A JSON request body, within the server's body-size limit.
    async fn workplace_body<B: RequestBody>(&self, req: Request<B>) -> Result<Value, ApiError> {
        self.optional_workplace_body(req).await?.ok_or_else(|| {
            ApiError::invalid_syntax("the request body is empty; a JSON object was expected")
        })
    }

    /// A JSON request body, or `None` when the body is empty.
    async fn optional_workplace_body<B: RequestBody>(
        &self,
        req: Request<B>,
    ) -> Result<Option<Value>, ApiError> {
        request::check_content_type(req.headers())?;
        let (parts, body) = req.into_parts();
        let limit = self.max_body_bytes;
        let bytes = request::read_body(&parts.headers, body, limit, "the request body").await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(None);
        }
        request::parse_json(&bytes).map(Some)
    }
}

impl Api for WorkplaceState {
    const SCOPE: TokenScope = TokenScope::Workplace;
    const WORKPLACE: bool = true;

    fn request_ids(&self) -> &RequestIds {
        &self.request_ids
    }

    fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    fn authenticator(&self) -> &dyn Authenticator {
        &*self.authenticator
    }

    fn store(&self) -> &dyn scim_store::Store {
        &*self.store
    }

    fn base_url(&self) -> &str {
        self.base_url.as_deref().unwrap_or("")
    }

    fn openapi() -> Option<&'static OpenApi> {
        static DESCRIPTION: std::sync::OnceLock<Option<OpenApi>> = std::sync::OnceLock::new();
        DESCRIPTION.get_or_init(|| OpenApi::new(OPENAPI)).as_ref()
    }

    fn route(segments: &[&str]) -> &'static str {
        if segments == ["openapi.json"] {
            return "/workplace/v1/openapi.json";
        }
        endpoint_of(segments).map_or("/workplace/v1/other", |e| e.route())
    }

    async fn endpoint<B: RequestBody>(
        &self,
        req: Request<B>,
        ctx: &Ctx,
        segments: &[&str],
        after: &str,
    ) -> Result<Response<Body>, ApiError> {
        self.workplace_endpoint(req, ctx, endpoint_of(segments), after)
            .await
    }
}

/// One authenticated workplace request: what every handler needs.
pub(crate) struct Call<'a> {
    state: &'a WorkplaceState,
    ctx: &'a Ctx,
    query: &'a QueryParams,
    headers: &'a HeaderMap,
}

impl Call<'_> {
    fn store(&self) -> &dyn WorkplaceStore {
        &*self.state.store
    }

    fn write_context(&self) -> WriteContext {
        self.ctx.write_context()
    }

    fn store_error(&self, e: StoreError) -> ApiError {
        from_store(e, &self.ctx.request_id)
    }

    /// The absolute URL of something under the tenant's workplace base.
    fn location(&self, path: &str) -> String {
        format!("{}/{path}", self.ctx.base)
    }

    // ---- the catalog -----------------------------------------------------------------------

    async fn places(&self, kind: PlaceKind) -> Result<Response<Body>, ApiError> {
        let tenant = &self.ctx.tenant;
        let records = self
            .state
            .timed("workplace_places", self.store().places(tenant, kind))
            .await
            .map_err(|e| self.store_error(e))?;
        let items: Vec<Value> = records.iter().map(wire::place).collect();
        Ok(wire::json(
            StatusCode::OK,
            &json!({ collection(kind): items }),
        ))
    }

    async fn current_place(
        &self,
        kind: PlaceKind,
        id: &str,
    ) -> Result<Option<PlaceRecord>, ApiError> {
        self.state
            .timed(
                "workplace_place",
                self.store().place(&self.ctx.tenant, kind, id),
            )
            .await
            .map_err(|e| self.store_error(e))
    }

    fn place_not_found(&self, kind: PlaceKind, id: &str) -> ApiError {
        self.store_error(scim_store::workplace::plan::not_found(kind.as_str(), id))
    }

    async fn place(&self, kind: PlaceKind, raw: &str) -> Result<Response<Body>, ApiError> {
        let id = wire::path_id(kind.as_str(), raw)?;
        let record = self
            .current_place(kind, &id)
            .await?
            .ok_or_else(|| self.place_not_found(kind, &id))?;
        if let Some(response) = not_modified(self.headers, record.version)? {
            return Ok(response);
        }
        Ok(tagged(
            StatusCode::OK,
            &wire::place(&record),
            record.version,
        ))
    }

    /// The version a catalog write is conditioned on: `If-None-Match: *` is "must not exist"
    /// (0); a single `If-Match` tag is passed to the store, which checks it in the write's
    /// transaction; `*` or a list of tags is resolved against the current version first.
    async fn place_precondition(&self, kind: PlaceKind, id: &str) -> Result<Option<u64>, ApiError> {
        let if_match = request::etag_condition(self.headers, header::IF_MATCH)?;
        let if_none_match = request::etag_condition(self.headers, header::IF_NONE_MATCH)?;
        match (if_match, if_none_match) {
            (Some(_), Some(_)) => Err(ApiError::invalid_value(
                "send either If-Match (replace) or If-None-Match: * (create), not both",
            )),
            (None, Some(EtagCondition::Any)) => Ok(Some(0)),
            (None, Some(_)) => Err(ApiError::invalid_value(
                "on PUT, If-None-Match accepts only * (create only if it does not exist)",
            )),
            (None, None) => Ok(None),
            (Some(condition), None) => {
                if let Some(Some(version)) = condition.single_version() {
                    return Ok(Some(version));
                }
                let current = self.current_place(kind, id).await?.ok_or_else(|| {
                    ApiError::precondition_failed(format!(
                        "If-Match: {} {id:?} does not exist",
                        kind.as_str()
                    ))
                })?;
                if !condition.matches(current.version) {
                    return Err(precondition_failed(
                        &format!("{} {id:?}", kind.as_str()),
                        current.version,
                    ));
                }
                Ok(Some(current.version))
            }
        }
    }

    async fn put_place(
        &self,
        kind: PlaceKind,
        raw: &str,
        body: Value,
    ) -> Result<Response<Body>, ApiError> {
        let id = wire::path_id(kind.as_str(), raw)?;
        let expected = self.place_precondition(kind, &id).await?;
        let document = scim_store::workplace::plan::canonical_place(kind, &id, body)
            .map_err(|e| self.store_error(e))?;
        let (record, change) = self
            .state
            .timed(
                "workplace_put_place",
                self.store().put_place(
                    &self.ctx.tenant,
                    kind,
                    document,
                    expected,
                    &self.write_context(),
                ),
            )
            .await
            .map_err(|e| self.store_error(e))?;
        // 201 only when this request created the entry: a replayed identical PUT changes
        // nothing and is a 200 like any replacement (RFC 9110 section 9.3.4).
        let status = if change == PlaceChange::Created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        let answer = tagged(status, &wire::place(&record), record.version);
        let location = self.location(&format!("{}/{}", collection(kind), raw));
        Ok(response::with_location(answer, &location))
    }

    async fn delete_place(&self, kind: PlaceKind, raw: &str) -> Result<Response<Body>, ApiError> {
        let id = wire::path_id(kind.as_str(), raw)?;
        // The store's delete takes no version: an If-Match is checked against the current
        // entry just before (a concurrent replace in between is not detected).
        if let Some(condition) = request::etag_condition(self.headers, header::IF_MATCH)? {
            let current = self
                .current_place(kind, &id)
                .await?
                .ok_or_else(|| self.place_not_found(kind, &id))?;
            if !condition.matches(current.version) {
                return Err(precondition_failed(
                    &format!("{} {id:?}", kind.as_str()),
                    current.version,
                ));
            }
        }
        self.state
            .timed(
                "workplace_delete_place",
                self.store()
                    .delete_place(&self.ctx.tenant, kind, &id, &self.write_context()),
            )
            .await
            .map_err(|e| self.store_error(e))?;
        Ok(response::empty(StatusCode::NO_CONTENT))
    }

    // ---- policies --------------------------------------------------------------------------

    async fn config(&self) -> Result<WorkplaceConfig, ApiError> {
        self.state
            .timed(
                "workplace_config",
                self.store().workplace_config(&self.ctx.tenant),
            )
            .await
            .map_err(|e| self.store_error(e))
    }

    async fn policies(&self) -> Result<Response<Body>, ApiError> {
        let config = self.config().await?;
        if let Some(response) = not_modified(self.headers, config.version)? {
            return Ok(response);
        }
        Ok(tagged(
            StatusCode::OK,
            &wire::config(&config),
            config.version,
        ))
    }

    /// Replaces the policies with what `change` makes of the current configuration, and
    /// applies the change to bookings. With a single `If-Match` tag, the write is conditioned
    /// on it (412 if the configuration moved). Without one (or with `*`), it is a
    /// read-modify-write conditioned on the version read, retried when another write got in
    /// between, so concurrent rule edits never overwrite each other.
    async fn update_policies(
        &self,
        mut change: impl FnMut(&WorkplaceConfig) -> Result<(PolicySet, CascadeSettings), ApiError>,
    ) -> Result<(WorkplaceConfig, Preview), ApiError> {
        let condition = request::etag_condition(self.headers, header::IF_MATCH)?;
        let explicit = condition
            .as_ref()
            .and_then(EtagCondition::single_version)
            .flatten();
        let mut attempt = 0;
        loop {
            attempt += 1;
            let current = self.config().await?;
            if let Some(condition) = &condition
                && !condition.matches(current.version)
            {
                return Err(precondition_failed("the policies", current.version));
            }
            let (policies, settings) = change(&current)?;
            let expected = explicit.unwrap_or(current.version);
            let result = self
                .state
                .timed(
                    "workplace_set_policies",
                    self.store().set_policies(
                        &self.ctx.tenant,
                        policies,
                        settings,
                        Some(expected),
                        &self.write_context(),
                        now(),
                    ),
                )
                .await;
            match result {
                Ok(done) => return Ok(done),
                Err(StoreError::VersionMismatch { .. })
                    if explicit.is_none() && attempt < POLICY_ATTEMPTS =>
                {
                    continue;
                }
                Err(e) => return Err(self.store_error(e)),
            }
        }
    }

    async fn put_policies(&self, body: Value) -> Result<Response<Body>, ApiError> {
        let (policies, settings) = wire::policies_body(body)?;
        let (config, applied) = self
            .update_policies(|current| Ok((policies.clone(), settings.unwrap_or(current.settings))))
            .await?;
        let body = json!({"policies": wire::config(&config), "applied": wire::preview(&applied)});
        Ok(tagged(StatusCode::OK, &body, config.version))
    }

    async fn preview(&self, body: Value) -> Result<Response<Body>, ApiError> {
        let (policies, settings) = wire::policies_body(body)?;
        let settings = match settings {
            Some(settings) => settings,
            None => self.config().await?.settings,
        };
        let preview = self
            .state
            .timed(
                "workplace_preview_policies",
                self.store()
                    .preview_policies(&self.ctx.tenant, &policies, settings, now()),
            )
            .await
            .map_err(|e| self.store_error(e))?;
        Ok(wire::json(StatusCode::OK, &wire::preview(&preview)))
    }

    fn rule_not_found(id: &str) -> ApiError {
        ApiError::not_found(format!("rule {id:?} not found"))
    }

    async fn rule(&self, raw: &str) -> Result<Response<Body>, ApiError> {
        let id = wire::path_id("rule", raw)?;
        let config = self.config().await?;
        let rule = config
            .policies
            .rules
            .iter()
            .find(|r| r.id == id)
            .ok_or_else(|| Self::rule_not_found(&id))?;
        if let Some(response) = not_modified(self.headers, config.version)? {
            return Ok(response);
        }
        let body = serde_json::to_value(rule).unwrap_or(Value::Null);
        Ok(tagged(StatusCode::OK, &body, config.version))
    }

    async fn put_rule(&self, raw: &str, body: Value) -> Result<Response<Body>, ApiError> {
        let id = wire::path_id("rule", raw)?;
        let mut body = wire::object(body, "the rule")?;
        match body.get("id") {
            None => {
                body.insert("id".into(), Value::String(id.clone()));
            }
            Some(Value::String(given)) if *given == id => {}
            Some(other) => {
                return Err(ApiError::scim(
                    scim_schema::ScimType::Mutability,
                    format!("the rule's id {other} does not match {id:?}, the id in the path"),
                ));
            }
        }
        let rule = wire::rule("the rule", Value::Object(body))?;
        let mut created = false;
        let (config, applied) = self
            .update_policies(|current| {
                let mut policies = current.policies.clone();
                match policies.rules.iter_mut().find(|r| r.id == rule.id) {
                    Some(existing) => {
                        created = false;
                        *existing = rule.clone();
                    }
                    None => {
                        created = true;
                        policies.rules.push(rule.clone());
                    }
                }
                Ok((policies, current.settings))
            })
            .await?;
        let body = json!({
            "rule": rule,
            "version": config.version,
            "applied": wire::preview(&applied),
        });
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        let answer = tagged(status, &body, config.version);
        let location = self.location(&format!("policies/rules/{raw}"));
        Ok(response::with_location(answer, &location))
    }

    async fn delete_rule(&self, raw: &str) -> Result<Response<Body>, ApiError> {
        let id = wire::path_id("rule", raw)?;
        let (config, applied) = self
            .update_policies(|current| {
                let mut policies = current.policies.clone();
                let before = policies.rules.len();
                policies.rules.retain(|r| r.id != id);
                if policies.rules.len() == before {
                    return Err(Self::rule_not_found(&id));
                }
                Ok((policies, current.settings))
            })
            .await?;
        let body = json!({"version": config.version, "applied": wire::preview(&applied)});
        Ok(tagged(StatusCode::OK, &body, config.version))
    }

    // ---- decisions and bookings ------------------------------------------------------------

    /// `{person, resource, start, end}`, the body of `/evaluate` and `POST /bookings`.
    pub(crate) fn booking_request(body: Value, what: &'static str) -> Result<NewBooking, ApiError> {
        let mut fields = wire::Fields::new(body, what)?;
        let request = NewBooking {
            person: fields.id("person")?,
            resource: fields.id("resource")?,
            start: fields.time("start")?,
            end: fields.time("end")?,
        };
        fields.finish()?;
        if request.end <= request.start {
            return Err(ApiError::invalid_value(format!(
                "{what}: \"end\" ({}) must be after \"start\" ({})",
                wire::rfc3339(request.end),
                wire::rfc3339(request.start)
            )));
        }
        Ok(request)
    }

    async fn evaluate(&self, body: Value) -> Result<Response<Body>, ApiError> {
        let request = Self::booking_request(body, "the evaluation request")?;
        let decision = self
            .state
            .timed(
                "workplace_evaluate",
                self.store().evaluate_booking(
                    &self.ctx.tenant,
                    &request.person,
                    &request.resource,
                    request.request(),
                    now(),
                ),
            )
            .await
            .map_err(|e| self.store_error(e))?;
        Ok(wire::json(StatusCode::OK, &wire::decision(&decision)))
    }

    /// A booking or check-in outcome as HTTP: `success` with the booking, 403 with the decision
    /// when refused, 409 when the resource is full.
    fn outcome(
        &self,
        outcome: BookingOutcome,
        success: StatusCode,
        resource: Option<&str>,
    ) -> Response<Body> {
        match outcome {
            BookingOutcome::Done(record) => {
                let answer = tagged(success, &wire::booking(&record), record.version);
                let location = self.location(&format!("bookings/{}", record.booking.id));
                response::with_location(answer, &location)
            }
            BookingOutcome::Refused(decision) => {
                let explanation = decision.explain();
                let first = decision
                    .main_objection()
                    .map_or_else(|| "no rule allows it".to_owned(), ToString::to_string);
                wire::json(
                    StatusCode::FORBIDDEN,
                    &json!({
                        "status": "403",
                        "error": "refused",
                        "detail": format!("the policies refuse this booking: {first}"),
                        "decision": decision,
                        "explanation": explanation,
                    }),
                )
            }
            BookingOutcome::Full { capacity } => wire::json(
                StatusCode::CONFLICT,
                &json!({
                    "status": "409",
                    "error": "full",
                    "detail": format!(
                        "{} is fully booked over this interval: its {capacity} place(s) are taken",
                        resource.map_or_else(|| "the resource".to_owned(), |r| format!("resource {r:?}"))
                    ),
                    "capacity": capacity,
                }),
            ),
        }
    }

    async fn book(&self, body: Value) -> Result<Response<Body>, ApiError> {
        let request = Self::booking_request(body, "the booking")?;
        let resource = request.resource.clone();
        let outcome = self
            .state
            .timed(
                "workplace_book",
                self.store()
                    .book(&self.ctx.tenant, request, &self.write_context(), now()),
            )
            .await
            .map_err(|e| self.store_error(e))?;
        Ok(self.outcome(outcome, StatusCode::CREATED, Some(&resource)))
    }

    async fn bookings(&self) -> Result<Response<Body>, ApiError> {
        let status = match self.query.get("status")? {
            None => None,
            Some(name) => Some(
                STATUS_NAMES
                    .into_iter()
                    .find(|s| s.eq_ignore_ascii_case(name))
                    .ok_or_else(|| {
                        ApiError::invalid_value(format!(
                            "query parameter status: {name:?} is not one of {}",
                            STATUS_NAMES.join(", ")
                        ))
                    })?
                    .to_owned(),
            ),
        };
        let filter = BookingFilter {
            person: wire::query_id(self.query, "person")?,
            resource: wire::query_id(self.query, "resource")?,
            status,
            ends_after: wire::query_time(self.query, "endsAfter")?,
            starts_before: wire::query_time(self.query, "startsBefore")?,
            flagged_only: wire::query_bool(self.query, "flagged")?.unwrap_or(false),
            after_id: wire::query_id(self.query, "after")?,
            limit: wire::limit(self.query)?,
        };
        let records = self
            .state
            .timed(
                "workplace_bookings",
                self.store().bookings(&self.ctx.tenant, &filter),
            )
            .await
            .map_err(|e| self.store_error(e))?;
        // A full page may have a next one; a short page is the last.
        let next = if records.len() >= filter.limit {
            records.last().map(|r| Value::from(r.booking.id.clone()))
        } else {
            None
        };
        let items: Vec<Value> = records.iter().map(wire::booking).collect();
        Ok(wire::json(
            StatusCode::OK,
            &json!({"bookings": items, "next": next}),
        ))
    }

    async fn booking(&self, raw: &str) -> Result<Response<Body>, ApiError> {
        let id = wire::path_id("booking", raw)?;
        let record = self
            .state
            .timed(
                "workplace_booking",
                self.store().booking(&self.ctx.tenant, &id),
            )
            .await
            .map_err(|e| self.store_error(e))?
            .ok_or_else(|| {
                self.store_error(scim_store::workplace::plan::not_found("booking", &id))
            })?;
        if let Some(response) = not_modified(self.headers, record.version)? {
            return Ok(response);
        }
        Ok(tagged(
            StatusCode::OK,
            &wire::booking(&record),
            record.version,
        ))
    }

    async fn cancel(&self, raw: &str, body: Option<Value>) -> Result<Response<Body>, ApiError> {
        let id = wire::path_id("booking", raw)?;
        let reason = match body {
            None => None,
            Some(body) => {
                let mut fields = wire::Fields::new(body, "the cancellation")?;
                let reason = fields.text("reason", wire::MAX_REASON_CHARS)?;
                fields.finish()?;
                reason
            }
        };
        let reason = reason
            .filter(|r| !r.trim().is_empty())
            .unwrap_or_else(|| DEFAULT_CANCEL_REASON.to_owned());
        let record = self
            .state
            .timed(
                "workplace_cancel",
                self.store().cancel_booking(
                    &self.ctx.tenant,
                    &id,
                    Actor::Administrator(self.ctx.actor.clone()),
                    &reason,
                    &self.write_context(),
                    now(),
                ),
            )
            .await
            .map_err(|e| self.store_error(e))?;
        Ok(tagged(
            StatusCode::OK,
            &wire::booking(&record),
            record.version,
        ))
    }

    async fn check_in(&self, raw: &str) -> Result<Response<Body>, ApiError> {
        let id = wire::path_id("booking", raw)?;
        let outcome = self
            .state
            .timed(
                "workplace_check_in",
                self.store()
                    .check_in(&self.ctx.tenant, &id, &self.write_context(), now()),
            )
            .await
            .map_err(|e| self.store_error(e))?;
        Ok(self.outcome(outcome, StatusCode::OK, None))
    }

    // ---- assignments -----------------------------------------------------------------------

    async fn assignments(&self) -> Result<Response<Body>, ApiError> {
        let person = wire::query_id(self.query, "person")?;
        let items = self
            .state
            .timed(
                "workplace_assignments",
                self.store()
                    .assignments(&self.ctx.tenant, person.as_deref()),
            )
            .await
            .map_err(|e| self.store_error(e))?;
        let items: Vec<Value> = items.iter().map(wire::assignment).collect();
        Ok(wire::json(StatusCode::OK, &json!({"assignments": items})))
    }

    async fn assign(&self, body: Value) -> Result<Response<Body>, ApiError> {
        let mut fields = wire::Fields::new(body, "the assignment")?;
        let person = fields.id("person")?;
        let resource = fields.id("resource")?;
        fields.finish()?;
        let assignment = self
            .state
            .timed(
                "workplace_assign",
                self.store().assign(
                    &self.ctx.tenant,
                    &person,
                    &resource,
                    &self.write_context(),
                    now(),
                ),
            )
            .await
            .map_err(|e| self.store_error(e))?;
        let answer = wire::json(StatusCode::CREATED, &wire::assignment(&assignment));
        let location = self.location(&format!("assignments/{}", assignment.id));
        Ok(response::with_location(answer, &location))
    }

    /// The assignment that `POST /assignments` answered with (its `Location`).
    async fn assignment(&self, raw: &str) -> Result<Response<Body>, ApiError> {
        let id = wire::path_id("assignment", raw)?;
        let assignment = self
            .state
            .timed(
                "workplace_assignment",
                self.store().assignment(&self.ctx.tenant, &id),
            )
            .await
            .map_err(|e| self.store_error(e))?
            .ok_or_else(|| {
                self.store_error(scim_store::workplace::plan::not_found("assignment", &id))
            })?;
        Ok(wire::json(StatusCode::OK, &wire::assignment(&assignment)))
    }

    async fn release(&self, raw: &str) -> Result<Response<Body>, ApiError> {
        let id = wire::path_id("assignment", raw)?;
        let released = self
            .state
            .timed(
                "workplace_release",
                self.store()
                    .release_assignment(&self.ctx.tenant, &id, &self.write_context()),
            )
            .await
            .map_err(|e| self.store_error(e))?;
        if !released {
            return Err(self.store_error(scim_store::workplace::plan::not_found("assignment", &id)));
        }
        Ok(response::empty(StatusCode::NO_CONTENT))
    }

    // ---- the feed, the audit log, the report -----------------------------------------------

    /// A page of feed entries with `next`, the cursor to resume from: the last entry's `seq`,
    /// or `after` itself when the page is empty (poll again with the same cursor).
    fn feed_page(after: u64, events: &[scim_store::workplace::FeedEvent]) -> Value {
        let next = events.last().map_or(after, |e| e.seq);
        let items: Vec<Value> = events.iter().map(wire::event).collect();
        json!({"events": items, "next": next})
    }

    async fn events(&self) -> Result<Response<Body>, ApiError> {
        let after = wire::after_seq(self.query)?;
        let limit = wire::limit(self.query)?;
        let events = self
            .state
            .timed(
                "workplace_feed",
                self.store().feed(&self.ctx.tenant, after, limit),
            )
            .await
            .map_err(|e| self.store_error(e))?;
        Ok(wire::json(StatusCode::OK, &Self::feed_page(after, &events)))
    }

    async fn audit(&self) -> Result<Response<Body>, ApiError> {
        let filter = AuditFilter {
            subject: self.query.get("subject")?.map(wire::subject).transpose()?,
            id: wire::query_id(self.query, "id")?,
            person: wire::query_id(self.query, "person")?,
            request_id: wire::query_id(self.query, "requestId")?,
            after_seq: wire::after_seq(self.query)?,
            since: wire::query_time(self.query, "since")?,
            until: wire::query_time(self.query, "until")?,
            limit: wire::limit(self.query)?,
        };
        let events = self
            .state
            .timed(
                "workplace_audit",
                self.store().audit(&self.ctx.tenant, &filter),
            )
            .await
            .map_err(|e| self.store_error(e))?;
        Ok(wire::json(
            StatusCode::OK,
            &Self::feed_page(filter.after_seq, &events),
        ))
    }

    async fn report(&self) -> Result<Response<Body>, ApiError> {
        let report = self
            .state
            .timed("workplace_report", self.store().report(&self.ctx.tenant))
            .await
            .map_err(|e| self.store_error(e))?;
        let body = serde_json::to_value(&report).unwrap_or(Value::Null);
        Ok(wire::json(StatusCode::OK, &body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes() {
        assert_eq!(
            endpoint_of(&["sites"]),
            Some(Endpoint::Places(PlaceKind::Site))
        );
        assert_eq!(
            endpoint_of(&["resources", "d1"]),
            Some(Endpoint::Place(PlaceKind::Resource, "d1"))
        );
        assert_eq!(
            endpoint_of(&["bookings", "b1", "check-in"]),
            Some(Endpoint::CheckIn("b1"))
        );
        assert_eq!(
            endpoint_of(&["policies", "rules", "r"]),
            Some(Endpoint::Rule("r"))
        );
        assert_eq!(endpoint_of(&["people"]), None);
        assert_eq!(endpoint_of(&["bookings", "b1", "delete"]), None);
        assert_eq!(endpoint_of(&[]), None);
    }
}
