//! The `ingress` process: read the configuration, start logging, connect to the ledger
//! database (reads only) and to NATS, then serve HTTP and run the iPint verification worker
//! until SIGINT or SIGTERM, letting in-flight requests finish within
//! `STOCKLEDGER_SHUTDOWN_GRACE`.
//!
//! NATS need not be up at start (issue 16): the client keeps connecting in the background,
//! `/readyz` answers 503 `nats_unavailable` and writes 503 meanwhile, and the streams are
//! made sure of (then the iPint worker started) as soon as NATS answers.

use anyhow::{Context as _, Result};
use bus::{Bus, BusConfig, Namespace};
use config::Config;
use ingress::{AppState, Settings};
use store::{Store, StoreOptions};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<()> {
    let config = Config::from_env().context("reading the configuration")?;
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let settings = Settings::from_config(&config).context("ingress settings")?;
    if settings.confirmation_deadline >= settings.request_timeout {
        tracing::warn!(
            "STOCKLEDGER_CONFIRMATION_DEADLINE is not below STOCKLEDGER_REQUEST_TIMEOUT: \
             slow decisions will be cut off by the request timeout (408) instead of answering 202/decision_timeout"
        );
    }

    let mut bus_config = BusConfig::new(config.nats_url.clone());
    bus_config.namespace =
        Namespace::parse(&config.nats_namespace).context("STOCKLEDGER_NATS_NAMESPACE")?;
    bus_config.publish_timeout = config.publish_timeout;
    bus_config.group.max_events = config.publish_group_max;
    bus_config.group.inflight_max = config.publish_inflight_max;
    bus_config.retry_initial_connect = true;
    let bus = Bus::connect(bus_config)
        .await
        .context("connecting to NATS (STOCKLEDGER_NATS_URL)")?;

    let options = StoreOptions {
        max_connections: config.db_pool_max,
        ..StoreOptions::default()
    };
    let store = Store::connect(&config.database_url, &options)
        .await
        .context("connecting to the database (STOCKLEDGER_DATABASE_URL)")?;

    let listener = tokio::net::TcpListener::bind(&config.http_addr)
        .await
        .with_context(|| format!("binding STOCKLEDGER_HTTP_ADDR={}", config.http_addr))?;
    tracing::info!(addr = %config.http_addr, namespace = %config.nats_namespace, "ingress listening");

    let state = AppState::new(bus, store, settings);
    // The iPint verification worker runs beside the HTTP server until shutdown, from the
    // moment the streams exist (NATS may come later than this process).
    let (worker_stop, worker_stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn({
        let state = state.clone();
        async move {
            let stopped = async move {
                let _ = worker_stopped.await;
            };
            tokio::pin!(stopped);
            tokio::select! {
                () = bus::retry::until_provisioned(|| state.bus.ensure_streams()) => {}
                () = &mut stopped => return Ok(()),
            }
            ingress::ipint_worker::run(state, stopped).await
        }
    });
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ingress::serve(listener, state, async move {
        let _ = stop_rx.await;
    }));
    shutdown_signal().await;
    tracing::info!(grace = ?config.shutdown_grace, "shutting down: finishing in-flight requests");
    let _ = stop_tx.send(());
    let _ = worker_stop.send(());
    if let Ok(Ok(Err(e))) = tokio::time::timeout(config.shutdown_grace, worker).await {
        tracing::error!(error = %e, "the iPint verification worker stopped with an error");
    }
    match tokio::time::timeout(config.shutdown_grace, server).await {
        Ok(Ok(Ok(()))) => Ok(()),
        Ok(Ok(Err(e))) => Err(e).context("serving HTTP"),
        Ok(Err(e)) => Err(e).context("the HTTP server task"),
        Err(_) => {
            tracing::warn!(
                "in-flight requests did not finish within STOCKLEDGER_SHUTDOWN_GRACE; exiting"
            );
            Ok(())
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}
