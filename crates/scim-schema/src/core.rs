//! The RFC 7643 core: the common attributes (section 3.1), the User (4.1), Group (4.2) and
//! Enterprise User (4.3) schemas, the User and Group resource types (8.6), and the URNs of
//! SCIM's schemas and messages.
//!
//! The definitions are the JSON files under `crates/scim-schema/schemas/`, in the RFC 7643
//! section 7 representation, embedded at compile time and parsed and checked once, so that
//! what `/Schemas` serves is the RFC's own text. Where the RFC contradicts itself, these
//! files follow the normative prose and the RFC's own examples, which is what clients send:
//!
//! - Group `displayName` is `"required": true`: section 4.2 says REQUIRED, the 8.7.1
//!   listing says `false` while its description still says "REQUIRED".
//! - Group `members` has a `display` sub-attribute (immutable, like the others, section
//!   4.2): the RFC's examples (section 8.4) and every major identity provider send it, and
//!   the 8.7.1 listing omits it.
//! - User `addresses` has a `primary` sub-attribute: section 2.4 makes `primary` a default
//!   sub-attribute of multi-valued attributes and the section 8.2 example uses it on an
//!   address; the 8.7.1 listing omits it.
//! - The User resource type's Enterprise User extension is `"required": false` (section 8.6
//!   shows `true` as an example): a server cannot demand it of every identity provider.
//!
//! Otherwise the files are the RFC's listings, quirks included (e.g. `groups.$ref` allows
//! `User` and `Group`).

use crate::attribute::AttributeDef;
use crate::definition;
use crate::registry::SchemaRegistry;
use crate::schema::ResourceSchema;
use serde_json::Value;
use std::sync::{Arc, LazyLock};

/// The core User schema (RFC 7643 section 4.1).
pub const USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The core Group schema (RFC 7643 section 4.2).
pub const GROUP: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The Enterprise User extension (RFC 7643 section 4.3).
pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// The schema of `/Schemas` documents (RFC 7643 section 7).
pub const SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Schema";
/// The schema of `/ResourceTypes` documents (RFC 7643 section 6).
pub const RESOURCE_TYPE: &str = "urn:ietf:params:scim:schemas:core:2.0:ResourceType";
/// The schema of the `/ServiceProviderConfig` document (RFC 7643 section 5).
pub const SERVICE_PROVIDER_CONFIG: &str =
    "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig";
/// The list response message (RFC 7644 section 3.4.2).
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// The PATCH request message (RFC 7644 section 3.5.2).
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// The error response message (RFC 7644 section 3.12).
pub const ERROR: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// The bulk request message (RFC 7644 section 3.7).
pub const BULK_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
/// The bulk response message (RFC 7644 section 3.7).
pub const BULK_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";
/// The search request message, `POST .search` (RFC 7644 section 3.4.3).
pub const SEARCH_REQUEST: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

/// The common attributes, in the section 7 attribute form (RFC 7643 section 3.1).
pub const COMMON_JSON: &str = include_str!("../schemas/common.json");
/// The User schema as served (RFC 7643 sections 4.1 and 8.7.1).
pub const USER_JSON: &str = include_str!("../schemas/user.json");
/// The Group schema as served (RFC 7643 sections 4.2 and 8.7.1).
pub const GROUP_JSON: &str = include_str!("../schemas/group.json");
/// The Enterprise User extension as served (RFC 7643 sections 4.3 and 8.7.1).
pub const ENTERPRISE_USER_JSON: &str = include_str!("../schemas/enterprise_user.json");
/// The User and Group resource types (RFC 7643 section 8.6).
pub const RESOURCE_TYPES_JSON: &str = include_str!("../schemas/resource_types.json");

/// The full enterprise User of RFC 7643 section 8.3, as a server would store and serve it.
pub const EXAMPLE_ENTERPRISE_USER_JSON: &str =
    include_str!("../schemas/examples/enterprise_user.json");

/// The RFC 7643 section 8.3 example (a User with the Enterprise extension, every core attribute
/// set): one realistic document for documentation, tests, fuzzing and benchmarks in every crate.
pub fn example_enterprise_user() -> Value {
    static EXAMPLE: LazyLock<Value> = LazyLock::new(|| {
        serde_json::from_str(EXAMPLE_ENTERPRISE_USER_JSON).unwrap_or_else(|e| {
            // The file is part of the build and a unit test parses it.
            panic!("embedded schemas/examples/enterprise_user.json is invalid: {e}")
        })
    });
    EXAMPLE.clone()
}

