#![doc = include_str!("../README.md")]
//!
//! ## The command line
//!
//! ```text
//! scimd [--database DB] [--config FILE] serve [--listen ADDR] [--tls-cert F --tls-key F] ...
//! scimd [--database DB] tenant create NAME | list | delete NAME --yes
//! scimd [--database DB] token issue --tenant NAME [--label L] [--scope scim|workplace] | list --tenant NAME | revoke --tenant NAME ID
//! scimd [--database DB] migrate
//! ```
//!
//! Stable contract (scripts rely on it): `--database` is global (before or after the
//! subcommand), a file path or `sqlite://` URL; `tenant create NAME` prints exactly one line,
//! `{"tenant":"NAME","scim_base":"/t/NAME/scim/v2","token":"<secret>"}`; `serve` serves until
//! SIGTERM or Ctrl-C, and on an empty database first creates tenant `default`, whose token it
//! writes to `--bootstrap-token-file` (default `<database>.bootstrap-token`, mode 0600) and
//! prints only to a terminal. `token issue` makes a token for the SCIM endpoints (scope `scim`, the
//! default, for identity providers) or for the workplace API (`--scope workplace`, for
//! workplace administrators and booking front-ends); each is refused by the other's endpoints.
//! Tokens issued or revoked while a server runs take effect at once, because
//! the server checks every request's token in the database.

mod settings;

/// mimalloc instead of glibc's malloc: a request allocates and frees many small JSON nodes, and
/// under load glibc spent a third of the server's time in malloc, free and consolidation
/// (perf, page-of-100 scenario); mimalloc's per-thread free lists make that a small fraction.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use scim_server::{IpNet, Limits, Server, ServerConfig};
use scim_store::postgres::{PostgresOptions, PostgresStore};
use scim_store::sqlite::{Durability, SqliteOptions, SqliteStore};
use scim_store::{AdminStore, ResourceLimits, ResourceSchemas, Store, Tenant, TokenScope};
use serde_json::json;
use settings::{Database, FileConfig};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

/// Threads of tokio's blocking pool for password hashing and file I/O (the SQLite store's long
/// reads get one more per core: see `main`), and the idle read connections the SQLite store
/// keeps beyond one per core: reads run on the runtime's workers, at most one per worker at a
/// time, or as long reads, at most one per core by default, so this many always suffice.
const BLOCKING_THREADS: usize = 8;

/// The version and the commit it was built from (bins/scimd/build.rs).
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("SCIMD_COMMIT"), ")");

#[derive(Debug, Parser)]
#[command(
    name = "scimd",
    version = VERSION,
    about = "SCIM 2.0 provisioning server",
    propagate_version = true
)]
struct Cli {
    /// Database: a file path or sqlite:// URL [default: ./scimd.db].
    #[arg(long, global = true, env = "SCIMD_DATABASE")]
    database: Option<String>,

    /// TOML configuration file (flags > SCIMD_* environment > file > defaults).
    #[arg(long, global = true, env = "SCIMD_CONFIG")]
    config: Option<PathBuf>,

    /// Durability of acknowledged writes: full (fsync at commit) or normal [default: full].
    #[arg(long, global = true, env = "SCIMD_DURABILITY")]
    durability: Option<DurabilityArg>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DurabilityArg {
    Full,
    Normal,
}

/// A switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OnOff {
    On,
    Off,
}

/// The provisioning log's settings: flags over the `[request_log]` table over defaults.
fn request_log_config(
    args: &ServeArgs,
    file: &FileConfig,
) -> Result<scim_server::RequestLogConfig, CliError> {
    let section = &file.request_log;
    let mut config = scim_server::RequestLogConfig::default();
    config.enabled = match args.request_log {
        Some(switch) => switch == OnOff::On,
        None => section.enabled.unwrap_or(true),
    };
    if let Some(name) = args
        .request_log_capture
        .as_deref()
        .or(section.capture.as_deref())
    {
        config.capture = scim_server::BodyCapture::from_name(name).ok_or_else(|| {
            CliError::Usage(format!(
                "request_log capture {name:?}: one of all, errors, none"
            ))
        })?;
    }
    if let Some(kib) = args.request_log_max_body_kib.or(section.max_body_kib) {
        if kib == 0 || kib > 1024 {
            return Err(CliError::Usage(format!(
                "request_log max_body_kib {kib}: 1 to 1024"
            )));
        }
        config.max_body_bytes = kib * 1024;
    }
    if let Some(days) = args.request_log_retention_days.or(section.retention_days) {
        if days == 0 || days > 3660 {
            return Err(CliError::Usage(format!(
                "request_log retention_days {days}: 1 to 3660"
            )));
        }
        config.retention.max_age_seconds = i64::from(days) * 86_400;
    }
    if let Some(mib) = args.request_log_retention_mib.or(section.retention_mib) {
        if mib == 0 || mib > 1 << 30 {
            return Err(CliError::Usage(format!(
                "request_log retention_mib {mib}: at least 1"
            )));
        }
        config.retention.max_bytes = mib * 1024 * 1024;
    }
    if let Some(minutes) = args
        .sync_silent_after_minutes
        .or(section.silent_after_minutes)
    {
        if minutes == 0 || minutes > 525_600 {
            return Err(CliError::Usage(format!(
                "request_log silent_after_minutes {minutes}: 1 to 525600"
            )));
        }
        config.silent_after = std::time::Duration::from_secs(minutes * 60);
    }
    Ok(config)
}

/// What a token may be used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ScopeArg {
    /// The SCIM endpoints (`/t/{tenant}/scim/v2`), for identity providers.
    Scim,
    /// The workplace API (`/t/{tenant}/workplace/v1`), for workplace administrators.
    Workplace,
    /// The admin API (`/t/{tenant}/admin/v1`: the provisioning log, sync health, tokens,
    /// schemas) and the workplace API, for the tenant's operators.
    Admin,
}

