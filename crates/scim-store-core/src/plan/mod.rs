//! The backend-neutral half of every write: given what a backend loaded inside its
//! transaction, decide what to write. A backend loads, calls a plan, and writes; it never
//! decides, so SQLite and PostgreSQL (and any other backend) cannot drift apart.
//!
//! - [`directory`]: the SCIM resources (create, PUT, PATCH, import): which document and index
//!   entries to write, which membership rows to add and remove, and when nothing changes.
//! - [`workplace`]: the workplace writes and the cascades a person's change causes (the same
//!   module as [`crate::workplace::plan`]).

pub mod directory;

pub use crate::workplace::plan as workplace;
