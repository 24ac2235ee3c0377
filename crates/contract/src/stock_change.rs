//! The stock-change message, version 1: what downstream systems (storefronts, POS, ERP)
//! receive on the stock-change stream after every committed ledger transaction, one per
//! (SKU, location) the transaction touched. Like the event envelope it is a released wire
//! shape: fields are added only in a new version. Schema: `schemas/stock-change/v1.schema.json`.

use domain::{Balance, EventId, StockKey, Timestamp};
use serde::{Deserialize, Serialize};

use crate::error::EncodeError;
use crate::wire_time;

/// The `schema` name every stock-change message carries.
pub const STOCK_CHANGE_SCHEMA: &str = "stockledger.stock_change";

/// The stock-change version this release writes.
pub const STOCK_CHANGE_VERSION: u32 = 1;

/// The buckets a subscriber sees (the ledger's `external` counterpart is internal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Buckets {
    pub available: i64,
    pub reserved: i64,
    pub sold: i64,
    pub returned: i64,
    pub written_off: i64,
}

/// What caused a change: the contract event and its kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cause {
    pub event_id: String,
    pub kind: String,
}

/// One stock-change message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StockChange {
    /// Always [`STOCK_CHANGE_SCHEMA`].
    pub schema: String,
    /// Always [`STOCK_CHANGE_VERSION`] for this shape.
    pub version: u32,
    pub sku: String,
    pub location: String,
    /// The (SKU, location) ledger sequence after this change. It only grows, so a
    /// subscriber orders and deduplicates by it; it skips the sequences of entries made
    /// earlier in the same ledger transaction (one message per pair per transaction).
    pub seq: u64,
    /// Every bucket after the change.
    pub balances: Buckets,
    pub cause: Cause,
    /// When the ledger committed the change (RFC 3339, UTC).
    pub recorded_at: String,
}

impl StockChange {
    /// The message for `key` after a transaction caused by `event_id` of `kind`.
    pub fn new(
        key: &StockKey,
        balance: &Balance,
        event_id: EventId,
        kind: &str,
        recorded_at: Timestamp,
    ) -> Self {
        Self {
            schema: STOCK_CHANGE_SCHEMA.to_owned(),
            version: STOCK_CHANGE_VERSION,
            sku: key.sku.as_str().to_owned(),
            location: key.location.as_str().to_owned(),
            seq: balance.seq,
            balances: Buckets {
                available: balance.available,
                reserved: balance.reserved,
                sold: balance.sold,
                returned: balance.returned,
                written_off: balance.written_off,
            },
            cause: Cause {
                event_id: event_id.to_string(),
                kind: kind.to_owned(),
            },
            recorded_at: wire_time::format(recorded_at),
        }
    }

    /// The JSON bytes. An error is a bug in the encoder, surfaced rather than written as
    /// an empty message.
    pub fn to_json(&self) -> Result<Vec<u8>, EncodeError> {
        serde_json::to_vec(self).map_err(|source| EncodeError {
            what: "a stock change",
            source,
        })
    }

    /// The JSON as text, for a store that keeps the message in a text column: serde_json
    /// writes text, so nothing is converted (and nothing lossy) on the way.
    pub fn to_json_string(&self) -> Result<String, EncodeError> {
        serde_json::to_string(self).map_err(|source| EncodeError {
            what: "a stock change",
            source,
        })
    }

    /// Parses a message; `None` for anything that is not a version-1 stock change.
    pub fn parse(bytes: &[u8]) -> Option<StockChange> {
        let c: StockChange = serde_json::from_slice(bytes).ok()?;
        (c.schema == STOCK_CHANGE_SCHEMA && c.version == STOCK_CHANGE_VERSION).then_some(c)
    }
}
