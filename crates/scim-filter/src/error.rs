//! The one error type of this crate.

use scim_schema::ScimType;

/// Why a filter or PATCH path was rejected. Every variant says where (a byte offset into the
/// input, or the attribute path) and what was wrong, so the server can answer 400
/// `invalidFilter` (or `invalidPath` for PATCH paths) with a detail a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
// New kinds of failure may be added without a breaking release; match with a `_` arm.
#[non_exhaustive]
pub enum FilterError {
    /// The text does not follow the grammar.
    #[error("invalid filter at byte {offset}: expected {expected}{}", found_suffix(.found))]
    Syntax {
        /// Byte offset of the problem in the input.
        offset: usize,
        /// What the grammar expected there.
        expected: &'static str,
        /// A short excerpt of what was found instead (empty at end of input).
        found: String,
    },
    /// The input is longer than the configured limit.
    #[error("filter is {len} bytes long; the limit is {limit}")]
    TooLong {
        /// The input's length in bytes.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// Parentheses, `not` or brackets nest deeper than the configured limit.
    #[error("filter nests deeper than {limit} levels at byte {offset}")]
    TooDeep {
        /// Byte offset where the limit was crossed.
        offset: usize,
        /// The limit.
        limit: usize,
    },
    /// The filter is well-formed but cannot be applied to the schema: an unknown attribute in
    /// strict mode, an ordering operator on a boolean or binary attribute (RFC 7644 section
    /// 3.4.2.2), a complex value filter on a simple attribute, ...
    #[error("{path}: {detail}")]
    NotApplicable {
        /// The attribute path concerned, as written.
        path: String,
        /// What is wrong with it.
        detail: String,
    },
    /// The parameters of a query or a SearchRequest body (RFC 7644 sections 3.4.2 and
    /// 3.4.3) are not acceptable: a member of the wrong type, an unknown member, a parameter
    /// given twice, an unknown sort order (see [`crate::search`]).
    #[error("{detail}")]
    Search {
        /// The `scimType` RFC 7644 section 3.12 gives the problem (`invalidSyntax` for the
        /// body's structure, `invalidValue` for a parameter's value, `invalidFilter` for an
        /// empty filter).
        scim_type: ScimType,
        /// What was wrong, and where (the parameter's name first).
        detail: String,
    },
}

fn found_suffix(found: &str) -> String {
    if found.is_empty() {
        ", found end of input".to_owned()
    } else {
        format!(", found {found:?}")
    }
}

impl FilterError {
    /// The `scimType` for a filter: `invalidFilter` (RFC 7644 section 3.4.2.2), or the one a
    /// [`FilterError::Search`] carries. scim-patch maps errors in PATCH paths to
    /// `invalidPath` itself.
    pub fn scim_type(&self) -> ScimType {
        match self {
            FilterError::Search { scim_type, .. } => *scim_type,
            _ => ScimType::InvalidFilter,
        }
    }
}
