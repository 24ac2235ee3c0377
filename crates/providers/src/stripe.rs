//! Stripe: the `Stripe-Signature` header check and the event fields stockledger needs.
//!
//! Signature (spec `providers.md` §3.1): `hex(HMAC-SHA256(secret_utf8, "{t}.{raw_body}"))` in a
//! `v1=` element of `t=…,v1=…[,v1=…][,v0=…]`. Any `v1` may match any configured secret (secret
//! rotation); every other scheme is ignored (downgrade protection). The signature is checked
//! first, then the timestamp: only timestamps older than `now - tolerance` are rejected, as in
//! stripe-python.
//!
//! Partial events (decision 30). A signed event whose `data.object` is absent (a v1 event
//! delivered without its snapshot, or a v2 "thin" event, `"object":"v2.core.event"`, which
//! carries only `related_object`) says what happened but not to which order or for how
//! much. [`completion`] names the Stripe API request that completes it (the related object
//! `GET /v1/{payment_intents|charges|disputes|refunds}/{id}`, else the event itself
//! `GET /v1/events/{id}`) and [`complete`] reads the answer into the same [`StripeEvent`].
//! Stock is never moved on what a partial event leaves out.

use crate::json::Obj;
use crate::money::MinorAmount;
use crate::{Error, mac};

/// Stripe's default replay tolerance in seconds (`Webhook.DEFAULT_TOLERANCE`).
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// At most this many `v1` signatures are tried per header; more is refused as garbage.
pub const MAX_V1_SIGNATURES: usize = 16;

/// Stripe's zero-decimal currencies (amount already in whole units), from docs.stripe.com/currencies.
const ZERO_DECIMAL: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
    "XAF", "XOF", "XPF",
];

/// Stripe's three-decimal currencies.
const THREE_DECIMAL: &[&str] = &["BHD", "JOD", "KWD", "OMR", "TND"];

/// Number of decimals Stripe uses for `currency`'s minor unit. Every currency not in the zero- or
/// three-decimal table is two-decimal; this includes ISK, HUF and TWD, which Stripe's API still
/// represents with two decimals for backwards compatibility.
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

/// The parts of a Stripe event that map to contract events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StripeEvent {
    /// Event id (`evt_…`); the idempotency key.
    pub id: String,
    /// Event type, e.g. `payment_intent.succeeded`.
    pub event_type: String,
    /// Unix seconds when the event was created, when present.
    pub created: Option<i64>,
    /// `livemode` when present.
    pub livemode: Option<bool>,
    /// `data.object.object`, e.g. `payment_intent`, `charge`, `dispute`, `refund`.
    pub object_type: Option<String>,
    /// `data.object.id`.
    pub object_id: Option<String>,
    /// The PaymentIntent this event concerns: the object's own id for a `payment_intent`,
    /// otherwise the object's `payment_intent` field (id string or expanded object).
    pub payment_intent_id: Option<String>,
    /// `data.object.metadata.order_ref`, when present.
    pub order_ref: Option<String>,
    /// `data.object.amount` with `currency`, converted by [`currency_exponent`].
    pub amount: Option<MinorAmount>,
    /// `data.object.amount_refunded` (charges), same currency.
    pub amount_refunded: Option<MinorAmount>,
    /// Dispute `status` (`won`, `lost`, `warning_closed`, …) for dispute objects.
    pub dispute_status: Option<String>,
    /// Dispute `evidence_details.due_by` (Unix seconds), the chargeback deadline.
    pub dispute_due_by: Option<i64>,
    /// True when the event carried `data.object` (a v1 snapshot event); false for a thin
    /// event or a v1 event without its object: see [`completion`].
    pub has_object: bool,
    /// A thin event (`"object":"v2.core.event"`): its type may carry a `v1.` prefix.
    pub thin: bool,
    /// A thin event's `related_object` (`id`, `type`).
    pub related_object: Option<(String, String)>,
    /// The payment method type of a PaymentIntent (`card`, `klarna`, `card_present`):
    /// `payment_method.type` when `payment_method` is expanded, else the one entry of
    /// `payment_method_types` when it has exactly one; `None` when the event does not say
    /// which (several allowed types, or none). It chooses an authorization's reservation
    /// TTL; a shape other than documented is read as `None`, never a refusal.
    pub payment_method: Option<String>,
}

