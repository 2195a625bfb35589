//! Building responses: the SCIM media type (RFC 7644 section 3.1), empty answers, ETags.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use http_body_util::Full;
use serde_json::Value;

/// The body of every response: the whole document, already serialised, or (for an export)
/// chunks produced while the client reads them, so that a long answer is never held whole.
#[derive(Debug)]
pub struct Body(Inner);

#[derive(Debug)]
enum Inner {
    Full(Full<Bytes>),
    /// Chunks from a producer task; the channel's bound is the memory an answer holds, and a
    /// client that goes away drops the receiver, which stops the producer.
    Stream(tokio::sync::mpsc::Receiver<Bytes>),
}

impl Body {
    /// A body of these bytes.
    pub fn new(bytes: Bytes) -> Body {
        Body(Inner::Full(Full::new(bytes)))
    }

    /// A body of the chunks sent on `chunks`, ending when the sender is dropped.
    pub fn stream(chunks: tokio::sync::mpsc::Receiver<Bytes>) -> Body {
        Body(Inner::Stream(chunks))
    }
}

impl Default for Body {
    fn default() -> Self {
        Body::new(Bytes::new())
    }
}

impl http_body::Body for Body {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        match &mut self.get_mut().0 {
            Inner::Full(full) => std::pin::Pin::new(full).poll_frame(cx),
            Inner::Stream(chunks) => chunks
                .poll_recv(cx)
                .map(|chunk| chunk.map(|bytes| Ok(http_body::Frame::data(bytes)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.0 {
            Inner::Full(full) => full.is_end_stream(),
            Inner::Stream(_) => false,
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match &self.0 {
            Inner::Full(full) => full.size_hint(),
            Inner::Stream(_) => http_body::SizeHint::default(),
        }
    }
}

/// The media type of every SCIM document (RFC 7644 section 3.1).
pub const SCIM_JSON: &str = "application/scim+json";

/// The media type of every workplace API body (plain JSON: the workplace API is not SCIM).
pub const APPLICATION_JSON: &str = "application/json";

/// A JSON response with the SCIM media type.
pub fn json(status: StatusCode, document: &Value) -> Response<Body> {
    // Serialising a `Value` cannot fail (its keys are strings); an empty body would be the
    // only fallback, and is never reached.
    let bytes = serde_json::to_vec(document).unwrap_or_default();
    let mut response = Response::new(Body::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(SCIM_JSON));
    response
}

/// A response with no body (204, 304).
pub fn empty(status: StatusCode) -> Response<Body> {
    let mut response = Response::new(Body::default());
    *response.status_mut() = status;
    response
}

/// A plain-text response (health checks, metrics).
pub fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut response = Response::new(Body::new(Bytes::from(body)));
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
