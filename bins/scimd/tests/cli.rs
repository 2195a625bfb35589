//! The binary's stable contract, tested on the real `scimd` executable: `tenant create` prints
//! exactly one JSON line; `--database` is accepted before or after the subcommand; `serve`
//! serves until SIGTERM; tokens issued and revoked from the CLI take effect on the running
//! server at once; the first `serve` creates tenant `default`.

// Test support functions below: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../crates/scim-server/tests/common/client.rs"]
mod client;

use client::Client;
use http::Method;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod support;

use support::{Running, SCIMD, free_port, scimd};

fn ok_stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn tenant_create_prints_exactly_one_json_line() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let out = ok_stdout(&scimd(&[
        "--database",
        db.to_str().unwrap(),
        "tenant",
        "create",
        "acme",
    ]));
    assert_eq!(out.lines().count(), 1, "{out:?}");
    assert!(out.ends_with('\n'));
    let line: Value = serde_json::from_str(out.trim_end()).unwrap();
    let object = line.as_object().unwrap();
    assert_eq!(
        object.keys().collect::<Vec<_>>(),
        ["tenant", "scim_base", "token"]
    );
    assert_eq!(line["tenant"], json!("acme"));
    assert_eq!(line["scim_base"], json!("/t/acme/scim/v2"));
    let token = line["token"].as_str().unwrap();
    assert!(token.len() >= 64, "at least 256 bits: {token}");

    // --database after the subcommand, and as a sqlite:// URL.
    let url = format!("sqlite://{}", db.display());
    let out = ok_stdout(&scimd(&["tenant", "create", "beta", "--database", &url]));
    assert_eq!(out.lines().count(), 1);
    let listed = ok_stdout(&scimd(&[
        "tenant",
        "list",
        "--database",
        db.to_str().unwrap(),
    ]));
    let names: Vec<String> = listed
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["tenant"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(names, ["acme", "beta"]);

    // delete needs --yes; then it removes the tenant with its tokens and resources, and the
    // name is free again.
    let dbs = db.to_str().unwrap();
    let unconfirmed = scimd(&["--database", dbs, "tenant", "delete", "beta"]);
    assert!(!unconfirmed.status.success());
    let deleted = ok_stdout(&scimd(&[
        "--database",
        dbs,
        "tenant",
        "delete",
        "beta",
        "--yes",
    ]));
    let deleted: Value = serde_json::from_str(deleted.trim()).unwrap();
    assert_eq!(
        deleted,
        json!({"tenant": "beta", "tokens_revoked": 1, "resources_deleted": 0})
    );
    let listed = ok_stdout(&scimd(&["--database", dbs, "tenant", "list"]));
    assert!(!listed.contains("\"beta\""), "{listed}");
    let tokens = scimd(&["--database", dbs, "token", "list", "--tenant", "beta"]);
    assert!(!tokens.status.success());
    let recreated = ok_stdout(&scimd(&["--database", dbs, "tenant", "create", "beta"]));
    assert!(recreated.contains("\"tenant\":\"beta\""), "{recreated}");

    let again = scimd(&[
        "--database",
        db.to_str().unwrap(),
        "tenant",
        "create",
        "acme",
    ]);
    assert!(!again.status.success());
    assert!(again.stdout.is_empty());
    let bad = scimd(&[
        "--database",
        db.to_str().unwrap(),
        "tenant",
        "create",
        "Not A Name",
    ]);
    assert!(!bad.status.success());
    assert!(bad.stdout.is_empty());
}

