//! [`SchemaRegistry`]: every schema and resource type a server serves (RFC 7643 sections 6
//! and 7; RFC 7644 section 4), each resource type resolved once into a [`ResourceSchema`].

use crate::attribute::AttributeDef;
use crate::core;
use crate::definition::{
    self, check_attribute_defs, check_resource_type_shape, check_schema, parse_definition_list,
    resource_type_label, schema_label,
};
use crate::error::SchemaError;
use crate::representation;
use crate::schema::{ResourceSchema, ResourceType, Schema, SchemaExtension};
use serde_json::Value;
use std::sync::Arc;

/// The schemas and resource types a service provider serves, with each resource type
/// resolved into the [`ResourceSchema`] that validation, projection, filtering and PATCH
/// consult.
///
/// [`SchemaRegistry::new`] starts from the RFC 7643 core: the User and Group resource types,
/// the User, Group and Enterprise User schemas. An operator then adds custom schemas and
/// resource types in the RFC 7643 section 7 / section 6 JSON form, and attaches extensions
/// to resource types:
///
/// ```
/// use scim_schema::SchemaRegistry;
///
/// let mut registry = SchemaRegistry::new();
/// registry.add_schema_json(r#"{
///     "id": "urn:example:params:scim:schemas:extension:workplace:2.0:User",
///     "name": "WorkplaceUser",
///     "attributes": [
///         {"name": "homeSite", "type": "string"},
///         {"name": "employeeType", "type": "string", "canonicalValues": ["staff", "contractor"]}
///     ]
/// }"#)?;
/// registry.attach_extension(
///     "User",
///     "urn:example:params:scim:schemas:extension:workplace:2.0:User",
///     false,
/// )?;
/// let user = registry.resource_schema("User").expect("the core User resource type");
/// assert_eq!(user.extensions().count(), 2);
/// # Ok::<(), scim_schema::SchemaError>(())
/// ```
///
/// Every definition is checked when it is added (see [`SchemaRegistry::add_schema`]); an
/// invalid one is refused with a [`SchemaError::Definition`] naming it, and the registry is
/// left unchanged. Cheap to clone: schemas are shared.
#[derive(Debug, Clone)]
pub struct SchemaRegistry {
    common: Arc<Vec<AttributeDef>>,
    schemas: Vec<Arc<Schema>>,
    resource_types: Vec<ResourceType>,
    /// One per entry of `resource_types`, same order.
    resolved: Vec<ResourceSchema>,
}

impl Default for SchemaRegistry {
    fn default() -> Self {
        SchemaRegistry::new()
    }
}

/// URNs that name SCIM's own documents and messages, which no served schema may take.
const RESERVED_URNS: &[&str] = &[
    core::SCHEMA,
    core::RESOURCE_TYPE,
    core::SERVICE_PROVIDER_CONFIG,
    core::LIST_RESPONSE,
    core::PATCH_OP,
    core::ERROR,
    core::BULK_REQUEST,
    core::BULK_RESPONSE,
    core::SEARCH_REQUEST,
];

impl SchemaRegistry {
    /// The RFC 7643 core: resource types User (with the Enterprise User extension, not
    /// required) and Group, schemas User, Group and Enterprise User (RFC 7643 sections 4 and
    /// 8.6). Cheap: a clone of a registry built once.
    pub fn new() -> Self {
        core::core_registry().clone()
    }

    /// A registry with the common attributes (`id`, `externalId`, `meta`, RFC 7643 section
    /// 3.1) and nothing else, for a server that serves only its own resource types.
    pub fn empty() -> Self {
        SchemaRegistry::with_common(core::common_attributes())
    }

    pub(crate) fn with_common(common: Arc<Vec<AttributeDef>>) -> Self {
        SchemaRegistry {
            common,
            schemas: Vec::new(),
            resource_types: Vec::new(),
            resolved: Vec::new(),
        }
    }

