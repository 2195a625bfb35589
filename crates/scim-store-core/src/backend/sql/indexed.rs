//! The leaves SQL answers exactly from the indexed columns and side tables every SQL backend
//! keeps: which attributes those are ([`hot`]), and their conditions, written once over the
//! backend's spelling of parameters and string functions ([`IndexedSql`]).
//!
//! The SQL names the store's tables as both backends lay them out: `resources` (row alias
//! `r`) with the columns `user_name_fold`, `display_name_fold`, `external_id`, `id`,
//! `id_fold`, `active`, `modified_ns`, `created_ns`; `resource_values` (`emails.value`,
//! folded, by `tenant`, `kind`, `attr`); and `members` (`group_rid`, `member_rid`).

use super::{Leaf, LeafSql, ordering_sql};
use crate::document::to_nanos;
use crate::types::ResourceKind;
use scim_filter::{CompValue, CompareOp, Comparison, Filter, ValuePath};
use scim_schema::{
    AttrLocation, AttrPath, AttributeDef, AttributeType, DateTime, ResourceSchema, fold_case,
};
use std::fmt;

/// The attributes SQL answers exactly from indexed columns or side tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hot {
    /// `userName` of a User: `r.user_name_fold`.
    UserName,
    /// `displayName`: `r.display_name_fold`.
    DisplayName,
    /// `externalId`: `r.external_id`.
    ExternalId,
    /// `id`: `r.id` (and `r.id_fold`, its unique index).
    Id,
    /// `active` of a User: `r.active`.
    Active,
    /// `meta.lastModified`: `r.modified_ns`.
    Modified,
    /// `meta.created`: `r.created_ns`.
    Created,
    /// `emails.value` (or `emails`, which compares `value`) of a User: `resource_values`.
    Email,
    /// `members.value` (or `members`) of a Group: `members`.
    Member,
}

/// Which indexed attribute `path` designates for resources of `kind`, with its definition (the
/// `value` sub-attribute for a complex attribute named without one); `None` for every other
/// attribute, and for one whose definition the index does not fit (a `userName` that is not a
/// string, a `meta.created` that is not a dateTime).
pub fn hot<'a>(
    schema: &'a ResourceSchema,
    kind: ResourceKind,
    path: &AttrPath,
) -> Option<(Hot, &'a AttributeDef)> {
    let resolved = schema.resolve(path)?;
    if resolved.location != AttrLocation::TopLevel {
        return None;
    }
    let attribute = resolved.attribute;
    let sub = resolved.sub_attribute;
    let name = attribute.name.as_str();
    let string =
        |d: &AttributeDef| matches!(d.kind, AttributeType::String | AttributeType::Reference);
    let hot = match (kind, name, sub.map(|s| s.name.as_str())) {
        (ResourceKind::User, "userName", None) if string(attribute) => (Hot::UserName, attribute),
        (_, "displayName", None) if string(attribute) => (Hot::DisplayName, attribute),
        (_, "externalId", None) if string(attribute) => (Hot::ExternalId, attribute),
        (_, "id", None) if string(attribute) => (Hot::Id, attribute),
        (ResourceKind::User, "active", None) if attribute.kind == AttributeType::Boolean => {
            (Hot::Active, attribute)
        }
        (_, "meta", Some("lastModified")) => (Hot::Modified, sub?),
        (_, "meta", Some("created")) => (Hot::Created, sub?),
        (ResourceKind::User, "emails", Some("value")) if string(sub?) => (Hot::Email, sub?),
        (ResourceKind::User, "emails", None) => (
            Hot::Email,
            attribute.sub_attribute("value").filter(|d| string(d))?,
        ),
        (ResourceKind::Group, "members", Some("value")) if string(sub?) => (Hot::Member, sub?),
        (ResourceKind::Group, "members", None) => (
            Hot::Member,
            attribute.sub_attribute("value").filter(|d| string(d))?,
        ),
        _ => return None,
    };
    if matches!(hot.0, Hot::Modified | Hot::Created) && hot.1.kind != AttributeType::DateTime {
        return None;
    }
    Some(hot)
}

/// The attribute the store derives from membership rows for `kind` (`groups` of a User,
/// `members` of a Group): the evaluator needs it added to the document when a leaf naming it
/// is left to it.
pub fn derived_attribute(kind: ResourceKind) -> &'static str {
    match kind {
        ResourceKind::User => "groups",
        ResourceKind::Group => "members",
    }
}

