//! # scim-schema
//!
//! The RFC 7643 model of SCIM resources, as pure functions over `serde_json::Value`:
//!
//! - [`attribute`]: attribute definitions with every characteristic (RFC 7643 sections 2.2
//!   and 7); [`path`]: attribute paths in attribute notation (RFC 7644 section 3.10);
//!   [`datetime`], [`text`]: how `dateTime` values and `caseExact: false` strings compare.
//! - [`schema`]: schemas and resource types as data (sections 6 and 7), and
//!   [`ResourceSchema`], one resource type resolved against its schemas.
//! - [`core`]: the common attributes (section 3.1), the User, Group and Enterprise User
//!   schemas (section 4) and resource types (section 8.6), embedded as the RFC's JSON, and
//!   the URNs of SCIM's schemas and messages.
//! - [`SchemaRegistry`]: every schema and resource type a server serves, the core plus
//!   custom schemas and extensions loaded from JSON and checked when loaded.
//! - [`representation`]: the `/Schemas`, `/ResourceTypes` and `/ServiceProviderConfig`
//!   documents (sections 5, 6, 7 and 8.5 to 8.7).
//! - [`validate`]: validation and normalisation of resources for create and replace (RFC
//!   7644 sections 3.3 and 3.5.1) and of single values for PATCH.
//! - [`projection`]: `attributes` / `excludedAttributes` and the `returned` characteristic
//!   (RFC 7644 section 3.4.2.5).
//!
//! Every error is a [`SchemaError`] that names where the problem is and carries its
//! `scimType` ([`ScimType`], RFC 7644 section 3.12).
//!
//! This crate knows nothing of storage, HTTP or async.
//!
//! ```
//! use scim_schema::{AttributeSelection, ValidationOptions, core, projection, validate};
//! use serde_json::json;
//!
//! let user = core::user();
//! let stored = validate::for_create(
//!     &user,
//!     &json!({
//!         "schemas": [core::USER],
//!         "USERNAME": "bjensen",
//!         "password": "t1meMa$heen",
//!         "id": "ignored: readOnly",
//!     }),
//!     &ValidationOptions::default(),
//! )?;
//! assert_eq!(stored, json!({"schemas": [core::USER], "userName": "bjensen", "password": "t1meMa$heen"}));
//!
//! let selection = AttributeSelection::parse_excluded("name")?;
//! assert_eq!(
//!     projection::project(&stored, &user, &selection),
//!     json!({"schemas": [core::USER], "userName": "bjensen"}),
//! );
//! # Ok::<(), scim_schema::SchemaError>(())
//! ```

pub mod attribute;
pub mod core;
pub mod datetime;
mod definition;
pub mod error;
pub mod path;
pub mod projection;
pub mod registry;
pub mod representation;
pub mod schema;
pub mod scim_type;
pub mod text;
pub mod validate;

pub use attribute::{AttributeDef, AttributeType, Mutability, Returned, Uniqueness};
pub use datetime::DateTime;
pub use error::{SchemaError, json_kind};
pub use path::{AttrPath, PathError};
pub use projection::{AttributeSelection, ProjectionPlan, Selector, project};
pub use registry::SchemaRegistry;
pub use representation::{
    AuthenticationScheme, BulkConfig, FilterConfig, ServiceProviderConfig, Supported,
};
pub use schema::{
    AttrLocation, ResolvedAttr, ResourceSchema, ResourceType, Schema, SchemaExtension,
};
pub use scim_type::ScimType;
pub use text::{fold_case, text_eq};
pub use validate::{UnknownAttributes, ValidationOptions};
