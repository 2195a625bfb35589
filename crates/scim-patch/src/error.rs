//! The one error type of this crate, [`PatchError`], and [`Location`], which says where in the
//! PatchOp message a problem is.

use scim_schema::ScimType;
use std::fmt;

/// Where in a PatchOp message something went wrong: the operation's index in `Operations` and
/// the member inside it, e.g. `Operations[2].path` or `Operations[0].value.emails`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Location {
    /// Index of the operation in the message's `Operations` array; `None` for problems with the
    /// message itself (e.g. a missing `Operations`) or with the resource being patched.
    pub operation: Option<usize>,
    /// The member concerned, relative to the operation (`path`, `value`, `value.name.givenName`),
    /// or to the message when `operation` is `None` (`schemas`, `Operations`). May be empty.
    pub member: String,
}

impl Location {
    /// A member of the message itself (`schemas`, `Operations`).
    pub fn message(member: impl Into<String>) -> Self {
        Location {
            operation: None,
            member: member.into(),
        }
    }

    /// A member of operation `index` (`op`, `path`, `value`, `value.emails`).
    pub fn operation(index: usize, member: impl Into<String>) -> Self {
        Location {
            operation: Some(index),
            member: member.into(),
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.operation, self.member.is_empty()) {
            (Some(i), true) => write!(f, "Operations[{i}]"),
            (Some(i), false) => write!(f, "Operations[{i}].{}", self.member),
            (None, true) => f.write_str("PatchOp message"),
            (None, false) => f.write_str(&self.member),
        }
    }
}

/// Why a PATCH request was rejected (RFC 7644 section 3.5.2 and the `scimType` keywords of
/// section 3.12, Table 9). Every variant says where ([`Location`]) and what was wrong, so the
/// server can answer 400 with a `detail` a person can act on; [`PatchError::scim_type`] gives the
/// keyword.
///
/// Because PATCH is atomic (RFC 7644 section 3.5.2: "If a single operation encounters an error
/// condition, the original target resource MUST be restored"), any error means nothing was applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
// New kinds of failure may be added without a breaking release; match with a `_` arm.
#[non_exhaustive]
pub enum PatchError {
    /// The message does not have the structure of a PatchOp (RFC 7644 section 3.5.2): not a JSON
    /// object, no `Operations` array, an unknown `op`, a member of the wrong JSON type.
    /// `scimType` `invalidSyntax`.
    #[error("{at}: {detail}")]
    InvalidSyntax {
        /// Where.
        at: Location,
        /// What was wrong.
        detail: String,
    },
    /// The `path` is malformed or names nothing in the resource's schemas (RFC 7644 section
    /// 3.5.2, 3.12). `scimType` `invalidPath`.
    #[error("{at}: invalid path {path:?} at byte {offset}: {detail}")]
    InvalidPath {
        /// Where (usually `Operations[i].path`, or `Operations[i].value.<key>` for a path-less
        /// value whose key is not an attribute).
        at: Location,
        /// The path as sent.
        path: String,
        /// Byte offset of the problem in `path`.
        offset: usize,
        /// What was wrong.
        detail: String,
    },
    /// The path did not yield an attribute or value that could be operated on: `remove` without a
    /// path (RFC 7644 section 3.5.2.2), or a value filter that matched nothing (section 3.5.2.3
    /// and Table 9: "This occurs when the specified "path" value contains a filter that yields no
    /// match"). `scimType` `noTarget`.
    #[error("{at}: {detail}")]
    NoTarget {
        /// Where.
        at: Location,
        /// What was wrong.
        detail: String,
    },
    /// The change is not compatible with an attribute's mutability (RFC 7644 section 3.5.2: "a
    /// client MUST NOT modify an attribute that has mutability "readOnly" or "immutable"") or
    /// would leave a required attribute unassigned (section 3.5.2.2: "If an attribute is removed or
    /// becomes unassigned and is defined as a required attribute or a read-only attribute, the
    /// server SHALL return ... a "scimType" error code of "mutability""). `scimType` `mutability`.
    #[error("{at}: {detail}")]
    Mutability {
        /// Where.
        at: Location,
        /// The attribute concerned, in attribute notation (`id`, `members.value`).
        attribute: String,
        /// What was wrong.
        detail: String,
    },
    /// A required value is missing or a value does not fit the attribute's type (RFC 7644
    /// section 3.12: "A required value was missing, or the value specified was not compatible
    /// with the operation or attribute type"). `scimType` `invalidValue`.
    #[error("{at}: {detail}")]
    InvalidValue {
        /// Where.
        at: Location,
        /// What was wrong.
        detail: String,
    },
    /// A BulkRequest (RFC 7644 section 3.7, [`crate::bulk`]) or an entity tag
    /// ([`crate::etag`]) is not acceptable. Not in a PatchOp message, so its location is the
    /// empty one; the detail names the member.
    #[error("{detail}")]
    Request {
        /// `invalidSyntax` for the message's structure, `invalidValue` for a member's value.
        scim_type: ScimType,
        /// What was wrong, and where.
        detail: String,
    },
    /// A BulkRequest has more operations than the server's `maxOperations`: RFC 7644 section
    /// 3.7.4 answers 413 Payload Too Large, with no `scimType`.
    #[error("the bulk request has {operations} operations; maxOperations is {max_operations}")]
    TooManyOperations {
        /// How many the request has.
        operations: usize,
        /// The server's limit.
        max_operations: u32,
    },
}