/// The Stripe API request that completes a partial event: a path under the API URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Completion {
    /// `GET /v1/{collection}/{id}`: the related object itself; its fields become
    /// `data.object`.
    Object {
        /// The request path, e.g. `/v1/payment_intents/pi_123`.
        path: String,
    },
    /// `GET /v1/events/{id}`: the whole v1 event, snapshot included.
    Event {
        /// The request path, e.g. `/v1/events/evt_123`.
        path: String,
    },
}

impl Completion {
    /// The request path.
    pub fn path(&self) -> &str {
        match self {
            Completion::Object { path } | Completion::Event { path } => path,
        }
    }
}

/// Outcome of a closed chargeback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChargebackOutcome {
    /// The merchant keeps the money.
    Won,
    /// The money goes back to the customer.
    Lost,
}

/// What a Stripe event means (spec part 1 table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StripeAction {
    /// `payment_intent.amount_capturable_updated` → `payment.authorized`.
    Authorized,
    /// `payment_intent.succeeded`, `charge.captured` → `payment.captured`.
    Captured,
    /// `payment_intent.canceled`, `charge.expired` → `payment.voided`.
    Voided,
    /// `charge.refunded`, `refund.created` → `payment.refunded`.
    Refunded,
    /// `charge.dispute.created` → `chargeback.opened` with the evidence deadline.
    ChargebackOpened {
        /// `evidence_details.due_by`, Unix seconds.
        due_by: Option<i64>,
    },
    /// `charge.dispute.closed` with status `won`/`warning_closed` or `lost`.
    ChargebackClosed(ChargebackOutcome),
    /// Known but without stock effect (`payment_intent.payment_failed`, or a closed dispute in an
    /// unexpected status): recorded.
    RecordedNoEffect,
    /// Any other event type: acknowledged and recorded as ignored.
    Ignored,
}

/// Verifies a `Stripe-Signature` header over the raw body.
///
/// Errors: no secrets → [`Error::MissingSecret`]; header without exactly one integer `t`, without
/// a `v1`, or with no matching `v1` → [`Error::BadSignature`]; valid signature with
/// `t < now_unix - tolerance_secs` → [`Error::StaleTimestamp`]. A negative tolerance counts as 0
/// (the check is never disabled). Future timestamps are accepted, as stripe-python does.
pub fn verify_signature(
    raw_body: &[u8],
    header: &str,
    secrets: &[String],
    now_unix: i64,
    tolerance_secs: i64,
) -> Result<(), Error> {
    if secrets.iter().all(|s| s.is_empty()) {
        return Err(Error::MissingSecret);
    }
    let parsed = parse_header(header)?;
    let matched = secrets.iter().filter(|s| !s.is_empty()).any(|secret| {
        let expected = compute_v1(raw_body, parsed.timestamp, secret);
        // Evaluate every candidate; `|` (not `||`) keeps the work independent of which matches.
        parsed
            .v1
            .iter()
            .fold(false, |acc, sig| acc | mac::ct_eq(&expected, sig))
    });
    if !matched {
        return Err(Error::BadSignature);
    }
    if parsed.timestamp < now_unix.saturating_sub(tolerance_secs.max(0)) {
        return Err(Error::StaleTimestamp);
    }
    Ok(())
}

/// Builds a `Stripe-Signature` header value `t={t},v1={hex}` for `raw_body` (tests, operator CLI).
pub fn sign(raw_body: &[u8], secret: &str, timestamp: i64) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(compute_v1(raw_body, timestamp, secret))
    )
}

