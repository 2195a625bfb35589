//! Signed cursors (RFC 9865): the position after the last resource of a page, which only the
//! store that issued it can read back, and only for the tenant, resource type and query shape
//! it was issued for.
//!
//! A store keeps one secret [`CursorKey`] (32 random bytes; the SQL backends keep it in their
//! database, so that every replica shares it). For each query it makes a [`CursorScope`],
//! bound to the tenant, the resource type, the filter, `sortBy` and `sortOrder`; the scope
//! writes and reads the cursors of that query.
//!
//! # Wire form
//!
//! A cursor is the unpadded base64url (RFC 4648 section 5) of
//!
//! ```text
//! version (1) | key type (1) | masked row id (8) | sort key (0, 8 or the text's bytes) | tag (16)
//! ```
//!
//! - `tag` is HMAC-SHA256 (RFC 2104), truncated to 128 bits, under the store's key, of a label
//!   (`scimd cursor tag v1` and a NUL), the scope (the tenant's key and the resource type's
//!   code as 8-byte big-endian integers; the filter's and `sortBy`'s canonical text, each after
//!   its length as an 8-byte big-endian integer; `sortOrder` as one byte, 0 or 1) and the plain
//!   payload (version, key type, row id, sort key; integers big-endian, a decimal as its IEEE
//!   754 bits, text as UTF-8).
//!   A cursor altered in any byte, made by hand, or issued for another tenant, resource type or
//!   query does not verify: [`StoreError::InvalidCursor`]. The tag is checked in constant time.
//! - The row id is the backend's surrogate key, a counter shared by every tenant of the
//!   database: it is masked (XOR) with the first 8 bytes of a second HMAC, of a label
//!   (`scimd cursor mask v1` and a NUL) and the tag, so that a client learns nothing of how
//!   many resources other tenants created. The mask follows from the whole payload through the
//!   tag (the SIV construction), so cursors of different positions have unrelated masks. The
//!   sort key is not hidden: it is a value of the page's last resource, which the client was
//!   just sent. Cursors are signed, not encrypted as a whole.
//! - A cursor longer than [`MAX_CURSOR_LEN`] characters is refused before it is decoded.
//!
//! Cursors are short (44 characters for a `userName` of 7 letters; the unsigned hex form of
//! earlier versions took 64) and cost two HMAC computations to write or read.

use super::sort::SortValue;
use crate::error::StoreError;
use crate::types::{Query, ResourceKind, SortOrder, TenantId};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The longest cursor decoded, in characters; a longer one is refused at once. A cursor holds
/// its page's last sort key, so a sort key of more than about 12 KB (far beyond any real
/// `userName`, `displayName` or attribute used in `sortBy`) makes a cursor that is refused
/// (and already one that a `GET` cannot carry within the default 16 KiB request head).
pub const MAX_CURSOR_LEN: usize = 16 * 1024;

/// The wire form's version (the first byte).
const VERSION: u8 = 1;
/// Bytes of the truncated HMAC-SHA256 tag.
const TAG_LEN: usize = 16;
/// Where the masked row id is, in the payload.
const RID: std::ops::Range<usize> = 2..10;
/// The shortest cursor: version, key type, row id and tag (a `Null` sort key).
const MIN_LEN: usize = RID.end + TAG_LEN;

/// The labels of the two HMAC inputs; they differ early, so no input of one is an input of the
/// other.
const TAG_LABEL: &[u8] = b"scimd cursor tag v1\0";
const MASK_LABEL: &[u8] = b"scimd cursor mask v1\0";

/// The sort key's type byte.
const NULL: u8 = 0;
const INT: u8 = 1;
const REAL: u8 = 2;
const TEXT: u8 = 3;

/// The secret a store signs its cursors with. Never printed: its `Debug` says only that it is
/// one.
#[derive(Clone)]
pub struct CursorKey {
    /// The HMAC state keyed with the secret, before any input (cloned for each cursor, so the
    /// key's own set-up is done once).
    keyed: HmacSha256,
}

impl std::fmt::Debug for CursorKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorKey(..)")
    }
}

impl CursorKey {
    /// The length of a key, in bytes.
    pub const LEN: usize = 32;

