//! Configuration: command-line flags, `SCIMD_*` environment variables and a TOML file, merged
//! with this precedence: **flags > environment > file > defaults**.
//!
//! clap reads a flag or, when the flag is absent, its environment variable; the values it
//! leaves unset are taken from the file (`--config FILE`, `SCIMD_CONFIG`), then from the
//! defaults below.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The default database: SQLite in the working directory.
pub const DEFAULT_DATABASE: &str = "./scimd.db";
/// The default listen address: loopback only, so that a first run exposes nothing.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// The TOML configuration file. Every key is optional; contrib/scimd.toml lists each with its
/// default (tests/config_file.rs keeps it complete).
///
/// ```toml
/// database = "/var/lib/scimd/scimd.db"   # or "sqlite:///var/lib/scimd/scimd.db"
/// durability = "full"                     # or "normal" (see README)
///
/// [server]
/// listen = "0.0.0.0:8443"
/// public_url = "https://scim.example.com"
/// allowed_hosts = ["scim.example.com", "10.0.0.5:8443"]   # Host values accepted (421 otherwise)
/// log_format = "json"                     # or "text"
/// bootstrap_token_file = "/var/lib/scimd/bootstrap-token"   # first run's token, mode 0600
/// tls_cert = "/etc/scimd/cert.pem"
/// tls_key = "/etc/scimd/key.pem"
/// trusted_proxies = ["10.0.0.0/8", "2001:db8::/32"]   # load balancers: no per-address cap
///
/// [limits]
/// max_body_bytes = 1048576
/// max_header_bytes = 16384
/// header_read_timeout_secs = 10
/// idle_timeout_secs = 60
/// request_timeout_secs = 30
/// max_connections = 1024
/// max_connections_per_address = 64
/// shutdown_grace_secs = 30
/// max_resource_bytes = 1048576          # largest resource kept (JSON bytes)
/// max_values_per_attribute = 10000      # most values of one multi-valued attribute
///
/// [sqlite]
/// cache_kib = 4096                        # page cache per connection
/// readers = 8                             # idle read connections kept
/// long_reads = 2                          # long reads at once (default: the cores)
///
/// [postgres]
/// statement_timeout_ms = 30000            # default: the request timeout; 0: none
/// pool_wait_ms = 5000                     # wait for a pooled connection, then 503
///
/// [scim]
/// max_results = 1000
/// max_page_bytes = 4194304                # a page stops early beyond it
/// default_count = 100
/// bulk_max_operations = 1000
/// bulk_max_payload = 1048576
/// strict_filters = true
///
/// [request_log]
/// enabled = true                          # the provisioning log of SCIM requests
/// capture = "all"                         # bodies kept: all, errors, none
/// max_body_kib = 64                       # larger bodies are cut, with a marker
/// retention_days = 30                     # per tenant
/// retention_mib = 1024                    # per tenant; oldest entries go first
/// silent_after_minutes = 120              # a SCIM token that stopped calling is "silent"
/// ```
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Database path or URL.
    pub database: Option<String>,
    /// `full` or `normal`.
    pub durability: Option<String>,
    /// The `[server]` table.
    #[serde(default)]
    pub server: ServerSection,
    /// The `[limits]` table.
    #[serde(default)]
    pub limits: LimitsSection,
    /// The `[scim]` table.
    #[serde(default)]
    pub scim: ScimSection,
    /// The `[sqlite]` table.
    #[serde(default)]
    pub sqlite: SqliteSection,
    /// The `[postgres]` table.
    #[serde(default)]
    pub postgres: PostgresSection,
    /// The `[request_log]` table.
    #[serde(default)]
    pub request_log: RequestLogSection,
}

