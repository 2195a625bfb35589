//! The `scimType` error keywords of RFC 7644 section 3.12 (Table 9), shared by every crate so
//! that the server can turn any layer's error into a SCIM error response without guessing.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A `scimType` value (RFC 7644 section 3.12, Table 9), with the HTTP status it goes with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScimType {
    /// The filter syntax was invalid or the filter was not applicable (400).
    #[serde(rename = "invalidFilter")]
    InvalidFilter,
    /// The filter yields too many results to process (400).
    #[serde(rename = "tooMany")]
    TooMany,
    /// One or more attribute values are already in use or reserved (409).
    #[serde(rename = "uniqueness")]
    Uniqueness,
    /// The attempted change is not compatible with an attribute's mutability (400).
    #[serde(rename = "mutability")]
    Mutability,
    /// The request body structure was invalid or did not conform to the schema (400).
    #[serde(rename = "invalidSyntax")]
    InvalidSyntax,
    /// The `path` attribute was invalid or malformed (400).
    #[serde(rename = "invalidPath")]
    InvalidPath,
    /// The path did not yield an attribute or value that could be operated on (400).
    #[serde(rename = "noTarget")]
    NoTarget,
    /// A required value was missing or a value was not compatible with the attribute (400).
    #[serde(rename = "invalidValue")]
    InvalidValue,
    /// The specified SCIM protocol version is not supported (400).
    #[serde(rename = "invalidVers")]
    InvalidVers,
    /// The request cannot be completed because of sensitive information in the URI (403).
    #[serde(rename = "sensitive")]
    Sensitive,
}

impl ScimType {
    /// The keyword as it appears in an error response.
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
            ScimType::Sensitive => "sensitive",
        }
    }

    /// The HTTP status RFC 7644 section 3.12 pairs with this keyword.
    pub fn status(self) -> u16 {
        match self {
            ScimType::Uniqueness => 409,
            ScimType::Sensitive => 403,
            _ => 400,
        }
    }
}

impl fmt::Display for ScimType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
