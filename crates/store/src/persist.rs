//! Writing one [`Resolution`] inside the batch transaction: the outcome under the event id,
//! the movements as entries, balances with an optimistic sequence check, the after-images
//! of the order, payment references, return and dispute, and the exception queue row.
//! Nothing here decides; it writes what the domain decided.

use domain::{Event, ExceptionReason, NoOpReason, Outcome, Resolution, State, Timestamp};
use serde_json::json;
use sqlx::AnyConnection;

use crate::StoreError;

/// Everything persisted for one recorded event.
pub(crate) struct Record<'a> {
    pub event: &'a Event,
    pub envelope: &'a str,
    pub stream_seq: Option<u64>,
    /// The state the decision was made on (prior balances give the expected sequences).
    pub before: &'a State,
    pub resolution: &'a Resolution,
    pub now: i64,
}

/// A short stable reason code for an outcome: `declined:insufficient_inventory`,
/// `already_sold`, `oversold`, …; `None` for movements.
pub fn reason_code(outcome: &Outcome) -> Option<String> {
    match outcome {
        Outcome::Moved { .. } => None,
        Outcome::Exception { reason, .. } => Some(reason.code().to_owned()),
        Outcome::NoOp { reason } => Some(noop_code(reason)),
    }
}

fn noop_code(reason: &NoOpReason) -> String {
    let v = serde_json::to_value(reason).unwrap_or_default();
    let code = v.get("code").and_then(|c| c.as_str()).unwrap_or("noop");
    match v.get("detail").and_then(|d| d.as_str()) {
        Some(detail) => format!("{code}:{detail}"),
        None => code.to_owned(),
    }
}

fn conflict_if_zero(rows: u64) -> Result<(), StoreError> {
    if rows == 0 {
        Err(StoreError::Conflict)
    } else {
        Ok(())
    }
}

