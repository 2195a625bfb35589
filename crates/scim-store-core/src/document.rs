//! Backend-independent handling of resource documents: what every store does to a document on
//! its way in (canonical attribute names, server-owned attributes dropped, members split off,
//! index entries computed) and on its way out (`id` and `meta` assembled).
//!
//! Index entries are computed here, in Rust, with [`scim_schema::fold_case`], so that the
//! folded columns a backend indexes are exactly what the scim-filter evaluator compares, and
//! SQL push-down can never disagree with it (RFC 7643 section 2.2 `caseExact`).

use crate::error::{Result, StoreError};
use crate::types::ResourceKind;
use scim_schema::{
    AttrLocation, AttrPath, AttributeDef, AttributeType, DateTime, ResourceSchema, ScimType,
    Uniqueness, fold_case,
};
use serde_json::{Map, Value};

/// A new resource `id` (RFC 7643 section 3.1: issued by the service provider, unique, stable,
/// never reassigned): a UUID version 7 (RFC 9562 section 5.7), 48 bits of Unix milliseconds then
/// 74 random bits. Ids made later sort later, so a backend's unique index on `id` takes each new
/// one at its right-hand edge instead of on a random page: with version 4 ids, that index was
/// the largest writer of pages of a batch of inserts (one random leaf per insert, ~9 of the ~45
/// pages a SQLite commit of 8 users wrote). The creation time an id reveals is already public in
/// `meta.created`.
pub fn new_resource_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The multi-valued attribute values a backend indexes in a side table (for `co`/`sw`/`eq`
/// filters without reading documents): `(kind, attribute, sub-attribute)`.
pub const INDEXED_VALUES: &[(ResourceKind, &str, &str)] =
    &[(ResourceKind::User, "emails", "value")];

/// A document ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Prepared {
    /// The attributes (canonical names; no `id`, `meta`, `members` or `groups`).
    pub body: Map<String, Value>,
    /// For a Group: the ids of its members, deduplicated, in the order given.
    pub members: Option<Vec<String>>,
    /// What the backend indexes.
    pub index: IndexEntries,
}

/// The values a backend keeps in indexed columns.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IndexEntries {
    /// `userName` as written (Users).
    pub user_name: Option<String>,
    /// `userName` folded, the uniqueness key (RFC 7643 section 4.1: caseExact false).
    pub user_name_fold: Option<String>,
    /// `externalId` as written (RFC 7643 section 3.1: caseExact true).
    pub external_id: Option<String>,
    /// `displayName`, folded.
    pub display_name_fold: Option<String>,
    /// `active` (Users).
    pub active: Option<bool>,
    /// `(attribute path, folded value)` for each of [`INDEXED_VALUES`].
    pub values: Vec<(String, String)>,
    /// The values of attributes marked `uniqueness: server` or `global` (RFC 7643 section 7),
    /// other than `userName` and `id`.
    pub unique: Vec<UniqueValue>,
}

/// How a resource's side-table index rows ([`IndexEntries::values`]) change: only the rows
/// that differ are written, so that adding k addresses to a User with n writes k rows, not
/// n + k (rewriting all 10,000 rows of a large User took 70 ms of a shared writer).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValueChanges {
    /// `(attribute, folded value)` rows to delete, sorted.
    pub removed: Vec<(String, String)>,
    /// `(attribute, folded value)` rows to insert, sorted (along a primary key that starts
    /// with them) and without repeats.
    pub added: Vec<(String, String)>,
}

impl ValueChanges {
    /// What turns the rows `old` into `new` (which may repeat rows).
    pub fn between(old: Vec<(String, String)>, new: &[(String, String)]) -> ValueChanges {
        let old: std::collections::HashSet<(String, String)> = old.into_iter().collect();
        let wanted: std::collections::HashSet<&(String, String)> = new.iter().collect();
        let mut removed: Vec<(String, String)> = old
            .iter()
            .filter(|row| !wanted.contains(row))
            .cloned()
            .collect();
        let mut added: Vec<(String, String)> = wanted
            .into_iter()
            .filter(|row| !old.contains(*row))
            .cloned()
            .collect();
        removed.sort_unstable();
        added.sort_unstable();
        ValueChanges { removed, added }
    }

