//! A segment's payload: its entries in a compact binary layout, LZ4-compressed.
//!
//! Why not JSON: the log encodes every request a server answers, on the core that answers them.
//! serde_json spent about 6,000 instructions on an entry (a small copy per key and punctuation
//! mark, and an escape check per byte of every string): half of what the log cost a GET on
//! `scripts/instructions.sh`. Here an entry is its fields in a fixed order, each string a
//! length and its bytes, which costs a tenth of that and is smaller before compression.
//!
//! Layout (after the [`MAGIC`] and LZ4's own size prefix), integers as LEB128 varints unless
//! said otherwise, strings as a varint length and UTF-8 bytes:
//! - the segment's tokens: their count, then each token's id and label (an entry names its
//!   token by its place in this list: a segment's entries come from a handful of tokens);
//! - the entry count, then per entry: a [`flags`] byte (which optional fields follow, whether
//!   the path ends in the resource id, `scrubbed`); the request id; `at_ns` (8 bytes
//!   little-endian, two's complement); the token's place; the method; the path, without a
//!   trailing `/{resource id}` when the flag says so (the id is not stored twice); `status` (2
//!   bytes little-endian); `duration_us`; then the optional fields that are present, in
//!   [`Stored`]'s order.
//!
//! Payloads written before this layout (a JSON array, LZ4-compressed with its size in front)
//! are still read: see [`decode`].

use super::Stored;
use crate::error::{Result, StoreError};

/// The first bytes of a payload in this layout. Read as the little-endian size prefix of an
/// older payload they say 843,271,251 bytes, beyond [`MAX_PAYLOAD_BYTES`], which no older
/// payload can claim: the two layouts cannot be mistaken for one another.
const MAGIC: &[u8; 4] = b"SLE2";

/// The most bytes a segment's entries may take once decompressed: far above what 512 entries
/// of bounded size take, and a bound on what a damaged row can make a reader allocate.
const MAX_PAYLOAD_BYTES: usize = 256 * 1024 * 1024;

/// The fewest bytes an entry takes: its flags, three empty strings, a token's place, the
/// fixed-size fields and a duration. Bounds what a claimed entry count can make a reader
/// reserve.
const MIN_ENTRY_BYTES: usize = 1 + 3 + 1 + 8 + 2 + 1;

/// The bits of an entry's flags byte.
mod flags {
    pub const SCIM_TYPE: u8 = 1;
    pub const DETAIL: u8 = 1 << 1;
    pub const RESOURCE_TYPE: u8 = 1 << 2;
    pub const RESOURCE_ID: u8 = 1 << 3;
    pub const REQUEST_BODY: u8 = 1 << 4;
    pub const RESPONSE_BODY: u8 = 1 << 5;
    /// The path ends in `/` and the resource id, which are not stored in it.
    pub const PATH_ENDS_IN_ID: u8 = 1 << 6;
    pub const SCRUBBED: u8 = 1 << 7;
}

/// `path` without a trailing `/{id}`, when it ends so.
fn path_before_id<'a>(path: &'a str, id: Option<&str>) -> Option<&'a str> {
    let id = id.filter(|id| !id.is_empty())?;
    path.strip_suffix(id)?.strip_suffix('/')
}