    /// Adds a schema (RFC 7643 section 7) after checking it:
    ///
    /// - its id is a URN made of attribute-notation characters, and no served schema (nor a
    ///   SCIM message URN) has it already, compared case-insensitively;
    /// - attribute names follow ATTRNAME (section 2.1), are unique case-insensitively at each
    ///   level, `$ref` only as a sub-attribute, `schemas` never;
    /// - `subAttributes` only on complex attributes, which must have some, and sub-attributes
    ///   are never complex (section 2.3.8);
    /// - `referenceTypes` only on reference attributes, `canonicalValues` only on string and
    ///   reference attributes, `uniqueness` other than none only on simple attributes.
    pub fn add_schema(&mut self, schema: Schema) -> Result<(), SchemaError> {
        check_schema(&schema)?;
        let label = schema_label(&schema.id);
        if let Some(reserved) = RESERVED_URNS
            .iter()
            .find(|u| u.eq_ignore_ascii_case(&schema.id))
        {
            return Err(SchemaError::Definition {
                definition: label,
                path: String::new(),
                detail: format!("{reserved:?} is reserved by RFC 7643/7644"),
            });
        }
        if let Some(existing) = self.schema(&schema.id) {
            return Err(SchemaError::Definition {
                definition: label,
                path: String::new(),
                detail: format!(
                    "a schema with this id is already served ({:?})",
                    existing.id
                ),
            });
        }
        self.schemas.push(Arc::new(schema));
        Ok(())
    }

    /// Adds schemas from JSON in the RFC 7643 section 7 form: one schema object, or an array
    /// of them (the section 8.7.1 listing form). The `schemas` and `meta` keys of the served
    /// form are accepted and ignored. Unknown keys, misspelt characteristics and values of
    /// the wrong JSON type are refused with the attribute they are in. Either every schema
    /// in the text is added or none is. Returns the ids added.
    pub fn add_schema_json(&mut self, json: &str) -> Result<Vec<String>, SchemaError> {
        let items = parse_definition_list(json, "schema JSON")?;
        let mut staged = self.clone();
        let mut ids = Vec::with_capacity(items.len());
        for item in items {
            let schema = definition::schema_from_value(item)?;
            ids.push(schema.id.clone());
            staged.add_schema(schema)?;
        }
        *self = staged;
        Ok(ids)
    }

    /// Adds a resource type (RFC 7643 section 6) after checking it: a non-empty id, a name
    /// in ATTRNAME form, an endpoint of one path segment (`/Desks`), id, name and endpoint
    /// not taken by another resource type (case-insensitively), its core schema and every
    /// extension served by this registry, no extension listed twice nor equal to the core
    /// schema, and no core schema attribute named like a common attribute (`id`,
    /// `externalId`, `meta`), which would be ambiguous at the top level of a resource.
    pub fn add_resource_type(&mut self, resource_type: ResourceType) -> Result<(), SchemaError> {
        check_resource_type_shape(&resource_type)?;
        let label = resource_type_label(&resource_type.name);
        let err = |path: &str, detail: String| SchemaError::Definition {
            definition: label.clone(),
            path: path.to_owned(),
            detail,
        };
        for existing in &self.resource_types {
            if existing.id.eq_ignore_ascii_case(&resource_type.id) {
                return Err(err(
                    "id",
                    format!("resource type id {:?} is taken", existing.id),
                ));
            }
            if existing.name.eq_ignore_ascii_case(&resource_type.name) {
                return Err(err(
                    "name",
                    format!("resource type name {:?} is taken", existing.name),
                ));
            }
            if existing
                .endpoint
                .eq_ignore_ascii_case(&resource_type.endpoint)
            {
                return Err(err(
                    "endpoint",
                    format!(
                        "endpoint {:?} is taken by {:?}",
                        existing.endpoint, existing.name
                    ),
                ));
            }
        }
        let core_schema = self.schema_arc(&resource_type.schema).ok_or_else(|| {
            err(
                "schema",
                format!("no schema {:?} is served", resource_type.schema),
            )
        })?;
        if let Some(clash) = core_schema.attributes.iter().find(|a| {
            self.common
                .iter()
                .any(|c| c.name.eq_ignore_ascii_case(&a.name))
        }) {
            return Err(err(
                "schema",
                format!(
                    "core schema {:?} defines {:?}, which is a common attribute (RFC 7643 \
                     section 3.1)",
                    core_schema.id, clash.name
                ),
            ));
        }
        let mut extensions = Vec::with_capacity(resource_type.schema_extensions.len());
        for (i, ext) in resource_type.schema_extensions.iter().enumerate() {
            let schema = self.schema_arc(&ext.schema).ok_or_else(|| {
                err(
                    &format!("schemaExtensions[{i}]"),
                    format!("no schema {:?} is served", ext.schema),
                )
            })?;
            extensions.push((schema, ext.required));
        }
        // Store the URNs in the schemas' canonical spelling: they are echoed to clients.
        let mut resource_type = resource_type;
        resource_type.schema = core_schema.id.clone();
        for (ext, (schema, _)) in resource_type.schema_extensions.iter_mut().zip(&extensions) {
            ext.schema = schema.id.clone();
        }
        let resolved = ResourceSchema::new(
            resource_type.clone(),
            core_schema,
            extensions,
            self.common.clone(),
        );
        self.resource_types.push(resource_type);
        self.resolved.push(resolved);
        Ok(())
    }

