//! The provisioning log's recording side: what each authenticated request to a tenant's SCIM
//! endpoints sent and got, handed to the store off the request path.
//!
//! A request's [`Capture`] is made once it has authenticated (so that nobody without a token
//! can fill a tenant's log) and completed after its answer; [`RequestLogSink::record`] queues it
//! without waiting (a full queue drops the entry and counts it: the SCIM answer is never
//! delayed or failed by its log). The log's own thread drains the queue every [`DRAIN_EVERY`]
//! and, once [`BATCH`] entries are waiting or the oldest has waited [`BATCH_WAIT`], redacts
//! their bodies ([`redact`]) and appends them in one store write, so an entry is readable
//! within a second of its answer. Another task prunes every tenant's log
//! to its [`Retention`] in short steps. An entry still queued when the process dies is lost;
//! that is accepted and documented (docs/admin-api.md), a SCIM write never is.

use crate::context::bounded;
use crate::metrics::Metrics;
use bytes::Bytes;
use scim_schema::{DateTime, Mutability, Returned, Schema};
use scim_store::admin::{AdminStore, MAX_DETAIL_BYTES, MAX_PATH_BYTES, RequestRecord, Retention};
use scim_store::{ResourceKind, TenantId, TenantSchemas};
use serde_json::Value;
use std::collections::BTreeSet;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The most entries one store write appends: one segment. Not more: a batch is converted and
/// encoded on the log's thread, on a core that may also answer requests, and 4,096 entries
/// held it for a millisecond and a half and a megabyte and a half of memory; 512 hold it for a
/// fifth of that. Not fewer: a store write costs about the same for one entry or hundreds.
const BATCH: usize = 512;
/// The longest an entry waits for its batch to fill: entries are readable within a second.
const BATCH_WAIT: Duration = Duration::from_millis(400);
/// How often the queue is drained into the batch.
const DRAIN_EVERY: Duration = Duration::from_millis(100);
/// How often the log is pruned.
const PRUNE_EVERY: Duration = Duration::from_secs(60);
/// The most entries one pruning step removes (a step is a few short store writes).
const PRUNE_STEP: usize = 5_000;

/// What replaces a secret value in a stored body.
pub const REDACTED: &str = "[redacted]";

/// Which request bodies the log keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum BodyCapture {
    /// Every request's body, and error answers' bodies (the default).
    #[default]
    All,
    /// Bodies of requests that failed only.
    Errors,
    /// No bodies: time, caller, method, path, status and error only.
    None,
}

impl BodyCapture {
    /// The mode named `name` (`all`, `errors`, `none`).
    pub fn from_name(name: &str) -> Option<BodyCapture> {
        match name {
            "all" => Some(BodyCapture::All),
            "errors" => Some(BodyCapture::Errors),
            "none" => Some(BodyCapture::None),
            _ => None,
        }
    }
}

/// The provisioning log's settings ([`crate::ServerConfig::request_log`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestLogConfig {
    /// Whether requests are logged at all (default on).
    pub enabled: bool,
    /// Which bodies are kept.
    pub capture: BodyCapture,
    /// Bodies above this many bytes (after redaction) are cut, with a marker (default 64 KiB).
    pub max_body_bytes: usize,
    /// How much of its log each tenant keeps.
    pub retention: Retention,
    /// A token that used to call is `silent` after this long without a request (default 2 h).
    pub silent_after: Duration,
    /// Entries waiting to be written at most; beyond it an entry is dropped and counted.
    pub queue: usize,
}

impl Default for RequestLogConfig {
    fn default() -> Self {
        RequestLogConfig {
            enabled: true,
            capture: BodyCapture::All,
            max_body_bytes: 64 * 1024,
            retention: Retention::default(),
            silent_after: Duration::from_secs(2 * 3600),
            queue: 16_384,
        }
    }
}

/// Where the SCIM service's body reader leaves the bytes it read, for the log.
#[derive(Debug, Clone, Default)]
pub(crate) struct BodySlot(Arc<OnceLock<Bytes>>);

