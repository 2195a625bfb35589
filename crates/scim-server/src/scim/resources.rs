//! The resource endpoints (RFC 7644 sections 3.3 to 3.6): create, get, replace, patch,
//! delete, for `/Users` and `/Groups`. The operations themselves are shared with `/Bulk`;
//! the `http_*` functions add what is particular to a single HTTP request (query parameters,
//! conditional headers, status codes, headers).

use crate::context::Ctx;
use crate::error::{ApiError, from_store};
use crate::request::{self, EtagCondition, QueryParams};
use crate::response::{self, Body};
use crate::scim::ScimState;
use crate::scim::password;
use http::{HeaderMap, Response, StatusCode, header};
use scim_patch::PatchRequest;
use scim_schema::{
    AttrPath, AttributeSelection, ProjectionPlan, ResourceSchema, UnknownAttributes, validate,
};
use scim_store::{Members, PatchCall, PatchResult, PatchSettings, ResourceKind, StoredResource};
use serde_json::Value;

/// The `attributes` / `excludedAttributes` parameters of a request (RFC 7644 section 3.9).
pub(crate) fn selection_of(query: &QueryParams) -> Result<AttributeSelection, ApiError> {
    Ok(AttributeSelection::from_params(
        query.get("attributes")?,
        query.get("excludedAttributes")?,
    )?)
}

/// The collection segment of a resource type's endpoint.
pub(crate) fn collection(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::Group => "Groups",
        _ => "Users",
    }
}

/// The text of a value already checked to be a string.
fn value_text(value: Value) -> String {
    match value {
        Value::String(text) => text,
        other => other.to_string(),
    }
}

fn not_found(kind: ResourceKind, id: &str) -> ApiError {
    ApiError::not_found(format!("{kind} {id:?} not found"))
}

impl ScimState {
    /// Whether a response projected by `selection` needs a Group's members: when it does not
    /// (`excludedAttributes=members`, or `attributes` not naming them), the store does not
    /// load them at all.
    pub(crate) fn members_for(
        &self,
        ctx: &Ctx,
        kind: ResourceKind,
        selection: &AttributeSelection,
    ) -> Members {
        if kind == ResourceKind::Group
            && !selection.includes(ctx.schema(kind), &AttrPath::simple("members"))
        {
            Members::Exclude
        } else {
            Members::Include
        }
    }