#[test]
fn migrate_and_config_precedence() {
    let dir = tempfile::tempdir().unwrap();
    let from_file = dir.path().join("file.db");
    let config = dir.path().join("scimd.toml");
    std::fs::write(
        &config,
        format!("database = {:?}\n", from_file.to_str().unwrap()),
    )
    .unwrap();
    let out = ok_stdout(&scimd(&["--config", config.to_str().unwrap(), "migrate"]));
    assert!(out.contains("file.db"), "{out}");
    assert!(from_file.exists());

    // A flag beats the environment, which beats the file.
    let from_env = dir.path().join("env.db");
    let from_flag = dir.path().join("flag.db");
    let env_run = Command::new(SCIMD)
        .args(["--config", config.to_str().unwrap(), "migrate"])
        .env("SCIMD_DATABASE", &from_env)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&env_run.stdout).contains("env.db"));
    let flag_run = Command::new(SCIMD)
        .args([
            "--config",
            config.to_str().unwrap(),
            "migrate",
            "--database",
            from_flag.to_str().unwrap(),
        ])
        .env("SCIMD_DATABASE", &from_env)
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&flag_run.stdout).contains("flag.db"));

    std::fs::write(&config, "databse = \"typo.db\"\n").unwrap();
    let typo = scimd(&["--config", config.to_str().unwrap(), "migrate"]);
    assert!(!typo.status.success());
    assert!(String::from_utf8_lossy(&typo.stderr).contains("databse"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_tokens_take_effect_on_a_running_server() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("live.db");
    let dbs = db.to_str().unwrap().to_owned();
    let created: Value = serde_json::from_str(
        ok_stdout(&scimd(&["--database", &dbs, "tenant", "create", "live"])).trim(),
    )
    .unwrap();
    let mut server = Running::start(&db, &[]);
    let first = Client::new(server.addr, "live", created["token"].as_str().unwrap());

    let user =
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "cli-user"});
    let reply = first.post("/Users", &user).await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);

    // Issue a second token while the server runs: it works at once.
    let issued: Value = serde_json::from_str(
        ok_stdout(&scimd(&[
            "token",
            "issue",
            "--tenant",
            "live",
            "--label",
            "okta",
            "--database",
            &dbs,
        ]))
        .trim(),
    )
    .unwrap();
    let second = Client::new(server.addr, "live", issued["token"].as_str().unwrap());
    assert_eq!(second.get("/Users").await.status, 200);

    // Revoke the first: the very next request with it is refused; the second still works.
    let tokens = ok_stdout(&scimd(&[
        "--database",
        &dbs,
        "token",
        "list",
        "--tenant",
        "live",
    ]));
    assert!(
        !tokens.contains(created["token"].as_str().unwrap()),
        "token list never shows secrets"
    );
    let first_id = tokens
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|t| t["label"] == json!("initial"))
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    ok_stdout(&scimd(&[
        "--database",
        &dbs,
        "token",
        "revoke",
        "--tenant",
        "live",
        &first_id,
    ]));
    let refused = first.get("/Users").await;
    assert_eq!(refused.status, 401);
    assert_eq!(
        refused.header("www-authenticate"),
        Some("Bearer realm=\"scimd\"")
    );
    assert_eq!(second.get("/Users").await.json()["totalResults"], json!(1));
    let healthz = client::send(server.addr, false, Method::GET, "/healthz", &[], None).await;
    assert_eq!(healthz.status, 200);

    let status = server.terminate();
    assert!(status.success(), "scimd exits 0 on SIGTERM: {status:?}");
}

