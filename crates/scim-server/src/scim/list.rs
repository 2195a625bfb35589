//! Queries (RFC 7644 section 3.4.2): `GET /Users` with query parameters, and `POST .search`
//! (section 3.4.3) at the root and per resource type, with the same parameters in a
//! SearchRequest body.

use crate::error::{ApiError, from_store};
use crate::request::{QueryParams, parse_integer};
use crate::response::{self, Body};
use crate::service::{AppState, Ctx};
use http::{Response, StatusCode};
use scim_filter::{Filter, eval::UnknownAttributes, parse_filter};
use scim_schema::{AttrPath, AttributeSelection, ProjectionPlan, core};
use scim_store::{Paging, Query, ResourceKind, SortOrder};
use serde_json::{Map, Value};

/// The query parameters of a list or search request, as the client gave them.
#[derive(Debug, Default, Clone)]
pub(crate) struct ListRequest {
    filter: Option<String>,
    sort_by: Option<String>,
    sort_order: Option<String>,
    start_index: Option<i128>,
    count: Option<i128>,
    /// RFC 9865 cursor paging: `Some(None)` asks for the first page.
    cursor: Option<Option<String>>,
    attributes: Option<String>,
    excluded: Option<String>,
}

impl ListRequest {
    fn from_query(query: &QueryParams) -> Result<Self, ApiError> {
        let integer = |name: &str| -> Result<Option<i128>, ApiError> {
            query
                .get(name)?
                .map(|text| parse_integer(name, text))
                .transpose()
        };
        Ok(ListRequest {
            filter: query.get("filter")?.map(str::to_owned),
            sort_by: query.get("sortBy")?.map(str::to_owned),
            sort_order: query.get("sortOrder")?.map(str::to_owned),
            start_index: integer("startIndex")?,
            count: integer("count")?,
            cursor: query
                .get("cursor")?
                .map(|c| (!c.is_empty()).then(|| c.to_owned())),
            attributes: query.get("attributes")?.map(str::to_owned),
            excluded: query.get("excludedAttributes")?.map(str::to_owned),
        })
    }

    /// A SearchRequest body (RFC 7644 section 3.4.3). Member names are matched
    /// case-insensitively, like attribute names.
    fn from_search(body: &Value) -> Result<Self, ApiError> {
        let Value::Object(object) = body else {
            return Err(ApiError::invalid_syntax(
                "a SearchRequest must be a JSON object",
            ));
        };
        let member = |name: &str| {
            object
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        let schemas_ok = match member("schemas") {
            Some(Value::Array(urns)) => urns
                .iter()
                .any(|u| u.as_str() == Some(core::SEARCH_REQUEST)),
            _ => false,
        };
        if !schemas_ok {
            return Err(ApiError::invalid_syntax(format!(
                "schemas: a SearchRequest must list {:?} (RFC 7644 section 3.4.3)",
                core::SEARCH_REQUEST
            )));
        }
        for key in object.keys() {
            const KNOWN: [&str; 9] = [
                "schemas",
                "filter",
                "sortBy",
                "sortOrder",
                "startIndex",
                "count",
                "attributes",
                "excludedAttributes",
                "cursor",
            ];
            if !KNOWN.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                return Err(ApiError::invalid_syntax(format!(
                    "{key}: not a SearchRequest attribute (RFC 7644 section 3.4.3)"
                )));
            }
        }
        let string = |name: &str| -> Result<Option<String>, ApiError> {
            match member(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ApiError::invalid_syntax(format!(
                    "{name}: must be a string"
                ))),
            }
        };
        let list = |name: &str| -> Result<Option<String>, ApiError> {
            match member(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Array(items)) => items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        v.as_str().map(str::to_owned).ok_or_else(|| {
                            ApiError::invalid_syntax(format!("{name}[{i}]: must be a string"))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(|v| Some(v.join(","))),
                Some(_) => Err(ApiError::invalid_syntax(format!(
                    "{name}: must be an array of attribute paths"
                ))),
            }
        };
        let integer = |name: &str| -> Result<Option<i128>, ApiError> {
            match member(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => {
                    if let Some(i) = n.as_i64() {
                        Ok(Some(i128::from(i)))
                    } else if let Some(u) = n.as_u64() {
                        Ok(Some(i128::from(u)))
                    } else {
                        match n.as_f64() {
                            // Saturating: a huge integer is past every result set, a huge
                            // negative one is "less than 1".
                            Some(f) if f.fract() == 0.0 => {
                                Ok(Some(if f > 0.0 { i128::MAX } else { i128::MIN }))
                            }
                            _ => Err(ApiError::invalid_value(format!(
                                "{name}: must be an integer, not {n}"
                            ))),
                        }
                    }
                }
                Some(other) => Err(ApiError::invalid_syntax(format!(
                    "{name}: must be an integer, not {other}"
                ))),
            }
        };
        Ok(ListRequest {
            filter: string("filter")?,
            sort_by: string("sortBy")?,
            sort_order: string("sortOrder")?,
            start_index: integer("startIndex")?,
            count: integer("count")?,
            cursor: match member("cursor") {
                None => None,
                Some(Value::Null) => Some(None),
                Some(Value::String(s)) => Some((!s.is_empty()).then(|| s.clone())),
                Some(_) => return Err(ApiError::invalid_syntax("cursor: must be a string")),
            },
            attributes: list("attributes")?,
            excluded: list("excludedAttributes")?,
        })
    }
}

