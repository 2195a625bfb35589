//! What the real `scimd` binary says when it cannot use its database or its address: every
//! message names the file, directory, database or address at fault and what is wrong with it.

// Test support functions below: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod support;

use support::{SCIMD, free_port, scimd};

/// The error output of a command that must fail.
fn fails(output: &Output) -> String {
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        !output.status.success(),
        "expected a failure; stdout: {}, stderr: {stderr}",
        String::from_utf8_lossy(&output.stdout)
    );
    stderr
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Makes `path` (a file or a directory) unwritable until dropped. File modes do not restrict
/// root, who runs these tests in CI, so root gets the immutable attribute (`chattr +i`, which
/// refuses writes even to root); `None` where that is impossible (no chattr, or a file system
/// without it).
struct ReadOnly {
    path: PathBuf,
    immutable: bool,
}

impl ReadOnly {
    fn make(path: &Path) -> Option<ReadOnly> {
        use std::os::unix::fs::PermissionsExt;
        if is_root() {
            let ok = Command::new("chattr")
                .arg("+i")
                .arg(path)
                .status()
                .is_ok_and(|s| s.success());
            ok.then(|| ReadOnly {
                path: path.to_owned(),
                immutable: true,
            })
        } else {
            let mode = if path.is_dir() { 0o555 } else { 0o444 };
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
            Some(ReadOnly {
                path: path.to_owned(),
                immutable: false,
            })
        }
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        if self.immutable {
            let _ = Command::new("chattr").arg("-i").arg(&self.path).status();
        } else {
            let _ = std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(0o700));
        }
    }
}

#[test]
fn a_missing_database_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let db = missing.join("scimd.db");
    let stderr = fails(&scimd(&["--database", db.to_str().unwrap(), "migrate"]));
    assert!(
        stderr.contains(&format!("{}: the directory", missing.display()))
            && stderr.contains("does not exist"),
        "{stderr}"
    );
    assert!(!missing.exists(), "nothing is created");
}

#[test]
fn a_read_only_database_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ro.db");
    let dbs = db.to_str().unwrap();
    assert!(scimd(&["--database", dbs, "migrate"]).status.success());
    let Some(_guard) = ReadOnly::make(&db) else {
        eprintln!("SKIPPED a_read_only_database_file_is_named: cannot make a file read-only here");
        return;
    };
    let stderr = fails(&scimd(&["--database", dbs, "tenant", "create", "acme"]));
    assert!(
        stderr.contains(&format!("{dbs}: the database file is read-only")),
        "{stderr}"
    );
}

#[test]
fn a_read_only_database_directory_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("ro");
    std::fs::create_dir(&home).unwrap();
    let db = home.join("scimd.db");
    let dbs = db.to_str().unwrap();
    assert!(scimd(&["--database", dbs, "migrate"]).status.success());
    let Some(_guard) = ReadOnly::make(&home) else {
        eprintln!(
            "SKIPPED a_read_only_database_directory_is_named: cannot make a directory read-only"
        );
        return;
    };
    // An existing database: SQLite cannot create its -wal and -shm.
    let stderr = fails(&scimd(&["--database", dbs, "tenant", "create", "acme"]));
    assert!(
        stderr.contains(dbs) && stderr.contains(&format!("{} read-only", home.display())),
        "{stderr}"
    );
    // A new database: the file cannot be created.
    let new = home.join("new.db");
    let stderr = fails(&scimd(&["--database", new.to_str().unwrap(), "migrate"]));
    assert!(
        stderr.contains(new.to_str().unwrap())
            && stderr.contains(&format!("{} is read-only", home.display())),
        "{stderr}"
    );
}