impl BodySlot {
    /// Keeps a copy of the body. Not a clone of `bytes`: a one-chunk body is a slice of the
    /// connection's read buffer, and holding it until the log's batch is written (up to half a
    /// second) would stop the connection from reusing that buffer: every request would then
    /// allocate and fault in a fresh one, which cost a third more CPU per PATCH (a 100-byte
    /// body pinning kilobytes) and tripled the server's peak memory on `scripts/load.sh`.
    pub(crate) fn keep(&self, bytes: &Bytes) {
        let _ = self.0.set(Bytes::copy_from_slice(bytes));
    }
}

/// An authenticated request being logged.
///
/// Its texts (request id, token id and label, path) share one buffer: one allocation per
/// request, not four. A capture is made on an async worker and freed on the log's thread, and
/// an allocation freed on another thread is the dearest kind (the worker's allocator must later
/// collect it from that thread's free list, cold): the worker's allocations were the largest
/// share of what the log cost a GET (docs/admin-api.md).
pub(crate) struct Capture {
    pub texts: CaptureTexts,
    pub tenant: TenantId,
    pub method: http::Method,
    /// Where, in the path, the part below the SCIM base starts (`/Users/42`).
    pub below_base: usize,
    pub at: DateTime,
    pub schemas: Arc<TenantSchemas>,
    /// Where the body is left, for a method that has one.
    pub body: Option<BodySlot>,
}

/// A capture's texts in one buffer, one after another.
pub(crate) struct CaptureTexts {
    buffer: String,
    /// Where the request id, the token id and the token label end; the path runs to the end.
    ends: [usize; 3],
}

impl CaptureTexts {
    pub(crate) fn new(
        request_id: &str,
        token_id: &str,
        token_label: &str,
        path: &str,
    ) -> CaptureTexts {
        let mut buffer = String::with_capacity(
            request_id.len() + token_id.len() + token_label.len() + path.len(),
        );
        let mut ends = [0; 3];
        for (end, text) in ends.iter_mut().zip([request_id, token_id, token_label]) {
            buffer.push_str(text);
            *end = buffer.len();
        }
        buffer.push_str(path);
        CaptureTexts { buffer, ends }
    }

    fn part(&self, start: usize, end: usize) -> &str {
        self.buffer.get(start..end).unwrap_or("")
    }

    pub(crate) fn request_id(&self) -> &str {
        self.part(0, self.ends[0])
    }

    pub(crate) fn token_id(&self) -> &str {
        self.part(self.ends[0], self.ends[1])
    }

    pub(crate) fn token_label(&self) -> &str {
        self.part(self.ends[1], self.ends[2])
    }

    /// The path and query, below the server's origin.
    pub(crate) fn path(&self) -> &str {
        self.part(self.ends[2], self.buffer.len())
    }
}

