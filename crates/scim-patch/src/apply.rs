//! Applying a [`PatchRequest`] to a resource (RFC 7644 section 3.5.2).
//!
//! # Semantics
//!
//! Operations apply in order to a copy of the resource; the first failure discards the copy, so
//! a request applies whole or not at all (section 3.5.2: "If a single operation encounters an
//! error condition, the original target resource MUST be restored").
//!
//! | target | add (3.5.2.1) | replace (3.5.2.3) | remove (3.5.2.2) |
//! |---|---|---|---|
//! | no `path` | each key of the value object as below | each key as below | `noTarget` |
//! | single-valued simple `userName` | set | set | unassign |
//! | single-valued complex `name` | merge the given sub-attributes | merge (others "left unchanged") | unassign |
//! | multi-valued `emails`, `members` | append the values not already present | replace all values | unassign |
//! | sub-attribute `name.givenName` | set | set | unassign the sub-attribute |
//! | `emails.display` (multi-valued, no filter) | `invalidPath` | `invalidPath` | unassign it in every value |
//! | value filter `emails[type eq "work"]` | merge into each match | replace each match | remove the matches |
//! | `emails[type eq "work"].value` | set in each match | set in each match | unassign in each match |
//! | filter matching nothing | `noTarget` ¹ | `noTarget` ¹ | `noTarget` ² |
//!
//! ¹ Lenient dialects create the value ([`dialects::create_on_no_match`]).
//! ² Lenient dialects make it a no-op ([`dialects::ignore_remove_no_match`]).
//!
//! Further rules, in both modes:
//!
//! - **Unassigned** (RFC 7643 section 2.5): `null`, `[]` and a complex value with nothing
//!   assigned are one state. `replace` with one of them unassigns, `add` with one is a no-op, a
//!   `null` sub-attribute in a merge unassigns that sub-attribute, and an attribute or extension
//!   object left empty is removed from the document. Removing an attribute that is not there is a
//!   no-op.
//! - **Same value** (section 3.5.2.1: "If the target location already contains the value
//!   specified, no changes SHOULD be made"): an added value already present is not added again.
//!   Values with a `value` sub-attribute are the same when their `value`s are equal (per
//!   `caseExact`) and, except for references such as `members`, their `type`s too when both have
//!   one; other values when equal.
//! - **Primary** (section 3.5.2: "a PATCH operation that sets a value's "primary" sub-attribute to
//!   "true" SHALL cause the server to automatically set "primary" to "false" for any other
//!   values"): values that had `primary: true` get `false`; an operation making two values primary
//!   is `invalidValue` (RFC 7643 section 2.4).
//! - **Mutability** (section 3.5.2; 3.5.2.2 for required): changing a readOnly attribute,
//!   changing an immutable attribute that has a value, or unassigning a required one is
//!   `mutability`. Writing the value an attribute already has is not a change and is accepted.
//!   readOnly sub-attributes inside a value are ignored, as for PUT (RFC 7644 section 3.5.1), and
//!   when a complex value's `value` changes, the sub-attributes describing the old referent are
//!   dropped unless the same write sets them: readOnly ones (`manager.displayName`, recomputed by
//!   the server) and a reference's `$ref`.
//! - **Types** are checked by [`scim_schema::validate::check_value`]; names are matched
//!   case-insensitively and written in the schema's canonical case (RFC 7643 section 2.1).
//! - **`schemas`** gains an extension's URN when the extension's object appears and loses it when
//!   the object disappears (RFC 7643 section 3). **`meta`** is readOnly and never written: the
//!   store owns it, and bumps it only when [`PatchOutcome::changed`] is true.
//! - A **remove with a value**, accepted only with lenient dialects
//!   ([`dialects::remove_with_value`]), removes from a multi-valued attribute the values matching
//!   one of the given ones (references by `value`; other complex values when every sub-attribute
//!   given is equal; simple values when equal), and unassigns a single-valued attribute only if
//!   it matches. The value is ignored when the path has a value filter.

use crate::dialects;
use crate::error::{Location, PatchError};
use crate::request::{Op, PatchOperation, PatchOptions, PatchRequest, parse_path_at};
use crate::value::{
    SMALL_LIST, SameValues, covers, find_key, get_ci, is_assigned, is_reference_list,
    reference_key, same_value, scim_eq, strip_nulls,
};
use scim_filter::eval::CompiledValueFilter;
use scim_filter::{Filter, PatchPath};
use scim_schema::json_kind;
use scim_schema::path::check_attr_name;
use scim_schema::validate::{ValidationOptions, check_element, check_value};
use scim_schema::{
    AttrLocation, AttrPath, AttributeDef, AttributeType, Mutability, ResourceSchema, Schema,
    SchemaError, ScimType, ValueKey, value_key,
};
use serde_json::{Map, Value};
use std::collections::{HashMap, HashSet};

/// The result of [`apply`]: the patched resource, and whether it differs from the input.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOutcome {
    /// The resource after every operation (equal to the input when `changed` is false).
    pub resource: Value,
    /// False when the request changed nothing (section 3.5.2.1: such an operation "SHALL NOT
    /// change the modify timestamp of the resource"): the store then keeps `meta.version` and
    /// `meta.lastModified`. Identity providers such as Entra ID send many of these.
    pub changed: bool,
}

/// Applies `request` to `resource`, a resource of the type `schema` describes (RFC 7644 section
/// 3.5.2; the rules are in the [module documentation](self)).
///
/// Atomic by construction: `resource` is borrowed and never modified; either every operation
/// applies to the returned copy, or the first failure is returned. Knows nothing of storage: the
/// store reads the resource, calls this, validates and writes the result, and keeps `meta`.
pub fn apply(
    resource: &Value,
    schema: &ResourceSchema,
    request: &PatchRequest,
    options: &PatchOptions,
) -> Result<PatchOutcome, PatchError> {
    let Value::Object(original) = resource else {
        return Err(PatchError::invalid_value(
            Location::message("resource"),
            format!(
                "the resource to patch must be a JSON object, not {}",
                json_kind(resource)
            ),
        ));
    };
    let mut engine = Engine {
        schema,
        options,
        doc: original.clone(),
        touched_extensions: Vec::new(),
    };
    for operation in &request.operations {
        engine.operation(operation)?;
    }
    engine.sync_schemas();
    let changed = engine.doc != *original;
    let resource = if changed {
        Value::Object(engine.doc)
    } else {
        resource.clone()
    };
    Ok(PatchOutcome { resource, changed })
}

/// The working copy and what the request needs to resolve paths.
pub(crate) struct Engine<'a> {
    schema: &'a ResourceSchema,
    options: &'a PatchOptions,
    doc: Map<String, Value>,
    /// Extensions (canonical URNs) whose object an operation may have created or emptied.
    touched_extensions: Vec<String>,
}

/// One operation's context for the editing functions.
pub(crate) struct Cx<'a> {
    pub(crate) op: Op,
    pub(crate) options: &'a PatchOptions,
    /// Where value errors point: `Operations[i].value` or `Operations[i].value.<key>`.
    pub(crate) value_at: Location,
    /// Where path errors point, and the path as sent.
    pub(crate) path_at: Location,
    pub(crate) path_text: String,
    /// True for the keys of a path-less value object (see
    /// [`dialects::skip_read_only_in_pathless`]).
    pub(crate) pathless: bool,
}

