//! # ledger: from JetStream to the stock ledger, exactly once
//!
//! The ledger process runs three loops:
//! - the **consumer** ([`consumer`]): pulls contract events from the durable `ledger`
//!   consumer, applies each fetched batch in one SQL transaction through the store, and only
//!   after the commit acknowledges the messages and announces the decisions;
//! - the **relay** ([`relay`]): publishes the stock-change outbox, written in the same
//!   transaction as the entries, to the stock-change stream, exactly once and in order per
//!   (SKU, location);
//! - the **sweeper** ([`sweeper`]): publishes `reservation.expired` for reservations older
//!   than the TTL, with a deterministic event id, so any number of sweepers release a
//!   reservation once.
//!
//! - the **scheduled reconciliation** ([`reconcile::schedule`], when
//!   `STOCKLEDGER_RECONCILE_AT` is set, started by the binary): the previous day's
//!   reconciliation once a day, by one ledger process.
//!
//! [`metrics`] counts what the consumer does (batches, outcomes, retries, the
//! stock-visibility SLI) and reads the consumer's backlog at scrape time; the process
//! serves them with `/healthz` and `/readyz` on `STOCKLEDGER_LEDGER_METRICS_ADDR` through
//! the shared ops server (`service::ops`), from its start, NATS or not.
//!
//! Failures are classified once ([`consumer::Disposition`]): a message that can never
//! become an event is recorded as an exception with its raw bytes and terminated; a
//! transient failure (database down) is retried with a delay; an event for an order not
//! registered yet is redelivered with backoff until the unknown-order hold runs out.

pub mod consumer;
pub mod metrics;
/// Whether the database is behind the stream: shared with the ingress, the exception
/// consumer and `stockctl`, so it lives in `operator`.
pub use operator::standing as position;

/// The comparison's failures are the ledger's own bus and store failures.
impl From<operator::StandingError> for LedgerError {
    fn from(e: operator::StandingError) -> Self {
        match e {
            operator::StandingError::Bus(e) => LedgerError::Bus(e),
            operator::StandingError::Store(e) => LedgerError::Store(e),
        }
    }
}
pub mod policy;
pub mod reconcile;
pub mod relay;
pub mod replay;
pub mod sweeper;
pub mod withdraw;

use std::future::Future;
use std::time::Duration;

use bus::{Bus, ConsumerLimits};
use service::shutdown::CancellationToken;
use store::Store;
use tokio_util::task::AbortOnDropHandle;

/// Settings of the ledger process, each from one documented variable.
#[derive(Debug, Clone)]
pub struct LedgerSettings {
    /// Events per SQL transaction at most (`STOCKLEDGER_FETCH_BATCH_MAX`).
    pub fetch_batch_max: usize,
    /// How long a batch waits for more messages after its first (`STOCKLEDGER_BATCH_LINGER`).
    pub batch_linger: Duration,
    /// `STOCKLEDGER_UNKNOWN_ORDER_HOLD`.
    pub unknown_order_hold: Duration,
    /// `STOCKLEDGER_RESERVATION_TTL`: per provider and payment method.
    pub reservation_ttls: domain::ReservationTtls,
    /// `STOCKLEDGER_STOCK_POLICY`, put in force at start ([`policy`]); `None` leaves the
    /// policy in force as it is.
    pub stock_policy: Option<domain::PolicySet>,
    /// `STOCKLEDGER_SWEEP_INTERVAL`; `None` disables the sweeper in this process.
    pub sweep_interval: Option<Duration>,
    /// `STOCKLEDGER_SWEEP_BATCH_MAX`.
    pub sweep_batch_max: usize,
    /// The durable consumer's limits.
    pub consumer: ConsumerLimits,
    /// `STOCKLEDGER_SHUTDOWN_GRACE`: how long the in-flight batch may take on shutdown.
    pub shutdown_grace: Duration,
    /// `STOCKLEDGER_LEDGER_METRICS_ADDR`: where `/metrics`, `/healthz` and `/readyz` are
    /// served; `None`: nowhere.
    pub metrics_addr: Option<String>,
}