/// `HMAC-SHA256(secret, "{t}.{body}")`, with `t` re-rendered from its integer value as
/// stripe-python does (`f"{timestamp}.{payload}"` after `int(t)`).
fn compute_v1(raw_body: &[u8], timestamp: i64, secret: &str) -> [u8; 32] {
    let timestamp_text = timestamp.to_string();
    let mut message = Vec::with_capacity(timestamp_text.len() + 1 + raw_body.len());
    message.extend_from_slice(timestamp_text.as_bytes());
    message.push(b'.');
    message.extend_from_slice(raw_body);
    mac::hmac_sha256(secret.as_bytes(), &message)
}

/// A parsed `Stripe-Signature` header.
struct SignatureHeader {
    timestamp: i64,
    v1: Vec<Vec<u8>>,
}

fn parse_header(header: &str) -> Result<SignatureHeader, Error> {
    let mut timestamp = None;
    let mut v1 = Vec::new();
    for element in header.split(',') {
        let Some((scheme, value)) = element.split_once('=') else {
            continue;
        };
        match scheme.trim() {
            "t" => {
                if timestamp.is_some() {
                    return Err(Error::BadSignature);
                }
                let parsed: i64 = value.trim().parse().map_err(|_| Error::BadSignature)?;
                timestamp = Some(parsed);
            }
            "v1" => {
                if v1.len() == MAX_V1_SIGNATURES {
                    return Err(Error::BadSignature);
                }
                // A v1 that is not hex can never match; it is skipped, not fatal.
                if let Ok(bytes) = hex::decode(value.trim()) {
                    v1.push(bytes);
                }
            }
            _ => {}
        }
    }
    let Some(timestamp) = timestamp else {
        return Err(Error::BadSignature);
    };
    if v1.is_empty() {
        return Err(Error::BadSignature);
    }
    Ok(SignatureHeader { timestamp, v1 })
}

/// Parses an event body. `id` and `type` are required; everything about the object is optional
/// (unknown event types must still parse so they can be acknowledged).
pub fn parse_event(raw: &[u8]) -> Result<StripeEvent, Error> {
    let event = Obj::parse_body(raw)?;
    let mut out = StripeEvent {
        id: event.req_str("id")?,
        event_type: event.req_str("type")?,
        // v1 events carry Unix seconds; thin events an RFC 3339 string (not needed here).
        created: match event.raw("created") {
            Some(text) if text.starts_with('"') => None,
            _ => event.opt_i64("created")?,
        },
        livemode: event.opt_bool("livemode")?,
        object_type: None,
        object_id: None,
        payment_intent_id: None,
        order_ref: None,
        amount: None,
        amount_refunded: None,
        dispute_status: None,
        dispute_due_by: None,
        has_object: false,
        thin: event.opt_str("object")?.as_deref() == Some("v2.core.event"),
        related_object: None,
        payment_method: None,
    };
    if let Some(related) = event.opt_obj("related_object")? {
        out.related_object = match (related.opt_str("id")?, related.opt_str("type")?) {
            (Some(id), Some(kind)) => Some((id, kind)),
            _ => None,
        };
    }
    let Some(data) = event.opt_obj("data")? else {
        return Ok(out);
    };
    let Some(object) = data.opt_obj("object")? else {
        return Ok(out);
    };
    out.has_object = true;
    read_object(&object, &mut out)?;
    Ok(out)
}

