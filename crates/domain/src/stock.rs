//! Units in buckets: the balances of one (SKU, location), the movements between buckets,
//! and the per-(SKU, location) sequence. Units are conserved by construction: every
//! movement takes a positive quantity out of one bucket and puts it into another.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::types::{Location, Quantity, Sku};

/// Where a unit is, from the ledger's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bucket {
    /// Sellable now.
    Available,
    /// Blocked for a payment that is authorized but not captured.
    Reserved,
    /// Committed to an order whose payment was captured.
    Sold,
    /// Physically back, waiting for inspection; not sellable.
    Returned,
    /// Returned or found unsellable; gone for good.
    WrittenOff,
    /// The outside world: receipts come from it, corrections go to it. The only bucket
    /// that may be negative (it is minus the units the ledger holds).
    External,
}

impl Bucket {
    /// Every bucket, in a fixed order.
    pub const ALL: [Bucket; 6] = [
        Bucket::Available,
        Bucket::Reserved,
        Bucket::Sold,
        Bucket::Returned,
        Bucket::WrittenOff,
        Bucket::External,
    ];

    /// The stable name used in the database, the API and the docs.
    pub fn as_str(self) -> &'static str {
        match self {
            Bucket::Available => "available",
            Bucket::Reserved => "reserved",
            Bucket::Sold => "sold",
            Bucket::Returned => "returned",
            Bucket::WrittenOff => "written_off",
            Bucket::External => "external",
        }
    }

    /// The bucket with the given stable name.
    pub fn parse(s: &str) -> Option<Bucket> {
        Bucket::ALL.into_iter().find(|b| b.as_str() == s)
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One (SKU, location) pair: the unit of balances and of sequence numbers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StockKey {
    pub sku: Sku,
    pub location: Location,
}

impl fmt::Display for StockKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.sku, self.location)
    }
}

/// The balances of one (SKU, location) and the sequence number of its last entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    pub available: i64,
    pub reserved: i64,
    pub sold: i64,
    pub returned: i64,
    pub written_off: i64,
    pub external: i64,
    /// The sequence number of the last entry for this (SKU, location); 0 when none.
    pub seq: u64,
}

impl Balance {
    /// The units in `bucket`.
    pub fn get(&self, bucket: Bucket) -> i64 {
        match bucket {
            Bucket::Available => self.available,
            Bucket::Reserved => self.reserved,
            Bucket::Sold => self.sold,
            Bucket::Returned => self.returned,
            Bucket::WrittenOff => self.written_off,
            Bucket::External => self.external,
        }
    }

    fn slot(&mut self, bucket: Bucket) -> &mut i64 {
        match bucket {
            Bucket::Available => &mut self.available,
            Bucket::Reserved => &mut self.reserved,
            Bucket::Sold => &mut self.sold,
            Bucket::Returned => &mut self.returned,
            Bucket::WrittenOff => &mut self.written_off,
            Bucket::External => &mut self.external,
        }
    }

    /// True when `quantity` units can leave `from` without making it negative.
    pub fn can_take(&self, from: Bucket, quantity: Quantity) -> bool {
        from == Bucket::External || self.get(from) >= quantity.as_i64()
    }

    /// Applies one movement and advances the sequence. The caller has checked
    /// [`Balance::can_take`]; the invariants are asserted, not assumed.
    pub fn apply(&mut self, m: &Movement) {
        assert_eq!(
            m.seq,
            self.seq + 1,
            "movement for {} out of sequence",
            m.key
        );
        assert!(
            self.can_take(m.from, m.quantity),
            "movement would make {} negative",
            m.from
        );
        *self.slot(m.from) -= m.quantity.as_i64();
        *self.slot(m.to) += m.quantity.as_i64();
        self.seq = m.seq;
        debug_assert_eq!(self.total(), 0, "units not conserved for {}", m.key);
    }

    /// The sum over all buckets, `external` included: always zero.
    pub fn total(&self) -> i64 {
        Bucket::ALL.into_iter().map(|b| self.get(b)).sum()
    }

    /// True when no bucket other than `external` is negative.
    pub fn is_valid(&self) -> bool {
        Bucket::ALL
            .into_iter()
            .filter(|b| *b != Bucket::External)
            .all(|b| self.get(b) >= 0)
            && self.total() == 0
    }
}

/// One ledger entry: a positive quantity moved from one bucket to another for one
/// (SKU, location), numbered by that pair's sequence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Movement {
    pub key: StockKey,
    pub from: Bucket,
    pub to: Bucket,
    pub quantity: Quantity,
    /// This entry's number in its (SKU, location) sequence: the previous entry's plus one.
    pub seq: u64,
}