impl<'a> Cx<'a> {
    /// The context of operation `index` (`pathless` for the keys of a path-less value, whose
    /// errors point at `Operations[index].value.<key>`).
    pub(crate) fn new(
        op: Op,
        index: usize,
        options: &'a PatchOptions,
        path_text: &str,
        pathless: bool,
    ) -> Self {
        let (value_at, path_at) = if pathless {
            let at = Location::operation(index, format!("value.{path_text}"));
            (at.clone(), at)
        } else {
            (
                Location::operation(index, "value"),
                Location::operation(index, "path"),
            )
        };
        Cx {
            op,
            options,
            value_at,
            path_at,
            path_text: path_text.to_owned(),
            pathless,
        }
    }

    /// The context of `key` inside the value of `extension`'s whole object: errors point at
    /// `…value.<key>`, and the key is read as the extension's attribute.
    pub(crate) fn extension_key(&self, extension: &Schema, key: &str) -> Cx<'a> {
        let at = Location {
            operation: self.value_at.operation,
            member: format!("{}.{key}", self.value_at.member),
        };
        Cx {
            op: self.op,
            options: self.options,
            value_at: at.clone(),
            path_at: at,
            path_text: format!("{}:{key}", extension.id),
            pathless: true,
        }
    }

    fn lenient(&self) -> bool {
        self.options.lenient_dialects()
    }

    fn invalid_value(&self, detail: impl Into<String>) -> PatchError {
        PatchError::invalid_value(self.value_at.clone(), detail)
    }

    pub(crate) fn no_target(&self, detail: impl Into<String>) -> PatchError {
        PatchError::no_target(self.path_at.clone(), detail)
    }

    /// Maps a scim-schema error about the operation's value to a PATCH error at the value.
    fn schema_error(&self, err: SchemaError) -> PatchError {
        let detail = err.to_string();
        match err.scim_type() {
            ScimType::InvalidSyntax => PatchError::syntax(self.value_at.clone(), detail),
            ScimType::Mutability => {
                PatchError::mutability(self.value_at.clone(), self.path_text.clone(), detail)
            }
            _ => PatchError::invalid_value(self.value_at.clone(), detail),
        }
    }

    /// Type-checks and normalises a whole value of `def` ([`check_value`]); `Null` when
    /// unassigned.
    fn check(&self, def: &AttributeDef, value: &Value, name: &str) -> Result<Value, PatchError> {
        check_value(def, value, name).map_err(|e| self.schema_error(e))
    }

    /// Type-checks and normalises one element of multi-valued `def` ([`check_element`]).
    fn check_element(&self, def: &AttributeDef, value: &Value) -> Result<Value, PatchError> {
        check_element(def, value, &def.name, &ValidationOptions::default())
            .map_err(|e| self.schema_error(e))
    }
}

/// What a path designates.
pub(crate) enum Target<'s> {
    /// An attribute, possibly narrowed by a sub-attribute or a value filter.
    Attribute(AttrTarget<'s>),
    /// A whole extension object (see [`dialects::extension_urn_as_path`]).
    Extension(&'s Schema, bool),
}

pub(crate) struct AttrTarget<'s> {
    /// The extension whose object holds the attribute, or `None` for a top-level attribute.
    pub(crate) extension: Option<&'s Schema>,
    pub(crate) attr: &'s AttributeDef,
    /// The sub-attribute of an `attrPath` (`name.givenName`).
    pub(crate) sub: Option<&'s AttributeDef>,
    /// The value filter of a `valuePath` (`emails[type eq "work"]`).
    filter: Option<Box<Selector>>,
    /// The sub-attribute after a value filter (`emails[type eq "work"].value`).
    pub(crate) filter_sub: Option<&'s AttributeDef>,
}

impl AttrTarget<'_> {
    /// Whether a value filter narrows the target to some values (`emails[type eq "work"]`).
    pub(crate) fn has_filter(&self) -> bool {
        self.filter.is_some()
    }

    fn is_read_only(&self) -> bool {
        self.attr.mutability == Mutability::ReadOnly
            || self
                .sub
                .or(self.filter_sub)
                .is_some_and(|s| s.mutability == Mutability::ReadOnly)
    }
}

struct Selector {
    compiled: CompiledValueFilter,
    ast: Filter,
}

impl<'a> Engine<'a> {
    /// An engine with no document, for reading a request's paths the way [`apply()`] does
    /// (see [`crate::secrets`]).
    pub(crate) fn resolver(schema: &'a ResourceSchema, options: &'a PatchOptions) -> Self {
        Engine {
            schema,
            options,
            doc: Map::new(),
            touched_extensions: Vec::new(),
        }
    }

    fn operation(&mut self, operation: &PatchOperation) -> Result<(), PatchError> {
        let Some(path) = &operation.path else {
            return match operation.op {
                Op::Remove => Err(PatchError::no_target(
                    operation.at(""),
                    "a \"remove\" operation must have a \"path\" (RFC 7644 section 3.5.2.2)",
                )),
                Op::Add | Op::Replace => self.pathless(operation),
            };
        };
        let path_text = operation
            .path_text
            .clone()
            .unwrap_or_else(|| path.to_string());
        let cx = Cx::new(
            operation.op,
            operation.index,
            self.options,
            &path_text,
            false,
        );
        let target = self.resolve(path, &cx)?;
        let value = match (operation.op, &operation.value) {
            (Op::Add | Op::Replace, None) => {
                return Err(cx.invalid_value(format!(
                    "an \"{}\" operation must have a \"value\"",
                    operation.op
                )));
            }
            (_, value) => value.as_ref(),
        };
        self.apply_target(&cx, &target, value)
    }

    /// A path-less add or replace: the value is an object of attributes (RFC 7644 sections
    /// 3.5.2.1 and 3.5.2.3), extension attributes inside an object keyed by the extension's URN.
    fn pathless(&mut self, operation: &PatchOperation) -> Result<(), PatchError> {
        let Some(Value::Object(attributes)) = &operation.value else {
            return Err(PatchError::invalid_value(
                operation.at("value"),
                format!(
                    "without a \"path\", the value of \"{}\" must be an object of attributes",
                    operation.op
                ),
            ));
        };
        if attributes.is_empty() && !self.options.lenient_dialects() {
            return Err(PatchError::invalid_value(
                operation.at("value"),
                "without a \"path\", the value must hold one or more attributes (RFC 7644 section 3.5.2.3)",
            ));
        }
        for (key, value) in attributes {
            let cx = Cx::new(operation.op, operation.index, self.options, key, true);
            if key.eq_ignore_ascii_case("schemas") {
                self.pathless_schemas(&cx, value)?;
                continue;
            }
            if let Some((extension, required)) = self.extension_named(key) {
                self.extension_object(&cx, extension, required, Some(value))?;
                continue;
            }
            let path = self.key_path(&cx, key, None)?;
            let target = self.resolve(&path, &cx)?;
            self.apply_target(&cx, &target, Some(value))?;
        }
        Ok(())
    }

    /// The path a key of a path-less value names: an attribute name, or with lenient dialects
    /// any PATCH path ([`dialects::pathless_keys_as_paths`]). `extension` qualifies keys found
    /// inside an extension object.
    pub(crate) fn key_path(
        &self,
        cx: &Cx<'_>,
        key: &str,
        extension: Option<&Schema>,
    ) -> Result<PatchPath, PatchError> {
        if dialects::pathless_keys_as_paths(self.options) {
            let full = match extension {
                Some(ext) => format!("{}:{key}", ext.id),
                None => key.to_owned(),
            };
            return parse_path_at(cx.path_at.clone(), &full, self.options);
        }
        check_attr_name(key).map_err(|offset| {
            PatchError::invalid_path(
                cx.path_at.clone(),
                key,
                offset,
                "without a \"path\", each key of the value must be an attribute name (RFC 7644 \
                 section 3.5.2.3); paths as keys are an Entra ID dialect that strict mode refuses",
            )
        })?;
        Ok(PatchPath {
            attr: AttrPath {
                schema: extension.map(|e| e.id.clone()),
                name: key.to_owned(),
                sub_attr: None,
            },
            filter: None,
            sub_attr: None,
        })
    }

