//! PATCH (RFC 7644 section 3.5.2): arbitrary bytes that are a JSON PatchOp message are parsed
//! (by reference and by value, which must agree) and applied to a fixed enterprise user in both
//! dialect modes. Nothing may panic; a success must report `changed` truthfully, leave `id` and
//! `meta` alone and keep the required `userName`.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_patch::{PatchOptions, PatchRequest, apply};
use serde_json::{Value, json};
use std::sync::OnceLock;

fn user() -> &'static Value {
    static USER: OnceLock<Value> = OnceLock::new();
    USER.get_or_init(|| {
        json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
            ],
            "id": "2819c223-7f76-453a-919d-413861904646",
            "externalId": "701984",
            "userName": "bjensen@example.com",
            "name": {"formatted": "Ms. Barbara J Jensen, III", "familyName": "Jensen", "givenName": "Barbara"},
            "displayName": "Babs Jensen",
            "nickName": "Babs",
            "emails": [
                {"value": "bjensen@example.com", "type": "work", "primary": true},
                {"value": "babs@jensen.org", "type": "home"}
            ],
            "addresses": [{"type": "work", "streetAddress": "100 Universal City Plaza", "locality": "Hollywood", "primary": true}],
            "phoneNumbers": [{"value": "555-555-5555", "type": "work"}],
            "active": true,
            "groups": [{"value": "e9e30dba-f08f-4109-8486-d5c6a331660a", "display": "Tour Guides"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "employeeNumber": "701984",
                "costCenter": "4130",
                "department": "Tour Operations",
                "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
            },
            "meta": {"resourceType": "User", "created": "2010-01-23T04:56:22Z", "lastModified": "2011-05-13T04:42:34Z", "version": "W/\"3694e05e9dff591\""}
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(message) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let schema = scim_schema::core::user();
    let resource = user();
    for options in [PatchOptions::default(), PatchOptions::strict()] {
        let parsed = PatchRequest::from_json(&message, &options);
        assert_eq!(parsed, PatchRequest::from_value(message.clone(), &options));
        let Ok(request) = parsed else {
            continue;
        };
        let Ok(outcome) = apply(resource, &schema, &request, &options) else {
            continue;
        };
        assert_eq!(outcome.changed, outcome.resource != *resource);
        assert_eq!(outcome.resource["id"], resource["id"]);
        assert_eq!(outcome.resource["meta"], resource["meta"]);
        assert!(
            outcome
                .resource
                .get("userName")
                .is_some_and(Value::is_string),
            "required userName lost"
        );
    }
});
