//! Projection of resources by the `attributes` and `excludedAttributes` parameters (RFC 7644
//! section 3.4.2.5) and the `returned` characteristic (RFC 7643 section 7).
//!
//! Rules, per attribute and per sub-attribute:
//!
//! - `returned: always` (e.g. `id`): always in the response, whatever the parameters say.
//!   `schemas` is always returned too.
//! - `returned: never` (e.g. `password`): never in the response, even when asked for.
//! - `returned: default`: in the response unless `excludedAttributes` names it, or
//!   `attributes` is given and does not name it (nor, for a sub-attribute, its parent or a
//!   sibling path of it).
//! - `returned: request`: only when `attributes` names it. Naming the parent of a `request`
//!   sub-attribute does not name the sub-attribute.
//!
//! Naming a complex attribute (`name`) selects its `default` and `always` sub-attributes;
//! naming sub-attributes (`name.familyName`, `emails.value`) keeps only those, plus `always`
//! ones. A whole schema URN (`urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`)
//! names every attribute of that schema. Paths are resolved case-insensitively against the
//! resource type; unqualified names are looked up in the common attributes, the core schema,
//! then the extensions (as [`ResourceSchema::resolve`] does).
//!
//! Attributes kept by lenient validation ([`crate::validate::UnknownAttributes::Keep`]) are
//! treated as `returned: default`. They are selected by name (top level, or inside a known
//! extension object); an unknown extension object is selected by its URN as a whole.
//!
//! Complex values and multi-valued elements left with no sub-attribute are dropped, and so
//! are multi-valued attributes left with no element. Extension URNs whose object is dropped
//! are removed from `schemas`, which lists the schemas of the attributes present (RFC 7643
//! section 3).
//!
//! When both parameters are given (RFC 7644 does not forbid it), `attributes` selects and
//! `excludedAttributes` then removes.

use crate::attribute::{AttributeDef, AttributeType, Returned};
use crate::definition::is_schema_urn;
use crate::error::SchemaError;
use crate::path::AttrPath;
use crate::schema::ResourceSchema;
use serde_json::{Map, Value};
use std::fmt;

/// One entry of an `attributes` or `excludedAttributes` parameter.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Selector {
    /// An attribute path in attribute notation (RFC 7644 section 3.10), possibly
    /// URN-qualified, possibly naming a sub-attribute. A path such as
    /// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User` also names a whole schema
    /// (it parses as attribute `User` of `urn:...:2.0`); resolution tells which.
    Attribute(AttrPath),
    /// A schema URN that is not also an attribute path, e.g. `urn:example:workplace:2.0`
    /// (its last segment is not an attribute name).
    Schema(String),
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Attribute(path) => path.fmt(f),
            Selector::Schema(urn) => f.write_str(urn),
        }
    }
}

/// The parsed `attributes` / `excludedAttributes` parameters of a request (RFC 7644 section
/// 3.4.2.5). The default selects what the `returned` characteristics alone select.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttributeSelection {
    attributes: Vec<Selector>,
    excluded: Vec<Selector>,
}

impl AttributeSelection {
    /// No parameter: every `always` and `default` attribute.
    pub fn all() -> Self {
        AttributeSelection::default()
    }

    /// Parses an `attributes` parameter: comma-separated attribute paths (RFC 7644 section
    /// 3.4.2.5). Spaces around entries and empty entries are ignored, so an empty parameter
    /// selects as if absent. A malformed entry is refused with
    /// [`SchemaError::InvalidSelection`] (`scimType` `invalidValue`) naming it.
    pub fn parse_attributes(list: &str) -> Result<Self, SchemaError> {
        Ok(AttributeSelection {
            attributes: parse_list("attributes", list)?,
            excluded: Vec::new(),
        })
    }

    /// Parses an `excludedAttributes` parameter; see [`AttributeSelection::parse_attributes`].
    pub fn parse_excluded(list: &str) -> Result<Self, SchemaError> {
        Ok(AttributeSelection {
            attributes: Vec::new(),
            excluded: parse_list("excludedAttributes", list)?,
        })
    }

