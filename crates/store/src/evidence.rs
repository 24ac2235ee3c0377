//! Reads for evidence packs (`operator::evidence`): the entries a set of events made, the
//! balance of a (SKU, location) just before one of its entries (computed from the entry
//! sequence, never stored), and the exceptions about one order. Read-only.

use std::collections::BTreeMap;

use crate::read::EntryRow;
use crate::rows::corrupt_row;
use crate::{Store, StoreError};

/// The most events one evidence read takes at once (an order has a handful).
pub const EVIDENCE_EVENTS_MAX: usize = 1000;

/// The buckets of a balance, in the order evidence shows them.
pub const BUCKETS: [&str; 6] = [
    "available",
    "reserved",
    "sold",
    "returned",
    "written_off",
    "external",
];

impl Store {
    /// Every entry the events `event_ids` made, by (SKU, location, sequence); at most
    /// [`EVIDENCE_EVENTS_MAX`] events are asked about.
    pub async fn entries_for_events(
        &self,
        event_ids: &[String],
    ) -> Result<Vec<EntryRow>, StoreError> {
        let ids = &event_ids[..event_ids.len().min(EVIDENCE_EVENTS_MAX)];
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT sku, location, seq, from_bucket, to_bucket, quantity, event_id, kind, recorded_at FROM ledger_entries \
             WHERE event_id IN ({}) ORDER BY sku, location, seq",
            placeholders.join(", ")
        );
        let mut query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
        for id in ids {
            query = query.bind(id.as_str());
        }
        query
            .fetch_all(&self.pool)
            .await
            .map_err(corrupt_row("ledger_entries"))
    }

    /// The balance of (`sku`, `location`) before its entry `seq`: every bucket's units
    /// from the entries numbered below it (one aggregate over the pair's entries).
    pub async fn balance_before(
        &self,
        sku: &str,
        location: &str,
        seq: i64,
    ) -> Result<BTreeMap<String, i64>, StoreError> {
        let moves: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT from_bucket, to_bucket, CAST(SUM(quantity) AS BIGINT) FROM ledger_entries \
             WHERE sku = $1 AND location = $2 AND seq < $3 GROUP BY from_bucket, to_bucket",
        )
        .bind(sku)
        .bind(location)
        .bind(seq)
        .fetch_all(&self.pool)
        .await
        .map_err(corrupt_row("ledger_entries"))?;
        let mut balance: BTreeMap<String, i64> =
            BUCKETS.iter().map(|b| ((*b).to_owned(), 0)).collect();
        for (from, to, quantity) in moves {
            *balance.entry(from).or_default() -= quantity;
            *balance.entry(to).or_default() += quantity;
        }
        Ok(balance)
    }

    /// The ids of the exceptions about `order_ref`, oldest first.
    pub async fn exceptions_for_order(&self, order_ref: &str) -> Result<Vec<String>, StoreError> {
        let ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM exceptions WHERE order_ref = $1 ORDER BY created_at, id LIMIT {EVIDENCE_EVENTS_MAX}"
        )))
        .bind(order_ref)
        .fetch_all(&self.pool)
        .await?;
        Ok(ids)
    }
}
