//! Reads under abuse (issue 16, items 2 and 3), against the real `scimd` over HTTP, on SQLite
//! and on PostgreSQL, with a tenant of 400 users of about 80 KB each:
//!
//! - slow reads (four concurrent sorts over every document) leave the server responsive:
//!   `/healthz` answers within 100 ms meanwhile (before: 1.7 s);
//! - a slow read stops at the request deadline: with `--request-timeout-secs 1` it answers 503
//!   within 1.6 s, the server stops spending CPU on it at once, and the next reads find the pool
//!   free (before, the read ran to its end and answered late);
//! - PostgreSQL: `--statement-timeout-ms` stops a statement (503), and `--pool-wait-ms` answers
//!   503 when every pooled connection stays busy, instead of waiting for the request timeout;
//! - a list's memory is bounded by `max_page_bytes` (4 MiB by default): four concurrent
//!   `GET /Users?count=1000` keep the server's peak resident memory under [`PEAK_RSS_MIB`]
//!   (before: hundreds of MB, growing with the documents), and a client that follows
//!   `startIndex + itemsPerPage`, or `nextCursor`, still lists every user exactly once.
//!
//! The tests measure latency and memory, so they run one at a time. PostgreSQL is
//! `SCIMD_TEST_POSTGRES_URL` (default `postgres://postgres@127.0.0.1:5432/test`); the test
//! creates a database of its own and drops it. Without a reachable PostgreSQL it is skipped with
//! a banner on stderr, unless `SCIMD_REQUIRE_POSTGRES=1`, which makes absence a failure.

// Test support below: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../crates/scim-server/tests/common/client.rs"]
mod client;

mod support;

use client::{Client, Reply, send};
use http::Method;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::{Running, ScratchDatabase, create_tenant, postgres_or_skip};

/// How many users the tenant holds, and about how large each is.
const USERS: usize = 400;

/// The peak resident memory (`VmHWM`) four concurrent `GET /Users?count=1000` may bring a fresh
/// debug-built server to, with the default `max_page_bytes` of 4 MiB: about 45 MiB at rest,
/// plus for each response its page's documents as text, as parsed JSON and as the serialised
/// answer (measured: about 120 MiB in all). Before the budget, every response held all 400
/// users, 32 MB of text, several times over: more than 300 MiB here, and as much more as the
/// documents are larger.
const PEAK_RSS_MIB: u64 = 200;

/// The slowest answer `/healthz` may give while slow reads run.
const HEALTHZ_LIMIT: Duration = Duration::from_millis(100);

/// A sort over every document: each is parsed for its sort key.
const SLOW_READ: &str = "/Users?sortBy=title&count=1";

/// Slower still: every document parsed by the filter's evaluator and for the sort key.
const SLOWER_READ: &str = "/Users?filter=addresses.streetAddress%20co%20%22x%22&sortBy=title&sortOrder=descending&count=1";

/// One test at a time: they measure latency and memory.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A user of about 80 KB: long strings (`addresses`), and many small values (`roles`), which
/// weigh several times their text once parsed.
fn big_user(i: usize) -> Value {
    let addresses: Vec<Value> = (0..5)
        .map(|j| json!({"type": "work", "streetAddress": format!("{}{j}", "x".repeat(12_000))}))
        .collect();
    let roles: Vec<Value> = (0..150)
        .map(|j| json!({"value": format!("role-{i}-{j}"), "display": format!("Role {j} of user {i}, with words"), "type": "work"}))
        .collect();
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": format!("reader-{i:04}"),
        "title": format!("t{}", i % 97),
        "addresses": addresses,
        "roles": roles,
    })
}

/// Creates the users, eight requests at a time; their ids.
async fn seed(client: &Client) -> Vec<String> {
    let next = Arc::new(AtomicUsize::new(0));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (client, next) = (client.clone(), Arc::clone(&next));
            tokio::spawn(async move {
                let mut ids = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= USERS {
                        return ids;
                    }
                    let created = client.post("/Users", &big_user(i)).await;
                    assert_eq!(created.status, 201, "{:?}", created.body);
                    ids.push(created.json()["id"].as_str().unwrap().to_owned());
                }
            })
        })
        .collect();
    let mut ids = Vec::new();
    for worker in workers {
        ids.extend(worker.await.unwrap());
    }
    ids
}

/// `/healthz`, timed.
async fn healthz(addr: SocketAddr) -> Duration {
    let started = Instant::now();
    let reply = send(addr, false, Method::GET, "/healthz", &[], None).await;
    assert_eq!(reply.status, 200);
    started.elapsed()
}

