//! The sentences of the exception queue. For each exception the trigger matrix raises, one
//! function says what happened, naming the order, SKU, location and provider reference in
//! plain text, and what a person does next (the runbook of `docs/operations.md` in one
//! sentence). Values are written with `Display`, never `Debug`, so no type name such as
//! `OrderRef("…")` ever reaches an operator; the tests here and in `tests/properties.rs`
//! hold every sentence to that.

use std::fmt;

use crate::event::{FlagReason, OrderLookup};
use crate::stock::{Bucket, StockKey};
use crate::types::{DisputeId, Money, OrderRef};

/// A line that cannot move: `key` holds `has` units in `bucket` and the order needs
/// `needed` of them there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    pub key: StockKey,
    pub bucket: Bucket,
    pub needed: u64,
    pub has: i64,
}

impl fmt::Display for Shortfall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SKU {} at location {} has {} {} of the {} the order needs",
            self.key.sku, self.key.location, self.has, self.bucket, self.needed
        )
    }
}

/// How a payment event names its order, in words: `order R-1`, or `the order holding
/// stripe payment reference pi_1`.
pub fn order_named(lookup: &OrderLookup) -> String {
    match lookup {
        OrderLookup::OrderRef(r) => format!("order {r}"),
        OrderLookup::PaymentRef {
            provider,
            payment_ref,
        } => format!("the order holding {provider} payment reference {payment_ref}"),
    }
}

/// `unknown_order`: the hold ran out (or an operator retried) and no order answers the
/// lookup. `kind` is the event's contract name (`payment.captured`).
pub fn unknown_order(kind: &str, lookup: &OrderLookup) -> String {
    match lookup {
        OrderLookup::OrderRef(r) => format!(
            "This {kind} is for order {r}, but no order {r} was registered within the \
             unknown-order hold; nothing moved. Register it (PUT /v1/orders/{r} with its \
             lines) and retry this exception, or dismiss it if the payment is not for this shop."
        ),
        OrderLookup::PaymentRef {
            provider,
            payment_ref,
        } => format!(
            "This {kind} names {provider} payment reference {payment_ref}, but no registered \
             order held that reference within the unknown-order hold; nothing moved. Attach it \
             to its order (POST /v1/orders/{{order_ref}}/payment-refs with provider {provider} \
             and ref {payment_ref}) and retry this exception, or dismiss it if the payment is \
             not for this shop."
        ),
    }
}

/// `oversold`: a capture whose lines cannot all move to `sold`.
pub fn oversold(order: &OrderRef, short: &Shortfall) -> String {
    let (sku, location) = (&short.key.sku, &short.key.location);
    format!(
        "Payment captured for order {order}, but {short}; nothing moved. If the units exist, \
         correct the stock (stockctl stock correct --sku {sku} --location {location} …) and \
         retry this exception; if not, refund the shopper at the provider and resolve it."
    )
}

/// `insufficient_at_authorization`: a notified authorization that cannot reserve.
pub fn insufficient_at_authorization(order: &OrderRef, short: &Shortfall) -> String {
    format!(
        "A payment for order {order} was authorized, but {short}; nothing was reserved. \
         Cancel the authorization at the provider and resolve this exception, or retry it \
         once the stock has arrived."
    )
}

/// `amount_mismatch` found by comparing the provider's amount with the order's.
pub fn amount_mismatch(order: &OrderRef, registered: &Money, reported: &Money) -> String {
    format!(
        "The provider reported {} {} for order {order}, which is registered for {} {}; nothing \
         moved. Settle the difference at the provider (refund, or collect the rest) and \
         resolve this exception; a retry meets the same amounts.",
        reported.amount,
        reported.currency.as_str(),
        registered.amount,
        registered.currency.as_str()
    )
}

