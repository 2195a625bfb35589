//! Queries (RFC 7644 section 3.4.2): filter push-down, sorting, index and cursor paging.
//!
//! # Push-down
//!
//! The filter is first compiled with the scim-filter evaluator (so a filter the evaluator
//! rejects is rejected here too, with its error). Then it is rewritten in negation normal form
//! (`not` pushed down to the comparisons, De Morgan; `ne` is `not eq`, as the evaluator defines
//! it) and each comparison becomes one of:
//!
//! - **exact** SQL, which selects exactly the resources the evaluator would: comparisons on the
//!   indexed columns (`userName`, `displayName`, `externalId`, `id`, `active`,
//!   `meta.lastModified`, `meta.created`), on `emails.value` through its side table, and
//!   `members.value eq` / `members pr` through the membership rows. A negated exact comparison
//!   is `(sql) IS NOT 1`, which is also true where SQL says NULL (an absent attribute), just as
//!   `not` is true where the evaluator finds no value;
//! - **a superset** for a positive occurrence: one conjunct of a complex value filter on an
//!   indexed attribute, and every comparison, `pr` and complex value filter on an attribute
//!   held only in the JSON document (`title`, `name.givenName`, `emails.type`, extension
//!   attributes under `$."urn:..."`). Those are read with SQLite's JSON functions, walking the
//!   values as the evaluator does (each element of an array, else the value itself; the
//!   sub-attribute in each object), with the evaluator's typing and its folding
//!   (`scim_fold`, i.e. [`fold_case`]; SQLite's `lower()` only where the value is ASCII, where
//!   the two agree). Numbers and dateTime orderings are left to the evaluator;
//! - `1` for anything else (unknown attributes, derived `groups` / `members` sub-attributes,
//!   negations of supersets).
//!
//! If any part was not exact, the whole filter is also checked in process by the evaluator,
//! called from SQL as `scim_match(doc, derived)` on the rows the SQL pre-filter lets through
//! (placed so that SQLite runs it last), so counting, sorting and paging still happen in SQL
//! and are never wrong. A filter on an indexed attribute never scans the tenant: the exact
//! conditions are index lookups, and the evaluator only sees what they select (see the
//! `EXPLAIN QUERY PLAN` tests).
//!
//! # Paging
//!
//! `totalResults` of an unfiltered query is the per-type counter that triggers keep (schema
//! version 3). Index paging is `LIMIT`/`OFFSET` over the sorted rows, except that a filter the
//! evaluator finishes is run once over all its matches, which gives the page and the count in
//! one pass. Cursor paging (RFC 9865) is keyset
//! paging: the cursor holds the sort key and the row id of the last resource returned, so a
//! page is an index seek, whatever its depth, and concurrent inserts or deletes neither skip
//! nor repeat resources that did not change. Cursors are signed with the database's key and
//! bound to the tenant and the query ([`CursorKey`]).

use super::read;
use crate::conn::SqlResult;
use rusqlite::functions::FunctionFlags;
use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension};
use scim_filter::eval::{CompiledFilter, UnknownAttributes};
use scim_filter::{CompValue, CompareOp, Comparison, Filter, ValuePath};
use scim_schema::{AttrLocation, AttrPath, AttributeDef, AttributeType, ResourceSchema, fold_case};
use scim_store_core::Result;
use scim_store_core::backend::sql::{
    self, CursorKey, Hot, IndexedSql, Leaf, LeafSql, SortSpec, SortTarget, SortValue,
};
use scim_store_core::{
    Members, Paging, Query, QueryPage, ResourceKind, ResourceSchemas, SortOrder, TenantId,
};
use serde_json::Value;

/// Runs `query` for `kind` in `tenant`, in one read transaction (one consistent snapshot).
pub(crate) fn run(
    conn: &Connection,
    schemas: &ResourceSchemas,
    cursors: &CursorKey,
    tenant: TenantId,
    kind: ResourceKind,
    query: &Query,
) -> Result<QueryPage> {
    let result = read::in_read_transaction(conn, |conn| {
        run_in(conn, schemas, cursors, tenant, kind, query)
    });
    // The query's evaluator and sort key are not needed past it.
    QUERY_STATE.with(|state| state.take());
    result
}

/// What the per-query SQL functions `scim_match` and `scim_sort` use: the query's compiled
/// filter and sort key. They are registered once per connection ([`register_functions`]) and
/// find the query's state here, on the thread that steps the query's statements (a connection
/// is used by one thread at a time). Registering a function per query would expire every
/// cached statement of the connection (SQLite does that on any function (re)definition), so
/// every later read would pay a re-parse.
#[derive(Default)]
struct QueryState {
    matcher: Option<(CompiledFilter, Option<&'static str>)>,
    sorter: Option<SortSpec>,
}

thread_local! {
    static QUERY_STATE: std::cell::RefCell<QueryState> =
        std::cell::RefCell::new(QueryState::default());
}

fn function_error(message: &str) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(message.into())
}

