//! Filters (RFC 7644 section 3.4.2.2): any input parses or fails cleanly (no panic, no
//! stack overflow, no hang), and whatever parses prints to a canonical form that parses
//! back to the same AST and prints identically again.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_filter::{Limits, parse_filter, parse_filter_with};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(filter) = parse_filter(input) else {
        return;
    };
    let printed = filter.to_string();
    // The canonical form can be a little longer than the input (`not(` becomes `not (`,
    // `1e2` becomes `100.0`), so the round trip must not trip over the length limit.
    let unbounded = Limits {
        max_len: usize::MAX,
        ..Limits::DEFAULT
    };
    let reparsed = parse_filter_with(&printed, &unbounded);
    assert_eq!(
        reparsed.as_ref(),
        Ok(&filter),
        "input {input:?} printed {printed:?}"
    );
    if let Ok(reparsed) = reparsed {
        assert_eq!(
            reparsed.to_string(),
            printed,
            "canonical form is not stable"
        );
    }
});
