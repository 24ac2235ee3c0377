//! PortOne (portone.cloud): the signed payment webhook, the unsigned inventory-confirmation
//! request, and the unsigned refund webhook.
//!
//! The payment webhook's `signature_hash` is `base64(HMAC-SHA256(secret, form))` where `form` is
//! nine body fields, sorted by key and form-urlencoded the way Go's `url.Values.Encode` does it
//! (spec `providers.md` §1.2). `amount` arrives as a JSON float; it is read from the exact JSON
//! text and rendered in Go's shortest round-trip form (`strconv.FormatFloat(a, 'f', -1, 64)`) for
//! the signature, and as a `Decimal` for the ledger.

#[cfg(test)]
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use rust_decimal::Decimal;

use crate::json::Obj;
use crate::{Error, mac};

/// A PortOne payment webhook (`type = payment_status`), parsed but not yet verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortOneWebhook {
    /// PortOne's transaction reference; the refund webhook's `payment_txn_ref` points at it.
    pub order_ref: String,
    /// The merchant's order reference: which stockledger order this payment belongs to.
    pub merchant_order_ref: String,
    /// The payment channel's reference (may be empty).
    pub channel_order_ref: String,
    /// The payment channel, e.g. `PAYLETTER` (signed; may be empty).
    pub channel_key: String,
    /// Country code of the transaction (signed; may be empty).
    pub country_code: String,
    /// Human-readable payment method, e.g. `Payletter Credit Card` (signed; may be empty).
    pub method_name: String,
    /// The status exactly as sent (`Success`, `Failed`, `Pending`, …).
    pub status: String,
    /// PortOne's status code as sent (`"2000"`); empty when absent.
    pub status_code: String,
    /// The amount: the JSON float's shortest round-trip decimal value.
    pub amount: Decimal,
    /// Currency as sent (ISO 4217).
    pub currency: String,
    /// The `signature_hash` body field (empty when absent, which never verifies).
    pub signature_hash: String,
    /// `environment` (`sandbox` / `live`) when present.
    pub environment: Option<String>,
    /// The merchant's PortOne key when present.
    pub merchant_key: Option<String>,
}

/// The nine fields the payment webhook signature covers (spec §1.2), borrowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentSignatureFields<'a> {
    /// `amount`; rendered in Go's shortest float form for signing.
    pub amount: Decimal,
    /// `channel_key`.
    pub channel_key: &'a str,
    /// `channel_order_ref`.
    pub channel_order_ref: &'a str,
    /// `country_code`.
    pub country_code: &'a str,
    /// `currency`.
    pub currency: &'a str,
    /// `merchant_order_ref`.
    pub merchant_order_ref: &'a str,
    /// `method_name`.
    pub method_name: &'a str,
    /// `order_ref`.
    pub order_ref: &'a str,
    /// `status`.
    pub status: &'a str,
}

/// What a payment webhook means for stock (spec part 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentAction {
    /// `status` Success → `payment.captured`.
    Captured,
    /// `status` Failed, Expired or Cancelled → `payment.voided`.
    Voided,
    /// Any other status (Pending, Initiated, unknown) → recorded, no stock effect.
    RecordedNoEffect,
}

/// PortOne's inventory-confirmation request (`POST /portone/inventory-confirmation`). Unsigned:
/// authenticate it with the source address, [`InventoryConfirmation::verify_portone_key`] and
/// the registered order's amount and currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryConfirmation {
    /// The merchant's PortOne key as sent.
    pub portone_key: String,
    /// The merchant's order reference.
    pub merchant_order_ref: String,
    /// PortOne's order reference (the payment webhook's `order_ref`).
    pub portone_order_ref: String,
    /// The amount: the JSON float's shortest round-trip decimal value.
    pub amount: Decimal,
    /// Currency as sent.
    pub currency: String,
}

