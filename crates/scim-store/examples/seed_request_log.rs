//! Fills a tenant's provisioning log with realistic entries, for measuring the admin API over a
//! large log (`scripts/request-log-bench.sh` runs it, then times `GET /requests`).
//!
//! ```text
//! cargo run --release -p scimd-store --example seed_request_log -- DATABASE TENANT ENTRIES
//! ```
//!
//! DATABASE is an SQLite file or a `postgres://` URL (migrated on open); TENANT is created if
//! missing. Entries are spread over the last 29 days (within the default retention), from four
//! identity provider tokens, over 10,000 users and 500 groups: 90% reads and writes that
//! succeeded, 10% errors of the kinds identity providers meet (`invalidFilter`, `uniqueness`,
//! `invalidValue`, 404s), each with a body of a few hundred bytes, as Entra ID and Okta send.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use scim_schema::DateTime;
use scim_store::admin::{AdminStore, RequestRecord};
use scim_store::postgres::{PostgresOptions, PostgresStore};
use scim_store::sqlite::{SqliteOptions, SqliteStore};
use scim_store::{ResourceKind, ResourceSchemas};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

const BATCH: usize = 5_000;

/// A small deterministic generator (xorshift), so that two runs seed the same log.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [database, tenant_name, entries] = args.as_slice() else {
        eprintln!("usage: seed_request_log DATABASE TENANT ENTRIES");
        std::process::exit(2);
    };
    let entries: usize = entries.parse().expect("ENTRIES is a number");
    let store: Arc<dyn AdminStore> = if database.starts_with("postgres") {
        Arc::new(
            PostgresStore::connect(
                database,
                ResourceSchemas::core(),
                PostgresOptions::default(),
            )
            .await
            .unwrap(),
        )
    } else {
        Arc::new(
            SqliteStore::open(database, ResourceSchemas::core(), SqliteOptions::default()).unwrap(),
        )
    };
    let tenant = match store.tenant_by_name(tenant_name).await.unwrap() {
        Some(tenant) => tenant,
        None => store.create_tenant(tenant_name).await.unwrap(),
    };
    let now = scim_store::document::now().unix_seconds;
    let span = 29 * 86_400;
    let tokens = [
        ("tok-entra", "entra-prod"),
        ("tok-okta", "okta"),
        ("tok-hr", "hr-feed"),
        ("tok-test", "entra-test"),
    ];
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let started = Instant::now();
    let mut written = 0;
    while written < entries {
        let n = BATCH.min(entries - written);
        let mut batch = Vec::with_capacity(n);
        for i in 0..n {
            // Oldest first, as a log fills.
            let offset = span - (span * (written + i) as i64) / entries as i64;
            let at = DateTime {
                unix_seconds: now - offset,
                nanos: u32::try_from(rng.below(1_000_000_000)).unwrap(),
            };
            let (token_id, token_label) = tokens[rng.below(4) as usize];
            let user = format!("{:08x}-user", rng.below(10_000));
            let roll = rng.below(100);
            let (method, path, kind, id, status, scim_type, detail, body) = match roll {
                0..=39 => ("GET", format!("/t/{tenant_name}/scim/v2/Users?filter=userName%20eq%20%22{user}%40acme.example%22"), Some(ResourceKind::User), None, 200, None, None, None),
                40..=59 => ("PATCH", format!("/t/{tenant_name}/scim/v2/Users/{user}"), Some(ResourceKind::User), Some(user.clone()), 200, None, None,
                    Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "Replace", "path": "title", "value": "Engineer"}, {"op": "Replace", "path": "active", "value": "True"}]}).to_string())),
                60..=74 => ("POST", format!("/t/{tenant_name}/scim/v2/Users"), Some(ResourceKind::User), Some(user.clone()), 201, None, None,
                    Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("{user}@acme.example"), "active": true, "name": {"givenName": "Hana", "familyName": "Example"}, "emails": [{"primary": true, "type": "work", "value": format!("{user}@acme.example")}], "password": "[redacted]"}).to_string())),
                75..=89 => {
                    let group = format!("{:08x}-group", rng.below(500));
                    ("PATCH", format!("/t/{tenant_name}/scim/v2/Groups/{group}"), Some(ResourceKind::Group), Some(group), 204, None, None,
                        Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "Add", "path": "members", "value": [{"value": user}]}]}).to_string()))
                }
                90..=93 => ("GET", format!("/t/{tenant_name}/scim/v2/Users?filter=userName%20eq"), Some(ResourceKind::User), None, 400, Some("invalidFilter"), Some("the filter ends where a value was expected (at byte 11)".to_owned()), None),
                94..=96 => ("POST", format!("/t/{tenant_name}/scim/v2/Users"), Some(ResourceKind::User), None, 409, Some("uniqueness"), Some(format!("userName \"{user}@acme.example\" is already in use")),
                    Some(json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": format!("{user}@acme.example")}).to_string())),
                97..=98 => ("PATCH", format!("/t/{tenant_name}/scim/v2/Users/{user}"), Some(ResourceKind::User), Some(user.clone()), 400, Some("invalidValue"), Some("Operations[0].value: active must be a boolean".to_owned()),
                    Some(json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "Replace", "path": "active", "value": "maybe"}]}).to_string())),
                _ => ("GET", format!("/t/{tenant_name}/scim/v2/Users/{user}"), Some(ResourceKind::User), Some(user.clone()), 404, None, Some(format!("User \"{user}\" not found")), None),
            };
            let response_body = detail.as_ref().map(|d| {
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"], "status": status.to_string(), "scimType": scim_type, "detail": d}).to_string()
            });
            batch.push(RequestRecord {
                tenant: tenant.id,
                request_id: format!("seed{:08x}-{:x}", rng.next() as u32, written + i),
                at,
                token_id: token_id.to_owned(),
                token_label: token_label.to_owned(),
                method: method.to_owned(),
                path,
                status,
                scim_type: scim_type.map(str::to_owned),
                detail,
                duration_us: 200 + rng.below(3_000),
                resource_type: kind,
                resource_id: id,
                request_body: body,
                response_body,
            });
        }
        store.append_requests(batch).await.unwrap();
        written += n;
        if written % 100_000 == 0 {
            eprintln!(
                "{written} entries, {:.1} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    println!(
        "{{\"tenant\": \"{tenant_name}\", \"entries\": {entries}, \"seconds\": {:.1}}}",
        started.elapsed().as_secs_f64()
    );
}