    /// Both parameters as a request gives them (either may be absent).
    pub fn from_params(
        attributes: Option<&str>,
        excluded_attributes: Option<&str>,
    ) -> Result<Self, SchemaError> {
        Ok(AttributeSelection {
            attributes: match attributes {
                Some(list) => parse_list("attributes", list)?,
                None => Vec::new(),
            },
            excluded: match excluded_attributes {
                Some(list) => parse_list("excludedAttributes", list)?,
                None => Vec::new(),
            },
        })
    }

    /// The entries of `attributes`.
    pub fn attributes(&self) -> &[Selector] {
        &self.attributes
    }

    /// The entries of `excludedAttributes`.
    pub fn excluded(&self) -> &[Selector] {
        &self.excluded
    }

    /// True when neither parameter selects anything: the `returned` rules alone apply.
    pub fn is_all(&self) -> bool {
        self.attributes.is_empty() && self.excluded.is_empty()
    }

    /// Whether a projection of a `schema` resource by this selection can contain the
    /// attribute (or sub-attribute) at `path`. The server asks it to skip work, e.g. loading
    /// a large group's members when `excludedAttributes=members`.
    pub fn includes(&self, schema: &ResourceSchema, path: &AttrPath) -> bool {
        ProjectionPlan::new(schema, self).includes(path)
    }

