//! Adyen standard webhooks (notifications): batch parsing, per-item HMAC verification, HTTP
//! Basic auth, and classification.
//!
//! Each `NotificationRequestItem` is signed (spec `providers.md` §4.2):
//! `base64(HMAC-SHA256(hex_decode(key), s))` where `s` is `pspReference:originalReference:
//! merchantAccountCode:merchantReference:value:currency:eventCode:success`, joined by `:` with no
//! escaping, missing values as `""`. The signature is `additionalData.hmacSignature`. A batch is
//! accepted only if every item verifies.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::json::Obj;
use crate::money::MinorAmount;
use crate::{Error, mac};

/// Upper bound on items in one batch (Adyen sends one per request; anything large is garbage).
pub const MAX_ITEMS_PER_BATCH: usize = 100;

/// Adyen's zero-decimal currencies (docs.adyen.com/development-resources/currency-codes).
/// Note CLP is two-decimal and CVE/IDR zero-decimal at Adyen, unlike ISO 4217.
const ZERO_DECIMAL: &[&str] = &[
    "CVE", "DJF", "GNF", "IDR", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV", "XAF",
    "XOF", "XPF",
];

/// Adyen's three-decimal currencies.
const THREE_DECIMAL: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];

/// Number of decimals Adyen uses for `currency`'s minor unit; two for any currency not listed.
pub fn currency_exponent(currency: &str) -> u32 {
    let upper = currency.to_ascii_uppercase();
    if ZERO_DECIMAL.contains(&upper.as_str()) {
        0
    } else if THREE_DECIMAL.contains(&upper.as_str()) {
        3
    } else {
        2
    }
}

/// A notification batch: `{"live":"…","notificationItems":[{"NotificationRequestItem":{…}}]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdyenBatch {
    /// `live == "true"`.
    pub live: bool,
    /// The items, in order (at least one).
    pub items: Vec<AdyenItem>,
}

/// One `NotificationRequestItem`, values kept exactly as sent where the signature covers them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdyenItem {
    /// `pspReference` (required): the payment's, or the modification's own, reference.
    pub psp_reference: String,
    /// `originalReference` (the payment's reference on modifications), `""` when absent.
    pub original_reference: String,
    /// `merchantAccountCode`, `""` when absent.
    pub merchant_account_code: String,
    /// `merchantReference`: the stockledger order reference; `""` when absent.
    pub merchant_reference: String,
    /// `eventCode` (required), e.g. `AUTHORISATION`.
    pub event_code: String,
    /// `success` (required): `"true"` or `"false"`, parsed.
    pub success: bool,
    /// `amount`, converted by [`currency_exponent`]; `None` when absent.
    pub amount: Option<MinorAmount>,
    /// `amount.currency` exactly as sent (signed as is), `""` when absent.
    pub currency_raw: String,
    /// `additionalData.hmacSignature`, when present.
    pub hmac_signature: Option<String>,
    /// The string members of `additionalData` (e.g. `modification.action`).
    pub additional_data: BTreeMap<String, String>,
    /// `eventDate`, when present.
    pub event_date: Option<String>,
    /// `reason`, when present (refusal reason on `success=false`).
    pub reason: Option<String>,
    /// `paymentMethod` (`visa`, `mc`, `klarna`, `klarna_account`), when present as a
    /// string: it chooses an authorization's reservation TTL. Not signed; any other JSON
    /// type is read as absent rather than refusing the notification.
    pub payment_method: Option<String>,
}

/// Outcome of a closed chargeback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargebackOutcome {
    /// `CHARGEBACK_REVERSED`, `PREARBITRATION_WON`.
    Won,
    /// `PREARBITRATION_LOST`.
    Lost,
}

