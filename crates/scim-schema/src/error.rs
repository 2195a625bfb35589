//! The one error type of this crate: [`SchemaError`].

use crate::path::PathError;
use crate::scim_type::ScimType;
use serde_json::Value;

/// Why a resource, an attribute value, an `attributes`/`excludedAttributes` parameter or a
/// schema definition was rejected.
///
/// Every variant names where the problem is (an attribute path such as `emails[1].primary`,
/// the query parameter, or the definition and attribute) and what is wrong, so the server can
/// answer with a SCIM error (RFC 7644 section 3.12) whose `detail` a person can act on, and
/// [`SchemaError::scim_type`] gives its `scimType`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
// New kinds of failure may be added without a breaking release; match with a `_` arm.
#[non_exhaustive]
pub enum SchemaError {
    /// A value does not fit its attribute: wrong type, missing required attribute, value not
    /// among the canonical values, `schemas` inconsistent with the body ... (`invalidValue`).
    #[error("{}", located(.path, .detail))]
    InvalidValue {
        /// The attribute path, e.g. `emails[1].primary` (empty for the whole resource).
        path: String,
        /// What is wrong with the value.
        detail: String,
    },
    /// The body's structure does not conform to the resource type: not a JSON object, an
    /// attribute given twice, an attribute the schemas do not define (`invalidSyntax`).
    #[error("{}", located(.path, .detail))]
    InvalidSyntax {
        /// The attribute path (empty for the whole resource).
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// A replace would change an immutable attribute's assigned value (`mutability`,
    /// RFC 7644 section 3.5.1).
    #[error("{}", located(.path, .detail))]
    Mutability {
        /// The attribute path.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// A path in the `attributes` or `excludedAttributes` query parameter (RFC 7644 section
    /// 3.4.2.5) is malformed. Mapped to `invalidValue`: RFC 7644 section 3.12 lists
    /// `invalidValue` (and not `invalidSyntax`, which is about request bodies) as applicable
    /// to GET.
    #[error("{parameter}: {source}")]
    InvalidSelection {
        /// `attributes` or `excludedAttributes`.
        parameter: &'static str,
        /// The malformed path and where it went wrong.
        #[source]
        source: PathError,
    },
    /// A schema or resource type definition is invalid (RFC 7643 sections 2, 6 and 7); raised
    /// when a [`crate::SchemaRegistry`] loads it.
    #[error("{definition}: {}", located(.path, .detail))]
    Definition {
        /// Which definition, e.g. `schema "urn:example:...:User"` or `resource type "Desk"`.
        definition: String,
        /// The attribute path inside the definition, e.g. `emails.type` (empty when the
        /// problem is the definition as a whole).
        path: String,
        /// What is wrong.
        detail: String,
    },
}

fn located(path: &str, detail: &str) -> String {
    if path.is_empty() {
        detail.to_owned()
    } else {
        format!("{path}: {detail}")
    }
}

impl SchemaError {
    /// The `scimType` of the error (RFC 7644 section 3.12, Table 9).
    ///
    /// A definition error is a configuration problem, never a client's; if one ever reaches a
    /// client it reads as `invalidValue`.
    pub fn scim_type(&self) -> ScimType {
        match self {
            SchemaError::InvalidValue { .. } => ScimType::InvalidValue,
            SchemaError::InvalidSyntax { .. } => ScimType::InvalidSyntax,
            SchemaError::Mutability { .. } => ScimType::Mutability,
            SchemaError::InvalidSelection { .. } => ScimType::InvalidValue,
            SchemaError::Definition { .. } => ScimType::InvalidValue,
        }
    }

    /// Whether the body names an attribute (or extension) the resource type does not define:
    /// a server that lets operators add attributes says how in its answer.
    pub fn is_unknown_attribute(&self) -> bool {
        matches!(self, SchemaError::InvalidSyntax { detail, .. } if detail.starts_with("unknown attribute"))
    }

    /// The HTTP status that goes with [`SchemaError::scim_type`] (always 400 here).
    pub fn status(&self) -> u16 {
        self.scim_type().status()
    }

    pub(crate) fn invalid_value(path: impl Into<String>, detail: impl Into<String>) -> Self {
        SchemaError::InvalidValue {
            path: path.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn invalid_syntax(path: impl Into<String>, detail: impl Into<String>) -> Self {
        SchemaError::InvalidSyntax {
            path: path.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn mutability(path: impl Into<String>, detail: impl Into<String>) -> Self {
        SchemaError::Mutability {
            path: path.into(),
            detail: detail.into(),
        }
    }
}

/// How error details name a JSON value's kind: "a string", "an array", "null" ... Shared by
/// every crate's errors so that messages read the same whichever layer rejects the input.
pub fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
