#![doc = include_str!("../README.md")]
// The kit is test code compiled as a library (so that other backends can run it): failing an
// assertion by panicking is its purpose.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod admin;
pub mod agreement;
pub mod directory;
mod fixture;
pub mod model;
pub mod workplace;

// Every check at the crate root: the macros name them as `$crate::check`, and backends' own
// tests use the helpers (`schemas`, `user`, `generate_directory`, ...) from there.
pub use admin::*;
pub use agreement::*;
pub use directory::*;
pub use fixture::*;
pub use model::model_based_operation_sequences;
pub use workplace::*;