/// The permission bits of `path`.
#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The first serve creates tenant `default`; its token goes to a file readable by scimd's
/// user only, never to a stdout that is not a terminal (journald and container runtimes keep
/// stdout); the database and its -wal and -shm are readable by their owner only.
#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_serve_creates_the_default_tenant() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("first.db");
    let token_file = dir.path().join("first.db.bootstrap-token");
    let mut server = Running::start(&db, &[]);
    // Read the announcement printed before serving.
    let mut stdout = server.child.stdout.take().unwrap();
    let text = tokio::task::spawn_blocking(move || {
        use std::io::Read;
        let mut text = String::new();
        let mut buf = [0u8; 512];
        while !text.contains("makes another") {
            match stdout.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => text.push_str(&String::from_utf8_lossy(&buf[..n])),
            }
        }
        text
    })
    .await
    .unwrap();
    let base = format!("http://{}/t/default/scim/v2", server.addr);
    assert!(text.contains(&base), "{text}");
    assert!(
        !text.contains("scimd_"),
        "a token on a piped stdout: {text}"
    );
    assert!(
        text.contains(&token_file.display().to_string()),
        "the token file's path is printed: {text}"
    );
    assert_eq!(mode(&token_file), 0o600);
    let token = std::fs::read_to_string(&token_file).unwrap();
    let token = token.trim_end();
    assert!(
        token.starts_with("scimd_") && !token.contains('\n'),
        "{token:?}"
    );
    let c = Client::new(server.addr, "default", token);
    assert_eq!(c.get("/ServiceProviderConfig").await.status, 200);
    let user =
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "first"});
    assert_eq!(c.post("/Users", &user).await.status, 201);
    // After a write, while the server runs: the database, its log and its shared memory.
    for suffix in ["", "-wal", "-shm"] {
        let file = dir.path().join(format!("first.db{suffix}"));
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
    assert!(server.terminate().success());

    // The second serve creates nothing, prints no token, and leaves the file alone.
    let mut again = Running::start(&db, &[]);
    assert!(again.terminate().success());
    let mut rest = String::new();
    use std::io::Read;
    again
        .child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut rest)
        .unwrap();
    assert!(!rest.contains("Bearer token"), "{rest}");
    assert_eq!(
        std::fs::read_to_string(&token_file).unwrap().trim_end(),
        token
    );

    // --bootstrap-token-file puts it elsewhere; a path scimd cannot write stops the first
    // serve before it creates the tenant.
    let other_db = dir.path().join("other.db");
    let unwritable = dir.path().join("no-such-dir").join("token");
    let refused = scimd(&[
        "--database",
        other_db.to_str().unwrap(),
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--bootstrap-token-file",
        unwritable.to_str().unwrap(),
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--bootstrap-token-file"), "{stderr}");
    let tenants = ok_stdout(&scimd(&[
        "--database",
        other_db.to_str().unwrap(),
        "tenant",
        "list",
    ]));
    assert!(tenants.is_empty(), "{tenants}");
    let chosen = dir.path().join("chosen-token");
    let mut elsewhere = Running::launch(
        other_db.to_str().unwrap(),
        &["--bootstrap-token-file", chosen.to_str().unwrap()],
        &[],
        Stdio::null(),
    );
    assert!(elsewhere.terminate().success());
    assert_eq!(mode(&chosen), 0o600);
    assert!(
        std::fs::read_to_string(&chosen)
            .unwrap()
            .starts_with("scimd_")
    );
    assert!(!dir.path().join("other.db.bootstrap-token").exists());
}

/// An existing database others can read is left as it is, with a warning naming it.
#[cfg(unix)]
#[test]
fn a_world_readable_database_is_reported() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("open.db");
    ok_stdout(&scimd(&["--database", db.to_str().unwrap(), "migrate"]));
    assert_eq!(mode(&db), 0o600);
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = scimd(&["--database", db.to_str().unwrap(), "tenant", "list"]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("open.db") && stderr.contains("644") && stderr.contains("chmod 600"),
        "{stderr}"
    );
    assert_eq!(mode(&db), 0o644, "never changed behind the operator's back");
}

/// `GET /t/{tenant}/scim/v2/ServiceProviderConfig` with `Host: host`; the status and body.
fn get_with_host(addr: SocketAddr, host: &str, tenant: &str, token: &str) -> (u16, Value) {
    let path = format!("/t/{tenant}/scim/v2/ServiceProviderConfig");
    let reply = raw_http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}"),
    );
    let body = reply.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let status = reply.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

