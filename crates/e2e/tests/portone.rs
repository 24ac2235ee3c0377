//! PortOne end to end, through HTTP → JetStream → ledger, on SQLite and PostgreSQL: an
//! unknown order is declined with nothing reserved; the same signed webhook delivered three
//! times, and concurrently to two ingress replicas, is one movement; a confirmation whose
//! decision is late answers non-200 within the deadline, and the reservation that lands
//! once the ledger is back is released by an event; confirmations answered non-200 while
//! the ledger is stopped and NATS is down around their deadline reserve nothing in the end,
//! and a rebuild from the stream agrees (decision 29); a signed webhook replayed with
//! another `status_code` is the same event, whether JetStream or the ledger meets it again.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use contract::{Envelope, Source};
use domain::{EventKind, OrderLookup, OrderRef, Payment};
use e2e::http::{Client, confirmation, portone_webhook};
use e2e::wait::eventually;
use e2e::{Harness, ingress_config, test_settings};
use store::{Store, StoreOptions};
use testkit::{Backend, NatsServer, TestDatabase};

use testkit::on_both_backends;

on_both_backends!(
    unknown_order_is_declined_and_nothing_reserved,
    one_webhook_three_times_and_on_two_replicas_is_one_movement,
    late_decision_answers_in_time_and_the_late_reservation_is_released,
    answered_no_during_a_ledger_stop_and_a_nats_gap_reserves_nothing_and_a_rebuild_agrees,
    a_webhook_replayed_with_another_status_code_is_one_event_and_one_exception,
);

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
    h.settled().await.unwrap();
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
            .count_processed("reservation.expired", Some(domain::OutcomeKind::Moved))
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

/// How many `payment.authorized` events the events stream holds.
async fn authorizations_in_stream(h: &Harness) -> usize {
    let ns = h.bus.namespace();
    let mut reader = h
        .bus
        .read(
            &ns.events_stream(),
            &ns.events_wildcard(),
            bus::read::ReadFrom::Start,
        )
        .await
        .unwrap();
    let mut n = 0;
    while let Some(msg) = reader.next().await {
        let msg = msg.unwrap();
        for part in bus::split(msg.headers.as_ref(), &msg.payload) {
            if contract::decode(&part).is_ok_and(|e| e.kind_name() == "payment.authorized") {
                n += 1;
            }
        }
    }
    n
}

/// Asks PortOne's confirmation for every `(order, portone ref)` at once.
async fn confirm_all(c: &Client, refs: &[(String, String)]) -> Vec<(u16, String)> {
    futures::future::join_all(refs.iter().map(|(order, pp)| {
        c.post(
            "/portone/inventory-confirmation",
            confirmation(order, pp, "30"),
        )
    }))
    .await
}

