//! The one error type of this crate.
//!
//! Decisions never fail: a person who does not match, a booking in the past or a resource nobody
//! knows is a *denial* with a reason, not an error. Errors are for data handed in that cannot be
//! made sense of: a policy set whose rules do not compile, a catalog whose places contradict each
//! other.

use scim_filter::FilterError;

/// Why a policy set or a catalog was refused. Every variant names the item concerned and what
/// was wrong with it, so the workplace API can answer 400 with a detail an administrator can act
/// on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
// New kinds of failure may be added without a breaking release; match with a `_` arm.
#[non_exhaustive]
pub enum PolicyError {
    /// A rule's people filter does not parse (RFC 7644 section 3.4.2.2) or does not apply to the
    /// user schema (an unknown attribute, `gt` on a boolean, ...).
    #[error("rule {rule:?}: people filter {filter:?}{}: {source}", at_offset(.offset))]
    InvalidFilter {
        /// The rule's id.
        rule: String,
        /// The filter text as written.
        filter: String,
        /// Byte offset of the problem in `filter`, when it can be pinned down.
        offset: Option<usize>,
        /// What the filter parser or compiler said.
        #[source]
        source: FilterError,
    },
    /// A rule has an empty id: reasons and cancellations cite rules by id.
    #[error("rule #{index} (counting from 0) has an empty id")]
    EmptyRuleId {
        /// The rule's position in the policy set.
        index: usize,
    },
    /// Two rules share an id.
    #[error("rule id {id:?} is used by rules #{first} and #{second} (counting from 0)")]
    DuplicateRuleId {
        /// The id.
        id: String,
        /// Position of the first rule with it.
        first: usize,
        /// Position of the second.
        second: usize,
    },
    /// The tenant's UTC offset is out of range.
    #[error("UTC offset {seconds} s is outside -18:00..+18:00")]
    InvalidUtcOffset {
        /// The offset given, in seconds east of UTC.
        seconds: i32,
    },
    /// A site, floor, neighbourhood or resource is inconsistent.
    #[error("{kind} {id:?}: {detail}")]
    Catalog {
        /// `site`, `floor`, `neighbourhood` or `resource`.
        kind: &'static str,
        /// Its id.
        id: String,
        /// What is wrong.
        detail: String,
    },
}

fn at_offset(offset: &Option<usize>) -> String {
    offset.map_or_else(String::new, |o| format!(" (at byte {o})"))
}
