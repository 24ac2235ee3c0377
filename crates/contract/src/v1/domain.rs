//! Between the v1 wire structs and the domain: `from_domain` writes what a domain event
//! says (it cannot fail), `to_domain` checks every wire value against the domain's rules
//! and names the field it refuses.

use domain::types::parse_amount;
use domain::{
    Currency, DisputeId, EventId, EventKind, InvalidValue, Location, OrderRef, OrderSpec,
    PaymentRef, Provider, Quantity, ReturnRef, Sku, StockKey,
};

use super::payload::{
    AuthorizationMode, ChargebackClosed, ChargebackOpened, ChargebackOutcome, FlagReason,
    InspectionOutcome, Line, Money, OrderLookup, OrderRegistered, Payload, PaymentAuthorized,
    PaymentEvent, PaymentFlagged, PaymentNoted, PaymentRefAttached, PaymentRefEntry,
    ReservationExpired, ReturnInspected, ReturnReceived, StockCorrected, StockReceived,
};
use crate::error::ContractError;

/// The longest `source.identity` accepted, in bytes. Identities are dedupe keys built by
/// the ingress from a provider's delivery identity; they are short, and this bounds them.
pub const IDENTITY_LEN_MAX: usize = 1024;

/// Attaches the field's path to a domain refusal.
fn at<T>(path: impl Into<String>, r: Result<T, InvalidValue>) -> Result<T, ContractError> {
    r.map_err(|e| ContractError::new(path, e.to_string()))
}

// ---- domain → wire -------------------------------------------------------------------

fn money_to_wire(m: &domain::Money) -> Money {
    Money {
        amount: m.amount.to_string(),
        currency: m.currency.as_str().to_owned(),
    }
}

fn lines_to_wire(lines: &domain::Lines) -> Vec<Line> {
    lines
        .iter()
        .map(|(k, q)| Line {
            sku: k.sku.to_string(),
            location: k.location.to_string(),
            quantity: q.get(),
        })
        .collect()
}

fn lookup_to_wire(l: &domain::OrderLookup) -> OrderLookup {
    match l {
        domain::OrderLookup::OrderRef(r) => OrderLookup::OrderRef {
            order_ref: r.to_string(),
        },
        domain::OrderLookup::PaymentRef {
            provider,
            payment_ref,
        } => OrderLookup::PaymentRef {
            provider: provider.to_string(),
            payment_ref: payment_ref.to_string(),
        },
    }
}

fn payment_to_wire(p: &domain::Payment) -> PaymentEvent {
    PaymentEvent {
        order: lookup_to_wire(&p.order),
        amount: p.amount.as_ref().map(money_to_wire),
    }
}

