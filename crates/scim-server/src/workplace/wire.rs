//! The workplace API's JSON: reading request bodies, path ids and query parameters into the
//! store's types (every mistake a 400 naming the field), and rendering what the store returns.
//!
//! Times are accepted as whole Unix seconds or as RFC 3339 strings (`xsd:dateTime`, RFC 7643
//! section 2.3.5, parsed by `scim_schema`), and served as seconds plus `startTime`/`endTime`
//! strings in UTC.

use crate::error::ApiError;
use crate::request::QueryParams;
use crate::response::Body;
use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode, header};
use scim_schema::DateTime;
use scim_store::workplace::{BookingRecord, FeedEvent, FeedSubject, PlaceRecord, WorkplaceConfig};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use workplace_policy::time::{from_datetime, to_datetime};
use workplace_policy::{
    Assignment, CascadeSettings, Decision, PolicySet, Preview, Rule, Timestamp,
};

use crate::response::APPLICATION_JSON;

/// The earliest instant accepted: 1970-01-01T00:00:00Z.
pub const MIN_TIME: Timestamp = 0;

/// The latest instant accepted: 9999-12-31T23:59:59Z, the last an RFC 3339 string (four-digit
/// years) can name, so that every accepted time can be served back as one.
pub const MAX_TIME: Timestamp = 253_402_300_799;

/// The longest id accepted (in a path, a body or a query), in bytes.
pub const MAX_ID_BYTES: usize = 256;

/// The longest cancellation reason accepted, in characters.
pub const MAX_REASON_CHARS: usize = 1_000;

/// The page size when a list request gives no `limit`.
pub const DEFAULT_LIMIT: usize = 100;

/// The largest page (the store's cap).
pub const MAX_LIMIT: usize = scim_store::workplace::plan::MAX_PAGE;

/// A JSON response with the workplace API's media type.
pub fn json(status: StatusCode, document: &Value) -> Response<Body> {
    // Serialising a `Value` cannot fail (its keys are strings).
    let bytes = serde_json::to_vec(document).unwrap_or_default();
    let mut response = Response::new(crate::response::Body::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(APPLICATION_JSON),
    );
    response
}

/// A weak entity tag for a version, as the SCIM endpoints serve them (RFC 7644 section 3.14).
pub fn etag(version: u64) -> String {
    format!("W/\"{version}\"")
}

/// `value` as an owned object, or a 400 saying that `what` must be one.
pub fn object(value: Value, what: &str) -> Result<Map<String, Value>, ApiError> {
    match value {
        Value::Object(map) => Ok(map),
        other => Err(ApiError::invalid_syntax(format!(
            "{what} must be a JSON object, not {}",
            kind_of(&other)
        ))),
    }
}

/// The JSON type of a value, for error messages.
fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A request body's members, read one by one; [`Fields::finish`] refuses members nobody read
/// (a typo such as `strat` must not be silently ignored).
#[derive(Debug)]
pub struct Fields {
    map: Map<String, Value>,
    what: &'static str,
}

impl Fields {
    /// The members of `body`, which must be an object; `what` names it in errors.
    pub fn new(body: Value, what: &'static str) -> Result<Fields, ApiError> {
        Ok(Fields {
            map: object(body, what)?,
            what,
        })
    }

    /// The member `name`, if present and not `null`.
    pub fn take(&mut self, name: &str) -> Option<Value> {
        self.map.remove(name).filter(|v| !v.is_null())
    }

    fn missing(&self, name: &str, expected: &str) -> ApiError {
        ApiError::invalid_value(format!(
            "{}: \"{name}\" is required ({expected})",
            self.what
        ))
    }

    /// A required id member.
    pub fn id(&mut self, name: &str) -> Result<String, ApiError> {
        match self.take(name) {
            Some(value) => id_value(self.what, name, value),
            None => Err(self.missing(name, "a string id")),
        }
    }

