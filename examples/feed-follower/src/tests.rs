//! The follower against a real `scimd serve` on a fresh SQLite database.

use super::*;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// The `scimd` binary of this workspace, as cargo reports it: built by the same command, with
/// the same features, as `cargo test --workspace` builds it, so under that command (CI) it is
/// already up to date and this costs nothing, and the test never runs a stale binary. (A
/// `cargo build -p scimd` would unify features differently and rebuild the server stack.)
fn scimd_binary() -> PathBuf {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args(["test", "--workspace", "--locked", "--no-run"])
        .args(["--message-format", "json-render-diagnostics"])
        .stderr(Stdio::inherit());
    // Cargo runs this test with the variables it gives a crate (CARGO_MANIFEST_DIR ...). The
    // nested cargo must not inherit them: build scripts that read one (ring's) would see it as
    // changed and rebuild the whole server stack.
    let per_crate = |name: &str| {
        name.starts_with("CARGO_PKG_")
            || [
                "CARGO_MANIFEST_DIR",
                "CARGO_MANIFEST_PATH",
                "CARGO_CRATE_NAME",
                "CARGO_BIN_NAME",
                "CARGO_PRIMARY_PACKAGE",
                "CARGO_TARGET_TMPDIR",
                "OUT_DIR",
            ]
            .contains(&name)
    };
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(per_crate) {
            command.env_remove(name);
        }
    }
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "cargo test --workspace --no-run failed"
    );
    let messages = String::from_utf8(output.stdout).unwrap();
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|message| message["target"]["name"] == "scimd")
        .filter(|message| message["target"]["kind"] == json!(["bin"]))
        .filter(|message| message["profile"]["test"] == false)
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported no scimd executable")
}

/// Runs an operator command and returns the token of the one JSON line it prints.
fn token_from(scimd: &Path, args: &[&str]) -> String {
    let output = Command::new(scimd)
        .args(args)
        .env_remove("SCIMD_DATABASE")
        .env_remove("SCIMD_CONFIG")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let line: Value = serde_json::from_slice(&output.stdout).unwrap();
    line["token"].as_str().unwrap().to_owned()
}

/// `scimd serve`, killed when dropped.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn follows_the_feed_of_a_running_scimd_and_resumes_after_the_last_entry() {
    let scimd = scimd_binary();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("scimd.db");
    let db = db.to_str().unwrap();
    let scim_token = token_from(&scimd, &["--database", db, "tenant", "create", "acme"]);
    let workplace_token = token_from(
        &scimd,
        &[
            "--database",
            db,
            "token",
            "issue",
            "--tenant",
            "acme",
            "--scope",
            "workplace",
            "--label",
            "front-end",
        ],
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let origin = format!("http://127.0.0.1:{port}");
    let child = Command::new(&scimd)
        .args([
            "--database",
            db,
            "serve",
            "--listen",
            &origin["http://".len()..],
        ])
        .env_remove("SCIMD_DATABASE")
        .env_remove("SCIMD_CONFIG")
        // Warnings and errors only: the request log would bury the test's own output.
        .env("SCIMD_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let _server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while ureq::get(format!("{origin}/healthz")).call().is_err() {
        assert!(Instant::now() < deadline, "scimd did not start serving");
        std::thread::sleep(Duration::from_millis(50));
    }

    let mut follower = Follower::new(
        &format!("{origin}/t/acme/workplace/v1"),
        &workplace_token,
        0,
    );
    assert!(
        follower.poll().unwrap().is_empty(),
        "a new tenant's feed is empty"
    );

    // The identity provider provisions a user.
    let user: Value = ureq::post(format!("{origin}/t/acme/scim/v2/Users"))
        .header("Authorization", &format!("Bearer {scim_token}"))
        .send_json(json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "userName": "alice@example.com", "active": true
        }))
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    let entries = follower.poll().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        (entries[0].subject.as_str(), entries[0].op.as_str()),
        ("User", "created")
    );
    assert_eq!(entries[0].id, user["id"].as_str().unwrap());
    assert_eq!(follower.after, entries[0].seq);

    // A facilities administrator adds a site: the follower sees that entry only.
    ureq::put(format!("{origin}/t/acme/workplace/v1/sites/lon"))
        .header("Authorization", &format!("Bearer {workplace_token}"))
        .send_json(json!({"name": "London"}))
        .unwrap();
    let entries = follower.poll().unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        (
            entries[0].subject.as_str(),
            entries[0].id.as_str(),
            entries[0].op.as_str()
        ),
        ("Site", "lon", "created")
    );
    assert_eq!(entries[0].actor, "front-end");
    assert!(follower.poll().unwrap().is_empty());

    // A follower started again from the saved position reads nothing twice.
    let mut restarted = Follower::new(
        &format!("{origin}/t/acme/workplace/v1"),
        &workplace_token,
        follower.after,
    );
    assert!(restarted.poll().unwrap().is_empty());
}
