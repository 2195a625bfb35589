//! # scim-schema
//!
//! The RFC 7643 model of SCIM resources: attribute definitions with every characteristic
//! (section 2.2 and 7), the core User, Group and Enterprise User schemas (section 4), custom
//! schemas loaded from JSON, resource types (section 6), validation of resources, and
//! projection by `attributes` / `excludedAttributes` (RFC 7644 section 3.4.2.5).
//!
//! This crate knows nothing of storage, HTTP or async: it is pure functions over
//! `serde_json::Value` and the types here.

pub mod attribute;
pub mod datetime;
pub mod path;
pub mod schema;
pub mod scim_type;
pub mod text;

pub use attribute::{AttributeDef, AttributeType, Mutability, Returned, Uniqueness};
pub use datetime::DateTime;
pub use path::{AttrPath, PathError};
pub use schema::{
    AttrLocation, ResolvedAttr, ResourceSchema, ResourceType, Schema, SchemaExtension,
};
pub use scim_type::ScimType;
pub use text::{fold_case, text_eq};