impl Payload {
    /// The v1 payload of a domain event kind. Kinds added after v1 (`exception.action`)
    /// have none: v1 cannot say them. A correction's actor is not part of v1 and is left
    /// out.
    pub fn from_domain(kind: &EventKind) -> Result<Payload, ContractError> {
        Ok(match kind {
            EventKind::OrderRegistered { spec, payment_refs } => {
                Payload::OrderRegistered(OrderRegistered {
                    order_ref: spec.order_ref.to_string(),
                    lines: lines_to_wire(&spec.lines),
                    amount: spec.amount.amount.to_string(),
                    currency: spec.amount.currency.as_str().to_owned(),
                    payment_refs: payment_refs
                        .iter()
                        .map(|(p, r)| PaymentRefEntry {
                            provider: p.to_string(),
                            payment_ref: r.to_string(),
                        })
                        .collect(),
                })
            }
            EventKind::PaymentRefAttached {
                order_ref,
                provider,
                payment_ref,
            } => Payload::PaymentRefAttached(PaymentRefAttached {
                order_ref: order_ref.to_string(),
                provider: provider.to_string(),
                payment_ref: payment_ref.to_string(),
            }),
            EventKind::PaymentAuthorized { payment, mode, .. } => {
                let PaymentEvent { order, amount } = payment_to_wire(payment);
                let mode = match mode {
                    domain::AuthorizationMode::Confirmation => AuthorizationMode::Confirmation,
                    domain::AuthorizationMode::Notification => AuthorizationMode::Notification,
                };
                Payload::PaymentAuthorized(PaymentAuthorized {
                    order,
                    amount,
                    mode,
                })
            }
            EventKind::PaymentCaptured { payment } => {
                Payload::PaymentCaptured(payment_to_wire(payment))
            }
            EventKind::PaymentVoided { payment } => {
                Payload::PaymentVoided(payment_to_wire(payment))
            }
            EventKind::PaymentNoted { payment, status } => {
                let PaymentEvent { order, amount } = payment_to_wire(payment);
                Payload::PaymentNoted(PaymentNoted {
                    order,
                    amount,
                    status: status.clone(),
                })
            }
            EventKind::PaymentFlagged {
                payment,
                reason,
                detail,
            } => {
                let PaymentEvent { order, amount } = payment_to_wire(payment);
                Payload::PaymentFlagged(PaymentFlagged {
                    order,
                    amount,
                    reason: match reason {
                        domain::FlagReason::Unverifiable => FlagReason::Unverifiable,
                        domain::FlagReason::AmountMismatch => FlagReason::AmountMismatch,
                    },
                    detail: detail.clone(),
                })
            }
            EventKind::ReservationExpired {
                order_ref,
                reservation,
            } => Payload::ReservationExpired(ReservationExpired {
                order_ref: order_ref.to_string(),
                reservation: reservation.as_uuid().hyphenated().to_string(),
            }),
            EventKind::PaymentSettled { payment } => {
                Payload::PaymentSettled(payment_to_wire(payment))
            }
            EventKind::PaymentRefunded { payment } => {
                Payload::PaymentRefunded(payment_to_wire(payment))
            }
            EventKind::ChargebackOpened {
                payment,
                dispute_id,
                deadline,
            } => {
                let PaymentEvent { order, amount } = payment_to_wire(payment);
                Payload::ChargebackOpened(ChargebackOpened {
                    order,
                    amount,
                    dispute_id: dispute_id.to_string(),
                    deadline: *deadline,
                })
            }
            EventKind::ChargebackClosed {
                payment,
                dispute_id,
                outcome,
            } => {
                let PaymentEvent { order, amount } = payment_to_wire(payment);
                let outcome = match outcome {
                    domain::ChargebackOutcome::Won => ChargebackOutcome::Won,
                    domain::ChargebackOutcome::Lost => ChargebackOutcome::Lost,
                };
                Payload::ChargebackClosed(ChargebackClosed {
                    order,
                    amount,
                    dispute_id: dispute_id.to_string(),
                    outcome,
                })
            }
            EventKind::ReturnReceived {
                order_ref,
                reference,
                lines,
            } => Payload::ReturnReceived(ReturnReceived {
                order_ref: order_ref.to_string(),
                reference: reference.to_string(),
                lines: lines_to_wire(lines),
            }),
            EventKind::ReturnInspected {
                reference,
                outcome,
                lines,
            } => {
                let outcome = match outcome {
                    domain::InspectionOutcome::Restock => InspectionOutcome::Restock,
                    domain::InspectionOutcome::WriteOff => InspectionOutcome::WriteOff,
                };
                Payload::ReturnInspected(ReturnInspected {
                    reference: reference.to_string(),
                    outcome,
                    lines: lines_to_wire(lines),
                })
            }
            EventKind::StockReceived {
                key,
                quantity,
                reference,
            } => Payload::StockReceived(StockReceived {
                sku: key.sku.to_string(),
                location: key.location.to_string(),
                quantity: quantity.get(),
                reference: reference.clone(),
            }),
            EventKind::StockCorrected {
                key,
                delta,
                reason,
                evidence,
                approved_by,
                ..
            } => Payload::StockCorrected(StockCorrected {
                sku: key.sku.to_string(),
                location: key.location.to_string(),
                delta: *delta,
                reason: reason.clone(),
                evidence: evidence.clone(),
                approved_by: approved_by.clone(),
            }),
            EventKind::ExceptionAction { .. } | EventKind::PolicyChanged { .. } => {
                return Err(ContractError::new(
                    "kind",
                    format!("{} is not a v1 kind", kind.name()),
                ));
            }
        })
    }
}

// ---- wire → domain -------------------------------------------------------------------

/// Checks a source's provider and identity.
pub(crate) fn check_source(provider: &str, identity: &str) -> Result<Provider, ContractError> {
    let provider = at("source.provider", Provider::parse(provider))?;
    if identity.is_empty() {
        return Err(ContractError::new("source.identity", "must not be empty"));
    }
    if identity.len() > IDENTITY_LEN_MAX {
        return Err(ContractError::new(
            "source.identity",
            format!("is longer than {IDENTITY_LEN_MAX} bytes"),
        ));
    }
    Ok(provider)
}

