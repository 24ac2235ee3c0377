//! The messages `stockctl trigger` sends, as each provider builds them: the body, and the
//! signature made with the `providers` crate's functions (the code the ingress verifies
//! with) and the secret the ingress reads.

use anyhow::Context as _;
use clap::ValueEnum as _;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::exit;
use crate::trigger::{
    AdyenArgs, IPINT_NOTE, IpintArgs, PortoneArgs, PortoneStatus, StripeArgs, StripeEventType,
};

/// One message to send.
pub struct Message {
    /// `portone`, `stripe`, `adyen` or `ipint`.
    pub provider: &'static str,
    /// The event as the provider names it (status, type or eventCode).
    pub event: String,
    /// The ingress's endpoint for the provider.
    pub path: &'static str,
    /// The headers to send, the signature's among them.
    pub headers: Vec<(String, String)>,
    /// The body, exactly as signed.
    pub body: String,
    /// What the operator should know about how the message is trusted.
    pub note: Option<&'static str>,
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

pub(crate) fn portone(a: &PortoneArgs, cfg: &config::Config) -> anyhow::Result<Message> {
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

pub(crate) fn stripe(a: &StripeArgs, cfg: &config::Config) -> anyhow::Result<Message> {
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

pub(crate) fn adyen(a: &AdyenArgs, cfg: &config::Config) -> anyhow::Result<Message> {
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

pub(crate) fn ipint(a: &IpintArgs) -> Message {
    Message {
        provider: "ipint",
        event: a.event.to_ascii_uppercase(),
        path: "/webhooks/ipint",
        headers: vec![("content-type".into(), "application/json".into())],
        body: json!({"invoice_id": a.invoice, "status": a.event.to_ascii_uppercase()}).to_string(),
        note: Some(IPINT_NOTE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_become_the_providers_minor_units() {
        let d = |s: &str| s.parse::<Decimal>().unwrap_or_default();
        assert_eq!(minor_units(d("20.00"), 2).ok(), Some(2000));
        assert_eq!(minor_units(d("12.5"), 2).ok(), Some(1250));
        assert_eq!(minor_units(d("1000"), 0).ok(), Some(1000));
        assert_eq!(minor_units(d("1.234"), 3).ok(), Some(1234));
        // More decimals than the currency has is a usage error, never a rounding.
        let e = minor_units(d("10.5"), 0)
            .err()
            .map(|e| crate::exit::classify(&e));
        assert_eq!(e, Some(crate::exit::Exit::Usage));
    }
}
