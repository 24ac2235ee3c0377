//! The ingress tests' harness: a router served on port 0 over a real NATS (a namespace of
//! its own) and a fresh SQLite ledger; readers of what reached the events stream; a signed
//! PortOne webhook; orders written straight into the store; and a stand-in ledger that
//! applies events and announces decisions the way the real consumer does, for the tests
//! that need an answer.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use bus::{Bus, BusConfig, Namespace};
use domain::*;
use ingress::{AppState, Settings};
use serde_json::{Value, json};
use store::{Incoming, Store, StoreOptions};
use testkit::{Backend, TestDatabase};

pub const TOKEN: &str = "test-token-123";
pub const PORTONE_SECRET: &str = "PORTONE_SECRET";

/// Settings for tests: a token, the PortOne secret, a short deadline.
pub fn settings() -> Settings {
    let map = HashMap::from([
        ("STOCKLEDGER_API_TOKEN".to_owned(), TOKEN.to_owned()),
        (
            "STOCKLEDGER_PORTONE_SECRET_KEY".to_owned(),
            PORTONE_SECRET.to_owned(),
        ),
        (
            "STOCKLEDGER_CONFIRMATION_DEADLINE".to_owned(),
            "3s".to_owned(),
        ),
        ("STOCKLEDGER_PUBLISH_TIMEOUT".to_owned(), "2s".to_owned()),
    ]);
    Settings::from_config(&config::Config::from_map(&map).unwrap()).unwrap()
}

/// The shared world of one test: NATS namespace and database.
pub struct World {
    pub nats_url: String,
    pub namespace: Namespace,
    pub bus: Bus,
    pub store: Store,
    pub db: TestDatabase,
}

impl World {
    pub async fn new(nats_url: String) -> World {
        let namespace = Namespace::parse(&testkit::unique_name("ingress")).unwrap();
        let bus = connect(&nats_url, &namespace).await;
        bus.ensure_ingress_streams().await.unwrap();
        let db = TestDatabase::new(Backend::Sqlite).await.unwrap();
        let store = Store::connect(db.url(), &StoreOptions::default())
            .await
            .unwrap();
        World {
            nats_url,
            namespace,
            bus,
            store,
            db,
        }
    }

    pub async fn shared() -> World {
        World::new(testkit::shared_nats_url().await.unwrap()).await
    }

    /// An ingress replica with its own NATS connection.
    pub async fn ingress(&self, settings: Settings) -> Ingress {
        let bus = connect(&self.nats_url, &self.namespace).await;
        Ingress::start(AppState::new(bus, self.store.clone(), settings)).await
    }

    /// Every message in the events stream: (subject, Nats-Msg-Id, payload as JSON).
    pub async fn events(&self) -> Vec<(String, String, Value)> {
        let stream = self
            .bus
            .jetstream()
            .get_stream(self.namespace.events_stream())
            .await
            .unwrap();
        let info = stream.get_info().await.unwrap();
        let mut out = Vec::new();
        for seq in info.state.first_sequence..=info.state.last_sequence {
            if info.state.messages == 0 {
                break;
            }
            let Ok(msg) = stream.get_raw_message(seq).await else {
                continue;
            };
            let id = msg
                .headers
                .get("Nats-Msg-Id")
                .map(|v| v.as_str().to_owned())
                .unwrap_or_default();
            out.push((
                msg.subject.to_string(),
                id,
                serde_json::from_slice(&msg.payload).unwrap(),
            ));
        }
        out
    }

    /// Registers an order directly in the ledger (no consumer in these tests).
    pub async fn register_order(&self, order_ref: &str, lines: &[(&str, u64)], amount: &str) {
        let spec = OrderSpec {
            order_ref: OrderRef::parse(order_ref).unwrap(),
            lines: Lines::new(lines.iter().map(|(s, q)| Line {
                key: key(s),
                quantity: Quantity::new(*q).unwrap(),
            }))
            .unwrap(),
            amount: Money::parse(amount, "USD").unwrap(),
        };
        self.apply(
            &format!("test:order:{order_ref}"),
            EventKind::OrderRegistered {
                spec,
                payment_refs: vec![],
            },
        )
        .await;
    }

    /// Receives stock directly in the ledger.
    pub async fn receive(&self, sku: &str, quantity: u64) {
        let kind = EventKind::StockReceived {
            key: key(sku),
            quantity: Quantity::new(quantity).unwrap(),
            reference: format!("r-{sku}-{quantity}"),
        };
        self.apply(&testkit::unique_name("test_receipt"), kind)
            .await;
    }

    async fn apply(&self, identity: &str, kind: EventKind) {
        let event = Event {
            id: EventId::from_dedupe_key(identity),
            provider: domain::Provider::named("test"),
            recorded_at: Timestamp(1),
            kind,
        };
        let incoming = Incoming {
            event,
            envelope: "{}".into(),
            operator_retry: false,
            stream_seq: None,
        };
        let ctx = Context {
            now: Timestamp(1),
            unknown_order_hold: Duration::ZERO,
            reservation_ttls: domain::ReservationTtls::documented_ref(),
        };
        self.store.apply_batch(&[incoming], &ctx).await.unwrap();
    }

