//! Evaluates a SCIM filter (RFC 7644 section 3.4.2.2) against your own JSON documents with
//! scim-filter, as a directory that is not a SCIM server would: parse the filter once, check
//! it against the User schema (RFC 7643 section 4.1, with the Enterprise User extension), then
//! test each document and print the ones that match.
//!
//! ```sh
//! cargo run -p example-filter-json
//! cargo run -p example-filter-json -- 'title eq "engineer" and meta.lastModified gt "2025-01-01T00:00:00Z"'
//! ```
//!
//! The schema decides how values compare: `userName` and `title` ignore case, `dateTime`s
//! compare as instants whatever their offset, a multi-valued attribute matches when any value
//! does, and a filter naming an attribute the schema does not define is refused, as a SCIM
//! server answers 400 `invalidFilter` (RFC 7644 section 3.12).

use scim_filter::{CompiledFilter, FilterError, parse_filter};
use serde_json::{Value, json};
use std::process::ExitCode;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// A filter an HR tool might run: engineers with a work address at the company.
const DEFAULT_FILTER: &str =
    r#"title eq "Engineer" and emails[type eq "work" and value ew "@example.com"]"#;

/// Your documents: plain JSON in SCIM's User shape, from wherever you keep them.
fn people() -> Vec<Value> {
    vec![
        json!({
            "userName": "bjensen", "title": "engineer", "active": true,
            "emails": [{"type": "work", "value": "bjensen@example.com"}],
            ENTERPRISE: {"department": "Platform"},
            "meta": {"lastModified": "2025-03-01T09:00:00+01:00"}
        }),
        json!({
            "userName": "jsmith", "title": "Engineer", "active": true,
            // The work address is elsewhere and the example.com one is personal: no single
            // email satisfies the whole bracketed filter.
            "emails": [
                {"type": "work", "value": "jsmith@contractor.test"},
                {"type": "home", "value": "jsmith@example.com"}
            ],
            ENTERPRISE: {"department": "Platform"},
            "meta": {"lastModified": "2024-11-20T10:00:00Z"}
        }),
        json!({
            "userName": "alice", "title": "Designer", "active": false,
            "emails": [{"type": "work", "value": "alice@example.com"}],
            ENTERPRISE: {"department": "Marketing"},
            "meta": {"lastModified": "2025-06-15T15:06:40Z"}
        }),
    ]
}

/// The `userName` of every document that `filter` matches, in order.
fn matching<'d>(filter: &str, documents: &'d [Value]) -> Result<Vec<&'d str>, FilterError> {
    let filter = parse_filter(filter)?;
    // Checked once against the schema; `matches` then cannot fail.
    let compiled = CompiledFilter::new(&filter, &scim_schema::core::user())?;
    Ok(documents
        .iter()
        .filter(|document| compiled.matches(document))
        .filter_map(|document| document["userName"].as_str())
        .collect())
}

fn main() -> ExitCode {
    let filter = std::env::args()
        .nth(1)
        .unwrap_or_else(|| DEFAULT_FILTER.to_owned());
    println!("filter: {filter}");
    match matching(&filter, &people()) {
        Ok(names) if names.is_empty() => println!("no document matches"),
        Ok(names) => names.iter().for_each(|name| println!("matches: {name}")),
        Err(error) => {
            eprintln!("invalidFilter: {error}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(filter: &str) -> Vec<String> {
        let documents = people();
        let names = matching(filter, &documents).unwrap();
        names.into_iter().map(str::to_owned).collect()
    }

    #[test]
    fn the_default_filter_needs_one_email_to_satisfy_both_conditions() {
        assert_eq!(names(DEFAULT_FILTER), ["bjensen"]);
    }

    #[test]
    fn the_schema_decides_how_values_compare() {
        // caseExact: false.
        assert_eq!(names(r#"userName eq "BJENSEN""#), ["bjensen"]);
        // Instants, not strings: 09:00+01:00 is 08:00Z.
        assert_eq!(
            names(r#"meta.lastModified lt "2025-03-01T08:30:00Z""#),
            ["bjensen", "jsmith"]
        );
        // Extension attributes by their short name or their full URN.
        assert_eq!(names(r#"department eq "Platform""#), ["bjensen", "jsmith"]);
        assert_eq!(
            names(&format!(r#"{ENTERPRISE}:department eq "Marketing""#)),
            ["alice"]
        );
        assert_eq!(
            names(r#"not (active eq true) or emails.value co "contractor""#),
            ["jsmith", "alice"]
        );
    }

    #[test]
    fn filters_the_schema_cannot_apply_are_refused() {
        for filter in [
            r#"nickname eq "x" and badge eq 1"#,
            "active gt true",
            "userName eq",
        ] {
            assert!(matching(filter, &people()).is_err(), "{filter}");
        }
    }
}
