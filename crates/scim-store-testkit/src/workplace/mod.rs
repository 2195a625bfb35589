//! The workplace checks every [`WorkplaceStore`] must pass (issue 7): the catalog, policies,
//! bookings, check-in, assignments, the lifecycle cascades that SCIM writes trigger (atomically,
//! on the feed, citing their request), policy-change previews, the feed, the audit log, the
//! report, and a property test over random sequences of SCIM writes and bookings.
//!
//! ```ignore
//! fn sqlite(schemas: ResourceSchemas) -> WorkplaceFixture { /* open a store in a temp dir */ }
//! scim_store_testkit::workplace_store_tests!(sqlite);
//! ```
//!
//! Cascades run at the SCIM write's own time, so the checks work in real time: bookings are
//! placed relative to the clock ([`now`]), days ahead or minutes around it.
//!
//! One file per topic: the catalog, policies (and their previews), bookings (and check-in),
//! assignments, the cascades of a person leaving, anonymisation, the cascades of other SCIM
//! writes, the feed (with the audit log and the report), and the property test over random
//! sequences (its model of the workplace in `world.rs`). `fixtures.rs` holds what they share.

mod anonymisation;
mod assignments;
mod bookings;
mod cascades;
mod catalog;
mod feed;
pub(crate) mod fixtures;
mod leaving;
mod policies;
mod sequences;
mod world;

pub use anonymisation::*;
pub use assignments::*;
pub use bookings::*;
pub use cascades::*;
pub use catalog::*;
pub use feed::*;
pub use fixtures::now;
pub use leaving::*;
pub use policies::*;
pub use sequences::*;

use crate::schemas;
use scim_store_core::workplace::WorkplaceStore;
use std::any::Any;
use std::future::Future;
use std::sync::Arc;

/// A workplace store under test, and whatever must live as long as it (e.g. its temporary
/// directory).
pub struct WorkplaceFixture {
    /// The store.
    pub store: Arc<dyn WorkplaceStore>,
    /// Dropped after the test.
    pub guard: Box<dyn Any + Send + Sync>,
}

/// Runs one workplace check on a fresh fixture made with the kit's [`schemas`], on a
/// multi-threaded runtime (so that concurrency checks really race).
pub fn run_workplace<M, F, Fut>(make: M, check: F)
where
    M: FnOnce(scim_store_core::ResourceSchemas) -> WorkplaceFixture,
    F: FnOnce(Arc<dyn WorkplaceStore>) -> Fut,
    Fut: Future<Output = ()>,
{
    let fixture = make(schemas());
    crate::kit_runtime().block_on(check(Arc::clone(&fixture.store)));
    drop(fixture);
}

/// Generates one `#[test]` per workplace check for a backend; `$make` is a
/// `fn(ResourceSchemas) -> WorkplaceFixture`. With `skip_if = $skip` (a `fn() -> bool`), each
/// test returns at once when `$skip()` is true, as with [`store_tests!`](crate::store_tests).
/// The tests are named `workplace_*`, so both macros can run in one test file.
#[macro_export]
macro_rules! workplace_store_tests {
    ($make:path) => {
        $crate::workplace_store_tests!($make, skip_if = $crate::never_skip);
    };
    ($make:path, skip_if = $skip:path) => {
        $crate::workplace_store_tests!(@each $make, $skip;
            workplace_catalog_crud_and_consistency,
            workplace_policies_set_get_and_versions,
            workplace_rules_use_the_tenants_own_attributes,
            workplace_booking_allowed_refused_and_full,
            workplace_cancel_and_check_in,
            workplace_deactivation_by_entra_string_cascades,
            workplace_deactivation_by_boolean_cascades,
            workplace_deletion_cascades_and_anonymises,
            workplace_anonymisation_forgets_the_person,
            workplace_failed_scim_writes_cancel_nothing,
            workplace_reactivation_uncancels_nothing,
            workplace_attribute_change_cancels_or_flags_lost_bookings,
            workplace_group_changes_cancel_lost_bookings,
            workplace_policy_change_preview_is_what_applies,
            workplace_feed_is_ordered_gap_free_and_mixed,
            workplace_audit_filters,
            workplace_report_counts,
            workplace_assignments,
            workplace_concurrent_bookings_take_the_last_place_once,
            workplace_invariants_hold_after_any_sequence
        );
    };
    (@each $make:path, $skip:path; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                if $skip() {
                    return;
                }
                $crate::run_workplace($make, $crate::$check);
            }
        )*
    };
}