static COMMON: LazyLock<Arc<Vec<AttributeDef>>> = LazyLock::new(|| {
    let parsed = serde_json::from_str::<Value>(COMMON_JSON)
        .map_err(|e| e.to_string())
        .and_then(|v| {
            definition::attributes_from_value("common attributes", v).map_err(|e| e.to_string())
        })
        .and_then(|attrs| {
            SchemaRegistry::check_common("common attributes", &attrs)
                .map(|()| attrs)
                .map_err(|e| e.to_string())
        });
    match parsed {
        Ok(attrs) => Arc::new(attrs),
        // The file is part of the build and a unit test loads it: this cannot fail at run time.
        Err(e) => panic!("embedded schemas/common.json is invalid: {e}"),
    }
});

static CORE: LazyLock<SchemaRegistry> = LazyLock::new(|| match build_core() {
    Ok(registry) => registry,
    // The files are part of the build and a unit test loads them: this cannot fail at run time.
    Err(e) => panic!("embedded RFC 7643 core definitions are invalid: {e}"),
});

static USER_SCHEMA: LazyLock<ResourceSchema> = LazyLock::new(|| core_resource_schema("User"));
static GROUP_SCHEMA: LazyLock<ResourceSchema> = LazyLock::new(|| core_resource_schema("Group"));

fn core_resource_schema(name: &str) -> ResourceSchema {
    match CORE.resource_schema(name) {
        Some(schema) => schema.clone(),
        None => panic!("embedded resource_types.json lacks {name}"),
    }
}

fn build_core() -> Result<SchemaRegistry, crate::SchemaError> {
    let mut registry = SchemaRegistry::with_common(common_attributes());
    registry.add_schema_json(USER_JSON)?;
    registry.add_schema_json(GROUP_JSON)?;
    registry.add_schema_json(ENTERPRISE_USER_JSON)?;
    registry.add_resource_type_json(RESOURCE_TYPES_JSON)?;
    Ok(registry)
}

pub(crate) fn core_registry() -> &'static SchemaRegistry {
    &CORE
}

/// The common attributes `id`, `externalId` and `meta` (RFC 7643 section 3.1), shared.
pub fn common_attributes() -> Arc<Vec<AttributeDef>> {
    COMMON.clone()
}

/// The User resource type resolved: common attributes, the User schema and the Enterprise
/// User extension. Cheap: a clone of a view built once.
pub fn user() -> ResourceSchema {
    USER_SCHEMA.clone()
}