/// Checks a raw digest: `sha256:` and 64 lowercase hex digits.
pub(crate) fn check_raw_digest(digest: &str) -> Result<(), ContractError> {
    let ok = digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if ok {
        Ok(())
    } else {
        Err(ContractError::new(
            "raw_digest",
            "must be \"sha256:\" and 64 lowercase hex digits, or null",
        ))
    }
}

/// A wire amount and currency as domain money. The wire is stricter than the domain about
/// the currency (uppercase only) so that one spelling means one value.
fn money(
    amount: &str,
    currency: &str,
    amount_path: &str,
    currency_path: &str,
) -> Result<domain::Money, ContractError> {
    let amount = at(amount_path, parse_amount(amount))?;
    if !(currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase())) {
        return Err(ContractError::new(
            currency_path,
            format!("must be three uppercase letters, got {currency:?}"),
        ));
    }
    Ok(domain::Money {
        amount,
        currency: at(currency_path, Currency::parse(currency))?,
    })
}

fn optional_money(m: &Option<Money>, path: &str) -> Result<Option<domain::Money>, ContractError> {
    m.as_ref()
        .map(|m| {
            money(
                &m.amount,
                &m.currency,
                &format!("{path}.amount"),
                &format!("{path}.currency"),
            )
        })
        .transpose()
}

fn stock_key(sku: &str, location: &str, path: &str) -> Result<StockKey, ContractError> {
    Ok(StockKey {
        sku: at(format!("{path}sku"), Sku::parse(sku))?,
        location: at(format!("{path}location"), Location::parse(location))?,
    })
}

fn quantity(n: u64, path: String) -> Result<Quantity, ContractError> {
    at(path, Quantity::new(n))
}

fn lines(lines: &[Line], path: &str) -> Result<domain::Lines, ContractError> {
    let parsed = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let p = format!("{path}[{i}].");
            Ok(domain::Line {
                key: stock_key(&l.sku, &l.location, &p)?,
                quantity: quantity(l.quantity, format!("{p}quantity"))?,
            })
        })
        .collect::<Result<Vec<_>, ContractError>>()?;
    domain::Lines::new(parsed).map_err(|e| ContractError::new(path, e.to_string()))
}

fn lookup(l: &OrderLookup) -> Result<domain::OrderLookup, ContractError> {
    Ok(match l {
        OrderLookup::OrderRef { order_ref } => domain::OrderLookup::OrderRef(at(
            "payload.order.order_ref",
            OrderRef::parse(order_ref.as_str()),
        )?),
        OrderLookup::PaymentRef {
            provider,
            payment_ref,
        } => domain::OrderLookup::PaymentRef {
            provider: at("payload.order.provider", Provider::parse(provider.as_str()))?,
            payment_ref: at(
                "payload.order.payment_ref",
                PaymentRef::parse(payment_ref.as_str()),
            )?,
        },
    })
}

fn payment(order: &OrderLookup, amount: &Option<Money>) -> Result<domain::Payment, ContractError> {
    Ok(domain::Payment {
        order: lookup(order)?,
        amount: optional_money(amount, "payload.amount")?,
    })
}

fn event_id(s: &str, path: &str) -> Result<EventId, ContractError> {
    crate::de::canonical_uuid(s)
        .map(EventId::from_uuid)
        .ok_or_else(|| ContractError::new(path, "must be a lowercase hyphenated UUID"))
}

fn order_ref(s: &str) -> Result<OrderRef, ContractError> {
    at("payload.order_ref", OrderRef::parse(s))
}

fn return_ref(s: &str) -> Result<ReturnRef, ContractError> {
    at("payload.reference", ReturnRef::parse(s))
}

fn dispute_id(s: &str) -> Result<DisputeId, ContractError> {
    at("payload.dispute_id", DisputeId::parse(s))
}