    /// An optional string member of at most `max_chars` characters.
    pub fn text(&mut self, name: &str, max_chars: usize) -> Result<Option<String>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) if s.chars().count() <= max_chars => Ok(Some(s)),
            Some(Value::String(_)) => Err(ApiError::invalid_value(format!(
                "{}: \"{name}\" is longer than {max_chars} characters",
                self.what
            ))),
            Some(other) => Err(ApiError::invalid_value(format!(
                "{}: \"{name}\" must be a string, not {}",
                self.what,
                kind_of(&other)
            ))),
        }
    }

    /// A required time member: Unix seconds or an RFC 3339 string.
    pub fn time(&mut self, name: &str) -> Result<Timestamp, ApiError> {
        match self.take(name) {
            Some(value) => time_value(&format!("{}: \"{name}\"", self.what), &value),
            None => Err(self.missing(
                name,
                "Unix seconds or an RFC 3339 date-time such as \"2025-06-18T09:00:00Z\"",
            )),
        }
    }

    /// Fails if any member was not read.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.map.keys().next() {
            None => Ok(()),
            Some(name) => Err(ApiError::invalid_value(format!(
                "{}: unknown member \"{name}\"",
                self.what
            ))),
        }
    }
}

fn id_value(what: &str, name: &str, value: Value) -> Result<String, ApiError> {
    match value {
        Value::String(s) => check_id(&format!("{what}: \"{name}\""), s),
        other => Err(ApiError::invalid_value(format!(
            "{what}: \"{name}\" must be a string id, not {}",
            kind_of(&other)
        ))),
    }
}

/// Checks an id: 1 to [`MAX_ID_BYTES`] bytes, no control characters.
pub fn check_id(what: &str, id: String) -> Result<String, ApiError> {
    if id.is_empty() {
        return Err(ApiError::invalid_value(format!("{what}: the id is empty")));
    }
    if id.len() > MAX_ID_BYTES {
        return Err(ApiError::invalid_value(format!(
            "{what}: the id is longer than {MAX_ID_BYTES} bytes"
        )));
    }
    if id.chars().any(char::is_control) {
        return Err(ApiError::invalid_value(format!(
            "{what}: the id contains a control character"
        )));
    }
    Ok(id)
}

/// An id from a path segment, percent-decoded (RFC 3986 section 2.1; `+` is itself, unlike
/// in a query) and checked like any id.
pub fn path_id(what: &str, segment: &str) -> Result<String, ApiError> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let byte = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| {
                    ApiError::invalid_value(format!(
                        "{what} in the path: invalid percent-escape at byte {i}"
                    ))
                })?;
            out.push(byte);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    let text = String::from_utf8(out).map_err(|_| {
        ApiError::invalid_value(format!("{what} in the path: not UTF-8 after decoding"))
    })?;
    check_id(&format!("{what} in the path"), text)
}

/// A time given as a JSON value: whole Unix seconds, or an RFC 3339 string.
pub fn time_value(what: &str, value: &Value) -> Result<Timestamp, ApiError> {
    let seconds = match value {
        Value::Number(n) => n.as_i64().ok_or_else(|| {
            ApiError::invalid_value(format!(
                "{what}: {n} is not whole Unix seconds between {MIN_TIME} and {MAX_TIME}"
            ))
        })?,
        Value::String(s) => datetime(what, s)?,
        other => {
            return Err(ApiError::invalid_value(format!(
                "{what} must be Unix seconds or an RFC 3339 date-time string, not {}",
                kind_of(other)
            )));
        }
    };
    in_range(what, seconds)
}

/// A time given as query text: digits (Unix seconds) or an RFC 3339 string.
pub fn time_text(what: &str, text: &str) -> Result<Timestamp, ApiError> {
    let trimmed = text.trim();
    let numeric = !trimmed.is_empty()
        && trimmed
            .trim_start_matches(['-', '+'])
            .bytes()
            .all(|b| b.is_ascii_digit());
    let seconds = if numeric {
        let n = scim_filter::search::parse_integer(what, trimmed)?;
        i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
    } else {
        datetime(what, trimmed)?
    };
    in_range(what, seconds)
}

