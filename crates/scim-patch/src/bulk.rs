//! The BulkRequest of RFC 7644 section 3.7, without HTTP or storage: parsing the message
//! ([`BulkRequest::parse`]), and the order its operations run in, with `bulkId` references
//! between them resolved in any order, circular ones included (section 3.7.1)
//! ([`BulkSchedule`]).
//!
//! The caller runs each operation the schedule hands out (as its single-request counterpart
//! would, substituting the ids resolved so far with [`substitute`]) and reports what it
//! created. When none can run because the remaining ones reference each other (a cycle,
//! e.g. two groups that contain each other), the schedule hands out a creation in the cycle
//! without the values that hold unresolved references, and the PATCH operations that add
//! those values back once the other resources exist: the circular-reference procedure of
//! section 3.7.1.
//!
//! ```
//! use scim_patch::bulk::{BulkRequest, BulkSchedule, BulkStep};
//! use serde_json::json;
//!
//! let message = json!({
//!     "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
//!     "Operations": [
//!         {"method": "POST", "path": "/Groups", "bulkId": "g",
//!          "data": {"displayName": "g", "members": [{"value": "bulkId:u"}]}},
//!         {"method": "POST", "path": "/Users", "bulkId": "u", "data": {"userName": "u"}},
//!     ],
//! });
//! let request = BulkRequest::parse(&message, 10)?;
//! let mut schedule = BulkSchedule::new(request.operations);
//! // The user runs first: the group references it.
//! let Some(BulkStep::Run { operation, .. }) = schedule.next_step() else { unreachable!() };
//! assert_eq!(operation.bulk_id.as_deref(), Some("u"));
//! schedule.resolve("u", "2819c223".into());
//! let Some(BulkStep::Run { mut operation, .. }) = schedule.next_step() else { unreachable!() };
//! schedule.substitute(operation.data.as_mut().unwrap());
//! assert_eq!(operation.data.unwrap()["members"][0]["value"], "2819c223");
//! assert!(schedule.next_step().is_none());
//! # Ok::<(), scim_patch::PatchError>(())
//! ```

use crate::PatchError;
use crate::etag::{EtagCondition, parse_etags};
use scim_schema::{ScimType, core};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};

/// What marks a reference to another operation's resource: `bulkId:<id>` (section 3.7.2).
pub const BULK_ID_PREFIX: &str = "bulkId:";

/// The method of a bulk operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BulkMethod {
    /// Create a resource (`path` is a collection).
    Post,
    /// Replace a resource.
    Put,
    /// Patch a resource.
    Patch,
    /// Delete a resource.
    Delete,
}

impl BulkMethod {
    /// The method's name, as the BulkResponse spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            BulkMethod::Post => "POST",
            BulkMethod::Put => "PUT",
            BulkMethod::Patch => "PATCH",
            BulkMethod::Delete => "DELETE",
        }
    }
}

/// One operation of a BulkRequest, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkOperation {
    /// Its index in `Operations` (the BulkResponse keeps the request's order).
    pub index: usize,
    /// Its method.
    pub method: BulkMethod,
    /// Its path, relative to the SCIM base (`/Users`, `/Groups/{id}`, `/Users/bulkId:x`).
    pub path: String,
    /// Its `bulkId` (required for POST).
    pub bulk_id: Option<String>,
    /// Its `version`, the precondition of a PUT, PATCH or DELETE.
    pub version: Option<EtagCondition>,
    /// Its `data` (absent only for DELETE).
    pub data: Option<Value>,
    /// The bulkIds this operation references (in `path` or anywhere in `data`).
    pub references: HashSet<String>,
}

/// A BulkRequest message (RFC 7644 section 3.7), checked.
#[derive(Debug, Clone, PartialEq)]
pub struct BulkRequest {
    /// `failOnErrors` (section 3.7.3): stop after this many errors; `None` runs them all.
    pub fail_on_errors: Option<u64>,
    /// The operations, in the request's order.
    pub operations: Vec<BulkOperation>,
}

fn invalid_syntax(detail: impl Into<String>) -> PatchError {
    PatchError::Request {
        scim_type: ScimType::InvalidSyntax,
        detail: detail.into(),
    }
}