    /// `schemas` inside a path-less value: the server maintains it (RFC 7643 section 3).
    fn pathless_schemas(&self, cx: &Cx<'_>, value: &Value) -> Result<(), PatchError> {
        if dialects::skip_read_only_in_pathless(self.options) {
            return Ok(());
        }
        let urns = |v: Option<&Value>| -> Vec<String> {
            let mut urns: Vec<String> = v
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_ascii_lowercase)
                        .collect()
                })
                .unwrap_or_default();
            urns.sort();
            urns
        };
        if urns(Some(value)) == urns(get_ci(&self.doc, "schemas")) {
            return Ok(());
        }
        Err(PatchError::mutability(
            cx.value_at.clone(),
            "schemas",
            "\"schemas\" is maintained by the server from the attributes present (RFC 7643 section 3)",
        ))
    }

    pub(crate) fn extension_named(&self, urn: &str) -> Option<(&'a Schema, bool)> {
        self.schema
            .extensions()
            .find(|(s, _)| s.id.eq_ignore_ascii_case(urn))
    }

    /// Resolves a parsed path against the resource type (RFC 7644 section 3.10: attribute names
    /// case-insensitive, the URN prefix optional where unambiguous).
    pub(crate) fn resolve(&self, path: &PatchPath, cx: &Cx<'_>) -> Result<Target<'a>, PatchError> {
        let text = cx.path_text.as_str();
        let invalid = |offset: usize, detail: String| {
            PatchError::invalid_path(cx.path_at.clone(), text, offset, detail)
        };
        let name_offset = path.attr.schema.as_ref().map_or(0, |s| s.len() + 1);
        if path.filter.is_none() && path.sub_attr.is_none() && path.attr.sub_attr.is_none() {
            if let Some(urn) = &path.attr.schema {
                if let Some((extension, required)) =
                    self.extension_named(&format!("{urn}:{}", path.attr.name))
                {
                    if dialects::extension_urn_as_path(self.options) {
                        return Ok(Target::Extension(extension, required));
                    }
                    return Err(invalid(
                        0,
                        "the path names an extension schema, not an attribute; strict mode takes \
                         the extension's attributes by name, or the URN as a key of a path-less value"
                            .to_owned(),
                    ));
                }
            }
        }
        let base = AttrPath {
            schema: path.attr.schema.clone(),
            name: path.attr.name.clone(),
            sub_attr: None,
        };
        let Some(resolved) = self.schema.resolve(&base) else {
            let detail = match &path.attr.schema {
                Some(urn)
                    if !self.schema.core().id.eq_ignore_ascii_case(urn)
                        && self.schema.extension(urn).is_none() =>
                {
                    format!(
                        "the resource type {} has no schema {urn}",
                        self.schema.resource_type().name
                    )
                }
                _ => format!(
                    "the resource type {} has no attribute {:?}",
                    self.schema.resource_type().name,
                    path.attr.name
                ),
            };
            return Err(invalid(
                if path.attr.schema.is_some() && detail.contains("no schema") {
                    0
                } else {
                    name_offset
                },
                detail,
            ));
        };
        let attr = resolved.attribute;
        let extension = match resolved.location {
            AttrLocation::TopLevel => None,
            AttrLocation::Extension(urn) => self.schema.extension(urn),
        };
        let sub_offset = name_offset + path.attr.name.len() + 1;
        let sub = match &path.attr.sub_attr {
            None => None,
            Some(name) => Some(attr.sub_attribute(name).ok_or_else(|| {
                invalid(
                    sub_offset,
                    format!("{} has no sub-attribute {name:?}", attr.name),
                )
            })?),
        };
        let filter = match &path.filter {
            None => None,
            Some(filter) => {
                let bracket = text.find('[').unwrap_or(name_offset);
                if attr.kind == AttributeType::Complex
                    && !attr.multi_valued
                    && !dialects::filter_on_single_valued(self.options)
                {
                    return Err(invalid(
                        bracket,
                        format!(
                            "{} is single-valued; value filters select values of multi-valued \
                             attributes (RFC 7644 section 3.5.2)",
                            attr.name
                        ),
                    ));
                }
                let compiled = CompiledValueFilter::new(filter, attr)
                    .map_err(|e| invalid(bracket, e.to_string()))?;
                Some(Box::new(Selector {
                    compiled,
                    ast: (**filter).clone(),
                }))
            }
        };
        let filter_sub = match &path.sub_attr {
            None => None,
            Some(name) => {
                let offset = text.rfind("].").map_or(0, |i| i + 2);
                Some(attr.sub_attribute(name).ok_or_else(|| {
                    invalid(
                        offset,
                        format!("{} has no sub-attribute {name:?}", attr.name),
                    )
                })?)
            }
        };
        Ok(Target::Attribute(AttrTarget {
            extension,
            attr,
            sub,
            filter,
            filter_sub,
        }))
    }

    fn apply_target(
        &mut self,
        cx: &Cx<'_>,
        target: &Target<'a>,
        value: Option<&Value>,
    ) -> Result<(), PatchError> {
        match target {
            Target::Extension(extension, required) => {
                self.extension_object(cx, extension, *required, value)
            }
            Target::Attribute(t) => {
                if cx.pathless
                    && t.is_read_only()
                    && dialects::skip_read_only_in_pathless(self.options)
                {
                    return Ok(());
                }
                self.attribute(cx, t, value)
            }
        }
    }

    /// An operation on one attribute: finds its container (the resource, or the extension's
    /// object), edits it in place, and checks the attribute's mutability on the result.
    fn attribute(
        &mut self,
        cx: &Cx<'_>,
        t: &AttrTarget<'_>,
        value: Option<&Value>,
    ) -> Result<(), PatchError> {
        let container = match t.extension {
            None => &mut self.doc,
            Some(extension) => {
                if !self.touched_extensions.iter().any(|u| u == &extension.id) {
                    self.touched_extensions.push(extension.id.clone());
                }
                extension_container(&mut self.doc, &extension.id, cx)?
            }
        };
        let attr = t.attr;
        let restricted = is_restricted(attr);
        with_slot(container, &attr.name, |slot| {
            if t.is_read_only() && cx.op != Op::Remove {
                return read_only_write(cx, t, slot, value);
            }
            let before = restricted.then(|| slot.clone());
            edit(cx, t, slot, value)?;
            match before {
                Some(before) => check_change(cx, attr, &attr.name, &before, slot),
                None => Ok(()),
            }
        })
    }

    /// An extension's whole object: the URN as a path-less key (RFC 7643 section 3.3), or as a
    /// path ([`dialects::extension_urn_as_path`]).
    fn extension_object(
        &mut self,
        cx: &Cx<'_>,
        extension: &'a Schema,
        required: bool,
        value: Option<&Value>,
    ) -> Result<(), PatchError> {
        let value = value.filter(|v| !v.is_null());
        let clear = match (cx.op, value) {
            (Op::Remove, _) | (Op::Replace, None) => true,
            (Op::Add, None) => return Ok(()),
            (Op::Add | Op::Replace, Some(_)) => false,
        };
        if clear {
            if required {
                return Err(PatchError::mutability(
                    cx.path_at.clone(),
                    extension.id.clone(),
                    format!(
                        "the extension {} is required for {} resources (RFC 7643 section 6)",
                        extension.id,
                        self.schema.resource_type().name
                    ),
                ));
            }
            for attr in &extension.attributes {
                let t = AttrTarget {
                    extension: Some(extension),
                    attr,
                    sub: None,
                    filter: None,
                    filter_sub: None,
                };
                let remove = Cx {
                    op: Op::Remove,
                    options: cx.options,
                    value_at: cx.value_at.clone(),
                    path_at: cx.path_at.clone(),
                    path_text: cx.path_text.clone(),
                    pathless: false,
                };
                self.attribute(&remove, &t, None)?;
            }
            return Ok(());
        }
        let Some(Value::Object(attributes)) = value else {
            return Err(cx.invalid_value(format!(
                "the extension {} takes an object of its attributes (RFC 7643 section 3.3)",
                extension.id
            )));
        };
        // Python clients built on scim2-models name the extension inside its own object.
        let attributes = scim_schema::validate::without_own_schemas(attributes, &extension.id);
        for (key, v) in attributes.iter() {
            let inner = cx.extension_key(extension, key);
            let path = self.key_path(&inner, key, Some(extension))?;
            let target = self.resolve(&path, &inner)?;
            self.apply_target(&inner, &target, Some(v))?;
        }
        Ok(())
    }

    /// Keeps `schemas` consistent with the extension objects the request touched (RFC 7643
    /// section 3: "schemas" lists the schemas whose attributes are present), and removes
    /// extension objects left empty.
    fn sync_schemas(&mut self) {
        for urn in std::mem::take(&mut self.touched_extensions) {
            let key = find_key(&self.doc, &urn);
            let present = key
                .as_ref()
                .and_then(|k| self.doc.get(k))
                .is_some_and(is_assigned);
            if !present {
                if let Some(k) = &key {
                    self.doc.shift_remove(k);
                }
            }
            let schemas_key =
                find_key(&self.doc, "schemas").unwrap_or_else(|| "schemas".to_owned());
            let listed = self
                .doc
                .get(&schemas_key)
                .and_then(Value::as_array)
                .is_some_and(|a| {
                    a.iter()
                        .any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(&urn)))
                });
            if present && !listed {
                let core = Value::String(self.schema.core().id.clone());
                let entry = self
                    .doc
                    .entry(schemas_key)
                    .or_insert_with(|| Value::Array(vec![core]));
                if let Value::Array(urns) = entry {
                    urns.push(Value::String(urn.clone()));
                }
            } else if !present && listed {
                if let Some(Value::Array(urns)) = self.doc.get_mut(&schemas_key) {
                    urns.retain(|u| !u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(&urn)));
                }
            }
        }
    }
}