/// Sends `head` (without its blank line) with `Connection: close`; returns the whole answer.
fn raw_http(addr: SocketAddr, head: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes())
        .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn host_header_is_checked_on_the_real_binary() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("hosts.db");
    let dbs = db.to_str().unwrap();
    let created: Value = serde_json::from_str(
        ok_stdout(&scimd(&["--database", dbs, "tenant", "create", "h"])).trim(),
    )
    .unwrap();
    let token = created["token"].as_str().unwrap();

    // Default on a loopback address: the address and localhost, nothing else.
    let server = Running::start(&db, &[]);
    let port = server.addr.port();
    let (status, body) = get_with_host(server.addr, "evil.example", "h", token);
    assert_eq!(status, 421, "{body}");
    assert!(!body.to_string().contains("http://evil.example"), "{body}");
    let (status, body) = get_with_host(server.addr, &format!("localhost:{port}"), "h", token);
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["meta"]["location"],
        format!("http://localhost:{port}/t/h/scim/v2/ServiceProviderConfig")
    );
    drop(server);

    // The flag, then the variable (comma-separated), then the file.
    let config = dir.path().join("scimd.toml");
    std::fs::write(&config, "[server]\nallowed_hosts = [\"file.example\"]\n").unwrap();
    let config = config.to_str().unwrap();
    for (extra, env, allowed) in [
        (
            vec!["--allowed-hosts", "scim.example.com,10.0.0.5:8443"],
            vec![],
            "scim.example.com",
        ),
        (
            vec![],
            vec![("SCIMD_ALLOWED_HOSTS", "other.example, env.example")],
            "env.example:9",
        ),
        (vec!["--config", config], vec![], "file.example"),
    ] {
        let server = Running::launch(dbs, &extra, &env, Stdio::null());
        let (status, _) = get_with_host(server.addr, allowed, "h", token);
        assert_eq!(status, 200, "{extra:?} {env:?}: {allowed}");
        let (status, body) = get_with_host(server.addr, "evil.example", "h", token);
        assert_eq!(status, 421, "{extra:?} {env:?}");
        assert!(
            body["detail"].as_str().unwrap().contains("--allowed-hosts"),
            "{body}"
        );
        // The listed hosts replace the listen address.
        let (status, _) = get_with_host(server.addr, &server.addr.to_string(), "h", token);
        assert_eq!(status, 421, "{extra:?} {env:?}");
        // Probes answer whatever the host.
        let probe = raw_http(server.addr, "GET /readyz HTTP/1.1\r\nHost: 10.1.2.3:8080");
        assert!(probe.starts_with("HTTP/1.1 200"), "{probe}");
    }

    let bad = scimd(&[
        "--database",
        dbs,
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--allowed-hosts",
        "https://x/",
    ]);
    assert!(!bad.status.success());
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("\"https://x/\" is not a host"), "{stderr}");
}

/// On every interface with neither --public-url nor --allowed-hosts, scimd refuses to start,
/// before binding the address and before the first run creates a tenant. (Never run against a
/// scimd without the check: it would listen on every interface.)
#[test]
fn a_wildcard_listen_address_needs_public_url_or_allowed_hosts() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("wild.db");
    for listen in ["0.0.0.0:0", "[::]:0"] {
        let mut child = Command::new(SCIMD)
            .args([
                "--database",
                db.to_str().unwrap(),
                "serve",
                "--listen",
                listen,
            ])
            .env_remove("SCIMD_DATABASE")
            .env_remove("SCIMD_CONFIG")
            .env_remove("SCIMD_PUBLIC_URL")
            .env_remove("SCIMD_ALLOWED_HOSTS")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("scimd started on {listen}");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let output = child.wait_with_output().unwrap();
        assert!(!status.success(), "{listen}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("--public-url") && stderr.contains("--allowed-hosts"),
            "{listen}: {stderr}"
        );
        assert!(stderr.contains("every interface"), "{stderr}");
        assert!(
            output.stdout.is_empty(),
            "no tenant, no token: {:?}",
            output.stdout
        );
    }
    let tenants = ok_stdout(&scimd(&[
        "--database",
        db.to_str().unwrap(),
        "tenant",
        "list",
    ]));
    assert!(tenants.is_empty(), "{tenants}");
}

/// The request log cannot be forged: the path is never logged (encoded newlines and JSON in
/// it stay out), an invented method is an HTTP token (no spaces or line breaks), so each
/// request is exactly one well-formed JSON line.
#[test]
fn request_log_lines_cannot_be_forged() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("log.db");
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = Running::launch(
        db.to_str().unwrap(),
        &["--log-format", "json"],
        &[("SCIMD_LOG", "info")],
        Stdio::from(log),
    );
    let forged =
        "%0A%7B%22level%22%3A%22ERROR%22%2C%22fields%22%3A%7B%22message%22%3A%22FORGED%22%7D%7D";
    let heads = [
        format!("GET /t/default/scim/v2/Users/{forged} HTTP/1.1\r\nHost: 127.0.0.1"),
        format!("BREWFORGED /healthz?x={forged} HTTP/1.1\r\nHost: 127.0.0.1"),
        format!("GET /{forged} HTTP/1.1\r\nHost: 127.0.0.1"),
    ];
    for head in &heads {
        let answer = raw_http(server.addr, head);
        assert!(answer.starts_with("HTTP/1.1 "), "{answer}");
    }
    assert!(server.terminate().success());
    let text = std::fs::read_to_string(&log_path).unwrap();
    let mut requests = 0;
    for line in text.lines() {
        let entry: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("a log line that is not JSON ({e}): {line:?}"));
        // The detail of a 404 quotes the path, escaped inside its JSON string: the forgery
        // stays text in a field and never becomes a line or an entry of its own.
        assert_ne!(entry["message"], "FORGED", "{line}");
        if entry["message"] == "request" {
            requests += 1;
        }
    }
    // The /healthz polls of Running::launch are logged too; the three above at least.
    assert!(requests >= heads.len(), "{text}");
    assert!(text.contains("\"method\":\"BREWFORGED\""), "{text}");
}

