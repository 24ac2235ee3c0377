//! From a parsed, verified provider message to the domain event kind it stands for: the
//! one place where a provider's vocabulary (Stripe's `lost` dispute, Adyen's
//! `CHARGEBACK_REVERSED`, iPint's `COMPLETED` with a shortfall, PortOne's `Cancelled`)
//! becomes the contract's (`ChargebackOutcome::Lost`, `payment.voided`, …).
//!
//! It sits beside the parsers rather than in the ingress so that every caller (the HTTP
//! routes, the verifier that completes Stripe events and verifies iPint invoices) maps a
//! message the same way, and so that the mapping is tested without HTTP. Pure like the rest
//! of the crate: no I/O, no clock. The mapping is documented in `docs/providers.md`.

use domain::{
    AuthorizationMode, ChargebackOutcome, DisputeId, EventKind, FlagReason, InvalidValue, Money,
    OrderLookup, OrderRef, Payment, PaymentMethod, PaymentRef, Provider, Timestamp,
};
use rust_decimal::Decimal;

use crate::Error;
use crate::adyen::{self, AdyenAction, AdyenItem};
use crate::ipint::{self, IpintAction, IpintInvoice};
use crate::money::MinorAmount;
use crate::portone::{PaymentAction, PortOneWebhook};
use crate::stripe::{self, StripeAction, StripeEvent};

/// The source name of Stripe's events (also the provider of its payment references).
pub const STRIPE: &str = "stripe";
/// The source name of iPint's events (also the provider of its payment references).
pub const IPINT: &str = "ipint";

/// A provider's minor-unit amount as the contract's money. `None` when it is not a plain
/// non-negative decimal with a three-letter currency: the event then carries no amount,
/// and the ledger has nothing to compare.
pub fn provider_money(amount: Option<&MinorAmount>) -> Option<Money> {
    let a = amount?;
    Money::parse(&a.value.to_string(), &a.currency).ok()
}

/// The payment method a provider names, when it is one the contract can carry
/// ([`PaymentMethod`]); otherwise `None`, and the reservation gets the provider's TTL
/// (`docs/providers.md`, "How long a reservation holds").
pub fn payment_method(named: Option<&str>) -> Option<PaymentMethod> {
    PaymentMethod::parse(named?).ok()
}

// ---- Stripe -----------------------------------------------------------------------------

/// The order a Stripe event names: `metadata.order_ref`, else its PaymentIntent.
pub fn stripe_order(event: &StripeEvent) -> Result<Option<OrderLookup>, Error> {
    if let Some(r) = event.order_ref.as_deref() {
        let r = OrderRef::parse(r)
            .map_err(|e| Error::malformed("data.object.metadata.order_ref", e.to_string()))?;
        return Ok(Some(OrderLookup::OrderRef(r)));
    }
    let Some(pi) = event.payment_intent_id.as_deref() else {
        return Ok(None);
    };
    let payment_ref = PaymentRef::parse(pi)
        .map_err(|e| Error::malformed("data.object.payment_intent", e.to_string()))?;
    let provider =
        Provider::parse(STRIPE).map_err(|e| Error::malformed("provider", e.to_string()))?;
    Ok(Some(OrderLookup::PaymentRef {
        provider,
        payment_ref,
    }))
}

