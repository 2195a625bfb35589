//! Checks of schema and resource type definitions (RFC 7643 sections 2, 6 and 7), run when a
//! [`crate::SchemaRegistry`] loads them.
//!
//! Definitions written by an operator in JSON are first checked as JSON, so that a typo such
//! as `"multivalued"` or `"type": "datetime"` is reported with the attribute it is in instead
//! of being silently ignored or surfacing as a serde message with no location. The typed
//! definitions are then checked for the rules of the RFC that serde cannot express.

use crate::attribute::{AttributeDef, AttributeType, Uniqueness};
use crate::error::{SchemaError, json_kind};
use crate::path::{check_attr_name, is_path_byte};
use crate::schema::{ResourceType, Schema};
use serde_json::{Map, Value};

const SCHEMA_KEYS: &[&str] = &["schemas", "id", "name", "description", "attributes", "meta"];

const ATTRIBUTE_KEYS: &[&str] = &[
    "name",
    "type",
    "multiValued",
    "description",
    "required",
    "caseExact",
    "mutability",
    "returned",
    "uniqueness",
    "canonicalValues",
    "referenceTypes",
    "subAttributes",
];

const RESOURCE_TYPE_KEYS: &[&str] = &[
    "schemas",
    "id",
    "name",
    "endpoint",
    "description",
    "schema",
    "schemaExtensions",
    "meta",
];

const TYPES: &[&str] = &[
    "string",
    "boolean",
    "decimal",
    "integer",
    "dateTime",
    "binary",
    "reference",
    "complex",
];
const MUTABILITIES: &[&str] = &["readOnly", "readWrite", "immutable", "writeOnly"];
const RETURNED: &[&str] = &["always", "never", "default", "request"];
const UNIQUENESS: &[&str] = &["none", "server", "global"];

pub(crate) fn schema_label(id: &str) -> String {
    format!("schema {id:?}")
}

pub(crate) fn resource_type_label(name: &str) -> String {
    format!("resource type {name:?}")
}

fn def_error(definition: &str, path: &str, detail: impl Into<String>) -> SchemaError {
    SchemaError::Definition {
        definition: definition.to_owned(),
        path: path.to_owned(),
        detail: detail.into(),
    }
}

/// Parses JSON text that is one definition object or an array of them (the section 8.7.1
/// listing form) into the list of objects.
pub(crate) fn parse_definition_list(json: &str, what: &str) -> Result<Vec<Value>, SchemaError> {
    let value: Value = serde_json::from_str(json)
        .map_err(|e| def_error(what, "", format!("not valid JSON: {e}")))?;
    match value {
        Value::Array(items) => Ok(items),
        object @ Value::Object(_) => Ok(vec![object]),
        other => Err(def_error(
            what,
            "",
            format!(
                "expected a JSON object or an array of them, found {}",
                json_kind(&other)
            ),
        )),
    }
}

fn unknown_key(key: &str, allowed: &[&str], what: &str) -> String {
    match allowed.iter().find(|k| k.eq_ignore_ascii_case(key)) {
        Some(k) => format!("unknown key {key:?} (did you mean {k:?}?)"),
        None => format!("unknown key {key:?}; {what} has {}", allowed.join(", ")),
    }
}

fn optional_string(
    obj: &Map<String, Value>,
    key: &str,
    label: &str,
    path: &str,
) -> Result<(), SchemaError> {
    match obj.get(key) {
        None | Some(Value::Null) | Some(Value::String(_)) => Ok(()),
        Some(other) => Err(def_error(
            label,
            path,
            format!("{key:?} must be a string, found {}", json_kind(other)),
        )),
    }
}

fn required_string<'v>(
    obj: &'v Map<String, Value>,
    key: &str,
    label: &str,
    path: &str,
) -> Result<&'v str, SchemaError> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s),
        None | Some(Value::Null) => Err(def_error(label, path, format!("{key:?} is missing"))),
        Some(other) => Err(def_error(
            label,
            path,
            format!("{key:?} must be a string, found {}", json_kind(other)),
        )),
    }
}

