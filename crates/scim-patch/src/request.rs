//! The PatchOp message (RFC 7644 section 3.5.2): parsing it from JSON into typed operations.

use crate::dialects;
use crate::error::{Location, PatchError};
use scim_filter::{FilterError, Limits, PatchPath, parse_patch_path_with};
use scim_schema::json_kind;
use serde_json::{Map, Value};

/// The message schema URN every PATCH body carries (RFC 7644 section 3.5.2).
pub const PATCH_OP_URN: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";

/// Whether the identity-provider dialects documented in [`crate::dialects`] are accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Dialects {
    /// Accept what real identity providers send (Microsoft Entra ID, Okta, ...) wherever doing so
    /// cannot change the meaning of a request that is valid under the RFC. The default.
    #[default]
    Lenient,
    /// RFC 7644 section 3.5.2 to the letter: every dialect is rejected with the error the RFC
    /// prescribes. One dialect changes meaning rather than just being accepted: a `remove` of
    /// `members` carrying a value list (Entra ID) removes only the listed members in lenient mode;
    /// strict mode rejects it with `invalidSyntax` rather than emptying the group, which is what a
    /// literal reading of the RFC would do.
    Strict,
}

/// How PATCH requests are parsed and applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchOptions {
    /// Accept identity-provider dialects or not (default [`Dialects::Lenient`]).
    pub dialects: Dialects,
    /// The largest number of operations one message may carry (default 10,000). RFC 7644 sets
    /// no limit; this one bounds the work a single request can ask for.
    pub max_operations: usize,
    /// Limits on each `path` (length and filter nesting), passed to the path parser.
    pub path_limits: Limits,
}

impl Default for PatchOptions {
    fn default() -> Self {
        PatchOptions {
            dialects: Dialects::Lenient,
            max_operations: 10_000,
            path_limits: Limits::DEFAULT,
        }
    }
}

impl PatchOptions {
    /// The defaults with [`Dialects::Lenient`].
    pub fn lenient() -> Self {
        PatchOptions::default()
    }

    /// The defaults with [`Dialects::Strict`].
    pub fn strict() -> Self {
        PatchOptions {
            dialects: Dialects::Strict,
            ..PatchOptions::default()
        }
    }

    /// True when identity-provider dialects are accepted.
    pub fn lenient_dialects(&self) -> bool {
        self.dialects == Dialects::Lenient
    }
}

/// The operation of a PATCH operation (RFC 7644 section 3.5.2: "add", "remove" or "replace").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Section 3.5.2.1.
    Add,
    /// Section 3.5.2.2.
    Remove,
    /// Section 3.5.2.3.
    Replace,
}

impl Op {
    /// The keyword as the RFC spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Add => "add",
            Op::Remove => "remove",
            Op::Replace => "replace",
        }
    }

    /// The operation named `keyword`. Only the RFC's lower-case spelling, unless `any_case`
    /// (see [`dialects::op_any_case`]).
    pub fn parse(keyword: &str, any_case: bool) -> Option<Op> {
        [Op::Add, Op::Remove, Op::Replace].into_iter().find(|op| {
            if any_case {
                op.as_str().eq_ignore_ascii_case(keyword)
            } else {
                op.as_str() == keyword
            }
        })
    }
}

impl std::fmt::Display for Op {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One operation of a PatchOp message, parsed and checked for structure. Paths are parsed but
/// not yet resolved against a schema: that happens in [`crate::apply()`].
#[derive(Debug, Clone, PartialEq)]
pub struct PatchOperation {
    /// The operation's index in the message's `Operations` (kept when a [`crate::GroupPatchPlan`]
    /// splits a request, so that errors still name the operation the client sent).
    pub index: usize,
    /// add, remove or replace.
    pub op: Op,
    /// The parsed `path`, if the operation has one.
    pub path: Option<PatchPath>,
    /// The `path` exactly as sent (for error messages).
    pub path_text: Option<String>,
    /// The `value`, if the operation has one. A JSON `null` is kept as `Some(Value::Null)`: for
    /// `replace` it means "unassign" (RFC 7643 section 2.5).
    pub value: Option<Value>,
}

impl PatchOperation {
    /// Where this operation's `member` is, for errors.
    pub(crate) fn at(&self, member: impl Into<String>) -> Location {
        Location::operation(self.index, member)
    }
}

/// A parsed PatchOp message (RFC 7644 section 3.5.2): operations to apply in order, atomically.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PatchRequest {
    /// The operations, in message order.
    pub operations: Vec<PatchOperation>,
}

