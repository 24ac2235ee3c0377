//! The ledger's metrics, served with `/healthz` and `/readyz` by the shared ops server
//! (`service::ops`) on `STOCKLEDGER_LEDGER_METRICS_ADDR`:
//!
//! | metric | type | meaning |
//! | --- | --- | --- |
//! | `stockledger_ledger_pending_messages` | gauge | messages of the events stream the ledger consumer has not acknowledged: not yet delivered plus delivered and unacknowledged (`num_pending + num_ack_pending`), read at scrape time |
//! | `stockledger_ledger_oldest_unapplied_age_seconds` | gauge | age of the oldest message not yet applied (the first stored after the consumer's acknowledgement floor, by its JetStream time); 0 when nothing is pending; read at scrape time |
//! | `stockledger_ledger_batch_events` | histogram | events per batch transaction committed |
//! | `stockledger_ledger_apply_seconds` | histogram | time to apply one batch, load to commit (conflict retries included) |
//! | `stockledger_ledger_conflicts_total` | counter | batch transactions retried because another writer updated a balance first or the database's serialization check failed |
//! | `stockledger_ledger_retries_total` | counter | batch retries for any reason: each conflict retry, each batch re-applied one event at a time after a permanent failure, each batch left for redelivery after a transient failure |
//! | `stockledger_ledger_outcomes_total{kind}` | counter | events recorded, by outcome kind (`domain::OutcomeKind`: `moved`, `noop`, `exception`); duplicates and deferrals are not outcomes, nor are messages that cannot become an event (recorded as `undecodable`, … exceptions with their raw bytes) |
//! | `stockledger_stock_visible_seconds` | histogram | the stock-visibility SLI, below |
//!
//! **`stockledger_stock_visible_seconds`**: for each event whose outcome moved stock (ledger
//! entries written), the time from the ingress accepting it (the envelope's `recorded_at`)
//! to the commit of the transaction that wrote its entries. "Visible" means committed, so
//! readable through the API (`GET /v1/stock/…`); the relay publishes the change to the
//! stock-change stream after that, and this does not include it. The commit time is read
//! once per batch, when the store returns. An operator retry is left out (its `recorded_at`
//! is the original event's, so it would measure how long the exception waited for a
//! person). The two clocks are different hosts' wall clocks; a negative difference (clock
//! skew) counts as 0.
//!
//! The hot path only touches atomics and the histograms' buckets; the outcome counters
//! are created once, one per kind, so recording an outcome allocates nothing.
//! The two backlog gauges are read from JetStream before each scrape ([`LedgerProbe`]);
//! while JetStream does not answer they are left out of the text (the counters are still
//! served, and `/readyz` says `nats_unavailable`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bus::Bus;
use bus::progress::Backlog;
use domain::OutcomeKind;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric as _};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use service::ops::{CollectError, Probe, Readiness};
use store::Store;

/// Upper bounds of `stockledger_stock_visible_seconds`'s buckets: 5 ms to a minute.
pub const VISIBLE_BUCKETS_SECONDS: [f64; 15] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 60.0,
];

/// Upper bounds of `stockledger_ledger_apply_seconds`'s buckets: 1 ms to 10 s.
pub const APPLY_BUCKETS_SECONDS: [f64; 13] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Upper bounds of `stockledger_ledger_batch_events`'s buckets: 1 to 4096 events, by powers
/// of two (`STOCKLEDGER_FETCH_BATCH_MAX` is 256 by default).
pub const BATCH_EVENTS_BUCKETS: [f64; 13] = [
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0, 4096.0,
];

/// A label set of one fixed pair (`kind`, an outcome kind's wire name).
type KindLabel = [(&'static str, &'static str); 1];

/// The ledger's counters and histograms. Cloning shares the values (they live in the
/// registry `new` fills).
#[derive(Debug, Clone)]
pub struct LedgerMetrics {
    batch_events: Histogram,
    apply_seconds: Histogram,
    conflicts: Counter,
    retries: Counter,
    /// One counter per [`OutcomeKind::ALL`], in that order.
    outcomes: Vec<(OutcomeKind, Counter)>,
    stock_visible: Histogram,
}