/// Whether the evaluator, finishing `leaf`, needs the attribute derived for `kind`.
pub fn needs_derived(kind: ResourceKind, leaf: &Filter) -> bool {
    let path = match leaf {
        Filter::Compare(c) => &c.path,
        Filter::Present(p) => p,
        Filter::ValuePath(vp) => &vp.attr,
        _ => return false,
    };
    path.name.eq_ignore_ascii_case(derived_attribute(kind))
}

/// `attr[sub op value]` as the comparison `attr.sub op value`: a single comparison on a
/// sub-attribute (not `ne`, which is a negation) inside a value filter. A value of `attr`
/// matching the whole value filter matches this comparison, so what SQL selects for it is a
/// superset of the value filter (and the same set, for a filter that is only this).
pub fn value_path_comparison(vp: &ValuePath, filter: &Filter) -> Option<Comparison> {
    match filter {
        Filter::Compare(c)
            if c.path.schema.is_none() && c.path.sub_attr.is_none() && c.op != CompareOp::Ne =>
        {
            Some(Comparison {
                path: AttrPath {
                    schema: vp.attr.schema.clone(),
                    name: vp.attr.name.clone(),
                    sub_attr: Some(c.path.name.clone()),
                },
                op: c.op,
                value: c.value.clone(),
            })
        }
        _ => None,
    }
}

/// Whether `c` (from [`value_path_comparison`]) compares the `value` sub-attribute with a
/// string: what the side tables of [`Hot::Email`] and [`Hot::Member`] index.
pub fn compares_value(c: &Comparison) -> bool {
    c.path
        .sub_attr
        .as_deref()
        .is_some_and(|s| s.eq_ignore_ascii_case("value"))
        && matches!(c.value, CompValue::String(_))
}

/// The operands of a conjunction, right to left, each once (`a and (b and c)` gives `c`, `b`,
/// `a`); a filter that is not a conjunction is its only operand. Each conjunct of a value
/// filter is a superset of it.
pub fn conjuncts(filter: &Filter) -> Conjuncts<'_> {
    Conjuncts {
        pending: vec![filter],
    }
}

/// See [`conjuncts`].
pub struct Conjuncts<'f> {
    pending: Vec<&'f Filter>,
}

impl<'f> Iterator for Conjuncts<'f> {
    type Item = &'f Filter;

    fn next(&mut self) -> Option<&'f Filter> {
        while let Some(f) = self.pending.pop() {
            match f {
                Filter::And(a, b) => {
                    self.pending.push(a);
                    self.pending.push(b);
                }
                other => return Some(other),
            }
        }
        None
    }
}