fn datetime(what: &str, text: &str) -> Result<Timestamp, ApiError> {
    DateTime::parse(text).map(from_datetime).ok_or_else(|| {
        ApiError::invalid_value(format!(
            "{what}: {text:?} is not an RFC 3339 date-time such as \"2025-06-18T09:00:00Z\""
        ))
    })
}

fn in_range(what: &str, seconds: Timestamp) -> Result<Timestamp, ApiError> {
    if (MIN_TIME..=MAX_TIME).contains(&seconds) {
        Ok(seconds)
    } else {
        Err(ApiError::invalid_value(format!(
            "{what}: {seconds} is outside the accepted times, {MIN_TIME} (1970-01-01T00:00:00Z) to {MAX_TIME} (9999-12-31T23:59:59Z)"
        )))
    }
}

/// An instant as an RFC 3339 string in UTC.
pub fn rfc3339(seconds: Timestamp) -> String {
    to_datetime(seconds).to_string()
}

/// `limit`: 1 to [`MAX_LIMIT`], [`DEFAULT_LIMIT`] when absent. Larger values are capped
/// rather than refused, as RFC 7644 section 3.4.2.4 treats `count`.
pub fn limit(query: &QueryParams) -> Result<usize, ApiError> {
    match query.get("limit")? {
        None => Ok(DEFAULT_LIMIT),
        Some(text) => {
            let n = scim_filter::search::parse_integer("limit", text)?;
            if n < 1 {
                return Err(ApiError::invalid_value(format!(
                    "limit must be at least 1, not {n}"
                )));
            }
            Ok(usize::try_from(n).unwrap_or(MAX_LIMIT).min(MAX_LIMIT))
        }
    }
}

/// `after` as a feed position (a sequence number); 0 when absent. Positions beyond any feed
/// saturate (an empty page), negative ones are refused.
pub fn after_seq(query: &QueryParams) -> Result<u64, ApiError> {
    match query.get("after")? {
        None => Ok(0),
        Some(text) => {
            let n = scim_filter::search::parse_integer("after", text)?;
            if n < 0 {
                return Err(ApiError::invalid_value(format!(
                    "after must be a feed position (0 or more), not {n}"
                )));
            }
            Ok(u64::try_from(n).unwrap_or(u64::MAX))
        }
    }
}

/// An optional id query parameter.
pub fn query_id(query: &QueryParams, name: &str) -> Result<Option<String>, ApiError> {
    query
        .get(name)?
        .map(|v| check_id(&format!("query parameter {name}"), v.to_owned()))
        .transpose()
}

/// An optional time query parameter.
pub fn query_time(query: &QueryParams, name: &str) -> Result<Option<Timestamp>, ApiError> {
    query
        .get(name)?
        .map(|v| time_text(&format!("query parameter {name}"), v))
        .transpose()
}

/// An optional boolean query parameter (`true` or `false`).
pub fn query_bool(query: &QueryParams, name: &str) -> Result<Option<bool>, ApiError> {
    match query.get(name)? {
        None => Ok(None),
        Some(v) if v.eq_ignore_ascii_case("true") => Ok(Some(true)),
        Some(v) if v.eq_ignore_ascii_case("false") => Ok(Some(false)),
        Some(v) => Err(ApiError::invalid_value(format!(
            "query parameter {name} must be true or false, not {v:?}"
        ))),
    }
}

/// The feed subject named `name` (`User`, `Booking`..., in any case).
pub fn subject(name: &str) -> Result<FeedSubject, ApiError> {
    FeedSubject::ALL
        .into_iter()
        .find(|s| s.as_str().eq_ignore_ascii_case(name))
        .ok_or_else(|| {
            let names: Vec<&str> = FeedSubject::ALL.iter().map(|s| s.as_str()).collect();
            ApiError::invalid_value(format!(
                "query parameter subject: {name:?} is not one of {}",
                names.join(", ")
            ))
        })
}

/// A typed value from JSON, the error naming `what`.
fn typed<T: DeserializeOwned>(what: &str, value: Value) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|e| ApiError::invalid_value(format!("{what}: {e}")))
}