    /// A fresh secret from the operating system's CSPRNG: what a store saves (once, when its
    /// database is created or migrated) and then opens with [`CursorKey::from_bytes`].
    pub fn generate() -> Result<[u8; Self::LEN], StoreError> {
        let mut bytes = [0u8; Self::LEN];
        getrandom::fill(&mut bytes).map_err(|e| StoreError::backend(format!("OS RNG: {e}")))?;
        Ok(bytes)
    }

    /// The key of a secret a store kept. A [`StoreError::Backend`] if it is not
    /// [`CursorKey::LEN`] bytes (a damaged key row): the message gives the length, never the
    /// bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<CursorKey, StoreError> {
        if bytes.len() != Self::LEN {
            return Err(StoreError::backend(format!(
                "the stored cursor key is {} bytes, expected {}",
                bytes.len(),
                Self::LEN
            )));
        }
        let keyed = HmacSha256::new_from_slice(bytes)
            .map_err(|e| StoreError::backend(format!("cursor key: {e}")))?;
        Ok(CursorKey { keyed })
    }

    /// A key of fresh random bytes, for a store that keeps nothing across restarts (an
    /// in-memory store): its cursors die with it.
    pub fn random() -> Result<CursorKey, StoreError> {
        CursorKey::from_bytes(&CursorKey::generate()?)
    }

    /// The cursors of `query` on resources of `kind` in `tenant`: what a cursor is bound to
    /// (RFC 9865: a cursor is only valid for the query that issued it). `count`,
    /// `attributes` and `excludedAttributes` may change from page to page; the filter,
    /// `sortBy` and `sortOrder` may not.
    pub fn scope(&self, tenant: TenantId, kind: ResourceKind, query: &Query) -> CursorScope {
        let filter = query
            .filter
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let sort = query
            .sort_by
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        let order: u8 = match query.sort_order {
            SortOrder::Ascending => 0,
            SortOrder::Descending => 1,
        };
        let mut bound = self.keyed.clone();
        bound.update(TAG_LABEL);
        bound.update(&tenant.key().to_be_bytes());
        bound.update(&kind.code().to_be_bytes());
        for text in [&filter, &sort] {
            // Lengths first, so that no two scopes feed the same bytes.
            bound.update(&(text.len() as u64).to_be_bytes());
            bound.update(text.as_bytes());
        }
        bound.update(&[order]);
        CursorScope {
            keyed: self.keyed.clone(),
            bound,
        }
    }
}

impl CursorKey {
    /// The cursors of `tenant`'s provisioning log listings ([`crate::admin`]): a position is
    /// an entry's time and row id, bound to the tenant and apart from every resource query's
    /// scope (a distinct length-prefixed text no filter prints), so that a cursor of one never
    /// reads as the other's. The listing's filters may change from page to page: they narrow
    /// the same time-ordered log.
    pub fn request_log_scope(&self, tenant: TenantId) -> CursorScope {
        const SCOPE: &[u8] = b"\0scimd request log v1";
        let mut bound = self.keyed.clone();
        bound.update(TAG_LABEL);
        bound.update(&tenant.key().to_be_bytes());
        bound.update(&(-1i64).to_be_bytes());
        bound.update(&(SCOPE.len() as u64).to_be_bytes());
        bound.update(SCOPE);
        CursorScope {
            keyed: self.keyed.clone(),
            bound,
        }
    }
}

/// The cursors of one query (see [`CursorKey::scope`]).
#[derive(Clone)]
pub struct CursorScope {
    keyed: HmacSha256,
    /// `keyed` after the label and the scope: the tag of a payload continues from here.
    bound: HmacSha256,
}

impl std::fmt::Debug for CursorScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CursorScope(..)")
    }
}