/// `[request_log]`: the provisioning log (docs/admin-api.md).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RequestLogSection {
    /// Whether SCIM requests are logged.
    pub enabled: Option<bool>,
    /// `all`, `errors` or `none`.
    pub capture: Option<String>,
    /// Bodies above this are cut.
    pub max_body_kib: Option<usize>,
    /// Days kept per tenant.
    pub retention_days: Option<u32>,
    /// MiB kept per tenant.
    pub retention_mib: Option<u64>,
    /// Minutes without a request before a SCIM token is silent.
    pub silent_after_minutes: Option<u64>,
}

impl FileConfig {
    /// The keys this file sets, dotted (`limits.max_body_bytes`).
    pub fn keys_set(&self) -> Vec<String> {
        let mut keys = Vec::new();
        if let Ok(value) = serde_json::to_value(self) {
            collect_keys(&value, "", &mut keys);
        }
        keys
    }
}

/// The dotted paths of `value`'s leaves that are set (not null, not an empty list).
fn collect_keys(value: &serde_json::Value, prefix: &str, keys: &mut Vec<String>) {
    let Some(object) = value.as_object() else {
        return;
    };
    for (name, value) in object {
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        match value {
            serde_json::Value::Null => {}
            serde_json::Value::Array(items) if items.is_empty() => {}
            serde_json::Value::Object(_) => collect_keys(value, &key, keys),
            _ => keys.push(key),
        }
    }
}

/// `[sqlite]`: memory the embedded database may use.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SqliteSection {
    /// Page cache per connection, in KiB (default 4096).
    pub cache_kib: Option<i64>,
    /// Idle read connections kept open (default 8).
    pub readers: Option<usize>,
    /// Long reads (sorts and filters over many documents) run at once on the blocking pool
    /// (default: the number of cores, at least 2).
    pub long_reads: Option<usize>,
}

/// `[postgres]`: how the PostgreSQL store holds its connections to time.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PostgresSection {
    /// `statement_timeout` of every connection `serve` opens, in ms (default: the request
    /// timeout; 0: none).
    pub statement_timeout_ms: Option<u64>,
    /// How long a request waits for a pooled connection, in ms (default 5000).
    pub pool_wait_ms: Option<u64>,
}

/// `[server]`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSection {
    /// Listen address, `HOST:PORT`: an IP address or a host name (resolved at start-up).
    pub listen: Option<String>,
    /// Public origin for `meta.location`.
    pub public_url: Option<String>,
    /// Hosts (`host` or `host:port`) requests may name in `Host`; others get 421.
    pub allowed_hosts: Option<Vec<String>>,
    /// `json` or `text`.
    pub log_format: Option<String>,
    /// Where the first run writes the bootstrap token.
    pub bootstrap_token_file: Option<PathBuf>,
    /// TLS certificate chain (PEM).
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    pub tls_key: Option<PathBuf>,
    /// Load balancers' addresses or CIDR networks, exempt from the per-address cap.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
}

/// `[limits]`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    /// Largest request body outside `/Bulk`.
    pub max_body_bytes: Option<usize>,
    /// Largest request head.
    pub max_header_bytes: Option<usize>,
    /// Slow-client cut-off, from accept to the first request head.
    pub header_read_timeout_secs: Option<u64>,
    /// How long a connection may stay without an open request.
    pub idle_timeout_secs: Option<u64>,
    /// Per-request timeout.
    pub request_timeout_secs: Option<u64>,
    /// Concurrent connection cap.
    pub max_connections: Option<usize>,
    /// Concurrent connection cap per client address (IPv6: per /64).
    pub max_connections_per_address: Option<usize>,
    /// Graceful shutdown wait.
    pub shutdown_grace_secs: Option<u64>,
    /// Largest resource the store keeps, in bytes of JSON.
    pub max_resource_bytes: Option<usize>,
    /// Most values of one multi-valued attribute of a resource.
    pub max_values_per_attribute: Option<usize>,
}

