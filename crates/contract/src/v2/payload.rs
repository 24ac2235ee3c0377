//! The v2 payloads: every v1 payload as v1 writes it, plus what v2 added before its
//! release (`docs/decisions.md` §27):
//!
//! - `exception.action`: an operator's action on an exception of the queue;
//! - `stock.corrected` with an optional `actor` (who ran the correction). Without
//!   `actor` it is v1's payload, byte for byte, so every correction written before keeps
//!   its one encoding;
//! - `payment.authorized` (mode `confirmation`) with an optional `answer_by`: the instant
//!   after which the ingress no longer answers the synchronous caller `200`
//!   (`docs/decisions.md` §29). Not content (the domain event does not carry it, so a
//!   repeated confirmation is the same event); without it the payload is v1's, byte for
//!   byte;
//! - `payment.authorized` with an optional `payment_method`, as the provider names it: it
//!   chooses the reservation's TTL (`docs/decisions.md` §47). Content (the domain event
//!   carries it); without it (and without `answer_by`) the payload is v1's, byte for byte;
//! - `policy.changed`: the stock policy in force from this event on, with who changed it
//!   and why (`docs/trigger-matrix.md`, "Stock policy").

use domain::{EventKind, ExceptionId, OperatorAction, PaymentMethod, PolicySet, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::ContractError;
use crate::{v1, wire_time};

/// Every kind name v2 knows: v1's, then the ones v2 added.
pub const KINDS: [&str; 18] = [
    "order.registered",
    "order.payment_ref_attached",
    "payment.authorized",
    "payment.captured",
    "payment.voided",
    "payment.noted",
    "reservation.expired",
    "payment.settled",
    "payment.refunded",
    "chargeback.opened",
    "chargeback.closed",
    "return.received",
    "return.inspected",
    "stock.received",
    "stock.corrected",
    "payment.flagged",
    EXCEPTION_ACTION,
    POLICY_CHANGED,
];

/// The kind name of an operator action.
pub const EXCEPTION_ACTION: &str = "exception.action";

/// The kind name of a change of the stock policy.
pub const POLICY_CHANGED: &str = "policy.changed";

/// The longest `actor`, `reason` or `evidence` of an operator action, in bytes.
pub const ACTION_TEXT_LEN_MAX: usize = 4096;

/// `stock.corrected` naming who ran it: v1's fields, then `actor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StockCorrected {
    /// v1's fields, unchanged.
    #[serde(flatten)]
    pub correction: v1::StockCorrected,
    /// Who ran the correction (may differ from the approver); never empty.
    pub actor: String,
}

/// `payment.authorized` with what v2 added to it: v1's fields, then `answer_by` (a
/// synchronous confirmation's), then `payment_method`; at least one of the two is present
/// (without both, the payload is v1's, [`Payload::V1`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PaymentAuthorized {
    /// v1's fields, unchanged.
    #[serde(flatten)]
    pub authorization: v1::PaymentAuthorized,
    /// After this instant the ingress no longer answers `200`: a reservation decided later
    /// was answered "no" and is released (`docs/decisions.md` §29). Not content.
    #[serde(
        serialize_with = "wire_time::serialize_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub answer_by: Option<Timestamp>,
    /// The payment method the provider names (`klarna`, `card_present`): it chooses the
    /// reservation's TTL (`docs/decisions.md` §47). Content: part of the domain event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_method: Option<String>,
}

impl PaymentAuthorized {
    /// The payload that says `authorization` with `answer_by` and `payment_method`: v1's
    /// when it has neither, so an authorization without them keeps its one encoding.
    pub fn payload(
        authorization: v1::PaymentAuthorized,
        answer_by: Option<Timestamp>,
        payment_method: Option<String>,
    ) -> Payload {
        if answer_by.is_none() && payment_method.is_none() {
            Payload::V1(v1::Payload::PaymentAuthorized(authorization))
        } else {
            Payload::PaymentAuthorized(PaymentAuthorized {
                authorization,
                answer_by,
                payment_method,
            })
        }
    }
}

