//! Reading and clearing the stock-change outbox (`stock_outbox`), for the relay that
//! publishes it. Rows come back ordered by (SKU, location, sequence), so a relay that
//! publishes them in order keeps every pair's changes in order.

use crate::bulk::{Bulk, Val};
use crate::rows::corrupt_row;

use crate::{Store, StoreError};

/// One stock change waiting to be published.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PendingChange {
    pub sku: String,
    pub location: String,
    /// Stored as BIGINT; a negative one does not decode (`StoreError::Corrupt`).
    #[sqlx(try_from = "i64")]
    pub seq: u64,
    /// The stock-change message (`contract::stock_change::StockChange` JSON).
    pub payload: String,
}

impl Store {
    /// The oldest waiting stock changes, at most `limit`, ordered by (SKU, location, seq).
    pub async fn pending_stock_changes(
        &self,
        limit: i64,
    ) -> Result<Vec<PendingChange>, StoreError> {
        let rows = sqlx::query_as(
            "SELECT sku, location, seq, payload FROM stock_outbox ORDER BY sku, location, seq LIMIT $1",
        )
        .bind(limit.max(1))
        .fetch_all(&self.pool)
        .await
        .map_err(corrupt_row("stock_outbox"))?;
        Ok(rows)
    }

    /// Removes published changes (idempotent), with one statement per
    /// [`crate::bulk::BIND_PARAMS_MAX`] parameters.
    pub async fn clear_stock_changes(
        &self,
        published: &[(String, String, u64)],
    ) -> Result<(), StoreError> {
        const DELETE: Bulk = Bulk {
            head: "DELETE FROM stock_outbox WHERE (sku, location, seq) IN (VALUES ",
            tail: ")",
            cols: 3,
        };
        let rows: Vec<Vec<Val>> = published
            .iter()
            .map(|(sku, location, seq)| {
                vec![
                    Val::from(sku.as_str()),
                    Val::from(location.as_str()),
                    Val::Int(i64::try_from(*seq).unwrap_or(i64::MAX)),
                ]
            })
            .collect();
        let mut conn = self.pool.acquire().await?;
        DELETE.execute(&mut conn, &rows).await?;
        Ok(())
    }

    /// How many stock changes wait to be published (a gauge for operators and tests).
    pub async fn stock_outbox_len(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM stock_outbox")
            .fetch_one(&self.pool)
            .await
            .map_err(corrupt_row("stock_outbox"))
    }
}