/// Registers `scim_match(doc, derived)`, the evaluator finishing a query whose filter SQL does
/// not decide alone, and `scim_sort(doc)`, the sort key of an attribute without a column.
pub(crate) fn register_functions(conn: &Connection) -> Result<()> {
    conn.create_scalar_function(
        "scim_match",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            // Each call parses a whole document: a long read stops between two of them.
            if crate::conn::read_must_stop() {
                return Err(function_error("the read was stopped"));
            }
            let doc = ctx
                .get_raw(0)
                .as_str()
                .map_err(|e| rusqlite::Error::UserFunctionError(Box::new(e)))?;
            let mut doc: Value = serde_json::from_str(doc)
                .map_err(|e| rusqlite::Error::UserFunctionError(Box::new(e)))?;
            QUERY_STATE.with(|state| {
                let state = state.borrow();
                let Some((compiled, derived_name)) = &state.matcher else {
                    return Err(function_error("scim_match is used outside a query"));
                };
                if let (Some(name), Ok(derived)) = (derived_name, ctx.get_raw(1).as_str()) {
                    let derived: Value = serde_json::from_str(derived)
                        .map_err(|e| rusqlite::Error::UserFunctionError(Box::new(e)))?;
                    if let Value::Object(object) = &mut doc {
                        read::insert_before_meta(object, name, derived);
                    }
                }
                Ok(compiled.matches(&doc))
            })
        },
    )
    .sql()?;
    conn.create_scalar_function(
        "scim_sort",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            if crate::conn::read_must_stop() {
                return Err(function_error("the read was stopped"));
            }
            let doc = ctx
                .get_raw(0)
                .as_str()
                .map_err(|e| rusqlite::Error::UserFunctionError(Box::new(e)))?;
            let doc: Value = serde_json::from_str(doc)
                .map_err(|e| rusqlite::Error::UserFunctionError(Box::new(e)))?;
            QUERY_STATE.with(|state| match &state.borrow().sorter {
                Some(spec) => Ok(sql_value(spec.value(&doc))),
                None => Err(function_error("scim_sort is used outside a query")),
            })
        },
    )
    .sql()?;
    Ok(())
}

fn run_in(
    conn: &Connection,
    schemas: &ResourceSchemas,
    cursors: &CursorKey,
    tenant: TenantId,
    kind: ResourceKind,
    query: &Query,
) -> Result<QueryPage> {
    let schema = schemas.get(kind);
    let mut condition = String::from("r.tenant = ? AND r.kind = ?");
    let mut params: Vec<SqlValue> = vec![tenant.key().into(), kind.code().into()];
    // Whether the evaluator finishes the filter in process, row by row.
    let mut in_process = false;
    if let Some(filter) = &query.filter {
        let compiled = CompiledFilter::with_mode(filter, schema, UnknownAttributes::Lenient)?;
        let pushed = push_down(filter, schema, kind, tenant);
        condition.push_str(" AND ");
        condition.push_str(&pushed.sql);
        params.extend(pushed.params);
        if !pushed.exact {
            in_process = true;
            let derived_name = pushed.derived.then(|| read::derived_json_sql(kind).0);
            QUERY_STATE.with(|state| state.borrow_mut().matcher = Some((compiled, derived_name)));
            let derived = if pushed.derived {
                read::derived_json_sql(kind).1
            } else {
                "NULL"
            };
            // SQLite evaluates the WHERE terms that hold correlated subqueries (the JSON
            // pre-filters' EXISTS) after all the others, whatever their order in the text. As
            // a plain term, the evaluator would run first, on every row the indexes let
            // through; as a subquery it runs last, on what the pre-filter lets through.
            condition.push_str(&format!(" AND (SELECT scim_match(r.doc, {derived}))"));
        }
    }
    let key = sort_key(schema, kind, query.sort_by.as_ref());
    let descending = query.sort_order == SortOrder::Descending && key.is_some();
    let unfiltered = query.filter.is_none();
    let count_all = || -> Result<u64> {
        if unfiltered {
            // Kept by triggers in every write's transaction, and read in this query's.
            let mut stmt = conn
                .prepare_cached("SELECT count FROM resource_counts WHERE tenant = ?1 AND kind = ?2")
                .sql()?;
            let total: Option<i64> = stmt
                .query_row(rusqlite::params![tenant.key(), kind.code()], |r| r.get(0))
                .optional()
                .sql()?;
            return Ok(u64::try_from(total.unwrap_or(0)).unwrap_or(0));
        }
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT count(*) FROM resources r WHERE {condition}"
            ))
            .sql()?;
        let total: i64 = stmt
            .query_row(rusqlite::params_from_iter(params.iter()), |r| r.get(0))
            .sql()?;
        Ok(u64::try_from(total).unwrap_or(0))
    };
    let limit = query
        .count
        .map_or(-1, |c| i64::try_from(c).unwrap_or(i64::MAX));
    let order = order_by(key.as_ref(), descending);
    let key_column = key.as_ref().map_or("NULL", |k| k.expr);

    let (start_index, resources, next_cursor, total_results) = match &query.paging {
        Paging::Index { start_index } if in_process => {
            // Rows the evaluator must look at are read anyway, so one pass over all matches
            // gives both the page and totalResults, instead of a page query and a count that
            // would each run the pre-filter and the evaluator over the tenant.
            let start_index = (*start_index).max(1);
            let sql = format!(
                "SELECT r.rid, {key_column} FROM resources r WHERE {condition} ORDER BY {order}"
            );
            let matches = page_rows(conn, &sql, &params)?;
            let total = matches.len() as u64;
            let skip = usize::try_from(start_index - 1).unwrap_or(usize::MAX);
            let take = usize::try_from(limit).unwrap_or(usize::MAX);
            let rows: Vec<_> = matches.into_iter().skip(skip).take(take).collect();
            (start_index, load_page(conn, &rows, query)?, None, total)
        }
        Paging::Index { start_index } => {
            let start_index = (*start_index).max(1);
            let rows = if limit == 0 {
                Vec::new()
            } else {
                let offset = i64::try_from(start_index - 1).unwrap_or(i64::MAX);
                let sql = format!(
                    "SELECT r.rid, {key_column} FROM resources r WHERE {condition} ORDER BY {order} LIMIT ? OFFSET ?"
                );
                let mut all = params.clone();
                all.push(limit.into());
                all.push(offset.into());
                page_rows(conn, &sql, &all)?
            };
            // A first page that is not full holds every match: no need to count them.
            let complete = start_index == 1
                && limit != 0
                && (limit < 0 || rows.len() < usize::try_from(limit).unwrap_or(usize::MAX));
            let total = if complete {
                rows.len() as u64
            } else {
                count_all()?
            };
            (start_index, load_page(conn, &rows, query)?, None, total)
        }
        Paging::Cursor(cursor) => {
            let cursors = cursors.scope(tenant, kind, query);
            let mut condition = condition.clone();
            let mut all = params.clone();
            if let Some(cursor) = cursor {
                let (after_key, after_rid) = cursors.decode(cursor)?;
                condition.push_str(" AND ");
                condition.push_str(&keyset(
                    key.as_ref(),
                    descending,
                    after_key,
                    after_rid,
                    &mut all,
                ));
            }
            if limit == 0 {
                (1, Vec::new(), None, count_all()?)
            } else {
                // One more than asked tells whether a next page exists.
                let fetch = if limit < 0 {
                    -1
                } else {
                    limit.saturating_add(1)
                };
                let sql = format!(
                    "SELECT r.rid, {key_column} FROM resources r WHERE {condition} ORDER BY {order} LIMIT ?"
                );
                all.push(fetch.into());
                let mut rows = page_rows(conn, &sql, &all)?;
                let more = limit >= 0 && rows.len() > usize::try_from(limit).unwrap_or(usize::MAX);
                if more {
                    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
                }
                let total = if cursor.is_none() && !more {
                    rows.len() as u64
                } else {
                    count_all()?
                };
                // A page its byte budget cut short continues, like a full one, right after
                // its last resource.
                let resources = load_page(conn, &rows, query)?;
                let cut = resources.len() < rows.len();
                rows.truncate(resources.len());
                let next = match rows.last() {
                    Some((rid, key)) if more || cut => Some(cursors.encode(key, *rid)),
                    _ => None,
                };
                (1, resources, next, total)
            }
        }
    };
    Ok(QueryPage {
        total_results,
        start_index,
        resources,
        next_cursor,
    })
}

