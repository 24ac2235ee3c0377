//! A small hand-rolled metrics registry rendered in the Prometheus text format
//! (`GET /metrics`): requests by route, method and status; events published and publish
//! failures by kind; and how long the ledger's decision took to come back, as histograms
//! for PortOne's inventory confirmation and for the merchant API.
//!
//! Every label value comes from a closed set: request routes are route templates (or
//! [`OTHER_LABEL`]), methods are the standard ones (or [`OTHER_LABEL`], [`method_label`]),
//! so no client can grow the registry by sending made-up methods or paths (issue 16).
//!
//! Labelled counters sit behind one mutex each (a map update per request is far cheaper
//! than the request); the histograms are plain atomics.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// The label of every method or route outside the closed set.
pub const OTHER_LABEL: &str = "other";

/// The metric label of a request method: one of the standard methods, else `other`.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        Method::CONNECT => "CONNECT",
        Method::TRACE => "TRACE",
        _ => OTHER_LABEL,
    }
}

/// Upper bounds of the decision-latency histogram buckets, in seconds.
const LATENCY_BUCKETS_SECONDS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0,
];

/// A histogram of durations with fixed buckets.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS_SECONDS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (bound, slot) in LATENCY_BUCKETS_SECONDS.iter().zip(&self.buckets) {
            if secs <= *bound {
                slot.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    fn render(&self, name: &str, labels: &str, out: &mut String) {
        let sep = if labels.is_empty() { "" } else { "," };
        for (bound, slot) in LATENCY_BUCKETS_SECONDS.iter().zip(&self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{bound}\"}} {}",
                slot.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {count}");
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let braces = if labels.is_empty() {
            String::new()
        } else {
            format!("{{{labels}}}")
        };
        let _ = writeln!(out, "{name}_sum{braces} {sum}");
        let _ = writeln!(out, "{name}_count{braces} {count}");
    }
}

/// Every metric the ingress exports.
#[derive(Debug, Default)]
pub struct Metrics {
    /// (route, method, status) → requests answered. Methods are [`method_label`]s.
    requests: Mutex<BTreeMap<(String, &'static str, u16), u64>>,
    /// (kind, duplicate) → events JetStream acknowledged.
    published: Mutex<BTreeMap<(String, bool), u64>>,
    /// kind → publishes that were not acknowledged (nothing accepted).
    publish_failures: Mutex<BTreeMap<String, u64>>,
    /// PortOne inventory confirmation: request start to answer.
    confirmation: Histogram,
    /// Merchant API writes: publish to decision (or deadline).
    merchant_decision: Histogram,
    /// Confirmation answers by reason (`reserved`, `insufficient_inventory`, …).
    confirmation_answers: Mutex<BTreeMap<String, u64>>,
    /// (provider, what) → provider messages acknowledged without publishing anything
    /// (an event type stockledger does not map, or one that names no order).
    ignored: Mutex<BTreeMap<(String, String), u64>>,
    /// (provider, result) → verifications of unsigned callbacks (`captured`, `retry`, …).
    verifications: Mutex<BTreeMap<(String, String), u64>>,
}

fn bump<K: Ord>(map: &Mutex<BTreeMap<K, u64>>, key: K) {
    // A poisoned lock only means another thread panicked mid-increment; counting on is fine.
    let mut m = map
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    *m.entry(key).or_insert(0) += 1;
}

/// Escapes a label value (`\`, `"` and newlines).
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Metrics {
    /// Counts one answered request. `route` must be a route template or [`OTHER_LABEL`];
    /// a `method` outside the standard ones is counted as [`OTHER_LABEL`].
    pub fn request(&self, route: &str, method: &str, status: u16) {
        let method = axum::http::Method::from_bytes(method.as_bytes())
            .map_or(OTHER_LABEL, |m| method_label(&m));
        bump(&self.requests, (route.to_owned(), method, status));
    }

    /// Counts one acknowledged publish.
    pub fn published(&self, kind: &str, duplicate: bool) {
        bump(&self.published, (kind.to_owned(), duplicate));
    }

    /// Counts one failed publish.
    pub fn publish_failed(&self, kind: &str) {
        bump(&self.publish_failures, kind.to_owned());
    }

    /// Records one inventory confirmation's latency and answer.
    pub fn confirmation(&self, d: Duration, answer: &str) {
        self.confirmation.observe(d);
        bump(&self.confirmation_answers, answer.to_owned());
    }

    /// Counts one provider message acknowledged and ignored.
    pub fn ignored(&self, provider: &str, what: &str) {
        bump(&self.ignored, (provider.to_owned(), what.to_owned()));
    }

    /// Counts one verification of an unsigned callback and what came of it.
    pub fn verification(&self, provider: &str, result: &str) {
        bump(
            &self.verifications,
            (provider.to_owned(), result.to_owned()),
        );
    }

    /// Records how long a merchant write waited for its decision.
    pub fn merchant_decision(&self, d: Duration) {
        self.merchant_decision.observe(d);
    }

    /// The Prometheus text exposition of everything.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP stockledger_http_requests_total HTTP requests answered, by route, method and status.\n");
        out.push_str("# TYPE stockledger_http_requests_total counter\n");
        for ((route, method, status), n) in self
            .requests
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "stockledger_http_requests_total{{route=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                esc(route),
                esc(method)
            );
        }
        out.push_str("# HELP stockledger_events_published_total Events acknowledged by JetStream, by kind.\n");
        out.push_str("# TYPE stockledger_events_published_total counter\n");
        for ((kind, dup), n) in self
            .published
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "stockledger_events_published_total{{kind=\"{}\",duplicate=\"{dup}\"}} {n}",
                esc(kind)
            );
        }
        out.push_str("# HELP stockledger_publish_failures_total Publishes not acknowledged (nothing accepted), by kind.\n");
        out.push_str("# TYPE stockledger_publish_failures_total counter\n");
        for (kind, n) in self
            .publish_failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "stockledger_publish_failures_total{{kind=\"{}\"}} {n}",
                esc(kind)
            );
        }
        out.push_str("# HELP stockledger_provider_ignored_total Provider messages acknowledged without an event, by provider and type.\n");
        out.push_str("# TYPE stockledger_provider_ignored_total counter\n");
        for ((provider, what), n) in self
            .ignored
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "stockledger_provider_ignored_total{{provider=\"{}\",type=\"{}\"}} {n}",
                esc(provider),
                esc(what)
            );
        }
        out.push_str("# HELP stockledger_callback_verifications_total Verifications of unsigned provider callbacks, by result.\n");
        out.push_str("# TYPE stockledger_callback_verifications_total counter\n");
        for ((provider, result), n) in self
            .verifications
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "stockledger_callback_verifications_total{{provider=\"{}\",result=\"{}\"}} {n}",
                esc(provider),
                esc(result)
            );
        }
        out.push_str("# HELP stockledger_portone_confirmations_total PortOne inventory confirmations answered, by answer.\n");
        out.push_str("# TYPE stockledger_portone_confirmations_total counter\n");
        for (answer, n) in self
            .confirmation_answers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
        {
            let _ = writeln!(
                out,
                "stockledger_portone_confirmations_total{{answer=\"{}\"}} {n}",
                esc(answer)
            );
        }
        out.push_str("# HELP stockledger_portone_confirmation_seconds PortOne inventory confirmation latency, request to answer.\n");
        out.push_str("# TYPE stockledger_portone_confirmation_seconds histogram\n");
        self.confirmation
            .render("stockledger_portone_confirmation_seconds", "", &mut out);
        out.push_str("# HELP stockledger_merchant_decision_seconds Merchant API writes: publish to the ledger's decision.\n");
        out.push_str("# TYPE stockledger_merchant_decision_seconds histogram\n");
        self.merchant_decision
            .render("stockledger_merchant_decision_seconds", "", &mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_histograms() {
        let m = Metrics::default();
        m.request("/v1/orders/{order_ref}", "PUT", 201);
        m.request("/v1/orders/{order_ref}", "PUT", 201);
        m.published("payment.captured", false);
        m.publish_failed("payment.captured");
        m.confirmation(Duration::from_millis(30), "reserved");
        let text = m.render();
        assert!(text.contains("stockledger_http_requests_total{route=\"/v1/orders/{order_ref}\",method=\"PUT\",status=\"201\"} 2"));
        assert!(text.contains(
            "stockledger_events_published_total{kind=\"payment.captured\",duplicate=\"false\"} 1"
        ));
        assert!(text.contains("stockledger_publish_failures_total{kind=\"payment.captured\"} 1"));
        assert!(text.contains("stockledger_portone_confirmation_seconds_bucket{le=\"0.05\"} 1"));
        assert!(text.contains("stockledger_portone_confirmation_seconds_bucket{le=\"0.025\"} 0"));
        assert!(text.contains("stockledger_portone_confirmation_seconds_count 1"));
    }

    #[test]
    fn made_up_methods_share_one_label() {
        let m = Metrics::default();
        for i in 0..100 {
            m.request(OTHER_LABEL, &format!("MADEUP{i}"), 405);
        }
        let text = m.render();
        assert!(text.contains(
            "stockledger_http_requests_total{route=\"other\",method=\"other\",status=\"405\"} 100"
        ));
        assert!(!text.contains("MADEUP"));
    }
}
