//! Property tests: random histories of many orders sharing SKUs, with duplicated and
//! reordered deliveries, thrown at the trigger matrix. Whatever the order, the ledger
//! stays truthful: no bucket but `external` goes negative, units are conserved, balances
//! equal the sum of the recorded movements, every event id has exactly one outcome, and
//! applying a history twice equals applying it once. Every property runs under every stock
//! policy, with histories that change the policy (per provider) in the middle.
#![allow(clippy::unwrap_used)]

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use domain::*;
use proptest::prelude::*;
use support::*;

const SKUS: [&str; 3] = ["a", "b", "c"];
const ORDERS: usize = 5;

#[derive(Debug, Clone)]
enum Op {
    Receive(usize, u64),
    Register(usize),
    Authorize(usize, bool),
    Capture(usize),
    Void(usize),
    Expire(usize),
    Refund(usize),
    Return(usize, u64),
    Inspect(usize, bool, u64),
    Correct(usize, i64),
    Settle(usize),
    /// `policy.changed`: the default policy, and stripe's (`None`: no override).
    ChangePolicy(usize, Option<usize>),
    /// Deliver again the event of an earlier op (by index modulo the history length).
    Redeliver(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..SKUS.len(), 1..6u64).prop_map(|(s, n)| Op::Receive(s, n)),
        (0..ORDERS).prop_map(Op::Register),
        (0..ORDERS, any::<bool>()).prop_map(|(o, c)| Op::Authorize(o, c)),
        (0..ORDERS).prop_map(Op::Capture),
        (0..ORDERS).prop_map(Op::Void),
        (0..ORDERS).prop_map(Op::Expire),
        (0..ORDERS).prop_map(Op::Refund),
        (0..ORDERS, 1..3u64).prop_map(|(o, n)| Op::Return(o, n)),
        (0..ORDERS, any::<bool>(), 1..3u64).prop_map(|(o, r, n)| Op::Inspect(o, r, n)),
        (0..SKUS.len(), -4..5i64).prop_map(|(s, d)| Op::Correct(s, d)),
        (0..ORDERS).prop_map(Op::Settle),
        (
            0..StockPolicy::ALL.len(),
            proptest::option::of(0..StockPolicy::ALL.len())
        )
            .prop_map(|(d, s)| Op::ChangePolicy(d, s)),
        any::<usize>().prop_map(Op::Redeliver),
    ]
}

/// Order `i` wants SKUs `i % 3` and `(i + 1) % 3`, so orders compete for stock.
fn order_lines(i: usize) -> Vec<(&'static str, u64)> {
    vec![(SKUS[i % 3], 1 + (i as u64 % 2)), (SKUS[(i + 1) % 3], 1)]
}

fn oref(i: usize) -> String {
    format!("o{i}")
}

/// The payments of even orders come from stripe, of odd ones from adyen, so a per-provider
/// policy applies to some orders and not others.
fn provider_of(op: &Op) -> Provider {
    let order = match op {
        Op::Authorize(o, _) | Op::Capture(o) | Op::Void(o) | Op::Refund(o) | Op::Settle(o) => *o,
        _ => return Provider::parse("merchant").unwrap(),
    };
    Provider::parse(if order % 2 == 0 { "stripe" } else { "adyen" }).unwrap()
}