/// The resources of the page `rows`, in order, for as many as fit its byte budget
/// ([`Query::max_page_bytes`]): the page's documents are held at most once, and at most the
/// budget (and one resource) of them.
fn load_page(
    conn: &Connection,
    rows: &[(i64, SortValue)],
    query: &Query,
) -> Result<Vec<scim_store_core::StoredResource>> {
    let rids: Vec<i64> = rows.iter().map(|(rid, _)| *rid).collect();
    let max = query.max_page_bytes.unwrap_or(usize::MAX);
    let loaded = match read::rows_by_rids(conn, &rids, max)? {
        Some(loaded) => loaded,
        None => {
            // Too large to hold whole: the prefix that fits by the documents' sizes.
            let fits = read::page_prefix(conn, &rids, &mut query.page_budget())?;
            let prefix = rids.get(..fits).unwrap_or_default();
            read::rows_by_rids(conn, prefix, usize::MAX)?.unwrap_or_default()
        }
    };
    // The exact cut, with what is derived (a User's groups, a Group's members).
    let mut budget = query.page_budget();
    let mut page = Vec::with_capacity(loaded.len());
    for row in loaded {
        let bytes = read::row_bytes(&row);
        let resource = read::resource_of(conn, row, query.members)?;
        let members = match (&resource.document, resource.kind, query.members) {
            (Value::Object(object), ResourceKind::Group, Members::Include) => object
                .get("members")
                .map_or(0, scim_store_core::PageBudget::json_bytes),
            _ => 0,
        };
        if !budget.admit(bytes + members) {
            break;
        }
        page.push(resource);
    }
    Ok(page)
}

fn page_rows(conn: &Connection, sql: &str, params: &[SqlValue]) -> Result<Vec<(i64, SortValue)>> {
    let mut stmt = conn.prepare_cached(sql).sql()?;
    let rows = stmt
        .query_map(rusqlite::params_from_iter(params.iter()), |r| {
            Ok((r.get(0)?, sort_value(r.get(1)?)))
        })
        .sql()?;
    rows.collect::<rusqlite::Result<_>>().sql()
}

// ---------------------------------------------------------------------------------------------
// Push-down

/// A filter translated to SQL over the row aliased `r`.
pub(crate) type PushedDown = sql::PushDown<SqlValue>;

/// Translates `filter` (see the module documentation).
pub(crate) fn push_down(
    filter: &Filter,
    schema: &ResourceSchema,
    kind: ResourceKind,
    tenant: TenantId,
) -> PushedDown {
    let pushed = sql::PushDown::new(kind, tenant, Vec::new());
    sql::push_down(Translator { schema, pushed }, filter)
}