fn invalid_value(detail: impl Into<String>) -> PatchError {
    PatchError::Request {
        scim_type: ScimType::InvalidValue,
        detail: detail.into(),
    }
}

impl BulkRequest {
    /// Parses and checks a BulkRequest: its `schemas`, `failOnErrors`, and each operation's
    /// members (a POST needs a `bulkId`, no two operations share one, every method but DELETE
    /// needs `data`). More than `max_operations` operations is
    /// [`PatchError::TooManyOperations`] (a 413, section 3.7.4).
    pub fn parse(body: &Value, max_operations: u32) -> Result<BulkRequest, PatchError> {
        let Value::Object(object) = body else {
            return Err(invalid_syntax("a BulkRequest must be a JSON object"));
        };
        let member = |m: &Map<String, Value>, name: &str| {
            m.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.clone())
        };
        match member(object, "schemas") {
            Some(Value::Array(urns))
                if urns.iter().any(|u| u.as_str() == Some(core::BULK_REQUEST)) => {}
            _ => {
                return Err(invalid_syntax(format!(
                    "schemas: a BulkRequest must list {:?} (RFC 7644 section 3.7)",
                    core::BULK_REQUEST
                )));
            }
        }
        let fail_on_errors = match member(object, "failOnErrors") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match n.as_u64() {
                Some(0) => None,
                Some(n) => Some(n),
                None => {
                    return Err(invalid_value(format!(
                        "failOnErrors: must be a positive integer, not {n}"
                    )));
                }
            },
            Some(other) => {
                return Err(invalid_syntax(format!(
                    "failOnErrors: must be an integer, not {other}"
                )));
            }
        };
        let Some(Value::Array(items)) = member(object, "Operations") else {
            return Err(invalid_syntax(
                "Operations: a BulkRequest must have an Operations array",
            ));
        };
        if items.len() > max_operations as usize {
            return Err(PatchError::TooManyOperations {
                operations: items.len(),
                max_operations,
            });
        }
        let mut operations = Vec::with_capacity(items.len());
        let mut bulk_ids = HashSet::new();
        for (index, item) in items.into_iter().enumerate() {
            let at = |member: &str| format!("Operations[{index}].{member}");
            let Value::Object(op) = item else {
                return Err(invalid_syntax(format!(
                    "Operations[{index}]: must be an object"
                )));
            };
            let method = match member(&op, "method").as_ref().and_then(Value::as_str) {
                Some(m) if m.eq_ignore_ascii_case("POST") => BulkMethod::Post,
                Some(m) if m.eq_ignore_ascii_case("PUT") => BulkMethod::Put,
                Some(m) if m.eq_ignore_ascii_case("PATCH") => BulkMethod::Patch,
                Some(m) if m.eq_ignore_ascii_case("DELETE") => BulkMethod::Delete,
                Some(m) => {
                    return Err(invalid_value(format!(
                        "{}: {m:?} is not POST, PUT, PATCH or DELETE",
                        at("method")
                    )));
                }
                None => {
                    return Err(invalid_syntax(format!(
                        "{}: required, a string",
                        at("method")
                    )));
                }
            };
            let Some(Value::String(path)) = member(&op, "path") else {
                return Err(invalid_syntax(format!(
                    "{}: required, a string",
                    at("path")
                )));
            };
            let bulk_id = match member(&op, "bulkId") {
                None | Some(Value::Null) => None,
                Some(Value::String(id)) if !id.is_empty() => Some(id),
                Some(_) => {
                    return Err(invalid_syntax(format!(
                        "{}: must be a non-empty string",
                        at("bulkId")
                    )));
                }
            };
            if method == BulkMethod::Post && bulk_id.is_none() {
                return Err(invalid_syntax(format!(
                    "{}: required for POST (RFC 7644 section 3.7)",
                    at("bulkId")
                )));
            }
            if let Some(id) = &bulk_id {
                if !bulk_ids.insert(id.clone()) {
                    return Err(invalid_value(format!(
                        "{}: {id:?} is used by two operations",
                        at("bulkId")
                    )));
                }
            }
            let version = match member(&op, "version") {
                None | Some(Value::Null) => None,
                Some(Value::String(v)) => Some(parse_etags(&at("version"), &v)?),
                Some(_) => {
                    return Err(invalid_syntax(format!(
                        "{}: must be a string",
                        at("version")
                    )));
                }
            };
            let data = member(&op, "data").filter(|d| !d.is_null());
            if method != BulkMethod::Delete && data.is_none() {
                return Err(invalid_syntax(format!(
                    "{}: required for {}",
                    at("data"),
                    method.as_str()
                )));
            }
            let mut references = HashSet::new();
            if let Some(d) = &data {
                collect_references(d, &mut references);
            }
            if let Some(r) = path
                .rsplit('/')
                .next()
                .and_then(|last| last.strip_prefix(BULK_ID_PREFIX))
            {
                references.insert(r.to_owned());
            }
            operations.push(BulkOperation {
                index,
                method,
                path,
                bulk_id,
                version,
                data,
                references,
            });
        }
        Ok(BulkRequest {
            fail_on_errors,
            operations,
        })
    }
}

