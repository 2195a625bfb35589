//! The one error type of this crate.

use crate::types::ResourceKind;
use scim_filter::FilterError;
use scim_patch::PatchError;
use scim_schema::{SchemaError, ScimType};

/// The result of every store operation.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Why a store operation failed. Each variant maps to one HTTP status and, where RFC 7644
/// section 3.12 defines one, one `scimType`, so the server never has to guess; only
/// [`StoreError::Backend`] is a 500.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No resource of this kind has this id in the tenant (404, RFC 7644 section 3.12).
    #[error("{kind} {id:?} not found")]
    NotFound {
        /// The resource type looked for.
        kind: ResourceKind,
        /// The id looked for.
        id: String,
    },
    /// The tenant named does not exist (or no longer exists).
    #[error("tenant {0:?} not found")]
    TenantNotFound(String),
    /// The resource's version is not the one the write expected (412, RFC 7644 section 3.14:
    /// the `If-Match` precondition failed).
    #[error(
        "version mismatch: the request expected W/\"{expected}\" but the resource is at W/\"{actual}\""
    )]
    VersionMismatch {
        /// The version the caller expected.
        expected: u64,
        /// The resource's current version.
        actual: u64,
    },
    /// A value that must be unique is already used by another resource of the tenant (409
    /// `uniqueness`, RFC 7644 section 3.12; RFC 7643 section 7 "uniqueness").
    #[error("{attribute} {value:?} is already in use")]
    Uniqueness {
        /// The attribute whose value collides, e.g. `userName`.
        attribute: String,
        /// The colliding value, as submitted.
        value: String,
    },
    /// A tenant of this name already exists.
    #[error("tenant {0:?} already exists")]
    TenantExists(String),
    /// The request is not acceptable to the store: a missing or mistyped attribute the store
    /// relies on, a member that does not exist, a malformed tenant name... (400, with the
    /// `scimType` given).
    #[error("{detail}")]
    Invalid {
        /// The `scimType` to answer with (RFC 7644 section 3.12).
        scim_type: ScimType,
        /// What was wrong, and where.
        detail: String,
    },
    /// The resource does not conform to its schema (400, with the error's `scimType`).
    #[error(transparent)]
    Schema(#[from] SchemaError),
    /// The PATCH request cannot be applied (400 or 409, with the error's `scimType`, RFC 7644
    /// section 3.5.2).
    #[error(transparent)]
    Patch(#[from] PatchError),
    /// The filter cannot be applied to the resource type (400 `invalidFilter`).
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// The `cursor` is not one this store issued for this query (400 `invalidCursor`, RFC 9865
    /// section 2.1).
    #[error("invalid cursor: {0}")]
    InvalidCursor(String),
    /// A workplace object (a site, floor, neighbourhood, resource, booking, assignment, or the
    /// person a booking names) does not exist in the tenant (404).
    #[error("{what} {id:?} not found")]
    WorkplaceNotFound {
        /// What was looked for: `site`, `booking`, `person`...
        what: String,
        /// The id looked for.
        id: String,
    },
    /// A workplace write contradicts the current state (409): deleting a place something still
    /// refers to, assigning a resource already assigned, checking in a cancelled booking.
    #[error("{0}")]
    Conflict(String),
    /// The database's storage is full (503: the write was not kept, reads still work, and the
    /// same write succeeds once space is freed). SQLite's `SQLITE_FULL`, PostgreSQL's SQLSTATE
    /// 53100 `disk_full`.
    #[error("the database's storage is full: {0}")]
    StorageFull(String),
    /// The write was not started because its caller had stopped waiting for it (503): its
    /// [`WriteWindow`](crate::WriteWindow) was closed, e.g. the request ran out of time.
    /// Nothing of it was kept; the same write can be sent again.
    #[error("the write was not started: {0}")]
    Cancelled(String),
    /// The store did not answer within its time limit, or could not get a connection to answer
    /// with (503: the same request may succeed later, e.g. once a burst of slow queries is
    /// over): a read stopped at the deadline of the request it served or at the store's own
    /// limit (SQLite's interrupt, PostgreSQL's `statement_timeout`, SQLSTATE 57014), or the
    /// wait for a pooled connection timed out. Nothing was written. The text says which limit,
    /// for the log and the client.
    #[error("{0}")]
    Timeout(String),
    /// The storage engine failed (500): I/O, corruption, a bug. The detail is for the log,
    /// not for the client.
    #[error("storage failure: {message}")]
    Backend {
        /// What failed, for the log (it includes the engine's own message).
        message: String,
        /// The engine's own error (rusqlite's, tokio-postgres's...), when there is one, so that
        /// an error reporter can walk the chain.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
}

impl StoreError {
    /// The HTTP status this error answers with (RFC 7644 section 3.12).
    pub fn status(&self) -> u16 {
        match self {
            StoreError::NotFound { .. }
            | StoreError::TenantNotFound(_)
            | StoreError::WorkplaceNotFound { .. } => 404,
            StoreError::Conflict(_) => 409,
            StoreError::VersionMismatch { .. } => 412,
            StoreError::Uniqueness { .. } | StoreError::TenantExists(_) => 409,
            StoreError::Invalid { scim_type, .. } => scim_type.status(),
            StoreError::Schema(e) => e.status(),
            StoreError::Patch(e) => e.status(),
            StoreError::Filter(_) | StoreError::InvalidCursor(_) => 400,
            StoreError::StorageFull(_) | StoreError::Cancelled(_) | StoreError::Timeout(_) => 503,
            StoreError::Backend { .. } => 500,
        }
    }

    /// The `scimType` keyword of the error response, if RFC 7644 section 3.12 (or RFC 9865
    /// section 2.1 for `invalidCursor`) defines one for this error.
    pub fn scim_type(&self) -> Option<&'static str> {
        match self {
            StoreError::Uniqueness { .. } => Some(ScimType::Uniqueness.as_str()),
            StoreError::Invalid { scim_type, .. } => Some(scim_type.as_str()),
            StoreError::Schema(e) => Some(e.scim_type().as_str()),
            StoreError::Patch(e) => Some(e.scim_type().as_str()),
            StoreError::Filter(e) => Some(e.scim_type().as_str()),
            StoreError::InvalidCursor(_) => Some("invalidCursor"),
            _ => None,
        }
    }

    /// The same failure again, for each write of a batch that failed as one: a full disk stays
    /// [`StoreError::StorageFull`] (the client should retry later), anything else becomes a
    /// [`StoreError::Backend`] with the same text.
    pub fn for_each_write(&self) -> Self {
        match self {
            StoreError::StorageFull(detail) => StoreError::StorageFull(detail.clone()),
            StoreError::Timeout(detail) => StoreError::Timeout(detail.clone()),
            StoreError::Backend { message, .. } => StoreError::backend(message),
            other => StoreError::backend(other),
        }
    }

    /// A 400 `invalidValue` with this detail: a value the store refuses (for backend authors).
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        StoreError::Invalid {
            scim_type: ScimType::InvalidValue,
            detail: detail.into(),
        }
    }

    /// A failure of the storage engine itself (for backend authors), with no underlying error
    /// to keep: a 500 to the client, the text in the server's log.
    pub fn backend(message: impl std::fmt::Display) -> Self {
        StoreError::Backend {
            message: message.to_string(),
            source: None,
        }
    }

    /// A failure of the storage engine, keeping its error as the source: the message is
    /// `"{context}: {error}"`, as the log has always shown it.
    pub fn backend_error(
        context: &str,
        error: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Backend {
            message: format!("{context}: {error}"),
            source: Some(Box::new(error)),
        }
    }
}
