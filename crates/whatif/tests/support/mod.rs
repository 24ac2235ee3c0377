//! A generated history for the what-if's tests and benchmark: receipts for every SKU, then
//! orders of one or two lines registered and (mostly) authorized by Stripe, Adyen (notified)
//! or PortOne (asked), then captured within the hour, voided, never captured (their
//! reservations expire; the sweeper's expiries are in the history, as recorded), or
//! captured after the TTL; a flash sale on one SKU where more buyers authorize than there
//! is stock; ~1% duplicate deliveries. Deterministic for a seed, in stream order.
#![allow(dead_code, clippy::unwrap_used)]

use domain::{
    AuthorizationMode, Delivery, Event, EventId, EventKind, Line, Lines, Location, Money,
    OrderLookup, OrderRef, OrderSpec, Payment, Provider, Quantity, Sku, StockKey, Timestamp,
};
use whatif::Recorded;

/// 2026-11-20T00:00:00Z.
pub const T0: i64 = 1_795_132_800_000;
pub const MINUTE: i64 = 60_000;
pub const HOUR: i64 = 60 * MINUTE;
pub const DAY: i64 = 24 * HOUR;
/// The TTL the recording's sweeper used.
pub const RECORDED_TTL_MS: i64 = 7 * DAY;
/// The flash sale: this SKU, this much stock, from day 2 for an hour.
pub const FLASH_SKU: &str = "sku-flash";
pub const FLASH_STOCK: u64 = 40;
pub const FLASH_START: i64 = T0 + 2 * DAY;

/// xorshift64*: small, fast, deterministic.
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

pub fn key(sku: &str) -> StockKey {
    StockKey {
        sku: Sku::parse(sku).unwrap(),
        location: Location::parse("main").unwrap(),
    }
}

fn sku_name(s: u64) -> String {
    format!("sku-{s:05}")
}

struct Builder {
    out: Vec<(i64, u64, Recorded)>,
    seq: u64,
}

impl Builder {
    fn push(&mut self, t: i64, identity: &str, provider: &str, kind: EventKind, ttl_expiry: bool) {
        self.seq += 1;
        let event = Event {
            id: EventId::from_dedupe_key(identity),
            provider: Provider::parse(provider).unwrap(),
            recorded_at: Timestamp(t),
            kind,
        };
        self.out.push((
            t,
            self.seq,
            Recorded {
                delivery: Delivery {
                    event,
                    operator_retry: false,
                },
                ttl_expiry,
            },
        ));
    }
}

fn payment(order: &str) -> Payment {
    Payment {
        order: OrderLookup::OrderRef(OrderRef::parse(order).unwrap()),
        amount: None,
    }
}

/// About `n` events over `skus` SKUs (plus the flash-sale SKU) spread over `days` days.
pub fn history(n: usize, skus: u64, days: i64, seed: u64) -> Vec<Recorded> {
    let mut rng = Rng::new(seed);
    let mut b = Builder {
        out: Vec::with_capacity(n + n / 50),
        seq: 0,
    };
    for s in 0..skus {
        let kind = EventKind::StockReceived {
            key: key(&sku_name(s)),
            quantity: Quantity::new(100 + rng.below(200)).unwrap(),
            reference: format!("po-{s}"),
        };
        b.push(
            T0,
            &format!("gen:{seed}:receipt:{s}"),
            "merchant",
            kind,
            false,
        );
    }
    let kind = EventKind::StockReceived {
        key: key(FLASH_SKU),
        quantity: Quantity::new(FLASH_STOCK).unwrap(),
        reference: "po-flash".to_owned(),
    };
    b.push(
        T0,
        &format!("gen:{seed}:receipt:flash"),
        "merchant",
        kind,
        false,
    );
    // Daily restocks, about what a day's orders take (the flash-sale SKU gets none).
    for d in 1..days {
        for s in 0..skus {
            let kind = EventKind::StockReceived {
                key: key(&sku_name(s)),
                quantity: Quantity::new(restock(n, skus, days) + rng.below(10)).unwrap(),
                reference: format!("po-{s}-{d}"),
            };
            b.push(
                T0 + d * DAY,
                &format!("gen:{seed}:restock:{s}:{d}"),
                "merchant",
                kind,
                false,
            );
        }
    }
    // About 3.3 events per order.
    let orders = (n.saturating_sub(b.out.len()) as i64 * 10 / 33).max(1);
    let span = days * DAY;
    let mut k = 0i64;
    while b.out.len() < n {
        k += 1;
        let t = T0 + MINUTE + k * span / orders + rng.below(1000) as i64;
        order(&mut b, &mut rng, seed, skus, k, t);
        if rng.below(100) == 0 && !b.out.is_empty() {
            let i = rng.below(b.out.len() as u64) as usize;
            let mut again = b.out[i].2.clone();
            again.delivery.event.recorded_at = Timestamp(t + 5);
            b.seq += 1;
            b.out.push((t + 5, b.seq, again));
        }
    }
    b.out.sort_by_key(|(t, seq, _)| (*t, *seq));
    b.out.into_iter().map(|(_, _, r)| r).collect()
}