/// Adds to `out` every bulkId `value` references (`"bulkId:<id>"` strings, at any depth).
pub fn collect_references(value: &Value, out: &mut HashSet<String>) {
    match value {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix(BULK_ID_PREFIX) {
                out.insert(id.to_owned());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_references(v, out)),
        Value::Object(map) => map.values().for_each(|v| collect_references(v, out)),
        _ => {}
    }
}

fn references_any(value: &Value, unresolved: &HashSet<String>) -> bool {
    let mut found = HashSet::new();
    collect_references(value, &mut found);
    found.iter().any(|r| unresolved.contains(r))
}

/// Replaces every `"bulkId:<id>"` string in `value` whose bulkId is in `resolved` by the id
/// it resolved to.
pub fn substitute(value: &mut Value, resolved: &HashMap<String, String>) {
    match value {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix(BULK_ID_PREFIX).and_then(|r| resolved.get(r)) {
                *s = id.clone();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| substitute(v, resolved)),
        Value::Object(map) => map.values_mut().for_each(|v| substitute(v, resolved)),
        _ => {}
    }
}

/// Removes from a resource body the values that reference `unresolved` bulkIds: elements of
/// multi-valued attributes, or whole attributes (inside extension objects too). Returns the
/// PATCH `add` operations that put them back.
pub fn strip_unresolved(data: &mut Value, unresolved: &HashSet<String>) -> Vec<Value> {
    let mut deferred = Vec::new();
    let Some(object) = data.as_object_mut() else {
        return deferred;
    };
    strip_in(object, None, unresolved, &mut deferred);
    deferred
}

fn strip_in(
    object: &mut Map<String, Value>,
    prefix: Option<&str>,
    unresolved: &HashSet<String>,
    deferred: &mut Vec<Value>,
) {
    let keys: Vec<String> = object.keys().cloned().collect();
    for key in keys {
        let path = match prefix {
            Some(urn) => format!("{urn}:{key}"),
            None => key.clone(),
        };
        let Some(value) = object.get_mut(&key) else {
            continue;
        };
        if !references_any(value, unresolved) {
            continue;
        }
        match value {
            Value::Array(items) => {
                let (later, now): (Vec<Value>, Vec<Value>) = std::mem::take(items)
                    .into_iter()
                    .partition(|v| references_any(v, unresolved));
                *items = now;
                deferred.push(json!({"op": "add", "path": path, "value": later}));
            }
            Value::Object(inner) if prefix.is_none() && key.starts_with("urn:") => {
                strip_in(inner, Some(&key), unresolved, deferred);
            }
            _ => {
                if let Some(removed) = object.remove(&key) {
                    deferred.push(json!({"op": "add", "path": path, "value": removed}));
                }
            }
        }
    }
}

/// What to do next with a BulkRequest's operations (see [`BulkSchedule::next_step`]).
#[derive(Debug, Clone, PartialEq)]
pub enum BulkStep {
    /// Run this operation (after [`BulkSchedule::substitute`] on its data and path). When
    /// `deferred` is not empty, the operation is a creation in a cycle whose values that
    /// reference unresolved bulkIds were left out of `data`: once every other operation has
    /// run, patch the created resource with these PATCH operations (substituted), section
    /// 3.7.1.
    Run {
        /// The operation.
        operation: BulkOperation,
        /// PATCH operations to apply to the created resource at the end.
        deferred: Vec<Value>,
    },
    /// Do not run this operation: a bulkId it references belongs to an operation that
    /// failed, or to none (a 409, section 3.7.1).
    Refuse {
        /// The operation.
        operation: BulkOperation,
        /// Why, for the 409's detail.
        reason: String,
    },
    /// None of the remaining operations can run (only creations define bulkIds, so this is
    /// unreachable for a parsed request, and kept so the schedule is total): refuse each and
    /// stop.
    Stuck(Vec<BulkOperation>),
}

