//! Query helpers both SQL backends share: they depend on the filter AST, the query and JSON
//! documents, never on a database.

use crate::token;
use crate::types::{Query, ResourceKind};
use scim_filter::CompareOp;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What a cursor (RFC 9865) is bound to: a cursor from one query is refused by another.
pub(crate) fn fingerprint(kind: ResourceKind, query: &Query) -> String {
    let filter = query
        .filter
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let sort = query
        .sort_by
        .as_ref()
        .map(ToString::to_string)
        .unwrap_or_default();
    let text = format!("{kind}\u{0}{filter}\u{0}{sort}\u{0}{:?}", query.sort_order);
    token::hex(&Sha256::digest(text.as_bytes())[..8])
}

/// The SQL operator of an ordering comparison (`eq` included); `None` for the others.
pub(crate) fn ordering_sql(op: CompareOp) -> Option<&'static str> {
    match op {
        CompareOp::Eq => Some("="),
        CompareOp::Gt => Some(">"),
        CompareOp::Ge => Some(">="),
        CompareOp::Lt => Some("<"),
        CompareOp::Le => Some("<="),
        _ => None,
    }
}

/// The value a multi-valued attribute sorts by: its primary value, else its first
/// (RFC 7644 section 3.4.2.3).
pub(crate) fn primary_or_first(value: &Value) -> &Value {
    match value {
        Value::Array(items) => items
            .iter()
            .find(|v| v.get("primary").and_then(Value::as_bool) == Some(true))
            .or_else(|| items.first())
            .unwrap_or(&Value::Null),
        other => other,
    }
}

/// An object member, exactly then ignoring ASCII case (as the evaluator looks them up).
pub(crate) fn get_key<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    let object = value.as_object()?;
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}