/// A request, timed.
/// `count` GETs of `path` at once, each answered with how long it took.
async fn timed_burst(client: &Client, count: usize, path: &'static str) -> Vec<(Reply, Duration)> {
    let burst: Vec<_> = (0..count)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { timed_get(&client, path).await })
        })
        .collect();
    let mut answers = Vec::new();
    for request in burst {
        answers.push(request.await.unwrap());
    }
    answers
}

async fn timed_get(client: &Client, path: &str) -> (Reply, Duration) {
    let started = Instant::now();
    let reply = client.get(path).await;
    (reply, started.elapsed())
}

/// `/proc/<pid>/status`'s value of `field`, in KiB.
fn status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The CPU time the process has used (user and system), in clock ticks (1/100 s).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name (in parentheses, which may hold spaces): utime and
    // stime are the 14th and 15th of the line, the 12th and 13th after it.
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

fn serve(database: &str, extra: &[&str]) -> Running {
    Running::launch(database, extra, &[], Stdio::null())
}

/// Four clients sending `path` over and over until told to stop; the statuses they got.
fn hammer(
    client: &Client,
    path: &'static str,
) -> (Arc<AtomicBool>, Vec<tokio::task::JoinHandle<Vec<u16>>>) {
    let stop = Arc::new(AtomicBool::new(false));
    let tasks = (0..4)
        .map(|_| {
            let (client, stop) = (client.clone(), Arc::clone(&stop));
            tokio::spawn(async move {
                let mut statuses = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    statuses.push(client.get(path).await.status);
                }
                statuses
            })
        })
        .collect();
    (stop, tasks)
}

