//! contrib/scimd.toml documents every configuration key: scimd starts with it, and it names
//! (set, or commented out where there is no default) every key the server's `FileConfig`
//! knows, so a new key cannot be added without it.

// Test support functions below: a failure there is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

// The server's own definition of the file, so that the list of keys cannot drift from it.
#[allow(dead_code)]
#[path = "../src/settings.rs"]
mod settings;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

mod support;

use support::SCIMD;

fn contrib_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../contrib/scimd.toml")
}

/// Every key `FileConfig` knows, dotted: a default config serializes each field, unset ones as
/// null, so the serde derive that reads the file also lists its keys.
fn known_keys() -> BTreeSet<String> {
    fn walk(value: &serde_json::Value, prefix: &str, keys: &mut BTreeSet<String>) {
        for (name, value) in value.as_object().unwrap() {
            let key = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}.{name}")
            };
            if value.is_object() {
                walk(value, &key, keys);
            } else {
                keys.insert(key);
            }
        }
    }
    let mut keys = BTreeSet::new();
    walk(
        &serde_json::to_value(settings::FileConfig::default()).unwrap(),
        "",
        &mut keys,
    );
    keys
}

/// The keys the file names: set (`key = value`) or commented out (`# key = value`), each
/// under the `[section]` it follows.
fn documented_keys(text: &str) -> BTreeSet<String> {
    let mut section = String::new();
    let mut keys = BTreeSet::new();
    for line in text.lines() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let line = line.strip_prefix('#').map_or(line, str::trim_start);
        let Some((key, _)) = line.split_once(" = ") else {
            continue;
        };
        if key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            keys.insert(if section.is_empty() {
                key.to_owned()
            } else {
                format!("{section}.{key}")
            });
        }
    }
    keys
}

#[test]
fn the_example_file_names_every_key_the_server_knows() {
    let text = std::fs::read_to_string(contrib_file()).unwrap();
    let known = known_keys();
    assert!(known.contains("limits.max_body_bytes") && known.contains("database"));
    let documented = documented_keys(&text);
    let missing: Vec<_> = known.difference(&documented).collect();
    assert!(missing.is_empty(), "contrib/scimd.toml lacks {missing:?}");
    let unknown: Vec<_> = documented.difference(&known).collect();
    assert!(
        unknown.is_empty(),
        "contrib/scimd.toml names unknown keys {unknown:?}"
    );
    // What is set parses as the server parses it (unknown keys are refused there).
    settings::load_file(Some(&contrib_file())).unwrap();
}

#[test]
fn scimd_starts_with_the_example_file() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("contrib.db");
    let listen = format!("127.0.0.1:{}", support::free_port());
    let mut child = Command::new(SCIMD)
        .args(["--config", contrib_file().to_str().unwrap()])
        .args([
            "--database",
            db.to_str().unwrap(),
            "serve",
            "--listen",
            &listen,
        ])
        .env_remove("SCIMD_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut up = false;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("scimd exited with the example file: {status}");
        }
        if std::net::TcpStream::connect(&listen).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(up, "scimd did not listen on {listen} within 20 s");
}