    /// Refuses entries that name nothing `schema` defines, for servers that want to tell a
    /// client about a typo rather than answer without the attribute (RFC 7644 leaves this
    /// open; projection itself ignores such entries). The error is `invalidValue`.
    pub fn check_against(&self, schema: &ResourceSchema) -> Result<(), SchemaError> {
        let scope = Scope::new(schema);
        for (parameter, list) in [
            ("attributes", &self.attributes),
            ("excludedAttributes", &self.excluded),
        ] {
            for selector in list {
                let known = match scope.resolve(selector) {
                    Target::Attr {
                        sub: Some(SubTarget::Unknown(_)),
                        ..
                    }
                    | Target::Unknown { .. } => false,
                    Target::Attr { .. } | Target::WholeCore | Target::WholeExt(_) => true,
                };
                if !known {
                    return Err(SchemaError::invalid_value(
                        parameter,
                        format!(
                            "{:?} names no attribute of resource type {:?}",
                            selector.to_string(),
                            schema.resource_type().name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn parse_list(parameter: &'static str, list: &str) -> Result<Vec<Selector>, SchemaError> {
    let mut out = Vec::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        match AttrPath::parse(entry) {
            Ok(path) => out.push(Selector::Attribute(path)),
            Err(_) if is_schema_urn(entry) => out.push(Selector::Schema(entry.to_owned())),
            Err(source) => return Err(SchemaError::InvalidSelection { parameter, source }),
        }
    }
    Ok(out)
}

/// Projects `resource` (a resource of `schema`'s type, as stored) for a response. For many
/// resources of one type, build a [`ProjectionPlan`] once instead.
pub fn project(resource: &Value, schema: &ResourceSchema, selection: &AttributeSelection) -> Value {
    ProjectionPlan::new(schema, selection).project(resource)
}

/// Where a selector points, resolved once when a plan is built.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    /// Attribute `index` of the top level (common then core attributes) or of extension
    /// `ext`.
    Attr {
        ext: Option<usize>,
        index: usize,
        sub: Option<SubTarget>,
    },
    /// Every attribute of the core schema (and unknown top-level attributes).
    WholeCore,
    /// Every attribute of extension `i`.
    WholeExt(usize),
    /// A name no definition has: an unknown attribute at the top level (`ext` None) or in
    /// extension `ext`, or an unknown extension object's URN at the top level.
    Unknown { ext: Option<usize>, name: String },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SubTarget {
    Known(usize),
    Unknown(String),
}

/// The definitions of a resource type in the order plans index them.
#[derive(Debug, Clone)]
struct Scope<'s> {
    schema: &'s ResourceSchema,
    top: Vec<&'s AttributeDef>,
    common_len: usize,
    extensions: Vec<(&'s str, &'s [AttributeDef])>,
}

impl<'s> Scope<'s> {
    fn new(schema: &'s ResourceSchema) -> Self {
        let top: Vec<&AttributeDef> = schema
            .common()
            .iter()
            .chain(schema.core().attributes.iter())
            .collect();
        Scope {
            schema,
            top,
            common_len: schema.common().len(),
            extensions: schema
                .extensions()
                .map(|(s, _)| (s.id.as_str(), s.attributes.as_slice()))
                .collect(),
        }
    }

    fn ext_index(&self, urn: &str) -> Option<usize> {
        self.extensions
            .iter()
            .position(|(id, _)| id.eq_ignore_ascii_case(urn))
    }

    fn resolve(&self, selector: &Selector) -> Target {
        let path = match selector {
            Selector::Attribute(path) => path,
            Selector::Schema(urn) => {
                return if urn.eq_ignore_ascii_case(&self.schema.core().id) {
                    Target::WholeCore
                } else if let Some(i) = self.ext_index(urn) {
                    Target::WholeExt(i)
                } else {
                    Target::Unknown {
                        ext: None,
                        name: urn.clone(),
                    }
                };
            }
        };
        let find = |attrs: &[&AttributeDef]| {
            attrs
                .iter()
                .position(|a| a.name.eq_ignore_ascii_case(&path.name))
        };
        let found = match &path.schema {
            None => find(&self.top).map(|i| (None, i)).or_else(|| {
                self.extensions
                    .iter()
                    .enumerate()
                    .find_map(|(e, (_, attrs))| {
                        attrs
                            .iter()
                            .position(|a| a.name.eq_ignore_ascii_case(&path.name))
                            .map(|i| (Some(e), i))
                    })
            }),
            Some(urn) if urn.eq_ignore_ascii_case(&self.schema.core().id) => {
                find(&self.top).map(|i| (None, i))
            }
            Some(urn) => match self.ext_index(urn) {
                Some(e) => self
                    .extensions
                    .get(e)
                    .and_then(|(_, attrs)| {
                        attrs
                            .iter()
                            .position(|a| a.name.eq_ignore_ascii_case(&path.name))
                    })
                    .map(|i| (Some(e), i)),
                None => None,
            },
        };
        match found {
            Some((ext, index)) => {
                let def = self.def(ext, index);
                let sub = path.sub_attr.as_ref().map(|sub| {
                    match def.and_then(|d| {
                        d.sub_attributes
                            .iter()
                            .position(|s| s.name.eq_ignore_ascii_case(sub))
                    }) {
                        Some(j) => SubTarget::Known(j),
                        None => SubTarget::Unknown(sub.clone()),
                    }
                });
                Target::Attr { ext, index, sub }
            }
            None => match &path.schema {
                None => Target::Unknown {
                    ext: None,
                    name: path.name.clone(),
                },
                Some(urn) => {
                    if let Some(e) = self.ext_index(urn) {
                        return Target::Unknown {
                            ext: Some(e),
                            name: path.name.clone(),
                        };
                    }
                    if urn.eq_ignore_ascii_case(&self.schema.core().id) {
                        return Target::Unknown {
                            ext: None,
                            name: path.name.clone(),
                        };
                    }
                    // `urn:...:2.0:User` parses as attribute `User` of `urn:...:2.0`.
                    let whole = format!("{urn}:{}", path.name);
                    if path.sub_attr.is_none() {
                        if whole.eq_ignore_ascii_case(&self.schema.core().id) {
                            return Target::WholeCore;
                        }
                        if let Some(i) = self.ext_index(&whole) {
                            return Target::WholeExt(i);
                        }
                    }
                    // An unknown extension: only its whole object can be selected, by URN.
                    Target::Unknown {
                        ext: None,
                        name: whole,
                    }
                }
            },
        }
    }

    fn def(&self, ext: Option<usize>, index: usize) -> Option<&'s AttributeDef> {
        match ext {
            None => self.top.get(index).copied(),
            Some(e) => self
                .extensions
                .get(e)
                .and_then(|(_, attrs)| attrs.get(index)),
        }
    }
}

/// What a projection keeps of one attribute.
#[derive(Debug, Clone)]
struct AttrPlan<'s> {
    def: &'s AttributeDef,
    include: bool,
    /// For complex attributes: which sub-attributes are kept.
    subs: Option<SubPlan>,
}

#[derive(Debug, Clone)]
struct SubPlan {
    /// One flag per entry of the definition's `sub_attributes`.
    keep: Vec<bool>,
    /// Every sub-attribute, known or not, is kept: the value is cloned as it is.
    keep_all: bool,
    /// Unknown (lenient-mode) sub-attributes: kept unless excluded when the attribute is
    /// selected as a whole, else only when named.
    unknown: UnknownPlan,
}

/// What a projection keeps of attributes no definition describes.
#[derive(Debug, Clone, Default)]
struct UnknownPlan {
    /// Kept unless named in `excluded` (else only when named in `listed`).
    by_default: bool,
    excluded_all: bool,
    listed: Vec<String>,
    excluded: Vec<String>,
}

impl UnknownPlan {
    fn keeps(&self, name: &str) -> bool {
        let selected = self.by_default || self.listed.iter().any(|n| n.eq_ignore_ascii_case(name));
        selected
            && !self.excluded_all
            && !self.excluded.iter().any(|n| n.eq_ignore_ascii_case(name))
    }
}

#[derive(Debug, Clone)]
struct ExtPlan<'s> {
    urn: &'s str,
    attrs: Vec<AttrPlan<'s>>,
    unknown: UnknownPlan,
    /// Every attribute, known or not, is kept as it is.
    keep_all: bool,
}

impl ExtPlan<'_> {
    fn compute_keep_all(&mut self) {
        self.keep_all = self.unknown.by_default
            && !self.unknown.excluded_all
            && self.unknown.excluded.is_empty()
            && self.attrs.iter().all(|p| {
                p.include
                    && p.subs.as_ref().is_none_or(|s| s.keep_all)
                    && p.def.returned != Returned::Never
            });
    }
}

/// A projection of one resource type by one selection, resolved once: applying it to a
/// resource never resolves a path again. Build it once per request and apply it to every
/// resource of a list response.
#[derive(Debug, Clone)]
pub struct ProjectionPlan<'s> {
    scope: Scope<'s>,
    top: Vec<AttrPlan<'s>>,
    extensions: Vec<ExtPlan<'s>>,
    unknown: UnknownPlan,
    /// No `attributes` parameter: most keys of a resource are returned.
    keeps_most: bool,
}

/// The selectors of one parameter, resolved.
struct Resolved {
    given: bool,
    targets: Vec<Target>,
}

impl Resolved {
    fn names_attr(&self, ext: Option<usize>, index: usize) -> bool {
        self.targets.iter().any(|t| matches!(t, Target::Attr { ext: e, index: i, sub: None } if *e == ext && *i == index))
    }