/// Item 2: while four clients sort the tenant's documents over and over, `/healthz` answers
/// within [`HEALTHZ_LIMIT`], every time.
async fn slow_reads_leave_the_server_responsive(server: &Running, client: &Client) {
    let (alone, took) = timed_get(client, SLOW_READ).await;
    assert_eq!(alone.status, 200);
    assert!(
        took >= Duration::from_millis(100),
        "the slow read took {took:?} alone: too fast to prove anything"
    );
    let (stop, tasks) = hammer(client, SLOW_READ);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut probes = Vec::new();
    for _ in 0..12 {
        probes.push(healthz(server.addr).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.extend(task.await.unwrap());
    }
    assert!(
        statuses.iter().all(|s| *s == 200),
        "the slow reads: {statuses:?}"
    );
    assert!(
        probes.iter().all(|p| *p < HEALTHZ_LIMIT),
        "/healthz while four slow reads ran (each {took:?} alone): {probes:?}"
    );
}

/// Item 2: with `--request-timeout-secs 1`, a burst of slow reads sized to this machine answers 503 with `Retry-After` within
/// 1.6 s; the server stops working on them at once (its CPU goes quiet), and then answers at
/// once: `/healthz`, a point read, and a read long enough for the pool of long reads.
async fn slow_reads_stop_at_the_request_deadline(server: &Running, client: &Client, id: &str) {
    // Enough slow reads at once that, on two cores, the last would finish well past the
    // deadline however fast this machine is today: each alone, times the burst, over 4 s.
    let (_, alone) = timed_get(client, SLOWER_READ).await;
    let reads = (4_000 / alone.as_millis().max(1)).clamp(4, 16) as usize;
    let started = Instant::now();
    let answers = timed_burst(client, reads, SLOWER_READ).await;
    let summary: Vec<(u16, Duration)> = answers.iter().map(|(r, d)| (r.status, *d)).collect();
    assert!(
        answers
            .iter()
            .all(|(_, took)| *took < Duration::from_millis(1600)),
        "answers past the 1 s deadline: {summary:?}"
    );
    let timed_out: Vec<&Reply> = answers
        .iter()
        .map(|(r, _)| r)
        .filter(|r| r.status == 503)
        .collect();
    assert!(
        !timed_out.is_empty(),
        "no read hit the deadline ({reads} at once, each {alone:?} alone): {summary:?}"
    );
    for reply in &timed_out {
        assert_eq!(reply.header("retry-after"), Some("1"), "{summary:?}");
        let detail = reply.json()["detail"].as_str().unwrap().to_owned();
        assert!(
            detail.contains("1000 ms") || detail.contains("in time"),
            "{detail}"
        );
    }
    assert!(
        answers
            .iter()
            .all(|(r, _)| r.status == 503 || r.status == 200),
        "{summary:?}"
    );
    // The reads were stopped, not left running: the server's CPU goes quiet.
    tokio::time::sleep(Duration::from_millis(150)).await;
    let pid = server.child.id();
    let before = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let spent = cpu_ticks(pid) - before;
    assert!(
        spent <= 25,
        "the server spent {spent}/100 s of CPU in the second after its reads were given up \
         ({:?} after the burst began)",
        started.elapsed()
    );
    // And it answers at once.
    let probe = healthz(server.addr).await;
    assert!(probe < HEALTHZ_LIMIT, "/healthz after the burst: {probe:?}");
    let (one, took) = timed_get(client, &format!("/Users/{id}")).await;
    assert_eq!(one.status, 200);
    assert!(took < Duration::from_millis(500), "a point read: {took:?}");
    // Ten users, sorted by their documents' titles: too long for the fast path.
    let (some, took) = timed_get(
        client,
        "/Users?filter=userName%20sw%20%22reader-000%22&sortBy=title&count=2",
    )
    .await;
    assert_eq!(some.status, 200, "a long read after the burst ({took:?})");
    assert_eq!(some.json()["totalResults"], json!(10));
}

/// Item 3: four concurrent `GET /Users?count=1000` on a fresh server stay under
/// [`PEAK_RSS_MIB`], their pages stop early (a smaller `itemsPerPage`, `totalResults` whole);
/// and a client that follows `startIndex + itemsPerPage`, or `nextCursor`, or pages
/// `/.search` over every resource type, lists every user exactly once.
async fn list_memory_is_bounded(server: &Running, client: &Client, ids: &[String]) {
    let pid = server.child.id();
    let at_rest = status_kib(pid, "VmHWM:");
    let lists: Vec<_> = (0..4)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.get("/Users?count=1000").await })
        })
        .collect();
    let mut items = Vec::new();
    for list in lists {
        let reply = list.await.unwrap();
        assert_eq!(reply.status, 200);
        let page = reply.json();
        assert_eq!(
            page["totalResults"],
            json!(USERS),
            "totalResults counts every user"
        );
        let n = page["itemsPerPage"].as_u64().unwrap();
        assert_eq!(page["Resources"].as_array().unwrap().len() as u64, n);
        items.push(n);
    }
    let peak = status_kib(pid, "VmHWM:");
    assert!(
        peak < PEAK_RSS_MIB * 1024,
        "four concurrent count=1000 lists took the server from {} MiB to {} MiB (limit {PEAK_RSS_MIB} MiB); pages of {items:?}",
        at_rest / 1024,
        peak / 1024
    );
    assert!(
        items.iter().all(|n| *n > 0 && (*n as usize) < USERS),
        "the pages stop early: {items:?}"
    );
    eprintln!(
        "four concurrent count=1000 lists: peak RSS {} MiB (at rest {} MiB), pages of {items:?}",
        peak / 1024,
        at_rest / 1024
    );
    let expected: HashSet<&str> = ids.iter().map(String::as_str).collect();
    // Index paging, as a client follows it.
    let mut seen = Vec::new();
    let mut start = 1;
    while start <= USERS {
        let page = client
            .get(&format!(
                "/Users?count=1000&startIndex={start}&sortBy=userName"
            ))
            .await
            .json();
        assert_eq!(page["totalResults"], json!(USERS));
        let got = page["itemsPerPage"].as_u64().unwrap() as usize;
        assert!(got > 0, "an empty page at startIndex {start}");
        seen.extend(ids_in(&page));
        start += got;
    }
    check_once(&seen, &expected, "startIndex + itemsPerPage");
    // Cursor paging.
    let mut seen = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = client
            .get(&format!("/Users?count=1000&cursor={cursor}"))
            .await
            .json();
        assert_eq!(page["totalResults"], json!(USERS));
        seen.extend(ids_in(&page));
        match page["nextCursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    check_once(&seen, &expected, "nextCursor");
    // The root search, over Users and Groups: a group of everyone after the users.
    let members: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
    let group = client
        .post(
            "/Groups",
            &json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": "everyone", "members": members}),
        )
        .await;
    assert_eq!(group.status, 201);
    let group_id = group.json()["id"].as_str().unwrap().to_owned();
    let mut seen = Vec::new();
    let mut start = 1;
    loop {
        let body = json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                          "startIndex": start, "count": 1000});
        let reply = send(
            client.addr,
            false,
            Method::POST,
            &format!("{}/.search", client.base),
            &[
                ("authorization", &format!("Bearer {}", client.token)),
                ("content-type", "application/scim+json"),
            ],
            Some(serde_json::to_vec(&body).unwrap()),
        )
        .await;
        assert_eq!(reply.status, 200, "{:?}", reply.body);
        let page = reply.json();
        assert_eq!(page["totalResults"], json!(USERS + 1));
        let got = page["itemsPerPage"].as_u64().unwrap() as usize;
        if got == 0 {
            break;
        }
        seen.extend(ids_in(&page));
        start += got;
    }
    let mut everything = expected.clone();
    everything.insert(&group_id);
    check_once(&seen, &everything, "/.search");
    assert_eq!(
        client.delete(&format!("/Groups/{group_id}")).await.status,
        204
    );
}