/// The translation of one filter: the schema it names attributes of, and what it built so far.
struct Translator<'a> {
    schema: &'a ResourceSchema,
    pushed: PushedDown,
}

impl LeafSql for Translator<'_> {
    type Param = SqlValue;
    const TRUE: &'static str = "1";
    const FALSE: &'static str = "0";

    fn is_not_true(sql: &str) -> String {
        format!("(({sql}) IS NOT 1)")
    }

    fn pushed(&mut self) -> &mut PushedDown {
        &mut self.pushed
    }

    fn into_pushed(self) -> PushedDown {
        self.pushed
    }

    /// An indexed comparison, else a JSON pre-filter.
    fn compare(&mut self, c: &Comparison) -> Leaf {
        let indexed = match sql::hot(self.schema, self.pushed.kind, &c.path) {
            Some((hot, def)) => self.indexed_compare(hot, def, c),
            None => Leaf::Unknown,
        };
        match indexed {
            Leaf::Unknown => self.json_compare(c),
            leaf => leaf,
        }
    }

    fn present(&mut self, path: &AttrPath) -> Leaf {
        let indexed = match sql::hot(self.schema, self.pushed.kind, path) {
            Some((hot, _)) => self.indexed_present(hot, path),
            None => Leaf::Unknown,
        };
        match indexed {
            Leaf::Unknown => self.json_present(path),
            leaf => leaf,
        }
    }

    fn value_path(&mut self, vp: &ValuePath) -> Leaf {
        match self.hot_value_path(vp) {
            Leaf::Unknown => self.json_value_path(vp),
            leaf => leaf,
        }
    }
}

/// SQLite's spelling of the indexed leaves: positional `?` parameters, `instr` and `substr`.
impl IndexedSql for Translator<'_> {
    type Placeholder = &'static str;

    fn bind_int(&mut self, value: i64) -> &'static str {
        self.pushed.params.push(value.into());
        "?"
    }

    fn bind_bool(&mut self, value: bool) -> &'static str {
        self.bind_int(i64::from(value))
    }

    fn bind_text(&mut self, value: String) -> &'static str {
        self.pushed.params.push(value.into());
        "?"
    }

    fn bind_kind(&mut self) -> &'static str {
        self.bind_int(self.pushed.kind.code())
    }

    // Strings compare in code-point order: SQLite's BINARY collation compares UTF-8 bytes,
    // which is the same order. Substrings count characters.

    fn contains(&mut self, column: &str, needle: String) -> String {
        let p = self.bind_text(needle);
        format!("instr({column}, {p}) > 0")
    }

    fn ends_with(&mut self, column: &str, needle: String) -> String {
        let chars = i64::try_from(needle.chars().count()).unwrap_or(i64::MAX);
        self.bind_int(chars);
        self.bind_int(chars);
        self.bind_text(needle);
        format!("(length({column}) >= ? AND substr({column}, length({column}) - ? + 1) = ?)")
    }

    fn email_condition(&mut self, op: CompareOp, needle: String) -> String {
        if !(matches!(op, CompareOp::Co | CompareOp::Ew) && needle.chars().count() >= 3) {
            return self.email_values(op, needle);
        }
        // The trigram index finds the candidates (resources with values holding every
        // trigram of the needle); their side-table rows are then checked exactly.
        // CROSS JOIN keeps the index as the outer loop: the planner, knowing nothing
        // of a MATCH's selectivity, would rather walk every value of the tenant.
        self.bind_text(trigram_query(&needle));
        self.bind_int(self.pushed.tenant);
        self.bind_kind();
        let cond = self.text_condition("v.value_fold", op, needle);
        format!(
            "r.rid IN (SELECT v.rid FROM value_trigrams f CROSS JOIN resource_values v ON v.rid = f.rowid \
             WHERE value_trigrams MATCH ? AND v.tenant = ? AND v.kind = ? \
             AND v.attr = 'emails.value' AND {cond})"
        )
    }
}

impl<'a> Translator<'a> {
    fn hot_value_path(&mut self, vp: &ValuePath) -> Leaf {
        let Some((hot, _)) = sql::hot(self.schema, self.pushed.kind, &vp.attr) else {
            return Leaf::Unknown;
        };
        if !matches!(hot, Hot::Email | Hot::Member) {
            return Leaf::Unknown;
        }
        // `attr[value op "x"]`: the same as `attr.value op "x"` (the value must be an object
        // holding `value`, which is also all the side tables index).
        let as_value = |f: &Filter| sql::value_path_comparison(vp, f).filter(sql::compares_value);
        if let Some(c) = as_value(&vp.filter) {
            return self.compare(&c);
        }
        // `attr[value op "x" and ...]`: any value matching the whole filter matches the
        // `value` conjunct, so that conjunct alone is a superset.
        if let Filter::And(..) = vp.filter.as_ref() {
            for c in sql::conjuncts(&vp.filter).filter_map(as_value) {
                let mark = self.pushed.params.len();
                if let Leaf::Exact(sql) = self.compare(&c) {
                    self.pushed.derived |= hot == Hot::Member;
                    return Leaf::Superset(sql);
                }
                self.pushed.params.truncate(mark);
            }
        }
        Leaf::Unknown
    }
}

