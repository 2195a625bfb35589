//! Validation of resources against their resource type (RFC 7643 sections 2, 3 and 7;
//! RFC 7644 sections 3.3 and 3.5.1), and of single attribute values for PATCH.
//!
//! [`for_create`] and [`for_replace`] return the resource normalised:
//!
//! - attribute names and extension URN keys in the schema's canonical case (names are
//!   case-insensitive on input, RFC 7643 section 2.1), attributes in schema order: `schemas`,
//!   the common attributes, the core schema's attributes, then each extension object in the
//!   resource type's order, then (lenient mode only) unknown attributes as given;
//! - `readOnly` attributes and sub-attributes removed, unchecked: RFC 7644 section 3.5.1
//!   says values provided for them "SHALL be ignored". That includes `id`, `meta` and the
//!   User's `groups`, which the server sets itself;
//! - unassigned values removed: `null`, `[]` and complex values with nothing assigned are
//!   all "unassigned" (RFC 7643 section 2.5);
//! - `schemas` rewritten as the core schema URN followed by the URNs of the extensions the
//!   resource carries, in canonical spelling (RFC 7643 section 3: it lists the schemas that
//!   define the attributes present).
//!
//! What is checked, and the `scimType` of each failure:
//!
//! | rule | scimType |
//! |---|---|
//! | the body is a JSON object; no attribute given twice (names differing only in case) | invalidSyntax |
//! | an attribute, sub-attribute or extension object the schemas do not define (strict mode) | invalidSyntax |
//! | `schemas` present, lists the core schema, only schemas of the resource type (strict mode; an identity provider's alias of the core schema, [`IDP_SCHEMA_ALIASES`], is accepted and dropped unless [`ValidationOptions::strict_schemas`]), every extension object present | invalidValue |
//! | required attributes and required extensions present (not checked for readOnly ones) | invalidValue |
//! | JSON types: string, boolean, decimal (number), integer (number without fraction), dateTime (xsd:dateTime), binary (base64), reference (string), complex (object) | invalidValue |
//! | multi-valued attributes given as arrays, single-valued ones not | invalidValue |
//! | at most one `primary: true` per multi-valued attribute (RFC 7643 section 2.4) | invalidValue |
//! | canonicalValues, when [`ValidationOptions::enforce_canonical_values`] is set | invalidValue |
//! | replace: an immutable attribute's assigned value unchanged (RFC 7644 section 3.5.1) | mutability |

use crate::attribute::{AttributeDef, AttributeType, Mutability};
use crate::datetime::DateTime;
use crate::error::SchemaError;
use crate::schema::{ResourceSchema, Schema};
use crate::text::{fold_case, text_eq};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::fmt::Write as _;

/// What to do with attributes the schemas do not define.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum UnknownAttributes {
    /// Refuse the resource with `invalidSyntax`, naming the attribute (the default).
    #[default]
    Reject,
    /// Lenient mode: keep unknown attributes, sub-attributes, extension objects and schema
    /// URNs as given (unchecked, in the case given), after the known ones. For servers that
    /// must accept identity providers sending attributes nobody declared; projection returns
    /// such attributes like `returned: default` ones.
    Keep,
}

/// How strict validation is. The default is strict on unknown attributes and does not
/// enforce canonical values, which RFC 7643 section 7 calls "suggested".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ValidationOptions {
    /// Unknown attributes: rejected or kept.
    pub unknown_attributes: UnknownAttributes,
    /// Refuse string values outside an attribute's non-empty `canonicalValues` (compared per
    /// `caseExact`); accepted values are rewritten in the canonical spelling.
    pub enforce_canonical_values: bool,
    /// Accept a single value for a multi-valued attribute and wrap it in an array, instead of
    /// refusing it with `invalidValue`. Off by default: RFC 7643 section 2.4 requires arrays.
    pub accept_single_values: bool,
    /// Refuse the schema URNs identity providers send in `schemas` in place of a core schema's
    /// (see [`IDP_SCHEMA_ALIASES`]) with `invalidValue`, as any other foreign URN. Off by
    /// default: such a URN is accepted and dropped from the stored `schemas`.
    pub strict_schemas: bool,
}

/// Schema URNs identity providers list in a resource's `schemas` beside the core schema's,
/// as `(core schema URN, IdP's URN, who sends it)`. Unless
/// [`ValidationOptions::strict_schemas`] is set, such a URN is accepted and dropped (the stored
/// `schemas` lists only the schemas the server defines): it names no attribute the server does
/// not already know, and refusing it breaks the IdP's provisioning.
///
/// - Microsoft Entra ID lists `http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group`
///   in every group it creates: it is in Microsoft's own create-group example ("Tutorial: Develop
///   and plan provisioning for a SCIM endpoint in Microsoft Entra ID", Create Group request).
pub const IDP_SCHEMA_ALIASES: &[(&str, &str, &str)] = &[(
    "urn:ietf:params:scim:schemas:core:2.0:Group",
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group",
    "Microsoft Entra ID",
)];

/// Whether `urn` is an identity provider's alias of the core schema `core_id` (compared as the
/// URNs in `schemas` are, without regard to case).
fn is_idp_schema_alias(core_id: &str, urn: &str) -> bool {
    IDP_SCHEMA_ALIASES.iter().any(|(core, alias, _)| {
        core.eq_ignore_ascii_case(core_id) && alias.eq_ignore_ascii_case(urn)
    })
}