pub(crate) async fn record(conn: &mut AnyConnection, rec: &Record<'_>) -> Result<(), StoreError> {
    let r = rec.resolution;
    write_outcome(conn, rec).await?;
    if let Outcome::Moved { movements } = &r.outcome {
        for m in movements {
            sqlx::query(
                "INSERT INTO ledger_entries (sku, location, seq, from_bucket, to_bucket, quantity, event_id, kind, recorded_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(m.key.sku.as_str())
            .bind(m.key.location.as_str())
            .bind(seq_i64(m.seq)?)
            .bind(m.from.as_str())
            .bind(m.to.as_str())
            .bind(m.quantity.as_i64())
            .bind(rec.event.id.to_string())
            .bind(rec.event.kind.name())
            .bind(rec.now)
            .execute(&mut *conn)
            .await?;
        }
    }
    for (key, b) in &r.balances {
        let prior = rec.before.balance(key).seq;
        let rows = if prior == 0 {
            sqlx::query(
                "INSERT INTO balances (sku, location, available, reserved, sold, returned, written_off, external, seq) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(key.sku.as_str())
            .bind(key.location.as_str())
            .bind(b.available).bind(b.reserved).bind(b.sold).bind(b.returned).bind(b.written_off).bind(b.external)
            .bind(seq_i64(b.seq)?)
            .execute(&mut *conn)
            .await?
        } else {
            sqlx::query(
                "UPDATE balances SET available = $3, reserved = $4, sold = $5, returned = $6, written_off = $7, \
                 external = $8, seq = $9 WHERE sku = $1 AND location = $2 AND seq = $10",
            )
            .bind(key.sku.as_str())
            .bind(key.location.as_str())
            .bind(b.available).bind(b.reserved).bind(b.sold).bind(b.returned).bind(b.written_off).bind(b.external)
            .bind(seq_i64(b.seq)?)
            .bind(seq_i64(prior)?)
            .execute(&mut *conn)
            .await?
        };
        conflict_if_zero(rows.rows_affected())?;
        // The stock-change message for downstream systems, in the same transaction.
        let change = contract::stock_change::StockChange::new(
            key,
            b,
            rec.event.id,
            rec.event.kind.name(),
            Timestamp(rec.now),
        );
        sqlx::query("INSERT INTO stock_outbox (sku, location, seq, payload, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(key.sku.as_str())
            .bind(key.location.as_str())
            .bind(seq_i64(b.seq)?)
            .bind(String::from_utf8_lossy(&change.to_json()).into_owned())
            .bind(rec.now)
            .execute(&mut *conn)
            .await?;
    }
    write_after_images(conn, rec).await?;
    write_exception(conn, rec).await
}

fn seq_i64(seq: u64) -> Result<i64, StoreError> {
    i64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("sequence {seq} out of range")))
}

async fn write_outcome(conn: &mut AnyConnection, rec: &Record<'_>) -> Result<(), StoreError> {
    let r = rec.resolution;
    let id = rec.event.id.to_string();
    let outcome_json =
        serde_json::to_string(&r.outcome).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let reason = reason_code(&r.outcome);
    let order_ref = r.order_ref.as_ref().map(|o| o.as_str().to_owned());
    let stream_seq = rec.stream_seq.and_then(|s| i64::try_from(s).ok());
    if r.replaces_exception {
        let rows = sqlx::query(
            "UPDATE processed_events SET outcome = $2, reason = $3, outcome_json = $4, order_ref = COALESCE($5, order_ref), \
             processed_at = $6 WHERE event_id = $1 AND outcome = 'exception'",
        )
        .bind(&id).bind(r.outcome.label()).bind(&reason).bind(&outcome_json).bind(&order_ref).bind(rec.now)
        .execute(&mut *conn)
        .await?;
        conflict_if_zero(rows.rows_affected())?;
    } else {
        sqlx::query(
            "INSERT INTO processed_events (event_id, kind, order_ref, outcome, reason, outcome_json, envelope, stream_seq, processed_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&id).bind(rec.event.kind.name()).bind(&order_ref).bind(r.outcome.label()).bind(&reason)
        .bind(&outcome_json).bind(rec.envelope).bind(stream_seq).bind(rec.now)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query(
        "INSERT INTO outcome_history (event_id, version, outcome, reason, outcome_json, recorded_at) \
         SELECT $1, COALESCE(MAX(version), 0) + 1, $2, $3, $4, $5 FROM outcome_history WHERE event_id = $1",
    )
    .bind(&id).bind(r.outcome.label()).bind(&reason).bind(&outcome_json).bind(rec.now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn write_after_images(conn: &mut AnyConnection, rec: &Record<'_>) -> Result<(), StoreError> {
    let r = rec.resolution;
    if let Some(order) = &r.order {
        sqlx::query(
            "INSERT INTO orders (order_ref, state, reserved_by, reserved_at, body, updated_at) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (order_ref) DO UPDATE SET state = excluded.state, reserved_by = excluded.reserved_by, \
             reserved_at = excluded.reserved_at, body = excluded.body, updated_at = excluded.updated_at",
        )
        .bind(order.spec.order_ref.as_str())
        .bind(order.state.as_str())
        .bind(order.reserved_by.map(|e| e.to_string()))
        .bind(order.reserved_at.map(|t| t.0))
        .bind(body(order)?)
        .bind(rec.now)
        .execute(&mut *conn)
        .await?;
    }
    for (provider, payment_ref, order_ref) in &r.payment_refs {
        sqlx::query(
            "INSERT INTO payment_refs (provider, payment_ref, order_ref) VALUES ($1, $2, $3)",
        )
        .bind(provider.as_str())
        .bind(payment_ref.as_str())
        .bind(order_ref.as_str())
        .execute(&mut *conn)
        .await?;
    }
    if let Some(ret) = &r.return_record {
        sqlx::query(
            "INSERT INTO returns (reference, order_ref, body) VALUES ($1, $2, $3) \
             ON CONFLICT (reference) DO UPDATE SET body = excluded.body",
        )
        .bind(ret.reference.as_str())
        .bind(ret.order_ref.as_str())
        .bind(body(ret)?)
        .execute(&mut *conn)
        .await?;
    }
    if let Some(cb) = &r.chargeback {
        sqlx::query(
            "INSERT INTO chargebacks (dispute_id, order_ref, body) VALUES ($1, $2, $3) \
             ON CONFLICT (dispute_id) DO UPDATE SET body = excluded.body",
        )
        .bind(cb.dispute_id.as_str())
        .bind(cb.order_ref.as_str())
        .bind(body(cb)?)
        .execute(&mut *conn)
        .await?;
        if let (Some(opened_by), Some(outcome)) = (cb.opened_by, cb.closed) {
            let resolution = format!(
                "chargeback closed: {}",
                if outcome == domain::ChargebackOutcome::Won {
                    "won"
                } else {
                    "lost"
                }
            );
            sqlx::query(
                "UPDATE exceptions SET state = 'resolved', resolution = $2, updated_at = $3 \
                 WHERE event_id = $1 AND state <> 'resolved'",
            )
            .bind(opened_by.to_string())
            .bind(resolution)
            .bind(rec.now)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// An after-image as JSON for its `body` column.
fn body<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

async fn write_exception(conn: &mut AnyConnection, rec: &Record<'_>) -> Result<(), StoreError> {
    let r = rec.resolution;
    let id = rec.event.id.to_string();
    match &r.outcome {
        Outcome::Exception { reason, detail } => {
            let deadline = match reason {
                ExceptionReason::ChargebackReview { deadline } => deadline.map(|t| t.0),
                _ => None,
            };
            let balances: Vec<_> = rec
                .before
                .balances
                .iter()
                .map(|(k, b)| json!({"sku": k.sku.as_str(), "location": k.location.as_str(), "balance": b}))
                .collect();
            let envelope: serde_json::Value =
                serde_json::from_str(rec.envelope).unwrap_or_else(|_| json!(rec.envelope));
            let evidence = json!({
                "event": envelope,
                "order": r.order_ref.as_ref().and_then(|o| rec.before.orders.get(o)),
                "stock_at_decision": balances,
                "stream_seq": rec.stream_seq,
            });
            sqlx::query(
                "INSERT INTO exceptions (id, event_id, reason, state, detail, evidence, order_ref, deadline, created_at, updated_at) \
                 VALUES ($1, $1, $2, 'open', $3, $4, $5, $6, $7, $7) \
                 ON CONFLICT (event_id) DO UPDATE SET reason = excluded.reason, state = 'open', detail = excluded.detail, \
                 evidence = excluded.evidence, updated_at = excluded.updated_at",
            )
            .bind(&id).bind(reason.code()).bind(detail).bind(evidence.to_string())
            .bind(r.order_ref.as_ref().map(|o| o.as_str().to_owned())).bind(deadline).bind(rec.now)
            .execute(&mut *conn)
            .await?;
        }
        outcome if r.replaces_exception => {
            let resolution = format!(
                "retried: {}",
                reason_code(outcome).unwrap_or_else(|| "moved".into())
            );
            sqlx::query("UPDATE exceptions SET state = 'resolved', resolution = $2, updated_at = $3 WHERE event_id = $1")
                .bind(&id).bind(resolution).bind(rec.now)
                .execute(&mut *conn)
                .await?;
        }
        _ => {}
    }
    Ok(())
}
