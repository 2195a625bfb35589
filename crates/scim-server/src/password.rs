//! `password` (RFC 7643 section 4.1.1): writeOnly, returned never, and stored only as an
//! argon2id hash in the PHC string format, so that a leaked database leaks no password.
//!
//! Hashing is deliberately slow (tens of milliseconds), so it runs on a blocking thread.

use crate::error::ApiError;
use argon2::password_hash::{PasswordHasher, SaltString};
use serde_json::{Map, Value};

/// The PHC prefix of what this module stores. Every supplied value is hashed, even one that
/// looks like a hash: a client never gets to choose the stored hash.
#[cfg(test)]
const PHC_PREFIX: &str = "$argon2id$";

/// Hashes one clear-text password with argon2id (default parameters: 19 MiB, 2 passes).
pub fn hash(clear: &str) -> Result<String, ApiError> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| {
        tracing::error!(error = %e, "OS RNG failed");
        ApiError::new(
            http::StatusCode::INTERNAL_SERVER_ERROR,
            "could not hash the password",
        )
    })?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| {
        ApiError::new(
            http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("password salt: {e}"),
        )
    })?;
    argon2::Argon2::default()
        .hash_password(clear.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::invalid_value(format!("password: cannot be hashed: {e}")))
}

/// Hashes every clear-text password in `values` on a blocking thread.
async fn hash_all(values: Vec<String>) -> Result<Vec<String>, ApiError> {
    tokio::task::spawn_blocking(move || values.iter().map(|v| hash(v)).collect())
        .await
        .map_err(|_| {
            ApiError::new(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "password hashing was interrupted",
            )
        })?
}

fn is_password_key(key: &str) -> bool {
    key.eq_ignore_ascii_case("password")
        || key.rsplit_once(':').is_some_and(|(urn, name)| {
            urn.eq_ignore_ascii_case(scim_schema::core::USER)
                && name.eq_ignore_ascii_case("password")
        })
}

/// Replaces a clear-text top-level `password` of a User document by its hash.
pub async fn hash_in_document(document: &mut Value) -> Result<(), ApiError> {
    let Some(object) = document.as_object_mut() else {
        return Ok(());
    };
    let keys: Vec<String> = object
        .keys()
        .filter(|k| is_password_key(k))
        .cloned()
        .collect();
    for key in keys {
        if let Some(Value::String(clear)) = object.get(&key) {
            let hashed = hash_all(vec![clear.clone()]).await?;
            if let Some(h) = hashed.into_iter().next() {
                object.insert(key, Value::String(h));
            }
        }
    }
    Ok(())
}

/// Replaces the clear-text passwords of a PatchOp message (RFC 7644 section 3.5.2) by their
/// hashes before the message is parsed and applied: an operation whose `path` is `password`,
/// or a path-less operation whose `value` carries `password`.
pub async fn hash_in_patch(message: &mut Value) -> Result<(), ApiError> {
    let Some(operations) = message.as_object_mut().and_then(find_operations) else {
        return Ok(());
    };
    for operation in operations.iter_mut() {
        let Some(op) = operation.as_object_mut() else {
            continue;
        };
        let path = op
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("path"))
            .and_then(|(_, v)| v.as_str())
            .map(str::to_owned);
        let Some(value_key) = op.keys().find(|k| k.eq_ignore_ascii_case("value")).cloned() else {
            continue;
        };
        match path {
            Some(path) if is_password_key(path.trim()) => {
                if let Some(Value::String(clear)) = op.get(&value_key) {
                    let hashed = hash_all(vec![clear.clone()]).await?;
                    if let Some(h) = hashed.into_iter().next() {
                        op.insert(value_key, Value::String(h));
                    }
                }
            }
            None => {
                if let Some(value) = op.get_mut(&value_key) {
                    hash_in_document(value).await?;
                }
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn find_operations(message: &mut Map<String, Value>) -> Option<&mut Vec<Value>> {
    message
        .iter_mut()
        .find(|(k, _)| k.eq_ignore_ascii_case("Operations"))
        .and_then(|(_, v)| v.as_array_mut())
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    use serde_json::json;

    #[tokio::test]
    async fn patch_passwords_are_hashed_and_verifiable() {
        let mut message = json!({
            "schemas": [scim_patch::PATCH_OP_URN],
            "Operations": [
                {"op": "replace", "path": "password", "value": "t1meMa$heen"},
                {"op": "replace", "value": {"PASSWORD": "other", "active": true}},
                {"op": "replace", "path": "displayName", "value": "password"},
            ]
        });
        hash_in_patch(&mut message).await.unwrap();
        let first = message["Operations"][0]["value"].as_str().unwrap();
        assert!(first.starts_with(PHC_PREFIX));
        let parsed = PasswordHash::new(first).unwrap();
        assert!(
            argon2::Argon2::default()
                .verify_password(b"t1meMa$heen", &parsed)
                .is_ok()
        );
        assert!(
            message["Operations"][1]["value"]["PASSWORD"]
                .as_str()
                .unwrap()
                .starts_with(PHC_PREFIX)
        );
        assert_eq!(message["Operations"][2]["value"], "password");
    }
}