impl Capture {
    /// The first two non-empty segments of the path below the SCIM base (`["Users", "42"]`):
    /// all that names the resource. Not a list of every segment: that cost an allocation per
    /// request.
    fn segments(&self) -> ([&str; 2], usize) {
        let below = self.texts.path().get(self.below_base..).unwrap_or("");
        let below = below.split('?').next().unwrap_or("");
        let mut found = ([""; 2], 0);
        for segment in below.split('/').filter(|s| !s.is_empty()).take(2) {
            found.0[found.1] = segment;
            found.1 += 1;
        }
        found
    }
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Capture")
            .field("request_id", &self.texts.request_id())
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

/// Completes the request's capture, if it has one, with its answer and queues it.
pub(crate) fn finish(
    log: &mut crate::context::RequestLog,
    sink: Option<&Arc<RequestLogSink>>,
    response: &http::Response<crate::response::Body>,
    duration: Duration,
    failure: Option<&(Option<&'static str>, String)>,
) {
    let (Some(capture), Some(sink)) = (log.capture.take(), sink) else {
        return;
    };
    // Only a creation answers with the `Location` the log reads.
    let location = (response.status() == http::StatusCode::CREATED)
        .then(|| response.headers().get(http::header::LOCATION))
        .flatten()
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned);
    sink.record(Finished {
        capture,
        status: response.status().as_u16(),
        duration,
        failure: failure.cloned(),
        location,
    });
}

/// A capture with its answer.
pub(crate) struct Finished {
    /// Not boxed: a box is one more allocation made on the request's worker and freed on the
    /// log's thread (see [`Capture`]); the queue's slots are allocated once, with the queue.
    pub capture: Capture,
    pub status: u16,
    pub duration: Duration,
    /// `scimType` and detail of an error answer.
    pub failure: Option<(Option<&'static str>, String)>,
    /// The `Location` of a created resource.
    pub location: Option<String>,
}

/// The queue in front of the store, and the thread and task behind it.
pub(crate) struct RequestLogSink {
    tx: mpsc::SyncSender<Finished>,
    /// Taken by [`RequestLogSink::start`].
    rx: Mutex<Option<mpsc::Receiver<Finished>>>,
    writer: LogWriter,
}

/// What the log's thread needs to turn captures into stored entries. Not the sink itself: the
/// thread ends when the sink (which holds the queue's sender) is dropped.
#[derive(Clone)]
struct LogWriter {
    store: Arc<dyn AdminStore>,
    config: RequestLogConfig,
    patch: scim_patch::PatchOptions,
    metrics: Arc<Metrics>,
}

impl std::fmt::Debug for RequestLogSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestLogSink")
            .field("config", &self.writer.config)
            .finish_non_exhaustive()
    }
}

impl RequestLogSink {
    pub(crate) fn new(
        store: Arc<dyn AdminStore>,
        config: RequestLogConfig,
        patch: scim_patch::PatchOptions,
        metrics: Arc<Metrics>,
    ) -> RequestLogSink {
        let (tx, rx) = mpsc::sync_channel(config.queue.max(1));
        RequestLogSink {
            tx,
            rx: Mutex::new(Some(rx)),
            writer: LogWriter {
                store,
                config,
                patch,
                metrics,
            },
        }
    }

    /// Whether requests are recorded (the pruner runs either way).
    pub(crate) fn enabled(&self) -> bool {
        self.writer.config.enabled
    }

    /// Starts the log's thread (when the log is on) and the pruner (once; the pruner on the
    /// server's runtime).
    pub(crate) fn start(self: &Arc<Self>) {
        let Some(rx) = self.rx.lock().ok().and_then(|mut rx| rx.take()) else {
            return;
        };
        let sink = self.clone();
        let pruner = tokio::spawn(async move {
            let mut every = tokio::time::interval(PRUNE_EVERY);
            loop {
                every.tick().await;
                sink.prune().await;
            }
        });
        drop(pruner);
        if !self.enabled() {
            return;
        }
        let writer = self.writer.clone();
        let runtime = tokio::runtime::Handle::current();
        let started = std::thread::Builder::new()
            .name("scimd-request-log".into())
            .spawn(move || writer.run(&rx, &runtime));
        if let Err(e) = started {
            tracing::error!(error = %e, "the provisioning log's thread could not start");
        }
    }

    /// Queues one answered request; never waits.
    pub(crate) fn record(&self, finished: Finished) {
        if self.tx.try_send(finished).is_err() {
            self.writer.metrics.request_log(LogCounter::Dropped, 1);
        }
    }

    async fn prune(&self) {
        loop {
            match self
                .writer
                .store
                .prune_requests(
                    self.writer.config.retention,
                    scim_store::document::now(),
                    PRUNE_STEP,
                )
                .await
            {
                Ok(pruned) if pruned.more => tokio::time::sleep(Duration::from_millis(50)).await,
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "the provisioning log could not be pruned");
                    return;
                }
            }
        }
    }
}

