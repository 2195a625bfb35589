//! Schemas and resource types as data (RFC 7643 sections 6 and 7), and [`ResourceSchema`]: one
//! resource type resolved against its core schema, its extensions and the common attributes.

use crate::attribute::AttributeDef;
use crate::path::AttrPath;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// A schema (RFC 7643 section 7): a URN id and its attribute definitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Schema {
    /// The schema URN, e.g. `urn:ietf:params:scim:schemas:core:2.0:User`.
    pub id: String,
    /// Human-readable name, e.g. `User`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The attributes the schema defines.
    pub attributes: Vec<AttributeDef>,
}

impl Schema {
    /// The top-level attribute named `name`, compared case-insensitively.
    pub fn attribute(&self, name: &str) -> Option<&AttributeDef> {
        self.attributes
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
    }
}

/// A schema extension of a resource type (RFC 7643 section 6, `schemaExtensions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SchemaExtension {
    /// The extension schema URN.
    pub schema: String,
    /// Whether every resource of the type must carry the extension.
    pub required: bool,
}

/// A resource type (RFC 7643 section 6).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceType {
    /// The resource type's id, e.g. `User`.
    pub id: String,
    /// The resource type's name, e.g. `User`; it is `meta.resourceType` of its resources.
    pub name: String,
    /// The endpoint relative to the SCIM base, e.g. `/Users`.
    pub endpoint: String,
    /// Human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The core schema URN.
    pub schema: String,
    /// Extension schemas.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schema_extensions: Vec<SchemaExtension>,
}

/// Where an attribute lives in a resource's JSON document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttrLocation<'a> {
    /// A top-level key of the resource (core schema or common attribute).
    TopLevel,
    /// A key inside the extension object keyed by this schema URN.
    Extension(&'a str),
}

/// An attribute path resolved against a [`ResourceSchema`].
#[derive(Debug, Clone, Copy)]
pub struct ResolvedAttr<'a> {
    /// Where the top-level attribute lives in the JSON document.
    pub location: AttrLocation<'a>,
    /// The top-level attribute.
    pub attribute: &'a AttributeDef,
    /// The sub-attribute, when the path names one.
    pub sub_attribute: Option<&'a AttributeDef>,
}

impl<'a> ResolvedAttr<'a> {
    /// The definition the path finally designates: the sub-attribute if any, else the attribute.
    pub fn target(&self) -> &'a AttributeDef {
        self.sub_attribute.unwrap_or(self.attribute)
    }

    /// Whether the path reaches a secret value: the attribute or its sub-attribute is
    /// `returned: never` or `writeOnly` ([`AttributeDef::is_secret`]).
    pub fn is_secret(&self) -> bool {
        self.attribute.is_secret() || self.sub_attribute.is_some_and(AttributeDef::is_secret)
    }
}

/// One resource type resolved against its schemas: the view that validation, projection, filter
/// evaluation and PATCH consult. Cheap to clone (schemas are shared).
#[derive(Debug, Clone)]
pub struct ResourceSchema {
    resource_type: ResourceType,
    core: Arc<Schema>,
    extensions: Vec<(Arc<Schema>, bool)>,
    common: Arc<Vec<AttributeDef>>,
}

impl ResourceSchema {
    /// Builds the view from a resource type, its core schema, its extension schemas (in the
    /// order of `resource_type.schema_extensions`) and the common attributes (RFC 7643
    /// section 3.1: `id`, `externalId`, `meta`).
    pub fn new(
        resource_type: ResourceType,
        core: Arc<Schema>,
        extensions: Vec<(Arc<Schema>, bool)>,
        common: Arc<Vec<AttributeDef>>,
    ) -> Self {
        ResourceSchema {
            resource_type,
            core,
            extensions,
            common,
        }
    }

    /// The resource type.
    pub fn resource_type(&self) -> &ResourceType {
        &self.resource_type
    }

    /// The core schema.
    pub fn core(&self) -> &Schema {
        &self.core
    }

    /// The extension schemas with their `required` flag.
    pub fn extensions(&self) -> impl Iterator<Item = (&Schema, bool)> {
        self.extensions.iter().map(|(s, r)| (s.as_ref(), *r))
    }

    /// The extension schema whose URN is `urn` (case-insensitive).
    pub fn extension(&self, urn: &str) -> Option<&Schema> {
        self.extensions
            .iter()
            .map(|(s, _)| s.as_ref())
            .find(|s| s.id.eq_ignore_ascii_case(urn))
    }

    /// The common attributes (`id`, `externalId`, `meta`).
    pub fn common(&self) -> &[AttributeDef] {
        &self.common
    }

    /// Resolves an attribute path, case-insensitively (RFC 7643 section 2.1).
    ///
    /// A URN-qualified path looks only in the schema it names. An unqualified path looks in the
    /// common attributes, then the core schema, then the extensions in order (clients such as
    /// Entra ID send extension attributes unqualified when they are unambiguous).
    pub fn resolve(&self, path: &AttrPath) -> Option<ResolvedAttr<'_>> {
        let (location, attribute) = match &path.schema {
            Some(urn) if urn.eq_ignore_ascii_case(&self.core.id) => {
                (AttrLocation::TopLevel, self.top_level(&path.name)?)
            }
            Some(urn) => {
                let ext = self.extension(urn)?;
                (AttrLocation::Extension(&ext.id), ext.attribute(&path.name)?)
            }
            None => match self.top_level(&path.name) {
                Some(a) => (AttrLocation::TopLevel, a),
                None => self.extensions.iter().find_map(|(s, _)| {
                    s.attribute(&path.name)
                        .map(|a| (AttrLocation::Extension(s.id.as_str()), a))
                })?,
            },
        };
        let sub_attribute = match &path.sub_attr {
            Some(sub) => Some(attribute.sub_attribute(sub)?),
            None => None,
        };
        Some(ResolvedAttr {
            location,
            attribute,
            sub_attribute,
        })
    }

    fn top_level(&self, name: &str) -> Option<&AttributeDef> {
        self.common
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(name))
            .or_else(|| self.core.attribute(name))
    }
}
