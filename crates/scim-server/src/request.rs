//! Reading requests: query parameters, bodies (media type, size, JSON) and conditional
//! headers (the host a request names is checked in `host.rs`). Every malformed input is a
//! 400 that says what and where, never a panic or a 500.

use crate::error::ApiError;
use bytes::Bytes;
use http::{HeaderMap, header};
use http_body_util::{BodyExt, Limited};
use serde_json::Value;

// Entity tags are protocol (RFC 7644 section 3.14), shared with the bulk `version` member.
pub use scim_patch::etag::{EtagCondition, parse_etags};

/// The request bodies the services read: any `http_body::Body` (hyper's `Incoming`, axum's
/// `Body`, ...) whose errors convert into a boxed error.
pub(crate) trait RequestBody:
    http_body::Body<Data: Send, Error: Into<Box<dyn std::error::Error + Send + Sync>>> + Send + 'static
{
}

impl<B> RequestBody for B
where
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
}

/// The decoded query string: `(name, value)` pairs in order.
#[derive(Debug, Default, Clone)]
pub struct QueryParams {
    pairs: Vec<(String, String)>,
}

impl QueryParams {
    /// Parses `application/x-www-form-urlencoded` query text (RFC 3986 percent-encoding, `+`
    /// as space). Invalid escapes or bytes that do not decode as UTF-8 are refused.
    pub fn parse(query: Option<&str>) -> Result<QueryParams, ApiError> {
        let mut pairs = Vec::new();
        for piece in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            let name =
                decode(name).map_err(|e| ApiError::invalid_value(format!("query string: {e}")))?;
            let value = decode(value)
                .map_err(|e| ApiError::invalid_value(format!("query parameter {name:?}: {e}")))?;
            pairs.push((name, value));
        }
        Ok(QueryParams { pairs })
    }

    /// The value of `name` (matched case-insensitively: RFC 7644 section 3.4.2 names
    /// parameters in camelCase, and clients vary), refusing a parameter given twice.
    pub fn get(&self, name: &str) -> Result<Option<&str>, ApiError> {
        Ok(scim_filter::search::query_param(&self.pairs, name)?)
    }

    /// The decoded `(name, value)` pairs, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Whether any parameter is present under `name`.
    pub fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k.eq_ignore_ascii_case(name))
    }
}

fn decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                let byte = hex
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| {
                        format!(
                            "invalid percent-escape at byte {i} (expected % and two hex digits)"
                        )
                    })?;
                out.push(byte);
                i += 2;
            }
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|e| {
        format!(
            "not UTF-8 after percent-decoding (at byte {})",
            e.utf8_error().valid_up_to()
        )
    })
}

/// Checks that a request body is JSON: `application/scim+json` or `application/json` (RFC 7644
/// section 3.1), parameters such as `charset` allowed. A missing `Content-Type` is taken as
/// JSON, because some clients omit it. Any other media type is 415 Unsupported Media Type (RFC
/// 9110 section 15.5.16), not 400: the body may be well formed, just not in a format this
/// server reads, and the detail lists the ones it does.
pub fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let text = value.to_str().unwrap_or("");
    let essence = text.split(';').next().unwrap_or("").trim();
    if essence.eq_ignore_ascii_case("application/scim+json")
        || essence.eq_ignore_ascii_case("application/json")
    {
        Ok(())
    } else {
        Err(ApiError::unsupported_media_type(format!(
            "Content-Type {text:?} is not supported: the accepted media types are \
             application/scim+json and application/json"
        )))
    }
}

/// Reads the body, refusing more than `limit` bytes with 413 (before reading it, when
/// `Content-Length` announces it).
pub(crate) async fn read_body<B: RequestBody>(
    headers: &HeaderMap,
    body: B,
    limit: usize,
    what: &str,
) -> Result<Bytes, ApiError> {
    if let Some(length) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
    {
        if let Ok(length) = length.trim().parse::<u64>() {
            if length > limit as u64 {
                return Err(too_large(what, limit));
            }
        }
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large(what, limit))
        }
        Err(e) => Err(ApiError::invalid_syntax(format!(
            "could not read the request body: {e}"
        ))),
    }
}

fn too_large(what: &str, limit: usize) -> ApiError {
    ApiError::payload_too_large(format!("{what} is larger than the limit of {limit} bytes"))
}

/// Parses a JSON body; the error names the line and column.
pub fn parse_json(bytes: &[u8]) -> Result<Value, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::invalid_syntax(
            "the request body is empty; a JSON object was expected",
        ));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ApiError::invalid_syntax(format!("the request body is not valid JSON: {e}")))
}

/// Parses `If-Match` or `If-None-Match`, if present.
pub fn etag_condition(
    headers: &HeaderMap,
    name: header::HeaderName,
) -> Result<Option<EtagCondition>, ApiError> {
    let values: Vec<&http::HeaderValue> = headers.get_all(&name).iter().collect();
    if values.is_empty() {
        return Ok(None);
    }
    let mut texts = Vec::with_capacity(values.len());
    for value in values {
        texts.push(
            value
                .to_str()
                .map_err(|_| ApiError::invalid_value(format!("{name}: not ASCII text")))?,
        );
    }
    Ok(Some(parse_etags(name.as_str(), &texts.join(","))?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn encode(text: &str) -> String {
        text.bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    char::from(b).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    proptest! {
        /// Whatever the query string, parsing answers (never panics), and a percent-encoded
        /// value decodes back to itself.
        #[test]
        fn query_parsing_is_total_and_round_trips(raw in "\\PC{0,40}", value in "\\PC{0,40}") {
            let _ = QueryParams::parse(Some(&raw));
            let q = QueryParams::parse(Some(&format!("filter={}", encode(&value)))).unwrap();
            prop_assert_eq!(q.get("filter").unwrap(), Some(value.as_str()));
        }
    }

    #[test]
    fn query_decoding() {
        let q = QueryParams::parse(Some("filter=userName+eq+%22bj%C3%A9%22&count=5")).unwrap();
        assert_eq!(q.get("filter").unwrap(), Some("userName eq \"bjé\""));
        assert_eq!(q.get("COUNT").unwrap(), Some("5"));
        assert!(QueryParams::parse(Some("filter=%ZZ")).is_err());
        assert!(QueryParams::parse(Some("filter=%C3")).is_err());
        let twice = QueryParams::parse(Some("count=1&count=2")).unwrap();
        assert!(twice.get("count").is_err());
    }

    #[test]
    fn etags() {
        let mut h = HeaderMap::new();
        h.insert(header::IF_MATCH, "W/\"3\", \"4\", W/\"x\"".parse().unwrap());
        let c = etag_condition(&h, header::IF_MATCH).unwrap().unwrap();
        assert!(c.matches(3) && c.matches(4) && !c.matches(5));
        h.insert(header::IF_MATCH, "nonsense".parse().unwrap());
        assert!(etag_condition(&h, header::IF_MATCH).is_err());
        h.insert(header::IF_MATCH, "*".parse().unwrap());
        assert_eq!(
            etag_condition(&h, header::IF_MATCH).unwrap(),
            Some(EtagCondition::Any)
        );
    }
}