impl LedgerSettings {
    /// Settings from the process configuration.
    pub fn from_config(c: &config::Config) -> Self {
        Self {
            fetch_batch_max: c.ledger.fetch_batch_max,
            batch_linger: c.ledger.batch_linger,
            unknown_order_hold: c.ledger.unknown_order_hold,
            reservation_ttls: c.ledger.reservation_ttls.clone(),
            stock_policy: Some(c.ledger.stock_policy.clone()),
            sweep_interval: Some(c.ledger.sweep_interval),
            sweep_batch_max: c.ledger.sweep_batch_max,
            consumer: ConsumerLimits {
                ack_wait: c.ledger.ack_wait,
                max_deliver: c.ledger.max_deliver,
                max_ack_pending: c.ledger.max_ack_pending,
                // No JetStream backoff: the consumer names each redelivery's delay when it
                // naks, and a backoff list would add to those delays (and replace the ack
                // wait), pushing a held event's exception far past its hold
                // (`bus::ConsumerLimits::backoff`).
                backoff: Vec::new(),
            },
            shutdown_grace: c.process.shutdown_grace,
            metrics_addr: c.ledger.metrics_addr.clone(),
        }
    }
}

impl LedgerSettings {
    /// Refuses settings under which an event for an order that never comes could not
    /// become its `unknown_order` exception: the deliveries its hold takes
    /// ([`consumer::deferral_deliveries`]) must be fewer than `STOCKLEDGER_MAX_DELIVER`, or
    /// JetStream gives up on it first. Checked by the `ledger` binary at start.
    pub fn check(&self) -> Result<(), LedgerError> {
        let needed = consumer::deferral_deliveries(self.unknown_order_hold);
        if self.consumer.max_deliver != -1 && self.consumer.max_deliver <= needed {
            return Err(LedgerError::Settings(format!(
                "STOCKLEDGER_MAX_DELIVER={} is too small for STOCKLEDGER_UNKNOWN_ORDER_HOLD={} s: \
                 an event for an unregistered order is delivered {needed} times before it becomes \
                 an unknown_order exception (one delivery at least every {} s); set \
                 STOCKLEDGER_MAX_DELIVER above {needed} or shorten the hold",
                self.consumer.max_deliver,
                self.unknown_order_hold.as_secs(),
                consumer::DEFER_RETRY_INTERVAL_MAX.as_secs(),
            )));
        }
        Ok(())
    }
}

/// Errors that stop the ledger process.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// Settings that contradict each other (named in the message).
    #[error("{0}")]
    Settings(String),
    #[error(transparent)]
    Bus(#[from] bus::BusError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Ops(#[from] service::ops::OpsError),
}

/// Runs the consumer (and the sweeper, when enabled, and the ops server, when
/// `metrics_addr` is set) until `shutdown` completes, then finishes the batch in flight and
/// returns.
pub async fn run(
    bus: Bus,
    store: Store,
    settings: LedgerSettings,
    shutdown: impl Future<Output = ()>,
) -> Result<(), LedgerError> {
    let mut registry = prometheus_client::registry::Registry::default();
    let counters = metrics::LedgerMetrics::new(&mut registry);
    let ops_stop = CancellationToken::new();
    // The ops endpoints first: `/healthz` answers, and `/readyz` says why not ready, while
    // NATS is away or the database is behind.
    let ops = match &settings.metrics_addr {
        Some(addr) => {
            let listener = service::ops::bind(addr).await?;
            if let Ok(local) = listener.local_addr() {
                tracing::info!(addr = %local, "ledger metrics listening");
            }
            let probe = metrics::LedgerProbe {
                bus: bus.clone(),
                store: store.clone(),
                backlog: metrics::BacklogCollector::new(&mut registry),
            };
            Some(AbortOnDropHandle::new(tokio::spawn(service::ops::serve(
                listener,
                registry,
                probe,
                ops_stop.clone(),
            ))))
        }
        None => None,
    };
    let result = run_roles(bus, store, settings, shutdown, counters).await;
    ops_stop.cancel();
    if let Some(handle) = ops {
        match handle.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "ledger metrics server failed"),
            Ok(Ok(())) => {}
            Err(e) => tracing::error!(error = %e, "ledger metrics server panicked"),
        }
    }
    result
}

