//! Sorting (RFC 7644 section 3.4.2.3): which sort keys a SQL backend has in a column, and how a
//! resource's sort value is read from its document otherwise.
//!
//! A backend maps its column values to and from [`SortValue`] (SQLite's `Value`, PostgreSQL's
//! typed columns); cursors (RFC 9865, [`CursorScope`](super::CursorScope)) are written from it,
//! so every backend issues the same cursors.

use super::{get_key, primary_or_first};
use crate::document::to_nanos;
use crate::types::ResourceKind;
use scim_schema::{AttrLocation, AttrPath, AttributeType, DateTime, ResourceSchema, fold_case};
use serde_json::Value;
use std::cmp::Ordering;

/// A resource's sort value, compared as SQL compares it: numbers numerically and below text,
/// text by code points; `Null` (no value) is above everything here, and each backend places it
/// as RFC 7644 section 3.4.2.3 asks (last ascending, first descending).
#[derive(Debug, Clone, PartialEq)]
pub enum SortValue {
    /// The resource has no value (or an empty string).
    Null,
    /// An integer, a boolean (0 or 1) or a dateTime (nanoseconds since the epoch).
    Int(i64),
    /// A decimal.
    Real(f64),
    /// A string, folded unless its attribute is `caseExact`.
    Text(String),
}

impl SortValue {
    /// The order of [`SortValue`] (see there).
    pub fn compare(&self, other: &SortValue) -> Ordering {
        use SortValue::{Int, Null, Real, Text};
        match (self, other) {
            (Int(a), Int(b)) => a.cmp(b),
            (Int(a), Real(b)) => (*a as f64).total_cmp(b),
            (Real(a), Int(b)) => a.total_cmp(&(*b as f64)),
            (Real(a), Real(b)) => a.total_cmp(b),
            (Text(a), Text(b)) => a.cmp(b),
            (Int(_) | Real(_), Text(_)) => Ordering::Less,
            (Text(_), Int(_) | Real(_)) => Ordering::Greater,
            (Null, Null) => Ordering::Equal,
            (Null, _) => Ordering::Greater,
            (_, Null) => Ordering::Less,
        }
    }
}

/// A sort key a SQL backend keeps in an indexed column of `resources` (row alias `r`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    /// `userName` of a User, folded: `r.user_name_fold`.
    UserName,
    /// `displayName`, folded: `r.display_name_fold`.
    DisplayName,
    /// `externalId`: `r.external_id`.
    ExternalId,
    /// `id`: `r.id`.
    Id,
    /// `meta.lastModified`, in nanoseconds: `r.modified_ns`.
    Modified,
    /// `meta.created`, in nanoseconds: `r.created_ns`.
    Created,
}

impl SortColumn {
    /// The column's SQL, on the row aliased `r`.
    pub fn expr(self) -> &'static str {
        match self {
            SortColumn::UserName => "r.user_name_fold",
            SortColumn::DisplayName => "r.display_name_fold",
            SortColumn::ExternalId => "r.external_id",
            SortColumn::Id => "r.id",
            SortColumn::Modified => "r.modified_ns",
            SortColumn::Created => "r.created_ns",
        }
    }

    /// Whether the column holds text ([`SortValue::Text`]); otherwise integers
    /// ([`SortValue::Int`]).
    pub fn is_text(self) -> bool {
        !matches!(self, SortColumn::Modified | SortColumn::Created)
    }

    /// Whether every resource has a value (then the order needs no NULL handling and can
    /// follow an index).
    pub fn not_null(self) -> bool {
        matches!(
            self,
            SortColumn::UserName | SortColumn::Id | SortColumn::Modified | SortColumn::Created
        )
    }

    /// Whether the value is unique within a tenant and kind (then the row id never breaks a
    /// tie).
    pub fn unique(self) -> bool {
        self == SortColumn::UserName
    }
}

/// Where the sort key of a `sortBy` path is.
#[derive(Debug)]
pub enum SortTarget {
    /// In an indexed column.
    Column(SortColumn),
    /// Only in the document: [`SortSpec::value`] reads it.
    Document(SortSpec),
    /// Nowhere: the schema does not define the attribute, so no resource has a value.
    Undefined,
}