/// Units a SKU receives each day: about what a day's orders ask of it.
fn restock(n: usize, skus: u64, days: i64) -> u64 {
    // ~0.3 orders per event, ~1.3 lines per order, 2 units per line on average.
    let units = n as u64 * 3 / 10 * 13 / 10 * 2;
    (units / skus.max(1) / days.max(1) as u64).max(1)
}

fn order(b: &mut Builder, rng: &mut Rng, seed: u64, skus: u64, k: i64, t: i64) {
    let o = format!("gen-{seed}-{k}");
    let flash = (FLASH_START..FLASH_START + HOUR).contains(&t) && rng.below(2) == 0;
    let mut lines = Vec::new();
    if flash {
        lines.push(Line {
            key: key(FLASH_SKU),
            quantity: Quantity::new(1).unwrap(),
        });
    } else {
        lines.push(Line {
            key: key(&sku_name(rng.below(skus))),
            quantity: Quantity::new(1 + rng.below(3)).unwrap(),
        });
        if rng.below(10) < 3 {
            lines.push(Line {
                key: key(&sku_name(rng.below(skus))),
                quantity: Quantity::new(1).unwrap(),
            });
        }
    }
    let spec = OrderSpec {
        order_ref: OrderRef::parse(&o).unwrap(),
        lines: Lines::new(lines).unwrap(),
        amount: Money::parse("25.00", "USD").unwrap(),
    };
    let kind = EventKind::OrderRegistered {
        spec,
        payment_refs: vec![],
    };
    b.push(t, &format!("gen:{o}:register"), "merchant", kind, false);
    let (provider, mode) = match rng.below(20) {
        0..=11 => ("stripe", AuthorizationMode::Notification),
        12..=16 => ("adyen", AuthorizationMode::Notification),
        _ => ("portone", AuthorizationMode::Confirmation),
    };
    let fate = rng.below(100);
    if fate < 5 {
        return; // registered, never paid
    }
    let auth_id = format!("gen:{o}:auth");
    let auth = EventKind::PaymentAuthorized {
        payment: payment(&o),
        mode,
        method: None,
    };
    b.push(t + 1_000, &auth_id, provider, auth, false);
    let captured = |b: &mut Builder, at: i64| {
        let kind = EventKind::PaymentCaptured {
            payment: payment(&o),
        };
        b.push(at, &format!("gen:{o}:capture"), provider, kind, false);
    };
    let swept = |b: &mut Builder| {
        // The recording's sweeper: a minute after the deadline.
        let kind = EventKind::ReservationExpired {
            order_ref: OrderRef::parse(&o).unwrap(),
            reservation: EventId::from_dedupe_key(&auth_id),
        };
        let at = t + 1_000 + RECORDED_TTL_MS + MINUTE;
        let identity = format!("stockledger:reservation-expired:{auth_id}");
        b.push(at, &identity, "stockledger", kind, true);
    };
    match fate {
        5..=69 => captured(b, t + MINUTE + rng.below(59) as i64 * MINUTE),
        70..=81 => {
            let kind = EventKind::PaymentVoided {
                payment: payment(&o),
            };
            let at = t + MINUTE + rng.below(29) as i64 * MINUTE;
            b.push(at, &format!("gen:{o}:void"), provider, kind, false);
        }
        82..=96 => swept(b),
        _ => {
            swept(b);
            captured(b, t + RECORDED_TTL_MS + DAY);
        }
    }
}
