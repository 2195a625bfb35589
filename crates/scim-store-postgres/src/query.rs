//! Queries (RFC 7644 section 3.4.2): filter push-down, sorting, index and cursor paging.
//!
//! # Push-down
//!
//! The filter is first compiled with the scim-filter evaluator (so a filter the evaluator
//! rejects is rejected here too, with its error). It is then rewritten in negation normal form
//! (`not` pushed down to the comparisons; `ne` is `not eq`, as the evaluator defines it) and each
//! comparison becomes one of:
//!
//! - **exact** SQL, selecting exactly what the evaluator would: comparisons on the indexed
//!   columns (`userName`, `displayName`, `externalId`, `id`, `active`, `meta.lastModified`,
//!   `meta.created`), whose folded values were computed in Rust with
//!   [`scim_schema::fold_case`] and are compared in the `"C"` collation (code-point order, the
//!   evaluator's); `emails.value` through its side table; `members.value eq` and `members pr`
//!   through the membership rows. A negated exact comparison is `(sql) IS NOT TRUE`, also true
//!   where SQL says NULL (an absent attribute), as `not` is where the evaluator finds no value;
//! - **a superset**: equality on any other `caseExact` string, boolean or integer attribute
//!   (core or extension, top-level or sub-attribute, single- or multi-valued) becomes `jsonb`
//!   containment on `attrs`, which the GIN index answers (`attrs @> '{"nickname": "x"}'`);
//! - `TRUE` for the rest (and for negated supersets).
//!
//! If the SQL is exact, counting, sorting and paging happen in SQL. If not, the candidates the
//! SQL selects are read in batches and the evaluator decides each one in process (PostgreSQL
//! cannot call into the replica), and the matches are counted, sorted and paged in process.
//! Either way the answer is the evaluator's, and a filter on an indexed attribute never reads
//! the whole tenant.
//!
//! # Sorting and paging
//!
//! `sortBy` on an indexed column sorts in SQL (ascending puts resources without a value last,
//! descending first, RFC 7644 section 3.4.2.3, which is PostgreSQL's default `NULLS` placement);
//! any other attribute is sorted in process by its primary-or-first value, folded unless
//! `caseExact`. Cursor paging (RFC 9865) is keyset paging: the cursor holds the sort key and
//! the row id of the last resource returned, signed with the database's key and bound to the
//! tenant and the query ([`CursorKey`]); it is checked before anything is read.

use super::read::{self, code};
use super::{Fail, PgResult};
use deadpool_postgres::{GenericClient, StatementCache};
use futures_util::StreamExt;
use scim_filter::eval::{CompiledFilter, UnknownAttributes};
use scim_filter::{CompValue, CompareOp, Comparison, Filter, ValuePath};
use scim_schema::{AttrLocation, AttrPath, AttributeType, ResourceSchema};
use scim_store_core::StoreError;
use scim_store_core::backend::sql::{
    self, CursorKey, CursorScope, Hot, IndexedSql, Leaf, LeafSql, SortColumn, SortSpec, SortTarget,
    SortValue, ordering_sql,
};
use scim_store_core::{
    Paging, Query, QueryPage, ResourceKind, ResourceSchemas, SortOrder, TenantId,
};
use serde_json::{Map, Value};
use std::cmp::Ordering;
use std::fmt;
use tokio_postgres::Statement;
use tokio_postgres::types::ToSql;

/// A bound parameter.
type Param = Box<dyn ToSql + Sync + Send>;

fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// How many candidate rows are read at a time when the evaluator finishes a filter.
const SCAN_BATCH: i64 = 2_000;

/// The most prepared statements a connection's cache keeps after the query path prepared one
/// (see [`prepare`]). The other paths prepare a fixed set of texts (about a hundred), so a
/// connection reaches the bound only when filters of many shapes have run on it.
const STATEMENT_CACHE_BOUND: usize = 256;

/// A client with deadpool's per-connection statement cache, which the query path bounds.
pub(crate) trait CachingClient: GenericClient {
    /// The cache of the connection this client runs on.
    fn statement_cache(&self) -> &StatementCache;
}

impl CachingClient for deadpool_postgres::Transaction<'_> {
    fn statement_cache(&self) -> &StatementCache {
        &self.statement_cache
    }
}

