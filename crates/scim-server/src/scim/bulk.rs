//! `POST /Bulk` (RFC 7644 section 3.7): many operations in one request, with `bulkId`
//! references between them resolved in any order, circular ones included (section 3.7.1),
//! `failOnErrors` (section 3.7.3), and `maxOperations` / `maxPayloadSize` (section 3.7.4).
//!
//! Operations run one after another, each as its single-request counterpart would (each is
//! atomic and durable on its own; the bulk request as a whole is not a transaction, as RFC
//! 7644 section 3.7 says). An operation runs once every `bulkId` it references is resolved.
//! When none can run because the remaining ones reference each other (a cycle, e.g. two
//! groups that contain each other), a creation in the cycle runs first without the values that
//! hold unresolved references, and those values are added by a PATCH once the other
//! resources exist: the circular-reference procedure of section 3.7.1.

use crate::error::ApiError;
use crate::request::{EtagCondition, parse_etags};
use crate::response::{self, Body};
use crate::scim::resources::collection;
use crate::service::{AppState, Ctx};
use http::{Response, StatusCode};
use scim_schema::{ScimType, core};
use scim_store::{Members, ResourceKind};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};

const BULK_ID_PREFIX: &str = "bulkId:";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BulkMethod {
    Post,
    Put,
    Patch,
    Delete,
}

impl BulkMethod {
    fn as_str(self) -> &'static str {
        match self {
            BulkMethod::Post => "POST",
            BulkMethod::Put => "PUT",
            BulkMethod::Patch => "PATCH",
            BulkMethod::Delete => "DELETE",
        }
    }
}

#[derive(Debug, Clone)]
struct BulkOperation {
    index: usize,
    method: BulkMethod,
    path: String,
    bulk_id: Option<String>,
    version: Option<EtagCondition>,
    data: Option<Value>,
    /// The bulkIds this operation references (in `path` or anywhere in `data`).
    references: HashSet<String>,
}

/// One entry of the BulkResponse.
#[derive(Debug)]
struct BulkResult {
    method: BulkMethod,
    bulk_id: Option<String>,
    location: Option<String>,
    version: Option<String>,
    status: StatusCode,
    error: Option<ApiError>,
}

impl BulkResult {
    fn to_json(&self) -> Value {
        let mut entry = Map::new();
        if let Some(location) = &self.location {
            entry.insert("location".into(), Value::String(location.clone()));
        }
        entry.insert("method".into(), Value::String(self.method.as_str().into()));
        if let Some(bulk_id) = &self.bulk_id {
            entry.insert("bulkId".into(), Value::String(bulk_id.clone()));
        }
        if let Some(version) = &self.version {
            entry.insert("version".into(), Value::String(version.clone()));
        }
        entry.insert(
            "status".into(),
            Value::String(self.status.as_u16().to_string()),
        );
        if let Some(error) = &self.error {
            entry.insert("response".into(), error.to_json());
        }
        Value::Object(entry)
    }
}

