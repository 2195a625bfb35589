//! PATCH paths (RFC 7644 section 3.5.2): any input parses or fails cleanly, and whatever
//! parses prints to a canonical form that parses back to the same path.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_filter::{Limits, parse_patch_path, parse_patch_path_with};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(path) = parse_patch_path(input) else {
        return;
    };
    let printed = path.to_string();
    let unbounded = Limits {
        max_len: usize::MAX,
        ..Limits::DEFAULT
    };
    let reparsed = parse_patch_path_with(&printed, &unbounded);
    assert_eq!(
        reparsed.as_ref(),
        Ok(&path),
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
