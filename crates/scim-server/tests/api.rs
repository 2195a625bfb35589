//! The SCIM protocol surface over real HTTP: resources, queries, PATCH, ETags, bulk, search,
//! authentication and tenant isolation.

mod common;

use common::{GROUP, PATCH_OP, TestServer, assert_error, group, user};
use http::Method;
use scim_server::ServerConfig;
use scim_store::{Members, ResourceKind, Store};
use serde_json::{Value, json};

fn id_of(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn user_lifecycle_create_get_replace_patch_delete() {
    let server = TestServer::start().await;
    let c = &server.client;

    let created = c.post("/Users", &user("bjensen")).await;
    assert_eq!(created.status, 201, "{:?}", created.body);
    assert_eq!(
        created.header("content-type"),
        Some("application/scim+json")
    );
    let body = created.json();
    let id = id_of(&body);
    let location = format!("http://{}/t/acme/scim/v2/Users/{id}", server.addr);
    assert_eq!(created.header("location"), Some(location.as_str()));
    assert_eq!(body["meta"]["location"], json!(location));
    assert_eq!(created.header("etag"), Some("W/\"1\""));
    assert_eq!(body["meta"]["version"], json!("W/\"1\""));
    assert_eq!(body["meta"]["resourceType"], json!("User"));

    let got = c.get(&format!("/Users/{id}")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["userName"], json!("bjensen"));

    let mut replacement = user("bjensen");
    replacement["displayName"] = json!("Babs Jensen");
    let put = c.put(&format!("/Users/{id}"), &replacement).await;
    assert_eq!(put.status, 200);
    assert_eq!(put.json()["displayName"], json!("Babs Jensen"));
    assert_eq!(put.header("etag"), Some("W/\"2\""));

    let patch = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": false}]});
    let patched = c.patch(&format!("/Users/{id}"), &patch).await;
    assert_eq!(patched.status, 200);
    assert_eq!(patched.json()["active"], json!(false));
    assert_eq!(patched.header("etag"), Some("W/\"3\""));

    let projected = c
        .patch(&format!("/Users/{id}?attributes=userName"), &patch)
        .await;
    assert_eq!(projected.status, 200);
    let projected = projected.json();
    assert_eq!(projected["userName"], json!("bjensen"));
    assert!(projected.get("active").is_none(), "{projected}");
    assert!(projected.get("id").is_some(), "id is returned always");

    let deleted = c.delete(&format!("/Users/{id}")).await;
    assert_eq!(deleted.status, 204);
    assert!(deleted.body.is_empty());
    assert_error(&c.get(&format!("/Users/{id}")).await, 404, None);
    assert_error(&c.delete(&format!("/Users/{id}")).await, 404, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_is_hashed_and_never_returned() {
    let server = TestServer::start().await;
    let c = &server.client;
    let mut body = user("pw");
    body["password"] = json!("t1meMa$heen");
    let created = c.post("/Users", &body).await;
    assert_eq!(created.status, 201);
    let created = created.json();
    assert!(created.get("password").is_none());
    let id = id_of(&created);
    let asked = c
        .get(&format!("/Users/{id}?attributes=password,userName"))
        .await
        .json();
    assert!(
        asked.get("password").is_none(),
        "returned never, even when asked: {asked}"
    );

    let tenant = server.store.tenant_by_name("acme").await.unwrap().unwrap();
    let stored = server
        .store
        .get(&tenant.id, ResourceKind::User, &id, Members::Exclude)
        .await
        .unwrap()
        .unwrap();
    let hash = stored.document["password"].as_str().unwrap().to_owned();
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    assert!(!hash.contains("t1meMa$heen"));

    // A PUT without password keeps it; a PATCH replacing it stores a new hash.
    let put = c.put(&format!("/Users/{id}"), &user("pw")).await;
    assert_eq!(put.status, 200);
    let kept = server
        .store
        .get(&tenant.id, ResourceKind::User, &id, Members::Exclude)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.document["password"], json!(hash));
    let patch = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "password", "value": "n3w"}]});
    assert_eq!(c.patch(&format!("/Users/{id}"), &patch).await.status, 200);
    let changed = server
        .store
        .get(&tenant.id, ResourceKind::User, &id, Members::Exclude)
        .await
        .unwrap()
        .unwrap();
    let new_hash = changed.document["password"].as_str().unwrap();
    assert!(new_hash.starts_with("$argon2id$") && new_hash != hash);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filter_sort_page_count_and_projection() {
    let config = ServerConfig {
        max_results: 5,
        default_count: 3,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(config).await;
    let c = &server.client;
    for name in ["carol", "alice", "erin", "bob", "dave", "frank", "gina"] {
        assert_eq!(c.post("/Users", &user(name)).await.status, 201);
    }

    let found = c
        .get("/Users?filter=userName%20eq%20%22ALICE%22")
        .await
        .json();
    assert_eq!(found["totalResults"], json!(1));
    assert_eq!(found["Resources"][0]["userName"], json!("alice"));

    let sorted = c
        .get("/Users?sortBy=userName&sortOrder=descending&count=2&startIndex=2")
        .await
        .json();
    assert_eq!(sorted["totalResults"], json!(7));
    assert_eq!(sorted["startIndex"], json!(2));
    assert_eq!(sorted["itemsPerPage"], json!(2));
    let names: Vec<&str> = sorted["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["userName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["frank", "erin"]);

    let default_page = c.get("/Users").await.json();
    assert_eq!(default_page["itemsPerPage"], json!(3), "default count");
    let clamped = c.get("/Users?count=1000").await.json();
    assert_eq!(
        clamped["itemsPerPage"],
        json!(5),
        "count clamped to maxResults"
    );
    let negative = c.get("/Users?count=-4&startIndex=-9").await.json();
    assert_eq!(negative["itemsPerPage"], json!(0));
    assert_eq!(negative["startIndex"], json!(1));

    let only_total = c.get("/Users?count=0").await.json();
    assert_eq!(only_total["totalResults"], json!(7));
    assert!(only_total.get("Resources").is_none(), "{only_total}");

    let projected = c
        .get("/Users?attributes=userName&count=1&sortBy=userName")
        .await
        .json();
    let first = &projected["Resources"][0];
    assert_eq!(first["userName"], json!("alice"));
    assert!(
        first.get("emails").is_none() && first.get("id").is_some(),
        "{first}"
    );
    let excluded = c
        .get("/Users?excludedAttributes=emails,name&count=1")
        .await
        .json();
    let first = &excluded["Resources"][0];
    assert!(
        first.get("emails").is_none()
            && first.get("name").is_none()
            && first.get("userName").is_some()
    );

    let past_end = c
        .get("/Users?startIndex=99999999999999999999999999")
        .await
        .json();
    assert_eq!(past_end["totalResults"], json!(7));
    assert_eq!(past_end["itemsPerPage"], json!(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_at_root_and_per_type() {
    let server = TestServer::start().await;
    let c = &server.client;
    let alice = id_of(&c.post("/Users", &user("alice")).await.json());
    c.post("/Users", &user("bob")).await;
    c.post("/Groups", &group("alice-team", &[&alice])).await;

    let search = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "userName sw \"a\"",
        "attributes": ["userName"],
        "count": 10,
    });
    let per_type = c.post("/Users/.search", &search).await;
    assert_eq!(per_type.status, 200);
    let per_type = per_type.json();
    assert_eq!(per_type["totalResults"], json!(1));
    assert!(per_type["Resources"][0].get("emails").is_none());

    let root = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
        "filter": "displayName eq \"alice-team\" or userName eq \"bob\"",
    });
    let root = c.post("/.search", &root).await;
    assert_eq!(root.status, 200, "{:?}", root.body);
    let root = root.json();
    assert_eq!(root["totalResults"], json!(2), "{root}");
    let types: Vec<&str> = root["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["meta"]["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["User", "Group"]);

    let wrong = c
        .post("/Users/.search", &json!({"filter": "userName pr"}))
        .await;
    assert_error(&wrong, 400, Some("invalidSyntax"));
    assert_error(&c.get("/Users/.search").await, 405, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_patch_answers_204_unless_attributes_are_asked_for() {
    let server = TestServer::start().await;
    let c = &server.client;
    let a = id_of(&c.post("/Users", &user("a")).await.json());
    let b = id_of(&c.post("/Users", &user("b")).await.json());
    let created = c.post("/Groups", &group("team", &[&a])).await;
    assert_eq!(created.status, 201);
    let created = created.json();
    let gid = id_of(&created);
    let member_ref = format!("http://{}/t/acme/scim/v2/Users/{a}", server.addr);
    assert_eq!(created["members"][0]["value"], json!(a));
    assert_eq!(created["members"][0]["$ref"], json!(member_ref));

    let add = json!({"schemas": [PATCH_OP], "Operations": [{"op": "add", "path": "members", "value": [{"value": b}]}]});
    let patched = c.patch(&format!("/Groups/{gid}"), &add).await;
    assert_eq!(patched.status, 204);
    assert!(patched.body.is_empty());
    assert_eq!(patched.header("etag"), Some("W/\"2\""));

    let rename = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "displayName", "value": "crew"}]});
    let with_attrs = c
        .patch(&format!("/Groups/{gid}?attributes=displayName"), &rename)
        .await;
    assert_eq!(with_attrs.status, 200);
    let with_attrs = with_attrs.json();
    assert_eq!(with_attrs["displayName"], json!("crew"));
    assert!(with_attrs.get("members").is_none());

    let remove = json!({"schemas": [PATCH_OP], "Operations": [{"op": "remove", "path": format!("members[value eq \"{a}\"]")}]});
    let without_members = c
        .patch(
            &format!("/Groups/{gid}?excludedAttributes=members"),
            &remove,
        )
        .await;
    assert_eq!(without_members.status, 200);
    assert!(without_members.json().get("members").is_none());

    let full = c.get(&format!("/Groups/{gid}")).await.json();
    let members: Vec<&str> = full["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap())
        .collect();
    assert_eq!(members, [b.as_str()]);
    let light = c
        .get(&format!("/Groups/{gid}?excludedAttributes=members"))
        .await
        .json();
    assert!(light.get("members").is_none());
    assert_eq!(light["displayName"], json!("crew"));

    // The user side: `groups` is derived, with a $ref to the group.
    let bob = c.get(&format!("/Users/{b}")).await.json();
    assert_eq!(bob["groups"][0]["value"], json!(gid));
    assert_eq!(
        bob["groups"][0]["$ref"],
        json!(format!(
            "http://{}/t/acme/scim/v2/Groups/{gid}",
            server.addr
        ))
    );

    let listed = c.get("/Groups?excludedAttributes=members").await.json();
    assert!(listed["Resources"][0].get("members").is_none());
    assert_eq!(c.delete(&format!("/Groups/{gid}")).await.status, 204);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etags_if_match_and_if_none_match() {
    let server = TestServer::start().await;
    let c = &server.client;
    let created = c.post("/Users", &user("etag")).await;
    let id = id_of(&created.json());
    let path = format!("/Users/{id}");

    let not_modified = c
        .call(Method::GET, &path, None, &[("if-none-match", "W/\"1\"")])
        .await;
    assert_eq!(not_modified.status, 304);
    assert_eq!(not_modified.header("etag"), Some("W/\"1\""));
    assert!(not_modified.body.is_empty());
    let modified = c
        .call(Method::GET, &path, None, &[("if-none-match", "W/\"7\"")])
        .await;
    assert_eq!(modified.status, 200);
    assert_eq!(
        c.call(Method::GET, &path, None, &[("if-none-match", "*")])
            .await
            .status,
        304
    );

    let stale = [("if-match", "W/\"9\"")];
    let patch = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "nickName", "value": "e"}]});
    assert_error(
        &c.call(Method::PUT, &path, Some(&user("etag")), &stale)
            .await,
        412,
        None,
    );
    assert_error(
        &c.call(Method::PATCH, &path, Some(&patch), &stale).await,
        412,
        None,
    );
    assert_error(
        &c.call(Method::DELETE, &path, None, &stale).await,
        412,
        None,
    );
    assert_error(
        &c.call(Method::DELETE, &path, None, &[("if-match", "\"not-ours\"")])
            .await,
        412,
        None,
    );
    assert_error(
        &c.call(Method::DELETE, &path, None, &[("if-match", "garbage")])
            .await,
        400,
        Some("invalidValue"),
    );

    let ok = c
        .call(
            Method::PATCH,
            &path,
            Some(&patch),
            &[("if-match", "W/\"1\"")],
        )
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.header("etag"), Some("W/\"2\""));
    let listed = c
        .call(
            Method::PUT,
            &path,
            Some(&user("etag")),
            &[("if-match", "W/\"1\", W/\"2\"")],
        )
        .await;
    assert_eq!(listed.status, 200, "any tag of the list may match");
    let version = listed.header("etag").unwrap().to_owned();
    assert_eq!(
        c.call(
            Method::DELETE,
            &format!("/Users/{}", "missing"),
            None,
            &[("if-match", "W/\"1\"")]
        )
        .await
        .status,
        404
    );
    assert_eq!(
        c.call(
            Method::DELETE,
            &path,
            None,
            &[("if-match", version.as_str())]
        )
        .await
        .status,
        204
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_are_isolated() {
    let server = TestServer::start().await;
    let a = &server.client;
    let b = server.other_tenant("beta").await;
    let id = id_of(&a.post("/Users", &user("secret-user")).await.json());

    // B's token on A's URL, and A's token on B's URL: 401, as for any bad token.
    let mut b_on_a = b.clone();
    b_on_a.base = a.base.clone();
    let refused = b_on_a.get(&format!("/Users/{id}")).await;
    assert_error(&refused, 401, None);
    assert_eq!(
        refused.header("www-authenticate"),
        Some("Bearer realm=\"scimd\"")
    );
    let mut a_on_b = a.clone();
    a_on_b.base = b.base.clone();
    assert_error(&a_on_b.get("/Users").await, 401, None);

    // A's id on B's own URL with B's token: 404, like a missing one.
    let hidden = assert_error(&b.get(&format!("/Users/{id}")).await, 404, None);
    let missing = assert_error(
        &b.get("/Users/00000000-0000-0000-0000-000000000000").await,
        404,
        None,
    );
    assert_eq!(hidden["status"], missing["status"]);
    assert_eq!(b.get("/Users").await.json()["totalResults"], json!(0));
    assert_error(&b.delete(&format!("/Users/{id}")).await, 404, None);
    let patch = json!({"schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": false}]});
    assert_error(&b.patch(&format!("/Users/{id}"), &patch).await, 404, None);
    // And a group of B cannot take A's user as a member.
    let reply = b.post("/Groups", &group("g", &[&id])).await;
    assert!(
        reply.status == 400 || reply.status == 404,
        "{}",
        reply.status
    );
    assert_eq!(a.get(&format!("/Users/{id}")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_takes_effect_on_the_next_request() {
    let server = TestServer::start().await;
    let c = &server.client;
    assert_eq!(c.get("/Users").await.status, 200);
    let tenant = server.store.tenant_by_name("acme").await.unwrap().unwrap();
    let tokens = server.store.list_tokens(&tenant.id).await.unwrap();
    assert!(
        server
            .store
            .revoke_token(&tenant.id, &tokens[0].id)
            .await
            .unwrap()
    );
    assert_error(&c.get("/Users").await, 401, None);

    let missing = c.raw(Method::GET, "/Users", &[], None).await;
    assert_error(&missing, 401, None);
    assert_eq!(
        missing.header("www-authenticate"),
        Some("Bearer realm=\"scimd\"")
    );
    assert_error(
        &c.raw(
            Method::GET,
            "/Users",
            &[("authorization", "Basic YTpi")],
            None,
        )
        .await,
        401,
        None,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_resolves_references_in_any_order_including_cycles() {
    let server = TestServer::start().await;
    let c = &server.client;
    let request = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [
            // References a user created later in the request.
            {"method": "POST", "path": "/Groups", "bulkId": "g1", "data": {
                "schemas": [GROUP], "displayName": "one",
                "members": [{"value": "bulkId:u1"}, {"value": "bulkId:g2"}]}},
            // g2 contains g1 and g1 contains g2: a cycle (RFC 7644 section 3.7.1).
            {"method": "POST", "path": "/Groups", "bulkId": "g2", "data": {
                "schemas": [GROUP], "displayName": "two", "members": [{"value": "bulkId:g1"}]}},
            {"method": "POST", "path": "/Users", "bulkId": "u1", "data": user("bulk-user")},
            {"method": "PATCH", "path": "/Users/bulkId:u1", "data": {
                "schemas": [PATCH_OP], "Operations": [{"op": "replace", "path": "active", "value": false}]}},
        ]
    });
    let reply = c.post("/Bulk", &request).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let body = reply.json();
    let ops = body["Operations"].as_array().unwrap();
    assert_eq!(ops.len(), 4, "{body}");
    let statuses: Vec<&str> = ops.iter().map(|o| o["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["201", "201", "201", "200"], "{body}");
    assert_eq!(ops[0]["bulkId"], json!("g1"));
    let loc = |i: usize| {
        ops[i]["location"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_owned()
    };
    let (g1, g2, u1) = (loc(0), loc(1), loc(2));

    let one = c.get(&format!("/Groups/{g1}")).await.json();
    let mut members: Vec<String> = one["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_str().unwrap().to_owned())
        .collect();
    members.sort();
    let mut expected = vec![u1.clone(), g2.clone()];
    expected.sort();
    assert_eq!(members, expected);
    let two = c.get(&format!("/Groups/{g2}")).await.json();
    assert_eq!(two["members"][0]["value"], json!(g1));
    assert_eq!(
        c.get(&format!("/Users/{u1}")).await.json()["active"],
        json!(false)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_fail_on_errors_and_limits() {
    let config = ServerConfig {
        bulk_max_operations: 3,
        bulk_max_payload: 2048,
        ..ServerConfig::default()
    };
    let server = TestServer::start_with(config).await;
    let c = &server.client;
    let spc = c.get("/ServiceProviderConfig").await.json();
    assert_eq!(
        spc["bulk"],
        json!({"supported": true, "maxOperations": 3, "maxPayloadSize": 2048})
    );

    let request = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "failOnErrors": 1,
        "Operations": [
            {"method": "POST", "path": "/Users", "bulkId": "a", "data": {"schemas": [common::USER]}},
            {"method": "POST", "path": "/Users", "bulkId": "b", "data": user("never-created")},
        ]
    });
    let body = c.post("/Bulk", &request).await.json();
    let ops = body["Operations"].as_array().unwrap();
    assert_eq!(
        ops.len(),
        1,
        "processing stops after failOnErrors errors: {body}"
    );
    assert_eq!(ops[0]["status"], json!("400"));
    assert_eq!(ops[0]["response"]["schemas"], json!([common::ERROR]));
    assert_eq!(
        c.get("/Users?filter=userName%20eq%20%22never-created%22")
            .await
            .json()["totalResults"],
        json!(0)
    );

    let dangling = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
        "Operations": [{"method": "POST", "path": "/Groups", "bulkId": "g", "data": {
            "schemas": [GROUP], "displayName": "g", "members": [{"value": "bulkId:nobody"}]}}]
    });
    let body = c.post("/Bulk", &dangling).await.json();
    assert_eq!(body["Operations"][0]["status"], json!("409"), "{body}");

    let op = json!({"method": "DELETE", "path": "/Users/x"});
    let too_many = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [op, op, op, op]});
    assert_error(&c.post("/Bulk", &too_many).await, 413, None);
    let big = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
        {"method": "POST", "path": "/Users", "bulkId": "x", "data": {"schemas": [common::USER], "userName": "x".repeat(3000)}}]});
    assert_error(&c.post("/Bulk", &big).await, 413, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn me_is_not_implemented() {
    let server = TestServer::start().await;
    let reply = server.client.get("/Me").await;
    let body = assert_error(&reply, 501, None);
    assert!(body["detail"].as_str().unwrap().contains("3.11"));
}
