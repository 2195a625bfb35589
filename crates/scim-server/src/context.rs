//! What every request carries through the services: its id, its authenticated caller
//! ([`Ctx`]), and what its log line records ([`RequestLog`], [`log_request`]).

use crate::auth::Principal;
use scim_schema::{ResourceSchema, SchemaRegistry};
use scim_store::{ResourceKind, TenantId, TenantSchemas, WriteContext, WriteWindow};
use std::fmt::Display;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The authenticated caller of one request to the SCIM or the workplace service.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    /// The request's id (also in the log and on the change event).
    pub request_id: String,
    /// The tenant the caller acts for (the store's handle: only a store makes one).
    pub tenant: TenantId,
    /// The credential's label, recorded as the actor of changes.
    pub actor: String,
    /// The credential's public id (logged with failed requests; never the secret).
    pub token_id: String,
    /// The absolute base URL of the service for this tenant, e.g.
    /// `https://host/t/acme/scim/v2` or `https://host/t/acme/workplace/v1`.
    pub base: String,
    /// Until when the request's writes may start (closed when the request times out).
    pub window: WriteWindow,
    /// The tenant's schemas, as the store serves them (its own extensions and attributes
    /// included), read once per request.
    pub schemas: Arc<TenantSchemas>,
}

impl Ctx {
    pub(crate) fn new(
        request_id: &str,
        principal: Principal,
        base: String,
        window: WriteWindow,
        schemas: Arc<TenantSchemas>,
    ) -> Ctx {
        Ctx {
            request_id: request_id.to_owned(),
            tenant: principal.tenant,
            actor: principal.label,
            token_id: principal.token_id,
            base,
            window,
            schemas,
        }
    }

    /// The tenant's schema of `kind`.
    pub(crate) fn schema(&self, kind: ResourceKind) -> &ResourceSchema {
        self.schemas.resources.get(kind)
    }

    /// The tenant's schema registry (`/Schemas`, `/ResourceTypes`).
    pub(crate) fn registry(&self) -> &SchemaRegistry {
        self.schemas.registry()
    }

    pub(crate) fn write_context(&self) -> WriteContext {
        WriteContext {
            actor: self.actor.clone(),
            request_id: Some(self.request_id.clone()),
            window: self.window.clone(),
        }
    }
}

/// The id of the request being served, in its extensions, so that an authenticator can name
/// it in the log of a store failure.
#[derive(Debug, Clone)]
pub(crate) struct RequestId(pub String);

/// The tenant a scimd URL names (`/t/{tenant}/...`), in the request's extensions: the token
/// authenticator then accepts only that tenant's tokens.
#[derive(Debug, Clone)]
pub(crate) struct TenantInPath(pub String);

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
    /// What the provisioning log records of an authenticated SCIM request, completed with
    /// the answer.
    pub capture: Option<crate::provisioning::Capture>,
}

/// Request ids: a random prefix per service and a counter, unique across restarts without a
/// system call per request.
#[derive(Debug)]
pub(crate) struct RequestIds {
    prefix: String,
    counter: AtomicU64,
}

impl RequestIds {
    pub(crate) fn new() -> RequestIds {
        RequestIds {
            prefix: uuid::Uuid::new_v4()
                .simple()
                .to_string()
                .chars()
                .take(12)
                .collect(),
            counter: AtomicU64::new(0),
        }
    }

    pub(crate) fn next(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        format!("{}-{n:x}", self.prefix)
    }
}

/// `text` cut to at most `max` bytes, at a character boundary.
pub(crate) fn bounded(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// One answered request, as its log line records it.
pub(crate) struct Answered<'a> {
    pub request_id: &'a str,
    pub log: &'a RequestLog,
    pub method: &'a http::Method,
    pub status: u16,
    pub latency: Duration,
    /// The `scimType` and the (bounded) detail of a failed request.
    pub failure: Option<(Option<&'static str>, String)>,
    pub client: &'a dyn Display,
    pub user_agent: Option<&'a http::HeaderValue>,
}

/// Logs one line per request. Nothing the client chose reaches the line unchecked: the route
/// is a template, the tenant a checked tenant name, the method an HTTP token (hyper refuses
/// spaces and control characters in it), the client an address the server parsed; the
/// detail and the User-Agent are bounded and escaped by the formatter, so a request cannot
/// forge or split log lines. The path itself is never logged: it may carry ids and personal
/// data.
pub(crate) fn log_request(answered: Answered<'_>) {
    let Answered {
        request_id,
        log,
        method,
        status,
        latency,
        failure,
        client,
        user_agent,
    } = answered;
    let latency_us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
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
            let user_agent =
                user_agent.map_or("-", |v| bounded(v.to_str().unwrap_or("(not text)"), 200));
            tracing::info!(
                request_id = %request_id,
                tenant = log.tenant.as_deref().unwrap_or("-"),
                method = %method,
                route = log.route,
                status,
                latency_us,
                scim_type = scim_type.unwrap_or("-"),
                detail = %bounded(&detail, 300),
                token_id,
                token_label,
                client = %client,
                user_agent,
                "request"
            );
        }
    }
}
