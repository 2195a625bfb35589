#![doc = include_str!("../README.md")]

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
pub use validate::{
    Leftovers, UnknownAttributes, ValidationOptions, ValueKey, json_key, split_unknown, value_key,
};
