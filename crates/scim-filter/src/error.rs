//! The one error type of this crate.

use scim_schema::ScimType;

/// Why a filter or PATCH path was rejected. Every variant says where (a byte offset into the
/// input, or the attribute path) and what was wrong, so the server can answer 400
/// `invalidFilter` (or `invalidPath` for PATCH paths) with a detail a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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
}

fn found_suffix(found: &str) -> String {
    if found.is_empty() {
        ", found end of input".to_owned()
    } else {
        format!(", found {found:?}")
    }
}

impl FilterError {
    /// The `scimType` for a filter: always `invalidFilter` (RFC 7644 section 3.4.2.2).
    /// scim-patch maps errors in PATCH paths to `invalidPath` itself.
    pub fn scim_type(&self) -> ScimType {
        ScimType::InvalidFilter
    }
}
