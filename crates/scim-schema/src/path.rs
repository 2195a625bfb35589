//! Attribute paths in SCIM attribute notation (RFC 7644 section 3.10; ABNF in section 3.4.2.2):
//!
//! ```text
//! attrPath  = [URI ":"] ATTRNAME *1subAttr
//! ATTRNAME  = ALPHA *(nameChar)
//! nameChar  = "-" / "_" / DIGIT / ALPHA
//! subAttr   = "." ATTRNAME
//! ```
//!
//! `$ref` is also accepted as an ATTRNAME, because RFC 7643 defines sub-attributes of that name
//! (`members.$ref`, `groups.$ref`, `manager.$ref`).
//!
//! The same type serves the `attributes`/`excludedAttributes` parameters, filters (scim-filter
//! builds it while parsing) and PATCH paths, so every layer agrees on what a path is.

use std::fmt;

/// A parsed attribute path: an optional schema URN, an attribute name and an optional
/// sub-attribute name. Names keep the case they were written in; resolution against a schema
/// (see [`crate::ResourceSchema::resolve`]) is case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AttrPath {
    /// The schema URN prefix, e.g. `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User`.
    pub schema: Option<String>,
    /// The attribute name, e.g. `name`.
    pub name: String,
    /// The sub-attribute name, e.g. `familyName`.
    pub sub_attr: Option<String>,
}

/// Why a string is not an attribute path. `offset` is the byte offset of the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid attribute path {path:?} at byte {offset}: {reason}")]
pub struct PathError {
    /// The path as given.
    pub path: String,
    /// Byte offset in `path` where it went wrong.
    pub offset: usize,
    /// What was expected there.
    pub reason: &'static str,
}

/// True for the bytes that may appear anywhere in an attribute path, URN prefix included.
/// Parsers (filters, PATCH paths) use it to find where a path token ends.
#[inline]
pub fn is_path_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'$')
}

impl AttrPath {
    /// A path with no schema URN and no sub-attribute.
    pub fn simple(name: impl Into<String>) -> Self {
        AttrPath {
            schema: None,
            name: name.into(),
            sub_attr: None,
        }
    }

    /// A path `name.sub` with no schema URN.
    pub fn with_sub(name: impl Into<String>, sub: impl Into<String>) -> Self {
        AttrPath {
            schema: None,
            name: name.into(),
            sub_attr: Some(sub.into()),
        }
    }

    /// Parses a whole string as an attribute path.
    ///
    /// A path with a URN prefix is split at the last `:`; the URN must start with `urn:`
    /// (every SCIM schema id does, RFC 7643 section 3).
    pub fn parse(input: &str) -> Result<AttrPath, PathError> {
        let err = |offset: usize, reason: &'static str| PathError {
            path: input.to_owned(),
            offset,
            reason,
        };
        if let Some(pos) = input.bytes().position(|b| !is_path_byte(b)) {
            return Err(err(pos, "a letter, digit, '-', '_', '.', ':' or '$'"));
        }
        let (schema, rest, rest_start) = match input.rfind(':') {
            Some(colon) => {
                let urn = &input[..colon];
                if !urn.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:")) {
                    return Err(err(0, "a schema URN starting with \"urn:\" before ':'"));
                }
                (Some(urn.to_owned()), &input[colon + 1..], colon + 1)
            }
            None => (None, input, 0),
        };
        let (name, sub) = match rest.find('.') {
            Some(dot) => (&rest[..dot], Some((&rest[dot + 1..], rest_start + dot + 1))),
            None => (rest, None),
        };
        check_attr_name(name).map_err(|off| err(rest_start + off, ATTRNAME_EXPECTED))?;
        let sub_attr = match sub {
            Some((sub, start)) => {
                check_attr_name(sub).map_err(|off| err(start + off, ATTRNAME_EXPECTED))?;
                Some(sub.to_owned())
            }
            None => None,
        };
        Ok(AttrPath {
            schema,
            name: name.to_owned(),
            sub_attr,
        })
    }
}

const ATTRNAME_EXPECTED: &str = "an attribute name (a letter, then letters, digits, '-' or '_')";

/// Checks `ATTRNAME = ALPHA *(nameChar)` (or `$ref`); on failure returns the offending offset.
pub fn check_attr_name(name: &str) -> Result<(), usize> {
    if name.eq_ignore_ascii_case("$ref") {
        return Ok(());
    }
    let bytes = name.as_bytes();
    match bytes.first() {
        Some(b) if b.is_ascii_alphabetic() => {}
        _ => return Err(0),
    }
    match bytes
        .iter()
        .position(|&b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
    {
        Some(pos) => Err(pos),
        None => Ok(()),
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(schema) = &self.schema {
            write!(f, "{schema}:")?;
        }
        f.write_str(&self.name)?;
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for AttrPath {
    type Err = PathError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AttrPath::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_simple_sub_and_urn_paths() {
        assert_eq!(
            AttrPath::parse("userName").unwrap(),
            AttrPath::simple("userName")
        );
        assert_eq!(
            AttrPath::parse("name.familyName").unwrap(),
            AttrPath::with_sub("name", "familyName")
        );
        let p = AttrPath::parse(
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
        )
        .unwrap();
        assert_eq!(
            p.schema.as_deref(),
            Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User")
        );
        assert_eq!(p.name, "manager");
        assert_eq!(p.sub_attr.as_deref(), Some("value"));
        assert_eq!(
            AttrPath::parse("members.$ref").unwrap().sub_attr.as_deref(),
            Some("$ref")
        );
    }

    #[test]
    fn rejects_bad_paths_with_offsets() {
        assert_eq!(AttrPath::parse("").unwrap_err().offset, 0);
        assert_eq!(AttrPath::parse("1abc").unwrap_err().offset, 0);
        assert_eq!(AttrPath::parse("name.").unwrap_err().offset, 5);
        assert_eq!(AttrPath::parse("name.given.x").unwrap_err().offset, 10);
        assert_eq!(AttrPath::parse("user name").unwrap_err().offset, 4);
        assert_eq!(AttrPath::parse("foo:bar").unwrap_err().offset, 0);
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "userName",
            "name.givenName",
            "urn:x:y:2.0:User:employeeNumber",
            "members.$ref",
        ] {
            assert_eq!(AttrPath::parse(s).unwrap().to_string(), s);
        }
    }
}