impl CursorScope {
    /// The cursor of the position after the resource with sort value `key` and row id `rid`.
    pub fn encode(&self, key: &SortValue, rid: i64) -> String {
        let (kind, value): (u8, std::borrow::Cow<'_, [u8]>) = match key {
            SortValue::Null => (NULL, (&[][..]).into()),
            SortValue::Int(i) => (INT, i.to_be_bytes().to_vec().into()),
            SortValue::Real(f) => (REAL, f.to_bits().to_be_bytes().to_vec().into()),
            SortValue::Text(s) => (TEXT, s.as_bytes().into()),
        };
        let mut bytes = Vec::with_capacity(MIN_LEN + value.len());
        bytes.push(VERSION);
        bytes.push(kind);
        bytes.extend_from_slice(&rid.to_be_bytes());
        bytes.extend_from_slice(&value);
        let tag = self.tag(&bytes);
        let mask = self.mask(&tag);
        xor_rid(&mut bytes, &mask);
        bytes.extend_from_slice(&tag);
        URL_SAFE_NO_PAD.encode(bytes)
    }

    /// The position an [`encode`](CursorScope::encode) of this scope wrote.
    /// [`StoreError::InvalidCursor`] for anything else: a cursor altered, made by hand, issued
    /// before an upgrade or under another key, or issued for another tenant, resource type,
    /// filter, `sortBy` or `sortOrder`.
    pub fn decode(&self, cursor: &str) -> Result<(SortValue, i64), StoreError> {
        if cursor.len() > MAX_CURSOR_LEN {
            return Err(StoreError::InvalidCursor(format!(
                "the cursor is longer than {MAX_CURSOR_LEN} characters: it is not one this \
                 server issued"
            )));
        }
        let invalid = || {
            StoreError::InvalidCursor(
                "the cursor is not valid here: it was altered, or issued before an upgrade, or \
                 for another tenant, resource type, filter, sortBy or sortOrder (RFC 9865); \
                 start the listing again without a cursor"
                    .to_owned(),
            )
        };
        let mut bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
        if bytes.len() < MIN_LEN || bytes[0] != VERSION {
            return Err(invalid());
        }
        let tag = bytes.split_off(bytes.len() - TAG_LEN);
        let mask = self.mask(&tag);
        xor_rid(&mut bytes, &mask);
        let mut mac = self.bound.clone();
        mac.update(&bytes);
        mac.verify_truncated_left(&tag).map_err(|_| invalid())?;
        // Signed by this store for this scope: the rest is its own writing, read defensively.
        let rid = i64::from_be_bytes(read8(&bytes[RID]).ok_or_else(invalid)?);
        let value = &bytes[RID.end..];
        let key = match bytes[1] {
            NULL if value.is_empty() => SortValue::Null,
            INT => SortValue::Int(i64::from_be_bytes(read8(value).ok_or_else(invalid)?)),
            REAL => SortValue::Real(f64::from_bits(u64::from_be_bytes(
                read8(value).ok_or_else(invalid)?,
            ))),
            TEXT => SortValue::Text(String::from_utf8(value.to_vec()).map_err(|_| invalid())?),
            _ => return Err(invalid()),
        };
        Ok((key, rid))
    }

    /// The tag of a plain payload.
    fn tag(&self, payload: &[u8]) -> [u8; TAG_LEN] {
        let mut mac = self.bound.clone();
        mac.update(payload);
        let full = mac.finalize().into_bytes();
        let mut tag = [0u8; TAG_LEN];
        tag.copy_from_slice(&full[..TAG_LEN]);
        tag
    }

    /// The row id's mask under a tag.
    fn mask(&self, tag: &[u8]) -> [u8; 8] {
        let mut mac = self.keyed.clone();
        mac.update(MASK_LABEL);
        mac.update(tag);
        let full = mac.finalize().into_bytes();
        let mut mask = [0u8; 8];
        mask.copy_from_slice(&full[..8]);
        mask
    }
}

fn xor_rid(payload: &mut [u8], mask: &[u8; 8]) {
    for (b, m) in payload[RID].iter_mut().zip(mask) {
        *b ^= m;
    }
}

