//! The provisioning log: what is kept, in which order, what each narrowing selects, paging,
//! and tenants.

use crate::admin::*;
use crate::new_tenant;
use scim_store_core::admin::{
    AdminStore, MAX_PREFIX_BYTES, RequestFilter, RequestRecord, StatusFilter,
};
use scim_store_core::{ResourceKind, StoreError, TenantId, TokenScope};
use std::sync::Arc;

/// Entries are listed newest first: by `at`, and among entries of one instant the one appended
/// last first (within a batch and across batches). Every field comes back as written: bodies,
/// `scimType`, detail, resource type and id, duration, token id and label, `at` to the
/// nanosecond; none is scrubbed.
pub async fn admin_log_lists_newest_first_and_round_trips(store: Arc<dyn AdminStore>) {
    let s = store.as_ref();
    let t = new_tenant(s).await.id;
    let base = shift(clock(), -3_600, 0);
    let at = |seconds: i64| shift(base, seconds, 123_457 * seconds + 1);
    let full = RequestRecord {
        token_id: "tok-b".into(),
        token_label: "okta-prod".into(),
        method: "PATCH".into(),
        path: "/Users/u-1?attributes=userName".into(),
        status: 400,
        scim_type: Some("invalidValue".into()),
        detail: Some("active: \"maybe\" is not a boolean (Zoë's record)".into()),
        duration_us: 987_654_321,
        resource_type: Some(ResourceKind::User),
        resource_id: Some("u-1".into()),
        request_body: Some(
            r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":"maybe"}]}"#.into(),
        ),
        response_body: Some(
            r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:Error"],"status":"400","scimType":"invalidValue"}"#.into(),
        ),
        ..record(t, "e1", at(1))
    };
    let group = RequestRecord {
        method: "POST".into(),
        path: "/Groups".into(),
        status: 201,
        duration_us: 0,
        resource_type: Some(ResourceKind::Group),
        resource_id: Some("g-1".into()),
        request_body: Some(r#"{"displayName":"Parking"}"#.into()),
        ..record(t, "e3", at(3))
    };
    append(
        s,
        vec![
            full.clone(),
            group.clone(),
            record(t, "e5", at(5)),
            record(t, "e6", at(5)),
        ],
    )
    .await;
    append(
        s,
        vec![
            record(t, "e2", at(2)),
            record(t, "e4", at(3)),
            record(t, "e0", at(0)),
        ],
    )
    .await;
    let entries = all_entries(s, &t, &RequestFilter::default()).await;
    let ids: Vec<&str> = entries
        .iter()
        .map(|e| e.record.request_id.as_str())
        .collect();
    assert_eq!(
        ids,
        ["e6", "e5", "e4", "e3", "e2", "e1", "e0"],
        "newest first, then last appended first"
    );
    let expected = [
        record(t, "e6", at(5)),
        record(t, "e5", at(5)),
        record(t, "e4", at(3)),
        group,
        record(t, "e2", at(2)),
        full,
        record(t, "e0", at(0)),
    ];
    for (entry, expected) in entries.iter().zip(&expected) {
        assert_eq!(&entry.record, expected, "an entry comes back as written");
        assert!(!entry.scrubbed, "{entry:?}");
    }
    // A page of the default size holds them all, and says there is nothing more.
    let page = s.requests(&t, &RequestFilter::default()).await.unwrap();
    assert_eq!(page.entries.len(), 7);
    assert_eq!(page.next, None);
}

/// The entries the narrowing checks select from, `r1` (oldest) to `r7`, one second apart
/// after `base`.
fn varied(t: TenantId, base: scim_schema::DateTime) -> Vec<RequestRecord> {
    let at = |seconds: i64| shift(base, seconds, 0);
    let error = |id: &str, seconds: i64, status: u16, scim_type: Option<&str>, detail: &str| {
        RequestRecord {
            status,
            scim_type: scim_type.map(str::to_owned),
            detail: Some(detail.to_owned()),
            response_body: Some(format!(r#"{{"status":"{status}"}}"#)),
            ..record(t, id, at(seconds))
        }
    };
    vec![
        RequestRecord {
            path: "/Users?filter=userName%20eq%20%22bjensen%22".into(),
            ..record(t, "r1", at(1))
        },
        RequestRecord {
            method: "POST".into(),
            status: 201,
            resource_type: Some(ResourceKind::User),
            resource_id: Some("u-1".into()),
            ..record(t, "r2", at(2))
        },
        RequestRecord {
            method: "PATCH".into(),
            token_id: "tok-b".into(),
            token_label: "okta".into(),
            resource_type: Some(ResourceKind::User),
            resource_id: Some("u-1".into()),
            ..error("r3", 3, 400, Some("invalidValue"), "100% invalid")
        },
        RequestRecord {
            method: "PUT".into(),
            token_id: "tok-b".into(),
            token_label: "okta".into(),
            resource_type: Some(ResourceKind::Group),
            resource_id: Some("g-1".into()),
            ..error("r4", 4, 409, Some("uniqueness"), "a_b is taken")
        },
        RequestRecord {
            method: "DELETE".into(),
            resource_type: Some(ResourceKind::User),
            resource_id: Some("u-2".into()),
            ..error("r5", 5, 404, None, "User u-2 not found")
        },
        RequestRecord {
            method: "POST".into(),
            token_id: "tok-b".into(),
            token_label: "okta".into(),
            ..error("r6", 6, 500, None, "axb storage failure")
        },
        RequestRecord {
            method: "PATCH".into(),
            resource_type: Some(ResourceKind::User),
            resource_id: Some("u-2".into()),
            ..error("r7", 7, 400, Some("invalidPath"), "100x invalid path")
        },
    ]
}

/// Each narrowing of a [`RequestFilter`] selects exactly its entries, newest first: status
/// (exact and class), method, resource type, resource id, token, `since` (inclusive) and
/// `until` (exclusive), and several at once.
pub async fn admin_log_filters_select_exactly_their_entries(store: Arc<dyn AdminStore>) {
    let s = store.as_ref();
    let t = new_tenant(s).await.id;
    let base = shift(clock(), -7_200, 0);
    append(s, varied(t, base)).await;
    let cases: Vec<(&str, RequestFilter, Vec<&str>)> = vec![
        (
            "nothing",
            RequestFilter::default(),
            vec!["r7", "r6", "r5", "r4", "r3", "r2", "r1"],
        ),
        (
            "status 400",
            RequestFilter {
                status: Some(StatusFilter::Exact(400)),
                ..Default::default()
            },
            vec!["r7", "r3"],
        ),
        (
            "status 201",
            RequestFilter {
                status: Some(StatusFilter::Exact(201)),
                ..Default::default()
            },
            vec!["r2"],
        ),
        (
            "status 418",
            RequestFilter {
                status: Some(StatusFilter::Exact(418)),
                ..Default::default()
            },
            vec![],
        ),
        (
            "4xx",
            RequestFilter {
                status: Some(StatusFilter::Class(4)),
                ..Default::default()
            },
            vec!["r7", "r5", "r4", "r3"],
        ),
        (
            "2xx",
            RequestFilter {
                status: Some(StatusFilter::Class(2)),
                ..Default::default()
            },
            vec!["r2", "r1"],
        ),
        (
            "5xx",
            RequestFilter {
                status: Some(StatusFilter::Class(5)),
                ..Default::default()
            },
            vec!["r6"],
        ),
        (
            "3xx",
            RequestFilter {
                status: Some(StatusFilter::Class(3)),
                ..Default::default()
            },
            vec![],
        ),
        (
            "PATCH",
            RequestFilter {
                method: Some("PATCH".into()),
                ..Default::default()
            },
            vec!["r7", "r3"],
        ),
        (
            "POST",
            RequestFilter {
                method: Some("POST".into()),
                ..Default::default()
            },
            vec!["r6", "r2"],
        ),
        (
            "User",
            RequestFilter {
                resource_type: Some(ResourceKind::User),
                ..Default::default()
            },
            vec!["r7", "r5", "r3", "r2"],
        ),
        (
            "Group",
            RequestFilter {
                resource_type: Some(ResourceKind::Group),
                ..Default::default()
            },
            vec!["r4"],
        ),
        (
            "resource u-1",
            RequestFilter {
                resource_id: Some("u-1".into()),
                ..Default::default()
            },
            vec!["r3", "r2"],
        ),
        (
            "User g-1",
            RequestFilter {
                resource_type: Some(ResourceKind::User),
                resource_id: Some("g-1".into()),
                ..Default::default()
            },
            vec![],
        ),
        (
            "token tok-b",
            RequestFilter {
                token_id: Some("tok-b".into()),
                ..Default::default()
            },
            vec!["r6", "r4", "r3"],
        ),
        (
            "token tok-z",
            RequestFilter {
                token_id: Some("tok-z".into()),
                ..Default::default()
            },
            vec![],
        ),
        (
            "since r3 (inclusive), until r6 (exclusive)",
            RequestFilter {
                since: Some(shift(base, 3, 0)),
                until: Some(shift(base, 6, 0)),
                ..Default::default()
            },
            vec!["r5", "r4", "r3"],
        ),
        (
            "since a nanosecond after r3",
            RequestFilter {
                since: Some(shift(base, 3, 1)),
                ..Default::default()
            },
            vec!["r7", "r6", "r5", "r4"],
        ),
        (
            "until a nanosecond after r2",
            RequestFilter {
                until: Some(shift(base, 2, 1)),
                ..Default::default()
            },
            vec!["r2", "r1"],
        ),
        (
            "PATCH 400 by tok-a",
            RequestFilter {
                status: Some(StatusFilter::Exact(400)),
                method: Some("PATCH".into()),
                token_id: Some("tok-a".into()),
                ..Default::default()
            },
            vec!["r7"],
        ),
        (
            "4xx about Users before r7",
            RequestFilter {
                status: Some(StatusFilter::Class(4)),
                resource_type: Some(ResourceKind::User),
                until: Some(shift(base, 7, 0)),
                ..Default::default()
            },
            vec!["r5", "r3"],
        ),
        (
            "person u-2 (by resource id)",
            RequestFilter {
                person: Some("u-2".into()),
                ..Default::default()
            },
            vec!["r7", "r5"],
        ),
        (
            "person g-1 (a Group is no person)",
            RequestFilter {
                person: Some("g-1".into()),
                ..Default::default()
            },
            vec![],
        ),
    ];
    for (what, filter, expected) in cases {
        assert_eq!(listed(s, &t, &filter).await, expected, "{what}: {filter:?}");
    }
}

/// The `scimType` and detail prefixes select the errors whose text starts with them, case-
/// sensitively; `%` and `_` in a prefix are the characters they are, not wildcards. A prefix
/// must be 1 to [`MAX_PREFIX_BYTES`] bytes ([`RequestFilter::check`]).
pub async fn admin_log_prefixes_match_literally_and_are_bounded(store: Arc<dyn AdminStore>) {
    let s = store.as_ref();
    let t = new_tenant(s).await.id;
    let base = shift(clock(), -7_200, 0);
    append(s, varied(t, base)).await;
    let scim_type = |prefix: &str| RequestFilter {
        scim_type_prefix: Some(prefix.to_owned()),
        ..Default::default()
    };
    let detail = |prefix: &str| RequestFilter {
        detail_prefix: Some(prefix.to_owned()),
        ..Default::default()
    };
    let cases: Vec<(RequestFilter, Vec<&str>)> = vec![
        (scim_type("invalid"), vec!["r7", "r3"]),
        (scim_type("invalidV"), vec!["r3"]),
        (scim_type("invalidValue"), vec!["r3"]),
        (scim_type("invalidValueX"), vec![]),
        (scim_type("Invalid"), vec![]),
        (scim_type("uniq"), vec!["r4"]),
        (scim_type("nvalid"), vec![]),
        (detail("100"), vec!["r7", "r3"]),
        (detail("100%"), vec!["r3"]),
        (detail("100% invalid"), vec!["r3"]),
        (detail("10%"), vec![]),
        (detail("a_b"), vec!["r4"]),
        (detail("a_"), vec!["r4"]),
        (detail("a%"), vec![]),
        (detail("_"), vec![]),
        (detail("%"), vec![]),
        (detail("ax"), vec!["r6"]),
        (detail("User u-2"), vec!["r5"]),
        (detail("user u-2"), vec![]),
        (
            RequestFilter {
                detail_prefix: Some("100".into()),
                status: Some(StatusFilter::Exact(400)),
                method: Some("PATCH".into()),
                scim_type_prefix: Some("invalidP".into()),
                ..Default::default()
            },
            vec!["r7"],
        ),
    ];
    for (filter, expected) in cases {
        filter.check().unwrap();
        assert_eq!(listed(s, &t, &filter).await, expected, "{filter:?}");
    }

    let longest = "x".repeat(MAX_PREFIX_BYTES);
    let too_long = "x".repeat(MAX_PREFIX_BYTES + 1);
    // 86 three-byte characters: 258 bytes, though only 86 characters.
    let too_long_in_bytes = "€".repeat(86);
    for (what, filter) in [
        ("an empty scimType prefix", scim_type("")),
        ("an empty detail prefix", detail("")),
        ("a scimType prefix of 257 bytes", scim_type(&too_long)),
        ("a detail prefix of 257 bytes", detail(&too_long)),
        ("a detail prefix of 258 bytes", detail(&too_long_in_bytes)),
    ] {
        match filter.check() {
            Err(StoreError::Invalid { .. }) => {}
            other => panic!("{what}: expected Invalid, got {other:?}"),
        }
    }
    scim_type(&longest).check().unwrap();
    detail(&longest).check().unwrap();
    assert_eq!(listed(s, &t, &detail(&longest)).await, Vec::<String>::new());
}

/// Cursor paging: pages of two over five entries are three, covering every entry once, newest
/// first, the last without a next cursor; an entry appended meanwhile (newer) does not shift
/// the pages; narrowings hold across pages.
pub async fn admin_log_pages_with_cursors(store: Arc<dyn AdminStore>) {
    let s = store.as_ref();
    let t = new_tenant(s).await.id;
    let base = shift(clock(), -600, 0);
    let records: Vec<RequestRecord> = (1..=5)
        .map(|i| RequestRecord {
            status: if i % 2 == 0 { 400 } else { 200 },
            ..record(t, &format!("p{i}"), shift(base, i, 0))
        })
        .collect();
    append(s, records).await;
    let mut filter = RequestFilter {
        limit: 2,
        ..Default::default()
    };
    let mut pages: Vec<Vec<String>> = Vec::new();
    loop {
        let page = s.requests(&t, &filter).await.unwrap();
        assert!(page.entries.len() <= 2, "{page:?}");
        pages.push(
            page.entries
                .into_iter()
                .map(|e| e.record.request_id)
                .collect(),
        );
        if pages.len() == 1 {
            // Newer than everything listed: it belongs before the first page.
            append(s, vec![record(t, "p6", shift(base, 6, 0))]).await;
        }
        match page.next {
            Some(next) => filter.cursor = Some(next),
            None => break,
        }
        assert!(pages.len() < 10, "the pages never end: {pages:?}");
    }
    assert_eq!(
        pages,
        [vec!["p5", "p4"], vec!["p3", "p2"], vec!["p1"]],
        "three pages, each entry once, newest first"
    );
    // A fresh listing sees the new entry first.
    let first = s
        .requests(
            &t,
            &RequestFilter {
                limit: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(first.entries[0].record.request_id, "p6");
    assert!(first.next.is_some());

    // Narrowed: the errors, one at a time.
    let mut filter = RequestFilter {
        status: Some(StatusFilter::Class(4)),
        limit: 1,
        ..Default::default()
    };
    let mut errors = Vec::new();
    for _ in 0..10 {
        let page = s.requests(&t, &filter).await.unwrap();
        errors.extend(page.entries.into_iter().map(|e| e.record.request_id));
        match page.next {
            Some(next) => filter.cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(errors, ["p4", "p2"]);
}

/// A cursor is good only for the tenant it was issued for: another tenant's listing refuses
/// it, as it refuses a garbled or truncated one ([`StoreError::InvalidCursor`]).
pub async fn admin_log_cursors_are_refused_elsewhere(store: Arc<dyn AdminStore>) {
    let s = store.as_ref();
    let a = new_tenant(s).await.id;
    let b = new_tenant(s).await.id;
    let base = shift(clock(), -600, 0);
    append(
        s,
        (1..=3)
            .flat_map(|i| {
                [
                    record(a, &format!("a{i}"), shift(base, i, 0)),
                    record(b, &format!("b{i}"), shift(base, i, 0)),
                ]
            })
            .collect(),
    )
    .await;
    let first = s
        .requests(
            &a,
            &RequestFilter {
                limit: 1,
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let cursor = first.next.expect("more after the first entry");
    let with = |cursor: &str| RequestFilter {
        cursor: Some(cursor.to_owned()),
        limit: 1,
        ..Default::default()
    };
    // It works for its tenant...
    let second = s.requests(&a, &with(&cursor)).await.unwrap();
    assert_eq!(second.entries[0].record.request_id, "a2");
    // ...and nowhere else.
    expect_invalid_cursor(
        s.requests(&b, &with(&cursor)).await,
        "another tenant's cursor",
    );
    expect_invalid_cursor(
        s.requests(&b, &with("not-a-cursor")).await,
        "a garbled cursor",
    );
    expect_invalid_cursor(
        s.requests(&a, &with(&cursor[..cursor.len() / 2])).await,
        "a truncated cursor",
    );
    expect_invalid_cursor(
        s.requests(&a, &with(&format!("{cursor}AAAA"))).await,
        "a cursor with bytes added",
    );
}

/// A tenant never sees another's log: not in a listing (whatever the narrowing), not by
/// request id, not in its activity.
pub async fn admin_log_is_isolated_between_tenants(store: Arc<dyn AdminStore>) {
    let s = store.as_ref();
    let a = new_tenant(s).await.id;
    let b = new_tenant(s).await.id;
    let a_token = s.issue_token(&a, "entra", TokenScope::Scim).await.unwrap();
    let now = clock();
    let of_a = |id: &str, seconds: i64| RequestRecord {
        token_id: a_token.id.clone(),
        token_label: "entra".into(),
        status: 400,
        scim_type: Some("invalidValue".into()),
        detail: Some("bad".into()),
        resource_type: Some(ResourceKind::User),
        resource_id: Some("u-a".into()),
        ..record(a, id, shift(now, -seconds, 0))
    };
    append(s, vec![of_a("a1", 60), of_a("shared", 30)]).await;
    append(
        s,
        vec![RequestRecord {
            token_id: "tok-of-b".into(),
            ..record(b, "b1", shift(now, -45, 0))
        }],
    )
    .await;

    assert_eq!(
        listed(s, &a, &RequestFilter::default()).await,
        ["shared", "a1"]
    );
    assert_eq!(listed(s, &b, &RequestFilter::default()).await, ["b1"]);
    for filter in [
        RequestFilter {
            token_id: Some(a_token.id.clone()),
            ..Default::default()
        },
        RequestFilter {
            resource_id: Some("u-a".into()),
            ..Default::default()
        },
        RequestFilter {
            person: Some("u-a".into()),
            ..Default::default()
        },
        RequestFilter {
            status: Some(StatusFilter::Class(4)),
            ..Default::default()
        },
        RequestFilter {
            scim_type_prefix: Some("invalid".into()),
            ..Default::default()
        },
    ] {
        assert!(
            listed(s, &b, &filter).await.is_empty(),
            "tenant B sees A's entries with {filter:?}"
        );
        assert!(!listed(s, &a, &filter).await.is_empty(), "{filter:?}");
    }
    assert!(s.request(&b, "a1").await.unwrap().is_none());
    assert!(s.request(&b, "shared").await.unwrap().is_none());
    assert_eq!(
        s.request(&a, "shared").await.unwrap().unwrap().record,
        of_a("shared", 30)
    );
    assert!(s.request(&a, "b1").await.unwrap().is_none());

    let activity = s.request_activity(&b, now).await.unwrap();
    assert!(
        activity
            .iter()
            .all(|t| t.token_id != a_token.id && t.requests_day <= 1 && t.errors_day == 0),
        "tenant B's activity shows A's tokens: {activity:?}"
    );
    let activity = s.request_activity(&a, now).await.unwrap();
    let mine = activity
        .iter()
        .find(|t| t.token_id == a_token.id)
        .unwrap_or_else(|| panic!("A's token's activity: {activity:?}"));
    assert_eq!((mine.requests_hour, mine.errors_hour), (2, 2));
    assert!(
        activity.iter().all(|t| t.token_id != "tok-of-b"),
        "tenant A's activity shows B's token: {activity:?}"
    );
}

/// `request` finds an entry by its request id, as written; `None` for an unknown one.
pub async fn admin_log_finds_a_request_by_id(store: Arc<dyn AdminStore>) {
    let s = store.as_ref();
    let t = new_tenant(s).await.id;
    let base = shift(clock(), -600, 0);
    let wanted = RequestRecord {
        method: "DELETE".into(),
        path: "/Users/u-9".into(),
        status: 204,
        resource_type: Some(ResourceKind::User),
        resource_id: Some("u-9".into()),
        ..record(t, "0b5e4c1e-req", shift(base, 2, 0))
    };
    append(
        s,
        vec![
            record(t, "before", shift(base, 1, 0)),
            wanted.clone(),
            record(t, "after", shift(base, 3, 0)),
        ],
    )
    .await;
    let found = s
        .request(&t, "0b5e4c1e-req")
        .await
        .unwrap()
        .expect("the entry of a logged request");
    assert_eq!(found.record, wanted);
    assert!(!found.scrubbed);
    assert_eq!(
        s.request(&t, "after")
            .await
            .unwrap()
            .unwrap()
            .record
            .request_id,
        "after"
    );
    assert!(s.request(&t, "unknown").await.unwrap().is_none());
    assert!(
        s.request(&t, "0b5e4c1e").await.unwrap().is_none(),
        "no prefix match"
    );
    assert!(s.request(&t, "").await.unwrap().is_none());
}

/// A batch holding records of a tenant deleted meanwhile keeps the others' records and drops
/// those; deleting a tenant removes its log (nothing of it is listed, found, or pruned later).
pub async fn admin_log_of_a_deleted_tenant_is_dropped(store: Arc<dyn AdminStore>) {
    let s = store.as_ref();
    let a = new_tenant(s).await.id;
    let gone = new_tenant(s).await.id;
    let later = new_tenant(s).await.id;
    let base = shift(clock(), -3_600, 0);
    s.delete_tenant(&gone).await.unwrap();
    append(
        s,
        vec![
            record(a, "a1", shift(base, 1, 0)),
            record(gone, "g1", shift(base, 2, 0)),
            record(a, "a2", shift(base, 3, 0)),
            record(gone, "g2", shift(base, 4, 0)),
        ],
    )
    .await;
    assert_eq!(
        listed(s, &a, &RequestFilter::default()).await,
        ["a2", "a1"],
        "the rest of the batch is kept"
    );
    expect_nothing_of(s, &gone, "g1").await;

    // A tenant with a log, deleted.
    append(
        s,
        vec![
            record(later, "l1", shift(base, 5, 0)),
            record(later, "l2", shift(base, 6, 0)),
        ],
    )
    .await;
    assert_eq!(
        listed(s, &later, &RequestFilter::default()).await,
        ["l2", "l1"]
    );
    s.delete_tenant(&later).await.unwrap();
    expect_nothing_of(s, &later, "l1").await;
    // Nothing of either is left to prune: only A's two entries are.
    let pruned = s
        .prune_requests(
            scim_store_core::admin::Retention {
                max_age_seconds: 0,
                max_bytes: u64::MAX,
            },
            clock(),
            1_000,
        )
        .await
        .unwrap();
    assert_eq!(pruned.entries, 2, "{pruned:?}");
    assert!(listed(s, &a, &RequestFilter::default()).await.is_empty());
}

/// A deleted tenant's log is gone: listing it finds nothing (or the tenant is not found).
async fn expect_nothing_of(s: &dyn AdminStore, t: &TenantId, request_id: &str) {
    match s.requests(t, &RequestFilter::default()).await {
        Ok(page) => assert!(page.entries.is_empty(), "{page:?}"),
        Err(StoreError::TenantNotFound(_)) => {}
        Err(e) => panic!("list a deleted tenant's log: {e}"),
    }
    match s.request(t, request_id).await {
        Ok(found) => assert!(found.is_none(), "{found:?}"),
        Err(StoreError::TenantNotFound(_)) => {}
        Err(e) => panic!("find in a deleted tenant's log: {e}"),
    }
}
