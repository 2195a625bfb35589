//! The discovery endpoints (RFC 7644 section 4): `/Schemas`, `/ResourceTypes` and
//! `/ServiceProviderConfig`. The documents come from scim-schema; this module only serves them.

use crate::context::Ctx;
use crate::error::ApiError;
use crate::request::QueryParams;
use crate::response::{self, Body};
use crate::scim::{Discovery, ScimState};
use http::{Response, StatusCode};
use scim_schema::core;
use serde_json::{Value, json};

/// A ListResponse (RFC 7644 section 3.4.2) of every entry, unpaged: RFC 7644 section 4 says
/// paging parameters are ignored on these endpoints.
fn list(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [core::LIST_RESPONSE],
        "totalResults": resources.len(),
        "itemsPerPage": resources.len(),
        "startIndex": 1,
        "Resources": resources,
    })
}

impl ScimState {
    pub(crate) fn discovery(
        &self,
        ctx: &Ctx,
        query: &QueryParams,
        which: Discovery<'_>,
    ) -> Result<Response<Body>, ApiError> {
        if query.has("filter") {
            // RFC 7644 section 4: "If a "filter" is provided, the service provider SHOULD
            // respond with HTTP status code 403 (Forbidden) to ensure that clients cannot
            // incorrectly assume that any matching conditions specified in a filter are true."
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "filter is not supported on /Schemas, /ResourceTypes and /ServiceProviderConfig (RFC 7644 section 4); fetch the whole list or one entry by id",
            ));
        }
        let document = match which {
            Discovery::Schemas => list(ctx.registry().schema_representations(&ctx.base)),
            Discovery::ResourceTypes => {
                list(ctx.registry().resource_type_representations(&ctx.base))
            }
            Discovery::ServiceProviderConfig => self.spc.to_representation(&ctx.base),
            Discovery::Schema(id) => {
                let schema = ctx.registry().schema(id).ok_or_else(|| {
                    ApiError::not_found(format!(
                        "no schema with id {id:?}; GET /Schemas lists them"
                    ))
                })?;
                scim_schema::representation::schema_representation(schema, &ctx.base)
            }
            Discovery::ResourceType(name) => {
                let resource_type = ctx
                    .registry()
                    .resource_types()
                    .find(|rt| rt.id == name || rt.name == name)
                    .ok_or_else(|| {
                        ApiError::not_found(format!(
                            "no resource type {name:?}; GET /ResourceTypes lists them"
                        ))
                    })?;
                scim_schema::representation::resource_type_representation(resource_type, &ctx.base)
            }
        };
        Ok(response::json(StatusCode::OK, &document))
    }
}
