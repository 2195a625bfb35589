//! What the SCIM and the workplace service share: authenticating a request for the service's
//! scope before running it ([`respond`]), and, when an embedder mounts a service on its own,
//! one request id, one answer, one log line and the request metrics per request ([`serve`]).
//! scimd's `Server` does the latter itself around both services, with the host policy, the
//! probes and the request timeout besides (`listener::routes`).

use crate::auth::Authenticator;
use crate::context::{Answered, Ctx, RequestId, RequestIds, RequestLog, bounded, log_request};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::provisioning::{BodySlot, Capture, CaptureTexts, RequestLogSink};
use crate::request::RequestBody;
use crate::response::Body;
use http::{Request, Response, StatusCode, header};
use scim_store::{Store, TokenScope, WriteWindow};
use serde_json::Value;
use std::future::Future;
use std::time::Instant;

/// What a service provides to [`respond`] and [`serve`].
pub(crate) trait Api: Send + Sync {
    /// The scope its credentials need.
    const SCOPE: TokenScope;
    /// Whether its errors are the workplace API's plain JSON rather than SCIM documents.
    const WORKPLACE: bool;
    fn request_ids(&self) -> &RequestIds;
    fn metrics(&self) -> &Metrics;
    fn authenticator(&self) -> &dyn Authenticator;
    /// The store, whose schemas of the caller's tenant the request is served with.
    fn store(&self) -> &dyn Store;
    /// The base URL of the links when mounted.
    fn base_url(&self) -> &str;
    /// The route template (a metrics label) of the path below the base, as its non-empty
    /// `segments`.
    fn route(segments: &[&str]) -> &'static str;
    /// The OpenAPI description served at `openapi.json` below the base to anyone, without a
    /// token (so that front-ends can generate a client), if the service has one.
    fn openapi() -> Option<&'static OpenApi> {
        None
    }
    /// Where its authenticated requests are recorded (the provisioning log), if they are.
    fn request_log(&self) -> Option<&std::sync::Arc<RequestLogSink>> {
        None
    }
    /// Runs an authenticated request whose path below the base is `after`, split into its
    /// non-empty `segments`.
    fn endpoint<B: RequestBody>(
        &self,
        req: Request<B>,
        ctx: &Ctx,
        segments: &[&str],
        after: &str,
    ) -> impl Future<Output = Result<Response<Body>, ApiError>> + Send;
}

/// Answers one request whose path below the service's base is `after` (`/Users/2819c223`,
/// or empty for the base itself), with links under `base`: routes it, authenticates it (so
/// that an unknown endpoint is a 404 only for a caller who may know), and runs it.
pub(crate) async fn respond<A: Api, B: RequestBody>(
    api: &A,
    req: Request<B>,
    after: &str,
    base: &str,
    request_id: &str,
    log: &mut RequestLog,
) -> Result<Response<Body>, ApiError> {
    // The path is split once, for the metrics label and for the handler.
    let segments: Vec<&str> = after.split('/').filter(|s| !s.is_empty()).collect();
    log.route = A::route(&segments);
    if segments.as_slice() == ["openapi.json"]
        && let Some(description) = A::openapi()
    {
        return description.serve(req.method(), base);
    }
    let (mut parts, body) = req.into_parts();
    let principal = api.authenticator().authenticate(&parts, A::SCOPE).await?;
    if !principal.scope.covers(A::SCOPE) {
        // The authenticator should have refused it; a principal of the other API never
        // reaches this one's handlers.
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "these endpoints need credentials of scope {:?}",
                A::SCOPE.as_str()
            ),
        ));
    }
    // The server's request timeout closes the window it put in the extensions; a mounted
    // service has none, and its writes always start.
    let window = parts
        .extensions
        .get::<WriteWindow>()
        .cloned()
        .unwrap_or_default();
    let schemas = api
        .store()
        .tenant_schemas(&principal.tenant)
        .await
        .map_err(|e| crate::error::from_store(e, request_id))?;
    if api.request_log().is_some_and(|log| log.enabled()) {
        // Authenticated: from here on the request is the tenant's to read in its log. Only a
        // method with a body gets a slot for it (a GET's is never read).
        let body = matches!(
            parts.method,
            http::Method::POST | http::Method::PUT | http::Method::PATCH
        )
        .then(|| {
            let body = BodySlot::default();
            parts.extensions.insert(body.clone());
            body
        });
        let path_len = parts.uri.path().len();
        let path = parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path(), |p| p.as_str());
        log.capture = Some(Capture {
            texts: CaptureTexts::new(request_id, &principal.token_id, &principal.label, path),
            tenant: principal.tenant,
            method: parts.method.clone(),
            below_base: path_len.saturating_sub(after.len()),
            at: scim_store::document::now(),
            schemas: schemas.clone(),
            body,
        });
    }
    let ctx = Ctx::new(request_id, principal, base.to_owned(), window, schemas);
    let result = api
        .endpoint(Request::from_parts(parts, body), &ctx, &segments, after)
        .await;
    if result.is_err() {
        log.token = Some((ctx.token_id.clone(), ctx.actor.clone()));
    }
    result
}

