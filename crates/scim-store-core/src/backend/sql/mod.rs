//! The filter-to-SQL walk and the query helpers every SQL backend shares: they depend on the
//! filter AST, the query and JSON documents, never on a database. A backend implements
//! [`LeafSql`] for its dialect; [`translate`] walks the AST (RFC 7644 section 3.4.2.2) and
//! asks it for each leaf.
//!
//! The leaves SQL answers exactly, from the indexed columns and side tables, are written once
//! too: [`hot`] says which attributes those are, and [`IndexedSql`] writes their conditions
//! over the backend's spelling of parameters and string tests. A backend adds the leaves only
//! it can push down (SQLite's JSON functions, PostgreSQL's `jsonb` containment) and routes
//! each leaf in its [`LeafSql::leaf`].
//!
//! Sorting and cursors are in [`SortTarget`] (which key a `sortBy` path has), [`SortSpec`]
//! (a key read from the document), [`SortValue`] (the neutral form of a key, which a backend
//! maps its column values to and from) and [`CursorKey`] / [`CursorScope`] (RFC 9865 cursors,
//! signed with the store's key and bound to the tenant and the query).

mod cursor;
mod indexed;
mod sort;

pub use cursor::{CursorKey, CursorScope, MAX_CURSOR_LEN};

pub use indexed::{
    Conjuncts, Hot, IndexedSql, compares_value, conjuncts, derived_attribute, hot, needs_derived,
    successor, value_path_comparison,
};
pub use sort::{SortColumn, SortSpec, SortTarget, SortValue, sort_target};

use crate::types::{ResourceKind, TenantId};
use scim_filter::{CompValue, CompareOp, Comparison, Filter, ValuePath};
use scim_schema::AttrPath;
use serde_json::Value;

/// The SQL operator of an ordering comparison (`eq` included); `None` for the others.
pub fn ordering_sql(op: CompareOp) -> Option<&'static str> {
    match op {
        CompareOp::Eq => Some("="),
        CompareOp::Gt => Some(">"),
        CompareOp::Ge => Some(">="),
        CompareOp::Lt => Some("<"),
        CompareOp::Le => Some("<="),
        _ => None,
    }
}

/// The value a multi-valued attribute sorts by: its primary value, else its first
/// (RFC 7644 section 3.4.2.3).
pub fn primary_or_first(value: &Value) -> &Value {
    match value {
        Value::Array(items) => items
            .iter()
            .find(|v| v.get("primary").and_then(Value::as_bool) == Some(true))
            .or_else(|| items.first())
            .unwrap_or(&Value::Null),
        other => other,
    }
}

/// An object member, exactly then ignoring ASCII case (as the evaluator looks them up).
pub fn get_key<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    let object = value.as_object()?;
    object.get(key).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// What a backend made of one filter leaf in SQL.
pub enum Leaf {
    /// SQL that selects exactly the resources the leaf matches.
    Exact(String),
    /// SQL that selects at least those resources; the evaluator finishes.
    Superset(String),
    /// Nothing SQL can say; the evaluator decides alone.
    Unknown,
}

/// A filter translated to SQL over the row aliased `r`, and what the translation collects on
/// its way: a backend's translator holds one ([`LeafSql::pushed`]) and [`push_down`] returns it
/// filled.
#[derive(Debug)]
pub struct PushDown<P> {
    /// The condition (empty until [`push_down`] has run).
    pub sql: String,
    /// Its parameters, in order.
    pub params: Vec<P>,
    /// Whether the condition alone decides the filter (no in-process finishing needed).
    pub exact: bool,
    /// Whether finishing needs the derived attribute (`groups` / `members`).
    pub derived: bool,
    /// The kind of resource filtered.
    pub kind: ResourceKind,
    /// The tenant's key, which subqueries on side tables bind.
    pub tenant: i64,
}

impl<P> PushDown<P> {
    /// An empty translation of a filter on `tenant`'s resources of `kind`, whose parameters
    /// will follow `params` (those the query bound before the filter).
    pub fn new(kind: ResourceKind, tenant: TenantId, params: Vec<P>) -> Self {
        PushDown {
            sql: String::new(),
            params,
            exact: true,
            derived: false,
            kind,
            tenant: tenant.key(),
        }
    }
}

