//! The parameters of a SCIM query (RFC 7644 section 3.4.2) and of a SearchRequest body
//! (section 3.4.3), read into one [`SearchRequest`] whatever way they came, then checked and
//! bounded into a [`PreparedSearch`] (a parsed filter, a sort path, a page).
//!
//! Knows nothing of HTTP: a server on any stack decodes its query string into `(name, value)`
//! pairs (or parses the JSON body) and hands them here. Every error is a
//! [`FilterError::Search`] with the `scimType` RFC 7644 section 3.12 gives it, except a filter
//! that does not parse, which is the parser's own [`FilterError`].
//!
//! ```
//! use scim_filter::search::{SearchRequest, SortOrder};
//!
//! let pairs = [("filter".to_owned(), "userName eq \"bjensen\"".to_owned()),
//!              ("sortOrder".to_owned(), "descending".to_owned())];
//! let request = SearchRequest::from_query(&pairs)?;
//! let prepared = request.prepare(100, 1000)?;
//! assert!(prepared.filter.is_some());
//! assert_eq!(prepared.sort_order, SortOrder::Descending);
//! assert_eq!((prepared.start_index, prepared.count), (1, 100));
//! # Ok::<(), scim_filter::FilterError>(())
//! ```

use crate::{Filter, FilterError, parse_filter};
use scim_schema::{AttrPath, ScimType, core};
use serde_json::Value;

fn invalid_value(detail: impl Into<String>) -> FilterError {
    FilterError::Search {
        scim_type: ScimType::InvalidValue,
        detail: detail.into(),
    }
}

fn invalid_syntax(detail: impl Into<String>) -> FilterError {
    FilterError::Search {
        scim_type: ScimType::InvalidSyntax,
        detail: detail.into(),
    }
}

/// The value of the query parameter `name` among decoded `(name, value)` pairs, matched
/// case-insensitively (RFC 7644 section 3.4.2 names parameters in camelCase, and clients
/// vary); a parameter given twice is refused (`invalidValue`), as its meaning would be a
/// guess.
pub fn query_param<'a>(
    pairs: &'a [(String, String)],
    name: &str,
) -> Result<Option<&'a str>, FilterError> {
    let mut found = None;
    for (k, v) in pairs {
        if k.eq_ignore_ascii_case(name) {
            if found.is_some() {
                return Err(invalid_value(format!(
                    "query parameter {name:?} is given more than once"
                )));
            }
            found = Some(v.as_str());
        }
    }
    Ok(found)
}

/// Parses an integer query parameter leniently where RFC 7644 section 3.4.2.4 is lenient:
/// out-of-range values saturate (a `startIndex` beyond any result set is simply past the end),
/// but anything that is not an optionally signed run of digits is refused.
pub fn parse_integer(name: &str, text: &str) -> Result<i128, FilterError> {
    let trimmed = text.trim();
    let (negative, digits) = match trimmed.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, trimmed.strip_prefix('+').unwrap_or(trimmed)),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid_value(format!(
            "{name} must be an integer, not {text:?}"
        )));
    }
    let magnitude = digits.parse::<i128>().unwrap_or(i128::MAX);
    Ok(if negative { -magnitude } else { magnitude })
}

/// The order of a sorted query (RFC 7644 section 3.4.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortOrder {
    /// `ascending`, the default.
    #[default]
    Ascending,
    /// `descending`.
    Descending,
}

/// The parameters of a list or search request, as the client gave them: from a query string
/// ([`SearchRequest::from_query`]) or a SearchRequest body ([`SearchRequest::from_json`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SearchRequest {
    /// `filter` (section 3.4.2.2), unparsed.
    pub filter: Option<String>,
    /// `sortBy` (section 3.4.2.3), unparsed.
    pub sort_by: Option<String>,
    /// `sortOrder`, unchecked.
    pub sort_order: Option<String>,
    /// `startIndex` (section 3.4.2.4), saturated into an `i128`.
    pub start_index: Option<i128>,
    /// `count`, saturated into an `i128`.
    pub count: Option<i128>,
    /// RFC 9865 cursor paging: `Some(None)` asks for the first page.
    pub cursor: Option<Option<String>>,
    /// `attributes` (section 3.9), comma-separated.
    pub attributes: Option<String>,
    /// `excludedAttributes`, comma-separated.
    pub excluded_attributes: Option<String>,
}

/// A [`SearchRequest`] checked and bounded: what a store's query needs.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedSearch {
    /// The parsed filter (not yet checked against a schema).
    pub filter: Option<Filter>,
    /// The attribute to sort by.
    pub sort_by: Option<AttrPath>,
    /// The sort order.
    pub sort_order: SortOrder,
    /// The 1-based index of the first result.
    pub start_index: u64,
    /// The page size, at most the server's `maxResults`.
    pub count: u64,
    /// RFC 9865 cursor paging: `Some(None)` asks for the first page.
    pub cursor: Option<Option<String>>,
}

