//! What tokens did lately (the activity behind sync health), and pruning: by age, by size,
//! within a budget, and of the activity counters.

use crate::admin::*;
use crate::new_tenant;
use scim_schema::DateTime;
use scim_store_core::admin::{
    AdminStore, LastError, Pruned, RequestFilter, RequestRecord, Retention, TokenActivity,
};
use scim_store_core::{TenantId, TokenScope};
use std::sync::Arc;

const MINUTE: i64 = 60;
const HOUR: i64 = 3_600;
const DAY: i64 = 86_400;

/// The activity of `token_id` at `now` (nothing, if the store lists nothing for it).
async fn activity_of(
    s: &dyn AdminStore,
    t: &TenantId,
    token_id: &str,
    now: DateTime,
) -> TokenActivity {
    let all = s.request_activity(t, now).await.unwrap();
    let mut mine = all.iter().filter(|a| a.token_id == token_id);
    let found = mine.next().cloned();
    assert!(mine.next().is_none(), "one activity per token: {all:?}");
    found.unwrap_or_else(|| TokenActivity::none(token_id))
}

/// A record of `token` (labelled `label`) at `at`, answered with `status`.
fn by(
    t: TenantId,
    token: &scim_store_core::IssuedToken,
    label: &str,
    id: &str,
    at: DateTime,
    status: u16,
) -> RequestRecord {
    RequestRecord {
        token_id: token.id.clone(),
        token_label: label.to_owned(),
        status,
        ..record(t, id, at)
    }
}

/// Per token, the requests and errors of the last hour and the last day, the last request,
/// and the last error (the newest one in the retained log, even outside the day); a token
/// that never called shows nothing.
pub async fn admin_activity_counts_hour_and_day_per_token(store: Arc<dyn AdminStore>) {
    let s = store.as_ref();
    let t = new_tenant(s).await.id;
    let entra = s.issue_token(&t, "entra", TokenScope::Scim).await.unwrap();
    let okta = s.issue_token(&t, "okta", TokenScope::Scim).await.unwrap();
    let idle = s.issue_token(&t, "idle", TokenScope::Scim).await.unwrap();
    let now = clock();
    let at = |seconds: i64| shift(now, -seconds, 0);
    let conflict = RequestRecord {
        scim_type: Some("uniqueness".into()),
        detail: Some("userName \"bjensen\" is already in use".into()),
        ..by(t, &entra, "entra", "a-30m", at(30 * MINUTE), 409)
    };
    // Out of order: the newest error is not the last appended.
    append(
        s,
        vec![
            RequestRecord {
                scim_type: Some("invalidSyntax".into()),
                ..by(t, &entra, "entra", "a-2d", at(2 * DAY), 400)
            },
            conflict.clone(),
            RequestRecord {
                detail: Some("storage failure".into()),
                ..by(t, &entra, "entra", "a-3h", at(3 * HOUR), 500)
            },
            by(t, &okta, "okta", "o-25h", at(25 * HOUR), 404),
        ],
    )
    .await;
    append(
        s,
        vec![
            by(t, &entra, "entra", "a-now", now, 200),
            by(t, &okta, "okta", "o-10m", at(10 * MINUTE), 200),
        ],
    )
    .await;

    let a = activity_of(s, &t, &entra.id, now).await;
    assert_eq!(
        (a.requests_hour, a.errors_hour, a.requests_day, a.errors_day),
        (2, 1, 3, 2),
        "entra: requests and errors in the hour and the day: {a:?}"
    );
    assert_eq!(a.last_request, Some(now), "{a:?}");
    assert_eq!(
        a.last_error,
        Some(LastError {
            request_id: "a-30m".into(),
            at: conflict.at,
            status: 409,
            scim_type: conflict.scim_type.clone(),
            detail: conflict.detail.clone(),
        }),
        "the newest error"
    );

    let o = activity_of(s, &t, &okta.id, now).await;
    assert_eq!(
        (o.requests_hour, o.errors_hour, o.requests_day, o.errors_day),
        (1, 0, 1, 0),
        "okta: {o:?}"
    );
    assert_eq!(o.last_request, Some(at(10 * MINUTE)));
    let last_error = o
        .last_error
        .expect("an error more than a day old is still the last");
    assert_eq!(
        (
            last_error.request_id.as_str(),
            last_error.status,
            last_error.at
        ),
        ("o-25h", 404, at(25 * HOUR))
    );

    let i = activity_of(s, &t, &idle.id, now).await;
    assert_eq!(
        i,
        TokenActivity::none(&idle.id),
        "a token that never called"
    );

    // 45 minutes later the 30-minute-old error has left the hour, not the day.
    let later = shift(now, 45 * MINUTE, 0);
    let a = activity_of(s, &t, &entra.id, later).await;
    assert_eq!(
        (a.requests_hour, a.errors_hour, a.requests_day, a.errors_day),
        (1, 0, 3, 2),
        "entra 45 minutes later: {a:?}"
    );
}

