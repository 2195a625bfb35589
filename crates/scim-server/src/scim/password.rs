//! `password` (RFC 7643 section 4.1.1): writeOnly, returned never, and stored only as an
//! argon2id hash in the PHC string format, so that a leaked database leaks no password.
//!
//! Where hashing happens, and why there:
//! - **After the request is read the way the store will read it.** A PATCH is parsed first and
//!   its password found by [`scim_patch::secret_values`], which resolves paths and path-less
//!   keys with the same identity-provider dialects as the apply (`" password"`, `["clear"]`,
//!   `[{"value": "clear"}]`, a URN-qualified name); hashing the raw message instead missed
//!   those spellings, and they reached the database in clear text. The store refuses any
//!   `password` that is not an argon2id PHC string all the same, so a missed spelling is a 400,
//!   never a clear password at rest.
//! - **After the request is known to be valid and its target to exist**, and at most one
//!   password per resource operation: hashing costs tens of milliseconds of CPU and 19 MiB, so
//!   a request that will fail anyway must not get it.
//! - **On a blocking thread, one per core at most** ([`Hasher`]), so
//!   that a flood of password writes queues behind the permits instead of taking every core
//!   from the requests that do not hash; never inside the store's writer, where it would stall
//!   every tenant's writes.

use crate::error::ApiError;
use scim_schema::ResourceSchema;
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// The PHC prefix of what this module stores. Every supplied value is hashed, even one that
/// looks like a hash: a client never gets to choose the stored hash.
#[cfg(test)]
const PHC_PREFIX: &str = "$argon2id$";

/// Hashes passwords on blocking threads, a bounded number at a time.
#[derive(Debug)]
pub(crate) struct Hasher {
    permits: Arc<Semaphore>,
}

impl Hasher {
    /// A hasher that runs at most `concurrency` hashes at once (at least one).
    pub(crate) fn new(concurrency: usize) -> Self {
        Hasher {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
        }
    }

    /// Hashes one clear-text password with argon2id, waiting for a permit first. A request
    /// that times out while it waits gives its place up (the future is dropped).
    pub(crate) async fn hash(&self, clear: String) -> Result<String, ApiError> {
        let permit = self.permits.clone().acquire_owned().await.map_err(|_| {
            ApiError::new(
                http::StatusCode::SERVICE_UNAVAILABLE,
                "the server is shutting down",
            )
        })?;
        tokio::task::spawn_blocking(move || {
            let hashed = hash(&clear);
            drop(permit);
            hashed
        })
        .await
        .map_err(|_| {
            ApiError::new(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "password hashing was interrupted",
            )
        })?
    }
}

/// Hashes one clear-text password as the store keeps it ([`scim_store::document::hash_password`]).
fn hash(clear: &str) -> Result<String, ApiError> {
    scim_store::document::hash_password(clear).map_err(|e| match e {
        scim_store::StoreError::Backend { message: cause, .. } => {
            tracing::error!(error = %cause, "password hashing failed");
            ApiError::new(
                http::StatusCode::INTERNAL_SERVER_ERROR,
                "could not hash the password",
            )
        }
        other => ApiError::invalid_value(other.to_string()),
    })
}

/// The clear-text password a validated User document carries, checked: `None` when it has
/// none (or `null`); 400 `invalidValue` when it is not a string or is given twice.
pub(crate) fn password_in_document<'d>(
    schema: &ResourceSchema,
    document: &'d mut Value,
) -> Result<Option<&'d mut Value>, ApiError> {
    let Some(object) = document.as_object_mut() else {
        return Ok(None);
    };
    let mut found = object
        .iter_mut()
        .filter(|(key, _)| scim_store::document::is_password_key(schema, key))
        .map(|(_, value)| value)
        .filter(|value| !value.is_null());
    let Some(first) = found.next() else {
        return Ok(None);
    };
    if found.next().is_some() {
        return Err(ApiError::invalid_value(
            "password: given more than once (attribute names are case-insensitive)",
        ));
    }
    if !first.is_string() {
        return Err(ApiError::invalid_value(format!(
            "password: must be a string (RFC 7643 section 4.1.1), not {}",
            scim_schema::json_kind(first)
        )));
    }
    Ok(Some(first))
}

