//! The one error type of this crate, [`ApiError`]: every failure a request can meet, turned
//! into the SCIM error response of RFC 7644 section 3.12; and [`ServerError`], for what can
//! go wrong starting the server.

use crate::response::{self, Body};
use http::{HeaderValue, Response, StatusCode, header};
use scim_filter::FilterError;
use scim_patch::PatchError;
use scim_schema::{SchemaError, ScimType, core};
use scim_store::StoreError;
use serde_json::{Map, Value};

/// A request that failed, as the client is told (RFC 7644 section 3.12): an HTTP status, an
/// optional `scimType` and a `detail` that says what was wrong and where.
///
/// Converted from the errors of every layer below (`SchemaError`, `FilterError`,
/// `PatchError`, `StoreError`) with their own `scimType` and status, so the server never
/// guesses; only a storage failure is a 500, and its detail stays in the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} {}: {detail}", scim_type.unwrap_or("-"))]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The `scimType` keyword (RFC 7644 section 3.12, Table 9), where one applies.
    pub scim_type: Option<&'static str>,
    /// What was wrong, and where.
    pub detail: String,
    /// An `Allow` header for 405 answers.
    pub allow: Option<&'static str>,
    /// Whether to add `WWW-Authenticate` (401 answers, RFC 6750 section 3).
    pub challenge: bool,
    /// A `Retry-After` in seconds (503 answers, RFC 9110 section 10.2.3): the condition is
    /// temporary and the same request may succeed later.
    pub retry_after: Option<u32>,
}

impl ApiError {
    /// An error with this status, no `scimType`, and `detail`.
    pub fn new(status: StatusCode, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            scim_type: None,
            detail: detail.into(),
            allow: None,
            challenge: false,
            retry_after: None,
        }
    }

    /// 503 with `Retry-After: seconds`: the server cannot do this now, and may later.
    pub fn unavailable(detail: impl Into<String>, seconds: u32) -> Self {
        ApiError {
            retry_after: Some(seconds),
            ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, detail)
        }
    }

    /// An error whose status is the one RFC 7644 section 3.12 pairs with `scim_type`.
    pub fn scim(scim_type: ScimType, detail: impl Into<String>) -> Self {
        let status = StatusCode::from_u16(scim_type.status()).unwrap_or(StatusCode::BAD_REQUEST);
        ApiError {
            scim_type: Some(scim_type.as_str()),
            ..ApiError::new(status, detail)
        }
    }

    /// 400 `invalidSyntax`: the request body is not what the endpoint accepts.
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        ApiError::scim(ScimType::InvalidSyntax, detail)
    }

    /// 400 `invalidValue`: a query parameter or value is not acceptable.
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        ApiError::scim(ScimType::InvalidValue, detail)
    }

    /// 400 `invalidFilter`.
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        ApiError::scim(ScimType::InvalidFilter, detail)
    }

    /// 401 with `WWW-Authenticate: Bearer realm="scimd"` (RFC 6750 section 3).
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        ApiError {
            challenge: true,
            ..ApiError::new(StatusCode::UNAUTHORIZED, detail)
        }
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, detail)
    }

    /// 405 with the methods the endpoint allows.
    pub fn method_not_allowed(method: &http::Method, allow: &'static str) -> Self {
        ApiError {
            allow: Some(allow),
            ..ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method {method} is not allowed here; allowed: {allow}"),
            )
        }
    }

    /// 412: the `If-Match` precondition failed (RFC 7644 section 3.14).
    pub fn precondition_failed(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::PRECONDITION_FAILED, detail)
    }

    /// 413 (RFC 7644 section 3.7.4 for bulk requests; any body beyond the limit otherwise).
    pub fn payload_too_large(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, detail)
    }

    /// 415 (RFC 9110 section 15.5.16): the body is in a media type the server does not accept.
    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, detail)
    }

    /// 500, with a detail that reveals nothing of the server's internals.
    pub fn internal(request_id: &str) -> Self {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal server error; quote request id {request_id} to the operator"),
        )
    }

    /// The error as a SCIM error document (RFC 7644 section 3.12): `schemas`, `status` as a
    /// string, `scimType` when there is one, `detail`.
    pub fn to_json(&self) -> Value {
        let mut doc = Map::with_capacity(4);
        doc.insert(
            "schemas".into(),
            Value::Array(vec![Value::String(core::ERROR.into())]),
        );
        doc.insert(
            "status".into(),
            Value::String(self.status.as_u16().to_string()),
        );
        if let Some(scim_type) = self.scim_type {
            doc.insert("scimType".into(), Value::String(scim_type.into()));
        }
        doc.insert("detail".into(), Value::String(self.detail.clone()));
        Value::Object(doc)
    }

    /// The error as an HTTP response.
    pub fn into_response(self) -> Response<Body> {
        let mut response = response::json(self.status, &self.to_json());
        if let Some(allow) = self.allow {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if self.challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scimd\""),
            );
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }

    /// The short code of the workplace API's error body: the `scimType` where the error has
    /// one (`invalidSyntax`, `invalidValue`, `mutability`...), else one named after the
    /// status (`notFound`, `conflict`, `preconditionFailed`...).
    pub fn workplace_code(&self) -> &'static str {
        if let Some(scim_type) = self.scim_type {
            return scim_type;
        }
        match self.status.as_u16() {
            400 => "invalid",
            401 => "unauthorized",
            403 => "forbidden",
            404 => "notFound",
            405 => "methodNotAllowed",
            409 => "conflict",
            412 => "preconditionFailed",
            413 => "payloadTooLarge",
            415 => "unsupportedMediaType",
            421 => "misdirectedRequest",
            500 => "internal",
            501 => "notImplemented",
            503 => "unavailable",
            _ => "error",
        }
    }

    /// The error as the workplace API's body: `{"status": "404", "error": "notFound",
    /// "detail": "..."}` (plain JSON: the workplace API is not SCIM).
    pub fn to_workplace_json(&self) -> Value {
        let mut doc = Map::with_capacity(3);
        doc.insert(
            "status".into(),
            Value::String(self.status.as_u16().to_string()),
        );
        doc.insert("error".into(), Value::String(self.workplace_code().into()));
        doc.insert("detail".into(), Value::String(self.detail.clone()));
        Value::Object(doc)
    }

    /// The error as a workplace API response (`application/json`), with the same `Allow` and
    /// `WWW-Authenticate` headers as [`ApiError::into_response`].
    pub fn into_workplace_response(self) -> Response<Body> {
        let mut response = response::json(self.status, &self.to_workplace_json());
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(response::APPLICATION_JSON),
        );
        if let Some(allow) = self.allow {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if self.challenge {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"scimd\""),
            );
        }
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// What the answer to an unknown attribute adds: identity providers send the custom
/// attributes an administrator mapped, and only the operator can make them known.
pub(crate) const ADD_AN_ATTRIBUTE: &str = "; if the identity provider is meant to send it, \
     the operator adds it to this tenant's schemas (`scimd schema set --tenant NAME FILE`, see \
     docs/operations.md, \"Tenant schemas\"), and GET /Schemas lists what is defined";