    /// The rows of a new resource.
    pub fn fresh(new: &[(String, String)]) -> ValueChanges {
        ValueChanges::between(Vec::new(), new)
    }

    /// Whether no row changes.
    pub fn is_empty(&self) -> bool {
        self.removed.is_empty() && self.added.is_empty()
    }
}

/// One value that must be unique within the tenant and resource type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueValue {
    /// The attribute's path, e.g. `urn:...:enterprise:2.0:User:employeeNumber`.
    pub attribute: String,
    /// The comparison key: folded unless the attribute is `caseExact`.
    pub key: String,
    /// The value as written, for the error message.
    pub value: String,
}

/// What one stored resource may hold: bounds on what a client can make the store keep, and so
/// on the work every later write of the resource costs (a PATCH applies to, validates and writes
/// the whole document). The defaults are far above what any identity provider sends: a User
/// with a thousand e-mail addresses is a few tens of KiB. A Group's `members` are rows, not
/// part of its document, and are not limited here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceLimits {
    /// The largest document, in bytes of compact JSON (attributes as stored, without `id`,
    /// `meta` and a Group's `members`). 1 MiB by default: the largest request body.
    pub max_bytes: usize,
    /// The most values of one multi-valued attribute (or any JSON array in the document).
    /// 10,000 by default.
    pub max_values: usize,
}

impl Default for ResourceLimits {
    fn default() -> Self {
        ResourceLimits {
            max_bytes: 1024 * 1024,
            max_values: 10_000,
        }
    }
}

impl ResourceLimits {
    /// No limit: for tools that must store whatever an older version kept.
    pub const UNLIMITED: ResourceLimits = ResourceLimits {
        max_bytes: usize::MAX,
        max_values: usize::MAX,
    };

    /// Checks a prepared document against the limits: 400 `invalidValue` naming the attribute
    /// or the size, and the setting that bounds it. Costs one walk of the document and one
    /// serialisation into a counter (no allocation), stopped as soon as the size is exceeded.
    pub fn check(&self, prepared: &Prepared) -> Result<()> {
        for (name, value) in &prepared.body {
            // An extension's attributes are named `urn:...:User:attribute`.
            if let (true, Value::Object(attributes)) = (name.starts_with("urn:"), value) {
                for (attribute, value) in attributes {
                    self.check_values(&format!("{name}:{attribute}"), value)?;
                }
            } else {
                self.check_values(name, value)?;
            }
        }
        if self.max_bytes == usize::MAX {
            return Ok(());
        }
        let mut counter = ByteCounter {
            bytes: 0,
            limit: self.max_bytes,
        };
        // The counter fails the serialisation once past the limit, so that a huge document
        // is not serialised to its end only to be refused.
        if serde_json::to_writer(&mut counter, &prepared.body).is_err()
            || counter.bytes > self.max_bytes
        {
            return Err(StoreError::invalid_value(format!(
                "the resource would take more than {} bytes, the most a resource may take \
                 (max_resource_bytes)",
                self.max_bytes
            )));
        }
        Ok(())
    }

    fn check_values(&self, path: &str, value: &Value) -> Result<()> {
        match value {
            Value::Array(values) => {
                if values.len() > self.max_values {
                    return Err(StoreError::invalid_value(format!(
                        "{path} would have {} values, more than the {} a multi-valued attribute \
                         may have (max_values_per_attribute)",
                        values.len(),
                        self.max_values
                    )));
                }
                values.iter().try_for_each(|v| self.check_values(path, v))
            }
            Value::Object(map) => map.iter().try_for_each(|(name, v)| {
                if matches!(v, Value::Array(_) | Value::Object(_)) {
                    self.check_values(&format!("{path}.{name}"), v)
                } else {
                    Ok(())
                }
            }),
            _ => Ok(()),
        }
    }
}