    /// Adds resource types from JSON in the RFC 7643 section 6 form: one object or an array
    /// (the section 8.6 form). Either all are added or none. Returns the names added.
    pub fn add_resource_type_json(&mut self, json: &str) -> Result<Vec<String>, SchemaError> {
        let items = parse_definition_list(json, "resource type JSON")?;
        let mut staged = self.clone();
        let mut names = Vec::with_capacity(items.len());
        for item in items {
            let rt = definition::resource_type_from_value(item)?;
            names.push(rt.name.clone());
            staged.add_resource_type(rt)?;
        }
        *self = staged;
        Ok(names)
    }

    /// Attaches the served schema `schema_urn` as an extension of the resource type named
    /// `resource_type` (RFC 7643 section 6, `schemaExtensions`); `required` makes every
    /// resource of the type carry it (RFC 7643 section 3.3).
    pub fn attach_extension(
        &mut self,
        resource_type: &str,
        schema_urn: &str,
        required: bool,
    ) -> Result<(), SchemaError> {
        let label = resource_type_label(resource_type);
        let err = |path: &str, detail: String| SchemaError::Definition {
            definition: label.clone(),
            path: path.to_owned(),
            detail,
        };
        let index = self.resource_type_index(resource_type).ok_or_else(|| {
            err(
                "",
                format!(
                    "no such resource type; served: {}",
                    self.resource_type_names()
                ),
            )
        })?;
        let schema = self.schema_arc(schema_urn).ok_or_else(|| {
            err(
                "schemaExtensions",
                format!("no schema {schema_urn:?} is served"),
            )
        })?;
        let rt = &self.resource_types[index];
        if rt.schema.eq_ignore_ascii_case(&schema.id) {
            return Err(err(
                "schemaExtensions",
                format!("{:?} is the core schema of this resource type", schema.id),
            ));
        }
        if rt
            .schema_extensions
            .iter()
            .any(|e| e.schema.eq_ignore_ascii_case(&schema.id))
        {
            return Err(err(
                "schemaExtensions",
                format!("{:?} is already attached", schema.id),
            ));
        }
        let mut rt = rt.clone();
        rt.schema_extensions.push(SchemaExtension {
            schema: schema.id.clone(),
            required,
        });
        let resolved = self.resolve_type(&rt)?;
        self.resource_types[index] = rt;
        self.resolved[index] = resolved;
        Ok(())
    }

