//! What each golden example (of every version: the payloads are shared) must decode
//! into, written out by hand.

use domain::{
    AuthorizationMode, ChargebackOutcome, DisputeId, EventId, EventKind, FlagReason,
    InspectionOutcome, Line, Lines, Location, Money, OrderLookup, OrderRef, OrderSpec, Payment,
    PaymentMethod, PaymentRef, Provider, Quantity, ReturnRef, Sku, StockKey, Timestamp,
};

/// 2026-11-20T10:00:00Z.
pub const T0: i64 = 1_795_168_800_000;

fn key(sku: &str, location: &str) -> StockKey {
    StockKey {
        sku: Sku::parse(sku).unwrap(),
        location: Location::parse(location).unwrap(),
    }
}

fn lines(items: &[(&str, u64)]) -> Lines {
    Lines::new(items.iter().map(|(sku, q)| Line {
        key: key(sku, "WH-1"),
        quantity: Quantity::new(*q).unwrap(),
    }))
    .unwrap()
}

fn by_ref() -> OrderLookup {
    OrderLookup::OrderRef(OrderRef::parse("ord_1").unwrap())
}

fn by_pi() -> OrderLookup {
    OrderLookup::PaymentRef {
        provider: Provider::parse("stripe").unwrap(),
        payment_ref: PaymentRef::parse("pi_3QxYz").unwrap(),
    }
}

fn money(amount: &str, currency: &str) -> Option<Money> {
    Some(Money::parse(amount, currency).unwrap())
}

fn pay(order: OrderLookup, amount: Option<Money>) -> Payment {
    Payment { order, amount }
}

/// The domain kind each golden example must decode into.
pub fn expected_kind(kind: &str) -> EventKind {
    let dispute = || DisputeId::parse("dp_1Abc").unwrap();
    // The deadline of a confirmation is not in the domain event.
    let kind = kind.strip_suffix(".answer-by").unwrap_or(kind);
    match kind {
        "order.registered" => EventKind::OrderRegistered {
            spec: OrderSpec {
                order_ref: OrderRef::parse("ord_1").unwrap(),
                lines: lines(&[("SKU-A", 2), ("SKU-B", 1)]),
                amount: Money::parse("100.50", "USD").unwrap(),
            },
            payment_refs: vec![(
                Provider::parse("stripe").unwrap(),
                PaymentRef::parse("pi_3QxYz").unwrap(),
            )],
        },
        "order.payment_ref_attached" => EventKind::PaymentRefAttached {
            order_ref: OrderRef::parse("ord_1").unwrap(),
            provider: Provider::parse("ipint").unwrap(),
            payment_ref: PaymentRef::parse("inv_77").unwrap(),
        },
        "payment.authorized" => EventKind::PaymentAuthorized {
            payment: pay(by_ref(), money("100.50", "KRW")),
            mode: AuthorizationMode::Confirmation,
            method: None,
        },
        "payment.authorized.payment-method" => EventKind::PaymentAuthorized {
            payment: pay(by_ref(), money("100.5", "EUR")),
            mode: AuthorizationMode::Notification,
            method: Some(PaymentMethod::parse("klarna_account").unwrap()),
        },
        "payment.captured" => EventKind::PaymentCaptured {
            payment: pay(by_ref(), money("100.50", "USD")),
        },
        "payment.voided" => EventKind::PaymentVoided {
            payment: pay(by_pi(), None),
        },
        "payment.noted" => EventKind::PaymentNoted {
            payment: pay(
                OrderLookup::PaymentRef {
                    provider: Provider::parse("ipint").unwrap(),
                    payment_ref: PaymentRef::parse("inv_77").unwrap(),
                },
                money("0.00125", "BTC"),
            ),
            status: "PENDING".to_owned(),
        },
        "payment.flagged" => EventKind::PaymentFlagged {
            payment: pay(
                OrderLookup::PaymentRef {
                    provider: Provider::parse("ipint").unwrap(),
                    payment_ref: PaymentRef::parse("inv_77").unwrap(),
                },
                money("4990.00", "INR"),
            ),
            reason: FlagReason::AmountMismatch,
            detail: "COMPLETED but received 4990.00 INR of 4999.65 INR".to_owned(),
        },
        "reservation.expired" => EventKind::ReservationExpired {
            order_ref: OrderRef::parse("ord_1").unwrap(),
            reservation: EventId::from_dedupe_key("portone:ord_1:Ready:confirm"),
        },
        "payment.settled" => EventKind::PaymentSettled {
            payment: pay(by_ref(), money("100.5", "EUR")),
        },
        "payment.refunded" => EventKind::PaymentRefunded {
            payment: pay(by_pi(), money("20", "USD")),
        },
        "chargeback.opened" => EventKind::ChargebackOpened {
            payment: pay(by_pi(), money("100.50", "USD")),
            dispute_id: dispute(),
            // 2026-12-04T23:59:59Z
            deadline: Some(Timestamp(
                T0 + (14 * 24 * 3600 + 13 * 3600 + 59 * 60 + 59) * 1000,
            )),
        },
        "chargeback.closed" => EventKind::ChargebackClosed {
            payment: pay(by_pi(), money("100.50", "USD")),
            dispute_id: dispute(),
            outcome: ChargebackOutcome::Won,
        },
        "return.received" => EventKind::ReturnReceived {
            order_ref: OrderRef::parse("ord_1").unwrap(),
            reference: ReturnRef::parse("ret_9").unwrap(),
            lines: lines(&[("SKU-A", 1)]),
        },
        "return.inspected" => EventKind::ReturnInspected {
            reference: ReturnRef::parse("ret_9").unwrap(),
            outcome: InspectionOutcome::WriteOff,
            lines: lines(&[("SKU-A", 1)]),
        },
        "stock.received" => EventKind::StockReceived {
            key: key("SKU-A", "WH-1"),
            quantity: Quantity::new(50).unwrap(),
            reference: "po_42".to_owned(),
        },
        "stock.corrected" => EventKind::StockCorrected {
            key: key("SKU-B", "WH-1"),
            delta: -3,
            reason: "cycle count".to_owned(),
            evidence: "count sheet 2026-11-19 #12".to_owned(),
            approved_by: "ops.lead@example.com".to_owned(),
            actor: None,
        },
        "stock.corrected.by-actor" => EventKind::StockCorrected {
            key: key("SKU-B", "WH-1"),
            delta: -3,
            reason: "cycle count".to_owned(),
            evidence: "count sheet 2026-11-19 #12".to_owned(),
            approved_by: "ops.lead@example.com".to_owned(),
            actor: Some("ops-alice".to_owned()),
        },
        "exception.action" => EventKind::ExceptionAction {
            exception_id: domain::ExceptionId::parse("1d1c8f0e-5b54-5e34-9a0a-0f3c1f6f1a77")
                .unwrap(),
            action: domain::OperatorAction::Release,
            actor: "ops-alice".to_owned(),
            reason: "void confirmed at the provider; parcel never shipped".to_owned(),
            evidence: Some("shipping record SR-118: not dispatched".to_owned()),
        },
        "policy.changed" => EventKind::PolicyChanged {
            policy: "reserve_on_authorization,stripe=deduct_on_capture"
                .parse()
                .unwrap(),
            actor: "ops-alice".to_owned(),
            reason: "fewer units blocked by Stripe authorizations that never capture".to_owned(),
        },
        other => panic!("no expectation for {other}"),
    }
}