    fn names_schema_of(&self, ext: Option<usize>, is_common: bool) -> bool {
        self.targets.iter().any(|t| match (t, ext) {
            (Target::WholeCore, None) => !is_common,
            (Target::WholeExt(i), Some(e)) => *i == e,
            _ => false,
        })
    }

    fn subs_of(&self, ext: Option<usize>, index: usize) -> impl Iterator<Item = &SubTarget> {
        self.targets.iter().filter_map(move |t| match t {
            Target::Attr {
                ext: e,
                index: i,
                sub: Some(sub),
            } if *e == ext && *i == index => Some(sub),
            _ => None,
        })
    }

    fn unknown_names(&self, ext: Option<usize>) -> Vec<String> {
        self.targets
            .iter()
            .filter_map(|t| match t {
                Target::Unknown { ext: e, name } if *e == ext => Some(name.clone()),
                _ => None,
            })
            .collect()
    }
}

impl<'s> ProjectionPlan<'s> {
    /// Resolves `selection` against `schema`.
    pub fn new(schema: &'s ResourceSchema, selection: &AttributeSelection) -> Self {
        let scope = Scope::new(schema);
        let resolve = |list: &[Selector]| Resolved {
            given: !list.is_empty(),
            targets: list.iter().map(|s| scope.resolve(s)).collect(),
        };
        let listed = resolve(&selection.attributes);
        let excluded = resolve(&selection.excluded);
        let top = scope
            .top
            .iter()
            .enumerate()
            .map(|(i, def)| attr_plan(def, None, i, i < scope.common_len, &listed, &excluded))
            .collect();
        let extensions = scope
            .extensions
            .iter()
            .enumerate()
            .map(|(e, &(urn, attrs))| {
                let mut plan = ExtPlan {
                    urn,
                    attrs: attrs
                        .iter()
                        .enumerate()
                        .map(|(i, def)| attr_plan(def, Some(e), i, false, &listed, &excluded))
                        .collect(),
                    unknown: UnknownPlan {
                        by_default: !listed.given || listed.names_schema_of(Some(e), false),
                        excluded_all: excluded.names_schema_of(Some(e), false),
                        listed: listed.unknown_names(Some(e)),
                        excluded: excluded.unknown_names(Some(e)),
                    },
                    keep_all: false,
                };
                plan.compute_keep_all();
                plan
            })
            .collect();
        let unknown = UnknownPlan {
            by_default: !listed.given || listed.names_schema_of(None, false),
            excluded_all: excluded.names_schema_of(None, false),
            listed: listed.unknown_names(None),
            excluded: excluded.unknown_names(None),
        };
        ProjectionPlan {
            scope,
            top,
            extensions,
            unknown,
            keeps_most: !listed.given,
        }
    }

