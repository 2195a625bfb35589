//! The filter AST (RFC 7644 section 3.4.2.2) and the PATCH path (section 3.5.2).
//!
//! Built to be walked: a store translates it into SQL by matching on [`Filter`], and the
//! evaluator matches it against JSON. Parentheses leave no trace (they only shape the tree);
//! [`std::fmt::Display`] prints a canonical form that parses back to an equal AST.

use scim_schema::AttrPath;

/// A filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `attrPath compareOp compValue`, e.g. `userName eq "bjensen"`.
    Compare(Comparison),
    /// `attrPath pr`: the attribute has a non-empty value.
    Present(AttrPath),
    /// `filter and filter`.
    And(Box<Filter>, Box<Filter>),
    /// `filter or filter`.
    Or(Box<Filter>, Box<Filter>),
    /// `not (filter)`.
    Not(Box<Filter>),
    /// `attrPath[valFilter]`, a complex value filter: matches when one value of the
    /// (multi-valued, complex) attribute matches `filter`, whose paths name sub-attributes.
    ValuePath(ValuePath),
}

/// `attrPath compareOp compValue`.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The attribute compared.
    pub path: AttrPath,
    /// The operator.
    pub op: CompareOp,
    /// The literal compared against.
    pub value: CompValue,
}

/// `attrPath "[" valFilter "]"`.
#[derive(Debug, Clone, PartialEq)]
pub struct ValuePath {
    /// The multi-valued complex attribute, e.g. `emails`.
    pub attr: AttrPath,
    /// The filter applied to each value; its paths are relative to `attr` (e.g. `type`).
    pub filter: Box<Filter>,
}

/// The attribute operators of RFC 7644 section 3.4.2.2, Table 3 (`pr` is [`Filter::Present`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CompareOp {
    /// `eq`: equal.
    Eq,
    /// `ne`: not equal.
    Ne,
    /// `co`: contains (substring).
    Co,
    /// `sw`: starts with.
    Sw,
    /// `ew`: ends with.
    Ew,
    /// `gt`: greater than.
    Gt,
    /// `ge`: greater than or equal.
    Ge,
    /// `lt`: less than.
    Lt,
    /// `le`: less than or equal.
    Le,
}

impl CompareOp {
    /// The operator keyword in canonical (lower) case.
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Co => "co",
            CompareOp::Sw => "sw",
            CompareOp::Ew => "ew",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
        }
    }

    /// True for the ordering operators `gt`, `ge`, `lt`, `le`.
    pub fn is_ordering(self) -> bool {
        matches!(
            self,
            CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le
        )
    }
}

/// `compValue = false / null / true / number / string` (a JSON literal, RFC 7159).
#[derive(Debug, Clone, PartialEq)]
pub enum CompValue {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A JSON number; integers stay exact (`i64`/`u64`), others are `f64`.
    Number(serde_json::Number),
    /// A JSON string, unescaped.
    String(String),
}

/// A PATCH operation path (RFC 7644 section 3.5.2):
///
/// ```text
/// PATH = attrPath / valuePath [subAttr]
/// ```
///
/// e.g. `members`, `name.familyName`, `emails[type eq "work"]`,
/// `emails[type eq "work"].value`, or URN-qualified forms of these.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchPath {
    /// The attribute (with a sub-attribute only in the plain `attrPath` form).
    pub attr: AttrPath,
    /// The value filter of a `valuePath`, if any.
    pub filter: Option<Box<Filter>>,
    /// The sub-attribute after a `valuePath`, e.g. `value` in `emails[type eq "work"].value`.
    pub sub_attr: Option<String>,
}