/// A rule from JSON; `what` names where it was (`rules[2]`, the request body).
pub fn rule(what: &str, value: Value) -> Result<Rule, ApiError> {
    if !value.is_object() {
        return Err(ApiError::invalid_value(format!(
            "{what} must be a rule object, not {}",
            kind_of(&value)
        )));
    }
    typed(what, value)
}

/// The body of `PUT /policies` and `POST /policies/preview`: a policy set (`rules`, `default`,
/// `utcOffsetSeconds`) and, optionally, `settings`. `version`, which `GET /policies` serves,
/// is read-only and ignored (the precondition is `If-Match`).
pub fn policies_body(body: Value) -> Result<(PolicySet, Option<CascadeSettings>), ApiError> {
    let mut map = object(body, "the policies")?;
    map.remove("version");
    let settings = match map.remove("settings") {
        None | Some(Value::Null) => None,
        Some(value) => Some(typed::<CascadeSettings>("settings", value)?),
    };
    let rules = match map.remove("rules") {
        Some(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, item)| rule(&format!("rules[{i}]"), item))
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => {
            return Err(ApiError::invalid_value(format!(
                "the policies: \"rules\" must be an array, not {}",
                kind_of(&other)
            )));
        }
        None => {
            return Err(ApiError::invalid_value(
                "the policies: \"rules\" is required (an array of rules, possibly empty)",
            ));
        }
    };
    map.insert("rules".into(), Value::Array(Vec::new()));
    let mut set: PolicySet = typed("the policies", Value::Object(map))?;
    set.rules = rules;
    Ok((set, settings))
}