impl LogWriter {
    /// The log's thread: drains the queue every [`DRAIN_EVERY`] and writes it in batches of at
    /// most [`BATCH`], until the queue's sender is dropped.
    ///
    /// Why a thread of its own, not tasks on the runtime with their CPU work on the blocking
    /// pool: a batch moved between three threads (an async worker, a blocking thread for the
    /// redaction, another for the encoding), each allocating from its own heap and freeing into
    /// the others', and its memory was cold wherever it went. One thread keeps its heap and its
    /// caches warm from batch to batch (docs/admin-api.md has the figures). The queue is drained
    /// on a timer, never waited on: a thread waiting on it would be woken by every answered
    /// request, a system call and a context switch per request.
    fn run(&self, rx: &mpsc::Receiver<Finished>, runtime: &tokio::runtime::Handle) {
        let mut batch = Vec::with_capacity(BATCH);
        let mut oldest: Option<std::time::Instant> = None;
        loop {
            std::thread::sleep(DRAIN_EVERY);
            // As many batches as are waiting: at 40,000 requests a second, eight per drain.
            loop {
                let mut closed = false;
                while batch.len() < BATCH {
                    match rx.try_recv() {
                        Ok(entry) => batch.push(entry),
                        Err(mpsc::TryRecvError::Empty) => break,
                        Err(mpsc::TryRecvError::Disconnected) => {
                            closed = true;
                            break;
                        }
                    }
                }
                if batch.is_empty() {
                    if closed {
                        return;
                    }
                    break;
                }
                let waited = oldest.get_or_insert_with(std::time::Instant::now).elapsed();
                if batch.len() < BATCH && waited < BATCH_WAIT && !closed {
                    break;
                }
                // A full-sized buffer for the next batch, so that it never regrows.
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                self.write(full, runtime);
                oldest = None;
            }
        }
    }

    /// Redacts and converts a batch here, on the log's thread, and appends it: the store's
    /// append (a read, the encoding, a write on its writer) is driven from this thread too.
    fn write(&self, batch: Vec<Finished>, runtime: &tokio::runtime::Handle) {
        let n = batch.len() as u64;
        let convert = || {
            let mut not_json = 0;
            // Each tenant's secret attribute names, worked out once per batch and schema set.
            let mut names = std::collections::HashMap::new();
            let records: Vec<RequestRecord> = batch
                .iter()
                .map(|finished| {
                    let key = Arc::as_ptr(&finished.capture.schemas) as usize;
                    let names = names
                        .entry(key)
                        .or_insert_with(|| secret_names(&finished.capture.schemas));
                    let (record, body_was_json) =
                        to_record(finished, &self.config, &self.patch, names);
                    not_json += u64::from(!body_was_json);
                    record
                })
                .collect();
            (records, not_json)
        };
        // A bug in the redaction or the encoding (both on this thread) must cost its batch,
        // never the log: a panic would end the thread, and every later entry would be dropped.
        let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let (records, not_json) = convert();
            self.metrics.request_log(LogCounter::NotJson, not_json);
            runtime.block_on(self.store.append_requests(records))
        }));
        match written {
            Ok(Ok(())) => self.metrics.request_log(LogCounter::Written, n),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, entries = n, "the provisioning log could not be written");
                self.metrics.request_log(LogCounter::Dropped, n);
            }
            Err(_) => {
                tracing::error!(
                    entries = n,
                    "the provisioning log could not convert or encode a batch"
                );
                self.metrics.request_log(LogCounter::Dropped, n);
            }
        }
    }
}

/// The log's counters in the metrics.
#[derive(Debug, Clone, Copy)]
pub(crate) enum LogCounter {
    Written,
    Dropped,
    NotJson,
}

