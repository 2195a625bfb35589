//! The listener: accepting connections under a cap, HTTP/1.1 and HTTP/2 (hyper-util's auto
//! builder, by ALPN or preface), optional TLS, slow-client cut-off, and graceful shutdown.

use crate::config::ServerConfig;
use crate::error::ServerError;
use crate::metrics::Metrics;
use crate::service::AppState;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use scim_schema::SchemaRegistry;
use scim_store::WorkplaceStore;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// A SCIM server: the service and how connections are served. Build it, then [`Server::run`]
/// it on a listener until a shutdown signal.
pub struct Server {
    state: Arc<AppState>,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("state", &self.state)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

impl Server {
    /// A server over `store`, serving the resource types of `registry` (which must define User
    /// and Group) under `/t/{tenant}/scim/v2` and the workplace API under
    /// `/t/{tenant}/workplace/v1`. With `tls`, every connection is TLS (see
    /// [`crate::load_tls_config`]).
    pub fn new(
        store: Arc<dyn WorkplaceStore>,
        registry: SchemaRegistry,
        config: ServerConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<Server, ServerError> {
        let state = Arc::new(AppState::new(store, registry, config, tls.is_some())?);
        Ok(Server {
            state,
            tls: tls.map(tokio_rustls::TlsAcceptor::from),
        })
    }

    /// The server's metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.state.metrics().clone()
    }

    /// Serves connections from `listener` until `shutdown` completes; then stops accepting,
    /// answers `/readyz` with 503, lets in-flight requests finish (HTTP/1.1 connections are
    /// closed after their current response, HTTP/2 ones get GOAWAY), and returns once every
    /// connection is closed or the grace period is over.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServerError> {
        let limits = self.state.config.limits.clone();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout)
            // hyper refuses buffers below 8 KiB; a request head beyond the buffer gets 431.
            .max_buf_size(limits.max_header_bytes.max(8192));
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
            .keep_alive_interval(Some(std::time::Duration::from_secs(30)))
            .keep_alive_timeout(limits.header_read_timeout);
        let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
        let graceful = GracefulShutdown::new();
        let local = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        tracing::info!(address = %local, tls = self.tls.is_some(), "listening");
        tokio::pin!(shutdown);

        loop {
            let permit = tokio::select! {
                permit = connections.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let state = self.state.clone();
            state.metrics.connection_opened();
            let service = {
                let state = state.clone();
                service_fn(move |req| {
                    let state = state.clone();
                    async move { Ok::<_, Infallible>(state.handle(req).await) }
                })
            };
            let watcher = graceful.watcher();
            let builder = builder.clone();
            match &self.tls {
                None => {
                    let connection = builder
                        .serve_connection(TokioIo::new(stream), service)
                        .into_owned();
                    let connection = watcher.watch(connection);
                    tokio::spawn(async move {
                        if let Err(e) = connection.await {
                            tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                        }
                        state.metrics.connection_closed();
                        drop(permit);
                    });
                }
                Some(acceptor) => {
                    let acceptor = acceptor.clone();
                    let handshake_timeout = limits.header_read_timeout;
                    tokio::spawn(async move {
                        match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await
                        {
                            Ok(Ok(tls_stream)) => {
                                let connection = builder
                                    .serve_connection(TokioIo::new(tls_stream), service)
                                    .into_owned();
                                if let Err(e) = watcher.watch(connection).await {
                                    tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                                }
                            }
                            Ok(Err(e)) => {
                                tracing::debug!(peer = %peer, error = %e, "TLS handshake failed")
                            }
                            Err(_) => tracing::debug!(peer = %peer, "TLS handshake timed out"),
                        }
                        state.metrics.connection_closed();
                        drop(permit);
                    });
                }
            }
        }

        self.state.start_draining();
        drop(listener);
        tracing::info!("shutting down: finishing in-flight requests");
        tokio::select! {
            () = graceful.shutdown() => tracing::info!("all connections closed"),
            () = tokio::time::sleep(limits.shutdown_grace) => {
                tracing::warn!(grace = ?limits.shutdown_grace, "grace period over; closing remaining connections");
            }
        }
        Ok(())
    }
}

/// Binds a TCP listener on `address` (port 0 picks a free port).
pub async fn bind(address: SocketAddr) -> Result<TcpListener, ServerError> {
    Ok(TcpListener::bind(address).await?)
}

/// Resolves when the process receives SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("received Ctrl-C"),
        () = terminate => tracing::info!("received SIGTERM"),
    }
}

/// Whether the configuration is usable.
pub(crate) fn check_config(config: &ServerConfig) -> Result<(), ServerError> {
    if let Some(base) = &config.public_base_url {
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(ServerError::Config(format!(
                "public base URL {base:?} must start with http:// or https://"
            )));
        }
    }
    Ok(())
}
