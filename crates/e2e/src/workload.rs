//! Deterministic workloads: a realistic mix of receipts, order registrations,
//! authorizations, captures and voids over many SKUs, with duplicate deliveries. Each
//! event comes with the identity its id is derived from, so it can be published as a real
//! envelope.

use domain::{
    AuthorizationMode, Event, EventId, EventKind, Line, Lines, Location, Money, OrderLookup,
    OrderRef, OrderSpec, Payment, Quantity, Sku, StockKey, Timestamp,
};

/// A small, fast, deterministic generator (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

fn key(sku: u64) -> StockKey {
    StockKey {
        sku: Sku::parse(format!("sku-{sku:05}")).expect("valid by construction"),
        location: Location::parse("main").expect("valid by construction"),
    }
}

fn event(identity: &str, t: i64, kind: EventKind) -> (String, Event) {
    (
        identity.to_owned(),
        Event {
            id: EventId::from_dedupe_key(identity),
            provider: domain::Provider::named("test"),
            recorded_at: Timestamp(t),
            kind,
        },
    )
}

fn payment(order: &str) -> Payment {
    Payment {
        order: OrderLookup::OrderRef(OrderRef::parse(order).expect("valid by construction")),
        amount: None,
    }
}

/// The shape of a workload.
#[derive(Debug, Clone, Copy)]
pub struct Mix {
    /// Percent of orders that end in a void (the rest of those that end are captured).
    pub void_percent: u64,
    /// Percent of orders left authorized, neither captured nor voided.
    pub open_percent: u64,
    /// Units each SKU receives at the start (at least; up to twice this).
    pub stock_per_sku: u64,
    /// `recorded_at` of the first event, in ms since the epoch.
    pub base_time: i64,
}

impl Mix {
    /// The benchmark's mix: 9 in 10 orders authorized, 7 in 10 captured, the rest voided.
    pub fn realistic() -> Self {
        Self {
            void_percent: 30,
            open_percent: 0,
            stock_per_sku: 50,
            base_time: 0,
        }
    }

    /// A mix whose final balances do not depend on the order in which events are applied
    /// (no voids, stock for every order), for tests where redelivery reorders events.
    pub fn order_insensitive(base_time: i64) -> Self {
        Self {
            void_percent: 0,
            open_percent: 0,
            stock_per_sku: 1_000_000,
            base_time,
        }
    }
}

/// About `n` events over `skus` SKUs with the realistic mix.
pub fn mixed(n: usize, skus: u64, seed: u64) -> Vec<(String, Event)> {
    with_mix(n, skus, seed, Mix::realistic())
}

/// About `n` events over `skus` SKUs: every SKU first receives stock, then orders of one or
/// two lines are registered and authorized (mostly), then captured or voided per `mix`,
/// with ~2% duplicate deliveries. Returns `(identity, event)` pairs in publish order.
pub fn with_mix(n: usize, skus: u64, seed: u64, mix: Mix) -> Vec<(String, Event)> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::with_capacity(n + n / 40);
    for s in 0..skus {
        let kind = EventKind::StockReceived {
            key: key(s),
            quantity: q(mix.stock_per_sku + rng.below(mix.stock_per_sku)),
            reference: format!("po-{s}"),
        };
        out.push(event(
            &format!("wl:{seed}:receipt:{s}"),
            mix.base_time,
            kind,
        ));
    }
    let mut order = 0u64;
    while out.len() < n {
        order += 1;
        let o = format!("wl-{seed}-{order}");
        let t = mix.base_time + i64::try_from(order).unwrap_or(i64::MAX / 2);
        let mut lines = vec![Line {
            key: key(rng.below(skus)),
            quantity: q(1 + rng.below(3)),
        }];
        if rng.below(3) == 0 {
            lines.push(Line {
                key: key(rng.below(skus)),
                quantity: q(1),
            });
        }
        let spec = OrderSpec {
            order_ref: OrderRef::parse(&o).expect("valid by construction"),
            lines: Lines::new(lines).expect("valid by construction"),
            amount: Money::parse("10.00", "USD").expect("valid by construction"),
        };
        out.push(event(
            &format!("wl:{o}:register"),
            t,
            EventKind::OrderRegistered {
                spec,
                payment_refs: vec![],
            },
        ));
        let open = rng.below(100) < mix.open_percent;
        if open || rng.below(10) < 9 {
            let mode = if rng.below(2) == 0 {
                AuthorizationMode::Confirmation
            } else {
                AuthorizationMode::Notification
            };
            out.push(event(
                &format!("wl:{o}:auth"),
                t,
                EventKind::PaymentAuthorized {
                    payment: payment(&o),
                    mode,
                    method: None,
                },
            ));
        }
        if !open {
            let end = if rng.below(100) >= mix.void_percent {
                EventKind::PaymentCaptured {
                    payment: payment(&o),
                }
            } else {
                EventKind::PaymentVoided {
                    payment: payment(&o),
                }
            };
            out.push(event(&format!("wl:{o}:end"), t, end));
        }
        if rng.below(50) == 0 {
            let dup = out[usize::try_from(rng.below(out.len() as u64)).unwrap_or(0)].clone();
            out.push(dup);
        }
    }
    out
}

fn q(n: u64) -> Quantity {
    Quantity::new(n).expect("valid by construction")
}