/// What an Adyen item means (spec part 1 table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdyenAction {
    /// `AUTHORISATION` success=true → `payment.authorized`.
    Authorized,
    /// `CAPTURE` success=true → `payment.captured`.
    Captured,
    /// `AUTHORISATION` success=false; `CAPTURE_FAILED`, `CANCELLATION`, `EXPIRE`,
    /// `OFFER_CLOSED`, `TECHNICAL_CANCEL`, `CANCEL_OR_REFUND`(cancel) with success=true →
    /// `payment.voided`.
    Voided,
    /// `REFUND`, `CANCEL_OR_REFUND`(refund) with success=true → `payment.refunded`.
    Refunded,
    /// `CHARGEBACK`, `NOTIFICATION_OF_CHARGEBACK`, `SECOND_CHARGEBACK` → `chargeback.opened`.
    ChargebackOpened,
    /// `CHARGEBACK_REVERSED`, `PREARBITRATION_WON` / `PREARBITRATION_LOST` → `chargeback.closed`.
    ChargebackClosed(ChargebackOutcome),
    /// A known code whose modification failed (success=false), or `CANCEL_OR_REFUND` without a
    /// recognised `modification.action`: recorded, no stock effect.
    RecordedNoEffect,
    /// Any other event code: acknowledged and recorded as ignored.
    Ignored,
}

/// Parses a notification batch. Refuses an empty batch or more than [`MAX_ITEMS_PER_BATCH`].
pub fn parse_batch(raw: &[u8]) -> Result<AdyenBatch, Error> {
    let body = Obj::parse_body(raw)?;
    let live = body.opt_str("live")?.as_deref() == Some("true");
    let wrappers = body.req_obj_array("notificationItems")?;
    if wrappers.is_empty() {
        return Err(Error::malformed("notificationItems", "empty batch"));
    }
    if wrappers.len() > MAX_ITEMS_PER_BATCH {
        return Err(Error::malformed("notificationItems", "too many items"));
    }
    let items = wrappers
        .iter()
        .map(|wrapper| parse_item(&wrapper.req_obj("NotificationRequestItem")?))
        .collect::<Result<Vec<_>, Error>>()?;
    Ok(AdyenBatch { live, items })
}

fn parse_item(item: &Obj<'_>) -> Result<AdyenItem, Error> {
    let success = match item.req_str("success")?.as_str() {
        "true" => true,
        "false" => false,
        _ => {
            return Err(Error::malformed(
                item.path_of("success"),
                "expected \"true\" or \"false\"",
            ));
        }
    };
    let (amount, currency_raw) = match item.opt_obj("amount")? {
        None => (None, String::new()),
        Some(amount) => {
            let currency = amount.req_str("currency")?;
            let minor = amount
                .opt_i64("value")?
                .ok_or_else(|| Error::malformed(amount.path_of("value"), "missing"))?;
            let parsed = MinorAmount::new(minor, &currency, currency_exponent(&currency))
                .map_err(|_| Error::malformed(amount.path_of("value"), "out of range"))?;
            (Some(parsed), currency)
        }
    };
    let (hmac_signature, additional_data) = match item.opt_obj("additionalData")? {
        None => (None, BTreeMap::new()),
        Some(extra) => (extra.opt_str("hmacSignature")?, extra.string_members()),
    };
    Ok(AdyenItem {
        psp_reference: item.req_str("pspReference")?,
        original_reference: item.str_or_empty("originalReference")?,
        merchant_account_code: item.str_or_empty("merchantAccountCode")?,
        merchant_reference: item.str_or_empty("merchantReference")?,
        event_code: item.req_str("eventCode")?,
        success,
        amount,
        currency_raw,
        hmac_signature,
        additional_data,
        event_date: item.opt_str("eventDate")?,
        reason: item.opt_str("reason")?,
        payment_method: item.opt_str("paymentMethod").ok().flatten(),
    })
}

/// Decodes an HMAC key as shown in the Customer Area (hex). Empty → [`Error::MissingSecret`].
pub fn parse_hmac_key(hex_key: &str) -> Result<Vec<u8>, Error> {
    let trimmed = hex_key.trim();
    if trimmed.is_empty() {
        return Err(Error::MissingSecret);
    }
    hex::decode(trimmed).map_err(|e| Error::malformed("adyen_hmac_key", e.to_string()))
}

impl AdyenItem {
    /// The `success` value as signed: `"true"` or `"false"`.
    pub fn success_str(&self) -> &'static str {
        if self.success { "true" } else { "false" }
    }

    /// The exact string the HMAC covers.
    pub fn string_to_sign(&self) -> String {
        let value = self
            .amount
            .as_ref()
            .map(|a| a.minor.to_string())
            .unwrap_or_default();
        [
            self.psp_reference.as_str(),
            &self.original_reference,
            &self.merchant_account_code,
            &self.merchant_reference,
            &value,
            &self.currency_raw,
            &self.event_code,
            self.success_str(),
        ]
        .join(":")
    }

    /// Dedupe key `adyen:{pspReference}:{eventCode}:{success}`.
    pub fn dedupe_key(&self) -> String {
        format!(
            "adyen:{}:{}:{}",
            self.psp_reference,
            self.event_code,
            self.success_str()
        )
    }
}

