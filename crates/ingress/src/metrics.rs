//! The ingress's metrics (`GET /metrics`), kept in a `prometheus-client` registry and
//! rendered in its OpenMetrics text format: requests by route, method and status; events
//! published and publish failures by kind; provider messages ignored and callback
//! verifications; how long the ledger's decision took to come back, as histograms for
//! PortOne's inventory confirmation and for the merchant API; and how long JetStream took
//! to acknowledge a publish (`stockledger_publish_seconds`, every acknowledged publish of
//! an event, from the publish call to the ack, group commit's wait included).
//!
//! Every label value comes from a closed set: request routes are route templates (or
//! [`OTHER_LABEL`]), methods are the standard ones (or [`OTHER_LABEL`], [`method_label`]),
//! so no client can grow the registry by sending made-up methods or paths (issue 16).

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

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

/// Upper bounds of the publish-latency histogram buckets, in seconds: 1 ms to the default
/// `STOCKLEDGER_PUBLISH_TIMEOUT` (3 s) and beyond.
const PUBLISH_BUCKETS_SECONDS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// A label set: names are fixed per family, values from closed sets.
type Labels = Vec<(&'static str, String)>;

/// Every metric the ingress exports. The handles share their values with the registry,
/// which renders them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// (route, method, status) → requests answered. Methods are [`method_label`]s.
    requests: Family<Labels, Counter>,
    /// (kind, duplicate) → events JetStream acknowledged.
    published: Family<Labels, Counter>,
    /// kind → publishes that were not acknowledged (nothing accepted).
    publish_failures: Family<Labels, Counter>,
    /// PortOne inventory confirmation: request start to answer.
    confirmation: Histogram,
    /// Merchant API writes: publish to decision (or deadline).
    merchant_decision: Histogram,
    /// Publish call to JetStream's ack, per acknowledged publish.
    publish: Histogram,
    /// Confirmation answers by reason (`reserved`, `insufficient_inventory`, …).
    confirmation_answers: Family<Labels, Counter>,
    /// (provider, type) → provider messages acknowledged without publishing anything (an
    /// event type stockledger does not map, or one that names no order).
    ignored: Family<Labels, Counter>,
    /// (provider, result) → verifications of unsigned callbacks (`captured`, `retry`, …).
    verifications: Family<Labels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::default();
        // Counters are registered without `_total`: the encoder adds it to the series.
        let mut counter = |name: &str, help: &str| {
            let family = Family::<Labels, Counter>::default();
            registry.register(name, help, family.clone());
            family
        };
        let requests = counter(
            "stockledger_http_requests",
            "HTTP requests answered, by route, method and status",
        );
        let published = counter(
            "stockledger_events_published",
            "Events acknowledged by JetStream, by kind",
        );
        let publish_failures = counter(
            "stockledger_publish_failures",
            "Publishes not acknowledged (nothing accepted), by kind",
        );
        // A zero series per kind from the start, so dashboards and alerts see "none failed"
        // rather than no data.
        for kind in contract::v2::KINDS {
            let _ = publish_failures.get_or_create(&labels(&[("kind", kind)]));
        }
        let ignored = counter(
            "stockledger_provider_ignored",
            "Provider messages acknowledged without an event, by provider and type",
        );
        let verifications = counter(
            "stockledger_callback_verifications",
            "Verifications of unsigned provider callbacks, by result",
        );
        let confirmation_answers = counter(
            "stockledger_portone_confirmations",
            "PortOne inventory confirmations answered, by answer",
        );
        let confirmation = Histogram::new(LATENCY_BUCKETS_SECONDS);
        registry.register(
            "stockledger_portone_confirmation_seconds",
            "PortOne inventory confirmation latency, request to answer",
            confirmation.clone(),
        );
        let merchant_decision = Histogram::new(LATENCY_BUCKETS_SECONDS);
        registry.register(
            "stockledger_merchant_decision_seconds",
            "Merchant API writes: publish to the ledger's decision",
            merchant_decision.clone(),
        );
        let publish = Histogram::new(PUBLISH_BUCKETS_SECONDS);
        registry.register(
            "stockledger_publish_seconds",
            "Time from publishing an event to JetStream's ack, per acknowledged publish",
            publish.clone(),
        );
        Metrics {
            registry,
            publish,
            requests,
            published,
            publish_failures,
            confirmation,
            merchant_decision,
            confirmation_answers,
            ignored,
            verifications,
        }
    }
}

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

