//! The `ledger` process: the shared start-up (`service`), then [`ledger::run`] until
//! SIGINT or SIGTERM; the batch in flight finishes and is acknowledged.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = config::Config::from_env().context("reading the configuration")?;
    service::telemetry::init(cfg.process.log_format);
    let bus = service::connect::bus(&cfg).await?;
    let store = service::connect::store(&cfg).await?;
    let settings = ledger::LedgerSettings::from_config(&cfg);
    settings.check().context("checking the configuration")?;
    tracing::info!(
        database = service::connect::backend_name(&store),
        namespace = %cfg.nats.namespace,
        metrics = ?settings.metrics_addr,
        "ledger starting"
    );
    let shutdown = service::Shutdown::new();
    shutdown.trigger_on_signals();
    if let Some(schedule) = ledger::reconcile::Schedule::from_config(&cfg.reconcile) {
        tracing::info!(
            at_minute = schedule.at_minute,
            "daily reconciliation scheduled"
        );
        shutdown.spawn(ledger::reconcile::schedule(
            store.clone(),
            schedule,
            shutdown.token(),
        ));
    }
    ledger::run(bus, store, settings, shutdown.cancelled())
        .await
        .context("ledger stopped with an error")
}
