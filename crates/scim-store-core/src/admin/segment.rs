//! How the provisioning log is kept: in **segments**, one row per tenant and batch of up to
//! [`SEGMENT_ENTRIES`] entries, each with a summary of what it holds, instead of a row and a
//! dozen index entries per request.
//!
//! Why: a row per request with an index per narrowing cost the embedded store's single writer
//! a third of a core at 20,000 requests a second (every index of a high-cardinality column,
//! the resource id above all, dirties a page per entry, and every dirty page is written to the
//! WAL), which halved GET throughput and stalled SCIM writes queued behind it. A segment is
//! one row (its entries compressed, [`codec`]) written sequentially, whatever the entries hold.
//!
//! What stands in for the indexes: each segment's time range (`first_ns`, `last_ns`, indexed
//! with the tenant, so a listing reads segments newest first and a time range reads only its
//! segments), a [`Summary`] of its low-cardinality values (statuses, methods, tokens, resource
//! types, `scimType`s, the details of its errors) and a Bloom filter ([`Bloom`]) of its
//! request ids and resource ids. A listing skips every segment whose summary or filter rules
//! it out and decodes the rest, newest first, until its page is full ([`Listing`]). Written
//! once here; a backend stores the rows, reads headers in order, and loads payloads.

use super::{LoggedRequest, RequestFilter, RequestPage, RequestRecord, StatusFilter};
use crate::backend::sql::{CursorScope, SortValue};
use crate::error::{Result, StoreError};
use crate::types::{ResourceKind, TenantId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

mod codec;
use codec::{decode, encode};

/// The most entries one segment holds.
pub const SEGMENT_ENTRIES: usize = 512;

/// Positions within a segment: a cursor's row id is `segment seq × ROW_STRIDE + index`.
const ROW_STRIDE: i64 = 1024;

/// The most distinct error details a summary lists; beyond it, a detail search decodes the
/// segment.
const MAX_SUMMARY_DETAILS: usize = 64;

/// Bits of the Bloom filter per key it holds (two keys per entry): about 1% false positives
/// with [`BLOOM_HASHES`].
const BLOOM_BITS_PER_KEY: usize = 10;
/// Hash functions of the Bloom filter.
const BLOOM_HASHES: u64 = 7;

/// One entry as a segment's payload keeps it.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Stored {
    #[serde(rename = "i")]
    request_id: String,
    #[serde(rename = "t")]
    at_ns: i64,
    #[serde(rename = "k")]
    token_id: String,
    #[serde(rename = "l")]
    token_label: String,
    #[serde(rename = "m")]
    method: String,
    #[serde(rename = "p")]
    path: String,
    #[serde(rename = "s")]
    status: u16,
    #[serde(rename = "y", default, skip_serializing_if = "Option::is_none")]
    scim_type: Option<String>,
    #[serde(rename = "d", default, skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    #[serde(rename = "u")]
    duration_us: u64,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    resource_type: Option<String>,
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    resource_id: Option<String>,
    #[serde(rename = "q", default, skip_serializing_if = "Option::is_none")]
    request_body: Option<String>,
    #[serde(rename = "a", default, skip_serializing_if = "Option::is_none")]
    response_body: Option<String>,
    #[serde(rename = "z", default, skip_serializing_if = "std::ops::Not::not")]
    scrubbed: bool,
}

impl Stored {
    fn of(record: RequestRecord, scrubbed: bool) -> Stored {
        Stored {
            request_id: record.request_id,
            at_ns: super::datetime_ns(record.at),
            token_id: record.token_id,
            token_label: record.token_label,
            method: record.method,
            path: record.path,
            status: record.status,
            scim_type: record.scim_type,
            detail: record.detail,
            duration_us: record.duration_us,
            resource_type: record.resource_type.map(|k| k.resource_type().to_owned()),
            resource_id: record.resource_id,
            request_body: record.request_body,
            response_body: record.response_body,
            scrubbed,
        }
    }

    fn logged(self, tenant: TenantId) -> LoggedRequest {
        LoggedRequest {
            record: RequestRecord {
                tenant,
                request_id: self.request_id,
                at: super::datetime_of_ns(self.at_ns),
                token_id: self.token_id,
                token_label: self.token_label,
                method: self.method,
                path: self.path,
                status: self.status,
                scim_type: self.scim_type,
                detail: self.detail,
                duration_us: self.duration_us,
                resource_type: self
                    .resource_type
                    .as_deref()
                    .and_then(ResourceKind::from_resource_type),
                resource_id: self.resource_id,
                request_body: self.request_body,
                response_body: self.response_body,
            },
            scrubbed: self.scrubbed,
        }
    }

    fn record(&self, tenant: TenantId) -> RequestRecord {
        self.clone().logged(tenant).record
    }

