//! Shared fixtures: realistic User (with the Enterprise extension) and Group documents as a store
//! would hold them, and helpers to run PatchOp messages.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "shared test helpers"
)]

use scim_patch::{PatchError, PatchOptions, PatchOutcome, PatchRequest, apply};
use scim_schema::ResourceSchema;
use serde_json::{Value, json};

pub const BJENSEN: &str = "2819c223-7f76-453a-919d-413861904646";
pub const JSMITH: &str = "08e1d05d-121c-4561-8b96-473d93df9210";
pub const GROUP_ID: &str = "acbf3ae7-8463-4692-b4fd-9b4da3f908ce";
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The full enterprise user of RFC 7643 section 8.3, as stored (password omitted).
pub fn enterprise_user() -> Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ],
        "id": BJENSEN,
        "externalId": "701984",
        "userName": "bjensen@example.com",
        "name": {
            "formatted": "Ms. Barbara J Jensen, III",
            "familyName": "Jensen",
            "givenName": "Barbara",
            "middleName": "Jane",
            "honorificPrefix": "Ms.",
            "honorificSuffix": "III"
        },
        "displayName": "Babs Jensen",
        "nickName": "Babs",
        "profileUrl": "https://login.example.com/bjensen",
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "addresses": [
            {
                "type": "work",
                "streetAddress": "100 Universal City Plaza",
                "locality": "Hollywood",
                "region": "CA",
                "postalCode": "91608",
                "country": "USA",
                "formatted": "100 Universal City Plaza\nHollywood, CA 91608 USA",
                "primary": true
            },
            {
                "type": "home",
                "streetAddress": "456 Hollywood Blvd",
                "locality": "Hollywood",
                "region": "CA",
                "postalCode": "91608",
                "country": "USA",
                "formatted": "456 Hollywood Blvd\nHollywood, CA 91608 USA"
            }
        ],
        "phoneNumbers": [
            {"value": "555-555-5555", "type": "work"},
            {"value": "555-555-4444", "type": "mobile"}
        ],
        "ims": [{"value": "someaimhandle", "type": "aim"}],
        "photos": [
            {"value": "https://photos.example.com/profilephoto/72930000000Ccne/F", "type": "photo"},
            {"value": "https://photos.example.com/profilephoto/72930000000Ccne/T", "type": "thumbnail"}
        ],
        "userType": "Employee",
        "title": "Tour Guide",
        "preferredLanguage": "en-US",
        "locale": "en-US",
        "timezone": "America/Los_Angeles",
        "active": true,
        "groups": [
            {
                "value": "e9e30dba-f08f-4109-8486-d5c6a331660a",
                "$ref": "https://example.com/v2/Groups/e9e30dba-f08f-4109-8486-d5c6a331660a",
                "display": "Tour Guides"
            }
        ],
        "x509Certificates": [{"value": "MIIDQzCCAqygAwIBAgICEAAwDQYJKoZIhvcNAQEFBQAwTjELMAkGA1UEBhMCVVMx"}],
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "701984",
            "costCenter": "4130",
            "organization": "Universal Studios",
            "division": "Theme Park",
            "department": "Tour Operations",
            "manager": {
                "value": "26118915-6090-4610-87e4-49d8ca9f808d",
                "$ref": "../Users/26118915-6090-4610-87e4-49d8ca9f808d",
                "displayName": "John Smith"
            }
        },
        "meta": {
            "resourceType": "User",
            "created": "2010-01-23T04:56:22Z",
            "lastModified": "2011-05-13T04:42:34Z",
            "version": "W/\"3694e05e9dff591\"",
            "location": "https://example.com/v2/Users/2819c223-7f76-453a-919d-413861904646"
        }
    })
}

/// The group of RFC 7643 section 8.4, as stored.
pub fn tour_guides() -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "id": GROUP_ID,
        "displayName": "Tour Guides",
        "members": [
            {
                "value": BJENSEN,
                "$ref": format!("https://example.com/v2/Users/{BJENSEN}"),
                "type": "User",
                "display": "Babs Jensen"
            },
            {
                "value": "902c246b-6245-4190-8e05-00816be7344a",
                "$ref": "https://example.com/v2/Users/902c246b-6245-4190-8e05-00816be7344a",
                "type": "User",
                "display": "Mandy Pepperidge"
            }
        ],
        "meta": {
            "resourceType": "Group",
            "created": "2010-01-23T04:56:22Z",
            "lastModified": "2011-05-13T04:42:34Z",
            "version": "W/\"3694e05e9dff592\"",
            "location": format!("https://example.com/v2/Groups/{GROUP_ID}")
        }
    })
}

pub fn user_schema() -> ResourceSchema {
    scim_schema::core::user()
}

pub fn group_schema() -> ResourceSchema {
    scim_schema::core::group()
}

/// Parses and applies a PatchOp message.
pub fn run(
    resource: &Value,
    schema: &ResourceSchema,
    message: &Value,
    options: &PatchOptions,
) -> Result<PatchOutcome, PatchError> {
    let request = PatchRequest::from_json(message, options)?;
    apply(resource, schema, &request, options)
}

/// Wraps operations in a PatchOp message.
pub fn patch(operations: Value) -> Value {
    json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations})
}

/// Applies operations with the default (lenient) options, expecting success.
pub fn ok(resource: &Value, schema: &ResourceSchema, operations: Value) -> PatchOutcome {
    run(
        resource,
        schema,
        &patch(operations),
        &PatchOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Applies operations expecting an error.
pub fn err(
    resource: &Value,
    schema: &ResourceSchema,
    operations: Value,
    options: &PatchOptions,
) -> PatchError {
    match run(resource, schema, &patch(operations), options) {
        Ok(outcome) => panic!("expected an error, got {}", outcome.resource),
        Err(e) => e,
    }
}
