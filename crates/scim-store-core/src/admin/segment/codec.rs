//! A segment's payload: its entries in a compact binary layout, LZ4-compressed.
//!
//! Why not JSON: the log encodes every request a server answers, on the core that answers them.
//! serde_json spent about 6,000 instructions on an entry (a small copy per key and punctuation
//! mark, and an escape check per byte of every string): half of what the log cost a GET on
//! `scripts/instructions.sh`. Here an entry is its fields in a fixed order, each string a
//! length and its bytes, which costs a tenth of that and is smaller before compression.
//!
//! Layout (after the [`MAGIC`] and LZ4's own size prefix): the entry count as a varint, then per
//! entry, in [`Stored`]'s field order: strings as a varint length and UTF-8 bytes; optional
//! strings as a byte 0 (absent) or 1 and the string; `at_ns` as 8 bytes little-endian (two's
//! complement); `status` as 2 bytes; `duration_us` as a varint; `scrubbed` as a byte 0 or 1.
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

/// The fewest bytes an entry takes: five empty strings, the fixed-size fields, six absent
/// options and `scrubbed`. Bounds what a claimed entry count can make a reader reserve.
const MIN_ENTRY_BYTES: usize = 5 + 8 + 2 + 1 + 6 + 1;

/// `entries` as a payload.
pub(super) fn encode(entries: &[Stored]) -> Vec<u8> {
    let mut body = Vec::with_capacity(entries.iter().map(encoded_size_hint).sum::<usize>() + 10);
    put_varint(&mut body, entries.len() as u64);
    for entry in entries {
        put_str(&mut body, &entry.request_id);
        body.extend_from_slice(&entry.at_ns.to_le_bytes());
        put_str(&mut body, &entry.token_id);
        put_str(&mut body, &entry.token_label);
        put_str(&mut body, &entry.method);
        put_str(&mut body, &entry.path);
        body.extend_from_slice(&entry.status.to_le_bytes());
        put_option(&mut body, entry.scim_type.as_deref());
        put_option(&mut body, entry.detail.as_deref());
        put_varint(&mut body, entry.duration_us);
        put_option(&mut body, entry.resource_type.as_deref());
        put_option(&mut body, entry.resource_id.as_deref());
        put_option(&mut body, entry.request_body.as_deref());
        put_option(&mut body, entry.response_body.as_deref());
        body.push(u8::from(entry.scrubbed));
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
    let count = reader.varint()?;
    let count = usize::try_from(count).map_err(unreadable)?;
    let mut entries = Vec::with_capacity(count.min(body.len() / MIN_ENTRY_BYTES));
    for _ in 0..count {
        entries.push(Stored {
            request_id: reader.string()?,
            at_ns: i64::from_le_bytes(reader.array()?),
            token_id: reader.string()?,
            token_label: reader.string()?,
            method: reader.string()?,
            path: reader.string()?,
            status: u16::from_le_bytes(reader.array()?),
            scim_type: reader.option()?,
            detail: reader.option()?,
            duration_us: reader.varint()?,
            resource_type: reader.option()?,
            resource_id: reader.option()?,
            request_body: reader.option()?,
            response_body: reader.option()?,
            scrubbed: reader.flag()?,
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
        + entry.token_id.len()
        + entry.token_label.len()
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

fn put_option(out: &mut Vec<u8>, text: Option<&str>) {
    match text {
        Some(text) => {
            out.push(1);
            put_str(out, text);
        }
        None => out.push(0),
    }
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

    fn flag(&mut self) -> Result<bool> {
        match self.array::<1>()? {
            [0] => Ok(false),
            [1] => Ok(true),
            [other] => Err(unreadable(format!("a flag is {other}, not 0 or 1"))),
        }
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

    fn option(&mut self) -> Result<Option<String>> {
        Ok(if self.flag()? {
            Some(self.string()?)
        } else {
            None
        })
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
        ) -> Stored {
            Stored {
                request_id: texts[0].clone(),
                at_ns,
                token_id: texts[1].clone(),
                token_label: texts[2].clone(),
                method: texts[3].clone(),
                path: texts[4].clone(),
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
            entries in proptest::collection::vec(any_stored(), 0..20)
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