/// The object of extension `urn` in the resource, created if absent (an empty one is removed
/// again by [`Engine::sync_schemas`]).
fn extension_container<'d>(
    doc: &'d mut Map<String, Value>,
    urn: &str,
    cx: &Cx<'_>,
) -> Result<&'d mut Map<String, Value>, PatchError> {
    let key = match find_key(doc, urn) {
        Some(k) if k == urn => k,
        Some(k) => {
            rename_key(doc, &k, urn);
            urn.to_owned()
        }
        None => {
            doc.insert(urn.to_owned(), Value::Object(Map::new()));
            urn.to_owned()
        }
    };
    let slot = doc.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    match slot {
        Value::Object(map) => Ok(map),
        _ => Err(cx.invalid_value(format!(
            "the resource's {urn} member is not an object; it cannot be patched"
        ))),
    }
}

/// Renames `from` to `to` in place (keeping the member's position).
fn rename_key(map: &mut Map<String, Value>, from: &str, to: &str) {
    let index = map.keys().position(|k| k == from);
    if let (Some(index), Some(value)) = (index, map.shift_remove(from)) {
        map.shift_insert(index, to.to_owned(), value);
    }
}

/// Runs `edit` on the value of attribute `name` in `map` (`Null` when absent), then stores the
/// result under the canonical name, or removes the member if the result is unassigned. An
/// unassigned member that stays unassigned is left exactly as it was, so that a no-op is not a
/// change.
fn with_slot<R>(
    map: &mut Map<String, Value>,
    name: &str,
    edit: impl FnOnce(&mut Value) -> Result<R, PatchError>,
) -> Result<R, PatchError> {
    let key = find_key(map, name);
    let mut slot = key
        .as_ref()
        .and_then(|k| map.get_mut(k))
        .map(std::mem::take)
        .unwrap_or(Value::Null);
    let original_if_unassigned = (!is_assigned(&slot)).then(|| slot.clone());
    let result = edit(&mut slot);
    match (key, is_assigned(&slot), original_if_unassigned) {
        (Some(k), false, Some(original)) => {
            map.insert(k, original);
        }
        (Some(k), false, None) => {
            map.shift_remove(&k);
        }
        (None, false, _) => {}
        (Some(k), true, _) => {
            if k != name {
                rename_key(map, &k, name);
            }
            map.insert(name.to_owned(), slot);
        }
        (None, true, _) => {
            map.insert(name.to_owned(), slot);
        }
    }
    result
}

/// An add or replace addressed to a readOnly attribute (or sub-attribute) is refused with
/// `mutability` (RFC 7644 section 3.5.2: "a client MUST NOT modify an attribute that has
/// mutability "readOnly"") unless it writes what is already there. Decided on the value as
/// sent, because the schema check would drop readOnly content and make any such write look like
/// a no-op.
fn read_only_write(
    cx: &Cx<'_>,
    t: &AttrTarget<'_>,
    slot: &Value,
    value: Option<&Value>,
) -> Result<(), PatchError> {
    let attr = t.attr;
    let def = t.sub.or(t.filter_sub).unwrap_or(attr);
    let mut given = dialects::coerce(def, value.cloned().unwrap_or(Value::Null), cx.options);
    strip_nulls(&mut given);
    let unchanged = match (t.sub, &t.filter) {
        (None, None) if attr.multi_valued && cx.op == Op::Add => {
            let current = slot.as_array().map(Vec::as_slice).unwrap_or_default();
            let present = SameValues::of(attr, current);
            given
                .as_array()
                .is_some_and(|g| g.iter().all(|g| present.contains(g)))
        }
        (None, None) => scim_eq(attr, slot, &given),
        (Some(sub), None) if !attr.multi_valued => {
            scim_eq(sub, &value_before_of(slot, &sub.name), &given)
        }
        _ => false,
    };
    if unchanged {
        return Ok(());
    }
    let name = match t.sub.or(t.filter_sub) {
        Some(sub) if sub.mutability == Mutability::ReadOnly => {
            format!("{}.{}", attr.name, sub.name)
        }
        _ => attr.name.clone(),
    };
    Err(PatchError::mutability(
        cx.path_at.clone(),
        name.clone(),
        format!(
            "{name} is readOnly: it is set by the service provider and cannot be modified (RFC 7644 section 3.5.2)"
        ),
    ))
}

/// True for attributes whose changes must be checked: readOnly, immutable or required.
fn is_restricted(def: &AttributeDef) -> bool {
    matches!(def.mutability, Mutability::ReadOnly | Mutability::Immutable) || def.required
}

/// The mutability rules of RFC 7644 section 3.5.2 and 3.5.2.2 for one attribute or
/// sub-attribute that went from `before` to `after`.
fn check_change(
    cx: &Cx<'_>,
    def: &AttributeDef,
    name: &str,
    before: &Value,
    after: &Value,
) -> Result<(), PatchError> {
    if before == after || (!is_assigned(before) && !is_assigned(after)) {
        return Ok(());
    }
    let refuse = |detail: String| Err(PatchError::mutability(cx.path_at.clone(), name, detail));
    match def.mutability {
        Mutability::ReadOnly => {
            return refuse(format!(
                "{name} is readOnly: it is set by the service provider and cannot be modified (RFC 7644 section 3.5.2)"
            ));
        }
        Mutability::Immutable if is_assigned(before) => {
            return refuse(format!(
                "{name} is immutable and already has a value; it may only be added when unassigned (RFC 7644 section 3.5.2)"
            ));
        }
        _ => {}
    }
    if def.required && !is_assigned(after) {
        return refuse(format!(
            "{name} is required and cannot be removed or unassigned (RFC 7644 section 3.5.2.2)"
        ));
    }
    Ok(())
}

