//! Signed cursors (RFC 9865): what one costs to write and to read, per page of a cursor
//! listing. `scope` binds the query (tenant, resource type, filter, sortBy, sortOrder: once per
//! request); `encode` writes the next page's cursor and `decode` checks the request's (each
//! two HMAC-SHA256 computations, with the key's own set-up done once per store).
//!
//! Run with `cargo bench -p scimd-store-core --bench cursor`.

#![allow(missing_docs, reason = "a bench binary has no public API")]

use criterion::{Criterion, criterion_group, criterion_main};
use scim_schema::AttrPath;
use scim_store_core::backend::sql::{CursorKey, SortValue};
use scim_store_core::backend::tenant_id;
use scim_store_core::{Query, ResourceKind};
use std::hint::black_box;

fn cursors(c: &mut Criterion) {
    let key = CursorKey::from_bytes(&[7; 32]).expect("a 32-byte key");
    let query = Query {
        filter: Some(
            scim_filter::parse_filter("userName sw \"a\" and active eq true").expect("a filter"),
        ),
        sort_by: Some(AttrPath::simple("userName")),
        ..Query::default()
    };
    let scope = key.scope(tenant_id(1), ResourceKind::User, &query);
    let position = SortValue::Text("barbara.jensen@example.com".into());
    let cursor = scope.encode(&position, 123_456);

    let mut group = c.benchmark_group("cursor");
    group.bench_function("scope", |b| {
        b.iter(|| key.scope(tenant_id(1), ResourceKind::User, black_box(&query)))
    });
    group.bench_function("encode", |b| {
        b.iter(|| scope.encode(black_box(&position), black_box(123_456)))
    });
    group.bench_function("decode", |b| {
        b.iter(|| scope.decode(black_box(&cursor)).expect("its own cursor"))
    });
    // One character of the payload changed: the tag no longer verifies.
    let other = if &cursor[5..6] == "A" { "B" } else { "A" };
    let forged = format!("{}{other}{}", &cursor[..5], &cursor[6..]);
    group.bench_function("decode_forged", |b| {
        b.iter(|| scope.decode(black_box(&forged)).is_err())
    });
    let huge = "A".repeat(1 << 20);
    group.bench_function("decode_1MiB", |b| {
        b.iter(|| scope.decode(black_box(&huge)).is_err())
    });
    group.finish();
}

criterion_group!(benches, cursors);
criterion_main!(benches);