/// Validates a resource sent to create (`POST`, RFC 7644 section 3.3) and returns it
/// normalised (see the module documentation). The server then adds `id`, `meta` and other
/// server-set attributes.
pub fn for_create(
    schema: &ResourceSchema,
    resource: &Value,
    options: &ValidationOptions,
) -> Result<Value, SchemaError> {
    Checker { options }.resource(schema, resource, None)
}

/// Validates a resource sent to replace `existing` (`PUT`, RFC 7644 section 3.5.1) and
/// returns it normalised.
///
/// On top of the create rules, an immutable attribute that has a value in `existing` must
/// keep it: a different value is refused with `mutability`; an omitted one is carried over
/// from `existing`, because clearing it would also change it. This applies to immutable
/// top-level attributes (of the core schema and extensions) and immutable sub-attributes of
/// singular complex attributes. Immutable sub-attributes of multi-valued attributes (Group
/// `members`) are not compared: values of such attributes "MAY be added or removed" (RFC
/// 7643 section 4.2) and have no identity by which to pair old and new.
pub fn for_replace(
    schema: &ResourceSchema,
    resource: &Value,
    existing: &Value,
    options: &ValidationOptions,
) -> Result<Value, SchemaError> {
    Checker { options }.resource(schema, resource, Some(existing))
}