    /// [`RequestRecord::bytes`] of the entry, without building the record.
    fn bytes(&self) -> i64 {
        let texts = [
            Some(&self.request_id),
            Some(&self.token_id),
            Some(&self.token_label),
            Some(&self.method),
            Some(&self.path),
            self.scim_type.as_ref(),
            self.detail.as_ref(),
            self.resource_id.as_ref(),
            self.request_body.as_ref(),
            self.response_body.as_ref(),
        ];
        i64::try_from(super::counted_bytes(
            texts.into_iter().flatten().map(String::as_str),
        ))
        .unwrap_or(i64::MAX)
    }
}

/// What a segment holds, for ruling it out without decoding it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    #[serde(rename = "s")]
    statuses: Vec<u16>,
    #[serde(rename = "m")]
    methods: Vec<String>,
    #[serde(rename = "k")]
    tokens: Vec<String>,
    /// Tokens that got an error in the segment.
    #[serde(rename = "e")]
    error_tokens: Vec<String>,
    #[serde(rename = "r")]
    kinds: Vec<String>,
    #[serde(rename = "y")]
    scim_types: Vec<String>,
    /// The distinct error details, or `None` when there are more than
    /// [`MAX_SUMMARY_DETAILS`].
    #[serde(rename = "d")]
    details: Option<Vec<String>>,
}

fn insert_sorted<T: Ord + Clone>(set: &mut Vec<T>, value: &T) {
    if let Err(at) = set.binary_search(value) {
        set.insert(at, value.clone());
    }
}

impl Summary {
    fn add(&mut self, entry: &Stored) {
        insert_sorted(&mut self.statuses, &entry.status);
        insert_sorted(&mut self.methods, &entry.method);
        insert_sorted(&mut self.tokens, &entry.token_id);
        if entry.status >= 400 {
            insert_sorted(&mut self.error_tokens, &entry.token_id);
        }
        if let Some(kind) = &entry.resource_type {
            insert_sorted(&mut self.kinds, kind);
        }
        if let Some(scim_type) = &entry.scim_type {
            insert_sorted(&mut self.scim_types, scim_type);
        }
        if let (Some(detail), Some(details)) = (&entry.detail, &mut self.details) {
            insert_sorted(details, detail);
            if details.len() > MAX_SUMMARY_DETAILS {
                self.details = None;
            }
        }
    }

    fn of(entries: &[Stored]) -> Summary {
        let mut summary = Summary {
            details: Some(Vec::new()),
            ..Summary::default()
        };
        let mut previous: Option<&Stored> = None;
        for entry in entries {
            // Most entries summarise as the one before them did (one token, one method, one
            // status, in runs): comparing with it costs a fifth of the five sorted insertions.
            if !previous.is_some_and(|p| Summary::same_summary(p, entry)) {
                summary.add(entry);
            }
            previous = Some(entry);
        }
        summary
    }

    /// Whether `a` and `b` add the same values to a summary: every field [`Summary::add`]
    /// reads, which a field added there must be added to here.
    fn same_summary(a: &Stored, b: &Stored) -> bool {
        a.status == b.status
            && a.method == b.method
            && a.token_id == b.token_id
            && a.resource_type == b.resource_type
            && a.scim_type == b.scim_type
            && a.detail == b.detail
    }

    /// Whether a segment of this summary may hold an entry of `filter` (false: it cannot).
    fn may_match(&self, filter: &RequestFilter) -> bool {
        let status_ok = match filter.status {
            None => true,
            Some(StatusFilter::Exact(s)) => self.statuses.binary_search(&s).is_ok(),
            Some(StatusFilter::Class(c)) => {
                let low = u16::from(c) * 100;
                self.statuses.iter().any(|s| (low..low + 100).contains(s))
            }
        };
        let has = |set: &[String], value: &Option<String>| {
            value.as_ref().is_none_or(|v| set.binary_search(v).is_ok())
        };
        let prefixed = |set: &[String], prefix: &Option<String>| {
            prefix
                .as_ref()
                .is_none_or(|p| set.iter().any(|v| v.starts_with(p.as_str())))
        };
        status_ok
            && has(&self.methods, &filter.method)
            && has(&self.tokens, &filter.token_id)
            && filter
                .resource_type
                .is_none_or(|k| self.kinds.iter().any(|s| s == k.resource_type()))
            && prefixed(&self.scim_types, &filter.scim_type_prefix)
            && match &self.details {
                Some(details) => prefixed(details, &filter.detail_prefix),
                None => true,
            }
    }
}

/// A Bloom filter of a segment's request ids and resource ids: owned while a segment is built,
/// borrowed from a stored header (`Bloom(header.bloom.as_slice())`) when it is read.
#[derive(Debug, Clone)]
pub struct Bloom<B = Vec<u8>>(B);

impl Bloom {
    fn with_keys(keys: usize) -> Bloom {
        let bits = (keys * BLOOM_BITS_PER_KEY).max(64);
        Bloom(vec![0; bits.div_ceil(8)])
    }