/// A failed request's log line says why and who: the scimType and detail, the tenant the URL
/// names (when it is a tenant name), the token's id and label once authenticated (never its
/// secret), the client's address (from X-Forwarded-For only behind a trusted proxy) and a
/// bounded User-Agent. A 2xx line stays short.
#[test]
fn failed_requests_are_logged_with_their_reason_and_caller() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("why.db");
    let dbs = db.to_str().unwrap();
    let created: Value = serde_json::from_str(
        ok_stdout(&scimd(&["--database", dbs, "tenant", "create", "why"])).trim(),
    )
    .unwrap();
    let secret = created["token"].as_str().unwrap().to_owned();
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = Running::launch(
        dbs,
        &["--log-format", "json", "--trusted-proxies", "127.0.0.2/32"],
        &[("SCIMD_LOG", "info")],
        Stdio::from(log),
    );
    let long_agent = format!("probe/1 {}", "x".repeat(1000));
    let auth = format!("Authorization: Bearer {secret}");
    let heads = [
        // 400 invalidFilter, authenticated, with a forged X-Forwarded-For from a direct peer.
        format!(
            "GET /t/why/scim/v2/Users?filter=userName%20eq HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}\r\nX-Forwarded-For: 198.51.100.9\r\nUser-Agent: {long_agent}"
        ),
        // 401 to a tenant.
        "GET /t/why/scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: curl/8".to_owned(),
        // 404 to a name that is not a tenant's: the name is not logged.
        "GET /t/EVIL%22x/scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1".to_owned(),
        // 404 of a resource, authenticated.
        format!("GET /t/why/scim/v2/Users/nobody HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"),
        // 200.
        format!("GET /t/why/scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1\r\n{auth}"),
    ];
    let mut statuses = Vec::new();
    for head in &heads {
        let answer = raw_http(server.addr, head);
        statuses.push(answer.get(9..12).unwrap_or("").to_owned());
    }
    assert_eq!(statuses, ["400", "401", "404", "404", "200"]);
    assert!(server.terminate().success());
    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        !text.contains(&secret),
        "the secret is never logged: {text}"
    );
    let requests: Vec<Value> = text
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .filter(|e| e["message"] == "request" && e["route"] != "/healthz")
        .collect();
    assert_eq!(requests.len(), heads.len(), "{text}");
    let bad_filter = &requests[0];
    assert_eq!(bad_filter["status"], 400, "{bad_filter}");
    assert_eq!(bad_filter["scim_type"], "invalidFilter", "{bad_filter}");
    assert!(
        bad_filter["detail"].as_str().unwrap().len() > 10,
        "{bad_filter}"
    );
    assert_eq!(bad_filter["tenant"], "why");
    let token_id = bad_filter["token_id"].as_str().unwrap();
    assert!(
        token_id != "-" && !secret.contains(token_id),
        "{bad_filter}"
    );
    assert_ne!(bad_filter["token_label"], "-", "{bad_filter}");
    // The peer is not a trusted proxy: its X-Forwarded-For is ignored, and never logged.
    assert_eq!(bad_filter["client"], "127.0.0.1", "{bad_filter}");
    assert!(!text.contains("198.51.100.9"), "{text}");
    let agent = bad_filter["user_agent"].as_str().unwrap();
    assert!(
        agent.starts_with("probe/1 x") && agent.len() <= 200,
        "{agent}"
    );

    let unauthorized = &requests[1];
    assert_eq!(unauthorized["status"], 401);
    assert_eq!(unauthorized["tenant"], "why", "{unauthorized}");
    assert_eq!(unauthorized["token_id"], "-");
    assert_eq!(unauthorized["user_agent"], "curl/8");
    assert!(
        unauthorized["detail"]
            .as_str()
            .unwrap()
            .contains("authentication required"),
        "{unauthorized}"
    );

    let not_a_tenant = &requests[2];
    assert_eq!(not_a_tenant["status"], 404);
    assert_eq!(not_a_tenant["tenant"], "-", "{not_a_tenant}");

    let missing = &requests[3];
    assert_eq!(missing["status"], 404);
    assert_eq!(missing["token_id"], token_id, "{missing}");
    assert_eq!(missing["scim_type"], "-", "{missing}");

    let fine = &requests[4];
    assert_eq!(fine["status"], 200);
    assert_eq!(fine["tenant"], "why");
    assert!(
        fine.get("detail").is_none() && fine.get("client").is_none(),
        "{fine}"
    );
}