impl LedgerMetrics {
    /// The metrics, registered in `registry` (counters without `_total`: the encoder adds
    /// it).
    pub fn new(registry: &mut Registry) -> LedgerMetrics {
        let batch_events = Histogram::new(BATCH_EVENTS_BUCKETS);
        registry.register(
            "stockledger_ledger_batch_events",
            "Events per batch transaction committed",
            batch_events.clone(),
        );
        let apply_seconds = Histogram::new(APPLY_BUCKETS_SECONDS);
        registry.register(
            "stockledger_ledger_apply_seconds",
            "Time to apply one batch, load to commit",
            apply_seconds.clone(),
        );
        let conflicts = Counter::default();
        registry.register(
            "stockledger_ledger_conflicts",
            "Batch transactions retried after a concurrent balance update or a serialization failure",
            conflicts.clone(),
        );
        let retries = Counter::default();
        registry.register(
            "stockledger_ledger_retries",
            "Batch retries for any reason (conflict, isolation of a failing event, transient failure)",
            retries.clone(),
        );
        let family = Family::<KindLabel, Counter>::default();
        registry.register(
            "stockledger_ledger_outcomes",
            "Events recorded, by outcome kind",
            family.clone(),
        );
        let outcomes = OutcomeKind::ALL
            .iter()
            .map(|&kind| {
                let counter = family.get_or_create(&[("kind", kind.as_str())]).clone();
                (kind, counter)
            })
            .collect();
        let stock_visible = Histogram::new(VISIBLE_BUCKETS_SECONDS);
        registry.register(
            "stockledger_stock_visible_seconds",
            "Time from the ingress accepting an event that moved stock to the commit of its entries",
            stock_visible.clone(),
        );
        LedgerMetrics {
            batch_events,
            apply_seconds,
            conflicts,
            retries,
            outcomes,
            stock_visible,
        }
    }

    /// One batch transaction committed: its events, how long it took, and the conflict
    /// retries before it (`attempts - 1`).
    pub fn batch_committed(&self, events: usize, took: Duration, attempts: u32) {
        self.batch_events.observe(events as f64);
        self.apply_seconds.observe(took.as_secs_f64());
        self.conflicted(attempts.saturating_sub(1));
    }

    /// `n` conflict retries (each also a retry).
    pub fn conflicted(&self, n: u32) {
        if n > 0 {
            self.conflicts.inc_by(u64::from(n));
            self.retries.inc_by(u64::from(n));
        }
    }

    /// One batch retried for another reason than a conflict.
    pub fn retried(&self) {
        self.retries.inc();
    }

    /// One event recorded with an outcome of `kind`.
    pub fn outcome(&self, kind: OutcomeKind) {
        if let Some((_, counter)) = self.outcomes.iter().find(|(k, _)| *k == kind) {
            counter.inc();
        }
    }

    /// One event's stock became visible `elapsed_ms` after the ingress accepted it.
    pub fn stock_visible(&self, elapsed_ms: i64) {
        let ms = u64::try_from(elapsed_ms).unwrap_or(0);
        self.stock_visible
            .observe(Duration::from_millis(ms).as_secs_f64());
    }
}

/// The backlog gauges: a [`Collector`] over the last reading (none while JetStream did not
/// answer, and then nothing is encoded).
#[derive(Debug, Clone, Default)]
pub struct BacklogCollector {
    reading: Arc<Mutex<Option<(Backlog, i64)>>>,
}

impl BacklogCollector {
    /// Registers the backlog gauges in `registry`.
    pub fn new(registry: &mut Registry) -> BacklogCollector {
        let collector = BacklogCollector::default();
        registry.register_collector(Box::new(collector.clone()));
        collector
    }

    /// Replaces the reading (`backlog` read at `now_ms`), or clears it.
    pub fn set(&self, reading: Option<(Backlog, i64)>) {
        *self.reading.lock().unwrap_or_else(|p| p.into_inner()) = reading;
    }
}

