//! The event stream is the source of truth (docs/operations.md, "Recovery"), on SQLite and
//! PostgreSQL:
//! - traffic (receipts, orders, PortOne confirmations and webhooks, an exception resolved by
//!   an operator, a stock correction, a reservation expiry), then the database is lost while
//!   the processes are down: on restart `/readyz` is 503 `ledger_behind_stream`, writes and
//!   confirmations answer 503 and the ledger applies nothing; after `stockctl ledger
//!   rebuild` the canonical export equals the one before the loss (balances, entries,
//!   outcomes, orders, exceptions, audit trail, times), the ledger resumes, and nothing is
//!   published downstream twice; a second rebuild into a fresh database is byte for byte
//!   the same;
//! - the same with a database restored from an older copy (behind, not empty);
//! - replaying the whole stream into the live ledger changes nothing and publishes nothing.
#![allow(clippy::unwrap_used)]

use std::process::{Command, Output};
use std::time::Duration;

use domain::{Event, EventId, EventKind, OrderLookup, OrderRef, Payment};
use e2e::http::{Client, confirmation, portone_webhook};
use e2e::wait::eventually;
use e2e::{Harness, IngressTask, LedgerTask, ingress_config, test_settings};
use ledger::replay::{ReplayOptions, replay};
use serde_json::json;
use store::{Store, StoreOptions};
use testkit::{Backend, TestDatabase};

use testkit::on_both_backends;

on_both_backends!(
    a_lost_database_is_refused_then_rebuilt_equal,
    a_database_restored_from_an_older_copy_is_rebuilt_equal,
);

/// Waits until the ledger consumer has acknowledged every message of the events stream.
async fn settled(h: &Harness) {
    eventually("the ledger to acknowledge the whole stream", || async {
        let p = h.bus.ledger_progress().await.unwrap();
        p.acked == p.last_seq
    })
    .await;
}

/// The number of stock-change messages downstream systems have received.
async fn stock_messages(h: &Harness) -> u64 {
    let mut stream = h
        .bus
        .jetstream()
        .get_stream(h.bus.namespace().stock_stream())
        .await
        .unwrap();
    stream.info().await.unwrap().state.messages
}

/// The roles of one stockledger on one database.
struct Roles {
    ledger: LedgerTask,
    ingress: IngressTask,
    client: Client,
}

impl Roles {
    async fn start(h: &Harness) -> Roles {
        let ledger = h.start_ledger(test_settings()).await.unwrap();
        let ingress = h
            .start_ingress(&ingress_config(&[]).unwrap())
            .await
            .unwrap();
        let client = Client::new(&ingress.url);
        Roles {
            ledger,
            ingress,
            client,
        }
    }

    async fn stop(self) {
        self.ingress.stop().await;
        self.ledger.stop().await;
    }
}

