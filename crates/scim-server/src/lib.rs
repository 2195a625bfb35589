//! # scim-server
//!
//! The SCIM 2.0 service (RFC 7644) an identity provider talks to: [`ScimService`], a tower
//! service an embedder mounts with its own [`Authenticator`], and [`Server`], which composes
//! it with the workplace API ([`WorkplaceService`]) for scimd: hyper 1 with HTTP/1.1 and
//! HTTP/2, optional TLS (rustls), one SCIM base per tenant at `/t/{tenant}/scim/v2`.
//!
//! It adds HTTP, authentication, limits and operations to the crates below it and nothing of
//! the protocol itself: resources are validated and projected by scim-schema, filters parsed
//! and checked by scim-filter, PATCH messages parsed by scim-patch, and everything stored,
//! versioned, patched and queried by a [`scim_store::Store`].
//!
//! ## Endpoints (under `/t/{tenant}/scim/v2`)
//!
//! | endpoint | methods | RFC 7644 |
//! |---|---|---|
//! | `/Users`, `/Groups` | GET (list), POST | 3.3, 3.4.2 |
//! | `/Users/{id}`, `/Groups/{id}` | GET, PUT, PATCH, DELETE | 3.4.1, 3.5.1, 3.5.2, 3.6 |
//! | `/.search`, `/Users/.search`, `/Groups/.search` | POST | 3.4.3 |
//! | `/Bulk` | POST | 3.7 |
//! | `/Schemas`, `/Schemas/{id}`, `/ResourceTypes`, `/ResourceTypes/{name}`, `/ServiceProviderConfig` | GET | 4 |
//! | `/Me` | any: 501, tokens belong to a provisioning client, not a user | 3.11 |
//!
//! ## The workplace API (under `/t/{tenant}/workplace/v1`)
//!
//! Sites, floors, neighbourhoods and resources; policies (with a dry-run preview and a
//! per-rule convenience); decisions with their explanation; bookings, check-in and
//! cancellation; permanent assignments; the ordered event feed, the audit log and the seat
//! report. Plain JSON (`application/json`), bearer tokens of scope `workplace` (a SCIM token
//! gets 403 there, and a workplace token 403 on the SCIM endpoints), errors as
//! `{"status", "error", "detail"}`. The store makes every decision and runs every cascade; see
//! `docs/workplace-api.md`.
//!
//! Outside the tenants: `GET /healthz` (the process answers), `GET /readyz` (the store
//! answers a read and accepts a write within 5 s, and the server is not draining), `GET
//! /metrics` (Prometheus text format). These three need no token and reveal no tenant data; an
//! operator who does not want `/metrics` public filters it at the proxy or firewall. Metric
//! labels come from fixed sets (route templates, the standard methods or `other`, registered
//! status codes or `other`, store operations), so no request can add a series.
//!
//! ## Decisions
//!
//! - **Authentication**: `Authorization: Bearer <token>` (RFC 6750), checked through the store
//!   on every request (no cache), so a token revoked from the CLI is refused by the very next
//!   request. A token works only for its own tenant; every failure is the same 401 with
//!   `WWW-Authenticate: Bearer realm="scimd"`, so nobody learns which tenants exist.
//! - **Hosts**: links (`meta.location`, `Location`, `$ref`) come from
//!   [`ServerConfig::public_base_url`], else from the request's `Host` (or `:authority`), which
//!   must then be one of [`ServerConfig::allowed_hosts`] or, without a list, the listen
//!   address's host; any other gets 421 before authentication, so a forged host is never
//!   reflected. A wildcard listen address needs one of the two settings
//!   ([`check_listen_address`]).
//! - **Errors** are RFC 7644 section 3.12 documents: `status` as a string, `scimType` where
//!   the RFC defines one, a `detail` that says what and where. Bad input of any kind is a 4xx;
//!   only a storage failure is a 500, and its cause goes to the log, not to the client. A full
//!   disk is a 503 with `Retry-After` saying so: the write was not kept, reads go on, and
//!   writes succeed again once space is freed.
//! - **PATCH of a Group answers 204** unless the request asks for `attributes` or
//!   `excludedAttributes` (RFC 7644 section 3.5.2 allows 204): a membership change never
//!   loads a large group. Other PATCHes answer 200 with the resource.
//! - **ETags** are the store's weak versions `W/"n"` (section 3.14): `If-Match` on PUT, PATCH
//!   and DELETE (412 on mismatch, checked in the write's transaction), `If-None-Match` on GET
//!   (304).
//! - **Limits** ([`Limits`]): a body beyond the limit is 413 (before it is read when
//!   `Content-Length` says so); a request head beyond the limit is 431; a connection that has
//!   not completed its first request head within the header timeout of its accept (TLS
//!   handshake, protocol sniff and HTTP/2 preface included) is closed, and so is one that has
//!   had no open request for the idle timeout (PINGs do not count), so silent connections
//!   cannot hold every slot; a request that takes longer than the request timeout is answered
//!   503 with `Retry-After` (a write already handed to the store may still commit: the client
//!   should re-read, as after any timeout); connections beyond the cap wait in the listen
//!   backlog, and a client (IPv4 address or IPv6 /64) beyond its own cap is disconnected at
//!   once, unless it is one of [`ServerConfig::trusted_proxies`].
//! - **Passwords** (RFC 7643 section 4.1.1) are hashed with argon2id before they reach the
//!   store, and never returned (`returned: never`). A PUT that omits `password` keeps it.

mod api;
mod auth;
mod config;
mod context;
mod error;
mod listener;
pub mod metrics;
mod request;
mod response;
mod scim;
mod workplace;

/// The attribute an [`Authenticator`] implementation needs (`#[scim_server::async_trait]`).
pub use async_trait::async_trait;
pub use auth::{Authenticator, Principal, TokenAuthenticator};
pub use response::Body;
pub use scim::ScimService;
pub use workplace::WorkplaceService;

pub use config::{Limits, ServerConfig};
pub use error::{ApiError, ServerError};
pub use listener::connections::IpNet;
pub use listener::tls::load_tls_config;
pub use listener::{Server, bind, check_listen_address, shutdown_signal};

/// The path of a tenant's SCIM base, e.g. `/t/acme/scim/v2`: what operators give identity
/// providers as the "SCIM base URL" (after the server's origin).
pub fn tenant_base_path(tenant: &str) -> String {
    format!("/t/{tenant}/scim/v2")
}

/// Checks a [`ServerConfig`] before serving.
pub fn check_config(config: &ServerConfig) -> Result<(), ServerError> {
    listener::check_config(config)
}
