//! What the listener serves: the probes (`/healthz`, `/readyz`, `/metrics`), the host
//! policy, and scimd's tenant URLs, `/t/{tenant}/scim/v2` to the SCIM service and
//! `/t/{tenant}/workplace/v1` to the workplace service (each with the token authenticator,
//! held to the tenant the URL names); around them the request id, the request timeout, the
//! request metrics and one log line per request.

use crate::admin::AdminState;
use crate::api;
use crate::config::ServerConfig;
use crate::context::{
    Answered, RequestId, RequestIds, RequestLog, TenantInPath, bounded, log_request,
};
use crate::error::{ApiError, ServerError};
use crate::listener::host::HostPolicy;
use crate::metrics::Metrics;
use crate::provisioning::RequestLogSink;
use crate::response::{self, Body};
use crate::scim::ScimState;
use crate::workplace::WorkplaceState;
use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use scim_schema::SchemaRegistry;
use scim_store::{AdminStore, StoreError, WriteWindow};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// The services and what the listener adds around them, shared by all connections.
pub(crate) struct FrontDoor {
    scim: ScimState,
    workplace: WorkplaceState,
    admin: AdminState,
    /// The store the readiness probe asks.
    store: Arc<dyn AdminStore>,
    pub(crate) config: ServerConfig,
    pub(crate) metrics: Arc<Metrics>,
    tls: bool,
    draining: AtomicBool,
    /// Which hosts requests may name; set by `Server::run` from the listener's address before
    /// the first request. Unset, every API request is refused (fail closed).
    pub(crate) hosts: OnceLock<HostPolicy>,
    request_ids: RequestIds,
}

impl std::fmt::Debug for FrontDoor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrontDoor")
            .field("config", &self.config)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// Whether `name` can be a tenant name (`[a-z0-9-]{1,63}`, as the store requires).
fn is_tenant_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl FrontDoor {
    /// Builds both services over `store`; fails if `registry` lacks the User or Group
    /// resource type.
    pub(crate) fn new(
        store: Arc<dyn AdminStore>,
        registry: SchemaRegistry,
        config: ServerConfig,
        tls: bool,
    ) -> Result<Self, ServerError> {
        let metrics = Arc::new(Metrics::default());
        let mut scim =
            ScimState::for_server(store.clone(), registry, config.clone(), metrics.clone())?;
        // Also with the log off: what an earlier run logged is still pruned.
        scim.request_log = Some(Arc::new(RequestLogSink::new(
            store.clone(),
            config.request_log.clone(),
            config.patch.clone(),
            metrics.clone(),
        )));
        let workplace = WorkplaceState::for_server(
            store.clone(),
            config.limits.max_body_bytes,
            metrics.clone(),
        );
        let admin = AdminState::for_server(
            store.clone(),
            config.limits.max_body_bytes,
            config.request_log.silent_after,
            metrics.clone(),
        );
        Ok(FrontDoor {
            scim,
            workplace,
            admin,
            store,
            config,
            metrics,
            tls,
            draining: AtomicBool::new(false),
            hosts: OnceLock::new(),
            request_ids: RequestIds::new(),
        })
    }

    /// Starts what runs beside the requests (the provisioning log's writer and pruner).
    pub(crate) fn start_background(&self) {
        if let Some(sink) = &self.scim.request_log {
            sink.start();
        }
    }

    /// Marks the server as shutting down: `/readyz` answers 503 from now on.
    pub(crate) fn start_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
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

    /// Answers one request from `peer`: never fails, never panics on input; logs one line per
    /// request.
    pub async fn handle(
        self: Arc<Self>,
        mut req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Response<Body> {
        let started = Instant::now();
        let request_id = self.request_ids.next();
        req.extensions_mut().insert(RequestId(request_id.clone()));
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
            capture: None,
        };
        let timeout = self.config.limits.request_timeout;
        let window = WriteWindow::new();
        req.extensions_mut().insert(window.clone());
        let outcome = {
            let dispatch = self.dispatch(req, &request_id, &mut log);
            tokio::pin!(dispatch);
            match tokio::time::timeout(timeout, &mut dispatch).await {
                Ok(answer) => Ok(answer),
                // Past the deadline no write of the request starts any more; one already
                // running is waited for, so that its client hears whether it was kept
                // instead of a 503 for a write that then commits (a retry would fail with
                // 409 or apply it twice). What is left of it, e.g. the rest of a Bulk
                // request, fails without running.
                Err(_) if window.close() => {
                    tracing::debug!(
                        request_id,
                        "past the deadline with a write running: waiting for it"
                    );
                    Ok(dispatch.await)
                }
                Err(elapsed) => Err(elapsed),
            }
        };
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
                let failure = (
                    error.scim_type,
                    bounded(&error.detail, scim_store::admin::MAX_DETAIL_BYTES).to_owned(),
                );
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
        crate::provisioning::finish(
            &mut log,
            self.scim.request_log.as_ref(),
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
            client: &client,
            user_agent: user_agent.as_ref(),
        });
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
        // The workplace and admin APIs answer errors as plain JSON, SCIM as SCIM documents.
        log.workplace = path
            .strip_prefix("/t/")
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(_, rest)| {
                ["workplace/v1", "admin/v1"].iter().any(|base| {
                    rest.strip_prefix(base)
                        .is_some_and(|a| a.is_empty() || a.starts_with('/'))
                })
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
            let base = format!("{origin}/t/{tenant_name}/workplace/v1");
            let after = after.to_owned();
            let mut req = req;
            req.extensions_mut()
                .insert(TenantInPath(tenant_name.to_owned()));
            return api::respond(&self.workplace, req, &after, &base, request_id, log).await;
        }
        if let Some(after) = rest
            .strip_prefix("admin/v1")
            .filter(|a| a.is_empty() || a.starts_with('/'))
        {
            if !is_tenant_name(tenant_name) {
                return Err(ApiError::not_found(format!(
                    "{tenant_name:?} is not a tenant name"
                )));
            }
            log.tenant = Some(tenant_name.to_owned());
            let base = format!("{origin}/t/{tenant_name}/admin/v1");
            let after = after.to_owned();
            let mut req = req;
            req.extensions_mut()
                .insert(TenantInPath(tenant_name.to_owned()));
            return api::respond(&self.admin, req, &after, &base, request_id, log).await;
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
        let base = format!("{origin}/t/{tenant_name}/scim/v2");
        let after = after.to_owned();
        let mut req = req;
        req.extensions_mut()
            .insert(TenantInPath(tenant_name.to_owned()));
        api::respond(&self.scim, req, &after, &base, request_id, log).await
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
            self.metrics.timed("check_ready", self.store.check_ready()),
        )
        .await
        .unwrap_or_else(|_| {
            Err(StoreError::backend(format!(
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
}