/// Run from the wrong directory, a command that only uses an existing database says which
/// database it looked for and creates nothing (it used to create an empty `./scimd.db` and
/// then report that the tenant did not exist).
#[test]
fn commands_that_need_a_database_do_not_create_one() {
    let dir = tempfile::tempdir().unwrap();
    let commands: [&[&str]; 4] = [
        &["token", "issue", "--tenant", "default"],
        &["token", "list", "--tenant", "default"],
        &["tenant", "list"],
        &["tenant", "delete", "default", "--yes"],
    ];
    for args in commands {
        let output = Command::new(SCIMD)
            .args(args)
            .current_dir(dir.path())
            .env_remove("SCIMD_DATABASE")
            .env_remove("SCIMD_CONFIG")
            .output()
            .unwrap();
        let stderr = fails(&output);
        assert!(
            stderr.contains("scimd.db: no database there (the file does not exist"),
            "{args:?}: {stderr}"
        );
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{args:?} created {left:?}");
    }
    // The same with --database naming a file that does not exist.
    let db = dir.path().join("typo.db");
    let stderr = fails(&scimd(&[
        "--database",
        db.to_str().unwrap(),
        "token",
        "issue",
        "--tenant",
        "default",
    ]));
    assert!(stderr.contains(db.to_str().unwrap()), "{stderr}");
    assert!(!db.exists());
    // The commands that set a database up still create it.
    assert!(
        scimd(&[
            "--database",
            db.to_str().unwrap(),
            "tenant",
            "create",
            "acme"
        ])
        .status
        .success()
    );
    assert!(db.exists());
}

/// A port something else listens on: the error names the address and says it is in use.
#[test]
fn a_port_in_use_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let stderr = fails(&scimd(&[
        "--database",
        db.to_str().unwrap(),
        "serve",
        "--listen",
        &address,
    ]));
    assert!(
        stderr.contains(&format!("cannot listen on {address}: address in use")),
        "{stderr}"
    );
}