/// The record of a finished request, and whether its body (if any) was JSON.
fn to_record(
    finished: &Finished,
    config: &RequestLogConfig,
    patch: &scim_patch::PatchOptions,
    names: &BTreeSet<String>,
) -> (RequestRecord, bool) {
    let &Finished {
        ref capture,
        status,
        duration,
        ref failure,
        ref location,
    } = finished;
    let failed = status >= 400;
    let keep_bodies = match config.capture {
        BodyCapture::All => true,
        BodyCapture::Errors => failed,
        BodyCapture::None => false,
    };
    let mut body_was_json = true;
    let (first_two, count) = capture.segments();
    let segments = &first_two[..count];
    let request_body = match (keep_bodies, capture.body.as_ref().and_then(|b| b.0.get())) {
        (true, Some(bytes)) if !bytes.is_empty() => {
            match redact(
                bytes,
                &capture.method,
                segments,
                &capture.schemas,
                names,
                patch,
            ) {
                Some(text) => Some(truncate(text, config.max_body_bytes)),
                None => {
                    body_was_json = false;
                    None
                }
            }
        }
        _ => None,
    };
    let (scim_type, detail) = match &failure {
        Some((scim_type, detail)) => (
            scim_type.map(str::to_owned),
            Some(bounded(detail, MAX_DETAIL_BYTES).to_owned()),
        ),
        None => (None, None),
    };
    let response_body = match &failure {
        Some((scim_type, detail)) if keep_bodies => {
            let mut error = serde_json::json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": status.to_string(),
                "detail": detail,
            });
            if let (Some(scim_type), Some(object)) = (scim_type, error.as_object_mut()) {
                object.insert("scimType".into(), Value::from(*scim_type));
            }
            Some(error.to_string())
        }
        _ => None,
    };
    let (resource_type, resource_id) = resource_of(segments, location.as_deref());
    let texts = &capture.texts;
    let record = RequestRecord {
        tenant: capture.tenant,
        request_id: texts.request_id().to_owned(),
        at: capture.at,
        token_id: texts.token_id().to_owned(),
        token_label: texts.token_label().to_owned(),
        method: capture.method.as_str().to_owned(),
        path: bounded(texts.path(), MAX_PATH_BYTES).to_owned(),
        status,
        scim_type,
        detail,
        duration_us: u64::try_from(duration.as_micros()).unwrap_or(u64::MAX),
        resource_type,
        resource_id,
        request_body,
        response_body,
    };
    (record, body_was_json)
}

/// The resource a request concerned: the one its path names, or the one its answer created.
fn resource_of(
    segments: &[&str],
    location: Option<&str>,
) -> (Option<ResourceKind>, Option<String>) {
    let kind = segments
        .first()
        .and_then(|s| ResourceKind::from_resource_type(s.strip_suffix('s').unwrap_or(s)));
    let Some(kind) = kind else {
        return (None, None);
    };
    let id = match segments.get(1) {
        Some(id) if *id != ".search" => Some((*id).to_owned()),
        Some(_) => None,
        None => location
            .and_then(|l| l.rsplit('/').next())
            .filter(|id| !id.is_empty())
            .map(str::to_owned),
    };
    (Some(kind), id)
}

/// `text` cut to `max` bytes with a marker saying how long it was.
fn truncate(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    format!(
        "{}…[truncated by scimd: {} bytes in all]",
        bounded(&text, max),
        text.len()
    )
}