/// Traffic of every kind the recovery must bring back.
async fn traffic(h: &Harness, c: &Client) {
    c.receive("mug", 20, "po-1").await;
    c.receive("cap", 5, "po-2").await;
    for i in 1..=4 {
        c.register(&format!("o-{i}"), "mug", 2, "30").await;
    }
    // PortOne asks, then tells: two confirmed and captured, one confirmed and left to expire.
    for i in 1..=3 {
        let (status, body) = c
            .post(
                "/portone/inventory-confirmation",
                confirmation(&format!("o-{i}"), &format!("pp-{i}"), "30"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    for i in 1..=2 {
        let (status, body) = c
            .post(
                "/webhooks/portone",
                portone_webhook(&format!("pp-{i}"), &format!("o-{i}"), "Success", "30"),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    // A capture for an order nobody registered: an exception, resolved by an operator.
    let stray = Event {
        id: EventId::from_dedupe_key("stray-capture"),
        provider: domain::Provider::named("test"),
        recorded_at: e2e::now(),
        kind: EventKind::PaymentCaptured {
            payment: Payment {
                order: OrderLookup::OrderRef(OrderRef::parse("o-nobody").unwrap()),
                amount: None,
            },
        },
    };
    h.publish("stray-capture", &stray).await.unwrap();
    settled(h).await;
    let actions = h.actions(e2e::wait::WAIT_MAX);
    actions
        .resolve(
            &stray.id.to_string(),
            "ops@example.com",
            "test capture, refunded by hand",
        )
        .await
        .unwrap();
    // A correction with its approver.
    actions
        .correct_stock(&operator::actions::Correction {
            sku: "cap".into(),
            location: "main".into(),
            delta: -1,
            reason: "damaged in the warehouse".into(),
            evidence: "photo-17".into(),
            approved_by: "lead@example.com".into(),
            actor: "ops@example.com".into(),
            idempotency_key: Some("count-2026-11-30".into()),
        })
        .await
        .unwrap();
    // The third confirmation's reservation expires: an event with its own time.
    ledger::sweeper::sweep_once(
        &h.bus,
        &h.store,
        &domain::ReservationTtls::uniform(Duration::ZERO),
        100,
        e2e::past_every_reservation_deadline(),
    )
    .await
    .unwrap();
    settled(h).await;
    eventually("the relay to empty the outbox", || async {
        h.store.stock_outbox_len().await.unwrap() == 0
    })
    .await;
}

/// `stockctl` against `db` in `h`'s namespace.
fn stockctl(h: &Harness, db_url: &str, args: &[&str]) -> Output {
    let out = Command::new(e2e::binary("stockctl"))
        .args(args)
        .env("STOCKLEDGER_NATS_URL", &h.nats_url)
        .env("STOCKLEDGER_NATS_NAMESPACE", h.bus.namespace().as_str())
        .env("STOCKLEDGER_DATABASE_URL", db_url)
        .env("STOCKLEDGER_UNKNOWN_ORDER_HOLD", "0s")
        .output()
        .unwrap();
    eprintln!(
        "stockctl {args:?}: {}\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The same stockledger (namespace) on another database.
async fn on_database(h: &Harness, db: TestDatabase) -> Harness {
    let store = Store::connect(db.url(), &StoreOptions::default())
        .await
        .unwrap();
    Harness {
        bus: h.bus.clone(),
        store,
        db,
        nats_url: h.nats_url.clone(),
    }
}

/// What a client sees while the ledger is behind: not ready, writes and confirmations
/// refused with the reason, nothing applied.
async fn refuses_while_behind(h: &Harness, c: &Client) {
    let (status, body) = c.api(reqwest::Method::GET, "/readyz", None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["ready"], false, "{body}");
    assert!(
        body["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!("ledger_behind_stream")),
        "{body}"
    );
    let order = json!({"lines": [{"sku": "mug", "location": "main", "quantity": 1}], "amount": "15", "currency": "USD"});
    let (status, body) = c
        .api(reqwest::Method::PUT, "/v1/orders/o-new", Some(order))
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "ledger_behind_stream", "{body}");
    let (status, body) = c.api(reqwest::Method::GET, "/v1/stock/mug", None).await;
    assert_eq!(status, 503, "{body}");
    let (status, body) = c
        .post(
            "/portone/inventory-confirmation",
            confirmation("o-4", "pp-4", "30"),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    // In PortOne's shape, like every non-200 answer of the confirmation.
    let refusal: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(refusal["reason"], "ledger_behind_stream", "{body}");
    assert!(refusal.get("error").is_none(), "{body}");
    // The exception process's `/readyz` says the same.
    let gauges = operator::gauges::Gauges {
        bus: h.bus.clone(),
        store: h.store.clone(),
    };
    let (status, body) = gauges.readiness().await;
    assert!(status.starts_with("503"), "{status} {body}");
    assert!(body.starts_with("ledger_behind_stream"), "{body}");
    // Proving an absence needs a window: the ledger re-checks its standing every 2 s
    // (`operator::standing`), so this window spans at least one of its checks.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        h.store
            .outcome_counts()
            .await
            .unwrap()
            .iter()
            .map(|(_, n)| n)
            .sum::<i64>(),
        0,
        "a ledger behind the stream applies nothing"
    );
}

async fn a_lost_database_is_refused_then_rebuilt_equal(backend: Backend) {
    let h = Harness::new(backend).await.unwrap();
    let roles = Roles::start(&h).await;
    traffic(&h, &roles.client).await;
    let before = h.store.canonical_export().await.unwrap();
    let published = stock_messages(&h).await;
    assert!(before.contains("ops@example.com"), "{before}");

    // Replaying the whole stream into the live ledger changes nothing, publishes nothing.
    let out = stockctl(&h, h.db.url(), &["replay", "--all-history"]);
    assert!(out.status.success());
    h.settled().await.unwrap();
    assert_eq!(h.store.canonical_export().await.unwrap(), before);
    assert_eq!(stock_messages(&h).await, published);
    roles.stop().await;

    // The database is lost while the processes are down; they restart on an empty one.
    let lost = on_database(&h, TestDatabase::new(backend).await.unwrap()).await;
    let roles = Roles::start(&lost).await;
    refuses_while_behind(&lost, &roles.client).await;
    let verify = stockctl(&lost, lost.db.url(), &["ledger", "verify"]);
    assert_eq!(
        verify.status.code(),
        Some(1),
        "verify reports the ledger behind"
    );

    let out = stockctl(&lost, lost.db.url(), &["ledger", "rebuild", "--yes"]);
    assert!(out.status.success());
    assert_eq!(lost.store.canonical_export().await.unwrap(), before);
    // The ledger resumes by itself, applies nothing twice, and the relay publishes nothing
    // that downstream systems already have.
    eventually("ready again", || async {
        roles
            .client
            .api(reqwest::Method::GET, "/readyz", None)
            .await
            .0
            == 200
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(lost.store.canonical_export().await.unwrap(), before);
    assert_eq!(stock_messages(&h).await, published);
    roles.client.register("o-5", "mug", 1, "15").await;
    roles.stop().await;

    // A second rebuild, into a fresh database, gives the same ledger byte for byte.
    let again = TestDatabase::new(backend).await.unwrap();
    let out = stockctl(
        &lost,
        lost.db.url(),
        &["ledger", "rebuild", "--yes", "--into", again.url()],
    );
    assert!(out.status.success());
    let again = on_database(&h, again).await;
    assert_eq!(
        again.store.canonical_export().await.unwrap(),
        lost.store.canonical_export().await.unwrap()
    );
}

async fn a_database_restored_from_an_older_copy_is_rebuilt_equal(backend: Backend) {
    let h = Harness::new(backend).await.unwrap();
    let roles = Roles::start(&h).await;
    traffic(&h, &roles.client).await;
    let before = h.store.canonical_export().await.unwrap();
    let published = stock_messages(&h).await;
    roles.stop().await;

    // The older copy: a ledger that had applied the first half of the stream.
    let last = h.bus.ledger_progress().await.unwrap();
    let older = on_database(&h, TestDatabase::new(backend).await.unwrap()).await;
    let writer = operator::standing::standing(&h.bus, &older.store)
        .await
        .unwrap()
        .writer("ledger-before-the-backup");
    let opts = ReplayOptions {
        filter: h.bus.namespace().events_wildcard(),
        from: bus::read::ReadFrom::Start,
        to_seq: Some(last.last_seq / 2),
        dry_run: false,
        unknown_order_hold: Duration::ZERO,
        reservation_ttls: domain::ReservationTtls::documented(),
    };
    replay(
        &h.bus,
        &older.store.clone().recording_position(writer),
        &opts,
        |_, _| {},
    )
    .await
    .unwrap();
    let partial = older.store.canonical_export().await.unwrap();
    assert_ne!(partial, before);

    let roles = Roles::start(&older).await;
    refuses_while_behind_nonempty(&roles.client).await;
    assert_eq!(older.store.canonical_export().await.unwrap(), partial);
    let out = stockctl(&older, older.db.url(), &["ledger", "rebuild", "--yes"]);
    assert!(out.status.success());
    assert_eq!(older.store.canonical_export().await.unwrap(), before);
    eventually("ready again", || async {
        roles
            .client
            .api(reqwest::Method::GET, "/readyz", None)
            .await
            .0
            == 200
    })
    .await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(stock_messages(&h).await, published);
    roles.stop().await;
}

/// [`refuses_while_behind`] for a ledger that is not empty.
async fn refuses_while_behind_nonempty(c: &Client) {
    let (status, body) = c.api(reqwest::Method::GET, "/readyz", None).await;
    assert_eq!(status, 503, "{body}");
    let (status, body) = c.api(reqwest::Method::GET, "/v1/stock/mug", None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "ledger_behind_stream", "{body}");
}