/// Turns ops into events. `Expire` names the reservation the order holds in `state` at the
/// time (as the sweeper would), so it is resolved while the history is being applied.
fn to_event(op: &Op, idx: usize, history: &[Event], state: &State) -> Option<Event> {
    let id = EventId::from_dedupe_key(&format!("prop:{idx}"));
    let payment = |o: usize| pay(&oref(o), Some(&format!("{}.00", 10 * (o + 1))));
    let kind = match op {
        Op::Receive(s, n) => EventKind::StockReceived {
            key: key(SKUS[*s], "main"),
            quantity: Quantity::new(*n).ok()?,
            reference: format!("r{idx}"),
        },
        Op::Register(o) => EventKind::OrderRegistered {
            spec: spec(&oref(*o), &order_lines(*o), &format!("{}", 10 * (o + 1))),
            payment_refs: vec![],
        },
        Op::Authorize(o, confirm) => EventKind::PaymentAuthorized {
            payment: payment(*o),
            mode: if *confirm {
                AuthorizationMode::Confirmation
            } else {
                AuthorizationMode::Notification
            },
            method: None,
        },
        Op::Capture(o) => EventKind::PaymentCaptured {
            payment: payment(*o),
        },
        Op::Void(o) => EventKind::PaymentVoided {
            payment: payment(*o),
        },
        Op::Refund(o) => EventKind::PaymentRefunded {
            payment: payment(*o),
        },
        Op::Settle(o) => EventKind::PaymentSettled {
            payment: payment(*o),
        },
        Op::ChangePolicy(d, stripe) => {
            let mut policy = PolicySet::uniform(StockPolicy::ALL[*d]);
            if let Some(s) = stripe {
                policy
                    .providers
                    .insert(Provider::parse("stripe").unwrap(), StockPolicy::ALL[*s]);
            }
            EventKind::PolicyChanged {
                policy: policy.to_string().parse().unwrap(),
                actor: "ops".into(),
                reason: "test".into(),
            }
        }
        Op::Expire(o) => {
            let reservation = state.orders.get(&order_ref(&oref(*o)))?.reserved_by?;
            EventKind::ReservationExpired {
                order_ref: order_ref(&oref(*o)),
                reservation,
            }
        }
        Op::Return(o, n) => EventKind::ReturnReceived {
            order_ref: order_ref(&oref(*o)),
            reference: ReturnRef::parse(format!("ret{o}")).ok()?,
            lines: lines(&[(SKUS[*o % 3], *n)]),
        },
        Op::Inspect(o, restock, n) => EventKind::ReturnInspected {
            reference: ReturnRef::parse(format!("ret{o}")).ok()?,
            outcome: if *restock {
                InspectionOutcome::Restock
            } else {
                InspectionOutcome::WriteOff
            },
            lines: lines(&[(SKUS[*o % 3], *n)]),
        },
        Op::Correct(s, d) => EventKind::StockCorrected {
            key: key(SKUS[*s], "main"),
            delta: *d,
            reason: "count".into(),
            evidence: "sheet".into(),
            approved_by: "ops".into(),
            actor: None,
        },
        Op::Redeliver(k) => {
            return (!history.is_empty()).then(|| history[k % history.len()].clone());
        }
    };
    Some(Event {
        id,
        provider: provider_of(op),
        recorded_at: Timestamp(idx as i64),
        kind,
    })
}

/// No hold: an event for an unknown order is an exception at once, so every delivery is
/// decided and a second pass over the same history only meets duplicates.
fn ctx() -> Context<'static> {
    Context {
        now: Timestamp(1_000_000),
        unknown_order_hold: Duration::ZERO,
        reservation_ttls: domain::ReservationTtls::documented_ref(),
    }
}

/// A fresh state under `policy` for every provider.
fn start(policy: StockPolicy) -> State {
    State {
        policy: PolicySet::uniform(policy),
        ..State::default()
    }
}

/// Applies `ops` from a state under `policy` and returns the final state and the events
/// actually delivered.
fn run(policy: StockPolicy, ops: &[Op]) -> (State, Vec<Event>) {
    let mut state = start(policy);
    let mut history = Vec::new();
    for (idx, op) in ops.iter().enumerate() {
        let Some(event) = to_event(op, idx, &history, &state) else {
            continue;
        };
        let before = state.clone();
        let d = state.step(
            &Delivery {
                event: event.clone(),
                operator_retry: false,
            },
            &ctx(),
        );
        match &d {
            Decision::Duplicate => assert_eq!(state, before, "a duplicate changed the state"),
            Decision::Record(r) => assert_eq!(state.outcomes[&event.id], r.outcome),
            other => panic!("unexpected decision without hold: {other:?}"),
        }
        history.push(event);
    }
    (state, history)
}