fn collect_references(value: &Value, out: &mut HashSet<String>) {
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

fn substitute(value: &mut Value, resolved: &HashMap<String, String>) {
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
fn strip_unresolved(data: &mut Value, unresolved: &HashSet<String>) -> Vec<Value> {
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

impl AppState {
    /// Parses and runs a BulkRequest.
    pub(crate) async fn bulk(&self, ctx: &Ctx, body: Value) -> Result<Response<Body>, ApiError> {
        let (fail_on_errors, operations) = self.parse_bulk(&body)?;
        let mut pending: Vec<BulkOperation> = operations;
        let defined: HashSet<String> = pending.iter().filter_map(|o| o.bulk_id.clone()).collect();
        let mut resolved: HashMap<String, String> = HashMap::new();
        let mut failed: HashSet<String> = HashSet::new();
        let mut results: BTreeMap<usize, BulkResult> = BTreeMap::new();
        // (operation index, kind, id, PATCH operations to apply once references resolve)
        let mut deferred: Vec<(usize, ResourceKind, String, Vec<Value>)> = Vec::new();
        let mut errors: u64 = 0;

        'run: while !pending.is_empty() {
            let decided =
                |r: &String| resolved.contains_key(r) || failed.contains(r) || !defined.contains(r);
            let next = pending
                .iter()
                .position(|o| o.references.iter().all(decided));
            let (operation, stripped) = match next {
                Some(i) => (pending.remove(i), Vec::new()),
                None => {
                    // A cycle: every pending operation waits for another pending one. Run the
                    // first creation without its unresolved references (section 3.7.1).
                    let Some(i) = pending.iter().position(|o| o.method == BulkMethod::Post) else {
                        // Unreachable in practice (only creations define bulkIds), kept total.
                        for o in pending.drain(..) {
                            results.insert(
                                o.index,
                                conflict(&o, "its bulkId references cannot be resolved"),
                            );
                        }
                        break 'run;
                    };
                    let mut operation = pending.remove(i);
                    let unresolved: HashSet<String> = operation
                        .references
                        .iter()
                        .filter(|r| !resolved.contains_key(*r))
                        .cloned()
                        .collect();
                    let stripped = operation
                        .data
                        .as_mut()
                        .map(|d| strip_unresolved(d, &unresolved))
                        .unwrap_or_default();
                    (operation, stripped)
                }
            };
            let result = if let Some(bad) = operation
                .references
                .iter()
                .find(|r| failed.contains(*r) || !defined.contains(*r))
            {
                let why = if defined.contains(bad) {
                    format!("bulkId {bad:?} refers to an operation that failed")
                } else {
                    format!("bulkId {bad:?} is not the bulkId of any operation of this request")
                };
                conflict(&operation, &why)
            } else {
                let index = operation.index;
                let outcome = self
                    .run_bulk_operation(ctx, operation.clone(), &resolved)
                    .await;
                match outcome {
                    Ok((kind, id, mut result)) => {
                        if let Some(bulk_id) = &operation.bulk_id {
                            resolved.insert(bulk_id.clone(), id.clone());
                        }
                        if !stripped.is_empty() {
                            deferred.push((index, kind, id, stripped));
                        }
                        result.bulk_id = operation.bulk_id.clone();
                        result
                    }
                    Err(error) => BulkResult {
                        method: operation.method,
                        bulk_id: operation.bulk_id.clone(),
                        location: None,
                        version: None,
                        status: error.status,
                        error: Some(error),
                    },
                }
            };
            if result.error.is_some() {
                if let Some(bulk_id) = &operation.bulk_id {
                    failed.insert(bulk_id.clone());
                }
                errors += 1;
            }
            results.insert(operation.index, result);
            if fail_on_errors.is_some_and(|limit| errors >= limit) {
                break 'run;
            }
        }

        // The second half of the circular-reference procedure: put back what was left out.
        for (index, kind, id, mut operations) in deferred {
            if fail_on_errors.is_some_and(|limit| errors >= limit) {
                break;
            }
            operations.iter_mut().for_each(|o| substitute(o, &resolved));
            let message = json!({"schemas": [core::PATCH_OP], "Operations": operations});
            match self
                .op_patch(ctx, kind, &id, message, None, Members::Exclude)
                .await
            {
                Ok(patched) => {
                    if let Some(result) = results.get_mut(&index) {
                        result.version = Some(patched.resource.etag());
                    }
                }
                Err(error) => {
                    errors += 1;
                    if let Some(result) = results.get_mut(&index) {
                        result.status = error.status;
                        result.error = Some(error);
                    }
                }
            }
        }

        let document = json!({
            "schemas": [core::BULK_RESPONSE],
            "Operations": results.values().map(BulkResult::to_json).collect::<Vec<_>>(),
        });
        Ok(response::json(StatusCode::OK, &document))
    }

    fn parse_bulk(&self, body: &Value) -> Result<(Option<u64>, Vec<BulkOperation>), ApiError> {
        let Value::Object(object) = body else {
            return Err(ApiError::invalid_syntax(
                "a BulkRequest must be a JSON object",
            ));
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
                return Err(ApiError::invalid_syntax(format!(
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
                    return Err(ApiError::invalid_value(format!(
                        "failOnErrors: must be a positive integer, not {n}"
                    )));
                }
            },
            Some(other) => {
                return Err(ApiError::invalid_syntax(format!(
                    "failOnErrors: must be an integer, not {other}"
                )));
            }
        };
        let Some(Value::Array(items)) = member(object, "Operations") else {
            return Err(ApiError::invalid_syntax(
                "Operations: a BulkRequest must have an Operations array",
            ));
        };
        if items.len() > self.config.bulk_max_operations as usize {
            // RFC 7644 section 3.7.4: exceeding maxOperations is 413.
            return Err(ApiError::payload_too_large(format!(
                "the bulk request has {} operations; maxOperations is {}",
                items.len(),
                self.config.bulk_max_operations
            )));
        }
        let mut operations = Vec::with_capacity(items.len());
        let mut bulk_ids = HashSet::new();
        for (index, item) in items.into_iter().enumerate() {
            let at = |member: &str| format!("Operations[{index}].{member}");
            let Value::Object(op) = item else {
                return Err(ApiError::invalid_syntax(format!(
                    "Operations[{index}]: must be an object"
                )));
            };
            let method = match member(&op, "method").as_ref().and_then(Value::as_str) {
                Some(m) if m.eq_ignore_ascii_case("POST") => BulkMethod::Post,
                Some(m) if m.eq_ignore_ascii_case("PUT") => BulkMethod::Put,
                Some(m) if m.eq_ignore_ascii_case("PATCH") => BulkMethod::Patch,
                Some(m) if m.eq_ignore_ascii_case("DELETE") => BulkMethod::Delete,
                Some(m) => {
                    return Err(ApiError::invalid_value(format!(
                        "{}: {m:?} is not POST, PUT, PATCH or DELETE",
                        at("method")
                    )));
                }
                None => {
                    return Err(ApiError::invalid_syntax(format!(
                        "{}: required, a string",
                        at("method")
                    )));
                }
            };
            let Some(Value::String(path)) = member(&op, "path") else {
                return Err(ApiError::invalid_syntax(format!(
                    "{}: required, a string",
                    at("path")
                )));
            };
            let bulk_id = match member(&op, "bulkId") {
                None | Some(Value::Null) => None,
                Some(Value::String(id)) if !id.is_empty() => Some(id),
                Some(_) => {
                    return Err(ApiError::invalid_syntax(format!(
                        "{}: must be a non-empty string",
                        at("bulkId")
                    )));
                }
            };
            if method == BulkMethod::Post && bulk_id.is_none() {
                return Err(ApiError::invalid_syntax(format!(
                    "{}: required for POST (RFC 7644 section 3.7)",
                    at("bulkId")
                )));
            }
            if let Some(id) = &bulk_id {
                if !bulk_ids.insert(id.clone()) {
                    return Err(ApiError::invalid_value(format!(
                        "{}: {id:?} is used by two operations",
                        at("bulkId")
                    )));
                }
            }
            let version = match member(&op, "version") {
                None | Some(Value::Null) => None,
                Some(Value::String(v)) => Some(parse_etags(&at("version"), &v)?),
                Some(_) => {
                    return Err(ApiError::invalid_syntax(format!(
                        "{}: must be a string",
                        at("version")
                    )));
                }
            };
            let data = member(&op, "data").filter(|d| !d.is_null());
            if method != BulkMethod::Delete && data.is_none() {
                return Err(ApiError::invalid_syntax(format!(
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
        Ok((fail_on_errors, operations))
    }

    /// Runs one operation with its references substituted: the resource's kind and id, and
    /// its result entry.
    async fn run_bulk_operation(
        &self,
        ctx: &Ctx,
        operation: BulkOperation,
        resolved: &HashMap<String, String>,
    ) -> Result<(ResourceKind, String, BulkResult), ApiError> {
        let mut data = operation.data.unwrap_or(Value::Null);
        substitute(&mut data, resolved);
        let segments: Vec<&str> = operation
            .path
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        let kind_of = |segment: &str| match segment {
            "Users" => Some(ResourceKind::User),
            "Groups" => Some(ResourceKind::Group),
            _ => None,
        };
        let bad_path = || {
            ApiError::scim(
                ScimType::InvalidValue,
                format!(
                    "Operations[{}].path: {:?} is not /Users or /Groups (POST) or /Users/{{id}} or /Groups/{{id}}",
                    operation.index, operation.path
                ),
            )
        };
        let (kind, id) = match (operation.method, segments.as_slice()) {
            (BulkMethod::Post, [collection]) => (kind_of(collection).ok_or_else(bad_path)?, None),
            (_, [collection, id]) if operation.method != BulkMethod::Post => {
                let id = match id.strip_prefix(BULK_ID_PREFIX) {
                    Some(reference) => resolved.get(reference).cloned().ok_or_else(bad_path)?,
                    None => (*id).to_owned(),
                };
                (kind_of(collection).ok_or_else(bad_path)?, Some(id))
            }
            _ => return Err(bad_path()),
        };
        let condition = operation.version.as_ref();
        let entry = |status: StatusCode, id: &str, version: Option<String>| BulkResult {
            method: operation.method,
            bulk_id: None,
            location: Some(format!("{}/{}/{id}", ctx.base, collection(kind))),
            version,
            status,
            error: None,
        };
        match (operation.method, id) {
            (BulkMethod::Post, _) => {
                let created = self.op_create(ctx, kind, data).await?;
                let result = entry(StatusCode::CREATED, &created.id, Some(created.etag()));
                Ok((kind, created.id, result))
            }
            (BulkMethod::Put, Some(id)) => {
                let replaced = self.op_replace(ctx, kind, &id, data, condition).await?;
                let result = entry(StatusCode::OK, &id, Some(replaced.etag()));
                Ok((kind, id, result))
            }
            (BulkMethod::Patch, Some(id)) => {
                let patched = self
                    .op_patch(ctx, kind, &id, data, condition, Members::Exclude)
                    .await?;
                let result = entry(StatusCode::OK, &id, Some(patched.resource.etag()));
                Ok((kind, id, result))
            }
            (BulkMethod::Delete, Some(id)) => {
                self.op_delete(ctx, kind, &id, condition).await?;
                let result = entry(StatusCode::NO_CONTENT, &id, None);
                Ok((kind, id, result))
            }
            _ => Err(bad_path()),
        }
    }
}

fn conflict(operation: &BulkOperation, why: &str) -> BulkResult {
    BulkResult {
        method: operation.method,
        bulk_id: operation.bulk_id.clone(),
        location: None,
        version: None,
        status: StatusCode::CONFLICT,
        error: Some(ApiError::new(
            StatusCode::CONFLICT,
            format!(
                "Operations[{}] was not run: {why} (RFC 7644 section 3.7.1)",
                operation.index
            ),
        )),
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
}