    /// The same projection without the top-level attributes, extension objects and extension
    /// attributes no definition describes (unknown sub-attributes of a served complex
    /// attribute are still kept, as [`ProjectionPlan::new`] keeps them): for a server
    /// whose schemas can lose attributes (an operator removed a custom attribute) while
    /// stored resources still hold values of them, which are then no longer served. A
    /// server that keeps unknown attributes on purpose (lenient validation) does not use it.
    pub fn known_only(mut self) -> Self {
        const NONE: UnknownPlan = UnknownPlan {
            by_default: false,
            excluded_all: true,
            listed: Vec::new(),
            excluded: Vec::new(),
        };
        // Whole attributes only: a tenant's documents add and remove attributes, never the
        // sub-attributes of a served one, so complex values are still kept as they are (a
        // page of Users would otherwise pay for walking every one of their values).
        self.unknown = NONE;
        for ext in &mut self.extensions {
            ext.unknown = NONE;
            ext.keep_all = false;
        }
        self
    }

    /// Whether the projection can contain the attribute (or sub-attribute) at `path`; see
    /// [`AttributeSelection::includes`]. A whole schema URN asks whether any of its
    /// attributes can be there.
    pub fn includes(&self, path: &AttrPath) -> bool {
        match self.scope.resolve(&Selector::Attribute(path.clone())) {
            Target::Attr { ext, index, sub } => {
                let plan = match ext {
                    None => self.top.get(index),
                    Some(e) => self.extensions.get(e).and_then(|x| x.attrs.get(index)),
                };
                let Some(plan) = plan.filter(|p| p.include) else {
                    return false;
                };
                match (sub, &plan.subs) {
                    (None, _) => true,
                    (Some(SubTarget::Known(j)), Some(subs)) => {
                        subs.keep.get(j).copied().unwrap_or(false)
                    }
                    (Some(SubTarget::Unknown(name)), Some(subs)) => subs.unknown.keeps(&name),
                    (Some(_), None) => false,
                }
            }
            Target::WholeCore => self.top.iter().any(|p| p.include),
            Target::WholeExt(e) => self
                .extensions
                .get(e)
                .is_some_and(|x| x.attrs.iter().any(|p| p.include)),
            Target::Unknown { ext: None, name } => self.unknown.keeps(&name),
            Target::Unknown { ext: Some(e), name } => self
                .extensions
                .get(e)
                .is_some_and(|x| x.unknown.keeps(&name)),
        }
    }

    /// Applies the plan to one resource. A value that is not a JSON object is returned as is.
    pub fn project(&self, resource: &Value) -> Value {
        let Value::Object(input) = resource else {
            return resource.clone();
        };
        if self.keeps_most {
            // Most keys survive: cloning the map wholesale and removing the few that go is
            // cheaper than re-inserting every key.
            return self.project_owned(resource.clone());
        }
        let mut dropped: Vec<String> = Vec::new();
        let mut out = Map::new();
        for (key, value) in input {
            match self.decide(key, value) {
                Decision::Keep => {
                    out.insert(key.clone(), value.clone());
                }
                Decision::Replace(v) => {
                    out.insert(key.clone(), v);
                }
                Decision::Drop => note_drop(&mut dropped, key),
            }
        }
        drop_schemas(&mut out, &dropped);
        Value::Object(out)
    }