/// The parts of a list request that do not depend on the resource type.
struct Prepared {
    filter: Option<Filter>,
    sort_by: Option<AttrPath>,
    sort_order: SortOrder,
    start_index: u64,
    count: u64,
    cursor: Option<Option<String>>,
    selection: AttributeSelection,
}

impl AppState {
    fn prepare(&self, request: &ListRequest) -> Result<Prepared, ApiError> {
        let filter = match request.filter.as_deref() {
            Some(text) if !text.trim().is_empty() => Some(parse_filter(text)?),
            Some(_) => return Err(ApiError::invalid_filter("filter: the filter is empty")),
            None => None,
        };
        let sort_by = request
            .sort_by
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| {
                AttrPath::parse(s.trim())
                    .map_err(|e| ApiError::invalid_value(format!("sortBy: {e}")))
            })
            .transpose()?;
        let sort_order = match request.sort_order.as_deref() {
            None => SortOrder::Ascending,
            Some(s) if s.eq_ignore_ascii_case("ascending") => SortOrder::Ascending,
            Some(s) if s.eq_ignore_ascii_case("descending") => SortOrder::Descending,
            Some(other) => {
                return Err(ApiError::invalid_value(format!(
                    "sortOrder: {other:?} is neither \"ascending\" nor \"descending\" (RFC 7644 section 3.4.2.3)"
                )));
            }
        };
        let max = i128::from(self.config.max_results);
        // RFC 7644 section 3.4.2.4: a startIndex below 1 is 1, a negative count is 0, and a
        // count above maxResults is clamped to it.
        let count = request
            .count
            .unwrap_or(i128::from(self.config.default_count))
            .clamp(0, max);
        let start_index = request
            .start_index
            .unwrap_or(1)
            .clamp(1, i128::from(u64::MAX));
        let selection = AttributeSelection::from_params(
            request.attributes.as_deref(),
            request.excluded.as_deref(),
        )?;
        Ok(Prepared {
            filter,
            sort_by,
            sort_order,
            start_index: u64::try_from(start_index).unwrap_or(u64::MAX),
            count: u64::try_from(count).unwrap_or(0),
            cursor: request.cursor.clone(),
            selection,
        })
    }

    fn query_for(
        &self,
        kind: ResourceKind,
        prepared: &Prepared,
        strict: bool,
    ) -> Result<Query, ApiError> {
        let schema = self.schema(kind);
        if let Some(filter) = &prepared.filter {
            let mode = if strict {
                UnknownAttributes::Strict
            } else {
                UnknownAttributes::Lenient
            };
            scim_filter::eval::check(filter, schema, mode)?;
        }
        if let Some(path) = &prepared.sort_by {
            match schema.resolve(path) {
                None if strict => {
                    return Err(ApiError::invalid_value(format!(
                        "sortBy: {path} names no attribute of resource type {}",
                        kind.resource_type()
                    )));
                }
                // Sorting by a secret attribute orders resources by its value: an oracle as
                // good as a filter on it (RFC 7643 section 7, returned: never).
                Some(resolved) if resolved.is_secret() => {
                    return Err(ApiError::invalid_filter(format!(
                        "sortBy: {path} is never returned (returned: never or writeOnly, RFC 7643 section 7), so resources cannot be sorted by it"
                    )));
                }
                _ => {}
            }
        }
        Ok(Query {
            filter: prepared.filter.clone(),
            sort_by: prepared.sort_by.clone(),
            sort_order: prepared.sort_order,
            paging: match &prepared.cursor {
                Some(cursor) => Paging::Cursor(cursor.clone()),
                None => Paging::Index {
                    start_index: prepared.start_index,
                },
            },
            count: Some(prepared.count),
            members: self.members_for(kind, &prepared.selection),
        })
    }

    /// `GET /Users`, `GET /Groups`.
    pub(crate) async fn list(
        &self,
        ctx: &Ctx,
        kind: ResourceKind,
        query: &QueryParams,
    ) -> Result<Response<Body>, ApiError> {
        let request = ListRequest::from_query(query)?;
        self.run_list(ctx, Some(kind), &request).await
    }

    /// `POST /.search`, `POST /Users/.search`, `POST /Groups/.search`.
    pub(crate) async fn search(
        &self,
        ctx: &Ctx,
        kind: Option<ResourceKind>,
        body: &Value,
    ) -> Result<Response<Body>, ApiError> {
        let request = ListRequest::from_search(body)?;
        self.run_list(ctx, kind, &request).await
    }

    async fn run_list(
        &self,
        ctx: &Ctx,
        kind: Option<ResourceKind>,
        request: &ListRequest,
    ) -> Result<Response<Body>, ApiError> {
        let prepared = self.prepare(request)?;
        let mut document = Map::with_capacity(6);
        document.insert(
            "schemas".into(),
            Value::Array(vec![Value::String(core::LIST_RESPONSE.into())]),
        );
        match kind {
            Some(kind) => {
                let query = self.query_for(kind, &prepared, self.config.strict_filters)?;
                let page = self
                    .timed("query", self.store.query(&ctx.tenant.id, kind, &query))
                    .await
                    .map_err(|e| from_store(e, &ctx.request_id))?;
                let plan = ProjectionPlan::new(self.schema(kind), &prepared.selection);
                let resources: Vec<Value> = page
                    .resources
                    .into_iter()
                    .map(|r| self.render(ctx, r, &plan))
                    .collect();
                document.insert("totalResults".into(), page.total_results.into());
                document.insert("itemsPerPage".into(), resources.len().into());
                document.insert("startIndex".into(), page.start_index.into());
                if prepared.count > 0 {
                    document.insert("Resources".into(), Value::Array(resources));
                }
                if let Some(next) = page.next_cursor {
                    document.insert("nextCursor".into(), Value::String(next));
                }
            }
            None => {
                if prepared.cursor.is_some() {
                    return Err(ApiError::invalid_value(
                        "cursor: cursor paging is per resource type; use /Users/.search or /Groups/.search",
                    ));
                }
                self.root_search(ctx, &prepared, &mut document).await?;
            }
        }
        Ok(response::json(StatusCode::OK, &Value::Object(document)))
    }

    /// A search over every resource type (RFC 7644 section 3.4.3 at the server root). The
    /// filter is applied to each type, an attribute a type does not define matching nothing
    /// there; results are the Users then the Groups, each sorted by `sortBy`, and paged over
    /// the concatenation.
    async fn root_search(
        &self,
        ctx: &Ctx,
        prepared: &Prepared,
        document: &mut Map<String, Value>,
    ) -> Result<(), ApiError> {
        let mut total: u64 = 0;
        let mut resources = Vec::new();
        let mut skip = prepared.start_index.saturating_sub(1);
        for kind in ResourceKind::ALL {
            let mut query = self.query_for(kind, prepared, false)?;
            let remaining = prepared.count.saturating_sub(resources.len() as u64);
            query.count = Some(remaining);
            query.paging = Paging::Index {
                start_index: skip.saturating_add(1),
            };
            let page = self
                .timed("query", self.store.query(&ctx.tenant.id, kind, &query))
                .await
                .map_err(|e| from_store(e, &ctx.request_id))?;
            skip = skip.saturating_sub(page.total_results);
            total = total.saturating_add(page.total_results);
            let plan = ProjectionPlan::new(self.schema(kind), &prepared.selection);
            resources.extend(
                page.resources
                    .into_iter()
                    .map(|r| self.render(ctx, r, &plan)),
            );
        }
        document.insert("totalResults".into(), total.into());
        document.insert("itemsPerPage".into(), resources.len().into());
        document.insert("startIndex".into(), prepared.start_index.into());
        if prepared.count > 0 {
            document.insert("Resources".into(), Value::Array(resources));
        }
        Ok(())
    }
}
