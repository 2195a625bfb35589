//! Prometheus metrics in the text exposition format (version 0.0.4), written by hand: a few
//! counters and histograms do not justify a metrics framework.
//!
//! Labels are drawn from fixed sets, never from request data, so the number of series is
//! bounded whatever clients send (an attacker without a token could otherwise add a series per
//! invented method, and every series is kept by the server and by Prometheus forever):
//!
//! - `route`: a route template such as `/Users/{id}` (`&'static str`), `other` when none
//!   matched;
//! - `method`: one of the methods of RFC 9110 section 9 and PATCH (RFC 5789), `other` for any
//!   extension method;
//! - `status`: the exact status code when it is a registered one (about 60), `other` otherwise.
//!   Exact codes, not classes: operators alert on 401 (a broken IdP token), 429 and 503
//!   separately, and the service only answers codes it names in its source anyway;
//! - `operation`: a store operation (`&'static str`).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bound, slot) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if seconds <= *bound {
                *slot += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }

    fn write(&self, out: &mut String, name: &str, labels: &str) {
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter()) {
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum{{{labels}}} {}", self.sum);
        let _ = writeln!(out, "{name}_count{{{labels}}} {}", self.count);
    }
}

#[derive(Debug, Default)]
struct Series {
    /// By route, method label and status label (see [`method_label`], [`status_label`]).
    requests: BTreeMap<(&'static str, &'static str, u16), u64>,
    request_latency: BTreeMap<&'static str, Histogram>,
    store_latency: BTreeMap<&'static str, Histogram>,
    store_errors: BTreeMap<&'static str, u64>,
}

/// The `method` label: a method of RFC 9110 section 9 or PATCH (RFC 5789), or `other`. hyper
/// accepts any token as a method, so the request's own text must never become a label.
fn method_label(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::HEAD => "HEAD",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::CONNECT => "CONNECT",
        http::Method::TRACE => "TRACE",
        _ => "other",
    }
}

/// The `status` key: a registered status code (one the `http` crate knows a reason phrase
/// for, about 60), or 0, rendered `other`. The service chooses its statuses, not the client,
/// but the label set stays bounded even if a handler answers an odd code.
fn status_label(status: u16) -> u16 {
    match http::StatusCode::from_u16(status) {
        Ok(code) if code.canonical_reason().is_some() => status,
        _ => 0,
    }
}

/// The server's metrics. One per server, shared by every connection.
#[derive(Debug, Default)]
pub struct Metrics {
    series: Mutex<Series>,
    connections_open: AtomicU64,
    connections_total: AtomicU64,
    connections_refused_per_address: AtomicU64,
    connections_header_timeout: AtomicU64,
    connections_idle_timeout: AtomicU64,
    /// Provisioning log entries written, dropped (queue full or store failure), and request
    /// bodies not kept because they were not JSON.
    request_log: [AtomicU64; 3],
}

/// Why the listener closed a connection it did not serve to the end: the `reason` label, from
/// this fixed set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionCut {
    /// Refused at accept: the client already held `max_connections_per_address` connections.
    PerAddress,
    /// No complete request head within the header timeout of the accept.
    HeaderTimeout,
    /// No open request for the idle timeout.
    IdleTimeout,
}

impl Metrics {
    /// Runs a store call, recording its latency and failures under `operation`.
    pub(crate) async fn timed<T>(
        &self,
        operation: &'static str,
        call: impl std::future::Future<Output = Result<T, scim_store::StoreError>>,
    ) -> Result<T, scim_store::StoreError> {
        let started = std::time::Instant::now();
        let result = call.await;
        let failed = matches!(
            result,
            Err(scim_store::StoreError::Backend { .. }
                | scim_store::StoreError::StorageFull(_)
                | scim_store::StoreError::Timeout(_))
        );
        self.store(operation, started.elapsed(), failed);
        result
    }

    /// Counts provisioning log entries.
    pub(crate) fn request_log(&self, counter: crate::provisioning::LogCounter, n: u64) {
        let index = match counter {
            crate::provisioning::LogCounter::Written => 0,
            crate::provisioning::LogCounter::Dropped => 1,
            crate::provisioning::LogCounter::NotJson => 2,
        };
        self.request_log[index].fetch_add(n, Ordering::Relaxed);
    }

    /// Records one answered request.
    pub fn request(
        &self,
        route: &'static str,
        method: &http::Method,
        status: u16,
        latency: Duration,
    ) {
        if let Ok(mut series) = self.series.lock() {
            *series
                .requests
                .entry((route, method_label(method), status_label(status)))
                .or_default() += 1;
            series
                .request_latency
                .entry(route)
                .or_default()
                .observe(latency.as_secs_f64());
        }
    }

    /// Records one store call.
    pub fn store(&self, operation: &'static str, latency: Duration, failed: bool) {
        if let Ok(mut series) = self.series.lock() {
            series
                .store_latency
                .entry(operation)
                .or_default()
                .observe(latency.as_secs_f64());
            if failed {
                *series.store_errors.entry(operation).or_default() += 1;
            }
        }
    }