    /// This registry with a tenant's own schema documents (RFC 7643 section 7 form, one object
    /// each) added, as scimd serves per-tenant schemas. Two kinds of document:
    ///
    /// - one whose `id` is a schema this registry already serves (the core User or Group
    ///   schema, the Enterprise User extension) lists attributes merged into that schema: the
    ///   way Entra ID's "customappsso" attributes arrive, with no URN (`"description"` on a
    ///   Group). Naming an attribute the schema already has is an error: a document adds, it
    ///   never redefines. Its `name` and `description` are ignored.
    /// - any other is an extension schema with its own URN, attached (not required) to the
    ///   resource type its URN ends with, as every identity provider names them
    ///   (`urn:example:params:scim:schemas:extension:acme:2.0:User` extends `User`).
    ///
    /// Every document is checked as [`SchemaRegistry::add_schema`] checks a schema; either all
    /// apply or the error names the first that does not (its schema, path and problem).
    pub fn with_documents(&self, documents: &[Value]) -> Result<SchemaRegistry, SchemaError> {
        let mut staged = self.clone();
        for document in documents {
            let schema = definition::schema_from_value(document.clone())?;
            match staged.schema_arc(&schema.id) {
                Some(served) => staged.merge_attributes(&served, schema)?,
                None => {
                    let extended = staged.resource_type_extended_by(&schema.id)?;
                    let id = schema.id.clone();
                    staged.add_schema(schema)?;
                    staged.attach_extension(&extended, &id, false)?;
                }
            }
        }
        Ok(staged)
    }

    /// The served schema `served` with the attributes of `addition` (same id) appended, and
    /// every resource type using it resolved again.
    fn merge_attributes(&mut self, served: &Schema, addition: Schema) -> Result<(), SchemaError> {
        let label = schema_label(&served.id);
        let mut merged = served.clone();
        for (i, attribute) in addition.attributes.into_iter().enumerate() {
            if let Some(existing) = merged.attribute(&attribute.name) {
                return Err(SchemaError::Definition {
                    definition: label,
                    path: format!("attributes[{i}]"),
                    detail: format!(
                        "{:?} is already an attribute of this schema ({:?}): a document for a \
                         served schema may only add attributes",
                        attribute.name, existing.name
                    ),
                });
            }
            if let Some(common) = self
                .common
                .iter()
                .find(|c| c.name.eq_ignore_ascii_case(&attribute.name))
            {
                return Err(SchemaError::Definition {
                    definition: label,
                    path: format!("attributes[{i}]"),
                    detail: format!(
                        "{:?} is a common attribute of every resource (RFC 7643 section 3.1)",
                        common.name
                    ),
                });
            }
            merged.attributes.push(attribute);
        }
        check_schema(&merged)?;
        let merged = Arc::new(merged);
        for slot in &mut self.schemas {
            if slot.id == served.id {
                *slot = Arc::clone(&merged);
            }
        }
        for i in 0..self.resource_types.len() {
            let rt = &self.resource_types[i];
            let uses = rt.schema == served.id
                || rt.schema_extensions.iter().any(|e| e.schema == served.id);
            if uses {
                self.resolved[i] = self.resolve_type(rt)?;
            }
        }
        Ok(())
    }

    /// The resource type an extension schema's URN ends with (`...:2.0:User` extends `User`).
    fn resource_type_extended_by(&self, urn: &str) -> Result<String, SchemaError> {
        let last = urn.rsplit(':').next().unwrap_or(urn);
        match self.resource_type(last) {
            Some(rt) => Ok(rt.name.clone()),
            None => Err(SchemaError::Definition {
                definition: schema_label(urn),
                path: "id".to_owned(),
                detail: format!(
                    "an extension schema's id ends with the resource type it extends, as in \
                     \"urn:example:params:scim:schemas:extension:acme:2.0:User\"; {last:?} is \
                     not one of the served resource types ({})",
                    self.resource_type_names()
                ),
            }),
        }
    }

    fn resolve_type(&self, rt: &ResourceType) -> Result<ResourceSchema, SchemaError> {
        let missing = |urn: &str| SchemaError::Definition {
            definition: resource_type_label(&rt.name),
            path: String::new(),
            detail: format!("no schema {urn:?} is served"),
        };
        let core = self
            .schema_arc(&rt.schema)
            .ok_or_else(|| missing(&rt.schema))?;
        let mut extensions = Vec::with_capacity(rt.schema_extensions.len());
        for ext in &rt.schema_extensions {
            extensions.push((
                self.schema_arc(&ext.schema)
                    .ok_or_else(|| missing(&ext.schema))?,
                ext.required,
            ));
        }
        Ok(ResourceSchema::new(
            rt.clone(),
            core,
            extensions,
            self.common.clone(),
        ))
    }

