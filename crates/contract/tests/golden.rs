//! The golden examples under `schemas/v1/examples/`: each validates against the JSON
//! Schema, decodes into the domain event written out here by hand, and re-encodes to the
//! same JSON. These files are kept forever; a release that stops decoding one is broken.

#![allow(clippy::unwrap_used)]

mod common;

use contract::{Envelope, Source, decode, decode_event};
use domain::{
    FlagReason,
    AuthorizationMode, ChargebackOutcome, DisputeId, Event, EventId, EventKind, InspectionOutcome,
    Line, Lines, Location, Money, OrderLookup, OrderRef, OrderSpec, Payment, PaymentRef, Provider,
    Quantity, ReturnRef, Sku, StockKey, Timestamp,
};
use serde_json::Value;

/// 2026-11-20T10:00:00Z.
const T0: i64 = 1_795_168_800_000;

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
fn expected_kind(kind: &str) -> EventKind {
    let dispute = || DisputeId::parse("dp_1Abc").unwrap();
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
        },
        other => panic!("no expectation for {other}"),
    }
}

#[test]
fn there_is_one_golden_example_per_kind_and_nothing_else() {
    let mut files: Vec<String> = std::fs::read_dir(common::schemas_v1().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    files.sort();
    let mut expected: Vec<String> = common::KINDS.iter().map(|k| format!("{k}.json")).collect();
    expected.sort();
    assert_eq!(files, expected);
}

#[test]
fn every_golden_example_validates_against_the_schema() {
    let validator = common::envelope_validator();
    for (kind, bytes) in common::goldens() {
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{kind}: {errors:#?}");
    }
}

#[test]
fn every_golden_example_decodes_into_its_domain_event() {
    for (kind, bytes) in common::goldens() {
        let (envelope, event) = decode_event(&bytes).unwrap_or_else(|e| panic!("{kind}: {e}"));
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(envelope.kind_name(), kind);
        assert_eq!(
            envelope.event_id().to_string(),
            value["event_id"].as_str().unwrap(),
            "{kind}"
        );
        let identity = value["source"]["identity"].as_str().unwrap();
        let expected = Event {
            id: EventId::from_dedupe_key(identity),
            recorded_at: contract::wire_time::parse(value["recorded_at"].as_str().unwrap())
                .unwrap(),
            kind: expected_kind(kind),
        };
        assert_eq!(event, expected, "{kind}");
        assert_eq!(envelope.to_domain().unwrap(), expected, "{kind}");
    }
}

#[test]
fn every_golden_example_re_encodes_to_the_same_json() {
    for (kind, bytes) in common::goldens() {
        let envelope = decode(&bytes).unwrap();
        let original: Value = serde_json::from_slice(&bytes).unwrap();
        let encoded: Value = serde_json::from_slice(&envelope.to_json()).unwrap();
        assert_eq!(encoded, original, "{kind}");
        assert_eq!(decode(&envelope.to_json()).unwrap(), envelope, "{kind}");
    }
}

#[test]
fn every_golden_example_is_what_the_encoder_writes_for_its_domain_event() {
    for (kind, bytes) in common::goldens() {
        let original: Value = serde_json::from_slice(&bytes).unwrap();
        let decoded = decode(&bytes).unwrap();
        let built = Envelope::new(
            &expected_kind(kind),
            Source {
                provider: original["source"]["provider"].as_str().unwrap().to_owned(),
                identity: original["source"]["identity"].as_str().unwrap().to_owned(),
            },
            decoded.occurred_at,
            decoded.recorded_at,
            None,
        );
        let built = Envelope {
            raw_digest: decoded.raw_digest.clone(),
            ..built
        };
        let encoded: Value = serde_json::from_slice(&built.to_json()).unwrap();
        assert_eq!(encoded, original, "{kind}");
    }
}

#[test]
fn envelope_new_digests_the_raw_payload() {
    let source = Source {
        provider: "portone".to_owned(),
        identity: "portone:ord_1:Success:200".to_owned(),
    };
    let kind = expected_kind("payment.captured");
    let raw = br#"{"imp_uid":"imp_1","merchant_uid":"ord_1","status":"paid"}"#;
    let envelope = Envelope::new(
        &kind,
        source,
        Timestamp(T0),
        Timestamp(T0 + 1250),
        Some(raw),
    );
    let golden = decode(&common::golden_bytes("payment.captured")).unwrap();
    assert_eq!(envelope, golden);
    assert_eq!(
        envelope.raw_digest.as_deref(),
        Some(contract::v1::raw_digest(raw).as_str())
    );
}

#[test]
fn serde_deserialize_runs_the_same_checks_as_decode() {
    let bytes = common::golden_bytes("stock.received");
    let via_serde: Envelope = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(via_serde, decode(&bytes).unwrap());
    let mut value: Value = serde_json::from_slice(&bytes).unwrap();
    value["event_id"] = Value::String(uuid_nil());
    assert!(serde_json::from_value::<Envelope>(value).is_err());
}

fn uuid_nil() -> String {
    "00000000-0000-0000-0000-000000000000".to_owned()
}
