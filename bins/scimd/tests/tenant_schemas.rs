//! Per-tenant schemas over HTTP against a real `scimd` (issue 17), on SQLite and PostgreSQL:
//!
//! - an Entra ID conversation whose Groups carry `description` (a customappsso attribute,
//!   merged into the core Group schema with no URN): refused with a 400 that says how to add
//!   it, then, after `scimd schema set` on the running server, created, PATCHed and listed;
//! - an Okta conversation with a custom extension (`officeName`), created, filtered, sorted and
//!   updated with PUT, and a workplace rule on it that allows a London booking and refuses a
//!   Paris one;
//! - a schema change the rule depends on refused naming the rule; a removed attribute no
//!   longer served, yet kept through the identity provider's next PATCH;
//! - two tenants with different extensions, neither seeing the other's.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../crates/scim-server/tests/common/client.rs"]
mod client;

use client::{Client, Reply, expect};
use http::Method;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Stdio;

mod support;

use support::{Running, ScratchDatabase, create_tenant, postgres_or_skip, scimd};

const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
const ACME: &str = "urn:ietf:params:scim:schemas:extension:acme:2.0:User";
const GLOBEX: &str = "urn:ietf:params:scim:schemas:extension:globex:2.0:User";

/// Runs `scimd --database DB args...`; its stdout as JSON, or its stderr on failure.
fn cli(database: &str, args: &[&str]) -> Result<Value, String> {
    let mut all = vec!["--database", database];
    all.extend_from_slice(args);
    let out = scimd(&all);
    if out.status.success() {
        Ok(serde_json::from_slice(&out.stdout).unwrap())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

fn write(dir: &Path, name: &str, document: &Value) -> String {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(document).unwrap()).unwrap();
    path.to_str().unwrap().to_owned()
}

/// A request to the workplace API (`application/json`).
async fn workplace(
    addr: std::net::SocketAddr,
    token: &str,
    method: Method,
    path: &str,
    body: &Value,
) -> Reply {
    let auth = format!("Bearer {token}");
    client::send(
        addr,
        false,
        method,
        &format!("/t/acme/workplace/v1{path}"),
        &[
            ("authorization", auth.as_str()),
            ("content-type", "application/json"),
        ],
        Some(serde_json::to_vec(body).unwrap()),
    )
    .await
}

fn entra_group(name: &str, description: &str) -> Value {
    json!({
        "schemas": [GROUP],
        "externalId": format!("{name}-object-id"),
        "displayName": name,
        "description": description,
        "members": []
    })
}

fn okta_user(user_name: &str, office: &str) -> Value {
    json!({
        "schemas": [USER, ACME],
        "userName": user_name,
        "name": {"givenName": user_name, "familyName": "Example"},
        "emails": [{"primary": true, "value": user_name, "type": "work"}],
        "active": true,
        ACME: {"officeName": office, "floor": "3"}
    })
}

async fn conversations(database: &str) {
    let acme_token = create_tenant(database, "acme");
    let globex_token = create_tenant(database, "globex");
    let facilities = cli(
        database,
        &[
            "token",
            "issue",
            "--tenant",
            "acme",
            "--scope",
            "workplace",
            "--label",
            "facilities",
        ],
    )
    .unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let files = tempfile::tempdir().unwrap();
    let description = write(
        files.path(),
        "entra-group-description.json",
        &json!({"id": GROUP, "attributes": [{"name": "description", "type": "string",
                "multiValued": false, "required": false, "caseExact": false,
                "mutability": "readWrite", "returned": "default", "uniqueness": "none"}]}),
    );
    let acme_ext = write(
        files.path(),
        "acme-user.json",
        &json!([{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"], "id": ACME,
                 "name": "AcmeUser", "description": "Acme workplace attributes",
                 "attributes": [{"name": "officeName", "type": "string"},
                                {"name": "floor", "type": "string"}]}]),
    );
    let globex_ext = write(
        files.path(),
        "globex-user.json",
        &json!({"id": GLOBEX, "attributes": [{"name": "badgeColour", "type": "string"}]}),
    );

    let scimd = Running::launch(database, &[], &[], Stdio::null());
    let acme = Client::new(scimd.addr, "acme", &acme_token);
    let globex = Client::new(scimd.addr, "globex", &globex_token);

    // ---- Entra ID: Groups with `description` ------------------------------------------------
    let refused = acme
        .post("/Groups", &entra_group("Floor 3", "Third floor"))
        .await;
    let error = expect(&refused, 400);
    let detail = error["detail"].as_str().unwrap();
    assert!(
        detail.starts_with("description: unknown attribute") && detail.contains("scimd schema set"),
        "{detail}"
    );

    // Set while the server runs: its next request sees them.
    let set = cli(
        database,
        &["schema", "set", "--tenant", "acme", &description, &acme_ext],
    )
    .unwrap();
    assert_eq!(set["version"], 1, "{set}");
    assert_eq!(set["schemas"], json!([GROUP, ACME]));
    let shown = scimd_show(database, "acme");
    assert_eq!(shown.as_array().unwrap().len(), 2, "{shown}");
    cli(
        database,
        &["schema", "set", "--tenant", "globex", &globex_ext],
    )
    .unwrap();

    let group = expect(
        &acme
            .post("/Groups", &entra_group("Floor 3", "Third floor"))
            .await,
        201,
    );
    assert_eq!(group["description"], "Third floor");
    let gid = group["id"].as_str().unwrap().to_owned();
    // Entra's PATCH: capitalised ops, the attribute by name.
    let patched = acme
        .patch(
            &format!("/Groups/{gid}"),
            &json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "Replace", "path": "description", "value": "Third floor, east wing"},
                {"op": "Replace", "path": "displayName", "value": "Floor 3 East"}
            ]}),
        )
        .await;
    assert!(
        matches!(patched.status, 200 | 204),
        "{}",
        String::from_utf8_lossy(&patched.body)
    );
    expect(
        &acme
            .post("/Groups", &entra_group("Floor 4", "Fourth floor"))
            .await,
        201,
    );
    let listed = expect(
        &acme
            .get("/Groups?filter=description%20co%20%22east%22&excludedAttributes=members")
            .await,
        200,
    );
    assert_eq!(listed["totalResults"], 1, "{listed}");
    assert_eq!(
        listed["Resources"][0]["description"],
        "Third floor, east wing"
    );
    assert_eq!(listed["Resources"][0]["displayName"], "Floor 3 East");
    let by_description = expect(
        &acme
            .get("/Groups?sortBy=description&sortOrder=descending")
            .await,
        200,
    );
    let order: Vec<&str> = by_description["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["displayName"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["Floor 3 East", "Floor 4"]);

    // ---- Okta: a custom extension, and a rule on it ---------------------------------------
    let lena = expect(
        &acme
            .post("/Users", &okta_user("lena@acme.example", "London"))
            .await,
        201,
    );
    assert_eq!(lena[ACME]["officeName"], "London");
    let lena = lena["id"].as_str().unwrap().to_owned();
    let paul = expect(
        &acme
            .post("/Users", &okta_user("paul@acme.example", "Berlin"))
            .await,
        201,
    );
    let paul = paul["id"].as_str().unwrap().to_owned();
    // Okta updates a profile with PUT: Paul moves to Paris.
    let moved = expect(
        &acme
            .put(
                &format!("/Users/{paul}"),
                &okta_user("paul@acme.example", "Paris"),
            )
            .await,
        200,
    );
    assert_eq!(moved[ACME]["officeName"], "Paris");
    let londoners = expect(
        &acme
            .get(&format!(
                "/Users?filter={ACME}:officeName%20eq%20%22london%22"
            ))
            .await,
        200,
    );
    assert_eq!(londoners["totalResults"], 1, "{londoners}");
    assert_eq!(londoners["Resources"][0]["id"], lena.as_str());
    let projected = expect(
        &acme
            .get(&format!("/Users/{lena}?attributes={ACME}:officeName"))
            .await,
        200,
    );
    assert_eq!(
        projected[ACME],
        json!({"officeName": "London"}),
        "{projected}"
    );
    let sorted = expect(
        &acme.get(&format!("/Users?sortBy={ACME}:officeName")).await,
        200,
    );
    assert_eq!(sorted["Resources"][0]["id"], lena.as_str());
    let types = expect(&acme.get("/ResourceTypes/User").await, 200);
    assert!(
        types["schemaExtensions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["schema"] == ACME && e["required"] == false),
        "{types}"
    );

    let wp = |method: Method, path: &'static str, body: Value| {
        let token = facilities.clone();
        let addr = scimd.addr;
        async move { workplace(addr, &token, method, path, &body).await }
    };
    expect(
        &wp(Method::PUT, "/sites/lon", json!({"name": "London"})).await,
        201,
    );
    expect(
        &wp(
            Method::PUT,
            "/resources/d1",
            json!({"kind": "desk", "site": "lon", "name": "Desk 1", "capacity": 1}),
        )
        .await,
        201,
    );
    expect(
        &wp(
            Method::PUT,
            "/policies",
            json!({"rules": [{"id": "london-desks", "name": "London staff book London desks",
                    "effect": "allow", "people": format!("{ACME}:officeName eq \"London\""),
                    "resources": {"sites": ["lon"]}}], "default": "deny"}),
        )
        .await,
        200,
    );
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + 86_400;
    let booking = |person: String, offset: i64| json!({"person": person, "resource": "d1", "start": start + offset, "end": start + offset + 3600});
    expect(
        &wp(Method::POST, "/bookings", booking(lena.clone(), 0)).await,
        201,
    );
    let refused = expect(
        &wp(Method::POST, "/bookings", booking(paul.clone(), 7200)).await,
        403,
    );
    assert_eq!(refused["error"], "refused", "{refused}");

    // The rule depends on officeName: removing the extension, or retyping the attribute, is
    // refused naming the rule, and nothing changes.
    let removal = cli(
        database,
        &["schema", "set", "--tenant", "acme", &description],
    )
    .unwrap_err();
    assert!(removal.contains("london-desks"), "{removal}");
    let retyped = write(
        files.path(),
        "acme-retyped.json",
        &json!({"id": ACME, "attributes": [{"name": "officeName", "type": "integer"},
                                            {"name": "floor", "type": "string"}]}),
    );
    let retype = cli(
        database,
        &["schema", "set", "--tenant", "acme", &description, &retyped],
    )
    .unwrap_err();
    assert!(
        retype.contains("london-desks") && retype.contains("Integer"),
        "{retype}"
    );
    assert_eq!(scimd_show(database, "acme").as_array().unwrap().len(), 2);

    // ---- two tenants, two extensions ---------------------------------------------------------
    let theirs = globex
        .post("/Users", &okta_user("lena@globex.example", "London"))
        .await;
    let error = expect(&theirs, 400);
    assert!(error["detail"].as_str().unwrap().contains(ACME), "{error}");
    let badge = expect(
        &globex
            .post(
                "/Users",
                &json!({"schemas": [USER, GLOBEX], "userName": "gil", GLOBEX: {"badgeColour": "red"}}),
            )
            .await,
        201,
    );
    assert_eq!(badge[GLOBEX]["badgeColour"], "red");
    let schema_ids = |listing: &Value| -> Vec<String> {
        listing["Resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let acme_schemas = schema_ids(&expect(&acme.get("/Schemas").await, 200));
    let globex_schemas = schema_ids(&expect(&globex.get("/Schemas").await, 200));
    assert!(acme_schemas.contains(&ACME.to_owned()) && !acme_schemas.contains(&GLOBEX.to_owned()));
    assert!(
        globex_schemas.contains(&GLOBEX.to_owned()) && !globex_schemas.contains(&ACME.to_owned())
    );
    let globex_group = expect(&globex.get(&format!("/Schemas/{GROUP}")).await, 200);
    assert!(
        !globex_group["attributes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["name"] == "description"),
        "globex sees acme's Group description"
    );
    let across = globex
        .get(&format!(
            "/Users?filter={ACME}:officeName%20eq%20%22London%22"
        ))
        .await;
    assert_eq!(
        across.status,
        400,
        "{}",
        String::from_utf8_lossy(&across.body)
    );
    expect(&globex.get(&format!("/Users/{lena}")).await, 404);

    // ---- removing what no rule uses -----------------------------------------------------------
    let without = cli(database, &["schema", "set", "--tenant", "acme", &acme_ext]).unwrap();
    assert_eq!(without["schemas"], json!([ACME]));
    let served = expect(&acme.get(&format!("/Groups/{gid}")).await, 200);
    assert!(served.get("description").is_none(), "{served}");
    let filter = acme.get("/Groups?filter=description%20pr").await;
    assert_eq!(filter.status, 400);
    // Entra's next PATCH of the Group still works, and the stored value survives it.
    let renamed = acme
        .patch(
            &format!("/Groups/{gid}"),
            &json!({"schemas": [PATCH_OP], "Operations": [
                {"op": "Replace", "path": "displayName", "value": "Floor 3"}]}),
        )
        .await;
    assert!(
        matches!(renamed.status, 200 | 204),
        "{}",
        String::from_utf8_lossy(&renamed.body)
    );
    cli(
        database,
        &["schema", "set", "--tenant", "acme", &description, &acme_ext],
    )
    .unwrap();
    let back = expect(&acme.get(&format!("/Groups/{gid}")).await, 200);
    assert_eq!(back["description"], "Third floor, east wing", "{back}");
    assert_eq!(back["displayName"], "Floor 3");
}

/// `scimd schema show`: the tenant's documents.
fn scimd_show(database: &str, tenant: &str) -> Value {
    cli(database, &["schema", "show", "--tenant", tenant]).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_providers_custom_attributes_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("scimd.db");
    conversations(db.to_str().unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_providers_custom_attributes_on_postgres() {
    let Some(admin_url) = postgres_or_skip("per-tenant schemas on PostgreSQL").await else {
        return;
    };
    let database = ScratchDatabase::create(&admin_url, "scimd_tenant_schemas").await;
    conversations(&database.url).await;
    database.remove().await;
}

/// What an operator's schema files may hold is bounded, and a file beyond a bound changes
/// nothing: more than 64 documents, more than 256 KiB of them, a file over 1 MiB, and JSON
/// nested past the parser's depth are each refused naming the bound, without a crash.
#[test]
fn schema_files_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("scimd.db");
    let database = db.to_str().unwrap();
    create_tenant(database, "acme");
    let extension = |n: usize, attributes: usize| {
        json!({"id": format!("urn:example:params:scim:schemas:extension:x{n}:2.0:User"),
               "attributes": (0..attributes)
                   .map(|a| json!({"name": format!("attribute{a:05}"), "type": "string",
                                   "description": "d".repeat(200)}))
                   .collect::<Vec<_>>()})
    };
    let refused = |name: &str, content: Vec<u8>, expected: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        let error = cli(
            database,
            &["schema", "set", "--tenant", "acme", path.to_str().unwrap()],
        )
        .unwrap_err();
        assert!(error.contains(expected), "{name}: {error}");
    };
    let many: Vec<Value> = (0..65).map(|n| extension(n, 1)).collect();
    refused(
        "many.json",
        serde_json::to_vec(&many).unwrap(),
        "at most 64",
    );
    refused(
        "large.json",
        serde_json::to_vec(&extension(0, 1_200)).unwrap(),
        "at most 262144",
    );
    let mut huge = serde_json::to_vec(&extension(0, 1)).unwrap();
    huge.extend(std::iter::repeat_n(b' ', 1024 * 1024));
    refused("huge.json", huge, "larger than 1048576 bytes");
    refused(
        "deep.json",
        "[".repeat(100_000).into_bytes(),
        "recursion limit exceeded",
    );
    assert_eq!(scimd_show(database, "acme"), json!([]));
}
