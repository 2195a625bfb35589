//! The front door's bookkeeping: IP networks (for trusted proxies), how many connections each
//! client holds, and whether a connection is doing anything at all.
//!
//! A connection costs the server a slot of `max_connections` whether or not it sends
//! anything, so a connection that does nothing must give its slot back: the listener's
//! watchdog (in `serve.rs`) reads [`Activity`] to close connections that never send a request
//! head, and connections that stay without an open request for the idle timeout.

use crate::error::ServerError;
use crate::response::Body;
use bytes::Bytes;
use hyper::body::{Frame, SizeHint};
use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Instant;

/// An IP network in CIDR notation, such as `10.0.0.0/8`, `192.0.2.7/32` or `2001:db8::/32`; a
/// bare address is the network of that one address (`/32`, or `/128` for IPv6).
///
/// Parsed with [`str::parse`]: a prefix longer than the address, or an address with bits set
/// beyond its prefix (`10.0.0.1/8`, most likely a typo), is an error that names the value.
/// An IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) is stored as the IPv4 network it
/// maps, and an IPv4 network contains the IPv4-mapped form of its addresses, because a
/// dual-stack listener reports IPv4 clients that way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNet {
    addr: IpAddr,
    prefix: u8,
}

impl IpNet {
    /// The network of `addr` with `prefix` leading bits; an error if `prefix` is longer than
    /// the address or `addr` has bits set beyond it.
    pub fn new(addr: IpAddr, prefix: u8) -> Result<IpNet, ServerError> {
        let invalid = |reason: String| ServerError::Network {
            value: format!("{addr}/{prefix}"),
            reason,
        };
        let (addr, prefix) = match addr {
            IpAddr::V6(v6) if prefix >= 96 => match v6.to_ipv4_mapped() {
                Some(v4) => (IpAddr::V4(v4), prefix - 96),
                None => (addr, prefix),
            },
            _ => (addr, prefix),
        };
        let bits = match addr {
            IpAddr::V4(_) => 32,
            IpAddr::V6(_) => 128,
        };
        if prefix > bits {
            return Err(invalid(format!(
                "the prefix /{prefix} is longer than the address ({bits} bits)"
            )));
        }
        let net = IpNet { addr, prefix };
        let network = net.network();
        if network != addr {
            return Err(invalid(format!(
                "bits are set beyond the /{prefix} prefix; the network is {}",
                IpNet {
                    addr: network,
                    prefix
                }
            )));
        }
        Ok(net)
    }

    /// The network's first address.
    pub fn addr(&self) -> IpAddr {
        self.addr
    }

    /// The prefix length, in bits.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    /// Whether `ip` is in the network (an IPv4-mapped IPv6 address counts as its IPv4 one).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                (u32::from(net) ^ u32::from(ip)) & mask32(self.prefix) == 0
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                (u128::from(net) ^ u128::from(ip)) & mask128(self.prefix) == 0
            }
            _ => false,
        }
    }

    /// `addr` with the bits beyond the prefix cleared.
    fn network(&self) -> IpAddr {
        match self.addr {
            IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask32(self.prefix))),
            IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(u128::from(a) & mask128(self.prefix))),
        }
    }
}

impl FromStr for IpNet {
    type Err = ServerError;

    fn from_str(text: &str) -> Result<IpNet, ServerError> {
        let invalid = |reason: &str| ServerError::Network {
            value: text.to_owned(),
            reason: reason.to_owned(),
        };
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| invalid("not an IPv4 or IPv6 address"))?;
        let prefix = match prefix {
            // Digits only: `u8::from_str` would also take "+8".
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => p
                .parse::<u8>()
                .map_err(|_| invalid("the prefix length is too large"))?,
            Some(_) => return Err(invalid("the prefix length after '/' is not a number")),
            None if addr.is_ipv4() => 32,
            None => 128,
        };
        IpNet::new(addr, prefix).map_err(|e| match e {
            ServerError::Network { reason, .. } => ServerError::Network {
                value: text.to_owned(),
                reason,
            },
            other => other,
        })
    }
}

