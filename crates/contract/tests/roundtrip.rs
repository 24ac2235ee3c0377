//! Every domain event kind survives domain → envelope → bytes → decode → domain
//! unchanged, for arbitrary valid values, merchants and causes (v2); and the v1 encoding of
//! the same delivery decodes, upcast, to the same event with the default merchant.

#![allow(clippy::unwrap_used)]

use contract::wire_time::{TIMESTAMP_MAX_MS, TIMESTAMP_MIN_MS};
use contract::{DEFAULT_MERCHANT, Envelope, Source, decode_event, v1};
use domain::{
    AuthorizationMode, ChargebackOutcome, Currency, DisputeId, EventId, EventKind, FlagReason,
    InspectionOutcome, Line, Lines, Location, Money, OrderLookup, OrderRef, OrderSpec, Payment,
    PaymentMethod, PaymentRef, Provider, Quantity, ReturnRef, Sku, StockKey, Timestamp,
};
use proptest::prelude::*;
use rust_decimal::Decimal;

fn text() -> impl Strategy<Value = String> {
    // Any non-control text, including non-ASCII, quotes and backslashes.
    "[^\\p{Cc}]{1,40}"
}

/// Text that says something: the contract refuses an actor or a reason of only spaces.
fn said() -> impl Strategy<Value = String> {
    text().prop_filter("not only whitespace", |s| !s.trim().is_empty())
}

fn free_text() -> impl Strategy<Value = String> {
    ".{0,40}"
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    (TIMESTAMP_MIN_MS..=TIMESTAMP_MAX_MS).prop_map(Timestamp)
}

fn key() -> impl Strategy<Value = StockKey> {
    (text(), text()).prop_map(|(s, l)| StockKey {
        sku: Sku::parse(s).unwrap(),
        location: Location::parse(l).unwrap(),
    })
}

fn quantity() -> impl Strategy<Value = Quantity> {
    (1u64..=1_000_000).prop_map(|n| Quantity::new(n).unwrap())
}

fn lines() -> impl Strategy<Value = Lines> {
    prop::collection::vec((key(), quantity()), 1..5).prop_map(|ls| {
        Lines::new(ls.into_iter().map(|(key, quantity)| Line { key, quantity })).unwrap()
    })
}

fn money() -> impl Strategy<Value = Money> {
    (any::<u64>(), 0u32..=10, "[A-Z]{3}").prop_map(|(n, scale, c)| Money {
        amount: Decimal::new(i64::try_from(n >> 1).unwrap(), scale),
        currency: Currency::parse(&c).unwrap(),
    })
}

fn provider() -> impl Strategy<Value = Provider> {
    text().prop_map(|s| Provider::parse(s).unwrap())
}

fn lookup() -> impl Strategy<Value = OrderLookup> {
    prop_oneof![
        text().prop_map(|s| OrderLookup::OrderRef(OrderRef::parse(s).unwrap())),
        (provider(), text()).prop_map(|(provider, r)| OrderLookup::PaymentRef {
            provider,
            payment_ref: PaymentRef::parse(r).unwrap()
        }),
    ]
}

fn payment() -> impl Strategy<Value = Payment> {
    (lookup(), prop::option::of(money())).prop_map(|(order, amount)| Payment { order, amount })
}

fn method() -> impl Strategy<Value = PaymentMethod> {
    "[A-Za-z0-9_.-]{1,64}".prop_map(|m| PaymentMethod::parse(m).unwrap())
}

fn order_ref() -> impl Strategy<Value = OrderRef> {
    text().prop_map(|s| OrderRef::parse(s).unwrap())
}

fn return_ref() -> impl Strategy<Value = ReturnRef> {
    text().prop_map(|s| ReturnRef::parse(s).unwrap())
}

fn dispute() -> impl Strategy<Value = DisputeId> {
    text().prop_map(|s| DisputeId::parse(s).unwrap())
}