/// `entries` as a payload.
pub(super) fn encode(entries: &[Stored]) -> Vec<u8> {
    // The segment's tokens, in order of first use; most entries use the one before theirs.
    let mut tokens: Vec<(&str, &str)> = Vec::new();
    let mut places = Vec::with_capacity(entries.len());
    let mut last = usize::MAX;
    for entry in entries {
        let token = (entry.token_id.as_str(), entry.token_label.as_str());
        if tokens.get(last) != Some(&token) {
            last = match tokens.iter().position(|t| *t == token) {
                Some(place) => place,
                None => {
                    tokens.push(token);
                    tokens.len() - 1
                }
            };
        }
        places.push(last);
    }
    let mut body = Vec::with_capacity(entries.iter().map(encoded_size_hint).sum::<usize>() + 10);
    put_varint(&mut body, tokens.len() as u64);
    for (id, label) in &tokens {
        put_str(&mut body, id);
        put_str(&mut body, label);
    }
    put_varint(&mut body, entries.len() as u64);
    for (entry, place) in entries.iter().zip(places) {
        let optional = [
            (flags::SCIM_TYPE, entry.scim_type.as_deref()),
            (flags::DETAIL, entry.detail.as_deref()),
            (flags::RESOURCE_TYPE, entry.resource_type.as_deref()),
            (flags::RESOURCE_ID, entry.resource_id.as_deref()),
            (flags::REQUEST_BODY, entry.request_body.as_deref()),
            (flags::RESPONSE_BODY, entry.response_body.as_deref()),
        ];
        let path_before_id = path_before_id(&entry.path, entry.resource_id.as_deref());
        let mut bits = optional
            .iter()
            .filter(|(_, value)| value.is_some())
            .fold(0, |bits, (bit, _)| bits | bit);
        if path_before_id.is_some() {
            bits |= flags::PATH_ENDS_IN_ID;
        }
        if entry.scrubbed {
            bits |= flags::SCRUBBED;
        }
        body.push(bits);
        put_str(&mut body, &entry.request_id);
        body.extend_from_slice(&entry.at_ns.to_le_bytes());
        put_varint(&mut body, place as u64);
        put_str(&mut body, &entry.method);
        put_str(&mut body, path_before_id.unwrap_or(&entry.path));
        body.extend_from_slice(&entry.status.to_le_bytes());
        put_varint(&mut body, entry.duration_us);
        for value in optional.iter().filter_map(|(_, value)| *value) {
            put_str(&mut body, value);
        }
    }
    let mut payload = Vec::with_capacity(MAGIC.len() + 4 + body.len() / 2);
    payload.extend_from_slice(MAGIC);
    payload.extend_from_slice(&lz4_flex::block::compress_prepend_size(&body));
    payload
}

/// The entries of a stored payload, in either layout; an error, never a panic, for a damaged
/// one.
pub(super) fn decode(payload: &[u8]) -> Result<Vec<Stored>> {
    match payload.strip_prefix(MAGIC) {
        Some(compressed) => decode_body(&decompress(compressed)?),
        None => {
            let json = decompress(payload)?;
            serde_json::from_slice(&json).map_err(|e| unreadable(e.to_string()))
        }
    }
}

fn unreadable(why: impl std::fmt::Display) -> StoreError {
    StoreError::backend(format!("a provisioning log segment is unreadable: {why}"))
}

fn decompress(compressed: &[u8]) -> Result<Vec<u8>> {
    let (size, _) = lz4_flex::block::uncompressed_size(compressed).map_err(unreadable)?;
    if size > MAX_PAYLOAD_BYTES {
        return Err(unreadable(format!("it claims {size} bytes")));
    }
    lz4_flex::block::decompress_size_prepended(compressed).map_err(unreadable)
}