/// Dispatches an operation on one attribute's value (`slot`, `Null` when unassigned).
fn edit(
    cx: &Cx<'_>,
    t: &AttrTarget<'_>,
    slot: &mut Value,
    value: Option<&Value>,
) -> Result<(), PatchError> {
    match (&t.filter, t.sub) {
        (Some(selector), _) if t.attr.multi_valued => filtered_values(cx, t, selector, slot, value),
        (Some(selector), _) => filtered_single(cx, t, selector, slot, value),
        (None, Some(sub)) if t.attr.multi_valued => sub_of_every_value(cx, t.attr, sub, slot),
        (None, Some(sub)) => sub_attribute(cx, t.attr, sub, slot, value),
        (None, None) => whole(cx, t.attr, slot, value),
    }
}

/// An operation on a whole attribute.
fn whole(
    cx: &Cx<'_>,
    attr: &AttributeDef,
    slot: &mut Value,
    value: Option<&Value>,
) -> Result<(), PatchError> {
    let value = value.unwrap_or(&Value::Null);
    match cx.op {
        Op::Remove => {
            remove_whole(cx, attr, slot, value);
            Ok(())
        }
        Op::Add | Op::Replace if attr.multi_valued => write_values(cx, attr, slot, value),
        Op::Add | Op::Replace if attr.kind == AttributeType::Complex => {
            merge_complex(cx, attr, slot, value)
        }
        Op::Add | Op::Replace => {
            let coerced = dialects::coerce(attr, value.clone(), cx.options);
            let checked = cx.check(attr, &coerced, &cx.path_text)?;
            set_leaf(cx, attr, slot, checked);
            Ok(())
        }
    }
}

/// Sets a simple value: `Null` unassigns on replace and is a no-op on add; a restricted
/// attribute's value equal by its rules (e.g. another case of a caseExact-false string) is kept.
fn set_leaf(cx: &Cx<'_>, def: &AttributeDef, slot: &mut Value, new: Value) {
    if !is_assigned(&new) {
        if cx.op == Op::Replace {
            *slot = Value::Null;
        }
        return;
    }
    if is_restricted(def) && scim_eq(def, slot, &new) {
        return;
    }
    *slot = new;
}

/// Remove without a filter. A value (lenient dialects only) narrows what is removed.
fn remove_whole(cx: &Cx<'_>, attr: &AttributeDef, slot: &mut Value, given: &Value) {
    if given.is_null() || !cx.lenient() {
        *slot = Value::Null;
    } else if attr.multi_valued {
        remove_listed(cx, attr, slot, given);
    } else if matches_given(cx, attr, slot, given) {
        *slot = Value::Null;
    }
}

/// Whether single-valued `current` holds the value a remove names.
fn matches_given(cx: &Cx<'_>, attr: &AttributeDef, current: &Value, given: &Value) -> bool {
    if !is_assigned(current) {
        return false;
    }
    let mut given = dialects::coerce(attr, given.clone(), cx.options);
    strip_nulls(&mut given);
    match (&given, attr.sub_attribute("value")) {
        (Value::Object(g), _) if attr.kind == AttributeType::Complex => covers(attr, g, current),
        (g, Some(value_def)) => current
            .as_object()
            .and_then(|c| get_ci(c, "value"))
            .is_some_and(|v| scim_eq(value_def, v, g)),
        (g, None) => scim_eq(attr, current, g),
    }
}

/// Removes from multi-valued `attr` the values matching one of `given` (see the module
/// documentation).
fn remove_listed(cx: &Cx<'_>, attr: &AttributeDef, slot: &mut Value, given: &Value) {
    let mut given = match dialects::coerce(attr, given.clone(), cx.options) {
        Value::Array(values) => values,
        other => vec![other],
    };
    given.retain(is_assigned);
    given.iter_mut().for_each(strip_nulls);
    if given.is_empty() || !is_assigned(slot) {
        return;
    }
    let mut values = take_values(slot);
    let value_def = attr.sub_attribute("value");
    if is_reference_list(attr) {
        let case_exact = value_def.is_some_and(|v| v.case_exact);
        let mut ids = HashSet::new();
        let mut others = Vec::new();
        for g in &given {
            match g {
                Value::String(id) => {
                    ids.insert(crate::value::id_key(id, case_exact));
                }
                Value::Object(_) => match reference_key(attr, g) {
                    Some(key) => {
                        ids.insert(key);
                    }
                    None => others.push(g),
                },
                _ => others.push(g),
            }
        }
        let others = Listed::of(attr, value_def, others);
        values.retain(|v| {
            let by_id = reference_key(attr, v).is_some_and(|k| ids.contains(&k));
            !(by_id || others.matches(v))
        });
    } else {
        let given = Listed::of(attr, value_def, &given);
        values.retain(|v| !given.matches(v));
    }
    *slot = Value::Array(values);
}

/// The values a `remove` lists, indexed so that whether an element matches one of them costs a
/// lookup, not a scan of the list: removing k values from a list of n is O(n + k). An element
/// matches a given value (RFC 7644 section 3.5.2.2, and the value lists identity providers
/// send):
/// - a given object: when it [`covers`] the element (every sub-attribute it assigns is equal);
///   those assigning a `value` are looked up by it, the others checked one by one;
/// - a given simple value, on a complex attribute with a `value`: when the element's `value`
///   equals it;
/// - otherwise: when it equals the element ([`scim_eq`]).
struct Listed<'a> {
    attr: &'a AttributeDef,
    value_def: Option<&'a AttributeDef>,
    whole: HashSet<ValueKey>,
    values: HashSet<ValueKey>,
    covering: HashMap<ValueKey, Vec<&'a Map<String, Value>>>,
    loose: Vec<&'a Map<String, Value>>,
}

impl<'a> Listed<'a> {
    fn of<'g: 'a>(
        attr: &'a AttributeDef,
        value_def: Option<&'a AttributeDef>,
        given: impl IntoIterator<Item = &'g Value>,
    ) -> Self {
        let complex = attr.kind == AttributeType::Complex;
        let mut listed = Listed {
            attr,
            value_def,
            whole: HashSet::new(),
            values: HashSet::new(),
            covering: HashMap::new(),
            loose: Vec::new(),
        };
        for g in given {
            match (g, value_def) {
                (Value::Object(object), Some(value_def)) if complex => {
                    match get_ci(object, "value").filter(|v| is_assigned(v)) {
                        Some(v) => listed
                            .covering
                            .entry(value_key(value_def, v))
                            .or_default()
                            .push(object),
                        None => listed.loose.push(object),
                    }
                }
                (Value::Object(object), None) if complex => listed.loose.push(object),
                (g, Some(value_def)) if complex => {
                    listed.values.insert(value_key(value_def, g));
                }
                (g, _) => {
                    listed.whole.insert(value_key(attr, g));
                }
            }
        }
        listed
    }