/// The contract event a verified Stripe event becomes, or `None` when it is acknowledged
/// and ignored (an unmapped type, or no order to name).
pub fn stripe_event(event: &StripeEvent) -> Result<Option<EventKind>, Error> {
    let action = stripe::classify(event);
    if action == StripeAction::Ignored {
        return Ok(None);
    }
    let Some(order) = stripe_order(event)? else {
        return Ok(None);
    };
    // A refund event carries both the charge and the refunded amount; the refund is what
    // the ledger compares.
    let refund = matches!(action, StripeAction::Refunded) && event.amount_refunded.is_some();
    let amount = if refund {
        provider_money(event.amount_refunded.as_ref())
    } else {
        provider_money(event.amount.as_ref())
    };
    let payment = Payment { order, amount };
    let kind = match action {
        StripeAction::Authorized => EventKind::PaymentAuthorized {
            payment,
            mode: AuthorizationMode::Notification,
            method: payment_method(event.payment_method.as_deref()),
        },
        StripeAction::Captured => EventKind::PaymentCaptured { payment },
        StripeAction::Voided => EventKind::PaymentVoided { payment },
        StripeAction::Refunded => EventKind::PaymentRefunded { payment },
        StripeAction::ChargebackOpened { due_by } => EventKind::ChargebackOpened {
            payment,
            dispute_id: stripe_dispute_id(event)?,
            deadline: due_by.map(|s| Timestamp(s.saturating_mul(1000))),
        },
        StripeAction::ChargebackClosed(outcome) => EventKind::ChargebackClosed {
            payment,
            dispute_id: stripe_dispute_id(event)?,
            outcome: match outcome {
                stripe::ChargebackOutcome::Won => ChargebackOutcome::Won,
                stripe::ChargebackOutcome::Lost => ChargebackOutcome::Lost,
            },
        },
        StripeAction::RecordedNoEffect => EventKind::PaymentNoted {
            payment,
            status: stripe_noted_status(event),
        },
        StripeAction::Ignored => return Ok(None),
    };
    Ok(Some(kind))
}

/// The order a flag about a partial Stripe event can name: `metadata.order_ref`, else the
/// PaymentIntent (the event's, or a thin event's related PaymentIntent). Lenient where
/// [`stripe_order`] is strict: a flag names what it can.
pub fn stripe_flag_order(event: &StripeEvent) -> Option<OrderLookup> {
    if let Some(r) = event.order_ref.as_deref() {
        return OrderRef::parse(r).ok().map(OrderLookup::OrderRef);
    }
    let pi = event.payment_intent_id.clone().or_else(|| {
        event
            .related_object
            .as_ref()
            .filter(|(_, kind)| kind == "payment_intent")
            .map(|(id, _)| id.clone())
    })?;
    Some(OrderLookup::PaymentRef {
        provider: Provider::parse(STRIPE).ok()?,
        payment_ref: PaymentRef::parse(&pi).ok()?,
    })
}

/// The status a `payment.noted` records: the event type, and a dispute's status.
fn stripe_noted_status(event: &StripeEvent) -> String {
    match &event.dispute_status {
        Some(s) => format!("{}:{s}", event.event_type),
        None => event.event_type.clone(),
    }
}

/// The dispute's id (`dp_…`), the object of every `charge.dispute.*` event.
fn stripe_dispute_id(event: &StripeEvent) -> Result<DisputeId, Error> {
    let id = event
        .object_id
        .as_deref()
        .ok_or_else(|| Error::malformed("data.object.id", "a dispute event without its id"))?;
    DisputeId::parse(id).map_err(|e| Error::malformed("data.object.id", e.to_string()))
}

// ---- Adyen ------------------------------------------------------------------------------

/// The contract event a verified Adyen item becomes, or `None` when it is acknowledged and
/// ignored (an unmapped code, or a `merchantReference` that cannot name an order).
pub fn adyen_event(item: &AdyenItem) -> Result<Option<EventKind>, Error> {
    let action = adyen::classify(item);
    if action == AdyenAction::Ignored {
        return Ok(None);
    }
    let Ok(order_ref) = OrderRef::parse(item.merchant_reference.as_str()) else {
        return Ok(None);
    };
    let payment = Payment {
        order: OrderLookup::OrderRef(order_ref),
        amount: provider_money(item.amount.as_ref()),
    };
    let kind = match action {
        AdyenAction::Authorized => EventKind::PaymentAuthorized {
            payment,
            mode: AuthorizationMode::Notification,
            method: payment_method(item.payment_method.as_deref()),
        },
        AdyenAction::Captured => EventKind::PaymentCaptured { payment },
        AdyenAction::Voided => EventKind::PaymentVoided { payment },
        AdyenAction::Refunded => EventKind::PaymentRefunded { payment },
        AdyenAction::ChargebackOpened => EventKind::ChargebackOpened {
            payment,
            dispute_id: adyen_dispute_id(item)?,
            deadline: None,
        },
        AdyenAction::ChargebackClosed(outcome) => EventKind::ChargebackClosed {
            payment,
            dispute_id: adyen_dispute_id(item)?,
            outcome: match outcome {
                adyen::ChargebackOutcome::Won => ChargebackOutcome::Won,
                adyen::ChargebackOutcome::Lost => ChargebackOutcome::Lost,
            },
        },
        AdyenAction::RecordedNoEffect => EventKind::PaymentNoted {
            payment,
            status: format!("{}:{}", item.event_code, item.success_str()),
        },
        AdyenAction::Ignored => return Ok(None),
    };
    Ok(Some(kind))
}