/// Computes an item's `hmacSignature` under a decoded key (tests, operator CLI).
pub fn sign_item(item: &AdyenItem, key: &[u8]) -> String {
    BASE64.encode(mac::hmac_sha256(key, item.string_to_sign().as_bytes()))
}

/// Verifies one item against any of `keys` (current and previous, for rotation), in constant
/// time. No non-empty key → [`Error::MissingSecret`]; no or wrong signature → [`Error::BadSignature`].
pub fn verify_item(item: &AdyenItem, keys: &[Vec<u8>]) -> Result<(), Error> {
    if keys.iter().all(|k| k.is_empty()) {
        return Err(Error::MissingSecret);
    }
    let Some(given) = item.hmac_signature.as_deref() else {
        return Err(Error::BadSignature);
    };
    let matched = keys
        .iter()
        .filter(|k| !k.is_empty())
        .fold(false, |acc, key| {
            acc | mac::ct_eq(sign_item(item, key).as_bytes(), given.as_bytes())
        });
    if matched {
        Ok(())
    } else {
        Err(Error::BadSignature)
    }
}

/// Verifies every item; the whole batch is refused if any item fails.
pub fn verify_batch(batch: &AdyenBatch, keys: &[Vec<u8>]) -> Result<(), Error> {
    batch
        .items
        .iter()
        .try_for_each(|item| verify_item(item, keys))
}

/// Checks an `Authorization` header against the configured Basic-auth credentials in constant
/// time. Empty expected username or password → [`Error::MissingSecret`]; absent, malformed or
/// wrong credentials → [`Error::BadCredentials`].
pub fn verify_basic_auth(
    authorization: Option<&str>,
    expected_username: &str,
    expected_password: &str,
) -> Result<(), Error> {
    if expected_username.is_empty() || expected_password.is_empty() {
        return Err(Error::MissingSecret);
    }
    let header = authorization.ok_or(Error::BadCredentials)?.trim();
    let (scheme, encoded) = header.split_once(' ').ok_or(Error::BadCredentials)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Error::BadCredentials);
    }
    let decoded = BASE64
        .decode(encoded.trim())
        .map_err(|_| Error::BadCredentials)?;
    let split = decoded
        .iter()
        .position(|&b| b == b':')
        .ok_or(Error::BadCredentials)?;
    let (user, pass) = (&decoded[..split], &decoded[split + 1..]);
    let user_ok = mac::ct_eq(user, expected_username.as_bytes());
    let pass_ok = mac::ct_eq(pass, expected_password.as_bytes());
    if user_ok & pass_ok {
        Ok(())
    } else {
        Err(Error::BadCredentials)
    }
}

