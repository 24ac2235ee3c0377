//! `stockctl trigger portone|stripe|adyen|ipint EVENT …`, like `stripe trigger`: builds the
//! message a provider would send for EVENT, signed the provider's way with the secret the
//! ingress is configured with (the same variables it reads), and POSTs it to the ingress's
//! webhook endpoint, or prints it with `--print`. The signatures come from the `providers`
//! crate, the code the ingress verifies with, so a message that passes here passes there.
//! iPint callbacks are not signed: the ingress only queues them, and a verification worker
//! asks the iPint API for the invoice's real status.

use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand, ValueEnum};
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::exit::{self, Exit};
use crate::messages::{self, Message};
use crate::{ctx, out, outln};

/// How long one webhook POST may take before the command gives up (exit code 3).
pub const TRIGGER_TIMEOUT: Duration = Duration::from_secs(10);

/// What an iPint trigger prints: how such a callback is trusted.
pub const IPINT_NOTE: &str = "iPint callbacks carry no signature: the ingress answers 200 and \
    only queues the callback as a trigger; a verification worker then asks the iPint API \
    (STOCKLEDGER_IPINT_API_URL, with STOCKLEDGER_IPINT_API_KEY and _SECRET) for the invoice's \
    real status, and only that answer can move stock. Without API keys the callback stays \
    `unverifiable` in the exception queue; the invoice must be registered on an order \
    (payment_refs) to be matched.";

/// The providers.
#[derive(Subcommand)]
pub enum TriggerCommand {
    /// A PortOne payment webhook (POST /webhooks/portone), signed with
    /// STOCKLEDGER_PORTONE_SECRET_KEY. EVENT is PortOne's payment status. Safe at any time
    /// against a test deployment: it is a real message and moves stock like one.
    Portone(PortoneArgs),
    /// A Stripe event (POST /webhooks/stripe) with a `Stripe-Signature` header made with the
    /// first of STOCKLEDGER_STRIPE_WEBHOOK_SECRET. EVENT is the Stripe event type. Safe at any
    /// time against a test deployment: it is a real message and moves stock like one.
    Stripe(StripeArgs),
    /// An Adyen standard notification (POST /webhooks/adyen) of one item, its hmacSignature
    /// made with the first of STOCKLEDGER_ADYEN_HMAC_KEY (and HTTP Basic credentials when
    /// STOCKLEDGER_ADYEN_BASIC_USER is set). EVENT is the eventCode (AUTHORISATION, CAPTURE,
    /// CANCELLATION, REFUND, CHARGEBACK, CHARGEBACK_REVERSED, …). Safe at any time against a
    /// test deployment: it is a real message and moves stock like one.
    Adyen(AdyenArgs),
    /// An iPint payment callback (POST /webhooks/ipint). iPint does not sign callbacks: the
    /// ingress only queues it, and a verification worker asks the iPint API for the
    /// invoice's real status before anything moves. EVENT is the status the callback
    /// claims (COMPLETED, FAILED, …). Safe at any time.
    Ipint(IpintArgs),
}

/// Where the message goes, shared by every provider.
#[derive(Args)]
pub struct Target {
    /// The ingress's base URL; default http:// and STOCKLEDGER_HTTP_ADDR (127.0.0.1:8080).
    #[arg(long)]
    pub url: Option<String>,
    /// Print the message (headers and body) instead of sending it.
    #[arg(long)]
    pub print: bool,
}

/// The payment amount, shared by the providers that carry one.
#[derive(Args)]
pub struct Amount {
    /// The amount as a decimal in major units (20.00); converted to the provider's minor
    /// units where it uses them. It must match the registered order's.
    #[arg(long)]
    pub amount: Decimal,
    /// The currency (ISO 4217, e.g. USD).
    #[arg(long)]
    pub currency: String,
}

/// PortOne's payment statuses.
#[derive(Clone, Copy, ValueEnum)]
pub enum PortoneStatus {
    /// The payment was captured.
    Success,
    /// The payment failed.
    Failed,
    /// The payment expired.
    Expired,
    /// The payment was cancelled.
    Cancelled,
    /// The payment is pending (recorded, no stock effect).
    Pending,
}

/// Arguments of `trigger portone`.
#[derive(Args)]
pub struct PortoneArgs {
    /// PortOne's payment status.
    #[arg(value_enum)]
    pub event: PortoneStatus,
    /// The merchant's order reference (`merchant_order_ref`).
    #[arg(long)]
    pub order: String,
    #[command(flatten)]
    pub amount: Amount,
    /// PortOne's payment reference (`order_ref`); default `po-<order>`.
    #[arg(long)]
    pub payment_ref: Option<String>,
    /// The secret key; default STOCKLEDGER_PORTONE_SECRET_KEY.
    #[arg(long)]
    pub secret: Option<String>,
    #[command(flatten)]
    pub target: Target,
}

/// The Stripe event types the ingress acts on.
#[derive(Clone, Copy, ValueEnum)]
pub enum StripeEventType {
    /// Authorized, not captured: reserves the order's stock.
    #[value(name = "payment_intent.amount_capturable_updated")]
    AmountCapturableUpdated,
    /// Captured: the order is sold.
    #[value(name = "payment_intent.succeeded")]
    Succeeded,
    /// Voided: a reservation is released.
    #[value(name = "payment_intent.canceled")]
    Canceled,
    /// A failed attempt (recorded, no stock effect).
    #[value(name = "payment_intent.payment_failed")]
    PaymentFailed,
    /// The charge was refunded in full.
    #[value(name = "charge.refunded")]
    Refunded,
    /// A dispute opened (an exception for review).
    #[value(name = "charge.dispute.created")]
    DisputeCreated,
    /// A dispute closed with --dispute-status.
    #[value(name = "charge.dispute.closed")]
    DisputeClosed,
}