/// An `io::Write` that only counts, and fails once past `limit`.
struct ByteCounter {
    bytes: usize,
    limit: usize,
}

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.bytes = self.bytes.saturating_add(buf.len());
        if self.bytes > self.limit {
            return Err(std::io::Error::other("over the limit"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Canonicalises and checks `document` for storage as a `kind`, and computes its index entries.
pub fn prepare(kind: ResourceKind, schema: &ResourceSchema, document: Value) -> Result<Prepared> {
    let Value::Object(object) = document else {
        return Err(syntax("a resource must be a JSON object"));
    };
    let mut body = canonicalize(schema, object)?;
    for key in ["id", "meta"] {
        body.remove(key);
    }
    let members = match kind {
        ResourceKind::Group => Some(take_members(&mut body)?),
        ResourceKind::User => {
            // RFC 7643 section 4.1.2: `groups` is readOnly, derived from group membership.
            body.remove("groups");
            None
        }
    };
    if kind == ResourceKind::User {
        check_password(schema, &body)?;
    }
    let index = index_entries(kind, schema, &body)?;
    Ok(Prepared {
        body,
        members,
        index,
    })
}

/// Whether `text` is an argon2id hash in the PHC string format
/// (`$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>`): the only form a `password` is stored in.
pub fn is_password_hash(text: &str) -> bool {
    argon2::password_hash::PasswordHash::new(text)
        .is_ok_and(|h| h.algorithm.as_str() == "argon2id" && h.salt.is_some() && h.hash.is_some())
}

/// Hashes a clear-text password the way it is stored: argon2id with its default parameters
/// (19 MiB, 2 passes, RFC 9106's second recommended option) and a 16-byte random salt, as a PHC
/// string. Tens of milliseconds of CPU: callers run it off the async workers, and never in a
/// backend's shared writer.
pub fn hash_password(clear: &str) -> Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| StoreError::backend(format!("OS RNG: {e}")))?;
    let salt = SaltString::encode_b64(&salt)
        .map_err(|e| StoreError::backend(format!("password salt: {e}")))?;
    argon2::Argon2::default()
        .hash_password(clear.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| StoreError::invalid_value(format!("password: cannot be hashed: {e}")))
}

/// Whether a top-level key of a User document names the core `password` (RFC 7643 section
/// 4.1.1): any case, with or without the core schema's URN, with surrounding blanks.
pub fn is_password_key(schema: &ResourceSchema, key: &str) -> bool {
    const NAME: &str = "password";
    let key = key.trim();
    // Every spelling ends with the name: most keys are ruled out without parsing them (this
    // runs for every key of every User write, inside a backend's writer).
    let ends_with_name = key.len() >= NAME.len()
        && key
            .get(key.len() - NAME.len()..)
            .is_some_and(|tail| tail.eq_ignore_ascii_case(NAME));
    ends_with_name
        && AttrPath::parse(key)
            .ok()
            .and_then(|path| schema.resolve(&path))
            .is_some_and(|r| {
                r.location == AttrLocation::TopLevel
                    && r.sub_attribute.is_none()
                    && r.attribute.name == NAME
            })
}

/// For a migration: replaces the clear-text `password` an older scimd stored in a User's
/// document (a dialect spelling it failed to hash) by its argon2id hash, so that no clear text
/// stays at rest and later writes of that User pass [`prepare`]'s check. A password that is not
/// a string cannot be hashed and is removed. Returns whether the document changed.
pub fn hash_stored_password(document: &mut Value) -> Result<bool> {
    let Some(object) = document.as_object_mut() else {
        return Ok(false);
    };
    let clear = match object.get("password") {
        None | Some(Value::Null) => return Ok(false),
        Some(Value::String(text)) if is_password_hash(text) => return Ok(false),
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => None,
    };
    match clear {
        Some(clear) => {
            object.insert("password".to_owned(), Value::String(hash_password(&clear)?));
        }
        None => {
            object.shift_remove("password");
        }
    }
    Ok(true)
}

/// A User's `password` (RFC 7643 section 4.1.1) is stored only as an argon2id hash: the store
/// refuses anything else on every write path (create, replace, patch, import, Bulk), so that no
/// request dialect, no future code path and no embedder calling the store directly can put a
/// clear-text password in the database. Hashing is the caller's work (scim-server does it on
/// its own threads), never the store's: the writer is shared by every tenant.
fn check_password(schema: &ResourceSchema, body: &Map<String, Value>) -> Result<()> {
    for (key, value) in body {
        if !is_password_key(schema, key) {
            continue;
        }
        match value {
            Value::Null => {}
            Value::String(text) if is_password_hash(text) => {}
            _ => {
                return Err(StoreError::invalid_value(
                    "password: the store keeps a password only as an argon2id hash in the PHC \
                     string format (RFC 7643 section 4.1.1); hash it before writing",
                ));
            }
        }
    }
    Ok(())
}

/// The served document: `schemas`, `id`, the attributes, `derived` (`members` or `groups`) if
/// given, then `meta` (RFC 7643 section 3.1).
pub fn assemble(
    kind: ResourceKind,
    id: &str,
    version: u64,
    created: DateTime,
    last_modified: DateTime,
    body: &Map<String, Value>,
    derived: Option<(&str, Value)>,
) -> Value {
    let mut out = Map::with_capacity(body.len() + 3);
    if let Some(schemas) = body.get("schemas") {
        out.insert("schemas".to_owned(), schemas.clone());
    }
    out.insert("id".to_owned(), Value::String(id.to_owned()));
    for (k, v) in body {
        if k != "schemas" {
            out.insert(k.clone(), v.clone());
        }
    }
    if let Some((name, value)) = derived {
        out.insert(name.to_owned(), value);
    }
    out.insert(
        "meta".to_owned(),
        meta(kind, version, created, last_modified),
    );
    Value::Object(out)
}

/// `meta` (RFC 7643 section 3.1), without `location`.
pub fn meta(kind: ResourceKind, version: u64, created: DateTime, last_modified: DateTime) -> Value {
    let mut meta = Map::with_capacity(4);
    meta.insert("resourceType".to_owned(), kind.resource_type().into());
    meta.insert("created".to_owned(), created.to_string().into());
    meta.insert("lastModified".to_owned(), last_modified.to_string().into());
    meta.insert("version".to_owned(), format!("W/\"{version}\"").into());
    Value::Object(meta)
}

/// The attributes of a stored document: everything but `id`, `meta` and the derived attributes,
/// i.e. what [`prepare`] produced. Two writes with equal bodies (and equal members) are the same.
pub fn body_of(document: &Value) -> Map<String, Value> {
    let mut body = document.as_object().cloned().unwrap_or_default();
    for key in ["id", "meta", "members", "groups"] {
        body.remove(key);
    }
    body
}

/// The current instant, truncated to milliseconds: `meta` prints milliseconds, and an indexed
/// timestamp must be exactly the instant its printed form parses back to, or a `meta.lastModified`
/// filter would disagree between SQL and the evaluator.
pub fn now() -> DateTime {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let unix_seconds = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    DateTime {
        unix_seconds,
        nanos: since.subsec_millis() * 1_000_000,
    }
}

/// Nanoseconds since the epoch, the form timestamps are indexed in (`i64` spans ±292 years).
pub fn to_nanos(t: DateTime) -> i64 {
    t.unix_seconds
        .saturating_mul(1_000_000_000)
        .saturating_add(i64::from(t.nanos))
}

/// The inverse of [`to_nanos`].
pub fn from_nanos(ns: i64) -> DateTime {
    let nanos = u32::try_from(ns.rem_euclid(1_000_000_000)).unwrap_or(0);
    DateTime {
        unix_seconds: ns.div_euclid(1_000_000_000),
        nanos,
    }
}

fn syntax(detail: impl Into<String>) -> StoreError {
    StoreError::Invalid {
        scim_type: ScimType::InvalidSyntax,
        detail: detail.into(),
    }
}

/// Renames every known attribute (and sub-attribute, and extension URN key) to the schema's
/// spelling (RFC 7643 section 2.1: names are case-insensitive), so that stored documents, JSON
/// path push-down and the evaluator's exact-key lookup all see one spelling.
fn canonicalize(schema: &ResourceSchema, object: Map<String, Value>) -> Result<Map<String, Value>> {
    let mut out = Map::with_capacity(object.len());
    for (key, value) in object {
        let (name, value) = if key == "schemas" {
            (key, value)
        } else if let Some(extension) = schema.extension(&key) {
            let value = match value {
                Value::Object(inner) => {
                    Value::Object(canonicalize_attrs(&extension.attributes, inner)?)
                }
                other => other,
            };
            (extension.id.clone(), value)
        } else {
            match AttrPath::parse(&key).ok().and_then(|p| schema.resolve(&p)) {
                Some(resolved)
                    if resolved.location == AttrLocation::TopLevel && !key.contains(':') =>
                {
                    let def = resolved.attribute;
                    (def.name.clone(), canonicalize_value(def, value)?)
                }
                _ => (key, value),
            }
        };
        if out.contains_key(&name) {
            return Err(syntax(format!(
                "attribute {name:?} appears twice (names are case-insensitive)"
            )));
        }
        out.insert(name, value);
    }
    Ok(out)
}

fn canonicalize_attrs(
    defs: &[AttributeDef],
    object: Map<String, Value>,
) -> Result<Map<String, Value>> {
    let mut out = Map::with_capacity(object.len());
    for (key, value) in object {
        let (name, value) = match defs.iter().find(|d| d.name.eq_ignore_ascii_case(&key)) {
            Some(def) => (def.name.clone(), canonicalize_value(def, value)?),
            None => (key, value),
        };
        if out.contains_key(&name) {
            return Err(syntax(format!(
                "attribute {name:?} appears twice (names are case-insensitive)"
            )));
        }
        out.insert(name, value);
    }
    Ok(out)
}

fn canonicalize_value(def: &AttributeDef, value: Value) -> Result<Value> {
    if def.kind != AttributeType::Complex {
        return Ok(value);
    }
    Ok(match value {
        Value::Object(inner) => Value::Object(canonicalize_attrs(&def.sub_attributes, inner)?),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| match item {
                    Value::Object(inner) => {
                        canonicalize_attrs(&def.sub_attributes, inner).map(Value::Object)
                    }
                    other => Ok(other),
                })
                .collect::<Result<_>>()?,
        ),
        other => other,
    })
}