impl Collector for BacklogCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some((backlog, now_ms)) = *self.reading.lock().unwrap_or_else(|p| p.into_inner())
        else {
            return Ok(());
        };
        let pending = encoder.encode_descriptor(
            "stockledger_ledger_pending_messages",
            "Messages of the events stream the ledger has not acknowledged (undelivered plus unacknowledged)",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(i64::try_from(backlog.pending).unwrap_or(i64::MAX)).encode(pending)?;
        let age_ms = backlog
            .oldest_unapplied_ms
            .map_or(0, |at| (now_ms - at).max(0));
        let age = encoder.encode_descriptor(
            "stockledger_ledger_oldest_unapplied_age_seconds",
            "Age of the oldest message of the events stream not yet applied (0 when none)",
            None,
            MetricType::Gauge,
        )?;
        ConstGauge::new(Duration::from_millis(u64::try_from(age_ms).unwrap_or(0)).as_secs_f64())
            .encode(age)
    }
}

/// The ledger's [`Probe`]: reads the backlog from JetStream before each scrape, and answers
/// `/readyz` as the exception process does (`operator::standing::readiness`).
#[derive(Debug, Clone)]
pub struct LedgerProbe {
    pub bus: Bus,
    pub store: Store,
    pub backlog: BacklogCollector,
}

impl Probe for LedgerProbe {
    async fn collect(&self) -> Result<(), CollectError> {
        match self.bus.ledger_backlog().await {
            Ok(backlog) => self.backlog.set(Some((backlog, crate::now().0))),
            Err(e) => {
                tracing::debug!(error = %e, "ledger backlog unreadable; its gauges are left out of this scrape");
                self.backlog.set(None);
            }
        }
        Ok(())
    }

    async fn readiness(&self) -> Readiness {
        operator::standing::readiness(&self.bus, &self.store).await
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn renders_the_ledger_metrics_by_their_documented_names() {
        let mut registry = Registry::default();
        let m = LedgerMetrics::new(&mut registry);
        let backlog = BacklogCollector::new(&mut registry);
        let text = service::ops::render(&registry).unwrap();
        // Every outcome kind has its series from the start; no backlog before a reading.
        for kind in OutcomeKind::ALL {
            let line = format!("stockledger_ledger_outcomes_total{{kind=\"{kind}\"}} 0\n");
            assert!(text.contains(&line), "{line} missing from\n{text}");
        }
        assert!(
            !text.contains("stockledger_ledger_pending_messages"),
            "{text}"
        );

        m.batch_committed(3, Duration::from_millis(4), 3);
        m.retried();
        m.outcome(OutcomeKind::Moved);
        m.outcome(OutcomeKind::Moved);
        m.outcome(OutcomeKind::NoOp);
        m.stock_visible(30);
        m.stock_visible(-5);
        backlog.set(Some((
            Backlog {
                pending: 2,
                oldest_unapplied_ms: Some(1_000),
            },
            3_500,
        )));
        let text = service::ops::render(&registry).unwrap();
        for line in [
            "stockledger_ledger_batch_events_bucket{le=\"4.0\"} 1\n",
            "stockledger_ledger_apply_seconds_count 1\n",
            "stockledger_ledger_conflicts_total 2\n",
            "stockledger_ledger_retries_total 3\n",
            "stockledger_ledger_outcomes_total{kind=\"moved\"} 2\n",
            "stockledger_ledger_outcomes_total{kind=\"noop\"} 1\n",
            "stockledger_ledger_outcomes_total{kind=\"exception\"} 0\n",
            "stockledger_stock_visible_seconds_count 2\n",
            "stockledger_stock_visible_seconds_bucket{le=\"0.005\"} 1\n",
            "stockledger_stock_visible_seconds_bucket{le=\"0.05\"} 2\n",
            "stockledger_ledger_pending_messages 2\n",
            "stockledger_ledger_oldest_unapplied_age_seconds 2.5\n",
        ] {
            assert!(text.contains(line), "{line:?} missing from\n{text}");
        }
    }
}