/// Behind a trusted proxy, the client is the right-most X-Forwarded-For address that is not a
/// trusted proxy itself; what is left of it is the client's word and is not logged.
#[test]
fn the_client_address_comes_from_a_trusted_proxy_only() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("proxy.db");
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = Running::launch(
        db.to_str().unwrap(),
        &["--log-format", "json", "--trusted-proxies", "127.0.0.0/8"],
        &[("SCIMD_LOG", "info")],
        Stdio::from(log),
    );
    let answer = raw_http(
        server.addr,
        "GET /t/default/scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Forwarded-For: 192.0.2.66, 203.0.113.5\r\nX-Forwarded-For: 127.0.0.7",
    );
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
    assert!(server.terminate().success());
    let text = std::fs::read_to_string(&log_path).unwrap();
    let line = text
        .lines()
        .map(|line| serde_json::from_str::<Value>(line).unwrap())
        .find(|e| e["status"] == 401)
        .unwrap_or_else(|| panic!("no 401 line: {text}"));
    assert_eq!(line["client"], "203.0.113.5", "{line}");
    assert!(!text.contains("192.0.2.66"), "{text}");
}

/// `--version` names the commit, and the start-up line says what runs where, and where each
/// setting came from (flag, environment, file, default).
#[test]
fn start_up_logs_the_version_database_listener_and_setting_sources() {
    let version = ok_stdout(&scimd(&["--version"]));
    assert!(
        version.starts_with(&format!("scimd {} (", env!("CARGO_PKG_VERSION")))
            && version.trim_end().ends_with(')'),
        "{version}"
    );
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("start.db");
    let config = dir.path().join("scimd.toml");
    std::fs::write(
        &config,
        "[limits]\nmax_body_bytes = 2000000\n[scim]\ndefault_count = 50\n",
    )
    .unwrap();
    let log_path = dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut server = Running::launch(
        db.to_str().unwrap(),
        &["--log-format", "json", "--config", config.to_str().unwrap()],
        &[("SCIMD_LOG", "info"), ("SCIMD_MAX_RESULTS", "70")],
        Stdio::from(log),
    );
    let addr = server.addr;
    assert!(server.terminate().success());
    let text = std::fs::read_to_string(&log_path).unwrap();
    let line: Value = text
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|e| e["message"] == "starting")
        .unwrap_or_else(|| panic!("no start-up line: {text}"));
    assert_eq!(line["version"], env!("CARGO_PKG_VERSION"));
    let commit = line["commit"].as_str().unwrap();
    assert!(version.contains(commit), "{line}");
    assert_eq!(line["database"], db.to_str().unwrap());
    assert_eq!(line["listen"], addr.to_string());
    assert_eq!(line["tls"], false);
    let sources = line["sources"].as_str().unwrap();
    for expected in [
        "database=flag",
        "log_format=flag",
        "max_results=env",
        "max_body_bytes=file",
        "scim.default_count=file",
        "idle_timeout_secs=default",
    ] {
        assert!(
            sources.split(' ').any(|s| s == expected),
            "{expected} in {sources}"
        );
    }
}

