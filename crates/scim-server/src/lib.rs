#![doc = include_str!("../README.md")]

mod admin;
mod api;
mod auth;
mod config;
mod context;
mod error;
mod listener;
pub mod metrics;
mod provisioning;
mod request;
mod response;
mod scim;
mod workplace;

/// The admin API's OpenAPI 3.1 description (JSON), as scimd serves it at
/// `/t/{tenant}/admin/v1/openapi.json`.
pub use admin::OPENAPI as ADMIN_OPENAPI;
/// The attribute an [`Authenticator`] implementation needs (`#[scim_server::async_trait]`).
pub use async_trait::async_trait;
pub use auth::{Authenticator, Principal, TokenAuthenticator};
pub use response::Body;
pub use scim::ScimService;
/// The workplace API's OpenAPI 3.1 description (JSON), as `WorkplaceService` serves it at
/// `openapi.json` below its base.
pub use workplace::OPENAPI as WORKPLACE_OPENAPI;
pub use workplace::WorkplaceService;

pub use config::{Limits, ServerConfig};
pub use error::{ApiError, ServerError};
pub use listener::connections::IpNet;
pub use listener::tls::load_tls_config;
pub use listener::{Server, bind, check_listen_address, shutdown_signal};
pub use provisioning::{BodyCapture, REDACTED, RequestLogConfig};

/// The parsers of request parts that live in this crate, for the fuzz targets in `fuzz/`
/// (`fuzz/README.md`). Not part of the API: hidden from the documentation, and free to change
/// in any release.
#[doc(hidden)]
pub mod fuzzing {
    use crate::error::ApiError;
    use serde_json::Value;

    pub use crate::workplace::wire::{policies_body, rule};

    /// A query string as every endpoint decodes it: `(name, value)` pairs.
    pub fn query_pairs(query: &str) -> Result<Vec<(String, String)>, ApiError> {
        crate::request::QueryParams::parse(Some(query)).map(|q| q.pairs().to_vec())
    }

    /// The body of `POST /bookings` and `/evaluate`, as the workplace API reads it.
    pub fn booking_request(body: Value) -> Result<scim_store::workplace::NewBooking, ApiError> {
        crate::workplace::Call::booking_request(body, "the booking")
    }
}

/// The path of a tenant's SCIM base, e.g. `/t/acme/scim/v2`: what operators give identity
/// providers as the "SCIM base URL" (after the server's origin).
pub fn tenant_base_path(tenant: &str) -> String {
    format!("/t/{tenant}/scim/v2")
}

/// Checks a [`ServerConfig`] before serving.
pub fn check_config(config: &ServerConfig) -> Result<(), ServerError> {
    listener::check_config(config)
}
