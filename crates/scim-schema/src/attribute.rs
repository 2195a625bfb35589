//! Attribute definitions and their characteristics (RFC 7643 section 2.2 and section 7).
//!
//! The serde form is exactly the one a server publishes under `/Schemas` (RFC 7643 section 7),
//! so a custom schema written by an operator in that form loads straight into these types.

use serde::{Deserialize, Serialize};

/// The data type of an attribute (RFC 7643 section 2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum AttributeType {
    /// A sequence of Unicode characters (2.3.1).
    String,
    /// `true` or `false` (2.3.2).
    Boolean,
    /// A real number with at least one digit after the decimal point (2.3.3).
    Decimal,
    /// A whole number with no fractional digits (2.3.4).
    Integer,
    /// An `xsd:dateTime` instant, e.g. `2008-01-23T04:56:22Z` (2.3.5).
    DateTime,
    /// Base64-encoded arbitrary binary data (2.3.6).
    Binary,
    /// A URI for a resource (2.3.7); see [`AttributeDef::reference_types`].
    Reference,
    /// A singular or multi-valued attribute made of sub-attributes (2.3.8).
    Complex,
}

impl AttributeType {
    /// The name used on the wire and in error messages (`"dateTime"`, `"complex"` ...).
    pub fn as_str(self) -> &'static str {
        match self {
            AttributeType::String => "string",
            AttributeType::Boolean => "boolean",
            AttributeType::Decimal => "decimal",
            AttributeType::Integer => "integer",
            AttributeType::DateTime => "dateTime",
            AttributeType::Binary => "binary",
            AttributeType::Reference => "reference",
            AttributeType::Complex => "complex",
        }
    }
}

impl std::fmt::Display for AttributeType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether and how an attribute may be changed (RFC 7643 section 7, "mutability").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Mutability {
    /// Set by the service provider only; ignored on input.
    ReadOnly,
    /// May be updated and read at any time (the default).
    #[default]
    ReadWrite,
    /// May be set once (on create, or when unassigned) and never changed.
    Immutable,
    /// May be written but is never returned (e.g. `password`).
    WriteOnly,
}

/// When an attribute is returned in a response (RFC 7643 section 7, "returned").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Returned {
    /// Always returned, whatever `attributes`/`excludedAttributes` say (e.g. `id`).
    Always,
    /// Never returned (e.g. `password`).
    Never,
    /// Returned unless excluded (the default).
    #[default]
    Default,
    /// Returned only when named in `attributes`.
    Request,
}

/// How a value must be unique (RFC 7643 section 7, "uniqueness").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Uniqueness {
    /// No uniqueness is enforced (the default).
    #[default]
    None,
    /// Unique within the service provider's current data set (per tenant here).
    Server,
    /// Globally unique; the service provider enforces it as `server`.
    Global,
}

/// One attribute definition, with every characteristic of RFC 7643 section 2.2 and section 7.
///
/// Defaults follow section 2.2: `required` false, `caseExact` false, `mutability` readWrite,
/// `returned` default, `uniqueness` none, `type` string, `multiValued` false.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributeDef {
    /// The attribute's name, in its canonical case.
    pub name: String,
    /// The attribute's data type.
    #[serde(rename = "type", default = "default_type")]
    pub kind: AttributeType,
    /// Whether the attribute holds an array of values.
    #[serde(default)]
    pub multi_valued: bool,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether the attribute must be present on create and replace.
    #[serde(default)]
    pub required: bool,
    /// Whether string comparison (filters, uniqueness) is case-sensitive.
    #[serde(default)]
    pub case_exact: bool,
    /// Whether and how the attribute may be changed.
    #[serde(default)]
    pub mutability: Mutability,
    /// When the attribute is returned.
    #[serde(default)]
    pub returned: Returned,
    /// How values must be unique.
    #[serde(default)]
    pub uniqueness: Uniqueness,
    /// Suggested values (e.g. `work`, `home`); see [`AttributeDef::canonical_values`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub canonical_values: Vec<String>,
    /// For `reference` attributes: the resource types or `external` / `uri` it may point to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reference_types: Vec<String>,
    /// For `complex` attributes: the sub-attributes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sub_attributes: Vec<AttributeDef>,
}

fn default_type() -> AttributeType {
    AttributeType::String
}

impl AttributeDef {
    /// A new attribute of the given name and type with the section 2.2 defaults.
    pub fn new(name: impl Into<String>, kind: AttributeType) -> Self {
        AttributeDef {
            name: name.into(),
            kind,
            multi_valued: false,
            description: None,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical_values: Vec::new(),
            reference_types: Vec::new(),
            sub_attributes: Vec::new(),
        }
    }

    /// Whether the attribute's values are secret: `returned: never` or `mutability: writeOnly`
    /// (RFC 7643 section 7), like `password`. Such a value is never returned, so nothing may
    /// reveal it indirectly either: a filter, a sort order or a policy rule that names it would
    /// be an oracle for it, and is refused.
    pub fn is_secret(&self) -> bool {
        self.returned == Returned::Never || self.mutability == Mutability::WriteOnly
    }

    /// The sub-attribute of this complex attribute named `name`, compared case-insensitively
    /// (RFC 7643 section 2.1: attribute names are case-insensitive).
    pub fn sub_attribute(&self, name: &str) -> Option<&AttributeDef> {
        self.sub_attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
}
