//! The API description (`GET /openapi.json`, `docs/openapi.json`, `ingress::openapi`):
//! - the committed copy is byte-for-byte what a running ingress serves (run with
//!   `STOCKLEDGER_UPDATE_OPENAPI=1` to rewrite it after changing the API);
//! - it is OpenAPI 3.1 and describes every endpoint of `docs/interface.md`;
//! - the provider bodies it describes are the ones providers send: signed example bodies
//!   validate against their schemas and are accepted by the providers' parsers.
//!
//! Schemathesis then checks every answer against this document on a live stockledger
//! (`crates/e2e/tests/openapi_conformance.rs`).
#![allow(clippy::unwrap_used)]

mod common;

use common::{PORTONE_SECRET, World, confirmation_body, portone_webhook, settings};
use serde_json::{Value, json};

fn committed_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
}

#[tokio::test]
async fn the_committed_description_is_the_served_one() {
    let world = World::shared().await;
    let ingress = world.ingress(settings()).await;
    let resp = ingress
        .http
        .get(ingress.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let served = resp.text().await.unwrap();
    assert_eq!(served, ingress::openapi::document_json());
    let path = committed_path();
    if std::env::var_os("STOCKLEDGER_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &served).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == served,
        "docs/openapi.json differs from what the ingress serves: run \
         `STOCKLEDGER_UPDATE_OPENAPI=1 cargo test -p ingress --test openapi` and commit it"
    );
}

/// Every endpoint of the interface, with its method.
const ENDPOINTS: &[(&str, &str)] = &[
    ("post", "/webhooks/portone"),
    ("post", "/portone/inventory-confirmation"),
    ("post", "/webhooks/ipint"),
    ("post", "/webhooks/stripe"),
    ("post", "/webhooks/adyen"),
    ("put", "/v1/orders/{order_ref}"),
    ("get", "/v1/orders/{order_ref}"),
    ("post", "/v1/orders/{order_ref}/payment-refs"),
    ("post", "/v1/stock/receipts"),
    ("get", "/v1/stock/{sku}"),
    ("get", "/v1/stock/{sku}/entries"),
    ("post", "/v1/returns"),
    ("post", "/v1/returns/{reference}/inspection"),
    ("get", "/v1/exceptions"),
    ("get", "/v1/exceptions/{id}"),
    ("get", "/v1/exceptions/{id}/evidence"),
    ("post", "/v1/exceptions/{id}/retry"),
    ("post", "/v1/exceptions/{id}/resolve"),
    ("post", "/v1/exceptions/{id}/dismiss"),
    ("post", "/v1/exceptions/{id}/release"),
    ("post", "/v1/exceptions/{id}/keep"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
];

fn document() -> Value {
    serde_json::from_str(ingress::openapi::document_json()).unwrap()
}

#[test]
fn it_is_openapi_3_1_and_describes_every_endpoint() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    for (method, path) in ENDPOINTS {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is not described");
        assert!(
            op["responses"].as_object().is_some_and(|r| r.len() >= 2),
            "{method} {path}: its answers are not described"
        );
    }
    let described: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().len())
        .sum();
    assert_eq!(
        described,
        ENDPOINTS.len(),
        "an endpoint is not in the interface list"
    );
    // The merchant API names its token; errors have the one shape.
    assert_eq!(
        doc["paths"]["/v1/stock/receipts"]["post"]["security"],
        json!([{"bearer": []}])
    );
    assert_eq!(
        doc["components"]["schemas"]["ErrorBody"]["required"],
        json!(["error", "message"])
    );
    // Every reason code is listed, so a client can switch on them.
    let reasons = &doc["components"]["schemas"]["ReasonCode"]["enum"];
    for code in domain::ReasonCode::all() {
        assert!(
            reasons.as_array().unwrap().contains(&json!(code.as_str())),
            "{code} is not listed: {reasons}"
        );
    }
}

/// A validator for the document's schema `name`.
fn validator(name: &str) -> jsonschema::Validator {
    let doc = document();
    let root = json!({
        "$ref": format!("#/components/schemas/{name}"),
        "components": doc["components"],
    });
    jsonschema::validator_for(&root).unwrap()
}

fn assert_fits(name: &str, body: &[u8]) {
    let value: Value = serde_json::from_slice(body).unwrap();
    let v = validator(name);
    let errors: Vec<String> = v.iter_errors(&value).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "{name}: {errors:?}\n{value}");
}

#[test]
fn provider_bodies_fit_their_schemas_and_parse() {
    let portone = portone_webhook("PO-1", "ORD-1", "Success", "2000", "100.50", PORTONE_SECRET);
    assert_fits("PortOneWebhook", &portone);
    providers::portone::parse_payment_webhook(&portone).unwrap();

    let confirmation = confirmation_body("key", "ORD-1", "PO-1", "100.50");
    assert_fits("PortOneConfirmation", &confirmation);
    providers::portone::parse_inventory_confirmation(&confirmation).unwrap();

    let stripe = br#"{"id":"evt_1","object":"event","type":"payment_intent.succeeded","created":1700000000,"livemode":false,"data":{"object":{"id":"pi_1","object":"payment_intent","amount":10050,"currency":"usd","metadata":{"order_ref":"ORD-1"}}}}"#;
    assert_fits("StripeEvent", stripe);
    providers::stripe::parse_event(stripe).unwrap();

    let adyen = br#"{"live":"false","notificationItems":[{"NotificationRequestItem":{"additionalData":{"hmacSignature":"x"},"amount":{"currency":"EUR","value":100},"eventCode":"AUTHORISATION","merchantAccountCode":"A","merchantReference":"ORD-1","originalReference":"","pspReference":"P1","success":"true","eventDate":"2024-01-01T00:00:00+01:00"}}]}"#;
    assert_fits("AdyenNotification", adyen);
    providers::adyen::parse_batch(adyen).unwrap();

    let ipint = br#"{"invoice_id":"inv-1","status":"COMPLETED"}"#;
    assert_fits("IpintCallback", ipint);
    providers::ipint::parse_callback(ipint).unwrap();
}

#[test]
fn merchant_bodies_of_the_interface_fit_their_schemas() {
    assert_fits(
        "OrderBody",
        br#"{"lines":[{"sku":"MUG","location":"main","quantity":2}],"amount":"100.50","currency":"USD","payment_refs":[{"provider":"ipint","ref":"inv-1"}]}"#,
    );
    assert_fits(
        "ReceiptBody",
        br#"{"sku":"MUG","location":"main","quantity":10,"reference":"PO-7"}"#,
    );
    assert_fits(
        "InspectionBody",
        br#"{"outcome":"write_off","lines":[{"sku":"MUG","location":"main","quantity":1}]}"#,
    );
    // What the API refuses, the description refuses too.
    let order = validator("OrderBody");
    for bad in [
        json!({"lines": [], "amount": "1", "currency": "USD"}),
        json!({"lines": [{"sku": "a", "location": "m", "quantity": 0}], "amount": "1", "currency": "USD"}),
        json!({"lines": [{"sku": "a", "location": "m", "quantity": 1}], "amount": 1.5, "currency": "USD"}),
        json!({"lines": [{"sku": "a", "location": "m", "quantity": 1}], "amount": "-1", "currency": "USD"}),
        json!({"lines": [{"sku": "", "location": "m", "quantity": 1}], "amount": "1", "currency": "USD"}),
        json!({"lines": [{"sku": "a", "location": "m", "quantity": 1}], "amount": "1"}),
    ] {
        assert!(!order.is_valid(&bad), "{bad}");
    }
}