/// Validates one attribute's value against its definition with the default options, for
/// PATCH (RFC 7644 section 3.5.2): an array for a multi-valued attribute, a single value
/// otherwise. `path` prefixes error details (e.g. `emails`, or
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`).
///
/// Returns the value normalised as [`for_create`] does (sub-attribute names in canonical
/// case, readOnly sub-attributes removed), or `Value::Null` when the value is unassigned
/// (`null`, `[]`, or a complex value with nothing assigned, RFC 7643 section 2.5). Whether
/// the attribute itself may be written is the caller's decision.
pub fn check_value(def: &AttributeDef, value: &Value, path: &str) -> Result<Value, SchemaError> {
    check_value_with(def, value, path, &ValidationOptions::default())
}

/// [`check_value`] with explicit options.
pub fn check_value_with(
    def: &AttributeDef,
    value: &Value,
    path: &str,
    options: &ValidationOptions,
) -> Result<Value, SchemaError> {
    let loc = Loc::root(Part::Raw(path));
    Ok(Checker { options }
        .attribute(def, value, &loc)?
        .unwrap_or(Value::Null))
}

/// Validates ONE value of `def` whether or not `def` is multi-valued: an element to add to a
/// multi-valued attribute, or the value filtered by a value path (`emails[type eq "work"]`).
/// Returns `Value::Null` for a complex value with nothing assigned.
pub fn check_element(
    def: &AttributeDef,
    value: &Value,
    path: &str,
    options: &ValidationOptions,
) -> Result<Value, SchemaError> {
    let loc = Loc::root(Part::Raw(path));
    Ok(Checker { options }
        .element(def, value, &loc)?
        .unwrap_or(Value::Null))
}

/// Whether two values of `def` are the same value: strings per `caseExact`
/// ([`text_eq`]), dateTimes as instants, numbers numerically, complex values sub-attribute by
/// sub-attribute, multi-valued attributes as multisets (order does not matter, RFC 7643
/// section 2.4), unassigned equal to unassigned.
pub fn values_equal(def: &AttributeDef, a: &Value, b: &Value) -> bool {
    match (is_assigned(a), is_assigned(b)) {
        (false, false) => return true,
        (true, true) => {}
        _ => return false,
    }
    if def.multi_valued {
        if let (Value::Array(a), Value::Array(b)) = (a, b) {
            if a.len() != b.len() {
                return false;
            }
            // Long lists are compared as multisets of keys: linear, where matching each
            // element against the other list is quadratic (10,000 values: 10^8 comparisons).
            if a.len() > SMALL_LIST {
                let mut counts: HashMap<ValueKey, usize> = HashMap::with_capacity(a.len());
                for x in a {
                    *counts.entry(value_key(def, x)).or_default() += 1;
                }
                return b.iter().all(|y| match counts.get_mut(&value_key(def, y)) {
                    Some(n) if *n > 0 => {
                        *n -= 1;
                        true
                    }
                    _ => false,
                });
            }
            let mut used = vec![false; b.len()];
            return a.iter().all(|x| {
                let found = b.iter().enumerate().position(|(j, y)| {
                    !used.get(j).copied().unwrap_or(true) && element_equal(def, x, y)
                });
                match found.and_then(|j| used.get_mut(j)) {
                    Some(slot) => {
                        *slot = true;
                        true
                    }
                    None => false,
                }
            });
        }
    }
    element_equal(def, a, b)
}

/// Up to this many values, comparing each with each is cheaper than hashing them.
const SMALL_LIST: usize = 8;

/// What identifies a value of an attribute under [`values_equal`]: two values of `def` are
/// equal exactly when their keys are, so that sets of values can be hashed instead of
/// compared pairwise.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ValueKey {
    /// Nothing assigned (`null`, an empty list).
    Unassigned,
    /// A string, folded unless `caseExact`.
    Text(String),
    /// A dateTime that parses, as an instant.
    Instant(DateTime),
    /// A number, as the bits of its `f64` (`-0` as `0`).
    Number(u64),
    /// A complex value: each sub-attribute's key, in the schema's order.
    Complex(Vec<ValueKey>),
    /// A multi-valued attribute's values, as a sorted multiset.
    List(Vec<ValueKey>),
    /// Anything else, compared as JSON: its compact form with object keys sorted.
    Json(String),
}

/// The key of `value` as a value of `def` (see [`ValueKey`]).
pub fn value_key(def: &AttributeDef, value: &Value) -> ValueKey {
    if !is_assigned(value) {
        return ValueKey::Unassigned;
    }
    match value {
        Value::Array(items) if def.multi_valued => {
            let mut keys: Vec<ValueKey> = items.iter().map(|v| element_key(def, v)).collect();
            keys.sort_unstable();
            ValueKey::List(keys)
        }
        _ => element_key(def, value),
    }
}

fn element_key(def: &AttributeDef, value: &Value) -> ValueKey {
    match (def.kind, value) {
        (AttributeType::String | AttributeType::Reference, Value::String(s)) => {
            if def.case_exact {
                ValueKey::Text(s.clone())
            } else {
                ValueKey::Text(fold_case(s).into_owned())
            }
        }
        (AttributeType::DateTime, Value::String(s)) => match DateTime::parse(s) {
            Some(t) => ValueKey::Instant(t),
            None => ValueKey::Json(canonical_json(value)),
        },
        (AttributeType::Decimal | AttributeType::Integer, Value::Number(n)) => match n.as_f64() {
            // `-0.0 + 0.0` is `+0.0`: the two zeros, equal as numbers, get one key.
            Some(f) => ValueKey::Number((f + 0.0).to_bits()),
            None => ValueKey::Json(n.to_string()),
        },
        (AttributeType::Complex, Value::Object(map)) => ValueKey::Complex(
            def.sub_attributes
                .iter()
                .map(|sub| value_key(sub, get_ignore_case(map, &sub.name).unwrap_or(&Value::Null)))
                .collect(),
        ),
        _ => ValueKey::Json(canonical_json(value)),
    }
}

/// The key of `value` compared as plain JSON (`==`, object key order aside).
pub fn json_key(value: &Value) -> ValueKey {
    ValueKey::Json(canonical_json(value))
}

/// `value` as compact JSON with every object's keys sorted: equal JSON values (object key
/// order does not matter) give equal text.
fn canonical_json(value: &Value) -> String {
    fn write(value: &Value, out: &mut String) {
        match value {
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            Value::Object(map) => {
                let mut entries: Vec<_> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                out.push('{');
                for (i, (k, v)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    write(v, out);
                }
                out.push('}');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

fn element_equal(def: &AttributeDef, a: &Value, b: &Value) -> bool {
    match (def.kind, a, b) {
        (AttributeType::String | AttributeType::Reference, Value::String(x), Value::String(y)) => {
            text_eq(x, y, def.case_exact)
        }
        (AttributeType::DateTime, Value::String(x), Value::String(y)) => {
            match (DateTime::parse(x), DateTime::parse(y)) {
                (Some(x), Some(y)) => x == y,
                _ => x == y,
            }
        }
        (AttributeType::Decimal | AttributeType::Integer, Value::Number(x), Value::Number(y)) => {
            x == y || matches!((x.as_f64(), y.as_f64()), (Some(x), Some(y)) if x == y)
        }
        (AttributeType::Complex, Value::Object(x), Value::Object(y)) => {
            def.sub_attributes.iter().all(|sub| {
                let p = get_ignore_case(x, &sub.name).unwrap_or(&Value::Null);
                let q = get_ignore_case(y, &sub.name).unwrap_or(&Value::Null);
                values_equal(sub, p, q)
            })
        }
        _ => a == b,
    }
}

/// `false` for the unassigned forms of RFC 7643 section 2.5: `null` and `[]`.
pub(crate) fn is_assigned(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Array(items) => !items.is_empty(),
        _ => true,
    }
}

/// The value of `name` in `map`, exact key first, then case-insensitively.
pub(crate) fn get_ignore_case<'m>(map: &'m Map<String, Value>, name: &str) -> Option<&'m Value> {
    map.get(name).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// A short description of a JSON value for error details: `string "yes"`, `number 3`,
/// `object` ...
pub(crate) fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => {
            const MAX: usize = 40;
            if s.chars().count() <= MAX {
                format!("string {s:?}")
            } else {
                let head: String = s.chars().take(MAX).collect();
                format!("string {head:?}...")
            }
        }
        Value::Array(_) => "array".to_owned(),
        Value::Object(_) => "object".to_owned(),
    }
}

/// A segment of an attribute path in error details. Paths are rendered only when an error
/// is raised, so that validating a valid resource builds no strings for them.
#[derive(Clone, Copy)]
enum Part<'a> {
    /// Written as is (the caller's prefix for [`check_value`]).
    Raw(&'a str),
    /// An extension schema URN; a following name is joined with `:`.
    Schema(&'a str),
    /// An attribute or sub-attribute name; joined with `.`.
    Name(&'a str),
    /// An index into a multi-valued attribute: `[i]`.
    Index(usize),
}

#[derive(Clone, Copy)]
struct Loc<'a> {
    parent: Option<&'a Loc<'a>>,
    part: Part<'a>,
}

impl<'a> Loc<'a> {
    fn root(part: Part<'a>) -> Self {
        Loc { parent: None, part }
    }

    fn child<'b>(&'b self, name: &'b str) -> Loc<'b>
    where
        'a: 'b,
    {
        Loc {
            parent: Some(self),
            part: Part::Name(name),
        }
    }

    fn index<'b>(&'b self, i: usize) -> Loc<'b>
    where
        'a: 'b,
    {
        Loc {
            parent: Some(self),
            part: Part::Index(i),
        }
    }

    fn render(&self) -> String {
        let mut parts = vec![self.part];
        let mut cur = self.parent;
        while let Some(loc) = cur {
            parts.push(loc.part);
            cur = loc.parent;
        }
        let mut out = String::new();
        let mut after_schema = false;
        for part in parts.iter().rev() {
            match *part {
                Part::Raw(s) => out.push_str(s),
                Part::Schema(urn) => out.push_str(urn),
                Part::Name(name) => {
                    if after_schema {
                        out.push(':');
                    } else if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(name);
                }
                Part::Index(i) => {
                    let _ = write!(out, "[{i}]");
                }
            }
            after_schema = matches!(part, Part::Schema(_));
        }
        out
    }
}

/// Records `value` under `slot`, refusing a second key that differs only in case.
fn set_once<'v>(
    slot: &mut Option<(&'v str, &'v Value)>,
    key: &'v str,
    value: &'v Value,
    path: impl FnOnce() -> String,
) -> Result<(), SchemaError> {
    if let Some((first, _)) = slot {
        return Err(SchemaError::invalid_syntax(
            path(),
            format!(
                "given twice, as {first:?} and {key:?} (attribute names are case-insensitive, \
                 RFC 7643 section 2.1)"
            ),
        ));
    }
    *slot = Some((key, value));
    Ok(())
}

struct Checker<'o> {
    options: &'o ValidationOptions,
}

type Slot<'v> = Option<(&'v str, &'v Value)>;

impl Checker<'_> {
    fn resource(
        &self,
        schema: &ResourceSchema,
        resource: &Value,
        existing: Option<&Value>,
    ) -> Result<Value, SchemaError> {
        let Value::Object(input) = resource else {
            return Err(SchemaError::invalid_syntax(
                "",
                format!(
                    "a resource must be a JSON object, found {}",
                    describe(resource)
                ),
            ));
        };
        let existing = existing.and_then(Value::as_object);
        let rt_name = schema.resource_type().name.as_str();
        let top: Vec<&AttributeDef> = schema
            .common()
            .iter()
            .chain(schema.core().attributes.iter())
            .collect();
        let extensions: Vec<(&Schema, bool)> = schema.extensions().collect();

        // Sort the input's keys into the slots of the definitions they name.
        let mut schemas_slot: Slot<'_> = None;
        let mut top_slots: Vec<Slot<'_>> = vec![None; top.len()];
        let mut ext_slots: Vec<Slot<'_>> = vec![None; extensions.len()];
        let mut unknown: Vec<(&String, &Value)> = Vec::new();
        for (key, value) in input {
            if key.eq_ignore_ascii_case("schemas") {
                set_once(&mut schemas_slot, key, value, || "schemas".to_owned())?;
            } else if let Some(i) = top.iter().position(|d| d.name.eq_ignore_ascii_case(key)) {
                let name = &top[i].name;
                set_once(&mut top_slots[i], key, value, || name.clone())?;
            } else if let Some(i) = extensions
                .iter()
                .position(|(s, _)| s.id.eq_ignore_ascii_case(key))
            {
                let urn = &extensions[i].0.id;
                set_once(&mut ext_slots[i], key, value, || urn.clone())?;
            } else if self.options.unknown_attributes == UnknownAttributes::Keep {
                unknown.push((key, value));
            } else {
                return Err(unknown_top_level(key, rt_name, &extensions));
            }
        }

        // `schemas` (RFC 7643 section 3).
        let core_id = schema.core().id.as_str();
        let listed = self.listed_schemas(schemas_slot, schema, &extensions)?;
        let mut output_schemas: Vec<Value> = vec![Value::String(core_id.to_owned())];
        let mut out = Map::new();
        out.insert("schemas".to_owned(), Value::Null); // placeholder keeps it first

        // Common and core attributes.
        for (def, slot) in top.iter().zip(&top_slots) {
            if def.mutability == Mutability::ReadOnly {
                continue;
            }
            let loc = Loc::root(Part::Name(&def.name));
            let value = self.assigned_attribute(def, slot.map(|(_, v)| v), &loc)?;
            let old = existing.and_then(|e| get_ignore_case(e, &def.name));
            if let Some(value) = self.keep_immutable(def, value, old, &loc)? {
                out.insert(def.name.clone(), value);
            }
        }

        // Extension objects.
        for ((ext, required), slot) in extensions.iter().zip(&ext_slots) {
            let loc = Loc::root(Part::Schema(&ext.id));
            let listed_here = listed
                .extensions
                .iter()
                .any(|u| u.eq_ignore_ascii_case(&ext.id));
            let body = match slot.map(|(_, v)| v) {
                None | Some(Value::Null) => None,
                Some(Value::Object(body)) => {
                    if !listed_here {
                        return Err(SchemaError::invalid_value(
                            "schemas",
                            format!(
                                "the resource carries extension {:?} but schemas does not list \
                                 it (RFC 7643 section 3)",
                                ext.id
                            ),
                        ));
                    }
                    Some(without_own_schemas(body, &ext.id))
                }
                Some(other) => {
                    return Err(SchemaError::invalid_value(
                        ext.id.as_str(),
                        format!(
                            "expected an object holding the extension's attributes, found {}",
                            describe(other)
                        ),
                    ));
                }
            };
            if body.is_none() && *required {
                return Err(SchemaError::invalid_value(
                    ext.id.as_str(),
                    format!(
                        "resource type {rt_name:?} requires this extension (RFC 7643 section 6, \
                         schemaExtensions.required)"
                    ),
                ));
            }
            let old_ext = existing
                .and_then(|e| get_ignore_case(e, &ext.id))
                .and_then(Value::as_object);
            let mut ext_out = match &body {
                Some(body) => self.complex_body(&ext.attributes, body, &loc, || {
                    format!("unknown attribute of extension {:?}", ext.id)
                })?,
                None => Map::new(),
            };
            if let Some(old_ext) = old_ext {
                for def in &ext.attributes {
                    let aloc = loc.child(&def.name);
                    let value = ext_out.remove(&def.name);
                    if let Some(value) =
                        self.keep_immutable(def, value, get_ignore_case(old_ext, &def.name), &aloc)?
                    {
                        ext_out.insert(def.name.clone(), value);
                    }
                }
                reorder(&mut ext_out, &ext.attributes);
            }
            if !ext_out.is_empty() || (*required && body.is_some()) {
                output_schemas.push(Value::String(ext.id.clone()));
                out.insert(ext.id.clone(), Value::Object(ext_out));
            }
        }

        // Lenient mode: unknown schema URNs and attributes as given.
        for urn in listed.unknown {
            if !output_schemas
                .iter()
                .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn)))
            {
                output_schemas.push(Value::String(urn.to_owned()));
            }
        }
        for (key, value) in unknown {
            out.insert(key.clone(), value.clone());
        }
        out.insert("schemas".to_owned(), Value::Array(output_schemas));
        Ok(Value::Object(out))
    }

    fn listed_schemas<'v>(
        &self,
        slot: Slot<'v>,
        schema: &ResourceSchema,
        extensions: &[(&Schema, bool)],
    ) -> Result<Listed<'v>, SchemaError> {
        let core_id = schema.core().id.as_str();
        let rt_name = schema.resource_type().name.as_str();
        let items = match slot.map(|(_, v)| v) {
            Some(Value::Array(items)) => items,
            None | Some(Value::Null) => {
                return Err(SchemaError::invalid_value(
                    "schemas",
                    "required attribute is missing; it lists the URNs of the resource's schemas \
                     (RFC 7643 section 3)",
                ));
            }
            Some(other) => {
                return Err(SchemaError::invalid_value(
                    "schemas",
                    format!(
                        "expected an array of schema URNs, found {}",
                        describe(other)
                    ),
                ));
            }
        };
        let mut listed = Listed {
            core: false,
            extensions: Vec::new(),
            unknown: Vec::new(),
        };
        for (i, item) in items.iter().enumerate() {
            let Value::String(urn) = item else {
                return Err(SchemaError::invalid_value(
                    format!("schemas[{i}]"),
                    format!("expected a schema URN string, found {}", describe(item)),
                ));
            };
            if urn.eq_ignore_ascii_case(core_id) {
                listed.core = true;
            } else if extensions
                .iter()
                .any(|(s, _)| s.id.eq_ignore_ascii_case(urn))
            {
                listed.extensions.push(urn);
            } else if !self.options.strict_schemas && is_idp_schema_alias(core_id, urn) {
                // Dropped, not kept: it is not a schema this server defines, so listing it in
                // the stored resource would send clients looking for it (RFC 7643 section 3).
            } else if self.options.unknown_attributes == UnknownAttributes::Keep {
                listed.unknown.push(urn);
            } else {
                let exts: Vec<String> = extensions
                    .iter()
                    .map(|(s, _)| format!("{:?}", s.id))
                    .collect();
                let expected = if exts.is_empty() {
                    format!("{core_id:?}")
                } else {
                    format!("{core_id:?} and its extensions {}", exts.join(", "))
                };
                return Err(SchemaError::invalid_value(
                    format!("schemas[{i}]"),
                    format!(
                        "{urn:?} is not a schema of resource type {rt_name:?}; expected {expected}"
                    ),
                ));
            }
        }
        if !listed.core {
            return Err(SchemaError::invalid_value(
                "schemas",
                format!("must list the core schema {core_id:?} of resource type {rt_name:?}"),
            ));
        }
        Ok(listed)
    }

    /// A top-level or extension attribute: validated, `None` if unassigned, with the required
    /// check.
    fn assigned_attribute(
        &self,
        def: &AttributeDef,
        value: Option<&Value>,
        loc: &Loc<'_>,
    ) -> Result<Option<Value>, SchemaError> {
        let value = match value {
            Some(v) => self.attribute(def, v, loc)?,
            None => None,
        };
        check_required(def, value.as_ref(), loc)?;
        Ok(value)
    }

    /// RFC 7644 section 3.5.1 for one attribute on replace: keeps an immutable attribute's
    /// assigned value; for a singular complex attribute, does so sub-attribute by
    /// sub-attribute.
    fn keep_immutable(
        &self,
        def: &AttributeDef,
        new: Option<Value>,
        old: Option<&Value>,
        loc: &Loc<'_>,
    ) -> Result<Option<Value>, SchemaError> {
        let Some(old) = old.filter(|v| is_assigned(v)) else {
            return Ok(new);
        };
        if def.mutability == Mutability::Immutable {
            return match new {
                None => Ok(Some(old.clone())),
                Some(new) if values_equal(def, old, &new) => Ok(Some(new)),
                Some(new) => Err(SchemaError::mutability(
                    loc.render(),
                    format!(
                        "immutable attribute cannot change from its assigned value {} to {} \
                         (RFC 7644 section 3.5.1)",
                        describe(old),
                        describe(&new)
                    ),
                )),
            };
        }
        let has_immutable_subs = def
            .sub_attributes
            .iter()
            .any(|s| s.mutability == Mutability::Immutable);
        if def.kind != AttributeType::Complex || def.multi_valued || !has_immutable_subs {
            return Ok(new);
        }
        let Value::Object(old) = old else {
            return Ok(new);
        };
        let mut body = match new {
            Some(Value::Object(body)) => body,
            Some(other) => return Ok(Some(other)),
            None => Map::new(),
        };
        for sub in def
            .sub_attributes
            .iter()
            .filter(|s| s.mutability == Mutability::Immutable)
        {
            let sloc = loc.child(&sub.name);
            let value = body.remove(&sub.name);
            if let Some(value) =
                self.keep_immutable(sub, value, get_ignore_case(old, &sub.name), &sloc)?
            {
                body.insert(sub.name.clone(), value);
            }
        }
        reorder(&mut body, &def.sub_attributes);
        Ok(if body.is_empty() {
            None
        } else {
            Some(Value::Object(body))
        })
    }

    /// One attribute's value, multi-valued or not; `None` if unassigned.
    fn attribute(
        &self,
        def: &AttributeDef,
        value: &Value,
        loc: &Loc<'_>,
    ) -> Result<Option<Value>, SchemaError> {
        if value.is_null() {
            return Ok(None);
        }
        if !def.multi_valued {
            if let Value::Array(_) = value {
                return Err(SchemaError::invalid_value(
                    loc.render(),
                    format!(
                        "expected a single {} value ({:?} is not multi-valued), found array",
                        def.kind, def.name
                    ),
                ));
            }
            return self.element(def, value, loc);
        }
        let mut out = Vec::new();
        let mut primaries: Vec<usize> = Vec::new();
        match value {
            Value::Array(items) => {
                out.reserve(items.len());
                for (i, item) in items.iter().enumerate() {
                    if let Some(v) = self.element(def, item, &loc.index(i))? {
                        if is_primary(&v) {
                            primaries.push(i);
                        }
                        out.push(v);
                    }
                }
            }
            single if self.options.accept_single_values => {
                if let Some(v) = self.element(def, single, loc)? {
                    out.push(v);
                }
            }
            other => {
                return Err(SchemaError::invalid_value(
                    loc.render(),
                    format!(
                        "expected an array ({:?} is multi-valued, RFC 7643 section 2.4), found {}",
                        def.name,
                        describe(other)
                    ),
                ));
            }
        }
        if let [first, second, ..] = primaries[..] {
            return Err(SchemaError::invalid_value(
                loc.render(),
                format!(
                    "{} and {} are both primary; at most one value may have \"primary\": true \
                     (RFC 7643 section 2.4)",
                    loc.index(first).render(),
                    loc.index(second).render()
                ),
            ));
        }
        Ok(if out.is_empty() {
            None
        } else {
            Some(Value::Array(out))
        })
    }

    /// One value of `def`'s type; `None` for a complex value with nothing assigned.
    fn element(
        &self,
        def: &AttributeDef,
        value: &Value,
        loc: &Loc<'_>,
    ) -> Result<Option<Value>, SchemaError> {
        let type_error = || {
            SchemaError::invalid_value(
                loc.render(),
                format!("expected {}, found {}", def.kind, describe(value)),
            )
        };
        match (def.kind, value) {
            (AttributeType::String | AttributeType::Reference, Value::String(s)) => {
                Ok(Some(self.canonical(def, s, value, loc)?))
            }
            (AttributeType::Boolean, Value::Bool(_))
            | (AttributeType::Decimal, Value::Number(_)) => Ok(Some(value.clone())),
            (AttributeType::Integer, Value::Number(n)) => {
                if n.is_i64() || n.is_u64() {
                    Ok(Some(value.clone()))
                } else {
                    Err(SchemaError::invalid_value(
                        loc.render(),
                        format!("expected integer, found decimal {n}"),
                    ))
                }
            }
            (AttributeType::DateTime, Value::String(s)) => {
                if DateTime::parse(s).is_some() {
                    Ok(Some(value.clone()))
                } else {
                    Err(SchemaError::invalid_value(
                        loc.render(),
                        format!(
                            "expected dateTime (xsd:dateTime such as 2008-01-23T04:56:22Z, RFC \
                             7643 section 2.3.5), found {}",
                            describe(value)
                        ),
                    ))
                }
            }
            (AttributeType::Binary, Value::String(s)) => {
                if is_base64(s) {
                    Ok(Some(value.clone()))
                } else {
                    Err(SchemaError::invalid_value(
                        loc.render(),
                        format!(
                            "expected binary (base64, RFC 4648 section 4), found {}",
                            describe(value)
                        ),
                    ))
                }
            }
            (AttributeType::Complex, Value::Object(body)) => {
                let out = self.complex_body(&def.sub_attributes, body, loc, || {
                    format!("unknown sub-attribute of {:?}", def.name)
                })?;
                Ok(if out.is_empty() {
                    None
                } else {
                    Some(Value::Object(out))
                })
            }
            _ => Err(type_error()),
        }
    }

    fn canonical(
        &self,
        def: &AttributeDef,
        s: &str,
        value: &Value,
        loc: &Loc<'_>,
    ) -> Result<Value, SchemaError> {
        if !self.options.enforce_canonical_values || def.canonical_values.is_empty() {
            return Ok(value.clone());
        }
        match def
            .canonical_values
            .iter()
            .find(|c| text_eq(c, s, def.case_exact))
        {
            Some(c) => Ok(Value::String(c.clone())),
            None => {
                let allowed: Vec<String> = def
                    .canonical_values
                    .iter()
                    .map(|c| format!("{c:?}"))
                    .collect();
                Err(SchemaError::invalid_value(
                    loc.render(),
                    format!(
                        "{s:?} is not one of the canonical values {} (RFC 7643 section 7)",
                        allowed.join(", ")
                    ),
                ))
            }
        }
    }

    /// The attributes of a complex value or an extension object, in definition order.
    fn complex_body(
        &self,
        defs: &[AttributeDef],
        body: &Map<String, Value>,
        loc: &Loc<'_>,
        unknown_detail: impl Fn() -> String,
    ) -> Result<Map<String, Value>, SchemaError> {
        let mut slots: Vec<Slot<'_>> = vec![None; defs.len()];
        let mut unknown: Vec<(&String, &Value)> = Vec::new();
        for (key, value) in body {
            match defs.iter().position(|d| d.name.eq_ignore_ascii_case(key)) {
                Some(i) => {
                    let name = &defs[i].name;
                    set_once(&mut slots[i], key, value, || loc.child(name).render())?;
                }
                None if self.options.unknown_attributes == UnknownAttributes::Keep => {
                    unknown.push((key, value));
                }
                None => {
                    return Err(SchemaError::invalid_syntax(
                        loc.child(key).render(),
                        unknown_detail(),
                    ));
                }
            }
        }
        let mut out = Map::new();
        for (def, slot) in defs.iter().zip(&slots) {
            if def.mutability == Mutability::ReadOnly {
                continue;
            }
            let sloc = loc.child(&def.name);
            if let Some(value) = self.assigned_attribute(def, slot.map(|(_, v)| v), &sloc)? {
                out.insert(def.name.clone(), value);
            }
        }
        for (key, value) in unknown {
            out.insert(key.clone(), value.clone());
        }
        Ok(out)
    }
}

struct Listed<'v> {
    core: bool,
    extensions: Vec<&'v str>,
    unknown: Vec<&'v str>,
}

fn check_required(
    def: &AttributeDef,
    value: Option<&Value>,
    loc: &Loc<'_>,
) -> Result<(), SchemaError> {
    if !def.required {
        return Ok(());
    }
    match value {
        None => Err(SchemaError::invalid_value(
            loc.render(),
            "required attribute is missing",
        )),
        Some(Value::String(s)) if s.is_empty() => Err(SchemaError::invalid_value(
            loc.render(),
            "required attribute must not be empty",
        )),
        Some(_) => Ok(()),
    }
}

fn is_primary(v: &Value) -> bool {
    v.as_object()
        .and_then(|o| o.get("primary"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// Puts the known keys of `map` back in definition order (after carrying immutable values
/// over), unknown ones after.
fn reorder(map: &mut Map<String, Value>, defs: &[AttributeDef]) {
    let mut taken = std::mem::take(map);
    for def in defs {
        if let Some(v) = taken.remove(&def.name) {
            map.insert(def.name.clone(), v);
        }
    }
    map.extend(taken);
}

fn unknown_top_level(key: &str, rt_name: &str, extensions: &[(&Schema, bool)]) -> SchemaError {
    let detail = if let Some((ext, _)) = extensions.iter().find(|(s, _)| s.attribute(key).is_some())
    {
        format!(
            "unknown attribute; {key:?} is an attribute of extension {:?} and belongs in the \
             object keyed by that URN (RFC 7643 section 3.3)",
            ext.id
        )
    } else if key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")) {
        format!("unknown attribute or schema extension of resource type {rt_name:?}")
    } else {
        format!("unknown attribute; resource type {rt_name:?} defines no such attribute")
    };
    SchemaError::invalid_syntax(key, detail)
}

/// Base64 with the standard alphabet of RFC 4648 section 4 (RFC 7643 section 2.3.6), padded
/// or not. Whitespace is refused, as section 3.3 of RFC 4648 asks of implementations unless
/// the referring specification says otherwise.
fn is_base64(s: &str) -> bool {
    let bytes = s.as_bytes();
    let body = s.trim_end_matches('=').as_bytes();
    let padding = bytes.len() - body.len();
    if !body
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    {
        return false;
    }
    match padding {
        0 => body.len() % 4 != 1,
        1 | 2 => bytes.len() % 4 == 0,
        _ => false,
    }
}

#[cfg(test)]
mod tests;

/// An extension object as clients built on scim2-models (Python) send it: with a `"schemas"` key
/// naming the extension itself. The extension schema defines no such attribute (RFC 7643
/// sections 4.3 and 8.7.1), but the key says nothing the enclosing `schemas` does not already say,
/// so it is dropped rather than rejected as unknown. Any other `schemas` value inside an
/// extension is left in place and rejected like any undefined attribute.
pub fn without_own_schemas<'a>(
    body: &'a Map<String, Value>,
    extension_urn: &str,
) -> std::borrow::Cow<'a, Map<String, Value>> {
    let own = |v: &Value| match v {
        Value::Array(urns) => urns.iter().all(|u| {
            u.as_str()
                .is_some_and(|u| u.eq_ignore_ascii_case(extension_urn))
        }),
        _ => false,
    };
    match body.iter().find(|(k, _)| k.eq_ignore_ascii_case("schemas")) {
        Some((key, value)) if own(value) => {
            let mut cleaned = body.clone();
            cleaned.shift_remove(key);
            std::borrow::Cow::Owned(cleaned)
        }
        _ => std::borrow::Cow::Borrowed(body),
    }
}

/// What a stored resource holds that its resource type no longer defines: top-level
/// attributes, attributes inside a served extension's object, whole extension objects, and
/// their URNs in `schemas`. A server whose schemas can lose attributes (an operator removed a
/// custom one) keeps such values in the stored document, unserved, and sets them aside while
/// it applies and validates a PATCH strictly ([`split_unknown`], [`Leftovers::restore`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Leftovers {
    top: Vec<(String, Value)>,
    in_extensions: Vec<(String, String, Value)>,
    schemas: Vec<Value>,
}

/// `resource` without what `schema` does not define, and what was set aside; `None` when it
/// holds nothing undefined (no copy is made then).
pub fn split_unknown(resource: &Value, schema: &ResourceSchema) -> Option<(Value, Leftovers)> {
    let Value::Object(map) = resource else {
        return None;
    };
    let known_top = |key: &str| {
        key.eq_ignore_ascii_case("schemas")
            || schema
                .common()
                .iter()
                .any(|a| a.name.eq_ignore_ascii_case(key))
            || schema.core().attribute(key).is_some()
            || schema.extension(key).is_some()
    };
    let known_in = |urn: &str, key: &str| {
        schema
            .extension(urn)
            .is_none_or(|ext| ext.attribute(key).is_some())
    };
    let undefined = map.iter().any(|(key, value)| {
        !known_top(key)
            || value
                .as_object()
                .is_some_and(|inner| key.contains(':') && inner.keys().any(|k| !known_in(key, k)))
    });
    if !undefined {
        return None;
    }
    let mut leftovers = Leftovers::default();
    let mut known = Map::new();
    for (key, value) in map {
        if !known_top(key) {
            leftovers.top.push((key.clone(), value.clone()));
            continue;
        }
        match value {
            Value::Object(inner) if key.contains(':') && schema.extension(key).is_some() => {
                let mut kept = Map::new();
                for (k, v) in inner {
                    if known_in(key, k) {
                        kept.insert(k.clone(), v.clone());
                    } else {
                        leftovers
                            .in_extensions
                            .push((key.clone(), k.clone(), v.clone()));
                    }
                }
                known.insert(key.clone(), Value::Object(kept));
            }
            _ => {
                known.insert(key.clone(), value.clone());
            }
        }
    }
    if let Some(Value::Array(urns)) = known.get_mut("schemas") {
        let unserved = |urn: &Value| {
            urn.as_str().is_some_and(|u| {
                !u.eq_ignore_ascii_case(&schema.core().id) && schema.extension(u).is_none()
            })
        };
        leftovers.schemas = urns.iter().filter(|u| unserved(u)).cloned().collect();
        urns.retain(|u| !unserved(u));
    }
    Some((Value::Object(known), leftovers))
}

impl Leftovers {
    /// Puts what was set aside back into `resource` (the result of a PATCH of the known
    /// part): an attribute the PATCH set again keeps its new value; an extension object the
    /// PATCH removed takes its leftovers with it.
    pub fn restore(self, resource: &mut Value) {
        let Value::Object(map) = resource else {
            return;
        };
        let mut restored_urns = Vec::new();
        for (key, value) in self.top {
            if key.contains(':') {
                restored_urns.push(key.clone());
            }
            map.entry(key).or_insert(value);
        }
        for (urn, key, value) in self.in_extensions {
            if let Some(Value::Object(inner)) = map.get_mut(&urn) {
                inner.entry(key).or_insert(value);
            }
        }
        if let Some(Value::Array(urns)) = map.get_mut("schemas") {
            for urn in self.schemas {
                let back = urn
                    .as_str()
                    .is_some_and(|u| restored_urns.iter().any(|r| r.eq_ignore_ascii_case(u)));
                if back && !urns.contains(&urn) {
                    urns.push(urn);
                }
            }
        }
    }
}