/// The one password value a parsed PATCH request writes, after the dialects' coercion: `None`
/// when it writes none. 400 `invalidValue` for a second one, for a value that is not a string
/// (or `null`, which unassigns it), and for a `remove` that carries a value (comparing a value
/// with the stored password would be an oracle).
pub(crate) fn password_in_patch<'r>(
    schema: &ResourceSchema,
    request: &'r mut scim_patch::PatchRequest,
    options: &scim_patch::PatchOptions,
) -> Result<Option<&'r mut Value>, ApiError> {
    let mut found: Option<&'r mut Value> = None;
    for secret in scim_patch::secret_values(request, schema, options)? {
        let is_password = secret.extension.is_none() && secret.attribute.name == "password";
        if !is_password {
            continue;
        }
        let at = secret.at.to_string();
        if secret.op == scim_patch::Op::Remove {
            if secret.value.is_null() {
                continue;
            }
            return Err(ApiError::invalid_value(format!(
                "{at}: a remove of password takes no value"
            )));
        }
        if secret.value.is_null() {
            continue;
        }
        if !secret.value.is_string() {
            return Err(ApiError::invalid_value(format!(
                "{at}: password must be a string (RFC 7643 section 4.1.1), not {}",
                scim_schema::json_kind(secret.value)
            )));
        }
        if found.is_some() {
            return Err(ApiError::invalid_value(format!(
                "{at}: a PATCH request may set password once"
            )));
        }
        found = Some(secret.value);
    }
    Ok(found)
}

/// A syntactically valid argon2id hash that no password hashes to (its hash part is all
/// zeros): written in place of a password while a request is checked, before it is worth
/// hashing the real one.
pub(crate) const PLACEHOLDER: &str = "$argon2id$v=19$m=19456,t=2,p=1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    use serde_json::json;

    #[tokio::test]
    async fn hashes_verify_and_are_salted() {
        let hasher = Hasher::new(2);
        let first = hasher.hash("t1meMa$heen".into()).await.unwrap();
        let second = hasher.hash("t1meMa$heen".into()).await.unwrap();
        assert!(first.starts_with(PHC_PREFIX));
        assert_ne!(first, second);
        let parsed = PasswordHash::new(&first).unwrap();
        assert!(
            argon2::Argon2::default()
                .verify_password(b"t1meMa$heen", &parsed)
                .is_ok()
        );
    }

    #[test]
    fn the_placeholder_is_a_phc_string() {
        assert!(PasswordHash::new(PLACEHOLDER).is_ok());
    }

    #[test]
    fn patch_passwords_are_found_in_every_spelling() {
        let schema = scim_schema::core::user();
        let options = scim_patch::PatchOptions::lenient();
        for operations in [
            json!([{"op": "replace", "value": {" password": "clear"}}]),
            json!([{"op": "add", "path": "password", "value": ["clear"]}]),
            json!([{"op": "add", "value": {"password": ["clear"]}}]),
        ] {
            let message = json!({"schemas": [scim_patch::PATCH_OP_URN], "Operations": operations});
            let mut request = scim_patch::PatchRequest::from_json(&message, &options).unwrap();
            let found = password_in_patch(&schema, &mut request, &options).unwrap();
            assert_eq!(found.map(|v| v.clone()), Some(json!("clear")), "{message}");
        }
        let twice = json!({"schemas": [scim_patch::PATCH_OP_URN], "Operations": [
            {"op": "replace", "path": "password", "value": "a"},
            {"op": "replace", "value": {"password": "b"}},
        ]});
        let mut request = scim_patch::PatchRequest::from_json(&twice, &options).unwrap();
        assert!(password_in_patch(&schema, &mut request, &options).is_err());
        let not_a_string = json!({"schemas": [scim_patch::PATCH_OP_URN], "Operations": [
            {"op": "replace", "path": "password", "value": ["a", "b"]},
        ]});
        let mut request = scim_patch::PatchRequest::from_json(&not_a_string, &options).unwrap();
        assert!(password_in_patch(&schema, &mut request, &options).is_err());
    }
}