/// The order a BulkRequest's operations run in: each once every bulkId it references is
/// resolved or known to fail, in the request's order otherwise (section 3.7.1).
#[derive(Debug, Clone)]
pub struct BulkSchedule {
    pending: Vec<BulkOperation>,
    defined: HashSet<String>,
    resolved: HashMap<String, String>,
    failed: HashSet<String>,
}

impl BulkSchedule {
    /// A schedule for `operations` (those of a [`BulkRequest`]).
    pub fn new(operations: Vec<BulkOperation>) -> BulkSchedule {
        let defined = operations
            .iter()
            .filter_map(|o| o.bulk_id.clone())
            .collect();
        BulkSchedule {
            pending: operations,
            defined,
            resolved: HashMap::new(),
            failed: HashSet::new(),
        }
    }

    /// The next step, or `None` when every operation has been handed out.
    pub fn next_step(&mut self) -> Option<BulkStep> {
        if self.pending.is_empty() {
            return None;
        }
        let decided = |r: &String| {
            self.resolved.contains_key(r) || self.failed.contains(r) || !self.defined.contains(r)
        };
        let ready = self
            .pending
            .iter()
            .position(|o| o.references.iter().all(decided));
        let (operation, deferred) = match ready {
            Some(i) => (self.pending.remove(i), Vec::new()),
            None => {
                // A cycle: every pending operation waits for another pending one. Run the
                // first creation without its unresolved references (section 3.7.1).
                let Some(i) = self
                    .pending
                    .iter()
                    .position(|o| o.method == BulkMethod::Post)
                else {
                    return Some(BulkStep::Stuck(std::mem::take(&mut self.pending)));
                };
                let mut operation = self.pending.remove(i);
                let unresolved: HashSet<String> = operation
                    .references
                    .iter()
                    .filter(|r| !self.resolved.contains_key(*r))
                    .cloned()
                    .collect();
                let deferred = operation
                    .data
                    .as_mut()
                    .map(|d| strip_unresolved(d, &unresolved))
                    .unwrap_or_default();
                (operation, deferred)
            }
        };
        if let Some(bad) = operation
            .references
            .iter()
            .find(|r| self.failed.contains(*r) || !self.defined.contains(*r))
        {
            let reason = if self.defined.contains(bad) {
                format!("bulkId {bad:?} refers to an operation that failed")
            } else {
                format!("bulkId {bad:?} is not the bulkId of any operation of this request")
            };
            return Some(BulkStep::Refuse { operation, reason });
        }
        Some(BulkStep::Run {
            operation,
            deferred,
        })
    }

    /// Records that the operation with `bulk_id` created (or wrote) the resource `id`.
    pub fn resolve(&mut self, bulk_id: &str, id: String) {
        self.resolved.insert(bulk_id.to_owned(), id);
    }

    /// Records that the operation with `bulk_id` failed: operations referencing it are
    /// refused.
    pub fn fail(&mut self, bulk_id: &str) {
        self.failed.insert(bulk_id.to_owned());
    }

    /// The ids resolved so far, by bulkId.
    pub fn resolved(&self) -> &HashMap<String, String> {
        &self.resolved
    }