impl PatchRequest {
    /// Parses a PatchOp message (RFC 7644 section 3.5.2).
    ///
    /// Checks the structure only: `schemas` names [`PATCH_OP_URN`], `Operations` is a non-empty
    /// array ("an array of one or more PATCH operations"), each operation has an `op` that is
    /// add, remove or replace, a `path` that parses (`invalidPath`, with the byte offset), a
    /// `value` where the RFC requires one ("The operation MUST contain a "value" member" for add
    /// and replace; `invalidValue`, RFC 7644 section 3.12 "A required value was missing"), and
    /// `remove` has a `path` (section 3.5.2.2: "If "path" is unspecified, the operation fails
    /// with ... "noTarget""). Member names are matched case-insensitively (RFC 7643 section 2.1:
    /// attribute names are case-insensitive); two members differing only in case are
    /// `invalidSyntax`. Unknown members are ignored.
    ///
    /// Lenient dialects accept: any case of `op` ([`dialects::op_any_case`]), a missing, `null`
    /// or empty `schemas` ([`dialects::schemas_optional`]), an empty `Operations`
    /// ([`dialects::empty_operations`]) and a `remove` carrying a value
    /// ([`dialects::remove_with_value`]).
    pub fn from_json(message: &Value, options: &PatchOptions) -> Result<PatchRequest, PatchError> {
        let operations = operations_of(message, options)?;
        let operations = operations
            .iter()
            .enumerate()
            .map(|(index, raw)| {
                let value = match raw {
                    Value::Object(map) => {
                        member(map, "value", &Location::operation(index, ""))?.cloned()
                    }
                    _ => None,
                };
                parse_operation(index, raw, value, options)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PatchRequest { operations })
    }

    /// [`PatchRequest::from_json`] taking the message by value: the operations' values are moved
    /// into the request rather than copied, which matters for a request adding thousands of
    /// members. Same checks, same errors.
    pub fn from_value(
        mut message: Value,
        options: &PatchOptions,
    ) -> Result<PatchRequest, PatchError> {
        operations_of(&message, options)?;
        let Some(Value::Array(operations)) = operations_mut(&mut message) else {
            return Ok(PatchRequest::default());
        };
        let operations = std::mem::take(operations)
            .into_iter()
            .enumerate()
            .map(|(index, mut raw)| {
                let value = match &mut raw {
                    Value::Object(map) => {
                        member(map, "value", &Location::operation(index, ""))?;
                        match map
                            .keys()
                            .find(|k| k.eq_ignore_ascii_case("value"))
                            .cloned()
                        {
                            Some(key) => map.shift_remove(&key),
                            None => None,
                        }
                    }
                    _ => None,
                };
                parse_operation(index, &raw, value, options)
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PatchRequest { operations })
    }
}

/// Checks the message's structure and returns its operations (not yet parsed).
fn operations_of<'m>(
    message: &'m Value,
    options: &PatchOptions,
) -> Result<&'m [Value], PatchError> {
    let Value::Object(message) = message else {
        return Err(PatchError::syntax(
            Location::message(""),
            format!(
                "a PatchOp message must be a JSON object, not {}",
                json_kind(message)
            ),
        ));
    };
    check_schemas(message, options)?;
    let operations = match member(message, "Operations", &Location::message(""))? {
        Some(Value::Array(ops)) => ops,
        Some(other) => {
            return Err(PatchError::syntax(
                Location::message("Operations"),
                format!(
                    "\"Operations\" must be an array of operations, not {}",
                    json_kind(other)
                ),
            ));
        }
        None => {
            return Err(PatchError::syntax(
                Location::message("Operations"),
                "a PatchOp message must have an \"Operations\" array (RFC 7644 section 3.5.2)",
            ));
        }
    };
    if operations.is_empty() && !dialects::empty_operations(options) {
        return Err(PatchError::syntax(
            Location::message("Operations"),
            "\"Operations\" must hold one or more operations (RFC 7644 section 3.5.2)",
        ));
    }
    if operations.len() > options.max_operations {
        return Err(PatchError::syntax(
            Location::message("Operations"),
            format!(
                "the message has {} operations; this server accepts at most {}",
                operations.len(),
                options.max_operations
            ),
        ));
    }
    Ok(operations)
}

