//! PortOne's inventory confirmation through HTTP: the source checks (address, proxies,
//! key), the order checks that publish nothing, the answer from the ledger's decision,
//! and the deadline with its compensating `reservation.expired`.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use ingress::IpNet;

const PATH: &str = "/portone/inventory-confirmation";

fn nets(list: &[&str]) -> Vec<IpNet> {
    list.iter().map(|s| IpNet::parse(s).unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_allow_list_believes_forwarded_for_only_from_trusted_proxies() {
    let world = World::shared().await;
    let allowed_only_portone = |trusted: &[&str]| {
        let mut s = settings();
        s.portone_allowed_ips = Some(nets(&["10.9.9.0/24"]));
        s.trusted_proxies = nets(trusted);
        s
    };
    let body = || confirmation_body("k", "no-such-order", "po-1", "10");

    // Direct from 127.0.0.1, which is not allowed; the header is not believed.
    let direct = world.ingress(allowed_only_portone(&[])).await;
    let (status, reply) = direct.post_raw(PATH, body(), &[]).await;
    assert_eq!(
        (status, reply["reason"].as_str()),
        (403, Some("source_not_allowed")),
        "{reply}"
    );
    let (status, _) = direct
        .post_raw(PATH, body(), &[("x-forwarded-for", "10.9.9.9")])
        .await;
    assert_eq!(status, 403, "an untrusted peer cannot choose its address");
    let (status, _) = direct
        .post_raw(
            "/webhooks/portone",
            body(),
            &[("x-forwarded-for", "10.9.9.9")],
        )
        .await;
    assert_eq!(status, 403, "the allow-list covers the webhook too");

    // Behind a trusted proxy (127.0.0.1), the right-most untrusted entry is the client.
    let proxied = world.ingress(allowed_only_portone(&["127.0.0.1/32"])).await;
    let (status, reply) = proxied
        .post_raw(PATH, body(), &[("x-forwarded-for", "10.9.9.9")])
        .await;
    assert_eq!(
        (status, reply["reason"].as_str()),
        (404, Some("unknown_order")),
        "passed the address check: {reply}"
    );
    let (status, _) = proxied
        .post_raw(PATH, body(), &[("x-forwarded-for", "10.9.9.9, 6.6.6.6")])
        .await;
    assert_eq!(status, 403, "a spoofed left-most entry is not believed");
    let (status, _) = proxied.post_raw(PATH, body(), &[]).await;
    assert_eq!(status, 403, "the proxy itself is not PortOne");

    assert!(world.events().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_order_and_amount_checks_publish_nothing() {
    let world = World::shared().await;
    let mut s = settings();
    s.portone_key = Some(config::Secret::new("merchant_key_123"));
    let ingress = world.ingress(s).await;
    world
        .register_order("order-1", &[("sku-a", 1)], "100.50")
        .await;

    let (status, reply) = ingress
        .post_raw(
            PATH,
            confirmation_body("someone-else", "order-1", "po-1", "100.50"),
            &[],
        )
        .await;
    assert_eq!(
        (status, reply["reason"].as_str()),
        (401, Some("bad_portone_key")),
        "{reply}"
    );

    let (status, reply) = ingress
        .post_raw(
            PATH,
            confirmation_body("merchant_key_123", "order-404", "po-2", "100.50"),
            &[],
        )
        .await;
    assert_eq!(
        (status, reply["reason"].as_str()),
        (404, Some("unknown_order")),
        "{reply}"
    );

    let (status, reply) = ingress
        .post_raw(
            PATH,
            confirmation_body("merchant_key_123", "order-1", "po-3", "99.99"),
            &[],
        )
        .await;
    assert_eq!(
        (status, reply["reason"].as_str()),
        (409, Some("amount_mismatch")),
        "{reply}"
    );

    let (status, reply) = ingress
        .post_raw(PATH, br#"{"portone_key":"merchant_key_123"}"#.to_vec(), &[])
        .await;
    assert_eq!(
        (status, reply["reason"].as_str()),
        (400, Some("malformed")),
        "{reply}"
    );
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains("merchant_order_ref"),
        "{reply}"
    );

    assert!(world.events().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_past_the_deadline_is_declined_and_compensated() {
    let world = World::shared().await;
    let mut s = settings();
    s.confirmation_deadline = Duration::from_millis(1200);
    let ingress = world.ingress(s).await;
    world
        .register_order("order-1", &[("sku-a", 1)], "100.50")
        .await;

    let started = Instant::now();
    let (status, reply) = ingress
        .post_raw(
            PATH,
            confirmation_body("k", "order-1", "po-late", "100.5"),
            &[],
        )
        .await;
    let took = started.elapsed();
    assert_eq!(
        (status, reply["reason"].as_str()),
        (504, Some("decision_timeout")),
        "{reply}"
    );
    assert!(
        took < Duration::from_millis(1200),
        "answered after the deadline: {took:?}"
    );

    let mut events = world.events().await;
    for _ in 0..50 {
        if events.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        events = world.events().await;
    }
    let summary: Vec<(&str, &str)> = events
        .iter()
        .map(|(_, id, e)| (e["kind"].as_str().unwrap(), id.as_str()))
        .collect();
    assert_eq!(
        summary,
        vec![
            (
                "payment.authorized",
                event_id("portone:confirm:po-late").as_str()
            ),
            (
                "reservation.expired",
                event_id("portone:confirm-timeout:po-late").as_str()
            ),
        ]
    );
    assert_eq!(events[0].2["payload"]["mode"], "confirmation");
    assert_eq!(events[1].2["payload"]["order_ref"], "order-1");
    // It names the reservation this confirmation would make, and no other.
    assert_eq!(
        events[1].2["payload"]["reservation"],
        event_id("portone:confirm:po-late").as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_answer_follows_the_ledgers_decision_and_repeats() {
    let world = World::shared().await;
    let ingress = world.ingress(settings()).await;
    let _ledger = world.run_ledger().await;
    world.receive("sku-a", 1).await;
    world.register_order("order-1", &[("sku-a", 1)], "10").await;
    world.register_order("order-2", &[("sku-a", 1)], "10").await;

    let (status, reply) = ingress
        .post_raw(PATH, confirmation_body("k", "order-1", "po-1", "10"), &[])
        .await;
    assert_eq!(
        (status, &reply),
        (200, &serde_json::Value::Null),
        "reserved: 200 with an empty body"
    );

    // The same question again: the same answer, and nothing more reserved.
    let (status, _) = ingress
        .post_raw(PATH, confirmation_body("k", "order-1", "po-1", "10"), &[])
        .await;
    assert_eq!(status, 200);
    let balance = world.store.balance(&key("sku-a")).await.unwrap();
    assert_eq!((balance.available, balance.reserved), (0, 1));

    // No stock left for the second order.
    let (status, reply) = ingress
        .post_raw(PATH, confirmation_body("k", "order-2", "po-2", "10"), &[])
        .await;
    assert_eq!(
        (status, reply["reason"].as_str()),
        (409, Some("insufficient_inventory")),
        "{reply}"
    );
    let (status, reply) = ingress
        .post_raw(PATH, confirmation_body("k", "order-2", "po-2", "10"), &[])
        .await;
    assert_eq!(
        (status, reply["reason"].as_str()),
        (409, Some("insufficient_inventory")),
        "{reply}"
    );

    // A Failed webhook releases order-1; asking about po-1 again is no longer a yes.
    let failed = portone_webhook("po-1", "order-1", "Failed", "4072", "10", PORTONE_SECRET);
    assert_eq!(
        ingress.post_raw("/webhooks/portone", failed, &[]).await.0,
        200
    );
    let released = async {
        loop {
            if world.store.balance(&key("sku-a")).await.unwrap().available == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(5), released)
        .await
        .unwrap();
    let (status, reply) = ingress
        .post_raw(PATH, confirmation_body("k", "order-1", "po-1", "10"), &[])
        .await;
    assert_eq!(
        (status, reply["reason"].as_str()),
        (409, Some("reservation_released")),
        "{reply}"
    );
}
