//! Runs every case of the IdP dialect fixtures (copied from the research notes into
//! tests/dialects/): the lenient engine must turn `before` into exactly `after`; the strict engine
//! must either agree (RFC behaviour) or refuse the request, never produce something else. Cases of
//! RFC behaviour must succeed in strict mode too.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a panic is a failure report"
)]

mod common;

use scim_patch::{PatchOptions, PatchRequest, apply};
use serde_json::Value;
use std::path::Path;

/// Quirk ids that are plain RFC 7644 behaviour: strict mode must give the same result.
const RFC_BEHAVIOUR: &[&str] = &[
    "rfc-baseline",
    "path-case-insensitive",
    "null-value-removes",
    "pathless-add",
    "pathless-extension-object",
    "pathless-partial-complex-merge",
    "primary",
    "okta-pathless-replace-active",
    "okta-replace-members-empty",
    "okta-group-batch",
    "entra-add-replaces-single-valued",
    "entra-urn-path",
    "entra-add-members-array",
    "entra-roles-json-string",
    "operations-key-case",
];

fn cases() -> Vec<(String, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dialects");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut out = Vec::new();
    for file in files
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "json"))
    {
        let doc: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        for case in doc["cases"].as_array().unwrap() {
            out.push((
                format!("{stem}: {}", case["name"].as_str().unwrap()),
                case.clone(),
            ));
        }
    }
    out
}

/// The message with its incidental message-level dialects removed (ops in lower case, `schemas`
/// present), so that the strict engine judges the semantics the case is about.
fn rfc_message(message: &Value) -> Value {
    let mut message = message.clone();
    let object = message.as_object_mut().unwrap();
    object.insert(
        "schemas".into(),
        serde_json::json!([scim_patch::PATCH_OP_URN]),
    );
    for (key, operations) in object
        .iter_mut()
        .filter(|(k, _)| k.eq_ignore_ascii_case("operations"))
    {
        let _ = key;
        for op in operations.as_array_mut().unwrap() {
            let lower = op["op"].as_str().unwrap().to_ascii_lowercase();
            op["op"] = Value::String(lower);
        }
    }
    message
}

fn schema_for(case: &Value) -> scim_schema::ResourceSchema {
    match case["resource_type"].as_str() {
        Some("Group") => common::group_schema(),
        _ => common::user_schema(),
    }
}

#[test]
fn lenient_engine_produces_every_fixture_after() {
    let cases = cases();
    assert!(cases.len() >= 50, "fixtures missing: {}", cases.len());
    let mut failures = Vec::new();
    for (name, case) in &cases {
        let options = PatchOptions::default();
        let result = PatchRequest::from_json(&case["patch"], &options)
            .and_then(|r| apply(&case["before"], &schema_for(case), &r, &options));
        match result {
            Ok(outcome) => {
                if outcome.resource != case["after"] {
                    failures.push(format!(
                        "{name}\n  expected {}\n  got      {}",
                        case["after"], outcome.resource
                    ));
                } else if outcome.changed != (case["before"] != case["after"]) {
                    failures.push(format!("{name}: changed = {} is wrong", outcome.changed));
                }
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn strict_engine_agrees_or_refuses_and_never_diverges() {
    let mut failures = Vec::new();
    for (name, case) in &cases() {
        let options = PatchOptions::strict();
        let quirk = case["quirk"].as_str().unwrap_or_default();
        let message = if RFC_BEHAVIOUR.contains(&quirk) {
            rfc_message(&case["patch"])
        } else {
            case["patch"].clone()
        };
        let result = PatchRequest::from_json(&message, &options)
            .and_then(|r| apply(&case["before"], &schema_for(case), &r, &options));
        match result {
            Ok(outcome) if outcome.resource != case["after"] => {
                failures.push(format!("{name}: strict mode produced {}", outcome.resource));
            }
            // This case is about name case but also creates the element its filter does not
            // match: that part is the create-on-no-match dialect, so strict mode's noTarget is right.
            Err(e)
                if e.scim_type() == scim_schema::ScimType::NoTarget
                    && name.contains("emails[type eq \"other\"].Value") => {}
            Err(e) if RFC_BEHAVIOUR.contains(&quirk) => {
                failures.push(format!("{name}: RFC behaviour refused in strict mode: {e}"));
            }
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