    fn matches(&self, element: &Value) -> bool {
        if !self.whole.is_empty() && self.whole.contains(&value_key(self.attr, element)) {
            return true;
        }
        let value = element.as_object().and_then(|e| get_ci(e, "value"));
        if let (Some(value_def), Some(v)) = (self.value_def, value) {
            if !self.values.is_empty() && self.values.contains(&value_key(value_def, v)) {
                return true;
            }
        }
        if let (Some(value_def), false) = (self.value_def, self.covering.is_empty()) {
            let key = value_key(value_def, value.unwrap_or(&Value::Null));
            if let Some(candidates) = self.covering.get(&key) {
                if candidates.iter().any(|g| covers(self.attr, g, element)) {
                    return true;
                }
            }
        }
        self.loose.iter().any(|g| covers(self.attr, g, element))
    }
}

/// Add or replace on a multi-valued attribute: append the values not already present, or replace
/// them all.
fn write_values(
    cx: &Cx<'_>,
    attr: &AttributeDef,
    slot: &mut Value,
    value: &Value,
) -> Result<(), PatchError> {
    let checked = prepare_values(cx, attr, value)?;
    let mut values;
    let touched: Vec<usize>;
    if cx.op == Op::Replace {
        values = dedupe_references(attr, checked);
        touched = (0..values.len()).collect();
    } else {
        values = take_values(slot);
        let first_new = values.len();
        append_new(attr, &mut values, checked);
        touched = (first_new..values.len()).collect();
    }
    enforce_primary(cx, attr, &mut values, &touched)?;
    *slot = Value::Array(values);
    Ok(())
}

/// The values an add or replace gives multi-valued `attr`, coerced, without unassigned ones, and
/// checked by the schema. Shared with the membership planner so both read values identically.
pub(crate) fn prepare_values(
    cx: &Cx<'_>,
    attr: &AttributeDef,
    value: &Value,
) -> Result<Vec<Value>, PatchError> {
    let coerced = dialects::coerce_ref(attr, value, cx.options);
    // The schema check drops null sub-attributes itself (RFC 7643 section 2.5); null elements
    // are dropped here. A well-formed list is checked where it lies, without a copy.
    let checked = match &*coerced {
        Value::Null => return Ok(Vec::new()),
        Value::Array(values) if values.iter().any(Value::is_null) => {
            let kept: Vec<Value> = values.iter().filter(|v| !v.is_null()).cloned().collect();
            cx.check(attr, &Value::Array(kept), &cx.path_text)?
        }
        Value::Array(_) => cx.check(attr, &coerced, &cx.path_text)?,
        other => {
            return Err(cx.invalid_value(format!(
                "{} is multi-valued: its value must be an array (RFC 7643 section 2.4), not {}",
                attr.name,
                json_kind(other)
            )));
        }
    };
    match checked {
        Value::Array(values) => Ok(values),
        _ => Ok(Vec::new()),
    }
}

/// Appends each of `new` not already among `values` ([`same_value`]); references are looked up
/// by id in a set, so adding k members to a group of n costs O(n + k).
fn append_new(attr: &AttributeDef, values: &mut Vec<Value>, new: Vec<Value>) {
    if values.len() + new.len() <= SMALL_LIST {
        for candidate in new {
            if !values.iter().any(|v| same_value(attr, v, &candidate)) {
                values.push(candidate);
            }
        }
        return;
    }
    let mut present = SameValues::of(attr, values.iter());
    for candidate in new {
        if !present.contains(&candidate) {
            present.insert(&candidate);
            values.push(candidate);
        }
    }
}

/// A replacement list of references keeps the first of values with the same id.
fn dedupe_references(attr: &AttributeDef, values: Vec<Value>) -> Vec<Value> {
    if !is_reference_list(attr) {
        return values;
    }
    let mut ids = HashSet::new();
    values
        .into_iter()
        .filter(|v| reference_key(attr, v).is_none_or(|k| ids.insert(k)))
        .collect()
}

/// Add or replace on a single-valued complex attribute: the given sub-attributes replace or add
/// to the existing ones, the others are left unchanged (RFC 7644 section 3.5.2.3); a `null`
/// sub-attribute unassigns it.
fn merge_complex(
    cx: &Cx<'_>,
    attr: &AttributeDef,
    slot: &mut Value,
    value: &Value,
) -> Result<(), PatchError> {
    let coerced = dialects::coerce(attr, value.clone(), cx.options);
    let Value::Object(given) = coerced else {
        if coerced.is_null() {
            if cx.op == Op::Replace {
                *slot = Value::Null;
            }
            return Ok(());
        }
        // Let the schema check word the type error.
        cx.check(attr, &coerced, &cx.path_text)?;
        return Err(cx.invalid_value(format!(
            "{} is complex: its value must be an object",
            attr.name
        )));
    };
    let cleared = nulled_sub_attributes(cx, attr, &given)?;
    let mut given = Value::Object(given);
    strip_nulls(&mut given);
    let checked = cx.check(attr, &given, &cx.path_text)?;
    let before = slot.clone();
    merge_into(attr, slot, checked, &cleared);
    check_sub_changes(cx, attr, &before, slot)
}

/// The sub-attributes a given object sets to `null` (to unassign them), readOnly ones excepted
/// (ignored, as any readOnly input). An unknown name is the schema check's `invalidSyntax`.
fn nulled_sub_attributes<'d>(
    cx: &Cx<'_>,
    attr: &'d AttributeDef,
    given: &Map<String, Value>,
) -> Result<Vec<&'d AttributeDef>, PatchError> {
    let mut cleared = Vec::new();
    for key in given.iter().filter(|(_, v)| v.is_null()).map(|(k, _)| k) {
        match attr.sub_attribute(key) {
            Some(sub) if sub.mutability == Mutability::ReadOnly => {}
            Some(sub) => cleared.push(sub),
            None => {
                return Err(cx.invalid_value(format!("{} has no sub-attribute {key:?}", attr.name)));
            }
        }
    }
    Ok(cleared)
}

/// Merges checked sub-attributes into `slot` (an object, or unassigned), unassigns `cleared`,
/// and drops stale readOnly companions when `value` changed.
fn merge_into(attr: &AttributeDef, slot: &mut Value, checked: Value, cleared: &[&AttributeDef]) {
    let value_before = slot.as_object().and_then(|o| get_ci(o, "value")).cloned();
    let mut object = take_object(slot);
    let mut written = Vec::new();
    if let Value::Object(subs) = checked {
        for (name, v) in subs {
            set_member(&mut object, &name, v);
            written.push(name);
        }
    }
    for sub in cleared {
        if let Some(k) = find_key(&object, &sub.name) {
            object.shift_remove(&k);
        }
    }
    let written: Vec<&str> = written.iter().map(String::as_str).collect();
    drop_stale_companions(attr, &mut object, value_before.as_ref(), &written);
    put_object(slot, object);
}

/// When the `value` of a complex value changes (e.g. a new `manager.value`), the sub-attributes
/// that described the old referent are removed unless this same write set them: the readOnly
/// ones (RFC 7643 section 4.3: `manager.displayName`, which the server recomputes) and, for a
/// reference (a value with a `$ref` sub-attribute), `$ref`, the old referent's URI.
fn drop_stale_companions(
    attr: &AttributeDef,
    object: &mut Map<String, Value>,
    value_before: Option<&Value>,
    written: &[&str],
) {
    let value_after = get_ci(object, "value");
    let changed = match (value_before, value_after) {
        (Some(b), Some(a)) => b != a,
        (None, None) => false,
        _ => true,
    };
    if !changed {
        return;
    }
    let stale = attr
        .sub_attributes
        .iter()
        .filter(|s| s.mutability == Mutability::ReadOnly || s.name == "$ref")
        .filter(|s| !written.iter().any(|w| w.eq_ignore_ascii_case(&s.name)));
    for sub in stale {
        if let Some(k) = find_key(object, &sub.name) {
            object.shift_remove(&k);
        }
    }
}

