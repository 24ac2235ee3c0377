//! NATS down: every write answers 503 and nothing is accepted, `/readyz` says so; after
//! NATS comes back, the next request succeeds. Uses a dedicated nats-server.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_nats_is_down_nothing_is_accepted_and_afterwards_it_is() {
    let mut nats = testkit::NatsServer::start().await.unwrap();
    let world = World::new(nats.url()).await;
    let ingress = world.ingress(settings()).await;
    world.register_order("order-1", &[("sku-a", 1)], "10").await;

    let before = portone_webhook(
        "po-before",
        "order-1",
        "Success",
        "2000",
        "10",
        PORTONE_SECRET,
    );
    assert_eq!(
        ingress.post_raw("/webhooks/portone", before, &[]).await.0,
        200
    );

    nats.stop().await.unwrap();
    wait_for_readyz(&ingress, 503).await;

    let during = portone_webhook(
        "po-during",
        "order-1",
        "Success",
        "2000",
        "10",
        PORTONE_SECRET,
    );
    let (status, body) = ingress.post_raw("/webhooks/portone", during, &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("unavailable")),
        "{body}"
    );
    let receipt =
        json!({"sku": "sku-a", "location": "main", "quantity": 1, "reference": "dn-during"});
    let (status, body) = ingress
        .api(Method::POST, "/v1/stock/receipts", Some(receipt))
        .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("unavailable")),
        "{body}"
    );
    let confirm = confirmation_body("k", "order-1", "po-during", "10");
    let (status, body) = ingress
        .post_raw("/portone/inventory-confirmation", confirm, &[])
        .await;
    assert_eq!(
        (status, body["reason"].as_str()),
        (503, Some("unavailable")),
        "{body}"
    );

    nats.restart().await.unwrap();
    wait_for_readyz(&ingress, 200).await;
    wait_until_connected(&world).await;

    let after = portone_webhook(
        "po-after",
        "order-1",
        "Success",
        "2000",
        "10",
        PORTONE_SECRET,
    );
    let (status, body) = ingress.post_raw("/webhooks/portone", after, &[]).await;
    assert_eq!(status, 200, "{body}");

    // No need to wait for stragglers: the client sends in order on its one connection and
    // flushes anything buffered during the outage first after a reconnect, so a message
    // buffered then would be in the stream before `po-after`, which JetStream has acknowledged.
    let ids: Vec<String> = world
        .events()
        .await
        .into_iter()
        .map(|(_, id, _)| id)
        .collect();
    assert_eq!(
        ids,
        vec![
            event_id("portone:po-before:Success"),
            event_id("portone:po-after:Success")
        ],
        "only what was acknowledged is in the stream"
    );
}

async fn wait_for_readyz(ingress: &Ingress, want: u16) {
    for _ in 0..200 {
        if ingress.get("/readyz").await.0 == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("/readyz never answered {want}");
}

async fn wait_until_connected(world: &World) {
    for _ in 0..200 {
        if world.bus.is_connected() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the test's own NATS connection did not come back");
}