/// True for a Stripe object id as it may appear in a request path (`pi_3Mt…`, `evt_…`).
fn is_plain_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The request that completes `event`, or `None` when it needs none: an event stockledger
/// ignores, or one that carried its `data.object`. A thin event names its related object
/// (only the four kinds the mapping reads); a v1 event without its object is fetched
/// whole. `None` also when the ids are not plain Stripe ids (nothing to ask for safely).
pub fn completion(event: &StripeEvent) -> Option<Completion> {
    if event.has_object || classify(event) == StripeAction::Ignored {
        return None;
    }
    if let Some((id, kind)) = &event.related_object {
        let collection = match kind.as_str() {
            "payment_intent" => "payment_intents",
            "charge" => "charges",
            "dispute" => "disputes",
            "refund" => "refunds",
            _ => return None,
        };
        return is_plain_id(id).then(|| Completion::Object {
            path: format!("/v1/{collection}/{id}"),
        });
    }
    (!event.thin && is_plain_id(&event.id)).then(|| Completion::Event {
        path: format!("/v1/events/{}", event.id),
    })
}

/// Completes a partial event with the API's answer to `how`. An object answer becomes its
/// `data.object` (its `object` kind must be the related object's); an event answer must be
/// the same event (id and type) and carry its object. The completed event keeps the id
/// and type it was delivered with, so its dedupe key is unchanged.
pub fn complete(
    event: &StripeEvent,
    how: &Completion,
    answer: &[u8],
) -> Result<StripeEvent, Error> {
    match how {
        Completion::Object { .. } => {
            let object = Obj::parse_body(answer)?;
            let mut out = event.clone();
            read_object(&object, &mut out)?;
            if let Some((id, kind)) = &event.related_object
                && (out.object_id.as_ref() != Some(id) || out.object_type.as_ref() != Some(kind))
            {
                return Err(Error::malformed(
                    "id",
                    "the API answered with another object",
                ));
            }
            out.has_object = true;
            Ok(out)
        }
        Completion::Event { .. } => {
            let full = parse_event(answer)?;
            if full.id != event.id || full.event_type != event.event_type {
                return Err(Error::malformed(
                    "id",
                    "the API answered with another event",
                ));
            }
            if !full.has_object {
                return Err(Error::malformed(
                    "data.object",
                    "missing in the API's answer",
                ));
            }
            Ok(full)
        }
    }
}

/// Fills `out` from `data.object`.
fn read_object(object: &Obj<'_>, out: &mut StripeEvent) -> Result<(), Error> {
    out.object_type = object.opt_str("object")?;
    out.object_id = object.opt_str("id")?;
    out.payment_intent_id = if out.object_type.as_deref() == Some("payment_intent") {
        out.object_id.clone()
    } else {
        payment_intent_ref(object)?
    };
    if let Some(metadata) = object.opt_obj("metadata")? {
        out.order_ref = metadata.opt_str("order_ref")?;
    }
    if let Some(currency) = object.opt_str("currency")? {
        let exponent = currency_exponent(&currency);
        let amount = |key: &str| -> Result<Option<MinorAmount>, Error> {
            object
                .opt_i64(key)?
                .map(|minor| {
                    MinorAmount::new(minor, &currency, exponent)
                        .map_err(|_| Error::malformed(object.path_of(key), "out of range"))
                })
                .transpose()
        };
        out.amount = amount("amount")?;
        out.amount_refunded = amount("amount_refunded")?;
    }
    if out.object_type.as_deref() == Some("payment_intent") {
        out.payment_method = payment_method_type(object);
    }
    if out.object_type.as_deref() == Some("dispute") {
        out.dispute_status = object.opt_str("status")?;
        if let Some(evidence) = object.opt_obj("evidence_details")? {
            out.dispute_due_by = evidence.opt_i64("due_by")?;
        }
    }
    Ok(())
}

/// A PaymentIntent's payment method type ([`StripeEvent::payment_method`]). Stripe sends
/// `payment_method` as an id unless it is expanded; `payment_method_types` lists the
/// types the intent allowed, which is the one used only when it lists one.
fn payment_method_type(intent: &Obj<'_>) -> Option<String> {
    let expanded = intent
        .opt_obj("payment_method")
        .ok()
        .flatten()
        .and_then(|pm| pm.opt_str("type").ok().flatten());
    expanded.or_else(|| {
        let types: Vec<String> = serde_json::from_str(intent.raw("payment_method_types")?).ok()?;
        match <[String; 1]>::try_from(types) {
            Ok([only]) => Some(only),
            Err(_) => None,
        }
    })
}

