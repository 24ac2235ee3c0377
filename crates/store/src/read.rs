//! Read queries for the merchant API, the operator CLI and the tests: balances, entries,
//! orders with their event history, outcomes, the exception queue, and reservations due
//! for expiry. Also the one write that has no event to decide: recording a message that
//! could not be decoded at all.

use domain::{
    Balance, EventId, ExceptionReason, Order, OrderRef, Outcome, OutcomeKind, ReasonCode, Sku,
    StockKey, Timestamp,
};
use serde::Serialize;
use serde_json::json;

use crate::load;
use crate::rows::{KeyedBalanceRow, LocatedBalanceRow, StoredReason, corrupt_row};
use crate::{Store, StoreError};

/// The most rows one list query returns.
pub const LIST_LIMIT_MAX: i64 = 1000;

/// One ledger entry as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct EntryRow {
    pub sku: String,
    pub location: String,
    pub seq: i64,
    #[sqlx(rename = "from_bucket")]
    pub from: String,
    #[sqlx(rename = "to_bucket")]
    pub to: String,
    pub quantity: i64,
    pub event_id: String,
    pub kind: String,
    pub recorded_at: i64,
}

/// One processed event as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct ProcessedRow {
    pub event_id: String,
    pub kind: String,
    pub order_ref: Option<String>,
    /// Serialized, like every typed code, as its stored name (`moved`, `noop`, …).
    #[sqlx(try_from = "String")]
    pub outcome: OutcomeKind,
    /// `None` for movements.
    #[sqlx(flatten, try_from = "StoredReason")]
    pub reason: Option<ReasonCode>,
    pub processed_at: i64,
    pub duplicates: i64,
    /// The stock policy the outcome was decided under (`reserve_on_authorization`, …);
    /// `None` for outcomes recorded before the policy was recorded (all decided under
    /// `reserve_on_authorization`) and for messages that were never an event.
    #[sqlx(default)]
    pub policy: Option<String>,
}

/// One event in an order's history.
pub type OrderEventRow = ProcessedRow;

/// A processed-event row with the envelope it was recorded with.
#[derive(sqlx::FromRow)]
struct ProcessedEnvelopeRow {
    #[sqlx(flatten)]
    row: ProcessedRow,
    envelope: String,
}

/// One processed event with everything recorded about it: the envelope as the ledger
/// decided it, the outcome, and where it sat in the events stream (`stockctl events get`).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ProcessedDetail {
    #[sqlx(flatten)]
    pub row: ProcessedRow,
    /// The contract envelope (JSON text), or what was received when it was not an event.
    pub envelope: String,
    /// The recorded outcome (JSON text): the movements, the no-op or exception reason.
    pub outcome_json: String,
    /// The events stream sequence the event was read at, when known.
    pub stream_seq: Option<i64>,
}

/// One change of the stock policy the ledger applied (`policy_changes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct PolicyChangeRow {
    /// 1, 2, 3, … in the order the ledger applied the changes.
    pub seq: i64,
    /// The `policy.changed` event.
    pub event_id: String,
    /// The policy in force from this change on (canonical text).
    pub policy: String,
    /// The policy it replaced.
    pub previous: String,
    pub actor: String,
    pub reason: String,
    /// When the change was accepted (the event's `recorded_at`), in ms since the epoch.
    pub recorded_at: i64,
}

/// One group of [`Store::outcome_counts`].
#[derive(sqlx::FromRow)]
struct OutcomeCountRow {
    #[sqlx(try_from = "String")]
    outcome: OutcomeKind,
    n: i64,
}

/// A reservation that may be due: the order and the event that made it.
#[derive(sqlx::FromRow)]
struct DueReservationRow {
    #[sqlx(try_from = "String")]
    order_ref: OrderRef,
    reserved_by: Option<String>,
}

const PROCESSED_COLUMNS: &str =
    "event_id, kind, order_ref, outcome, reason, processed_at, duplicates, policy";

impl Store {
    /// The balance of one (SKU, location); zeros when nothing was recorded.
    pub async fn balance(&self, key: &StockKey) -> Result<Balance, StoreError> {
        let mut conn = self.pool.acquire().await?;
        load::load_balance(&mut conn, key).await
    }