/// The body as the log keeps it: JSON text with every secret value replaced by [`REDACTED`];
/// `None` when it is not JSON.
///
/// Redaction is structural, and then checked against the write path's own reading: every key
/// naming a secret attribute (`returned: never` or `writeOnly`, RFC 7643 section 7; `password`),
/// in any spelling a dialect accepts (spaces, case, a URN-qualified name), and the `value` of
/// every PATCH operation whose `path` names one, is replaced. Then the values the write path
/// would write to secret attributes are found the way it finds them (`scim_patch::secret_values`,
/// after the identity-provider dialects: Entra ID's `["clear"]` and `{"value": "clear"}`
/// wrappers, path-less objects) and, should any of them still appear in the redacted text, the
/// whole body is replaced: a form the structural pass missed never reaches the log.
pub(crate) fn redact(
    body: &[u8],
    method: &http::Method,
    segments: &[&str],
    schemas: &TenantSchemas,
    names: &BTreeSet<String>,
    patch: &scim_patch::PatchOptions,
) -> Option<String> {
    // Most bodies name no secret attribute at all: kept as sent, once known to be JSON. A key
    // can only reach a secret attribute by spelling its name (in any case, with spaces or a
    // URN before it) or through a JSON escape, so a body with neither is kept without parsing
    // it into a tree and writing it back.
    if !body.contains(&b'\\') && !names.iter().any(|name| contains_ignoring_case(body, name)) {
        serde_json::from_slice::<serde::de::IgnoredAny>(body).ok()?;
        return String::from_utf8(body.to_vec()).ok();
    }
    let mut document: Value = serde_json::from_slice(body).ok()?;
    let mut secrets = Vec::new();
    let kind = segments
        .first()
        .and_then(|s| ResourceKind::from_resource_type(s.strip_suffix('s').unwrap_or(s)));
    match (kind, segments.first().copied()) {
        (Some(kind), _) => {
            let as_patch = *method == http::Method::PATCH;
            secrets_written(&document, as_patch, kind, schemas, patch, &mut secrets);
        }
        (None, Some("Bulk")) => {
            if let Some(operations) = member(&document, "Operations").and_then(Value::as_array) {
                for operation in operations {
                    let kind = member(operation, "path")
                        .and_then(Value::as_str)
                        .and_then(|p| p.trim_start_matches('/').split('/').next())
                        .and_then(|s| {
                            ResourceKind::from_resource_type(s.strip_suffix('s').unwrap_or(s))
                        });
                    let as_patch = member(operation, "method")
                        .and_then(Value::as_str)
                        .is_some_and(|m| m.eq_ignore_ascii_case("PATCH"));
                    if let (Some(kind), Some(data)) = (kind, member(operation, "data")) {
                        secrets_written(data, as_patch, kind, schemas, patch, &mut secrets);
                    }
                }
            }
        }
        _ => {}
    }
    redact_value(&mut document, names);
    let text = document.to_string();
    let leaked = secrets
        .iter()
        .any(|secret| serde_json::to_string(secret).is_ok_and(|quoted| text.contains(&quoted)));
    if leaked {
        return Some(
            serde_json::json!({
                "scimdRedacted": "the body wrote a secret attribute in a form that could not be cut out alone, so none of it is kept"
            })
            .to_string(),
        );
    }
    Some(text)
}

/// Whether `haystack` holds `needle` (ASCII, lower case), in any case.
fn contains_ignoring_case(haystack: &[u8], needle: &str) -> bool {
    let needle = needle.as_bytes();
    !needle.is_empty()
        && haystack
            .windows(needle.len())
            .any(|window| window.eq_ignore_ascii_case(needle))
}

/// The value of `key` in an object, matched case-insensitively (SCIM names are).
fn member<'v>(value: &'v Value, key: &str) -> Option<&'v Value> {
    value
        .as_object()?
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(key))
        .map(|(_, v)| v)
}

/// The lower-case names of every secret attribute of the tenant's resource types.
pub(crate) fn secret_names(schemas: &TenantSchemas) -> BTreeSet<String> {
    fn walk(schema: &Schema, names: &mut BTreeSet<String>) {
        let mut stack: Vec<&scim_schema::AttributeDef> = schema.attributes.iter().collect();
        while let Some(attribute) = stack.pop() {
            if attribute.returned == Returned::Never
                || attribute.mutability == Mutability::WriteOnly
            {
                names.insert(attribute.name.to_ascii_lowercase());
            }
            stack.extend(attribute.sub_attributes.iter());
        }
    }
    let mut names = BTreeSet::from(["password".to_owned()]);
    for kind in [ResourceKind::User, ResourceKind::Group] {
        let schema = schemas.resources.get(kind);
        walk(schema.core(), &mut names);
        for (extension, _) in schema.extensions() {
            walk(extension, &mut names);
        }
    }
    names
}

/// The attribute name a key or a PATCH path names, as the dialects read it: trimmed, without a
/// schema URN, without a value filter or sub-attribute, lower case.
fn named_attribute(text: &str) -> String {
    let mut name = text.trim();
    if name.len() > 4 && name[..4].eq_ignore_ascii_case("urn:") {
        // `urn:...:User:password`: the attribute follows the last colon before any filter.
        let end = name.find('[').unwrap_or(name.len());
        if let Some(colon) = name[..end].rfind(':') {
            name = &name[colon + 1..];
        }
    }
    let end = name.find(['[', '.', ' ']).unwrap_or(name.len());
    name[..end].trim().to_ascii_lowercase()
}

