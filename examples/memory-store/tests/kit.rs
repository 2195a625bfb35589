//! The directory kit, run against the in-memory store: every check of `store_tests!`.

use example_memory_store::MemoryStore;
use scim_store_core::ResourceSchemas;
use scim_store_testkit::Fixture;
use std::sync::Arc;

/// A fresh store per check; nothing on disk, so nothing to keep alive.
fn memory(schemas: ResourceSchemas) -> Fixture {
    Fixture {
        store: Arc::new(MemoryStore::new(schemas).expect("a cursor key from the OS RNG")),
        guard: Box::new(()),
    }
}

scim_store_testkit::store_tests!(memory);