fn decode_body(body: &[u8]) -> Result<Vec<Stored>> {
    let mut reader = Reader { rest: body };
    let token_count = usize::try_from(reader.varint()?).map_err(unreadable)?;
    // Two empty strings take two bytes: a count beyond half the body is damage.
    let mut tokens = Vec::with_capacity(token_count.min(body.len() / 2));
    for _ in 0..token_count {
        tokens.push((reader.string()?, reader.string()?));
    }
    let count = usize::try_from(reader.varint()?).map_err(unreadable)?;
    let mut entries = Vec::with_capacity(count.min(body.len() / MIN_ENTRY_BYTES));
    for _ in 0..count {
        let [bits] = reader.array::<1>()?;
        let request_id = reader.string()?;
        let at_ns = i64::from_le_bytes(reader.array()?);
        let place = usize::try_from(reader.varint()?).map_err(unreadable)?;
        let (token_id, token_label) = tokens
            .get(place)
            .cloned()
            .ok_or_else(|| unreadable(format!("an entry names token {place} of {token_count}")))?;
        let method = reader.string()?;
        let mut path = reader.string()?;
        let status = u16::from_le_bytes(reader.array()?);
        let duration_us = reader.varint()?;
        let mut optional = |bit: u8| -> Result<Option<String>> {
            if bits & bit == 0 {
                return Ok(None);
            }
            reader.string().map(Some)
        };
        let scim_type = optional(flags::SCIM_TYPE)?;
        let detail = optional(flags::DETAIL)?;
        let resource_type = optional(flags::RESOURCE_TYPE)?;
        let resource_id = optional(flags::RESOURCE_ID)?;
        let request_body = optional(flags::REQUEST_BODY)?;
        let response_body = optional(flags::RESPONSE_BODY)?;
        if bits & flags::PATH_ENDS_IN_ID != 0 {
            match resource_id.as_deref().filter(|id| !id.is_empty()) {
                Some(id) => {
                    path.push('/');
                    path.push_str(id);
                }
                None => return Err(unreadable("a path ends in a resource id the entry lacks")),
            }
        }
        entries.push(Stored {
            request_id,
            at_ns,
            token_id,
            token_label,
            method,
            path,
            status,
            scim_type,
            detail,
            duration_us,
            resource_type,
            resource_id,
            request_body,
            response_body,
            scrubbed: bits & flags::SCRUBBED != 0,
        });
    }
    if !reader.rest.is_empty() {
        return Err(unreadable(format!(
            "{} bytes follow its last entry",
            reader.rest.len()
        )));
    }
    Ok(entries)
}

/// What [`encode`] will write for `entry`, near enough to size the buffer once.
fn encoded_size_hint(entry: &Stored) -> usize {
    let optional = [
        &entry.scim_type,
        &entry.detail,
        &entry.resource_type,
        &entry.resource_id,
        &entry.request_body,
        &entry.response_body,
    ];
    MIN_ENTRY_BYTES
        + 16
        + entry.request_id.len()
        + entry.method.len()
        + entry.path.len()
        + optional
            .iter()
            .map(|s| s.as_ref().map_or(0, |s| s.len() + 4))
            .sum::<usize>()
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn put_str(out: &mut Vec<u8>, text: &str) {
    put_varint(out, text.len() as u64);
    out.extend_from_slice(text.as_bytes());
}

/// Reads a body front to back; every read checks what is left.
struct Reader<'a> {
    rest: &'a [u8],
}