    /// The filter as stored.
    pub fn from_bytes(bytes: Vec<u8>) -> Bloom {
        Bloom(bytes)
    }

    /// The bytes to store.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    fn insert(&mut self, key: Key<'_>) {
        for at in positions(self.0.len(), key) {
            if let Some(byte) = self.0.get_mut(at / 8) {
                *byte |= 1 << (at % 8);
            }
        }
    }
}

impl<B: AsRef<[u8]>> Bloom<B> {
    /// Whether `key` may be in the filter (false: it is not).
    fn may_contain(&self, key: Key<'_>) -> bool {
        let bytes = self.0.as_ref();
        if bytes.is_empty() {
            return true;
        }
        positions(bytes.len(), key).all(|at| {
            bytes
                .get(at / 8)
                .is_some_and(|byte| byte & (1 << (at % 8)) != 0)
        })
    }
}

/// The bits a key sets in a filter of `len` bytes.
fn positions(len: usize, key: Key<'_>) -> impl Iterator<Item = usize> + use<> {
    // Two 64-bit FNV-1a hashes of the key, combined (Kirsch and Mitzenmacher); the key's
    // prefix and text hashed in turn, never concatenated; both in one pass over the bytes.
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let (mut a, mut b) = (0xcbf2_9ce4_8422_2325_u64, 0x8422_2325_cbf2_9ce4_u64);
    for bytes in [key.0, key.1] {
        for byte in bytes {
            let byte = u64::from(*byte);
            a = (a ^ byte).wrapping_mul(PRIME);
            b = (b ^ byte).wrapping_mul(PRIME);
        }
    }
    let b = b | 1;
    let bits = (len * 8).max(1) as u64;
    (0..BLOOM_HASHES).map(move |i| (a.wrapping_add(i.wrapping_mul(b)) % bits) as usize)
}

/// A key of the Bloom filter: a kind prefix and a text.
#[derive(Debug, Clone, Copy)]
struct Key<'a>(&'static [u8], &'a [u8]);

fn request_key(request_id: &str) -> Key<'_> {
    Key(b"r:", request_id.as_bytes())
}

fn resource_key(resource_id: &str) -> Key<'_> {
    Key(b"x:", resource_id.as_bytes())
}

fn bloom_of(entries: &[Stored]) -> Bloom {
    let mut bloom = Bloom::with_keys(entries.len() * 2);
    for entry in entries {
        bloom.insert(request_key(&entry.request_id));
        if let Some(id) = &entry.resource_id {
            bloom.insert(resource_key(id));
        }
    }
    bloom
}

/// One segment, ready to store.
#[derive(Debug, Clone)]
pub struct Segment {
    /// Its tenant.
    pub tenant: TenantId,
    /// Its earliest entry's time (nanoseconds since the epoch).
    pub first_ns: i64,
    /// Its latest entry's time.
    pub last_ns: i64,
    /// How many entries it holds.
    pub entries: i64,
    /// What it counts against its tenant's size budget ([`RequestRecord::bytes`] summed).
    pub bytes: i64,
    /// Its [`Summary`], as JSON.
    pub summary: String,
    /// Its Bloom filter.
    pub bloom: Vec<u8>,
    /// Its entries, oldest first, LZ4-compressed ([`codec`]).
    pub payload: Vec<u8>,
}

impl Segment {
    fn of(tenant: TenantId, entries: &[Stored], bytes: i64) -> Segment {
        Segment {
            tenant,
            first_ns: entries.first().map_or(0, |e| e.at_ns),
            last_ns: entries.last().map_or(0, |e| e.at_ns),
            entries: entries.len() as i64,
            bytes,
            summary: serde_json::to_string(&Summary::of(entries)).unwrap_or_default(),
            bloom: bloom_of(entries).into_bytes(),
            payload: encode(entries),
        }
    }
}

/// A tenant key, a token id and a minute ([`super::activity_minute`]).
pub type ActivityKey = (i64, String, i64);

/// A run of entries of one [`ActivityKey`], with its requests and errors.
type Run = Option<(ActivityKey, (i64, i64))>;

/// A batch of entries as a backend appends it: its segments, and what it adds to each tenant's
/// size ([`Batch::usage`]) and per-minute activity ([`Batch::activity`]). Both maps are
/// ordered, so that the upserts lock their rows in one order in every replica.
#[derive(Debug, Default)]
pub struct Batch {
    /// The segments to insert.
    pub segments: Vec<Segment>,
    /// Per tenant key: bytes ([`RequestRecord::bytes`]) and entries added.
    pub usage: std::collections::BTreeMap<i64, (i64, i64)>,
    /// Per tenant, token and minute: requests and errors.
    pub activity: std::collections::BTreeMap<ActivityKey, (i64, i64)>,
}

