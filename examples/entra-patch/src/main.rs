//! Applies a real Microsoft Entra ID PATCH (RFC 7644 section 3.5.2, in Entra's dialect) to a
//! User document with scim-patch, read with the lenient dialects scimd uses by default, and
//! prints the result.
//!
//! ```sh
//! cargo run -p example-entra-patch
//! ```
//!
//! The user and the operations are Entra's own, as recorded in `tests/idp/entra-id.json` (from
//! Microsoft's SCIM tutorial, its SCIM Validator and its "Known issues ... SCIM 2.0 protocol
//! compliance" page): capitalised `op`s, a work email addressed through a value filter,
//! a path-less replace whose keys are paths, and the soft delete `"value": "False"`, a string
//! where the schema wants a boolean. Each is one of the dialects listed in
//! `crates/scim-patch/src/dialects.rs`; with `PatchOptions::strict()` the same message is
//! refused with the error the RFC prescribes.

use scim_patch::{PatchError, PatchOptions, PatchOutcome, PatchRequest, apply};
use serde_json::{Value, json};
use std::process::ExitCode;

/// The user as Entra created it (POST /Users), with the id the server gave it.
fn entra_user() -> Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_ab6490ee-1e48-479e-a20b-2d77186b5dd1",
        "active": true,
        "displayName": "Test User",
        "emails": [{"primary": true, "type": "work", "value": "Test_User_fd0ea19b@testuser.com"}],
        "name": {"formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName"}
    })
}

/// Three of Entra's PATCH requests to that user, as one message.
fn entra_patch() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [
            {"op": "Replace", "path": "emails[type eq \"work\"].value", "value": "updatedEmail@microsoft.com"},
            {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
            {"op": "Replace", "value": {
                "displayName": "Updated Display",
                "name.givenName": "updatedGivenName",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Engineering"
            }},
            {"op": "Replace", "path": "active", "value": "False"}
        ]
    })
}

/// Parses `message` and applies it to `user` as a SCIM server would: all operations or none.
fn patch(user: &Value, message: Value, options: &PatchOptions) -> Result<PatchOutcome, PatchError> {
    let request = PatchRequest::from_value(message, options)?;
    apply(user, &scim_schema::core::user(), &request, options)
}

fn main() -> ExitCode {
    // What scimd's server configuration holds unless told otherwise: the lenient dialects.
    match patch(&entra_user(), entra_patch(), &PatchOptions::default()) {
        Ok(outcome) => {
            println!("changed: {}", outcome.changed);
            match serde_json::to_string_pretty(&outcome.resource) {
                Ok(text) => println!("{text}"),
                Err(error) => eprintln!("cannot print the result: {error}"),
            }
            ExitCode::SUCCESS
        }
        // A SCIM server answers 400 with this scimType and detail.
        Err(error) => {
            eprintln!("400 {:?}: {error}", error.scim_type());
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entra_dialect_applies_as_entra_means_it() {
        let outcome = patch(&entra_user(), entra_patch(), &PatchOptions::default()).unwrap();
        assert!(outcome.changed);
        let user = outcome.resource;
        assert_eq!(
            user["active"],
            json!(false),
            "the string \"False\" is a boolean"
        );
        assert_eq!(
            user["emails"],
            json!([{"primary": true, "type": "work", "value": "updatedEmail@microsoft.com"}])
        );
        assert_eq!(user["name"]["familyName"], "updatedFamilyName");
        assert_eq!(user["name"]["givenName"], "updatedGivenName");
        assert_eq!(user["displayName"], "Updated Display");
        assert_eq!(
            user["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
            "Engineering"
        );
        assert_eq!(user["userName"], entra_user()["userName"], "untouched");
    }

    #[test]
    fn the_same_message_is_refused_when_read_strictly() {
        let error = patch(&entra_user(), entra_patch(), &PatchOptions::strict()).unwrap_err();
        assert_eq!(error.scim_type(), scim_schema::ScimType::InvalidSyntax);
        assert_eq!(error.operation(), Some(0), "{error}");
    }

    #[test]
    fn applying_it_again_changes_nothing() {
        let once = patch(&entra_user(), entra_patch(), &PatchOptions::default()).unwrap();
        let twice = patch(&once.resource, entra_patch(), &PatchOptions::default()).unwrap();
        assert!(!twice.changed);
        assert_eq!(twice.resource, once.resource);
    }
}
