//! Who is calling: the [`Authenticator`] an embedder supplies, and [`TokenAuthenticator`], the
//! default, which checks bearer tokens against the store's token table.

use crate::context::{RequestId, TenantInPath};
use crate::error::{ApiError, from_store};
use crate::metrics::Metrics;
use async_trait::async_trait;
use http::request::Parts;
use http::{StatusCode, header};
use scim_store::{Store, TenantId, TokenScope};
use std::sync::Arc;

/// The authenticated caller of a request: what the handlers need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The tenant the caller acts for. Only a store makes a [`TenantId`]
    /// ([`Store::create_tenant`], [`Store::tenant_by_name`], [`Store::authenticate`]), so an
    /// authenticator can only name a tenant the store knows.
    pub tenant: TenantId,
    /// What the credential may be used for; a service refuses a principal of another scope
    /// with 403.
    pub scope: TokenScope,
    /// The credential's public id, logged with failed requests (never a secret).
    pub token_id: String,
    /// The credential's label, recorded as the actor of every change it makes.
    pub label: String,
}

/// Decides who a request comes from. The SCIM service asks for a principal of scope
/// [`TokenScope::Scim`], the workplace service for [`TokenScope::Workplace`].
///
/// Refuse a request without valid credentials with [`ApiError::unauthorized`] (a 401 with
/// `WWW-Authenticate`, RFC 6750 section 3), and valid credentials of another scope with a
/// 403 ([`ApiError::new`] with [`StatusCode::FORBIDDEN`]); the service renders either as its
/// error body. Called once per request, before the body is read.
#[async_trait]
pub trait Authenticator: Send + Sync + 'static {
    /// The principal `request` (its head: method, URI, headers, extensions) comes from.
    async fn authenticate(&self, request: &Parts, scope: TokenScope)
    -> Result<Principal, ApiError>;
}

/// The default authenticator: `Authorization: Bearer <token>` (RFC 6750), checked through
/// [`Store::authenticate`] on every request (no cache), so a token revoked from the CLI is
/// refused by the very next request. Every failure is the same 401, so nobody learns which
/// tenants exist. Under scimd's `/t/{tenant}/...` URLs, a token works only for the tenant the
/// URL names.
#[derive(Clone)]
pub struct TokenAuthenticator {
    store: Arc<dyn Store>,
    metrics: Option<Arc<Metrics>>,
}

impl std::fmt::Debug for TokenAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenAuthenticator").finish_non_exhaustive()
    }
}

impl TokenAuthenticator {
    /// Checks tokens against `store`'s token table.
    pub fn new(store: Arc<dyn Store>) -> TokenAuthenticator {
        TokenAuthenticator {
            store,
            metrics: None,
        }
    }

    /// The same, recording the store call's latency in `metrics` (scimd's `Server`).
    pub(crate) fn with_metrics(store: Arc<dyn Store>, metrics: Arc<Metrics>) -> Self {
        TokenAuthenticator {
            store,
            metrics: Some(metrics),
        }
    }
}

/// The secret of `Authorization: Bearer <token>` (RFC 6750 section 2.1), or the 401 that
/// says what is missing.
pub(crate) fn bearer_secret(request: &Parts) -> Result<&str, ApiError> {
    let Some(value) = request.headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::unauthorized(
            "authentication required: send Authorization: Bearer <token>",
        ));
    };
    let text = value.to_str().unwrap_or("");
    match text.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(token.trim())
        }
        _ => Err(ApiError::unauthorized(
            "the Authorization header must be: Bearer <token>",
        )),
    }
}

#[async_trait]
impl Authenticator for TokenAuthenticator {
    /// A valid token of the URL's tenant issued for the other API (`scope`) is refused with
    /// 403 (RFC 6750 section 3.1 `insufficient_scope`): its holder already knows the tenant
    /// exists, and learns only that the token does not reach here.
    async fn authenticate(
        &self,
        request: &Parts,
        scope: TokenScope,
    ) -> Result<Principal, ApiError> {
        let secret = bearer_secret(request)?;
        let lookup = self.store.authenticate(secret);
        let found = match &self.metrics {
            Some(metrics) => metrics.timed("authenticate", lookup).await,
            None => lookup.await,
        };
        let request_id = request
            .extensions
            .get::<RequestId>()
            .map_or("-", |id| id.0.as_str());
        let found = found.map_err(|e| from_store(e, request_id))?;
        let in_path = request.extensions.get::<TenantInPath>();
        let tenant_matches =
            |name: &str| in_path.is_none_or(|expected| expected.0.as_str() == name);
        match found {
            Some((tenant, token)) if tenant_matches(&tenant.name) && !token.scope.covers(scope) => {
                Err(ApiError::new(
                    StatusCode::FORBIDDEN,
                    format!(
                        "this token has scope {:?}, and these endpoints need a token of scope {:?} (scimd token issue --tenant {} --scope {})",
                        token.scope.as_str(),
                        scope.as_str(),
                        tenant.name,
                        scope.as_str()
                    ),
                ))
            }
            Some((tenant, token)) if tenant_matches(&tenant.name) => Ok(Principal {
                tenant: tenant.id,
                scope: token.scope,
                token_id: token.id,
                label: token.label,
            }),
            _ => Err(ApiError::unauthorized(match in_path {
                Some(name) => format!(
                    "the bearer token is not valid for tenant {:?} (unknown, revoked, or issued for another tenant)",
                    name.0
                ),
                None => "the bearer token is not valid (unknown or revoked)".to_owned(),
            })),
        }
    }
}