/// `sql` prepared once per connection: every later run of the same text is one round trip
/// (Bind/Execute) instead of two (Parse/Describe, then Bind/Execute), as `query(&str)` costs.
///
/// The text of a filtered query follows the shape of its filter, which the client chooses, so
/// without a bound a client could fill the cache with any number of statements, each held in
/// this process and in the server's backend. When preparing leaves more than
/// [`STATEMENT_CACHE_BOUND`] statements cached, the whole cache is emptied: the dropped
/// statements are closed on the server (tokio-postgres sends `Close` when the last handle goes),
/// and the few statements in steady use are prepared again on their next run. Clearing all
/// rather than evicting one keeps this to deadpool's public API (`size`, `clear`); a workload
/// with fewer shapes than the bound never clears. The statement returned stays valid while the
/// caller holds it, cleared or not.
///
/// Only statements whose plan cannot depend on the values bound are cached (see
/// [`plan_is_value_independent`]): PostgreSQL plans a prepared statement for its values for its
/// first five runs, then may switch to one generic plan for any values, and a generic plan of
/// `attrs @> $3` (a GIN search) or `modified_ns > $3` is a scan of the tenant, chosen because
/// the unknown value is assumed unselective. Other statements are prepared for this run only,
/// which is always planned for its values, as `query(&str)` was.
async fn prepare<C: CachingClient>(client: &C, sql: &str) -> PgResult<Statement> {
    if !plan_is_value_independent(sql) {
        return Ok(client.prepare(sql).await?);
    }
    let statement = client.prepare_cached(sql).await?;
    let cache = client.statement_cache();
    if cache.size() > STATEMENT_CACHE_BOUND {
        cache.clear();
    }
    Ok(statement)
}

/// Whether the best plan of the query path's `sql` is the same whatever values are bound: its
/// condition is the tenant and type, and at most equalities on the nearly unique indexed
/// columns (`userName`, `id`, `externalId`, `displayName`: an index lookup for any value),
/// joined by `AND`, `OR`, `NOT`, `IS NOT TRUE` (a negation) and parentheses. Anything else
/// (containment, ranges, keyset cursors, substring functions, `active`, whose two values may
/// be far from equally common) is not, and is planned at each run.
fn plan_is_value_independent(sql: &str) -> bool {
    const BASE: &str = "r.tenant = $1 AND r.kind = $2";
    const EQUALITIES: [&str; 4] = [
        "r.user_name_fold = $",
        "r.id = $",
        "r.external_id = $",
        "r.display_name_fold = $",
    ];
    let Some((_, after_where)) = sql.split_once(" WHERE ") else {
        return false;
    };
    let condition = after_where
        .split_once(" ORDER BY ")
        .map_or(after_where, |(condition, _)| condition);
    let Some(mut rest) = condition.strip_prefix(BASE) else {
        return false;
    };
    let mut left = String::with_capacity(rest.len());
    'scan: while !rest.is_empty() {
        for equality in EQUALITIES {
            if let Some(after) = rest.strip_prefix(equality) {
                let digits = after.bytes().take_while(u8::is_ascii_digit).count();
                if digits > 0 {
                    rest = &after[digits..];
                    continue 'scan;
                }
            }
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            left.push(c);
        }
        rest = chars.as_str();
    }
    left.split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .all(|word| matches!(word, "" | "AND" | "OR" | "NOT" | "IS" | "TRUE"))
}

/// Runs `query` for `kind` in `tenant`, in the caller's snapshot.
pub(crate) async fn run<C: CachingClient>(
    client: &C,
    schemas: &ResourceSchemas,
    cursors: &CursorKey,
    tenant: TenantId,
    kind: ResourceKind,
    query: &Query,
) -> PgResult<QueryPage> {
    let schema = schemas.get(kind);
    let mut params: Vec<Param> = vec![Box::new(tenant.key()), Box::new(code(kind))];
    let mut condition = String::from("r.tenant = $1 AND r.kind = $2");
    let mut finish = None;
    if let Some(filter) = &query.filter {
        let compiled = CompiledFilter::with_mode(filter, schema, UnknownAttributes::Lenient)
            .map_err(StoreError::from)?;
        let pushed = push_down(filter, schema, kind, tenant, params);
        params = pushed.params;
        condition.push_str(" AND ");
        condition.push_str(&pushed.sql);
        if !pushed.exact {
            finish = Some((compiled, pushed.derived));
        }
    }
    let key = sort_key(schema, kind, query.sort_by.as_ref());
    let descending = query.sort_order == SortOrder::Descending && query.sort_by.is_some();
    let scope = cursors.scope(tenant, kind, query);
    // A cursor this store did not issue for this query is refused before anything is read.
    let after = match &query.paging {
        Paging::Cursor(Some(cursor)) => Some(scope.decode(cursor)?),
        _ => None,
    };
    // Kept for a page its byte budget cuts short (see below).
    let resume = scope.clone();
    let cursors = Cursors { scope, after };
    let in_process = finish.is_some() || matches!(key, Some(SortKey::InProcess(_)));
    let (start_index, entries, next_cursor, total_results) = if in_process {
        let matches = scan(client, kind, &condition, params, finish, key.as_ref()).await?;
        page_in_process(matches, descending, query, cursors)?
    } else {
        let column = match key {
            Some(SortKey::Column(c)) => Some(c),
            _ => None,
        };
        page_in_sql(
            client,
            &condition,
            params,
            column.as_ref(),
            descending,
            query,
            cursors,
        )
        .await?
    };
    let rids: Vec<i64> = entries.iter().map(|(_, rid)| *rid).collect();
    let resources = read::load_page(client, kind, &rids, query).await?;
    // A page its byte budget cut short continues, like a full one, right after its last
    // resource.
    let next_cursor = match (&query.paging, resources.len().checked_sub(1)) {
        (Paging::Cursor(_), Some(last)) if resources.len() < entries.len() => {
            entries.get(last).map(|(key, rid)| resume.encode(key, *rid))
        }
        _ => next_cursor,
    };
    Ok(QueryPage {
        total_results,
        start_index,
        resources,
        next_cursor,
    })
}

