//! The provider endpoints' request bodies as the API description shows them: the shapes
//! PortOne, Stripe, Adyen and iPint send (`docs/providers.md`), with the members the
//! ingress reads. Parsing itself is `providers`' strict reader (`providers::portone`,
//! `providers::stripe`, `providers::adyen`, `providers::ipint`), which keeps the raw bytes
//! a signature covers and reads a JSON number's exact text; these structs only describe
//! that shape for the OpenAPI document. The test below holds the two together: the bodies
//! the providers' own tests sign validate against these schemas and parse.
//!
//! Providers add members over time, so every object here accepts members it does not name
//! (`additionalProperties` is not closed).

use serde::Serialize;
use utoipa::ToSchema;

/// `POST /webhooks/portone`: a PortOne payment webhook (`docs/providers.md`, "PortOne").
/// The nine signed members are `amount`, `channel_key`, `channel_order_ref`,
/// `country_code`, `currency`, `merchant_order_ref`, `method_name`, `order_ref` and
/// `status`; an absent one is signed as empty.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortOneWebhook {
    /// PortOne's transaction reference.
    pub order_ref: String,
    /// The merchant's order reference: the stockledger order this payment belongs to.
    pub merchant_order_ref: String,
    /// `Success`, `Failed`, `Expired`, `Cancelled`, `Pending`, …
    pub status: String,
    /// The amount, a JSON number, read from its exact text (never through a float).
    #[schema(schema_with = super::schema::provider_amount)]
    pub amount: serde_json::Number,
    /// ISO 4217 code.
    pub currency: String,
    /// `HMAC-SHA256(secret key, nine members form-encoded in key order)`, base64.
    pub signature_hash: Option<String>,
    pub channel_key: Option<String>,
    pub channel_order_ref: Option<String>,
    pub country_code: Option<String>,
    pub method_name: Option<String>,
    /// PortOne's status code as a string (`"2000"`); not signed.
    pub status_code: Option<String>,
    /// `sandbox` or `live`.
    pub environment: Option<String>,
    pub merchant_key: Option<String>,
}

/// `POST /portone/inventory-confirmation`: PortOne asks whether the stock is there.
#[derive(Debug, Serialize, ToSchema)]
pub struct PortOneConfirmation {
    /// The merchant's PortOne key (`STOCKLEDGER_PORTONE_KEY`, when set, must match).
    pub portone_key: String,
    pub merchant_order_ref: String,
    pub portone_order_ref: String,
    /// A JSON number, compared exactly with the registered order's amount.
    #[schema(schema_with = super::schema::provider_amount)]
    pub amount: serde_json::Number,
    pub currency: String,
}

/// `POST /webhooks/stripe`: a Stripe event (a snapshot event with `data.object`, or a thin
/// event naming its `related_object`).
#[derive(Debug, Serialize, ToSchema)]
pub struct StripeEvent {
    /// `evt_…`: the dedupe key's part.
    pub id: String,
    /// `payment_intent.succeeded`, `charge.refunded`, `charge.dispute.created`, …
    #[serde(rename = "type")]
    pub event_type: String,
    /// Unix seconds.
    pub created: Option<i64>,
    pub livemode: Option<bool>,
    /// `{"object": {…}}`: the object the event is about.
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
}

/// `POST /webhooks/adyen`: an Adyen standard notification batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdyenNotification {
    /// `"true"` or `"false"`.
    pub live: Option<String>,
    /// One to the batch limit of items.
    #[serde(rename = "notificationItems")]
    #[schema(min_items = 1)]
    pub notification_items: Vec<AdyenItemWrapper>,
}

/// One item of a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdyenItemWrapper {
    #[serde(rename = "NotificationRequestItem")]
    pub notification_request_item: AdyenItem,
}

/// One notification.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdyenItem {
    pub psp_reference: String,
    /// `AUTHORISATION`, `CAPTURE`, `CANCELLATION`, `REFUND`, `CHARGEBACK`, …
    pub event_code: String,
    /// `"true"` or `"false"`.
    #[schema(pattern = "^(true|false)$")]
    pub success: String,
    pub merchant_reference: Option<String>,
    pub merchant_account_code: Option<String>,
    pub original_reference: Option<String>,
    pub amount: Option<AdyenAmount>,
    /// Holds `hmacSignature`.
    #[schema(value_type = Option<Object>)]
    pub additional_data: Option<serde_json::Value>,
    pub event_date: Option<String>,
    pub reason: Option<String>,
}

/// An Adyen amount: minor units and currency.
#[derive(Debug, Serialize, ToSchema)]
pub struct AdyenAmount {
    pub currency: String,
    /// Minor units (cents).
    pub value: i64,
}

/// `POST /webhooks/ipint`: an iPint invoice callback (unsigned; verified by asking iPint).
#[derive(Debug, Serialize, ToSchema)]
pub struct IpintCallback {
    pub invoice_id: String,
    /// What iPint claims; never believed without the API lookup.
    pub status: Option<String>,
}