/// `void_after_capture`: a void for an order already sold.
pub fn void_after_capture(order: &OrderRef) -> String {
    format!(
        "A void arrived for order {order} after it was sold; nothing moved. Check the payment \
         at the provider: if the capture stands, resolve this exception; if the sale is undone \
         and the goods never left, release it; if they left, keep it."
    )
}

/// `chargeback_review`: a dispute opened.
pub fn chargeback_review(dispute: &DisputeId, order: &OrderRef) -> String {
    format!(
        "Dispute {dispute} was opened on order {order}; no stock moves. Answer it at the \
         provider before its deadline; this exception is resolved when the provider reports \
         the dispute closed."
    )
}

/// A `payment.flagged` event: the provider's (or verifier's) evidence, `evidence`, with
/// what to do.
pub fn flagged(reason: FlagReason, order: &OrderRef, evidence: &str) -> String {
    let evidence = evidence.trim().trim_end_matches('.');
    match reason {
        FlagReason::Unverifiable => format!(
            "A payment for order {order} could not be verified with the provider: {evidence}. \
             Nothing moved. Check it in the provider's dashboard, then resolve this exception \
             once the verified event is applied or if it was never paid."
        ),
        FlagReason::AmountMismatch => format!(
            "The provider reports a payment for order {order} that does not match it: \
             {evidence}. Nothing moved. Settle the difference at the provider and resolve \
             this exception."
        ),
    }
}

/// True when `text` shows a domain value through `Debug` (a type name around a quoted
/// value, `Sku("…")`) rather than as plain text: what no sentence here may contain.
pub fn shows_debug_text(text: &str) -> bool {
    const TYPE_NAMES: [&str; 9] = [
        "OrderRef(",
        "PaymentRef(",
        "Sku(",
        "Location(",
        "Provider(",
        "DisputeId(",
        "StockKey {",
        "Money {",
        "PaymentRef {",
    ];
    text.contains("(\"") || TYPE_NAMES.iter().any(|t| text.contains(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Location, PaymentRef, Provider, Sku};

    fn order() -> OrderRef {
        OrderRef::parse("GHOST-1").expect("order ref")
    }

    #[test]
    fn an_unknown_order_names_the_order_and_how_to_register_it() {
        let text = unknown_order("payment.captured", &OrderLookup::OrderRef(order()));
        assert!(text.contains("order GHOST-1"), "{text}");
        assert!(text.contains("PUT /v1/orders/GHOST-1"), "{text}");
        assert!(!shows_debug_text(&text), "{text}");
        let by_ref = OrderLookup::PaymentRef {
            provider: Provider::parse("stripe").expect("provider"),
            payment_ref: PaymentRef::parse("pi_1").expect("payment ref"),
        };
        let text = unknown_order("payment.captured", &by_ref);
        assert!(text.contains("stripe payment reference pi_1"), "{text}");
        assert!(!shows_debug_text(&text), "{text}");
        assert_eq!(
            order_named(&by_ref),
            "the order holding stripe payment reference pi_1"
        );
    }

    #[test]
    fn a_shortfall_names_sku_location_and_the_command() {
        let short = Shortfall {
            key: StockKey {
                sku: Sku::parse("sku-1").expect("sku"),
                location: Location::parse("wh-1").expect("location"),
            },
            bucket: Bucket::Available,
            needed: 2,
            has: 1,
        };
        let text = oversold(&order(), &short);
        assert!(
            text.contains("SKU sku-1 at location wh-1 has 1 available of the 2"),
            "{text}"
        );
        assert!(text.contains("--sku sku-1 --location wh-1"), "{text}");
        assert!(!shows_debug_text(&text), "{text}");
    }

    #[test]
    fn debug_text_is_recognised() {
        assert!(shows_debug_text(&format!("{:?}", order())));
        assert!(shows_debug_text(&format!(
            "{:?}",
            OrderLookup::OrderRef(order())
        )));
        assert!(!shows_debug_text("order GHOST-1 (2 units)"));
    }
}
