//! PATCH operation paths (RFC 7644 section 3.5.2: `PATH = attrPath / valuePath [subAttr]`).

use scim_filter::{
    CompValue, CompareOp, Comparison, Filter, FilterError, Limits, PatchPath, parse_patch_path,
    parse_patch_path_with,
};
use scim_schema::AttrPath;

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The path examples of RFC 7644 section 3.5.2 and the forms real clients send.
const PATHS: &[&str] = &[
    "members",
    "name.familyName",
    r#"emails[type eq "work"]"#,
    r#"emails[type eq "work"].value"#,
    r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#,
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
    r#"addresses[type eq "work"].streetAddress"#,
    r#"emails[type eq "work" and primary eq true].display"#,
    r#"members[value eq "a" or value eq "b"]"#,
    "members.$ref",
];

#[test]
fn rfc_7644_patch_paths() {
    let mut report = String::new();
    for input in PATHS {
        let path = parse_patch_path(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(&path.to_string(), input, "canonical form");
        assert_eq!(parse_patch_path(&path.to_string()).as_ref(), Ok(&path));
        report.push_str(&format!("{input}\n=> {path:#?}\n\n"));
    }
    insta::assert_snapshot!(report);
}

#[test]
fn plain_paths_keep_their_sub_attribute_in_the_attr_path() {
    let p = parse_patch_path("name.familyName").unwrap();
    assert_eq!(
        p,
        PatchPath {
            attr: AttrPath::with_sub("name", "familyName"),
            filter: None,
            sub_attr: None
        }
    );
    let p = parse_patch_path(&format!("{ENTERPRISE}:manager.value")).unwrap();
    assert_eq!(p.attr.schema.as_deref(), Some(ENTERPRISE));
    assert_eq!(p.attr.name, "manager");
    assert_eq!(p.attr.sub_attr.as_deref(), Some("value"));
    assert_eq!(p.filter, None);
}

#[test]
fn value_path_with_sub_attribute() {
    let p = parse_patch_path(r#"addresses[type eq "work"].streetAddress"#).unwrap();
    assert_eq!(p.attr, AttrPath::simple("addresses"));
    assert_eq!(
        p.filter.as_deref(),
        Some(&Filter::Compare(Comparison {
            path: AttrPath::simple("type"),
            op: CompareOp::Eq,
            value: CompValue::String("work".to_owned()),
        }))
    );
    assert_eq!(p.sub_attr.as_deref(), Some("streetAddress"));
}

#[test]
fn surrounding_whitespace_is_tolerated() {
    assert_eq!(
        parse_patch_path("  members \n"),
        parse_patch_path("members")
    );
    assert_eq!(
        parse_patch_path(r#" emails[ type eq "work" ].value "#),
        parse_patch_path(r#"emails[type eq "work"].value"#)
    );
}

/// Malformed paths, each with the offset the error must point at.
const MALFORMED: &[(&str, usize)] = &[
    ("", 0),
    ("   ", 3),
    ("members extra", 8),
    ("[type eq \"work\"]", 0),
    ("1members", 0),
    ("name.", 5),
    ("name.familyName.x", 15),
    ("foo:bar", 0),
    (r#"emails[type eq "work""#, 21),
    (r#"emails[type eq "work"]value"#, 22),
    (r#"emails[type eq "work"]."#, 23),
    (r#"emails[type eq "work"].1x"#, 23),
    (r#"emails[type eq "work"].value.x"#, 28),
    (r#"emails[type eq "work"].value[x pr]"#, 28),
    (r#"emails[type[x pr] pr]"#, 11),
    (r#"emails[]"#, 7),
    (r#"emails[type eq]"#, 14),
];

#[test]
fn malformed_paths_point_at_the_real_place() {
    let mut report = String::new();
    let mut mismatches = Vec::new();
    for (input, expected_offset) in MALFORMED {
        let error = parse_patch_path(input).expect_err(input);
        let FilterError::Syntax { offset, .. } = &error else {
            panic!("{input}: {error}")
        };
        if offset != expected_offset {
            mismatches.push(format!(
                "{input:?} (expected offset {expected_offset}): {error}"
            ));
        }
        report.push_str(&format!("{input:?}\n=> {error}\n"));
    }
    assert!(mismatches.is_empty(), "{mismatches:#?}");
    insta::assert_snapshot!(report);
}

#[test]
fn limits_apply_to_patch_paths() {
    let limits = Limits {
        max_len: 8,
        ..Limits::DEFAULT
    };
    assert!(parse_patch_path_with("members", &limits).is_ok());
    assert_eq!(
        parse_patch_path_with("displayName", &limits),
        Err(FilterError::TooLong { len: 11, limit: 8 })
    );
    let limits = Limits {
        max_len: usize::MAX,
        max_depth: 3,
    };
    assert!(parse_patch_path_with("x[((a pr))]", &limits).is_ok());
    assert_eq!(
        parse_patch_path_with("x[(((a pr)))]", &limits),
        Err(FilterError::TooDeep {
            offset: 4,
            limit: 3
        })
    );
}

#[test]
fn from_str_is_parse_patch_path() {
    let p: PatchPath = "members".parse().unwrap();
    assert_eq!(p.attr, AttrPath::simple("members"));
}