/// PortOne's refund webhook. **Unsigned**: it yields an unverified `payment.refunded` and never
/// moves stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortOneRefund {
    /// PortOne's refund id.
    pub refund_id: String,
    /// Refund status as sent (`SUCCESS`, …).
    pub refund_status: String,
    /// The refunded payment's `order_ref`.
    pub payment_txn_ref: String,
    /// Refunded amount (shortest round-trip decimal of the JSON float).
    pub amount: Decimal,
    /// Currency as sent.
    pub currency: String,
    /// `full` or `partial` when present.
    pub refund_type: Option<String>,
    /// The PSP's refund id when present.
    pub psp_refund_id: Option<String>,
}

/// Parses a payment webhook body. Fields the signature covers default to `""` when absent or
/// `null` (they are then signed as `key=`); `order_ref`, `merchant_order_ref`, `status`,
/// `amount` and `currency` are required.
pub fn parse_payment_webhook(raw: &[u8]) -> Result<PortOneWebhook, Error> {
    let obj = Obj::parse_body(raw)?;
    Ok(PortOneWebhook {
        order_ref: obj.req_str("order_ref")?,
        merchant_order_ref: obj.req_str("merchant_order_ref")?,
        channel_order_ref: obj.str_or_empty("channel_order_ref")?,
        channel_key: obj.str_or_empty("channel_key")?,
        country_code: obj.str_or_empty("country_code")?,
        method_name: obj.str_or_empty("method_name")?,
        status: obj.req_str("status")?,
        status_code: obj.str_or_empty("status_code")?,
        amount: req_amount(&obj, "amount")?,
        currency: obj.req_str("currency")?,
        signature_hash: obj.str_or_empty("signature_hash")?,
        environment: obj.opt_str("environment")?,
        merchant_key: obj.opt_str("merchant_key")?,
    })
}

impl PortOneWebhook {
    /// The nine signed fields of this webhook.
    pub fn signature_fields(&self) -> PaymentSignatureFields<'_> {
        PaymentSignatureFields {
            amount: self.amount,
            channel_key: &self.channel_key,
            channel_order_ref: &self.channel_order_ref,
            country_code: &self.country_code,
            currency: &self.currency,
            merchant_order_ref: &self.merchant_order_ref,
            method_name: &self.method_name,
            order_ref: &self.order_ref,
            status: &self.status,
        }
    }

    /// Dedupe key `portone:{order_ref}:{status}`, values exactly as sent.
    ///
    /// Built from signed fields only: `status_code` (and every other field outside the
    /// signature) can be changed by anyone replaying a captured webhook, so it must not make
    /// a replay a new event (`docs/decisions.md` §29). Two webhooks of one payment with the
    /// same `status` say the same thing for stock whatever their code.
    pub fn dedupe_key(&self) -> String {
        format!("portone:{}:{}", self.order_ref, self.status)
    }

    /// Classifies the webhook by `status` (case-insensitive; `Canceled` is accepted as a
    /// spelling of `Cancelled`).
    pub fn classify(&self) -> PaymentAction {
        classify_status(&self.status)
    }
}

/// Classifies a payment webhook `status` value (spec part 1).
pub fn classify_status(status: &str) -> PaymentAction {
    match status.to_ascii_lowercase().as_str() {
        "success" => PaymentAction::Captured,
        "failed" | "expired" | "cancelled" | "canceled" => PaymentAction::Voided,
        _ => PaymentAction::RecordedNoEffect,
    }
}

