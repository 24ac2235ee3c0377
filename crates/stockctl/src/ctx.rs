//! What every command connects with: the configuration the services read (environment
//! variables) with the global `--database-url` and `--nats-url` on top, and the three ways
//! of reaching the ledger database and NATS (read-only, writing, NATS at once or not at
//! all). Set once by `main` before a command runs.

use std::sync::OnceLock;

use anyhow::Context as _;

/// The global options that change the configuration.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--database-url` (default `STOCKLEDGER_DATABASE_URL`).
    pub database_url: Option<String>,
    /// `--nats-url` (default `STOCKLEDGER_NATS_URL`).
    pub nats_url: Option<String>,
}

static OVERRIDES: OnceLock<Overrides> = OnceLock::new();

/// Records the global options; called once by `main`.
pub fn set(overrides: Overrides) {
    let _ = OVERRIDES.set(overrides);
}

/// The configuration: the environment, with the global options in place of its variables.
pub fn config() -> anyhow::Result<config::Config> {
    let o = OVERRIDES.get().cloned().unwrap_or_default();
    let cfg = config::Config::from_lookup(|name| match name {
        "STOCKLEDGER_DATABASE_URL" if o.database_url.is_some() => o.database_url.clone(),
        "STOCKLEDGER_NATS_URL" if o.nats_url.is_some() => o.nats_url.clone(),
        _ => std::env::var(name).ok(),
    })
    .context("reading configuration")?;
    Ok(cfg)
}

/// Connects to NATS at once (a tool does not wait for a server that is down): exit code 3
/// when it cannot.
pub async fn bus(cfg: &config::Config) -> anyhow::Result<bus::Bus> {
    let mut bus_cfg = service::connect::bus_config(cfg)?;
    bus_cfg.retry_initial_connect = false;
    bus_cfg.publish_timeout = cfg.nats.publish_timeout;
    bus::Bus::connect(bus_cfg)
        .await
        .with_context(|| format!("connecting to NATS at {}", bus::redact_url(&cfg.nats.url)))
}

/// Opens the ledger database for reading: never creates or migrates one (exit code 3 when
/// there is none, naming it).
pub async fn store_for_reading(cfg: &config::Config) -> anyhow::Result<store::Store> {
    store::Store::open_existing(&cfg.database.url, &store::StoreOptions::default())
        .await
        .context("opening the ledger database (--database-url, STOCKLEDGER_DATABASE_URL); nothing was created")
}

/// Opens the ledger database for a command that writes: creates and migrates it when
/// needed, as the services do.
pub async fn store_for_writing(cfg: &config::Config) -> anyhow::Result<store::Store> {
    store::Store::connect(&cfg.database.url, &store::StoreOptions::default())
        .await
        .context("opening the ledger database (--database-url, STOCKLEDGER_DATABASE_URL)")
}

/// Checks that the events stream exists: a NATS server that answers but has no stream for
/// this namespace is a problem to name (exit code 1), not an unavailable server.
pub async fn events_stream(bus: &bus::Bus) -> anyhow::Result<String> {
    let stream = bus.namespace().events_stream();
    match bus.stream_last_seq(&stream).await {
        Ok(_) => Ok(stream),
        Err(e) if bus.is_connected() && e.to_string().contains("not found") => {
            Err(crate::exit::problem(format!(
                "NATS has no events stream {stream}: is STOCKLEDGER_NATS_NAMESPACE ({}) right? \
                 The services create the stream when they start",
                bus.namespace().as_str()
            )))
        }
        Err(e) => Err(e.into()),
    }
}