/// `exception.action`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExceptionAction {
    /// The exception's id: an event id, or `<stream>:<sequence>`.
    pub exception_id: String,
    /// `resolve`, `dismiss`, `retry`, `release` or `keep`.
    pub action: String,
    /// Who acts; never empty.
    pub actor: String,
    /// Why; never empty.
    pub reason: String,
    /// What shows it is right, or `null`.
    #[serde(deserialize_with = "crate::de::nullable_string")]
    pub evidence: Option<String>,
}

/// `policy.changed`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyChanged {
    /// The policy from now on, in its canonical text (`deduct_on_capture`,
    /// `reserve_on_authorization,stripe=deduct_on_capture`: the default first, then
    /// providers in name order, none equal to the default).
    pub policy: String,
    /// Who changed it; never empty.
    pub actor: String,
    /// Why; never empty.
    pub reason: String,
}

/// The payload of a v2 envelope; the variant (and, for `V1`, v1's variant) decides the
/// envelope's `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Payload {
    /// A payload of a kind v1 defined, as v1 writes it (a correction without an actor).
    V1(v1::Payload),
    /// `stock.corrected` with its `actor`.
    StockCorrected(StockCorrected),
    /// `exception.action`.
    ExceptionAction(ExceptionAction),
    /// `payment.authorized` with its `answer_by`.
    PaymentAuthorized(PaymentAuthorized),
    /// `policy.changed`.
    PolicyChanged(PolicyChanged),
}

impl From<v1::Payload> for Payload {
    fn from(p: v1::Payload) -> Payload {
        Payload::V1(p)
    }
}

impl Payload {
    /// The envelope's `kind` for this payload (`payment.captured`, …).
    pub fn kind_name(&self) -> &'static str {
        match self {
            Payload::V1(p) => p.kind_name(),
            Payload::StockCorrected(_) => "stock.corrected",
            Payload::ExceptionAction(_) => EXCEPTION_ACTION,
            Payload::PaymentAuthorized(_) => "payment.authorized",
            Payload::PolicyChanged(_) => POLICY_CHANGED,
        }
    }

    /// The instant the answer to this authorization is due, when it says one.
    pub fn answer_by(&self) -> Option<Timestamp> {
        match self {
            Payload::PaymentAuthorized(p) => p.answer_by,
            _ => None,
        }
    }

    /// The v2 payload of a domain event kind.
    pub fn from_domain(kind: &EventKind) -> Payload {
        match kind {
            EventKind::PolicyChanged {
                policy,
                actor,
                reason,
            } => Payload::PolicyChanged(PolicyChanged {
                policy: policy.to_string(),
                actor: actor.clone(),
                reason: reason.clone(),
            }),
            EventKind::ExceptionAction {
                exception_id,
                action,
                actor,
                reason,
                evidence,
            } => Payload::ExceptionAction(ExceptionAction {
                exception_id: exception_id.to_string(),
                action: action.as_str().to_owned(),
                actor: actor.clone(),
                reason: reason.clone(),
                evidence: evidence.clone(),
            }),
            EventKind::StockCorrected {
                key,
                delta,
                reason,
                evidence,
                approved_by,
                actor: Some(actor),
            } => Payload::StockCorrected(StockCorrected {
                correction: v1::StockCorrected {
                    sku: key.sku.to_string(),
                    location: key.location.to_string(),
                    delta: *delta,
                    reason: reason.clone(),
                    evidence: evidence.clone(),
                    approved_by: approved_by.clone(),
                },
                actor: actor.clone(),
            }),
            EventKind::PaymentAuthorized {
                method: Some(method),
                ..
            } => match v1::Payload::from_domain(kind) {
                Ok(v1::Payload::PaymentAuthorized(authorization)) => {
                    PaymentAuthorized::payload(authorization, None, Some(method.to_string()))
                }
                _ => unreachable_kind(kind),
            },
            // Every other kind is a v1 kind, which v1 always says.
            other => match v1::Payload::from_domain(other) {
                Ok(p) => Payload::V1(p),
                Err(_) => unreachable_kind(other),
            },
        }
    }

    /// The domain event kind this payload says, or the first field that breaks a domain
    /// rule (paths start at the envelope).
    pub fn to_domain(&self) -> Result<EventKind, ContractError> {
        match self {
            Payload::V1(p) => p.to_domain(),
            Payload::PaymentAuthorized(p) => {
                if p.answer_by.is_some()
                    && p.authorization.mode != v1::AuthorizationMode::Confirmation
                {
                    return Err(ContractError::new(
                        "payload.answer_by",
                        "only a confirmation (mode confirmation) has an answer deadline",
                    ));
                }
                let method = p
                    .payment_method
                    .as_deref()
                    .map(|m| {
                        PaymentMethod::parse(m).map_err(|e| {
                            ContractError::new("payload.payment_method", e.to_string())
                        })
                    })
                    .transpose()?;
                match v1::Payload::PaymentAuthorized(p.authorization.clone()).to_domain()? {
                    EventKind::PaymentAuthorized { payment, mode, .. } => {
                        Ok(EventKind::PaymentAuthorized {
                            payment,
                            mode,
                            method,
                        })
                    }
                    other => Ok(other),
                }
            }
            Payload::StockCorrected(p) => {
                let kind = v1::Payload::StockCorrected(p.correction.clone()).to_domain()?;
                let actor = text("payload.actor", &p.actor)?;
                Ok(match kind {
                    EventKind::StockCorrected {
                        key,
                        delta,
                        reason,
                        evidence,
                        approved_by,
                        ..
                    } => EventKind::StockCorrected {
                        key,
                        delta,
                        reason,
                        evidence,
                        approved_by,
                        actor: Some(actor),
                    },
                    other => other,
                })
            }
            Payload::PolicyChanged(p) => Ok(EventKind::PolicyChanged {
                policy: policy_text(&p.policy)?,
                actor: text("payload.actor", &p.actor)?,
                reason: text("payload.reason", &p.reason)?,
            }),
            Payload::ExceptionAction(p) => Ok(EventKind::ExceptionAction {
                exception_id: ExceptionId::parse(p.exception_id.as_str())
                    .map_err(|e| ContractError::new("payload.exception_id", e.to_string()))?,
                action: OperatorAction::parse(&p.action).ok_or_else(|| {
                    ContractError::new(
                        "payload.action",
                        format!(
                            "must be one of resolve, dismiss, retry, release, keep; got {:?}",
                            p.action
                        ),
                    )
                })?,
                actor: text("payload.actor", &p.actor)?,
                reason: text("payload.reason", &p.reason)?,
                evidence: p
                    .evidence
                    .as_deref()
                    .map(|e| bounded("payload.evidence", e))
                    .transpose()?,
            }),
        }
    }
}

