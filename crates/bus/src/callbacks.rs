//! The messages of the callbacks work-queue stream, shared by the side that stores them
//! (the ingress's webhook routes) and the side that works them off (the `verifier`): the
//! lanes (subject suffixes `<ns>.callbacks.<lane>`), the message bodies and their
//! `Nats-Msg-Id`s. Kept here, in the crate both depend on, so that neither depends on the
//! other and a change of shape is one edit.

use serde::{Deserialize, Serialize};

/// The lane of iPint callbacks whose invoice a registered order holds
/// (`<ns>.callbacks.ipint`).
pub const IPINT_LANE: &str = "ipint";
/// The lane (subject `<ns>.callbacks.ipint-unmatched`) of iPint callbacks whose invoice no
/// registered order holds when they arrive: made-up invoices, and genuine ones registered
/// late. Callbacks for registered invoices use [`IPINT_LANE`] and never wait behind this
/// lane (decision 30).
pub const IPINT_UNMATCHED_LANE: &str = "ipint-unmatched";
/// The lane of partial Stripe events waiting to be completed from Stripe's API
/// (`<ns>.callbacks.stripe`).
pub const STRIPE_LANE: &str = "stripe";

/// What the iPint callback endpoint stores: only what names the invoice. Never trusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trigger {
    /// The invoice to verify.
    pub invoice_id: String,
    /// The status the callback claimed; for logs only.
    pub claimed_status: Option<String>,
    /// When the callback was accepted, Unix milliseconds.
    pub received_at: i64,
}

impl Trigger {
    /// The trigger's `Nats-Msg-Id`: iPint's retries of one callback, and callbacks for one
    /// invoice claiming other statuses (the claim is never trusted, the verification reads
    /// the real one), collapse into one trigger within the duplicate window.
    pub fn msg_id(&self) -> String {
        format!("ipint:callback:{}", self.invoice_id)
    }
}

/// What the Stripe endpoint stores for an event without `data.object`: the signed body,
/// verified before it was stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partial {
    /// The event body exactly as Stripe signed it (UTF-8 JSON).
    pub body: String,
    /// When it was accepted, Unix milliseconds.
    pub received_at: i64,
}

impl Partial {
    /// The `Nats-Msg-Id` of the partial event `event_id`: Stripe's retries collapse.
    pub fn msg_id(event_id: &str) -> String {
        format!("stripe:partial:{event_id}")
    }
}