// ---------------------------------------------------------------------------------------------
// Push-down of the attributes that live only in the JSON document

/// Where a path's values live in the stored document: the JSON path of the attribute, and the
/// sub-attribute the comparison reaches inside each of its values, as SQL string literals.
/// Stored documents use the schema's canonical names (see [`scim_store_core::document`]), so a path
/// spelled with them finds what the evaluator's case-insensitive lookup finds.
struct JsonTarget<'a> {
    /// `'$."attr"'` or `'$."urn"."attr"'`.
    attr: String,
    /// `'$."sub"'`, relative to one value of the attribute.
    sub: Option<String>,
    /// `'$."attr"."sub"'`.
    attr_sub: Option<String>,
    /// The definition of what is compared (the sub-attribute, if any).
    def: &'a AttributeDef,
}

/// A JSON path as an SQL string literal, or `None` if a name holds a character that could
/// break out of it (schema names cannot: attribute names are `ALPHA *(nameChar)` and URNs
/// `urn:` plus `[A-Za-z0-9.:-]`, RFC 7643 section 2.1 and section 8.7).
fn json_path_literal(names: &[&str]) -> Option<String> {
    let mut path = String::from("'$");
    for name in names {
        let safe = !name.is_empty()
            && name.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'$')
            });
        if !safe {
            return None;
        }
        path.push_str(".\"");
        path.push_str(name);
        path.push('"');
    }
    path.push('\'');
    Some(path)
}

/// What one leaf value must satisfy (a superset of the evaluator's test on it).
enum JsonTest {
    /// A string comparison; `needle` is folded unless `case_exact`.
    Text {
        op: CompareOp,
        needle: String,
        case_exact: bool,
    },
    /// `eq true` / `eq false`.
    Bool(bool),
    /// `pr`.
    Present,
}

