//! Issue 13, item 5: exceptions that read well, tried as a new user would. The real
//! `ledger`, `exceptions` and `ingress` binaries run with `STOCKLEDGER_UNKNOWN_ORDER_HOLD=2s`
//! while a few hundred receipts and order registrations flow through the merchant API. A
//! signed, captured PortOne payment for an order nobody registered shows up in
//! `GET /v1/exceptions` within the hold plus one retry interval
//! (`ledger::consumer::DEFER_RETRY_INTERVAL_MAX`) plus a small margin, with its
//! `order_ref` filled and a sentence naming the order and what to do, never Rust debug text
//! (`OrderRef("…")`); and a captured payment for an order its stock cannot serve is an
//! `oversold` row with its order, SKU and location. On SQLite and PostgreSQL.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use e2e::http::{Client, portone_webhook};
use e2e::procs::{Role, free_port, wait_status};
use serde_json::Value;
use testkit::{Backend, NatsServer, TestDatabase, on_both_backends};

on_both_backends!(an_unknown_order_and_an_oversell_read_well_and_come_in_time);

/// The unknown-order hold the processes run with.
const HOLD: Duration = Duration::from_secs(2);
/// Slack for the test machine on top of the documented bound (hold + one retry interval):
/// the ingress's and the ledger's batches, the exception view's poll.
const MARGIN: Duration = Duration::from_secs(3);
/// Background merchant calls at least (receipts and order registrations); they go on until
/// both exceptions were seen.
const BACKGROUND_CALLS_MIN: usize = 300;
/// Background calls in flight at once.
const BACKGROUND_CONCURRENCY: usize = 8;

/// `GET /v1/exceptions`, every row.
async fn exception_rows(client: &Client) -> Vec<Value> {
    let (status, body) = client
        .api(reqwest::Method::GET, "/v1/exceptions?limit=1000", None)
        .await;
    assert_eq!(status, 200, "{body}");
    body["exceptions"].as_array().cloned().unwrap_or_default()
}

/// The row whose `order_ref` is `order`, if there is one yet.
fn row_of(rows: &[Value], order: &str) -> Option<Value> {
    rows.iter().find(|r| r["order_ref"] == order).cloned()
}

/// Receipts and registrations, `BACKGROUND_CONCURRENCY` at a time, until `stop` and at
/// least [`BACKGROUND_CALLS_MIN`]; returns how many were made and how many accepted
/// (decided, or accepted for later).
async fn background_traffic(client: Client, tag: String, stop: Arc<AtomicBool>) -> (usize, usize) {
    let mut accepted = 0;
    let mut wave = 0;
    while wave * BACKGROUND_CONCURRENCY < BACKGROUND_CALLS_MIN || !stop.load(Ordering::Relaxed) {
        let calls = (0..BACKGROUND_CONCURRENCY).map(|i| {
            let client = client.clone();
            let n = wave * BACKGROUND_CONCURRENCY + i;
            let tag = tag.clone();
            async move {
                let (method, path, body) = if n % 4 == 3 {
                    (
                        reqwest::Method::PUT,
                        format!("/v1/orders/bg-{tag}-{n}"),
                        serde_json::json!({"lines": [{"sku": format!("bg-{}", n % 7), "location": "main", "quantity": 1}], "amount": "5.00", "currency": "USD"}),
                    )
                } else {
                    (
                        reqwest::Method::POST,
                        "/v1/stock/receipts".to_owned(),
                        serde_json::json!({"sku": format!("bg-{}", n % 7), "location": "main", "quantity": 1, "reference": format!("po-{tag}-{n}")}),
                    )
                };
                let (status, _) = client.api(method, &path, Some(body)).await;
                (200..=202).contains(&status)
            }
        });
        accepted += futures::future::join_all(calls)
            .await
            .into_iter()
            .filter(|ok| *ok)
            .count();
        wave += 1;
    }
    (wave * BACKGROUND_CONCURRENCY, accepted)
}

