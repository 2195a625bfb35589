//! The discovery documents exactly as a server serves them: `/Schemas` entries (RFC 7643
//! section 7, example 8.7.1), `/ResourceTypes` entries (section 6, example 8.6) and the
//! `/ServiceProviderConfig` document (section 5, example 8.5).
//!
//! The base URL is the server's public SCIM base (e.g. `https://example.com/scim/v2`); it is
//! a parameter because only the server knows how it is reached.

use crate::core;
use crate::schema::{ResourceType, Schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

fn location(base_url: &str, collection: &str, id: &str) -> String {
    let base = base_url.trim_end_matches('/');
    if id.is_empty() {
        format!("{base}/{collection}")
    } else {
        format!("{base}/{collection}/{id}")
    }
}

fn meta(resource_type: &str, location: String) -> Value {
    json!({ "resourceType": resource_type, "location": location })
}

/// A schema as `/Schemas` serves it (RFC 7643 section 7): `schemas`, `id`, `name`,
/// `description`, `attributes` with every characteristic explicit, and `meta` with
/// `resourceType` `"Schema"` and `location` `{base_url}/Schemas/{id}`.
pub fn schema_representation(schema: &Schema, base_url: &str) -> Value {
    let mut doc = Map::new();
    doc.insert("schemas".into(), json!([core::SCHEMA]));
    doc.insert("id".into(), Value::String(schema.id.clone()));
    if let Some(name) = &schema.name {
        doc.insert("name".into(), Value::String(name.clone()));
    }
    if let Some(description) = &schema.description {
        doc.insert("description".into(), Value::String(description.clone()));
    }
    doc.insert(
        "attributes".into(),
        serde_json::to_value(&schema.attributes).unwrap_or(Value::Array(Vec::new())),
    );
    doc.insert(
        "meta".into(),
        meta("Schema", location(base_url, "Schemas", &schema.id)),
    );
    Value::Object(doc)
}

/// A resource type as `/ResourceTypes` serves it (RFC 7643 section 6): `schemas`, `id`,
/// `name`, `endpoint`, `description`, `schema`, `schemaExtensions`, and `meta` with
/// `resourceType` `"ResourceType"` and `location` `{base_url}/ResourceTypes/{id}`.
pub fn resource_type_representation(resource_type: &ResourceType, base_url: &str) -> Value {
    let mut doc = Map::new();
    doc.insert("schemas".into(), json!([core::RESOURCE_TYPE]));
    doc.insert("id".into(), Value::String(resource_type.id.clone()));
    doc.insert("name".into(), Value::String(resource_type.name.clone()));
    doc.insert(
        "endpoint".into(),
        Value::String(resource_type.endpoint.clone()),
    );
    if let Some(description) = &resource_type.description {
        doc.insert("description".into(), Value::String(description.clone()));
    }
    doc.insert("schema".into(), Value::String(resource_type.schema.clone()));
    if !resource_type.schema_extensions.is_empty() {
        doc.insert(
            "schemaExtensions".into(),
            Value::Array(
                resource_type
                    .schema_extensions
                    .iter()
                    .map(|e| json!({ "schema": e.schema, "required": e.required }))
                    .collect(),
            ),
        );
    }
    doc.insert(
        "meta".into(),
        meta(
            "ResourceType",
            location(base_url, "ResourceTypes", &resource_type.id),
        ),
    );
    Value::Object(doc)
}

/// A feature that is only supported or not (RFC 7643 section 5: `patch`, `changePassword`,
/// `sort`, `etag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Supported {
    /// Whether the operation is supported.
    pub supported: bool,
}

impl Supported {
    /// `{"supported": true}`.
    pub const YES: Supported = Supported { supported: true };
    /// `{"supported": false}`.
    pub const NO: Supported = Supported { supported: false };
}