/// `value`, an object, with `extra` members added.
fn with(value: Value, extra: impl IntoIterator<Item = (&'static str, Value)>) -> Value {
    let mut value = value;
    if let Some(map) = value.as_object_mut() {
        for (name, member) in extra {
            map.insert(name.into(), member);
        }
    }
    value
}

fn to_json<T: serde::Serialize>(value: &T) -> Value {
    // The workplace types serialise to JSON with string keys: this cannot fail.
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// A catalog entry: its document and `version`.
pub fn place(record: &PlaceRecord) -> Value {
    with(
        record.document.clone(),
        [("version", Value::from(record.version))],
    )
}

/// The policies as served: `rules`, `default`, `utcOffsetSeconds`, `settings`, `version`.
pub fn config(config: &WorkplaceConfig) -> Value {
    with(
        to_json(&config.policies),
        [
            ("settings", to_json(&config.settings)),
            ("version", Value::from(config.version)),
        ],
    )
}

/// A preview (or what a change applied) with its `summary`.
pub fn preview(preview: &Preview) -> Value {
    with(
        to_json(preview),
        [("summary", Value::String(preview.summary()))],
    )
}

/// A decision with its `explanation` (one line per reason).
pub fn decision(decision: &Decision) -> Value {
    with(
        to_json(decision),
        [("explanation", Value::String(decision.explain()))],
    )
}

/// A booking: the stored record (flat status, `by`, `reason`, `cause`, `flag`, `version`)
/// with `startTime` and `endTime`.
pub fn booking(record: &BookingRecord) -> Value {
    with(
        to_json(record),
        [
            ("startTime", Value::String(rfc3339(record.booking.start))),
            ("endTime", Value::String(rfc3339(record.booking.end))),
        ],
    )
}

/// An assignment with `sinceTime`.
pub fn assignment(assignment: &Assignment) -> Value {
    with(
        to_json(assignment),
        [("sinceTime", Value::String(rfc3339(assignment.since)))],
    )
}

/// A feed entry.
pub fn event(event: &FeedEvent) -> Value {
    let mut map = Map::with_capacity(9);
    map.insert("seq".into(), Value::from(event.seq));
    map.insert("subject".into(), Value::from(event.subject.as_str()));
    map.insert("id".into(), Value::from(event.id.clone()));
    map.insert("op".into(), Value::from(event.op.clone()));
    if let Some(version) = event.version {
        map.insert("version".into(), Value::from(version));
    }
    map.insert("at".into(), Value::String(event.at.to_string()));
    map.insert("actor".into(), Value::from(event.actor.clone()));
    if let Some(request_id) = &event.request_id {
        map.insert("requestId".into(), Value::from(request_id.clone()));
    }
    if let Some(detail) = &event.detail {
        map.insert("detail".into(), detail.clone());
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn times_are_seconds_or_rfc3339_within_range() {
        assert_eq!(
            time_value("t", &json!(1_750_000_000)).unwrap(),
            1_750_000_000
        );
        assert_eq!(
            time_value("t", &json!("2025-06-15T15:06:40Z")).unwrap(),
            1_750_000_000
        );
        assert_eq!(
            time_value("t", &json!("2025-06-15T17:06:40+02:00")).unwrap(),
            1_750_000_000
        );
        assert_eq!(time_text("t", "1750000000").unwrap(), 1_750_000_000);
        assert_eq!(
            time_text("t", "2025-06-15T15:06:40Z").unwrap(),
            1_750_000_000
        );
        for bad in [
            json!(1.5),
            json!(-1),
            json!(u64::MAX),
            json!("tomorrow"),
            json!(true),
            json!(MAX_TIME + 1),
        ] {
            let e = time_value("start", &bad).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST, "{bad}");
            assert!(e.detail.starts_with("start"), "{}", e.detail);
        }
        assert!(time_text("t", "99999999999999999999999999999").is_err());
        assert_eq!(rfc3339(1_750_000_000), "2025-06-15T15:06:40Z");
        assert_eq!(rfc3339(MAX_TIME), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn path_ids_are_decoded_and_checked() {
        assert_eq!(path_id("site", "lon%20bridge").unwrap(), "lon bridge");
        assert_eq!(path_id("site", "a+b").unwrap(), "a+b");
        assert!(path_id("site", "%zz").is_err());
        assert!(path_id("site", "%").is_err());
        assert!(path_id("site", "%C3").is_err());
        assert!(path_id("site", "%0A").is_err());
        assert!(path_id("site", &"x".repeat(MAX_ID_BYTES + 1)).is_err());
    }

    #[test]
    fn fields_refuse_typos_and_wrong_types() {
        let mut fields = Fields::new(json!({"person": "u1", "strat": 1}), "the booking").unwrap();
        assert_eq!(fields.id("person").unwrap(), "u1");
        let e = fields.finish().unwrap_err();
        assert_eq!(e.detail, "the booking: unknown member \"strat\"");
        let mut fields = Fields::new(json!({"person": 7}), "the booking").unwrap();
        let e = fields.id("person").unwrap_err();
        assert_eq!(
            e.detail,
            "the booking: \"person\" must be a string id, not a number"
        );
        assert!(Fields::new(json!([1]), "the booking").is_err());
    }

    #[test]
    fn policies_bodies_name_the_bad_rule() {
        let e = policies_body(json!({
            "rules": [{"id": "a", "name": "A", "effect": "allow"}, {"id": "b", "name": "B", "effect": "maybe"}],
            "default": "deny"
        }))
        .unwrap_err();
        assert!(e.detail.starts_with("rules[1]: "), "{}", e.detail);
        let (set, settings) = policies_body(json!({
            "rules": [], "default": "allow", "utcOffsetSeconds": 3600, "version": 4,
            "settings": {"onLostEntitlement": "flag"}
        }))
        .unwrap();
        assert_eq!(set.utc_offset_seconds, 3600);
        assert!(settings.is_some());
        assert!(policies_body(json!({"rules": [], "default": "deny", "utcOffset": 1})).is_err());
        assert!(policies_body(json!({"default": "deny"})).is_err());
        assert!(
            policies_body(json!({"rules": [], "default": "deny", "utcOffsetSeconds": 1e12}))
                .is_err()
        );
    }

    proptest! {
        /// Whatever the text, reading it as a time, an id or a path id answers, never panics.
        #[test]
        fn readers_are_total(text in "\\PC{0,40}") {
            let _ = time_text("t", &text);
            let _ = time_value("t", &Value::String(text.clone()));
            let _ = path_id("id", &text);
        }
    }
}
