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

/// One message to send.
struct Message {
    provider: &'static str,
    event: String,
    path: &'static str,
    headers: Vec<(String, String)>,
    body: String,
    note: Option<&'static str>,
}

/// Runs one trigger.
pub async fn run(cmd: TriggerCommand, json: bool) -> anyhow::Result<Exit> {
    let cfg = ctx::config()?;
    let (message, target) = match cmd {
        TriggerCommand::Portone(a) => (portone(&a, &cfg)?, a.target),
        TriggerCommand::Stripe(a) => (stripe(&a, &cfg)?, a.target),
        TriggerCommand::Adyen(a) => (adyen(&a, &cfg)?, a.target),
        TriggerCommand::Ipint(a) => (ipint(&a), a.target),
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

/// The secret given on the command line, else the configured one; a usage error naming
/// the variable when there is neither.
fn secret(given: Option<&str>, configured: Option<&str>, var: &str) -> anyhow::Result<String> {
    given
        .or(configured)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            exit::usage(format!(
                "{var} is not set (the ingress would refuse the message): set it or give the secret on the command line"
            ))
        })
}

/// The fields of a PortOne payment webhook.
pub struct PortonePayment<'a> {
    pub merchant_order_ref: &'a str,
    pub order_ref: &'a str,
    pub status: &'a str,
    pub status_code: &'a str,
    pub amount: Decimal,
    pub currency: &'a str,
    pub channel_order_ref: &'a str,
    pub channel_key: &'a str,
    pub country_code: &'a str,
    pub method_name: &'a str,
}

/// A PortOne payment webhook body signed with `secret_key`.
pub fn portone_body(p: &PortonePayment<'_>, secret_key: &str) -> anyhow::Result<String> {
    let fields = providers::portone::PaymentSignatureFields {
        amount: p.amount,
        channel_key: p.channel_key,
        channel_order_ref: p.channel_order_ref,
        country_code: p.country_code,
        currency: p.currency,
        merchant_order_ref: p.merchant_order_ref,
        method_name: p.method_name,
        order_ref: p.order_ref,
        status: p.status,
    };
    let signature = providers::portone::sign_payment_webhook(&fields, secret_key);
    let amount: Value =
        serde_json::from_str(&p.amount.normalize().to_string()).context("amount")?;
    Ok(json!({
        "amount": amount,
        "channel_key": p.channel_key,
        "channel_order_ref": p.channel_order_ref,
        "country_code": p.country_code,
        "currency": p.currency,
        "merchant_order_ref": p.merchant_order_ref,
        "method_name": p.method_name,
        "order_ref": p.order_ref,
        "status": p.status,
        "status_code": p.status_code,
        "signature_hash": signature,
    })
    .to_string())
}

fn portone(a: &PortoneArgs, cfg: &config::Config) -> anyhow::Result<Message> {
    let key = secret(
        a.secret.as_deref(),
        cfg.providers
            .portone_secret_key
            .as_ref()
            .map(config::Secret::expose),
        "STOCKLEDGER_PORTONE_SECRET_KEY",
    )?;
    let (status, code) = match a.event {
        PortoneStatus::Success => ("Success", "2000"),
        PortoneStatus::Failed => ("Failed", "4000"),
        PortoneStatus::Expired => ("Expired", "4000"),
        PortoneStatus::Cancelled => ("Cancelled", "4000"),
        PortoneStatus::Pending => ("Pending", "1000"),
    };
    let payment_ref = a
        .payment_ref
        .clone()
        .unwrap_or_else(|| format!("po-{}", a.order));
    let body = portone_body(
        &PortonePayment {
            merchant_order_ref: &a.order,
            order_ref: &payment_ref,
            status,
            status_code: code,
            amount: a.amount.amount,
            currency: &a.amount.currency,
            channel_order_ref: "",
            channel_key: "PAYLETTER",
            country_code: "US",
            method_name: "Card",
        },
        &key,
    )?;
    Ok(Message {
        provider: "portone",
        event: status.to_owned(),
        path: "/webhooks/portone",
        headers: vec![("content-type".into(), "application/json".into())],
        body,
        note: None,
    })
}

/// `amount` in a provider's minor units for an exponent (cents for 2).
fn minor_units(amount: Decimal, exponent: u32) -> anyhow::Result<i64> {
    let scaled = amount * Decimal::from(10_i64.pow(exponent));
    if scaled.fract() != Decimal::ZERO {
        return Err(exit::usage(format!(
            "--amount {amount} has more decimals than the currency's {exponent}"
        )));
    }
    i64::try_from(scaled).map_err(|_| exit::usage(format!("--amount {amount} is out of range")))
}