/// Splits a Group's `members` off its body (RFC 7643 section 4.2): the ids, deduplicated.
fn take_members(body: &mut Map<String, Value>) -> Result<Vec<String>> {
    let mut ids: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    match body.remove("members") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (i, item) in items.into_iter().enumerate() {
                let id = item.get("value").and_then(Value::as_str).ok_or_else(|| {
                    syntax(format!(
                        "members[{i}] must be an object with a string \"value\""
                    ))
                })?;
                if seen.insert(id.to_owned()) {
                    ids.push(id.to_owned());
                }
            }
        }
        Some(_) => return Err(syntax("members must be an array")),
    }
    Ok(ids)
}

/// An optional string attribute the store indexes; any other JSON type is refused, because the
/// index would no longer mirror what the evaluator sees.
fn opt_string<'a>(body: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => no_nul(name, s).map(Some),
        Some(other) => Err(StoreError::invalid_value(format!(
            "{name} must be a string, not {}",
            json_type(other)
        ))),
    }
}

/// Indexed strings never contain U+0000: SQLite's text functions stop at it, and push-down
/// relies on no indexed value containing it.
fn no_nul<'a>(name: &str, s: &'a str) -> Result<&'a str> {
    if s.contains('\0') {
        Err(StoreError::invalid_value(format!(
            "{name} must not contain U+0000"
        )))
    } else {
        Ok(s)
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn index_entries(
    kind: ResourceKind,
    schema: &ResourceSchema,
    body: &Map<String, Value>,
) -> Result<IndexEntries> {
    let mut index = IndexEntries::default();
    if kind == ResourceKind::User {
        let user_name = opt_string(body, "userName")?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| {
                // RFC 7643 section 4.1.1: "Each User MUST include a non-empty userName value."
                StoreError::Invalid {
                    scim_type: ScimType::InvalidValue,
                    detail: "userName is required and must not be empty (RFC 7643 section 4.1.1)"
                        .into(),
                }
            })?;
        index.user_name = Some(user_name.to_owned());
        index.user_name_fold = Some(fold_case(user_name).into_owned());
        index.active = match body.get("active") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(other) => {
                return Err(StoreError::invalid_value(format!(
                    "active must be a boolean, not {}",
                    json_type(other)
                )));
            }
        };
    }
    index.external_id = opt_string(body, "externalId")?.map(str::to_owned);
    index.display_name_fold = opt_string(body, "displayName")?.map(|s| fold_case(s).into_owned());
    for &(k, attr, sub) in INDEXED_VALUES {
        if k != kind {
            continue;
        }
        let path = format!("{attr}.{sub}");
        let mut push = |v: &str| index.values.push((path.clone(), fold_case(v).into_owned()));
        let elements: Vec<&Value> = match body.get(attr) {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items.iter().collect(),
            Some(single) => vec![single],
        };
        for element in elements {
            // Non-objects hold no sub-attribute: the evaluator finds nothing in them either.
            let Some(value) = element.as_object().and_then(|o| o.get(sub)) else {
                continue;
            };
            match value {
                Value::Null => {}
                Value::String(s) => push(no_nul(&path, s)?),
                Value::Array(items) => {
                    for item in items {
                        match item {
                            Value::String(s) => push(no_nul(&path, s)?),
                            Value::Null => {}
                            other => {
                                return Err(StoreError::invalid_value(format!(
                                    "{path} must be a string, not {}",
                                    json_type(other)
                                )));
                            }
                        }
                    }
                }
                other => {
                    return Err(StoreError::invalid_value(format!(
                        "{path} must be a string, not {}",
                        json_type(other)
                    )));
                }
            }
        }
    }
    index.values.sort();
    index.values.dedup();
    collect_unique(schema, body, &mut index.unique);
    Ok(index)
}