/// Structural check of one schema object (RFC 7643 section 7), then conversion.
pub(crate) fn schema_from_value(value: Value) -> Result<Schema, SchemaError> {
    let Value::Object(obj) = &value else {
        return Err(def_error(
            "schema",
            "",
            format!("expected a JSON object, found {}", json_kind(&value)),
        ));
    };
    let id = required_string(obj, "id", "schema", "")?;
    let label = schema_label(id);
    if let Some(key) = obj.keys().find(|k| !SCHEMA_KEYS.contains(&k.as_str())) {
        return Err(def_error(
            &label,
            "",
            unknown_key(key, SCHEMA_KEYS, "a schema"),
        ));
    }
    optional_string(obj, "name", &label, "")?;
    optional_string(obj, "description", &label, "")?;
    match obj.get("attributes") {
        Some(Value::Array(attrs)) => check_attribute_values(&label, None, attrs)?,
        None | Some(Value::Null) => {
            return Err(def_error(&label, "", "\"attributes\" is missing"));
        }
        Some(other) => {
            return Err(def_error(
                &label,
                "",
                format!(
                    "\"attributes\" must be an array, found {}",
                    json_kind(other)
                ),
            ));
        }
    }
    serde_json::from_value(value.clone())
        .map_err(|e| def_error(&label, "", format!("cannot be read: {e}")))
}

/// Structural check of a list of attribute definitions, then conversion (used for the common
/// attributes, which RFC 7643 section 3.1 keeps outside any schema).
pub(crate) fn attributes_from_value(
    label: &str,
    value: Value,
) -> Result<Vec<AttributeDef>, SchemaError> {
    let Value::Array(items) = &value else {
        return Err(def_error(
            label,
            "",
            format!(
                "expected an array of attribute definitions, found {}",
                json_kind(&value)
            ),
        ));
    };
    check_attribute_values(label, None, items)?;
    serde_json::from_value(value.clone())
        .map_err(|e| def_error(label, "", format!("cannot be read: {e}")))
}

fn check_attribute_values(
    label: &str,
    parent: Option<&str>,
    attrs: &[Value],
) -> Result<(), SchemaError> {
    for (index, attr) in attrs.iter().enumerate() {
        let positional = match parent {
            Some(p) => format!("{p}.subAttributes[{index}]"),
            None => format!("attributes[{index}]"),
        };
        let Value::Object(obj) = attr else {
            return Err(def_error(
                label,
                &positional,
                format!(
                    "expected an attribute definition object, found {}",
                    json_kind(attr)
                ),
            ));
        };
        let name = required_string(obj, "name", label, &positional)?;
        let path = match parent {
            Some(p) => format!("{p}.{name}"),
            None => name.to_owned(),
        };
        if let Some(key) = obj.keys().find(|k| !ATTRIBUTE_KEYS.contains(&k.as_str())) {
            return Err(def_error(
                label,
                &path,
                unknown_key(key, ATTRIBUTE_KEYS, "an attribute definition"),
            ));
        }
        check_enum(obj, "type", TYPES, label, &path)?;
        check_enum(obj, "mutability", MUTABILITIES, label, &path)?;
        check_enum(obj, "returned", RETURNED, label, &path)?;
        check_enum(obj, "uniqueness", UNIQUENESS, label, &path)?;
        for key in ["multiValued", "required", "caseExact"] {
            match obj.get(key) {
                None | Some(Value::Bool(_)) => {}
                Some(other) => {
                    return Err(def_error(
                        label,
                        &path,
                        format!("{key:?} must be true or false, found {}", json_kind(other)),
                    ));
                }
            }
        }
        optional_string(obj, "description", label, &path)?;
        for key in ["canonicalValues", "referenceTypes"] {
            match obj.get(key) {
                None => {}
                Some(Value::Array(items)) if items.iter().all(Value::is_string) => {}
                Some(_) => {
                    return Err(def_error(
                        label,
                        &path,
                        format!("{key:?} must be an array of strings"),
                    ));
                }
            }
        }
        match obj.get("subAttributes") {
            None => {}
            Some(Value::Array(subs)) => check_attribute_values(label, Some(&path), subs)?,
            Some(other) => {
                return Err(def_error(
                    label,
                    &path,
                    format!(
                        "\"subAttributes\" must be an array, found {}",
                        json_kind(other)
                    ),
                ));
            }
        }
    }
    Ok(())
}

fn check_enum(
    obj: &Map<String, Value>,
    key: &str,
    allowed: &[&str],
    label: &str,
    path: &str,
) -> Result<(), SchemaError> {
    match obj.get(key) {
        None => Ok(()),
        Some(Value::String(s)) if allowed.contains(&s.as_str()) => Ok(()),
        Some(Value::String(s)) => {
            let hint = match allowed.iter().find(|a| a.eq_ignore_ascii_case(s)) {
                Some(a) => format!(" (did you mean {a:?}?)"),
                None => String::new(),
            };
            Err(def_error(
                label,
                path,
                format!(
                    "{key:?} is {s:?}{hint}; expected one of {}",
                    allowed.join(", ")
                ),
            ))
        }
        Some(other) => Err(def_error(
            label,
            path,
            format!("{key:?} must be a string, found {}", json_kind(other)),
        )),
    }
}

