//! The exception queue's gauges and the `/readyz` answer of the processes that are not the
//! ingress (decision 25), computed when asked: from the database and the dead-letter
//! stream, so every exception process and `stockctl exceptions stats` report the same
//! numbers. Encoded by `prometheus-client` in the OpenMetrics text format, through one
//! registry shape ([`QueueCollector::registry`]) that the exception process serves
//! (`service::ops`) and `stockctl` prints, so both show the same text:
//!
//! | metric | meaning |
//! | --- | --- |
//! | `stockledger_exceptions_unresolved{reason,state}` | exceptions `open` or `retrying`, per reason code (an `open` series, 0 or more, for every known code) |
//! | `stockledger_exceptions_oldest_unresolved_age_seconds` | age of the oldest exception not resolved (0 when none) |
//! | `stockledger_exceptions_resolved` | exceptions resolved so far |
//! | `stockledger_dlq_depth` | dead letters held by the dead-letter stream |
//! | `stockledger_dlq_advisories_pending` | advisories captured but not yet turned into dead letters |
//!
//! The values are read before the registry is encoded ([`Gauges::snapshot`], the ops
//! server's collect hook) and kept as one [`QueueSnapshot`] that a `prometheus-client`
//! [`Collector`] encodes: a scrape never mixes two readings, a series that disappeared from
//! the database (`retrying` → none) disappears from the text, and the series come out in
//! a fixed order (by reason, then state).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bus::Bus;
use domain::ExceptionCode;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use service::ops::{CollectError, Probe, Readiness};
use store::Store;

/// The state every known reason code gets a series for, 0 when none.
const ZERO_SERIES_STATE: &str = "open";

/// Why the gauges could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GaugeError {
    /// The dead-letter stream could not be read.
    #[error(transparent)]
    Bus(#[from] bus::BusError),
    /// The exception queue could not be read.
    #[error(transparent)]
    Store(#[from] store::StoreError),
    /// The text could not be encoded.
    #[error("encoding the metrics: {0}")]
    Encode(#[from] std::fmt::Error),
}

/// What the gauges are computed from.
#[derive(Debug, Clone)]
pub struct Gauges {
    pub bus: Bus,
    pub store: Store,
}

/// One reading of the queue's gauges.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueSnapshot {
    /// `(reason, state, count)`, sorted, with an `open` series for every known code.
    pub unresolved: Vec<(String, String, i64)>,
    /// Age of the oldest exception not resolved, in seconds (0 when none).
    pub oldest_unresolved_age_seconds: f64,
    pub resolved: i64,
    pub dlq_depth: u64,
    pub advisories_pending: u64,
}

impl Gauges {
    /// `/readyz`: 200 when NATS and the database answer and the ledger is not behind the
    /// event stream (`operator::standing`); 503 naming the reason otherwise.
    pub async fn readiness(&self) -> (&'static str, String) {
        match crate::standing::readiness(&self.bus, &self.store).await {
            Readiness::Ready => ("200 OK", "ready\n".to_owned()),
            Readiness::NotReady(reason) => ("503 Service Unavailable", format!("{reason}\n")),
        }
    }

    /// Reads the gauges at `now_ms`.
    pub async fn snapshot(&self, now_ms: i64) -> Result<QueueSnapshot, GaugeError> {
        let stats = self.store.queue_stats().await?;
        let dlq_depth = self.bus.dlq_depth().await?;
        let advisories_pending = self.bus.advisories_pending().await?;
        let mut unresolved = stats.unresolved;
        // Every reason code the queue can hold (the ledger's and the dead letters'), so that
        // a dashboard sees a 0 rather than no series.
        for code in ExceptionCode::ALL.iter().map(|c| c.as_str()) {
            if !unresolved
                .iter()
                .any(|(r, s, _)| r == code && s == ZERO_SERIES_STATE)
            {
                unresolved.push((code.to_owned(), ZERO_SERIES_STATE.to_owned(), 0));
            }
        }
        unresolved.sort();
        Ok(QueueSnapshot {
            unresolved,
            oldest_unresolved_age_seconds: stats
                .oldest_unresolved_at
                .map_or(0.0, |t| ms_to_seconds((now_ms - t).max(0))),
            resolved: stats.resolved,
            dlq_depth,
            advisories_pending,
        })
    }

    /// The gauges at `now_ms` in the OpenMetrics text format: exactly what the exception
    /// process's `GET /metrics` serves (`stockctl exceptions stats`).
    pub async fn render(&self, now_ms: i64) -> Result<String, GaugeError> {
        let (registry, collector) = QueueCollector::registry();
        collector.set(self.snapshot(now_ms).await?);
        Ok(service::ops::render(&registry)?)
    }

    /// The exception process's ops server: its registry and the probe that refreshes it
    /// before each scrape and answers `/readyz`.
    pub fn ops(self) -> (Registry, QueueProbe) {
        let (registry, collector) = QueueCollector::registry();
        (
            registry,
            QueueProbe {
                gauges: self,
                collector,
            },
        )
    }
}

/// Milliseconds as seconds, for an age gauge (a duration, never money).
fn ms_to_seconds(ms: i64) -> f64 {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0)).as_secs_f64()
}