impl From<ScopeArg> for TokenScope {
    fn from(scope: ScopeArg) -> TokenScope {
        match scope {
            ScopeArg::Scim => TokenScope::Scim,
            ScopeArg::Workplace => TokenScope::Workplace,
            ScopeArg::Admin => TokenScope::Admin,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve SCIM until SIGTERM or Ctrl-C.
    // Boxed: the serve flags outweigh every other command's many times over.
    Serve(Box<ServeArgs>),
    /// Manage tenants.
    #[command(subcommand)]
    Tenant(TenantCommand),
    /// Manage a tenant's bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Manage a tenant's own schemas: custom extensions and added attributes.
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// Manage server-wide operator credentials.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// Create or upgrade the database schema, then exit.
    Migrate,
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on, HOST:PORT, the host an IP address or a name such as localhost
    /// [default: 127.0.0.1:8080].
    #[arg(long, env = "SCIMD_LISTEN")]
    listen: Option<String>,
    /// Public origin for meta.location, e.g. https://scim.example.com [default: from Host].
    #[arg(long, env = "SCIMD_PUBLIC_URL")]
    public_url: Option<String>,
    /// Host names clients may send in Host, comma-separated: host or host:port (no port: any
    /// port); other hosts get 421 [default: the listen address's host, and localhost on
    /// loopback; with --public-url, any].
    #[arg(
        long,
        env = "SCIMD_ALLOWED_HOSTS",
        value_delimiter = ',',
        value_name = "HOST[:PORT],..."
    )]
    allowed_hosts: Vec<String>,
    /// Where the first run writes the bootstrap token (mode 0600) [default: next to the SQLite
    /// database, <database>.bootstrap-token; with PostgreSQL, ./scimd.bootstrap-token].
    #[arg(long, env = "SCIMD_BOOTSTRAP_TOKEN_FILE", value_name = "PATH")]
    bootstrap_token_file: Option<PathBuf>,
    /// TLS certificate chain (PEM); with --tls-key, serve HTTPS.
    #[arg(long, env = "SCIMD_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "SCIMD_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Log format [default: text].
    #[arg(long, env = "SCIMD_LOG_FORMAT")]
    log_format: Option<LogFormat>,
    /// Largest request body outside /Bulk, in bytes [default: 1048576].
    #[arg(long, env = "SCIMD_MAX_BODY_BYTES")]
    max_body_bytes: Option<usize>,
    /// Largest request head, in bytes [default: 16384].
    #[arg(long, env = "SCIMD_MAX_HEADER_BYTES")]
    max_header_bytes: Option<usize>,
    /// Seconds a client may take to send a request head [default: 10].
    #[arg(long, env = "SCIMD_HEADER_READ_TIMEOUT_SECS")]
    header_read_timeout_secs: Option<u64>,
    /// Seconds a connection may stay without an open request once it has sent one
    /// [default: 60].
    #[arg(long, env = "SCIMD_IDLE_TIMEOUT_SECS")]
    idle_timeout_secs: Option<u64>,
    /// Seconds one request may take [default: 30].
    #[arg(long, env = "SCIMD_REQUEST_TIMEOUT_SECS")]
    request_timeout_secs: Option<u64>,
    /// Most connections served at once [default: 1024].
    #[arg(long, env = "SCIMD_MAX_CONNECTIONS")]
    max_connections: Option<usize>,
    /// Most connections one client (IPv4 address or IPv6 /64) may hold; trusted proxies are
    /// exempt [default: 64].
    #[arg(long, env = "SCIMD_MAX_CONNECTIONS_PER_ADDRESS")]
    max_connections_per_address: Option<usize>,
    /// Load balancers in front of scimd, exempt from the per-address cap: IP addresses or
    /// CIDR networks, comma-separated or repeated, e.g. 10.0.0.0/8,2001:db8::/32 [default: none].
    #[arg(long, env = "SCIMD_TRUSTED_PROXIES", value_delimiter = ',')]
    trusted_proxies: Vec<IpNet>,
    /// filter.maxResults: the largest page [default: 1000].
    #[arg(long, env = "SCIMD_MAX_RESULTS")]
    max_results: Option<u32>,
    /// Largest resource the store keeps, in bytes of JSON (a Group's members excluded); a
    /// write that would make one larger is refused with 400 [default: 1048576].
    #[arg(long, env = "SCIMD_MAX_RESOURCE_BYTES")]
    max_resource_bytes: Option<usize>,
    /// Most values one multi-valued attribute of a resource may hold (a Group's members
    /// excluded); a write beyond it is refused with 400 [default: 10000].
    #[arg(long, env = "SCIMD_MAX_VALUES_PER_ATTRIBUTE")]
    max_values_per_attribute: Option<usize>,
    /// The provisioning log (every authenticated SCIM request, for the admin API): on or
    /// off [default: on].
    #[arg(long, env = "SCIMD_REQUEST_LOG", value_name = "on|off")]
    request_log: Option<OnOff>,
    /// Which request bodies the provisioning log keeps: all, errors (of failed requests
    /// only) or none [default: all].
    #[arg(
        long,
        env = "SCIMD_REQUEST_LOG_CAPTURE",
        value_name = "all|errors|none"
    )]
    request_log_capture: Option<String>,
    /// Bodies above this many KiB are cut in the log, with a marker [default: 64].
    #[arg(long, env = "SCIMD_REQUEST_LOG_MAX_BODY_KIB")]
    request_log_max_body_kib: Option<usize>,
    /// Each tenant's log keeps this many days [default: 30].
    #[arg(long, env = "SCIMD_REQUEST_LOG_RETENTION_DAYS")]
    request_log_retention_days: Option<u32>,
    /// Each tenant's log keeps at most this many MiB; the oldest entries go first
    /// [default: 1024].
    #[arg(long, env = "SCIMD_REQUEST_LOG_RETENTION_MIB")]
    request_log_retention_mib: Option<u64>,
    /// A SCIM token that used to call is reported silent after this many minutes without a
    /// request [default: 120].
    #[arg(long, env = "SCIMD_SYNC_SILENT_AFTER_MINUTES")]
    sync_silent_after_minutes: Option<u64>,
    /// The most bytes of resources one list or search page holds; a page stops early, with a
    /// smaller itemsPerPage, and always holds at least one resource [default: 4194304].
    #[arg(long, env = "SCIMD_MAX_PAGE_BYTES")]
    max_page_bytes: Option<usize>,
    /// PostgreSQL: milliseconds one SQL statement may run before the database stops it (503),
    /// 0 for no limit [default: the request timeout].
    #[arg(long, env = "SCIMD_STATEMENT_TIMEOUT_MS")]
    statement_timeout_ms: Option<u64>,
    /// PostgreSQL: milliseconds a request waits for a pooled connection when all are busy
    /// before it is answered 503 [default: 5000].
    #[arg(long, env = "SCIMD_POOL_WAIT_MS")]
    pool_wait_ms: Option<u64>,
}

