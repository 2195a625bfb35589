//! The server's settings: protocol limits it advertises and enforces, and the operational
//! limits that keep one client from exhausting it.

use scim_patch::PatchOptions;
use scim_schema::ValidationOptions;
use std::time::Duration;

/// Operational limits, each with a safe default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The largest request body accepted outside `/Bulk`, in bytes (413 beyond; default 1 MiB).
    pub max_body_bytes: usize,
    /// The largest request head (request line and headers) an HTTP/1.1 client may send, and the
    /// largest header list of an HTTP/2 request, in bytes (default 16 KiB; at least 8 KiB).
    pub max_header_bytes: usize,
    /// How long a client may take to send a request head before the connection is closed:
    /// slow clients (slowloris) are cut off (default 10 s).
    pub header_read_timeout: Duration,
    /// How long one request may take, reading its body included, before it is answered 503
    /// (default 30 s).
    pub request_timeout: Duration,
    /// The most connections served at once; further ones wait in the listen backlog until one
    /// closes (default 1024).
    pub max_connections: usize,
    /// How long a graceful shutdown waits for in-flight requests before closing connections
    /// anyway (default 30 s).
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 1024 * 1024,
            max_header_bytes: 16 * 1024,
            header_read_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Everything the service needs to know besides its store.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The public origin clients reach the server at, e.g. `https://scim.example.com` (or with
    /// a path prefix, `https://example.com/provisioning`). `meta.location` and `Location` are
    /// built from it; when `None`, from the request's `Host` (or HTTP/2 `:authority`) and the
    /// scheme of the listener.
    pub public_base_url: Option<String>,
    /// Operational limits.
    pub limits: Limits,
    /// `filter.maxResults` (RFC 7643 section 5): the most resources one page returns; a
    /// larger `count` is clamped to it (RFC 7644 section 3.4.2.4). Default 1000.
    pub max_results: u32,
    /// The page size when a list request gives no `count` (default 100, at most
    /// [`ServerConfig::max_results`]).
    pub default_count: u32,
    /// `bulk.maxOperations` (RFC 7644 section 3.7): default 1000.
    pub bulk_max_operations: u32,
    /// `bulk.maxPayloadSize` in bytes (RFC 7644 section 3.7): default 1 MiB.
    pub bulk_max_payload: u64,
    /// How PATCH requests are interpreted (identity-provider dialects, limits).
    pub patch: PatchOptions,
    /// How resources are validated (unknown attributes, canonical values).
    pub validation: ValidationOptions,
    /// Whether filters naming attributes the schema does not define are refused (400
    /// `invalidFilter`, the default) or match nothing.
    pub strict_filters: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            public_base_url: None,
            limits: Limits::default(),
            max_results: 1000,
            default_count: 100,
            bulk_max_operations: 1000,
            bulk_max_payload: 1024 * 1024,
            patch: PatchOptions::default(),
            validation: ValidationOptions::default(),
            strict_filters: true,
        }
    }
}