/// Where the sort key of `path` is for resources of `kind` (RFC 7644 section 3.4.2.3). A
/// column answers only when it holds what the attribute sorts by: the folded column for a
/// `caseExact=false` string, the raw one for a `caseExact` one.
pub fn sort_target(schema: &ResourceSchema, kind: ResourceKind, path: &AttrPath) -> SortTarget {
    let Some(resolved) = schema.resolve(path) else {
        return SortTarget::Undefined;
    };
    let def = resolved.target();
    let top = resolved.location == AttrLocation::TopLevel;
    let column = match (
        top,
        resolved.attribute.name.as_str(),
        resolved.sub_attribute.map(|s| s.name.as_str()),
    ) {
        (true, "userName", None) if kind == ResourceKind::User && !def.case_exact => {
            Some(SortColumn::UserName)
        }
        (true, "displayName", None) if !def.case_exact => Some(SortColumn::DisplayName),
        (true, "externalId", None) if def.case_exact => Some(SortColumn::ExternalId),
        (true, "id", None) if def.case_exact => Some(SortColumn::Id),
        (true, "meta", Some("lastModified")) => Some(SortColumn::Modified),
        (true, "meta", Some("created")) => Some(SortColumn::Created),
        _ => None,
    };
    if let Some(column) = column {
        return SortTarget::Column(column);
    }
    SortTarget::Document(SortSpec::of(schema, path))
}

/// How to find a resource's sort value in its document.
#[derive(Debug, Clone)]
pub struct SortSpec {
    extension: Option<String>,
    /// `None`: an attribute the schema does not define (no resource has a value).
    attr: Option<String>,
    sub: Option<String>,
    kind: AttributeType,
    case_exact: bool,
}

impl SortSpec {
    /// Where `path` (RFC 7644 section 3.4.2.3 `sortBy`) is in a resource's document, whatever
    /// column a SQL backend may also keep it in: for a store that sorts in process.
    pub fn of(schema: &ResourceSchema, path: &AttrPath) -> Self {
        let Some(resolved) = schema.resolve(path) else {
            return SortSpec::none();
        };
        let def = resolved.target();
        SortSpec {
            extension: match resolved.location {
                AttrLocation::Extension(urn) => Some(urn.to_owned()),
                AttrLocation::TopLevel => None,
            },
            attr: Some(resolved.attribute.name.clone()),
            sub: resolved.sub_attribute.map(|s| s.name.clone()),
            kind: def.kind,
            case_exact: def.case_exact,
        }
    }

    /// The spec of an attribute the schema does not define: no resource has a value.
    pub fn none() -> Self {
        SortSpec {
            extension: None,
            attr: None,
            sub: None,
            kind: AttributeType::String,
            case_exact: true,
        }
    }

    /// RFC 7644 section 3.4.2.3: a multi-valued attribute sorts by its primary value, else its
    /// first; strings by their folded form unless caseExact; dateTime chronologically.
    pub fn value(&self, doc: &Value) -> SortValue {
        let Some(attr) = &self.attr else {
            return SortValue::Null;
        };
        let holder = match &self.extension {
            Some(urn) => get_key(doc, urn),
            None => Some(doc),
        };
        let value = holder.and_then(|h| get_key(h, attr)).map(primary_or_first);
        let value = match (&self.sub, value) {
            (Some(sub), Some(v)) => get_key(v, sub).map(primary_or_first),
            (None, Some(v)) if v.is_object() => get_key(v, "value"),
            (None, v) => v,
            (Some(_), None) => None,
        };
        match value {
            Some(Value::String(s)) if s.is_empty() => SortValue::Null,
            Some(Value::String(s)) if self.kind == AttributeType::DateTime => {
                DateTime::parse(s).map_or(SortValue::Null, |t| SortValue::Int(to_nanos(t)))
            }
            Some(Value::String(s)) if self.case_exact => SortValue::Text(s.clone()),
            Some(Value::String(s)) => SortValue::Text(fold_case(s).into_owned()),
            Some(Value::Number(n)) => n.as_i64().map_or_else(
                || n.as_f64().map_or(SortValue::Null, SortValue::Real),
                SortValue::Int,
            ),
            Some(Value::Bool(b)) => SortValue::Int(i64::from(*b)),
            _ => SortValue::Null,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_process_order_puts_numbers_before_text_and_nulls_last() {
        let mut values = [
            SortValue::Null,
            SortValue::Text("b".into()),
            SortValue::Int(3),
            SortValue::Real(2.5),
            SortValue::Text("É".into()),
        ];
        values.sort_by(SortValue::compare);
        assert_eq!(
            values,
            [
                SortValue::Real(2.5),
                SortValue::Int(3),
                SortValue::Text("b".into()),
                SortValue::Text("É".into()),
                SortValue::Null,
            ]
        );
    }
}