fn kind() -> impl Strategy<Value = EventKind> {
    prop_oneof![
        (
            order_ref(),
            lines(),
            money(),
            prop::collection::vec((provider(), text()), 0..3)
        )
            .prop_map(
                |(order_ref, lines, amount, refs)| EventKind::OrderRegistered {
                    spec: OrderSpec {
                        order_ref,
                        lines,
                        amount
                    },
                    payment_refs: refs
                        .into_iter()
                        .map(|(p, r)| (p, PaymentRef::parse(r).unwrap()))
                        .collect(),
                }
            ),
        (order_ref(), provider(), text()).prop_map(|(order_ref, provider, r)| {
            EventKind::PaymentRefAttached {
                order_ref,
                provider,
                payment_ref: PaymentRef::parse(r).unwrap(),
            }
        }),
        (payment(), any::<bool>(), prop::option::of(method())).prop_map(|(payment, c, method)| {
            EventKind::PaymentAuthorized {
                payment,
                mode: if c {
                    AuthorizationMode::Confirmation
                } else {
                    AuthorizationMode::Notification
                },
                method,
            }
        }),
        payment().prop_map(|payment| EventKind::PaymentCaptured { payment }),
        payment().prop_map(|payment| EventKind::PaymentVoided { payment }),
        (payment(), free_text())
            .prop_map(|(payment, status)| EventKind::PaymentNoted { payment, status }),
        (payment(), any::<bool>(), free_text()).prop_map(|(payment, u, detail)| {
            EventKind::PaymentFlagged {
                payment,
                reason: if u {
                    FlagReason::Unverifiable
                } else {
                    FlagReason::AmountMismatch
                },
                detail,
            }
        }),
        (order_ref(), text()).prop_map(|(order_ref, k)| EventKind::ReservationExpired {
            order_ref,
            reservation: EventId::from_dedupe_key(&k)
        }),
        payment().prop_map(|payment| EventKind::PaymentSettled { payment }),
        payment().prop_map(|payment| EventKind::PaymentRefunded { payment }),
        (payment(), dispute(), prop::option::of(timestamp())).prop_map(
            |(payment, dispute_id, deadline)| {
                EventKind::ChargebackOpened {
                    payment,
                    dispute_id,
                    deadline,
                }
            }
        ),
        (payment(), dispute(), any::<bool>()).prop_map(|(payment, dispute_id, won)| {
            EventKind::ChargebackClosed {
                payment,
                dispute_id,
                outcome: if won {
                    ChargebackOutcome::Won
                } else {
                    ChargebackOutcome::Lost
                },
            }
        }),
        (order_ref(), return_ref(), lines()).prop_map(|(order_ref, reference, lines)| {
            EventKind::ReturnReceived {
                order_ref,
                reference,
                lines,
            }
        }),
        (return_ref(), any::<bool>(), lines()).prop_map(|(reference, restock, lines)| {
            EventKind::ReturnInspected {
                reference,
                outcome: if restock {
                    InspectionOutcome::Restock
                } else {
                    InspectionOutcome::WriteOff
                },
                lines,
            }
        }),
        (key(), quantity(), free_text()).prop_map(|(key, quantity, reference)| {
            EventKind::StockReceived {
                key,
                quantity,
                reference,
            }
        }),
        (
            key(),
            any::<i64>().prop_filter("non-zero", |d| *d != 0),
            free_text(),
            free_text(),
            free_text(),
            prop::option::of(said()),
        )
            .prop_map(|(key, delta, reason, evidence, approved_by, actor)| {
                EventKind::StockCorrected {
                    key,
                    delta,
                    reason,
                    evidence,
                    approved_by,
                    actor,
                }
            }),
        (
            text(),
            0usize..5,
            said(),
            said(),
            prop::option::of(free_text())
        )
            .prop_map(
                |(id, action, actor, reason, evidence)| EventKind::ExceptionAction {
                    exception_id: domain::ExceptionId::parse(id).unwrap(),
                    action: domain::OperatorAction::ALL[action],
                    actor,
                    reason,
                    evidence,
                }
            ),
        (
            0usize..3,
            prop::option::of((text(), 0usize..3)),
            said(),
            said()
        )
            .prop_map(|(default, provider, actor, reason)| {
                let mut policy = domain::PolicySet::uniform(domain::StockPolicy::ALL[default]);
                if let Some((name, p)) = provider
                    && let Ok(name) = domain::Provider::parse(name.trim())
                    && !name.as_str().contains([',', '='])
                {
                    policy.providers.insert(name, domain::StockPolicy::ALL[p]);
                }
                // Through its text, as every producer writes it: canonical.
                EventKind::PolicyChanged {
                    policy: policy.to_string().parse().unwrap(),
                    actor,
                    reason,
                }
            }),
    ]
}