/// The exact string that is signed: the nine fields sorted by key and form-urlencoded like Go's
/// `url.Values.Encode` (space as `+`, `*` as `%2A`, `~` kept, upper-case hex).
pub fn payment_string_to_sign(fields: &PaymentSignatureFields<'_>) -> String {
    let amount = go_float_text(&fields.amount);
    // Already in ascending byte order of the keys, as `url.Values.Encode` sorts them.
    let pairs: [(&str, &str); 9] = [
        ("amount", &amount),
        ("channel_key", fields.channel_key),
        ("channel_order_ref", fields.channel_order_ref),
        ("country_code", fields.country_code),
        ("currency", fields.currency),
        ("merchant_order_ref", fields.merchant_order_ref),
        ("method_name", fields.method_name),
        ("order_ref", fields.order_ref),
        ("status", fields.status),
    ];
    let mut out = String::new();
    for (i, (key, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        go_query_escape(key, &mut out);
        out.push('=');
        go_query_escape(value, &mut out);
    }
    out
}

/// Computes a payment webhook's `signature_hash` (standard base64 with padding). Used by the
/// operator CLI to sign test webhooks, and by tests.
pub fn sign_payment_webhook(fields: &PaymentSignatureFields<'_>, secret_key: &str) -> String {
    let message = payment_string_to_sign(fields);
    BASE64.encode(mac::hmac_sha256(secret_key.as_bytes(), message.as_bytes()))
}

/// Verifies a payment webhook's `signature_hash` against the PortOne secret key, in constant
/// time. An empty secret is [`Error::MissingSecret`]; an absent or wrong hash is
/// [`Error::BadSignature`].
pub fn verify_payment_webhook(webhook: &PortOneWebhook, secret_key: &str) -> Result<(), Error> {
    if secret_key.is_empty() {
        return Err(Error::MissingSecret);
    }
    if webhook.signature_hash.is_empty() {
        return Err(Error::BadSignature);
    }
    let expected = sign_payment_webhook(&webhook.signature_fields(), secret_key);
    if mac::ct_eq(expected.as_bytes(), webhook.signature_hash.as_bytes()) {
        Ok(())
    } else {
        Err(Error::BadSignature)
    }
}

/// Parses an inventory-confirmation request body; all five documented fields are required.
pub fn parse_inventory_confirmation(raw: &[u8]) -> Result<InventoryConfirmation, Error> {
    let obj = Obj::parse_body(raw)?;
    Ok(InventoryConfirmation {
        portone_key: obj.req_str("portone_key")?,
        merchant_order_ref: obj.req_str("merchant_order_ref")?,
        portone_order_ref: obj.req_str("portone_order_ref")?,
        amount: req_amount(&obj, "amount")?,
        currency: obj.req_str("currency")?,
    })
}

impl InventoryConfirmation {
    /// Dedupe key `portone:confirm:{portone_order_ref}`.
    pub fn dedupe_key(&self) -> String {
        format!("portone:confirm:{}", self.portone_order_ref)
    }

    /// Compares `portone_key` with the configured key in constant time. An empty configured key
    /// is [`Error::MissingSecret`]; a mismatch is [`Error::BadCredentials`].
    pub fn verify_portone_key(&self, expected_key: &str) -> Result<(), Error> {
        if expected_key.is_empty() {
            return Err(Error::MissingSecret);
        }
        if mac::ct_eq(self.portone_key.as_bytes(), expected_key.as_bytes()) {
            Ok(())
        } else {
            Err(Error::BadCredentials)
        }
    }
}

/// Parses a refund webhook body; `refund_id`, `refund_status`, `payment_txn_ref`, `amount` and
/// `currency` are required.
pub fn parse_refund_webhook(raw: &[u8]) -> Result<PortOneRefund, Error> {
    let obj = Obj::parse_body(raw)?;
    Ok(PortOneRefund {
        refund_id: obj.req_str("refund_id")?,
        refund_status: obj.req_str("refund_status")?,
        payment_txn_ref: obj.req_str("payment_txn_ref")?,
        amount: req_amount(&obj, "amount")?,
        currency: obj.req_str("currency")?,
        refund_type: obj.opt_str("refund_type")?,
        psp_refund_id: obj.opt_str("psp_refund_id")?,
    })
}

impl PortOneRefund {
    /// Dedupe key `portone:refund:{refund_id}:{refund_status}`.
    pub fn dedupe_key(&self) -> String {
        format!("portone:refund:{}:{}", self.refund_id, self.refund_status)
    }
}

/// Reads a required, non-negative JSON-number amount from its exact text.
fn req_amount(obj: &Obj<'_>, key: &str) -> Result<Decimal, Error> {
    let text = obj
        .opt_number_text(key)?
        .ok_or_else(|| Error::malformed(obj.path_of(key), "missing"))?;
    amount_from_json_number(text).map_err(|message| Error::malformed(obj.path_of(key), message))
}

/// Converts a JSON number's text to the `Decimal` of the `float64` PortOne holds: the text is
/// parsed to the nearest `f64` (correctly rounded) and that float's shortest round-trip decimal
/// is taken, which is also exactly what the signature covers.
fn amount_from_json_number(text: &str) -> Result<Decimal, &'static str> {
    let value: f64 = text.parse().map_err(|_| "not a number")?;
    if !value.is_finite() {
        return Err("out of range");
    }
    if value < 0.0 {
        return Err("must not be negative");
    }
    // Exact or refused: `from_str` would round a tiny float (1e-31) to 0.
    crate::money::parse_decimal_text(&format!("{value}"))
        .ok_or("out of range, or more digits than an exact decimal holds")
}