/// A query's cursors: the scope that writes and reads them, and the position the request's
/// cursor holds (already checked).
struct Cursors {
    scope: CursorScope,
    after: Option<(SortValue, i64)>,
}

/// `(startIndex, the page's sort keys and rids, nextCursor, totalResults)`.
type Page = (u64, Vec<(SortValue, i64)>, Option<String>, u64);

fn limit_of(query: &Query) -> Option<i64> {
    query.count.map(|c| i64::try_from(c).unwrap_or(i64::MAX))
}

/// Counting, sorting and paging in SQL: the filter was pushed down exactly and the sort key is
/// a column.
async fn page_in_sql<C: CachingClient>(
    client: &C,
    condition: &str,
    params: Vec<Param>,
    key: Option<&SortColumn>,
    descending: bool,
    query: &Query,
    cursors: Cursors,
) -> PgResult<Page> {
    let Cursors { scope, after } = cursors;
    let limit = limit_of(query);
    let order = order_by(key, descending);
    let key_expr = key.map_or("NULL::bigint", |k| k.expr());
    let count_sql = format!("SELECT count(*) FROM resources r WHERE {condition}");
    match &query.paging {
        Paging::Index { start_index } => {
            let start_index = (*start_index).max(1);
            let rids: Vec<i64> = if limit == Some(0) {
                Vec::new()
            } else {
                let offset = i64::try_from(start_index - 1).unwrap_or(i64::MAX);
                let n = params.len();
                let sql = format!(
                    "SELECT r.rid FROM resources r WHERE {condition} ORDER BY {order} LIMIT ${} OFFSET ${}",
                    n + 1,
                    n + 2
                );
                let mut all = refs(&params);
                all.push(&limit);
                all.push(&offset);
                let statement = prepare(client, &sql).await?;
                let rows = client.query(&statement, &all).await?;
                rows.iter()
                    .map(|r| r.try_get(0).map_err(Fail::from))
                    .collect::<PgResult<_>>()?
            };
            // A first page that is not full holds every match: no need to count them.
            let complete = start_index == 1
                && limit != Some(0)
                && limit.is_none_or(|l| (rids.len() as u64) < u64::try_from(l).unwrap_or(0));
            let total = if complete {
                rids.len() as u64
            } else {
                count(client, &count_sql, &params).await?
            };
            let entries = rids.into_iter().map(|rid| (SortValue::Null, rid)).collect();
            Ok((start_index, entries, None, total))
        }
        Paging::Cursor(_) => {
            let first_page = after.is_none();
            let mut condition = condition.to_owned();
            let mut all_params = Vec::new();
            if let Some((after_key, after_rid)) = after {
                let mut keyset_params = Keyset {
                    base: params.len(),
                    params: Vec::new(),
                };
                let sql = keyset_params.condition(key, descending, after_key, after_rid)?;
                condition.push_str(" AND ");
                condition.push_str(&sql);
                all_params = keyset_params.params;
            }
            let mut merged: Vec<&(dyn ToSql + Sync)> = refs(&params);
            merged.extend(refs(&all_params));
            if limit == Some(0) {
                return Ok((
                    1,
                    Vec::new(),
                    None,
                    count(client, &count_sql, &params).await?,
                ));
            }
            // One more than asked tells whether a next page exists.
            let fetch = limit.map(|l| l.saturating_add(1));
            let sql = format!(
                "SELECT r.rid, {key_expr} FROM resources r WHERE {condition} ORDER BY {order} LIMIT ${}",
                merged.len() + 1
            );
            merged.push(&fetch);
            let statement = prepare(client, &sql).await?;
            let rows = client.query(&statement, &merged).await?;
            let mut entries = Vec::with_capacity(rows.len());
            for row in &rows {
                let value = match key {
                    Some(column) => column_value(row, 1, *column)?,
                    None => SortValue::Null,
                };
                entries.push((value, row.try_get::<_, i64>(0)?));
            }
            let more = limit.is_some_and(|l| entries.len() as u64 > u64::try_from(l).unwrap_or(0));
            if more {
                entries.truncate(usize::try_from(limit.unwrap_or(0)).unwrap_or(usize::MAX));
            }
            let next = match entries.last() {
                Some((key, rid)) if more => Some(scope.encode(key, *rid)),
                _ => None,
            };
            let total = if first_page && !more {
                entries.len() as u64
            } else {
                count(client, &count_sql, &params).await?
            };
            Ok((1, entries, next, total))
        }
    }
}

