//! PortOne end to end, through HTTP → JetStream → ledger, on SQLite and PostgreSQL: an
//! unknown order is declined with nothing reserved; the same signed webhook delivered three
//! times, and concurrently to two ingress replicas, is one movement; a confirmation whose
//! decision is late answers non-200 within the deadline, and the reservation that lands
//! once the ledger is back is released by an event.

use std::time::{Duration, Instant};

use e2e::http::{Client, confirmation, portone_webhook};
use e2e::{Harness, ingress_config, test_settings};
use testkit::Backend;

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() { super::$name(testkit::Backend::Sqlite).await }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() { super::$name(testkit::Backend::Postgres).await }
        }
    )*};
}

on_both_backends!(
    unknown_order_is_declined_and_nothing_reserved,
    one_webhook_three_times_and_on_two_replicas_is_one_movement,
    late_decision_answers_in_time_and_the_late_reservation_is_released,
);

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn unknown_order_is_declined_and_nothing_reserved(backend: Backend) {
    let h = Harness::new(backend).await.unwrap();
    let ledger = h.start_ledger(test_settings()).await.unwrap();
    let ingress = h
        .start_ingress(&ingress_config(&[]).unwrap())
        .await
        .unwrap();
    let c = Client::new(&ingress.url);
    c.receive("mug", 5, "po-1").await;
    let (status, body) = c
        .post(
            "/portone/inventory-confirmation",
            confirmation("no-such-order", "pp-1", "10"),
        )
        .await;
    assert_ne!(status, 200);
    assert!(body.contains("unknown_order"), "{body}");
    assert_eq!(c.stock("mug").await, (5, 0, 0));
    ingress.stop().await;
    ledger.stop().await;
}

async fn one_webhook_three_times_and_on_two_replicas_is_one_movement(backend: Backend) {
    let h = Harness::new(backend).await.unwrap();
    let ledger = h.start_ledger(test_settings()).await.unwrap();
    let cfg = ingress_config(&[]).unwrap();
    let (a, b) = (
        h.start_ingress(&cfg).await.unwrap(),
        h.start_ingress(&cfg).await.unwrap(),
    );
    let (ca, cb) = (Client::new(&a.url), Client::new(&b.url));
    ca.receive("mug", 5, "po-1").await;
    ca.register("o-1", "mug", 2, "30.00").await;
    let (status, _) = ca
        .post(
            "/portone/inventory-confirmation",
            confirmation("o-1", "pp-1", "30"),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(ca.stock("mug").await, (3, 2, 0));
    let webhook = portone_webhook("pp-1", "o-1", "Success", "30");
    for _ in 0..3 {
        assert_eq!(ca.post("/webhooks/portone", webhook.clone()).await.0, 200);
    }
    let (ra, rb) = tokio::join!(
        ca.post("/webhooks/portone", webhook.clone()),
        cb.post("/webhooks/portone", webhook.clone())
    );
    assert_eq!((ra.0, rb.0), (200, 200));
    eventually("the capture", || async {
        ca.stock("mug").await == (3, 0, 2)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        cb.stock("mug").await,
        (3, 0, 2),
        "one movement, whichever replica and however often"
    );
    let captured = h
        .store
        .count_processed("payment.captured", None)
        .await
        .unwrap();
    assert_eq!(captured, 1, "five deliveries are one event");
    a.stop().await;
    b.stop().await;
    ledger.stop().await;
}

async fn late_decision_answers_in_time_and_the_late_reservation_is_released(backend: Backend) {
    let h = Harness::new(backend).await.unwrap();
    let ledger = h.start_ledger(test_settings()).await.unwrap();
    let ingress = h
        .start_ingress(&ingress_config(&[("STOCKLEDGER_CONFIRMATION_DEADLINE", "1s")]).unwrap())
        .await
        .unwrap();
    let c = Client::new(&ingress.url);
    c.receive("mug", 5, "po-1").await;
    c.register("o-late", "mug", 2, "30.00").await;
    ledger.stop().await;
    // The ledger is down: the answer is a timely no.
    let start = Instant::now();
    let (status, body) = c
        .post(
            "/portone/inventory-confirmation",
            confirmation("o-late", "pp-late", "30"),
        )
        .await;
    assert!(
        start.elapsed() < Duration::from_millis(1500),
        "answered within the deadline ({:?})",
        start.elapsed()
    );
    assert_ne!(status, 200);
    assert!(body.contains("decision_timeout"), "{body}");
    // The ledger comes back: the authorization lands and reserves, then its compensation
    // releases it. Nothing is left reserved, and the order is released.
    let ledger = h.start_ledger(test_settings()).await.unwrap();
    eventually("the late reservation to be released", || async {
        h.store
            .count_processed("reservation.expired", Some("moved"))
            .await
            .unwrap()
            == 1
    })
    .await;
    assert_eq!(c.stock("mug").await, (5, 0, 0));
    // The same question asked again gets the same answer, and reserves nothing.
    let (status, _) = c
        .post(
            "/portone/inventory-confirmation",
            confirmation("o-late", "pp-late", "30"),
        )
        .await;
    assert_ne!(status, 200);
    assert_eq!(c.stock("mug").await, (5, 0, 0));
    ingress.stop().await;
    ledger.stop().await;
}