/// Checks the restricted sub-attributes of a complex value that went from `before` to `after`.
/// readOnly sub-attributes are not compared: input never sets them (the schema check drops them)
/// and [`drop_stale_companions`] may legitimately remove them. A value that went away entirely is
/// the attribute's change (a value removed), not a change of its sub-attributes.
fn check_sub_changes(
    cx: &Cx<'_>,
    attr: &AttributeDef,
    before: &Value,
    after: &Value,
) -> Result<(), PatchError> {
    if !is_assigned(after) {
        return Ok(());
    }
    for sub in attr
        .sub_attributes
        .iter()
        .filter(|s| is_restricted(s) && s.mutability != Mutability::ReadOnly)
    {
        let b = value_before_of(before, &sub.name);
        let a = value_before_of(after, &sub.name);
        check_change(cx, sub, &format!("{}.{}", attr.name, sub.name), &b, &a)?;
    }
    Ok(())
}

/// `name.givenName`: an operation on one sub-attribute of a single-valued complex attribute.
fn sub_attribute(
    cx: &Cx<'_>,
    attr: &AttributeDef,
    sub: &AttributeDef,
    slot: &mut Value,
    value: Option<&Value>,
) -> Result<(), PatchError> {
    let name = format!("{}.{}", attr.name, sub.name);
    let before = value_before_of(slot, &sub.name);
    let value_before = slot.as_object().and_then(|o| get_ci(o, "value")).cloned();
    let mut current = before.clone();
    match cx.op {
        Op::Remove => {
            let given = value.unwrap_or(&Value::Null);
            if given.is_null() || matches_given(cx, sub, &current, given) {
                current = Value::Null;
            }
        }
        Op::Add | Op::Replace => {
            let value = value.unwrap_or(&Value::Null);
            let coerced = dialects::coerce(sub, value.clone(), cx.options);
            let checked = cx.check(sub, &coerced, &name)?;
            if sub.multi_valued && cx.op == Op::Add {
                let mut values = take_values(&mut current);
                let new = match checked {
                    Value::Array(values) => values,
                    _ => Vec::new(),
                };
                append_new(sub, &mut values, new);
                current = Value::Array(values);
            } else {
                set_leaf(cx, sub, &mut current, checked);
            }
        }
    }
    check_change(cx, sub, &name, &before, &current)?;
    if before == current {
        return Ok(());
    }
    let mut object = take_object(slot);
    if is_assigned(&current) {
        set_member(&mut object, &sub.name, current);
    } else if let Some(k) = find_key(&object, &sub.name) {
        object.shift_remove(&k);
    }
    drop_stale_companions(
        attr,
        &mut object,
        value_before.as_ref(),
        &[sub.name.as_str()],
    );
    put_object(slot, object);
    Ok(())
}

/// `emails.display`: a sub-attribute of every value of a multi-valued attribute. Removing it is
/// well defined; adding or replacing it would write every value, so a filter is required.
fn sub_of_every_value(
    cx: &Cx<'_>,
    attr: &AttributeDef,
    sub: &AttributeDef,
    slot: &mut Value,
) -> Result<(), PatchError> {
    if cx.op != Op::Remove {
        let offset = cx.path_text.find('.').map_or(0, |i| i + 1);
        return Err(PatchError::invalid_path(
            cx.path_at.clone(),
            cx.path_text.clone(),
            offset,
            format!(
                "{} is multi-valued: select the values to {} with a filter, e.g. {}[type eq \"work\"].{} (RFC 7644 section 3.5.2)",
                attr.name, cx.op, attr.name, sub.name
            ),
        ));
    }
    if !is_assigned(slot) {
        return Ok(());
    }
    let mut values = take_values(slot);
    let every = 0..values.len();
    remove_sub_attribute(cx, attr, sub, &mut values, every)?;
    *slot = Value::Array(values);
    Ok(())
}

/// Removes sub-attribute `sub` from the values at `indices` (checking its mutability), then
/// drops values left with nothing assigned.
fn remove_sub_attribute(
    cx: &Cx<'_>,
    attr: &AttributeDef,
    sub: &AttributeDef,
    values: &mut Vec<Value>,
    indices: impl IntoIterator<Item = usize>,
) -> Result<(), PatchError> {
    for i in indices {
        if let Some(Value::Object(object)) = values.get_mut(i) {
            if let Some(k) = find_key(object, &sub.name) {
                let before = object.shift_remove(&k).unwrap_or(Value::Null);
                check_change(
                    cx,
                    sub,
                    &format!("{}.{}", attr.name, sub.name),
                    &before,
                    &Value::Null,
                )?;
            }
        }
    }
    values.retain(is_assigned);
    Ok(())
}

/// A value filter on a multi-valued attribute: the operation applies to the matching values
/// only (RFC 7644 sections 3.5.2.2 and 3.5.2.3).
fn filtered_values(
    cx: &Cx<'_>,
    t: &AttrTarget<'_>,
    selector: &Selector,
    slot: &mut Value,
    value: Option<&Value>,
) -> Result<(), PatchError> {
    let attr = t.attr;
    let mut values = take_values(slot);
    let matched: Vec<usize> = values
        .iter()
        .enumerate()
        .filter(|(_, v)| selector.compiled.matches(v))
        .map(|(i, _)| i)
        .collect();
    let value = value.unwrap_or(&Value::Null);
    if matched.is_empty() {
        let created = match cx.op {
            Op::Remove if dialects::ignore_remove_no_match(cx.options) => None,
            Op::Add | Op::Replace if dialects::create_on_no_match(cx.options) => {
                match dialects::element_from_filter(&selector.ast, attr) {
                    Some(base) => Some(created_value(cx, t, base, value)?),
                    None => return Err(no_match(cx, attr)),
                }
            }
            _ => return Err(no_match(cx, attr)),
        };
        if let Some(created) = created.filter(is_assigned) {
            values.push(created);
            let last = values.len() - 1;
            enforce_primary(cx, attr, &mut values, &[last])?;
        }
        *slot = Value::Array(values);
        return Ok(());
    }
    match (cx.op, t.filter_sub) {
        (Op::Remove, None) => {
            let mut selected = vec![false; values.len()];
            for &i in &matched {
                if let Some(s) = selected.get_mut(i) {
                    *s = true;
                }
            }
            let mut keep = selected.into_iter().map(|s| !s);
            values.retain(|_| keep.next().unwrap_or(true));
        }
        (Op::Remove, Some(sub)) => {
            remove_sub_attribute(cx, attr, sub, &mut values, matched.iter().copied())?;
        }
        (Op::Add | Op::Replace, Some(sub)) => {
            let name = format!("{}.{}", attr.name, sub.name);
            let coerced = dialects::coerce(sub, value.clone(), cx.options);
            let checked = cx.check(sub, &coerced, &name)?;
            for &i in &matched {
                if let Some(element) = values.get_mut(i) {
                    let value_before = element
                        .as_object()
                        .and_then(|o| get_ci(o, "value"))
                        .cloned();
                    let before = value_before_of(element, &sub.name);
                    let mut current = before.clone();
                    set_leaf(cx, sub, &mut current, checked.clone());
                    check_change(cx, sub, &name, &before, &current)?;
                    let mut object = take_object(element);
                    if is_assigned(&current) {
                        set_member(&mut object, &sub.name, current);
                    } else if let Some(k) = find_key(&object, &sub.name) {
                        object.shift_remove(&k);
                    }
                    drop_stale_companions(
                        attr,
                        &mut object,
                        value_before.as_ref(),
                        &[sub.name.as_str()],
                    );
                    put_object(element, object);
                }
            }
            enforce_primary(cx, attr, &mut values, &matched)?;
            values.retain(is_assigned);
        }
        (Op::Add | Op::Replace, None) => {
            let coerced = dialects::coerce_element(attr, value.clone(), cx.options);
            let cleared = match &coerced {
                Value::Object(given) if cx.op == Op::Add => nulled_sub_attributes(cx, attr, given)?,
                _ => Vec::new(),
            };
            let mut given = coerced;
            strip_nulls(&mut given);
            let checked = if is_assigned(&given) {
                cx.check_element(attr, &given)?
            } else {
                Value::Null
            };
            for &i in &matched {
                if let Some(element) = values.get_mut(i) {
                    let before = element.clone();
                    if cx.op == Op::Replace {
                        *element = checked.clone();
                    } else {
                        merge_into(attr, element, checked.clone(), &cleared);
                    }
                    check_sub_changes(cx, attr, &before, element)?;
                }
            }
            enforce_primary(cx, attr, &mut values, &matched)?;
            values.retain(is_assigned);
        }
    }
    *slot = Value::Array(values);
    Ok(())
}

