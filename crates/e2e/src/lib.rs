//! # e2e: the one harness for end-to-end tests and the benchmark
//!
//! A [`Harness`] is one isolated stockledger: a unique NATS namespace (streams and
//! subjects of its own on the shared test server), a fresh database (SQLite or PostgreSQL),
//! and ledger processes started and killed at will as tasks. Tests in `tests/` drive it;
//! so does the benchmark in `benches/`. [`workload`] makes realistic, deterministic
//! histories.

pub mod cluster;
pub mod http;
pub mod procs;
pub mod wait;
pub mod workload;

use std::time::{Duration, Instant};

use bus::{Bus, BusConfig, ConsumerLimits, Namespace};
use contract::{Envelope, Source};
use domain::Event;
use ledger::LedgerSettings;
use store::{Store, StoreOptions};
use testkit::{Backend, TestDatabase};
use tokio::task::JoinHandle;

/// One isolated stockledger for a test.
pub struct Harness {
    pub bus: Bus,
    pub store: Store,
    pub db: TestDatabase,
    pub nats_url: String,
}

/// A ledger process running as a task.
pub struct LedgerTask {
    stop: tokio::sync::oneshot::Sender<()>,
    handle: JoinHandle<Result<(), ledger::LedgerError>>,
}

impl LedgerTask {
    /// Stops gracefully: the batch in flight finishes and is acknowledged.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.handle.await;
    }

    /// Kills it: the task is dropped wherever it is, mid-batch or between commit and ack.
    pub async fn kill(self) {
        self.handle.abort();
        let _ = self.handle.await;
    }
}

/// Settings for tests: short ack wait so a killed consumer's messages come back quickly,
/// no sweeper unless a test starts one.
pub fn test_settings() -> LedgerSettings {
    LedgerSettings {
        fetch_batch_max: 128,
        batch_linger: Duration::from_millis(1),
        unknown_order_hold: Duration::ZERO,
        reservation_ttls: domain::ReservationTtls::documented(),
        stock_policy: None,
        sweep_interval: None,
        sweep_batch_max: 100,
        consumer: ConsumerLimits {
            ack_wait: Duration::from_secs(2),
            max_deliver: 20,
            backoff: vec![Duration::from_secs(1), Duration::from_secs(2)],
            max_ack_pending: 4096,
        },
        shutdown_grace: Duration::from_secs(5),
        metrics_addr: None,
    }
}

impl Harness {
    /// A new isolated stockledger on `backend`, using the shared test NATS server.
    pub async fn new(backend: Backend) -> anyhow::Result<Harness> {
        let url = testkit::shared_nats_url().await?;
        Harness::on(backend, &url).await
    }

    /// A new isolated stockledger on `backend` and the NATS server at `nats_url`.
    pub async fn on(backend: Backend, nats_url: &str) -> anyhow::Result<Harness> {
        let mut cfg = BusConfig::new(nats_url);
        cfg.namespace = Namespace::parse(&testkit::unique_name("t"))?;
        let bus = Bus::connect(cfg).await?;
        // Every stream a deployment has once its ingress started (the raw stream included).
        bus.ensure_ingress_streams().await?;
        let db = TestDatabase::new(backend).await?;
        let store = Store::connect(db.url(), &StoreOptions::default()).await?;
        Ok(Harness {
            bus,
            store,
            db,
            nats_url: nats_url.to_owned(),
        })
    }

    /// Another connection to the same NATS namespace and database: a second process.
    pub async fn replica(&self) -> anyhow::Result<(Bus, Store)> {
        let mut cfg = BusConfig::new(&self.nats_url);
        cfg.namespace = self.bus.namespace().clone();
        let bus = Bus::connect(cfg).await?;
        let store = Store::connect(self.db.url(), &StoreOptions::default()).await?;
        Ok((bus, store))
    }

    /// Starts a ledger process (as a task) with `settings`.
    pub async fn start_ledger(&self, settings: LedgerSettings) -> anyhow::Result<LedgerTask> {
        let (bus, store) = self.replica().await?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(ledger::run(bus, store, settings, async move {
            let _ = stopped.await;
        }));
        Ok(LedgerTask { stop, handle })
    }

    /// Publishes a domain event as a v1 envelope (identity `test:<event id>`-free: the
    /// event's id is kept by using its dedupe key as the identity).
    pub async fn publish(&self, identity: &str, event: &Event) -> anyhow::Result<()> {
        let env = envelope(identity, event);
        let id = env.event_id().to_string();
        let subject = self
            .bus
            .namespace()
            .event_subject("test", event.kind.name());
        self.bus
            .publish_event(subject, &id, env.to_json()?.into(), None)
            .await?;
        Ok(())
    }

    /// Publishes raw bytes on the events stream (poison messages).
    pub async fn publish_raw(&self, msg_id: &str, payload: Vec<u8>) -> anyhow::Result<()> {
        let subject = self.bus.namespace().event_subject("test", "raw");
        self.bus
            .publish_event(subject, msg_id, payload.into(), None)
            .await?;
        Ok(())
    }

