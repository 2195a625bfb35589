//! The filter agreement: on a generated directory ([`generate_directory`]), every filter
//! selects exactly what the scim-filter evaluator selects (RFC 7644 section 3.4.2.2), whatever a
//! backend pushes down to its query language. The evaluator is the oracle.

mod generate;

pub use generate::*;

use crate::{ENTERPRISE, TEST_EXTENSION};
use scim_filter::eval::{CompiledFilter, UnknownAttributes};
use scim_filter::{Filter, parse_filter};
use scim_store_core::{Members, Paging, Query, ResourceKind, Store, StoreError};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::Arc;

/// The filters checked on Users: every operator on every kind of attribute (indexed columns,
/// JSON-only, multi-valued, extension, derived), with Unicode case pairs, type mismatches,
/// `null`, and their combinations with `and`, `or`, `not` and complex value filters.
pub fn user_filters(sample_id: &str, sample_group: &str, mid_instant: &str) -> Vec<String> {
    let strings = [
        "élodie",
        "ÉLODIE",
        "Élodie.",
        "e",
        "",
        "example.com",
        "EXAMPLE.COM",
        "ß",
        "STRASSE",
        "дмитрий",
        "zz",
        "b",
        "x\u{0}y",
    ];
    let string_paths = [
        "userName",
        "displayName",
        "title",
        "name.givenName",
        "name.familyName",
        "name",
        "externalId",
        "emails",
        "emails.value",
        "emails.type",
        "phoneNumbers.value",
        "employeeNumber",
        &format!("{ENTERPRISE}:department"),
        "manager.value",
        &format!("{TEST_EXTENSION}:badge"),
        "nickname",
        "tags",
        "groups.display",
        "groups.value",
    ]
    .map(str::to_owned);
    let ops = ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"];
    let mut filters = Vec::new();
    for path in &string_paths {
        for op in ops {
            for s in strings {
                filters.push(format!("{path} {op} {}", json!(s)));
            }
        }
        filters.push(format!("{path} pr"));
        filters.push(format!("{path} eq null"));
        filters.push(format!("{path} ne null"));
        filters.push(format!("{path} eq 5"));
        filters.push(format!("{path} ne true"));
        filters.push(format!("not ({path} pr)"));
    }
    for op in ops {
        for n in ["0", "3", "2.5", "100", "-1", "\"3\""] {
            filters.push(format!("seat {op} {n}"));
            filters.push(format!("level {op} {n}"));
        }
        for d in [
            mid_instant,
            "2020-01-03T10:00:00Z",
            "2020-01-03T12:00:00+02:00",
            "2020-01-05T10:00:00.5Z",
            "not a date",
            "2020",
        ] {
            for path in ["meta.lastModified", "meta.created", "hired"] {
                filters.push(format!("{path} {op} {}", json!(d)));
            }
        }
    }
    for b in ["true", "false", "null", "\"true\"", "1"] {
        for op in ["eq", "ne"] {
            filters.push(format!("active {op} {b}"));
            filters.push(format!("emails.primary {op} {b}"));
        }
    }
    for id in [
        sample_id.to_owned(),
        sample_id.to_uppercase(),
        "nope".to_owned(),
    ] {
        filters.push(format!("id eq {}", json!(id)));
        filters.push(format!("id ne {}", json!(id)));
        filters.push(format!("groups.value eq {}", json!(sample_group)));
        filters.push(format!("groups eq {}", json!(id)));
    }
    filters.extend(
        [
            "active pr",
            "meta.lastModified pr",
            "id pr",
            "emails[type eq \"work\"]",
            "emails[type eq \"work\" and value co \"example.com\"]",
            "emails[value co \"example.com\" and primary eq true]",
            "emails[value sw \"élodie\"]",
            "emails[value ew \".org\"]",
            "emails[value eq \"x\" or type eq \"home\"]",
            "emails[not (value co \"example\")]",
            "not (emails[type eq \"work\"])",
            "not (emails[value co \"exämple\"])",
            "emails[value ne \"x\"]",
            "phoneNumbers[type eq \"work\" and value sw \"+1\"]",
            "groups[display co \"staff\"]",
            "groups[type eq \"direct\"]",
            "userName sw \"é\" and active eq true",
            "userName sw \"é\" or emails co \"exämple\"",
            "not (userName sw \"é\" or displayName co \"ü\")",
            "(title eq \"engineer\" or title eq \"manager\") and not (active eq false)",
            "name.givenName eq \"élodie\" and name.familyName pr",
            "emails.value co \"@example.com\" and not (emails.type eq \"home\")",
            "externalId sw \"EXT\" or externalId sw \"ext\"",
            "department eq \"sales\" and employeeNumber ge \"1020\"",
            "tags eq \"vip\" and not (tags eq \"remote\")",
            "hired gt \"2020-01-04T09:00:00Z\" and level lt 3",
            "not (not (userName co \"a\"))",
            "userName co \"a\" and userName co \"b\" and userName co \"c\" or displayName pr",
            // Attributes held only in the document, pushed down as JSON pre-filters.
            "emails[type eq \"work\" or primary eq true]",
            "emails[type eq \"work\" and not (value co \"x\")]",
            "name[givenName eq \"élodie\" and familyName pr]",
            "manager[value sw \"MGR-1\"]",
            "phoneNumbers[type eq \"mobile\"] or title sw \"eng\"",
            "not (title eq \"engineer\") and name.familyName co \"ü\"",
            "hired co \"2020-01-0\" and hired sw \"2020\" and hired ew \"z\"",
            "emails.primary eq true and department pr",
            "tags[value eq \"vip\"] or tags ew \"É\"",
        ]
        .map(str::to_owned),
    );
    filters
}