async fn count<C: CachingClient>(client: &C, sql: &str, params: &[Param]) -> PgResult<u64> {
    let statement = prepare(client, sql).await?;
    let row = client.query_one(&statement, &refs(params)).await?;
    let n: i64 = row.try_get(0)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Reads the candidates the SQL condition selects, in batches, keeping those the evaluator
/// accepts (when `finish` is given), with their sort values.
async fn scan<C: CachingClient>(
    client: &C,
    kind: ResourceKind,
    condition: &str,
    params: Vec<Param>,
    finish: Option<(CompiledFilter, bool)>,
    key: Option<&SortKey>,
) -> PgResult<Vec<(SortValue, i64)>> {
    let needs_doc = finish.is_some() || matches!(key, Some(SortKey::InProcess(_)));
    let with_derived = finish.as_ref().is_some_and(|(_, derived)| *derived);
    let doc = if needs_doc { "r.doc" } else { "NULL::text" };
    let derived = if with_derived {
        read::derived_sql(kind, scim_store_core::Members::Include)
    } else {
        "NULL::json"
    };
    let key_expr = match key {
        Some(SortKey::Column(c)) => c.expr(),
        _ => "NULL::bigint",
    };
    let n = params.len();
    let sql = format!(
        "SELECT r.rid, {doc}, {derived}, {key_expr} FROM resources r WHERE {condition} \
         AND r.rid > ${} ORDER BY r.rid LIMIT {SCAN_BATCH}",
        n + 1
    );
    let stmt = prepare(client, &sql).await?;
    let mut out = Vec::new();
    let mut after: i64 = i64::MIN;
    loop {
        let mut all = refs(&params);
        all.push(&after);
        // Row by row as they arrive: a batch of large documents is never held whole.
        let rows = client.query_raw(&stmt, all).await?;
        let mut rows = std::pin::pin!(rows);
        let mut batch_len: usize = 0;
        let mut slice = read::Slice::new();
        while let Some(row) = rows.next().await {
            slice.tick().await;
            let row = row?;
            batch_len += 1;
            let rid: i64 = row.try_get(0)?;
            after = rid;
            let document = if needs_doc {
                let text: String = row.try_get(1)?;
                let mut document = read::parse(&text)?;
                if with_derived {
                    let values = read::derived_values(kind, row.try_get(2)?);
                    if let (false, Value::Object(object)) = (values.is_empty(), &mut document) {
                        read::insert_before_meta(
                            object,
                            read::derived_name(kind),
                            Value::Array(values),
                        );
                    }
                }
                Some(document)
            } else {
                None
            };
            if let (Some((compiled, _)), Some(document)) = (&finish, &document) {
                if !compiled.matches(document) {
                    continue;
                }
            }
            let value = match key {
                None => SortValue::Null,
                Some(SortKey::Column(c)) => column_value(&row, 3, *c)?,
                Some(SortKey::InProcess(spec)) => {
                    document.as_ref().map_or(SortValue::Null, |d| spec.value(d))
                }
            };
            out.push((value, rid));
        }
        if batch_len < usize::try_from(SCAN_BATCH).unwrap_or(usize::MAX) {
            break;
        }
    }
    Ok(out)
}

/// Sorts and pages the matches found in process, with the order of [`order_by`].
fn page_in_process(
    mut matches: Vec<(SortValue, i64)>,
    descending: bool,
    query: &Query,
    cursors: Cursors,
) -> PgResult<Page> {
    let Cursors { scope, after } = cursors;
    matches.sort_by(entry_order);
    if descending {
        matches.reverse();
    }
    let total = matches.len() as u64;
    let limit = query
        .count
        .map(|c| usize::try_from(c).unwrap_or(usize::MAX));
    match &query.paging {
        Paging::Index { start_index } => {
            let start_index = (*start_index).max(1);
            let skip = usize::try_from(start_index - 1).unwrap_or(usize::MAX);
            let entries = matches
                .into_iter()
                .skip(skip)
                .take(limit.unwrap_or(usize::MAX))
                .collect();
            Ok((start_index, entries, None, total))
        }
        Paging::Cursor(_) => {
            let start = match after {
                None => 0,
                Some(after) => matches.partition_point(|e| {
                    let o = entry_order(e, &after);
                    if descending {
                        o != Ordering::Less
                    } else {
                        o != Ordering::Greater
                    }
                }),
            };
            let rest = matches.get(start..).unwrap_or_default();
            let take = limit.unwrap_or(usize::MAX).min(rest.len());
            let page = rest.get(..take).unwrap_or_default();
            let more = rest.len() > take;
            let next = match page.last() {
                Some((key, rid)) if more && take > 0 => Some(scope.encode(key, *rid)),
                _ => None,
            };
            Ok((1, page.to_vec(), next, total))
        }
    }
}

/// The sort value of `column`, selected at `index` of `row`.
fn column_value(
    row: &tokio_postgres::Row,
    index: usize,
    column: SortColumn,
) -> PgResult<SortValue> {
    Ok(if column.is_text() {
        row.try_get::<_, Option<String>>(index)?
            .map_or(SortValue::Null, SortValue::Text)
    } else {
        row.try_get::<_, Option<i64>>(index)?
            .map_or(SortValue::Null, SortValue::Int)
    })
}

/// The ascending order: resources with a value first, by value, then by row id.
fn entry_order(a: &(SortValue, i64), b: &(SortValue, i64)) -> Ordering {
    let by_value = match (&a.0, &b.0) {
        (SortValue::Null, SortValue::Null) => Ordering::Equal,
        (SortValue::Null, _) => Ordering::Greater,
        (_, SortValue::Null) => Ordering::Less,
        (x, y) => x.compare(y),
    };
    by_value.then(a.1.cmp(&b.1))
}

/// `EXPLAIN` of the filter's condition, with sequential scans disabled so that the plan shows
/// whether an index can answer it (on a small table PostgreSQL scans anyway).
pub(crate) async fn explain<C: GenericClient>(
    client: &C,
    schemas: &ResourceSchemas,
    tenant: TenantId,
    kind: ResourceKind,
    query: &Query,
) -> PgResult<Vec<String>> {
    let schema = schemas.get(kind);
    let mut params: Vec<Param> = vec![Box::new(tenant.key()), Box::new(code(kind))];
    let mut condition = String::from("r.tenant = $1 AND r.kind = $2");
    if let Some(filter) = &query.filter {
        let pushed = push_down(filter, schema, kind, tenant, params);
        params = pushed.params;
        condition.push_str(" AND ");
        condition.push_str(&pushed.sql);
    }
    client.batch_execute("SET enable_seqscan = off").await?;
    let rows = client
        .query(
            format!("EXPLAIN SELECT r.rid FROM resources r WHERE {condition}").as_str(),
            &refs(&params),
        )
        .await;
    client.batch_execute("RESET enable_seqscan").await?;
    rows?
        .iter()
        .map(|r| r.try_get(0).map_err(Fail::from))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Push-down

/// A filter translated to SQL over the row aliased `r`.
type PushedDown = sql::PushDown<Param>;

/// Translates `filter` (see the module documentation); its parameters follow `params`.
fn push_down(
    filter: &Filter,
    schema: &ResourceSchema,
    kind: ResourceKind,
    tenant: TenantId,
    params: Vec<Param>,
) -> PushedDown {
    let pushed = sql::PushDown::new(kind, tenant, params);
    sql::push_down(Translator { schema, pushed }, filter)
}

/// The translation of one filter: the schema it names attributes of, and what it built so far.
struct Translator<'a> {
    schema: &'a ResourceSchema,
    pushed: PushedDown,
}

impl LeafSql for Translator<'_> {
    type Param = Param;
    const TRUE: &'static str = "TRUE";
    const FALSE: &'static str = "FALSE";

    fn is_not_true(sql: &str) -> String {
        format!("(({sql}) IS NOT TRUE)")
    }

    fn pushed(&mut self) -> &mut PushedDown {
        &mut self.pushed
    }

    fn into_pushed(self) -> PushedDown {
        self.pushed
    }

    /// An indexed comparison, else `jsonb` containment.
    fn compare(&mut self, c: &Comparison) -> Leaf {
        match sql::hot(self.schema, self.pushed.kind, &c.path) {
            Some((hot, def)) => self.indexed_compare(hot, def, c),
            None => self.containment(&c.path, c.op, &c.value),
        }
    }

    fn present(&mut self, path: &AttrPath) -> Leaf {
        match sql::hot(self.schema, self.pushed.kind, path) {
            Some((hot, _)) => self.indexed_present(hot, path),
            None => Leaf::Unknown,
        }
    }

    fn value_path(&mut self, vp: &ValuePath) -> Leaf {
        self.side_table_or_containment(vp)
    }
}

