//! From the configuration to the two connections every role holds: the bus (NATS
//! JetStream) and the store (the ledger database). The mapping from variables to client
//! settings is written here once, not per binary.

use bus::{Bus, BusConfig, Namespace};
use config::Config;
use store::{Store, StoreOptions};

/// Why a role could not get its connections.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// `STOCKLEDGER_NATS_NAMESPACE` is not a valid namespace.
    #[error("STOCKLEDGER_NATS_NAMESPACE: {0}")]
    Namespace(String),
    /// The NATS client could not be built (a malformed URL or credentials).
    #[error("connecting to NATS (STOCKLEDGER_NATS_URL)")]
    Bus(#[source] bus::BusError),
    /// The database could not be opened or migrated.
    #[error("opening the ledger database (STOCKLEDGER_DATABASE_URL)")]
    Store(#[source] store::StoreError),
}

/// The bus settings the configuration gives. NATS need not be up at start: the client
/// keeps connecting in the background and each role waits for its streams
/// (`bus::retry::until_provisioned`).
pub fn bus_config(cfg: &Config) -> Result<BusConfig, ConnectError> {
    let mut bus = BusConfig::new(cfg.nats.url.clone());
    bus.creds = cfg.nats.creds.clone();
    bus.tls_ca = cfg.nats.tls_ca.clone();
    bus.replicas = cfg.nats.stream_replicas;
    bus.namespace = Namespace::parse(&cfg.nats.namespace)
        .map_err(|e| ConnectError::Namespace(e.to_string()))?;
    bus.publish_timeout = cfg.nats.publish_timeout;
    bus.group.max_events = cfg.nats.publish_group_max;
    bus.group.inflight_max = cfg.nats.publish_inflight_max;
    bus.raw_retention = cfg.nats.raw_retention;
    bus.retry_initial_connect = true;
    Ok(bus)
}

/// Connects to NATS as the configuration says.
pub async fn bus(cfg: &Config) -> Result<Bus, ConnectError> {
    Bus::connect(bus_config(cfg)?)
        .await
        .map_err(ConnectError::Bus)
}

/// Opens (and migrates) the ledger database as the configuration says.
pub async fn store(cfg: &Config) -> Result<Store, ConnectError> {
    let options = StoreOptions {
        max_connections: cfg.database.pool_max,
        ..StoreOptions::default()
    };
    Store::connect(&cfg.database.url, &options)
        .await
        .map_err(ConnectError::Store)
}

/// The backend's name, for the start-up log line.
pub fn backend_name(store: &Store) -> &'static str {
    match store.backend() {
        store::Backend::Sqlite => "sqlite",
        store::Backend::Postgres => "postgres",
    }
}
