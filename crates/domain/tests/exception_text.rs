//! Every exception the trigger matrix raises reads as a sentence for a person: it names
//! the order (or the provider's payment reference), and the SKU and location where one
//! line is concerned, in plain text, never as `Debug` output of a newtype
//! (`OrderRef("…")`); and the resolution carries the order, SKU and location it concerns
//! for the queue's columns. Checked for each exception kind on random identifiers.
#![allow(clippy::unwrap_used)]

mod support;

use domain::explain::shows_debug_text;
use domain::*;
use proptest::prelude::*;
use support::*;

/// Identifiers as merchants and providers make them.
fn ident() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9_.-]{0,15}"
}

/// One identifier set for a case.
#[derive(Debug, Clone)]
struct Names {
    order: String,
    sku: String,
    location: String,
    provider: String,
    payment_ref: String,
    dispute: String,
}

fn names() -> impl Strategy<Value = Names> {
    (ident(), ident(), ident(), ident(), ident(), ident()).prop_map(
        |(order, sku, location, provider, payment_ref, dispute)| Names {
            order,
            sku,
            location,
            provider: provider.to_ascii_lowercase(),
            payment_ref,
            dispute,
        },
    )
}

impl Names {
    fn key(&self) -> StockKey {
        StockKey {
            sku: Sku::parse(self.sku.as_str()).unwrap(),
            location: Location::parse(self.location.as_str()).unwrap(),
        }
    }

    fn pay(&self, amount: &str) -> Payment {
        Payment {
            order: OrderLookup::OrderRef(order_ref(&self.order)),
            amount: Some(usd(amount)),
        }
    }

    /// A world where `self.key()` holds `stock` available units and the order wants 2 of
    /// them for 20.00 USD.
    fn world(&self, stock: u64) -> World {
        let mut w = World::new();
        if stock > 0 {
            w.when(EventKind::StockReceived {
                key: self.key(),
                quantity: Quantity::new(stock).unwrap(),
                reference: "po-1".into(),
            });
        }
        let spec = OrderSpec {
            order_ref: order_ref(&self.order),
            lines: Lines::new([Line {
                key: self.key(),
                quantity: Quantity::new(2).unwrap(),
            }])
            .unwrap(),
            amount: usd("20.00"),
        };
        w.when(EventKind::OrderRegistered {
            spec,
            payment_refs: vec![],
        });
        w
    }
}

/// The resolution of an exception, with its code and sentence.
fn exception(d: &Decision) -> (&Resolution, String, String) {
    match d {
        Decision::Record(r) => match &r.outcome {
            Outcome::Exception { reason, detail } => (r, reason.code().to_owned(), detail.clone()),
            other => panic!("expected an exception, got {other:?}"),
        },
        other => panic!("expected a recorded exception, got {other:?}"),
    }
}