    /// Applies the plan to a resource the caller no longer needs: the same result as
    /// [`ProjectionPlan::project`], but when most attributes survive (no `attributes`
    /// parameter) the resource is filtered in place instead of copied, so serving a resource
    /// costs no copy of it (a page of 100 Users was spending a fifth of its time cloning).
    pub fn project_owned(&self, resource: Value) -> Value {
        if !self.keeps_most {
            return self.project(&resource);
        }
        let Value::Object(mut out) = resource else {
            return resource;
        };
        let mut dropped: Vec<String> = Vec::new();
        out.retain(|key, value| match self.decide(key, value) {
            Decision::Keep => true,
            Decision::Replace(v) => {
                *value = v;
                true
            }
            Decision::Drop => {
                note_drop(&mut dropped, key);
                false
            }
        });
        drop_schemas(&mut out, &dropped);
        Value::Object(out)
    }

    fn decide(&self, key: &str, value: &Value) -> Decision {
        if key.eq_ignore_ascii_case("schemas") {
            Decision::Keep
        } else if let Some(plan) = find_plan(&self.top, key) {
            project_attr(plan, value)
        } else if let Some(ext) = self
            .extensions
            .iter()
            .find(|x| x.urn.eq_ignore_ascii_case(key))
        {
            match value {
                Value::Object(body) if ext.keep_all && !body.is_empty() => Decision::Keep,
                _ => project_extension(ext, value),
            }
        } else if self.unknown.keeps(key) {
            Decision::Keep
        } else {
            Decision::Drop
        }
    }
}

/// Notes a dropped key that is an extension's URN: it leaves `schemas` too.
fn note_drop(dropped: &mut Vec<String>, key: &str) {
    if key.contains(':') {
        dropped.push(key.to_owned());
    }
}

/// Removes from `schemas` the URNs of the extensions whose objects were dropped.
fn drop_schemas(out: &mut Map<String, Value>, dropped: &[String]) {
    if dropped.is_empty() {
        return;
    }
    let schemas = out
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case("schemas"));
    if let Some((_, Value::Array(urns))) = schemas {
        urns.retain(|u| {
            !u.as_str()
                .is_some_and(|u| dropped.iter().any(|d| d.eq_ignore_ascii_case(u)))
        });
    }
}

/// What becomes of one key of a resource.
enum Decision {
    /// Kept as it is.
    Keep,
    /// Kept with this value (some sub-attributes removed).
    Replace(Value),
    /// Removed.
    Drop,
}

impl Decision {
    fn from_projected(value: Option<Value>) -> Self {
        value.map_or(Decision::Drop, Decision::Replace)
    }
}