fn read8(bytes: &[u8]) -> Option<[u8; 8]> {
    bytes.try_into().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::{tenant_id, token};
    use proptest::prelude::*;
    use scim_schema::AttrPath;

    fn key(byte: u8) -> CursorKey {
        CursorKey::from_bytes(&[byte; 32]).unwrap()
    }

    fn by_name(order: SortOrder) -> Query {
        Query {
            sort_by: Some(AttrPath::simple("userName")),
            sort_order: order,
            ..Query::default()
        }
    }

    fn users(key: &CursorKey, tenant: i64, query: &Query) -> CursorScope {
        key.scope(tenant_id(tenant), ResourceKind::User, query)
    }

    fn refused(result: Result<(SortValue, i64), StoreError>) -> bool {
        matches!(result, Err(StoreError::InvalidCursor(_)))
    }

    #[test]
    fn cursors_round_trip_and_are_bound_to_their_scope() {
        let k = key(7);
        let q = by_name(SortOrder::Ascending);
        let scope = users(&k, 1, &q);
        for value in [
            SortValue::Null,
            SortValue::Int(-5),
            SortValue::Real(2.5),
            SortValue::Text("élodie".into()),
        ] {
            let cursor = scope.encode(&value, 42);
            assert_eq!(scope.decode(&cursor).unwrap(), (value, 42));
            // Another tenant, resource type, query, or key.
            assert!(refused(users(&k, 2, &q).decode(&cursor)));
            assert!(refused(
                k.scope(tenant_id(1), ResourceKind::Group, &q)
                    .decode(&cursor)
            ));
            assert!(refused(
                users(&k, 1, &by_name(SortOrder::Descending)).decode(&cursor)
            ));
            assert!(refused(users(&k, 1, &Query::default()).decode(&cursor)));
            let filtered = Query {
                filter: Some(scim_filter::parse_filter("userName sw \"a\"").unwrap()),
                ..q.clone()
            };
            assert!(refused(users(&k, 1, &filtered).decode(&cursor)));
            assert!(refused(users(&key(8), 1, &q).decode(&cursor)));
        }
        for bad in [
            "",
            "zz",
            "00",
            "not-a-cursor",
            "AAAA",
            &"A".repeat(MIN_LEN * 2),
        ] {
            assert!(refused(scope.decode(bad)), "{bad}");
        }
    }

    /// The filter and `sortBy` are bound with their lengths: moving text from one to the other
    /// makes another scope.
    #[test]
    fn scopes_do_not_run_into_each_other() {
        let k = key(1);
        let a = Query {
            filter: Some(scim_filter::parse_filter("title pr").unwrap()),
            ..Query::default()
        };
        let cursor = users(&k, 1, &a).encode(&SortValue::Null, 1);
        let b = Query {
            sort_by: Some(AttrPath::simple("title")),
            ..Query::default()
        };
        assert!(refused(users(&k, 1, &b).decode(&cursor)));
    }

    /// The wire form: version 1, the sort key in clear, the row id masked, a 16-byte tag.
    /// Earlier versions issued the unsigned hex of JSON `[fingerprint, sort key, row id]`;
    /// those cursors are refused (RFC 9865 lets a cursor expire; the client starts again).
    #[test]
    fn cursors_have_the_signed_wire_form() {
        let scope = users(&key(7), 1, &by_name(SortOrder::Ascending));
        let cursor = scope.encode(&SortValue::Text("bjensen".into()), 7);
        assert_eq!(cursor.len(), 44);
        assert!(
            cursor
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'),
            "{cursor}"
        );
        let bytes = URL_SAFE_NO_PAD.decode(&cursor).unwrap();
        assert_eq!(bytes.len(), 1 + 1 + 8 + 7 + 16);
        assert_eq!(&bytes[..2], &[VERSION, TEXT]);
        assert_ne!(&bytes[RID], &7i64.to_be_bytes(), "the row id is masked");
        assert_eq!(&bytes[RID.end..RID.end + 7], b"bjensen");
        // Pinned: a change of the form (or of what it signs) must be deliberate. Computed
        // independently with Python's `hmac` from the description in the module documentation
        // (tenant and kind as 8-byte big-endian integers, lengths as 8-byte big-endian).
        assert_eq!(cursor, "AQOaPc_BycchnmJqZW5zZW6ErqmXGSBSzSTtkYWWaMl2");
        let int = scope.encode(&SortValue::Int(-3), 1);
        assert_eq!(int.len(), 46);
        // The old form, even for a row id that exists: refused.
        let old = token::hex(br#"["0011223344556677","bjensen",7]"#);
        assert!(refused(scope.decode(&old)));
    }

    #[test]
    fn a_huge_cursor_is_refused_before_it_is_decoded() {
        let scope = users(&key(7), 1, &Query::default());
        let huge = "A".repeat(1 << 20);
        let start = std::time::Instant::now();
        let err = scope.decode(&huge).unwrap_err();
        assert!(start.elapsed() < std::time::Duration::from_millis(50));
        assert!(err.to_string().contains("longer than 16384"), "{err}");
        // At the bound, it is decoded (and refused for its contents).
        assert!(refused(scope.decode(&"A".repeat(MAX_CURSOR_LEN))));
    }

    #[test]
    fn the_key_is_never_printed() {
        let k = key(0xab);
        let printed = format!(
            "{k:?} {:?}",
            k.scope(tenant_id(1), ResourceKind::User, &Query::default())
        );
        assert!(!printed.to_lowercase().contains("ab"), "{printed}");
        assert!(CursorKey::from_bytes(&[0; 31]).is_err());
        assert_ne!(
            CursorKey::generate().unwrap(),
            CursorKey::generate().unwrap()
        );
    }

    fn sort_value() -> impl Strategy<Value = SortValue> {
        prop_oneof![
            Just(SortValue::Null),
            any::<i64>().prop_map(SortValue::Int),
            // Every finite decimal survives exactly (its bits are carried).
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(SortValue::Real),
            any::<String>().prop_map(SortValue::Text),
        ]
    }

    proptest! {
        #[test]
        fn every_cursor_decodes_to_its_position(
            value in sort_value(),
            rid in any::<i64>(),
            tenant in any::<i64>(),
        ) {
            let scope = users(&key(3), tenant, &by_name(SortOrder::Descending));
            let cursor = scope.encode(&value, rid);
            prop_assert!(cursor.len() <= MAX_CURSOR_LEN);
            prop_assert_eq!(scope.decode(&cursor).unwrap(), (value, rid));
        }

        /// Any change of one byte of the cursor's bytes (its payload or its tag), and any change
        /// of one character of its text, is refused.
        #[test]
        fn any_single_byte_change_is_refused(
            value in sort_value(),
            rid in any::<i64>(),
            at in any::<prop::sample::Index>(),
            flip in 1..=255u8,
            other in "[A-Za-z0-9_-]",
        ) {
            let scope = users(&key(3), 1, &Query::default());
            let cursor = scope.encode(&value, rid);
            let mut bytes = URL_SAFE_NO_PAD.decode(&cursor).unwrap();
            let i = at.index(bytes.len());
            bytes[i] ^= flip;
            prop_assert!(refused(scope.decode(&URL_SAFE_NO_PAD.encode(&bytes))));
            // In the text: another base64url character at one place.
            let j = at.index(cursor.len());
            let mut text = cursor.clone().into_bytes();
            prop_assume!(text[j] != other.as_bytes()[0]);
            text[j] = other.as_bytes()[0];
            let text = String::from_utf8(text).unwrap();
            prop_assert!(refused(scope.decode(&text)), "{} -> {}", cursor, text);
            // Truncated, or extended.
            prop_assert!(refused(scope.decode(&cursor[..cursor.len() - 1])));
            let longer = format!("{cursor}A");
            prop_assert!(refused(scope.decode(&longer)));
        }

        #[test]
        fn no_cursor_decodes_for_another_tenant(
            value in sort_value(),
            rid in any::<i64>(),
            a in any::<i64>(),
            b in any::<i64>(),
        ) {
            prop_assume!(a != b);
            let q = by_name(SortOrder::Ascending);
            let cursor = users(&key(3), a, &q).encode(&value, rid);
            prop_assert!(refused(users(&key(3), b, &q).decode(&cursor)));
        }

        #[test]
        fn arbitrary_text_is_refused_not_panicked_on(cursor in ".{0,128}") {
            prop_assert!(refused(users(&key(3), 1, &Query::default()).decode(&cursor)));
        }
    }
}
