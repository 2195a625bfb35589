//! # scim-patch
//!
//! RFC 7644 section 3.5.2 PATCH for SCIM resources: the PatchOp message parsed into typed
//! operations ([`PatchRequest::from_json`]), applied atomically to a resource with no-op detection
//! ([`apply()`]), fluent in the dialects real identity providers send ([`dialects`]), and, for groups
//! with many members, planned into a membership delta a store applies in time proportional to the
//! change ([`plan_group_patch`]).
//!
//! Layer invariant: this crate knows nothing of storage (nor of HTTP or async): it is pure
//! functions from a resource, its schema and a request to a new resource or a SCIM error.
//!
//! ```
//! use scim_patch::{PatchOptions, PatchRequest, apply};
//! use serde_json::json;
//!
//! let user = json!({
//!     "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
//!     "id": "2819c223", "userName": "bjensen", "active": true,
//!     "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}]
//! });
//! // What Microsoft Entra ID sends (capitalised op, string boolean, a filter matching nothing).
//! let message = json!({
//!     "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
//!     "Operations": [
//!         {"op": "Replace", "path": "active", "value": "False"},
//!         {"op": "Add", "path": "emails[type eq \"home\"].value", "value": "babs@jensen.org"}
//!     ]
//! });
//! let options = PatchOptions::default(); // lenient dialects
//! let request = PatchRequest::from_value(message, &options)?;
//! let outcome = apply(&user, &scim_schema::core::user(), &request, &options)?;
//! assert!(outcome.changed);
//! assert_eq!(outcome.resource["active"], false);
//! assert_eq!(outcome.resource["emails"][1], json!({"type": "home", "value": "babs@jensen.org"}));
//! # Ok::<(), scim_patch::PatchError>(())
//! ```

pub mod apply;
pub mod bulk;
pub mod dialects;
pub mod error;
pub mod etag;
pub mod plan;
pub mod request;
pub mod secrets;
mod value;

pub use apply::{PatchOutcome, apply};
pub use error::{Location, PatchError};
pub use plan::{
    GroupPatchPlan, MemberRef, MembershipDelta, MembershipPrecondition, plan_group_patch,
};
pub use request::{Dialects, Op, PATCH_OP_URN, PatchOperation, PatchOptions, PatchRequest};
pub use secrets::{SecretValue, secret_values};
