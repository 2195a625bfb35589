//! Bulk (RFC 7644 section 3.7): any JSON body is parsed as a BulkRequest and, when it parses,
//! its operations are scheduled as the server runs them, each creation succeeding or failing
//! as the input's last byte decides (bit `i % 8` for the operation of index `i`).
//!
//! Nothing may panic or hang (a cycle of bulkIds included). Every operation is handed out
//! exactly once, in at most as many steps as there are operations; an operation that runs has
//! every bulkId it references resolved once its data is substituted (a creation in a cycle
//! runs with the unresolved ones left out, section 3.7.1); an operation refused names a
//! reference to an operation that failed or to none; a parsed request never gets stuck.

#![no_main]

use libfuzzer_sys::fuzz_target;
use scim_patch::bulk::{BulkRequest, BulkSchedule, BulkStep, collect_references};
use serde_json::Value;
use std::collections::HashSet;

/// The server's default (`--bulk-max-operations`).
const MAX_OPERATIONS: u32 = 1000;

fuzz_target!(|data: &[u8]| {
    let Some((&outcomes, json)) = data.split_last() else {
        return;
    };
    let Ok(body) = serde_json::from_slice::<Value>(json) else {
        return;
    };
    let Ok(request) = BulkRequest::parse(&body, MAX_OPERATIONS) else {
        return;
    };
    let count = request.operations.len();
    let defined: HashSet<String> = request
        .operations
        .iter()
        .filter_map(|o| o.bulk_id.clone())
        .collect();
    let mut schedule = BulkSchedule::new(request.operations);
    let mut handed_out = HashSet::new();
    let mut failed = HashSet::new();
    let mut steps = 0;
    while let Some(step) = schedule.next_step() {
        steps += 1;
        assert!(steps <= count, "more steps than operations ({count})");
        match step {
            BulkStep::Run {
                mut operation,
                deferred,
            } => {
                assert!(handed_out.insert(operation.index), "handed out twice");
                if let Some(data) = operation.data.as_mut() {
                    schedule.substitute(data);
                    let mut left = HashSet::new();
                    collect_references(data, &mut left);
                    assert!(
                        left.is_empty(),
                        "operation {} runs with unresolved references {left:?}",
                        operation.index
                    );
                }
                for mut patch in deferred {
                    schedule.substitute(&mut patch);
                }
                if let Some(bulk_id) = operation.bulk_id {
                    if outcomes >> (operation.index % 8) & 1 == 1 {
                        schedule.resolve(&bulk_id, format!("id-{}", operation.index));
                    } else {
                        failed.insert(bulk_id.clone());
                        schedule.fail(&bulk_id);
                    }
                }
            }
            BulkStep::Refuse { operation, reason } => {
                assert!(handed_out.insert(operation.index), "handed out twice");
                assert!(
                    operation
                        .references
                        .iter()
                        .any(|r| failed.contains(r) || !defined.contains(r)),
                    "refused without a failed or unknown reference: {reason}"
                );
                // The server answers 409 for it; what it created depends on nothing else.
                if let Some(bulk_id) = operation.bulk_id {
                    failed.insert(bulk_id.clone());
                    schedule.fail(&bulk_id);
                }
            }
            BulkStep::Stuck(rest) => {
                panic!("a parsed request got stuck with {} operations", rest.len())
            }
        }
    }
    assert_eq!(handed_out.len(), count, "every operation is handed out");
});