/// Pruning by age removes, in every tenant, the entries before `now - max_age` (an entry at
/// exactly that instant stays) and keeps the rest; a second pass finds nothing to do.
pub async fn admin_prune_by_age(store: Arc<dyn AdminStore>) {
    let s = store.as_ref();
    let t = new_tenant(s).await.id;
    let u = new_tenant(s).await.id;
    let now = clock();
    let max_age = 30 * DAY;
    let at = |seconds: i64, nanos: i64| shift(now, -seconds, nanos);
    append(
        s,
        vec![
            record(t, "old-40d", at(40 * DAY, 0)),
            record(t, "old-31d", at(31 * DAY, 0)),
            record(t, "just-past", at(max_age, -1)),
            record(t, "edge", at(max_age, 0)),
            record(t, "young-29d", at(29 * DAY, 0)),
            record(t, "young-1d", at(DAY, 0)),
            record(u, "u-old", at(35 * DAY, 0)),
            record(u, "u-new", at(HOUR, 0)),
        ],
    )
    .await;
    let retention = Retention {
        max_age_seconds: max_age,
        ..Retention::default()
    };
    let pruned = s.prune_requests(retention, now, 1_000).await.unwrap();
    assert_eq!(
        pruned,
        Pruned {
            entries: 4,
            more: false
        }
    );
    assert_eq!(
        listed(s, &t, &RequestFilter::default()).await,
        ["young-1d", "young-29d", "edge"]
    );
    assert_eq!(listed(s, &u, &RequestFilter::default()).await, ["u-new"]);
    assert!(s.request(&t, "old-40d").await.unwrap().is_none());
    let again = s.prune_requests(retention, now, 1_000).await.unwrap();
    assert_eq!(again, Pruned::default(), "nothing more to prune");
}

/// Pruning by size removes a tenant's oldest entries until what it keeps
/// ([`RequestRecord::bytes`]) is within `max_bytes`, and leaves a tenant within it alone; what
/// is removed no longer counts against the tenant.
pub async fn admin_prune_by_size(store: Arc<dyn AdminStore>) {
    let s = store.as_ref();
    let t = new_tenant(s).await.id;
    let u = new_tenant(s).await.id;
    let now = clock();
    let base = shift(now, -HOUR, 0);
    let sized = |i: i64, body: usize| RequestRecord {
        method: "POST".into(),
        request_body: Some("x".repeat(body)),
        ..record(t, &format!("s{i}"), shift(base, i, 0))
    };
    let records: Vec<RequestRecord> = (1..=5).map(|i| sized(i, 100 * i as usize)).collect();
    let bytes: Vec<u64> = records.iter().map(RequestRecord::bytes).collect();
    // The two newest fit; the third newest does not.
    let max_bytes = bytes[4] + bytes[3] + bytes[2] / 2;
    let small = record(u, "u1", shift(base, 1, 0));
    assert!(small.bytes() < max_bytes);
    append(s, records).await;
    append(s, vec![small]).await;

    let retention = Retention {
        max_bytes,
        ..Retention::default()
    };
    let pruned = s.prune_requests(retention, now, 1_000).await.unwrap();
    assert_eq!(
        pruned,
        Pruned {
            entries: 3,
            more: false
        },
        "over {max_bytes} bytes: {bytes:?}"
    );
    assert_eq!(listed(s, &t, &RequestFilter::default()).await, ["s5", "s4"]);
    assert_eq!(listed(s, &u, &RequestFilter::default()).await, ["u1"]);

    // What was removed no longer counts: one more entry of s3's size puts the tenant over by
    // s4 only.
    append(s, vec![sized(6, 300)]).await;
    let pruned = s.prune_requests(retention, now, 1_000).await.unwrap();
    assert_eq!(pruned.entries, 1, "{pruned:?}");
    assert_eq!(listed(s, &t, &RequestFilter::default()).await, ["s6", "s5"]);
    assert_eq!(listed(s, &u, &RequestFilter::default()).await, ["u1"]);
}