/// The filters checked on Groups, including `members` (stored as rows, not in the document).
pub fn group_filters(member_id: &str, group_id: &str) -> Vec<String> {
    let mut filters = Vec::new();
    for v in [
        member_id.to_owned(),
        member_id.to_uppercase(),
        group_id.to_owned(),
        "nope".to_owned(),
    ] {
        filters.push(format!("members.value eq {}", json!(v)));
        filters.push(format!("members eq {}", json!(v)));
        filters.push(format!("members[value eq {}]", json!(v)));
        filters.push(format!("members.value ne {}", json!(v)));
        filters.push(format!("not (members.value eq {})", json!(v)));
        filters.push(format!(
            "id eq {} and members.value eq {}",
            json!(group_id),
            json!(v)
        ));
        filters.push(format!("members.value sw {}", json!(&v[..4.min(v.len())])));
    }
    for op in ["eq", "ne", "co", "sw", "ew", "gt", "lt"] {
        for s in ["staff", "STAFF 1", "élus", "Élus 3", "", "1"] {
            filters.push(format!("displayName {op} {}", json!(s)));
            filters.push(format!("members.display {op} {}", json!(s)));
        }
    }
    filters.extend(
        [
            "members pr",
            "members.value pr",
            "not (members pr)",
            "members eq null",
            "members[type eq \"Group\"]",
            "members[type eq \"User\" and display co \"a\"]",
            "members[value pr and type eq \"Group\"]",
            "externalId pr",
            "externalId eq \"G-1\"",
            "externalId eq \"g-1\"",
            "displayName sw \"élus\" or members[type eq \"Group\"]",
        ]
        .map(str::to_owned),
    );
    filters
}

async fn all_documents(
    store: &dyn Store,
    tenant: &scim_store_core::TenantId,
    kind: ResourceKind,
) -> Vec<(String, Value)> {
    let page = store
        .query(
            tenant,
            kind,
            &Query {
                members: Members::Include,
                ..Query::default()
            },
        )
        .await
        .unwrap();
    page.resources
        .into_iter()
        .map(|r| (r.id, r.document))
        .collect()
}

/// Checks one filter against the evaluator; returns how many resources it selected.
pub async fn check_filter(
    store: &dyn Store,
    tenant: &scim_store_core::TenantId,
    kind: ResourceKind,
    text: &str,
    docs: &[(String, Value)],
) -> usize {
    let filter: Filter = parse_filter(text).unwrap_or_else(|e| panic!("{text}: {e}"));
    let schemas = crate::schemas();
    let query = Query {
        filter: Some(filter.clone()),
        members: Members::Exclude,
        ..Query::default()
    };
    let compiled =
        match CompiledFilter::with_mode(&filter, schemas.get(kind), UnknownAttributes::Lenient) {
            Ok(compiled) => compiled,
            Err(_) => {
                let err = store.query(tenant, kind, &query).await.unwrap_err();
                assert!(
                    matches!(err, StoreError::Filter(_)),
                    "{text}: the evaluator rejects it, the store said {err}"
                );
                return 0;
            }
        };
    let expected: BTreeSet<&str> = docs
        .iter()
        .filter(|(_, d)| compiled.matches(d))
        .map(|(id, _)| id.as_str())
        .collect();
    let page = store
        .query(tenant, kind, &query)
        .await
        .unwrap_or_else(|e| panic!("{text}: {e}"));
    let actual: BTreeSet<&str> = page.resources.iter().map(|r| r.id.as_str()).collect();
    if expected != actual {
        let missing: Vec<_> = expected.difference(&actual).take(3).collect();
        let extra: Vec<_> = actual.difference(&expected).take(3).collect();
        let show = |id: &&&str| {
            docs.iter()
                .find(|(i, _)| i == **id)
                .map(|(_, d)| d.to_string())
                .unwrap_or_default()
        };
        panic!(
            "{kind} filter {text:?}: the store selected {} resources, the evaluator {}.\nmissing: {:?}\nextra: {:?}",
            actual.len(),
            expected.len(),
            missing.iter().map(show).collect::<Vec<_>>(),
            extra.iter().map(show).collect::<Vec<_>>()
        );
    }
    assert_eq!(
        page.total_results,
        expected.len() as u64,
        "{text}: totalResults"
    );
    expected.len()
}

