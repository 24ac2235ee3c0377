//! `stockctl ledger rebuild`: build the ledger again from the event stream, the source of
//! truth (`docs/operations.md`, "Recovery"). Into the configured database (lost, emptied,
//! or restored from an older backup), or `--into` a new one to switch to.

use std::io::{IsTerminal as _, Write as _};
use std::time::Instant;

use anyhow::Context as _;
use clap::Args;

use crate::exit::{self, Exit};
use crate::progress::Progress;
use crate::{ctx, out, outln};

/// Arguments of `stockctl ledger rebuild`.
#[derive(Args)]
pub struct RebuildArgs {
    /// Rebuild into this database (created and migrated if needed) instead of
    /// STOCKLEDGER_DATABASE_URL; point the services at it afterwards.
    #[arg(long)]
    pub into: Option<String>,
    /// Report what a rebuild would do; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Do not ask for confirmation (required when there is no terminal to ask on).
    #[arg(long)]
    pub yes: bool,
}

pub async fn run(args: RebuildArgs, json: bool) -> anyhow::Result<Exit> {
    let cfg = ctx::config()?;
    // A tool fails at once when NATS cannot be reached (exit code 3).
    let bus = ctx::bus(&cfg).await?;
    let url = args.into.as_deref().unwrap_or(&cfg.database.url);
    // A rebuild writes: it creates and migrates the target when needed.
    let store = store::Store::connect(url, &store::StoreOptions::default())
        .await
        .context("cannot open the target database")?;
    let before = operator::standing::standing(&bus, &store).await?;
    let target = if args.into.is_some() {
        "the database given with --into"
    } else {
        "the configured ledger database (STOCKLEDGER_DATABASE_URL)"
    };
    eprintln!(
        "rebuilding {target} from {} (sequences 1..={}; the ledger consumer acknowledged up to {}, the database has applied up to {})",
        before.progress.stream,
        before.progress.last_seq,
        before.progress.acked,
        before.checkpoint.applied
    );
    if !before.is_behind() && args.into.is_none() && !args.dry_run {
        eprintln!(
            "note: this ledger is not behind the stream; a rebuild will change nothing, and every role reports not ready while it runs"
        );
    }
    if !args.yes && !args.dry_run && !confirm()? {
        return Err(exit::problem(
            "not confirmed; nothing was changed (use --yes to skip the question)",
        ));
    }
    let started = Instant::now();
    let bar = Progress::on_terminal();
    let summary = ledger::replay::rebuild(
        &bus,
        &store,
        args.dry_run,
        cfg.ledger.unknown_order_hold,
        &cfg.ledger.reservation_ttls,
        |done, total| bar.update(done, total),
    )
    .await;
    bar.finish();
    let summary = summary?;
    let elapsed = started.elapsed().as_secs_f64();
    let rate = summary.replay.read as f64 / elapsed.max(1e-3);
    if json {
        out::json(&serde_json::json!({
            "dry_run": args.dry_run,
            "summary": summary,
            "seconds": elapsed,
            "events_per_second": rate.round(),
        }))?;
    } else {
        let s = summary.replay;
        outln!(
            "{}rebuilt from {} events up to sequence {} in {elapsed:.1}s ({rate:.0} events/s): {} applied, {} business no-ops, {} exceptions, {} already in the ledger, {} left to the consumer (order not registered yet), {} unprocessable",
            if args.dry_run {
                "dry run (nothing changed): "
            } else {
                ""
            },
            s.read,
            summary.applied_up_to,
            s.applied,
            s.business_noops,
            s.exceptions,
            s.deduplicated,
            s.deferred,
            s.unprocessable,
        )?;
        if args.into.is_some() && !args.dry_run {
            outln!("point STOCKLEDGER_DATABASE_URL at the new database and restart the services")?;
        }
    }
    store.close().await;
    Ok(Exit::Success)
}

/// Asks on the terminal; refuses (usage error) when there is none to ask on.
fn confirm() -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(exit::usage(
            "no terminal to confirm on: give --yes to rebuild",
        ));
    }
    eprint!("rebuild now? [y/N] ");
    std::io::stderr().flush()?;
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
