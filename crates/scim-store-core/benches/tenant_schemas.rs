//! A tenant's own schemas on the hot paths: every request looks its tenant's schemas up in the
//! store's cache (`get`); every PATCH first asks whether the stored resource holds attributes
//! the schemas no longer define (`split_unknown`, nearly always "no"); a resource that does
//! pays for setting them aside and back; a schema change builds the tenant's registry once.
//!
//! Run with `cargo bench -p scimd-store-core --bench tenant_schemas`.

#![allow(missing_docs, reason = "a bench binary has no public API")]

use criterion::{Criterion, criterion_group, criterion_main};
use scim_store_core::backend::tenant_id;
use scim_store_core::schemas::SchemaCache;
use scim_store_core::{ResourceKind, ResourceSchemas, TenantSchemas};
use serde_json::{Value, json};
use std::hint::black_box;

const ACME: &str = "urn:example:params:scim:schemas:extension:acme:2.0:User";

fn documents() -> Vec<Value> {
    vec![
        json!({"id": "urn:ietf:params:scim:schemas:core:2.0:Group",
               "attributes": [{"name": "description", "type": "string"}]}),
        json!({"id": ACME, "attributes": [{"name": "officeName", "type": "string"},
                                          {"name": "floor", "type": "string"}]}),
    ]
}

fn tenant_schemas(c: &mut Criterion) {
    let base = ResourceSchemas::core();
    let custom = TenantSchemas::build(&base, 1, documents()).expect("the documents apply");
    let user = custom.resources.get(ResourceKind::User);
    let mut stored = scim_schema::core::example_enterprise_user();
    stored[ACME] = json!({"officeName": "London", "floor": "3"});
    stored["schemas"]
        .as_array_mut()
        .expect("schemas")
        .push(json!(ACME));

    c.bench_function("tenant_schemas/split_unknown, nothing undefined", |b| {
        b.iter(|| black_box(scim_schema::split_unknown(black_box(&stored), user)))
    });
    let without = base.get(ResourceKind::User);
    c.bench_function(
        "tenant_schemas/split_unknown + restore, extension removed",
        |b| {
            b.iter(|| {
                let (mut known, leftovers) =
                    scim_schema::split_unknown(black_box(&stored), without).expect("undefined");
                leftovers.restore(&mut known);
                black_box(known)
            })
        },
    );
    c.bench_function("tenant_schemas/build from two documents", |b| {
        b.iter(|| black_box(TenantSchemas::build(&base, 2, documents())))
    });
    let cache = SchemaCache::new(base.clone());
    let tenant = tenant_id(7);
    cache.observe(tenant, 0);
    c.bench_function("tenant_schemas/cache get", |b| {
        b.iter(|| black_box(cache.get(black_box(tenant))))
    });
}

criterion_group!(benches, tenant_schemas);
criterion_main!(benches);
