//! Filter parsing speed (RFC 7644 section 3.4.2.2), ours against the published Rust parsers.
//!
//! The set is the project's 13 realistic filters (`shared/bench/filters.txt`, copied to
//! `tests/data/filters.txt`). Figures are per filter: each iteration parses the whole set
//! (and drops the results, as a server does), and the summary divides by the set's size.
//!
//! - `parse`: this crate, the whole set and each filter alone.
//! - `parse_peers`: `scim-filter` 0.2.3 (nom) and `scim_v2` 1.0.0 (lalrpop) beside ours, on
//!   the subset every parser accepts (so the means compare like for like) and on each
//!   parser's own accepted set.
//! - Parse + evaluate is measured in `benches/eval.rs` (group `parse_eval`).
//!
//! After criterion, a short calibrated run prints one table of ns/filter for every parser.
//! Run with `cargo bench -p scimd-filter --bench parse` (the published `scim-filter` it is
//! measured against is a dev-dependency here).

#![allow(missing_docs, reason = "a bench binary has no public API")]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput};

const FILTERS_FILE: &str = include_str!("../tests/data/filters.txt");
const EDGE_FILE: &str = include_str!("../tests/data/filters-edge.txt");

fn filters() -> Vec<&'static str> {
    lines(FILTERS_FILE)
}

fn lines(file: &'static str) -> Vec<&'static str> {
    file.lines().filter(|l| !l.trim().is_empty()).collect()
}

/// One parser under test: a name and a function that parses and drops one filter,
/// returning whether it was accepted.
#[derive(Clone, Copy)]
struct Contender {
    name: &'static str,
    parse: fn(&str) -> bool,
}

fn ours(input: &str) -> bool {
    black_box(scim_filter::parse_filter(black_box(input))).is_ok()
}

fn peer_scim_filter(input: &str) -> bool {
    // Its entry point is the nom parser itself; a filter counts as accepted when the whole
    // input is consumed, as our parser requires.
    match black_box(peer_scim_filter::parser::filter(black_box(input))) {
        Ok((rest, _)) => rest.trim().is_empty(),
        Err(_) => false,
    }
}

fn scim_v2(input: &str) -> bool {
    black_box(black_box(input).parse::<scim_v2::filter::Filter>()).is_ok()
}

const CONTENDERS: [Contender; 3] = [
    Contender {
        name: "ours",
        parse: ours,
    },
    Contender {
        name: "peer_scim_filter",
        parse: peer_scim_filter,
    },
    Contender {
        name: "scim_v2",
        parse: scim_v2,
    },
];

/// The filters a contender accepts; prints the ones it rejects.
fn accepted_by(contender: Contender, all: &[&'static str]) -> Vec<&'static str> {
    all.iter()
        .copied()
        .filter(|f| {
            let ok = (contender.parse)(f);
            if !ok {
                eprintln!("{} rejects: {f}", contender.name);
            }
            ok
        })
        .collect()
}

fn parse_all(contender: Contender, set: &[&str]) {
    for f in set {
        (contender.parse)(f);
    }
}

mod parse {
    use super::*;

    pub fn bench(c: &mut Criterion) {
        let all = filters();
        let mut group = c.benchmark_group("parse");
        group
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
        group.throughput(Throughput::Elements(all.len() as u64));
        group.bench_function("ours/all", |b| b.iter(|| parse_all(CONTENDERS[0], &all)));
        group.throughput(Throughput::Elements(1));
        for (i, f) in all.iter().enumerate() {
            group.bench_with_input(BenchmarkId::new("ours", i + 1), f, |b, f| {
                b.iter(|| ours(f))
            });
        }
        group.finish();
    }
}

mod parse_peers {
    use super::*;

    pub fn bench(c: &mut Criterion) {
        let all = filters();
        let common = common_subset(&all);
        let mut group = c.benchmark_group("parse_peers");
        group
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(3));
        for contender in CONTENDERS {
            let own = accepted_by(contender, &all);
            group.throughput(Throughput::Elements(common.len() as u64));
            group.bench_function(format!("{}/common", contender.name), |b| {
                b.iter(|| parse_all(contender, &common))
            });
            if own.len() != common.len() {
                group.throughput(Throughput::Elements(own.len() as u64));
                group.bench_function(format!("{}/accepted", contender.name), |b| {
                    b.iter(|| parse_all(contender, &own))
                });
            }
        }
        group.finish();
    }

    pub fn common_subset(all: &[&'static str]) -> Vec<&'static str> {
        all.iter()
            .copied()
            .filter(|f| CONTENDERS.iter().all(|c| (c.parse)(f)))
            .collect()
    }
}

// A further group goes here as `mod name { pub fn bench(c: &mut Criterion) }`, called
// from `main` below.

/// Mean ns per filter over `set`: the best of several calibrated runs, which filters out
/// scheduling noise on a shared machine better than a single mean.
fn ns_per_filter(contender: Contender, set: &[&str]) -> f64 {
    if set.is_empty() {
        return f64::NAN;
    }
    let mut iterations = 1u64;
    loop {
        let start = Instant::now();
        for _ in 0..iterations {
            parse_all(contender, set);
        }
        if start.elapsed() >= Duration::from_millis(50) {
            break;
        }
        iterations *= 2;
    }
    let best = (0..5)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..iterations {
                parse_all(contender, set);
            }
            start.elapsed()
        })
        .min()
        .unwrap_or_default();
    best.as_nanos() as f64 / (iterations as f64 * set.len() as f64)
}

fn summary() {
    let all = filters();
    let common = parse_peers::common_subset(&all);
    println!();
    println!("Mean parse time per filter (best of 5 calibrated runs), filters.txt:");
    println!(
        "| parser | accepted | ns/filter, accepted set | ns/filter, common set ({}) |",
        common.len()
    );
    println!("|---|---|---|---|");
    for contender in CONTENDERS {
        let own = accepted_by(contender, &all);
        println!(
            "| {} | {}/{} | {:.0} | {:.0} |",
            contender.name,
            own.len(),
            all.len(),
            ns_per_filter(contender, &own),
            ns_per_filter(contender, &common)
        );
    }
    // Not timed: how much of the edge-case set (escapes, exponents, `null`, mixed case,
    // `not(`, trailing spaces, `not` in a value path) each parser accepts at all.
    let edge = lines(EDGE_FILE);
    println!();
    for contender in CONTENDERS {
        let accepted = accepted_by(contender, &edge).len();
        println!(
            "{}: accepts {accepted}/{} of filters-edge.txt",
            contender.name,
            edge.len()
        );
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    parse::bench(&mut c);
    parse_peers::bench(&mut c);
    c.final_summary();
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and needs no table.
    if std::env::args().any(|a| a == "--bench") {
        summary();
    }
}
