//! Queries (RFC 7644 section 3.4.2): sorting, index paging, cursor paging (RFC 9865), and the
//! client errors of bad cursors and inapplicable filters.

use crate::directory::ids_of;
use crate::{ctx, new_tenant, user};
use scim_schema::AttrPath;
use scim_store_core::{Paging, Query, ResourceKind, SortOrder, Store, StoreError};
use serde_json::json;
use std::sync::Arc;

/// Sorting (RFC 7644 section 3.4.2.3), index paging (section 3.4.2.4), cursor paging (RFC 9865).
pub async fn query_paging_sorting_and_cursors(store: Arc<dyn Store>) {
    let t = new_tenant(store.as_ref()).await;
    let names = [
        "delta", "Alpha", "Élodie", "charlie", "bravo", "echo", "Zulu", "élan", "foxtrot", "golf",
        "hotel",
    ];
    let mut ids = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let mut doc = user(name);
        if i % 3 != 0 {
            doc["name"] = json!({"familyName": format!("F{}", names.len() - i)});
        }
        ids.push(
            store
                .create(&t.id, ResourceKind::User, doc, &ctx())
                .await
                .unwrap()
                .id,
        );
    }
    let all = store
        .query(&t.id, ResourceKind::User, &Query::default())
        .await
        .unwrap();
    assert_eq!(all.total_results, 11);
    assert_eq!(ids_of(&all), ids, "without sortBy, creation order");

    let by_name = |order| Query {
        sort_by: Some(AttrPath::simple("userName")),
        sort_order: order,
        ..Query::default()
    };
    let asc = store
        .query(&t.id, ResourceKind::User, &by_name(SortOrder::Ascending))
        .await
        .unwrap();
    let names_asc: Vec<String> = asc
        .resources
        .iter()
        .map(|r| r.document["userName"].as_str().unwrap().to_owned())
        .collect();
    let mut expected: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    expected.sort_by_key(|s| scim_schema::fold_case(s).into_owned());
    assert_eq!(names_asc, expected, "case-insensitive Unicode order");
    let desc = store
        .query(&t.id, ResourceKind::User, &by_name(SortOrder::Descending))
        .await
        .unwrap();
    let mut reversed = ids_of(&asc);
    reversed.reverse();
    assert_eq!(ids_of(&desc), reversed);

    // Resources without a value sort last ascending and first descending.
    let family = |order| Query {
        sort_by: Some(AttrPath::with_sub("name", "familyName")),
        sort_order: order,
        ..Query::default()
    };
    let fam = store
        .query(&t.id, ResourceKind::User, &family(SortOrder::Ascending))
        .await
        .unwrap();
    let has_family: Vec<bool> = fam
        .resources
        .iter()
        .map(|r| r.document.get("name").is_some())
        .collect();
    assert_eq!(has_family.iter().filter(|b| !**b).count(), 4);
    assert!(
        has_family.windows(2).all(|w| w[0] || !w[1]),
        "missing values last: {has_family:?}"
    );
    let fam_desc = store
        .query(&t.id, ResourceKind::User, &family(SortOrder::Descending))
        .await
        .unwrap();
    let mut reversed = ids_of(&fam);
    reversed.reverse();
    assert_eq!(ids_of(&fam_desc), reversed);

    // Index paging.
    let page = |start, count| Query {
        paging: Paging::Index { start_index: start },
        count: Some(count),
        ..by_name(SortOrder::Ascending)
    };
    let p = store
        .query(&t.id, ResourceKind::User, &page(3, 4))
        .await
        .unwrap();
    assert_eq!((p.total_results, p.start_index), (11, 3));
    assert_eq!(ids_of(&p), ids_of(&asc)[2..6].to_vec());
    let p = store
        .query(&t.id, ResourceKind::User, &page(0, 2))
        .await
        .unwrap();
    assert_eq!(
        (p.start_index, ids_of(&p)),
        (1, ids_of(&asc)[..2].to_vec()),
        "startIndex below 1 is 1"
    );
    let p = store
        .query(&t.id, ResourceKind::User, &page(50, 5))
        .await
        .unwrap();
    assert_eq!((p.total_results, p.resources.len()), (11, 0));
    let p = store
        .query(&t.id, ResourceKind::User, &page(1, 0))
        .await
        .unwrap();
    assert_eq!(
        (p.total_results, p.resources.len()),
        (11, 0),
        "count=0 returns only totalResults"
    );

    // Cursor paging walks everything exactly once, in order, for every sort.
    for query in [
        Query::default(),
        by_name(SortOrder::Ascending),
        by_name(SortOrder::Descending),
        family(SortOrder::Ascending),
        family(SortOrder::Descending),
    ] {
        let full = store
            .query(&t.id, ResourceKind::User, &query)
            .await
            .unwrap();
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let q = Query {
                paging: Paging::Cursor(cursor.clone()),
                count: Some(3),
                ..query.clone()
            };
            let p = store.query(&t.id, ResourceKind::User, &q).await.unwrap();
            assert_eq!(p.total_results, 11);
            assert!(p.resources.len() <= 3);
            seen.extend(ids_of(&p));
            match p.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, ids_of(&full), "cursor pages of {:?}", query.sort_by);
    }

    // A cursor is stable under concurrent changes: deleting an already-seen resource and
    // creating one that sorts earlier neither repeats nor skips the rest.
    let q = Query {
        paging: Paging::Cursor(None),
        count: Some(4),
        ..by_name(SortOrder::Ascending)
    };
    let first = store.query(&t.id, ResourceKind::User, &q).await.unwrap();
    store
        .delete(
            &t.id,
            ResourceKind::User,
            &first.resources[0].id,
            None,
            &ctx(),
        )
        .await
        .unwrap();
    store
        .create(&t.id, ResourceKind::User, user("aaa-new"), &ctx())
        .await
        .unwrap();
    let q = Query {
        paging: Paging::Cursor(first.next_cursor.clone()),
        count: Some(100),
        ..q
    };
    let rest = store.query(&t.id, ResourceKind::User, &q).await.unwrap();
    assert_eq!(ids_of(&rest), ids_of(&asc)[4..].to_vec());
    assert!(rest.next_cursor.is_none());
}