impl fmt::Display for IpNet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn mask32(prefix: u8) -> u32 {
    u32::MAX
        .checked_shl(32 - u32::from(prefix.min(32)))
        .unwrap_or(0)
}

fn mask128(prefix: u8) -> u128 {
    u128::MAX
        .checked_shl(128 - u32::from(prefix.min(128)))
        .unwrap_or(0)
}

/// An IPv4-mapped IPv6 address (`::ffff:192.0.2.7`, how a dual-stack listener sees an IPv4
/// client) as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Whom a connection counts against: an IPv4 address, or an IPv6 /64. A /64 is the smallest
/// network an IPv6 site is given (RFC 6177), so one client can pick any of its 2^64 addresses
/// for each connection: counting single IPv6 addresses would cap nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum ClientKey {
    V4(u32),
    V6(u64),
}

impl ClientKey {
    fn of(ip: IpAddr) -> ClientKey {
        match canonical(ip) {
            IpAddr::V4(v4) => ClientKey::V4(u32::from(v4)),
            IpAddr::V6(v6) => ClientKey::V6((u128::from(v6) >> 64) as u64),
        }
    }
}

/// The connections each client holds, capped at `max_connections_per_address`; clients in
/// the trusted-proxy networks are not counted (behind a load balancer every connection comes
/// from the balancer's few addresses).
#[derive(Debug)]
pub(crate) struct AddressTable {
    cap: usize,
    trusted: Vec<IpNet>,
    /// Only clients with at least one connection: at most `max_connections` entries.
    counts: Mutex<HashMap<ClientKey, usize>>,
}

/// What [`AddressTable::admit`] decided.
#[derive(Debug)]
pub(crate) enum Admission {
    /// A trusted proxy: not counted.
    Trusted,
    /// Counted until the slot is dropped.
    Admitted(AddressSlot),
    /// The client already holds `cap` connections.
    Refused,
}

impl AddressTable {
    pub(crate) fn new(cap: usize, trusted: Vec<IpNet>) -> Arc<AddressTable> {
        Arc::new(AddressTable {
            cap: cap.max(1),
            trusted,
            counts: Mutex::new(HashMap::new()),
        })
    }

    /// Counts one more connection from `ip`, unless it is a trusted proxy or at the cap.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Admission {
        if self.trusted.iter().any(|net| net.contains(ip)) {
            return Admission::Trusted;
        }
        let key = ClientKey::of(ip);
        // Nothing panics while the lock is held, so a poisoned lock still holds valid counts.
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let count = counts.entry(key).or_insert(0);
        if *count >= self.cap {
            return Admission::Refused;
        }
        *count += 1;
        Admission::Admitted(AddressSlot {
            table: self.clone(),
            key,
        })
    }
}

/// One counted connection; dropping it gives the slot back.
#[derive(Debug)]
pub(crate) struct AddressSlot {
    table: Arc<AddressTable>,
    key: ClientKey,
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut counts = self
            .table
            .counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = counts.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

/// What one connection is doing: how many requests are open on it, and when the last one
/// finished. Requests update it (two atomics and a clock read each); only the connection's
/// watchdog reads it.
#[derive(Debug)]
pub(crate) struct Activity {
    /// When the connection was accepted.
    epoch: Instant,
    /// Requests whose head has arrived and whose response body hyper has not yet taken.
    in_flight: AtomicUsize,
    /// When the last request finished, in milliseconds after `epoch` plus one; 0 before the
    /// first.
    last_done: AtomicU64,
}

/// What the watchdog should do about a connection now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Nothing yet: look again at this instant.
    Wait(Instant),
    /// No request head arrived within the header timeout of the accept.
    HeaderTimeout,
    /// No request has been open for the idle timeout.
    IdleTimeout,
}

