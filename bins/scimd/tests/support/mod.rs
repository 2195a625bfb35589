//! What the tests of the real `scimd` binary share: running a command, a free port, and a
//! running `scimd serve` stopped by SIGTERM (or killed when dropped).

#![allow(dead_code)]
// Test support: a failure here is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const SCIMD: &str = env!("CARGO_BIN_EXE_scimd");

pub fn scimd(args: &[&str]) -> Output {
    Command::new(SCIMD)
        .args(args)
        .env_remove("SCIMD_DATABASE")
        .env_remove("SCIMD_CONFIG")
        .output()
        .unwrap()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Whether `GET /healthz` on `addr` answers 200.
pub fn answers_healthz(addr: SocketAddr) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut answer = Vec::new();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .and_then(|()| stream.read_to_end(&mut answer))
        .is_ok()
        && answer.starts_with(b"HTTP/1.1 200")
}

/// A running `scimd serve`, killed with SIGTERM when dropped.
pub struct Running {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Running {
    pub fn start(db: &Path, extra: &[&str]) -> Running {
        Running::start_on(db.to_str().unwrap(), extra)
    }

    /// `scimd serve` on `database`: a file path or a `sqlite://` / `postgres://` URL.
    pub fn start_on(database: &str, extra: &[&str]) -> Running {
        Running::launch(database, extra, &[], Stdio::null())
    }

    /// `scimd serve` with extra flags, environment variables, and stderr (the log) where
    /// `stderr` says.
    pub fn launch(database: &str, extra: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Running {
        let running = Running::spawn(database, extra, env, stderr);
        let deadline = Instant::now() + Duration::from_secs(20);
        // Wait for an answer, not just a bound port: the SIGTERM handler is installed when the
        // server starts serving, and a signal before that kills scimd with the default action.
        while !answers_healthz(running.addr) {
            assert!(Instant::now() < deadline, "scimd did not start serving");
            std::thread::sleep(Duration::from_millis(50));
        }
        running
    }

    /// `scimd serve` on `database` (a path or a URL), ready once its port accepts a
    /// connection: for a TLS listener, which the plain-HTTP `/healthz` probe of
    /// [`Running::launch`] cannot reach, or a test that must not send it a request. Stop it by
    /// dropping it (SIGKILL), not with [`Running::terminate`]. Up to 30 s: a replica may wait
    /// for another's PostgreSQL migration.
    pub fn listening(database: &str, extra: &[&str]) -> Running {
        let running = Running::spawn(database, extra, &[], Stdio::null());
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(running.addr).is_err() {
            assert!(Instant::now() < deadline, "scimd did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        running
    }

    fn spawn(database: &str, extra: &[&str], env: &[(&str, &str)], stderr: Stdio) -> Running {
        let listen = format!("127.0.0.1:{}", free_port());
        let mut args = vec!["--database", database, "serve", "--listen", &listen];
        args.extend_from_slice(extra);
        let child = Command::new(SCIMD)
            .args(&args)
            .env_remove("SCIMD_DATABASE")
            .env_remove("SCIMD_CONFIG")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap();
        Running {
            child,
            addr: listen.parse().unwrap(),
        }
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .unwrap()
                .success()
        );
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "scimd did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The PostgreSQL admin URL (`SCIMD_TEST_POSTGRES_URL`, default
/// `postgres://postgres@127.0.0.1:5432/test`), or `None` after saying loudly on stderr that
/// `what` is skipped because no PostgreSQL answers. With `SCIMD_REQUIRE_POSTGRES=1` (CI sets
/// it) an unreachable server fails the test instead.
pub async fn postgres_or_skip(what: &str) -> Option<String> {
    let url = std::env::var("SCIMD_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let reachable = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_postgres::connect(&url, tokio_postgres::NoTls),
    )
    .await;
    match reachable {
        Ok(Ok((_client, connection))) => {
            drop(connection);
            Some(url)
        }
        other => {
            let why = match other {
                Ok(Err(e)) => e.to_string(),
                _ => "timed out".to_owned(),
            };
            if std::env::var("SCIMD_REQUIRE_POSTGRES").as_deref() == Ok("1") {
                panic!("SCIMD_REQUIRE_POSTGRES=1 but PostgreSQL at {url} is unreachable: {why}");
            }
            eprintln!(
                "\n*** SKIPPED: {what}: PostgreSQL at {url} is unreachable ({why}).\n\
                 *** Start PostgreSQL or set SCIMD_TEST_POSTGRES_URL to run this test.\n"
            );
            None
        }
    }
}

/// Runs SQL on a new connection to `url`.
pub async fn admin(url: &str, sql: &str) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let task = tokio::spawn(connection);
    client.batch_execute(sql).await.unwrap();
    drop(client);
    let _ = task.await;
}

/// A database of its own on a PostgreSQL server, for one test: [`ScratchDatabase::remove`]
/// drops it.
pub struct ScratchDatabase {
    pub url: String,
    admin_url: String,
    name: String,
}

impl ScratchDatabase {
    /// Creates one on the server of `admin_url`, named after `prefix`, the process and the time.
    pub async fn create(admin_url: &str, prefix: &str) -> ScratchDatabase {
        let name = format!(
            "{prefix}_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
                % 1_000_000_000
        );
        admin(admin_url, &format!("CREATE DATABASE {name}")).await;
        let base = admin_url.rsplit_once('/').unwrap().0;
        ScratchDatabase {
            url: format!("{base}/{name}"),
            admin_url: admin_url.to_owned(),
            name,
        }
    }

    /// Drops it, whoever is still connected.
    pub async fn remove(self) {
        admin(
            &self.admin_url,
            &format!("DROP DATABASE {} WITH (FORCE)", self.name),
        )
        .await;
    }
}

/// Creates tenant `name` on `database` with the CLI: its first token.
pub fn create_tenant(database: &str, name: &str) -> String {
    let created = scimd(&["--database", database, "tenant", "create", name]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let tenant: serde_json::Value = serde_json::from_slice(&created.stdout).unwrap();
    tenant["token"].as_str().unwrap().to_owned()
}