    /// Replaces the resolved bulkId references in `value` by their ids ([`substitute`]).
    pub fn substitute(&self, value: &mut Value) {
        substitute(value, &self.resolved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unresolved_references_are_stripped_into_patch_operations() {
        let mut data = json!({
            "schemas": [core::ENTERPRISE_USER],
            "displayName": "g",
            "members": [{"value": "bulkId:a"}, {"value": "known"}, {"value": "bulkId:b"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"manager": {"value": "bulkId:a"}, "division": "x"},
        });
        let unresolved: HashSet<String> = ["a".to_owned()].into();
        let deferred = strip_unresolved(&mut data, &unresolved);
        assert_eq!(
            data["members"],
            json!([{"value": "known"}, {"value": "bulkId:b"}])
        );
        assert_eq!(
            data["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
            json!({"division": "x"})
        );
        assert_eq!(
            deferred,
            vec![
                json!({"op": "add", "path": "members", "value": [{"value": "bulkId:a"}]}),
                json!({"op": "add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": {"value": "bulkId:a"}}),
            ]
        );
        let resolved: HashMap<String, String> = [("a".to_owned(), "id-a".to_owned())].into();
        let mut patch = deferred[0].clone();
        substitute(&mut patch, &resolved);
        assert_eq!(patch["value"], json!([{"value": "id-a"}]));
    }

    fn request(operations: Value) -> BulkRequest {
        BulkRequest::parse(
            &json!({"schemas": [core::BULK_REQUEST], "Operations": operations}),
            10,
        )
        .unwrap()
    }

    #[test]
    fn a_cycle_runs_a_creation_first_and_defers_its_references() {
        let parsed = request(json!([
            {"method": "POST", "path": "/Groups", "bulkId": "a", "data": {"displayName": "a", "members": [{"value": "bulkId:b"}]}},
            {"method": "POST", "path": "/Groups", "bulkId": "b", "data": {"displayName": "b", "members": [{"value": "bulkId:a"}]}},
        ]));
        let mut schedule = BulkSchedule::new(parsed.operations);
        let Some(BulkStep::Run {
            operation,
            deferred,
        }) = schedule.next_step()
        else {
            panic!("the first creation runs");
        };
        assert_eq!(operation.index, 0);
        assert_eq!(operation.data.unwrap()["members"], json!([]));
        assert_eq!(deferred.len(), 1);
        schedule.resolve("a", "id-a".into());
        let Some(BulkStep::Run {
            mut operation,
            deferred,
        }) = schedule.next_step()
        else {
            panic!("the second creation runs once the first is resolved");
        };
        assert!(deferred.is_empty());
        schedule.substitute(operation.data.as_mut().unwrap());
        assert_eq!(
            operation.data.unwrap()["members"],
            json!([{"value": "id-a"}])
        );
        assert!(schedule.next_step().is_none());
    }

    #[test]
    fn references_to_failed_or_unknown_operations_are_refused() {
        let parsed = request(json!([
            {"method": "POST", "path": "/Users", "bulkId": "u", "data": {"userName": "u"}},
            {"method": "DELETE", "path": "/Users/bulkId:u"},
            {"method": "PATCH", "path": "/Users/bulkId:nobody", "data": {}},
        ]));
        let mut schedule = BulkSchedule::new(parsed.operations);
        assert!(matches!(schedule.next_step(), Some(BulkStep::Run { .. })));
        schedule.fail("u");
        assert!(
            matches!(schedule.next_step(), Some(BulkStep::Refuse { reason, .. }) if reason.contains("failed"))
        );
        assert!(
            matches!(schedule.next_step(), Some(BulkStep::Refuse { reason, .. }) if reason.contains("not the bulkId"))
        );
        assert!(schedule.next_step().is_none());
    }

    #[test]
    fn malformed_requests_are_refused() {
        let error = |body: Value| BulkRequest::parse(&body, 1).unwrap_err();
        assert!(matches!(
            error(json!({"Operations": []})),
            PatchError::Request {
                scim_type: ScimType::InvalidSyntax,
                ..
            }
        ));
        assert!(matches!(
            error(json!({"schemas": [core::BULK_REQUEST], "Operations": [{}, {}]})),
            PatchError::TooManyOperations {
                operations: 2,
                max_operations: 1
            }
        ));
        assert!(matches!(
            error(
                json!({"schemas": [core::BULK_REQUEST], "Operations": [{"method": "POST", "path": "/Users", "data": {}}]})
            ),
            PatchError::Request {
                scim_type: ScimType::InvalidSyntax,
                ..
            }
        ));
        assert!(matches!(
            error(
                json!({"schemas": [core::BULK_REQUEST], "Operations": [{"method": "DELETE", "path": "/Users/x", "version": "nonsense"}]})
            ),
            PatchError::Request {
                scim_type: ScimType::InvalidValue,
                ..
            }
        ));
    }
}