fn ids_in(page: &Value) -> Vec<String> {
    page["Resources"]
        .as_array()
        .map(|r| {
            r.iter()
                .map(|r| r["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn check_once(seen: &[String], expected: &HashSet<&str>, how: &str) {
    let unique: HashSet<&str> = seen.iter().map(String::as_str).collect();
    assert_eq!(unique.len(), seen.len(), "{how}: a resource listed twice");
    assert_eq!(&unique, expected, "{how}: every resource, exactly once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_reads_are_bounded_in_time_and_memory() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("reads.db");
    let database = db.to_str().unwrap();
    let token = create_tenant(database, "reads");

    let started = Instant::now();
    let mut server = serve(database, &[]);
    let client = Client::new(server.addr, "reads", &token);
    let ids = seed(&client).await;
    eprintln!("sqlite: {USERS} users created in {:?}", started.elapsed());
    slow_reads_leave_the_server_responsive(&server, &client).await;
    eprintln!("sqlite: slow reads checked at {:?}", started.elapsed());
    server.terminate();

    let mut server = serve(database, &[]);
    let client = Client::new(server.addr, "reads", &token);
    list_memory_is_bounded(&server, &client, &ids).await;
    eprintln!("sqlite: memory checked at {:?}", started.elapsed());
    server.terminate();

    let server = serve(database, &["--request-timeout-secs", "1"]);
    let client = Client::new(server.addr, "reads", &token);
    slow_reads_stop_at_the_request_deadline(&server, &client, &ids[0]).await;
}

/// PostgreSQL's own limits: a statement past `--statement-timeout-ms` is stopped (503), and a
/// request that finds every pooled connection busy for `--pool-wait-ms` is answered 503 then,
/// not when its request times out.
async fn postgres_statement_and_pool_limits(database: &str, token: &str) {
    let server = serve(
        database,
        &["--statement-timeout-ms", "500", "--pool-wait-ms", "100"],
    );
    let client = Client::new(server.addr, "reads", token);
    // More slow reads than the pool's 16 connections.
    let answers = timed_burst(&client, 24, SLOWER_READ).await;
    let details: Vec<(u16, Duration, String)> = answers
        .iter()
        .map(|(r, took)| {
            let detail = if r.status == 200 {
                String::new()
            } else {
                r.json()["detail"].as_str().unwrap_or_default().to_owned()
            };
            (r.status, *took, detail)
        })
        .collect();
    let statement = details
        .iter()
        .filter(|(status, _, detail)| *status == 503 && detail.contains("statement timeout"))
        .count();
    let pool = details
        .iter()
        .filter(|(status, took, detail)| {
            *status == 503
                && detail.contains("no database connection")
                && *took < Duration::from_secs(1)
        })
        .count();
    assert!(
        statement > 0,
        "no read was stopped by the statement timeout: {details:#?}"
    );
    assert!(
        pool > 0,
        "no read gave up waiting for a connection: {details:#?}"
    );
    assert!(
        details
            .iter()
            .all(|(status, took, _)| (*status == 503 || *status == 200)
                && *took < Duration::from_secs(10)),
        "{details:#?}"
    );
    for (reply, _) in &answers {
        if reply.status == 503 {
            assert_eq!(reply.header("retry-after"), Some("1"));
        }
    }
    // The pool is free again.
    let (one, took) = timed_get(&client, "/Users?count=1").await;
    assert_eq!(one.status, 200, "after the burst ({took:?})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_reads_are_bounded_in_time_and_memory() {
    let _serial = SERIAL.lock().await;
    let Some(admin_url) = postgres_or_skip("reads under abuse on PostgreSQL").await else {
        return;
    };
    let scratch = ScratchDatabase::create(&admin_url, "scimd_reads").await;
    let database = scratch.url.clone();
    let token = create_tenant(&database, "reads");

    let started = Instant::now();
    let server = serve(&database, &[]);
    let client = Client::new(server.addr, "reads", &token);
    let ids = seed(&client).await;
    eprintln!("postgres: {USERS} users created in {:?}", started.elapsed());
    slow_reads_leave_the_server_responsive(&server, &client).await;
    eprintln!("postgres: slow reads checked at {:?}", started.elapsed());
    drop(server);

    let server = serve(&database, &[]);
    let client = Client::new(server.addr, "reads", &token);
    list_memory_is_bounded(&server, &client, &ids).await;
    eprintln!("postgres: memory checked at {:?}", started.elapsed());
    drop(server);

    // The statement timeout defaults to the request timeout.
    let server = serve(&database, &["--request-timeout-secs", "1"]);
    let client = Client::new(server.addr, "reads", &token);
    slow_reads_stop_at_the_request_deadline(&server, &client, &ids[0]).await;
    drop(server);

    postgres_statement_and_pool_limits(&database, &token).await;
    scratch.remove().await;
}