impl From<SchemaError> for ApiError {
    fn from(e: SchemaError) -> Self {
        let mut detail = e.to_string();
        if e.is_unknown_attribute() {
            detail.push_str(ADD_AN_ATTRIBUTE);
        }
        ApiError::scim(e.scim_type(), detail)
    }
}

impl From<FilterError> for ApiError {
    fn from(e: FilterError) -> Self {
        match e {
            // A query parameter or SearchRequest member: the detail names it already.
            FilterError::Search { scim_type, detail } => ApiError::scim(scim_type, detail),
            other => ApiError::scim(other.scim_type(), format!("filter: {other}")),
        }
    }
}

impl From<PatchError> for ApiError {
    fn from(e: PatchError) -> Self {
        if let PatchError::TooManyOperations { .. } = e {
            // RFC 7644 section 3.7.4: exceeding maxOperations is 413, with no scimType.
            return ApiError::payload_too_large(e.to_string());
        }
        let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
        ApiError {
            scim_type: Some(e.scim_type().as_str()),
            ..ApiError::new(status, e.to_string())
        }
    }
}

/// Maps a store error; a backend failure becomes a 500 whose detail is logged, not sent.
pub(crate) fn from_store(e: StoreError, request_id: &str) -> ApiError {
    let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let StoreError::StorageFull(cause) = &e {
        // Not a bug and not the client's fault: the operator must free space. The write was
        // not kept (it is safe to retry), and reads go on.
        tracing::error!(request_id, error = %cause, "storage full: writes are refused until space is freed");
        return ApiError::unavailable(
            "the server's storage is full: this write was not kept; reads still work; retry \
             later (the operator must free disk space)",
            60,
        );
    }
    if let StoreError::Cancelled(why) = &e {
        return ApiError::unavailable(
            format!("this write was not started and nothing of it was kept: {why}; send it again"),
            1,
        );
    }
    if let StoreError::Timeout(cause) = &e {
        // The store's own deadline (a read interrupted, a statement timeout, no pooled
        // connection in time): not a bug, and the same request may succeed once the load
        // passes, so 503 with the Retry-After the request timeout gives too.
        tracing::warn!(request_id, error = %cause, "store timeout");
        return ApiError::unavailable(
            format!("the server could not answer in time: {cause}; retry later"),
            1,
        );
    }
    if status.is_server_error() {
        tracing::error!(request_id, error = %e, "store failure");
        return ApiError::internal(request_id);
    }
    let detail = match &e {
        StoreError::Filter(f) => format!("filter: {f}"),
        other => other.to_string(),
    };
    ApiError {
        scim_type: e.scim_type(),
        ..ApiError::new(status, detail)
    }
}

/// Why the server could not start or stopped abnormally.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// Binding or accepting on the listening socket failed.
    #[error("listening socket: {0}")]
    Io(#[from] std::io::Error),
    /// The TLS certificate or key could not be loaded.
    #[error("TLS: {detail}")]
    Tls {
        /// Which file, and what is wrong with it.
        detail: String,
        /// The PEM parser's or rustls's error, when one of them failed.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The configuration is inconsistent.
    #[error("configuration: {0}")]
    Config(String),
    /// The server would listen on every interface (`0.0.0.0`, `[::]`) with neither a public
    /// base URL nor allowed hosts: it could not tell the names clients use from forged ones,
    /// and would build links from whatever `Host` a request sends.
    #[error(
        "listening on {address} (every interface) needs a public base URL or a list of allowed hosts: without either, the server would build the links in its responses from whatever Host header a client sends"
    )]
    UnrestrictedHost {
        /// The wildcard address.
        address: std::net::SocketAddr,
    },
    /// The schema registry lacks the User or Group resource type.
    #[error("schemas: {0}")]
    Schema(String),
    /// A value is not an IP address or network in CIDR notation (e.g. a trusted proxy).
    #[error("IP network {value:?}: {reason}")]
    Network {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: String,
    },
}