    /// Balances of one SKU at every location, ordered by location.
    pub async fn balances_for_sku(&self, sku: &Sku) -> Result<Vec<(String, Balance)>, StoreError> {
        let rows: Vec<LocatedBalanceRow> = sqlx::query_as(
            "SELECT location, available, reserved, sold, returned, written_off, external, seq FROM balances \
             WHERE sku = $1 ORDER BY location",
        )
        .bind(sku.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(corrupt_row("balances"))?;
        rows.into_iter()
            .map(|r| Ok((r.location, r.balance.into_balance()?)))
            .collect()
    }

    /// Every balance, ordered by (SKU, location). For tests and `stockctl`.
    pub async fn all_balances(&self) -> Result<Vec<(String, String, Balance)>, StoreError> {
        let rows: Vec<KeyedBalanceRow> = sqlx::query_as(
            "SELECT sku, location, available, reserved, sold, returned, written_off, external, seq FROM balances \
             ORDER BY sku, location",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(corrupt_row("balances"))?;
        rows.into_iter()
            .map(|r| Ok((r.sku, r.location, r.balance.into_balance()?)))
            .collect()
    }

    /// Entries of one (SKU, location) after `after_seq`, in sequence, at most `limit`.
    pub async fn entries(
        &self,
        key: &StockKey,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<EntryRow>, StoreError> {
        let rows = sqlx::query_as(
            "SELECT sku, location, seq, from_bucket, to_bucket, quantity, event_id, kind, recorded_at FROM ledger_entries \
             WHERE sku = $1 AND location = $2 AND seq > $3 ORDER BY seq LIMIT $4",
        )
        .bind(key.sku.as_str())
        .bind(key.location.as_str())
        .bind(after_seq)
        .bind(limit.clamp(1, LIST_LIMIT_MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(corrupt_row("ledger_entries"))?;
        Ok(rows)
    }

    /// The stock policy in force: the last change applied, or the default.
    pub async fn policy_in_force(&self) -> Result<domain::PolicySet, StoreError> {
        let mut conn = self.pool.acquire().await?;
        load::policy_in_force(&mut conn).await
    }

    /// The latest changes of the stock policy (at most [`LIST_LIMIT_MAX`]), oldest first.
    pub async fn policy_changes(&self) -> Result<Vec<PolicyChangeRow>, StoreError> {
        let mut rows: Vec<PolicyChangeRow> = sqlx::query_as(
            "SELECT seq, event_id, policy, previous, actor, reason, recorded_at FROM policy_changes \
             ORDER BY seq DESC LIMIT $1",
        )
        .bind(LIST_LIMIT_MAX)
        .fetch_all(&self.pool)
        .await
        .map_err(corrupt_row("policy_changes"))?;
        rows.reverse();
        Ok(rows)
    }

    /// An order as the ledger knows it.
    pub async fn order(&self, order_ref: &OrderRef) -> Result<Option<Order>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        load::load_order(&mut conn, order_ref).await
    }

    /// Every event applied to an order, in processing order, with its outcome.
    pub async fn order_events(
        &self,
        order_ref: &OrderRef,
    ) -> Result<Vec<OrderEventRow>, StoreError> {
        let rows = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PROCESSED_COLUMNS} FROM processed_events WHERE order_ref = $1 ORDER BY processed_at, event_id LIMIT {LIST_LIMIT_MAX}"
        )))
        .bind(order_ref.as_str())
        .fetch_all(&self.pool)
        .await
        .map_err(corrupt_row("processed_events"))?;
        Ok(rows)
    }

    /// The recorded outcome of one event, if it was processed.
    pub async fn outcome(&self, id: EventId) -> Result<Option<Outcome>, StoreError> {
        let mut conn = self.pool.acquire().await?;
        load::prior_outcome(&mut conn, id).await
    }

    /// The order a provider's payment reference (an iPint invoice id, a PaymentIntent id)
    /// is attached to, if any. One primary-key read.
    pub async fn payment_ref_order(
        &self,
        provider: &str,
        payment_ref: &str,
    ) -> Result<Option<String>, StoreError> {
        let order: Option<String> = sqlx::query_scalar(
            "SELECT order_ref FROM payment_refs WHERE provider = $1 AND payment_ref = $2",
        )
        .bind(provider)
        .bind(payment_ref)
        .fetch_optional(&self.pool)
        .await?;
        Ok(order)
    }