/// The object's `payment_intent` field: an id string, or an expanded object with an `id`.
fn payment_intent_ref(object: &Obj<'_>) -> Result<Option<String>, Error> {
    match object.raw("payment_intent") {
        None => Ok(None),
        Some(text) if text.starts_with('{') => match object.opt_obj("payment_intent")? {
            Some(expanded) => expanded.opt_str("id"),
            None => Ok(None),
        },
        Some(_) => object.opt_str("payment_intent"),
    }
}

impl StripeEvent {
    /// Dedupe key `stripe:{event id}`.
    pub fn dedupe_key(&self) -> String {
        format!("stripe:{}", self.id)
    }
}

/// Maps an event onto a contract-event intent (spec part 1).
///
/// A thin event's type may name a v1 event with a `v1.` prefix (`v1.payment_intent.succeeded`);
/// it maps as the v1 type does.
pub fn classify(event: &StripeEvent) -> StripeAction {
    let kind = match event.event_type.strip_prefix("v1.") {
        Some(v1) if event.thin => v1,
        _ => event.event_type.as_str(),
    };
    match kind {
        "payment_intent.amount_capturable_updated" => StripeAction::Authorized,
        "payment_intent.succeeded" | "charge.captured" => StripeAction::Captured,
        "payment_intent.canceled" | "charge.expired" => StripeAction::Voided,
        "payment_intent.payment_failed" => StripeAction::RecordedNoEffect,
        "charge.refunded" | "refund.created" => StripeAction::Refunded,
        "charge.dispute.created" => StripeAction::ChargebackOpened {
            due_by: event.dispute_due_by,
        },
        "charge.dispute.closed" => match event.dispute_status.as_deref() {
            Some("won") | Some("warning_closed") => {
                StripeAction::ChargebackClosed(ChargebackOutcome::Won)
            }
            Some("lost") => StripeAction::ChargebackClosed(ChargebackOutcome::Lost),
            _ => StripeAction::RecordedNoEffect,
        },
        _ => StripeAction::Ignored,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"id":"evt_test_webhook","object":"event"}"#;
    const T: i64 = 1_700_000_000;
    const V1: &str = "d95c6b7477fbd7e9f90b1b0ef5f9c7ac25abca5382460e0d988c2b2a5b71b990";
    const V1_OLD: &str = "e016b64cc4263f90e0336f3975e8d4ac9cc185935edc3ebdd405db64ad0bb1c5";

    fn secrets(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn vector_3_6_basic() {
        assert_eq!(sign(BODY, "whsec_test_secret", T), format!("t={T},v1={V1}"));
        let header = format!("t={T},v1={V1}");
        assert_eq!(
            verify_signature(BODY, &header, &secrets(&["whsec_test_secret"]), T, 300),
            Ok(())
        );
    }

    #[test]
    fn vector_3_6_old_secret() {
        assert_eq!(
            sign(BODY, "whsec_old_secret", T),
            format!("t={T},v1={V1_OLD}")
        );
    }

    #[test]
    fn vector_3_6_rotation_header() {
        let header = format!("t={T},v1={},v1={V1},v0={}", "0".repeat(64), "1".repeat(64));
        assert_eq!(
            verify_signature(BODY, &header, &secrets(&["whsec_test_secret"]), T, 300),
            Ok(())
        );
        // Both secrets configured (rotation on our side), header signed with the old one only.
        let old = format!("t={T},v1={V1_OLD}");
        let both = secrets(&["whsec_test_secret", "whsec_old_secret"]);
        assert_eq!(verify_signature(BODY, &old, &both, T, 300), Ok(()));
        assert_eq!(
            verify_signature(BODY, &old, &secrets(&["whsec_test_secret"]), T, 300),
            Err(Error::BadSignature)
        );
    }

    #[test]
    fn v0_alone_never_verifies() {
        let header = format!("t={T},v0={V1}");
        assert_eq!(
            verify_signature(BODY, &header, &secrets(&["whsec_test_secret"]), T, 300),
            Err(Error::BadSignature)
        );
    }

    #[test]
    fn tolerance_with_injected_clock() {
        let header = format!("t={T},v1={V1}");
        let s = secrets(&["whsec_test_secret"]);
        assert_eq!(verify_signature(BODY, &header, &s, T + 300, 300), Ok(()));
        assert_eq!(
            verify_signature(BODY, &header, &s, T + 301, 300),
            Err(Error::StaleTimestamp)
        );
        // Future timestamps are accepted (stripe-python has no future-skew check).
        assert_eq!(verify_signature(BODY, &header, &s, T - 10_000, 300), Ok(()));
        // A negative tolerance does not disable the check.
        assert_eq!(
            verify_signature(BODY, &header, &s, T + 1, -1),
            Err(Error::StaleTimestamp)
        );
        // A forged signature with a stale timestamp reports the signature, not the time.
        let forged = format!("t={T},v1={}", "0".repeat(64));
        assert_eq!(
            verify_signature(BODY, &forged, &s, T + 10_000, 300),
            Err(Error::BadSignature)
        );
    }

    #[test]
    fn header_and_secret_errors() {
        let s = secrets(&["whsec_test_secret"]);
        assert_eq!(
            verify_signature(BODY, "", &s, T, 300),
            Err(Error::BadSignature)
        );
        assert_eq!(
            verify_signature(BODY, &format!("v1={V1}"), &s, T, 300),
            Err(Error::BadSignature)
        );
        assert_eq!(
            verify_signature(BODY, &format!("t=abc,v1={V1}"), &s, T, 300),
            Err(Error::BadSignature)
        );
        assert_eq!(
            verify_signature(BODY, &format!("t={T},t={T},v1={V1}"), &s, T, 300),
            Err(Error::BadSignature)
        );
        assert_eq!(
            verify_signature(BODY, &format!("t={T},v1={V1}"), &[], T, 300),
            Err(Error::MissingSecret)
        );
        assert_eq!(
            verify_signature(BODY, &format!("t={T},v1={V1}"), &secrets(&[""]), T, 300),
            Err(Error::MissingSecret)
        );
    }

    fn event(kind: &str, object: &str) -> StripeEvent {
        let body = format!(
            r#"{{"id":"evt_1","object":"event","type":"{kind}","created":1686089970,"livemode":false,"data":{{"object":{object}}}}}"#
        );
        match parse_event(body.as_bytes()) {
            Ok(e) => e,
            Err(e) => panic!("{e:?}"),
        }
    }

    #[test]
    fn payment_intent_event() {
        let e = event(
            "payment_intent.amount_capturable_updated",
            r#"{"id":"pi_1","object":"payment_intent","amount":1999,"currency":"usd","metadata":{"order_ref":"ord-9"}}"#,
        );
        assert_eq!(e.payment_intent_id.as_deref(), Some("pi_1"));
        assert_eq!(e.order_ref.as_deref(), Some("ord-9"));
        assert_eq!(
            e.amount.as_ref().map(|a| a.value.to_string()).as_deref(),
            Some("19.99")
        );
        assert_eq!(e.amount.as_ref().map(|a| a.currency.as_str()), Some("USD"));
        assert_eq!(e.dedupe_key(), "stripe:evt_1");
        assert_eq!(classify(&e), StripeAction::Authorized);
    }

    #[test]
    fn a_payment_intent_names_its_payment_method_only_when_it_says_which() {
        let method =
            |object: &str| event("payment_intent.amount_capturable_updated", object).payment_method;
        let pi = |extra: &str| {
            format!(
                r#"{{"id":"pi_1","object":"payment_intent","amount":1999,"currency":"usd"{extra}}}"#
            )
        };
        assert_eq!(
            method(&pi(
                r#","payment_method":"pm_1","payment_method_types":["klarna"]"#
            ))
            .as_deref(),
            Some("klarna")
        );
        assert_eq!(
            method(&pi(r#","payment_method_types":["card_present"]"#)).as_deref(),
            Some("card_present")
        );
        // Expanded, the payment method says its type, whatever the intent allowed.
        assert_eq!(
            method(&pi(
                r#","payment_method":{"id":"pm_1","object":"payment_method","type":"klarna"},"payment_method_types":["card","klarna"]"#
            ))
            .as_deref(),
            Some("klarna")
        );
        // Several allowed types, none, or an unexpected shape: not said.
        assert_eq!(
            method(&pi(r#","payment_method_types":["card","klarna"]"#)),
            None
        );
        assert_eq!(method(&pi(r#","payment_method_types":[]"#)), None);
        assert_eq!(method(&pi(r#","payment_method_types":"card""#)), None);
        assert_eq!(method(&pi("")), None);
        // Only a PaymentIntent is read.
        let charge = event(
            "charge.captured",
            r#"{"id":"ch_1","object":"charge","payment_intent":"pi_1","payment_method_types":["klarna"]}"#,
        );
        assert_eq!(charge.payment_method, None);
    }

    #[test]
    fn zero_decimal_currency() {
        let e = event(
            "payment_intent.succeeded",
            r#"{"id":"pi_2","object":"payment_intent","amount":500,"currency":"jpy"}"#,
        );
        assert_eq!(
            e.amount.as_ref().map(|a| a.value.to_string()).as_deref(),
            Some("500")
        );
        assert_eq!(classify(&e), StripeAction::Captured);
        assert_eq!(currency_exponent("krw"), 0);
        assert_eq!(currency_exponent("kwd"), 3);
        assert_eq!(currency_exponent("eur"), 2);
    }

    #[test]
    fn charge_and_refund_name_their_payment_intent() {
        let e = event(
            "charge.refunded",
            r#"{"id":"ch_1","object":"charge","payment_intent":"pi_3","amount":1000,"amount_refunded":400,"currency":"eur"}"#,
        );
        assert_eq!(e.payment_intent_id.as_deref(), Some("pi_3"));
        assert_eq!(
            e.amount_refunded
                .as_ref()
                .map(|a| a.value.to_string())
                .as_deref(),
            Some("4.00")
        );
        assert_eq!(classify(&e), StripeAction::Refunded);
        let e = event(
            "refund.created",
            r#"{"id":"re_1","object":"refund","payment_intent":{"id":"pi_4"},"amount":1,"currency":"eur"}"#,
        );
        assert_eq!(e.payment_intent_id.as_deref(), Some("pi_4"));
        assert_eq!(classify(&e), StripeAction::Refunded);
        let e = event(
            "charge.expired",
            r#"{"id":"ch_2","object":"charge","payment_intent":null}"#,
        );
        assert_eq!(e.payment_intent_id, None);
        assert_eq!(classify(&e), StripeAction::Voided);
    }

    #[test]
    fn disputes() {
        let e = event(
            "charge.dispute.created",
            r#"{"id":"dp_1","object":"dispute","payment_intent":"pi_5","amount":1000,"currency":"usd","status":"needs_response","evidence_details":{"due_by":1700086400}}"#,
        );
        assert_eq!(e.payment_intent_id.as_deref(), Some("pi_5"));
        assert_eq!(
            classify(&e),
            StripeAction::ChargebackOpened {
                due_by: Some(1_700_086_400)
            }
        );
        for (status, action) in [
            (
                "won",
                StripeAction::ChargebackClosed(ChargebackOutcome::Won),
            ),
            (
                "warning_closed",
                StripeAction::ChargebackClosed(ChargebackOutcome::Won),
            ),
            (
                "lost",
                StripeAction::ChargebackClosed(ChargebackOutcome::Lost),
            ),
            ("under_review", StripeAction::RecordedNoEffect),
        ] {
            let e = event(
                "charge.dispute.closed",
                &format!(r#"{{"id":"dp_1","object":"dispute","status":"{status}"}}"#),
            );
            assert_eq!(classify(&e), action, "{status}");
        }
    }

    #[test]
    fn other_types() {
        let e = event(
            "payment_intent.payment_failed",
            r#"{"id":"pi_6","object":"payment_intent"}"#,
        );
        assert_eq!(classify(&e), StripeAction::RecordedNoEffect);
        let e = event(
            "payment_intent.canceled",
            r#"{"id":"pi_6","object":"payment_intent"}"#,
        );
        assert_eq!(classify(&e), StripeAction::Voided);
        let e = event(
            "charge.captured",
            r#"{"id":"ch_6","object":"charge","payment_intent":"pi_6"}"#,
        );
        assert_eq!(classify(&e), StripeAction::Captured);
        let e = event(
            "setup_intent.created",
            r#"{"id":"seti_1","object":"setup_intent"}"#,
        );
        assert_eq!(classify(&e), StripeAction::Ignored);
    }

    #[test]
    fn partial_events_name_their_completion() {
        let e = parse_event(
            br#"{"id":"evt_9","object":"event","type":"payment_intent.succeeded","created":1}"#,
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(!e.has_object);
        let how = completion(&e);
        assert_eq!(
            how,
            Some(Completion::Event {
                path: "/v1/events/evt_9".into()
            })
        );
        let full = br#"{"id":"evt_9","object":"event","type":"payment_intent.succeeded","data":{"object":{"id":"pi_9","object":"payment_intent","amount":2000,"currency":"usd"}}}"#;
        let done = complete(&e, &how.unwrap_or_else(|| panic!()), full)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(done.payment_intent_id.as_deref(), Some("pi_9"));
        assert_eq!(completion(&done), None);

        let thin = br#"{"id":"evt_test_65R","object":"v2.core.event","type":"v1.payment_intent.succeeded","created":"2024-09-17T06:20:52.246Z","livemode":false,"related_object":{"id":"pi_7","type":"payment_intent","url":"/v1/payment_intents/pi_7"}}"#;
        let t = parse_event(thin).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(classify(&t), StripeAction::Captured);
        let how = completion(&t).unwrap_or_else(|| panic!());
        assert_eq!(how.path(), "/v1/payment_intents/pi_7");
        let other = br#"{"id":"pi_8","object":"payment_intent","amount":1,"currency":"usd"}"#;
        assert!(
            complete(&t, &how, other).is_err(),
            "another object is refused"
        );
        let pi = br#"{"id":"pi_7","object":"payment_intent","amount":1,"currency":"usd"}"#;
        let done = complete(&t, &how, pi).unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(done.payment_intent_id.as_deref(), Some("pi_7"));
        assert_eq!(done.dedupe_key(), "stripe:evt_test_65R");

        let ignored = parse_event(br#"{"id":"evt_1","type":"setup_intent.created"}"#)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(completion(&ignored), None);
        let odd = parse_event(br#"{"id":"evt/../x","type":"charge.refunded"}"#)
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(completion(&odd), None, "never a path from an odd id");
    }

    #[test]
    fn parse_errors_name_fields() {
        assert!(matches!(parse_event(b"{}"), Err(Error::Malformed { field, .. }) if field == "id"));
        let bad = br#"{"id":"evt","type":"x","data":{"object":{"amount":"12","currency":"usd"}}}"#;
        assert!(
            matches!(parse_event(bad), Err(Error::Malformed { field, .. }) if field == "data.object.amount")
        );
    }
}
