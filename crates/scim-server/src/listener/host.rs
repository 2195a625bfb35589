//! Which hosts the server answers for. Without a public base URL, the links in responses
//! (`meta.location`, `Location`, `$ref`) are built from the request's `Host` (or HTTP/2
//! `:authority`); a server that accepted any value would reflect `Host: evil.example` into
//! them, which poisons caches in front of it and lets a crafted request hand a client links to
//! another server. So the host a request names must be one the operator listed, or, with no
//! list, the address the server listens on.

use crate::config::ServerConfig;
use crate::error::{ApiError, ServerError};
use http::{HeaderMap, StatusCode, header};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// The name part of a host: an IP address (compared as an address, so `[::1]` and
/// `[0:0::1]` are one host) or a DNS name (compared in lower case, without a trailing dot).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Name {
    Ip(IpAddr),
    Dns(String),
}

impl fmt::Display for Name {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Name::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Name::Ip(ip) => write!(f, "{ip}"),
            Name::Dns(name) => f.write_str(name),
        }
    }
}

/// A host with an optional port: a request's `Host`, or an allowed-hosts entry (where no port
/// means any port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Host {
    name: Name,
    port: Option<u16>,
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(port) => write!(f, "{}:{port}", self.name),
            None => write!(f, "{}", self.name),
        }
    }
}

impl Host {
    /// Parses `host` or `host:port` (RFC 9110 section 7.2: `uri-host [ ":" port ]`), where
    /// the host is a bracketed IPv6 address, an IPv4 address or a DNS name. Anything else
    /// (user info, a path, a scheme, a bare IPv6 address, a port beyond 65535) is refused.
    pub(crate) fn parse(text: &str) -> Result<Host, String> {
        if text.is_empty() || text.len() > 255 {
            return Err("a host is 1 to 255 characters".into());
        }
        if text.contains('/') {
            return Err(
                "a host has no scheme or path (scim.example.com, not https://scim.example.com/)"
                    .into(),
            );
        }
        let (name, port) = if let Some(rest) = text.strip_prefix('[') {
            let (inside, after) = rest
                .split_once(']')
                .ok_or("an IPv6 address lacks its closing ']'")?;
            let ip: Ipv6Addr = inside
                .parse()
                .map_err(|_| format!("[{inside}] is not an IPv6 address"))?;
            let port = match after {
                "" => None,
                _ => Some(after.strip_prefix(':').ok_or("expected :port after ']'")?),
            };
            (Name::Ip(IpAddr::V6(ip)), port)
        } else {
            let (name, port) = match text.split_once(':') {
                Some((name, port)) => (name, Some(port)),
                None => (text, None),
            };
            let name = name.strip_suffix('.').unwrap_or(name);
            let name = if let Ok(ip) = name.parse::<Ipv4Addr>() {
                Name::Ip(IpAddr::V4(ip))
            } else if !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
            {
                Name::Dns(name.to_ascii_lowercase())
            } else {
                return Err(
                    "a host name is letters, digits, '-', '.' and '_' (an IPv6 address goes in brackets)"
                        .into(),
                );
            };
            (name, port)
        };
        let port = match port {
            None => None,
            Some(digits) => Some(
                digits
                    .parse::<u16>()
                    .ok()
                    .filter(|_| digits.bytes().all(|b| b.is_ascii_digit()))
                    .ok_or_else(|| format!("port {digits:?} is not a number up to 65535"))?,
            ),
        };
        Ok(Host { name, port })
    }

    /// Whether a request naming `host` matches this allowed entry: the same name, and the same
    /// port unless the entry names none.
    fn admits(&self, host: &Host) -> bool {
        self.name == host.name && (self.port.is_none() || self.port == host.port)
    }
}

/// Where the allowed hosts came from, for the error detail.
#[derive(Debug, Clone)]
pub(crate) enum Source {
    /// `ServerConfig::allowed_hosts`.
    Configured,
    /// Neither a public base URL nor allowed hosts: the listen address.
    Listener(SocketAddr),
}

/// How a request's host is checked, fixed when the server starts listening.
#[derive(Debug, Clone)]
pub(crate) enum HostPolicy {
    /// A public base URL and no allowed hosts: links come from the URL, the `Host` is never
    /// used, so any is accepted (proxies and probes send internal names and pod addresses).
    Any,
    /// Only these hosts.
    Listed { allowed: Vec<Host>, source: Source },
}

impl HostPolicy {
    /// The policy for `config` on a listener bound to `local`, or why the server must not
    /// start: on a wildcard address with neither setting, it would have to accept any host
    /// (it cannot know the names clients use) and reflect it.
    pub(crate) fn new(config: &ServerConfig, local: SocketAddr) -> Result<HostPolicy, ServerError> {
        if !config.allowed_hosts.is_empty() {
            let allowed = parse_allowed(&config.allowed_hosts)?;
            return Ok(HostPolicy::Listed {
                allowed,
                source: Source::Configured,
            });
        }
        if config.public_base_url.is_some() {
            return Ok(HostPolicy::Any);
        }
        let ip = local.ip().to_canonical();
        if ip.is_unspecified() {
            return Err(ServerError::UnrestrictedHost { address: local });
        }
        let mut allowed = vec![Host {
            name: Name::Ip(ip),
            port: None,
        }];
        if ip.is_loopback() {
            // What a browser or curl on the same machine sends for a loopback server.
            for name in [
                Name::Dns("localhost".into()),
                Name::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                Name::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            ] {
                if !allowed.iter().any(|h| h.name == name) {
                    allowed.push(Host { name, port: None });
                }
            }
        }
        Ok(HostPolicy::Listed {
            allowed,
            source: Source::Listener(local),
        })
    }