/// `[scim]`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ScimSection {
    /// `filter.maxResults`.
    pub max_results: Option<u32>,
    /// The most bytes of resources one page holds.
    pub max_page_bytes: Option<usize>,
    /// Page size without `count`.
    pub default_count: Option<u32>,
    /// `bulk.maxOperations`.
    pub bulk_max_operations: Option<u32>,
    /// `bulk.maxPayloadSize`.
    pub bulk_max_payload: Option<u64>,
    /// Refuse filters on undefined attributes.
    pub strict_filters: Option<bool>,
}

/// Why the configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown keys.
    #[error("{path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// Why.
        source: toml::de::Error,
    },
    /// A value is not acceptable.
    #[error("{0}")]
    Invalid(String),
}

/// Loads the file, if one is named.
pub fn load_file(path: Option<&Path>) -> Result<FileConfig, ConfigError> {
    let Some(path) = path else {
        return Ok(FileConfig::default());
    };
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.display().to_string(),
        source,
    })
}

/// Where the database is, from a file path or a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    /// An SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL server, by its `postgres://` URL (for several replicas on one directory).
    Postgres(String),
}

/// Parses `--database`: a file path, `sqlite://PATH`, `sqlite:PATH`, or a `postgres://` /
/// `postgresql://` URL.
pub fn parse_database(text: &str) -> Result<Database, ConfigError> {
    if let Some(path) = text
        .strip_prefix("sqlite://")
        .or_else(|| text.strip_prefix("sqlite:"))
    {
        if path.is_empty() {
            return Err(ConfigError::Invalid(format!(
                "--database {text:?}: the URL names no file"
            )));
        }
        return Ok(Database::Sqlite(PathBuf::from(path)));
    }
    if text.starts_with("postgres://") || text.starts_with("postgresql://") {
        return Ok(Database::Postgres(text.to_owned()));
    }
    if text.contains("://") {
        return Err(ConfigError::Invalid(format!(
            "--database {text:?}: unknown URL scheme (expected sqlite:// or postgres://)"
        )));
    }
    if text.is_empty() {
        return Err(ConfigError::Invalid("--database: empty path".into()));
    }
    Ok(Database::Sqlite(PathBuf::from(text)))
}

/// Seconds as a duration, refusing zero (a zero timeout would refuse every request).
pub fn seconds(name: &str, value: u64) -> Result<Duration, ConfigError> {
    if value == 0 {
        return Err(ConfigError::Invalid(format!(
            "{name} must be at least 1 second"
        )));
    }
    Ok(Duration::from_secs(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        assert_eq!(
            parse_database("./x.db").unwrap(),
            Database::Sqlite("./x.db".into())
        );
        assert_eq!(
            parse_database("sqlite:///tmp/x.db").unwrap(),
            Database::Sqlite("/tmp/x.db".into())
        );
        assert_eq!(
            parse_database("sqlite://x.db").unwrap(),
            Database::Sqlite("x.db".into())
        );
        assert_eq!(
            parse_database("postgres://h/db").unwrap(),
            Database::Postgres("postgres://h/db".into())
        );
        assert!(parse_database("mysql://h/db").is_err());
    }

    #[test]
    fn file_rejects_unknown_keys() {
        let err = toml::from_str::<FileConfig>("[server]\nlisten = \"127.0.0.1:1\"\nlistne = 3\n")
            .unwrap_err();
        assert!(err.to_string().contains("listne"), "{err}");
        let ok: FileConfig =
            toml::from_str("database = \"a.db\"\n[limits]\nmax_connections = 5\n").unwrap();
        assert_eq!(ok.limits.max_connections, Some(5));
    }

    #[test]
    fn front_door_keys() {
        let file: FileConfig = toml::from_str(
            "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"::1\"]\n[limits]\nidle_timeout_secs = 90\nmax_connections_per_address = 8\n",
        )
        .unwrap();
        assert_eq!(file.server.trusted_proxies, ["10.0.0.0/8", "::1"]);
        assert_eq!(file.limits.idle_timeout_secs, Some(90));
        assert_eq!(file.limits.max_connections_per_address, Some(8));
    }
}