/// Go's `strconv.FormatFloat(float64(d), 'f', -1, 64)`: the shortest decimal that round-trips
/// the `f64`, never in exponent form. Rust's `Display` for `f64` has exactly this contract.
fn go_float_text(amount: &Decimal) -> String {
    match amount.to_string().parse::<f64>() {
        Ok(value) => format!("{value}"),
        // Decimal's text is always a plain decimal, which `f64` parses; kept total anyway.
        Err(_) => amount.to_string(),
    }
}

/// Go's `url.QueryEscape` (= Python's `quote_plus`), appended to `out`.
fn go_query_escape(value: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &byte in value.as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0x0f)]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "PORTONE_SECRET";

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap_or_default()
    }

    fn p1() -> PaymentSignatureFields<'static> {
        PaymentSignatureFields {
            amount: dec("100.25"),
            channel_key: "channel_key",
            channel_order_ref: "channel_order_ref",
            country_code: "country_code",
            currency: "currency",
            merchant_order_ref: "merchant_order_ref",
            method_name: "method_name",
            order_ref: "order_ref",
            status: "status",
        }
    }

    #[test]
    fn vector_p1_doc_sample_inputs() {
        let f = p1();
        assert_eq!(
            payment_string_to_sign(&f),
            "amount=100.25&channel_key=channel_key&channel_order_ref=channel_order_ref&country_code=country_code&currency=currency&merchant_order_ref=merchant_order_ref&method_name=method_name&order_ref=order_ref&status=status"
        );
        assert_eq!(
            sign_payment_webhook(&f, SECRET),
            "uuv9grusSAm8GGTTEyPXIi+pPtI/jfkSmq3MbDbaDx8="
        );
    }

    const P2_BODY: &str = r#"{"currency":"USD","amount":500,"order_ref":"2mbbExY77pp8iC0AQ1ucWymnd3c",
      "channel_order_ref":"20240926HULUNYGP6MA2","merchant_order_ref":"2mbbDi9wX3wAgLUDCnRMbQwkwZm_1",
      "country_code":"US","status":"Success","channel_key":"PAYLETTER",
      "method_name":"Payletter Credit Card","method_key":"PAYLETTER_CREDIT_CARD",
      "signature_hash":"s1WPfsDVVGy/1hBr8ZdcR13GLSYNDEq5oph5ryyOsc8=",
      "status_code":"2000","status_reason":"SUCCESS","environment":"sandbox",
      "is_refund_allowed":true,"cross_border_data":{},"merchant_key":"qcFJvupbcbdcyNFg"}"#;

    #[test]
    fn vector_p2_sample_payload_parses_and_verifies() {
        let hook = parse_payment_webhook(P2_BODY.as_bytes());
        let Ok(hook) = hook else { panic!("{hook:?}") };
        assert_eq!(
            payment_string_to_sign(&hook.signature_fields()),
            "amount=500&channel_key=PAYLETTER&channel_order_ref=20240926HULUNYGP6MA2&country_code=US&currency=USD&merchant_order_ref=2mbbDi9wX3wAgLUDCnRMbQwkwZm_1&method_name=Payletter+Credit+Card&order_ref=2mbbExY77pp8iC0AQ1ucWymnd3c&status=Success"
        );
        assert_eq!(verify_payment_webhook(&hook, SECRET), Ok(()));
        assert_eq!(
            verify_payment_webhook(&hook, "other"),
            Err(Error::BadSignature)
        );
        assert_eq!(verify_payment_webhook(&hook, ""), Err(Error::MissingSecret));
        assert_eq!(hook.amount, dec("500"));
        assert_eq!(hook.classify(), PaymentAction::Captured);
        assert_eq!(
            hook.dedupe_key(),
            "portone:2mbbExY77pp8iC0AQ1ucWymnd3c:Success"
        );
        assert_eq!(hook.merchant_order_ref, "2mbbDi9wX3wAgLUDCnRMbQwkwZm_1");
    }

    const P3_BODY: &str = r#"{"amount":1234.50,"channel_key":"PAYLETTER","channel_order_ref":"",
      "country_code":"KR","currency":"KRW","merchant_order_ref":"order#1/a b~c*",
      "method_name":"테스트카드","order_ref":"2mbbExY77pp8iC0AQ1ucWymnd3c","status":"Failed",
      "status_code":"4072","signature_hash":"99EE6ZimzlFR7LNIwewgRqS2jQ1jj/Bb53Wtg/jItoY="}"#;

    #[test]
    fn vector_p3_encoding_edge_cases() {
        let hook = parse_payment_webhook(P3_BODY.as_bytes());
        let Ok(hook) = hook else { panic!("{hook:?}") };
        assert_eq!(
            payment_string_to_sign(&hook.signature_fields()),
            "amount=1234.5&channel_key=PAYLETTER&channel_order_ref=&country_code=KR&currency=KRW&merchant_order_ref=order%231%2Fa+b~c%2A&method_name=%ED%85%8C%EC%8A%A4%ED%8A%B8%EC%B9%B4%EB%93%9C&order_ref=2mbbExY77pp8iC0AQ1ucWymnd3c&status=Failed"
        );
        assert_eq!(verify_payment_webhook(&hook, SECRET), Ok(()));
        assert_eq!(hook.classify(), PaymentAction::Voided);
        assert_eq!(hook.amount, dec("1234.5"));
    }

    #[test]
    fn the_dedupe_key_is_made_of_signed_fields_only() {
        let hook = |body: &str| match parse_payment_webhook(body.as_bytes()) {
            Ok(h) => h,
            Err(e) => panic!("{e:?}"),
        };
        let genuine = hook(P2_BODY);
        // A replay with fields outside the signature changed still verifies...
        let replay = hook(
            &P2_BODY
                .replace(r#""status_code":"2000""#, r#""status_code":"2001""#)
                .replace(r#""status_reason":"SUCCESS""#, r#""status_reason":"OTHER""#)
                .replace(r#""environment":"sandbox""#, r#""environment":"live""#),
        );
        assert_eq!(verify_payment_webhook(&replay, SECRET), Ok(()));
        // ...and is the same delivery.
        assert_eq!(replay.dedupe_key(), genuine.dedupe_key());
        // Another signed status of the same payment is another event.
        assert_eq!(hook(P3_BODY).order_ref, genuine.order_ref);
        assert_ne!(hook(P3_BODY).dedupe_key(), genuine.dedupe_key());
        assert_eq!(
            hook(P3_BODY).dedupe_key(),
            "portone:2mbbExY77pp8iC0AQ1ucWymnd3c:Failed"
        );
    }

    #[test]
    fn absent_signed_field_is_signed_as_empty() {
        let body = P3_BODY.replace(r#""channel_order_ref":"","#, "");
        let hook = parse_payment_webhook(body.as_bytes());
        assert_eq!(hook.map(|h| verify_payment_webhook(&h, SECRET)), Ok(Ok(())));
    }

    #[test]
    fn go_float_forms() {
        for (text, go) in [
            ("500", "500"),
            ("500.0", "500"),
            ("100.25", "100.25"),
            ("100.50", "100.5"),
            ("0.1", "0.1"),
            ("1e2", "100"),
            ("1.5E+3", "1500"),
            ("0.0000001", "0.0000001"),
            ("123456789.12", "123456789.12"),
            ("0.30000000000000004", "0.30000000000000004"),
        ] {
            let d = amount_from_json_number(text);
            assert_eq!(d.map(|d| go_float_text(&d)), Ok(go.to_owned()), "{text}");
        }
        assert!(amount_from_json_number("-1").is_err());
        assert!(amount_from_json_number("1e400").is_err());
        assert!(amount_from_json_number("1e40").is_err());
    }

    #[test]
    fn status_classification() {
        assert_eq!(classify_status("Success"), PaymentAction::Captured);
        assert_eq!(classify_status("Failed"), PaymentAction::Voided);
        assert_eq!(classify_status("Expired"), PaymentAction::Voided);
        assert_eq!(classify_status("Cancelled"), PaymentAction::Voided);
        assert_eq!(classify_status("FAILED"), PaymentAction::Voided);
        assert_eq!(classify_status("Pending"), PaymentAction::RecordedNoEffect);
        assert_eq!(
            classify_status("Initiated"),
            PaymentAction::RecordedNoEffect
        );
        assert_eq!(classify_status("Refunded"), PaymentAction::RecordedNoEffect);
    }

    #[test]
    fn malformed_fields_are_named() {
        let err = |body: &str| match parse_payment_webhook(body.as_bytes()) {
            Err(Error::Malformed { field, .. }) => field,
            other => panic!("{other:?}"),
        };
        assert_eq!(err("not json"), "body");
        assert_eq!(
            err(&P2_BODY.replace(r#""amount":500"#, r#""amount":"500""#)),
            "amount"
        );
        assert_eq!(
            err(&P2_BODY.replace(r#""status":"Success""#, r#""status":7"#)),
            "status"
        );
        assert_eq!(
            err(&P2_BODY.replace(r#""currency":"USD","#, "")),
            "currency"
        );
        assert_eq!(
            err(&P2_BODY.replace(r#""amount":500"#, r#""amount":-5"#)),
            "amount"
        );
    }

    #[test]
    fn inventory_confirmation_seed() {
        let body = br#"{"portone_key":"merchant_key_123","merchant_order_ref":"order_ref_456",
            "portone_order_ref":"portone_order_ref_789","amount":100.50,"currency":"USD"}"#;
        let conf = parse_inventory_confirmation(body);
        let Ok(conf) = conf else { panic!("{conf:?}") };
        assert_eq!(conf.amount, dec("100.5"));
        assert_eq!(conf.merchant_order_ref, "order_ref_456");
        assert_eq!(conf.dedupe_key(), "portone:confirm:portone_order_ref_789");
        assert_eq!(conf.verify_portone_key("merchant_key_123"), Ok(()));
        assert_eq!(
            conf.verify_portone_key("merchant_key_124"),
            Err(Error::BadCredentials)
        );
        assert_eq!(conf.verify_portone_key(""), Err(Error::MissingSecret));
    }

    #[test]
    fn refund_webhook_sample() {
        let body = br#"{"refund_date":"2024-09-26 10:42:24.650023 +0000 UTC","refund_id":"oKYR4vZ7ddvEAbfm9U9w2c",
          "psp_refund_id":"281m16unk3u60obtagljvxhyn","amount":500,"currency":"JPY","refund_status":"SUCCESS",
          "refund_type":"full","refund_reason":"duplicate","merchant_id":"6539",
          "description":"Refund for transaction oKYR4vZ7ddvEAbfm9U9w2c","payment_txn_ref":"2mbZeehV4ZhkLTwVcL2fHukBg4J",
          "payment_channel":"KOMOJU","payment_method":"Alipay wallet via KOMOJU"}"#;
        let refund = parse_refund_webhook(body);
        let Ok(refund) = refund else {
            panic!("{refund:?}")
        };
        assert_eq!(
            refund.dedupe_key(),
            "portone:refund:oKYR4vZ7ddvEAbfm9U9w2c:SUCCESS"
        );
        assert_eq!(refund.payment_txn_ref, "2mbZeehV4ZhkLTwVcL2fHukBg4J");
        assert_eq!(refund.amount, dec("500"));
        assert_eq!(refund.refund_type.as_deref(), Some("full"));
    }
}