impl Batch {
    /// The batch of `records`, each with whether its person was anonymised while it waited in
    /// the server's queue (it is then stored scrubbed, as the anonymisation scrubbed the
    /// entries already kept).
    pub fn of(records: impl IntoIterator<Item = (RequestRecord, bool)>) -> Batch {
        let records = records.into_iter();
        let expected = records.size_hint().0;
        let mut batch = Batch::default();
        // Per tenant key, its entries. Each record is moved once, into its tenant's list, and
        // the first tenant's list is sized for the whole batch (most batches are one
        // tenant's): an entry is a few hundred bytes, and growing the lists from empty
        // copied every one of them a dozen times.
        let mut by_tenant: std::collections::BTreeMap<i64, (TenantId, Vec<Stored>)> =
            std::collections::BTreeMap::new();
        // Entries come in runs of one tenant, token and minute: a run's key (its token copied)
        // is built once, not once per entry.
        let mut run: Run = None;
        for (mut record, anonymised) in records {
            if anonymised {
                record.scrub();
            }
            let key = record.tenant.key();
            let used = batch.usage.entry(key).or_default();
            used.0 = used
                .0
                .saturating_add(i64::try_from(record.bytes()).unwrap_or(i64::MAX));
            used.1 += 1;
            let minute = super::activity_minute(record.at);
            let same_run = matches!(&run, Some(((k, token, m), _))
                if *k == key && *m == minute && *token == record.token_id);
            if !same_run {
                batch.add_activity(run.take());
                run = Some(((key, record.token_id.clone(), minute), (0, 0)));
            }
            if let Some((_, counts)) = run.as_mut() {
                counts.0 += 1;
                counts.1 += i64::from(record.is_error());
            }
            let capacity = if by_tenant.is_empty() { expected } else { 0 };
            let tenant = record.tenant;
            by_tenant
                .entry(key)
                .or_insert_with(|| (tenant, Vec::with_capacity(capacity)))
                .1
                .push(Stored::of(record, anonymised));
        }
        batch.add_activity(run);
        batch.segments = segments_of(by_tenant);
        batch
    }

    fn add_activity(&mut self, run: Run) {
        if let Some((key, (requests, errors))) = run {
            let counted = self.activity.entry(key).or_default();
            counted.0 += requests;
            counted.1 += errors;
        }
    }
}

/// The segments of a batch: per tenant, its entries by time, in runs of [`SEGMENT_ENTRIES`].
fn segments_of(
    by_tenant: std::collections::BTreeMap<i64, (TenantId, Vec<Stored>)>,
) -> Vec<Segment> {
    let mut segments = Vec::new();
    for (_, (tenant, mut entries)) in by_tenant {
        // Stable: entries of the same instant keep the order they were answered in.
        entries.sort_by_key(|e| e.at_ns);
        for chunk in entries.chunks(SEGMENT_ENTRIES) {
            let bytes = chunk.iter().map(Stored::bytes).sum();
            segments.push(Segment::of(tenant, chunk, bytes));
        }
    }
    segments
}

/// A stored segment's header: what a listing reads before deciding to load its payload.
#[derive(Debug, Clone)]
pub struct SegmentHeader {
    /// Its row id (assigned by the store, increasing).
    pub seq: i64,
    /// Its earliest entry's time.
    pub first_ns: i64,
    /// Its latest entry's time.
    pub last_ns: i64,
    /// Its summary, as stored.
    pub summary: String,
    /// Its Bloom filter, as stored.
    pub bloom: Vec<u8>,
}

/// Where an entry is: its time, then its segment and its index there. Newest first is
/// descending.
type Position = (i64, i64);

fn position(at_ns: i64, seq: i64, index: usize) -> Position {
    (
        at_ns,
        seq.saturating_mul(ROW_STRIDE)
            .saturating_add(i64::try_from(index).unwrap_or(i64::MAX)),
    )
}

/// Which headers a backend reads, newest first by `(last_ns, seq)`, in batches: those with
/// `first_ns <= max_first_ns` and `last_ns >= min_last_ns`, after the header position `below`
/// (`(last_ns, seq)` of the previous batch's last header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderRange {
    /// Segments that start after this hold nothing older than the listing's position.
    pub max_first_ns: i64,
    /// Segments that end before this hold nothing in the listing's time range.
    pub min_last_ns: i64,
    /// Continue below this header position.
    pub below: Option<(i64, i64)>,
}

/// The headers a backend reads per batch.
pub const HEADER_BATCH: usize = 64;