/// The `Operations` member of a message already checked by [`operations_of`].
fn operations_mut(message: &mut Value) -> Option<&mut Value> {
    let object = message.as_object_mut()?;
    let key = object
        .keys()
        .find(|k| k.eq_ignore_ascii_case("Operations"))?
        .clone();
    object.get_mut(&key)
}

fn check_schemas(message: &Map<String, Value>, options: &PatchOptions) -> Result<(), PatchError> {
    let at = Location::message("schemas");
    let schemas = member(message, "schemas", &Location::message(""))?;
    let absent = match schemas {
        None | Some(Value::Null) => true,
        Some(Value::Array(urns)) => urns.is_empty(),
        Some(_) => false,
    };
    match schemas {
        _ if absent && dialects::schemas_optional(options) => Ok(()),
        _ if absent => Err(PatchError::syntax(
            at,
            format!(
                "a PatchOp message must have \"schemas\": [\"{PATCH_OP_URN}\"] (RFC 7644 section 3.5.2)"
            ),
        )),
        Some(Value::Array(urns))
            if urns.iter().any(|u| {
                u.as_str()
                    .is_some_and(|u| u.eq_ignore_ascii_case(PATCH_OP_URN))
            }) =>
        {
            Ok(())
        }
        _ => Err(PatchError::syntax(
            at,
            format!(
                "\"schemas\" must be an array holding \"{PATCH_OP_URN}\" (RFC 7644 section 3.5.2)"
            ),
        )),
    }
}

/// Parses one operation; `value` is its `value` member, taken out by the caller (copied or moved).
fn parse_operation(
    index: usize,
    raw: &Value,
    value: Option<Value>,
    options: &PatchOptions,
) -> Result<PatchOperation, PatchError> {
    let here = Location::operation(index, "");
    let Value::Object(raw) = raw else {
        return Err(PatchError::syntax(
            here,
            format!("an operation must be a JSON object, not {}", json_kind(raw)),
        ));
    };
    let op = match member(raw, "op", &here)? {
        Some(Value::String(keyword)) => match Op::parse(keyword, dialects::op_any_case(options)) {
            Some(op) => op,
            None => {
                let hint = if Op::parse(keyword, true).is_some() {
                    " (strict mode: the RFC spells operations in lower case)"
                } else {
                    ""
                };
                return Err(PatchError::syntax(
                    Location::operation(index, "op"),
                    format!(
                        "unknown operation {keyword:?}: expected \"add\", \"remove\" or \"replace\"{hint}"
                    ),
                ));
            }
        },
        Some(other) => {
            return Err(PatchError::syntax(
                Location::operation(index, "op"),
                format!("\"op\" must be a string, not {}", json_kind(other)),
            ));
        }
        None => {
            return Err(PatchError::syntax(
                here,
                "an operation must have an \"op\" member (RFC 7644 section 3.5.2)",
            ));
        }
    };
    let path_text = match member(raw, "path", &here)? {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => Some(p.clone()),
        Some(other) => {
            return Err(PatchError::syntax(
                Location::operation(index, "path"),
                format!("\"path\" must be a string, not {}", json_kind(other)),
            ));
        }
    };
    let path = match &path_text {
        Some(text) => Some(parse_path(index, text, options)?),
        None => None,
    };
    let operation = PatchOperation {
        index,
        op,
        path,
        path_text,
        value,
    };
    check_operation_shape(&operation, options)?;
    Ok(operation)
}