/// The location of errors that are not in a PatchOp message.
static NOWHERE: Location = Location {
    operation: None,
    member: String::new(),
};

impl PatchError {
    /// The `scimType` keyword of RFC 7644 section 3.12 for this error.
    pub fn scim_type(&self) -> ScimType {
        match self {
            PatchError::InvalidSyntax { .. } => ScimType::InvalidSyntax,
            PatchError::InvalidPath { .. } => ScimType::InvalidPath,
            PatchError::NoTarget { .. } => ScimType::NoTarget,
            PatchError::Mutability { .. } => ScimType::Mutability,
            PatchError::InvalidValue { .. } => ScimType::InvalidValue,
            PatchError::Request { scim_type, .. } => *scim_type,
            // RFC 7644 section 3.7.4 gives none; the closest keyword, for callers that need one.
            PatchError::TooManyOperations { .. } => ScimType::TooMany,
        }
    }

    /// The HTTP status that goes with [`PatchError::scim_type`] (always 400 for PATCH errors;
    /// 413 for [`PatchError::TooManyOperations`]).
    pub fn status(&self) -> u16 {
        match self {
            PatchError::TooManyOperations { .. } => 413,
            _ => self.scim_type().status(),
        }
    }

    /// Where in the message the problem is.
    pub fn location(&self) -> &Location {
        match self {
            PatchError::InvalidSyntax { at, .. }
            | PatchError::InvalidPath { at, .. }
            | PatchError::NoTarget { at, .. }
            | PatchError::Mutability { at, .. }
            | PatchError::InvalidValue { at, .. } => at,
            PatchError::Request { .. } | PatchError::TooManyOperations { .. } => &NOWHERE,
        }
    }

    /// The index of the failing operation in `Operations`, if the error concerns one.
    pub fn operation(&self) -> Option<usize> {
        self.location().operation
    }

    pub(crate) fn syntax(at: Location, detail: impl Into<String>) -> Self {
        PatchError::InvalidSyntax {
            at,
            detail: detail.into(),
        }
    }

    pub(crate) fn no_target(at: Location, detail: impl Into<String>) -> Self {
        PatchError::NoTarget {
            at,
            detail: detail.into(),
        }
    }

    pub(crate) fn invalid_value(at: Location, detail: impl Into<String>) -> Self {
        PatchError::InvalidValue {
            at,
            detail: detail.into(),
        }
    }

    pub(crate) fn mutability(
        at: Location,
        attribute: impl Into<String>,
        detail: impl Into<String>,
    ) -> Self {
        PatchError::Mutability {
            at,
            attribute: attribute.into(),
            detail: detail.into(),
        }
    }

    pub(crate) fn invalid_path(
        at: Location,
        path: impl Into<String>,
        offset: usize,
        detail: impl Into<String>,
    ) -> Self {
        PatchError::InvalidPath {
            at,
            path: path.into(),
            offset,
            detail: detail.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_read_like_json_paths() {
        assert_eq!(
            Location::operation(2, "path").to_string(),
            "Operations[2].path"
        );
        assert_eq!(Location::operation(0, "").to_string(), "Operations[0]");
        assert_eq!(Location::message("schemas").to_string(), "schemas");
        assert_eq!(Location::message("").to_string(), "PatchOp message");
    }

    #[test]
    fn every_variant_maps_to_its_scim_type_and_400() {
        let at = || Location::operation(1, "path");
        let cases = [
            (PatchError::syntax(at(), "x"), ScimType::InvalidSyntax),
            (
                PatchError::invalid_path(at(), "a b", 1, "x"),
                ScimType::InvalidPath,
            ),
            (PatchError::no_target(at(), "x"), ScimType::NoTarget),
            (
                PatchError::mutability(at(), "id", "x"),
                ScimType::Mutability,
            ),
            (PatchError::invalid_value(at(), "x"), ScimType::InvalidValue),
        ];
        for (err, kind) in cases {
            assert_eq!(err.scim_type(), kind);
            assert_eq!(err.status(), 400);
            assert_eq!(err.operation(), Some(1));
            assert!(err.to_string().starts_with("Operations[1].path: "), "{err}");
        }
    }
}