impl Reader<'_> {
    fn bytes(&mut self, n: usize) -> Result<&[u8]> {
        if n > self.rest.len() {
            return Err(unreadable(format!(
                "a field claims {n} bytes, {} are left",
                self.rest.len()
            )));
        }
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(taken)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut array = [0; N];
        array.copy_from_slice(self.bytes(N)?);
        Ok(array)
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let [byte] = self.array::<1>()?;
            value |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(unreadable("a number runs past 64 bits"))
    }

    fn string(&mut self) -> Result<String> {
        let len = usize::try_from(self.varint()?).map_err(unreadable)?;
        let bytes = self.bytes(len)?;
        String::from_utf8(bytes.to_vec()).map_err(unreadable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn any_text() -> impl Strategy<Value = String> {
        prop_oneof![".{0,40}", "[a-z0-9-]{0,300}"]
    }

    prop_compose! {
        fn any_stored()(
            texts in proptest::collection::vec(any_text(), 5),
            options in proptest::collection::vec(proptest::option::of(any_text()), 6),
            at_ns in any::<i64>(),
            status in any::<u16>(),
            duration_us in any::<u64>(),
            scrubbed in any::<bool>(),
            token in 0..3usize,
            path_ends_in_id in any::<bool>(),
        ) -> Stored {
            // A few shared tokens as well as random ones, and paths that end in their id.
            let (token_id, token_label) = match token {
                0 => (texts[1].clone(), texts[2].clone()),
                1 => ("t-1".to_owned(), "Entra".to_owned()),
                _ => ("t-1".to_owned(), "renamed".to_owned()),
            };
            let path = match (&options[3], path_ends_in_id) {
                (Some(id), true) => format!("{}/{id}", texts[4]),
                _ => texts[4].clone(),
            };
            Stored {
                request_id: texts[0].clone(),
                at_ns,
                token_id,
                token_label,
                method: texts[3].clone(),
                path,
                status,
                scim_type: options[0].clone(),
                detail: options[1].clone(),
                duration_us,
                resource_type: options[2].clone(),
                resource_id: options[3].clone(),
                request_body: options[4].clone(),
                response_body: options[5].clone(),
                scrubbed,
            }
        }
    }

    /// Stored has no PartialEq (nothing else needs one): compare the JSON the older layout wrote.
    fn json(entries: &[Stored]) -> String {
        serde_json::to_string(entries).unwrap()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn entries_come_back_as_they_went_in(
            entries in proptest::collection::vec(any_stored(), 0..40)
        ) {
            let decoded = decode(&encode(&entries)).unwrap();
            prop_assert_eq!(json(&decoded), json(&entries));
        }

        /// A damaged payload is an error, never a panic or an allocation it claims.
        #[test]
        fn a_damaged_body_is_an_error_not_a_panic(
            entries in proptest::collection::vec(any_stored(), 1..5),
            cut in any::<prop::sample::Index>(),
            flip in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut body = Vec::new();
            let payload = encode(&entries);
            body.extend_from_slice(&decompress(&payload[MAGIC.len()..]).unwrap());
            let short = &body[..cut.index(body.len())];
            prop_assert!(decode_body(short).is_err());
            let at = flip.index(body.len());
            body[at] = byte;
            let _ = decode_body(&body);
        }
    }

    /// Payloads written before this layout (a JSON array, LZ4-compressed) are still read.
    #[test]
    fn an_older_json_payload_is_still_read() {
        let old = r#"[{"i":"r1","t":5,"k":"tok","l":"Entra","m":"GET","p":"/Users/1","s":200,"u":12,"r":"User","x":"1"}]"#;
        let payload = lz4_flex::block::compress_prepend_size(old.as_bytes());
        let entries = decode(&payload).unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].token_label, "Entra");
        assert_eq!(entries[0].resource_id.as_deref(), Some("1"));
        assert_eq!(json(&decode(&encode(&entries)).unwrap()), json(&entries));
    }

    #[test]
    fn an_entry_naming_a_missing_token_or_id_is_an_error() {
        let body = |bits: u8| {
            let mut body = Vec::new();
            put_varint(&mut body, 1);
            put_str(&mut body, "t-1");
            put_str(&mut body, "Entra");
            put_varint(&mut body, 1);
            body.push(bits);
            put_str(&mut body, "r-1");
            body.extend_from_slice(&0i64.to_le_bytes());
            put_varint(&mut body, u64::from(bits & 1));
            put_str(&mut body, "GET");
            put_str(&mut body, "/Users");
            body.extend_from_slice(&200u16.to_le_bytes());
            put_varint(&mut body, 5);
            body
        };
        assert_eq!(decode_body(&body(0)).unwrap()[0].token_label, "Entra");
        let wrong_token = decode_body(&body(flags::SCIM_TYPE))
            .unwrap_err()
            .to_string();
        assert!(wrong_token.contains("names token 1 of 1"), "{wrong_token}");
        assert!(decode_body(&body(flags::PATH_ENDS_IN_ID)).is_err());
    }

    #[test]
    fn a_count_beyond_the_body_reserves_nothing_and_fails() {
        let mut body = Vec::new();
        put_varint(&mut body, u64::MAX >> 1);
        let payload = [
            MAGIC.as_slice(),
            &lz4_flex::block::compress_prepend_size(&body),
        ]
        .concat();
        assert!(decode(&payload).is_err());
        assert!(decode(b"SLE2").is_err());
        assert!(decode(b"").is_err());
    }
}
