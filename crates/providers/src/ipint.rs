//! iPint (crypto payments): request signing for `GET /invoice`, the unsigned callback, the
//! invoice answer, and its classification.
//!
//! The callback is never trusted: it only names an invoice to verify. The signed `GET /invoice`
//! answer decides (spec `providers.md` §2 and part 1). Request signature (§2.1): lowercase hex of
//! `HMAC-SHA384(api_secret_utf8, "/api/" + nonce + path_with_query)`.

use rust_decimal::Decimal;

use crate::json::Obj;
use crate::money::parse_decimal_text;
use crate::{Error, mac};

/// The `signature` header for an authenticated GET request: lowercase hex of
/// `HMAC-SHA384(api_secret, "/api/" + nonce + path_with_query)`, where `path_with_query` is e.g.
/// `/invoice?id=…` (no body for GET).
pub fn sign_request(api_secret: &str, nonce: &str, path_with_query: &str) -> String {
    let message = format!("/api/{nonce}{path_with_query}");
    hex::encode(mac::hmac_sha384(api_secret.as_bytes(), message.as_bytes()))
}

/// The callback body: only a trigger to verify `invoice_id`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpintCallback {
    /// The invoice (= `/checkout` `session_id`) to verify.
    pub invoice_id: String,
    /// The status the callback claims (`COMPLETED`/`FAILED`); untrusted, for logs only.
    pub claimed_status: Option<String>,
}

/// The parts of a `GET /invoice` answer (`{"data":{…}}`) that decide a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpintInvoice {
    /// `invoice_id`.
    pub invoice_id: String,
    /// `transaction_status` exactly as sent (`CHECKING`, `PROCESSING`, `COMPLETED`, …).
    pub transaction_status: String,
    /// `blockchain_transaction_status`, when present.
    pub blockchain_transaction_status: Option<String>,
    /// `blockchain_confirmations` (`"n/m"`), when present.
    pub blockchain_confirmations: Option<String>,
    /// `local_currency_code`, when present.
    pub local_currency_code: Option<String>,
    /// `transaction_crypto` (e.g. `BCH`), when present.
    pub transaction_crypto: Option<String>,
    /// `invoice_amount_in_local_currency`.
    pub invoice_amount_in_local_currency: Option<Decimal>,
    /// `invoice_amount_in_usd`.
    pub invoice_amount_in_usd: Option<Decimal>,
    /// `invoice_crypto_amount`.
    pub invoice_crypto_amount: Option<Decimal>,
    /// `received_amount_in_local_currency`.
    pub received_amount_in_local_currency: Option<Decimal>,
    /// `received_amount_in_usd`.
    pub received_amount_in_usd: Option<Decimal>,
    /// `received_crypto_amount`.
    pub received_crypto_amount: Option<Decimal>,
}

/// What a verified invoice means (spec part 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpintAction {
    /// COMPLETED and every received amount ≥ its invoice amount → `payment.captured`.
    Captured,
    /// COMPLETED but some received amount is short or missing → exception `amount_mismatch`.
    AmountMismatch,
    /// FAILED or CANCELLED → `payment.voided`.
    Voided,
    /// CHECKING, PROCESSING or an unknown status → verify again later with backoff.
    VerifyLater,
}

/// Parses the callback body; `invoice_id` is required, extra members are ignored.
pub fn parse_callback(raw: &[u8]) -> Result<IpintCallback, Error> {
    let obj = Obj::parse_body(raw)?;
    Ok(IpintCallback {
        invoice_id: obj.req_str("invoice_id")?,
        claimed_status: obj.opt_str("status")?,
    })
}

