//! The `ingress` process: the shared start-up (`service`), then the HTTP server and, beside
//! it, the callback verifiers (crate `verifier`), until SIGINT or SIGTERM; in-flight
//! requests and callbacks finish within `STOCKLEDGER_SHUTDOWN_GRACE`.
//!
//! NATS need not be up at start: the client keeps connecting in the background, `/readyz`
//! answers 503 `nats_unavailable` and writes 503 meanwhile, and the verifiers start as soon
//! as the streams exist.

use anyhow::Context as _;
use ingress::{AppState, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cfg = config::Config::from_env().context("reading the configuration")?;
    service::telemetry::init(cfg.process.log_format);
    let settings = Settings::from_config(&cfg).context("ingress settings")?;
    let verifier_settings = verifier::Settings::from_config(&cfg).context("verifier settings")?;
    if settings.confirmation_deadline >= settings.request_timeout {
        tracing::warn!(
            "STOCKLEDGER_CONFIRMATION_DEADLINE is not below STOCKLEDGER_REQUEST_TIMEOUT: \
             slow decisions will be cut off by the request timeout (408) instead of answering 202/decision_timeout"
        );
    }
    let bus = service::connect::bus(&cfg).await?;
    let store = service::connect::store(&cfg).await?;
    let listener = tokio::net::TcpListener::bind(&cfg.http.addr)
        .await
        .with_context(|| format!("binding STOCKLEDGER_HTTP_ADDR={}", cfg.http.addr))?;
    tracing::info!(addr = %cfg.http.addr, namespace = %cfg.nats.namespace, "ingress listening");

    let state = AppState::new(bus, store, settings);
    let shutdown = service::Shutdown::new();
    shutdown.trigger_on_signals();
    shutdown.spawn({
        let (bus, metrics, stopped) = (
            state.bus.clone(),
            state.metrics.clone(),
            shutdown.cancelled(),
        );
        async move {
            tokio::pin!(stopped);
            tokio::select! {
                () = bus::retry::until_provisioned(|| bus.ensure_ingress_streams()) => {}
                () = &mut stopped => return,
            }
            if let Err(e) = verifier::run(bus, verifier_settings, metrics, stopped).await {
                tracing::error!(error = %e, "the callback verifiers stopped with an error");
            }
        }
    });
    let server = shutdown.spawn(ingress::serve(listener, state, shutdown.cancelled()));
    // Until a signal, or until the server fails on its own (then the rest stops too).
    let failed = tokio::select! {
        () = shutdown.cancelled() => None,
        r = server => Some(r),
    };
    shutdown.trigger();
    shutdown.drain(cfg.process.shutdown_grace).await;
    match failed {
        Some(Ok(Err(e))) => Err(e).context("serving HTTP"),
        Some(Err(e)) => Err(e).context("the HTTP server task"),
        _ => Ok(()),
    }
}