/// `--listen` takes a host name, resolved (it used to be refused: "invalid socket address
/// syntax"); a name that does not resolve is named.
#[test]
fn listen_takes_a_host_name() {
    use std::io::{Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("a.db");
    let port = free_port();
    let listen = format!("localhost:{port}");
    let mut child = Command::new(SCIMD)
        .args([
            "--database",
            db.to_str().unwrap(),
            "serve",
            "--listen",
            &listen,
        ])
        .env_remove("SCIMD_DATABASE")
        .env_remove("SCIMD_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let answered = loop {
        // localhost may resolve to ::1 or 127.0.0.1 first: either is loopback.
        let answer = ["127.0.0.1", "[::1]"].iter().find_map(|host| {
            let mut stream = std::net::TcpStream::connect(format!("{host}:{port}")).ok()?;
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .ok()?;
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .ok()?;
            let mut text = Vec::new();
            stream.read_to_end(&mut text).ok()?;
            Some(String::from_utf8_lossy(&text).into_owned())
        });
        if let Some(answer) = answer {
            break answer;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut stderr)
                .unwrap();
            panic!("scimd exited ({status}): {stderr}");
        }
        assert!(std::time::Instant::now() < deadline, "scimd did not start");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert!(answered.starts_with("HTTP/1.1 200"), "{answered}");

    let stderr = fails(&scimd(&[
        "--database",
        db.to_str().unwrap(),
        "serve",
        "--listen",
        "no-such-host.invalid:8080",
    ]));
    assert!(
        stderr.contains("\"no-such-host.invalid:8080\": cannot resolve"),
        "{stderr}"
    );
}

/// Whether the local test PostgreSQL (trust authentication) answers; when it does not, the
/// PostgreSQL cases are skipped with a banner, or fail under `SCIMD_REQUIRE_POSTGRES=1` (CI).
fn local_postgres() -> bool {
    let up = std::net::TcpStream::connect_timeout(
        &"127.0.0.1:5432".parse().unwrap(),
        std::time::Duration::from_secs(2),
    )
    .is_ok();
    if !up {
        assert!(
            std::env::var_os("SCIMD_REQUIRE_POSTGRES").is_none(),
            "no PostgreSQL on 127.0.0.1:5432"
        );
        eprintln!("SKIPPED: no PostgreSQL on 127.0.0.1:5432");
    }
    up
}

/// A missing database, an unknown role and a refused connection each say so, with host, port
/// and database (they all used to be "db error" or "error connecting to server").
#[test]
fn postgres_connection_failures_say_what_and_where() {
    let port = free_port();
    let refused = format!("postgres://postgres@127.0.0.1:{port}/scimd");
    let stderr = fails(&scimd(&["--database", &refused, "migrate"]));
    assert!(
        stderr.contains(&format!(
            "cannot connect to PostgreSQL at host 127.0.0.1, port {port}, database \"scimd\""
        )) && stderr.contains("connection refused"),
        "{stderr}"
    );
    if !local_postgres() {
        return;
    }
    let stderr = fails(&scimd(&[
        "--database",
        "postgres://postgres@127.0.0.1:5432/scimd_no_such_database",
        "migrate",
    ]));
    assert!(
        stderr.contains("host 127.0.0.1, port 5432, database \"scimd_no_such_database\"")
            && stderr.contains("the database does not exist"),
        "{stderr}"
    );
    let stderr = fails(&scimd(&[
        "--database",
        "postgres://scimd_no_such_role@127.0.0.1:5432/postgres",
        "migrate",
    ]));
    assert!(
        stderr.contains("host 127.0.0.1, port 5432, database \"postgres\"")
            && stderr.contains("the role (user) does not exist"),
        "{stderr}"
    );
}

/// A wrong password says authentication failed. Needs a server with password authentication:
/// a throwaway cluster (initdb, as user postgres since initdb refuses root), skipped with a
/// banner where initdb or user postgres is missing.
#[test]
fn postgres_authentication_failure_says_so() {
    let Some(bin) = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|versions| {
            versions
                .flatten()
                .map(|v| v.path().join("bin"))
                .find(|b| b.join("initdb").exists())
        })
    else {
        eprintln!("SKIPPED postgres_authentication_failure_says_so: no initdb");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let pwfile = dir.path().join("pw");
    std::fs::write(&pwfile, "right-password\n").unwrap();
    let owned = Command::new("chown")
        .args(["-R", "postgres", dir.path().to_str().unwrap()])
        .status()
        .is_ok_and(|s| s.success());
    let as_postgres = |program: &Path, args: &[&str]| {
        Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(program)
            .args(args)
            // Not piped: the server pg_ctl starts would hold a pipe open for ever.
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !owned
        || !as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=scram-sha-256",
                "--pwfile",
                pwfile.to_str().unwrap(),
            ],
        )
    {
        eprintln!("SKIPPED postgres_authentication_failure_says_so: cannot run initdb as postgres");
        return;
    }
    let port = free_port();
    let log = dir.path().join("log");
    let options = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -k {}",
        dir.path().display()
    );
    let started = as_postgres(
        &bin.join("pg_ctl"),
        &[
            "-D",
            data.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "-o",
            &options,
            "-w",
            "-t",
            "30",
            "start",
        ],
    );
    struct Stop<'a>(Box<dyn Fn() + 'a>);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            (self.0)();
        }
    }
    let _stop = Stop(Box::new(|| {
        as_postgres(
            &bin.join("pg_ctl"),
            &["-D", data.to_str().unwrap(), "-m", "immediate", "stop"],
        );
    }));
    assert!(started, "the throwaway cluster did not start");
    let url = format!("postgres://postgres:wrong-password@127.0.0.1:{port}/postgres");
    let stderr = fails(&scimd(&["--database", &url, "migrate"]));
    assert!(
        stderr.contains(&format!(
            "host 127.0.0.1, port {port}, database \"postgres\""
        )) && stderr.contains("authentication failed"),
        "{stderr}"
    );
    // The URL's password is never echoed.
    assert!(!stderr.contains("wrong-password"), "{stderr}");
}