/// Replaces every secret in `value`, structurally.
fn redact_value(value: &mut Value, names: &BTreeSet<String>) {
    match value {
        Value::Object(object) => {
            // A PATCH operation whose path names a secret: its value is the secret.
            let path_names_secret = object
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("path"))
                .and_then(|(_, p)| p.as_str())
                .is_some_and(|p| {
                    names.contains(&named_attribute(p))
                        || p.rsplit('.')
                            .next()
                            .is_some_and(|last| names.contains(&named_attribute(last)))
                });
            for (key, member) in object.iter_mut() {
                let secret = names.contains(&named_attribute(key))
                    || (path_names_secret && key.eq_ignore_ascii_case("value"));
                if secret {
                    if !member.is_null() {
                        *member = Value::from(REDACTED);
                    }
                } else {
                    redact_value(member, names);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|item| redact_value(item, names)),
        _ => {}
    }
}

/// The string values a resource or PATCH body would write to secret attributes, found as the
/// write path finds them.
fn secrets_written(
    body: &Value,
    as_patch: bool,
    kind: ResourceKind,
    schemas: &TenantSchemas,
    patch: &scim_patch::PatchOptions,
    found: &mut Vec<String>,
) {
    let message = if as_patch {
        body.clone()
    } else {
        serde_json::json!({
            "schemas": [scim_patch::PATCH_OP_URN],
            "Operations": [{"op": "add", "value": body}],
        })
    };
    let Ok(mut request) = scim_patch::PatchRequest::from_value(message, patch) else {
        return;
    };
    let schema = schemas.resources.get(kind);
    let Ok(values) = scim_patch::secret_values(&mut request, schema, patch) else {
        return;
    };
    for secret in values {
        collect_strings(secret.value, found);
    }
}

fn collect_strings(value: &Value, found: &mut Vec<String>) {
    match value {
        Value::String(s) if !s.is_empty() => found.push(s.clone()),
        Value::Array(items) => items.iter().for_each(|v| collect_strings(v, found)),
        Value::Object(object) => object.values().for_each(|v| collect_strings(v, found)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schemas() -> TenantSchemas {
        TenantSchemas::build(&scim_store::ResourceSchemas::core(), 0, Vec::new()).unwrap()
    }

    #[test]
    fn capture_texts_give_back_each_text_as_written() {
        for (request_id, token_id, label, path) in [
            (
                "73a91dd16490-4",
                "tok-1",
                "Entra ID",
                "/t/acme/scim/v2/Users/42?x=1",
            ),
            ("", "", "", ""),
            ("r", "", "Étiquette ☃", "/t/ä/scim/v2/Users"),
        ] {
            let texts = CaptureTexts::new(request_id, token_id, label, path);
            assert_eq!(texts.request_id(), request_id);
            assert_eq!(texts.token_id(), token_id);
            assert_eq!(texts.token_label(), label);
            assert_eq!(texts.path(), path);
        }
    }

    /// The body as the log keeps it (`None`: not JSON), for a request to `path`.
    fn redacted_bytes(method: http::Method, path: &[&str], body: &[u8]) -> Option<String> {
        let schemas = schemas();
        redact(
            body,
            &method,
            path,
            &schemas,
            &secret_names(&schemas),
            &scim_patch::PatchOptions::lenient(),
        )
    }

    fn redacted(method: http::Method, path: &[&str], body: Value) -> String {
        redacted_bytes(method, path, body.to_string().as_bytes()).unwrap()
    }

    /// Every password spelling the write path accepts (issue 14's hardening found them).
    #[test]
    fn every_password_form_is_redacted() {
        let patch = |operations: Value| json!({"schemas": [scim_patch::PATCH_OP_URN], "Operations": operations});
        let cases = [
            (
                http::Method::POST,
                vec!["Users"],
                json!({"userName": "a", "password": "Secret-1"}),
            ),
            (
                http::Method::POST,
                vec!["Users"],
                json!({"userName": "a", " PassWord ": "Secret-1"}),
            ),
            (
                http::Method::PUT,
                vec!["Users", "1"],
                json!({"userName": "a", "urn:ietf:params:scim:schemas:core:2.0:User:password": "Secret-1"}),
            ),
            (
                http::Method::PATCH,
                vec!["Users", "1"],
                patch(json!([{"op": "replace", "path": "password", "value": "Secret-1"}])),
            ),
            (
                http::Method::PATCH,
                vec!["Users", "1"],
                patch(json!([{"op": "add", "path": "password", "value": ["Secret-1"]}])),
            ),
            (
                http::Method::PATCH,
                vec!["Users", "1"],
                patch(
                    json!([{"op": "replace", "path": "password", "value": [{"value": "Secret-1"}]}]),
                ),
            ),
            (
                http::Method::PATCH,
                vec!["Users", "1"],
                patch(json!([{"op": "replace", "value": {" password": "Secret-1"}}])),
            ),
            (
                http::Method::PATCH,
                vec!["Users", "1"],
                patch(json!([{"op": "add", "value": {"password": ["Secret-1"]}}])),
            ),
            (
                http::Method::PATCH,
                vec!["Users", "1"],
                patch(
                    json!([{"op": "Replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:password", "value": "Secret-1"}]),
                ),
            ),
            (
                http::Method::POST,
                vec!["Bulk"],
                json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:BulkRequest"], "Operations": [
                    {"method": "POST", "path": "/Users", "bulkId": "b", "data": {"userName": "a", "password": "Secret-1"}},
                    {"method": "PATCH", "path": "/Users/1", "data": patch(json!([{"op": "replace", "value": {"PASSWORD": ["Secret-1"]}}]))},
                ]}),
            ),
        ];
        for (method, path, body) in cases {
            let text = redacted(method, &path, body.clone());
            assert!(!text.contains("Secret-1"), "{body} -> {text}");
            assert!(
                text.contains(REDACTED) || text.contains("scimdRedacted"),
                "{text}"
            );
        }
    }

    /// A key spelled with a JSON escape decodes to `password` on the write path: it takes the
    /// parsing path, not the fast one, and is redacted too.
    #[test]
    fn an_escaped_password_key_is_redacted() {
        let body = br#"{"userName": "a", "pass\u0077ord": "Secret-1"}"#;
        let text = redacted_bytes(http::Method::POST, &["Users"], body).unwrap();
        assert!(!text.contains("Secret-1"), "{text}");
        // A body without a secret is kept as sent, byte for byte.
        let plain = br#"{"userName":  "a"}"#;
        let kept = redacted_bytes(http::Method::POST, &["Users"], plain).unwrap();
        assert_eq!(kept.as_bytes(), plain);
    }

    #[test]
    fn the_rest_of_the_body_is_kept() {
        let text = redacted(
            http::Method::POST,
            &["Users"],
            json!({"userName": "bjensen", "password": "x", "emails": [{"value": "b@example.com"}]}),
        );
        let kept: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(kept["userName"], "bjensen");
        assert_eq!(kept["emails"][0]["value"], "b@example.com");
        assert_eq!(kept["password"], REDACTED);
    }

    #[test]
    fn not_json_is_not_kept_and_long_bodies_are_cut() {
        assert!(redacted_bytes(http::Method::POST, &["Users"], b"<xml/>").is_none());
        let cut = truncate("é".repeat(100), 11);
        assert!(
            cut.starts_with("ééééé…[truncated by scimd: 200 bytes"),
            "{cut}"
        );
    }

    #[test]
    fn the_resource_comes_from_the_path_or_the_location() {
        assert_eq!(
            resource_of(&["Users", "42"], None),
            (Some(ResourceKind::User), Some("42".into()))
        );
        assert_eq!(
            resource_of(&["Groups"], Some("https://h/t/a/scim/v2/Groups/7")),
            (Some(ResourceKind::Group), Some("7".into()))
        );
        assert_eq!(
            resource_of(&["Users", ".search"], None),
            (Some(ResourceKind::User), None)
        );
        assert_eq!(resource_of(&["Bulk"], None), (None, None));
    }
}
