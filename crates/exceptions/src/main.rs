//! The `exceptions` process: the shared start-up (`service`), then [`exceptions::run`]
//! (dead letters into exception-queue rows) until SIGINT or SIGTERM.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = config::Config::from_env().context("reading the configuration")?;
    service::telemetry::init(cfg.process.log_format);
    let bus = service::connect::bus(&cfg).await?;
    let store = service::connect::store(&cfg).await?;
    let settings = exceptions::ExceptionSettings::from_config(&cfg);
    tracing::info!(
        namespace = %cfg.nats.namespace,
        metrics = ?settings.metrics_addr,
        "exception consumer starting"
    );
    let shutdown = service::Shutdown::new();
    shutdown.trigger_on_signals();
    exceptions::run(bus, store, settings, shutdown.cancelled())
        .await
        .context("exception consumer stopped with an error")
}
