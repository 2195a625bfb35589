//! # scim-filter
//!
//! The SCIM filter language of RFC 7644 section 3.4.2.2 and the PATCH path grammar of section
//! 3.5.2, parsed with `nom` into an AST ([`Filter`], [`PatchPath`]) that prints back in a
//! canonical form, and evaluated against `serde_json::Value` resources with the schema's
//! rules (caseExact, types, multi-valued attributes).
//!
//! Knows nothing of storage, HTTP or async.

pub mod ast;
pub mod error;
pub mod eval;
pub mod parser;
mod printer;
pub mod search;

pub use ast::{CompValue, CompareOp, Comparison, Filter, PatchPath, ValuePath};
pub use error::FilterError;
pub use eval::{CompiledFilter, CompiledValueFilter, UnknownAttributes};
pub use parser::{
    Limits, parse_filter, parse_filter_with, parse_patch_path, parse_patch_path_with,
};
pub use search::{PreparedSearch, SearchRequest};