    /// The processed-event row of one event id.
    pub async fn processed(&self, event_id: &str) -> Result<Option<ProcessedRow>, StoreError> {
        let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PROCESSED_COLUMNS} FROM processed_events WHERE event_id = $1"
        )))
        .bind(event_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(corrupt_row("processed_events"))?;
        Ok(row)
    }

    /// One processed event with its envelope, outcome and stream sequence. One primary-key
    /// read.
    pub async fn processed_detail(
        &self,
        event_id: &str,
    ) -> Result<Option<ProcessedDetail>, StoreError> {
        let row = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PROCESSED_COLUMNS}, envelope, outcome_json, stream_seq FROM processed_events WHERE event_id = $1"
        )))
        .bind(event_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(corrupt_row("processed_events"))?;
        Ok(row)
    }

    /// The processed-event row of one event id with the content digest of the envelope it
    /// was recorded with (`None` when that is not an event: an unprocessable message), so
    /// that a caller can tell whether its own content is the one decided
    /// (`docs/decisions.md` §26). One primary-key read.
    pub async fn processed_content(
        &self,
        event_id: &str,
    ) -> Result<Option<(ProcessedRow, Option<domain::ContentDigest>)>, StoreError> {
        let row: Option<ProcessedEnvelopeRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {PROCESSED_COLUMNS}, envelope FROM processed_events WHERE event_id = $1"
        )))
        .bind(event_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(corrupt_row("processed_events"))?;
        Ok(row.map(|r| {
            let digest = contract::content_digest_of_json(&r.envelope);
            (r.row, digest)
        }))
    }

    /// Counts of processed events by outcome, in the order of the stored names
    /// (`exception`, `moved`, `noop`).
    pub async fn outcome_counts(&self) -> Result<Vec<(OutcomeKind, i64)>, StoreError> {
        let rows: Vec<OutcomeCountRow> = sqlx::query_as(
            "SELECT outcome, COUNT(*) AS n FROM processed_events GROUP BY outcome ORDER BY outcome",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(corrupt_row("processed_events"))?;
        Ok(rows.into_iter().map(|r| (r.outcome, r.n)).collect())
    }

    /// How many processed events of `kind` (and `outcome`, when given) there are.
    pub async fn count_processed(
        &self,
        kind: &str,
        outcome: Option<OutcomeKind>,
    ) -> Result<i64, StoreError> {
        let n = sqlx::query_scalar("SELECT COUNT(*) FROM processed_events WHERE kind = $1 AND ($2 IS NULL OR outcome = $2)")
            .bind(kind)
            .bind(outcome.map(OutcomeKind::as_str))
            .fetch_one(&self.pool)
            .await
            .map_err(corrupt_row("processed_events"))?;
        Ok(n)
    }

    /// How many orders are in `state` (`registered`, `reserved`, `sold`, `released`).
    pub async fn count_orders(&self, state: &str) -> Result<i64, StoreError> {
        let n = sqlx::query_scalar("SELECT COUNT(*) FROM orders WHERE state = $1")
            .bind(state)
            .fetch_one(&self.pool)
            .await
            .map_err(corrupt_row("orders"))?;
        Ok(n)
    }

    /// Reservations whose deadline (`reserved_until`) is at or before `now` and that still
    /// hold stock: `(order, the event that made the reservation)`, earliest deadline first,
    /// at most `limit`. A reservation recorded without a deadline (before migration 0009)
    /// is due once made at or before `undated_cutoff` (`now` minus the default TTL).
    pub async fn reservations_due(
        &self,
        now: Timestamp,
        undated_cutoff: Timestamp,
        limit: i64,
    ) -> Result<Vec<(OrderRef, EventId)>, StoreError> {
        let rows: Vec<DueReservationRow> = sqlx::query_as(
            "SELECT order_ref, reserved_by FROM orders WHERE state = 'reserved' AND \
             (reserved_until <= $1 OR (reserved_until IS NULL AND reserved_at <= $2)) \
             ORDER BY COALESCE(reserved_until, reserved_at) LIMIT $3",
        )
        .bind(now.0)
        .bind(undated_cutoff.0)
        .bind(limit.clamp(1, LIST_LIMIT_MAX))
        .fetch_all(&self.pool)
        .await
        .map_err(corrupt_row("orders"))?;
        rows.into_iter()
            .map(|r| {
                let order = r.order_ref;
                // A missing or unreadable `reserved_by` is one error, as before: the
                // reservation cannot be expired without the event that made it.
                let by = r
                    .reserved_by
                    .and_then(|s| s.parse::<EventId>().ok())
                    .ok_or_else(|| {
                        StoreError::Corrupt(format!("order {order} reserved without reserved_by"))
                    })?;
                Ok((order, by))
            })
            .collect()
    }

    /// Records a message that could not become an event (undecodable, unknown schema
    /// version, missing fields) as an exception with its raw bytes. `id` identifies the
    /// message (its event id if it had one, else `stream:<seq>`). Idempotent.
    pub async fn record_unprocessable(
        &self,
        id: &str,
        reason: &ExceptionReason,
        detail: &str,
        raw: &[u8],
        stream_seq: Option<u64>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        // PostgreSQL text cannot hold NUL or invalid UTF-8: such messages are kept as hex.
        let hex = || raw.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let (raw_text, envelope) = match std::str::from_utf8(raw) {
            Ok(s) if !s.contains('\0') => (json!({"raw_utf8": s}), s.to_owned()),
            _ => (json!({"raw_hex": hex()}), format!("hex:{}", hex())),
        };
        let outcome = Outcome::Exception {
            reason: reason.clone(),
            detail: detail.to_owned(),
        };
        let outcome_json =
            serde_json::to_string(&outcome).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let evidence = json!({"message": raw_text, "stream_seq": stream_seq}).to_string();
        let seq = stream_seq.and_then(|s| i64::try_from(s).ok());
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO processed_events (event_id, kind, outcome, reason, outcome_json, envelope, stream_seq, processed_at) \
             VALUES ($1, 'unknown', 'exception', $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(id).bind(reason.code()).bind(&outcome_json).bind(envelope).bind(seq).bind(now.0)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 1 {
            sqlx::query(
                "INSERT INTO exceptions (id, event_id, reason, state, detail, evidence, created_at, updated_at) \
                 VALUES ($1, $1, $2, 'open', $3, $4, $5, $5) ON CONFLICT (event_id) DO NOTHING",
            )
            .bind(id).bind(reason.code()).bind(detail).bind(evidence).bind(now.0)
            .execute(&mut *tx)
            .await?;
        }
        if let (Some(writer), Some(seq)) = (self.position.as_deref(), stream_seq) {
            crate::position::record(&mut tx, writer, seq).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
