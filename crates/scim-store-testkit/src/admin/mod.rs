//! The operator checks every [`AdminStore`] must pass (issue 18): the provisioning log (what
//! is kept, listed newest first, narrowed by every field of a [`RequestFilter`], paged with
//! cursors, isolated per tenant), the per-token activity behind sync health, pruning by age and
//! size within a budget, operator tokens, and the scrub of the log when a person is anonymised.
//!
//! ```ignore
//! fn sqlite(schemas: ResourceSchemas) -> AdminFixture { /* open a store in a temp dir */ }
//! scim_store_testkit::admin_store_tests!(sqlite);
//! ```
//!
//! Pruning and operator tokens are server-wide, so each check needs a store of its own (the
//! macro makes one per check): a check counts what a pass prunes and lists every operator token.
//!
//! The activity windows and pruning are relative to an instant the checks pass in, so the
//! checks place their entries at fixed offsets from the wall clock.
//!
//! One file per topic: the log (`log.rs`: listing, narrowing, paging, tenants), its people
//! (`people.rs`: the person narrowing and the anonymisation scrub), activity and pruning
//! (`activity.rs`), and operator tokens (`operators.rs`).

mod activity;
mod log;
mod operators;
mod people;

pub use activity::*;
pub use log::*;
pub use operators::*;
pub use people::*;

use crate::schemas;
use scim_schema::DateTime;
use scim_store_core::admin::{AdminStore, LoggedRequest, RequestFilter, RequestRecord};
use scim_store_core::{StoreError, TenantId};
use std::any::Any;
use std::future::Future;
use std::sync::Arc;

/// An admin store under test, and whatever must live as long as it (e.g. its temporary
/// directory).
pub struct AdminFixture {
    /// The store.
    pub store: Arc<dyn AdminStore>,
    /// Dropped after the test.
    pub guard: Box<dyn Any + Send + Sync>,
}

/// Runs one admin check on a fresh fixture made with the kit's [`schemas`], on a
/// multi-threaded runtime.
pub fn run_admin<M, F, Fut>(make: M, check: F)
where
    M: FnOnce(scim_store_core::ResourceSchemas) -> AdminFixture,
    F: FnOnce(Arc<dyn AdminStore>) -> Fut,
    Fut: Future<Output = ()>,
{
    let fixture = make(schemas());
    crate::kit_runtime().block_on(check(Arc::clone(&fixture.store)));
    drop(fixture);
}

/// Generates one `#[test]` per admin check for a backend; `$make` is a
/// `fn(ResourceSchemas) -> AdminFixture`. With `skip_if = $skip` (a `fn() -> bool`), each test
/// returns at once when `$skip()` is true, as with [`store_tests!`](crate::store_tests).
/// The tests are named `admin_*`, so it can run in one test file with the other macros.
#[macro_export]
macro_rules! admin_store_tests {
    ($make:path) => {
        $crate::admin_store_tests!($make, skip_if = $crate::never_skip);
    };
    ($make:path, skip_if = $skip:path) => {
        $crate::admin_store_tests!(@each $make, $skip;
            admin_log_lists_newest_first_and_round_trips,
            admin_log_filters_select_exactly_their_entries,
            admin_log_prefixes_match_literally_and_are_bounded,
            admin_log_pages_with_cursors,
            admin_log_cursors_are_refused_elsewhere,
            admin_log_is_isolated_between_tenants,
            admin_log_finds_a_request_by_id,
            admin_log_of_a_deleted_tenant_is_dropped,
            admin_log_filters_by_person,
            admin_activity_counts_hour_and_day_per_token,
            admin_prune_by_age,
            admin_prune_by_size,
            admin_prune_within_its_budget,
            admin_prune_removes_old_activity,
            admin_operator_tokens_authenticate_and_revoke,
            admin_anonymisation_scrubs_the_log,
            admin_late_entries_and_leavers_without_history_are_scrubbed
        );
    };
    (@each $make:path, $skip:path; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                if $skip() {
                    return;
                }
                $crate::run_admin($make, $crate::$check);
            }
        )*
    };
}

// ---- what the admin checks share ----------------------------------------------------------

/// The wall clock (to the millisecond, as the store's own clock).
pub(crate) fn clock() -> DateTime {
    scim_store_core::document::now()
}

/// `at` moved by `seconds` and `nanos` (both may be negative).
pub(crate) fn shift(at: DateTime, seconds: i64, nanos: i64) -> DateTime {
    scim_store_core::admin::datetime_of_ns(
        scim_store_core::admin::datetime_ns(at) + seconds * 1_000_000_000 + nanos,
    )
}

/// A successful `GET /Users` of `tenant` at `at`, by token `tok-a` (`entra`), with nothing
/// optional set: the checks change what they need with struct update syntax.
pub(crate) fn record(tenant: TenantId, request_id: &str, at: DateTime) -> RequestRecord {
    RequestRecord {
        tenant,
        request_id: request_id.to_owned(),
        at,
        token_id: "tok-a".to_owned(),
        token_label: "entra".to_owned(),
        method: "GET".to_owned(),
        path: "/Users".to_owned(),
        status: 200,
        scim_type: None,
        detail: None,
        duration_us: 1_500,
        resource_type: None,
        resource_id: None,
        request_body: None,
        response_body: None,
    }
}

/// Appends and expects it kept.
pub(crate) async fn append(store: &dyn AdminStore, records: Vec<RequestRecord>) {
    store
        .append_requests(records)
        .await
        .expect("append to the provisioning log");
}

/// Every entry `filter` selects (its cursor and limit ignored), following the pages.
pub(crate) async fn all_entries(
    store: &dyn AdminStore,
    tenant: &TenantId,
    filter: &RequestFilter,
) -> Vec<LoggedRequest> {
    let mut filter = RequestFilter {
        cursor: None,
        limit: 0,
        ..filter.clone()
    };
    let mut entries = Vec::new();
    for _ in 0..100 {
        let page = store
            .requests(tenant, &filter)
            .await
            .unwrap_or_else(|e| panic!("list the log with {filter:?}: {e}"));
        entries.extend(page.entries);
        match page.next {
            Some(next) => filter.cursor = Some(next),
            None => return entries,
        }
    }
    panic!("the log never ends: {filter:?}")
}

/// The request ids of every entry `filter` selects, in the order listed.
pub(crate) async fn listed(
    store: &dyn AdminStore,
    tenant: &TenantId,
    filter: &RequestFilter,
) -> Vec<String> {
    all_entries(store, tenant, filter)
        .await
        .into_iter()
        .map(|e| e.record.request_id)
        .collect()
}

/// Expects an [`StoreError::InvalidCursor`].
pub(crate) fn expect_invalid_cursor<T: std::fmt::Debug>(
    result: scim_store_core::Result<T>,
    what: &str,
) {
    match result {
        Err(StoreError::InvalidCursor(_)) => {}
        other => panic!("{what}: expected an invalid cursor, got {other:?}"),
    }
}