/// Collects the values of every `uniqueness: server|global` attribute (RFC 7643 section 7),
/// top-level or sub-attribute, core or extension, except `id` (the store assigns it) and
/// `userName` (indexed in its own column).
fn collect_unique(schema: &ResourceSchema, body: &Map<String, Value>, out: &mut Vec<UniqueValue>) {
    let core = schema.core();
    let mut visit = |prefix: Option<&str>, holder: &Map<String, Value>, defs: &[AttributeDef]| {
        for def in defs {
            if def.name == "id" || (prefix.is_none() && def.name == "userName") {
                continue;
            }
            let Some(value) = holder.get(&def.name) else {
                continue;
            };
            let path = match prefix {
                Some(urn) => format!("{urn}:{}", def.name),
                None => def.name.clone(),
            };
            if def.uniqueness != Uniqueness::None {
                unique_leaves(&path, def, value, out);
            }
            for sub in def
                .sub_attributes
                .iter()
                .filter(|s| s.uniqueness != Uniqueness::None)
            {
                let elements: Vec<&Value> = match value {
                    Value::Array(items) => items.iter().collect(),
                    single => vec![single],
                };
                for element in elements {
                    if let Some(v) = element.as_object().and_then(|o| o.get(&sub.name)) {
                        unique_leaves(&format!("{path}.{}", sub.name), sub, v, out);
                    }
                }
            }
        }
    };
    visit(None, body, &core.attributes);
    visit(None, body, schema.common());
    for (extension, _) in schema.extensions() {
        if let Some(Value::Object(inner)) = body.get(&extension.id) {
            visit(Some(&extension.id), inner, &extension.attributes);
        }
    }
    out.sort_by(|a, b| (&a.attribute, &a.key).cmp(&(&b.attribute, &b.key)));
    out.dedup_by(|a, b| a.attribute == b.attribute && a.key == b.key);
}