impl Payload {
    /// The domain event kind this payload says, or the first field that breaks a domain
    /// rule (paths start at the envelope: `payload.lines[0].sku`).
    pub fn to_domain(&self) -> Result<EventKind, ContractError> {
        Ok(match self {
            Payload::OrderRegistered(p) => EventKind::OrderRegistered {
                spec: OrderSpec {
                    order_ref: order_ref(&p.order_ref)?,
                    lines: lines(&p.lines, "payload.lines")?,
                    amount: money(&p.amount, &p.currency, "payload.amount", "payload.currency")?,
                },
                payment_refs: p
                    .payment_refs
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        Ok((
                            at(
                                format!("payload.payment_refs[{i}].provider"),
                                Provider::parse(r.provider.as_str()),
                            )?,
                            at(
                                format!("payload.payment_refs[{i}].ref"),
                                PaymentRef::parse(r.payment_ref.as_str()),
                            )?,
                        ))
                    })
                    .collect::<Result<_, ContractError>>()?,
            },
            Payload::PaymentRefAttached(p) => EventKind::PaymentRefAttached {
                order_ref: order_ref(&p.order_ref)?,
                provider: at("payload.provider", Provider::parse(p.provider.as_str()))?,
                payment_ref: at("payload.ref", PaymentRef::parse(p.payment_ref.as_str()))?,
            },
            Payload::PaymentAuthorized(p) => EventKind::PaymentAuthorized {
                payment: payment(&p.order, &p.amount)?,
                mode: match p.mode {
                    AuthorizationMode::Confirmation => domain::AuthorizationMode::Confirmation,
                    AuthorizationMode::Notification => domain::AuthorizationMode::Notification,
                },
                method: None,
            },
            Payload::PaymentCaptured(p) => EventKind::PaymentCaptured {
                payment: payment(&p.order, &p.amount)?,
            },
            Payload::PaymentVoided(p) => EventKind::PaymentVoided {
                payment: payment(&p.order, &p.amount)?,
            },
            Payload::PaymentNoted(p) => EventKind::PaymentNoted {
                payment: payment(&p.order, &p.amount)?,
                status: p.status.clone(),
            },
            Payload::PaymentFlagged(p) => EventKind::PaymentFlagged {
                payment: payment(&p.order, &p.amount)?,
                reason: match p.reason {
                    FlagReason::Unverifiable => domain::FlagReason::Unverifiable,
                    FlagReason::AmountMismatch => domain::FlagReason::AmountMismatch,
                },
                detail: p.detail.clone(),
            },
            Payload::ReservationExpired(p) => EventKind::ReservationExpired {
                order_ref: order_ref(&p.order_ref)?,
                reservation: event_id(&p.reservation, "payload.reservation")?,
            },
            Payload::PaymentSettled(p) => EventKind::PaymentSettled {
                payment: payment(&p.order, &p.amount)?,
            },
            Payload::PaymentRefunded(p) => EventKind::PaymentRefunded {
                payment: payment(&p.order, &p.amount)?,
            },
            Payload::ChargebackOpened(p) => EventKind::ChargebackOpened {
                payment: payment(&p.order, &p.amount)?,
                dispute_id: dispute_id(&p.dispute_id)?,
                deadline: p.deadline,
            },
            Payload::ChargebackClosed(p) => EventKind::ChargebackClosed {
                payment: payment(&p.order, &p.amount)?,
                dispute_id: dispute_id(&p.dispute_id)?,
                outcome: match p.outcome {
                    ChargebackOutcome::Won => domain::ChargebackOutcome::Won,
                    ChargebackOutcome::Lost => domain::ChargebackOutcome::Lost,
                },
            },
            Payload::ReturnReceived(p) => EventKind::ReturnReceived {
                order_ref: order_ref(&p.order_ref)?,
                reference: return_ref(&p.reference)?,
                lines: lines(&p.lines, "payload.lines")?,
            },
            Payload::ReturnInspected(p) => EventKind::ReturnInspected {
                reference: return_ref(&p.reference)?,
                outcome: match p.outcome {
                    InspectionOutcome::Restock => domain::InspectionOutcome::Restock,
                    InspectionOutcome::WriteOff => domain::InspectionOutcome::WriteOff,
                },
                lines: lines(&p.lines, "payload.lines")?,
            },
            Payload::StockReceived(p) => EventKind::StockReceived {
                key: stock_key(&p.sku, &p.location, "payload.")?,
                quantity: quantity(p.quantity, "payload.quantity".to_owned())?,
                reference: p.reference.clone(),
            },
            Payload::StockCorrected(p) => {
                if p.delta == 0 {
                    return Err(ContractError::new("payload.delta", "must not be zero"));
                }
                EventKind::StockCorrected {
                    key: stock_key(&p.sku, &p.location, "payload.")?,
                    delta: p.delta,
                    reason: p.reason.clone(),
                    evidence: p.evidence.clone(),
                    approved_by: p.approved_by.clone(),
                    actor: None,
                }
            }
        })
    }
}
