//! The daily reconciliation's reads and writes (`docs/operations.md`, "Reconciliation"):
//! the facts of a day (processed events with what their envelopes say, their entries, the
//! payment references), the deferred items earlier runs left, and one run stored with its
//! items and the `reconciliation_mismatch` exceptions of its new unmatched items.
//!
//! Event times come from the stored envelope (`occurred_at`): the provider's time, which is
//! the one a report shows. The rows are found by `processed_at` (indexed), widened by
//! [`LATE_ARRIVAL_MAX`] so an event delivered days after it happened (a resent webhook) is
//! still found for its day.

use std::collections::{BTreeMap, HashMap};

use reconcile::engine::{Bucket, DayFacts, EventFact, Item, Move, OrphanMove, RunResult};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sqlx::Row as _;

use crate::bulk::{Bulk, Val};
use crate::{Store, StoreError};

/// How long after its event time an event may reach the ledger and still count for its
/// day: Stripe's event retrieval horizon (30 days); Stripe retries for 3.
pub const LATE_ARRIVAL_MAX_MS: i64 = 30 * 86_400_000;
/// How far a provider's clock may be ahead of the ledger's (`occurred_at` after
/// `processed_at`).
pub const CLOCK_SKEW_MAX_MS: i64 = 3_600_000;
/// The `source` of the exceptions the reconciliation opens.
pub const SOURCE: &str = "reconciliation";
/// The namespace of the exceptions' ids: UUID v5 of `<checkpoint>:<item key>` under it.
const EXCEPTION_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x5e0c_0a11_7e55_4c0d_9a11_0000_0000_0014);

/// The exception id of an unmatched item: the same item always gets the same id.
pub fn exception_id(item: &Item) -> String {
    uuid::Uuid::new_v5(
        &EXCEPTION_NAMESPACE,
        format!("{}:{}", item.checkpoint.as_str(), item.key).as_bytes(),
    )
    .to_string()
}

/// What storing a run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SavedRun {
    /// Exceptions opened for unmatched items that had none.
    pub exceptions_opened: u64,
    /// Reconciliation exceptions closed because their item now matches.
    pub exceptions_resolved: u64,
    /// Earlier deferred items this run matched or unmatched.
    pub deferrals_settled: u64,
}

/// One stored run.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RunRow {
    pub run_id: String,
    pub recon_date: String,
    pub run_kind: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub passed: Option<bool>,
}

const ITEM_INSERT: Bulk = Bulk {
    head: "INSERT INTO reconciliation_items (run_id, checkpoint, item_key, recon_date, origin_date, bucket, reason, action, \
           provider, payment_ref, order_ref, event_id, kind, amount, currency, event_at, expected_by, detail) VALUES ",
    tail: "",
    cols: 18,
};

const EXCEPTION_INSERT: Bulk = Bulk {
    head: "INSERT INTO exceptions (id, event_id, reason, state, detail, evidence, order_ref, created_at, updated_at, source) VALUES ",
    tail: " ON CONFLICT DO NOTHING",
    cols: 10,
};

fn text(v: &Value, path: &[&str]) -> Option<String> {
    let mut v = v;
    for p in path {
        v = v.get(p)?;
    }
    v.as_str().map(str::to_owned)
}