    /// A connection was accepted.
    pub fn connection_opened(&self) {
        self.connections_open.fetch_add(1, Ordering::Relaxed);
        self.connections_total.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection was closed.
    pub fn connection_closed(&self) {
        self.connections_open.fetch_sub(1, Ordering::Relaxed);
    }

    /// The listener refused a connection or closed it for a deadline.
    pub fn connection_cut(&self, why: ConnectionCut) {
        let counter = match why {
            ConnectionCut::PerAddress => &self.connections_refused_per_address,
            ConnectionCut::HeaderTimeout => &self.connections_header_timeout,
            ConnectionCut::IdleTimeout => &self.connections_idle_timeout,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The exposition text served at `/metrics`.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(8 * 1024);
        let series = match self.series.lock() {
            Ok(series) => series,
            Err(poisoned) => poisoned.into_inner(),
        };
        out.push_str("# HELP scimd_http_requests_total HTTP requests answered, by route template, method and status.\n");
        out.push_str("# TYPE scimd_http_requests_total counter\n");
        for ((route, method, status), count) in &series.requests {
            let status: &dyn std::fmt::Display = if *status == 0 { &"other" } else { status };
            let _ = writeln!(
                out,
                "scimd_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {count}"
            );
        }
        out.push_str("# HELP scimd_http_request_duration_seconds Time from request head to response, by route template.\n");
        out.push_str("# TYPE scimd_http_request_duration_seconds histogram\n");
        for (route, histogram) in &series.request_latency {
            histogram.write(
                &mut out,
                "scimd_http_request_duration_seconds",
                &format!("route=\"{route}\""),
            );
        }
        out.push_str("# HELP scimd_store_operation_duration_seconds Time spent in store calls, by operation.\n");
        out.push_str("# TYPE scimd_store_operation_duration_seconds histogram\n");
        for (operation, histogram) in &series.store_latency {
            histogram.write(
                &mut out,
                "scimd_store_operation_duration_seconds",
                &format!("operation=\"{operation}\""),
            );
        }
        out.push_str(
            "# HELP scimd_store_errors_total Store calls that failed with a storage error.\n",
        );
        out.push_str("# TYPE scimd_store_errors_total counter\n");
        for (operation, count) in &series.store_errors {
            let _ = writeln!(
                out,
                "scimd_store_errors_total{{operation=\"{operation}\"}} {count}"
            );
        }
        drop(series);
        out.push_str("# HELP scimd_request_log_entries_total Provisioning log entries, by outcome (written; dropped: the queue was full or the store failed; body_not_json: a request body not kept because it was not JSON).\n");
        out.push_str("# TYPE scimd_request_log_entries_total counter\n");
        for (outcome, counter) in ["written", "dropped", "body_not_json"]
            .into_iter()
            .zip(&self.request_log)
        {
            let _ = writeln!(
                out,
                "scimd_request_log_entries_total{{outcome=\"{outcome}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP scimd_connections_open Connections currently open.\n");
        out.push_str("# TYPE scimd_connections_open gauge\n");
        let _ = writeln!(
            out,
            "scimd_connections_open {}",
            self.connections_open.load(Ordering::Relaxed)
        );
        out.push_str("# HELP scimd_connections_total Connections accepted since start.\n");
        out.push_str("# TYPE scimd_connections_total counter\n");
        let _ = writeln!(
            out,
            "scimd_connections_total {}",
            self.connections_total.load(Ordering::Relaxed)
        );
        out.push_str("# HELP scimd_connections_refused_total Connections closed as soon as they were accepted, by reason (per_address: the client held max_connections_per_address).\n");
        out.push_str("# TYPE scimd_connections_refused_total counter\n");
        let _ = writeln!(
            out,
            "scimd_connections_refused_total{{reason=\"per_address\"}} {}",
            self.connections_refused_per_address.load(Ordering::Relaxed)
        );
        out.push_str("# HELP scimd_connections_timed_out_total Connections closed by a deadline, by reason (header: no request head within the header timeout of the accept; idle: no open request for the idle timeout).\n");
        out.push_str("# TYPE scimd_connections_timed_out_total counter\n");
        for (reason, counter) in [
            ("header", &self.connections_header_timeout),
            ("idle", &self.connections_idle_timeout),
        ] {
            let _ = writeln!(
                out,
                "scimd_connections_timed_out_total{{reason=\"{reason}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.request(
            "/Users/{id}",
            &http::Method::GET,
            200,
            Duration::from_micros(700),
        );
        m.request(
            "/Users/{id}",
            &http::Method::GET,
            404,
            Duration::from_millis(30),
        );
        let text = m.render();
        assert!(text.contains(
            "scimd_http_requests_total{route=\"/Users/{id}\",method=\"GET\",status=\"200\"} 1"
        ));
        assert!(text.contains(
            "scimd_http_request_duration_seconds_bucket{route=\"/Users/{id}\",le=\"0.0005\"} 0"
        ));
        assert!(text.contains(
            "scimd_http_request_duration_seconds_bucket{route=\"/Users/{id}\",le=\"0.001\"} 1"
        ));
        assert!(text.contains(
            "scimd_http_request_duration_seconds_bucket{route=\"/Users/{id}\",le=\"0.05\"} 2"
        ));
        assert!(
            text.contains("scimd_http_request_duration_seconds_count{route=\"/Users/{id}\"} 2")
        );
    }

    #[test]
    fn labels_come_from_fixed_sets() {
        let m = Metrics::default();
        let invented = http::Method::from_bytes(b"BREW").unwrap();
        m.request("/healthz", &invented, 200, Duration::ZERO);
        m.request("/healthz", &http::Method::PATCH, 599, Duration::ZERO);
        let text = m.render();
        assert!(!text.contains("BREW"), "{text}");
        assert!(text.contains("route=\"/healthz\",method=\"other\",status=\"200\"} 1"));
        assert!(text.contains("route=\"/healthz\",method=\"PATCH\",status=\"other\"} 1"));
    }
}
