//! `stockctl stock correct`: the only way an operator changes stock by hand, and never
//! silently. It publishes a `stock.corrected` contract event through JetStream (the ledger
//! applies it like any other event, as a new entry between `external` and `available`),
//! requires a reason, evidence and an approver, and records the action in the audit
//! trail. Without `--apply` it only shows what it would do.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use domain::{Location, Sku, StockKey};
use operator::actions::Correction;

use crate::exceptions::{actor, connect, finish};

/// The stock subcommands.
#[derive(Subcommand)]
pub enum StockCommand {
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
    #[arg(long)]
    pub sku: String,
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
    /// Print the result as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs one stock subcommand.
pub async fn run(cmd: StockCommand) -> anyhow::Result<ExitCode> {
    let StockCommand::Correct(a) = cmd;
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
        eprintln!(
            "stockctl: refused: a stock correction needs {} (nothing was changed)",
            missing.join(", ")
        );
        return Ok(ExitCode::from(1));
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
            sku: Sku::parse(correction.sku.clone()).context("--sku")?,
            location: Location::parse(correction.location.clone()).context("--location")?,
        };
        let b = actions.store.balance(&key).await?;
        println!(
            "would move {} unit(s) {} at {}/{} (available now {}); nothing changed: add --apply to publish",
            correction.delta.unsigned_abs(),
            if correction.delta > 0 {
                "external → available"
            } else {
                "available → external"
            },
            correction.sku,
            correction.location,
            b.available
        );
        return Ok(ExitCode::SUCCESS);
    }
    let report = actions.correct_stock(&correction).await;
    finish(report, a.json, |r| {
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
