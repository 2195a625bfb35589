//! The listener: accepting connections under a global and a per-client cap, HTTP/1.1 and
//! HTTP/2 (hyper-util's auto builder, by ALPN or preface), optional TLS, a watchdog per
//! connection for the header and idle timeouts, and graceful shutdown.
//!
//! `connections` keeps the per-client counts and each connection's activity, `host` decides
//! which `Host` names the server answers for, and `tls` loads the certificate and key.

pub(crate) mod connections;
pub(crate) mod host;
mod routes;
pub(crate) mod tls;

use crate::config::ServerConfig;
use crate::error::ServerError;
use crate::listener::connections::{
    Activity, AddressSlot, AddressTable, Admission, TrackedBody, Verdict,
};
use crate::listener::host::HostPolicy;
use crate::metrics::{ConnectionCut, Metrics};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use routes::FrontDoor;
use scim_schema::SchemaRegistry;
use scim_store::AdminStore;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;

/// A SCIM server: the service and how connections are served. Build it, then [`Server::run`]
/// it on a listener until a shutdown signal.
pub struct Server {
    state: Arc<FrontDoor>,
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
        store: Arc<dyn AdminStore>,
        registry: SchemaRegistry,
        config: ServerConfig,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Result<Server, ServerError> {
        let state = Arc::new(FrontDoor::new(store, registry, config, tls.is_some())?);
        Ok(Server {
            state,
            tls: tls.map(tokio_rustls::TlsAcceptor::from),
        })
    }

    /// The server's metrics.
    pub fn metrics(&self) -> Arc<Metrics> {
        self.state.metrics.clone()
    }

    /// Serves connections from `listener` until `shutdown` completes; then stops accepting,
    /// answers `/readyz` with 503, lets in-flight requests finish (HTTP/1.1 connections are
    /// closed after their current response, HTTP/2 ones get GOAWAY), and returns once every
    /// connection is closed or the grace period is over.
    ///
    /// At most `max_connections` connections are served at once, at most
    /// `max_connections_per_address` of them from one client (trusted proxies excepted; a
    /// connection beyond that is closed at once). Each connection has the header timeout
    /// from its accept to its first complete request head, then the idle timeout whenever no
    /// request is open (see [`crate::Limits`]).
    ///
    /// Fails at once, serving nothing, when the configuration does not fit the listener's
    /// address (see [`check_listen_address`]).
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), ServerError> {
        let address = listener.local_addr()?;
        let hosts = HostPolicy::new(&self.state.config, address)?;
        // `run` takes `self`, so the policy is set once, before the first request.
        let _ = self.state.hosts.set(hosts);
        self.state.start_background();
        let limits = self.state.config.limits.clone();
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            // Cuts a slow request head on a kept-alive connection; the watchdog covers the
            // first one from the accept, before hyper knows the protocol.
            .header_read_timeout(limits.header_read_timeout)
            // hyper refuses buffers below 8 KiB; a request head beyond the buffer gets 431.
            .max_buf_size(limits.max_header_bytes.max(8192));
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX))
            // Finds peers that vanished; answering these PINGs does not keep a connection
            // from its idle timeout.
            .keep_alive_interval(Some(std::time::Duration::from_secs(30)))
            .keep_alive_timeout(limits.header_read_timeout);
        let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
        let addresses = AddressTable::new(
            limits.max_connections_per_address,
            self.state.config.trusted_proxies.clone(),
        );
        // Every connection holds a receiver: the server's shutdown is a value sent on it, and
        // the sender's `closed()` is the moment the last connection has gone.
        let (shutdown_tx, shutdown_rx) = watch::channel(());
        tracing::info!(address = %address, tls = self.tls.is_some(), "listening");
        tokio::pin!(shutdown);

        // A permit taken for a connection that was then refused serves the next one.
        let mut spare = None;
        loop {
            let permit = match spare.take() {
                Some(permit) => permit,
                None => tokio::select! {
                    permit = connections.clone().acquire_owned() => match permit {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                },
            };
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(pair) => pair,
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        spare = Some(permit);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let accepted = Instant::now();
            let address = match addresses.admit(peer.ip()) {
                Admission::Refused => {
                    drop(stream);
                    spare = Some(permit);
                    self.state.metrics.connection_cut(ConnectionCut::PerAddress);
                    tracing::debug!(peer = %peer, "connection refused: the client holds max_connections_per_address");
                    continue;
                }
                Admission::Trusted => None,
                Admission::Admitted(slot) => Some(slot),
            };
            let _ = stream.set_nodelay(true);
            self.state.metrics.connection_opened();
            let slot = Slot {
                _permit: permit,
                _address: address,
                metrics: self.state.metrics.clone(),
            };
            let state = self.state.clone();
            let builder = builder.clone();
            let mut shutdown = shutdown_rx.clone();
            let tls = self.tls.clone();
            tokio::spawn(async move {
                // Held until the task ends, however it ends.
                let _slot = slot;
                let activity = Activity::new(accepted);
                match tls {
                    None => {
                        serve_connection(stream, &builder, state, &activity, &mut shutdown, peer)
                            .await
                    }
                    Some(acceptor) => {
                        let deadline = accepted + state.config.limits.header_read_timeout;
                        let handshake = tokio::time::timeout_at(deadline, acceptor.accept(stream));
                        let stream = tokio::select! {
                            handshake = handshake => match handshake {
                                Ok(Ok(stream)) => stream,
                                Ok(Err(e)) => {
                                    tracing::debug!(peer = %peer, error = %e, "TLS handshake failed");
                                    return;
                                }
                                Err(_) => {
                                    state.metrics.connection_cut(ConnectionCut::HeaderTimeout);
                                    tracing::debug!(peer = %peer, "TLS handshake timed out");
                                    return;
                                }
                            },
                            _ = shutdown.changed() => return,
                        };
                        serve_connection(stream, &builder, state, &activity, &mut shutdown, peer)
                            .await;
                    }
                }
            });
        }

        self.state.start_draining();
        drop(listener);
        drop(shutdown_rx);
        tracing::info!("shutting down: finishing in-flight requests");
        shutdown_tx.send_replace(());
        tokio::select! {
            () = shutdown_tx.closed() => tracing::info!("all connections closed"),
            () = tokio::time::sleep(limits.shutdown_grace) => {
                tracing::warn!(grace = ?limits.shutdown_grace, "grace period over; closing remaining connections");
            }
        }
        Ok(())
    }
}