    /// Checks the host `req` names; returns it (canonical) when links may be built from it,
    /// `None` under [`HostPolicy::Any`]. A host outside the list is 421 Misdirected Request
    /// (RFC 9110 section 15.5.20: this server will not answer authoritatively for that
    /// authority), a malformed or missing one 400.
    pub(crate) fn check(
        &self,
        uri: &http::Uri,
        headers: &HeaderMap,
    ) -> Result<Option<Host>, ApiError> {
        let HostPolicy::Listed { allowed, source } = self else {
            return Ok(None);
        };
        let host = request_host(uri, headers)?;
        if allowed.iter().any(|a| a.admits(&host)) {
            return Ok(Some(host));
        }
        let why = match source {
            Source::Configured => {
                "it is not in the server's allowed hosts (allowed_hosts; scimd --allowed-hosts)"
                    .to_owned()
            }
            Source::Listener(address) => format!(
                "the server listens on {address} and, with neither a public URL nor allowed hosts configured (scimd --public-url, --allowed-hosts), answers only for that address{}",
                if address.ip().to_canonical().is_loopback() {
                    " and localhost"
                } else {
                    ""
                }
            ),
        };
        Err(ApiError::new(
            StatusCode::MISDIRECTED_REQUEST,
            format!("this server does not answer for host {host}: {why}"),
        ))
    }
}

/// Parses the configured allowed hosts, naming the entry that is not a host.
pub(crate) fn parse_allowed(entries: &[String]) -> Result<Vec<Host>, ServerError> {
    entries
        .iter()
        .map(|entry| {
            Host::parse(entry.trim()).map_err(|why| {
                ServerError::Config(format!(
                    "allowed hosts: {entry:?} is not a host or host:port ({why})"
                ))
            })
        })
        .collect()
}

/// The host the request names: the URI's authority (HTTP/2 `:authority`, or an HTTP/1.1
/// absolute-form target, which RFC 9112 section 3.2.2 says wins over `Host`), else `Host`.
fn request_host(uri: &http::Uri, headers: &HeaderMap) -> Result<Host, ApiError> {
    let text = match uri.authority() {
        Some(authority) => authority.as_str(),
        None => headers
            .get(header::HOST)
            .map(|h| h.to_str().unwrap_or("\u{fffd}"))
            .ok_or_else(|| {
                ApiError::new(StatusCode::BAD_REQUEST, "the request has no Host header")
            })?,
    };
    Host::parse(text).map_err(|why| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            format!("the Host {text:?} is not a valid host: {why}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(text: &str) -> Host {
        Host::parse(text).unwrap()
    }

    #[test]
    fn parsing() {
        assert_eq!(host("Scim.Example.COM.").to_string(), "scim.example.com");
        assert_eq!(host("10.0.0.5:8080").to_string(), "10.0.0.5:8080");
        assert_eq!(host("[0:0::1]:80").to_string(), "[::1]:80");
        for bad in [
            "",
            "::1",
            "[::1",
            "[::1]x",
            "a:b",
            "a:99999",
            "a:+1",
            "user@evil",
            "https://x",
            "a/b",
            "a b",
            "a:1:2",
        ] {
            assert!(Host::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn entries_without_port_admit_any_port() {
        assert!(host("scim.example.com").admits(&host("SCIM.example.com:8443")));
        assert!(host("scim.example.com:443").admits(&host("scim.example.com:443")));
        assert!(!host("scim.example.com:443").admits(&host("scim.example.com")));
        assert!(!host("scim.example.com").admits(&host("evil.example")));
    }

    #[test]
    fn policies() {
        let config = ServerConfig::default();
        let wildcard: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert!(matches!(
            HostPolicy::new(&config, wildcard),
            Err(ServerError::UnrestrictedHost { .. })
        ));
        let v6_wildcard: SocketAddr = "[::]:8080".parse().unwrap();
        assert!(HostPolicy::new(&config, v6_wildcard).is_err());
        let with_url = ServerConfig {
            public_base_url: Some("https://scim.example.com".into()),
            ..ServerConfig::default()
        };
        assert!(matches!(
            HostPolicy::new(&with_url, wildcard),
            Ok(HostPolicy::Any)
        ));
        let bad = ServerConfig {
            allowed_hosts: vec!["https://x/".into()],
            ..ServerConfig::default()
        };
        assert!(HostPolicy::new(&bad, wildcard).is_err());
    }
}
