//! Identity-provider compatibility suites (issue 6): the provisioning conversations that
//! Microsoft Entra ID, Okta, Google Workspace, OneLogin and JumpCloud hold with a SCIM server,
//! and the attribute mappings workplace products configure in Entra ID, written as data under
//! `tests/idp/` at the repository root and replayed here against the real server.
//!
//! A suite file is `{"idp", "sources", "notes"?, "steps": [...]}`. Each step is
//! `{"name", "request": {"method", "path", "headers"?, "body"?}, "expect": {"status",
//! "json"?, "absent"?, "body_contains"?, "save"?}}`:
//! - `path` is relative to the tenant's SCIM base (`/t/{tenant}/scim/v2`) and written readably;
//!   characters a URI cannot carry (spaces, quotes) are percent-encoded here, as the IdPs do.
//! - `${var}` is replaced in paths, headers, bodies and expectations by a value saved earlier;
//!   a string that is exactly `"${var}"` becomes the saved JSON value itself.
//! - `json` is a subset: every member given must be in the response with a matching value;
//!   arrays match when they have the same length and each expected element matches a distinct
//!   actual element, in any order (member lists are sets, RFC 7643 section 2.4).
//! - `absent` lists JSON pointers that must not resolve (e.g. `/members` after
//!   `excludedAttributes=members`).
//! - `save` maps variable names to JSON pointers into the response body.
//!
//! A failure names the suite, the step and what differed, with the full response.

// Test code: a failure here is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::TestServer;
use http::Method;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::PathBuf;

/// Where the suites live: `tests/idp/` at the repository root.
fn suite_path(file: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/idp")
        .join(file)
}

