//! Issue 16, item 11: the roles start without NATS. The real `ledger`, `exceptions` and
//! `ingress` binaries are started while nothing listens on their NATS port; they keep
//! running, the ingress answers `/healthz`, says `nats_unavailable` on `/readyz` and
//! refuses writes with 503; once nats-server starts on that port, the ingress and the
//! exception consumer become ready and a write is applied by the ledger. On SQLite and on
//! PostgreSQL.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use e2e::procs::{Role, free_port, wait_status};
use testkit::NatsServer;
use testkit::{Backend, TestDatabase};

async fn roles_started_before_nats_become_ready(backend: Backend) {
    let mut nats = NatsServer::start().await.expect("nats-server");
    // Keep the port and the store, but nothing listens until `restart`.
    nats.stop().await.expect("stop nats-server");
    let db = TestDatabase::new(backend).await.expect("database");
    let addr = format!("127.0.0.1:{}", free_port());
    let exceptions_addr = format!("127.0.0.1:{}", free_port());
    let ledger_addr = format!("127.0.0.1:{}", free_port());
    let env = vec![
        ("STOCKLEDGER_LEDGER_METRICS_ADDR", ledger_addr.clone()),
        (
            "STOCKLEDGER_EXCEPTIONS_METRICS_ADDR",
            exceptions_addr.clone(),
        ),
        ("STOCKLEDGER_HTTP_ADDR", addr.clone()),
        ("STOCKLEDGER_NATS_URL", nats.url()),
        (
            "STOCKLEDGER_NATS_NAMESPACE",
            testkit::unique_name("startup"),
        ),
        ("STOCKLEDGER_DATABASE_URL", db.url().to_owned()),
        ("STOCKLEDGER_API_TOKEN", e2e::TEST_API_TOKEN.to_owned()),
        (
            "STOCKLEDGER_PORTONE_SECRET_KEY",
            e2e::TEST_PORTONE_SECRET.to_owned(),
        ),
        ("STOCKLEDGER_CONFIRMATION_DEADLINE", "5s".to_owned()),
        ("RUST_LOG", "info".to_owned()),
    ];
    let started = Instant::now();
    let mut ledger = Role::spawn("ledger", None, &env);
    // Both would migrate a new SQLite file at once otherwise ("database is locked").
    e2e::procs::wait_output(&ledger, "ledger starting", Duration::from_secs(15)).await;
    let mut exceptions = Role::spawn("exceptions", None, &env);
    e2e::procs::wait_output(
        &exceptions,
        "exception consumer starting",
        Duration::from_secs(15),
    )
    .await;
    let mut ingress = Role::spawn("ingress", None, &env);
    let base = format!("http://{addr}");
    assert!(
        wait_status(&base, "/healthz", 200, Duration::from_secs(15)).await,
        "the ingress does not serve without NATS:\n{}",
        ingress.output()
    );
    // Long enough for the first connection attempts to have failed.
    tokio::time::sleep(Duration::from_secs(2).saturating_sub(started.elapsed())).await;
    assert!(
        ledger.is_running(),
        "the ledger exited:\n{}",
        ledger.output()
    );
    assert!(
        ingress.is_running(),
        "the ingress exited:\n{}",
        ingress.output()
    );
    assert!(
        exceptions.is_running(),
        "the exception consumer exited:\n{}",
        exceptions.output()
    );

    let client = e2e::http::Client::new(&base);
    let http = e2e::procs::fresh_client();
    let r = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(r.status().as_u16(), 503);
    let body: serde_json::Value = r.json().await.expect("readyz body");
    assert!(
        body["reasons"]
            .as_array()
            .is_some_and(|a| a.iter().any(|r| r == "nats_unavailable")),
        "{body}"
    );
    let receipt = serde_json::json!({"sku": "tee-start", "location": "main", "quantity": 3, "reference": "po-start-0"});
    let (status, resp) = client
        .api(reqwest::Method::POST, "/v1/stock/receipts", Some(receipt))
        .await;
    assert_eq!(status, 503, "a write without NATS: {resp}");

    nats.restart().await.expect("nats-server starts");
    assert!(
        wait_status(&base, "/readyz", 200, Duration::from_secs(15)).await,
        "the ingress did not become ready once NATS came:\n{}",
        ingress.output()
    );
    let exceptions_base = format!("http://{exceptions_addr}");
    assert!(
        wait_status(&exceptions_base, "/readyz", 200, Duration::from_secs(15)).await,
        "the exception consumer did not become ready once NATS came:\n{}",
        exceptions.output()
    );
    let ledger_base = format!("http://{ledger_addr}");
    assert!(
        wait_status(&ledger_base, "/readyz", 200, Duration::from_secs(15)).await,
        "the ledger did not become ready once NATS came:\n{}",
        ledger.output()
    );
    let receipt = serde_json::json!({"sku": "tee-start", "location": "main", "quantity": 3, "reference": "po-start-1"});
    let (status, resp) = client
        .api(reqwest::Method::POST, "/v1/stock/receipts", Some(receipt))
        .await;
    // Accepted; decided at once when the ledger is consuming already, else soon after (202).
    assert!(
        (200..=202).contains(&status),
        "{status} {resp}\n{}",
        ledger.output()
    );
    if status != 202 {
        assert_eq!(resp["outcome"], "moved", "the ledger applied it: {resp}");
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while client.stock("tee-start").await != (3, 0, 0) {
        assert!(
            Instant::now() < deadline,
            "the ledger did not apply the receipt:\n{}",
            ledger.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        ledger.is_running(),
        "the ledger exited:\n{}",
        ledger.output()
    );
    assert!(
        ingress.is_running(),
        "the ingress exited:\n{}",
        ingress.output()
    );
    assert!(
        exceptions.is_running(),
        "the exception consumer exited:\n{}",
        exceptions.output()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_started_before_nats_become_ready_sqlite() {
    roles_started_before_nats_become_ready(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_started_before_nats_become_ready_postgres() {
    roles_started_before_nats_become_ready(Backend::Postgres).await;
}