/// The Group resource type resolved: common attributes and the Group schema. Cheap.
pub fn group() -> ResourceSchema {
    GROUP_SCHEMA.clone()
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_example_user_is_valid_for_create() {
        let example = example_enterprise_user();
        let validated =
            crate::validate::for_create(&user(), &example, &crate::ValidationOptions::default());
        assert!(validated.is_ok(), "{validated:?}");
        assert_eq!(example["userName"], "bjensen@example.com");
    }

    use super::*;
    use crate::attribute::{AttributeType, Mutability, Returned, Uniqueness};
    use crate::path::AttrPath;

    #[test]
    fn embedded_definitions_load_and_check() {
        let registry = SchemaRegistry::new();
        let ids: Vec<&str> = registry.schemas().map(|s| s.id.as_str()).collect();
        assert_eq!(ids, [USER, GROUP, ENTERPRISE_USER]);
        let names: Vec<&str> = registry.resource_types().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["User", "Group"]);
    }

    #[test]
    fn user_schema_has_every_rfc_attribute_in_order() {
        let user = user();
        let names: Vec<&str> = user
            .core()
            .attributes
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "userName",
                "name",
                "displayName",
                "nickName",
                "profileUrl",
                "title",
                "userType",
                "preferredLanguage",
                "locale",
                "timezone",
                "active",
                "password",
                "emails",
                "phoneNumbers",
                "ims",
                "photos",
                "addresses",
                "groups",
                "entitlements",
                "roles",
                "x509Certificates",
            ]
        );
        let user_name = user.core().attribute("username").unwrap();
        assert!(user_name.required);
        assert_eq!(user_name.uniqueness, Uniqueness::Server);
        let password = user.core().attribute("password").unwrap();
        assert_eq!(password.mutability, Mutability::WriteOnly);
        assert_eq!(password.returned, Returned::Never);
        let groups = user.core().attribute("groups").unwrap();
        assert_eq!(groups.mutability, Mutability::ReadOnly);
        assert!(
            groups
                .sub_attributes
                .iter()
                .all(|s| s.mutability == Mutability::ReadOnly)
        );
        let name = user.core().attribute("name").unwrap();
        let subs: Vec<&str> = name
            .sub_attributes
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(
            subs,
            [
                "formatted",
                "familyName",
                "givenName",
                "middleName",
                "honorificPrefix",
                "honorificSuffix"
            ]
        );
        let cert = user
            .resolve(&AttrPath::with_sub("x509Certificates", "value"))
            .unwrap();
        assert_eq!(cert.target().kind, AttributeType::Binary);
        let ims_type = user.resolve(&AttrPath::with_sub("ims", "type")).unwrap();
        assert_eq!(
            ims_type.target().canonical_values,
            ["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"]
        );
        let photo = user
            .resolve(&AttrPath::with_sub("photos", "value"))
            .unwrap();
        assert_eq!(photo.target().kind, AttributeType::Reference);
        assert_eq!(photo.target().reference_types, ["external"]);
        assert!(
            user.resolve(&AttrPath::with_sub("addresses", "primary"))
                .is_some()
        );
    }

    #[test]
    fn common_attributes_follow_section_3_1() {
        let user = user();
        let id = user.resolve(&AttrPath::simple("id")).unwrap().attribute;
        assert_eq!(id.mutability, Mutability::ReadOnly);
        assert_eq!(id.returned, Returned::Always);
        assert!(id.case_exact);
        assert_eq!(id.uniqueness, Uniqueness::Server);
        let external = user
            .resolve(&AttrPath::simple("externalId"))
            .unwrap()
            .attribute;
        assert!(external.case_exact);
        assert_eq!(external.mutability, Mutability::ReadWrite);
        let meta = user.resolve(&AttrPath::simple("meta")).unwrap().attribute;
        assert_eq!(meta.kind, AttributeType::Complex);
        assert_eq!(meta.mutability, Mutability::ReadOnly);
        let subs: Vec<&str> = meta
            .sub_attributes
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(
            subs,
            [
                "resourceType",
                "created",
                "lastModified",
                "location",
                "version"
            ]
        );
        assert!(
            meta.sub_attributes
                .iter()
                .all(|s| s.mutability == Mutability::ReadOnly)
        );
    }

    #[test]
    fn group_and_enterprise_follow_sections_4_2_and_4_3() {
        let group = group();
        assert_eq!(group.resource_type().endpoint, "/Groups");
        assert_eq!(group.extensions().count(), 0);
        assert!(group.core().attribute("displayName").unwrap().required);
        let members = group.core().attribute("members").unwrap();
        let subs: Vec<&str> = members
            .sub_attributes
            .iter()
            .map(|a| a.name.as_str())
            .collect();
        assert_eq!(subs, ["value", "$ref", "type", "display"]);
        assert!(
            members
                .sub_attributes
                .iter()
                .all(|s| s.mutability == Mutability::Immutable)
        );
        assert_eq!(
            members.sub_attribute("type").unwrap().canonical_values,
            ["User", "Group"]
        );

        let user = user();
        let (ext, required) = user.extensions().next().unwrap();
        assert_eq!(ext.id, ENTERPRISE_USER);
        assert!(!required);
        let names: Vec<&str> = ext.attributes.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "employeeNumber",
                "costCenter",
                "organization",
                "division",
                "department",
                "manager"
            ]
        );
        let manager = ext.attribute("manager").unwrap();
        assert_eq!(
            manager.sub_attribute("displayName").unwrap().mutability,
            Mutability::ReadOnly
        );
        assert_eq!(
            manager.sub_attribute("$ref").unwrap().reference_types,
            ["User"]
        );
    }

    #[test]
    fn core_views_are_shared_not_rebuilt() {
        let a = user();
        let b = user();
        assert!(std::ptr::eq(a.core(), b.core()));
        assert!(std::ptr::eq(a.common(), b.common()));
    }
}