    /// The real ledger process (consumer, relay; no sweeper), as a task on this world's
    /// namespace and database. Dropping the handle leaves it running until the test ends.
    pub async fn run_ledger(&self) -> tokio::task::JoinHandle<()> {
        let bus = connect(&self.nats_url, &self.namespace).await;
        let store = self.store.clone();
        let settings = ledger::LedgerSettings {
            fetch_batch_max: 64,
            batch_linger: Duration::from_millis(1),
            unknown_order_hold: Duration::ZERO,
            reservation_ttls: domain::ReservationTtls::documented(),
            stock_policy: None,
            sweep_interval: None,
            sweep_batch_max: 100,
            consumer: bus::ConsumerLimits {
                ack_wait: Duration::from_secs(5),
                ..bus::ConsumerLimits::default()
            },
            shutdown_grace: Duration::from_secs(5),
            metrics_addr: None,
        };
        tokio::spawn(async move {
            if let Err(e) = ledger::run(bus, store, settings, std::future::pending()).await {
                panic!("ledger stopped: {e}");
            }
        })
    }
}

pub fn key(sku: &str) -> StockKey {
    StockKey {
        sku: Sku::parse(sku).unwrap(),
        location: Location::parse("main").unwrap(),
    }
}

pub async fn connect(url: &str, namespace: &Namespace) -> Bus {
    let mut config = BusConfig::new(url);
    config.namespace = namespace.clone();
    config.publish_timeout = Duration::from_secs(2);
    Bus::connect(config).await.unwrap()
}

/// One ingress served on a loopback port.
pub struct Ingress {
    pub base: String,
    pub state: AppState,
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Ingress {
    pub async fn start(state: AppState) -> Ingress {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(ingress::serve(listener, state.clone(), async move {
            let _ = stopped.await;
        }));
        Ingress {
            base: format!("http://{addr}"),
            state,
            http: {
                ingress::install_tls_provider();
                reqwest::Client::new()
            },
            stop: Some(stop),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POST raw bytes with optional extra headers; returns (status, body as JSON or Null).
    pub async fn post_raw(
        &self,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut req = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json")
            .body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        read(req.send().await.unwrap()).await
    }

    /// A merchant API call with the bearer token.
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        read(req.send().await.unwrap()).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        read(self.http.get(self.url(path)).send().await.unwrap()).await
    }
}

impl Drop for Ingress {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn read(resp: reqwest::Response) -> (u16, Value) {
    let status = resp.status().as_u16();
    let bytes = resp.bytes().await.unwrap();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|_| json!(String::from_utf8_lossy(&bytes)))
    };
    (status, body)
}

/// A PortOne payment webhook body signed with `secret` (the way PortOne signs, through
/// `providers::portone::sign_payment_webhook`).
pub fn portone_webhook(
    order_ref: &str,
    merchant_order_ref: &str,
    status: &str,
    status_code: &str,
    amount: &str,
    secret: &str,
) -> Vec<u8> {
    let amount_dec: rust_decimal::Decimal = amount.parse().unwrap();
    let fields = providers::portone::PaymentSignatureFields {
        amount: amount_dec,
        channel_key: "PAYLETTER",
        channel_order_ref: "20240926HULUNYGP6MA2",
        country_code: "US",
        currency: "USD",
        merchant_order_ref,
        method_name: "Payletter Credit Card",
        order_ref,
        status,
    };
    let signature = providers::portone::sign_payment_webhook(&fields, secret);
    let body = format!(
        r#"{{"currency":"USD","amount":{amount},"order_ref":"{order_ref}","channel_order_ref":"20240926HULUNYGP6MA2",
        "merchant_order_ref":"{merchant_order_ref}","country_code":"US","status":"{status}","channel_key":"PAYLETTER",
        "method_name":"Payletter Credit Card","method_key":"PAYLETTER_CREDIT_CARD","signature_hash":"{signature}",
        "status_code":"{status_code}","status_reason":"SUCCESS","environment":"sandbox","merchant_key":"qcFJvupbcbdcyNFg"}}"#
    );
    body.into_bytes()
}

/// A PortOne inventory-confirmation body.
pub fn confirmation_body(
    portone_key: &str,
    merchant_order_ref: &str,
    portone_order_ref: &str,
    amount: &str,
) -> Vec<u8> {
    format!(
        r#"{{"portone_key":"{portone_key}","merchant_order_ref":"{merchant_order_ref}","portone_order_ref":"{portone_order_ref}","amount":{amount},"currency":"USD"}}"#
    )
    .into_bytes()
}

/// The event id the ingress gives a dedupe key.
pub fn event_id(identity: &str) -> String {
    EventId::from_dedupe_key(identity).to_string()
}
