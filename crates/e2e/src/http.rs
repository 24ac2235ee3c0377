//! HTTP helpers for end-to-end tests: a client for the merchant API and PortOne bodies
//! signed the way PortOne signs them (through `providers`, the code the ingress verifies
//! with).

use serde_json::Value;

use crate::{TEST_API_TOKEN, TEST_PORTONE_SECRET};

/// A plain `reqwest` client, with the TLS provider installed first.
pub fn reqwest_client() -> reqwest::Client {
    ingress::install_tls_provider();
    reqwest::Client::new()
}

/// A client bound to one ingress.
#[derive(Clone)]
pub struct Client {
    pub base: String,
    http: reqwest::Client,
}

impl Client {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            http: reqwest_client(),
        }
    }

    /// A merchant API call with the test token; returns status and JSON body (Null if empty).
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TEST_API_TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A raw POST (provider endpoints); returns status and body text.
    pub async fn post(&self, path: &str, body: Vec<u8>) -> (u16, String) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("request");
        (
            resp.status().as_u16(),
            resp.text().await.unwrap_or_default(),
        )
    }

    /// `(available, reserved, sold)` of a SKU at `main`; zeros for a SKU the ledger has no
    /// entry for yet (404 `unknown_sku`).
    pub async fn stock(&self, sku: &str) -> (i64, i64, i64) {
        let (status, body) = self
            .api(reqwest::Method::GET, &format!("/v1/stock/{sku}"), None)
            .await;
        if status == 404 && body["error"] == "unknown_sku" {
            return (0, 0, 0);
        }
        assert_eq!(status, 200, "{body}");
        let row = body
            .as_object()
            .and_then(|o| o.values().find_map(|v| v.as_array()))
            .and_then(|a| a.iter().find(|r| r["location"] == "main"))
            .cloned()
            .unwrap_or(Value::Null);
        let n = |k: &str| row[k].as_i64().unwrap_or(0);
        (n("available"), n("reserved"), n("sold"))
    }

    pub async fn receive(&self, sku: &str, quantity: u64, reference: &str) {
        let body = serde_json::json!({"sku": sku, "location": "main", "quantity": quantity, "reference": reference});
        let (status, resp) = self
            .api(reqwest::Method::POST, "/v1/stock/receipts", Some(body))
            .await;
        assert!(status == 200 || status == 201, "{status} {resp}");
    }

    pub async fn register(&self, order: &str, sku: &str, quantity: u64, amount: &str) {
        let body = serde_json::json!({"lines": [{"sku": sku, "location": "main", "quantity": quantity}], "amount": amount, "currency": "USD"});
        let (status, resp) = self
            .api(
                reqwest::Method::PUT,
                &format!("/v1/orders/{order}"),
                Some(body),
            )
            .await;
        assert!(status == 200 || status == 201, "{status} {resp}");
    }
}

/// A PortOne payment webhook body signed with the test secret.
pub fn portone_webhook(
    order_ref: &str,
    merchant_order_ref: &str,
    status: &str,
    amount: &str,
) -> Vec<u8> {
    let decimal: rust_decimal::Decimal = amount.parse().expect("decimal amount");
    let fields = providers::portone::PaymentSignatureFields {
        amount: decimal,
        channel_key: "PAYLETTER",
        channel_order_ref: "CH-1",
        country_code: "US",
        currency: "USD",
        merchant_order_ref,
        method_name: "Card",
        order_ref,
        status,
    };
    let signature = providers::portone::sign_payment_webhook(&fields, TEST_PORTONE_SECRET);
    serde_json::json!({
        "currency": "USD", "amount": serde_json::from_str::<Value>(amount).expect("json number"),
        "order_ref": order_ref, "channel_order_ref": "CH-1", "merchant_order_ref": merchant_order_ref,
        "country_code": "US", "status": status, "channel_key": "PAYLETTER", "method_name": "Card",
        "status_code": if status == "Success" { "2000" } else { "4000" }, "signature_hash": signature,
    })
    .to_string()
    .into_bytes()
}

/// A PortOne inventory-confirmation body.
pub fn confirmation(merchant_order_ref: &str, portone_order_ref: &str, amount: &str) -> Vec<u8> {
    format!(
        r#"{{"portone_key":"pk-test","merchant_order_ref":"{merchant_order_ref}","portone_order_ref":"{portone_order_ref}","amount":{amount},"currency":"USD"}}"#
    )
    .into_bytes()
}
