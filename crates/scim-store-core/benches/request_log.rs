//! The provisioning log's encoding: what one batch of entries costs to turn into segments
//! (serialised, LZ4-compressed, with their summaries and Bloom filters) before a backend
//! inserts them. This runs for every authenticated SCIM request, on the server's one core in
//! `scripts/load.sh`, so its cost per entry is a direct part of the log's overhead there.
//!
//! Run with `cargo bench -p scimd-store-core --bench request_log`.

#![allow(missing_docs, reason = "a bench binary has no public API")]

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use scim_store_core::ResourceKind;
use scim_store_core::admin::RequestRecord;
use scim_store_core::admin::segment::Batch;
use scim_store_core::backend::tenant_id;
use scim_store_core::document;
use std::hint::black_box;

/// A batch as `scripts/load.sh` makes it: one tenant, one token, GETs of users by id or PATCHes
/// with a small body.
fn batch(entries: usize, patch: bool) -> Vec<(RequestRecord, bool)> {
    let at = document::now();
    (0..entries)
        .map(|i| {
            let id = format!("2819c223-7f76-453a-919d-{i:012}");
            let record = RequestRecord {
                tenant: tenant_id(1),
                request_id: format!("0193b6f4-8e1c-7d2a-9f3b-{i:012}"),
                at,
                token_id: "tok_2f9d1c7b".into(),
                token_label: "Entra ID".into(),
                method: if patch { "PATCH" } else { "GET" }.into(),
                path: format!("/t/bench/scim/v2/Users/{id}"),
                status: 200,
                scim_type: None,
                detail: None,
                duration_us: 180,
                resource_type: Some(ResourceKind::User),
                resource_id: Some(id),
                request_body: patch.then(|| {
                    r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}"#.to_owned()
                }),
                response_body: None,
            };
            (record, false)
        })
        .collect()
}

fn encoding(c: &mut Criterion) {
    let mut group = c.benchmark_group("request_log");
    for (name, patch) in [("batch_of_get", false), ("batch_of_patch", true)] {
        group.throughput(Throughput::Elements(4096));
        group.bench_function(name, |b| {
            b.iter_batched(
                || batch(4096, patch),
                |records| black_box(Batch::of(records)),
                BatchSize::LargeInput,
            );
        });
    }
    group.finish();
}

criterion_group!(benches, encoding);
criterion_main!(benches);