/// The smallest string greater than every string that starts with `prefix`, in code-point
/// order: `prefix` with its last character incremented (dropping characters that cannot be).
/// `None` when there is none (the prefix is empty or only U+10FFFF). `sw` becomes the index
/// range `[prefix, successor)`.
pub fn successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match u32::from(last) {
            0xD7FF => Some('\u{E000}'),
            0x10FFFF => None,
            c => char::from_u32(c + 1),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// A backend's spelling of the indexed leaves: how it binds a parameter and writes the string
/// tests. The leaves themselves ([`IndexedSql::indexed_compare`],
/// [`IndexedSql::indexed_present`]) are written once here, so both backends select the same
/// rows for the same filter. Parameters are bound in the order their placeholders appear in
/// the SQL (positional `?` needs it).
pub trait IndexedSql: LeafSql {
    /// What a bound parameter is written as in the SQL (`?`, `$3`).
    type Placeholder: fmt::Display;

    /// Binds an integer.
    fn bind_int(&mut self, value: i64) -> Self::Placeholder;
    /// Binds a boolean as the `active` column holds it.
    fn bind_bool(&mut self, value: bool) -> Self::Placeholder;
    /// Binds a string.
    fn bind_text(&mut self, value: String) -> Self::Placeholder;
    /// Binds the resource kind as the `kind` columns hold it.
    fn bind_kind(&mut self) -> Self::Placeholder;
    /// `column co needle`: `needle` is a substring (by characters) of the column's value.
    fn contains(&mut self, column: &str, needle: String) -> String;
    /// `column ew needle`: the column's value ends with `needle`.
    fn ends_with(&mut self, column: &str, needle: String) -> String;

    /// `column op needle` with the evaluator's string semantics: code-point order, substrings
    /// by characters. `needle` is folded when the column is.
    fn text_condition(&mut self, column: &str, op: CompareOp, needle: String) -> String {
        match op {
            // `ne` is `not eq`: the negation is the walk's.
            CompareOp::Eq
            | CompareOp::Ne
            | CompareOp::Gt
            | CompareOp::Ge
            | CompareOp::Lt
            | CompareOp::Le => self.ordering(column, op, needle),
            CompareOp::Co => self.contains(column, needle),
            CompareOp::Sw => self.prefix_range(column, needle),
            CompareOp::Ew => self.ends_with(column, needle),
        }
    }

    /// `column sw needle`: the index range `[needle, successor)`, exactly the strings that
    /// start with `needle`.
    fn prefix_range(&mut self, column: &str, needle: String) -> String {
        match successor(&needle) {
            Some(upper) => {
                let lo = self.bind_text(needle);
                let hi = self.bind_text(upper);
                format!("({column} >= {lo} AND {column} < {hi})")
            }
            None => {
                let lo = self.bind_text(needle);
                format!("{column} >= {lo}")
            }
        }
    }

    /// `column op needle` for an ordering (`eq` included): the operator as SQL spells it.
    fn ordering(&mut self, column: &str, op: CompareOp, needle: String) -> String {
        let p = self.bind_text(needle);
        format!("{column} {} {p}", ordering_sql(op).unwrap_or("="))
    }

    /// The resources with an `emails.value` passing `op needle` (`needle` folded): their rows
    /// in `resource_values`. A backend with a faster way for some operators overrides this
    /// and falls back on [`IndexedSql::email_values`].
    fn email_condition(&mut self, op: CompareOp, needle: String) -> String {
        self.email_values(op, needle)
    }

    /// See [`IndexedSql::email_condition`].
    fn email_values(&mut self, op: CompareOp, needle: String) -> String {
        let tenant = self.pushed().tenant;
        let t = self.bind_int(tenant);
        let k = self.bind_kind();
        let cond = self.text_condition("v.value_fold", op, needle);
        format!(
            "r.rid IN (SELECT v.rid FROM resource_values v WHERE v.tenant = {t} AND v.kind = {k} \
             AND v.attr = 'emails.value' AND {cond})"
        )
    }

    /// A comparison on the indexed attribute `hot` (whose definition is `def`, as [`hot`]
    /// found them). [`Leaf::Unknown`] where the index cannot answer (an operator it has no
    /// test for, a `caseExact` that does not match the column's folding).
    fn indexed_compare(&mut self, hot: Hot, def: &AttributeDef, c: &Comparison) -> Leaf {
        match hot {
            Hot::Active => match &c.value {
                CompValue::Bool(b) if c.op == CompareOp::Eq => {
                    let p = self.bind_bool(*b);
                    Leaf::Exact(format!("r.active = {p}"))
                }
                CompValue::Bool(_) => Leaf::Unknown,
                // A literal of another type matches nothing (the evaluator's rule).
                _ => Leaf::Exact(Self::FALSE.into()),
            },
            Hot::Modified | Hot::Created => {
                let column = if hot == Hot::Modified {
                    "r.modified_ns"
                } else {
                    "r.created_ns"
                };
                let CompValue::String(s) = &c.value else {
                    return Leaf::Exact(Self::FALSE.into());
                };
                let Some(op) = ordering_sql(c.op) else {
                    return Leaf::Unknown;
                };
                let Some(at) = DateTime::parse(s) else {
                    return Leaf::Exact(Self::FALSE.into());
                };
                let p = self.bind_int(to_nanos(at));
                Leaf::Exact(format!("{column} {op} {p}"))
            }
            _ => {
                let CompValue::String(literal) = &c.value else {
                    return Leaf::Exact(Self::FALSE.into());
                };
                self.indexed_text(hot, def, c.op, literal)
            }
        }
    }

    /// A string comparison on a text column or side table.
    fn indexed_text(&mut self, hot: Hot, def: &AttributeDef, op: CompareOp, literal: &str) -> Leaf {
        // Folded columns answer caseExact=false attributes; raw ones caseExact=true ones.
        let folded_column = matches!(
            hot,
            Hot::UserName | Hot::DisplayName | Hot::Email | Hot::Member
        );
        if folded_column == def.case_exact {
            return Leaf::Unknown;
        }
        let needle = if def.case_exact {
            literal.to_owned()
        } else {
            fold_case(literal).into_owned()
        };
        if needle.contains('\0') && !op.is_ordering() {
            // Indexed values never contain U+0000 (the store refuses them), so no value can
            // equal, contain, start or end with such a needle.
            return Leaf::Exact(Self::FALSE.into());
        }
        match hot {
            Hot::Member => {
                if op != CompareOp::Eq {
                    return Leaf::Unknown;
                }
                let tenant = self.pushed().tenant;
                let t = self.bind_int(tenant);
                let p = self.bind_text(needle);
                let mut sql = format!(
                    "r.rid IN (SELECT m.group_rid FROM members m JOIN resources x ON x.rid = m.member_rid \
                     WHERE x.tenant = {t} AND x.id_fold = {p}"
                );
                if def.case_exact {
                    let exact = self.bind_text(literal.to_owned());
                    sql.push_str(&format!(" AND x.id = {exact}"));
                }
                sql.push(')');
                Leaf::Exact(sql)
            }
            Hot::Email => Leaf::Exact(self.email_condition(op, needle)),
            Hot::Id if op == CompareOp::Eq => {
                // Seek the unique (tenant, id_fold) index, then compare exactly.
                let f = self.bind_text(fold_case(&needle).into_owned());
                let p = self.bind_text(needle);
                Leaf::Exact(format!("(r.id_fold = {f} AND r.id = {p})"))
            }
            _ => {
                let column = match hot {
                    Hot::UserName => "r.user_name_fold",
                    Hot::DisplayName => "r.display_name_fold",
                    Hot::ExternalId => "r.external_id",
                    _ => "r.id",
                };
                Leaf::Exact(self.text_condition(column, op, needle))
            }
        }
    }

    /// `pr` on the indexed attribute `hot`, named by `path`.
    fn indexed_present(&mut self, hot: Hot, path: &AttrPath) -> Leaf {
        match hot {
            Hot::UserName => Leaf::Exact("r.user_name_fold <> ''".into()),
            Hot::DisplayName => Leaf::Exact("r.display_name_fold <> ''".into()),
            Hot::ExternalId => Leaf::Exact("r.external_id <> ''".into()),
            Hot::Active => Leaf::Exact("r.active IS NOT NULL".into()),
            Hot::Id | Hot::Modified | Hot::Created => Leaf::Exact(Self::TRUE.into()),
            // `emails pr` is about whole values (an email with only a `type` is present): only
            // `emails.value pr` is answered by the side table.
            Hot::Email if path.sub_attr.is_some() => {
                let tenant = self.pushed().tenant;
                let t = self.bind_int(tenant);
                let k = self.bind_kind();
                Leaf::Exact(format!(
                    "r.rid IN (SELECT v.rid FROM resource_values v WHERE v.tenant = {t} AND v.kind = {k} \
                     AND v.attr = 'emails.value' AND v.value_fold <> '')"
                ))
            }
            Hot::Email => Leaf::Unknown,
            // Every membership row is a member with a non-empty value.
            Hot::Member => {
                Leaf::Exact("EXISTS (SELECT 1 FROM members m WHERE m.group_rid = r.rid)".into())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn successor_bounds_exactly_the_strings_with_the_prefix() {
        assert_eq!(successor("abc").as_deref(), Some("abd"));
        assert_eq!(successor("é").as_deref(), Some("ê"));
        assert_eq!(successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(successor("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(successor(""), None);
        assert_eq!(successor("\u{10FFFF}"), None);
        for s in ["abc", "abcz", "abc\u{10FFFF}x"] {
            assert!(("abc".."abd").contains(&s), "{s}");
        }
        for s in ["abd", "ab", "abb\u{10FFFF}"] {
            assert!(!("abc".."abd").contains(&s), "{s}");
        }
    }

    proptest! {
        /// `[prefix, successor)` holds a string exactly when it starts with the prefix (Rust's
        /// `str` order is code-point order, the evaluator's).
        #[test]
        fn successor_is_the_upper_bound_of_the_prefix(prefix in ".{0,6}", s in ".{0,8}") {
            let starts = s.starts_with(&prefix);
            match successor(&prefix) {
                Some(upper) => {
                    prop_assert!(prefix < upper);
                    prop_assert!(!upper.starts_with(&prefix));
                    prop_assert_eq!(prefix.as_str() <= s.as_str() && s < upper, starts);
                }
                // Only a prefix of U+10FFFF characters (or none) has no successor: every
                // string at or above it starts with it.
                None => {
                    let last = char::MAX;
                    prop_assert!(prefix.chars().all(|c| c == last), "{prefix:?}");
                    prop_assert_eq!(prefix.as_str() <= s.as_str(), starts);
                }
            }
        }

        /// A string made by extending the prefix is always inside the range (the arbitrary
        /// strings above rarely start with the prefix).
        #[test]
        fn extensions_of_the_prefix_are_below_the_successor(prefix in ".{1,6}", rest in ".{0,6}") {
            let s = format!("{prefix}{rest}");
            if let Some(upper) = successor(&prefix) {
                prop_assert!(s < upper);
            }
        }
    }
}