impl<'a> Translator<'a> {
    /// Resolves `path` to where its values live in the document, or `None` when SQL cannot
    /// find them there: an attribute the schema does not define, a derived attribute (`groups`,
    /// `members`: rows, not JSON), or `meta` (assembled from columns).
    fn json_target(&self, path: &AttrPath, compared: bool) -> Option<JsonTarget<'a>> {
        let schema: &'a ResourceSchema = self.schema;
        let resolved = schema.resolve(path)?;
        let attribute = resolved.attribute;
        let derived = read::derived_json_sql(self.pushed.kind).0;
        if resolved.location == AttrLocation::TopLevel
            && (attribute.name == derived || attribute.name == "meta")
        {
            return None;
        }
        let mut sub = resolved.sub_attribute;
        if compared && sub.is_none() && attribute.kind == AttributeType::Complex {
            // RFC 7644 section 3.4.2.2: a complex attribute compares its `value`.
            sub = Some(attribute.sub_attribute("value")?);
        }
        if compared && sub.is_some_and(|s| s.kind == AttributeType::Complex) {
            return None;
        }
        let mut names: Vec<&str> = Vec::with_capacity(3);
        if let AttrLocation::Extension(urn) = resolved.location {
            names.push(urn);
        }
        names.push(&attribute.name);
        let attr = json_path_literal(&names)?;
        let (sub_path, attr_sub) = match sub {
            Some(s) => {
                names.push(&s.name);
                (
                    Some(json_path_literal(&[s.name.as_str()])?),
                    Some(json_path_literal(&names)?),
                )
            }
            None => (None, None),
        };
        Some(JsonTarget {
            attr,
            sub: sub_path,
            attr_sub,
            def: sub.unwrap_or(attribute),
        })
    }

    /// The test a comparison puts on each leaf value, following the evaluator's typing rules;
    /// `Err(leaf)` when the comparison is decided without looking at values, or not pushed.
    fn json_test(&self, c: &Comparison, def: &AttributeDef) -> std::result::Result<JsonTest, Leaf> {
        let text = |case_exact: bool, literal: &str| {
            if literal.contains('\0') {
                // SQLite's text functions are not meant for U+0000: leave it to the evaluator.
                return Err(Leaf::Unknown);
            }
            let needle = if case_exact {
                literal.to_owned()
            } else {
                fold_case(literal).into_owned()
            };
            Ok(JsonTest::Text {
                op: c.op,
                needle,
                case_exact,
            })
        };
        match (def.kind, &c.value) {
            (AttributeType::String | AttributeType::Reference, CompValue::String(s)) => {
                text(def.case_exact, s)
            }
            // RFC 7643 section 2.3.6: "A binary is case exact".
            (AttributeType::Binary, CompValue::String(s)) => text(true, s),
            // dateTime substring tests compare the string form; the others compare instants,
            // which SQL cannot read from the text (offsets, fractions): the evaluator decides.
            (AttributeType::DateTime, CompValue::String(s))
                if matches!(c.op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew) =>
            {
                text(def.case_exact, s)
            }
            (AttributeType::DateTime, CompValue::String(_)) => Err(Leaf::Unknown),
            (AttributeType::Boolean, CompValue::Bool(b)) if c.op == CompareOp::Eq => {
                Ok(JsonTest::Bool(*b))
            }
            (AttributeType::Integer | AttributeType::Decimal, CompValue::Number(_)) => {
                Err(Leaf::Unknown)
            }
            (AttributeType::Complex, _) => Err(Leaf::Unknown),
            // A literal of another type than the attribute's never matches (the evaluator's rule).
            _ => Err(Leaf::Exact("0".into())),
        }
    }

    /// The condition on one leaf value, given the SQL of its JSON type (`json_type`'s names)
    /// and of its SQL value (`json_extract`'s).
    fn json_leaf_condition(&mut self, test: &JsonTest, ty: &str, value: &str) -> String {
        match test {
            JsonTest::Text {
                op,
                needle,
                case_exact,
            } => {
                // Folding is fold_case, the evaluator's. On an ASCII string (as many characters
                // as bytes) that is ASCII lower-casing, which SQLite's lower() does without
                // calling back into Rust; only other strings go to scim_fold.
                let folded = if *case_exact {
                    value.to_owned()
                } else {
                    format!(
                        "CASE WHEN length({value}) = octet_length({value}) THEN lower({value}) \
                         ELSE scim_fold({value}) END"
                    )
                };
                let cond = self.text_condition(&folded, *op, needle.clone());
                format!("({ty} = 'text' AND {cond})")
            }
            JsonTest::Bool(true) => format!("{ty} = 'true'"),
            JsonTest::Bool(false) => format!("{ty} = 'false'"),
            JsonTest::Present => format!("({ty} <> 'null' AND ({ty} <> 'text' OR {value} <> ''))"),
        }
    }

    /// Some value at `path` in the JSON `scope` passes `test`: each element if it is an array,
    /// else the value itself (the evaluator's rule for multi-valued attributes). The scalar
    /// functions share one parse of the document per row; `json_each` runs only on arrays.
    fn json_any_value(&mut self, scope: &str, path: &str, test: &JsonTest) -> String {
        let in_array = self.json_leaf_condition(test, "l.type", "l.value");
        let single = self.json_leaf_condition(
            test,
            &format!("json_type({scope}, {path})"),
            &format!("json_extract({scope}, {path})"),
        );
        format!(
            "CASE json_type({scope}, {path}) WHEN 'array' THEN \
             EXISTS (SELECT 1 FROM json_each({scope}, {path}) l WHERE {in_array}) \
             ELSE {single} END"
        )
    }

    /// Some leaf value of `target` in the JSON `scope` (the document, or one value of a
    /// complex attribute) passes `test`, exactly as the evaluator walks them: the attribute's
    /// values (its elements if it is an array, else itself), and for a sub-attribute, the
    /// sub-attribute's values in each of those that is an object. The shape is read from the
    /// document, not assumed from the schema, so the condition holds wherever the evaluator
    /// matches.
    fn json_any_leaf(&mut self, scope: &str, target: &JsonTarget<'_>, test: &JsonTest) -> String {
        let attr = &target.attr;
        match (&target.sub, &target.attr_sub) {
            (Some(sub), Some(attr_sub)) => {
                let in_elements = self.json_any_value("a.value", sub, test);
                let in_object = self.json_any_value(scope, attr_sub, test);
                format!(
                    "CASE json_type({scope}, {attr}) \
                     WHEN 'array' THEN EXISTS (SELECT 1 FROM json_each({scope}, {attr}) a \
                     WHERE a.type = 'object' AND {in_elements}) \
                     WHEN 'object' THEN {in_object} ELSE 0 END"
                )
            }
            _ => self.json_any_value(scope, attr, test),
        }
    }

    /// A comparison on an attribute held only in the document: a superset pre-filter with
    /// SQLite's JSON functions (the evaluator finishes the rows it lets through).
    fn json_compare(&mut self, c: &Comparison) -> Leaf {
        let Some(target) = self.json_target(&c.path, true) else {
            return Leaf::Unknown;
        };
        match self.json_test(c, target.def) {
            Ok(test) => Leaf::Superset(self.json_any_leaf("r.doc", &target, &test)),
            Err(leaf) => leaf,
        }
    }

    /// `pr` on an attribute held only in the document: the attribute is there and not
    /// trivially empty (a superset: e.g. an array of empty values is not present either).
    fn json_present(&mut self, path: &AttrPath) -> Leaf {
        let Some(target) = self.json_target(path, false) else {
            return Leaf::Unknown;
        };
        Leaf::Superset(self.json_any_leaf("r.doc", &target, &JsonTest::Present))
    }

    /// A complex value filter (`emails[type eq "work" and value co "@example.com"]`) on an
    /// attribute held in the document: some value of it (an object) passes the inner filter's
    /// pre-filter.
    fn json_value_path(&mut self, vp: &ValuePath) -> Leaf {
        let Some(target) = self.json_target(&vp.attr, false) else {
            return Leaf::Unknown;
        };
        if target.sub.is_some() || target.def.kind != AttributeType::Complex {
            return Leaf::Unknown;
        }
        let parent = target.def;
        let attr = &target.attr;
        let mark = self.pushed.params.len();
        let single = format!("json_extract(r.doc, {attr})");
        let (Some(in_values), Some(in_object)) = (
            self.json_inner(&vp.filter, parent, "e.value"),
            self.json_inner(&vp.filter, parent, &single),
        ) else {
            self.pushed.params.truncate(mark);
            return Leaf::Unknown;
        };
        Leaf::Superset(format!(
            "(EXISTS (SELECT 1 FROM json_each(r.doc, {attr}) e \
             WHERE e.type = 'object' AND typeof(e.key) = 'integer' AND {in_values}) \
             OR (json_type(r.doc, {attr}) = 'object' AND {in_object}))"
        ))
    }

    /// A superset pre-filter of a value filter's inner filter, on the value `scope` of the
    /// complex attribute `parent`; `None` if there is none better than "every value".
    fn json_inner(
        &mut self,
        filter: &Filter,
        parent: &'a AttributeDef,
        scope: &str,
    ) -> Option<String> {
        match filter {
            Filter::And(a, b) => {
                let left = self.json_inner(a, parent, scope);
                let right = self.json_inner(b, parent, scope);
                match (left, right) {
                    (Some(l), Some(r)) => Some(format!("({l} AND {r})")),
                    (one, None) | (None, one) => one,
                }
            }
            Filter::Or(a, b) => {
                // Both sides must be bounded for the disjunction to be; the parameters of a
                // side that is dropped must be dropped too.
                let mark = self.pushed.params.len();
                let left = self.json_inner(a, parent, scope);
                let right = self.json_inner(b, parent, scope);
                match (left, right) {
                    (Some(l), Some(r)) => Some(format!("({l} OR {r})")),
                    _ => {
                        self.pushed.params.truncate(mark);
                        None
                    }
                }
            }
            Filter::Compare(c) if c.op != CompareOp::Ne && c.value != CompValue::Null => {
                let target = self.json_sub_target(parent, &c.path, true)?;
                match self.json_test(c, target.def) {
                    Ok(test) => Some(self.json_any_leaf(scope, &target, &test)),
                    Err(Leaf::Exact(sql)) => Some(sql),
                    Err(_) => None,
                }
            }
            Filter::Present(path) => {
                let target = self.json_sub_target(parent, path, false)?;
                Some(self.json_any_leaf(scope, &target, &JsonTest::Present))
            }
            // Negations and `ne` (a `not`): no positive pre-filter.
            _ => None,
        }
    }

    /// A sub-attribute of `parent` named inside its value filter, as a target relative to
    /// one value.
    fn json_sub_target(
        &self,
        parent: &'a AttributeDef,
        path: &AttrPath,
        compared: bool,
    ) -> Option<JsonTarget<'a>> {
        if path.schema.is_some() || path.sub_attr.is_some() {
            return None;
        }
        let def = parent.sub_attribute(&path.name)?;
        if compared && def.kind == AttributeType::Complex {
            return None;
        }
        Some(JsonTarget {
            attr: json_path_literal(&[def.name.as_str()])?,
            sub: None,
            attr_sub: None,
            def,
        })
    }
}