/// What v2 adds to an envelope: a merchant and, maybe, a cause.
#[derive(Debug, Clone)]
struct Added {
    merchant: String,
    cause: Option<String>,
}

fn added() -> impl Strategy<Value = Added> {
    (text(), prop::option::of(text())).prop_map(|(merchant, cause)| Added { merchant, cause })
}

fn round_trip(
    kind: &EventKind,
    identity: String,
    occurred: Timestamp,
    recorded: Timestamp,
    raw: Option<Vec<u8>>,
    added: &Added,
) {
    let source = Source {
        provider: "stripe".to_owned(),
        identity,
    };
    let mut envelope = Envelope::new(kind, source.clone(), occurred, recorded, raw.as_deref())
        .with_merchant(added.merchant.clone());
    if let Some(cause) = &added.cause {
        envelope = envelope.caused_by(EventId::from_dedupe_key(&format!("cause:{cause}")));
    }
    let (decoded, event) = decode_event(&envelope.to_json().unwrap()).unwrap();
    assert_eq!(decoded, envelope);
    assert_eq!(event.kind, *kind);
    assert_eq!(event.id, envelope.event_id());
    assert_eq!(event.recorded_at, recorded);
    assert_eq!(decoded.occurred_at, occurred);

    // The previous release's encoding of the same delivery: the same event, upcast. What
    // v2 added (an operator action, a correction's actor, an authorization's payment method)
    // v1 cannot say.
    let v2_only = matches!(
        kind,
        EventKind::ExceptionAction { .. }
            | EventKind::PolicyChanged { .. }
            | EventKind::StockCorrected { actor: Some(_), .. }
            | EventKind::PaymentAuthorized {
                method: Some(_),
                ..
            }
    );
    if v2_only {
        return;
    }
    let old = v1::Envelope::new(kind, source, occurred, recorded, raw.as_deref()).unwrap();
    let (upcast, old_event) = decode_event(&old.to_json().unwrap()).unwrap();
    assert_eq!(old_event, event);
    assert_eq!(upcast.merchant, DEFAULT_MERCHANT);
    assert_eq!(upcast.causation_id, None);
    assert_eq!(
        upcast.with_merchant(added.merchant.clone()).payload,
        envelope.payload
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_kind_round_trips(
        kind in kind(),
        identity in "\\PC{1,80}",
        occurred in timestamp(),
        recorded in timestamp(),
        raw in prop::option::of(prop::collection::vec(any::<u8>(), 0..64)),
        added in added(),
    ) {
        round_trip(&kind, identity, occurred, recorded, raw, &added);
    }
}

#[test]
fn the_strategy_covers_every_kind() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..2000 {
        let k = kind().new_tree(&mut runner).unwrap().current();
        round_trip(
            &k,
            "stripe:evt_1".to_owned(),
            Timestamp(0),
            Timestamp(1),
            None,
            &Added {
                merchant: contract::DEFAULT_MERCHANT.to_owned(),
                cause: None,
            },
        );
        seen.insert(k.name());
    }
    assert_eq!(seen.len(), contract::v2::KINDS.len(), "{seen:?}");
}
