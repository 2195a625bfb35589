//! The server's settings: protocol limits it advertises and enforces, and the operational
//! limits that keep one client from exhausting it.

use crate::listener::connections::IpNet;
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
    /// How long a client may take to send a request head before the connection is closed
    /// (default 10 s). A new connection gets this long from its accept to its first complete
    /// request head, TLS handshake and HTTP/2 preface included, so a client that connects and
    /// sends nothing (or half a TLS handshake, or only the HTTP/2 preface) gives its slot back.
    /// HTTP/1.1 connections also get this long for each later request head, counted from when
    /// the connection starts waiting for it: in effect an HTTP/1.1 keep-alive connection is
    /// closed after this long without a request, whatever [`Limits::idle_timeout`] says.
    /// The same duration bounds how long an HTTP/2 client may take to answer the server's PING
    /// (sent every 30 s of silence) and to acknowledge a graceful close.
    pub header_read_timeout: Duration,
    /// How long a connection may stay open without an open request, once it has sent one
    /// (default 60 s). A request is open from its complete head until hyper has taken its
    /// response body; PINGs, SETTINGS and WINDOW_UPDATE frames do not count, so an HTTP/2
    /// client cannot keep an idle connection (and its slot) forever by answering or sending
    /// PINGs. It is then closed gracefully (HTTP/2: GOAWAY). A minute keeps the connection of
    /// an identity provider across the pauses of a sync burst, yet returns an abandoned
    /// connection's slot within a minute; behind a load balancer that keeps idle HTTP/2
    /// connections longer, raise it above the balancer's idle timeout so that the balancer, not
    /// scimd, closes them first. HTTP/1.1 connections are held to the shorter
    /// [`Limits::header_read_timeout`] (see there).
    pub idle_timeout: Duration,
    /// How long one request may take, reading its body included, before it is answered 503
    /// (default 30 s).
    pub request_timeout: Duration,
    /// The most connections served at once; further ones wait in the listen backlog until one
    /// closes (default 1024). The header and idle timeouts keep silent connections from
    /// holding these slots.
    pub max_connections: usize,
    /// The most connections one client may hold at once (default 64): an IPv4 address, or an
    /// IPv6 /64 (a site's smallest network, from which one client can use any address). A
    /// connection beyond it is closed as soon as it is accepted, without taking one of
    /// [`Limits::max_connections`], and counted in `scimd_connections_refused_total{reason=
    /// "per_address"}`; so one client cannot take every slot. Clients in
    /// [`ServerConfig::trusted_proxies`] are not capped. At least 1; a value of
    /// `max_connections` or more turns the cap off.
    pub max_connections_per_address: usize,
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
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            max_connections: 1024,
            max_connections_per_address: 64,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Everything the service needs to know besides its store.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The public origin clients reach the server at, e.g. `https://scim.example.com` (or with
    /// a path prefix, `https://example.com/provisioning`). `meta.location` and `Location` are
    /// built from it; when `None`, from the request's `Host` (or HTTP/2 `:authority`), checked
    /// against [`ServerConfig::allowed_hosts`], and the scheme of the listener.
    pub public_base_url: Option<String>,
    /// The hosts (`host` or `host:port`; without a port, any port) requests may name in `Host`
    /// or `:authority`; any other is refused with 421 before authentication. When empty: with
    /// a public base URL, any host (links come from the URL, nothing is reflected); without
    /// one, only the listen address's host (and `localhost`, `127.0.0.1`, `[::1]` on a
    /// loopback address), and a wildcard listen address (`0.0.0.0`, `[::]`) is refused at
    /// start ([`ServerError::UnrestrictedHost`](crate::ServerError::UnrestrictedHost)).
    /// `/healthz`, `/readyz` and `/metrics` answer whatever the host: probes send the pod's
    /// address, and they reflect nothing.
    pub allowed_hosts: Vec<String>,
    /// Operational limits.
    pub limits: Limits,
    /// The load balancers and reverse proxies in front of the server, as IP networks (default
    /// none). Behind a load balancer every connection comes from the balancer's addresses, so
    /// these are exempt from [`Limits::max_connections_per_address`]. Listing a network here
    /// trusts everything connecting from it: list only the proxies' own addresses.
    pub trusted_proxies: Vec<IpNet>,
    /// `filter.maxResults` (RFC 7643 section 5): the most resources one page returns; a
    /// larger `count` is clamped to it (RFC 7644 section 3.4.2.4). Default 1000.
    pub max_results: u32,
    /// The page size when a list request gives no `count` (default 100, at most
    /// [`ServerConfig::max_results`]).
    pub default_count: u32,
    /// The most bytes of resources one list or search response holds (default 4 MiB), measured
    /// on their stored JSON: a page stops early, with a smaller `itemsPerPage`, once the next
    /// resource would pass it (RFC 7644 section 3.4.2.4), and the client continues from
    /// `startIndex + itemsPerPage` or `nextCursor`; a page always holds at least one resource.
    /// So a response's memory, and the server's under concurrent lists, depends on this
    /// setting, not on how large the tenant's resources are. `totalResults` is unchanged.
    pub max_page_bytes: usize,
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
    /// The provisioning log: which requests and bodies are kept, and for how long.
    pub request_log: crate::provisioning::RequestLogConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            public_base_url: None,
            allowed_hosts: Vec::new(),
            limits: Limits::default(),
            trusted_proxies: Vec::new(),
            max_results: 1000,
            default_count: 100,
            max_page_bytes: 4 * 1024 * 1024,
            bulk_max_operations: 1000,
            bulk_max_payload: 1024 * 1024,
            patch: PatchOptions::default(),
            validation: ValidationOptions::default(),
            strict_filters: true,
            request_log: crate::provisioning::RequestLogConfig::default(),
        }
    }
}
