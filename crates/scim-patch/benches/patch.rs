//! Criterion benchmarks: a 10-operation PatchOp on a full enterprise user (parse + apply), and
//! planning a 1,000-member add to a group; for contrast, the same add applied to the document of
//! a 100,000-member group, which is what the plan lets a store avoid.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "bench code: a panic is a failure report"
)]
#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented public function"
)]

use criterion::{BatchSize, Criterion, black_box, criterion_group, criterion_main};
use scim_patch::{PatchOptions, PatchRequest, apply, plan_group_patch};
use serde_json::{Value, json};

fn enterprise_user() -> Value {
    scim_schema::core::example_enterprise_user()
}

/// Ten operations of the kinds identity providers send in one user update.
fn ten_operations() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "Replace", "path": "displayName", "value": "Barbara Jensen"},
            {"op": "Replace", "path": "name.givenName", "value": "Barbara"},
            {"op": "Replace", "path": "name.familyName", "value": "Jensen-Smith"},
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "barbara@example.com"},
            {"op": "Add", "path": "phoneNumbers[type eq \"fax\"].value", "value": "555-555-3333"},
            {"op": "Replace", "path": "active", "value": "True"},
            {"op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department", "value": "Tours"},
            {"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "08e1d05d-121c-4561-8b96-473d93df9210"},
            {"op": "replace", "value": {"title": "Senior Tour Guide", "name.middleName": "J", "locale": "en-GB"}},
            {"op": "Remove", "path": "ims[type eq \"aim\"]"}
        ]
    })
}

fn member_add(n: usize) -> Value {
    let members: Vec<Value> = (0..n)
        .map(|i| json!({"value": format!("4f9c6e2a-0000-4000-8000-{i:012}"), "$ref": null, "type": "User"}))
        .collect();
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "Add", "path": "members", "value": members}]})
}

fn benches(c: &mut Criterion) {
    let options = PatchOptions::default();
    let user = enterprise_user();
    let user_schema = scim_schema::core::user();
    let message = ten_operations();
    c.bench_function("parse + apply: 10 operations on an enterprise user", |b| {
        b.iter(|| {
            let request = PatchRequest::from_json(black_box(&message), &options).unwrap();
            apply(black_box(&user), &user_schema, &request, &options).unwrap()
        })
    });
    let request = PatchRequest::from_json(&message, &options).unwrap();
    c.bench_function("apply only: 10 operations on an enterprise user", |b| {
        b.iter(|| {
            apply(
                black_box(&user),
                &user_schema,
                black_box(&request),
                &options,
            )
            .unwrap()
        })
    });

    let group_schema = scim_schema::core::group();
    let add = member_add(1000);
    c.bench_function("parse + plan: 1,000-member add", |b| {
        b.iter_batched(
            || add.clone(),
            |message| {
                let request = PatchRequest::from_value(message, &options).unwrap();
                plan_group_patch(&request, &group_schema, &options).unwrap()
            },
            BatchSize::SmallInput,
        )
    });
    let add_request = PatchRequest::from_json(&add, &options).unwrap();
    c.bench_function("plan only: 1,000-member add", |b| {
        b.iter(|| plan_group_patch(black_box(&add_request), &group_schema, &options).unwrap())
    });

    let members: Vec<Value> = (0..100_000)
        .map(|i| json!({"value": format!("0b7e7a1c-0000-4000-8000-{i:012}"), "type": "User", "display": format!("User {i}")}))
        .collect();
    let big_group = json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "id": "g", "displayName": "Everyone", "members": members});
    let mut group = c.benchmark_group("contrast");
    group.sample_size(10);
    group.bench_function(
        "apply on the document: 1,000-member add to a 100,000-member group",
        |b| {
            b.iter_batched(
                || (),
                |()| apply(black_box(&big_group), &group_schema, &add_request, &options).unwrap(),
                BatchSize::SmallInput,
            )
        },
    );
    group.finish();
}

criterion_group!(patch, benches);
criterion_main!(patch);
