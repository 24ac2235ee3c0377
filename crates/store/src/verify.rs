//! Rebuilding the ledger from its entries: every balance recomputed from the movements,
//! every sequence checked for gaps, every entry tied to a processed event whose outcome is
//! `moved`. `stockctl ledger verify` prints the report.

use std::collections::BTreeMap;

use domain::{Balance, Bucket, OutcomeKind};
use serde::Serialize;

use crate::rows::{KeyedBalanceRow, corrupt_row};
use crate::{Store, StoreError};

/// One thing `verify` found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "problem", rename_all = "snake_case")]
pub enum VerifyProblem {
    /// The stored balance differs from the sum of the entries.
    BalanceMismatch {
        sku: String,
        location: String,
        stored: Balance,
        from_entries: Balance,
    },
    /// Entries exist but no balance row does (or the reverse).
    MissingBalance { sku: String, location: String },
    /// The sequence jumps: `expected` was next, `found` came.
    SequenceGap {
        sku: String,
        location: String,
        expected: i64,
        found: i64,
    },
    /// An entry names a bucket this release does not know.
    UnknownBucket {
        sku: String,
        location: String,
        seq: i64,
        bucket: String,
    },
    /// The ledger lacks events the durable consumer acknowledged (lost, or restored from
    /// an older backup): found by `stockctl ledger verify` against the event stream.
    BehindStream { detail: String },
    /// An entry whose event has no `moved` outcome.
    OrphanEntry {
        sku: String,
        location: String,
        seq: i64,
        event_id: String,
    },
    /// A `moved` outcome whose recorded movements differ in number from its entries.
    MovementsMismatch {
        event_id: String,
        recorded: usize,
        entries: i64,
    },
    /// An outcome that cannot be read.
    UnreadableOutcome { event_id: String },
}

/// The result of a verification.
#[derive(Debug, Clone, Default, Serialize)]
pub struct VerifyReport {
    pub entries: u64,
    pub balances: u64,
    pub processed_events: u64,
    pub problems: Vec<VerifyProblem>,
}

impl VerifyReport {
    /// True when nothing is wrong.
    pub fn is_ok(&self) -> bool {
        self.problems.is_empty()
    }
}

type Key = (String, String);

/// A ledger entry with the outcome of its event (`None`: no processed event).
#[derive(sqlx::FromRow)]
struct EntryCheckRow {
    sku: String,
    location: String,
    seq: i64,
    from_bucket: String,
    to_bucket: String,
    quantity: i64,
    event_id: String,
    outcome: Option<String>,
}

/// A `moved` outcome with the number of entries its event has.
#[derive(sqlx::FromRow)]
struct MovedRow {
    event_id: String,
    outcome_json: String,
    entries: i64,
}