/// Parses a `GET /invoice` answer. Amounts are decimal strings (numbers are accepted too, read
/// from their exact text); an empty string counts as absent.
pub fn parse_invoice(raw: &[u8]) -> Result<IpintInvoice, Error> {
    let body = Obj::parse_body(raw)?;
    let data = body.req_obj("data")?;
    let amount = |key: &str| amount_field(&data, key);
    Ok(IpintInvoice {
        invoice_id: data.req_str("invoice_id")?,
        transaction_status: data.req_str("transaction_status")?,
        blockchain_transaction_status: data.opt_str("blockchain_transaction_status")?,
        blockchain_confirmations: data.opt_str("blockchain_confirmations")?,
        local_currency_code: data.opt_str("local_currency_code")?,
        transaction_crypto: data.opt_str("transaction_crypto")?,
        invoice_amount_in_local_currency: amount("invoice_amount_in_local_currency")?,
        invoice_amount_in_usd: amount("invoice_amount_in_usd")?,
        invoice_crypto_amount: amount("invoice_crypto_amount")?,
        received_amount_in_local_currency: amount("received_amount_in_local_currency")?,
        received_amount_in_usd: amount("received_amount_in_usd")?,
        received_crypto_amount: amount("received_crypto_amount")?,
    })
}

/// Reads a decimal amount given as a string or a number.
fn amount_field(obj: &Obj<'_>, key: &str) -> Result<Option<Decimal>, Error> {
    let text = match obj.raw(key) {
        None => return Ok(None),
        Some(raw) if raw.starts_with('"') => match obj.opt_str(key)? {
            Some(s) if s.trim().is_empty() => return Ok(None),
            Some(s) => s,
            None => return Ok(None),
        },
        Some(_) => match obj.opt_number_text(key)? {
            Some(t) => t.to_owned(),
            None => return Ok(None),
        },
    };
    parse_decimal_text(text.trim())
        .map(Some)
        .ok_or_else(|| Error::malformed(obj.path_of(key), "expected a decimal amount"))
}

impl IpintInvoice {
    /// Dedupe key `ipint:{invoice_id}:{transaction_status}` (the verified status, as sent).
    pub fn dedupe_key(&self) -> String {
        format!("ipint:{}:{}", self.invoice_id, self.transaction_status)
    }

    /// True when all three received amounts are present and at least their invoice amounts.
    pub fn fully_paid(&self) -> bool {
        let covers = |received: Option<Decimal>, invoiced: Option<Decimal>| matches!((received, invoiced), (Some(r), Some(i)) if r >= i);
        covers(
            self.received_amount_in_local_currency,
            self.invoice_amount_in_local_currency,
        ) && covers(self.received_amount_in_usd, self.invoice_amount_in_usd)
            && covers(self.received_crypto_amount, self.invoice_crypto_amount)
    }
}

