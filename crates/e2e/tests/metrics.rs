//! Issue 12: every role's metrics, through real NATS and a real database, on SQLite and
//! PostgreSQL. A ledger with its ops server (`service::ops` on
//! `LedgerSettings::metrics_addr`), an ingress and an exception consumer run as tasks:
//! - while the ledger is stopped, events accepted by the ingress are its backlog
//!   (`bus::progress::Backlog`: pending messages, the oldest one's JetStream time);
//! - once it runs again, its `/metrics` shows them applied (`stockledger_ledger_outcomes_total`
//!   by `domain::OutcomeKind`, the stock-visibility histogram, batch sizes) and the
//!   backlog back to 0; `/healthz` and `/readyz` answer;
//! - the ingress's `/metrics` has the publish-latency histogram;
//! - the exception consumer's `/metrics` still serves the queue's gauges (a zero series for
//!   every exception code) in the OpenMetrics format.
#![allow(clippy::unwrap_used)]

use domain::{ExceptionCode, OutcomeKind};
use e2e::http::{Client, reqwest_client};
use e2e::procs::free_port;
use e2e::wait::eventually;
use e2e::{Harness, exceptions_settings, ingress_config, test_settings};
use testkit::{Backend, on_both_backends};

on_both_backends!(every_role_serves_its_metrics);

/// Events the test pushes through the ingress.
const EVENTS: usize = 4;

/// The value of the sample `series` (its name with labels, exactly as encoded) in `text`.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split(' ').next()?.parse().ok())
}

/// `GET base + path`: status, `Content-Type` and body.
async fn get(base: &str, path: &str) -> (u16, String, String) {
    let r = reqwest_client()
        .get(format!("{base}{path}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {base}{path}: {e}"));
    let status = r.status().as_u16();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    (status, content_type, r.text().await.unwrap_or_default())
}

