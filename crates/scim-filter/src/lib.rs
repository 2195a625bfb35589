#![doc = include_str!("../README.md")]

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