fn unique_leaves(path: &str, def: &AttributeDef, value: &Value, out: &mut Vec<UniqueValue>) {
    match value {
        Value::Array(items) => items.iter().for_each(|v| unique_leaves(path, def, v, out)),
        Value::String(s) => out.push(UniqueValue {
            attribute: path.to_owned(),
            key: if def.case_exact || def.kind == AttributeType::Binary {
                s.clone()
            } else {
                fold_case(s).into_owned()
            },
            value: s.clone(),
        }),
        Value::Number(n) => out.push(UniqueValue {
            attribute: path.to_owned(),
            key: n.to_string(),
            value: n.to_string(),
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(body: Value) -> Prepared {
        prepare(ResourceKind::User, &scim_schema::core::user(), body).expect("a valid User")
    }

    fn emails(n: usize) -> Value {
        (0..n)
            .map(|i| json!({"value": format!("u{i}@example.com"), "type": "work"}))
            .collect()
    }

    #[test]
    fn a_resource_within_the_limits_passes_and_one_over_is_named() {
        let limits = ResourceLimits {
            max_bytes: 4096,
            max_values: 10,
        };
        limits
            .check(&user(json!({"userName": "a", "emails": emails(10)})))
            .expect("10 values are within the limit");
        let many = limits
            .check(&user(json!({"userName": "a", "emails": emails(11)})))
            .unwrap_err();
        assert_eq!(
            (many.status(), many.scim_type()),
            (400, Some("invalidValue"))
        );
        assert_eq!(
            many.to_string(),
            "emails would have 11 values, more than the 10 a multi-valued attribute may have \
             (max_values_per_attribute)"
        );
        let extension = user(json!({
            "userName": "a",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "manager": {"value": "m"},
                "organization": "o",
            },
            "x509Certificates": (0..11).map(|i| json!({"value": format!("c{i}")})).collect::<Value>(),
        }));
        let named = limits.check(&extension).unwrap_err().to_string();
        assert!(
            named.starts_with("x509Certificates would have 11 values"),
            "{named}"
        );
        let large = limits
            .check(&user(
                json!({"userName": "a", "nickName": "x".repeat(5000)}),
            ))
            .unwrap_err();
        assert_eq!(
            (large.status(), large.scim_type()),
            (400, Some("invalidValue"))
        );
        assert!(
            large.to_string().contains("more than 4096 bytes")
                && large.to_string().contains("max_resource_bytes"),
            "{large}"
        );
    }

    /// A Group's members are rows, not part of its document: any number of them passes.
    #[test]
    fn a_groups_members_are_not_limited() {
        let members: Value = (0..50).map(|i| json!({"value": format!("m{i}")})).collect();
        let group = prepare(
            ResourceKind::Group,
            &scim_schema::core::group(),
            json!({"displayName": "g", "members": members}),
        )
        .unwrap();
        ResourceLimits {
            max_bytes: 4096,
            max_values: 10,
        }
        .check(&group)
        .expect("members are exempt");
    }

    #[test]
    fn the_size_is_the_compact_json_of_the_body() {
        let prepared = user(json!({"userName": "abc"}));
        let exact = serde_json::to_string(&prepared.body).unwrap().len();
        let at = |max_bytes| ResourceLimits {
            max_bytes,
            max_values: 10,
        };
        at(exact).check(&prepared).expect("exactly at the limit");
        assert!(at(exact - 1).check(&prepared).is_err());
    }

    #[test]
    fn resource_ids_are_uuid_v7_in_creation_order() {
        let ids: Vec<String> = (0..1000).map(|_| new_resource_id()).collect();
        for id in &ids {
            let parsed = uuid::Uuid::parse_str(id).expect("a UUID");
            assert_eq!(parsed.get_version_num(), 7, "{id}");
            assert_eq!(
                id,
                &parsed.hyphenated().to_string(),
                "canonical lower-case form"
            );
        }
        // What keeps the id index's inserts at its right-hand edge.
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids not increasing");
    }
}
