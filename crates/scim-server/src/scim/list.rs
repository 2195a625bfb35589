//! Queries (RFC 7644 section 3.4.2): `GET /Users` with query parameters, and `POST .search`
//! (section 3.4.3) at the root and per resource type, with the same parameters in a
//! SearchRequest body. Reading and bounding the parameters is scim-filter's
//! ([`scim_filter::search`]); this module checks them against the resource type's schema,
//! asks the store and renders the ListResponse.

use crate::context::Ctx;
use crate::error::{ApiError, from_store};
use crate::request::QueryParams;
use crate::response::{self, Body};
use crate::scim::ScimState;
use http::{Response, StatusCode};
use scim_filter::eval::UnknownAttributes;
use scim_filter::search::{self, PreparedSearch, SearchRequest};
use scim_schema::{AttributeSelection, core};
use scim_store::{PageBudget, Paging, Query, ResourceKind, SortOrder};
use serde_json::{Map, Value};

/// A [`PreparedSearch`] and the attributes its response is projected to.
struct Prepared {
    search: PreparedSearch,
    selection: AttributeSelection,
}

impl ScimState {
    /// The request checked and bounded by scim-filter (RFC 7644 section 3.4.2), then its
    /// attribute selection (section 3.9).
    fn prepare(&self, request: &SearchRequest) -> Result<Prepared, ApiError> {
        let search = request.prepare(
            u64::from(self.config.default_count),
            u64::from(self.config.max_results),
        )?;
        let selection = AttributeSelection::from_params(
            request.attributes.as_deref(),
            request.excluded_attributes.as_deref(),
        )?;
        Ok(Prepared { search, selection })
    }

    fn query_for(
        &self,
        ctx: &Ctx,
        kind: ResourceKind,
        prepared: &Prepared,
        strict: bool,
    ) -> Result<Query, ApiError> {
        let schema = ctx.schema(kind);
        let search = &prepared.search;
        if let Some(filter) = &search.filter {
            let mode = if strict {
                UnknownAttributes::Strict
            } else {
                UnknownAttributes::Lenient
            };
            scim_filter::eval::check(filter, schema, mode)?;
        }
        if let Some(path) = &search.sort_by {
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
            filter: search.filter.clone(),
            sort_by: search.sort_by.clone(),
            sort_order: match search.sort_order {
                search::SortOrder::Ascending => SortOrder::Ascending,
                search::SortOrder::Descending => SortOrder::Descending,
            },
            paging: match &search.cursor {
                Some(cursor) => Paging::Cursor(cursor.clone()),
                None => Paging::Index {
                    start_index: search.start_index,
                },
            },
            count: Some(search.count),
            members: self.members_for(ctx, kind, &prepared.selection),
            max_page_bytes: Some(self.config.max_page_bytes),
        })
    }

    /// `GET /Users`, `GET /Groups`.
    pub(crate) async fn list(
        &self,
        ctx: &Ctx,
        kind: ResourceKind,
        query: &QueryParams,
    ) -> Result<Response<Body>, ApiError> {
        let request = SearchRequest::from_query(query.pairs())?;
        self.run_list(ctx, Some(kind), &request).await
    }

    /// `POST /.search`, `POST /Users/.search`, `POST /Groups/.search`.
    pub(crate) async fn search(
        &self,
        ctx: &Ctx,
        kind: Option<ResourceKind>,
        body: &Value,
    ) -> Result<Response<Body>, ApiError> {
        let request = SearchRequest::from_json(body)?;
        self.run_list(ctx, kind, &request).await
    }

    async fn run_list(
        &self,
        ctx: &Ctx,
        kind: Option<ResourceKind>,
        request: &SearchRequest,
    ) -> Result<Response<Body>, ApiError> {
        let prepared = self.prepare(request)?;
        let mut document = Map::with_capacity(6);
        document.insert(
            "schemas".into(),
            Value::Array(vec![Value::String(core::LIST_RESPONSE.into())]),
        );
        match kind {
            Some(kind) => {
                let query = self.query_for(ctx, kind, &prepared, self.config.strict_filters)?;
                let page = self
                    .timed("query", self.store.query(&ctx.tenant, kind, &query))
                    .await
                    .map_err(|e| from_store(e, &ctx.request_id))?;
                let plan = self.projection(ctx.schema(kind), &prepared.selection);
                let resources: Vec<Value> = page
                    .resources
                    .into_iter()
                    .map(|r| self.render(ctx, r, &plan))
                    .collect();
                document.insert("totalResults".into(), page.total_results.into());
                document.insert("itemsPerPage".into(), resources.len().into());
                document.insert("startIndex".into(), page.start_index.into());
                if prepared.search.count > 0 {
                    document.insert("Resources".into(), Value::Array(resources));
                }
                if let Some(next) = page.next_cursor {
                    document.insert("nextCursor".into(), Value::String(next));
                }
            }
            None => {
                if prepared.search.cursor.is_some() {
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
        let mut skip = prepared.search.start_index.saturating_sub(1);
        let mut cut_short = false;
        let mut used: usize = 0;
        for kind in ResourceKind::ALL {
            let mut query = self.query_for(ctx, kind, prepared, false)?;
            let remaining = prepared.search.count.saturating_sub(resources.len() as u64);
            query.count = Some(remaining);
            query.paging = Paging::Index {
                start_index: skip.saturating_add(1),
            };
            // One budget for the whole page: the second type gets what the first left.
            let left = self.config.max_page_bytes.saturating_sub(used);
            query.max_page_bytes = Some(left);
            cut_short |= !resources.is_empty() && left == 0;
            if cut_short {
                // The page ended inside the previous type; the next page starts there.
                total = total.saturating_add(self.count_of(ctx, kind, &query).await?);
                continue;
            }
            let page = self
                .timed("query", self.store.query(&ctx.tenant, kind, &query))
                .await
                .map_err(|e| from_store(e, &ctx.request_id))?;
            // What this type had from the page's start, within `count`: fewer came only if the
            // page's byte budget stopped it, and then the page ends here, or the next page
            // (from startIndex + itemsPerPage) would skip the rest of this type.
            let expected = page.total_results.saturating_sub(skip).min(remaining);
            cut_short = (page.resources.len() as u64) < expected;
            skip = skip.saturating_sub(page.total_results);
            total = total.saturating_add(page.total_results);
            used = used.saturating_add(
                page.resources
                    .iter()
                    .map(|r| PageBudget::json_bytes(&r.document))
                    .sum(),
            );
            let plan = self.projection(ctx.schema(kind), &prepared.selection);
            resources.extend(
                page.resources
                    .into_iter()
                    .map(|r| self.render(ctx, r, &plan)),
            );
        }
        document.insert("totalResults".into(), total.into());
        document.insert("itemsPerPage".into(), resources.len().into());
        document.insert("startIndex".into(), prepared.search.start_index.into());
        if prepared.search.count > 0 {
            document.insert("Resources".into(), Value::Array(resources));
        }
        Ok(())
    }

    /// `totalResults` of `query` alone (`count` 0: no resource is read).
    async fn count_of(
        &self,
        ctx: &Ctx,
        kind: ResourceKind,
        query: &Query,
    ) -> Result<u64, ApiError> {
        let query = Query {
            count: Some(0),
            paging: Paging::Index { start_index: 1 },
            ..query.clone()
        };
        let page = self
            .timed("query", self.store.query(&ctx.tenant, kind, &query))
            .await
            .map_err(|e| from_store(e, &ctx.request_id))?;
        Ok(page.total_results)
    }
}