async fn every_role_serves_its_metrics(backend: Backend) {
    let h = Harness::new(backend).await.unwrap();
    let ledger_base = format!("http://127.0.0.1:{}", free_port());
    let settings = ledger::LedgerSettings {
        metrics_addr: Some(ledger_base.trim_start_matches("http://").to_owned()),
        ..test_settings()
    };
    let exceptions_addr = format!("127.0.0.1:{}", free_port());
    let exceptions = h
        .start_exceptions(exceptions::ExceptionSettings {
            metrics_addr: Some(exceptions_addr.clone()),
            ..exceptions_settings()
        })
        .await
        .unwrap();

    // The ledger creates its durable consumer and serves its ops endpoints; then it stops.
    let ledger = h.start_ledger(settings.clone()).await.unwrap();
    // Its ops server may not be listening yet: a refused connection is "not yet".
    eventually("the ledger is ready", || async {
        reqwest_client()
            .get(format!("{ledger_base}/readyz"))
            .send()
            .await
            .is_ok_and(|r| r.status().as_u16() == 200)
    })
    .await;
    assert_eq!(get(&ledger_base, "/healthz").await.0, 200);
    // Its backlog is read from its durable consumer once that exists (left out before).
    eventually("the ledger's backlog gauge", || async {
        let text = get(&ledger_base, "/metrics").await.2;
        sample(&text, "stockledger_ledger_pending_messages") == Some(0.0)
    })
    .await;
    ledger.stop().await;

    // Accepted while no ledger runs: answered 202 at the deadline, left in the stream.
    let ingress = h
        .start_ingress(&ingress_config(&[("STOCKLEDGER_CONFIRMATION_DEADLINE", "200ms")]).unwrap())
        .await
        .unwrap();
    let client = Client::new(&ingress.url);
    for i in 0..EVENTS {
        let receipt = serde_json::json!({"sku": "mug-metrics", "location": "main", "quantity": 2, "reference": format!("po-metrics-{i}")});
        let (status, body) = client
            .api(reqwest::Method::POST, "/v1/stock/receipts", Some(receipt))
            .await;
        assert_eq!(status, 202, "{body}");
    }
    let backlog = h.bus.ledger_backlog().await.unwrap();
    assert!(
        backlog.pending >= 1 && backlog.pending <= EVENTS as u64,
        "{backlog:?}"
    );
    let oldest = backlog
        .oldest_unapplied_ms
        .expect("an oldest unapplied message");
    assert!(oldest <= e2e::now().0, "{backlog:?}");

    // The ledger again: it applies the backlog, and its metrics say so.
    let ledger = h.start_ledger(settings).await.unwrap();
    eventually("the ledger applied every event", || async {
        client.stock("mug-metrics").await == (2 * EVENTS as i64, 0, 0)
    })
    .await;
    h.settled().await.unwrap();
    let moved = format!(
        "stockledger_ledger_outcomes_total{{kind=\"{}\"}}",
        OutcomeKind::Moved.as_str()
    );
    eventually("the ledger's backlog gauge back to 0", || async {
        let text = get(&ledger_base, "/metrics").await.2;
        sample(&text, "stockledger_ledger_pending_messages") == Some(0.0)
    })
    .await;
    let (status, content_type, text) = get(&ledger_base, "/metrics").await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(content_type, service::ops::CONTENT_TYPE);
    assert_eq!(
        sample(&text, "stockledger_ledger_pending_messages"),
        Some(0.0),
        "{text}"
    );
    assert!(
        sample(&text, &moved).unwrap_or(0.0) >= EVENTS as f64,
        "{moved} below {EVENTS}:\n{text}"
    );
    assert_eq!(
        sample(&text, "stockledger_ledger_oldest_unapplied_age_seconds"),
        Some(0.0),
        "{text}"
    );
    let visible = sample(&text, "stockledger_stock_visible_seconds_count").unwrap_or(0.0);
    assert!(
        visible >= EVENTS as f64,
        "stock visible count {visible}:\n{text}"
    );
    // Measured from the ingress's acceptance, not from the delivery: each was accepted at
    // least the 200 ms deadline before the restarted ledger committed it.
    let within_100ms = sample(
        &text,
        "stockledger_stock_visible_seconds_bucket{le=\"0.1\"}",
    );
    assert_eq!(within_100ms, Some(0.0), "{text}");
    assert!(
        sample(&text, "stockledger_ledger_batch_events_count").unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    assert!(
        sample(&text, "stockledger_ledger_apply_seconds_count").unwrap_or(0.0) >= 1.0,
        "{text}"
    );
    for counter in [
        "stockledger_ledger_conflicts_total",
        "stockledger_ledger_retries_total",
    ] {
        assert!(
            sample(&text, counter).is_some(),
            "{counter} missing:\n{text}"
        );
    }
    assert!(text.ends_with("# EOF\n"), "{text}");
    let (status, _, body) = get(&ledger_base, "/readyz").await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));

    // The ingress timed each acknowledged publish.
    let (status, _, ingress_text) = get(&ingress.url, "/metrics").await;
    assert_eq!(status, 200);
    assert!(
        sample(&ingress_text, "stockledger_publish_seconds_count").unwrap_or(0.0) >= EVENTS as f64,
        "{ingress_text}"
    );

    // The exception consumer's gauges, unchanged in name and labels.
    let exceptions_base = format!("http://{exceptions_addr}");
    let (status, content_type, text) = get(&exceptions_base, "/metrics").await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(content_type, service::ops::CONTENT_TYPE);
    for code in ExceptionCode::ALL {
        let series =
            format!("stockledger_exceptions_unresolved{{reason=\"{code}\",state=\"open\"}}");
        assert_eq!(sample(&text, &series), Some(0.0), "{series}:\n{text}");
    }
    for gauge in [
        "stockledger_exceptions_oldest_unresolved_age_seconds",
        "stockledger_exceptions_resolved",
        "stockledger_dlq_depth",
        "stockledger_dlq_advisories_pending",
    ] {
        assert_eq!(sample(&text, gauge), Some(0.0), "{gauge}:\n{text}");
    }
    assert!(text.ends_with("# EOF\n"), "{text}");
    let (status, _, body) = get(&exceptions_base, "/readyz").await;
    assert_eq!((status, body.as_str()), (200, "ready\n"));

    ingress.stop().await;
    ledger.stop().await;
    exceptions.stop().await;
}