/// One page of a listing, assembled from segments newest first (see the module
/// documentation). A backend gives [`Listing::set_linked`] the request ids of
/// [`Listing::person`]'s feed entries, then, while [`Listing::range`] names one, reads that
/// batch of headers and offers each to [`Listing::offer`]: loads the payload of each `Load`
/// into [`Listing::add`], stops at `Done`, and calls [`Listing::end_of_headers`] after a short
/// batch; then [`Listing::finish`].
#[derive(Debug)]
pub struct Listing {
    tenant: TenantId,
    filter: RequestFilter,
    after: Option<Position>,
    page: usize,
    /// Request ids whose feed entries name the filter's person.
    linked: BTreeSet<String>,
    found: Vec<(Position, LoggedRequest)>,
    below: Option<(i64, i64)>,
    exhausted: bool,
    done: bool,
}

/// What a backend does with a header offered to [`Listing::offer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Load its payload and [`Listing::add`] it.
    Load,
    /// Skip it: it holds nothing of the listing.
    Skip,
    /// Stop: the page is complete (no later header can change it).
    Done,
}

impl Listing {
    /// A listing of `filter` in `tenant`, its cursor read with `scope`.
    pub fn new(tenant: TenantId, filter: &RequestFilter, scope: &CursorScope) -> Result<Listing> {
        filter.check()?;
        let after = match &filter.cursor {
            None => None,
            Some(cursor) => match scope.decode(cursor)? {
                (SortValue::Int(at_ns), row) => Some((at_ns, row)),
                _ => {
                    return Err(StoreError::InvalidCursor(
                        "the cursor is not one of this log's listings; start the listing again \
                         without a cursor"
                            .into(),
                    ));
                }
            },
        };
        Ok(Listing {
            tenant,
            filter: filter.clone(),
            after,
            page: filter.page_size(),
            linked: BTreeSet::new(),
            found: Vec::new(),
            below: None,
            exhausted: false,
            done: false,
        })
    }

    /// The person whose feed entries' request ids the backend must give
    /// [`Listing::set_linked`] before reading, if the filter names one.
    pub fn person(&self) -> Option<&str> {
        self.filter.person.as_deref()
    }

    /// The request ids whose feed entries name the filter's person.
    pub fn set_linked(&mut self, ids: impl IntoIterator<Item = String>) {
        self.linked.extend(ids);
    }

    /// The next batch of headers to read, or `None` when the listing is complete.
    pub fn range(&self) -> Option<HeaderRange> {
        if self.exhausted || self.done {
            return None;
        }
        let until = self
            .filter
            .until
            .map_or(i64::MAX, |u| super::datetime_ns(u).saturating_sub(1));
        let after = self.after.map_or(i64::MAX, |(at, _)| at);
        Some(HeaderRange {
            max_first_ns: until.min(after),
            min_last_ns: self.filter.since.map_or(i64::MIN, super::datetime_ns),
            below: self.below,
        })
    }

    /// Records that a batch returned fewer than [`HEADER_BATCH`] headers: nothing older is
    /// left.
    pub fn end_of_headers(&mut self) {
        self.exhausted = true;
    }

    /// Whether the page is complete before a segment ending at `last_ns`: it holds one entry
    /// more than the page, and every entry that segment or a later one could hold is older.
    fn complete_before(&self, last_ns: i64) -> bool {
        if self.found.len() <= self.page {
            return false;
        }
        let mut newest: Vec<Position> = self.found.iter().map(|(p, _)| *p).collect();
        newest.sort_unstable_by(|a, b| b.cmp(a));
        last_ns < newest[self.page].0
    }

    /// What to do with the next header, newest first; moves the listing past it.
    pub fn offer(&mut self, header: &SegmentHeader) -> Offer {
        if self.done || self.complete_before(header.last_ns) {
            self.done = true;
            return Offer::Done;
        }
        self.below = Some((header.last_ns, header.seq));
        if self.wants(header) {
            Offer::Load
        } else {
            Offer::Skip
        }
    }

    fn wants(&self, header: &SegmentHeader) -> bool {
        let summary: Summary = match serde_json::from_str(&header.summary) {
            Ok(summary) => summary,
            Err(_) => return true,
        };
        if !summary.may_match(&self.filter) {
            return false;
        }
        let bloom = Bloom(header.bloom.as_slice());
        if let Some(id) = &self.filter.resource_id {
            if !bloom.may_contain(resource_key(id)) {
                return false;
            }
        }
        if let Some(person) = &self.filter.person {
            let about = bloom.may_contain(resource_key(person));
            let linked = self
                .linked
                .iter()
                .any(|r| bloom.may_contain(request_key(r)));
            if !about && !linked {
                return false;
            }
        }
        true
    }

    /// The entries of a loaded segment.
    pub fn add(&mut self, header: &SegmentHeader, payload: &[u8]) -> Result<()> {
        let entries = decode(payload)?;
        for (index, entry) in entries.into_iter().enumerate() {
            let at = position(entry.at_ns, header.seq, index);
            if self.after.is_some_and(|after| at >= after) {
                continue;
            }
            if matches(&entry, &self.filter, &self.linked) {
                self.found.push((at, entry.logged(self.tenant)));
            }
        }
        // Keep what a page needs: the newest page + 1.
        if self.found.len() > 4 * (self.page + 1) {
            self.found.sort_unstable_by_key(|e| std::cmp::Reverse(e.0));
            self.found.truncate(self.page + 1);
        }
        Ok(())
    }