impl Activity {
    pub(crate) fn new(epoch: Instant) -> Arc<Activity> {
        Arc::new(Activity {
            epoch,
            in_flight: AtomicUsize::new(0),
            last_done: AtomicU64::new(0),
        })
    }

    /// When the connection was accepted.
    pub(crate) fn epoch(&self) -> Instant {
        self.epoch
    }

    /// A request head has arrived. hyper calls the service from the connection's own task
    /// (for HTTP/2 too, before it spawns the stream), which is where the watchdog runs, so
    /// the watchdog never misses a request that has begun.
    pub(crate) fn begin(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }

    /// Whether no request is open.
    pub(crate) fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    /// The verdict at `now`: a connection gets `header_timeout` from its accept to its first
    /// request head, then may stay without an open request for `idle_timeout`.
    pub(crate) fn verdict(
        &self,
        now: Instant,
        header_timeout: Duration,
        idle_timeout: Duration,
    ) -> Verdict {
        if !self.is_idle() {
            return Verdict::Wait(now + idle_timeout);
        }
        match self.last_done.load(Ordering::Relaxed) {
            0 => {
                let deadline = self.epoch + header_timeout;
                if now >= deadline {
                    Verdict::HeaderTimeout
                } else {
                    // A request may come and go before the header deadline; with an idle
                    // timeout shorter than the header timeout, its idle deadline is earlier.
                    Verdict::Wait(deadline.min(now + idle_timeout))
                }
            }
            done => {
                let deadline = self.epoch + Duration::from_millis(done - 1) + idle_timeout;
                if now >= deadline {
                    Verdict::IdleTimeout
                } else {
                    Verdict::Wait(deadline)
                }
            }
        }
    }
}

/// One open request; dropping it (with the response body, or with the request's future if the
/// connection goes away first) marks the request finished.
#[derive(Debug)]
pub(crate) struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        let activity = &self.0;
        let millis = u64::try_from(activity.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1);
        // fetch_max: HTTP/2 requests finish on several threads at once.
        activity.last_done.fetch_max(millis + 1, Ordering::Relaxed);
        // Release: a watchdog that sees the count drop also sees `last_done`.
        activity.in_flight.fetch_sub(1, Ordering::Release);
    }
}

/// A response body that keeps its request open until hyper has taken the body (or dropped
/// it), so that a connection is not idle while its response is still being written.
#[derive(Debug)]
pub(crate) struct TrackedBody {
    body: Body,
    _in_flight: InFlight,
}

impl TrackedBody {
    pub(crate) fn new(body: Body, in_flight: InFlight) -> TrackedBody {
        TrackedBody {
            body,
            _in_flight: in_flight,
        }
    }
}

impl hyper::body::Body for TrackedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> IpNet {
        text.parse().unwrap()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_parse_and_match() {
        assert!(net("10.0.0.0/8").contains(ip("10.255.1.2")));
        assert!(!net("10.0.0.0/8").contains(ip("11.0.0.1")));
        assert!(net("127.0.0.5").contains(ip("127.0.0.5")));
        assert!(!net("127.0.0.5").contains(ip("127.0.0.6")));
        assert!(net("0.0.0.0/0").contains(ip("203.0.113.9")));
        assert!(!net("0.0.0.0/0").contains(ip("::1")));
        assert!(net("2001:db8::/32").contains(ip("2001:db8:ffff::1")));
        assert!(!net("2001:db8::/32").contains(ip("2001:db9::1")));
        assert!(net("::1").contains(ip("::1")));
        assert!(net("::/0").contains(ip("fe80::1")));
        // A dual-stack listener reports IPv4 clients as IPv4-mapped IPv6 addresses.
        assert!(net("192.0.2.0/24").contains(ip("::ffff:192.0.2.7")));
        assert_eq!(net("::ffff:192.0.2.0/120"), net("192.0.2.0/24"));
        assert_eq!(net("10.0.0.0/8").to_string(), "10.0.0.0/8");
        assert_eq!(net("::1").to_string(), "::1/128");
    }