    /// The common attributes every resource has (RFC 7643 section 3.1).
    pub fn common_attributes(&self) -> &[AttributeDef] {
        &self.common
    }

    /// The served schema whose id is `id`, compared case-insensitively.
    pub fn schema(&self, id: &str) -> Option<&Schema> {
        self.schemas
            .iter()
            .find(|s| s.id.eq_ignore_ascii_case(id))
            .map(Arc::as_ref)
    }

    fn schema_arc(&self, id: &str) -> Option<Arc<Schema>> {
        self.schemas
            .iter()
            .find(|s| s.id.eq_ignore_ascii_case(id))
            .cloned()
    }

    /// Every served schema, in the order they were added (the RFC 7643 core first).
    pub fn schemas(&self) -> impl ExactSizeIterator<Item = &Schema> {
        self.schemas.iter().map(Arc::as_ref)
    }

    /// Every resource type, in the order they were added.
    pub fn resource_types(&self) -> impl ExactSizeIterator<Item = &ResourceType> {
        self.resource_types.iter()
    }

    /// The resource type named `name` (exact match first, then case-insensitive).
    pub fn resource_type(&self, name: &str) -> Option<&ResourceType> {
        self.resource_type_index(name)
            .map(|i| &self.resource_types[i])
    }

    /// The resolved view of the resource type named `name` (e.g. `"User"`), as
    /// [`SchemaRegistry::resource_type`] finds it.
    pub fn resource_schema(&self, name: &str) -> Option<&ResourceSchema> {
        self.resource_type_index(name)
            .and_then(|i| self.resolved.get(i))
    }

    /// The resolved view of the resource type served at `endpoint` (`"/Users"`; the leading
    /// `/` is optional; exact match first, then case-insensitive).
    pub fn resource_schema_by_endpoint(&self, endpoint: &str) -> Option<&ResourceSchema> {
        let wanted = endpoint.strip_prefix('/').unwrap_or(endpoint);
        let segment = |rt: &ResourceType| {
            rt.endpoint
                .strip_prefix('/')
                .unwrap_or(&rt.endpoint)
                .to_owned()
        };
        let index = self
            .resource_types
            .iter()
            .position(|rt| segment(rt) == wanted)
            .or_else(|| {
                self.resource_types
                    .iter()
                    .position(|rt| segment(rt).eq_ignore_ascii_case(wanted))
            })?;
        self.resolved.get(index)
    }

    /// Every resource type's resolved view, in the order of [`SchemaRegistry::resource_types`].
    pub fn resource_schemas(&self) -> impl ExactSizeIterator<Item = &ResourceSchema> {
        self.resolved.iter()
    }

    fn resource_type_index(&self, name: &str) -> Option<usize> {
        self.resource_types
            .iter()
            .position(|rt| rt.name == name)
            .or_else(|| {
                self.resource_types
                    .iter()
                    .position(|rt| rt.name.eq_ignore_ascii_case(name))
            })
    }

    fn resource_type_names(&self) -> String {
        let names: Vec<&str> = self
            .resource_types
            .iter()
            .map(|rt| rt.name.as_str())
            .collect();
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    }

    /// Every served schema as `/Schemas` returns it (RFC 7643 sections 7 and 8.7.1), with
    /// `meta.location` under `base_url` (the server's public SCIM base URL).
    pub fn schema_representations(&self, base_url: &str) -> Vec<Value> {
        self.schemas()
            .map(|s| representation::schema_representation(s, base_url))
            .collect()
    }

    /// Every resource type as `/ResourceTypes` returns it (RFC 7643 sections 6 and 8.6).
    pub fn resource_type_representations(&self, base_url: &str) -> Vec<Value> {
        self.resource_types()
            .map(|rt| representation::resource_type_representation(rt, base_url))
            .collect()
    }

    pub(crate) fn check_common(label: &str, common: &[AttributeDef]) -> Result<(), SchemaError> {
        check_attribute_defs(label, None, common)
    }
}