/// Arguments of `trigger stripe`.
#[derive(Args)]
pub struct StripeArgs {
    /// The Stripe event type.
    #[arg(value_enum)]
    pub event: StripeEventType,
    /// The order reference (`metadata.order_ref` of the object).
    #[arg(long)]
    pub order: String,
    #[command(flatten)]
    pub amount: Amount,
    /// The PaymentIntent id; default `pi_<order>`.
    #[arg(long)]
    pub payment_ref: Option<String>,
    /// The event id (send the same id again to test deduplication); default a new `evt_…`.
    #[arg(long)]
    pub id: Option<String>,
    /// A closed dispute's status: won or lost.
    #[arg(long, default_value = "lost", value_parser = ["won", "lost"])]
    pub dispute_status: String,
    /// The webhook signing secret; default the first of STOCKLEDGER_STRIPE_WEBHOOK_SECRET.
    #[arg(long)]
    pub secret: Option<String>,
    #[command(flatten)]
    pub target: Target,
}

/// Arguments of `trigger adyen`.
#[derive(Args)]
pub struct AdyenArgs {
    /// The eventCode: AUTHORISATION, CAPTURE, CANCELLATION, REFUND, CHARGEBACK,
    /// CHARGEBACK_REVERSED, …
    pub event: String,
    /// The order reference (`merchantReference`).
    #[arg(long)]
    pub order: String,
    #[command(flatten)]
    pub amount: Amount,
    /// The payment's pspReference (the authorisation's); default `psp-<order>`. It is the
    /// item's own pspReference for AUTHORISATION and its originalReference otherwise.
    #[arg(long)]
    pub payment_ref: Option<String>,
    /// A modification's own pspReference (send the same again to test deduplication);
    /// default a new one.
    #[arg(long)]
    pub psp_reference: Option<String>,
    /// The `success` flag: true or false.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub success: bool,
    /// The merchant account code.
    #[arg(long, default_value = "TestMerchant")]
    pub merchant_account: String,
    /// The HMAC key (hex); default the first of STOCKLEDGER_ADYEN_HMAC_KEY.
    #[arg(long)]
    pub hmac_key: Option<String>,
    #[command(flatten)]
    pub target: Target,
}

/// Arguments of `trigger ipint`.
#[derive(Args)]
pub struct IpintArgs {
    /// The status the callback claims (COMPLETED, FAILED, …); only the iPint API's answer
    /// counts.
    pub event: String,
    /// The iPint invoice id, as registered on the order (payment_refs).
    #[arg(long)]
    pub invoice: String,
    #[command(flatten)]
    pub target: Target,
}

/// Runs one trigger.
pub async fn run(cmd: TriggerCommand, json: bool) -> anyhow::Result<Exit> {
    let cfg = ctx::config()?;
    let (message, target) = match cmd {
        TriggerCommand::Portone(a) => (messages::portone(&a, &cfg)?, a.target),
        TriggerCommand::Stripe(a) => (messages::stripe(&a, &cfg)?, a.target),
        TriggerCommand::Adyen(a) => (messages::adyen(&a, &cfg)?, a.target),
        TriggerCommand::Ipint(a) => (messages::ipint(&a), a.target),
    };
    let base = target
        .url
        .clone()
        .unwrap_or_else(|| default_url(&cfg.http.addr));
    let url = format!("{}{}", base.trim_end_matches('/'), message.path);
    if target.print {
        return print(&message, &url, json);
    }
    send(&message, &url, json).await
}

/// `http://` and the ingress's listen address, with a wildcard address made loopback.
fn default_url(addr: &str) -> String {
    let addr = addr
        .replace("0.0.0.0", "127.0.0.1")
        .replace("[::]", "[::1]");
    format!("http://{addr}")
}

fn print(m: &Message, url: &str, json: bool) -> anyhow::Result<Exit> {
    if json {
        let headers: serde_json::Map<String, Value> = m
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), json!(v)))
            .collect();
        out::json(&json!({
            "provider": m.provider,
            "event": m.event,
            "method": "POST",
            "url": url,
            "headers": headers,
            "body": m.body,
            "note": m.note,
        }))?;
    } else {
        outln!("POST {url}")?;
        for (k, v) in &m.headers {
            outln!("{k}: {v}")?;
        }
        outln!()?;
        outln!("{}", m.body)?;
    }
    if let Some(note) = m.note {
        eprintln!("note: {note}");
    }
    Ok(Exit::Success)
}

async fn send(m: &Message, url: &str, json: bool) -> anyhow::Result<Exit> {
    // reqwest is built without a default TLS provider; an error only means one is installed.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client = reqwest::Client::builder()
        .timeout(TRIGGER_TIMEOUT)
        .build()
        .context("building the HTTP client")?;
    let mut req = client.post(url).body(m.body.clone());
    for (k, v) in &m.headers {
        req = req.header(k, v);
    }
    let resp = req
        .send()
        .await
        .with_context(|| format!("the ingress at {url} did not answer"))?;
    let status = resp.status();
    let answer = resp.text().await.unwrap_or_default();
    if json {
        out::json(&json!({
            "provider": m.provider,
            "event": m.event,
            "url": url,
            "status": status.as_u16(),
            "response": answer,
            "note": m.note,
        }))?;
    } else {
        outln!(
            "{} {}: POST {url} → {status}{}",
            m.provider,
            m.event,
            if answer.is_empty() {
                String::new()
            } else {
                format!(" {answer}")
            }
        )?;
    }
    if let Some(note) = m.note {
        eprintln!("note: {note}");
    }
    if status.is_success() {
        Ok(Exit::Success)
    } else {
        Err(exit::problem(format!(
            "the ingress refused the {} message: {status}",
            m.provider
        )))
    }
}