/// A dispute is named by the payment it disputes (`originalReference`), so that every
/// notification of one dispute (opened, reversed, pre-arbitration) names the same one.
fn adyen_dispute_id(item: &AdyenItem) -> Result<DisputeId, Error> {
    let id = if item.original_reference.is_empty() {
        &item.psp_reference
    } else {
        &item.original_reference
    };
    DisputeId::parse(id.as_str()).map_err(|e| Error::malformed("pspReference", e.to_string()))
}

// ---- PortOne ----------------------------------------------------------------------------

/// Money from PortOne's amount and currency, naming the field it refuses.
pub fn portone_money(amount: &Decimal, currency: &str) -> Result<Money, Error> {
    Money::parse(&amount.to_string(), currency).map_err(|e| match e {
        InvalidValue::Currency { .. } => Error::malformed("currency", e.to_string()),
        other => Error::malformed("amount", other.to_string()),
    })
}

/// The contract event a verified PortOne payment webhook becomes.
pub fn portone_event(hook: &PortOneWebhook) -> Result<EventKind, Error> {
    let order_ref = OrderRef::parse(hook.merchant_order_ref.as_str())
        .map_err(|e| Error::malformed("merchant_order_ref", e.to_string()))?;
    let payment = Payment {
        order: OrderLookup::OrderRef(order_ref),
        amount: Some(portone_money(&hook.amount, &hook.currency)?),
    };
    Ok(match hook.classify() {
        PaymentAction::Captured => EventKind::PaymentCaptured { payment },
        PaymentAction::Voided => EventKind::PaymentVoided { payment },
        PaymentAction::RecordedNoEffect => EventKind::PaymentNoted {
            payment,
            status: hook.status.clone(),
        },
    })
}

// ---- iPint ------------------------------------------------------------------------------

/// What a verified iPint invoice leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpintVerdict {
    /// Publish this event under this dedupe key.
    Publish {
        /// The event.
        kind: EventKind,
        /// Its dedupe key.
        identity: String,
    },
    /// Not terminal yet: verify again later.
    Later {
        /// The status iPint reported.
        status: String,
    },
}

/// The order an iPint invoice's events name: the payment reference `ipint`/`invoice_id`.
pub fn ipint_order(invoice_id: &str) -> Option<OrderLookup> {
    Some(OrderLookup::PaymentRef {
        provider: Provider::parse(IPINT).ok()?,
        payment_ref: PaymentRef::parse(invoice_id).ok()?,
    })
}

fn decimal_money(amount: Option<Decimal>, currency: Option<&str>) -> Option<Money> {
    Money::parse(&amount?.to_string(), currency?).ok()
}

