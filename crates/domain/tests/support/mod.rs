//! Builders shared by the domain tests: a `World` that holds a state and a clock, and
//! short constructors for keys, lines, orders and events.
#![allow(dead_code)]

use std::time::Duration;

use domain::*;

pub const HOLD: Duration = Duration::from_secs(600);

thread_local! {
    /// The policy a [`World::new`] starts under (set by [`under_every_policy`]).
    static POLICY: std::cell::Cell<StockPolicy> = const {
        std::cell::Cell::new(StockPolicy::ReserveOnAuthorization)
    };
}

/// The policy the current case runs under.
pub fn policy() -> StockPolicy {
    POLICY.with(std::cell::Cell::get)
}

/// Runs `case` once under every stock policy (`World::new` starts under it), naming the
/// policy if it panics.
pub fn under_every_policy(case: impl Fn(StockPolicy)) {
    for p in StockPolicy::ALL {
        POLICY.with(|c| c.set(p));
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(p)));
        POLICY.with(|c| c.set(StockPolicy::ReserveOnAuthorization));
        if let Err(e) = run {
            eprintln!("the case failed under {p}");
            std::panic::resume_unwind(e);
        }
    }
}

/// The provider of every event the tests make, unless a case says otherwise.
pub fn provider() -> Provider {
    Provider::parse("stripe").unwrap()
}

pub fn key(sku: &str, loc: &str) -> StockKey {
    StockKey {
        sku: Sku::parse(sku).unwrap(),
        location: Location::parse(loc).unwrap(),
    }
}

pub fn lines(items: &[(&str, u64)]) -> Lines {
    Lines::new(items.iter().map(|(s, q)| Line {
        key: key(s, "main"),
        quantity: Quantity::new(*q).unwrap(),
    }))
    .unwrap()
}

pub fn order_ref(s: &str) -> OrderRef {
    OrderRef::parse(s).unwrap()
}

pub fn usd(s: &str) -> Money {
    Money::parse(s, "USD").unwrap()
}

pub fn pay(order: &str, amount: Option<&str>) -> Payment {
    Payment {
        order: OrderLookup::OrderRef(order_ref(order)),
        amount: amount.map(usd),
    }
}

pub fn spec(order: &str, items: &[(&str, u64)], amount: &str) -> OrderSpec {
    OrderSpec {
        order_ref: order_ref(order),
        lines: lines(items),
        amount: usd(amount),
    }
}

/// A state, a clock and a counter for fresh event ids.
pub struct World {
    pub state: State,
    pub now: i64,
    next: u64,
}

impl World {
    pub fn new() -> Self {
        Self {
            state: State {
                policy: PolicySet::uniform(policy()),
                ..State::default()
            },
            now: 1_000_000,
            next: 0,
        }
    }

    pub fn ctx(&self) -> Context<'static> {
        Context {
            now: Timestamp(self.now),
            unknown_order_hold: HOLD,
            reservation_ttls: domain::ReservationTtls::documented_ref(),
        }
    }

    pub fn event(&mut self, kind: EventKind) -> Event {
        self.next += 1;
        Event {
            id: EventId::from_dedupe_key(&format!("test:{}", self.next)),
            provider: provider(),
            recorded_at: Timestamp(self.now),
            kind,
        }
    }

    /// Applies a new event and returns the decision.
    pub fn when(&mut self, kind: EventKind) -> Decision {
        let e = self.event(kind);
        self.deliver(&e, false)
    }

    pub fn deliver(&mut self, e: &Event, operator_retry: bool) -> Decision {
        let ctx = self.ctx();
        self.state.step(
            &Delivery {
                event: e.clone(),
                operator_retry,
            },
            &ctx,
        )
    }

    pub fn receive(&mut self, sku: &str, n: u64) {
        let d = self.when(EventKind::StockReceived {
            key: key(sku, "main"),
            quantity: Quantity::new(n).unwrap(),
            reference: format!("po-{sku}-{n}"),
        });
        assert!(matches!(d, Decision::Record(_)));
    }

    pub fn register(&mut self, order: &str, items: &[(&str, u64)], amount: &str) {
        let d = self.when(EventKind::OrderRegistered {
            spec: spec(order, items, amount),
            payment_refs: vec![],
        });
        assert_eq!(
            outcome(&d),
            Outcome::NoOp {
                reason: NoOpReason::OrderRegistered
            }
        );
    }

    /// (available, reserved, sold, returned, written_off) of one SKU at `main`.
    pub fn stock(&self, sku: &str) -> (i64, i64, i64, i64, i64) {
        let b = self.state.balance(&key(sku, "main"));
        (b.available, b.reserved, b.sold, b.returned, b.written_off)
    }

    pub fn order_state(&self, order: &str) -> OrderState {
        self.state.orders[&order_ref(order)].state
    }
}

pub fn outcome(d: &Decision) -> Outcome {
    match d {
        Decision::Record(r) => r.outcome.clone(),
        other => panic!("expected a recorded outcome, got {other:?}"),
    }
}

pub fn exception_code(d: &Decision) -> String {
    match outcome(d) {
        Outcome::Exception { reason, .. } => reason.code().to_owned(),
        other => panic!("expected an exception, got {other:?}"),
    }
}

pub fn noop_reason(d: &Decision) -> NoOpReason {
    match outcome(d) {
        Outcome::NoOp { reason } => reason,
        other => panic!("expected a no-op, got {other:?}"),
    }
}

pub fn moved(d: &Decision) -> Vec<(String, Bucket, Bucket, u64)> {
    match outcome(d) {
        Outcome::Moved { movements } => movements
            .iter()
            .map(|m| (m.key.sku.to_string(), m.from, m.to, m.quantity.get()))
            .collect(),
        other => panic!("expected movements, got {other:?}"),
    }
}
