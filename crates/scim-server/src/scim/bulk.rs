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
//!
//! Parsing the message and ordering its operations (the bulkId graph) is protocol, and lives
//! in [`scim_patch::bulk`]; this module runs what the schedule hands out against the store
//! and writes the BulkResponse.

use crate::context::Ctx;
use crate::error::ApiError;
use crate::response::{self, Body};
use crate::scim::ScimState;
use crate::scim::resources::collection;
use http::{Response, StatusCode};
use scim_patch::bulk::{
    BULK_ID_PREFIX, BulkMethod, BulkOperation, BulkRequest, BulkSchedule, BulkStep,
};
use scim_schema::{ScimType, core};
use scim_store::{Members, ResourceKind};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap};

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

impl ScimState {
    /// Parses and runs a BulkRequest, in the order scim-patch's [`BulkSchedule`] gives.
    pub(crate) async fn bulk(&self, ctx: &Ctx, body: Value) -> Result<Response<Body>, ApiError> {
        let request = BulkRequest::parse(&body, self.config.bulk_max_operations)?;
        let fail_on_errors = request.fail_on_errors;
        let mut schedule = BulkSchedule::new(request.operations);
        let mut results: BTreeMap<usize, BulkResult> = BTreeMap::new();
        // (operation index, kind, id, PATCH operations to apply once references resolve)
        let mut deferred: Vec<(usize, ResourceKind, String, Vec<Value>)> = Vec::new();
        let mut errors: u64 = 0;

        while let Some(step) = schedule.next_step() {
            let (operation, result) = match step {
                BulkStep::Stuck(operations) => {
                    for o in operations {
                        results.insert(
                            o.index,
                            conflict(&o, "its bulkId references cannot be resolved"),
                        );
                    }
                    break;
                }
                BulkStep::Refuse { operation, reason } => {
                    let result = conflict(&operation, &reason);
                    (operation, result)
                }
                BulkStep::Run {
                    operation,
                    deferred: stripped,
                } => {
                    let index = operation.index;
                    let outcome = self
                        .run_bulk_operation(ctx, operation.clone(), schedule.resolved())
                        .await;
                    let result = match outcome {
                        Ok((kind, id, mut result)) => {
                            if let Some(bulk_id) = &operation.bulk_id {
                                schedule.resolve(bulk_id, id.clone());
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
                    };
                    (operation, result)
                }
            };
            if result.error.is_some() {
                if let Some(bulk_id) = &operation.bulk_id {
                    schedule.fail(bulk_id);
                }
                errors += 1;
            }
            results.insert(operation.index, result);
            if fail_on_errors.is_some_and(|limit| errors >= limit) {
                break;
            }
        }

        // The second half of the circular-reference procedure: put back what was left out.
        for (index, kind, id, mut operations) in deferred {
            if fail_on_errors.is_some_and(|limit| errors >= limit) {
                break;
            }
            operations.iter_mut().for_each(|o| schedule.substitute(o));
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

    /// Runs one operation with its references substituted: the resource's kind and id, and
    /// its result entry.
    async fn run_bulk_operation(
        &self,
        ctx: &Ctx,
        operation: BulkOperation,
        resolved: &HashMap<String, String>,
    ) -> Result<(ResourceKind, String, BulkResult), ApiError> {
        let mut data = operation.data.unwrap_or(Value::Null);
        scim_patch::bulk::substitute(&mut data, resolved);
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