/// What a served connection holds until it closes: its place under the connection cap and
/// under its client's, and its count in the open-connections gauge.
struct Slot {
    _permit: OwnedSemaphorePermit,
    _address: Option<AddressSlot>,
    metrics: Arc<Metrics>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.metrics.connection_closed();
    }
}

/// Serves HTTP on one accepted (and, with TLS, handshaken) connection until it ends, its
/// watchdog closes it, or the server shuts down.
///
/// The watchdog is a timer polled in the connection's own task, so a request costs it nothing
/// but [`Activity`]'s two atomics and a clock read: it wakes at the connection's next
/// deadline (header, idle, or the end of a graceful close) and decides from [`Activity`].
async fn serve_connection<I>(
    io: I,
    builder: &auto::Builder<TokioExecutor>,
    state: Arc<FrontDoor>,
    activity: &Arc<Activity>,
    shutdown: &mut watch::Receiver<()>,
    peer: SocketAddr,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let limits = &state.config.limits;
    let (header_timeout, idle_timeout) = (limits.header_read_timeout, limits.idle_timeout);
    // How long a graceful close may take before the connection is dropped: the time an HTTP/2
    // client has to answer the PING that follows GOAWAY, as for keep-alive PINGs.
    let close_grace = limits.header_read_timeout;
    let metrics = state.metrics.clone();
    let service = {
        let activity = activity.clone();
        service_fn(move |req| {
            // Here, in the connection's task (hyper calls the service as it reads the head).
            let in_flight = activity.begin();
            let state = state.clone();
            async move {
                let response = state.handle(req, peer).await;
                Ok::<_, Infallible>(response.map(|body| TrackedBody::new(body, in_flight)))
            }
        })
    };
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    // The first look: at the header deadline, or sooner if the idle timeout is shorter (a
    // request may come and go before then).
    let watchdog = tokio::time::sleep_until(activity.epoch() + header_timeout.min(idle_timeout));
    tokio::pin!(watchdog);
    // When a graceful close began (idle timeout or server shutdown).
    let mut closing: Option<Instant> = None;
    loop {
        tokio::select! {
            biased;
            result = connection.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(peer = %peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = watchdog.as_mut() => {
                let now = Instant::now();
                if let Some(since) = closing {
                    // Open requests may finish; an idle connection that has not closed by now
                    // (an HTTP/2 client that does not answer) is dropped.
                    if activity.is_idle() && now >= since + close_grace {
                        tracing::debug!(peer = %peer, "graceful close timed out");
                        return;
                    }
                    watchdog.as_mut().reset((since + close_grace).max(now + close_grace / 4));
                    continue;
                }
                match activity.verdict(now, header_timeout, idle_timeout) {
                    Verdict::Wait(at) => watchdog.as_mut().reset(at),
                    Verdict::HeaderTimeout => {
                        // Nothing was asked, so nothing is lost: close at once. The graceful
                        // close and one last poll send an HTTP/2 client its GOAWAY if it got
                        // that far.
                        metrics.connection_cut(ConnectionCut::HeaderTimeout);
                        tracing::debug!(peer = %peer, "no request head within the header timeout");
                        connection.as_mut().graceful_shutdown();
                        let _ = std::future::poll_fn(|cx| Poll::Ready(connection.as_mut().poll(cx))).await;
                        return;
                    }
                    Verdict::IdleTimeout => {
                        metrics.connection_cut(ConnectionCut::IdleTimeout);
                        tracing::debug!(peer = %peer, "idle timeout");
                        connection.as_mut().graceful_shutdown();
                        closing = Some(now);
                        watchdog.as_mut().reset(now + close_grace);
                    }
                }
            }
            _ = shutdown.changed(), if closing.is_none() => {
                connection.as_mut().graceful_shutdown();
                let now = Instant::now();
                closing = Some(now);
                watchdog.as_mut().reset(now + close_grace);
            }
        }
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
    host::parse_allowed(&config.allowed_hosts)?;
    Ok(())
}

/// Whether `config` may serve on a listener bound to `address`: refuses a wildcard address
/// (`0.0.0.0`, `[::]`) with neither a public base URL nor allowed hosts
/// ([`ServerError::UnrestrictedHost`]). [`Server::run`] checks it too; call it before
/// anything that should not happen for a server that will not start.
pub fn check_listen_address(config: &ServerConfig, address: SocketAddr) -> Result<(), ServerError> {
    check_config(config)?;
    HostPolicy::new(config, address).map(|_| ())
}