/// Every filter of [`user_filters`] and [`group_filters`] selects, on a generated directory of
/// 300 users and 25 groups, exactly what the evaluator selects; combinations of them too, and
/// cursor paging over filtered, sorted results visits exactly the filtered set.
pub async fn filters_agree_with_the_evaluator(store: Arc<dyn Store>) {
    let (t, user_ids, group_ids) = generate_directory(store.as_ref(), 300, 25, 0x5C1D).await;
    let users = all_documents(store.as_ref(), &t.id, ResourceKind::User).await;
    let groups = all_documents(store.as_ref(), &t.id, ResourceKind::Group).await;
    assert_eq!((users.len(), groups.len()), (300, 25));
    let mid = users[150].1["meta"]["lastModified"]
        .as_str()
        .unwrap()
        .to_owned();
    let member = groups
        .iter()
        .find_map(|(_, d)| {
            d["members"]
                .as_array()
                .and_then(|m| m.first())
                .and_then(|m| m["value"].as_str())
                .map(str::to_owned)
        })
        .unwrap();

    let mut nonempty = 0;
    let user_filters = user_filters(&user_ids[7], &group_ids[3], &mid);
    for text in &user_filters {
        if check_filter(store.as_ref(), &t.id, ResourceKind::User, text, &users).await > 0 {
            nonempty += 1;
        }
    }
    assert!(
        nonempty * 3 > user_filters.len(),
        "most filters should select something ({nonempty} of {})",
        user_filters.len()
    );
    for text in group_filters(&member, &group_ids[5]) {
        check_filter(store.as_ref(), &t.id, ResourceKind::Group, &text, &groups).await;
    }

    // Random combinations of the single filters.
    let singles: Vec<&String> = user_filters
        .iter()
        .filter(|f| !f.contains("null") && !f.contains("\\u0000"))
        .collect();
    let mut g = Gen::new(7);
    for _ in 0..300 {
        let a = g.pick(&singles);
        let b = g.pick(&singles);
        let combined = match g.below(4) {
            0 => format!("({a}) and ({b})"),
            1 => format!("({a}) or ({b})"),
            2 => format!("not (({a}) and not ({b}))"),
            _ => format!("not (({a}) or ({b}))"),
        };
        check_filter(store.as_ref(), &t.id, ResourceKind::User, &combined, &users).await;
    }

    // Cursor paging of a filtered, sorted query visits the filtered set once, in order.
    for (text, sort) in [
        ("emails co \"example\"", "userName"),
        ("title pr or active eq true", "name.familyName"),
        ("userName co \"o\"", "meta.lastModified"),
    ] {
        let filter = parse_filter(text).unwrap();
        let base = Query {
            filter: Some(filter),
            sort_by: Some(scim_schema::AttrPath::parse(sort).unwrap()),
            ..Query::default()
        };
        let full = store.query(&t.id, ResourceKind::User, &base).await.unwrap();
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let q = Query {
                paging: Paging::Cursor(cursor),
                count: Some(17),
                ..base.clone()
            };
            let page = store.query(&t.id, ResourceKind::User, &q).await.unwrap();
            assert_eq!(page.total_results, full.total_results);
            seen.extend(page.resources.into_iter().map(|r| r.id));
            cursor = page.next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        let full_ids: Vec<String> = full.resources.into_iter().map(|r| r.id).collect();
        assert_eq!(seen, full_ids, "{text} sorted by {sort}");
    }
}