fn check_operation_shape(
    operation: &PatchOperation,
    options: &PatchOptions,
) -> Result<(), PatchError> {
    match operation.op {
        Op::Add | Op::Replace => match &operation.value {
            None => Err(PatchError::invalid_value(
                operation.at("value"),
                format!(
                    "an \"{}\" operation must have a \"value\" (RFC 7644 section 3.5.2.{})",
                    operation.op,
                    if operation.op == Op::Add { 1 } else { 3 }
                ),
            )),
            Some(Value::Null) if operation.op == Op::Add => Err(PatchError::invalid_value(
                operation.at("value"),
                "an \"add\" operation needs a value to add, not null (RFC 7644 section 3.5.2.1)",
            )),
            Some(value) if operation.path.is_none() && !value.is_object() => {
                Err(PatchError::invalid_value(
                    operation.at("value"),
                    format!(
                        "without a \"path\", the value of \"{}\" must be an object of attributes (RFC 7644 section 3.5.2.{}), not {}",
                        operation.op,
                        if operation.op == Op::Add { 1 } else { 3 },
                        json_kind(value)
                    ),
                ))
            }
            _ => Ok(()),
        },
        Op::Remove => {
            if operation.path.is_none() {
                return Err(PatchError::no_target(
                    operation.at(""),
                    "a \"remove\" operation must have a \"path\" (RFC 7644 section 3.5.2.2)",
                ));
            }
            match &operation.value {
                None | Some(Value::Null) => Ok(()),
                Some(_) if dialects::remove_with_value(options) => Ok(()),
                Some(_) => Err(PatchError::syntax(
                    operation.at("value"),
                    "a \"remove\" operation takes no \"value\" (RFC 7644 section 3.5.2.2); strict mode \
                     refuses it rather than removing the whole attribute",
                )),
            }
        }
    }
}

/// Parses a PATCH path, mapping the parser's error to `invalidPath` with the byte offset.
pub(crate) fn parse_path(
    index: usize,
    text: &str,
    options: &PatchOptions,
) -> Result<PatchPath, PatchError> {
    parse_path_at(Location::operation(index, "path"), text, options)
}

pub(crate) fn parse_path_at(
    at: Location,
    text: &str,
    options: &PatchOptions,
) -> Result<PatchPath, PatchError> {
    parse_patch_path_with(text, &options.path_limits).map_err(|e| {
        let (offset, detail) = match &e {
            FilterError::Syntax { offset, .. } | FilterError::TooDeep { offset, .. } => {
                (*offset, e.to_string())
            }
            FilterError::TooLong { limit, .. } => (*limit, e.to_string()),
            // Not from the path parser; total for any other error.
            _ => (0, e.to_string()),
        };
        PatchError::invalid_path(at, text, offset, detail)
    })
}

/// Looks a message member up case-insensitively (RFC 7643 section 2.1), refusing two members
/// that differ only in case, since which one the client meant cannot be known.
pub(crate) fn member<'v>(
    object: &'v Map<String, Value>,
    name: &str,
    at: &Location,
) -> Result<Option<&'v Value>, PatchError> {
    if let Some(v) = object.get(name) {
        if object.len() > 1
            && object
                .keys()
                .filter(|k| k.eq_ignore_ascii_case(name))
                .count()
                > 1
        {
            return Err(duplicate(at, name));
        }
        return Ok(Some(v));
    }
    let mut found = object.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name));
    match (found.next(), found.next()) {
        (Some((_, v)), None) => Ok(Some(v)),
        (None, _) => Ok(None),
        (Some(_), Some(_)) => Err(duplicate(at, name)),
    }
}

fn duplicate(at: &Location, name: &str) -> PatchError {
    PatchError::syntax(
        at.clone(),
        format!(
            "\"{name}\" appears more than once with different case (member names are case-insensitive)"
        ),
    )
}