/// Structural check of one resource type object (RFC 7643 section 6), then conversion.
pub(crate) fn resource_type_from_value(value: Value) -> Result<ResourceType, SchemaError> {
    let Value::Object(obj) = &value else {
        return Err(def_error(
            "resource type",
            "",
            format!("expected a JSON object, found {}", json_kind(&value)),
        ));
    };
    let name = match obj.get("name").or_else(|| obj.get("id")) {
        Some(Value::String(s)) => s.as_str(),
        _ => "",
    };
    let label = resource_type_label(name);
    if let Some(key) = obj
        .keys()
        .find(|k| !RESOURCE_TYPE_KEYS.contains(&k.as_str()))
    {
        return Err(def_error(
            &label,
            "",
            unknown_key(key, RESOURCE_TYPE_KEYS, "a resource type"),
        ));
    }
    for key in ["id", "name", "endpoint", "schema"] {
        required_string(obj, key, &label, "")?;
    }
    optional_string(obj, "description", &label, "")?;
    match obj.get("schemaExtensions") {
        None | Some(Value::Null) => {}
        Some(Value::Array(exts)) => {
            for (i, ext) in exts.iter().enumerate() {
                let path = format!("schemaExtensions[{i}]");
                let Value::Object(ext) = ext else {
                    return Err(def_error(
                        &label,
                        &path,
                        format!("expected an object, found {}", json_kind(ext)),
                    ));
                };
                if let Some(key) = ext
                    .keys()
                    .find(|k| !["schema", "required"].contains(&k.as_str()))
                {
                    return Err(def_error(
                        &label,
                        &path,
                        unknown_key(key, &["schema", "required"], "a schema extension"),
                    ));
                }
                required_string(ext, "schema", &label, &path)?;
                match ext.get("required") {
                    Some(Value::Bool(_)) => {}
                    None | Some(Value::Null) => {
                        return Err(def_error(&label, &path, "\"required\" is missing"));
                    }
                    Some(other) => {
                        return Err(def_error(
                            &label,
                            &path,
                            format!(
                                "\"required\" must be true or false, found {}",
                                json_kind(other)
                            ),
                        ));
                    }
                }
            }
        }
        Some(other) => {
            return Err(def_error(
                &label,
                "",
                format!(
                    "\"schemaExtensions\" must be an array, found {}",
                    json_kind(other)
                ),
            ));
        }
    }
    let mut value = value;
    if let Value::Object(obj) = &mut value {
        // `null` means absent here; serde's Vec would refuse it.
        if obj.get("schemaExtensions").is_some_and(Value::is_null) {
            obj.remove("schemaExtensions");
        }
    }
    serde_json::from_value(value).map_err(|e| def_error(&label, "", format!("cannot be read: {e}")))
}

/// True if `id` is a URN (`urn:<NID>:<NSS>`) made only of bytes that may appear in attribute
/// notation, so that filters and paths can qualify attributes with it (RFC 7644 section 3.10).
pub(crate) fn is_schema_urn(id: &str) -> bool {
    let Some(rest) = id
        .get(..4)
        .filter(|p| p.eq_ignore_ascii_case("urn:"))
        .map(|_| &id[4..])
    else {
        return false;
    };
    let Some((nid, nss)) = rest.split_once(':') else {
        return false;
    };
    !nid.is_empty()
        && !nss.is_empty()
        && !id.ends_with(':')
        && !id.contains("::")
        && id.bytes().all(|b| is_path_byte(b) && b != b'$')
}

/// The rules of RFC 7643 sections 2.1, 2.3.7, 2.3.8 and 7 for one schema's attributes.
pub(crate) fn check_schema(schema: &Schema) -> Result<(), SchemaError> {
    let label = schema_label(&schema.id);
    if !is_schema_urn(&schema.id) {
        return Err(def_error(
            &label,
            "",
            "the schema id must be a URN such as \"urn:example:params:scim:schemas:extension:\
             workplace:2.0:User\" (letters, digits, '-', '_', '.' and ':' only)",
        ));
    }
    check_attribute_defs(&label, None, &schema.attributes)
}

