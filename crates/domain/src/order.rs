//! Orders as the ledger knows them: what the merchant registered (lines, amount), where
//! the order is in its life (`registered → reserved → sold`, or `reserved → released`),
//! and what came back of it (returns).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::stock::StockKey;
use crate::types::{EventId, Money, OrderRef, Quantity, ReturnRef, Timestamp};

/// The most lines one order, return or inspection may have.
pub const LINES_MAX: usize = 500;

/// One line of an order, a return or an inspection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub key: StockKey,
    pub quantity: Quantity,
}

/// Lines merged by (SKU, location): two lines for the same pair become one with the sum.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lines(#[serde(with = "crate::pairs")] BTreeMap<StockKey, Quantity>);

/// Why a set of lines was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidLines {
    #[error("lines must not be empty")]
    Empty,
    #[error("at most {LINES_MAX} lines are allowed")]
    TooMany,
    #[error("quantity for {0} is too large")]
    QuantityTooLarge(StockKey),
}

impl Lines {
    /// Merges `lines` by (SKU, location). Refuses an empty or oversized set.
    pub fn new(lines: impl IntoIterator<Item = Line>) -> Result<Self, InvalidLines> {
        let mut map: BTreeMap<StockKey, Quantity> = BTreeMap::new();
        let mut count = 0usize;
        for line in lines {
            count += 1;
            if count > LINES_MAX {
                return Err(InvalidLines::TooMany);
            }
            let merged = match map.get(&line.key) {
                Some(q) => Quantity::new(q.get() + line.quantity.get())
                    .map_err(|_| InvalidLines::QuantityTooLarge(line.key.clone()))?,
                None => line.quantity,
            };
            map.insert(line.key, merged);
        }
        if map.is_empty() {
            return Err(InvalidLines::Empty);
        }
        Ok(Self(map))
    }
    /// The merged lines in (SKU, location) order.
    pub fn iter(&self) -> impl Iterator<Item = (&StockKey, Quantity)> {
        self.0.iter().map(|(k, q)| (k, *q))
    }
    /// The quantity for one (SKU, location), if the lines name it.
    pub fn get(&self, key: &StockKey) -> Option<Quantity> {
        self.0.get(key).copied()
    }
    /// The (SKU, location) pairs named.
    pub fn keys(&self) -> impl Iterator<Item = &StockKey> {
        self.0.keys()
    }
}

/// What the merchant registered: the lines and the amount the payment must match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderSpec {
    pub order_ref: OrderRef,
    pub lines: Lines,
    pub amount: Money,
}

impl OrderSpec {
    /// True when both specs mean the same order (same lines, numerically same amount).
    pub fn same_as(&self, other: &OrderSpec) -> bool {
        self.order_ref == other.order_ref
            && self.lines == other.lines
            && self.amount.same_as(&other.amount)
    }
}

/// Where an order is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderState {
    /// Known, nothing moved yet.
    Registered,
    /// Stock blocked for an authorized payment.
    Reserved,
    /// Payment captured, stock committed.
    Sold,
    /// Payment voided or reservation expired; stock back to available.
    Released,
}

impl OrderState {
    /// The stable name used in the database and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            OrderState::Registered => "registered",
            OrderState::Reserved => "reserved",
            OrderState::Sold => "sold",
            OrderState::Released => "released",
        }
    }
}

/// An order and its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    pub spec: OrderSpec,
    pub state: OrderState,
    /// True once any stock moved for this order; from then on it cannot be changed.
    pub stock_moved: bool,
    /// The event that made the current reservation, while `state` is `Reserved`.
    pub reserved_by: Option<EventId>,
    /// When the current reservation was made (the authorizing event's `recorded_at`);
    /// the expiry sweeper releases it after the reservation TTL.
    pub reserved_at: Option<Timestamp>,
    /// Until when the current reservation may block stock: `reserved_at` plus the TTL of
    /// the provider and payment method that made it ([`crate::ReservationTtls`]). The
    /// expiry sweeper releases it after this instant. `None` for reservations recorded
    /// before deadlines were kept (the sweeper then counts the default TTL).
    #[serde(default)]
    pub reserved_until: Option<Timestamp>,
    /// Units of each line already received back through returns.
    #[serde(with = "crate::pairs")]
    pub returned: BTreeMap<StockKey, u64>,
    /// True when the payment was captured under `deduct_on_settlement` and stock waits for
    /// the settlement (`docs/trigger-matrix.md`, M-POL-4): the settlement sells it whatever
    /// policy is in force by then, and the order can no longer be changed. Absent (false)
    /// in bodies written before the stock policy existed.
    #[serde(default, skip_serializing_if = "is_false")]
    pub awaiting_settlement: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Order {
    /// A newly registered order.
    pub fn new(spec: OrderSpec) -> Self {
        Self {
            spec,
            state: OrderState::Registered,
            stock_moved: false,
            reserved_by: None,
            reserved_at: None,
            reserved_until: None,
            returned: BTreeMap::new(),
            awaiting_settlement: false,
        }
    }
}

/// A return: goods of one order received back, waiting for inspection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReturnRecord {
    pub reference: ReturnRef,
    pub order_ref: OrderRef,
    /// Units of each (SKU, location) received and not yet inspected.
    #[serde(with = "crate::pairs")]
    pub awaiting_inspection: BTreeMap<StockKey, u64>,
}
