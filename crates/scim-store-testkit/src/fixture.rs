//! What every check runs on: the [`Fixture`] a backend supplies, the kit's schemas, the runtime,
//! [`store_tests!`](crate::store_tests) that turns the checks into tests, and the small helpers
//! (fresh tenants, documents, the write context) the checks share.

use scim_store_core::Store;
use scim_store_core::{ResourceLimits, ResourceSchemas, Tenant, WriteContext};
use serde_json::{Value, json};
use std::any::Any;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// A store under test, and whatever must live as long as it (e.g. its temporary directory).
pub struct Fixture {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Dropped after the test.
    pub guard: Box<dyn Any + Send + Sync>,
}

/// The Enterprise User extension (RFC 7643 section 4.3).
pub const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

/// The URN of the test extension schema: attributes marked `uniqueness: server` (RFC 7643
/// section 7) beyond `userName`, to check that any such attribute is enforced.
pub const TEST_EXTENSION: &str = "urn:example:params:scim:schemas:extension:testkit:2.0:User";

/// The limits on one resource the kit runs with: far below the defaults, so that checking
/// them takes small documents; far above what any other check writes.
pub const KIT_LIMITS: ResourceLimits = ResourceLimits {
    max_bytes: 64 * 1024,
    max_values: 100,
};

/// The schemas the kit runs with: the RFC 7643 core (User with the Enterprise extension,
/// Group) plus [`TEST_EXTENSION`] on User, whose `badge` (string, caseExact false) and
/// `seat` (integer) are `uniqueness: server`; with [`KIT_LIMITS`].
pub fn schemas() -> ResourceSchemas {
    let mut registry = scim_schema::SchemaRegistry::new();
    let extension = json!({
        "id": TEST_EXTENSION,
        "name": "Testkit",
        "attributes": [
            {"name": "badge", "type": "string", "caseExact": false, "uniqueness": "server", "multiValued": false},
            {"name": "seat", "type": "integer", "uniqueness": "server", "multiValued": false},
            {"name": "nickname", "type": "string", "caseExact": true, "multiValued": false},
            {"name": "hired", "type": "dateTime", "multiValued": false},
            {"name": "level", "type": "decimal", "multiValued": false},
            {"name": "tags", "type": "string", "multiValued": true}
        ]
    });
    {
        registry
            .add_schema_json(&extension.to_string())
            .expect("the test extension schema is valid");
        registry
            .attach_extension("User", TEST_EXTENSION, false)
            .expect("User exists");
        ResourceSchemas::from_registry(&registry)
            .expect("User and Group exist")
            .with_limits(KIT_LIMITS)
    }
}

/// Runs one kit check on a fresh fixture, on a multi-threaded runtime (so that concurrency
/// checks really race).
pub fn run<M, F, Fut>(make: M, check: F)
where
    M: FnOnce(ResourceSchemas) -> Fixture,
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: Future<Output = ()>,
{
    let fixture = make(schemas());
    kit_runtime().block_on(check(Arc::clone(&fixture.store)));
    drop(fixture);
}

/// The runtime every kit check runs on: multi-threaded, so that concurrency checks really race.
pub(crate) fn kit_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// Generates one `#[test]` per kit check for a backend; `$make` is a
/// `fn(ResourceSchemas) -> Fixture`. With `skip_if = $skip` (a `fn() -> bool`), each test
/// returns at once when `$skip()` is true: for a backend that needs a server which may be
/// absent (`$skip` should say so loudly, or fail when the server is required).
#[macro_export]
macro_rules! store_tests {
    ($make:path) => {
        $crate::store_tests!($make, skip_if = $crate::never_skip);
    };
    ($make:path, skip_if = $skip:path) => {
        $crate::store_tests!(@each $make, $skip;
            tenants_and_names,
            tenant_deletion_removes_everything,
            tokens_authenticate_and_revoke,
            tokens_record_their_last_use,
            create_assigns_id_meta_and_version,
            get_is_scoped_by_tenant_and_kind,
            user_name_is_unique_case_insensitively,
            server_unique_attributes_are_enforced,
            replace_bumps_version_and_keeps_created,
            no_op_replace_keeps_version_and_last_modified,
            expected_versions_are_enforced,
            delete_removes_and_records,
            patch_user_versions_and_no_ops,
            patch_group_members_as_a_delta,
            group_members_are_rows_and_groups_are_derived,
            members_must_exist,
            events_are_ordered_and_only_for_commits,
            import_is_all_or_nothing,
            clear_passwords_are_refused_on_every_write_path,
            concurrent_creates_of_one_user_name_one_wins,
            concurrent_replaces_with_one_expected_version_one_wins,
            resource_limits_hold_on_every_write_path,
            concurrent_patches_of_one_user_lose_nothing,
            tenant_schemas_are_the_tenants_own,
            query_paging_sorting_and_cursors,
            query_pages_stop_at_their_byte_budget,
            query_rejects_bad_cursors_and_filters,
            filters_agree_with_the_evaluator,
            model_based_operation_sequences
        );
    };
    (@each $make:path, $skip:path; $($check:ident),* $(,)?) => {
        $(
            #[test]
            fn $check() {
                if $skip() {
                    return;
                }
                $crate::run($make, $crate::$check);
            }
        )*
    };
}

/// The default of [`store_tests!`](crate::store_tests)' `skip_if`: never skip.
pub fn never_skip() -> bool {
    false
}

static TENANT_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh tenant with a unique name.
pub async fn new_tenant(store: &dyn Store) -> Tenant {
    let n = TENANT_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    store
        .create_tenant(&format!("kit-{n}-{nanos}"))
        .await
        .expect("create a tenant")
}

/// The context the kit writes with.
pub fn ctx() -> WriteContext {
    WriteContext {
        actor: "testkit".into(),
        request_id: Some("req-1".into()),
        ..WriteContext::default()
    }
}

/// A minimal User document.
pub fn user(user_name: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": user_name,
    })
}

/// A Group document with these member ids.
pub fn group(display_name: &str, members: &[&str]) -> Value {
    let members: Vec<Value> = members.iter().map(|id| json!({"value": id})).collect();
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": display_name,
        "members": members,
    })
}