/// An OpenAPI description ready to serve: the compact JSON, split where the `servers` URL
/// goes, so that an answer (to anyone: no token is needed) costs one copy of the bytes, not a
/// parse or a serialisation of 60 KB.
pub(crate) struct OpenApi {
    head: Vec<u8>,
    tail: Vec<u8>,
}

impl OpenApi {
    /// `text` (an OpenAPI description), its `servers` to be filled per request; `None` if it
    /// is not a JSON object.
    pub(crate) fn new(text: &str) -> Option<OpenApi> {
        const SLOT: &str = "scimd-openapi-servers-url";
        let mut description: Value = serde_json::from_str(text).ok()?;
        description
            .as_object_mut()?
            .insert("servers".into(), serde_json::json!([{ "url": SLOT }]));
        let compact = serde_json::to_vec(&description).ok()?;
        let quoted = format!("\"{SLOT}\"");
        let at = compact
            .windows(quoted.len())
            .position(|w| w == quoted.as_bytes())?;
        Some(OpenApi {
            head: compact[..at].to_vec(),
            tail: compact[at + quoted.len()..].to_vec(),
        })
    }

    /// The description, its `servers` the base this request reached (the same for every
    /// tenant name: it says nothing of which tenants exist).
    fn serve(&self, method: &http::Method, base: &str) -> Result<Response<Body>, ApiError> {
        if method != http::Method::GET && method != http::Method::HEAD {
            return Err(ApiError::method_not_allowed(method, "GET, HEAD"));
        }
        let url = serde_json::to_vec(base).unwrap_or_default();
        let mut body = Vec::with_capacity(self.head.len() + url.len() + self.tail.len());
        body.extend_from_slice(&self.head);
        body.extend_from_slice(&url);
        body.extend_from_slice(&self.tail);
        let mut response = Response::new(Body::new(body.into()));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static(crate::response::APPLICATION_JSON),
        );
        Ok(response)
    }
}

/// Answers one request to a mounted service: never fails, never panics on input.
pub(crate) async fn serve<A: Api, B: RequestBody>(api: &A, mut req: Request<B>) -> Response<Body> {
    let started = Instant::now();
    let request_id = api.request_ids().next();
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let method = req.method().clone();
    let user_agent = req.headers().get(header::USER_AGENT).cloned();
    // The router in front has stripped the mount point: the path is below the base.
    let after = req.uri().path().to_owned();
    let mut log = RequestLog {
        route: "other",
        workplace: A::WORKPLACE,
        ..RequestLog::default()
    };
    let outcome = respond(api, req, &after, api.base_url(), &request_id, &mut log).await;
    let (mut response, failure) = match outcome {
        Ok(response) => (response, None),
        Err(error) => {
            let failure = (
                error.scim_type,
                bounded(&error.detail, scim_store::admin::MAX_DETAIL_BYTES).to_owned(),
            );
            let response = if A::WORKPLACE {
                error.into_workplace_response()
            } else {
                error.into_response()
            };
            (response, Some(failure))
        }
    };
    if let Ok(value) = http::HeaderValue::from_str(&request_id) {
        response.headers_mut().insert("x-request-id", value);
    }
    let status = response.status().as_u16();
    let latency = started.elapsed();
    api.metrics().request(log.route, &method, status, latency);
    crate::provisioning::finish(
        &mut log,
        api.request_log(),
        &response,
        latency,
        failure.as_ref(),
    );
    log_request(Answered {
        request_id: &request_id,
        log: &log,
        method: &method,
        status,
        latency,
        failure,
        // The embedder's router knows the peer; this service does not.
        client: &"-",
        user_agent: user_agent.as_ref(),
    });
    response
}