impl Metrics {
    /// Counts one answered request. `route` must be a route template or [`OTHER_LABEL`];
    /// a `method` outside the standard ones is counted as [`OTHER_LABEL`].
    pub fn request(&self, route: &str, method: &str, status: u16) {
        let method = axum::http::Method::from_bytes(method.as_bytes())
            .map_or(OTHER_LABEL, |m| method_label(&m));
        let status = status.to_string();
        self.requests
            .get_or_create(&labels(&[
                ("route", route),
                ("method", method),
                ("status", &status),
            ]))
            .inc();
    }

    /// Counts one acknowledged publish.
    pub fn published(&self, kind: &str, duplicate: bool) {
        let duplicate = if duplicate { "true" } else { "false" };
        self.published
            .get_or_create(&labels(&[("kind", kind), ("duplicate", duplicate)]))
            .inc();
    }

    /// Records how long one acknowledged publish waited for JetStream's ack.
    pub fn publish_acked(&self, d: Duration) {
        self.publish.observe(d.as_secs_f64());
    }

    /// Counts one failed publish.
    pub fn publish_failed(&self, kind: &str) {
        self.publish_failures
            .get_or_create(&labels(&[("kind", kind)]))
            .inc();
    }

    /// Records one inventory confirmation's latency and answer.
    pub fn confirmation(&self, d: Duration, answer: &str) {
        self.confirmation.observe(d.as_secs_f64());
        self.confirmation_answers
            .get_or_create(&labels(&[("answer", answer)]))
            .inc();
    }

    /// Counts one provider message acknowledged and ignored.
    pub fn ignored(&self, provider: &str, what: &str) {
        self.ignored
            .get_or_create(&labels(&[("provider", provider), ("type", what)]))
            .inc();
    }

    /// Counts one verification of an unsigned callback and what came of it.
    pub fn verification(&self, provider: &str, result: &str) {
        self.verifications
            .get_or_create(&labels(&[("provider", provider), ("result", result)]))
            .inc();
    }

    /// Records how long a merchant write waited for its decision.
    pub fn merchant_decision(&self, d: Duration) {
        self.merchant_decision.observe(d.as_secs_f64());
    }

    /// The OpenMetrics text exposition of everything ([`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail; an encoder error would leave a partial text,
        // which is still the best answer a scraper can get.
        if let Err(e) = encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "could not encode the metrics");
        }
        out
    }
}

/// The verifier's counters land in the same registry, so `/metrics` shows what the
/// verification workers in this process did.
impl verifier::Observer for Metrics {
    fn verification(&self, provider: &str, result: &str) {
        Metrics::verification(self, provider, result);
    }
    fn ignored(&self, provider: &str, what: &str) {
        Metrics::ignored(self, provider, what);
    }
    fn published(&self, kind: &str, duplicate: bool) {
        Metrics::published(self, kind, duplicate);
    }
    fn publish_failed(&self, kind: &str) {
        Metrics::publish_failed(self, kind);
    }
    fn publish_acked(&self, took: Duration) {
        Metrics::publish_acked(self, took);
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
        m.publish_acked(Duration::from_millis(3));
        let text = m.render();
        assert!(text.contains("stockledger_http_requests_total{route=\"/v1/orders/{order_ref}\",method=\"PUT\",status=\"201\"} 2"));
        assert!(text.contains(
            "stockledger_events_published_total{kind=\"payment.captured\",duplicate=\"false\"} 1"
        ));
        assert!(text.contains("stockledger_publish_failures_total{kind=\"payment.captured\"} 1"));
        assert!(text.contains("stockledger_portone_confirmation_seconds_bucket{le=\"0.05\"} 1"));
        assert!(text.contains("stockledger_portone_confirmation_seconds_bucket{le=\"0.025\"} 0"));
        assert!(text.contains("stockledger_portone_confirmation_seconds_count 1"));
        assert!(text.contains("stockledger_publish_seconds_bucket{le=\"0.005\"} 1"));
        assert!(text.contains("stockledger_publish_seconds_bucket{le=\"0.0025\"} 0"));
        assert!(text.contains("stockledger_publish_seconds_count 1"));
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