/// An FTS5 query for the rows of a trigram index (`detail=none`, so no phrases) holding every
/// trigram of `needle`: a superset of the values containing `needle`. Long needles are
/// bounded to 32 trigrams (still a superset).
fn trigram_query(needle: &str) -> String {
    let chars: Vec<char> = needle.chars().collect();
    let mut query = String::new();
    for window in chars.windows(3).take(32) {
        if !query.is_empty() {
            query.push_str(" AND ");
        }
        query.push('"');
        for c in window {
            if *c == '"' {
                query.push('"');
            }
            query.push(*c);
        }
        query.push('"');
    }
    query
}

// ---------------------------------------------------------------------------------------------
// Sorting (RFC 7644 section 3.4.2.3)

pub(crate) struct SortKey {
    /// The SQL expression of the key.
    expr: &'static str,
    /// Whether the key is never NULL (then the order can follow an index).
    not_null: bool,
}

/// The sort key of `path`: an indexed column, or `scim_sort(r.doc)` (whose spec this sets for
/// the query).
fn sort_key(
    schema: &ResourceSchema,
    kind: ResourceKind,
    path: Option<&AttrPath>,
) -> Option<SortKey> {
    Some(match sql::sort_target(schema, kind, path?) {
        SortTarget::Column(column) => SortKey {
            expr: column.expr(),
            not_null: column.not_null(),
        },
        SortTarget::Document(spec) => {
            QUERY_STATE.with(|state| state.borrow_mut().sorter = Some(spec));
            SortKey {
                expr: "scim_sort(r.doc)",
                not_null: false,
            }
        }
        // An attribute the schema does not define has no value on any resource.
        SortTarget::Undefined => SortKey {
            expr: "NULL",
            not_null: false,
        },
    })
}

/// A sort value as SQLite binds it.
fn sql_value(value: SortValue) -> SqlValue {
    match value {
        SortValue::Null => SqlValue::Null,
        SortValue::Int(i) => SqlValue::Integer(i),
        SortValue::Real(f) => SqlValue::Real(f),
        SortValue::Text(s) => SqlValue::Text(s),
    }
}

/// A sort key as SQLite returned it (a blob is no sort value: no key column or `scim_sort`
/// yields one).
fn sort_value(value: SqlValue) -> SortValue {
    match value {
        SqlValue::Integer(i) => SortValue::Int(i),
        SqlValue::Real(f) => SortValue::Real(f),
        SqlValue::Text(s) => SortValue::Text(s),
        SqlValue::Null | SqlValue::Blob(_) => SortValue::Null,
    }
}