/// Every exception kind the matrix raises, each with its resolution.
fn every_exception(n: &Names) -> Vec<(String, Resolution, String)> {
    let mut out = Vec::new();
    let mut keep = |d: Decision| {
        let (r, code, detail) = exception(&d);
        out.push((code, r.clone(), detail));
    };
    // unknown_order, by order reference and by payment reference, after the hold.
    for lookup in [
        OrderLookup::OrderRef(order_ref(&n.order)),
        OrderLookup::PaymentRef {
            provider: Provider::parse(n.provider.as_str()).unwrap(),
            payment_ref: PaymentRef::parse(n.payment_ref.as_str()).unwrap(),
        },
    ] {
        let mut w = World::new();
        let e = w.event(EventKind::PaymentCaptured {
            payment: Payment {
                order: lookup,
                amount: None,
            },
        });
        w.now += i64::try_from(HOLD.as_millis()).unwrap() + 1;
        keep(w.deliver(&e, false));
    }
    // oversold: 1 unit for a capture of 2.
    keep(n.world(1).when(EventKind::PaymentCaptured {
        payment: n.pay("20.00"),
    }));
    // insufficient_at_authorization.
    keep(n.world(1).when(EventKind::PaymentAuthorized {
        payment: n.pay("20.00"),
        mode: AuthorizationMode::Notification,
        method: None,
    }));
    // amount_mismatch.
    keep(n.world(5).when(EventKind::PaymentCaptured {
        payment: n.pay("19.99"),
    }));
    // void_after_capture, then chargeback_review on the sold order.
    let mut w = n.world(5);
    w.when(EventKind::PaymentCaptured {
        payment: n.pay("20.00"),
    });
    keep(w.when(EventKind::PaymentVoided {
        payment: n.pay("20.00"),
    }));
    keep(w.when(EventKind::ChargebackOpened {
        payment: n.pay("20.00"),
        dispute_id: DisputeId::parse(n.dispute.as_str()).unwrap(),
        deadline: None,
    }));
    // payment.flagged, both reasons.
    for reason in [FlagReason::Unverifiable, FlagReason::AmountMismatch] {
        keep(n.world(5).when(EventKind::PaymentFlagged {
            payment: n.pay("20.00"),
            reason,
            detail: "the provider said so".into(),
        }));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn every_exception_reads_as_plain_text_and_carries_what_it_concerns(n in names()) {
        let all = every_exception(&n);
        let codes: Vec<&str> = all.iter().map(|(c, _, _)| c.as_str()).collect();
        prop_assert_eq!(
            codes,
            vec![
                "unknown_order", "unknown_order", "oversold", "insufficient_at_authorization",
                "amount_mismatch", "void_after_capture", "chargeback_review", "unverifiable",
                "amount_mismatch",
            ]
        );
        for (i, (code, r, detail)) in all.iter().enumerate() {
            prop_assert!(!shows_debug_text(detail), "{code}: {detail}");
            // A sentence with something to do, not a fragment.
            prop_assert!(detail.ends_with('.'), "{code}: {detail}");
            // Every kind names its order, except an unknown order named by payment
            // reference, which names that reference instead.
            if i == 1 {
                let shown = format!("{} payment reference {}", n.provider, n.payment_ref);
                prop_assert!(detail.contains(&shown), "{code}: {detail}");
                prop_assert_eq!(&r.concerns.order_ref, &None);
            } else {
                let shown = format!("order {}", n.order);
                prop_assert!(detail.contains(&shown), "{code}: {detail}");
                prop_assert_eq!(&r.concerns.order_ref, &Some(order_ref(&n.order)), "{}", code);
            }
            // The order has one line: every exception about a registered order names it.
            if i >= 2 {
                prop_assert_eq!(&r.concerns.key, &Some(n.key()), "{}", code);
            }
            // A shortfall says which SKU at which location.
            if code == "oversold" || code == "insufficient_at_authorization" {
                let shown = format!("SKU {} at location {}", n.sku, n.location);
                prop_assert!(detail.contains(&shown), "{code}: {detail}");
            }
        }
    }
}

/// The exception of an unknown order keeps the order reference it was given even though
/// no such order exists, and an action on it later finds the order once registered.
#[test]
fn an_unknown_order_exception_keeps_its_order_reference_in_the_queue() {
    let mut w = World::new();
    let e = w.event(EventKind::PaymentCaptured {
        payment: pay("GHOST-1", Some("20.00")),
    });
    w.now += i64::try_from(HOLD.as_millis()).unwrap();
    let (r, code, detail) = {
        let d = w.deliver(&e, false);
        let (r, code, detail) = exception(&d);
        (r.clone(), code, detail)
    };
    assert_eq!(code, "unknown_order");
    assert_eq!(r.concerns.order_ref, Some(order_ref("GHOST-1")));
    assert!(detail.contains("PUT /v1/orders/GHOST-1"), "{detail}");
    let entry = &w.state.exceptions[&ExceptionId::from(e.id)];
    assert_eq!(entry.order_ref, Some(order_ref("GHOST-1")));
}