    /// Waits until `n` events have an outcome, or `timeout` passes.
    pub async fn wait_processed(&self, n: i64, timeout: Duration) -> anyhow::Result<i64> {
        let start = Instant::now();
        loop {
            let done = self.processed_count().await?;
            if done >= n || start.elapsed() > timeout {
                return Ok(done);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// How many distinct events have an outcome.
    pub async fn processed_count(&self) -> anyhow::Result<i64> {
        Ok(self
            .store
            .outcome_counts()
            .await?
            .iter()
            .map(|(_, n)| n)
            .sum())
    }
}

/// An ingress serving on a free loopback port, as a task.
pub struct IngressTask {
    pub url: String,
    stop: tokio::sync::oneshot::Sender<()>,
    handle: JoinHandle<std::io::Result<()>>,
}

impl IngressTask {
    /// Stops it: in-flight requests finish.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.handle.await;
    }
}

/// The API token and PortOne secret the test ingresses use.
pub const TEST_API_TOKEN: &str = "test-token-0123456789";
pub const TEST_PORTONE_SECRET: &str = "test-portone-secret";

/// Ingress configuration for tests: `extra` variables on top of a token and a PortOne secret.
pub fn ingress_config(extra: &[(&str, &str)]) -> anyhow::Result<config::Config> {
    let mut map = std::collections::HashMap::from([
        (
            "STOCKLEDGER_API_TOKEN".to_owned(),
            TEST_API_TOKEN.to_owned(),
        ),
        (
            "STOCKLEDGER_PORTONE_SECRET_KEY".to_owned(),
            TEST_PORTONE_SECRET.to_owned(),
        ),
    ]);
    for (k, v) in extra {
        map.insert((*k).to_owned(), (*v).to_owned());
    }
    Ok(config::Config::from_map(&map)?)
}

impl Harness {
    /// Starts an ingress (its own NATS connection and database pool, like a replica behind a
    /// load balancer) with configuration `cfg`, on a free port.
    pub async fn start_ingress(&self, cfg: &config::Config) -> anyhow::Result<IngressTask> {
        let (_, store) = self.replica().await?;
        // Its own connection, with the raw-body retention `cfg` sets (`bus::raw`).
        let mut bus_cfg = BusConfig::new(&self.nats_url);
        bus_cfg.namespace = self.bus.namespace().clone();
        bus_cfg.raw_retention = cfg.nats.raw_retention;
        let bus = Bus::connect(bus_cfg).await?;
        bus.ensure_raw_stream().await?;
        let settings = ingress::Settings::from_config(cfg)?;
        let state = ingress::AppState::new(bus, store, settings);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(ingress::serve(listener, state, async move {
            let _ = stopped.await;
        }));
        Ok(IngressTask { url, stop, handle })
    }
}

/// An exception consumer running as a task.
pub struct ExceptionsTask {
    stop: tokio::sync::oneshot::Sender<()>,
    handle: JoinHandle<Result<(), exceptions::ExceptionsError>>,
}

impl ExceptionsTask {
    /// Stops it gracefully: the message in hand is finished.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.handle.await;
    }

    /// Kills it wherever it is.
    pub async fn kill(self) {
        self.handle.abort();
        let _ = self.handle.await;
    }
}

/// Exception-consumer settings for tests: quick reconciliation and retries, no metrics port.
pub fn exceptions_settings() -> exceptions::ExceptionSettings {
    exceptions::ExceptionSettings {
        sweep_interval: Duration::from_millis(200),
        retry_delay: Duration::from_millis(500),
        ..exceptions::ExceptionSettings::default()
    }
}

impl Harness {
    /// Starts an exception consumer (as a task, with its own connections).
    pub async fn start_exceptions(
        &self,
        settings: exceptions::ExceptionSettings,
    ) -> anyhow::Result<ExceptionsTask> {
        let (bus, store) = self.replica().await?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let handle = tokio::spawn(exceptions::run(bus, store, settings, async move {
            let _ = stopped.await;
        }));
        Ok(ExceptionsTask { stop, handle })
    }

    /// The operator actions (`stockctl exceptions retry`, …) on this stockledger, waiting
    /// up to `wait` for the ledger's outcome.
    pub fn actions(&self, wait: Duration) -> operator::actions::Actions {
        operator::actions::Actions {
            bus: self.bus.clone(),
            store: self.store.clone(),
            wait,
        }
    }
}

/// The v1 envelope of a domain event whose id was derived from `identity`.
pub fn envelope(identity: &str, event: &Event) -> Envelope {
    let env = Envelope::new(
        &event.kind,
        Source {
            provider: event.provider.to_string(),
            identity: identity.into(),
        },
        event.recorded_at,
        event.recorded_at,
        None,
    );
    assert_eq!(
        env.event_id(),
        event.id,
        "event id must derive from the identity"
    );
    env
}

/// The path of a workspace binary built in debug (`scripts/test` builds every binary
/// before running the tests).
pub fn binary(name: &str) -> std::path::PathBuf {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), std::path::PathBuf::from);
    let path = target.join("debug").join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first (cargo build -p {name}; scripts/test does)",
        path.display()
    );
    path
}

/// The clock every process reads (`service::now`).
pub use service::now;

/// A time after the deadline of every reservation made now under the documented TTLs (the
/// longest is 28 days): what a sweep passes to expire everything reserved so far.
pub fn past_every_reservation_deadline() -> domain::Timestamp {
    now().plus(Duration::from_secs(60 * 86_400))
}
