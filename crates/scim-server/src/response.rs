//! Building responses: the SCIM media type (RFC 7644 section 3.1), empty answers, ETags.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use serde_json::Value;

/// The body of every response: the whole document, already serialised.
pub type Body = Full<Bytes>;

/// The media type of every SCIM document (RFC 7644 section 3.1).
pub const SCIM_JSON: &str = "application/scim+json";

/// The media type of every workplace API body (plain JSON: the workplace API is not SCIM).
pub const APPLICATION_JSON: &str = "application/json";

/// A JSON response with the SCIM media type.
pub fn json(status: StatusCode, document: &Value) -> Response<Body> {
    // Serialising a `Value` cannot fail (its keys are strings); an empty body would be the
    // only fallback, and is never reached.
    let bytes = serde_json::to_vec(document).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    response
}

/// A response with no body (204, 304).
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}

/// A plain-text response (health checks, metrics).
pub fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Adds `ETag` (RFC 7644 section 3.14; RFC 9110 section 8.8.3).
pub fn with_etag(mut response: Response<Body>, etag: &str) -> Response<Body> {
    if let Ok(value) = HeaderValue::from_str(etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response
}

/// Adds `Location` (RFC 7644 section 3.3: the created resource's URI).
pub fn with_location(mut response: Response<Body>, location: &str) -> Response<Body> {
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}
