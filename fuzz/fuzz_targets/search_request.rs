//! Searches (RFC 7644 sections 3.4.2 and 3.4.3): a list request's query string, decoded as
//! every endpoint decodes it, and a `POST .search` body, both read into a SearchRequest and
//! prepared with the server's default page limits.
//!
//! Input: a query string when it does not start with `{`, else a SearchRequest body.
//!
//! Nothing may panic. A prepared search keeps `startIndex` at least 1 and `count` within the
//! limit (section 3.4.2.4 lets a server clamp it), and a filter it parsed prints to text that
//! parses back to the same filter.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_filter::search::SearchRequest;
use scim_filter::{Limits, parse_filter_with};
use serde_json::Value;

/// The server's defaults (`--default-count`, `--max-results`).
const DEFAULT_COUNT: u64 = 100;
const MAX_RESULTS: u64 = 1000;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let request = if text.trim_start().starts_with('{') {
        let Ok(body) = serde_json::from_str::<Value>(text) else {
            return;
        };
        SearchRequest::from_json(&body)
    } else {
        let Ok(pairs) = scim_server::fuzzing::query_pairs(text) else {
            return;
        };
        SearchRequest::from_query(&pairs)
    };
    let Ok(request) = request else {
        return;
    };
    for (default_count, max_results) in [(DEFAULT_COUNT, MAX_RESULTS), (0, 0), (u64::MAX, u64::MAX)]
    {
        let Ok(prepared) = request.prepare(default_count, max_results) else {
            continue;
        };
        assert!(prepared.start_index >= 1, "startIndex below 1: {request:?}");
        assert!(
            prepared.count <= max_results,
            "count {} above the limit {max_results}: {request:?}",
            prepared.count
        );
        if let Some(filter) = &prepared.filter {
            let printed = filter.to_string();
            let unbounded = Limits {
                max_len: usize::MAX,
                ..Limits::DEFAULT
            };
            assert_eq!(
                parse_filter_with(&printed, &unbounded).as_ref(),
                Ok(filter),
                "printed {printed:?}"
            );
        }
    }
});