async fn an_unknown_order_and_an_oversell_read_well_and_come_in_time(backend: Backend) {
    let nats = NatsServer::start().await.expect("nats-server");
    let db = TestDatabase::new(backend).await.expect("database");
    let addr = format!("127.0.0.1:{}", free_port());
    let env = vec![
        ("STOCKLEDGER_HTTP_ADDR", addr.clone()),
        ("STOCKLEDGER_NATS_URL", nats.url()),
        (
            "STOCKLEDGER_NATS_NAMESPACE",
            testkit::unique_name("exctext"),
        ),
        ("STOCKLEDGER_DATABASE_URL", db.url().to_owned()),
        ("STOCKLEDGER_API_TOKEN", e2e::TEST_API_TOKEN.to_owned()),
        (
            "STOCKLEDGER_PORTONE_SECRET_KEY",
            e2e::TEST_PORTONE_SECRET.to_owned(),
        ),
        ("STOCKLEDGER_UNKNOWN_ORDER_HOLD", "2s".to_owned()),
        // Tests run side by side: any free ops port.
        ("STOCKLEDGER_LEDGER_METRICS_ADDR", "127.0.0.1:0".to_owned()),
        (
            "STOCKLEDGER_EXCEPTIONS_METRICS_ADDR",
            "127.0.0.1:0".to_owned(),
        ),
        ("RUST_LOG", "info".to_owned()),
    ];
    let ledger = Role::spawn("ledger", None, &env);
    // Both would migrate a new SQLite file at once otherwise ("database is locked").
    e2e::procs::wait_output(&ledger, "ledger consumer started", Duration::from_secs(20)).await;
    let exceptions = Role::spawn("exceptions", None, &env);
    let ingress = Role::spawn("ingress", None, &env);
    let base = format!("http://{addr}");
    assert!(
        wait_status(&base, "/readyz", 200, Duration::from_secs(20)).await,
        "the ingress is not ready:\n{}",
        ingress.output()
    );
    let client = Client::new(&base);
    let tag = testkit::unique_name("t");

    // An order its stock cannot serve: 1 unit of the 3 it needs.
    let over_sku = format!("over-{tag}");
    let over_order = format!("OVER-{tag}");
    client
        .receive(&over_sku, 1, &format!("po-over-{tag}"))
        .await;
    client.register(&over_order, &over_sku, 3, "30.00").await;

    // Other traffic flows while the payments arrive and while the hold runs.
    let stop = Arc::new(AtomicBool::new(false));
    let traffic = tokio::spawn(background_traffic(
        client.clone(),
        tag.clone(),
        stop.clone(),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;

    let ghost = format!("GHOST-{tag}");
    let (status, body) = client
        .post(
            "/webhooks/portone",
            portone_webhook(&format!("pp-{ghost}"), &ghost, "Success", "20"),
        )
        .await;
    assert_eq!(status, 200, "the ghost payment: {body}");
    let accepted = Instant::now();
    let (status, body) = client
        .post(
            "/webhooks/portone",
            portone_webhook(&format!("pp-{over_order}"), &over_order, "Success", "30"),
        )
        .await;
    assert_eq!(status, 200, "the oversold payment: {body}");

    // The unknown order's exception: within the hold plus one retry interval.
    let bound = HOLD + ledger::consumer::DEFER_RETRY_INTERVAL_MAX + MARGIN;
    let ghost_row = loop {
        if let Some(row) = row_of(&exception_rows(&client).await, &ghost) {
            break row;
        }
        assert!(
            accepted.elapsed() < bound,
            "no exception for {ghost} within {bound:?} of its payment\nledger:\n{}",
            ledger.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let took = accepted.elapsed();
    // Not before the hold (measured from the answer, which comes a little after the event's
    // `recorded_at`, hence the half).
    assert!(took >= HOLD / 2, "raised before the hold ran out: {took:?}");
    eprintln!("{backend:?}: the unknown order's exception came {took:?} after its payment");
    assert_eq!(ghost_row["reason"], "unknown_order", "{ghost_row}");
    assert_eq!(ghost_row["state"], "open", "{ghost_row}");
    let detail = ghost_row["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!("order {ghost}"))
            && detail.contains(&format!("PUT /v1/orders/{ghost}")),
        "the sentence names the order and what to do: {detail}"
    );
    assert!(
        !domain::explain::shows_debug_text(detail) && !detail.contains("OrderRef"),
        "Rust debug text in an operator's view: {detail}"
    );

    // The oversell: its order, SKU and location, and the shortfall in words.
    let over_row = loop {
        if let Some(row) = row_of(&exception_rows(&client).await, &over_order) {
            break row;
        }
        assert!(
            accepted.elapsed() < bound,
            "no exception for {over_order}\nledger:\n{}",
            ledger.output()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(over_row["reason"], "oversold", "{over_row}");
    assert_eq!(over_row["sku"], over_sku.as_str(), "{over_row}");
    assert_eq!(over_row["location"], "main", "{over_row}");
    let detail = over_row["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(&format!("order {over_order}"))
            && detail.contains(&format!(
                "SKU {over_sku} at location main has 1 available of the 3"
            )),
        "{detail}"
    );
    assert!(!domain::explain::shows_debug_text(detail), "{detail}");

    stop.store(true, Ordering::Relaxed);
    let (made, accepted) = tokio::time::timeout(Duration::from_secs(30), traffic)
        .await
        .expect("the background traffic finished")
        .expect("the background task");
    eprintln!("{backend:?}: {made} background calls");
    assert_eq!(accepted, made, "every background call was accepted");
    drop((ingress, exceptions, ledger));
    let _ = db.drop_db().await;
}