/// A backend's translation of filter leaves (comparisons, `pr`, value paths) into SQL.
/// [`translate`] does the rest, which is the same for every backend.
pub trait LeafSql {
    /// A bound parameter, as the backend's driver takes it.
    type Param;
    /// The backend's SQL for true and false (`1`/`0`, `TRUE`/`FALSE`).
    const TRUE: &'static str;
    /// See [`LeafSql::TRUE`].
    const FALSE: &'static str;
    /// SQL that is true where `sql` is false or NULL.
    fn is_not_true(sql: &str) -> String;
    /// The translation so far: the parameters pushed, whether it is exact.
    fn pushed(&mut self) -> &mut PushDown<Self::Param>;
    /// The translation, once [`push_down`] is done with the translator.
    fn into_pushed(self) -> PushDown<Self::Param>;
    /// Translates a comparison, pushing its parameters.
    fn compare(&mut self, c: &Comparison) -> Leaf;
    /// Translates `path pr`.
    fn present(&mut self, path: &AttrPath) -> Leaf;
    /// Translates a complex value filter (`emails[type eq "work"]`).
    fn value_path(&mut self, vp: &ValuePath) -> Leaf;

    /// Translates one leaf, pushing its parameters.
    fn leaf(&mut self, leaf: &Filter) -> Leaf {
        match leaf {
            Filter::Compare(c) => self.compare(c),
            Filter::Present(path) => self.present(path),
            Filter::ValuePath(vp) => self.value_path(vp),
            _ => Leaf::Unknown,
        }
    }
    /// How many parameters have been pushed.
    fn param_count(&mut self) -> usize {
        self.pushed().params.len()
    }
    /// Drops the parameters pushed after the first `len`.
    fn truncate_params(&mut self, len: usize) {
        self.pushed().params.truncate(len);
    }
    /// Records that `leaf` was not translated exactly, so the evaluator must finish the query
    /// (and may need the attributes the store derives, like `groups`).
    fn not_exact(&mut self, leaf: &Filter) {
        let pushed = self.pushed();
        pushed.exact = false;
        pushed.derived |= needs_derived(pushed.kind, leaf);
    }
}

/// Translates `filter` through the backend's translator `t` (see [`translate`]).
pub fn push_down<T: LeafSql>(mut t: T, filter: &Filter) -> PushDown<T::Param> {
    let sql = translate(&mut t, filter, false);
    let mut pushed = t.into_pushed();
    pushed.sql = sql;
    pushed
}

/// Translates a filter into a SQL condition through a backend's [`LeafSql`]: negations are
/// pushed down to the leaves (De Morgan), `ne` is `not eq` and `eq null` is `not pr` (the
/// evaluator's definitions), and a leaf SQL cannot negate exactly becomes "true" under `not`,
/// a superset that the evaluator finishes.
pub fn translate<T: LeafSql>(t: &mut T, filter: &Filter, negated: bool) -> String {
    match filter {
        Filter::And(a, b) | Filter::Or(a, b) => {
            let is_and = matches!(filter, Filter::And(..));
            let left = translate(t, a, negated);
            let right = translate(t, b, negated);
            let op = if is_and != negated { "AND" } else { "OR" };
            format!("({left} {op} {right})")
        }
        Filter::Not(inner) => translate(t, inner, !negated),
        Filter::Compare(Comparison {
            path,
            op: CompareOp::Ne,
            value,
        }) => {
            let eq = Filter::Compare(Comparison {
                path: path.clone(),
                op: CompareOp::Eq,
                value: value.clone(),
            });
            translate(t, &eq, !negated)
        }
        Filter::Compare(Comparison {
            path,
            op: CompareOp::Eq,
            value: CompValue::Null,
        }) => translate(t, &Filter::Present(path.clone()), !negated),
        leaf => {
            // A leaf replaced by a constant takes its parameters with it: they would shift the
            // positions of later ones (SQLite), or be untypable (PostgreSQL).
            let mark = t.param_count();
            match t.leaf(leaf) {
                Leaf::Exact(sql) if negated => {
                    if sql == T::FALSE {
                        T::TRUE.to_owned()
                    } else if sql == T::TRUE {
                        T::FALSE.to_owned()
                    } else {
                        T::is_not_true(&sql)
                    }
                }
                Leaf::Exact(sql) => sql,
                Leaf::Superset(sql) => {
                    t.not_exact(leaf);
                    if negated {
                        t.truncate_params(mark);
                        T::TRUE.to_owned()
                    } else {
                        sql
                    }
                }
                Leaf::Unknown => {
                    t.not_exact(leaf);
                    t.truncate_params(mark);
                    T::TRUE.to_owned()
                }
            }
        }
    }
}