fn attr_plan<'s>(
    def: &'s AttributeDef,
    ext: Option<usize>,
    index: usize,
    is_common: bool,
    listed: &Resolved,
    excluded: &Resolved,
) -> AttrPlan<'s> {
    if def.returned == Returned::Never {
        return AttrPlan {
            def,
            include: false,
            subs: None,
        };
    }
    let always = def.returned == Returned::Always;
    let excluded_whole =
        !always && (excluded.names_attr(ext, index) || excluded.names_schema_of(ext, is_common));
    let by_schema = listed.names_schema_of(ext, is_common) && def.returned == Returned::Default;
    // Selected as a whole: its default sub-attributes go with it.
    let whole = !excluded_whole
        && (always
            || if listed.given {
                listed.names_attr(ext, index) || by_schema
            } else {
                def.returned == Returned::Default
            });
    let listed_subs: Vec<&SubTarget> = if excluded_whole {
        Vec::new()
    } else {
        listed.subs_of(ext, index).collect()
    };
    let subs = (def.kind == AttributeType::Complex).then(|| {
        let excluded_subs: Vec<&SubTarget> = excluded.subs_of(ext, index).collect();
        let keep: Vec<bool> = def
            .sub_attributes
            .iter()
            .enumerate()
            .map(|(j, sub)| match sub.returned {
                Returned::Never => false,
                // RFC 7644 section 3.4.2.5: exclusion has no effect on `always`.
                Returned::Always => true,
                Returned::Default if whole => !excluded_subs.contains(&&SubTarget::Known(j)),
                _ => {
                    listed_subs.contains(&&SubTarget::Known(j))
                        && !excluded_subs.contains(&&SubTarget::Known(j))
                }
            })
            .collect();
        let names = |subs: &[&SubTarget]| {
            subs.iter()
                .filter_map(|s| match s {
                    SubTarget::Unknown(name) => Some(name.clone()),
                    SubTarget::Known(_) => None,
                })
                .collect()
        };
        let unknown = UnknownPlan {
            by_default: whole,
            excluded_all: false,
            listed: names(&listed_subs),
            excluded: names(&excluded_subs),
        };
        let keep_all = keep.iter().all(|k| *k) && unknown.by_default && unknown.excluded.is_empty();
        SubPlan {
            keep,
            keep_all,
            unknown,
        }
    });
    let keeps_always_sub = subs.as_ref().is_some_and(|s| {
        s.keep
            .iter()
            .zip(&def.sub_attributes)
            .any(|(k, d)| *k && d.returned == Returned::Always)
    });
    let include = whole || !listed_subs.is_empty() || keeps_always_sub;
    AttrPlan { def, include, subs }
}

fn find_plan<'p, 's>(plans: &'p [AttrPlan<'s>], key: &str) -> Option<&'p AttrPlan<'s>> {
    plans
        .iter()
        .find(|p| p.def.name == key)
        .or_else(|| plans.iter().find(|p| p.def.name.eq_ignore_ascii_case(key)))
}

fn project_attr(plan: &AttrPlan<'_>, value: &Value) -> Decision {
    if !plan.include {
        return Decision::Drop;
    }
    let Some(subs) = plan.subs.as_ref().filter(|s| !s.keep_all) else {
        return Decision::Keep;
    };
    match value {
        Value::Object(body) => {
            Decision::from_projected(project_complex(plan.def, subs, body).map(Value::Object))
        }
        Value::Array(items) => {
            let kept: Vec<Value> = items
                .iter()
                .filter_map(|item| match item {
                    Value::Object(body) => project_complex(plan.def, subs, body).map(Value::Object),
                    other => Some(other.clone()),
                })
                .collect();
            Decision::from_projected((!kept.is_empty()).then_some(Value::Array(kept)))
        }
        _ => Decision::Keep,
    }
}

fn project_complex(
    def: &AttributeDef,
    subs: &SubPlan,
    body: &Map<String, Value>,
) -> Option<Map<String, Value>> {
    let mut out = Map::new();
    for (key, value) in body {
        let index = def
            .sub_attributes
            .iter()
            .position(|s| s.name == *key)
            .or_else(|| {
                def.sub_attributes
                    .iter()
                    .position(|s| s.name.eq_ignore_ascii_case(key))
            });
        let keep = match index {
            Some(j) => subs.keep.get(j).copied().unwrap_or(false),
            None => subs.unknown.keeps(key),
        };
        if keep {
            out.insert(key.clone(), value.clone());
        }
    }
    (!out.is_empty()).then_some(out)
}

fn project_extension(ext: &ExtPlan<'_>, value: &Value) -> Decision {
    let Value::Object(body) = value else {
        return if ext.unknown.by_default {
            Decision::Keep
        } else {
            Decision::Drop
        };
    };
    let mut out = Map::new();
    for (key, value) in body {
        let decision = match find_plan(&ext.attrs, key) {
            Some(plan) => project_attr(plan, value),
            None if ext.unknown.keeps(key) => Decision::Keep,
            None => Decision::Drop,
        };
        match decision {
            Decision::Keep => {
                out.insert(key.clone(), value.clone());
            }
            Decision::Replace(v) => {
                out.insert(key.clone(), v);
            }
            Decision::Drop => {}
        }
    }
    Decision::from_projected((!out.is_empty()).then_some(Value::Object(out)))
}

#[cfg(test)]
mod tests;