/// The value [`dialects::create_on_no_match`] appends: the filter's equalities, then the value
/// (for `attr[filter].sub`) or the value's sub-attributes (for `attr[filter]`).
fn created_value(
    cx: &Cx<'_>,
    t: &AttrTarget<'_>,
    mut base: Map<String, Value>,
    value: &Value,
) -> Result<Value, PatchError> {
    match t.filter_sub {
        Some(sub) => {
            let coerced = dialects::coerce(sub, value.clone(), cx.options);
            let checked = cx.check(sub, &coerced, &format!("{}.{}", t.attr.name, sub.name))?;
            if !is_assigned(&checked) {
                return Ok(Value::Null);
            }
            set_member(&mut base, &sub.name, checked);
        }
        None => {
            let mut coerced = dialects::coerce_element(t.attr, value.clone(), cx.options);
            strip_nulls(&mut coerced);
            match coerced {
                Value::Object(given) => {
                    for (k, v) in given {
                        set_member(&mut base, &k, v);
                    }
                }
                Value::Null => return Ok(Value::Null),
                other => {
                    return Err(cx.invalid_value(format!(
                        "a value of {} must be an object, not {}",
                        t.attr.name,
                        json_kind(&other)
                    )));
                }
            }
        }
    }
    cx.check_element(t.attr, &Value::Object(base))
}

pub(crate) fn no_match(cx: &Cx<'_>, attr: &AttributeDef) -> PatchError {
    cx.no_target(format!(
        "no value of {} matches the filter in {:?} (RFC 7644 section 3.12: noTarget)",
        attr.name, cx.path_text
    ))
}

/// A value filter on a single-valued complex attribute ([`dialects::filter_on_single_valued`]):
/// a condition on its one value.
fn filtered_single(
    cx: &Cx<'_>,
    t: &AttrTarget<'_>,
    selector: &Selector,
    slot: &mut Value,
    value: Option<&Value>,
) -> Result<(), PatchError> {
    if !(is_assigned(slot) && selector.compiled.matches(slot)) {
        return match cx.op {
            Op::Remove if dialects::ignore_remove_no_match(cx.options) => Ok(()),
            _ => Err(no_match(cx, t.attr)),
        };
    }
    let ignore_value = cx.op == Op::Remove;
    let value = if ignore_value { None } else { value };
    match t.filter_sub {
        Some(sub) => sub_attribute(cx, t.attr, sub, slot, value),
        None => whole(cx, t.attr, slot, value),
    }
}

/// RFC 7644 section 3.5.2: setting `primary` on one value clears it on the others; two values
/// made primary by one operation are refused (RFC 7643 section 2.4).
fn enforce_primary(
    cx: &Cx<'_>,
    attr: &AttributeDef,
    values: &mut [Value],
    touched: &[usize],
) -> Result<(), PatchError> {
    if attr
        .sub_attribute("primary")
        .is_none_or(|p| p.kind != AttributeType::Boolean)
    {
        return Ok(());
    }
    let is_primary =
        |v: &Value| v.as_object().and_then(|o| get_ci(o, "primary")) == Some(&Value::Bool(true));
    let newly: Vec<usize> = touched
        .iter()
        .copied()
        .filter(|&i| values.get(i).is_some_and(is_primary))
        .collect();
    match newly.as_slice() {
        [] => Ok(()),
        [chosen] => {
            for (i, v) in values.iter_mut().enumerate() {
                if i != *chosen && is_primary(v) {
                    if let Value::Object(object) = v {
                        set_member(object, "primary", Value::Bool(false));
                    }
                }
            }
            Ok(())
        }
        _ => Err(cx.invalid_value(format!(
            "the operation would give more than one value of {} \"primary\": true (RFC 7643 section 2.4)",
            attr.name
        ))),
    }
}

/// The current value of sub-attribute `name` of a complex value (`Null` when unassigned).
fn value_before_of(element: &Value, name: &str) -> Value {
    element
        .as_object()
        .and_then(|o| get_ci(o, name))
        .cloned()
        .unwrap_or(Value::Null)
}

/// The values of a multi-valued attribute (a stray single value counts as one).
fn take_values(slot: &mut Value) -> Vec<Value> {
    match std::mem::take(slot) {
        Value::Array(values) => values,
        Value::Null => Vec::new(),
        other => vec![other],
    }
}

/// Takes the object out of `slot` (an empty one if `slot` holds no object); the caller puts the
/// edited object back with [`put_object`].
fn take_object(slot: &mut Value) -> Map<String, Value> {
    match std::mem::take(slot) {
        Value::Object(object) => object,
        _ => Map::new(),
    }
}

/// Stores an edited object back, or unassigns the slot if nothing in it is assigned.
fn put_object(slot: &mut Value, object: Map<String, Value>) {
    *slot = if object.values().any(is_assigned) {
        Value::Object(object)
    } else {
        Value::Null
    };
}

/// Sets `name` in `object`, replacing a member of the same name in another case.
fn set_member(object: &mut Map<String, Value>, name: &str, value: Value) {
    match find_key(object, name) {
        Some(k) if k != name => {
            rename_key(object, &k, name);
            object.insert(name.to_owned(), value);
        }
        _ => {
            object.insert(name.to_owned(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::tests::emails;
    use crate::value::tests::indexed::{element, members, tags};
    use proptest::prelude::*;

    /// Whether `element` matches the value `given` of a remove, one pair at a time: what
    /// [`Listed`] answers for a whole list.
    fn given_matches(attr: &AttributeDef, given: &Value, element: &Value) -> bool {
        match (given, attr.sub_attribute("value")) {
            (Value::Object(g), _) if attr.kind == AttributeType::Complex => {
                covers(attr, g, element)
            }
            (g, Some(value_def)) if attr.kind == AttributeType::Complex => element
                .as_object()
                .and_then(|e| get_ci(e, "value"))
                .is_some_and(|v| scim_eq(value_def, v, g)),
            (g, _) => scim_eq(attr, element, g),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn a_listed_remove_matches_as_each_given_value_would(
            given in prop::collection::vec(element(), 1..8),
            elements in prop::collection::vec(element(), 1..8),
        ) {
            for attr in [emails(), members(), tags()] {
                let listed = Listed::of(&attr, attr.sub_attribute("value"), &given);
                for element in &elements {
                    let scanned = given.iter().any(|g| given_matches(&attr, g, element));
                    prop_assert_eq!(
                        listed.matches(element), scanned,
                        "{} {} against {:?}", attr.name, element, given
                    );
                }
            }
        }
    }
}
