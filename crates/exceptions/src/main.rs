//! The `exceptions` process: reads the configuration, connects to NATS and the database,
//! and turns dead letters into exception-queue rows until SIGINT or SIGTERM.

use anyhow::Context as _;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cfg = config::Config::from_env().context("reading configuration")?;
    let mut bus_cfg = bus::BusConfig::new(&cfg.nats_url);
    bus_cfg.namespace =
        bus::Namespace::parse(&cfg.nats_namespace).context("STOCKLEDGER_NATS_NAMESPACE")?;
    bus_cfg.publish_timeout = cfg.publish_timeout;
    // Start without NATS and wait for it (issue 16): `exceptions::run` retries until it
    // answers.
    bus_cfg.retry_initial_connect = true;
    let bus = bus::Bus::connect(bus_cfg)
        .await
        .context("connecting to NATS")?;
    let store_opts = store::StoreOptions {
        max_connections: cfg.db_pool_max,
        ..Default::default()
    };
    let store = store::Store::connect(&cfg.database_url, &store_opts)
        .await
        .context("opening the ledger database")?;
    let settings = exceptions::ExceptionSettings::from_config(&cfg);
    tracing::info!(namespace = %cfg.nats_namespace, metrics = ?settings.metrics_addr, "exception consumer starting");
    exceptions::run(bus, store, settings, shutdown_signal())
        .await
        .context("exception consumer stopped with an error")?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