/// The consumer, relay and sweeper, once NATS answers and the database is current.
async fn run_roles(
    bus: Bus,
    store: Store,
    settings: LedgerSettings,
    shutdown: impl Future<Output = ()>,
    counters: metrics::LedgerMetrics,
) -> Result<(), LedgerError> {
    tokio::pin!(shutdown);
    // NATS may come after this process (issue 16): the streams are made sure of as soon as
    // it answers; until then nothing is applied.
    tokio::select! {
        () = bus::retry::until_provisioned(|| async {
            // The dead-letter capture too, from the first delivery on (issue 5).
            bus.ensure_streams().await?;
            bus.ensure_dead_letter_streams(None).await?;
            bus.ensure_stock_stream().await
        }) => {}
        () = &mut shutdown => return Ok(()),
    }
    // Nothing runs on a database that lost acknowledged events (decision 25): wait, saying
    // why, until it has been rebuilt (`stockctl ledger rebuild`) or shutdown comes.
    let standing = tokio::select! {
        s = wait_until_current(&bus, &store) => s?,
        () = &mut shutdown => return Ok(()),
    };
    let store = store.recording_position(standing.writer(position::process_writer("ledger")));
    if let Some(configured) = &settings.stock_policy {
        // Published before the consumer starts; applied in stream order like any event.
        policy::put_configured_in_force(&bus, &store, configured).await?;
    }
    let stop = CancellationToken::new();
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    // The relay and the sweeper live exactly as long as this future: dropped (the process
    // task aborted), they stop with it, as they would with the process, instead of going
    // on beside a new ledger.
    let relay = {
        let (bus, store, wake, stop) = (bus.clone(), store.clone(), wake.clone(), stop.clone());
        AbortOnDropHandle::new(tokio::spawn(async move {
            relay::run(bus, store, wake, stop).await
        }))
    };
    let sweeper = settings.sweep_interval.map(|interval| {
        let (bus, store, settings, stop) =
            (bus.clone(), store.clone(), settings.clone(), stop.clone());
        AbortOnDropHandle::new(tokio::spawn(async move {
            sweeper::run(bus, store, &settings, interval, stop).await
        }))
    });
    let consumer = consumer::run(bus, store, settings, stop.clone(), wake, counters);
    tokio::pin!(consumer);
    tokio::select! {
        result = &mut consumer => {
            stop.cancel();
            result?;
        }
        () = &mut shutdown => {
            stop.cancel();
            consumer.await?;
        }
    }
    if let Some(handle) = sweeper {
        let _ = handle.await;
    }
    let _ = relay.await;
    Ok(())
}

/// Returns once the database is not behind the event stream; logs an error (once per
/// change of what it sees) while it is.
async fn wait_until_current(bus: &Bus, store: &Store) -> Result<position::Standing, LedgerError> {
    let mut said = None;
    loop {
        match position::standing(bus, store).await {
            Ok(s) if !s.is_behind() => {
                if said.is_some() {
                    tracing::info!(
                        applied = s.checkpoint.applied,
                        acked = s.progress.acked,
                        "the ledger database has caught up with the event stream; applying"
                    );
                }
                return Ok(s);
            }
            Ok(s) => {
                let line = s.describe();
                if said.as_ref() != Some(&line) {
                    tracing::error!(
                        reason = position::BEHIND_REASON,
                        "{line}: applying nothing; rebuild it with `stockctl ledger rebuild` (docs/operations.md, \"Recovery\")"
                    );
                    said = Some(line);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot compare the ledger with the event stream yet")
            }
        }
        tokio::time::sleep(position::BEHIND_RECHECK_INTERVAL).await;
    }
}

/// The clock: the one in `service`, shared by every process.
pub use service::now;

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(hold_s: u64, max_deliver: i64) -> LedgerSettings {
        LedgerSettings {
            fetch_batch_max: 1,
            batch_linger: Duration::ZERO,
            unknown_order_hold: Duration::from_secs(hold_s),
            reservation_ttls: domain::ReservationTtls::uniform(Duration::from_secs(60)),
            stock_policy: None,
            sweep_interval: None,
            sweep_batch_max: 1,
            consumer: ConsumerLimits {
                max_deliver,
                ..ConsumerLimits::default()
            },
            shutdown_grace: Duration::from_secs(1),
            metrics_addr: None,
        }
    }

    /// The default hold (10 min) fits the default deliveries (100); an hour does not, and
    /// the refusal names both variables and the deliveries needed.
    #[test]
    fn a_hold_longer_than_the_deliveries_last_is_refused() {
        assert!(settings(600, 100).check().is_ok());
        assert!(settings(2, 4).check().is_ok());
        let e = match settings(3600, 100).check() {
            Err(e) => e.to_string(),
            Ok(()) => panic!("an hour's hold with 100 deliveries was accepted"),
        };
        assert!(
            e.contains("STOCKLEDGER_MAX_DELIVER=100")
                && e.contains("STOCKLEDGER_UNKNOWN_ORDER_HOLD=3600 s")
                && e.contains("above 364"),
            "{e}"
        );
    }

    /// The ledger's durable consumer names its redelivery delays itself: no JetStream
    /// backoff list, which would add to them.
    #[test]
    fn the_ledger_consumer_has_no_backoff_list() {
        let cfg = config::Config::from_lookup(|_| None);
        let Ok(cfg) = cfg else {
            panic!("the default configuration: {cfg:?}");
        };
        assert!(
            LedgerSettings::from_config(&cfg)
                .consumer
                .backoff
                .is_empty()
        );
        assert!(ConsumerLimits::default().backoff.is_empty());
    }
}
