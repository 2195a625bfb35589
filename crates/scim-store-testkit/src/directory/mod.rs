//! The directory checks every [`Store`](scim_store_core::Store) must pass: tenants and tokens,
//! create, read, replace and delete, versions, uniqueness, membership, PATCH, the change feed,
//! queries (sorting and paging) and import. Filters have a kit of their own
//! ([`agreement`](crate::agreement)), and so do random operation sequences
//! ([`model`](crate::model)); [`store_tests!`](crate::store_tests) runs all three.
//!
//! One file per topic; each check creates its own tenants, so all of them can share one store.

mod crud;
mod feed;
mod import;
mod limits;
mod membership;
mod passwords;
mod patch;
mod query;
mod schemas;
mod tenants;
mod uniqueness;
mod versions;

pub use crud::*;
pub use feed::*;
pub use import::*;
pub use limits::*;
pub use membership::*;
pub use passwords::*;
pub use patch::*;
pub use query::*;
pub use schemas::*;
pub use tenants::*;
pub use uniqueness::*;
pub use versions::*;

use scim_store_core::QueryPage;
use serde_json::json;

/// The ids of a page's resources, in order.
pub(crate) fn ids_of(page: &QueryPage) -> Vec<String> {
    page.resources.iter().map(|r| r.id.clone()).collect()
}

/// A PATCH request (RFC 7644 section 3.5.2) with these operations.
pub(crate) fn patch_request(operations: serde_json::Value) -> scim_patch::PatchRequest {
    let message = json!({"schemas": [scim_patch::PATCH_OP_URN], "Operations": operations});
    scim_patch::PatchRequest::from_json(&message, &scim_patch::PatchOptions::default()).unwrap()
}