/// Bad cursors and inapplicable filters are client errors.
pub async fn query_rejects_bad_cursors_and_filters(store: Arc<dyn Store>) {
    let t = new_tenant(store.as_ref()).await;
    for i in 0..3 {
        store
            .create(&t.id, ResourceKind::User, user(&format!("c{i}")), &ctx())
            .await
            .unwrap();
    }
    let q = Query {
        paging: Paging::Cursor(None),
        count: Some(1),
        ..Query::default()
    };
    let p = store.query(&t.id, ResourceKind::User, &q).await.unwrap();
    let cursor = p.next_cursor.unwrap();
    let invalid = |result: scim_store_core::Result<_>, what: &str| match result {
        Err(StoreError::InvalidCursor(_)) => {}
        other => panic!("{what}: expected InvalidCursor, got {other:?}"),
    };
    let again = Query {
        paging: Paging::Cursor(Some(cursor.clone())),
        ..q.clone()
    };
    // The cursor is good for its own tenant, resource type and query...
    let next = store
        .query(&t.id, ResourceKind::User, &again)
        .await
        .unwrap();
    assert_eq!(next.resources.len(), 1);
    // ...and for nothing else: a cursor is signed, and bound to its tenant and resource type
    // (RFC 9865: only valid for the query that issued it).
    let other = new_tenant(store.as_ref()).await;
    for i in 0..3 {
        store
            .create(
                &other.id,
                ResourceKind::User,
                user(&format!("o{i}")),
                &ctx(),
            )
            .await
            .unwrap();
    }
    invalid(
        store.query(&other.id, ResourceKind::User, &again).await,
        "another tenant's cursor",
    );
    invalid(
        store.query(&t.id, ResourceKind::Group, &again).await,
        "a Users cursor on Groups",
    );
    // Altered in one character (to another base64url character), or cut short.
    let mut altered = cursor.clone().into_bytes();
    let middle = altered.len() / 2;
    altered[middle] = if altered[middle] == b'A' { b'B' } else { b'A' };
    for (bad, what) in [
        (String::from_utf8(altered).unwrap(), "an altered cursor"),
        (cursor[..cursor.len() - 1].to_owned(), "a truncated cursor"),
        ("A".repeat(1 << 20), "a cursor of 1 MiB"),
    ] {
        let forged = Query {
            paging: Paging::Cursor(Some(bad)),
            ..q.clone()
        };
        invalid(store.query(&t.id, ResourceKind::User, &forged).await, what);
    }
    let other_sort = Query {
        sort_by: Some(AttrPath::simple("userName")),
        paging: Paging::Cursor(Some(cursor)),
        count: Some(1),
        ..Query::default()
    };
    let err = store
        .query(&t.id, ResourceKind::User, &other_sort)
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.scim_type()),
        (400, Some("invalidCursor"))
    );
    let garbage = Query {
        paging: Paging::Cursor(Some("not-a-cursor".into())),
        ..Query::default()
    };
    assert!(matches!(
        store.query(&t.id, ResourceKind::User, &garbage).await,
        Err(StoreError::InvalidCursor(_))
    ));
    let bad = scim_filter::parse_filter("active gt true").unwrap();
    let err = store
        .query(
            &t.id,
            ResourceKind::User,
            &Query {
                filter: Some(bad),
                ..Query::default()
            },
        )
        .await
        .unwrap_err();
    assert_eq!(
        (err.status(), err.scim_type()),
        (400, Some("invalidFilter"))
    );
    let members_of_users = scim_filter::parse_filter("userName[value eq \"x\"]").unwrap();
    assert!(
        store
            .query(
                &t.id,
                ResourceKind::User,
                &Query {
                    filter: Some(members_of_users),
                    ..Query::default()
                }
            )
            .await
            .is_err()
    );
}