/// `scimd tenant list | head -1`, `scimd token list ... | head`: output piped to a reader that
/// has gone is a quiet, successful end, never a panic (`println!` panics on EPIPE). The pipe's
/// read end is closed before the binary starts, so its first write fails, deterministically.
#[test]
fn output_to_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let db = db.to_str().unwrap();
    ok_stdout(&scimd(&["--database", db, "tenant", "create", "acme"]));
    for args in [
        &["--database", db, "tenant", "list"][..],
        &["--database", db, "token", "list", "--tenant", "acme"][..],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let output = Command::new(SCIMD)
            .args(args)
            .env_remove("SCIMD_DATABASE")
            .env_remove("SCIMD_CONFIG")
            .stdout(writer)
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success(),
            "{args:?}: {:?}, stderr: {stderr}",
            output.status
        );
        assert!(stderr.is_empty(), "{args:?}: nothing on stderr: {stderr}");
    }
}

/// A `--tls-key` file that holds a certificate (the flags swapped) or an encrypted key says so,
/// instead of rustls' "no items found". The files are made with `openssl` as in
/// crates/scim-server/tests/tls.rs; the server fails before it listens.
#[test]
fn a_tls_key_that_is_a_certificate_or_encrypted_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let made = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
        .args(["-subj", "/CN=localhost", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output();
    let encrypted = dir.path().join("encrypted.pem");
    let made = made.ok().filter(|o| o.status.success()).and_then(|_| {
        Command::new("openssl")
            .args([
                "pkcs8",
                "-topk8",
                "-v2",
                "aes-256-cbc",
                "-passout",
                "pass:secret",
                "-in",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&encrypted)
            .output()
            .ok()
            .filter(|o| o.status.success())
    });
    if made.is_none() {
        eprintln!("SKIPPED: no openssl command to make test keys");
        return;
    }
    let db = dir.path().join("a.db");
    let listen = format!("127.0.0.1:{}", free_port());
    for (key_file, expected) in [
        (&cert, "holds a certificate, not a private key"),
        (&encrypted, "the private key is encrypted"),
    ] {
        let output = scimd(&[
            "--database",
            db.to_str().unwrap(),
            "serve",
            "--listen",
            &listen,
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key_file.to_str().unwrap(),
        ]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{stderr}");
        assert!(
            stderr.contains(expected) && stderr.contains(key_file.to_str().unwrap()),
            "{expected:?} naming the file: {stderr}"
        );
    }
}

/// After a clean stop (SIGTERM) the `.db` file alone is the database: the write-ahead log was
/// checkpointed into it and emptied, so a copy of the file without its `-wal` and `-shm` (what
/// a naive backup takes) holds every write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_stop_leaves_the_whole_database_in_the_db_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("stop.db");
    let mut server = Running::start(&db, &[]);
    let token_file = dir.path().join("stop.db.bootstrap-token");
    let token = std::fs::read_to_string(&token_file).unwrap();
    let token = token.trim_end().to_owned();
    let c = Client::new(server.addr, "default", &token);
    let user =
        json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "kept"});
    assert_eq!(c.post("/Users", &user).await.status, 201);
    assert!(server.terminate().success());

    let wal = dir.path().join("stop.db-wal");
    let wal_len = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
    assert_eq!(
        wal_len, 0,
        "the log is checkpointed and emptied on a clean stop"
    );

    // The .db file alone, in another directory.
    let elsewhere = tempfile::tempdir().unwrap();
    let copy = elsewhere.path().join("copy.db");
    std::fs::copy(&db, &copy).unwrap();
    let listed = ok_stdout(&scimd(&[
        "--database",
        copy.to_str().unwrap(),
        "tenant",
        "list",
    ]));
    assert!(listed.contains("\"default\""), "{listed}");
    let mut again = Running::start(&copy, &[]);
    let c = Client::new(again.addr, "default", &token);
    let found = c.get("/Users?filter=userName%20eq%20%22kept%22").await;
    assert_eq!(found.status, 200);
    assert_eq!(found.json()["totalResults"], json!(1), "{:?}", found.body);
    assert!(again.terminate().success());
}
