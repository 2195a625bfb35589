//! Cursors (RFC 9865): what a client sends back as `cursor` is decoded by the SQL backends'
//! signed cursor scheme (`CursorScope::decode`), whatever it is. And a position built from the
//! input is encoded, then decoded: by the scope that issued it, to the same position; by
//! another tenant's, another resource type's, another filter's or the provisioning log's
//! scope, never; nor after any one character of it is changed.
//!
//! Input: the whole input, as text, is decoded as a cursor; then its first byte picks the kind
//! of sort value (none, integer, decimal, text), the next eight are the row id, and the rest
//! the value.
//!
//! Nothing may panic; the checks above hold.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_store::backend::sql::{CursorKey, CursorScope, SortValue};
use scim_store::backend::tenant_id;
use scim_store::{Query, ResourceKind};
use std::sync::OnceLock;

struct Scopes {
    issuer: CursorScope,
    others: Vec<CursorScope>,
}

fn scopes() -> &'static Scopes {
    static SCOPES: OnceLock<Scopes> = OnceLock::new();
    SCOPES.get_or_init(|| {
        let key = CursorKey::from_bytes(&[7; CursorKey::LEN]).expect("a key of the right length");
        let other_key =
            CursorKey::from_bytes(&[8; CursorKey::LEN]).expect("a key of the right length");
        // This harness stands in for a store: tenant ids are its own keys.
        let (acme, globex) = (tenant_id(1), tenant_id(2));
        let all = Query::default();
        let filtered = Query {
            filter: scim_filter::parse_filter("userName sw \"a\"").ok(),
            ..Query::default()
        };
        Scopes {
            issuer: key.scope(acme, ResourceKind::User, &all),
            others: vec![
                key.scope(globex, ResourceKind::User, &all),
                key.scope(acme, ResourceKind::Group, &all),
                key.scope(acme, ResourceKind::User, &filtered),
                key.request_log_scope(acme),
                other_key.scope(acme, ResourceKind::User, &all),
            ],
        }
    })
}

fn same(a: &SortValue, b: &SortValue) -> bool {
    match (a, b) {
        (SortValue::Real(x), SortValue::Real(y)) => x.to_bits() == y.to_bits(),
        _ => a == b,
    }
}

fuzz_target!(|data: &[u8]| {
    let scopes = scopes();
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = scopes.issuer.decode(text);
    }
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let Some((rid, value)) = rest.split_first_chunk::<8>() else {
        return;
    };
    let rid = i64::from_be_bytes(*rid);
    let value = match kind % 4 {
        0 => SortValue::Null,
        1 => SortValue::Int(i64::from_be_bytes(
            value.first_chunk::<8>().copied().unwrap_or_default(),
        )),
        2 => SortValue::Real(f64::from_be_bytes(
            value.first_chunk::<8>().copied().unwrap_or_default(),
        )),
        _ => SortValue::Text(String::from_utf8_lossy(value).into_owned()),
    };
    let cursor = scopes.issuer.encode(&value, rid);
    if cursor.len() > scim_store::backend::sql::MAX_CURSOR_LEN {
        // The server never issues a cursor for a sort value this long: it pages by index.
        assert!(
            scopes.issuer.decode(&cursor).is_err(),
            "an over-long cursor was accepted"
        );
        return;
    }
    match scopes.issuer.decode(&cursor) {
        Ok((decoded, decoded_rid)) => {
            assert!(same(&decoded, &value), "{decoded:?} is not {value:?}");
            assert_eq!(decoded_rid, rid);
        }
        Err(e) => panic!("a cursor its scope issued did not decode: {e}"),
    }
    for other in &scopes.others {
        assert!(
            other.decode(&cursor).is_err(),
            "another scope accepted {cursor:?}"
        );
    }
    // Change one character (picked by the row id) to another of the alphabet.
    let mut bytes = cursor.into_bytes();
    let at = (rid.unsigned_abs() % bytes.len() as u64) as usize;
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(bytes).expect("base64 is ASCII");
    assert!(
        scopes.issuer.decode(&tampered).is_err(),
        "a changed cursor was accepted: {tampered:?}"
    );
});