/// A page stops at its byte budget ([`Query::max_page_bytes`], RFC 7644 section 3.4.2.4 lets
/// it hold fewer than `count`): always at least one resource, never more bytes than the budget
/// otherwise; `totalResults` still counts every match; and a client that follows `startIndex`
/// plus the resources it got, or `nextCursor`, lists every resource exactly once, Groups with
/// their members weighed too.
pub async fn query_pages_stop_at_their_byte_budget(store: Arc<dyn Store>) {
    let t = new_tenant(store.as_ref()).await;
    let budget = 12_000;
    let mut ids = Vec::new();
    // Documents of about 1 to 7 KB, and one over the budget alone.
    for i in 0..14_usize {
        let mut doc = user(&format!("budget-{i:02}"));
        let size = if i == 9 { 15_000 } else { 1_000 * (1 + i % 7) };
        doc["nickName"] = json!("n".repeat(size));
        ids.push(
            store
                .create(&t.id, ResourceKind::User, doc, &ctx())
                .await
                .unwrap()
                .id,
        );
    }
    let weight = |p: &scim_store_core::QueryPage| -> usize {
        p.resources
            .iter()
            .map(|r| serde_json::to_string(&r.document).unwrap().len())
            .sum()
    };
    for sort_by in [
        None,
        Some(AttrPath::simple("userName")),
        Some(AttrPath::simple("nickName")),
    ] {
        let base = Query {
            sort_by: sort_by.clone(),
            count: Some(5),
            max_page_bytes: Some(budget),
            ..Query::default()
        };
        let all = store
            .query(
                &t.id,
                ResourceKind::User,
                &Query {
                    count: None,
                    max_page_bytes: None,
                    ..base.clone()
                },
            )
            .await
            .unwrap();
        assert_eq!(all.resources.len(), 14);
        let mut expected = ids_of(&all);
        // Index paging, as a client follows it.
        let mut seen = Vec::new();
        let mut start = 1;
        let mut short = 0;
        loop {
            let q = Query {
                paging: Paging::Index { start_index: start },
                ..base.clone()
            };
            let p = store.query(&t.id, ResourceKind::User, &q).await.unwrap();
            assert_eq!(p.total_results, 14, "totalResults counts every match");
            if p.resources.is_empty() {
                break;
            }
            assert!(p.resources.len() <= 5);
            if p.resources.len() > 1 {
                // The stores weigh their stored text; the served JSON is within a few bytes.
                assert!(
                    weight(&p) <= budget + budget / 10,
                    "{sort_by:?}: a page of {} resources weighs {} bytes",
                    p.resources.len(),
                    weight(&p)
                );
            }
            if p.resources.len() < 5 && start + (p.resources.len() as u64) <= 14 {
                short += 1;
            }
            start += p.resources.len() as u64;
            seen.extend(ids_of(&p));
        }
        assert_eq!(seen, expected, "{sort_by:?}: index pages");
        assert!(short > 0, "{sort_by:?}: the budget cut some page short");
        // Cursor paging.
        let mut seen = Vec::new();
        let mut cursor = None;
        loop {
            let q = Query {
                paging: Paging::Cursor(cursor.clone()),
                ..base.clone()
            };
            let p = store.query(&t.id, ResourceKind::User, &q).await.unwrap();
            assert_eq!(p.total_results, 14);
            assert!(!p.resources.is_empty(), "{sort_by:?}: an empty cursor page");
            seen.extend(ids_of(&p));
            match p.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(seen, expected, "{sort_by:?}: cursor pages");
        expected.clear();
    }
    // Without a budget, `count` alone bounds the page.
    let p = store
        .query(
            &t.id,
            ResourceKind::User,
            &Query {
                count: Some(14),
                ..Query::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(p.resources.len(), 14);

    // A Group's members weigh in its page's budget.
    let members: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut groups = Vec::new();
    for i in 0..3 {
        let doc = crate::group(&format!("budget-group-{i}"), &members);
        groups.push(
            store
                .create(&t.id, ResourceKind::Group, doc, &ctx())
                .await
                .unwrap()
                .id,
        );
    }
    let one = store
        .query(
            &t.id,
            ResourceKind::Group,
            &Query {
                count: Some(1),
                ..Query::default()
            },
        )
        .await
        .unwrap();
    let group_bytes = weight(&one);
    let q = Query {
        count: Some(3),
        max_page_bytes: Some(group_bytes + group_bytes / 2),
        ..Query::default()
    };
    let p = store.query(&t.id, ResourceKind::Group, &q).await.unwrap();
    assert_eq!(
        (p.total_results, ids_of(&p)),
        (3, groups[..1].to_vec()),
        "a group of {group_bytes} bytes with its members leaves no room for a second"
    );
    let p = store
        .query(
            &t.id,
            ResourceKind::Group,
            &Query {
                members: scim_store_core::Members::Exclude,
                ..q
            },
        )
        .await
        .unwrap();
    assert_eq!(ids_of(&p), groups, "without their members, all three fit");
}
