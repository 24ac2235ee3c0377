//! The merchant API through HTTP: authentication, input errors that name their field and
//! publish nothing, the answers from the ledger's decisions (with a stand-in ledger), the
//! 202 when no decision comes back, and the reads.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::*;
use reqwest::Method;
use serde_json::json;

fn order_body(amount: &str, quantity: u64) -> serde_json::Value {
    json!({"lines": [{"sku": "sku-a", "location": "main", "quantity": quantity}], "amount": amount, "currency": "USD"})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_needs_the_bearer_token() {
    let world = World::shared().await;
    let ingress = world.ingress(settings()).await;
    let (status, body) = ingress.get("/v1/stock/sku-a").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("unauthorized")),
        "{body}"
    );
    let wrong = ingress
        .http
        .put(ingress.url("/v1/orders/o1"))
        .bearer_auth("nope")
        .body(order_body("1", 1).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);
    assert!(world.events().await.is_empty());
    // Operations endpoints are open.
    assert_eq!(ingress.get("/healthz").await.0, 200);
    assert_eq!(ingress.get("/readyz").await.0, 200);
    // The framework's own errors have the JSON error shape too.
    let (status, body) = ingress.get("/nope").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("not_found")),
        "{body}"
    );
    let (status, body) = ingress.api(Method::DELETE, "/v1/orders/o1", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (405, Some("method_not_allowed")),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_name_the_field_and_publish_nothing() {
    let world = World::shared().await;
    let ingress = world.ingress(settings()).await;
    let cases = [
        (
            json!({"lines": [{"sku": "a", "location": "m", "quantity": 1}], "amount": 10.5, "currency": "USD"}),
            "amount",
        ),
        (
            json!({"lines": [{"sku": "a", "location": "m", "quantity": 0}], "amount": "10", "currency": "USD"}),
            "lines[0].quantity",
        ),
        (
            json!({"lines": [{"sku": "a", "location": "m", "quantity": 1}], "amount": "10", "currency": "US"}),
            "currency",
        ),
        (
            json!({"lines": [], "amount": "10", "currency": "USD"}),
            "lines",
        ),
        (
            json!({"lines": [{"sku": "", "location": "m", "quantity": 1}], "amount": "10", "currency": "USD"}),
            "lines[0].sku",
        ),
        (json!({"amount": "10", "currency": "USD"}), "lines"),
        (
            json!({"lines": [{"sku": "a", "location": "m", "quantity": 1}], "amount": "10", "currency": "USD", "colour": "red"}),
            "colour",
        ),
    ];
    for (body, field) in cases {
        let (status, reply) = ingress
            .api(Method::PUT, "/v1/orders/o1", Some(body.clone()))
            .await;
        assert_eq!(
            (status, reply["error"].as_str()),
            (400, Some("malformed")),
            "{body} → {reply}"
        );
        assert!(
            reply["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("`{field}`")),
            "{body} → {reply}"
        );
    }
    let (status, reply) = ingress
        .api(
            Method::POST,
            "/v1/stock/receipts",
            Some(json!({"sku": "a", "location": "m", "quantity": 1})),
        )
        .await;
    assert_eq!(status, 400);
    assert!(
        reply["message"].as_str().unwrap().contains("reference"),
        "{reply}"
    );
    let (status, reply) = ingress.api(Method::GET, "/v1/stock/a/entries", None).await;
    assert_eq!(status, 400);
    assert!(
        reply["message"].as_str().unwrap().contains("location"),
        "{reply}"
    );
    assert!(world.events().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_ledger_a_write_is_accepted_with_202_and_its_event_id() {
    let world = World::shared().await;
    let mut s = settings();
    s.confirmation_deadline = Duration::from_millis(300);
    let ingress = world.ingress(s).await;
    let (status, reply) = ingress
        .api(
            Method::POST,
            "/v1/stock/receipts",
            Some(json!({"sku": "a", "location": "m", "quantity": 5, "reference": "po-77"})),
        )
        .await;
    assert_eq!(status, 202, "{reply}");
    let id = event_id("merchant:receipt:po-77");
    assert_eq!(reply["event_id"], id.as_str());
    let events = world.events().await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].1, id);
    assert_eq!(events[0].2["kind"], "stock.received");
    assert_eq!(events[0].2["source"]["provider"], "merchant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_answer_with_the_ledgers_decision() {
    let world = World::shared().await;
    let ingress = world.ingress(settings()).await;
    let _ledger = world.run_ledger().await;

    // Orders: created; the same content again is the same event; other content under the
    // same order reference (the idempotency key) is refused and changes nothing.
    let (status, reply) = ingress
        .api(Method::PUT, "/v1/orders/o1", Some(order_body("10.50", 2)))
        .await;
    assert_eq!(
        (status, reply["reason"].as_str()),
        (201, Some("order_registered")),
        "{reply}"
    );
    let first_id = reply["event_id"].clone();
    let (status, reply) = ingress
        .api(Method::PUT, "/v1/orders/o1", Some(order_body("10.5", 2)))
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        reply["event_id"], first_id,
        "identical content is the same event"
    );
    assert_eq!(reply["reason"], "order_registered", "{reply}");
    assert_eq!(reply["repeated"], true, "{reply}");
    let published = world.events().await.len();
    let (status, reply) = ingress
        .api(Method::PUT, "/v1/orders/o1", Some(order_body("10.5", 1)))
        .await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (409, Some("idempotency_key_reused")),
        "{reply}"
    );
    assert!(
        reply["message"]
            .as_str()
            .unwrap()
            .contains("order_ref `o1`"),
        "the key is named: {reply}"
    );
    assert_eq!(world.events().await.len(), published, "nothing published");

    // Stock in, idempotent by reference.
    let receipt = json!({"sku": "sku-a", "location": "main", "quantity": 3, "reference": "dn-1"});
    let (status, reply) = ingress
        .api(Method::POST, "/v1/stock/receipts", Some(receipt.clone()))
        .await;
    assert_eq!(
        (status, reply["outcome"].as_str()),
        (201, Some("moved")),
        "{reply}"
    );
    let (status, _) = ingress
        .api(Method::POST, "/v1/stock/receipts", Some(receipt))
        .await;
    assert_eq!(status, 200);

    // Payment references.
    let (status, reply) = ingress
        .api(
            Method::POST,
            "/v1/orders/o1/payment-refs",
            Some(json!({"provider": "stripe", "ref": "pi_1"})),
        )
        .await;
    assert_eq!(
        (status, reply["reason"].as_str()),
        (201, Some("payment_ref_attached")),
        "{reply}"
    );
    let (status, reply) = ingress
        .api(
            Method::POST,
            "/v1/orders/nope/payment-refs",
            Some(json!({"provider": "stripe", "ref": "pi_2"})),
        )
        .await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (404, Some("refused:unknown_order")),
        "{reply}"
    );

    // Returns: refused while the order is not sold.
    let ret = json!({"order_ref": "o1", "reference": "rma-1", "lines": [{"sku": "sku-a", "location": "main", "quantity": 1}]});
    let (status, reply) = ingress.api(Method::POST, "/v1/returns", Some(ret)).await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (409, Some("refused:return_of_unsold_order")),
        "{reply}"
    );
    let insp = json!({"outcome": "restock", "lines": [{"sku": "sku-a", "location": "main", "quantity": 1}]});
    let (status, reply) = ingress
        .api(Method::POST, "/v1/returns/rma-404/inspection", Some(insp))
        .await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (404, Some("refused:unknown_return")),
        "{reply}"
    );

    // Once stock moved for the order, changing it is still refused for its key.
    let confirm = confirmation_body("k", "o1", "po-1", "10.5");
    assert_eq!(
        ingress
            .post_raw("/portone/inventory-confirmation", confirm, &[])
            .await
            .0,
        200
    );
    let (status, reply) = ingress
        .api(Method::PUT, "/v1/orders/o1", Some(order_body("99", 1)))
        .await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (409, Some("idempotency_key_reused")),
        "{reply}"
    );

    // Reads.
    let (status, stock) = ingress.api(Method::GET, "/v1/stock/sku-a", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        stock["locations"][0],
        json!({"location": "main", "available": 1, "reserved": 2, "sold": 0, "returned": 0, "written_off": 0, "last_seq": 2})
    );
    let (status, entries) = ingress
        .api(
            Method::GET,
            "/v1/stock/sku-a/entries?location=main&after_seq=1",
            None,
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(entries["entries"].as_array().unwrap().len(), 1);
    assert_eq!(entries["entries"][0]["from"], "available");
    assert_eq!(entries["next_after_seq"], 2);
    let (status, order) = ingress.api(Method::GET, "/v1/orders/o1", None).await;
    assert_eq!(status, 200, "{order}");
    assert_eq!(order["state"], "reserved");
    assert_eq!(
        order["lines"][0]["quantity"], 2,
        "the first registration holds"
    );
    let events = order["events"].as_array().unwrap();
    let authorized = events
        .iter()
        .find(|e| e["kind"] == "payment.authorized")
        .unwrap();
    assert_eq!(authorized["movements"][0]["to"], "reserved");
    let (status, _) = ingress.api(Method::GET, "/v1/orders/nope", None).await;
    assert_eq!(status, 404);

    let metrics = ingress
        .http
        .get(ingress.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains(r#"stockledger_http_requests_total{route="/v1/orders/{order_ref}",method="PUT",status="201"} 1"#), "{metrics}");
    assert!(
        metrics.contains("stockledger_portone_confirmation_seconds_count 1"),
        "{metrics}"
    );
}

/// Issue 13: refusals say what is wrong in the API's words, name the field, and publish
/// nothing; a SKU the ledger never saw is 404, not an empty list.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_say_what_is_wrong_and_unknown_skus_are_404() {
    let world = World::shared().await;
    let ingress = world.ingress(settings()).await;
    for (body, field, says) in [
        (order_body("-5.00", 1), "amount", "must not be negative"),
        (order_body("1,50", 1), "amount", "plain decimal"),
        (
            json!({"lines": [{"sku": "sku-a", "location": "main", "quantity": 1}], "amount": "1", "currency": "XYZ"}),
            "currency",
            "not an ISO 4217 code",
        ),
        (order_body("1", 0), "lines[0].quantity", "between 1 and"),
    ] {
        let (status, reply) = ingress
            .api(Method::PUT, "/v1/orders/o-bad", Some(body.clone()))
            .await;
        let message = reply["message"].as_str().unwrap_or_default();
        assert_eq!(
            (status, reply["error"].as_str()),
            (400, Some("malformed")),
            "{body}: {reply}"
        );
        assert!(
            message.starts_with(&format!("`{field}`")) && message.contains(says),
            "{body}: {message}"
        );
    }
    assert!(world.events().await.is_empty());
    let (status, reply) = ingress
        .api(Method::GET, "/v1/stock/no-such-sku", None)
        .await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (404, Some("unknown_sku")),
        "{reply}"
    );
    let (status, reply) = ingress
        .api(
            Method::GET,
            "/v1/stock/no-such-sku/entries?location=main",
            None,
        )
        .await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (404, Some("unknown_sku")),
        "{reply}"
    );
}
