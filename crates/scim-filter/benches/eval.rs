//! Filter evaluation benchmarks (RFC 7644 section 3.4.2.2).
//!
//! - `parse_eval`: what one `GET /Users?filter=...` that reads a single resource pays: parse,
//!   check and compile against the User schema, evaluate against one full enterprise user.
//! - `eval`: the per-resource cost of a compiled filter, scanning a directory of 10,000
//!   generated users (what a store without push-down for that filter pays).
//!
//! The filters are the 13 of the project's shared benchmark set (`shared/bench/filters.txt`).
//! Run with `cargo bench -p scimd-filter --bench eval`.

#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented public function"
)]

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use scim_filter::{CompiledFilter, parse_filter};
use scim_schema::ResourceSchema;
use serde_json::{Value, json};
use std::hint::black_box;

/// The shared benchmark filters, in the order of `shared/bench/filters.txt`.
const FILTERS: [&str; 13] = [
    r#"userName eq "bjensen""#,
    r#"name.familyName co "O'Malley""#,
    r#"userName sw "J""#,
    r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#,
    r#"title pr"#,
    r#"meta.lastModified gt "2011-05-13T04:42:34Z""#,
    r#"title pr and userType eq "Employee""#,
    r#"title pr or userType eq "Intern""#,
    r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#,
    r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
    r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#,
    r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
    r#"not (active eq false) and (meta.created ge "2020-01-01T00:00:00Z" or (displayName sw "A" and not (nickName pr)))"#,
];

const DIRECTORY_SIZE: usize = 10_000;

fn schema() -> ResourceSchema {
    scim_schema::core::user()
}

/// A full enterprise user in the shape of RFC 7643 section 8.3.
fn full_enterprise_user() -> Value {
    scim_schema::core::example_enterprise_user()
}

/// A deterministic directory of users with the spread a real one has: a mix of user types,
/// missing titles and nicknames, work and home emails on several domains, dates over 15 years.
fn directory(size: usize) -> Vec<Value> {
    const GIVEN: [&str; 8] = [
        "Anna", "Juan", "Barbara", "Jo", "Amir", "Élodie", "Kenji", "Aoife",
    ];
    const FAMILY: [&str; 8] = [
        "Jensen",
        "O'Malley",
        "García",
        "Smith",
        "Nakamura",
        "Okafor",
        "Dubois",
        "Andersson",
    ];
    const DOMAINS: [&str; 4] = [
        "example.com",
        "example.org",
        "corp.example.net",
        "mail.test",
    ];
    const TYPES: [&str; 4] = ["Employee", "Employee", "Intern", "Contractor"];
    let mut state: u64 = 0x853c_49e6_748f_ea9b;
    let mut next = move || {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        state >> 33
    };
    (0..size)
        .map(|i| {
            let r = next();
            let given = GIVEN[(r % 8) as usize];
            let family = FAMILY[(r / 8 % 8) as usize];
            let user_name = format!("{}.{}{i}", given.to_lowercase(), family.to_lowercase());
            let work = DOMAINS[(r / 64 % 4) as usize];
            let home = DOMAINS[(r / 256 % 4) as usize];
            let year = 2010 + r / 1024 % 15;
            let month = 1 + r / 16_384 % 12;
            let mut user = json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "id": format!("{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}", r, i, r % 4096, i % 4096, r * 7919),
                "userName": user_name,
                "name": { "givenName": given, "familyName": family, "formatted": format!("{given} {family}") },
                "displayName": format!("{given} {family}"),
                "emails": [
                    { "value": format!("{user_name}@{work}"), "type": "work", "primary": true },
                    { "value": format!("{}@{home}", given.to_lowercase()), "type": "home" }
                ],
                "userType": TYPES[(r / 4096 % 4) as usize],
                "active": r % 10 != 0,
                "meta": {
                    "resourceType": "User",
                    "created": format!("{year}-{month:02}-15T09:30:00Z"),
                    "lastModified": format!("{}-{month:02}-20T17:05:12.250+02:00", year + 1),
                    "location": format!("https://example.com/v2/Users/{i}")
                }
            });
            if let Some(object) = user.as_object_mut() {
                if r % 5 < 3 {
                    object.insert("title".into(), json!("Engineer"));
                }
                if r % 3 == 0 {
                    object.insert("nickName".into(), json!(given));
                }
                if r % 7 == 0 {
                    object.insert(
                        "ims".into(),
                        json!([{ "value": format!("{user_name}@foo.com"), "type": "xmpp" }]),
                    );
                }
            }
            user
        })
        .collect()
}

fn parse_eval(c: &mut Criterion) {
    let schema = schema();
    let user = full_enterprise_user();
    let mut group = c.benchmark_group("parse_eval");
    for (index, filter) in FILTERS.iter().enumerate() {
        group.bench_with_input(
            BenchmarkId::from_parameter(index + 1),
            filter,
            |b, filter| {
                b.iter(|| {
                    let parsed = parse_filter(black_box(filter)).expect("benchmark filters parse");
                    let compiled = CompiledFilter::new(&parsed, &schema)
                        .expect("benchmark filters apply to User");
                    compiled.matches(black_box(&user))
                });
            },
        );
    }
    group.finish();
}

fn eval(c: &mut Criterion) {
    let schema = schema();
    let users = directory(DIRECTORY_SIZE);
    let mut group = c.benchmark_group("eval");
    group.throughput(Throughput::Elements(DIRECTORY_SIZE as u64));
    for (index, filter) in FILTERS.iter().enumerate() {
        let parsed = parse_filter(filter).expect("benchmark filters parse");
        let compiled =
            CompiledFilter::new(&parsed, &schema).expect("benchmark filters apply to User");
        group.bench_with_input(
            BenchmarkId::from_parameter(index + 1),
            &compiled,
            |b, compiled| {
                b.iter(|| {
                    users
                        .iter()
                        .filter(|user| compiled.matches(black_box(user)))
                        .count()
                });
            },
        );
    }
    group.finish();
}

criterion_group!(benches, parse_eval, eval);
criterion_main!(benches);