/// A v1 kind that v1 refused to say: impossible, since `from_domain` handles every kind
/// v2 added before asking v1. Written as a stand-in v1 payload that no decoder accepts
/// rather than a panic, should it ever happen.
fn unreachable_kind(kind: &EventKind) -> Payload {
    Payload::V1(v1::Payload::StockReceived(v1::StockReceived {
        sku: String::new(),
        location: String::new(),
        quantity: 0,
        reference: format!("unencodable kind {}", kind.name()),
    }))
}

/// A policy list in its canonical text: the decoder is never looser than the schema, and
/// one policy has one encoding.
fn policy_text(s: &str) -> Result<PolicySet, ContractError> {
    bounded("payload.policy", s)?;
    let policy: PolicySet = s
        .parse()
        .map_err(|e: domain::InvalidPolicy| ContractError::new("payload.policy", e.to_string()))?;
    let canonical = policy.to_string();
    if canonical != s {
        return Err(ContractError::new(
            "payload.policy",
            format!("must be written in its canonical form {canonical:?}"),
        ));
    }
    Ok(policy)
}

/// Free text with a bound.
fn bounded(path: &str, s: &str) -> Result<String, ContractError> {
    if s.len() > ACTION_TEXT_LEN_MAX {
        return Err(ContractError::new(
            path,
            format!("is longer than {ACTION_TEXT_LEN_MAX} bytes"),
        ));
    }
    Ok(s.to_owned())
}

/// Free text with a bound that must say something (an actor, a reason).
fn text(path: &str, s: &str) -> Result<String, ContractError> {
    if s.trim().is_empty() {
        return Err(ContractError::new(path, "must not be empty"));
    }
    bounded(path, s)
}
