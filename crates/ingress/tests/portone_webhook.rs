//! The PortOne payment webhook through HTTP: what is published (once, whatever the
//! retries and replicas), and what is refused with nothing published.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;

const ORDER: &str = "2mbbExY77pp8iC0AQ1ucWymnd3c";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_success_webhook_is_published_once_as_payment_captured() {
    let world = World::shared().await;
    let ingress = world.ingress(settings()).await;
    let body = portone_webhook(ORDER, "order-1", "Success", "2000", "100.5", PORTONE_SECRET);
    for _ in 0..3 {
        let (status, reply) = ingress
            .post_raw("/webhooks/portone", body.clone(), &[])
            .await;
        assert_eq!(status, 200, "{reply}");
    }
    let events = world.events().await;
    assert_eq!(events.len(), 1, "{events:?}");
    let (subject, msg_id, envelope) = &events[0];
    let id = event_id(&format!("portone:{ORDER}:Success"));
    assert_eq!(msg_id, &id);
    assert_eq!(envelope["event_id"], id.as_str());
    assert_eq!(envelope["kind"], "payment.captured");
    assert_eq!(
        subject,
        &format!(
            "{}.events.portone.payment.captured",
            world.namespace.as_str()
        )
    );
    assert_eq!(envelope["payload"]["order"]["order_ref"], "order-1");
    assert_eq!(envelope["payload"]["amount"]["amount"], "100.5");
    assert_eq!(envelope["payload"]["amount"]["currency"], "USD");
    assert!(
        envelope["raw_digest"]
            .as_str()
            .unwrap()
            .starts_with("sha256:")
    );
    // What was published is a valid contract event.
    contract::decode(&serde_json::to_vec(envelope).unwrap()).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_webhook_to_two_replicas_concurrently_is_one_message() {
    let world = World::shared().await;
    let a = world.ingress(settings()).await;
    let b = world.ingress(settings()).await;
    let body = portone_webhook(ORDER, "order-2", "Success", "2000", "500", PORTONE_SECRET);
    let mut calls = Vec::new();
    for i in 0..8 {
        let target = if i % 2 == 0 { &a } else { &b };
        calls.push(target.post_raw("/webhooks/portone", body.clone(), &[]));
    }
    for (status, reply) in futures::future::join_all(calls).await {
        assert_eq!(status, 200, "{reply}");
    }
    assert_eq!(world.events().await.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statuses_map_to_voided_and_noted_and_a_different_amount_is_still_published() {
    let world = World::shared().await;
    let ingress = world.ingress(settings()).await;
    let failed = portone_webhook(
        "po-failed",
        "order-3",
        "Failed",
        "4072",
        "10",
        PORTONE_SECRET,
    );
    let pending = portone_webhook(
        "po-pending",
        "order-3",
        "Pending",
        "1000",
        "10",
        PORTONE_SECRET,
    );
    // The ledger compares amounts with the registered order (amount_mismatch exception);
    // the ingress publishes what PortOne signed.
    let odd = portone_webhook(
        "po-odd",
        "order-3",
        "Success",
        "2000",
        "0.01",
        PORTONE_SECRET,
    );
    for body in [failed, pending, odd] {
        assert_eq!(
            ingress.post_raw("/webhooks/portone", body, &[]).await.0,
            200
        );
    }
    let kinds: Vec<(String, Option<String>)> = world
        .events()
        .await
        .iter()
        .map(|(_, _, e)| {
            (
                e["kind"].as_str().unwrap().to_owned(),
                e["payload"]["status"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("payment.voided".to_owned(), None),
            ("payment.noted".to_owned(), Some("Pending".to_owned())),
            ("payment.captured".to_owned(), None)
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_webhooks_publish_nothing() {
    let world = World::shared().await;
    let mut small = settings();
    small.max_body_bytes = 2048;
    let ingress = world.ingress(small).await;

    let forged = portone_webhook(ORDER, "order-4", "Success", "2000", "100", "not-the-secret");
    let (status, body) = ingress.post_raw("/webhooks/portone", forged, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );

    let (status, body) = ingress
        .post_raw("/webhooks/portone", b"{not json".to_vec(), &[])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("malformed")),
        "{body}"
    );
    assert!(body["message"].as_str().unwrap().contains("body"), "{body}");

    let signed = String::from_utf8(portone_webhook(
        ORDER,
        "order-4",
        "Success",
        "2000",
        "100",
        PORTONE_SECRET,
    ))
    .unwrap();
    let missing = signed.replace(r#""merchant_order_ref":"order-4","#, "");
    let (status, body) = ingress
        .post_raw("/webhooks/portone", missing.into_bytes(), &[])
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("merchant_order_ref"),
        "{body}"
    );

    let string_amount = signed.replace(r#""amount":100"#, r#""amount":"100""#);
    let (status, body) = ingress
        .post_raw("/webhooks/portone", string_amount.into_bytes(), &[])
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("amount"),
        "{body}"
    );

    let oversized = signed.replace(
        r#""environment":"sandbox""#,
        &format!(r#""environment":"{}""#, "x".repeat(4096)),
    );
    let (status, body) = ingress
        .post_raw("/webhooks/portone", oversized.into_bytes(), &[])
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (413, Some("body_too_large")),
        "{body}"
    );

    assert!(world.events().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_portone_secret_both_portone_endpoints_answer_401() {
    let world = World::shared().await;
    let mut unset = settings();
    unset.portone_secret_key = None;
    let ingress = world.ingress(unset).await;
    let body = portone_webhook(ORDER, "order-5", "Success", "2000", "100", PORTONE_SECRET);
    assert_eq!(
        ingress.post_raw("/webhooks/portone", body, &[]).await.0,
        401
    );
    let body = confirmation_body("k", "order-5", "po-5", "100");
    let (status, reply) = ingress
        .post_raw("/portone/inventory-confirmation", body, &[])
        .await;
    assert_eq!(
        (status, reply["reason"].as_str()),
        (401, Some("not_configured"))
    );
    assert!(world.events().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_with_another_status_code_is_the_same_event() {
    // `status_code` is outside the signature: anyone holding one signed webhook can change
    // it. It is not part of the identity, so the replay is the same delivery.
    let world = World::shared().await;
    let ingress = world.ingress(settings()).await;
    for code in ["4072", "4000", "9999", ""] {
        let body = portone_webhook(
            "po-replayed",
            "order-9",
            "Failed",
            code,
            "10",
            PORTONE_SECRET,
        );
        let (status, reply) = ingress.post_raw("/webhooks/portone", body, &[]).await;
        assert_eq!(status, 200, "{reply}");
    }
    let events = world.events().await;
    assert_eq!(
        events.len(),
        1,
        "one event whatever the status_code: {events:?}"
    );
    assert_eq!(events[0].1, event_id("portone:po-replayed:Failed"));
}