/// A pass removes at most `budget` entries and says when more is due; repeated passes finish
/// the work, and then there is nothing more.
pub async fn admin_prune_within_its_budget(store: Arc<dyn AdminStore>) {
    let s = store.as_ref();
    let t = new_tenant(s).await.id;
    let now = clock();
    let mut records: Vec<RequestRecord> = (0..5)
        .map(|i| record(t, &format!("old{i}"), shift(now, -40 * DAY + i, 0)))
        .collect();
    records.push(record(t, "new0", shift(now, -DAY, 0)));
    records.push(record(t, "new1", shift(now, -HOUR, 0)));
    append(s, records).await;

    let retention = Retention::default();
    let first = s.prune_requests(retention, now, 2).await.unwrap();
    assert_eq!(
        first,
        Pruned {
            entries: 2,
            more: true
        },
        "the budget stops the pass"
    );
    let mut total = first.entries;
    let mut calls = 1;
    let mut last = first;
    while last.more {
        calls += 1;
        assert!(calls <= 10, "pruning never finishes");
        last = s.prune_requests(retention, now, 2).await.unwrap();
        assert!(last.entries <= 2, "over the budget: {last:?}");
        total += last.entries;
    }
    assert_eq!(total, 5);
    assert_eq!(
        listed(s, &t, &RequestFilter::default()).await,
        ["new1", "new0"]
    );
    assert_eq!(
        s.prune_requests(retention, now, 2).await.unwrap(),
        Pruned::default()
    );
}

/// Pruning removes the activity counters older than two days (while the entries themselves
/// stay as long as their retention says), and keeps younger ones.
pub async fn admin_prune_removes_old_activity(store: Arc<dyn AdminStore>) {
    let s = store.as_ref();
    let t = new_tenant(s).await.id;
    let entra = s.issue_token(&t, "entra", TokenScope::Scim).await.unwrap();
    let okta = s.issue_token(&t, "okta", TokenScope::Scim).await.unwrap();
    let now = clock();
    let old = shift(now, -3 * DAY, 0);
    append(
        s,
        vec![
            by(t, &entra, "entra", "e-3d", old, 500),
            by(t, &okta, "okta", "o-20h", shift(now, -20 * HOUR, 0), 200),
        ],
    )
    .await;
    // Seen from just after it, the old request counts.
    let then = shift(old, 10 * MINUTE, 0);
    let before = activity_of(s, &t, &entra.id, then).await;
    assert_eq!(
        (
            before.requests_hour,
            before.errors_hour,
            before.requests_day
        ),
        (1, 1, 1),
        "{before:?}"
    );
    assert_eq!(
        activity_of(s, &t, &okta.id, now).await.requests_day,
        1,
        "before pruning"
    );

    let pruned = s
        .prune_requests(Retention::default(), now, 1_000)
        .await
        .unwrap();
    assert_eq!(pruned.entries, 0, "both entries are within 30 days");

    let after = activity_of(s, &t, &entra.id, then).await;
    assert_eq!(
        (
            after.requests_hour,
            after.errors_hour,
            after.requests_day,
            after.errors_day
        ),
        (0, 0, 0, 0),
        "the counters of three days ago are gone: {after:?}"
    );
    assert_eq!(
        activity_of(s, &t, &okta.id, now).await.requests_day,
        1,
        "the counters of 20 hours ago stay"
    );
    assert_eq!(
        listed(s, &t, &RequestFilter::default()).await,
        ["o-20h", "e-3d"],
        "the entries themselves stay"
    );
}