/// A parameter's place in the SQL: `$n`, numbered from 1 in the order bound.
struct Placeholder(usize);

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${}", self.0)
    }
}

/// PostgreSQL's spelling of the indexed leaves: numbered parameters, `strpos` and `right`.
impl IndexedSql for Translator<'_> {
    type Placeholder = Placeholder;

    fn bind_int(&mut self, value: i64) -> Placeholder {
        self.param(value)
    }

    fn bind_bool(&mut self, value: bool) -> Placeholder {
        self.param(value)
    }

    fn bind_text(&mut self, value: String) -> Placeholder {
        self.param(value)
    }

    fn bind_kind(&mut self) -> Placeholder {
        self.param(code(self.pushed.kind))
    }

    // Strings compare in code-point order: the `"C"` collation compares UTF-8 bytes, which is
    // the same order. Substrings count characters.

    fn contains(&mut self, column: &str, needle: String) -> String {
        let p = self.param(needle);
        format!("strpos({column}, {p}) > 0")
    }

    fn ends_with(&mut self, column: &str, needle: String) -> String {
        let p = self.param(needle);
        format!("right({column}, char_length({p})) = {p}")
    }

    fn ordering(&mut self, column: &str, op: CompareOp, needle: String) -> String {
        if let Some(nul) = needle.find('\0') {
            // Only orderings get here with U+0000 (the indexed leaves answer the other
            // operators FALSE). No stored value holds U+0000, so comparing with
            // `prefix U+0000 rest` is comparing with the prefix: every value above the prefix
            // is above the needle too, and the prefix itself is below it.
            let prefix = needle.get(..nul).unwrap_or_default().to_owned();
            let p = self.param(prefix);
            return match op {
                CompareOp::Gt | CompareOp::Ge => format!("{column} > {p}"),
                _ => format!("{column} <= {p}"),
            };
        }
        let p = self.param(needle);
        format!("{column} {} {p}", ordering_sql(op).unwrap_or("="))
    }
}

