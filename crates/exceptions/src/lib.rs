//! # exceptions: every problem has a row, an owner and an action
//!
//! The exception process runs three loops until shutdown:
//! - **advisories** ([`intake::run_advisories`]): reads the advisory-capture stream (JetStream's
//!   `MAX_DELIVERIES` and `MSG_TERMINATED` advisories for the events stream, kept durably
//!   while this process is down) and writes one dead letter per message into the
//!   dead-letter stream, with the original payload and headers;
//! - **dead letters** ([`intake::run_dead_letters`]): turns each dead letter into a row of the
//!   exception queue with its evidence, deduplicated with the rows the ledger writes itself
//!   (business exceptions and the unprocessable messages it terminates);
//! - **reconcile** ([`run`]): resolves dead-letter rows whose event got a final outcome
//!   after an operator retry.
//!
//! [`metrics`] computes the gauges (open exceptions by reason, oldest open age, DLQ depth)
//! and serves them on their own port. The operator actions that `stockctl` and the
//! ingress's `/v1/exceptions` share (resolve, dismiss, retry, release, keep and stock
//! correction, each an event the ledger applies and audits) are `operator::actions`.

pub mod intake;
pub mod metrics;

use std::future::Future;
use std::time::Duration;

use bus::Bus;
use bus::dlq::DlqLimits;
use service::shutdown::CancellationToken;
use store::Store;

/// Settings of the exception process, each from one documented variable.
#[derive(Debug, Clone)]
pub struct ExceptionSettings {
    /// `STOCKLEDGER_DLQ_MAX_AGE`: retention of the dead-letter streams.
    pub dlq: DlqLimits,
    /// `STOCKLEDGER_EXCEPTIONS_SWEEP_INTERVAL`: how often dead-letter rows are reconciled.
    pub sweep_interval: Duration,
    /// `STOCKLEDGER_EXCEPTIONS_METRICS_ADDR`: where `/metrics` is served; `None`: nowhere.
    pub metrics_addr: Option<String>,
    /// How long a failed advisory or dead letter waits before it is tried again.
    pub retry_delay: Duration,
}

impl Default for ExceptionSettings {
    fn default() -> Self {
        Self {
            dlq: DlqLimits::default(),
            sweep_interval: Duration::from_secs(5),
            metrics_addr: None,
            retry_delay: Duration::from_secs(2),
        }
    }
}

impl ExceptionSettings {
    /// Settings from the process configuration.
    pub fn from_config(c: &config::Config) -> Self {
        Self {
            dlq: DlqLimits {
                max_age: c.exceptions.dlq_max_age,
            },
            sweep_interval: c.exceptions.sweep_interval,
            metrics_addr: c.exceptions.metrics_addr.clone(),
            ..Self::default()
        }
    }
}

/// Errors that stop the exception process.
#[derive(Debug, thiserror::Error)]
pub enum ExceptionsError {
    #[error(transparent)]
    Bus(#[from] bus::BusError),
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Metrics(#[from] service::ops::OpsError),
}

/// Runs the three loops (and the metrics endpoint, when configured) until `shutdown`
/// completes; each loop finishes the message in hand and returns.
pub async fn run(
    bus: Bus,
    store: Store,
    settings: ExceptionSettings,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ExceptionsError> {
    tokio::pin!(shutdown);
    let stop = CancellationToken::new();
    // The ops endpoints first: `/healthz` answers, and `/readyz` says why not ready, while
    // NATS is still away.
    let metrics = match &settings.metrics_addr {
        Some(addr) => {
            let listener = service::ops::bind(addr).await?;
            if let Ok(local) = listener.local_addr() {
                tracing::info!(addr = %local, "exceptions metrics listening");
            }
            let gauges = metrics::Gauges {
                bus: bus.clone(),
                store: store.clone(),
            };
            Some(tokio::spawn(metrics::serve(listener, gauges, stop.clone())))
        }
        None => None,
    };
    // NATS may come after this process (issue 16): wait for it instead of exiting.
    tokio::select! {
        () = bus::retry::until_provisioned(|| async {
            bus.ensure_streams().await?;
            bus.ensure_dead_letter_streams(Some(&settings.dlq)).await
        }) => {}
        () = &mut shutdown => {
            stop.cancel();
            stop_metrics(metrics).await;
            return Ok(());
        }
    }
    let advisories = tokio::spawn(intake::run_advisories(
        bus.clone(),
        settings.clone(),
        stop.clone(),
    ));
    let letters = tokio::spawn(intake::run_dead_letters(
        bus.clone(),
        store.clone(),
        settings.clone(),
        stop.clone(),
    ));
    let sweeper = tokio::spawn(reconcile_loop(store, settings.sweep_interval, stop.clone()));
    shutdown.await;
    stop.cancel();
    let mut result = Ok(());
    for handle in [advisories, letters] {
        match handle.await {
            Ok(Err(e)) => result = Err(e),
            Ok(Ok(())) => {}
            Err(e) => tracing::error!(error = %e, "exceptions loop panicked"),
        }
    }
    let _ = sweeper.await;
    stop_metrics(metrics).await;
    tracing::info!("exception consumer stopped");
    result
}

/// Waits for the ops server (its token cancelled), saying how it ended.
async fn stop_metrics(
    metrics: Option<tokio::task::JoinHandle<Result<(), service::ops::OpsError>>>,
) {
    if let Some(m) = metrics {
        match m.await {
            Ok(Err(e)) => tracing::warn!(error = %e, "exceptions metrics server failed"),
            Ok(Ok(())) => {}
            Err(e) => tracing::error!(error = %e, "exceptions metrics server panicked"),
        }
    }
}

/// Resolves reconciled rows every `interval` until `stop`.
async fn reconcile_loop(store: Store, interval: Duration, stop: CancellationToken) {
    loop {
        match store.queue_reconcile(now().0).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                resolved = n,
                "dead-letter exceptions resolved by their final outcome"
            ),
            Err(e) => tracing::warn!(error = %e, "reconcile failed; will try again"),
        }
        tokio::select! {
            _ = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// The clock: the one in `service`, shared by every process.
pub use service::now;