/// Unix ms of an RFC 3339 UTC time as envelopes write it (`2026-11-20T10:00:01.250Z`).
fn rfc3339_ms(s: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

impl Store {
    /// The facts of `[start, end)` widened by `margin` ms on both sides: every processed
    /// event whose event time falls there, with its entries; the movements in the same span
    /// whose event has no processed row; and every attached payment reference.
    pub async fn recon_facts(
        &self,
        start: i64,
        end: i64,
        margin: i64,
    ) -> Result<DayFacts, StoreError> {
        let (lo, hi) = (start - margin, end + margin);
        let rows = sqlx::query(
            "SELECT event_id, kind, order_ref, outcome, reason, envelope FROM processed_events \
             WHERE processed_at >= $1 AND processed_at < $2",
        )
        .bind(lo - CLOCK_SKEW_MAX_MS)
        .bind(hi + LATE_ARRIVAL_MAX_MS)
        .fetch_all(&self.pool)
        .await?;
        let mut events: Vec<EventFact> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for r in &rows {
            let event_id: String = r.try_get(0)?;
            let envelope: String = r.try_get(5)?;
            let env: Value = serde_json::from_str(&envelope).unwrap_or(Value::Null);
            let at = text(&env, &["occurred_at"])
                .or_else(|| text(&env, &["recorded_at"]))
                .and_then(|t| rfc3339_ms(&t));
            let Some(at_ms) = at else { continue };
            if at_ms < lo || at_ms >= hi {
                continue;
            }
            let payload = env.get("payload").cloned().unwrap_or(Value::Null);
            let order_ref: Option<String> = r.try_get(2)?;
            let order_ref = order_ref
                .or_else(|| text(&payload, &["order", "order_ref"]))
                .or_else(|| text(&payload, &["order_ref"]));
            let amount =
                text(&payload, &["amount", "amount"]).and_then(|a| a.parse::<Decimal>().ok());
            let currency = text(&payload, &["amount", "currency"]);
            index.insert(event_id.clone(), events.len());
            events.push(EventFact {
                event_id,
                kind: r.try_get(1)?,
                provider: text(&env, &["source", "provider"]).unwrap_or_default(),
                order_ref,
                payment_ref: text(&payload, &["order", "payment_ref"]),
                amount,
                currency,
                at_ms,
                outcome: r.try_get(3)?,
                reason: r.try_get(4)?,
                moves: Vec::new(),
            });
        }
        // Entries are written in their event's transaction: the same span of ledger time.
        let entries = sqlx::query(
            "SELECT e.event_id, e.sku, e.location, e.from_bucket, e.to_bucket, e.quantity, e.kind, e.recorded_at, \
             p.event_id FROM ledger_entries e LEFT JOIN processed_events p ON p.event_id = e.event_id \
             WHERE e.recorded_at >= $1 AND e.recorded_at < $2 ORDER BY e.sku, e.location, e.seq",
        )
        .bind(lo - CLOCK_SKEW_MAX_MS)
        .bind(hi + LATE_ARRIVAL_MAX_MS)
        .fetch_all(&self.pool)
        .await?;
        let mut orphans: BTreeMap<String, OrphanMove> = BTreeMap::new();
        for r in &entries {
            let event_id: String = r.try_get(0)?;
            let m = Move {
                sku: r.try_get(1)?,
                location: r.try_get(2)?,
                from: r.try_get(3)?,
                to: r.try_get(4)?,
                quantity: r.try_get(5)?,
            };
            if let Some(&i) = index.get(&event_id) {
                if let Some(e) = events.get_mut(i) {
                    e.moves.push(m);
                }
                continue;
            }
            let processed: Option<String> = r.try_get(8)?;
            let at: i64 = r.try_get(7)?;
            if processed.is_none() && at >= lo && at < hi {
                let kind: String = r.try_get(6)?;
                orphans
                    .entry(event_id.clone())
                    .or_insert_with(|| OrphanMove {
                        event_id,
                        kind,
                        at_ms: at,
                        moves: Vec::new(),
                    })
                    .moves
                    .push(m);
            }
        }
        let refs = sqlx::query("SELECT provider, payment_ref, order_ref FROM payment_refs")
            .fetch_all(&self.pool)
            .await?;
        let mut payment_refs = HashMap::with_capacity(refs.len());
        for r in &refs {
            payment_refs.insert((r.try_get(0)?, r.try_get(1)?), r.try_get(2)?);
        }
        Ok(DayFacts {
            events,
            orphans: orphans.into_values().collect(),
            payment_refs,
        })
    }

    /// The items earlier runs (of dates before `date`, current runs only) left deferred
    /// and no run of an earlier date settled; the latest copy of each.
    pub async fn recon_carried(&self, date: &str) -> Result<Vec<Item>, StoreError> {
        let rows = sqlx::query(
            "SELECT i.detail FROM reconciliation_items i JOIN reconciliation_runs r ON r.run_id = i.run_id \
             WHERE r.is_current = 1 AND i.bucket = 'deferred' AND i.recon_date < $1 \
             AND (i.settled_on IS NULL OR i.settled_on >= $1) ORDER BY i.recon_date",
        )
        .bind(date)
        .fetch_all(&self.pool)
        .await?;
        let mut latest: BTreeMap<(String, String), Item> = BTreeMap::new();
        for r in &rows {
            let detail: String = r.try_get(0)?;
            let item: Item = serde_json::from_str(&detail)
                .map_err(|e| StoreError::Corrupt(format!("reconciliation_items.detail: {e}")))?;
            latest.insert(
                (item.checkpoint.as_str().to_owned(), item.key.clone()),
                item,
            );
        }
        Ok(latest.into_values().collect())
    }

    /// Claims `date`'s scheduled run for `run_id`: false when another process (or an
    /// earlier start) already claimed it.
    pub async fn recon_claim_scheduled(
        &self,
        run_id: &str,
        date: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO reconciliation_runs (run_id, recon_date, run_kind, started_at, reports) \
             VALUES ($1, $2, 'scheduled', $3, '[]') ON CONFLICT DO NOTHING",
        )
        .bind(run_id)
        .bind(date)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Stores a run: its items, the settling of the deferred items it matched or
    /// unmatched, one `reconciliation_mismatch` exception per unmatched item that has none,
    /// and the closing of those whose item now matches; one transaction. `reports` says
    /// which files were read. A scheduled run's row exists already (its claim).
    pub async fn recon_save(
        &self,
        run_id: &str,
        scheduled: bool,
        result: &RunResult,
        reports: &Value,
        started_at: i64,
        now: i64,
    ) -> Result<SavedRun, StoreError> {
        let date = result.summary.date.as_str();
        let mut tx = self.pool.begin().await?;
        if !scheduled {
            sqlx::query(
                "INSERT INTO reconciliation_runs (run_id, recon_date, run_kind, started_at, reports) \
                 VALUES ($1, $2, 'manual', $3, '[]')",
            )
            .bind(run_id)
            .bind(date)
            .bind(started_at)
            .execute(&mut *tx)
            .await?;
        }
        // A run of this date again: what the earlier run of it settled is settled again below.
        sqlx::query(
            "UPDATE reconciliation_items SET settled_on = NULL, settled_bucket = NULL WHERE settled_on = $1",
        )
        .bind(date)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE reconciliation_runs SET is_current = 0 WHERE recon_date = $1")
            .bind(date)
            .execute(&mut *tx)
            .await?;
        let summary = serde_json::to_string(&result.summary)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "UPDATE reconciliation_runs SET finished_at = $2, is_current = 1, passed = $3, summary = $4, reports = $5 \
             WHERE run_id = $1",
        )
        .bind(run_id)
        .bind(now)
        .bind(i64::from(result.summary.passed))
        .bind(summary)
        .bind(reports.to_string())
        .execute(&mut *tx)
        .await?;
        let mut rows = Vec::with_capacity(result.items.len());
        for i in &result.items {
            let detail =
                serde_json::to_string(i).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            rows.push(vec![
                Val::from(run_id),
                Val::from(i.checkpoint.as_str()),
                Val::from(i.key.clone()),
                Val::from(i.recon_date.clone()),
                Val::from(i.origin_date.clone()),
                Val::from(i.bucket.as_str()),
                Val::from(i.reason.map(|r| r.as_str().to_owned())),
                Val::from(i.action.clone()),
                Val::from(i.provider.clone()),
                Val::from(i.payment_ref.clone()),
                Val::from(i.order_ref.clone()),
                Val::from(i.event_id.clone()),
                Val::from(i.kind.clone()),
                Val::from(i.amount.map(|a| a.to_string())),
                Val::from(i.currency.clone()),
                Val::from(i.event_at_ms),
                Val::from(i.expected_by.clone()),
                Val::from(detail),
            ]);
        }
        ITEM_INSERT.execute(&mut tx, &rows).await?;
        let mut saved = SavedRun::default();
        for i in result
            .items
            .iter()
            .filter(|i| i.origin_date.as_str() < date && i.bucket != Bucket::Deferred)
        {
            saved.deferrals_settled += sqlx::query(
                "UPDATE reconciliation_items SET settled_on = $1, settled_bucket = $2 \
                 WHERE checkpoint = $3 AND item_key = $4 AND bucket = 'deferred' AND recon_date < $1 AND settled_on IS NULL \
                 AND run_id IN (SELECT run_id FROM reconciliation_runs WHERE is_current = 1)",
            )
            .bind(date)
            .bind(i.bucket.as_str())
            .bind(i.checkpoint.as_str())
            .bind(&i.key)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        let mut exceptions = Vec::new();
        for i in result
            .items
            .iter()
            .filter(|i| i.bucket == Bucket::Unmatched)
        {
            let id = exception_id(i);
            let evidence = json!({ "reconciliation": { "run_id": run_id, "item": i } });
            let detail = format!(
                "Reconciliation of {}: {} ({}) — {} {}",
                i.recon_date,
                i.reason.map(|r| r.as_str()).unwrap_or("unmatched"),
                i.note,
                i.action,
                i.event_id
                    .as_deref()
                    .map(|e| format!("Event {e}."))
                    .unwrap_or_default()
            );
            exceptions.push(vec![
                Val::from(id.clone()),
                Val::from(id),
                Val::from(domain::ExceptionCode::ReconciliationMismatch.as_str()),
                Val::from("open"),
                Val::from(detail),
                Val::from(evidence.to_string()),
                Val::from(i.order_ref.clone()),
                Val::from(now),
                Val::from(now),
                Val::from(SOURCE),
            ]);
        }
        saved.exceptions_opened = EXCEPTION_INSERT.execute(&mut tx, &exceptions).await?;
        // Only an item that was unmatched before has an exception: look at the open ones
        // rather than at every matched item.
        let open: std::collections::HashSet<String> = sqlx::query_scalar(
            "SELECT id FROM exceptions WHERE source = 'reconciliation' AND state = 'open'",
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .collect();
        for i in result.items.iter().filter(|i| i.bucket == Bucket::Matched) {
            if open.is_empty() {
                break;
            }
            let id = exception_id(i);
            if !open.contains(&id) {
                continue;
            }
            saved.exceptions_resolved += sqlx::query(
                "UPDATE exceptions SET state = 'resolved', updated_at = $2, resolution = $3 \
                 WHERE id = $1 AND source = 'reconciliation' AND state = 'open'",
            )
            .bind(&id)
            .bind(now)
            .bind(format!(
                "matched by the reconciliation of {date} (run {run_id})"
            ))
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(saved)
    }

    /// The runs of `date`, newest first.
    pub async fn recon_runs(&self, date: &str) -> Result<Vec<RunRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT run_id, recon_date, run_kind, started_at, finished_at, passed FROM reconciliation_runs \
             WHERE recon_date = $1 ORDER BY started_at DESC",
        )
        .bind(date)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let passed: Option<i64> = r.try_get(5)?;
                Ok(RunRow {
                    run_id: r.try_get(0)?,
                    recon_date: r.try_get(1)?,
                    run_kind: r.try_get(2)?,
                    started_at: r.try_get(3)?,
                    finished_at: r.try_get(4)?,
                    passed: passed.map(|p| p == 1),
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// The reconciliation lines that mention `order_ref` or one of `event_ids`, in the
    /// current run of each date (the run whose result stands), oldest date first: what an
    /// evidence pack shows as `reconciliation.json`. Each is the stored item with its run,
    /// date, checkpoint and bucket.
    pub async fn recon_items_mentioning(
        &self,
        order_ref: Option<&str>,
        event_ids: &[String],
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let mut out = Vec::new();
        let mut keys: Vec<(&str, &str)> = Vec::new();
        if let Some(r) = order_ref {
            keys.push(("order_ref", r));
        }
        keys.extend(event_ids.iter().map(|e| ("event_id", e.as_str())));
        let mut seen = std::collections::BTreeSet::new();
        for (column, value) in keys {
            let sql = if column == "order_ref" {
                "SELECT i.run_id, i.recon_date, i.checkpoint, i.item_key, i.bucket, i.detail \
                 FROM reconciliation_items i JOIN reconciliation_runs r ON r.run_id = i.run_id \
                 WHERE i.order_ref = $1 AND r.is_current = 1"
            } else {
                "SELECT i.run_id, i.recon_date, i.checkpoint, i.item_key, i.bucket, i.detail \
                 FROM reconciliation_items i JOIN reconciliation_runs r ON r.run_id = i.run_id \
                 WHERE i.event_id = $1 AND r.is_current = 1"
            };
            let rows = sqlx::query(sql).bind(value).fetch_all(&self.pool).await?;
            for r in rows {
                let run_id: String = r.try_get(0)?;
                let checkpoint: String = r.try_get(2)?;
                let item_key: String = r.try_get(3)?;
                if !seen.insert((run_id.clone(), checkpoint.clone(), item_key.clone())) {
                    continue;
                }
                let detail: String = r.try_get(5)?;
                out.push(serde_json::json!({
                    "run_id": run_id,
                    "recon_date": r.try_get::<String, _>(1)?,
                    "checkpoint": checkpoint,
                    "item_key": item_key,
                    "bucket": r.try_get::<String, _>(4)?,
                    "item": serde_json::from_str::<serde_json::Value>(&detail)
                        .unwrap_or(serde_json::Value::String(detail)),
                }));
            }
        }
        out.sort_by(|a, b| {
            (
                a["recon_date"].as_str(),
                a["checkpoint"].as_str(),
                a["item_key"].as_str(),
            )
                .cmp(&(
                    b["recon_date"].as_str(),
                    b["checkpoint"].as_str(),
                    b["item_key"].as_str(),
                ))
        });
        Ok(out)
    }
}
