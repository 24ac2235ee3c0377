//! The `ledger` process: reads the configuration, connects to NATS and the database, and
//! applies events until SIGINT or SIGTERM.

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
    bus_cfg.group.max_events = cfg.publish_group_max;
    bus_cfg.group.inflight_max = cfg.publish_inflight_max;
    // Start without NATS and wait for it (issue 16): `ledger::run` retries until it answers.
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
    let settings = ledger::LedgerSettings::from_config(&cfg);
    tracing::info!(database = store_backend(&store), namespace = %cfg.nats_namespace, "ledger starting");
    ledger::run(bus, store, settings, shutdown_signal())
        .await
        .context("ledger stopped with an error")?;
    Ok(())
}

fn store_backend(store: &store::Store) -> &'static str {
    match store.backend() {
        store::Backend::Sqlite => "sqlite",
        store::Backend::Postgres => "postgres",
    }
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