/// The queue's gauges in a registry: a [`Collector`] over the last [`QueueSnapshot`]
/// (nothing is encoded before the first one).
#[derive(Debug, Clone, Default)]
pub struct QueueCollector {
    snapshot: Arc<Mutex<Option<QueueSnapshot>>>,
}

impl QueueCollector {
    /// A registry holding only the queue's gauges, and the handle that updates them.
    pub fn registry() -> (Registry, QueueCollector) {
        let collector = QueueCollector::default();
        let mut registry = Registry::default();
        registry.register_collector(Box::new(collector.clone()));
        (registry, collector)
    }

    /// Replaces the reading the next encode shows.
    pub fn set(&self, snapshot: QueueSnapshot) {
        *self.snapshot.lock().unwrap_or_else(|p| p.into_inner()) = Some(snapshot);
    }
}

impl Collector for QueueCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let guard = self.snapshot.lock().unwrap_or_else(|p| p.into_inner());
        let Some(s) = guard.as_ref() else {
            return Ok(());
        };
        let mut family = encoder.encode_descriptor(
            "stockledger_exceptions_unresolved",
            "Exceptions open or retrying, by reason code and state.",
            None,
            MetricType::Gauge,
        )?;
        for (reason, state, n) in &s.unresolved {
            let labels = [("reason", reason.as_str()), ("state", state.as_str())];
            ConstGauge::new(*n).encode(family.encode_family(&labels)?)?;
        }
        let mut gauge = |name: &'static str, help: &'static str, value: ConstGauge<f64>| {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            value.encode(metric)
        };
        gauge(
            "stockledger_exceptions_oldest_unresolved_age_seconds",
            "Age of the oldest exception not resolved.",
            ConstGauge::new(s.oldest_unresolved_age_seconds),
        )?;
        let mut gauge_i = |name: &'static str, help: &'static str, value: i64| {
            let metric = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            ConstGauge::new(value).encode(metric)
        };
        gauge_i(
            "stockledger_exceptions_resolved",
            "Exceptions resolved.",
            s.resolved,
        )?;
        gauge_i(
            "stockledger_dlq_depth",
            "Dead letters held by the dead-letter stream.",
            i64::try_from(s.dlq_depth).unwrap_or(i64::MAX),
        )?;
        gauge_i(
            "stockledger_dlq_advisories_pending",
            "Advisories captured, not yet dead letters.",
            i64::try_from(s.advisories_pending).unwrap_or(i64::MAX),
        )
    }
}

/// The exception process's [`Probe`]: reads the queue before each scrape; `/readyz` is
/// [`crate::standing::readiness`]. A scrape while the database or NATS does not answer is
/// answered 503 with the reason.
#[derive(Debug, Clone)]
pub struct QueueProbe {
    gauges: Gauges,
    collector: QueueCollector,
}

impl Probe for QueueProbe {
    async fn collect(&self) -> Result<(), CollectError> {
        let snapshot = self
            .gauges
            .snapshot(service::now().0)
            .await
            .map_err(|e| CollectError(e.to_string()))?;
        self.collector.set(snapshot);
        Ok(())
    }

    async fn readiness(&self) -> Readiness {
        crate::standing::readiness(&self.gauges.bus, &self.gauges.store).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// The text keeps the names, labels and zero series of the hand-written format, in
    /// OpenMetrics (`# EOF` at the end), label values escaped.
    #[test]
    fn a_snapshot_renders_every_gauge() {
        let (registry, collector) = QueueCollector::registry();
        assert_eq!(service::ops::render(&registry).unwrap(), "# EOF\n");
        collector.set(QueueSnapshot {
            unresolved: vec![
                ("odd\"reason".into(), "open".into(), 2),
                ("oversold".into(), "open".into(), 1),
                ("oversold".into(), "retrying".into(), 3),
            ],
            oldest_unresolved_age_seconds: 1.5,
            resolved: 4,
            dlq_depth: 5,
            advisories_pending: 0,
        });
        let text = service::ops::render(&registry).unwrap();
        for line in [
            "# TYPE stockledger_exceptions_unresolved gauge\n",
            "stockledger_exceptions_unresolved{reason=\"oversold\",state=\"open\"} 1\n",
            "stockledger_exceptions_unresolved{reason=\"oversold\",state=\"retrying\"} 3\n",
            "stockledger_exceptions_unresolved{reason=\"odd\\\"reason\",state=\"open\"} 2\n",
            "stockledger_exceptions_oldest_unresolved_age_seconds 1.5\n",
            "stockledger_exceptions_resolved 4\n",
            "stockledger_dlq_depth 5\n",
            "stockledger_dlq_advisories_pending 0\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
}
