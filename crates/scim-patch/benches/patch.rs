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
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "701984",
        "userName": "bjensen@example.com",
        "name": {"formatted": "Ms. Barbara J Jensen, III", "familyName": "Jensen", "givenName": "Barbara", "middleName": "Jane", "honorificPrefix": "Ms.", "honorificSuffix": "III"},
        "displayName": "Babs Jensen",
        "nickName": "Babs",
        "profileUrl": "https://login.example.com/bjensen",
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": true}, {"value": "babs@jensen.org", "type": "home"}],
        "addresses": [
            {"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood", "region": "CA", "postalCode": "91608", "country": "USA", "formatted": "100 Universal City Plaza\nHollywood, CA 91608 USA", "primary": true},
            {"type": "home", "streetAddress": "456 Hollywood Blvd", "locality": "Hollywood", "region": "CA", "postalCode": "91608", "country": "USA", "formatted": "456 Hollywood Blvd\nHollywood, CA 91608 USA"}
        ],
        "phoneNumbers": [{"value": "555-555-5555", "type": "work"}, {"value": "555-555-4444", "type": "mobile"}],
        "ims": [{"value": "someaimhandle", "type": "aim"}],
        "photos": [{"value": "https://photos.example.com/profilephoto/72930000000Ccne/F", "type": "photo"}],
        "userType": "Employee",
        "title": "Tour Guide",
        "preferredLanguage": "en-US",
        "locale": "en-US",
        "timezone": "America/Los_Angeles",
        "active": true,
        "groups": [{"value": "e9e30dba-f08f-4109-8486-d5c6a331660a", "$ref": "https://example.com/v2/Groups/e9e30dba-f08f-4109-8486-d5c6a331660a", "display": "Tour Guides"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "701984", "costCenter": "4130", "organization": "Universal Studios", "division": "Theme Park", "department": "Tour Operations",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
        },
        "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z", "version": "W/\"3694e05e9dff591\"", "location": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646"}
    })
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