/// Decides what a verified invoice means (`ipint::classify`, spec part 1). `None` when the
/// invoice id cannot name an order.
pub fn ipint_verdict(invoice: &IpintInvoice) -> Option<IpintVerdict> {
    let order = ipint_order(&invoice.invoice_id)?;
    let currency = invoice.local_currency_code.as_deref();
    let kind = match ipint::classify(invoice) {
        IpintAction::Captured => EventKind::PaymentCaptured {
            payment: Payment {
                order,
                amount: decimal_money(invoice.invoice_amount_in_local_currency, currency),
            },
        },
        IpintAction::AmountMismatch => EventKind::PaymentFlagged {
            payment: Payment {
                order,
                amount: decimal_money(invoice.received_amount_in_local_currency, currency),
            },
            reason: FlagReason::AmountMismatch,
            detail: ipint_shortfall(invoice),
        },
        IpintAction::Voided => EventKind::PaymentVoided {
            payment: Payment {
                order,
                amount: None,
            },
        },
        IpintAction::VerifyLater => {
            return Some(IpintVerdict::Later {
                status: invoice.transaction_status.clone(),
            });
        }
    };
    Some(IpintVerdict::Publish {
        kind,
        identity: invoice.dedupe_key(),
    })
}

/// The evidence of an under-payment: every received amount against its invoice amount.
fn ipint_shortfall(i: &IpintInvoice) -> String {
    let show = |d: Option<Decimal>| d.map_or("missing".to_owned(), |d| d.to_string());
    format!(
        "iPint COMPLETED but not fully paid: received {} of {} {}, {} of {} USD, {} of {} {}",
        show(i.received_amount_in_local_currency),
        show(i.invoice_amount_in_local_currency),
        i.local_currency_code.as_deref().unwrap_or("local"),
        show(i.received_amount_in_usd),
        show(i.invoice_amount_in_usd),
        show(i.received_crypto_amount),
        show(i.invoice_crypto_amount),
        i.transaction_crypto.as_deref().unwrap_or("crypto"),
    )
}

/// The `payment.flagged` `unverifiable` of an invoice, with its dedupe key.
pub fn ipint_unverifiable(invoice_id: &str, detail: String) -> Option<(EventKind, String)> {
    let kind = EventKind::PaymentFlagged {
        payment: Payment {
            order: ipint_order(invoice_id)?,
            amount: None,
        },
        reason: FlagReason::Unverifiable,
        detail,
    };
    Some((kind, format!("ipint:{invoice_id}:unverifiable")))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn method_of(kind: Option<EventKind>) -> Option<String> {
        match kind {
            Some(EventKind::PaymentAuthorized { method, .. }) => method.map(String::from),
            other => panic!("not an authorization: {other:?}"),
        }
    }

    #[test]
    fn a_stripe_authorization_carries_the_payment_intents_one_method() {
        let auth = |types: &str| {
            let body = format!(
                r#"{{"id":"evt_1","object":"event","type":"payment_intent.amount_capturable_updated","data":{{"object":{{"id":"pi_1","object":"payment_intent","amount":1999,"currency":"usd","metadata":{{"order_ref":"ord-9"}},"payment_method_types":{types}}}}}}}"#
            );
            method_of(stripe_event(&stripe::parse_event(body.as_bytes()).unwrap()).unwrap())
        };
        assert_eq!(auth(r#"["klarna"]"#).as_deref(), Some("klarna"));
        assert_eq!(auth(r#"["card"]"#).as_deref(), Some("card"));
        assert_eq!(auth(r#"["card","klarna"]"#), None);
        // Not a method name the contract carries: the provider's TTL applies.
        assert_eq!(auth(r#"["klarna pay"]"#), None);
    }

    #[test]
    fn an_adyen_authorization_carries_its_payment_method() {
        let auth = |method: &str| {
            let body = format!(
                r#"{{"live":"false","notificationItems":[{{"NotificationRequestItem":{{"amount":{{"currency":"EUR","value":1000}},"eventCode":"AUTHORISATION","merchantAccountCode":"M","merchantReference":"ord-9","paymentMethod":{method},"pspReference":"P1","success":"true"}}}}]}}"#
            );
            let batch = adyen::parse_batch(body.as_bytes()).unwrap();
            method_of(adyen_event(&batch.items[0]).unwrap())
        };
        assert_eq!(
            auth(r#""klarna_account""#).as_deref(),
            Some("klarna_account")
        );
        assert_eq!(auth(r#""mc""#).as_deref(), Some("mc"));
        assert_eq!(auth("null"), None);
        assert_eq!(auth(&format!(r#""{}""#, "k".repeat(65))), None);
    }
}