impl<'a> Translator<'a> {
    /// Binds `value`; returns its placeholder.
    fn param(&mut self, value: impl ToSql + Sync + Send + 'static) -> Placeholder {
        self.pushed.params.push(Box::new(value));
        Placeholder(self.pushed.params.len())
    }

    /// A value filter: through the side table of `emails` / `members`, else containment.
    fn side_table_or_containment(&mut self, vp: &ValuePath) -> Leaf {
        // `attr[sub op "x"]` selects what `attr.sub op "x"` selects when the filter is one
        // comparison on a sub-attribute; with a conjunction, each conjunct is a superset.
        let hot = sql::hot(self.schema, self.pushed.kind, &vp.attr).map(|(h, _)| h);
        let side_table = matches!(hot, Some(Hot::Email | Hot::Member));
        if let Some(c) = sql::value_path_comparison(vp, &vp.filter) {
            if side_table && sql::compares_value(&c) {
                return self.compare(&c);
            }
            if hot.is_none() {
                return match self.containment(&c.path, c.op, &c.value) {
                    Leaf::Exact(sql) | Leaf::Superset(sql) => Leaf::Superset(sql),
                    Leaf::Unknown => Leaf::Unknown,
                };
            }
        }
        if let Filter::And(..) = vp.filter.as_ref() {
            for c in sql::conjuncts(&vp.filter).filter_map(|f| sql::value_path_comparison(vp, f)) {
                let leaf = if side_table {
                    if sql::compares_value(&c) {
                        self.compare(&c)
                    } else {
                        Leaf::Unknown
                    }
                } else if hot.is_none() {
                    self.containment(&c.path, c.op, &c.value)
                } else {
                    Leaf::Unknown
                };
                if let Leaf::Exact(sql) | Leaf::Superset(sql) = leaf {
                    self.pushed.derived |= hot == Some(Hot::Member);
                    return Leaf::Superset(sql);
                }
            }
        }
        Leaf::Unknown
    }

    /// `attrs @> ...`: a superset of `path eq value` for a `caseExact` string, a boolean or an
    /// integer attribute, answered by the GIN index. The document is matched in both shapes
    /// (single value and array), as the evaluator accepts either.
    fn containment(&mut self, path: &AttrPath, op: CompareOp, value: &CompValue) -> Leaf {
        if op != CompareOp::Eq {
            return Leaf::Unknown;
        }
        let Some(resolved) = self.schema.resolve(path) else {
            return Leaf::Unknown;
        };
        let def = resolved.target();
        let literal = match (def.kind, value) {
            (AttributeType::String | AttributeType::Reference, CompValue::String(s))
                if def.case_exact && !s.contains('\0') =>
            {
                Value::String(s.clone())
            }
            (AttributeType::Boolean, CompValue::Bool(b)) => Value::Bool(*b),
            (AttributeType::Integer, CompValue::Number(n)) if n.is_i64() || n.is_u64() => {
                Value::Number(n.clone())
            }
            _ => return Leaf::Unknown,
        };
        let attribute = resolved.attribute;
        if attribute.name == "id" || attribute.name == "meta" {
            return Leaf::Unknown;
        }
        let wrap = |inner: Value| -> Value {
            let mut object = Map::new();
            match resolved.location {
                AttrLocation::TopLevel => {
                    object.insert(attribute.name.clone(), inner);
                }
                AttrLocation::Extension(urn) => {
                    let mut nested = Map::new();
                    nested.insert(attribute.name.clone(), inner);
                    object.insert(urn.to_owned(), Value::Object(nested));
                }
            }
            Value::Object(object)
        };
        let (single, multi) = match resolved.sub_attribute {
            None => (literal.clone(), Value::Array(vec![literal])),
            Some(sub) => {
                if sub.multi_valued {
                    return Leaf::Unknown;
                }
                let mut object = Map::new();
                object.insert(sub.name.clone(), literal);
                let object = Value::Object(object);
                (object.clone(), Value::Array(vec![object]))
            }
        };
        let a = self.param(wrap(single));
        let b = self.param(wrap(multi));
        Leaf::Superset(format!("(r.attrs @> {a} OR r.attrs @> {b})"))
    }
}

// ---------------------------------------------------------------------------------------------
// Sorting (RFC 7644 section 3.4.2.3)

enum SortKey {
    /// A key SQL has in a column.
    Column(SortColumn),
    InProcess(SortSpec),
}

fn sort_key(
    schema: &ResourceSchema,
    kind: ResourceKind,
    path: Option<&AttrPath>,
) -> Option<SortKey> {
    Some(match sql::sort_target(schema, kind, path?) {
        SortTarget::Column(column) => SortKey::Column(column),
        SortTarget::Document(spec) => SortKey::InProcess(spec),
        // An attribute the schema does not define has no value on any resource.
        SortTarget::Undefined => SortKey::InProcess(SortSpec::none()),
    })
}