impl SearchRequest {
    /// The parameters of `GET /Users?...` (RFC 7644 section 3.4.2), from decoded query pairs.
    pub fn from_query(pairs: &[(String, String)]) -> Result<Self, FilterError> {
        let integer = |name: &str| -> Result<Option<i128>, FilterError> {
            query_param(pairs, name)?
                .map(|text| parse_integer(name, text))
                .transpose()
        };
        let text = |name: &str| -> Result<Option<String>, FilterError> {
            Ok(query_param(pairs, name)?.map(str::to_owned))
        };
        Ok(SearchRequest {
            filter: text("filter")?,
            sort_by: text("sortBy")?,
            sort_order: text("sortOrder")?,
            start_index: integer("startIndex")?,
            count: integer("count")?,
            cursor: query_param(pairs, "cursor")?.map(|c| (!c.is_empty()).then(|| c.to_owned())),
            attributes: text("attributes")?,
            excluded_attributes: text("excludedAttributes")?,
        })
    }

    /// A SearchRequest body (RFC 7644 section 3.4.3). Member names are matched
    /// case-insensitively, like attribute names.
    pub fn from_json(body: &Value) -> Result<Self, FilterError> {
        let Value::Object(object) = body else {
            return Err(invalid_syntax("a SearchRequest must be a JSON object"));
        };
        let member = |name: &str| {
            object
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        let schemas_ok = match member("schemas") {
            Some(Value::Array(urns)) => urns
                .iter()
                .any(|u| u.as_str() == Some(core::SEARCH_REQUEST)),
            _ => false,
        };
        if !schemas_ok {
            return Err(invalid_syntax(format!(
                "schemas: a SearchRequest must list {:?} (RFC 7644 section 3.4.3)",
                core::SEARCH_REQUEST
            )));
        }
        for key in object.keys() {
            const KNOWN: [&str; 9] = [
                "schemas",
                "filter",
                "sortBy",
                "sortOrder",
                "startIndex",
                "count",
                "attributes",
                "excludedAttributes",
                "cursor",
            ];
            if !KNOWN.iter().any(|k| k.eq_ignore_ascii_case(key)) {
                return Err(invalid_syntax(format!(
                    "{key}: not a SearchRequest attribute (RFC 7644 section 3.4.3)"
                )));
            }
        }
        let string = |name: &str| -> Result<Option<String>, FilterError> {
            match member(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(invalid_syntax(format!("{name}: must be a string"))),
            }
        };
        let list = |name: &str| -> Result<Option<String>, FilterError> {
            match member(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Array(items)) => items
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        v.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| invalid_syntax(format!("{name}[{i}]: must be a string")))
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(|v| Some(v.join(","))),
                Some(_) => Err(invalid_syntax(format!(
                    "{name}: must be an array of attribute paths"
                ))),
            }
        };
        let integer = |name: &str| -> Result<Option<i128>, FilterError> {
            match member(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) => {
                    if let Some(i) = n.as_i64() {
                        Ok(Some(i128::from(i)))
                    } else if let Some(u) = n.as_u64() {
                        Ok(Some(i128::from(u)))
                    } else {
                        match n.as_f64() {
                            // Saturating: a huge integer is past every result set, a huge
                            // negative one is "less than 1".
                            Some(f) if f.fract() == 0.0 => {
                                Ok(Some(if f > 0.0 { i128::MAX } else { i128::MIN }))
                            }
                            _ => Err(invalid_value(format!(
                                "{name}: must be an integer, not {n}"
                            ))),
                        }
                    }
                }
                Some(other) => Err(invalid_syntax(format!(
                    "{name}: must be an integer, not {other}"
                ))),
            }
        };
        Ok(SearchRequest {
            filter: string("filter")?,
            sort_by: string("sortBy")?,
            sort_order: string("sortOrder")?,
            start_index: integer("startIndex")?,
            count: integer("count")?,
            cursor: match member("cursor") {
                None => None,
                Some(Value::Null) => Some(None),
                Some(Value::String(s)) => Some((!s.is_empty()).then(|| s.clone())),
                Some(_) => return Err(invalid_syntax("cursor: must be a string")),
            },
            attributes: list("attributes")?,
            excluded_attributes: list("excludedAttributes")?,
        })
    }

    /// Parses the filter and the sort, and bounds the page: RFC 7644 section 3.4.2.4 makes a
    /// `startIndex` below 1 into 1 and a negative `count` into 0, and a `count` above
    /// `max_results` is clamped to it; without a `count`, `default_count` (also clamped).
    /// `attributes` and `excludedAttributes` are left to the caller, who knows the schema.
    pub fn prepare(
        &self,
        default_count: u64,
        max_results: u64,
    ) -> Result<PreparedSearch, FilterError> {
        let filter = match self.filter.as_deref() {
            Some(text) if !text.trim().is_empty() => Some(parse_filter(text)?),
            Some(_) => {
                return Err(FilterError::Search {
                    scim_type: ScimType::InvalidFilter,
                    detail: "filter: the filter is empty".into(),
                });
            }
            None => None,
        };
        let sort_by = self
            .sort_by
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|s| AttrPath::parse(s.trim()).map_err(|e| invalid_value(format!("sortBy: {e}"))))
            .transpose()?;
        let sort_order = match self.sort_order.as_deref() {
            None => SortOrder::Ascending,
            Some(s) if s.eq_ignore_ascii_case("ascending") => SortOrder::Ascending,
            Some(s) if s.eq_ignore_ascii_case("descending") => SortOrder::Descending,
            Some(other) => {
                return Err(invalid_value(format!(
                    "sortOrder: {other:?} is neither \"ascending\" nor \"descending\" (RFC 7644 section 3.4.2.3)"
                )));
            }
        };
        let max = i128::from(max_results);
        let count = self
            .count
            .unwrap_or(i128::from(default_count))
            .clamp(0, max);
        let start_index = self.start_index.unwrap_or(1).clamp(1, i128::from(u64::MAX));
        Ok(PreparedSearch {
            filter,
            sort_by,
            sort_order,
            start_index: u64::try_from(start_index).unwrap_or(u64::MAX),
            count: u64::try_from(count).unwrap_or(0),
            cursor: self.cursor.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    proptest! {
        #[test]
        fn integer_parsing_is_total(text in "\\PC{0,30}") {
            let _ = parse_integer("count", &text);
        }

        #[test]
        fn integers_round_trip(n in any::<i64>()) {
            prop_assert_eq!(parse_integer("count", &n.to_string()).unwrap(), i128::from(n));
        }
    }

    #[test]
    fn integers_saturate_but_must_be_integers() {
        assert_eq!(parse_integer("count", "12").unwrap(), 12);
        assert_eq!(parse_integer("count", "-3").unwrap(), -3);
        assert_eq!(
            parse_integer("count", "99999999999999999999999999999999999999999999").unwrap(),
            i128::MAX
        );
        assert!(parse_integer("count", "1e3").is_err());
        assert!(parse_integer("count", "").is_err());
    }

    #[test]
    fn parameters_are_case_insensitive_and_given_once() {
        let q = pairs(&[("COUNT", "5"), ("filter", "x")]);
        assert_eq!(query_param(&q, "count").unwrap(), Some("5"));
        let twice = pairs(&[("count", "1"), ("Count", "2")]);
        assert!(query_param(&twice, "count").is_err());
    }

    #[test]
    fn query_and_body_read_the_same_request() {
        let from_query = SearchRequest::from_query(&pairs(&[
            ("filter", "userName sw \"a\""),
            ("startIndex", "0"),
            ("count", "9999"),
            ("attributes", "userName,emails"),
        ]))
        .unwrap();
        let from_body = SearchRequest::from_json(&json!({
            "schemas": [core::SEARCH_REQUEST],
            "filter": "userName sw \"a\"",
            "startIndex": 0,
            "count": 9999,
            "attributes": ["userName", "emails"],
        }))
        .unwrap();
        assert_eq!(from_query, from_body);
        let prepared = from_query.prepare(100, 200).unwrap();
        assert_eq!((prepared.start_index, prepared.count), (1, 200));
    }

    #[test]
    fn search_bodies_are_checked() {
        let error = |body: Value| SearchRequest::from_json(&body).unwrap_err();
        assert!(matches!(
            error(json!([])),
            FilterError::Search {
                scim_type: ScimType::InvalidSyntax,
                ..
            }
        ));
        assert!(matches!(
            error(json!({"filter": "x"})),
            FilterError::Search {
                scim_type: ScimType::InvalidSyntax,
                ..
            }
        ));
        assert!(matches!(
            error(json!({"schemas": [core::SEARCH_REQUEST], "bogus": 1})),
            FilterError::Search {
                scim_type: ScimType::InvalidSyntax,
                ..
            }
        ));
        assert!(matches!(
            error(json!({"schemas": [core::SEARCH_REQUEST], "count": 1.5})),
            FilterError::Search {
                scim_type: ScimType::InvalidValue,
                ..
            }
        ));
        let cursor =
            SearchRequest::from_json(&json!({"schemas": [core::SEARCH_REQUEST], "cursor": null}))
                .unwrap();
        assert_eq!(cursor.cursor, Some(None));
    }

    #[test]
    fn prepare_checks_filter_and_sort() {
        let request = |filter: Option<&str>, order: Option<&str>| SearchRequest {
            filter: filter.map(str::to_owned),
            sort_order: order.map(str::to_owned),
            ..SearchRequest::default()
        };
        assert!(matches!(
            request(Some("  "), None).prepare(1, 1),
            Err(FilterError::Search {
                scim_type: ScimType::InvalidFilter,
                ..
            })
        ));
        assert!(matches!(
            request(Some("userName eq"), None).prepare(1, 1),
            Err(FilterError::Syntax { .. })
        ));
        assert!(matches!(
            request(None, Some("sideways")).prepare(1, 1),
            Err(FilterError::Search {
                scim_type: ScimType::InvalidValue,
                ..
            })
        ));
        assert_eq!(
            request(None, Some("DESCENDING"))
                .prepare(1, 1)
                .unwrap()
                .sort_order,
            SortOrder::Descending
        );
    }
}