fn stripe(a: &StripeArgs, cfg: &config::Config) -> anyhow::Result<Message> {
    let key = secret(
        a.secret.as_deref(),
        cfg.providers
            .stripe_webhook_secrets
            .first()
            .map(config::Secret::expose),
        "STOCKLEDGER_STRIPE_WEBHOOK_SECRET",
    )?;
    let currency = a.amount.currency.to_ascii_lowercase();
    let minor = minor_units(
        a.amount.amount,
        providers::stripe::currency_exponent(&currency),
    )?;
    let pi = a
        .payment_ref
        .clone()
        .unwrap_or_else(|| format!("pi_{}", a.order));
    let now = service::now().0 / 1000;
    let metadata = json!({"order_ref": a.order});
    let event_type = a
        .event
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default();
    let object = match a.event {
        StripeEventType::AmountCapturableUpdated
        | StripeEventType::Succeeded
        | StripeEventType::Canceled
        | StripeEventType::PaymentFailed => json!({
            "id": pi, "object": "payment_intent", "amount": minor, "currency": currency,
            "metadata": metadata,
        }),
        StripeEventType::Refunded => json!({
            "id": format!("ch_{}", a.order), "object": "charge", "payment_intent": pi,
            "amount": minor, "amount_refunded": minor, "currency": currency,
            "metadata": metadata,
        }),
        StripeEventType::DisputeCreated | StripeEventType::DisputeClosed => json!({
            "id": format!("dp_{}", a.order), "object": "dispute", "payment_intent": pi,
            "amount": minor, "currency": currency,
            "status": if matches!(a.event, StripeEventType::DisputeCreated) {
                "needs_response"
            } else {
                a.dispute_status.as_str()
            },
            // A week to answer, as Stripe gives.
            "evidence_details": {"due_by": now + 7 * 86_400},
            "metadata": metadata,
        }),
    };
    let id =
        a.id.clone()
            .unwrap_or_else(|| format!("evt_test_{}", uuid::Uuid::new_v4().simple()));
    let body = json!({
        "id": id, "object": "event", "type": event_type, "created": now, "livemode": false,
        "data": {"object": object},
    })
    .to_string();
    let signature = providers::stripe::sign(body.as_bytes(), &key, now);
    Ok(Message {
        provider: "stripe",
        event: event_type,
        path: "/webhooks/stripe",
        headers: vec![
            ("content-type".into(), "application/json".into()),
            ("stripe-signature".into(), signature),
        ],
        body,
        note: None,
    })
}

fn adyen(a: &AdyenArgs, cfg: &config::Config) -> anyhow::Result<Message> {
    let hex_key = secret(
        a.hmac_key.as_deref(),
        cfg.providers
            .adyen_hmac_keys
            .first()
            .map(config::Secret::expose),
        "STOCKLEDGER_ADYEN_HMAC_KEY",
    )?;
    let key = providers::adyen::parse_hmac_key(&hex_key)
        .map_err(|e| exit::usage(format!("the Adyen HMAC key: {e}")))?;
    let code = a.event.to_ascii_uppercase();
    let currency = a.amount.currency.to_ascii_uppercase();
    let minor = minor_units(
        a.amount.amount,
        providers::adyen::currency_exponent(&currency),
    )?;
    let payment = a
        .payment_ref
        .clone()
        .unwrap_or_else(|| format!("psp-{}", a.order));
    let (psp, original) = if code == "AUTHORISATION" {
        (payment, String::new())
    } else {
        let own = a.psp_reference.clone().unwrap_or_else(|| {
            format!(
                "{}-{}",
                code.to_ascii_lowercase(),
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            )
        });
        (own, payment)
    };
    let mut item = json!({
        "additionalData": {},
        "amount": {"currency": currency, "value": minor},
        "eventCode": code,
        "eventDate": contract::wire_time::format(service::now()),
        "merchantAccountCode": a.merchant_account,
        "merchantReference": a.order,
        "originalReference": original,
        "pspReference": psp,
        "reason": "",
        "success": if a.success { "true" } else { "false" },
    });
    let batch = |item: &Value| {
        json!({"live": "false", "notificationItems": [{"NotificationRequestItem": item}]})
            .to_string()
    };
    // Signed over the item as the ingress parses it.
    let parsed = providers::adyen::parse_batch(batch(&item).as_bytes())
        .map_err(|e| anyhow::anyhow!("building the Adyen item: {e}"))?;
    let signature = parsed
        .items
        .first()
        .map(|i| providers::adyen::sign_item(i, &key))
        .context("building the Adyen item")?;
    item["additionalData"]["hmacSignature"] = json!(signature);
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if let (Some(user), Some(password)) = (
        &cfg.providers.adyen_basic_user,
        &cfg.providers.adyen_basic_password,
    ) {
        use base64::Engine as _;
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("{user}:{}", password.expose()));
        headers.push(("authorization".into(), format!("Basic {token}")));
    }
    Ok(Message {
        provider: "adyen",
        event: code,
        path: "/webhooks/adyen",
        headers,
        body: batch(&item),
        note: None,
    })
}

fn ipint(a: &IpintArgs) -> Message {
    Message {
        provider: "ipint",
        event: a.event.to_ascii_uppercase(),
        path: "/webhooks/ipint",
        headers: vec![("content-type".into(), "application/json".into())],
        body: json!({"invoice_id": a.invoice, "status": a.event.to_ascii_uppercase()}).to_string(),
        note: Some(IPINT_NOTE),
    }
}