#[derive(Debug, Subcommand)]
enum TenantCommand {
    /// Create a tenant and its first token; prints one JSON line.
    Create {
        /// The tenant's name: [a-z0-9-]{1,63}.
        name: String,
    },
    /// List tenants, one JSON line each.
    List,
    /// Delete a tenant's data: revokes every token and deletes every user and group.
    Delete {
        /// The tenant's name.
        name: String,
        /// Confirm.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Issue a token; prints one JSON line with the secret (shown only once).
    Issue {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// A label, e.g. the identity provider's name (recorded as the actor of its changes).
        #[arg(long, default_value = "cli")]
        label: String,
        /// What the token is for: scim (identity providers) or workplace (the workplace API).
        #[arg(long, value_enum, default_value = "scim")]
        scope: ScopeArg,
    },
    /// List a tenant's tokens (never their secrets), one JSON line each.
    List {
        /// The tenant.
        #[arg(long)]
        tenant: String,
    },
    /// Revoke a token; effective for the very next request.
    Revoke {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The token's id (from `token list`).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum OperatorCommand {
    /// Operator tokens: they may use any tenant's admin API (`/t/{tenant}/admin/v1`).
    #[command(subcommand)]
    Token(OperatorTokenCommand),
}

#[derive(Debug, Subcommand)]
enum OperatorTokenCommand {
    /// Issue an operator token; prints one JSON line with the secret (shown only once).
    Issue {
        /// A label, e.g. the operator's name (recorded as the actor, `operator:LABEL`).
        #[arg(long, default_value = "operator")]
        label: String,
    },
    /// List the operator tokens (never their secrets), one JSON line each.
    List,
    /// Revoke an operator token; effective for the very next request.
    Revoke {
        /// The token's id (from `operator token list`).
        id: String,
    },
}

#[derive(Debug, Subcommand)]
enum SchemaCommand {
    /// Replace the tenant's schemas with those in FILE...: schema resources in the RFC 7643
    /// section 7 form (one object, or an array of them, per file). A schema whose id is a
    /// served one (urn:ietf:params:scim:schemas:core:2.0:User or ...:Group) adds attributes
    /// to it; any other is an extension of the resource type its id ends with (...:User).
    /// Running servers use them from their next request. Prints one JSON line.
    Set {
        /// The tenant.
        #[arg(long)]
        tenant: String,
        /// The schema files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Print the tenant's schema documents as one JSON array (a file `schema set` takes).
    Show {
        /// The tenant.
        #[arg(long)]
        tenant: String,
    },
    /// Remove the tenant's own schemas. Stored values of their attributes stay in the
    /// resources, no longer served or matched.
    Clear {
        /// The tenant.
        #[arg(long)]
        tenant: String,
    },
}

/// The largest schema file `scimd schema set` reads: a tenant's documents are at most
/// 256 KiB in all (`scim_store::schemas::MAX_DOCUMENTS_BYTES`), with room for formatting.
const MAX_SCHEMA_FILE_BYTES: u64 = 1024 * 1024;

/// A failure the command reports on stderr before exiting with status 1.
#[derive(Debug, thiserror::Error)]
enum CliError {
    #[error("configuration: {0}")]
    Config(#[from] settings::ConfigError),
    #[error("store: {0}")]
    Store(#[from] scim_store::StoreError),
    #[error("server: {0}")]
    Server(#[from] scim_server::ServerError),
    #[error("{0}")]
    Usage(String),
    #[error("runtime: {0}")]
    Runtime(#[from] std::io::Error),
    /// Standard output could not be written; a reader that went away (`| head -1`) is a
    /// broken pipe, which `main` treats as a normal end.
    #[error("cannot write to standard output: {0}")]
    Output(std::io::Error),
}

/// Writes one line of a command's output to standard output. `println!` panics when the write
/// fails, and a reader that stops early (`scimd tenant list | head -1`) makes it fail with
/// EPIPE: Rust's runtime ignores SIGPIPE, so the write returns the error instead of the
/// signal ending the process. The error is returned, and `main` exits quietly with success on a
/// broken pipe, as `head` asked for no more (ripgrep and other well-behaved filters do the
/// same). Restoring SIGPIPE's default action instead would need `unsafe` and would also apply to
/// `serve`, whose bootstrap message must not kill a server whose stdout reader went away.
fn say(line: impl std::fmt::Display) -> Result<(), CliError> {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(CliError::Output)
}

fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    // A bounded blocking pool caps the threads (and their allocator heaps) under load; the
    // SQLite store's long reads (one per core at a time by default) run there too.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS + cores)
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("scimd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, &matches)) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader of our output has gone (`| head -1`): it has what it wanted.
        Err(CliError::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("scimd: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, matches: &ArgMatches) -> Result<(), CliError> {
    let file = settings::load_file(cli.config.as_deref())?;
    let log_format = match &cli.command {
        Command::Serve(args) => match (args.log_format, file.server.log_format.as_deref()) {
            (Some(format), _) => format,
            (None, Some("json")) => LogFormat::Json,
            (None, Some("text") | None) => LogFormat::Text,
            (None, Some(other)) => {
                return Err(CliError::Usage(format!(
                    "server.log_format {other:?}: expected \"text\" or \"json\""
                )));
            }
        },
        _ => LogFormat::Text,
    };
    init_logging(log_format, matches!(cli.command, Command::Serve(_)));
    let backend = open_store(&cli, &file).await?;
    let store = backend.store();
    let result = match cli.command {
        Command::Serve(args) => {
            let token_file = args
                .bootstrap_token_file
                .clone()
                .or_else(|| file.server.bootstrap_token_file.clone())
                .unwrap_or_else(|| backend.default_token_file());
            let startup = Startup {
                database: describe_database(
                    cli.database
                        .as_deref()
                        .or(file.database.as_deref())
                        .unwrap_or(settings::DEFAULT_DATABASE),
                ),
                sources: setting_sources(matches, &file),
            };
            serve(store, *args, &file, &token_file, &startup).await
        }
        Command::Migrate => say(backend.describe()),
        Command::Tenant(command) => tenant(&*store, command).await,
        Command::Token(command) => token(&*store, command).await,
        Command::Schema(command) => schema(&*store, command).await,
        Command::Operator(OperatorCommand::Token(command)) => {
            operator_token(&*store, command).await
        }
    };
    backend.close();
    result
}

/// The store `--database` chose. Both are migrated when opened.
enum Backend {
    Sqlite(Arc<SqliteStore>),
    Postgres(Arc<PostgresStore>),
}

impl Backend {
    /// The store, with its workplace half: the server needs both, the CLI only `Store`.
    fn store(&self) -> Arc<dyn AdminStore> {
        match self {
            Backend::Sqlite(store) => store.clone(),
            Backend::Postgres(store) => store.clone(),
        }
    }

    /// What `scimd migrate` prints: the database and the schema version it is now at.
    fn describe(&self) -> serde_json::Value {
        match self {
            Backend::Sqlite(store) => json!({
                "database": store.path().display().to_string(),
                "schema_version": scim_store::sqlite::SCHEMA_VERSION,
            }),
            Backend::Postgres(_) => json!({
                "database": "postgres",
                "schema_version": scim_store::postgres::SCHEMA_VERSION,
            }),
        }
    }

    /// Where the first run writes the bootstrap token by default: next to the SQLite
    /// database, whose directory the operator already keeps private (it holds the personal
    /// data); with PostgreSQL, which has no such directory, in the working directory.
    fn default_token_file(&self) -> PathBuf {
        match self {
            Backend::Sqlite(store) => {
                let mut name = store.path().as_os_str().to_owned();
                name.push(".bootstrap-token");
                PathBuf::from(name)
            }
            Backend::Postgres(_) => PathBuf::from("scimd.bootstrap-token"),
        }
    }

    fn close(&self) {
        if let Backend::Sqlite(store) = self {
            store.close();
        }
    }
}

fn init_logging(format: LogFormat, serving: bool) {
    use tracing_subscriber::EnvFilter;
    let default = if serving { "info" } else { "warn" };
    let filter = EnvFilter::try_from_env("SCIMD_LOG").unwrap_or_else(|_| EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// What one resource may hold: `serve`'s flags, else the file's `[limits]`, else the store's
/// defaults. Other commands take the file's (they write through the same checks).
fn resource_limits(cli: &Cli, file: &FileConfig) -> Result<ResourceLimits, CliError> {
    let defaults = ResourceLimits::default();
    let (bytes, values) = match &cli.command {
        Command::Serve(args) => (args.max_resource_bytes, args.max_values_per_attribute),
        _ => (None, None),
    };
    let limits = ResourceLimits {
        max_bytes: bytes
            .or(file.limits.max_resource_bytes)
            .unwrap_or(defaults.max_bytes),
        max_values: values
            .or(file.limits.max_values_per_attribute)
            .unwrap_or(defaults.max_values),
    };
    // Below these, ordinary Users no longer fit: almost certainly a typo.
    if limits.max_bytes < 4096 {
        return Err(CliError::Usage(format!(
            "max_resource_bytes {}: at least 4096",
            limits.max_bytes
        )));
    }
    if limits.max_values < 10 {
        return Err(CliError::Usage(format!(
            "max_values_per_attribute {}: at least 10",
            limits.max_values
        )));
    }
    Ok(limits)
}

async fn open_store(cli: &Cli, file: &FileConfig) -> Result<Backend, CliError> {
    let text = cli
        .database
        .clone()
        .or_else(|| file.database.clone())
        .unwrap_or_else(|| settings::DEFAULT_DATABASE.to_owned());
    let database = settings::parse_database(&text)?;
    let durability = match (cli.durability, file.durability.as_deref()) {
        (Some(DurabilityArg::Full), _) | (None, Some("full") | None) => Durability::Full,
        (Some(DurabilityArg::Normal), _) | (None, Some("normal")) => Durability::Normal,
        (None, Some(other)) => {
            return Err(CliError::Usage(format!(
                "durability {other:?}: expected \"full\" or \"normal\""
            )));
        }
    };
    let registry = scim_schema::SchemaRegistry::new();
    let schemas = ResourceSchemas::from_registry(&registry)
        .ok_or_else(|| CliError::Usage("the schema registry lacks User or Group".into()))?
        .with_limits(resource_limits(cli, file)?);
    let path = match database {
        Database::Sqlite(path) => path,
        Database::Postgres(url) => {
            let options = postgres_options(cli, file)?;
            let store = PostgresStore::connect(&url, schemas, options).await?;
            return Ok(Backend::Postgres(Arc::new(store)));
        }
    };
    // A smaller page cache than the store's default: every connection (the writer and each
    // idle reader) has its own, and a provisioning directory's hot set is small.
    let options = SqliteOptions {
        durability,
        cache_kib: file.sqlite.cache_kib.unwrap_or(4 * 1024),
        // One read at a time per runtime worker (one per CPU), plus the blocking pool's.
        max_idle_readers: file.sqlite.readers.unwrap_or_else(|| {
            BLOCKING_THREADS + std::thread::available_parallelism().map_or(1, |n| n.get())
        }),
        // Only the commands that set a database up create one: any other, run from the wrong
        // directory or with a mistyped --database, must say the database is missing instead
        // of creating an empty one and then reporting that the tenant does not exist.
        create_if_missing: matches!(
            cli.command,
            Command::Serve(_) | Command::Migrate | Command::Tenant(TenantCommand::Create { .. })
        ),
        long_reads: match file.sqlite.long_reads {
            Some(0) => {
                return Err(CliError::Usage(
                    "sqlite.long_reads must be at least 1".into(),
                ));
            }
            Some(n) => n,
            None => SqliteOptions::default().long_reads,
        },
        ..SqliteOptions::default()
    };
    let store = SqliteStore::open(&path, schemas, options)?;
    // New databases are created 0600; an older or copied one keeps its mode, so say so.
    for exposed in store.exposed_files() {
        tracing::warn!(
            "{} has mode {:o}: other users may read it, and it holds personal data and password hashes; chmod 600 it",
            exposed.path.display(),
            exposed.mode
        );
    }
    Ok(Backend::Sqlite(Arc::new(store)))
}

/// The PostgreSQL store's options. Only `serve` holds statements to a timeout, by default
/// its request timeout: a statement still running when its request was given up would hold
/// its connection and the database's CPU for nothing. The CLI's commands (a tenant's
/// deletion, a migration) take as long as they take.
fn postgres_options(cli: &Cli, file: &FileConfig) -> Result<PostgresOptions, CliError> {
    let defaults = PostgresOptions::default();
    let Command::Serve(args) = &cli.command else {
        return Ok(PostgresOptions {
            statement_timeout: None,
            ..defaults
        });
    };
    let statement_timeout = match args
        .statement_timeout_ms
        .or(file.postgres.statement_timeout_ms)
    {
        Some(0) => None,
        Some(ms) => Some(std::time::Duration::from_millis(ms)),
        None => Some(
            match args
                .request_timeout_secs
                .or(file.limits.request_timeout_secs)
            {
                Some(s) => settings::seconds("request_timeout_secs", s)?,
                None => Limits::default().request_timeout,
            },
        ),
    };
    let pool_wait = match args.pool_wait_ms.or(file.postgres.pool_wait_ms) {
        Some(0) => {
            return Err(CliError::Usage(
                "pool_wait_ms must be at least 1 (a request must be able to wait for a connection)"
                    .into(),
            ));
        }
        Some(ms) => Some(std::time::Duration::from_millis(ms)),
        None => defaults.pool_wait,
    };
    Ok(PostgresOptions {
        statement_timeout,
        pool_wait,
        ..defaults
    })
}

/// The addresses `--listen` names: an IP address and port as given, or a host name resolved
/// (e.g. `localhost:8080`, which may give both `::1` and `127.0.0.1`).
async fn resolve_listen(listen: &str) -> Result<Vec<SocketAddr>, CliError> {
    if let Ok(address) = listen.parse::<SocketAddr>() {
        return Ok(vec![address]);
    }
    let invalid = |why: String| {
        CliError::Usage(format!(
            "listen address {listen:?}: {why}; expected HOST:PORT, e.g. 127.0.0.1:8080 or localhost:8080"
        ))
    };
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host(listen)
        .await
        .map_err(|e| invalid(format!("cannot resolve it: {e}")))?
        .collect();
    if addresses.is_empty() {
        return Err(invalid("the name has no address".into()));
    }
    Ok(addresses)
}

/// Binds the first of `addresses` that can be bound; the error names the address and why
/// (most often another process listening there).
async fn bind_first(addresses: &[SocketAddr]) -> Result<tokio::net::TcpListener, CliError> {
    let mut failure = CliError::Usage("no address to listen on".into());
    for address in addresses {
        match scim_server::bind(*address).await {
            Ok(listener) => return Ok(listener),
            Err(scim_server::ServerError::Io(e)) => {
                let why = match e.kind() {
                    std::io::ErrorKind::AddrInUse => {
                        "address in use (is another scimd or another server running there?)"
                            .to_owned()
                    }
                    std::io::ErrorKind::AddrNotAvailable => {
                        "no such address on this machine".to_owned()
                    }
                    std::io::ErrorKind::PermissionDenied => {
                        "permission denied (ports below 1024 need privileges)".to_owned()
                    }
                    _ => e.to_string(),
                };
                failure = CliError::Usage(format!("cannot listen on {address}: {why}"));
            }
            Err(other) => failure = CliError::Server(other),
        }
    }
    Err(failure)
}

async fn tenant_named(store: &dyn Store, name: &str) -> Result<Tenant, CliError> {
    store
        .tenant_by_name(name)
        .await?
        .ok_or_else(|| CliError::Usage(format!("no tenant named {name:?}")))
}

async fn tenant(store: &dyn Store, command: TenantCommand) -> Result<(), CliError> {
    match command {
        TenantCommand::Create { name } => {
            let tenant = store.create_tenant(&name).await?;
            let token = store
                .issue_token(&tenant.id, "initial", TokenScope::Scim)
                .await?;
            say(
                json!({"tenant": tenant.name, "scim_base": scim_server::tenant_base_path(&tenant.name), "token": token.secret}),
            )?;
        }
        TenantCommand::List => {
            for tenant in store.list_tenants().await? {
                say(
                    json!({"tenant": tenant.name, "scim_base": scim_server::tenant_base_path(&tenant.name), "created": tenant.created.to_string()}),
                )?;
            }
        }
        TenantCommand::Delete { name, yes } => {
            if !yes {
                return Err(CliError::Usage(format!(
                    "tenant delete removes {name:?} with every user, group, token, feed entry and workplace record; add --yes to confirm"
                )));
            }
            let tenant = tenant_named(store, &name).await?;
            // One transaction: tokens, users, groups, feed and workplace data go together, and
            // the name is free again.
            let deletion = store.delete_tenant(&tenant.id).await?;
            let (revoked, deleted) = (deletion.tokens_revoked, deletion.resources_deleted);
            say(
                json!({"tenant": tenant.name, "tokens_revoked": revoked, "resources_deleted": deleted}),
            )?;
        }
    }
    Ok(())
}

async fn token(store: &dyn Store, command: TokenCommand) -> Result<(), CliError> {
    match command {
        TokenCommand::Issue {
            tenant,
            label,
            scope,
        } => {
            let tenant = tenant_named(store, &tenant).await?;
            let scope = TokenScope::from(scope);
            let token = store.issue_token(&tenant.id, &label, scope).await?;
            say(
                json!({"tenant": tenant.name, "id": token.id, "label": label, "scope": scope.as_str(), "token": token.secret}),
            )?;
        }
        TokenCommand::List { tenant } => {
            let tenant = tenant_named(store, &tenant).await?;
            for token in store.list_tokens(&tenant.id).await? {
                say(token_line(&token))?;
            }
        }
        TokenCommand::Revoke { tenant, id } => {
            let tenant = tenant_named(store, &tenant).await?;
            if !store.revoke_token(&tenant.id, &id).await? {
                return Err(CliError::Usage(format!(
                    "tenant {:?} has no active token {id:?}",
                    tenant.name
                )));
            }
            say(json!({"tenant": tenant.name, "revoked": id}))?;
        }
    }
    Ok(())
}

/// Prints a token's metadata as `token list` and `operator token list` do.
fn token_line(token: &scim_store::TokenInfo) -> serde_json::Value {
    json!({
        "id": token.id,
        "label": token.label,
        "scope": token.scope.as_str(),
        "created": token.created.to_string(),
        "revoked": token.revoked.map(|t| t.to_string()),
        "last_used": token.last_used.map(|t| t.to_string()),
    })
}

async fn operator_token(
    store: &dyn AdminStore,
    command: OperatorTokenCommand,
) -> Result<(), CliError> {
    match command {
        OperatorTokenCommand::Issue { label } => {
            let token = store.issue_operator_token(&label).await?;
            say(
                json!({"id": token.id, "label": label, "scope": "operator", "token": token.secret}),
            )?;
        }
        OperatorTokenCommand::List => {
            for token in store.list_operator_tokens().await? {
                let mut line = token_line(&token);
                line["scope"] = json!("operator");
                say(line)?;
            }
        }
        OperatorTokenCommand::Revoke { id } => {
            if !store.revoke_operator_token(&id).await? {
                return Err(CliError::Usage(format!(
                    "there is no active operator token {id:?}"
                )));
            }
            say(json!({"revoked": id}))?;
        }
    }
    Ok(())
}

async fn schema(store: &dyn Store, command: SchemaCommand) -> Result<(), CliError> {
    let (tenant, documents) = match command {
        SchemaCommand::Show { tenant } => {
            let tenant = tenant_named(store, &tenant).await?;
            let schemas = store.tenant_schemas(&tenant.id).await?;
            let text = serde_json::to_string_pretty(&schemas.documents)
                .map_err(|e| CliError::Usage(format!("cannot print the schemas: {e}")))?;
            return say(text);
        }
        SchemaCommand::Clear { tenant } => (tenant, Vec::new()),
        SchemaCommand::Set { tenant, files } => {
            let mut documents = Vec::with_capacity(files.len());
            for file in &files {
                documents.push(read_schema_file(file)?);
            }
            (tenant, documents)
        }
    };
    let tenant = tenant_named(store, &tenant).await?;
    let schemas = store.set_tenant_schemas(&tenant.id, documents).await?;
    let ids: Vec<&str> = schemas
        .documents
        .iter()
        .filter_map(|d| d.get("id").and_then(serde_json::Value::as_str))
        .collect();
    say(json!({"tenant": tenant.name, "version": schemas.version, "schemas": ids}))
}

/// One schema file as JSON, read within [`MAX_SCHEMA_FILE_BYTES`]; errors name the file.
fn read_schema_file(path: &Path) -> Result<serde_json::Value, CliError> {
    let shown = path.display();
    let file = std::fs::File::open(path)
        .map_err(|e| CliError::Usage(format!("cannot read schema file {shown}: {e}")))?;
    let mut text = String::new();
    std::io::Read::read_to_string(
        &mut std::io::Read::take(file, MAX_SCHEMA_FILE_BYTES + 1),
        &mut text,
    )
    .map_err(|e| CliError::Usage(format!("cannot read schema file {shown}: {e}")))?;
    if text.len() as u64 > MAX_SCHEMA_FILE_BYTES {
        return Err(CliError::Usage(format!(
            "schema file {shown} is larger than {MAX_SCHEMA_FILE_BYTES} bytes"
        )));
    }
    serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("schema file {shown} is not JSON: {e}")))
}

/// What the start-up log line says besides the listener.
struct Startup {
    /// The database, without credentials.
    database: String,
    /// Where each setting came from.
    sources: String,
}

/// The database for the log: an SQLite path, or a PostgreSQL URL's host and database name
/// (never its user or password).
fn describe_database(text: &str) -> String {
    match settings::parse_database(text) {
        Ok(Database::Sqlite(path)) => path.display().to_string(),
        Ok(Database::Postgres(url)) => {
            let rest = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
            let rest = rest.split(['?', '#']).next().unwrap_or("");
            let (authority, name) = rest.split_once('/').unwrap_or((rest, ""));
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            format!("postgres://{host}/{name}")
        }
        Err(_) => "(invalid)".to_owned(),
    }
}

/// Where each `serve` setting came from, as `name=flag|env|file|default` pairs: clap knows
/// flags and environment variables; the file's keys are the ones it sets.
fn setting_sources(matches: &ArgMatches, file: &FileConfig) -> String {
    let in_file = file.keys_set();
    let serve = matches.subcommand_matches("serve").unwrap_or(matches);
    let mut sources = Vec::new();
    let command = Cli::command();
    let global = command
        .get_arguments()
        .map(|arg| (arg.get_id().as_str(), matches));
    let serve_command = command.find_subcommand("serve");
    let local = serve_command
        .into_iter()
        .flat_map(|c| c.get_arguments())
        .map(|arg| (arg.get_id().as_str(), serve));
    for (id, found) in global.chain(local) {
        if matches!(id, "help" | "version" | "config") {
            continue;
        }
        let source = match found.value_source(id) {
            Some(ValueSource::CommandLine) => "flag",
            Some(ValueSource::EnvVariable) => "env",
            _ if in_file.iter().any(|key| key.rsplit('.').next() == Some(id)) => "file",
            _ => "default",
        };
        sources.push(format!("{id}={source}"));
    }
    // Settings only the file has (no flag): set there, or default.
    for key in in_file {
        let name = key.rsplit('.').next().unwrap_or(&key);
        if !sources.iter().any(|s| s.split('=').next() == Some(name)) {
            sources.push(format!("{key}=file"));
        }
    }
    sources.join(" ")
}

async fn serve(
    store: Arc<dyn AdminStore>,
    args: ServeArgs,
    file: &FileConfig,
    token_file: &Path,
    startup: &Startup,
) -> Result<(), CliError> {
    let request_log = request_log_config(&args, file)?;
    let defaults = Limits::default();
    let limits = &file.limits;
    let limits = Limits {
        max_body_bytes: args
            .max_body_bytes
            .or(limits.max_body_bytes)
            .unwrap_or(defaults.max_body_bytes),
        max_header_bytes: args
            .max_header_bytes
            .or(limits.max_header_bytes)
            .unwrap_or(defaults.max_header_bytes),
        header_read_timeout: match args
            .header_read_timeout_secs
            .or(limits.header_read_timeout_secs)
        {
            Some(s) => settings::seconds("header_read_timeout_secs", s)?,
            None => defaults.header_read_timeout,
        },
        idle_timeout: match args.idle_timeout_secs.or(limits.idle_timeout_secs) {
            Some(s) => settings::seconds("idle_timeout_secs", s)?,
            None => defaults.idle_timeout,
        },
        request_timeout: match args.request_timeout_secs.or(limits.request_timeout_secs) {
            Some(s) => settings::seconds("request_timeout_secs", s)?,
            None => defaults.request_timeout,
        },
        max_connections: args
            .max_connections
            .or(limits.max_connections)
            .unwrap_or(defaults.max_connections),
        max_connections_per_address: match args
            .max_connections_per_address
            .or(limits.max_connections_per_address)
        {
            Some(0) => {
                return Err(CliError::Usage(
                    "max_connections_per_address must be at least 1".into(),
                ));
            }
            Some(n) => n,
            None => defaults.max_connections_per_address,
        },
        shutdown_grace: match limits.shutdown_grace_secs {
            Some(s) => settings::seconds("shutdown_grace_secs", s)?,
            None => defaults.shutdown_grace,
        },
    };
    let trusted_proxies = if args.trusted_proxies.is_empty() {
        file.server
            .trusted_proxies
            .iter()
            .map(|text| text.parse::<IpNet>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| CliError::Usage(format!("server.trusted_proxies: {e}")))?
    } else {
        args.trusted_proxies
    };
    let base = ServerConfig::default();
    let config = ServerConfig {
        public_base_url: args.public_url.or_else(|| file.server.public_url.clone()),
        allowed_hosts: if args.allowed_hosts.is_empty() {
            file.server.allowed_hosts.clone().unwrap_or_default()
        } else {
            args.allowed_hosts
        }
        .into_iter()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .collect(),
        limits,
        trusted_proxies,
        max_results: args
            .max_results
            .or(file.scim.max_results)
            .unwrap_or(base.max_results),
        default_count: file.scim.default_count.unwrap_or(base.default_count),
        max_page_bytes: args
            .max_page_bytes
            .or(file.scim.max_page_bytes)
            .unwrap_or(base.max_page_bytes),
        bulk_max_operations: file
            .scim
            .bulk_max_operations
            .unwrap_or(base.bulk_max_operations),
        bulk_max_payload: file.scim.bulk_max_payload.unwrap_or(base.bulk_max_payload),
        strict_filters: file.scim.strict_filters.unwrap_or(base.strict_filters),
        request_log,
        ..base
    };
    scim_server::check_config(&config)?;
    let tls_cert = args.tls_cert.or_else(|| file.server.tls_cert.clone());
    let tls_key = args.tls_key.or_else(|| file.server.tls_key.clone());
    let tls = match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => Some(scim_server::load_tls_config(&cert, &key)?),
        (None, None) => None,
        _ => {
            return Err(CliError::Usage(
                "TLS needs both a certificate and a key (--tls-cert, --tls-key)".into(),
            ));
        }
    };
    let listen = args
        .listen
        .clone()
        .or_else(|| file.server.listen.clone())
        .unwrap_or_else(|| settings::DEFAULT_LISTEN.to_owned());
    let addresses = resolve_listen(&listen).await?;
    // Before binding, and before the first run creates a tenant: a server that will not start
    // must leave nothing behind, and must never listen on every interface unchecked. Every
    // address the name resolves to is checked, whichever is bound.
    for address in &addresses {
        scim_server::check_listen_address(&config, *address).map_err(explain)?;
    }
    let listener = bind_first(&addresses).await?;
    let local = listener.local_addr()?;

    // First run: give the operator something to connect an identity provider to.
    if store.list_tenants().await?.is_empty() {
        let scheme = if tls.is_some() { "https" } else { "http" };
        let origin = config
            .public_base_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{local}"));
        bootstrap(&*store, token_file, &origin).await?;
    }

    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        commit = env!("SCIMD_COMMIT"),
        database = %startup.database,
        listen = %local,
        tls = tls.is_some(),
        sources = %startup.sources,
        "starting"
    );
    let server = Server::new(
        store.clone(),
        scim_schema::SchemaRegistry::new(),
        config,
        tls,
    )?;
    server
        .run(listener, scim_server::shutdown_signal())
        .await
        .map_err(explain)?;
    Ok(())
}

/// Creates tenant `default` and its first token. The token goes to `token_file` (mode 0600),
/// not to stdout, which journald, container runtimes and CI keep where others can read it;
/// only an operator at a terminal also sees it printed.
async fn bootstrap(store: &dyn Store, token_file: &Path, origin: &str) -> Result<(), CliError> {
    use std::io::{IsTerminal, Write};
    let shown = std::path::absolute(token_file).unwrap_or_else(|_| token_file.to_owned());
    let cannot = |e: std::io::Error| {
        CliError::Usage(format!(
            "cannot write the bootstrap token to {}: {e}; choose another path with --bootstrap-token-file",
            shown.display()
        ))
    };
    // A fresh file next to the target, created 0600 before the token exists (a failure here
    // leaves no tenant behind), then renamed over the target: an existing file or link at the
    // target is replaced, never written through.
    let mut staging_name = token_file.as_os_str().to_owned();
    staging_name.push(format!(".{}.tmp", std::process::id()));
    let staging = PathBuf::from(staging_name);
    let mut out = private_file(&staging).map_err(cannot)?;
    let issued = async {
        let tenant = store.create_tenant("default").await?;
        Ok::<_, CliError>(
            store
                .issue_token(&tenant.id, "initial", TokenScope::Scim)
                .await?,
        )
    }
    .await;
    let token = match issued {
        Ok(token) => token,
        Err(e) => {
            let _ = std::fs::remove_file(&staging);
            return Err(e);
        }
    };
    let written = writeln!(out, "{}", token.secret)
        .and_then(|()| out.sync_all())
        .and_then(|()| std::fs::rename(&staging, token_file));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&staging);
        return Err(CliError::Usage(format!(
            "cannot write the bootstrap token to {}: {e}; `scimd token issue --tenant default` makes one",
            shown.display()
        )));
    }
    let mut message = format!(
        "Created tenant \"default\". Give your identity provider:\n  SCIM base URL: {}{}",
        origin.trim_end_matches('/'),
        scim_server::tenant_base_path("default")
    );
    if std::io::stdout().is_terminal() {
        message.push_str(&format!("\n  Bearer token:  {}", token.secret));
    }
    message.push_str(&format!(
        "\n  Bearer token file: {} (readable by this user only)\n\
         Delete the file once the token is in your identity provider; \
         `scimd token issue --tenant default` makes another.",
        shown.display()
    ));
    // Best effort: the token is safe in its file, and a server must not stop (or panic, as
    // `println!` would) because nobody reads its standard output any more.
    let _ = say(message);
    Ok(())
}

/// Creates `path` readable and writable by its owner only; fails if anything is there.
fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// A server error in the words of scimd's settings: the server crate names its
/// configuration fields, the operator needs the flags, variables and keys.
fn explain(error: scim_server::ServerError) -> CliError {
    match error {
        scim_server::ServerError::UnrestrictedHost { address } => CliError::Usage(format!(
            "refusing to serve on {address}: that is every interface, so scimd cannot tell the host names clients use from a forged Host header, which it would copy into the links of its responses.\n  \
             Set --public-url (SCIMD_PUBLIC_URL, [server] public_url) to the origin clients use, e.g. https://scim.example.com,\n  \
             or --allowed-hosts (SCIMD_ALLOWED_HOSTS, [server] allowed_hosts) to the host names they may send, e.g. scim.example.com,10.0.0.5:8080,\n  \
             or listen on one address, e.g. --listen 127.0.0.1:8080."
        )),
        other => CliError::Server(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_logged_database_never_holds_a_password() {
        assert_eq!(
            describe_database("postgres://scimd:hunter2@db.internal:5432/scim?sslmode=require"),
            "postgres://db.internal:5432/scim"
        );
        assert_eq!(
            describe_database("sqlite:///var/lib/scimd/scimd.db"),
            "/var/lib/scimd/scimd.db"
        );
    }

    fn issue(args: &[&str]) -> Result<(String, TokenScope), String> {
        let mut argv = vec!["scimd", "token", "issue", "--tenant", "acme"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .command
        {
            Command::Token(TokenCommand::Issue { label, scope, .. }) => Ok((label, scope.into())),
            other => Err(format!("parsed as {other:?}")),
        }
    }

    #[test]
    fn trusted_proxies_are_a_list_and_a_bad_one_is_named() {
        let cli = Cli::try_parse_from([
            "scimd",
            "serve",
            "--trusted-proxies",
            "10.0.0.0/8,::1",
            "--trusted-proxies",
            "192.0.2.7",
        ])
        .unwrap();
        let Command::Serve(args) = cli.command else {
            panic!("not serve: {cli:?}");
        };
        let listed: Vec<String> = args.trusted_proxies.iter().map(|n| n.to_string()).collect();
        assert_eq!(listed, ["10.0.0.0/8", "::1/128", "192.0.2.7/32"]);
        let refused = Cli::try_parse_from(["scimd", "serve", "--trusted-proxies", "10.0.0.0/33"])
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("--trusted-proxies") && refused.contains("\"10.0.0.0/33\""),
            "{refused}"
        );
    }

    #[test]
    fn token_issue_scope_defaults_to_scim() {
        assert_eq!(issue(&[]), Ok(("cli".to_owned(), TokenScope::Scim)));
        assert_eq!(
            issue(&["--scope", "workplace", "--label", "facilities"]),
            Ok(("facilities".to_owned(), TokenScope::Workplace))
        );
        assert_eq!(
            issue(&["--scope", "admin", "--label", "ops"]),
            Ok(("ops".to_owned(), TokenScope::Admin))
        );
        let refused = issue(&["--scope", "root"]).unwrap_err();
        assert!(refused.contains("root"), "{refused}");
    }
}