    /// The page, newest first, and the cursor after it.
    pub fn finish(mut self, scope: &CursorScope) -> RequestPage {
        self.found.sort_unstable_by_key(|e| std::cmp::Reverse(e.0));
        let next = (self.found.len() > self.page).then(|| {
            let (at, row) = self.found[self.page - 1].0;
            scope.encode(&SortValue::Int(at), row)
        });
        self.found.truncate(self.page);
        RequestPage {
            entries: self.found.into_iter().map(|(_, e)| e).collect(),
            next,
        }
    }
}

/// Whether one entry is selected by `filter` (`linked`: request ids whose feed entries name
/// the filter's person).
fn matches(entry: &Stored, filter: &RequestFilter, linked: &BTreeSet<String>) -> bool {
    let since = filter.since.map(super::datetime_ns);
    let until = filter.until.map(super::datetime_ns);
    let status_ok = match filter.status {
        None => true,
        Some(StatusFilter::Exact(s)) => entry.status == s,
        Some(StatusFilter::Class(c)) => entry.status / 100 == u16::from(c),
    };
    let equals = |want: &Option<String>, have: &str| want.as_ref().is_none_or(|w| w == have);
    let prefixed = |prefix: &Option<String>, have: &Option<String>| {
        prefix
            .as_ref()
            .is_none_or(|p| have.as_ref().is_some_and(|h| h.starts_with(p.as_str())))
    };
    let kind = entry.resource_type.as_deref();
    status_ok
        && equals(&filter.method, &entry.method)
        && equals(&filter.token_id, &entry.token_id)
        && filter
            .resource_type
            .is_none_or(|k| kind == Some(k.resource_type()))
        && filter
            .resource_id
            .as_ref()
            .is_none_or(|id| entry.resource_id.as_ref() == Some(id))
        && filter.person.as_ref().is_none_or(|person| {
            (kind == Some("User") && entry.resource_id.as_ref() == Some(person))
                || linked.contains(&entry.request_id)
        })
        && since.is_none_or(|s| entry.at_ns >= s)
        && until.is_none_or(|u| entry.at_ns < u)
        && prefixed(&filter.scim_type_prefix, &entry.scim_type)
        && prefixed(&filter.detail_prefix, &entry.detail)
}

/// Whether a segment may hold the request `request_id` (its Bloom filter).
pub fn may_hold_request(header: &SegmentHeader, request_id: &str) -> bool {
    Bloom(header.bloom.as_slice()).may_contain(request_key(request_id))
}

/// The entry of `request_id` in a loaded segment.
pub fn request_in(
    tenant: TenantId,
    payload: &[u8],
    request_id: &str,
) -> Result<Option<LoggedRequest>> {
    let entries = decode(payload)?;
    Ok(entries
        .into_iter()
        .rev()
        .find(|e| e.request_id == request_id)
        .map(|e| e.logged(tenant)))
}

/// Whether a segment may hold an entry about `person` (by resource id) or of one of the
/// `linked` requests.
pub fn may_concern(header: &SegmentHeader, person: &str, linked: &[String]) -> bool {
    let bloom = Bloom(header.bloom.as_slice());
    bloom.may_contain(resource_key(person))
        || linked.iter().any(|r| bloom.may_contain(request_key(r)))
}

/// A segment rewritten by a scrub.
#[derive(Debug, Clone)]
pub struct Scrubbed {
    /// The new payload.
    pub payload: Vec<u8>,
    /// The new summary.
    pub summary: String,
    /// The new size ([`RequestRecord::bytes`] summed).
    pub bytes: i64,
    /// What the size was.
    pub bytes_before: i64,
}

/// The segment with every entry about `person` (a User, by resource id) or of one of the
/// `linked` requests scrubbed ([`RequestRecord::scrub`]); `None` if none is.
pub fn scrub(
    tenant: TenantId,
    payload: &[u8],
    person: &str,
    linked: &[String],
) -> Result<Option<Scrubbed>> {
    let mut entries = decode(payload)?;
    let size = |entries: &[Stored]| -> i64 { entries.iter().map(Stored::bytes).sum() };
    let bytes_before = size(&entries);
    let mut changed = false;
    for entry in entries.iter_mut().filter(|e| !e.scrubbed) {
        let about = entry.resource_type.as_deref() == Some("User")
            && entry.resource_id.as_deref() == Some(person);
        if about || linked.contains(&entry.request_id) {
            let mut record = entry.record(tenant);
            record.scrub();
            *entry = Stored::of(record, true);
            changed = true;
        }
    }
    if !changed {
        return Ok(None);
    }
    Ok(Some(Scrubbed {
        summary: serde_json::to_string(&Summary::of(&entries)).unwrap_or_default(),
        payload: encode(&entries),
        bytes: size(&entries),
        bytes_before,
    }))
}

