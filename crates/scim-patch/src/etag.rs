//! Entity tags as write preconditions (RFC 7644 section 3.14): the `If-Match` and
//! `If-None-Match` headers of a single request, and the `version` member of a bulk operation
//! (section 3.7), both lists of tags compared weakly, as SCIM serves weak tags `W/"<n>"`.
//!
//! ```
//! use scim_patch::etag::{EtagCondition, parse_etags};
//!
//! let condition = parse_etags("If-Match", r#"W/"3", "4""#)?;
//! assert!(condition.matches(3) && condition.matches(4) && !condition.matches(5));
//! assert_eq!(parse_etags("If-Match", "*")?, EtagCondition::Any);
//! # Ok::<(), scim_patch::PatchError>(())
//! ```

use crate::PatchError;
use scim_schema::ScimType;

/// An entity-tag condition (RFC 9110 section 13.1.1 and 13.1.2), compared weakly as RFC 7644
/// section 3.14 serves weak tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtagCondition {
    /// `*`: any current representation.
    Any,
    /// A list of versions; tags not of the `W/"<n>"` form can match nothing and are kept as
    /// `None`.
    Versions(Vec<Option<u64>>),
}

impl EtagCondition {
    /// Whether a resource at `version` satisfies the condition.
    pub fn matches(&self, version: u64) -> bool {
        match self {
            EtagCondition::Any => true,
            EtagCondition::Versions(versions) => versions.contains(&Some(version)),
        }
    }

    /// The one version a store write can be conditioned on: `None` for `*`, the version for a
    /// single tag; for several tags, the caller must compare with the current version itself.
    pub fn single_version(&self) -> Option<Option<u64>> {
        match self {
            EtagCondition::Any => Some(None),
            EtagCondition::Versions(v) if v.len() == 1 => v.first().copied().flatten().map(Some),
            EtagCondition::Versions(_) => None,
        }
    }
}

/// Parses a comma-separated list of entity tags, or `*` (RFC 9110 section 8.8.3); `what`
/// names the header or member in errors (`invalidValue`).
pub fn parse_etags(what: &str, text: &str) -> Result<EtagCondition, PatchError> {
    let invalid = |detail: String| PatchError::Request {
        scim_type: ScimType::InvalidValue,
        detail,
    };
    let mut versions = Vec::new();
    for tag in text.split(',').map(str::trim).filter(|t| !t.is_empty()) {
        if tag == "*" {
            return Ok(EtagCondition::Any);
        }
        let opaque = tag.strip_prefix("W/").unwrap_or(tag);
        let inner = opaque
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .ok_or_else(|| {
                invalid(format!(
                    "{what}: {tag:?} is not an entity tag (expected W/\"...\" or \"...\")"
                ))
            })?;
        versions.push(inner.parse::<u64>().ok());
    }
    if versions.is_empty() {
        return Err(invalid(format!("{what}: no entity tag given")));
    }
    Ok(EtagCondition::Versions(versions))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn etag_parsing_is_total(text in "\\PC{0,30}") {
            let _ = parse_etags("If-Match", &text);
        }
    }

    #[test]
    fn etags() {
        let c = parse_etags("If-Match", "W/\"3\", \"4\", W/\"x\"").unwrap();
        assert!(c.matches(3) && c.matches(4) && !c.matches(5));
        assert!(parse_etags("If-Match", "nonsense").is_err());
        assert!(parse_etags("If-Match", " , ").is_err());
        assert_eq!(parse_etags("If-Match", "*").unwrap(), EtagCondition::Any);
        assert_eq!(
            parse_etags("If-Match", "W/\"7\"").unwrap().single_version(),
            Some(Some(7))
        );
    }
}
