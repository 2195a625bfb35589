//! The provisioning log and the admin API over HTTP against a real `scimd` (issue 18), on
//! SQLite and PostgreSQL:
//!
//! - an identity provider's requests (a create, an Entra-style PATCH setting a password in
//!   a dialect spelling, a bad filter, a body that is not JSON) are readable at
//!   `/t/{tenant}/admin/v1/requests` within a second, with their status, `scimType`, redacted
//!   bodies and the feed entries they caused; no password reaches the log in any spelling;
//! - requests that did not authenticate are never stored;
//! - the scope matrix: `scim` and `workplace` tokens get 403 from the admin API, an `admin`
//!   token may use the workplace API, an operator token any tenant's admin API;
//! - narrowing, cursor paging, the JSON Lines export, sync health, tokens and schemas.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../crates/scim-server/tests/common/client.rs"]
mod client;

use client::{Client, Reply, expect};
use http::Method;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

mod support;

use support::{Running, ScratchDatabase, create_tenant, postgres_or_skip, scimd};

const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const SECRET: &str = "Tr0ub4dor&3-never-logged";

fn cli(database: &str, args: &[&str]) -> Value {
    let mut all = vec!["--database", database];
    all.extend_from_slice(args);
    let out = scimd(&all);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn issue(database: &str, tenant: &str, scope: &str) -> String {
    cli(
        database,
        &[
            "token", "issue", "--tenant", tenant, "--scope", scope, "--label", scope,
        ],
    )["token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// A request to `/t/{tenant}/{api}{path}` with `token`.
async fn call(
    addr: SocketAddr,
    token: &str,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> Reply {
    let auth = format!("Bearer {token}");
    client::send(
        addr,
        false,
        method,
        path,
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ],
        body.map(|b| serde_json::to_vec(b).unwrap()),
    )
    .await
}

/// The log's entries for `query`, waiting up to a second and a half for `want` of them.
async fn entries(addr: SocketAddr, token: &str, query: &str, want: usize) -> Value {
    let deadline = Instant::now() + Duration::from_millis(1500);
    loop {
        let reply = call(
            addr,
            token,
            Method::GET,
            &format!("/t/acme/admin/v1/requests{query}"),
            None,
        )
        .await;
        let page = expect(&reply, 200);
        if page["entries"].as_array().unwrap().len() >= want || Instant::now() > deadline {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn conversation(database: &str) {
    let scim_token = create_tenant(database, "acme");
    create_tenant(database, "globex");
    let admin = issue(database, "acme", "admin");
    let workplace = issue(database, "acme", "workplace");
    let operator = cli(
        database,
        &["operator", "token", "issue", "--label", "oncall"],
    )["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let scimd = Running::launch(database, &[], &[], std::process::Stdio::null());
    let addr = scimd.addr;
    let idp = Client::new(addr, "acme", &scim_token);

    // What an identity provider does: create a person, set a password in Entra's spelling,
    // send a filter it got wrong, and a body that is not JSON.
    let created = expect(
        &idp.post(
            "/Users",
            &json!({"schemas": [USER], "userName": "hana@acme.example", "password": SECRET}),
        )
        .await,
        201,
    );
    let id = created["id"].as_str().unwrap().to_owned();
    let patch = idp
        .patch(
            &format!("/Users/{id}"),
            &json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "Replace", "value": {" password": [SECRET], "displayName": "Hana"}}
            ]}),
        )
        .await;
    expect(&patch, 200);
    let patch_id = patch.header("x-request-id").unwrap().to_owned();
    expect(&idp.get("/Users?filter=userName%20eq").await, 400);
    let not_json = idp
        .raw(
            Method::POST,
            "/Users",
            &[
                ("authorization", &format!("Bearer {scim_token}")),
                ("content-type", "application/json"),
            ],
            Some(b"userName=hana".to_vec()),
        )
        .await;
    assert_eq!(not_json.status, 400);
    // Not authenticated: never stored.
    expect(
        &Client::new(addr, "acme", "scimd_not-a-token")
            .get("/Users")
            .await,
        401,
    );

    // Readable within a second, newest first; no password in any of it.
    let page = entries(addr, &admin, "", 4).await;
    let listed = page["entries"].as_array().unwrap();
    assert_eq!(listed.len(), 4, "{page:#}");
    let text = page.to_string();
    assert!(!text.contains(SECRET), "a password reached the log: {text}");
    assert_eq!(listed[0]["status"], 400);
    assert_eq!(listed[0]["method"], "POST");
    assert_eq!(
        listed[0]["requestBody"],
        Value::Null,
        "a body that is not JSON is not kept"
    );
    assert_eq!(listed[1]["scimType"], "invalidFilter");
    assert_eq!(
        listed[1]["path"],
        "/t/acme/scim/v2/Users?filter=userName%20eq"
    );
    assert_eq!(listed[1]["responseBody"]["scimType"], "invalidFilter");
    assert_eq!(listed[2]["id"], patch_id.as_str());
    assert_eq!(
        listed[2]["requestBody"]["Operations"][0]["value"][" password"],
        "[redacted]"
    );
    assert_eq!(
        listed[2]["requestBody"]["Operations"][0]["value"]["displayName"],
        "Hana"
    );
    assert_eq!(listed[3]["status"], 201);
    assert_eq!(listed[3]["resourceType"], "User");
    assert_eq!(
        listed[3]["resourceId"],
        id.as_str(),
        "the created id, from Location"
    );
    assert_eq!(listed[3]["requestBody"]["password"], "[redacted]");
    assert_eq!(listed[3]["token"]["label"], "initial");

    // What a request did, and which request did it: one step apart.
    let one = expect(
        &call(
            addr,
            &admin,
            Method::GET,
            &format!("/t/acme/admin/v1/requests/{patch_id}"),
            None,
        )
        .await,
        200,
    );
    let effects = one["effects"].as_array().unwrap();
    assert!(
        effects.iter().any(|e| e["subject"] == "User"
            && e["id"] == id.as_str()
            && e["requestId"] == patch_id.as_str()),
        "{one:#}"
    );

    // Narrowing and paging.
    let errors = entries(addr, &admin, "?status=4xx", 2).await;
    assert_eq!(errors["entries"].as_array().unwrap().len(), 2);
    let typed = entries(addr, &admin, "?scimType=invalidF", 1).await;
    assert_eq!(typed["entries"].as_array().unwrap().len(), 1);
    let about = entries(addr, &admin, &format!("?person={id}"), 2).await;
    assert_eq!(about["entries"].as_array().unwrap().len(), 2, "{about:#}");
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = entries(addr, &admin, &format!("?limit=1{cursor}"), 1).await;
        seen.push(page["entries"][0]["id"].clone());
        match page["next"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => break,
        }
    }
    assert_eq!(seen.len(), 4);
    let bad = call(
        addr,
        &admin,
        Method::GET,
        "/t/acme/admin/v1/requests?status=6xx",
        None,
    )
    .await;
    assert_eq!(expect(&bad, 400)["error"], "invalidValue");
    let forged = call(
        addr,
        &admin,
        Method::GET,
        "/t/acme/admin/v1/requests?cursor=AAAA",
        None,
    )
    .await;
    assert_eq!(forged.status, 400);

    // The export: every entry, one JSON object per line.
    let export = call(
        addr,
        &admin,
        Method::GET,
        "/t/acme/admin/v1/requests/export",
        None,
    )
    .await;
    assert_eq!(export.status, 200);
    assert_eq!(export.header("content-type"), Some("application/jsonl"));
    let lines: Vec<Value> = String::from_utf8(export.body.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 4);

    // Sync health: the identity provider's token is calling, with one error in the hour.
    let health = expect(
        &call(addr, &admin, Method::GET, "/t/acme/admin/v1/health", None).await,
        200,
    );
    let connection = &health["connections"][0];
    assert_eq!(connection["state"], "calling", "{health:#}");
    assert_eq!(connection["requests"]["lastHour"], 4);
    assert_eq!(connection["errors"]["lastHour"], 2);
    assert_eq!(connection["lastError"]["status"], 400);

    // The scope matrix.
    for (token, status) in [
        (&scim_token, 403),
        (&workplace, 403),
        (&admin, 200),
        (&operator, 200),
    ] {
        let reply = call(addr, token, Method::GET, "/t/acme/admin/v1/health", None).await;
        assert_eq!(
            reply.status,
            status,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    let reply = call(
        addr,
        &admin,
        Method::GET,
        "/t/acme/workplace/v1/sites",
        None,
    )
    .await;
    assert_eq!(reply.status, 200, "admin may do what workplace may");
    let reply = call(addr, &admin, Method::GET, "/t/acme/scim/v2/Users", None).await;
    assert_eq!(
        reply.status, 403,
        "admin does not write people through SCIM"
    );
    let reply = call(addr, &admin, Method::GET, "/t/globex/admin/v1/health", None).await;
    assert_eq!(
        reply.status, 401,
        "a tenant's admin token is not another tenant's"
    );
    let reply = call(
        addr,
        &operator,
        Method::GET,
        "/t/globex/admin/v1/requests",
        None,
    )
    .await;
    assert_eq!(
        expect(&reply, 200)["entries"],
        json!([]),
        "globex sees none of acme's log"
    );
    let reply = call(
        addr,
        &operator,
        Method::GET,
        "/t/nosuch/admin/v1/health",
        None,
    )
    .await;
    assert_eq!(reply.status, 404);
    let reply = call(addr, "", Method::GET, "/t/acme/admin/v1/health", None).await;
    assert_eq!(reply.status, 401);

    // Tokens: issue a SCIM token for a new connection, use it, revoke it.
    let issued = expect(
        &call(
            addr,
            &admin,
            Method::POST,
            "/t/acme/admin/v1/tokens",
            Some(&json!({"label": "okta", "scope": "scim"})),
        )
        .await,
        201,
    );
    let okta = Client::new(addr, "acme", issued["secret"].as_str().unwrap());
    expect(&okta.get("/Users").await, 200);
    let listed = expect(
        &call(addr, &admin, Method::GET, "/t/acme/admin/v1/tokens", None).await,
        200,
    );
    assert!(
        listed["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t.get("secret").is_none())
    );
    let revoke = format!("/t/acme/admin/v1/tokens/{}", issued["id"].as_str().unwrap());
    assert_eq!(
        call(addr, &admin, Method::DELETE, &revoke, None)
            .await
            .status,
        204
    );
    assert_eq!(okta.get("/Users").await.status, 401);
    assert_eq!(
        call(addr, &admin, Method::DELETE, &revoke, None)
            .await
            .status,
        404
    );
    let bad = call(
        addr,
        &admin,
        Method::POST,
        "/t/acme/admin/v1/tokens",
        Some(&json!({"label": "x", "scope": "root"})),
    )
    .await;
    assert_eq!(bad.status, 400);

    // Schemas: replaced with the CLI's checks, read back.
    let extension = json!({"id": "urn:ietf:params:scim:schemas:extension:acme:2.0:User",
        "attributes": [{"name": "badge", "type": "string"}]});
    let put = call(
        addr,
        &admin,
        Method::PUT,
        "/t/acme/admin/v1/schemas",
        Some(&json!({"documents": [extension]})),
    )
    .await;
    assert_eq!(expect(&put, 200)["documents"].as_array().unwrap().len(), 1);
    let broken = call(
        addr,
        &admin,
        Method::PUT,
        "/t/acme/admin/v1/schemas",
        Some(&json!({"documents": [{"id": 3}]})),
    )
    .await;
    assert_eq!(broken.status, 400);
    let read = expect(
        &call(addr, &admin, Method::GET, "/t/acme/admin/v1/schemas", None).await,
        200,
    );
    assert_eq!(
        read["documents"][0]["id"],
        "urn:ietf:params:scim:schemas:extension:acme:2.0:User"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provisioning_log_and_admin_api_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    conversation(dir.path().join("scimd.db").to_str().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_provisioning_log_and_admin_api_on_postgres() {
    let Some(admin_url) = postgres_or_skip("the provisioning log on PostgreSQL").await else {
        return;
    };
    let scratch = ScratchDatabase::create(&admin_url, "scimd_admin_api").await;
    conversation(&scratch.url).await;
    scratch.remove().await;
}

/// One row of the scope matrix: what, method, path, body, and the status for each of
/// scim, workplace, admin, operator and no credentials.
type Cell = (&'static str, Method, &'static str, Option<Value>, [u16; 5]);

/// The scope matrix of docs/admin-api.md, every cell: which credentials each group of
/// endpoints accepts. 2xx where allowed; 403 for a token of the tenant whose scope does not
/// reach; 401 for credentials the endpoints do not know (an operator token outside the admin
/// API, none at all).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scope_matrix_holds_in_every_cell() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("scimd.db");
    let database = database.to_str().unwrap();
    let scim = create_tenant(database, "acme");
    let workplace = issue(database, "acme", "workplace");
    let admin = issue(database, "acme", "admin");
    let operator = cli(
        database,
        &["operator", "token", "issue", "--label", "oncall"],
    )["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let scimd = Running::launch(database, &[], &[], std::process::Stdio::null());
    let user =
        |n: usize| json!({"schemas": [USER], "userName": format!("matrix-{n}@acme.example")});
    let site = json!({"name": "London Bridge"});
    let token_body = json!({"label": "new", "scope": "workplace"});
    let schemas = json!({"documents": []});
    // (endpoint, method, path, body, [scim, workplace, admin, operator, none])
    let cells: Vec<Cell> = vec![
        (
            "SCIM: write people",
            Method::POST,
            "/t/acme/scim/v2/Users",
            Some(user(0)),
            [201, 403, 403, 401, 401],
        ),
        (
            "SCIM: read people",
            Method::GET,
            "/t/acme/scim/v2/Users",
            None,
            [200, 403, 403, 401, 401],
        ),
        (
            "workplace: write places",
            Method::PUT,
            "/t/acme/workplace/v1/sites/lon",
            Some(site),
            [403, 201, 200, 401, 401],
        ),
        (
            "workplace: read bookings",
            Method::GET,
            "/t/acme/workplace/v1/bookings",
            None,
            [403, 200, 200, 401, 401],
        ),
        (
            "admin: the log",
            Method::GET,
            "/t/acme/admin/v1/requests",
            None,
            [403, 403, 200, 200, 401],
        ),
        (
            "admin: health",
            Method::GET,
            "/t/acme/admin/v1/health",
            None,
            [403, 403, 200, 200, 401],
        ),
        (
            "admin: list tokens",
            Method::GET,
            "/t/acme/admin/v1/tokens",
            None,
            [403, 403, 200, 200, 401],
        ),
        (
            "admin: issue tokens",
            Method::POST,
            "/t/acme/admin/v1/tokens",
            Some(token_body),
            [403, 403, 201, 201, 401],
        ),
        (
            "admin: read schemas",
            Method::GET,
            "/t/acme/admin/v1/schemas",
            None,
            [403, 403, 200, 200, 401],
        ),
        (
            "admin: replace schemas",
            Method::PUT,
            "/t/acme/admin/v1/schemas",
            Some(schemas),
            [403, 403, 200, 200, 401],
        ),
    ];
    let credentials = [scim.as_str(), &workplace, &admin, &operator, ""];
    let names = ["scim", "workplace", "admin", "operator", "none"];
    let mut created = 0;
    for (what, method, path, body, expected) in cells {
        for ((token, name), want) in credentials.iter().zip(names).zip(expected) {
            // A create must not collide with the previous cell's.
            let body = if path.ends_with("/Users") && method == Method::POST {
                created += 1;
                Some(user(created))
            } else {
                body.clone()
            };
            let reply = call(scimd.addr, token, method.clone(), path, body.as_ref()).await;
            assert_eq!(
                reply.status,
                want,
                "{what} with a {name} token: {}",
                String::from_utf8_lossy(&reply.body)
            );
        }
    }
}