/// Bulk support and its limits (RFC 7643 section 5, `bulk`; RFC 7644 section 3.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BulkConfig {
    /// Whether bulk requests are supported.
    pub supported: bool,
    /// The most operations one bulk request may carry.
    pub max_operations: u32,
    /// The largest bulk request body, in bytes.
    pub max_payload_size: u64,
}

/// Filter support and its limit (RFC 7643 section 5, `filter`; RFC 7644 section 3.4.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FilterConfig {
    /// Whether filtering is supported.
    pub supported: bool,
    /// The most resources a query returns.
    pub max_results: u32,
}

/// One way clients may authenticate (RFC 7643 section 5, `authenticationSchemes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthenticationScheme {
    /// The scheme's type: `oauth`, `oauth2`, `oauthbearertoken`, `httpbasic`, `httpdigest`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The common name of the scheme, e.g. `HTTP Basic`.
    pub name: String,
    /// A description of the scheme.
    pub description: String,
    /// The scheme's specification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_uri: Option<String>,
    /// Where this service provider documents its use of the scheme.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documentation_uri: Option<String>,
    /// Whether this is the preferred scheme.
    #[serde(default)]
    pub primary: bool,
}

impl AuthenticationScheme {
    /// OAuth 2.0 bearer tokens (RFC 6750), the scheme identity providers use.
    pub fn oauth_bearer_token(primary: bool) -> Self {
        AuthenticationScheme {
            kind: "oauthbearertoken".to_owned(),
            name: "OAuth Bearer Token".to_owned(),
            description: "Authentication scheme using the OAuth Bearer Token Standard".to_owned(),
            spec_uri: Some("https://www.rfc-editor.org/info/rfc6750".to_owned()),
            documentation_uri: None,
            primary,
        }
    }

    /// HTTP Basic (RFC 7617).
    pub fn http_basic(primary: bool) -> Self {
        AuthenticationScheme {
            kind: "httpbasic".to_owned(),
            name: "HTTP Basic".to_owned(),
            description: "Authentication scheme using the HTTP Basic Standard".to_owned(),
            spec_uri: Some("https://www.rfc-editor.org/info/rfc7617".to_owned()),
            documentation_uri: None,
            primary,
        }
    }
}

/// The service provider's configuration (RFC 7643 section 5), served at
/// `/ServiceProviderConfig`. Serde gives the bare attributes; [`Self::to_representation`]
/// adds `schemas` and `meta` as the endpoint serves them.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceProviderConfig {
    /// Where the service provider's help is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub documentation_uri: Option<String>,
    /// PATCH support (RFC 7644 section 3.5.2).
    pub patch: Supported,
    /// Bulk support (RFC 7644 section 3.7).
    pub bulk: BulkConfig,
    /// Filter support (RFC 7644 section 3.4.2.2).
    pub filter: FilterConfig,
    /// Password change support.
    pub change_password: Supported,
    /// Sorting support (RFC 7644 section 3.4.2.3).
    pub sort: Supported,
    /// ETag support (RFC 7644 section 3.14).
    pub etag: Supported,
    /// The supported authentication schemes.
    pub authentication_schemes: Vec<AuthenticationScheme>,
}

impl ServiceProviderConfig {
    /// The document `/ServiceProviderConfig` serves (RFC 7643 section 5, example 8.5):
    /// `schemas` first, then the attributes, then `meta` with `resourceType`
    /// `"ServiceProviderConfig"` and `location` `{base_url}/ServiceProviderConfig`.
    pub fn to_representation(&self, base_url: &str) -> Value {
        let mut doc = Map::new();
        doc.insert("schemas".into(), json!([core::SERVICE_PROVIDER_CONFIG]));
        if let Ok(Value::Object(attrs)) = serde_json::to_value(self) {
            doc.extend(attrs);
        }
        doc.insert(
            "meta".into(),
            meta(
                "ServiceProviderConfig",
                location(base_url, "ServiceProviderConfig", ""),
            ),
        );
        Value::Object(doc)
    }
}