/// The same rules for a list of attribute definitions (`parent` is the complex attribute's
/// path for sub-attributes).
pub(crate) fn check_attribute_defs(
    label: &str,
    parent: Option<&str>,
    attrs: &[AttributeDef],
) -> Result<(), SchemaError> {
    for (i, attr) in attrs.iter().enumerate() {
        let path = match parent {
            Some(p) => format!("{p}.{}", attr.name),
            None => attr.name.clone(),
        };
        if let Err(offset) = check_attr_name(&attr.name) {
            return Err(def_error(
                label,
                &path,
                format!(
                    "invalid attribute name (byte {offset}): a name is a letter followed by \
                     letters, digits, '-' or '_' (RFC 7643 section 2.1)"
                ),
            ));
        }
        if parent.is_none() && attr.name.eq_ignore_ascii_case("$ref") {
            return Err(def_error(
                label,
                &path,
                "\"$ref\" is only allowed as a sub-attribute",
            ));
        }
        if parent.is_none() && attr.name.eq_ignore_ascii_case("schemas") {
            return Err(def_error(
                label,
                &path,
                "\"schemas\" is reserved for the list of schema URNs (RFC 7643 section 3)",
            ));
        }
        if let Some(first) = attrs[..i]
            .iter()
            .find(|a| a.name.eq_ignore_ascii_case(&attr.name))
        {
            return Err(def_error(
                label,
                &path,
                format!(
                    "defined twice (as {:?} and {:?}); attribute names are case-insensitive \
                     (RFC 7643 section 2.1)",
                    first.name, attr.name
                ),
            ));
        }
        match (attr.kind, parent) {
            (AttributeType::Complex, Some(_)) => {
                return Err(def_error(
                    label,
                    &path,
                    "a sub-attribute cannot be complex (RFC 7643 section 2.3.8)",
                ));
            }
            (AttributeType::Complex, None) if attr.sub_attributes.is_empty() => {
                return Err(def_error(
                    label,
                    &path,
                    "a complex attribute needs subAttributes (RFC 7643 section 2.3.8)",
                ));
            }
            (kind, _) if kind != AttributeType::Complex && !attr.sub_attributes.is_empty() => {
                return Err(def_error(
                    label,
                    &path,
                    format!("subAttributes are only allowed on complex attributes, not {kind}"),
                ));
            }
            _ => {}
        }
        if !attr.reference_types.is_empty() && attr.kind != AttributeType::Reference {
            return Err(def_error(
                label,
                &path,
                format!(
                    "referenceTypes are only allowed on reference attributes, not {} \
                     (RFC 7643 section 7)",
                    attr.kind
                ),
            ));
        }
        if let Some(bad) = attr
            .reference_types
            .iter()
            .find(|t| check_attr_name(t).is_err())
        {
            return Err(def_error(
                label,
                &path,
                format!(
                    "referenceTypes entry {bad:?} is neither a resource type name nor \
                     \"external\" or \"uri\""
                ),
            ));
        }
        if !attr.canonical_values.is_empty()
            && !matches!(attr.kind, AttributeType::String | AttributeType::Reference)
        {
            return Err(def_error(
                label,
                &path,
                format!(
                    "canonicalValues are only supported on string and reference attributes, \
                     not {}",
                    attr.kind
                ),
            ));
        }
        if attr.kind == AttributeType::Complex && attr.uniqueness != Uniqueness::None {
            return Err(def_error(
                label,
                &path,
                "uniqueness applies to simple values; a complex attribute must have \
                 uniqueness \"none\"",
            ));
        }
        if attr.kind == AttributeType::Complex {
            check_attribute_defs(label, Some(&path), &attr.sub_attributes)?;
        }
    }
    Ok(())
}

/// Checks the parts of a resource type that do not depend on other definitions.
pub(crate) fn check_resource_type_shape(rt: &ResourceType) -> Result<(), SchemaError> {
    let label = resource_type_label(&rt.name);
    if rt.id.is_empty() {
        return Err(def_error(&label, "id", "must not be empty"));
    }
    if check_attr_name(&rt.name).is_err() {
        return Err(def_error(
            &label,
            "name",
            "a resource type name is a letter followed by letters, digits, '-' or '_' (it is \
             used in meta.resourceType and in referenceTypes)",
        ));
    }
    let segment = rt.endpoint.strip_prefix('/').unwrap_or("");
    if segment.is_empty()
        || !segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
    {
        return Err(def_error(
            &label,
            "endpoint",
            format!(
                "{:?} is not an endpoint: expected '/' followed by one path segment, e.g. \
                 \"/Users\"",
                rt.endpoint
            ),
        ));
    }
    for (i, ext) in rt.schema_extensions.iter().enumerate() {
        if ext.schema.eq_ignore_ascii_case(&rt.schema) {
            return Err(def_error(
                &label,
                &format!("schemaExtensions[{i}]"),
                "the core schema cannot also be an extension",
            ));
        }
        if rt.schema_extensions[..i]
            .iter()
            .any(|e| e.schema.eq_ignore_ascii_case(&ext.schema))
        {
            return Err(def_error(
                &label,
                &format!("schemaExtensions[{i}]"),
                format!("extension {:?} is listed twice", ext.schema),
            ));
        }
    }
    Ok(())
}