/// What pruning removes from the front of a segment (its oldest entries).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trim {
    /// The entries older than this (nanoseconds since the epoch).
    Before(i64),
    /// The oldest entries until at least this many bytes ([`RequestRecord::bytes`]) are gone.
    Bytes(i64),
}

/// The oldest segment of a tenant's log, as pruning weighs it.
#[derive(Debug, Clone, Copy)]
pub struct Oldest {
    /// Its first and last entries' times (nanoseconds since the epoch).
    pub first_ns: i64,
    /// See `first_ns`.
    pub last_ns: i64,
    /// How many entries it holds.
    pub entries: i64,
    /// Their bytes ([`RequestRecord::bytes`]).
    pub bytes: i64,
}

/// What a pruning pass does with the oldest segment ([`prune_action`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneAction {
    /// Nothing in it is due: the pass is over.
    Stop,
    /// All of it is due: delete its row.
    Delete,
    /// Part of it is due: rewrite it with [`trim`].
    Trim(Trim),
}

/// What pruning does with a tenant's `oldest` segment, written once for both backends. By age
/// when there is a `cutoff` (entries older than it are due), else by size: the oldest entries
/// are due while the tenant's `used` bytes exceed `max_bytes`. `left` is how many more entries
/// the pass may remove: a segment holding more is trimmed, never deleted whole.
pub fn prune_action(
    oldest: &Oldest,
    cutoff: Option<i64>,
    used: i64,
    max_bytes: i64,
    left: i64,
) -> PruneAction {
    let whole = oldest.entries <= left;
    match cutoff {
        Some(cutoff) if oldest.first_ns >= cutoff => PruneAction::Stop,
        Some(cutoff) if oldest.last_ns < cutoff && whole => PruneAction::Delete,
        Some(cutoff) => PruneAction::Trim(Trim::Before(cutoff)),
        None if used <= max_bytes => PruneAction::Stop,
        None if oldest.bytes <= used - max_bytes && whole => PruneAction::Delete,
        None => PruneAction::Trim(Trim::Bytes(used - max_bytes)),
    }
}

/// A segment after [`trim`].
#[derive(Debug, Clone)]
pub struct Trimmed {
    /// Entries removed.
    pub entries: i64,
    /// Their bytes.
    pub bytes: i64,
    /// What is left of the segment, or `None` if nothing is (then delete its row).
    pub rest: Option<Segment>,
}

/// Removes from a segment's payload its oldest entries as `trim` says, at most `max_entries`
/// of them: pruning by age or by size is exact to the entry, not to the segment.
pub fn trim(tenant: TenantId, payload: &[u8], trim: Trim, max_entries: usize) -> Result<Trimmed> {
    let entries = decode(payload)?;
    let (mut removed, mut bytes) = (0usize, 0i64);
    for entry in &entries {
        let due = match trim {
            Trim::Before(cutoff) => entry.at_ns < cutoff,
            Trim::Bytes(excess) => bytes < excess,
        };
        if !due || removed == max_entries {
            break;
        }
        removed += 1;
        bytes += entry.bytes();
    }
    let rest = &entries[removed..];
    Ok(Trimmed {
        entries: removed as i64,
        bytes,
        rest: (!rest.is_empty() && removed > 0)
            .then(|| Segment::of(tenant, rest, rest.iter().map(Stored::bytes).sum())),
    })
}

/// What one token did, found in segments newest first ([`ActivityScan`]).
#[derive(Debug, Clone, Default)]
struct Found {
    last_request: Option<i64>,
    last_error: Option<super::LastError>,
}

/// The last request and the last error of each of `tokens`, found by reading segments newest
/// first: a backend offers each header to [`ActivityScan::wants`], loads the payloads wanted
/// into [`ActivityScan::add`], and stops when [`ActivityScan::is_done`].
#[derive(Debug)]
pub struct ActivityScan {
    tokens: std::collections::BTreeMap<String, Found>,
}

impl ActivityScan {
    /// A scan for `tokens`.
    pub fn new(tokens: impl IntoIterator<Item = String>) -> ActivityScan {
        ActivityScan {
            tokens: tokens.into_iter().map(|t| (t, Found::default())).collect(),
        }
    }

    /// Whether every token's last request and last error are found.
    pub fn is_done(&self) -> bool {
        self.tokens
            .values()
            .all(|f| f.last_request.is_some() && f.last_error.is_some())
    }

    /// Whether the segment holds something still looked for.
    pub fn wants(&self, header: &SegmentHeader) -> bool {
        let Ok(summary) = serde_json::from_str::<Summary>(&header.summary) else {
            return true;
        };
        self.tokens.iter().any(|(token, found)| {
            (found.last_request.is_none() && summary.tokens.binary_search(token).is_ok())
                || (found.last_error.is_none() && summary.error_tokens.binary_search(token).is_ok())
        })
    }