impl Store {
    /// Recomputes every balance from entries and checks sequences and outcomes.
    pub async fn verify(&self) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        let mut recomputed: BTreeMap<Key, (Balance, i64)> = BTreeMap::new();
        let rows: Vec<EntryCheckRow> = sqlx::query_as(
            "SELECT e.sku, e.location, e.seq, e.from_bucket, e.to_bucket, e.quantity, e.event_id, p.outcome \
             FROM ledger_entries e LEFT JOIN processed_events p ON p.event_id = e.event_id \
             ORDER BY e.sku, e.location, e.seq",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(corrupt_row("ledger_entries"))?;
        for row in rows {
            report.entries += 1;
            let EntryCheckRow {
                sku,
                location,
                seq,
                from_bucket,
                to_bucket,
                quantity,
                event_id,
                outcome,
            } = row;
            // No outcome (the LEFT JOIN found none) or one that is not a movement, read or
            // not: a problem to report, not a reason to stop verifying.
            let moved = outcome.and_then(|o| o.parse::<OutcomeKind>().ok());
            if moved != Some(OutcomeKind::Moved) {
                report.problems.push(VerifyProblem::OrphanEntry {
                    sku: sku.clone(),
                    location: location.clone(),
                    seq,
                    event_id,
                });
            }
            let slot = recomputed
                .entry((sku.clone(), location.clone()))
                .or_insert((Balance::default(), 0));
            if seq != slot.1 + 1 {
                report.problems.push(VerifyProblem::SequenceGap {
                    sku: sku.clone(),
                    location: location.clone(),
                    expected: slot.1 + 1,
                    found: seq,
                });
            }
            slot.1 = seq;
            for (name, sign) in [(from_bucket, -1), (to_bucket, 1)] {
                let Some(bucket) = Bucket::parse(&name) else {
                    report.problems.push(VerifyProblem::UnknownBucket {
                        sku: sku.clone(),
                        location: location.clone(),
                        seq,
                        bucket: name,
                    });
                    continue;
                };
                add(&mut slot.0, bucket, sign * quantity);
            }
            slot.0.seq = u64::try_from(seq).unwrap_or(0);
        }
        let stored: Vec<KeyedBalanceRow> = sqlx::query_as(
            "SELECT sku, location, available, reserved, sold, returned, written_off, external, seq FROM balances",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(corrupt_row("balances"))?;
        let mut seen = std::collections::BTreeSet::new();
        for row in stored {
            report.balances += 1;
            let key: Key = (row.sku, row.location);
            let balance = row.balance.into_balance()?;
            match recomputed.get(&key) {
                Some((from_entries, _)) if *from_entries == balance => {}
                Some((from_entries, _)) => report.problems.push(VerifyProblem::BalanceMismatch {
                    sku: key.0.clone(),
                    location: key.1.clone(),
                    stored: balance,
                    from_entries: *from_entries,
                }),
                None => report.problems.push(VerifyProblem::MissingBalance {
                    sku: key.0.clone(),
                    location: key.1.clone(),
                }),
            }
            seen.insert(key);
        }
        for key in recomputed.keys().filter(|k| !seen.contains(*k)) {
            report.problems.push(VerifyProblem::MissingBalance {
                sku: key.0.clone(),
                location: key.1.clone(),
            });
        }
        self.verify_outcomes(&mut report).await?;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM processed_events")
            .fetch_one(&self.pool)
            .await
            .map_err(corrupt_row("processed_events"))?;
        report.processed_events = u64::try_from(n).unwrap_or(0);
        Ok(report)
    }
}

impl Store {
    /// Every `moved` outcome has exactly the entries it recorded (one outcome per event id is
    /// the primary key of `processed_events`).
    async fn verify_outcomes(&self, report: &mut VerifyReport) -> Result<(), StoreError> {
        let rows: Vec<MovedRow> = sqlx::query_as(
            "SELECT p.event_id, p.outcome_json, (SELECT COUNT(*) FROM ledger_entries e WHERE e.event_id = p.event_id) AS entries \
             FROM processed_events p WHERE p.outcome = 'moved'",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(corrupt_row("processed_events"))?;
        for MovedRow {
            event_id,
            outcome_json,
            entries,
        } in rows
        {
            match serde_json::from_str::<domain::Outcome>(&outcome_json) {
                Ok(domain::Outcome::Moved { movements }) if movements.len() as i64 == entries => {}
                Ok(domain::Outcome::Moved { movements }) => {
                    report.problems.push(VerifyProblem::MovementsMismatch {
                        event_id,
                        recorded: movements.len(),
                        entries,
                    });
                }
                _ => report
                    .problems
                    .push(VerifyProblem::UnreadableOutcome { event_id }),
            }
        }
        Ok(())
    }
}

fn add(b: &mut Balance, bucket: Bucket, delta: i64) {
    let slot = match bucket {
        Bucket::Available => &mut b.available,
        Bucket::Reserved => &mut b.reserved,
        Bucket::Sold => &mut b.sold,
        Bucket::Returned => &mut b.returned,
        Bucket::WrittenOff => &mut b.written_off,
        Bucket::External => &mut b.external,
    };
    *slot += delta;
}