async fn answered_no_during_a_ledger_stop_and_a_nats_gap_reserves_nothing_and_a_rebuild_agrees(
    backend: Backend,
) {
    // A NATS server of this test's own: it is stopped and restarted (same store).
    let mut nats = NatsServer::start().await.unwrap();
    let h = Harness::on(backend, &nats.url()).await.unwrap();
    let ledger = h.start_ledger(test_settings()).await.unwrap();
    // 2 s: room to see the authorizations stored before NATS dies, ahead of the deadline.
    let cfg = ingress_config(&[("STOCKLEDGER_CONFIRMATION_DEADLINE", "2s")]).unwrap();
    let ingress = h.start_ingress(&cfg).await.unwrap();
    let c = Client::new(&ingress.url);
    c.receive("mug", 24, "po-1").await;
    let refs: Vec<(String, String)> = (0..6)
        .map(|i| (format!("o-gap-{i}"), format!("pp-gap-{i}")))
        .collect();
    for (order, _) in &refs {
        c.register(order, "mug", 2, "30.00").await;
    }
    // The ledger stops deciding.
    ledger.stop().await;

    // 1. NATS up: each answer is a timely no, and its withdrawal is in the stream.
    let first = confirm_all(&c, &refs[..3]).await;
    // 2. NATS dies after the authorizations are in (acknowledged, so on disk), before
    //    their deadline: the ingress cannot publish the withdrawals.
    let asking = {
        let c = c.clone();
        let refs = refs[3..].to_vec();
        tokio::spawn(async move { confirm_all(&c, &refs).await })
    };
    let asked = Instant::now();
    while authorizations_in_stream(&h).await < 6 {
        assert!(
            asked.elapsed() < Duration::from_millis(1200),
            "the authorizations were not stored ahead of their deadline"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    nats.kill();
    let second = tokio::time::timeout(Duration::from_secs(5), asking)
        .await
        .expect("answered within the deadline")
        .unwrap();
    for (status, body) in first.iter().chain(&second) {
        assert_ne!(*status, 200, "{body}");
    }
    // The ingress goes away too: nothing of the release may depend on it.
    ingress.stop().await;
    // NATS stays down past every `answer_by` (plus the ledger's skew bound).
    tokio::time::sleep(Duration::from_millis(2000)).await;
    nats.restart().await.unwrap();

    // 3. The ledger comes back, late for every one of them.
    let ledger = h.start_ledger(test_settings()).await.unwrap();
    eventually("all six authorizations and their releases", || async {
        h.store
            .count_processed("reservation.expired", Some(domain::OutcomeKind::Moved))
            .await
            .unwrap()
            == 6
    })
    .await;
    assert_eq!(
        h.store
            .count_processed("payment.authorized", Some(domain::OutcomeKind::Moved))
            .await
            .unwrap(),
        6
    );
    assert_eq!(h.store.count_orders("reserved").await.unwrap(), 0);
    assert_eq!(h.store.count_orders("released").await.unwrap(), 6);
    let ingress = h.start_ingress(&cfg).await.unwrap();
    let c = Client::new(&ingress.url);
    assert_eq!(c.stock("mug").await, (24, 0, 0), "no unit is held for a no");
    ingress.stop().await;
    ledger.stop().await;

    // 4. A rebuild from the stream gives the same ledger.
    let fresh_db = TestDatabase::new(backend).await.unwrap();
    let fresh = Store::connect(fresh_db.url(), &StoreOptions::default())
        .await
        .unwrap();
    ledger::replay::rebuild(
        &h.bus,
        &fresh,
        false,
        Duration::ZERO,
        domain::ReservationTtls::documented_ref(),
        |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(
        fresh.canonical_export().await.unwrap(),
        h.store.canonical_export().await.unwrap(),
        "the rebuild decides as the live ledger did"
    );
    nats.stop().await.unwrap();
}

async fn a_webhook_replayed_with_another_status_code_is_one_event_and_one_exception(
    backend: Backend,
) {
    let h = Harness::new(backend).await.unwrap();
    let ledger = h.start_ledger(test_settings()).await.unwrap();
    let ingress = h
        .start_ingress(&ingress_config(&[]).unwrap())
        .await
        .unwrap();
    let c = Client::new(&ingress.url);
    c.receive("mug", 5, "po-1").await;
    c.register("o-v", "mug", 2, "30.00").await;
    let (status, _) = c
        .post(
            "/portone/inventory-confirmation",
            confirmation("o-v", "pp-v", "30"),
        )
        .await;
    assert_eq!(status, 200);
    let captured = portone_webhook("pp-v", "o-v", "Success", "30");
    assert_eq!(c.post("/webhooks/portone", captured).await.0, 200);
    eventually("the capture", || async {
        c.stock("mug").await == (3, 0, 2)
    })
    .await;
    // A genuine void after the capture: one exception for a person.
    let voided = portone_webhook("pp-v", "o-v", "Failed", "30");
    assert_eq!(c.post("/webhooks/portone", voided.clone()).await.0, 200);
    eventually("the void_after_capture exception", || async {
        h.store
            .count_processed("payment.voided", Some(domain::OutcomeKind::Exception))
            .await
            .unwrap()
            == 1
    })
    .await;
    // Replayed with other unsigned fields: still signed, the same event (JetStream's
    // duplicate window).
    let text = String::from_utf8(voided).unwrap();
    assert!(text.contains(r#""status_code":"4000""#));
    for code in ["4072", "5000"] {
        let replay = text.replace(
            r#""status_code":"4000""#,
            &format!(r#""status_code":"{code}""#),
        );
        assert_eq!(
            c.post("/webhooks/portone", replay.into_bytes()).await.0,
            200
        );
    }
    // And past that window (a new message with the same event): the ledger's duplicate,
    // not a conflicting content, since status_code is not content.
    let payment = Payment {
        order: OrderLookup::OrderRef(OrderRef::parse("o-v").unwrap()),
        amount: Some(domain::Money::parse("30", "USD").unwrap()),
    };
    let late_replay = Envelope::new(
        &EventKind::PaymentVoided { payment },
        Source {
            provider: "portone".into(),
            identity: "portone:pp-v:Failed".into(),
        },
        e2e::now(),
        e2e::now(),
        Some(b"another body, another status_code"),
    );
    let subject = h.bus.namespace().event_subject("portone", "payment.voided");
    h.bus
        .publish_event(
            subject,
            "after-the-duplicate-window",
            late_replay.to_json().expect("encodes").into(),
            None,
        )
        .await
        .unwrap();
    // Something after it, to know the ledger went past it.
    c.receive("mug", 1, "po-2").await;
    eventually("the receipt after the replays", || async {
        c.stock("mug").await == (4, 0, 2)
    })
    .await;
    assert_eq!(
        h.store
            .count_processed("payment.voided", None)
            .await
            .unwrap(),
        1,
        "one event, one outcome: no second exception, no conflicting duplicate"
    );
    let noops = h
        .store
        .count_processed("payment.voided", Some(domain::OutcomeKind::NoOp))
        .await
        .unwrap();
    assert_eq!(noops, 0);
    ingress.stop().await;
    ledger.stop().await;
}
