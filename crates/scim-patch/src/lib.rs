#![doc = include_str!("../README.md")]

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