/// RFC 7644 section 3.4.2.3: resources without a value sort last ascending, first descending;
/// the row id breaks ties so the order is total (cursor paging depends on it).
fn order_by(key: Option<&SortKey>, descending: bool) -> String {
    let dir = if descending { "DESC" } else { "ASC" };
    match key {
        None => "r.rid ASC".to_owned(),
        Some(k) if k.not_null => format!("{} {dir}, r.rid {dir}", k.expr),
        Some(k) => format!("({} IS NULL) {dir}, {} {dir}, r.rid {dir}", k.expr, k.expr),
    }
}

/// The rows strictly after `(after_key, after_rid)` in the order of [`order_by`].
fn keyset(
    key: Option<&SortKey>,
    descending: bool,
    after_key: SortValue,
    after_rid: i64,
    params: &mut Vec<SqlValue>,
) -> String {
    let (cmp, rid_cmp) = if descending { ("<", "<") } else { (">", ">") };
    match key {
        None => {
            params.push(after_rid.into());
            "r.rid > ?".to_owned()
        }
        Some(k) if k.not_null => {
            params.push(sql_value(after_key));
            params.push(after_rid.into());
            format!("({}, r.rid) {cmp} (?, ?)", k.expr)
        }
        Some(k) => {
            let e = &k.expr;
            if after_key == SortValue::Null {
                params.push(after_rid.into());
                if descending {
                    // Nulls come first descending; after them, every non-null.
                    format!("(({e} IS NULL AND r.rid {rid_cmp} ?) OR {e} IS NOT NULL)")
                } else {
                    format!("({e} IS NULL AND r.rid {rid_cmp} ?)")
                }
            } else {
                params.push(sql_value(after_key));
                params.push(after_rid.into());
                let after_non_null = format!("({e} IS NOT NULL AND ({e}, r.rid) {cmp} (?, ?))");
                if descending {
                    after_non_null
                } else {
                    format!("({after_non_null} OR {e} IS NULL)")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SqliteOptions, SqliteStore, conn};
    use scim_store_core::Store;
    use serde_json::json;

    /// The JSON pre-filter of attributes without a column is a superset of what the evaluator
    /// selects (the agreement test checks the end result; this checks the SQL alone), and it
    /// really filters: on these well-formed documents it selects exactly the matches, so the
    /// evaluator only sees those.
    #[test]
    fn json_prefilters_select_the_matches_in_sql() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("prefilter.db");
        let schemas = ResourceSchemas::core();
        let store = SqliteStore::open(&path, schemas.clone(), SqliteOptions::default()).unwrap();
        let enterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
        let docs: Vec<Value> = (0..60)
            .map(|i| {
                let title = ["Director", "director", "Engineer"][i % 3];
                json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", enterprise],
                    "userName": format!("u{i}"),
                    "title": title,
                    "name": {"givenName": if i % 6 == 0 { "Élodie" } else { "Bob" }},
                    "emails": [{"value": format!("e{i}@x.com"),
                                "type": if i % 4 == 0 { "work" } else { "home" },
                                "primary": i % 5 == 0}],
                    enterprise: {"department": if i % 2 == 0 { "Sales" } else { "R&D" },
                                 "manager": {"value": format!("m{}", i % 7)}},
                })
            })
            .collect();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let tenant = runtime.block_on(async {
            let t = store.create_tenant("prefilter").await.unwrap().id;
            let ctx = scim_store_core::WriteContext::actor("test");
            store
                .import(&t, ResourceKind::User, docs, &ctx)
                .await
                .unwrap();
            t
        });
        let reader = conn::open_connection(&path, &SqliteOptions::default(), false).unwrap();
        let schema = schemas.get(ResourceKind::User);
        for (text, expected) in [
            ("title eq \"DIRECTOR\"", 40),
            ("title co \"rect\"", 40),
            ("title ne \"engineer\" and title sw \"D\"", 40),
            ("name.givenName eq \"éLODIE\"", 10),
            ("emails.type eq \"work\"", 15),
            ("emails[type eq \"work\" and primary eq true]", 3),
            ("emails[type eq \"home\" or primary eq true]", 48),
            ("emails.primary eq true", 12),
            ("department eq \"sales\"", 30),
            (&format!("{enterprise}:manager.value sw \"M1\""), 9),
            ("manager[value eq \"m3\"]", 9),
            ("nickName pr", 0),
        ] {
            let filter = scim_filter::parse_filter(text).unwrap();
            let pushed = push_down(&filter, schema, ResourceKind::User, tenant);
            assert!(!pushed.exact, "{text}: the evaluator finishes JSON filters");
            let sql = format!(
                "SELECT count(*) FROM resources r WHERE r.tenant = ? AND r.kind = ? AND {}",
                pushed.sql
            );
            let mut params: Vec<SqlValue> =
                vec![tenant.key().into(), ResourceKind::User.code().into()];
            params.extend(pushed.params);
            let in_sql: i64 = reader
                .query_row(&sql, rusqlite::params_from_iter(params.iter()), |r| {
                    r.get(0)
                })
                .unwrap_or_else(|e| panic!("{text}: {e}\n{sql}"));
            let query = Query {
                filter: Some(filter),
                ..Query::default()
            };
            let total = runtime
                .block_on(store.query(&tenant, ResourceKind::User, &query))
                .unwrap()
                .total_results;
            assert_eq!(total, expected, "{text}: the evaluator's count");
            assert_eq!(
                in_sql,
                i64::try_from(expected).unwrap(),
                "{text}: the SQL pre-filter alone\n{sql}"
            );
        }
    }
}