/// Maps an item onto a contract-event intent (spec part 1). Apart from `AUTHORISATION`, an item
/// with success=false reports a failed modification and has no stock effect.
pub fn classify(item: &AdyenItem) -> AdyenAction {
    use AdyenAction::*;
    let code = item.event_code.as_str();
    if code == "AUTHORISATION" {
        return if item.success { Authorized } else { Voided };
    }
    let action = match code {
        "CAPTURE" => Captured,
        "CAPTURE_FAILED" | "CANCELLATION" | "EXPIRE" | "OFFER_CLOSED" | "TECHNICAL_CANCEL" => {
            Voided
        }
        "REFUND" => Refunded,
        "CANCEL_OR_REFUND" => match item
            .additional_data
            .get("modification.action")
            .map(|a| a.to_ascii_lowercase())
            .as_deref()
        {
            Some("cancel") => Voided,
            Some("refund") => Refunded,
            _ => RecordedNoEffect,
        },
        "CHARGEBACK" | "NOTIFICATION_OF_CHARGEBACK" | "SECOND_CHARGEBACK" => ChargebackOpened,
        "CHARGEBACK_REVERSED" | "PREARBITRATION_WON" => ChargebackClosed(ChargebackOutcome::Won),
        "PREARBITRATION_LOST" => ChargebackClosed(ChargebackOutcome::Lost),
        _ => return Ignored,
    };
    if item.success {
        action
    } else {
        RecordedNoEffect
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "44782DEF547AAA06C910C43932B1EB0C71FC68D9D0C057550C48EC2ACF6BA056";
    const KEY_B: &str = "74F490DD33F7327BAECC88B2947C011FC02D014A473AAA33A8EC93E4DC069174";

    fn key(hex_key: &str) -> Vec<u8> {
        parse_hmac_key(hex_key).unwrap_or_default()
    }

    fn batch(items: &[String]) -> String {
        let wrapped: Vec<String> = items
            .iter()
            .map(|i| format!(r#"{{"NotificationRequestItem":{i}}}"#))
            .collect();
        format!(
            r#"{{"live":"false","notificationItems":[{}]}}"#,
            wrapped.join(",")
        )
    }

    fn item_json(psp: &str, mref_json: &str, sig: &str) -> String {
        format!(
            r#"{{"additionalData":{{"hmacSignature":"{sig}"}},"amount":{{"currency":"EUR","value":1000}},"eventCode":"AUTHORISATION","eventDate":"2021-01-01T01:00:00+01:00","merchantAccountCode":"AntoniStroinski","merchantReference":{mref_json},"pspReference":"{psp}","reason":"","success":"true"}}"#
        )
    }

    fn parse_one(body: &str) -> AdyenItem {
        match parse_batch(body.as_bytes()) {
            Ok(mut b) if b.items.len() == 1 => b.items.remove(0),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn vector_4_5_library_item() {
        let body = batch(&[r#"{"additionalData":{"hmacSignature":"coqCmt/IZ4E3CzPvMY8zTjQVL5hYJUiBRg8UU+iCWo0="},"amount":{"currency":"EUR","value":1130},"eventCode":"AUTHORISATION","merchantAccountCode":"TestMerchant","merchantReference":"TestPayment-1407325143704","pspReference":"7914073381342284","success":"true"}"#.to_owned()]);
        let item = parse_one(&body);
        assert_eq!(
            item.string_to_sign(),
            "7914073381342284::TestMerchant:TestPayment-1407325143704:1130:EUR:AUTHORISATION:true"
        );
        assert_eq!(verify_item(&item, &[key(KEY_A)]), Ok(()));
        assert_eq!(verify_item(&item, &[key(KEY_B)]), Err(Error::BadSignature));
        // Rotation: the right key second in the list still verifies.
        assert_eq!(verify_item(&item, &[key(KEY_B), key(KEY_A)]), Ok(()));
        assert_eq!(verify_item(&item, &[]), Err(Error::MissingSecret));
        assert_eq!(
            item.amount.as_ref().map(|a| a.value.to_string()).as_deref(),
            Some("11.30")
        );
        assert_eq!(classify(&item), AdyenAction::Authorized);
        assert_eq!(
            item.dedupe_key(),
            "adyen:7914073381342284:AUTHORISATION:true"
        );
    }

    #[test]
    fn vector_4_5_real_notifications_no_escaping() {
        let cases = [
            (
                "colon",
                "M8NB66SBZSGLNK82",
                r#"":slashes are fun""#,
                "2EQYm7YJpKO4EtHSPu55SQTyWf8dkW5u2nD1tJFpViA=",
            ),
            (
                "backslash",
                "T7FD4VM4D3RZNN82",
                r#""\\\\slashes are fun""#,
                "nIgT81gaB5oJpn2jPXupDq68iRo2wUlBsuYjtYfwKqo=",
            ),
            (
                "forwardslash",
                "X3GWNS6KJ8NKGK82",
                r#""//slashes are fun""#,
                "9Z0xdpG9Xi3zcmXv14t/BvMBut77O/Xq9D4CQXSDUi4=",
            ),
            (
                "mixed",
                "ZVWN7D3WSMK2WN82",
                r#""\\:/\\/slashes are fun""#,
                "CZErGCNQaSsxbaQfZaJlakqo7KPP+mIa8a+wx3yNs9A=",
            ),
        ];
        for (name, psp, mref, sig) in cases {
            let item = parse_one(&batch(&[item_json(psp, mref, sig)]));
            assert_eq!(verify_item(&item, &[key(KEY_B)]), Ok(()), "{name}");
        }
        let colon = parse_one(&batch(&[item_json(cases[0].1, cases[0].2, cases[0].3)]));
        assert_eq!(
            colon.string_to_sign(),
            "M8NB66SBZSGLNK82::AntoniStroinski::slashes are fun:1000:EUR:AUTHORISATION:true"
        );
        let mixed = parse_one(&batch(&[item_json(cases[3].1, cases[3].2, cases[3].3)]));
        assert_eq!(mixed.merchant_reference, r"\:/\/slashes are fun");
    }

    const CANCEL_OR_REFUND: &str = r#"{"additionalData":{"hmacSignature":"1T8eBFpcnRxgrvG9PJpXjcwmrilaMBUbtH83r1nGqW0=","modification.action":"refund"},"amount":{"currency":"EUR","value":1000},"eventCode":"CANCEL_OR_REFUND","eventDate":"2021-01-01T01:00:00+01:00","merchantAccountCode":"YOUR_MERCHANT_ACCOUNT","merchantReference":"YOUR_MERCHANT_REFERENCE","originalReference":"9913140798220028","paymentMethod":"visa","pspReference":"QFQTPCQ8HXSKGK82","reason":"","success":"true","operations":["CANCEL","CAPTURE","REFUND"]}"#;

    #[test]
    fn vector_4_5_computed_cancel_or_refund() {
        let item = parse_one(&batch(&[CANCEL_OR_REFUND.to_owned()]));
        assert_eq!(
            item.string_to_sign(),
            "QFQTPCQ8HXSKGK82:9913140798220028:YOUR_MERCHANT_ACCOUNT:YOUR_MERCHANT_REFERENCE:1000:EUR:CANCEL_OR_REFUND:true"
        );
        assert_eq!(verify_item(&item, &[key(KEY_A)]), Ok(()));
        assert_eq!(classify(&item), AdyenAction::Refunded);
        let cancel = parse_one(&batch(&[CANCEL_OR_REFUND.replace(
            r#""modification.action":"refund""#,
            r#""modification.action":"cancel""#,
        )]));
        assert_eq!(classify(&cancel), AdyenAction::Voided);
        // The action is not signed, so changing it keeps the signature valid; that is Adyen's design.
        assert_eq!(verify_item(&cancel, &[key(KEY_A)]), Ok(()));
        let none = parse_one(&batch(&[
            CANCEL_OR_REFUND.replace(r#","modification.action":"refund""#, "")
        ]));
        assert_eq!(classify(&none), AdyenAction::RecordedNoEffect);
    }

    #[test]
    fn the_payment_method_is_read_as_sent_and_never_refuses_an_item() {
        let item = parse_one(&batch(&[CANCEL_OR_REFUND.to_owned()]));
        assert_eq!(item.payment_method.as_deref(), Some("visa"));
        let klarna = CANCEL_OR_REFUND
            .replace(
                r#""eventCode":"CANCEL_OR_REFUND""#,
                r#""eventCode":"AUTHORISATION""#,
            )
            .replace(
                r#""paymentMethod":"visa""#,
                r#""paymentMethod":"klarna_account""#,
            );
        let item = parse_one(&batch(&[klarna]));
        assert_eq!(classify(&item), AdyenAction::Authorized);
        assert_eq!(item.payment_method.as_deref(), Some("klarna_account"));
        // Not signed: read as absent when it is not a string, as when it is missing.
        let odd = parse_one(&batch(&[CANCEL_OR_REFUND.replace(r#""visa""#, "7")]));
        assert_eq!(odd.payment_method, None);
        assert_eq!(verify_item(&odd, &[key(KEY_A)]), Ok(()));
        let missing = parse_one(&batch(&[
            CANCEL_OR_REFUND.replace(r#""paymentMethod":"visa","#, "")
        ]));
        assert_eq!(missing.payment_method, None);
    }

    #[test]
    fn batch_fails_if_any_item_fails() {
        let good = item_json(
            "M8NB66SBZSGLNK82",
            r#"":slashes are fun""#,
            "2EQYm7YJpKO4EtHSPu55SQTyWf8dkW5u2nD1tJFpViA=",
        );
        let bad = item_json(
            "X3GWNS6KJ8NKGK82",
            r#""//slashes are fun""#,
            "2EQYm7YJpKO4EtHSPu55SQTyWf8dkW5u2nD1tJFpViA=",
        );
        let ok = parse_batch(batch(&[good.clone(), good.clone()]).as_bytes());
        assert_eq!(ok.map(|b| verify_batch(&b, &[key(KEY_B)])), Ok(Ok(())));
        let mixed = parse_batch(batch(&[good, bad]).as_bytes());
        assert_eq!(
            mixed.map(|b| verify_batch(&b, &[key(KEY_B)])),
            Ok(Err(Error::BadSignature))
        );
        assert!(matches!(
            parse_batch(br#"{"live":"false","notificationItems":[]}"#),
            Err(Error::Malformed { .. })
        ));
    }

    fn coded(code: &str, success: bool) -> AdyenItem {
        AdyenItem {
            psp_reference: "P".into(),
            original_reference: String::new(),
            merchant_account_code: String::new(),
            merchant_reference: "o".into(),
            event_code: code.into(),
            success,
            amount: None,
            currency_raw: String::new(),
            hmac_signature: None,
            additional_data: BTreeMap::new(),
            event_date: None,
            reason: None,
            payment_method: None,
        }
    }

    #[test]
    fn classification_table() {
        use AdyenAction::*;
        for (code, success, expected) in [
            ("AUTHORISATION", true, Authorized),
            ("AUTHORISATION", false, Voided),
            ("CAPTURE", true, Captured),
            ("CAPTURE", false, RecordedNoEffect),
            ("CAPTURE_FAILED", true, Voided),
            ("CANCELLATION", true, Voided),
            ("CANCELLATION", false, RecordedNoEffect),
            ("EXPIRE", true, Voided),
            ("OFFER_CLOSED", true, Voided),
            ("TECHNICAL_CANCEL", true, Voided),
            ("REFUND", true, Refunded),
            ("REFUND", false, RecordedNoEffect),
            ("CHARGEBACK", true, ChargebackOpened),
            ("NOTIFICATION_OF_CHARGEBACK", true, ChargebackOpened),
            ("SECOND_CHARGEBACK", true, ChargebackOpened),
            (
                "CHARGEBACK_REVERSED",
                true,
                ChargebackClosed(ChargebackOutcome::Won),
            ),
            (
                "PREARBITRATION_WON",
                true,
                ChargebackClosed(ChargebackOutcome::Won),
            ),
            (
                "PREARBITRATION_LOST",
                true,
                ChargebackClosed(ChargebackOutcome::Lost),
            ),
            ("REPORT_AVAILABLE", true, Ignored),
            ("REFUND_FAILED", true, Ignored),
        ] {
            assert_eq!(
                classify(&coded(code, success)),
                expected,
                "{code} {success}"
            );
        }
    }

    #[test]
    fn basic_auth() {
        let header = format!("Basic {}", BASE64.encode("user:pa:ss"));
        assert_eq!(verify_basic_auth(Some(&header), "user", "pa:ss"), Ok(()));
        assert_eq!(
            verify_basic_auth(Some(&header), "user", "pa:sx"),
            Err(Error::BadCredentials)
        );
        assert_eq!(
            verify_basic_auth(Some(&header), "usex", "pa:ss"),
            Err(Error::BadCredentials)
        );
        assert_eq!(
            verify_basic_auth(None, "user", "pa:ss"),
            Err(Error::BadCredentials)
        );
        assert_eq!(
            verify_basic_auth(Some("Bearer abc"), "user", "pa:ss"),
            Err(Error::BadCredentials)
        );
        assert_eq!(
            verify_basic_auth(Some("Basic !!!"), "user", "pa:ss"),
            Err(Error::BadCredentials)
        );
        assert_eq!(
            verify_basic_auth(Some(&header), "", "pa:ss"),
            Err(Error::MissingSecret)
        );
    }

    #[test]
    fn exponents() {
        assert_eq!(currency_exponent("JPY"), 0);
        assert_eq!(currency_exponent("CLP"), 2);
        assert_eq!(currency_exponent("KWD"), 3);
        assert_eq!(currency_exponent("eur"), 2);
    }
}