fn check_invariants(state: &State, history: &[Event]) {
    // No bucket but external negative; units conserved per (SKU, location).
    for (k, b) in &state.balances {
        assert!(b.is_valid(), "{k}: {b:?}");
    }
    // Balances and sequences equal what the recorded movements add up to.
    let mut replayed: BTreeMap<StockKey, Balance> = BTreeMap::new();
    let mut moves: Vec<&Movement> = state
        .outcomes
        .values()
        .filter_map(|o| match o {
            Outcome::Moved { movements } => Some(movements.iter()),
            _ => None,
        })
        .flatten()
        .collect();
    moves.sort_by(|a, b| (&a.key, a.seq).cmp(&(&b.key, b.seq)));
    for m in moves {
        replayed.entry(m.key.clone()).or_default().apply(m);
    }
    for (k, b) in &state.balances {
        assert_eq!(
            replayed.get(k).copied().unwrap_or_default(),
            *b,
            "balance of {k} differs from its entries"
        );
    }
    // Each delivered event id has exactly one outcome.
    for e in history {
        assert!(
            state.outcomes.contains_key(&e.id),
            "event {} has no outcome",
            e.id
        );
    }
    // A reserved order holds exactly its lines in `reserved`; reserved units are owned.
    let mut owed: BTreeMap<StockKey, i64> = BTreeMap::new();
    for o in state
        .orders
        .values()
        .filter(|o| o.state == OrderState::Reserved)
    {
        for (k, q) in o.spec.lines.iter() {
            *owed.entry(k.clone()).or_default() += q.as_i64();
        }
    }
    for (k, b) in &state.balances {
        assert_eq!(
            b.reserved,
            owed.get(k).copied().unwrap_or(0),
            "reserved units of {k} not owned by reserved orders"
        );
    }
    // An order whose sale waits for its settlement was not sold yet.
    for o in state.orders.values().filter(|o| o.awaiting_settlement) {
        assert_ne!(
            o.state,
            OrderState::Sold,
            "{} sold and still awaiting",
            o.spec.order_ref
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn any_history_keeps_the_ledger_truthful(ops in proptest::collection::vec(op(), 0..80)) {
        for policy in StockPolicy::ALL {
            let (state, history) = run(policy, &ops);
            check_invariants(&state, &history);
        }
    }

    #[test]
    fn applying_a_history_twice_equals_applying_it_once(ops in proptest::collection::vec(op(), 0..60)) {
        for policy in StockPolicy::ALL {
            let (once, history) = run(policy, &ops);
            let mut twice = once.clone();
            for e in &history {
                let d = twice.step(&Delivery { event: e.clone(), operator_retry: false }, &ctx());
                prop_assert_eq!(d, Decision::Duplicate);
            }
            prop_assert_eq!(twice, once);
        }
    }

    #[test]
    fn replaying_the_recorded_history_gives_the_same_ledger(
        ops in proptest::collection::vec(op(), 0..60),
    ) {
        // A rebuild: the delivered events, policy changes included, applied again to an
        // empty ledger that starts under the same policy, give the same state, policy in
        // force included.
        for policy in StockPolicy::ALL {
            let (once, history) = run(policy, &ops);
            let mut rebuilt = start(policy);
            for e in &history {
                rebuilt.step(&Delivery { event: e.clone(), operator_retry: false }, &ctx());
            }
            prop_assert_eq!(rebuilt, once);
        }
    }

    #[test]
    fn any_reordering_keeps_the_ledger_truthful(
        ops in proptest::collection::vec(op(), 0..60),
        seed in any::<u64>(),
    ) {
        // Deliver the same events in a shuffled order (with duplicates); the invariants hold
        // whatever the order of arrival.
        let policy = StockPolicy::ALL[(seed % 3) as usize];
        let (_, history) = run(policy, &ops);
        let mut shuffled = history.clone();
        let mut x = seed | 1;
        for i in (1..shuffled.len()).rev() {
            x ^= x << 13; x ^= x >> 7; x ^= x << 17;
            shuffled.swap(i, (x % (i as u64 + 1)) as usize);
        }
        let mut state = start(policy);
        for e in &shuffled {
            state.step(&Delivery { event: e.clone(), operator_retry: false }, &ctx());
        }
        check_invariants(&state, &shuffled);
    }
}
