//! `stockctl replay`: re-apply a range of the events stream to the ledger, with a progress
//! bar (on a terminal) and a summary. Safe to run while the services run: events already
//! processed are recorded duplicates, so a replay never moves stock twice. The range is
//! checked before anything is read: an unbounded, empty or reversed range is a usage
//! error, and a subject that matches no event in the stream is a problem (exit code 1), so
//! that a typo never reads as "replayed 0 events".

use std::time::Instant;

use bus::read::ReadFrom;
use clap::Args;

use crate::exit::{self, Exit};
use crate::progress::Progress;
use crate::{ctx, out, outln};

/// Arguments of `stockctl replay`.
#[derive(Args)]
pub struct ReplayArgs {
    /// Subject filter within the events stream; default: every event of the namespace
    /// (`<namespace>.events.>`). Example: `stockledger.events.stripe.>`. A subject that
    /// matches no event in the stream is refused (exit code 1).
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
    /// Stop after this stream sequence (inclusive; not before --from-seq); default: the end
    /// of the stream when the replay starts.
    #[arg(long)]
    pub to_seq: Option<u64>,
    /// Report what would change; change nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// Where the replay starts, or why the range is refused (a usage error).
fn start(args: &ReplayArgs) -> anyhow::Result<ReadFrom> {
    match (args.from_seq, &args.since, args.all_history) {
        // Sequences start at 1: 0 would be the whole stream without saying so.
        (Some(0), _, _) => Err(exit::usage(
            "--from-seq 0 is before the first event (sequences start at 1); to replay the \
             whole stream say --all-history",
        )),
        (Some(seq), _, _) => match args.to_seq {
            Some(to) if to < seq => Err(exit::usage(format!(
                "--to-seq {to} is before --from-seq {seq}: the range is empty; nothing replayed"
            ))),
            _ => Ok(ReadFrom::Sequence(seq)),
        },
        (None, Some(since), _) => {
            let t = contract::wire_time::parse(since)
                .map_err(|e| exit::usage(format!("--since: {e}")))?;
            Ok(ReadFrom::Time(t.0))
        }
        (None, None, true) => Ok(ReadFrom::Start),
        (None, None, false) => Err(exit::usage(
            "refusing an unbounded replay: give --from-seq, --since, or --all-history explicitly",
        )),
    }
    .and_then(|from| match args.to_seq {
        Some(0) => Err(exit::usage(
            "--to-seq 0 is before the first event: the range is empty; nothing replayed",
        )),
        _ => Ok(from),
    })
}

/// True when `subject` names only subjects under `<namespace>.events.` (where the events
/// stream can hold a match); anything else matches no event by construction.
pub(crate) fn within_events(subject: &str, namespace: &bus::Namespace) -> bool {
    let mut tokens = subject.split('.');
    tokens.next() == Some(namespace.as_str())
        && tokens.next() == Some("events")
        && tokens.next().is_some_and(|t| !t.is_empty())
        && tokens.all(|t| !t.is_empty())
}

pub async fn run(args: ReplayArgs, json: bool) -> anyhow::Result<Exit> {
    let from = start(&args)?;
    let cfg = ctx::config()?;
    let bus = ctx::bus(&cfg).await?;
    let namespace = bus.namespace().clone();
    let stream = ctx::events_stream(&bus).await?;
    if let Some(subject) = &args.subject {
        if !within_events(subject, &namespace) {
            return Err(exit::problem(format!(
                "subject {subject:?} is not within the events stream {stream} (it must start with {}.events.): it matches no event; nothing replayed",
                namespace.as_str()
            )));
        }
        if bus.read(&stream, subject, ReadFrom::Start).await?.total == 0 {
            return Err(exit::problem(format!(
                "subject {subject:?} matches no event in the events stream {stream}; nothing replayed"
            )));
        }
    }
    let store = ctx::store_for_writing(&cfg).await?;
    let opts = ledger::replay::ReplayOptions {
        filter: args
            .subject
            .clone()
            .unwrap_or_else(|| namespace.events_wildcard()),
        from,
        to_seq: args.to_seq,
        dry_run: args.dry_run,
        unknown_order_hold: cfg.ledger.unknown_order_hold,
        reservation_ttls: cfg.ledger.reservation_ttls.clone(),
    };
    let started = Instant::now();
    let bar = Progress::on_terminal();
    let summary =
        ledger::replay::replay(&bus, &store, &opts, |done, total| bar.update(done, total)).await;
    bar.finish();
    let summary = summary?;
    if json {
        out::json(&serde_json::json!({
            "dry_run": args.dry_run,
            "summary": summary,
            "seconds": started.elapsed().as_secs_f64(),
        }))?;
    } else {
        outln!(
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
        )?;
    }
    Ok(Exit::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_outside_the_events_stream_is_recognised() {
        let ns = bus::Namespace::parse("shop").unwrap_or_default();
        assert!(within_events("shop.events.stripe.>", &ns));
        assert!(within_events("shop.events.>", &ns));
        assert!(within_events("shop.events.*.payment.captured", &ns));
        assert!(!within_events("shop.events", &ns));
        assert!(!within_events("other.events.>", &ns));
        assert!(!within_events("shop.callbacks.>", &ns));
        assert!(!within_events(">", &ns));
        assert!(!within_events("shop.events..x", &ns));
    }
}