/// RFC 7644 section 3.4.2.3: resources without a value sort last ascending, first descending
/// (PostgreSQL's default `NULLS LAST` / `NULLS FIRST`); the row id breaks ties so the order is
/// total (cursor paging depends on it).
fn order_by(key: Option<&SortColumn>, descending: bool) -> String {
    let dir = if descending { "DESC" } else { "ASC" };
    match key {
        None => "r.rid ASC".to_owned(),
        Some(k) if k.unique() => format!("{} {dir}", k.expr()),
        Some(k) => format!("{} {dir}, r.rid {dir}", k.expr()),
    }
}

/// Builds the keyset condition "strictly after `(key, rid)` in the order of [`order_by`]".
struct Keyset {
    base: usize,
    params: Vec<Param>,
}

impl Keyset {
    fn param(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.base + self.params.len())
    }

    fn key_param(&mut self, key: &SortColumn, value: SortValue) -> PgResult<String> {
        Ok(match (key.is_text(), value) {
            (true, SortValue::Text(s)) if !s.contains('\0') => self.param(s),
            (false, SortValue::Int(i)) => self.param(i),
            _ => {
                return Err(StoreError::InvalidCursor(
                    "the cursor's position does not fit this query".into(),
                )
                .into());
            }
        })
    }

    fn condition(
        &mut self,
        key: Option<&SortColumn>,
        descending: bool,
        after_key: SortValue,
        after_rid: i64,
    ) -> PgResult<String> {
        let cmp = if descending { "<" } else { ">" };
        let Some(k) = key else {
            let r = self.param(after_rid);
            return Ok(format!("r.rid > {r}"));
        };
        let e = k.expr();
        if after_key == SortValue::Null {
            if k.not_null() {
                return Err(StoreError::InvalidCursor(
                    "the cursor's position does not fit this query".into(),
                )
                .into());
            }
            let r = self.param(after_rid);
            return Ok(if descending {
                // Nulls come first descending; after them, every non-null.
                format!("(({e} IS NULL AND r.rid {cmp} {r}) OR {e} IS NOT NULL)")
            } else {
                format!("({e} IS NULL AND r.rid {cmp} {r})")
            });
        }
        let v = self.key_param(k, after_key)?;
        let after_value = if k.unique() {
            format!("{e} {cmp} {v}")
        } else {
            let r = self.param(after_rid);
            format!("({e}, r.rid) {cmp} ({v}, {r})")
        };
        Ok(if k.not_null() {
            after_value
        } else if descending {
            format!("({e} IS NOT NULL AND {after_value})")
        } else {
            format!("(({e} IS NOT NULL AND {after_value}) OR {e} IS NULL)")
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_statements_planned_alike_for_every_value_are_cached() {
        use super::plan_is_value_independent as cached;
        let page = |condition: &str| {
            format!(
                "SELECT r.rid FROM resources r WHERE r.tenant = $1 AND r.kind = $2{condition} \
                 ORDER BY r.rid LIMIT $9 OFFSET $10"
            )
        };
        assert!(cached(&page("")));
        assert!(cached(&page(" AND r.user_name_fold = $3")));
        assert!(cached(&page(
            " AND (r.external_id = $3 OR NOT (r.id = $4 AND r.display_name_fold = $5))"
        )));
        assert!(cached(&page(
            " AND ((r.user_name_fold = $3) AND ((r.display_name_fold = $4) IS NOT TRUE))"
        )));
        assert!(cached(
            "SELECT count(*) FROM resources r WHERE r.tenant = $1 AND r.kind = $2 AND r.id = $3"
        ));
        for planned_each_time in [
            " AND (r.attrs @> $3 OR r.attrs @> $4)",
            " AND r.modified_ns > $3",
            " AND (r.user_name_fold >= $3 AND r.user_name_fold < $4)",
            " AND strpos(r.user_name_fold, $3) > 0",
            " AND r.active = $3",
            " AND r.user_name_fold = $3 AND r.rid > $4",
            " AND r.user_name_fold = $",
            " AND r.user_name_folder = $3",
        ] {
            assert!(!cached(&page(planned_each_time)), "{planned_each_time}");
        }
        assert!(!cached("SELECT 1"));
        assert!(!cached(
            "SELECT r.rid FROM resources r WHERE r.kind = $2 AND r.tenant = $1"
        ));
    }

    use super::*;
    use scim_store_core::backend::token;

    #[test]
    fn in_process_order_matches_sql_order() {
        // Ascending: values first (numbers below text, as SQLite), then NULLs; row ids break
        // ties.
        let mut entries = [
            (SortValue::Null, 1),
            (SortValue::Text("b".into()), 2),
            (SortValue::Int(3), 3),
            (SortValue::Real(2.5), 4),
            (SortValue::Text("b".into()), 0),
            (SortValue::Text("É".into()), 5),
        ];
        entries.sort_by(entry_order);
        let rids: Vec<i64> = entries.iter().map(|e| e.1).collect();
        assert_eq!(rids, vec![4, 3, 0, 2, 5, 1]);
    }

    /// A fresh schema on the test server (`SCIMD_TEST_POSTGRES_URL`), dropped with everything
    /// in it when this is dropped, as in `tests/postgres.rs`.
    struct TestSchema {
        url: String,
        name: String,
        runtime: tokio::runtime::Runtime,
    }

    impl TestSchema {
        /// `None` when the server is unreachable and `SCIMD_REQUIRE_POSTGRES` is not `1`.
        fn new() -> Option<TestSchema> {
            let url = std::env::var("SCIMD_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let mut bytes = [0u8; 8];
            getrandom::fill(&mut bytes).unwrap();
            let name = format!("t_{}", token::hex(&bytes));
            let created = runtime.block_on(admin(&url, &format!("CREATE SCHEMA {name}")));
            if let Err(why) = created {
                if std::env::var("SCIMD_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                    panic!(
                        "SCIMD_REQUIRE_POSTGRES=1 but PostgreSQL at {url} is unreachable: {why}"
                    );
                }
                eprintln!("SKIPPED: PostgreSQL at {url} is unreachable: {why}");
                return None;
            }
            Some(TestSchema { url, name, runtime })
        }
    }

    impl Drop for TestSchema {
        fn drop(&mut self) {
            let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
            let _ = self.runtime.block_on(admin(&self.url, &sql));
        }
    }

    /// Runs `sql` on a connection of its own.
    async fn admin(url: &str, sql: &str) -> Result<(), tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
        let task = tokio::spawn(connection);
        let done = client.batch_execute(sql).await;
        drop(client);
        let _ = task.await;
        done
    }

    /// Queries of 300 distinct filter shapes (each its own statement text), through every
    /// statement of the SQL path (page, count, cursor page, load), on one pooled connection:
    /// the statements are cached (a repeated query prepares nothing new), the cache never holds
    /// more than [`STATEMENT_CACHE_BOUND`] statements after a query, and the answers are right
    /// before and after it is cleared.
    #[test]
    fn distinct_filter_shapes_do_not_grow_the_statement_cache_past_its_bound() {
        use super::super::{PostgresOptions, PostgresStore};
        use scim_store_core::Store;
        use scim_store_core::WriteContext;

        let Some(schema) = TestSchema::new() else {
            return;
        };
        let options = PostgresOptions {
            schema: Some(schema.name.clone()),
            // One connection, so that every query runs on the cache inspected.
            max_connections: 1,
            ..PostgresOptions::default()
        };
        schema.runtime.block_on(async {
            let store = PostgresStore::connect(&schema.url, ResourceSchemas::core(), options)
                .await
                .unwrap();
            let tenant = store.create_tenant("cache").await.unwrap().id;
            let user = serde_json::json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "bjensen",
            });
            let created = store
                .create(&tenant, ResourceKind::User, user, &WriteContext::actor("t"))
                .await
                .unwrap();
            let cached = || async { store.pool.get().await.unwrap().statement_cache.size() };

            let query_of = |shape: usize| {
                // `a` alternatives on userName, `b` negated ones on displayName: all exact, so
                // the SQL decides, and every (a, b) is another statement text.
                let (a, b) = (1 + shape / 15, shape % 15);
                let mut filter = vec![r#"userName eq "bjensen""#; a].join(" or ");
                if b > 0 {
                    let not = vec![r#"displayName eq "x""#; b].join(" or ");
                    filter = format!("({filter}) and not ({not})");
                }
                let (paging, count) = match shape % 3 {
                    0 => (Paging::Index { start_index: 1 }, None),
                    // Only the count runs.
                    1 => (Paging::Index { start_index: 1 }, Some(0)),
                    _ => (Paging::Cursor(None), Some(1)),
                };
                Query {
                    filter: Some(scim_filter::parse_filter(&filter).unwrap()),
                    paging,
                    count,
                    ..Query::default()
                }
            };

            let mut peak = 0;
            let mut cleared = false;
            let mut last = cached().await;
            for shape in 0..300 {
                let query = query_of(shape);
                let page = store
                    .query(&tenant, ResourceKind::User, &query)
                    .await
                    .unwrap();
                assert_eq!(page.total_results, 1, "shape {shape}");
                let expected = if query.count == Some(0) { 0 } else { 1 };
                assert_eq!(page.resources.len(), expected, "shape {shape}");
                assert!(page.resources.iter().all(|r| r.id == created.id));
                let size = cached().await;
                assert!(
                    size <= STATEMENT_CACHE_BOUND,
                    "shape {shape}: {size} statements cached"
                );
                if shape == 0 {
                    assert!(size > last, "the query's statements are cached");
                    // The same shape again is answered from the cache: nothing new prepared.
                    store
                        .query(&tenant, ResourceKind::User, &query)
                        .await
                        .unwrap();
                    assert_eq!(cached().await, size);
                }
                cleared |= size < last;
                peak = peak.max(size);
                last = size;
            }
            assert!(
                cleared,
                "300 shapes went past the bound, so the cache was cleared"
            );
            assert!(
                peak > STATEMENT_CACHE_BOUND / 2,
                "statements were kept between clears (peak {peak})"
            );
        });
    }
}
