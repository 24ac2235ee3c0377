//! `stockctl stock show`: a SKU's balances per location, straight from the ledger database.
//!
//! `stockctl stock correct`: the only way an operator changes stock by hand, and never
//! silently. It publishes a `stock.corrected` contract event through JetStream (the ledger
//! applies it like any other event, as a new entry between `external` and `available`),
//! requires a reason, evidence and an approver, and records the action in the audit
//! trail. Without `--apply` it only shows what it would do.

use clap::{Args, Subcommand};
use domain::{Location, Sku, StockKey};
use operator::actions::Correction;

use crate::exceptions::{actor, connect, finish};
use crate::exit::{self, Exit};
use crate::{ctx, out, outln};

/// The stock subcommands.
#[derive(Subcommand)]
pub enum StockCommand {
    /// Show a SKU's balances at every location: available, reserved, sold, returned,
    /// written off, and the last ledger sequence. Read-only: safe at any time, also while
    /// the services run; never creates a database. Exit code 1 when the ledger has never
    /// recorded the SKU.
    Show {
        /// The SKU, as registered (e.g. tee-black-m).
        sku: String,
    },
    /// Correct the units available at one (SKU, location) after a count, with a reason,
    /// evidence and an approver (all three required; refused otherwise). Moves stock between
    /// `external` and `available` through a `stock.corrected` event; refused by the ledger
    /// if it would make `available` negative. Without --apply it prints the current balance
    /// and changes nothing. Safe while the services run; to re-run the same correction
    /// safely pass the same --idempotency-key (it is then applied once).
    Correct(CorrectArgs),
}

/// Arguments of `stockctl stock correct`.
#[derive(Args)]
pub struct CorrectArgs {
    /// The SKU whose count is corrected (e.g. tee-black-m).
    #[arg(long)]
    pub sku: String,
    /// The location the units are counted at (e.g. main).
    #[arg(long)]
    pub location: String,
    /// Units to add (positive) or remove (negative), e.g. --delta=-2.
    #[arg(long, allow_negative_numbers = true)]
    pub delta: i64,
    /// Why the correction is made (a stock count, damage found, …).
    #[arg(long)]
    pub reason: Option<String>,
    /// What shows it is right (count sheet id, photo reference, ticket).
    #[arg(long)]
    pub evidence: Option<String>,
    /// Who approved it.
    #[arg(long)]
    pub approved_by: Option<String>,
    /// Who runs the command; recorded in the audit trail.
    #[arg(long, env = "STOCKLEDGER_OPERATOR")]
    pub actor: Option<String>,
    /// The same key makes a re-run of this correction a no-op.
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Publish the correction. Without it nothing changes.
    #[arg(long)]
    pub apply: bool,
}

/// Runs one stock subcommand.
pub async fn run(cmd: StockCommand, json: bool) -> anyhow::Result<Exit> {
    match cmd {
        StockCommand::Show { sku } => show(&sku, json).await,
        StockCommand::Correct(a) => correct(a, json).await,
    }
}

/// `stock show`.
async fn show(sku: &str, json: bool) -> anyhow::Result<Exit> {
    let sku = Sku::parse(sku.to_owned()).map_err(|e| exit::usage(format!("SKU: {e}")))?;
    let cfg = ctx::config()?;
    let store = ctx::store_for_reading(&cfg).await?;
    let rows = store.balances_for_sku(&sku).await?;
    if rows.is_empty() {
        return Err(exit::problem(format!(
            "the ledger has no stock recorded for SKU {sku}"
        )));
    }
    if json {
        let locations: Vec<serde_json::Value> = rows
            .iter()
            .map(|(location, b)| {
                serde_json::json!({
                    "location": location,
                    "available": b.available,
                    "reserved": b.reserved,
                    "sold": b.sold,
                    "returned": b.returned,
                    "written_off": b.written_off,
                    "last_seq": b.seq,
                })
            })
            .collect();
        out::json(&serde_json::json!({"sku": sku.as_str(), "locations": locations}))?;
        return Ok(Exit::Success);
    }
    outln!(
        "{:<20} {:>10} {:>10} {:>10} {:>10} {:>12} {:>8}",
        "LOCATION",
        "AVAILABLE",
        "RESERVED",
        "SOLD",
        "RETURNED",
        "WRITTEN_OFF",
        "SEQ"
    )?;
    for (location, b) in &rows {
        outln!(
            "{:<20} {:>10} {:>10} {:>10} {:>10} {:>12} {:>8}",
            location,
            b.available,
            b.reserved,
            b.sold,
            b.returned,
            b.written_off,
            b.seq
        )?;
    }
    Ok(Exit::Success)
}

/// `stock correct`.
async fn correct(a: CorrectArgs, json: bool) -> anyhow::Result<Exit> {
    let missing: Vec<&str> = [
        ("--reason", &a.reason),
        ("--evidence", &a.evidence),
        ("--approved-by", &a.approved_by),
    ]
    .into_iter()
    .filter(|(_, v)| v.as_deref().is_none_or(|s| s.trim().is_empty()))
    .map(|(n, _)| n)
    .collect();
    if !missing.is_empty() {
        return Err(exit::problem(format!(
            "refused: a stock correction needs {} (nothing was changed)",
            missing.join(", ")
        )));
    }
    let correction = Correction {
        sku: a.sku,
        location: a.location,
        delta: a.delta,
        reason: a.reason.unwrap_or_default(),
        evidence: a.evidence.unwrap_or_default(),
        approved_by: a.approved_by.unwrap_or_default(),
        actor: actor(a.actor)?,
        idempotency_key: a.idempotency_key,
    };
    let actions = connect().await?;
    if !a.apply {
        let key = StockKey {
            sku: Sku::parse(correction.sku.clone())
                .map_err(|e| exit::usage(format!("--sku: {e}")))?,
            location: Location::parse(correction.location.clone())
                .map_err(|e| exit::usage(format!("--location: {e}")))?,
        };
        let b = actions.store.balance(&key).await?;
        let (from, to) = if correction.delta > 0 {
            ("external", "available")
        } else {
            ("available", "external")
        };
        if json {
            out::json(&serde_json::json!({
                "applied": false,
                "sku": correction.sku,
                "location": correction.location,
                "delta": correction.delta,
                "from": from,
                "to": to,
                "available_now": b.available,
            }))?;
        } else {
            outln!(
                "would move {} unit(s) {from} → {to} at {}/{} (available now {}); nothing changed: add --apply to publish",
                correction.delta.unsigned_abs(),
                correction.sku,
                correction.location,
                b.available
            )?;
        }
        return Ok(Exit::Success);
    }
    let report = actions.correct_stock(&correction).await;
    finish(report, json, |r| {
        format!(
            "{}: {}{}",
            r.event_id,
            r.outcome,
            r.reason
                .as_ref()
                .map(|x| format!(" ({x})"))
                .unwrap_or_default()
        )
    })
}