    /// How a resource of `schema` is served under `selection`. Unless the server keeps
    /// unknown attributes on purpose (lenient validation), attributes the tenant's schemas no
    /// longer define (an operator removed them) are not served, though their stored values
    /// stay in the documents.
    pub(crate) fn projection<'s>(
        &self,
        schema: &'s ResourceSchema,
        selection: &AttributeSelection,
    ) -> ProjectionPlan<'s> {
        let plan = ProjectionPlan::new(schema, selection);
        match self.config.validation.unknown_attributes {
            UnknownAttributes::Keep => plan,
            _ => plan.known_only(),
        }
    }

    /// The absolute URI of a resource (`meta.location`, RFC 7643 section 3.1).
    pub(crate) fn location(&self, ctx: &Ctx, kind: ResourceKind, id: &str) -> String {
        format!("{}/{}/{id}", ctx.base, collection(kind))
    }

    /// The served form of a stored resource: `meta.location` and the `$ref` of each member or
    /// group added (they need the base URL, which only the server knows), then projected.
    pub(crate) fn render(
        &self,
        ctx: &Ctx,
        resource: StoredResource,
        plan: &ProjectionPlan<'_>,
    ) -> Value {
        let kind = resource.kind;
        let mut document = resource.document;
        if let Some(object) = document.as_object_mut() {
            if let Some(Value::Object(meta)) = object.get_mut("meta") {
                meta.insert(
                    "location".into(),
                    Value::String(self.location(ctx, kind, &resource.id)),
                );
            }
            for (attribute, default_kind) in [
                ("members", ResourceKind::User),
                ("groups", ResourceKind::Group),
            ] {
                if let Some(Value::Array(items)) = object.get_mut(attribute) {
                    for item in items.iter_mut().filter_map(Value::as_object_mut) {
                        let member_kind = match item.get("type").and_then(Value::as_str) {
                            Some("Group") => ResourceKind::Group,
                            Some("User") => ResourceKind::User,
                            _ => default_kind,
                        };
                        if let Some(id) = item.get("value").and_then(Value::as_str) {
                            let reference = self.location(ctx, member_kind, id);
                            item.insert("$ref".into(), Value::String(reference));
                        }
                    }
                }
            }
        }
        plan.project_owned(document)
    }

    /// A 200/201 response with a resource, its `ETag` and, for 201, its `Location`.
    fn resource_response(
        &self,
        ctx: &Ctx,
        status: StatusCode,
        resource: StoredResource,
        selection: &AttributeSelection,
    ) -> Response<Body> {
        let etag = resource.etag();
        let location = self.location(ctx, resource.kind, &resource.id);
        let plan = self.projection(ctx.schema(resource.kind), selection);
        let document = self.render(ctx, resource, &plan);
        // RFC 7644 sections 3.3 and 3.4.1 show `Location` with the resource's URI.
        response::with_location(
            response::with_etag(response::json(status, &document), &etag),
            &location,
        )
    }

    /// The version a conditional write is bound to (RFC 7644 section 3.14): `None` when
    /// unconditional. A single `If-Match` tag is passed to the store, which checks it in the
    /// write's transaction; a list of tags is resolved against the current version first.
    async fn expected_version(
        &self,
        ctx: &Ctx,
        kind: ResourceKind,
        id: &str,
        condition: Option<&EtagCondition>,
    ) -> Result<Option<u64>, ApiError> {
        let Some(condition) = condition else {
            return Ok(None);
        };
        if let Some(single) = condition.single_version() {
            return Ok(single);
        }
        let current = self.existing(ctx, kind, id, Members::Exclude).await?;
        if condition.matches(current.version) {
            Ok(Some(current.version))
        } else {
            Err(ApiError::precondition_failed(format!(
                "If-Match does not match: the resource is at {}",
                current.etag()
            )))
        }
    }

    /// The resource `id`, or 404.
    async fn existing(
        &self,
        ctx: &Ctx,
        kind: ResourceKind,
        id: &str,
        members: Members,
    ) -> Result<StoredResource, ApiError> {
        self.timed("get", self.store.get(&ctx.tenant, kind, id, members))
            .await
            .map_err(|e| from_store(e, &ctx.request_id))?
            .ok_or_else(|| not_found(kind, id))
    }

    fn store_error(&self, ctx: &Ctx, e: scim_store::StoreError) -> ApiError {
        match e {
            scim_store::StoreError::VersionMismatch { actual, .. } => {
                ApiError::precondition_failed(format!(
                    "If-Match does not match: the resource is at W/\"{actual}\" (RFC 7644 section 3.14)"
                ))
            }
            other => from_store(other, &ctx.request_id),
        }
    }

    // ---- the operations, shared with /Bulk --------------------------------------------------

    /// Creates a resource (RFC 7644 section 3.3) from a request body.
    pub(crate) async fn op_create(
        &self,
        ctx: &Ctx,
        kind: ResourceKind,
        body: Value,
    ) -> Result<StoredResource, ApiError> {
        if !body.is_object() {
            return Err(ApiError::invalid_syntax(
                "the request body must be a JSON object (a SCIM resource)",
            ));
        }
        let mut document = validate::for_create(ctx.schema(kind), &body, &self.config.validation)?;
        if kind == ResourceKind::User {
            self.hash_password_in(ctx, &mut document).await?;
        }
        self.timed(
            "create",
            self.store
                .create(&ctx.tenant, kind, document, &ctx.write_context()),
        )
        .await
        .map_err(|e| self.store_error(ctx, e))
    }

    /// Replaces a resource (RFC 7644 section 3.5.1). A `password` the body omits is kept:
    /// RFC 7644 section 3.5.1 lets the server take an omitted writable attribute as "not
    /// asserted", and identity providers never send the password back.
    pub(crate) async fn op_replace(
        &self,
        ctx: &Ctx,
        kind: ResourceKind,
        id: &str,
        body: Value,
        condition: Option<&EtagCondition>,
    ) -> Result<StoredResource, ApiError> {
        if !body.is_object() {
            return Err(ApiError::invalid_syntax(
                "the request body must be a JSON object (a SCIM resource)",
            ));
        }
        let existing = self.existing(ctx, kind, id, Members::Exclude).await?;
        let expected = match condition {
            None => None,
            Some(c) if c.matches(existing.version) => Some(existing.version),
            Some(_) => {
                return Err(ApiError::precondition_failed(format!(
                    "If-Match does not match: the resource is at {}",
                    existing.etag()
                )));
            }
        };
        let mut document = validate::for_replace(
            ctx.schema(kind),
            &body,
            &existing.document,
            &self.config.validation,
        )?;
        if kind == ResourceKind::User {
            self.hash_password_in(ctx, &mut document).await?;
            if let (Some(object), Some(old)) =
                (document.as_object_mut(), existing.document.get("password"))
            {
                if !object.keys().any(|k| k.eq_ignore_ascii_case("password")) {
                    object.insert("password".into(), old.clone());
                }
            }
        }
        self.timed(
            "replace",
            self.store.replace(
                &ctx.tenant,
                kind,
                id,
                document,
                expected,
                &ctx.write_context(),
            ),
        )
        .await
        .map_err(|e| self.store_error(ctx, e))
    }

    /// Patches a resource (RFC 7644 section 3.5.2); the store applies the PatchOp atomically.
    pub(crate) async fn op_patch(
        &self,
        ctx: &Ctx,
        kind: ResourceKind,
        id: &str,
        body: Value,
        condition: Option<&EtagCondition>,
        members: Members,
    ) -> Result<PatchResult, ApiError> {
        let mut request = PatchRequest::from_value(body, &self.config.patch)?;
        if kind == ResourceKind::User {
            self.hash_password_in_patch(ctx, id, &mut request).await?;
        }
        let expected = self.expected_version(ctx, kind, id, condition).await?;
        let settings = PatchSettings {
            patch: self.config.patch.clone(),
            validation: self.config.validation,
        };
        self.timed(
            "patch",
            self.store.patch(
                &ctx.tenant,
                PatchCall {
                    kind,
                    id,
                    request: &request,
                    settings: &settings,
                    expected_version: expected,
                    members,
                },
                &ctx.write_context(),
            ),
        )
        .await
        .map_err(|e| self.store_error(ctx, e))
    }

    /// Replaces the clear-text password of a validated User document by its hash.
    async fn hash_password_in(&self, ctx: &Ctx, document: &mut Value) -> Result<(), ApiError> {
        let schema = ctx.schema(ResourceKind::User);
        if let Some(slot) = password::password_in_document(schema, document)? {
            let clear = std::mem::take(slot);
            *slot = Value::String(self.hasher.hash(value_text(clear)).await?);
        }
        Ok(())
    }

    /// Replaces the password a User PATCH writes by its hash, once the request is known to
    /// apply: the User must exist, and the request (with a placeholder hash standing in for
    /// the password) must apply and validate, or the hash is not worth its cost. The store
    /// applies the request again in its write, against the version it reads there.
    async fn hash_password_in_patch(
        &self,
        ctx: &Ctx,
        id: &str,
        request: &mut PatchRequest,
    ) -> Result<(), ApiError> {
        let kind = ResourceKind::User;
        let schema = ctx.schema(kind);
        let options = &self.config.patch;
        let Some(slot) = password::password_in_patch(schema, request, options)? else {
            return Ok(());
        };
        let clear = std::mem::replace(slot, Value::String(password::PLACEHOLDER.into()));
        let current = self.existing(ctx, kind, id, Members::Exclude).await?;
        let outcome = scim_patch::apply(&current.document, schema, request, options)?;
        validate::for_replace(
            schema,
            &outcome.resource,
            &current.document,
            &self.config.validation,
        )?;
        let hashed = self.hasher.hash(value_text(clear)).await?;
        if let Some(slot) = password::password_in_patch(schema, request, options)? {
            *slot = Value::String(hashed);
        }
        Ok(())
    }

    /// Deletes a resource (RFC 7644 section 3.6).
    pub(crate) async fn op_delete(
        &self,
        ctx: &Ctx,
        kind: ResourceKind,
        id: &str,
        condition: Option<&EtagCondition>,
    ) -> Result<(), ApiError> {
        let expected = self.expected_version(ctx, kind, id, condition).await?;
        self.timed(
            "delete",
            self.store
                .delete(&ctx.tenant, kind, id, expected, &ctx.write_context()),
        )
        .await
        .map_err(|e| self.store_error(ctx, e))
    }

    // ---- HTTP -------------------------------------------------------------------------------

    /// `POST /Users`, `POST /Groups`: 201 with the resource, `Location` and `ETag`.
    pub(crate) async fn http_create(
        &self,
        ctx: &Ctx,
        kind: ResourceKind,
        body: Value,
        query: &QueryParams,
    ) -> Result<Response<Body>, ApiError> {
        let selection = selection_of(query)?;
        let created = self.op_create(ctx, kind, body).await?;
        Ok(self.resource_response(ctx, StatusCode::CREATED, created, &selection))
    }

    /// `GET /Users/{id}` (RFC 7644 section 3.4.1), with `If-None-Match` (304).
    pub(crate) async fn http_get(
        &self,
        ctx: &Ctx,
        kind: ResourceKind,
        id: &str,
        query: &QueryParams,
        headers: &HeaderMap,
    ) -> Result<Response<Body>, ApiError> {
        let selection = selection_of(query)?;
        let if_none_match = request::etag_condition(headers, header::IF_NONE_MATCH)?;
        let members = if if_none_match.is_some() {
            Members::Exclude
        } else {
            self.members_for(ctx, kind, &selection)
        };
        let mut found = self.existing(ctx, kind, id, members).await?;
        if let Some(condition) = if_none_match {
            if condition.matches(found.version) {
                return Ok(response::with_etag(
                    response::empty(StatusCode::NOT_MODIFIED),
                    &found.etag(),
                ));
            }
            let wanted = self.members_for(ctx, kind, &selection);
            if wanted == Members::Include && kind == ResourceKind::Group {
                found = self.existing(ctx, kind, id, wanted).await?;
            }
        }
        Ok(self.resource_response(ctx, StatusCode::OK, found, &selection))
    }

    /// `PUT /Users/{id}` (RFC 7644 section 3.5.1), with `If-Match` (412).
    pub(crate) async fn http_replace(
        &self,
        ctx: &Ctx,
        kind: ResourceKind,
        id: &str,
        body: Value,
        query: &QueryParams,
        headers: &HeaderMap,
    ) -> Result<Response<Body>, ApiError> {
        let selection = selection_of(query)?;
        let condition = request::etag_condition(headers, header::IF_MATCH)?;
        let replaced = self
            .op_replace(ctx, kind, id, body, condition.as_ref())
            .await?;
        Ok(self.resource_response(ctx, StatusCode::OK, replaced, &selection))
    }

    /// `PATCH /Users/{id}` (RFC 7644 section 3.5.2): 200 with the resource projected by
    /// `attributes`/`excludedAttributes`; but a Group answers 204 unless the client asked for
    /// attributes, so that a membership change never loads, serialises and sends back a group
    /// of 100,000 members (section 3.5.2 allows 204 No Content).
    pub(crate) async fn http_patch(
        &self,
        ctx: &Ctx,
        kind: ResourceKind,
        id: &str,
        body: Value,
        query: &QueryParams,
        headers: &HeaderMap,
    ) -> Result<Response<Body>, ApiError> {
        let selection = selection_of(query)?;
        let condition = request::etag_condition(headers, header::IF_MATCH)?;
        let wants_body = kind != ResourceKind::Group
            || query.has("attributes")
            || query.has("excludedAttributes");
        let members = if wants_body {
            self.members_for(ctx, kind, &selection)
        } else {
            Members::Exclude
        };
        let patched = self
            .op_patch(ctx, kind, id, body, condition.as_ref(), members)
            .await?;
        if !wants_body {
            return Ok(response::with_etag(
                response::empty(StatusCode::NO_CONTENT),
                &patched.resource.etag(),
            ));
        }
        Ok(self.resource_response(ctx, StatusCode::OK, patched.resource, &selection))
    }

    /// `DELETE /Users/{id}` (RFC 7644 section 3.6): 204.
    pub(crate) async fn http_delete(
        &self,
        ctx: &Ctx,
        kind: ResourceKind,
        id: &str,
        headers: &HeaderMap,
    ) -> Result<Response<Body>, ApiError> {
        let condition = request::etag_condition(headers, header::IF_MATCH)?;
        self.op_delete(ctx, kind, id, condition.as_ref()).await?;
        Ok(response::empty(StatusCode::NO_CONTENT))
    }
}