    /// A loaded segment (segments are offered newest first: what is found first is last).
    pub fn add(&mut self, payload: &[u8]) -> Result<()> {
        let entries = decode(payload)?;
        // Within a segment, entries are oldest first.
        for entry in entries.iter().rev() {
            let Some(found) = self.tokens.get_mut(&entry.token_id) else {
                continue;
            };
            if found.last_request.is_none() {
                found.last_request = Some(entry.at_ns);
            }
            if entry.status >= 400 && found.last_error.is_none() {
                found.last_error = Some(super::LastError {
                    request_id: entry.request_id.clone(),
                    at: super::datetime_of_ns(entry.at_ns),
                    status: entry.status,
                    scim_type: entry.scim_type.clone(),
                    detail: entry.detail.clone(),
                });
            }
        }
        Ok(())
    }

    /// Fills in `activity` (counted per minute elsewhere).
    pub fn fill(&self, activity: &mut [super::TokenActivity]) {
        for a in activity {
            if let Some(found) = self.tokens.get(&a.token_id) {
                a.last_request = found.last_request.map(super::datetime_of_ns);
                a.last_error = found.last_error.clone();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Instants beyond what nanoseconds since the epoch can hold (before 1677, after 2262)
    /// saturate: schemathesis found `until=1677-01-01T00:00:00Z` overflowing here.
    #[test]
    fn far_instants_saturate() {
        let key = crate::backend::sql::CursorKey::random().unwrap();
        let tenant = crate::backend::tenant_id(1);
        for seconds in [-9_300_000_000, 9_300_000_000] {
            let at = scim_schema::DateTime {
                unix_seconds: seconds,
                nanos: 0,
            };
            let filter = RequestFilter {
                since: Some(at),
                until: Some(at),
                ..RequestFilter::default()
            };
            let listing = Listing::new(tenant, &filter, &key.request_log_scope(tenant)).unwrap();
            let range = listing.range().unwrap();
            assert_eq!(
                range.max_first_ns,
                super::super::datetime_ns(at).saturating_sub(1)
            );
            assert_eq!(range.min_last_ns, super::super::datetime_ns(at));
        }
        assert_eq!(position(0, i64::MAX, 3).1, i64::MAX);
    }

    /// Skipping an entry that summarises as the one before it loses nothing.
    #[test]
    fn a_summary_holds_every_value_of_its_entries() {
        let entry = |status: u16, method: &str, token: &str, detail: Option<&str>| Stored {
            request_id: String::new(),
            at_ns: 0,
            token_id: token.into(),
            token_label: String::new(),
            method: method.into(),
            path: String::new(),
            status,
            scim_type: detail.map(|_| "invalidValue".into()),
            detail: detail.map(Into::into),
            duration_us: 0,
            resource_type: (status != 404).then(|| "User".into()),
            resource_id: None,
            request_body: None,
            response_body: None,
            scrubbed: false,
        };
        let mut entries = Vec::new();
        for i in 0..200u16 {
            let (status, detail) = match i % 7 {
                0 => (400, Some(format!("detail {}", i % 3))),
                1 => (404, None),
                _ => (200, None),
            };
            let method = ["GET", "GET", "PATCH"][usize::from(i % 3)];
            let token = ["t1", "t1", "t1", "t2"][usize::from(i / 50)];
            entries.push(entry(status, method, token, detail.as_deref()));
        }
        let mut every = Summary {
            details: Some(Vec::new()),
            ..Summary::default()
        };
        entries.iter().for_each(|e| every.add(e));
        assert_eq!(Summary::of(&entries), every);
        assert_eq!(every.tokens, ["t1", "t2"]);
        assert_eq!(every.error_tokens, ["t1", "t2"]);
        assert_eq!(every.statuses, [200, 400, 404]);
    }

    /// Stored filters are read by later releases: the bits a key sets never change.
    #[test]
    fn a_keys_bits_are_those_earlier_releases_set() {
        let bits: Vec<usize> = positions(128, request_key("r-1")).collect();
        assert_eq!(bits, [787, 684, 581, 478, 375, 272, 169]);
    }

    #[test]
    fn a_bloom_filter_has_no_false_negatives() {
        let mut bloom = Bloom::with_keys(1000);
        for i in 0..1000 {
            bloom.insert(Key(b"", format!("key-{i}").as_bytes()));
        }
        assert!((0..1000).all(|i| bloom.may_contain(Key(b"", format!("key-{i}").as_bytes()))));
        let false_positives = (0..10_000)
            .filter(|i| bloom.may_contain(Key(b"", format!("other-{i}").as_bytes())))
            .count();
        assert!(false_positives < 300, "{false_positives} of 10,000");
    }
}