/// Percent-encodes what may not appear in a URI query as written in a suite (RFC 3986 section
/// 2.1), leaving the query's own delimiters and any existing escapes alone.
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        match byte {
            b' ' => out.push_str("%20"),
            b'"' => out.push_str("%22"),
            b'<' => out.push_str("%3C"),
            b'>' => out.push_str("%3E"),
            b'[' => out.push_str("%5B"),
            b']' => out.push_str("%5D"),
            b'{' => out.push_str("%7B"),
            b'}' => out.push_str("%7D"),
            b'|' => out.push_str("%7C"),
            b'\\' => out.push_str("%5C"),
            b'^' => out.push_str("%5E"),
            b'`' => out.push_str("%60"),
            0x21..=0x7e => out.push(byte as char),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// Replaces `${var}` in a string by the saved values (strings as they are, other JSON as text).
fn substitute_text(text: &str, vars: &HashMap<String, Value>, step: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .unwrap_or_else(|| panic!("step {step:?}: unterminated ${{ in {text:?}"));
        let name = &after[..end];
        let value = vars
            .get(name)
            .unwrap_or_else(|| panic!("step {step:?}: variable {name:?} was never saved"));
        match value {
            Value::String(s) => out.push_str(s),
            other => out.push_str(&other.to_string()),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Replaces variables throughout a JSON value; `"${var}"` alone becomes the saved value.
fn substitute(value: &Value, vars: &HashMap<String, Value>, step: &str) -> Value {
    match value {
        Value::String(s) => {
            if let Some(name) = s.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
                if !name.contains("${") && !name.contains('}') {
                    return vars.get(name).cloned().unwrap_or_else(|| {
                        panic!("step {step:?}: variable {name:?} was never saved")
                    });
                }
            }
            Value::String(substitute_text(s, vars, step))
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| substitute(v, vars, step)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (substitute_text(k, vars, step), substitute(v, vars, step)))
                .collect::<Map<_, _>>(),
        ),
        other => other.clone(),
    }
}

/// Whether `actual` contains `expected` (see the module documentation); on a mismatch, the
/// JSON pointer where it is and what was found.
fn json_subset(expected: &Value, actual: &Value, at: &str) -> Result<(), String> {
    match (expected, actual) {
        (Value::Object(want), Value::Object(have)) => {
            for (key, value) in want {
                let here = format!("{at}/{key}");
                let found = have
                    .get(key)
                    .ok_or_else(|| format!("{here}: missing (expected {value})"))?;
                json_subset(value, found, &here)?;
            }
            Ok(())
        }
        (Value::Array(want), Value::Array(have)) => {
            if want.len() != have.len() {
                return Err(format!(
                    "{at}: expected {} elements, found {}: {actual}",
                    want.len(),
                    have.len()
                ));
            }
            let mut used = vec![false; have.len()];
            for (i, item) in want.iter().enumerate() {
                let slot = have
                    .iter()
                    .enumerate()
                    .position(|(j, candidate)| !used[j] && json_subset(item, candidate, "").is_ok())
                    .ok_or_else(|| format!("{at}/{i}: no element matches {item} in {actual}"))?;
                used[slot] = true;
            }
            Ok(())
        }
        (want, have) if want == have => Ok(()),
        (want, have) => Err(format!("{at}: expected {want}, found {have}")),
    }
}

/// Replays one suite file against a fresh server and tenant.
async fn run_suite(file: &str) {
    let path = suite_path(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let suite: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
    let idp = suite["idp"].as_str().expect("suite.idp");
    assert!(
        suite["sources"].as_array().is_some_and(|s| !s.is_empty()),
        "{file}: a suite names its sources"
    );
    let steps = suite["steps"].as_array().expect("suite.steps");
    assert!(!steps.is_empty(), "{file}: no steps");

    let mut server = TestServer::start().await;
    let client = server.client.clone();
    let mut vars: HashMap<String, Value> = HashMap::new();

    for (index, step) in steps.iter().enumerate() {
        let name = format!(
            "{idp} step {} {:?}",
            index + 1,
            step["name"].as_str().expect("step.name")
        );
        let request = &step["request"];
        let expect = substitute(&step["expect"], &vars, &name);
        let method = Method::from_bytes(
            request["method"]
                .as_str()
                .expect("request.method")
                .as_bytes(),
        )
        .expect("an HTTP method");
        let target = encode_path(&substitute_text(
            request["path"].as_str().expect("request.path"),
            &vars,
            &name,
        ));
        let body = request
            .get("body")
            .map(|b| serde_json::to_vec(&substitute(b, &vars, &name)).unwrap());

        let auth = format!("Bearer {}", client.token);
        let mut headers: Vec<(String, String)> = vec![("authorization".into(), auth)];
        let custom: Vec<(String, String)> = request
            .get("headers")
            .and_then(Value::as_object)
            .map(|h| {
                h.iter()
                    .map(|(k, v)| {
                        (
                            k.to_ascii_lowercase(),
                            substitute_text(v.as_str().expect("header value"), &vars, &name),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        if body.is_some() && !custom.iter().any(|(k, _)| k == "content-type") {
            headers.push(("content-type".into(), "application/scim+json".into()));
        }
        headers.extend(custom);
        let header_refs: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let reply = client
            .raw(method.clone(), &target, &header_refs, body)
            .await;

        let shown = String::from_utf8_lossy(&reply.body).into_owned();
        let context = format!(
            "{name}: {method} {target}\nresponse {}: {shown}",
            reply.status
        );
        let status = expect["status"].as_u64().expect("expect.status");
        assert_eq!(u64::from(reply.status), status, "{context}");
        if let Some(needle) = expect.get("body_contains").and_then(Value::as_str) {
            assert!(shown.contains(needle), "{context}\nbody lacks {needle:?}");
        }
        let needs_json = ["json", "absent", "save"]
            .iter()
            .any(|k| expect.get(*k).is_some());
        if !needs_json {
            continue;
        }
        let body: Value = serde_json::from_slice(&reply.body)
            .unwrap_or_else(|e| panic!("{context}\nnot JSON: {e}"));
        if let Some(want) = expect.get("json") {
            if let Err(diff) = json_subset(want, &body, "") {
                panic!("{context}\nmismatch at {diff}");
            }
        }
        for pointer in expect
            .get("absent")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let pointer = pointer.as_str().expect("absent: JSON pointers");
            assert!(
                body.pointer(pointer).is_none(),
                "{context}\n{pointer} should be absent"
            );
        }
        if let Some(save) = expect.get("save").and_then(Value::as_object) {
            for (var, pointer) in save {
                let pointer = pointer.as_str().expect("save: JSON pointers");
                let value = body
                    .pointer(pointer)
                    .unwrap_or_else(|| panic!("{context}\nnothing at {pointer} to save as {var}"));
                vars.insert(var.clone(), value.clone());
            }
        }
    }
    server.stop().await;
}

#[test]
fn encode_path_escapes_filters_only() {
    assert_eq!(
        encode_path("/Users?filter=userName eq \"a b\"&count=1"),
        "/Users?filter=userName%20eq%20%22a%20b%22&count=1"
    );
    assert_eq!(encode_path("/Users/%41"), "/Users/%41");
}

#[test]
fn json_subset_treats_arrays_as_sets_of_the_same_size() {
    let actual = serde_json::json!({"a": [{"v": 1, "d": "x"}, {"v": 2}], "b": true});
    assert!(json_subset(&serde_json::json!({"a": [{"v": 2}, {"v": 1}]}), &actual, "").is_ok());
    assert!(json_subset(&serde_json::json!({"a": [{"v": 2}]}), &actual, "").is_err());
    assert!(json_subset(&serde_json::json!({"b": false}), &actual, "").is_err());
    assert!(json_subset(&serde_json::json!({"c": 1}), &actual, "").is_err());
}

#[tokio::test]
async fn microsoft_entra_id() {
    run_suite("entra-id.json").await;
}

#[tokio::test]
async fn okta() {
    run_suite("okta.json").await;
}

#[tokio::test]
async fn google_workspace() {
    run_suite("google-workspace.json").await;
}

#[tokio::test]
async fn onelogin() {
    run_suite("onelogin.json").await;
}

#[tokio::test]
async fn jumpcloud() {
    run_suite("jumpcloud.json").await;
}

#[tokio::test]
async fn entra_id_workplace_attribute_mappings() {
    run_suite("workplace-mappings.json").await;
}