/// Maps a verified invoice onto an action (status matched case-insensitively).
pub fn classify(invoice: &IpintInvoice) -> IpintAction {
    match invoice.transaction_status.to_ascii_uppercase().as_str() {
        "COMPLETED" if invoice.fully_paid() => IpintAction::Captured,
        "COMPLETED" => IpintAction::AmountMismatch,
        "FAILED" | "CANCELLED" | "CANCELED" => IpintAction::Voided,
        _ => IpintAction::VerifyLater,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vector_2_4() {
        assert_eq!(
            sign_request(
                "test_api_secret",
                "1633960704",
                "/invoice?id=voZ3pYmiE16FLaSfFmytouwFfcjR4Zom8"
            ),
            "a06b2dcda389d996a30a2b8da5baec8a9bf94a59ebc0bd92d1c443a38448b9063b81579a09a3fbc31c6b0e628b4854ef"
        );
    }

    const INVOICE: &str = r##"{"data":{"blockchain_confirmations":"0/6","blockchain_transaction_status":"PENDING",
      "depositor_email_id":"user@email.id","invoice_amount_in_local_currency":"4999.65",
      "invoice_amount_in_usd":"67.58","invoice_creation_time":"1633960704","invoice_crypto_amount":"0.11065324",
      "invoice_id":"voZ3pYmiE16FLaSfFmytouwFfcjR4Zom8","local_currency_code":"INR",
      "received_amount_in_local_currency":"4999.65","received_amount_in_usd":"67.58",
      "received_crypto_amount":"0.11065324","transaction_crypto":"BCH","transaction_hash":"",
      "transaction_onclick":"","transaction_status":"CHECKING","transaction_time":"",
      "wallet_address":"qrk2dnecws4c6fm2av0mkuf5g4d4wm7lrcr0k2lmrh"},
     "user_data":{"company_name":"merchant-name","depositor_id":"user@email.id",
      "email_id":"user.receipt@email.id","website":"#"}}"##;

    fn invoice(body: &str) -> IpintInvoice {
        match parse_invoice(body.as_bytes()) {
            Ok(i) => i,
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn readme_invoice_sample() {
        let inv = invoice(INVOICE);
        assert_eq!(inv.invoice_id, "voZ3pYmiE16FLaSfFmytouwFfcjR4Zom8");
        assert_eq!(
            inv.invoice_crypto_amount.map(|d| d.to_string()).as_deref(),
            Some("0.11065324")
        );
        assert_eq!(classify(&inv), IpintAction::VerifyLater);
        assert_eq!(
            inv.dedupe_key(),
            "ipint:voZ3pYmiE16FLaSfFmytouwFfcjR4Zom8:CHECKING"
        );
    }

    #[test]
    fn classification() {
        let with = |status: &str| {
            invoice(&INVOICE.replace(
                r#""transaction_status":"CHECKING""#,
                &format!(r#""transaction_status":"{status}""#),
            ))
        };
        assert_eq!(classify(&with("COMPLETED")), IpintAction::Captured);
        assert_eq!(classify(&with("PROCESSING")), IpintAction::VerifyLater);
        assert_eq!(classify(&with("FAILED")), IpintAction::Voided);
        assert_eq!(classify(&with("CANCELLED")), IpintAction::Voided);
        assert_eq!(classify(&with("SOMETHING_NEW")), IpintAction::VerifyLater);
        let short = INVOICE
            .replace(
                r#""transaction_status":"CHECKING""#,
                r#""transaction_status":"COMPLETED""#,
            )
            .replace(
                r#""received_crypto_amount":"0.11065324""#,
                r#""received_crypto_amount":"0.11065323""#,
            );
        assert_eq!(classify(&invoice(&short)), IpintAction::AmountMismatch);
        let over = INVOICE
            .replace(
                r#""transaction_status":"CHECKING""#,
                r#""transaction_status":"COMPLETED""#,
            )
            .replace(
                r#""received_amount_in_usd":"67.58""#,
                r#""received_amount_in_usd":67.60"#,
            );
        assert_eq!(classify(&invoice(&over)), IpintAction::Captured);
        let missing = INVOICE
            .replace(
                r#""transaction_status":"CHECKING""#,
                r#""transaction_status":"COMPLETED""#,
            )
            .replace(
                r#""received_amount_in_usd":"67.58""#,
                r#""received_amount_in_usd":"""#,
            );
        assert_eq!(classify(&invoice(&missing)), IpintAction::AmountMismatch);
    }

    #[test]
    fn callback() {
        let cb = parse_callback(br#"{"invoice_id":"abc","status":"COMPLETED","extra":1}"#);
        assert_eq!(
            cb.map(|c| (c.invoice_id, c.claimed_status)),
            Ok(("abc".into(), Some("COMPLETED".into())))
        );
        assert!(
            matches!(parse_callback(br#"{"status":"FAILED"}"#), Err(Error::Malformed { field, .. }) if field == "invoice_id")
        );
    }

    #[test]
    fn bad_amount_is_named() {
        let bad = INVOICE.replace(
            r#""invoice_amount_in_usd":"67.58""#,
            r#""invoice_amount_in_usd":"sixty""#,
        );
        assert!(
            matches!(parse_invoice(bad.as_bytes()), Err(Error::Malformed { field, .. }) if field == "data.invoice_amount_in_usd")
        );
        assert!(
            matches!(parse_invoice(b"{}"), Err(Error::Malformed { field, .. }) if field == "data")
        );
    }
}
