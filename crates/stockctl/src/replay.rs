//! `stockctl replay`: re-apply a range of the events stream to the ledger, with a progress
//! line and a summary. Safe to run while the services run: events already processed are
//! recorded duplicates, so a replay never moves stock twice.

use std::io::Write as _;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context as _;
use bus::read::ReadFrom;
use clap::Args;

/// Arguments of `stockctl replay`.
#[derive(Args)]
pub struct ReplayArgs {
    /// Subject filter within the events stream; default: every event of the namespace
    /// (`<namespace>.events.>`). Example: `stockledger.events.stripe.>`.
    #[arg(long)]
    pub subject: Option<String>,
    /// Start at this stream sequence (1 or more; the whole stream is --all-history).
    #[arg(long, conflicts_with_all = ["since", "all_history"])]
    pub from_seq: Option<u64>,
    /// Start at the first event stored at or after this time (RFC 3339, e.g.
    /// 2026-11-20T10:00:00Z).
    #[arg(long, conflicts_with = "all_history")]
    pub since: Option<String>,
    /// Replay the whole stream from its first event. Required when neither --from-seq nor
    /// --since bounds the replay.
    #[arg(long)]
    pub all_history: bool,
    /// Stop after this stream sequence (inclusive); default: the end of the stream when the
    /// replay starts.
    #[arg(long)]
    pub to_seq: Option<u64>,
    /// Report what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let from = match (args.from_seq, &args.since, args.all_history) {
        // Sequences start at 1: 0 would be the whole stream without saying so.
        (Some(0), _, _) => anyhow::bail!(
            "--from-seq 0 is before the first event (sequences start at 1); to replay the \
             whole stream say --all-history"
        ),
        (Some(seq), _, _) => {
            if let Some(to) = args.to_seq
                && to < seq
            {
                anyhow::bail!(
                    "--to-seq {to} is before --from-seq {seq}: the range is empty; nothing replayed"
                );
            }
            ReadFrom::Sequence(seq)
        }
        (None, Some(since), _) => {
            let t =
                contract::wire_time::parse(since).map_err(|e| anyhow::anyhow!("--since: {e}"))?;
            ReadFrom::Time(t.0)
        }
        (None, None, true) => ReadFrom::Start,
        (None, None, false) => {
            anyhow::bail!(
                "refusing an unbounded replay: give --from-seq, --since, or --all-history explicitly"
            )
        }
    };
    let cfg = config::Config::from_env().context("reading configuration")?;
    // A tool fails at once when NATS cannot be reached.
    let mut bus_cfg = service::connect::bus_config(&cfg)?;
    bus_cfg.retry_initial_connect = false;
    let namespace = bus_cfg.namespace.clone();
    let bus = bus::Bus::connect(bus_cfg)
        .await
        .context("connecting to NATS")?;
    let store = store::Store::connect(&cfg.database.url, &store::StoreOptions::default())
        .await
        .context("opening the ledger database")?;
    let opts = ledger::replay::ReplayOptions {
        filter: args.subject.unwrap_or_else(|| namespace.events_wildcard()),
        from,
        to_seq: args.to_seq,
        dry_run: args.dry_run,
        unknown_order_hold: cfg.ledger.unknown_order_hold,
    };
    let started = Instant::now();
    let summary = ledger::replay::replay(&bus, &store, &opts, |done, total| {
        progress(done, total, started)
    })
    .await?;
    eprintln!();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"dry_run": args.dry_run, "summary": summary})
            )?
        );
    } else {
        println!(
            "{}replayed {} events: {} applied, {} deduplicated no-ops, {} business no-ops, {} exceptions, {} deferred, {} unprocessable",
            if args.dry_run {
                "dry run (nothing changed): "
            } else {
                ""
            },
            summary.read,
            summary.applied,
            summary.deduplicated,
            summary.business_noops,
            summary.exceptions,
            summary.deferred,
            summary.unprocessable,
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// One progress line on stderr: a bar, the count, the rate and the time left.
pub(crate) fn progress(done: u64, total: u64, started: Instant) {
    let elapsed = started.elapsed().as_secs_f64().max(1e-3);
    let rate = done as f64 / elapsed;
    let left = total.saturating_sub(done) as f64 / rate.max(1e-9);
    let width = 30usize;
    let filled = if total == 0 {
        width
    } else {
        (done as usize * width / total as usize).min(width)
    };
    let bar = format!("{}{}", "#".repeat(filled), ".".repeat(width - filled));
    eprint!("\r[{bar}] {done}/{total} {rate:.0} events/s ETA {left:.0}s ");
    let _ = std::io::stderr().flush();
}