    #[test]
    fn bad_networks_name_the_value() {
        for (text, says) in [
            ("10.0.0.300/8", "not an IPv4 or IPv6 address"),
            ("10.0.0.0/33", "longer than the address"),
            ("2001:db8::/129", "longer than the address"),
            ("10.0.0.1/8", "the network is 10.0.0.0/8"),
            ("10.0.0.0/", "not a number"),
            ("10.0.0.0/+8", "not a number"),
            ("10.0.0.0/999", "too large"),
            ("localhost", "not an IPv4 or IPv6 address"),
            ("", "not an IPv4 or IPv6 address"),
        ] {
            let error = text.parse::<IpNet>().unwrap_err().to_string();
            assert!(error.contains(&format!("{text:?}")), "{error}");
            assert!(error.contains(says), "{text}: {error}");
        }
    }

    #[test]
    fn the_table_caps_each_client_and_exempts_trusted_proxies() {
        let table = AddressTable::new(2, vec![net("127.0.0.5/32")]);
        let a = table.admit(ip("127.0.0.2"));
        let b = table.admit(ip("::ffff:127.0.0.2"));
        assert!(matches!(a, Admission::Admitted(_)));
        assert!(matches!(b, Admission::Admitted(_)));
        assert!(matches!(table.admit(ip("127.0.0.2")), Admission::Refused));
        assert!(matches!(
            table.admit(ip("127.0.0.3")),
            Admission::Admitted(_)
        ));
        for _ in 0..5 {
            assert!(matches!(table.admit(ip("127.0.0.5")), Admission::Trusted));
        }
        drop(a);
        let e = table.admit(ip("127.0.0.2"));
        assert!(matches!(e, Admission::Admitted(_)));
        // An IPv6 client counts by its /64.
        let c = table.admit(ip("2001:db8::1"));
        let d = table.admit(ip("2001:db8::2"));
        assert!(matches!(
            (&c, &d),
            (Admission::Admitted(_), Admission::Admitted(_))
        ));
        assert!(matches!(table.admit(ip("2001:db8::3")), Admission::Refused));
        assert!(matches!(
            table.admit(ip("2001:db8:0:1::1")),
            Admission::Admitted(_)
        ));
        drop((b, c, d));
        // Slots given back leave no entry behind.
        let counts = table.counts.lock().unwrap();
        assert_eq!(counts.get(&ClientKey::of(ip("127.0.0.2"))), Some(&1));
        assert_eq!(counts.get(&ClientKey::of(ip("2001:db8::1"))), None);
        drop(counts);
        drop(e);
        assert!(table.counts.lock().unwrap().is_empty());
    }

    #[test]
    fn the_verdict_follows_the_requests() {
        let epoch = Instant::now();
        let activity = Activity::new(epoch);
        let (header, idle) = (Duration::from_secs(10), Duration::from_secs(60));
        assert_eq!(
            activity.verdict(epoch, header, idle),
            Verdict::Wait(epoch + header)
        );
        assert_eq!(
            activity.verdict(epoch + header, header, idle),
            Verdict::HeaderTimeout
        );
        let short_idle = Duration::from_secs(1);
        assert_eq!(
            activity.verdict(epoch, header, short_idle),
            Verdict::Wait(epoch + short_idle)
        );
        let request = activity.begin();
        let later = epoch + Duration::from_secs(100);
        assert_eq!(
            activity.verdict(later, header, idle),
            Verdict::Wait(later + idle)
        );
        drop(request);
        assert!(activity.is_idle());
        match activity.verdict(epoch, header, idle) {
            Verdict::Wait(at) => assert!(at >= epoch + idle && at < epoch + idle + header),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            activity.verdict(epoch + idle + header, header, idle),
            Verdict::IdleTimeout
        );
    }
}
